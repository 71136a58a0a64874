//! Reply templates: `templates/<lang>/<name>.hbs`, a `Subject:` line then the body, checked at load, compiled at first use and rendered in strict mode.

use crate::layout::Source;
use crate::model::Language;
use anyhow::{Context, Result, anyhow};
use handlebars::{Handlebars, RenderContext, Renderable, StringOutput, Template};
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Templates the daemon itself uses; every language must have each of them.
pub const REQUIRED: &[&str] = &[
    "ack_new",
    "ack_followup",
    "staff_quarantine",
    "staff_send_failed",
    "staff_policy",
    "staff_undeliverable",
    "staff_acks_capped",
    "staff_escalation",
    "staff_sla",
    "staff_rma_due",
    "staff_reply",
    "staff_ticket",
    "staff_confirm",
    "staff_command_error",
    "staff_unverified",
    "status_reply",
    "rma_issued",
    "rma_notice",
    "customer_reminder",
    "auto_closed",
    "merged",
];

/// The templates: each is checked when loaded and compiled when first
/// rendered, so that a daemon holds only those it has used (a language's
/// staff notices may never be sent). The registry holds the partials and
/// the pack's notice texts, which replies include.
pub struct Templates {
    hb: Handlebars<'static>,
    texts: HashMap<String, Text>,
}

/// One template's text (subject or body) and, once rendered, its compiled form.
struct Text {
    source: Cow<'static, str>,
    compiled: OnceLock<Template>,
}

/// Fails naming the first required template `names` lacks (`origin` says where it was looked for).
fn require(names: &[String], origin: impl Fn(&str) -> String) -> Result<()> {
    match REQUIRED.iter().find(|r| !names.iter().any(|n| n == *r)) {
        Some(r) => Err(anyhow!("{}: template missing", origin(r))),
        None => Ok(()),
    }
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates").finish_non_exhaustive()
    }
}

impl Templates {
    /// Loads the templates from where `layout` found them: a directory, or
    /// the copies built into the binary.
    pub fn from_source(source: &Source) -> Result<Templates> {
        match source {
            Source::File(dir) => Templates::load(dir),
            Source::BuiltIn => Templates::built_in(),
        }
    }

