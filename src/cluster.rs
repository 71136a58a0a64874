//! Several daemons on one PostgreSQL store: the loop that renews this node's row and its mailbox leases (`leases`), on a session of its own, shares the mailboxes fairly with the other live nodes, takes over a dead node's, and hands every lease back at a stop.

use crate::shared::Shared;
use crate::store::Fence;
use anyhow::{Result, bail};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// How many of `mailboxes` each of `nodes` live nodes should watch.
pub fn share(mailboxes: usize, nodes: usize) -> usize {
    mailboxes.div_ceil(nodes.max(1))
}

/// Writes this process's row as its node. A name another live process
/// holds is waited for until that one's row runs out (a restart after a
/// kill), then refused: two live daemons may not share a name.
pub async fn join(shared: &Arc<Shared>) -> Result<()> {
    let leases = shared.leases.clone();
    let (secs, deadline) = (leases.ttl.as_secs_f64(), leases.ttl + leases.ttl / 3);
    let started = std::time::Instant::now();
    let mut said = false;
    loop {
        let (node, inc) = (leases.node.clone(), leases.incarnation.clone());
        let ok = leases
            .with_store(move |st| st.renew_node(&node, &inc, std::process::id(), secs))
            .await?;
        if ok {
            return Ok(());
        }
        if started.elapsed() > deadline {
            bail!(
                "node {} is in use by another live ticketd on this database: give this one another [daemon] node",
                leases.node
            );
        }
        if !said {
            info!(node = %leases.node, "waiting for the node's last run to end its lease");
            said = true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// One round of the lease loop: renews this node and its leases, hands one
/// back when it holds more than its share, and takes free ones up to it.
/// `mailboxes` in the config's order; each node starts its search at a
/// different place so that nodes starting together spread. When another
/// process took the node's name (this one was paused past its lease), every
/// lease is dropped and the round fails.
pub async fn round(shared: &Arc<Shared>, mailboxes: &[String]) -> Result<()> {
    let leases = shared.leases.clone();
    let secs = leases.ttl.as_secs_f64();
    let (node, inc) = (leases.node.clone(), leases.incarnation.clone());
    let held = leases.held();
    let names = mailboxes.to_vec();
    let renewed = leases
        .with_store(move |st| {
            if !st.renew_node(&node, &inc, std::process::id(), secs)? {
                return Ok(None);
            }
            let mut kept = Vec::new();
            let mut lost = Vec::new();
            for (m, epoch) in held {
                let fence = Fence {
                    node: node.clone(),
                    epoch,
                };
                if names.contains(&m) && st.renew_lease(&m, &fence, secs)? {
                    kept.push((m, epoch));
                } else {
                    lost.push((m, epoch));
                }
            }
            let live = st.live_nodes()?;
            let wanting = st.nodes_wanting(&node, share(names.len(), live))?;
            Ok(Some((kept, lost, live, wanting)))
        })
        .await?;
    let Some((kept, lost, live, wanting)) = renewed else {
        for (m, _) in leases.held() {
            leases.set(&m, None);
        }
        shared.metrics.cluster.leases_held.set(0);
        bail!(
            "another ticketd took the node name {}: this one was paused or cut off past its lease, and stops watching",
            leases.node
        );
    };
    for (m, epoch) in &lost {
        leases.set(m, None);
        if mailboxes.contains(m) {
            warn!(mailbox = %m, epoch, "the mailbox's lease was lost: another node took it");
        } else {
            // No longer in the config: handed back.
            hand_back(shared, m, *epoch).await?;
        }
    }
    let now = shared.clock.monotonic();
    let mut kept = kept;
    if live > 1 {
        hand_over_failing(shared, &mut kept, now).await?;
    }
    let share = share(mailboxes.len(), live);
    if kept.len() > share && wanting > 0 {
        // Over its share while another node has room: the last one goes back.
        if let Some((m, epoch)) = kept.last().cloned() {
            info!(mailbox = %m, share, "handing the mailbox back: more than this node's share");
            hand_back(shared, &m, epoch).await?;
        }
        return Ok(());
    }
    let mut wanted = share.saturating_sub(kept.len());
    let start = start_at(&leases.node, mailboxes.len());
    for i in 0..mailboxes.len() {
        if wanted == 0 {
            break;
        }
        let m = &mailboxes[(start + i) % mailboxes.len()];
        if kept.iter().any(|(k, _)| k == m) || (live > 1 && leases.resting(m, now)) {
            continue;
        }
        let (mm, node) = (m.clone(), leases.node.clone());
        let got = leases
            .with_store(move |st| st.acquire_lease(&mm, &node, secs))
            .await?;
        if let Some(epoch) = got {
            info!(mailbox = %m, epoch, "this node now watches the mailbox");
            shared.metrics.lease_taken(m);
            leases.set(m, Some(epoch));
            wanted -= 1;
        }
    }
    if wanted == 0 && leases.held().len() == share {
        take_beyond_share(shared, mailboxes, now).await?;
    }
    shared
        .metrics
        .cluster
        .leases_held
        .set(leases.held().len() as i64);
    Ok(())
}

/// Hands `mailbox`'s lease (of `epoch`) back for another node to take.
async fn hand_back(shared: &Arc<Shared>, mailbox: &str, epoch: i64) -> Result<()> {
    let leases = &shared.leases;
    leases.set(mailbox, None);
    let fence = Fence {
        node: leases.node.clone(),
        epoch,
    };
    let m = mailbox.to_string();
    leases
        .with_store(move |st| st.release_lease(&m, &fence))
        .await?;
    shared.metrics.lease_handed_back(mailbox);
    Ok(())
}

/// A mailbox whose watcher here has failed to log in for two leases goes
/// to another node (its credentials, its route to the server may do
/// better), and this node takes no more for twenty leases while others
/// live: one such mailbox a round.
async fn hand_over_failing(
    shared: &Arc<Shared>,
    kept: &mut Vec<(String, i64)>,
    now: std::time::Instant,
) -> Result<()> {
    let leases = shared.leases.clone();
    let Some(i) = kept
        .iter()
        .position(|(m, _)| leases.watcher_failing(m, leases.ttl * 2, now))
    else {
        return Ok(());
    };
    let (m, epoch) = kept.remove(i);
    let rest = leases.ttl * 20;
    leases.rest(&m, now + rest);
    let (node, inc) = (leases.node.clone(), leases.incarnation.clone());
    leases
        .with_store(move |st| st.rest_node(&node, &inc, rest.as_secs_f64()))
        .await?;
    warn!(mailbox = %m, "handing the mailbox to another node: its watcher here has not logged in for two leases");
    hand_back(shared, &m, epoch).await
}

/// Takes one mailbox beyond the share that no node took for a whole lease
/// (its node's watcher failed there).
async fn take_beyond_share(
    shared: &Arc<Shared>,
    mailboxes: &[String],
    now: std::time::Instant,
) -> Result<()> {
    let leases = shared.leases.clone();
    let secs = leases.ttl.as_secs_f64();
    for m in mailboxes {
        if leases.holds(m) || leases.resting(m, now) {
            continue;
        }
        let (mm, node) = (m.clone(), leases.node.clone());
        let got = leases
            .with_store(move |st| st.acquire_lease_idle(&mm, &node, secs, secs))
            .await?;
        if let Some(epoch) = got {
            info!(mailbox = %m, epoch, "this node now watches the mailbox, beyond its share: no other took it");
            shared.metrics.lease_taken(m);
            leases.set(m, Some(epoch));
            break;
        }
    }
    Ok(())
}

/// Where a node starts looking for free mailboxes: its name's hash.
fn start_at(node: &str, n: usize) -> usize {
    let h = node.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    (h % n.max(1) as u64) as usize
}

/// The lease loop of a daemon on PostgreSQL: a round every third of the
/// lease, until cancelled; then every lease is handed back and the node
/// leaves, so the others take its mailboxes at once.
pub async fn run(
    shared: Arc<Shared>,
    mailboxes: impl Fn() -> Vec<String>,
    cancel: CancellationToken,
) -> Result<()> {
    let every = shared.leases.ttl / 3;
    loop {
        if let Err(e) = round(&shared, &mailboxes()).await {
            warn!("renewing this node's leases: {e:#}");
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = cancel.cancelled() => break,
        }
    }
    leave(&shared).await
}

/// Hands every lease back and marks the node stopped.
pub async fn leave(shared: &Arc<Shared>) -> Result<()> {
    let leases = shared.leases.clone();
    for (m, _) in leases.held() {
        leases.set(&m, None);
    }
    let (node, inc) = (leases.node.clone(), leases.incarnation.clone());
    leases.with_store(move |st| st.leave(&node, &inc)).await?;
    info!(node = %leases.node, "leases handed back");
    Ok(())
}
