//! Published host ports held while their container runs: a socket bound
//! (never listening) on each, as docker-proxy holds Docker's, so that a port
//! already in use is refused with its holder's name, and no host process can
//! take one later. Traffic never reaches these sockets: the portmap plugin's
//! DNAT rules send it to the container first.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::OwnedFd;

use rustix::net::{AddressFamily, SocketFlags, SocketType, bind, ipproto, socket_with};

use super::request::PortMap;

/// A host port that cannot be held.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("host port {port}: {source}")]
    Socket { port: u16, source: rustix::io::Errno },
    #[error("host port {ip}:{port}/{protocol} is already in use{}", holder.as_ref().map(|h| format!(" by {h}")).unwrap_or_default())]
    InUse { ip: IpAddr, port: u16, protocol: String, holder: Option<String> },
    #[error("host port {ip}:{port}/{protocol}: {ip} is not an address of this host")]
    NotLocal { ip: IpAddr, port: u16, protocol: String },
    #[error("host port {ip}:{port}/{protocol}: {source}")]
    Bind { ip: IpAddr, port: u16, protocol: String, source: rustix::io::Errno },
}

/// Binds every mapping's host port; the first one in use is an error naming
/// it and, where /proc tells, the process holding it.
pub fn reserve(maps: &[PortMap]) -> Result<Vec<OwnedFd>, PortError> {
    let mut held = Vec::with_capacity(maps.len());
    for m in maps {
        let ip = m.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let (kind, proto) = match m.protocol.as_str() {
            "udp" => (SocketType::DGRAM, ipproto::UDP),
            "sctp" => continue,
            _ => (SocketType::STREAM, ipproto::TCP),
        };
        let family = if ip.is_ipv4() { AddressFamily::INET } else { AddressFamily::INET6 };
        // Close-on-exec: the processes m3s starts must not hold its ports.
        let fd = socket_with(family, kind, SocketFlags::CLOEXEC, Some(proto))
            .map_err(|source| PortError::Socket { port: m.host_port, source })?;
        // No SO_REUSEADDR: a server that sets it still cannot bind beside this one.
        let (port, protocol) = (m.host_port, m.protocol.clone());
        match bind(&fd, &SocketAddr::new(ip, port)) {
            Ok(()) => held.push(fd),
            Err(rustix::io::Errno::ADDRINUSE) => {
                let holder = holder(port, &protocol);
                return Err(PortError::InUse { ip, port, protocol, holder });
            }
            Err(rustix::io::Errno::ADDRNOTAVAIL) => return Err(PortError::NotLocal { ip, port, protocol }),
            Err(source) => return Err(PortError::Bind { ip, port, protocol, source }),
        }
    }
    Ok(held)
}

/// `pid N (comm)` of a process with a socket bound to `port`, from /proc.
pub fn holder(port: u16, protocol: &str) -> Option<String> {
    let tables: &[&str] = if protocol == "udp" { &["udp", "udp6"] } else { &["tcp", "tcp6"] };
    let inodes: Vec<u64> = tables
        .iter()
        .filter_map(|t| std::fs::read_to_string(format!("/proc/net/{t}")).ok())
        .flat_map(|text| bound_sockets(&text).filter(|(p, _)| *p == port).map(|(_, inode)| inode).collect::<Vec<_>>())
        .collect();
    if inodes.is_empty() {
        return None;
    }
    for proc_entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = proc_entry.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else { continue };
        let Ok(fds) = std::fs::read_dir(proc_entry.path().join("fd")) else { continue };
        for fd in fds.flatten() {
            let Ok(link) = std::fs::read_link(fd.path()) else { continue };
            let link = link.to_string_lossy();
            let inode = link.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')).and_then(|s| s.parse().ok());
            if inode.is_some_and(|i| inodes.contains(&i)) {
                let comm = std::fs::read_to_string(proc_entry.path().join("comm")).unwrap_or_default();
                return Some(format!("pid {pid} ({})", comm.trim()));
            }
        }
    }
    None
}

/// (local port, inode) of the bound sockets of a /proc/net table: TCP's
/// listening ones (state 0A), UDP's bound ones (07).
fn bound_sockets(table: &str) -> impl Iterator<Item = (u16, u64)> + '_ {
    table.lines().skip(1).filter_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        let port = u16::from_str_radix(f.get(1)?.rsplit(':').next()?, 16).ok()?;
        matches!(*f.get(3)?, "0A" | "07").then_some(())?;
        Some((port, f.get(9)?.parse().ok()?))
    })
}

/// The ports of 1..=65535 that a socket is bound to on this host (TCP
/// listening, UDP bound): an agent does not offer them.
pub fn in_use() -> std::collections::BTreeSet<u16> {
    ["tcp", "tcp6", "udp", "udp6"]
        .iter()
        .filter_map(|t| std::fs::read_to_string(format!("/proc/net/{t}")).ok())
        .flat_map(|text| bound_sockets(&text).map(|(port, _)| port).collect::<Vec<_>>())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_in_use_is_refused_naming_its_holder() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let map = |ip: &str| PortMap {
            host_port: port,
            container_port: 80,
            protocol: "tcp".into(),
            host_ip: Some(ip.parse().unwrap()),
        };
        let e = reserve(&[map("127.0.0.1")]).unwrap_err().to_string();
        let me = std::process::id();
        assert!(e.contains(&format!("127.0.0.1:{port}/tcp is already in use by pid {me} (")), "{e}");
        assert!(in_use().contains(&port));
        drop(taken);
        let held = reserve(&[map("127.0.0.1")]).unwrap();
        // Held: a server cannot take it now (std sets SO_REUSEADDR, as servers do).
        assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_err());
        drop(held);
        assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
        assert!(matches!(reserve(&[map("192.0.2.7")]).unwrap_err(), PortError::NotLocal { .. }));
    }
}
