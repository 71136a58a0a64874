//! Test harness: the shared kit (tests/kit: mail stack, config, waiting, `ticketd run`) with what only the integration tests need: the in-process daemon, a test CA, a token endpoint, a DNS server, a notify socket, proxies, and helpers to drive them.

pub use crate::kit::process::Ticketd;
pub use crate::kit::repo;
pub use crate::kit::stack::{
    ConfigText, MailStack, Options, SETUP_HINT, ServerCert, free_port, jwt, mail, require,
    tempdir_in,
};
pub use crate::kit::wait::{POLL, held_within, wait_until, wait_until_async};
use base64::Engine as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use ticketd::config::Config;
use tokio::net::TcpStream;

impl Ticketd {
    /// The built `ticketd run` with its log at trace level (every line the
    /// code can write).
    pub fn run(config: &Path) -> Ticketd {
        Ticketd::start_bin(
            Path::new(env!("CARGO_BIN_EXE_ticketd")),
            config,
            "trace",
            false,
        )
    }

    /// With `RUST_LOG` at `level`, its log appended to the log of the
    /// earlier runs with this config (a restart).
    pub fn rerun(config: &Path, level: &str) -> Ticketd {
        Ticketd::start_bin(
            Path::new(env!("CARGO_BIN_EXE_ticketd")),
            config,
            level,
            true,
        )
    }
}

/// `ticketd::daemon::run` in-process on `clock`, until [`Daemon::stop`].
pub struct Daemon {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Daemon {
    pub fn start(cfg: &Config, clock: ticketd::clock::SharedClock) -> Daemon {
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(ticketd::daemon::run(cfg.clone(), clock, async {
            let _ = rx.await;
        }));
        Daemon { stop, task }
    }

