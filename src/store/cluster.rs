//! Several daemons on one PostgreSQL store: the nodes (each renewing its row while it runs), the mailbox leases (holder, epoch, expiry) and the fence every commit of a watcher's mail checks. Times are the server's clock, the one all nodes share. On SQLite none of this exists: the run lock keeps one daemon per database.

use super::conn::Store;
use super::db::{Backend, OptionalExtension, params};
use anyhow::{Result, bail};
use serde::Serialize;

/// The server's time, as the store writes instants (`columns::ts`).
pub(super) const NOW: &str =
    r#"to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"#;

/// The server's time `secs` seconds from now (`?` numbered by the caller).
fn later(param: &str) -> String {
    format!(
        r#"to_char((clock_timestamp() + make_interval(secs => CAST({param} AS DOUBLE PRECISION))) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"#
    )
}

/// What a watcher's commits must still hold: its node and the epoch of its
/// mailbox's lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub node: String,
    pub epoch: i64,
}

/// A commit refused: another node took the mailbox (or it was handed back).
#[derive(Debug)]
pub struct LeaseLost {
    pub mailbox: String,
    pub epoch: i64,
}

impl std::fmt::Display for LeaseLost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "mailbox {} is no longer this node's (its lease of epoch {} was taken over or handed back): the commit was refused",
            self.mailbox, self.epoch
        )
    }
}

impl std::error::Error for LeaseLost {}

/// A daemon on the store.
#[derive(Debug, Clone, Serialize)]
pub struct NodeRow {
    pub node: String,
    pub pid: i64,
    pub started_at: String,
    pub renewed_at: String,
    pub expires_at: String,
    pub live: bool,
}

/// A mailbox's lease.
#[derive(Debug, Clone, Serialize)]
pub struct LeaseRow {
    pub mailbox: String,
    pub holder: Option<String>,
    pub epoch: i64,
    pub renewed_at: String,
    pub expires_at: String,
    pub live: bool,
    pub takeovers: i64,
}

impl Store {
    /// Names the daemon this store writes for (its claims of queued mail).
    pub fn set_node(&mut self, node: &str) {
        self.node = Some(node.to_string());
    }

    fn postgres_only(&self, what: &str) -> Result<()> {
        if self.conn.backend() != Backend::Postgres {
            bail!(
                "{what} exists only on a PostgreSQL store (SQLite has one daemon, under its run lock)"
            );
        }
        Ok(())
    }

    /// Writes (or renews) this process's row as `node`, alive for `secs`
    /// more seconds. False when another live process (another
    /// `incarnation`) holds the name: two daemons may not share one.
    pub fn renew_node(
        &mut self,
        node: &str,
        incarnation: &str,
        pid: u32,
        secs: f64,
    ) -> Result<bool> {
        self.postgres_only("a node")?;
        let sql = format!(
            "INSERT INTO nodes (node, incarnation, pid, started_at, renewed_at, expires_at)
             VALUES (?1, ?2, ?3, {NOW}, {NOW}, {exp})
             ON CONFLICT (node) DO UPDATE SET renewed_at = excluded.renewed_at,
                 expires_at = excluded.expires_at, pid = excluded.pid,
                 incarnation = excluded.incarnation,
                 started_at = CASE WHEN nodes.incarnation = excluded.incarnation
                                   THEN nodes.started_at ELSE excluded.started_at END
             WHERE nodes.incarnation = excluded.incarnation OR nodes.expires_at <= {NOW}",
            exp = later("?4")
        );
        Ok(self
            .conn
            .execute(&sql, params![node, incarnation, pid, secs])?
            == 1)
    }

    /// This node stops: its leases are handed back at once and its row no
    /// longer counts as live.
    pub fn leave(&mut self, node: &str, incarnation: &str) -> Result<()> {
        self.postgres_only("a node")?;
        let tx = self.conn.transaction()?;
        // Only while the name is still this process's.
        let ours = tx.execute(
            &format!("UPDATE nodes SET expires_at = {NOW} WHERE node = ?1 AND incarnation = ?2"),
            params![node, incarnation],
        )? == 1;
        if ours {
            tx.execute(
                &format!(
                    "UPDATE mailbox_leases SET holder = NULL, expires_at = {NOW} WHERE holder = ?1"
                ),
                [node],
            )?;
        }
        tx.commit()
    }

