//! The new text of a reply: what the person wrote now, without the quoted history and the signature.
//!
//! Each line is read once and given a kind (text, blank, `>` quote, quote
//! header, signature delimiter, mobile signature); the kinds then decide what
//! is kept. Quote headers are those real clients write, from tables of their
//! words and shapes: Gmail and Thunderbird ("On … wrote:", wrapped over up to
//! three lines, in many languages, also date-first and sender-first forms:
//! "ср, 2 дек. 2026 г. в 10:04, Ann <a@b>:", "Ann <a@b> 于2026年12月2日 10:04写道：",
//! "2026년 12월 2일 (수) 오전 10:04, Ann <a@b>님이 작성:"; an address wrapped
//! with its `<mailto:…>` link, whose closing `>` may open the next line),
//! Apple Mail ("On … at …, X wrote:", "Am … schrieb …:", "Wiadomość napisana
//! przez … w dniu …:"), mutt ("* Ann <a@b> [2026-12-02 10:04]:"), Outlook
//! ("-----Original Message-----" and its translations, the underscore rule,
//! and From/Sent/To/Subject blocks in over twenty languages), Japanese
//! clients ("2026年11月20日(金) 10:00 山田太郎 <a@b>:", "…さんは書きました:",
//! 差出人/送信日時/件名), Spanish ("El … escribió:"); a mailing list's footer
//! under its rule (Mailman's "users mailing list"); mobile signatures
//! ("Sent from my iPhone", "Enviado desde mi iPhone", "iPhone에서 보냄",
//! "iPhoneから送信", "Sent from TypeApp<link>") when the rest of the line is
//! only a device's or app's name and links, so that a sentence opening with
//! the same words ("Sent from my desk, which is easier than my phone.") stays.
//!
//! The rules:
//! - everything from the first quote header, "Original Message" line,
//!   signature delimiter (`--`) or mobile signature after the person's own
//!   text is history or signature, and goes;
//! - a quote header at the very top (bottom posting) goes with the quote
//!   block under it, and what follows is read on;
//! - `>` quotes between the person's own lines stay (an interleaved answer
//!   needs its context); quotes after the last own line go;
//! - a quote header after the person's text whose `>` quote is followed by
//!   more of their text (answers inline, under the quoted questions) goes
//!   alone, and the reading goes on ([`Mode::Customer`]);
//! - a customer's mail that is only a quote (a forwarded conversation, a
//!   reply sent without typing) gives the new text of what it quotes;
//! - a line of only invisible marks (zero-width characters, a tracker's
//!   U+1427) is a blank line;
//! - sign-offs ("Thanks,", a name) stay: they are what the person wrote;
//! - a mailing list's footer goes in every mode;
//! - lines that open with `#` and a letter (`#close`, `#note …`, staff
//!   commands) are always text: never a quote header, nor part of one, nor a
//!   mobile signature.
//!
//! Two modes ([`Mode`]) read the same lines with the same kinds; they differ
//! only in what the reader is for. [`Mode::Customer`] (what ticketd stores of
//! a customer's reply) drops the `--` signature and keeps `>` quotes between
//! the person's own lines. [`Mode::Staff`] (what a staff member's reply relays
//! to the customer) keeps the staff member's signature block, whether it sits
//! under the text or, as Thunderbird and mutt place it by default, under the
//! `>`-quoted notification (only when that history is wholly `>`-quoted, so
//! that a signature inside an unquoted Outlook history never passes), and
//! drops every `>` quote: the notification quoted holds internal fields
//! (contract, tier, SLA due time), so answers interleaved between quotes are
//! relayed in order, each quote run becoming one paragraph break. Mobile
//! footers go in both modes.
//!
//! Time and memory are linear in the input: every line is classified with a
//! bounded look-ahead of at most [`HEADER_WINDOW`] lines of bounded length, and
//! input over [`MAX_INPUT`] bytes is cut first.

use crate::text::clip;

/// The most text read; the rest of a longer body is ignored.
pub const MAX_INPUT: usize = 2 * 1024 * 1024;
/// How many lines a header block ("From:/Sent:/To:/Subject:") may span.
const HEADER_WINDOW: usize = 8;
/// How many lines a wrapped "On … wrote:" header may span (the date, the
/// name, a `<mailto:…>` address and "wrote:" each on its line).
const HEADER_WRAP: usize = 4;
/// The longest (joined) line that can be a quote header.
const MAX_HEADER_LINE: usize = 400;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Blank,
    Text,
    Quote,
    /// A quote header spanning this many lines.
    Header(usize),
    /// A line of a quote header after its first.
    HeaderTail,
    /// `--` or `-- `.
    SigDelimiter,
    /// The rule over a mailing list's footer.
    ListFooter,
    /// "Sent from my iPhone" and its kin.
    Mobile,
}

/// Whose reply is read, which decides what of it is the new text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A customer's reply: quoted history, the `--` signature and mobile
    /// footers go; sign-offs and `>` quotes between own lines stay.
    Customer,
    /// A staff member's reply, to be relayed to the customer: quoted history,
    /// every `>` quote and mobile footers go; sign-off and signature block stay.
    Staff,
}

/// The most non-blank lines a signature under the quoted history may have
/// for [`Mode::Staff`] to keep it; a longer block is taken for more history.
const MAX_TRAILING_SIGNATURE: usize = 12;

/// Words that say "wrote" in a quote header, lower case.
const WROTE: &[&str] = &[
    "wrote",
    "writes",
    "schrieb",
    "a écrit",
    "escribió",
    "escribio",
    "ha scritto",
    "scrisse",
    "geschreven",
    "schreef",
    "skrev",
    "napisał",
    "napisana",
    "napisal",
    "написал",
    "написала",
    "написав",
    "пишет",
    "пише",
    "kirjoitti",
    "írta",
    "yazdı",
    "escreveu",
    "έγραψε",
    "pisze",
    "napsal",
    "napísal",
    "a scris",
    "je napisal",
    "写道",
    "寫道",
    "書きました",
    "書き込みました",
    "のメール",
    "작성",
    "쓴 글",
    "wrote on",
];

/// Field names of a forwarded or quoted header block, lower case, without the colon.
/// The first group names the sender ("From" in many languages).
const FROM_FIELDS: &[&str] = &[
    "from",
    "von",
    "de",
    "van",
    "da",
    "från",
    "fra",
    "od",
    "от",
    "від",
    "差出人",
    "送信者",
    "发件人",
    "發件人",
    "寄件者",
    "보낸 사람",
    "lähettäjä",
    "feladó",
    "kimden",
    "από",
    "afzender",
    "remitente",
    "expéditeur",
    "absender",
];
const OTHER_FIELDS: &[&str] = &[
    "sent",
    "date",
    "to",
    "cc",
    "bcc",
    "subject",
    "reply-to",
    "sent on",
    "gesendet",
    "datum",
    "an",
    "betreff",
    "envoyé",
    "envoyé le",
    "à",
    "a",
    "objet",
    "enviado",
    "enviado el",
    "enviada em",
    "enviado em",
    "fecha",
    "para",
    "asunto",
    "assunto",
    "data",
    "inviato",
    "oggetto",
    "verzonden",
    "aan",
    "onderwerp",
    "skickat",
    "till",
    "ämne",
    "sendt",
    "til",
    "emne",
    "dato",
    "lähetetty",
    "vastaanottaja",
    "aihe",
    "päivämäärä",
    "wysłano",
    "do",
    "temat",
    "отправлено",
    "дата",
    "кому",
    "тема",
    "odesláno",
    "komu",
    "předmět",
    "送信日時",
    "送信日",
    "日付",
    "宛先",
    "件名",
    "发送时间",
    "日期",
    "收件人",
    "抄送",
    "主题",
    "寄件日期",
    "收件者",
    "副本",
    "主旨",
    "보낸 날짜",
    "받는 사람",
    "참조",
    "숨은 참조",
    "제목",
    "надіслано",
    "копія",
    "копия",
    "dw",
    "kopia",
    "gönderildi",
    "tarih",
    "kime",
    "konu",
    "elküldve",
    "címzett",
    "tárgy",
    "στάλθηκε",
    "προς",
    "θέμα",
];

/// The words of an "Original Message" or forward separator, lower case.
const ORIGINAL: &[&str] = &[
    "original message",
    "original e-mail",
    "forwarded message",
    "begin forwarded message",
    "inicio del mensaje reenviado",
    "début du message réexpédié",
    "début du message transféré",
    "anfang der weitergeleiteten nachricht",
    "inizio messaggio inoltrato",
    "begin doorgestuurd bericht",
    "転送されたメッセージ",
    "ursprüngliche nachricht",
    "ursprüngliche e-mail",
    "weitergeleitete nachricht",
    "message d'origine",
    "message d’origine",
    "message original",
    "message transféré",
    "mensaje original",
    "mensaje reenviado",
    "mensagem original",
    "mensagem encaminhada",
    "messaggio originale",
    "messaggio inoltrato",
    "oorspronkelijk bericht",
    "origineel bericht",
    "doorgestuurd bericht",
    "ursprungligt meddelande",
    "originalmeddelande",
    "vidarebefordrat meddelande",
    "opprinnelig melding",
    "oprindelig meddelelse",
    "videresendt meddelelse",
    "alkuperäinen viesti",
    "oryginalna wiadomość",
    "исходное сообщение",
    "пересылаемое сообщение",
    "оригінальне повідомлення",
    "переслане повідомлення",
    "wiadomość oryginalna",
    "przekazana wiadomość",
    "원본 메시지",
    "전달된 메시지",
    "původní zpráva",
    "eredeti üzenet",
    "orijinal mesaj",
    "元のメッセージ",
    "転送メッセージ",
    "原始邮件",
    "原始郵件",
    "转发的邮件",
    "reply message",
];

