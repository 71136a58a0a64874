//! A real mail client for the end-to-end tests: mutt in a private tmux server, reading a mailbox of the stack over IMAP and replying through its Postfix; with the smoke test that proves the driver.

use crate::harness::{self, MailStack, Options};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// How long one step of driving mutt (a screen to appear, a mail to go out) may take.
const STEP: Duration = Duration::from_secs(10);

/// What mutt writes when sending failed (then waiting for the copy in Sent is pointless).
const SEND_ERRORS: [&str; 4] = [
    "SMTP session failed",
    "Could not connect",
    "Error sending message",
    "Could not send the message",
];

/// mutt (`mutt -n -F muttrc`) in a 200x50 pane of its own tmux server
/// (a socket in its directory), with its own HOME, muttrc, editor, Sent
/// mbox and signature in a temporary directory, a clean environment and no
/// header or message cache; the tmux server is killed on drop.
///
/// Every mail it sends ends in `-- ` and [`Mutt::SIGNATURE`], where mutt
/// puts a signature by default: last, below the quote.
pub struct Mutt {
    dir: PathBuf,
    socket: PathBuf,
}

impl Mutt {
    /// The signature mutt appends below `-- ` to every mail it sends.
    pub const SIGNATURE: &'static str = "Sam Staff\nVendor support\n";

    /// Opens `user`'s INBOX on the stack's Dovecot over IMAP (password
    /// "secret"), sending through the stack's Postfix (a stack with
    /// `Options::postfix`, without `oauth2`: SMTP without AUTH, as Postfix
    /// relays for loopback), From `from` ("Name <address>"). Returns once
    /// mutt shows the INBOX.
    pub async fn open(stack: &MailStack, user: &str, from: &str) -> Mutt {
        Mutt::open_via(stack, user, from, stack.smtp_port).await
    }

