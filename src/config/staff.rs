//! The staff as configured: the people a pack's rules name (`[staff.recipients]`), the members who work tickets by mail, and how their mail is proven theirs (reply-token key, trusted authserv-ids, DKIM), each problem at its line.

use super::checks::{secret, valid_address};
use super::connections::MailboxConfig;
use super::raw::OneOrMany;
use super::raw::RawStaff;
use crate::diag::Report;
use crate::model::{DkimSettings, Identity, StaffDirectory, StaffMember};
use crate::pack::Pack;
use std::path::PathBuf;
use std::time::Duration;
use toml::Spanned;

/// Reads `[staff.members]` and how staff mail is proven (`token_key_*`,
/// `authserv_id`, `dkim*`), reporting every problem at its line.
pub(super) fn staff_members(
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
        member(r, name, m, dir, mailboxes, identity, &routes);
    }
    proof_settings(r, raw, dir, resolve);
}

/// One `[staff.members.NAME]`: its addresses (each a valid address of no
/// other member and not one of ours), its queues (mailboxes, roles, the
/// pack's routes or `*`), added to `dir`.
fn member(
    r: &mut Report<'_>,
    name: &String,
    m: &Spanned<super::raw::RawMember>,
    dir: &mut StaffDirectory,
    mailboxes: &[MailboxConfig],
    identity: &Identity,
    routes: &[&str],
) {
    let raw_m = m.get_ref();
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '#') {
        r.spanned(
            m,
            format!(
                "staff.members.\"{name}\": a member's name is one word (it is what #assign takes)"
            ),
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

/// How staff mail is proven: the reply-token key, the trusted
/// authserv-ids, the DKIM look-up settings; and that members have a way.
fn proof_settings(
    r: &mut Report<'_>,
    raw: &RawStaff,
    dir: &mut StaffDirectory,
    resolve: &dyn Fn(&str) -> PathBuf,
) {
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
pub(super) fn staff_directory(
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