    /// Asks it to stop and waits (up to `deadline`) for a clean stop.
    pub async fn stop(self, deadline: Duration) {
        self.stop.send(()).expect("the daemon is running");
        tokio::time::timeout(deadline, self.task)
            .await
            .expect("a clean stop")
            .expect("the daemon task")
            .expect("the daemon");
    }
}

/// A certificate authority made for one test.
pub struct TestCa {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, format!("{name} test CA"));
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        TestCa {
            issuer: rcgen::CertifiedIssuer::self_signed(p, key).unwrap(),
        }
    }

    /// The CA's certificate, PEM (what `ca_file` holds).
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `host`, valid from `not_before` to
    /// `not_after` (years).
    pub fn issue(&self, host: &str, not_before: i32, not_after: i32) -> ServerCert {
        let (p, key) = server_params(host, not_before, not_after);
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        ServerCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

fn server_params(
    host: &str,
    not_before: i32,
    not_after: i32,
) -> (rcgen::CertificateParams, rcgen::KeyPair) {
    let mut p = rcgen::CertificateParams::new(vec![host.to_string()]).unwrap();
    p.distinguished_name.push(rcgen::DnType::CommonName, host);
    p.not_before = rcgen::date_time_ymd(not_before, 1, 1);
    p.not_after = rcgen::date_time_ymd(not_after, 1, 1);
    // rustls refuses a leaf marked as a CA.
    p.is_ca = rcgen::IsCa::ExplicitNoCa;
    (p, rcgen::KeyPair::generate().unwrap())
}

/// A self-signed server certificate for `host`.
pub fn self_signed(host: &str) -> ServerCert {
    let (p, key) = server_params(host, 2020, 2100);
    let cert = p.self_signed(&key).unwrap();
    ServerCert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// What the token endpoint does with the next requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issue {
    /// Tokens valid for an hour, and the answer says so.
    Normal,
    /// Tokens that expire after this many seconds while the answer says an
    /// hour: tokens that stop working before their time.
    ExpireEarly(i64),
    /// Refresh-token grants refused with invalid_grant (revoked consent).
    RefuseRefresh,
}

struct EndpointState {
    key: Vec<u8>,
    user: String,
    issue: Issue,
    /// The grant_type of every request, in order.
    grants: Vec<String>,
    /// Every access token handed out.
    issued: Vec<String>,
    /// When the newest access token expires (Unix seconds).
    newest_exp: i64,
}

/// An OAuth2 token endpoint on loopback (plain HTTP/1.1, written for the
/// tests): the refresh-token and client-credentials grants of one client,
/// issuing JWTs that the stack's Dovecot takes. It can expire tokens early,
/// refuse refreshes, or be down.
pub struct TokenEndpoint {
    pub port: u16,
    pub client_id: String,
    pub client_secret: String,
    pub refresh_token: String,
    state: Arc<Mutex<EndpointState>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The path of the endpoint, shaped as Microsoft's.
const TOKEN_PATH: &str = "/vendor-tenant/oauth2/v2.0/token";

impl TokenEndpoint {
    /// Issues tokens for `user` signed with `key` (the stack's).
    pub fn start(key: &[u8], user: &str) -> TokenEndpoint {
        let random = |p: &str| format!("{p}-{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a token endpoint port");
        let mut e = TokenEndpoint {
            port: listener.local_addr().unwrap().port(),
            client_id: random("client"),
            client_secret: random("client-secret"),
            refresh_token: random("refresh-token"),
            state: Arc::new(Mutex::new(EndpointState {
                key: key.to_vec(),
                user: user.to_string(),
                issue: Issue::Normal,
                grants: Vec::new(),
                issued: Vec::new(),
                newest_exp: 0,
            })),
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
        };
        e.serve(listener);
        e
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}{TOKEN_PATH}", self.port)
    }

    pub fn set(&self, issue: Issue) {
        self.state.lock().unwrap().issue = issue;
    }

    /// How many requests of this grant type came.
    pub fn requests(&self, grant: &str) -> usize {
        let st = self.state.lock().unwrap();
        st.grants.iter().filter(|g| *g == grant).count()
    }

    /// When the newest token it issued expires (Unix seconds).
    pub fn newest_expiry(&self) -> i64 {
        self.state.lock().unwrap().newest_exp
    }

    /// Every secret it knows: the client secret, the refresh token and each
    /// access token issued.
    pub fn secrets(&self) -> Vec<String> {
        let mut out = vec![self.client_secret.clone(), self.refresh_token.clone()];
        out.extend(self.state.lock().unwrap().issued.iter().cloned());
        out
    }

    /// Writes the client secret and the refresh token into `dir`
    /// (`client-secret`, `refresh-token`), as an admin would.
    pub fn write_secrets(&self, dir: &Path) {
        std::fs::write(
            dir.join("client-secret"),
            format!("{}\n", self.client_secret),
        )
        .unwrap();
        std::fs::write(
            dir.join("refresh-token"),
            format!("{}\n", self.refresh_token),
        )
        .unwrap();
    }

    /// Stops listening: connections are refused until [`TokenEndpoint::up`].
    pub fn down(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag and closes.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            t.join().expect("the token endpoint thread");
        }
    }

    /// Listens again on its port.
    pub fn up(&mut self) {
        let listener =
            std::net::TcpListener::bind(("127.0.0.1", self.port)).expect("token endpoint port");
        self.serve(listener);
    }

    fn serve(&mut self, listener: std::net::TcpListener) {
        self.stop.store(false, Ordering::SeqCst);
        let stop = self.stop.clone();
        let state = self.state.clone();
        let client = (
            self.client_id.clone(),
            self.client_secret.clone(),
            self.refresh_token.clone(),
        );
        self.thread = Some(std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(conn) = conn {
                    let _ = serve_token_request(conn, &state, &client);
                }
            }
        }));
    }
}

impl Drop for TokenEndpoint {
    fn drop(&mut self) {
        self.down();
    }
}

