//! A customer's mail that a staff member forwards: found attached (message/rfc822) or inline as Outlook, Gmail, Thunderbird, Apple Mail and mutt write it, with the member's own text above it. Pure; never fails: a mail it cannot read as a forward is none.
//!
//! An inline forward is a marker line (`---------- Forwarded message
//! ---------`, `-------- Forwarded Message --------`, `Begin forwarded
//! message:`, `----- Forwarded message from ... -----`, `-----Original
//! Message-----`, a line of underscores) or none (Outlook's bare `From:` and
//! `Sent:`), then a block of header lines (`From:`, `Date:` or `Sent:`,
//! `Subject:`, `To:`, `Cc:`, `Message-ID:`, each maybe `> `-quoted or with a
//! tab after the colon), then the forwarded text up to mutt's `----- End
//! forwarded message -----` or the end. The customer's mail is then
//! written back as a plain mail (`From`, `Subject`, `Date`, `Message-ID`
//! when the forward carries it) so that it is read as every mail is read.

use crate::parse::Inbound;
use crate::text::one_line;

/// A forwarded mail found in a member's mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The customer's mail: the attached message whole, or an inline
    /// forward written back as a plain mail.
    pub raw: Vec<u8>,
    /// The member's own text above the forward (commands first, then their note).
    pub note: String,
    /// How it was forwarded: `attached`, `outlook`, `gmail`, `thunderbird`, `apple_mail`, `mutt`.
    pub format: &'static str,
}

/// The marker lines that open an inline forward, and which client writes each.
const MARKERS: &[(&str, &str)] = &[
    ("---------- forwarded message ---------", "gmail"),
    ("-------- forwarded message --------", "thunderbird"),
    ("-------- original message --------", "thunderbird"),
    ("begin forwarded message:", "apple_mail"),
    ("-----original message-----", "outlook"),
];

/// The mail `inbound` forwards, if it forwards one: an attached message,
/// else an inline forward of its text. A member's text that forwards a mail
/// inline forwards that one: a message attached beside it came with the
/// forwarded mail (its sender attached it) unless it is from the same sender.
pub fn find(inbound: &Inbound) -> Option<Found> {
    let sender = |f: &Found| {
        crate::parse::parse(&f.raw, inbound.arrival)
            .from
            .map(|a| a.address.to_ascii_lowercase())
    };
    match (attached(inbound), inline(&inbound.text)) {
        (Some(a), Some(i)) if sender(&a) != sender(&i) => Some(i),
        (a, i) => a.or(i),
    }
}

/// An attached message/rfc822 that has a From: the member's text is the body.
fn attached(inbound: &Inbound) -> Option<Found> {
    Some(Found {
        raw: inbound.attached_message.clone()?,
        note: own_text(&inbound.text),
        format: "attached",
    })
}

/// The member's text without its signature (below `-- `).
fn own_text(text: &str) -> String {
    let text = text.replace("\r\n", "\n");
    let cut = text
        .lines()
        .position(|l| l == "-- " || l == "--")
        .map(|n| text.lines().take(n).collect::<Vec<_>>().join("\n"))
        .unwrap_or(text);
    cut.trim().to_string()
}

/// A header line of a forward's block: its lower-cased name and value.
fn header_line(line: &str) -> Option<(String, String)> {
    let line = line.trim_start_matches('>').trim();
    let line = line.trim_start_matches(['*', '_']);
    let (name, value) = line.split_once(':')?;
    let name = name
        .trim_end_matches(['*', '_'])
        .trim()
        .to_ascii_lowercase();
    let known = [
        "from",
        "sent",
        "date",
        "subject",
        "to",
        "cc",
        "reply-to",
        "message-id",
    ];
    known.contains(&name.as_str()).then(|| {
        (
            name,
            value.trim_start_matches(['*', '_']).trim().to_string(),
        )
    })
}