    /// Loads every `<lang>/*.hbs` under `dir`; fails naming the first file that
    /// is missing or does not compile.
    pub fn load(dir: &Path) -> Result<Templates> {
        let mut t = Templates::empty();
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
                if t.add(lang, name, Cow::Owned(text), &path.display().to_string())? {
                    names.push(name.to_string());
                }
            }
            require(&names, |r| {
                ldir.join(format!("{r}.hbs")).display().to_string()
            })?;
        }
        Ok(t)
    }

    /// The templates built into the binary (`templates/` of the source tree).
    pub fn built_in() -> Result<Templates> {
        let mut t = Templates::empty();
        for lang in Language::ALL {
            let l = lang.as_str();
            let origin =
                |name: &str| format!("{} templates/{l}/{name}.hbs", crate::layout::BUILT_IN);
            let mut names: Vec<String> = Vec::new();
            for (name, text) in crate::builtin::templates(l) {
                if t.add(lang, name, Cow::Borrowed(text), &origin(name))? {
                    names.push(name.to_string());
                }
            }
            require(&names, origin)?;
        }
        Ok(t)
    }

    fn empty() -> Templates {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(true);
        hb.register_escape_fn(handlebars::no_escape);
        Templates {
            hb,
            texts: HashMap::new(),
        }
    }

    /// Checks template (or, named `_NAME`, registers partial) `name` of
    /// `lang` from `origin`; true for a template.
    fn add(
        &mut self,
        lang: Language,
        name: &str,
        text: Cow<'static, str>,
        origin: &str,
    ) -> Result<bool> {
        if let Some(partial) = name.strip_prefix('_') {
            // `_policy.hbs` is the partial `{{> en_policy}}`.
            self.hb
                .register_partial(&format!("{}_{partial}", lang.as_str()), text)
                .map_err(|e| anyhow!("{origin}: {e}"))?;
            return Ok(false);
        }
        let (subject, body) = match text {
            Cow::Borrowed(t) => {
                let (s, b) = split_template(t).with_context(|| format!("{origin}:1"))?;
                (Cow::Borrowed(s), Cow::Borrowed(b))
            }
            Cow::Owned(t) => {
                let (s, b) = split_template(&t).with_context(|| format!("{origin}:1"))?;
                (Cow::Owned(s.to_string()), Cow::Owned(b.to_string()))
            }
        };
        for (part, source, at) in [("subject", subject, ":1"), ("body", body, "")] {
            let k = key(lang, name, part);
            // Compiled here only to report a fault at load; kept as text.
            Template::compile_with_name(&*source, k.clone())
                .map_err(|e| anyhow!("{origin}{at}: {e}"))?;
            self.texts.insert(
                k,
                Text {
                    source,
                    compiled: OnceLock::new(),
                },
            );
        }
        Ok(true)
    }

    pub fn has(&self, lang: Language, name: &str) -> bool {
        self.texts.contains_key(&key(lang, name, "body"))
    }

    /// Renders the template text named `k`, compiling it at its first use.
    fn render_text(&self, k: &str, ctx: &handlebars::Context) -> Result<String> {
        let text = self
            .texts
            .get(k)
            .ok_or_else(|| anyhow!("template {k} not found"))?;
        let template = match text.compiled.get() {
            Some(t) => t,
            None => {
                let t = Template::compile_with_name(&*text.source, k.to_string())?;
                text.compiled.get_or_init(|| t)
            }
        };
        let mut rc = RenderContext::new(template.name.as_ref());
        let mut out = StringOutput::new();
        template.render(&self.hb, ctx, &mut rc, &mut out)?;
        Ok(out.into_string()?)
    }

    /// Compiles a pack's notice texts once, so that rendering a reply does not
    /// parse them again. Texts that do not compile are left to `render`, which
    /// reports them per mail.
    pub fn compile_notices<'a>(&mut self, texts: impl IntoIterator<Item = &'a str>) {
        for t in texts {
            let name = notice_key(t);
            if !self.hb.has_template(&name) && self.hb.register_template_string(&name, t).is_err() {
                tracing::debug!(notice = t, "notice text does not compile");
            }
        }
    }

    /// Renders template `name` in `lang` as (subject, body). The data is taken
    /// by value: handlebars renders from it in place, without copies.
    pub fn render(
        &self,
        lang: Language,
        name: &str,
        data: serde_json::Value,
    ) -> Result<(String, String)> {
        let mut ctx = handlebars::Context::from(data);
        let texts: Vec<(String, String)> = ctx
            .data()
            .pointer("/policy/notices")
            .and_then(|n| n.as_array())
            .into_iter()
            .flatten()
            .filter_map(|n| {
                let id = n.get("id").and_then(|t| t.as_str()).unwrap_or("");
                let t = n.get("text").and_then(|t| t.as_str())?;
                Some((id.to_string(), t.to_string()))
            })
            .collect();
        let notices: Vec<String> = texts
            .iter()
            .filter_map(|(id, t)| {
                let key = notice_key(t);
                let r = if self.hb.has_template(&key) {
                    self.hb.render_with_context(&key, &ctx)
                } else {
                    self.hb.render_template_with_context(t, &ctx)
                };
                match r {
                    Ok(s) => Some(wrap(s.trim(), NOTICE_WIDTH)),
                    Err(e) => {
                        tracing::warn!(notice = %id, error = %e, "pack notice left out");
                        None
                    }
                }
            })
            .collect();
        if let Some(o) = ctx.data_mut().as_object_mut() {
            o.insert("notices".into(), serde_json::json!(notices));
        }
        let subject = self
            .render_text(&key(lang, name, "subject"), &ctx)
            .with_context(|| format!("template {}/{name}.hbs subject", lang.as_str()))?;
        let body = self
            .render_text(&key(lang, name, "body"), &ctx)
            .with_context(|| format!("template {}/{name}.hbs", lang.as_str()))?;
        let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
        Ok((subject, body.trim_start_matches('\n').to_string()))
    }
}

fn notice_key(text: &str) -> String {
    format!("notice:{text}")
}

/// The width, in terminal columns, that a reply's notices are wrapped to.
pub const NOTICE_WIDTH: usize = 74;

