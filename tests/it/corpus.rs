//! Every file of a corpus of mail through parse, classify, extract, decide and the reply-text reader, in-process: the project's own (tests/fixtures/corpus), and a third-party one named by `TICKETD_EXTRA_CORPUS`.
//!
//! Fails when a file panics or takes over a second, when a machine's mail
//! (bounce, auto-reply, list or bulk) or mail marked as spam would be answered
//! (or spam not set aside as spam), when a full human mail would not be, when
//! a row's `expected_language` is not the replies' language, or when the new text matches the manifest's stated text on fewer
//! than nine rows in ten (whitespace aside). Prints the figures so they can be quoted:
//! `cargo test --test it corpus -- --nocapture`.
//!
//! `TICKETD_EXTRA_CORPUS=DIR` (a directory with a `MANIFEST.tsv` of the same
//! columns: path, category, expected_should_autoreply, format,
//! expected_reply_text) runs the same checks on it, with the bar of a large
//! corpus: over 500 rows and over 30 stated texts. `.ci/run` sets it to
//! `../shared/corpus` when that exists beside the checkout.

use crate::harness::repo;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use ticketd::reply_text;

/// The least share of exact new-text matches on rows that state one.
const MIN_EXACT_SHARE: f64 = 0.90;
const MAX_PER_FILE: Duration = Duration::from_secs(1);

/// The environment variable that names a third-party corpus to run too.
pub const EXTRA_CORPUS: &str = "TICKETD_EXTRA_CORPUS";

/// The project's own corpus: mail written for these tests.
pub fn own_corpus() -> PathBuf {
    repo().join("tests/fixtures/corpus")
}

/// The corpus `TICKETD_EXTRA_CORPUS` names, if any (it must then have a
/// MANIFEST.tsv).
pub fn extra_corpus() -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os(EXTRA_CORPUS)?);
    assert!(
        dir.join("MANIFEST.tsv").is_file(),
        "{EXTRA_CORPUS}={} has no MANIFEST.tsv",
        dir.display()
    );
    Some(dir)
}

/// How much a corpus must hold for its figures to mean anything.
struct Bar {
    min_rows: usize,
    min_stated: usize,
}

/// One manifest row, unescaped.
pub struct Row {
    pub path: String,
    pub category: String,
    pub should_autoreply: String,
    pub format: String,
    pub expected_reply_text: String,
    /// The language the replies should be in (`en`, `ja`, `es`), or empty:
    /// an optional column.
    pub expected_language: String,
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('\\') => out.push('\\'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

pub fn manifest(root: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(root.join("MANIFEST.tsv")).expect("read MANIFEST.tsv");
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().expect("a header line").split('\t').collect();
    let col = |name: &str| {
        head.iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("MANIFEST.tsv has no column {name}"))
    };
    let lang = head.iter().position(|h| *h == "expected_language");
    let (p, c, a, f, e) = (
        col("path"),
        col("category"),
        col("expected_should_autoreply"),
        col("format"),
        col("expected_reply_text"),
    );
    lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let v: Vec<&str> = l.split('\t').collect();
            let get = |i: usize| v.get(i).copied().unwrap_or("");
            Row {
                path: unescape(get(p)),
                category: get(c).to_string(),
                should_autoreply: get(a).to_string(),
                format: get(f).to_string(),
                expected_reply_text: unescape(get(e)),
                expected_language: lang.map(get).unwrap_or("").to_string(),
            }
        })
        .collect()
}

