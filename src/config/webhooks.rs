//! `[[webhook]]` entries: where each is sent (https, or plain http to loopback), the events and filters it wants, its signing secret or PagerDuty routing key from a file or credential, its timeout and lifetime; every problem named at its line.

use super::checks::{Secret, is_loopback, secret};
use super::oauth2::TokenUrl;
use super::raw::RawWebhook;
use crate::diag::Report;
use crate::model::{HookEvent, HookKind, Subscription};
use std::path::PathBuf;
use std::time::Duration;
use toml::Spanned;

/// PagerDuty's Events API v2, the preset's URL unless one is given.
pub const PAGERDUTY_EVENTS: &str = "https://events.pagerduty.com/v2/enqueue";

/// One webhook, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    /// Its name, kind, events and filters, as the store queues them.
    pub sub: Subscription,
    pub url: TokenUrl,
    /// The Standard Webhooks signing secret, `whsec_` and the key in base64
    /// (checked).
    pub signing_key: Option<Secret>,
    /// PagerDuty's integration key, added to each body when it is sent.
    pub routing_key: Option<Secret>,
    pub ca_file: Option<PathBuf>,
    /// One attempt, connect to answer.
    pub timeout: Duration,
    /// How long a delivery is retried before it is recorded failed.
    pub lifetime: Duration,
}

fn kind_of(r: &mut Report<'_>, w: &RawWebhook) -> HookKind {
    let Some(k) = &w.kind else {
        return HookKind::Standard;
    };
    HookKind::parse(k.get_ref()).unwrap_or_else(|| {
        r.spanned(
            k,
            format!(
                "webhook {}: kind `{}` is not standard, pagerduty, slack or teams",
                w.name.get_ref(),
                k.get_ref()
            ),
        );
        HookKind::Standard
    })
}

fn events_of(r: &mut Report<'_>, w: &RawWebhook, kind: HookKind) -> Vec<HookEvent> {
    let Some(list) = &w.events else {
        return match kind {
            // A page when a ticket opens, resolved when it closes.
            HookKind::Pagerduty => vec![HookEvent::TicketCreated, HookEvent::TicketClosed],
            _ => {
                r.spanned(
                    &w.name,
                    format!(
                        "webhook {}: set events, some of: {}",
                        w.name.get_ref(),
                        names()
                    ),
                );
                Vec::new()
            }
        };
    };
    let mut out = Vec::new();
    for e in list.get_ref() {
        match HookEvent::parse(e.get_ref()) {
            Some(ev) if !out.contains(&ev) => out.push(ev),
            Some(_) => {}
            None => r.spanned(
                e,
                format!(
                    "webhook {}: unknown event `{}` (known: {})",
                    w.name.get_ref(),
                    e.get_ref(),
                    names()
                ),
            ),
        }
    }
    if out.is_empty() && list.get_ref().is_empty() {
        r.spanned(
            list,
            format!("webhook {}: events is empty", w.name.get_ref()),
        );
    }
    out
}

fn names() -> String {
    HookEvent::ALL.map(|e| e.as_str()).join(", ")
}

