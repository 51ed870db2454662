//! Rooms on a Redis that asks for a password (an ACL user) or for TLS (a
//! CA and a client certificate the test makes with rcgen), as managed Redis
//! services do: replicas share rooms through it, and the password is never
//! shown: not in the log, not in `--check-config`, not to clients.

use std::time::Duration;

use grpcio::RpcStatusCode;

use crate::room_store::{Fleet, Raw};
use crate::rooms::WAIT;
use crate::support::{run_server_binary, RedisServer};
use crate::tls::Pki;

const PASSWORD: &str = "s3cret-Pa55";

/// A redis-server whose default user needs a password, with an ACL user
/// `replicas` that may touch only the rooms' keys and channels.
fn redis_with_users() -> RedisServer {
    RedisServer::start_with(|port| {
        let password = format!(">{PASSWORD}");
        let flags = [
            "--port",
            &port.to_string(),
            "--requirepass",
            "not-the-replicas",
            // One config line, `user replicas on >PASSWORD ~room:* &room:* +@all`.
            "--user",
            "replicas",
            "on",
            &password,
            "~room:*",
            "&room:*",
            "+@all",
        ]
        .map(str::to_owned)
        .to_vec();
        let cli = [
            "--user",
            "replicas",
            "--pass",
            PASSWORD,
            "--no-auth-warning",
        ]
        .map(str::to_owned)
        .to_vec();
        (flags, cli)
    })
}

fn share_a_room(fleet: &Fleet) {
    let ann = fleet.raw(0, "lab", "ann", None);
    let mut bob = fleet.raw(1, "lab", "bob", None);
    ann.wait_for_text("System: bob joined the room");
    bob.say("over the secured store");
    ann.wait_for_text("bob: over the secured store");
    bob.leave();
}

#[test]
fn an_acl_user_and_password_reach_the_store_and_the_password_is_never_shown() {
    let redis = redis_with_users();
    let url = format!("redis://replicas:{PASSWORD}@127.0.0.1:{}", redis.port);
    let fleet = Fleet::on(&url, 2, &[]);
    share_a_room(&fleet);
    for replica in &fleet.replicas {
        assert!(
            replica.logged("rooms are kept in redis://replicas:***@"),
            "{}",
            replica.log()
        );
        let log = replica.log();
        assert!(!log.contains(PASSWORD), "{log}");
    }
    let checked = run_server_binary(
        &["--rooms", &url, "--check-config"],
        Duration::from_secs(30),
    );
    let shown = String::from_utf8_lossy(&checked.stdout);
    assert!(checked.status.success(), "{shown}");
    assert!(shown.contains("redis://replicas:***@127.0.0.1"), "{shown}");
    assert!(!shown.contains(PASSWORD), "{shown}");
    // A bad URL is described without its password.
    let bad = run_server_binary(
        &[
            "--rooms",
            &format!("redis://replicas:{PASSWORD}@127.0.0.1:x"),
        ],
        Duration::from_secs(30),
    );
    let said = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success());
    assert!(
        said.contains("not a number") && !said.contains(PASSWORD),
        "{said}"
    );
}

#[test]
fn a_mistyped_rooms_url_is_refused_without_showing_its_password() {
    // No `scheme://` before the credentials: not a URL, but a password all the same.
    for url in [
        format!("redis:/replicas:{PASSWORD}@127.0.0.1:6379"),
        format!("replicas:{PASSWORD}@127.0.0.1:6379"),
        format!("redis//:{PASSWORD}@127.0.0.1:6379"),
    ] {
        let bad = run_server_binary(
            &["--rooms", &url, "--check-config"],
            Duration::from_secs(30),
        );
        let said = String::from_utf8_lossy(&bad.stderr);
        assert!(!bad.status.success(), "{url}: {said}");
        assert!(said.contains("unknown store"), "{url}: {said}");
        assert!(!said.contains(PASSWORD), "{url}: {said}");
        assert!(bad.stdout.is_empty(), "{url}");
    }
}

#[test]
fn a_wrong_password_is_unavailable_naming_the_room_store_not_its_url() {
    let redis = redis_with_users();
    let wrong = "wrong-Pa55";
    let url = format!("redis://replicas:{wrong}@127.0.0.1:{}", redis.port);
    let fleet = Fleet::on(&url, 1, &[]);
    let ann = Raw::join(fleet.target(0), "lab", "ann", None);
    let status = ann
        .ended_within(WAIT)
        .expect("refused")
        .expect_err("the store refuses the password");
    assert_eq!(status.code(), RpcStatusCode::UNAVAILABLE, "{status:?}");
    assert!(status.message().contains("the room store"), "{status:?}");
    assert!(!status.message().contains(wrong), "{status:?}");
    assert!(!status.message().contains("redis://"), "{status:?}");
    let replica = &fleet.replicas[0];
    assert!(replica.logged("is unreachable"), "{}", replica.log());
    let log = replica.log();
    assert!(!log.contains(wrong), "{log}");
}