/// Mobile and app signatures, lower case, matched at the start of a short line.
const MOBILE: &[&str] = &[
    "sent from my ",
    "sent from mail for windows",
    "sent from outlook",
    "sent from yahoo mail",
    "sent from the all new aol app",
    "sent from samsung",
    "sent via ",
    "get outlook for ",
    "enviado desde mi ",
    "enviado desde outlook",
    "enviado do meu ",
    "enviado do outlook",
    "envoyé de mon ",
    "envoyé depuis mon ",
    "von meinem ",
    "gesendet von meinem ",
    "gesendet mit ",
    "sendt fra min ",
    "sendt fra ",
    "skickat från min ",
    "verzonden vanaf mijn ",
    "verstuurd vanaf mijn ",
    "inviato da ",
    "wysłane z ",
    "отправлено с ",
    "надіслано з ",
    "发自我的",
    "從我的",
    // An app's own name after the bare words: "Sent from TypeApp<link>".
    "sent from ",
    "enviado desde ",
    "envoyé depuis ",
    "envoyé de ",
];

/// What the person wrote now in `body`: without quoted history and signature
/// ([`Mode::Customer`]). Line ends are `\n` in the result; it has no leading or
/// trailing blank lines.
pub fn extract(body: &str) -> String {
    extract_as(body, Mode::Customer)
}

/// What the person wrote now in `body`, read in `mode`. Line ends are `\n` in
/// the result; it has no leading or trailing blank lines.
pub fn extract_as(body: &str, mode: Mode) -> String {
    extract_at(body, mode, 0)
}

/// How many quote levels a mail that is only a quote is read into.
const MAX_UNQUOTE: usize = 4;

/// [`extract_as`] for a body `depth` quote levels down. A customer's mail
/// that is only a quote (a forwarded conversation, a reply sent without
/// typing) gives the new text of what it quotes, one level unquoted; a staff
/// reply never does (what it quotes is the notification).
fn extract_at(body: &str, mode: Mode, depth: usize) -> String {
    let body = clip(body, MAX_INPUT);
    let lines: Vec<&str> = body
        .split('\n')
        .map(|l| l.trim_end_matches(['\r', ' ', '\t', '\u{a0}']))
        .map(|l| if only_invisible(l) { "" } else { l })
        .collect();
    let kinds = classify_lines(&lines);
    let keep = select(&kinds, mode);
    let mut out: Vec<&str> = Vec::new();
    let mut after_break = false;
    for ((line, k), kind) in lines.iter().zip(&keep).zip(&kinds) {
        match k {
            Keep::No => {}
            Keep::Break => {
                if out.last().is_some_and(|l| !l.trim().is_empty()) {
                    out.push("");
                }
                after_break = true;
            }
            Keep::Line => {
                if after_break && line.trim().is_empty() {
                    continue;
                }
                after_break = false;
                // A kept signature delimiter is written as the standard `-- `
                // (an HTML conversion or the line trim took its space).
                out.push(if *kind == Kind::SigDelimiter {
                    "-- "
                } else {
                    line
                });
            }
        }
    }
    if mode == Mode::Staff {
        close_up_commands(&mut out);
    }
    while out.first().is_some_and(|l| l.trim().is_empty()) {
        out.remove(0);
    }
    while out.last().is_some_and(|l| l.trim().is_empty()) {
        out.pop();
    }
    if out.is_empty() && mode == Mode::Customer && depth < MAX_UNQUOTE {
        let quoted = unquoted(&lines, &kinds);
        if !quoted.is_empty() {
            return extract_at(&quoted, mode, depth + 1);
        }
    }
    out.join("\n")
}

/// The `>` quoted lines of a body, one level of quoting taken off, with the
/// blank lines between them; empty when it quotes nothing.
fn unquoted(lines: &[&str], kinds: &[Kind]) -> String {
    let mut out = String::new();
    let mut pending_blank = false;
    for (line, kind) in lines.iter().zip(kinds) {
        match kind {
            Kind::Quote => {
                if pending_blank && !out.is_empty() {
                    out.push('\n');
                }
                pending_blank = false;
                let l = line.trim_start_matches([' ', '\t']);
                let l = l.strip_prefix('>').unwrap_or(l);
                out.push_str(l.strip_prefix(' ').unwrap_or(l));
                out.push('\n');
            }
            Kind::Blank => pending_blank = true,
            _ => {}
        }
    }
    out
}

/// Characters that show nothing: zero-width spaces and joiners, the byte
/// order mark, a soft hyphen, and the marks mail trackers add as a line of
/// their own (Gmail extensions' U+1427 "ᐧ").
const INVISIBLE: &[char] = &[
    '\u{00ad}', '\u{034f}', '\u{180e}', '\u{200b}', '\u{200c}', '\u{200d}', '\u{200e}', '\u{200f}',
    '\u{2060}', '\u{2061}', '\u{2062}', '\u{2063}', '\u{2064}', '\u{feff}', '\u{1427}',
];

/// A line of only invisible characters and spaces, with at least one of
/// them: no text, a blank line.
fn only_invisible(l: &str) -> bool {
    l.chars().any(|c| INVISIBLE.contains(&c))
        && l.chars()
            .all(|c| c.is_whitespace() || INVISIBLE.contains(&c))
}

/// Blank lines between the command lines at the top of a staff reply go, so
/// that the commands are one block of lines however the client spaced them
/// (an HTML client's paragraphs).
fn close_up_commands(out: &mut Vec<&str>) {
    let Some(first) = out.iter().position(|l| !l.trim().is_empty()) else {
        return;
    };
    let mut i = first;
    while i < out.len() {
        if is_command(out[i]) {
            i += 1;
        } else if out[i].trim().is_empty() {
            let next = out[i..].iter().position(|l| !l.trim().is_empty());
            match next {
                Some(n) if is_command(out[i + n]) => {
                    out.drain(i..i + n);
                }
                _ => break,
            }
        } else {
            break;
        }
    }
}

/// The new text of an HTML body ([`Mode::Customer`]); see [`extract_html_as`].
pub fn extract_html(html: &str) -> String {
    extract_html_as(html, Mode::Customer)
}

/// The new text of an HTML body read in `mode`: block elements (`<p>`,
/// `<div>`, …) and `<br>` become lines, `<blockquote>` becomes `>` quoting,
/// `<hr>` a separator line; then [`extract_as`].
pub fn extract_html_as(html: &str, mode: Mode) -> String {
    extract_as(&html_to_lines(clip(html, MAX_INPUT)), mode)
}

/// A staff command line: `#` and a letter at its start (`#close`, `#note …`).
fn is_command(line: &str) -> bool {
    let mut c = line.trim_start().chars();
    c.next() == Some('#') && c.next().is_some_and(|c| c.is_ascii_alphabetic())
}

fn is_quote(line: &str) -> bool {
    line.trim_start_matches([' ', '\t']).starts_with('>')
}

fn kind_of_single(line: &str) -> Kind {
    let t = line.trim();
    if t.is_empty() {
        return Kind::Blank;
    }
    if is_quote(line) {
        return Kind::Quote;
    }
    if t == "--" || line == "-- " {
        return Kind::SigDelimiter;
    }
    if is_command(line) {
        return Kind::Text;
    }
    if is_mobile(t) {
        return Kind::Mobile;
    }
    Kind::Text
}

fn classify_lines(lines: &[&str]) -> Vec<Kind> {
    let mut kinds: Vec<Kind> = lines.iter().map(|l| kind_of_single(l)).collect();
    let mut i = 0;
    while i < lines.len() {
        if kinds[i] == Kind::Text && is_list_footer(lines, i) {
            kinds[i] = Kind::ListFooter;
            i += 1;
            continue;
        }
        if matches!(kinds[i], Kind::Text | Kind::Mobile)
            && !is_command(lines[i])
            && let Some(n) = header_span(lines, i)
        {
            kinds[i] = Kind::Header(n);
            for k in kinds.iter_mut().skip(i + 1).take(n - 1) {
                *k = Kind::HeaderTail;
            }
            i += n;
            continue;
        }
        i += 1;
    }
    kinds
}

/// What becomes of a line in the new text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    No,
    Line,
    /// Dropped, leaving one paragraph break between the lines around it.
    Break,
}

