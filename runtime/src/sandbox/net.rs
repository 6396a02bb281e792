//! The network allow list: the single source of truth for where a plugin may
//! connect, used by wasi:http and wasi:sockets alike (enforced in
//! `outbound.rs`).
//!
//! A destination is checked twice:
//!
//! 1. [`NetPolicy::allows_host`], by the name the guest asked for, before any
//!    DNS lookup, so a guest cannot even make ward resolve names it was not
//!    granted;
//! 2. [`NetPolicy::allows_addr`], by the address that name resolved to, just
//!    before connecting. This guards against DNS rebinding and hostile
//!    records: a granted `evil.example` that resolves to `127.0.0.1`, a
//!    private or link-local address (the cloud metadata service at
//!    `169.254.169.254`) is refused unless that very IP is listed.
//!
//! Entries are exact host names (case-insensitive, a trailing dot ignored),
//! `*.suffix` wildcards (any subdomain at any depth, not the bare suffix), and
//! IPv4 or IPv6 literals, each with an optional `:port` (no port: any port).
//! IPv6 with a port is written `[::1]:9000`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// Where a plugin may connect. Empty (the default) denies everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetPolicy {
    entries: Vec<AllowEntry>,
}

/// One entry of `[network] allow`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowEntry {
    /// Which hosts the entry matches.
    pub host: HostPattern,
    /// The one port it allows; `None` allows every port.
    pub port: Option<u16>,
}

/// The host part of an [`AllowEntry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// Exactly this host name (lowercase, without a trailing dot).
    Name(String),
    /// Any subdomain of this suffix, at any depth, but not the suffix itself
    /// (`*.example.org` matches `a.example.org` and `a.b.example.org`, not
    /// `example.org`). Stored lowercase, without the `*.`.
    Subdomains(String),
    /// This address (IPv4-mapped IPv6 addresses are stored as IPv4).
    Ip(IpAddr),
}

/// Why an allow-list entry is invalid; its `Display` says what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowEntryError(String);

impl fmt::Display for AllowEntryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AllowEntryError {}

fn bad(message: impl Into<String>) -> AllowEntryError {
    AllowEntryError(message.into())
}

impl FromStr for AllowEntry {
    type Err = AllowEntryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const FORM: &str =
            r#"expected "host", "host:port", "*.domain", an IP address or "[IPv6]:port""#;
        let fail = |why: &str| Err(bad(format!("{FORM}, found {s:?} ({why})")));
        if s.is_empty() {
            return Err(bad(format!("{FORM}, found an empty string")));
        }
        if s.chars().any(char::is_whitespace) {
            return fail("it contains whitespace");
        }
        if let Some((_, rest)) = s.split_once("://") {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
            return fail(&format!(
                "a URL; write only the host and port, such as {authority:?}"
            ));
        }
        if s.contains('/') {
            return fail("paths and CIDR ranges are not supported");
        }
        let (host, port) = match split_host_port(s) {
            Ok(parts) => parts,
            Err(why) => return fail(&why),
        };
        let host = if let Some(ip) = host.ip {
            if ip.is_unspecified() {
                return fail("the unspecified address reaches every local service; list the address you mean, such as 127.0.0.1");
            }
            HostPattern::Ip(ip)
        } else if let Some(suffix) = host.text.strip_prefix("*.") {
            if suffix.is_empty() || suffix == "." {
                return fail("a wildcard needs a domain after \"*.\"");
            }
            match valid_name(suffix) {
                Ok(suffix) => HostPattern::Subdomains(suffix),
                Err(why) => return fail(&why),
            }
        } else if host.text == "*" {
            return fail("\"*\" alone would allow every host; list hosts or \"*.domain\"");
        } else if host.text.contains('*') {
            return fail("a wildcard may only be a leading \"*.\"");
        } else {
            match valid_name(host.text) {
                Ok(name) => HostPattern::Name(name),
                Err(why) => return fail(&why),
            }
        };
        Ok(AllowEntry { host, port })
    }
}

impl fmt::Display for AllowEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.host, self.port) {
            (HostPattern::Ip(IpAddr::V6(ip)), Some(port)) => write!(f, "[{ip}]:{port}"),
            (host, Some(port)) => write!(f, "{host}:{port}"),
            (host, None) => write!(f, "{host}"),
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPattern::Name(name) => f.write_str(name),
            HostPattern::Subdomains(suffix) => write!(f, "*.{suffix}"),
            HostPattern::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

struct HostPart<'a> {
    text: &'a str,
    ip: Option<IpAddr>,
}

