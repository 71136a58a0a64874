//! The supervisor: starts a watcher per mailbox, the outbox worker, the scheduler and the webhook sender, reloads the config on SIGHUP, stops them cleanly, and tells systemd how it is (readiness, status, watchdog only while every loop is live).

use crate::clock::SharedClock;
use crate::cluster;
use crate::config::{Config, MailboxConfig};
use crate::health::{Health, notify};
use crate::imap;
use crate::intake::Engine;
use crate::metrics;
use crate::outbox;
use crate::scheduler;
use crate::shared::Shared;
use crate::webhooks;
use anyhow::{Context, Result, anyhow};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

/// How long tasks get to finish the message in hand after a stop request.
const STOP_GRACE: Duration = Duration::from_secs(30);
/// How often the loops' heartbeats are looked at without a systemd watchdog.
const HEALTH_EVERY: Duration = Duration::from_secs(5);

/// Runs until `shutdown` completes, then finishes the message in hand and stops.
pub async fn run(
    config: Config,
    clock: SharedClock,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let (_keep, reloads) = mpsc::unbounded_channel();
    serve(config, clock, shutdown, reloads).await
}

/// A stream of SIGHUPs, for [`serve`]. Installed at once, so a SIGHUP from
/// then on reloads instead of ending the process.
pub fn sighup() -> Result<mpsc::UnboundedReceiver<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            if tx.send(()).is_err() {
                break;
            }
        }
    });
    Ok(rx)
}

/// A task the supervisor can stop alone (a watcher, the outbox).
struct Task {
    cancel: CancellationToken,
    handle: JoinHandle<()>,
}

/// The running loops and how to start and stop them.
struct Loops {
    shared: Arc<Shared>,
    tracker: TaskTracker,
    cancel: CancellationToken,
    watchers: BTreeMap<String, (MailboxConfig, Task)>,
    outbox: Option<Task>,
}

impl Loops {
    /// Starts `run` under its own token, after `after` (the task it replaces) has ended.
    fn spawn<F, Fut>(&self, after: Option<JoinHandle<()>>, run: F) -> Task
    where
        F: FnOnce(Arc<Shared>, CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let cancel = self.cancel.child_token();
        let (s, c) = (self.shared.clone(), cancel.clone());
        let handle = self.tracker.spawn(async move {
            if let Some(h) = after {
                // Never two watchers on one mailbox, never two outboxes.
                let _ = h.await;
            }
            if !c.is_cancelled() {
                run(s, c).await;
            }
        });
        Task { cancel, handle }
    }

    fn start_watcher(&mut self, m: MailboxConfig, after: Option<JoinHandle<()>>) {
        let mc = m.clone();
        let task = self.spawn(after, move |s, c| async move {
            if let Err(e) = imap::watch(s, mc, c, false).await {
                error!("mailbox watcher stopped: {e:#}");
            }
        });
        self.watchers.insert(m.name.clone(), (m, task));
    }

    fn start_outbox(&mut self, after: Option<JoinHandle<()>>) {
        self.outbox = Some(self.spawn(after, |s, c| async move {
            // The outbox must outlive a database hiccup: restart it after a pause.
            restarting("outbox worker", &c, || {
                outbox::run(s.clone(), c.clone(), false)
            })
            .await
        }));
    }

    fn start_webhooks(&self) {
        self.spawn(None, |s, c| async move {
            restarting("webhook sender", &c, || {
                webhooks::run(s.clone(), c.clone(), false)
            })
            .await
        });
    }

    fn start_scheduler(&self) {
        self.spawn(None, |s, c| async move {
            restarting("scheduler", &c, || scheduler::run(s.clone(), c.clone())).await
        });
    }

    /// Brings the watchers and the outbox in line with `config`: removed
    /// mailboxes stop (after the batch in hand), added ones start, changed
    /// ones restart once the old watcher has stopped; the outbox restarts
    /// when the SMTP settings changed.
    fn apply(&mut self, config: &Config, smtp_changed: bool) {
        let old: Vec<String> = self.watchers.keys().cloned().collect();
        for name in old {
            let wanted = config.mailboxes.iter().find(|m| m.name == name);
            if wanted.is_some_and(|m| self.watchers[&name].0 == *m) {
                continue;
            }
            let Some((_, task)) = self.watchers.remove(&name) else {
                continue;
            };
            task.cancel.cancel();
            match wanted {
                Some(m) => {
                    info!(mailbox = %name, "mailbox settings changed: restarting its watcher");
                    self.start_watcher(m.clone(), Some(task.handle));
                }
                None => info!(mailbox = %name, "mailbox removed: stopping its watcher"),
            }
        }
        for m in &config.mailboxes {
            if !self.watchers.contains_key(&m.name) {
                info!(mailbox = %m.name, "mailbox added: starting its watcher");
                self.start_watcher(m.clone(), None);
            }
        }
        if smtp_changed && let Some(task) = self.outbox.take() {
            info!("SMTP settings changed: restarting the outbox");
            task.cancel.cancel();
            self.start_outbox(Some(task.handle));
        }
    }
}

