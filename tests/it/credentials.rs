//! No credential's bytes in any wire view. A real RS256 token (tests/harness/tokens.py's
//! key, signed by PyJWT) goes to a server that requires it, sent by
//! `client --token-file` (C-core: a literal, not Huffman-coded) and by
//! Python's h2 (Huffman-coded, never indexed), through every view: wiretap's
//! text, `--json`, `--bytes`, the web view's events and its page in headless
//! Chromium, and `client --show-wire` as text, JSON and a page. Each output
//! is searched for the token, whole and in pieces, as text, hex, decimal
//! bytes and base64.

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::auth::{claims, server, strict_call, Issuer, Key};
use crate::support::{
    assert_not_shown, mask_times, node, run_bounded, wait_until, BoundedOutput, LAB_TRANSCRIPT,
};
use crate::wire::{EventReader, ShowWireWeb, TapProcess};

const CLIENT: &str = env!("CARGO_BIN_EXE_client");
const WAIT: Duration = Duration::from_secs(60);

/// `client` with `args`, which must succeed.
fn client(args: &[&str]) -> BoundedOutput {
    let mut command = Command::new(CLIENT);
    command.args(args).env_remove("RUST_LOG");
    let output = run_bounded(command, WAIT);
    assert!(
        output.status.is_some_and(|s| s.success()),
        "client {args:?}: {}",
        output.stderr
    );
    output
}

/// The lab's four demos with the token, through `tap`, and one unary call
/// by the strict h2 client: two connections.
fn calls_through(tap: &TapProcess, token: &str, token_file: &str) {
    let all = client(&[
        "--target",
        &tap.addr,
        "--token-file",
        token_file,
        "--delay-ms",
        "0",
    ]);
    assert_eq!(mask_times(&all.stdout), LAB_TRANSCRIPT);
    let authorization = format!("authorization=Bearer {token}");
    let strict = strict_call(
        &tap.addr,
        "/messenger.LearningMessenger/GetLearningStatus",
        &[&authorization],
        &[""],
    );
    assert_eq!(
        strict["grpc_status"], 0,
        "the strict client's call: {strict}"
    );
}

#[test]
fn a_real_token_shows_in_no_wire_view() {
    let issuer = Issuer::generate();
    let server = server(&issuer);
    let token = issuer.sign_with_pyjwt(Key::Rs256, &claims("ada", json!({})));
    let file = issuer.token_file("ada.jwt", &token);
    let file = file.to_str().unwrap();
    let secret = token.as_bytes();

    // wiretap --json --bytes --web: its lines, the page's events, the page.
    let tap = TapProcess::start_printing(
        &server.target,
        &["--json", "--bytes", "--web", "127.0.0.1:0"],
    );
    let web = tap.web.clone().unwrap();
    let mut events = EventReader::open(&web);
    assert_eq!(events.next().0, "reset");
    calls_through(&tap, &token, file);
    events.records_until_closed(1);
    events.records_until_closed(2);
    assert!(wait_until(WAIT, || tap
        .output()
        .matches("\"close\"")
        .count()
        == 2));
    let json = tap.output();
    assert_not_shown("wiretap --json --bytes --web", &json, secret);
    assert_not_shown("the web view's events", events.text(), secret);
    // The views still show what they can: each request's authorization by
    // its length, and a frame's bytes with the value masked, both clients'.
    let masked: Vec<Value> = json
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|r| r["masked"].is_array())
        .collect();
    for conn in [1, 2] {
        let first = masked
            .iter()
            .find(|r| r["conn"] == conn)
            .unwrap_or_else(|| panic!("no masked frame on connection {conn}:\n{json}"));
        assert_eq!(first["masked"][0]["header"], "authorization", "{first}");
        let headers = first["headers"].to_string();
        let length = secret.len() + "Bearer ".len();
        assert!(
            headers.contains(&format!(
                "[\"authorization\",\"Bearer <{length} bytes, masked>\"]"
            )),
            "{headers}"
        );
    }
    let page = run_bounded(
        node("wire-page-text.mjs", &[&format!("http://{web}/"), "2"]),
        WAIT * 2,
    );
    assert!(
        page.status.is_some_and(|s| s.success()),
        "the page: {}\n{}",
        page.stdout,
        page.stderr
    );
    assert_not_shown("the page in Chromium", &page.stdout, secret);
    assert!(
        page.stdout
            .contains("the value of authorization, masked (shown as **)"),
        "{}",
        page.stdout
    );
    drop(tap);

    // wiretap as text, with --bytes.
    let tap = TapProcess::start_printing(&server.target, &["--bytes"]);
    calls_through(&tap, &token, file);
    assert!(wait_until(WAIT, || tap
        .output()
        .matches("closed: ")
        .count()
        == 2));
    let text = tap.output();
    assert_not_shown("wiretap --bytes", &text, secret);
    assert!(text.contains("authorization: Bearer <"), "{text}");
    assert_not_shown("wiretap's stderr", &tap.stderr(), secret);

    // client --show-wire, printed.
    for format in ["text", "json"] {
        let shown = client(&[
            "--target",
            &server.target,
            "--token-file",
            file,
            &format!("--show-wire={format}"),
            "all",
            "--concurrent",
        ]);
        assert!(shown.stderr.contains("authorization"), "{}", shown.stderr);
        assert_not_shown(
            &format!("client --show-wire={format}"),
            &shown.stderr,
            secret,
        );
        assert_not_shown("the client's output", &shown.stdout, secret);
    }

    // client --show-wire=web: its page's events.
    let run = ShowWireWeb::start(&[
        "--target",
        &server.target,
        "--token-file",
        file,
        "--show-wire=web",
        "all",
        "--concurrent",
    ]);
    let web = run.web.clone();
    let mut events = EventReader::open(&web);
    assert_eq!(events.next().0, "reset");
    let records = events.records_until_closed(1);
    assert!(
        records.iter().any(|r| r["masked"].is_array()),
        "{records:#?}"
    );
    assert_not_shown("client --show-wire=web", events.text(), secret);
    let (status, rest, _) = run.interrupt();
    assert!(status.success(), "{status}: {rest}");
}