/// Decides which lines are the new text.
fn select(kinds: &[Kind], mode: Mode) -> Vec<Keep> {
    let n = kinds.len();
    let mut keep = vec![Keep::No; n];
    let mut i = 0;
    let mut seen_text = false;
    // Leading quote headers (bottom posting): skip each with the quote block
    // under it. A header block with plain text under it (a forward, or the
    // mail's own header pasted on top) loses the header and keeps the text.
    let mut skipped_leading_block: Option<(usize, usize)> = None;
    while i < n {
        match kinds[i] {
            Kind::Blank => i += 1,
            Kind::Header(span) => {
                let start = i + span;
                let mut j = start;
                while j < n && kinds[j] == Kind::Blank {
                    j += 1;
                }
                if j < n && kinds[j] == Kind::Quote {
                    while j < n && matches!(kinds[j], Kind::Quote | Kind::Blank) {
                        j += 1;
                    }
                    skipped_leading_block = Some((start, j));
                }
                i = j;
            }
            _ => break,
        }
    }
    if i >= n {
        return keep;
    }
    let begin = i;
    // The end: the first header, signature or mobile line after own text
    // (staff keep their signature: it ends their text, not the reply).
    let mut end = n;
    let mut signature = None;
    for (j, k) in kinds.iter().enumerate().skip(begin) {
        match k {
            Kind::Text => seen_text = true,
            // Answers written under the quote this header opens: read on.
            Kind::Header(span)
                if mode == Mode::Customer && seen_text && answered_under(kinds, j + span) => {}
            Kind::Header(_) => {
                end = j;
                break;
            }
            Kind::SigDelimiter if seen_text && mode == Mode::Staff => {
                signature.get_or_insert(j);
            }
            // A staff reply that opens with its signature has nothing written.
            Kind::SigDelimiter if mode == Mode::Staff => return keep,
            Kind::SigDelimiter | Kind::Mobile | Kind::ListFooter if seen_text => {
                end = j;
                break;
            }
            Kind::Quote if signature.is_some() => {
                end = j;
                break;
            }
            _ => {}
        }
    }
    let text_end = signature.unwrap_or(end);
    // Quotes after the last own line go.
    let mut last_text = None;
    for (j, k) in kinds.iter().enumerate().take(text_end).skip(begin) {
        if *k == Kind::Text {
            last_text = Some(j);
        }
    }
    let Some(last_text) = last_text else {
        return keep;
    };
    for (j, k) in keep.iter_mut().enumerate().take(last_text + 1).skip(begin) {
        *k = match (kinds[j], mode) {
            (Kind::Text | Kind::Blank, _) | (Kind::Quote, Mode::Customer) => Keep::Line,
            (Kind::Quote, Mode::Staff) | (Kind::Header(_), _) => Keep::Break,
            _ => Keep::No,
        };
    }
    match mode {
        Mode::Customer => {
            // An interleaved answer under a leading quote header keeps its first quote too.
            if let Some((s, e)) = skipped_leading_block {
                let interleaved = kinds[begin..=last_text].contains(&Kind::Quote);
                if interleaved {
                    for k in keep.iter_mut().take(e).skip(s) {
                        *k = Keep::Line;
                    }
                }
            }
        }
        Mode::Staff => {
            if signature.is_some() {
                // Between the text and the signature, and the signature itself.
                for (k, kind) in keep.iter_mut().zip(kinds).take(end).skip(last_text + 1) {
                    *k = match kind {
                        Kind::Quote => Keep::Break,
                        _ => Keep::Line,
                    };
                }
            } else if let Some((sig, sig_end)) = signature_under_history(kinds, end) {
                for k in keep.iter_mut().take(sig).skip(last_text + 1) {
                    *k = Keep::Break;
                }
                for k in keep.iter_mut().take(sig_end).skip(sig) {
                    *k = Keep::Line;
                }
            }
        }
    }
    keep
}

/// The quote block from `from` (after a quote header) is answered: `>`
/// quotes, then the person's own text (inline answers), not only history.
fn answered_under(kinds: &[Kind], from: usize) -> bool {
    let mut quoted = false;
    for kind in kinds.iter().skip(from) {
        match kind {
            Kind::Blank => {}
            Kind::Quote => quoted = true,
            Kind::Text => return quoted,
            _ => return false,
        }
    }
    false
}

/// A signature placed under the quoted history (Thunderbird's and mutt's
/// default when the answer is written above the quote): from the quote
/// header at `end`, only `>` quotes and blank lines, then a `--` delimiter and
/// at most [`MAX_TRAILING_SIGNATURE`] lines of text up to the end of the body
/// (or a mobile or list footer). Returns the delimiter's line and the end.
fn signature_under_history(kinds: &[Kind], end: usize) -> Option<(usize, usize)> {
    let Some(Kind::Header(span)) = kinds.get(end) else {
        return None;
    };
    let mut j = end + span;
    let mut quoted = false;
    while j < kinds.len() && matches!(kinds[j], Kind::Quote | Kind::Blank) {
        quoted |= kinds[j] == Kind::Quote;
        j += 1;
    }
    if !quoted || kinds.get(j) != Some(&Kind::SigDelimiter) {
        return None;
    }
    let sig = j;
    let mut lines = 0;
    for (k, kind) in kinds.iter().enumerate().skip(sig + 1) {
        match kind {
            Kind::Text => lines += 1,
            Kind::Blank => {}
            Kind::Mobile | Kind::ListFooter => return (lines > 0).then_some((sig, k)),
            _ => return None,
        }
        if lines > MAX_TRAILING_SIGNATURE {
            return None;
        }
    }
    (lines > 0).then_some((sig, kinds.len()))
}

fn lower(s: &str) -> String {
    s.to_lowercase()
}

/// Mobile signatures that put the device first (Korean, Japanese), lower case:
/// "iPhone에서 보냄", "iPhoneから送信".
const MOBILE_SUFFIX: &[&str] = &["에서 보냄", "에서 보낸 메일", "から送信"];

/// Names of devices and mail apps, lower case, that a longer mobile signature
/// carries ("Sent via the Samsung Galaxy S23, an AT&T 5G smartphone").
const DEVICES: &[&str] = &[
    "iphone",
    "ipad",
    "ipod",
    "android",
    "samsung",
    "galaxy",
    "blackberry",
    "smartphone",
    "huawei",
    "xiaomi",
    "pixel",
    "nokia",
    "motorola",
    "oneplus",
    "outlook",
    "mail",
    "mobile",
];

/// A mobile signature is a line naming the device or app and nothing else:
/// after the prefix and without its links, at most [`MOBILE_SHORT`] words, or
/// up to [`MOBILE_LONG`] words that name a device, each word a name (a
/// capital or a digit in it: "iPhone", "Galaxy S23", "AT&T") or one of
/// [`NAME_WORDS`]. A sentence that opens with the same words ("Sent from my
/// desk, which is easier than my phone.", "Sent from my iPad while on the
/// train, so …") has words of its own, and is text.
const MOBILE_SHORT: usize = 4;
const MOBILE_LONG: usize = 12;

/// The lower-case words a device or app name may hold besides names.
const NAME_WORDS: &[&str] = &[
    "my",
    "the",
    "a",
    "an",
    "on",
    "for",
    "mi",
    "mon",
    "ma",
    "de",
    "del",
    "la",
    "el",
    "le",
    "du",
    "von",
    "meinem",
    "meiner",
    "mit",
    "der",
    "dem",
    "einem",
    "mijn",
    "meu",
    "minha",
    "il",
    "mio",
    "z",
    "с",
    "з",
    "mobile",
    "phone",
    "smartphone",
    "device",
    "tablet",
    "móvil",
    "movil",
    "celular",
    "teléfono",
    "téléphone",
    "portable",
    "mobil",
    "handy",
    "gesendet",
    "envoyé",
    "enviado",
    "network",
    "wireless",
    "app",
    "mail",
];

fn is_mobile(t: &str) -> bool {
    let bare = without_links(t);
    let bare = bare.trim();
    if bare.chars().count() > 80 {
        return false;
    }
    let l = lower(bare);
    if let Some(prefix) = MOBILE.iter().find(|m| l.starts_with(*m)) {
        let rest: String = bare.chars().skip(prefix.chars().count()).collect();
        return names_a_device(&rest);
    }
    MOBILE_SUFFIX.iter().any(|m| {
        l.strip_suffix(m)
            .is_some_and(|head| head.split_whitespace().count() <= 2 && head.chars().count() <= 24)
    })
}

/// `rest` (a mobile signature after its prefix) is a device's or app's name.
fn names_a_device(rest: &str) -> bool {
    let words: Vec<&str> = rest
        .split_whitespace()
        .map(|w| w.trim_matches(|c: char| matches!(c, ',' | '.' | ';' | '(' | ')' | '!')))
        .filter(|w| !w.is_empty())
        .collect();
    let l = lower(rest);
    let sized = words.len() <= MOBILE_SHORT
        || (words.len() <= MOBILE_LONG && DEVICES.iter().any(|d| l.contains(d)));
    sized
        && words.iter().all(|w| {
            w.chars().any(|c| c.is_uppercase() || c.is_ascii_digit())
                || NAME_WORDS.contains(&lower(w).as_str())
                || DEVICES.iter().any(|d| lower(w).contains(d))
        })
}

