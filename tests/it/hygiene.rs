//! Mail hygiene end to end: out-of-office replies, bounces of our mail, and a loop with a naive autoresponder.

use crate::harness::{MailStack, mail, wait_until};
use std::sync::Arc;
use ticketd::clock::{SharedClock, SystemClock};
use ticketd::config::{Config, Rate};
use ticketd::parse::{Inbound, parse};
use ticketd::store::Store;

fn clock() -> SharedClock {
    Arc::new(SystemClock)
}

async fn once(cfg: &Config) {
    ticketd::daemon::run_once(cfg.clone(), clock())
        .await
        .expect("run --once");
}

fn db(cfg: &Config) -> Store {
    Store::open_read_only_at(&cfg.database).expect("database")
}

fn sent(stack: &MailStack) -> Vec<(Inbound, Vec<u8>)> {
    stack
        .sink_messages()
        .into_iter()
        .map(|raw| (parse(&raw, chrono::DateTime::UNIX_EPOCH), raw))
        .collect()
}

fn to_of(m: &Inbound) -> Vec<String> {
    m.to.iter()
        .map(|a| a.address.to_ascii_lowercase())
        .collect()
}

/// The header block of a raw message.
fn header_block(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    match text.find("\r\n\r\n") {
        Some(i) => text[..i + 2].to_string(),
        None => text.to_string(),
    }
}

