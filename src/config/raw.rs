//! The configuration file's shape as serde reads it: every table and key, with their defaults and the spans problems are reported at.

use crate::model::Rate;
use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) daemon: RawDaemon,
    pub(super) identity: RawIdentity,
    pub(super) smtp: RawSmtp,
    #[serde(default)]
    pub(super) tickets: RawTickets,
    #[serde(default)]
    pub(super) limits: RawLimits,
    #[serde(default, rename = "mailbox")]
    pub(super) mailboxes: Vec<Spanned<RawMailbox>>,
    #[serde(default)]
    pub(super) staff: RawStaff,
    #[serde(default)]
    pub(super) metrics: Option<RawMetrics>,
    #[serde(default, rename = "webhook")]
    pub(super) webhooks: Vec<Spanned<RawWebhook>>,
}

/// `[[webhook]]`: where ticket events are POSTed (`config::webhooks`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhook {
    pub(super) name: Spanned<String>,
    /// standard (default), pagerduty, slack or teams.
    pub(super) kind: Option<Spanned<String>>,
    pub(super) url: Option<Spanned<String>>,
    /// A URL that is itself a secret (Slack's, Teams') from a file or credential.
    pub(super) url_file: Option<Spanned<String>>,
    pub(super) url_credential: Option<Spanned<String>>,
    pub(super) events: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) mailbox: Option<Spanned<String>>,
    pub(super) pack: Option<Spanned<String>>,
    /// Only tickets of this severity or more severe (1 the most).
    pub(super) severity: Option<Spanned<i64>>,
    pub(super) include_text: Option<bool>,
    pub(super) secret_file: Option<Spanned<String>>,
    pub(super) secret_credential: Option<Spanned<String>>,
    pub(super) routing_key_file: Option<Spanned<String>>,
    pub(super) routing_key_credential: Option<Spanned<String>>,
    pub(super) ca_file: Option<Spanned<String>>,
    pub(super) timeout_secs: Option<u64>,
    pub(super) lifetime_hours: Option<u64>,
}

/// `[metrics]`: where Prometheus scrapes; absent, nothing listens.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    #[serde(default = "default_metrics_listen")]
    pub(super) listen: Spanned<String>,
}

pub(super) fn default_metrics_listen() -> Spanned<String> {
    Spanned::new(0..0, "127.0.0.1:9464".into())
}

/// `[staff]`: who the people a pack names are.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStaff {
    /// A recipient a pack names (an escalation step's `to`) -> its address or addresses.
    pub(super) recipients: Option<Spanned<std::collections::BTreeMap<String, Spanned<OneOrMany>>>>,
    /// How long before a first-response target staff are warned ("1h", on
    /// the SLA's clock).
    pub(super) sla_warning_lead: Option<Spanned<String>>,
    /// Whether staff get first-response warnings and breach notices.
    pub(super) sla_notices: Option<bool>,
    /// The staff members, by the name `#assign` uses.
    pub(super) members: Option<std::collections::BTreeMap<String, Spanned<RawMember>>>,
    /// The key of the reply tokens in our notifications' Message-IDs.
    pub(super) token_key_file: Option<Spanned<String>>,
    pub(super) token_key_credential: Option<Spanned<String>>,
    /// The authserv-id(s) of the vendor's own receiving server, whose
    /// Authentication-Results headers are trusted (RFC 8601).
    pub(super) authserv_id: Option<Spanned<OneOrMany>>,
    /// Whether DKIM signatures of staff mail are verified (default on).
    pub(super) dkim: Option<bool>,
    /// The DNS servers DKIM keys are asked of (default: /etc/resolv.conf's).
    pub(super) dkim_nameservers: Option<Spanned<Vec<String>>>,
    /// How long one DKIM key look-up may take (default 5).
    pub(super) dkim_timeout_secs: Option<u64>,
}

