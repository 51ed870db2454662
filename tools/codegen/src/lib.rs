//! Regenerates the checked-in Rust messages in `generated/` from `proto/`,
//! with protobuf-codegen in pure-Rust mode (its own parser, no protoc).

use std::io;
use std::path::{Path, PathBuf};

/// The project's root: this crate lives in `tools/codegen`. Read when run
/// (cargo sets the variable for `cargo run` and `cargo test`), not when built:
/// a target dir shared by clones at other paths keeps a binary built in one.
pub fn project_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest_dir.join("../..")
}

/// Every `.proto` file in `proto_dir`, sorted so the output is deterministic.
fn proto_files(proto_dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(proto_dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "proto") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Writes one `.rs` file per proto plus `mod.rs` into `out_dir` (created if missing).
pub fn generate(proto_dir: &Path, out_dir: &Path) -> Result<Vec<PathBuf>, String> {
    let protos =
        proto_files(proto_dir).map_err(|e| format!("reading {}: {e}", proto_dir.display()))?;
    if protos.is_empty() {
        return Err(format!("no .proto files in {}", proto_dir.display()));
    }
    std::fs::create_dir_all(out_dir).map_err(|e| format!("creating {}: {e}", out_dir.display()))?;
    protobuf_codegen::Codegen::new()
        .pure()
        .include(proto_dir)
        .inputs(&protos)
        .out_dir(out_dir)
        .run()
        .map_err(|e| format!("{e:#}"))?;
    Ok(protos)
}
