//! `ticketd explain`: what the daemon would do with a mail, and why, without touching a server or the database.

use crate::config::{Config, Identity, Limits};
use crate::contracts::ContractBook;
use crate::decide::MailboxView;
use crate::intake::{Engine, Plan, mailbox_view};
use crate::layout::Source;
use crate::model::{HookEvent, HookTicket, Outcome, Role};
use crate::outgoing::Renderer;
use crate::pack::Pack;
use crate::store::Store;
use crate::templates::Templates;
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub config: Option<PathBuf>,
    pub at: Option<DateTime<Utc>>,
    pub mailbox: Option<String>,
    pub pack: Option<String>,
    pub contracts: Option<PathBuf>,
    /// The shipped templates and packs (`templates/`, `vendors/`) to use
    /// without a config; default [`crate::layout::data_dir`].
    pub data_dir: Option<PathBuf>,
}

fn fallback_identity() -> Identity {
    Identity {
        from_name: "Support".into(),
        message_id_domain: "tickets.example.invalid".into(),
        own_addresses: vec!["support@example.invalid".into()],
        staff: vec!["staff@example.invalid".into()],
    }
}

/// The engine `explain` uses without a config: the fallback pack and identity
/// and the templates in `templates`. Tests that run many mails in-process use it too.
pub fn default_engine(templates: &Path) -> Result<Engine> {
    Ok(Engine {
        keys: std::sync::Arc::new(crate::dkim::Offline),
        identity: fallback_identity(),
        pack: Pack::fallback(),
        ticket_prefix: "TKT".to_string(),
        renderer: std::sync::Arc::new(Renderer {
            identity: fallback_identity(),
            templates: Templates::load(templates)?,
            ticket_prefix: "TKT".to_string(),
            token_key: None,
            language: Pack::fallback().language,
            vendor: Pack::fallback().vendor,
        }),
        limits: Limits::default(),
        contracts: None,
        staff: Default::default(),
        mailboxes: Default::default(),
    })
}

/// The mailbox `explain` assumes without a config: `support@` in the support role.
pub fn default_mailbox(engine: &Engine) -> MailboxView<'_> {
    MailboxView {
        name: "support",
        role: Role::Support,
        address: engine
            .identity
            .own_addresses
            .first()
            .map_or("support@example.invalid", String::as_str),
        accept_lists: false,
    }
}

/// `explain --body`: a bare plain-text body (no header), read for its new text only.
pub fn explain_body(body: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(body).replace("\r\n", "\n");
    let reply_text = crate::reply_text::extract(&text);
    json!({
        "reply_text": reply_text,
        "body_bytes": body.len(),
        "quoted_or_signature_bytes": text.trim().len().saturating_sub(reply_text.len()),
    })
}

#[derive(Debug, Serialize)]
struct ReplyOut {
    to: Vec<String>,
    subject: String,
    language: String,
    template: String,
    body: String,
}

