//! Tests of the policy engine: compiling packs and applying their rules.

use super::checks::words_regex;
use super::conditions::{Cond, parse_cond};
use super::evaluate::{
    CRITICAL_PATTERN, FACT_PATTERNS, SEVERITY_PATTERN, has_description, read_severity,
};
use super::*;

#[test]
fn severity_is_read_in_english_japanese_and_spanish() {
    for (text, want) in [
        ("Severity 1: array offline", Some(1)),
        ("this is sev 2", Some(2)),
        ("Priority: S3", Some(3)),
        ("the disk in slot s1 and p2", None),
        ("重大度：２ です", Some(2)),
        ("緊急度 1", Some(1)),
        ("Severidad 4, sin prisa", Some(4)),
        ("prioridad: 2", Some(2)),
        ("we have 12 disks and S5 cables", None),
        ("nothing here", None),
    ] {
        assert_eq!(read_severity(text), want, "{text}");
    }
}

#[test]
fn spans_parse_and_reject_what_they_cannot_read() {
    assert_eq!(Span::parse("8h"), Ok(Span::Minutes(480)));
    assert_eq!(Span::parse("30d"), Ok(Span::Days(30)));
    assert_eq!(Span::parse("2w"), Ok(Span::Days(14)));
    assert_eq!(Span::parse("3y"), Ok(Span::Months(36)));
    assert_eq!(Span::parse("5bd"), Ok(Span::BusinessDays(5)));
    assert!(Span::parse("8 hours").is_err());
    assert!(Span::parse("h").is_err());
}

#[test]
fn conditions_take_alternatives_across_keys_and_reject_unknown_ones() {
    let topics = vec!["warranty".to_string()];
    let (neg, alts) = parse_cond("!mailbox=rma|topic=warranty", &[], &topics).unwrap();
    assert!(neg);
    assert_eq!(
        alts,
        vec![
            Cond::Mailbox(vec!["rma".into()]),
            Cond::Topic(vec!["warranty".into()])
        ]
    );
    let (_, alts) = parse_cond("tier=gold|silver", &[], &topics).unwrap();
    assert_eq!(alts.len(), 2);
    assert!(parse_cond("topic=refund", &[], &topics).is_err());
    assert!(parse_cond("past=nothing", &[], &topics).is_err());
    assert!(parse_cond("fact=shoe_size", &[], &topics).is_err());
    assert!(parse_cond("weekend", &[], &topics).is_err());
}

#[test]
fn keywords_match_whole_words_and_japanese_anywhere() {
    let re = words_regex(&["network".into(), "故障".into(), "sistema caído".into()]).unwrap();
    assert!(re.is_match("a NETWORK issue"));
    assert!(!re.is_match("networking"));
    assert!(re.is_match("ディスクが故障した"));
    assert!(re.is_match("el sistema   caído desde ayer"));
    // A Japanese character beside an English word is a boundary.
    assert!(re.is_match("新しいnetworkの設定"));
    assert!(!re.is_match("新しいnetworkingの設定"));
}

#[test]
fn issue_24_severity_beside_japanese_characters_is_read() {
    assert_eq!(read_severity("障害はS2です"), Some(2));
    assert_eq!(read_severity("優先度S5です"), None);
    assert_eq!(read_severity("障害はseverity 1です"), Some(1));
}

/// The pattern as it read with Unicode word boundaries.
fn with_unicode_boundaries(p: &str) -> regex::Regex {
    regex::Regex::new(
        &p.replace(r"(?-u:\b)", r"\b")
            .replace(r"(?:[^0-9A-Za-z_]|$)", r"\b"),
    )
    .unwrap()
}

proptest::proptest! {
    /// Between words separated by spaces, ASCII boundaries read what
    /// Unicode boundaries read: they differ only beside a non-ASCII letter.
    #[test]
    fn issue_24_ascii_boundaries_read_spaced_words_as_unicode_ones_did(
        words in proptest::collection::vec(proptest::sample::select(vec![
            "version", "versión", "ver.", "v", "v2.1", "2.1.3", "1.2a", "release", "rel",
            "Severity", "sev", "S1", "s2", "3", "４", "重大度", "２.１", "バージョン",
            "Windows", "server", "linux", "z/os", "OS:", "company:", "Empresa：", "ACME",
            "system", "is", "down", "production", "sistema", "caído", "network",
            "networking", "firewall", "です", "é", "ñ", ":", "#", "-", "\n",
        ]), 0..14),
        newline in proptest::bool::ANY,
    ) {
        let text = words.join(if newline { "\n" } else { " " });
        for (fact, p) in FACT_PATTERNS {
            let (now, then) = (regex::Regex::new(p).unwrap(), with_unicode_boundaries(p));
            let group = |re: &regex::Regex| re.captures(&text).map(|c| c.get(1).map(|m| m.as_str().to_string()));
            proptest::prop_assert_eq!(group(&now), group(&then), "{} in {:?}", fact, text);
        }
        for p in [CRITICAL_PATTERN, SEVERITY_PATTERN] {
            let (now, then) = (regex::Regex::new(p).unwrap(), with_unicode_boundaries(p));
            let groups = |re: &regex::Regex| re.captures(&text).map(|c| {
                c.iter().skip(1).map(|m| m.map(|m| m.as_str().to_string())).collect::<Vec<_>>()
            });
            proptest::prop_assert_eq!(groups(&now), groups(&then), "{:?}", text);
        }
        let words = words_regex(&["network".into(), "sistema caído".into(), "z/os".into(), "ver.".into()]).unwrap();
        proptest::prop_assert_eq!(
            words.is_match(&text),
            with_unicode_boundaries(words.as_str()).is_match(&text),
            "{:?}", text
        );
    }
}

#[test]
fn a_description_needs_more_than_identifiers() {
    assert!(!has_description("Serial: A1-12345"));
    assert!(has_description(
        "The pool went offline after a power cut and two disks show checksum errors since then."
    ));
    assert!(has_description(
        "電源投入後にビープ音が鳴り続け、管理画面にアクセスできない状態です。"
    ));
}
