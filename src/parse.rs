//! Raw message bytes to one [`Inbound`] value; parsing never fails, it records what it could not read.

use chrono::{DateTime, Utc};
use mail_parser::{Address, HeaderValue, MessageParser, MimeHeaders};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// How many header fields we keep for classification, and how long each may be.
const MAX_HEADERS: usize = 500;
const MAX_HEADER_VALUE: usize = 8 * 1024;
/// The longest text body we keep for extraction and replies.
const MAX_TEXT: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Addr {
    pub name: Option<String>,
    pub address: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Attachment {
    pub name: Option<String>,
    pub content_type: String,
    pub size: usize,
}

/// Everything the pipeline reads of one mail.
#[derive(Debug, Clone, Serialize)]
pub struct Inbound {
    /// False when the bytes could not be read as a message at all.
    pub parsed: bool,
    pub from: Option<Addr>,
    pub reply_to: Option<Addr>,
    pub to: Vec<Addr>,
    pub cc: Vec<Addr>,
    pub subject: String,
    /// Without angle brackets.
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    /// The Date header: what the sender claims, never used for time arithmetic.
    pub date_header: Option<String>,
    /// The server's INTERNALDATE: when the mail arrived.
    pub arrival: DateTime<Utc>,
    pub text: String,
    /// The text came from an HTML part (no plain part was present).
    pub text_from_html: bool,
    pub attachments: Vec<Attachment>,
    /// Header fields, names lower-cased, values unfolded and cut to a sane length.
    pub headers: Vec<(String, String)>,
    pub size: usize,
    /// SHA-256 of the raw bytes, hex.
    pub content_hash: String,
    pub warnings: Vec<String>,
}

impl Inbound {
    /// The first value of a header, by lower-case name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn has_header(&self, name: &str) -> bool {
        self.headers.iter().any(|(n, _)| n == name)
    }

    pub fn sender_address(&self) -> Option<&str> {
        self.from.as_ref().map(|a| a.address.as_str())
    }

    /// Every Message-ID this mail points back at, nearest first.
    pub fn referenced_ids(&self) -> Vec<String> {
        let mut out: Vec<String> = self.in_reply_to.clone();
        for r in self.references.iter().rev() {
            if !out.contains(r) {
                out.push(r.clone());
            }
        }
        out
    }
}

