//! `ticketd replay`: the stored mail of a window run again through the decision with a changed pack, to see what the change would have done before it goes live.
//!
//! Every stored mail up to the window's end is read from the database
//! (which is only read) and given, in arrival order and each at its own
//! arrival instant, to two engines on two stores of their own in memory:
//! one with the config's pack, one with the changed pack. Each store starts
//! with the database's contracts and nothing else, and between two mails
//! fires the timers that came due, each at its due instant, so each mail
//! meets the tickets as its pack would have left them. Nothing is sent:
//! the stores' outboxes are dropped with them. For the mails of the window
//! (and mailbox), the two decisions are compared: outcome and ticket, the
//! rule IDs, severity and tier, the first-response target, the replies and
//! the notices they carry, the timers set and ended, RMA steps and routing.
//!
//! Staff actions taken from the shell are not mail and are not replayed;
//! staff mail is, with no DNS: a staff mail proven only by DKIM reads as
//! unproven under both packs alike.

use crate::clock::FixedClock;
use crate::config::{Config, MailboxConfig};
use crate::decide::Decision;
use crate::intake::{Engine, Fetched, mailbox_view};
use crate::model::{Event, TicketWrite};
use crate::pack::Pack;
use crate::policy::rfc3339;
use crate::store::{Store, StoredMessage};
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::BTreeMap;

/// Which stored mail is compared.
#[derive(Debug, Clone, Default)]
pub struct Window {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub mailbox: Option<String>,
}

/// What one decision did, as the comparison reads it (instants in the pack's zone).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Seen {
    pub outcome: String,
    /// `new`, `update` or `none`, and the ticket's number.
    pub ticket: String,
    pub rules: Vec<String>,
    pub severity: Option<u8>,
    pub tier: Option<String>,
    pub first_response_due: Option<String>,
    /// `TEMPLATE to ADDRESS,...`.
    pub replies: Vec<String>,
    /// The pack's sentences the replies carry: `ID (RULE)`.
    pub notices: Vec<String>,
    /// `KIND (RULE) due INSTANT` set, `KIND ended` ended.
    pub timers: Vec<String>,
    pub rma: Vec<String>,
    pub route: Option<String>,
    /// The rules behind the severity and the first-response target.
    #[serde(skip)]
    behind: BTreeMap<&'static str, Vec<String>>,
}

/// One field that differs, and the rules behind the difference.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub field: &'static str,
    pub before: serde_json::Value,
    pub after: serde_json::Value,
    pub rules: Vec<String>,
}

/// A stored mail whose decision would differ.
#[derive(Debug, Clone, Serialize)]
pub struct MailDiff {
    /// Its row in the database (`ticketd quarantine show` and the listings name rows).
    pub row: i64,
    pub mailbox: String,
    pub arrival: String,
    pub message_id: Option<String>,
    pub sender: Option<String>,
    pub changes: Vec<Change>,
}

/// What a replay found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub pack: String,
    /// Mails of the window compared.
    pub compared: usize,
    /// Stored mails of a mailbox no longer configured (not replayed).
    pub skipped: usize,
    pub differ: Vec<MailDiff>,
    /// For each rule (or pack table, `[severity]`), how many mails it changes.
    pub by_rule: BTreeMap<String, usize>,
}

impl Seen {
    fn of(d: &Decision, zone: chrono_tz::Tz) -> Seen {
        let (action, id) = match &d.ticket {
            TicketWrite::New { .. } => ("new", d.ticket_view.id),
            TicketWrite::Update { id, .. } => ("update", Some(*id)),
            TicketWrite::Attach { id } => ("update", Some(*id)),
            TicketWrite::None => ("none", None),
        };
        let p = d.policy.as_ref();
        let mut behind = BTreeMap::new();
        if let Some(p) = p {
            behind.insert("severity", vec!["[severity]".to_string()]);
            behind.insert(
                "first_response_due",
                p.sla_rule.iter().cloned().collect::<Vec<_>>(),
            );
        }
        let mut timers: Vec<String> = d
            .effects
            .timers
            .iter()
            .map(|t| {
                format!(
                    "{} ({}) due {}",
                    t.kind.as_str(),
                    t.rule,
                    rfc3339(zone, t.due)
                )
            })
            .collect();
        timers.extend(
            d.effects
                .cancel_timers
                .iter()
                .map(|t| format!("{} ended", t.kind.as_str())),
        );
        Seen {
            outcome: d.outcome.as_str().to_string(),
            ticket: match id {
                Some(id) => format!("{action} {id}"),
                None => action.to_string(),
            },
            rules: p.map(|p| p.rules.clone()).unwrap_or_default(),
            severity: p.map(|p| p.severity),
            tier: p.map(|p| p.tier.clone()),
            first_response_due: p
                .and_then(|p| p.first_response_due)
                .map(|t| rfc3339(zone, t)),
            replies: d
                .replies
                .iter()
                .map(|r| format!("{} to {}", r.template, r.to.join(",")))
                .collect(),
            notices: p
                .map(|p| {
                    p.notices
                        .iter()
                        .map(|n| format!("{} ({})", n.id, n.rule))
                        .collect()
                })
                .unwrap_or_default(),
            timers,
            rma: d
                .events
                .iter()
                .filter_map(|e| match e {
                    Event::Rma {
                        part, state, rule, ..
                    } => Some(format!(
                        "{} {state} ({rule})",
                        if part.is_empty() { "unit" } else { part }
                    )),
                    _ => None,
                })
                .collect(),
            route: p
                .and_then(|p| p.route.as_ref())
                .map(|r| format!("{} ({})", r.to, r.rule)),
            behind,
        }
    }
}