/// Runs `f` until it returns Ok or `cancel` fires, restarting it 5 s after an error.
async fn restarting<F, Fut>(what: &str, cancel: &CancellationToken, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<()>>,
{
    loop {
        match f().await {
            Ok(()) => break,
            Err(e) => {
                error!("{what} failed: {e:#}; restarting in 5 s");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                    _ = cancel.cancelled() => break,
                }
            }
        }
    }
}

/// [`run`], reloading the config each time `reloads` yields.
pub async fn serve(
    config: Config,
    clock: SharedClock,
    shutdown: impl Future<Output = ()>,
    mut reloads: mpsc::UnboundedReceiver<()>,
) -> Result<()> {
    let shared = Shared::new(&config, clock)?;
    let health = shared.health.clone();
    // The mailboxes the lease loop shares out (changed by a reload).
    let mailbox_list = Arc::new(parking_lot::Mutex::new(mailbox_names(&config)));
    let mut loops = Loops {
        shared: shared.clone(),
        tracker: TaskTracker::new(),
        cancel: CancellationToken::new(),
        watchers: BTreeMap::new(),
        outbox: None,
    };
    // Bound before anything starts, so a taken address fails the start cleanly.
    let metrics = match config.metrics_listen {
        Some(addr) => {
            let endpoint = metrics::Endpoint {
                metrics: shared.metrics.clone(),
                health: health.clone(),
                database: config.database.clone(),
                clock: shared.clock.clone(),
            };
            Some(metrics::serve(addr, endpoint, loops.cancel.clone()).await?)
        }
        None => None,
    };
    health.expect(mailbox_names(&config));
    notify::status(&format!(
        "starting: logging in to {}",
        mailbox_names(&config).join(", ")
    ));
    // On PostgreSQL, the node's leases first: each watcher waits for its own.
    if shared.leases.enabled {
        cluster::join(&shared).await?;
    }
    let lease_loop = shared.leases.enabled.then(|| {
        let (s, c) = (shared.clone(), loops.cancel.child_token());
        let names = mailbox_list.clone();
        tokio::spawn(async move { cluster::run(s, move || names.lock().clone(), c).await })
    });
    for m in &config.mailboxes {
        loops.start_watcher(m.clone(), None);
    }
    loops.start_outbox(None);
    loops.start_scheduler();
    loops.start_webhooks();
    let monitor = tokio::spawn(monitor(health.clone(), loops.cancel.clone()));
    info!(mailboxes = config.mailboxes.len(), pack = %config.pack.name, "ticketd running");
    let mut config = config;
    tokio::pin!(shutdown);
    let mut startup = Some(config.ready_timeout);
    loop {
        if let Some(within) = startup.take() {
            // READY once every mailbox has logged in, or after `within`;
            // a stop or a reload meanwhile is handled first.
            tokio::select! {
                _ = &mut shutdown => {
                    info!("stop requested: finishing the message in hand");
                    break;
                }
                _ = ready_when_logged_in(&health, within) => {}
            }
        }
        tokio::select! {
            _ = &mut shutdown => {
                info!("stop requested: finishing the message in hand");
                break;
            }
            Some(()) = reloads.recv() => {
                notify::reloading();
                match reload(&config) {
                    Ok((new, engine)) => {
                        let smtp_changed = new.smtp != config.smtp;
                        if new.metrics_listen != config.metrics_listen {
                            warn!("[metrics] listen changed: that takes a restart; still serving the old address");
                        }
                        shared.swap(engine, new.smtp.clone());
                        if let Err(e) = shared.set_webhooks(&new).await {
                            error!("reload: the webhooks stay as they were: {e:#}");
                        }
                        health.expect(mailbox_names(&new));
                        *mailbox_list.lock() = mailbox_names(&new);
                        loops.apply(&new, smtp_changed);
                        info!(mailboxes = new.mailboxes.len(), pack = %new.pack.name, "configuration reloaded");
                        startup = Some(new.ready_timeout);
                        config = new;
                    }
                    Err(problems) => {
                        for p in &problems {
                            error!("reload rejected: {p}");
                        }
                        error!(
                            problems = problems.len(),
                            "reload rejected: the running configuration stays"
                        );
                        notify::ready(&format!(
                            "reload rejected ({} problems, see the log); {}",
                            problems.len(),
                            health.summary()
                        ));
                    }
                }
            }
        }
    }
    notify::stopping();
    loops.cancel.cancel();
    loops.tracker.close();
    if tokio::time::timeout(STOP_GRACE, loops.tracker.wait())
        .await
        .is_err()
    {
        warn!("tasks did not stop within {STOP_GRACE:?}");
    }
    // The watchers have stopped: the leases go back for the others to take.
    if let Some(l) = lease_loop {
        match l.await {
            Ok(Err(e)) => warn!("handing the leases back: {e:#}"),
            Err(e) => warn!("the lease loop: {e}"),
            Ok(Ok(())) => {}
        }
    }
    monitor.abort();
    if let Some(m) = metrics {
        m.abort();
    }
    info!("stopped");
    Ok(())
}

