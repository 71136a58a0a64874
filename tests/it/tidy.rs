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
        let text = non_test_code(&std::fs::read_to_string(&f).expect("a source file"));
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

/// Fails naming each of `files` whose first non-blank line is no `//!` line.
fn assert_each_opens_with_a_doc_line(files: &[PathBuf]) {
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
fn every_source_file_opens_with_a_doc_line() {
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    assert!(files.len() > 20, "found only {} source files", files.len());
    assert_each_opens_with_a_doc_line(&files);
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

// ----- files, not only top-level modules -------------------------------------------------

/// The files of the library that are compiled outside tests: those declared
/// under `#[cfg(test)]` (a folder's `tests.rs`) are left out.
fn library_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    files.retain(|f| {
        let rel = f.strip_prefix(src_dir()).expect("under src/");
        let name = rel.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        name != "tests" && rel != Path::new("main.rs")
    });
    files
}

/// A file's text without its inline test module (from the `#[cfg(test)]`
/// that opens it on): `super::` inside it names the file itself.
fn non_test_code(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim() == "#[cfg(test)]"
            && let Some(next) = lines.peek()
            && next.trim_start().starts_with("mod ")
        {
            if next.trim_end().ends_with(';') {
                // `mod tests;`: a test file, declared here and left out.
                lines.next();
                continue;
            }
            break;
        }
        out.push_str(code_of(line));
        out.push('\n');
    }
    out
}

/// The module path of a file: `src/decide/person.rs` is `decide::person`,
/// `src/decide/mod.rs` is `decide`, `src/lib.rs` is the root.
fn module_path(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src_dir()).expect("under src/");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().to_string())
        .collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.strip_suffix(".rs").unwrap_or(&last).to_string();
    if stem != "mod" && stem != "lib" {
        parts.push(stem);
    }
    parts
}

/// The file that defines the deepest existing module of `path`.
fn file_of(path: &[String]) -> Option<PathBuf> {
    for k in (0..=path.len()).rev() {
        let base = src_dir().join(path[..k].join("/"));
        let candidates = if k == 0 {
            vec![src_dir().join("lib.rs")]
        } else {
            vec![base.with_extension("rs"), base.join("mod.rs")]
        };
        if let Some(f) = candidates.into_iter().find(|c| c.is_file()) {
            return Some(f);
        }
    }
    None
}

/// The paths a file names: `crate::a::b`, `super::x` (`super::*` too),
/// `self::x`, and in a file that declares `mod x;`, `x::..` in its `use`
/// lines; each as a module path from the root.
fn named_paths(file: &Path, code: &str) -> Vec<Vec<String>> {
    let me = module_path(file);
    let children: BTreeSet<String> = code
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l
                .strip_prefix("pub ")
                .or(l.strip_prefix("pub(crate) "))
                .unwrap_or(l);
            l.strip_prefix("mod ")?
                .strip_suffix(';')
                .map(str::to_string)
        })
        .collect();
    let mut out = Vec::new();
    /// Adds the paths of `rest` (what follows a prefix's `::`: a path or a
    /// `{group}`) under `base`.
    fn push(out: &mut Vec<Vec<String>>, base: &[String], rest: &str) {
        let mut p = base.to_vec();
        let mut r = rest;
        loop {
            r = r.trim_start();
            if let Some(group) = r.strip_prefix('{') {
                let end = matching_brace(group);
                for part in split_top_level(&group[..end]) {
                    if !part.trim().is_empty() {
                        push(out, &p, part.trim());
                    }
                }
                return;
            }
            let seg = ident_prefix(r);
            if seg.is_empty() || seg == "self" {
                break;
            }
            p.push(seg.to_string());
            match r[seg.len()..].strip_prefix("::") {
                Some(next) => r = next,
                None => break,
            }
        }
        out.push(p);
    }
    let tokens: Vec<(usize, &str)> = code.match_indices("::").collect();
    for (i, _) in tokens {
        // The path segment just before this `::`, and whether it starts the path.
        let before = &code[..i];
        let start = before
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
            .map_or(0, |s| s + 1);
        if code[..start].ends_with("::") || before[start..].contains("::") {
            continue;
        }
        let head = &before[start..];
        let rest = &code[i + 2..];
        match head {
            "crate" => push(&mut out, &[], rest),
            "self" => push(&mut out, &me, rest),
            "super" => {
                let mut base = me.clone();
                base.pop();
                let mut rest = rest;
                while let Some(r) = rest.strip_prefix("super::") {
                    base.pop();
                    rest = r;
                }
                if rest.starts_with('*') {
                    out.push(base);
                } else {
                    push(&mut out, &base, rest);
                }
            }
            h if children.contains(h) => {
                let mut base = me.clone();
                base.push(h.to_string());
                push(&mut out, &base, rest);
            }
            _ => {}
        }
    }
    out
}

