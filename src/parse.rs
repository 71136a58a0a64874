//! Raw message bytes to one [`Inbound`] value; parsing never fails, it records what it could not read.

use crate::reply_text::Mode;
use crate::text::clip;
use chrono::{DateTime, Utc};
use mail_parser::{Address, HeaderValue, MessageParser, MimeHeaders};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// How many header fields we keep for classification, and how long each may be.
const MAX_HEADERS: usize = 500;
pub const MAX_HEADER_VALUE: usize = 8 * 1024;
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
    /// An executable this attachment is or carries in a zip archive (the malware trick
    /// `invoice.pdf          .exe`), by its name.
    pub executable: Option<String>,
}

/// File name endings that run code when opened on a desktop.
const EXECUTABLE_ENDINGS: &[&str] = &[
    ".exe", ".scr", ".pif", ".com", ".bat", ".cmd", ".vbs", ".vbe", ".js", ".jse", ".wsf", ".wsh",
    ".hta", ".cpl", ".msi", ".jar", ".lnk",
];

/// An executable that hides what it is: a second extension before the real one
/// (`invoice.pdf.exe`) or a run of spaces pushing it out of sight (`a.htm      .pif`).
/// A plain `setup.exe` or `script.js` a customer attaches on purpose does not count.
fn is_executable_name(name: &str) -> bool {
    let n = name.trim().to_ascii_lowercase();
    let Some(ending) = EXECUTABLE_ENDINGS.iter().find(|e| n.ends_with(*e)) else {
        return false;
    };
    let stem = &n[..n.len() - ending.len()];
    stem.contains("   ")
        || stem.rsplit_once('.').is_some_and(|(_, ext)| {
            (2..=4).contains(&ext.trim().len())
                && ext.trim().chars().all(|c| c.is_ascii_alphanumeric())
        })
}

/// The executable an attachment is, or the first one named in a zip archive's local file
/// headers (read without unpacking; at most 64 entries).
fn executable_in(name: Option<&str>, bytes: &[u8]) -> Option<String> {
    if let Some(n) = name.filter(|n| is_executable_name(n)) {
        return Some(n.trim().to_string());
    }
    let mut at = 0;
    for _ in 0..64 {
        let rest = bytes.get(at..)?;
        let start = rest.windows(4).position(|w| w == b"PK\x03\x04")?;
        let header = rest.get(start..start + 30)?;
        let name_len = u16::from_le_bytes([header[26], header[27]]) as usize;
        let entry = rest.get(start + 30..start + 30 + name_len)?;
        let entry = String::from_utf8_lossy(entry);
        if is_executable_name(&entry) {
            return Some(entry.split_whitespace().collect::<Vec<_>>().join(" "));
        }
        at += start + 30 + name_len;
    }
    None
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
    /// What the person wrote now: `text` without quoted history and signature
    /// ([`crate::reply_text`]). The whole message stays in `text` and in the store.
    pub reply_text: String,
    /// `from` is not the From header's (it had no usable address) but the
    /// Sender, Reply-To or Return-Path a reply goes to.
    pub from_fallback: bool,
    /// How many mailboxes the From header names (a group counts one more
    /// than its members): a staff proof needs exactly one.
    pub from_mailboxes: usize,
    /// The Sender header's address, when there is one.
    pub sender_header: Option<String>,
    /// The HTML of an HTML-only mail (no plain part), kept for the reply
    /// reader: its structure (blockquote, hr, paragraphs) tells quotes and
    /// lines apart. None when `text` came from a plain part.
    #[serde(skip)]
    pub html: Option<String>,
    pub attachments: Vec<Attachment>,
    /// The first attached message (message/rfc822) that names a sender, whole,
    /// when it is at most [`MAX_ATTACHED_MESSAGE`] bytes: what a staff
    /// member's forward as an attachment carries (`forward`).
    #[serde(skip)]
    pub attached_message: Option<Vec<u8>>,
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

    /// The From header's address, and only it: `None` when `from` came from
    /// Sender, Reply-To or Return-Path (what staff authority is checked on).
    pub fn from_header_address(&self) -> Option<&str> {
        self.sender_address().filter(|_| !self.from_fallback)
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

    /// What the person wrote now, read in `mode` ([`crate::reply_text`]): from
    /// the HTML of an HTML-only mail, else from `text` (the plain part, which
    /// is preferred when a mail has both).
    pub fn new_text(&self, mode: Mode) -> String {
        match &self.html {
            Some(html) => crate::reply_text::extract_html_as(html, mode),
            None => crate::reply_text::extract_as(&self.text, mode),
        }
    }

    /// What a staff member's reply relays to the customer: the new text with
    /// sign-off and signature block, without the quoted notification, quotes
    /// and mobile footers ([`Mode::Staff`]). Command lines (`#close`, …) at
    /// its top stay as written, one a line.
    pub fn staff_text(&self) -> String {
        self.new_text(Mode::Staff)
    }
}

pub fn content_hash(raw: &[u8]) -> String {
    crate::text::hex(&Sha256::digest(raw))
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
                name: x.name().and_then(crate::text::display_name),
                address,
            })
        })
        .take(200)
        .collect()
}