/// Wraps `text` to `width` display columns (a Japanese, Chinese or Korean
/// character is two, by unicode-width), keeping its own line breaks. Lines
/// break at spaces and, in text without spaces, between two characters when
/// either is wide, except before closing punctuation and small kana (`。`,
/// `」`, `ょ`...) or after an opening bracket (`「`). Nothing else is broken,
/// so a word or URL wider than `width` stands alone on its line.
pub fn wrap(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for (i, line) in text.lines().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let mut col = 0;
        for word in line.split(' ').filter(|w| !w.is_empty()) {
            for (k, piece) in pieces(word).enumerate() {
                let w = UnicodeWidthStr::width(piece);
                let gap = usize::from(k == 0 && col > 0);
                if col > 0 && col + gap + w > width {
                    out.push('\n');
                    col = 0;
                } else if gap == 1 {
                    out.push(' ');
                    col += 1;
                }
                out.push_str(piece);
                col += w;
            }
        }
    }
    out
}

/// The parts of a space-free word that a line may break between.
fn pieces(word: &str) -> impl Iterator<Item = &str> {
    let mut rest = word;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut prev: Option<char> = None;
        let mut cut = rest.len();
        for (at, c) in rest.char_indices() {
            if let Some(p) = prev
                && (wide(p) || wide(c))
                && !NO_BREAK_BEFORE.contains(c)
                && !NO_BREAK_AFTER.contains(p)
            {
                cut = at;
                break;
            }
            prev = Some(c);
        }
        let (piece, tail) = rest.split_at(cut);
        rest = tail;
        Some(piece)
    })
}

fn wide(c: char) -> bool {
    UnicodeWidthChar::width(c) == Some(2)
}

/// Closing punctuation, small kana and marks that never begin a line.
const NO_BREAK_BEFORE: &str = "、。，．,.・：；:;？！?!ー～…‥々ゝゞヽヾ\
    ぁぃぅぇぉっゃゅょゎゕゖァィゥェォッャュョヮヵヶ\
    」』）］｝〕〉》】〙〗〟’”)]}%％";