fn form_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One request, one answer, then the connection closes.
fn serve_token_request(
    conn: std::net::TcpStream,
    state: &Mutex<EndpointState>,
    (client_id, client_secret, refresh_token): &(String, String, String),
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut r = BufReader::new(conn.try_clone()?);
    let mut request_line = String::new();
    r.read_line(&mut request_line)?;
    let mut length = 0;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body)?;
    let form: Vec<(String, String)> = String::from_utf8_lossy(&body)
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (form_decode(k), form_decode(v)))
        .collect();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let grant = get("grant_type").unwrap_or_default().to_string();
    let mut st = state.lock().unwrap();
    st.grants.push(grant.clone());
    let refuse = |status: &str, error: &str, description: &str| {
        (
            status.to_string(),
            serde_json::json!({"error": error, "error_description": description}),
        )
    };
    let secret_ok = get("client_secret") == Some(client_secret.as_str());
    let (status, answer) = if request_line != format!("POST {TOKEN_PATH} HTTP/1.1\r\n") {
        refuse("404 Not Found", "not_found", "no such endpoint")
    } else if get("client_id") != Some(client_id.as_str()) {
        refuse(
            "401 Unauthorized",
            "invalid_client",
            "AADSTS700016: Application not found in the directory.",
        )
    } else if grant == "refresh_token" && st.issue == Issue::RefuseRefresh {
        refuse(
            "400 Bad Request",
            "invalid_grant",
            "AADSTS70000: The refresh token has been revoked by the user.",
        )
    } else if grant == "refresh_token" && get("refresh_token") != Some(refresh_token.as_str()) {
        refuse(
            "400 Bad Request",
            "invalid_grant",
            "AADSTS9002313: Invalid request. Malformed refresh token.",
        )
    } else if !secret_ok && (grant == "client_credentials" || get("client_secret").is_some()) {
        refuse(
            "401 Unauthorized",
            "invalid_client",
            "AADSTS7000215: Invalid client secret provided.",
        )
    } else if grant == "client_credentials" && get("scope").is_none() {
        refuse(
            "400 Bad Request",
            "invalid_scope",
            "AADSTS1002012: The provided value for scope is not valid.",
        )
    } else if grant != "refresh_token" && grant != "client_credentials" {
        refuse(
            "400 Bad Request",
            "unsupported_grant_type",
            "AADSTS70003: unsupported grant type",
        )
    } else {
        let secs = match st.issue {
            Issue::ExpireEarly(s) => s,
            _ => 3600,
        };
        let token = jwt(&st.key, &st.user, secs);
        st.issued.push(token.clone());
        st.newest_exp = ticketd::clock::Clock::now(&ticketd::clock::SystemClock).timestamp() + secs;
        (
            "200 OK".to_string(),
            serde_json::json!({"token_type": "Bearer", "expires_in": 3600, "access_token": token}),
        )
    };
    drop(st);
    let body = answer.to_string();
    let mut w = conn;
    // Refresh answers come chunked, the others with a length: both as providers send them.
    if grant == "refresh_token" {
        write!(
            w,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )?;
        let (a, b) = body.split_at(body.len() / 2);
        write!(
            w,
            "{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
            a.len(),
            b.len()
        )?;
    } else {
        write!(
            w,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
    }
    w.flush()
}

/// The built `ticketd` binary, with none of the variables a service manager
/// or a shell sets that change its behaviour.
pub fn ticketd_command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ticketd"));
    c.env_remove("TICKETD_CONFIG")
        .env_remove("JOURNAL_STREAM")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .env_remove("RUST_LOG");
    c
}

/// Runs the built `ticketd` with `args` and `--config` of `cfg`.
pub fn ticketd_cli(cfg: &Config, args: &[&str]) -> std::process::Output {
    ticketd_command()
        .args(args)
        .arg("--config")
        .arg(&cfg.path)
        .output()
        .expect("run ticketd")
}

/// A data directory laid out as the package installs it (`templates/`,
/// `vendors/`), made of links to the source tree's, for running the built
/// binary without a config (`TICKETD_DATA_DIR`).
pub fn source_data_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("data");
    std::fs::create_dir_all(&d).unwrap();
    for (link, target) in [("templates", "templates"), ("vendors", "config/vendors")] {
        let l = d.join(link);
        let target = repo().join(target);
        if std::fs::read_link(&l).ok().as_ref() != Some(&target) {
            // Missing, or left by another checkout sharing this target dir:
            // made beside it and renamed over it, so a test reading through
            // it meanwhile never finds it gone.
            let fresh = d.join(format!(
                "{link}.{}.{:x}",
                std::process::id(),
                fastrand::u64(..)
            ));
            std::os::unix::fs::symlink(&target, &fresh).unwrap();
            std::fs::rename(&fresh, &l).unwrap();
        }
    }
    d
}

