//! scripts/bootstrap.sh on a fresh machine: a copy of the checkout as a clone
//! has it (no .venv, no .cargo/config.toml, no Python stubs) run with a HOME
//! and a CARGO_HOME that are new, empty folders, so cargo has no registry
//! cache yet and nothing is vendored. Every step of the bootstrap runs (none
//! builds C-core): grpcio-sys and grpcio fetched, unpacked and patched,
//! .cargo/config.toml, the venv, the Python stubs. Only pip's download cache
//! is the machine's, to spare the downloads: it holds no state of the project.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use crate::support::{project_root, run_bounded, BoundedOutput};

/// Environment that describes the machine's network (proxies, CA bundles),
/// which a fresh login on the same machine has too.
const MACHINE_NETWORK_ENV: [&str; 10] = [
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
    "REQUESTS_CA_BUNDLE",
];

/// Under a loaded 2-core machine the venv alone takes a minute or two.
const BOOTSTRAP_TIMEOUT: Duration = Duration::from_secs(600);

/// The checkout's files as a clone has them: tracked and new ones, not
/// those git ignores; links kept as links.
fn copy_checkout(to: &Path) {
    let root = project_root();
    let mut command = Command::new("git");
    command
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(&root);
    let listed = run_bounded(command, Duration::from_secs(60));
    assert!(
        listed.status.is_some_and(|s| s.success()),
        "git ls-files: {}",
        listed.stderr
    );
    for file in listed.stdout.split('\0').filter(|f| !f.is_empty()) {
        let from = root.join(file);
        let Ok(meta) = from.symlink_metadata() else {
            continue; // deleted in the work tree
        };
        let dest = to.join(file);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from).unwrap(), &dest).unwrap();
        } else {
            std::fs::copy(&from, &dest).unwrap_or_else(|e| panic!("{file}: {e}"));
        }
    }
}

/// The folders of a fresh machine; the toolchain stays the machine's.
struct FreshMachine {
    _dir: tempfile::TempDir,
    clone: PathBuf,
    home: PathBuf,
    cargo_home: PathBuf,
}

impl FreshMachine {
    fn new() -> FreshMachine {
        let dir = tempfile::tempdir().unwrap();
        let [clone, home, cargo_home] =
            ["clone", "home", "cargo"].map(|name| dir.path().join(name));
        for folder in [&clone, &home, &cargo_home] {
            std::fs::create_dir(folder).unwrap();
        }
        copy_checkout(&clone);
        FreshMachine {
            _dir: dir,
            clone,
            home,
            cargo_home,
        }
    }

    /// `program args` in the clone, with only the environment a fresh login has.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Command {
        let real_home = PathBuf::from(std::env::var_os("HOME").expect("HOME is set"));
        let rustup_home = std::env::var_os("RUSTUP_HOME")
            .map_or_else(|| real_home.join(".rustup"), PathBuf::from);
        let pip_cache = std::env::var_os("PIP_CACHE_DIR").map_or_else(
            || {
                std::env::var_os("XDG_CACHE_HOME")
                    .map_or_else(|| real_home.join(".cache"), PathBuf::from)
                    .join("pip")
            },
            PathBuf::from,
        );
        let mut command = Command::new(program);
        command
            .args(args)
            .current_dir(&self.clone)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("CARGO_HOME", &self.cargo_home)
            .env("RUSTUP_HOME", rustup_home)
            .env("PIP_CACHE_DIR", pip_cache);
        if let Some(toolchain) = std::env::var_os("RUSTUP_TOOLCHAIN") {
            command.env("RUSTUP_TOOLCHAIN", toolchain);
        }
        // The machine's network settings, not the user's home: a registry
        // reached through a proxy or a private CA (Node trusts only its own
        // CAs unless NODE_EXTRA_CA_CERTS names more) is still reached.
        for name in MACHINE_NETWORK_ENV {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        command
    }

