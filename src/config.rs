//! Configuration: the raw TOML shape, then validation into typed values with file and line for every problem.

use crate::diag::{Problem, Problems, Report, parse_toml};
use crate::layout::{self, SearchPath};
use crate::model::Role;
use crate::oauth::{Grant, Mechanism, OAuth2, Source, TokenRequest, TokenUrl, Tokens};
use crate::pack::Pack;
pub use crate::secret::Secret;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    daemon: RawDaemon,
    identity: RawIdentity,
    smtp: RawSmtp,
    #[serde(default)]
    tickets: RawTickets,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default, rename = "mailbox")]
    mailboxes: Vec<Spanned<RawMailbox>>,
    #[serde(default)]
    staff: RawStaff,
    #[serde(default)]
    metrics: Option<RawMetrics>,
}

/// `[metrics]`: where Prometheus scrapes; absent, nothing listens.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    #[serde(default = "default_metrics_listen")]
    listen: Spanned<String>,
}

fn default_metrics_listen() -> Spanned<String> {
    Spanned::new(0..0, "127.0.0.1:9464".into())
}

/// `[staff]`: who the people a pack names are.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStaff {
    /// A recipient a pack names (an escalation step's `to`) -> its address or addresses.
    recipients: Option<Spanned<std::collections::BTreeMap<String, Spanned<OneOrMany>>>>,
    /// How long before a first-response target staff are warned ("1h", on
    /// the SLA's clock).
    sla_warning_lead: Option<Spanned<String>>,
    /// Whether staff get first-response warnings and breach notices.
    sla_notices: Option<bool>,
    /// The staff members, by the name `#assign` uses.
    members: Option<std::collections::BTreeMap<String, Spanned<RawMember>>>,
    /// The key of the reply tokens in our notifications' Message-IDs.
    token_key_file: Option<Spanned<String>>,
    token_key_credential: Option<Spanned<String>>,
    /// The authserv-id(s) of the vendor's own receiving server, whose
    /// Authentication-Results headers are trusted (RFC 8601).
    authserv_id: Option<Spanned<OneOrMany>>,
    /// Whether DKIM signatures of staff mail are verified (default on).
    dkim: Option<bool>,
    /// The DNS servers DKIM keys are asked of (default: /etc/resolv.conf's).
    dkim_nameservers: Option<Spanned<Vec<String>>>,
    /// How long one DKIM key look-up may take (default 5).
    dkim_timeout_secs: Option<u64>,
}

/// `[staff.members.NAME]`: a staff member.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMember {
    /// The name shown to customers on relayed answers is the mailbox's; this one is for staff.
    #[serde(default)]
    name: Option<String>,
    addresses: Spanned<OneOrMany>,
    /// Mailbox names or roles, pack route rule IDs (AV-04), or "*": whose new tickets and replies they hear of.
    #[serde(default)]
    queues: Option<Spanned<Vec<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    database: Spanned<String>,
    /// Default: `templates/` beside the config if there is one, else the shipped ones.
    #[serde(default)]
    templates: Option<Spanned<String>>,
    /// Default: `vendors/` beside the config, then the shipped packs.
    #[serde(default)]
    packs: Option<Spanned<String>>,
    pack: Spanned<String>,
    /// How long the daemon waits at start (and after a reload) for every
    /// mailbox to log in before it tells systemd it is ready anyway.
    #[serde(default = "default_ready_timeout")]
    ready_timeout_secs: u64,
}

fn default_ready_timeout() -> u64 {
    60
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    /// Display name on our mail.
    #[serde(default = "default_from_name")]
    from_name: String,
    message_id_domain: Spanned<String>,
    own_addresses: Spanned<Vec<String>>,
    #[serde(default = "empty_list")]
    staff: Spanned<Vec<String>>,
}

fn empty_list() -> Spanned<Vec<String>> {
    Spanned::new(0..0, Vec::new())
}

