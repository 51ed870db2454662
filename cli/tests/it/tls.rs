//! TLS: servers with a CA and certificate generated at run time (rcgen), the
//! clients they serve and refuse, and the server binary's TLS start errors.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::{failure, run_server_binary, ServerProcess, TestServer};
use grpcio::RpcStatusCode;
use learning_messenger::client::{self, ConnectOptions};
use learning_messenger::proto::messenger::{StatusRequest, TopicRequest};
use learning_messenger::rpc::messenger::LearningMessengerClient;
use learning_messenger::server::{ServerConfig, TlsIdentity};
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use tempfile::TempDir;

/// The name in the server's certificate.
const SERVER_NAME: &str = "localhost";

/// A certificate authority: its certificate and signing key.
struct Authority {
    cert: Certificate,
    key: KeyPair,
}

impl Authority {
    fn new(name: &str) -> Authority {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        Authority {
            cert: params.self_signed(&key).unwrap(),
            key,
        }
    }
}

/// PEM files in a temporary directory: a CA, a server certificate for
/// `SERVER_NAME` signed by it and the server's key, and a second, unrelated CA.
struct Pki {
    dir: TempDir,
    ca: PathBuf,
    other_ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Pki {
    fn generate() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let (authority, stranger) = (Authority::new("test CA"), Authority::new("another CA"));
        let server_key = KeyPair::generate().unwrap();
        let server_cert = CertificateParams::new(vec![SERVER_NAME.to_owned()])
            .unwrap()
            .signed_by(&server_key, &authority.cert, &authority.key)
            .unwrap();
        Pki {
            ca: write(&dir, "ca.pem", &authority.cert.pem()),
            other_ca: write(&dir, "other-ca.pem", &stranger.cert.pem()),
            cert: write(&dir, "server.pem", &server_cert.pem()),
            key: write(&dir, "server.key", &server_key.serialize_pem()),
            dir,
        }
    }

    fn identity(&self) -> TlsIdentity {
        TlsIdentity {
            cert: self.cert.clone(),
            key: self.key.clone(),
        }
    }

    fn file(&self, name: &str, contents: &str) -> PathBuf {
        write(&self.dir, name, contents)
    }
}

fn write(dir: &TempDir, name: &str, contents: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

fn tls_server(pki: &Pki) -> TestServer {
    TestServer::with_config(ServerConfig {
        delay: Duration::ZERO,
        tls: Some(pki.identity()),
        ..crate::support::test_config()
    })
}

/// A client with a deadline on each call: a refused handshake must fail, not hang.
fn connect(target: &str, ca: Option<&Path>, server_name: &str) -> LearningMessengerClient {
    let options = ConnectOptions {
        timeout: Some(Duration::from_secs(10)),
        tls_ca: ca.map(Path::to_path_buf),
        tls_server_name: ca.map(|_| server_name.to_owned()),
        ..ConnectOptions::new(target)
    };
    client::connect(&options).expect("client set-up")
}

fn assert_served(client: &LearningMessengerClient) {
    assert!(
        client
            .get_learning_status(&StatusRequest::default())
            .unwrap()
            .active
    );
    let request = TopicRequest {
        topic: "TLS".into(),
        ..Default::default()
    };
    assert_eq!(client.stream_learnings(&request).unwrap().count(), 4);
}

fn assert_refused(client: &LearningMessengerClient, what: &str) {
    let status = failure(client.get_learning_status(&StatusRequest::default()));
    assert_eq!(
        status.code(),
        RpcStatusCode::UNAVAILABLE,
        "{what}: {status:?}"
    );
}

#[test]
fn a_client_trusting_the_servers_ca_is_served() {
    let pki = Pki::generate();
    let server = tls_server(&pki);
    assert_served(&connect(&server.target, Some(&pki.ca), SERVER_NAME));
}

#[test]
fn a_plaintext_client_against_a_tls_server_fails_cleanly() {
    let pki = Pki::generate();
    let server = tls_server(&pki);
    assert_refused(
        &connect(&server.target, None, SERVER_NAME),
        "plaintext client",
    );
    // The failed handshake did not disturb the server.
    assert_served(&connect(&server.target, Some(&pki.ca), SERVER_NAME));
}

#[test]
fn a_client_trusting_another_ca_is_refused() {
    let pki = Pki::generate();
    let server = tls_server(&pki);
    assert_refused(
        &connect(&server.target, Some(&pki.other_ca), SERVER_NAME),
        "client trusting another CA",
    );
}

#[test]
fn a_client_expecting_another_server_name_is_refused() {
    let pki = Pki::generate();
    let server = tls_server(&pki);
    assert_refused(
        &connect(&server.target, Some(&pki.ca), "not-the-server.example"),
        "client expecting another name",
    );
}

#[test]
fn the_server_binary_serves_tls_from_its_flags() {
    let pki = Pki::generate();
    let (cert, key) = (pki.cert.to_str().unwrap(), pki.key.to_str().unwrap());
    let server = ServerProcess::start(&["--delay-ms", "0", "--tls-cert", cert, "--tls-key", key]);
    assert_served(&connect(&server.target, Some(&pki.ca), SERVER_NAME));
    assert_refused(
        &connect(&server.target, None, SERVER_NAME),
        "plaintext client",
    );
}

/// Runs the server binary with TLS files that cannot work: it must exit 1
/// with one line on stderr that starts `server:` and mentions `expected`.
fn assert_start_error(cert: &Path, key: &Path, expected: &str) {
    let args = [
        "--addr",
        "127.0.0.1:0",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    let output = run_server_binary(&args, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{args:?}: stderr {stderr}");
    assert_eq!(
        stderr.lines().count(),
        1,
        "{args:?}: not one line: {stderr}"
    );
    assert!(
        stderr.starts_with("server: ") && stderr.contains(expected),
        "{args:?}: {stderr}"
    );
}

#[test]
fn unusable_tls_files_stop_the_server_binary_with_one_line() {
    let pki = Pki::generate();
    let missing = pki.dir.path().join("missing.pem");
    assert_start_error(&missing, &pki.key, "missing.pem");
    assert_start_error(&pki.cert, &missing, "missing.pem");
    let not_pem = pki.file("not-pem.txt", "this is not a certificate\n");
    assert_start_error(&not_pem, &pki.key, "not-pem.txt");
    assert_start_error(&pki.cert, &not_pem, "not-pem.txt");
    let garbled = pki.file(
        "garbled.pem",
        "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
    );
    assert_start_error(&garbled, &pki.key, "garbled.pem");
    // A valid key, but not the certificate's.
    let other_key = pki.file("other.key", &KeyPair::generate().unwrap().serialize_pem());
    assert_start_error(&pki.cert, &other_key, "other.key");
}

#[test]
fn tls_cert_without_key_is_a_usage_error() {
    let output = run_server_binary(&["--tls-cert", "server.pem"], Duration::from_secs(30));
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("Usage"));
}
