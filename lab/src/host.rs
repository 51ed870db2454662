//! Which `Host` a web server of this project answers to (the wire view's
//! page, the gRPC-Web gateway). A page of another site whose name was
//! pointed at 127.0.0.1 (DNS rebinding) is same-origin with the server to
//! the browser, so CORS does not stop it; only the name it asked for shows
//! it. A name no DNS answer can change is an IP address or `localhost`.

/// The name in a `Host` header or an `:authority`, without its port and
/// without an IPv6 address's brackets.
pub fn host_name(authority: &str) -> &str {
    let name = match authority.rsplit_once(':') {
        Some((name, port)) if port.parse::<u16>().is_ok() && !name.ends_with(':') => name,
        _ => authority,
    };
    name.strip_prefix('[')
        .and_then(|name| name.strip_suffix(']'))
        .unwrap_or(name)
}

/// Whether `name` (from [`host_name`]) is an IP address or `localhost`.
pub fn is_address_or_localhost(name: &str) -> bool {
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_localhost_with_or_without_a_port() {
        for host in [
            "127.0.0.1",
            "127.0.0.1:8080",
            "LOCALHOST:80",
            "localhost",
            "[::1]:8080",
            "[::1]",
            "::1",
            "10.1.2.3:443",
        ] {
            assert!(is_address_or_localhost(host_name(host)), "{host}");
        }
        for host in [
            "rebind.example:8080",
            "localhost.example",
            "127.0.0.1.nip.io",
            "",
            "[::1",
            "localhost:http",
        ] {
            assert!(!is_address_or_localhost(host_name(host)), "{host}");
        }
    }
}