    /// This node takes no more mailboxes for `secs` seconds (one of its
    /// watchers failed): the others keep what they hold beyond their share.
    pub fn rest_node(&mut self, node: &str, incarnation: &str, secs: f64) -> Result<()> {
        self.postgres_only("a node")?;
        self.conn.execute(
            &format!(
                "UPDATE nodes SET resting_until = {} WHERE node = ?1 AND incarnation = ?2",
                later("?3")
            ),
            params![node, incarnation, secs],
        )?;
        Ok(())
    }

    /// How many live nodes other than `node` hold fewer than `share`
    /// mailboxes and take more (not resting).
    pub fn nodes_wanting(&self, node: &str, share: usize) -> Result<usize> {
        self.postgres_only("a node")?;
        let n: i64 = self.conn.query_row(
            &format!(
                "SELECT count(*) FROM nodes n
                 WHERE n.node <> ?1 AND n.expires_at > {NOW}
                   AND (n.resting_until IS NULL OR n.resting_until <= {NOW})
                   AND (SELECT count(*) FROM mailbox_leases l
                        WHERE l.holder = n.node AND l.expires_at > {NOW}) < ?2"
            ),
            params![node, share as i64],
            |r| r.get(0),
        )?;
        Ok(n as usize)
    }

    /// How many nodes are live (their row renewed within its lease).
    pub fn live_nodes(&self) -> Result<usize> {
        self.postgres_only("a node")?;
        let n: i64 = self.conn.query_row(
            &format!("SELECT count(*) FROM nodes WHERE expires_at > {NOW}"),
            (),
            |r| r.get(0),
        )?;
        Ok(n as usize)
    }

    /// Takes the lease of `mailbox` for `secs` seconds when nobody holds it,
    /// its holder's lease ran out, or this node held it (before a restart):
    /// the new epoch, or `None` when another node holds it.
    pub fn acquire_lease(&mut self, mailbox: &str, node: &str, secs: f64) -> Result<Option<i64>> {
        self.acquire_lease_idle(mailbox, node, secs, 0.0)
    }

    /// [`Store::acquire_lease`], only when the lease ended `idle` seconds
    /// ago or more (no node took it meanwhile: a node beyond its share may).
    pub fn acquire_lease_idle(
        &mut self,
        mailbox: &str,
        node: &str,
        secs: f64,
        idle: f64,
    ) -> Result<Option<i64>> {
        self.postgres_only("a mailbox lease")?;
        let sql = format!(
            "INSERT INTO mailbox_leases (mailbox, holder, epoch, acquired_at, renewed_at, expires_at)
             VALUES (?1, ?2, 1, {NOW}, {NOW}, {exp})
             ON CONFLICT (mailbox) DO UPDATE SET holder = excluded.holder,
                 epoch = mailbox_leases.epoch + 1, acquired_at = excluded.acquired_at,
                 renewed_at = excluded.renewed_at, expires_at = excluded.expires_at,
                 takeovers = mailbox_leases.takeovers
                     + CASE WHEN mailbox_leases.holder IS NOT NULL AND mailbox_leases.holder <> excluded.holder
                            THEN 1 ELSE 0 END
             WHERE (mailbox_leases.holder IS NULL OR mailbox_leases.holder = excluded.holder
                    OR mailbox_leases.expires_at <= {NOW})
               AND (CAST(?4 AS DOUBLE PRECISION) <= 0 OR mailbox_leases.expires_at <= {ago})
             RETURNING epoch",
            exp = later("?3"),
            ago = later("-CAST(?4 AS DOUBLE PRECISION)")
        );
        self.conn
            .query_row(&sql, params![mailbox, node, secs, idle], |r| r.get(0))
            .optional()
    }