fn mailbox_names(config: &Config) -> Vec<String> {
    config.mailboxes.iter().map(|m| m.name.clone()).collect()
}

/// Reads and validates the config again (its packs and templates too);
/// every problem comes back, each with file and line.
fn reload(running: &Config) -> Result<(Config, Engine), Vec<String>> {
    let new = Config::load(&running.path)
        .map_err(|ps| ps.0.iter().map(|p| p.to_string()).collect::<Vec<_>>())?;
    if new.database != running.database {
        return Err(vec![format!(
            "{}: daemon.database changed from {} to {}: that takes a restart",
            running.path.display(),
            running.database.display(),
            new.database.display()
        )]);
    }
    let engine = Engine::from_config(&new).map_err(|e| vec![format!("{e:#}")])?;
    Ok((new, engine))
}

/// Waits until every expected mailbox has logged in and selected, at most
/// `within`, then sends READY=1 with a status naming any that have not.
async fn ready_when_logged_in(health: &Health, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let changed = health.changed();
        tokio::pin!(changed);
        changed.as_mut().enable();
        if health.not_ready().is_empty() {
            break;
        }
        tokio::select! {
            _ = changed => {}
            _ = tokio::time::sleep_until(deadline) => {
                warn!(
                    waited_s = within.as_secs(),
                    not_logged_in = %health.not_ready().join(", "),
                    "ready without every mailbox"
                );
                break;
            }
        }
    }
    notify::ready(&health.summary());
}

/// Pings the watchdog while every loop is live, and keeps STATUS= saying
/// what the daemon does (which mailboxes are watched, which loop is stuck).
async fn monitor(health: Arc<Health>, cancel: CancellationToken) {
    let watchdog = sd_notify::watchdog_enabled();
    let every = watchdog.map_or(HEALTH_EVERY, |w| (w / 2).min(HEALTH_EVERY));
    let mut said = String::new();
    let mut stuck_before: Vec<String> = Vec::new();
    loop {
        let stuck = health.stuck();
        let status = if stuck.is_empty() {
            if watchdog.is_some() {
                notify::watchdog();
            }
            health.summary()
        } else {
            let list: Vec<String> = stuck.iter().map(|s| s.to_string()).collect();
            format!("stuck: {}; watchdog not pinged", list.join("; "))
        };
        let stuck_now: Vec<String> = stuck.iter().map(|s| s.name.clone()).collect();
        if stuck_now != stuck_before {
            // Logged when the set of stuck loops changes, not at every look.
            if !stuck.is_empty() {
                error!("{status}");
            } else {
                info!("every loop is live again");
            }
            stuck_before = stuck_now;
        }
        if status != said {
            if !said.is_empty() {
                notify::status(&status);
            }
            said = status;
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = cancel.cancelled() => break,
        }
    }
}

/// Processes everything waiting in every mailbox, drains the outbox, and returns.
pub async fn run_once(mut config: Config, clock: SharedClock) -> Result<()> {
    if config.database.sqlite_path().is_none() {
        // A node of its own beside running daemons (even on their host),
        // which takes only the mailboxes no one holds.
        config.node = format!("{}.once.{}", config.node, std::process::id());
    }
    let shared = Shared::new(&config, clock)?;
    let cancel = CancellationToken::new();
    if shared.leases.enabled {
        cluster::join(&shared).await?;
        cluster::round(&shared, &mailbox_names(&config)).await?;
    }
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
    outbox::run(shared.clone(), cancel.clone(), true).await?;
    webhooks::run(shared.clone(), cancel, true).await?;
    if shared.leases.enabled {
        cluster::leave(&shared).await?;
    }
    let queued = shared
        .with_store(|st| Ok(st.outbox(Some("queued"))?.len()))
        .await
        .context("reading the outbox")?;
    if queued > 0 {
        warn!(queued, "mail still queued for a later retry");
    }
    if !failed.is_empty() {
        return Err(anyhow!("mailboxes failed: {}", failed.join("; ")));
    }
    Ok(())
}
