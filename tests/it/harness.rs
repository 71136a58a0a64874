//! Test harness: private Dovecot, Postfix and smtp-sink on loopback (via scripts/mailstack), and helpers to drive them.

use async_imap::Session;
use futures_util::TryStreamExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use ticketd::config::Config;
use tokio::net::TcpStream;

pub const SETUP_HINT: &str = "run scripts/test (it installs dovecot-imapd, dovecot-lmtpd and postfix), or scripts/mailstack install";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn mailstack(args: &[&str]) {
    let out = Command::new(repo().join("scripts/mailstack"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run scripts/mailstack: {e}; {SETUP_HINT}"));
    assert!(
        out.status.success(),
        "scripts/mailstack {args:?} failed ({SETUP_HINT}):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn require(binary: &str) {
    let found = ["/usr/sbin", "/usr/bin", "/usr/lib/postfix/sbin"]
        .iter()
        .any(|d| Path::new(d).join(binary).exists());
    assert!(found, "{binary} is not installed: {SETUP_HINT}");
}

/// How often a condition is checked while waiting for it.
const POLL: Duration = Duration::from_millis(20);

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
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
}

#[derive(Default)]
pub struct Options {
    /// Deliver replies through Postfix into Dovecot (readable from the
    /// customer's mailbox) instead of smtp-sink.
    pub postfix: bool,
    /// smtp-sink fault flags, e.g. `["-r", "MAIL"]`.
    pub sink_flags: Vec<String>,
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
        let s = MailStack {
            dir,
            imap_port: free_port(),
            lmtp_port: free_port(),
            smtp_port: free_port(),
        };
        mailstack(&[
            "dovecot",
            s.d(),
            &s.imap_port.to_string(),
            &s.lmtp_port.to_string(),
        ]);
        if opts.postfix {
            require("master");
            mailstack(&[
                "postfix",
                s.d(),
                &s.smtp_port.to_string(),
                &s.lmtp_port.to_string(),
            ]);
        } else {
            s.start_sink(&opts.sink_flags);
        }
        s
    }

    fn d(&self) -> &str {
        self.dir.to_str().expect("utf-8 temp dir")
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
        let mut c = ConfigText::new(self);
        tweak(&mut c);
        let path = self.dir.join("ticketd.toml");
        std::fs::write(self.dir.join("imap-password"), format!("{}\n", c.password)).unwrap();
        std::fs::write(&path, c.render()).unwrap();
        Config::load(&path).unwrap_or_else(|e| panic!("test config:\n{e}"))
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
            if self.count(user, folder).await == n {
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

fn tempdir_in(base: &Path) -> PathBuf {
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
    /// TOML appended after the generated config.
    pub extra: String,
}

impl ConfigText {
    fn new(s: &MailStack) -> ConfigText {
        ConfigText {
            imap_port: s.imap_port,
            smtp_port: s.smtp_port,
            dir: s.dir.clone(),
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
            extra: String::new(),
        }
    }

    fn render(&self) -> String {
        let repo = repo();
        let mut t = format!(
            r#"[daemon]
database = "{dir}/ticketd.db"
templates = "{repo}/templates"
packs = "{repo}/config/vendors"
pack = "{pack}"

[identity]
from_name = "Vendor Support"
message_id_domain = "tickets.vendor.test"
own_addresses = ["support@vendor.test", "rma@vendor.test", "24x7@vendor.test"]
staff = ["lead@vendor.test"]

[staff.recipients]
"Director of Customer Services" = "director@vendor.test"
"President and General Manager" = "president@vendor.test"

[limits]
max_message_bytes = {max}

[smtp]
host = "127.0.0.1"
port = {smtp}
tls = "none"
retry_base_ms = {retry}
max_attempts = {attempts}
timeout_secs = {timeout}
"#,
            dir = self.dir.display(),
            repo = repo.display(),
            pack = self.pack,
            max = self.max_message_bytes,
            smtp = self.smtp_port,
            retry = self.retry_base_ms,
            attempts = self.max_attempts,
            timeout = self.timeout_secs,
        );
        for (name, role) in &self.mailboxes {
            t.push_str(&format!(
                r#"
[[mailbox]]
name = "{name}"
role = "{role}"
address = "{name}@vendor.test"
host = "127.0.0.1"
port = {imap}
tls = "none"
username = "{name}@vendor.test"
password_file = "{dir}/imap-password"
after = "{after}"
poll_interval_secs = {poll}
idle = {idle}
"#,
                imap = self.imap_port,
                dir = self.dir.display(),
                after = self.after,
                poll = self.poll_interval_secs,
                idle = self.idle,
            ));
        }
        t.push_str(&self.extra);
        t
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

/// A data directory laid out as the package installs it (`templates/`,
/// `vendors/`), made of links to the source tree's, for running the built
/// binary without a config (`TICKETD_DATA_DIR`).
pub fn source_data_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("data");
    std::fs::create_dir_all(&d).unwrap();
    for (link, target) in [("templates", "templates"), ("vendors", "config/vendors")] {
        let l = d.join(link);
        if !l.exists() {
            // Another test may have made it meanwhile.
            let _ = std::os::unix::fs::symlink(repo().join(target), &l);
        }
    }
    d
}
