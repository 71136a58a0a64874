//! `ticketd replay` (issue 26): a store of a few hundred generated mails over two weeks; a pack change (a holiday, a severity map, a shorter SLA) shows exactly the mails each part of it changes and nothing else; the database is the same bytes afterwards and nothing is queued.

use crate::harness::ticketd_cli;
use crate::kit::loadgen::{self, Options};
use crate::kit::offline::{LOAD_LIMITS, dev_config_file, repo};
use chrono::{DateTime, Duration, TimeZone, Utc};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use ticketd::clock::FixedClock;
use ticketd::config::Config;
use ticketd::contracts::Contract;
use ticketd::intake::{Engine, Fetched};
use ticketd::pack::Pack;
use ticketd::replay::{Report, Window, replay};
use ticketd::store::Store;

/// The holiday the change adds: Tuesday 10 March 2026.
const HOLIDAY: &str = "2026-03-10";

fn checksum(path: &Path) -> String {
    format!("{:x}", Sha256::digest(std::fs::read(path).unwrap()))
}

/// The store: 300 generated mails over two weeks from 2 March 2026, three
/// of their customers with silver contracts. Returns the config and those
/// customers.
fn store(dir: &Path) -> (Config, Vec<String>) {
    let cfg = dev_config_file(dir, "ixsystems", LOAD_LIMITS);
    let mails = loadgen::generate(&Options {
        count: 300,
        seed: 26,
        spacing_secs: 14.0 * 86400.0 / 300.0,
        ..Options::default()
    });
    // The three customers who open the most tickets.
    let mut opened: BTreeMap<String, usize> = BTreeMap::new();
    for m in mails.iter().filter(|m| m.kind == loadgen::Kind::New) {
        let p = ticketd::parse::parse(&m.raw, m.internal_date);
        if let Some(f) = p.from {
            *opened.entry(f.address.to_ascii_lowercase()).or_default() += 1;
        }
    }
    let mut ranked: Vec<(usize, String)> = opened.into_iter().map(|(a, n)| (n, a)).collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let silver: Vec<String> = ranked.into_iter().take(3).map(|(_, a)| a).collect();
    let mut st = Store::open_at(&cfg.database).unwrap();
    let contracts: Vec<Contract> = silver
        .iter()
        .enumerate()
        .map(|(i, a)| Contract {
            serial: format!("A1-1000{i}"),
            email: a.clone(),
            company: format!("Silver {i}"),
            tax_id: String::new(),
            tier: "silver".into(),
            model: "TrueNAS M40".into(),
            purchased_on: chrono::NaiveDate::from_ymd_opt(2025, 6, 1).unwrap(),
            shipped_on: chrono::NaiveDate::from_ymd_opt(2025, 6, 3),
            warranty_until: None,
            extended_until: None,
            plans: vec![],
            tickets_per_year: None,
            extended_on: None,
            plans_on: None,
            technician: String::new(),
        })
        .collect();
    st.import_contracts(&contracts).unwrap();
    let engine = Engine::from_config(&cfg).unwrap();
    let mut uids = [0u32; 3];
    for m in &mails {
        let mailbox = cfg
            .mailboxes
            .iter()
            .find(|b| b.name == loadgen::MAILBOXES[m.mailbox])
            .unwrap();
        uids[m.mailbox] += 1;
        let f = Fetched {
            uidvalidity: 1,
            uid: uids[m.mailbox],
            raw: m.raw.clone(),
            size: m.raw.len() as u64,
            arrival: m.internal_date,
        };
        engine
            .ingest(&mut st, mailbox, &f, &FixedClock::new(m.internal_date))
            .unwrap();
    }
    (cfg, silver)
}

/// The shipped ixsystems pack with `edits` (from, to) made, written to
/// `dir/NAME/ixsystems.toml` (a pack file is named after its pack).
fn changed_pack(dir: &Path, name: &str, edits: &[(&str, &str)]) -> std::path::PathBuf {
    let mut text = std::fs::read_to_string(repo().join("config/vendors/ixsystems.toml")).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "the pack has {from:?}");
        text = text.replacen(from, to, 1);
    }
    std::fs::create_dir_all(dir.join(name)).unwrap();
    let path = dir.join(name).join("ixsystems.toml");
    std::fs::write(&path, text).unwrap();
    path
}

