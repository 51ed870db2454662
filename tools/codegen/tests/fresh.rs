//! `generated/` is checked in: it must be exactly what `scripts/codegen.sh` makes from `proto/` now.

use std::collections::BTreeMap;
use std::path::Path;

fn read_dir_files(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect()
}

#[test]
fn generated_dir_matches_proto() {
    let root = messenger_codegen::project_root();
    let fresh = tempfile::tempdir().unwrap();
    messenger_codegen::generate(&root.join("proto"), fresh.path()).expect("codegen");

    let expected = read_dir_files(fresh.path());
    let checked_in = read_dir_files(&root.join("generated"));
    assert_eq!(
        expected.keys().collect::<Vec<_>>(),
        checked_in.keys().collect::<Vec<_>>(),
        "generated/ has different files than codegen makes: run scripts/codegen.sh"
    );
    for (name, text) in &expected {
        assert!(
            &checked_in[name] == text,
            "generated/{name} is stale against proto/: run scripts/codegen.sh and commit the result"
        );
    }
}

#[test]
fn codegen_is_deterministic() {
    let root = messenger_codegen::project_root();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    messenger_codegen::generate(&root.join("proto"), a.path()).unwrap();
    messenger_codegen::generate(&root.join("proto"), b.path()).unwrap();
    assert_eq!(read_dir_files(a.path()), read_dir_files(b.path()));
}
