//! The private mail stack on loopback (Dovecot, Postfix or smtp-sink, through scripts/mailstack), free loopback ports, short temporary directories, the test config of ticketd and a customer's mail.

use super::repo;
use super::wait::POLL;
use async_imap::Session;
use base64::Engine as _;
use futures_util::TryStreamExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use ticketd::config::Config;
use tokio::net::TcpStream;

pub const SETUP_HINT: &str = "run scripts/test (it installs dovecot-imapd, dovecot-lmtpd, postfix, mutt and tmux), or scripts/mailstack install";

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

/// A private mail stack in a short temporary directory, stopped on drop.
pub struct MailStack {
    pub dir: PathBuf,
    /// Where smtp-sink writes (`sink/` under it): `dir`, or a directory on
    /// tmpfs with `Options::sink_on_tmpfs`.
    pub sink_dir: PathBuf,
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
    /// No Dovecot: an SMTP server alone.
    pub without_dovecot: bool,
    /// smtp-sink writes to a directory on tmpfs (`/dev/shm`) where there is
    /// one: it writes a file per message, and on a disk file system creating
    /// them costs the sink more than the SMTP exchange it stands for.
    pub sink_on_tmpfs: bool,
}

impl MailStack {
    pub fn start() -> MailStack {
        Self::with(Options::default())
    }

    pub fn with(opts: Options) -> MailStack {
        if !opts.without_dovecot {
            require("dovecot");
            require("doveadm");
        }
        require("smtp-sink");
        let base = std::env::temp_dir();
        let dir = tempdir_in(&base);
        let shm = Path::new("/dev/shm");
        let sink_dir = if opts.sink_on_tmpfs && shm.is_dir() {
            tempdir_in(shm)
        } else {
            dir.clone()
        };
        let [imap_port, lmtp_port, smtp_port, imaps_port, smtps_port] = free_ports();
        let mut s = MailStack {
            dir,
            sink_dir,
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
        if !opts.without_dovecot {
            s.start_dovecot();
        }
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

    fn sink_d(&self) -> &str {
        self.sink_dir.to_str().expect("utf-8 temp dir")
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
        let mut args = vec!["sink", self.sink_d(), port.as_str()];
        args.extend(flags.iter().map(String::as_str));
        mailstack(&args);
    }

    pub fn stop_sink(&self) {
        mailstack(&["stop", self.sink_d(), &format!("sink-{}", self.smtp_port)]);
    }

    /// Every message the sink has received, oldest first.
    pub fn sink_messages(&self) -> Vec<Vec<u8>> {
        self.sink_files()
            .iter()
            .filter_map(|f| std::fs::read(f).ok())
            .collect()
    }

    /// The files of the messages the sink has received, by name.
    pub fn sink_files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        collect_files(&self.sink_dir.join("sink"), &mut files);
        files.sort();
        files
    }

    /// Writes a ticketd config for this stack; `extra` is appended to [smtp]-less
    /// sections by name via `tweak`.
    pub fn config(&self, tweak: impl Fn(&mut ConfigText)) -> Config {
        let path = self.write_config(tweak);
        Config::load(&path).unwrap_or_else(|e| panic!("test config:\n{e}"))
    }

    /// Writes the config text (valid or not) to `DIR/ticketd.toml` (or the
    /// tweak's `file`); returns its path.
    pub fn write_config(&self, tweak: impl Fn(&mut ConfigText)) -> PathBuf {
        let mut c = ConfigText::new(self);
        tweak(&mut c);
        let path = self.dir.join(&c.file);
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
        if self.sink_dir != self.dir {
            let _ = Command::new(repo().join("scripts/mailstack"))
                .args(["stop", self.sink_d()])
                .output();
            let _ = std::fs::remove_dir_all(&self.sink_dir);
        }
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
    /// The config's file name in the stack's directory (`ticketd.toml`);
    /// `ticketd run` logs beside it (`ticketd.log`).
    pub file: String,
    pub imap_port: u16,
    pub smtp_port: u16,
    pub dir: PathBuf,
    /// `[daemon] database` (`ticketd.db` in the stack's directory).
    pub database: PathBuf,
    /// Lines added to `[daemon]` (a PostgreSQL store's password file).
    pub daemon_extra: String,
    pub password: String,
    pub pack: String,
    pub after: String,
    pub poll_interval_secs: u64,
    pub mailboxes: Vec<(&'static str, &'static str)>,
    /// A mailbox's IMAP user instead of `NAME@vendor.test`, by name.
    pub usernames: Vec<(&'static str, String)>,
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
            file: "ticketd.toml".into(),
            imap_port: s.imap_port,
            smtp_port: s.smtp_port,
            dir: s.dir.clone(),
            database: s.dir.join("ticketd.db"),
            daemon_extra: String::new(),
            password: "secret".into(),
            pack: "ixsystems".into(),
            after: "move".into(),
            poll_interval_secs: 3600,
            mailboxes: vec![("support", "support")],
            usernames: Vec::new(),
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
{daemon_extra}

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
            daemon_extra = self.daemon_extra,
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
            let user = self
                .usernames
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, u)| u.clone())
                .unwrap_or_else(|| format!("{name}@vendor.test"));
            t.push_str(&format!(
                r#"
[[mailbox]]
name = "{name}"
role = "{role}"
address = "{name}@vendor.test"
host = "{host}"
port = {imap}
tls = "{imap_tls}"
{ca}username = "{user}"
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