const HOLIDAY_EDIT: (&str, &str) = (
    "holidays = [\"us-federal\"]",
    "holidays = [\"us-federal\"]\nclosures = [\"2026-03-10: Company day\"]",
);
const SEVERITY_EDIT: (&str, &str) = ("mailbox = { \"24x7\" = 1 }", "mailbox = { \"24x7\" = 2 }");
const SLA_EDIT: (&str, &str) = (
    "when = [\"tier=gold|silver\"]\nwithin = \"4h\"",
    "when = [\"tier=gold|silver\"]\nwithin = \"2h\"",
);

fn run(cfg: &Config, pack: &Path) -> Report {
    let db = Store::open_read_only_at(&cfg.database).unwrap();
    let pack = Pack::load(pack).unwrap();
    replay(cfg, &db, &pack, &Window::default()).unwrap()
}

/// Each differing mail's row and its changed fields.
fn fields(r: &Report) -> BTreeMap<i64, BTreeSet<&'static str>> {
    r.differ
        .iter()
        .map(|d| (d.row, d.changes.iter().map(|c| c.field).collect()))
        .collect()
}

fn local(d: &str) -> DateTime<Utc> {
    chrono_tz::America::Los_Angeles
        .from_local_datetime(&chrono::NaiveDateTime::parse_from_str(d, "%Y-%m-%d %H:%M").unwrap())
        .unwrap()
        .to_utc()
}

