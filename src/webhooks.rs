//! The webhook sender: due deliveries POSTed through `http`, signed per Standard Webhooks 1.0 at each attempt under the id fixed when they were queued, retried with backoff over their webhook's lifetime, recorded delivered or failed and counted in the metrics.

use crate::backoff;
use crate::config::Webhook;
use crate::hooks;
use crate::http;
use crate::model::HookKind;
use crate::shared::Shared;
use crate::store::DeliveryRow;
use anyhow::Result;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span, warn};

/// The loop's name in the heartbeats.
pub const SENDER: &str = "webhooks";
/// Deliveries attempted at once.
const BATCH: usize = 16;
/// The first retry comes after about this, then twice as long each time...
const RETRY_BASE: Duration = Duration::from_secs(5);
/// ...up to this.
const RETRY_CAP: Duration = Duration::from_secs(3600);
/// The longest answer read from a receiver.
const MAX_ANSWER: usize = 64 * 1024;

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Delivered(u16),
    /// Tried again at the time set before the attempt.
    Retry(Option<u16>, String),
    Failed(Option<u16>, String),
}

impl Outcome {
    fn label(&self) -> &'static str {
        match self {
            Outcome::Delivered(_) => "delivered",
            Outcome::Retry(..) => "retried",
            Outcome::Failed(..) => "failed",
        }
    }
}

/// Sends due deliveries until `cancel`; with `once`, those due now, then returns.
pub async fn run(shared: Arc<Shared>, cancel: CancellationToken, once: bool) -> Result<()> {
    let _registered = shared.health.register(SENDER);
    async move {
        // Rows left by webhooks no longer configured are failed once, at start.
        let mut swept = false;
        loop {
            let hooks = shared.webhooks();
            if hooks.is_empty() && swept {
                // No webhook configured: nothing to deliver until a reload
                // brings one, and the store is left alone meanwhile.
                if once || cancel.is_cancelled() {
                    break;
                }
                shared.health.waiting(SENDER);
                tokio::select! {
                    _ = tokio::time::sleep(crate::shared::POLL) => {}
                    _ = cancel.cancelled() => break,
                }
                continue;
            }
            swept = true;
            let now = shared.clock.now();
            let step = hooks.iter().map(|h| h.timeout).max().unwrap_or_default();
            shared
                .health
                .busy(SENDER, "delivering", step + Duration::from_secs(60));
            let due = shared
                .with_store(move |st| st.due_deliveries(now, BATCH))
                .await?;
            if !due.is_empty() {
                let attempts = due.into_iter().map(|row| attempt(&shared, &hooks, row));
                for r in futures_util::future::join_all(attempts).await {
                    r?;
                }
                if !cancel.is_cancelled() {
                    continue;
                }
            }
            if once || cancel.is_cancelled() {
                break;
            }
            let next = shared.with_store(|st| st.next_delivery_due()).await?;
            let wait = next
                .map(|t| (t - shared.clock.now()).to_std().unwrap_or(Duration::ZERO))
                .unwrap_or(crate::shared::POLL)
                .min(crate::shared::POLL);
            shared.health.waiting(SENDER);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = cancel.cancelled() => break,
            }
        }
        Ok(())
    }
    .instrument(info_span!("webhooks"))
    .await
}

