//! Each shipped pack end to end: a mail APPENDed outside business hours gets an acknowledgement in the pack's language saying when the clock starts.

use crate::harness::{MailStack, mail};
use std::sync::Arc;
use ticketd::clock::{SharedClock, SystemClock};
use ticketd::config::Config;
use ticketd::model::{Event, PolicyRecord, TicketId, TicketStatus};
use ticketd::parse::parse;
use ticketd::store::Store;

/// Runs one off-hours mail through `pack` and returns the acknowledgement's text.
async fn off_hours_ack(
    pack: &str,
    internal_date: &str,
    subject: &str,
    body: &str,
) -> (String, Store) {
    let stack = MailStack::start();
    let cfg = stack.config(|c| c.pack = pack.to_string());
    let raw = mail(
        "Ann Customer <ann@customer.test>",
        "support@vendor.test",
        subject,
        &format!("{pack}-1@customer.test"),
        "",
        body,
    );
    arrive(&stack, &cfg, "support@vendor.test", &raw, internal_date).await;
    let acks = to_customer(&stack);
    assert_eq!(acks.len(), 1, "one acknowledgement to the customer");
    let store = Store::open_read_only_at(&cfg.database).expect("database");
    (acks[0].clone(), store)
}

/// APPENDs `raw` to `user`'s INBOX with `internal_date`, then runs the daemon once.
async fn arrive(stack: &MailStack, cfg: &Config, user: &str, raw: &[u8], internal_date: &str) {
    stack.append(user, "INBOX", raw, internal_date).await;
    let clock: SharedClock = Arc::new(SystemClock);
    ticketd::daemon::run_once(cfg.clone(), clock)
        .await
        .expect("run --once");
}

/// The texts of the mail sent to the customer (staff notices left out).
fn to_customer(stack: &MailStack) -> Vec<String> {
    stack
        .sink_messages()
        .iter()
        .map(|m| parse(m, chrono::DateTime::UNIX_EPOCH))
        .filter(|m| m.to.iter().any(|a| a.address == "ann@customer.test"))
        .map(|m| m.text)
        .collect()
}

fn policy_event(store: &Store) -> PolicyRecord {
    let events = store.ticket_events(TicketId(1)).expect("events");
    let e = events
        .iter()
        .find(|(kind, _)| kind == "policy")
        .expect("a policy event on the ticket");
    match Event::from_stored(&e.0, &e.1) {
        Some(Event::Policy(p)) => p,
        other => panic!("policy event {:?} reads as {other:?}", e.1),
    }
}

fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s)
        .expect("an RFC 3339 instant")
        .to_utc()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ixsystems_saturday_mail_is_acknowledged_in_english_with_the_clock_start() {
    // IX-02, IX-03: Saturday 10:00 Pacific; the clock starts Monday 06:00.
    let (ack, store) = off_hours_ack(
        "ixsystems",
        "14-Nov-2026 10:00:00 -0800",
        "Pool degraded",
        "Serial: A1-12345. One disk of the pool shows checksum errors.",
    )
    .await;
    assert!(ack.contains("outside our business hours"), "{ack}");
    assert!(ack.contains("start at 2026-11-16 06:00 PST"), "{ack}");
    let p = policy_event(&store);
    assert_eq!(p.clock_starts_at, at("2026-11-16T06:00:00-08:00"));
    assert!(!p.business_open);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qnap_evening_mail_is_acknowledged_in_english_with_the_clock_start() {
    // QN-10: 19:00 Pacific on a Friday; the clock starts Monday 06:00.
    let (ack, store) = off_hours_ack(
        "qnap",
        "13-Nov-2026 19:00:00 -0800",
        "Volume read-only",
        "Serial: Q23A1234567. The volume became read-only after a firmware update.",
    )
    .await;
    assert!(ack.contains("start at 2026-11-16 06:00 PST"), "{ack}");
    assert_eq!(
        policy_event(&store).first_response_due,
        Some(at("2026-11-17T06:00:00-08:00"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qnap_jp_weekend_mail_is_acknowledged_in_japanese_with_the_clock_start() {
    // QJ-01, QJ-02: Saturday in Tokyo before a Monday holiday (スポーツの日): Tuesday 09:00.
    let (ack, store) = off_hours_ack(
        "qnap-jp",
        "10-Oct-2026 10:00:00 +0900",
        "NAS の設定について",
        "スナップショットの設定方法を教えてください。",
    )
    .await;
    assert!(ack.contains("受付時間外"), "{ack}");
    assert!(ack.contains("2026-10-13 09:00 JST より開始"), "{ack}");
    assert_eq!(
        policy_event(&store).clock_starts_at,
        at("2026-10-13T09:00:00+09:00")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netex_night_mail_is_acknowledged_in_english_with_the_clock_start() {
    // NX-01: 22:00 Central on a Monday; the clock starts Tuesday 08:00.
    let (ack, store) = off_hours_ack(
        "netex",
        "16-Nov-2026 22:00:00 -0600",
        "Transfers slow",
        "HyperIP version 7.0 on Red Hat Enterprise Linux 9 has been slow since the upgrade; throughput dropped by half on every link.",
    )
    .await;
    assert!(ack.contains("start at 2026-11-17 08:00 CST"), "{ack}");
    let p = policy_event(&store);
    assert_eq!(p.severity, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn avanzada7_sunday_mail_is_acknowledged_in_spanish_with_the_clock_start() {
    // AV-09: replies in Spanish; Sunday in Madrid, the clock starts Monday 09:00.
    let (ack, store) = off_hours_ack(
        "avanzada7",
        "15-Nov-2026 11:00:00 +0100",
        "Teléfono no registra",
        "Número de serie: AV7-000123. El teléfono IP no registra en Asterisk.",
    )
    .await;
    assert!(ack.contains("fuera de nuestro horario"), "{ack}");
    assert!(ack.contains("2026-11-16 09:00 CET"), "{ack}");
    assert_eq!(
        policy_event(&store).clock_starts_at,
        at("2026-11-16T09:00:00+01:00")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ix_13_asking_for_status_by_ticket_number_reaches_the_ticket() {
    let stack = MailStack::start();
    let cfg = stack.config(|c| c.pack = "ixsystems".to_string());
    let first = mail(
        "Ann Customer <ann@customer.test>",
        "support@vendor.test",
        "Pool degraded",
        "s1@customer.test",
        "",
        "Serial: A1-12345. One disk of the pool shows checksum errors.",
    );
    arrive(
        &stack,
        &cfg,
        "support@vendor.test",
        &first,
        "16-Nov-2026 09:00:00 -0800",
    )
    .await;
    // A new mail, no tag, no References: only the number in the text.
    let ask = mail(
        "Ann Customer <ann@customer.test>",
        "support@vendor.test",
        "Checking in",
        "s2@customer.test",
        "",
        "Hello, what is the status of ticket 1? Thanks.",
    );
    arrive(
        &stack,
        &cfg,
        "support@vendor.test",
        &ask,
        "17-Nov-2026 09:00:00 -0800",
    )
    .await;
    let store = Store::open_read_only_at(&cfg.database).expect("database");
    assert_eq!(store.tickets().unwrap().len(), 1, "no second ticket");
    let texts = to_customer(&stack);
    // The status answer: the state, no staff answer yet, the next step.
    assert!(
        texts.iter().any(|t| t.contains("Ticket [TKT#1]")
            && t.contains("open, with our support staff")
            && t.contains("have not answered it yet")
            && t.contains("Next step:")),
        "{texts:#?}"
    );
    // It changes nothing else.
    let t = &store.tickets().unwrap()[0];
    assert_eq!(t.status, ticketd::model::TicketStatus::Open);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qn_03_missing_facts_are_asked_for_and_the_ticket_waits_until_they_come() {
    let stack = MailStack::start();
    let cfg = stack.config(|c| {
        c.pack = "qnap".to_string();
        c.mailboxes = vec![("support", "support"), ("rma", "rma")];
    });
    let first = mail(
        "Ann Customer <ann@customer.test>",
        "rma@vendor.test",
        "NAS does not boot",
        "w1@customer.test",
        "",
        "Our NAS does not boot since this morning. Serial: Q23A1234567",
    );
    arrive(
        &stack,
        &cfg,
        "rma@vendor.test",
        &first,
        "16-Nov-2026 09:00:00 -0800",
    )
    .await;
    let store = Store::open_read_only_at(&cfg.database).expect("database");
    assert_eq!(
        store.tickets().unwrap()[0].status,
        TicketStatus::WaitingCustomer
    );
    let ack = &to_customer(&stack)[0];
    assert!(ack.contains("proof of purchase"), "{ack}");
    assert!(!ack.contains("serial number"), "{ack}");

    let reply = mail(
        "Ann Customer <ann@customer.test>",
        "rma@vendor.test",
        "Re: NAS does not boot [TKT#1]",
        "w2@customer.test",
        "In-Reply-To: <w1@customer.test>\r\n",
        "Here it is. Invoice number: INV-55231",
    );
    arrive(
        &stack,
        &cfg,
        "rma@vendor.test",
        &reply,
        "16-Nov-2026 10:00:00 -0800",
    )
    .await;
    assert_eq!(store.tickets().unwrap()[0].status, TicketStatus::Open);
    // QN-04: staff are asked for the void-or-not decision once per ticket, not per mail.
    let staff: Vec<String> = stack
        .sink_messages()
        .iter()
        .map(|m| parse(m, chrono::DateTime::UNIX_EPOCH).subject)
        .filter(|s| s.contains("needs staff"))
        .collect();
    assert_eq!(staff.len(), 1, "{staff:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qj_08_each_technical_question_uses_a_ticket_and_the_reply_counts_down() {
    let stack = MailStack::start();
    let cfg = stack.config(|c| c.pack = "qnap-jp".to_string());
    {
        let mut store = Store::open_at(&cfg.database).expect("database");
        let contract = ticketd::contracts::Contract {
            serial: "Q23B7654321".into(),
            email: "ann@customer.test".into(),
            company: "Customer Labs".into(),
            tier: "standard".into(),
            model: "TS-873A".into(),
            purchased_on: chrono::NaiveDate::from_ymd_opt(2025, 3, 1).unwrap(),
            tickets_per_year: Some(5),
            technician: String::new(),
            ..Default::default()
        };
        store.import_contracts(&[contract]).expect("import");
    }
    for (i, (day, question)) in [
        ("14-Oct-2026", "iSCSI の設定方法を教えてください。"),
        ("15-Oct-2026", "NFS の権限設定について教えてください。"),
        (
            "16-Oct-2026",
            "RAID の再構築中に電源が入らない故障が起きました。",
        ),
    ]
    .iter()
    .enumerate()
    {
        let raw = mail(
            "Ann Customer <ann@customer.test>",
            "support@vendor.test",
            &format!("質問 {i}"),
            &format!("q{i}@customer.test"),
            "",
            question,
        );
        arrive(
            &stack,
            &cfg,
            "support@vendor.test",
            &raw,
            &format!("{day} 10:00:00 +0900"),
        )
        .await;
    }
    let acks = to_customer(&stack);
    assert_eq!(acks.len(), 3);
    assert_eq!(
        acks.iter().filter(|a| a.contains("5 枚中 4 枚")).count(),
        1,
        "{acks:#?}"
    );
    assert_eq!(
        acks.iter().filter(|a| a.contains("5 枚中 3 枚")).count(),
        1,
        "{acks:#?}"
    );
    // A hardware fault question is free: no count-down.
    assert_eq!(
        acks.iter()
            .filter(|a| a.contains("チケットは消費しません"))
            .count(),
        1
    );
}