/// Splits `host[:port]`, `[v6][:port]` or a bare IPv6 literal.
fn split_host_port(s: &str) -> Result<(HostPart<'_>, Option<u16>), String> {
    if let Some(rest) = s.strip_prefix('[') {
        let (inside, after) = rest
            .split_once(']')
            .ok_or("missing \"]\" after an IPv6 address")?;
        let ip: Ipv6Addr = inside
            .parse()
            .map_err(|_| format!("{inside:?} is not an IPv6 address"))?;
        let port = match after {
            "" => None,
            _ => Some(parse_port(
                after
                    .strip_prefix(':')
                    .ok_or("expected \":port\" after \"]\"")?,
            )?),
        };
        return Ok((
            HostPart {
                text: inside,
                ip: Some(canonical(IpAddr::V6(ip))),
            },
            port,
        ));
    }
    if let Ok(ip) = s.parse::<Ipv6Addr>() {
        return Ok((
            HostPart {
                text: s,
                ip: Some(canonical(IpAddr::V6(ip))),
            },
            None,
        ));
    }
    if s.matches(':').count() > 1 {
        return Err("an IPv6 address with a port must be written \"[address]:port\"".into());
    }
    let (text, port) = match s.rsplit_once(':') {
        Some((host, port)) => (host, Some(parse_port(port)?)),
        None => (s, None),
    };
    if text.is_empty() {
        return Err("missing host".into());
    }
    let ip = text.parse::<Ipv4Addr>().ok().map(IpAddr::V4);
    Ok((HostPart { text, ip }, port))
}

fn parse_port(port: &str) -> Result<u16, String> {
    match port.parse::<u16>() {
        Ok(p) if p > 0 && port.bytes().all(|b| b.is_ascii_digit()) => Ok(p),
        _ => Err(format!("port {port:?} is not a number from 1 to 65535")),
    }
}

/// Validates and normalises a host name: ASCII letters, digits, `-` and `_`
/// in dot-separated labels of 1 to 63 characters, 253 in all; lowercase,
/// without a trailing dot. A name whose last label is all digits is refused:
/// resolvers read such names as numeric IPv4 forms (`2130706433` is
/// 127.0.0.1), which are not host names.
fn valid_name(name: &str) -> Result<String, String> {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    if name.is_empty() || name.len() > 253 {
        return Err("a host name must have 1 to 253 characters".into());
    }
    if !name.is_ascii() {
        return Err(
            "a host name must be ASCII (write internationalised names in their xn-- form)".into(),
        );
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!(
                "host name label {label:?} must have 1 to 63 characters"
            ));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "host name label {label:?} may contain only letters, digits, \"-\" and \"_\""
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "host name label {label:?} may not start or end with \"-\""
            ));
        }
    }
    if name
        .rsplit('.')
        .next()
        .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(
            "not a valid IPv4 address, and a host name may not end in a numeric label".into(),
        );
    }
    Ok(name)
}

/// Normalises a host the guest asked for: brackets, a trailing dot and case
/// do not matter.
fn normalise_host(host: &str) -> String {
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let host = host.strip_suffix('.').unwrap_or(host);
    host.to_ascii_lowercase()
}

impl NetPolicy {
    /// A policy allowing exactly these entries.
    pub fn new(entries: Vec<AllowEntry>) -> Self {
        Self { entries }
    }

