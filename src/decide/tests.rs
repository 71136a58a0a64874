//! Tests of the decision: threading, languages, machines, bounces, duplicates and reply limits.

use super::*;
use crate::classify::{Class, classify_message};
use crate::compose::AutoSubmitted;
use crate::config::{Identity, Limits, Rate};
use crate::extract::extract;
use crate::model::{
    BucketKey, Event, Language, Lookup, Outcome, Proof, Role, Sender, TicketId, TicketInfo,
    TicketStatus, TicketWrite, TimerKind,
};
use crate::model::{BucketLevel, ContactInfo, Duplicate};
use crate::pack::Pack;
use crate::parse::parse;
use chrono::{DateTime, Utc};

fn identity() -> Identity {
    Identity {
        from_name: "Support".into(),
        message_id_domain: "tickets.acme.test".into(),
        own_addresses: vec!["support@acme.test".into()],
        staff: vec!["lead@acme.test".into()],
    }
}

fn ticket(id: i64, requester: &str) -> TicketInfo {
    super::fixtures::ticket(id, requester, "1970-01-01T00:00:00Z")
}

fn run(raw: &str, lookup: Lookup) -> Decision {
    run_with(raw, lookup, &Limits::default(), false, None)
}

fn run_with(
    raw: &str,
    lookup: Lookup,
    limits: &Limits,
    accept_lists: bool,
    now: Option<DateTime<Utc>>,
) -> Decision {
    run_in(raw, lookup, limits, accept_lists, now, &Pack::fallback())
}

fn run_in(
    raw: &str,
    lookup: Lookup,
    limits: &Limits,
    accept_lists: bool,
    now: Option<DateTime<Utc>>,
    pack: &Pack,
) -> Decision {
    run_staff(
        raw,
        lookup,
        limits,
        accept_lists,
        now,
        pack,
        &crate::model::StaffDirectory::default(),
        &Evidence::default(),
    )
}

