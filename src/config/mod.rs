//! Configuration: the raw TOML shape, then validation into typed values with file and line for every problem. The core reads what it builds as `model` values (identity, limits, mailboxes, the staff directory); the shell reads the connections.

mod checks;
mod connections;
mod oauth2;
mod raw;
mod staff;

pub use crate::model::{
    DkimSettings, Identity, Limits, Mailboxes, Rate, StaffDirectory, StaffMember, addresses_of,
};
pub use checks::Secret;
pub(crate) use checks::valid_address;
pub use connections::{After, Endpoint, Login, MailboxConfig, SmtpConfig, Tls};
pub use oauth2::{Grant, Mechanism, OAuth2, Source, TokenRequest, TokenUrl};

use crate::diag::{Problem, Problems, Report, parse_toml};
use crate::layout::SearchPath;
use crate::model::Role;
use crate::pack::Pack;
use checks::{rate, rate_within, valid_domain, valid_folder};
use connections::{LoginFields, endpoint, login};
use raw::RawConfig;
use staff::{staff_directory, staff_members};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    /// The addresses of the recipients the pack names (`[staff] recipients`).
    pub staff: StaffDirectory,
    pub database: PathBuf,
    pub templates: PathBuf,
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
        let templates = search.templates_dir();
        if !templates.is_dir() {
            let msg = format!(
                "templates: {} is not a directory",
                search.templates_described()
            );
            match &raw.daemon.templates {
                Some(t) => r.spanned(t, msg),
                None => r.at(0, msg),
            }
        }
        let pack_path = search.pack_file(raw.daemon.pack.get_ref());
        let mut pack_problems = Vec::new();
        let pack = if !pack_path.is_file() {
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
        } else {
            match Pack::load(&pack_path) {
                Ok(p) => Some(p),
                Err(ps) => {
                    pack_problems = ps.0;
                    None
                }
            }
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
