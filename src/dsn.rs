//! Delivery reports: RFC 3464 delivery-status parts, ARF and MDN reports, and the failed recipient and status in the body shapes of MTAs that send no standard report.

use crate::text::clip;
use mail_parser::{Message, MessageParser, MimeHeaders, PartType};
use regex::Regex;
use std::sync::LazyLock;

/// How many recipients of one report are kept.
const MAX_RECIPIENTS: usize = 50;
/// How much of a body is searched for bounce shapes.
const MAX_SCAN: usize = 64 * 1024;

pub use crate::model::Bounce;

/// One per-recipient block of a message/delivery-status part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientStatus {
    pub recipient: String,
    pub action: String,
    pub status: String,
    pub diagnostic: Option<String>,
}

/// The `report-type` of a multipart/report (RFC 6522).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportType {
    DeliveryStatus,
    /// ARF (RFC 5965): an abuse or spam complaint.
    Feedback,
    /// MDN (RFC 8098): a read receipt or its kin.
    Disposition,
    Other,
}

/// What the MIME structure of a mail says about it as a report.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub report_type: Option<ReportType>,
    /// Every per-recipient block of every delivery-status part.
    pub recipients: Vec<RecipientStatus>,
    /// The Message-ID of an attached message/rfc822 or text/rfc822-headers part.
    pub original_message_id: Option<String>,
    /// A message/feedback-report or message/disposition-notification part is present.
    pub feedback_part: bool,
    pub disposition_part: bool,
}

/// The report-type parameter of a Content-Type header value, when it is a multipart/report.
pub fn report_type_of(content_type: &str) -> Option<ReportType> {
    let ct = content_type.to_ascii_lowercase();
    if !ct.trim_start().starts_with("multipart/report") {
        return None;
    }
    let rt = ct
        .split(';')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim() == "report-type")
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .unwrap_or_default();
    Some(match rt.as_str() {
        "delivery-status" | "global-delivery-status" => ReportType::DeliveryStatus,
        "feedback-report" => ReportType::Feedback,
        "disposition-notification" | "global-disposition-notification" => ReportType::Disposition,
        _ => ReportType::Other,
    })
}

