//! Targets in gRPC's name syntax (gRPC's doc/naming.md), checked before C-core
//! sees them: C-core turns a target it cannot resolve into a channel whose
//! every call fails, with no word on why.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The forms `--target` takes, for messages.
pub const TARGET_FORMS: &str =
    "HOST:PORT, dns:///HOST:PORT, ipv4:ADDR:PORT[,ADDR:PORT...], ipv6:[ADDR]:PORT[,...] or unix:PATH";

/// Checks `target`; the error says what is wrong in one line.
pub fn check_target(target: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("bad target {target:?}: {why} (use {TARGET_FORMS})"));
    if target.is_empty() {
        return bad("empty");
    }
    if let Some(rest) = target.strip_prefix("dns:") {
        // dns:HOST:PORT, dns:///HOST:PORT or dns://AUTHORITY/HOST:PORT.
        let name = match rest.strip_prefix("//") {
            Some(with_authority) => match with_authority.split_once('/') {
                Some((_, name)) => name,
                None => return bad("dns:// needs a / before HOST:PORT"),
            },
            None => rest,
        };
        return host_port(name).or_else(|why| bad(&why));
    }
    if let Some(list) = target.strip_prefix("ipv4:") {
        return addresses(
            list,
            |host| host.parse::<Ipv4Addr>().is_ok(),
            "an IPv4 address",
        )
        .or_else(|why| bad(&why));
    }
    if let Some(list) = target.strip_prefix("ipv6:") {
        let ipv6 = |host: &str| {
            host.strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .is_some_and(|h| h.parse::<Ipv6Addr>().is_ok())
        };
        return addresses(list, ipv6, "an IPv6 address in brackets").or_else(|why| bad(&why));
    }
    for scheme in ["unix:", "unix-abstract:"] {
        if let Some(path) = target.strip_prefix(scheme) {
            let path = path.strip_prefix("//").unwrap_or(path);
            return if path.is_empty() {
                bad("no socket path")
            } else {
                Ok(())
            };
        }
    }
    if let Some((scheme, _)) = target.split_once("://") {
        return bad(&format!("unknown scheme {scheme:?}"));
    }
    host_port(target).or_else(|why| bad(&why))
}

/// The TCP `HOST:PORT` addresses of a checked target, comma-separated:
/// `HOST:PORT`, `dns:` forms and `ipv4:`/`ipv6:` lists; None for a Unix
/// socket or a target that does not check.
fn tcp_addresses(target: &str) -> Option<&str> {
    check_target(target).ok()?;
    if let Some(rest) = target.strip_prefix("dns:") {
        return Some(match rest.strip_prefix("//") {
            Some(with_authority) => with_authority.split_once('/')?.1,
            None => rest,
        });
    }
    if target.starts_with("unix:") || target.starts_with("unix-abstract:") {
        return None;
    }
    Some(
        target
            .strip_prefix("ipv4:")
            .or_else(|| target.strip_prefix("ipv6:"))
            .unwrap_or(target),
    )
}

/// The one TCP `HOST:PORT` a checked target names, if it names exactly one:
/// `HOST:PORT`, `dns:` forms, and `ipv4:`/`ipv6:` lists of one address. A
/// tap in front of the target (`--show-wire`) can forward to that only.
pub fn single_address(target: &str) -> Option<&str> {
    tcp_addresses(target).filter(|list| !list.contains(','))
}

/// Whether every address of a checked target is on this machine: a Unix
/// socket, `localhost`, or a loopback IP (127.0.0.0/8, ::1). Nothing sent
/// to it in plaintext leaves the machine.
pub fn is_local(target: &str) -> bool {
    if check_target(target).is_err() {
        return false;
    }
    let Some(list) = tcp_addresses(target) else {
        // A Unix socket.
        return true;
    };
    list.split(',').all(|address| {
        let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host.eq_ignore_ascii_case("localhost")
            || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
    })
}

/// `HOST:PORT`, the host a name or an address (IPv6 in brackets).
fn host_port(text: &str) -> Result<(), String> {
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err("no :PORT".to_owned());
    };
    if host.is_empty() {
        return Err("no host".to_owned());
    }
    if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) {
        return Err("an IPv6 host goes in brackets".to_owned());
    }
    port_number(port)
}

