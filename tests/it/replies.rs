//! The golden reply fixtures: every `tests/fixtures/replies/NNN.eml` through the daemon's parse path gives the new text in `NNN.expected.txt`.
//!
//! The comparison normalises only what carries no meaning: whitespace at the
//! end of each line and blank lines before and after the text. Every other
//! difference (a line kept or dropped, inner blank lines, a quote marker) is
//! a miss. The test fails listing each miss (file, expected, got) under its
//! kind, and checks that it read every pair in the folder and at least
//! [`MIN_PAIRS`]. `kinds.tsv` beside the pairs names the kind of reply a pair
//! shows (a pair not listed is `general`); every kind listed has at least
//! [`MIN_PER_KIND`] pairs, and the test prints its misses by kind.

use crate::harness::repo;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The fewest pairs the folder may hold: every pair written (81 by language
/// and client, 36 by kind of reply for issue 23).
const MIN_PAIRS: usize = 117;
/// The fewest pairs a kind named in `kinds.tsv` may have.
const MIN_PER_KIND: usize = 5;

fn fixtures_dir() -> PathBuf {
    repo().join("tests/fixtures/replies")
}

/// Trailing whitespace of each line and the blank lines around the text go; nothing else.
pub(crate) fn normalise(s: &str) -> String {
    let lines: Vec<&str> = s.lines().map(str::trim_end).collect();
    let first = lines.iter().position(|l| !l.is_empty());
    let last = lines.iter().rposition(|l| !l.is_empty());
    match (first, last) {
        (Some(a), Some(b)) => lines[a..=b].join("\n"),
        _ => String::new(),
    }
}

/// The kind of each pair from `dir/kinds.tsv` ("NNN<TAB>kind" lines, `#`
/// comments), by `.eml` file name; empty when the folder has none.
fn kinds_of(dir: &Path) -> BTreeMap<String, String> {
    let Ok(text) = std::fs::read_to_string(dir.join("kinds.tsv")) else {
        return BTreeMap::new();
    };
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (n, kind) = l
                .split_once('\t')
                .unwrap_or_else(|| panic!("kinds.tsv: {l:?} is not NNN<TAB>kind"));
            (format!("{}.eml", n.trim()), kind.trim().to_string())
        })
        .collect()
}

/// One golden pair that was run: its `.eml` file name, the expected text
/// and what `read` gave, both normalised.
pub(crate) struct Ran {
    pub name: String,
    pub expected: String,
    pub got: String,
}

/// Runs every `NNN.eml` of `dir` through `ticketd::parse::parse` and `read`
/// and compares with `NNN.expected.txt` after [`normalise`]. Fails listing
/// each miss, when a `.expected.txt` has no `.eml` beside it, or when there are
/// fewer than `min_pairs`. `what` names the fixtures in the messages.
pub(crate) fn check_golden_pairs(
    dir: &Path,
    what: &str,
    min_pairs: usize,
    read: impl Fn(&ticketd::parse::Inbound) -> String,
) -> Vec<Ran> {
    let mut emls: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    emls.sort();
    let arrival = chrono::DateTime::parse_from_rfc3339("2026-12-02T12:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let kinds = kinds_of(dir);
    let kind_of = |name: &str| kinds.get(name).map_or("general", String::as_str);
    let mut ran = Vec::new();
    let mut misses = Vec::new();
    // Per kind: pairs run, misses.
    let mut by_kind: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for eml in &emls {
        let name = eml.file_name().unwrap().to_string_lossy().into_owned();
        let kind = kind_of(&name);
        let expected_path = eml.with_extension("expected.txt");
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{name} has no {}: {e}", expected_path.display()));
        let raw = std::fs::read(eml).unwrap_or_else(|e| panic!("{name}: {e}"));
        let got = read(&ticketd::parse::parse(&raw, arrival));
        let (want, got) = (normalise(&expected), normalise(&got));
        let counts = by_kind.entry(kind).or_default();
        counts.0 += 1;
        if want != got {
            counts.1 += 1;
            misses.push(format!(
                "[{kind}] {name}\n  expected: {want:?}\n  got:      {got:?}"
            ));
        }
        ran.push(Ran {
            name,
            expected: want,
            got,
        });
    }
    let pairs = std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".expected.txt"))
        })
        .count();
    let n = ran.len();
    println!("{what}: {n} run, {} exact", n - misses.len());
    let summary: Vec<String> = by_kind
        .iter()
        .map(|(kind, (run, missed))| format!("{kind}: {missed} of {run} miss"))
        .collect();
    println!("{what} by kind: {}", summary.join("; "));
    for name in kinds.keys() {
        assert!(
            emls.iter().any(|e| e.ends_with(name)),
            "kinds.tsv names {name}, which is not in {}",
            dir.display()
        );
    }
    for (kind, (run, _)) in &by_kind {
        assert!(
            *kind == "general" || *run >= MIN_PER_KIND,
            "only {run} pairs of kind {kind}"
        );
    }
    assert_eq!(n, emls.len(), "not every .eml was run");
    assert_eq!(
        pairs,
        emls.len(),
        "every .expected.txt needs its .eml beside it"
    );
    assert!(n >= min_pairs, "only {n} pairs in {}", dir.display());
    assert!(
        misses.is_empty(),
        "{} of {n} {what} miss ({}):\n{}",
        misses.len(),
        summary.join("; "),
        misses.join("\n")
    );
    ran
}

#[test]
fn issue_23_every_kind_of_reply_has_its_fixtures() {
    let kinds = kinds_of(&fixtures_dir());
    for kind in [
        "inline",
        "wrapped_header",
        "only_quote",
        "sent_from_prose",
        "invisible",
        "leading_blank",
    ] {
        let n = kinds.values().filter(|k| *k == kind).count();
        assert!(n >= MIN_PER_KIND, "{kind}: only {n} pairs");
    }
}

#[test]
fn every_reply_fixture_gives_its_expected_new_text() {
    check_golden_pairs(&fixtures_dir(), "reply fixtures", MIN_PAIRS, |inbound| {
        inbound.reply_text.clone()
    });
}
