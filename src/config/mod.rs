//! Configuration: the raw TOML shape, then validation into typed values with file and line for every problem. The core reads what it builds as `model` values (identity, limits, mailboxes, the staff directory); the shell reads the connections.

mod checks;
mod connections;
mod oauth2;
mod raw;
mod staff;
mod webhooks;

pub use crate::model::{
    DkimSettings, Identity, Limits, Mailboxes, Rate, StaffDirectory, StaffMember, addresses_of,
};
pub use checks::Secret;
pub(crate) use checks::valid_address;
pub use connections::{After, Endpoint, Login, MailboxConfig, SmtpConfig, Tls};
pub use oauth2::{Grant, Mechanism, OAuth2, Source, TokenRequest, TokenUrl};
pub use webhooks::{PAGERDUTY_EVENTS, Webhook};

use crate::diag::{Problem, Problems, Report, parse_toml};
use crate::layout::{self, SearchPath};
use crate::pack::Pack;
use crate::store::{Location, PgTarget};
use checks::{rate, rate_within, valid_domain};
use connections::{LoginFields, endpoint, login, mailboxes};
use raw::{RawConfig, RawIdentity, RawLimits, RawMetrics, RawSmtp, RawStaff, RawTickets};
use staff::{staff_directory, staff_members};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    /// The addresses of the recipients the pack names (`[staff] recipients`).
    pub staff: StaffDirectory,
    pub database: Location,
    /// The sent journal's file (`store::SentJournal`).
    pub journal: PathBuf,
    /// This daemon's name in leases, claims, events and logs.
    pub node: String,
    /// How long a mailbox lease lasts unrenewed.
    pub lease: Duration,
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
    /// `[[webhook]]` entries, in the file's order.
    pub webhooks: Vec<Webhook>,
}

impl Config {
    /// Reads and validates `path`, reporting every problem found.
    pub fn load(path: &Path) -> Result<Config, Problems> {
        Self::from_str_at(path, &read(path)?)
    }

    /// `load` with the pack read from `pack` instead of the one the config
    /// names (`check-config --pack`, `replay --pack`): the config is checked
    /// against it, and its problems name its own file and lines.
    pub fn load_with_pack(path: &Path, pack: &Path) -> Result<Config, Problems> {
        Self::from_str_with(path, &read(path)?, Some(pack))
    }

    pub fn from_str_at(path: &Path, text: &str) -> Result<Config, Problems> {
        Self::from_str_with(path, text, None)
    }

    fn from_str_with(
        path: &Path,
        text: &str,
        pack_file: Option<&Path>,
    ) -> Result<Config, Problems> {
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
        let (node, lease) = node_and_lease(&mut r, &raw.daemon);
        let (database, journal) = database(&mut r, &raw.daemon, (&base, &node), &resolve);
        let Data {
            search,
            templates,
            pack,
            pack_source,
            pack_problems,
        } = data(&mut r, &raw, (&base, pack_file), &resolve);
        let identity = identity(&mut r, &raw.identity);
        let smtp = smtp(&mut r, &raw.smtp, &identity, &resolve);
        let ticket_prefix = ticket_prefix(&mut r, &raw.tickets);
        let mailboxes = mailboxes(&mut r, &raw.mailboxes, &identity, &resolve);
        let limits = limits(&mut r, &raw.limits);
        let staff = staff(
            &mut r,
            &raw.staff,
            &mailboxes,
            &identity,
            pack.as_ref(),
            &resolve,
        );
        let metrics_listen = metrics_listen(&mut r, raw.metrics.as_ref());
        let names: Vec<String> = mailboxes.iter().map(|m| m.name.clone()).collect();
        let webhooks = webhooks::webhooks(&mut r, &raw.webhooks, &names, &resolve);
        let mut problems = r.problems;
        problems.extend(pack_problems);
        match pack {
            Some(pack) if problems.is_empty() => Ok(Config {
                path: path.to_path_buf(),
                staff,
                database,
                journal,
                node,
                lease,
                templates,
                pack_source: pack_source.unwrap_or(layout::Source::BuiltIn),
                search,
                ready_timeout: Duration::from_secs(raw.daemon.ready_timeout_secs.max(1)),
                metrics_listen,
                pack,
                identity,
                smtp,
                ticket_prefix,
                limits,
                mailboxes,
                webhooks,
            }),
            _ => Err(Problems(problems)),
        }
    }

