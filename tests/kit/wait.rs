//! Waiting on conditions with deadlines: polled, failing with what was awaited, never a sleep standing in for a condition.

use std::time::{Duration, Instant};

/// How often a condition is checked while waiting for it.
pub const POLL: Duration = Duration::from_millis(20);

/// Waits for `cond` to hold, polling, failing after `deadline`.
pub async fn wait_until<F: FnMut() -> bool>(what: &str, deadline: Duration, mut cond: F) {
    let start = Instant::now();
    let mut poll = tokio::time::interval(POLL);
    loop {
        poll.tick().await;
        if cond() {
            return;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
    }
}

/// Waits for the asynchronous `cond` (an IMAP count, an HTTP scrape) to
/// hold, polling, failing after `deadline` with `what` and `detail()`.
pub async fn wait_until_async<F, Fut>(
    what: &str,
    deadline: Duration,
    mut cond: F,
    detail: impl Fn() -> String,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    let mut poll = tokio::time::interval(POLL);
    loop {
        poll.tick().await;
        if cond().await {
            return;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}:\n{}",
            detail()
        );
    }
}

/// Waits up to `deadline` for `cond`; whether it held (for aiming a fault
/// at a moment that may not come, as when the work is already done).
pub async fn held_within<F: FnMut() -> bool>(deadline: Duration, mut cond: F) -> bool {
    let start = Instant::now();
    let mut poll = tokio::time::interval(POLL);
    loop {
        poll.tick().await;
        if cond() {
            return true;
        }
        if start.elapsed() >= deadline {
            return false;
        }
    }
}