/// An address mail can be sent to: a local part, an @ and a dotted domain.
fn usable(address: &str) -> bool {
    match address.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !address.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    }
}

/// Addresses of machines that never read their mail (no fallback to them).
fn never_reads(address: &str) -> bool {
    let local = address
        .split('@')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    [
        "mailer-daemon",
        "postmaster",
        "no-reply",
        "noreply",
        "do-not-reply",
        "donotreply",
        "bounce",
        "bounces",
    ]
    .iter()
    .any(|m| {
        local == *m || local.starts_with(&format!("{m}+")) || local.starts_with(&format!("{m}-"))
    })
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
        reply_text: String::new(),
        from_fallback: false,
        from_mailboxes: 0,
        sender_header: None,
        html: None,
        attachments: Vec::new(),
        attached_message: None,
        headers: Vec::new(),
        size: raw.len(),
        content_hash: content_hash(raw),
        warnings: Vec::new(),
    };
    if raw.iter().all(|b| b.is_ascii_whitespace()) {
        inbound.warnings.push("the message is empty".into());
        return inbound;
    }
    // Bare CR line ends (old Mac clients, broken gateways): read them as LF.
    let normalised;
    let raw = if crate::header_section::has_bare_cr(raw) {
        inbound
            .warnings
            .push("bare CR line ends were read as line ends".into());
        normalised = bare_cr_to_lf(raw);
        &normalised[..]
    } else {
        raw
    };
    // Blank lines before the header fields (some tools and archives write
    // them): the header starts at the first line with text.
    let raw = match leading_blank_lines(raw) {
        0 => raw,
        n => {
            inbound
                .warnings
                .push("blank lines before the header were skipped".into());
            &raw[n..]
        }
    };
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
    read_from(&msg, &mut inbound);
    read_identity(&msg, &mut inbound);
    read_headers(&msg, raw, &mut inbound);
    read_text(&msg, &mut inbound);
    inbound.reply_text = inbound.new_text(Mode::Customer);
    read_attachments(&msg, &mut inbound);
    inbound
}

/// How many bytes of blank lines (only spaces, tabs and CR before their LF)
/// open `raw`.
fn leading_blank_lines(raw: &[u8]) -> usize {
    let mut start = 0;
    while let Some(eol) = raw[start..].iter().position(|b| *b == b'\n') {
        if !raw[start..start + eol]
            .iter()
            .all(|b| matches!(b, b' ' | b'\t' | b'\r'))
        {
            break;
        }
        start += eol + 1;
    }
    start
}

/// The From address, or the Sender, Reply-To or Return-Path a reply goes
/// to when it has none; how many mailboxes the From names, and the Sender.
fn read_from(msg: &mail_parser::Message<'_>, inbound: &mut Inbound) {
    inbound.from = addrs(msg.from()).into_iter().find(|a| usable(&a.address));
    if inbound.from.is_none()
        && let Some(a) = from_in_encoded_words(msg)
    {
        inbound
            .warnings
            .push("the From header encoded its address too: read once decoded".into());
        inbound.from = Some(a);
    }
    inbound.from_mailboxes = match msg.from() {
        Some(Address::List(list)) => list.len(),
        Some(Address::Group(groups)) => groups.iter().map(|g| g.addresses.len() + 1).sum(),
        None => 0,
    };
    inbound.sender_header = addrs(msg.sender()).into_iter().next().map(|a| a.address);
    if inbound.from.is_none() {
        // A person's mail whose From is missing or broken is answered where
        // its Sender, Reply-To or Return-Path says, when one is a person's.
        let return_path = match msg.return_path() {
            HeaderValue::Text(t) => vec![Addr {
                name: None,
                address: t.trim().trim_matches(['<', '>']).to_string(),
            }],
            _ => Vec::new(),
        };
        let fallback = [
            ("Sender", addrs(msg.sender())),
            ("Reply-To", addrs(msg.reply_to())),
            ("Return-Path", return_path),
        ]
        .into_iter()
        .find_map(|(field, list)| {
            list.into_iter()
                .find(|a| usable(&a.address) && !never_reads(&a.address))
                .map(|a| (field, a))
        });
        match fallback {
            Some((field, a)) => {
                inbound.warnings.push(format!(
                    "no usable From address: answered at the {field} address {}",
                    a.address
                ));
                inbound.from = Some(a);
                inbound.from_fallback = true;
            }
            None => inbound.warnings.push("no usable From address".into()),
        }
    }
}

