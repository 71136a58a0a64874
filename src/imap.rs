//! Mailbox watchers: one task per mailbox, IDLE or polling, fetching new mail by UID and acknowledging it only after the commit.

use crate::backoff;
use crate::clock::Clock;
use crate::config::{After, Login, MailboxConfig, Tls};
use crate::config::{Mechanism, OAuth2};
use crate::health;
use crate::intake::{Engine, Fetched, Ingested, ReadAhead};
use crate::metrics::Metrics;
use crate::model::Outcome;
use crate::net::{self, Stream};
use crate::oauth::{TokenError, Tokens};
use crate::secret::Secret;
use crate::shared::Shared;
use crate::store::LeaseLost;
use crate::store::StoredMessage;
use anyhow::{Context, Result, anyhow};
use async_imap::Session;
use async_imap::extensions::idle::IdleResponse;
use chrono::{DateTime, FixedOffset, Utc};
use futures_util::TryStreamExt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, error, info, info_span, warn};

pub type ImapSession = Session<Box<dyn Stream>>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Messages stored per transaction: a batch is committed in slices of this
/// many, so that the outbox gets the store between them.
const COMMIT_SLICE: usize = 50;
/// How long a watcher waits after a refusal (login, token, certificate).
const REFUSED_RETRY: Duration = Duration::from_secs(300);
/// IMAP servers may drop an IDLE after 30 minutes; renew well before.
const MAX_IDLE: Duration = Duration::from_secs(25 * 60);

/// Why a session ended.
/// Intake could not write the database (a full disk, a read-only or failed
/// filesystem): what was not committed is not acknowledged, and is fetched
/// again on the next connection.
#[derive(Debug, thiserror::Error)]
#[error("cannot store mail in the database {0}; nothing more is acknowledged on IMAP until it can")]
pub struct StoreFailed(pub String);

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("login to mailbox {mailbox} as {user} was refused: {detail}")]
    Auth {
        mailbox: String,
        user: String,
        detail: String,
    },
    /// No access token: the endpoint refused (retried slowly, like a
    /// refused login) or could not be reached (retried like a lost
    /// connection).
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

type Client = async_imap::Client<Box<dyn Stream>>;

/// Connects and logs in to `m`.
pub async fn connect(m: &MailboxConfig, clock: &dyn Clock) -> Result<ImapSession, WatchError> {
    let ep = &m.endpoint;
    let who = format!("mailbox {}", m.name);
    let peer = net::Peer {
        who: &who,
        host: &ep.host,
        port: ep.port,
        ca_file: ep.ca_file.as_deref(),
    };
    let tcp = net::tcp(&ep.host, ep.port, CONNECT_TIMEOUT).await?;
    let stream: Box<dyn Stream> = match ep.tls {
        Tls::None => Box::new(tcp),
        Tls::Implicit => Box::new(net::tls(peer, tcp, CONNECT_TIMEOUT).await?),
        Tls::StartTls => {
            let mut c = async_imap::Client::new(tcp);
            greeting(&mut c).await?;
            c.run_command_and_check_ok("STARTTLS", None)
                .await
                .with_context(|| format!("{who}: STARTTLS refused by {}:{}", ep.host, ep.port))?;
            Box::new(net::tls(peer, c.into_inner(), CONNECT_TIMEOUT).await?)
        }
    };
    let mut client = async_imap::Client::new(stream);
    if ep.tls != Tls::StartTls {
        greeting(&mut client).await?;
    }
    let refused = |detail: String| WatchError::Auth {
        mailbox: m.name.clone(),
        user: m.username.clone(),
        detail,
    };
    let o = match &m.login {
        Login::Password(password) => {
            let login = timed(ep, client.login(&m.username, &password.0)).await?;
            return login.map_err(|(e, _)| match e {
                async_imap::error::Error::No(detail) | async_imap::error::Error::Bad(detail) => {
                    refused(server_text(&detail))
                }
                other => WatchError::Other(anyhow!(other).context("login failed")),
            });
        }
        Login::OAuth2(o) => o,
    };
    let token = Tokens::of(o).get(clock.monotonic()).await?;
    let client = match authenticate(client, m, o, &token).await? {
        Ok(session) => return Ok(session),
        Err((detail, client)) => {
            // Expired or revoked before its time: one new token, one more try.
            info!("access token refused ({detail}): getting a new one");
            client
        }
    };
    let token = Tokens::of(o).renew(&token, clock.monotonic()).await?;
    match authenticate(client, m, o, &token).await? {
        Ok(session) => Ok(session),
        Err((detail, _)) => Err(refused(format!("{detail} (with a new access token too)"))),
    }
}