fn default_from_name() -> String {
    "Support".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmtp {
    host: Spanned<String>,
    port: Spanned<u16>,
    tls: Spanned<String>,
    #[serde(default)]
    ca_file: Option<Spanned<String>>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password_file: Option<Spanned<String>>,
    #[serde(default)]
    password_credential: Option<Spanned<String>>,
    #[serde(default)]
    oauth2: Option<Spanned<RawOAuth2>>,
    #[serde(default)]
    hello_name: Option<String>,
    #[serde(default = "default_smtp_timeout")]
    timeout_secs: u64,
    #[serde(default = "default_max_attempts")]
    max_attempts: u32,
    #[serde(default = "default_retry_base_ms")]
    retry_base_ms: u64,
    #[serde(default = "default_max_queue_lifetime_secs")]
    max_queue_lifetime_secs: u64,
}

/// Five days, as Postfix's `maximal_queue_lifetime`.
fn default_max_queue_lifetime_secs() -> u64 {
    5 * 24 * 3600
}

fn default_retry_base_ms() -> u64 {
    30_000
}

fn default_smtp_timeout() -> u64 {
    60
}
fn default_max_attempts() -> u32 {
    20
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTickets {
    #[serde(default = "default_prefix")]
    prefix: Spanned<String>,
}

impl Default for RawTickets {
    fn default() -> Self {
        RawTickets {
            prefix: default_prefix(),
        }
    }
}

fn default_prefix() -> Spanned<String> {
    Spanned::new(0..0, "TKT".into())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    #[serde(default = "default_max_message_bytes")]
    max_message_bytes: u64,
    #[serde(default = "default_recipient_rate")]
    replies_per_recipient: Spanned<RawRate>,
    #[serde(default = "default_ticket_rate")]
    replies_per_ticket: Spanned<RawRate>,
    #[serde(default = "default_acks_rate")]
    new_ticket_acks: Spanned<RawRate>,
    #[serde(default = "default_max_processing_ms")]
    max_processing_ms: u64,
}

impl Default for RawLimits {
    fn default() -> Self {
        RawLimits {
            max_message_bytes: default_max_message_bytes(),
            replies_per_recipient: default_recipient_rate(),
            replies_per_ticket: default_ticket_rate(),
            new_ticket_acks: default_acks_rate(),
            max_processing_ms: default_max_processing_ms(),
        }
    }
}

/// A token bucket as written in the config: `{ burst = 5, per_hour = 2 }`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRate {
    burst: i64,
    per_hour: i64,
}

fn default_recipient_rate() -> Spanned<RawRate> {
    let r = Rate::DEFAULT_PER_RECIPIENT;
    Spanned::new(
        0..0,
        RawRate {
            burst: r.burst.into(),
            per_hour: r.per_hour.into(),
        },
    )
}

fn default_ticket_rate() -> Spanned<RawRate> {
    raw_rate(Rate::DEFAULT_PER_TICKET)
}

fn default_acks_rate() -> Spanned<RawRate> {
    raw_rate(Rate::DEFAULT_NEW_TICKET_ACKS)
}

fn raw_rate(r: Rate) -> Spanned<RawRate> {
    Spanned::new(
        0..0,
        RawRate {
            burst: r.burst.into(),
            per_hour: r.per_hour.into(),
        },
    )
}

/// Checks a rate from the config, reporting at its line: burst from 1 to
/// `max_burst`, per_hour from 0 to `max_per_hour`; `fallback` when wrong.
fn rate_within(
    r: &mut Report<'_>,
    name: &str,
    raw: &Spanned<RawRate>,
    (max_burst, max_per_hour): (i64, i64),
    fallback: Rate,
) -> Rate {
    let v = raw.get_ref();
    let mut ok = true;
    if !(1..=max_burst).contains(&v.burst) {
        r.spanned(
            raw,
            format!("limits.{name}: burst must be between 1 and {max_burst}"),
        );
        ok = false;
    }
    if !(0..=max_per_hour).contains(&v.per_hour) {
        r.spanned(
            raw,
            format!("limits.{name}: per_hour must be between 0 and {max_per_hour}"),
        );
        ok = false;
    }
    if ok {
        Rate {
            burst: v.burst as u32,
            per_hour: v.per_hour as u32,
        }
    } else {
        fallback
    }
}

/// A per-address or per-ticket reply rate.
fn rate(r: &mut Report<'_>, name: &str, raw: &Spanned<RawRate>) -> Rate {
    rate_within(r, name, raw, (1000, 10_000), Rate::DEFAULT_PER_RECIPIENT)
}

fn default_max_message_bytes() -> u64 {
    25 * 1024 * 1024
}

fn default_max_processing_ms() -> u64 {
    5000
}
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMailbox {
    name: Spanned<String>,
    role: Spanned<String>,
    address: Spanned<String>,
    host: Spanned<String>,
    port: u16,
    tls: Spanned<String>,
    #[serde(default)]
    ca_file: Option<Spanned<String>>,
    username: String,
    #[serde(default)]
    password_file: Option<Spanned<String>>,
    #[serde(default)]
    password_credential: Option<Spanned<String>>,
    #[serde(default)]
    oauth2: Option<Spanned<RawOAuth2>>,
    #[serde(default = "default_folder")]
    folder: String,
    #[serde(default = "default_processed")]
    processed_folder: String,
    #[serde(default = "default_quarantine")]
    quarantine_folder: String,
    #[serde(default = "default_after")]
    after: Spanned<String>,
    #[serde(default = "default_poll")]
    poll_interval_secs: Spanned<u64>,
    #[serde(default = "default_true")]
    idle: bool,
    #[serde(default = "default_batch")]
    batch_size: Spanned<u32>,
    #[serde(default)]
    accept_lists: bool,
    /// How long one IMAP step (a command, a batch) may take before the
    /// watcher counts as stuck and the watchdog stops being pinged.
    #[serde(default = "default_imap_timeout")]
    timeout_secs: u64,
}

fn default_imap_timeout() -> u64 {
    120
}

fn default_folder() -> String {
    "INBOX".into()
}
fn default_processed() -> String {
    "Processed".into()
}
fn default_quarantine() -> String {
    "Quarantine".into()
}
fn default_after() -> Spanned<String> {
    Spanned::new(0..0, "move".into())
}
fn default_poll() -> Spanned<u64> {
    Spanned::new(0..0, 60)
}
fn default_true() -> bool {
    true
}
fn default_batch() -> Spanned<u32> {
    Spanned::new(0..0, 200)
}

/// `oauth2 = { ... }` of a mailbox or of `[smtp]`: a token file, or a
/// token endpoint with its grant.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOAuth2 {
    #[serde(default)]
    mechanism: Option<Spanned<String>>,
    #[serde(default)]
    token_file: Option<Spanned<String>>,
    #[serde(default)]
    token_url: Option<Spanned<String>>,
    #[serde(default)]
    grant: Option<Spanned<String>>,
    #[serde(default)]
    client_id: Option<Spanned<String>>,
    #[serde(default)]
    client_secret_file: Option<Spanned<String>>,
    #[serde(default)]
    client_secret_credential: Option<Spanned<String>>,
    #[serde(default)]
    refresh_token_file: Option<Spanned<String>>,
    #[serde(default)]
    refresh_token_credential: Option<Spanned<String>>,
    #[serde(default)]
    scope: Option<Spanned<String>>,
    #[serde(default)]
    ca_file: Option<Spanned<String>>,
}

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

#[derive(Debug, Clone)]
pub struct Identity {
    pub from_name: String,
    pub message_id_domain: String,
    /// Lower-cased addresses that are ours: never a customer, never answered.
    pub own_addresses: Vec<String>,
    pub staff: Vec<String>,
}

