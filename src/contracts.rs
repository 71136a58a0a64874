//! Entitlements: contracts read from a CSV file, and how a mail finds its contract.
//!
//! A mail finds its contract by the first serial it contains that has one, else by
//! its sender's address, else by a tax ID it contains. [`ContractBook`] does this in
//! memory (for `explain --contracts FILE`); `Store::find_contract` does the same over
//! the imported table, with the same keys ([`serial_key`], [`address_key`],
//! [`tax_id_key`]) and the same choice among several contracts ([`preferred`]).

use chrono::NaiveDate;
use std::cmp::Ordering;
use std::collections::HashMap;

pub use crate::model::{Contract, ContractMatch, ContractOut, MatchedBy};

/// The columns a contracts file must have.
pub const REQUIRED_COLUMNS: &[&str] = &[
    "serial",
    "email",
    "company",
    "tax_id",
    "tier",
    "model",
    "purchased_on",
];

/// The columns a contracts file may have.
pub const OPTIONAL_COLUMNS: &[&str] = &[
    "shipped_on",
    "warranty_until",
    "extended_until",
    "extended_on",
    "plans",
    "plans_on",
    "tickets_per_year",
    "technician",
];

/// The key a serial is matched by: trimmed and uppercased.
pub fn serial_key(serial: &str) -> String {
    serial.trim().to_uppercase()
}

/// The key a sender is matched by: the address inside `<...>` if there is one,
/// trimmed and lowercased.
pub fn address_key(sender: &str) -> String {
    let s = sender.trim();
    let inner = match (s.rfind('<'), s.rfind('>')) {
        (Some(a), Some(b)) if a < b => &s[a + 1..b],
        _ => s,
    };
    inner.trim().to_lowercase()
}

/// Country prefixes of VAT numbers (EU member states, Greece as EL, Northern Ireland as XI,
/// and a few European neighbours) that a tax ID may carry in front of the national number.
const VAT_PREFIXES: &[&str] = &[
    "AT", "BE", "BG", "CH", "CY", "CZ", "DE", "DK", "EE", "EL", "ES", "FI", "FR", "GB", "GR", "HR",
    "HU", "IE", "IT", "LT", "LU", "LV", "MT", "NL", "NO", "PL", "PT", "RO", "SE", "SI", "SK", "XI",
];

/// The key a tax ID is matched by: uppercase, without spaces, dashes, dots or slashes,
/// and without a VAT country prefix, so that `ES B-12.345.678`, `esb12345678` and
/// `B12345678` are one key. The prefix is dropped only when two letters of the list
/// above are followed by at least eight characters one of which is a digit, so a
/// national number that merely starts with two letters is kept whole; both sides of
/// a comparison go through this function, so the rule only has to be consistent.
pub fn tax_id_key(tax_id: &str) -> String {
    let s: String = tax_id
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '.' | '/' | '_'))
        .flat_map(char::to_uppercase)
        .collect();
    if s.len() >= 10 && s.is_char_boundary(2) {
        let (prefix, rest) = s.split_at(2);
        if VAT_PREFIXES.contains(&prefix) && rest.chars().any(|c| c.is_ascii_digit()) {
            return rest.to_string();
        }
    }
    s
}

/// Among several contracts found by the same address or tax ID, the one that is taken:
/// the most recently purchased, then the smallest serial key. `Ordering::Less` means
/// `a` is taken before `b`.
pub fn preferred(a: &Contract, b: &Contract) -> Ordering {
    b.purchased_on
        .cmp(&a.purchased_on)
        .then_with(|| serial_key(&a.serial).cmp(&serial_key(&b.serial)))
}

// ----- CSV ------------------------------------------------------------------

/// One CSV record and the line it starts on.
struct Record {
    line: usize,
    fields: Vec<String>,
}