/// Where an inline forward starts: the index of its first line after any
/// marker, and which client wrote it.
fn start(lines: &[&str]) -> Option<(usize, usize, &'static str)> {
    for (n, line) in lines.iter().enumerate() {
        let l = line.trim().to_ascii_lowercase();
        if let Some((_, client)) = MARKERS.iter().find(|(m, _)| l == *m) {
            return Some((n, n + 1, client));
        }
        if l.starts_with("----- forwarded message from ") && l.ends_with("-----") {
            return Some((n, n + 1, "mutt"));
        }
        // Outlook on the web: a rule of underscores above the block.
        if l.len() >= 20 && l.chars().all(|c| c == '_') {
            return Some((n, n + 1, "outlook"));
        }
        // Outlook: a bare block whose From is followed by Sent.
        if header_line(line).is_some_and(|(h, _)| h == "from")
            && lines[n + 1..]
                .iter()
                .take(4)
                .any(|l| header_line(l).is_some_and(|(h, _)| h == "sent"))
        {
            return Some((n, n, "outlook"));
        }
    }
    None
}

/// An inline forward of `text`, written back as a mail.
fn inline(text: &str) -> Option<Found> {
    let text = text.replace("\r\n", "\n");
    let lines: Vec<&str> = text.lines().collect();
    let (marker, mut n, format) = start(&lines)?;
    while n < lines.len() && lines[n].trim_start_matches('>').trim().is_empty() {
        n += 1;
    }
    let mut fields: Vec<(String, String)> = Vec::new();
    while n < lines.len() {
        match header_line(lines[n]) {
            Some(f) => fields.push(f),
            // A long value wrapped onto the next line (Outlook's To and Cc).
            None if !fields.is_empty()
                && !lines[n].trim().is_empty()
                && lines[n].starts_with([' ', '\t']) =>
            {
                if let Some(last) = fields.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(lines[n].trim());
                }
            }
            None => break,
        }
        n += 1;
    }
    let field = |name: &str| {
        fields
            .iter()
            .find(|(h, _)| h == name)
            .map(|(_, v)| v.as_str())
    };
    // One sender: a second From line is no block a client wrote.
    if fields.iter().filter(|(h, _)| h == "from").count() != 1 {
        return None;
    }
    let (name, address) = person(field("from")?)?;
    let quoted = lines[n..]
        .iter()
        .filter(|l| !l.trim().is_empty())
        .all(|l| l.starts_with('>'));
    let body: Vec<String> = lines[n..]
        .iter()
        .take_while(|l| {
            !l.trim()
                .eq_ignore_ascii_case("----- End forwarded message -----")
        })
        .map(|l| match (quoted, l.strip_prefix('>')) {
            (true, Some(rest)) => rest.strip_prefix(' ').unwrap_or(rest).to_string(),
            _ => l.to_string(),
        })
        .collect();
    let mut mail = String::new();
    let from = match name {
        Some(n) => format!("\"{}\" <{address}>", n.replace(['"', '\\'], "")),
        None => format!("<{address}>"),
    };
    mail.push_str(&format!("From: {from}\r\n"));
    let subject = field("subject").unwrap_or("");
    mail.push_str(&format!("Subject: {}\r\n", one_line(subject, usize::MAX)));
    if let Some(d) = field("date").or(field("sent")).and_then(rfc2822) {
        mail.push_str(&format!("Date: {d}\r\n"));
    }
    if let Some(id) = field("message-id").and_then(message_id) {
        mail.push_str(&format!("Message-ID: <{id}>\r\n"));
    }
    mail.push_str(
        "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
    );
    mail.push_str(body.join("\r\n").trim_matches(['\r', '\n']));
    mail.push_str("\r\n");
    let note = own_text(&lines[..marker].join("\n"));
    Some(Found {
        raw: mail.into_bytes(),
        note,
        format,
    })
}