    /// Parses an allow list; on failure, every invalid entry with its index.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, Vec<(usize, AllowEntryError)>> {
        let mut ok = Vec::new();
        let mut errors = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            match entry.as_ref().parse() {
                Ok(entry) => ok.push(entry),
                Err(e) => errors.push((i, e)),
            }
        }
        if errors.is_empty() {
            Ok(Self::new(ok))
        } else {
            Err(errors)
        }
    }

    /// The entries, in the order they were listed.
    pub fn entries(&self) -> &[AllowEntry] {
        &self.entries
    }

    /// True when nothing at all is allowed (no `[network] allow` entries).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// May the guest connect to `host` (the name or IP literal it asked for,
    /// before any DNS lookup) on `port`? Names match name and wildcard
    /// entries; IP literals match IP entries only.
    pub fn allows_host(&self, host: &str, port: u16) -> bool {
        self.matches_host(&normalise_host(host), Some(port))
    }

    /// Does an entry match the normalised `host`, on `port` (`None`: on any
    /// port)?
    fn matches_host(&self, host: &str, port: Option<u16>) -> bool {
        let ip = host.parse::<IpAddr>().ok().map(canonical);
        self.entries
            .iter()
            .filter(|e| port.is_none_or(|port| e.port.is_none_or(|p| p == port)))
            .any(|e| match (&e.host, ip) {
                (HostPattern::Ip(allowed), Some(ip)) => *allowed == ip,
                (HostPattern::Name(name), None) => *name == host,
                (HostPattern::Subdomains(suffix), None) => {
                    host.len() > suffix.len() + 1
                        && host.ends_with(suffix.as_str())
                        && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
                }
                _ => false,
            })
    }

    /// May the guest connect to `addr`, which `host` (if known) resolved to?
    /// Checked after resolution and before connecting.
    ///
    /// An address listed literally (with a matching or no port) is allowed.
    /// Otherwise a non-public address (loopback, private, link-local, CGNAT,
    /// unspecified, multicast, broadcast, reserved, or an IPv6 form embedding
    /// one of these; see [`AddrClass::of`]) is refused whatever name led to it,
    /// and a public address is allowed only if `host` is allowed by name.
    /// With no `host` (wasi:sockets, which connects by address), only listed
    /// addresses are allowed.
    pub fn allows_addr(&self, host: Option<&str>, addr: SocketAddr) -> bool {
        self.allows_ip(host, addr.ip(), Some(addr.port()))
    }

    /// [`Self::allows_addr`] on `port`, or on any port when `None`.
    fn allows_ip(&self, host: Option<&str>, ip: IpAddr, port: Option<u16>) -> bool {
        let ip = canonical(ip);
        let listed = self.entries.iter().any(|e| {
            port.is_none_or(|port| e.port.is_none_or(|p| p == port))
                && e.host == HostPattern::Ip(ip)
        });
        if listed {
            return true;
        }
        AddrClass::of(ip) == AddrClass::Public
            && host.is_some_and(|h| self.matches_host(&normalise_host(h), port))
    }

    /// The name to send to the resolver when the guest asks to look up
    /// `name`, or why not. A query name is data that leaves the host (to
    /// whoever runs the resolver, or the zone's servers), and an answer tells
    /// the guest what the host can see; so only a syntactically valid name
    /// that some entry grants (on any port) is looked up, in its normal form.
    pub fn lookup_name(&self, name: &str) -> Result<String, LookupRefusal> {
        let normal = normalise_host(name);
        match valid_name(&normal) {
            Ok(normal) if self.matches_host(&normal, None) => Ok(normal),
            Ok(_) => Err(LookupRefusal::NotGranted),
            Err(_) => Err(LookupRefusal::Invalid),
        }
    }

    /// May the guest learn that `name` (granted, see [`Self::lookup_name`])
    /// resolves to `ip`? The same rule as [`Self::allows_addr`], on any port:
    /// an answer pointing a granted name at loopback or a private network is
    /// withheld unless that address is listed.
    pub fn allows_resolved(&self, name: &str, ip: IpAddr) -> bool {
        self.allows_ip(Some(name), ip, None)
    }
}

/// Why [`NetPolicy::lookup_name`] refused a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupRefusal {
    /// No entry grants it.
    NotGranted,
    /// It is not a valid host name (so no entry could grant it).
    Invalid,
}

/// Turns an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) into its IPv4 form,
/// so both spellings of one address compare equal.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

/// What kind of destination an address is. Only [`AddrClass::Public`]
/// addresses are reachable through a host-name grant; every other class
/// reaches the host itself, its network, or nothing sensible, and must be
/// listed literally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrClass {
    /// Globally routable unicast.
    Public,
    /// The host itself: 127.0.0.0/8, ::1.
    Loopback,
    /// A private network: 10/8, 172.16/12, 192.168/16, fc00::/7 (unique
    /// local), fec0::/10 (old site-local).
    Private,
    /// The local link: 169.254/16 (including cloud metadata services),
    /// fe80::/10.
    LinkLocal,
    /// Carrier-grade NAT space, 100.64/10: an ISP's or cloud's internal
    /// network.
    SharedAddressSpace,
    /// 0.0.0.0 or ::, which Linux connects to the host itself.
    Unspecified,
    /// 224/4, ff00::/8.
    Multicast,
    /// 255.255.255.255.
    Broadcast,
    /// Anything else that is not global unicast: 0/8, 240/4, documentation
    /// and benchmarking ranges, IETF protocol assignments, Teredo, and IPv6
    /// outside 2000::/3.
    Reserved,
}

