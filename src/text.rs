//! Small text helpers shared by the readers (parse, reply_text, dsn, classify), so that none of them imports another for them.

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub(crate) fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Fixed phrases looked for together: one pass over a text (Aho-Corasick)
/// finds every occurrence of every phrase, where a search per phrase would
/// read the text once per phrase. The automaton is built at first use.
pub(crate) struct Phrases {
    list: &'static [&'static str],
    automaton: std::sync::OnceLock<aho_corasick::AhoCorasick>,
}

impl Phrases {
    /// Phrases matched as written (byte for byte).
    pub(crate) const fn new(list: &'static [&'static str]) -> Phrases {
        Phrases {
            list,
            automaton: std::sync::OnceLock::new(),
        }
    }

    /// The earliest phrase of the list that occurs in `text`.
    pub(crate) fn first_in(&self, text: &str) -> Option<&'static str> {
        let ac = self.automaton.get_or_init(|| {
            aho_corasick::AhoCorasick::new(self.list).expect("fixed phrases build")
        });
        earliest(ac, text).map(|i| self.list[i])
    }
}

/// The index of the earliest of `ac`'s patterns that occurs in `text`.
pub(crate) fn earliest(ac: &aho_corasick::AhoCorasick, text: &str) -> Option<usize> {
    ac.find_overlapping_iter(text)
        .map(|m| m.pattern().as_usize())
        .min()
}

/// `bytes` as lower-case hex digits.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 * bytes.len());
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// The first `n` characters of `s`, without copying it.
pub(crate) fn first_chars(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map_or(s, |(end, _)| &s[..end])
}

/// The longest display name kept, in characters.
pub const MAX_DISPLAY_NAME: usize = 64;

/// Text from elsewhere (an endpoint's answer, a forwarded header) on one
/// line: control characters (newlines that would forge log or listing
/// lines, terminal escapes) made spaces, trimmed, cut to `max` bytes.
pub(crate) fn one_line(s: &str, max: usize) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    clip(flat.trim(), max).to_string()
}

/// A display name as templates, notifications and the store may show it:
/// control and bidirectional-formatting characters dropped (a newline in a
/// name must not start a line of text in a mail ticketd sends), white space
/// runs collapsed to one space, at most [`MAX_DISPLAY_NAME`] characters.
/// `None` when nothing is left.
pub fn display_name(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len().min(4 * MAX_DISPLAY_NAME));
    let mut chars = 0;
    let mut space = false;
    for c in name.chars() {
        if c.is_whitespace() || c.is_control() {
            space = !out.is_empty();
            continue;
        }
        if matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
        {
            continue;
        }
        if chars + usize::from(space) + 1 > MAX_DISPLAY_NAME {
            break;
        }
        if space {
            out.push(' ');
            chars += 1;
            space = false;
        }
        out.push(c);
        chars += 1;
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {

    static WORDS: Phrases = Phrases::new(&["out of the office", "office", "不在", "auto-reply"]);

    #[test]
    fn the_earliest_phrase_of_the_list_is_found_not_the_earliest_in_the_text() {
        assert_eq!(
            WORDS.first_in("office hours; out of the office"),
            Some("out of the office")
        );
        // One phrase inside another: both are found, the list decides.
        assert_eq!(
            WORDS.first_in("i am out of the office"),
            Some("out of the office")
        );
        assert_eq!(WORDS.first_in("the office"), Some("office"));
        assert_eq!(WORDS.first_in("本日不在です"), Some("不在"));
        assert_eq!(WORDS.first_in("Out Of The Office"), None, "as written");
        assert_eq!(WORDS.first_in(""), None);
    }

    proptest::proptest! {
        /// One pass finds what a search for each phrase in turn finds.
        #[test]
        fn phrases_found_in_one_pass_are_those_found_one_by_one(
            picks in proptest::collection::vec((0..4usize, proptest::bool::ANY, "\\PC{0,12}"), 0..5),
        ) {
            // Whole phrases and their first letters, among other text.
            let text: String = picks
                .iter()
                .map(|(i, whole, filler)| {
                    let p = WORDS.list[*i];
                    let p: String = if *whole { p.into() } else { p.chars().take(3).collect() };
                    format!("{filler}{p}")
                })
                .collect();
            let one_by_one = WORDS.list.iter().copied().find(|p| text.contains(p));
            proptest::prop_assert_eq!(WORDS.first_in(&text), one_by_one);
        }
    }
    use super::{MAX_DISPLAY_NAME, Phrases, clip, display_name, first_chars, hex};

    #[test]
    fn hex_is_two_lower_case_digits_a_byte() {
        assert_eq!(hex(&[0, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn issue_20_class_5_display_names_lose_controls_and_runs_and_are_capped() {
        assert_eq!(display_name("  Ann   Lee \t"), Some("Ann Lee".into()));
        assert_eq!(
            display_name("Ann\r\n\r\n#severity 1\r\nClick http://x.test"),
            Some("Ann #severity 1 Click http://x.test".into())
        );
        assert_eq!(
            display_name("a\u{202e}gnp.exe\u{0}b"),
            Some("agnp.exe b".into())
        );
        assert_eq!(display_name("\u{200b}\n\t"), None);
        let long = display_name(&"é".repeat(500)).unwrap();
        assert_eq!(long.chars().count(), MAX_DISPLAY_NAME);
        let words = display_name(&"ab ".repeat(100)).unwrap();
        assert!(words.chars().count() <= MAX_DISPLAY_NAME, "{words}");
        assert!(!words.ends_with(' '));
    }

    #[test]
    fn first_chars_counts_characters_not_bytes() {
        assert_eq!(first_chars("日本語", 2), "日本");
        assert_eq!(first_chars("abc", 5), "abc");
        assert_eq!(first_chars("abc", 0), "");
    }

    #[test]
    fn clip_never_splits_a_character() {
        assert_eq!(clip("abc", 5), "abc");
        assert_eq!(clip("日本語", 4), "日");
        assert_eq!(clip("日本語", 6), "日本");
        assert_eq!(clip("", 0), "");
    }
}
