//! Tests of the policy engine: compiling packs and applying their rules.

use super::checks::words_regex;
use super::conditions::{Cond, parse_cond};
use super::evaluate::{has_description, read_severity};
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