    /// Renews a lease this node holds at `epoch`; false when it is lost.
    pub fn renew_lease(&mut self, mailbox: &str, fence: &Fence, secs: f64) -> Result<bool> {
        self.postgres_only("a mailbox lease")?;
        let sql = format!(
            "UPDATE mailbox_leases SET renewed_at = {NOW}, expires_at = {exp}
             WHERE mailbox = ?1 AND holder = ?2 AND epoch = ?3",
            exp = later("?4")
        );
        Ok(self
            .conn
            .execute(&sql, params![mailbox, fence.node, fence.epoch, secs])?
            == 1)
    }

    /// Hands a lease back (a node over its share, or stopping).
    pub fn release_lease(&mut self, mailbox: &str, fence: &Fence) -> Result<()> {
        self.postgres_only("a mailbox lease")?;
        self.conn.execute(
            &format!(
                "UPDATE mailbox_leases SET holder = NULL, expires_at = {NOW}
                 WHERE mailbox = ?1 AND holder = ?2 AND epoch = ?3"
            ),
            params![mailbox, fence.node, fence.epoch],
        )?;
        Ok(())
    }

    /// The fence of a watcher's commit, checked in its transaction: the
    /// lease is still this node's at this epoch. The row is locked until
    /// the commit, so a takeover waits for it; a node that lost the lease
    /// (paused, cut off) commits nothing.
    pub fn check_fence(&mut self, mailbox: &str, fence: &Fence) -> Result<()> {
        let held = self
            .conn
            .prepare_cached(
                "SELECT epoch FROM mailbox_leases WHERE mailbox = ?1 AND holder = ?2 AND epoch = ?3 FOR SHARE",
            )?
            .exists(params![mailbox, fence.node, fence.epoch])?;
        if !held {
            return Err(LeaseLost {
                mailbox: mailbox.to_string(),
                epoch: fence.epoch,
            }
            .into());
        }
        Ok(())
    }

    /// Sessions waiting for the writers' lock (`db::WRITER_LOCK_KEY`):
    /// writers of any node queued behind the one writing.
    pub fn writers_waiting(&self) -> Result<i64> {
        self.postgres_only("the writers' lock")?;
        Ok(self.conn.query_row(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
               AND ((classid::bigint << 32) | objid::bigint) = ?1",
            [super::db::WRITER_LOCK_KEY],
            |r| r.get(0),
        )?)
    }

    /// Every node and every lease, for `ticketd nodes`.
    pub fn cluster(&self) -> Result<(Vec<NodeRow>, Vec<LeaseRow>)> {
        self.postgres_only("`nodes`")?;
        let nodes = self
            .conn
            .prepare(&format!(
                "SELECT node, pid, started_at, renewed_at, expires_at, expires_at > {NOW}
                 FROM nodes ORDER BY node"
            ))?
            .query_map((), |r| {
                Ok(NodeRow {
                    node: r.get(0)?,
                    pid: r.get(1)?,
                    started_at: r.get(2)?,
                    renewed_at: r.get(3)?,
                    expires_at: r.get(4)?,
                    live: r.get(5)?,
                })
            })?
            .collect::<Result<Vec<_>>>()?;
        let leases = self
            .conn
            .prepare(&format!(
                "SELECT mailbox, holder, epoch, renewed_at, expires_at,
                        holder IS NOT NULL AND expires_at > {NOW}, takeovers
                 FROM mailbox_leases ORDER BY mailbox"
            ))?
            .query_map((), |r| {
                Ok(LeaseRow {
                    mailbox: r.get(0)?,
                    holder: r.get(1)?,
                    epoch: r.get(2)?,
                    renewed_at: r.get(3)?,
                    expires_at: r.get(4)?,
                    live: r.get(5)?,
                    takeovers: r.get(6)?,
                })
            })?
            .collect::<Result<Vec<_>>>()?;
        Ok((nodes, leases))
    }
}
