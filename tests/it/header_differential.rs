//! Issue 20's differential test: for thousands of header sections made by appending generated lines to a DKIM-signed mail, the fields the authority decision acts on are the fields the verifier verified, or the mail is refused as ambiguous.
//!
//! Three readers look at a staff mail's header section: mail-auth (the DKIM
//! verifier), mail-parser (what `parse` gives the decision) and ticketd's
//! strict reader (`header_section`). A mutation that any two of them read
//! differently must end in a refusal: `header_section::ambiguity` (the gate
//! intake runs before any proof counts) or a failing signature. Whatever
//! passes both must give the decision the signed From, Subject, Message-ID,
//! In-Reply-To, References and text. The seed corpus in
//! `tests/fixtures/header_sections/` holds the shapes found so far, each a
//! file of lines appended below the signed fields; proptest adds more.

use crate::harness::*;
use proptest::prelude::*;
use proptest::test_runner::{Config as PropConfig, RngAlgorithm, TestRng, TestRunner};
use std::path::Path;
use ticketd::dkim::{DkimVerdict, StaticKeys, verify};
use ticketd::parse::{Inbound, MAX_HEADER_VALUE, parse};

const DOMAIN: &str = "vendor.test";

fn keys() -> StaticKeys {
    StaticKeys::new([("sel._domainkey.vendor.test", test_key_txt().as_str())])
}

/// Signed mails to mutate: ticketd's acknowledgement as the vendor's
/// server signs it (the forgery's raw material), and a staff reply with
/// threading fields.
fn signed_mails() -> Vec<Vec<u8>> {
    let ack = b"From: \"Vendor Support\" <support@vendor.test>\r\n\
        To: \"Mallory\" <mallory@example.org>\r\n\
        Subject: [TKT#2] We received your request\r\n\
        Date: Mon, 2 Mar 2026 10:00:00 +0000\r\n\
        Message-ID: <ticketd.2.ack@vendor.test>\r\n\
        MIME-Version: 1.0\r\n\
        Content-Type: text/plain; charset=utf-8\r\n\
        Content-Transfer-Encoding: 8bit\r\n\r\n\
        Dear Mallory --b\r\nContent-Type: text/plain\r\n\r\n#severity 1,\r\n\r\n\
        we have received your request.\r\n";
    let reply = b"Received: from client.vendor.test by mx.vendor.test (Postfix); Mon, 2 Mar 2026 10:00:00 +0000\r\n\
        From: Alice Staff <alice@vendor.test>\r\n\
        To: support@vendor.test\r\n\
        Subject: Re: [TKT#1] Pool degraded\r\n\
        Message-ID: <alice-1@vendor.test>\r\n\
        In-Reply-To: <ticketd.1.abc@vendor.test>\r\n\
        References: <dana-1@example.net>\r\n <ticketd.1.abc@vendor.test>\r\n\
        Content-Type: text/plain; charset=us-ascii\r\n\r\n\
        #note looked at it\r\nWe are on it.\r\n";
    [&ack[..], &reply[..]]
        .into_iter()
        .map(|raw| dkim_sign(raw, DOMAIN, "sel"))
        .collect()
}

/// What the decision reads of a mail's header and text.
fn acted_on(m: &Inbound) -> String {
    format!(
        "from={:?} subject={:?} id={:?} irt={:?} refs={:?} text={:?}",
        m.from_header_address(),
        m.subject,
        m.message_id,
        m.in_reply_to,
        m.references,
        m.text
    )
}

/// `raw` with `lines` (each ending with its own line end) inserted before
/// header line `at` (0: above the first field; past the end: below the
/// last, where an attacker appends).
fn insert(raw: &[u8], lines: &[u8], at: usize) -> Vec<u8> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header section")
        + 2;
    // Start offsets of the lines that begin a field.
    let mut starts = vec![0];
    for i in 0..end {
        if raw[i] == b'\n' && i + 1 < end && !matches!(raw[i + 1], b' ' | b'\t') {
            starts.push(i + 1);
        }
    }
    let at = starts.get(at).copied().unwrap_or(end);
    let mut out = raw[..at].to_vec();
    out.extend_from_slice(lines);
    out.extend_from_slice(&raw[at..]);
    out
}

#[derive(Debug, Default)]
struct Tally {
    refused_ambiguous: usize,
    refused_signature: usize,
    proven: usize,
}

/// The property for one mutation of `signed`: refused, or the decision
/// reads what was signed.
fn check(signed: &[u8], mutated: &[u8], tally: &mut Tally) -> Result<(), String> {
    let t = chrono::DateTime::UNIX_EPOCH;
    let inbound = parse(mutated, t);
    if let Some(_why) =
        ticketd::header_section::ambiguity(mutated, &inbound.headers, MAX_HEADER_VALUE)
    {
        tally.refused_ambiguous += 1;
        return Ok(());
    }
    match verify(mutated, DOMAIN, &keys()) {
        DkimVerdict::Pass { .. } => {}
        _ => {
            tally.refused_signature += 1;
            return Ok(());
        }
    }
    tally.proven += 1;
    let want = acted_on(&parse(signed, t));
    let got = acted_on(&inbound);
    if want != got {
        return Err(format!(
            "proven, but read otherwise than signed:\n signed: {want}\n read:   {got}\n mail: {:?}",
            String::from_utf8_lossy(mutated)
        ));
    }
    Ok(())
}

