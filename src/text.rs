//! Small text helpers shared by the readers (parse, reply_text, dsn), so that none of them imports another for them.

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

#[cfg(test)]
mod tests {
    use super::clip;

    #[test]
    fn clip_never_splits_a_character() {
        assert_eq!(clip("abc", 5), "abc");
        assert_eq!(clip("日本語", 4), "日");
        assert_eq!(clip("日本語", 6), "日本");
        assert_eq!(clip("", 0), "");
    }
}
