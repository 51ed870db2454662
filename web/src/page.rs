//! The page the gateway serves: static files checked in under `web/page/`
//! and built into the binary, so running it needs no npm. `dist/app.js` is
//! the bundle `web/page/codegen.sh` makes from `page/src/` and the code
//! protobuf-es generates from `proto/messenger.proto` (`page/gen/`); a test
//! checks that both are what the script makes now.

use bytes::Bytes;
use http::{header, HeaderValue, Method, Response, StatusCode};
use http_body_util::Full;
use tonic::body::Body;

/// One file of the page.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const ASSETS: [Asset; 4] = [
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        bytes: include_bytes!("../page/index.html"),
    },
    Asset {
        path: "/app.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../page/dist/app.js"),
    },
    Asset {
        path: "/style.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../page/style.css"),
    },
    Asset {
        path: "/favicon.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("../page/favicon.svg"),
    },
];

/// What the page's script asks the gateway: the native gRPC target, for the
/// `client` commands of the calls a browser cannot make.
pub const INFO_PATH: &str = "/gateway.json";

/// The answer to a GET or HEAD of `path`: a file of the page, the gateway's
/// info, or 404.
pub fn respond(method: &Method, path: &str, upstream: &str) -> Response<Body> {
    let (status, content_type, bytes) = if path == INFO_PATH {
        let info = serde_json::json!({ "upstream": upstream }).to_string();
        (StatusCode::OK, "application/json", Bytes::from(info))
    } else if let Some(asset) = ASSETS.iter().find(|asset| asset.path == path) {
        (
            StatusCode::OK,
            asset.content_type,
            Bytes::from_static(asset.bytes),
        )
    } else {
        let text =
            format!("{path}: not found (this gateway serves its page at / and gRPC-Web calls)\n");
        (
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            Bytes::from(text),
        )
    };
    let length = bytes.len();
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::new(Full::new(bytes))
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    // The page changes with the binary: always ask again.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // The page calls its own origin only, and runs only its own script.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'"),
    );
    response
}

/// An answer for a request that is neither gRPC-Web nor for the page.
pub fn not_grpc_web() -> Response<Body> {
    plain(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "this gateway answers gRPC-Web (application/grpc-web, application/grpc-web-text) \
         and serves its page; native gRPC goes to the server itself\n",
    )
}

/// An answer for a request that names the gateway by a name it does not
/// answer to (`hosts`).
pub fn foreign_host() -> Response<Body> {
    plain(
        StatusCode::FORBIDDEN,
        "this gateway answers to an IP address, localhost, or a name its --allow-host \
         (server: --web-allow-host) allows\n",
    )
}

/// A plain-text answer: a refusal, or what went wrong.
pub(crate) fn plain(status: StatusCode, text: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Body::new(Full::new(text.into())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_links_what_is_served() {
        let html = std::str::from_utf8(ASSETS[0].bytes).unwrap();
        for asset in &ASSETS[1..] {
            assert!(
                html.contains(&format!("\"{}\"", asset.path)),
                "{} not linked",
                asset.path
            );
        }
    }

    #[test]
    fn unknown_paths_are_404_and_head_has_no_body() {
        let response = respond(&Method::GET, "/nope", "127.0.0.1:1");
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let response = respond(&Method::HEAD, "/", "127.0.0.1:1");
        assert_eq!(response.status(), StatusCode::OK);
        assert!(http_body::Body::is_end_stream(response.body()));
    }
}
