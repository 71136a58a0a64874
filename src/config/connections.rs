//! How ticketd reaches its servers: each mailbox and the SMTP relay, their endpoints (host, port, TLS, CA) and logins (a password, or OAuth2), checked with their lines.

use super::checks::{is_loopback, secret, valid_address, valid_folder};
use super::oauth2::{OAuth2, oauth2_login};
use super::raw::{RawMailbox, RawOAuth2};
use crate::diag::Report;
use crate::model::{Identity, Mailboxes, Role};
use crate::secret::Secret;
use std::path::PathBuf;
use std::time::Duration;
use toml::Spanned;

/// How a mailbox or the relay logs in.
#[derive(Debug, Clone, PartialEq)]
pub enum Login {
    /// A password (LOGIN on IMAP; PLAIN or LOGIN on SMTP).
    Password(Secret),
    /// An OAuth2 access token (XOAUTH2 or OAUTHBEARER).
    OAuth2(OAuth2),
}

/// How a connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// Plain text: only for loopback test servers.
    None,
    /// Plain connect, then STARTTLS.
    StartTls,
    /// TLS from the first byte (IMAPS 993, SMTPS 465).
    Implicit,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub tls: Tls,
    /// PEM file of the CA(s) to trust instead of the system's store (a private CA).
    pub ca_file: Option<PathBuf>,
}