    /// What the store queues deliveries for.
    pub fn subscriptions(&self) -> Vec<crate::model::Subscription> {
        self.webhooks.iter().map(|w| w.sub.clone()).collect()
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

/// The config file's text, or the problem of reading it.
fn read(path: &Path) -> Result<String, Problems> {
    std::fs::read_to_string(path).map_err(|e| {
        Problems(vec![Problem {
            file: path.to_path_buf(),
            line: 0,
            message: format!("cannot read the file: {e}"),
        }])
    })
}

/// Where templates and packs are found, and the pack: its problems are
/// reported with the pack file's own lines.
/// Where templates and packs are found (the search path ends with the
/// copies built into the binary), and the pack: its problems are reported
/// with the pack file's own lines.
struct Data {
    search: SearchPath,
    templates: layout::Source,
    pack: Option<Pack>,
    pack_source: Option<layout::Source>,
    pack_problems: Vec<Problem>,
}

fn data(
    r: &mut Report<'_>,
    raw: &RawConfig,
    (base, pack_file): (&Path, Option<&Path>),
    resolve: &dyn Fn(&str) -> PathBuf,
) -> Data {
    let search = SearchPath::new(
        Some(base),
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
    let pack_source = match pack_file {
        Some(p) => Some(layout::Source::File(p.to_path_buf())),
        None => search.pack_source(raw.daemon.pack.get_ref()),
    };
    let mut pack_problems = Vec::new();
    let pack = if let (Some(p), Some(_)) = (pack_file, &pack_source) {
        match Pack::load(p) {
            Ok(p) => Some(p),
            Err(ps) => {
                pack_problems = ps.0;
                None
            }
        }
    } else if let Some(source) = &pack_source {
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
    Data {
        search,
        templates,
        pack,
        pack_source,
        pack_problems,
    }
}

/// `[identity]`: who ticketd is, each address checked.
fn identity(r: &mut Report<'_>, raw: &RawIdentity) -> Identity {
    let identity = Identity {
        from_name: raw.from_name.clone(),
        message_id_domain: raw.message_id_domain.get_ref().trim().to_string(),
        own_addresses: raw
            .own_addresses
            .get_ref()
            .iter()
            .map(|a| a.trim().to_ascii_lowercase())
            .collect(),
        staff: raw
            .staff
            .get_ref()
            .iter()
            .map(|a| a.trim().to_ascii_lowercase())
            .collect(),
    };
    if !valid_domain(&identity.message_id_domain) {
        r.spanned(
            &raw.message_id_domain,
            "message_id_domain must be a domain name such as tickets.example.com",
        );
    }
    if identity.own_addresses.is_empty() {
        r.spanned(
            &raw.own_addresses,
            "own_addresses must list at least the address customers write to",
        );
    }
    for a in identity.own_addresses.iter() {
        if !valid_address(a) {
            r.spanned(
                &raw.own_addresses,
                format!("own_addresses: `{a}` is not an email address"),
            );
        }
    }
    for a in identity.staff.iter() {
        if !valid_address(a) {
            r.spanned(&raw.staff, format!("staff: `{a}` is not an email address"));
        }
    }

    identity
}

/// `[smtp]`: the relay, its login and its pacing.
fn smtp(
    r: &mut Report<'_>,
    raw: &RawSmtp,
    identity: &Identity,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> SmtpConfig {
    let smtp_endpoint = endpoint(
        r,
        &raw.host,
        *raw.port.get_ref(),
        &raw.tls,
        raw.ca_file.as_ref(),
        resolve,
    );
    if *raw.port.get_ref() == 0 {
        r.spanned(&raw.port, "smtp port must not be 0");
    }
    let smtp_who = format!("SMTP relay {}:{}", smtp_endpoint.host, smtp_endpoint.port);
    let smtp_login = login(
        r,
        LoginFields {
            label: "smtp",
            who: &smtp_who,
            at: &raw.host,
            password_file: raw.password_file.as_ref(),
            password_credential: raw.password_credential.as_ref(),
            oauth2: raw.oauth2.as_ref(),
            required: raw.username.is_some(),
        },
        resolve,
    );
    if let Some(Login::OAuth2(o)) = &smtp_login
        && o.mechanism != Mechanism::XOAuth2
    {
        r.spanned(
            raw.oauth2
                .as_ref()
                .and_then(|o| o.get_ref().mechanism.as_ref())
                .unwrap_or(&raw.host),
            "smtp: oauth2 mechanism must be xoauth2 (what SMTP relays take)",
        );
    }
    if raw.username.is_none() && smtp_login.is_some() {
        r.spanned(
            &raw.host,
            "smtp: a login (password or oauth2) needs a username",
        );
    }
    SmtpConfig {
        endpoint: smtp_endpoint,
        username: raw.username.clone(),
        login: smtp_login,
        hello_name: raw
            .hello_name
            .clone()
            .unwrap_or_else(|| identity.message_id_domain.clone()),
        timeout: Duration::from_secs(raw.timeout_secs.max(1)),
        max_attempts: raw.max_attempts.max(1),
        retry_base: Duration::from_millis(raw.retry_base_ms.max(10)),
        max_queue_lifetime: Duration::from_secs(raw.max_queue_lifetime_secs.max(1)),
    }
}

/// `[tickets] prefix`: the tag's letters.
fn ticket_prefix(r: &mut Report<'_>, raw: &RawTickets) -> String {
    let prefix = raw.prefix.get_ref().clone();
    if prefix.is_empty()
        || prefix.len() > 16
        || !prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        r.spanned(
            &raw.prefix,
            "tickets.prefix must be 1 to 16 letters, digits or '-'",
        );
    }

    prefix
}

/// `[limits]`: the message size, the reply rates and the processing budget.
fn limits(r: &mut Report<'_>, raw: &RawLimits) -> Limits {
    let replies_per_recipient = rate(r, "replies_per_recipient", &raw.replies_per_recipient);
    let replies_per_ticket = rate(r, "replies_per_ticket", &raw.replies_per_ticket);
    let new_ticket_acks = rate_within(
        r,
        "new_ticket_acks",
        &raw.new_ticket_acks,
        (1_000_000, 1_000_000),
        Rate::DEFAULT_NEW_TICKET_ACKS,
    );
    Limits {
        max_message_bytes: raw.max_message_bytes.max(1024),
        replies_per_recipient,
        replies_per_ticket,
        new_ticket_acks,
        max_processing: Duration::from_millis(raw.max_processing_ms.max(100)),
    }
}

/// `[staff]`: the pack's recipients, the members and their proof settings,
/// the SLA warning lead.
fn staff(
    r: &mut Report<'_>,
    raw: &RawStaff,
    mailboxes: &[MailboxConfig],
    identity: &Identity,
    pack: Option<&Pack>,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> StaffDirectory {
    let mut staff = staff_directory(r, raw.recipients.as_ref(), pack);
    staff.sla_notices = raw.sla_notices.unwrap_or(true);
    staff_members(r, raw, &mut staff, mailboxes, identity, pack, resolve);
    if let Some(lead) = &raw.sla_warning_lead {
        match crate::policy::Span::parse(lead.get_ref()) {
            Ok(span @ crate::policy::Span::Minutes(m)) if m > 0 => staff.sla_warning_lead = span,
            Ok(_) => r.spanned(
                lead,
                "staff.sla_warning_lead is a span in minutes or hours, such as 30m or 2h",
            ),
            Err(e) => r.spanned(lead, format!("staff.sla_warning_lead: {e}")),
        }
    }
    staff
}

/// `[metrics] listen`, when set.
fn metrics_listen(r: &mut Report<'_>, raw: Option<&RawMetrics>) -> Option<std::net::SocketAddr> {
    raw.and_then(|m| {
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
    })
}

/// `[daemon] node` (default: the host name) and `lease_secs`.
fn node_and_lease(r: &mut Report<'_>, d: &raw::RawDaemon) -> (String, Duration) {
    let node = match &d.node {
        Some(n) => {
            let name = n.get_ref().trim().to_string();
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                r.spanned(
                    n,
                    format!(
                        "daemon.node {:?}: letters, digits, '-', '_' and '.' only",
                        n.get_ref()
                    ),
                );
            }
            name
        }
        None => hostname(),
    };
    let secs = *d.lease_secs.get_ref();
    if !(2..=600).contains(&secs) {
        r.spanned(
            &d.lease_secs,
            format!("daemon.lease_secs {secs}: between 2 and 600"),
        );
    }
    (node, Duration::from_secs(secs.clamp(2, 600)))
}

/// The host's name (`/proc/sys/kernel/hostname`, else `ticketd`).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "ticketd".to_string())
}

/// `[daemon] database`: a SQLite path (beside the config when relative) or
/// a PostgreSQL URL whose password comes from `database_password_file` or
/// `database_password_credential`; and where the sent journal is kept.
fn database(
    r: &mut Report<'_>,
    d: &raw::RawDaemon,
    (base, node): (&Path, &str),
    resolve: &dyn Fn(&str) -> PathBuf,
) -> (Location, PathBuf) {
    let at = &d.database;
    let password = checks::secret(
        r,
        "database_password",
        d.database_password_file.as_ref(),
        d.database_password_credential.as_ref(),
        resolve,
    );
    let journal = d.journal.as_ref().map(|j| resolve(j.get_ref()));
    if !Location::is_url(at.get_ref()) {
        if let Some(p) = d
            .database_password_file
            .as_ref()
            .or(d.database_password_credential.as_ref())
        {
            r.spanned(p, "a SQLite database takes no password".to_string());
        }
        let path = resolve(at.get_ref());
        let mut sent = path.as_os_str().to_owned();
        sent.push("-sent");
        return (Location::Sqlite(path), journal.unwrap_or(sent.into()));
    }
    let ca_file = d.database_ca_file.as_ref().map(|f| resolve(f.get_ref()));
    if let (Some(f), Some(span)) = (&ca_file, &d.database_ca_file)
        && !f.is_file()
    {
        r.spanned(
            span,
            format!("daemon.database_ca_file {}: no such file", f.display()),
        );
    }
    let target = match PgTarget::parse(at.get_ref(), password.map(|s| s.0)) {
        Ok(t) => t.with_ca_file(ca_file),
        Err(e) => {
            r.spanned(at, format!("daemon.database: {e:#}"));
            PgTarget {
                url: String::new(),
                password: None,
                ca_file: None,
            }
        }
    };
    let journal = journal.unwrap_or_else(|| {
        let dir = std::env::var_os("STATE_DIRECTORY")
            .map(PathBuf::from)
            .unwrap_or_else(|| base.to_path_buf());
        // Named after the node and the database: two configs beside each
        // other keep their own.
        let name: String = target
            .url
            .split("://")
            .nth(1)
            .unwrap_or_default()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        dir.join(format!("ticketd-{node}-{name}-sent"))
    });
    (Location::Postgres(target), journal)
}

#[cfg(test)]
mod tests {
    use super::raw::RawLimits;
    use super::*;
    use serde::Deserialize;

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
