//! The docs cannot drift from the code. In README.md, docs/*.md and the
//! other folders' READMEs: every excerpt marked `<!-- from: PATH -->` is
//! still in PATH, every relative link leads to a file (and heading) that
//! exists, and the lab's transcript is what the client prints. The README
//! stays short and states the minimum Rust that Cargo.toml does; no page,
//! script or `--help` says "seed" (the reader knows "the lab").

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{mask_times, wiretap_bin, LAB_TRANSCRIPT, SERVER_BIN};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const CLIENT_BIN: &str = env!("CARGO_BIN_EXE_client");
const README_MAX_LINES: usize = 200;
/// The line before a code fence that says which file the excerpt is from.
const FROM_MARKER: (&str, &str) = ("<!-- from: ", " -->");

/// README.md, every page in docs/, and the other folders' READMEs, as paths
/// relative to the root.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![PathBuf::from("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join("docs"))
        .expect("docs/ is readable")
        .map(|entry| entry.expect("docs/ entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .map(|path| path.strip_prefix(ROOT).unwrap().to_owned())
        .collect();
    docs.sort();
    pages.extend(docs);
    for readme in ["python", "patches/grpcio", "patches/grpcio-sys"] {
        pages.push(Path::new(readme).join("README.md"));
    }
    pages
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(path))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A fenced code block preceded by a `from:` marker.
struct Excerpt {
    /// Where it starts in its page (1-based line of the marker).
    line: usize,
    from: String,
    code: Vec<String>,
}

/// The marked excerpts of `page`; a marker not followed by a fence is a mistake.
fn excerpts(page: &Path, text: &str) -> Result<Vec<Excerpt>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(from) = lines[i]
            .trim()
            .strip_prefix(FROM_MARKER.0)
            .and_then(|rest| rest.strip_suffix(FROM_MARKER.1))
        else {
            i += 1;
            continue;
        };
        let line = i + 1;
        let fence = lines.get(i + 1).map(|l| l.trim_start()).unwrap_or("");
        if !fence.starts_with("```") {
            return Err(format!(
                "{}:{line}: the marker is not followed by a ``` fence",
                page.display()
            ));
        }
        let mut code = Vec::new();
        i += 2;
        while i < lines.len() && !lines[i].trim_start().starts_with("```") {
            code.push(lines[i].to_owned());
            i += 1;
        }
        found.push(Excerpt {
            line,
            from: from.trim().to_owned(),
            code,
        });
        i += 1;
    }
    Ok(found)
}

/// A line that stands for code left out of an excerpt.
fn is_elision(line: &str) -> bool {
    matches!(line.trim(), "// ..." | "# ...")
}

/// Where `piece` (lines, possibly dedented as a whole) starts in `file` at or
/// after line `from`: each of its lines must be the file's line with one
/// common indent added (blank lines stay blank).
fn find_piece(file: &[&str], piece: &[String], from: usize) -> Option<usize> {
    let first = piece.first()?;
    (from..file.len()).find(|&start| {
        let Some(indent) = file[start].strip_suffix(first.as_str()) else {
            return false;
        };
        if !indent.chars().all(char::is_whitespace) || start + piece.len() > file.len() {
            return false;
        }
        piece.iter().zip(&file[start..]).all(|(want, have)| {
            if want.trim().is_empty() {
                have.trim().is_empty()
            } else {
                *have == format!("{indent}{want}")
            }
        })
    })
}

/// Why `excerpt` is not (any longer) what its file says, if it is not.
fn excerpt_problem(page: &Path, excerpt: &Excerpt) -> Option<String> {
    let here = format!("{}:{}", page.display(), excerpt.line);
    let Ok(source) = std::fs::read_to_string(Path::new(ROOT).join(&excerpt.from)) else {
        return Some(format!("{here}: {} does not exist", excerpt.from));
    };
    let file: Vec<&str> = source.lines().collect();
    let pieces: Vec<&[String]> = excerpt
        .code
        .split(|line| is_elision(line))
        .filter(|piece| piece.iter().any(|line| !line.trim().is_empty()))
        .collect();
    if pieces.is_empty() {
        return Some(format!(
            "{here}: the excerpt from {} is empty",
            excerpt.from
        ));
    }
    let mut at = 0;
    for piece in pieces {
        // Blank lines at a piece's ends carry no meaning.
        let start = piece.iter().position(|l| !l.trim().is_empty()).unwrap();
        let end = piece.iter().rposition(|l| !l.trim().is_empty()).unwrap();
        let piece = &piece[start..=end];
        match find_piece(&file, piece, at) {
            Some(found) => at = found + piece.len(),
            None => {
                return Some(format!(
                    "{here}: not verbatim in {} (in this order), from the line {:?}",
                    excerpt.from,
                    piece[0].trim()
                ))
            }
        }
    }
    None
}

