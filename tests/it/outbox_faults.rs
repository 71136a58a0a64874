//! The outbox under faults: a relay that hangs across restarts, a mail that stops the sender each time, and a kill right after a 250.

use crate::harness::{Daemon, MailStack, free_port, wait_until};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use ticketd::clock::{SharedClock, SystemClock};
use ticketd::config::Config;
use ticketd::parse::parse;
use ticketd::store::{OutboxRow, Store};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

const WAIT: Duration = Duration::from_secs(30);

fn clock() -> SharedClock {
    Arc::new(SystemClock)
}

fn rows(cfg: &Config) -> Vec<OutboxRow> {
    Store::open_read_only_at(&cfg.database)
        .and_then(|s| s.outbox(None))
        .unwrap_or_default()
}

async fn deliver_many(stack: &MailStack, n: usize) {
    stack
        .deliver_from_customers("support@vendor.test", "customer", n)
        .await;
}

/// Starts `run --once` as a task, to be aborted as a kill would stop it.
fn spawn_once(cfg: &Config) -> JoinHandle<anyhow::Result<()>> {
    let cfg = cfg.clone();
    tokio::spawn(async move { ticketd::daemon::run_once(cfg, clock()).await })
}

async fn kill(task: JoinHandle<anyhow::Result<()>>) {
    task.abort();
    let _ = task.await;
}

