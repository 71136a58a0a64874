//! Outgoing mail: headers that make replies thread and keep machines from answering, built with lettre.

use crate::model::{Identity, NewMail, TicketId};
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};

/// The header of ours that marks every mail we send; its value is our
/// Message-ID domain (`classify` knows our own mail by it).
pub const LOOP_HEADER: &str = "X-Ticketd-Loop";

/// What kind of automatic mail this is (RFC 3834).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum AutoSubmitted {
    /// A reply to a person's mail.
    Replied,
    /// A notice nobody asked for (staff notices, reminders).
    Generated,
    /// A person's own answer, sent on their behalf (`ticketd reply`):
    /// `Auto-Submitted: no`, no `Precedence` and no `X-Auto-Response-Suppress`,
    /// since the customer's autoresponder may rightly answer it.
    Person,
}

impl AutoSubmitted {
    pub fn as_str(self) -> &'static str {
        match self {
            AutoSubmitted::Replied => "auto-replied",
            AutoSubmitted::Generated => "auto-generated",
            AutoSubmitted::Person => "no",
        }
    }
}

/// A mail ready to be turned into bytes.
#[derive(Debug, Clone)]
pub struct Draft {
    pub kind: String,
    pub from_address: String,
    pub to: Vec<String>,
    pub subject: String,
    pub body: String,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    pub auto_submitted: AutoSubmitted,
    /// Where replies go, when not to From.
    pub reply_to: Option<String>,
    /// Files sent with the text (a relayed staff answer's attachments).
    pub attachments: Vec<crate::model::OutAttachment>,
}

/// A fresh Message-ID in our domain (without angle brackets). It is fixed when
/// the mail is queued, so a resend carries the same one.
pub fn new_message_id(domain: &str, ticket: Option<TicketId>) -> String {
    // 128 bits from the system's CSPRNG: a bounce counts only when it
    // returns one of these, so nobody may guess another recipient's.
    let r = crate::secret::random_hex128();
    match ticket {
        Some(t) => format!("ticketd.{t}.{r}@{domain}"),
        None => format!("ticketd.{r}@{domain}"),
    }
}

/// True when lettre can put `address` on an envelope.
pub fn deliverable(address: &str) -> bool {
    address.parse::<lettre::Address>().is_ok()
}

fn raw_header(name: &'static str, value: impl Into<String>) -> HeaderValue {
    HeaderValue::new(HeaderName::new_from_ascii_str(name), value.into())
}

