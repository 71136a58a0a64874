//! OAuth2 logins end to end: Dovecot validating JWTs (XOAUTH2, OAUTHBEARER), Postfix taking SMTP AUTH through Dovecot, and a token endpoint on loopback that issues, expires early, refuses or is down; the daemon's logs never show a secret.

use crate::harness::{
    Issue, MailStack, Options, TestCa, Ticketd, TokenEndpoint, assert_no_secrets, mail,
};
use std::time::Duration;
use ticketd::clock::{Clock, SystemClock};
use ticketd::store::Store;

const WAIT: Duration = Duration::from_secs(30);
const USER: &str = "support@vendor.test";
const CUSTOMER: &str = "customer@example.test";

fn oauth2_stack(tls: Option<&TestCa>) -> MailStack {
    MailStack::with(Options {
        postfix: true,
        oauth2: true,
        tls: tls.map(|ca| ca.issue("localhost", 2020, 2100)),
        ..Options::default()
    })
}

/// A mailbox's or the relay's `oauth2 = { ... }` line against `endpoint`
/// (the secrets are the files `TokenEndpoint::write_secrets` wrote next to
/// the config).
fn oauth2(endpoint: &TokenEndpoint, mechanism: &str, grant: &str) -> String {
    let grant = match grant {
        "refresh_token" => "grant = \"refresh_token\", refresh_token_file = \"refresh-token\", scope = \"https://outlook.office.com/IMAP.AccessAsUser.All offline_access\"".to_string(),
        _ => "grant = \"client_credentials\", scope = \"https://outlook.office365.com/.default\"".to_string(),
    };
    format!(
        "oauth2 = {{ mechanism = \"{mechanism}\", token_url = \"{}\", client_id = \"{}\", client_secret_file = \"client-secret\", {grant} }}",
        endpoint.url(),
        endpoint.client_id
    )
}

fn smtp_oauth2(endpoint: &TokenEndpoint, grant: &str) -> String {
    format!(
        "username = \"{USER}\"\n{}",
        oauth2(endpoint, "xoauth2", grant)
    )
}

async fn customer_writes(stack: &MailStack, n: u32) {
    stack
        .deliver(&mail(
            CUSTOMER,
            USER,
            &format!("Replication task {n} fails"),
            &format!("oauth-{n}@example.test"),
            "",
            "Serial A1-12345: the replication task stops with an error.",
        ))
        .await;
}

