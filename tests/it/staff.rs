//! Staff by mail end to end (issue 11): a customer's mail makes a notification in a staff member's Dovecot mailbox, a real mutt in tmux answers it through Postfix, and the customer's mailbox gets the relayed answer; commands, forged and DKIM-signed staff mail.

use crate::harness::*;
use crate::mutt::Mutt;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use ticketd::clock::{Clock, FixedClock};
use ticketd::config::Config;
use ticketd::model::{TicketId, TicketStatus};
use ticketd::parse::parse;
use ticketd::store::Store;

const WAIT: Duration = Duration::from_secs(30);
const ALICE: &str = "alice@staff.test";
const DANA: &str = "dana@example.net";

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

/// A config whose staff member alice hears of the support queue, with a
/// reply token key; `extra` goes under `[staff]`.
fn staff_config(stack: &MailStack, extra: &str) -> Config {
    alice_config(stack, ALICE, extra)
}

/// `ticketd explain --config` of `raw`, as JSON.
fn explain(cfg: &Config, raw: &[u8]) -> serde_json::Value {
    let opts = ticketd::explain::Options {
        config: Some(cfg.path.clone()),
        ..Default::default()
    };
    ticketd::explain::explain(raw, &opts, at("2026-03-02T09:10:00-08:00")).expect("explain")
}

fn db(cfg: &Config) -> Store {
    Store::open_read_only_at(&cfg.database).expect("database")
}

fn status(cfg: &Config, id: i64) -> TicketStatus {
    db(cfg)
        .ticket(TicketId(id))
        .unwrap()
        .expect("the ticket")
        .status
}

fn event_lines(cfg: &Config, id: i64) -> Vec<String> {
    let h = db(cfg).history(TicketId(id)).unwrap().expect("the ticket");
    h.events
        .iter()
        .map(|e| format!("{}: {}", e.kind, e.detail))
        .collect()
}

