//! What the decision's unit tests share: a shipped pack, an instant, a ticket, an identity, and template data with every field the shipped templates use.

use crate::model::Identity;
use crate::model::{TicketId, TicketInfo, TicketStatus};
use crate::pack::Pack;
use chrono::{DateTime, Utc};
use serde_json::json;

pub fn pack(name: &str) -> Pack {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("config/vendors/{name}.toml"));
    Pack::load(&path).unwrap()
}

pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

/// An open ticket of `requester`, opened at `created` (RFC 3339), with
/// nothing else on it yet.
pub fn ticket(id: i64, requester: &str, created: &str) -> TicketInfo {
    TicketInfo {
        id: TicketId(id),
        subject: "Disk".into(),
        status: TicketStatus::Open,
        requester: requester.into(),
        language: "en".into(),
        mailbox: "support".into(),
        participants: vec![requester.into()],
        created_at: at(created),
        facts: vec![],
        staff_notes: vec![],
        updated_at: at(created),
        severity: None,
        last_answer: None,
        owner: None,
        timers: vec![],
        rmas: vec![],
        merged_into: None,
    }
}

/// Two staff members, alice (support) and bob (rma), at acme.test, and a
/// reply token key.
pub fn staff_directory() -> crate::model::StaffDirectory {
    let member = |name: &str, display: &str, queue: &str| crate::model::StaffMember {
        name: name.into(),
        display: display.into(),
        addresses: vec![format!("{name}@acme.test")],
        queues: vec![queue.into()],
    };
    crate::model::StaffDirectory {
        members: vec![
            member("alice", "Alice", "support"),
            member("bob", "Bob", "rma"),
        ],
        token_key: Some(crate::token::TokenKey::new(b"a test key of some thirty bytes!").unwrap()),
        authserv_ids: vec!["mx.acme.test".into()],
        ..crate::model::StaffDirectory::default()
    }
}

/// Our identity, with `staff` as the staff list.
pub fn identity(staff: &[&str]) -> Identity {
    Identity {
        from_name: "Support".into(),
        message_id_domain: "t.test".into(),
        own_addresses: vec!["support@vendor.test".into()],
        staff: staff.iter().map(|s| s.to_string()).collect(),
    }
}

/// Template data with every field the shipped templates use, for tests.
pub fn sample_template_data() -> serde_json::Value {
    let mut v = json!({
        "vendor": "ACME",
        "customer": {"name": "Ann & Bob <ops>", "address": "ann@example.net"},
        "mailbox": {"name": "support", "role": "support", "address": "support@acme.test"},
        "received_at": "2026-03-02 10:00 PST",
        "message": {"subject": "Disk", "attachments": 0, "size": 10, "message_id": "x@y"},
        "ticket": {"id": 7, "tag": "[TKT#7]", "subject": "Disk"},
        "reason": "too large",
        "notes": ["QN-04: decide"],
        "failure": {"error": "550 no such user", "to": "ann@example.net", "subject": "Re: Disk"},
        "bounce": {"status": "5.1.1", "recipients": "ann@example.net", "diagnostic": "550 5.1.1 user unknown", "staff": false},
        "held": 2,
        "extracted": {"ticket_ids": [], "serials": [], "invoices": [], "rma_codes": [], "tax_ids": []},
        "ticket_state": "open",
        "escalation": {"to": "Director", "rule": "NX-03", "due": "2026-03-02 18:00 CST", "opened": "2026-03-02 10:00 CST",
                       "open_for": "8 hours", "late": true, "sent": "2026-03-02 19:00 CST", "unmapped": false},
        "sla": {"breach": true, "rule": "IX-03", "at": "2026-03-03 10:00 PST", "opened": "2026-03-02 10:00 PST",
                "late": false, "sent": "2026-03-03 10:00 PST"},
        "rma": [{"code": "7", "part": "DRIVE-1", "state": "issued", "state_name": "issued", "expires": "2026-04-01 10:00 PDT"}],
        "deadlines": {},
        "return_to": null,
        "due": "2026-03-04 10:00 PST",
        "rule": "QN-05",
        "asked_on": "2026-03-02",
        "missing": ["the serial number"],
        "body": "Hello Ann,\n\nplease send the log.",
        "tracking": {"carrier": "UPS", "number": "1Z999AA10123456784"},
        "into": {"id": 9, "tag": "[TKT#9]", "subject": "Disk failed again"},
        "merged": {"id": 7, "tag": "[TKT#7]"},
    });
    // The staff templates' fields (a second literal: one is too deep for json!).
    let staff = json!({
        "new": true,
        "owner": "alice",
        "queue": ["alice"],
        "severity": 2,
        "tier": "gold",
        "contract": {"serial": "IX-1", "company": "Acme", "plans": ["onsite"], "matched_by": "serial"},
        "warranty": {"status": "covered", "until": "2027-01-17"},
        "sla_due": "2026-03-02 17:00 PST",
        "route": null,
        "attachments": ["log.txt"],
        "text": "The pool is degraded.",
        "commands": "#close",
        "member": "Alice",
        "done": ["state: open -> closed"],
        "relayed": false,
        "sent": false,
        "sent": false,
        "error": "line 1: `#clsoe`: is not a command",
        "syntax": "#close",
        "from": "alice@acme.test",
        "why": "no DKIM signature",
        "opened": "2026-03-02",
        "last_answer": null,
    });
    if let (Some(v), serde_json::Value::Object(m)) = (v.as_object_mut(), staff) {
        v.extend(m);
    }
    v
}