/// Header-style fields ("Name: value", folded lines joined), in blocks separated by blank lines.
fn field_blocks(text: &str) -> Vec<Vec<(String, String)>> {
    let mut blocks = Vec::new();
    let mut block: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !block.is_empty() {
                blocks.push(std::mem::take(&mut block));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = block.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            block.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    if !block.is_empty() {
        blocks.push(block);
    }
    blocks
}

/// "rfc822; Ann@Example.net" → "ann@example.net".
fn typed_address(v: &str) -> String {
    let a = v.split_once(';').map(|(_, a)| a).unwrap_or(v);
    a.trim()
        .trim_matches(['<', '>', '"', ' '])
        .to_ascii_lowercase()
}

/// Reads the per-recipient blocks of a message/delivery-status body.
pub fn delivery_status(text: &str) -> Vec<RecipientStatus> {
    let mut out = Vec::new();
    for block in field_blocks(text) {
        let get = |name: &str| {
            block
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let Some(recipient) = get("final-recipient").or(get("original-recipient")) else {
            continue;
        };
        let status = get("status")
            .and_then(|s| STATUS.find(s))
            .map(|m| m.as_str().to_string())
            .unwrap_or_default();
        out.push(RecipientStatus {
            recipient: typed_address(recipient),
            action: get("action").unwrap_or("").trim().to_ascii_lowercase(),
            status,
            diagnostic: get("diagnostic-code").map(|d| {
                let d = d.split_once(';').map(|(_, d)| d).unwrap_or(d);
                clip(d.trim(), 500).to_string()
            }),
        });
        if out.len() >= MAX_RECIPIENTS {
            break;
        }
    }
    out
}

/// The first Message-ID header in a block of header text.
fn message_id_in_headers(text: &str) -> Option<String> {
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        if !k.trim().eq_ignore_ascii_case("message-id") {
            continue;
        }
        let mut v = v.trim().to_string();
        while v.is_empty() {
            match lines.peek() {
                Some(l) if l.starts_with([' ', '\t']) => {
                    v = l.trim().to_string();
                    lines.next();
                }
                _ => break,
            }
        }
        let id = v
            .split_whitespace()
            .next()
            .unwrap_or("")
            .trim_matches(['<', '>']);
        if !id.is_empty() && id.len() <= 998 {
            return Some(id.to_string());
        }
    }
    None
}

fn walk(msg: &Message<'_>, report: &mut Report, depth: usize) {
    for part in &msg.parts {
        let (ctype, subtype) = part
            .content_type()
            .map(|c| {
                (
                    c.ctype().to_ascii_lowercase(),
                    c.subtype().unwrap_or("").to_ascii_lowercase(),
                )
            })
            .unwrap_or_default();
        match (ctype.as_str(), subtype.as_str()) {
            ("message", "delivery-status" | "global-delivery-status") => {
                let text = String::from_utf8_lossy(part.contents());
                let mut found = delivery_status(clip(&text, MAX_SCAN));
                found.truncate(MAX_RECIPIENTS - report.recipients.len().min(MAX_RECIPIENTS));
                report.recipients.extend(found);
            }
            ("message", "feedback-report") => report.feedback_part = true,
            ("message", "disposition-notification" | "global-disposition-notification") => {
                report.disposition_part = true
            }
            ("text", "rfc822-headers") | ("message", "rfc822-headers" | "global-headers")
                if report.original_message_id.is_none() =>
            {
                let text = String::from_utf8_lossy(part.contents());
                report.original_message_id = message_id_in_headers(clip(&text, MAX_SCAN));
            }
            _ => {}
        }
        if let PartType::Message(inner) = &part.body
            && depth == 0
            && report.original_message_id.is_none()
        {
            report.original_message_id = inner
                .message_id()
                .map(|s| s.trim().trim_matches(['<', '>']).to_string())
                .filter(|s| !s.is_empty() && s.len() <= 998);
        }
    }
}

/// Reads the report parts of `raw`. Only called for mail that already looks
/// like a report or a bounce, so ordinary mail is parsed once.
pub fn read_report(raw: &[u8]) -> Report {
    let mut report = Report::default();
    let Some(msg) = MessageParser::default().parse(raw) else {
        return report;
    };
    report.report_type = msg.header_raw("Content-Type").and_then(report_type_of);
    walk(&msg, &mut report, 0);
    report
}

/// Enhanced status codes (RFC 3463), not inside an IP address or version number.
static STATUS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b[245]\.\d{1,3}\.\d{1,3}\b").expect("status regex"));
static STATUS_IN_TEXT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[^\d.])#?([245]\.\d{1,3}\.\d{1,3})(?:[^\d.]|$)").expect("status regex")
});
/// A basic SMTP reply code at the start of a reply ("550 ", "550-", "#550").
static SMTP_CODE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:^|[\s:#(])([45][0-5]\d)[\s-]").expect("smtp code regex"));
static ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+")
        .expect("address regex")
});

/// Lines that start the copy of the returned mail in a non-standard bounce.
const ORIGINAL_MARKERS: &[&str] = &[
    "below this line is a copy of the message",
    "this is a copy of the message",
    "original message follows",
    "----- original message -----",
    "------ original message ------",
    "unsent message below",
    "message headers follow",
    "----- message header follows -----",
    "copy of original message",
    "headers of the original message",
    "original message header",
];