async fn timed<T>(
    ep: &crate::config::Endpoint,
    f: impl std::future::Future<Output = T>,
) -> Result<T, WatchError> {
    tokio::time::timeout(CONNECT_TIMEOUT, f)
        .await
        .map_err(|_| WatchError::Other(anyhow!("login to {}:{} timed out", ep.host, ep.port)))
}

/// SASL with an access token: the session, or the server's refusal (its NO
/// text and error challenge) with the client to try again on.
async fn authenticate(
    client: Client,
    m: &MailboxConfig,
    o: &OAuth2,
    token: &Secret,
) -> Result<Result<ImapSession, (String, Client)>, WatchError> {
    let ep = &m.endpoint;
    let mut challenge = None;
    let sasl = Sasl {
        first: Some(
            o.mechanism
                .initial_response(&m.username, &ep.host, ep.port, token),
        ),
        mechanism: o.mechanism,
        challenge: &mut challenge,
    };
    let r = timed(ep, client.authenticate(o.mechanism.name(), sasl)).await?;
    match r {
        Ok(session) => Ok(Ok(session)),
        Err((
            async_imap::error::Error::No(detail) | async_imap::error::Error::Bad(detail),
            client,
        )) => {
            let detail = match challenge {
                Some(c) => format!("{} {}", server_text(&detail), c.trim()),
                None => server_text(&detail),
            };
            Ok(Err((format!("{}: {detail}", o.mechanism.name()), client)))
        }
        Err((other, _)) => Err(WatchError::Other(
            anyhow!(other).context(format!("{} login failed", o.mechanism.name())),
        )),
    }
}

/// The client side of XOAUTH2 / OAUTHBEARER: the initial response, then, if
/// the server answers with an error challenge, the reply that ends it.
struct Sasl<'a> {
    first: Option<Vec<u8>>,
    mechanism: Mechanism,
    challenge: &'a mut Option<String>,
}

impl async_imap::Authenticator for Sasl<'_> {
    type Response = Vec<u8>;

    fn process(&mut self, challenge: &[u8]) -> Vec<u8> {
        match self.first.take() {
            Some(first) => first,
            None => {
                // The server's error (JSON: status, scope) says why.
                *self.challenge = Some(String::from_utf8_lossy(challenge).into_owned());
                self.mechanism.abort_response().to_vec()
            }
        }
    }
}

/// The server's text in async-imap's NO/BAD detail (`code: .., info:
/// Some("[AUTHENTICATIONFAILED] Authentication failed.")`).
fn server_text(detail: &str) -> String {
    detail
        .split_once("info: Some(\"")
        .and_then(|(_, rest)| rest.rsplit_once("\")"))
        .map(|(text, _)| text.replace("\\\"", "\""))
        .unwrap_or_else(|| detail.to_string())
}

async fn greeting<T: Stream>(c: &mut async_imap::Client<T>) -> Result<()> {
    // async-imap does not read the greeting itself.
    tokio::time::timeout(CONNECT_TIMEOUT, c.read_response())
        .await
        .context("no IMAP greeting")?
        .context("reading the IMAP greeting")?
        .ok_or_else(|| anyhow!("the server closed the connection before its greeting"))?;
    Ok(())
}