/// Opening brackets and quotes that never end a line.
const NO_BREAK_AFTER: &str = "「『（［｛〔〈《【〘〖〝‘“([{";

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

    /// How many template texts have been compiled.
    fn compiled(t: &Templates) -> usize {
        t.texts
            .values()
            .filter(|x| x.compiled.get().is_some())
            .count()
    }

    #[test]
    fn templates_are_checked_at_load_and_compiled_at_first_use() {
        for t in [shipped(), Templates::built_in().unwrap()] {
            assert_eq!(t.texts.len(), 2 * REQUIRED.len() * Language::ALL.len());
            assert_eq!(compiled(&t), 0, "nothing is compiled before it is used");
            let data = crate::decide::sample_template_data();
            let first = t.render(Language::Ja, "ack_new", data.clone()).unwrap();
            assert_eq!(compiled(&t), 2, "its subject and its body");
            assert_eq!(t.render(Language::Ja, "ack_new", data).unwrap(), first);
            assert_eq!(compiled(&t), 2);
        }
    }

    #[test]
    fn a_template_that_does_not_compile_is_refused_at_load_naming_its_file() {
        let copy = |dir: &Path| {
            for lang in Language::ALL {
                let from = Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("templates")
                    .join(lang.as_str());
                std::fs::create_dir_all(dir.join(lang.as_str())).unwrap();
                for e in std::fs::read_dir(from).unwrap() {
                    let p = e.unwrap().path();
                    std::fs::copy(&p, dir.join(lang.as_str()).join(p.file_name().unwrap()))
                        .unwrap();
                }
            }
        };
        for (text, at) in [
            (
                "Subject: Re {{ticket.tag}}\nHello {{#if customer.name}}\n",
                "",
            ),
            ("Subject: Re {{#each x}}\nHello\n", ":1"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            copy(dir.path());
            let file = dir.path().join("es/staff_sla.hbs");
            std::fs::write(&file, text).unwrap();
            let e = format!("{:#}", Templates::load(dir.path()).unwrap_err());
            assert!(e.starts_with(&format!("{}{at}: ", file.display())), "{e}");
        }
    }

    #[test]
    fn a_notice_missing_its_data_is_left_out_and_the_reply_stands() {
        let t = shipped();
        let mut data = crate::decide::sample_template_data();
        data["policy"] = serde_json::json!({"notices": [
            {"id": "broken", "text": "Due {{policy.deadlines.nope.local}}."},
            {"id": "fine", "text": "Ticket {{ticket.tag}} noted."},
        ]});
        let (_, body) = t.render(Language::En, "ack_new", data.clone()).unwrap();
        assert!(body.contains("Ticket [TKT#7] noted."), "{body}");
        assert!(!body.contains("Due"), "{body}");
    }

    #[test]
    fn notices_wrap_by_display_width() {
        let cols = |l: &str| UnicodeWidthStr::width(l);
        // English breaks at spaces only.
        assert_eq!(wrap("aaa bbb ccc ddd", 7), "aaa bbb\nccc ddd");
        let en = "Replies to mail outside business hours come on the next business day or later; see https://support.example.com/hours/and/holidays/2026 for the calendar.";
        for width in [20, 40, 74] {
            let w = wrap(en, width);
            assert_eq!(w.replace('\n', " "), en, "only spaces become line breaks");
            for l in w.lines() {
                assert!(cols(l) <= width || !l.contains(' '), "{width}: {l:?}");
            }
        }
        // The URL wider than 20 columns is not broken: it stands alone.
        assert!(
            wrap(en, 20)
                .lines()
                .any(|l| l == "https://support.example.com/hours/and/holidays/2026")
        );
        // Japanese: two columns a character, breaks between characters.
        let ja = "受付時間外のメールへの回答は翌営業日以降となります。保守開始は「納品月 翌々月1日」以降です。";
        for width in [10, 11, 20, 74] {
            let w = wrap(ja, width);
            assert_eq!(
                w.replace(['\n', ' '], ""),
                ja.replace(' ', ""),
                "{width}: {w}"
            );
            for l in w.lines() {
                assert!(cols(l) <= width, "{width}: {l:?} is {} columns", cols(l));
                assert!(!l.starts_with(['。', '」', '、']), "{width}: {l:?}");
                assert!(!l.ends_with('「'), "{width}: {l:?}");
            }
        }
        let ten = wrap("受付時間外のメールへの回答は翌営業日以降となります。", 10);
        assert_eq!(ten.lines().next(), Some("受付時間外"));
        assert!(ten.lines().count() >= 5, "{ten}");
        assert_eq!(
            wrap(ja, 74).lines().count(),
            2,
            "46 characters are 92 columns"
        );
        // Mixed: an English word inside Japanese text stays whole.
        let mixed = wrap("シリアル番号ABC12345を記入してください", 16);
        assert!(mixed.lines().any(|l| l.contains("ABC12345")), "{mixed}");
        for l in mixed.lines() {
            assert!(cols(l) <= 16, "{l:?}");
        }
    }

    #[test]
    fn every_required_template_renders_in_every_language_with_the_data_decide_gives() {
        let t = shipped();
        for lang in Language::ALL {
            for name in REQUIRED {
                let mut data = crate::decide::sample_template_data();
                if name.starts_with("rma_") || *name == "staff_rma_due" {
                    // The RMA mails take one RMA, later replies the list.
                    data["rma"] = data["rma"][0].clone();
                }
                let (subject, body) = t
                    .render(lang, name, data)
                    .unwrap_or_else(|e| panic!("{}/{name}: {e:#}", lang.as_str()));
                assert!(
                    !subject.is_empty() && !body.trim().is_empty(),
                    "{}/{name}",
                    lang.as_str()
                );
            }
        }
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
            t.render(Language::En, "ack_new", serde_json::json!({}))
                .is_err()
        );
        let data = crate::decide::sample_template_data();
        let (subject, body) = t.render(Language::En, "ack_new", data.clone()).unwrap();
        assert!(subject.contains("[TKT#7]"), "{subject}");
        assert!(body.contains("Ann & Bob <ops>"), "no HTML escaping: {body}");
    }

    #[test]
    fn issue_20_class_3_a_staff_address_bounce_says_it_is_not_marked() {
        let t = shipped();
        let mut data = crate::decide::sample_template_data();
        let (_, customer) = t
            .render(Language::En, "staff_undeliverable", data.clone())
            .unwrap();
        assert!(
            customer.contains("is now marked undeliverable"),
            "{customer}"
        );
        assert!(
            customer.contains("reach the customer another way"),
            "{customer}"
        );
        data["bounce"]["staff"] = serde_json::json!(true);
        for lang in Language::ALL {
            let (_, staff) = t.render(lang, "staff_undeliverable", data.clone()).unwrap();
            assert!(staff.contains("[staff.members]"), "{staff}");
            assert!(!staff.starts_with('\n'), "{staff:?}");
        }
        let (_, staff) = t.render(Language::En, "staff_undeliverable", data).unwrap();
        assert!(staff.contains("never marked\nundeliverable"), "{staff}");
        assert!(!staff.contains("reach the customer"), "{staff}");
    }
}
