//! Liveness and readiness: a heartbeat per loop (each watcher, the outbox, the scheduler), which mailboxes are logged in, and what is told to systemd (READY, RELOADING, STATUS, WATCHDOG).

use crate::clock::SharedClock;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a loop is doing.
#[derive(Debug, Clone)]
enum State {
    /// Waiting for work on a healthy footing (IDLE, a poll timer, nothing
    /// due, a pause before reconnecting): live however long it lasts.
    Waiting,
    /// In a call that should end by `deadline` (its own timeout).
    Busy {
        what: &'static str,
        since: Instant,
        deadline: Instant,
    },
}

#[derive(Debug)]
struct Entry {
    state: State,
    /// A watcher: logged in and its folder selected.
    ready: bool,
    /// Registrations of this name (a watcher being replaced overlaps its successor).
    count: usize,
}

/// The heartbeats of every loop, read by the watchdog and `/healthz`.
#[derive(Debug)]
pub struct Health {
    clock: SharedClock,
    loops: Mutex<BTreeMap<String, Entry>>,
    /// The mailboxes the config names, whose login readiness waits for.
    expected: Mutex<Vec<String>>,
    /// Woken when a watcher logs in.
    changed: tokio::sync::Notify,
    /// Mailboxes another node holds (several daemons on PostgreSQL): not
    /// this node's to log in to. `None` when the daemon is alone.
    elsewhere: Mutex<Option<std::collections::BTreeSet<String>>>,
}

/// A loop that is stuck: in `what` for `for_` (past its timeout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stuck {
    pub name: String,
    pub what: &'static str,
    pub for_: Duration,
}

impl std::fmt::Display for Stuck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} stuck in {} for {} s",
            self.name,
            self.what,
            self.for_.as_secs()
        )
    }
}

/// Keeps a loop registered while it lives; unregisters it on drop.
#[derive(Debug)]
pub struct Registration {
    health: Arc<Health>,
    name: String,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut loops = self.health.loops.lock();
        if let Some(e) = loops.get_mut(&self.name) {
            e.count -= 1;
            if e.count == 0 {
                loops.remove(&self.name);
            }
        }
    }
}

/// The heartbeat name of a mailbox's watcher.
pub fn mailbox_loop(name: &str) -> String {
    format!("mailbox {name}")
}

pub const OUTBOX: &str = "outbox";
pub const SCHEDULER: &str = "scheduler";

impl Health {
    pub fn new(clock: SharedClock) -> Arc<Health> {
        Arc::new(Health {
            clock,
            loops: Mutex::new(BTreeMap::new()),
            expected: Mutex::new(Vec::new()),
            changed: tokio::sync::Notify::new(),
            elsewhere: Mutex::new(None),
        })
    }

    /// The daemon shares its mailboxes with other nodes (PostgreSQL).
    pub fn set_clustered(&self) {
        self.elsewhere.lock().get_or_insert_with(Default::default);
    }

    /// Another node holds `mailbox` (`true`), or this one took it.
    pub fn set_elsewhere(&self, mailbox: &str, elsewhere: bool) {
        if let Some(set) = self.elsewhere.lock().as_mut() {
            if elsewhere {
                set.insert(mailbox.to_string());
            } else {
                set.remove(mailbox);
            }
        }
        self.changed.notify_waiters();
    }

    /// For `/healthz` on a shared store: the mailboxes this node holds and
    /// those another holds; `None` when the daemon is alone.
    pub fn holdings(&self) -> Option<(Vec<String>, Vec<String>)> {
        let elsewhere = self.elsewhere.lock().clone()?;
        let expected = self.expected.lock().clone();
        let (other, mine): (Vec<String>, Vec<String>) =
            expected.into_iter().partition(|m| elsewhere.contains(m));
        Some((mine, other))
    }

    /// Registers the loop `name`, waiting and not ready.
    pub fn register(self: &Arc<Self>, name: &str) -> Registration {
        let mut loops = self.loops.lock();
        let e = loops.entry(name.to_string()).or_insert(Entry {
            state: State::Waiting,
            ready: false,
            count: 0,
        });
        e.count += 1;
        e.state = State::Waiting;
        Registration {
            health: self.clone(),
            name: name.to_string(),
        }
    }

    fn with(&self, name: &str, f: impl FnOnce(&mut Entry)) {
        if let Some(e) = self.loops.lock().get_mut(name) {
            f(e);
        }
    }

    /// `name` waits for work: live until it says otherwise.
    pub fn waiting(&self, name: &str) {
        self.with(name, |e| e.state = State::Waiting);
    }

    /// `name` starts (or goes on with) `what`, which should end within `timeout`.
    pub fn busy(&self, name: &str, what: &'static str, timeout: Duration) {
        let now = self.clock.monotonic();
        self.with(name, |e| {
            let since = match &e.state {
                State::Busy { what: w, since, .. } if *w == what => *since,
                _ => now,
            };
            e.state = State::Busy {
                what,
                since,
                deadline: now + timeout,
            };
        });
    }

    /// A watcher logged in and selected its folder (`true`), or lost its session.
    pub fn set_ready(&self, name: &str, ready: bool) {
        self.with(name, |e| e.ready = ready);
        self.changed.notify_waiters();
    }