/// A comma-separated list of `ADDR:PORT`, each address passing `valid`.
fn addresses(list: &str, valid: impl Fn(&str) -> bool, what: &str) -> Result<(), String> {
    if list.is_empty() {
        return Err("no address".to_owned());
    }
    for address in list.split(',') {
        let Some((host, port)) = address.rsplit_once(':') else {
            return Err(format!("{address:?} has no :PORT"));
        };
        if !valid(host) {
            return Err(format!("{host:?} is not {what}"));
        }
        port_number(port).map_err(|why| format!("{address:?}: {why}"))?;
    }
    Ok(())
}

fn port_number(port: &str) -> Result<(), String> {
    match port.parse::<u16>() {
        Ok(_) => Ok(()),
        Err(_) => Err(format!("{port:?} is not a port number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_syntax_is_accepted() {
        for target in [
            "localhost:50051",
            "127.0.0.1:50051",
            "[::1]:50051",
            "dns:///localhost:50051",
            "dns://8.8.8.8/example.com:443",
            "dns:localhost:50051",
            "ipv4:127.0.0.1:50051",
            "ipv4:127.0.0.1:50051,127.0.0.2:50051,127.0.0.3:50051",
            "ipv6:[::1]:50051,[::1]:50052",
            "unix:/tmp/messenger.sock",
            "unix:///tmp/messenger.sock",
            "unix-abstract:messenger",
        ] {
            assert_eq!(check_target(target), Ok(()), "{target}");
        }
    }

    #[test]
    fn bad_targets_say_why() {
        for (target, why) in [
            ("", "empty"),
            ("localhost", "no :PORT"),
            ("localhost:http", "\"http\" is not a port number"),
            (":50051", "no host"),
            ("::1:50051", "an IPv6 host goes in brackets"),
            ("dns://localhost:50051", "dns:// needs a /"),
            ("ipv4:", "no address"),
            (
                "ipv4:localhost:50051",
                "\"localhost\" is not an IPv4 address",
            ),
            (
                "ipv4:127.0.0.1:50051,127.0.0.2",
                "\"127.0.0.2\" has no :PORT",
            ),
            ("ipv4:127.0.0.1:70000", "\"70000\" is not a port number"),
            ("ipv6:::1:50051", "is not an IPv6 address in brackets"),
            ("unix:", "no socket path"),
            ("http://localhost:50051", "unknown scheme \"http\""),
        ] {
            let error = check_target(target).unwrap_err();
            assert!(
                error.starts_with(&format!("bad target {target:?}: ")) && error.contains(why),
                "{target}: {error}"
            );
        }
    }

    #[test]
    fn local_targets_are_unix_sockets_localhost_and_loopback_addresses() {
        for target in [
            "localhost:50051",
            "LOCALHOST:1",
            "127.0.0.1:50051",
            "127.3.2.1:1",
            "[::1]:50051",
            "dns:///localhost:50051",
            "dns:localhost:50051",
            "ipv4:127.0.0.1:1,127.0.0.2:1",
            "ipv6:[::1]:1",
            "unix:/tmp/messenger.sock",
            "unix-abstract:messenger",
        ] {
            assert!(is_local(target), "{target}");
        }
        for target in [
            "example.org:443",
            "localhost.example.org:1",
            "10.0.0.1:50051",
            "0.0.0.0:50051",
            "[::]:1",
            "ipv4:127.0.0.1:1,10.0.0.1:1",
            "dns://8.8.8.8/example.org:443",
            "nonsense",
        ] {
            assert!(!is_local(target), "{target}");
        }
    }

    #[test]
    fn a_tap_forwards_to_one_tcp_address() {
        assert_eq!(single_address("localhost:50051"), Some("localhost:50051"));
        assert_eq!(
            single_address("dns:///localhost:50051"),
            Some("localhost:50051")
        );
        assert_eq!(single_address("dns://8.8.8.8/host:1"), Some("host:1"));
        assert_eq!(
            single_address("ipv4:127.0.0.2:50051"),
            Some("127.0.0.2:50051")
        );
        assert_eq!(single_address("ipv6:[::1]:50051"), Some("[::1]:50051"));
        assert_eq!(single_address("ipv4:127.0.0.1:1,127.0.0.2:1"), None);
        assert_eq!(single_address("unix:/tmp/s"), None);
        assert_eq!(single_address("nonsense"), None);
    }
}
