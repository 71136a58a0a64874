//! The command line: check-config and explain, as an admin and a support engineer use them.

use crate::harness::repo;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn ticketd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ticketd"))
        .args(args)
        .env_remove("TICKETD_CONFIG")
        .env("TICKETD_DATA_DIR", crate::harness::source_data_dir())
        .output()
        .expect("run ticketd")
}

fn temp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// A config for `pack` with its database in `dir` (the mailbox password file is `dir/pw`).
pub fn config_text(dir: &Path, pack: &str) -> String {
    format!(
        r#"[daemon]
database = "{dir}/t.db"
templates = "{repo}/templates"
packs = "{repo}/config/vendors"
pack = "{pack}"

[identity]
message_id_domain = "tickets.vendor.test"
own_addresses = ["support@vendor.test"]
staff = ["lead@vendor.test"]

[smtp]
host = "127.0.0.1"
port = 2525
tls = "none"

[[mailbox]]
name = "support"
role = "support"
address = "support@vendor.test"
host = "127.0.0.1"
port = 1143
tls = "none"
username = "support@vendor.test"
password_file = "pw"

[staff.recipients]
"Director of Customer Services" = "director@vendor.test"
"President and General Manager" = ["president@vendor.test", "office@vendor.test"]
"#,
        dir = dir.display(),
        repo = repo().display()
    )
}

#[test]
fn check_config_accepts_every_shipped_pack() {
    let d = temp();
    std::fs::write(d.path().join("pw"), "secret\n").unwrap();
    for pack in ["ixsystems", "qnap", "qnap-jp", "netex", "avanzada7"] {
        let path = d.path().join(format!("{pack}.toml"));
        std::fs::write(&path, config_text(d.path(), pack)).unwrap();
        let out = ticketd(&["check-config", path.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{pack}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("pack {pack}")));
    }
}