/// One attempt at `row`: counted and its retry set first, then sent, then
/// its outcome recorded.
async fn attempt(shared: &Arc<Shared>, hooks: &[Webhook], row: DeliveryRow) -> Result<()> {
    let span = info_span!("delivery", webhook = %row.webhook, event = %row.event, id = %row.msg_id);
    async {
        let now = shared.clock.now();
        let id = row.id;
        let Some(hook) = hooks.iter().find(|h| h.sub.name == row.webhook).cloned() else {
            let why = format!("no webhook named {} in the configuration", row.webhook);
            error!("delivery failed for good: {why}");
            return record(shared, &row, Outcome::Failed(None, why), now).await;
        };
        let expires =
            row.created_at + chrono::Duration::from_std(hook.lifetime).unwrap_or_default();
        if let Some(why) = lifetime_over(&row, expires, now) {
            error!("delivery failed for good: {why}");
            return record(shared, &row, Outcome::Failed(None, why), now).await;
        }
        // Not before this attempt has had its time: another daemon that
        // reads it due meanwhile would deliver it too.
        let delay = backoff::delay(row.attempts, RETRY_BASE, RETRY_CAP);
        let delay = match shared.leases.enabled {
            true => delay.max(hook.timeout * 2),
            false => delay,
        };
        let retry_at = now + chrono::Duration::from_std(delay).unwrap_or_default();
        let Some(n) = shared
            .with_store(move |st| st.begin_delivery(id, now, retry_at))
            .await?
        else {
            return Ok(());
        };
        let answered = send(&hook, &row, now).await;
        let outcome = judge(answered, retry_at < expires);
        match &outcome {
            Outcome::Delivered(s) => info!(attempt = n, status = s, "webhook delivered"),
            Outcome::Retry(_, why) => warn!(
                attempt = n,
                retry_in_s = delay.as_secs(),
                "webhook attempt failed: {why}; retrying"
            ),
            Outcome::Failed(_, why) => {
                error!(attempt = n, "webhook delivery failed for good: {why}")
            }
        }
        record(shared, &row, outcome, shared.clock.now()).await
    }
    .instrument(span)
    .await
}

/// Why a delivery whose lifetime has ended fails without another attempt:
/// one still queued then was tried already and either its last attempt
/// was counted with no outcome recorded (the sender stopped while it was
/// on the wire: a kill, a crash) or the daemon was down when it fell due.
/// Without this, a delivery whose every attempt stops the sender would
/// stay queued for ever. A delivery never tried gets its one attempt.
fn lifetime_over(row: &DeliveryRow, expires: DateTime<Utc>, now: DateTime<Utc>) -> Option<String> {
    (row.attempts > 0 && now >= expires).then(|| {
        format!(
            "its lifetime ended after {} attempt(s) without delivery",
            row.attempts
        )
    })
}

/// What an answer (or its absence) means: 2xx delivered; a refusal that
/// will not change (4xx but 408, 409, 425 and 429) failed; else tried again
/// while the delivery has lifetime left.
fn judge(answered: Result<http::Answer, http::PostError>, time_left: bool) -> Outcome {
    let (status, why) = match answered {
        Ok(a) if (200..300).contains(&a.status) => return Outcome::Delivered(a.status),
        Ok(a) => {
            // One line, whatever the receiver wrote: it goes into the log,
            // the delivery row and `ticketd webhooks`.
            let text = crate::text::one_line(&String::from_utf8_lossy(&a.body), 200);
            let why = match text.is_empty() {
                true => format!("HTTP {}", a.status),
                false => format!("HTTP {}: {text}", a.status),
            };
            if (400..500).contains(&a.status) && ![408, 409, 425, 429].contains(&a.status) {
                return Outcome::Failed(Some(a.status), why);
            }
            (Some(a.status), why)
        }
        Err(e) => (None, e.to_string()),
    };
    match time_left {
        true => Outcome::Retry(status, why),
        false => Outcome::Failed(
            status,
            format!("{why} (still failing at the end of its lifetime)"),
        ),
    }
}

async fn record(
    shared: &Arc<Shared>,
    row: &DeliveryRow,
    outcome: Outcome,
    now: DateTime<Utc>,
) -> Result<()> {
    shared.metrics.webhook(&row.event, outcome.label());
    let id = row.id;
    shared
        .with_store(move |st| match outcome {
            Outcome::Delivered(s) => st.end_delivery(id, "delivered", Some(s), None, now),
            Outcome::Retry(s, why) => st.end_delivery(id, "queued", s, Some(&why), now),
            Outcome::Failed(s, why) => st.end_delivery(id, "failed", s, Some(&why), now),
        })
        .await
}