impl fmt::Display for AddrClass {
    /// As a refusal names it: "127.0.0.1, a loopback address".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddrClass::Public => "a public address",
            AddrClass::Loopback => "a loopback address",
            AddrClass::Private => "a private-network address",
            AddrClass::LinkLocal => "a link-local address",
            AddrClass::SharedAddressSpace => "a carrier-grade NAT address",
            AddrClass::Unspecified => "the unspecified address",
            AddrClass::Multicast => "a multicast address",
            AddrClass::Broadcast => "the broadcast address",
            AddrClass::Reserved => "a reserved address",
        })
    }
}

impl AddrClass {
    /// The class of an IP address. IPv6 forms that embed an IPv4 address
    /// (mapped `::ffff:0:0/96`, compatible `::/96`, NAT64 `64:ff9b::/96`,
    /// 6to4 `2002::/16`) take the class of the embedded address when that is
    /// not public, so `::ffff:127.0.0.1` is loopback.
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => v4_class(v4),
            IpAddr::V6(v6) => v6_class(v6),
        }
    }
}

fn v4_class(ip: Ipv4Addr) -> AddrClass {
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        _ if ip.is_unspecified() => AddrClass::Unspecified,
        _ if ip.is_broadcast() => AddrClass::Broadcast,
        (127, ..) => AddrClass::Loopback,
        (10, ..) | (192, 168, _) => AddrClass::Private,
        (172, b, _) if (16..32).contains(&b) => AddrClass::Private,
        (169, 254, _) => AddrClass::LinkLocal,
        (100, b, _) if (64..128).contains(&b) => AddrClass::SharedAddressSpace,
        (224..=239, ..) => AddrClass::Multicast,
        (0, ..) | (240..=255, ..) => AddrClass::Reserved,
        // IETF protocol assignments, documentation, 6to4 relay anycast,
        // benchmarking.
        (192, 0, 0) | (192, 0, 2) | (198, 51, 100) | (203, 0, 113) | (192, 88, 99) => {
            AddrClass::Reserved
        }
        (198, 18 | 19, _) => AddrClass::Reserved,
        _ => AddrClass::Public,
    }
}

