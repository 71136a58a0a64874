//! This node's mailbox leases as the watchers see them: a watch channel per mailbox holding the epoch while held, the fence of each commit, and waiting for a lease. On SQLite every mailbox is this daemon's (the run lock makes it the only one) and nothing is fenced.

use crate::store::{Fence, LeaseLost, Store};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// This node's leases, one watch channel per mailbox: `Some(epoch)` while
/// held.
pub struct Leases {
    pub node: String,
    /// This process among all that ever ran as `node`: a name is one live
    /// process's at a time, and its claims of queued mail are this one's.
    pub incarnation: String,
    pub ttl: Duration,
    /// False on SQLite: every mailbox is held, nothing is fenced.
    pub enabled: bool,
    /// The lease loop's own session: never queued behind the store's lock
    /// (a slice waiting for the writers' lock), so the node's row is
    /// renewed on time.
    pub store: Option<Arc<parking_lot::Mutex<Store>>>,
    held: parking_lot::Mutex<BTreeMap<String, watch::Sender<Option<i64>>>>,
    /// Since when each mailbox's watcher has failed to log in and select
    /// (absent: it is logged in, or has not tried yet).
    failing: parking_lot::Mutex<BTreeMap<String, Instant>>,
    /// Mailboxes handed back for their watcher's trouble, not taken again
    /// before the instant while other nodes live.
    resting: parking_lot::Mutex<BTreeMap<String, Instant>>,
}

impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Leases({}/{})", self.node, self.incarnation)
    }
}

impl Leases {
    /// `store`: the lease loop's session (PostgreSQL); `None` on SQLite.
    pub fn new(node: &str, ttl: Duration, store: Option<Store>) -> Leases {
        Leases {
            node: node.to_string(),
            incarnation: crate::secret::random_hex128(),
            ttl,
            enabled: store.is_some(),
            store: store.map(|s| Arc::new(parking_lot::Mutex::new(s))),
            held: parking_lot::Mutex::new(BTreeMap::new()),
            failing: parking_lot::Mutex::new(BTreeMap::new()),
            resting: parking_lot::Mutex::new(BTreeMap::new()),
        }
    }

    /// The watcher of `mailbox` logged in (`ok`) or failed to, at `now`.
    pub fn watcher(&self, mailbox: &str, ok: bool, now: Instant) {
        let mut failing = self.failing.lock();
        if ok {
            failing.remove(mailbox);
        } else {
            failing.entry(mailbox.to_string()).or_insert(now);
        }
    }

    /// Whether `mailbox`'s watcher has failed to log in for longer than
    /// `grace` at `now`: its lease goes to a node that may do better.
    pub fn watcher_failing(&self, mailbox: &str, grace: Duration, now: Instant) -> bool {
        self.failing
            .lock()
            .get(mailbox)
            .is_some_and(|since| now.saturating_duration_since(*since) > grace)
    }

    /// Hands `mailbox` to the others until `until` (its watcher failed here).
    pub fn rest(&self, mailbox: &str, until: Instant) {
        self.failing.lock().remove(mailbox);
        self.resting.lock().insert(mailbox.to_string(), until);
    }

    /// Whether `mailbox` rests at `now` (not taken while others live).
    pub fn resting(&self, mailbox: &str, now: Instant) -> bool {
        self.resting.lock().get(mailbox).is_some_and(|u| now < *u)
    }

    /// What this process's claims of queued mail say (`node/incarnation`).
    pub fn claimer(&self) -> String {
        format!("{}/{}", self.node, self.incarnation)
    }

    /// Runs `f` on the lease loop's session, off the async threads.
    pub async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let store = self
            .store
            .clone()
            .ok_or_else(|| anyhow::anyhow!("no leases on a SQLite store"))?;
        tokio::task::spawn_blocking(move || f(&mut store.lock())).await?
    }

    fn channel(&self, mailbox: &str) -> watch::Sender<Option<i64>> {
        self.held
            .lock()
            .entry(mailbox.to_string())
            .or_insert_with(|| watch::channel(None).0)
            .clone()
    }

    /// The fence of `mailbox`'s commits: `None` on SQLite (nothing to
    /// check), else the epoch held, or an error when the lease is not held.
    pub fn fence(&self, mailbox: &str) -> Result<Option<Fence>, LeaseLost> {
        if !self.enabled {
            return Ok(None);
        }
        match *self.channel(mailbox).borrow() {
            Some(epoch) => Ok(Some(Fence {
                node: self.node.clone(),
                epoch,
            })),
            None => Err(LeaseLost {
                mailbox: mailbox.to_string(),
                epoch: 0,
            }),
        }
    }

    /// Whether this node holds `mailbox` (always on SQLite).
    pub fn holds(&self, mailbox: &str) -> bool {
        !self.enabled || self.channel(mailbox).borrow().is_some()
    }

    /// Waits until this node holds `mailbox`; false when cancelled first.
    pub async fn wait_held(&self, mailbox: &str, cancel: &CancellationToken) -> bool {
        if !self.enabled {
            return true;
        }
        let mut rx = self.channel(mailbox).subscribe();
        tokio::select! {
            r = rx.wait_for(|e| e.is_some()) => r.is_ok(),
            _ = cancel.cancelled() => false,
        }
    }

    /// Completes when this node no longer holds `mailbox` (never on SQLite).
    pub async fn lost(&self, mailbox: &str) {
        if !self.enabled {
            return std::future::pending().await;
        }
        let mut rx = self.channel(mailbox).subscribe();
        let _ = rx.wait_for(|e| e.is_none()).await;
    }

    pub fn set(&self, mailbox: &str, epoch: Option<i64>) {
        self.channel(mailbox).send_replace(epoch);
    }

    /// The mailboxes held, with their epochs.
    pub fn held(&self) -> Vec<(String, i64)> {
        self.held
            .lock()
            .iter()
            .filter_map(|(m, tx)| tx.borrow().map(|e| (m.clone(), e)))
            .collect()
    }
}
