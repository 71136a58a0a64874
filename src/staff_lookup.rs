//! What a staff member's mail needs of the database beside the usual look-up, read under the store lock before the decision: the ticket `#merge N` names, its customer's thread and both customers' organisations; for a mail that names no ticket and opens one for a customer (a forward, `#open ADDRESS`), what the database knows of that customer's mail.
//!
//! Whether the mail is proven is decided later, in `decide`: nothing here
//! acts, and an unproven mail's look-ups are never used.

use crate::commands::{self, Command};
use crate::contracts::ContractBook;
use crate::decide;
use crate::extract::extract;
use crate::model::{Lookup, Opening, StaffDirectory, TicketId};
use crate::pack::Pack;
use crate::parse::{Inbound, parse};
use crate::store::Store;
use crate::thread;
use anyhow::{Context, Result};

/// What the look-ups read of the engine's settings.
#[derive(Clone, Copy)]
pub struct Settings<'a> {
    pub pack: &'a Pack,
    pub ticket_prefix: &'a str,
    pub staff: &'a StaffDirectory,
    /// Entitlements from a file instead of the database (`explain --contracts`).
    pub contracts: Option<&'a ContractBook>,
}

/// Adds to `lookup` what the commands of `inbound` (a staff address's
/// mail, arrived in `mailbox`) and the customer's mail it forwards need.
pub fn extend(
    engine: Settings<'_>,
    store: &Store,
    mailbox: &str,
    inbound: &Inbound,
    lookup: &mut Lookup,
) -> Result<()> {
    let subject_tag = thread::tag_in(&inbound.subject, engine.ticket_prefix).map(TicketId);
    let source = decide::staff_target(lookup, subject_tag).map(|t| t.requester.clone());
    // A forward counts only in a mail that names no ticket.
    let forwarded = match source {
        Some(_) => None,
        None => crate::forward::find(inbound),
    };
    let text = match &forwarded {
        Some(f) => f.note.clone(),
        None => inbound.staff_text(),
    };
    // Commands that cannot be read are the decision's to report.
    let Ok(parsed) = commands::parse(&text) else {
        return Ok(());
    };
    for c in &parsed.commands {
        match c {
            Command::Merge { into, .. } => {
                let target = store.ticket(TicketId(*into)).context("merge lookup")?;
                let staff = engine.staff.all_addresses();
                let mut people: Vec<String> = source.iter().cloned().collect();
                if let Some(t) = &target {
                    lookup.merge_thread = store.last_customer_message(t.id, &staff)?;
                    people.push(t.requester.clone());
                }
                for a in people {
                    if let Some(o) = store.organisation(&a)? {
                        lookup.organisations.insert(a.to_ascii_lowercase(), o);
                    }
                }
                lookup.merge_into = target;
            }
            Command::Open { to: Some(to) } if source.is_none() && forwarded.is_none() => {
                lookup.opening = Some(Box::new(Opening {
                    format: "open".into(),
                    lookup: Lookup {
                        contact: store.contact(to)?,
                        ..Lookup::default()
                    },
                    ..Opening::default()
                }));
            }
            _ => {}
        }
    }
    if let Some(f) = forwarded {
        let lookup_of_customer = customer_lookup(engine, store, mailbox, &f.raw, inbound)?;
        lookup.opening = Some(Box::new(Opening {
            raw: f.raw,
            format: f.format.into(),
            note: f.note,
            lookup: lookup_of_customer,
        }));
    }
    Ok(())
}

/// What the database knows of a forwarded customer's mail, as if it had
/// come from the customer: its ticket if its Message-ID or references are
/// on one, the stored copy if it came itself, the contact, the contract and
/// quotas, the reply buckets.
fn customer_lookup(
    engine: Settings<'_>,
    store: &Store,
    mailbox: &str,
    raw: &[u8],
    member_mail: &Inbound,
) -> Result<Lookup> {
    let m = parse(raw, member_mail.arrival);
    let extracted = extract(&m, &engine.pack.patterns, engine.ticket_prefix);
    let sender = m.sender_address().unwrap_or_default();
    let mut refs = m.referenced_ids();
    if let Some(id) = &m.message_id {
        refs.insert(0, id.clone());
    }
    let tag = thread::tag_in(&m.subject, engine.ticket_prefix);
    let mut lookup = store
        .lookup(
            tag,
            &refs,
            m.message_id.as_deref(),
            Some(sender),
            &m.content_hash,
            None,
        )
        .context("forwarded mail lookup")?;
    let tickets: Vec<TicketId> = [&lookup.tagged, &lookup.referenced]
        .into_iter()
        .flatten()
        .map(|t| t.id)
        .collect();
    let extra = decide::extra_bucket_keys(mailbox, None, &tickets);
    lookup.buckets.extend(store.buckets(&extra)?);
    lookup.contract = match engine.contracts {
        Some(book) => book.find(&extracted.serials, sender, &extracted.tax_ids),
        None => store.find_contract(&extracted.serials, sender, &extracted.tax_ids)?,
    };
    if let Some(c) = &lookup.contract {
        for (quota, since) in engine
            .pack
            .policy
            .quota_periods(Some(c), member_mail.arrival)
        {
            let used = store.quota_used(&quota, &c.contract.serial, since)?;
            lookup.quota_used.insert(quota, used);
        }
    }
    Ok(lookup)
}
