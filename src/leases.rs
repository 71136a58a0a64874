//! This node's mailbox leases as the watchers see them: a watch channel per mailbox holding the epoch while held, the fence of each commit, and waiting for a lease. On SQLite every mailbox is this daemon's (the run lock makes it the only one) and nothing is fenced.

use crate::store::{Fence, LeaseLost};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// This node's leases, one watch channel per mailbox: `Some(epoch)` while
/// held.
#[derive(Debug)]
pub struct Leases {
    pub node: String,
    pub ttl: Duration,
    /// False on SQLite: every mailbox is held, nothing is fenced.
    pub enabled: bool,
    held: parking_lot::Mutex<BTreeMap<String, watch::Sender<Option<i64>>>>,
}

impl Leases {
    pub fn new(node: &str, ttl: Duration, enabled: bool) -> Leases {
        Leases {
            node: node.to_string(),
            ttl,
            enabled,
            held: parking_lot::Mutex::new(BTreeMap::new()),
        }
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