/// Phrases of MTAs that say delivery failed for good, or will be retried.
const PERMANENT_PHRASES: &[&str] = &[
    "permanent error",
    "permanently",
    "permanent fatal error",
    "fatal error",
    "user unknown",
    "unknown user",
    "no such user",
    "does not exist",
    "mailbox unavailable",
    "mailbox not found",
    "address rejected",
    "couldn't be found",
    "could not be found",
    "invalid recipient",
    "recipient not found",
    "unrouteable",
    "i've given up",
    "no mailbox here",
];
const TEMPORARY_PHRASES: &[&str] = &[
    "temporary failure",
    "temporarily",
    "will retry",
    "will be retried",
    "still trying",
    "has not yet been delivered",
    "not been delivered yet",
    "delayed",
    "deferred",
    "warning: message",
    "delivery is delayed",
    "continue to try",
    "will keep trying",
    "postponed",
    "this is a warning only",
];

/// Signs in a body that a mail delivery system wrote it (beyond the subject).
pub const BODY_SHAPES: &[(&str, &str)] = &[
    ("hi. this is the qmail-send program", "qmail"),
    (
        "this message was created automatically by mail delivery software",
        "Exim",
    ),
    ("this is the mail system at host", "Postfix"),
    (
        "i'm sorry to have to inform you that your message could not",
        "Postfix",
    ),
    (
        "the following addresses had permanent fatal errors",
        "Sendmail",
    ),
    ("----- transcript of session follows -----", "Sendmail"),
    (
        "delivery has failed to these recipients or groups",
        "Exchange",
    ),
    ("your message couldn't be delivered", "Exchange"),
    ("diagnostic information for administrators", "Exchange"),
    (
        "delivery to the following recipient failed permanently",
        "Gmail",
    ),
    ("delivery to the following recipients failed", "Gmail"),
    ("message not delivered", "Gmail"),
    ("your message wasn't delivered", "Gmail"),
    (
        "delivery to the following recipient has been delayed",
        "Gmail",
    ),
    (
        "this is an automatically generated delivery status notification",
        "MTA",
    ),
    ("unable to deliver message to the following address", "MTA"),
    ("message could not be delivered to some recipients", "MTA"),
    ("could not be delivered to one or more recipients", "MTA"),
    ("i wasn't able to deliver your message", "qmail"),
    (
        "your message did not reach some or all of the intended recipients",
        "Exchange",
    ),
    ("sorry, we were unable to deliver your message", "MTA"),
    ("このメッセージは配信できませんでした", "MTA"),
    ("配信できませんでした", "MTA"),
    ("no se pudo entregar", "MTA"),
];

/// The MTA whose body shape `text` has, if any.
///
/// The earliest shape in `BODY_SHAPES` wins, found in one pass over the
/// text (Aho-Corasick, every occurrence), letters in either case.
pub fn body_shape(text: &str) -> Option<&'static str> {
    static SHAPES: std::sync::LazyLock<aho_corasick::AhoCorasick> =
        std::sync::LazyLock::new(|| {
            aho_corasick::AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .build(BODY_SHAPES.iter().map(|(p, _)| p))
                .expect("valid patterns")
        });
    crate::text::earliest(&SHAPES, clip(text, MAX_SCAN)).map(|i| BODY_SHAPES[i].1)
}