fn normalise(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[derive(Default)]
struct Tally {
    files: usize,
    answered_wrongly: usize,
    expected_texts: usize,
    exact: usize,
}

#[test]
fn issue_21_item_3_every_own_corpus_file_is_read_fast_answered_rightly_and_its_reply_text_found() {
    check_corpus(
        &own_corpus(),
        Bar {
            min_rows: 50,
            min_stated: 30,
        },
    );
}

#[test]
fn issue_21_item_3_the_extra_corpus_is_read_fast_answered_rightly_and_its_reply_text_found() {
    let Some(dir) = extra_corpus() else {
        println!("{EXTRA_CORPUS} is not set: no extra corpus to run");
        return;
    };
    check_corpus(
        &dir,
        Bar {
            min_rows: 501,
            min_stated: 31,
        },
    );
}

fn check_corpus(root: &Path, bar: Bar) {
    println!("corpus {}", root.display());
    let rows = manifest(root);
    assert!(
        rows.len() >= bar.min_rows,
        "only {} manifest rows",
        rows.len()
    );
    let engine = ticketd::explain::default_engine(&crate::harness::repo().join("templates"))
        .expect("shipped templates load");
    let store = ticketd::store::Store::in_memory().unwrap();
    let view = ticketd::explain::default_mailbox(&engine);
    let now = chrono::DateTime::parse_from_rfc3339("2026-03-02T10:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);

    let mut by_category: BTreeMap<String, Tally> = BTreeMap::new();
    let mut failures: Vec<String> = Vec::new();
    let mut misses: Vec<String> = Vec::new();
    let mut slowest = (Duration::ZERO, String::new());
    for row in &rows {
        let raw =
            std::fs::read(root.join(&row.path)).unwrap_or_else(|e| panic!("{}: {e}", row.path));
        let t0 = Instant::now();
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // Every file goes through the whole pipeline as a mail, whatever it is.
            let plan = engine
                .plan(&store, view, &raw, now, now)
                .map_err(|e| format!("{e:#}"))?;
            let text = match row.format.as_str() {
                "body_text" => reply_text::extract(&String::from_utf8_lossy(&raw)),
                "html_fragment" => reply_text::extract_html(&String::from_utf8_lossy(&raw)),
                _ => plan.inbound.reply_text.clone(),
            };
            let d = &plan.decision;
            Ok::<_, String>((d.would_reply, d.class, text, d.outcome, d.language))
        }));
        let took = t0.elapsed();
        if took > slowest.0 {
            slowest = (took, row.path.clone());
        }
        let tally = by_category.entry(row.category.clone()).or_default();
        tally.files += 1;
        if took > MAX_PER_FILE {
            failures.push(format!("{}: took {took:?}", row.path));
        }
        let (would_reply, class, text, outcome, language) = match run {
            Err(_) => {
                failures.push(format!("{}: panicked", row.path));
                continue;
            }
            Ok(Err(e)) => {
                failures.push(format!("{}: planning failed: {e}", row.path));
                continue;
            }
            Ok(Ok(v)) => v,
        };
        // Mail the receiving server marked as spam is set aside as spam.
        if row.category == "spam" && outcome != ticketd::model::Outcome::Spam {
            failures.push(format!(
                "{}: outcome {}, not spam",
                row.path,
                outcome.as_str()
            ));
        }
        if !row.expected_language.is_empty() && language.as_str() != row.expected_language {
            failures.push(format!(
                "{}: answered in {}, expected {}",
                row.path,
                language.as_str(),
                row.expected_language
            ));
        }
        let wrong = match row.should_autoreply.as_str() {
            "no" => would_reply,
            "yes" => !would_reply,
            _ => false,
        };
        // The issue's bar: machines (bounce, auto_reply, list_or_bulk, spam) never answered,
        // full human mail always. Other rows are counted and printed, not failed: an
        // "unknown" row may depend on the source's own configuration (a ticket system's
        // emission address, which ticketd knows only as its own `own_addresses`).
        let judged = matches!(
            row.category.as_str(),
            "bounce" | "auto_reply" | "list_or_bulk" | "spam" | "human_new" | "human_reply"
        );
        if wrong {
            tally.answered_wrongly += 1;
        }
        if wrong && !judged {
            println!(
                "note: {} ({}): would {}be answered, the source expects {}",
                row.path,
                row.category,
                if would_reply { "" } else { "not " },
                row.should_autoreply
            );
        } else if wrong {
            failures.push(format!(
                "{}: {} (class {}), expected_should_autoreply = {}",
                row.path,
                if would_reply {
                    "would be answered"
                } else {
                    "would not be answered"
                },
                class.as_str(),
                row.should_autoreply
            ));
        }
        if !row.expected_reply_text.is_empty() {
            tally.expected_texts += 1;
            if normalise(&text) == normalise(&row.expected_reply_text) {
                tally.exact += 1;
            } else {
                misses.push(format!(
                    "{}\n    expected: {:?}\n    actual:   {:?}",
                    row.path,
                    normalise(&row.expected_reply_text),
                    normalise(&text)
                ));
            }
        }
    }

    println!(
        "{:<14} {:>6} {:>17} {:>16}",
        "category", "files", "answered wrongly", "reply text exact"
    );
    let (mut exact, mut stated) = (0, 0);
    for (cat, t) in &by_category {
        exact += t.exact;
        stated += t.expected_texts;
        let share = if t.expected_texts == 0 {
            "-".to_string()
        } else {
            format!("{}/{}", t.exact, t.expected_texts)
        };
        println!(
            "{cat:<14} {:>6} {:>17} {share:>16}",
            t.files, t.answered_wrongly
        );
    }
    let share = exact as f64 / stated.max(1) as f64;
    println!(
        "reply text: {exact}/{stated} exact ({:.1}%, at least {:.0}% required)",
        share * 100.0,
        MIN_EXACT_SHARE * 100.0
    );
    println!("slowest file: {} in {:?}", slowest.1, slowest.0);
    for m in &misses {
        println!("miss: {m}");
    }
    for f in &failures {
        println!("FAIL: {f}");
    }
    assert!(
        stated >= bar.min_stated,
        "only {stated} rows state a reply text"
    );
    assert!(
        failures.is_empty(),
        "{} corpus files failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        share >= MIN_EXACT_SHARE,
        "reply text exact on {exact}/{stated} rows, under {:.0}%",
        MIN_EXACT_SHARE * 100.0
    );
}