/// What to do with a message on IMAP once its effects are committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    Move,
    Seen,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MailboxConfig {
    pub name: String,
    pub role: Role,
    pub address: String,
    pub endpoint: Endpoint,
    pub username: String,
    pub login: Login,
    pub folder: String,
    pub processed_folder: String,
    pub quarantine_folder: String,
    pub after: After,
    pub poll_interval: Duration,
    pub idle: bool,
    pub batch_size: u32,
    pub accept_lists: bool,
    /// How long one IMAP step may take before the watcher counts as stuck.
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SmtpConfig {
    pub endpoint: Endpoint,
    /// With `login`, or neither: a relay that takes mail without a login.
    pub username: Option<String>,
    pub login: Option<Login>,
    pub hello_name: String,
    pub timeout: Duration,
    /// A cap on real attempts (the server answered for the mail); restarts
    /// and unreachable servers do not use it up.
    pub max_attempts: u32,
    /// The first retry delay after a temporary failure; it doubles up to an hour.
    pub retry_base: Duration,
    /// How long a queued mail is retried, counted from when it was queued;
    /// a temporary failure after that fails it for good (staff are told).
    pub max_queue_lifetime: Duration,
}

pub(super) fn endpoint(
    r: &mut Report<'_>,
    host: &Spanned<String>,
    port: u16,
    tls: &Spanned<String>,
    ca_file: Option<&Spanned<String>>,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> Endpoint {
    if host.get_ref().trim().is_empty() {
        r.spanned(host, "host must not be empty");
    }
    let t = match tls.get_ref().as_str() {
        "none" => Tls::None,
        "starttls" => Tls::StartTls,
        "implicit" => Tls::Implicit,
        other => {
            r.spanned(
                tls,
                format!("tls = `{other}` is not one of implicit, starttls, none"),
            );
            Tls::Implicit
        }
    };
    if t == Tls::None && !is_loopback(host.get_ref()) {
        r.spanned(
            tls,
            format!(
                "tls = \"none\" is allowed only for loopback hosts, not {}",
                host.get_ref()
            ),
        );
    }
    let ca = ca_file.map(|c| {
        let p = resolve(c.get_ref());
        if !p.is_file() {
            r.spanned(c, format!("ca_file {} does not exist", p.display()));
        }
        p
    });
    Endpoint {
        host: host.get_ref().trim().to_string(),
        port,
        tls: t,
        ca_file: ca,
    }
}

/// What a mailbox or `[smtp]` says about its login.
pub(super) struct LoginFields<'a> {
    /// How check-config names it: mailbox `support`, smtp.
    pub(super) label: &'a str,
    /// How the daemon's messages name it: mailbox support, SMTP relay host:port.
    pub(super) who: &'a str,
    /// Where a missing login is reported.
    pub(super) at: &'a Spanned<String>,
    pub(super) password_file: Option<&'a Spanned<String>>,
    pub(super) password_credential: Option<&'a Spanned<String>>,
    pub(super) oauth2: Option<&'a Spanned<RawOAuth2>>,
    /// Whether having no login at all is a problem.
    pub(super) required: bool,
}

/// The one way to log in: a password (from a file or a credential) or
/// OAuth2 with complete settings; every problem reported at its line.
pub(super) fn login(
    r: &mut Report<'_>,
    f: LoginFields<'_>,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> Option<Login> {
    let label = f.label;
    let has_password = f.password_file.is_some() || f.password_credential.is_some();
    match f.oauth2 {
        Some(o) if has_password => {
            r.spanned(
                o,
                format!("{label}: set a password or oauth2, not both (one way to log in)"),
            );
            None
        }
        Some(o) => oauth2_login(r, label, f.who, o, resolve).map(Login::OAuth2),
        None if has_password => secret(
            r,
            "password",
            f.password_file,
            f.password_credential,
            resolve,
        )
        .map(Login::Password),
        None => {
            if f.required {
                r.spanned(
                    f.at,
                    format!("{label}: set password_file or password_credential, or oauth2 (passwords are never written in the config)"),
                );
            }
            None
        }
    }
}

impl Mailboxes {
    pub fn of(mailboxes: &[MailboxConfig]) -> Mailboxes {
        Mailboxes(
            mailboxes
                .iter()
                .map(|m| (m.name.clone(), m.address.clone(), m.role))
                .collect(),
        )
    }
}

/// `[[mailbox]]`: each mailbox, its address, endpoint, login and folders.
pub(super) fn mailboxes(
    r: &mut Report<'_>,
    raw: &[Spanned<RawMailbox>],
    identity: &Identity,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> Vec<MailboxConfig> {
    if raw.is_empty() {
        r.at(0, "no [[mailbox]] is configured: add at least one");
    }
    let mut mailboxes: Vec<MailboxConfig> = Vec::new();
    for sm in raw {
        let m = sm.get_ref();
        let name = m.name.get_ref().clone();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
        {
            r.spanned(&m.name, "mailbox name must be letters, digits, '-' or '_'");
        }
        if mailboxes.iter().any(|x| x.name == name) {
            r.spanned(&m.name, format!("mailbox name `{name}` is used twice"));
        }
        let role = Role::parse(m.role.get_ref()).unwrap_or_else(|| {
            r.spanned(
                &m.role,
                format!(
                    "mailbox `{name}`: role `{}` is not one of support, rma, 24x7",
                    m.role.get_ref()
                ),
            );
            Role::Support
        });
        if !valid_address(m.address.get_ref()) {
            r.spanned(
                &m.address,
                format!("mailbox `{name}`: address is not an email address"),
            );
        } else if !identity.is_own(m.address.get_ref()) {
            r.spanned(
                &m.address,
                format!(
                    "mailbox `{name}`: address {} is missing from identity.own_addresses",
                    m.address.get_ref()
                ),
            );
        }
        let ep = endpoint(r, &m.host, m.port, &m.tls, m.ca_file.as_ref(), resolve);
        let login = login(
            r,
            LoginFields {
                label: &format!("mailbox `{name}`"),
                who: &format!("mailbox {name}"),
                at: &m.name,
                password_file: m.password_file.as_ref(),
                password_credential: m.password_credential.as_ref(),
                oauth2: m.oauth2.as_ref(),
                required: true,
            },
            resolve,
        );
        let after = match m.after.get_ref().as_str() {
            "move" => After::Move,
            "seen" => After::Seen,
            other => {
                r.spanned(
                    &m.after,
                    format!("mailbox `{name}`: after = `{other}` is not one of move, seen"),
                );
                After::Move
            }
        };
        if *m.poll_interval_secs.get_ref() == 0 {
            r.spanned(
                &m.poll_interval_secs,
                "poll_interval_secs must be at least 1",
            );
        }
        let batch = *m.batch_size.get_ref();
        if batch == 0 || batch > 5000 {
            r.spanned(&m.batch_size, "batch_size must be between 1 and 5000");
        }
        for (label, folder) in [
            ("folder", &m.folder),
            ("processed_folder", &m.processed_folder),
            ("quarantine_folder", &m.quarantine_folder),
        ] {
            if !valid_folder(folder) {
                r.spanned(
                        &m.name,
                        format!("mailbox `{name}`: {label} `{folder}` must be a plain folder name (no quotes, control characters or '*%')"),
                    );
            }
        }
        mailboxes.push(MailboxConfig {
            name,
            role,
            address: m.address.get_ref().to_ascii_lowercase(),
            endpoint: ep,
            username: m.username.clone(),
            login: login.unwrap_or(Login::Password(Secret(String::new()))),
            folder: m.folder.clone(),
            processed_folder: m.processed_folder.clone(),
            quarantine_folder: m.quarantine_folder.clone(),
            after,
            poll_interval: Duration::from_secs((*m.poll_interval_secs.get_ref()).max(1)),
            idle: m.idle,
            batch_size: batch.clamp(1, 5000),
            accept_lists: m.accept_lists,
            timeout: Duration::from_secs(m.timeout_secs.max(1)),
        });
    }

    mailboxes
}