impl Identity {
    pub fn is_own(&self, address: &str) -> bool {
        let a = address.to_ascii_lowercase();
        self.own_addresses.contains(&a)
    }
}

/// A token bucket for automatic replies: `burst` replies at once, refilled
/// at `per_hour` replies an hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub burst: u32,
    pub per_hour: u32,
}

impl Rate {
    /// Five acknowledgements to one address at once, then two an hour: a
    /// loop with another autoresponder stops after five replies.
    pub const DEFAULT_PER_RECIPIENT: Rate = Rate {
        burst: 5,
        per_hour: 2,
    };
    /// Five acknowledgements on one ticket at once, then one an hour.
    pub const DEFAULT_PER_TICKET: Rate = Rate {
        burst: 5,
        per_hour: 1,
    };
    /// A thousand new tickets' acknowledgements at once, then a thousand an
    /// hour: a flood of forged senders gets no more replies than that.
    pub const DEFAULT_NEW_TICKET_ACKS: Rate = Rate {
        burst: 1000,
        per_hour: 1000,
    };
}

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_message_bytes: u64,
    pub replies_per_recipient: Rate,
    pub replies_per_ticket: Rate,
    /// Every new ticket's acknowledgement, whoever it goes to.
    pub new_ticket_acks: Rate,
    /// How long reading and deciding one message may take before it is
    /// quarantined as "processing budget exceeded".
    pub max_processing: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: default_max_message_bytes(),
            replies_per_recipient: Rate::DEFAULT_PER_RECIPIENT,
            replies_per_ticket: Rate::DEFAULT_PER_TICKET,
            new_ticket_acks: Rate::DEFAULT_NEW_TICKET_ACKS,
            max_processing: Duration::from_millis(default_max_processing_ms()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    /// The addresses of the recipients the pack names (`[staff] recipients`).
    pub staff: StaffDirectory,
    pub database: PathBuf,
    /// Where the templates were found (`layout`).
    pub templates: layout::Source,
    /// Where the pack was found.
    pub pack_source: layout::Source,
    /// Where templates and packs are looked for (`explain --pack` uses it too).
    pub search: SearchPath,
    /// How long start and reload wait for every mailbox to log in before READY.
    pub ready_timeout: Duration,
    /// Where `/metrics` and `/healthz` are served (`[metrics] listen`).
    pub metrics_listen: Option<std::net::SocketAddr>,
    pub pack: Pack,
    pub identity: Identity,
    pub smtp: SmtpConfig,
    pub ticket_prefix: String,
    pub limits: Limits,
    pub mailboxes: Vec<MailboxConfig>,
}

