//! The language a mail is written in, when it is one ticketd answers in (en, ja, es): the script and the declared charset, the greeting and sign-off, the words and marks of each language, then the statistical detector over a bounded prefix.
//!
//! A short mail ("Hola: la centralita no arranca. Saludos, José") is too
//! short for the detector to be sure of, yet says its language plainly:
//! each source is asked in turn, and the detector only when none decides.

use crate::model::Language;
use crate::parse::looks_japanese;
use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::LazyLock;

/// How much of the text the detector reads: the language of a mail is
/// settled in its first lines, and the detector's time grows with the text.
const DETECTOR_PREFIX: usize = 2000;

/// Greetings and sign-offs, matched on a line's own words (lower case,
/// trailing punctuation off): a line that is one of these, or starts with
/// one followed by a name, decides with the words.
const ES_GREETINGS: &[&str] = &[
    "hola",
    "buenos días",
    "buenos dias",
    "buenas tardes",
    "buenas noches",
    "buenas",
    "estimado",
    "estimada",
    "estimados",
    "un saludo",
    "saludos",
    "saludos cordiales",
    "muchas gracias",
    "gracias",
    "atentamente",
    "cordialmente",
    "enviado desde mi iphone",
    "enviado desde mi móvil",
];
const EN_GREETINGS: &[&str] = &[
    "hi",
    "hello",
    "dear",
    "good morning",
    "good afternoon",
    "hey",
    "regards",
    "best regards",
    "kind regards",
    "best",
    "thanks",
    "thank you",
    "many thanks",
    "cheers",
    "sincerely",
    "sent from my iphone",
];

/// Words frequent in one language and rare in the other (and in the other
/// Latin-script languages a mail may come in), lower case.
const ES_WORDS: &[&str] = &[
    "el",
    "la",
    "los",
    "las",
    "del",
    "que",
    "por",
    "para",
    "con",
    "una",
    "uno",
    "es",
    "está",
    "esta",
    "están",
    "desde",
    "mi",
    "su",
    "sus",
    "nuestro",
    "nuestra",
    "tienen",
    "tiene",
    "puede",
    "pueden",
    "cuánto",
    "cuanto",
    "cómo",
    "qué",
    "dura",
    "equipo",
    "enciende",
    "funciona",
    "arranca",
    "ayer",
    "hoy",
    "mañana",
    "disco",
    "solicitud",
    "soporte",
    "consulta",
    "pregunta",
    "garantía",
    "garantia",
    "avería",
    "averia",
    "ayuda",
    "problema",
    "también",
    "pero",
    "muy",
    "gracias",
    "hola",
    "saludos",
    "número",
    "serie",
    "factura",
    "favor",
    "necesito",
    "necesitamos",
];
const EN_WORDS: &[&str] = &[
    "the", "and", "is", "are", "of", "to", "it", "can", "you", "please", "thanks", "thank", "hi",
    "hello", "dear", "regards", "again", "our", "my", "we", "not", "won't", "doesn't", "since",
    "send", "another", "help", "dead", "from", "with", "this", "that", "would", "could", "have",
    "has", "was", "will", "any", "when", "there", "what", "how", "why",
];

/// The language `text` (the subject and what the person wrote) is written
/// in, when one of ours and something in it decides; `charset` is the
/// mail's declared one. Gives what decided.
pub fn written_in(text: &str, charset: Option<&str>) -> Option<(Language, &'static str)> {
    if looks_japanese(text) {
        return Some((Language::Ja, "kana"));
    }
    let japanese_charset = charset.is_some_and(|c| {
        let c = c.to_ascii_lowercase();
        c.contains("2022-jp") || c.contains("shift_jis") || c.contains("sjis") || c == "euc-jp"
    });
    if japanese_charset && text.chars().any(|c| matches!(c, '\u{4e00}'..='\u{9fff}')) {
        return Some((Language::Ja, "kanji under a Japanese charset"));
    }
    if let Some(l) = by_greeting_and_words(text) {
        return Some(l);
    }
    detector(text).map(|l| (l, "the detector"))
}