#[test]
fn every_marked_excerpt_is_verbatim_in_its_file() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for page in pages() {
        match excerpts(&page, &read(&page)) {
            Ok(excerpts) => {
                checked += excerpts.len();
                problems.extend(excerpts.iter().filter_map(|e| excerpt_problem(&page, e)));
            }
            Err(problem) => problems.push(problem),
        }
    }
    assert!(
        problems.is_empty(),
        "excerpts that drifted from the code:\n{}",
        problems.join("\n")
    );
    // The walkthrough alone shows every pattern's handler, glue and call.
    assert!(checked >= 20, "only {checked} marked excerpts found");
}

#[test]
fn the_excerpt_check_catches_a_changed_line_and_accepts_elisions() {
    let page = Path::new("test.md");
    let text = "<!-- from: src/rpc/call_end.rs -->\n```rust\n\
                pub fn is_call_over(error: &grpcio::Error) -> bool {\n\
                \x20   // ...\n\
                }\n```\n";
    let excerpts = excerpts(page, text).unwrap();
    assert_eq!(excerpt_problem(page, &excerpts[0]), None);
    let changed = text.replace("is_call_over", "is_call_done");
    let excerpts = self::excerpts(page, &changed).unwrap();
    assert!(excerpt_problem(page, &excerpts[0])
        .unwrap()
        .contains("not verbatim in src/rpc/call_end.rs"));
    assert!(self::excerpts(page, "<!-- from: src/lib.rs -->\ntext\n").is_err());
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces as '-'.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Lines outside code fences.
fn prose(text: &str) -> Vec<(usize, &str)> {
    let mut in_fence = false;
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            if line.trim_start().starts_with("```") {
                in_fence = !in_fence;
                return false;
            }
            !in_fence
        })
        .map(|(i, line)| (i + 1, line))
        .collect()
}

/// The anchors of a page's headings.
fn anchors(text: &str) -> BTreeSet<String> {
    prose(text)
        .into_iter()
        .filter_map(|(_, line)| line.strip_prefix('#'))
        .map(|heading| slug(heading.trim_start_matches('#')))
        .collect()
}

/// The targets of a line's inline links, `[text](target)`, code spans left out.
fn link_targets(line: &str) -> Vec<String> {
    let outside_code: String = line
        .split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 0)
        .map(|(_, part)| part)
        .collect::<Vec<_>>()
        .join(" ");
    outside_code
        .split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .map(|target| target.split_whitespace().next().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn every_relative_link_leads_to_a_file_and_heading_that_exist() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for page in pages() {
        let text = read(&page);
        for (line, content) in prose(&text) {
            for target in link_targets(content) {
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                checked += 1;
                let here = format!("{}:{line}: ({target})", page.display());
                let (file, anchor) = target.split_once('#').unwrap_or((&target, ""));
                let path = if file.is_empty() {
                    page.clone()
                } else {
                    page.parent().unwrap().join(file)
                };
                let full = Path::new(ROOT).join(&path);
                if !full.exists() {
                    problems.push(format!("{here}: {} does not exist", path.display()));
                } else if !anchor.is_empty() {
                    let heading_exists = path.extension().is_some_and(|ext| ext == "md")
                        && anchors(&std::fs::read_to_string(&full).unwrap()).contains(anchor);
                    if !heading_exists {
                        problems.push(format!(
                            "{here}: no heading #{anchor} in {}",
                            path.display()
                        ));
                    }
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "broken links:\n{}",
        problems.join("\n")
    );
    assert!(checked >= 20, "only {checked} relative links found");
}

/// The fenced blocks of a page, each as its lines.
fn code_blocks(text: &str) -> Vec<Vec<&str>> {
    let mut blocks = Vec::new();
    let mut open: Option<Vec<&str>> = None;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            match open.take() {
                Some(block) => blocks.push(block),
                None => open = Some(Vec::new()),
            }
        } else if let Some(block) = &mut open {
            block.push(line);
        }
    }
    blocks
}

#[test]
fn the_pages_show_the_labs_transcript_as_the_client_prints_it() {
    // cli.rs checks that the client prints LAB_TRANSCRIPT; here, that the
    // pages show that, timestamps aside.
    let mut shown = 0;
    for page in pages() {
        for block in code_blocks(&read(&page)) {
            let Some(start) = block.iter().position(|l| *l == "--- Unary Request ---") else {
                continue;
            };
            let transcript: String = block[start..].iter().map(|l| format!("{l}\n")).collect();
            assert_eq!(
                mask_times(&transcript),
                LAB_TRANSCRIPT,
                "{}: the lab's transcript differs from what the client prints",
                page.display()
            );
            shown += 1;
        }
    }
    assert!(
        shown >= 2,
        "the README and the walkthrough show the transcript"
    );
}

#[test]
fn the_readme_is_at_most_200_lines() {
    let lines = read(Path::new("README.md")).lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines, at most {README_MAX_LINES}: move a section to a page in docs/"
    );
}

