//! The supervisor: starts a watcher per mailbox, the outbox worker and the scheduler, stops them cleanly, tells systemd how it is.

use crate::clock::SharedClock;
use crate::config::Config;
use crate::imap;
use crate::outbox;
use crate::scheduler;
use crate::shared::Shared;
use anyhow::{Context, Result, anyhow};
use std::future::Future;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

/// How long tasks get to finish the message in hand after a stop request.
const STOP_GRACE: Duration = Duration::from_secs(30);

/// Runs until `shutdown` completes, then finishes the message in hand and stops.
pub async fn run(
    config: Config,
    clock: SharedClock,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let shared = Shared::new(&config, clock)?;
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    for m in &config.mailboxes {
        let (s, m, c) = (shared.clone(), m.clone(), cancel.clone());
        tracker.spawn(async move {
            if let Err(e) = imap::watch(s, m, c, false).await {
                error!("mailbox watcher stopped: {e:#}");
            }
        });
    }
    {
        let (s, c) = (shared.clone(), cancel.clone());
        tracker.spawn(async move {
            // The outbox must outlive a database hiccup: restart it after a pause.
            loop {
                match outbox::run(s.clone(), c.clone(), false).await {
                    Ok(()) => break,
                    Err(e) => {
                        error!("outbox worker failed: {e:#}; restarting in 5 s");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                            _ = c.cancelled() => break,
                        }
                    }
                }
            }
        });
    }
    {
        let (s, c) = (shared.clone(), cancel.clone());
        tracker.spawn(async move {
            loop {
                match scheduler::run(s.clone(), c.clone()).await {
                    Ok(()) => break,
                    Err(e) => {
                        error!("scheduler failed: {e:#}; restarting in 5 s");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                            _ = c.cancelled() => break,
                        }
                    }
                }
            }
        });
    }
    tracker.close();
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    let watchdog = watchdog(cancel.clone());
    info!(mailboxes = config.mailboxes.len(), pack = %config.pack.name, "ticketd running");
    tokio::select! {
        _ = shutdown => info!("stop requested: finishing the message in hand"),
        _ = tracker.wait() => warn!("every task ended"),
    }
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    cancel.cancel();
    if tokio::time::timeout(STOP_GRACE, tracker.wait())
        .await
        .is_err()
    {
        warn!("tasks did not stop within {STOP_GRACE:?}");
    }
    if let Some(w) = watchdog {
        w.abort();
    }
    info!("stopped");
    Ok(())
}

fn watchdog(cancel: CancellationToken) -> Option<tokio::task::JoinHandle<()>> {
    let every = sd_notify::watchdog_enabled()? / 2;
    Some(tokio::spawn(async move {
        loop {
            let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = cancel.cancelled() => break,
            }
        }
    }))
}

/// Processes everything waiting in every mailbox, drains the outbox, and returns.
pub async fn run_once(config: Config, clock: SharedClock) -> Result<()> {
    let shared = Shared::new(&config, clock)?;
    let cancel = CancellationToken::new();
    let mut handles = Vec::new();
    for m in &config.mailboxes {
        let (s, m, c) = (shared.clone(), m.clone(), cancel.clone());
        let name = m.name.clone();
        handles.push((name, tokio::spawn(imap::watch(s, m, c, true))));
    }
    let mut failed = Vec::new();
    for (name, h) in handles {
        match h.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                error!(mailbox = %name, "{e:#}");
                failed.push(format!("{name}: {e:#}"));
            }
            Err(e) => failed.push(format!("{name}: {e}")),
        }
    }
    // Timers due now fire after the mail is read (which may have set some),
    // and their notices go out with the replies.
    scheduler::run_once(shared.clone()).await?;
    outbox::run(shared.clone(), cancel, true).await?;
    let queued = {
        let st = shared.store.lock();
        st.outbox(Some("queued"))
            .context("reading the outbox")?
            .len()
    };
    if queued > 0 {
        warn!(queued, "mail still queued for a later retry");
    }
    if !failed.is_empty() {
        return Err(anyhow!("mailboxes failed: {}", failed.join("; ")));
    }
    Ok(())
}
