//! Tests of the store: migrations, the message transaction, the outbox queue and the projections.

use super::schema::MIGRATIONS;
use super::*;
use crate::contracts::{Contract, MatchedBy};
use crate::model::*;
use anyhow::Result;
use chrono::NaiveDate;
use chrono::{DateTime, Utc};
use rusqlite::Connection;

/// Writes one message the way intake does: open it, write its ticket,
/// `render` the mail for that ticket, finish with the rest.
trait ApplyWith {
    fn apply_with(
        &mut self,
        msg: &MessageRow<'_>,
        ticket: &TicketWrite,
        events: &[Event],
        effects: &SideEffects,
        now: DateTime<Utc>,
        render: impl FnOnce(Option<TicketId>) -> anyhow::Result<Vec<NewMail>>,
    ) -> anyhow::Result<Applied>;
}

impl ApplyWith for Store {
    fn apply_with(
        &mut self,
        msg: &MessageRow<'_>,
        ticket: &TicketWrite,
        events: &[Event],
        effects: &SideEffects,
        now: DateTime<Utc>,
        render: impl FnOnce(Option<TicketId>) -> anyhow::Result<Vec<NewMail>>,
    ) -> anyhow::Result<Applied> {
        let mut tx = self.begin_message(now)?;
        let t = tx.write_ticket(msg.origin.mailbox, ticket)?;
        let mails = render(t)?;
        tx.finish(msg, events, effects, &mails)
    }
}

fn created(from: &str) -> Event {
    Event::Created {
        from: from.into(),
        mailbox: "support".into(),
        list: false,
    }
}

fn now() -> DateTime<Utc> {
    parse_ts("2026-03-02T10:00:00Z").unwrap()
}

fn row<'a>(uid: u32, raw: &'a [u8]) -> MessageRow<'a> {
    MessageRow {
        origin: Origin {
            mailbox: "support",
            uidvalidity: 7,
            uid,
        },
        raw,
        message_id: Some("m1@example.net"),
        sender: Some("Ann@Example.net"),
        content_hash: "h1",
        arrival: now(),
        class: "human",
        outcome: Outcome::Processed,
        reason: None,
        reply_text: Some("new text"),
    }
}

fn migrations_run_once_and_events_are_append_only(mut s: Store) {
    assert_eq!(s.schema_version().unwrap(), s.known_schema());
    s.migrate().unwrap();
    let applied = s
        .apply_with(
            &row(1, b"x"),
            &TicketWrite::New {
                status: TicketStatus::Open,
                subject: "Disk".into(),
                language: "en".into(),
                requester: "ann@example.net".into(),
                requester_name: None,
            },
            &[created("new ticket")],
            &SideEffects::default(),
            now(),
            |_| Ok(vec![]),
        )
        .unwrap();
    let t = applied.ticket_id.unwrap();
    assert!(s.conn.execute("DELETE FROM ticket_events", ()).is_err());
    assert!(
        s.conn
            .execute("UPDATE ticket_events SET kind = 'x'", ())
            .is_err()
    );
    assert_eq!(s.ticket_events(t).unwrap().len(), 1);
    // The whole message and its new text are both kept.
    let (raw, reply): (Vec<u8>, Option<String>) = s
        .conn
        .query_row(
            "SELECT raw, reply_text FROM messages WHERE ticket_id = ?1",
            [t.0],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(raw, b"x");
    assert_eq!(reply.as_deref(), Some("new text"));
}

fn a_failing_render_writes_nothing(mut s: Store) {
    let r = s.apply_with(
        &row(1, b"x"),
        &TicketWrite::New {
            status: TicketStatus::Open,
            subject: "Disk".into(),
            language: "en".into(),
            requester: "ann@example.net".into(),
            requester_name: None,
        },
        &[],
        &SideEffects::default(),
        now(),
        |_| anyhow::bail!("template broke"),
    );
    assert!(r.is_err());
    assert!(s.tickets().unwrap().is_empty());
    assert!(s.mailbox_state("support").unwrap().is_none());
    assert!(s.known_outcomes("support", 7, &[1]).unwrap().is_empty());
}

fn new_ticket(who: &str) -> TicketWrite {
    TicketWrite::New {
        status: TicketStatus::Open,
        subject: "Disk".into(),
        language: "en".into(),
        requester: who.into(),
        requester_name: None,
    }
}

fn reply(id: &str) -> NewMail {
    NewMail {
        kind: "ack".into(),
        message_id: id.into(),
        mail_from: "support@vendor.test".into(),
        rcpt_to: vec!["ann@example.net".into()],
        subject: "Re: Disk".into(),
        raw: b"reply".to_vec(),
    }
}

fn a_message_that_fails_in_a_batch_is_rolled_back_alone_and_the_rest_commit(mut s: Store) {
    let results = s
        .in_batch(|st| {
            let a = st.apply_with(
                &row(1, b"one"),
                &new_ticket("ann@example.net"),
                &[created("a")],
                &SideEffects::default(),
                now(),
                |_| Ok(vec![reply("r1@t")]),
            );
            // Fails after its ticket, message and event rows were written.
            let b = st.apply_with(
                &row(2, b"two"),
                &new_ticket("bob@example.net"),
                &[created("b")],
                &SideEffects::default(),
                now(),
                |_| anyhow::bail!("template broke"),
            );
            let c = st.apply_with(
                &row(3, b"three"),
                &new_ticket("cy@example.net"),
                &[created("c")],
                &SideEffects::default(),
                now(),
                |_| Ok(vec![reply("r3@t")]),
            );
            Ok((a.is_ok(), b.is_ok(), c.is_ok()))
        })
        .unwrap();
    assert_eq!(results, (true, false, true));
    let known: Vec<u32> = s
        .known_outcomes("support", 7, &[1, 2, 3])
        .unwrap()
        .into_iter()
        .map(|(u, _)| u)
        .collect();
    assert_eq!(known, vec![1, 3], "the failed message left nothing behind");
    let requesters: Vec<String> = s
        .tickets()
        .unwrap()
        .into_iter()
        .map(|t| t.requester)
        .collect();
    assert_eq!(requesters, vec!["ann@example.net", "cy@example.net"]);
    assert_eq!(s.outbox(None).unwrap().len(), 2);
    assert_eq!(s.mailbox_state("support").unwrap().unwrap().last_uid, 3);
    // The failed message can be stored afterwards (as the quarantine path does).
    s.apply_with(
        &row(2, b"two"),
        &TicketWrite::None,
        &[],
        &SideEffects::default(),
        now(),
        |_| Ok(vec![]),
    )
    .unwrap();
    assert_eq!(s.known_outcomes("support", 7, &[2]).unwrap().len(), 1);
}

/// The store takes a batch again after one that failed: its transaction was
/// closed.
fn writes_again(s: &mut Store) {
    s.in_batch(|st| {
        st.apply_with(
            &row(1, b"one"),
            &TicketWrite::None,
            &[],
            &SideEffects::default(),
            now(),
            |_| Ok(vec![]),
        )
    })
    .unwrap();
    assert_eq!(s.known_outcomes("support", 7, &[1]).unwrap().len(), 1);
}

fn a_batch_that_fails_writes_nothing_of_any_message(mut s: Store) {
    let r: Result<()> = s.in_batch(|st| {
        st.apply_with(
            &row(1, b"one"),
            &new_ticket("ann@example.net"),
            &[],
            &SideEffects::default(),
            now(),
            |_| Ok(vec![reply("r1@t")]),
        )?;
        anyhow::bail!("database went away")
    });
    assert!(r.is_err());
    assert!(s.tickets().unwrap().is_empty());
    assert!(s.outbox(None).unwrap().is_empty());
    assert!(s.mailbox_state("support").unwrap().is_none());
    writes_again(&mut s);
}

fn issue_24_a_batch_that_panics_writes_nothing_and_leaves_no_transaction_open(mut s: Store) {
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _: Result<()> = s.in_batch(|st| {
            st.apply_with(
                &row(1, b"one"),
                &new_ticket("ann@example.net"),
                &[],
                &SideEffects::default(),
                now(),
                |_| Ok(vec![reply("r1@t")]),
            )?;
            panic!("a template helper panicked");
        });
    }));
    assert!(panicked.is_err(), "the panic goes on to the caller");
    assert!(s.conn.is_autocommit(), "no transaction left open");
    assert!(s.tickets().unwrap().is_empty());
    assert!(s.outbox(None).unwrap().is_empty());
    writes_again(&mut s);
}