/// Splits RFC 4180 text into records with the csv crate. A BOM is skipped; CRLF, LF
/// and a lone CR end a record; quoted fields may hold commas, doubled quotes and line
/// breaks. The csv crate reads malformed quoting leniently, so each record's own text
/// is checked as well ([`quoting_problem`]): a record that cannot be read is reported
/// with the line it starts on and skipped, and reading goes on with the next record.
fn records(text: &str) -> (Vec<Record>, Vec<(usize, String)>) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut record = csv::StringRecord::new();
    // Line numbers are counted here (a lone CR ends a line too), up to each record's start.
    let (mut counted_to, mut line) = (0usize, 1usize);
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                // The input is a `str` read from memory: no I/O or UTF-8 error can occur.
                errors.push((line, format!("cannot be read as CSV: {e}")));
                break;
            }
        }
        let end = (reader.position().byte() as usize).min(text.len());
        // A record's position is where its reading began: before the line ends (the
        // previous record's, blank lines) that the reader skipped. It starts after them.
        let mut start = record
            .position()
            .map_or(counted_to, |p| p.byte() as usize)
            .min(end);
        while start < end && matches!(text.as_bytes()[start], b'\r' | b'\n') {
            start += 1;
        }
        line += line_ends(text, counted_to, start);
        counted_to = start;
        let raw = &text[start..end];
        if let Some(reason) = quoting_problem(raw) {
            errors.push((line, reason.into()));
            continue;
        }
        // A blank line is not a record.
        if record.len() == 1 && record[0].trim().is_empty() && !raw.contains('"') {
            continue;
        }
        out.push(Record {
            line,
            fields: record
                .iter()
                .map(|f| f.replace("\r\n", "\n").replace('\r', "\n"))
                .collect(),
        });
    }
    (out, errors)
}

/// How many line ends (CRLF, LF or a lone CR) `text[from..to]` holds.
fn line_ends(text: &str, from: usize, to: usize) -> usize {
    let b = text.as_bytes();
    (from..to)
        .filter(|&i| b[i] == b'\n' || (b[i] == b'\r' && b.get(i + 1) != Some(&b'\n')))
        .count()
}

/// What is wrong with the quoting of one record's text, by RFC 4180: a quote may
/// only open a field, a closing quote must end it, and an opened quote must close.
fn quoting_problem(raw: &str) -> Option<&'static str> {
    #[derive(Clone, Copy, PartialEq)]
    enum At {
        FieldStart,
        Unquoted,
        Quoted,
        QuoteInQuoted,
    }
    let mut at = At::FieldStart;
    for b in raw.bytes() {
        at = match (at, b) {
            (At::Quoted, b'"') => At::QuoteInQuoted,
            (At::Quoted, _) => At::Quoted,
            (At::QuoteInQuoted, b'"') => At::Quoted,
            (At::QuoteInQuoted | At::Unquoted | At::FieldStart, b',') => At::FieldStart,
            (At::QuoteInQuoted | At::Unquoted | At::FieldStart, b'\r' | b'\n') => break,
            (At::QuoteInQuoted, _) => {
                return Some(
                    "text after the closing quote of a field (a quote inside a quoted field is written twice)",
                );
            }
            (At::FieldStart, b'"') => At::Quoted,
            (At::Unquoted, b'"') => {
                return Some(
                    "a quote inside an unquoted field (quote the whole field and double the quote)",
                );
            }
            (At::Unquoted | At::FieldStart, _) => At::Unquoted,
        };
    }
    (at == At::Quoted).then_some("a quoted field is not closed before the end of the file")
}

fn parse_date(column: &str, v: &str) -> Result<NaiveDate, String> {
    let ok = v.len() == 10
        && v.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    ok.then(|| NaiveDate::parse_from_str(v, "%Y-%m-%d").ok())
        .flatten()
        .ok_or_else(|| format!("{column} `{v}` is not a date (YYYY-MM-DD)"))
}

