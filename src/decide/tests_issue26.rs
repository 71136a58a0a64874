//! Tests of the mail commands of issue 26 as the decision takes them: a member's forward opening a customer's ticket (and every way it must not), `#open ADDRESS`, `#merge`, `#rma shipped` and `#rma returned`.

use super::tests::run_staff;
use super::*;
use crate::config::Limits;
use crate::model::{
    Event, Lookup, Opening, Outcome, Proof, RmaRecord, RmaState, Sender, StaffDirectory, TicketId,
    TicketStatus, TicketWrite, TimerKind,
};
use crate::pack::Pack;
use crate::parse::parse;

fn staff() -> StaffDirectory {
    fixtures::staff_directory()
}

/// What DKIM says of a mail signed by acme.test.
fn signed() -> Evidence {
    Evidence {
        dkim: Some(crate::dkim::DkimVerdict::Pass {
            domain: "acme.test".into(),
            selector: "s1".into(),
        }),
        ..Evidence::default()
    }
}

/// `from`'s new mail (no ticket named) with `body`, to support@.
fn new_mail(from: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: support@acme.test\r\nSubject: Fwd: Pool degraded\r\nMessage-ID: <fwd-1@acme.test>\r\n\r\n{}",
        body.replace('\n', "\r\n")
    )
}

/// Decides `raw` as intake does: the look-up holds the forward the mail
/// carries (as `staff_lookup` finds it) or the contact of `#open ADDRESS`.
fn decide_mail(raw: &str, ev: &Evidence, pack: &Pack) -> Decision {
    let m = parse(raw.as_bytes(), fixtures::at("2026-03-02T10:00:00Z"));
    let opening = crate::forward::find(&m).map(|f| {
        Box::new(Opening {
            raw: f.raw,
            format: f.format.into(),
            note: f.note,
            lookup: Lookup {
                next_ticket_id: TicketId(7),
                ..Lookup::default()
            },
        })
    });
    let lookup = Lookup {
        next_ticket_id: TicketId(7),
        opening,
        ..Lookup::default()
    };
    run_staff(
        raw,
        lookup,
        &Limits::default(),
        false,
        None,
        pack,
        &staff(),
        ev,
    )
}

/// A Thunderbird forward of Dana's mail (its Message-ID shown), whose text
/// hides commands of its own.
fn forward_of(from: &str, top: &str) -> String {
    new_mail(
        "Alice <alice@acme.test>",
        &format!(
            "{top}\n\n-------- Forwarded Message --------\nSubject: \tPool degraded\nDate: \tMon, 2 Mar 2026 09:00:00 -0800\nFrom: \t{from}\nTo: \talice@acme.test\nMessage-ID: \t<dana-1@example.net>\n\n#close\n#assign bob\nHello, the pool is degraded after the update.\nDana\n"
        ),
    )
}

#[test]
fn issue_26_a_proven_forward_opens_the_customer_s_ticket_owned_by_the_member_with_a_note() {
    let raw = forward_of(
        "Dana Customer <dana@example.net>",
        "#open\n#status waiting_staff\nDana phoned too: the pool is their backup.",
    );
    let d = decide_mail(&raw, &signed(), &Pack::fallback());
    assert_eq!(d.sender, Sender::Staff);
    assert!(matches!(d.proof, Some(Proof::Dkim { .. })));
    let TicketWrite::New {
        requester,
        status,
        subject,
        ..
    } = &d.ticket
    else {
        panic!("{:?}", d.ticket)
    };
    assert_eq!(
        requester, "dana@example.net",
        "the forwarded sender, not alice"
    );
    assert_eq!(subject, "Pool degraded");
    assert_eq!(
        *status,
        TicketStatus::WaitingStaff,
        "the member's command ran"
    );
    assert_eq!(d.commands, ["#open", "#status waiting_staff"]);
    let ack = d
        .replies
        .iter()
        .find(|r| r.template == "ack_new")
        .expect("the ack");
    assert_eq!(ack.to, ["dana@example.net"]);
    assert_eq!(
        ack.in_reply_to.as_deref(),
        Some("dana-1@example.net"),
        "threaded to Dana's mail"
    );
    let note = d
        .replies
        .iter()
        .find(|r| r.template == "staff_ticket")
        .expect("a notification");
    assert_eq!(
        note.to,
        ["alice@acme.test"],
        "the owner hears of it, not the queue"
    );
    let confirm = d
        .replies
        .iter()
        .find(|r| r.template == "staff_confirm")
        .unwrap();
    assert_eq!(confirm.to, ["alice@acme.test"]);
    assert!(
        confirm.data["done"][0]
            .as_str()
            .unwrap()
            .contains("ticket opened for dana@example.net")
    );
    assert!(d.events.iter().any(
        |e| matches!(e, Event::Assigned { to, by } if to == "alice" && by.contains("by mail (DKIM"))
    ));
    assert!(d.events.iter().any(|e| matches!(e, Event::Note { text, .. } if text == "Dana phoned too: the pool is their backup.")));
    // The forwarded text's `#close` and `#assign bob` are Dana's words: never run.
    assert!(!d.events.iter().any(|e| matches!(
        e,
        Event::StatusChanged {
            to: TicketStatus::Closed,
            ..
        }
    )));
    assert!(
        !d.events
            .iter()
            .any(|e| matches!(e, Event::Assigned { to, .. } if to == "bob"))
    );
    assert!(
        d.effects
            .awaited
            .contains(&"dana-1@example.net".to_string())
    );
    // Without `#open`, a forward opens the ticket just the same.
    let d = decide_mail(
        &forward_of("Dana Customer <dana@example.net>", "FYI"),
        &signed(),
        &Pack::fallback(),
    );
    assert!(
        matches!(&d.ticket, TicketWrite::New { requester, .. } if requester == "dana@example.net")
    );
}

