//! A small DNS server: names the agent knows answered from memory, others
//! forwarded to the host's resolvers. Containers on an m3s network ask it (at
//! the network's gateway) for their project's service names.
//!
//! The wire format is [`wire`] (pure functions); what a name means is a
//! [`Resolve`]; this module is the UDP loop around them, one task per socket,
//! asleep until a datagram arrives.

pub mod mesos;
pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;

use wire::Record;

/// What a server knows of a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The name is ours: these records of the asked type (maybe none).
    Records(Vec<Record>),
    /// The name is in a zone of ours and does not exist.
    NoSuchName,
    /// Not ours: ask the upstream resolvers.
    Forward,
}

pub trait Resolve: Send + Sync + 'static {
    /// `name` is lowercase without the trailing dot; `qtype` a [`wire`] type;
    /// `peer` who asks (names may depend on it).
    fn resolve(&self, name: &str, qtype: u16, peer: std::net::IpAddr) -> Answer;
}

/// Seconds a local answer may be cached: short, tasks come and go.
const TTL: u32 = 5;
/// Forwarded questions in flight at once; more are answered SERVFAIL.
const MAX_FORWARDS: usize = 128;
const FORWARD_TIMEOUT: Duration = Duration::from_secs(2);

/// A running server; it stops when dropped.
pub struct Server {
    task: tokio::task::JoinHandle<()>,
    pub local_addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `socket` until the returned [`Server`] is dropped.
pub fn serve(socket: UdpSocket, names: Arc<dyn Resolve>, upstreams: Arc<Vec<SocketAddr>>) -> std::io::Result<Server> {
    let local_addr = socket.local_addr()?;
    let socket = Arc::new(socket);
    let forwards = Arc::new(tokio::sync::Semaphore::new(MAX_FORWARDS));
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let (len, peer) = match socket.recv_from(&mut buf).await {
                Ok(x) => x,
                // ICMP errors of earlier sends surface here on Linux: not fatal.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => continue,
                Err(e) => {
                    tracing::warn!(error = %e, %local_addr, "the DNS server stops");
                    return;
                }
            };
            let msg = &buf[..len];
            let reply = match wire::parse_query(msg) {
                Err(e) => wire::error_response(msg, e.rcode()),
                Ok(q) => match names.resolve(&q.name, q.qtype, peer.ip()) {
                    Answer::Records(records) => Some(wire::response(&q, msg, 0, &records, TTL)),
                    Answer::NoSuchName => Some(wire::response(&q, msg, wire::RCODE_NXDOMAIN, &[], TTL)),
                    Answer::Forward => match forwards.clone().try_acquire_owned() {
                        Ok(permit) if !upstreams.is_empty() => {
                            let (socket, upstreams, msg) = (socket.clone(), upstreams.clone(), msg.to_vec());
                            tokio::spawn(async move {
                                let reply = forward(&msg, &upstreams)
                                    .await
                                    .unwrap_or_else(|| wire::response(&q, &msg, wire::RCODE_SERVFAIL, &[], 0));
                                let _ = socket.send_to(&reply, peer).await;
                                drop(permit);
                            });
                            None
                        }
                        _ => Some(wire::response(&q, msg, wire::RCODE_SERVFAIL, &[], 0)),
                    },
                },
            };
            if let Some(reply) = reply {
                let _ = socket.send_to(&reply, peer).await;
            }
        }
    });
    Ok(Server { task, local_addr })
}

/// The first upstream's answer, trying each in turn.
async fn forward(msg: &[u8], upstreams: &[SocketAddr]) -> Option<Vec<u8>> {
    for upstream in upstreams {
        let bind: SocketAddr = if upstream.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().expect("address");
        let Ok(socket) = UdpSocket::bind(bind).await else { continue };
        if socket.connect(upstream).await.is_err() || socket.send(msg).await.is_err() {
            continue;
        }
        let mut buf = vec![0u8; 4096];
        // The answer must be to this question (same id), from this upstream (connected).
        while let Ok(Ok(len)) = tokio::time::timeout(FORWARD_TIMEOUT, socket.recv(&mut buf)).await {
            if len >= 2 && buf[..2] == msg[..2] {
                buf.truncate(len);
                return Some(buf);
            }
        }
    }
    None
}

/// The nameservers of a resolv.conf, in order (port 53).
pub fn nameservers(resolv_conf: &str) -> Vec<SocketAddr> {
    resolv_conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|rest| rest.trim().split('%').next()?.parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    struct Fixed;
    impl Resolve for Fixed {
        fn resolve(&self, name: &str, qtype: u16, _: std::net::IpAddr) -> Answer {
            match (name, qtype) {
                ("web", wire::TYPE_A) => Answer::Records(vec![Record::A(Ipv4Addr::new(10, 0, 0, 2))]),
                ("web", _) => Answer::Records(vec![]),
                ("gone.mesos", _) => Answer::NoSuchName,
                _ => Answer::Forward,
            }
        }
    }

    async fn ask(server: SocketAddr, name: &str) -> (u8, Vec<Ipv4Addr>) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        socket.send_to(&wire::query(42, name, wire::TYPE_A), server).await.unwrap();
        let mut buf = [0u8; 512];
        let len = tokio::time::timeout(Duration::from_secs(10), socket.recv(&mut buf)).await.unwrap().unwrap();
        wire::parse_a_answers(&buf[..len]).unwrap()
    }

    #[tokio::test]
    async fn local_names_are_answered_others_forwarded_upstream() {
        // The upstream is another server of ours on loopback, answering everything.
        struct All;
        impl Resolve for All {
            fn resolve(&self, _: &str, _: u16, _: std::net::IpAddr) -> Answer {
                Answer::Records(vec![Record::A(Ipv4Addr::new(192, 0, 2, 1))])
            }
        }
        let upstream = serve(UdpSocket::bind("127.0.0.1:0").await.unwrap(), Arc::new(All), Arc::new(vec![])).unwrap();
        let server =
            serve(UdpSocket::bind("127.0.0.1:0").await.unwrap(), Arc::new(Fixed), Arc::new(vec![upstream.local_addr]))
                .unwrap();
        assert_eq!(ask(server.local_addr, "WEB").await, (0, vec![Ipv4Addr::new(10, 0, 0, 2)]));
        assert_eq!(ask(server.local_addr, "gone.mesos").await, (wire::RCODE_NXDOMAIN, vec![]));
        assert_eq!(ask(server.local_addr, "elsewhere.example").await, (0, vec![Ipv4Addr::new(192, 0, 2, 1)]));
        drop(upstream);
        let lonely = serve(UdpSocket::bind("127.0.0.1:0").await.unwrap(), Arc::new(Fixed), Arc::new(vec![])).unwrap();
        assert_eq!(ask(lonely.local_addr, "elsewhere.example").await.0, wire::RCODE_SERVFAIL);
    }

    #[test]
    fn nameservers_are_read_from_resolv_conf() {
        let conf = "# c\nsearch x\nnameserver 127.0.0.53\nnameserver fe80::1%eth0\noptions edns0\n";
        assert_eq!(nameservers(conf), vec!["127.0.0.53:53".parse().unwrap(), "[fe80::1]:53".parse().unwrap()]);
    }
}