/// `t` without its links: `<…>` spans and words that are URLs.
fn without_links(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    let mut depth = 0usize;
    for c in t.chars() {
        match c {
            '<' => depth += 1,
            '>' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace()
        .filter(|w| !w.starts_with("http://") && !w.starts_with("https://"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Words of a mailing list's footer line, lower case ("users mailing list",
/// Mailman's footer under its underscore rule).
const LIST_FOOTER: &[&str] = &[
    "mailing list",
    "mailinglist",
    "mailingliste",
    "mailinglijst",
    "liste de diffusion",
    "lista de correo",
    "lista di posta",
    "lista de discussão",
    "lista dyskusyjna",
    "e-postlista",
    "список рассылки",
    "listinfo",
    "unsubscribe",
];

/// Line `i` is a rule ("_____") over a mailing list's footer: one of the next
/// three non-blank lines (within [`HEADER_WINDOW`]) is a footer line.
fn is_list_footer(lines: &[&str], i: usize) -> bool {
    if !is_rule(lines[i].trim()) {
        return false;
    }
    lines
        .iter()
        .skip(i + 1)
        .take(HEADER_WINDOW)
        .filter(|l| !l.trim().is_empty())
        .take(3)
        .any(|l| {
            let l = lower(l.trim());
            l.chars().count() <= 120 && LIST_FOOTER.iter().any(|w| l.contains(w))
        })
}

/// Whether `word` stands in `text` with a space on each side (`" {word} "`).
fn spaced_in(text: &str, word: &str) -> bool {
    text.match_indices(' ').any(|(i, _)| {
        text[i + 1..]
            .strip_prefix(word)
            .is_some_and(|rest| rest.starts_with(' '))
    })
}

/// Removes markup a text conversion leaves around header words: `*`, `_` emphasis.
fn unmark(t: &str) -> std::borrow::Cow<'_, str> {
    if t.contains('*') {
        t.replace('*', "").into()
    } else {
        t.into()
    }
}

/// How many lines starting at `i` form a quote header, if they do.
fn header_span(lines: &[&str], i: usize) -> Option<usize> {
    let t = unmark(lines[i].trim());
    if is_original_separator(&t) {
        return Some(1);
    }
    if is_rule(&t) {
        // A rule right above a header block belongs to it.
        let mut j = i + 1;
        while j < lines.len() && j <= i + 3 && lines[j].trim().is_empty() {
            j += 1;
        }
        if j < lines.len() && !is_quote(lines[j]) && header_block_at(lines, j).is_some() {
            return Some(1);
        }
        return None;
    }
    if let Some(span) = header_block_at(lines, i) {
        return Some(span);
    }
    // "On … wrote:", possibly wrapped over up to [`HEADER_WRAP`] lines.
    let mut joined = String::new();
    for n in 1..=HEADER_WRAP {
        let Some(l) = lines.get(i + n - 1) else { break };
        if l.trim().is_empty()
            || (n > 1 && is_command(l))
            || (n > 1 && is_quote(l) && !angle_open(&joined))
        {
            break;
        }
        if n > 1 {
            joined.push(' ');
        }
        joined.push_str(l.trim());
        if joined.len() > MAX_HEADER_LINE {
            break;
        }
        if is_wrote_header(&joined, lines, i + n) {
            if n > 1 && !could_start_header(lines[i].trim()) {
                return None;
            }
            if n > 1 && tail_is_header(lines, i + 1, i + n) {
                // The header starts on a later line; this one is the person's.
                return None;
            }
            return Some(n);
        }
    }
    None
}

/// True when lines `from..to` (joined) are a quote header on their own.
fn tail_is_header(lines: &[&str], from: usize, to: usize) -> bool {
    let mut joined = String::new();
    for (k, l) in lines[from..to].iter().enumerate() {
        if k > 0 {
            joined.push(' ');
        }
        joined.push_str(l.trim());
        if is_wrote_header(&joined, lines, from + k + 1) && could_start_header(lines[from].trim()) {
            return true;
        }
    }
    false
}

/// The first line of a wrapped quote header starts like one: "On", "Am", "Le",
/// "El", a date, a weekday; and does not end a sentence (a sender first,
/// then a date cut after its day, "Ann <a@b> schrieb am Fr., 28.", ends with
/// the day's point).
fn could_start_header(t: &str) -> bool {
    if t.ends_with(['.', '!', '?', '。', '！', '？'])
        && !t.ends_with("Uhr.")
        && !(t.ends_with('.') && angle_address(t) && t.chars().any(|c| c.is_ascii_digit()))
    {
        return false;
    }
    let l = lower(t);
    let starts = [
        "on ", "am ", "le ", "el ", "il ", "op ", "em ", "den ", "dnia ", "w dniu ", "в ", "at ",
        "на ", "el día", "---",
    ];
    starts.iter().any(|s| l.starts_with(s))
        || t.chars().next().is_some_and(|c| c.is_ascii_digit())
        || t.starts_with('在')
        || t.chars().any(|c| c.is_ascii_digit()) && t.contains('<')
        // The sender first, the date and "wrote" on the next line (Chinese and
        // Korean Gmail): "Ann <ann@x<mailto:ann@x>>" / "于2026年12月2日周三 10:04写道："
        || t.contains('@') && t.ends_with('>')
}

/// `t` holds an address in angle brackets: "Ann <ann@x.test>".
fn angle_address(t: &str) -> bool {
    t.find('<')
        .is_some_and(|a| t[a..].find('@').is_some_and(|at| t[a + at..].contains('>')))
}

fn has_time_or_year(t: &str) -> bool {
    let b = t.as_bytes();
    let mut run = 0;
    for (k, c) in b.iter().enumerate() {
        if c.is_ascii_digit() {
            run += 1;
            if run >= 4 {
                return true;
            }
        } else {
            if *c == b':' || *c == b'.' {
                // hh:mm or hh.mm
                if run >= 1 && b.get(k + 1).is_some_and(u8::is_ascii_digit) {
                    return true;
                }
            }
            run = 0;
        }
    }
    t.contains('年')
}

/// `t` (one line, or a wrapped one joined) is a quote header such as
/// "On Mon, 2 Mar 2026 at 10:00, Ann <ann@x> wrote:". `next` is the line after it.
fn is_wrote_header(t: &str, lines: &[&str], next: usize) -> bool {
    if t.len() > MAX_HEADER_LINE {
        return false;
    }
    let t = t.trim_matches(|c: char| c == '-' || c == '*' || c.is_whitespace());
    let ends_colon = t.ends_with(':') || t.ends_with('：');
    let body = t.trim_end_matches([':', '：']).trim_end();
    let l = lower(body);
    // "napisał(a)", "написал(а)", "написав(ла)": the gender ending in Latin or Cyrillic letters.
    let stem = l
        .trim_end_matches("(a)")
        .trim_end_matches("(а)")
        .trim_end_matches("(ла)");
    let has_wrote = WROTE.iter().any(|w| {
        stem.ends_with(w)
            // "Den 15. jun. 2016 kl. 20.42 skrev Ann <a@b>:", "Am … schrieb Ann <a@b>:"
            || (ends_colon && spaced_in(&l, w))
    });
    let has_address = t.contains('@');
    let followed_by_quote = lines[next.min(lines.len())..]
        .iter()
        .find(|l| !l.trim().is_empty())
        .is_some_and(|l| is_quote(l));
    if has_wrote {
        let dated = has_time_or_year(t) || t.chars().any(|c| c.is_ascii_digit());
        let starts_on = lower(t).starts_with("on ");
        let you = l.contains("you ");
        if ends_colon && (dated || has_address || starts_on || you || followed_by_quote) {
            return true;
        }
        // Zoho: "---- On Tue, 22 Dec 2015 14:17:36 +0530 Ann <a@b> wrote ----"
        if !ends_colon && dated && (has_address || starts_on) {
            return true;
        }
    }
    // Gmail in several locales, Mail.ru and Japanese clients:
    // "2016-10-24 15:36 GMT+02:00 Ann <ann@x>:", "2026年11月20日(金) 10:00 山田太郎 <a@b>:"
    if ends_colon
        && has_address
        && (body.ends_with('>') || body.ends_with(']'))
        && has_time_or_year(body)
        && (body.chars().next().is_some_and(|c| c.is_ascii_digit())
            // "Wednesday, 17 November 2021, 3:32 PM +0300 from Ann <a@b>:" (Mail.ru)
            || body.split_whitespace().next().is_some_and(|w| w.ends_with(','))
            // mutt: "* Ann <ann@x> [2026-12-02 10:04]:"
            || bracketed_date_last(body))
    {
        return true;
    }
    false
}

/// `t` ends with a bracketed date and time, as mutt's attribution puts it
/// after the address: "Ann <ann@x> [2026-12-02 10:04]".
fn bracketed_date_last(t: &str) -> bool {
    let Some(inner) = t.strip_suffix(']') else {
        return false;
    };
    let Some(open) = inner.rfind('[') else {
        return false;
    };
    let date = &inner[open + 1..];
    !date.contains('@') && has_time_or_year(date) && t[..open].trim_end().ends_with('>')
}

/// `t` leaves an angle bracket open: a wrapped address ("Ann <ann@x<mailto:ann@x>"),
/// whose closing `>` starts the next line and is no quote marker.
fn angle_open(t: &str) -> bool {
    t.matches('<').count() > t.matches('>').count()
}

/// A line of `-`, `_` or `=` (a separator clients put above quoted headers).
fn is_rule(t: &str) -> bool {
    t.chars().count() >= 10 && t.chars().all(|c| matches!(c, '-' | '_' | '=' | '—' | ' '))
}

/// "-----Original Message-----", "---------- Forwarded message ---------",
/// "Begin forwarded message:", "*-------- Original Message --------*".
fn is_original_separator(t: &str) -> bool {
    if t.chars().count() > 80 {
        return false;
    }
    let dashed = t.starts_with("--") || t.starts_with("__") || t.starts_with("==");
    let inner = t
        .trim_matches(|c: char| matches!(c, '-' | '_' | '=' | ' ' | '*' | ':' | '：'))
        .trim();
    let l = lower(inner);
    ORIGINAL
        .iter()
        .any(|o| l == *o || (dashed && l.starts_with(o)))
        || (t.ends_with(':') && l == "begin forwarded message")
}

/// The field name of a "Field: value" line, lower case, if it has one.
fn field_name(t: &str) -> Option<String> {
    let t = unmark(t.trim());
    let colon = t.find([':', '：'])?;
    let name = t[..colon].trim();
    if name.is_empty() || name.chars().count() > 24 {
        return None;
    }
    Some(lower(name))
}

/// Lines `i..` open a header block: a From-like field, then at least two more
/// header fields within [`HEADER_WINDOW`] lines (Outlook, Apple, webmail).
/// Hotmail and some webmails put `Date:` or `Sent:` first, so any field may
/// open the block as long as a From-like field is in it. Gives the number of
/// lines the block spans.
fn header_block_at(lines: &[&str], i: usize) -> Option<usize> {
    let first = field_name(lines[i])?;
    let is_from = |n: &str| FROM_FIELDS.contains(&n);
    let is_other = |n: &str| OTHER_FIELDS.contains(&n);
    if !is_from(&first) && !is_other(&first) {
        return None;
    }
    let mut fields = 1;
    let mut has_from = is_from(&first);
    let mut prev_blank = false;
    let mut last_field = i;
    for (k, l) in lines.iter().enumerate().skip(i + 1).take(HEADER_WINDOW - 1) {
        if l.trim().is_empty() {
            if prev_blank {
                break;
            }
            prev_blank = true;
            continue;
        }
        prev_blank = false;
        if is_quote(l) {
            break;
        }
        if let Some(n) = field_name(l) {
            if is_from(&n) {
                has_from = true;
            } else if !is_other(&n) {
                continue;
            }
            fields += 1;
            last_field = k;
        }
    }
    // A field's value may wrap onto the next line ("Subject: … \n created").
    let mut end = last_field + 1;
    while end < lines.len() && end < last_field + 3 && !lines[end].trim().is_empty() {
        end += 1;
    }
    (has_from && fields >= 3).then_some(end - i)
}

/// HTML to plain lines for reply reading, in one pass: block elements end a
/// line, `<blockquote>` adds a `> ` level, `<hr>` gives a separator line,
/// `<pre>` keeps its line ends, a `<p>` (other than Outlook's margin-less
/// `MsoNormal`) has a blank line above and below; `<head>`, `<style>`,
/// `<script>` and comments are dropped; entities decoded.
pub fn html_to_lines(html: &str) -> String {
    let mut w = HtmlLines::new(html.len() / 2);
    let bytes = html.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'<' {
            if html[i..].starts_with("<!--") {
                i = match html[i + 4..].find("-->") {
                    Some(p) => i + 4 + p + 3,
                    None => bytes.len(),
                };
                continue;
            }
            let end = match html[i..].find('>') {
                Some(p) => i + p,
                None => bytes.len(),
            };
            w.tag(&html[i + 1..end.min(bytes.len())]);
            i = end + 1;
            continue;
        }
        if w.skip.is_some() {
            i += 1;
            continue;
        }
        // Text up to the next tag.
        let next = html[i..].find('<').map_or(bytes.len(), |p| i + p);
        w.text(&html[i..next]);
        i = next;
    }
    w.out
}

/// The lines `html_to_lines` writes, and where it is in the HTML.
struct HtmlLines {
    out: String,
    /// `<blockquote>` levels: a line opens with as many `> `.
    depth: usize,
    /// Inside `<head>`, `<style>`, `<script>`...: the tag that ends it.
    skip: Option<&'static str>,
    line_start: bool,
    pending_space: bool,
    /// Inside `<pre>` (Thunderbird's plain signature and quoted plain text) a
    /// line end is a line end.
    pre: usize,
    /// The last `<p>` has a blank line above and below.
    spaced_paragraph: bool,
}

impl HtmlLines {
    fn new(capacity: usize) -> HtmlLines {
        HtmlLines {
            out: String::with_capacity(capacity),
            depth: 0,
            skip: None,
            line_start: true,
            pending_space: false,
            pre: 0,
            spaced_paragraph: false,
        }
    }

    fn newline(&mut self) {
        while self.out.ends_with(' ') {
            self.out.pop();
        }
        self.out.push('\n');
        self.line_start = true;
    }

    /// Ends the line unless it is empty.
    fn end_line(&mut self) {
        if !self.line_start {
            self.newline();
        }
    }

    /// A tag (between `<` and `>`): what it opens or closes ends lines, adds
    /// quote levels, or starts a part that is skipped.
    fn tag(&mut self, tag: &str) {
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .collect();
        if let Some(s) = self.skip {
            if closing && name == s {
                self.skip = None;
            }
            return;
        }
        match name.as_str() {
            "head" | "style" | "script" | "title" | "template" if !closing => {
                self.skip = Some(match name.as_str() {
                    "head" => "head",
                    "style" => "style",
                    "script" => "script",
                    "title" => "title",
                    _ => "template",
                });
            }
            "br" => self.newline(),
            "pre" if closing => self.pre = self.pre.saturating_sub(1),
            "pre" => {
                self.pre = (self.pre + 1).min(64);
                self.end_line();
            }
            "hr" => {
                self.end_line();
                self.out.push_str(&"> ".repeat(self.depth));
                self.out.push_str("________________________________");
                self.newline();
            }
            "blockquote" => {
                self.end_line();
                if closing {
                    self.depth = self.depth.saturating_sub(1);
                } else {
                    self.depth = (self.depth + 1).min(64);
                }
            }
            "p" => self.paragraph(closing, tag),
            "div" | "tr" | "li" | "ul" | "ol" | "table" | "h1" | "h2" | "h3" | "h4" | "h5"
            | "h6" | "section" | "article" | "header" | "footer" => self.end_line(),
            _ => {}
        }
        self.pending_space = self.pending_space && !self.line_start;
    }

    /// A paragraph has a blank line above and below, as its margins show;
    /// not Outlook's (class MsoNormal, no margin: it writes empty
    /// paragraphs for its blank lines).
    fn paragraph(&mut self, closing: bool, tag: &str) {
        if !closing {
            self.spaced_paragraph = !tag
                .as_bytes()
                .windows(9)
                .any(|w| w.eq_ignore_ascii_case(b"msonormal"));
        }
        self.end_line();
        if self.spaced_paragraph && !self.out.is_empty() && !self.out.ends_with("\n\n") {
            self.out.push('\n');
        }
    }

    /// Text between tags: words separated by one space, line ends kept
    /// only inside `<pre>`.
    fn text(&mut self, text: &str) {
        for (n, segment) in text.split('\n').enumerate() {
            if n > 0 {
                if self.pre > 0 {
                    self.newline();
                } else {
                    self.pending_space = true;
                }
            }
            for (k, word) in segment.split([' ', '\t', '\r', '\u{a0}']).enumerate() {
                if k > 0 {
                    self.pending_space = true;
                }
                if !word.is_empty() {
                    self.word(word);
                }
            }
        }
        // A trailing separator is a space before the next word.
        if text.ends_with([' ', '\t', '\r', '\n']) {
            self.pending_space = true;
        }
    }

    fn word(&mut self, word: &str) {
        if self.line_start {
            self.out.push_str(&"> ".repeat(self.depth));
            self.line_start = false;
        } else if self.pending_space {
            self.out.push(' ');
        }
        self.pending_space = false;
        decode_entities(word, &mut self.out);
    }
}

/// Appends `word` with its character references decoded: every named entity
/// of HTML (`&oacute;`, `&hellip;`, `&rsquo;`...) and numeric ones (`&#243;`,
/// `&#xF3;`), by html-escape's table. A no-break space becomes a space, as
/// the whitespace between words does; what is no reference stays as written.
fn decode_entities(word: &str, out: &mut String) {
    if !word.contains('&') {
        out.push_str(word);
        return;
    }
    let from = out.len();
    html_escape::decode_html_entities_to_string(word, out);
    if out[from..].contains('\u{a0}') {
        let spaced = out[from..].replace('\u{a0}', " ");
        out.truncate(from);
        out.push_str(&spaced);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn spaced_in_is_a_search_for_the_word_between_spaces(
            text in "[ab ]{0,12}", word in "[ab ]{1,4}"
        ) {
            proptest::prop_assert_eq!(spaced_in(&text, &word), text.contains(&format!(" {word} ")));
        }
    }

    fn new_text(body: &str) -> String {
        extract(body)
    }

    #[test]
    fn gmail_and_thunderbird_headers_in_one_or_two_lines() {
        assert_eq!(
            new_text(
                "Thanks, it works.\n\nOn Mon, Mar 2, 2026 at 9:00 AM Ann <ann@x.test> wrote:\n> old\n"
            ),
            "Thanks, it works."
        );
        assert_eq!(
            new_text(
                "Fine.\n\nOn Mon, Mar 2, 2026 at 9:00 AM Ann Customer <\nann@x.test> wrote:\n\n> old\n"
            ),
            "Fine."
        );
        assert_eq!(
            new_text("Fine.\nOn 02/03/2026 09:00, Support wrote:\n> old\n"),
            "Fine."
        );
        // A line that starts like a header but is not one stays.
        assert_eq!(
            new_text(
                "On this day\n\nI wrote something.\n\nOn 2 Mar 2026, at 19:04, Ann wrote:\n\n> q"
            ),
            "On this day\n\nI wrote something."
        );
    }

    #[test]
    fn apple_mail_german_spanish_and_other_languages() {
        for (header, expected) in [
            ("On Mar 2, 2026, at 10:00, Ann <ann@x.test> wrote:", "Neu."),
            ("Am 02.03.2026 um 10:00 schrieb Ann <ann@x.test>:", "Neu."),
            (
                "Le lun. 2 mars 2026 à 10:00, Ann <ann@x.test> a écrit :",
                "Neu.",
            ),
            (
                "El lun, 2 mar 2026 a las 10:00, Ana (<ana@x.test>) escribió:",
                "Neu.",
            ),
            (
                "Il giorno lun 2 mar 2026 alle ore 10:00 Ann <ann@x.test> ha scritto:",
                "Neu.",
            ),
            (
                "Em seg., 2 de mar. de 2026 às 10:00, Ann <ann@x.test> escreveu:",
                "Neu.",
            ),
            ("Den 2 mars 2026 kl. 10:00 skrev Ann <ann@x.test>:", "Neu."),
            (
                "Op 2 mrt. 2026 om 10:00 heeft Ann <ann@x.test> het volgende geschreven:",
                "Neu.",
            ),
            (
                "2 мар. 2026 г., в 10:00, Ann <ann@x.test> написал(а):",
                "Neu.",
            ),
        ] {
            let body = format!("Neu.\n\n{header}\n\n> alt\n> alt\n");
            assert_eq!(new_text(&body), expected, "{header}");
        }
    }

    #[test]
    fn japanese_clients() {
        assert_eq!(
            new_text(
                "承知しました。\n\n2026年11月20日(金) 10:00 山田太郎 <taro@example.jp>:\n> 以前の本文\n"
            ),
            "承知しました。"
        );
        assert_eq!(
            new_text("了解です。\n\n山田太郎さんは書きました:\n> 以前の本文\n"),
            "了解です。"
        );
        assert_eq!(
            new_text(
                "確認します。\n\n-----Original Message-----\n差出人: 山田太郎 <taro@example.jp>\n送信日時: 2026年11月20日 10:00\n宛先: support@vendor.test\n件名: 障害\n\n本文\n"
            ),
            "確認します。"
        );
        assert_eq!(
            new_text(
                "確認します。\n\n差出人: 山田太郎 <taro@example.jp>\n送信日時: 2026年11月20日 10:00\n宛先: support@vendor.test\n件名: 障害\n\n本文\n"
            ),
            "確認します。"
        );
        assert_eq!(new_text("届きました。\n\niPhoneから送信\n"), "届きました。");
    }

    #[test]
    fn outlook_blocks_in_several_languages() {
        for block in [
            "-----Original Message-----\nFrom: Ann\nSent: Monday\nTo: b\nSubject: x",
            "________________________________\nFrom: Ann <a@x.test>\nSent: Monday, March 2, 2026 10:00 AM\nTo: Support\nSubject: RE: x",
            "From: Ann [mailto:a@x.test]\nSent: Monday\nTo: Support\nSubject: x",
            "*From:* Ann\n*Sent:* Monday\n*To:* Support\n*Subject:* x",
            "Von: Ann <a@x.test>\nGesendet: Montag, 2. März 2026 10:00\nAn: Support\nBetreff: x",
            "-----Ursprüngliche Nachricht-----\nVon: Ann",
            "De : Ann <a@x.test>\nEnvoyé : lundi 2 mars 2026 10:00\nÀ : Support\nObjet : x",
            "De: Ana <a@x.test>\nEnviado el: lunes, 2 de marzo de 2026 10:00\nPara: Soporte\nAsunto: x",
            "De: Ana <a@x.test>\nEnviado: lunes\nPara: Soporte\nAsunto: x",
            "Van: Ann\nVerzonden: maandag\nAan: Support\nOnderwerp: x",
            "Da: Ann\nInviato: lunedì\nA: Support\nOggetto: x",
            "De: Ana\nEnviada em: segunda-feira\nPara: Suporte\nAssunto: x",
            "Från: Ann\nSkickat: den 2 mars 2026\nTill: Support\nÄmne: x",
            "-----Mensaje original-----\nDe: Ana",
            "---------- Forwarded message ---------\nFrom: Ann",
            "Date: Mon, 2 Mar 2026 10:00\nSubject: x\nFrom: a@x.test\nTo: b@x.test",
            "-----Wiadomość oryginalna-----\nOd: Ann\nWysłano: środa\nDo: b\nDW: c\nTemat: x",
            "-----Оригінальне повідомлення-----\nВід: Ann\nНадіслано: середа\nКому: b\nТема: x",
            "________________________________\n보낸 사람: Ann\n보낸 날짜: 2026년 12월 2일\n받는 사람: b\n제목: x",
            "-----원본 메시지-----\n보낸 사람: Ann",
        ] {
            let body = format!("Here is the log.\n\n{block}\n\nold text\nmore old text\n");
            assert_eq!(new_text(&body), "Here is the log.", "{block}");
        }
    }

    #[test]
    fn mobile_and_delimited_signatures_go_and_sign_offs_stay() {
        assert_eq!(new_text("Yes.\n\nSent from my iPhone\n"), "Yes.");
        assert_eq!(new_text("Sí.\n\nEnviado desde mi iPhone\n"), "Sí.");
        assert_eq!(
            new_text("Yes.\n\nGet Outlook for iOS<https://aka.ms/o0ukef>\n"),
            "Yes."
        );
        assert_eq!(
            new_text(
                "It failed again.\n\nThanks,\nAnn\n\n-- \nAnn Customer\nACME Ltd\n+1 555 0100\n"
            ),
            "It failed again.\n\nThanks,\nAnn"
        );
        // A dash in the middle of a line is no delimiter.
        assert_eq!(new_text("a -- b\nc"), "a -- b\nc");
    }

    #[test]
    fn a_mobile_signature_names_a_device_and_prose_with_its_words_stays() {
        for sig in [
            "Sent from my Samsung Galaxy smartphone.",
            "Sent via the Samsung Galaxy S23, an AT&T 5G smartphone",
            "Надіслано з iPhone",
            "iPhone에서 보냄",
            "Galaxy S23에서 보냄",
            "iPhoneから送信",
        ] {
            assert_eq!(new_text(&format!("Ok.\n\n{sig}\n")), "Ok.", "{sig}");
        }
        for prose in [
            "Sent from my work account the export fails, from home it works.",
            "Von meinem Laptop aus funktioniert die Seite übrigens gar nicht.",
            "Envoyé de mon bureau hier, votre courrier est arrivé en retard.",
        ] {
            let body = format!("Hello,\n\n{prose}\n\nAnn\n\nSent from my iPhone\n");
            assert_eq!(
                new_text(&body),
                format!("Hello,\n\n{prose}\n\nAnn"),
                "{prose}"
            );
        }
    }

    #[test]
    fn list_footers_mutt_and_wrapped_addresses_end_the_text() {
        assert_eq!(
            new_text(
                "Same here.\n_______________________________________________\nusers mailing list\nusers@lists.example.org\n"
            ),
            "Same here."
        );
        // A rule that is no footer stays.
        assert_eq!(new_text("a\n______________\nb"), "a\n______________\nb");
        assert_eq!(
            new_text("* Ann <ann@x.test> [2026-12-02 10:04]:\n> q?\n\nYes.\n"),
            "Yes."
        );
        // The closing `>` of a wrapped address opens the next line: no quote.
        assert_eq!(
            new_text(
                "Спасибо.\n\nср, 2 дек. 2026 г. в 10:04, Ann <ann@x.test<mailto:ann@x.test>\n>:\n\n> old\n"
            ),
            "Спасибо."
        );
        // The sender on one line, the date and "wrote" on the next (Chinese Gmail).
        assert_eq!(
            new_text(
                "谢谢。\n\n客服 <s@x.test<mailto:s@x.test>>\n于2026年12月2日周三 10:04写道：\n\n> 旧\n"
            ),
            "谢谢。"
        );
        for header in [
            "2026년 12월 2일 (수) 오전 10:04, 고객지원 <s@x.test>님이 작성:",
            "2026-12-02 오전 10:04에 고객지원 이(가) 쓴 글:",
            "02.12.2026 10:04, Служба поддержки пишет:",
            "02.12.2026 10:04, Служба підтримки пише:",
            "2 груд. 2026 р. о 10:04 Ann <s@x.test> написав(ла):",
            "Wiadomość napisana przez Ann <s@x.test> w dniu 02.12.2026, o godz. 10:04:",
        ] {
            assert_eq!(
                new_text(&format!("Neu.\n\n{header}\n> alt\n")),
                "Neu.",
                "{header}"
            );
        }
    }

    #[test]
    fn quoting_top_bottom_and_interleaved() {
        // Bottom posting under a header: the header and its quote go.
        assert_eq!(
            new_text("On Mon, 2 Mar 2026 at 10:00, Ann <a@x.test> wrote:\n> question?\n\nanswer\n"),
            "answer"
        );
        // Interleaved: the person's lines between quotes stay with their context.
        assert_eq!(
            new_text(
                "> first question?\nfirst answer\n\n> second question?\nsecond answer\n\n> rest of the old mail\n"
            ),
            "> first question?\nfirst answer\n\n> second question?\nsecond answer"
        );
        assert_eq!(
            new_text("On Mon, 2 Mar 2026, Ann <a@x.test> wrote:\n> q1\na1\n> q2\na2\n> tail\n"),
            "> q1\na1\n> q2\na2"
        );
        // A header pasted on top of the text: the header goes, the text stays.
        assert_eq!(
            new_text(
                "Od: Jan <jan@x.test>\nWysłano: środa, 1 marca 2023 12:00\nDo: Anna <anna@x.test>\nTemat: Re: Test\n\nCześć Anno,\n\nJan\n\nDnia 28 lutego 2023 14:00 Anna <anna@x.test> napisał(a):\n> Cześć\n"
            ),
            "Cześć Anno,\n\nJan"
        );
        assert_eq!(
            new_text(
                "Ok.\n\nWednesday, 17 November 2021, 3:32 PM +0300 from john@x.test <john@x.test>:\n\nold\n"
            ),
            "Ok."
        );
        // Only history: the customer's new text is what it quotes (issue 23).
        assert_eq!(new_text("> only a quote\n"), "only a quote");
        assert_eq!(new_text(""), "");
    }

    #[test]
    fn issue_23_inline_answers_after_own_text_keep_every_answer() {
        let body = "Hi,\n\nOn Mon, 2 Mar 2026 at 10:00, Ann <a@x.test> wrote:\n> q1?\n\na1\n\n> q2?\na2\n\n> tail\n";
        assert_eq!(new_text(body), "Hi,\n\n> q1?\n\na1\n\n> q2?\na2");
        // Top posting: the only quote is at the bottom, the text ends there.
        let top = "Hi,\n\nOn Mon, 2 Mar 2026 at 10:00, Ann <a@x.test> wrote:\n> q1?\n> q2?\n";
        assert_eq!(new_text(top), "Hi,");
        // An unquoted (Outlook) history is no answer, whatever follows it.
        let outlook = "Done.\n\nFrom: Ann\nSent: Monday\nTo: b\nSubject: x\n\nold\n";
        assert_eq!(new_text(outlook), "Done.");
        // Staff replies relay only what is above the quoted notification.
        assert_eq!(staff(body), "Hi,");
    }

    #[test]
    fn issue_23_quote_headers_wrapped_over_several_lines_in_each_language() {
        let addr = "s@x.test";
        // The date, the name, a `<mailto:…>` address and "wrote" each on its line.
        for (date, wrote) in [
            ("On Wed, Dec 2, 2026 at 10:04 AM", "wrote:"),
            ("Am Mi., 2. Dez. 2026 um 10:04 Uhr", "schrieb:"),
            ("Le mer. 2 déc. 2026 à 10:04,", "a écrit :"),
            ("El mié, 2 dic 2026 a las 10:04,", "escribió:"),
            ("Il giorno mer 2 dic 2026 alle ore 10:04", "ha scritto:"),
            ("Em qua., 2 de dez. de 2026 às 10:04,", "escreveu:"),
            ("Op wo 2 dec. 2026 om 10:04", "schreef:"),
            ("Den ons 2 dec. 2026 kl 10:04", "skrev:"),
            ("W dniu 2.12.2026 o 10:04", "napisał(a):"),
            ("2026年12月2日(水) 10:04", "のメール:"),
        ] {
            let header = format!("{date}\nSupport Desk\n<{addr}<mailto:{addr}>>\n{wrote}");
            let body = format!("Neu.\n\n{header}\n\n> alt\n");
            assert_eq!(new_text(&body), "Neu.", "{header}");
            // The name and address on the date's line, "wrote" alone on the next.
            let header = format!("{date} \"Support Desk\" <{addr}>\n{wrote}");
            let body = format!("Neu.\n\n{header}\n\n> alt\n");
            assert_eq!(new_text(&body), "Neu.", "{header}");
        }
        // Date first with a zone, the address wrapped (Gmail in every locale).
        for name in [
            "Support Desk",
            "Kundendienst",
            "Service client",
            "Soporte",
            "サポート窓口",
        ] {
            for header in [
                format!("2016-03-03 17:21 GMT+01:00 {name} <\n{addr}>:"),
                format!("2016-03-03 17:21 GMT+01:00 {name} <{addr}\n<mailto:{addr}>>:"),
            ] {
                let body = format!("Neu.\n\n{header}\n\n> alt\n");
                assert_eq!(new_text(&body), "Neu.", "{header}");
            }
        }
        // The sender first, broken inside the date.
        for header in [
            "Kundendienst <s@x.test> schrieb am Fr., 28.\nApr. 2017 um 11:53 Uhr:",
            "Klantenservice <s@x.test> schreef op vr 28\napr. 2017 om 11:53:",
        ] {
            let body = format!("Neu.\n\n{header}\n\n> alt\n");
            assert_eq!(new_text(&body), "Neu.", "{header}");
        }
    }

    #[test]
    fn issue_23_a_mail_that_is_only_a_quote_gives_the_quoted_text() {
        let body = "On Mon, 2 Mar 2026 at 10:00, Ann <a@x.test> wrote:\n> Hello,\n>\n> the part ships.\n> > older\n";
        assert_eq!(new_text(body), "Hello,\n\nthe part ships.");
        let forward = "Begin forwarded message:\n\n> From: Ann <a@x.test>\n> Date: 2 March 2026\n> To: Bob <b@x.test>\n> Subject: x\n>\n> The disk failed.\n";
        assert_eq!(new_text(forward), "The disk failed.");
        // A staff reply that is only the quoted notification relays nothing.
        assert_eq!(staff(body), "");
    }

    #[test]
    fn issue_23_sent_from_is_a_signature_by_its_shape() {
        for sig in [
            "Sent from TypeApp<https://www.typeapp.com/r?b=1>",
            "Sent from Mail<https://go.microsoft.com/fwlink/?LinkId=550986> for Windows 10",
            "Sent from my iPhone",
            "Sent from Yahoo Mail on Android",
            "Enviado desde mi iPhone",
            "Envoyé de mon iPad",
            "Von meinem iPhone gesendet",
            "Sent from my BlackBerry 10 smartphone on the Verizon Wireless network.",
        ] {
            assert_eq!(new_text(&format!("Ok.\n\n{sig}\n")), "Ok.", "{sig}");
        }
        for prose in [
            "Sent from my desk, which is easier than my phone.",
            "Sent from my iPad while on the train, so I cannot open it.",
            "Sent from home, the printer works there.",
            "Enviado desde mi portátil Android porque el móvil no carga.",
            "Envoyé de mon iPhone en attendant le technicien.",
            "Von meinem iPhone aus geht der Anhang nicht auf.",
        ] {
            let body = format!("Hello,\n\n{prose}\n\nAnn\n\nSent from my iPhone\n");
            assert_eq!(
                new_text(&body),
                format!("Hello,\n\n{prose}\n\nAnn"),
                "{prose}"
            );
        }
    }

    #[test]
    fn issue_23_a_line_of_invisible_marks_is_no_text() {
        for mark in [
            "\u{1427}",
            "\u{200b}",
            "\u{feff}",
            "\u{200c}\u{200d}",
            " \u{2060} ",
        ] {
            let body = format!(
                "Thanks.\n\nAnn\n{mark}\n\nOn Mon, 2 Mar 2026, Ann <a@x.test> wrote:\n> q\n"
            );
            assert_eq!(new_text(&body), "Thanks.\n\nAnn", "{mark:?}");
            assert_eq!(new_text(&format!("Ok.\n{mark}\n")), "Ok.", "{mark:?}");
        }
        // A mark inside a line of text is the text's.
        assert_eq!(new_text("a\u{200b}b\n"), "a\u{200b}b");
    }

    #[test]
    fn html_blockquote_and_hr_become_quotes_and_separators() {
        let html = "<div>Hi. I am fine.<div><br></div><div>Thanks,</div><div>Alex<hr>Date: Thu, 26 Jun 2014 13:53:45 +0400<br>Subject: Test<br>From: a@x.test<br>To: b@x.test<br><br>Hello! How are you?</div></div>";
        assert_eq!(extract_html(html), "Hi. I am fine.\n\nThanks,\nAlex");
        let gmail = "<div>Hello &amp; welcome</div><div class=\"gmail_quote\">On Mon, Apr 2, 2012 at 6:26 PM, Megan &lt;<a href=\"mailto:m@x.test\">m@x.test</a>&gt; wrote:<br><blockquote>Hi<br></blockquote></div>";
        assert_eq!(extract_html(gmail), "Hello & welcome");
        assert!(html_to_lines("<style>p{}</style><!-- c --><p>x</p>").trim() == "x");
    }

    #[test]
    fn an_ampersand_before_multibyte_text_is_no_entity() {
        // Fuzz finding: the entity look-ahead cut a character in two and panicked.
        assert_eq!(extract_html("<p>&あいうえ; &amp;</p>"), "&あいうえ; &");
        assert_eq!(extract_html("&é‚à±ñ¿øå∂ƒ©"), "&é‚à±ñ¿øå∂ƒ©");
    }

    fn staff(body: &str) -> String {
        extract_as(body, Mode::Staff)
    }

    #[test]
    fn customer_mode_drops_the_signature_staff_mode_keeps_it_both_drop_mobile_footers() {
        let body = "The disk ships today.\n\nThanks,\nSam\n\n-- \nSam Ortiz\nSupport Engineer\n+1 408 555 0190\n\nOn Wed, Dec 2, 2026 at 10:04 AM Support <s@x.test> wrote:\n> old\n";
        assert_eq!(extract(body), "The disk ships today.\n\nThanks,\nSam");
        assert_eq!(
            staff(body),
            "The disk ships today.\n\nThanks,\nSam\n\n-- \nSam Ortiz\nSupport Engineer\n+1 408 555 0190"
        );
        let mobile = "On my way.\n\nAlex\n\nSent from my iPhone\n\n> On 2 Dec 2026, at 18:04, Support <s@x.test> wrote:\n>\n> old\n";
        assert_eq!(extract(mobile), "On my way.\n\nAlex");
        assert_eq!(staff(mobile), "On my way.\n\nAlex");
        assert_eq!(
            staff("Ok.\n\nGet Outlook for iOS<https://aka.ms/o0ukef>\n"),
            "Ok."
        );
        // A plain signature block (no delimiter) is text in both modes.
        let block = "Done.\n\nSam Ortiz\nSupport Engineer\n\nFrom: Support <s@x.test>\nSent: Monday\nTo: Sam\nSubject: x\n\nold\n";
        assert_eq!(extract(block), staff(block));
        // A mailing list's footer goes in both modes.
        let list = "Same here.\n\n-- \nAnn\n_______________________________________________\nusers mailing list\nusers@lists.example.org\n";
        assert_eq!(staff(list), "Same here.\n\n-- \nAnn");
        assert_eq!(extract(list), "Same here.");
    }

    #[test]
    fn staff_mode_keeps_a_signature_under_a_wholly_quoted_history_only() {
        // Thunderbird's and mutt's default: the signature under the quote.
        let under = "Please send the log.\n\nJonas\n\nOn 12/2/26 10:04 AM, Support wrote:\n> New ticket\n>\n> old\n\n-- \nJonas Weber\n+1 408 555 0142\n";
        assert_eq!(
            staff(under),
            "Please send the log.\n\nJonas\n\n-- \nJonas Weber\n+1 408 555 0142"
        );
        assert_eq!(extract(under), "Please send the log.\n\nJonas");
        // Under an unquoted (Outlook) history a `-- ` block may be the quoted mail's own.
        let outlook = "Done.\n\n-----Original Message-----\nFrom: Ann\nSent: Monday\nTo: b\nSubject: x\n\nold\n-- \nAnn\n";
        assert_eq!(staff(outlook), "Done.");
        // Text after the quote is no signature.
        let more =
            "Done.\n\nOn 12/2/26 10:04 AM, Support wrote:\n> old\n\n-- \nJonas\n> more quote\n";
        assert_eq!(staff(more), "Done.");
        // A signature alone is nothing written.
        assert_eq!(
            staff("-- \nJonas\n\nOn 12/2/26 10:04 AM, Support wrote:\n> old\n"),
            ""
        );
        assert_eq!(
            staff("On 12/2/26 10:04 AM, Support wrote:\n> old\n\n-- \nJonas\n"),
            ""
        );
    }

    #[test]
    fn staff_mode_drops_every_quote_and_keeps_interleaved_answers_in_order() {
        let body = "* Support <s@x.test> [2026-12-02 10:04]:\n> Tier: gold\n> Hello, the pool is degraded.\nWhich disk?\n> Serial IX-1.\n\nThat is the M40.\n\n> rest\n\n-- \nPriya\n";
        assert_eq!(staff(body), "Which disk?\n\nThat is the M40.\n\n-- \nPriya");
        assert_eq!(
            extract(body),
            "> Tier: gold\n> Hello, the pool is degraded.\nWhich disk?\n> Serial IX-1.\n\nThat is the M40."
        );
    }

    #[test]
    fn command_lines_are_text_one_a_line_at_the_top() {
        // Never a quote header, nor part of one, nor a mobile signature.
        assert_eq!(
            staff("#close\n#note iPhoneから送信\n\nDone.\n"),
            "#close\n#note iPhoneから送信\n\nDone."
        );
        assert_eq!(
            staff("#note On Mon, 2 Mar 2026 at 10:00, Dana <d@x.test> wrote:\n> q\nDone.\n"),
            "#note On Mon, 2 Mar 2026 at 10:00, Dana <d@x.test> wrote:\n\nDone."
        );
        assert_eq!(
            staff("#severity 1\nOn Mon, 2 Mar 2026 at 10:00, Dana <d@x.test>\nwrote:\n> q\n"),
            "#severity 1"
        );
        // Only commands: the text is the commands.
        assert_eq!(
            staff("#close\n\nOn Mon, 2 Mar 2026 at 10:00, Support <s@x.test> wrote:\n> old\n"),
            "#close"
        );
        // Blank lines between the commands at the top go; the commands stay as written.
        assert_eq!(
            staff("#status waiting_customer\n\n#assign marta\n\nHello,\n\n#not a command here\n"),
            "#status waiting_customer\n#assign marta\n\nHello,\n\n#not a command here"
        );
        // HTML clients: paragraphs, divs and breaks give one line each.
        for html in [
            "<p>#close</p><p>#note called&nbsp;Dana</p><p>Thanks,<br>Sam</p>",
            "<div dir=\"ltr\"><div>#close</div><div>#note called Dana</div><div><br></div><div>Thanks,</div><div>Sam</div></div>",
            "<p class=MsoNormal>#close<o:p></o:p></p><p class=MsoNormal>#note called Dana<o:p></o:p></p><p class=MsoNormal><o:p>&nbsp;</o:p></p><p class=MsoNormal>Thanks,<o:p></o:p></p><p class=MsoNormal>Sam<o:p></o:p></p>",
            "<div>#close<br>#note called Dana<br><br>Thanks,<br>Sam</div>",
        ] {
            assert_eq!(
                extract_html_as(html, Mode::Staff),
                "#close\n#note called Dana\n\nThanks,\nSam",
                "{html}"
            );
        }
    }

    #[test]
    fn html_pre_keeps_its_lines_and_paragraphs_are_spaced() {
        let tb = "<p>Hello,</p><p>the disk ships today.</p><pre class=\"moz-signature\" cols=\"72\">-- \nJonas Weber\n+1 408 555 0142</pre><div class=\"moz-cite-prefix\">On 12/2/26 10:04 AM, Support wrote:<br></div><blockquote type=\"cite\"><pre class=\"moz-quote-pre\" wrap=\"\">New ticket\nTier: gold\n</pre></blockquote>";
        assert_eq!(
            extract_html_as(tb, Mode::Staff),
            "Hello,\n\nthe disk ships today.\n\n-- \nJonas Weber\n+1 408 555 0142"
        );
        assert_eq!(extract_html(tb), "Hello,\n\nthe disk ships today.");
        assert_eq!(
            html_to_lines("<blockquote><pre>a\nb</pre></blockquote>").trim(),
            "> a\n> b"
        );
    }

    #[test]
    fn huge_and_pathological_input_is_linear_and_bounded() {
        // Many candidate header starts and quote levels: each line is looked at a bounded number of times.
        let line = "On 2 Mar 2026 at 10:00 From: To: Subject: wrote\n> > > > x\n";
        let big = line.repeat(200_000);
        let t0 = std::time::Instant::now();
        let out = extract(&big);
        assert!(out.len() <= MAX_INPUT);
        let took = t0.elapsed();
        assert!(took.as_secs() < 10, "{took:?}");
        let out = extract_as(&big, Mode::Staff);
        assert!(out.len() <= MAX_INPUT);
        let html = "<div><blockquote>".repeat(200_000);
        assert!(extract_html(&html).is_empty());
        let pre = "<pre>x\n".repeat(200_000);
        assert!(extract_html_as(&pre, Mode::Staff).len() <= MAX_INPUT);
    }
}