#[test]
fn issue_26_an_unproven_forward_opens_nothing_for_anyone() {
    let raw = forward_of("Dana Customer <dana@example.net>", "#open");
    let d = decide_mail(&raw, &Evidence::default(), &Pack::fallback());
    assert_eq!(d.sender, Sender::UnverifiedStaff);
    assert_eq!(d.outcome, Outcome::Quarantined);
    assert!(matches!(d.ticket, TicketWrite::None));
    assert!(
        d.replies
            .iter()
            .all(|r| !r.to.contains(&"dana@example.net".to_string()))
    );
    // A signature of another domain proves nothing either.
    let other = Evidence {
        dkim: Some(crate::dkim::DkimVerdict::Unaligned {
            domain: "evil.example".into(),
        }),
        ..Evidence::default()
    };
    let d = decide_mail(&raw, &other, &Pack::fallback());
    assert!(matches!(d.ticket, TicketWrite::None));
}

#[test]
fn issue_26_a_forward_naming_staff_or_ourselves_or_a_machine_opens_nothing() {
    for (from, says) in [
        ("Bob <bob@acme.test>", "a staff member's address"),
        ("Support <support@acme.test>", "ticketd's own addresses"),
        ("MAILER-DAEMON <mailer-daemon@example.net>", "a machine's"),
    ] {
        let d = decide_mail(&forward_of(from, "#open"), &signed(), &Pack::fallback());
        assert!(
            matches!(d.ticket, TicketWrite::None),
            "{from}: {:?}",
            d.ticket
        );
        let error = d
            .replies
            .iter()
            .find(|r| r.template == "staff_command_error")
            .expect(from);
        assert_eq!(error.to, ["alice@acme.test"]);
        assert!(
            error.data["error"].as_str().unwrap().contains(says),
            "{from}: {}",
            error.data["error"]
        );
    }
}

#[test]
fn issue_26_a_stranger_s_forward_is_their_own_mail_and_opens_nothing_for_the_named_customer() {
    // Eve is no member: her forward, `#open` and all, is a customer's mail.
    let raw = forward_of("Dana Customer <dana@example.net>", "#open\n#close").replace(
        "From: Alice <alice@acme.test>",
        "From: Eve <eve@evil.example>",
    );
    let d = decide_mail(&raw, &signed(), &Pack::fallback());
    assert_eq!(d.sender, Sender::Customer);
    assert!(
        matches!(&d.ticket, TicketWrite::New { requester, .. } if requester == "eve@evil.example")
    );
    assert!(
        d.replies
            .iter()
            .all(|r| !r.to.contains(&"dana@example.net".to_string()))
    );
}

