//! Which addresses tickwork's outbound requests may reach.
//!
//! Job URLs are chosen by API callers, so by default tickwork refuses targets on loopback,
//! private, link-local (cloud metadata), shared (CGNAT), multicast and reserved addresses,
//! in IPv4 and IPv6, including IPv4 addresses carried inside IPv6 ones (mapped, NAT64,
//! 6to4). It checks at job creation (a literal address, or every address a name resolves
//! to) and again at every call: the worker's HTTP client resolves names through
//! [`GuardedResolver`], which checks every address and hands only checked addresses to the
//! connection, so a name that changes its answer between the check and the call (DNS
//! rebinding) is caught where it matters. `TARGET_ALLOW_CIDRS` opens chosen ranges;
//! `tickwork-local` opens everything (it is for development) and says so.
//!
//! Decimal, octal and hexadecimal spellings of IPv4 addresses (`http://2130706433/`,
//! `http://0177.0.0.1/`, `http://0x7f.1/`) are read as addresses by the URL parser, so they
//! are checked like any other literal.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

pub use crate::config::Cidr;

/// Why an address is refused: the kind of range it is in.
fn blocked_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let reason = match ip.octets() {
        [0, ..] => "a this-network address (0.0.0.0/8)",
        [127, ..] => "a loopback address",
        [10, ..] => "a private address (10.0.0.0/8)",
        [172, b, ..] if (16..=31).contains(&b) => "a private address (172.16.0.0/12)",
        [192, 168, ..] => "a private address (192.168.0.0/16)",
        [169, 254, ..] => "a link-local address (169.254.0.0/16, where cloud metadata lives)",
        [100, b, ..] if (64..=127).contains(&b) => "a shared (CGNAT) address (100.64.0.0/10)",
        [192, 0, 0, _] => "a reserved address (192.0.0.0/24)",
        [192, 88, 99, _] => "a reserved address (192.88.99.0/24, 6to4 relays)",
        [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _] => {
            "a reserved (documentation) address"
        }
        [198, 18 | 19, ..] => "a reserved (benchmarking) address (198.18.0.0/15)",
        [a, ..] if (224..=239).contains(&a) => "a multicast address",
        [a, ..] if a >= 240 => "a reserved address (240.0.0.0/4, broadcast)",
        _ => return None,
    };
    Some(reason)
}

fn blocked_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    // IPv4 carried inside IPv6: mapped (::ffff:a.b.c.d), NAT64 (64:ff9b::/96), 6to4
    // (2002:AABB:CCDD::/48) and the old compatible form (::a.b.c.d).
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if let Some(v4) = ip.to_ipv4_mapped() {
        return blocked_v4(v4);
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return blocked_v4(embedded(s[6], s[7]));
    }
    // Local-use NAT64 (64:ff9b:1::/48) and IPv4-translated (::ffff:0:a.b.c.d): the IPv4
    // address is the last 32 bits.
    if (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) || s[0..6] == [0, 0, 0, 0, 0xffff, 0] {
        return blocked_v4(embedded(s[6], s[7])).or(Some("a translated IPv4 address"));
    }
    if s[0] == 0x2002 {
        return blocked_v4(embedded(s[1], s[2]));
    }
    let reason = if ip.is_unspecified() {
        "the unspecified address"
    } else if ip.is_loopback() {
        "a loopback address"
    } else if s[0..6] == [0, 0, 0, 0, 0, 0] {
        return blocked_v4(embedded(s[6], s[7])).or(Some("a reserved IPv6 address (::/96)"));
    } else if s[0] & 0xfe00 == 0xfc00 {
        "a unique local address (fc00::/7)"
    } else if s[0] & 0xffc0 == 0xfe80 {
        "a link-local address (fe80::/10)"
    } else if s[0] & 0xffc0 == 0xfec0 {
        "a site-local address (fec0::/10)"
    } else if s[0] & 0xff00 == 0xff00 {
        "a multicast address"
    } else if s[0] == 0x2001 && s[1] == 0 {
        "a Teredo address (2001::/32), which tunnels to an IPv4 address"
    } else if s[0] == 0x2001 && s[1] == 0x0db8 {
        "a reserved (documentation) address (2001:db8::/32)"
    } else if s[0] == 0x0100 && s[1..4] == [0, 0, 0] {
        "a reserved (discard) address (100::/64)"
    } else {
        return None;
    };
    Some(reason)
}

