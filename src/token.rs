//! Reply tokens: an HMAC over a ticket and a staff address, carried in the Message-ID of the notification sent to that address, that proves a reply comes from the staff member it was sent to.
//!
//! A notification's Message-ID is `ticketd.{ticket}.{nonce}.{mac}@{domain}`:
//! `mac` is the first 128 bits of HMAC-SHA256 (key from `[staff]
//! token_key_file` or `token_key_credential`) over the ticket number, the
//! staff address (lower-cased) and the nonce, in hex. A reply carries it back
//! in In-Reply-To or References; [`verify`] recomputes it for the reply's
//! sender, in constant time. A token proves only its own ticket and its own
//! staff address: it cannot be moved to another ticket or another sender,
//! and without the key it cannot be made. The nonce starts with the day the
//! token was made (days since 1970, five hex digits), inside the MAC: a token
//! older than [`MAX_AGE_DAYS`] proves nothing, so a notification forwarded
//! long ago does not carry authority for ever.

use crate::model::TicketId;
pub use crate::model::TokenKey;
use crate::text::hex;
use chrono::{DateTime, Utc};
use ring::hmac;

/// How long a reply token proves its sender: half a year of a ticket's life.
pub const MAX_AGE_DAYS: i64 = 180;

fn day_of(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(86_400)
}

/// Bytes of the MAC kept in a Message-ID (128 bits, 32 hex digits).
const MAC_BYTES: usize = 16;

/// The MAC of a token: the first bytes of HMAC-SHA256 over the ticket, the
/// staff address (lower-cased) and the nonce.
fn mac(key: &TokenKey, ticket: TicketId, staff: &str, nonce: &str) -> Vec<u8> {
    let msg = format!("{}\n{}\n{nonce}", ticket.0, staff.to_ascii_lowercase());
    hmac::sign(key.hmac(), msg.as_bytes()).as_ref()[..MAC_BYTES].to_vec()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// A Message-ID (without angle brackets) for a mail about `ticket` sent to
/// `staff`, carrying its reply token.
pub fn message_id(
    key: &TokenKey,
    domain: &str,
    ticket: TicketId,
    staff: &str,
    now: DateTime<Utc>,
) -> String {
    let nonce = format!(
        "{:05x}{:011x}",
        day_of(now).clamp(0, 0xF_FFFF),
        fastrand::u64(..) & 0xFFF_FFFF_FFFF
    );
    let mac = hex(&mac(key, ticket, staff, &nonce));
    format!("ticketd.{}.{nonce}.{mac}@{domain}", ticket.0)
}

/// The ticket a reply token in `id` proves for `staff` at `now`, if `id` is
/// one of our tokens (in `domain`), made for that address, and not older
/// than [`MAX_AGE_DAYS`].
pub fn verify(
    key: &TokenKey,
    domain: &str,
    id: &str,
    staff: &str,
    now: DateTime<Utc>,
) -> Option<TicketId> {
    let (local, d) = id.rsplit_once('@')?;
    if !d.eq_ignore_ascii_case(domain) {
        return None;
    }
    let mut parts = local.split('.');
    let (Some("ticketd"), Some(t), Some(nonce), Some(mac), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let ticket = TicketId(t.parse().ok()?);
    if nonce.len() != 16 {
        return None;
    }
    let made = i64::from_str_radix(nonce.get(..5)?, 16).ok()?;
    let age = day_of(now) - made;
    if !(-1..=MAX_AGE_DAYS).contains(&age) {
        return None;
    }
    let mac = unhex(mac)?;
    if mac.len() != MAC_BYTES {
        return None;
    }
    let msg = format!("{}\n{}\n{nonce}", ticket.0, staff.to_ascii_lowercase());
    // Constant time: ring verifies the whole tag, so compare our prefix
    // with the same care.
    let want = hmac::sign(key.hmac(), msg.as_bytes());
    let same = want.as_ref()[..MAC_BYTES]
        .iter()
        .zip(&mac)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0;
    same.then_some(ticket)
}

/// The tickets the reply tokens among `ids` prove for `staff` at `now`.
pub fn tickets_proven(
    key: &TokenKey,
    domain: &str,
    ids: &[String],
    staff: &str,
    now: DateTime<Utc>,
) -> Vec<TicketId> {
    let mut out: Vec<TicketId> = ids
        .iter()
        .filter_map(|id| verify(key, domain, id, staff, now))
        .collect();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> TokenKey {
        TokenKey::new(b"0123456789abcdef0123456789abcdef").unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn a_token_proves_its_ticket_for_its_staff_address_only() {
        let k = key();
        let now = at("2026-12-02T10:00:00Z");
        let id = message_id(&k, "t.test", TicketId(42), "Alice@Vendor.test", now);
        assert_eq!(
            verify(&k, "t.test", &id, "alice@vendor.test", now),
            Some(TicketId(42))
        );
        // Another staff member cannot use it.
        assert_eq!(verify(&k, "t.test", &id, "bob@vendor.test", now), None);
        // Another ticket's number in it breaks the MAC.
        let moved = id.replacen("ticketd.42.", "ticketd.43.", 1);
        assert_eq!(verify(&k, "t.test", &moved, "alice@vendor.test", now), None);
        // Another key (another installation) does not know it.
        let other = TokenKey::new(b"another key of at least 16 bytes").unwrap();
        assert_eq!(
            verify(&other, "t.test", &id, "alice@vendor.test", now),
            None
        );
        // Another domain is not ours.
        let d = id.replace("@t.test", "@evil.test");
        assert_eq!(verify(&k, "t.test", &d, "alice@vendor.test", now), None);
    }

    #[test]
    fn plain_message_ids_and_garbage_prove_nothing() {
        let k = key();
        for id in [
            "ticketd.42.00000000deadbeef@t.test",
            "ticketd.42.00000000deadbeef.zz@t.test",
            "ticketd.42.1.00112233445566778899aabbccddeeff@t.test",
            "ticketd.x.1.00112233445566778899aabbccddeeff@t.test",
            "nonsense",
            "",
        ] {
            assert_eq!(
                verify(
                    &k,
                    "t.test",
                    id,
                    "alice@vendor.test",
                    at("2026-12-02T10:00:00Z")
                ),
                None,
                "{id}"
            );
        }
    }

    #[test]
    fn a_token_proves_for_half_a_year_and_then_nothing() {
        let k = key();
        let made = at("2026-01-10T08:00:00Z");
        let id = message_id(&k, "t.test", TicketId(7), "alice@vendor.test", made);
        let on = |s: &str| verify(&k, "t.test", &id, "alice@vendor.test", at(s));
        assert_eq!(on("2026-01-10T08:00:01Z"), Some(TicketId(7)));
        assert_eq!(on("2026-07-09T08:00:00Z"), Some(TicketId(7)), "day 180");
        assert_eq!(on("2026-07-10T08:00:00Z"), None, "day 181");
        // A day changed in the nonce breaks the MAC.
        let nonce_at = id.find(".").unwrap() + 3;
        let mut younger = id.clone();
        younger.replace_range(nonce_at..nonce_at + 5, &format!("{:05x}", 20_640));
        assert_eq!(
            verify(
                &k,
                "t.test",
                &younger,
                "alice@vendor.test",
                at("2026-07-10T08:00:00Z")
            ),
            None
        );
    }

    #[test]
    fn a_short_key_is_refused() {
        assert!(TokenKey::new(b"short").unwrap_err().contains("at least 16"));
    }
}
