//! RMA codes end to end: iXsystems' code issued with the ticket, reminded and expired at its days (IX-05, IX-06); QNAP's approved and issued from the shell, once however often it is asked (QN-05); staff answers from the shell end the SLA timers.

use crate::harness::ticketd_cli as ticketd;
use crate::harness::{MailStack, mail};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use ticketd::clock::{Clock, FixedClock, SharedClock, SystemClock};
use ticketd::config::Config;
use ticketd::model::{RmaState, TicketId, TimerKind};
use ticketd::store::Store;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("an RFC 3339 instant")
        .to_utc()
}

fn sent(stack: &MailStack, subject_has: &str) -> Vec<ticketd::parse::Inbound> {
    stack
        .sink_messages()
        .iter()
        .map(|m| ticketd::parse::parse(m, DateTime::UNIX_EPOCH))
        .filter(|m| m.subject.contains(subject_has))
        .collect()
}

fn store(cfg: &Config) -> Store {
    Store::open_read_only_at(&cfg.database).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ix_05_ix_06_the_ticket_number_is_the_rma_code_reminded_five_days_before_and_expired_after_thirty()
 {
    let stack = MailStack::start();
    let cfg = stack.config(|c| c.pack = "ixsystems".into());
    let report = mail(
        "ann@customer.test",
        "support@vendor.test",
        "Failed drive needs a replacement",
        "rma1@customer.test",
        "",
        "The failed drive in bay 3 of our TrueNAS (serial A1-B2C3D4E5) needs a replacement; the pool is degraded.",
    );
    stack
        .append(
            "support@vendor.test",
            "INBOX",
            &report,
            "01-Mar-2026 10:00:00 -0800",
        )
        .await;
    // It waited a day (the daemon was down): the code goes out now.
    let clock = FixedClock::new(at("2026-03-02T10:00:30-08:00"));
    let shared: SharedClock = Arc::new(clock.clone());
    ticketd::daemon::run_once(cfg.clone(), shared.clone())
        .await
        .unwrap();

    let rmas = store(&cfg).rmas(TicketId(1)).unwrap();
    assert_eq!(rmas.len(), 1, "{rmas:?}");
    assert_eq!(rmas[0].state, RmaState::Issued);
    assert_eq!(
        rmas[0].code.as_deref(),
        Some("1"),
        "IX-05: the ticket number"
    );
    assert_eq!(rmas[0].part, "A1-B2C3D4E5");
    assert_eq!(rmas[0].expires_at, Some(at("2026-04-01T10:00:30-07:00")));
    // The acknowledgement states the same validity, counted from when it
    // went out with the code (not from a late arrival).
    let ack = sent(&stack, "Failed drive needs a replacement");
    assert!(
        ack[0].text.contains("valid until 2026-04-01 10:00 PDT"),
        "{}",
        ack[0].text
    );
    let timers = store(&cfg).pending_timers(None, 100).unwrap();
    let reminder = timers
        .iter()
        .find(|t| t.plan.kind == TimerKind::RmaReminder)
        .expect("a reminder");
    assert_eq!(reminder.plan.due, at("2026-03-27T10:00:30-07:00"));
    assert_eq!(reminder.plan.rule, "IX-06");

    // The day before the reminder nothing is sent; on its day it is.
    clock.set(at("2026-03-26T10:00:00-07:00"));
    ticketd::daemon::run_once(cfg.clone(), shared.clone())
        .await
        .unwrap();
    assert!(sent(&stack, "RMA 1").is_empty());
    clock.set(at("2026-03-27T10:01:00-07:00"));
    ticketd::daemon::run_once(cfg.clone(), shared.clone())
        .await
        .unwrap();
    let reminders = sent(&stack, "RMA 1");
    assert_eq!(reminders.len(), 1);
    let r = &reminders[0];
    assert_eq!(r.to[0].address, "ann@customer.test");
    assert!(
        r.text.contains("is valid until 2026-04-01 10:00 PDT"),
        "{}",
        r.text
    );
    assert_eq!(
        r.in_reply_to.first().map(String::as_str),
        Some("rma1@customer.test"),
        "in the customer's thread"
    );
    assert_eq!(
        store(&cfg).rmas(TicketId(1)).unwrap()[0].state,
        RmaState::Issued
    );

    // After 30 days: marked expired, and the customer told, once.
    clock.set(at("2026-04-01T10:01:00-07:00"));
    ticketd::daemon::run_once(cfg.clone(), shared.clone())
        .await
        .unwrap();
    ticketd::daemon::run_once(cfg.clone(), shared.clone())
        .await
        .unwrap();
    let notices = sent(&stack, "RMA 1");
    assert_eq!(notices.len(), 2, "the reminder and the expiry, once each");
    assert!(
        notices
            .iter()
            .any(|n| n.text.contains("expired on 2026-04-01 10:00 PDT")),
        "{notices:?}"
    );
    assert_eq!(
        store(&cfg).rmas(TicketId(1)).unwrap()[0].state,
        RmaState::Expired
    );

    let history = ticketd(&cfg, &["ticket", "1", "--json"]);
    assert!(
        history.status.success(),
        "{}",
        String::from_utf8_lossy(&history.stderr)
    );
    let h: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap();
    assert_eq!(h["rma"][0]["state"], "expired");
    assert!(
        h["messages"][0]["new_text"]
            .as_str()
            .unwrap()
            .contains("bay 3")
    );
    assert!(
        h["timers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["kind"] == "rma_deadline" && t["state"] == "fired")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qn_05_an_rma_approved_then_issued_from_the_shell_reaches_the_customer_once_with_its_code()
{
    qn_05_an_rma_approved_then_issued_from_the_shell_reaches_the_customer_once_with_its_code_on(
        None,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_22_on_postgresql_qn_05_an_rma_approved_then_issued_from_the_shell_reaches_the_customer_once_with_its_code()
 {
    let pg = crate::kit::postgres::Postgres::start();
    qn_05_an_rma_approved_then_issued_from_the_shell_reaches_the_customer_once_with_its_code_on(
        Some(&pg),
    )
    .await;
}

async fn qn_05_an_rma_approved_then_issued_from_the_shell_reaches_the_customer_once_with_its_code_on(
    pg: Option<&crate::kit::postgres::Postgres>,
) {
    let stack = MailStack::start();
    let cfg = stack.config(|c| c.pack = "qnap".into());
    let cfg = match pg {
        Some(pg) => crate::harness::onto_postgres(&cfg, pg, "rma"),
        None => cfg,
    };
    let report = mail(
        "kim@customer.test",
        "support@vendor.test",
        "Warranty claim: TS-464 will not boot",
        "qn1@customer.test",
        "",
        "Our TS-464 (serial Q20AB12345) does not boot any more. Attached is the invoice INV-2026-0042 as proof of purchase; please handle it under warranty.",
    );
    stack
        .append(
            "support@vendor.test",
            "INBOX",
            &report,
            "01-Dec-2026 09:00:00 +0000",
        )
        .await;
    let shared: SharedClock = Arc::new(SystemClock);
    ticketd::daemon::run_once(cfg.clone(), shared.clone())
        .await
        .unwrap();
    let rmas = store(&cfg).rmas(TicketId(1)).unwrap();
    assert_eq!(
        rmas.len(),
        1,
        "the warranty claim asks for an RMA: {rmas:?}"
    );
    assert_eq!(rmas[0].state, RmaState::Requested);

    let early = ticketd(&cfg, &["rma", "issue", "1", "--as", "lead@vendor.test"]);
    assert_eq!(early.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&early.stderr).contains("not approved yet (QN-05)"));

    let ok = ticketd(&cfg, &["rma", "approve", "1", "--as", "lead@vendor.test"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let due = store(&cfg).pending_timers(None, 100).unwrap();
    assert!(
        due.iter()
            .any(|t| t.plan.kind == TimerKind::RmaIssueDue && t.plan.rule == "QN-05")
    );

    let issued = ticketd(&cfg, &["rma", "issue", "1", "--as", "lead@vendor.test"]);
    assert!(
        issued.status.success(),
        "{}",
        String::from_utf8_lossy(&issued.stderr)
    );
    let out = String::from_utf8_lossy(&issued.stdout).to_string();
    let code = store(&cfg).rmas(TicketId(1)).unwrap()[0]
        .code
        .clone()
        .expect("a code");
    assert!(code.starts_with("QRMA") && code.ends_with("-1-1"), "{code}");
    assert!(
        out.contains(&code) && out.contains("1 mail queued"),
        "{out}"
    );
    assert!(
        !store(&cfg)
            .pending_timers(None, 100)
            .unwrap()
            .iter()
            .any(|t| t.plan.kind == TimerKind::RmaIssueDue),
        "issuing ends the QN-05 reminder"
    );
    let again = ticketd(&cfg, &["rma", "issue", "1"]);
    assert!(again.status.success());
    let out = String::from_utf8_lossy(&again.stdout).to_string();
    assert!(
        out.contains("already issued") && out.contains(&code) && out.contains("nothing sent"),
        "{out}"
    );

    ticketd::daemon::run_once(cfg.clone(), shared.clone())
        .await
        .unwrap();
    let mails = sent(&stack, &format!("RMA {code}"));
    assert_eq!(mails.len(), 1, "one mail however often it is issued");
    assert_eq!(mails[0].to[0].address, "kim@customer.test");
    assert!(mails[0].text.contains(&code), "{}", mails[0].text);
    assert!(mails[0].subject.contains("[TKT#1]"), "{}", mails[0].subject);
    let events = store(&cfg).ticket_events(TicketId(1)).unwrap();
    let rma_events: Vec<_> = events.iter().filter(|(k, _)| k == "rma").collect();
    assert_eq!(
        rma_events.len(),
        3,
        "requested, approved, issued: {rma_events:?}"
    );
    assert!(
        rma_events[2].1.contains("lead@vendor.test"),
        "names who issued it"
    );

    // The code appears in later replies on the ticket.
    let again = mail(
        "kim@customer.test",
        "support@vendor.test",
        "Re: Warranty claim: TS-464 will not boot [TKT#1]",
        "qn2@customer.test",
        "",
        "Which address do we ship the unit to?",
    );
    stack
        .append(
            "support@vendor.test",
            "INBOX",
            &again,
            "01-Dec-2026 09:30:00 +0000",
        )
        .await;
    ticketd::daemon::run_once(cfg.clone(), shared.clone())
        .await
        .unwrap();
    let followups: Vec<_> = sent(&stack, "Warranty claim")
        .into_iter()
        .filter(|m| m.text.contains("We have added your message"))
        .collect();
    assert_eq!(followups.len(), 1);
    assert!(
        followups[0]
            .text
            .contains(&format!("RMA {code} (part Q20AB12345): issued")),
        "{}",
        followups[0].text
    );
    assert!(
        !followups[0].text.contains("We issue the RMA number"),
        "no promise of a code it already has: {}",
        followups[0].text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staff_answer_from_the_shell_reaches_the_customer_in_their_thread_and_ends_the_sla_timers()
 {
    let stack = MailStack::start();
    let cfg = stack.config(|c| {
        c.pack = "ixsystems".into();
        c.sla_notices = true;
    });
    let report = mail(
        "ann@customer.test",
        "support@vendor.test",
        "Replication fails nightly",
        "q1@customer.test",
        "",
        "Our nightly replication task fails with a timeout since Monday; TrueNAS 13.0, serial A1-B2C3D4E5.",
    );
    // Tuesday 09:00 Pacific, in business hours.
    stack
        .append(
            "support@vendor.test",
            "INBOX",
            &report,
            "01-Dec-2026 16:59:00 +0000",
        )
        .await;
    let clock = FixedClock::new(at("2026-12-01T17:00:00Z"));
    let shared: SharedClock = Arc::new(clock.clone());
    ticketd::daemon::run_once(cfg.clone(), shared.clone())
        .await
        .unwrap();
    let sla: Vec<_> = store(&cfg)
        .pending_timers(None, 100)
        .unwrap()
        .into_iter()
        .filter(|t| t.plan.kind.is_sla())
        .collect();
    assert!(
        sla.iter().any(|t| t.plan.kind == TimerKind::SlaBreach),
        "{sla:?}"
    );
    let answer = stack.dir.join("answer.txt");
    std::fs::write(
        &answer,
        "Hello Ann,\n\nplease send the replication log.\n\nBob\n",
    )
    .unwrap();
    let out = ticketd(
        &cfg,
        &[
            "reply",
            "1",
            answer.to_str().unwrap(),
            "--as",
            "bob@vendor.test",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let note = ticketd(
        &cfg,
        &["note", "1", "asked for the log", "--as", "bob@vendor.test"],
    );
    assert!(
        note.status.success(),
        "{}",
        String::from_utf8_lossy(&note.stderr)
    );
    assert!(
        !store(&cfg)
            .pending_timers(None, 100)
            .unwrap()
            .iter()
            .any(|t| t.plan.kind.is_sla()),
        "the answer is the first response"
    );
    // The shell queued the answer at the machine's own time.
    clock.set(SystemClock.now() + chrono::Duration::seconds(1));
    ticketd::daemon::run_once(cfg.clone(), shared.clone())
        .await
        .unwrap();
    let answers = sent(&stack, "Replication fails nightly");
    let relayed: Vec<_> = answers
        .iter()
        .filter(|m| m.text.contains("replication log"))
        .collect();
    assert_eq!(relayed.len(), 1);
    let m = relayed[0];
    assert_eq!(
        m.in_reply_to.first().map(String::as_str),
        Some("q1@customer.test")
    );
    assert!(m.subject.contains("[TKT#1]"));
    let raw = stack
        .sink_messages()
        .into_iter()
        .find(|r| String::from_utf8_lossy(r).contains("replication log"))
        .unwrap();
    let raw = String::from_utf8_lossy(&raw).to_string();
    assert!(raw.contains("Auto-Submitted: no"), "{raw}");
    assert!(!raw.contains("Precedence:"), "{raw}");
    assert!(
        !answers.iter().any(|m| m.text.contains("asked for the log")),
        "a note is never sent"
    );
    let t = store(&cfg).ticket(TicketId(1)).unwrap().unwrap();
    assert_eq!(t.status, ticketd::model::TicketStatus::WaitingCustomer);

    // Clear errors, exit 1, nothing written.
    let unknown = ticketd(&cfg, &["note", "99", "x"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("ticket 99 does not exist"));
    assert!(ticketd(&cfg, &["close", "1"]).status.success());
    let closed = ticketd(&cfg, &["reply", "1", answer.to_str().unwrap()]);
    assert_eq!(closed.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&closed.stderr).contains("ticket 1 is closed: reopen it first")
    );
    let bad = ticketd(&cfg, &["status", "1", "pending"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not a state"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_queued_from_the_shell_is_sent_by_the_running_daemon_within_seconds() {
    let stack = MailStack::start();
    let cfg = stack.config(|c| c.pack = "ixsystems".into());
    let report = mail(
        "ann@customer.test",
        "support@vendor.test",
        "Pool degraded",
        "live1@customer.test",
        "",
        "Our pool is degraded since this morning; TrueNAS 13.0, serial A1-B2C3D4E5.",
    );
    let daemon = crate::harness::Daemon::start(&cfg, Arc::new(SystemClock));
    stack.deliver(&report).await;
    crate::harness::wait_until("the acknowledgement", Duration::from_secs(20), || {
        !sent(&stack, "Pool degraded").is_empty()
    })
    .await;
    let answer = stack.dir.join("live-answer.txt");
    std::fs::write(&answer, "Hello Ann,\n\nplease replace the disk in bay 2.\n").unwrap();
    let out = ticketd(
        &cfg,
        &[
            "reply",
            "1",
            answer.to_str().unwrap(),
            "--as",
            "bob@vendor.test",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Nothing wakes the daemon: it looks again on its own within about a second.
    crate::harness::wait_until("the answer sent", Duration::from_secs(10), || {
        sent(&stack, "Pool degraded")
            .iter()
            .any(|m| m.text.contains("replace the disk in bay 2"))
    })
    .await;
    daemon.stop(Duration::from_secs(20)).await;
}
