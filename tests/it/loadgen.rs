//! The load generator (tests/kit/loadgen.rs, `cargo run --example gen-corpus`): its bytes depend on its options only, and its manifest says what ticketd does with each mail.

use crate::kit::loadgen::{self, Kind, MAILBOXES, Options};
use crate::kit::offline::{LOAD_LIMITS, dev_config, repo};
use std::collections::{HashMap, HashSet};
use ticketd::clock::SystemClock;
use ticketd::intake::{Engine, Fetched};
use ticketd::store::Store;

fn opts(count: usize, seed: u64) -> Options {
    Options {
        count,
        seed,
        ..Options::default()
    }
}

#[test]
fn issue_21_item_1_the_same_seed_gives_the_same_bytes_and_another_seed_other_mail() {
    let a = loadgen::generate(&opts(300, 9));
    let b = loadgen::generate(&opts(300, 9));
    let c = loadgen::generate(&opts(300, 10));
    assert_eq!(a.len(), 300);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.raw, y.raw, "{} differs between two runs", x.file);
        assert_eq!(x.internal_date, y.internal_date);
    }
    assert!(a.iter().zip(&c).any(|(x, y)| x.raw != y.raw));
    // Written and read back, the manifest is the same.
    let d = tempfile::tempdir().unwrap();
    loadgen::write(d.path(), &a).unwrap();
    let rows = loadgen::read_manifest(d.path()).unwrap();
    assert_eq!(rows.len(), a.len());
    for (m, r) in a.iter().zip(&rows) {
        assert_eq!(std::fs::read(d.path().join(&r.file)).unwrap(), m.raw);
        assert_eq!(
            (r.kind, r.message_id.as_str()),
            (m.kind, m.message_id.as_str())
        );
        assert_eq!(r.parent.as_deref(), m.parent.map(|p| a[p].file.as_str()));
    }
    // Every kind of mail the generator promises is in a corpus this size.
    let has = |f: &dyn Fn(&loadgen::Mail) -> bool| a.iter().any(f);
    let text = |m: &loadgen::Mail| String::from_utf8_lossy(&m.raw).into_owned();
    assert!(has(&|m| text(m).contains("charset=\"ISO-2022-JP\"")));
    assert!(has(&|m| text(m).contains("charset=\"ISO-8859-1\"")));
    assert!(has(&|m| text(m).contains("Content-Disposition: attachment")));
    assert!(has(&|m| text(m).contains("report-type=delivery-status")));
    assert!(has(&|m| m.class == "auto_reply"));
    assert!(has(
        &|m| m.kind == Kind::FollowUp && m.mailbox != a[m.parent.unwrap()].mailbox
    ));
    assert!(has(
        &|m| m.kind == Kind::FollowUp && a[m.parent.unwrap()].kind == Kind::FollowUp
    ));
    for b in 0..MAILBOXES.len() {
        assert!(has(&|m| m.mailbox == b));
    }
}

