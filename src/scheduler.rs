//! The scheduler: fires the timers that have come due through `decide::on_timer`, each in one transaction with its notices and events, so a timer fires at most once.

use crate::decide::{TimerDecision, TimerInput, on_timer};
use crate::health;
use crate::intake::Engine;
use crate::model::{Event, NewMail, TicketChange, TimerRow};
use crate::shared::Shared;
use crate::store::{Settle, Store};
use anyhow::Result;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

/// How many due timers one look at the store takes.
const BATCH: usize = 64;

/// How long one tick (its store reads and the timers it settles) may take
/// before the scheduler counts as stuck.
const TICK_TIMEOUT: Duration = Duration::from_secs(120);

/// What one tick did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tick {
    pub fired: usize,
    pub cancelled: usize,
}

/// Fires or cancels every timer due at `now`. Each timer is settled in its
/// own transaction together with the notices it queues and the events it
/// records; a timer already settled (by another process) is left alone.
pub fn tick(engine: &Engine, store: &Mutex<Store>, now: DateTime<Utc>) -> Result<Tick> {
    let mut out = Tick::default();
    loop {
        let due = store.lock().pending_timers(Some(now), BATCH)?;
        for t in &due {
            let mut st = store.lock();
            match settle(engine, &mut st, t, now)? {
                Some(Settle::Fired) => out.fired += 1,
                Some(Settle::Cancelled) => out.cancelled += 1,
                None => {}
            }
        }
        if due.len() < BATCH {
            return Ok(out);
        }
    }
}

fn settle(
    engine: &Engine,
    st: &mut Store,
    t: &TimerRow,
    now: DateTime<Utc>,
) -> Result<Option<Settle>> {
    let kind = t.plan.kind.as_str();
    let Some(ticket) = st.ticket(t.ticket)? else {
        let why = "the ticket does not exist".to_string();
        let done = st.settle_timer(t, Settle::Cancelled, Some(&why), &only_events(vec![]), now)?;
        return Ok(done.then_some(Settle::Cancelled));
    };
    let from = engine.answer_address(&ticket.mailbox);
    let thread = st.last_customer_message(ticket.id, &engine.staff.all_addresses())?;
    let input = TimerInput {
        pack: &engine.pack,
        identity: &engine.identity,
        staff: &engine.staff,
        from_address: from,
        mailbox_role: engine.mailbox_role(&ticket.mailbox),
        thread: thread.as_deref(),
        now,
    };
    let (how, why, change): (Settle, Option<String>, TicketChange<NewMail>) =
        match on_timer(&ticket, t, &input) {
            TimerDecision::Fire {
                mut replies,
                mut events,
                status,
                cancel,
            } => {
                events.extend(engine.deliverable_only(st, &mut replies)?);
                let rendered =
                    engine
                        .renderer
                        .render_replies(replies, &ticket.subject, Some(ticket.id), now);
                match rendered {
                    Ok(r) => (
                        Settle::Fired,
                        None,
                        TicketChange {
                            events,
                            status,
                            set_timers: vec![],
                            cancel_timers: cancel,
                            timer_updates: vec![],
                            mails: r.into_iter().map(|r| r.mail).collect(),
                        },
                    ),
                    Err(e) => {
                        // A notice that cannot be rendered now never will be:
                        // the timer ends, and the history and the log say why.
                        let why = format!("its notice could not be rendered: {e:#}");
                        error!(ticket = ticket.id.0, timer = kind, key = %t.plan.cause, "{why}");
                        let events = vec![Event::TimerCancelled {
                            timer: t.plan.kind,
                            key: t.plan.cause.to_string(),
                            rule: t.plan.rule.clone(),
                            why: why.clone(),
                        }];
                        (Settle::Cancelled, Some(why), only_events(events))
                    }
                }
            }
            TimerDecision::Cancel { why, events } => {
                (Settle::Cancelled, Some(why), only_events(events))
            }
        };
    if !st.settle_timer(t, how, why.as_deref(), &change, now)? {
        return Ok(None);
    }
    let mails = &change.mails;
    match how {
        Settle::Fired => info!(
            ticket = ticket.id.0,
            timer = kind,
            key = %t.plan.cause,
            rule = %t.plan.rule,
            due = %t.plan.due,
            "timer fired, {} notice(s) queued",
            mails.len()
        ),
        Settle::Cancelled => info!(
            ticket = ticket.id.0,
            timer = kind,
            key = %t.plan.cause,
            "timer cancelled: {}",
            why.as_deref().unwrap_or_default()
        ),
    }
    Ok(Some(how))
}

fn only_events(events: Vec<Event>) -> TicketChange<NewMail> {
    TicketChange {
        events,
        ..TicketChange::default()
    }
}

/// One tick at the shared clock's `now`, on a blocking thread (it locks the store).
async fn tick_now(shared: &Arc<Shared>) -> Result<Tick> {
    let s = shared.clone();
    tokio::task::spawn_blocking(move || tick(&s.engine(), &s.store, s.clock.now())).await?
}

/// Runs until `cancel`: fires what is due, then sleeps until the next timer
/// falls due, an intake commit sets new ones, or [`crate::shared::POLL`] has passed.
pub async fn run(shared: Arc<Shared>, cancel: CancellationToken) -> Result<()> {
    let _registered = shared.health.register(health::SCHEDULER);
    loop {
        shared
            .health
            .busy(health::SCHEDULER, "firing timers", TICK_TIMEOUT);
        let done = tick_now(&shared).await?;
        if done.fired > 0 {
            shared.outbox_wake.notify_one();
        }
        let next = shared.with_store(|st| st.next_timer_due()).await?;
        let wait = match next {
            Some(at) => (at - shared.clock.now())
                .to_std()
                .unwrap_or_default()
                .min(crate::shared::POLL),
            None => crate::shared::POLL,
        };
        shared.health.waiting(health::SCHEDULER);
        tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            _ = shared.timer_wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Fires what is due at this moment, once (`run --once`).
pub async fn run_once(shared: Arc<Shared>) -> Result<Tick> {
    let done = tick_now(&shared).await?;
    if done.fired + done.cancelled > 0 {
        info!(
            fired = done.fired,
            cancelled = done.cancelled,
            "due timers settled"
        );
    }
    Ok(done)
}
