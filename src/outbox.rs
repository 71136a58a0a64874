//! The outbox worker: sends queued mail over a few reused SMTP connections, records each mail sent right after its 250, retries 4xx, drops and unreachable servers within a queue lifetime, records 5xx.

use crate::backoff;
use crate::clock::{Clock, SharedClock};
use crate::config::{Login, SmtpConfig, Tls};
use crate::health;
use crate::metrics::Metrics;
use crate::model::NewMail;
use crate::net;
use crate::oauth::Tokens;
use crate::secret::Secret;
use crate::shared::Shared;
use crate::store::OutboxRow;
use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use futures_util::future::join_all;
use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream};
use lettre::transport::smtp::extension::ClientId;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span, warn};

/// How one attempt ended.
#[derive(Debug)]
pub enum SendError {
    /// No connection could be opened (refused, no greeting, a timeout, a
    /// failed STARTTLS or login): nothing was tried, and the rest of the
    /// chunk is deferred rather than tried on fresh connections in turn.
    NoConnection(String),
    /// The server gave no reply for this mail (a timeout, a dropped
    /// connection): not a real attempt; try again later.
    Unanswered(String),
    /// 4xx: the server answered, a real attempt; try again later.
    Transient(String),
    /// 5xx: the server will never take it.
    Permanent(String),
    /// Not tried: another node claimed it (this one was paused or cut off
    /// past its lease); nothing of it is recorded here.
    Taken,
}

impl SendError {
    fn from_lettre(e: lettre::transport::smtp::Error) -> SendError {
        if e.is_permanent() {
            SendError::Permanent(format!("{e}"))
        } else if e.status().is_some() {
            SendError::Transient(format!("{e}"))
        } else {
            // A dropped connection or a timeout, which lettre calls neither.
            SendError::Unanswered(format!("{e}"))
        }
    }

    /// The result class `/metrics` counts it under.
    fn class(&self) -> &'static str {
        match self {
            SendError::NoConnection(_) => "no_connection",
            SendError::Unanswered(_) => "unanswered",
            SendError::Transient(_) => "4xx",
            SendError::Permanent(_) => "5xx",
            SendError::Taken => "taken",
        }
    }

    /// Whether the server answered for the mail (a real attempt).
    fn reached(&self) -> bool {
        matches!(self, SendError::Transient(_) | SendError::Permanent(_))
    }
}

/// Opens an SMTP connection the way the config says, with Nagle off, and
/// logs in. With OAuth2, a refused token is renewed once and the login
/// tried again.
pub async fn connect(cfg: &SmtpConfig, clock: &dyn Clock) -> Result<AsyncSmtpConnection> {
    let who = format!("SMTP relay {}:{}", cfg.endpoint.host, cfg.endpoint.port);
    let (user, login) = match (&cfg.username, &cfg.login) {
        (Some(user), Some(login)) => (user, login),
        _ => return open(cfg, &who).await,
    };
    let o = match login {
        Login::Password(password) => {
            let mut conn = open(cfg, &who).await?;
            let credentials = Credentials::new(user.clone(), password.0.clone());
            timed(
                cfg,
                &who,
                conn.auth(&[Mechanism::Plain, Mechanism::Login], &credentials),
            )
            .await?
            .with_context(|| format!("{who}: login as {user}"))?;
            return Ok(conn);
        }
        Login::OAuth2(o) => o,
    };
    let token = Tokens::of(o).get(clock.monotonic()).await?;
    let mut conn = open(cfg, &who).await?;
    if !conn
        .server_info()
        .supports_auth_mechanism(Mechanism::Xoauth2)
    {
        bail!("{who}: the relay does not offer AUTH XOAUTH2");
    }
    match timed(cfg, &who, xoauth2(&mut conn, user, &token)).await? {
        Ok(()) => return Ok(conn),
        // Expired or revoked before its time: one new token, one more try.
        Err(e) if e.is_permanent() => info!("{who}: access token refused ({e}): getting a new one"),
        Err(e) => return Err(anyhow!(e).context(format!("{who}: XOAUTH2 login as {user}"))),
    }
    let token = Tokens::of(o).renew(&token, clock.monotonic()).await?;
    timed(cfg, &who, xoauth2(&mut conn, user, &token))
        .await?
        .with_context(|| {
            format!("{who}: the XOAUTH2 login as {user} was refused, with a new access token too")
        })?;
    Ok(conn)
}

