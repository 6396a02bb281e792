// Attacks on ward's network edge (issue 11, item 5): name lookups as a data
// channel and a map of internal names. Registered in lib.rs.
use ward_guest::prelude::*;

#[derive(Deserialize, JsonSchema)]
pub struct Name {
    /// A host name (or IP literal) to resolve over wasi:sockets/ip-name-lookup.
    name: String,
}

/// Resolves `name` with the guest's own resolver interface, as a plugin
/// leaking data in DNS queries (`<secret>.attacker.example`) or mapping
/// internal names would. Returns the addresses, one a line; a failure's text
/// is the WASI error code (`access-denied`, `name-unresolvable`, ...).
pub fn resolve(a: Name) -> Result<String> {
    use wasi::sockets::instance_network::instance_network;
    use wasi::sockets::ip_name_lookup::resolve_addresses;
    use wasi::sockets::network::IpAddress;
    let failed = |code: wasi::sockets::network::ErrorCode| {
        Error::failed(format!("lookup of {} failed: {}", a.name, code.name()))
    };
    let network = instance_network();
    let stream = resolve_addresses(&network, &a.name).map_err(failed)?;
    let mut found = Vec::new();
    loop {
        stream.subscribe().block();
        match stream.resolve_next_address() {
            Ok(Some(IpAddress::Ipv4((a, b, c, d)))) => {
                found.push(std::net::Ipv4Addr::new(a, b, c, d).to_string())
            }
            Ok(Some(IpAddress::Ipv6((a, b, c, d, e, f, g, h)))) => {
                found.push(std::net::Ipv6Addr::new(a, b, c, d, e, f, g, h).to_string())
            }
            Ok(None) => break,
            Err(wasi::sockets::network::ErrorCode::WouldBlock) => continue,
            Err(code) => return Err(failed(code)),
        }
    }
    Ok(found.join("\n"))
}
