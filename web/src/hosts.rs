//! Which names the gateway answers to. A page of another site whose name
//! was pointed at the gateway's address (DNS rebinding) is same-origin with
//! it to the browser: CORS lets it call, and a token typed into the real
//! page is not its to read, but a server that trusts its network (no
//! `--auth-jwks`) would answer it. So the gateway answers only requests
//! that name it by an IP address or `localhost`, as the wire view's page
//! does, and the names an operator allows (a gateway behind a proxy that
//! serves it under a domain of its own).

use http::{header, Request};
use messenger_lab::host::{host_name, is_address_or_localhost};

/// The names allowed besides addresses and `localhost`, lowercase.
#[derive(Clone, Debug, Default)]
pub struct AllowedHosts {
    names: Vec<String>,
}

impl AllowedHosts {
    /// `names` as `--allow-host` gives them: DNS names, without a port.
    pub fn new(names: &[String]) -> Result<AllowedHosts, String> {
        let names = names
            .iter()
            .map(|name| check_name(name))
            .collect::<Result<_, _>>()?;
        Ok(AllowedHosts { names })
    }

    /// Whether `request` names the gateway by a name it answers to: its
    /// `:authority` (HTTP/2) or `Host` (HTTP/1.1). A request with neither
    /// (HTTP/1.0) comes from no browser and is let through.
    pub fn allows<B>(&self, request: &Request<B>) -> bool {
        let host = match request.uri().authority() {
            Some(authority) => authority.as_str(),
            None => match request.headers().get(header::HOST) {
                Some(host) => match host.to_str() {
                    Ok(host) => host,
                    Err(_) => return false,
                },
                None => return true,
            },
        };
        let name = host_name(host);
        is_address_or_localhost(name)
            || self
                .names
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(name))
    }
}

fn check_name(name: &str) -> Result<String, String> {
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(format!(
            "'{name}' is not a host name such as lab.example (a DNS name, no port)"
        ));
    }
    Ok(name.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(host: Option<&str>, uri: &str) -> Request<()> {
        let mut builder = Request::builder().uri(uri);
        if let Some(host) = host {
            builder = builder.header(header::HOST, host);
        }
        builder.body(()).unwrap()
    }

    #[test]
    fn addresses_localhost_and_the_names_allowed() {
        let hosts = AllowedHosts::new(&["Lab.Example".to_owned()]).unwrap();
        for (host, allowed) in [
            ("127.0.0.1:8080", true),
            ("localhost:8080", true),
            ("[::1]:8080", true),
            ("lab.example", true),
            ("LAB.example:443", true),
            ("rebind.example:8080", false),
            ("lab.example.evil", false),
        ] {
            assert_eq!(hosts.allows(&request(Some(host), "/")), allowed, "{host}");
        }
        // HTTP/2's :authority, which hyper puts in the URI.
        assert!(!hosts.allows(&request(None, "http://rebind.example:8080/")));
        assert!(hosts.allows(&request(None, "http://127.0.0.1:8080/")));
        assert!(hosts.allows(&request(None, "/")));
    }

    #[test]
    fn allowed_names_are_dns_names() {
        for bad in ["", "lab.example:80", "http://lab.example", "a..b", "*.lab"] {
            let err = AllowedHosts::new(&[bad.to_owned()]).unwrap_err();
            assert!(err.contains("is not a host name"), "{bad}: {err}");
        }
    }
}
