//! Checks a pack's entries share while they are compiled: rule IDs, lengths of time, texts in every language, keyword lists; each reports at the entry's line.

use crate::diag::Report;
use crate::model::{Language, Span};
use regex::Regex;
use std::collections::BTreeMap;

/// A text written in every language (a notice's `text.en`, `text.ja`,
/// `text.es`), each checked to compile as a handlebars template.
pub(super) fn texts(
    r: &mut Report<'_>,
    at: usize,
    what: &str,
    given: &BTreeMap<String, String>,
) -> BTreeMap<Language, String> {
    let mut text = BTreeMap::new();
    for lang in Language::ALL {
        match given.get(lang.as_str()) {
            Some(t) => {
                if let Err(e) = handlebars::Template::compile(t) {
                    r.at(at, format!("{what}: text.{}: {e}", lang.as_str()));
                }
                text.insert(lang, t.clone());
            }
            None => r.at(
                at,
                format!(
                    "{what}: text.{} is missing (every text is written in en, ja and es)",
                    lang.as_str()
                ),
            ),
        }
    }
    for k in given.keys() {
        if Language::parse(k).is_none() {
            r.at(at, format!("{what}: text.{k} is not en, ja or es"));
        }
    }
    text
}

/// Reports `id` at `at` unless it is a rule ID such as NX-03.
pub(super) fn rule_ok(r: &mut Report<'_>, at: usize, id: &str) {
    if !valid_rule_id(id) {
        r.at(at, format!("rule `{id}` is not a rule ID such as NX-03"));
    }
}

/// A span as packs write it (`8h`, `30d`, `5bd`); a bad one is reported at
/// `at` under `what`.
pub(super) fn span(r: &mut Report<'_>, at: usize, what: &str, s: &str) -> Span {
    Span::parse(s).unwrap_or_else(|e| {
        r.at(at, format!("{what}: {e}"));
        Span::Minutes(0)
    })
}

/// A keyword list as one case-insensitive regex; words in scripts without
/// spaces match anywhere, others as whole words, where a character of a
/// script without spaces next to the word ends it too.
pub(super) fn words_regex(words: &[String]) -> Result<Regex, String> {
    let alts: Vec<String> = words
        .iter()
        .filter(|w| !w.trim().is_empty())
        .map(|w| {
            let e = regex::escape(w.trim())
                .replace("\\ ", r"\s+")
                .replace(' ', r"\s+");
            let w = w.trim();
            if w.chars()
                .all(|c| c.is_ascii() || c.is_alphabetic() && !is_cjk(c))
            {
                // An ASCII boundary beside an ASCII edge: a Japanese
                // character next to the word counts as one, and the lazy
                // DFA searches any text with it (see `FACT_PATTERNS`).
                let edge = |c: Option<char>| match c {
                    Some(c) if c.is_ascii() => r"(?-u:\b)",
                    _ => r"\b",
                };
                format!("{}{e}{}", edge(w.chars().next()), edge(w.chars().last()))
            } else {
                e
            }
        })
        .collect();
    if alts.is_empty() {
        return Err("the word list is empty".into());
    }
    regex::RegexBuilder::new(&format!("(?i)(?:{})", alts.join("|")))
        .size_limit(1 << 22)
        .build()
        .map_err(|e| e.to_string())
}

pub(super) fn is_cjk(c: char) -> bool {
    matches!(c as u32, 0x3000..=0x9FFF | 0xF900..=0xFAFF | 0xFF00..=0xFFEF)
}

pub(super) fn valid_rule_id(id: &str) -> bool {
    let b = id.as_bytes();
    b.len() >= 4
        && id.split_once('-').is_some_and(|(a, n)| {
            a.len() >= 2
                && a.bytes().all(|c| c.is_ascii_uppercase())
                && !n.is_empty()
                && n.bytes().all(|c| c.is_ascii_digit())
        })
}
