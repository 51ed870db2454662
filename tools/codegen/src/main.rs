//! `scripts/codegen.sh` runs this: `messenger-codegen [OUT_DIR]` (default `generated/`).

use std::process::ExitCode;

fn main() -> ExitCode {
    let root = messenger_codegen::project_root();
    let out_dir = std::env::args_os()
        .nth(1)
        .map(Into::into)
        .unwrap_or_else(|| root.join("generated"));
    match messenger_codegen::generate(&root.join("proto"), &out_dir) {
        Ok(protos) => {
            let names: Vec<_> = protos
                .iter()
                .filter_map(|p| p.file_name()?.to_str())
                .collect();
            println!(
                "✅ Generated Rust code for {} in {}",
                names.join(", "),
                out_dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("codegen: {e}");
            ExitCode::FAILURE
        }
    }
}
