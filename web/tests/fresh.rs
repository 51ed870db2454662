//! The page's generated code (`page/gen/`) and its bundle (`page/dist/app.js`)
//! are checked in: they must be exactly what `web/page/codegen.sh` makes now
//! from `proto/messenger.proto` and `page/src/`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn web_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

#[test]
fn the_page_s_generated_code_and_bundle_match_proto_and_src() {
    let web = web_dir();
    assert!(
        web.join("node_modules/.bin/buf").exists(),
        "web/node_modules is missing: run `bash scripts/bootstrap.sh`"
    );
    let fresh = tempfile::tempdir().unwrap();
    let output = Command::new("bash")
        .arg(web.join("page/codegen.sh"))
        .arg(fresh.path())
        .output()
        .expect("bash runs");
    assert!(
        output.status.success(),
        "web/page/codegen.sh failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    for file in [
        "gen/messenger_pb.js",
        "gen/messenger_pb.d.ts",
        "dist/app.js",
    ] {
        assert!(
            read(&fresh.path().join(file)) == read(&web.join("page").join(file)),
            "web/page/{file} is stale: run web/page/codegen.sh and commit the result"
        );
    }
    let mut made: Vec<_> = std::fs::read_dir(fresh.path().join("gen"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    made.sort();
    assert_eq!(
        made,
        ["messenger_pb.d.ts", "messenger_pb.js"],
        "codegen made other files"
    );
}