/// The POST of one attempt, its signature made for this attempt's time.
async fn send(
    hook: &Webhook,
    row: &DeliveryRow,
    now: DateTime<Utc>,
) -> Result<http::Answer, http::PostError> {
    let body = match (hook.sub.kind, &hook.routing_key) {
        (HookKind::Pagerduty, Some(key)) => {
            let mut v: serde_json::Value = serde_json::from_str(&row.body).unwrap_or_default();
            v["routing_key"] = serde_json::Value::String(key.0.trim().to_string());
            v.to_string()
        }
        _ => row.body.clone(),
    };
    let timestamp = now.timestamp().to_string();
    let signature = hook.signing_key.as_ref().and_then(|s| {
        let key = hooks::signing_key(&s.0).ok()?;
        Some(hooks::signature(
            &key,
            &row.msg_id,
            now.timestamp(),
            body.as_bytes(),
        ))
    });
    let mut headers = vec![
        ("webhook-id", row.msg_id.as_str()),
        ("webhook-timestamp", timestamp.as_str()),
    ];
    if let Some(s) = &signature {
        headers.push(("webhook-signature", s.as_str()));
    }
    let who = format!("webhook {}", hook.sub.name);
    http::post(http::Post {
        who: &who,
        url: &hook.url,
        ca_file: hook.ca_file.as_deref(),
        content_type: "application/json",
        headers: &headers,
        body: body.as_bytes(),
        timeout: hook.timeout,
        max_answer: MAX_ANSWER,
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_25_a_delivery_tried_and_past_its_lifetime_fails_without_another_attempt() {
        let t0 = chrono::DateTime::UNIX_EPOCH;
        let row = |attempts| DeliveryRow {
            id: 1,
            webhook: "ops".into(),
            event: "ticket.created".into(),
            msg_id: "msg_1".into(),
            ticket_id: Some(1),
            body: "{}".into(),
            status: "queued".into(),
            attempts,
            next_attempt_at: t0,
            created_at: t0,
            settled_at: None,
            last_status: None,
            last_error: None,
        };
        let expires = t0 + chrono::Duration::hours(24);
        let later = expires + chrono::Duration::seconds(1);
        assert!(
            lifetime_over(&row(3), expires, later)
                .is_some_and(|why| why.contains("after 3 attempt(s)"))
        );
        assert_eq!(lifetime_over(&row(3), expires, t0), None, "lifetime left");
        assert_eq!(
            lifetime_over(&row(0), expires, later),
            None,
            "never tried: one attempt"
        );
    }

    /// A receiver's answer goes into the log, the delivery row and
    /// `ticketd webhooks`: one line, its control characters (newlines that
    /// would forge listing or log lines, terminal escapes) made spaces.
    #[test]
    fn a_receivers_answer_is_recorded_on_one_line_without_control_characters() {
        let answer = |status, body: &'static str| {
            Ok(http::Answer {
                status,
                body: bytes::Bytes::from_static(body.as_bytes()),
            })
        };
        let forged = "oops\n     9  delivered   1  ops  ticket.created\x1b[2J\r\x07";
        for (status, time_left) in [(500, true), (500, false), (400, true)] {
            let why = match judge(answer(status, forged), time_left) {
                Outcome::Retry(_, why) | Outcome::Failed(_, why) => why,
                o => panic!("{o:?}"),
            };
            assert!(!why.chars().any(char::is_control), "{why:?}");
            assert!(why.starts_with(&format!("HTTP {status}: oops ")), "{why:?}");
        }
        assert_eq!(judge(answer(204, ""), true), Outcome::Delivered(204));
        assert_eq!(
            judge(answer(503, " \n "), true),
            Outcome::Retry(Some(503), "HTTP 503".into())
        );
    }
}
