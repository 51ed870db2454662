//! TLS: servers with a CA and certificate generated at run time (rcgen), the
//! clients they serve and refuse, and the server binary's TLS start errors.
//! Mutual TLS: a client certificate from the server's client CA is served;
//! none, one from another CA or an expired one is refused at the handshake,
//! for our client (library and binary) and the Python reference alike, and
//! the server's log says nothing about it at info level.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::{
    failure, mask_times, python_client_command, python_stubs, run_server_binary, wait_until,
    ServerProcess, TestServer, LAB_TRANSCRIPT, WAIT,
};
use grpcio::RpcStatusCode;
use learning_messenger::client::{self, ConnectOptions};
use learning_messenger::proto::messenger::{StatusRequest, TopicRequest};
use learning_messenger::rpc::messenger::LearningMessengerClient;
use learning_messenger::server::{ServerConfig, TlsIdentity};
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use tempfile::TempDir;

/// The name in the server's certificate.
pub(crate) const SERVER_NAME: &str = "localhost";

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
/// `SERVER_NAME` (and 127.0.0.1) signed by it and the server's key, a second,
/// unrelated CA, and client certificates (mutual TLS): one signed by the CA,
/// one by the other CA, and an expired one signed by the CA.
pub(crate) struct Pki {
    dir: TempDir,
    authority: Authority,
    pub(crate) ca: PathBuf,
    other_ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    client: TlsIdentity,
    strangers_client: TlsIdentity,
    expired_client: TlsIdentity,
}

impl Pki {
    pub(crate) fn generate() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let (authority, stranger) = (Authority::new("test CA"), Authority::new("another CA"));
        let server_key = KeyPair::generate().unwrap();
        let server_cert = CertificateParams::new(vec![SERVER_NAME.to_owned(), "127.0.0.1".into()])
            .unwrap()
            .signed_by(&server_key, &authority.cert, &authority.key)
            .unwrap();
        let mut expired = client_params("expired client");
        expired.not_before = rcgen::date_time_ymd(2020, 1, 1);
        expired.not_after = rcgen::date_time_ymd(2021, 1, 1);
        Pki {
            ca: write(&dir, "ca.pem", &authority.cert.pem()),
            other_ca: write(&dir, "other-ca.pem", &stranger.cert.pem()),
            cert: write(&dir, "server.pem", &server_cert.pem()),
            key: write(&dir, "server.key", &server_key.serialize_pem()),
            client: client_identity(&dir, "client", client_params("client"), &authority),
            strangers_client: client_identity(
                &dir,
                "strangers-client",
                client_params("another CA's client"),
                &stranger,
            ),
            expired_client: client_identity(&dir, "expired-client", expired, &authority),
            dir,
            authority,
        }
    }

    /// The server's certificate and key.
    pub(crate) fn identity(&self) -> TlsIdentity {
        TlsIdentity {
            cert: self.cert.clone(),
            key: self.key.clone(),
        }
    }

    fn file(&self, name: &str, contents: &str) -> PathBuf {
        write(&self.dir, name, contents)
    }

    /// A client certificate signed by the CA, with `common_name` and these
    /// subject alternative names (DNS names), as FILE.pem and FILE.key.
    pub(crate) fn client(&self, file: &str, common_name: &str, dns_names: &[&str]) -> TlsIdentity {
        let mut params = client_params(common_name);
        params.subject_alt_names = dns_names
            .iter()
            .map(|name| rcgen::SanType::DnsName((*name).try_into().unwrap()))
            .collect();
        client_identity(&self.dir, file, params, &self.authority)
    }
}

fn client_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params
}

/// Signs `params` with `authority`; writes NAME.pem and NAME.key.
fn client_identity(
    dir: &TempDir,
    name: &str,
    params: CertificateParams,
    authority: &Authority,
) -> TlsIdentity {
    let key = KeyPair::generate().unwrap();
    let cert = params
        .signed_by(&key, &authority.cert, &authority.key)
        .unwrap();
    TlsIdentity {
        cert: write(dir, &format!("{name}.pem"), &cert.pem()),
        key: write(dir, &format!("{name}.key"), &key.serialize_pem()),
    }
}