#[test]
fn check_config_reports_every_problem_with_file_and_line() {
    let d = temp();
    let text = config_text(d.path(), "nosuchpack")
        .replace(
            "tls = \"none\"\n\n[[mailbox]]",
            "tls = \"sometimes\"\n\n[[mailbox]]",
        )
        .replace("role = \"support\"", "role = \"sales\"")
        .replace(
            "host = \"127.0.0.1\"\nport = 1143",
            "host = \"imap.example.com\"\nport = 1143",
        );
    let path = d.path().join("broken.toml");
    std::fs::write(&path, &text).unwrap();
    let out = ticketd(&["check-config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let p = path.display();
    for expected in [
        format!("{p}:5: pack `nosuchpack`: no file"),
        format!("{p}:15: tls = `sometimes` is not one of implicit, starttls, none"),
        format!("{p}:19: mailbox `support`: role `sales` is not one of support, rma, 24x7"),
        format!("{p}:23: tls = \"none\" is allowed only for loopback hosts, not imap.example.com"),
        format!("{p}:25: cannot read secret file"),
    ] {
        assert!(err.contains(&expected), "missing `{expected}` in:\n{err}");
    }
}

#[test]
fn check_config_names_the_line_of_a_syntax_error_and_of_an_unknown_key() {
    let d = temp();
    let path = d.path().join("bad.toml");
    std::fs::write(
        &path,
        config_text(d.path(), "ixsystems").replace("[smtp]\n", "[smtp]\nhots = \"x\"\n"),
    )
    .unwrap();
    let out = ticketd(&["check-config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:13: unknown field `hots`", path.display())),
        "{err}"
    );
}

fn explain_json(file: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["explain", file.to_str().unwrap(), "--json"];
    args.extend_from_slice(extra);
    let out = ticketd(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

#[test]
fn nx_03_explain_lists_the_escalation_timers_a_severity_1_report_sets() {
    let d = temp();
    let path = d.path().join("s1.eml");
    std::fs::write(
        &path,
        "From: Ann <ann@customer.test>\r\nTo: support@vendor.test\r\nSubject: Severity 1: replication down\r\nMessage-ID: <s1@customer.test>\r\n\r\nHyperIP version 7.0 on Red Hat Enterprise Linux 9 drops every transfer since the upgrade.\r\n",
    )
    .unwrap();
    let v = explain_json(
        &path,
        &["--pack", "netex", "--at", "2026-11-21T02:00:00-06:00"],
    );
    let steps: Vec<&serde_json::Value> = v["timers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"] == "escalation")
        .collect();
    assert_eq!(
        steps,
        [
            &serde_json::json!({"kind": "escalation", "at": "2026-11-21T10:00:00-06:00", "rule": "NX-03",
             "to": "Director of Customer Services"}),
            &serde_json::json!({"kind": "escalation", "at": "2026-11-22T02:00:00-06:00", "rule": "NX-03",
             "to": "President and General Manager"}),
        ]
    );
    // The first-response target (NX-01, 4 hours on the 24x7 clock for
    // severity 1) sets a warning an hour before and the breach notice.
    let sla: Vec<(&str, &str)> = v["timers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"] != "escalation")
        .map(|t| (t["kind"].as_str().unwrap(), t["at"].as_str().unwrap()))
        .collect();
    assert_eq!(
        sla,
        [
            ("sla_warning", "2026-11-21T05:00:00-06:00"),
            ("sla_breach", "2026-11-21T06:00:00-06:00")
        ]
    );
    let v = explain_json(
        &repo().join("scripts/demo-mail/01-english.eml"),
        &["--at", "2026-03-02T09:15:00-08:00"],
    );
    assert!(
        v["timers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["kind"] != "escalation"),
        "iXsystems sets no escalation steps"
    );
}

#[test]
fn explain_shows_the_decision_with_the_documented_fields() {
    let v = explain_json(
        &repo().join("scripts/demo-mail/01-english.eml"),
        &["--at", "2026-03-02T09:15:00-08:00"],
    );
    assert_eq!(v["class"], "human");
    assert_eq!(v["would_reply"], true);
    assert_eq!(v["ticket"]["action"], "new");
    assert_eq!(v["ticket"]["id"], 1);
    assert_eq!(v["extracted"]["serials"], serde_json::json!(["A1-12345"]));
    assert_eq!(
        v["extracted"]["invoices"],
        serde_json::json!(["INV-2026-0042"])
    );
    for k in ["ticket_ids", "rma_codes", "tax_ids"] {
        assert!(v["extracted"][k].is_array(), "{k}");
    }
    let r = &v["replies"][0];
    assert_eq!(r["to"], serde_json::json!(["ann@customer.test"]));
    assert_eq!(r["template"], "ack_new");
    assert_eq!(r["language"], "en");
    assert_eq!(r["subject"], "Re: Pool degraded after power cut [TKT#1]");
    assert!(r["body"].as_str().unwrap().contains("[TKT#1]"));

    let v = explain_json(&repo().join("scripts/demo-mail/05-out-of-office.eml"), &[]);
    assert_eq!(v["class"], "auto_reply");
    assert_eq!(v["would_reply"], false);
    assert_eq!(v["replies"], serde_json::json!([]));

    let v = explain_json(
        &repo().join("scripts/demo-mail/03-spanish.eml"),
        &["--pack", "avanzada7"],
    );
    assert_eq!(v["replies"][0]["language"], "es");
    assert!(
        v["extracted"]["tax_ids"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "B12345678")
    );
}

#[test]
fn explain_reports_the_reply_text_of_a_mail_and_of_a_bare_body() {
    let d = temp();
    let body = d.path().join("reply.txt");
    std::fs::write(
        &body,
        "The pool is back, thanks.\r\n\r\n-- \r\nAnn\r\n\r\nOn Mon, Mar 2, 2026 at 9:15 AM Support <support@vendor.test> wrote:\r\n> We received your request.\r\n",
    )
    .unwrap();
    let out = ticketd(&["explain", "--body", body.to_str().unwrap(), "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["reply_text"], "The pool is back, thanks.");

    let mail = d.path().join("m.eml");
    std::fs::write(
        &mail,
        "From: Ann <ann@customer.test>\r\nTo: support@vendor.test\r\nSubject: Re: Pool degraded\r\n\r\nStill degraded.\r\n\r\nAm 02.03.2026 um 09:15 schrieb Support <support@vendor.test>:\r\n> Old text\r\n",
    )
    .unwrap();
    let v = explain_json(&mail, &[]);
    assert_eq!(v["reply_text"], "Still degraded.");
}

#[test]
fn explain_never_panics_whatever_the_file_holds() {
    let d = temp();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("binary", (0..=255u8).cycle().take(10_000).collect()),
        ("header only", b"Subject: x".to_vec()),
        ("no body", b"From: a@b.c\r\n".to_vec()),
        ("long header", format!("From: a@b.c\r\nSubject: {}\r\n\r\nx", "x".repeat(200_000)).into_bytes()),
        ("deep nesting", {
            let mut s = String::from("From: a@b.c\r\n");
            for i in 0..200 {
                s.push_str(&format!("Content-Type: multipart/mixed; boundary=b{i}\r\n\r\n--b{i}\r\n"));
            }
            s.into_bytes()
        }),
        ("bad charset", b"From: a@b.c\r\nSubject: =?x-unknown?B?//79?=\r\nContent-Type: text/plain; charset=klingon\r\n\r\n\xff\xfe\r\n".to_vec()),
        ("bare CR", b"From: a@b.c\rSubject: x\r\rbody".to_vec()),
    ];
    for (name, bytes) in cases {
        let f = d.path().join("m.eml");
        std::fs::write(&f, &bytes).unwrap();
        let out = ticketd(&["explain", f.to_str().unwrap(), "--json"]);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(v["class"].is_string(), "{name}");
    }
}

#[test]
fn issue_21_item_3_explain_handles_every_mail_of_the_own_corpus() {
    // Mail written for the tests: bounces, auto-replies, lists, common clients, broken MIME.
    let ran = explain_every_mail(&crate::corpus::own_corpus());
    assert!(ran >= 50, "only {ran} corpus files were read");
}

#[test]
fn issue_21_item_3_explain_handles_every_mail_of_the_extra_corpus() {
    // Real mail written by others, when TICKETD_EXTRA_CORPUS names it.
    let Some(root) = crate::corpus::extra_corpus() else {
        println!(
            "{} is not set: no extra corpus to run",
            crate::corpus::EXTRA_CORPUS
        );
        return;
    };
    let ran = explain_every_mail(&root);
    assert!(ran > 100, "only {ran} corpus files were read");
}

/// Runs `explain` on every .eml, .txt and .msg file under `root`; how many.
fn explain_every_mail(root: &Path) -> usize {
    let mut files = Vec::new();
    walk(root, &mut files);
    let mut ran = 0;
    for f in files.iter().filter(|f| {
        f.extension()
            .is_some_and(|e| e == "eml" || e == "txt" || e == "msg")
    }) {
        let raw = std::fs::read(f).unwrap();
        let opts = ticketd::explain::Options {
            data_dir: Some(repo()),
            ..Default::default()
        };
        let now = chrono::DateTime::parse_from_rfc3339("2026-03-02T10:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let v = std::panic::catch_unwind(|| ticketd::explain::explain(&raw, &opts, now))
            .unwrap_or_else(|_| panic!("explain panicked on {}", f.display()))
            .unwrap_or_else(|e| panic!("explain failed on {}: {e:#}", f.display()));
        assert!(v["class"].is_string());
        ran += 1;
    }
    ran
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn nx_03_check_config_names_an_escalation_recipient_without_an_address() {
    let d = temp();
    std::fs::write(d.path().join("pw"), "secret\n").unwrap();
    let text = config_text(d.path(), "netex").replace(
        "\"President and General Manager\" = [\"president@vendor.test\", \"office@vendor.test\"]\n",
        "\"President\" = \"not-an-address\"\n",
    );
    let path = d.path().join("ticketd.toml");
    std::fs::write(&path, &text).unwrap();
    let out = ticketd(&["check-config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let line_of = |needle: &str| text[..text.find(needle).expect(needle)].lines().count() + 1;
    let p = path.display();
    for expected in [
        format!(
            "{p}:{}: pack `netex` escalates to \"President and General Manager\", who has no address",
            line_of("[staff.recipients]")
        ),
        format!(
            "{p}:{}: staff.recipients.\"President\": `not-an-address` is not an email address",
            line_of("\"President\" =")
        ),
    ] {
        assert!(err.contains(&expected), "missing `{expected}` in:\n{err}");
    }
}

#[test]
fn check_config_rejects_a_broken_pack_with_file_line_and_reason() {
    let d = temp();
    std::fs::write(d.path().join("pw"), "secret\n").unwrap();
    let packs = d.path().join("vendors");
    std::fs::create_dir(&packs).unwrap();
    let good = std::fs::read_to_string(repo().join("config/vendors/netex.toml")).unwrap();
    let broken = good
        .replacen("after = \"8h\"", "after = \"8 hours\"", 1)
        .replacen(
            "when = [\"severity=1\"]",
            "when = [\"severity=1\", \"weekend\"]",
            1,
        )
        .replacen("rule = \"NX-04\"", "rule = \"nx4\"", 1)
        .replacen(
            "text.es = \"Su número de seguimiento",
            "text.fr = \"Su número de seguimiento",
            1,
        );
    let pack_path = packs.join("netex.toml");
    std::fs::write(&pack_path, &broken).unwrap();
    let line_of = |needle: &str| {
        let at = broken.find(needle).expect(needle);
        // The entry's table header is the line the problem is reported at.
        let header = broken[..at].rfind("\n[").map_or(0, |i| i + 1);
        broken[..header].lines().count() + 1
    };
    let text = config_text(d.path(), "netex").replace(
        &format!("packs = \"{}/config/vendors\"", repo().display()),
        &format!("packs = \"{}\"", packs.display()),
    );
    let path = d.path().join("ticketd.toml");
    std::fs::write(&path, text).unwrap();
    let out = ticketd(&["check-config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let p = pack_path.display();
    for expected in [
        format!(
            "{p}:{}: escalation.after: `8 hours` is not a duration",
            line_of("8 hours")
        ),
        format!(
            "{p}:{}: condition `weekend` is not known",
            line_of("\"weekend\"")
        ),
        format!("{p}:{}: rule `nx4` is not a rule ID", line_of("\"nx4\"")),
        format!(
            "{p}:{}: notice `tracking`: text.es is missing",
            line_of("text.fr")
        ),
    ] {
        assert!(err.contains(&expected), "missing `{expected}` in:\n{err}");
    }
}

#[test]
fn contracts_import_updates_in_place_and_a_bad_file_changes_nothing() {
    let d = temp();
    std::fs::write(d.path().join("pw"), "secret\n").unwrap();
    let cfg = d.path().join("t.toml");
    std::fs::write(&cfg, config_text(d.path(), "qnap")).unwrap();
    let cfg = cfg.to_str().unwrap();

    // The shipped example imports whole.
    let example = repo().join("config/contracts.example.csv");
    let out = ticketd(&[
        "contracts",
        "import",
        example.to_str().unwrap(),
        "--config",
        cfg,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("6 inserted, 0 updated, 0 unchanged"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let show = |key: &str| -> serde_json::Value {
        let out = ticketd(&["contracts", "show", key, "--config", cfg]);
        assert!(
            out.status.success(),
            "{key}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let v = show("q23a1234567");
    assert_eq!(v["by"], "serial");
    assert_eq!(v["contract"]["company"], "Studio \"Blue\" Ltd");
    assert_eq!(
        v["contract"]["plans"],
        serde_json::json!(["advanced_replacement_5y", "onsite"])
    );
    assert_eq!(show("Soporte@Empresa.example")["by"], "email");
    let v = show("B12345678");
    assert_eq!(
        (v["by"].as_str(), v["contract"]["serial"].as_str()),
        (Some("tax_id"), Some("AV7-000123"))
    );

    // Re-import with one changed row and one new row.
    let text = std::fs::read_to_string(&example).unwrap();
    let changed = text.replace("TS-453D,2025-03-01", "TS-453D,2025-03-02")
        + "Q24C0000001,new@studio.example,Studio,,silver,TS-464,2025-05-05,,,,,,,\n";
    let good = d.path().join("good.csv");
    std::fs::write(&good, &changed).unwrap();
    let out = ticketd(&[
        "contracts",
        "import",
        good.to_str().unwrap(),
        "--config",
        cfg,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 inserted, 1 updated, 5 unchanged"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // A file with good rows and bad ones: exit 1, every bad row named, nothing imported.
    let bad = d.path().join("bad.csv");
    let bad_text = changed.replace("TS-453D,2025-03-02", "TS-453D,2025-03-03")
        + "Q24C0000002,x@studio.example,Studio,,silver,TS-464,2025-13-01,,,,,,,\n"
        + ",y@studio.example,Studio,,silver,TS-464,2025-05-05,,,,,,,\n"
        + "Q24C0000001,z@studio.example,Studio,,silver,TS-464,2025-05-05,,,,,,,\n";
    std::fs::write(&bad, bad_text).unwrap();
    let out = ticketd(&[
        "contracts",
        "import",
        bad.to_str().unwrap(),
        "--config",
        cfg,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let b = bad.display();
    for expected in [
        format!("{b}:9: purchased_on `2025-13-01` is not a date (YYYY-MM-DD)"),
        format!("{b}:10: empty serial"),
        format!("{b}:11: serial `Q24C0000001` is already on line 8"),
    ] {
        assert!(err.contains(&expected), "missing `{expected}` in:\n{err}");
    }
    assert_eq!(
        show("Q23A1234567")["contract"]["purchased_on"],
        "2025-03-02"
    );
    let out = ticketd(&["contracts", "show", "Q24C0000002", "--config", cfg]);
    assert_eq!(out.status.code(), Some(1));
}

/// `explain --contracts` reads the entitlements from a CSV file and shows the `policy` object.
#[test]
fn explain_with_contracts_shows_the_policy_of_a_known_customer() {
    // AV-05: a maintenance contract with company name and CIF goes to the assigned technician.
    let d = temp();
    let mail = d.path().join("m.eml");
    std::fs::write(
        &mail,
        "From: Soporte <soporte@empresa.example>\r\nTo: soporte@avanzada7.test\r\nSubject: Centralita\r\nMessage-ID: <c1@empresa.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nEmpresa: Empresa Ejemplo S.L.\r\nCIF: B12345678\r\nLa centralita se reinicia cada noche.\r\n",
    )
    .unwrap();
    let contracts = repo().join("config/contracts.example.csv");
    let v = explain_json(
        &mail,
        &[
            "--pack",
            "avanzada7",
            "--at",
            "2026-11-16T16:30:00Z",
            "--contracts",
            contracts.to_str().unwrap(),
        ],
    );
    let p = &v["policy"];
    assert_eq!(p["pack"], "avanzada7");
    assert_eq!(p["contract"]["serial"], "AV7-000123");
    assert_eq!(p["contract"]["matched_by"], "email");
    assert_eq!(p["route"]["rule"], "AV-05");
    assert_eq!(p["business_open"], true);
    assert_eq!(p["clock_starts_at"], "2026-11-16T17:30:00+01:00");
    assert_eq!(p["first_response_due"], "2026-11-17T17:30:00+01:00");
    assert_eq!(p["warranty"]["status"], "expired");
    assert_eq!(p["warranty"]["until"], "2026-03-31");
    assert_eq!(p["tier"], "customer");
    assert_eq!(p["severity"], 3);
    assert!(p["missing"].as_array().unwrap().is_empty());
    assert!(p["escalations"].as_array().unwrap().is_empty());
    assert!(p["rules"].as_array().unwrap().iter().any(|r| r == "AV-05"));
    assert_eq!(v["replies"][0]["language"], "es");
    // A bad contracts file is an error naming its line, not a silent empty book.
    let bad = d.path().join("bad.csv");
    std::fs::write(&bad, "serial,email\nX1,a@b\n").unwrap();
    let out = ticketd(&[
        "explain",
        mail.to_str().unwrap(),
        "--contracts",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.csv:1:"));
}

/// The 1-based line of the first line containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no `{needle}` in the text"))
        + 1
}

#[test]
fn check_config_wants_one_way_to_log_in_and_complete_oauth2_settings() {
    let d = temp();
    std::fs::write(d.path().join("pw"), "secret\n").unwrap();
    let smtp_oauth2 = r#"oauth2 = { token_url = "http://login.example.com/token", grant = "client_credentials" }"#;
    let both = r#"oauth2 = { token_file = "pw" }"#;
    let incomplete = r#"oauth2 = { mechanism = "xoauth3", token_url = "https://login.example.com/t/oauth2/v2.0/token", client_id = "abc", grant = "refresh_token" }"#;
    let mut text = config_text(d.path(), "ixsystems")
        .replacen(
            "port = 2525\ntls = \"none\"\n",
            &format!(
                "port = 2525\ntls = \"none\"\nusername = \"support@vendor.test\"\n{smtp_oauth2}\n"
            ),
            1,
        )
        .replace(
            "password_file = \"pw\"\n",
            &format!("password_file = \"pw\"\n{both}\n"),
        );
    for (name, login) in [("rma", incomplete), ("qa", "")] {
        text.push_str(&format!(
            "\n[[mailbox]]\nname = \"{name}\"\nrole = \"rma\"\naddress = \"support@vendor.test\"\nhost = \"127.0.0.1\"\nport = 1143\ntls = \"none\"\nusername = \"{name}@vendor.test\"\n{login}\n"
        ));
    }
    let path = d.path().join("oauth2.toml");
    std::fs::write(&path, &text).unwrap();
    let out = ticketd(&["check-config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let p = path.display();
    let smtp = line_of(&text, smtp_oauth2);
    let rma = line_of(&text, incomplete);
    for expected in [
        format!(
            "{p}:{smtp}: smtp: oauth2 token_url must be https:// (plain http only to loopback)"
        ),
        format!("{p}:{smtp}: smtp: oauth2 with token_url needs client_id"),
        format!(
            "{p}:{smtp}: smtp: oauth2 grant client_credentials needs client_secret_file or client_secret_credential"
        ),
        format!(
            "{p}:{smtp}: smtp: oauth2 grant client_credentials needs scope (Microsoft 365: https://outlook.office365.com/.default)"
        ),
        format!(
            "{p}:{}: mailbox `support`: set a password or oauth2, not both (one way to log in)",
            line_of(&text, both)
        ),
        format!(
            "{p}:{rma}: mailbox `rma`: oauth2 mechanism `xoauth3` is not one of xoauth2, oauthbearer"
        ),
        format!(
            "{p}:{rma}: mailbox `rma`: oauth2 grant refresh_token needs refresh_token_file or refresh_token_credential"
        ),
        format!(
            "{p}:{}: mailbox `qa`: set password_file or password_credential, or oauth2",
            line_of(&text, "name = \"qa\"")
        ),
    ] {
        assert!(err.contains(&expected), "missing `{expected}` in:\n{err}");
    }
}

/// The Microsoft 365 and Gmail examples at the end of config/ticketd.toml,
/// uncommented: its `[smtp]` and `[[mailbox]]` blocks.
fn preset(provider: &str) -> String {
    let shipped = std::fs::read_to_string(repo().join("config/ticketd.toml")).unwrap();
    let section = shipped
        .split("# ----")
        .find(|s| s.contains(&format!("# {provider}")))
        .unwrap_or_else(|| panic!("no {provider} example"));
    let from = section.find("# [smtp]").expect("an [smtp] example");
    section[from..]
        .lines()
        .take_while(|l| {
            !l.starts_with("# ") || !l[2..].starts_with(|c: char| c.is_ascii_uppercase())
        })
        .filter_map(|l| l.strip_prefix("# "))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn check_config_accepts_the_microsoft_365_and_gmail_examples() {
    let d = temp();
    for name in [
        "m365-client-secret",
        "gmail-client-secret",
        "gmail-refresh-token",
    ] {
        std::fs::write(d.path().join(name), "from the provider\n").unwrap();
    }
    for (provider, address) in [
        ("Microsoft 365", "support@contoso.com"),
        ("Gmail", "support@example.com"),
    ] {
        let blocks = preset(provider);
        assert!(blocks.contains("oauth2 = {"), "{blocks}");
        let base = config_text(d.path(), "ixsystems");
        let head = &base[..base.find("[smtp]").unwrap()];
        let text = format!("{}\n{blocks}", head.replace("support@vendor.test", address));
        let path = d.path().join("preset.toml");
        std::fs::write(&path, &text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_ticketd"))
            .args(["check-config", path.to_str().unwrap()])
            .env("CREDENTIALS_DIRECTORY", d.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{provider}:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn ix_05_explain_shows_the_rma_code_a_replacement_request_would_get_and_its_ix_06_timers() {
    let d = temp();
    let path = d.path().join("rma.eml");
    std::fs::write(
        &path,
        "From: ann@customer.test\r\nTo: support@vendor.test\r\nSubject: Failed drive, need a replacement\r\nMessage-ID: <r1@customer.test>\r\n\r\nThe drive in bay 2 failed (serial A1-B2C3D4E5).\r\n",
    )
    .unwrap();
    let v = explain_json(
        &path,
        &["--pack", "ixsystems", "--at", "2026-12-01T09:00:00-08:00"],
    );
    assert_eq!(v["rma"]["state"], "issued");
    assert_eq!(v["rma"]["code"], v["ticket"]["id"].to_string().as_str());
    assert_eq!(v["rma"]["expires"], "2026-12-31T09:00:00-08:00");
    let kinds: Vec<&str> = v["timers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["rule"] == "IX-06")
        .map(|t| t["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["rma_reminder", "rma_deadline"]);
}

#[test]
fn issue_11_check_config_names_the_line_of_every_staff_member_problem() {
    let d = temp();
    std::fs::write(d.path().join("pw"), "secret\n").unwrap();
    std::fs::write(d.path().join("short.key"), "short\n").unwrap();
    let path = d.path().join("ticketd.toml");
    let text = config_text(d.path(), "ixsystems")
        + r#"
[staff.members.alice]
addresses = ["alice@staff.test", "not-an-address"]
queues = ["support", "billing"]

[staff.members.bob]
addresses = "alice@staff.test"

[staff.members.carol]
addresses = ["support@vendor.test"]
"#;
    let text = text.replace(
        "[staff.recipients]",
        "[staff]\ntoken_key_file = \"short.key\"\nauthserv_id = \"mx vendor\"\ndkim_nameservers = [\"dns.example\"]\n\n[staff.recipients]",
    );
    std::fs::write(&path, &text).unwrap();
    let out = ticketd(&["check-config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let line = |needle: &str| {
        text.lines()
            .position(|l| {
                l.starts_with(needle.split(' ').next().unwrap_or(needle)) && l.contains(needle)
            })
            .map(|i| i + 1)
            .unwrap_or_else(|| panic!("{needle} not in the config"))
    };
    let p = path.display();
    for (at, says) in [
        (line("token_key_file"), "at least 16"),
        (line("authserv_id"), "an authserv-id is one word"),
        (
            line("dkim_nameservers"),
            "`dns.example` is not an IP address",
        ),
        (
            line("addresses = [\"alice@staff.test\", \"not-an-address\"]"),
            "`not-an-address` is not an email address",
        ),
        (
            line("queues = [\"support\", \"billing\"]"),
            "`billing` is not a mailbox name or role",
        ),
        (
            line("addresses = \"alice@staff.test\""),
            "is already alice's",
        ),
        (
            line("addresses = [\"support@vendor.test\"]"),
            "is one of [identity] own_addresses",
        ),
    ] {
        assert!(
            err.contains(&format!("{p}:{at}: ")),
            "line {at} for {says:?}:\n{err}"
        );
        assert!(err.contains(says), "{says:?}:\n{err}");
    }
}