    fn bootstrap(&self) -> BoundedOutput {
        run_bounded(
            self.command("bash", &["scripts/bootstrap.sh"]),
            BOOTSTRAP_TIMEOUT,
        )
    }
}

fn said(output: &BoundedOutput) -> String {
    format!("{}{}", output.stdout, output.stderr)
}

/// The folder .cargo/config.toml gives for `name`'s patched crate.
fn patched_path(config: &str, name: &str) -> PathBuf {
    let line = config
        .lines()
        .find(|line| line.starts_with(&format!("{name} = ")))
        .unwrap_or_else(|| panic!("no {name} in .cargo/config.toml:\n{config}"));
    let path = line
        .split('"')
        .nth(1)
        .unwrap_or_else(|| panic!("no path in {line}"));
    PathBuf::from(path)
}

#[test]
#[ignore = "slow, and needs crates.io and PyPI: a whole bootstrap, its venv included"]
fn bootstrap_works_with_an_empty_home_and_cargo_home() {
    let machine = FreshMachine::new();
    let first = machine.bootstrap();
    assert!(
        first.status.is_some_and(|s| s.success()),
        "bootstrap failed on a fresh machine ({:?}):\n{}",
        first.status,
        said(&first)
    );

    // grpcio-sys came from crates.io into the empty cargo home...
    let caches: Vec<PathBuf> = std::fs::read_dir(machine.cargo_home.join("registry/cache"))
        .expect("cargo's registry cache was created")
        .map(|entry| entry.unwrap().path())
        .collect();
    assert!(
        caches.iter().any(|cache| cache
            .join("grpcio-sys-0.13.0+1.56.2-patched.crate")
            .exists()),
        "grpcio-sys was not fetched: {caches:?}"
    );
    // ...was unpacked and patched under the new HOME, and cargo is pointed there.
    let config = std::fs::read_to_string(machine.clone.join(".cargo/config.toml"))
        .expect(".cargo/config.toml written");
    let vendor = machine.home.join(".cache/learning-messenger/vendor");
    for name in ["grpcio-sys", "grpcio"] {
        let path = patched_path(&config, name);
        assert!(path.starts_with(&vendor), "{}", path.display());
        assert!(path.join(".patches").exists(), "{}", path.display());
        assert!(path.join("Cargo.toml").exists(), "{}", path.display());
    }
    // Cargo takes it, and Cargo.lock agrees (--locked): grpcio-sys is the patched folder.
    let pkgid = run_bounded(
        machine.command("cargo", &["pkgid", "--locked", "grpcio-sys"]),
        Duration::from_secs(120),
    );
    assert!(
        pkgid.status.is_some_and(|s| s.success()),
        "{}",
        said(&pkgid)
    );
    let sys = patched_path(&config, "grpcio-sys");
    assert!(
        pkgid
            .stdout
            .starts_with(&format!("path+file://{}#", sys.display())),
        "{}",
        pkgid.stdout
    );

    // The venv holds the Python reference's stack, and its stubs are generated.
    let python = machine.clone.join(".venv/bin/python3");
    let imports = run_bounded(
        machine.command(&python, &["-c", "import grpc, grpc_tools, h2, yaml"]),
        Duration::from_secs(60),
    );
    assert!(
        imports.status.is_some_and(|s| s.success()),
        "{}",
        said(&imports)
    );
    for stub in ["messenger_pb2.py", "messenger_pb2_grpc.py"] {
        assert!(
            machine.clone.join("python/protos").join(stub).exists(),
            "python/protos/{stub} missing"
        );
    }

    // A second run finds everything done and says nothing.
    let second = machine.bootstrap();
    assert!(
        second.status.is_some_and(|s| s.success()),
        "{}",
        said(&second)
    );
    assert_eq!(said(&second), "", "the second run did something");
}