/// The file graph of the library: file -> files it names an item of.
fn file_graph() -> BTreeMap<String, BTreeSet<String>> {
    let files = library_files();
    let name = |f: &Path| {
        f.strip_prefix(src_dir())
            .expect("under src/")
            .display()
            .to_string()
    };
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let code = non_test_code(&std::fs::read_to_string(f).expect("a source file"));
        let deps = g.entry(name(f)).or_default();
        for p in named_paths(f, &code) {
            if let Some(target) = file_of(&p)
                && target != *f
                && files.contains(&target)
                && !target.ends_with("lib.rs")
            {
                deps.insert(name(&target));
            }
        }
    }
    g
}

#[test]
fn issue_21_no_source_file_imports_one_that_imports_it() {
    let g = file_graph();
    assert!(g.len() > 60, "found only {} files", g.len());
    assert!(
        g["decide/mod.rs"].iter().any(|d| d.starts_with("model")),
        "the graph reads imports: {:?}",
        g["decide/mod.rs"]
    );
    let knots = knots(&g);
    assert!(
        knots.is_empty(),
        "files that import each other, directly or through others:\n{}",
        knots
            .iter()
            .map(|k| {
                let first = find_cycle(&sub_graph(&g, k)).unwrap_or_default();
                format!("{} (e.g. {})", k.join(", "), first.join(" -> "))
            })
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// `g` restricted to the nodes `keep`.
fn sub_graph(
    g: &BTreeMap<String, BTreeSet<String>>,
    keep: &[String],
) -> BTreeMap<String, BTreeSet<String>> {
    keep.iter()
        .map(|n| {
            let deps = g[n].iter().filter(|d| keep.contains(d)).cloned().collect();
            (n.clone(), deps)
        })
        .collect()
}

/// The strongly connected groups of more than one node (Tarjan): each a set
/// of files that reach each other through imports.
fn knots(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct T<'g> {
        g: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on: BTreeSet<&'g str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'g>(t: &mut T<'g>, n: &'g str) {
        t.index.insert(n, t.next);
        t.low.insert(n, t.next);
        t.next += 1;
        t.stack.push(n);
        t.on.insert(n);
        for d in t.g.get(n).into_iter().flatten() {
            let d = d.as_str();
            if !t.g.contains_key(d) {
                continue;
            }
            if !t.index.contains_key(d) {
                visit(t, d);
                let low = t.low[n].min(t.low[d]);
                t.low.insert(n, low);
            } else if t.on.contains(d) {
                let low = t.low[n].min(t.index[d]);
                t.low.insert(n, low);
            }
        }
        if t.low[n] == t.index[n] {
            let mut group = Vec::new();
            while let Some(m) = t.stack.pop() {
                t.on.remove(m);
                group.push(m.to_string());
                if m == n {
                    break;
                }
            }
            if group.len() > 1 {
                group.sort();
                t.out.push(group);
            }
        }
    }
    let mut t = T {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for n in g.keys() {
        if !t.index.contains_key(n.as_str()) {
            visit(&mut t, n);
        }
    }
    t.out
}

#[test]
fn issue_21_the_file_reader_resolves_super_self_crate_and_children() {
    let f = src_dir().join("decide/person.rs");
    let code =
        "use super::*;\nuse super::sla::{a, b::C};\nlet x = crate::policy::Evaluation::view();\n";
    let got = named_paths(&f, code);
    assert_eq!(
        got,
        vec![
            vec!["decide".to_string()],
            vec!["decide".into(), "sla".into(), "a".into()],
            vec!["decide".into(), "sla".into(), "b".into(), "C".into()],
            vec!["policy".into(), "Evaluation".into(), "view".into()],
        ]
    );
    assert_eq!(
        file_of(&["policy".into(), "Evaluation".into()]),
        Some(src_dir().join("policy/mod.rs"))
    );
}

/// The longest a function in `src/` may be, in lines.
const MAX_FUNCTION_LINES: usize = 150;

/// Each function of `code` (test code left out) with its first line and length.
fn functions(code: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = code.lines().collect();
    let mut out = Vec::new();
    let fn_re = regex::Regex::new(
        r"^\s*(?:pub(?:\([a-z]+\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?fn\s+([A-Za-z_][A-Za-z0-9_]*)",
    )
    .expect("regex");
    for (i, line) in lines.iter().enumerate() {
        let Some(c) = fn_re.captures(line) else {
            continue;
        };
        // From the first `{` of the body to the brace that closes it.
        let mut depth = 0i64;
        let mut opened = false;
        let mut end = None;
        'scan: for (j, l) in lines.iter().enumerate().skip(i) {
            let l = code_of(l);
            let mut chars = l.chars().peekable();
            let mut in_str = false;
            while let Some(ch) = chars.next() {
                match ch {
                    '\\' if in_str => {
                        chars.next();
                    }
                    '"' => in_str = !in_str,
                    '\'' if !in_str => {
                        // A char literal ('{') is skipped; a lifetime is not one.
                        let rest: String = chars.clone().take(3).collect();
                        if rest.len() >= 2
                            && (rest.as_bytes()[1] == b'\'' || rest.starts_with('\\'))
                        {
                            while let Some(c2) = chars.next() {
                                if c2 == '\\' {
                                    chars.next();
                                } else if c2 == '\'' {
                                    break;
                                }
                            }
                        }
                    }
                    '{' if !in_str => {
                        depth += 1;
                        opened = true;
                    }
                    '}' if !in_str => {
                        depth -= 1;
                        if opened && depth == 0 {
                            end = Some(j);
                            break 'scan;
                        }
                    }
                    ';' if !in_str && !opened => break 'scan,
                    _ => {}
                }
            }
        }
        if let Some(e) = end {
            out.push((c[1].to_string(), i + 1, e - i + 1));
        }
    }
    out
}

#[test]
fn issue_21_no_function_in_src_is_longer_than_150_lines() {
    let mut long = Vec::new();
    let mut files = library_files();
    files.push(src_dir().join("main.rs"));
    for f in &files {
        let code = non_test_code(&std::fs::read_to_string(f).expect("a source file"));
        for (name, line, len) in functions(&code) {
            if len > MAX_FUNCTION_LINES {
                long.push(format!(
                    "{}:{line} {name} ({len} lines)",
                    f.strip_prefix(src_dir()).unwrap().display()
                ));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FUNCTION_LINES} lines:\n{}",
        long.join("\n")
    );
}

#[test]
fn issue_21_the_function_measure_counts_bodies() {
    let code = "fn a() {\n    let s = \"}\";\n    let c = '{';\n}\npub(crate) async fn b<'x>(x: &'x str) -> &'x str {\n    x\n}\nfn c();\n";
    assert_eq!(
        functions(code),
        vec![("a".to_string(), 1, 4), ("b".to_string(), 5, 3)]
    );
}

#[test]
fn issue_21_model_is_the_bottom_layer() {
    let g = file_graph();
    let model = |f: &str| f == "model.rs" || f.starts_with("model/");
    let mut above = Vec::new();
    for (f, deps) in g.iter().filter(|(f, _)| model(f)) {
        for d in deps.iter().filter(|d| !model(d)) {
            above.push(format!("{f} -> {d}"));
        }
    }
    assert!(g.contains_key("model/vocab.rs"), "{:?}", g.keys());
    assert!(
        above.is_empty(),
        "model imports the layers above it: {above:?}"
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
    assert_each_opens_with_a_doc_line(&files);
}