/// An outbound address tickwork refuses to reach.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{host} is {address}, {reason}; tickwork does not call loopback, private, link-local, \
     shared or reserved addresses (TARGET_ALLOW_CIDRS opens a range)",
    address = DisplayAddress(self.address, &self.host)
)]
pub struct Refused {
    /// The host as the URL names it.
    pub host: String,
    /// The address refused.
    pub address: IpAddr,
    /// The kind of range it is in.
    pub reason: &'static str,
}

/// "127.0.0.1", or "resolves to 127.0.0.1" when the host is a name.
struct DisplayAddress<'a>(IpAddr, &'a str);

impl fmt::Display for DisplayAddress<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let literal = self
            .1
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>();
        if literal.is_ok_and(|ip| ip == self.0) {
            write!(f, "the address {}", self.0)
        } else {
            write!(f, "a name that resolves to {}", self.0)
        }
    }
}

/// Which addresses outbound requests may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetPolicy {
    guarded: bool,
    allow: Vec<Cidr>,
}

impl Default for TargetPolicy {
    /// Guarded, with nothing opened.
    fn default() -> Self {
        Self::guarded(Vec::new())
    }
}

impl TargetPolicy {
    /// Refuses the blocked ranges, except addresses in `allow`.
    pub fn guarded(allow: Vec<Cidr>) -> Self {
        Self {
            guarded: true,
            allow,
        }
    }

    /// Refuses nothing (the local runner).
    pub fn open() -> Self {
        Self {
            guarded: false,
            allow: Vec::new(),
        }
    }

    /// Whether any address is refused.
    pub fn is_guarded(&self) -> bool {
        self.guarded
    }

    /// The ranges opened in spite of the guard.
    pub fn allowed(&self) -> &[Cidr] {
        &self.allow
    }

    /// Why `ip` may not be reached, or `None` when it may.
    pub fn refuses(&self, ip: IpAddr) -> Option<&'static str> {
        if !self.guarded || self.allow.iter().any(|range| range.contains(ip)) {
            return None;
        }
        match ip {
            IpAddr::V4(v4) => blocked_v4(v4),
            IpAddr::V6(v6) => blocked_v6(v6),
        }
    }

    /// Checks every address in `addresses` (those of `host`).
    pub fn check_all(
        &self,
        host: &str,
        addresses: impl IntoIterator<Item = IpAddr>,
    ) -> Result<(), Refused> {
        for address in addresses {
            if let Some(reason) = self.refuses(address) {
                return Err(Refused {
                    host: host.to_string(),
                    address,
                    reason,
                });
            }
        }
        Ok(())
    }

    /// Checks a URL's host: a literal address directly, a name by resolving it and checking
    /// every address. A name that does not resolve now passes (the call checks again).
    pub async fn check_url(&self, url: &url::Url) -> Result<(), Refused> {
        if !self.guarded {
            return Ok(());
        }
        let host = url.host_str().unwrap_or_default();
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.check_all(host, [IpAddr::V4(ip)]),
            Some(url::Host::Ipv6(ip)) => self.check_all(host, [IpAddr::V6(ip)]),
            Some(url::Host::Domain(name)) => {
                if let Some(address) = fixed_address(name) {
                    return self.check_all(host, [address]);
                }
                let port = url.port_or_known_default().unwrap_or(80);
                match tokio::net::lookup_host((name, port)).await {
                    Ok(addresses) => self.check_all(host, addresses.map(|a| a.ip())),
                    Err(_) => Ok(()),
                }
            }
            None => Ok(()),
        }
    }
}