fn v6_class(ip: Ipv6Addr) -> AddrClass {
    let s = ip.segments();
    let low_v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if ip.is_unspecified() {
        return AddrClass::Unspecified;
    }
    if ip.is_loopback() {
        return AddrClass::Loopback;
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_class(v4);
    }
    match s {
        // IPv4-compatible (deprecated, never routed): ::a.b.c.d.
        [0, 0, 0, 0, 0, 0, ..] => AddrClass::Reserved,
        // NAT64 well-known prefix: the gateway connects to the embedded IPv4.
        [0x64, 0xff9b, 0, 0, 0, 0, ..] => v4_class(low_v4),
        // Local-use NAT64 (RFC 8215): a private translator.
        [0x64, 0xff9b, 1, ..] => AddrClass::Private,
        // 6to4: the embedded IPv4 is in segments 1 and 2.
        [0x2002, hi, lo, ..] => v4_class(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        )),
        [first, ..] if first & 0xff00 == 0xff00 => AddrClass::Multicast,
        [first, ..] if first & 0xfe00 == 0xfc00 => AddrClass::Private,
        [first, ..] if first & 0xffc0 == 0xfe80 => AddrClass::LinkLocal,
        [first, ..] if first & 0xffc0 == 0xfec0 => AddrClass::Private,
        // Teredo, benchmarking, documentation (2001:db8::/32, 3fff::/20).
        [0x2001, 0, ..] | [0x2001, 2, 0, ..] | [0x2001, 0xdb8, ..] => AddrClass::Reserved,
        [first, ..] if first & 0xfff0 == 0x3ff0 => AddrClass::Reserved,
        [first, ..] if first & 0xe000 == 0x2000 => AddrClass::Public,
        _ => AddrClass::Reserved,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(entries: &[&str]) -> NetPolicy {
        NetPolicy::parse(entries).unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn empty_denies_everything() {
        let p = NetPolicy::default();
        assert!(p.is_empty());
        assert!(!p.allows_host("example.com", 443));
        assert!(!p.allows_addr(Some("example.com"), addr("93.184.216.34:443")));
        assert!(!p.allows_addr(None, addr("127.0.0.1:80")));
    }

    #[test]
    fn exact_names_are_case_insensitive_and_ignore_a_trailing_dot() {
        let p = policy(&["API.Example.com."]);
        assert!(!p.is_empty());
        assert!(p.allows_host("api.example.com", 443));
        assert!(p.allows_host("API.EXAMPLE.COM.", 1));
        assert!(!p.allows_host("example.com", 443));
        assert!(!p.allows_host("x.api.example.com", 443));
        assert!(!p.allows_host("api.example.com.evil", 443));
        assert!(!p.allows_host("evilapi.example.com", 443));
    }

    #[test]
    fn ports() {
        let p = policy(&["api.example.com:443", "any.example.com"]);
        assert!(p.allows_host("api.example.com", 443));
        assert!(!p.allows_host("api.example.com", 80));
        assert!(p.allows_host("any.example.com", 80));
        assert!(p.allows_host("any.example.com", 8443));
    }

    #[test]
    fn wildcards_match_subdomains_at_any_depth_but_not_the_suffix() {
        let p = policy(&["*.example.org"]);
        assert!(p.allows_host("a.example.org", 443));
        assert!(p.allows_host("a.b.c.EXAMPLE.org.", 80));
        assert!(!p.allows_host("example.org", 443));
        assert!(!p.allows_host("badexample.org", 443));
        assert!(!p.allows_host(".example.org", 443));
        assert!(!p.allows_host("example.org.evil.com", 443));
        let p = policy(&["*.example.org:8080"]);
        assert!(p.allows_host("a.example.org", 8080));
        assert!(!p.allows_host("a.example.org", 443));
    }

    #[test]
    fn ip_literals_match_only_ip_hosts() {
        let p = policy(&["10.0.0.5:8080", "[::1]:9000", "2001:4860::8888"]);
        assert!(p.allows_host("10.0.0.5", 8080));
        assert!(!p.allows_host("10.0.0.5", 8081));
        assert!(p.allows_host("[::1]", 9000));
        assert!(p.allows_host("::1", 9000));
        assert!(!p.allows_host("::1", 9001));
        assert!(p.allows_host("2001:4860:0:0::8888", 1));
        assert!(p.allows_addr(None, addr("10.0.0.5:8080")));
        assert!(p.allows_addr(None, addr("[::1]:9000")));
        assert!(!p.allows_addr(None, addr("[::1]:9001")));
        assert!(p.allows_addr(None, addr("[2001:4860::8888]:53")));
        // A name never matches an IP entry by accident.
        assert!(!policy(&["example.com"]).allows_host("93.184.216.34", 80));
    }

    #[test]
    fn a_granted_name_resolving_to_loopback_is_refused() {
        let p = policy(&["evil.example", "*.evil.example"]);
        assert!(p.allows_host("evil.example", 80));
        assert!(!p.allows_addr(Some("evil.example"), addr("127.0.0.1:80")));
        assert!(!p.allows_addr(Some("a.evil.example"), addr("10.1.2.3:80")));
        assert!(!p.allows_addr(Some("evil.example"), addr("169.254.169.254:80")));
        assert!(!p.allows_addr(Some("evil.example"), addr("100.100.1.1:80")));
        assert!(!p.allows_addr(Some("evil.example"), addr("[::ffff:127.0.0.1]:80")));
        assert!(!p.allows_addr(Some("evil.example"), addr("[::ffff:192.168.0.1]:80")));
        assert!(!p.allows_addr(Some("evil.example"), addr("[fe80::1]:80")));
        assert!(!p.allows_addr(Some("evil.example"), addr("[fd00::1]:80")));
        assert!(!p.allows_addr(Some("evil.example"), addr("0.0.0.0:80")));
        assert!(!p.allows_addr(Some("evil.example"), addr("[::]:80")));
        assert!(!p.allows_addr(Some("evil.example"), addr("[64:ff9b::7f00:1]:80")));
        assert!(!p.allows_addr(Some("evil.example"), addr("[2002:a00:1::]:80")));
        // A public address is fine for a granted name, not for another name.
        assert!(p.allows_addr(Some("evil.example"), addr("93.184.216.34:80")));
        assert!(p.allows_addr(Some("evil.example"), addr("[2606:2800:220:1::1]:80")));
        assert!(!p.allows_addr(Some("other.example"), addr("93.184.216.34:80")));
        assert!(!p.allows_addr(None, addr("93.184.216.34:80")));
    }

    #[test]
    fn an_explicitly_listed_loopback_address_is_allowed() {
        let p = policy(&["127.0.0.1:8080", "localhost:8080"]);
        assert!(p.allows_addr(Some("localhost"), addr("127.0.0.1:8080")));
        assert!(p.allows_addr(None, addr("127.0.0.1:8080")));
        assert!(
            p.allows_addr(None, addr("[::ffff:127.0.0.1]:8080")),
            "mapped form of a listed address"
        );
        assert!(!p.allows_addr(None, addr("127.0.0.1:8081")), "port");
        assert!(
            !p.allows_addr(Some("localhost"), addr("127.0.0.2:8080")),
            "another loopback address"
        );
        // Listing the mapped form lists the IPv4 address.
        let p = policy(&["[::ffff:10.0.0.5]:80"]);
        assert_eq!(
            p.entries()[0].host,
            HostPattern::Ip("10.0.0.5".parse().unwrap())
        );
        assert!(p.allows_addr(None, addr("10.0.0.5:80")));
    }

    #[test]
    fn only_granted_names_are_looked_up() {
        let p = policy(&["api.example.com:443", "*.corp.example", "10.0.0.5"]);
        assert_eq!(
            p.lookup_name("API.example.com."),
            Ok("api.example.com".into())
        );
        assert_eq!(
            p.lookup_name("db.eu.corp.example"),
            Ok("db.eu.corp.example".into())
        );
        for name in [
            "c2VjcmV0.attacker.example",
            "localhost",
            "example.com",
            "corp.example",
        ] {
            assert_eq!(
                p.lookup_name(name),
                Err(LookupRefusal::NotGranted),
                "{name}"
            );
        }
        for name in [
            "",
            "a b.corp.example",
            "x\0.corp.example",
            "bücher.corp.example",
            "1.2.3.4",
        ] {
            assert_eq!(p.lookup_name(name), Err(LookupRefusal::Invalid), "{name}");
        }
        assert_eq!(
            NetPolicy::default().lookup_name("api.example.com"),
            Err(LookupRefusal::NotGranted)
        );
    }

    #[test]
    fn a_granted_name_s_answers_are_classified() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let p = policy(&["localhost:8080", "api.example.com:443"]);
        assert!(!p.allows_resolved("localhost", ip("127.0.0.1")));
        assert!(!p.allows_resolved("api.example.com", ip("10.0.0.1")));
        assert!(!p.allows_resolved("api.example.com", ip("::ffff:169.254.169.254")));
        assert!(p.allows_resolved("api.example.com", ip("93.184.216.34")));
        // Listed on some port: the answer may be shown; connects check the port.
        let p = policy(&["localhost:8080", "127.0.0.1:8080"]);
        assert!(p.allows_resolved("localhost", ip("127.0.0.1")));
        assert!(!p.allows_resolved("localhost", ip("::1")));
    }

    #[test]
    fn classification() {
        let c = |s: &str| AddrClass::of(s.parse().unwrap());
        assert_eq!(c("8.8.8.8"), AddrClass::Public);
        assert_eq!(c("127.0.0.53"), AddrClass::Loopback);
        assert_eq!(c("10.0.0.1"), AddrClass::Private);
        assert_eq!(c("172.16.0.1"), AddrClass::Private);
        assert_eq!(c("172.31.255.255"), AddrClass::Private);
        assert_eq!(c("172.32.0.1"), AddrClass::Public);
        assert_eq!(c("192.168.1.1"), AddrClass::Private);
        assert_eq!(c("169.254.169.254"), AddrClass::LinkLocal);
        assert_eq!(c("100.64.0.1"), AddrClass::SharedAddressSpace);
        assert_eq!(c("100.127.255.255"), AddrClass::SharedAddressSpace);
        assert_eq!(c("100.128.0.1"), AddrClass::Public);
        assert_eq!(c("0.0.0.0"), AddrClass::Unspecified);
        assert_eq!(c("0.1.2.3"), AddrClass::Reserved);
        assert_eq!(c("224.0.0.1"), AddrClass::Multicast);
        assert_eq!(c("255.255.255.255"), AddrClass::Broadcast);
        assert_eq!(c("240.0.0.1"), AddrClass::Reserved);
        assert_eq!(c("192.0.2.1"), AddrClass::Reserved);
        assert_eq!(c("198.18.0.1"), AddrClass::Reserved);
        assert_eq!(c("::1"), AddrClass::Loopback);
        assert_eq!(c("::"), AddrClass::Unspecified);
        assert_eq!(c("::ffff:127.0.0.1"), AddrClass::Loopback);
        assert_eq!(c("::ffff:169.254.169.254"), AddrClass::LinkLocal);
        assert_eq!(c("::ffff:8.8.8.8"), AddrClass::Public);
        assert_eq!(c("::127.0.0.1"), AddrClass::Reserved);
        assert_eq!(c("64:ff9b::8.8.8.8"), AddrClass::Public);
        assert_eq!(c("64:ff9b::10.0.0.1"), AddrClass::Private);
        assert_eq!(c("2002:7f00:1::1"), AddrClass::Loopback);
        assert_eq!(c("fc00::1"), AddrClass::Private);
        assert_eq!(c("fdff::1"), AddrClass::Private);
        assert_eq!(c("fe80::1"), AddrClass::LinkLocal);
        assert_eq!(c("fec0::1"), AddrClass::Private);
        assert_eq!(c("ff02::1"), AddrClass::Multicast);
        assert_eq!(c("2001:db8::1"), AddrClass::Reserved);
        assert_eq!(c("2001::1"), AddrClass::Reserved);
        assert_eq!(c("2606:4700::1111"), AddrClass::Public);
        assert_eq!(c("4000::1"), AddrClass::Reserved);
    }

    #[test]
    fn entries_parse_and_display() {
        for (input, shown) in [
            ("api.example.com:443", "api.example.com:443"),
            ("*.Example.org", "*.example.org"),
            ("10.0.0.5:8080", "10.0.0.5:8080"),
            ("[::1]:9000", "[::1]:9000"),
            ("[::1]", "::1"),
            ("::1", "::1"),
            ("localhost", "localhost"),
            ("under_score.example", "under_score.example"),
        ] {
            let entry: AllowEntry = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(entry.to_string(), shown);
        }
    }

    #[test]
    fn invalid_entries() {
        for (input, says) in [
            ("", "empty"),
            ("*", "every host"),
            ("*:443", "every host"),
            ("*.", "domain after"),
            ("*.:80", "domain after"),
            ("a.*.example", "leading"),
            ("example.com:0", "port"),
            ("example.com:65536", "port"),
            ("example.com:http", "port"),
            ("example.com:+80", "port"),
            ("example.com:", "port"),
            (":80", "missing host"),
            ("example .com", "whitespace"),
            (" example.com", "whitespace"),
            (
                "https://example.com/x",
                "URL; write only the host and port, such as \"example.com\"",
            ),
            ("example.com/path", "CIDR"),
            ("10.0.0.0/8", "CIDR"),
            ("[::1]9000", ":port"),
            ("[::1", "]"),
            ("[example.com]:80", "IPv6"),
            ("0.0.0.0", "unspecified"),
            ("[::]:80", "unspecified"),
            ("2130706433", "numeric"),
            ("1.2.3.4.5", "numeric"),
            ("-bad.example", "start or end"),
            ("a..b", "1 to 63"),
            ("exa$mple.com", "only letters"),
            ("bücher.example", "xn--"),
        ] {
            match input.parse::<AllowEntry>() {
                Ok(entry) => panic!("{input:?} parsed as {entry:?}"),
                Err(e) => assert!(e.to_string().contains(says), "{input:?}: {e}"),
            }
        }
    }

    #[test]
    fn parse_reports_every_bad_entry_with_its_index() {
        let errors =
            NetPolicy::parse(&["ok.example", "*", "fine.example:1", "http://x"]).unwrap_err();
        let indices: Vec<usize> = errors.iter().map(|(i, _)| *i).collect();
        assert_eq!(indices, [1, 3]);
    }
}