/// The rule IDs a list's entries name in parentheses (`... (IX-03) ...`).
fn cited(entries: &[String]) -> Vec<String> {
    entries
        .iter()
        .filter_map(|e| {
            let open = e.find('(')?;
            let close = e[open..].find(')')? + open;
            Some(e[open + 1..close].to_string())
        })
        .collect()
}

/// The fields of `a` and `b` that differ, each with the rules behind it.
fn compare(a: &Seen, b: &Seen) -> Vec<Change> {
    let mut out = Vec::new();
    let mut field =
        |name: &'static str, x: serde_json::Value, y: serde_json::Value, rules: Vec<String>| {
            if x != y {
                let mut rules = rules;
                rules.sort();
                rules.dedup();
                if rules.is_empty() {
                    rules.push(format!("[{name}]"));
                }
                out.push(Change {
                    field: name,
                    before: x,
                    after: y,
                    rules,
                });
            }
        };
    let both = |k: &str| -> Vec<String> {
        [a.behind.get(k), b.behind.get(k)]
            .into_iter()
            .flatten()
            .flatten()
            .cloned()
            .collect()
    };
    let set_diff = |x: &[String], y: &[String]| -> Vec<String> {
        x.iter()
            .filter(|e| !y.contains(e))
            .chain(y.iter().filter(|e| !x.contains(e)))
            .cloned()
            .collect()
    };
    let l = lists;
    field("outcome", json(&a.outcome), json(&b.outcome), vec![]);
    field("ticket", json(&a.ticket), json(&b.ticket), vec![]);
    let (x, y) = l(&a.rules, &b.rules);
    field("rules", x, y, set_diff(&a.rules, &b.rules));
    field(
        "severity",
        json(&a.severity),
        json(&b.severity),
        both("severity"),
    );
    field("tier", json(&a.tier), json(&b.tier), vec![]);
    field(
        "first_response_due",
        json(&a.first_response_due),
        json(&b.first_response_due),
        both("first_response_due"),
    );
    let (x, y) = l(&a.replies, &b.replies);
    field("replies", x, y, vec![]);
    let (x, y) = l(&a.notices, &b.notices);
    field("notices", x, y, cited(&set_diff(&a.notices, &b.notices)));
    let (x, y) = l(&a.timers, &b.timers);
    field("timers", x, y, cited(&set_diff(&a.timers, &b.timers)));
    let (x, y) = l(&a.rma, &b.rma);
    field("rma", x, y, cited(&set_diff(&a.rma, &b.rma)));
    let routes: Vec<String> = a.route.iter().chain(&b.route).cloned().collect();
    field("route", json(&a.route), json(&b.route), cited(&routes));
    out
}

/// Two lists as the comparison shows them: what only the first has, and
/// what only the second has (the whole lists when only their order differs;
/// two equal empty lists when they are equal).
fn lists(x: &[String], y: &[String]) -> (serde_json::Value, serde_json::Value) {
    let only = |p: &[String], q: &[String]| -> Vec<String> {
        p.iter().filter(|e| !q.contains(e)).cloned().collect()
    };
    let (gone, new) = (only(x, y), only(y, x));
    if x != y && gone.is_empty() && new.is_empty() {
        (json(&x), json(&y))
    } else {
        (json(&gone), json(&new))
    }
}

/// A field as JSON, for the comparison.
fn json<T: Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

/// An engine for a replay: `cfg` with `pack`, no DNS, no processing budget.
fn engine(cfg: &Config, pack: &Pack) -> Result<Engine> {
    let mut cfg = cfg.clone();
    cfg.pack = pack.clone();
    let mut e = Engine::from_config(&cfg)?;
    e.keys = std::sync::Arc::new(crate::dkim::Offline);
    e.limits.max_processing = std::time::Duration::from_secs(u32::MAX as u64);
    Ok(e)
}