/// The name and address of a forward's From: `Name <a@b>`, `a@b`, `Name
/// [mailto:a@b]`, `"Name" <mailto:a@b>`. The address is the one in the
/// last brackets, else the whole value: an address in the display name is
/// never the sender's.
fn person(value: &str) -> Option<(Option<String>, String)> {
    let re =
        regex::Regex::new(r"(?i)^(?:mailto:)?([A-Z0-9._%+\-']+@[A-Z0-9.\-]+\.[A-Z]{2,})$").ok()?;
    let value = value.trim();
    let (name, inside) = match value.rfind(['<', '[']) {
        Some(open) => {
            let close = match &value[open..open + 1] {
                "<" => '>',
                _ => ']',
            };
            let rest = value[open + 1..].strip_suffix(close)?;
            (&value[..open], rest)
        }
        None => ("", value),
    };
    let address = re
        .captures(inside.trim())?
        .get(1)?
        .as_str()
        .to_ascii_lowercase();
    let name = name.trim().trim_matches('"').trim();
    let name = (!name.is_empty() && !name.contains('@')).then(|| one_line(name, usize::MAX));
    Some((name, address))
}

/// A forward's date as RFC 2822, when it is one already or a form the
/// clients write (`Mon, Mar 2, 2026 at 9:00 AM` has no zone: left out).
fn rfc2822(value: &str) -> Option<String> {
    chrono::DateTime::parse_from_rfc2822(value.trim())
        .ok()
        .map(|d| d.to_rfc2822())
}

