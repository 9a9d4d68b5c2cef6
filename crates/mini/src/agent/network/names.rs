//! The names of containers on each network, as the networks' DNS servers
//! answer them: every container's names (service, aliases, hostname...) to
//! its address there, round-robin over replicas. A container asks the DNS
//! server of its first network and is answered for every network it is on,
//! as Docker's embedded DNS does. Changed the moment a container joins or leaves.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use crate::dns::wire::{Record, TYPE_A, TYPE_ANY};
use crate::dns::{Answer, Resolve};

/// A name on a network: (name, address, container id).
type Entry = (String, Ipv4Addr, String);

#[derive(Default)]
pub struct NameTable {
    /// By network.
    entries: RwLock<HashMap<String, Vec<Entry>>>,
    /// Container id -> (network, address) of every network it joined.
    members: RwLock<HashMap<String, Vec<(String, Ipv4Addr)>>>,
    turn: AtomicUsize,
}

impl NameTable {
    pub fn add(&self, network: &str, container_id: &str, ip: Ipv4Addr, names: &[String]) {
        self.members
            .write()
            .expect("names lock")
            .entry(container_id.to_owned())
            .or_default()
            .push((network.to_owned(), ip));
        let mut entries = self.entries.write().expect("names lock");
        let list = entries.entry(network.to_owned()).or_default();
        for name in names {
            list.push((name.clone(), ip, container_id.to_owned()));
        }
    }

    /// The networks of the container with address `ip` on `network`; just
    /// `network` for an address no container has there.
    fn networks_of(&self, network: &str, ip: std::net::IpAddr) -> Vec<String> {
        let members = self.members.read().expect("names lock");
        let asker =
            members.values().find(|joined| joined.iter().any(|(n, a)| n == network && std::net::IpAddr::V4(*a) == ip));
        match asker {
            Some(joined) => {
                let mut out: Vec<String> = vec![network.to_owned()];
                out.extend(joined.iter().map(|(n, _)| n.clone()).filter(|n| n != network));
                out
            }
            None => vec![network.to_owned()],
        }
    }

    pub fn remove_container(&self, container_id: &str) {
        self.members.write().expect("names lock").remove(container_id);
        let mut entries = self.entries.write().expect("names lock");
        for list in entries.values_mut() {
            list.retain(|(_, _, c)| c != container_id);
        }
        entries.retain(|_, list| !list.is_empty());
    }

    /// The addresses of `name` on `networks` (the asker's, its own first;
    /// one per container), rotated one step per call.
    pub fn lookup(&self, networks: &[String], name: &str) -> Vec<Ipv4Addr> {
        let mut ips = self.peek(networks, name);
        if ips.len() > 1 {
            let turn = self.turn.fetch_add(1, Ordering::Relaxed) % ips.len();
            ips.rotate_left(turn);
        }
        ips
    }

    /// The addresses of `name`, without turning the round.
    fn peek(&self, networks: &[String], name: &str) -> Vec<Ipv4Addr> {
        let entries = self.entries.read().expect("names lock");
        let mut seen = std::collections::HashSet::new();
        let mut ips: Vec<Ipv4Addr> = Vec::new();
        for network in networks {
            for (n, ip, container) in entries.get(network).into_iter().flatten() {
                if n == name && seen.insert(container.as_str()) {
                    ips.push(*ip);
                }
            }
        }
        ips
    }

    /// A resolver answering for one network.
    pub fn resolver(self: &Arc<Self>, network: &str) -> Arc<dyn Resolve> {
        Arc::new(NetworkResolver { table: self.clone(), network: network.to_owned() })
    }
}

struct NetworkResolver {
    table: Arc<NameTable>,
    network: String,
}

impl Resolve for NetworkResolver {
    fn resolve(&self, name: &str, qtype: u16, peer: std::net::IpAddr) -> Answer {
        let networks = self.table.networks_of(&self.network, peer);
        // Only A questions turn the round: a resolver asks A and AAAA for each name.
        let ips = if qtype == TYPE_A { self.table.lookup(&networks, name) } else { self.table.peek(&networks, name) };
        if ips.is_empty() {
            return Answer::Forward;
        }
        // A known name has only A records: AAAA and the rest are answered empty,
        // so that resolvers do not wait for the host's resolvers to say no.
        let wanted = qtype == TYPE_A || qtype == TYPE_ANY;
        Answer::Records(if wanted { ips.into_iter().map(Record::A).collect() } else { Vec::new() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_rotate_and_leave_at_once() {
        let table = Arc::new(NameTable::default());
        let (a, b) = (Ipv4Addr::new(10, 90, 0, 2), Ipv4Addr::new(10, 90, 0, 3));
        let net = |n: &str| vec![n.to_owned()];
        table.add("p_default", "c1", a, &["web".into(), "web.p".into()]);
        table.add("p_default", "c2", b, &["web".into()]);
        table.add("other", "c3", Ipv4Addr::new(10, 90, 1, 2), &["db".into()]);
        let first = table.lookup(&net("p_default"), "web");
        let second = table.lookup(&net("p_default"), "web");
        assert_eq!(first.len(), 2);
        assert_ne!(first[0], second[0], "round-robin");
        assert!(table.lookup(&net("p_default"), "db").is_empty(), "names stay inside their network");
        let resolver = table.resolver("p_default");
        let stranger = std::net::IpAddr::from([10, 90, 0, 99]);
        assert_eq!(resolver.resolve("web.p", TYPE_A, stranger), Answer::Records(vec![Record::A(a)]));
        assert_eq!(resolver.resolve("web.p", crate::dns::wire::TYPE_AAAA, stranger), Answer::Records(vec![]));
        assert_eq!(resolver.resolve("example.org", TYPE_A, stranger), Answer::Forward);
        table.remove_container("c1");
        assert_eq!(table.lookup(&net("p_default"), "web"), vec![b]);
        assert_eq!(resolver.resolve("web.p", TYPE_A, stranger), Answer::Forward);
    }

    #[test]
    fn a_container_on_two_networks_is_answered_for_both() {
        let table = Arc::new(NameTable::default());
        let (api_back, api_front) = (Ipv4Addr::new(10, 90, 0, 5), Ipv4Addr::new(10, 90, 1, 5));
        table.add("back", "api", api_back, &["api".into()]);
        table.add("front", "api", api_front, &["api".into()]);
        table.add("front", "web", Ipv4Addr::new(10, 90, 1, 2), &["web".into()]);
        table.add("back", "db", Ipv4Addr::new(10, 90, 0, 2), &["db".into()]);
        // api asks back's server (its first network): web, on front, resolves too.
        let back = table.resolver("back");
        let web = Answer::Records(vec![Record::A(Ipv4Addr::new(10, 90, 1, 2))]);
        assert_eq!(back.resolve("web", TYPE_A, api_back.into()), web);
        // web, on front only, does not see db; db, on back only, does not see web.
        let front = table.resolver("front");
        assert_eq!(front.resolve("db", TYPE_A, Ipv4Addr::new(10, 90, 1, 2).into()), Answer::Forward);
        assert_eq!(back.resolve("web", TYPE_A, Ipv4Addr::new(10, 90, 0, 2).into()), Answer::Forward);
        // api answers once (its address on the asker's network first).
        assert_eq!(
            front.resolve("api", TYPE_A, Ipv4Addr::new(10, 90, 1, 2).into()),
            Answer::Records(vec![Record::A(api_front)])
        );
    }
}