/// Renders `d` to RFC 5322 bytes, dated `date` (never the system clock).
pub fn build(
    d: &Draft,
    message_id: &str,
    identity: &Identity,
    date: DateTime<Utc>,
) -> Result<NewMail> {
    let from_addr: lettre::Address = d
        .from_address
        .parse()
        .with_context(|| format!("bad From address {}", d.from_address))?;
    let mut b = Message::builder()
        .from(Mailbox::new(
            Some(identity.from_name.clone()),
            from_addr.clone(),
        ))
        .subject(d.subject.clone())
        .message_id(Some(format!("<{message_id}>")))
        .date(date.into());
    let mut rcpt = Vec::with_capacity(d.to.len());
    for to in &d.to {
        let a: lettre::Address = to.parse().with_context(|| format!("bad recipient {to}"))?;
        b = b.to(Mailbox::new(None, a.clone()));
        rcpt.push(a);
    }
    // Given the envelope, lettre does not parse it back out of the headers
    // just written (the outbox sends with `mail_from` and `rcpt_to` anyway).
    b = b.envelope(lettre::address::Envelope::new(Some(from_addr), rcpt).context("no recipient")?);
    if let Some(irt) = &d.in_reply_to {
        b = b.in_reply_to(format!("<{irt}>"));
    }
    if !d.references.is_empty() {
        let refs: Vec<String> = d.references.iter().map(|r| format!("<{r}>")).collect();
        b = b.references(refs.join(" "));
    }
    b = b.raw_header(raw_header("Auto-Submitted", d.auto_submitted.as_str()));
    if d.auto_submitted != AutoSubmitted::Person {
        b = b
            .raw_header(raw_header("X-Auto-Response-Suppress", "All"))
            .raw_header(raw_header("Precedence", "auto_reply"));
    }
    if let Some(rt) = &d.reply_to {
        let a: lettre::Address = rt.parse().with_context(|| format!("bad Reply-To {rt}"))?;
        b = b.reply_to(Mailbox::new(Some(identity.from_name.clone()), a));
    }
    b = b.raw_header(raw_header(LOOP_HEADER, identity.message_id_domain.clone()));
    let msg = if d.attachments.is_empty() {
        b.header(ContentType::TEXT_PLAIN)
            .body(d.body.clone())
            .context("cannot build the message")?
    } else {
        use lettre::message::{Attachment, MultiPart, SinglePart};
        let mut parts = MultiPart::mixed().singlepart(SinglePart::plain(d.body.clone()));
        for a in &d.attachments {
            let ct = ContentType::parse(&a.content_type).unwrap_or_else(|_| {
                ContentType::parse("application/octet-stream").expect("a valid type")
            });
            parts = parts.singlepart(Attachment::new(a.name.clone()).body(a.bytes.clone(), ct));
        }
        b.multipart(parts).context("cannot build the message")?
    };
    Ok(NewMail {
        kind: d.kind.clone(),
        message_id: message_id.to_string(),
        mail_from: d.from_address.clone(),
        rcpt_to: d.to.clone(),
        subject: d.subject.clone(),
        raw: msg.formatted(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_20_message_ids_carry_128_unguessable_bits() {
        let a = new_message_id("t.test", Some(TicketId(7)));
        let b = new_message_id("t.test", Some(TicketId(7)));
        assert_ne!(a, b);
        let nonce = a
            .strip_prefix("ticketd.7.")
            .and_then(|r| r.strip_suffix("@t.test"))
            .expect(&a);
        assert_eq!(nonce.len(), 32, "{a}");
        assert!(nonce.bytes().all(|c| c.is_ascii_hexdigit()), "{a}");
    }
    use crate::parse::parse;

    #[test]
    fn replies_carry_threading_and_machine_headers() {
        let identity = Identity {
            from_name: "ACME Support".into(),
            message_id_domain: "tickets.acme.test".into(),
            own_addresses: vec!["support@acme.test".into()],
            staff: vec![],
        };
        let d = Draft {
            kind: "ack_new".into(),
            from_address: "support@acme.test".into(),
            to: vec!["taro@example.jp".into()],
            subject: "Re: 障害について [TKT#3]".into(),
            body: "お問い合わせありがとうございます。\n".into(),
            in_reply_to: Some("orig@example.jp".into()),
            references: vec!["older@example.jp".into(), "orig@example.jp".into()],
            auto_submitted: AutoSubmitted::Replied,
            reply_to: None,
            attachments: vec![],
        };
        let at = DateTime::parse_from_rfc3339("2026-03-02T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let id = new_message_id("tickets.acme.test", Some(TicketId(3)));
        let m = build(&d, &id, &identity, at).unwrap();
        let back = parse(&m.raw, at);
        assert_eq!(back.subject, "Re: 障害について [TKT#3]");
        assert_eq!(back.message_id.as_deref(), Some(id.as_str()));
        assert_eq!(back.in_reply_to, vec!["orig@example.jp"]);
        assert_eq!(back.references, vec!["older@example.jp", "orig@example.jp"]);
        assert_eq!(back.header("auto-submitted"), Some("auto-replied"));
        assert_eq!(back.header("x-auto-response-suppress"), Some("All"));
        assert_eq!(back.header("x-ticketd-loop"), Some("tickets.acme.test"));
        assert!(back.text.contains("お問い合わせ"));
        assert!(back.date_header.unwrap().starts_with("2026-03-02T10:00:00"));
    }

    #[test]
    fn notices_are_auto_generated_and_carry_the_loop_marker() {
        let identity = Identity {
            from_name: "ACME Support".into(),
            message_id_domain: "tickets.acme.test".into(),
            own_addresses: vec!["support@acme.test".into()],
            staff: vec!["lead@acme.test".into()],
        };
        let d = Draft {
            kind: "staff_undeliverable".into(),
            from_address: "support@acme.test".into(),
            to: vec!["lead@acme.test".into()],
            subject: "[ticketd] ann@example.net is undeliverable".into(),
            body: "x\n".into(),
            in_reply_to: None,
            references: vec![],
            auto_submitted: AutoSubmitted::Generated,
            reply_to: None,
            attachments: vec![],
        };
        let at = DateTime::UNIX_EPOCH;
        let m = build(
            &d,
            &new_message_id("tickets.acme.test", None),
            &identity,
            at,
        )
        .unwrap();
        let back = parse(&m.raw, at);
        assert_eq!(back.header("auto-submitted"), Some("auto-generated"));
        assert_eq!(back.header("x-auto-response-suppress"), Some("All"));
        assert_eq!(back.header("x-ticketd-loop"), Some("tickets.acme.test"));
        // Our own mail, come back, is recognised as ours.
        let c = crate::classify::classify(&back, &identity);
        assert_eq!(c.class, crate::classify::Class::OwnLoop);
    }
}
