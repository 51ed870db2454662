//! Who may open a WebSocket to the gateway. A browser sends cookies and
//! other ambient credentials with a WebSocket handshake whatever page opens
//! it, and CORS does not apply to WebSockets, so the gateway itself refuses
//! an upgrade from another site's page (cross-site WebSocket hijacking):
//! the `Origin` must be the gateway's own or one allowed (`--allow-origin`).
//! "Own" is judged against `Host`, which a DNS-rebinding page controls:
//! [`crate::hosts`] has already refused a request whose `Host` is not a
//! name the gateway answers to.

use http::header::{self, HeaderMap, HeaderValue};

use crate::cors;

/// The origins allowed besides the gateway's own.
#[derive(Clone, Debug)]
pub struct Origins {
    allowed: Vec<HeaderValue>,
    any: bool,
}

impl Origins {
    /// `allowed` as `--allow-origin` takes them (`*` for any).
    pub fn new(allowed: &[String]) -> Result<Origins, String> {
        let allowed = cors::check_origins(allowed)?;
        let any = allowed.iter().any(|origin| origin == "*");
        Ok(Origins { allowed, any })
    }

    /// Whether an upgrade with these request headers may go on; if not, why.
    /// A handshake without `Origin` is not a browser's (browsers always send
    /// it), and carries no one's ambient credentials: it may.
    pub fn check_upgrade(&self, headers: &HeaderMap) -> Result<(), String> {
        // Host was checked for every request (crate::hosts).
        let host = headers
            .get(header::HOST)
            .and_then(|host| host.to_str().ok())
            .unwrap_or_default();
        let Some(origin) = headers.get(header::ORIGIN) else {
            return Ok(());
        };
        let own = [format!("http://{host}"), format!("https://{host}")];
        if self.any || own.iter().any(|own| origin == own.as_str()) || self.allowed.contains(origin)
        {
            return Ok(());
        }
        Err(format!(
            "a page of origin {} may not open a WebSocket here: only this gateway's own page \
             (http://{host}) and origins allowed by --allow-origin may (cross-site WebSocket hijacking)",
            String::from_utf8_lossy(origin.as_bytes())
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(host: &str, origin: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
        }
        headers
    }

    #[test]
    fn own_and_allowed_origins_only() {
        let origins = Origins::new(&["http://localhost:3000".to_owned()]).unwrap();
        let ok = |host, origin| origins.check_upgrade(&headers(host, origin));
        assert!(ok("127.0.0.1:8080", Some("http://127.0.0.1:8080")).is_ok());
        assert!(ok("localhost:8080", Some("http://localhost:8080")).is_ok());
        assert!(ok("127.0.0.1:8080", Some("http://localhost:3000")).is_ok());
        assert!(ok("127.0.0.1:8080", None).is_ok());
        let refused = ok("127.0.0.1:8080", Some("http://evil.example")).unwrap_err();
        assert!(
            refused.contains("cross-site WebSocket hijacking"),
            "{refused}"
        );
        assert!(ok("127.0.0.1:8080", Some("http://127.0.0.1:9090")).is_err());
        assert!(ok("127.0.0.1:8080", Some("null")).is_err());
        assert!(ok("localhost:3000", Some("http://localhost:3000")).is_ok());
        let any = Origins::new(&["*".to_owned()]).unwrap();
        assert!(any
            .check_upgrade(&headers("x.example", Some("http://y.example")))
            .is_ok());
    }
}