/// Wildcard-DNS services that answer a name with the address written in it
/// (`10.0.0.1.nip.io`, `app-10-0-0-1.sslip.io`, `0a000001.nip.io`, `--1.sslip.io`).
pub const ADDRESS_IN_NAME_DOMAINS: [&str; 4] = ["nip.io", "sslip.io", "xip.io", "traefik.me"];

/// Names that always stand for 127.0.0.1 whatever DNS says: `localhost` and names under it
/// (RFC 6761), and public names that resolve to it for local development.
pub const LOOPBACK_DOMAINS: [&str; 3] = ["localhost", "localtest.me", "lvh.me"];

/// Cloud metadata services' names (169.254.169.254).
pub const METADATA_NAMES: [&str; 2] = ["metadata.google.internal", "metadata"];

/// The address a host name can only stand for, known without asking DNS (which may not
/// answer when the job is stored, and answers the worker later): see [`LOOPBACK_DOMAINS`],
/// [`METADATA_NAMES`] and [`ADDRESS_IN_NAME_DOMAINS`]. A trailing dot and letter case do
/// not matter.
pub fn fixed_address(name: &str) -> Option<IpAddr> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let under = |domain: &str| -> Option<String> {
        if name == domain {
            return Some(String::new());
        }
        name.strip_suffix(domain)?
            .strip_suffix('.')
            .map(str::to_owned)
    };
    if LOOPBACK_DOMAINS
        .iter()
        .any(|domain| under(domain).is_some())
    {
        return Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    if METADATA_NAMES.contains(&name.as_str()) {
        return Some(IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)));
    }
    ADDRESS_IN_NAME_DOMAINS
        .iter()
        .find_map(|domain| under(domain))
        .and_then(|labels| address_in_labels(&labels))
}

/// The address written in the labels before a wildcard-DNS domain: the last four labels
/// (`a.10.0.0.1`), the last four dash-separated parts of the last label (`a-10-0-0-1`),
/// eight hex digits (`0a000001`), or an IPv6 address with dashes for colons (`fd00--1`).
fn address_in_labels(labels: &str) -> Option<IpAddr> {
    let labels: Vec<&str> = labels.split('.').collect();
    if let Some(last_four) = labels.len().checked_sub(4).map(|at| &labels[at..]) {
        if let Ok(v4) = last_four.join(".").parse::<Ipv4Addr>() {
            return Some(IpAddr::V4(v4));
        }
    }
    let last = labels.last()?;
    let parts: Vec<&str> = last.split('-').collect();
    if let Some(last_four) = parts.len().checked_sub(4).map(|at| &parts[at..]) {
        if let Ok(v4) = last_four.join(".").parse::<Ipv4Addr>() {
            return Some(IpAddr::V4(v4));
        }
    }
    let hex = parts.last()?;
    if hex.len() == 8 {
        if let Ok(bits) = u32::from_str_radix(hex, 16) {
            return Some(IpAddr::V4(Ipv4Addr::from(bits)));
        }
    }
    last.replace('-', ":")
        .parse::<Ipv6Addr>()
        .ok()
        .map(IpAddr::V6)
}

/// The worker's DNS resolver: resolves with the system resolver, refuses the whole answer
/// when any address is blocked, and hands the checked addresses to the connection.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    policy: TargetPolicy,
}