fn claims_are_counted_before_sending_and_an_outcome_resets_them(mut s: Store) {
    let a = s.queue(None, &reply("a@t"), now()).unwrap();
    let b = s.queue(None, &reply("b@t"), now()).unwrap();
    let c = s.queue(None, &reply("c@t"), now()).unwrap();
    assert_eq!(s.begin_claims(&[a, b, c]).unwrap(), vec![1, 1, 1]);
    let later = now() + chrono::Duration::seconds(30);
    s.record_sends(
        &[a],
        &[
            (b, later, "451 try later".into(), true),
            (c, later, "greeting timed out".into(), false),
        ],
        now(),
    )
    .unwrap();
    let rows = s.outbox(None).unwrap();
    assert_eq!(rows[0].status, "sent");
    assert_eq!(rows[1].status, "queued");
    assert_eq!(rows[1].last_error.as_deref(), Some("451 try later"));
    let counts: Vec<(u32, u32, u32)> = rows
        .iter()
        .map(|r| (r.attempts, r.deferrals, r.claims))
        .collect();
    assert_eq!(counts, vec![(1, 0, 0), (1, 0, 0), (0, 1, 0)]);
    assert!(s.due_outbox(now(), 10).unwrap().is_empty(), "b and c wait");
    assert_eq!(s.due_outbox(later, 10).unwrap().len(), 2);
    assert_eq!(s.begin_claims(&[b]).unwrap(), vec![1]);
    assert_eq!(s.begin_claims(&[b]).unwrap(), vec![2], "no outcome between");
}

fn a_sent_mail_replayed_from_the_journal_is_recorded_once(mut s: Store) {
    let a = s.queue(None, &reply("a@t"), now()).unwrap();
    s.begin_claims(&[a]).unwrap();
    s.record_sends(&[a], &[], now()).unwrap();
    // The same id again (the journal replayed after a crash that came after
    // the chunk was recorded) changes nothing.
    s.record_sends(&[a], &[], now()).unwrap();
    let row = &s.outbox(None).unwrap()[0];
    assert_eq!(
        (row.status.as_str(), row.attempts, row.claims),
        ("sent", 1, 0)
    );
}