#[test]
fn issue_21_item_1_explain_and_the_engine_do_what_the_manifest_says_of_each_generated_mail() {
    let mails = loadgen::generate(&opts(400, 21));
    // `explain`: the class and whether it is answered, mail by mail.
    let explain = ticketd::explain::Options {
        data_dir: Some(repo()),
        ..Default::default()
    };
    let now = chrono::DateTime::parse_from_rfc3339("2026-03-02T10:00:00Z")
        .unwrap()
        .to_utc();
    let mut problems = Vec::new();
    for m in &mails {
        let v = ticketd::explain::explain(&m.raw, &explain, now).expect("explain");
        if v["class"] != m.class {
            problems.push(format!(
                "{}: explain says class {}, the manifest {}",
                m.file, v["class"], m.class
            ));
        }
        if v["would_reply"] != (m.reply != "none") {
            problems.push(format!(
                "{}: explain says would_reply {}, the manifest {}",
                m.file, v["would_reply"], m.reply
            ));
        }
    }

    // The engine, in arrival order on one store: tickets and replies.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dev_config(dir.path(), "ixsystems", LOAD_LIMITS);
    let engine = Engine::from_config(&cfg).unwrap();
    let mut store = Store::open_at(&cfg.database).unwrap();
    let mut uids: HashMap<usize, u32> = HashMap::new();
    let mut ticket_of = Vec::new();
    let mut seen_tickets = HashSet::new();
    let mut rows_before = 0;
    for m in &mails {
        let mailbox = cfg
            .mailboxes
            .iter()
            .find(|b| b.name == MAILBOXES[m.mailbox])
            .expect("the dev config has the three mailboxes");
        let uid = uids.entry(m.mailbox).or_insert(0);
        *uid += 1;
        let f = Fetched {
            uidvalidity: 1,
            uid: *uid,
            raw: m.raw.clone(),
            size: m.raw.len() as u64,
            arrival: m.internal_date,
        };
        let got = engine
            .ingest(&mut store, mailbox, &f, &SystemClock)
            .expect("ingest");
        let outbox = store.outbox(None).unwrap();
        let replies: Vec<&str> = outbox[rows_before..]
            .iter()
            .filter(|r| r.rcpt_to.iter().all(|a| !a.ends_with("@vendor.test")))
            .map(|r| r.kind.as_str())
            .collect();
        rows_before = outbox.len();
        let want_replies: Vec<&str> = match m.reply {
            "none" => vec![],
            r => vec![r],
        };
        if replies != want_replies {
            problems.push(format!(
                "{}: replies {replies:?}, the manifest {want_replies:?} ({:?})",
                m.file, got.reasons
            ));
        }
        let fresh = got.ticket_id.is_some_and(|t| seen_tickets.insert(t));
        let ok = match m.ticket {
            "new" => fresh,
            "parent" => got.ticket_id.is_some() && got.ticket_id == ticket_of[m.parent.unwrap()],
            _ => !fresh,
        };
        if !ok {
            problems.push(format!(
                "{}: ticket {:?}, the manifest says {} (parent {:?})",
                m.file,
                got.ticket_id,
                m.ticket,
                m.parent.map(|p| ticket_of[p])
            ));
        }
        ticket_of.push(got.ticket_id);
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Issue 24: what deciding reads from a mail's words alone (its language,
/// the rules' facts, topics and severity words) is read ahead of the
/// store's lock; the decisions are those made reading it under the lock,
/// mail by mail, in every shipped pack, for generated mail and for words
/// each rule reads (stated severities, a system down, a version, Spanish
/// and Japanese).
#[test]
fn issue_24_decisions_with_the_words_read_ahead_are_those_read_under_the_lock() {
    let mut mails: Vec<(usize, Vec<u8>, chrono::DateTime<chrono::Utc>)> =
        loadgen::generate(&opts(250, 24))
            .into_iter()
            .map(|m| (m.mailbox, m.raw, m.internal_date))
            .collect();
    let at = chrono::DateTime::parse_from_rfc3339("2026-03-03T03:00:00Z")
        .unwrap()
        .to_utc();
    for (i, (subject, body)) in [
        ("Severity 1: production is down", "Our HyperIP cluster stopped passing traffic at 02:40, every site is cut off.\nSerial HIP-220-0042"),
        ("slow transfers", "Severity 3. HyperIP version 7.0 on Red Hat 9 drops transfers every hour since the upgrade."),
        ("Avería", "Buenos días:\n\nEl sistema caído desde esta mañana, ¿pueden ayudarnos?\n\nSaludos,\nJosé"),
        ("ディスク障害", "お世話になっております。\n重大度: 2\nシステム停止しています。シリアル Q22CO00999"),
        ("Re: your case", "S2 please, the unit reboots.\n\nOn Mon, Ann wrote:\n> Severity 4: planning\n"),
    ]
    .into_iter()
    .enumerate()
    {
        let raw = format!(
            "From: Customer {i} <c{i}@example.org>\r\nTo: support@vendor.test\r\nSubject: {subject}\r\nMessage-ID: <words{i}@example.org>\r\nDate: Tue, 3 Mar 2026 03:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
        );
        mails.push((i % MAILBOXES.len(), raw.into_bytes(), at));
    }
    let now = at + chrono::Duration::hours(1);
    for pack in ["avanzada7", "ixsystems", "netex", "qnap", "qnap-jp"] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dev_config(dir.path(), pack, LOAD_LIMITS);
        let engine = Engine::from_config(&cfg).unwrap();
        let mut store = Store::open_at(&cfg.database).unwrap();
        for (n, (mailbox, raw, arrival)) in mails.iter().enumerate() {
            let mailbox = cfg
                .mailboxes
                .iter()
                .find(|b| b.name == MAILBOXES[*mailbox])
                .unwrap();
            let view = ticketd::intake::mailbox_view(mailbox);
            let ahead = engine.read(raw, *arrival);
            assert!(
                ahead.prepared.is_some(),
                "{pack}: mail {n} was not read ahead"
            );
            let mut under_lock = ahead.clone();
            under_lock.prepared = None;
            let a = engine.plan_read(&store, view, ahead, now).unwrap();
            let b = engine.plan_read(&store, view, under_lock, now).unwrap();
            assert_eq!(
                format!("{:?}", a.decision),
                format!("{:?}", b.decision),
                "{pack}: mail {n} is decided otherwise with its words read ahead"
            );
            // The next mails see this one's ticket.
            let f = Fetched {
                uidvalidity: 1,
                uid: n as u32 + 1,
                raw: raw.clone(),
                size: raw.len() as u64,
                arrival: *arrival,
            };
            engine
                .ingest(&mut store, mailbox, &f, &SystemClock)
                .unwrap();
        }
    }
}