/// The From address of a header that encoded the whole of itself, address
/// included, in encoded words (which RFC 2047 forbids and some senders do),
/// in any charset encoding_rs or mail-parser knows: decoded first, then
/// read as an address.
fn from_in_encoded_words(msg: &mail_parser::Message<'_>) -> Option<Addr> {
    let raw = msg.header_raw("From")?;
    if !raw.contains("=?") {
        return None;
    }
    let decoded = decode_encoded_words(raw);
    let header = format!("From: {}\r\n\r\n", decoded.replace(['\r', '\n'], " "));
    let reread = MessageParser::default().parse(header.as_bytes())?;
    addrs(reread.from())
        .into_iter()
        .find(|a| usable(&a.address))
}

/// `bytes` in the charset `label` names: encoding_rs's labels first (every
/// WHATWG encoding: GB18030, Big5, EUC-KR, KOI8-R, the windows-125x...),
/// then mail-parser's (UTF-7, the ISO-2022-JP variants), else as UTF-8.
fn decode_charset(label: &str, bytes: &[u8]) -> String {
    let label = label.split('*').next().unwrap_or(label).trim();
    if let Some(enc) = encoding_rs::Encoding::for_label(label.as_bytes()) {
        return enc.decode_without_bom_handling(bytes).0.into_owned();
    }
    match mail_parser::decoders::charsets::map::charset_decoder(label.as_bytes()) {
        Some(d) => d(bytes),
        None => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// Every RFC 2047 encoded word of a header value decoded, wherever it
/// stands; white space between two encoded words dropped.
fn decode_encoded_words(raw: &str) -> String {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(r"=\?([^?\s]{1,40})\?([BbQq])\?([^?\s]*)\?=").expect("a valid pattern")
    });
    let mut out = String::new();
    let mut last = 0;
    let mut after_word = false;
    for c in re.captures_iter(raw).take(200) {
        let whole = c.get(0).expect("the whole match");
        let between = &raw[last..whole.start()];
        if !(after_word && between.trim().is_empty()) {
            out.push_str(between);
        }
        let mut bytes = Vec::new();
        if c[2].eq_ignore_ascii_case("b") {
            Base64Run::default().feed(&c[3], &mut bytes);
        } else {
            q_decode(&c[3], &mut bytes);
        }
        out.push_str(&decode_charset(&c[1], &bytes));
        last = whole.end();
        after_word = true;
    }
    out.push_str(&raw[last..]);
    out
}

/// Who else it is addressed to, its subject and the ids that thread it.
fn read_identity(msg: &mail_parser::Message<'_>, inbound: &mut Inbound) {
    inbound.reply_to = addrs(msg.reply_to()).into_iter().next();
    inbound.to = addrs(msg.to());
    inbound.cc = addrs(msg.cc());
    inbound.subject = clip(msg.subject().unwrap_or("").trim(), 2000).to_string();
    if let Some(raw_subject) = msg.header_raw("Subject")
        && let Some(joined) = decode_split_encoded_words(raw_subject)
    {
        // Encoded words cut inside a multibyte character: decoded together.
        inbound.subject = clip(joined.trim(), 2000).to_string();
    }
    if let Some(s) = redecode_iso2022jp(&inbound.subject) {
        inbound.subject = clip(s.trim(), 2000).to_string();
    }
    inbound.message_id = msg
        .message_id()
        .map(|s| s.trim().trim_matches(['<', '>']).to_string())
        .filter(|s| !s.is_empty() && s.len() <= 998);
    inbound.in_reply_to = id_list(msg.in_reply_to());
    inbound.references = id_list(msg.references());
    inbound.date_header = msg.date().map(|d| d.to_rfc3339());
}

/// The header fields, names lower-cased and values unfolded, for the
/// classifier and the proof checks.
fn read_headers(msg: &mail_parser::Message<'_>, raw: &[u8], inbound: &mut Inbound) {
    for h in msg.headers().iter().take(MAX_HEADERS) {
        let name = h.name().to_ascii_lowercase();
        let start = (h.offset_start() as usize).min(raw.len());
        let end = (h.offset_end() as usize).min(raw.len()).max(start);
        let mut value = crate::header_section::unfold(&String::from_utf8_lossy(&raw[start..end]));
        value.truncate(clip(&value, MAX_HEADER_VALUE).len());
        inbound.headers.push((name, value));
    }
    if msg.headers().len() > MAX_HEADERS {
        inbound.warnings.push(format!(
            "{} header fields; only the first {MAX_HEADERS} were read",
            msg.headers().len()
        ));
    }
}

