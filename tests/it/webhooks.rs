//! Webhooks end to end: deliveries to loopback receivers (plain and TLS with the test CA) that answer 500, hang or drop, every signature checked by the receiver's own Standard Webhooks verification; a kill -9 storm while deliveries are due; the PagerDuty preset paging a NetEx severity 1 on 24x7@ (NX-01) beside the NX-03 ladder and resolving on `#close`; check-config naming bad entries.

use crate::harness::*;
use crate::receiver::{Received, Receiver, Reply, new_secret};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use ticketd::clock::{Clock, FixedClock};
use ticketd::config::Config;
use ticketd::store::{DeliveryRow, Store};

const WAIT: Duration = Duration::from_secs(60);
const ALICE: &str = "alice@staff.test";

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn deliveries(cfg: &Config) -> Vec<DeliveryRow> {
    Store::open_read_only_at(&cfg.database)
        .and_then(|s| s.deliveries(None))
        .unwrap_or_default()
}

/// Moves the test clock to when the next queued delivery is due, so that
/// retries come due without waiting for them.
fn to_next_attempt(cfg: &Config, clock: &FixedClock) {
    let next = Store::open_read_only_at(&cfg.database)
        .ok()
        .and_then(|s| s.next_delivery_due().ok().flatten());
    if let Some(t) = next
        && t > clock.now()
    {
        clock.set(t);
    }
}

