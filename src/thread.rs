//! Which ticket a mail belongs to: the subject tag, whatever clients did to the subject, and reply prefixes.

use regex::Regex;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// The tag we put in every subject: `[PREFIX#123]`.
pub fn tag(prefix: &str, id: i64) -> String {
    format!("[{prefix}#{id}]")
}

/// Compiled regexes by (kind, prefix); `None` when the prefix made no valid regex.
type RegexCache = HashMap<(String, String), Option<Arc<Regex>>>;

/// A regex built from the ticket prefix, compiled once per prefix and kind
/// (compiling one costs far more than reading a mail with it). It is shared,
/// not cloned: a cloned `Regex` starts with an empty search cache, and
/// building that cache again costs more than the search.
fn cached(kind: &str, prefix: &str, build: impl FnOnce() -> Option<Regex>) -> Option<Arc<Regex>> {
    static CACHE: OnceLock<Mutex<RegexCache>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (kind.to_string(), prefix.to_string());
    if let Ok(c) = cache.lock()
        && let Some(r) = c.get(&key)
    {
        return r.clone();
    }
    let r = build().map(Arc::new);
    if let Ok(mut c) = cache.lock() {
        // A daemon has one prefix; the bound only keeps odd callers from growing it.
        if c.len() >= 64 {
            c.clear();
        }
        c.insert(key, r.clone());
    }
    r
}

fn tag_regex(prefix: &str) -> Arc<Regex> {
    cached("tag", prefix, || {
        // Clients and people mangle the tag: spaces, lost brackets, full-width '#'.
        Regex::new(&format!(
            r"(?i)\[?\s*{}\s*[#＃]\s*(\d{{1,12}})\s*\]?",
            regex::escape(prefix)
        ))
        .ok()
    })
    .unwrap_or_else(|| {
        static FALLBACK: OnceLock<Arc<Regex>> = OnceLock::new();
        FALLBACK
            .get_or_init(|| Arc::new(Regex::new(r"\[TKT#(\d{1,12})\]").expect("literal regex")))
            .clone()
    })
}

/// The tag exactly as we write it, `[PREFIX#123]` (the prefix in any case).
fn canonical_regex(prefix: &str) -> Option<Arc<Regex>> {
    cached("canonical", prefix, || {
        Regex::new(&format!(r"(?i)\[{}#(\d{{1,12}})\]", regex::escape(prefix))).ok()
    })
}

/// The ticket number in a subject's tag, wherever it stands: the first tag
/// as we write it (`[TKT#12]`), else the first mangled one (`TKT #12`,
/// `[tkt＃12`). A mangled tag never outranks a canonical one, so text a
/// customer put into a subject cannot redirect a reply to our mail, whose
/// subject carries our tag.
pub fn tag_in(subject: &str, prefix: &str) -> Option<i64> {
    let number = |re: &Regex| {
        re.captures(subject)
            .and_then(|c| c.get(1))
            .and_then(|m| m.as_str().parse().ok())
    };
    canonical_regex(prefix)
        .and_then(|re| number(&re))
        .or_else(|| number(&tag_regex(prefix)))
}

/// Ticket numbers written as tags in a body (a forwarded reply of ours, say).
pub fn tags_in_text(text: &str, prefix: &str) -> Vec<i64> {
    let re = cached("text", prefix, || {
        Regex::new(&format!(r"\[{}#(\d{{1,12}})\]", regex::escape(prefix))).ok()
    });
    match re {
        Some(re) => re
            .captures_iter(text)
            .take(20)
            .filter_map(|c| c.get(1)?.as_str().parse().ok())
            .collect(),
        None => Vec::new(),
    }
}

fn prefix_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        // Re, Fwd and their translations; "Re[2]:", "RE^3:"; ASCII and full-width colons.
        Regex::new(
            r"(?i)^\s*(?:re|aw|sv|vs|fw|fwd|wg|tr|rv|enc|antw|odp|ref|res|r|返信|転送|回复|答复|回覆|转发|轉寄)\s*(?:\[\d+\]|\^\d+|\(\d+\))?\s*[:：]\s*",
        )
        .expect("static regex")
    })
}