#[test]
fn the_readme_states_the_workspaces_minimum_rust() {
    let manifest = read(Path::new("Cargo.toml"));
    let version = manifest
        .lines()
        .find_map(|line| line.trim().strip_prefix("rust-version = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .expect("Cargo.toml's [workspace.package] has a rust-version");
    let stated = format!("Rust {version} or newer");
    assert!(
        read(Path::new("README.md")).contains(&stated),
        "README.md should say {stated:?}, as Cargo.toml's rust-version does"
    );
}

/// Where a text says "seed", a word its reader cannot know.
fn seed_lines(name: &str, text: &str) -> Vec<String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| line.to_lowercase().contains("seed"))
        .map(|(i, line)| format!("{name}:{}: {}", i + 1, line.trim()))
        .collect()
}

#[test]
fn no_page_script_or_help_says_seed() {
    let mut found = Vec::new();
    let mut texts: Vec<PathBuf> = pages();
    for entry in std::fs::read_dir(Path::new(ROOT).join("scripts")).unwrap() {
        texts.push(entry.unwrap().path().strip_prefix(ROOT).unwrap().to_owned());
    }
    for path in &texts {
        found.extend(seed_lines(&path.display().to_string(), &read(path)));
    }
    let wiretap = wiretap_bin();
    let helps: &[(&str, &[&str])] = &[
        (SERVER_BIN, &["--help"]),
        (wiretap.to_str().unwrap(), &["--help"]),
        (CLIENT_BIN, &["--help"]),
        (CLIENT_BIN, &["help", "all"]),
        (CLIENT_BIN, &["help", "status"]),
        (CLIENT_BIN, &["help", "learn"]),
        (CLIENT_BIN, &["help", "upload"]),
        (CLIENT_BIN, &["help", "chat"]),
        (CLIENT_BIN, &["help", "health"]),
    ];
    for (bin, args) in helps {
        let output = Command::new(bin).args(*args).output().expect("runs");
        assert!(output.status.success(), "{bin} {args:?} fails");
        let name = format!(
            "{} {}",
            Path::new(bin).file_name().unwrap().to_string_lossy(),
            args.join(" ")
        );
        found.extend(seed_lines(&name, &String::from_utf8_lossy(&output.stdout)));
    }
    assert!(
        found.is_empty(),
        "say \"the lab\" instead:\n{}",
        found.join("\n")
    );
}

/// The README's section under `heading`, up to the next `## `.
fn readme_section(heading: &str) -> String {
    let readme = read(Path::new("README.md"));
    let start = readme
        .find(heading)
        .unwrap_or_else(|| panic!("README.md has no {heading:?}"));
    let rest = &readme[start + heading.len()..];
    rest[..rest.find("\n## ").unwrap_or(rest.len())].to_owned()
}

/// The files git tracks, relative to the root.
fn tracked_files() -> Vec<String> {
    let output = Command::new("git")
        .args(["ls-files"])
        .current_dir(ROOT)
        .output()
        .expect("git runs");
    assert!(output.status.success(), "git ls-files fails");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_readmes_folder_map_names_every_folder_and_member_crate() {
    let map = readme_section("## The crates and the folders");
    let named: BTreeSet<&str> = code_blocks(&map)
        .concat()
        .iter()
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    // Every top-level folder but the hidden ones (.ci, .config), named itself
    // or by its folders; every folder of src/ and every member crate, by name.
    let mut top = BTreeSet::new();
    let mut wanted = BTreeSet::new();
    for file in tracked_files() {
        let parts: Vec<&str> = file.split('/').collect();
        if parts.len() > 1 && !parts[0].starts_with('.') {
            top.insert(format!("{}/", parts[0]));
        }
        if parts.len() > 2 && parts[0] == "src" {
            wanted.insert(format!("src/{}/", parts[1]));
        }
    }
    let manifest = read(Path::new("Cargo.toml"));
    let members = manifest
        .lines()
        .find_map(|line| line.strip_prefix("members = "))
        .expect("Cargo.toml lists its members");
    for member in members.trim_matches(['[', ']']).split(',') {
        wanted.insert(format!("{}/", member.trim().trim_matches('"')));
    }
    wanted.extend(
        top.into_iter()
            .filter(|folder| !named.iter().any(|name| name.starts_with(folder.as_str()))),
    );
    let missing: Vec<&String> = wanted
        .iter()
        .filter(|folder| !named.contains(folder.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "README.md's folder map leaves out {missing:?} (it names {named:?})"
    );
}

#[test]
fn every_codegen_script_is_named_in_changing_the_contract() {
    let section = readme_section("## Changing the contract");
    let scripts: Vec<String> = tracked_files()
        .into_iter()
        .filter(|file| file.ends_with("codegen.sh"))
        .collect();
    assert!(scripts.len() >= 3, "codegen scripts: {scripts:?}");
    let missing: Vec<&String> = scripts
        .iter()
        .filter(|script| !section.contains(script.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "\"Changing the contract\" in README.md does not name {missing:?}"
    );
}
