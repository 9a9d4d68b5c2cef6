//! The names of containers on each network, as the network's DNS server
//! answers them: every container's names (service, aliases, hostname...) to
//! its address there, round-robin over replicas. Changed the moment a
//! container joins or leaves.

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
    turn: AtomicUsize,
}

impl NameTable {
    pub fn add(&self, network: &str, container_id: &str, ip: Ipv4Addr, names: &[String]) {
        let mut entries = self.entries.write().expect("names lock");
        let list = entries.entry(network.to_owned()).or_default();
        for name in names {
            list.push((name.clone(), ip, container_id.to_owned()));
        }
    }

    pub fn remove_container(&self, container_id: &str) {
        let mut entries = self.entries.write().expect("names lock");
        for list in entries.values_mut() {
            list.retain(|(_, _, c)| c != container_id);
        }
        entries.retain(|_, list| !list.is_empty());
    }

    /// The addresses of `name` on `network`, rotated one step per question.
    pub fn lookup(&self, network: &str, name: &str) -> Vec<Ipv4Addr> {
        let entries = self.entries.read().expect("names lock");
        let mut ips: Vec<Ipv4Addr> = entries
            .get(network)
            .map(|list| list.iter().filter(|(n, _, _)| n == name).map(|(_, ip, _)| *ip).collect())
            .unwrap_or_default();
        ips.dedup();
        if ips.len() > 1 {
            let turn = self.turn.fetch_add(1, Ordering::Relaxed) % ips.len();
            ips.rotate_left(turn);
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
    fn resolve(&self, name: &str, qtype: u16) -> Answer {
        let ips = self.table.lookup(&self.network, name);
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
        table.add("p_default", "c1", a, &["web".into(), "web.p".into()]);
        table.add("p_default", "c2", b, &["web".into()]);
        table.add("other", "c3", Ipv4Addr::new(10, 90, 1, 2), &["db".into()]);
        let first = table.lookup("p_default", "web");
        let second = table.lookup("p_default", "web");
        assert_eq!(first.len(), 2);
        assert_ne!(first[0], second[0], "round-robin");
        assert!(table.lookup("p_default", "db").is_empty(), "names stay inside their network");
        let resolver = table.resolver("p_default");
        assert_eq!(resolver.resolve("web.p", TYPE_A), Answer::Records(vec![Record::A(a)]));
        assert_eq!(resolver.resolve("web.p", crate::dns::wire::TYPE_AAAA), Answer::Records(vec![]));
        assert_eq!(resolver.resolve("example.org", TYPE_A), Answer::Forward);
        table.remove_container("c1");
        assert_eq!(table.lookup("p_default", "web"), vec![b]);
        assert_eq!(resolver.resolve("web.p", TYPE_A), Answer::Forward);
    }
}