impl Config {
    /// Reads and validates `path`, reporting every problem found.
    pub fn load(path: &Path) -> Result<Config, Problems> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Problems(vec![Problem {
                file: path.to_path_buf(),
                line: 0,
                message: format!("cannot read the file: {e}"),
            }])
        })?;
        Self::from_str_at(path, &text)
    }

    pub fn from_str_at(path: &Path, text: &str) -> Result<Config, Problems> {
        let mut r = Report::new(path, text);
        let Some(raw) = parse_toml::<RawConfig>(&mut r) else {
            return Err(Problems(r.problems));
        };
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let resolve = |p: &str| -> PathBuf {
            let p = Path::new(p);
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };

        let database = resolve(raw.daemon.database.get_ref());
        let search = SearchPath::new(
            Some(&base),
            raw.daemon.templates.as_ref().map(|t| resolve(t.get_ref())),
            raw.daemon.packs.as_ref().map(|p| resolve(p.get_ref())),
            &crate::layout::data_dir(),
        );
        let templates = search.templates_source().unwrap_or_else(|| {
            let msg = format!(
                "templates: {} is not a directory",
                search.templates_described()
            );
            match &raw.daemon.templates {
                Some(t) => r.spanned(t, msg),
                None => r.at(0, msg),
            }
            layout::Source::BuiltIn
        });
        let pack_source = search.pack_source(raw.daemon.pack.get_ref());
        let mut pack_problems = Vec::new();
        let pack = if let Some(source) = &pack_source {
            match Pack::from_source(raw.daemon.pack.get_ref(), source) {
                Ok(p) => Some(p),
                Err(ps) => {
                    pack_problems = ps.0;
                    None
                }
            }
        } else {
            r.spanned(
                &raw.daemon.pack,
                format!(
                    "pack `{}`: no file {}.toml in {}",
                    raw.daemon.pack.get_ref(),
                    raw.daemon.pack.get_ref(),
                    search.packs_described()
                ),
            );
            None
        };

        let identity = Identity {
            from_name: raw.identity.from_name.clone(),
            message_id_domain: raw.identity.message_id_domain.get_ref().trim().to_string(),
            own_addresses: raw
                .identity
                .own_addresses
                .get_ref()
                .iter()
                .map(|a| a.trim().to_ascii_lowercase())
                .collect(),
            staff: raw
                .identity
                .staff
                .get_ref()
                .iter()
                .map(|a| a.trim().to_ascii_lowercase())
                .collect(),
        };
        if !valid_domain(&identity.message_id_domain) {
            r.spanned(
                &raw.identity.message_id_domain,
                "message_id_domain must be a domain name such as tickets.example.com",
            );
        }
        if identity.own_addresses.is_empty() {
            r.spanned(
                &raw.identity.own_addresses,
                "own_addresses must list at least the address customers write to",
            );
        }
        for a in identity.own_addresses.iter() {
            if !valid_address(a) {
                r.spanned(
                    &raw.identity.own_addresses,
                    format!("own_addresses: `{a}` is not an email address"),
                );
            }
        }
        for a in identity.staff.iter() {
            if !valid_address(a) {
                r.spanned(
                    &raw.identity.staff,
                    format!("staff: `{a}` is not an email address"),
                );
            }
        }

        let smtp_endpoint = endpoint(
            &mut r,
            &raw.smtp.host,
            *raw.smtp.port.get_ref(),
            &raw.smtp.tls,
            raw.smtp.ca_file.as_ref(),
            &resolve,
        );
        if *raw.smtp.port.get_ref() == 0 {
            r.spanned(&raw.smtp.port, "smtp port must not be 0");
        }
        let smtp_who = format!("SMTP relay {}:{}", smtp_endpoint.host, smtp_endpoint.port);
        let smtp_login = login(
            &mut r,
            LoginFields {
                label: "smtp",
                who: &smtp_who,
                at: &raw.smtp.host,
                password_file: raw.smtp.password_file.as_ref(),
                password_credential: raw.smtp.password_credential.as_ref(),
                oauth2: raw.smtp.oauth2.as_ref(),
                required: raw.smtp.username.is_some(),
            },
            &resolve,
        );
        if let Some(Login::OAuth2(o)) = &smtp_login
            && o.mechanism != Mechanism::XOAuth2
        {
            r.spanned(
                raw.smtp
                    .oauth2
                    .as_ref()
                    .and_then(|o| o.get_ref().mechanism.as_ref())
                    .unwrap_or(&raw.smtp.host),
                "smtp: oauth2 mechanism must be xoauth2 (what SMTP relays take)",
            );
        }
        if raw.smtp.username.is_none() && smtp_login.is_some() {
            r.spanned(
                &raw.smtp.host,
                "smtp: a login (password or oauth2) needs a username",
            );
        }
        let smtp = SmtpConfig {
            endpoint: smtp_endpoint,
            username: raw.smtp.username.clone(),
            login: smtp_login,
            hello_name: raw
                .smtp
                .hello_name
                .clone()
                .unwrap_or_else(|| identity.message_id_domain.clone()),
            timeout: Duration::from_secs(raw.smtp.timeout_secs.max(1)),
            max_attempts: raw.smtp.max_attempts.max(1),
            retry_base: Duration::from_millis(raw.smtp.retry_base_ms.max(10)),
            max_queue_lifetime: Duration::from_secs(raw.smtp.max_queue_lifetime_secs.max(1)),
        };

        let prefix = raw.tickets.prefix.get_ref().clone();
        if prefix.is_empty()
            || prefix.len() > 16
            || !prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            r.spanned(
                &raw.tickets.prefix,
                "tickets.prefix must be 1 to 16 letters, digits or '-'",
            );
        }

        if raw.mailboxes.is_empty() {
            r.at(0, "no [[mailbox]] is configured: add at least one");
        }
        let mut mailboxes: Vec<MailboxConfig> = Vec::new();
        for sm in &raw.mailboxes {
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
            let ep = endpoint(
                &mut r,
                &m.host,
                m.port,
                &m.tls,
                m.ca_file.as_ref(),
                &resolve,
            );
            let login = login(
                &mut r,
                LoginFields {
                    label: &format!("mailbox `{name}`"),
                    who: &format!("mailbox {name}"),
                    at: &m.name,
                    password_file: m.password_file.as_ref(),
                    password_credential: m.password_credential.as_ref(),
                    oauth2: m.oauth2.as_ref(),
                    required: true,
                },
                &resolve,
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

        let replies_per_recipient = rate(
            &mut r,
            "replies_per_recipient",
            &raw.limits.replies_per_recipient,
        );
        let replies_per_ticket = rate(&mut r, "replies_per_ticket", &raw.limits.replies_per_ticket);
        let new_ticket_acks = rate_within(
            &mut r,
            "new_ticket_acks",
            &raw.limits.new_ticket_acks,
            (1_000_000, 1_000_000),
            Rate::DEFAULT_NEW_TICKET_ACKS,
        );
        let mut staff = staff_directory(&mut r, raw.staff.recipients.as_ref(), pack.as_ref());
        staff.sla_notices = raw.staff.sla_notices.unwrap_or(true);
        staff_members(
            &mut r,
            &raw.staff,
            &mut staff,
            &mailboxes,
            &identity,
            pack.as_ref(),
            &resolve,
        );
        if let Some(lead) = &raw.staff.sla_warning_lead {
            match crate::policy::Span::parse(lead.get_ref()) {
                Ok(span @ crate::policy::Span::Minutes(m)) if m > 0 => {
                    staff.sla_warning_lead = span
                }
                Ok(_) => r.spanned(
                    lead,
                    "staff.sla_warning_lead is a span in minutes or hours, such as 30m or 2h",
                ),
                Err(e) => r.spanned(lead, format!("staff.sla_warning_lead: {e}")),
            }
        }
        let metrics_listen = raw.metrics.as_ref().and_then(|m| {
            let parsed = m.listen.get_ref().parse::<std::net::SocketAddr>();
            if parsed.is_err() {
                r.spanned(
                    &m.listen,
                    format!(
                        "metrics.listen `{}` is not an address and port such as 127.0.0.1:9464",
                        m.listen.get_ref()
                    ),
                );
            }
            parsed.ok()
        });
        let mut problems = r.problems;
        problems.extend(pack_problems);
        match pack {
            Some(pack) if problems.is_empty() => Ok(Config {
                path: path.to_path_buf(),
                staff,
                database,
                templates,
                pack_source: pack_source.unwrap_or(layout::Source::BuiltIn),
                search,
                ready_timeout: Duration::from_secs(raw.daemon.ready_timeout_secs.max(1)),
                metrics_listen,
                pack,
                identity,
                smtp,
                ticket_prefix: prefix,
                limits: Limits {
                    max_message_bytes: raw.limits.max_message_bytes.max(1024),
                    replies_per_recipient,
                    replies_per_ticket,
                    new_ticket_acks,
                    max_processing: Duration::from_millis(raw.limits.max_processing_ms.max(100)),
                },
                mailboxes,
            }),
            _ => Err(Problems(problems)),
        }
    }

    pub fn mailbox(&self, name_or_role: &str) -> Option<&MailboxConfig> {
        self.mailboxes
            .iter()
            .find(|m| m.name == name_or_role)
            .or_else(|| {
                self.mailboxes
                    .iter()
                    .find(|m| m.role.as_str() == name_or_role)
            })
    }
}

