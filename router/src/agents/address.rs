//! Who is asking, by address: the peer of the connection, or, when that peer is a proxy the
//! configuration trusts (`server.trusted_proxies`), the client its `X-Forwarded-For` names.
//!
//! Anyone can send `X-Forwarded-For`, so it is read only from a trusted proxy, and from
//! the right: each proxy appends the address it heard from, so the client is the last
//! address that is not a trusted proxy itself. Whatever a client wrote on the left is
//! ignored.

use std::net::IpAddr;

/// An IP network: an address and a prefix length (`10.0.0.0/8`, `::1/128`); a bare
/// address is a network of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    address: IpAddr,
    prefix: u8,
}

impl Network {
    /// `192.0.2.10`, `10.0.0.0/8`, `fd00::/8`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address
            .parse()
            .map_err(|_| format!("`{text}` is not an IP address or network (CIDR)"))?;
        let bits = bits_of(address);
        let prefix = match prefix {
            None => bits,
            Some(prefix) => prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or_else(|| format!("`{text}`: the prefix length must be 0 to {bits}"))?,
        };
        Ok(Self { address, prefix })
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        let (network, address) = match (self.address, canonical(address)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => (u128::from(n.to_bits()), u128::from(a.to_bits())),
            (IpAddr::V6(n), IpAddr::V6(a)) => (n.to_bits(), a.to_bits()),
            _ => return false,
        };
        let shift = u32::from(bits_of(self.address) - self.prefix);
        network.checked_shr(shift).unwrap_or(0) == address.checked_shr(shift).unwrap_or(0)
    }
}

fn bits_of(address: IpAddr) -> u8 {
    match address {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

/// An IPv4 address as IPv4 even when it arrives mapped into IPv6 (`::ffff:192.0.2.1`).
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The proxies whose `X-Forwarded-For` is believed. Empty (the default): none, and the
/// peer of the connection is the client.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<Network>);

impl TrustedProxies {
    pub fn new(networks: Vec<Network>) -> Self {
        Self(networks)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, address: IpAddr) -> bool {
        self.0.iter().any(|network| network.contains(address))
    }

    /// The client of a request from `peer` carrying these `X-Forwarded-For` values (in the
    /// order the headers came). From a peer that is not trusted the header counts for
    /// nothing. Otherwise the addresses are read from the right, past every trusted proxy;
    /// the first that is not one is the client. An entry that is not an address stops the
    /// walk at the proxy that wrote it; a chain of trusted proxies only ends at its first.
    pub fn client<'a>(&self, peer: IpAddr, forwarded_for: impl Iterator<Item = &'a str>) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<&str> = forwarded_for
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .filter(|hop| !hop.is_empty())
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            let Some(address) = parse_hop(hop) else {
                return client;
            };
            client = canonical(address);
            if !self.trusts(client) {
                return client;
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, perhaps with a port (`192.0.2.1:4711`,
/// `[2001:db8::1]:4711`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn proxies(networks: &[&str]) -> TrustedProxies {
        TrustedProxies::new(
            networks
                .iter()
                .map(|n| Network::parse(n).unwrap())
                .collect(),
        )
    }

    #[test]
    fn networks_parse_from_addresses_and_cidrs() {
        let lan = Network::parse("10.0.0.0/8").unwrap();
        assert!(lan.contains(ip("10.200.1.1")));
        assert!(!lan.contains(ip("11.0.0.1")));
        assert!(!lan.contains(ip("fd00::1")));
        let one = Network::parse("192.0.2.7").unwrap();
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        assert!(
            one.contains(ip("::ffff:192.0.2.7")),
            "IPv4 mapped into IPv6"
        );
        let v6 = Network::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:1::5")) && !v6.contains(ip("2001:db9::5")));
        assert!(Network::parse("0.0.0.0/0")
            .unwrap()
            .contains(ip("203.0.113.1")));
        for bad in ["", "proxy.example", "10.0.0.0/33", "::/129", "10.0.0.0/x"] {
            assert!(Network::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_from_an_untrusted_peer_counts_for_nothing() {
        let none = TrustedProxies::default();
        let peer = ip("198.51.100.9");
        assert_eq!(none.client(peer, ["203.0.113.5"].into_iter()), peer);
        let lan = proxies(&["10.0.0.0/8"]);
        assert_eq!(lan.client(peer, ["203.0.113.5"].into_iter()), peer);
    }

    #[test]
    fn the_client_is_the_last_address_that_is_not_a_trusted_proxy() {
        let lan = proxies(&["10.0.0.0/8"]);
        let proxy = ip("10.0.0.2");
        // A client that writes its own header cannot choose its address.
        let spoofed = ["1.2.3.4, 203.0.113.5"];
        assert_eq!(lan.client(proxy, spoofed.into_iter()), ip("203.0.113.5"));
        // Two proxies of ours, in two header lines.
        let chain = ["203.0.113.5", "10.0.0.9"];
        assert_eq!(lan.client(proxy, chain.into_iter()), ip("203.0.113.5"));
        assert_eq!(lan.client(proxy, std::iter::empty()), proxy);
        assert_eq!(lan.client(proxy, ["10.1.1.1"].into_iter()), ip("10.1.1.1"));
        assert_eq!(lan.client(proxy, ["garbage"].into_iter()), proxy);
        assert_eq!(
            lan.client(proxy, ["[2001:db8::1]:4711"].into_iter()),
            ip("2001:db8::1")
        );
    }
}