/// Watches one mailbox until `cancel` fires (or, with `once`, until it is empty).
pub async fn watch(
    shared: Arc<Shared>,
    m: MailboxConfig,
    cancel: CancellationToken,
    once: bool,
) -> Result<()> {
    let span = info_span!("mailbox", mailbox = %m.name);
    let beat = health::mailbox_loop(&m.name);
    let _registered = shared.health.register(&beat);
    shared.metrics.mailbox_watched(&m.name);
    async move {
        let mut failures: u32 = 0;
        loop {
            if cancel.is_cancelled() {
                return Ok(());
            }
            if !shared.leases.holds(&m.name) {
                if once {
                    info!("another node holds the mailbox: left to it");
                    return Ok(());
                }
                shared.health.set_elsewhere(&m.name, true);
                shared.health.waiting(&beat);
                debug!("waiting for the mailbox's lease");
                if !shared.leases.wait_held(&m.name, &cancel).await {
                    return Ok(());
                }
                shared.health.set_elsewhere(&m.name, false);
            }
            match session(&shared, &m, &cancel, once, &mut failures).await {
                Ok(()) => return Ok(()),
                Err(WatchError::Other(e)) if e.downcast_ref::<LeaseLost>().is_some() => {
                    shared.health.set_ready(&beat, false);
                    info!("{e:#}: this node stops watching the mailbox");
                }
                Err(e) => {
                    shared.health.set_ready(&beat, false);
                    // The mailbox's own trouble (not the store's): on a
                    // shared store its lease goes to another node in time.
                    if !matches!(&e, WatchError::Other(e) if e.downcast_ref::<StoreFailed>().is_some()) {
                        shared.leases.watcher(&m.name, false, shared.clock.monotonic());
                    }
                    shared
                        .metrics
                        .imap_reconnect(&m.name, matches!(e, WatchError::Auth { .. }));
                    shared.health.waiting(&beat);
                    // Refused: a login, a token refresh or the server's
                    // certificate. Each is one error, retried slowly.
                    let refused = match &e {
                        WatchError::Auth { .. } => true,
                        WatchError::Token(t) => t.refused,
                        WatchError::Other(e) => {
                            e.downcast_ref::<net::CertificateRefused>().is_some()
                        }
                    };
                    let delay = if refused {
                        REFUSED_RETRY
                    } else {
                        backoff::delay(failures, Duration::from_secs(1), REFUSED_RETRY)
                    };
                    if once {
                        return Err(anyhow!("{e:#}"));
                    }
                    let store_failed = matches!(&e, WatchError::Other(e) if e.downcast_ref::<StoreFailed>().is_some());
                    if refused {
                        error!(retry_in_s = delay.as_secs(), "{e:#}");
                    } else if store_failed {
                        // Not a lost connection: said once, as an error, for
                        // all the watchers, until intake commits again.
                        if !shared.store_failing.swap(true, Ordering::SeqCst) {
                            error!(retry_in_ms = delay.as_millis() as u64, "{e:#}");
                        } else {
                            debug!(retry_in_ms = delay.as_millis() as u64, "still: {e:#}");
                        }
                    } else if let WatchError::Token(e) = &e {
                        warn!(retry_in_ms = delay.as_millis() as u64, "{e}");
                    } else {
                        warn!(
                            retry_in_ms = delay.as_millis() as u64,
                            "connection lost: {e:#}"
                        );
                    }
                    failures = failures.saturating_add(1);
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = cancel.cancelled() => return Ok(()),
                    }
                }
            }
        }
    }
    .instrument(span)
    .await
}

async fn session(
    shared: &Arc<Shared>,
    m: &MailboxConfig,
    cancel: &CancellationToken,
    once: bool,
    failures: &mut u32,
) -> Result<(), WatchError> {
    let beat = health::mailbox_loop(&m.name);
    let health = &shared.health;
    // Greeting, TLS and login each have CONNECT_TIMEOUT.
    health.busy(&beat, "connect and login", CONNECT_TIMEOUT * 4);
    let mut s = connect(m, &*shared.clock).await?;
    health.busy(&beat, "SELECT", m.timeout);
    let caps = s.capabilities().await.context("CAPABILITY")?;
    let can_idle = caps.has_str("IDLE");
    let can_move = caps.has_str("MOVE");
    let can_uidplus = caps.has_str("UIDPLUS");
    for folder in [&m.processed_folder, &m.quarantine_folder] {
        if after_needs(m, folder) {
            // CREATE on an existing folder fails harmlessly.
            let _ = s.create(folder).await;
        }
    }
    let selected = s
        .select(&m.folder)
        .await
        .with_context(|| format!("SELECT {}", m.folder))?;
    let uidvalidity = selected.uid_validity.unwrap_or(0);
    let state = {
        let name = m.name.clone();
        let now = shared.clock.now();
        shared
            .with_store(move |st| {
                let state = st.mailbox_state(&name)?;
                if state.map(|s| s.uidvalidity) != Some(uidvalidity) {
                    if state.is_some() {
                        warn!(uidvalidity, "UIDVALIDITY changed: rescanning the whole folder; known mail is recognised and not repeated");
                    }
                    st.reset_mailbox(&name, uidvalidity, now)?;
                }
                st.mailbox_state(&name)
            })
            .await?
    };
    info!(
        uidvalidity,
        last_uid = state.map(|s| s.last_uid).unwrap_or(0),
        idle = can_idle && m.idle,
        "watching"
    );
    health.set_ready(&beat, true);
    shared
        .leases
        .watcher(&m.name, true, shared.clock.monotonic());
    *failures = 0;
    let w = Watcher {
        shared,
        m,
        uidvalidity,
        can_move,
        can_uidplus,
    };

    // Mail below the high-water mark still in the folder was committed but
    // not acknowledged (a crash between the two): acknowledge it now.
    let leftover_query = match m.after {
        After::Move => "ALL".to_string(),
        After::Seen => "UNSEEN".to_string(),
    };
    w.cycle(&mut s, &leftover_query, cancel).await?;

    loop {
        if !shared.leases.holds(&m.name) {
            let _ = s.logout().await;
            return Err(WatchError::Other(
                LeaseLost {
                    mailbox: m.name.clone(),
                    epoch: 0,
                }
                .into(),
            ));
        }
        let last = w.last_uid().await?;
        let found = w
            .cycle(&mut s, &format!("UID {}:*", last.saturating_add(1)), cancel)
            .await?;
        if once || cancel.is_cancelled() {
            let _ = s.logout().await;
            return Ok(());
        }
        if found > 0 {
            // Mail that came during the cycle was announced (EXISTS) in the
            // answers to its commands, which are drained; IDLE would not
            // announce it again. Look again until a search finds nothing.
            continue;
        }
        s = if can_idle && m.idle {
            health.busy(&beat, "IDLE", m.timeout);
            let mut idle = s.idle();
            idle.init().await.context("IDLE")?;
            debug!("in IDLE");
            health.waiting(&beat);
            let (wait, stop) = idle.wait_with_timeout(m.poll_interval.min(MAX_IDLE));
            let woke = tokio::select! {
                r = wait => Some(r),
                _ = cancel.cancelled() => None,
                _ = shared.leases.lost(&m.name) => None,
            };
            drop(stop);
            match woke {
                Some(Ok(IdleResponse::NewData(d))) => debug!(response = ?d.parsed(), "IDLE woke"),
                Some(Ok(IdleResponse::Timeout)) => debug!("IDLE renewed"),
                Some(Ok(IdleResponse::ManualInterrupt)) | None => {}
                Some(Err(e)) => return Err(anyhow!(e).context("IDLE").into()),
            }
            // A server that died during IDLE shows only here.
            health.busy(&beat, "ending IDLE", m.timeout);
            idle.done().await.context("ending IDLE")?
        } else {
            health.waiting(&beat);
            tokio::select! {
                _ = tokio::time::sleep(m.poll_interval) => {}
                _ = cancel.cancelled() => {}
                _ = shared.leases.lost(&m.name) => {}
            }
            health.busy(&beat, "NOOP", m.timeout);
            s.noop().await.context("NOOP")?;
            s
        };
        drain(&mut s);
    }
}