impl GuardedResolver {
    /// A resolver enforcing `policy`.
    pub fn new(policy: TargetPolicy) -> Self {
        Self { policy }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            policy.check_all(&host, addresses.iter().map(SocketAddr::ip))?;
            let addresses: reqwest::dns::Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

/// The refusal inside an error chain, if the guard is what stopped a request.
pub fn refusal_in<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refused> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(refused) = e.downcast_ref::<Refused>() {
            return Some(refused);
        }
        current = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(raw: &str) -> bool {
        TargetPolicy::default()
            .refuses(raw.parse().expect("address"))
            .is_some()
    }

    #[test]
    fn names_that_can_only_be_one_address_are_known_without_dns() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        for (name, address) in [
            ("localhost.", ip("127.0.0.1")),
            ("LocalHost", ip("127.0.0.1")),
            ("api.localhost", ip("127.0.0.1")),
            ("x.localtest.me", ip("127.0.0.1")),
            ("metadata.google.internal.", ip("169.254.169.254")),
            ("10.0.0.1.nip.io", ip("10.0.0.1")),
            ("app.192.168.1.1.nip.io.", ip("192.168.1.1")),
            ("app-10-1-2-3.sslip.io", ip("10.1.2.3")),
            ("0a000001.nip.io", ip("10.0.0.1")),
            ("app-7f000001.nip.io", ip("127.0.0.1")),
            ("fd00--1.sslip.io", ip("fd00::1")),
            ("--1.sslip.io", ip("::1")),
            ("8.8.8.8.nip.io", ip("8.8.8.8")),
            ("nip.io", None),
            ("example.nip.io", None),
            ("notlocalhost", None),
            ("localhost.example.com", None),
            ("example.com", None),
        ] {
            assert_eq!(fixed_address(name), address, "{name}");
        }
    }

    #[test]
    fn every_blocked_range_is_refused_and_public_addresses_pass() {
        for blocked in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.255.255.254",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::7f00:1",
            "2002:7f00:1::1",
            "::127.0.0.1",
            "2001:db8::1",
            "64:ff9b:1::a9fe:a9fe",
            "::ffff:0:a9fe:a9fe",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "192.88.99.1",
        ] {
            assert!(refused(blocked), "{blocked} should be refused");
        }
        for open in [
            "1.1.1.1",
            "8.8.8.8",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "169.253.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(!refused(open), "{open} should pass");
        }
    }

    #[test]
    fn the_allow_list_opens_ranges_and_the_open_policy_refuses_nothing() {
        let policy = TargetPolicy::guarded(vec![
            "127.0.0.0/8".parse().unwrap(),
            "fd00::/8".parse().unwrap(),
        ]);
        assert_eq!(policy.refuses("127.0.0.1".parse().unwrap()), None);
        assert_eq!(policy.refuses("::ffff:127.0.0.1".parse().unwrap()), None);
        assert_eq!(policy.refuses("fd00::5".parse().unwrap()), None);
        assert!(policy.refuses("10.0.0.1".parse().unwrap()).is_some());
        assert!(policy.refuses("::1".parse().unwrap()).is_some());
        assert_eq!(
            TargetPolicy::open().refuses("169.254.169.254".parse().unwrap()),
            None
        );
    }

    #[test]
    fn ranges_parse_and_bad_ones_say_why() {
        let single: Cidr = "10.1.2.3".parse().unwrap();
        assert!(single.contains("10.1.2.3".parse().unwrap()));
        assert!(!single.contains("10.1.2.4".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.9".parse().unwrap()));
        assert!("10.0.0.0/33"
            .parse::<Cidr>()
            .unwrap_err()
            .contains("prefix"));
        assert!("localhost/8"
            .parse::<Cidr>()
            .unwrap_err()
            .contains("not an address range"));
    }

    #[tokio::test]
    async fn odd_spellings_of_loopback_are_literal_addresses_and_refused() {
        let policy = TargetPolicy::default();
        for raw in [
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://0x7f.1/",
            "http://0x7f000001/",
            "http://127.1/",
            "http://[::ffff:7f00:1]/",
            "http://[0:0:0:0:0:ffff:127.0.0.1]/",
        ] {
            let url = url::Url::parse(raw).unwrap();
            let refused = policy.check_url(&url).await.expect_err(raw);
            assert!(refused.to_string().contains("loopback"), "{raw}: {refused}");
        }
        let url = url::Url::parse("http://169.254.169.254/latest/meta-data/").unwrap();
        let message = policy.check_url(&url).await.unwrap_err().to_string();
        assert!(message.contains("the address 169.254.169.254"), "{message}");
        assert!(message.contains("link-local"), "{message}");
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused() {
        let url = url::Url::parse("http://localhost:9/").unwrap();
        let message = TargetPolicy::default()
            .check_url(&url)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with("localhost is a name that resolves to "),
            "{message}"
        );
    }
}
