//! What the daemon's tasks share: the engine, the store behind its lock, the clock, the outbox's wake-up, the SMTP settings, the webhooks and the loops' heartbeats.

use crate::clock::SharedClock;
use crate::config::{Config, SmtpConfig, Webhook};
use crate::health::Health;
use crate::intake::Engine;
use crate::metrics::Metrics;
use crate::store::{RunLock, SentJournal, Store};
use anyhow::{Context, Result};
use parking_lot::{Mutex, RwLock};
use std::sync::Arc;
use tokio::sync::Notify;

/// The longest the outbox and the scheduler wait before they look at the
/// store again: mail queued and timers set by another process (the shell
/// commands beside a running daemon) are seen within about this.
pub const POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// What every task shares.
#[derive(Debug)]
pub struct Shared {
    /// Swapped whole by a reload; a batch keeps the one it was read with.
    engine: RwLock<Arc<Engine>>,
    pub store: Arc<Mutex<Store>>,
    pub clock: SharedClock,
    /// Where the outbox notes each accepted mail before the store records it.
    pub sent_journal: SentJournal,
    pub outbox_wake: Notify,
    /// Woken after an intake commit, which may have set timers.
    pub timer_wake: Notify,
    /// Swapped by a reload (the outbox is restarted to use it).
    smtp: RwLock<SmtpConfig>,
    /// The `[[webhook]]` entries the sender reads at each step (swapped by a reload).
    webhooks: RwLock<Arc<Vec<Webhook>>>,
    /// Each loop's heartbeat and the mailboxes logged in.
    pub health: Arc<Health>,
    pub metrics: Arc<Metrics>,
    /// One daemon per database: held until the last task lets go.
    pub run_lock: Option<RunLock>,
    /// The database's path, for the messages that name it.
    pub database: crate::store::Location,
    /// This node's mailbox leases (all held, unchecked, on SQLite).
    pub leases: Arc<crate::leases::Leases>,
    /// Intake could not write the database (a full disk, a failed
    /// filesystem) and has not committed since: the watchers say so once.
    pub store_failing: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

impl Shared {
    /// Runs `f` on the store off the async threads: on a blocking thread,
    /// with the store's lock held for `f` alone, in the caller's span (so
    /// its log lines name the mailbox or the loop). Every task reaches the
    /// store this way but intake's batches, which hand the lock over
    /// between slices.
    pub async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.store.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _in = span.enter();
            let mut st = store.lock();
            f(&mut st)
        })
        .await
        .context("store task")?
    }

    /// What a daemon's tasks share; on SQLite it holds the run lock of the
    /// database (on PostgreSQL, several daemons share it through leases).
    pub fn new(config: &Config, clock: SharedClock) -> Result<Arc<Shared>> {
        let lock = match config.database.sqlite_path() {
            Some(path) => Some(RunLock::acquire(path)?),
            None => None,
        };
        Self::build(config, clock, lock, true)
    }

    /// The same for a command that works beside a running daemon
    /// (`quarantine release`): no run lock; it sends nothing itself.
    pub fn beside_daemon(config: &Config, clock: SharedClock) -> Result<Arc<Shared>> {
        Self::build(config, clock, None, false)
    }

    /// `daemon`: a daemon's (on PostgreSQL, one node among several, with
    /// its leases), or a command's beside one.
    fn build(
        config: &Config,
        clock: SharedClock,
        run_lock: Option<RunLock>,
        daemon: bool,
    ) -> Result<Arc<Shared>> {
        let postgres = config.database.sqlite_path().is_none();
        // Off the async threads: a PostgreSQL client blocks on a runtime of its own.
        let lease_store = match daemon && postgres {
            true => Some(crate::store::off_async(|| {
                Store::open_at(&config.database)
            })?),
            false => None,
        };
        let leases = Arc::new(crate::leases::Leases::new(
            &config.node,
            config.lease,
            lease_store,
        ));
        let claimer = leases.claimer();
        let store = crate::store::off_async(|| {
            let mut store = Store::open_at(&config.database)?;
            store.set_node(&claimer);
            store.set_webhooks(&config.pack.name, &config.subscriptions())?;
            Ok(store)
        })?;
        let sent_journal = SentJournal::open_file(&config.journal)?;
        let sent_journal = match &config.database {
            crate::store::Location::Postgres(t) => sent_journal.share_with(t, &claimer),
            crate::store::Location::Sqlite(_) => sent_journal,
        };
        Ok(Arc::new(Shared {
            sent_journal,
            engine: RwLock::new(Arc::new(Engine::from_config(config)?)),
            store: Arc::new(Mutex::new(store)),
            health: {
                let h = Health::new(clock.clone());
                if postgres {
                    h.set_clustered();
                }
                h
            },
            metrics: Arc::new(Metrics::new()),
            clock,
            outbox_wake: Notify::new(),
            timer_wake: Notify::new(),
            smtp: RwLock::new(config.smtp.clone()),
            webhooks: RwLock::new(Arc::new(config.webhooks.clone())),
            run_lock,
            database: config.database.clone(),
            leases,
            store_failing: std::sync::atomic::AtomicBool::new(false),
        }))
    }
}

impl Shared {
    /// The engine in force now.
    pub fn engine(&self) -> Arc<Engine> {
        self.engine.read().clone()
    }

    /// What renders outgoing mail now (swapped with the engine by a reload).
    pub fn renderer(&self) -> Arc<crate::outgoing::Renderer> {
        self.engine.read().renderer.clone()
    }

    /// The SMTP settings in force now.
    pub fn smtp(&self) -> SmtpConfig {
        self.smtp.read().clone()
    }

    /// Puts a reloaded engine and SMTP settings in force.
    pub fn swap(&self, engine: Engine, smtp: SmtpConfig) {
        *self.engine.write() = Arc::new(engine);
        *self.smtp.write() = smtp;
    }

    /// The webhooks in force now.
    pub fn webhooks(&self) -> Arc<Vec<Webhook>> {
        self.webhooks.read().clone()
    }

    /// Puts reloaded webhooks in force: the sender's and those the store
    /// queues deliveries for.
    pub async fn set_webhooks(&self, config: &Config) -> Result<()> {
        *self.webhooks.write() = Arc::new(config.webhooks.clone());
        let (pack, subs) = (config.pack.name.clone(), config.subscriptions());
        self.with_store(move |st| st.set_webhooks(&pack, &subs))
            .await
    }
}
