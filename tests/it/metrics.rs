//! `/metrics` during an end-to-end run: the counters match what happened (5 mails in, 4 replies sent, 1 auto-reply left unanswered), `/healthz` answers, and every series the shipped Grafana dashboard queries exists.

use crate::harness::{Daemon, MailStack, free_port, mail, repo, wait_until, wait_until_async};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use ticketd::clock::{SharedClock, SystemClock};

/// One HTTP/1.1 GET on loopback: (status line, body).
pub async fn get(port: u16, path: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut c = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to /metrics");
    c.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).await.unwrap();
    let (head, body) = out.split_once("\r\n\r\n").expect("a response head");
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    )
}

/// Samples by their series (name and labels as written): value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn value(s: &BTreeMap<String, f64>, series: &str) -> f64 {
    s.get(series).copied().unwrap_or(0.0)
}

/// The metric names the dashboard's queries use.
fn dashboard_series() -> Vec<String> {
    let text = std::fs::read_to_string(repo().join("grafana/ticketd.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut names = Vec::new();
    for panel in v["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            let mut rest = expr;
            while let Some(i) = rest.find("ticketd_") {
                let name: String = rest[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rest = &rest[i + name.len()..];
                names.push(name);
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_an_end_to_end_run_and_cover_the_dashboard() {
    let stack = MailStack::start();
    let port = free_port();
    let cfg = stack.config(|c| c.extra = format!("\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n"));
    let clock: SharedClock = Arc::new(SystemClock);
    let daemon = Daemon::start(&cfg, clock);
    for i in 0..4 {
        stack
            .deliver(&mail(
                &format!("Customer {i} <c{i}@customer.test>"),
                "support@vendor.test",
                &format!("Pool {i} degraded"),
                &format!("m{i}@customer.test"),
                "",
                "Serial A1-123456 reports a degraded pool.",
            ))
            .await;
    }
    stack
        .deliver(&mail(
            "Out Of Office <ooo@customer.test>",
            "support@vendor.test",
            "Automatic reply: away",
            "ooo@customer.test",
            "Auto-Submitted: auto-replied\r\n",
            "I am away until Monday.",
        ))
        .await;
    let want_in = r#"ticketd_messages_total{mailbox="support",outcome="processed",class="human"}"#;
    let want_sent = r#"ticketd_smtp_results_total{class="2xx"}"#;
    let deadline = Duration::from_secs(30);
    // The daemon binds its listener once it has started: wait for that.
    wait_until("the metrics listener", deadline, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
    .await;
    let last = std::cell::RefCell::new(String::new());
    wait_until_async(
        "5 mails in, 4 sent and recorded",
        deadline,
        || async {
            let (status, body) = get(port, "/metrics").await;
            assert_eq!(status, "HTTP/1.1 200 OK");
            let s = samples(&body);
            let total: f64 = s
                .iter()
                .filter(|(k, _)| k.starts_with("ticketd_messages_total{"))
                .map(|(_, v)| v)
                .sum();
            // The 2xx counts at the server's 250; the store records the send
            // with the outbox's next step: wait for both.
            let done = total >= 5.0
                && value(&s, want_sent) >= 4.0
                && value(&s, "ticketd_outbox_queued") == 0.0;
            *last.borrow_mut() = body;
            done
        },
        || last.borrow().clone(),
    )
    .await;
    let text = last.into_inner();
    let s = samples(&text);
    assert_eq!(value(&s, want_in), 4.0, "{text}");
    // The out-of-office reply belongs to no ticket: stored, ignored, unanswered.
    assert_eq!(
        value(
            &s,
            r#"ticketd_messages_total{mailbox="support",outcome="ignored",class="auto_reply"}"#
        ),
        1.0,
        "{text}"
    );
    assert_eq!(value(&s, want_sent), 4.0, "{text}");
    assert_eq!(value(&s, r#"ticketd_smtp_results_total{class="5xx"}"#), 0.0);
    assert_eq!(
        value(&s, "ticketd_intake_latency_seconds_count"),
        5.0,
        "{text}"
    );
    assert_eq!(
        value(&s, "ticketd_send_latency_seconds_count"),
        4.0,
        "{text}"
    );
    assert_eq!(value(&s, "ticketd_outbox_queued"), 0.0, "{text}");
    assert_eq!(value(&s, "ticketd_quarantined_messages"), 0.0);
    assert_eq!(
        value(
            &s,
            r#"ticketd_imap_login_failures_total{mailbox="support"}"#
        ),
        0.0
    );
    assert_eq!(value(&s, "ticketd_live"), 1.0);
    assert!(
        s.keys()
            .any(|k| k.starts_with("ticketd_build_info{version=")),
        "{text}"
    );
    wait_until("the four replies at the sink", deadline, || {
        stack.sink_messages().len() == 4
    })
    .await;

    let series: Vec<&str> = s.keys().map(|k| k.split('{').next().unwrap()).collect();
    let queried = dashboard_series();
    assert!(queried.len() >= 10, "{queried:?}");
    for name in &queried {
        assert!(
            series.contains(&name.as_str()),
            "the dashboard queries {name}, which /metrics does not serve:\n{text}"
        );
    }

    let (status, body) = get(port, "/healthz").await;
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    let (status, _) = get(port, "/nothing").await;
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    daemon.stop(Duration::from_secs(30)).await;
}