/// What the body text of a bounce says: failed recipients, status, the
/// server's words and the returned mail's Message-ID. `exclude` holds
/// addresses that are never the failed recipient (our own, the bounce's sender).
pub fn from_body(text: &str, exclude: &[String]) -> Bounce {
    let text = clip(text, MAX_SCAN);
    // ASCII lower-casing keeps byte offsets, so positions found in `lower` cut `text`.
    let lower = text.to_ascii_lowercase();
    // The part before the copy of the returned mail is the MTA's own words.
    let cut = ORIGINAL_MARKERS
        .iter()
        .filter_map(|m| lower.find(m))
        .min()
        .unwrap_or(text.len());
    let (own_words, copy) = text.split_at(cut);
    let own_lower = own_words.to_lowercase();

    let mut recipients: Vec<String> = Vec::new();
    for m in ADDRESS.find_iter(own_words) {
        let a = m.as_str().trim_end_matches('.').to_ascii_lowercase();
        let local = a.split('@').next().unwrap_or("");
        if exclude.contains(&a)
            || matches!(local, "postmaster" | "mailer-daemon" | "mailer_daemon")
            || recipients.contains(&a)
        {
            continue;
        }
        recipients.push(a);
        if recipients.len() >= MAX_RECIPIENTS {
            break;
        }
    }

    let mut status = STATUS_IN_TEXT
        .captures(own_words)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    let smtp = SMTP_CODE
        .captures(own_words)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().to_string());
    if status.is_empty() {
        let temporary = TEMPORARY_PHRASES.iter().any(|p| own_lower.contains(p));
        let permanent = PERMANENT_PHRASES.iter().any(|p| own_lower.contains(p));
        status = match (&smtp, permanent, temporary) {
            (Some(c), _, _) => format!("{}.0.0", &c[..1]),
            (None, true, false) => "5.0.0".into(),
            (None, false, true) => "4.0.0".into(),
            _ => String::new(),
        };
    }
    let diagnostic = own_words
        .lines()
        .map(str::trim)
        .find(|l| SMTP_CODE.is_match(&format!(" {l} ")) || STATUS_IN_TEXT.is_match(l))
        .map(|l| clip(l, 500).to_string());
    let original_message_id = message_id_in_headers(copy).or_else(|| {
        // Some MTAs quote the headers without a marker line.
        message_id_in_headers(own_words)
    });
    if let Some(id) = &original_message_id {
        recipients.retain(|r| !r.eq_ignore_ascii_case(id));
    }
    Bounce {
        permanent: status.starts_with('5'),
        status,
        recipients,
        original_message_id,
        diagnostic,
    }
}