fn after_needs(m: &MailboxConfig, folder: &str) -> bool {
    folder == m.quarantine_folder || m.after == After::Move
}

fn drain(s: &mut ImapSession) {
    // The unsolicited channel is bounded and drops what overflows; we read
    // state by commands, so empty it after each.
    while s.unsolicited_responses.try_recv().is_ok() {}
}

/// Compresses sorted UIDs into an IMAP sequence set: `1:3,7,9:10`.
pub fn uid_set(uids: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        let mut end = start;
        while i + 1 < uids.len() && uids[i + 1] == end + 1 {
            i += 1;
            end = uids[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// A fetched batch, read by the engine that will store it.
struct Batch {
    engine: Arc<Engine>,
    mails: Vec<(Fetched, ReadAhead)>,
}

/// Runs `work` over `items` split in order into a part per core (parts of
/// at least `MIN_PART` items), each part on a thread of its own, and joins
/// the parts' results in order. A single part runs on the calling thread.
fn on_cores<T: Send, U: Send>(items: Vec<T>, work: impl Fn(Vec<T>) -> Vec<U> + Sync) -> Vec<U> {
    const MIN_PART: usize = 8;
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let cores = *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let parts = cores.min(items.len() / MIN_PART).max(1);
    if parts == 1 {
        return work(items);
    }
    let size = items.len().div_ceil(parts);
    let mut items = items.into_iter();
    let chunks: Vec<Vec<T>> = (0..parts)
        .map(|_| items.by_ref().take(size).collect())
        .collect();
    std::thread::scope(|sc| {
        let work = &work;
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|c| sc.spawn(move || work(c)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("reading a part panicked"))
            .collect()
    })
}

struct Watcher<'a> {
    shared: &'a Arc<Shared>,
    m: &'a MailboxConfig,
    uidvalidity: u32,
    can_move: bool,
    can_uidplus: bool,
}

impl Watcher<'_> {
    /// This watcher is in `what`, which should end within the mailbox's timeout.
    fn beat(&self, what: &'static str) {
        self.shared
            .health
            .busy(&health::mailbox_loop(&self.m.name), what, self.m.timeout);
    }

    async fn last_uid(&self) -> Result<u32> {
        let name = self.m.name.clone();
        self.shared
            .with_store(move |st| Ok(st.mailbox_state(&name)?.map(|s| s.last_uid).unwrap_or(0)))
            .await
    }

    /// Handles every message `query` finds, batch by batch, stopping between
    /// batches when cancelled. Returns how many it found.
    async fn cycle(
        &self,
        s: &mut ImapSession,
        query: &str,
        cancel: &CancellationToken,
    ) -> Result<usize> {
        self.beat("UID SEARCH");
        let mut uids: Vec<u32> = s
            .uid_search(query)
            .await
            .with_context(|| format!("UID SEARCH {query}"))?
            .into_iter()
            .collect();
        drain(s);
        uids.sort_unstable();
        if let Some(min) = query
            .strip_prefix("UID ")
            .and_then(|q| q.split(':').next())
            .and_then(|n| n.parse::<u32>().ok())
        {
            // `n:*` always matches the highest UID, even below n.
            uids.retain(|&u| u >= min);
        }
        if uids.is_empty() {
            return Ok(0);
        }
        let found = uids.len();
        let known = {
            let (name, v, list) = (self.m.name.clone(), self.uidvalidity, uids.clone());
            self.shared
                .with_store(move |st| st.known_outcomes(&name, v, &list))
                .await?
        };
        if !known.is_empty() {
            info!(count = known.len(), "acknowledging mail committed earlier");
            let done: Vec<(u32, bool)> = known.iter().map(|(u, o)| (*u, o.set_aside())).collect();
            self.ack_batch(s, &done).await?;
        }
        let fresh: Vec<u32> = uids
            .into_iter()
            .filter(|u| !known.iter().any(|(k, _)| k == u))
            .collect();
        // While one batch is being stored, the next is fetched (read-only,
        // BODY.PEEK) and read (parsed, classified, searched: no database), on
        // another thread; each batch is acknowledged only after its own commit.
        let chunks: Vec<&[u32]> = fresh.chunks(self.m.batch_size as usize).collect();
        let mut next = match chunks.first() {
            Some(c) if !cancel.is_cancelled() => Some(self.fetch_and_read(s, c).await?),
            _ => None,
        };
        // The batch committed last, acknowledged while the next one is stored.
        let mut committed: Vec<(u32, bool)> = Vec::new();
        for i in 0..chunks.len() {
            let Some(fetched) = next.take() else { break };
            // Each batch step (store one, acknowledge and fetch the next) has the timeout.
            self.beat("a batch");
            let ingest = self.ingest(fetched);
            let following = chunks.get(i + 1).filter(|_| !cancel.is_cancelled());
            let to_ack = std::mem::take(&mut committed);
            let io = async {
                self.ack_batch(s, &to_ack).await?;
                match following {
                    Some(c) => self.fetch_and_read(s, c).await.map(Some),
                    None => Ok(None),
                }
            };
            let clock = &self.shared.clock;
            let started = clock.monotonic();
            let since = || {
                clock
                    .monotonic()
                    .saturating_duration_since(started)
                    .as_millis() as u64
            };
            let ((ingested, store_ms), (io, io_ms)) =
                tokio::join!(async { (ingest.await, since()) }, async {
                    (io.await, since())
                });
            let (results, failed) = ingested?;
            debug!(
                messages = results.len(),
                store_ms,
                acknowledge_and_fetch_ms = io_ms,
                "batch stored"
            );
            committed = results
                .iter()
                .map(|r| (r.uid, r.outcome.set_aside()))
                .collect();
            if let Some(e) = failed {
                // What was committed before the failure is acknowledged; the
                // failing message and those after it are fetched again.
                self.ack_batch(s, &committed).await?;
                return Err(e);
            }
            next = io?;
        }
        self.ack_batch(s, &committed).await?;
        Ok(found)
    }

    /// Acknowledges committed mail: (uid, quarantined).
    async fn ack_batch(&self, s: &mut ImapSession, done: &[(u32, bool)]) -> Result<()> {
        let (q, p): (Vec<_>, Vec<_>) = done.iter().partition(|(_, quarantined)| *quarantined);
        self.ack(s, &p.iter().map(|(u, _)| *u).collect::<Vec<_>>(), false)
            .await?;
        self.ack(s, &q.iter().map(|(u, _)| *u).collect::<Vec<_>>(), true)
            .await
    }

    /// Fetches a batch and reads its mail on blocking threads, a part per core (no store lock).
    async fn fetch_and_read(&self, s: &mut ImapSession, uids: &[u32]) -> Result<Batch> {
        // One engine for the batch, read and stored: a reload swaps between batches.
        let engine = self.shared.engine();
        let fetched = self.fetch(s, uids, &engine).await?;
        let shared = self.shared.clone();
        let e = engine.clone();
        let mails = tokio::task::spawn_blocking(move || {
            on_cores(fetched, |part| {
                part.into_iter()
                    .map(|f| {
                        let ahead = e.read_fetched(&f, &*shared.clock);
                        (f, ahead)
                    })
                    .collect()
            })
        })
        .await
        .context("reading task")?;
        Ok(Batch { engine, mails })
    }

    async fn fetch(
        &self,
        s: &mut ImapSession,
        uids: &[u32],
        engine: &Engine,
    ) -> Result<Vec<Fetched>> {
        let limit = engine.limits.max_message_bytes;
        let set = uid_set(uids);
        // Sizes first, so that an oversized message is never read whole.
        let meta: Vec<(u32, u64)> = s
            .uid_fetch(&set, "(UID RFC822.SIZE)")
            .await
            .context("UID FETCH sizes")?
            .try_filter_map(|f| async move { Ok(f.uid.map(|u| (u, f.size.unwrap_or(0) as u64))) })
            .try_collect()
            .await
            .context("UID FETCH sizes")?;
        drain(s);
        let (big, small): (Vec<_>, Vec<_>) = meta.iter().partition(|(_, size)| *size > limit);
        let mut out = Vec::with_capacity(meta.len());
        for (list, query) in [
            (small, "(UID INTERNALDATE RFC822.SIZE BODY.PEEK[])"),
            (big, "(UID INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER])"),
        ] {
            if list.is_empty() {
                continue;
            }
            let mut l: Vec<u32> = list.iter().map(|(u, _)| *u).collect();
            l.sort_unstable();
            let uidvalidity = self.uidvalidity;
            let mailbox = self.m.name.as_str();
            let fetched_at = self.shared.clock.now();
            let mut got: Vec<Fetched> = s
                .uid_fetch(uid_set(&l), query)
                .await
                .context("UID FETCH")?
                .try_filter_map(|f| async move {
                    let Some(uid) = f.uid else { return Ok(None) };
                    let raw = f.body().or(f.header()).unwrap_or_default().to_vec();
                    Ok(Some(fetched(
                        mailbox,
                        uidvalidity,
                        uid,
                        f.size,
                        raw,
                        f.internal_date(),
                        fetched_at,
                    )))
                })
                .try_collect()
                .await
                .context("UID FETCH")?;
            drain(s);
            out.append(&mut got);
        }
        out.sort_by_key(|f| f.uid);
        Ok(out)
    }

    /// Ingests a fetched batch in transactions of `COMMIT_SLICE` messages
    /// (`Engine::ingest_slice`), each committed (one sync) before anything is
    /// acknowledged. A message that cannot be handled is quarantined alone; a
    /// database failure on one message stops the batch there: what came
    /// before it is committed and returned, with the error.
    async fn ingest(&self, batch: Batch) -> Result<(Vec<Ingested>, Option<anyhow::Error>)> {
        let Batch {
            engine,
            mails: fetched,
        } = batch;
        let shared = self.shared.clone();
        let m = self.m.clone();
        let fence = self.shared.leases.fence(&m.name).inspect_err(|e| {
            self.shared.metrics.cluster.fenced_commits.inc();
            warn!("a late commit was refused: {e}");
        })?;
        tokio::task::spawn_blocking(move || -> Result<_> {
            let mut failed = None;
            let mut out = Vec::with_capacity(fetched.len());
            let mut todo = fetched.into_iter().peekable();
            // A transaction per slice of the batch, the lock handed over
            // fairly between slices, so the outbox never waits behind a
            // whole batch.
            while todo.peek().is_some() && failed.is_none() {
                let chunk: Vec<_> = todo.by_ref().take(COMMIT_SLICE).collect();
                let arrivals: Vec<_> = chunk.iter().map(|(f, _)| f.arrival).collect();
                let mut st = shared.store.lock();
                let committed =
                    engine.ingest_slice(&mut st, &m, chunk, &*shared.clock, fence.as_ref());
                parking_lot::MutexGuard::unlock_fair(st);
                match committed {
                    Ok((mut slice, stopped)) => {
                        failed = stopped;
                        if !slice.is_empty() && shared.store_failing.swap(false, Ordering::SeqCst) {
                            info!("the database {} takes mail again", shared.database.display());
                        }
                        let now = shared.clock.now();
                        let metrics = &shared.metrics;
                        for (r, arrival) in slice.iter().zip(&arrivals) {
                            metrics.message(&m.name, r.outcome.as_str(), r.class.as_str());
                            if r.acks_capped {
                                metrics.acks_capped.inc();
                            }
                            Metrics::observe(&metrics.intake_latency, *arrival, now);
                        }
                        if slice.iter().any(|r| r.queued > 0) {
                            // Replies go out as each slice commits, not after the batch.
                            shared.outbox_wake.notify_one();
                        }
                        // The slice may have set timers sooner than the next one due.
                        shared.timer_wake.notify_one();
                        out.append(&mut slice);
                    }
                    // Another node took the mailbox: nothing of this slice
                    // was written, and this watcher stops.
                    Err(e) if e.downcast_ref::<crate::store::LeaseLost>().is_some() => {
                        shared.metrics.cluster.fenced_commits.inc();
                        warn!("a late commit was refused: {e:#}");
                        return Err(e);
                    }
                    // Nothing of this slice was written: it is fetched again.
                    Err(e) => failed = Some(e),
                }
            }
            // Logged once committed, and outside the store lock.
            for r in &out {
                let span =
                    info_span!("message", mailbox = %m.name, uid = r.uid, ticket = r.ticket_id.map(|t| t.0));
                let _g = span.enter();
                match r.outcome {
                    Outcome::Quarantined => warn!(reason = %r.reasons.join("; "), "quarantined"),
                    Outcome::Spam => info!("set aside as spam"),
                    o => info!(outcome = o.as_str(), replies = r.queued, "processed"),
                }
            }
            let failed = failed.map(|e| e.context(StoreFailed(shared.database.display().to_string())));
            Ok((out, failed))
        })
        .await
        .context("intake task")?
    }

    /// Acknowledges committed messages: moved to the processed (or quarantine)
    /// folder, or flagged \Seen.
    async fn ack(&self, s: &mut ImapSession, uids: &[u32], quarantine: bool) -> Result<()> {
        if uids.is_empty() {
            return Ok(());
        }
        let mut sorted = uids.to_vec();
        sorted.sort_unstable();
        let set = uid_set(&sorted);
        if !quarantine && self.m.after == After::Seen {
            s.uid_store(&set, "+FLAGS.SILENT (\\Seen)")
                .await
                .context("UID STORE \\Seen")?
                .try_collect::<Vec<_>>()
                .await
                .context("UID STORE \\Seen")?;
            drain(s);
            return Ok(());
        }
        let folder = if quarantine {
            &self.m.quarantine_folder
        } else {
            &self.m.processed_folder
        };
        if self.can_move {
            s.uid_mv(&set, folder)
                .await
                .with_context(|| format!("UID MOVE to {folder}"))?;
        } else {
            s.uid_copy(&set, folder)
                .await
                .with_context(|| format!("UID COPY to {folder}"))?;
            s.uid_store(&set, "+FLAGS.SILENT (\\Deleted)")
                .await
                .context("UID STORE \\Deleted")?
                .try_collect::<Vec<_>>()
                .await
                .context("UID STORE \\Deleted")?;
            if self.can_uidplus {
                s.uid_expunge(&set)
                    .await
                    .context("UID EXPUNGE")?
                    .try_collect::<Vec<_>>()
                    .await
                    .context("UID EXPUNGE")?;
            } else {
                s.expunge()
                    .await
                    .context("EXPUNGE")?
                    .try_collect::<Vec<_>>()
                    .await
                    .context("EXPUNGE")?;
            }
        }
        drain(s);
        Ok(())
    }
}

/// Fetches the whole message stored as quarantined row `stored` back from
/// `m`'s quarantine folder (where it stays whole), processes it as new (the
/// quarantined copy is no duplicate), and once committed acknowledges it
/// there as the watcher would: moved to the processed folder, or flagged
/// `\Seen`. A mail still failing (over the size limit, say) stays in
/// quarantine, stored once more with its reason.
pub async fn release(
    shared: &Arc<Shared>,
    m: &MailboxConfig,
    stored: &StoredMessage,
) -> Result<Ingested> {
    let mut s = connect(m, &*shared.clock).await?;
    let caps = s.capabilities().await.context("CAPABILITY")?;
    let selected = s
        .select(&m.quarantine_folder)
        .await
        .with_context(|| format!("SELECT {}", m.quarantine_folder))?;
    let uidvalidity = selected.uid_validity.unwrap_or(0);
    let name = m.name.clone();
    let state = shared.with_store(move |st| st.mailbox_state(&name)).await?;
    if state.is_some_and(|st| st.uidvalidity == uidvalidity) {
        anyhow::bail!(
            "folders {} and {} of mailbox {} have the same UIDVALIDITY {uidvalidity}: a released mail could not be told from the watched folder's",
            m.folder,
            m.quarantine_folder,
            m.name
        );
    }
    let query = match &stored.message_id {
        Some(id) if !id.contains(['"', '\\']) => format!("HEADER Message-ID \"{id}\""),
        _ => "ALL".to_string(),
    };
    let mut uids: Vec<u32> = s
        .uid_search(&query)
        .await
        .with_context(|| format!("UID SEARCH {query}"))?
        .into_iter()
        .collect();
    drain(&mut s);
    uids.sort_unstable();
    let engine = shared.engine();
    let mut found = None;
    let mailbox = m.name.as_str();
    for chunk in uids.chunks(50) {
        let fetched_at = shared.clock.now();
        let got: Vec<Fetched> = s
            .uid_fetch(uid_set(chunk), "(UID INTERNALDATE RFC822.SIZE BODY.PEEK[])")
            .await
            .context("UID FETCH")?
            .try_filter_map(|f| async move {
                let Some(uid) = f.uid else { return Ok(None) };
                let raw = f.body().unwrap_or_default().to_vec();
                Ok(Some(fetched(
                    mailbox,
                    uidvalidity,
                    uid,
                    f.size,
                    raw,
                    f.internal_date(),
                    fetched_at,
                )))
            })
            .try_collect()
            .await
            .context("UID FETCH")?;
        drain(&mut s);
        found = got.into_iter().find(|f| {
            let read = engine.read(&f.raw, f.arrival);
            let i = &read.inbound;
            i.content_hash == stored.content_hash
                || (stored.message_id.is_some()
                    && i.message_id == stored.message_id
                    && i.sender_address().map(str::to_ascii_lowercase)
                        == stored.sender.as_deref().map(str::to_ascii_lowercase))
        });
        if found.is_some() {
            break;
        }
    }
    let Some(f) = found else {
        anyhow::bail!(
            "message row {} is not in folder {} of mailbox {} any more: it cannot be released",
            stored.row,
            m.quarantine_folder,
            m.name
        );
    };
    let (clock, mc, uid) = (shared.clock.clone(), m.clone(), f.uid);
    let done = shared
        .with_store(move |st| -> Result<Ingested> {
            if let Some(row) = st.stored_row(&mc.name, f.uidvalidity, f.uid)? {
                anyhow::bail!("it was released before: stored as message row {row}");
            }
            st.in_batch(|st| engine.ingest_released(st, &mc, &f, &*clock))
        })
        .await?;
    if !done.outcome.set_aside() {
        let w = Watcher {
            shared,
            m,
            uidvalidity,
            can_move: caps.has_str("MOVE"),
            can_uidplus: caps.has_str("UIDPLUS"),
        };
        w.ack(&mut s, &[uid], false).await?;
    }
    let _ = s.logout().await;
    Ok(done)
}

/// A fetched message of `mailbox` as intake takes it. Its arrival is its
/// INTERNALDATE; a server that leaves it out gets a warning naming the
/// mailbox and UID, and the mail arrives at `fetched_at`, the instant it was
/// fetched (business-time arithmetic from 1970 would be decades off).
fn fetched(
    mailbox: &str,
    uidvalidity: u32,
    uid: u32,
    size: Option<u32>,
    raw: Vec<u8>,
    internal_date: Option<DateTime<FixedOffset>>,
    fetched_at: DateTime<Utc>,
) -> Fetched {
    let arrival = match internal_date {
        Some(d) => d.with_timezone(&Utc),
        None => {
            warn!(
                mailbox,
                uid,
                "mailbox {mailbox}: UID {uid} came without INTERNALDATE: its arrival is when it was fetched ({})",
                fetched_at.to_rfc3339()
            );
            fetched_at
        }
    };
    Fetched {
        uidvalidity,
        uid,
        size: size.map(u64::from).unwrap_or(raw.len() as u64),
        raw,
        arrival,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_21_a_mail_without_internaldate_arrives_when_it_was_fetched() {
        let clock = crate::clock::FixedClock::new(
            DateTime::parse_from_rfc3339("2026-03-02T17:30:00Z")
                .unwrap()
                .with_timezone(&Utc),
        );
        let now = clock.now();
        let f = fetched(
            "support",
            7,
            42,
            None,
            b"Subject: x\r\n\r\nhi".to_vec(),
            None,
            now,
        );
        assert_eq!(f.arrival, now);
        assert_eq!((f.uidvalidity, f.uid, f.size), (7, 42, 16));
        let date = DateTime::parse_from_rfc3339("2026-03-01T08:00:00-08:00").unwrap();
        let f = fetched("support", 7, 43, Some(99), Vec::new(), Some(date), now);
        assert_eq!(f.arrival, date.with_timezone(&Utc));
        assert_eq!(f.size, 99);
    }

    #[test]
    fn issue_24_reading_on_every_core_keeps_the_batch_in_order() {
        for n in [0usize, 1, 7, 8, 17, 100, 501] {
            let items: Vec<usize> = (0..n).collect();
            let threads = std::sync::Mutex::new(std::collections::HashSet::new());
            let out = on_cores(items.clone(), |part| {
                threads.lock().unwrap().insert(std::thread::current().id());
                part.into_iter().map(|x| x * 2).collect()
            });
            assert_eq!(
                out,
                items.iter().map(|x| x * 2).collect::<Vec<_>>(),
                "{n} items"
            );
            let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
            let expected = cores.min(n / 8).max(1);
            assert_eq!(threads.lock().unwrap().len(), expected, "{n} items");
        }
    }

    #[test]
    fn uid_sets_compress_runs() {
        assert_eq!(uid_set(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
        assert_eq!(uid_set(&[5]), "5");
        assert_eq!(uid_set(&[]), "");
    }
}