/// Spanish or English by the greeting and sign-off (three points each),
/// the words of each (a point each) and Spanish's own marks (¿ ¡ ñ, two
/// points): decided when the winner has three points, twice the other's,
/// and either a greeting, a mark, or a fifth of the words.
fn by_greeting_and_words(text: &str) -> Option<(Language, &'static str)> {
    let (mut es, mut en) = (0usize, 0usize);
    let mut greeted = false;
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(60)
    {
        let lower = lowercase(line);
        let l = lower.trim_end_matches([',', ':', '.', '!', ';']);
        let is = |list: &[&str]| {
            list.iter().any(|g| {
                l == *g
                    || (l.starts_with(g)
                        && l[g.len()..].starts_with([' ', ','])
                        && l.split_whitespace().count() <= g.split_whitespace().count() + 2)
            })
        };
        if is(ES_GREETINGS) {
            es += 3;
            greeted = true;
        } else if is(EN_GREETINGS) {
            en += 3;
            greeted = true;
        }
    }
    let marks = text
        .chars()
        .filter(|c| matches!(c, '¿' | '¡' | 'ñ' | 'Ñ'))
        .count()
        .min(3);
    es += 2 * marks;
    static LISTS: LazyLock<(HashSet<&str>, HashSet<&str>)> = LazyLock::new(|| {
        (
            ES_WORDS.iter().copied().collect(),
            EN_WORDS.iter().copied().collect(),
        )
    });
    let (es_list, en_list) = &*LISTS;
    let (mut words, mut es_words, mut en_words) = (0usize, 0usize, 0usize);
    for w in text
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .take(400)
    {
        let w = lowercase(w);
        words += 1;
        es_words += usize::from(es_list.contains(&*w));
        en_words += usize::from(en_list.contains(&*w));
    }
    es += es_words;
    en += en_words;
    let dense = |hits: usize| hits * 5 >= words.max(1);
    let (lang, won, lost, hits, marked) = if es >= en {
        (Language::Es, es, en, es_words, marks > 0)
    } else {
        (Language::En, en, es, en_words, false)
    };
    (won >= 3 && won >= 2 * lost && (greeted || marked || dense(hits)))
        .then_some((lang, "its greeting, sign-off and words"))
}

/// `s` in lower case, copied only when it has a capital.
fn lowercase(s: &str) -> Cow<'_, str> {
    if s.chars().any(char::is_uppercase) {
        Cow::Owned(s.to_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

/// The statistical detector over the first characters, when it is sure.
fn detector(text: &str) -> Option<Language> {
    let info = whatlang::detect(crate::text::first_chars(text, DETECTOR_PREFIX))?;
    if !info.is_reliable() {
        return None;
    }
    match info.lang() {
        whatlang::Lang::Eng => Some(Language::En),
        whatlang::Lang::Spa => Some(Language::Es),
        whatlang::Lang::Jpn => Some(Language::Ja),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lang(text: &str, charset: Option<&str>) -> Option<Language> {
        written_in(text, charset).map(|(l, _)| l)
    }

    #[test]
    fn issue_23_item_8_short_mails_are_read_by_their_greeting_words_and_marks() {
        for (text, want) in [
            (
                "Avería en la centralita\nBuenos días:\n\nLa centralita no arranca desde esta mañana.\nNúmero de serie: AV7-000123\n\nSaludos,\nJosé",
                Language::Es,
            ),
            (
                "Consulta\n¿Cuánto dura la garantía del disco?",
                Language::Es,
            ),
            (
                "Equipo no enciende\nBuenas tardes, el equipo no enciende desde el lunes.\nSaludos, Pedro",
                Language::Es,
            ),
            (
                "Solicitud de soporte: disco dañado\nSerial Q22CO00999.\nCarlos",
                Language::Es,
            ),
            (
                "disk 2\nDisk 2 is dead again, can you send another one?\nTom",
                Language::En,
            ),
            (
                "Help please\nHi, the unit beeps and won't start.\nThanks, Ruth",
                Language::En,
            ),
        ] {
            assert_eq!(lang(text, None), Some(want), "{text}");
        }
        // Kanji alone are Japanese under a Japanese charset only.
        assert_eq!(
            lang("故障\n至急対応願います。", Some("ISO-2022-JP")),
            Some(Language::Ja)
        );
        assert_eq!(lang("故障\n至急对应", Some("GB18030")), None);
    }

    #[test]
    fn issue_23_item_8_other_languages_and_too_little_decide_nothing() {
        for text in [
            "Re: Tausch\nDie Seriennummer lautet Q20DE77881.\n\nGruß\nKlaus",
            "Re: disque\nMerci, le disque de remplacement est bien arrivé.\n\nJulie",
            "Re: sistema\nPerfetto, grazie. Il sistema funziona di nuovo.\n\nMarco",
            "Disk failed\nHelp",
        ] {
            assert_eq!(lang(text, None), None, "{text}");
        }
    }
}
