//! A mail's header section read strictly (RFC 5322 §2.2, §3.6): its fields in order, byte for byte as a DKIM verifier sees them, and the first reason any other reader could see them differently.
//!
//! Proof of a sender (DKIM, Authentication-Results, a reply token) is only
//! worth something when the header fields ticketd acts on are the ones the
//! proof covered. Three readers look at a mail's header section: mail-auth
//! (the DKIM verifier), mail-parser (what the decision reads) and the
//! receiving server that wrote Authentication-Results. They agree on a
//! header section of plain RFC 5322 syntax and may disagree on anything
//! else: a name followed by white space before its colon (`From :`), a
//! name folded over two lines, a line without a colon, a second copy of a
//! field that may appear once, a bare CR, a NUL, blank lines before the
//! first field, a folded line of nothing but white space, a section that
//! never ends with an empty line. [`read`] returns the fields and, for any
//! of these, an [`Ambiguity`]: such a mail proves nothing.

use std::fmt;

/// Fields RFC 5322 §3.6 (and MIME, RFC 2045 §3 and RFC 2183) allow at most
/// once. A second copy is read as the first by some readers and as the last
/// by others: ambiguous.
pub const SINGLE_INSTANCE: &[&str] = &[
    "date",
    "from",
    "sender",
    "reply-to",
    "to",
    "cc",
    "bcc",
    "message-id",
    "in-reply-to",
    "references",
    "subject",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
];

/// More fields than this and the section is refused: the readers keep
/// different numbers of them (`parse` keeps 500).
pub const MAX_FIELDS: usize = 500;

/// One header field: its name exactly as written and its value, the bytes
/// after the colon up to (not including) the line end that closes it,
/// folding line ends included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field<'a> {
    pub name: &'a str,
    pub value: &'a [u8],
    /// The line the field starts on, from 1.
    pub line: usize,
}

impl Field<'_> {
    /// The value unfolded: each line trimmed, empty ones dropped, joined by
    /// one space (how `parse` keeps header values).
    pub fn unfolded(&self) -> String {
        unfold(&String::from_utf8_lossy(self.value))
    }
}

/// Why a header section could be read two ways.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ambiguity {
    /// Empty lines or white space before the first field: one reader skips
    /// them, another ends the header section there.
    LeadingBlank,
    /// A CR not followed by LF at `line`.
    BareCr { line: usize },
    /// A NUL byte in the field at `line`.
    Nul { line: usize },
    /// A line that is neither a field (`name:`), a folded continuation, nor
    /// the empty line that ends the section.
    NoColon { line: usize },
    /// A field name with bytes RFC 5322 does not allow in one (white space
    /// before the colon, a control or 8-bit byte), or an empty name.
    BadName { line: usize, name: String },
    /// A folded line of nothing but white space: obsolete syntax that some
    /// readers take as the end of the section.
    BlankFold { line: usize },
    /// A second copy of a field allowed once.
    Duplicate { name: String, lines: Vec<usize> },
    /// The mail ends inside its header section.
    NoEnd,
    /// More than [`MAX_FIELDS`] fields.
    TooMany { count: usize },
    /// The readers in play were compared and disagreed (see `parse`).
    Disagreement { detail: String },
}

impl fmt::Display for Ambiguity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ambiguity::LeadingBlank => {
                f.write_str("blank lines or white space before the first header field")
            }
            Ambiguity::BareCr { line } => write!(f, "a bare CR on header line {line}"),
            Ambiguity::Nul { line } => write!(f, "a NUL byte on header line {line}"),
            Ambiguity::NoColon { line } => {
                write!(f, "header line {line} is not a field (no colon)")
            }
            Ambiguity::BadName { line, name } => {
                write!(f, "header line {line} has a malformed field name {name:?}")
            }
            Ambiguity::BlankFold { line } => {
                write!(f, "header line {line} is a folded line of white space only")
            }
            Ambiguity::Duplicate { name, lines } => write!(
                f,
                "{} {name} fields (lines {}), where one is allowed",
                lines.len(),
                lines
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Ambiguity::NoEnd => f.write_str("the header section does not end with an empty line"),
            Ambiguity::TooMany { count } => {
                write!(f, "{count} header fields, more than {MAX_FIELDS}")
            }
            Ambiguity::Disagreement { detail } => {
                write!(f, "the mail readers disagree on its header: {detail}")
            }
        }
    }
}