/// A `$NOTIFY_SOCKET` of our own: a unix datagram socket that records every
/// sd_notify message the daemon sends, with when it came.
pub struct NotifySocket {
    pub path: PathBuf,
    messages: std::sync::Arc<std::sync::Mutex<Vec<(Instant, String)>>>,
    _dir: tempfile::TempDir,
}

impl NotifySocket {
    pub fn bind() -> NotifySocket {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let sock = std::os::unix::net::UnixDatagram::bind(&path).expect("bind NOTIFY_SOCKET");
        let messages = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let m = messages.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            // Ends when the test process does; a datagram socket has no peer to close it.
            while let Ok(n) = sock.recv(&mut buf) {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                m.lock().unwrap().push((Instant::now(), text));
            }
        });
        NotifySocket {
            path,
            messages,
            _dir: dir,
        }
    }

    /// Every message so far, oldest first.
    pub fn messages(&self) -> Vec<(Instant, String)> {
        self.messages.lock().unwrap().clone()
    }

    /// Waits for a message, after the first `skip`, one of whose lines is
    /// `line`; returns its index and when it came.
    pub async fn wait_for(&self, skip: usize, line: &str, deadline: Duration) -> (usize, Instant) {
        let mut found = None;
        wait_until(&format!("{line:?} on NOTIFY_SOCKET"), deadline, || {
            found = self
                .messages()
                .into_iter()
                .enumerate()
                .skip(skip)
                .find(|(_, (_, m))| m.lines().any(|l| l == line || l.starts_with(line)))
                .map(|(i, (t, _))| (i, t));
            found.is_some()
        })
        .await;
        found.unwrap()
    }

    /// Watches for `window` that no message after the first `skip` has a
    /// line starting with `line`, failing as soon as one comes: an absence
    /// is observed over a span of time, it cannot be waited for.
    pub async fn assert_none_for(&self, skip: usize, line: &str, window: Duration) {
        let start = Instant::now();
        let mut poll = tokio::time::interval(POLL);
        while start.elapsed() < window {
            poll.tick().await;
            let seen = self
                .messages()
                .into_iter()
                .skip(skip)
                .any(|(_, m)| m.lines().any(|l| l.starts_with(line)));
            assert!(!seen, "{line:?} within {window:?}:\n{}", self.dump());
        }
    }

    pub fn dump(&self) -> String {
        self.messages()
            .iter()
            .map(|(_, m)| m.replace('\n', " | "))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A TCP relay between the daemon and Dovecot that notes when a SELECT
/// completed and can stall: while stalled, nothing the server says reaches
/// the client (an IMAP server that accepts and then never answers).
pub struct ImapProxy {
    pub port: u16,
    stalled: std::sync::Arc<std::sync::atomic::AtomicBool>,
    wake: std::sync::Arc<tokio::sync::Notify>,
    selects: std::sync::Arc<std::sync::Mutex<Vec<Instant>>>,
}

impl ImapProxy {
    pub async fn start(upstream: u16) -> ImapProxy {
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let stalled = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let wake = std::sync::Arc::new(tokio::sync::Notify::new());
        let selects = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (st, wk, sel) = (stalled.clone(), wake.clone(), selects.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                    continue;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut cr, &mut sw).await;
                    let _ = sw.shutdown().await;
                });
                let (st, wk, sel) = (st.clone(), wk.clone(), sel.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 65536];
                    while let Ok(n) = sr.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        while st.load(Ordering::SeqCst) {
                            let w = wk.notified();
                            if !st.load(Ordering::SeqCst) {
                                break;
                            }
                            w.await;
                        }
                        if String::from_utf8_lossy(&buf[..n]).contains("Select completed") {
                            sel.lock().unwrap().push(Instant::now());
                        }
                        if cw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        ImapProxy {
            port,
            stalled,
            wake,
            selects,
        }
    }

    /// When each SELECT's completion was passed on to the client.
    pub fn selects(&self) -> Vec<Instant> {
        self.selects.lock().unwrap().clone()
    }

    pub fn stall(&self, on: bool) {
        self.stalled.store(on, std::sync::atomic::Ordering::SeqCst);
        self.wake.notify_waiters();
    }
}

