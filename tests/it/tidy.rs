//! Tidy checks over the source tree: every file says what it is, and no module imports one that imports it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file belongs to: `src/store/intake.rs` and
/// `src/store/mod.rs` are `store`, `src/calendar.rs` is `calendar`.
fn module_of(file: &Path) -> String {
    let rel = file.strip_prefix(src_dir()).expect("a file under src/");
    let first = rel.components().next().expect("a path component");
    let name = first.as_os_str().to_string_lossy();
    name.strip_suffix(".rs").unwrap_or(&name).to_string()
}

/// The code of a line without its `//` comment (string contents are kept:
/// a `crate::` inside a string literal is rare enough to be named honestly).
fn code_of(line: &str) -> &str {
    match line.find("//") {
        Some(i) => &line[..i],
        None => line,
    }
}

/// Every module named by a `crate::` path in `text`, including each member
/// of a `use crate::{a, b::c}` group.
fn imports(text: &str) -> BTreeSet<String> {
    let code: String = text.lines().map(code_of).collect::<Vec<_>>().join("\n");
    let mut out = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        let before_ok = i == 0
            || !rest[..i]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_');
        if before_ok {
            if let Some(group) = after.strip_prefix('{') {
                let end = matching_brace(group);
                for part in split_top_level(&group[..end]) {
                    let name = ident_prefix(part.trim());
                    if !name.is_empty() && name != "self" {
                        out.insert(name.to_string());
                    }
                }
            } else {
                let name = ident_prefix(after);
                if !name.is_empty() {
                    out.insert(name.to_string());
                }
            }
        }
        rest = after;
    }
    out
}

fn ident_prefix(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The index of the `}` closing a group whose `{` came just before `s`.
fn matching_brace(s: &str) -> usize {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return i,
            '}' => depth -= 1,
            _ => {}
        }
    }
    s.len()
}

fn split_top_level(s: &str) -> Vec<&str> {
    let (mut depth, mut start, mut out) = (0usize, 0, Vec::new());
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// The module graph of the library: module -> modules it imports.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let m = module_of(&f);
        // The binary's root uses `ticketd::`, not `crate::`; the library root only declares.
        if m == "main" || m == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("a source file");
        let deps = g.entry(m.clone()).or_default();
        for d in imports(&text) {
            if d != m {
                deps.insert(d);
            }
        }
    }
    g
}

/// A cycle in `g`, as the modules along it, if there is one.
fn find_cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_string(), 1);
        path.push(n.to_string());
        for d in g.get(n).into_iter().flatten() {
            match state.get(d.as_str()).copied().unwrap_or(0) {
                1 => {
                    let from = path.iter().position(|p| p == d).expect("on the path");
                    let mut cycle = path[from..].to_vec();
                    cycle.push(d.clone());
                    return Some(cycle);
                }
                0 => {
                    if let Some(c) = visit(d, g, state, path) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        path.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in g.keys() {
        if state.get(n.as_str()).copied().unwrap_or(0) == 0
            && let Some(c) = visit(n, g, &mut state, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

#[test]
fn every_source_file_opens_with_a_doc_line() {
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    assert!(files.len() > 20, "found only {} source files", files.len());
    let missing: Vec<String> = files
        .iter()
        .filter(|f| {
            let text = std::fs::read_to_string(f).expect("a source file");
            !text
                .lines()
                .find(|l| !l.trim().is_empty())
                .is_some_and(|l| l.starts_with("//!"))
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "files without a `//!` line saying what they are: {missing:?}"
    );
}

#[test]
fn no_module_imports_one_that_imports_it() {
    let g = graph();
    assert!(
        g.len() > 15,
        "found only {} modules: {:?}",
        g.len(),
        g.keys()
    );
    assert!(
        g["decide"].contains("model") && g["store"].contains("model"),
        "the graph reads imports: {g:?}"
    );
    if let Some(c) = find_cycle(&g) {
        panic!("import circle: {}", c.join(" -> "));
    }
}

#[test]
fn the_import_reader_sees_groups_and_inline_paths() {
    let text = "use crate::{a, b::{C, D}, self};\n// crate::commented\nlet x = crate::e::f(); notcrate::g;";
    let got: Vec<String> = imports(text).into_iter().collect();
    assert_eq!(got, ["a", "b", "e"]);
    let mut g = BTreeMap::new();
    g.insert("x".to_string(), BTreeSet::from(["y".to_string()]));
    g.insert("y".to_string(), BTreeSet::from(["x".to_string()]));
    assert_eq!(
        find_cycle(&g),
        Some(vec!["x".to_string(), "y".to_string(), "x".to_string()])
    );
}

#[test]
fn decide_does_not_reach_the_store() {
    let g = graph();
    assert!(
        !g["decide"].contains("store"),
        "decide imports store: {:?}",
        g["decide"]
    );
}

/// The files the repository tracks (`git ls-files`), or, outside a git
/// checkout, every file under the root but `target/` and `.git/`.
fn tracked_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let listed = std::process::Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root)
        .output()
        .ok()
        .filter(|o| o.status.success());
    if let Some(o) = listed {
        return o
            .stdout
            .split(|b| *b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| root.join(String::from_utf8_lossy(p).as_ref()))
            .collect();
    }
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            let name = e.file_name();
            if name == "target" || name == ".git" {
                continue;
            }
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, &mut out);
    out
}

#[test]
fn issue_21_item_2_no_tracked_file_names_a_path_of_one_machine() {
    // Written in two halves so that this file does not name them itself.
    let needles: Vec<String> = ["wo", "ro", "ho"]
        .iter()
        .zip(["rk/", "ot/", "me/"])
        .map(|(a, b)| format!("/{a}{b}"))
        .collect();
    let files = tracked_files();
    assert!(files.len() > 100, "found only {} files", files.len());
    let mut found = Vec::new();
    for f in &files {
        let Ok(bytes) = std::fs::read(f) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        for (n, line) in text.lines().enumerate() {
            if needles.iter().any(|x| line.contains(x.as_str())) {
                found.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "paths of one machine in tracked files (the project must run from any checkout):\n{}",
        found.join("\n")
    );
}

#[test]
fn issue_21_every_test_bench_and_example_file_opens_with_a_doc_line() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for d in ["tests", "benches", "examples", "fuzz"] {
        rust_files(&root.join(d), &mut files);
    }
    assert!(files.len() > 30, "found only {} files", files.len());
    let missing: Vec<String> = files
        .iter()
        .filter(|f| {
            let text = std::fs::read_to_string(f).expect("a source file");
            !text
                .lines()
                .find(|l| !l.trim().is_empty())
                .is_some_and(|l| l.starts_with("//!"))
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "files without a `//!` line saying what they are: {missing:?}"
    );
}