fn an_outbox_step_records_and_claims_in_one_transaction_skipping_mail_in_flight(mut s: Store) {
    let a = s.queue(None, &reply("a@t"), now()).unwrap();
    let b = s.queue(None, &reply("b@t"), now()).unwrap();
    let c = s.queue(None, &reply("c@t"), now()).unwrap();
    // `a` is in flight: the next claim passes over it without reading it.
    let due = s.due_outbox_except(now(), 1, &[a]).unwrap();
    assert_eq!(due.iter().map(|r| r.id).collect::<Vec<_>>(), vec![b]);
    // A step that fails writes nothing, the outcomes of the last chunk
    // included: they are written again by the next step.
    let r: Result<()> = s.in_batch(|st| {
        st.record_sends(&[a], &[], now())?;
        st.begin_claims(&[b])?;
        Err(anyhow::anyhow!("disk full"))
    });
    assert!(r.is_err());
    let rows = s.outbox(None).unwrap();
    assert!(
        rows.iter()
            .all(|r| r.status == "queued" && r.attempts == 0 && r.claims == 0)
    );
    // A step that works writes both.
    s.in_batch(|st| {
        st.record_sends(&[a], &[], now())?;
        st.mark_failed(c, "550 no such user", None, true, now())?;
        st.begin_claims(&[b]).map(|_| ())
    })
    .unwrap();
    let rows = s.outbox(None).unwrap();
    let status: Vec<(&str, u32, u32)> = rows
        .iter()
        .map(|r| (r.status.as_str(), r.attempts, r.claims))
        .collect();
    assert_eq!(
        status,
        vec![("sent", 1, 0), ("queued", 0, 1), ("failed", 1, 0)]
    );
}

fn duplicate_by_message_id_needs_the_same_sender(mut s: Store) {
    s.apply_with(
        &row(1, b"x"),
        &TicketWrite::None,
        &[],
        &SideEffects::default(),
        now(),
        |_| Ok(vec![]),
    )
    .unwrap();
    assert!(
        s.duplicate(Some("m1@example.net"), Some("ann@example.net"), "zz")
            .unwrap()
            .is_some()
    );
    assert!(
        s.duplicate(Some("m1@example.net"), Some("eve@example.org"), "zz")
            .unwrap()
            .is_none()
    );
    assert!(s.duplicate(None, None, "h1").unwrap().is_some());
    assert_eq!(s.mailbox_state("support").unwrap().unwrap().last_uid, 1);
}

fn issue_20_class_3_a_bounce_returns_only_mail_in_the_outbox(mut s: Store) {
    // The customer's mail m1 opens ticket 1; its acknowledgement r1 is ours.
    s.apply_with(
        &row(1, b"x"),
        &new_ticket("ann@example.net"),
        &[created("ann@example.net")],
        &SideEffects::default(),
        now(),
        |_| Ok(vec![reply("r1@tickets.vendor.test")]),
    )
    .unwrap();
    let bounce = |id: &str| crate::dsn::Bounce {
        status: "5.1.1".into(),
        permanent: true,
        recipients: vec!["ann@example.net".into()],
        original_message_id: Some(id.into()),
        diagnostic: None,
    };
    let look = |s: &Store, id: &str| {
        s.lookup(
            None,
            &[],
            None,
            Some("mailer-daemon@mx.test"),
            "h9",
            Some(&bounce(id)),
        )
        .unwrap()
    };
    // A report naming the customer's own (inbound) Message-ID: nothing of ours.
    let forged = look(&s, "m1@example.net");
    assert!(forged.bounced.is_none());
    assert!(forged.bounced_recipients.is_empty());
    // A report returning our acknowledgement: its ticket and recipients.
    let real = look(&s, "r1@tickets.vendor.test");
    assert_eq!(real.bounced.map(|t| t.id), Some(TicketId(1)));
    assert_eq!(real.bounced_recipients, vec!["ann@example.net"]);
}

fn contract(serial: &str, email: &str, tier: &str) -> Contract {
    Contract {
        serial: serial.into(),
        email: email.into(),
        company: "Acme".into(),
        tax_id: "ES B12345678".into(),
        tier: tier.into(),
        model: "TS-453D".into(),
        purchased_on: NaiveDate::from_ymd_opt(2025, 3, 1).unwrap(),
        plans: vec!["onsite".into()],
        ..Contract::default()
    }
}

fn reimporting_contracts_updates_in_place(mut s: Store) {
    let first = vec![
        contract("Q23A0001", "ann@acme.test", "gold"),
        contract("Q23A0002", "bob@acme.test", "silver"),
    ];
    let st = s.import_contracts(&first).unwrap();
    assert_eq!((st.inserted, st.updated, st.unchanged), (2, 0, 0));
    let second = vec![
        contract("q23a0001", "ANN@acme.test", "silver"),
        contract("Q23A0002", "bob@acme.test", "silver"),
        contract("Q23A0003", "cy@acme.test", "bronze"),
    ];
    let st = s.import_contracts(&second).unwrap();
    assert_eq!((st.inserted, st.updated, st.unchanged), (1, 1, 1));
    assert_eq!(s.contract_count().unwrap(), 3);
    let m = s
        .find_contract(&["Q23A0001".into()], "", &[])
        .unwrap()
        .unwrap();
    assert_eq!(m.by, MatchedBy::Serial);
    assert_eq!(
        (m.contract.serial.as_str(), m.contract.tier.as_str()),
        ("q23a0001", "silver")
    );
    assert_eq!(m.contract.email, "ann@acme.test");
    assert_eq!(m.contract.plans, vec!["onsite"]);
    // The same file again changes nothing.
    let st = s.import_contracts(&second).unwrap();
    assert_eq!((st.inserted, st.updated, st.unchanged), (0, 0, 3));
}