/// `ticketd run` as systemd runs it: its own process, `$NOTIFY_SOCKET` and a
/// watchdog; stderr kept in a file. Killed on drop.
pub struct Service {
    pub child: std::process::Child,
    pub log: PathBuf,
}

impl Service {
    pub fn start(config: &Path, notify: &NotifySocket, watchdog: Duration) -> Service {
        let log = config.with_extension("log");
        let err = std::fs::File::create(&log).unwrap();
        let child = ticketd_command()
            .args(["run", "--config"])
            .arg(config)
            .env("NOTIFY_SOCKET", &notify.path)
            .env("WATCHDOG_USEC", watchdog.as_micros().to_string())
            .env("JOURNAL_STREAM", "0:0")
            .stderr(err)
            .spawn()
            .expect("start ticketd run");
        Service { child, log }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGHUP, as `systemctl reload` does through ExecReload.
    pub fn reload(&self) {
        let ok = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .expect("kill -HUP")
            .success();
        assert!(ok, "kill -HUP failed");
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fails when any secret is in `log`, as it is or base64-encoded inside
/// something longer (a SASL message carrying a token).
pub fn assert_no_secrets(log: &str, secrets: &[String]) {
    let b64 = base64::engine::general_purpose::STANDARD;
    assert!(!secrets.is_empty());
    for s in secrets {
        let mut forms = vec![s.clone()];
        // A JWT's signature alone identifies it.
        if s.contains('.') {
            forms.extend(s.rsplit('.').next().map(str::to_string));
        }
        // Whatever its position in an encoded message, its encoding holds
        // one of these three runs.
        for offset in 0..3 {
            let enc = b64.encode(format!("{}{s}", "x".repeat(offset)));
            let start = if offset == 0 { 0 } else { 4 };
            forms.push(enc[start..enc.len() - 4].to_string());
        }
        for f in forms {
            assert!(
                !log.contains(&f),
                "a secret ({}...) is in the log",
                &s[..8.min(s.len())]
            );
        }
    }
}

/// The test DKIM key (RSA-2048, PKCS#8), made once with openssl for the
/// tests only; its public record is [`test_key_txt`].
pub fn test_key_pem() -> String {
    std::fs::read_to_string(repo().join("tests/fixtures/dkim/private.pem"))
        .expect("tests/fixtures/dkim/private.pem")
}

/// The TXT record of the test DKIM key ("v=DKIM1; k=rsa; p=...").
pub fn test_key_txt() -> String {
    std::fs::read_to_string(repo().join("tests/fixtures/dkim/public.txt"))
        .expect("tests/fixtures/dkim/public.txt")
        .trim()
        .to_string()
}

/// `raw` signed with the test key for `domain` and `selector`, as the
/// vendor's mail server would (publish [`test_key_txt`] at
/// `{selector}._domainkey.{domain}`).
pub fn dkim_sign(raw: &[u8], domain: &str, selector: &str) -> Vec<u8> {
    ticketd::dkim::sign(raw, domain, selector, &test_key_pem()).expect("signing with the test key")
}

/// A DNS server on loopback UDP, written for the tests: it answers TXT
/// queries for the records it is given (NXDOMAIN for any other name) with
/// their TTL, or, when [`DnsServer::silent`], never answers. It counts the
/// queries it got and stops on drop.
pub struct DnsServer {
    pub addr: std::net::SocketAddr,
    queries: Arc<std::sync::atomic::AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DnsServer {
    /// Serves `records` (name, TXT text; a name may have several) with `ttl`.
    pub fn start(records: &[(&str, &str)], ttl: u32) -> DnsServer {
        let records = records
            .iter()
            .map(|(n, t)| (n.trim_end_matches('.').to_ascii_lowercase(), t.to_string()))
            .collect();
        DnsServer::serve(Some((records, ttl)))
    }

    /// Takes queries and never answers (for timeouts).
    pub fn silent() -> DnsServer {
        DnsServer::serve(None)
    }

    /// How many queries came.
    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }

    fn serve(zone: Option<(Vec<(String, String)>, u32)>) -> DnsServer {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("a DNS server port");
        let addr = socket.local_addr().expect("a bound port");
        let queries = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, stopping) = (queries.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                let Ok((n, peer)) = socket.recv_from(&mut buf) else {
                    return;
                };
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(query) = hickory_resolver::proto::op::Message::from_vec(&buf[..n]) else {
                    continue;
                };
                count.fetch_add(1, Ordering::SeqCst);
                if let Some((records, ttl)) = &zone
                    && let Some(reply) = dns_answer(&query, records, *ttl)
                {
                    let _ = socket.send_to(&reply, peer);
                }
            }
        });
        DnsServer {
            addr,
            queries,
            stop,
            thread: Some(thread),
        }
    }
}

