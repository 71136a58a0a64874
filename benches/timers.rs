//! `cargo bench --bench timers`: finding the next due timer and a scheduler tick with nothing due, with a million pending timers.
//!
//!   cargo bench --bench timers [-- --count N]
//!
//! `cargo test --all-targets` runs it too, without `--bench`: then it stores
//! 1,000 timers, as a check that it still runs.

use anyhow::{Context, Result, bail};
use chrono::{Duration, TimeZone, Utc};
use std::time::Instant;
use ticketd::store::Store;

fn main() -> Result<()> {
    let mut count = None;
    let mut bench = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--count" => count = Some(args.next().context("--count N")?.parse::<usize>()?),
            "--bench" => bench = true,
            other => bail!("unknown argument {other}"),
        }
    }
    let n = count.unwrap_or(if bench { 1_000_000 } else { 1_000 });
    let work = tempfile::tempdir()?;
    let path = work.path().join("timers.db");
    drop(Store::open(&path)?);
    let t0 = Utc
        .with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
        .single()
        .context("date")?;
    let fill = Instant::now();
    {
        // Filled in bulk with SQL: the store's own path sets them one mail at a time.
        let mut conn = rusqlite::Connection::open(&path)?;
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO contacts (address, created_at) VALUES ('ann@example.net', '2026-03-02T09:00:00.000000Z')",
            [],
        )?;
        {
            let mut ticket = tx.prepare(
                "INSERT INTO tickets (subject, status, requester_id, mailbox, language, created_at, updated_at)
                 VALUES ('t', 'open', 1, 'support', 'en', '2026-03-02T09:00:00.000000Z', '2026-03-02T09:00:00.000000Z')",
            )?;
            let mut timer = tx.prepare(
                "INSERT INTO timers (ticket_id, kind, cause, due_at, rule, recipient, created_at)
                 VALUES (?1, 'escalation', ?2, ?3, 'NX-03', 'Director', '2026-03-02T09:00:00.000000Z')",
            )?;
            for i in 0..n {
                if i % 2 == 0 {
                    ticket.execute([])?;
                }
                let due =
                    t0 + Duration::hours(1) + Duration::seconds((i as i64 * 7919) % 31_536_000);
                timer.execute(rusqlite::params![
                    (i / 2 + 1) as i64,
                    serde_json::to_string(&ticketd::model::TimerCause::Escalation {
                        to: "Director".into(),
                        after: Some(format!("{}h", 8 * (i % 2 + 1))),
                    })?,
                    ticketd::store::ts(due)
                ])?;
            }
        }
        tx.commit()?;
    }
    println!(
        "timers: {n} pending, stored in {:.1} s",
        fill.elapsed().as_secs_f64()
    );

    let store = parking_lot::Mutex::new(Store::open(&path)?);
    let engine = ticketd::explain::default_engine(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates"),
    )?;
    let runs = 1000;
    let mut next = None;
    let t = Instant::now();
    for _ in 0..runs {
        next = store.lock().next_timer_due()?;
    }
    let next_us = t.elapsed().as_secs_f64() * 1e6 / runs as f64;
    let t = Instant::now();
    for _ in 0..runs {
        let done = ticketd::scheduler::tick(&engine, &store, t0)?;
        assert_eq!(done, ticketd::scheduler::Tick::default());
    }
    let tick_us = t.elapsed().as_secs_f64() * 1e6 / runs as f64;
    println!(
        "timers: next due {} in {next_us:.1} µs; a tick with nothing due {tick_us:.1} µs",
        next.map(|t| t.to_rfc3339()).unwrap_or_default()
    );
    Ok(())
}