/// Sums up the per-recipient blocks of a delivery-status report: the
/// permanent failures if there are any, else the delays and other failures,
/// else whatever the report says (a success notice).
pub fn from_report(report: &Report) -> Option<Bounce> {
    if report.recipients.is_empty() {
        return None;
    }
    let permanent: Vec<&RecipientStatus> = report
        .recipients
        .iter()
        .filter(|r| r.status.starts_with('5') || (r.status.is_empty() && r.action == "failed"))
        .collect();
    let chosen: Vec<&RecipientStatus> = if !permanent.is_empty() {
        permanent
    } else {
        let failing: Vec<&RecipientStatus> = report
            .recipients
            .iter()
            .filter(|r| {
                r.status.starts_with('4') || matches!(r.action.as_str(), "failed" | "delayed")
            })
            .collect();
        if failing.is_empty() {
            report.recipients.iter().collect()
        } else {
            failing
        }
    };
    let first = chosen[0];
    let status = if first.status.is_empty() && first.action == "failed" {
        "5.0.0".to_string()
    } else {
        first.status.clone()
    };
    let mut recipients: Vec<String> = Vec::new();
    for r in &chosen {
        if !r.recipient.is_empty() && !recipients.contains(&r.recipient) {
            recipients.push(r.recipient.clone());
        }
    }
    Some(Bounce {
        permanent: status.starts_with('5'),
        status,
        recipients,
        original_message_id: report.original_message_id.clone(),
        diagnostic: chosen.iter().find_map(|r| r.diagnostic.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_per_recipient_block() {
        let ds = "Reporting-MTA: dns; mx.example.net\r\nArrival-Date: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\nFinal-Recipient: rfc822; Ann@Example.net\r\nOriginal-Recipient: rfc822;ann@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 <ann@example.net>:\r\n Recipient address rejected: User unknown\r\n\r\nFinal-Recipient: rfc822; bob@example.net\r\nAction: delayed\r\nStatus: 4.4.1\r\n";
        let r = delivery_status(ds);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].recipient, "ann@example.net");
        assert_eq!(r[0].action, "failed");
        assert_eq!(r[0].status, "5.1.1");
        assert!(
            r[0].diagnostic
                .as_deref()
                .unwrap()
                .ends_with("Recipient address rejected: User unknown")
        );
        assert_eq!(r[1].status, "4.4.1");
        let b = from_report(&Report {
            recipients: r,
            ..Default::default()
        })
        .unwrap();
        assert!(b.permanent);
        assert_eq!(b.recipients, vec!["ann@example.net"]);
    }

    #[test]
    fn a_delay_only_report_is_temporary() {
        let r = delivery_status(
            "Reporting-MTA: dns; mx\n\nFinal-Recipient: rfc822; bob@example.net\nAction: delayed\nStatus: 4.4.7\n",
        );
        let b = from_report(&Report {
            recipients: r,
            ..Default::default()
        })
        .unwrap();
        assert!(!b.permanent);
        assert_eq!(b.status, "4.4.7");
    }

    #[test]
    fn report_type_is_read_from_the_content_type() {
        assert_eq!(
            report_type_of("multipart/report; report-type=\"delivery-status\"; boundary=x"),
            Some(ReportType::DeliveryStatus)
        );
        assert_eq!(
            report_type_of("Multipart/Report; boundary=x; Report-Type=feedback-report"),
            Some(ReportType::Feedback)
        );
        assert_eq!(
            report_type_of("multipart/report; report-type=disposition-notification"),
            Some(ReportType::Disposition)
        );
        assert_eq!(report_type_of("multipart/mixed; boundary=x"), None);
    }

    #[test]
    fn status_codes_are_not_read_from_ip_addresses() {
        let b = from_body(
            "Hi. This is the qmail-send program at mx.example.net.\nI'm afraid I wasn't able to deliver your message to the following addresses.\nThis is a permanent error; I've given up. Sorry it didn't work out.\n\n<gone@example.org>:\n192.0.2.5.1.1 does not like recipient.\nRemote host said: 550 sorry, no mailbox here by that name. (#5.1.1)\nGiving up on 192.0.2.5.\n\n--- Below this line is a copy of the message.\n\nReturn-Path: <support@vendor.test>\nMessage-ID: <ticketd.3.abc@tickets.vendor.test>\nTo: gone@example.org\n",
            &["support@vendor.test".into()],
        );
        assert_eq!(b.recipients, vec!["gone@example.org"]);
        assert_eq!(b.status, "5.1.1");
        assert!(b.permanent);
        assert_eq!(
            b.original_message_id.as_deref(),
            Some("ticketd.3.abc@tickets.vendor.test")
        );
        assert!(b.diagnostic.unwrap().contains("550 sorry"));
    }

    proptest::proptest! {
        /// One pass over the text finds what a search for each shape in
        /// turn, over the text in lower case, found: the same MTA, in
        /// capitals or not, among other shapes and words.
        #[test]
        fn issue_24_body_shapes_found_in_one_pass_are_those_found_one_by_one(
            picks in proptest::collection::vec((0..BODY_SHAPES.len(), proptest::bool::ANY, "\\PC{0,30}"), 0..4),
        ) {
            let text: String = picks
                .iter()
                .map(|(i, upper, filler)| {
                    let p = BODY_SHAPES[*i].0;
                    format!("{filler} {} ", if *upper { p.to_uppercase() } else { p.to_string() })
                })
                .collect();
            let lower = text.to_lowercase();
            let one_by_one = BODY_SHAPES.iter().find(|(p, _)| lower.contains(p)).map(|(_, m)| *m);
            proptest::prop_assert_eq!(body_shape(&text), one_by_one);
        }

        #[test]
        fn reading_reports_and_bodies_never_panics(text in "\\PC{0,400}", raw in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let _ = delivery_status(&text);
            let _ = from_body(&text, &[]);
            let _ = body_shape(&text);
            let _ = read_report(&raw);
            let mut framed = b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\n".to_vec();
            framed.extend_from_slice(&raw);
            let _ = from_report(&read_report(&framed));
        }
    }
}
