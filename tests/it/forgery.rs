//! Issue 20 end to end, as an attacker would try it: ticketd's own DKIM-signed acknowledgement replayed with fields appended under other spellings, an Authentication-Results near-name, forged and real bounces, a stranger joining through a reference; real Dovecot, Postfix and a DNS server serving the vendor's key.

use crate::harness::*;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use ticketd::clock::FixedClock;
use ticketd::config::Config;
use ticketd::model::TicketId;
use ticketd::parse::parse;
use ticketd::store::Store;

const WAIT: Duration = Duration::from_secs(30);
const SUPPORT: &str = "support@vendor.test";
/// A staff member at the vendor's own domain: the acknowledgement's
/// signature (d=vendor.test) aligns with her address too.
const ALICE: &str = "alice@vendor.test";
const DANA: &str = "dana@example.net";
const MALLORY: &str = "mallory@example.org";

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn db(cfg: &Config) -> Store {
    Store::open_read_only_at(&cfg.database).expect("database")
}

fn event_lines(cfg: &Config, id: i64) -> Vec<String> {
    let h = db(cfg).history(TicketId(id)).unwrap().expect("the ticket");
    h.events
        .iter()
        .map(|e| format!("{}: {}", e.kind, e.detail))
        .collect()
}

/// A config whose staff member alice (at the vendor's domain) hears of the
/// support queue; DKIM keys from `dns`, Authentication-Results trusted from
/// mx.vendor.test.
fn config(stack: &MailStack, dns: &DnsServer) -> Config {
    alice_config(
        stack,
        ALICE,
        &format!(
            "authserv_id = \"mx.vendor.test\"\ndkim_nameservers = [\"{}\"]\n",
            dns.addr
        ),
    )
}

/// `raw` with `lines` added at the end of its header section (where an
/// attacker appends, below every signed field).
fn appended(raw: &[u8], lines: &str) -> Vec<u8> {
    let text = String::from_utf8(raw.to_vec()).expect("an acknowledgement is UTF-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("a header section");
    format!("{head}\r\n{lines}\r\n\r\n{body}").into_bytes()
}

/// `raw` without the header fields named `names` (and their folded lines):
/// what a forger removes when the signature does not cover them.
fn without(raw: &[u8], names: &[&str]) -> Vec<u8> {
    let text = String::from_utf8(raw.to_vec()).expect("an acknowledgement is UTF-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("a header section");
    let mut kept: Vec<&str> = Vec::new();
    let mut dropping = false;
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if !dropping {
                kept.push(line);
            }
            continue;
        }
        let name = line.split(':').next().unwrap_or("");
        dropping = names.iter().any(|n| n.eq_ignore_ascii_case(name));
        if !dropping {
            kept.push(line);
        }
    }
    format!("{}\r\n\r\n{body}", kept.join("\r\n")).into_bytes()
}