/// Parses a contracts CSV. The header row is required; its columns may come in any
/// order: `serial, email, company, tax_id, tier, model, purchased_on` are required,
/// `shipped_on, warranty_until, extended_until, extended_on, plans` (a semicolon list),
/// `plans_on, tickets_per_year, technician` optional; any other column is an error. Values are
/// trimmed. Every problem is reported as `FILE:LINE: what is wrong`, all of them:
/// a row with the wrong number of fields, an empty serial, a bad date or number, an
/// address without `@`, or a serial that an earlier row already has.
pub fn parse_csv(text: &str, file: &str) -> Result<Vec<Contract>, Vec<String>> {
    let (recs, mut errors) = records(text);
    if let Some(&(line, _)) = errors.first()
        && recs.first().is_none_or(|r| r.line > line)
    {
        // The header itself could not be read: what follows cannot be judged.
        errors.truncate(1);
        return Err(finish(errors, file));
    }
    let mut recs = recs.into_iter();
    let Some(header) = recs.next() else {
        errors.push((
            1,
            format!(
                "no header row (expected the columns {})",
                REQUIRED_COLUMNS.join(",")
            ),
        ));
        return Err(finish(errors, file));
    };
    let mut index: HashMap<&'static str, usize> = HashMap::new();
    let mut header_ok = true;
    for (i, name) in header.fields.iter().enumerate() {
        let name = name.trim().to_lowercase();
        let known = REQUIRED_COLUMNS
            .iter()
            .chain(OPTIONAL_COLUMNS)
            .find(|c| **c == name);
        match known {
            Some(c) => {
                if index.insert(c, i).is_some() {
                    header_ok = false;
                    errors.push((header.line, format!("column `{c}` appears twice")));
                }
            }
            None => {
                header_ok = false;
                errors.push((
                    header.line,
                    format!(
                        "unknown column `{name}` (columns: {}; optional: {})",
                        REQUIRED_COLUMNS.join(","),
                        OPTIONAL_COLUMNS.join(",")
                    ),
                ));
            }
        }
    }
    for c in REQUIRED_COLUMNS {
        if !index.contains_key(c) {
            header_ok = false;
            errors.push((header.line, format!("missing column `{c}`")));
        }
    }
    if !header_ok {
        return Err(finish(errors, file));
    }
    let width = header.fields.len();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for rec in recs {
        if rec.fields.len() != width {
            errors.push((
                rec.line,
                format!("{} fields, but the header has {width}", rec.fields.len()),
            ));
            continue;
        }
        match row(&rec, &index) {
            Ok(c) => {
                let key = serial_key(&c.serial);
                if let Some(first) = seen.get(&key) {
                    errors.push((
                        rec.line,
                        format!("serial `{}` is already on line {first}", c.serial),
                    ));
                    continue;
                }
                seen.insert(key, rec.line);
                out.push(c);
            }
            Err(problems) => errors.extend(problems.into_iter().map(|p| (rec.line, p))),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(finish(errors, file))
    }
}

fn finish(mut errors: Vec<(usize, String)>, file: &str) -> Vec<String> {
    errors.sort_by_key(|(line, _)| *line);
    errors
        .into_iter()
        .map(|(line, reason)| format!("{file}:{line}: {reason}"))
        .collect()
}

/// One data row into a contract, or every problem it has.
fn row(rec: &Record, index: &HashMap<&'static str, usize>) -> Result<Contract, Vec<String>> {
    let get = |c: &str| -> &str { index.get(c).map_or("", |&i| rec.fields[i].trim()) };
    let mut problems = Vec::new();
    let mut date = |c: &str| -> Option<NaiveDate> {
        let v = get(c);
        if v.is_empty() {
            return None;
        }
        parse_date(c, v).map_err(|e| problems.push(e)).ok()
    };
    let shipped_on = date("shipped_on");
    let warranty_until = date("warranty_until");
    let extended_until = date("extended_until");
    let extended_on = date("extended_on");
    let plans_on = date("plans_on");
    let purchased = get("purchased_on");
    let purchased_on = if purchased.is_empty() {
        problems.push("empty purchased_on".to_string());
        None
    } else {
        parse_date("purchased_on", purchased)
            .map_err(|e| problems.push(e))
            .ok()
    };
    let serial = get("serial");
    if serial.is_empty() {
        problems.push("empty serial".to_string());
    }
    let email = get("email").to_lowercase();
    if !email.is_empty() && (!email.contains('@') || email.contains(char::is_whitespace)) {
        problems.push(format!("email `{email}` is not an address"));
    }
    let tickets = get("tickets_per_year");
    let tickets_per_year = if tickets.is_empty() {
        None
    } else {
        match tickets.parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                problems.push(format!(
                    "tickets_per_year `{tickets}` is not a whole number"
                ));
                None
            }
        }
    };
    let plans = get("plans")
        .split(';')
        .map(|p| p.trim().to_lowercase())
        .filter(|p| !p.is_empty())
        .collect();
    match purchased_on {
        Some(purchased_on) if problems.is_empty() => Ok(Contract {
            serial: serial.to_string(),
            email,
            company: get("company").to_string(),
            tax_id: get("tax_id").to_string(),
            tier: get("tier").to_string(),
            model: get("model").to_string(),
            purchased_on,
            shipped_on,
            warranty_until,
            extended_until,
            plans,
            tickets_per_year,
            extended_on,
            plans_on,
            technician: get("technician").to_string(),
        }),
        _ => Err(problems),
    }
}

