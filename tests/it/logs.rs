//! Log format: under systemd (JOURNAL_STREAM set) lines carry no timestamp or colour of their own but keep their fields; elsewhere they are timestamped.

use crate::harness::{MailStack, mail, ticketd_command};

/// Runs `ticketd run --once` on a support mailbox holding one customer mail; returns stderr.
async fn run_once_logging(journal_stream: Option<&str>) -> String {
    let stack = MailStack::start();
    let cfg = stack.config(|_| {});
    stack
        .deliver(&mail(
            "Ann <ann@customer.test>",
            "support@vendor.test",
            "Pool degraded",
            "log-1@customer.test",
            "",
            "Serial A1-123456 reports a degraded pool.",
        ))
        .await;
    let mut cmd = ticketd_command();
    cmd.args(["run", "--once", "--config"]).arg(&cfg.path);
    if let Some(s) = journal_stream {
        cmd.env("JOURNAL_STREAM", s);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run ticketd"))
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "run --once failed:\n{err}");
    err
}

fn starts_with_timestamp(line: &str) -> bool {
    // 2026-03-02T09:00:00.123456Z
    let b = line.as_bytes();
    b.len() > 20 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[10] == b'T'
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_systemd_lines_have_no_timestamp_or_colour_and_keep_mailbox_uid_and_ticket() {
    // Set, but not naming this process's stderr (a pipe): plain lines.
    let err = run_once_logging(Some("8:12345")).await;
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "no log lines");
    for l in &lines {
        assert!(!starts_with_timestamp(l), "a timestamp in {l:?}");
        assert!(!l.contains('\u{1b}'), "colour codes in {l:?}");
    }
    let processed = lines
        .iter()
        .find(|l| l.contains("processed"))
        .unwrap_or_else(|| panic!("no `processed` line in:\n{err}"));
    assert!(
        processed.starts_with(" INFO") || processed.starts_with("INFO"),
        "{processed}"
    );
    for field in [
        "mailbox=support",
        "uid=1",
        "ticket=1",
        "outcome=\"processed\"",
    ] {
        assert!(
            processed.contains(field),
            "{field} missing from {processed:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_systemd_lines_are_timestamped() {
    let err = run_once_logging(None).await;
    let processed = err
        .lines()
        .find(|l| l.contains("processed"))
        .unwrap_or_else(|| panic!("no `processed` line in:\n{err}"));
    assert!(starts_with_timestamp(processed), "{processed:?}");
    assert!(
        !processed.contains('\u{1b}'),
        "colour on a pipe: {processed:?}"
    );
}
