//! CORS: which other origins' pages may call the gateway. Its own page needs
//! none (same origin). Browsers preflight every gRPC-Web call from another
//! origin (its content type is not a simple one), and refuse it unless the
//! answer names that origin; tower-http's CORS layer gives the answers.
//! A page of another origin may send a token it holds (`authorization`),
//! but no cookie: credentials are not allowed, so no call rides on what a
//! browser sends by itself.

use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};
use messenger_lab::room::{EPOCH_HEADER, ROOM_HEADER, SEQ_HEADER, SINCE_HEADER, USER_HEADER};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// What gRPC-Web clients send besides the content type (grpc-web's and
/// connect's), a caller's token, and the headers that join a room.
const REQUEST_HEADERS: [&str; 10] = [
    "content-type",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "grpc-accept-encoding",
    "authorization",
    ROOM_HEADER,
    USER_HEADER,
    SINCE_HEADER,
    EPOCH_HEADER,
];

/// What a page's script may read of an answer: the status when it comes in
/// the headers (trailers-only), which replica answered, and where a room's
/// deliveries start (a number and the history it counts in).
const RESPONSE_HEADERS: [&str; 6] = [
    "grpc-status",
    "grpc-message",
    "grpc-status-details-bin",
    "x-served-by",
    SEQ_HEADER,
    EPOCH_HEADER,
];

/// How long a browser may keep a preflight's answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// The origins allowed, each `scheme://host[:port]`, or `*` for any.
pub fn check_origins(origins: &[String]) -> Result<Vec<HeaderValue>, String> {
    origins.iter().map(|origin| check_origin(origin)).collect()
}

fn check_origin(origin: &str) -> Result<HeaderValue, String> {
    let bad = || {
        format!("'{origin}' is not an origin such as http://localhost:3000 (scheme, host and port only)")
    };
    if origin == "*" {
        return Ok(HeaderValue::from_static("*"));
    }
    let uri: http::Uri = origin.parse().map_err(|_| bad())?;
    let plain = matches!(uri.scheme_str(), Some("http" | "https"))
        && uri.host().is_some_and(|host| !host.is_empty())
        && !origin.ends_with('/')
        && uri.path_and_query().is_none_or(|path| path.as_str() == "/");
    if !plain {
        return Err(bad());
    }
    HeaderValue::from_str(origin).map_err(|_| bad())
}

/// The CORS layer for `origins` (checked by [`check_origins`]); with none,
/// only the gateway's own page may call.
pub fn layer(origins: &[String]) -> Result<CorsLayer, String> {
    let origins = check_origins(origins)?;
    let allow_origin = if origins.iter().any(|origin| origin == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins)
    };
    Ok(CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([Method::POST])
        .allow_headers(REQUEST_HEADERS.map(HeaderName::from_static))
        .expose_headers(RESPONSE_HEADERS.map(HeaderName::from_static))
        .max_age(PREFLIGHT_MAX_AGE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_and_port() {
        let good = [
            "http://localhost:3000",
            "https://lab.example",
            "*",
            "http://127.0.0.1:8080",
        ];
        assert!(check_origins(&good.map(String::from)).is_ok());
        for bad in [
            "localhost:3000",
            "ftp://x",
            "http://x/path",
            "http://x/",
            "",
            "http://",
        ] {
            let err = check_origins(&[bad.to_owned()]).unwrap_err();
            assert!(err.contains("is not an origin"), "{bad}: {err}");
        }
    }
}