/// Explains `raw` as if it arrived at `opts.at` (default `now`).
pub fn explain(raw: &[u8], opts: &Options, now: DateTime<Utc>) -> Result<serde_json::Value> {
    let config = match &opts.config {
        Some(p) => Some(Config::load(p).map_err(|e| anyhow::anyhow!("{e}"))?),
        None => None,
    };
    let search = match &config {
        Some(c) => c.search.clone(),
        None => {
            let data = opts
                .data_dir
                .clone()
                .unwrap_or_else(crate::layout::data_dir);
            crate::layout::SearchPath::new(None, None, None, &data)
        }
    };
    let (identity, mut pack, prefix, templates, limits) = match &config {
        Some(c) => (
            c.identity.clone(),
            c.pack.clone(),
            c.ticket_prefix.clone(),
            Some(c.templates.clone()),
            c.limits.clone(),
        ),
        None => (
            fallback_identity(),
            Pack::fallback(),
            "TKT".to_string(),
            search.templates_source(),
            Limits::default(),
        ),
    };
    let templates = templates.ok_or_else(|| {
        anyhow::anyhow!(
            "templates: {} is not a directory",
            search.templates_described()
        )
    })?;
    let mut pack_source = match &config {
        Some(c) => c.pack_source.clone(),
        None => Source::BuiltIn,
    };
    if let Some(name) = &opts.pack {
        // A file, or a pack name looked up where the config's packs are.
        pack_source = if Path::new(name).extension().is_some() {
            Source::File(PathBuf::from(name))
        } else {
            search.pack_source(name).ok_or_else(|| {
                anyhow::anyhow!(
                    "pack `{name}`: no file {name}.toml in {}",
                    search.packs_described()
                )
            })?
        };
        let stem = Path::new(name)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or(name);
        pack = Pack::from_source(stem, &pack_source).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let contracts = match &opts.contracts {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let rows = crate::contracts::parse_csv(&text, &path.display().to_string())
                .map_err(|e| anyhow::anyhow!("{}", e.join("\n")))?;
            Some(std::sync::Arc::new(ContractBook::new(rows)))
        }
        None => None,
    };
    let renderer = std::sync::Arc::new(Renderer {
        identity: identity.clone(),
        templates: Templates::from_source(&templates)?,
        ticket_prefix: prefix.clone(),
        token_key: config.as_ref().and_then(|c| c.staff.token_key.clone()),
        language: pack.language,
        vendor: pack.vendor.clone(),
    });
    let engine = Engine {
        keys: std::sync::Arc::new(crate::dkim::Offline),
        identity,
        pack,
        renderer,
        ticket_prefix: prefix,
        limits,
        contracts,
        staff: config.as_ref().map(|c| c.staff.clone()).unwrap_or_default(),
        mailboxes: config
            .as_ref()
            .map(|c| crate::config::Mailboxes::of(&c.mailboxes))
            .unwrap_or_default(),
    };
    let store = match &config {
        Some(c) if c.database.exists() => {
            let s = Store::open_read_only_at(&c.database)?;
            s.require_current()?;
            s
        }
        _ => Store::in_memory()?,
    };
    let fallback_address = engine
        .identity
        .own_addresses
        .first()
        .cloned()
        .unwrap_or_else(|| "support@example.invalid".into());
    let wanted = opts.mailbox.as_deref().unwrap_or("support");
    let from_config = config.as_ref().and_then(|c| c.mailbox(wanted));
    let view = match from_config {
        Some(m) => mailbox_view(m),
        None => MailboxView {
            name: wanted,
            role: Role::parse(wanted).unwrap_or(Role::Support),
            address: &fallback_address,
            accept_lists: false,
        },
    };
    let arrival = opts.at.unwrap_or(now);
    let oversize = raw.len() as u64 > engine.limits.max_message_bytes;
    let mut plan = engine
        .plan(&store, view, raw, arrival, arrival)
        .context("planning")?;
    let ticket_id = plan.decision.ticket_view.id;
    let rendered = engine.render(&mut plan, ticket_id, Some(raw), arrival)?;
    let events = engine.with_rma_codes(&plan.decision.events, ticket_id, arrival);
    let mut v = to_json(
        &plan,
        &rendered,
        view,
        engine.pack.zone,
        arrival,
        oversize,
        &events,
    );
    v["sources"] = json!({
        "pack": pack_source.to_string(),
        "templates": templates.to_string(),
    });
    let severity = plan.decision.policy.as_ref().map(|p| p.severity);
    let quarantined = matches!(plan.decision.outcome, Outcome::Quarantined | Outcome::Spam);
    let hooks = config
        .as_ref()
        .map(|c| c.webhooks.as_slice())
        .unwrap_or_default();
    let on = HookTicket {
        mailbox: view.name,
        severity,
    };
    v["webhooks"] = webhooks_view(hooks, &events, quarantined, &on, &engine.pack.name);
    Ok(v)
}

/// The webhooks the mail's events would queue a delivery for.
fn webhooks_view(
    hooks: &[crate::config::Webhook],
    events: &[crate::model::Event],
    quarantined: bool,
    on: &HookTicket<'_>,
    pack: &str,
) -> serde_json::Value {
    let mut fired: Vec<HookEvent> = events
        .iter()
        .filter_map(|e| HookEvent::of(e).map(|(ev, _)| ev))
        .collect();
    if quarantined {
        fired.push(HookEvent::MailQuarantined);
    }
    let mut out = Vec::new();
    for w in hooks {
        for ev in &fired {
            let on = match ev {
                // Mail set aside has no severity yet.
                HookEvent::MailQuarantined => HookTicket {
                    severity: None,
                    ..on.clone()
                },
                _ => on.clone(),
            };
            if w.sub.wants(*ev, &on, pack) {
                out.push(json!({
                    "webhook": w.sub.name,
                    "kind": w.sub.kind,
                    "event": ev.as_str(),
                }));
            }
        }
    }
    serde_json::Value::Array(out)
}

fn to_json(
    plan: &Plan,
    rendered: &[crate::outgoing::Rendered],
    view: MailboxView<'_>,
    zone: chrono_tz::Tz,
    arrival: DateTime<Utc>,
    oversize: bool,
    events: &[crate::model::Event],
) -> serde_json::Value {
    let d = &plan.decision;
    let replies: Vec<ReplyOut> = rendered
        .iter()
        .map(|r| ReplyOut {
            to: r.to.clone(),
            subject: r.subject.clone(),
            language: r.language.as_str().into(),
            template: r.template.into(),
            body: r.body.clone(),
        })
        .collect();
    let mut warnings = plan.inbound.warnings.clone();
    if oversize {
        warnings.push("over the size limit: the daemon would quarantine it".into());
    }
    let relay = rendered
        .iter()
        .find(|r| r.template == "staff_reply")
        .map(|r| {
            json!({
                "to": r.to,
                "subject": r.subject,
                "body": r.body,
                "attachments": plan.inbound.attachments.iter().filter_map(|a| a.name.clone()).collect::<Vec<_>>(),
            })
        });
    json!({
        "class": d.class.as_str(),
        "sender": d.sender.as_str(),
        "proof": d.proof,
        "authority": plan.evidence,
        "commands": d.commands,
        "relay": relay,
        "would_reply": d.would_reply,
        "outcome": d.outcome.as_str(),
        "reasons": d.reasons,
        "bounce": plan.classification.bounce,
        "ticket": d.ticket_view,
        "extracted": plan.extracted,
        "replies": replies,
        "mailbox": {"name": view.name, "role": view.role.as_str()},
        "arrival": crate::policy::rfc3339(zone, arrival),
        "subject": plan.inbound.subject,
        "reply_text": plan.inbound.reply_text,
        "ticket_subject": d.subject,
        "language": d.language.as_str(),
        "language_reason": d.language_reason,
        "from": plan.inbound.from,
        "message_id": plan.inbound.message_id,
        "attachments": plan.inbound.attachments,
        "warnings": warnings,
        "policy": d.policy.as_ref().map(|p| p.view()),
        "timers": d.effects.timers.iter().map(|t| json!({
            "kind": t.kind,
            "at": crate::policy::rfc3339(zone, t.due),
            "rule": t.rule,
            "to": t.to,
        })).collect::<Vec<_>>(),
        "rma": rma_view(events, zone),
    })
}