/// A login step within the configured timeout (lettre's covers only the connect).
async fn timed<T>(
    cfg: &SmtpConfig,
    who: &str,
    f: impl std::future::Future<Output = T>,
) -> Result<T> {
    tokio::time::timeout(cfg.timeout, f)
        .await
        .map_err(|_| anyhow!("{who}: the login timed out"))
}

/// `AUTH XOAUTH2` with the initial response. lettre's own gives up at the
/// error challenge a server sends before its refusal (a JSON status) and
/// leaves the exchange open, so it is driven here: the challenge is
/// answered with an empty line and the refusal comes back as its 5xx; the
/// connection can log in again.
async fn xoauth2(
    conn: &mut AsyncSmtpConnection,
    user: &str,
    token: &Secret,
) -> Result<(), lettre::transport::smtp::Error> {
    let first = base64::engine::general_purpose::STANDARD
        .encode(crate::config::Mechanism::XOAuth2.initial_response(user, "", 0, token));
    let r = conn
        .command(SmtpLine(format!("AUTH XOAUTH2 {first}")))
        .await?;
    if r.has_code(334) {
        conn.command(SmtpLine(String::new())).await?;
    }
    Ok(())
}

/// One command line as it is (with its CRLF).
struct SmtpLine(String);

impl std::fmt::Display for SmtpLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\r\n", self.0)
    }
}

/// The SMTP session up to the login: TCP, TLS (implicit, or STARTTLS
/// negotiated here so that it uses `net`'s TLS like every connection), EHLO.
async fn open(cfg: &SmtpConfig, who: &str) -> Result<AsyncSmtpConnection> {
    let ep = &cfg.endpoint;
    let hello = ClientId::Domain(cfg.hello_name.clone());
    let peer = net::Peer {
        who,
        host: &ep.host,
        port: ep.port,
        ca_file: ep.ca_file.as_deref(),
    };
    let mut tcp = net::tcp(&ep.host, ep.port, cfg.timeout).await?;
    let stream: Box<dyn AsyncTokioStream> = match ep.tls {
        Tls::None => Box::new(tcp),
        Tls::Implicit => Box::new(net::tls(peer, tcp, cfg.timeout).await?),
        Tls::StartTls => {
            let greeting = tokio::time::timeout(cfg.timeout, starttls(&mut tcp, &cfg.hello_name))
                .await
                .with_context(|| format!("{who}: STARTTLS timed out"))?
                .with_context(|| format!("{who}: STARTTLS"))?;
            let tls = net::tls(peer, tcp, cfg.timeout).await?;
            Box::new(Greeted {
                greeting,
                read: 0,
                inner: tls,
            })
        }
    };
    tokio::time::timeout(
        cfg.timeout,
        AsyncSmtpConnection::connect_with_transport(stream, &hello),
    )
    .await
    .with_context(|| format!("{who}: SMTP greeting timed out"))?
    .with_context(|| format!("{who}: SMTP session"))
}

/// RFC 3207 on the plain connection: greeting, EHLO, STARTTLS, 220. Returns
/// the greeting, which the server does not repeat after the handshake.
async fn starttls(tcp: &mut tokio::net::TcpStream, hello: &str) -> Result<Vec<u8>> {
    let mut r = tokio::io::BufReader::new(tcp);
    let (code, greeting) = smtp_reply(&mut r).await?;
    if code != 220 {
        bail!("greeted with {}", String::from_utf8_lossy(&greeting).trim());
    }
    r.get_mut()
        .write_all(format!("EHLO {hello}\r\n").as_bytes())
        .await?;
    let (code, ehlo) = smtp_reply(&mut r).await?;
    let offers = String::from_utf8_lossy(&ehlo).lines().any(|l| {
        l.get(4..)
            .is_some_and(|k| k.trim().eq_ignore_ascii_case("STARTTLS"))
    });
    if code != 250 || !offers {
        bail!("the relay does not offer STARTTLS");
    }
    r.get_mut().write_all(b"STARTTLS\r\n").await?;
    let (code, answer) = smtp_reply(&mut r).await?;
    if code != 220 {
        bail!("refused: {}", String::from_utf8_lossy(&answer).trim());
    }
    // Nothing may come before the handshake (RFC 3207 section 4.2).
    if !r.buffer().is_empty() {
        bail!("the relay sent data after its 220, before the TLS handshake");
    }
    Ok(greeting)
}