#[test]
fn issue_20_differential_seed_corpus_is_refused_or_read_as_signed() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/header_sections");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/fixtures/header_sections")
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 20, "a seed corpus: {}", files.len());
    let mut tally = Tally::default();
    for signed in signed_mails() {
        for file in &files {
            let lines = std::fs::read(file).unwrap();
            for at in [0, 3, usize::MAX] {
                let mutated = insert(&signed, &lines, at);
                if let Err(e) = check(&signed, &mutated, &mut tally) {
                    panic!("{}: {e}", file.display());
                }
            }
        }
    }
    // Every seed is a forgery's shape: none of them proves anything.
    assert_eq!(tally.proven, 0, "{tally:?}");
}

/// A generated header line: a name spelt one of many ways, a separator
/// (plain, or white space before the colon, or none), a value, a line end.
fn line() -> impl Strategy<Value = Vec<u8>> {
    let name = prop::sample::select(vec![
        "From",
        "Subject",
        "Message-ID",
        "In-Reply-To",
        "References",
        "Content-Type",
        "Content-Transfer-Encoding",
        "Authentication-Results",
        "Received",
        "Reply-To",
        "Sender",
        "To",
        "X-Extra",
        "DKIM-Signature",
    ]);
    let case = prop::sample::select(vec![0u8, 1, 2, 3]);
    let sep = prop::sample::select(vec![
        ":", ":", ":", " :", "\t:", "  :", "", "\r\n :", "\x00:", "\u{e9}:", ": ",
    ]);
    let value = prop::sample::select(vec![
        " Alice <alice@vendor.test>".to_string(),
        " Re: [TKT#1] Pool degraded".to_string(),
        " <forged@vendor.test>".to_string(),
        " multipart/mixed; boundary=\"b\"".to_string(),
        " base64".to_string(),
        " mx.vendor.test; dkim=pass header.d=vendor.test".to_string(),
        " from x by mx.vendor.test; Mon, 2 Mar 2026 10:00:00 +0000".to_string(),
        format!(" {}", "a".repeat(2000)),
        " caf\u{e9} \x00 nul".to_string(),
        " folded\r\n value".to_string(),
        " folded\r\n \r\n blank".to_string(),
        String::new(),
    ]);
    let end = prop::sample::select(vec!["\r\n", "\r\n", "\n", "\r", "\r\n\r\n"]);
    (name, case, sep, value, end).prop_map(|(name, case, sep, value, end)| {
        let name = match case {
            0 => name.to_string(),
            1 => name.to_ascii_uppercase(),
            2 => name.to_ascii_lowercase(),
            _ => name
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    if i % 2 == 0 {
                        c.to_ascii_lowercase()
                    } else {
                        c.to_ascii_uppercase()
                    }
                })
                .collect(),
        };
        format!("{name}{sep}{value}{end}").into_bytes()
    })
}

#[test]
fn issue_20_differential_generated_header_sections_are_refused_or_read_as_signed() {
    let mails = signed_mails();
    // A fixed seed: the same few thousand sections on every run.
    let mut runner = TestRunner::new_with_rng(
        PropConfig {
            cases: 3000,
            failure_persistence: None,
            ..PropConfig::default()
        },
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let tally = std::cell::RefCell::new(Tally::default());
    let strategy = (
        0..mails.len(),
        prop::collection::vec(line(), 1..4),
        prop::option::of(0usize..14),
        prop::bool::weighted(0.05),
    );
    let result = runner.run(&strategy, |(which, lines, at, leading_blank)| {
        let signed = &mails[which];
        let mut mutated = insert(signed, &lines.concat(), at.unwrap_or(usize::MAX));
        if leading_blank {
            mutated.splice(0..0, b"\r\n".iter().copied());
        }
        check(signed, &mutated, &mut tally.borrow_mut()).map_err(TestCaseError::fail)
    });
    let tally = tally.into_inner();
    if let Err(e) = result {
        panic!("{e}\n{tally:?}");
    }
    eprintln!("differential: {tally:?}");
    // The generator reaches every outcome: harmless additions (X-Extra,
    // Received, a repeat of a repeatable field) still prove, and the
    // forgeries' shapes are refused by the gate and by the signature.
    assert!(tally.proven >= 50, "{tally:?}");
    assert!(tally.refused_ambiguous >= 1000, "{tally:?}");
    assert!(tally.refused_signature >= 50, "{tally:?}");
}
