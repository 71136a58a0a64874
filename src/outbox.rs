//! The outbox worker: sends queued mail over a few reused SMTP connections, marks it sent after 250, retries 4xx and drops, records 5xx.

use crate::backoff;
use crate::config::{SmtpConfig, Tls};
use crate::model::NewMail;
use crate::net;
use crate::shared::Shared;
use crate::store::OutboxRow;
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span, warn};

/// How one attempt ended.
#[derive(Debug)]
pub enum SendError {
    /// 4xx, a dropped connection, a timeout: try again later.
    Transient(String),
    /// 5xx: the server will never take it.
    Permanent(String),
}

impl SendError {
    fn from_lettre(e: lettre::transport::smtp::Error) -> SendError {
        if e.is_permanent() {
            SendError::Permanent(format!("{e}"))
        } else {
            // 4xx, and also a dropped connection, which lettre calls neither.
            SendError::Transient(format!("{e}"))
        }
    }
}

/// Opens an SMTP connection the way the config says, with Nagle off.
pub async fn connect(cfg: &SmtpConfig) -> Result<AsyncSmtpConnection> {
    let ep = &cfg.endpoint;
    let hello = ClientId::Domain(cfg.hello_name.clone());
    let tcp = net::tcp(&ep.host, ep.port, cfg.timeout).await?;
    let mut conn = match ep.tls {
        Tls::Implicit => {
            let tls = net::tls(ep, tcp, cfg.timeout).await?;
            AsyncSmtpConnection::connect_with_transport(Box::new(tls), &hello).await?
        }
        Tls::None | Tls::StartTls => tokio::time::timeout(
            cfg.timeout,
            AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &hello),
        )
        .await
        .context("SMTP greeting timed out")??,
    };
    if ep.tls == Tls::StartTls {
        let mut b = TlsParameters::builder(ep.host.clone());
        if let Some(ca) = &ep.ca_file {
            let pem = std::fs::read(ca).with_context(|| format!("cannot read {}", ca.display()))?;
            b = b.add_root_certificate(Certificate::from_pem(&pem)?);
        }
        conn.starttls(b.build_rustls()?, &hello)
            .await
            .context("STARTTLS")?;
    }
    if let (Some(user), Some(pass)) = (&cfg.username, &cfg.password) {
        conn.auth(
            &[Mechanism::Plain, Mechanism::Login],
            &Credentials::new(user.clone(), pass.0.clone()),
        )
        .await
        .context("SMTP authentication")?;
    }
    Ok(conn)
}

/// One SMTP connection, opened when needed and reused while it lives.
pub struct Sender {
    cfg: SmtpConfig,
    conn: Option<AsyncSmtpConnection>,
}

impl Sender {
    pub fn new(cfg: SmtpConfig) -> Sender {
        Sender { cfg, conn: None }
    }

    pub async fn send(&mut self, row: &OutboxRow) -> Result<(), SendError> {
        let from = row
            .mail_from
            .parse()
            .map_err(|e| SendError::Permanent(format!("bad sender {}: {e}", row.mail_from)))?;
        let to = row
            .rcpt_to
            .iter()
            .map(|r| r.parse())
            .collect::<Result<Vec<lettre::Address>, _>>()
            .map_err(|e| SendError::Permanent(format!("bad recipient: {e}")))?;
        let envelope =
            Envelope::new(Some(from), to).map_err(|e| SendError::Permanent(format!("{e}")))?;
        if self.conn.as_ref().is_some_and(|c| c.has_broken()) {
            self.conn = None;
        }
        if self.conn.is_none() {
            let c = connect(&self.cfg)
                .await
                .map_err(|e| SendError::Transient(format!("{e:#}")))?;
            self.conn = Some(c);
        }
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| SendError::Transient("no connection".into()))?;
        // lettre's own timeout covers only the connect.
        let r = tokio::time::timeout(self.cfg.timeout, conn.send(&envelope, &row.raw)).await;
        match r {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => {
                let err = SendError::from_lettre(e);
                if matches!(err, SendError::Transient(_))
                    || self.conn.as_ref().is_some_and(|c| c.has_broken())
                {
                    self.conn = None;
                }
                if let Some(c) = self.conn.as_mut() {
                    // Reset the transaction so the next mail starts clean.
                    let _ = c.command(lettre::transport::smtp::commands::Rset).await;
                }
                Err(err)
            }
            Err(_) => {
                self.conn = None;
                Err(SendError::Transient("SMTP send timed out".into()))
            }
        }
    }

    pub async fn close(&mut self) {
        if let Some(mut c) = self.conn.take() {
            let _ = c.quit().await;
        }
    }
}