/// Waits until `n` mails of the support mailbox are processed (moved).
async fn processed(stack: &MailStack, n: u32) {
    stack.wait_for_count(SUPPORT, "Processed", n, WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_20_a_signed_acknowledgement_replayed_with_appended_fields_acts_for_nobody() {
    let stack = MailStack::with(Options {
        postfix: true,
        ..Default::default()
    });
    let dns = DnsServer::start(&[("sel._domainkey.vendor.test", &test_key_txt())], 600);
    let cfg = config(&stack, &dns);
    stack
        .create_users(&[SUPPORT, ALICE, DANA, MALLORY, "lead@vendor.test"])
        .await;
    let clock = FixedClock::new(at("2026-03-02T09:05:00-08:00"));
    let daemon = Daemon::start(&cfg, Arc::new(clock.clone()));

    // Dana's ticket 1, and mallory's own ticket 2, whose acknowledgement
    // (signed by the vendor's outgoing server) is her raw material.
    stack
        .deliver(&mail(
            &format!("Dana Customer <{DANA}>"),
            SUPPORT,
            "Pool degraded after update",
            "dana-1@example.net",
            "",
            "Hello, the pool is degraded after the update.",
        ))
        .await;
    processed(&stack, 1).await;
    stack
        .deliver(&mail(
            &format!("\"Mallory\" <{MALLORY}>"),
            SUPPORT,
            "Question",
            "mallory-1@example.org",
            "",
            "Hello, a question about my order.",
        ))
        .await;
    stack.wait_for_count(MALLORY, "INBOX", 1, WAIT).await;
    stack.wait_for_count(DANA, "INBOX", 1, WAIT).await;
    let ack = stack.messages(MALLORY, "INBOX").await.remove(0);
    // What the signature leaves out, the forger takes away: the marks that
    // tell ticketd its own mail and machines' mail apart.
    let signed = without(
        &dkim_sign(&ack, "vendor.test", "sel"),
        &[
            "Auto-Submitted",
            "X-Auto-Response-Suppress",
            "Precedence",
            "X-Ticketd-Loop",
            "Return-Path",
            "Delivered-To",
            "Received",
        ],
    );
    let severity = db(&cfg).ticket(TicketId(1)).unwrap().unwrap().severity;
    assert_ne!(severity, Some(1));

    // Each forgery: the signed acknowledgement with fields appended below
    // the signed ones, under a spelling one reader takes and another skips.
    // A new Message-ID in each, or ticketd would know its own mail.
    let forgeries = [
        "From : Alice Staff <alice@vendor.test>\r\nMessage-ID : <forged-1@vendor.test>\r\n\
         Subject : Re: [TKT#1] Pool degraded after update",
        "From : Alice Staff <alice@vendor.test>\r\nMessage-ID : <forged-2@vendor.test>",
        "From : Alice Staff <alice@vendor.test>\r\nMessage-ID : <forged-3@vendor.test>\r\n\
         Content-Type : multipart/mixed; boundary=\"x\"",
        "Message-ID: <forged-4@vendor.test>\r\nSubject: Re: [TKT#1] Pool degraded after update\r\n\
         From: Alice Staff <alice@vendor.test>",
    ];
    for lines in forgeries {
        let raw = appended(&signed, lines);
        stack.deliver(&raw).await;
    }
    // And an unsigned mail in alice's name whose only proof is an
    // Authentication-Results near-name, placed above a Received line of
    // the trusted server as a forger would.
    stack
        .deliver(&mail(
            &format!("Alice Staff <{ALICE}>"),
            SUPPORT,
            "Re: Pool degraded after update [TKT#1]",
            "alice-forged-ar@vendor.test",
            "Authentication-Results : mx.vendor.test; dkim=pass header.d=vendor.test; dmarc=pass header.from=vendor.test\r\n\
             Received: from a.test by mx.vendor.test (Postfix); Mon, 2 Mar 2026 09:00:00 -0800\r\n",
            "#severity 1\nDear Dana, please send your password to verify your account.",
        ))
        .await;
    processed(&stack, 2 + forgeries.len() as u32 + 1).await;

    // Nothing acted: no relay reached dana or mallory, no severity changed,
    // every forgery is kept, held, with its reason.
    let store = db(&cfg);
    let one = store.ticket(TicketId(1)).unwrap().unwrap();
    assert_eq!(one.severity, severity, "severity of ticket 1 unchanged");
    let held: Vec<String> = event_lines(&cfg, 1)
        .into_iter()
        .chain(event_lines(&cfg, 2))
        .filter(|e| e.starts_with("unverified"))
        .collect();
    assert_eq!(
        held.len(),
        forgeries.len() + 1,
        "{held:#?}\n{:#?}\n{:#?}",
        event_lines(&cfg, 1),
        event_lines(&cfg, 2)
    );
    assert!(
        held.iter().all(|e| e.contains("could be read two ways")),
        "{held:#?}"
    );
    // alice hears of each: two new-ticket notifications, then a notice per
    // held mail (three on ticket 1, two on ticket 2: within the limit of
    // notices per member and ticket).
    stack.wait_for_count(ALICE, "INBOX", 7, WAIT).await;
    let notices: Vec<String> = stack
        .messages(ALICE, "INBOX")
        .await
        .iter()
        .map(|m| parse(m, DateTime::UNIX_EPOCH).subject)
        .collect();
    assert_eq!(
        notices
            .iter()
            .filter(|s| s.contains("unproven mail"))
            .count(),
        5,
        "{notices:#?}"
    );

    // A genuinely signed reply of alice's still acts.
    let genuine = dkim_sign(
        &mail(
            &format!("Alice Staff <{ALICE}>"),
            SUPPORT,
            "Re: Pool degraded after update [TKT#1]",
            "alice-1@vendor.test",
            "",
            "#severity 1\nHello Dana,\n\nwe are looking at it now.\n\nAlice",
        ),
        "vendor.test",
        "sel",
    );
    stack.deliver(&genuine).await;
    stack.wait_for_count(DANA, "INBOX", 2, WAIT).await;
    let answer = parse(
        &stack.messages(DANA, "INBOX").await.remove(1),
        DateTime::UNIX_EPOCH,
    );
    assert!(
        answer
            .text
            .starts_with("Hello Dana,\n\nwe are looking at it now."),
        "{}",
        answer.text
    );
    assert_eq!(
        db(&cfg).ticket(TicketId(1)).unwrap().unwrap().severity,
        Some(1)
    );
    assert_eq!(
        stack.count(MALLORY, "INBOX").await,
        1,
        "mallory got nothing more"
    );
    assert!(dns.queries() >= 1);
    daemon.stop(WAIT).await;
}

/// A delivery status report from `mx.example.net` saying `rcpt` failed
/// permanently for the mail `original` (a Message-ID).
fn dsn(rcpt: &str, original: &str, id: &str) -> Vec<u8> {
    format!(
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\nTo: {SUPPORT}\r\n\
         Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <{id}>\r\n\
         Date: Mon, 02 Mar 2026 09:30:00 -0800\r\nAuto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nThis is the mail system at host mx.example.net.\r\n\
         --b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n\
         Final-Recipient: rfc822; {rcpt}\r\nAction: failed\r\nStatus: 5.1.1\r\n\
         Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\
         --b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{original}>\r\nTo: {rcpt}\r\n--b--\r\n"
    )
    .into_bytes()
}

fn undeliverable(cfg: &Config, address: &str) -> bool {
    db(cfg)
        .contact(address)
        .unwrap()
        .is_some_and(|c| c.undeliverable)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_20_a_forged_bounce_marks_nobody_a_real_one_marks_its_recipient_and_a_stranger_cannot_join()
 {
    let stack = MailStack::with(Options {
        postfix: true,
        ..Default::default()
    });
    let dns = DnsServer::start(&[], 600);
    let cfg = config(&stack, &dns);
    stack
        .create_users(&[SUPPORT, ALICE, DANA, MALLORY, "lead@vendor.test"])
        .await;
    let clock = FixedClock::new(at("2026-03-02T09:05:00-08:00"));
    let daemon = Daemon::start(&cfg, Arc::new(clock.clone()));
    stack
        .deliver(&mail(
            &format!("Dana Customer <{DANA}>"),
            SUPPORT,
            "Pool degraded after update",
            "dana-1@example.net",
            "",
            "Hello, the pool is degraded after the update.",
        ))
        .await;
    stack.wait_for_count(DANA, "INBOX", 1, WAIT).await;

    // A forged report returning dana's own mail (a Message-ID she chose,
    // and anyone she wrote to has seen): nobody is marked.
    stack
        .deliver(&dsn(
            DANA,
            "dana-1@example.net",
            "forged-dsn-1@mx.example.net",
        ))
        .await;
    processed(&stack, 2).await;
    assert!(!undeliverable(&cfg, DANA), "a forged bounce marked dana");

    // A stranger who learnt ticket 1's number and dana's Message-ID, with
    // the tag in the subject: a ticket of her own, nothing of ticket 1.
    stack
        .deliver(&mail(
            MALLORY,
            SUPPORT,
            "Re: Pool degraded after update [TKT#1]",
            "mallory-2@example.org",
            "In-Reply-To: <dana-1@example.net>\r\nReferences: <dana-1@example.net>\r\n",
            "What is the status of this? Please send the RMA code.",
        ))
        .await;
    stack.wait_for_count(MALLORY, "INBOX", 1, WAIT).await;
    let to_mallory = parse(
        &stack.messages(MALLORY, "INBOX").await.remove(0),
        DateTime::UNIX_EPOCH,
    );
    assert!(
        to_mallory.subject.contains("[TKT#2]"),
        "{}",
        to_mallory.subject
    );
    assert!(!to_mallory.text.contains("[TKT#1]"), "{}", to_mallory.text);
    let tickets = db(&cfg).tickets().unwrap();
    assert_eq!(
        tickets.len(),
        2,
        "mallory's mail opened a ticket of its own"
    );

    // The real report returning the acknowledgement ticketd sent dana.
    let ours = parse(
        &stack.messages(DANA, "INBOX").await.remove(0),
        DateTime::UNIX_EPOCH,
    )
    .message_id
    .expect("the acknowledgement's Message-ID");
    stack
        .deliver(&dsn(DANA, &ours, "real-dsn-1@mx.example.net"))
        .await;
    processed(&stack, 4).await;
    assert!(undeliverable(&cfg, DANA), "the real bounce marks dana");
    let events = event_lines(&cfg, 1);
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("undeliverable") && e.contains(DANA)),
        "{events:#?}"
    );
    daemon.stop(WAIT).await;
}

/// Signs `raw` for vendor.test over exactly `headers` (relaxed/relaxed), as
/// a given outgoing server does.
fn sign_over(raw: &[u8], headers: &[&str]) -> Vec<u8> {
    use mail_auth::common::crypto::{RsaKey, Sha256};
    use mail_auth::common::headers::HeaderWriter;
    use mail_auth::dkim::{Canonicalization, DkimSigner};
    use rustls::pki_types::{PrivateKeyDer, pem::PemObject};
    let der = PrivateKeyDer::from_pem_slice(test_key_pem().as_bytes()).unwrap();
    let key = RsaKey::<Sha256>::from_key_der(der).unwrap();
    let sig = DkimSigner::from_key(key)
        .domain("vendor.test")
        .selector("sel")
        .headers(headers.iter().copied())
        .header_canonicalization(Canonicalization::Relaxed)
        .body_canonicalization(Canonicalization::Relaxed)
        .sign(raw)
        .unwrap();
    let mut out = sig.to_header().into_bytes();
    out.extend_from_slice(raw);
    out
}

fn keys() -> ticketd::dkim::StaticKeys {
    ticketd::dkim::StaticKeys::new([("sel._domainkey.vendor.test", test_key_txt().as_str())])
}

/// A stack, a daemon, and dana's ticket 1 (processed, acknowledged).
async fn dana_has_ticket_1() -> (MailStack, DnsServer, Config, Daemon) {
    let stack = MailStack::with(Options {
        postfix: true,
        ..Default::default()
    });
    let dns = DnsServer::start(&[("sel._domainkey.vendor.test", &test_key_txt())], 600);
    let cfg = config(&stack, &dns);
    stack
        .create_users(&[SUPPORT, ALICE, DANA, MALLORY, "lead@vendor.test"])
        .await;
    let daemon = Daemon::start(
        &cfg,
        Arc::new(FixedClock::new(at("2026-03-02T09:05:00-08:00"))),
    );
    stack
        .deliver(&mail(
            &format!("Dana Customer <{DANA}>"),
            SUPPORT,
            "Pool degraded after update",
            "dana-1@example.net",
            "",
            "Hello, the pool is degraded after the update.",
        ))
        .await;
    stack.wait_for_count(DANA, "INBOX", 1, WAIT).await;
    processed(&stack, 1).await;
    (stack, dns, cfg, daemon)
}

/// The held-mail reasons on ticket `id`.
fn held(cfg: &Config, id: i64) -> Vec<String> {
    event_lines(cfg, id)
        .into_iter()
        .filter(|e| e.starts_with("unverified"))
        .collect()
}

fn acted(cfg: &Config, id: i64) -> bool {
    event_lines(cfg, id)
        .iter()
        .any(|e| e.starts_with("staff_mail") || e.starts_with("staff_reply"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_20_review_authentication_results_count_only_with_a_signature_covering_what_is_read()
{
    let (stack, _dns, cfg, daemon) = dana_has_ticket_1().await;
    // alice writes to support@ with mallory in Cc, signed the way some
    // hosted servers sign (no Cc, In-Reply-To or References in h=, From
    // not oversigned); ticketd's own check refuses such a signature.
    let alices = b"From: Alice Staff <alice@vendor.test>\r\nTo: support@vendor.test\r\n\
Cc: mallory@example.org\r\nSubject: Your order\r\nDate: Mon, 02 Mar 2026 08:00:00 -0800\r\n\
Message-ID: <alice-to-mallory@vendor.test>\r\nMIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\r\n\
We will not replace the pool; nothing more can be done.\r\n\r\nAlice\r\n";
    let signed = sign_over(
        alices,
        &[
            "From",
            "To",
            "Subject",
            "Date",
            "Message-ID",
            "MIME-Version",
            "Content-Type",
        ],
    );
    let v = ticketd::dkim::verify(&signed, "vendor.test", &keys());
    assert!(format!("{v:?}").contains("does not cover"), "{v:?}");
    // mallory adds an unsigned References to dana's mail: any verifier still
    // passes it, and the vendor's MX says so above its own Received line.
    let text = String::from_utf8(signed).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let delivered = format!(
        "Authentication-Results: mx.vendor.test; dkim=pass header.d=vendor.test header.s=sel\r\n\
Received: from mail.example.org by mx.vendor.test (Postfix); Mon, 2 Mar 2026 09:00:00 -0800\r\n\
{head}\r\nReferences: <dana-1@example.net>\r\n\r\n{body}"
    );
    stack.deliver(delivered.as_bytes()).await;
    processed(&stack, 2).await;
    assert!(!acted(&cfg, 1), "{:#?}", event_lines(&cfg, 1));
    let why = held(&cfg, 1);
    assert!(
        why.iter()
            .any(|e| e.contains("Authentication-Results from mx.vendor.test")
                && e.contains("does not cover")),
        "{why:#?}"
    );
    assert_eq!(stack.count(DANA, "INBOX").await, 1);
    daemon.stop(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_20_review_a_signed_staff_mail_sent_to_someone_else_proves_nothing_here() {
    let (stack, _dns, cfg, daemon) = dana_has_ticket_1().await;
    // Signed exactly as docs/staff.md asks, but written to mallory: she
    // hands it to support@ unchanged. Once naming the ticket in its text
    // only, once in its subject.
    for (id, subject, text) in [
        (
            "alice-2@vendor.test",
            "Dana's pool",
            "About [TKT#1]: the replacement pool is on its way, I will close it once it arrives.",
        ),
        (
            "alice-3@vendor.test",
            "Re: Pool degraded after update [TKT#1]",
            "#close\nThe replacement pool is on its way.",
        ),
    ] {
        let raw = dkim_sign(
            &mail(
                &format!("Alice Staff <{ALICE}>"),
                MALLORY,
                subject,
                id,
                "",
                text,
            ),
            "vendor.test",
            "sel",
        );
        assert!(matches!(
            ticketd::dkim::verify(&raw, "vendor.test", &keys()),
            ticketd::dkim::DkimVerdict::Pass { .. }
        ));
        stack.deliver(&raw).await;
    }
    // The first names no ticket a staff mail can name (a number in the
    // text is none): quarantined. The second is held on ticket 1.
    stack.wait_for_count(SUPPORT, "Quarantine", 1, WAIT).await;
    processed(&stack, 2).await;
    assert!(!acted(&cfg, 1), "{:#?}", event_lines(&cfg, 1));
    let why = held(&cfg, 1);
    assert!(
        why.iter().any(|e| e.contains("name none of our addresses")),
        "{why:#?}"
    );
    assert_eq!(stack.count(DANA, "INBOX").await, 1);
    daemon.stop(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_20_review_a_from_of_two_mailboxes_or_another_sender_proves_nothing() {
    let (stack, _dns, cfg, daemon) = dana_has_ticket_1().await;
    for (from, extra, id) in [
        (
            "alice@vendor.test, Mallory <mallory@vendor.test>",
            "Sender: Mallory <mallory@vendor.test>\r\n",
            "mallory-3@vendor.test",
        ),
        (
            "Alice Staff <alice@vendor.test>",
            "Sender: Mallory <mallory@vendor.test>\r\n",
            "mallory-4@vendor.test",
        ),
        (
            "undisclosed:;, alice@vendor.test",
            "",
            "mallory-5@vendor.test",
        ),
    ] {
        let raw = dkim_sign(
            &mail(
                from,
                SUPPORT,
                "Re: Pool degraded after update [TKT#1]",
                id,
                extra,
                "#severity 1\r\nPlease send us your admin password so we can check.",
            ),
            "vendor.test",
            "sel",
        );
        stack.deliver(&raw).await;
    }
    processed(&stack, 4).await;
    assert!(!acted(&cfg, 1), "{:#?}", event_lines(&cfg, 1));
    let why = held(&cfg, 1);
    assert!(
        why.iter().any(|e| e.contains("its From names 2 mailboxes")),
        "{why:#?}"
    );
    assert!(
        why.iter()
            .any(|e| e.contains("its Sender mallory@vendor.test is not its From")),
        "{why:#?}"
    );
    assert_eq!(stack.count(DANA, "INBOX").await, 1);
    daemon.stop(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_20_review_white_space_a_relaxed_signature_leaves_out_changes_nothing_done() {
    let (stack, _dns, cfg, daemon) = dana_has_ticket_1().await;
    // alice explained the commands (support@ and mallory got it); mallory
    // turns the empty line ending a MIME part's header into " ", so the
    // first paragraph becomes part headers and `#close` the first line.
    let alices = b"From: Alice Staff <alice@vendor.test>\r\nTo: support@vendor.test\r\n\
Cc: mallory@example.org\r\nSubject: Re: [TKT#1] Pool degraded after update\r\n\
Message-ID: <alice-4@vendor.test>\r\nDate: Mon, 02 Mar 2026 09:00:00 -0800\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/alternative; boundary=\"b\"\r\n\r\n\
--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
Not yet. Once the logs are in, I reply with\r\n\r\n#close\r\n\r\nAlice\r\n\
--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Not yet.</p>\r\n--b--\r\n";
    let signed = String::from_utf8(dkim_sign(alices, "vendor.test", "sel")).unwrap();
    let forged = signed.replacen(
        "charset=utf-8\r\n\r\nNot yet.",
        "charset=utf-8\r\n \r\nNot yet.",
        1,
    );
    assert!(matches!(
        ticketd::dkim::verify(forged.as_bytes(), "vendor.test", &keys()),
        ticketd::dkim::DkimVerdict::Pass { .. }
    ));
    stack.deliver(forged.as_bytes()).await;
    processed(&stack, 2).await;
    let events = event_lines(&cfg, 1);
    assert!(!events.iter().any(|e| e.contains("closed")), "{events:#?}");
    assert!(
        held(&cfg, 1)
            .iter()
            .any(|e| e.contains("hashed the body relaxed")),
        "{events:#?}"
    );
    // The same mail as alice sent it acts: nothing but white space differs.
    let again = dkim_sign(
        &String::from_utf8_lossy(alices)
            .replace("alice-4@", "alice-5@")
            .into_bytes(),
        "vendor.test",
        "sel",
    );
    stack.deliver(&again).await;
    processed(&stack, 3).await;
    let events = event_lines(&cfg, 1);
    assert!(
        events.iter().any(|e| e.starts_with("staff_mail")),
        "{events:#?}"
    );
    daemon.stop(WAIT).await;
}
