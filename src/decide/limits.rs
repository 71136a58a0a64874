//! Reply rate limits: token buckets per recipient, per ticket and for all new tickets' acknowledgements, and the limits on staff notices a flood could repeat; all refilled from `now`.

use super::plan::Input;
use crate::model::Rate;
use crate::model::{BucketKey, SideEffects, TicketId, TicketInfo};
use crate::parse::Addr;

/// The level of a token bucket at `now`: refilled at `rate.per_hour` since
/// it was stored, never above `rate.burst`; a bucket never stored is full.
pub fn bucket_level(i: &Input<'_>, key: &str, rate: Rate) -> f64 {
    let burst = f64::from(rate.burst);
    match i.lookup.bucket(key) {
        None => burst,
        Some(b) => {
            let hours = (i.now - b.updated_at).num_milliseconds().max(0) as f64 / 3_600_000.0;
            (b.tokens + hours * f64::from(rate.per_hour)).min(burst)
        }
    }
}

pub(super) fn recipient_key(sender: &Addr) -> String {
    BucketKey::Recipient(sender.address.clone())
        .name()
        .unwrap_or_default()
}

/// The bucket of every new ticket's acknowledgement (`[limits]
/// new_ticket_acks`), and the mark that staff were told it ran dry.
pub const ACKS: &str = "global:acks";
const ACKS_TOLD: &str = "global:acks:told";

/// Staff notices that a flood of mail could repeat (a member's unproven
/// mail on a ticket, quarantined mail of a mailbox): this many at once per
/// scope, refilled at this many an hour; past it they are held back and
/// counted, and the next one sent says how many were.
pub const NOTICES: Rate = Rate {
    burst: 3,
    per_hour: 6,
};

fn notice_key(scope: &str) -> String {
    format!("notice:{scope}")
}

fn held_key(scope: &str) -> String {
    format!("notice:{scope}:held")
}

/// The scope of a member's unproven mail on a ticket.
pub(super) fn unverified_scope(member: &str, ticket: TicketId) -> String {
    format!("unverified:{member}:{ticket}")
}

/// The scope of a mailbox's quarantined mail.
pub(super) fn quarantine_scope(mailbox: &str) -> String {
    format!("quarantine:{mailbox}")
}

/// The buckets beyond the sender's and the tickets' that a mail's decision
/// may read: the acknowledgement cap, the mailbox's quarantine notices, and
/// for a staff member's mail their unproven-mail notices on `tickets`. The
/// store reads them before the decision (which reads nothing itself).
pub fn extra_bucket_keys(mailbox: &str, member: Option<&str>, tickets: &[TicketId]) -> Vec<String> {
    let mut scopes = vec![quarantine_scope(mailbox)];
    if let Some(m) = member {
        scopes.extend(tickets.iter().map(|t| unverified_scope(m, *t)));
    }
    let mut keys = vec![ACKS.to_string(), ACKS_TOLD.to_string()];
    for s in scopes {
        keys.push(notice_key(&s));
        keys.push(held_key(&s));
    }
    keys
}

/// Whether a notice of `scope` goes now. `Ok(held)`: it goes, and `held`
/// notices were held back before it; `Err(held)`: it is held back, the
/// `held`-th since the last one sent. Either way, the bucket levels to
/// store are added to `effects`.
pub(super) fn notice_allowed(
    i: &Input<'_>,
    scope: &str,
    effects: &mut SideEffects,
) -> Result<u32, u32> {
    let (key, held) = (notice_key(scope), held_key(scope));
    let before = i
        .lookup
        .bucket(&held)
        .map_or(0, |b| b.tokens.max(0.0) as u32);
    let level = bucket_level(i, &key, NOTICES);
    if level >= 1.0 {
        effects.buckets.push((BucketKey::Named(key), level - 1.0));
        if before > 0 {
            effects.buckets.push((BucketKey::Named(held), 0.0));
        }
        Ok(before)
    } else {
        effects
            .buckets
            .push((BucketKey::Named(held), f64::from(before + 1)));
        Err(before + 1)
    }
}

/// Why a new ticket's acknowledgement must not go now (the cap on all of
/// them, `[limits] new_ticket_acks`), and whether this is the first one held
/// since it ran dry: then staff are told, once. `None`: it may go (and the
/// bucket is charged in `consume`).
pub(super) fn acks_capped(i: &Input<'_>, effects: &mut SideEffects) -> Option<(String, bool)> {
    let rate = i.limits.new_ticket_acks;
    if bucket_level(i, ACKS, rate) >= 1.0 {
        return None;
    }
    let told = i.lookup.bucket(ACKS_TOLD).is_some_and(|b| b.tokens >= 1.0);
    if !told {
        effects
            .buckets
            .push((BucketKey::Named(ACKS_TOLD.into()), 1.0));
    }
    Some((
        format!(
            "the cap on new tickets' acknowledgements is reached ({} at once, {} an hour): no reply",
            rate.burst, rate.per_hour
        ),
        !told,
    ))
}

/// Why an automatic reply to `sender` must not be sent now, if it must not.
pub(super) fn rate_limited(
    i: &Input<'_>,
    sender: &Addr,
    ticket: Option<&TicketInfo>,
) -> Option<String> {
    let r = i.limits.replies_per_recipient;
    if bucket_level(i, &recipient_key(sender), r) < 1.0 {
        return Some(format!(
            "reply rate limit for {} reached ({} at once, {} an hour): no reply",
            sender.address, r.burst, r.per_hour
        ));
    }
    let t = i.limits.replies_per_ticket;
    if let Some(tk) = ticket
        && bucket_level(i, &format!("ticket:{}", tk.id), t) < 1.0
    {
        return Some(format!(
            "reply rate limit for ticket {} reached ({} at once, {} an hour): no reply",
            tk.id, t.burst, t.per_hour
        ));
    }
    None
}

/// The bucket levels after one automatic reply to `sender` on `ticket`.
pub(super) fn consume(i: &Input<'_>, sender: &Addr, ticket: Option<&TicketInfo>) -> SideEffects {
    let r = bucket_level(i, &recipient_key(sender), i.limits.replies_per_recipient) - 1.0;
    let (key, t) = match ticket {
        Some(tk) => (
            BucketKey::Ticket(tk.id),
            bucket_level(i, &format!("ticket:{}", tk.id), i.limits.replies_per_ticket) - 1.0,
        ),
        None => (
            BucketKey::NewTicket,
            f64::from(i.limits.replies_per_ticket.burst) - 1.0,
        ),
    };
    let mut buckets = vec![
        (BucketKey::Recipient(sender.address.to_ascii_lowercase()), r),
        (key, t),
    ];
    if ticket.is_none() {
        let acks = bucket_level(i, ACKS, i.limits.new_ticket_acks) - 1.0;
        buckets.push((BucketKey::Named(ACKS.into()), acks));
        if i.lookup.bucket(ACKS_TOLD).is_some_and(|b| b.tokens >= 1.0) {
            // An acknowledgement went: the next time the cap runs dry, staff are told again.
            buckets.push((BucketKey::Named(ACKS_TOLD.into()), 0.0));
        }
    }
    SideEffects {
        buckets,
        ..SideEffects::default()
    }
}
