//! Vendor policy packs: `config/vendors/<pack>.toml`, loaded and validated into typed values.

use crate::diag::{Problem, Problems, Report, parse_toml};
use crate::model::Language;
use crate::policy::{self, Policy};
use regex::Regex;
use serde::Deserialize;
use std::path::Path;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPack {
    pack: RawPackHead,
    #[serde(default)]
    extract: RawExtract,
    #[serde(default)]
    calendar: Option<Spanned<crate::calendar::CalendarSpec>>,
    #[serde(default)]
    warranty: Option<Spanned<crate::warranty::WarrantySpec>>,
    #[serde(default)]
    tiers: Option<Spanned<policy::RawTiers>>,
    #[serde(default)]
    severity: Option<Spanned<policy::RawSeverity>>,
    #[serde(default)]
    topic: Vec<Spanned<policy::RawTopic>>,
    #[serde(default)]
    facts: std::collections::BTreeMap<String, Spanned<Vec<String>>>,
    #[serde(default)]
    sla: Vec<Spanned<policy::RawSla>>,
    #[serde(default)]
    escalation: Vec<Spanned<policy::RawEscalation>>,
    #[serde(default)]
    require: Vec<Spanned<policy::RawRequire>>,
    #[serde(default)]
    deadline: Vec<Spanned<policy::RawDeadline>>,
    #[serde(default)]
    promise: Vec<Spanned<policy::RawPromise>>,
    #[serde(default)]
    quota: Vec<Spanned<policy::RawQuota>>,
    #[serde(default)]
    route: Vec<Spanned<policy::RawRoute>>,
    #[serde(default)]
    staff: Vec<Spanned<policy::RawStaff>>,
    #[serde(default)]
    mailbox: Vec<Spanned<policy::RawMailboxRule>>,
    #[serde(default)]
    versions: Option<Spanned<policy::RawVersions>>,
    #[serde(default)]
    notice: Vec<Spanned<policy::RawNotice>>,
    #[serde(default)]
    language: Option<Spanned<policy::RawLanguage>>,
    #[serde(default)]
    rma: Option<Spanned<policy::RawRma>>,
    #[serde(default)]
    lifecycle: Option<Spanned<policy::RawLifecycle>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPackHead {
    name: Spanned<String>,
    vendor: String,
    language: Spanned<String>,
    zone: Spanned<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExtract {
    #[serde(default)]
    ticket: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    serial: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    invoice: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    rma: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    tax_id: Option<Spanned<Vec<String>>>,
}

/// Patterns that find identifiers in a mail. A pattern with a capture group
/// yields its first group; otherwise the whole match.
#[derive(Debug, Clone)]
pub struct Patterns {
    pub ticket: Vec<Regex>,
    pub serial: Vec<Regex>,
    pub invoice: Vec<Regex>,
    pub rma: Vec<Regex>,
    pub tax_id: Vec<Regex>,
}

/// Defaults that fit most vendors; a pack overrides any list.
pub mod defaults {
    pub const TICKET: &[&str] = &[
        // "case" is also prose ("in case 2 disks fail"): it counts only with
        // a number sign or word ("case #12", "case no. 12", "case number 12").
        r"(?i)\b(?:ticket|tracking|incidencia|caso)\s*(?:number|no\.?|n[º°o]\.?|#|id)?\s*[:#]?\s*#?(\d{1,10})\b",
        r"(?i)\bcase\s*(?:number|no\.|n[º°o]\.?|#|id|:)\s*[:#]?\s*#?(\d{1,10})\b",
        r"(?:チケット|問い合わせ|お問合せ)(?:番号)?\s*[:：#＃]?\s*(\d{1,10})",
    ];
    pub const SERIAL: &[&str] = &[
        r"(?i)\b(?:s/n|serial(?:\s+(?:number|no\.?))?|n[úu]mero\s+de\s+serie|n\.?\s*de\s+serie)\s*[:#]?\s*([A-Z0-9][A-Z0-9-]{4,30})",
        r"(?:シリアル(?:番号|ナンバー)?|製造番号)\s*[:：]?\s*([A-Za-z0-9][A-Za-z0-9-]{4,30})",
    ];
    pub const INVOICE: &[&str] = &[
        r"(?i)\b(?:invoice|factura|order)\s*(?:number|no\.?|n[º°o]\.?|#|num\.?)?\s*[:#]?\s*([A-Z0-9][A-Z0-9/-]{3,30}\d)",
        r"(?:請求書|注文|納品書)(?:番号|No\.?)?\s*[:：]?\s*([A-Za-z0-9][A-Za-z0-9-]{3,30})",
    ];
    pub const RMA: &[&str] =
        &[r"(?i)\bRMA\s*(?:number|no\.?|code|c[óo]digo|#)?\s*[:#]?\s*([A-Z0-9][A-Z0-9-]{3,30}\d)"];
    pub const TAX_ID: &[&str] = &[
        r"(?i)\b(?:CIF|NIF|VAT(?:\s+(?:number|no\.?|id))?|tax\s+id|EIN)\s*[:#]?\s*([A-Z]{0,2}[A-Z0-9-]{8,14})",
        r"\b([ABCDEFGHJNPQRSUVW]-?\d{7}[0-9A-J])\b",
    ];
}

/// A vendor's pack, validated.
#[derive(Debug, Clone)]
pub struct Pack {
    pub name: String,
    pub vendor: String,
    pub language: Language,
    pub zone: chrono_tz::Tz,
    pub patterns: Patterns,
    pub policy: Policy,
}

impl Pack {
    /// Loads pack `name` from where `layout` found it: its file, or the copy
    /// built into the binary.
    pub fn from_source(name: &str, source: &crate::layout::Source) -> Result<Pack, Problems> {
        match source {
            crate::layout::Source::File(path) => Pack::load(path),
            crate::layout::Source::BuiltIn => {
                let origin = format!("{} vendors/{name}.toml", crate::layout::BUILT_IN);
                match crate::builtin::pack(name) {
                    Some(text) => Pack::from_str_at(Path::new(&origin), text),
                    None => Err(Problems(vec![Problem {
                        file: origin.into(),
                        line: 0,
                        message: format!("no pack `{name}` is built in"),
                    }])),
                }
            }
        }
    }

    pub fn load(path: &Path) -> Result<Pack, Problems> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Problems(vec![Problem {
                file: path.to_path_buf(),
                line: 0,
                message: format!("cannot read the pack: {e}"),
            }])
        })?;
        Self::from_str_at(path, &text)
    }

    pub fn from_str_at(path: &Path, text: &str) -> Result<Pack, Problems> {
        let mut r = Report::new(path, text);
        let Some(raw) = parse_toml::<RawPack>(&mut r) else {
            return Err(Problems(r.problems));
        };
        let language = Language::parse(raw.pack.language.get_ref()).unwrap_or_else(|| {
            r.spanned(
                &raw.pack.language,
                format!(
                    "language `{}` is not one of en, ja, es",
                    raw.pack.language.get_ref()
                ),
            );
            Language::En
        });
        let zone = raw
            .pack
            .zone
            .get_ref()
            .parse::<chrono_tz::Tz>()
            .unwrap_or_else(|_| {
                r.spanned(
                    &raw.pack.zone,
                    format!(
                        "zone `{}` is not an IANA time zone name such as America/Chicago",
                        raw.pack.zone.get_ref()
                    ),
                );
                chrono_tz::UTC
            });
        let e = &raw.extract;
        let patterns = Patterns {
            ticket: compile(&mut r, "ticket", e.ticket.as_ref(), defaults::TICKET),
            serial: compile(&mut r, "serial", e.serial.as_ref(), defaults::SERIAL),
            invoice: compile(&mut r, "invoice", e.invoice.as_ref(), defaults::INVOICE),
            rma: compile(&mut r, "rma", e.rma.as_ref(), defaults::RMA),
            tax_id: compile(&mut r, "tax_id", e.tax_id.as_ref(), defaults::TAX_ID),
        };
        let policy = Policy::compile(
            &mut r,
            policy::RawPolicy {
                calendar: raw.calendar,
                warranty: raw.warranty,
                tiers: raw.tiers,
                severity: raw.severity,
                topic: raw.topic,
                facts: raw.facts,
                sla: raw.sla,
                escalation: raw.escalation,
                require: raw.require,
                deadline: raw.deadline,
                promise: raw.promise,
                quota: raw.quota,
                route: raw.route,
                staff: raw.staff,
                mailbox: raw.mailbox,
                versions: raw.versions,
                notice: raw.notice,
                language: raw.language,
                rma: raw.rma,
                lifecycle: raw.lifecycle,
            },
            zone,
        );
        let expected = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        if !expected.is_empty() && raw.pack.name.get_ref() != expected {
            r.spanned(
                &raw.pack.name,
                format!(
                    "pack name `{}` differs from its file name `{expected}`",
                    raw.pack.name.get_ref()
                ),
            );
        }
        if !r.problems.is_empty() {
            return Err(Problems(r.problems));
        }
        Ok(Pack {
            name: raw.pack.name.into_inner(),
            vendor: raw.pack.vendor,
            language,
            zone,
            patterns,
            policy,
        })
    }

    /// A pack with defaults everywhere, for `explain` without a config.
    pub fn fallback() -> Pack {
        let c = |list: &[&str]| list.iter().filter_map(|p| Regex::new(p).ok()).collect();
        Pack {
            name: "default".into(),
            vendor: "Support".into(),
            language: Language::En,
            zone: chrono_tz::UTC,
            policy: Policy::none(chrono_tz::UTC),
            patterns: Patterns {
                ticket: c(defaults::TICKET),
                serial: c(defaults::SERIAL),
                invoice: c(defaults::INVOICE),
                rma: c(defaults::RMA),
                tax_id: c(defaults::TAX_ID),
            },
        }
    }
}