pub fn content_hash(raw: &[u8]) -> String {
    let d = Sha256::digest(raw);
    let mut s = String::with_capacity(64);
    for b in d {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn addrs(a: Option<&Address<'_>>) -> Vec<Addr> {
    let Some(a) = a else { return Vec::new() };
    a.iter()
        .filter_map(|x| {
            let address = x.address()?.trim().to_string();
            if address.is_empty() {
                return None;
            }
            Some(Addr {
                name: x
                    .name()
                    .map(|n| n.trim().to_string())
                    .filter(|n| !n.is_empty()),
                address,
            })
        })
        .take(200)
        .collect()
}

fn id_list(v: &HeaderValue<'_>) -> Vec<String> {
    let raw: Vec<String> = match v {
        HeaderValue::Text(t) => vec![t.to_string()],
        HeaderValue::TextList(l) => l.iter().map(|t| t.to_string()).collect(),
        _ => Vec::new(),
    };
    raw.into_iter()
        .map(|s| s.trim().trim_matches(['<', '>']).to_string())
        .filter(|s| !s.is_empty() && s.len() <= 998)
        .take(100)
        .collect()
}

fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Reads `raw`, which arrived at `arrival`. Never panics and never fails.
pub fn parse(raw: &[u8], arrival: DateTime<Utc>) -> Inbound {
    let mut inbound = Inbound {
        parsed: false,
        from: None,
        reply_to: None,
        to: Vec::new(),
        cc: Vec::new(),
        subject: String::new(),
        message_id: None,
        in_reply_to: Vec::new(),
        references: Vec::new(),
        date_header: None,
        arrival,
        text: String::new(),
        text_from_html: false,
        attachments: Vec::new(),
        headers: Vec::new(),
        size: raw.len(),
        content_hash: content_hash(raw),
        warnings: Vec::new(),
    };
    if raw.iter().all(|b| b.is_ascii_whitespace()) {
        inbound.warnings.push("the message is empty".into());
        return inbound;
    }
    let Some(msg) = MessageParser::default().parse(raw) else {
        inbound.warnings.push("not a mail message".into());
        return inbound;
    };
    if msg.headers().is_empty() {
        inbound
            .warnings
            .push("the message has no header fields".into());
        return inbound;
    }
    inbound.parsed = true;
    inbound.from = addrs(msg.from()).into_iter().next();
    if inbound.from.is_none() {
        inbound.warnings.push("no usable From address".into());
    }
    inbound.reply_to = addrs(msg.reply_to()).into_iter().next();
    inbound.to = addrs(msg.to());
    inbound.cc = addrs(msg.cc());
    inbound.subject = clip(msg.subject().unwrap_or("").trim(), 2000);
    inbound.message_id = msg
        .message_id()
        .map(|s| s.trim().trim_matches(['<', '>']).to_string())
        .filter(|s| !s.is_empty() && s.len() <= 998);
    inbound.in_reply_to = id_list(msg.in_reply_to());
    inbound.references = id_list(msg.references());
    inbound.date_header = msg.date().map(|d| d.to_rfc3339());

    for h in msg.headers().iter().take(MAX_HEADERS) {
        let name = h.name().to_ascii_lowercase();
        let start = (h.offset_start() as usize).min(raw.len());
        let end = (h.offset_end() as usize).min(raw.len()).max(start);
        let value = String::from_utf8_lossy(&raw[start..end]);
        let unfolded: String = value
            .split(['\r', '\n'])
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        inbound
            .headers
            .push((name, clip(&unfolded, MAX_HEADER_VALUE)));
    }
    if msg.headers().len() > MAX_HEADERS {
        inbound.warnings.push(format!(
            "{} header fields; only the first {MAX_HEADERS} were read",
            msg.headers().len()
        ));
    }

    if let Some(part) = msg.text_part(0) {
        inbound.text_from_html = part.is_text_html();
    }
    if let Some(t) = msg.body_text(0) {
        let t = t.replace("\r\n", "\n");
        if t.len() > MAX_TEXT {
            inbound
                .warnings
                .push(format!("text body of {} bytes cut to {MAX_TEXT}", t.len()));
        }
        inbound.text = clip(&t, MAX_TEXT);
    }
    for a in msg.attachments().take(1000) {
        inbound.attachments.push(Attachment {
            name: a.attachment_name().map(|n| clip(n, 255)),
            content_type: a
                .content_type()
                .map(|c| match c.subtype() {
                    Some(s) => format!("{}/{}", c.ctype(), s),
                    None => c.ctype().to_string(),
                })
                .unwrap_or_else(|| "application/octet-stream".into())
                .to_ascii_lowercase(),
            size: a.len(),
        });
    }
    inbound
}

/// True when the text is written in Japanese (kana, or kanji with Japanese punctuation).
pub fn looks_japanese(text: &str) -> bool {
    text.chars()
        .any(|c| matches!(c, '\u{3040}'..='\u{30ff}' | '\u{3000}'..='\u{303f}'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-03-02T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn reads_addresses_ids_and_text() {
        let raw = b"From: Ann Customer <ann@example.net>\r\nTo: support@vendor.test\r\nSubject: Disk failed\r\nMessage-ID: <abc@example.net>\r\nIn-Reply-To: <x1@vendor.test>\r\nReferences: <x0@vendor.test> <x1@vendor.test>\r\nDate: Mon, 2 Mar 2026 09:00:00 +0000\r\n\r\nMy disk failed.\r\n";
        let i = parse(raw, at());
        assert!(i.parsed);
        assert_eq!(i.from.as_ref().unwrap().address, "ann@example.net");
        assert_eq!(
            i.from.as_ref().unwrap().name.as_deref(),
            Some("Ann Customer")
        );
        assert_eq!(i.subject, "Disk failed");
        assert_eq!(i.message_id.as_deref(), Some("abc@example.net"));
        assert_eq!(i.in_reply_to, vec!["x1@vendor.test"]);
        assert_eq!(i.references, vec!["x0@vendor.test", "x1@vendor.test"]);
        assert_eq!(i.referenced_ids(), vec!["x1@vendor.test", "x0@vendor.test"]);
        assert_eq!(i.text.trim(), "My disk failed.");
        assert_eq!(
            i.arrival,
            at(),
            "arrival is INTERNALDATE, not the Date header"
        );
    }

    #[test]
    fn decodes_iso_2022_jp_subject_and_body() {
        // "障害" (failure) in ISO-2022-JP, as an encoded word and as a body.
        let raw = b"From: taro@example.jp\r\nSubject: =?ISO-2022-JP?B?GyRCPmMzMhsoQg==?=\r\nContent-Type: text/plain; charset=ISO-2022-JP\r\n\r\n\x1b$B>c32\x1b(B\r\n";
        let i = parse(raw, at());
        assert_eq!(i.subject, "障害");
        assert_eq!(i.text.trim(), "障害");
    }

    #[test]
    fn decodes_shift_jis_and_latin1_and_rfc2231() {
        let sjis = b"From: a@example.jp\r\nContent-Type: text/plain; charset=Shift_JIS\r\n\r\n\x8f\xe1\x8aQ\r\n";
        assert_eq!(parse(sjis, at()).text.trim(), "障害");
        let latin1 = b"From: a@example.es\r\nSubject: =?ISO-8859-1?Q?Petici=F3n?=\r\nContent-Type: text/plain; charset=ISO-8859-1\r\n\r\nEl tel\xe9fono no funciona\r\n";
        let i = parse(latin1, at());
        assert_eq!(i.subject, "Petición");
        assert_eq!(i.text.trim(), "El teléfono no funciona");
        let rfc2231 = b"From: a@example.es\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee file\r\n--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename*=UTF-8''factura%20ni%C3%B1o.pdf\r\n\r\nJVBERi0=\r\n--b--\r\n";
        let i = parse(rfc2231, at());
        assert_eq!(i.attachments.len(), 1);
        assert_eq!(i.attachments[0].name.as_deref(), Some("factura niño.pdf"));
        assert_eq!(i.attachments[0].content_type, "application/pdf");
    }

    #[test]
    fn html_only_mail_becomes_text() {
        let raw = b"From: a@example.com\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Hello <b>there</b></p><p>Serial: ABC12345</p>\r\n";
        let i = parse(raw, at());
        assert!(i.text_from_html);
        assert!(i.text.contains("Hello there"), "{}", i.text);
        assert!(!i.text.contains('<'));
    }

    #[test]
    fn garbage_and_empty_input_never_fail() {
        for raw in [
            &b""[..],
            b"\r\n",
            b"\x00\x01\x02",
            &[0xffu8; 300][..],
            b"no colon here at all",
        ] {
            let i = parse(raw, at());
            assert!(!i.parsed || i.from.is_none(), "{raw:?}");
        }
    }
}
