//! Cross-language interop: runs scripts/interop.sh, which pairs the Python
//! reference (the seed's client.py and server.py) with the Rust binaries in all
//! four combinations and requires every client transcript to match the
//! Python-vs-Python one. The binaries are passed in through env vars, so the
//! script does not run cargo (which would wait forever on the lock this
//! `cargo test` holds).

use std::process::Command;

#[test]
fn python_and_rust_transcripts_match() {
    // Read when run: a target dir shared by clones keeps the binary built in another.
    let root = std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR");
    let output = Command::new("bash")
        .arg("scripts/interop.sh")
        .current_dir(root)
        .env("MESSENGER_SERVER_BIN", env!("CARGO_BIN_EXE_server"))
        .env("MESSENGER_CLIENT_BIN", env!("CARGO_BIN_EXE_client"))
        .output()
        .expect("cannot run bash scripts/interop.sh");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "scripts/interop.sh failed ({}):\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        output.status
    );
    println!("{stdout}");
}
