//! Staff actions on a ticket from the shell (`ticketd rma|reply|note|close|reopen|status|severity|assign|merge`): each reads the ticket, decides (pure, in `decide`), renders its mail and writes one transaction.

use crate::decide::{self, ActionInput, MergeRequest, ReplyPlan, RmaOutcome};
use crate::intake::Engine;
use crate::model::{MergePlan, NewMail, TicketChange, TicketId, TicketInfo, TicketStatus};
use crate::model::{RmaVerb, Tracking};
use crate::store::Store;
use anyhow::{Result, anyhow, bail};
use chrono::{DateTime, Utc};

/// What a staff action decides: what it returns, the change to its ticket
/// and, for a merge, the merge the store carries out after it.
type Acted<T> = (T, TicketChange<ReplyPlan>, Option<MergePlan>);

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
    act_reading(
        engine,
        store,
        (id, by, now),
        must_send,
        |_, ticket, input| Ok(f(ticket, input).map(|(out, change)| (out, change, None))),
    )
}

/// `act` for a decision that reads more of the store (in the same
/// transaction) and may end in a merge.
fn act_reading<T>(
    engine: &Engine,
    store: &mut Store,
    (id, by, now): (TicketId, &str, DateTime<Utc>),
    must_send: bool,
    f: impl FnOnce(&Store, &TicketInfo, &ActionInput<'_>) -> Result<Result<Acted<T>, String>>,
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
        let (out, mut change, merge) = f(store, &ticket, &input)?.map_err(|e| anyhow!(e))?;
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
            .render_replies(
                std::mem::take(&mut change.mails),
                &ticket.subject,
                Some(id),
                now,
            )?
            .into_iter()
            .map(|r| r.mail)
            .collect();
        let n = mails.len();
        let change = change.with_mails(mails);
        if let Some(plan) = &merge {
            store.merge_tickets(&change, plan, now)?;
        } else if !change.events.is_empty() || !change.mails.is_empty() {
            store.apply_change(id, &change, now)?;
        }
        Ok((out, n))
    })
}

/// `ticketd merge SOURCE INTO [--force]`: ticket `source` merged into
/// `into`, as `#merge INTO` on `source` does. Returns a line per thing done.
pub fn merge(
    engine: &Engine,
    store: &mut Store,
    (source, into): (TicketId, TicketId),
    force: bool,
    by: &str,
    now: DateTime<Utc>,
) -> Result<Vec<String>> {
    let (done, _) = act_reading(
        engine,
        store,
        (source, by, now),
        false,
        |store, s, input| {
            let Some(target) = store.ticket(into)? else {
                return Ok(Err(format!("ticket {into} does not exist")));
            };
            let into_thread = store.last_customer_message(into, &engine.staff.all_addresses())?;
            let mut organisations = std::collections::BTreeMap::new();
            for a in [&s.requester, &target.requester] {
                if let Some(o) = store.organisation(a)? {
                    organisations.insert(a.to_ascii_lowercase(), o);
                }
            }
            let request = MergeRequest {
                force,
                organisations: &organisations,
                ticket_prefix: &engine.ticket_prefix,
                into_thread: into_thread.as_deref(),
            };
            Ok(decide::merge(s, &target, &request, input)
                .map(|out| (out.done, out.source, Some(out.plan))))
        },
    )?;
    Ok(done)
}

/// `ticketd rma approve|issue|shipped|received|returned N [--part P]
/// [--carrier C --tracking T]`.
#[allow(clippy::too_many_arguments)]
pub fn rma(
    engine: &Engine,
    store: &mut Store,
    id: TicketId,
    verb: RmaVerb,
    part: Option<&str>,
    tracking: Option<&Tracking>,
    by: &str,
    now: DateTime<Utc>,
) -> Result<(RmaOutcome, usize)> {
    act(engine, store, id, by, now, true, |ticket, input| {
        let mut out = decide::rma_action(ticket, verb, part, tracking, input)?;
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
