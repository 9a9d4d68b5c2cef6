//! IPv4 subnets: parsing, overlap, and the choice of a free one for a new
//! network. Pure functions; the host's routes come in as data.

use std::net::Ipv4Addr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub base: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    fn mask(&self) -> u32 {
        if self.prefix == 0 { 0 } else { u32::MAX << (32 - self.prefix) }
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.base)
    }

    pub fn overlaps(&self, other: &Subnet) -> bool {
        let mask = self.mask() & other.mask();
        u32::from(self.base) & mask == u32::from(other.base) & mask
    }

    /// The first host address, which m3s gives the bridge (the gateway).
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.base) + 1)
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

/// Why a text is not a subnet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubnetError {
    #[error("{0:?}: expected an IPv4 subnet such as 10.5.0.0/24")]
    NoPrefix(String),
    #[error("{text:?}: {ip:?} is not an IPv4 address")]
    NotAnAddress { text: String, ip: String },
    #[error("{0:?}: the prefix length must be a number from 0 to 30 (a network needs room for hosts)")]
    BadPrefix(String),
    #[error("{text:?}: host bits are set (the subnet is {subnet})")]
    HostBits { text: String, subnet: Subnet },
}

impl std::str::FromStr for Subnet {
    type Err = SubnetError;

    fn from_str(s: &str) -> Result<Subnet, SubnetError> {
        let (ip, prefix) = s.split_once('/').ok_or_else(|| SubnetError::NoPrefix(s.to_owned()))?;
        let ip: Ipv4Addr =
            ip.parse().map_err(|_| SubnetError::NotAnAddress { text: s.to_owned(), ip: ip.to_owned() })?;
        let prefix: u8 =
            prefix.parse().ok().filter(|p| *p <= 30).ok_or_else(|| SubnetError::BadPrefix(s.to_owned()))?;
        let subnet = Subnet { base: ip, prefix };
        if u32::from(ip) & !subnet.mask() != 0 {
            let subnet = Subnet { base: Ipv4Addr::from(u32::from(ip) & subnet.mask()), prefix };
            return Err(SubnetError::HostBits { text: s.to_owned(), subnet });
        }
        Ok(subnet)
    }
}

/// A route of the host, as `/proc/net/route` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub device: String,
    pub subnet: Subnet,
}

/// The host's IPv4 routes but the default one, from `/proc/net/route`'s text.
pub fn parse_routes(text: &str) -> Vec<Route> {
    let hex = |s: &str| u32::from_str_radix(s, 16).ok().map(|v| Ipv4Addr::from(u32::from_be(v)));
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (dest, mask) = (hex(f.get(1)?)?, hex(f.get(7)?)?);
            let prefix = u32::from(mask).count_ones() as u8;
            (prefix > 0).then(|| Route { device: f[0].to_owned(), subnet: Subnet { base: dest, prefix } })
        })
        .collect()
}

/// The pool m3s's networks come from: 10.90.0.0/16 in /24s (256 networks).
/// Docker's default pools (172.17.0.0/16 up, 192.168.0.0/16) are left to Docker.
pub fn pick(taken: &[Subnet]) -> Option<Subnet> {
    (0..=255u8)
        .map(|i| Subnet { base: Ipv4Addr::new(10, 90, i, 0), prefix: 24 })
        .find(|candidate| !taken.iter().any(|t| t.overlaps(candidate)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_parse_overlap_and_name_what_is_wrong() {
        let a: Subnet = "10.90.0.0/16".parse().unwrap();
        let b: Subnet = "10.90.7.0/24".parse().unwrap();
        let c: Subnet = "10.91.0.0/24".parse().unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a) && !a.overlaps(&c));
        assert!(b.contains(Ipv4Addr::new(10, 90, 7, 200)) && !b.contains(Ipv4Addr::new(10, 90, 8, 1)));
        assert_eq!(b.first_host(), Ipv4Addr::new(10, 90, 7, 1));
        assert!("10.90.7.1/24".parse::<Subnet>().unwrap_err().to_string().contains("host bits"));
        assert!("10.90.7.0".parse::<Subnet>().unwrap_err().to_string().contains("expected an IPv4 subnet"));
        assert!("10.90.7.0/31".parse::<Subnet>().unwrap_err().to_string().contains("prefix"));
    }

    #[test]
    fn the_pick_skips_routed_and_taken_subnets() {
        let routes = parse_routes(
            "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n\
             eth0\t00000000\t0102A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
             eth0\t00005A0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n",
        );
        assert_eq!(routes, vec![Route { device: "eth0".into(), subnet: "10.90.0.0/24".parse().unwrap() }]);
        let mut taken: Vec<Subnet> = routes.iter().map(|r| r.subnet).collect();
        taken.push("10.90.1.0/24".parse().unwrap());
        assert_eq!(pick(&taken), Some("10.90.2.0/24".parse().unwrap()));
        assert_eq!(pick(&["10.0.0.0/8".parse().unwrap()]), None, "every candidate overlaps");
    }
}