/// The text: the first text part (HTML made text when there is no plain
/// one), cut to a sane length, format=flowed joined, mis-labelled
/// ISO-2022-JP read again.
fn read_text(msg: &mail_parser::Message<'_>, inbound: &mut Inbound) {
    // RFC 3676: a plain part sent format=flowed (Thunderbird, Apple Mail) is
    // read with its soft line breaks joined, so a wrapped paragraph or a long
    // command line is one line again.
    let mut flowed = None;
    if let Some(part) = msg.text_part(0) {
        inbound.text_from_html = part.is_text_html();
        if let Some(ct) = part.content_type().filter(|_| !inbound.text_from_html)
            && ct
                .attribute("format")
                .is_some_and(|f| f.eq_ignore_ascii_case("flowed"))
        {
            flowed = Some(
                ct.attribute("delsp")
                    .is_some_and(|d| d.eq_ignore_ascii_case("yes")),
            );
        }
    }
    if let Some(t) = msg.body_text(0) {
        let t = t.replace("\r\n", "\n");
        if t.len() > MAX_TEXT {
            inbound
                .warnings
                .push(format!("text body of {} bytes cut to {MAX_TEXT}", t.len()));
        }
        inbound.text = clip(&t, MAX_TEXT).to_string();
    }
    if let Some(t) = redecode_iso2022jp(&inbound.text) {
        inbound.warnings.push(
            "ISO-2022-JP text without a charset it could be read by (none, or CP50220/ISO-2022-JP-MS) was read as ISO-2022-JP".into(),
        );
        inbound.text = clip(&t, MAX_TEXT).to_string();
    }
    if let Some(delsp) = flowed {
        inbound.text = unflow(&inbound.text, delsp);
    }
    // An HTML-only mail: its structure (blockquote, hr) tells quotes apart. Only then is
    // the HTML asked for: for a plain-text mail mail-parser would build it from the text.
    if inbound.text_from_html {
        inbound.html = msg
            .body_html(0)
            .map(|h| clip(&h, crate::reply_text::MAX_INPUT).to_string());
    }
}

/// The largest attached message kept whole (`Inbound::attached_message`).
pub const MAX_ATTACHED_MESSAGE: usize = 4 * 1024 * 1024;

/// The attachments, with any disguised executable they are or carry.
fn read_attachments(msg: &mail_parser::Message<'_>, inbound: &mut Inbound) {
    for a in msg.attachments().take(1000) {
        if inbound.attached_message.is_none()
            && a.contents().len() <= MAX_ATTACHED_MESSAGE
            && a.message()
                .and_then(|m| m.from())
                .and_then(|f| f.first())
                .and_then(|f| f.address())
                .is_some()
        {
            inbound.attached_message = Some(a.contents().to_vec());
        }
        inbound.attachments.push(Attachment {
            name: a.attachment_name().map(|n| clip(n, 255).to_string()),
            content_type: part_type(a),
            size: a.len(),
            executable: executable_in(a.attachment_name(), a.contents()),
        });
    }
}

/// A part's content type, lower-cased (`application/octet-stream` when it has none).
fn part_type(a: &mail_parser::MessagePart<'_>) -> String {
    a.content_type()
        .map(|c| match c.subtype() {
            Some(s) => format!("{}/{}", c.ctype(), s),
            None => c.ctype().to_string(),
        })
        .unwrap_or_else(|| "application/octet-stream".into())
        .to_ascii_lowercase()
}

/// The files attached to `raw`, decoded, for mail that passes them on (a
/// relayed staff answer). Inline images of an HTML body without a file name
/// are not files the sender attached, and are left out.
pub fn attachment_files(raw: &[u8]) -> Vec<crate::model::OutAttachment> {
    let raw = &raw[leading_blank_lines(raw)..];
    let Some(msg) = MessageParser::default().parse(raw) else {
        return vec![];
    };
    msg.attachments()
        .take(100)
        .filter_map(|a| {
            let name = a.attachment_name()?;
            Some(crate::model::OutAttachment {
                name: clip(name, 255).to_string(),
                content_type: part_type(a),
                bytes: a.contents().to_vec(),
            })
        })
        .collect()
}

fn bare_cr_to_lf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    for (i, b) in raw.iter().enumerate() {
        if *b == b'\r' && raw.get(i + 1) != Some(&b'\n') {
            out.push(b'\n');
        } else {
            out.push(*b);
        }
    }
    out
}

/// ISO-2022-JP read under no charset label or one mail-parser does not know
/// (Microsoft's CP50220/CP50221/ISO-2022-JP-MS): the text is 7-bit, so its
/// escape sequences are still there, and it can be decoded now. Half-width
/// katakana (`ESC ( I`) is decoded too.
fn redecode_iso2022jp(text: &str) -> Option<String> {
    const ESCAPES: [&str; 5] = ["\x1b$B", "\x1b$@", "\x1b(J", "\x1b(I", "\x1b$(D"];
    if !ESCAPES.iter().any(|e| text.contains(e)) {
        return None;
    }
    let decode = mail_parser::decoders::charsets::map::charset_decoder(b"iso-2022-jp")?;
    Some(decode(text.as_bytes()))
}