fn a_failed_contract_import_leaves_the_table_unchanged(mut s: Store) {
    s.import_contracts(&[contract("Q23A0001", "ann@acme.test", "gold")])
        .unwrap();
    // The first two rows would insert and update; the third repeats a serial.
    let bad = vec![
        contract("Q23A0009", "zed@acme.test", "gold"),
        contract("Q23A0001", "ann@acme.test", "bronze"),
        contract("Q23A0009", "zed@acme.test", "gold"),
    ];
    let err = s.import_contracts(&bad).unwrap_err();
    assert!(format!("{err:#}").contains("appears twice"), "{err:#}");
    assert_eq!(s.contract_count().unwrap(), 1);
    let m = s.find_contract(&[], "ann@acme.test", &[]).unwrap().unwrap();
    assert_eq!(m.contract.tier, "gold");
    assert!(
        s.import_contracts(&[contract(" ", "x@y.z", "gold")])
            .is_err()
    );
    assert_eq!(s.contract_count().unwrap(), 1);
}

fn find_contract_matches_as_the_contract_book_does(mut s: Store) {
    use crate::contracts::ContractBook;
    let mut list = vec![
        contract("Q23A0001", "ann@acme.test", "gold"),
        contract("Q23A0002", "ann@acme.test", "gold"),
        contract("AV7-000123", "", "silver"),
    ];
    list[1].purchased_on = NaiveDate::from_ymd_opt(2025, 6, 1).unwrap();
    list[2].tax_id = "B87654321".into();
    s.import_contracts(&list).unwrap();
    let book = ContractBook::new(list);
    let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let queries = [
        (v(&["zz", "q23a0001"]), "ann@acme.test", v(&[])),
        (v(&["zz"]), "Ann <ANN@Acme.test>", v(&["B87654321"])),
        (v(&[]), "nobody@x.test", v(&["nope", "ES-B87654321"])),
        (v(&[]), "nobody@x.test", v(&["ES B12345678"])),
        (v(&["nothing"]), "", v(&[""])),
    ];
    let mut found = 0;
    for (serials, sender, tax) in &queries {
        let a = book.find(serials, sender, tax);
        let b = s.find_contract(serials, sender, tax).unwrap();
        assert_eq!(a, b, "{serials:?} {sender} {tax:?}");
        found += usize::from(a.is_some());
    }
    assert_eq!(found, 4);
}

