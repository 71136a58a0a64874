//! The outbox worker: sends queued mail over a few reused SMTP connections, marks it sent after 250, retries 4xx and drops, records 5xx.

use crate::backoff;
use crate::config::{SmtpConfig, Tls};
use crate::daemon::Shared;
use crate::net;
use crate::store::OutboxRow;
use anyhow::{Context, Result, anyhow};
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
        let mut st = store.lock().map_err(|_| anyhow!("store lock poisoned"))?;
        f(&mut st)
    })
    .await
    .context("store task")?
}

/// How many SMTP connections the outbox uses at most; one mail alone uses one.
const CONNECTIONS: usize = 4;
/// How many mails are attempted between two writes of their results. A crash
/// in between sends at most these again (with the same Message-IDs).
const CHUNK: usize = 64;

/// Sends every mail due now. Returns whether any attempt was made.
async fn send_due(
    shared: &Arc<Shared>,
    senders: &mut [Sender],
    cancel: &CancellationToken,
) -> Result<bool> {
    let now = shared.clock.now();
    let due = blocking(shared, move |st| st.due_outbox(now, 4 * CHUNK)).await?;
    if due.is_empty() {
        return Ok(false);
    }
    let max = shared.smtp.max_attempts;
    let retry_base = shared.smtp.retry_base;
    for chunk in due.chunks(CHUNK) {
        if cancel.is_cancelled() {
            break;
        }
        // Mail whose every recipient is known to be undeliverable is not tried.
        let check: Vec<(i64, Vec<String>)> = chunk
            .iter()
            .filter(|r| !r.kind.starts_with("staff_"))
            .map(|r| (r.id, r.rcpt_to.clone()))
            .collect();
        let skipped: Vec<(i64, String)> = blocking(shared, move |st| {
            let mut skipped = Vec::new();
            for (id, rcpt) in check {
                let gone = st.undeliverable_among(&rcpt)?;
                if !gone.is_empty() && gone.len() == rcpt.len() {
                    let why = format!("not sent: {} marked undeliverable", gone.join(", "));
                    st.skip_outbox(id, &why, now)?;
                    skipped.push((id, why));
                }
            }
            Ok(skipped)
        })
        .await?;
        let mut rows: Vec<&OutboxRow> = Vec::with_capacity(chunk.len());
        for row in chunk {
            match skipped.iter().find(|(id, _)| *id == row.id) {
                Some((_, why)) => {
                    let span = info_span!("send", outbox = row.id, ticket = row.ticket_id, kind = %row.kind);
                    let _g = span.enter();
                    warn!("{why}");
                }
                None => rows.push(row),
            }
        }
        if rows.is_empty() {
            continue;
        }
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        // Counted before the attempt: a mail that crashes us still runs out of tries.
        let attempts = blocking(shared, move |st| st.begin_attempts(&ids)).await?;
        let results = send_all(senders, &rows).await;
        let now = shared.clock.now();
        let (mut sent, mut retry, mut failed) = (Vec::new(), Vec::new(), Vec::new());
        for ((row, result), attempts) in rows.iter().copied().zip(results).zip(attempts) {
            let span =
                info_span!("send", outbox = row.id, ticket = row.ticket_id, kind = %row.kind);
            let _g = span.enter();
            match result {
                Ok(()) => {
                    info!(to = %row.rcpt_to.join(","), attempts, "sent");
                    sent.push(row.id);
                }
                Err(SendError::Transient(e)) if attempts < max => {
                    let delay = backoff::delay(attempts - 1, retry_base, Duration::from_secs(3600));
                    let at = now + chrono::Duration::from_std(delay).unwrap_or_default();
                    warn!(
                        attempts,
                        retry_in_ms = delay.as_millis() as u64,
                        "temporary failure: {e}"
                    );
                    retry.push((row.id, at, e));
                }
                Err(SendError::Transient(e)) | Err(SendError::Permanent(e)) => {
                    error!(attempts, "delivery failed for good: {e}");
                    failed.push((row, e));
                }
            }
        }
        blocking(shared, move |st| st.record_sends(&sent, &retry, now)).await?;
        for (row, e) in failed {
            let id = row.id;
            let notice = shared.engine.send_failed_notice(row, &e, now)?;
            blocking(shared, move |st| {
                st.mark_failed(id, &e, notice.as_ref(), now)
            })
            .await?;
            shared.outbox_wake.notify_one();
        }
    }
    Ok(true)
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
                    info_span!("send", outbox = row.id, ticket = row.ticket_id, kind = %row.kind);
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
