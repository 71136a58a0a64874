//! The binary on its own (issue 21): built from source and copied anywhere it explains mail and checks a config with its built-in packs and templates; a closed pipe ends any listing quietly; `ticket N` reads as text.

use crate::cli::config_text;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use ticketd::clock::{Clock, FixedClock};
use ticketd::config::Config;
use ticketd::intake::{Engine, Fetched};
use ticketd::store::Store;

const PACKS: [&str; 5] = ["ixsystems", "qnap", "qnap-jp", "netex", "avanzada7"];

/// A mail for `pack`, as its customers write them.
fn mail_for(pack: &str) -> String {
    let (to, subject, body) = match pack {
        "ixsystems" => (
            "support@ixsystems.example",
            "Pool degraded",
            "Serial: A1-12345. One disk of the pool shows checksum errors.",
        ),
        "qnap" => (
            "support@qnap.example",
            "Volume read-only",
            "Serial: Q23A1234567. The volume became read-only after a firmware update.",
        ),
        "qnap-jp" => (
            "support@qnap.example",
            "NAS の設定について",
            "スナップショットの設定方法を教えてください。",
        ),
        "netex" => (
            "support@netex.example",
            "Severity 1: replication down",
            "HyperIP version 7.0 on Red Hat Enterprise Linux 9 drops every transfer since the upgrade.",
        ),
        _ => (
            "soporte@avanzada7.example",
            "Teléfono no registra",
            "Número de serie: AV7-000123. El teléfono IP no registra en Asterisk.",
        ),
    };
    format!(
        "From: Ann Customer <ann@customer.test>\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{pack}-1@customer.test>\r\nDate: Mon, 16 Nov 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `bin` with nothing of the caller's environment but `HOME`, run in `cwd`.
fn bare(bin: &Path, cwd: &Path, home: &Path) -> Command {
    let mut c = Command::new(bin);
    c.current_dir(cwd)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home);
    c
}

fn explain_json(mut c: Command, eml: &Path, pack: &str) -> serde_json::Value {
    let out = ok(c
        .arg("explain")
        .arg(eml)
        .args([
            "--json",
            "--at",
            "2026-11-16T22:00:00-06:00",
            "--pack",
            pack,
        ])
        .output()
        .expect("run ticketd"));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// Every string of `v` that is an RFC 3339 instant.
fn instants_in(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) if chrono::DateTime::parse_from_rfc3339(s).is_ok() => {
            out.push(s.clone())
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| instants_in(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| instants_in(x, out)),
        _ => {}
    }
}

#[test]
fn issue_21_a_binary_copied_alone_decides_as_the_tree_does_for_every_pack() {
    let d = tempfile::tempdir().unwrap();
    // An empty prefix: nothing in DIR/share/ticketd, no source tree beside it.
    let (bin, home, cwd) = (
        d.path().join("bin/ticketd"),
        d.path().join("home"),
        d.path().join("work"),
    );
    for dir in [bin.parent().unwrap(), &home, &cwd] {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::copy(env!("CARGO_BIN_EXE_ticketd"), &bin).unwrap();
    for pack in PACKS {
        let eml = cwd.join(format!("{pack}.eml"));
        std::fs::write(&eml, mail_for(pack)).unwrap();
        let mut alone = explain_json(bare(&bin, &cwd, &home), &eml, pack);
        let mut tree = bare(Path::new(env!("CARGO_BIN_EXE_ticketd")), &cwd, &home);
        tree.env("TICKETD_DATA_DIR", crate::harness::source_data_dir());
        let mut tree = explain_json(tree, &eml, pack);
        assert_eq!(alone["sources"]["pack"], "built in", "{pack}");
        assert_eq!(alone["sources"]["templates"], "built in", "{pack}");
        let from_tree = tree["sources"]["pack"].as_str().unwrap().to_string();
        assert!(
            from_tree.ends_with(&format!("vendors/{pack}.toml")),
            "{from_tree}"
        );
        assert_eq!(alone["policy"]["pack"], pack);
        // Every instant in one convention: RFC 3339 in the pack's zone, with
        // its offset, the arrival too (no DST change in these two weeks).
        let arrival = alone["arrival"].as_str().unwrap();
        let offset = &arrival[arrival.len() - 6..];
        assert!(offset.starts_with(['+', '-']), "{arrival}");
        let mut instants = Vec::new();
        instants_in(&alone, &mut instants);
        assert!(instants.len() > 3, "{pack}: {instants:?}");
        for t in instants {
            assert!(
                t.ends_with(offset),
                "{pack}: {t} is not in the zone of {arrival}"
            );
        }
        assert!(!alone["replies"].as_array().unwrap().is_empty(), "{pack}");
        alone.as_object_mut().unwrap().remove("sources");
        tree.as_object_mut().unwrap().remove("sources");
        assert_eq!(alone, tree, "{pack}: the built-in data decides otherwise");
    }

    // check-config of a config naming no directories of its own.
    std::fs::write(cwd.join("pw"), "secret\n").unwrap();
    let text: String = config_text(&cwd, "netex")
        .lines()
        .filter(|l| !l.starts_with("templates =") && !l.starts_with("packs ="))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(cwd.join("ticketd.toml"), text).unwrap();
    let out = ok(bare(&bin, &cwd, &home)
        .args(["check-config", "ticketd.toml"])
        .output()
        .unwrap());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("ok (1 mailboxes, pack netex"), "{said}");
    assert!(said.contains("pack from built in"), "{said}");
    assert!(said.contains("templates from built in"), "{said}");
}

/// A config for `netex` in `dir` with one ticket on it, opened by a
/// severity-1 mail at `2026-11-16T22:00:00-06:00`.
fn one_ticket(dir: &Path) -> PathBuf {
    std::fs::write(dir.join("pw"), "secret\n").unwrap();
    let path = dir.join("ticketd.toml");
    std::fs::write(&path, config_text(dir, "netex")).unwrap();
    let cfg = Config::load(&path).unwrap();
    let engine = Engine::from_config(&cfg).unwrap();
    let mut st = Store::open_at(&cfg.database).unwrap();
    let clock = FixedClock::new(
        chrono::DateTime::parse_from_rfc3339("2026-11-17T04:00:00Z")
            .unwrap()
            .to_utc(),
    );
    let raw = mail_for("netex").into_bytes();
    let f = Fetched {
        uidvalidity: 1,
        uid: 1,
        size: raw.len() as u64,
        raw,
        arrival: clock.now(),
    };
    st.in_batch(|st| engine.ingest(st, &cfg.mailboxes[0], &f, &clock))
        .unwrap();
    path
}

#[test]
fn issue_21_ticket_shows_each_event_as_a_line_a_person_reads() {
    let d = tempfile::tempdir().unwrap();
    let config = one_ticket(d.path());
    let out = ok(Command::new(env!("CARGO_BIN_EXE_ticketd"))
        .args(["ticket", "1", "--config"])
        .arg(&config)
        .output()
        .unwrap());
    let text = String::from_utf8_lossy(&out.stdout);
    let events: Vec<&str> = text
        .lines()
        .skip_while(|l| *l != "events:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert!(!events.is_empty(), "{text}");
    for e in &events {
        assert!(!e.contains('{') && !e.contains("\":"), "a JSON event: {e}");
    }
    let policy = events
        .iter()
        .find(|l| l.contains(" policy "))
        .unwrap_or_else(|| panic!("no policy event: {text}"));
    assert!(policy.contains("rules NX-"), "{policy}");
    assert!(policy.contains("severity 1"), "{policy}");
    assert!(policy.contains("tier "), "{policy}");
    assert!(policy.contains("first response due 2026-"), "{policy}");
    assert!(
        policy.contains(" CST"),
        "due times in the pack's zone: {policy}"
    );
    assert!(
        events
            .iter()
            .any(|l| l.contains("escalation_due") && l.contains(" due 2026-")),
        "{text}"
    );
}

#[test]
fn issue_21_a_closed_pipe_ends_every_listing_quietly() {
    let d = tempfile::tempdir().unwrap();
    let config = one_ticket(d.path());
    let config = config.to_str().unwrap();
    let eml = d.path().join("m.eml");
    std::fs::write(&eml, mail_for("netex")).unwrap();
    let eml = eml.to_str().unwrap();
    let commands: &[&[&str]] = &[
        &["tickets", "--json", "--config", config],
        &["tickets", "--config", config],
        &["ticket", "1", "--config", config],
        &["ticket", "1", "--json", "--config", config],
        &["outbox", "--config", config],
        &["outbox", "--json", "--config", config],
        &["timers", "--config", config],
        &["timers", "--json", "--config", config],
        &["contacts", "--config", config],
        &["contacts", "--json", "--config", config],
        &["quarantine", "--config", config],
        &["check-config", config],
        &["explain", eml, "--pack", "netex"],
        &["explain", eml, "--json", "--pack", "netex"],
        &["explain", eml, "--body"],
    ];
    for args in commands {
        // The reader is gone before the command writes its first byte.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_ticketd"))
            .args(*args)
            .env_remove("TICKETD_CONFIG")
            .env("TICKETD_DATA_DIR", crate::harness::source_data_dir())
            .env("RUST_BACKTRACE", "1")
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.is_empty(), "{args:?} said on a closed pipe: {err}");
        assert!(out.status.success(), "{args:?}: {:?}", out.status);
    }
}