// ----- lookup ---------------------------------------------------------------

/// Contracts in memory, indexed the way a mail looks them up.
#[derive(Debug, Clone, Default)]
pub struct ContractBook {
    contracts: Vec<Contract>,
    by_serial: HashMap<String, usize>,
    by_email: HashMap<String, Vec<usize>>,
    by_tax: HashMap<String, Vec<usize>>,
}

impl ContractBook {
    /// Indexes `contracts`; of two with the same serial key the later one is kept,
    /// as a re-import would leave it.
    pub fn new(contracts: Vec<Contract>) -> Self {
        let mut latest: HashMap<String, usize> = HashMap::new();
        for (i, c) in contracts.iter().enumerate() {
            latest.insert(serial_key(&c.serial), i);
        }
        let mut book = ContractBook::default();
        for (i, c) in contracts.into_iter().enumerate() {
            let key = serial_key(&c.serial);
            if key.is_empty() || latest.get(&key) != Some(&i) {
                continue;
            }
            let at = book.contracts.len();
            book.by_serial.insert(key, at);
            let email = address_key(&c.email);
            if !email.is_empty() {
                book.by_email.entry(email).or_default().push(at);
            }
            let tax = tax_id_key(&c.tax_id);
            if !tax.is_empty() {
                book.by_tax.entry(tax).or_default().push(at);
            }
            book.contracts.push(c);
        }
        book
    }

    pub fn len(&self) -> usize {
        self.contracts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.contracts.is_empty()
    }

    fn best(&self, rows: Option<&Vec<usize>>) -> Option<&Contract> {
        rows?
            .iter()
            .map(|&i| &self.contracts[i])
            .min_by(|a, b| preferred(a, b))
    }

