//! Prometheus metrics: the counters and histograms the loops update, the gauges read from the store at each scrape, and the responder for `/metrics` and `/healthz` on `http`'s server.

use crate::clock::SharedClock;
use crate::health::Health;
use crate::http;
use crate::store::{Gauges, Store};
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::warn;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MessageLabels {
    pub mailbox: String,
    pub outcome: String,
    pub class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MailboxLabels {
    pub mailbox: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// 2xx, 4xx, 5xx, no_connection or unanswered.
    pub class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    /// ticket.created, escalation.due...
    pub event: String,
    /// delivered, retried or failed.
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

/// Every series ticketd exports (all named `ticketd_*`).
pub struct Metrics {
    registry: Registry,
    pub messages: Family<MessageLabels, Counter>,
    /// INTERNALDATE to the commit of the mail's effects.
    pub intake_latency: Histogram,
    /// The commit that queued a mail to the SMTP server's 250 for it.
    pub send_latency: Histogram,
    pub smtp_results: Family<ResultLabels, Counter>,
    pub imap_reconnects: Family<MailboxLabels, Counter>,
    pub imap_login_failures: Family<MailboxLabels, Counter>,
    /// New tickets' acknowledgements held back by `[limits] new_ticket_acks`.
    pub acks_capped: Counter,
    /// Webhook attempts by event and result.
    pub webhook_deliveries: Family<WebhookLabels, Counter>,
    outbox_queued: Gauge,
    outbox_oldest_age: FloatGauge,
    quarantined: Gauge,
    timers_pending: Gauge,
    timers_overdue: Gauge,
    live: Gauge,
    /// Several daemons on one PostgreSQL store.
    pub cluster: ClusterMetrics,
    /// Serialises scrapes: the gauges are set, then the whole registry encoded.
    scrape: Mutex<()>,
}

/// The metrics of several daemons on one PostgreSQL store.
pub struct ClusterMetrics {
    /// Mailbox leases this node holds.
    pub leases_held: Gauge,
    /// Leases taken, by mailbox (at start, and each takeover).
    pub leases_taken: Family<MailboxLabels, Counter>,
    /// Leases handed back to other nodes, by mailbox.
    pub leases_handed_back: Family<MailboxLabels, Counter>,
    /// Commits refused because the mailbox's lease was lost.
    pub fenced_commits: Counter,
    /// Writers of every node waiting for the writers' lock (a scrape's gauge).
    writers_waiting: Gauge,
}

impl ClusterMetrics {
    fn register(registry: &mut Registry) -> ClusterMetrics {
        let m = ClusterMetrics {
            leases_held: Gauge::default(),
            leases_taken: Family::default(),
            leases_handed_back: Family::default(),
            fenced_commits: Counter::default(),
            writers_waiting: Gauge::default(),
        };
        registry.register(
            "leases_held",
            "Mailbox leases this node holds (several daemons on PostgreSQL)",
            m.leases_held.clone(),
        );
        registry.register(
            "leases_taken",
            "Mailbox leases this node took (at start and on each takeover), by mailbox",
            m.leases_taken.clone(),
        );
        registry.register(
            "leases_handed_back",
            "Mailbox leases this node handed back to share the mailboxes, by mailbox",
            m.leases_handed_back.clone(),
        );
        registry.register(
            "fenced_commits",
            "Commits refused because this node no longer held the mailbox's lease",
            m.fenced_commits.clone(),
        );
        registry.register(
            "writers_waiting",
            "Writers of every node waiting for the store's writers' lock (several daemons on PostgreSQL)",
            m.writers_waiting.clone(),
        );
        m
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    // 10 ms to about 11 minutes.
    exponential_buckets(0.01, 2.0, 17)
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("ticketd");
        let messages = Family::<MessageLabels, Counter>::default();
        registry.register(
            "messages",
            "Mail read from the mailboxes, by mailbox, outcome and class",
            messages.clone(),
        );
        let intake_latency = Histogram::new(latency_buckets());
        registry.register(
            "intake_latency_seconds",
            "From a mail's arrival (INTERNALDATE) to the commit of its effects",
            intake_latency.clone(),
        );
        let send_latency = Histogram::new(latency_buckets());
        registry.register(
            "send_latency_seconds",
            "From the commit that queued a mail to the SMTP server's 250 for it",
            send_latency.clone(),
        );
        let smtp_results = Family::<ResultLabels, Counter>::default();
        for class in ["2xx", "4xx", "5xx", "no_connection", "unanswered"] {
            // Every class is a series from the start, so a rate over it is 0, not absent.
            let _ = smtp_results.get_or_create(&ResultLabels {
                class: class.to_string(),
            });
        }
        registry.register(
            "smtp_results",
            "SMTP attempts by result: 2xx, 4xx, 5xx, no_connection, unanswered",
            smtp_results.clone(),
        );
        let imap_reconnects = Family::<MailboxLabels, Counter>::default();
        registry.register(
            "imap_reconnects",
            "IMAP sessions lost and retried, by mailbox",
            imap_reconnects.clone(),
        );
        let imap_login_failures = Family::<MailboxLabels, Counter>::default();
        registry.register(
            "imap_login_failures",
            "IMAP logins refused, by mailbox",
            imap_login_failures.clone(),
        );
        let acks_capped = Counter::default();
        registry.register(
            "acks_capped",
            "New tickets' acknowledgements held back by the cap on all of them ([limits] new_ticket_acks)",
            acks_capped.clone(),
        );
        let webhook_deliveries = Family::<WebhookLabels, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "Webhook delivery attempts by event and result: delivered, retried (to be tried again), failed (for good)",
            webhook_deliveries.clone(),
        );
        let outbox_queued = Gauge::default();
        registry.register(
            "outbox_queued",
            "Mail queued to send",
            outbox_queued.clone(),
        );
        let outbox_oldest_age = FloatGauge::default();
        registry.register(
            "outbox_oldest_queued_age_seconds",
            "How long the oldest mail still queued has waited (0 when none)",
            outbox_oldest_age.clone(),
        );
        let quarantined = Gauge::default();
        registry.register(
            "quarantined_messages",
            "Stored messages in quarantine",
            quarantined.clone(),
        );
        let timers_pending = Gauge::default();
        registry.register(
            "timers_pending",
            "Timers (escalation steps) waiting to fire",
            timers_pending.clone(),
        );
        let timers_overdue = Gauge::default();
        registry.register(
            "timers_overdue",
            "Pending timers already due",
            timers_overdue.clone(),
        );
        let live = Gauge::default();
        registry.register(
            "live",
            "1 while every loop (watchers, outbox, scheduler) is live",
            live.clone(),
        );
        let build = Family::<BuildLabels, Gauge>::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_string(),
            })
            .set(1);
        registry.register("build_info", "The running version", build);
        let cluster = ClusterMetrics::register(&mut registry);
        Metrics {
            registry,
            messages,
            intake_latency,
            send_latency,
            smtp_results,
            imap_reconnects,
            imap_login_failures,
            acks_capped,
            webhook_deliveries,
            outbox_queued,
            outbox_oldest_age,
            quarantined,
            timers_pending,
            timers_overdue,
            live,
            cluster,
            scrape: Mutex::new(()),
        }
    }

    /// Counts one mail read and stored.
    pub fn message(&self, mailbox: &str, outcome: &str, class: &str) {
        self.messages
            .get_or_create(&MessageLabels {
                mailbox: mailbox.to_string(),
                outcome: outcome.to_string(),
                class: class.to_string(),
            })
            .inc();
    }

    /// Counts one SMTP result.
    pub fn smtp_result(&self, class: &str) {
        self.smtp_results
            .get_or_create(&ResultLabels {
                class: class.to_string(),
            })
            .inc();
    }

    /// Counts one webhook attempt's result.
    pub fn webhook(&self, event: &str, result: &str) {
        self.webhook_deliveries
            .get_or_create(&WebhookLabels {
                event: event.to_string(),
                result: result.to_string(),
            })
            .inc();
    }

    /// Makes the mailbox's IMAP error series exist (at 0) before any error.
    pub fn mailbox_watched(&self, mailbox: &str) {
        let l = MailboxLabels {
            mailbox: mailbox.to_string(),
        };
        let _ = self.imap_reconnects.get_or_create(&l);
        let _ = self.imap_login_failures.get_or_create(&l);
    }

    pub fn lease_taken(&self, mailbox: &str) {
        self.cluster
            .leases_taken
            .get_or_create(&MailboxLabels {
                mailbox: mailbox.to_string(),
            })
            .inc();
    }

    pub fn lease_handed_back(&self, mailbox: &str) {
        self.cluster
            .leases_handed_back
            .get_or_create(&MailboxLabels {
                mailbox: mailbox.to_string(),
            })
            .inc();
    }

    pub fn imap_reconnect(&self, mailbox: &str, login_refused: bool) {
        let l = MailboxLabels {
            mailbox: mailbox.to_string(),
        };
        self.imap_reconnects.get_or_create(&l).inc();
        if login_refused {
            self.imap_login_failures.get_or_create(&l).inc();
        }
    }

    /// Observes `from` → `to` in `h`, in seconds (0 when the clock went back).
    pub fn observe(h: &Histogram, from: DateTime<Utc>, to: DateTime<Utc>) {
        let s = (to - from).num_microseconds().unwrap_or(0).max(0) as f64 / 1e6;
        h.observe(s);
    }

    /// The text exposition, with the gauges set from `gauges` at `now`.
    pub fn encode(&self, gauges: &Gauges, live: bool, now: DateTime<Utc>) -> String {
        let _one = self.scrape.lock();
        self.outbox_queued.set(gauges.outbox_queued as i64);
        let age = gauges
            .oldest_queued
            .map(|t| (now - t).num_milliseconds().max(0) as f64 / 1000.0)
            .unwrap_or(0.0);
        self.outbox_oldest_age.set(age);
        self.quarantined.set(gauges.quarantined as i64);
        self.timers_pending.set(gauges.timers_pending as i64);
        self.timers_overdue.set(gauges.timers_overdue as i64);
        self.cluster
            .writers_waiting
            .set(gauges.writers_waiting as i64);
        self.live.set(live as i64);
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// What the HTTP responder needs.
pub struct Endpoint {
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    /// The database, read through a read-only connection of the responder's
    /// own: a scrape never waits on, nor holds, the lock intake writes under.
    pub database: crate::store::Location,
    pub clock: SharedClock,
}

/// The limits of the responder: a scrape is one small request, so a client
/// that has not sent its head within `request_head` is dropped, and
/// `connections` at once keep slow or idle clients from taking more tasks
/// and sockets than that (more wait in the listen backlog).
pub const LIMITS: http::Limits = http::Limits {
    connections: 256,
    request_head: Duration::from_secs(5),
    head_bytes: 8192,
};

/// Binds `addr` (an error names it), then answers until `cancel`.
pub async fn serve(
    addr: SocketAddr,
    endpoint: Endpoint,
    cancel: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>> {
    let responder = Arc::new(Responder {
        endpoint,
        reader: tokio::sync::Mutex::new(None),
    });
    let handle = move |req: Request<Incoming>| {
        let r = responder.clone();
        async move { respond(&r, req.method(), req.uri().path()).await }
    };
    http::serve("[metrics] listen", addr, LIMITS, handle, cancel).await
}

/// The endpoint and its read-only store connection, opened at the first
/// scrape (the daemon has made the database by then) and kept.
struct Responder {
    endpoint: Endpoint,
    reader: tokio::sync::Mutex<Option<Store>>,
}

/// The answer to one request (a HEAD's body is dropped by hyper).
async fn respond(r: &Responder, method: &Method, path: &str) -> Response<http::Body> {
    if method != Method::GET && method != Method::HEAD {
        return http::answer(405, "text/plain", "GET only\n");
    }
    match path {
        "/metrics" => match scrape(r).await {
            Ok(text) => http::answer(200, "text/plain; version=0.0.4; charset=utf-8", text),
            Err(e) => {
                warn!("metrics scrape: {e:#}");
                http::answer(500, "text/plain", format!("{e:#}\n"))
            }
        },
        "/healthz" => {
            let stuck = r.endpoint.health.stuck();
            if stuck.is_empty() {
                match r.endpoint.health.holdings() {
                    Some((mine, other)) => http::answer(
                        200,
                        "text/plain",
                        format!(
                            "ok\nholds: {}\nheld by other nodes: {}\n",
                            mine.join(", "),
                            other.join(", ")
                        ),
                    ),
                    None => http::answer(200, "text/plain", "ok\n"),
                }
            } else {
                let list: Vec<String> = stuck.iter().map(|s| s.to_string()).collect();
                http::answer(503, "text/plain", format!("{}\n", list.join("\n")))
            }
        }
        _ => http::answer(404, "text/plain", "/metrics or /healthz\n"),
    }
}

async fn scrape(r: &Responder) -> Result<String> {
    let e = &r.endpoint;
    let now = e.clock.now();
    // One scrape reads at a time, on its own connection, off the async threads.
    let mut reader = r.reader.lock().await;
    let store = reader.take();
    let database = e.database.clone();
    let (store, gauges) = tokio::task::spawn_blocking(move || {
        let store = match store {
            Some(s) => s,
            None => Store::open_read_only_at(&database)?,
        };
        let gauges = store.gauges(now);
        Ok::<_, anyhow::Error>((store, gauges))
    })
    .await
    .context("store task")??;
    *reader = Some(store);
    Ok(e.metrics.encode(&gauges?, e.health.live(), now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn the_exposition_names_every_series_with_its_labels() {
        let m = Metrics::new();
        m.message("support", "processed", "human");
        m.smtp_result("2xx");
        m.imap_reconnect("rma", true);
        m.webhook("ticket.created", "retried");
        let t = DateTime::UNIX_EPOCH;
        Metrics::observe(
            &m.intake_latency,
            t,
            t + chrono::Duration::milliseconds(250),
        );
        let g = Gauges {
            outbox_queued: 2,
            oldest_queued: Some(t),
            quarantined: 1,
            timers_pending: 3,
            timers_overdue: 1,
            writers_waiting: 0,
        };
        let text = m.encode(&g, true, t + chrono::Duration::seconds(90));
        for line in [
            r#"ticketd_messages_total{mailbox="support",outcome="processed",class="human"} 1"#,
            r#"ticketd_smtp_results_total{class="2xx"} 1"#,
            r#"ticketd_imap_login_failures_total{mailbox="rma"} 1"#,
            "ticketd_outbox_queued 2",
            "ticketd_outbox_oldest_queued_age_seconds 90.0",
            "ticketd_timers_overdue 1",
            "ticketd_intake_latency_seconds_count 1",
            "ticketd_acks_capped_total 0",
            r#"ticketd_webhook_deliveries_total{event="ticket.created",result="retried"} 1"#,
            "ticketd_live 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
        assert!(text.contains("ticketd_build_info{version="), "{text}");
    }

    /// A responder on a free loopback port over the database `db`.
    async fn responder(
        db: &std::path::Path,
    ) -> (u16, CancellationToken, tokio::task::JoinHandle<()>) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let clock: SharedClock = Arc::new(crate::clock::SystemClock);
        let cancel = CancellationToken::new();
        let task = serve(
            SocketAddr::from(([127, 0, 0, 1], port)),
            Endpoint {
                metrics: Arc::new(Metrics::new()),
                health: Health::new(clock.clone()),
                database: crate::store::Location::Sqlite(db.to_path_buf()),
                clock,
            },
            cancel.clone(),
        )
        .await
        .unwrap();
        (port, cancel, task)
    }

    async fn request(port: u16, path: &str) -> tokio::net::TcpStream {
        let mut c = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        c.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        c
    }

    async fn status_of(mut c: tokio::net::TcpStream) -> String {
        let mut out = String::new();
        c.read_to_string(&mut out).await.unwrap();
        out.lines().next().unwrap_or("").to_string()
    }

    #[tokio::test]
    async fn issue_20_class_8_scrapes_read_their_own_connection_and_connections_are_capped() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let writer = Store::open(&db).unwrap();
        let (port, cancel, task) = responder(&db).await;
        // Intake holds a write transaction (and the store's lock, which the
        // responder no longer has): a scrape is answered all the same.
        writer.conn.execute_batch("BEGIN IMMEDIATE").unwrap();
        assert_eq!(
            status_of(request(port, "/metrics").await).await,
            "HTTP/1.1 200 OK"
        );
        writer.conn.execute_batch("COMMIT").unwrap();

        // LIMITS.connections idle clients take every place: the next request
        // waits in the backlog until one of them goes.
        let mut idle = Vec::new();
        for _ in 0..LIMITS.connections {
            idle.push(
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .unwrap(),
            );
        }
        let mut waiting = tokio::spawn(status_of(request(port, "/healthz").await));
        let early = tokio::time::timeout(Duration::from_millis(300), &mut waiting).await;
        assert!(early.is_err(), "answered past the cap: {early:?}");
        drop(idle.pop());
        let status = tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("answered once a place is free")
            .unwrap();
        assert_eq!(status, "HTTP/1.1 200 OK");
        cancel.cancel();
        task.await.unwrap();
    }

    /// 200 clients that open a connection and send their request a byte at
    /// a time, never finishing it, while scrapes come: each scrape is
    /// answered at once, and the slow ones are dropped after the head timeout.
    #[tokio::test]
    async fn two_hundred_slow_clients_leave_scrapes_answered() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        drop(Store::open(&db).unwrap());
        let (port, cancel, task) = responder(&db).await;
        let stop = CancellationToken::new();
        let mut slow = Vec::new();
        for _ in 0..200 {
            let mut c = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            let stop = stop.clone();
            slow.push(tokio::spawn(async move {
                for b in b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: "
                    .iter()
                    .cycle()
                {
                    if c.write_all(&[*b]).await.is_err() {
                        return true; // the server hung up on it
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                        _ = stop.cancelled() => return false,
                    }
                }
                false
            }));
        }
        for _ in 0..5 {
            let status = tokio::time::timeout(
                Duration::from_secs(2),
                status_of(request(port, "/metrics").await),
            )
            .await
            .expect("a scrape is answered beside 200 slow clients");
            assert_eq!(status, "HTTP/1.1 200 OK");
        }
        // The slow clients are dropped once their head is late.
        let dropped = tokio::time::timeout(
            LIMITS.request_head + Duration::from_secs(10),
            futures_util::future::join_all(slow),
        )
        .await
        .expect("the slow clients were hung up on");
        assert!(dropped.into_iter().all(|r| r.unwrap()));
        stop.cancel();
        cancel.cancel();
        task.await.unwrap();
    }
}
