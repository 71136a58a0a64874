//! Webhook bodies and signatures, pure: the JSON of one event for a webhook's kind (ticketd's own, PagerDuty Events API v2, Slack, Teams), fixed when its delivery is queued, and the Standard Webhooks 1.0 signature of each attempt.

use crate::model::{HookEvent, HookKind};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

/// One event as a webhook tells it.
#[derive(Debug, Clone, PartialEq)]
pub struct Occurrence {
    pub event: HookEvent,
    pub ticket: Option<i64>,
    pub mailbox: String,
    /// The ticket's state after the event.
    pub state: Option<String>,
    pub severity: Option<u8>,
    /// The rule that caused the event (a timer's, an RMA's, the ticket's
    /// first pack rule).
    pub rule: Option<String>,
    /// Every pack rule that applied to the mail (`ticket.created`).
    pub rules: Vec<String>,
    pub pack: String,
    pub at: DateTime<Utc>,
    /// What else the event says (an escalation step's recipient, a send
    /// error, why mail was set aside), never the customer's words.
    pub detail: Value,
    /// The customer's text, for an entry with `include_text = true` only.
    pub text: Option<String>,
    pub subject: Option<String>,
}

/// An instant as the bodies write it: UTC, to the second.
pub fn utc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The `data` of ticketd's own body.
fn data(o: &Occurrence) -> Value {
    let mut d = json!({
        "ticket": o.ticket,
        "mailbox": o.mailbox,
        "state": o.state,
        "severity": o.severity,
        "rule": o.rule,
        "pack": o.pack,
        "at": utc(o.at),
    });
    if !o.rules.is_empty() {
        d["rules"] = json!(o.rules);
    }
    if !o.detail.is_null() {
        d["detail"] = o.detail.clone();
    }
    if let Some(s) = &o.subject {
        d["subject"] = json!(s);
    }
    if let Some(t) = &o.text {
        d["text"] = json!(t);
    }
    d
}

/// One line for people (Slack, Teams, a PagerDuty summary).
pub fn summary(o: &Occurrence) -> String {
    let mut s = match o.ticket {
        Some(t) => format!("{}: ticket {t} in {}", o.event, o.mailbox),
        None => format!("{}: mail in {}", o.event, o.mailbox),
    };
    let mut facts = Vec::new();
    if let Some(sev) = o.severity {
        facts.push(format!("S{sev}"));
    }
    if let Some(st) = &o.state {
        facts.push(st.clone());
    }
    if let Some(r) = &o.rule {
        facts.push(r.clone());
    }
    if !facts.is_empty() {
        s.push_str(&format!(" ({})", facts.join(", ")));
    }
    s.push_str(&format!(" at {}", utc(o.at)));
    s
}

/// PagerDuty's severity for a pack's: S1 critical, S2 error, S3 warning,
/// the rest (and none) info.
pub fn pagerduty_severity(s: Option<u8>) -> &'static str {
    match s {
        Some(1) => "critical",
        Some(2) => "error",
        Some(3) => "warning",
        _ => "info",
    }
}

/// The body a webhook of `kind` is sent for `o` (`webhook` is the entry's
/// name). A PagerDuty body has no `routing_key` yet: the sender adds it
/// from its file, so no secret is stored with the delivery.
pub fn body(kind: HookKind, webhook: &str, o: &Occurrence) -> String {
    let v = match kind {
        HookKind::Standard => json!({
            "type": o.event.as_str(),
            "timestamp": utc(o.at),
            "data": data(o),
        }),
        HookKind::Slack | HookKind::Teams => json!({ "text": summary(o) }),
        HookKind::Pagerduty => {
            // One incident per ticket; mail set aside with no ticket is
            // its own (two in the same second are two incidents).
            let dedup = match (o.ticket, o.detail.get("message").and_then(Value::as_i64)) {
                (Some(t), _) => format!("ticketd/{webhook}/ticket/{t}"),
                (None, Some(m)) => format!("ticketd/{webhook}/message/{m}"),
                (None, None) => format!("ticketd/{webhook}/{}", utc(o.at)),
            };
            if o.event == HookEvent::TicketClosed {
                json!({ "event_action": "resolve", "dedup_key": dedup })
            } else {
                json!({
                    "event_action": "trigger",
                    "dedup_key": dedup,
                    "payload": {
                        "summary": summary(o),
                        "source": "ticketd",
                        "severity": pagerduty_severity(o.severity),
                        "timestamp": utc(o.at),
                        "component": o.mailbox,
                        "group": o.pack,
                        "class": o.event.as_str(),
                        "custom_details": data(o),
                    }
                })
            }
        }
    };
    v.to_string()
}

