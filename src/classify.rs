//! Who wrote a mail: a person, an auto-responder, a bounce, a list, or ourselves; with the signs that decided.

use crate::config::Identity;
use crate::parse::Inbound;
use serde::Serialize;

/// The header of ours that marks every mail we send; its value is our Message-ID domain.
pub const LOOP_HEADER: &str = "X-Ticketd-Loop";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    Human,
    AutoReply,
    Bounce,
    List,
    OwnLoop,
    Unparseable,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Human => "human",
            Class::AutoReply => "auto_reply",
            Class::Bounce => "bounce",
            Class::List => "list",
            Class::OwnLoop => "own_loop",
            Class::Unparseable => "unparseable",
        }
    }

    /// Mail written by a machine: never answered automatically.
    pub fn is_machine(self) -> bool {
        !matches!(self, Class::Human)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Classification {
    pub class: Class,
    /// Which headers or signs decided, in the order they were checked.
    pub reasons: Vec<String>,
}

fn local_part(address: &str) -> String {
    address
        .rsplit_once('@')
        .map(|(l, _)| l)
        .unwrap_or(address)
        .to_ascii_lowercase()
}

fn domain_of(id: &str) -> Option<String> {
    id.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase())
}

/// Classifies `m`. Strong signs (headers defined for the purpose) decide first.
pub fn classify(m: &Inbound, identity: &Identity) -> Classification {
    let mut reasons = Vec::new();
    if !m.parsed {
        reasons.extend(m.warnings.iter().cloned());
        return Classification {
            class: Class::Unparseable,
            reasons,
        };
    }

    // Our own mail, come back.
    let loop_header = LOOP_HEADER.to_ascii_lowercase();
    if let Some(v) = m.header(&loop_header)
        && v.trim().eq_ignore_ascii_case(&identity.message_id_domain)
    {
        reasons.push(format!("{LOOP_HEADER}: {}", v.trim()));
    }
    if let Some(from) = m.sender_address()
        && identity.is_own(from)
    {
        reasons.push(format!("From is our own address {from}"));
    }
    if let Some(id) = &m.message_id
        && domain_of(id).as_deref()
            == Some(identity.message_id_domain.to_ascii_lowercase().as_str())
    {
        reasons.push(format!("Message-ID <{id}> is in our domain"));
    }
    if !reasons.is_empty() {
        return Classification {
            class: Class::OwnLoop,
            reasons,
        };
    }

    // Bounces and other delivery reports.
    if let Some(ct) = m.header("content-type") {
        let ct = ct.to_ascii_lowercase();
        if ct.contains("multipart/report") && ct.contains("delivery-status") {
            reasons.push("Content-Type: multipart/report; report-type=delivery-status".into());
        }
    }
    if m.has_header("x-failed-recipients") {
        reasons.push("X-Failed-Recipients present".into());
    }
    if let Some(from) = m.sender_address() {
        let l = local_part(from);
        if l == "mailer-daemon" || l == "postmaster" {
            reasons.push(format!("From {from}"));
        }
    }
    if !reasons.is_empty() {
        return Classification {
            class: Class::Bounce,
            reasons,
        };
    }

    // Auto-responders (RFC 3834 and the de-facto headers).
    if let Some(v) = m.header("auto-submitted") {
        let v = v.trim().to_ascii_lowercase();
        let token = v.split(';').next().unwrap_or("").trim();
        if token != "no" && !token.is_empty() {
            reasons.push(format!("Auto-Submitted: {token}"));
        }
    }
    for h in ["x-autoreply", "x-autorespond", "x-autoresponder"] {
        if m.has_header(h) {
            reasons.push(format!("{h} present"));
        }
    }
    if let Some(p) = m.header("precedence") {
        let p = p.trim().to_ascii_lowercase();
        if p == "auto_reply" {
            reasons.push("Precedence: auto_reply".into());
        }
    }
    if !reasons.is_empty() {
        return Classification {
            class: Class::AutoReply,
            reasons,
        };
    }

    // Lists and bulk.
    for h in ["list-id", "list-unsubscribe", "list-post", "mailing-list"] {
        if m.has_header(h) {
            reasons.push(format!("{h} present"));
        }
    }
    if let Some(p) = m.header("precedence") {
        let p = p.trim().to_ascii_lowercase();
        if matches!(p.as_str(), "bulk" | "junk" | "list") {
            reasons.push(format!("Precedence: {p}"));
        }
    }
    if !reasons.is_empty() {
        return Classification {
            class: Class::List,
            reasons,
        };
    }

    // A null reverse path is only ever used by machines (RFC 5321 4.5.5).
    if let Some(rp) = m.header("return-path")
        && rp.trim().trim_matches(['<', '>', ' ']).is_empty()
    {
        reasons.push("Return-Path: <>".into());
        return Classification {
            class: Class::AutoReply,
            reasons,
        };
    }

    Classification {
        class: Class::Human,
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;

    fn identity() -> Identity {
        Identity {
            from_name: "Support".into(),
            message_id_domain: "tickets.vendor.test".into(),
            own_addresses: vec!["support@vendor.test".into()],
            staff: vec![],
        }
    }

    fn class_of(headers: &str) -> Class {
        let raw = format!("{headers}Subject: hi\r\n\r\nbody\r\n");
        classify(
            &parse(raw.as_bytes(), chrono::DateTime::UNIX_EPOCH),
            &identity(),
        )
        .class
    }

    #[test]
    fn a_plain_mail_is_human() {
        assert_eq!(class_of("From: ann@example.net\r\n"), Class::Human);
        assert_eq!(
            class_of("From: ann@example.net\r\nAuto-Submitted: no\r\n"),
            Class::Human
        );
    }

    #[test]
    fn machines_are_recognised() {
        assert_eq!(
            class_of("From: ann@example.net\r\nAuto-Submitted: auto-replied\r\n"),
            Class::AutoReply
        );
        assert_eq!(
            class_of("From: ann@example.net\r\nPrecedence: bulk\r\n"),
            Class::List
        );
        assert_eq!(
            class_of("From: ann@example.net\r\nPrecedence: junk\r\n"),
            Class::List
        );
        assert_eq!(
            class_of("From: ann@example.net\r\nList-Id: <users.lists.example.net>\r\n"),
            Class::List
        );
        assert_eq!(
            class_of("Return-Path: <>\r\nFrom: ann@example.net\r\n"),
            Class::AutoReply
        );
        assert_eq!(
            class_of("From: MAILER-DAEMON@mx.example.net\r\n"),
            Class::Bounce
        );
        assert_eq!(class_of("From: support@vendor.test\r\n"), Class::OwnLoop);
        assert_eq!(
            class_of("From: ann@example.net\r\nX-Ticketd-Loop: tickets.vendor.test\r\n"),
            Class::OwnLoop
        );
    }
}