/// Sends what is due until `cancel` fires. With `once`, returns when nothing
/// queued is due within `drain_for`.
pub async fn run(shared: Arc<Shared>, cancel: CancellationToken, once: bool) -> Result<()> {
    let span = info_span!("outbox");
    async move {
        let mut senders: Vec<Sender> = (0..CONNECTIONS)
            .map(|_| Sender::new(shared.smtp.clone()))
            .collect();
        let drain_for = chrono::Duration::seconds(60);
        let started = shared.clock.now();
        loop {
            let sent_any = send_due(&shared, &mut senders, &cancel).await?;
            if cancel.is_cancelled() {
                break;
            }
            if sent_any {
                continue;
            }
            let next = blocking(&shared, |st| st.next_outbox_due()).await?;
            let now = shared.clock.now();
            if once {
                match next {
                    Some(t) if t <= started + drain_for => {}
                    _ => break,
                }
            }
            let wait = next
                .map(|t| (t - now).to_std().unwrap_or(Duration::ZERO))
                .unwrap_or(Duration::from_secs(60))
                .min(Duration::from_secs(60));
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shared.outbox_wake.notified() => {}
                _ = cancel.cancelled() => break,
            }
        }
        for s in &mut senders {
            s.close().await;
        }
        Ok(())
    }
    .instrument(span)
    .await
}

async fn blocking<T: Send + 'static>(
    shared: &Arc<Shared>,
    f: impl FnOnce(&mut crate::store::Store) -> Result<T> + Send + 'static,
) -> Result<T> {
    let store = shared.store.clone();
    tokio::task::spawn_blocking(move || {
        let mut st = store.lock();
        f(&mut st)
    })
    .await
    .context("store task")?
}

/// How many SMTP connections the outbox uses at most; one mail alone uses one.
const CONNECTIONS: usize = 4;
/// How many mails are claimed (attempt counted) in one store step. A crash
/// can send at most two chunks again (with the same Message-IDs): the one in
/// flight and the one whose results wait for the next step.
const CHUNK: usize = 64;

/// What the attempts of a chunk came to, waiting to be written.
#[derive(Default)]
struct Outcomes {
    sent: Vec<i64>,
    retry: Vec<(i64, DateTime<Utc>, String)>,
    failed: Vec<(i64, String, Option<NewMail>)>,
}

impl Outcomes {
    fn is_empty(&self) -> bool {
        self.sent.is_empty() && self.retry.is_empty() && self.failed.is_empty()
    }
}

/// A chunk claimed for sending: the rows with their attempt numbers.
type Claimed = Vec<(OutboxRow, u32)>;

/// One store step, one transaction: writes the outcomes of a chunk already
/// sent, then claims the next due chunk (other than the mail in flight),
/// failing the mail whose every recipient is undeliverable and counting an
/// attempt for the rest before any is made.
async fn step(
    shared: &Arc<Shared>,
    done: Outcomes,
    in_flight: Vec<i64>,
    claim: bool,
) -> Result<Claimed> {
    let now = shared.clock.now();
    if done.is_empty() && !claim {
        return Ok(Vec::new());
    }
    let failed_any = !done.failed.is_empty();
    let (claimed, skipped) = blocking(shared, move |st| {
        st.in_batch(|st| {
            if !done.sent.is_empty() || !done.retry.is_empty() {
                st.record_sends(&done.sent, &done.retry, now)?;
            }
            for (id, e, notice) in &done.failed {
                st.mark_failed(*id, e, notice.as_ref(), now)?;
            }
            if !claim {
                return Ok((Vec::new(), Vec::new()));
            }
            let mut rows = Vec::with_capacity(CHUNK);
            let mut skipped = Vec::new();
            for row in st.due_outbox_except(now, CHUNK, &in_flight)? {
                // Mail whose every recipient is known to be undeliverable is not tried.
                if !row.kind.starts_with("staff_") {
                    let gone = st.undeliverable_among(&row.rcpt_to)?;
                    if !gone.is_empty() && gone.len() == row.rcpt_to.len() {
                        let why = format!("not sent: {} marked undeliverable", gone.join(", "));
                        st.skip_outbox(row.id, &why, now)?;
                        skipped.push((row, why));
                        continue;
                    }
                }
                rows.push(row);
            }
            // Counted before the attempt: a mail that crashes us still runs out of tries.
            let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
            let attempts = st.begin_attempts(&ids)?;
            Ok((rows.into_iter().zip(attempts).collect::<Claimed>(), skipped))
        })
    })
    .await?;
    for (row, why) in skipped {
        let span = info_span!("send", outbox = row.id, ticket = row.ticket_id.map(|t| t.0), kind = %row.kind);
        let _g = span.enter();
        warn!("{why}");
    }
    if failed_any {
        // A staff notice about the failure was queued.
        shared.outbox_wake.notify_one();
    }
    Ok(claimed)
}

