//! Merging a ticket into another: its messages, events, RMAs, pending timers, thread ids, facts, quota uses and mail move in the transaction of the change that merges it.

use super::columns::ts;
use super::conn::Store;
use super::db::{Conn, params};
use super::timer_columns::cause_text;
use super::timers::{end_timers, update_timers, write_change};
use super::writers::record_event;
use crate::model::{
    Event, MergePlan, NewMail, TicketChange, TicketStatus, TimerCancel, TimerCause, TimerKind,
};
use anyhow::{Result, bail};
use chrono::{DateTime, Utc};

impl Store {
    /// `ticketd merge`: the source's own change (its timers and RMAs that
    /// end, the notices), then the merge, in one savepoint (the caller's
    /// transaction when it has one).
    pub fn merge_tickets(
        &mut self,
        source_change: &TicketChange<NewMail>,
        plan: &MergePlan,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let tx = self.conn.savepoint()?;
        write_change(&tx, plan.source, source_change, now)?;
        carry_out(&tx, plan, now)?;
        tx.commit()?;
        Ok(())
    }
}

/// Carries out `plan` inside the caller's transaction, after the source's
/// own change: the target's timers that end or come due sooner, everything
/// of the source moved to the target, a pending source timer whose kind and
/// cause already fired or ended on the target ended instead, the source
/// closed with its `merged_into` event, the target's `merged` event.
pub(super) fn carry_out(tx: &Conn, plan: &MergePlan, now: DateTime<Utc>) -> Result<()> {
    let (from, into) = (plan.source.0, plan.into.0);
    let merged: Option<i64> = tx
        .prepare_cached("SELECT merged_into FROM tickets WHERE id = ?1")?
        .query_row([from], |r| r.get(0))?;
    if let Some(x) = merged {
        bail!("ticket {from} was already merged into ticket {x}");
    }
    let target: Option<i64> = tx
        .prepare_cached("SELECT merged_into FROM tickets WHERE id = ?1")?
        .query_row([into], |r| r.get(0))?;
    if let Some(x) = target {
        bail!("ticket {into} was merged into ticket {x}: merge into {x} instead");
    }
    end_timers(tx, plan.into, &plan.cancel_on_target, now)?;
    for t in &plan.replan_on_target {
        tx.prepare_cached(
            "UPDATE timers SET due_at = ?4
             WHERE ticket_id = ?1 AND kind = ?2 AND cause = ?3 AND state = 'pending' AND due_at > ?4",
        )?
        .execute(params![into, t.kind.as_str(), cause_text(&t.cause), ts(t.due)])?;
    }
    // Pending timers move unless the target has that timer already (it fired or ended there).
    tx.prepare_cached(
        "UPDATE timers SET ticket_id = ?2
         WHERE ticket_id = ?1 AND state IN ('pending', 'paused')
           AND NOT EXISTS (SELECT 1 FROM timers o
                           WHERE o.ticket_id = ?2 AND o.kind = timers.kind AND o.cause = timers.cause)",
    )?
    .execute(params![from, into])?;
    let stayed: Vec<(String, TimerCause)> = tx
        .prepare_cached(
            "SELECT kind, cause FROM timers WHERE ticket_id = ?1 AND state IN ('pending', 'paused')",
        )?
        .query_map([from], |r| {
            Ok((
                r.get::<_, String>(0)?,
                super::timer_columns::cause_column(r, 1)?,
            ))
        })?
        .collect::<Result<_>>()?;
    let stayed: Vec<TimerCancel> = stayed
        .into_iter()
        .filter_map(|(kind, cause)| {
            Some(TimerCancel {
                kind: TimerKind::parse(&kind)?,
                cause,
                why: format!(
                    "ticket {from} was merged into {into}, where this timer already fired or ended"
                ),
            })
        })
        .collect();
    update_timers(tx, plan.into, &plan.updates_on_target)?;
    for sql in [
        "UPDATE messages SET ticket_id = ?2 WHERE ticket_id = ?1",
        "UPDATE ticket_events SET ticket_id = ?2 WHERE ticket_id = ?1",
        "UPDATE thread_ids SET ticket_id = ?2 WHERE ticket_id = ?1",
        "UPDATE quota_uses SET ticket_id = ?2 WHERE ticket_id = ?1",
        "UPDATE outbox SET ticket_id = ?2 WHERE ticket_id = ?1",
        "INSERT INTO awaited_refs (message_id, ticket_id, people)
             SELECT message_id, CAST(?2 AS BIGINT), people FROM awaited_refs WHERE ticket_id = ?1
             ON CONFLICT DO NOTHING",
        "INSERT INTO ticket_facts (ticket_id, fact, message_row)
             SELECT CAST(?2 AS BIGINT), fact, message_row FROM ticket_facts WHERE ticket_id = ?1 ORDER BY id
             ON CONFLICT DO NOTHING",
    ] {
        tx.prepare_cached(sql)?.execute(params![from, into])?;
    }
    for sql in [
        "DELETE FROM awaited_refs WHERE ticket_id = ?1",
        "DELETE FROM ticket_facts WHERE ticket_id = ?1",
    ] {
        tx.prepare_cached(sql)?.execute([from])?;
    }
    // Ended after the history moved: its event is the source's own.
    end_timers(tx, plan.source, &stayed, now)?;
    let kept = serde_json::to_string(&plan.rmas_kept)?;
    tx.prepare_cached(
        "UPDATE rma SET ticket_id = ?2
         WHERE ticket_id = ?1 AND part NOT IN (SELECT value FROM json_each(?3))",
    )?
    .execute(params![from, into, kept])?;
    tx.prepare_cached(
        "UPDATE tickets SET status = 'closed', merged_into = ?2, updated_at = ?3 WHERE id = ?1",
    )?
    .execute(params![from, into, ts(now)])?;
    tx.prepare_cached("UPDATE tickets SET updated_at = ?2 WHERE id = ?1")?
        .execute(params![into, ts(now)])?;
    if plan.source_was != TicketStatus::Closed {
        let closed = Event::StatusChanged {
            from: plan.source_was,
            to: TicketStatus::Closed,
            by: plan.by.clone(),
        };
        record_event(tx, plan.source, None, &closed, now)?;
    }
    let events = [
        (
            plan.source,
            Event::MergedInto {
                into: plan.into,
                by: plan.by.clone(),
            },
        ),
        (
            plan.into,
            Event::Merged {
                from: plan.source,
                by: plan.by.clone(),
            },
        ),
    ];
    for (t, e) in &events {
        record_event(tx, *t, None, e, now)?;
    }
    Ok(())
}
