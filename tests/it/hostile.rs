//! The per-message processing budget: a mail whose reading and deciding runs over it is stored, quarantined and staff are told.

use chrono::{DateTime, Utc};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use ticketd::clock::{Clock, FixedClock};
use ticketd::config::Config;
use ticketd::intake::{Engine, Fetched};
use ticketd::model::Outcome;
use ticketd::store::Store;

fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T17:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

/// A clock whose monotonic instant moves one second each time it is read,
/// as if every step of the work were slow.
#[derive(Debug)]
struct SlowWork {
    base: Instant,
    reads: Mutex<u32>,
}

impl Clock for SlowWork {
    fn now(&self) -> DateTime<Utc> {
        at()
    }
    fn monotonic(&self) -> Instant {
        let mut n = self.reads.lock().unwrap();
        *n += 1;
        self.base + Duration::from_secs(u64::from(*n))
    }
}

fn config(dir: &std::path::Path, limits: &str) -> Config {
    std::fs::write(dir.join("pw"), "secret\n").unwrap();
    let text = crate::cli::config_text(dir, "ixsystems")
        .replace("[smtp]", &format!("[limits]\n{limits}\n\n[smtp]"));
    let path = dir.join("ticketd.toml");
    std::fs::write(&path, text).unwrap();
    Config::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn mail() -> Fetched {
    let raw = b"From: Ann <ann@customer.test>\r\nTo: support@vendor.test\r\nSubject: Pool degraded\r\nMessage-ID: <m1@customer.test>\r\n\r\nThe pool is degraded.\r\n".to_vec();
    Fetched {
        uidvalidity: 1,
        uid: 1,
        size: raw.len() as u64,
        raw,
        arrival: at(),
    }
}

#[test]
fn a_message_over_the_processing_budget_is_quarantined_and_staff_told() {
    let d = tempfile::tempdir().unwrap();
    let cfg = config(d.path(), "max_processing_ms = 500");
    assert_eq!(cfg.limits.max_processing, Duration::from_millis(500));
    let engine = Engine::from_config(&cfg).unwrap();
    let mut store = Store::in_memory().unwrap();
    let slow = SlowWork {
        base: Instant::now(),
        reads: Mutex::new(0),
    };
    let done = engine
        .ingest(&mut store, &cfg.mailboxes[0], &mail(), &slow)
        .unwrap();
    assert_eq!(done.outcome, Outcome::Quarantined);
    assert_eq!(done.ticket_id, None, "no ticket, no reply to the customer");
    assert_eq!(done.queued, 1, "one notice to staff");
    let q = store.quarantined().unwrap();
    assert_eq!(q.len(), 1, "the message is stored");
    let reason = q[0].reason.clone().unwrap_or_default();
    assert!(
        reason.contains("processing budget exceeded") && reason.contains("500 ms"),
        "{reason}"
    );
    let out = store.outbox(None).unwrap();
    assert_eq!(out[0].rcpt_to, vec!["lead@vendor.test".to_string()]);
}

#[test]
fn a_message_within_the_budget_is_processed() {
    let d = tempfile::tempdir().unwrap();
    let cfg = config(d.path(), "");
    assert_eq!(cfg.limits.max_processing, Duration::from_millis(5000));
    let engine = Engine::from_config(&cfg).unwrap();
    let mut store = Store::in_memory().unwrap();
    let done = engine
        .ingest(
            &mut store,
            &cfg.mailboxes[0],
            &mail(),
            &FixedClock::new(at()),
        )
        .unwrap();
    assert_eq!(done.outcome, Outcome::Processed);
    assert!(done.ticket_id.is_some());
}