#[test]
fn issue_26_replay_of_a_pack_change_shows_exactly_the_mails_each_part_changes_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, silver) = store(dir.path());
    let db = Store::open_read_only_at(&cfg.database).unwrap();
    let stored = db.stored_mail(None).unwrap();
    let queued = db.outbox(None).unwrap().len();
    drop(db);
    assert_eq!(stored.len(), 300);
    let span = stored.last().unwrap().arrival - stored[0].arrival;
    assert!(span > Duration::days(13), "two weeks of mail: {span}");
    let before = checksum(cfg.database.sqlite_path().unwrap());

    // The same pack again: nothing differs (the replay is deterministic).
    let same = changed_pack(dir.path(), "same", &[]);
    let r = run(&cfg, &same);
    assert_eq!(r.compared, 300);
    assert!(r.differ.is_empty(), "{}", r.text());

    // The severity map alone: 24x7 mail that takes its severity from the
    // mailbox is severity 2, and nothing else changes anywhere.
    let severity = run(
        &cfg,
        &changed_pack(dir.path(), "severity", &[SEVERITY_EDIT]),
    );
    assert!(!severity.differ.is_empty());
    for d in &severity.differ {
        assert_eq!(d.mailbox, "24x7", "{}", severity.text());
        assert_eq!(d.changes.len(), 1, "{}", severity.text());
        let c = &d.changes[0];
        assert_eq!(
            (c.field, &c.before, &c.after),
            ("severity", &1.into(), &2.into())
        );
        assert_eq!(c.rules, ["[severity]"]);
    }
    assert_eq!(
        severity.by_rule,
        BTreeMap::from([("[severity]".to_string(), severity.differ.len())])
    );

    // The shorter SLA alone: only the silver customers' mail, its target
    // and timers earlier, under IX-03.
    let sla = run(&cfg, &changed_pack(dir.path(), "sla", &[SLA_EDIT]));
    assert!(!sla.differ.is_empty());
    for d in &sla.differ {
        let from = d.sender.as_deref().unwrap_or_default();
        assert!(silver.iter().any(|s| s == from), "{from}: {}", sla.text());
        for c in &d.changes {
            assert!(
                matches!(c.field, "first_response_due" | "timers"),
                "{}",
                sla.text()
            );
            assert_eq!(c.rules, ["IX-03"]);
        }
        let due = d
            .changes
            .iter()
            .find(|c| c.field == "first_response_due")
            .unwrap();
        let at = |v: &serde_json::Value| DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
        assert!(at(&due.after) < at(&due.before), "{}", sla.text());
    }
    assert_eq!(sla.by_rule.keys().collect::<Vec<_>>(), ["IX-03"]);

    // The holiday alone: only mail whose first response fell due on or
    // after the holiday's opening and whose clock started before its close
    // (at most the working days before it); a request on the day itself is
    // told it waits (IX-04) and answered the next business day.
    let holiday = run(&cfg, &changed_pack(dir.path(), "holiday", &[HOLIDAY_EDIT]));
    assert!(!holiday.differ.is_empty());
    let (from, to) = (local("2026-03-05 18:00"), local("2026-03-10 18:00"));
    for d in &holiday.differ {
        let at = DateTime::parse_from_rfc3339(&d.arrival).unwrap().to_utc();
        assert!(
            from <= at && at < to,
            "{} arrived {}: {}",
            d.row,
            d.arrival,
            holiday.text()
        );
        for c in &d.changes {
            assert!(
                matches!(
                    c.field,
                    "first_response_due" | "timers" | "rules" | "notices" | "replies"
                ),
                "{}",
                holiday.text()
            );
        }
    }
    let on_the_day: Vec<_> = stored
        .iter()
        .filter(|m| {
            (local(&format!("{HOLIDAY} 06:00"))..local(&format!("{HOLIDAY} 18:00")))
                .contains(&m.arrival)
        })
        .collect();
    assert!(!on_the_day.is_empty());
    for d in holiday
        .differ
        .iter()
        .filter(|d| on_the_day.iter().any(|m| m.row == d.row))
    {
        if let Some(c) = d.changes.iter().find(|c| c.field == "first_response_due") {
            assert!(
                c.after.as_str().unwrap() > "2026-03-11",
                "{}",
                holiday.text()
            );
        }
    }
    assert!(holiday.by_rule.contains_key("IX-03"), "{}", holiday.text());

    // All three at once: the mails of the three, with the fields of the three.
    let all = run(
        &cfg,
        &changed_pack(dir.path(), "all", &[HOLIDAY_EDIT, SEVERITY_EDIT, SLA_EDIT]),
    );
    let mut expected: BTreeMap<i64, BTreeSet<&'static str>> = BTreeMap::new();
    for part in [&severity, &sla, &holiday] {
        for (row, f) in fields(part) {
            expected.entry(row).or_default().extend(f);
        }
    }
    assert_eq!(fields(&all), expected, "{}", all.text());
    eprintln!("{}", all.text());

    // The command: the same report, as text and JSON, from the binary.
    let pack = changed_pack(dir.path(), "all", &[HOLIDAY_EDIT, SEVERITY_EDIT, SLA_EDIT]);
    let pack = pack.display().to_string();
    let out = ticketd_cli(&cfg, &["replay", "--pack", &pack, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["differ"].as_array().unwrap().len(), all.differ.len());
    assert_eq!(v["by_rule"]["[severity]"], severity.differ.len());
    let out = ticketd_cli(
        &cfg,
        &[
            "replay",
            "--pack",
            &pack,
            "--since",
            HOLIDAY,
            "--until",
            HOLIDAY,
            "--mailbox",
            "support",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("nothing was sent, and the database was only read"),
        "{text}"
    );
    for line in text.lines().filter(|l| l.starts_with("row ")) {
        assert!(
            line.contains(&format!(" {HOLIDAY}T")) && line.contains(" support "),
            "{line}"
        );
    }
    // check-config takes the changed pack; a broken one is named by file and line.
    let out = ticketd_command_config(&cfg, Path::new(&pack));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("pack from {pack}")));
    let broken = changed_pack(
        dir.path(),
        "broken",
        &[("within = \"2h\"", "within = \"soon\"")],
    );
    let out = ticketd_command_config(&cfg, &broken);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:", broken.display())) && err.contains("soon"),
        "{err}"
    );

    // The database is the same bytes, and nothing more was queued.
    assert_eq!(checksum(cfg.database.sqlite_path().unwrap()), before);
    let db = Store::open_read_only_at(&cfg.database).unwrap();
    assert_eq!(db.outbox(None).unwrap().len(), queued);
}

/// `ticketd check-config CONFIG --pack PACK`.
fn ticketd_command_config(cfg: &Config, pack: &Path) -> std::process::Output {
    crate::harness::ticketd_command()
        .arg("check-config")
        .arg(&cfg.path)
        .arg("--pack")
        .arg(pack)
        .output()
        .unwrap()
}
