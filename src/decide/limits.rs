//! Reply rate limits: token buckets per recipient and per ticket, refilled from `now`.

use super::*;

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
    SideEffects {
        buckets: vec![
            (BucketKey::Recipient(sender.address.to_ascii_lowercase()), r),
            (key, t),
        ],
        ..SideEffects::default()
    }
}