/// Decodes a header value whose adjacent RFC 2047 encoded words share a
/// charset, joining their bytes before the charset is applied, so a character
/// split across two words (which many clients do) comes out whole. `None`
/// when there is no such run, and mail-parser's reading stands.
fn decode_split_encoded_words(raw: &str) -> Option<String> {
    struct Word<'a> {
        start: usize,
        end: usize,
        charset: &'a str,
        b64: bool,
        text: &'a str,
    }
    let mut words: Vec<Word<'_>> = Vec::new();
    let mut pos = 0;
    while let Some(p) = raw[pos..].find("=?") {
        let start = pos + p;
        let rest = &raw[start + 2..];
        let parsed = (|| {
            let q1 = rest.find('?')?;
            let charset = &rest[..q1];
            let enc = rest.get(q1 + 1..q1 + 2)?;
            if rest.get(q1 + 2..q1 + 3)? != "?" {
                return None;
            }
            let body = &rest[q1 + 3..];
            let close = body.find("?=")?;
            Some((charset, enc, &body[..close], start + 2 + q1 + 3 + close + 2))
        })();
        match parsed {
            Some((charset, enc, text, end))
                if charset.len() < 40 && matches!(enc, "B" | "b" | "Q" | "q") =>
            {
                words.push(Word {
                    start,
                    end,
                    charset: charset.split('*').next().unwrap_or(charset),
                    b64: matches!(enc, "B" | "b"),
                    text,
                });
                pos = end;
            }
            _ => pos = start + 2,
        }
        if words.len() > 500 {
            break;
        }
    }
    let adjacent = |a: &Word<'_>, b: &Word<'_>| {
        raw[a.end..b.start].trim().is_empty() && a.charset.eq_ignore_ascii_case(b.charset)
    };
    if !words.windows(2).any(|w| adjacent(&w[0], &w[1])) {
        return None;
    }
    let mut out = String::new();
    let mut last = 0;
    let mut i = 0;
    while i < words.len() {
        out.push_str(raw[last..words[i].start].trim_matches(|c: char| c == '\r' || c == '\n'));
        let mut bytes = Vec::new();
        let mut b64 = Base64Run::default();
        let mut j = i;
        loop {
            let w = &words[j];
            if w.b64 {
                b64.feed(w.text, &mut bytes);
            } else {
                q_decode(w.text, &mut bytes);
            }
            if j + 1 < words.len() && adjacent(w, &words[j + 1]) {
                j += 1;
            } else {
                break;
            }
        }
        out.push_str(&decode_charset(words[i].charset, &bytes));
        last = words[j].end;
        i = j + 1;
    }
    out.push_str(&raw[last..]);
    let unfolded: Vec<&str> = out.split(['\r', '\n']).map(str::trim).collect();
    Some(unfolded.join(" "))
}

/// Base64 across encoded words: bits left over at the end of one unpadded word
/// carry into the next.
#[derive(Default)]
struct Base64Run {
    acc: u32,
    bits: u32,
}

impl Base64Run {
    fn feed(&mut self, text: &str, out: &mut Vec<u8>) {
        for c in text.bytes() {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                b'=' => {
                    // Padding ends a quantum: leftover bits are not data.
                    self.acc = 0;
                    self.bits = 0;
                    continue;
                }
                _ => continue,
            };
            self.acc = (self.acc << 6) | u32::from(v);
            self.bits += 6;
            if self.bits >= 8 {
                self.bits -= 8;
                out.push((self.acc >> self.bits) as u8);
                self.acc &= (1 << self.bits) - 1;
            }
        }
    }
}

fn q_decode(text: &str, out: &mut Vec<u8>) {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'_' => out.push(b' '),
            b'=' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'='),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
}

/// The text of a format=flowed part (RFC 3676) with its soft line breaks
/// joined: a line ending in a space goes on in the next line of the same quote
/// depth (the space removed too under `delsp=yes`); space-stuffing is undone;
/// the signature delimiter `-- ` is never flowed.
fn unflow(text: &str, delsp: bool) -> String {
    let mut out = String::with_capacity(text.len());
    // The quote depth of the paragraph being joined, while one is open.
    let mut open: Option<usize> = None;
    for line in text.split('\n') {
        let depth = line.bytes().take_while(|b| *b == b'>').count();
        let rest = &line[depth..];
        let rest = rest.strip_prefix(' ').unwrap_or(rest);
        let soft = rest.ends_with(' ') && rest != "-- ";
        match open {
            Some(d) if d == depth => {}
            Some(_) => {
                out.push('\n');
                open = None;
            }
            None => {}
        }
        if open.is_none() && depth > 0 {
            out.push_str(&">".repeat(depth));
            if !rest.is_empty() {
                out.push(' ');
            }
        }
        let piece = if soft && delsp {
            &rest[..rest.len() - 1]
        } else {
            rest
        };
        out.push_str(piece);
        if soft {
            open = Some(depth);
        } else {
            out.push('\n');
            open = None;
        }
    }
    // The split gave one line more than there were line ends.
    if open.is_none() {
        out.pop();
    }
    out
}