    /// The contract of a mail: by the first of `serials` that has one, else by the
    /// `sender`'s address, else by the first of `tax_ids` that has one.
    pub fn find(
        &self,
        serials: &[String],
        sender: &str,
        tax_ids: &[String],
    ) -> Option<ContractMatch> {
        let hit = |c: &Contract, by| {
            Some(ContractMatch {
                contract: c.clone(),
                by,
            })
        };
        for s in serials {
            if let Some(&i) = self.by_serial.get(&serial_key(s)) {
                return hit(&self.contracts[i], MatchedBy::Serial);
            }
        }
        let sender = address_key(sender);
        if !sender.is_empty()
            && let Some(c) = self.best(self.by_email.get(&sender))
        {
            return hit(c, MatchedBy::Email);
        }
        for t in tax_ids {
            let key = tax_id_key(t);
            if key.is_empty() {
                continue;
            }
            if let Some(c) = self.best(self.by_tax.get(&key)) {
                return hit(c, MatchedBy::TaxId);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "serial,email,company,tax_id,tier,model,purchased_on";

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn reads_quoting_bom_crlf_and_columns_in_any_order() {
        let text = "\u{feff}model,serial,purchased_on,email,company,tax_id,tier,plans,tickets_per_year\r\n\
            TS-453D,Q23A0001,2025-03-01,Ann@Example.COM,\"Acme, Inc.\",ES B12345678,gold,advanced_replacement; Onsite,5\r\n\
            \"TS-\"\"x\"\"\",q23a0002,2025-04-01,,\"Two\r\nlines\",,silver,,\n";
        let cs = parse_csv(text, "c.csv").unwrap();
        assert_eq!(cs.len(), 2);
        assert_eq!(cs[0].serial, "Q23A0001");
        assert_eq!(cs[0].email, "ann@example.com");
        assert_eq!(cs[0].company, "Acme, Inc.");
        assert_eq!(cs[0].plans, vec!["advanced_replacement", "onsite"]);
        assert_eq!(cs[0].tickets_per_year, Some(5));
        assert_eq!(cs[0].purchased_on, d("2025-03-01"));
        assert_eq!(cs[1].model, "TS-\"x\"");
        assert_eq!(cs[1].company, "Two\nlines");
        assert_eq!(cs[1].email, "");
        assert!(cs[1].plans.is_empty());
    }

    #[test]
    fn reports_every_bad_row_with_its_line() {
        let text = format!(
            "{HEADER},shipped_on\n\
             A1,a@x.test,A,,gold,M,2025-01-01,\n\
             ,b@x.test,B,,gold,M,2025-01-01,\n\
             A3,c@x.test,C,,gold,M,2025-02-30,\n\
             \"multi\nline\",d@x.test,D,,gold,M,2025-01-01,2025/01/02\n\
             a1,e@x.test,E,,gold,M,2025-01-01,\n\
             A6,f@x.test,F\n\
             A7,g@x.test,\"G\"x,,gold,M,2025-01-01,\n\
             A8,noaddress,H,,gold,M,2025-01-01,\n"
        );
        let errs = parse_csv(&text, "c.csv").unwrap_err();
        assert_eq!(
            errs,
            vec![
                "c.csv:3: empty serial",
                "c.csv:4: purchased_on `2025-02-30` is not a date (YYYY-MM-DD)",
                "c.csv:5: shipped_on `2025/01/02` is not a date (YYYY-MM-DD)",
                "c.csv:7: serial `a1` is already on line 2",
                "c.csv:8: 3 fields, but the header has 8",
                "c.csv:9: text after the closing quote of a field (a quote inside a quoted field is written twice)",
                "c.csv:10: email `noaddress` is not an address",
            ]
        );
    }

    #[test]
    fn a_quoted_field_may_hold_a_newline_and_a_comma_and_a_bad_row_counts_from_its_first_line() {
        let text = format!(
            "{HEADER},plans\r\n\
             Q1,a@x.test,\"Acme,\r\nSupport, 2nd floor\",ES B1,gold,TS-1,2025-01-01,\"onsite;\nadvanced_replacement\"\r\n\
             \r\n\
             \n\
             Q2,b@x.test,\"Two\nlines, one comma\",,gold,TS-2,2025-13-01,\r\n\
             Q3,c@x.test,\"three\rline\rcompany\",,gold,TS-3,2025-01-01,x\n\
             Q4,d@x.test,\"open\n"
        );
        let errs = parse_csv(&text, "c.csv").unwrap_err();
        assert_eq!(
            errs,
            vec![
                "c.csv:7: purchased_on `2025-13-01` is not a date (YYYY-MM-DD)",
                "c.csv:12: a quoted field is not closed before the end of the file",
            ]
        );
        let good = text.split("Q2,").next().unwrap();
        let cs = parse_csv(good, "c.csv").unwrap();
        assert_eq!(cs.len(), 1);
        assert_eq!(cs[0].company, "Acme,\nSupport, 2nd floor");
        assert_eq!(cs[0].plans, vec!["onsite", "advanced_replacement"]);
    }

    #[test]
    fn rejects_an_unknown_or_missing_column_and_a_missing_header() {
        let errs = parse_csv(
            "serial,email,company,tax_id,tier,purchased_on,colour\n",
            "c.csv",
        )
        .unwrap_err();
        assert!(
            errs[0].starts_with("c.csv:1: unknown column `colour`"),
            "{errs:?}"
        );
        assert_eq!(errs[1], "c.csv:1: missing column `model`");
        let errs = parse_csv("serial,\"email\"x\nA,b\n", "c.csv").unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with("c.csv:1: text after the closing quote"),
            "{errs:?}"
        );
        let errs = parse_csv("", "c.csv").unwrap_err();
        assert!(errs[0].starts_with("c.csv:1: no header row"), "{errs:?}");
        let errs = parse_csv(&format!("{HEADER}\nA,\"open,x,x,x,x,x\n"), "c.csv").unwrap_err();
        assert_eq!(
            errs,
            vec!["c.csv:2: a quoted field is not closed before the end of the file"]
        );
    }

    proptest::proptest! {
        /// Whatever the file holds, reading it gives contracts or line-numbered problems.
        #[test]
        fn any_text_gives_contracts_or_numbered_problems(body in "[a-c0-9,\"\r\n;@ -]{0,200}") {
            let text = format!("{HEADER}\n{body}");
            match parse_csv(&text, "f.csv") {
                Ok(cs) => proptest::prop_assert!(cs.iter().all(|c| !c.serial.is_empty())),
                Err(errs) => proptest::prop_assert!(
                    !errs.is_empty() && errs.iter().all(|e| e.starts_with("f.csv:"))
                ),
            }
        }
    }

    #[test]
    fn header_only_and_blank_lines_give_no_contracts() {
        assert!(
            parse_csv(&format!("{HEADER}\n\n\r\n"), "c.csv")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn tax_id_keys_ignore_case_punctuation_and_country_prefix() {
        for t in [
            "ES B12345678",
            "esb12345678",
            "B-12.345.678",
            "ES-B12345678",
            "B12345678",
        ] {
            assert_eq!(tax_id_key(t), "B12345678", "{t}");
        }
        assert_eq!(tax_id_key("DE 123 456 789"), "123456789");
        assert_eq!(tax_id_key("12-3456789"), "123456789");
        // Two letters that are not followed by a long enough number stay.
        assert_eq!(tax_id_key("ES1234"), "ES1234");
    }

    fn c(serial: &str, email: &str, tax: &str, purchased: &str) -> Contract {
        Contract {
            serial: serial.into(),
            email: email.into(),
            tax_id: tax.into(),
            purchased_on: d(purchased),
            ..Contract::default()
        }
    }

    #[test]
    fn finds_by_serial_then_sender_then_tax_id() {
        let book = ContractBook::new(vec![
            c("Q23A0001", "ann@acme.test", "", "2024-01-01"),
            c("Q23A0002", "ann@acme.test", "", "2025-01-01"),
            c("AV7-000123", "", "ES B12345678", "2025-06-01"),
            c("AV7-000124", "", "B12345678", "2025-06-01"),
        ]);
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let m = book
            .find(&s(&["NOPE", "q23a0001"]), "ann@acme.test", &[])
            .unwrap();
        assert_eq!(
            (m.contract.serial.as_str(), m.by),
            ("Q23A0001", MatchedBy::Serial)
        );
        // Several contracts for one address: the most recent purchase.
        let m = book
            .find(
                &s(&["NOPE"]),
                "Ann Smith <ANN@acme.test>",
                &s(&["B12345678"]),
            )
            .unwrap();
        assert_eq!(
            (m.contract.serial.as_str(), m.by),
            ("Q23A0002", MatchedBy::Email)
        );
        // Same purchase date: the smaller serial.
        let m = book
            .find(&[], "bob@other.test", &s(&["X", "esb-12345678"]))
            .unwrap();
        assert_eq!(
            (m.contract.serial.as_str(), m.by),
            ("AV7-000123", MatchedBy::TaxId)
        );
        assert!(book.find(&s(&["Z"]), "", &s(&[""])).is_none());
        // A contract without an address is never found by an empty sender.
        assert!(book.find(&[], "", &[]).is_none());
    }
}