fn endpoint(
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
struct LoginFields<'a> {
    /// How check-config names it: mailbox `support`, smtp.
    label: &'a str,
    /// How the daemon's messages name it: mailbox support, SMTP relay host:port.
    who: &'a str,
    /// Where a missing login is reported.
    at: &'a Spanned<String>,
    password_file: Option<&'a Spanned<String>>,
    password_credential: Option<&'a Spanned<String>>,
    oauth2: Option<&'a Spanned<RawOAuth2>>,
    /// Whether having no login at all is a problem.
    required: bool,
}

/// The one way to log in: a password (from a file or a credential) or
/// OAuth2 with complete settings; every problem reported at its line.
fn login(
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

/// `oauth2 = { ... }`: a token file, or a token endpoint with a complete grant.
fn oauth2_login(
    r: &mut Report<'_>,
    label: &str,
    who: &str,
    raw: &Spanned<RawOAuth2>,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> Option<OAuth2> {
    let o = raw.get_ref();
    let before = r.problems.len();
    let mechanism = match &o.mechanism {
        None => Mechanism::XOAuth2,
        Some(m) => match m.get_ref().as_str() {
            "xoauth2" => Mechanism::XOAuth2,
            "oauthbearer" => Mechanism::OAuthBearer,
            other => {
                r.spanned(
                    m,
                    format!(
                        "{label}: oauth2 mechanism `{other}` is not one of xoauth2, oauthbearer"
                    ),
                );
                Mechanism::XOAuth2
            }
        },
    };
    let endpoint_keys = [
        ("grant", o.grant.as_ref()),
        ("client_id", o.client_id.as_ref()),
        ("client_secret_file", o.client_secret_file.as_ref()),
        (
            "client_secret_credential",
            o.client_secret_credential.as_ref(),
        ),
        ("refresh_token_file", o.refresh_token_file.as_ref()),
        (
            "refresh_token_credential",
            o.refresh_token_credential.as_ref(),
        ),
        ("scope", o.scope.as_ref()),
        ("ca_file", o.ca_file.as_ref()),
    ];
    let source = match (&o.token_file, &o.token_url) {
        (Some(f), Some(_)) => {
            r.spanned(
                f,
                format!("{label}: oauth2 takes token_file or token_url, not both"),
            );
            None
        }
        (None, None) => {
            r.spanned(
                raw,
                format!("{label}: oauth2 needs token_file, or token_url with a grant"),
            );
            None
        }
        (Some(f), None) => {
            for (key, value) in endpoint_keys {
                if let Some(v) = value {
                    r.spanned(
                        v,
                        format!("{label}: oauth2 {key} is for token_url; token_file needs none"),
                    );
                }
            }
            let path = resolve(f.get_ref());
            if !path.is_file() {
                r.spanned(
                    f,
                    format!(
                        "{label}: oauth2 token_file {} does not exist",
                        path.display()
                    ),
                );
            }
            Some(Source::File(path))
        }
        (None, Some(u)) => token_request(r, label, o, u, resolve).map(Source::Endpoint),
    };
    if r.problems.len() > before {
        return None;
    }
    Some(OAuth2 {
        mechanism,
        tokens: Tokens::new(who.to_string(), source?),
    })
}

/// The token endpoint, the grant and the client's credentials.
fn token_request(
    r: &mut Report<'_>,
    label: &str,
    o: &RawOAuth2,
    u: &Spanned<String>,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> Option<TokenRequest> {
    let url = match TokenUrl::parse(u.get_ref().trim()) {
        Ok(url) => Some(url),
        Err(e) => {
            r.spanned(u, format!("{label}: oauth2 token_url {e}"));
            None
        }
    };
    if let Some(url) = &url
        && !url.https
        && !is_loopback(&url.host)
    {
        r.spanned(
            u,
            format!("{label}: oauth2 token_url must be https:// (plain http only to loopback)"),
        );
    }
    let client_id = match &o.client_id {
        Some(c) if !c.get_ref().trim().is_empty() => Some(c.get_ref().trim().to_string()),
        Some(c) => {
            r.spanned(c, format!("{label}: oauth2 client_id is empty"));
            None
        }
        None => {
            r.spanned(u, format!("{label}: oauth2 with token_url needs client_id"));
            None
        }
    };
    let client_secret = secret(
        r,
        "client_secret",
        o.client_secret_file.as_ref(),
        o.client_secret_credential.as_ref(),
        resolve,
    );
    let has_secret = o.client_secret_file.is_some() || o.client_secret_credential.is_some();
    let has_refresh = o.refresh_token_file.is_some() || o.refresh_token_credential.is_some();
    let grant = match o.grant.as_ref().map(|g| (g, g.get_ref().as_str())) {
        None => {
            r.spanned(
                u,
                format!("{label}: oauth2 with token_url needs grant = \"refresh_token\" or \"client_credentials\""),
            );
            None
        }
        Some((g, "refresh_token")) => {
            if !has_refresh {
                r.spanned(
                    g,
                    format!("{label}: oauth2 grant refresh_token needs refresh_token_file or refresh_token_credential"),
                );
            }
            secret(
                r,
                "refresh_token",
                o.refresh_token_file.as_ref(),
                o.refresh_token_credential.as_ref(),
                resolve,
            )
            .map(Grant::RefreshToken)
        }
        Some((g, "client_credentials")) => {
            if !has_secret {
                r.spanned(
                    g,
                    format!("{label}: oauth2 grant client_credentials needs client_secret_file or client_secret_credential"),
                );
            }
            if o.scope.is_none() {
                r.spanned(
                    g,
                    format!("{label}: oauth2 grant client_credentials needs scope (Microsoft 365: https://outlook.office365.com/.default)"),
                );
            }
            if let Some(t) = o
                .refresh_token_file
                .as_ref()
                .or(o.refresh_token_credential.as_ref())
            {
                r.spanned(
                    t,
                    format!("{label}: oauth2 grant client_credentials uses no refresh token"),
                );
            }
            Some(Grant::ClientCredentials)
        }
        Some((g, other)) => {
            r.spanned(
                g,
                format!("{label}: oauth2 grant `{other}` is not one of refresh_token, client_credentials"),
            );
            None
        }
    };
    let ca_file = o.ca_file.as_ref().map(|c| {
        let p = resolve(c.get_ref());
        if !p.is_file() {
            r.spanned(
                c,
                format!("{label}: oauth2 ca_file {} does not exist", p.display()),
            );
        }
        p
    });
    Some(TokenRequest {
        url: url?,
        grant: grant?,
        client_id: client_id?,
        client_secret,
        scope: o
            .scope
            .as_ref()
            .map(|s| s.get_ref().trim().to_string())
            .filter(|s| !s.is_empty()),
        ca_file,
    })
}

/// Reads a secret (`key`: password, client_secret, refresh_token) from
/// `KEY_file` or from systemd's `$CREDENTIALS_DIRECTORY` (`KEY_credential`).
fn secret(
    r: &mut Report<'_>,
    key: &str,
    file: Option<&Spanned<String>>,
    credential: Option<&Spanned<String>>,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> Option<Secret> {
    let (path, span) = match (file, credential) {
        (Some(f), None) => (resolve(f.get_ref()), f),
        (None, Some(c)) => {
            let Ok(dir) = std::env::var("CREDENTIALS_DIRECTORY") else {
                r.spanned(
                    c,
                    format!(
                        "{key}_credential `{}` needs $CREDENTIALS_DIRECTORY (set by systemd LoadCredential=)",
                        c.get_ref()
                    ),
                );
                return None;
            };
            if c.get_ref().contains('/') {
                r.spanned(
                    c,
                    format!("{key}_credential is a credential name, not a path"),
                );
                return None;
            }
            (Path::new(&dir).join(c.get_ref()), c)
        }
        (Some(f), Some(_)) => {
            r.spanned(f, format!("set {key}_file or {key}_credential, not both"));
            return None;
        }
        (None, None) => return None,
    };
    match std::fs::read_to_string(&path) {
        Ok(s) => {
            let s = s.trim_end_matches(['\r', '\n']).to_string();
            if s.is_empty() {
                r.spanned(span, format!("secret file {} is empty", path.display()));
            }
            Some(Secret(s))
        }
        Err(e) => {
            r.spanned(
                span,
                format!("cannot read secret file {}: {e}", path.display()),
            );
            None
        }
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// The configured mailboxes as the decision and the renderer need them:
/// each one's name, the address it answers from, and its role.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mailboxes(pub Vec<(String, String, crate::model::Role)>);

impl Mailboxes {
    pub fn of(mailboxes: &[MailboxConfig]) -> Mailboxes {
        Mailboxes(
            mailboxes
                .iter()
                .map(|m| (m.name.clone(), m.address.clone(), m.role))
                .collect(),
        )
    }

    /// The address a ticket of mailbox `name` is answered from: the first
    /// own address when the mailbox is no longer configured.
    pub fn answer_address<'a>(&'a self, identity: &'a Identity, name: &str) -> &'a str {
        self.0
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, a, _)| a.as_str())
            .or(identity.own_addresses.first().map(String::as_str))
            .unwrap_or_default()
    }

    /// The role of mailbox `name`, if it is configured.
    pub fn role(&self, name: &str) -> Option<crate::model::Role> {
        self.0
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, _, r)| *r)
    }
}

/// A staff member (`[staff.members.NAME]`): who may act on tickets by
/// mail, once their mail is proven theirs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffMember {
    /// The name `#assign` and `ticketd assign` use.
    pub name: String,
    /// How staff mail names them ("Alice Example"); the name when not set.
    pub display: String,
    /// Lower-cased.
    pub addresses: Vec<String>,
    /// Mailbox names or roles, pack route rule IDs, or `*`.
    pub queues: Vec<String>,
}

/// The addresses of `members`, in order.
pub fn addresses_of<'a>(members: impl IntoIterator<Item = &'a StaffMember>) -> Vec<String> {
    members
        .into_iter()
        .flat_map(|m| m.addresses.iter().cloned())
        .collect()
}