/// The answer to `query` from `records`: the TXT records at the name (each
/// split into character-strings of at most 255 bytes), or NXDOMAIN.
fn dns_answer(
    query: &hickory_resolver::proto::op::Message,
    records: &[(String, String)],
    ttl: u32,
) -> Option<Vec<u8>> {
    use hickory_resolver::proto::op::{Message, ResponseCode};
    use hickory_resolver::proto::rr::{RData, Record, RecordType, rdata::TXT};
    let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
    reply.metadata.authoritative = true;
    reply.metadata.recursion_desired = query.metadata.recursion_desired;
    reply.metadata.recursion_available = true;
    reply.add_queries(query.queries.clone());
    if let Some(edns) = &query.edns {
        reply.set_edns(edns.clone());
    }
    let mut found = false;
    for q in &query.queries {
        let name = q
            .name
            .to_string()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        for (_, text) in records.iter().filter(|(n, _)| *n == name) {
            found = true;
            if q.query_type == RecordType::TXT {
                let chunks = text
                    .as_bytes()
                    .chunks(255)
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect();
                reply.add_answer(Record::from_rdata(
                    q.name.clone(),
                    ttl,
                    RData::TXT(TXT::new(chunks)),
                ));
            }
        }
    }
    if !found {
        reply.metadata.response_code = ResponseCode::NXDomain;
    }
    reply.to_vec().ok()
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the receive loop so that it sees the flag.
        if let Ok(s) = std::net::UdpSocket::bind("127.0.0.1:0") {
            let _ = s.send_to(&[], self.addr);
        }
        if let Some(t) = self.thread.take() {
            t.join().expect("the DNS server thread");
        }
    }
}

/// A config whose staff member alice (`address`) hears of the support
/// queue, with a reply token key; `staff_extra` goes under `[staff]`.
pub fn alice_config(
    stack: &MailStack,
    address: &str,
    staff_extra: &str,
) -> ticketd::config::Config {
    let key = stack.dir.join("reply-token.key");
    std::fs::write(&key, "k3y-for-the-staff-tests-0123456789\n").unwrap();
    let (address, extra) = (address.to_string(), staff_extra.to_string());
    stack.config(move |c| {
        c.staff = format!("token_key_file = \"{}\"\n{extra}", key.display());
        c.extra = format!(
            "\n[staff.members.alice]\nname = \"Alice Staff\"\naddresses = [\"{address}\"]\nqueues = [\"support\"]\n"
        );
    })
}

/// `cfg` moved onto database `name` of `pg`: its file's `database` line
/// replaced by the URL and a password file, read again.
pub fn onto_postgres(
    cfg: &ticketd::config::Config,
    pg: &crate::kit::postgres::Postgres,
    name: &str,
) -> ticketd::config::Config {
    let location = ticketd::store::off_async(|| Ok(pg.fresh(name))).unwrap();
    let ticketd::store::Location::Postgres(target) = &location else {
        unreachable!()
    };
    let password = cfg.path.with_file_name("pg-password");
    std::fs::write(&password, format!("{}\n", crate::kit::postgres::PASSWORD)).unwrap();
    let text = std::fs::read_to_string(&cfg.path).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("database = "))
        .expect("a database line")
        .to_string();
    let text = text.replacen(
        &line,
        &format!(
            "database = \"{}\"\ndatabase_password_file = \"{}\"",
            target.url,
            password.display()
        ),
        1,
    );
    std::fs::write(&cfg.path, text).unwrap();
    let moved = ticketd::config::Config::load(&cfg.path).expect("the config on PostgreSQL");
    assert_eq!(moved.database, location);
    moved
}