/// Sends every mail due now, a chunk on the wire while the store step for
/// the next runs (it writes the outcomes of the one before). Returns whether
/// any attempt was made.
async fn send_due(
    shared: &Arc<Shared>,
    senders: &mut [Sender],
    cancel: &CancellationToken,
) -> Result<bool> {
    let mut current = step(shared, Outcomes::default(), Vec::new(), true).await?;
    let any = !current.is_empty();
    let mut done = Outcomes::default();
    while !current.is_empty() {
        let rows: Vec<&OutboxRow> = current.iter().map(|(r, _)| r).collect();
        let in_flight: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let claim = !cancel.is_cancelled();
        let (results, next) = tokio::join!(
            send_all(senders, &rows),
            step(shared, std::mem::take(&mut done), in_flight, claim)
        );
        done = outcomes(shared, &current, results)?;
        current = next?;
    }
    step(shared, done, Vec::new(), false).await?;
    Ok(any)
}

/// Sorts the results of a chunk into sent, retry (with its time) and failed
/// (with the staff notice to queue), logging each.
fn outcomes(
    shared: &Arc<Shared>,
    chunk: &Claimed,
    results: Vec<Result<(), SendError>>,
) -> Result<Outcomes> {
    let now = shared.clock.now();
    let max = shared.smtp.max_attempts;
    let mut out = Outcomes::default();
    for ((row, attempts), result) in chunk.iter().zip(results) {
        let attempts = *attempts;
        let span = info_span!("send", outbox = row.id, ticket = row.ticket_id.map(|t| t.0), kind = %row.kind);
        let _g = span.enter();
        match result {
            Ok(()) => {
                info!(to = %row.rcpt_to.join(","), attempts, "sent");
                out.sent.push(row.id);
            }
            Err(SendError::Transient(e)) if attempts < max => {
                let delay = backoff::delay(
                    attempts - 1,
                    shared.smtp.retry_base,
                    Duration::from_secs(3600),
                );
                let at = now + chrono::Duration::from_std(delay).unwrap_or_default();
                warn!(
                    attempts,
                    retry_in_ms = delay.as_millis() as u64,
                    "temporary failure: {e}"
                );
                out.retry.push((row.id, at, e));
            }
            Err(SendError::Transient(e)) | Err(SendError::Permanent(e)) => {
                error!(attempts, "delivery failed for good: {e}");
                let notice = shared.engine.send_failed_notice(row, &e, now)?;
                out.failed.push((row.id, e, notice));
            }
        }
    }
    Ok(out)
}

/// Sends `rows` spread over the senders (mail `i` on connection `i % n`),
/// the connections working at once; returns each mail's result in order.
async fn send_all(senders: &mut [Sender], rows: &[&OutboxRow]) -> Vec<Result<(), SendError>> {
    let n = senders.len().min(rows.len()).max(1);
    let work = senders
        .iter_mut()
        .take(n)
        .enumerate()
        .map(|(j, sender)| async move {
            let mut out = Vec::new();
            for (i, row) in rows.iter().enumerate().skip(j).step_by(n) {
                let span =
                    info_span!("send", outbox = row.id, ticket = row.ticket_id.map(|t| t.0), kind = %row.kind);
                out.push((i, sender.send(row).instrument(span).await));
            }
            out
        });
    let mut results: Vec<Option<Result<(), SendError>>> = rows.iter().map(|_| None).collect();
    for (i, r) in join_all(work).await.into_iter().flatten() {
        results[i] = Some(r);
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(SendError::Transient("not attempted".into()))))
        .collect()
}