    /// `open`, sending through the SMTP server on 127.0.0.1:`smtp_port`
    /// (a staff domain's signing server in front of the stack's Postfix).
    pub async fn open_via(stack: &MailStack, user: &str, from: &str, smtp_port: u16) -> Mutt {
        harness::require("mutt");
        harness::require("tmux");
        let dir = harness::tempdir_in(&std::env::temp_dir());
        let mutt = Mutt {
            socket: dir.join("tmux"),
            dir,
        };
        let domain = from
            .rsplit_once('@')
            .map(|(_, d)| d.trim_end_matches('>'))
            .unwrap_or_else(|| panic!("From {from:?} has no address"));
        let editor = mutt.dir.join("editor");
        // Puts the reply text (written per reply) above what mutt prepared:
        // its attribution line, the quote and the signature.
        std::fs::write(
            &editor,
            format!(
                "#!/bin/sh\nset -e\ncp \"$1\" \"$1.prepared\"\ncat '{}' \"$1.prepared\" >\"$1\"\nrm -f \"$1.prepared\"\n",
                mutt.text_file().display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).unwrap();
        let signature = mutt.dir.join("signature");
        std::fs::write(&signature, Self::SIGNATURE).unwrap();

        let file = |name: &str| mutt.dir.join(name).display().to_string();
        let settings: Vec<(&str, String)> = vec![
            ("folder", format!("imap://127.0.0.1:{}/", stack.imap_port)),
            ("spoolfile", "=INBOX".into()),
            ("imap_user", user.into()),
            ("imap_pass", "secret".into()),
            ("smtp_url", format!("smtp://127.0.0.1:{smtp_port}/")),
            ("sendmail", String::new()),
            ("ssl_starttls", "no".into()),
            ("ssl_force_tls", "no".into()),
            ("from", from.into()),
            ("use_from", "yes".into()),
            ("hostname", domain.into()),
            ("editor", editor.display().to_string()),
            ("edit_headers", "no".into()),
            ("include", "yes".into()),
            ("fast_reply", "yes".into()),
            ("reply_to", "yes".into()),
            ("askcc", "no".into()),
            // `f` forwards the mail whole, as an attached message/rfc822.
            ("mime_forward", "yes".into()),
            ("askbcc", "no".into()),
            ("abort_noattach", "no".into()),
            ("abort_unmodified", "no".into()),
            ("signature", signature.display().to_string()),
            ("sig_dashes", "yes".into()),
            ("charset", "utf-8".into()),
            ("send_charset", "utf-8".into()),
            // A copy of each mail sent (written only once Postfix took it).
            ("record", file("sent")),
            ("fcc_before_send", "no".into()),
            // The limit in force shows in the status line, so that the
            // index after a limit is told from the index before it.
            (
                "status_format",
                "-%r-Mutt: %f [Msgs:%M/%m] [Limit:%V]%>-".into(),
            ),
            ("postponed", file("postponed")),
            ("mbox", file("mbox")),
            ("move", "no".into()),
            ("confirmappend", "no".into()),
            ("wait_key", "no".into()),
            // The index wakes every second, and then checks the open IMAP
            // mailbox: new mail shows within a second.
            ("timeout", "1".into()),
            ("header_cache", String::new()),
            ("message_cachedir", String::new()),
            ("certificate_file", file("certificates")),
            ("tmpdir", mutt.dir.display().to_string()),
        ];
        let mut muttrc: String = settings
            .iter()
            .map(|(k, v)| format!("set {k}=\"{}\"\n", muttrc_escape(v)))
            .collect();
        muttrc.push_str("bind index <f5> imap-fetch-mail\n");
        let muttrc_path = mutt.dir.join("muttrc");
        std::fs::write(&muttrc_path, muttrc).unwrap();

        // A clean environment: mutt also reads $REPLYTO, $EMAIL, $MAIL and
        // more from its own.
        let home = format!("HOME={}", mutt.dir.display());
        let out = mutt
            .tmux()
            .args([
                "new-session",
                "-d",
                "-x",
                "200",
                "-y",
                "50",
                "-s",
                "mutt",
                "-c",
            ])
            .arg(&mutt.dir)
            .args(["env", "-i", &home, "PATH=/usr/bin:/bin", "TERM=screen"])
            .args(["LC_ALL=C.UTF-8", "mutt", "-n", "-F"])
            .arg(&muttrc_path)
            .output()
            .unwrap_or_else(|e| panic!("cannot run tmux: {e}; {}", harness::SETUP_HINT));
        assert!(
            out.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        mutt.wait_for(&format!("mutt to show {user}'s INBOX"), |s| {
            s.contains("Mutt: =INBOX")
        })
        .await;
        mutt
    }

    /// Replies to the newest message whose subject contains `subject`
    /// (mutt's limit `=s`: without capitals in `subject`, in any case;
    /// retried as new mail comes in, up to 10 s without a match): `r`
    /// (to where its Reply-To says), `text` put at the top, above mutt's
    /// attribution line and `> ` quote of the original, and the signature
    /// below; attaches `attachments`, sends (`y`) through Postfix and
    /// returns once mutt has sent it (its copy is in mutt's Sent mbox).
    pub async fn reply(&mut self, subject: &str, text: &str, attachments: &[&Path]) {
        self.write_text(text);
        self.select(subject).await;
        // The newest match: the last of the limited index, sorted by date.
        self.keys(&["*", "r"]);
        self.wait_for("mutt's compose menu", compose_menu).await;
        for (i, path) in attachments.iter().enumerate() {
            let path = std::fs::canonicalize(path)
                .unwrap_or_else(|e| panic!("attachment {}: {e}", path.display()));
            self.keys(&["a"]);
            self.wait_for("mutt's attach prompt", |s| s.contains("Attach file ("))
                .await;
            self.text(&path.display().to_string());
            self.keys(&["Enter"]);
            let atts = format!("Atts: {}]", i + 2);
            self.wait_for(&format!("{} attached", path.display()), |s| {
                compose_menu(s) && s.contains(&atts)
            })
            .await;
        }
        self.send().await;
    }

    /// The text the editor puts on top, its last line ended as an editor
    /// leaves it (mutt's attribution then starts a line of its own).
    fn write_text(&self, text: &str) {
        let text = if text.ends_with('\n') {
            text.to_string()
        } else {
            format!("{text}\n")
        };
        std::fs::write(self.text_file(), text).unwrap();
    }

    /// Limits the index to the messages whose subject contains `subject`
    /// (retried as new mail comes in, up to 10 s without a match).
    async fn select(&mut self, subject: &str) {
        let pattern = format!(
            "=s \"{}\"",
            subject.replace('\\', "\\\\").replace('"', "\\\"")
        );
        loop {
            self.keys(&["l"]);
            self.wait_for("mutt's limit prompt", |s| {
                bottom_line(s).starts_with("Limit to messages matching:")
            })
            .await;
            self.text(&pattern);
            self.keys(&["Enter"]);
            let limited = format!("[Limit:{pattern}]");
            self.wait_for("mutt to limit its index", |s| {
                s.contains(&limited) && !bottom_line(s).starts_with("Limit to")
            })
            .await;
            let screen = self.screen();
            let (shown, total) = counts(&screen)
                .unwrap_or_else(|| panic!("no message counts in mutt's status line:\n{screen}"));
            if shown > 0 {
                break;
            }
            // Not there yet: ask Dovecot for new mail at once (F5), and
            // try again once more has come in (then, or when mutt next
            // checks by itself).
            self.keys(&["F5"]);
            self.wait_for(&format!("a message with {subject:?} in its subject"), |s| {
                counts(s).is_some_and(|(_, now)| now > total)
            })
            .await;
        }
    }

    /// Forwards the newest message whose subject contains `subject` to
    /// `to` as an attached message (`f`, `mime_forward`; `fast_reply` keeps
    /// mutt's subject, `[sender: subject]`), with `text` as the mail's own
    /// text above the signature; returns once mutt has sent it.
    pub async fn forward(&mut self, subject: &str, to: &str, text: &str) {
        self.write_text(text);
        self.select(subject).await;
        self.keys(&["*", "f"]);
        self.wait_for("mutt's To prompt", |s| bottom_line(s).starts_with("To:"))
            .await;
        self.text(to);
        self.keys(&["Enter"]);
        self.wait_for("mutt's compose menu", compose_menu).await;
        self.send().await;
    }

    /// Sends the mail of the compose menu (`y`), and returns once it is in
    /// mutt's Sent mbox.
    async fn send(&mut self) {
        let sent = self.sent();
        self.keys(&["y"]);
        // Mutt asks this when a file it attached (a forwarded mail it wrote
        // itself) changed its time stamp since: yes, once per question.
        let mut answered = String::new();
        self.wait_for("mutt to send the mail", |s| {
            if let Some(e) = SEND_ERRORS.iter().find(|e| s.contains(*e)) {
                panic!("mutt could not send ({e}):\n{s}");
            }
            let prompt = bottom_line(s);
            if prompt.contains("modified. Update encoding") && prompt != answered {
                answered = prompt.to_string();
                self.keys(&["y"]);
            }
            self.sent() > sent
        })
        .await;
    }

    /// What the pane shows now (for assertion messages).
    pub fn screen(&self) -> String {
        let out = self
            .tmux()
            .args(["capture-pane", "-p", "-t", "mutt"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// How many mails mutt has sent: the messages in its Sent mbox.
    fn sent(&self) -> usize {
        let mbox = std::fs::read(self.dir.join("sent")).unwrap_or_default();
        mbox.split(|&b| b == b'\n')
            .filter(|l| l.starts_with(b"From "))
            .count()
    }

    fn text_file(&self) -> PathBuf {
        self.dir.join("reply-text")
    }

    fn tmux(&self) -> Command {
        let mut c = Command::new("tmux");
        // No ~/.tmux.conf.
        c.arg("-S")
            .arg(&self.socket)
            .args(["-f", "/dev/null"])
            .env("TERM", "xterm-256color");
        c
    }

    /// Presses tmux's named keys ("Enter") or single characters.
    fn keys(&self, keys: &[&str]) {
        let status = self
            .tmux()
            .args(["send-keys", "-t", "mutt"])
            .args(keys)
            .status()
            .expect("tmux send-keys");
        assert!(status.success(), "tmux send-keys {keys:?}");
    }

    /// Types `text` literally.
    fn text(&self, text: &str) {
        let status = self
            .tmux()
            .args(["send-keys", "-t", "mutt", "-l", text])
            .status()
            .expect("tmux send-keys");
        assert!(status.success(), "tmux send-keys -l {text:?}");
    }

    async fn wait_for(&self, what: &str, mut cond: impl FnMut(&str) -> bool) {
        harness::wait_until_async(
            what,
            STEP,
            || std::future::ready(cond(&self.screen())),
            || {
                // The screen without its empty lines.
                let screen = self.screen();
                let lines: Vec<&str> = screen.lines().filter(|l| !l.trim().is_empty()).collect();
                lines.join("\n")
            },
        )
        .await;
    }
}

impl Drop for Mutt {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").output();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The last line of the pane with text: mutt's message or prompt line.
fn bottom_line(screen: &str) -> &str {
    screen
        .lines()
        .rev()
        .map(str::trim_end)
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

/// The messages the index shows and the mailbox holds, from mutt's status
/// line (`[Msgs:SHOWN/TOTAL]`).
fn counts(screen: &str) -> Option<(u32, u32)> {
    let rest = &screen[screen.find("[Msgs:")? + "[Msgs:".len()..];
    let (shown, total) = rest[..rest.find(']')?].split_once('/')?;
    Some((shown.parse().ok()?, total.parse().ok()?))
}

fn compose_menu(screen: &str) -> bool {
    screen.contains("-- Mutt: Compose")
}

/// A value for a double-quoted muttrc string: no backquote commands, no
/// `$VARIABLE` expansion.
fn muttrc_escape(v: &str) -> String {
    v.chars()
        .flat_map(|c| match c {
            '\\' | '"' | '`' | '$' => vec!['\\', c],
            _ => vec![c],
        })
        .collect()
}

#[tokio::test]
async fn a_mutt_reply_reaches_the_reply_to_mailbox_with_text_quote_signature_and_attachment() {
    let stack = MailStack::with(Options {
        postfix: true,
        ..Options::default()
    });
    let original = harness::mail(
        "Dana <dana@example.net>",
        "staff@vendor.test",
        "[#42] Pool degraded",
        "pool-42@example.net",
        "Reply-To: support@vendor.test\r\n",
        "Hello,\r\nthe pool is degraded.\r\nDana",
    );
    // Binary, so that it travels byte for byte (base64), line ends and all.
    let dump: Vec<u8> = (0..=255).collect();
    let attachment = stack.dir.join("crash.dump");
    std::fs::write(&attachment, &dump).unwrap();

    let mut mutt = Mutt::open(&stack, "staff@vendor.test", "Sam Staff <staff@vendor.test>").await;
    // The mail arrives while mutt is open, as a notification would.
    stack
        .append(
            "staff@vendor.test",
            "INBOX",
            &original,
            "02-Mar-2026 09:00:00 -0800",
        )
        .await;
    mutt.reply("Pool degraded", "Thanks, fixed.\n", &[&attachment])
        .await;
    stack
        .wait_for_count("support@vendor.test", "INBOX", 1, STEP)
        .await;

    let raw = stack
        .messages("support@vendor.test", "INBOX")
        .await
        .remove(0);
    let shown = String::from_utf8_lossy(&raw).into_owned();
    let reply = mail_parser::MessageParser::default()
        .parse(&raw)
        .unwrap_or_else(|| panic!("the reply does not parse:\n{shown}"));
    let address = |a: Option<&mail_parser::Address>| {
        a.and_then(|a| a.first())
            .and_then(|a| a.address())
            .map(str::to_string)
    };
    assert_eq!(
        reply.in_reply_to().as_text(),
        Some("pool-42@example.net"),
        "{shown}"
    );
    assert_eq!(
        address(reply.to()).as_deref(),
        Some("support@vendor.test"),
        "{shown}"
    );
    assert_eq!(
        address(reply.from()).as_deref(),
        Some("staff@vendor.test"),
        "{shown}"
    );
    assert_eq!(reply.subject(), Some("Re: [#42] Pool degraded"), "{shown}");
    let body = reply
        .body_text(0)
        .expect("a text part")
        .replace("\r\n", "\n");
    assert!(body.starts_with("Thanks, fixed.\n"), "{body}");
    let quote = body.find("Dana wrote:\n> Hello,\n> the pool is degraded.\n> Dana\n");
    let signature = body.find(&format!("\n-- \n{}", Mutt::SIGNATURE));
    assert!(
        quote.is_some() && signature > quote,
        "quote, then signature:\n{body}"
    );
    let attached: Vec<_> = reply
        .attachments()
        .map(|a| (mail_parser::MimeHeaders::attachment_name(a), a.contents()))
        .collect();
    assert_eq!(attached, [(Some("crash.dump"), &dump[..])], "{shown}");
}