#[allow(clippy::too_many_arguments)]
pub(super) fn run_staff(
    raw: &str,
    lookup: Lookup,
    limits: &Limits,
    accept_lists: bool,
    now: Option<DateTime<Utc>>,
    pack: &Pack,
    staff: &crate::model::StaffDirectory,
    evidence: &Evidence,
) -> Decision {
    let identity = identity();
    let m = parse(
        raw.as_bytes(),
        DateTime::parse_from_rfc3339("2026-03-02T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc),
    );
    let c = classify_message(raw.as_bytes(), &m, &identity);
    let e = extract(&m, &pack.patterns, "TKT");
    decide(&Input {
        inbound: &m,
        classification: &c,
        extracted: &e,
        lookup: &lookup,
        mailbox: MailboxView {
            name: "support",
            role: Role::Support,
            address: "support@acme.test",
            accept_lists,
        },
        identity: &identity,
        pack,
        staff,
        ticket_prefix: "TKT",
        limits,
        evidence,
        mailboxes: &Default::default(),
        prepared: Some(&super::Prepared::read(&m, c.class, pack)),
        now: now.unwrap_or(m.arrival),
    })
}

const NEW: &str = "From: Ann <ann@example.net>\r\nSubject: Disk failed\r\nMessage-ID: <a1@example.net>\r\n\r\nHelp\r\n";

#[test]
fn a_new_mail_opens_a_ticket_and_is_acknowledged() {
    let d = run(
        NEW,
        Lookup {
            next_ticket_id: TicketId(5),
            ..Default::default()
        },
    );
    assert_eq!(d.outcome, Outcome::Processed);
    assert!(matches!(d.ticket, TicketWrite::New { .. }));
    assert_eq!(d.ticket_view.id, Some(TicketId(5)));
    assert!(d.would_reply);
    assert_eq!(d.replies[0].template, "ack_new");
    assert_eq!(d.replies[0].to, vec!["ann@example.net"]);
    assert_eq!(d.replies[0].in_reply_to.as_deref(), Some("a1@example.net"));
}

#[test]
fn a_tagged_reply_from_the_requester_updates_its_ticket() {
    let raw = "From: ann@example.net\r\nSubject: Re: [TKT#3] Disk failed\r\n\r\nStill broken\r\n";
    let d = run(
        raw,
        Lookup {
            tagged: Some(ticket(3, "ann@example.net")),
            ..Default::default()
        },
    );
    assert!(matches!(
        d.ticket,
        TicketWrite::Update {
            id: TicketId(3),
            ..
        }
    ));
    assert_eq!(d.replies[0].template, "ack_followup");
}

#[test]
fn a_stranger_who_knows_a_ticket_number_cannot_write_on_it() {
    let raw = "From: eve@evil.example\r\nSubject: Re: [TKT#3] close this\r\n\r\nclose\r\n";
    let d = run(
        raw,
        Lookup {
            tagged: Some(ticket(3, "ann@example.net")),
            next_ticket_id: TicketId(9),
            ..Default::default()
        },
    );
    assert!(
        matches!(d.ticket, TicketWrite::New { .. }),
        "{:?}",
        d.ticket
    );
    assert!(d.reasons.iter().any(|r| r.contains("never written")));
}

#[test]
fn references_thread_a_reply_with_a_mangled_subject() {
    let raw = "From: bob@example.net\r\nSubject: what about it\r\nReferences: <ticketd.3.1@tickets.acme.test>\r\n\r\nx\r\n";
    let mut t = ticket(3, "ann@example.net");
    t.participants.push("bob@example.net".into());
    let d = run(
        raw,
        Lookup {
            referenced: Some(t),
            ..Default::default()
        },
    );
    assert!(matches!(
        d.ticket,
        TicketWrite::Update {
            id: TicketId(3),
            ..
        }
    ));
}

#[test]
fn issue_20_class_4_a_stranger_referencing_a_tickets_mail_does_not_join_it() {
    // eve learnt a Message-ID of ticket 3 (and its number): she has never
    // written on it, so her mail opens a ticket of her own and she gets
    // nothing of ticket 3.
    let raw = "From: eve@example.org\r\nSubject: Re: [TKT#3] Disk\r\nMessage-ID: <e1@example.org>\r\nReferences: <ticketd.3.1@tickets.acme.test>\r\n\r\nWhat is the status?\r\n";
    let d = run(
        raw,
        Lookup {
            tagged: Some(ticket(3, "ann@example.net")),
            referenced: Some(ticket(3, "ann@example.net")),
            next_ticket_id: TicketId(4),
            ..Default::default()
        },
    );
    assert!(
        matches!(d.ticket, TicketWrite::New { .. }),
        "{:?}",
        d.ticket
    );
    assert!(
        d.reasons
            .iter()
            .any(|r| r.contains("point at ticket 3 but the sender has never written on it")),
        "{:?}",
        d.reasons
    );
    assert!(d.replies.iter().all(|r| r.to == vec!["eve@example.org"]));
    assert!(
        d.replies
            .iter()
            .all(|r| !r.data.to_string().contains("ann@example.net")),
        "nothing of ticket 3 reaches eve"
    );
}

#[test]
fn issue_20_class_4_awaited_references_list_only_the_sender() {
    // A mail spoofing ann with ticket 3's tag names a made-up reference and
    // eve in Cc: only ann may later join through that reference.
    let raw = "From: ann@example.net\r\nTo: support@acme.test\r\nCc: eve@example.org\r\nSubject: Re: [TKT#3] Disk\r\nMessage-ID: <f1@example.net>\r\nReferences: <made-up@example.org>\r\n\r\nMore details.\r\n";
    let d = run(
        raw,
        Lookup {
            tagged: Some(ticket(3, "ann@example.net")),
            ..Default::default()
        },
    );
    assert_eq!(d.effects.awaited, vec!["made-up@example.org"]);
    assert_eq!(d.effects.awaited_people, vec!["ann@example.net"]);
    // eve's mail of that Message-ID is not pulled onto ticket 3.
    let eve = "From: eve@example.org\r\nSubject: hello\r\nMessage-ID: <made-up@example.org>\r\n\r\nStatus of my ticket?\r\n";
    let d = run(
        eve,
        Lookup {
            awaited_by: Some((ticket(3, "ann@example.net"), vec!["ann@example.net".into()])),
            next_ticket_id: TicketId(4),
            ..Default::default()
        },
    );
    assert!(
        matches!(d.ticket, TicketWrite::New { .. }),
        "{:?}",
        d.ticket
    );
}

#[test]
fn machines_get_no_reply_and_leave_the_ticket_alone() {
    let raw = "From: ann@example.net\r\nAuto-Submitted: auto-replied\r\nSubject: Out of office\r\nIn-Reply-To: <ticketd.3.1@tickets.acme.test>\r\n\r\naway\r\n";
    let d = run(
        raw,
        Lookup {
            referenced: Some(ticket(3, "ann@example.net")),
            ..Default::default()
        },
    );
    assert!(!d.would_reply);
    assert!(d.replies.is_empty());
    assert!(matches!(d.ticket, TicketWrite::Attach { id: TicketId(3) }));
}

#[test]
fn a_duplicate_changes_nothing() {
    let d = run(
        NEW,
        Lookup {
            duplicate: Some(Duplicate {
                row: 1,
                mailbox: "rma".into(),
                ticket_id: Some(TicketId(4)),
            }),
            ..Default::default()
        },
    );
    assert_eq!(d.outcome, Outcome::Duplicate);
    assert!(d.replies.is_empty());
    assert!(matches!(d.ticket, TicketWrite::Attach { id: TicketId(4) }));
}

#[test]
fn an_undeliverable_contact_gets_no_reply() {
    let contact = ContactInfo {
        address: "ann@example.net".into(),
        language: None,
        undeliverable: true,
        undeliverable_reason: Some("Status 5.1.1".into()),
    };
    let d = run(
        NEW,
        Lookup {
            contact: Some(contact),
            ..Default::default()
        },
    );
    assert!(!d.would_reply);
    assert!(matches!(d.ticket, TicketWrite::New { .. }));
}

#[test]
fn language_follows_the_ticket_then_the_contact_then_the_text_then_the_pack() {
    let ja = "From: taro@example.jp\r\nSubject: =?UTF-8?B?6Zqc5a6z44Gr44Gk44GE44Gm?=\r\n\r\nx\r\n";
    let d = run(ja, Lookup::default());
    assert_eq!(
        (d.language, d.language_reason.as_str()),
        (Language::Ja, "the mail is written in ja (kana)")
    );
    let contact = ContactInfo {
        address: "ann@example.net".into(),
        language: Some("es".into()),
        undeliverable: false,
        undeliverable_reason: None,
    };
    let d = run(
        NEW,
        Lookup {
            contact: Some(contact.clone()),
            ..Default::default()
        },
    );
    assert_eq!(
        (d.language, d.language_reason.as_str()),
        (Language::Es, "the contact's language")
    );
    // The ticket's language comes first.
    let mut t = ticket(3, "ann@example.net");
    t.language = "ja".into();
    let d = run(
        "From: ann@example.net\r\nSubject: Re: [TKT#3] Disk failed\r\n\r\nStill broken\r\n",
        Lookup {
            tagged: Some(t),
            contact: Some(contact),
            ..Default::default()
        },
    );
    assert_eq!(
        (d.language, d.language_reason.as_str()),
        (Language::Ja, "the ticket's language")
    );
    let d = run(NEW, Lookup::default());
    assert_eq!(
        (d.language, d.language_reason.as_str()),
        (Language::En, "the pack's language")
    );
}

#[test]
fn a_spanish_mail_to_an_english_pack_is_answered_in_spanish_as_a_japanese_one_is_in_japanese() {
    let es = "From: ana@example.es\r\nSubject: Disco averiado\r\n\r\nBuenos días, el disco de la bahía 2 de nuestro servidor ha fallado esta mañana y necesitamos una sustitución lo antes posible.\r\n";
    let d = run(es, Lookup::default());
    assert_eq!(
        (d.language, d.language_reason.as_str()),
        (
            Language::Es,
            "the mail is written in es (its greeting, sign-off and words)"
        )
    );
    // A language we have no templates for gets the pack's.
    let de = "From: jan@example.de\r\nSubject: Festplatte defekt\r\n\r\nGuten Tag, die Festplatte in Schacht 2 unseres Servers ist heute Morgen ausgefallen und wir brauchen schnell einen Ersatz.\r\n";
    assert_eq!(run(de, Lookup::default()).language, Language::En);
}

#[test]
fn unparseable_mail_is_quarantined_and_staff_told() {
    let d = run("", Lookup::default());
    assert_eq!(d.outcome, Outcome::Quarantined);
    assert_eq!(d.replies.len(), 1);
    assert_eq!(d.replies[0].to, vec!["lead@acme.test"]);
    assert!(!d.would_reply);
}

const BOUNCE: &str = "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\nTo: support@acme.test\r\nSubject: Undelivered Mail Returned to Sender\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nThis is the mail system at host mx.example.net.\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\nFinal-Recipient: rfc822; ann@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <ticketd.3.1@tickets.acme.test>\r\nTo: ann@example.net\r\n--b--\r\n";

/// What the store finds for a report returning our mail to `to` on
/// ticket 3 (an outbox row of that Message-ID).
fn returning(requester: &str, to: &[&str]) -> Lookup {
    Lookup {
        bounced: Some(ticket(3, requester)),
        bounced_recipients: to.iter().map(|a| a.to_string()).collect(),
        ..Default::default()
    }
}

#[test]
fn a_permanent_bounce_marks_the_contact_and_tells_staff() {
    let d = run(BOUNCE, returning("ann@example.net", &["ann@example.net"]));
    assert_eq!(d.class, Class::Bounce);
    assert!(!d.would_reply);
    assert!(matches!(d.ticket, TicketWrite::Attach { id: TicketId(3) }));
    assert_eq!(d.effects.undeliverable.len(), 1);
    assert_eq!(d.effects.undeliverable[0].address, "ann@example.net");
    assert!(
        d.effects.undeliverable[0]
            .reason
            .starts_with("Status 5.1.1")
    );
    assert_eq!(d.replies.len(), 1);
    assert_eq!(d.replies[0].template, "staff_undeliverable");
    assert_eq!(d.replies[0].to, vec!["lead@acme.test"]);
    assert_eq!(d.replies[0].auto_submitted, AutoSubmitted::Generated);
    assert!(d.events.iter().any(|e| e.kind() == "bounce"));
    assert!(d.events.iter().any(|e| e.kind() == "undeliverable"));
}

#[test]
fn a_bounce_marks_only_addresses_on_its_ticket_and_only_once() {
    let d = run(BOUNCE, returning("bob@example.net", &["bob@example.net"]));
    assert!(d.effects.undeliverable.is_empty());
    assert!(d.replies.is_empty());
    let d = run(
        BOUNCE,
        Lookup {
            bounce_contacts: vec![ContactInfo {
                address: "ann@example.net".into(),
                language: None,
                undeliverable: true,
                undeliverable_reason: None,
            }],
            ..returning("ann@example.net", &["ann@example.net"])
        },
    );
    assert!(d.effects.undeliverable.is_empty());
    assert!(d.replies.is_empty(), "staff are told once");
}

#[test]
fn issue_20_class_3_a_forged_bounce_naming_an_inbound_message_id_marks_nobody() {
    // The report names a Message-ID that is on ticket 3 (the customer's own
    // mail, which its sender chose) but no outbox mail: the store finds the
    // thread, not a mail of ours.
    // (`bounced` as the store once found it, by any stored Message-ID.)
    let d = run(
        BOUNCE,
        Lookup {
            bounced: Some(ticket(3, "ann@example.net")),
            ..Default::default()
        },
    );
    assert_eq!(d.class, Class::Bounce);
    assert!(d.effects.undeliverable.is_empty(), "{:?}", d.reasons);
    assert!(d.replies.is_empty());
    assert!(
        d.reasons
            .iter()
            .any(|r| r.contains("returns no mail ticketd sent")),
        "{:?}",
        d.reasons
    );
}

#[test]
fn issue_20_class_3_only_the_returned_mails_recipients_are_marked() {
    // Our mail went to bob; the report claims ann (the ticket's customer).
    let d = run(BOUNCE, returning("ann@example.net", &["bob@example.net"]));
    assert!(d.effects.undeliverable.is_empty(), "{:?}", d.reasons);
    assert!(
        d.reasons
            .iter()
            .any(|r| r.contains("ann@example.net was not a recipient of the returned mail")),
        "{:?}",
        d.reasons
    );
}

#[test]
fn issue_20_class_3_a_staff_address_is_never_marked_and_staff_are_told() {
    let staff = staff_dir();
    let raw = BOUNCE.replace("ann@example.net", "alice@acme.test");
    let d = with_staff(
        &raw,
        returning("ann@example.net", &["alice@acme.test"]),
        &staff,
        &Evidence::default(),
    );
    assert!(d.effects.undeliverable.is_empty(), "{:?}", d.reasons);
    assert_eq!(d.replies.len(), 1, "{:?}", d.reasons);
    let n = &d.replies[0];
    assert_eq!(n.template, "staff_undeliverable");
    assert_eq!(n.to, vec!["lead@acme.test"]);
    assert_eq!(n.data["bounce"]["staff"], true);
    assert_eq!(n.data["bounce"]["recipients"], "alice@acme.test");
    // The [identity] staff address itself bouncing: not marked, and its
    // notice goes nowhere rather than back to the address that bounces.
    let raw = BOUNCE.replace("ann@example.net", "lead@acme.test");
    let d = with_staff(
        &raw,
        returning("ann@example.net", &["lead@acme.test"]),
        &staff,
        &Evidence::default(),
    );
    assert!(d.effects.undeliverable.is_empty());
    assert!(d.replies.is_empty());
}

#[test]
fn a_report_naming_nobody_marks_the_one_address_our_mail_went_to() {
    let raw = "From: MAILER-DAEMON@mx.example.net\r\nSubject: Returned mail: User unknown\r\nIn-Reply-To: <ticketd.3.1@tickets.acme.test>\r\n\r\nThe user does not exist.\r\n";
    let d = run(raw, returning("ann@example.net", &["ann@example.net"]));
    assert_eq!(d.class, Class::Bounce);
    assert_eq!(d.effects.undeliverable.len(), 1, "{:?}", d.reasons);
    assert_eq!(d.effects.undeliverable[0].address, "ann@example.net");
}

#[test]
fn a_temporary_bounce_is_recorded_only() {
    let raw = BOUNCE
        .replace("Action: failed", "Action: delayed")
        .replace("Status: 5.1.1", "Status: 4.4.1");
    let d = run(&raw, returning("ann@example.net", &["ann@example.net"]));
    assert!(matches!(d.ticket, TicketWrite::Attach { id: TicketId(3) }));
    assert!(d.effects.undeliverable.is_empty());
    assert!(d.replies.is_empty());
    assert!(
        d.events
            .iter()
            .any(|e| e.kind() == "bounce" && e.detail().contains("4.4.1"))
    );
}

#[test]
fn a_bounce_of_mail_that_is_not_ours_is_ignored() {
    let d = run(BOUNCE, Lookup::default());
    assert_eq!(d.outcome, Outcome::Ignored);
    assert!(d.effects.undeliverable.is_empty());
    assert!(d.replies.is_empty());
}

#[test]
fn list_mail_makes_a_ticket_only_where_lists_are_accepted() {
    let raw =
        "From: news@example.net\r\nList-Id: <news.example.net>\r\nSubject: Weekly\r\n\r\nx\r\n";
    let d = run_with(raw, Lookup::default(), &Limits::default(), false, None);
    assert_eq!(d.outcome, Outcome::Ignored);
    let d = run_with(
        raw,
        Lookup {
            next_ticket_id: TicketId(4),
            ..Default::default()
        },
        &Limits::default(),
        true,
        None,
    );
    assert!(matches!(d.ticket, TicketWrite::New { .. }));
    assert!(d.replies.is_empty(), "list mail is never answered");
}

#[test]
fn replies_stop_when_the_recipient_bucket_is_empty() {
    let limits = Limits::default();
    let at = DateTime::parse_from_rfc3339("2026-03-02T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let empty = |key: &str, tokens: f64| BucketLevel {
        key: key.into(),
        tokens,
        updated_at: at,
    };
    // A full bucket: the reply goes out and the level drops by one.
    let d = run(NEW, Lookup::default());
    assert!(d.would_reply);
    let rcpt = d
        .effects
        .buckets
        .iter()
        .find(|(k, _)| *k == BucketKey::Recipient("ann@example.net".into()))
        .unwrap();
    assert_eq!(rcpt.1, f64::from(limits.replies_per_recipient.burst) - 1.0);
    // An empty bucket: no reply, an event says why.
    let lookup = Lookup {
        buckets: vec![empty("rcpt:ann@example.net", 0.2)],
        ..Default::default()
    };
    let d = run_with(NEW, lookup.clone(), &limits, false, Some(at));
    assert!(!d.would_reply);
    assert!(d.effects.buckets.is_empty());
    assert!(d.events.iter().any(|e| e.kind() == "reply_suppressed"));
    assert!(
        matches!(d.ticket, TicketWrite::New { .. }),
        "still a ticket"
    );
    // Half an hour later at two an hour, a token has come back.
    let later = at + chrono::Duration::minutes(30);
    let d = run_with(NEW, lookup, &limits, false, Some(later));
    assert!(d.would_reply);
}

#[test]
fn replies_stop_when_the_ticket_bucket_is_empty() {
    let raw = "From: ann@example.net\r\nSubject: Re: [TKT#3] Disk failed\r\n\r\nStill broken\r\n";
    let d = run(
        raw,
        Lookup {
            tagged: Some(ticket(3, "ann@example.net")),
            buckets: vec![BucketLevel {
                key: "ticket:3".into(),
                tokens: 0.0,
                updated_at: DateTime::parse_from_rfc3339("2026-03-02T10:00:00Z")
                    .unwrap()
                    .with_timezone(&Utc),
            }],
            ..Default::default()
        },
    );
    assert!(!d.would_reply);
    assert!(d.reasons.iter().any(|r| r.contains("ticket 3")));
    assert!(matches!(
        d.ticket,
        TicketWrite::Update {
            id: TicketId(3),
            ..
        }
    ));
}

/// A pack whose closed tickets reopen within 30 days.
fn pack_with_reopen_window() -> Pack {
    Pack::from_str_at(
        std::path::Path::new("acme.toml"),
        "[pack]\nname = \"acme\"\nvendor = \"ACME\"\nlanguage = \"en\"\nzone = \"UTC\"\n\n[lifecycle]\nreopen_within = \"30d\"\n",
    )
    .unwrap()
}

#[test]
fn a_mail_on_a_ticket_closed_within_the_window_reopens_it_and_later_opens_a_linked_one() {
    let raw = "From: ann@example.net\r\nSubject: Re: [TKT#3] Disk failed\r\n\r\nIt broke again\r\n";
    let closed = |days_ago: i64| {
        let mut t = ticket(3, "ann@example.net");
        t.status = TicketStatus::Closed;
        t.updated_at = DateTime::parse_from_rfc3339("2026-03-02T10:00:00Z")
            .unwrap()
            .to_utc()
            - chrono::Duration::days(days_ago);
        Lookup {
            tagged: Some(t),
            ..Default::default()
        }
    };
    let pack = pack_with_reopen_window();
    let d = run_in(raw, closed(10), &Limits::default(), false, None, &pack);
    assert!(
        matches!(
            d.ticket,
            TicketWrite::Update {
                id: TicketId(3),
                ..
            }
        ),
        "{:?}",
        d.ticket
    );
    assert!(d.events.iter().any(|e| e.kind() == "reopened"));
    let d = run_in(raw, closed(31), &Limits::default(), false, None, &pack);
    assert!(
        matches!(d.ticket, TicketWrite::New { .. }),
        "{:?}",
        d.ticket
    );
    assert!(
        d.events.contains(&Event::LinkedTo {
            ticket: TicketId(3)
        }),
        "{:?}",
        d.events
    );
    assert_eq!(d.replies[0].template, "ack_new");
    assert!(
        d.reasons.iter().any(|r| r.contains("reopen window")),
        "{:?}",
        d.reasons
    );
}

#[test]
fn a_customer_writing_after_a_staff_answer_waits_on_staff() {
    let raw =
        "From: ann@example.net\r\nSubject: Re: [TKT#3] Disk failed\r\n\r\nHere is the log\r\n";
    let mut t = ticket(3, "ann@example.net");
    t.status = TicketStatus::WaitingCustomer;
    t.last_answer = Some(t.created_at);
    let d = run(
        raw,
        Lookup {
            tagged: Some(t),
            ..Default::default()
        },
    );
    assert!(
        matches!(
            d.ticket,
            TicketWrite::Update {
                status: TicketStatus::WaitingStaff,
                ..
            }
        ),
        "{:?}",
        d.ticket
    );
}

// Staff by mail (issue 11).

fn staff_dir() -> crate::model::StaffDirectory {
    crate::model::StaffDirectory {
        members: vec![crate::model::StaffMember {
            name: "alice".into(),
            display: "Alice".into(),
            addresses: vec!["alice@acme.test".into()],
            queues: vec!["support".into()],
        }],
        token_key: Some(crate::token::TokenKey::new(b"a test key of some thirty bytes!").unwrap()),
        ..crate::model::StaffDirectory::default()
    }
}

/// Alice's reply on ticket 3, proven by the token of a notification sent to her.
fn alice_reply(staff: &crate::model::StaffDirectory, body: &str) -> String {
    let id = crate::token::message_id(
        staff.token_key.as_ref().unwrap(),
        "tickets.acme.test",
        TicketId(3),
        "alice@acme.test",
        super::fixtures::at("2026-03-02T09:00:00Z"),
    );
    format!(
        "From: Alice <alice@acme.test>\r\nTo: support@acme.test\r\nSubject: Re: [ticketd] [TKT#3] New ticket: Disk\r\nMessage-ID: <r1@acme.test>\r\nIn-Reply-To: <{id}>\r\nReferences: <{id}>\r\n\r\n{body}"
    )
}

fn on_ticket_3(raw: &str, staff: &crate::model::StaffDirectory, ev: &Evidence) -> Decision {
    let mut t = ticket(3, "ann@example.net");
    t.timers = vec![crate::model::PendingTimer {
        kind: TimerKind::SlaWarning,
        cause: crate::model::TimerCause::Sla {
            target: crate::model::SlaTarget::FirstResponse,
            clock: crate::model::SlaClock::Business,
        },
        state: crate::model::TimerState::Running {
            due: t.created_at + chrono::Duration::hours(3),
        },
    }];
    with_staff(
        raw,
        Lookup {
            tagged: Some(t),
            customer_thread: Some("a1@example.net".into()),
            ..Default::default()
        },
        staff,
        ev,
    )
}

/// `raw` decided with the fallback pack and default limits, staff `staff`.
fn with_staff(
    raw: &str,
    lookup: Lookup,
    staff: &crate::model::StaffDirectory,
    ev: &Evidence,
) -> Decision {
    run_staff(
        raw,
        lookup,
        &Limits::default(),
        false,
        None,
        &Pack::fallback(),
        staff,
        ev,
    )
}

/// Alice's proven reply `body` on ticket 3.
fn alice_says(body: &str) -> Decision {
    let s = staff_dir();
    on_ticket_3(&alice_reply(&s, body), &s, &Evidence::default())
}

#[test]
fn issue_11_a_proven_staff_reply_is_relayed_in_the_customers_thread_and_waits_on_them() {
    let d = alice_says("Hello Ann,\r\n\r\nplease update to 24.10.1.\r\n\r\nBest,\r\nAlice\r\n");
    assert_eq!(d.sender, Sender::Staff);
    assert_eq!(d.proof, Some(Proof::ReplyToken));
    let relay = d
        .replies
        .iter()
        .find(|r| r.template == "staff_reply")
        .expect("a relay");
    assert_eq!(relay.to, vec!["ann@example.net"]);
    assert_eq!(relay.in_reply_to.as_deref(), Some("a1@example.net"));
    assert_eq!(relay.auto_submitted, AutoSubmitted::Person);
    assert!(relay.relay_attachments);
    assert_eq!(
        relay.data["body"],
        "Hello Ann,\n\nplease update to 24.10.1.\n\nBest,\nAlice"
    );
    let confirm = d
        .replies
        .iter()
        .find(|r| r.template == "staff_confirm")
        .expect("a confirmation");
    assert_eq!(confirm.to, vec!["alice@acme.test"]);
    assert!(matches!(
        d.ticket,
        TicketWrite::Update {
            id: TicketId(3),
            status: TicketStatus::WaitingCustomer
        }
    ));
    // The first response: the SLA warning ends.
    assert!(
        d.effects
            .cancel_timers
            .iter()
            .any(|c| c.kind == TimerKind::SlaWarning)
    );
    assert!(d.events.iter().any(
        |e| matches!(e, Event::StaffMail { proof, relayed: true, .. } if proof == "reply token")
    ));
    assert!(
        d.events.iter().any(
            |e| matches!(e, Event::StaffReply { by, .. } if by == "alice by mail (reply token)")
        )
    );
}

#[test]
fn issue_11_a_mail_of_commands_only_relays_nothing_and_confirms_once() {
    let d = alice_says("#close\r\n#note replaced the cable\r\n");
    assert!(d.replies.iter().all(|r| r.template != "staff_reply"));
    assert_eq!(
        d.replies
            .iter()
            .filter(|r| r.template == "staff_confirm")
            .count(),
        1
    );
    assert_eq!(d.commands, vec!["#close", "#note"]);
    assert!(matches!(
        d.ticket,
        TicketWrite::Update {
            status: TicketStatus::Closed,
            ..
        }
    ));
    assert!(
        d.events
            .iter()
            .any(|e| matches!(e, Event::Note { text, .. } if text == "replaced the cable"))
    );
}

#[test]
fn issue_11_a_command_then_text_answers_first_then_runs_the_command() {
    let d = alice_says("#status waiting_staff\r\n\r\nI will check the logs tomorrow.\r\n");
    assert!(d.replies.iter().any(|r| r.template == "staff_reply"));
    // The command says otherwise than the answer's waiting_customer.
    assert!(matches!(
        d.ticket,
        TicketWrite::Update {
            status: TicketStatus::WaitingStaff,
            ..
        }
    ));
}

#[test]
fn issue_11_an_unknown_command_relays_nothing_and_answers_with_the_error_and_line() {
    let d = alice_says("#clsoe\r\nThanks, fixed.\r\n");
    assert_eq!(d.replies.len(), 1);
    assert_eq!(d.replies[0].template, "staff_command_error");
    assert_eq!(d.replies[0].to, vec!["alice@acme.test"]);
    let error = d.replies[0].data["error"].as_str().unwrap();
    assert!(error.contains("line 1: `#clsoe`"), "{error}");
    assert!(matches!(d.ticket, TicketWrite::Attach { id: TicketId(3) }));
    assert!(d.effects.cancel_timers.is_empty());
}

#[test]
fn issue_11_a_relay_still_holding_the_notification_is_refused() {
    let d = alice_says(
        "Fixed.\r\n\r\nReply to this mail to answer the customer\r\n  #close   #reopen   #status open|waiting_customer|waiting_staff\r\n",
    );
    assert_eq!(d.replies.len(), 1);
    assert_eq!(d.replies[0].template, "staff_command_error");
}

#[test]
fn issue_11_a_forged_staff_from_without_proof_is_held_and_staff_told_once() {
    let s = staff_dir();
    let raw = "From: Alice <alice@acme.test>\r\nTo: support@acme.test\r\nSubject: Re: [TKT#3] Disk\r\nMessage-ID: <f1@evil.example>\r\n\r\n#close\r\nWe refund you 10000 EUR.\r\n";
    let d = on_ticket_3(raw, &s, &Evidence::default());
    assert_eq!(d.sender, Sender::UnverifiedStaff);
    assert_eq!(d.proof, None);
    assert!(matches!(d.ticket, TicketWrite::Attach { id: TicketId(3) }));
    assert_eq!(d.replies.len(), 1);
    assert_eq!(d.replies[0].template, "staff_unverified");
    assert!(d.replies[0].to.contains(&"alice@acme.test".to_string()));
    assert!(
        d.events
            .iter()
            .any(|e| matches!(e, Event::Unverified { .. }))
    );
    assert!(d.effects.cancel_timers.is_empty());
}

#[test]
fn issue_11_a_dkim_pass_proves_a_staff_mail_without_a_token() {
    let s = staff_dir();
    let raw = "From: Alice <alice@acme.test>\r\nTo: support@acme.test\r\nSubject: Re: [TKT#3] Disk\r\nMessage-ID: <d1@acme.test>\r\n\r\n#severity 1\r\n";
    let ev = Evidence {
        dkim: Some(crate::dkim::DkimVerdict::Pass {
            domain: "acme.test".into(),
            selector: "s1".into(),
        }),
        ..Evidence::default()
    };
    let d = on_ticket_3(raw, &s, &ev);
    assert_eq!(d.sender, Sender::Staff);
    assert!(matches!(d.proof, Some(Proof::Dkim { .. })));
    assert!(
        d.events
            .iter()
            .any(|e| matches!(e, Event::SeverityChanged { to: 1, .. }))
    );
}

#[test]
fn issue_11_a_new_customer_mail_notifies_the_queue_with_a_token_per_address() {
    let s = staff_dir();
    let d = with_staff(
        NEW,
        Lookup {
            next_ticket_id: TicketId(5),
            ..Default::default()
        },
        &s,
        &Evidence::default(),
    );
    let n = d
        .replies
        .iter()
        .find(|r| r.template == "staff_ticket")
        .expect("a notification");
    assert_eq!(n.to, vec!["alice@acme.test"]);
    assert!(n.staff_tokens);
    assert_eq!(n.reply_to.as_deref(), Some("support@acme.test"));
    assert_eq!(n.data["text"], "Help");
    assert_eq!(n.data["new"], true);
}

#[test]
fn issue_11_a_customers_hash_close_is_not_a_command() {
    let raw = "From: ann@example.net\r\nSubject: Re: [TKT#3] Disk\r\n\r\n#close\r\nsolved, thanks, please close\r\n";
    let d = with_staff(
        raw,
        Lookup {
            tagged: Some(ticket(3, "ann@example.net")),
            ..Default::default()
        },
        &staff_dir(),
        &Evidence::default(),
    );
    assert_eq!(d.sender, Sender::Customer);
    assert!(matches!(
        d.ticket,
        TicketWrite::Update {
            status: TicketStatus::Open,
            ..
        }
    ));
}

#[test]
fn ix_13_nx_02_a_status_request_is_answered_and_changes_nothing() {
    let mut t = ticket(3, "ann@example.net");
    t.status = TicketStatus::WaitingCustomer;
    t.last_answer = Some(t.created_at);
    let raw = "From: ann@example.net\r\nSubject: Re: [TKT#3] Disk\r\nMessage-ID: <s1@example.net>\r\n\r\nWhat is the status of my ticket?\r\n";
    let d = run(
        raw,
        Lookup {
            tagged: Some(t),
            ..Default::default()
        },
    );
    assert!(matches!(d.ticket, TicketWrite::Attach { id: TicketId(3) }));
    assert_eq!(d.replies.len(), 1);
    assert_eq!(d.replies[0].template, "status_reply");
    assert_eq!(d.replies[0].data["ticket_state"], "waiting_customer");
    assert_eq!(d.replies[0].data["last_answer"], "1970-01-01");
    assert!(d.effects.timers.is_empty() && d.effects.cancel_timers.is_empty());
    assert!(
        d.events
            .iter()
            .any(|e| matches!(e, Event::StatusRequest { .. }))
    );
    // A follow-up that says more is no status request.
    let raw = "From: ann@example.net\r\nSubject: Re: [TKT#3] Disk\r\n\r\nAny update? The pool went offline again tonight, the log is attached below.\r\nzpool status says: DEGRADED, da3 FAULTED, too many errors, resilver stopped at 40%\r\nand the web UI shows an alert for the fan, too; the box rebooted twice since Monday\r\nand we need it back before the weekend backup window starts on Friday at 22:00.\r\nPlease advise what to do next, and whether we should pull the disk ourselves.\r\n";
    let d = run(
        raw,
        Lookup {
            tagged: Some(ticket(3, "ann@example.net")),
            ..Default::default()
        },
    );
    assert!(matches!(d.ticket, TicketWrite::Update { .. }));
}

#[test]
fn issue_11_commands_above_a_signature_alone_relay_nothing() {
    let d = alice_says("#close\r\n\r\n-- \r\nAlice Staff\r\nVendor support\r\n");
    assert!(d.replies.iter().all(|r| r.template != "staff_reply"));
    assert!(matches!(
        d.ticket,
        TicketWrite::Update {
            status: TicketStatus::Closed,
            ..
        }
    ));
}

#[test]
fn av_05_a_routed_request_is_assigned_to_the_contracts_technician_who_alone_hears_of_it() {
    let pack = super::fixtures::pack("avanzada7");
    let mut staff = staff_dir();
    staff.members.push(crate::model::StaffMember {
        name: "tecnico1".into(),
        display: "Técnico 1".into(),
        addresses: vec!["tecnico1@acme.test".into()],
        queues: vec!["AV-05".into()],
    });
    let contract = crate::contracts::ContractMatch {
        contract: crate::contracts::Contract {
            serial: "AV7-000123".into(),
            email: "it@customer.test".into(),
            company: "Customer Labs S.L.".into(),
            tier: "customer".into(),
            model: "UCM6302".into(),
            purchased_on: chrono::NaiveDate::from_ymd_opt(2025, 1, 10).unwrap(),
            plans: vec!["maintenance".into()],
            technician: "tecnico1".into(),
            ..Default::default()
        },
        by: crate::contracts::MatchedBy::Email,
    };
    let raw = "From: it@customer.test\r\nSubject: Mantenimiento\r\nMessage-ID: <m1@customer.test>\r\n\r\nEmpresa: Customer Labs S.L.\r\nCIF: B12345678\r\nLa centralita se reinicia.\r\n";
    let d = run_staff(
        raw,
        Lookup {
            contract: Some(contract),
            next_ticket_id: TicketId(9),
            ..Default::default()
        },
        &Limits::default(),
        false,
        Some(super::fixtures::at("2026-11-23T10:00:00+01:00")),
        &pack,
        &staff,
        &Evidence::default(),
    );
    assert!(d.events.iter().any(
        |e| matches!(e, Event::Assigned { to, by } if to == "tecnico1" && by == "route AV-05")
    ));
    let n: Vec<_> = d
        .replies
        .iter()
        .filter(|r| r.template == "staff_ticket")
        .collect();
    assert_eq!(n.len(), 1);
    assert_eq!(
        n[0].to,
        vec!["tecnico1@acme.test"],
        "the technician, not the support queue"
    );
    assert_eq!(n[0].data["owner"], "tecnico1");
}

#[test]
fn issue_11_a_staff_address_only_in_reply_to_under_a_broken_from_is_not_proven() {
    let s = staff_dir();
    let id = crate::token::message_id(
        s.token_key.as_ref().unwrap(),
        "tickets.acme.test",
        TicketId(3),
        "alice@acme.test",
        super::fixtures::at("2026-03-02T09:00:00Z"),
    );
    let raw = format!(
        "From: undisclosed\r\nReply-To: alice@acme.test\r\nSubject: Re: [TKT#3] Disk\r\nIn-Reply-To: <{id}>\r\n\r\n#close\r\n"
    );
    let d = on_ticket_3(&raw, &s, &Evidence::default());
    assert_eq!(d.sender, Sender::UnverifiedStaff);
    assert!(matches!(d.ticket, TicketWrite::Attach { .. }));
    assert!(d.effects.hold, "held mail does not join the thread");
}

#[test]
fn issue_20_class_1_an_ambiguous_header_section_outweighs_every_proof() {
    // A valid reply token in the references and a DKIM pass: the header
    // section could still be read two ways, so none of it counts.
    let s = staff_dir();
    let raw = alice_reply(&s, "#severity 1\r\nDone.\r\n");
    let ev = Evidence {
        dkim: Some(crate::dkim::DkimVerdict::Pass {
            domain: "acme.test".into(),
            selector: "s1".into(),
        }),
        auth_results: Some("Authentication-Results from mx.acme.test: dkim=pass".into()),
        ambiguous: Some("header line 7 has a malformed field name \"From \"".into()),
        refused: vec![],
    };
    let d = on_ticket_3(&raw, &s, &ev);
    assert_eq!(d.sender, Sender::UnverifiedStaff);
    assert_eq!(d.proof, None);
    assert!(
        !d.events
            .iter()
            .any(|e| matches!(e, Event::SeverityChanged { .. }))
    );
    assert!(
        d.reasons
            .iter()
            .any(|r| r.contains("could be read two ways")),
        "{:?}",
        d.reasons
    );
}

fn level(key: &str, tokens: f64) -> BucketLevel {
    BucketLevel {
        key: key.into(),
        tokens,
        updated_at: DateTime::parse_from_rfc3339("2026-03-02T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc),
    }
}

#[test]
fn issue_20_class_5_the_cap_on_acknowledgements_holds_them_and_tells_staff_once() {
    let limits = Limits {
        new_ticket_acks: Rate {
            burst: 2,
            per_hour: 0,
        },
        ..Limits::default()
    };
    let new = |buckets: Vec<BucketLevel>| {
        run_with(
            NEW,
            Lookup {
                next_ticket_id: TicketId(5),
                buckets,
                ..Default::default()
            },
            &limits,
            false,
            None,
        )
    };
    // Room in the cap: acknowledged, the cap's bucket charged.
    let d = new(vec![]);
    assert!(d.would_reply);
    assert!(
        d.effects
            .buckets
            .iter()
            .any(|(k, v)| k.name().as_deref() == Some("global:acks") && *v == 1.0),
        "{:?}",
        d.effects.buckets
    );
    // Dry: the ticket opens, no acknowledgement, staff told.
    let d = new(vec![level("global:acks", 0.0)]);
    assert!(matches!(d.ticket, TicketWrite::New { .. }));
    assert!(!d.would_reply);
    assert!(d.effects.acks_capped);
    let told: Vec<_> = d.replies.iter().map(|r| r.template).collect();
    assert_eq!(told, vec!["staff_acks_capped"]);
    assert!(d.events.iter().any(|e| e.kind() == "reply_suppressed"));
    // Still dry, staff told already: nothing more to staff.
    let d = new(vec![
        level("global:acks", 0.0),
        level("global:acks:told", 1.0),
    ]);
    assert!(d.replies.is_empty(), "{:?}", d.replies);
    assert!(d.effects.acks_capped);
    // A follow-up on a ticket is not a new ticket's acknowledgement.
    let d = run_with(
        "From: ann@example.net\r\nSubject: Re: [TKT#3] Disk\r\n\r\nmore\r\n",
        Lookup {
            tagged: Some(ticket(3, "ann@example.net")),
            buckets: vec![level("global:acks", 0.0)],
            ..Default::default()
        },
        &limits,
        false,
        None,
    );
    assert!(d.would_reply);
}

#[test]
fn issue_20_class_5_a_display_name_reaches_templates_cleaned_and_capped() {
    let name = format!("Ann\r\n\r\n#severity 1 {}", "x".repeat(200));
    let raw = format!(
        "From: =?utf-8?b?{}?= <ann@example.net>\r\nSubject: Disk\r\n\r\nHelp\r\n",
        {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(name.as_bytes())
        }
    );
    let d = run(
        &raw,
        Lookup {
            next_ticket_id: TicketId(5),
            ..Default::default()
        },
    );
    let shown = d.replies[0].data["customer"]["name"].as_str().unwrap();
    assert!(shown.starts_with("Ann #severity 1 xx"), "{shown:?}");
    assert!(!shown.contains(['\r', '\n']));
    assert_eq!(shown.chars().count(), crate::text::MAX_DISPLAY_NAME);
}

#[test]
fn issue_20_class_7_unproven_staff_mail_notices_are_bucketed_with_the_held_count() {
    let s = staff_dir();
    let raw = "From: Alice <alice@acme.test>\r\nTo: support@acme.test\r\nSubject: Re: [TKT#3] Disk\r\nMessage-ID: <f1@evil.example>\r\n\r\n#close\r\n";
    let with = |buckets: Vec<BucketLevel>| {
        let mut t = ticket(3, "ann@example.net");
        t.participants.push("alice@acme.test".into());
        with_staff(
            raw,
            Lookup {
                tagged: Some(t),
                buckets,
                ..Default::default()
            },
            &s,
            &Evidence::default(),
        )
    };
    // The bucket is empty: held back, the count goes up, the mail is still
    // kept on the ticket.
    let d = with(vec![
        level("notice:unverified:alice:3", 0.0),
        level("notice:unverified:alice:3:held", 2.0),
    ]);
    assert!(d.replies.is_empty());
    assert!(
        d.events
            .iter()
            .any(|e| matches!(e, Event::Unverified { .. }))
    );
    assert!(
        d.effects.buckets.iter().any(|(k, v)| k.name().as_deref()
            == Some("notice:unverified:alice:3:held")
            && *v == 3.0)
    );
    // A token again: the notice goes and says how many were held back.
    let d = with(vec![
        level("notice:unverified:alice:3", 1.0),
        level("notice:unverified:alice:3:held", 3.0),
    ]);
    assert_eq!(d.replies.len(), 1);
    assert_eq!(d.replies[0].data["held"], 3);
    assert!(
        d.effects.buckets.iter().any(|(k, v)| k.name().as_deref()
            == Some("notice:unverified:alice:3:held")
            && *v == 0.0)
    );
}

#[test]
fn issue_20_class_7_quarantine_notices_are_bucketed_per_mailbox() {
    let raw = "\u{0}\u{0}\u{0}";
    let d = run(
        raw,
        Lookup {
            buckets: vec![level("notice:quarantine:support", 0.0)],
            ..Default::default()
        },
    );
    assert_eq!(d.outcome, Outcome::Quarantined);
    assert!(d.replies.is_empty(), "{:?}", d.replies);
    assert!(
        d.effects.buckets.iter().any(|(k, v)| k.name().as_deref()
            == Some("notice:quarantine:support:held")
            && *v == 1.0)
    );
    let d = run(raw, Lookup::default());
    assert_eq!(d.replies.len(), 1);
    assert_eq!(d.replies[0].template, "staff_quarantine");
    assert_eq!(d.replies[0].data["held"], 0);
}

#[test]
fn issue_23_item_9_a_persons_mail_flagged_as_spam_is_stored_aside_and_never_answered() {
    let flagged = "From: Ann <ann@example.net>\r\nX-Spam-Flag: YES\r\nSubject: Disk failed\r\nMessage-ID: <s1@example.net>\r\n\r\nHelp\r\n";
    let d = run(flagged, Lookup::default());
    assert_eq!(d.outcome, Outcome::Spam);
    assert!(!d.would_reply);
    assert!(d.replies.is_empty(), "{:?}", d.replies);
    assert!(matches!(d.ticket, TicketWrite::None));
    // Even on a ticket the sender is on: no reply, nothing attached.
    let d = run(
        "From: ann@example.net\r\nX-SES-Spam-Verdict: FAIL\r\nSubject: Re: [TKT#3] Disk failed\r\n\r\nStill broken\r\n",
        Lookup {
            tagged: Some(ticket(3, "ann@example.net")),
            ..Default::default()
        },
    );
    assert_eq!(d.outcome, Outcome::Spam);
    assert!(d.replies.is_empty() && matches!(d.ticket, TicketWrite::None));
    // A verdict of "no" changes nothing.
    let d = run(
        "From: Ann <ann@example.net>\r\nX-Spam-Flag: NO\r\nSubject: Disk failed\r\n\r\nHelp\r\n",
        Lookup::default(),
    );
    assert_eq!(d.outcome, Outcome::Processed);
    assert!(d.would_reply);
}