/// A header section as read by [`read`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section<'a> {
    /// The fields, top to bottom, as far as they could be read.
    pub fields: Vec<Field<'a>>,
    /// The first reason the section could be read another way.
    pub ambiguity: Option<Ambiguity>,
}

impl<'a> Section<'a> {
    /// The fields named `name` (case-insensitive), top to bottom.
    pub fn all(&self, name: &str) -> impl Iterator<Item = &Field<'a>> {
        let name = name.to_owned();
        self.fields
            .iter()
            .filter(move |f| f.name.eq_ignore_ascii_case(&name))
    }

    /// The one field named `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<&Field<'a>> {
        self.all(name).next()
    }

    /// How another reader's fields (name, value without its closing line
    /// end) differ from these: `None` when it read the same fields, byte for
    /// byte, in the same order.
    pub fn disagreement<'b>(
        &self,
        reader: &str,
        other: impl IntoIterator<Item = (&'b [u8], &'b [u8])>,
    ) -> Option<Ambiguity> {
        compare(
            reader,
            self.fields.iter().map(|f| (f.name.as_bytes(), f.value)),
            other,
        )
    }

    /// The same for a reader that keeps names lower-cased and values
    /// unfolded and cut to `max` bytes (as `parse` keeps them).
    pub fn disagreement_unfolded(
        &self,
        reader: &str,
        other: &[(String, String)],
        max: usize,
    ) -> Option<Ambiguity> {
        let ours: Vec<(String, String)> = self
            .fields
            .iter()
            .map(|f| {
                let value = f.unfolded();
                (
                    f.name.to_ascii_lowercase(),
                    crate::text::clip(&value, max).to_string(),
                )
            })
            .collect();
        compare(
            reader,
            ours.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())),
            other.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())),
        )
    }
}

/// The first difference between two readings of a header section.
fn compare<'x, 'y>(
    reader: &str,
    ours: impl IntoIterator<Item = (&'x [u8], &'x [u8])>,
    theirs: impl IntoIterator<Item = (&'y [u8], &'y [u8])>,
) -> Option<Ambiguity> {
    let mut ours = ours.into_iter();
    let mut theirs = theirs.into_iter();
    let show = |b: &[u8]| String::from_utf8_lossy(&b[..b.len().min(60)]).into_owned();
    for n in 1.. {
        let detail = match (ours.next(), theirs.next()) {
            (None, None) => return None,
            (Some((name, _)), None) => {
                format!("{reader} does not read field {n} ({:?})", show(name))
            }
            (None, Some((name, _))) => {
                format!(
                    "{reader} reads a field {n} ({:?}) that is not there",
                    show(name)
                )
            }
            (Some((a, _)), Some((b, _))) if a != b => format!(
                "{reader} reads field {n} as {:?}, not {:?}",
                show(b),
                show(a)
            ),
            (Some((name, a)), Some((_, b))) if a != b => {
                format!(
                    "{reader} reads the value of field {n} ({:?}) otherwise",
                    show(name)
                )
            }
            _ => continue,
        };
        return Some(Ambiguity::Disagreement { detail });
    }
    None
}

/// Why the header fields of `raw` that the decision reads (`parsed`: the
/// parser's fields, names lower-cased, values unfolded and cut to
/// `max_value` bytes) might not be the ones a proof covers: a bare CR
/// anywhere (the parser reads it as a line end, a verifier does not, and
/// in the body it could make MIME lines of signed text), a section that
/// could be read two ways, or a parser that split it otherwise. `None`:
/// every reader reads the same fields.
pub fn ambiguity(raw: &[u8], parsed: &[(String, String)], max_value: usize) -> Option<String> {
    if has_bare_cr(raw) {
        return Some("bare CR line ends, which the mail readers split differently".into());
    }
    let section = read(raw);
    section
        .ambiguity
        .clone()
        .or_else(|| section.disagreement_unfolded("the mail parser", parsed, max_value))
        .map(|a| a.to_string())
}

/// A CR not followed by LF anywhere in `raw`.
pub fn has_bare_cr(raw: &[u8]) -> bool {
    raw.iter()
        .enumerate()
        .any(|(i, &b)| b == b'\r' && raw.get(i + 1) != Some(&b'\n'))
}