/// A Message-ID as the forward shows it, without its brackets.
fn message_id(value: &str) -> Option<String> {
    let id = value
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    (id.contains('@') && !id.contains(char::is_whitespace) && id.len() <= 998)
        .then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;

    fn member_mail(body: &str) -> Inbound {
        let raw = format!(
            "From: Alice Staff <alice@staff.test>\r\nTo: support@vendor.test\r\nSubject: Fwd: Pool degraded\r\nMessage-ID: <fwd-1@staff.test>\r\n\r\n{}",
            body.replace('\n', "\r\n")
        )
        .into_bytes();
        parse(&raw, chrono::DateTime::UNIX_EPOCH)
    }

    /// The forward `body` holds, read back as the customer's mail.
    fn read(body: &str) -> (Found, Inbound) {
        let inbound = member_mail(body);
        let found = find(&inbound).unwrap_or_else(|| panic!("no forward in:\n{body}"));
        let customer = parse(&found.raw, chrono::DateTime::UNIX_EPOCH);
        (found, customer)
    }

    fn check(found: &Found, customer: &Inbound, format: &str) {
        assert_eq!(found.format, format);
        assert_eq!(
            found.note,
            "#open\n#severity 2\nDana called about this too."
        );
        let from = customer.from.as_ref().expect("the customer's From");
        assert_eq!(from.address, "dana@example.net");
        assert_eq!(from.name.as_deref(), Some("Dana Customer"));
        assert_eq!(customer.subject, "Pool degraded");
        assert!(
            customer
                .text
                .starts_with("Hello,\nthe pool is degraded after the update."),
            "{:?}",
            customer.text
        );
        assert!(
            !customer.text.contains("End forwarded") && !customer.text.contains("From:"),
            "{:?}",
            customer.text
        );
    }

    const NOTE: &str = "#open\n#severity 2\nDana called about this too.\n\n";
    const BODY: &str = "Hello,\nthe pool is degraded after the update.\n#close\nDana\n";

    #[test]
    fn a_gmail_inline_forward_gives_the_customer_s_mail() {
        let (f, c) = read(&format!(
            "{NOTE}---------- Forwarded message ---------\nFrom: Dana Customer <dana@example.net>\nDate: Mon, Mar 2, 2026 at 9:00 AM\nSubject: Pool degraded\nTo: Alice Staff <alice@staff.test>\n\n\n{BODY}"
        ));
        check(&f, &c, "gmail");
        assert_eq!(c.message_id, None, "Gmail's forward shows no Message-ID");
        // The customer's text is text, never commands: `#close` is in it.
        assert!(c.text.contains("#close"));
    }

    #[test]
    fn an_outlook_inline_forward_gives_the_customer_s_mail() {
        for (block, what) in [
            ("", "desktop"),
            ("________________________________\n", "web"),
            ("-----Original Message-----\n", "older"),
        ] {
            let (f, c) = read(&format!(
                "{NOTE}{block}From: Dana Customer <dana@example.net>\nSent: Monday, March 2, 2026 9:00 AM\nTo: Alice Staff <alice@staff.test>\nSubject: Pool degraded\n\n{BODY}"
            ));
            check(&f, &c, "outlook");
            assert_eq!(
                c.from.as_ref().unwrap().address,
                "dana@example.net",
                "{what}"
            );
        }
        // Older Outlook writes the address as [mailto:...].
        let (_, c) = read(&format!(
            "{NOTE}-----Original Message-----\nFrom: Dana Customer [mailto:Dana@Example.NET]\nSent: Monday, March 2, 2026 9:00 AM\nSubject: Pool degraded\n\n{BODY}"
        ));
        assert_eq!(c.from.as_ref().unwrap().address, "dana@example.net");
    }

    #[test]
    fn a_thunderbird_inline_forward_gives_the_customer_s_mail_and_its_message_id() {
        let (f, c) = read(&format!(
            "{NOTE}-------- Forwarded Message --------\nSubject: \tPool degraded\nDate: \tMon, 2 Mar 2026 09:00:00 -0800\nFrom: \tDana Customer <dana@example.net>\nTo: \talice@staff.test\nMessage-ID: \t<dana-1@example.net>\n\n{BODY}"
        ));
        check(&f, &c, "thunderbird");
        assert_eq!(c.message_id.as_deref(), Some("dana-1@example.net"));
        assert_eq!(
            c.date_header.as_deref(),
            Some("2026-03-02T09:00:00-08:00"),
            "an RFC 2822 date is kept"
        );
    }

    #[test]
    fn an_apple_mail_inline_forward_gives_the_customer_s_mail_quoted_or_not() {
        let (f, c) = read(&format!(
            "{NOTE}Begin forwarded message:\n\nFrom: Dana Customer <dana@example.net>\nSubject: Pool degraded\nDate: 2 March 2026 at 09:00:00 PST\nTo: Alice Staff <alice@staff.test>\nMessage-Id: <dana-1@example.net>\n\n{BODY}"
        ));
        check(&f, &c, "apple_mail");
        assert_eq!(c.message_id.as_deref(), Some("dana-1@example.net"));
        let quoted: String = BODY.lines().map(|l| format!("> {l}\n")).collect();
        let (f, c) = read(&format!(
            "{NOTE}Begin forwarded message:\n\n> From: Dana Customer <dana@example.net>\n> Subject: Pool degraded\n> Date: 2 March 2026 at 09:00:00 PST\n> To: Alice Staff <alice@staff.test>\n> \n{quoted}"
        ));
        check(&f, &c, "apple_mail");
    }

    #[test]
    fn a_mutt_inline_forward_ends_at_its_end_line() {
        let (f, c) = read(&format!(
            "{NOTE}----- Forwarded message from Dana Customer <dana@example.net> -----\n\nDate: Mon, 2 Mar 2026 09:00:00 -0800\nFrom: Dana Customer <dana@example.net>\nTo: alice@staff.test\nSubject: Pool degraded\n\n{BODY}\n----- End forwarded message -----\n\n-- \nAlice\n"
        ));
        check(&f, &c, "mutt");
    }

    #[test]
    fn an_attached_message_is_the_customer_s_mail_whole() {
        let customer = "From: Dana Customer <dana@example.net>\r\nTo: alice@staff.test\r\nSubject: Pool degraded\r\nMessage-ID: <dana-1@example.net>\r\nDate: Mon, 2 Mar 2026 09:00:00 -0800\r\n\r\nHello,\r\nthe pool is degraded after the update.\r\nDana\r\n";
        let raw = format!(
            "From: Alice Staff <alice@staff.test>\r\nTo: support@vendor.test\r\nSubject: Fwd: Pool degraded\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n#open\r\n#severity 2\r\nDana called about this too.\r\n\r\n-- \r\nAlice\r\n--b\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n{customer}\r\n--b--\r\n"
        );
        let inbound = parse(raw.as_bytes(), chrono::DateTime::UNIX_EPOCH);
        let f = find(&inbound).expect("the attached message");
        assert_eq!(f.format, "attached");
        assert_eq!(f.note, "#open\n#severity 2\nDana called about this too.");
        let c = parse(&f.raw, chrono::DateTime::UNIX_EPOCH);
        assert_eq!(c.from.as_ref().unwrap().address, "dana@example.net");
        assert_eq!(c.message_id.as_deref(), Some("dana-1@example.net"));
        assert_eq!(c.subject, "Pool degraded");
    }

    #[test]
    fn an_address_in_the_display_name_is_not_the_sender() {
        // The customer named themselves after someone else's address: the
        // client shows it before the real one.
        for from in [
            "victim@bank.example <eve@evil.example>",
            "\"victim@bank.example\" <eve@evil.example>",
            "victim@bank.example [mailto:eve@evil.example]",
        ] {
            let (_, c) = read(&format!(
                "{NOTE}---------- Forwarded message ---------\nFrom: {from}\nDate: Mon, Mar 2, 2026 at 9:00 AM\nSubject: Pool degraded\n\n{BODY}"
            ));
            assert_eq!(
                c.from.as_ref().unwrap().address,
                "eve@evil.example",
                "{from}"
            );
        }
        // Text beside an address that is no display name reads as nothing.
        let body = format!(
            "{NOTE}---------- Forwarded message ---------\nFrom: Eve <eve@evil.example> victim@bank.example\nSubject: Pool degraded\n\n{BODY}"
        );
        assert_eq!(find(&member_mail(&body)), None);
    }

    #[test]
    fn a_block_with_two_senders_is_no_forward() {
        let body = format!(
            "{NOTE}-------- Forwarded Message --------\nSubject: \tPool degraded\nFrom: \tvictim@bank.example\nDate: \tMon, 2 Mar 2026 09:00:00 -0800\nFrom: \tDana Customer <dana@example.net>\n\n{BODY}"
        );
        assert_eq!(find(&member_mail(&body)), None);
    }

    #[test]
    fn a_message_attached_to_an_inline_forward_is_not_the_forwarded_mail() {
        // The member forwards Eve's mail inline; Eve's mail carried a
        // message of someone else's, which the client attaches too.
        let other = "From: Victim <victim@bank.example>\r\nTo: eve@evil.example\r\nSubject: Statement\r\nMessage-ID: <v-1@bank.example>\r\n\r\nHello\r\n";
        let raw = format!(
            "From: Alice Staff <alice@staff.test>\r\nTo: support@vendor.test\r\nSubject: Fwd: Pool degraded\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n#open\r\n\r\n---------- Forwarded message ---------\r\nFrom: Eve <eve@evil.example>\r\nSubject: Pool degraded\r\n\r\nSee attached.\r\n--b\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n{other}\r\n--b--\r\n"
        );
        let inbound = parse(raw.as_bytes(), chrono::DateTime::UNIX_EPOCH);
        let f = find(&inbound).expect("the inline forward");
        assert_eq!(f.format, "gmail");
        let c = parse(&f.raw, chrono::DateTime::UNIX_EPOCH);
        assert_eq!(c.from.as_ref().unwrap().address, "eve@evil.example");
        assert_eq!(f.note, "#open");
    }

    #[test]
    fn a_mail_that_forwards_nothing_is_none() {
        for body in [
            "Hello, please open a ticket for dana@example.net.\n",
            // A quote header is no forward.
            "Thanks!\n\nOn Mon, Mar 2, 2026 at 9:00 AM Dana <dana@example.net> wrote:\n> Hello\n",
            // A marker with no From under it.
            "---------- Forwarded message ---------\nSubject: x\n\ntext\n",
        ] {
            assert_eq!(find(&member_mail(body)), None, "{body}");
        }
    }
}
