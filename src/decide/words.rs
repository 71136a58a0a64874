//! A mail's own words as deciding reads them: the text the rules read, and what is read from it alone (its language, the rules' facts, topics and severity words), which intake reads before the store is locked.

use crate::classify::Class;
use crate::model::Language;
use crate::pack::Pack;
use crate::parse::Inbound;
use crate::policy::TextScan;
use std::sync::OnceLock;

/// What the vendor's rules read of a mail: its subject and what the person
/// wrote now, without the quoted history and the signature.
pub fn request_text(m: &Inbound) -> String {
    format!("{}\n{}", m.subject, new_text(m))
}

/// What deciding reads from a mail's own words alone (the language it is
/// written in, what the rules read), read by intake before the store is
/// locked, on every core, where the mail will likely need it: the rules'
/// words for a person's mail, the language for a mail that starts a
/// conversation (a reply's is its ticket's). The rest is read when asked.
/// Used only for the mail and the pack it was read for.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// `request_text` of the mail.
    text: String,
    pack: String,
    charset: Option<String>,
    written_in: OnceLock<Option<(Language, &'static str)>>,
    scan: OnceLock<TextScan>,
}

impl Prepared {
    pub fn read(m: &Inbound, class: Class, pack: &Pack) -> Prepared {
        let p = Prepared {
            text: request_text(m),
            pack: pack.name.clone(),
            charset: declared_charset(m).map(str::to_string),
            written_in: OnceLock::new(),
            scan: OnceLock::new(),
        };
        if m.in_reply_to.is_empty() && m.references.is_empty() {
            p.written_in();
        }
        if class == Class::Human {
            p.scan(pack);
        }
        p
    }

    /// Itself when it was read from `m`'s words for `pack` (a staff mail's
    /// forwarded customer mail is decided with its own).
    pub(super) fn of(&self, m: &Inbound, pack: &Pack) -> Option<&Prepared> {
        let new = new_text(m);
        let t = &self.text;
        (self.pack == pack.name
            && t.len() == m.subject.len() + 1 + new.len()
            && t.starts_with(m.subject.as_str())
            && t[m.subject.len()..].starts_with('\n')
            && t.ends_with(new))
        .then_some(self)
    }

    pub(super) fn text(&self) -> &str {
        &self.text
    }

    pub(super) fn written_in(&self) -> Option<(Language, &'static str)> {
        *self
            .written_in
            .get_or_init(|| super::language::written_in(&self.text, self.charset.as_deref()))
    }

    pub(super) fn scan(&self, pack: &Pack) -> &TextScan {
        self.scan.get_or_init(|| pack.policy.scan(&self.text))
    }
}

/// The charset the mail's Content-Type declares.
pub(super) fn declared_charset(m: &Inbound) -> Option<&str> {
    m.header("content-type")
        .and_then(|ct| {
            ct.split(';')
                .find_map(|p| p.trim().strip_prefix("charset="))
        })
        .map(|c| c.trim_matches('"'))
}

/// What the person wrote now: the reply text, or the whole text when no
/// new text was found apart from quotes.
pub(super) fn new_text(m: &Inbound) -> &str {
    if m.reply_text.trim().is_empty() {
        &m.text
    } else {
        &m.reply_text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::fixtures::pack;

    fn mail(subject: &str, body: &str) -> Inbound {
        let raw = format!(
            "From: a@customer.test\r\nSubject: {subject}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
        );
        crate::parse::parse(raw.as_bytes(), chrono::DateTime::UNIX_EPOCH)
    }

    #[test]
    fn issue_24_words_beside_japanese_characters_are_read() {
        let jp = pack("qnap-jp");
        let scan = jp
            .policy
            .scan("OSはWindows Serverで、ファームウェアはv5.1.0です。本番がsystem downです");
        assert!(scan.facts.contains(&"os"), "{:?}", scan.facts);
        assert!(scan.facts.contains(&"version"), "{:?}", scan.facts);
        assert_eq!(scan.version_text.as_deref(), Some("5.1.0"));
        assert!(scan.critical);
        // Digits typed through a Japanese input method, at the end of the text.
        let scan = jp.policy.scan("バージョン：２.１");
        assert_eq!(scan.version_text.as_deref(), Some("２.１"));
        // Still whole words: no version inside a longer word or number.
        let scan = jp.policy.scan("firmwarev5.1.0 and v5.1a");
        assert_eq!(scan.version_text, None, "{:?}", scan.facts);
        // A topic's English word beside Japanese text (IX-09's out of scope).
        let ix = pack("ixsystems");
        let scan = ix.policy.scan("新しいfirewallの設定を教えてください");
        assert!(
            scan.topics.iter().any(|t| t == "out_of_scope"),
            "{:?}",
            scan.topics
        );
    }

    #[test]
    fn issue_24_words_read_ahead_serve_only_the_mail_and_the_pack_they_were_read_for() {
        let netex = pack("netex");
        let a = mail("Severity 1: production is down", "Nothing passes.");
        let p = Prepared::read(&a, Class::Human, &netex);
        assert!(p.of(&a, &netex).is_some());
        assert_eq!(p.scan(&netex), &netex.policy.scan(&request_text(&a)));
        // Another mail: its subject, its words, or both moved between them.
        for other in [
            mail("Severity 1: production is up", "Nothing passes."),
            mail("Severity 1: production is down", "Everything passes."),
            mail("Severity 1: production", "is down\nNothing passes."),
        ] {
            assert!(p.of(&other, &netex).is_none(), "{:?}", other.subject);
        }
        // Another pack reads other words.
        assert!(p.of(&a, &pack("qnap")).is_none());
    }
}