/// How DKIM signatures of staff mail are checked (`[staff] dkim`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimSettings {
    /// The DNS servers asked for keys; empty: the system's (/etc/resolv.conf).
    pub nameservers: Vec<std::net::SocketAddr>,
    pub timeout: Duration,
}

/// Staff: the people a pack's rules name, by the name the pack uses
/// ("Director of Customer Services"), with their addresses; the staff
/// members who work tickets by mail, and how their mail is proven theirs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffDirectory {
    pub recipients: std::collections::BTreeMap<String, Vec<String>>,
    /// How long before a first-response target staff are warned.
    pub sla_warning_lead: crate::policy::Span,
    /// Staff get first-response warnings and breach notices (`[staff] sla_notices`, default on).
    pub sla_notices: bool,
    pub members: Vec<StaffMember>,
    /// The reply tokens' key; without one, notifications carry no token.
    pub token_key: Option<crate::token::TokenKey>,
    /// Authserv-ids whose Authentication-Results are trusted, lower-cased.
    pub authserv_ids: Vec<String>,
    /// `None`: DKIM signatures are not checked.
    pub dkim: Option<DkimSettings>,
}

impl Default for StaffDirectory {
    fn default() -> Self {
        StaffDirectory {
            recipients: Default::default(),
            sla_warning_lead: crate::policy::Span::Minutes(60),
            sla_notices: true,
            members: vec![],
            token_key: None,
            authserv_ids: vec![],
            dkim: Some(DkimSettings {
                nameservers: vec![],
                timeout: Duration::from_secs(5),
            }),
        }
    }
}