/// A `[[webhook]]` entry.
fn entry(name: &str, url: &str, events: &str, more: &str) -> String {
    format!("\n[[webhook]]\nname = \"{name}\"\nurl = \"{url}\"\nevents = [{events}]\n{more}\n")
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

/// What every receiver must have seen for one webhook: each request signed
/// and verified; each id carrying one body; each delivered row answered 200
/// exactly once under its id; no event sent under two ids.
fn assert_sound(name: &str, got: &[Received], rows: &[&DeliveryRow]) {
    assert!(
        got.iter().all(|r| r.verified),
        "{name}: unverified: {got:#?}"
    );
    let mut bodies: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut ok: BTreeMap<&str, usize> = BTreeMap::new();
    let mut ids_of_event: BTreeMap<(String, String), BTreeSet<&str>> = BTreeMap::new();
    for r in got {
        assert!(
            r.signature.starts_with("v1,") && r.timestamp.parse::<i64>().is_ok(),
            "{r:?}"
        );
        bodies.entry(&r.id).or_default().insert(&r.body);
        if r.reply == Reply::Ok {
            *ok.entry(&r.id).or_default() += 1;
        }
        let b = json(&r.body);
        let key = (b["type"].to_string(), b["data"]["ticket"].to_string());
        ids_of_event.entry(key).or_default().insert(&r.id);
    }
    assert!(
        bodies.values().all(|b| b.len() == 1),
        "{name}: an id with two bodies"
    );
    assert!(
        ids_of_event.values().all(|ids| ids.len() == 1),
        "{name}: an event under two ids: {ids_of_event:?}"
    );
    for row in rows {
        assert_eq!(row.status, "delivered", "{name}: {row:?}");
        assert_eq!(
            ok.get(row.msg_id.as_str()),
            Some(&1),
            "{name}: {} answered 200 once",
            row.msg_id
        );
    }
    assert_eq!(
        ok.len(),
        rows.len(),
        "{name}: nothing delivered that the store does not know"
    );
    let attempts: u32 = rows.iter().map(|r| r.attempts).sum();
    assert_eq!(
        attempts as usize,
        got.len(),
        "{name}: every attempt counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_and_retried_through_500s_hangs_and_drops_over_plain_and_tls_and_none_is_lost_or_sent_under_two_ids()
 {
    let stack = MailStack::start();
    let (secret, key) = new_secret();
    std::fs::write(stack.dir.join("whsec"), format!("{secret}\n")).unwrap();
    let ca = TestCa::new("webhooks");
    std::fs::write(stack.dir.join("ca.pem"), ca.pem()).unwrap();
    let plain = Receiver::start(
        Some(key.clone()),
        None,
        &[Reply::Fail, Reply::Hang, Reply::Drop],
    )
    .await;
    let tls = Receiver::start(
        Some(key.clone()),
        Some(&ca.issue("localhost", 2020, 2100)),
        &[Reply::Drop, Reply::Fail],
    )
    .await;
    let other = TestCa::new("someone else");
    let untrusted = Receiver::start(
        Some(key.clone()),
        Some(&other.issue("localhost", 2020, 2100)),
        &[],
    )
    .await;
    let dir = stack.dir.display().to_string();
    let signed = format!("secret_file = \"{dir}/whsec\"\ntimeout_secs = 1");
    let with_ca = format!("{signed}\nca_file = \"{dir}/ca.pem\"");
    let extra = [
        entry(
            "plain",
            &format!("http://127.0.0.1:{}/in", plain.port),
            r#""ticket.created", "ticket.closed""#,
            &signed,
        ),
        entry(
            "tls",
            &format!("https://localhost:{}/in", tls.port),
            r#""ticket.created""#,
            &with_ca,
        ),
        entry(
            "untrusted",
            &format!("https://localhost:{}/in", untrusted.port),
            r#""ticket.created""#,
            &format!("{with_ca}\nlifetime_hours = 1"),
        ),
    ]
    .concat();
    let cfg = stack.config(|c| c.extra = extra.clone());
    let clock = FixedClock::new(at("2026-03-02T09:00:00Z"));
    let daemon = Daemon::start(&cfg, Arc::new(clock.clone()));
    for i in 0..3 {
        let text = "The pool is degraded after the update, serial A1-123456.";
        let raw = mail(
            &format!("c{i}@customer.test"),
            "support@vendor.test",
            &format!("Pool {i} degraded"),
            &format!("w{i}@customer.test"),
            "",
            text,
        );
        stack.deliver(&raw).await;
    }
    let settled =
        |rows: &[DeliveryRow]| rows.len() == 9 && rows.iter().all(|r| r.status != "queued");
    wait_until("every delivery settled", WAIT, || {
        to_next_attempt(&cfg, &clock);
        settled(&deliveries(&cfg))
    })
    .await;
    // Closing from the shell queues the close for the plain webhook.
    let out = ticketd_cli(&cfg, &["close", "2", "--as", "alice"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until("the close delivered", WAIT, || {
        to_next_attempt(&cfg, &clock);
        let rows = deliveries(&cfg);
        rows.len() == 10 && rows.iter().all(|r| r.status != "queued")
    })
    .await;
    daemon.stop(WAIT).await;

    let rows = deliveries(&cfg);
    let of = |name: &str| {
        rows.iter()
            .filter(|r| r.webhook == name)
            .collect::<Vec<_>>()
    };
    assert_sound("plain", &plain.received(), &of("plain"));
    assert_sound("tls", &tls.received(), &of("tls"));
    // Three created and one closed; the 500, the hang and the drop retried.
    assert_eq!(plain.received().len(), 4 + 3);
    assert_eq!(tls.received().len(), 3 + 2);
    let closed: Vec<_> = plain
        .received()
        .into_iter()
        .filter(|r| r.body.contains("ticket.closed"))
        .collect();
    let b = json(&closed[0].body);
    assert_eq!(
        (b["data"]["ticket"].as_i64(), b["data"]["state"].as_str()),
        (Some(2), Some("closed"))
    );
    for r in plain.received().iter().chain(&tls.received()) {
        let b = json(&r.body);
        assert_eq!(b["data"]["mailbox"], "support", "{b}");
        assert!(
            b["data"]["at"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{b}"
        );
        assert!(
            !r.body.contains("degraded"),
            "no customer text unless asked: {b}"
        );
        assert_eq!(r.path, "/in");
    }
    // Another CA's certificate: refused with its reason, recorded failed at
    // the end of its lifetime, nothing ever sent.
    assert!(untrusted.received().is_empty());
    for r in of("untrusted") {
        let e = r.last_error.as_deref().unwrap_or_default();
        assert_eq!(r.status, "failed");
        assert!(
            e.contains("webhook untrusted: the TLS certificate of localhost:")
                && e.contains("was refused: it is not signed by the CA in"),
            "{e}"
        );
        assert!(e.contains("end of its lifetime"), "{e}");
    }
    let listed = ticketd_cli(&cfg, &["webhooks", "--status", "failed"]);
    let text = String::from_utf8_lossy(&listed.stdout);
    assert_eq!(
        text.lines().filter(|l| l.contains("untrusted")).count(),
        3,
        "{text}"
    );
    assert_eq!(text.lines().count(), 4, "{text}");
    let listed = ticketd_cli(&cfg, &["webhooks", "--json"]);
    let all = json(&String::from_utf8_lossy(&listed.stdout));
    assert_eq!(all.as_array().map(Vec::len), Some(10));
}

/// A `ticketd run` whose receiver hangs, fails and drops while a kill -9
/// storm hits it: every delivery arrives, each under the one id it was
/// queued with, none twice answered 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_a_kill_9_storm_while_deliveries_are_due_loses_none_and_resends_keep_their_id() {
    let stack = MailStack::start();
    let (secret, key) = new_secret();
    std::fs::write(stack.dir.join("whsec"), &secret).unwrap();
    // The first attempts of the twelve, then the retries: a 500, hangs and
    // drops among them; 200 after.
    use Reply::{Drop, Fail, Hang, Ok};
    let script = [
        Fail, Hang, Drop, Hang, Ok, Ok, Ok, Ok, Ok, Ok, Ok, Ok, Hang, Fail, Hang, Drop, Hang, Fail,
    ];
    let rx = Receiver::start(Some(key), None, &script).await;
    let more = format!(
        "secret_file = \"{}/whsec\"\ntimeout_secs = 1",
        stack.dir.display()
    );
    let extra = entry(
        "ops",
        &format!("http://127.0.0.1:{}/in", rx.port),
        r#""ticket.created""#,
        &more,
    );
    let config = stack.write_config(|c| c.extra = extra.clone());
    let cfg = Config::load(&config).unwrap();
    let n = 12;
    let raws: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            mail(
                &format!("k{i}@customer.test"),
                "support@vendor.test",
                &format!("Link {i} down"),
                &format!("k{i}@customer.test"),
                "",
                "The link is down.",
            )
        })
        .collect();
    stack
        .append_many("support@vendor.test", "INBOX", &raws)
        .await;
    let mut daemon = Ticketd::rerun(&config, "info");
    // Killed with first attempts in flight, then twice more as retries go out.
    for (round, seen) in [2, 13, 15].into_iter().enumerate() {
        wait_until(
            &format!("kill {}: {seen} requests", round + 1),
            WAIT,
            || rx.received().len() >= seen,
        )
        .await;
        daemon.kill();
        daemon = Ticketd::rerun(&config, "info");
    }
    wait_until("every delivery delivered", WAIT, || {
        let rows = deliveries(&cfg);
        rows.len() == n && rows.iter().all(|r| r.status == "delivered")
    })
    .await;
    let log = daemon.stop().await;
    let rows = deliveries(&cfg);
    let got = rx.received();
    assert!(got.iter().all(|r| r.verified));
    let mut ids_of_ticket: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
    for r in &got {
        let t = json(&r.body)["data"]["ticket"].as_i64().unwrap();
        ids_of_ticket.entry(t).or_default().insert(r.id.clone());
    }
    assert_eq!(ids_of_ticket.len(), n, "every ticket's delivery arrived");
    assert!(
        ids_of_ticket.values().all(|ids| ids.len() == 1),
        "re-sends keep their id: {ids_of_ticket:?}"
    );
    let ok: Vec<&str> = got
        .iter()
        .filter(|r| r.reply == Ok)
        .map(|r| r.id.as_str())
        .collect();
    let unique: BTreeSet<&str> = ok.iter().copied().collect();
    assert_eq!(unique.len(), n);
    assert!(rows.iter().all(|r| unique.contains(r.msg_id.as_str())));
    assert!(log.contains("webhook attempt failed: HTTP 500"), "{log}");
    assert!(
        log.contains("webhook attempt failed: no answer within 1 s"),
        "{log}"
    );
}

/// The 24x7 staff config: alice hears of support and 24x7, with a reply-token key.
fn pager_config(stack: &MailStack, port: u16) -> Config {
    let key = stack.dir.join("reply-token.key");
    std::fs::write(&key, "k3y-for-the-webhook-tests-0123456789\n").unwrap();
    std::fs::write(
        stack.dir.join("pd-routing-key"),
        "R0UTINGKEY0123456789abcdef012345\n",
    )
    .unwrap();
    let dir = stack.dir.display().to_string();
    stack.config(move |c| {
        c.pack = "netex".into();
        c.mailboxes = vec![("support", "support"), ("24x7", "24x7")];
        c.staff = format!("token_key_file = \"{}\"\n", key.display());
        c.extra = format!(
            "\n[staff.members.alice]\nname = \"Alice Staff\"\naddresses = [\"{ALICE}\"]\nqueues = [\"support\", \"24x7\"]\n\
             \n[[webhook]]\nname = \"on-call\"\nkind = \"pagerduty\"\nurl = \"http://127.0.0.1:{port}/v2/enqueue\"\n\
             routing_key_file = \"{dir}/pd-routing-key\"\nmailbox = \"24x7\"\nseverity = 1\n"
        );
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nx_01_a_severity_1_on_24x7_pages_pagerduty_at_once_beside_the_nx_03_ladder_and_resolves_on_close()
 {
    let stack = MailStack::with(Options {
        postfix: true,
        ..Default::default()
    });
    let rx = Receiver::start(None, None, &[]).await;
    let cfg = pager_config(&stack, rx.port);
    stack
        .create_users(&["24x7@vendor.test", ALICE, "ann@customer.test"])
        .await;
    let report = mail(
        "ann@customer.test",
        "24x7@vendor.test",
        "Severity 1: replication down",
        "pd1@customer.test",
        "",
        "HyperIP version 7.0 on Red Hat Enterprise Linux 9 drops every transfer since the upgrade; the log shows retransmission timeouts.",
    );
    stack
        .append(
            "24x7@vendor.test",
            "INBOX",
            &report,
            "21-Nov-2026 02:00:00 -0600",
        )
        .await;
    // explain --json names the page the mail would trigger.
    let opts = ticketd::explain::Options {
        config: Some(cfg.path.clone()),
        mailbox: Some("24x7".into()),
        at: Some(at("2026-11-21T02:00:00-06:00")),
        ..Default::default()
    };
    let v = ticketd::explain::explain(&report, &opts, at("2026-11-21T02:00:30-06:00")).unwrap();
    assert_eq!(
        v["webhooks"],
        serde_json::json!([{"webhook": "on-call", "kind": "pagerduty", "event": "ticket.created"}])
    );
    // Saturday 02:00 Central.
    let clock = FixedClock::new(at("2026-11-21T02:00:30-06:00"));
    let daemon = Daemon::start(&cfg, Arc::new(clock.clone()));
    wait_until("the page", WAIT, || !rx.received().is_empty()).await;
    let page = json(&rx.received()[0].body);
    assert_eq!(rx.received()[0].path, "/v2/enqueue");
    assert_eq!(page["routing_key"], "R0UTINGKEY0123456789abcdef012345");
    assert_eq!(page["event_action"], "trigger");
    assert_eq!(page["dedup_key"], "ticketd/on-call/ticket/1");
    let p = &page["payload"];
    assert_eq!(
        (p["severity"].as_str(), p["source"].as_str()),
        (Some("critical"), Some("ticketd"))
    );
    assert_eq!(p["timestamp"], "2026-11-21T08:00:30Z");
    assert_eq!(p["component"], "24x7");
    assert!(
        p["summary"]
            .as_str()
            .is_some_and(|s| s.contains("ticket 1") && s.contains("S1")),
        "{p}"
    );
    let rules = p["custom_details"]["rules"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(rules.iter().any(|r| r == "NX-01"), "{p}");
    // Beside the page, the NX-03 ladder: the Director at 10:00, the President Sunday 02:00.
    let st = Store::open_read_only_at(&cfg.database).unwrap();
    let steps: Vec<_> = st
        .pending_timers(None, 10)
        .unwrap()
        .into_iter()
        .filter(|t| t.plan.rule == "NX-03")
        .map(|t| t.plan.due)
        .collect();
    assert_eq!(
        steps,
        vec![
            at("2026-11-21T10:00:00-06:00"),
            at("2026-11-22T02:00:00-06:00")
        ]
    );

    // alice answers her notification with #close: the incident is resolved.
    stack.wait_for_count(ALICE, "INBOX", 1, WAIT).await;
    let note = ticketd::parse::parse(
        &stack.messages(ALICE, "INBOX").await[0],
        DateTime::UNIX_EPOCH,
    );
    let id = note.message_id.expect("the notification's Message-ID");
    let threading = format!("In-Reply-To: <{id}>\r\nReferences: <{id}>\r\n");
    let close = mail(
        &format!("Alice Staff <{ALICE}>"),
        "24x7@vendor.test",
        &format!("Re: {}", note.subject),
        "close-1@staff.test",
        &threading,
        "#close",
    );
    stack.deliver(&close).await;
    wait_until("the resolve", WAIT, || rx.received().len() >= 2).await;
    daemon.stop(WAIT).await;
    let resolve = json(&rx.received()[1].body);
    assert_eq!(resolve["event_action"], "resolve");
    assert_eq!(resolve["dedup_key"], page["dedup_key"]);
    assert_eq!(resolve["routing_key"], page["routing_key"]);
    assert_eq!(rx.received().len(), 2, "one trigger, one resolve");
}

#[test]
fn check_config_names_a_bad_webhook_url_event_and_secret_at_their_lines() {
    let d = tempfile::tempdir().unwrap();
    let config = d.path().join("ticketd.toml");
    std::fs::write(d.path().join("bad-secret"), "not-a-whsec\n").unwrap();
    let base = crate::cli::config_text(d.path(), "netex");
    let text = format!(
        "{base}\n[[webhook]]\nname = \"a\"\nurl = \"http://hooks.example.com/in\"\nevents = [\"ticket.created\"]\nsecret_file = \"bad-secret\"\n\
         \n[[webhook]]\nname = \"b\"\nurl = \"https://hooks.example.com/in\"\nevents = [\"ticket.exploded\"]\nsecret_file = \"bad-secret\"\n"
    );
    std::fs::write(&config, &text).unwrap();
    let line = |needle: &str, nth: usize| {
        text.lines()
            .enumerate()
            .filter(|(_, l)| l.contains(needle))
            .nth(nth)
            .map(|(i, _)| i + 1)
            .unwrap()
    };
    let out = ticketd_command()
        .args(["check-config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let name = |n: usize| format!("{}:{}:", config.display(), n);
    let url_line = line("url = \"http://hooks.example.com/in\"", 0);
    assert!(err.contains(&format!("{} webhook a: url http://hooks.example.com/in must be https (plain http only to a loopback address)", name(url_line))), "{err}");
    assert!(
        err.contains(&format!(
            "{} webhook b: unknown event `ticket.exploded`",
            name(line("ticket.exploded", 0))
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{} webhook a: secret: a signing secret starts with whsec_",
            name(line("secret_file", 0))
        )),
        "{err}"
    );
    assert!(!Path::new(&d.path().join("ticketd.db")).exists());
}

/// A Slack or Teams URL is a secret (its path is the credential): given in
/// a url_file, check-config names its host, never the whole URL, when it
/// is accepted or refused.
#[test]
fn check_config_never_prints_a_webhook_url_given_as_a_secret() {
    let d = tempfile::tempdir().unwrap();
    let config = d.path().join("ticketd.toml");
    std::fs::write(d.path().join("pw"), "secret\n").unwrap();
    let path = "/services/T0001/B0001/S3CR3TxXxXxXxXxXxXxXxXxX";
    std::fs::write(
        d.path().join("slack-url"),
        format!("https://hooks.slack.com{path}\n"),
    )
    .unwrap();
    std::fs::write(
        d.path().join("teams-url"),
        format!("http://teams.example.com{path}\n"),
    )
    .unwrap();
    let base = crate::cli::config_text(d.path(), "netex");
    let good = format!(
        "{base}\n[[webhook]]\nname = \"chat\"\nkind = \"slack\"\nurl_file = \"slack-url\"\nevents = [\"ticket.created\"]\n"
    );
    let bad = format!(
        "{good}\n[[webhook]]\nname = \"teams\"\nkind = \"teams\"\nurl_file = \"teams-url\"\nevents = [\"ticket.created\"]\n"
    );
    for (text, code, host) in [
        (good, 0, "https://hooks.slack.com"),
        (bad, 1, "http://teams.example.com"),
    ] {
        std::fs::write(&config, &text).unwrap();
        let out = ticketd_command()
            .args(["check-config"])
            .arg(&config)
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(code), "{all}");
        assert!(all.contains(host), "{all}");
        assert!(
            !all.contains("S3CR3T"),
            "the URL's secret path printed: {all}"
        );
    }
}