/// A value unfolded: each line trimmed, empty ones dropped, joined by one space.
pub fn unfold(value: &str) -> String {
    // A field's raw value ends with its line break: most have no other.
    let value = value.trim();
    if !value.bytes().any(|b| b == b'\r' || b == b'\n') {
        return value.to_string();
    }
    value
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `b` may stand in a field name (RFC 5322 §3.6.8 ftext).
fn ftext(b: u8) -> bool {
    (33..=126).contains(&b) && b != b':'
}

/// Reads the header section of `raw`. Never fails: what cannot be read
/// plainly is the section's [`Ambiguity`] (the first one met), and the
/// fields are those read up to there.
pub fn read(raw: &[u8]) -> Section<'_> {
    let mut fields: Vec<Field<'_>> = Vec::new();
    let mut ambiguity = None;
    // The field being read: where its value starts, its name and line.
    let mut open: Option<(usize, &str, usize)> = None;
    fn close<'a>(
        raw: &'a [u8],
        open: &mut Option<(usize, &'a str, usize)>,
        fields: &mut Vec<Field<'a>>,
        end: usize,
    ) {
        if let Some((value_start, name, line)) = open.take() {
            fields.push(Field {
                name,
                value: &raw[value_start..end],
                line,
            });
        }
    }
    if raw.first().is_some_and(|b| b.is_ascii_whitespace()) {
        return Section {
            fields,
            ambiguity: Some(Ambiguity::LeadingBlank),
        };
    }
    let mut pos = 0;
    let mut line = 0;
    let mut ended = false;
    while pos < raw.len() {
        line += 1;
        let Some(nl) = raw[pos..].iter().position(|&b| b == b'\n').map(|n| pos + n) else {
            break;
        };
        // The line without its end (LF or CRLF).
        let end = if nl > pos && raw[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        };
        let text = &raw[pos..end];
        if text.contains(&b'\r') {
            ambiguity = Some(Ambiguity::BareCr { line });
            break;
        }
        if text.contains(&0) {
            ambiguity = Some(Ambiguity::Nul { line });
            break;
        }
        if text.is_empty() {
            close(raw, &mut open, &mut fields, pos_before_line_end(raw, pos));
            ended = true;
            break;
        }
        if text[0] == b' ' || text[0] == b'\t' {
            if text.iter().all(|&b| b == b' ' || b == b'\t') {
                ambiguity = Some(Ambiguity::BlankFold { line });
                break;
            }
            // A continuation of the open field (there always is one: the
            // first line cannot start with white space).
            pos = nl + 1;
            continue;
        }
        close(raw, &mut open, &mut fields, pos_before_line_end(raw, pos));
        let Some(colon) = text.iter().position(|&b| b == b':') else {
            ambiguity = Some(Ambiguity::NoColon { line });
            break;
        };
        let name = &text[..colon];
        if name.is_empty() || !name.iter().all(|&b| ftext(b)) {
            ambiguity = Some(Ambiguity::BadName {
                line,
                name: String::from_utf8_lossy(name).into_owned(),
            });
            break;
        }
        // ftext is ASCII, so the name is UTF-8.
        let name = std::str::from_utf8(name).unwrap_or_default();
        open = Some((pos + colon + 1, name, line));
        if fields.len() >= MAX_FIELDS {
            ambiguity = Some(Ambiguity::TooMany {
                count: fields.len() + 1,
            });
            break;
        }
        pos = nl + 1;
    }
    if ambiguity.is_none() && !ended {
        ambiguity = Some(Ambiguity::NoEnd);
    }
    if ambiguity.is_none() {
        ambiguity = duplicate(&fields);
    }
    Section { fields, ambiguity }
}

/// The end of the line before the one starting at `pos` (its CRLF or LF
/// excluded): where a field that ended there has its last value byte.
fn pos_before_line_end(raw: &[u8], pos: usize) -> usize {
    let mut end = pos;
    if end > 0 && raw[end - 1] == b'\n' {
        end -= 1;
        if end > 0 && raw[end - 1] == b'\r' {
            end -= 1;
        }
    }
    end
}