impl StaffDirectory {
    /// The staff member `address` belongs to.
    pub fn member_by_address(&self, address: &str) -> Option<&StaffMember> {
        let a = address.trim().to_ascii_lowercase();
        self.members.iter().find(|m| m.addresses.contains(&a))
    }

    /// Every staff member's address (lower-cased).
    pub fn all_addresses(&self) -> Vec<String> {
        addresses_of(&self.members)
    }

    /// The staff member called `name` (case-insensitive).
    pub fn member(&self, name: &str) -> Option<&StaffMember> {
        self.members
            .iter()
            .find(|m| m.name.eq_ignore_ascii_case(name))
    }

    /// Who hears of a ticket: its owner once assigned, else every member
    /// whose queues name the ticket's mailbox (by name or role), the pack
    /// route its mail took (AV-04), or `*`.
    pub fn notified(
        &self,
        owner: Option<&str>,
        mailbox: &str,
        role: Option<crate::model::Role>,
        route: Option<&str>,
    ) -> Vec<&StaffMember> {
        if let Some(m) = owner.and_then(|o| self.member(o)) {
            return vec![m];
        }
        self.members
            .iter()
            .filter(|m| {
                m.queues.iter().any(|q| {
                    q == "*"
                        || q == mailbox
                        || role.is_some_and(|r| q == r.as_str())
                        || route.is_some_and(|r| q == r)
                })
            })
            .collect()
    }

    /// The addresses of `name`, if the directory knows it.
    pub fn addresses(&self, name: &str) -> Option<&[String]> {
        self.recipients
            .get(name)
            .map(Vec::as_slice)
            .filter(|a| !a.is_empty())
    }
}

/// Reads `[staff.members]` and how staff mail is proven (`token_key_*`,
/// `authserv_id`, `dkim*`), reporting every problem at its line.
fn staff_members(
    r: &mut Report<'_>,
    raw: &RawStaff,
    dir: &mut StaffDirectory,
    mailboxes: &[MailboxConfig],
    identity: &Identity,
    pack: Option<&Pack>,
    resolve: &dyn Fn(&str) -> PathBuf,
) {
    let routes = pack.map(|p| p.policy.route_rules()).unwrap_or_default();
    for (name, m) in raw.members.iter().flatten() {
        let raw_m = m.get_ref();
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '#') {
            r.spanned(
                m,
                format!("staff.members.\"{name}\": a member's name is one word (it is what #assign takes)"),
            );
        }
        let addresses: Vec<String> = match raw_m.addresses.get_ref() {
            OneOrMany::One(a) => vec![a.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
        .iter()
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
        if addresses.is_empty() {
            r.spanned(
                &raw_m.addresses,
                format!("staff.members.{name}.addresses lists no address"),
            );
        }
        for a in &addresses {
            if !valid_address(a) {
                r.spanned(
                    &raw_m.addresses,
                    format!("staff.members.{name}.addresses: `{a}` is not an email address"),
                );
            } else if identity.is_own(a) {
                r.spanned(
                    &raw_m.addresses,
                    format!("staff.members.{name}.addresses: `{a}` is one of [identity] own_addresses; a staff member writes from their own address"),
                );
            } else if let Some(other) = dir.member_by_address(a) {
                r.spanned(
                    &raw_m.addresses,
                    format!(
                        "staff.members.{name}.addresses: `{a}` is already {}'s",
                        other.name
                    ),
                );
            }
        }
        let queues: Vec<String> = raw_m
            .queues
            .as_ref()
            .map(|q| q.get_ref().clone())
            .unwrap_or_default();
        if let Some(qs) = &raw_m.queues {
            for q in qs.get_ref() {
                let known = q == "*"
                    || mailboxes
                        .iter()
                        .any(|mb| mb.name == *q || mb.role.as_str() == q)
                    || routes.contains(&q.as_str());
                if !known {
                    r.spanned(
                        qs,
                        format!(
                            "staff.members.{name}.queues: `{q}` is not a mailbox name or role, a route rule of the pack ({}), or \"*\"",
                            if routes.is_empty() { "it has none".to_string() } else { routes.join(", ") }
                        ),
                    );
                }
            }
        }
        if dir.member(name).is_some() {
            r.spanned(
                m,
                format!("staff.members: `{name}` twice (names are case-insensitive)"),
            );
        }
        dir.members.push(StaffMember {
            name: name.clone(),
            display: raw_m.name.clone().unwrap_or_else(|| name.clone()),
            addresses,
            queues,
        });
    }
    if let Some(key) = secret(
        r,
        "token_key",
        raw.token_key_file.as_ref(),
        raw.token_key_credential.as_ref(),
        resolve,
    ) {
        match crate::token::TokenKey::new(key.0.as_bytes()) {
            Ok(k) => dir.token_key = Some(k),
            Err(e) => {
                if let Some(at) = raw
                    .token_key_file
                    .as_ref()
                    .or(raw.token_key_credential.as_ref())
                {
                    r.spanned(at, format!("staff.token_key: {e}"));
                }
            }
        }
    }
    if let Some(ids) = &raw.authserv_id {
        dir.authserv_ids = match ids.get_ref() {
            OneOrMany::One(a) => vec![a.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
        .iter()
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
        if dir
            .authserv_ids
            .iter()
            .any(|a| a.is_empty() || a.contains(char::is_whitespace))
        {
            r.spanned(ids, "staff.authserv_id: an authserv-id is one word, the host name your receiving server writes in Authentication-Results");
        }
    }
    let mut nameservers = Vec::new();
    if let Some(ns) = &raw.dkim_nameservers {
        for n in ns.get_ref() {
            let parsed = n
                .parse::<std::net::SocketAddr>()
                .or_else(|_| n.parse::<std::net::IpAddr>().map(|ip| (ip, 53).into()));
            match parsed {
                Ok(a) => nameservers.push(a),
                Err(_) => r.spanned(
                    ns,
                    format!(
                        "staff.dkim_nameservers: `{n}` is not an IP address (with an optional port)"
                    ),
                ),
            }
        }
    }
    dir.dkim = raw.dkim.unwrap_or(true).then(|| DkimSettings {
        nameservers,
        timeout: Duration::from_secs(raw.dkim_timeout_secs.unwrap_or(5).clamp(1, 60)),
    });
    if !dir.members.is_empty()
        && dir.dkim.is_none()
        && dir.token_key.is_none()
        && dir.authserv_ids.is_empty()
    {
        r.at(
            0,
            "[staff] has members but no way to prove their mail: set token_key_file (or token_key_credential), authserv_id, or leave dkim on",
        );
    }
}

/// Reads `[staff] recipients`, reporting a malformed address and every
/// recipient the pack names that has none.
fn staff_directory(
    r: &mut Report<'_>,
    raw: Option<&Spanned<std::collections::BTreeMap<String, Spanned<OneOrMany>>>>,
    pack: Option<&Pack>,
) -> StaffDirectory {
    let mut dir = StaffDirectory::default();
    if let Some(raw) = raw {
        for (name, addrs) in raw.get_ref() {
            let list = match addrs.get_ref() {
                OneOrMany::One(a) => vec![a.clone()],
                OneOrMany::Many(v) => v.clone(),
            };
            let list: Vec<String> = list.iter().map(|a| a.trim().to_ascii_lowercase()).collect();
            for a in &list {
                if !valid_address(a) {
                    r.spanned(
                        addrs,
                        format!("staff.recipients.\"{name}\": `{a}` is not an email address"),
                    );
                }
            }
            if list.is_empty() {
                r.spanned(
                    addrs,
                    format!("staff.recipients.\"{name}\" lists no address"),
                );
            }
            dir.recipients.insert(name.clone(), list);
        }
    }
    if let Some(pack) = pack {
        for name in pack.policy.escalation_recipients() {
            if dir.addresses(name).is_none() {
                let msg = format!(
                    "pack `{}` escalates to \"{name}\", who has no address: add it under [staff] recipients",
                    pack.name
                );
                match raw {
                    Some(raw) => r.spanned(raw, msg),
                    None => r.at(0, msg),
                }
            }
        }
    }
    dir
}

pub(crate) fn valid_address(a: &str) -> bool {
    let a = a.trim();
    match a.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && valid_domain(domain)
                && !a
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || "<>,;\"".contains(c))
        }
        None => false,
    }
}