/// A customer writes, ticketd answers; returns the acknowledgement.
async fn opened(stack: &MailStack, cfg: &Config, from: &str) -> (Inbound, Vec<u8>) {
    let raw = mail(
        from,
        "support@vendor.test",
        "Pool degraded",
        "a1@example.net",
        "",
        "My pool is degraded.",
    );
    stack.deliver(&raw).await;
    once(cfg).await;
    let mut s = sent(stack);
    assert_eq!(s.len(), 1, "one acknowledgement");
    s.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exchange_out_of_office_reply_to_our_ack_gets_no_answer_and_changes_nothing() {
    let stack = MailStack::start();
    let cfg = stack.config(|_| {});
    let (ack, _) = opened(&stack, &cfg, "Ann <ann@example.net>").await;
    let ack_id = ack.message_id.clone().unwrap();
    let before = db(&cfg).tickets().unwrap();
    assert_eq!(before.len(), 1);

    // What Exchange sends for an OOF: no Auto-Submitted on older servers,
    // but its own markers and the "Automatic reply:" subject.
    let oof = format!(
        "From: Ann <ann@example.net>\r\nTo: Vendor Support <support@vendor.test>\r\nSubject: Automatic reply: {subject}\r\nThread-Topic: {subject}\r\nThread-Index: AQHZ1234567890abcdef==\r\nDate: Mon, 2 Mar 2026 17:05:00 +0000\r\nMessage-ID: <0a1b2c3d4e5f@AM6PR01MB1234.eurprd01.prod.exchangelabs.com>\r\nIn-Reply-To: <{ack_id}>\r\nReferences: <a1@example.net> <{ack_id}>\r\nContent-Language: en-US\r\nX-MS-Has-Attach:\r\nX-MS-TNEF-Correlator:\r\nX-MS-Exchange-Inbox-Rules-Loop: ann@example.net\r\nX-Auto-Response-Suppress: All\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=\"us-ascii\"\r\n\r\nI am out of the office until 9 March with limited access to email.\r\n",
        subject = ack.subject
    );
    stack.deliver(oof.as_bytes()).await;
    once(&cfg).await;

    assert_eq!(sent(&stack).len(), 1, "no answer to the out-of-office");
    let st = db(&cfg);
    let after = st.tickets().unwrap();
    assert_eq!(after.len(), 1, "no new ticket");
    assert_eq!(after[0].status, before[0].status, "state unchanged");
    assert_eq!(after[0].messages, 2, "recorded on the ticket");
    let events = st.ticket_events(after[0].id).unwrap();
    assert!(
        events
            .iter()
            .any(|(k, d)| k == "auto_reply" && d.contains("X-Auto-Response-Suppress")),
        "{events:?}"
    );
    assert!(
        !events
            .iter()
            .any(|(k, _)| k == "reopened" || k == "message"),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_bounce_of_our_ack_marks_the_contact_tells_staff_and_stops_mail() {
    let stack = MailStack::start();
    let cfg = stack.config(|_| {});
    let (ack, ack_raw) = opened(&stack, &cfg, "ann@example.net").await;
    let ack_id = ack.message_id.clone().unwrap();

    // An RFC 3464 report as Postfix writes it, returning the headers of the
    // acknowledgement exactly as the sink received them.
    let bounce = format!(
        "Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\nTo: support@vendor.test\r\nSubject: Undelivered Mail Returned to Sender\r\nDate: Mon, 2 Mar 2026 17:05:00 +0000\r\nMessage-ID: <20260302170500.1234@mx.example.net>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"B1234.1772470000/mx.example.net\"\r\n\r\n--B1234.1772470000/mx.example.net\r\nContent-Description: Notification\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nThis is the mail system at host mx.example.net.\r\n\r\nI'm sorry to have to inform you that your message could not\r\nbe delivered to one or more recipients.\r\n\r\n<ann@example.net>: host mx2.example.net[192.0.2.7] said: 550 5.1.1\r\n    <ann@example.net>: Recipient address rejected: User unknown\r\n\r\n--B1234.1772470000/mx.example.net\r\nContent-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\nArrival-Date: Mon,  2 Mar 2026 17:04:59 +0000 (UTC)\r\n\r\nFinal-Recipient: rfc822; ann@example.net\r\nOriginal-Recipient: rfc822;ann@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; mx2.example.net\r\nDiagnostic-Code: smtp; 550 5.1.1 <ann@example.net>: Recipient address\r\n    rejected: User unknown\r\n\r\n--B1234.1772470000/mx.example.net\r\nContent-Description: Undelivered Message Headers\r\nContent-Type: text/rfc822-headers\r\n\r\n{headers}\r\n--B1234.1772470000/mx.example.net--\r\n",
        headers = header_block(&ack_raw)
    );
    stack.deliver(bounce.as_bytes()).await;
    once(&cfg).await;

    let st = db(&cfg);
    let contact = st.contact("ann@example.net").unwrap().unwrap();
    assert!(contact.undeliverable);
    assert!(
        contact
            .undeliverable_reason
            .as_deref()
            .unwrap()
            .starts_with("Status 5.1.1")
    );
    let t = st.tickets().unwrap()[0].id;
    let events = st.ticket_events(t).unwrap();
    assert!(
        events
            .iter()
            .any(|(k, d)| k == "bounce" && d.contains(&format!("returns <{ack_id}>"))),
        "{events:?}"
    );
    // The sink writes each mail to a file of its own; wait for both files.
    wait_until(
        "the staff notice in the sink",
        std::time::Duration::from_secs(10),
        || sent(&stack).len() >= 2,
    )
    .await;
    let out = sent(&stack);
    assert_eq!(out.len(), 2, "the ack and one notice to staff");
    let notice = &out
        .iter()
        .find(|(m, _)| to_of(m) == vec!["lead@vendor.test"])
        .expect("a notice to staff")
        .0;
    assert!(
        notice.subject.contains("ann@example.net"),
        "{}",
        notice.subject
    );
    assert!(notice.text.contains("5.1.1"), "{}", notice.text);
    assert_eq!(notice.header("auto-submitted"), Some("auto-generated"));

    // Ann writes again (from another system that can send but not receive):
    // a ticket, but nothing is queued to her.
    let again = mail(
        "ann@example.net",
        "support@vendor.test",
        "Another question",
        "a2@example.net",
        "",
        "Hello?",
    );
    stack.deliver(&again).await;
    once(&cfg).await;
    let st = db(&cfg);
    assert_eq!(st.tickets().unwrap().len(), 2);
    assert_eq!(sent(&stack).len(), 2, "no mail to an undeliverable contact");
    assert!(
        st.outbox(None)
            .unwrap()
            .iter()
            .all(|r| r.rcpt_to != vec!["ann@example.net".to_string()] || r.kind == "ack_new"),
    );
    let t2 = st.tickets().unwrap()[1].id;
    assert!(
        st.ticket_events(t2)
            .unwrap()
            .iter()
            .any(|(k, d)| k == "reply_suppressed" && d.contains("undeliverable"))
    );

    // The admin lists the contacts, sees the mark, and clears it once Ann's
    // address works again, as the staff notice says.
    assert!(
        notice.text.contains("ticketd contacts deliverable"),
        "{}",
        notice.text
    );
    let cli = |args: &[&str]| {
        let out = crate::harness::ticketd_command()
            .args(args)
            .arg("--config")
            .arg(&cfg.path)
            .output()
            .expect("run ticketd");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let listed = cli(&["contacts"]);
    let line = listed
        .lines()
        .find(|l| l.starts_with("ann@example.net"))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(line.contains("Status 5.1.1"), "{line}");
    let json: serde_json::Value = serde_json::from_str(&cli(&["contacts", "--json"])).unwrap();
    let ann = json
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "ann@example.net")
        .unwrap();
    assert_eq!(ann["undeliverable"], true);
    assert_eq!(ann["tickets"], 2);
    assert!(cli(&["contacts", "deliverable", "Ann@Example.net"]).contains("deliverable again"));
    assert!(
        !db(&cfg)
            .contact("ann@example.net")
            .unwrap()
            .unwrap()
            .undeliverable
    );
    let third = mail(
        "ann@example.net",
        "support@vendor.test",
        "Third question",
        "a3@example.net",
        "",
        "Hello again.",
    );
    stack.deliver(&third).await;
    once(&cfg).await;
    wait_until(
        "an acknowledgement to Ann again",
        std::time::Duration::from_secs(10),
        || sent(&stack).len() == 3,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_naive_autoresponder_facing_us_is_stopped_by_the_reply_limit() {
    let stack = MailStack::start();
    let cfg = stack.config(|_| {});
    let burst = cfg.limits.replies_per_recipient.burst;
    assert_eq!(
        cfg.limits.replies_per_recipient,
        Rate::DEFAULT_PER_RECIPIENT
    );
    let (_, _) = opened(&stack, &cfg, "bot@peer.example").await;

    // The peer answers every mail it gets, at once, with no Auto-Submitted,
    // no Precedence and no X-Auto-Response-Suppress: the worst kind.
    let mut answered = 0usize;
    for round in 0..(3 * burst as usize) {
        let ours = sent(&stack);
        if ours.len() == answered {
            break;
        }
        for (m, _) in &ours[answered..] {
            assert!(to_of(m).contains(&"bot@peer.example".to_string()));
            let reply = mail(
                "bot@peer.example",
                "support@vendor.test",
                &format!("Re: {}", m.subject),
                &format!("peer.{round}.{}@peer.example", answered),
                &format!(
                    "In-Reply-To: <{id}>\r\nReferences: <{id}>\r\n",
                    id = m.message_id.as_deref().unwrap_or("")
                ),
                "Thank you for your message. We will get back to you shortly.",
            );
            stack.deliver(&reply).await;
            answered += 1;
        }
        once(&cfg).await;
    }
    let ours = sent(&stack);
    assert_eq!(
        ours.len(),
        burst as usize,
        "the loop stops after the burst of replies"
    );
    assert_eq!(
        answered,
        ours.len(),
        "the peer answered every one, and we stopped"
    );
    let st = db(&cfg);
    let tickets = st.tickets().unwrap();
    assert_eq!(tickets.len(), 1, "the peer's replies thread to one ticket");
    assert!(
        st.ticket_events(tickets[0].id)
            .unwrap()
            .iter()
            .any(|(k, d)| k == "reply_suppressed" && d.contains("rate limit"))
    );
}
