//! A pack's `[lifecycle]` table: when a ticket waiting on the customer is reminded and then closed (the rule that asked, e.g. NX-04), and for how long a closed ticket reopens on a customer's mail.

use super::checks::{rule_ok, span};
use crate::diag::Report;
use crate::model::Span;
use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLifecycle {
    /// The rule whose missing facts a waiting ticket lacks (QN-03, NX-04, AV-02).
    #[serde(default)]
    pub waiting_rule: Option<String>,
    /// A ticket waiting on the customer is reminded after this span...
    #[serde(default)]
    pub remind_after: Option<String>,
    /// ...and closed, with a notice, this long after the reminder.
    #[serde(default)]
    pub close_after: Option<String>,
    /// A customer's mail on a ticket closed less than this long ago reopens
    /// it; later, it opens a new ticket linked to the closed one. Without
    /// it, a closed ticket always reopens.
    #[serde(default)]
    pub reopen_within: Option<String>,
}

/// `[lifecycle]`, compiled.
#[derive(Debug, Clone, Default)]
pub struct Lifecycle {
    /// (rule, remind after, close after the reminder).
    pub waiting: Option<(String, Span, Span)>,
    pub reopen_within: Option<Span>,
}

pub(super) fn compile(r: &mut Report<'_>, raw: Spanned<RawLifecycle>) -> Lifecycle {
    let at = raw.span().start;
    let raw = raw.into_inner();
    let waiting = match (&raw.waiting_rule, &raw.remind_after, &raw.close_after) {
        (Some(rule), Some(remind), Some(close)) => {
            rule_ok(r, at, rule);
            Some((
                rule.clone(),
                span(r, at, "lifecycle.remind_after", remind),
                span(r, at, "lifecycle.close_after", close),
            ))
        }
        (None, None, None) => None,
        _ => {
            r.at(
                at,
                "lifecycle: waiting_rule, remind_after and close_after go together",
            );
            None
        }
    };
    Lifecycle {
        waiting,
        reopen_within: raw
            .reopen_within
            .as_deref()
            .map(|s| span(r, at, "lifecycle.reopen_within", s)),
    }
}