fn marking_a_contact_undeliverable_fails_its_queued_mail_and_buckets_are_kept(mut s: Store) {
    let mail = |id: &str| NewMail {
        kind: "ack_new".into(),
        message_id: id.into(),
        mail_from: "support@vendor.test".into(),
        rcpt_to: vec!["Ann@example.net".into()],
        subject: "Re: Disk".into(),
        raw: b"x".to_vec(),
    };
    let first = s
        .apply_with(
            &row(1, b"x"),
            &TicketWrite::New {
                subject: "Disk".into(),
                status: TicketStatus::Open,
                language: "en".into(),
                requester: "ann@example.net".into(),
                requester_name: None,
            },
            &[],
            &SideEffects {
                buckets: vec![
                    (BucketKey::Recipient("Ann@example.net".into()), 4.0),
                    (BucketKey::NewTicket, 4.0),
                ],
                undeliverable: vec![],
                timers: vec![],
                cancel_timers: vec![],
                timer_updates: vec![],
                hold: false,
                acks_capped: false,
                awaited: vec![],
                awaited_people: vec![],
                merge: None,
            },
            now(),
            |_| Ok(vec![mail("m-out-1@t")]),
        )
        .unwrap();
    let t = first.ticket_id.unwrap();
    let levels = s
        .buckets(&["rcpt:ann@example.net".into(), format!("ticket:{t}")])
        .unwrap();
    assert_eq!(levels.len(), 2);
    assert_eq!(levels[0].tokens, 4.0);
    let mut bounce = row(2, b"y");
    bounce.message_id = Some("b1@mx");
    bounce.content_hash = "h2";
    s.apply_with(
        &bounce,
        &TicketWrite::Attach { id: t },
        &[Event::Bounce {
            text: "Status 5.1.1".into(),
        }],
        &SideEffects {
            buckets: vec![],
            undeliverable: vec![Undeliverable {
                address: "ann@example.net".into(),
                reason: "Status 5.1.1".into(),
            }],
            timers: vec![],
            cancel_timers: vec![],
            timer_updates: vec![],
            hold: false,
            acks_capped: false,
            awaited: vec![],
            awaited_people: vec![],
            merge: None,
        },
        now(),
        |_| Ok(vec![]),
    )
    .unwrap();
    let c = s.contact("ann@example.net").unwrap().unwrap();
    assert!(c.undeliverable);
    assert_eq!(c.undeliverable_reason.as_deref(), Some("Status 5.1.1"));
    assert_eq!(
        s.undeliverable_among(&["bob@example.net".into(), "ANN@example.net".into()])
            .unwrap(),
        vec!["ANN@example.net".to_string()]
    );
    let out = s.outbox(None).unwrap();
    assert_eq!(out[0].status, "failed");
    assert!(
        out[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("undeliverable")
    );
    assert!(
        s.ticket_events(t)
            .unwrap()
            .iter()
            .any(|(k, _)| k == "send_skipped")
    );
}

/// A store as the first `version` migrations left it, holding `rows`.
fn store_of_migration(version: usize, rows: &str) -> Store {
    let conn = Connection::open_in_memory().unwrap();
    for m in &MIGRATIONS[..version] {
        conn.execute_batch(m).unwrap();
    }
    conn.pragma_update(None, "user_version", version as i64)
        .unwrap();
    conn.execute_batch(rows).unwrap();
    Store {
        conn: super::db::Conn::Sqlite(conn),
        node: None,
    }
}

#[test]
fn a_database_of_schema_5_migrates_in_place_with_its_facts_quota_uses_and_states() {
    // A database as the release before the projections left it: facts and
    // quota uses only inside the events' JSON, instants with local offsets.
    let mut s = store_of_migration(
        5,
        r#"
INSERT INTO contacts (address, created_at) VALUES ('ann@example.net', '2026-03-02T10:00:00.000000Z');
INSERT INTO tickets (subject, status, requester_id, mailbox, language, created_at, updated_at)
    VALUES ('Disk', 'waiting_customer', 1, 'support', 'en', '2026-03-02T10:00:00.000000Z', '2026-03-02T10:00:00.000000Z');
INSERT INTO tickets (subject, status, requester_id, mailbox, language, created_at, updated_at)
    VALUES ('Fan', 'open', 1, 'support', 'en', '2026-03-02T10:00:00.000000Z', '2026-03-02T10:00:00.000000Z');
INSERT INTO messages (mailbox, uidvalidity, uid, content_hash, arrival, size, raw, class, outcome, ticket_id, stored_at)
    VALUES ('support', 7, 1, 'h1', '2026-03-02T10:00:00.000000Z', 1, x'78', 'human', 'processed', 1, '2026-03-02T10:00:00.000000Z');
INSERT INTO ticket_events (ticket_id, at, kind, message_row, detail) VALUES
    (1, '2026-03-02T10:00:00.000000Z', 'policy', 1,
     '{"pack":"qnap","facts":["serial","invoice"],"clock_starts_at":"2026-03-02T06:00:00-08:00"}'),
    (1, '2026-03-02T10:00:00.000000Z', 'quota', 1,
     '{"id":"qn09","rule":"QN-09","contract":"Q1","period_start":"2026-01-01","limit":5,"used":0,"charged":true,"exhausted":false,"remaining":4}'),
    (1, '2026-03-02T10:00:00.000000Z', 'staff', 1, 'QN-11: plan missing'),
    (1, '2026-03-03T10:00:00.000000Z', 'policy', NULL,
     '{"pack":"qnap","facts":["serial","model"],"clock_starts_at":"2026-03-03T06:00:00-08:00"}'),
    (2, '2026-03-03T10:00:00.000000Z', 'quota', NULL,
     '{"id":"qn09","rule":"QN-09","contract":"Q1","period_start":"2026-01-01","limit":5,"used":1,"charged":false,"exhausted":false,"remaining":4}'),
    (2, '2026-03-03T10:00:00.000000Z', 'message', NULL, 'follow-up from ann@example.net');
"#,
    );
    s.migrate().unwrap();
    assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len());

    let t = s.ticket(TicketId(1)).unwrap().unwrap();
    assert_eq!(t.facts, ["serial", "invoice", "model"]);
    assert_eq!(t.staff_notes, ["QN-11: plan missing"]);
    assert_eq!(t.status, TicketStatus::WaitingCustomer);
    assert_eq!(s.ticket(TicketId(2)).unwrap().unwrap().facts.len(), 0);
    let jan = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    assert_eq!(s.quota_used("qn09", "Q1", jan).unwrap(), 1);
    // The rebuilt table keeps its numbering, its references and gains its CHECK.
    assert_eq!(s.next_ticket_id().unwrap(), TicketId(3));
    assert_eq!(s.ticket_events(TicketId(1)).unwrap().len(), 4);
    let bad = s
        .conn
        .execute("UPDATE tickets SET status = 'pending' WHERE id = 1", ());
    assert!(bad.is_err(), "a status outside the four states is refused");
    let fk: i64 = s
        .conn
        .query_row("PRAGMA foreign_keys", (), |r| r.get(0))
        .unwrap();
    assert_eq!(fk, 1, "foreign keys are on again after the migration");
    let orphan = s.conn.execute(
        "INSERT INTO ticket_facts (ticket_id, fact) VALUES (99, 'serial')",
        (),
    );
    assert!(orphan.is_err(), "references are enforced");
}

fn facts_and_quota_uses_are_written_with_their_events(mut s: Store) {
    let policy = |facts: &[&str]| {
        Event::Policy(PolicyRecord {
            pack: "qnap".into(),
            rules: vec![],
            tier: "standard".into(),
            severity: 3,
            business_open: true,
            facts: facts.iter().map(|f| f.to_string()).collect(),
            missing: vec![],
            clock_starts_at: now(),
            first_response_due: None,
            warranty: crate::warranty::Warranty {
                status: crate::warranty::WarrantyStatus::Unknown,
                until: None,
                basis: String::new(),
                notes: vec![],
                hold_until: None,
            },
            contract: None,
        })
    };
    let quota = |charged| {
        Event::Quota(QuotaUse {
            id: "qn09".into(),
            rule: "QN-09".into(),
            contract: "Q1".into(),
            period_start: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            limit: 5,
            used: 0,
            charged,
            exhausted: false,
            remaining: 5,
        })
    };
    let a = s
        .apply(
            &row(1, b"one"),
            &new_ticket("ann@example.net"),
            &[policy(&["serial", "invoice"]), quota(true)],
            &SideEffects::default(),
            &[],
            now(),
        )
        .unwrap();
    let t = a.ticket_id.unwrap();
    let mut second = row(2, b"two");
    second.message_id = Some("m2@example.net");
    second.content_hash = "h2";
    s.apply(
        &second,
        &TicketWrite::Update {
            id: t,
            status: TicketStatus::Open,
        },
        &[policy(&["invoice", "model"]), quota(false)],
        &SideEffects::default(),
        &[],
        now(),
    )
    .unwrap();
    assert_eq!(
        s.ticket(t).unwrap().unwrap().facts,
        ["serial", "invoice", "model"]
    );
    let jan = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    assert_eq!(s.quota_used("qn09", "Q1", jan).unwrap(), 1);
    assert_eq!(s.quota_used("qn09", "Q2", jan).unwrap(), 0);
}