async fn customer_writes(stack: &MailStack) {
    let raw = mail(
        &format!("Dana Customer <{DANA}>"),
        "support@vendor.test",
        "Pool degraded after update",
        "dana-1@example.net",
        "",
        "Hello, the pool is degraded after the update to 24.10.\nSerial IX-M40-240117.",
    );
    stack.deliver(&raw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_11_staff_answer_from_mutt_is_relayed_threaded_and_commands_and_forgeries_are_handled()
 {
    let stack = MailStack::with(Options {
        postfix: true,
        ..Default::default()
    });
    let cfg = staff_config(&stack, "");
    stack
        .create_users(&["support@vendor.test", ALICE, DANA])
        .await;
    let clock = FixedClock::new(at("2026-03-02T09:05:00-08:00"));
    let daemon = Daemon::start(&cfg, Arc::new(clock.clone()));
    let mut mutt = Mutt::open(&stack, ALICE, &format!("Alice Staff <{ALICE}>")).await;

    // 1. The customer's mail: an acknowledgement to them, a notification to alice.
    customer_writes(&stack).await;
    stack.wait_for_count(ALICE, "INBOX", 1, WAIT).await;
    stack.wait_for_count(DANA, "INBOX", 1, WAIT).await;
    let note = stack.messages(ALICE, "INBOX").await.remove(0);
    let n = parse(&note, chrono::DateTime::UNIX_EPOCH);
    assert!(
        n.subject.contains("New ticket") && n.subject.contains("[TKT#1]"),
        "{}",
        n.subject
    );
    assert_eq!(
        n.reply_to.as_ref().map(|a| a.address.as_str()),
        Some("support@vendor.test")
    );
    let id = n.message_id.clone().unwrap();
    assert!(
        id.starts_with("ticketd.1.") && id.ends_with("@tickets.vendor.test"),
        "{id}"
    );
    for shown in [
        "the pool is degraded after the update to 24.10.",
        "State: open",
        "Severity:",
        "Warranty:",
        "First response due:",
        "#assign NAME",
    ] {
        assert!(
            n.text.contains(shown),
            "{shown:?} in the notification:\n{}",
            n.text
        );
    }

    // 2. alice answers from mutt, with an attachment: dana gets the answer.
    let log = stack.dir.join("fix-steps.txt");
    std::fs::write(&log, b"zpool online tank da3\n").unwrap();
    mutt.reply(
        "New ticket",
        "Hello Dana,\n\nplease update to 24.10.1; it fixes the resilver.\n\nBest regards,\nAlice",
        &[&log],
    )
    .await;
    stack.wait_for_count(DANA, "INBOX", 2, WAIT).await;
    let got = stack.messages(DANA, "INBOX").await;
    let ack = parse(&got[0], chrono::DateTime::UNIX_EPOCH);
    let answer = parse(&got[1], chrono::DateTime::UNIX_EPOCH);
    assert_eq!(answer.subject, "Re: Pool degraded after update [TKT#1]");
    assert_eq!(answer.in_reply_to, vec!["dana-1@example.net"]);
    assert_eq!(answer.from.as_ref().unwrap().address, "support@vendor.test");
    assert!(
        answer
            .text
            .starts_with("Hello Dana,\n\nplease update to 24.10.1"),
        "{}",
        answer.text
    );
    assert!(
        answer.text.contains("Best regards,\nAlice"),
        "{}",
        answer.text
    );
    assert!(
        answer.text.contains("Sam Staff"),
        "the signature is kept: {}",
        answer.text
    );
    for quoted in [
        "Customer's new text",
        "#status",
        "Severity:",
        "wrote:",
        "> ",
    ] {
        assert!(
            !answer.text.contains(quoted),
            "{quoted:?} relayed:\n{}",
            answer.text
        );
    }
    assert_eq!(answer.header("auto-submitted"), Some("no"));
    assert_eq!(answer.header("precedence"), None);
    assert_eq!(answer.header("x-auto-response-suppress"), None);
    assert!(answer.has_header("x-ticketd-loop"), "our loop marker");
    assert_eq!(answer.attachments.len(), 1);
    assert_eq!(answer.attachments[0].name.as_deref(), Some("fix-steps.txt"));
    assert_eq!(ack.subject, answer.subject, "both in the customer's thread");
    // One confirmation to alice; the ticket waits on the customer.
    stack.wait_for_count(ALICE, "INBOX", 2, WAIT).await;
    assert_eq!(status(&cfg, 1), TicketStatus::WaitingCustomer);
    let events = event_lines(&cfg, 1);
    assert!(
        events.iter().any(|e| e.starts_with("staff_mail:")
            && e.contains("proven by reply token")
            && e.contains("text relayed")),
        "{events:#?}"
    );

    // explain shows a staff reply before it goes out: who, proof, relay.
    let key = ticketd::token::TokenKey::new(b"k3y-for-the-staff-tests-0123456789").unwrap();
    let token =
        ticketd::token::message_id(&key, "tickets.vendor.test", TicketId(1), ALICE, clock.now());
    let reply = mail(
        &format!("Alice Staff <{ALICE}>"),
        "support@vendor.test",
        "Re: [ticketd] [TKT#1] New ticket: Pool degraded after update",
        "alice-2@staff.test",
        &format!("In-Reply-To: <{token}>\r\nReferences: <{token}>\r\n"),
        "#severity 2\nHello Dana, one more step: reboot.\n\nAlice",
    );
    let v = explain(&cfg, &reply);
    assert_eq!(v["sender"], "staff", "{v:#}");
    assert_eq!(v["proof"]["by"], "reply_token");
    assert_eq!(v["commands"], serde_json::json!(["#severity 2"]));
    assert_eq!(v["relay"]["to"], serde_json::json!([DANA]));
    assert_eq!(
        v["relay"]["subject"],
        "Re: Pool degraded after update [TKT#1]"
    );
    assert_eq!(
        v["relay"]["body"],
        "Hello Dana, one more step: reboot.\n\nAlice\n"
    );
    // Without the token: unverified; a signature explain cannot check offline is not checked.
    let forged = String::from_utf8(reply.clone())
        .unwrap()
        .replace(&token, "x@elsewhere.test");
    let v = explain(&cfg, &dkim_sign(forged.as_bytes(), "staff.test", "sel"));
    assert_eq!(v["sender"], "unverified_staff", "{v:#}");
    assert_eq!(v["proof"], serde_json::Value::Null);
    assert_eq!(v["relay"], serde_json::Value::Null);
    assert_eq!(v["authority"]["dkim"]["result"], "not_checked", "{v:#}");
    // A customer is a customer, a stranger naming the ticket a stranger.
    let v = explain(
        &cfg,
        &mail(
            DANA,
            "support@vendor.test",
            "Re: [TKT#1] more",
            "dana-9@example.net",
            "",
            "More details.",
        ),
    );
    assert_eq!(v["sender"], "customer");
    let v = explain(
        &cfg,
        &mail(
            "eve@evil.example",
            "support@vendor.test",
            "Re: [TKT#1] close it",
            "eve-1@evil.example",
            "",
            "Close it.",
        ),
    );
    assert_eq!(v["sender"], "stranger");

    // The shell twin of #assign, beside the running daemon.
    let out = ticketd_cli(&cfg, &["assign", "1", "alice", "--as", "lead@vendor.test"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "ticket 1 assigned to alice by lead@vendor.test"
    );
    assert_eq!(
        db(&cfg)
            .history(TicketId(1))
            .unwrap()
            .unwrap()
            .owner
            .as_deref(),
        Some("alice")
    );
    let out = ticketd_cli(&cfg, &["assign", "1", "nobody"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("`nobody` is not a staff member of [staff.members]; they are alice"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // 3. A commands-only reply closes the ticket, confirms, relays nothing.
    mutt.reply("done: Pool degraded", "#close", &[]).await;
    stack.wait_for_count(ALICE, "INBOX", 3, WAIT).await;
    assert_eq!(status(&cfg, 1), TicketStatus::Closed);
    let confirm = stack.messages(ALICE, "INBOX").await.remove(2);
    let c = parse(&confirm, chrono::DateTime::UNIX_EPOCH);
    assert!(c.text.contains("waiting_customer -> closed"), "{}", c.text);
    assert!(
        c.text.contains("Nothing was sent to the customer"),
        "{}",
        c.text
    );

    // 4. A forged mail in alice's name, without proof, does nothing; alice is told.
    let forged = mail(
        &format!("Alice Staff <{ALICE}>"),
        "support@vendor.test",
        "Re: Pool degraded after update [TKT#1]",
        "forged-1@evil.example",
        "",
        "#reopen\nWe will refund you 10000 EUR.",
    );
    stack.deliver(&forged).await;
    stack.wait_for_count(ALICE, "INBOX", 4, WAIT).await;
    let told = parse(
        &stack.messages(ALICE, "INBOX").await.remove(3),
        chrono::DateTime::UNIX_EPOCH,
    );
    assert!(told.subject.contains("unproven mail"), "{}", told.subject);
    assert_eq!(status(&cfg, 1), TicketStatus::Closed);
    assert!(
        event_lines(&cfg, 1)
            .iter()
            .any(|e| e.starts_with("unverified:"))
    );
    // Nothing more was queued to the customer: the forged mail's decision
    // committed with alice's notice, before it could be delivered.
    let to_dana = |cfg: &Config| {
        db(cfg)
            .history(TicketId(1))
            .unwrap()
            .unwrap()
            .outbox
            .iter()
            .filter(|o| o.rcpt_to.iter().any(|r| r == DANA))
            .count()
    };
    assert_eq!(
        to_dana(&cfg),
        2,
        "the acknowledgement and alice's answer only"
    );

    // A reply to the held mail does not thread into the ticket: it is a
    // stranger's new request, and ticket 1 is untouched.
    let eve = mail(
        "eve@evil.example",
        "support@vendor.test",
        "Re: Pool degraded after update",
        "eve-1@evil.example",
        "In-Reply-To: <forged-1@evil.example>\r\nReferences: <forged-1@evil.example>\r\n",
        "Please send me the RMA codes of this ticket.",
    );
    stack.deliver(&eve).await;
    wait_until("eve's mail opens a ticket of its own", WAIT, || {
        db(&cfg).tickets().unwrap().len() == 2
    })
    .await;
    assert_eq!(status(&cfg, 1), TicketStatus::Closed);
    assert_eq!(to_dana(&cfg), 2);
    assert!(
        !event_lines(&cfg, 1)
            .iter()
            .any(|e| e.contains("eve@evil.example")),
        "{:#?}",
        event_lines(&cfg, 1)
    );

    daemon.stop(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_11_a_dkim_signed_staff_mail_acts_without_a_token_and_a_tampered_one_does_not() {
    issue_11_a_dkim_signed_staff_mail_acts_without_a_token_and_a_tampered_one_does_not_on(None)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_22_on_postgresql_issue_11_a_dkim_signed_staff_mail_acts_without_a_token_and_a_tampered_one_does_not()
 {
    let pg = crate::kit::postgres::Postgres::start();
    issue_11_a_dkim_signed_staff_mail_acts_without_a_token_and_a_tampered_one_does_not_on(Some(
        &pg,
    ))
    .await;
}

async fn issue_11_a_dkim_signed_staff_mail_acts_without_a_token_and_a_tampered_one_does_not_on(
    pg: Option<&crate::kit::postgres::Postgres>,
) {
    let stack = MailStack::with(Options {
        postfix: true,
        ..Default::default()
    });
    // The staff domain's key, served by a DNS server of the test's own on
    // loopback: the daemon's verifier asks it as it would ask the world's.
    let dns = DnsServer::start(&[("sel._domainkey.staff.test", &test_key_txt())], 600);
    let cfg = staff_config(&stack, &format!("dkim_nameservers = [\"{}\"]\n", dns.addr));
    let cfg = match pg {
        Some(pg) => crate::harness::onto_postgres(&cfg, pg, "staff"),
        None => cfg,
    };
    stack
        .create_users(&["support@vendor.test", ALICE, DANA])
        .await;
    let clock = FixedClock::new(at("2026-03-02T09:05:00-08:00"));
    let daemon = Daemon::start(&cfg, Arc::new(clock.clone()));
    customer_writes(&stack).await;
    stack.wait_for_count(ALICE, "INBOX", 1, WAIT).await;

    // A new mail from alice's own client, no reply token, signed by her domain.
    let unsigned = mail(
        &format!("Alice Staff <{ALICE}>"),
        "support@vendor.test",
        "Re: Pool degraded after update [TKT#1]",
        "alice-dkim-1@staff.test",
        "",
        "#severity 1\nHello Dana,\n\nwe are looking at it now.\n\nAlice",
    );
    let signed = dkim_sign(&unsigned, "staff.test", "sel");
    stack.deliver(&signed).await;
    stack.wait_for_count(DANA, "INBOX", 2, WAIT).await;
    let answer = parse(
        &stack.messages(DANA, "INBOX").await.remove(1),
        chrono::DateTime::UNIX_EPOCH,
    );
    assert!(
        answer
            .text
            .starts_with("Hello Dana,\n\nwe are looking at it now."),
        "{}",
        answer.text
    );
    assert_eq!(answer.in_reply_to, vec!["dana-1@example.net"]);
    let events = event_lines(&cfg, 1);
    assert!(
        events.iter().any(
            |e| e.starts_with("staff_mail:") && e.contains("proven by DKIM d=staff.test s=sel")
        ),
        "{events:#?}"
    );
    assert_eq!(
        db(&cfg).ticket(TicketId(1)).unwrap().unwrap().severity,
        Some(1)
    );
    assert!(dns.queries() >= 1, "the key was asked of DNS");

    // The same signed mail with its text changed on the way: no proof, held.
    let tampered = String::from_utf8(dkim_sign(
        &mail(
            &format!("Alice Staff <{ALICE}>"),
            "support@vendor.test",
            "Re: Pool degraded after update [TKT#1]",
            "alice-dkim-2@staff.test",
            "",
            "#close\nAll done.",
        ),
        "staff.test",
        "sel",
    ))
    .unwrap()
    .replace("All done.", "All done, refund approved.");
    stack.deliver(tampered.as_bytes()).await;
    // alice: the notification, the confirmation, then the unproven-mail notice.
    stack.wait_for_count(ALICE, "INBOX", 3, WAIT).await;
    let told = parse(
        &stack.messages(ALICE, "INBOX").await.remove(2),
        chrono::DateTime::UNIX_EPOCH,
    );
    assert!(told.subject.contains("unproven mail"), "{}", told.subject);
    assert!(told.text.contains("DKIM signature fails"), "{}", told.text);
    assert_ne!(status(&cfg, 1), TicketStatus::Closed);
    assert_eq!(stack.count(DANA, "INBOX").await, 2);
    daemon.stop(WAIT).await;
}