/// The RMA the mail would ask for, or be issued with its code, or null.
fn rma_view(events: &[crate::model::Event], zone: chrono_tz::Tz) -> serde_json::Value {
    events
        .iter()
        .find_map(|e| match e {
            crate::model::Event::Rma {
                part,
                state,
                code,
                expires_at,
                rule,
                ..
            } => Some(json!({
                "part": part,
                "state": state,
                "code": code,
                "rule": rule,
                "expires": expires_at.map(|t| crate::policy::rfc3339(zone, t)),
            })),
            _ => None,
        })
        .unwrap_or(serde_json::Value::Null)
}

/// The same as text, for people.
pub fn to_text(v: &serde_json::Value) -> String {
    let mut out = String::new();
    let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
    out.push_str(&format!("class:       {}\n", s("class")));
    out.push_str(&format!("outcome:     {}\n", s("outcome")));
    out.push_str(&format!(
        "ticket:      {} {}\n",
        v["ticket"]["action"].as_str().unwrap_or(""),
        v["ticket"]["id"]
            .as_i64()
            .map(|i| format!("#{i}"))
            .unwrap_or_default()
    ));
    out.push_str(&format!("would reply: {}\n", v["would_reply"]));
    out.push_str(&format!("language:    {}\n", s("language")));
    if let Some(t) = v["reply_text"].as_str() {
        out.push_str("reply text:\n");
        for l in t.lines() {
            out.push_str(&format!("  | {l}\n"));
        }
    }
    if let Some(rs) = v["reasons"].as_array() {
        out.push_str("reasons:\n");
        for r in rs {
            out.push_str(&format!("  - {}\n", r.as_str().unwrap_or("")));
        }
    }
    let p = &v["policy"];
    if p.is_object() {
        let ps = |k: &str| p[k].as_str().unwrap_or("-").to_string();
        let list = |k: &str| {
            p[k].as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default()
        };
        out.push_str(&format!(
            "policy:      pack {}, tier {}, severity {}\n",
            ps("pack"),
            ps("tier"),
            p["severity"]
        ));
        out.push_str(&format!("  rules:     {}\n", list("rules")));
        out.push_str(&format!(
            "  open:      {}; clock starts {}; first response due {}\n",
            p["business_open"],
            ps("clock_starts_at"),
            ps("first_response_due")
        ));
        out.push_str(&format!(
            "  warranty:  {} {}\n",
            p["warranty"]["status"].as_str().unwrap_or("-"),
            p["warranty"]["until"].as_str().unwrap_or("")
        ));
        if !list("missing").is_empty() {
            out.push_str(&format!("  missing:   {}\n", list("missing")));
        }
        for e in p["escalations"].as_array().into_iter().flatten() {
            out.push_str(&format!(
                "  escalate:  {} to {}\n",
                e["at"].as_str().unwrap_or(""),
                e["to"].as_str().unwrap_or("")
            ));
        }
    }
    out.push_str("extracted:\n");
    for k in ["ticket_ids", "serials", "invoices", "rma_codes", "tax_ids"] {
        let list: Vec<&str> = v["extracted"][k]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
            .unwrap_or_default();
        if !list.is_empty() {
            out.push_str(&format!("  {k}: {}\n", list.join(", ")));
        }
    }
    if let Some(rs) = v["replies"].as_array() {
        for r in rs {
            out.push_str(&format!(
                "\n--- {} ({}) to {}\nSubject: {}\n\n{}\n",
                r["template"].as_str().unwrap_or(""),
                r["language"].as_str().unwrap_or(""),
                r["to"]
                    .as_array()
                    .map(|a| a
                        .iter()
                        .filter_map(|x| x.as_str())
                        .collect::<Vec<_>>()
                        .join(", "))
                    .unwrap_or_default(),
                r["subject"].as_str().unwrap_or(""),
                r["body"].as_str().unwrap_or("")
            ));
        }
    }
    out
}
