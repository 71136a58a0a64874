//! Reply templates: `templates/<lang>/<name>.hbs`, a `Subject:` line then the body, rendered in strict mode.

use crate::pack::Language;
use anyhow::{Context, Result, anyhow};
use handlebars::Handlebars;
use std::path::Path;

/// Templates the daemon itself uses; every language must have each of them.
pub const REQUIRED: &[&str] = &[
    "ack_new",
    "ack_followup",
    "staff_quarantine",
    "staff_send_failed",
    "staff_undeliverable",
];

pub struct Templates {
    hb: Handlebars<'static>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates").finish_non_exhaustive()
    }
}

impl Templates {
    /// Loads every `<lang>/*.hbs` under `dir`; fails naming the first file that
    /// is missing or does not compile.
    pub fn load(dir: &Path) -> Result<Templates> {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(true);
        hb.register_escape_fn(handlebars::no_escape);
        for lang in Language::ALL {
            let ldir = dir.join(lang.as_str());
            let entries = std::fs::read_dir(&ldir)
                .with_context(|| format!("cannot read template directory {}", ldir.display()))?;
            let mut names: Vec<String> = Vec::new();
            for e in entries {
                let path = e?.path();
                if path.extension().and_then(|e| e.to_str()) != Some("hbs") {
                    continue;
                }
                let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
                    continue;
                };
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let (subject, body) =
                    split_template(&text).with_context(|| format!("{}:1", path.display()))?;
                hb.register_template_string(&key(lang, name, "subject"), subject)
                    .map_err(|e| anyhow!("{}:1: {e}", path.display()))?;
                hb.register_template_string(&key(lang, name, "body"), body)
                    .map_err(|e| anyhow!("{}: {e}", path.display()))?;
                names.push(name.to_string());
            }
            for r in REQUIRED {
                if !names.iter().any(|n| n == r) {
                    return Err(anyhow!(
                        "{}: template missing",
                        ldir.join(format!("{r}.hbs")).display()
                    ));
                }
            }
        }
        Ok(Templates { hb })
    }

    pub fn has(&self, lang: Language, name: &str) -> bool {
        self.hb.has_template(&key(lang, name, "body"))
    }

    /// Renders template `name` in `lang`: (subject, body).
    pub fn render(
        &self,
        lang: Language,
        name: &str,
        data: &serde_json::Value,
    ) -> Result<(String, String)> {
        let subject = self
            .hb
            .render(&key(lang, name, "subject"), data)
            .with_context(|| format!("template {}/{name}.hbs subject", lang.as_str()))?;
        let body = self
            .hb
            .render(&key(lang, name, "body"), data)
            .with_context(|| format!("template {}/{name}.hbs", lang.as_str()))?;
        let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
        Ok((subject, body.trim_start_matches('\n').to_string()))
    }
}

fn key(lang: Language, name: &str, part: &str) -> String {
    format!("{}/{name}/{part}", lang.as_str())
}

fn split_template(text: &str) -> Result<(&str, &str)> {
    let text = text.trim_start_matches('\u{feff}');
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    let subject = first
        .strip_prefix("Subject:")
        .ok_or_else(|| anyhow!("the first line must be `Subject: ...`"))?;
    Ok((subject.trim(), rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> Templates {
        Templates::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("templates")).unwrap()
    }

    #[test]
    fn every_required_template_exists_in_every_language() {
        let t = shipped();
        for lang in Language::ALL {
            for name in REQUIRED {
                assert!(t.has(lang, name), "{}/{name}", lang.as_str());
            }
        }
    }

    #[test]
    fn strict_mode_rejects_a_missing_field_and_text_is_not_html_escaped() {
        let t = shipped();
        assert!(
            t.render(Language::En, "ack_new", &serde_json::json!({}))
                .is_err()
        );
        let data = crate::decide::sample_template_data();
        let (subject, body) = t.render(Language::En, "ack_new", &data).unwrap();
        assert!(subject.contains("[TKT#7]"), "{subject}");
        assert!(body.contains("Ann & Bob <ops>"), "no HTML escaping: {body}");
    }
}
