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
    /// Each mailbox's `timeout_secs` (how long an IMAP step may take).
    pub imap_timeout_secs: u64,
    /// `[daemon] ready_timeout_secs`.
    pub ready_timeout_secs: u64,
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
            imap_timeout_secs: 120,
            ready_timeout_secs: 60,
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
ready_timeout_secs = {ready}

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
            ready = self.ready_timeout_secs,
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
timeout_secs = {imap_timeout}
"#,
                imap = self.imap_port,
                dir = self.dir.display(),
                after = self.after,
                poll = self.poll_interval_secs,
                idle = self.idle,
                imap_timeout = self.imap_timeout_secs,
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
