//! Cross-language interop: the Python reference (the lab's client.py and
//! server.py, in the project's .venv) against the Rust binaries, in all four
//! pairings, with the simulated delays off. Every client transcript, its
//! `[HH:MM:SS]` times masked, must equal the Python-vs-Python one:
//!   reference: python-client vs python-server
//!   then:      python-client vs rust-server, rust-client vs python-server,
//!              rust-client vs rust-server

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::support::{free_port, mask_times, project_root, run_bounded, venv_program, ChildGuard};

/// How long a server may take to accept connections.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one client run may take (the delays are off: a few seconds at most).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// The headers of the lab's four demos; the reference must print each.
const SECTION_HEADERS: [&str; 4] = [
    "--- Unary Request ---",
    "--- Server Streaming (Real-time updates) ---",
    "--- Client Streaming (Uploading research notes) ---",
    "--- Bi-directional Streaming (Collaborative Feed) ---",
];
/// The lab's full run is 17 lines; fewer than this is not a real transcript.
const MIN_REFERENCE_LINES: usize = 15;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Side {
    Python,
    Rust,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Python => "python",
            Side::Rust => "rust",
        }
    }
}

/// Where the Python reference lives and what runs it.
struct Python {
    interpreter: PathBuf,
    dir: PathBuf,
}

impl Python {
    fn locate() -> Python {
        let python = Python {
            interpreter: venv_program("python3"),
            dir: project_root().join("python"),
        };
        for needed in [
            &python.interpreter,
            &python.dir.join("protos/messenger_pb2_grpc.py"),
        ] {
            assert!(
                needed.exists(),
                "{} is missing: run `bash scripts/bootstrap.sh` (it creates .venv \
                 and the Python stubs)",
                needed.display()
            );
        }
        python
    }

    /// `python3 SCRIPT ARGS` in python/, the lab's delays off, output unbuffered.
    fn command(&self, script: &str, args: &[&str]) -> Command {
        let mut command = Command::new(&self.interpreter);
        command
            .arg(script)
            .args(args)
            .current_dir(&self.dir)
            .env("MESSENGER_DELAY_SCALE", "0")
            .env("PYTHONUNBUFFERED", "1");
        command
    }
}

/// A server of either kind on 127.0.0.1 at a free port, accepting connections.
struct Server {
    side: Side,
    process: ChildGuard,
    port: u16,
}

fn start_server(side: Side, python: &Python) -> Server {
    let port = free_port();
    let command = match side {
        // server.py binds [::]:PORT, which includes 127.0.0.1.
        Side::Python => python.command("server.py", &["--port", &port.to_string()]),
        Side::Rust => {
            let mut command = Command::new(env!("CARGO_BIN_EXE_server"));
            command.args(["--addr", &format!("127.0.0.1:{port}"), "--delay-ms", "0"]);
            command
        }
    };
    let mut process = ChildGuard::spawn(&format!("{} server", side.name()), command);
    process.wait_for_port(port, LISTEN_TIMEOUT);
    Server {
        side,
        process,
        port,
    }
}

/// Runs a client of either kind against `server`: its stdout, or why it failed.
fn run_client(side: Side, python: &Python, server: &Server) -> Result<String, String> {
    let target = format!("127.0.0.1:{}", server.port);
    let command = match side {
        Side::Python => python.command("client.py", &["--target", &target]),
        Side::Rust => {
            let mut command = Command::new(env!("CARGO_BIN_EXE_client"));
            command.args(["--target", &target, "--delay-ms", "0"]);
            command
        }
    };
    let output = run_bounded(command, CLIENT_TIMEOUT);
    let failure = match output.status {
        Some(status) if status.success() => return Ok(output.stdout),
        Some(status) => format!("exited with {status}"),
        None => format!("still running after {CLIENT_TIMEOUT:?}, killed"),
    };
    Err(format!(
        "{} client against {target} {failure}\n--- its stdout ---\n{}--- its stderr ---\n{}\
         --- the server's log ---\n{}",
        side.name(),
        output.stdout,
        output.stderr,
        server.process.log()
    ))
}

/// A line diff of `expected` and `actual` (longest common subsequence):
/// ` ` both, `-` only expected, `+` only actual.
fn line_diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    // common[i][j]: the longest common subsequence of a[i..] and b[j..].
    let mut common = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            common[i][j] = if a[i] == b[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let mut diff = String::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            diff.push_str(&format!("  {}\n", a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || common[i + 1][j] >= common[i][j + 1]) {
            diff.push_str(&format!("- {}\n", a[i]));
            i += 1;
        } else {
            diff.push_str(&format!("+ {}\n", b[j]));
            j += 1;
        }
    }
    diff
}

#[test]
fn python_and_rust_transcripts_match() {
    let python = Python::locate();
    let python_server = start_server(Side::Python, &python);
    let rust_server = start_server(Side::Rust, &python);
    println!(
        "interop: python server on 127.0.0.1:{}, rust server on 127.0.0.1:{}",
        python_server.port, rust_server.port
    );

    // The reference must be the lab's full run, not an empty pair.
    let raw = run_client(Side::Python, &python, &python_server)
        .unwrap_or_else(|failure| panic!("reference run failed: {failure}"));
    let reference = mask_times(&raw);
    for header in SECTION_HEADERS {
        assert!(
            reference.lines().any(|line| line == header),
            "the reference transcript lacks {header:?}:\n{raw}"
        );
    }
    let reference_lines = reference.lines().count();
    assert!(
        reference_lines >= MIN_REFERENCE_LINES,
        "the reference transcript has only {reference_lines} lines:\n{raw}"
    );
    println!("✅ python-client vs python-server: reference ({reference_lines} lines)");

    let mut failures = Vec::new();
    for (client, server) in [
        (Side::Python, &rust_server),
        (Side::Rust, &python_server),
        (Side::Rust, &rust_server),
    ] {
        let name = format!("{}-client vs {}-server", client.name(), server.side.name());
        match run_client(client, &python, server).map(|raw| mask_times(&raw)) {
            Err(failure) => {
                println!("❌ {name}: client failed");
                failures.push(format!("{name}: {failure}"));
            }
            Ok(transcript) if transcript == reference => {
                println!(
                    "✅ {name}: identical ({} lines)",
                    transcript.lines().count()
                );
            }
            Ok(transcript) => {
                println!("❌ {name}: differs from the reference");
                failures.push(format!(
                    "{name} differs from the reference \
                     (- python-client vs python-server, + {name}):\n{}",
                    line_diff(&reference, &transcript)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "interop failed:\n\n{}",
        failures.join("\n\n")
    );
}

#[test]
fn the_line_diff_marks_missing_and_extra_lines() {
    assert_eq!(line_diff("a\nb\nc\n", "a\nb\nc\n"), "  a\n  b\n  c\n");
    assert_eq!(
        line_diff("a\nb\nc\n", "a\nx\nc\nd\n"),
        "  a\n- b\n+ x\n  c\n+ d\n"
    );
    assert_eq!(line_diff("", "a\n"), "+ a\n");
    assert_eq!(line_diff("a\n", ""), "- a\n");
}