/// The subject without reply prefixes and without our tag: what the ticket
/// is called. Tags are stripped until none remain: one pass over
/// `TKT[TKT#99]#1` would leave the tag `TKT #1` standing.
pub fn clean_subject(subject: &str, prefix: &str) -> String {
    let re = tag_regex(prefix);
    let mut without_tag = subject.to_string();
    // Each pass removes at least one character, so this ends; the bound
    // keeps a hostile subject's cost small.
    for _ in 0..16 {
        match re.replace_all(&without_tag, " ") {
            std::borrow::Cow::Borrowed(_) => break,
            std::borrow::Cow::Owned(next) => without_tag = next,
        }
    }
    if re.is_match(&without_tag) {
        // Still tagged after the bound: keep nothing of it but plain words.
        without_tag = re.replace_all(&without_tag, " ").replace(['#', '＃'], " ");
    }
    let mut s: &str = &without_tag;
    loop {
        match prefix_regex().find(s) {
            Some(m) if m.end() > 0 => s = &s[m.end()..],
            _ => break,
        }
    }
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_tag_whatever_clients_add() {
        for s in [
            "[TKT#12] Disk failure",
            "Re: [TKT#12] Disk failure",
            "RE: RE: [TKT#12] Disk failure",
            "AW: [TKT#12] Disk failure",
            "SV: VS: [TKT#12] Disk failure",
            "Fwd: [TKT#12] Disk failure",
            "回复: [TKT#12] Disk failure",
            "答复：[TKT#12] Disk failure",
            "RV: [TKT#12] Disk failure",
            "Disk failure [TKT#12]",
            "Urgent!! Disk failure (was [TKT#12]) still broken",
            "Re: [tkt # 12] Disk failure",
            "Re: TKT＃12 Disk failure",
        ] {
            assert_eq!(tag_in(s, "TKT"), Some(12), "{s}");
        }
        assert_eq!(tag_in("Disk failure #12", "TKT"), None);
        assert_eq!(tag_in("[OTHER#12] Disk", "TKT"), None);
    }

    #[test]
    fn clean_subject_drops_prefixes_and_tag() {
        assert_eq!(
            clean_subject("Re: AW: [TKT#12] Disk failure", "TKT"),
            "Disk failure"
        );
        assert_eq!(
            clean_subject("Re[2]: Fwd: Disk failure", "TKT"),
            "Disk failure"
        );
        assert_eq!(clean_subject("回复：障害について", "TKT"), "障害について");
        assert_eq!(clean_subject("Reset password", "TKT"), "Reset password");
        assert_eq!(clean_subject("RV: Re: Avería", "TKT"), "Avería");
    }

    #[test]
    fn issue_20_class_6_tags_are_stripped_until_none_remain() {
        for s in [
            "TKT[TKT#99]#1 x",
            "[TKT#[TKT#5]1] x",
            "TKT[TKT[TKT#3]#2]#1 x",
            "TK[TKT#1]T#1 x",
            "[tkt#1] TKT ＃ [TKT#2] 7 x",
        ] {
            let clean = clean_subject(s, "TKT");
            assert_eq!(tag_in(&clean, "TKT"), None, "{s:?} -> {clean:?}");
            assert!(clean.ends_with('x'), "{s:?} -> {clean:?}");
        }
        let deep = format!("{}#1{} x", "TKT[".repeat(40), "]#1".repeat(40));
        assert_eq!(tag_in(&clean_subject(&deep, "TKT"), "TKT"), None);
    }

    #[test]
    fn issue_20_class_6_our_tag_outranks_a_mangled_one() {
        assert_eq!(tag_in("Re: TKT #1 x [TKT#2]", "TKT"), Some(2));
        assert_eq!(tag_in("Re: tkt＃1 [tkt#2]", "TKT"), Some(2));
        assert_eq!(tag_in("Re: TKT #1 x", "TKT"), Some(1));
    }
}