/// A signing secret as Standard Webhooks writes it: `whsec_` and the key in
/// base64. Returns the key's bytes, or what is wrong.
pub fn signing_key(secret: &str) -> Result<Vec<u8>, String> {
    let Some(b64) = secret.strip_prefix("whsec_") else {
        return Err("a signing secret starts with whsec_".into());
    };
    let key = B64
        .decode(b64.trim())
        .map_err(|e| format!("the part after whsec_ is not base64: {e}"))?;
    if key.len() < 24 {
        return Err(format!(
            "the key after whsec_ has {} bytes, fewer than 24",
            key.len()
        ));
    }
    Ok(key)
}

/// `webhook-signature` for one attempt: `v1,` and the base64 HMAC-SHA256,
/// under `key`, of `id.timestamp.body`.
pub fn signature(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    let mut ctx = ring::hmac::Context::with_key(&k);
    ctx.update(id.as_bytes());
    ctx.update(b".");
    ctx.update(timestamp.to_string().as_bytes());
    ctx.update(b".");
    ctx.update(body);
    format!("v1,{}", B64.encode(ctx.sign().as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created() -> Occurrence {
        Occurrence {
            event: HookEvent::TicketCreated,
            ticket: Some(42),
            mailbox: "support".into(),
            state: Some("open".into()),
            severity: Some(1),
            rule: Some("NX-01".into()),
            rules: vec!["NX-01".into(), "NX-03".into()],
            pack: "netex".into(),
            at: DateTime::parse_from_rfc3339("2026-11-21T08:00:00Z")
                .unwrap()
                .to_utc(),
            detail: Value::Null,
            text: None,
            subject: None,
        }
    }

    #[test]
    fn a_standard_body_names_the_ticket_and_never_the_customers_text() {
        let b: Value = serde_json::from_str(&body(HookKind::Standard, "ops", &created())).unwrap();
        assert_eq!(b["type"], "ticket.created");
        assert_eq!(b["timestamp"], "2026-11-21T08:00:00Z");
        assert_eq!(b["data"]["ticket"], 42);
        assert_eq!(b["data"]["mailbox"], "support");
        assert_eq!(b["data"]["state"], "open");
        assert_eq!(b["data"]["severity"], 1);
        assert_eq!(b["data"]["rule"], "NX-01");
        assert!(b["data"].get("text").is_none());
    }

    #[test]
    fn pagerduty_triggers_with_a_dedup_key_per_ticket_and_resolves_on_close() {
        let t: Value = serde_json::from_str(&body(HookKind::Pagerduty, "pd", &created())).unwrap();
        assert_eq!(t["event_action"], "trigger");
        assert_eq!(t["dedup_key"], "ticketd/pd/ticket/42");
        assert_eq!(t["payload"]["severity"], "critical");
        assert_eq!(t["payload"]["source"], "ticketd");
        let mut closed = created();
        closed.event = HookEvent::TicketClosed;
        let r: Value = serde_json::from_str(&body(HookKind::Pagerduty, "pd", &closed)).unwrap();
        assert_eq!(r["event_action"], "resolve");
        assert_eq!(r["dedup_key"], t["dedup_key"]);
        assert_eq!(pagerduty_severity(Some(4)), "info");
    }

    #[test]
    fn pagerduty_pages_two_mails_set_aside_in_the_same_second_as_two_incidents() {
        let aside = |message: i64| Occurrence {
            event: HookEvent::MailQuarantined,
            ticket: None,
            state: None,
            severity: None,
            rule: None,
            rules: Vec::new(),
            detail: json!({ "why": "no From address", "message": message }),
            ..created()
        };
        let key = |o: &Occurrence| {
            let v: Value = serde_json::from_str(&body(HookKind::Pagerduty, "pd", o)).unwrap();
            v["dedup_key"].as_str().unwrap().to_string()
        };
        assert_eq!(key(&aside(7)), "ticketd/pd/message/7");
        assert_ne!(key(&aside(7)), key(&aside(8)));
    }

    #[test]
    fn signatures_follow_the_specifications_example() {
        // The example of the Standard Webhooks specification.
        let key = signing_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        assert!(signing_key("MfKQ9r8GKYqrTwjU").is_err());
        assert!(signing_key("whsec_!!").is_err());
    }
}
