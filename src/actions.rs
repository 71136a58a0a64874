//! Staff actions on a ticket from the shell (`ticketd rma|reply|note|close|reopen|status|severity|assign`): each reads the ticket, decides (pure, in `decide`), renders its mail and writes one transaction.

use crate::decide::{self, ActionInput, ReplyPlan, RmaOutcome};
use crate::intake::Engine;
use crate::model::RmaVerb;
use crate::model::{NewMail, TicketChange, TicketId, TicketInfo, TicketStatus};
use crate::store::Store;
use anyhow::{Result, anyhow, bail};
use chrono::{DateTime, Utc};

/// Reads ticket `id` and what its mail needs, decides with `f`, renders and
/// writes the change in one transaction. With `must_send`, a change whose
/// mail would reach nobody (every recipient undeliverable) is refused
/// whole: a staff answer nobody receives is no first response. Returns what `f` returned besides
/// the change, and the number of mails queued.
fn act<T>(
    engine: &Engine,
    store: &mut Store,
    id: TicketId,
    by: &str,
    now: DateTime<Utc>,
    must_send: bool,
    f: impl FnOnce(&TicketInfo, &ActionInput<'_>) -> Result<(T, TicketChange<ReplyPlan>), String>,
) -> Result<(T, usize)> {
    // One write transaction from the read to the write (BEGIN IMMEDIATE):
    // the daemon or another command cannot change the ticket in between, so
    // two `rma issue` at once send one code, and a state set from the shell
    // starts from the state the ticket has.
    store.in_batch(|store| {
        let ticket = store
            .ticket(id)?
            .ok_or_else(|| anyhow!("ticket {id} does not exist"))?;
        let thread = store.last_customer_message(id, &engine.staff.all_addresses())?;
        let input = ActionInput {
            pack: &engine.pack,
            identity: &engine.identity,
            from_address: engine.answer_address(&ticket.mailbox),
            thread: thread.as_deref(),
            by,
            now,
        };
        let (out, mut change) = f(&ticket, &input).map_err(|e| anyhow!(e))?;
        let planned = change.mails.len();
        let skipped = engine.deliverable_only(store, &mut change.mails)?;
        if must_send && planned > 0 && change.mails.is_empty() {
            bail!(
                "{}: every recipient is marked undeliverable, nothing was sent or recorded \
                 (`ticketd contacts deliverable ADDRESS` clears a mark)",
                skipped
                    .iter()
                    .map(|e| e.detail())
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
        change.events.extend(skipped);
        let mails: Vec<NewMail> = engine
            .renderer
            .render_replies(&change.mails, &ticket.subject, Some(id), now)?
            .into_iter()
            .map(|r| r.mail)
            .collect();
        let n = mails.len();
        let change = change.with_mails(mails);
        if !change.events.is_empty() || !change.mails.is_empty() {
            store.apply_change(id, &change, now)?;
        }
        Ok((out, n))
    })
}

/// `ticketd rma approve|issue|shipped|received|returned N [--part P]`.
pub fn rma(
    engine: &Engine,
    store: &mut Store,
    id: TicketId,
    verb: RmaVerb,
    part: Option<&str>,
    by: &str,
    now: DateTime<Utc>,
) -> Result<(RmaOutcome, usize)> {
    act(engine, store, id, by, now, true, |ticket, input| {
        let mut out = decide::rma_action(ticket, verb, part, input)?;
        let change = std::mem::take(&mut out.change);
        Ok((out, change))
    })
}

/// `ticketd reply N FILE`: a staff answer to the customer.
pub fn reply(
    engine: &Engine,
    store: &mut Store,
    id: TicketId,
    body: &str,
    by: &str,
    now: DateTime<Utc>,
) -> Result<usize> {
    let ((), n) = act(engine, store, id, by, now, true, |ticket, input| {
        Ok(((), decide::staff_reply(ticket, body, input)?))
    })?;
    Ok(n)
}

/// `ticketd note N TEXT`: an internal note.
pub fn note(
    engine: &Engine,
    store: &mut Store,
    id: TicketId,
    text: &str,
    by: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    act(engine, store, id, by, now, false, |_, _| {
        Ok(((), decide::note(text, by)?))
    })?;
    Ok(())
}

/// `ticketd close|reopen|status N`: staff set the ticket's state. Returns the state it had.
pub fn set_status(
    engine: &Engine,
    store: &mut Store,
    id: TicketId,
    to: TicketStatus,
    by: &str,
    now: DateTime<Utc>,
) -> Result<TicketStatus> {
    let (was, _) = act(engine, store, id, by, now, false, |ticket, input| {
        Ok((ticket.status, decide::set_status(ticket, to, input)?))
    })?;
    Ok(was)
}

/// `ticketd severity N S`: the escalation ladder planned again.
pub fn set_severity(
    engine: &Engine,
    store: &mut Store,
    id: TicketId,
    severity: u8,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Option<u8>> {
    let (was, _) = act(engine, store, id, by, now, false, |ticket, input| {
        Ok((
            ticket.severity,
            decide::set_severity(ticket, severity, input)?,
        ))
    })?;
    Ok(was)
}

/// `ticketd assign N MEMBER`: the ticket is given to a staff member.
/// Returns the owner it had.
pub fn assign(
    engine: &Engine,
    store: &mut Store,
    id: TicketId,
    member: &str,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Option<String>> {
    let Some(m) = engine.staff.member(member) else {
        bail!(
            "`{member}` is not a staff member of [staff.members]{}",
            if engine.staff.members.is_empty() {
                " (it has none)".to_string()
            } else {
                format!(
                    "; they are {}",
                    engine
                        .staff
                        .members
                        .iter()
                        .map(|m| m.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
    };
    let (was, _) = act(engine, store, id, by, now, false, |ticket, input| {
        Ok((ticket.owner.clone(), decide::assign(ticket, m, input)?))
    })?;
    Ok(was)
}
