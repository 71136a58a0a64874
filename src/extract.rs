//! Identifiers in a mail: ticket IDs, serial numbers, invoice numbers, RMA codes and tax IDs.

use crate::pack::Patterns;
use crate::parse::Inbound;
use crate::thread;
use regex::Regex;
use serde::Serialize;

/// What was found, each list in order of first appearance, without repeats.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Extracted {
    pub ticket_ids: Vec<String>,
    pub serials: Vec<String>,
    pub invoices: Vec<String>,
    pub rma_codes: Vec<String>,
    pub tax_ids: Vec<String>,
}

/// How much of the body is searched: identifiers sit near the top.
const SCAN_LIMIT: usize = 256 * 1024;

fn push_unique(out: &mut Vec<String>, v: &str) {
    let v = v.trim().trim_end_matches(['.', ',', ';', ':', ')', '-']);
    if v.is_empty() || v.len() > 64 {
        return;
    }
    if !out.iter().any(|x| x.eq_ignore_ascii_case(v)) {
        out.push(v.to_string());
    }
}

fn find_all(patterns: &[Regex], haystacks: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for h in haystacks {
        for re in patterns {
            for caps in re.captures_iter(h).take(50) {
                let m = caps.get(1).or_else(|| caps.get(0));
                if let Some(m) = m {
                    push_unique(&mut out, m.as_str());
                }
            }
        }
    }
    out
}

fn scan_text(text: &str) -> &str {
    if text.len() <= SCAN_LIMIT {
        return text;
    }
    let mut end = SCAN_LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Finds identifiers in the subject and the text of `m`.
pub fn extract(m: &Inbound, patterns: &Patterns, ticket_prefix: &str) -> Extracted {
    let text = scan_text(&m.text);
    let hay = [m.subject.as_str(), text];
    let mut ticket_ids = Vec::new();
    if let Some(id) = thread::tag_in(&m.subject, ticket_prefix) {
        push_unique(&mut ticket_ids, &id.to_string());
    }
    for id in thread::tags_in_text(text, ticket_prefix) {
        push_unique(&mut ticket_ids, &id.to_string());
    }
    for id in find_all(&patterns.ticket, &hay) {
        push_unique(&mut ticket_ids, &id);
    }
    Extracted {
        ticket_ids,
        serials: find_all(&patterns.serial, &hay),
        invoices: find_all(&patterns.invoice, &hay),
        rma_codes: find_all(&patterns.rma, &hay),
        tax_ids: find_all(&patterns.tax_id, &hay),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pack::Pack;
    use crate::parse::parse;

    fn ex(subject: &str, body: &str) -> Extracted {
        let raw = format!(
            "From: a@example.net\r\nSubject: {subject}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
        );
        extract(
            &parse(raw.as_bytes(), chrono::DateTime::UNIX_EPOCH),
            &Pack::fallback().patterns,
            "TKT",
        )
    }

    #[test]
    fn finds_each_kind_of_identifier() {
        let e = ex(
            "Re: [TKT#42] disk",
            "Serial number: Q19C1234567\nInvoice no. INV-2026-0042\nRMA: RMA-77812\nCIF: B12345678\nVAT number ES B87654321\n",
        );
        assert_eq!(e.ticket_ids, vec!["42"]);
        assert_eq!(e.serials, vec!["Q19C1234567"]);
        assert_eq!(e.invoices, vec!["INV-2026-0042"]);
        assert_eq!(e.rma_codes, vec!["RMA-77812"]);
        assert!(
            e.tax_ids.contains(&"B12345678".to_string()),
            "{:?}",
            e.tax_ids
        );
    }

    #[test]
    fn a_number_after_case_in_prose_is_not_a_ticket_reference() {
        for prose in [
            "We keep a spare in case 2 disks fail at once.",
            "In any case 3 of the bays are empty.",
            "Case 4 of the manual says to reboot.",
        ] {
            assert!(ex("Question", prose).ticket_ids.is_empty(), "{prose}");
        }
        for (reference, id) in [
            ("What is the status of ticket 4711?", "4711"),
            ("Re case #88: any news?", "88"),
            ("Case no. 12 is still open.", "12"),
            ("Tracking number 305, please.", "305"),
            ("¿Cómo va la incidencia 77?", "77"),
        ] {
            assert_eq!(ex("Status", reference).ticket_ids, vec![id], "{reference}");
        }
    }

    #[test]
    fn finds_japanese_and_spanish_labels() {
        let e = ex("故障", "シリアル番号：Q21AB99887\n請求書番号: 2026-0301\n");
        assert_eq!(e.serials, vec!["Q21AB99887"]);
        assert_eq!(e.invoices, vec!["2026-0301"]);
        let e = ex(
            "Avería",
            "Número de serie: AV7-000123\nFactura nº F2026/118\n",
        );
        assert_eq!(e.serials, vec!["AV7-000123"]);
        assert_eq!(e.invoices, vec!["F2026/118"]);
    }

    #[test]
    fn a_pack_can_set_its_own_patterns() {
        let text = "[pack]\nname = \"v\"\nvendor = \"V\"\nlanguage = \"en\"\nzone = \"UTC\"\n[extract]\nserial = ['\\b(XS-\\d{6})\\b']\n";
        let pack = Pack::from_str_at(std::path::Path::new("v.toml"), text).unwrap();
        let raw = "From: a@example.net\r\nSubject: x\r\n\r\nbox XS-123456 and serial: NOTTHIS1\r\n";
        let e = extract(
            &parse(raw.as_bytes(), chrono::DateTime::UNIX_EPOCH),
            &pack.patterns,
            "TKT",
        );
        assert_eq!(e.serials, vec!["XS-123456"]);
    }
}