/// The first field of [`SINGLE_INSTANCE`] that stands more than once.
fn duplicate(fields: &[Field<'_>]) -> Option<Ambiguity> {
    SINGLE_INSTANCE.iter().find_map(|single| {
        let lines: Vec<usize> = fields
            .iter()
            .filter(|f| f.name.eq_ignore_ascii_case(single))
            .map(|f| f.line)
            .collect();
        (lines.len() > 1).then(|| Ambiguity::Duplicate {
            name: fields
                .iter()
                .find(|f| f.name.eq_ignore_ascii_case(single))
                .map_or_else(|| single.to_string(), |f| f.name.to_string()),
            lines,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ambiguity(raw: &str) -> Option<Ambiguity> {
        read(raw.as_bytes()).ambiguity
    }

    proptest::proptest! {
        #[test]
        fn unfolding_a_value_of_one_line_is_trimming_it(
            v in "[ \t]{0,3}[a-zA-Zé=?<>@ \t]{0,20}[ \t]{0,3}",
            folds in proptest::collection::vec("(\r\n|\n|\r)[ \t]{0,2}[a-z ]{0,5}", 0..3),
        ) {
            // The lines trimmed, empty ones dropped, joined by one space.
            let folded: String = std::iter::once(v.clone()).chain(folds).collect();
            let lines: Vec<&str> = folded
                .split(['\r', '\n'])
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect();
            proptest::prop_assert_eq!(unfold(&folded), lines.join(" "));
            proptest::prop_assert_eq!(unfold(&v), v.trim());
        }
    }

    #[test]
    fn a_plain_section_reads_its_fields_with_their_folds() {
        let raw =
            b"From: Ana <ana@vendor.test>\r\nSubject: a\r\n long subject\r\nX-A: 1\r\n\r\nbody\r\n";
        let s = read(raw);
        assert_eq!(s.ambiguity, None);
        let names: Vec<_> = s.fields.iter().map(|f| f.name).collect();
        assert_eq!(names, ["From", "Subject", "X-A"]);
        assert_eq!(s.fields[1].value, b" a\r\n long subject");
        assert_eq!(s.fields[1].unfolded(), "a long subject");
        assert_eq!(s.fields[2].line, 4);
        assert_eq!(s.get("x-a").map(|f| f.value), Some(&b" 1"[..]));
    }

    #[test]
    fn lf_line_ends_read_as_crlf_ones() {
        let s = read(b"From: a@b.test\nTo: c@d.test\n\nbody");
        assert_eq!(s.ambiguity, None);
        assert_eq!(s.fields.len(), 2);
        assert_eq!(s.fields[1].value, b" c@d.test");
    }

    #[test]
    fn white_space_before_the_colon_is_ambiguous() {
        assert!(matches!(
            ambiguity("From: a@b.test\r\nFrom : boss@b.test\r\n\r\nx"),
            Some(Ambiguity::BadName { line: 2, .. })
        ));
        assert!(matches!(
            ambiguity("Subject\t: x\r\n\r\n"),
            Some(Ambiguity::BadName { line: 1, .. })
        ));
    }

    #[test]
    fn every_other_kind_of_unplain_section_is_named() {
        let cases: &[(&str, &str)] = &[
            ("\r\nFrom: a@b.test\r\n\r\n", "blank lines"),
            (" From: a@b.test\r\n\r\n", "blank lines"),
            ("From: a@b.test\rTo: x\r\n\r\n", "bare CR"),
            ("From: a@b\0.test\r\n\r\n", "NUL"),
            ("From: a@b.test\r\nnot a field\r\n\r\n", "no colon"),
            ("Fr\r\n om: a@b.test\r\n\r\n", "no colon"),
            (": x\r\n\r\n", "malformed field name"),
            ("Fr\u{e9}m: x\r\n\r\n", "malformed field name"),
            ("From: a@b.test\r\n \r\nTo: c\r\n\r\n", "white space only"),
            ("From: a@b.test\r\n", "does not end"),
            (
                "From: a@b.test\r\nfrom: c@b.test\r\n\r\n",
                "2 From fields (lines 1, 2)",
            ),
            (
                "Content-Type: text/plain\r\nContent-type: multipart/mixed\r\n\r\n",
                "2 Content-Type fields",
            ),
        ];
        for (raw, want) in cases {
            let got = ambiguity(raw).map(|a| a.to_string()).unwrap_or_default();
            assert!(got.contains(want), "{raw:?}: {got:?}, wanted {want:?}");
        }
    }

    #[test]
    fn repeatable_fields_may_repeat() {
        let raw = "Received: a\r\nReceived: b\r\nDKIM-Signature: x\r\nDKIM-Signature: y\r\n\
                   Authentication-Results: m; none\r\nFrom: a@b.test\r\n\r\n";
        assert_eq!(ambiguity(raw), None);
    }

    #[test]
    fn too_many_fields_are_refused() {
        let raw = format!("{}\r\n", "X-A: 1\r\n".repeat(MAX_FIELDS + 1));
        assert!(matches!(ambiguity(&raw), Some(Ambiguity::TooMany { .. })));
        let raw = format!("{}\r\n", "X-A: 1\r\n".repeat(MAX_FIELDS));
        assert_eq!(ambiguity(&raw), None);
    }
}