fn a_timer_is_set_once_per_key_and_settles_once(mut s: Store) {
    let step = |due: &str| TimerPlan {
        kind: TimerKind::Escalation,
        cause: crate::model::TimerCause::Escalation {
            to: "Director".into(),
            after: Some("8h".into()),
        },
        due: parse_ts(due).unwrap(),
        rule: "NX-03".into(),
        to: Some("Director".into()),
    };
    let effects = SideEffects {
        timers: vec![step("2026-03-02T18:00:00Z")],
        ..SideEffects::default()
    };
    let a = s
        .apply(
            &row(1, b"one"),
            &new_ticket("ann@example.net"),
            &[],
            &effects,
            &[],
            now(),
        )
        .unwrap();
    let t = a.ticket_id.unwrap();
    // The same key again (a rescan, a follow-up) leaves the first due time.
    let mut again = row(2, b"two");
    again.message_id = Some("m2@example.net");
    again.content_hash = "h2";
    let later = SideEffects {
        timers: vec![step("2026-03-09T18:00:00Z")],
        ..SideEffects::default()
    };
    s.apply(
        &again,
        &TicketWrite::Attach { id: t },
        &[],
        &later,
        &[],
        now(),
    )
    .unwrap();
    assert_eq!(
        s.next_timer_due().unwrap(),
        Some(parse_ts("2026-03-02T18:00:00Z").unwrap())
    );
    assert!(
        s.pending_timers(Some(now()), 10).unwrap().is_empty(),
        "not due yet"
    );
    let due = s.pending_timers(None, 10).unwrap();
    assert_eq!(due.len(), 1);
    let fired = Event::TimerFired {
        timer: TimerKind::Escalation,
        key: due[0].plan.cause.to_string(),
        due: due[0].plan.due,
        rule: "NX-03".into(),
        late: false,
    };
    let at = parse_ts("2026-03-02T18:00:00Z").unwrap();
    let change = |e: &Event, to: &str| crate::model::TicketChange {
        events: vec![e.clone()],
        mails: vec![reply(to)],
        ..Default::default()
    };
    assert!(
        s.settle_timer(&due[0], Settle::Fired, None, &change(&fired, "n1@t"), at)
            .unwrap()
    );
    assert!(
        !s.settle_timer(&due[0], Settle::Fired, None, &change(&fired, "n2@t"), at)
            .unwrap(),
        "a settled timer does not fire again"
    );
    assert_eq!(s.next_timer_due().unwrap(), None);
    assert_eq!(s.outbox(None).unwrap().len(), 1, "one notice queued");
    let kinds: Vec<String> = s
        .ticket_events(t)
        .unwrap()
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(kinds.iter().filter(|k| *k == "timer_fired").count(), 1);

    // Set again, the fired step stays fired; a cancelled one is set again.
    let again = crate::model::TicketChange::<NewMail> {
        set_timers: vec![step("2026-03-20T18:00:00Z")],
        ..Default::default()
    };
    s.apply_change(t, &again, at).unwrap();
    assert_eq!(
        s.next_timer_due().unwrap(),
        None,
        "a fired timer is not set again"
    );
    let other = TimerPlan {
        cause: crate::model::TimerCause::Escalation {
            to: "President".into(),
            after: Some("24h".into()),
        },
        ..step("2026-03-03T10:00:00Z")
    };
    let set = crate::model::TicketChange::<NewMail> {
        set_timers: vec![other.clone()],
        ..Default::default()
    };
    s.apply_change(t, &set, at).unwrap();
    let cancel = crate::model::TicketChange::<NewMail> {
        cancel_timers: vec![crate::model::TimerCancel {
            kind: other.kind,
            cause: other.cause.clone(),
            why: "severity changed".into(),
        }],
        ..Default::default()
    };
    s.apply_change(t, &cancel, at).unwrap();
    assert_eq!(s.next_timer_due().unwrap(), None);
    s.apply_change(t, &set, at).unwrap();
    assert_eq!(
        s.next_timer_due().unwrap(),
        Some(other.due),
        "a cancelled timer is set again"
    );
}

/// Opens a ticket of `from` with mail `mid` and `timers`; returns its id.
fn ticket_with(s: &mut Store, uid: u32, from: &str, mid: &str, timers: Vec<TimerPlan>) -> TicketId {
    let raw = format!("mail {uid}");
    let mut r = row(uid, raw.as_bytes());
    r.message_id = Some(mid);
    r.sender = Some(from);
    let hash = format!("h{uid}");
    r.content_hash = &hash;
    let effects = SideEffects {
        timers,
        ..SideEffects::default()
    };
    let write = TicketWrite::New {
        subject: "Disk".into(),
        status: TicketStatus::Open,
        language: "en".into(),
        requester: from.into(),
        requester_name: None,
    };
    s.apply(&r, &write, &[created(from)], &effects, &[], now())
        .unwrap()
        .ticket_id
        .unwrap()
}