fn compile(
    r: &mut Report<'_>,
    what: &str,
    given: Option<&Spanned<Vec<String>>>,
    default: &[&str],
) -> Vec<Regex> {
    match given {
        None => default.iter().filter_map(|p| Regex::new(p).ok()).collect(),
        Some(list) => {
            let mut out = Vec::new();
            for p in list.get_ref() {
                match regex::RegexBuilder::new(p).size_limit(1 << 20).build() {
                    Ok(re) => out.push(re),
                    Err(e) => r.spanned(
                        list,
                        format!("extract.{what}: pattern `{p}` is not a valid regex: {e}"),
                    ),
                }
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_patterns_compile() {
        let p = Pack::fallback();
        assert_eq!(p.patterns.ticket.len(), defaults::TICKET.len());
        assert_eq!(p.patterns.serial.len(), defaults::SERIAL.len());
        assert_eq!(p.patterns.invoice.len(), defaults::INVOICE.len());
        assert_eq!(p.patterns.rma.len(), defaults::RMA.len());
        assert_eq!(p.patterns.tax_id.len(), defaults::TAX_ID.len());
    }

    #[test]
    fn broken_pack_names_file_line_and_reason() {
        let text = "[pack]\nname = \"x\"\nvendor = \"X\"\nlanguage = \"fr\"\nzone = \"Mars/Olympus\"\n[extract]\nserial = [\"(unclosed\"]\n";
        let e = Pack::from_str_at(Path::new("vendors/x.toml"), text).unwrap_err();
        let s = e.to_string();
        assert!(s.contains("vendors/x.toml:4: language `fr`"), "{s}");
        assert!(s.contains("vendors/x.toml:5: zone `Mars/Olympus`"), "{s}");
        assert!(s.contains("vendors/x.toml:7: extract.serial"), "{s}");
    }
}
