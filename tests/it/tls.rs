//! TLS as it runs in production, against Dovecot and Postfix with certificates from a CA made by the test: implicit TLS and STARTTLS for IMAP and SMTP through the one configuration, and every bad certificate refused in one line with its reason.

use crate::harness::{Daemon, MailStack, Options, ServerCert, TestCa, mail, self_signed};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use ticketd::clock::SystemClock;
use ticketd::config::Config;

const WAIT: Duration = Duration::from_secs(20);

fn stack(cert: ServerCert) -> MailStack {
    MailStack::with(Options {
        postfix: true,
        tls: Some(cert),
        ..Options::default()
    })
}

/// A config reaching the stack as `localhost` (the name its certificate
/// carries) with these TLS modes, trusting `ca` (else the system's store).
fn config(stack: &MailStack, ca: Option<&TestCa>, imap_tls: &str, smtp_tls: &str) -> Config {
    let ca_file = ca.map(|ca| {
        let p: PathBuf = stack.dir.join("ca.pem");
        std::fs::write(&p, ca.pem()).unwrap();
        p
    });
    stack.config(|c| {
        c.host = "localhost".into();
        c.imap_tls = imap_tls.into();
        c.imap_port = if imap_tls == "implicit" {
            stack.imaps_port
        } else {
            stack.imap_port
        };
        c.smtp_tls = smtp_tls.into();
        c.smtp_port = if smtp_tls == "implicit" {
            stack.smtps_port
        } else {
            stack.smtp_port
        };
        c.ca_file = ca_file.clone();
    })
}

/// The errors of an IMAP login and of an SMTP connection, one line each.
async fn refusals(cfg: &Config) -> (String, String) {
    let imap = match ticketd::imap::connect(&cfg.mailboxes[0], &SystemClock).await {
        Ok(_) => panic!("the IMAP connection was accepted"),
        Err(e) => format!("{e:#}"),
    };
    let smtp = match ticketd::outbox::connect(&cfg.smtp, &SystemClock).await {
        Ok(_) => panic!("the SMTP connection was accepted"),
        Err(e) => format!("{e:#}"),
    };
    (imap, smtp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_tls_and_starttls_work_for_imap_and_smtp_with_a_private_ca() {
    let ca = TestCa::new("vendor");
    let stack = stack(ca.issue("localhost", 2020, 2100));
    for (imap_tls, smtp_tls) in [("implicit", "starttls"), ("starttls", "implicit")] {
        let cfg = config(&stack, Some(&ca), imap_tls, smtp_tls);
        let mut s = ticketd::imap::connect(&cfg.mailboxes[0], &SystemClock)
            .await
            .unwrap_or_else(|e| panic!("IMAP {imap_tls}: {e:#}"));
        s.logout().await.expect("LOGOUT");
        let mut c = ticketd::outbox::connect(&cfg.smtp, &SystemClock)
            .await
            .unwrap_or_else(|e| panic!("SMTP {smtp_tls}: {e:#}"));
        c.quit().await.expect("QUIT");
    }

    // End to end as with Microsoft 365: IMAP on implicit TLS, SMTP with STARTTLS.
    let cfg = config(&stack, Some(&ca), "implicit", "starttls");
    let daemon = Daemon::start(&cfg, Arc::new(SystemClock));
    stack
        .deliver(&mail(
            "customer@example.test",
            "support@vendor.test",
            "Pool degraded after update",
            "tls-1@example.test",
            "",
            "Serial A1-12345, the pool shows degraded.",
        ))
        .await;
    stack
        .wait_for_count("customer@example.test", "INBOX", 1, WAIT)
        .await;
    daemon.stop(WAIT).await;

    let dovecot = std::fs::read_to_string(stack.dir.join("dovecot/dovecot.log")).unwrap();
    let tls_logins = dovecot
        .lines()
        .filter(|l| l.contains("Login: user=<support@vendor.test>") && l.contains(", TLS"))
        .count();
    assert!(tls_logins >= 3, "{dovecot}");
    let postfix = std::fs::read_to_string(stack.dir.join("postfix/maillog")).unwrap();
    let tls_sessions = postfix
        .lines()
        .filter(|l| l.contains("TLS connection established from"))
        .count();
    assert!(tls_sessions >= 3, "{postfix}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_ca_file_the_system_store_is_used_and_a_private_ca_is_refused() {
    let ca = TestCa::new("vendor");
    let stack = stack(ca.issue("localhost", 2020, 2100));
    let cfg = config(&stack, None, "implicit", "starttls");
    let (imap, smtp) = refusals(&cfg).await;
    let reason = "it is not signed by a CA the system trusts (a private CA needs ca_file)";
    assert_eq!(
        imap,
        format!(
            "mailbox support: the TLS certificate of localhost:{} was refused: {reason}",
            stack.imaps_port
        )
    );
    assert_eq!(
        smtp,
        format!(
            "SMTP relay localhost:{p}: the TLS certificate of localhost:{p} was refused: {reason}",
            p = stack.smtp_port
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_certificates_are_refused_with_their_reason_for_imap_and_smtp() {
    let ca = TestCa::new("vendor");
    let other = TestCa::new("stranger");
    let cases = [
        (
            "expired",
            ca.issue("localhost", 2020, 2021),
            "it expired on 2021-01-01 00:00:00 UTC".to_string(),
        ),
        (
            "wrong host",
            ca.issue("mail.example.test", 2020, 2100),
            "it is for another host (mail.example.test), not localhost".to_string(),
        ),
        (
            "self-signed",
            self_signed("localhost"),
            "it is self-signed (trust it only by putting it in ca_file)".to_string(),
        ),
        (
            "unknown CA",
            other.issue("localhost", 2020, 2100),
            String::new(), // names the ca_file: filled in below
        ),
    ];
    for (case, cert, reason) in cases {
        let stack = stack(cert);
        let reason = match reason.is_empty() {
            true => format!(
                "it is not signed by the CA in {}",
                stack.dir.join("ca.pem").display()
            ),
            false => reason,
        };
        for (imap_tls, smtp_tls) in [("implicit", "starttls"), ("starttls", "implicit")] {
            let cfg = config(&stack, Some(&ca), imap_tls, smtp_tls);
            let (imap, smtp) = refusals(&cfg).await;
            let imap_port = cfg.mailboxes[0].endpoint.port;
            let smtp_port = cfg.smtp.endpoint.port;
            println!("{case}, IMAP {imap_tls}: {imap}");
            println!("{case}, SMTP {smtp_tls}: {smtp}");
            assert_eq!(
                imap,
                format!(
                    "mailbox support: the TLS certificate of localhost:{imap_port} was refused: {reason}"
                ),
                "{case}, IMAP {imap_tls}"
            );
            assert_eq!(
                smtp,
                format!(
                    "SMTP relay localhost:{smtp_port}: the TLS certificate of localhost:{smtp_port} was refused: {reason}"
                ),
                "{case}, SMTP {smtp_tls}"
            );
        }
        if case == "expired" {
            // What the daemon says: that one line, nothing about a lost connection.
            let cfg = config(&stack, Some(&ca), "implicit", "starttls");
            let err = ticketd::daemon::run_once(cfg, Arc::new(SystemClock))
                .await
                .unwrap_err();
            let msg = format!("{err:#}");
            assert!(
                msg.contains(&format!(
                    "mailbox support: the TLS certificate of localhost:{} was refused: {reason}",
                    stack.imaps_port
                )),
                "{msg}"
            );
        }
    }
}