/// The URL: https anywhere, plain http only to a loopback address.
fn url_of(
    r: &mut Report<'_>,
    w: &RawWebhook,
    kind: HookKind,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> Option<TokenUrl> {
    let name = w.name.get_ref();
    let from_file = secret(
        r,
        "url",
        w.url_file.as_ref(),
        w.url_credential.as_ref(),
        resolve,
    );
    let (text, at) = match (&w.url, &from_file) {
        (Some(u), None) => (u.get_ref().clone(), u),
        (None, Some(s)) => (s.0.trim().to_string(), &w.name),
        (None, None) if kind == HookKind::Pagerduty => (PAGERDUTY_EVENTS.to_string(), &w.name),
        (None, None) => {
            r.spanned(
                &w.name,
                format!("webhook {name}: set url (or url_file or url_credential)"),
            );
            return None;
        }
        (Some(u), Some(_)) => {
            r.spanned(
                u,
                format!("webhook {name}: set url or url_file/url_credential, not both"),
            );
            return None;
        }
    };
    match TokenUrl::parse(&text) {
        Ok(u) if u.https || is_loopback(&u.host) => Some(u),
        Ok(u) => {
            // A URL from a file or credential is a secret: its host only.
            let shown = match from_file {
                Some(_) => u.origin(),
                None => u.to_string(),
            };
            r.spanned(
                at,
                format!(
                    "webhook {name}: url {shown} must be https (plain http only to a loopback address)"
                ),
            );
            None
        }
        Err(e) => {
            r.spanned(at, format!("webhook {name}: url {e}"));
            None
        }
    }
}

fn keys_of(
    r: &mut Report<'_>,
    w: &RawWebhook,
    kind: HookKind,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> (Option<Secret>, Option<Secret>) {
    let name = w.name.get_ref();
    let signing = secret(
        r,
        "secret",
        w.secret_file.as_ref(),
        w.secret_credential.as_ref(),
        resolve,
    )
    .and_then(|s| match crate::hooks::signing_key(s.0.trim()) {
        Ok(_) => Some(Secret(s.0.trim().to_string())),
        Err(e) => {
            let at = w.secret_file.as_ref().or(w.secret_credential.as_ref());
            if let Some(at) = at {
                r.spanned(at, format!("webhook {name}: secret: {e}"));
            }
            None
        }
    });
    let no_secret = w.secret_file.is_none() && w.secret_credential.is_none();
    if kind == HookKind::Standard && no_secret {
        r.spanned(
            &w.name,
            format!("webhook {name}: set secret_file or secret_credential (whsec_ and a base64 key): its deliveries are signed"),
        );
    }
    let routing = secret(
        r,
        "routing_key",
        w.routing_key_file.as_ref(),
        w.routing_key_credential.as_ref(),
        resolve,
    );
    let no_routing = w.routing_key_file.is_none() && w.routing_key_credential.is_none();
    if kind == HookKind::Pagerduty && no_routing {
        r.spanned(
            &w.name,
            format!("webhook {name}: set routing_key_file or routing_key_credential (the PagerDuty integration key)"),
        );
    }
    (signing, routing)
}

/// Checks every `[[webhook]]`; `mailboxes` are the names a filter may use.
pub(super) fn webhooks(
    r: &mut Report<'_>,
    raw: &[Spanned<RawWebhook>],
    mailboxes: &[String],
    resolve: &dyn Fn(&str) -> PathBuf,
) -> Vec<Webhook> {
    let mut out: Vec<Webhook> = Vec::new();
    for w in raw {
        let w = w.get_ref();
        let name = w.name.get_ref();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            r.spanned(
                &w.name,
                format!("webhook name `{name}`: use letters, digits, - _ ."),
            );
        }
        if out.iter().any(|o| &o.sub.name == name) {
            r.spanned(&w.name, format!("a webhook named {name} is defined twice"));
        }
        let kind = kind_of(r, w);
        let events = events_of(r, w, kind);
        let url = url_of(r, w, kind, resolve);
        let (signing_key, routing_key) = keys_of(r, w, kind, resolve);
        if let Some(m) = &w.mailbox
            && !mailboxes.contains(m.get_ref())
        {
            r.spanned(
                m,
                format!("webhook {name}: no mailbox named {}", m.get_ref()),
            );
        }
        let max_severity = w
            .severity
            .as_ref()
            .and_then(|s| match u8::try_from(*s.get_ref()) {
                Ok(v @ 1..=9) => Some(v),
                _ => {
                    r.spanned(
                        s,
                        format!(
                            "webhook {name}: severity is a number from 1 to 9 (1 the most severe)"
                        ),
                    );
                    None
                }
            });
        let Some(url) = url else { continue };
        out.push(Webhook {
            sub: Subscription {
                name: name.clone(),
                kind,
                events,
                mailbox: w.mailbox.as_ref().map(|m| m.get_ref().clone()),
                pack: w.pack.as_ref().map(|p| p.get_ref().clone()),
                max_severity,
                include_text: w.include_text.unwrap_or(false),
            },
            url,
            signing_key,
            routing_key,
            ca_file: w.ca_file.as_ref().map(|f| resolve(f.get_ref())),
            timeout: Duration::from_secs(w.timeout_secs.unwrap_or(10).clamp(1, 300)),
            lifetime: Duration::from_secs(3600 * w.lifetime_hours.unwrap_or(24).clamp(1, 24 * 14)),
        });
    }
    out
}