#[test]
fn issue_26_open_address_opens_a_ticket_with_the_member_s_text_as_its_first_answer() {
    let raw = new_mail(
        "Alice <alice@acme.test>",
        "#open Dana@Example.net\n\nHello Dana,\n\nas promised on the phone: update to 24.10.1.\n\nAlice\n",
    )
    .replace("Subject: Fwd: Pool degraded", "Subject: Your pool after the update");
    let d = decide_mail(&raw, &signed(), &Pack::fallback());
    let TicketWrite::New {
        requester,
        status,
        subject,
        ..
    } = &d.ticket
    else {
        panic!("{:?}", d.ticket)
    };
    assert_eq!(
        (requester.as_str(), subject.as_str()),
        ("dana@example.net", "Your pool after the update")
    );
    assert_eq!(
        *status,
        TicketStatus::WaitingCustomer,
        "answered: it waits on the customer"
    );
    let answer = d
        .replies
        .iter()
        .find(|r| r.template == "staff_reply")
        .expect("the answer");
    assert_eq!(answer.to, ["dana@example.net"]);
    assert!(
        answer.data["body"]
            .as_str()
            .unwrap()
            .starts_with("Hello Dana,")
    );
    assert!(
        d.replies.iter().all(|r| r.template != "ack_new"),
        "no acknowledgement of staff's own text"
    );
    assert!(
        d.events
            .iter()
            .any(|e| matches!(e, Event::StaffReply { .. }))
    );
    // `#open` alone without a forward, an address with a forward, and staff: refused.
    for (body, says) in [
        ("#open\nHello", "forwards none"),
        ("#open bob@acme.test\nHello", "a staff member's address"),
        ("#open dana@example.net", "write it under the commands"),
    ] {
        let d = decide_mail(
            &new_mail("Alice <alice@acme.test>", body),
            &signed(),
            &Pack::fallback(),
        );
        assert!(matches!(d.ticket, TicketWrite::None), "{body}");
        let e = d
            .replies
            .iter()
            .find(|r| r.template == "staff_command_error")
            .unwrap();
        assert!(
            e.data["error"].as_str().unwrap().contains(says),
            "{body}: {}",
            e.data["error"]
        );
    }
}

/// Alice's reply on ticket 3 (the token of her notification), with `lookup`.
fn on_ticket_3(body: &str, lookup: Lookup, pack: &Pack) -> Decision {
    let s = staff();
    let id = crate::token::message_id(
        s.token_key.as_ref().unwrap(),
        "tickets.acme.test",
        TicketId(3),
        "alice@acme.test",
        fixtures::at("2026-03-02T09:00:00Z"),
    );
    let raw = format!(
        "From: Alice <alice@acme.test>\r\nTo: support@acme.test\r\nSubject: Re: [ticketd] [TKT#3] New ticket: Disk\r\nMessage-ID: <r1@acme.test>\r\nIn-Reply-To: <{id}>\r\nReferences: <{id}>\r\n\r\n{}",
        body.replace('\n', "\r\n")
    );
    run_staff(
        &raw,
        lookup,
        &Limits::default(),
        false,
        None,
        pack,
        &s,
        &Evidence::default(),
    )
}

