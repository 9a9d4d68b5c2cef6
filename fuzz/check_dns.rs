//! The property the `dns_query` fuzz target checks, shared with the corpus
//! replay test in crates/mini/tests/fuzz_corpus.rs: whatever arrives at an
//! m3s DNS server is parsed without panicking, and a query that parses gets
//! an answer that a client parses back to the same records. Odd first byte:
//! the rest is a network's subnet text or a CNI configuration instead.

use std::net::Ipv4Addr;

use mini::agent::network::cni::NetConf;
use mini::agent::network::subnet::Subnet;
use mini::dns::wire;

/// Returns true when the input was accepted (parsed).
pub fn check(data: &[u8]) -> bool {
    let Some((&first, rest)) = data.split_first() else { return false };
    if first % 2 == 1 {
        let Ok(text) = std::str::from_utf8(rest) else { return false };
        let subnet = text.parse::<Subnet>().map(|s| assert_eq!(s.to_string().parse::<Subnet>(), Ok(s))).is_ok();
        let conf = NetConf::parse(text, std::path::Path::new("fuzz.conflist")).is_ok();
        return subnet || conf;
    }
    match wire::parse_query(rest) {
        Ok(q) => {
            let ips = [Ipv4Addr::new(10, 90, 0, 2), Ipv4Addr::new(10, 90, 0, 3)];
            let reply = wire::response(&q, rest, 0, &ips.map(wire::Record::A), 5);
            assert_eq!(wire::parse_a_answers(&reply).expect("own answer"), (0, ips.to_vec()));
            true
        }
        Err(e) => {
            if let Some(reply) = wire::error_response(rest, e.rcode()) {
                assert_eq!(reply.len(), 12);
            }
            false
        }
    }
}