/// One SMTP reply, every line of it, and its code.
async fn smtp_reply<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> Result<(u16, Vec<u8>)> {
    let mut all = Vec::new();
    loop {
        let mut line = Vec::new();
        let n = (&mut *r).take(4096).read_until(b'\n', &mut line).await?;
        if n == 0 {
            bail!("the connection closed");
        }
        all.extend_from_slice(&line);
        let code = std::str::from_utf8(line.get(..3).unwrap_or_default())
            .ok()
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| {
                anyhow!(
                    "not an SMTP reply: {}",
                    String::from_utf8_lossy(&line).trim()
                )
            })?;
        if line.get(3) != Some(&b'-') {
            return Ok((code, all));
        }
        if all.len() > 64 * 1024 {
            bail!("an SMTP reply longer than 64 KiB");
        }
    }
}

/// The TLS stream after STARTTLS, serving the server's greeting first: lettre
/// starts every session by reading one.
#[derive(Debug)]
struct Greeted {
    greeting: Vec<u8>,
    read: usize,
    inner: net::TlsStream,
}

impl tokio::io::AsyncRead for Greeted {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let me = &mut *self;
        if me.read < me.greeting.len() {
            let rest = &me.greeting[me.read..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            me.read += n;
            return std::task::Poll::Ready(Ok(()));
        }
        std::pin::Pin::new(&mut me.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Greeted {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for Greeted {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.inner.peer_addr()
    }
}

/// One SMTP connection, opened when needed and reused while it lives.
pub struct Sender {
    cfg: SmtpConfig,
    clock: SharedClock,
    conn: Option<AsyncSmtpConnection>,
}

impl Sender {
    pub fn new(cfg: SmtpConfig, clock: SharedClock) -> Sender {
        Sender {
            cfg,
            clock,
            conn: None,
        }
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
        self.ensure_connected().await?;
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| SendError::NoConnection("no connection".into()))?;
        // lettre's own timeout covers only the connect.
        let r = tokio::time::timeout(self.cfg.timeout, conn.send(&envelope, &row.raw)).await;
        match r {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => {
                let err = SendError::from_lettre(e);
                if matches!(err, SendError::Transient(_) | SendError::Unanswered(_))
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
                Err(SendError::Unanswered("SMTP send timed out".into()))
            }
        }
    }

    /// Whether a connection is open and not known to be broken.
    pub fn is_connected(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| !c.has_broken())
    }

    /// Opens the connection unless one is open.
    pub async fn ensure_connected(&mut self) -> Result<(), SendError> {
        if self.conn.as_ref().is_some_and(|c| c.has_broken()) {
            self.conn = None;
        }
        if self.conn.is_none() {
            let c = connect(&self.cfg, &*self.clock)
                .await
                .map_err(|e| SendError::NoConnection(format!("{e:#}")))?;
            self.conn = Some(c);
        }
        Ok(())
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
    let _registered = shared.health.register(health::OUTBOX);
    async move {
        let mut senders: Vec<Sender> = (0..CONNECTIONS)
            .map(|_| Sender::new(shared.smtp(), shared.clock.clone()))
            .collect();
        replay_sent_journal(&shared).await?;
        let drain_for = chrono::Duration::seconds(60);
        let started = shared.clock.now();
        loop {
            shared
                .health
                .busy(health::OUTBOX, "sending", step_timeout(&shared));
            let sent_any = send_due(&shared, &mut senders, &cancel).await?;
            if cancel.is_cancelled() {
                break;
            }
            if sent_any {
                continue;
            }
            let next = shared.with_store(|st| st.next_outbox_due()).await?;
            let now = shared.clock.now();
            if once {
                match next {
                    Some(t) if t <= started + drain_for => {}
                    _ => break,
                }
            }
            let wait = next
                .map(|t| (t - now).to_std().unwrap_or(Duration::ZERO))
                .unwrap_or(crate::shared::POLL)
                .min(crate::shared::POLL);
            shared.health.waiting(health::OUTBOX);
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

/// How long one outbox step (connecting, sending one mail, a store step)
/// may take before the outbox counts as stuck: each SMTP stage (connect,
/// greeting, TLS, the mail) has the SMTP timeout.
fn step_timeout(shared: &Shared) -> Duration {
    shared.smtp().timeout * 4 + Duration::from_secs(60)
}

/// Marks sent what the journal says the server accepted before a crash
/// (rows already recorded are left alone), then empties the journal.
async fn replay_sent_journal(shared: &Arc<Shared>) -> Result<()> {
    let ids = shared.sent_journal.ids()?;
    let untried = shared.sent_journal.claimed_untried()?;
    if ids.is_empty() && untried.is_empty() {
        return Ok(());
    }
    let now = shared.clock.now();
    let (n, released) = (ids.len(), untried.len());
    shared
        .with_store(move |st| {
            st.record_sends(&ids, &[], now)?;
            st.release_claims(&untried)
        })
        .await?;
    shared.sent_journal.clear()?;
    info!(
        n,
        released,
        "accepted mail from the sent journal recorded, claims of mail never tried given back"
    );
    Ok(())
}

/// How many SMTP connections the outbox uses at most; one mail alone uses one.
const CONNECTIONS: usize = 4;
/// How many mails are claimed (a claim counted) in one store step. Each
/// accepted mail is recorded right after its 250, so a kill re-sends at most
/// the mail whose 250 was not yet recorded: one per connection.
const CHUNK: usize = 64;
/// Claims with no outcome after which a mail leaves the queue (failed, staff
/// told): a mail that stops the sender every time it is sent.
pub const MAX_CLAIMS: u32 = 5;

/// What the attempts of a chunk came to, waiting to be written.
#[derive(Default)]
struct Outcomes {
    /// Accepted (and noted in the sent journal right after its 250).
    sent: Vec<i64>,
    /// Id, when, why, whether the server answered (a real attempt).
    retry: Vec<(i64, DateTime<Utc>, String, bool)>,
    /// Id, why, the staff notice, whether the server answered.
    failed: Vec<(i64, String, Option<NewMail>, bool)>,
}

impl Outcomes {
    fn is_empty(&self) -> bool {
        self.sent.is_empty() && self.retry.is_empty() && self.failed.is_empty()
    }
}

/// What a store step takes after writing outcomes.
#[derive(Clone, Copy, PartialEq)]
enum Claim {
    /// Nothing.
    Nothing,
    /// The next due chunk, without counting a claim (it will not be sent:
    /// no connection could be opened).
    Peek,
    /// The next due chunk, a claim counted for each mail before any is sent.
    Count,
}

/// One store step, one transaction: writes the outcomes of a chunk already
/// sent, then claims the next due chunk (other than the mail in flight):
/// mail with `MAX_CLAIMS` claims and no outcome is failed (staff told), mail
/// whose every recipient is undeliverable is failed unsent, and a claim is
/// counted for the rest before any is sent.
async fn step(
    shared: &Arc<Shared>,
    done: Outcomes,
    in_flight: Vec<i64>,
    claim: Claim,
) -> Result<Vec<OutboxRow>> {
    let now = shared.clock.now();
    if done.is_empty() && claim == Claim::Nothing {
        return Ok(Vec::new());
    }
    let mut failed_any = !done.failed.is_empty();
    let sh = shared.clone();
    let (claimed, skipped, given_up) = shared.with_store(move |st| {
        st.in_batch(|st| {
            if !done.sent.is_empty() || !done.retry.is_empty() {
                st.record_sends(&done.sent, &done.retry, now)?;
            }
            for (id, e, notice, reached) in &done.failed {
                st.mark_failed(*id, e, notice.as_ref(), *reached, now)?;
            }
            if claim == Claim::Nothing {
                return Ok((Vec::new(), Vec::new(), Vec::new()));
            }
            let mut rows = Vec::with_capacity(CHUNK);
            let mut skipped = Vec::new();
            let mut given_up = Vec::new();
            for row in st.due_outbox_except(now, CHUNK, &in_flight)? {
                if row.claims >= MAX_CLAIMS {
                    let why = format!(
                        "not sent: claimed {} times with no outcome recorded (the sender stopped each time)",
                        row.claims
                    );
                    let notice = sh.renderer().send_failed_notice(&row, &why, now)?;
                    st.mark_failed(row.id, &why, notice.as_ref(), false, now)?;
                    given_up.push((row, why));
                    continue;
                }
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
            if claim == Claim::Count {
                // Counted before sending: a mail that stops us still leaves the queue.
                let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
                for (row, n) in rows.iter_mut().zip(st.begin_claims(&ids)?) {
                    row.claims = n;
                }
            }
            Ok((rows, skipped, given_up))
        })
    })
    .await?;
    for (row, why) in skipped {
        let span = info_span!("send", outbox = row.id, ticket = row.ticket_id.map(|t| t.0), kind = %row.kind);
        let _g = span.enter();
        warn!("{why}");
    }
    for (row, why) in given_up {
        let span = info_span!("send", outbox = row.id, ticket = row.ticket_id.map(|t| t.0), kind = %row.kind);
        let _g = span.enter();
        error!("delivery failed for good: {why}");
        failed_any = true;
    }
    if failed_any {
        // A staff notice about the failure was queued.
        shared.outbox_wake.notify_one();
    }
    if claim == Claim::Count && !claimed.is_empty() {
        // What a kill leaves claimed and untried gets its claim back at start.
        let ids: Vec<i64> = claimed.iter().map(|r| r.id).collect();
        if let Err(e) = shared.sent_journal.record_claims(&ids) {
            error!("{e:#}");
        }
    }
    Ok(claimed)
}

/// Sends every mail due now, a chunk on the wire while the store step for
/// the next runs (it writes the outcomes of the one before). Returns whether
/// any mail was claimed for sending.
async fn send_due(
    shared: &Arc<Shared>,
    senders: &mut [Sender],
    cancel: &CancellationToken,
) -> Result<bool> {
    // One connection is opened before anything is claimed: a relay that
    // hangs costs one timeout here, for a whole chunk, and a kill while
    // waiting for its greeting counts no claim.
    if !senders[0].is_connected() {
        let now = shared.clock.now();
        let due = shared.with_store(|st| st.next_outbox_due()).await?;
        if due.is_none_or(|t| t > now) {
            return Ok(false);
        }
        let connected = tokio::select! {
            r = senders[0].ensure_connected() => r,
            _ = cancel.cancelled() => return Ok(false),
        };
        if let Err(e) = connected {
            let why = match e {
                SendError::NoConnection(e) => e,
                other => format!("{other:?}"),
            };
            let rows = step(shared, Outcomes::default(), Vec::new(), Claim::Peek).await?;
            let results = rows
                .iter()
                .map(|_| Err(SendError::NoConnection(why.clone())))
                .collect();
            let done = outcomes(shared, &rows, results)?;
            step(shared, done, Vec::new(), Claim::Nothing).await?;
            return Ok(false);
        }
    }
    let mut current = step(shared, Outcomes::default(), Vec::new(), Claim::Count).await?;
    let any = !current.is_empty();
    let mut done = Outcomes::default();
    while !current.is_empty() {
        let rows: Vec<&OutboxRow> = current.iter().collect();
        let in_flight: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let claim = if cancel.is_cancelled() {
            Claim::Nothing
        } else {
            Claim::Count
        };
        let (results, next) = tokio::join!(
            send_all(shared, senders, &rows),
            step(shared, std::mem::take(&mut done), in_flight, claim)
        );
        done = outcomes(shared, &current, results)?;
        current = next?;
    }
    step(shared, done, Vec::new(), Claim::Nothing).await?;
    if any {
        // Out of due mail, nothing in flight: every id in the sent journal is
        // recorded in the database (synced), so the journal starts afresh.
        shared.sent_journal.clear()?;
    }
    Ok(any)
}

/// Sorts the results of a chunk into retry (with its time) and failed (with
/// the staff notice to queue), logging each; accepted mail was recorded as
/// it went. A temporary failure is final once the mail is older than the
/// queue lifetime, or when the server answered and real attempts reached
/// `max_attempts`.
fn outcomes(
    shared: &Arc<Shared>,
    chunk: &[OutboxRow],
    results: Vec<Result<(), SendError>>,
) -> Result<Outcomes> {
    let now = shared.clock.now();
    let smtp = shared.smtp();
    let max = smtp.max_attempts;
    let lifetime = chrono::Duration::from_std(smtp.max_queue_lifetime)
        .unwrap_or_else(|_| chrono::Duration::days(5));
    let mut out = Outcomes::default();
    for (row, result) in chunk.iter().zip(results) {
        let span = info_span!("send", outbox = row.id, ticket = row.ticket_id.map(|t| t.0), kind = %row.kind);
        let _g = span.enter();
        let err = match result {
            Ok(()) => {
                shared.metrics.smtp_result("2xx");
                info!(to = %row.rcpt_to.join(","), attempts = row.attempts + 1, "sent");
                out.sent.push(row.id);
                continue;
            }
            Err(SendError::Taken) => {
                warn!("not sent: another node claimed it meanwhile");
                continue;
            }
            Err(e) => e,
        };
        shared.metrics.smtp_result(err.class());
        let reached = err.reached();
        let attempts = row.attempts + reached as u32;
        let e = match err {
            SendError::Permanent(e) => {
                error!(attempts, "delivery failed for good: {e}");
                let notice = shared.renderer().send_failed_notice(row, &e, now)?;
                out.failed.push((row.id, e, notice, true));
                continue;
            }
            SendError::NoConnection(e) | SendError::Unanswered(e) | SendError::Transient(e) => e,
            SendError::Taken => unreachable!("left above"),
        };
        let expired = now >= row.created_at + lifetime;
        let why = if expired {
            Some(format!(
                "{e} (still failing after the queue lifetime of {}s)",
                lifetime.num_seconds()
            ))
        } else if reached && attempts >= max {
            Some(format!("{e} (after {attempts} attempts)"))
        } else {
            None
        };
        if let Some(why) = why {
            error!(attempts, "delivery failed for good: {why}");
            let notice = shared.renderer().send_failed_notice(row, &why, now)?;
            out.failed.push((row.id, why, notice, reached));
            continue;
        }
        let delay = backoff::delay(
            row.attempts + row.deferrals,
            smtp.retry_base,
            Duration::from_secs(3600),
        );
        let at = now + chrono::Duration::from_std(delay).unwrap_or_default();
        warn!(
            attempts,
            reached,
            retry_in_ms = delay.as_millis() as u64,
            "temporary failure: {e}"
        );
        out.retry.push((row.id, at, e, reached));
    }
    Ok(out)
}

/// Sends `rows` spread over the senders (mail `i` on connection `i % n`),
/// the connections working at once; returns each mail's result in order
/// (`Ok`: accepted). Each accepted mail is noted in the sent journal (one
/// write, no lock, no fsync) before its connection sends the next, so a
/// kill re-sends at most one mail per connection. Once a connection cannot
/// be opened, the mail not yet tried is deferred, not tried on a fresh
/// connection each.
async fn send_all(
    shared: &Arc<Shared>,
    senders: &mut [Sender],
    rows: &[&OutboxRow],
) -> Vec<Result<(), SendError>> {
    let n = senders.len().min(rows.len()).max(1);
    let down = AtomicBool::new(false);
    let down = &down;
    let work = senders
        .iter_mut()
        .take(n)
        .enumerate()
        .map(|(j, sender)| async move {
            let mut out = Vec::new();
            for (i, row) in rows.iter().enumerate().skip(j).step_by(n) {
                if down.load(Ordering::Relaxed) {
                    let why = "not tried: the SMTP server could not be reached";
                    out.push((i, Err(SendError::Unanswered(why.into()))));
                    continue;
                }
                let span =
                    info_span!("send", outbox = row.id, ticket = row.ticket_id.map(|t| t.0), kind = %row.kind);
                shared
                    .health
                    .busy(health::OUTBOX, "sending", step_timeout(shared));
                // On a shared store, still this process's claim: a node
                // paused past its lease may find another took the chunk.
                if !shared.sent_journal.still_mine(row.id) {
                    out.push((i, Err(SendError::Taken)));
                    continue;
                }
                // Noted before it goes out: a kill from here on counts
                // this mail's claim toward the crash guard.
                if let Err(e) = shared.sent_journal.record_try(row.id) {
                    error!(outbox = row.id, "{e:#}");
                }
                let r = match sender.send(row).instrument(span).await {
                    Ok(()) => {
                        let accepted = shared.clock.now();
                        Metrics::observe(&shared.metrics.send_latency, row.created_at, accepted);
                        // Noted at once, before this connection sends the next;
                        // the store records it with the rest of the chunk.
                        if let Err(e) = shared.sent_journal.record(row.id) {
                            error!(outbox = row.id, "{e:#}");
                        }
                        Ok(())
                    }
                    Err(e) => {
                        if matches!(e, SendError::NoConnection(_)) {
                            down.store(true, Ordering::Relaxed);
                        }
                        Err(e)
                    }
                };
                out.push((i, r));
            }
            out
        });
    let mut results: Vec<Option<Result<(), SendError>>> = rows.iter().map(|_| None).collect();
    for (i, r) in join_all(work).await.into_iter().flatten() {
        results[i] = Some(r);
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(SendError::Unanswered("not attempted".into()))))
        .collect()
}