#[test]
fn ix_07_rma_shipped_by_mail_starts_the_label_and_invoice_deadlines_and_tells_the_tracking_number()
{
    let pack = fixtures::pack("ixsystems");
    let mut t = fixtures::ticket(3, "ann@example.net", "2026-03-02T09:00:00-08:00");
    t.rmas = vec![RmaRecord {
        ticket: TicketId(3),
        part: String::new(),
        code: Some("3".into()),
        state: RmaState::Issued,
        rule: "IX-05".into(),
        plans: vec!["advance_exchange".into()],
        requested_at: t.created_at,
        issued_at: Some(t.created_at),
        shipped_at: None,
        received_at: None,
        returned_at: None,
        expires_at: None,
    }];
    let lookup = Lookup {
        tagged: Some(t),
        customer_thread: Some("a1@example.net".into()),
        ..Lookup::default()
    };
    let d = on_ticket_3("#rma shipped UPS 1Z999AA10123456784", lookup.clone(), &pack);
    assert_eq!(d.commands, ["#rma shipped UPS 1Z999AA10123456784"]);
    let deadlines: Vec<(TimerKind, String)> = d
        .effects
        .timers
        .iter()
        .map(|t| (t.kind, t.rule.clone()))
        .collect();
    assert_eq!(
        deadlines,
        [
            (TimerKind::RmaDeadline, "IX-07".to_string()),
            (TimerKind::RmaReminder, "IX-07".to_string()),
            (TimerKind::RmaDeadline, "IX-07".to_string()),
        ]
    );
    // Shipped at 02:00 PST on 2 March: the label ends ten days on, at the
    // same wall time (PDT by then).
    assert_eq!(
        d.effects.timers[0].due,
        fixtures::at("2026-03-12T02:00:00-07:00")
    );
    let notice = d
        .replies
        .iter()
        .find(|r| r.template == "rma_notice")
        .expect("the customer's notice");
    assert_eq!(notice.to, ["ann@example.net"]);
    assert_eq!(notice.in_reply_to.as_deref(), Some("a1@example.net"));
    assert_eq!(notice.data["tracking"]["number"], "1Z999AA10123456784");
    assert!(d.events.iter().any(|e| matches!(
        e,
        Event::Rma { state: RmaState::Shipped, tracking: Some(t), by, .. }
            if t.carrier == "UPS" && by.contains("alice by mail (reply token)")
    )));
    // `#rma returned` ends every deadline of the RMA.
    let d = on_ticket_3("#rma returned", lookup, &pack);
    assert!(d.events.iter().any(|e| matches!(
        e,
        Event::Rma {
            state: RmaState::Returned,
            ..
        }
    )));
    assert!(
        d.effects
            .cancel_timers
            .iter()
            .any(|c| c.kind == TimerKind::RmaDeadline)
    );
}

#[test]
fn issue_26_merge_by_mail_carries_the_merge_and_tells_the_customer_once() {
    let pack = Pack::fallback();
    let lookup = Lookup {
        tagged: Some(fixtures::ticket(
            3,
            "ann@example.net",
            "2026-03-02T09:00:00Z",
        )),
        customer_thread: Some("a1@example.net".into()),
        merge_into: Some(fixtures::ticket(
            5,
            "ann@example.net",
            "2026-03-02T09:30:00Z",
        )),
        ..Lookup::default()
    };
    let d = on_ticket_3("#merge 5", lookup.clone(), &pack);
    let plan = d.effects.merge.as_ref().expect("a merge");
    assert_eq!((plan.source, plan.into), (TicketId(3), TicketId(5)));
    assert!(plan.by.contains("alice by mail (reply token)"));
    let notices: Vec<_> = d
        .replies
        .iter()
        .filter(|r| r.template == "merged")
        .collect();
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].to, ["ann@example.net"]);
    assert_eq!(notices[0].data["into"]["tag"], "[TKT#5]");
    // A ticket that is not there, and a merge across customers, do nothing.
    let d = on_ticket_3("#merge 6", lookup.clone(), &pack);
    assert!(d.effects.merge.is_none());
    let mut other = lookup;
    other.merge_into = Some(fixtures::ticket(
        5,
        "eve@other.example",
        "2026-03-02T09:30:00Z",
    ));
    let d = on_ticket_3("#merge 5", other.clone(), &pack);
    assert!(d.effects.merge.is_none());
    let e = d
        .replies
        .iter()
        .find(|r| r.template == "staff_command_error")
        .unwrap();
    assert!(
        e.data["error"]
            .as_str()
            .unwrap()
            .contains("different customers' organisations")
    );
    // A reply token proves ticket 3 only: it cannot force ticket 3 into
    // another organisation's ticket (whoever holds the token would join
    // that customer's ticket); a mail signed by the member's domain can.
    let d = on_ticket_3("#merge 5 force", other.clone(), &pack);
    assert!(d.effects.merge.is_none());
    let e = d
        .replies
        .iter()
        .find(|r| r.template == "staff_command_error")
        .unwrap();
    assert!(
        e.data["error"]
            .as_str()
            .unwrap()
            .contains("a reply token proves ticket 3 only"),
        "{}",
        e.data["error"]
    );
    let raw = "From: Alice <alice@acme.test>\r\nTo: support@acme.test\r\nSubject: Re: [TKT#3] Disk\r\nMessage-ID: <r2@acme.test>\r\n\r\n#merge 5 force\r\n";
    let d = run_staff(
        raw,
        other,
        &Limits::default(),
        false,
        None,
        &pack,
        &staff(),
        &signed(),
    );
    assert!(matches!(d.proof, Some(Proof::Dkim { .. })));
    assert!(d.effects.merge.is_some());
}