fn plan(kind: TimerKind, cause: TimerCause, due: &str) -> TimerPlan {
    TimerPlan {
        kind,
        cause,
        due: parse_ts(due).unwrap(),
        rule: "IX-03".into(),
        to: None,
    }
}

fn issue_26_a_merge_moves_history_and_pending_timers_and_fires_nothing_twice(mut s: Store) {
    let sla = TimerCause::Sla {
        target: SlaTarget::FirstResponse,
        clock: SlaClock::Business,
    };
    let step = TimerCause::Escalation {
        to: "Director".into(),
        after: Some("8h".into()),
    };
    let source = ticket_with(
        &mut s,
        1,
        "ann@example.net",
        "a1@example.net",
        vec![
            plan(TimerKind::SlaBreach, sla.clone(), "2026-03-02T14:00:00Z"),
            plan(TimerKind::Escalation, step.clone(), "2026-03-02T18:00:00Z"),
        ],
    );
    let into = ticket_with(
        &mut s,
        2,
        "ann@example.net",
        "a2@example.net",
        vec![plan(
            TimerKind::Escalation,
            step.clone(),
            "2026-03-02T19:00:00Z",
        )],
    );
    // The target's escalation step already fired: the source's must not fire again.
    let due = s.pending_timers(None, 10).unwrap();
    let fired = due.iter().find(|t| t.ticket == into).unwrap();
    s.settle_timer(fired, Settle::Fired, None, &TicketChange::default(), now())
        .unwrap();
    let merge = MergePlan {
        source,
        into,
        by: "alice by mail (reply token)".into(),
        source_was: TicketStatus::Open,
        cancel_on_target: vec![],
        replan_on_target: vec![],
        updates_on_target: vec![],
        rmas_kept: vec![],
    };
    s.merge_tickets(&TicketChange::default(), &merge, now())
        .unwrap();
    let t = s.ticket(into).unwrap().unwrap();
    assert_eq!(t.participants, ["ann@example.net"]);
    let kinds: Vec<TimerKind> = t.timers.iter().map(|p| p.kind).collect();
    assert_eq!(
        kinds,
        [TimerKind::SlaBreach],
        "the SLA moved; the fired step did not come back"
    );
    let old = s.ticket(source).unwrap().unwrap();
    assert_eq!(old.status, TicketStatus::Closed);
    assert_eq!(old.merged_into, Some(into));
    assert!(old.timers.is_empty());
    let src_events = s.ticket_events(source).unwrap();
    let kinds: Vec<&str> = src_events.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        ["timer_cancelled", "status_changed", "merged_into"],
        "{src_events:?}"
    );
    assert!(
        src_events[0].1.contains("already fired or ended"),
        "{src_events:?}"
    );
    let events = s.ticket_events(into).unwrap();
    assert_eq!(
        events.iter().filter(|(k, _)| k == "created").count(),
        2,
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|(k, d)| k == "merged" && d.contains(&format!("ticket {source} merged")))
    );
    // Mail to the merged ticket lands on the target: its tag and its thread.
    assert_eq!(s.surviving(source).unwrap(), into);
    let l = s
        .lookup(
            Some(source.0),
            &["a1@example.net".into()],
            None,
            Some("ann@example.net"),
            "x",
            None,
        )
        .unwrap();
    assert_eq!(l.tagged.map(|t| t.id), Some(into));
    assert_eq!(l.referenced.map(|t| t.id), Some(into));
    // A second merge of the same ticket is refused by the store too.
    let again = s.merge_tickets(&TicketChange::default(), &merge, now());
    assert!(again.unwrap_err().to_string().contains("already merged"));
}

/// The SQLite opcodes of `sql`, every parameter NULL (as `EXPLAIN` lists them).
fn opcodes(conn: &Connection, sql: &str) -> Vec<String> {
    let mut stmt = conn.prepare(&format!("EXPLAIN {sql}")).unwrap();
    let mut ops = vec![];
    let mut rows = stmt.raw_query();
    while let Some(r) = rows.next().unwrap() {
        ops.push(r.get::<_, String>(1).unwrap());
    }
    ops
}