fn count(log: &str, what: &str) -> usize {
    log.lines().filter(|l| l.contains(what)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth2_mail_is_fetched_and_answered_over_tls_with_tokens_from_the_endpoint() {
    let ca = TestCa::new("vendor");
    let stack = oauth2_stack(Some(&ca));
    let endpoint = TokenEndpoint::start(&stack.oauth2_key, USER);
    endpoint.write_secrets(&stack.dir);
    let ca_file = stack.dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    // As with Microsoft 365: IMAP on implicit TLS, SMTP with STARTTLS.
    stack.config(|c| {
        c.host = "localhost".into();
        c.imap_tls = "implicit".into();
        c.imap_port = stack.imaps_port;
        c.smtp_tls = "starttls".into();
        c.ca_file = Some(ca_file.clone());
        c.logins = vec![("support", oauth2(&endpoint, "xoauth2", "refresh_token"))];
        c.smtp_login = smtp_oauth2(&endpoint, "client_credentials");
    });
    let daemon = Ticketd::run(&stack.dir.join("ticketd.toml"));
    customer_writes(&stack, 1).await;
    stack.wait_for_count(CUSTOMER, "INBOX", 1, WAIT).await;
    let log = daemon.stop().await;

    assert_eq!(endpoint.requests("refresh_token"), 1, "{log}");
    assert_eq!(endpoint.requests("client_credentials"), 1, "{log}");
    let url = endpoint.url();
    assert_eq!(
        count(
            &log,
            &format!("mailbox support: new access token from {url} (valid for 3600 s)")
        ),
        1,
        "{log}"
    );
    assert_eq!(
        count(
            &log,
            &format!(
                "SMTP relay localhost:{}: new access token from {url} (valid for 3600 s)",
                stack.smtp_port
            )
        ),
        1,
        "{log}"
    );
    let dovecot = std::fs::read_to_string(stack.dir.join("dovecot/dovecot.log")).unwrap();
    assert!(
        dovecot.lines().any(
            |l| l.contains(&format!("Login: user=<{USER}>, method=XOAUTH2")) && l.contains(", TLS")
        ),
        "{dovecot}"
    );
    let postfix = std::fs::read_to_string(stack.dir.join("postfix/maillog")).unwrap();
    assert!(
        postfix.contains(&format!("sasl_method=XOAUTH2, sasl_username={USER}")),
        "{postfix}"
    );
    assert!(postfix.contains("TLS connection established"), "{postfix}");
    assert_no_secrets(&log, &endpoint.secrets());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth2_a_token_that_stops_working_mid_run_is_renewed_once_and_no_mail_is_lost() {
    let stack = oauth2_stack(None);
    let endpoint = TokenEndpoint::start(&stack.oauth2_key, USER);
    endpoint.write_secrets(&stack.dir);
    // Tokens that die after 3 s while the endpoint says an hour: ticketd
    // keeps using them until a server refuses one.
    endpoint.set(Issue::ExpireEarly(3));
    let cfg = stack.config(|c| {
        c.logins = vec![(
            "support",
            oauth2(&endpoint, "oauthbearer", "client_credentials"),
        )];
        c.smtp_login = smtp_oauth2(&endpoint, "refresh_token");
    });
    let daemon = Ticketd::run(&stack.dir.join("ticketd.toml"));
    customer_writes(&stack, 1).await;
    stack.wait_for_count(CUSTOMER, "INBOX", 1, WAIT).await;

    let expired = endpoint.newest_expiry();
    crate::harness::wait_until("the tokens to expire", Duration::from_secs(10), || {
        SystemClock.now().timestamp() > expired + 1
    })
    .await;
    // Both connections end, as a server restart or idle timeout ends them:
    // the next logins use the cached, now dead, tokens.
    stack.doveadm(&["kick", USER]);
    stack.stop_postfix();
    stack.start_postfix();
    customer_writes(&stack, 2).await;
    stack.wait_for_count(CUSTOMER, "INBOX", 2, WAIT).await;
    let log = daemon.stop().await;

    assert_eq!(count(&log, "access token refused"), 2, "{log}");
    assert_eq!(
        count(
            &log,
            "mailbox{mailbox=support}: ticketd::imap: access token refused (OAUTHBEARER: "
        ),
        1,
        "{log}"
    );
    assert_eq!(
        count(
            &log,
            &format!(
                "SMTP relay 127.0.0.1:{}: access token refused (",
                stack.smtp_port
            )
        ),
        1,
        "{log}"
    );
    assert_eq!(endpoint.requests("client_credentials"), 2, "{log}");
    assert_eq!(endpoint.requests("refresh_token"), 2, "{log}");
    let st = Store::open_read_only_at(&cfg.database).unwrap();
    let sent = st.outbox(Some("sent")).unwrap();
    assert_eq!(sent.len(), 2, "{log}");
    // The second reply met a dropped connection once, and no more.
    assert!(sent.iter().all(|r| r.attempts <= 2), "{sent:?}");
    assert!(st.outbox(Some("failed")).unwrap().is_empty());
    assert_eq!(st.tickets().unwrap().len(), 2);
    assert_no_secrets(&log, &endpoint.secrets());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth2_a_refused_refresh_is_one_clear_error_and_the_other_mailbox_goes_on() {
    let stack = oauth2_stack(None);
    let endpoint = TokenEndpoint::start(&stack.oauth2_key, USER);
    endpoint.write_secrets(&stack.dir);
    endpoint.set(Issue::RefuseRefresh);
    // rma reads its token from a file an external helper keeps fresh.
    let rma_token = stack.jwt("rma@vendor.test", 3600);
    std::fs::write(stack.dir.join("rma.token"), format!("{rma_token}\n")).unwrap();
    stack.config(|c| {
        c.mailboxes = vec![("support", "support"), ("rma", "rma")];
        c.logins = vec![
            ("support", oauth2(&endpoint, "xoauth2", "refresh_token")),
            (
                "rma",
                "oauth2 = { mechanism = \"xoauth2\", token_file = \"rma.token\" }".into(),
            ),
        ];
        c.smtp_login = smtp_oauth2(&endpoint, "client_credentials");
    });
    let daemon = Ticketd::run(&stack.dir.join("ticketd.toml"));
    stack
        .append(
            "rma@vendor.test",
            "INBOX",
            &mail(
                CUSTOMER,
                "rma@vendor.test",
                "RMA for a failed disk",
                "rma-1@example.test",
                "",
                "Serial A1-12345, disk 3 failed.",
            ),
            "02-Mar-2026 09:00:00 -0800",
        )
        .await;
    stack.wait_for_count(CUSTOMER, "INBOX", 1, WAIT).await;
    let refusal = format!(
        "mailbox support: the token endpoint {} refused the refresh_token grant (HTTP 400): invalid_grant: AADSTS70000: The refresh token has been revoked by the user.",
        endpoint.url()
    );
    daemon.wait_for_log(&refusal, 1, WAIT).await;
    let log = daemon.stop().await;

    // One request, one error line with its slow retry, nothing else about it.
    assert_eq!(endpoint.requests("refresh_token"), 1, "{log}");
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("refresh_token grant"))
        .collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(
        lines[0].contains("ERROR") && lines[0].contains("retry_in_s=300"),
        "{}",
        lines[0]
    );
    assert_no_secrets(&log, &[endpoint.secrets(), vec![rma_token]].concat());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth2_an_unreachable_token_endpoint_is_retried_until_it_answers() {
    let stack = oauth2_stack(None);
    let mut endpoint = TokenEndpoint::start(&stack.oauth2_key, USER);
    endpoint.write_secrets(&stack.dir);
    endpoint.down();
    stack.config(|c| {
        c.logins = vec![("support", oauth2(&endpoint, "xoauth2", "refresh_token"))];
        c.smtp_login = smtp_oauth2(&endpoint, "refresh_token");
    });
    let daemon = Ticketd::run(&stack.dir.join("ticketd.toml"));
    customer_writes(&stack, 1).await;
    let unreachable = format!(
        "mailbox support: cannot get an access token from {}: cannot connect to 127.0.0.1:{}",
        endpoint.url(),
        endpoint.port
    );
    daemon.wait_for_log(&unreachable, 1, WAIT).await;
    endpoint.up();
    stack.wait_for_count(CUSTOMER, "INBOX", 1, WAIT).await;
    let log = daemon.stop().await;
    assert!(
        log.lines()
            .any(|l| l.contains(&unreachable) && l.contains("WARN")),
        "{log}"
    );
    assert_no_secrets(&log, &endpoint.secrets());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth2_dovecot_refuses_a_token_it_cannot_verify() {
    let stack = oauth2_stack(None);
    let forged = crate::harness::jwt(b"not the key Dovecot knows", USER, 3600);
    std::fs::write(stack.dir.join("forged.token"), &forged).unwrap();
    let cfg = stack.config(|c| {
        c.logins = vec![(
            "support",
            "oauth2 = { mechanism = \"oauthbearer\", token_file = \"forged.token\" }".into(),
        )];
    });
    let err = match ticketd::imap::connect(&cfg.mailboxes[0], &SystemClock).await {
        Ok(_) => panic!("Dovecot took a forged token"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.starts_with(&format!(
            "login to mailbox support as {USER} was refused: OAUTHBEARER: "
        )),
        "{err}"
    );
    assert!(err.ends_with("(with a new access token too)"), "{err}");
    assert!(!err.contains(&forged));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_login_to_the_relay_goes_through_dovecot_and_a_wrong_one_is_named() {
    let stack = oauth2_stack(None);
    for (password, ok) in [("secret", true), ("wrong", false)] {
        std::fs::write(stack.dir.join("smtp-password"), password).unwrap();
        let cfg = stack.config(|c| {
            c.smtp_login = format!("username = \"{USER}\"\npassword_file = \"smtp-password\"");
        });
        match ticketd::outbox::connect(&cfg.smtp, &SystemClock).await {
            Ok(mut c) => {
                assert!(ok, "a wrong password was taken");
                c.quit().await.expect("QUIT");
            }
            Err(e) => {
                let e = format!("{e:#}");
                assert!(!ok, "{e}");
                assert!(
                    e.starts_with(&format!(
                        "SMTP relay 127.0.0.1:{}: login as {USER}: permanent error (535)",
                        stack.smtp_port
                    )),
                    "{e}"
                );
            }
        }
    }
}
