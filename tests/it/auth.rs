//! Authentication end to end. Keys are made per test by tests/harness/tokens.py (an
//! issuer nobody here wrote: `cryptography` and PyJWT), tokens are signed
//! with them here (jsonwebtoken) and by PyJWT; the attacks (`alg: none`, an
//! RS256 public key used as an HS256 secret) are forged by hand. The clients
//! are ours (library and binary), Python's grpc (python/client.py) and
//! grpcurl; the strict HTTP/2 client (tests/harness/strict_h2.py) checks that
//! each refusal ends its stream exactly once. Mutual TLS names the caller by
//! its certificate.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use futures::executor::{block_on, block_on_stream};
use futures::SinkExt;
use grpcio::{
    CallOption, ClientDuplexSender, MetadataBuilder, RpcStatus, RpcStatusCode, WriteFlags,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use learning_messenger::auth::{AuthConfig, RELOAD_CHECK};
use learning_messenger::client::{self, BearerToken, ConnectOptions};
use learning_messenger::proto::messenger::{FeedUpdate, StatusRequest, TopicRequest};
use learning_messenger::rpc::messenger::LearningMessengerClient;
use learning_messenger::server::ServerConfig;
use messenger_lab::answers::acknowledgement;
use messenger_lab::room::{ROOM_HEADER, USER_HEADER};
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::strict_h2::{assert_one_end, strict_h2_one};
use crate::support::{
    feed, mask_times, note, project_root, python_client_command, python_stubs, run_bounded,
    run_server_binary, scrape, test_config, venv_program, wait_until, BoundedOutput, ChildGuard,
    TestServer, LAB_TRANSCRIPT, SERVER_BIN,
};
use crate::tls::{mutual_tls_server, Pki, SERVER_NAME};

const CLIENT: &str = env!("CARGO_BIN_EXE_client");
pub(crate) const ISSUER: &str = "https://issuer.example";
pub(crate) const AUDIENCE: &str = "learning-messenger";
/// How long any one expected thing may take.
const WAIT: Duration = Duration::from_secs(60);

/// An issuer's keys: ours (its JWKS is the server's) and a stranger's, whose
/// RSA key has the same kid as ours.
pub(crate) struct Issuer {
    dir: TempDir,
    /// The path of its JWKS, as a server's flag takes it.
    jwks_flag: String,
}

/// The keys tests/harness/tokens.py makes, by file name and kid.
#[derive(Clone, Copy)]
pub(crate) enum Key {
    Rs256,
    Es256,
    /// Another issuer's RSA key, announced with our RSA key's kid.
    StrangersRs256,
}

impl Issuer {
    pub(crate) fn generate() -> Issuer {
        let dir = tempfile::tempdir().unwrap();
        for keys in ["ours", "stranger"] {
            let mut command = Command::new(venv_program("python3"));
            command
                .arg(project_root().join("tests/harness/tokens.py"))
                .arg("keys")
                .arg(dir.path().join(keys));
            assert_succeeded("tokens.py keys", &run_bounded(command, WAIT));
        }
        let jwks_flag = dir.path().join("ours/jwks.json").display().to_string();
        Issuer { dir, jwks_flag }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub(crate) fn jwks(&self) -> PathBuf {
        self.path("ours/jwks.json")
    }

    /// A server process's flags that require this issuer's tokens for
    /// ISSUER and AUDIENCE.
    pub(crate) fn server_flags(&self) -> [&str; 6] {
        [
            "--auth-jwks",
            &self.jwks_flag,
            "--auth-issuer",
            ISSUER,
            "--auth-audience",
            AUDIENCE,
        ]
    }

    fn pem(&self, key: Key) -> (PathBuf, Algorithm, &'static str) {
        match key {
            Key::Rs256 => (self.path("ours/rs256.pem"), Algorithm::RS256, "rs256-1"),
            Key::Es256 => (self.path("ours/es256.pem"), Algorithm::ES256, "es256-1"),
            Key::StrangersRs256 => (self.path("stranger/rs256.pem"), Algorithm::RS256, "rs256-1"),
        }
    }

    /// `claims` signed with `key` (jsonwebtoken), its kid in the header.
    pub(crate) fn sign(&self, key: Key, claims: &Value) -> String {
        let (pem, algorithm, kid) = self.pem(key);
        let pem = std::fs::read(pem).unwrap();
        let encoding = match algorithm {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
            _ => EncodingKey::from_ec_pem(&pem),
        }
        .unwrap();
        let header = Header {
            kid: Some(kid.to_owned()),
            ..Header::new(algorithm)
        };
        jsonwebtoken::encode(&header, claims, &encoding).unwrap()
    }

    /// `claims` signed with `key` by PyJWT.
    pub(crate) fn sign_with_pyjwt(&self, key: Key, claims: &Value) -> String {
        let (pem, algorithm, kid) = self.pem(key);
        let mut command = Command::new(venv_program("python3"));
        command
            .arg(project_root().join("tests/harness/tokens.py"))
            .arg("sign")
            .arg(pem)
            .args([&format!("{algorithm:?}"), kid, &claims.to_string()]);
        let output = run_bounded(command, WAIT);
        assert_succeeded("tokens.py sign", &output);
        output.stdout.trim().to_owned()
    }

    /// A file holding `token`, as a user would keep one.
    pub(crate) fn token_file(&self, name: &str, token: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, format!("{token}\n")).unwrap();
        path
    }
}

fn assert_succeeded(what: &str, output: &BoundedOutput) {
    assert!(
        output.status.is_some_and(|s| s.success()),
        "{what}: {:?}\nstdout: {}\nstderr: {}",
        output.status,
        output.stdout,
        output.stderr
    );
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Valid claims for `name`, for an hour, with `extra` added (or, as null, removed).
pub(crate) fn claims(name: &str, extra: Value) -> Value {
    let mut claims = json!({
        "sub": name,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now(),
        "exp": now() + 3600,
    });
    for (key, value) in extra.as_object().unwrap() {
        match value {
            Value::Null => claims.as_object_mut().unwrap().remove(key),
            value => claims
                .as_object_mut()
                .unwrap()
                .insert(key.clone(), value.clone()),
        };
    }
    claims
}

/// A token by hand: any header, any claims, any signature.
fn forged(header: &Value, claims: &Value, signature: &[u8]) -> String {
    let part = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
    format!(
        "{}.{}.{}",
        part(header.to_string().as_bytes()),
        part(claims.to_string().as_bytes()),
        part(signature)
    )
}

/// The classic confusion: HS256 with the server's own RSA public key (as
/// published, PEM) as the HMAC secret. A verifier that takes the algorithm
/// from the token and the key's bytes as a secret accepts it.
fn rsa_public_key_as_hmac_secret(issuer: &Issuer, claims: &Value) -> String {
    let secret = std::fs::read(issuer.path("ours/rs256.pub.pem")).unwrap();
    let header = Header {
        kid: Some("rs256-1".to_owned()),
        ..Header::new(Algorithm::HS256)
    };
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(&secret)).unwrap()
}

/// A server in this process that requires tokens from `issuer`, with metrics.
pub(crate) fn server(issuer: &Issuer) -> TestServer {
    server_verifying_with(issuer.jwks())
}

/// The same, its keys from the JWKS file `jwks`.
fn server_verifying_with(jwks: PathBuf) -> TestServer {
    server_with_auth(AuthConfig {
        jwks: Some(jwks),
        issuer: Some(ISSUER.to_owned()),
        audience: Some(AUDIENCE.to_owned()),
        ..AuthConfig::default()
    })
}

/// A server in this process with `auth`, and metrics.
fn server_with_auth(auth: AuthConfig) -> TestServer {
    TestServer::with_config(ServerConfig {
        delay: Duration::ZERO,
        auth,
        metrics_addr: Some("127.0.0.1:0".to_owned()),
        ..test_config()
    })
}

/// A client whose every call carries `authorization: AUTHORIZATION`, if given.
fn client_with(
    server: &TestServer,
    authorization: Option<&str>,
    extra: &[(&str, &str)],
) -> LearningMessengerClient {
    let mut headers = MetadataBuilder::new();
    if let Some(value) = authorization {
        headers.add_str("authorization", value).unwrap();
    }
    for (key, value) in extra {
        headers.add_str(key, value).unwrap();
    }
    let options = CallOption::default().timeout(WAIT).headers(headers.build());
    server.client().with_options(options)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// The status of a call that must fail.
fn refusal<T: std::fmt::Debug>(result: grpcio::Result<T>) -> RpcStatus {
    match result {
        Err(grpcio::Error::RpcFailure(status)) => status,
        other => panic!("expected a refused call, got {other:?}"),
    }
}

/// Each of the four methods, called once: Ok, or the status that ended it.
fn every_method(client: &LearningMessengerClient) -> [Result<(), RpcStatus>; 4] {
    let status = |result: grpcio::Result<()>| result.map_err(|e| refusal::<()>(Err(e)));
    let topic = TopicRequest {
        topic: "auth".into(),
        ..Default::default()
    };
    [
        status(
            client
                .get_learning_status(&StatusRequest::default())
                .map(drop),
        ),
        status(
            client
                .stream_learnings(&topic)
                .and_then(|updates| updates.collect::<grpcio::Result<Vec<_>>>().map(drop)),
        ),
        status(client.submit_research_notes(vec![note("n")]).map(drop)),
        status(
            client
                .collaborative_feed(vec![feed("Engineer", "hi")])
                .and_then(|echoes| echoes.collect::<grpcio::Result<Vec<_>>>().map(drop)),
        ),
    ]
}

/// The value of `messenger_auth_refused_total{reason=REASON}` on the server's page.
fn refused_count(server: &TestServer, reason: &str) -> u64 {
    let page = scrape(server.running().metrics_port().unwrap()).2;
    let series = format!("messenger_auth_refused_total{{reason=\"{reason}\"}} ");
    page.lines()
        .find_map(|line| line.strip_prefix(&series)?.parse().ok())
        .unwrap_or_else(|| panic!("no {series} in:\n{page}"))
}

#[test]
fn every_bad_token_is_unauthenticated_with_a_message_that_says_which() {
    let issuer = Issuer::generate();
    let server = server(&issuer);
    let valid = claims("ada", json!({}));
    let header = |alg: &str| json!({"alg": alg, "typ": "JWT", "kid": "rs256-1"});
    let signed = issuer.sign(Key::Rs256, &valid);
    let (signed_head, _, signature) = {
        let parts: Vec<&str> = signed.split('.').collect();
        (
            parts[0].to_owned(),
            parts[1].to_owned(),
            parts[2].to_owned(),
        )
    };
    let tampered = format!(
        "{signed_head}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(claims("root", json!({})).to_string())
    );
    let cases: Vec<(&str, Option<String>, &str, &str)> = vec![
        ("no header", None, "missing_token", "missing token"),
        (
            "not bearer",
            Some(format!("Basic {signed}")),
            "malformed_token",
            "not `Bearer <JWT>`",
        ),
        (
            "not a JWT",
            Some(bearer("not-a-jwt")),
            "malformed_token",
            "not a JWT",
        ),
        (
            "expired",
            Some(bearer(&issuer.sign(
                Key::Rs256,
                &claims("ada", json!({"exp": now() - 3600})),
            ))),
            "expired",
            "expired token",
        ),
        (
            "not yet valid",
            Some(bearer(&issuer.sign(
                Key::Es256,
                &claims("ada", json!({"nbf": now() + 3600})),
            ))),
            "not_yet_valid",
            "not valid yet",
        ),
        (
            "another issuer's key",
            Some(bearer(&issuer.sign(Key::StrangersRs256, &valid))),
            "bad_signature",
            "wrongly signed token",
        ),
        (
            "tampered claims",
            Some(bearer(&tampered)),
            "bad_signature",
            "wrongly signed token",
        ),
        (
            "alg none",
            Some(bearer(&forged(&header("none"), &valid, b""))),
            "wrong_algorithm",
            "unsigned (alg none)",
        ),
        (
            "RS256 public key as HS256 secret",
            Some(bearer(&rsa_public_key_as_hmac_secret(&issuer, &valid))),
            "wrong_algorithm",
            "HS256 is not accepted",
        ),
        (
            "unknown kid",
            Some(bearer(&forged(
                &json!({"alg": "RS256", "kid": "nobody"}),
                &valid,
                b"sig",
            ))),
            "unknown_key",
            "kid",
        ),
        (
            "wrong issuer",
            Some(bearer(&issuer.sign(
                Key::Rs256,
                &claims("ada", json!({"iss": "https://evil.example"})),
            ))),
            "wrong_issuer",
            "wrong issuer",
        ),
        (
            "no issuer",
            Some(bearer(
                &issuer.sign(Key::Rs256, &claims("ada", json!({"iss": null}))),
            )),
            "wrong_issuer",
            "wrong issuer",
        ),
        (
            "wrong audience",
            Some(bearer(
                &issuer.sign(Key::Es256, &claims("ada", json!({"aud": ["other"]}))),
            )),
            "wrong_audience",
            "wrong audience",
        ),
        (
            "no exp",
            Some(bearer(
                &issuer.sign(Key::Rs256, &claims("ada", json!({"exp": null}))),
            )),
            "malformed_token",
            "no exp claim",
        ),
        (
            "no name",
            Some(bearer(
                &issuer.sign(Key::Rs256, &claims("ada", json!({"sub": null}))),
            )),
            "malformed_token",
            "no \"sub\" claim",
        ),
        (
            "rooms not a list",
            Some(bearer(
                &issuer.sign(Key::Rs256, &claims("ada", json!({"rooms": "lab"}))),
            )),
            "malformed_token",
            "not a list of room names",
        ),
    ];
    let mut expected_counts = std::collections::HashMap::<&str, u64>::new();
    for (what, authorization, reason, said) in &cases {
        let client = client_with(&server, authorization.as_deref(), &[]);
        let status = refusal(client.get_learning_status(&StatusRequest::default()));
        println!("{what}: {:?}: {}", status.code(), status.message());
        assert_eq!(status.code(), RpcStatusCode::UNAUTHENTICATED, "{what}");
        assert!(
            status.message().contains(said),
            "{what}: {}",
            status.message()
        );
        if let Some(value) = authorization {
            let token = value
                .split_once(' ')
                .map_or(value.as_str(), |(_, token)| token);
            for part in token.split('.').filter(|part| part.len() >= 8) {
                assert!(
                    !status.message().contains(part),
                    "{what}: the message repeats the token"
                );
            }
        }
        *expected_counts.entry(reason).or_default() += 1;
    }
    for (reason, count) in expected_counts {
        assert_eq!(refused_count(&server, reason), count, "{reason}");
    }
    // Nothing got in: every call was refused before a handler saw it.
    let page = scrape(server.running().metrics_port().unwrap()).2;
    assert!(page.contains(&format!(
        "grpc_server_handled_total{{grpc_code=\"Unauthenticated\",grpc_method=\"GetLearningStatus\",grpc_service=\"messenger.LearningMessenger\",grpc_type=\"unary\"}} {}",
        cases.len()
    )), "{page}");
}

#[test]
fn every_method_refuses_a_missing_or_wrongly_signed_token_and_serves_a_valid_one() {
    let issuer = Issuer::generate();
    let server = server(&issuer);
    let strangers = bearer(&issuer.sign(Key::StrangersRs256, &claims("ada", json!({}))));
    for (what, authorization) in [
        ("missing", None),
        ("wrongly signed", Some(strangers.as_str())),
    ] {
        for (method, outcome) in every_method(&client_with(&server, authorization, &[]))
            .into_iter()
            .enumerate()
        {
            let status = outcome.expect_err(what);
            assert_eq!(
                status.code(),
                RpcStatusCode::UNAUTHENTICATED,
                "{what}, method {method}"
            );
        }
    }
    let rs256 = bearer(&issuer.sign(Key::Rs256, &claims("ada", json!({}))));
    // Several audiences, one of them ours; nbf passed.
    let es256 = bearer(&issuer.sign(
        Key::Es256,
        &claims(
            "bob",
            json!({"aud": ["other", AUDIENCE], "nbf": now() - 10}),
        ),
    ));
    let pyjwt = bearer(&issuer.sign_with_pyjwt(Key::Rs256, &claims("cy", json!({}))));
    for (what, authorization) in [
        ("RS256", &rs256),
        ("ES256", &es256),
        ("PyJWT's RS256", &pyjwt),
    ] {
        let outcomes = every_method(&client_with(&server, Some(authorization), &[]));
        assert!(outcomes.iter().all(Result::is_ok), "{what}: {outcomes:?}");
    }
}

#[test]
fn a_rewritten_jwks_file_brings_new_keys_in_and_old_ones_out() {
    let issuer = Issuer::generate();
    let served = issuer.path("served-jwks.json");
    std::fs::copy(issuer.jwks(), &served).unwrap();
    let server = server_verifying_with(served.clone());
    let status = |token: &str| {
        client_with(&server, Some(&bearer(token)), &[])
            .get_learning_status(&StatusRequest::default())
            .map(drop)
            .map_err(|e| refusal::<()>(Err(e)).code())
    };
    let ours = issuer.sign(Key::Rs256, &claims("ada", json!({})));
    let rotated = issuer.sign(Key::StrangersRs256, &claims("ada", json!({})));
    assert_eq!(status(&ours), Ok(()));
    assert_eq!(status(&rotated), Err(RpcStatusCode::UNAUTHENTICATED));

    // The provider rotates: the same kid, a new key.
    std::fs::copy(issuer.path("stranger/jwks.json"), &served).unwrap();
    let limit = RELOAD_CHECK * 4;
    assert!(
        wait_until(limit, || status(&rotated).is_ok()),
        "the new key was not taken within {limit:?}"
    );
    assert_eq!(status(&ours), Err(RpcStatusCode::UNAUTHENTICATED));

    // A broken file leaves the keys as they were.
    std::fs::write(&served, "{ not json").unwrap();
    std::thread::sleep(RELOAD_CHECK + Duration::from_secs(1));
    assert_eq!(status(&rotated), Ok(()));
}

#[test]
fn health_and_reflection_stay_open_and_grpcurl_calls_with_a_token() {
    let issuer = Issuer::generate();
    let server = server(&issuer);
    let grpcurl = |args: &[&str]| {
        let mut command = Command::new(venv_program("grpcurl"));
        command.args(["-plaintext", "-max-time", "20"]).args(args);
        run_bounded(command, WAIT)
    };
    let listed = grpcurl(&[&server.target, "list"]);
    assert_succeeded("grpcurl list without a token", &listed);
    assert!(
        listed.stdout.contains("messenger.LearningMessenger"),
        "{}",
        listed.stdout
    );
    let health = grpcurl(&[&server.target, "grpc.health.v1.Health/Check"]);
    assert_succeeded("grpcurl health without a token", &health);
    assert!(health.stdout.contains("SERVING"), "{}", health.stdout);

    let method = "messenger.LearningMessenger/GetLearningStatus";
    let refused = grpcurl(&[&server.target, method]);
    assert!(!refused.status.is_some_and(|s| s.success()));
    assert!(
        refused.stderr.contains("Code: Unauthenticated")
            && refused.stderr.contains("missing token"),
        "{}",
        refused.stderr
    );
    let token = issuer.sign(Key::Es256, &claims("ada", json!({})));
    let authorization = format!("authorization: Bearer {token}");
    let served = grpcurl(&["-H", &authorization, &server.target, method]);
    assert_succeeded("grpcurl with a token", &served);
    assert!(
        served.stdout.contains("System ready for research."),
        "{}",
        served.stdout
    );
    let expired = issuer.sign(Key::Es256, &claims("ada", json!({"exp": now() - 600})));
    let refused = grpcurl(&[
        "-H",
        &format!("authorization: Bearer {expired}"),
        &server.target,
        method,
    ]);
    assert!(
        refused.stderr.contains("expired token"),
        "{}",
        refused.stderr
    );
    assert!(
        !refused.stderr.contains(&expired),
        "grpcurl shows the token in the status"
    );
}

/// A participant of a feed room, its received updates read on a thread.
struct Participant {
    sink: ClientDuplexSender<FeedUpdate>,
    received: mpsc::Receiver<Result<FeedUpdate, RpcStatus>>,
    _client: LearningMessengerClient,
}

impl Participant {
    /// Opens the feed in `room` with a token (`authorization`) and a `user` header, if given.
    fn join(
        server: &TestServer,
        room: &str,
        authorization: Option<&str>,
        user: Option<&str>,
    ) -> Participant {
        let mut headers = vec![(ROOM_HEADER, room)];
        headers.extend(user.map(|user| (USER_HEADER, user)));
        Participant::open(client_with(server, authorization, &headers))
    }

    /// Opens the feed with `client`'s options (its headers name the room).
    fn open(client: LearningMessengerClient) -> Participant {
        let (sink, receiver) = client.collaborative_feed_async().unwrap();
        let (tx, received) = mpsc::channel();
        std::thread::spawn(move || {
            for item in block_on_stream(receiver) {
                let end = item.is_err();
                if tx.send(item.map_err(|e| refusal::<()>(Err(e)))).is_err() || end {
                    return;
                }
            }
        });
        Participant {
            sink,
            received,
            _client: client,
        }
    }

    fn say(&mut self, user: &str, message: &str) {
        // A refused call may be over before the write: its status follows.
        let _ = block_on(self.sink.send((feed(user, message), WriteFlags::default())));
    }

    /// The next update received, as `user: message`, or the status that ended the call.
    fn next(&self) -> Result<String, RpcStatus> {
        match self.received.recv_timeout(WAIT) {
            Ok(update) => update.map(|u| format!("{}: {}", u.user, u.message)),
            Err(e) => panic!("nothing received within {WAIT:?}: {e}"),
        }
    }

    fn expect(&self, line: &str) {
        match self.next() {
            Ok(received) => assert_eq!(received, line),
            Err(status) => panic!("expected {line:?}, the call ended: {status:?}"),
        }
    }

    fn expect_refusal(&self, code: RpcStatusCode, said: &str) {
        let status = self.next().expect_err("a refusal");
        assert_eq!(status.code(), code, "{status:?}");
        assert!(status.message().contains(said), "{status:?}");
    }
}

#[test]
fn a_token_names_its_caller_in_the_rooms_it_allows_and_nowhere_else() {
    let issuer = Issuer::generate();
    let server = server(&issuer);
    let alice = bearer(&issuer.sign(
        Key::Rs256,
        &claims("alice", json!({"rooms": ["lab", "team-*"]})),
    ));
    let bob = bearer(&issuer.sign(Key::Es256, &claims("bob", json!({"rooms": ["*"]}))));

    // Bob's token lists every room. He names himself by header.
    let mut bobs = Participant::join(&server, "team-a", Some(&bob), Some("bob"));
    bobs.say("", "first");
    bobs.expect(&format!("System: {}", acknowledgement("bob", "first")));

    // Alice joins without a user header: the token names her at once.
    let mut alices = Participant::join(&server, "team-a", Some(&alice), None);
    bobs.expect("System: alice joined the room");
    alices.say("", "hello");
    alices.expect(&format!("System: {}", acknowledgement("alice", "hello")));
    bobs.expect("alice: hello");
    alices.say("alice", "again");
    alices.expect(&format!("System: {}", acknowledgement("alice", "again")));
    bobs.expect("alice: again");

    // Speaking as bob ends her call; bob sees her leave, not the update.
    alices.say("bob", "it was me");
    alices.expect_refusal(
        RpcStatusCode::PERMISSION_DENIED,
        "but the caller is \"alice\"",
    );
    bobs.expect("System: alice left the room");

    // A user header naming someone else, a room the token does not allow.
    Participant::join(&server, "team-a", Some(&alice), Some("bob")).expect_refusal(
        RpcStatusCode::PERMISSION_DENIED,
        "the user header names \"bob\"",
    );
    Participant::join(&server, "ops", Some(&alice), None)
        .expect_refusal(RpcStatusCode::PERMISSION_DENIED, "may not join room 'ops'");
    let mut in_lab = Participant::join(&server, "lab", Some(&alice), Some("alice"));
    in_lab.say("", "in the lab");
    in_lab.expect(&format!(
        "System: {}",
        acknowledgement("alice", "in the lab")
    ));

    // Without a token, no room at all.
    Participant::join(&server, "team-a", None, Some("mallory"))
        .expect_refusal(RpcStatusCode::UNAUTHENTICATED, "missing token");
    assert_eq!(refused_count(&server, "not_your_name"), 2);
    assert_eq!(refused_count(&server, "room_not_allowed"), 1);
    assert_eq!(refused_count(&server, "missing_token"), 1);
}

/// A client of `server` (mutual TLS) with the client certificate `identity`.
fn certificate_client(
    pki: &Pki,
    server: &TestServer,
    identity: learning_messenger::client::TlsIdentity,
) -> LearningMessengerClient {
    client::connect(&ConnectOptions {
        timeout: Some(WAIT),
        tls_ca: Some(pki.ca.clone()),
        tls_server_name: Some(SERVER_NAME.to_owned()),
        tls_identity: Some(identity),
        ..ConnectOptions::new(server.target.clone())
    })
    .unwrap()
}

#[test]
fn mutual_tls_names_the_caller_by_its_certificate_in_a_room() {
    let pki = Pki::generate();
    // Its first SAN names one; the other has a common name only.
    let alice = pki.client(
        "alice",
        "Alice Example",
        &["alice.clients.test", "alice.example"],
    );
    let carol = pki.client("carol", "carol", &[]);
    // A certificate lists no rooms: none, unless the server opens them.
    let closed = mutual_tls_server(&pki);
    let mut headers = MetadataBuilder::new();
    headers.add_str(ROOM_HEADER, "lab").unwrap();
    let client = certificate_client(&pki, &closed, carol.clone());
    Participant::open(client.with_options(CallOption::default().headers(headers.build())))
        .expect_refusal(
            RpcStatusCode::PERMISSION_DENIED,
            "carol may not join room 'lab': a client certificate lists no rooms, and this \
             server opens no room to such callers (--auth-open-rooms would open every room)",
        );
    let server = TestServer::with_config(ServerConfig {
        delay: Duration::ZERO,
        tls: Some(pki.identity()),
        tls_client_ca: Some(pki.ca.clone()),
        auth: AuthConfig {
            open_rooms: true,
            ..AuthConfig::default()
        },
        ..test_config()
    });
    let connect = |identity| certificate_client(&pki, &server, identity);
    let join = |client: &LearningMessengerClient, user: Option<&str>| {
        let mut headers = MetadataBuilder::new();
        headers.add_str(ROOM_HEADER, "lab").unwrap();
        if let Some(user) = user {
            headers.add_str(USER_HEADER, user).unwrap();
        }
        Participant::open(
            client
                .clone()
                .with_options(client.options().headers(headers.build())),
        )
    };
    let (alice, carol) = (connect(alice), connect(carol));
    let mut carols = join(&carol, None);
    carols.say("", "here");
    carols.expect(&format!("System: {}", acknowledgement("carol", "here")));
    let mut alices = join(&alice, None);
    carols.expect("System: alice.clients.test joined the room");
    alices.say("", "hi");
    carols.expect("alice.clients.test: hi");
    alices.expect(&format!(
        "System: {}",
        acknowledgement("alice.clients.test", "hi")
    ));
    alices.say("carol", "not me");
    alices.expect_refusal(
        RpcStatusCode::PERMISSION_DENIED,
        "but the caller is \"alice.clients.test\"",
    );
    join(&carol, Some("alice.clients.test"))
        .expect_refusal(RpcStatusCode::PERMISSION_DENIED, "the user header names");
    // The lab's echo is unchanged: no identity check without a room.
    let echoes: Vec<_> = carol
        .collaborative_feed(vec![feed("Engineer", "hi")])
        .unwrap()
        .collect();
    assert_eq!(echoes.len(), 1, "{echoes:?}");
}

/// `client ARGS` to completion.
fn client_binary(args: &[&str]) -> BoundedOutput {
    let mut command = Command::new(CLIENT);
    command.args(args).env_remove("RUST_LOG");
    run_bounded(command, WAIT)
}

/// `path` as a command-line argument.
fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn our_client_sends_its_token_file_and_never_in_plaintext_off_this_machine() {
    let issuer = Issuer::generate();
    let server = server(&issuer);
    let token = issuer.token_file(
        "ada.jwt",
        &issuer.sign(Key::Rs256, &claims("ada", json!({}))),
    );
    let served = client_binary(&[
        "--target",
        &server.target,
        "--token-file",
        arg(&token),
        "status",
    ]);
    assert_succeeded("client status with a token", &served);
    assert!(
        served.stdout.starts_with("Server Response: System ready"),
        "{}",
        served.stdout
    );
    let all = client_binary(&[
        "--target",
        &server.target,
        "--token-file",
        arg(&token),
        "--delay-ms",
        "0",
    ]);
    assert_succeeded("client (the four demos) with a token", &all);
    assert_eq!(mask_times(&all.stdout), LAB_TRANSCRIPT);

    let refused = client_binary(&["--target", &server.target, "status"]);
    assert_eq!(refused.status.and_then(|s| s.code()), Some(1));
    assert_eq!(
        refused.stderr,
        format!(
            "error: {}: UNAUTHENTICATED: missing token: this server requires `authorization: Bearer <JWT>` on every call\n",
            server.target
        )
    );

    // 0.0.0.0 is not a loopback address: refused before any connection.
    let plaintext = client_binary(&[
        "--target",
        "0.0.0.0:1",
        "--token-file",
        arg(&token),
        "status",
    ]);
    assert_eq!(
        plaintext.status.and_then(|s| s.code()),
        Some(2),
        "{}",
        plaintext.stderr
    );
    assert_eq!(
        plaintext.stderr,
        "error: refusing to send the token in plaintext to 0.0.0.0:1: use --tls-ca, or a loopback address\n"
    );
    let wire = client_binary(&[
        "--target",
        "0.0.0.0:1",
        "--token-file",
        arg(&token),
        "--show-wire",
        "status",
    ]);
    assert_eq!(
        wire.status.and_then(|s| s.code()),
        Some(2),
        "{}",
        wire.stderr
    );
    assert!(
        wire.stderr
            .contains("refusing to send the token in plaintext"),
        "{}",
        wire.stderr
    );

    let missing = client_binary(&[
        "--target",
        &server.target,
        "--token-file",
        "/nonexistent/t",
        "status",
    ]);
    assert_eq!(missing.status.and_then(|s| s.code()), Some(3));
    assert_eq!(missing.stderr.lines().count(), 1, "{}", missing.stderr);
    assert!(missing
        .stderr
        .starts_with("error: cannot read --token-file /nonexistent/t"));
    let garbled = issuer.token_file("garbled.jwt", "two words");
    let garbled = client_binary(&[
        "--target",
        &server.target,
        "--token-file",
        arg(&garbled),
        "status",
    ]);
    assert_eq!(garbled.status.and_then(|s| s.code()), Some(3));
    assert!(!garbled.stderr.contains("two words"), "{}", garbled.stderr);

    // --show-wire to this machine: the token travels, the view does not show it.
    let shown = client_binary(&[
        "--target",
        &server.target,
        "--token-file",
        arg(&token),
        "--show-wire",
        "status",
    ]);
    assert_succeeded("client --show-wire with a token", &shown);
    assert!(
        shown.stderr.contains("authorization: Bearer <"),
        "{}",
        shown.stderr
    );
    let jwt = std::fs::read_to_string(&token).unwrap();
    assert!(
        !shown.stderr.contains(jwt.trim()),
        "the wire view shows the token"
    );
}

#[test]
fn our_client_and_pythons_chat_in_a_room_as_their_tokens_say() {
    let issuer = Issuer::generate();
    let server = server(&issuer);
    let stubs = tempfile::tempdir().unwrap();
    python_stubs(stubs.path());
    let ada = issuer.token_file(
        "ada.jwt",
        &issuer.sign(Key::Rs256, &claims("ada", json!({"rooms": ["lab"]}))),
    );
    let py = issuer.token_file(
        "py.jwt",
        &issuer.sign_with_pyjwt(Key::Es256, &claims("py", json!({"rooms": ["*"]}))),
    );

    // Python's demos with a token: the lab's transcript.
    let demos = run_bounded(
        python_client_command(
            stubs.path(),
            &[
                "--target",
                &server.target,
                "--delay-scale",
                "0",
                "--token-file",
                arg(&py),
            ],
        ),
        WAIT,
    );
    assert_succeeded("python client with a token", &demos);
    assert_eq!(mask_times(&demos.stdout), LAB_TRANSCRIPT);
    let without = run_bounded(
        python_client_command(
            stubs.path(),
            &["--target", &server.target, "--delay-scale", "0"],
        ),
        WAIT,
    );
    assert!(
        without.stderr.contains("StatusCode.UNAUTHENTICATED"),
        "{}",
        without.stderr
    );

    // Both chat in one room, neither naming itself: the tokens do.
    let mut ours = Command::new(CLIENT);
    ours.args([
        "--target",
        &server.target,
        "--token-file",
        arg(&ada),
        "chat",
        "--room",
        "lab",
    ]);
    let mut ours = ChildGuard::spawn_with_input("client chat", ours);
    let seen = |child: &ChildGuard, what: &str| {
        assert!(
            wait_until(WAIT, || child.log().contains(what)),
            "no {what:?} within {WAIT:?}; it printed:\n{}",
            child.log()
        );
    };
    ours.write_line("hello from rust");
    seen(&ours, &acknowledgement("ada", "hello from rust"));
    let python = python_client_command(
        stubs.path(),
        &[
            "--target",
            &server.target,
            "--room",
            "lab",
            "--token-file",
            arg(&py),
        ],
    );
    let mut python = ChildGuard::spawn_with_input("python chat", python);
    seen(&ours, "[lab] * py joined the room");
    python.write_line("hello from python");
    seen(&python, &acknowledgement("py", "hello from python"));
    seen(&ours, "[lab] py: hello from python");
    ours.write_line("hello again");
    seen(&python, "[lab] ada: hello again");
    // Speaking as someone else ends the call, in one line.
    ours.write_line("py: it was me");
    seen(
        &ours,
        "PERMISSION_DENIED: an update speaks as \"py\", but the caller is \"ada\"",
    );
    seen(&python, "[lab] * ada left the room");
    assert!(!python.log().contains("it was me"), "{}", python.log());
}

#[test]
fn no_log_line_carries_a_token() {
    let issuer = Issuer::generate();
    let port = crate::support::free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut command = Command::new(SERVER_BIN);
    command
        .args([
            "--addr",
            &addr,
            "--delay-ms",
            "0",
            "--auth-jwks",
            arg(&issuer.jwks()),
            "--auth-audience",
            AUDIENCE,
        ])
        .env("RUST_LOG", "trace");
    let mut server = ChildGuard::spawn("server", command);
    server.wait_for_port(port, WAIT);
    let good = issuer.sign(Key::Rs256, &claims("ada", json!({})));
    let bad = issuer.sign(Key::StrangersRs256, &claims("ada", json!({})));
    let expired = issuer.sign(Key::Es256, &claims("ada", json!({"exp": now() - 600})));
    for token in [&good, &bad, &expired] {
        let file = issuer.token_file("t.jwt", token);
        let _ = client_binary(&[
            "--target",
            &addr,
            "--token-file",
            arg(&file),
            "chat",
            "--room",
            "lab",
        ]);
        let _ = client_binary(&["--target", &addr, "--token-file", arg(&file), "status"]);
    }
    // The log is written in batches, a moment after the refusal is sent.
    let refusals_logged = || {
        let log = server.log();
        log.contains("refused (bad_signature)") && log.contains("refused (expired)")
    };
    assert!(
        wait_until(WAIT, refusals_logged),
        "refusals are logged at debug:\n{}",
        server.log()
    );
    let log = server.log();
    for token in [&good, &bad, &expired] {
        for part in token.split('.') {
            assert!(
                !log.contains(part),
                "a log line carries a token's part:\n{log}"
            );
        }
    }
}

/// A call for the strict client (its case `call`): the method, headers
/// (`NAME=VALUE`) and messages (protobuf, hex). A streaming call's request
/// stream is left open, as a client still sending; a unary call half-closes.
pub(crate) fn strict_call(target: &str, path: &str, headers: &[&str], messages: &[&str]) -> Value {
    let mut args = vec!["call", "--path", path];
    for header in headers {
        args.extend(["--header", header]);
    }
    for message in messages {
        args.extend(["--message", message]);
    }
    if !path.ends_with("/GetLearningStatus") {
        args.push("--open");
    }
    strict_h2_one(target, &args)
}

/// A FeedUpdate's protobuf bytes, hex: `user` (field 1) and `message` (field 2).
fn feed_update_hex(user: &str, message: &str) -> String {
    let mut bytes = vec![0x0a, user.len() as u8];
    bytes.extend(user.as_bytes());
    bytes.extend([0x12, message.len() as u8]);
    bytes.extend(message.as_bytes());
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_strict_http2_client_sees_each_refusal_end_its_stream_once() {
    let issuer = Issuer::generate();
    let server = server(&issuer);
    let unary = "/messenger.LearningMessenger/GetLearningStatus";
    let feed_path = "/messenger.LearningMessenger/CollaborativeFeed";
    let upload = "/messenger.LearningMessenger/SubmitResearchNotes";
    // A ResearchNote: text (field 1) "a".
    let note = "0a0161";
    let authorization = |token: &str| format!("authorization=Bearer {token}");
    let strangers = authorization(&issuer.sign(Key::StrangersRs256, &claims("ada", json!({}))));
    let alice =
        authorization(&issuer.sign(Key::Rs256, &claims("alice", json!({"rooms": ["lab"]}))));
    let hello = feed_update_hex("alice", "hello");
    let as_bob = feed_update_hex("bob", "hello");
    let cases = [
        (
            "unary, missing token",
            unary,
            vec![],
            vec![""],
            RpcStatusCode::UNAUTHENTICATED,
        ),
        (
            "unary, wrongly signed",
            unary,
            vec![strangers.as_str()],
            vec![""],
            RpcStatusCode::UNAUTHENTICATED,
        ),
        (
            "upload still sending, wrongly signed",
            upload,
            vec![strangers.as_str()],
            vec![note],
            RpcStatusCode::UNAUTHENTICATED,
        ),
        (
            "feed still sending, missing token",
            feed_path,
            vec![],
            vec![&hello],
            RpcStatusCode::UNAUTHENTICATED,
        ),
        (
            "feed still sending, wrongly signed",
            feed_path,
            vec![strangers.as_str()],
            vec![&hello],
            RpcStatusCode::UNAUTHENTICATED,
        ),
        (
            "feed, a room the token does not allow",
            feed_path,
            vec![alice.as_str(), "room=ops"],
            vec![&hello],
            RpcStatusCode::PERMISSION_DENIED,
        ),
        (
            "feed, a user header not the caller's",
            feed_path,
            vec![alice.as_str(), "room=lab", "user=bob"],
            vec![&hello],
            RpcStatusCode::PERMISSION_DENIED,
        ),
        (
            "feed, an update not the caller's after one that was",
            feed_path,
            vec![alice.as_str(), "room=lab"],
            vec![&hello, &as_bob],
            RpcStatusCode::PERMISSION_DENIED,
        ),
    ];
    for (what, path, headers, messages, code) in cases {
        let seen = strict_call(&server.target, path, &headers, &messages);
        println!("{what}: {}", seen["frames"]);
        assert_one_end(&seen, u64::try_from(i32::from(code)).unwrap());
    }
}

#[test]
fn the_server_binary_says_in_one_line_why_its_auth_flags_cannot_serve() {
    let dir = tempfile::tempdir().unwrap();
    let no_keys = dir.path().join("empty.json");
    std::fs::write(&no_keys, r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#).unwrap();
    let issuer = Issuer::generate();
    let jwks = issuer.jwks();
    for (args, said) in [
        (
            vec![
                "--auth-jwks",
                "/nonexistent/jwks.json",
                "--auth-audience",
                AUDIENCE,
            ],
            "cannot read --auth-jwks /nonexistent/jwks.json",
        ),
        (
            vec!["--auth-jwks", arg(&no_keys), "--auth-any-audience"],
            "none of its 1 keys is an RS256 or ES256 signing key",
        ),
        // Fail closed: an audience, or a flag that says any will do.
        (
            vec!["--auth-jwks", arg(&jwks)],
            "--auth-jwks needs --auth-audience AUD, the audience (aud) this server is",
        ),
        (
            vec!["--auth-open-rooms"],
            "--auth-open-rooms needs --auth-jwks or --tls-client-ca",
        ),
    ] {
        let mut args = args;
        args.extend(["--addr", "127.0.0.1:0"]);
        for check in [false, true] {
            let mut args = args.clone();
            if check {
                args.push("--check-config");
            }
            let output = run_server_binary(&args, WAIT);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
            assert!(
                stderr.starts_with("server: ") && stderr.contains(said),
                "{args:?}: {stderr}"
            );
        }
    }
    for usage in [
        &["--auth-issuer", ISSUER][..],
        &["--auth-any-audience"],
        &[
            "--auth-jwks",
            arg(&jwks),
            "--auth-audience",
            AUDIENCE,
            "--auth-any-audience",
        ],
    ] {
        let output = run_server_binary(usage, WAIT);
        assert_eq!(output.status.code(), Some(2), "{usage:?}");
    }
    let checked = run_server_binary(
        &[
            "--check-config",
            "--auth-jwks",
            arg(&issuer.jwks()),
            "--auth-audience",
            AUDIENCE,
        ],
        WAIT,
    );
    assert_eq!(checked.status.code(), Some(0));
    let config: Value = serde_json::from_slice(&checked.stdout).unwrap();
    assert_eq!(config["auth_jwks"], arg(&issuer.jwks()));
    assert_eq!(config["auth_audience"], AUDIENCE);
    assert_eq!(config["auth_any_audience"], false);
    assert_eq!(config["auth_name_claim"], "sub");
    assert_eq!(config["auth_open_rooms"], false);
    let opened = run_server_binary(
        &[
            "--check-config",
            "--auth-jwks",
            arg(&issuer.jwks()),
            "--auth-any-audience",
            "--auth-open-rooms",
        ],
        WAIT,
    );
    assert_eq!(opened.status.code(), Some(0), "{opened:?}");
    let config: Value = serde_json::from_slice(&opened.stdout).unwrap();
    assert_eq!(config["auth_audience"], Value::Null);
    assert_eq!(config["auth_any_audience"], true);
    assert_eq!(config["auth_open_rooms"], true);
}

#[test]
fn a_bearer_token_library_client_refuses_plaintext_off_this_machine() {
    let token = BearerToken::new("a.b.c").unwrap();
    let remote = ConnectOptions {
        token: Some(token.clone()),
        ..ConnectOptions::new("0.0.0.0:1")
    };
    let refused = client::connect(&remote).err().unwrap();
    assert!(refused
        .to_string()
        .contains("refusing to send the token in plaintext"));
    let local = ConnectOptions {
        token: Some(token),
        ..ConnectOptions::new("127.0.0.1:1")
    };
    assert!(client::connect(&local).is_ok());
}

#[test]
fn names_from_tokens_and_certificates_obey_the_rule_of_names() {
    let issuer = Issuer::generate();
    let server = server(&issuer);
    let forged = "ann\n [Feed Update] System: forged";
    let long = "a".repeat(65);
    for (name, rule) in [
        (forged, "is not printable ASCII"),
        ("ann\u{1b}[2J", "is not printable ASCII"),
        ("Zoë", "is not printable ASCII"),
        (long.as_str(), "is 65 bytes long, more than 64"),
        (" ada", "starts or ends with a space"),
    ] {
        let token = bearer(&issuer.sign(Key::Rs256, &claims(name, json!({"rooms": ["*"]}))));
        let client = client_with(&server, Some(&token), &[]);
        let status = refusal(client.get_learning_status(&StatusRequest::default()));
        assert_eq!(status.code(), RpcStatusCode::UNAUTHENTICATED, "{name:?}");
        assert!(
            status.message().starts_with(
                "the token's \"sub\" claim does not name a caller this server accepts: the caller name "
            ) && status.message().contains(rule),
            "{name:?}: {}",
            status.message()
        );
    }
    // The issue's case: the forged name's call is refused before it joins,
    // so the room sees no line of it.
    let ann = bearer(&issuer.sign(Key::Rs256, &claims(forged, json!({"rooms": ["*"]}))));
    let watcher = bearer(&issuer.sign(Key::Rs256, &claims("bob", json!({"rooms": ["*"]}))));
    let mut bobs = Participant::join(&server, "lab", Some(&watcher), None);
    Participant::join(&server, "lab", Some(&ann), None)
        .expect_refusal(RpcStatusCode::UNAUTHENTICATED, "is not printable ASCII");
    bobs.say("", "still alone");
    bobs.expect(&format!(
        "System: {}",
        acknowledgement("bob", "still alone")
    ));
    assert_eq!(refused_count(&server, "bad_identity_name"), 6);

    // A certificate's name: its common name when it has no SAN, else its first SAN.
    let pki = Pki::generate();
    let tls = mutual_tls_server(&pki);
    let long_san = format!("{}.clients.test", "a".repeat(60));
    for (identity, said) in [
        (
            pki.client("zoe", "Zoë Example", &[]),
            "the client certificate's common name does not name a caller this server accepts: \
             the caller name is not printable ASCII (letters, digits, punctuation, spaces)",
        ),
        (
            pki.client("long", "long", &[&long_san]),
            "the client certificate's subject alternative name does not name a caller this \
             server accepts: the caller name is 73 bytes long, more than 64",
        ),
    ] {
        let client = certificate_client(&pki, &tls, identity);
        let status = refusal(client.get_learning_status(&StatusRequest::default()));
        assert_eq!(status.code(), RpcStatusCode::UNAUTHENTICATED, "{said}");
        assert_eq!(status.message(), said);
    }
    let fine = certificate_client(&pki, &tls, pki.client("fine", "fine", &[]));
    assert!(fine.get_learning_status(&StatusRequest::default()).is_ok());
}

#[test]
fn log_lines_escape_what_callers_send_and_name_who_really_called() {
    let issuer = Issuer::generate();
    let port = crate::support::free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut command = Command::new(SERVER_BIN);
    command
        .args(["--addr", &addr, "--delay-ms", "0"])
        .args([
            "--auth-jwks",
            arg(&issuer.jwks()),
            "--auth-audience",
            AUDIENCE,
        ])
        .env("RUST_LOG", "debug");
    let mut server = ChildGuard::spawn("server", command);
    server.wait_for_port(port, WAIT);
    let token = bearer(&issuer.sign(Key::Rs256, &claims("ada", json!({}))));
    let mut headers = MetadataBuilder::new();
    headers.add_str("authorization", &token).unwrap();
    let client = client::connect(&ConnectOptions::new(addr.clone()))
        .unwrap()
        .with_options(CallOption::default().timeout(WAIT).headers(headers.build()));
    // A user_id that would start a line of its own, a topic that would clear
    // the operator's terminal.
    let forged =
        "mallory\n[2026-12-05T10:05:59Z INFO  learning_messenger::service::messenger] forged";
    client
        .get_learning_status(&StatusRequest {
            user_id: forged.into(),
            ..Default::default()
        })
        .unwrap();
    let topic = TopicRequest {
        topic: "gRPC\u{1b}[2J\u{202e}".into(),
        ..Default::default()
    };
    let updates: Vec<_> = client.stream_learnings(&topic).unwrap().collect();
    assert!(updates.iter().all(Result::is_ok), "{updates:?}");
    let echoes: Vec<_> = client
        .collaborative_feed(vec![feed("eve\r\n", "hi\nthere")])
        .unwrap()
        .collect();
    assert!(echoes.iter().all(Result::is_ok), "{echoes:?}");
    let expected = [
        "📡 [caller ada, token] Unary Request from: mallory\\n[2026-12-05T10:05:59Z INFO  \
         learning_messenger::service::messenger] forged",
        "📡 [caller ada, token] Server Streaming topic: gRPC\\u{1b}[2J\\u{202e}",
        "📡 [caller ada, token] Bi-directional 'Collaborative Feed' opened.",
        " [Feed] From eve\\r\\n: hi\\nthere",
    ];
    let logged = || {
        let log = server.log();
        expected.iter().all(|line| log.contains(line))
    };
    assert!(wait_until(WAIT, logged), "{}", server.log());
    let log = server.log();
    assert!(
        !log.lines()
            .any(|line| line.starts_with("[2026-12-05T10:05:59Z") || line == "there"),
        "{log}"
    );
    assert!(
        !log.contains('\u{1b}') && !log.contains('\u{202e}'),
        "{log}"
    );
}

#[test]
fn a_token_for_another_app_is_refused_unless_any_audience_is_meant() {
    let issuer = Issuer::generate();
    let other_app = bearer(&issuer.sign(Key::Rs256, &claims("ada", json!({"aud": "other-app"}))));
    let no_audience = bearer(&issuer.sign(Key::Rs256, &claims("ada", json!({"aud": null}))));
    let ours = bearer(&issuer.sign(Key::Rs256, &claims("ada", json!({}))));
    let strict = server(&issuer);
    for token in [&other_app, &no_audience] {
        let client = client_with(&strict, Some(token), &[]);
        let status = refusal(client.get_learning_status(&StatusRequest::default()));
        assert_eq!(status.code(), RpcStatusCode::UNAUTHENTICATED);
        assert_eq!(
            status.message(),
            format!("token for the wrong audience: this server is \"{AUDIENCE}\"")
        );
    }
    assert_eq!(refused_count(&strict, "wrong_audience"), 2);
    // --auth-any-audience: said, not left out.
    let any = server_with_auth(AuthConfig {
        jwks: Some(issuer.jwks()),
        issuer: Some(ISSUER.to_owned()),
        any_audience: true,
        ..AuthConfig::default()
    });
    for token in [&other_app, &no_audience, &ours] {
        let client = client_with(&any, Some(token), &[]);
        assert!(every_method(&client).iter().all(Result::is_ok));
    }
    // Left out, the server does not start.
    let unsaid = learning_messenger::server::start(&ServerConfig {
        auth: AuthConfig {
            jwks: Some(issuer.jwks()),
            ..AuthConfig::default()
        },
        ..test_config()
    });
    let Err(why) = unsaid else {
        panic!("a server with --auth-jwks and no audience started")
    };
    assert!(
        why.starts_with("--auth-jwks needs --auth-audience AUD"),
        "{why}"
    );
}

#[test]
fn rooms_fail_closed_for_a_token_without_a_rooms_claim_unless_opened() {
    let issuer = Issuer::generate();
    let carol = bearer(&issuer.sign(Key::Rs256, &claims("carol", json!({}))));
    let nobody = bearer(&issuer.sign(Key::Rs256, &claims("dan", json!({"rooms": []}))));
    let closed = server(&issuer);
    Participant::join(&closed, "lab", Some(&carol), None).expect_refusal(
        RpcStatusCode::PERMISSION_DENIED,
        "carol may not join room 'lab': its token has no rooms claim, and this server opens \
         no room to such callers (--auth-open-rooms would open every room)",
    );
    // Only rooms are closed to her: the lab's calls, the echo included, are served.
    assert!(every_method(&client_with(&closed, Some(&carol), &[]))
        .iter()
        .all(Result::is_ok));
    assert_eq!(refused_count(&closed, "room_not_allowed"), 1);

    let open = server_with_auth(AuthConfig {
        jwks: Some(issuer.jwks()),
        issuer: Some(ISSUER.to_owned()),
        audience: Some(AUDIENCE.to_owned()),
        open_rooms: true,
        ..AuthConfig::default()
    });
    let mut carols = Participant::join(&open, "any-room-at-all", Some(&carol), None);
    carols.say("", "in");
    carols.expect(&format!("System: {}", acknowledgement("carol", "in")));
    // A rooms claim still bounds its caller: an empty list joins none.
    Participant::join(&open, "lab", Some(&nobody), None).expect_refusal(
        RpcStatusCode::PERMISSION_DENIED,
        "dan may not join room 'lab': the token's rooms do not include it",
    );
    // And a caller without a token is still nobody.
    Participant::join(&open, "lab", None, Some("mallory"))
        .expect_refusal(RpcStatusCode::UNAUTHENTICATED, "missing token");
}

#[test]
fn anonymous_watch_streams_fill_a_limit_of_their_own_not_the_authenticated_calls() {
    use futures::TryStreamExt;
    use learning_messenger::proto::health::{HealthCheckRequest, HealthCheckResponse};
    use learning_messenger::proto::reflection_v1alpha::ServerReflectionRequest;
    use learning_messenger::rpc::health::HealthClient;
    use learning_messenger::rpc::reflection::ServerReflectionClient;

    const OPEN: usize = 8;
    let issuer = Issuer::generate();
    // Fewer places for the authenticated calls than the open streams hold:
    // before the open services had a limit of their own, these streams
    // alone filled the server's.
    let server = TestServer::with_config(ServerConfig {
        delay: Duration::ZERO,
        max_calls_in_flight: OPEN / 2,
        max_open_streams: OPEN,
        auth: AuthConfig {
            jwks: Some(issuer.jwks()),
            issuer: Some(ISSUER.to_owned()),
            audience: Some(AUDIENCE.to_owned()),
            ..AuthConfig::default()
        },
        ..test_config()
    });
    let channel = server.client().channel().clone();
    let health =
        HealthClient::new(channel.clone()).with_options(CallOption::default().timeout(WAIT));
    let request = HealthCheckRequest::default();
    // Each watch is open once its first answer is read.
    let mut watches: Vec<grpcio::ClientSStreamReceiver<HealthCheckResponse>> = Vec::new();
    for _ in 0..OPEN {
        let mut watch = health.watch_async(&request).unwrap();
        assert!(block_on(watch.try_next()).unwrap().is_some());
        watches.push(watch);
    }
    let over = |status: RpcStatus| {
        assert_eq!(
            status.code(),
            RpcStatusCode::RESOURCE_EXHAUSTED,
            "{status:?}"
        );
        assert_eq!(
            status.message(),
            format!(
                "the server has {OPEN} open streams (health Watch, reflection) in flight, \
                 its limit: retry later"
            )
        );
    };
    over(refusal(block_on(
        health
            .watch_async(&request)
            .unwrap()
            .try_collect::<Vec<_>>(),
    )));
    let reflection =
        ServerReflectionClient::new(channel).with_options(CallOption::default().timeout(WAIT));
    let (mut sender, mut receiver) = reflection.server_reflection_info_v1alpha_async().unwrap();
    let mut list = ServerReflectionRequest::new();
    list.set_list_services(String::new());
    let _ = block_on(sender.send((list, WriteFlags::default())));
    over(refusal(block_on(receiver.try_next())));

    // The authenticated calls have their places, and probes their Check.
    let token = bearer(&issuer.sign(Key::Rs256, &claims("ada", json!({}))));
    let client = client_with(&server, Some(&token), &[]);
    for _ in 0..3 {
        assert!(every_method(&client).iter().all(Result::is_ok));
    }
    assert!(health.check(&request).is_ok());
    // A watch that ends gives its place back.
    drop(watches.pop());
    assert!(wait_until(WAIT, || {
        let mut watch = health.watch_async(&request).unwrap();
        block_on(watch.try_next()).is_ok()
    }));
}
