//! What the daemon's tasks share: the engine, the store behind its lock, the clock, the outbox's wake-up and the SMTP settings.

use crate::clock::SharedClock;
use crate::config::{Config, SmtpConfig};
use crate::intake::Engine;
use crate::store::{RunLock, SentJournal, Store};
use anyhow::Result;
use parking_lot::Mutex;
use std::sync::Arc;
use tokio::sync::Notify;

/// The longest the outbox and the scheduler wait before they look at the
/// store again: mail queued and timers set by another process (the shell
/// commands beside a running daemon) are seen within about this.
pub const POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// What every task shares.
#[derive(Debug)]
pub struct Shared {
    pub engine: Engine,
    pub store: Arc<Mutex<Store>>,
    pub clock: SharedClock,
    /// Where the outbox notes each accepted mail before the store records it.
    pub sent_journal: SentJournal,
    pub outbox_wake: Notify,
    /// Woken after an intake commit, which may have set timers.
    pub timer_wake: Notify,
    pub smtp: SmtpConfig,
    /// One daemon per database: held until the last task lets go.
    pub run_lock: RunLock,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Store")
    }
}

impl Shared {
    pub fn new(config: &Config, clock: SharedClock) -> Result<Arc<Shared>> {
        let run_lock = RunLock::acquire(&config.database)?;
        let store = Store::open(&config.database)?;
        let sent_journal = SentJournal::open(&config.database)?;
        Ok(Arc::new(Shared {
            sent_journal,
            engine: Engine::from_config(config)?,
            store: Arc::new(Mutex::new(store)),
            clock,
            outbox_wake: Notify::new(),
            timer_wake: Notify::new(),
            smtp: config.smtp.clone(),
            run_lock,
        }))
    }
}