#[test]
fn issue_24_state_checks_and_contract_lookups_build_no_temporary_table() {
    // A store of migration 14, with a row in each table whose CHECK changes.
    let mut s = store_of_migration(
        14,
        r#"
INSERT INTO contacts (address, created_at) VALUES ('ann@example.net', '2026-03-02T10:00:00.000000Z');
INSERT INTO tickets (subject, status, requester_id, mailbox, language, created_at, updated_at)
    VALUES ('Disk', 'waiting_staff', 1, 'support', 'en', '2026-03-02T10:00:00.000000Z', '2026-03-02T10:00:00.000000Z');
INSERT INTO outbox (ticket_id, kind, message_id, mail_from, rcpt_to, raw, status, next_attempt_at, created_at)
    VALUES (1, 'ack', 'm1@t', 'support@t', 'ann@example.net', x'78', 'sent', '2026-03-02T10:00:00Z', '2026-03-02T10:00:00Z');
INSERT INTO timers (ticket_id, kind, cause, due_at, rule, state, created_at)
    VALUES (1, 'escalation', '{}', '2026-03-03T10:00:00Z', 'NX-03', 'pending', '2026-03-02T10:00:00Z');
INSERT INTO rma (ticket_id, part, state, rule, requested_at, updated_at)
    VALUES (1, 'psu', 'returned', 'QN-05', '2026-03-02T10:00:00Z', '2026-03-02T10:00:00Z');
INSERT INTO webhook_deliveries (webhook, event, msg_id, body, status, next_attempt_at, created_at)
    VALUES ('ops', 'ticket.created', 'w1', '{}', 'failed', '2026-03-02T10:00:00Z', '2026-03-02T10:00:00Z');
"#,
    );
    s.migrate().unwrap();
    assert_eq!(s.schema_version().unwrap(), MIGRATIONS.len());
    let ok: String = s
        .conn
        .query_row("PRAGMA integrity_check", (), |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");

    let fresh = Store::in_memory().unwrap();
    for (store, migrated) in [(&s, true), (&fresh, false)] {
        let conn = store.conn.sqlite().unwrap();
        // Every state column still takes its states and refuses another.
        for (table, column, good) in [
            ("tickets", "status", "closed"),
            ("outbox", "status", "failed"),
            ("timers", "state", "cancelled"),
            ("rma", "state", "expired"),
            ("webhook_deliveries", "status", "delivered"),
        ] {
            let update = format!("UPDATE {table} SET {column} = ?1 WHERE id = 1");
            if migrated {
                let n = conn.execute(&update, [good]).unwrap();
                assert_eq!(n, 1, "{table}.{column} = {good}");
                let bad = conn.execute(&update, ["pending_forever"]).unwrap_err();
                assert!(bad.to_string().contains("CHECK"), "{table}: {bad}");
            }
            let ops = opcodes(conn, &update);
            assert!(
                !ops.iter().any(|o| o == "OpenEphemeral"),
                "{table}.{column}'s CHECK builds a temporary table: {ops:?}"
            );
        }
        // The statements intake runs on every mail.
        for sql in [
            "INSERT INTO tickets (subject, status, requester_id, mailbox, language, created_at, updated_at)
             VALUES (?1, 'open', ?2, ?3, ?4, ?5, ?5)",
            "INSERT INTO outbox (ticket_id, kind, message_id, mail_from, rcpt_to, raw, status, attempts, next_attempt_at, created_at, subject)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', 0, ?7, ?7, ?8)",
            "SELECT company FROM contracts WHERE email = ?1 ORDER BY purchased_on DESC, serial_key ASC LIMIT 1",
            "SELECT serial FROM contracts WHERE tax_key = ?1 ORDER BY purchased_on DESC, serial_key ASC LIMIT 1",
        ] {
            let ops = opcodes(conn, sql);
            assert!(
                !ops.iter().any(|o| o == "OpenEphemeral" || o == "SorterOpen"),
                "{sql}: {ops:?}"
            );
        }
    }
    // The rows kept what they held, and a store made fresh has the same tables.
    let status: String = s
        .conn
        .query_row("SELECT status FROM tickets WHERE id = 1", (), |r| r.get(0))
        .unwrap();
    assert_eq!(status, "closed");
    let tables = |st: &Store| -> Vec<(String, String)> {
        st.conn
            .prepare("SELECT name, sql FROM sqlite_schema WHERE type IN ('table', 'index') AND sql IS NOT NULL ORDER BY name")
            .unwrap()
            .query_map((), |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    };
    assert_eq!(tables(&s), tables(&fresh));
}

/// Each of these runs on SQLite (a test of its own, in memory) and, in
/// [`the_store_suite_runs_on_postgresql`], on a database of its own in a
/// private PostgreSQL.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    super::$name(super::Store::in_memory().unwrap());
                }
            )*
        }

        const ON_BOTH: &[(&str, fn(Store))] = &[$((stringify!($name), $name)),*];
    };
}

on_both_backends!(
    a_batch_that_fails_writes_nothing_of_any_message,
    a_failed_contract_import_leaves_the_table_unchanged,
    a_failing_render_writes_nothing,
    a_message_that_fails_in_a_batch_is_rolled_back_alone_and_the_rest_commit,
    a_sent_mail_replayed_from_the_journal_is_recorded_once,
    a_timer_is_set_once_per_key_and_settles_once,
    an_outbox_step_records_and_claims_in_one_transaction_skipping_mail_in_flight,
    claims_are_counted_before_sending_and_an_outcome_resets_them,
    duplicate_by_message_id_needs_the_same_sender,
    facts_and_quota_uses_are_written_with_their_events,
    find_contract_matches_as_the_contract_book_does,
    issue_20_class_3_a_bounce_returns_only_mail_in_the_outbox,
    issue_24_a_batch_that_panics_writes_nothing_and_leaves_no_transaction_open,
    issue_26_a_merge_moves_history_and_pending_timers_and_fires_nothing_twice,
    marking_a_contact_undeliverable_fails_its_queued_mail_and_buckets_are_kept,
    migrations_run_once_and_events_are_append_only,
    reimporting_contracts_updates_in_place,
);

#[path = "../../tests/kit/postgres.rs"]
mod postgres_kit;

#[test]
fn the_store_suite_runs_on_postgresql() {
    let server = postgres_kit::Postgres::start();
    let mut failed = Vec::new();
    for (name, test) in ON_BOTH {
        let store = server.fresh_store(name);
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| test(store))).is_err() {
            failed.push(*name);
        }
    }
    assert!(failed.is_empty(), "failed on PostgreSQL: {failed:?}");
}