/// `[staff.members.NAME]`: a staff member.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMember {
    /// The name shown to customers on relayed answers is the mailbox's; this one is for staff.
    #[serde(default)]
    pub(super) name: Option<String>,
    pub(super) addresses: Spanned<OneOrMany>,
    /// Mailbox names or roles, pack route rule IDs (AV-04), or "*": whose new tickets and replies they hear of.
    #[serde(default)]
    pub(super) queues: Option<Spanned<Vec<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDaemon {
    /// A SQLite file, or a `postgres://` URL (without its password).
    pub(super) database: Spanned<String>,
    /// The PostgreSQL password, from a file or a systemd credential.
    #[serde(default)]
    pub(super) database_password_file: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) database_password_credential: Option<Spanned<String>>,
    /// The CAs a PostgreSQL server's certificate is checked against.
    #[serde(default)]
    pub(super) database_ca_file: Option<Spanned<String>>,
    /// Where the outbox notes each accepted mail (default: beside a SQLite
    /// file; with PostgreSQL, in $STATE_DIRECTORY or beside the config).
    #[serde(default)]
    pub(super) journal: Option<Spanned<String>>,
    /// This daemon's name among several on one PostgreSQL store (default:
    /// the host name).
    #[serde(default)]
    pub(super) node: Option<Spanned<String>>,
    /// How long a mailbox lease lasts unrenewed (PostgreSQL).
    #[serde(default = "default_lease")]
    pub(super) lease_secs: Spanned<u64>,
    /// Default: `templates/` beside the config if there is one, else the shipped ones.
    #[serde(default)]
    pub(super) templates: Option<Spanned<String>>,
    /// Default: `vendors/` beside the config, then the shipped packs.
    #[serde(default)]
    pub(super) packs: Option<Spanned<String>>,
    pub(super) pack: Spanned<String>,
    /// How long the daemon waits at start (and after a reload) for every
    /// mailbox to log in before it tells systemd it is ready anyway.
    #[serde(default = "default_ready_timeout")]
    pub(super) ready_timeout_secs: u64,
}

pub(super) fn default_lease() -> Spanned<u64> {
    Spanned::new(0..0, 15)
}

pub(super) fn default_ready_timeout() -> u64 {
    60
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIdentity {
    /// Display name on our mail.
    #[serde(default = "default_from_name")]
    pub(super) from_name: String,
    pub(super) message_id_domain: Spanned<String>,
    pub(super) own_addresses: Spanned<Vec<String>>,
    #[serde(default = "empty_list")]
    pub(super) staff: Spanned<Vec<String>>,
}

pub(super) fn empty_list() -> Spanned<Vec<String>> {
    Spanned::new(0..0, Vec::new())
}

pub(super) fn default_from_name() -> String {
    "Support".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSmtp {
    pub(super) host: Spanned<String>,
    pub(super) port: Spanned<u16>,
    pub(super) tls: Spanned<String>,
    #[serde(default)]
    pub(super) ca_file: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) username: Option<String>,
    #[serde(default)]
    pub(super) password_file: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) password_credential: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) oauth2: Option<Spanned<RawOAuth2>>,
    #[serde(default)]
    pub(super) hello_name: Option<String>,
    #[serde(default = "default_smtp_timeout")]
    pub(super) timeout_secs: u64,
    #[serde(default = "default_max_attempts")]
    pub(super) max_attempts: u32,
    #[serde(default = "default_retry_base_ms")]
    pub(super) retry_base_ms: u64,
    #[serde(default = "default_max_queue_lifetime_secs")]
    pub(super) max_queue_lifetime_secs: u64,
}

/// Five days, as Postfix's `maximal_queue_lifetime`.
pub(super) fn default_max_queue_lifetime_secs() -> u64 {
    5 * 24 * 3600
}

pub(super) fn default_retry_base_ms() -> u64 {
    30_000
}

