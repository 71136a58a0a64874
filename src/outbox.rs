//! The outbox worker: sends queued mail over one reused SMTP connection, marks it sent after 250, retries 4xx and drops, records 5xx.

use crate::backoff;
use crate::config::{SmtpConfig, Tls};
use crate::daemon::Shared;
use crate::net;
use crate::store::OutboxRow;
use anyhow::{Context, Result, anyhow};
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
        let mut sender = Sender::new(shared.smtp.clone());
        let drain_for = chrono::Duration::seconds(60);
        let started = shared.clock.now();
        loop {
            let sent_any = send_due(&shared, &mut sender, &cancel).await?;
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
        sender.close().await;
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

/// Sends every mail due now. Returns whether any attempt was made.
async fn send_due(
    shared: &Arc<Shared>,
    sender: &mut Sender,
    cancel: &CancellationToken,
) -> Result<bool> {
    let now = shared.clock.now();
    let due = blocking(shared, move |st| st.due_outbox(now, 200)).await?;
    if due.is_empty() {
        return Ok(false);
    }
    let max = shared.smtp.max_attempts;
    let retry_base = shared.smtp.retry_base;
    for row in due {
        if cancel.is_cancelled() {
            break;
        }
        let span = info_span!("send", outbox = row.id, ticket = row.ticket_id, kind = %row.kind);
        let id = row.id;
        if !row.kind.starts_with("staff_") {
            let rcpt = row.rcpt_to.clone();
            let gone = blocking(shared, move |st| st.undeliverable_among(&rcpt)).await?;
            if !gone.is_empty() && gone.len() == row.rcpt_to.len() {
                let why = format!("not sent: {} marked undeliverable", gone.join(", "));
                let _g = span.enter();
                warn!("{why}");
                blocking(shared, move |st| st.skip_outbox(id, &why, now)).await?;
                continue;
            }
        }
        // Counted before the attempt: a mail that crashes us still runs out of tries.
        let attempts = blocking(shared, move |st| st.begin_attempt(id)).await?;
        let result = sender.send(&row).instrument(span.clone()).await;
        let now = shared.clock.now();
        let _g = span.enter();
        match result {
            Ok(()) => {
                info!(to = %row.rcpt_to.join(","), attempts, "sent");
                blocking(shared, move |st| st.mark_sent(id, now)).await?;
            }
            Err(SendError::Transient(e)) if attempts < max => {
                let delay = backoff::delay(attempts - 1, retry_base, Duration::from_secs(3600));
                let at = now + chrono::Duration::from_std(delay).unwrap_or_default();
                warn!(
                    attempts,
                    retry_in_ms = delay.as_millis() as u64,
                    "temporary failure: {e}"
                );
                blocking(shared, move |st| st.mark_retry(id, at, &e)).await?;
            }
            Err(SendError::Transient(e)) | Err(SendError::Permanent(e)) => {
                error!(attempts, "delivery failed for good: {e}");
                let notice = shared.engine.send_failed_notice(&row, &e, now)?;
                blocking(shared, move |st| {
                    st.mark_failed(id, &e, notice.as_ref(), now)
                })
                .await?;
                shared.outbox_wake.notify_one();
            }
        }
    }
    Ok(true)
}
