//! Test harness: private Dovecot, Postfix and smtp-sink on loopback (via scripts/mailstack), with OAuth2 and TLS when asked, a test CA, a token endpoint, and helpers to drive them.

use async_imap::Session;
use base64::Engine as _;
use futures_util::TryStreamExt;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use ticketd::config::Config;
use tokio::net::TcpStream;

pub const SETUP_HINT: &str = "run scripts/test (it installs dovecot-imapd, dovecot-lmtpd, postfix, mutt and tmux), or scripts/mailstack install";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn mailstack(args: &[&str]) {
    mailstack_with(args, &[]);
}

fn mailstack_with(args: &[&str], env: &[(&str, String)]) {
    let out = Command::new(repo().join("scripts/mailstack"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap_or_else(|e| panic!("cannot run scripts/mailstack: {e}; {SETUP_HINT}"));
    assert!(
        out.status.success(),
        "scripts/mailstack {args:?} failed ({SETUP_HINT}):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Fails the test, naming the setup command, unless `binary` is installed.
pub fn require(binary: &str) {
    let found = ["/usr/sbin", "/usr/bin", "/usr/lib/postfix/sbin"]
        .iter()
        .any(|d| Path::new(d).join(binary).exists());
    assert!(found, "{binary} is not installed: {SETUP_HINT}");
}

/// How often a condition is checked while waiting for it.
const POLL: Duration = Duration::from_millis(20);

pub fn free_port() -> u16 {
    free_ports::<1>()[0]
}

/// `N` different free loopback ports (all held until each is chosen, so
/// none is handed out twice).
pub fn free_ports<const N: usize>() -> [u16; N] {
    let held: Vec<std::net::TcpListener> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port"))
        .collect();
    std::array::from_fn(|i| held[i].local_addr().expect("a bound port").port())
}

/// Waits for `cond` to hold, polling, failing after `deadline`.
pub async fn wait_until<F: FnMut() -> bool>(what: &str, deadline: Duration, mut cond: F) {
    let start = Instant::now();
    let mut poll = tokio::time::interval(POLL);
    loop {
        poll.tick().await;
        if cond() {
            return;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
    }
}

/// Waits for the asynchronous `cond` (an IMAP count, an HTTP scrape) to
/// hold, polling, failing after `deadline` with `what` and `detail()`.
pub async fn wait_until_async<F, Fut>(
    what: &str,
    deadline: Duration,
    mut cond: F,
    detail: impl Fn() -> String,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    let mut poll = tokio::time::interval(POLL);
    loop {
        poll.tick().await;
        if cond().await {
            return;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}:\n{}",
            detail()
        );
    }
}

/// Waits up to `deadline` for `cond`; whether it held (for aiming a fault
/// at a moment that may not come, as when the work is already done).
pub async fn held_within<F: FnMut() -> bool>(deadline: Duration, mut cond: F) -> bool {
    let start = Instant::now();
    let mut poll = tokio::time::interval(POLL);
    loop {
        poll.tick().await;
        if cond() {
            return true;
        }
        if start.elapsed() >= deadline {
            return false;
        }
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

/// A private mail stack in a short temporary directory, stopped on drop.
pub struct MailStack {
    pub dir: PathBuf,
    pub imap_port: u16,
    pub lmtp_port: u16,
    pub smtp_port: u16,
    /// Implicit TLS (with `Options::tls`).
    pub imaps_port: u16,
    pub smtps_port: u16,
    /// The HMAC key Dovecot checks tokens with (with `Options::oauth2`).
    pub oauth2_key: Vec<u8>,
    env: Vec<(&'static str, String)>,
}

#[derive(Default)]
pub struct Options {
    /// Deliver replies through Postfix into Dovecot (readable from the
    /// customer's mailbox) instead of smtp-sink.
    pub postfix: bool,
    /// smtp-sink fault flags, e.g. `["-r", "MAIL"]`.
    pub sink_flags: Vec<String>,
    /// Dovecot also takes XOAUTH2 and OAUTHBEARER with JWTs signed by the
    /// stack's key ([`MailStack::jwt`]), and Postfix relays only for clients
    /// that logged in through Dovecot's SASL socket.
    pub oauth2: bool,
    /// Both servers offer STARTTLS with this certificate, and implicit TLS
    /// on `imaps_port` and `smtps_port`.
    pub tls: Option<ServerCert>,
}

impl MailStack {
    pub fn start() -> MailStack {
        Self::with(Options::default())
    }

    pub fn with(opts: Options) -> MailStack {
        require("dovecot");
        require("doveadm");
        require("smtp-sink");
        let base = std::env::temp_dir();
        let dir = tempdir_in(&base);
        let [imap_port, lmtp_port, smtp_port, imaps_port, smtps_port] = free_ports();
        let mut s = MailStack {
            dir,
            imap_port,
            lmtp_port,
            smtp_port,
            imaps_port,
            smtps_port,
            oauth2_key: (0..32).map(|_| fastrand::u8(..)).collect(),
            env: Vec::new(),
        };
        if opts.oauth2 {
            let key = base64::engine::general_purpose::STANDARD.encode(&s.oauth2_key);
            s.env.push(("MAILSTACK_OAUTH2_KEY", key));
        }
        if let Some(cert) = &opts.tls {
            let (c, k) = (s.dir.join("server-cert.pem"), s.dir.join("server-key.pem"));
            std::fs::write(&c, &cert.cert_pem).unwrap();
            std::fs::write(&k, &cert.key_pem).unwrap();
            s.env.push(("MAILSTACK_TLS_CERT", c.display().to_string()));
            s.env.push(("MAILSTACK_TLS_KEY", k.display().to_string()));
            s.env
                .push(("MAILSTACK_IMAPS_PORT", s.imaps_port.to_string()));
            s.env
                .push(("MAILSTACK_SMTPS_PORT", s.smtps_port.to_string()));
        }
        s.start_dovecot();
        if opts.postfix {
            require("master");
            s.start_postfix();
        } else {
            s.start_sink(&opts.sink_flags);
        }
        s
    }

    fn d(&self) -> &str {
        self.dir.to_str().expect("utf-8 temp dir")
    }

    /// Starts (or, after [`MailStack::stop_dovecot`], restarts) Dovecot on
    /// the same ports, with the same mail.
    pub fn start_dovecot(&self) {
        mailstack_with(
            &[
                "dovecot",
                self.d(),
                &self.imap_port.to_string(),
                &self.lmtp_port.to_string(),
            ],
            &self.env,
        );
    }

    /// Stops Dovecot at once (SIGKILL): its clients' connections drop.
    pub fn stop_dovecot(&self) {
        mailstack(&["stop", self.d(), "dovecot"]);
    }

    /// Starts (or, after [`MailStack::stop_postfix`], restarts) Postfix on
    /// the same ports.
    pub fn start_postfix(&self) {
        mailstack_with(
            &[
                "postfix",
                self.d(),
                &self.smtp_port.to_string(),
                &self.lmtp_port.to_string(),
            ],
            &self.env,
        );
    }

    /// Stops Postfix: its clients' connections drop.
    pub fn stop_postfix(&self) {
        mailstack(&["stop", self.d(), "postfix"]);
    }

    /// A token Dovecot takes for `user` (HS256 with the stack's key, as a
    /// provider's JWT), valid for `secs` seconds from now.
    pub fn jwt(&self, user: &str, secs: i64) -> String {
        jwt(&self.oauth2_key, user, secs)
    }

    pub fn start_sink(&self, flags: &[String]) {
        let port = self.smtp_port.to_string();
        let mut args = vec!["sink", self.d(), port.as_str()];
        args.extend(flags.iter().map(String::as_str));
        mailstack(&args);
    }

    pub fn stop_sink(&self) {
        mailstack(&["stop", self.d(), &format!("sink-{}", self.smtp_port)]);
    }

    /// Every message the sink has received, oldest first.
    pub fn sink_messages(&self) -> Vec<Vec<u8>> {
        let mut files = Vec::new();
        collect_files(&self.dir.join("sink"), &mut files);
        files.sort();
        files.iter().filter_map(|f| std::fs::read(f).ok()).collect()
    }

    /// Writes a ticketd config for this stack; `extra` is appended to [smtp]-less
    /// sections by name via `tweak`.
    pub fn config(&self, tweak: impl Fn(&mut ConfigText)) -> Config {
        let path = self.write_config(tweak);
        Config::load(&path).unwrap_or_else(|e| panic!("test config:\n{e}"))
    }

    /// Writes the config text (valid or not) to `DIR/ticketd.toml`; returns its path.
    pub fn write_config(&self, tweak: impl Fn(&mut ConfigText)) -> PathBuf {
        let mut c = ConfigText::new(self);
        tweak(&mut c);
        let path = self.dir.join("ticketd.toml");
        std::fs::write(self.dir.join("imap-password"), format!("{}\n", c.password)).unwrap();
        std::fs::write(&path, c.render()).unwrap();
        path
    }

    pub async fn imap(&self, user: &str) -> Session<TcpStream> {
        let tcp = TcpStream::connect(("127.0.0.1", self.imap_port))
            .await
            .expect("IMAP connect");
        let mut c = async_imap::Client::new(tcp);
        c.read_response()
            .await
            .expect("greeting")
            .expect("greeting");
        c.login(user, "secret")
            .await
            .map_err(|(e, _)| e)
            .expect("IMAP login")
    }

    /// APPENDs `raw` to `user`'s `folder` with the given INTERNALDATE
    /// (`"02-Mar-2026 09:00:00 +0000"`).
    pub async fn append(&self, user: &str, folder: &str, raw: &[u8], internal_date: &str) {
        let mut s = self.imap(user).await;
        let date = format!("\"{internal_date}\"");
        s.append(folder, Some("()"), Some(&date), raw)
            .await
            .expect("APPEND");
        let _ = s.logout().await;
    }

    /// APPENDs every mail of `raws` to `user`'s `folder` over one session (a burst).
    pub async fn append_many(&self, user: &str, folder: &str, raws: &[Vec<u8>]) {
        let mut s = self.imap(user).await;
        for raw in raws {
            s.append(
                folder,
                Some("()"),
                Some("\"02-Mar-2026 09:00:00 -0800\""),
                raw,
            )
            .await
            .expect("APPEND");
        }
        let _ = s.logout().await;
    }

    /// `n` first mails from `n` different customers (`{tag}{i}@example.net`,
    /// so that no reply bucket runs dry) in `user`'s INBOX.
    pub async fn deliver_from_customers(&self, user: &str, tag: &str, n: usize) {
        let raws: Vec<Vec<u8>> = (0..n)
            .map(|i| {
                mail(
                    &format!("{tag}{i}@example.net"),
                    user,
                    &format!("Question {i} ({tag})"),
                    &format!("{tag}{i}@example.net"),
                    "",
                    "Hello, the pool is degraded.",
                )
            })
            .collect();
        self.append_many(user, "INBOX", &raws).await;
    }

    /// Opens each of `users`' INBOX once, one after the other. A user's first
    /// session creates their mail index, and Dovecot 2.3 can panic (fcntl
    /// EDEADLK on `dovecot.list.index.log`) when two sessions create it at
    /// once: a test that reaches a user from two sides at once (the daemon
    /// and an APPEND, mutt and a delivery) creates them first.
    pub async fn create_users(&self, users: &[&str]) {
        for u in users {
            self.count(u, "INBOX").await;
        }
    }

    pub async fn count(&self, user: &str, folder: &str) -> u32 {
        let mut s = self.imap(user).await;
        let n = s.examine(folder).await.expect("EXAMINE").exists;
        let _ = s.logout().await;
        n
    }

    /// A customer's mail arriving in the support mailbox.
    pub async fn deliver(&self, raw: &[u8]) {
        self.append(
            "support@vendor.test",
            "INBOX",
            raw,
            "02-Mar-2026 09:00:00 -0800",
        )
        .await;
    }

    /// Waits until `user`'s `folder` holds `n` messages.
    pub async fn wait_for_count(&self, user: &str, folder: &str, n: u32, deadline: Duration) {
        let start = Instant::now();
        let mut poll = tokio::time::interval(POLL);
        loop {
            poll.tick().await;
            // The folder may not exist yet, or be being created by the
            // daemon right now: that is "not yet", not a failure.
            let mut session = self.imap(user).await;
            let have = session.examine(folder).await.map(|m| m.exists).ok();
            let _ = session.logout().await;
            if have == Some(n) {
                return;
            }
            assert!(
                start.elapsed() < deadline,
                "timed out after {deadline:?} waiting for {n} messages in {user} {folder}"
            );
        }
    }

    /// The raw messages in `user`'s `folder`.
    pub async fn messages(&self, user: &str, folder: &str) -> Vec<Vec<u8>> {
        let mut s = self.imap(user).await;
        let n = s.examine(folder).await.expect("EXAMINE").exists;
        if n == 0 {
            return vec![];
        }
        let out: Vec<Vec<u8>> = s
            .fetch("1:*", "BODY.PEEK[]")
            .await
            .expect("FETCH")
            .map_ok(|f| f.body().unwrap_or_default().to_vec())
            .try_collect()
            .await
            .expect("FETCH");
        let _ = s.logout().await;
        out
    }

    pub fn doveadm(&self, args: &[&str]) {
        let conf = self.dir.join("dovecot/dovecot.conf");
        let out = Command::new("doveadm")
            .arg("-c")
            .arg(&conf)
            .args(args)
            .output()
            .expect("doveadm");
        assert!(
            out.status.success(),
            "doveadm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for MailStack {
    fn drop(&mut self) {
        let _ = Command::new(repo().join("scripts/mailstack"))
            .args(["stop", self.d()])
            .output();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// A new short directory (mode 755) under `base`.
pub fn tempdir_in(base: &Path) -> PathBuf {
    // Short, because Dovecot's socket paths must stay under ~108 bytes.
    for _ in 0..100 {
        let p = base.join(format!("td-{:08x}", fastrand::u32(..)));
        if std::fs::create_dir(&p).is_ok() {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            return p;
        }
    }
    panic!("cannot create a temporary directory in {}", base.display());
}

/// The text of a test config, editable before it is written.
pub struct ConfigText {
    pub imap_port: u16,
    pub smtp_port: u16,
    pub dir: PathBuf,
    /// `[daemon] database` (`ticketd.db` in the stack's directory).
    pub database: PathBuf,
    pub password: String,
    pub pack: String,
    pub after: String,
    pub poll_interval_secs: u64,
    pub mailboxes: Vec<(&'static str, &'static str)>,
    pub max_message_bytes: u64,
    pub retry_base_ms: u64,
    pub max_attempts: u32,
    pub timeout_secs: u64,
    pub idle: bool,
    /// The servers' host name (`localhost` for TLS: the certificates name it).
    pub host: String,
    /// `tls` of the mailboxes and of `[smtp]`: none, starttls, implicit.
    pub imap_tls: String,
    pub smtp_tls: String,
    /// `ca_file` of the mailboxes and of `[smtp]`.
    pub ca_file: Option<PathBuf>,
    /// A mailbox's login lines instead of its `password_file`, by name.
    pub logins: Vec<(&'static str, String)>,
    /// Lines added to `[smtp]` (a username and its login).
    pub smtp_login: String,
    /// Each mailbox's `timeout_secs` (how long an IMAP step may take).
    pub imap_timeout_secs: u64,
    /// `[daemon] ready_timeout_secs`.
    pub ready_timeout_secs: u64,
    /// TOML appended after the generated config.
    pub extra: String,
    /// `[staff] sla_notices`: off by default here, since most tests' mail is
    /// dated long before the clock that processes it, and its targets would
    /// be long past; the SLA tests switch it on.
    pub sla_notices: bool,
    /// Lines added to `[staff]` (its members go in `extra`, as
    /// `[staff.members.NAME]` tables).
    pub staff: String,
}

impl ConfigText {
    fn new(s: &MailStack) -> ConfigText {
        ConfigText {
            imap_port: s.imap_port,
            smtp_port: s.smtp_port,
            dir: s.dir.clone(),
            database: s.dir.join("ticketd.db"),
            password: "secret".into(),
            pack: "ixsystems".into(),
            after: "move".into(),
            poll_interval_secs: 3600,
            mailboxes: vec![("support", "support")],
            max_message_bytes: 25 * 1024 * 1024,
            retry_base_ms: 100,
            max_attempts: 20,
            timeout_secs: 10,
            idle: true,
            host: "127.0.0.1".into(),
            imap_tls: "none".into(),
            smtp_tls: "none".into(),
            ca_file: None,
            logins: Vec::new(),
            smtp_login: String::new(),
            imap_timeout_secs: 120,
            ready_timeout_secs: 60,
            extra: String::new(),
            sla_notices: false,
            staff: String::new(),
        }
    }

    fn render(&self) -> String {
        let repo = repo();
        let mut t = format!(
            r#"[daemon]
database = "{database}"
templates = "{repo}/templates"
packs = "{repo}/config/vendors"
pack = "{pack}"
ready_timeout_secs = {ready}

[identity]
from_name = "Vendor Support"
message_id_domain = "tickets.vendor.test"
own_addresses = ["support@vendor.test", "rma@vendor.test", "24x7@vendor.test"]
staff = ["lead@vendor.test"]

[staff]
sla_notices = {sla_notices}
{staff}

[staff.recipients]
"Director of Customer Services" = "director@vendor.test"
"President and General Manager" = "president@vendor.test"

[limits]
max_message_bytes = {max}
# The storms and benches open thousands of tickets in seconds.
new_ticket_acks = {{ burst = 1000000, per_hour = 1000000 }}

[smtp]
host = "{host}"
port = {smtp}
tls = "{smtp_tls}"
retry_base_ms = {retry}
max_attempts = {attempts}
timeout_secs = {timeout}
{ca}{smtp_login}
"#,
            database = self.database.display(),
            repo = repo.display(),
            pack = self.pack,
            max = self.max_message_bytes,
            smtp = self.smtp_port,
            retry = self.retry_base_ms,
            attempts = self.max_attempts,
            timeout = self.timeout_secs,
            host = self.host,
            smtp_tls = self.smtp_tls,
            ca = self.ca_line(),
            smtp_login = self.smtp_login,
            sla_notices = self.sla_notices,
            staff = self.staff,
            ready = self.ready_timeout_secs,
        );
        for (name, role) in &self.mailboxes {
            let login = self
                .logins
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, l)| l.clone())
                .unwrap_or_else(|| {
                    format!("password_file = \"{}/imap-password\"", self.dir.display())
                });
            t.push_str(&format!(
                r#"
[[mailbox]]
name = "{name}"
role = "{role}"
address = "{name}@vendor.test"
host = "{host}"
port = {imap}
tls = "{imap_tls}"
{ca}username = "{name}@vendor.test"
{login}
after = "{after}"
poll_interval_secs = {poll}
idle = {idle}
timeout_secs = {imap_timeout}
"#,
                imap = self.imap_port,
                host = self.host,
                imap_tls = self.imap_tls,
                ca = self.ca_line(),
                after = self.after,
                poll = self.poll_interval_secs,
                idle = self.idle,
                imap_timeout = self.imap_timeout_secs,
            ));
        }
        t.push_str(&self.extra);
        t
    }

    fn ca_line(&self) -> String {
        self.ca_file
            .as_ref()
            .map(|p| format!("ca_file = \"{}\"\n", p.display()))
            .unwrap_or_default()
    }
}

/// A customer's mail.
pub fn mail(
    from: &str,
    to: &str,
    subject: &str,
    message_id: &str,
    extra_headers: &str,
    body: &str,
) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\nDate: Mon, 02 Mar 2026 09:00:00 -0800\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n{extra_headers}\r\n{body}\r\n"
    )
    .into_bytes()
}

/// HMAC-SHA256 (RFC 2104), for the test tokens.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |x: u8| block.iter().map(|b| b ^ x).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// A JWT as a provider issues it (HS256, no key id): `email` is the user
/// Dovecot checks against the login name, `exp` `secs` seconds from now.
pub fn jwt(key: &[u8], user: &str, secs: i64) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let now = ticketd::clock::Clock::now(&ticketd::clock::SystemClock).timestamp();
    let header = b64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    // Issued a second ago: Dovecot compares `iat` with the time its event
    // loop last read, which can still be the previous second, and refuses a
    // token "issued in the future" made just after a second began.
    let claims = serde_json::json!({
        "sub": user, "email": user, "iat": now - 1, "exp": now + secs,
        "nonce": fastrand::u64(..),
    });
    let payload = b64.encode(claims.to_string());
    let signed = format!("{header}.{payload}");
    let sig = b64.encode(hmac_sha256(key, signed.as_bytes()));
    format!("{signed}.{sig}")
}

/// A certificate and its key, PEM.
#[derive(Clone)]
pub struct ServerCert {
    pub cert_pem: String,
    pub key_pem: String,
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

/// `ticketd run` as its own process, its log (at trace level, every line
/// the code can write) in a file.
pub struct Ticketd {
    child: std::process::Child,
    pub log: PathBuf,
}

impl Ticketd {
    pub fn run(config: &Path) -> Ticketd {
        Self::start(config, "trace", false)
    }

    /// With `RUST_LOG` at `level`, its log appended to the log of the
    /// earlier runs with this config (a restart).
    pub fn rerun(config: &Path, level: &str) -> Ticketd {
        Self::start(config, level, true)
    }

    fn start(config: &Path, level: &str, append: bool) -> Ticketd {
        let log = config.with_extension("log");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(&log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_ticketd"))
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", level)
            .env("NO_COLOR", "1")
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("ticketd runs");
        Ticketd { child, log }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log has `n` lines containing `what`.
    pub async fn wait_for_log(&self, what: &str, n: usize, deadline: Duration) {
        wait_until(&format!("{n} log lines with `{what}`"), deadline, || {
            self.log().lines().filter(|l| l.contains(what)).count() >= n
        })
        .await;
    }

    /// SIGKILL, and reaped.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("ticketd reaped");
    }

    /// Whether it has exited (and how).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("ticketd status")
    }

    /// SIGTERM, then waits for a clean exit; returns the whole log.
    pub async fn stop(self) -> String {
        let log = self.terminate().await;
        // What an admin would see (with --nocapture).
        for l in log
            .lines()
            .filter(|l| !l.contains(" TRACE ") && !l.contains(" DEBUG "))
        {
            println!("{l}");
        }
        log
    }

    /// [`Ticketd::stop`] without printing the log.
    pub async fn terminate(mut self) -> String {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        let mut status = None;
        wait_until(
            "ticketd to exit after SIGTERM",
            Duration::from_secs(20),
            || {
                status = self.child.try_wait().expect("ticketd status");
                status.is_some()
            },
        )
        .await;
        let log = self.log();
        assert!(
            status.is_some_and(|s| s.success()),
            "ticketd exited with {status:?}:\n{log}"
        );
        log
    }
}

impl Drop for Ticketd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