    /// Completes at the next login (enable it before checking, so none is missed).
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }

    /// The mailboxes the running config names.
    pub fn expect(&self, mailboxes: Vec<String>) {
        *self.expected.lock() = mailboxes;
    }

    /// What the daemon does, for STATUS=: "watching support, rma" or
    /// "watching support; not logged in: rma".
    pub fn summary(&self) -> String {
        let expected = self.expected.lock().clone();
        let missing = self.not_ready_of(&expected);
        let watching: Vec<&str> = expected
            .iter()
            .filter(|m| !missing.contains(m))
            .map(String::as_str)
            .collect();
        match (watching.is_empty(), missing.is_empty()) {
            (_, true) => format!("watching {}", watching.join(", ")),
            (true, false) => format!("no mailbox logged in yet: {}", missing.join(", ")),
            (false, false) => format!(
                "watching {}; not logged in: {}",
                watching.join(", "),
                missing.join(", ")
            ),
        }
    }

    /// The expected mailboxes whose watcher has not logged in and selected.
    pub fn not_ready(&self) -> Vec<String> {
        let expected = self.expected.lock().clone();
        self.not_ready_of(&expected)
    }

    /// The loops past their deadline.
    pub fn stuck(&self) -> Vec<Stuck> {
        let now = self.clock.monotonic();
        self.loops
            .lock()
            .iter()
            .filter_map(|(name, e)| match e.state {
                State::Busy {
                    what,
                    since,
                    deadline,
                } if now >= deadline => Some(Stuck {
                    name: name.clone(),
                    what,
                    for_: now.saturating_duration_since(since),
                }),
                _ => None,
            })
            .collect()
    }

    /// Whether every loop is live.
    pub fn live(&self) -> bool {
        self.stuck().is_empty()
    }

    /// Of `mailboxes`, those whose watcher has not logged in and selected.
    fn not_ready_of(&self, mailboxes: &[String]) -> Vec<String> {
        let loops = self.loops.lock();
        let elsewhere = self.elsewhere.lock();
        mailboxes
            .iter()
            .filter(|m| !loops.get(&mailbox_loop(m)).is_some_and(|e| e.ready))
            .filter(|m| !elsewhere.as_ref().is_some_and(|s| s.contains(*m)))
            .cloned()
            .collect()
    }
}

/// What the daemon tells systemd (`$NOTIFY_SOCKET`; nothing without it).
pub mod notify {
    use sd_notify::NotifyState;

    fn send(states: &[NotifyState<'_>]) {
        let _ = sd_notify::notify(states);
    }

    pub fn status(text: &str) {
        send(&[NotifyState::Status(text)]);
    }

    pub fn ready(status: &str) {
        send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// `RELOADING=1` with `MONOTONIC_USEC`, as the protocol asks.
    pub fn reloading() {
        match NotifyState::monotonic_usec_now() {
            Ok(m) => send(&[
                NotifyState::Reloading,
                m,
                NotifyState::Status("reloading the configuration"),
            ]),
            Err(_) => send(&[
                NotifyState::Reloading,
                NotifyState::Status("reloading the configuration"),
            ]),
        }
    }

    pub fn stopping() {
        send(&[
            NotifyState::Stopping,
            NotifyState::Status("stopping: finishing the message in hand"),
        ]);
    }

    pub fn watchdog() {
        send(&[NotifyState::Watchdog]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FixedClock;

    #[test]
    fn a_loop_is_stuck_only_past_its_own_timeout_and_waiting_is_live() {
        let clock = FixedClock::new(chrono::DateTime::UNIX_EPOCH);
        let h = Health::new(Arc::new(clock.clone()));
        let _w = h.register("mailbox support");
        let _o = h.register(OUTBOX);
        h.busy("mailbox support", "NOOP", Duration::from_secs(10));
        clock.advance(chrono::Duration::seconds(9));
        assert!(h.live());
        // Renewing the same call keeps when it began.
        h.busy("mailbox support", "NOOP", Duration::from_secs(10));
        clock.advance(chrono::Duration::seconds(11));
        let stuck = h.stuck();
        assert_eq!(stuck.len(), 1);
        assert_eq!(
            stuck[0].to_string(),
            "mailbox support stuck in NOOP for 20 s"
        );
        h.waiting("mailbox support");
        clock.advance(chrono::Duration::days(2));
        assert!(h.live(), "a quiet weekend is live");
    }

    #[test]
    fn readiness_counts_only_mailboxes_that_selected() {
        let h = Health::new(Arc::new(FixedClock::new(chrono::DateTime::UNIX_EPOCH)));
        let names = vec!["support".to_string(), "rma".to_string()];
        h.expect(names.clone());
        assert_eq!(h.not_ready(), names);
        assert_eq!(h.summary(), "no mailbox logged in yet: support, rma");
        let r = h.register(&mailbox_loop("support"));
        h.set_ready(&mailbox_loop("support"), true);
        assert_eq!(h.not_ready(), vec!["rma".to_string()]);
        assert_eq!(h.summary(), "watching support; not logged in: rma");
        drop(r);
        assert_eq!(h.not_ready(), names);
    }
}
