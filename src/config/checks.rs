//! Checks of single values the configuration shares: addresses, domains, folder names, loopback hosts, reply rates, and secrets read from files or systemd credentials.

use super::raw::RawRate;
use crate::diag::Report;
use crate::model::Rate;
pub use crate::secret::Secret;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// Checks a rate from the config, reporting at its line: burst from 1 to
/// `max_burst`, per_hour from 0 to `max_per_hour`; `fallback` when wrong.
pub(super) fn rate_within(
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
pub(super) fn rate(r: &mut Report<'_>, name: &str, raw: &Spanned<RawRate>) -> Rate {
    rate_within(r, name, raw, (1000, 10_000), Rate::DEFAULT_PER_RECIPIENT)
}

/// Reads a secret (`key`: password, client_secret, refresh_token) from
/// `KEY_file` or from systemd's `$CREDENTIALS_DIRECTORY` (`KEY_credential`).
pub(super) fn secret(
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

pub(super) fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
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

pub(super) fn valid_domain(d: &str) -> bool {
    !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

pub(super) fn valid_folder(f: &str) -> bool {
    !f.is_empty() && !f.chars().any(|c| c.is_control() || "\"\\*%".contains(c))
}