fn valid_domain(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

fn valid_folder(f: &str) -> bool {
    !f.is_empty() && !f.chars().any(|c| c.is_control() || "\"\\*%".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_domains() {
        assert!(valid_address("support@example.com"));
        assert!(!valid_address("support@"));
        assert!(!valid_address("a b@example.com"));
        assert!(!valid_domain("exa mple.com"));
    }

    #[test]
    fn reply_rates_are_checked_with_their_line() {
        let text = "[limits]\nreplies_per_recipient = { burst = 0, per_hour = 2 }\nreplies_per_ticket = { burst = 3, per_hour = -1 }\n";
        let raw: RawConfigLimitsOnly = toml::from_str(text).unwrap();
        let mut r = Report::new(Path::new("t.toml"), text);
        rate(
            &mut r,
            "replies_per_recipient",
            &raw.limits.replies_per_recipient,
        );
        let t = rate(&mut r, "replies_per_ticket", &raw.limits.replies_per_ticket);
        assert_eq!(r.problems.len(), 2);
        assert_eq!(r.problems[0].line, 2);
        assert!(r.problems[0].message.contains("burst"));
        assert_eq!(r.problems[1].line, 3);
        assert!(r.problems[1].message.contains("per_hour"));
        assert_eq!(t, Rate::DEFAULT_PER_RECIPIENT);
        let ok: RawConfigLimitsOnly =
            toml::from_str("[limits]\nreplies_per_ticket = { burst = 3, per_hour = 0 }\n").unwrap();
        let mut r = Report::new(Path::new("t.toml"), "");
        let t = rate(&mut r, "replies_per_ticket", &ok.limits.replies_per_ticket);
        assert!(r.problems.is_empty());
        assert_eq!(
            t,
            Rate {
                burst: 3,
                per_hour: 0
            }
        );
        let d = rate(
            &mut r,
            "replies_per_recipient",
            &ok.limits.replies_per_recipient,
        );
        assert_eq!(d, Rate::DEFAULT_PER_RECIPIENT);
    }

    #[derive(Deserialize)]
    struct RawConfigLimitsOnly {
        limits: RawLimits,
    }

    #[test]
    fn line_numbers_count_from_one() {
        let text = "a = 1\nb = 2\nc = 3\n";
        let r = Report::new(Path::new("x.toml"), text);
        assert_eq!(r.line_of(0), 1);
        assert_eq!(r.line_of(6), 2);
        assert_eq!(r.line_of(text.len()), 4);
    }
}
