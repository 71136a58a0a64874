//! The golden reply fixtures: every `tests/fixtures/replies/NNN.eml` through the daemon's parse path gives the new text in `NNN.expected.txt`.
//!
//! The comparison normalises only what carries no meaning: whitespace at the
//! end of each line and blank lines before and after the text. Every other
//! difference (a line kept or dropped, inner blank lines, a quote marker) is
//! a miss. The test fails listing each miss (file, expected, got), and checks
//! that it read every pair in the folder and at least [`MIN_PAIRS`].

use crate::harness::repo;
use std::path::{Path, PathBuf};

/// The fewest pairs the folder may hold (five per language, fourteen languages).
const MIN_PAIRS: usize = 70;

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
    let mut ran = Vec::new();
    let mut misses = Vec::new();
    for eml in &emls {
        let name = eml.file_name().unwrap().to_string_lossy().into_owned();
        let expected_path = eml.with_extension("expected.txt");
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{name} has no {}: {e}", expected_path.display()));
        let raw = std::fs::read(eml).unwrap_or_else(|e| panic!("{name}: {e}"));
        let got = read(&ticketd::parse::parse(&raw, arrival));
        let (want, got) = (normalise(&expected), normalise(&got));
        if want != got {
            misses.push(format!("{name}\n  expected: {want:?}\n  got:      {got:?}"));
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
    assert_eq!(n, emls.len(), "not every .eml was run");
    assert_eq!(
        pairs,
        emls.len(),
        "every .expected.txt needs its .eml beside it"
    );
    assert!(n >= min_pairs, "only {n} pairs in {}", dir.display());
    assert!(
        misses.is_empty(),
        "{} of {n} {what} miss:\n{}",
        misses.len(),
        misses.join("\n")
    );
    ran
}

#[test]
fn every_reply_fixture_gives_its_expected_new_text() {
    check_golden_pairs(&fixtures_dir(), "reply fixtures", MIN_PAIRS, |inbound| {
        inbound.reply_text.clone()
    });
}
