//! A mail's own words as deciding reads them: the text the rules read, and what is read from it alone (its language, the rules' facts, topics and severity words), which intake reads before the store is locked.

use crate::model::Language;
use crate::parse::Inbound;

/// What the vendor's rules read of a mail: its subject and what the person
/// wrote now, without the quoted history and the signature.
pub fn request_text(m: &Inbound) -> String {
    format!("{}\n{}", m.subject, new_text(m))
}

/// What deciding reads from a mail's own words alone (the language it is
/// written in, what the rules read): read by intake before the store is
/// locked, on every core, and used only for the mail it was read from.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// `request_text` of the mail.
    text: String,
    written_in: Option<(Language, &'static str)>,
    pub(super) scan: crate::policy::TextScan,
}

impl Prepared {
    pub fn read(m: &Inbound, pack: &crate::pack::Pack) -> Prepared {
        let text = request_text(m);
        Prepared {
            written_in: super::language::written_in(&text, declared_charset(m)),
            scan: pack.policy.scan(&text),
            text,
        }
    }

    /// Itself when it was read from `m`'s words (a staff mail's forwarded
    /// customer mail is decided with its own).
    pub(super) fn of(&self, m: &Inbound) -> Option<&Prepared> {
        let new = new_text(m);
        let t = &self.text;
        (t.len() == m.subject.len() + 1 + new.len()
            && t.starts_with(m.subject.as_str())
            && t[m.subject.len()..].starts_with('\n')
            && t.ends_with(new))
        .then_some(self)
    }

    pub(super) fn text(&self) -> &str {
        &self.text
    }

    pub(super) fn written_in(&self) -> Option<(Language, &'static str)> {
        self.written_in
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