/// True when the text is written in Japanese (kana, or kanji with Japanese punctuation).
pub fn looks_japanese(text: &str) -> bool {
    text.chars()
        .any(|c| matches!(c, '\u{3040}'..='\u{30ff}' | '\u{3000}'..='\u{303f}'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mail_without_a_usable_from_is_answered_at_its_sender_reply_to_or_return_path() {
        let at = chrono::DateTime::UNIX_EPOCH;
        let m = parse(b"From: undisclosed-recipients:;\r\nSender: ann@example.net\r\nSubject: x\r\n\r\nHelp\r\n", at);
        assert_eq!(
            m.from.as_ref().map(|a| a.address.as_str()),
            Some("ann@example.net")
        );
        assert!(
            m.warnings.iter().any(|w| w.contains("the Sender address")),
            "{:?}",
            m.warnings
        );
        let m = parse(
            b"From: Ann\r\nReply-To: Ann <ann@example.net>\r\nSubject: x\r\n\r\nHelp\r\n",
            at,
        );
        assert_eq!(
            m.from.as_ref().map(|a| a.address.as_str()),
            Some("ann@example.net")
        );
        let m = parse(
            b"Return-Path: <bob@example.org>\r\nSubject: x\r\n\r\nHelp\r\n",
            at,
        );
        assert_eq!(
            m.from.as_ref().map(|a| a.address.as_str()),
            Some("bob@example.org")
        );
        // Never to a machine, never to a null path.
        let m = parse(
            b"Return-Path: <MAILER-DAEMON@mx.example.org>\r\nSubject: x\r\n\r\nHelp\r\n",
            at,
        );
        assert!(m.from.is_none());
        let m = parse(b"Return-Path: <>\r\nSubject: x\r\n\r\nHelp\r\n", at);
        assert!(m.from.is_none());
        // A usable From wins.
        let m = parse(
            b"From: carl@example.com\r\nSender: list@example.com\r\nSubject: x\r\n\r\nHi\r\n",
            at,
        );
        assert_eq!(
            m.from.as_ref().map(|a| a.address.as_str()),
            Some("carl@example.com")
        );
    }

    #[test]
    fn only_disguised_executables_count() {
        assert!(is_executable_name("account-password.htm          .pif"));
        assert!(is_executable_name("Invoice.PDF.exe"));
        assert!(!is_executable_name("setup.exe"));
        assert!(!is_executable_name("collect-logs.js"));
        assert!(!is_executable_name("report.pdf"));
        // A zip whose first entry hides an executable.
        let mut zip = b"PK\x03\x04".to_vec();
        zip.extend_from_slice(&[0u8; 22]);
        let name = b"doc.htm     .scr";
        zip.extend_from_slice(&(name.len() as u16).to_le_bytes());
        zip.extend_from_slice(&[0, 0]);
        zip.extend_from_slice(name);
        assert_eq!(
            executable_in(Some("doc.zip"), &zip).as_deref(),
            Some("doc.htm .scr")
        );
        assert_eq!(executable_in(Some("doc.zip"), b"PK\x03\x04 short"), None);
    }

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
    fn format_flowed_soft_breaks_are_joined() {
        assert_eq!(
            unflow("a long \nline\nfixed\n", false),
            "a long line\nfixed\n"
        );
        // delsp=yes: the space before the break goes too (Japanese).
        assert_eq!(unflow("日本語 \nの文\n", true), "日本語の文\n");
        // Space-stuffing is undone; the signature delimiter is never flowed.
        assert_eq!(
            unflow(" From here\n-- \nAnn\n", false),
            "From here\n-- \nAnn\n"
        );
        // Quotes join only at the same depth.
        assert_eq!(
            unflow(">> deep \n>> on\n> flat \nown\n", false),
            ">> deep on\n> flat \nown\n"
        );
        let raw = b"From: a@example.com\r\nContent-Type: text/plain; charset=utf-8; format=flowed\r\n\r\n#note a note that the client \r\nwrapped\r\n\r\nHello\r\n";
        let i = parse(raw, at());
        assert_eq!(
            i.staff_text(),
            "#note a note that the client wrapped\n\nHello"
        );
        // Without format=flowed a trailing space is no soft break.
        let raw = b"From: a@example.com\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nline one \r\nline two\r\n";
        assert_eq!(parse(raw, at()).text, "line one \nline two\n");
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

    // Hostile and broken input (issue 4, item 5): each case gives a clear outcome, none panics.

    #[test]
    fn iso_2022_jp_without_a_charset_and_its_microsoft_variant_are_read() {
        let bare = b"From: a@example.jp\r\nSubject: \x1b$B>c32\x1b(B\r\nContent-Type: text/plain\r\n\r\n\x1b$B>c32\x1b(B\r\n";
        let i = parse(bare, at());
        assert_eq!(i.text.trim(), "障害");
        assert_eq!(i.subject, "障害");
        assert!(
            i.warnings.iter().any(|w| w.contains("ISO-2022-JP")),
            "{:?}",
            i.warnings
        );
        let no_type = b"From: a@example.jp\r\n\r\n\x1b$B>c32\x1b(B\r\n";
        assert_eq!(parse(no_type, at()).text.trim(), "障害");
        // CP50220 / ISO-2022-JP-MS: half-width katakana by ESC ( I.
        for label in ["CP50220", "ISO-2022-JP-MS", "x-cp50221"] {
            let raw = format!(
                "From: a@example.jp\r\nContent-Type: text/plain; charset={label}\r\n\r\n\x1b$B>c32\x1b(B \x1b(I12\x1b(B\r\n"
            );
            assert_eq!(
                parse(raw.as_bytes(), at()).text.trim(),
                "障害 ｱｲ",
                "{label}"
            );
        }
    }

    #[test]
    fn encoded_words_split_inside_a_character_are_joined() {
        // "あい" in UTF-8 base64, cut in the middle of "い".
        let b = b"From: a@example.jp\r\nSubject: =?UTF-8?B?44GC44?= =?UTF-8?B?GE?=\r\n\r\nx\r\n";
        assert_eq!(parse(b, at()).subject, "あい");
        let q = b"From: a@example.jp\r\nSubject: =?UTF-8?Q?=E3=81?=\r\n =?UTF-8?Q?=82?= ok\r\n\r\nx\r\n";
        assert_eq!(parse(q, at()).subject, "あ ok");
        // "障害" in ISO-2022-JP cut between the two characters' words.
        let jis = b"From: a@example.jp\r\nSubject: =?ISO-2022-JP?B?GyRCPmM=?= =?ISO-2022-JP?B?MzIbKEI=?=\r\n\r\nx\r\n";
        assert_eq!(parse(jis, at()).subject, "障害");
        // Whole words in different charsets are left to mail-parser.
        let mixed = b"From: a@example.es\r\nSubject: =?ISO-8859-1?Q?Petici=F3n?= =?UTF-8?Q?_ni=C3=B1o?=\r\n\r\nx\r\n";
        assert_eq!(parse(mixed, at()).subject, "Petición niño");
    }

    #[test]
    fn a_100_kb_header_line_is_cut_not_fatal() {
        let raw = format!(
            "From: a@example.com\r\nSubject: {}\r\nX-Long: {}\r\n\r\nbody\r\n",
            "s".repeat(100 * 1024),
            "x".repeat(100 * 1024)
        );
        let i = parse(raw.as_bytes(), at());
        assert!(i.parsed);
        assert_eq!(i.subject.len(), 2000);
        assert!(i.header("x-long").unwrap().len() <= MAX_HEADER_VALUE);
        assert_eq!(i.text.trim(), "body");
    }

    #[test]
    fn a_thousand_nested_multiparts_parse_on_a_small_stack() {
        let mut raw = String::from("From: a@example.com\r\nSubject: deep\r\n");
        for d in 0..1000 {
            raw.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=\"b{d}\"\r\n\r\n--b{d}\r\n"
            ));
        }
        raw.push_str("Content-Type: text/plain\r\n\r\ninnermost\r\n");
        for d in (0..1000).rev() {
            raw.push_str(&format!("--b{d}--\r\n"));
        }
        // A thread with a small stack: recursion per level would overflow it.
        let i = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || parse(raw.as_bytes(), at()))
            .unwrap()
            .join()
            .expect("no stack overflow");
        assert!(i.parsed);
        assert_eq!(i.subject, "deep");
    }

    #[test]
    fn bare_cr_and_bare_lf_line_ends_are_read() {
        for raw in [
            &b"From: a@example.com\rSubject: hi\r\rbody\r"[..],
            b"From: a@example.com\nSubject: hi\n\nbody\n",
            b"From: a@example.com\r\nSubject: hi\n\rbody\r\n",
        ] {
            let i = parse(raw, at());
            assert_eq!(i.sender_address(), Some("a@example.com"), "{raw:?}");
            assert_eq!(i.subject, "hi", "{raw:?}");
            assert_eq!(i.text.trim(), "body", "{raw:?}");
        }
        // The hash is of the bytes as they came, not as they were read.
        let raw = b"From: a@example.com\rSubject: hi\r\rbody\r";
        assert_eq!(parse(raw, at()).content_hash, content_hash(raw));
    }

    #[test]
    fn issue_23_blank_lines_before_the_header_are_skipped() {
        for raw in [
            &b"\n\nFrom: a@example.com\nSubject: hi\n\nbody\n"[..],
            b"\r\n\r\nFrom: a@example.com\r\nSubject: hi\r\n\r\nbody\r\n",
            b" \t\r\n\nFrom: a@example.com\nSubject: hi\n\nbody\n",
        ] {
            let i = parse(raw, at());
            assert!(i.parsed, "{raw:?}");
            assert_eq!(i.sender_address(), Some("a@example.com"), "{raw:?}");
            assert_eq!(i.subject, "hi", "{raw:?}");
            assert_eq!(i.reply_text, "body", "{raw:?}");
            assert!(i.warnings.iter().any(|w| w.contains("blank lines")));
            // The hash is of the bytes as they came.
            assert_eq!(i.content_hash, content_hash(raw));
        }
        // Only blank lines: still an empty message.
        assert!(!parse(b"\n\r\n\n", at()).parsed);
    }

    #[test]
    fn zero_bytes_is_an_empty_unparsed_message() {
        let i = parse(b"", at());
        assert!(!i.parsed);
        assert_eq!(i.warnings, vec!["the message is empty".to_string()]);
        assert_eq!(i.reply_text, "");
    }

    #[test]
    fn a_30_mb_message_is_read_with_its_text_cut() {
        let mut raw =
            b"From: a@example.com\r\nSubject: big\r\nContent-Type: text/plain\r\n\r\n".to_vec();
        let line =
            b"0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789\r\n";
        while raw.len() < 30 * 1024 * 1024 {
            raw.extend_from_slice(line);
        }
        let i = parse(&raw, at());
        assert!(i.parsed);
        assert_eq!(i.size, raw.len());
        assert!(i.text.len() <= MAX_TEXT);
        assert!(
            i.warnings.iter().any(|w| w.contains("cut to")),
            "{:?}",
            i.warnings
        );
        assert!(!i.reply_text.is_empty());
    }

    fn nested_html(bytes: usize) -> Vec<u8> {
        let mut raw =
            b"From: a@example.com\r\nContent-Type: text/html; charset=utf-8\r\n\r\n".to_vec();
        let unit = b"<div><span class=\"a\"><b><blockquote>x &amp; y ";
        while raw.len() < bytes {
            raw.extend_from_slice(unit);
        }
        raw
    }

    #[test]
    fn html_to_text_is_linear_in_the_input() {
        // mail-parser's html_to_text and reply_text::html_to_lines are single passes.
        let five = nested_html(5 * 1024 * 1024);
        let t0 = std::time::Instant::now();
        let i = parse(&five, at());
        let took = t0.elapsed();
        assert!(i.text_from_html && i.text.contains("x & y"));
        assert!(
            took < std::time::Duration::from_secs(5),
            "5 MB of nested tags took {took:?}"
        );
        let mut times = Vec::new();
        for mb in [1, 4] {
            let raw = nested_html(mb * 1024 * 1024);
            let t0 = std::time::Instant::now();
            let i = parse(&raw, at());
            times.push(t0.elapsed());
            assert!(i.parsed);
        }
        println!(
            "nested HTML: 5 MB in {took:?}; 1 MB in {:?}, 4 MB in {:?} (ratio {:.1})",
            times[0],
            times[1],
            times[1].as_secs_f64() / times[0].as_secs_f64().max(1e-9)
        );
    }

    #[test]
    fn issue_23_item_7_a_from_encoded_whole_in_any_charset_encoding_rs_knows_is_read() {
        let at = chrono::DateTime::UNIX_EPOCH;
        for (label, name, address) in [
            ("GB18030", "王小明", "wang@example.cn"),
            ("Big5", "陳大文", "chan@example.tw"),
            ("EUC-KR", "김민수", "kim@example.kr"),
            ("Shift_JIS", "山田太郎", "yamada@example.jp"),
            ("windows-1251", "Иван", "ivan@example.ru"),
            ("KOI8-U", "Олена", "olena@example.ua"),
            ("ISO-8859-7", "Νίκος", "nikos@example.gr"),
            ("windows-874", "สมชาย", "somchai@example.th"),
        ] {
            let enc = encoding_rs::Encoding::for_label(label.as_bytes()).unwrap();
            let whole = format!("{name} <{address}>");
            let (bytes, _, _) = enc.encode(&whole);
            let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &bytes);
            let raw = format!("From: =?{label}?B?{b64}?=\r\nSubject: x\r\n\r\nhello\r\n");
            let m = parse(raw.as_bytes(), at);
            let from = m
                .from
                .as_ref()
                .unwrap_or_else(|| panic!("{label}: {:?}", m.warnings));
            assert_eq!(
                (from.address.as_str(), from.name.as_deref()),
                (address, Some(name)),
                "{label}"
            );
            assert!(!m.from_fallback, "{label}");
        }
        // A name in an encoded word with the address outside reads as before.
        let m = parse(
            b"From: =?KOI8-R?B?6dfBzg==?= <ivan@example.ru>\r\nSubject: x\r\n\r\nhi\r\n",
            at,
        );
        assert_eq!(m.sender_address(), Some("ivan@example.ru"));
    }
}