/// A change of the patches rewrites only the files it changes, in the same
/// folder: the others keep their times, so C-core's build (make) recompiles
/// only those. The vendoring script alone, with a new cache folder; the
/// crate comes from the machine's cargo cache.
#[test]
#[ignore = "slow: unpacks and compares gRPC C-core's sources three times"]
fn a_patch_change_rewrites_only_the_files_it_changes() {
    let machine = FreshMachine::new();
    let vendor = |what: &str| {
        let mut command = machine.command("bash", &["scripts/vendor-grpcio.sh"]);
        // The machine's registry cache: the crate is not downloaded again.
        command.env("CARGO_HOME", cargo_home());
        let output = run_bounded(command, BOOTSTRAP_TIMEOUT);
        assert!(
            output.status.is_some_and(|s| s.success()),
            "{what}: {}",
            said(&output)
        );
        let config = std::fs::read_to_string(machine.clone.join(".cargo/config.toml")).unwrap();
        patched_path(&config, "grpcio-sys")
    };
    let sys = vendor("the first vendoring");
    let vendored = sys.join(PATCHED_FILE);
    let original = std::fs::read_to_string(&vendored).unwrap();

    let before = file_times(&sys);
    let patch = machine
        .clone
        .join("patches/grpcio-sys/9999-one-more-line.patch");
    std::fs::write(&patch, appending_patch(&vendored, "// one more line")).unwrap();
    assert_eq!(vendor("with a new patch"), sys, "the patched crate moved");
    assert!(std::fs::read_to_string(&vendored)
        .unwrap()
        .ends_with("// one more line\n"));
    assert_eq!(rewritten(&before, &file_times(&sys)), [PATCHED_FILE]);

    // Taken away again: the file is as it was, and written anew, so that
    // make sees it changed; nothing else was touched.
    std::fs::remove_file(&patch).unwrap();
    let before = file_times(&sys);
    assert_eq!(vendor("without it"), sys, "the patched crate moved");
    assert_eq!(std::fs::read_to_string(&vendored).unwrap(), original);
    assert_eq!(rewritten(&before, &file_times(&sys)), [PATCHED_FILE]);
}

/// The machine's cargo home (CARGO_HOME, else ~/.cargo).
fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME").map_or_else(
        || PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cargo"),
        PathBuf::from,
    )
}

/// A C-core source file that no patch of ours touches.
const PATCHED_FILE: &str = "grpc/src/core/ext/transport/chttp2/transport/frame_ping.cc";

/// A patch (for `patch -p1` in grpcio-sys's folder) that appends `line` to
/// PATCHED_FILE, whose text is `file`'s.
fn appending_patch(file: &Path, line: &str) -> String {
    let text = std::fs::read_to_string(file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let first = lines.len() - 2;
    let mut patch =
        format!("--- a/{PATCHED_FILE}\n+++ b/{PATCHED_FILE}\n@@ -{first},3 +{first},4 @@\n");
    for context in &lines[first - 1..] {
        patch.push_str(&format!(" {context}\n"));
    }
    patch.push_str(&format!("+{line}\n"));
    patch
}

/// Files by path, and when each was last written.
type FileTimes = BTreeMap<PathBuf, SystemTime>;

/// Every file below `folder` (its marker aside) and when it was last written.
fn file_times(folder: &Path) -> FileTimes {
    let mut times = FileTimes::new();
    let mut folders = vec![folder.to_path_buf()];
    while let Some(next) = folders.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                folders.push(entry.path());
            } else if entry.file_name() != ".patches" {
                let path = entry.path().strip_prefix(folder).unwrap().to_path_buf();
                times.insert(path, meta.modified().unwrap());
            }
        }
    }
    times
}

/// The files whose time changed, or that came or went, between two readings.
fn rewritten(before: &FileTimes, after: &FileTimes) -> Vec<String> {
    let mut changed: Vec<String> = after
        .iter()
        .filter(|(path, time)| before.get(*path) != Some(*time))
        .map(|(path, _)| path.display().to_string())
        .collect();
    changed.extend(
        before
            .keys()
            .filter(|path| !after.contains_key(*path))
            .map(|path| path.display().to_string()),
    );
    changed
}