pub(super) fn default_smtp_timeout() -> u64 {
    60
}
pub(super) fn default_max_attempts() -> u32 {
    20
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTickets {
    #[serde(default = "default_prefix")]
    pub(super) prefix: Spanned<String>,
}

impl Default for RawTickets {
    fn default() -> Self {
        RawTickets {
            prefix: default_prefix(),
        }
    }
}

pub(super) fn default_prefix() -> Spanned<String> {
    Spanned::new(0..0, "TKT".into())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLimits {
    #[serde(default = "default_max_message_bytes")]
    pub(super) max_message_bytes: u64,
    #[serde(default = "default_recipient_rate")]
    pub(super) replies_per_recipient: Spanned<RawRate>,
    #[serde(default = "default_ticket_rate")]
    pub(super) replies_per_ticket: Spanned<RawRate>,
    #[serde(default = "default_acks_rate")]
    pub(super) new_ticket_acks: Spanned<RawRate>,
    #[serde(default = "default_max_processing_ms")]
    pub(super) max_processing_ms: u64,
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
pub(super) struct RawRate {
    pub(super) burst: i64,
    pub(super) per_hour: i64,
}

pub(super) fn default_recipient_rate() -> Spanned<RawRate> {
    let r = Rate::DEFAULT_PER_RECIPIENT;
    Spanned::new(
        0..0,
        RawRate {
            burst: r.burst.into(),
            per_hour: r.per_hour.into(),
        },
    )
}

pub(super) fn default_ticket_rate() -> Spanned<RawRate> {
    raw_rate(Rate::DEFAULT_PER_TICKET)
}

pub(super) fn default_acks_rate() -> Spanned<RawRate> {
    raw_rate(Rate::DEFAULT_NEW_TICKET_ACKS)
}

pub(super) fn raw_rate(r: Rate) -> Spanned<RawRate> {
    Spanned::new(
        0..0,
        RawRate {
            burst: r.burst.into(),
            per_hour: r.per_hour.into(),
        },
    )
}

pub(super) fn default_max_message_bytes() -> u64 {
    crate::model::DEFAULT_MAX_MESSAGE_BYTES
}

pub(super) fn default_max_processing_ms() -> u64 {
    crate::model::DEFAULT_MAX_PROCESSING_MS
}
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMailbox {
    pub(super) name: Spanned<String>,
    pub(super) role: Spanned<String>,
    pub(super) address: Spanned<String>,
    pub(super) host: Spanned<String>,
    pub(super) port: u16,
    pub(super) tls: Spanned<String>,
    #[serde(default)]
    pub(super) ca_file: Option<Spanned<String>>,
    pub(super) username: String,
    #[serde(default)]
    pub(super) password_file: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) password_credential: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) oauth2: Option<Spanned<RawOAuth2>>,
    #[serde(default = "default_folder")]
    pub(super) folder: String,
    #[serde(default = "default_processed")]
    pub(super) processed_folder: String,
    #[serde(default = "default_quarantine")]
    pub(super) quarantine_folder: String,
    #[serde(default = "default_after")]
    pub(super) after: Spanned<String>,
    #[serde(default = "default_poll")]
    pub(super) poll_interval_secs: Spanned<u64>,
    #[serde(default = "default_true")]
    pub(super) idle: bool,
    #[serde(default = "default_batch")]
    pub(super) batch_size: Spanned<u32>,
    #[serde(default)]
    pub(super) accept_lists: bool,
    /// How long one IMAP step (a command, a batch) may take before the
    /// watcher counts as stuck and the watchdog stops being pinged.
    #[serde(default = "default_imap_timeout")]
    pub(super) timeout_secs: u64,
}

pub(super) fn default_imap_timeout() -> u64 {
    120
}

pub(super) fn default_folder() -> String {
    "INBOX".into()
}
pub(super) fn default_processed() -> String {
    "Processed".into()
}
pub(super) fn default_quarantine() -> String {
    "Quarantine".into()
}
pub(super) fn default_after() -> Spanned<String> {
    Spanned::new(0..0, "move".into())
}
pub(super) fn default_poll() -> Spanned<u64> {
    Spanned::new(0..0, 60)
}
pub(super) fn default_true() -> bool {
    true
}
pub(super) fn default_batch() -> Spanned<u32> {
    Spanned::new(0..0, 200)
}

/// `oauth2 = { ... }` of a mailbox or of `[smtp]`: a token file, or a
/// token endpoint with its grant.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOAuth2 {
    #[serde(default)]
    pub(super) mechanism: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) token_file: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) token_url: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) grant: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) client_id: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) client_secret_file: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) client_secret_credential: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) refresh_token_file: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) refresh_token_credential: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) scope: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) ca_file: Option<Spanned<String>>,
}