fn write(dir: &TempDir, name: &str, contents: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

pub(crate) fn tls_server(pki: &Pki) -> TestServer {
    TestServer::with_config(ServerConfig {
        delay: Duration::ZERO,
        tls: Some(pki.identity()),
        ..crate::support::test_config()
    })
}

/// A server in this process that requires a client certificate from the CA.
pub(crate) fn mutual_tls_server(pki: &Pki) -> TestServer {
    TestServer::with_config(ServerConfig {
        delay: Duration::ZERO,
        tls: Some(pki.identity()),
        tls_client_ca: Some(pki.ca.clone()),
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

/// The client certificates of the mutual TLS tests: which one a client presents.
#[derive(Clone, Copy, Debug)]
enum Presented {
    /// Signed by the server's client CA: served.
    Valid,
    /// No certificate at all.
    Nothing,
    /// Signed by another CA.
    AnotherCasCertificate,
    /// Signed by the client CA, but expired.
    Expired,
}

const REFUSED: [Presented; 3] = [
    Presented::Nothing,
    Presented::AnotherCasCertificate,
    Presented::Expired,
];

impl Pki {
    fn presented(&self, presented: Presented) -> Option<&TlsIdentity> {
        match presented {
            Presented::Valid => Some(&self.client),
            Presented::Nothing => None,
            Presented::AnotherCasCertificate => Some(&self.strangers_client),
            Presented::Expired => Some(&self.expired_client),
        }
    }
}

fn path(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A library client trusting the CA and presenting `presented`.
fn mtls_connect(target: &str, pki: &Pki, presented: Presented) -> LearningMessengerClient {
    let options = ConnectOptions {
        timeout: Some(Duration::from_secs(10)),
        tls_ca: Some(pki.ca.clone()),
        tls_server_name: Some(SERVER_NAME.to_owned()),
        tls_identity: pki.presented(presented).cloned(),
        ..ConnectOptions::new(target)
    };
    client::connect(&options).expect("client set-up")
}

/// Runs `command` to completion (killed after 60 s), its output collected.
fn run(command: &mut Command) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{command:?} does not start: {e}"));
    let exited = wait_until(Duration::from_secs(60), || {
        child.try_wait().expect("try_wait").is_some()
    });
    if !exited {
        let _ = child.kill();
    }
    let output = child.wait_with_output().expect("output");
    assert!(exited, "{command:?} still running after 60 s");
    output
}

/// The `client` binary's `status` against `target`, presenting `presented`.
fn client_binary_status(target: &str, pki: &Pki, presented: Presented) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_client"));
    command.args([
        "--target",
        target,
        "--timeout-ms",
        "10000",
        "--tls-ca",
        path(&pki.ca),
        "--tls-server-name",
        SERVER_NAME,
    ]);
    if let Some(identity) = pki.presented(presented) {
        command.args([
            "--tls-cert",
            path(&identity.cert),
            "--tls-key",
            path(&identity.key),
        ]);
    }
    run(command.arg("status").env_remove("RUST_LOG"))
}

/// Asserts the one-line report of a refused handshake, `error: TARGET: UNAVAILABLE: ...`.
fn assert_one_line_refusal(report: &str, target: &str, what: &str) {
    assert_eq!(report.lines().count(), 1, "{what}: not one line: {report}");
    assert!(
        report.starts_with(&format!("error: {target}: UNAVAILABLE: ")),
        "{what}: {report}"
    );
}

/// Lines of the server's log about a handshake, at info level or above.
fn handshake_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|line| {
            let lower = line.to_lowercase();
            ["handshake", "ssl", "certificate", "tsi"]
                .iter()
                .any(|word| lower.contains(word))
        })
        .collect()
}

#[test]
fn mutual_tls_serves_a_client_certificate_from_the_client_ca_and_refuses_others() {
    let pki = Pki::generate();
    let server = mutual_tls_server(&pki);
    assert_served(&mtls_connect(&server.target, &pki, Presented::Valid));
    for presented in REFUSED {
        let client = mtls_connect(&server.target, &pki, presented);
        let result = client.get_learning_status(&StatusRequest::default());
        let report = client::ClientError::from(result.unwrap_err()).report(&server.target);
        println!("library client, {presented:?}: {report}");
        assert_one_line_refusal(&report, &server.target, &format!("{presented:?}"));
        assert_refused(&client, &format!("{presented:?}"));
    }
    // The refusals did not disturb the server.
    assert_served(&mtls_connect(&server.target, &pki, Presented::Valid));
}

#[test]
fn a_plaintext_client_is_refused_by_a_mutual_tls_server() {
    let pki = Pki::generate();
    let server = mutual_tls_server(&pki);
    assert_refused(
        &connect(&server.target, None, SERVER_NAME),
        "plaintext client",
    );
}

/// Starts the server binary with mutual TLS, default log level (info).
fn mtls_server_process(pki: &Pki) -> ServerProcess {
    ServerProcess::start(&[
        "--delay-ms",
        "0",
        "--tls-cert",
        path(&pki.cert),
        "--tls-key",
        path(&pki.key),
        "--tls-client-ca",
        path(&pki.ca),
    ])
}

/// Waits until the server has logged `count` unary requests: every line
/// logged before the last of them is then in the log.
fn wait_for_requests(server: &ServerProcess, count: usize) {
    assert!(
        wait_until(WAIT, || server.log().matches("Unary Request").count()
            >= count),
        "{count} requests not logged; log:\n{}",
        server.log()
    );
}

#[test]
fn the_client_binary_presents_its_certificate_and_reports_a_refusal_in_one_line() {
    let pki = Pki::generate();
    let server = mtls_server_process(&pki);
    let served = client_binary_status(&server.target, &pki, Presented::Valid);
    assert_eq!(
        String::from_utf8_lossy(&served.stdout),
        "Server Response: System ready for research. Status check OK. (Active: True)\n",
        "stderr: {}",
        String::from_utf8_lossy(&served.stderr)
    );
    assert_eq!(served.status.code(), Some(0));
    for presented in REFUSED {
        let output = client_binary_status(&server.target, &pki, presented);
        let stderr = String::from_utf8_lossy(&output.stderr);
        println!("client binary, {presented:?}: {}", stderr.trim_end());
        assert_eq!(output.status.code(), Some(1), "{presented:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{presented:?}");
        assert_one_line_refusal(&stderr, &server.target, &format!("{presented:?}"));
    }
    assert_refusals_not_logged(&server, &pki);
}

/// After a served call, which the log shows, no refused handshake was logged
/// at info or above.
fn assert_refusals_not_logged(server: &ServerProcess, pki: &Pki) {
    assert_eq!(
        client_binary_status(&server.target, pki, Presented::Valid)
            .status
            .code(),
        Some(0)
    );
    wait_for_requests(server, 2);
    let log = server.log();
    assert!(
        handshake_lines(&log).is_empty(),
        "refused handshakes logged at info or above:\n{log}"
    );
}

/// python/client.py (the lab's four demos, no delays) against `target`,
/// presenting `presented`. It runs from `stubs`, where it finds `protos`.
fn python_client(stubs: &Path, target: &str, pki: &Pki, presented: Presented) -> Output {
    let mut args = vec![
        "--target".to_owned(),
        target.to_owned(),
        "--delay-scale".into(),
        "0".into(),
        "--tls-ca".into(),
        path(&pki.ca).into(),
        "--tls-server-name".into(),
        SERVER_NAME.into(),
    ];
    if let Some(identity) = pki.presented(presented) {
        args.extend([
            "--tls-cert".to_owned(),
            path(&identity.cert).into(),
            "--tls-key".into(),
            path(&identity.key).into(),
        ]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    run(&mut python_client_command(stubs, &args))
}

#[test]
fn the_python_reference_client_is_served_and_refused_alike() {
    let pki = Pki::generate();
    let stubs = tempfile::tempdir().unwrap();
    python_stubs(stubs.path());
    let server = mtls_server_process(&pki);
    let served = python_client(stubs.path(), &server.target, &pki, Presented::Valid);
    assert!(
        served.status.success(),
        "python client: {}",
        String::from_utf8_lossy(&served.stderr)
    );
    assert_eq!(
        mask_times(&String::from_utf8_lossy(&served.stdout)),
        LAB_TRANSCRIPT
    );
    for presented in REFUSED {
        let output = python_client(stubs.path(), &server.target, &pki, presented);
        let stderr = String::from_utf8_lossy(&output.stderr);
        // Python's report of the failed call: details="...".
        let details = stderr
            .lines()
            .find(|line| line.contains("details = "))
            .unwrap_or_default();
        println!("python client, {presented:?}: {}", details.trim());
        assert!(!output.status.success(), "{presented:?}: {stderr}");
        assert!(
            stderr.contains("StatusCode.UNAVAILABLE"),
            "{presented:?}: {stderr}"
        );
        // Refused before the first call: nothing printed but its heading.
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "--- Unary Request ---\n"
        );
    }
    assert_refusals_not_logged(&server, &pki);
}

#[test]
fn a_client_ca_without_the_servers_certificate_is_a_usage_error() {
    let output = run_server_binary(&["--tls-client-ca", "ca.pem"], Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_client_certificate_without_a_ca_is_a_usage_error() {
    let output = run(Command::new(env!("CARGO_BIN_EXE_client")).args([
        "--tls-cert",
        "client.pem",
        "--tls-key",
        "client.key",
        "status",
    ]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
}