/// A redis-server on TLS only (`--port 0 --tls-port`), with the test's CA,
/// asking every client for a certificate signed by it.
fn redis_on_tls(pki: &Pki) -> RedisServer {
    let server = pki.identity();
    let client = pki.client("redis-cli", "redis-cli", &[]);
    let path = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    RedisServer::start_with(|port| {
        let flags = vec![
            "--port".into(),
            "0".into(),
            "--tls-port".into(),
            port.to_string(),
            "--tls-cert-file".into(),
            path(&server.cert),
            "--tls-key-file".into(),
            path(&server.key),
            "--tls-ca-cert-file".into(),
            path(&pki.ca),
            "--tls-auth-clients".into(),
            "yes".into(),
        ];
        let cli = vec![
            "--tls".into(),
            "--cacert".into(),
            path(&pki.ca),
            "--cert".into(),
            path(&client.cert),
            "--key".into(),
            path(&client.key),
        ];
        (flags, cli)
    })
}

#[test]
fn replicas_share_rooms_over_tls_with_a_client_certificate() {
    let pki = Pki::generate();
    let redis = redis_on_tls(&pki);
    let client = pki.client("replica", "replica", &[]);
    let url = format!("rediss://127.0.0.1:{}", redis.port);
    let (ca, cert, key) = (
        pki.ca.to_str().unwrap(),
        client.cert.to_str().unwrap(),
        client.key.to_str().unwrap(),
    );
    let flags = [
        "--rooms-ca-file",
        ca,
        "--rooms-client-cert",
        cert,
        "--rooms-client-key",
        key,
    ];
    let fleet = Fleet::on(&url, 2, &flags);
    share_a_room(&fleet);

    // Without the client certificate the server refuses the handshake.
    let refused = Fleet::on(&url, 1, &["--rooms-ca-file", ca]);
    let ann = Raw::join(refused.target(0), "lab", "ann", None);
    let status = ann
        .ended_within(WAIT)
        .expect("refused")
        .expect_err("no client certificate");
    assert_eq!(status.code(), RpcStatusCode::UNAVAILABLE, "{status:?}");
    assert!(status.message().contains("the room store"), "{status:?}");
    let replica = &refused.replicas[0];
    assert!(replica.logged("is unreachable"), "{}", replica.log());
}

#[test]
fn tls_files_need_a_tls_store_and_must_exist() {
    let checked = run_server_binary(
        &[
            "--rooms",
            "redis://127.0.0.1:6379",
            "--rooms-ca-file",
            "ca.pem",
            "--check-config",
        ],
        Duration::from_secs(30),
    );
    let said = String::from_utf8_lossy(&checked.stderr);
    assert!(!checked.status.success());
    assert!(said.contains("rediss://"), "{said}");
    let checked = run_server_binary(
        &[
            "--rooms",
            "rediss://127.0.0.1:6379",
            "--rooms-ca-file",
            "/nonexistent/ca.pem",
            "--check-config",
        ],
        Duration::from_secs(30),
    );
    let said = String::from_utf8_lossy(&checked.stderr);
    assert!(!checked.status.success());
    assert!(
        said.contains("--rooms-ca-file /nonexistent/ca.pem"),
        "{said}"
    );
    assert_eq!(said.lines().count(), 1, "{said}");
}

#[test]
fn tls_files_that_hold_no_pem_certificate_are_refused_by_check_config() {
    let pki = Pki::generate();
    let junk = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(junk.path(), "not a certificate\n").unwrap();
    let key = pki.identity().key;
    let (junk, key) = (junk.path().to_str().unwrap(), key.to_str().unwrap());
    // A CA without a certificate would trust nothing: the store could never be reached.
    for (flags, flag) in [
        (vec!["--rooms-ca-file", junk], "--rooms-ca-file"),
        (vec!["--rooms-ca-file", key], "--rooms-ca-file"),
        (
            vec!["--rooms-client-cert", junk, "--rooms-client-key", key],
            "--rooms-client-cert",
        ),
    ] {
        let mut args = vec!["--rooms", "rediss://127.0.0.1:6379", "--check-config"];
        args.extend(&flags);
        let checked = run_server_binary(&args, Duration::from_secs(30));
        let said = String::from_utf8_lossy(&checked.stderr);
        assert!(!checked.status.success(), "{flags:?}: {said}");
        assert!(
            said.contains(flag) && said.contains("PEM"),
            "{flags:?}: {said}"
        );
    }
}
