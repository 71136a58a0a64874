//! The golden staff-reply fixtures: every `tests/fixtures/staff_replies/NNN.eml` (a staff member's answer to a ticketd notification) through parse and `Inbound::staff_text` gives exactly `NNN.expected.txt`, and no line of the quoted notification is ever in it.
//!
//! The pairs are compared as the customer reply fixtures are
//! ([`crate::replies::check_golden_pairs`]): only trailing whitespace and the
//! blank lines around the text are normalised. `notification.txt` in the same
//! folder is the notification every fixture replies to.

use crate::harness::repo;
use crate::replies::check_golden_pairs;
use std::path::PathBuf;

/// The fewest pairs the folder may hold: one per client shape of the README.
const MIN_PAIRS: usize = 14;

fn fixtures_dir() -> PathBuf {
    repo().join("tests/fixtures/staff_replies")
}

/// The notification's body lines, as a staff member's client quotes them.
fn notification_lines() -> Vec<String> {
    let path = fixtures_dir().join("notification.txt");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn every_staff_reply_fixture_gives_exactly_its_staff_text_and_no_notification_line() {
    let ran = check_golden_pairs(&fixtures_dir(), "staff reply fixtures", MIN_PAIRS, |i| {
        i.staff_text()
    });
    let notification = notification_lines();
    assert!(notification.len() >= 15, "notification.txt is too short");
    let mut leaks = Vec::new();
    for r in &ran {
        for (what, text) in [("expected", &r.expected), ("staff text", &r.got)] {
            for line in text.lines() {
                let bare = line.trim_start_matches(['>', ' ']).trim();
                if let Some(n) = notification.iter().find(|n| bare.contains(n.as_str())) {
                    leaks.push(format!("{} ({what}): {line:?} holds {n:?}", r.name));
                }
            }
        }
        assert!(
            !r.got.lines().any(|l| l.trim_start().starts_with('>')),
            "{}: a quote in the staff text",
            r.name
        );
    }
    assert!(
        leaks.is_empty(),
        "the quoted notification leaks:\n{}",
        leaks.join("\n")
    );
}

#[test]
fn staff_text_keeps_commands_and_signatures_and_drops_mobile_footers() {
    let dir = fixtures_dir();
    let read = |n: &str| {
        let raw = std::fs::read(dir.join(format!("{n}.eml"))).unwrap();
        ticketd::parse::parse(&raw, chrono::DateTime::UNIX_EPOCH)
    };
    // Commands stay at the top, one a line, also from HTML paragraphs and divs.
    let html = read("003");
    assert!(html.text_from_html);
    assert!(
        html.staff_text().starts_with(
            "#status waiting_customer\n#assign marta\n#note Same firmware as ticket 1187;"
        ),
        "{}",
        html.staff_text()
    );
    // A long command soft-wrapped by format=flowed is one line again.
    let flowed = read("001").staff_text();
    assert!(
        flowed
            .lines()
            .any(|l| l.starts_with("#note ") && l.ends_with("book the onsite visit.")),
        "{flowed}"
    );
    // Customer mode on the same mails: the "-- " signature goes, staff mode keeps it.
    for n in ["001", "008", "012", "013", "014"] {
        let i = read(n);
        assert!(
            i.staff_text().contains("\n-- \n"),
            "{n}: {}",
            i.staff_text()
        );
        assert!(!i.reply_text.contains("\n-- \n"), "{n}: {}", i.reply_text);
    }
    // Mobile footers go in both modes.
    for n in ["007", "011"] {
        let i = read(n);
        for t in [i.staff_text(), i.reply_text.clone()] {
            assert!(
                !t.contains("Sent from my") && !t.contains("Get Outlook"),
                "{n}: {t}"
            );
        }
    }
    // The attachment is not part of the text.
    let with_attachment = read("006");
    assert_eq!(with_attachment.attachments.len(), 1);
    assert!(!with_attachment.staff_text().contains("PDF-1.4"));
}

#[test]
fn issue_11_every_staff_reply_fixture_relays_exactly_its_prose_after_its_commands() {
    let ran = check_golden_pairs(&fixtures_dir(), "staff reply fixtures", MIN_PAIRS, |i| {
        i.staff_text()
    });
    let (mut with_commands, mut commands_only) = (0, 0);
    for r in &ran {
        let p = ticketd::commands::parse(&r.got)
            .unwrap_or_else(|e| panic!("{}: the commands do not parse: {e}", r.name));
        // What is relayed is the tail of the staff text, with no command in it.
        assert!(
            r.got.trim_end().ends_with(p.text.trim_end()),
            "{}: the relay is not the text's tail:\n{}",
            r.name,
            p.text
        );
        assert!(
            !p.text
                .lines()
                .next()
                .is_some_and(|l| l.trim_start().starts_with('#')),
            "{}: a command in the relay:\n{}",
            r.name,
            p.text
        );
        if !p.commands.is_empty() {
            with_commands += 1;
            let relayed = !p.text.is_empty() && !p.text.starts_with("--");
            if !relayed {
                commands_only += 1;
            }
        }
    }
    assert!(
        with_commands >= 3,
        "only {with_commands} fixtures carry commands"
    );
    assert!(commands_only >= 1, "no commands-only fixture");
}