/// A relay on loopback that accepts connections and never greets.
struct HangingRelay {
    accepted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl HangingRelay {
    async fn bind(port: u16) -> HangingRelay {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the hanging relay");
        let accepted = Arc::new(AtomicUsize::new(0));
        let n = accepted.clone();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((sock, _)) = listener.accept().await {
                n.fetch_add(1, Ordering::SeqCst);
                held.push(sock);
            }
        });
        HangingRelay { accepted, task }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Closes the listener and every connection it holds.
    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defect_1_a_restart_storm_while_the_relay_hangs_then_recovers_delivers_every_reply() {
    let stack = MailStack::start();
    stack.stop_sink();
    let relay = HangingRelay::bind(stack.smtp_port).await;
    let cfg = stack.config(|c| c.timeout_secs = 1);
    deliver_many(&stack, 3).await;

    // 25 runs, each killed while it waits for the relay's greeting.
    for run in 0..25 {
        let before = relay.accepted();
        let task = spawn_once(&cfg);
        wait_until(&format!("run {run} to reach the relay"), WAIT, || {
            relay.accepted() > before
        })
        .await;
        kill(task).await;
    }
    let acks: Vec<OutboxRow> = rows(&cfg);
    assert_eq!(acks.len(), 3, "three replies queued");

    // One run that lives long enough for the greeting to time out: a
    // temporary failure, recorded.
    let daemon = Daemon::start(&cfg, clock());
    wait_until("the greeting timeout to be recorded", WAIT, || {
        let r = rows(&cfg);
        !r.is_empty() && r.iter().all(|r| r.last_error.is_some())
    })
    .await;
    daemon.stop(WAIT).await;
    let deferred = rows(&cfg);
    assert!(
        deferred.iter().all(|r| r.status == "queued"),
        "a hanging relay fails nothing: {deferred:#?}"
    );

    // The relay recovers: every reply goes out, none failed.
    relay.stop().await;
    stack.start_sink(&[]);
    ticketd::daemon::run_once(cfg.clone(), clock())
        .await
        .expect("run --once");
    let after = rows(&cfg);
    let status: Vec<(&str, &str)> = after
        .iter()
        .map(|r| (r.kind.as_str(), r.status.as_str()))
        .collect();
    assert_eq!(status, vec![("ack_new", "sent"); 3], "{after:#?}");
    assert!(
        after.iter().all(|r| r.attempts == 1),
        "one real attempt each"
    );
    assert_eq!(stack.sink_messages().len(), 3);
}

/// A relay that greets and answers EHLO, then hangs at MAIL FROM, counting
/// the MAIL commands it saw: to the daemon, a mail that stops the sender.
struct StallAtMail {
    mails: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl StallAtMail {
    async fn bind(port: u16) -> StallAtMail {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the relay");
        let mails = Arc::new(AtomicUsize::new(0));
        let n = mails.clone();
        let task = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let n = n.clone();
                tokio::spawn(async move {
                    let (r, mut w) = sock.into_split();
                    let mut lines = BufReader::new(r).lines();
                    if w.write_all(b"220 relay.test ESMTP\r\n").await.is_err() {
                        return;
                    }
                    while let Ok(Some(line)) = lines.next_line().await {
                        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                        let reply: &[u8] = match verb.as_str() {
                            "EHLO" | "HELO" => b"250 relay.test\r\n",
                            "MAIL" => {
                                n.fetch_add(1, Ordering::SeqCst);
                                // Never answered; hold the connection.
                                while let Ok(Some(_)) = lines.next_line().await {}
                                return;
                            }
                            "QUIT" => b"221 bye\r\n",
                            _ => b"250 ok\r\n",
                        };
                        if w.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        StallAtMail { mails, task }
    }

    fn mails(&self) -> usize {
        self.mails.load(Ordering::SeqCst)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defect_1_a_mail_that_stops_the_sender_every_time_leaves_the_queue_and_staff_are_told() {
    let stack = MailStack::start();
    stack.stop_sink();
    let relay = StallAtMail::bind(stack.smtp_port).await;
    let cfg = stack.config(|_| {});
    deliver_many(&stack, 1).await;
    let ack_failed = |cfg: &Config| {
        rows(cfg)
            .iter()
            .any(|r| r.kind == "ack_new" && r.status == "failed")
    };
    let mut runs = 0;
    while !ack_failed(&cfg) {
        assert!(
            runs < 10,
            "the mail never left the queue: {:#?}",
            rows(&cfg)
        );
        runs += 1;
        let before = relay.mails();
        let task = spawn_once(&cfg);
        wait_until("the sender to stop or the mail to fail", WAIT, || {
            relay.mails() > before || ack_failed(&cfg)
        })
        .await;
        // Stopped as a crash would stop it: no outcome recorded.
        kill(task).await;
    }
    let all = rows(&cfg);
    let ack = all.iter().find(|r| r.kind == "ack_new").unwrap();
    assert_eq!(ack.status, "failed");
    assert_eq!(ack.attempts, 0, "never a real attempt");
    assert!(
        ack.last_error
            .as_deref()
            .is_some_and(|e| e.contains("no outcome")),
        "{ack:?}"
    );
    assert_eq!(runs, ticketd::outbox::MAX_CLAIMS as usize + 1);
    let notice = all
        .iter()
        .find(|r| r.kind == "staff_send_failed")
        .expect("staff told");
    assert_eq!(notice.rcpt_to, vec!["lead@vendor.test"]);
    relay.task.abort();
}

/// A TCP proxy in front of the SMTP sink that, once `n` mails have had
/// their 250 to the end of DATA forwarded, forwards nothing more and tells
/// the test (which then kills the daemon).
struct FreezingProxy {
    port: u16,
    frozen: Arc<Notify>,
    connections: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl FreezingProxy {
    async fn start(upstream: u16, n: usize) -> FreezingProxy {
        let port = free_port();
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the proxy");
        let frozen = Arc::new(Notify::new());
        let connections = Arc::new(AtomicUsize::new(0));
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (f, c) = (frozen.clone(), connections.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                    continue;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let end_of_data = Arc::new(AtomicBool::new(false));
                let (eod, st) = (end_of_data.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut tail: Vec<u8> = Vec::new();
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let Ok(k) = cr.read(&mut buf).await else {
                            return;
                        };
                        if k == 0 || st.load(Ordering::SeqCst) {
                            return;
                        }
                        tail.extend_from_slice(&buf[..k]);
                        if tail.ends_with(b"\r\n.\r\n") {
                            eod.store(true, Ordering::SeqCst);
                        }
                        let keep = tail.len().saturating_sub(5);
                        tail.drain(..keep);
                        if sw.write_all(&buf[..k]).await.is_err() {
                            return;
                        }
                    }
                });
                let (acc, st, f) = (accepted.clone(), stop.clone(), f.clone());
                tokio::spawn(async move {
                    let mut pending: Vec<u8> = Vec::new();
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        let Ok(k) = sr.read(&mut buf).await else {
                            return;
                        };
                        if k == 0 {
                            return;
                        }
                        pending.extend_from_slice(&buf[..k]);
                        while let Some(p) = pending.iter().position(|&b| b == b'\n') {
                            let line: Vec<u8> = pending.drain(..=p).collect();
                            if st.load(Ordering::SeqCst) {
                                // Frozen: hold the connection, forward nothing.
                                std::future::pending::<()>().await;
                            }
                            if cw.write_all(&line).await.is_err() {
                                return;
                            }
                            if line.starts_with(b"250 ")
                                && end_of_data.swap(false, Ordering::SeqCst)
                            {
                                let seen = acc.fetch_add(1, Ordering::SeqCst) + 1;
                                if seen == n {
                                    st.store(true, Ordering::SeqCst);
                                    f.notify_one();
                                }
                            }
                        }
                    }
                });
            }
        });
        FreezingProxy {
            port,
            frozen,
            connections,
            task,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defect_3_a_kill_right_after_a_250_re_sends_at_most_one_reply_per_connection() {
    const MAILS: usize = 60;
    const KILL_AFTER: usize = 40;
    let stack = MailStack::start();
    let direct = stack.config(|_| {});
    let proxy = FreezingProxy::start(stack.smtp_port, KILL_AFTER).await;
    let port = proxy.port;
    let through_proxy = stack.config(|c| c.smtp_port = port);
    deliver_many(&stack, MAILS).await;

    let task = spawn_once(&through_proxy);
    tokio::time::timeout(WAIT, proxy.frozen.notified())
        .await
        .expect("the proxy to see the 250s");
    // Killed right after the last 250 went through.
    kill(task).await;
    let connections = proxy.connections.load(Ordering::SeqCst);
    proxy.task.abort();
    assert!(
        stack.sink_messages().len() >= KILL_AFTER,
        "the sink took what the proxy saw accepted"
    );

    // Restarted, straight to the sink: everything is delivered.
    ticketd::daemon::run_once(direct.clone(), clock())
        .await
        .expect("run --once");
    let all = rows(&direct);
    assert_eq!(all.len(), MAILS);
    assert!(all.iter().all(|r| r.status == "sent"), "{all:#?}");
    let mut by_id: HashMap<String, usize> = HashMap::new();
    for m in stack.sink_messages() {
        let id = parse(&m, chrono::DateTime::UNIX_EPOCH)
            .message_id
            .expect("a Message-ID");
        *by_id.entry(id).or_default() += 1;
    }
    assert_eq!(by_id.len(), MAILS, "every reply delivered");
    let resent: usize = by_id.values().map(|n| n - 1).sum();
    eprintln!("re-sent after the kill: {resent} (connections through the proxy: {connections})");
    assert!(
        resent <= connections.min(4),
        "{resent} replies re-sent, more than one per connection ({connections})"
    );
}