/// A store in memory with `db`'s contracts.
fn copy_store(db: &Store) -> Result<Mutex<Store>> {
    let mut s = Store::in_memory()?;
    s.import_contracts(&db.all_contracts()?)?;
    Ok(Mutex::new(s))
}

/// Runs `m` on `store` as intake would have at its arrival, after the
/// timers due before it fired, each at its due instant: what was decided.
fn step(
    engine: &Engine,
    store: &Mutex<Store>,
    mb: &MailboxConfig,
    m: &StoredMessage,
) -> Result<Seen> {
    loop {
        let next = store.lock().next_timer_due()?;
        match next {
            Some(due) if due <= m.arrival => {
                let t = crate::scheduler::tick(engine, store, due)?;
                if t.fired + t.cancelled == 0 {
                    break;
                }
            }
            _ => break,
        }
    }
    let mut st = store.lock();
    let plan = engine.plan(&st, mailbox_view(mb), &m.raw, m.arrival, m.arrival)?;
    let seen = Seen::of(&plan.decision, engine.pack.zone);
    let f = Fetched {
        uidvalidity: m.uidvalidity,
        uid: m.uid,
        raw: m.raw.clone(),
        size: m.size.max(0) as u64,
        arrival: m.arrival,
    };
    engine.ingest(&mut st, mb, &f, &FixedClock::new(m.arrival))?;
    Ok(seen)
}

/// Replays the stored mail of `db` with `cfg`'s pack and with `pack`, and
/// compares the mails of `window`. `db` is only read.
pub fn replay(cfg: &Config, db: &Store, pack: &Pack, window: &Window) -> Result<Report> {
    let before = engine(cfg, &cfg.pack).context("the config's pack")?;
    let after = engine(cfg, pack).context("the changed pack")?;
    let stores = (copy_store(db)?, copy_store(db)?);
    let mut report = Report {
        pack: pack.name.clone(),
        compared: 0,
        skipped: 0,
        differ: vec![],
        by_rule: BTreeMap::new(),
    };
    for m in db
        .stored_mail(window.until)
        .context("reading the stored mail")?
    {
        let Some(mb) = cfg.mailboxes.iter().find(|b| b.name == m.mailbox) else {
            report.skipped += 1;
            continue;
        };
        let a = step(&before, &stores.0, mb, &m)?;
        let b = step(&after, &stores.1, mb, &m)?;
        let shown = window.since.is_none_or(|s| m.arrival >= s)
            && window.mailbox.as_deref().is_none_or(|x| x == m.mailbox);
        if !shown {
            continue;
        }
        report.compared += 1;
        let changes = compare(&a, &b);
        if changes.is_empty() {
            continue;
        }
        let mut rules: Vec<&String> = changes.iter().flat_map(|c| &c.rules).collect();
        rules.sort();
        rules.dedup();
        for r in rules {
            *report.by_rule.entry(r.clone()).or_default() += 1;
        }
        report.differ.push(MailDiff {
            row: m.row,
            mailbox: m.mailbox.clone(),
            arrival: rfc3339(cfg.pack.zone, m.arrival),
            message_id: m.message_id.clone(),
            sender: m.sender.clone(),
            changes,
        });
    }
    Ok(report)
}

impl Report {
    /// The report as `ticketd replay` prints it.
    pub fn text(&self) -> String {
        let mut out = format!(
            "{} stored mails replayed with pack {}: {} would differ{}\n",
            self.compared,
            self.pack,
            self.differ.len(),
            if self.skipped > 0 {
                format!(
                    " ({} of mailboxes no longer configured not replayed)",
                    self.skipped
                )
            } else {
                String::new()
            }
        );
        let show = |v: &serde_json::Value| match v {
            serde_json::Value::Null => "none".to_string(),
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(a) if a.is_empty() => "none".to_string(),
            serde_json::Value::Array(a) => a
                .iter()
                .map(|x| x.as_str().map_or_else(|| x.to_string(), String::from))
                .collect::<Vec<_>>()
                .join("; "),
            other => other.to_string(),
        };
        for d in &self.differ {
            out.push_str(&format!(
                "\nrow {} {} {} <{}> from {}\n",
                d.row,
                d.arrival,
                d.mailbox,
                d.message_id.as_deref().unwrap_or(""),
                d.sender.as_deref().unwrap_or("?")
            ));
            for c in &d.changes {
                out.push_str(&format!(
                    "  {} [{}]: {} -> {}\n",
                    c.field,
                    c.rules.join(", "),
                    show(&c.before),
                    show(&c.after)
                ));
            }
        }
        out.push_str("\nby rule:\n");
        if self.by_rule.is_empty() {
            out.push_str("  none\n");
        }
        for (r, n) in &self.by_rule {
            out.push_str(&format!("  {r}: {n} mail(s)\n"));
        }
        out.push_str("nothing was sent, and the database was only read\n");
        out
    }
}
