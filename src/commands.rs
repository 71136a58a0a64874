//! The commands staff write at the top of a reply (`#close`, `#status waiting_customer`, `#note ...`): their syntax, parsed before any text is relayed.
//!
//! Syntax, as `docs/staff.md` documents it: each command is a line of its
//! own at the top of the new text, before any prose; blank lines between
//! them are allowed; the name is case-insensitive. The first line that does
//! not start with `#` ends the commands, and everything from there on is
//! prose (a `#` line further down is prose too). `#note` followed by more
//! commands is the rest of its line; the last command, it takes the rest of
//! its line and every line after it, so nothing after it is relayed. A line starting with `#` and a letter that is not a command, or a
//! command with wrong arguments, is an error: nothing of the mail is done.
//! `#merge N` ends the commands (nothing may follow it); `#open` is for a
//! new mail that names no ticket (a forward, or a member's own text).

use crate::model::{RmaVerb, TicketStatus, Tracking};
use std::fmt;

/// One staff command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `#close`, `#reopen`, `#status STATE`.
    Status { to: TicketStatus },
    /// `#severity N`.
    Severity { level: u8 },
    /// `#assign NAME`: a staff member of the `[staff.members]` table.
    Assign { to: String },
    /// `#note TEXT`: an internal note, never relayed.
    Note { text: String },
    /// `#rma approve|issue|received|returned [PART]`,
    /// `#rma shipped [PART] [CARRIER TRACKING]`.
    Rma {
        step: RmaVerb,
        part: Option<String>,
        tracking: Option<Tracking>,
    },
    /// `#merge N [force]`: the ticket the mail is about is merged into ticket N.
    Merge { into: i64, force: bool },
    /// `#open [ADDRESS]`: a new ticket, for the sender of the forwarded
    /// mail, or for ADDRESS with the member's text as its first answer.
    Open { to: Option<String> },
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Status {
                to: TicketStatus::Closed,
            } => f.write_str("#close"),
            Command::Status { to } => write!(f, "#status {to}"),
            Command::Severity { level } => write!(f, "#severity {level}"),
            Command::Assign { to } => write!(f, "#assign {to}"),
            Command::Note { .. } => f.write_str("#note"),
            Command::Rma {
                step,
                part,
                tracking,
            } => {
                write!(f, "#rma {}", step.as_str())?;
                if let Some(p) = part {
                    write!(f, " {p}")?;
                }
                match tracking {
                    Some(t) => write!(f, " {t}"),
                    None => Ok(()),
                }
            }
            Command::Merge { into, force } => {
                write!(f, "#merge {into}{}", if *force { " force" } else { "" })
            }
            Command::Open { to: Some(to) } => write!(f, "#open {to}"),
            Command::Open { to: None } => f.write_str("#open"),
        }
    }
}

/// A mail's commands and the text left to relay.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Parsed {
    pub commands: Vec<Command>,
    /// The prose after the commands (empty when the mail is commands only).
    pub text: String,
}

/// A command line that cannot be run: the line (1-based in the new text), as written, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandError {
    pub line_no: usize,
    pub line: String,
    pub error: String,
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: `{}`: {}", self.line_no, self.line, self.error)
    }
}

/// What each command looks like, for error messages and the notification.
pub const SYNTAX: &str = "#close, #reopen, #status open|waiting_customer|waiting_staff|closed, \
#severity N, #assign NAME, #note TEXT, #rma approve|issue|received|returned [PART], \
#rma shipped [PART] [CARRIER TRACKING], #merge N [force], #open [ADDRESS]";

/// Whether `line` is meant as a command: `#` and then a letter (`#1` or
/// `# heading` are prose).
fn is_command_line(line: &str) -> bool {
    let mut c = line.trim_start().chars();
    c.next() == Some('#') && c.next().is_some_and(|c| c.is_alphabetic())
}

/// An address as `#open` takes it: `name@domain`, in angle brackets or
/// not. One plain address only: a local part of letters, digits and
/// `.!#$%&'*+/=?^_`{|}~-` (no quoted one, which could spell one of our own
/// or a member's addresses another way), a domain of labels.
fn is_address(a: &str) -> bool {
    let a = a
        .strip_prefix('<')
        .and_then(|a| a.strip_suffix('>'))
        .unwrap_or(a);
    let local_ok = |c: char| c.is_ascii_alphanumeric() || "._!#$%&'*+/=?^`{|}~-".contains(c);
    let label_ok = |l: &str| {
        !l.is_empty()
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    a.split_once('@').is_some_and(|(l, d)| {
        !l.is_empty()
            && l.chars().all(local_ok)
            && !l.starts_with('.')
            && !l.ends_with('.')
            && !l.contains("..")
            && d.contains('.')
            && d.split('.').all(label_ok)
    })
}

/// `#rma STEP ...`: the step, then the part, then (for `shipped`) the
/// carrier and tracking number: one word is the part, two the carrier and
/// number, three all of them.
fn rma(words: &[&str]) -> Result<Command, String> {
    let step = match words.first().and_then(|w| RmaVerb::parse(w)) {
        Some(v) => v,
        None => {
            return Err(
                "#rma takes a step (approve, issue, shipped, received or returned), and optionally the part"
                    .into(),
            );
        }
    };
    let part = |p: &str| Some(p.to_string());
    let tracking = |c: &str, n: &str| {
        Some(Tracking {
            carrier: c.to_string(),
            number: n.to_string(),
        })
    };
    let (part, tracking) = match (step, &words[1..]) {
        (_, []) => (None, None),
        (_, [p]) => (part(p), None),
        (RmaVerb::Shipped, [c, n]) => (None, tracking(c, n)),
        (RmaVerb::Shipped, [p, c, n]) => (part(p), tracking(c, n)),
        (RmaVerb::Shipped, _) => {
            return Err(
                "#rma shipped takes at most the part, the carrier and the tracking number".into(),
            );
        }
        _ => return Err("#rma takes at most one part after the step".into()),
    };
    Ok(Command::Rma {
        step,
        part,
        tracking,
    })
}

/// `#merge N [force]`.
fn merge(words: &[&str]) -> Result<Command, String> {
    let usage = "#merge takes the ticket to merge into, and optionally `force`: #merge 12 force";
    let (n, force) = match words {
        [n] => (n, false),
        [n, f] if f.eq_ignore_ascii_case("force") => (n, true),
        _ => return Err(usage.into()),
    };
    match n.trim_start_matches('#').parse::<i64>() {
        Ok(into) if into > 0 => Ok(Command::Merge { into, force }),
        _ => Err(format!("`{n}` is not a ticket number")),
    }
}

/// `#open [ADDRESS]`.
fn open(words: &[&str]) -> Result<Command, String> {
    match words {
        [] => Ok(Command::Open { to: None }),
        [a] if is_address(a) => Ok(Command::Open {
            to: Some(
                a.strip_prefix('<')
                    .and_then(|a| a.strip_suffix('>'))
                    .unwrap_or(a)
                    .to_ascii_lowercase(),
            ),
        }),
        _ => {
            Err("#open takes nothing (a forwarded mail's sender), or the customer's address".into())
        }
    }
}

/// Reads the commands at the top of `text` (a staff reply's new text).
pub fn parse(text: &str) -> Result<Parsed, CommandError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut commands = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let raw = lines[i];
        let line = raw.trim();
        if line.is_empty() {
            i += 1;
            continue;
        }
        if !is_command_line(line) {
            break;
        }
        let err = |error: String| CommandError {
            line_no: i + 1,
            line: line.to_string(),
            error,
        };
        let body = &line[1..];
        let (name, args) = match body.split_once(char::is_whitespace) {
            Some((n, a)) => (n, a.trim()),
            None => (body, ""),
        };
        let words: Vec<&str> = args.split_whitespace().collect();
        let none = |c: Command| {
            if words.is_empty() {
                Ok(c)
            } else {
                Err(err(format!("#{name} takes nothing after it")))
            }
        };
        let cmd = match name.to_ascii_lowercase().as_str() {
            "close" => none(Command::Status {
                to: TicketStatus::Closed,
            })?,
            "reopen" => none(Command::Status {
                to: TicketStatus::Open,
            })?,
            "status" => match words.as_slice() {
                [s] => match TicketStatus::parse(&s.to_ascii_lowercase()) {
                    Some(to) => Command::Status { to },
                    None => {
                        return Err(err(format!(
                            "`{s}` is not a state: open, waiting_customer, waiting_staff or closed"
                        )));
                    }
                },
                _ => {
                    return Err(err(
                        "#status takes one state: open, waiting_customer, waiting_staff or closed"
                            .into(),
                    ));
                }
            },
            "severity" => match words.as_slice() {
                [n] => match n.parse::<u8>() {
                    Ok(level) => Command::Severity { level },
                    Err(_) => return Err(err(format!("`{n}` is not a severity number"))),
                },
                _ => return Err(err("#severity takes one number, such as #severity 2".into())),
            },
            "assign" => match words.as_slice() {
                [n] => Command::Assign { to: n.to_string() },
                _ => {
                    return Err(err(
                        "#assign takes one staff member's name from [staff.members]".into(),
                    ));
                }
            },
            "note" => {
                // Followed by more commands: the note is its own line. Else
                // it is the rest of the line and every line after it.
                let next = lines[i + 1..].iter().find(|l| !l.trim().is_empty());
                let text = if next.is_some_and(|l| is_command_line(l)) {
                    args.to_string()
                } else {
                    let mut note = vec![args];
                    note.extend(lines[i + 1..].iter().copied());
                    note.join("\n").trim().to_string()
                };
                if text.is_empty() {
                    return Err(err(
                        "#note needs the note's text, on its line or the lines after it".into(),
                    ));
                }
                if next.is_some_and(|l| is_command_line(l)) {
                    Command::Note { text }
                } else {
                    commands.push(Command::Note { text });
                    i = lines.len();
                    continue;
                }
            }
            "rma" => rma(&words).map_err(err)?,
            "merge" => merge(&words).map_err(err)?,
            "open" => open(&words).map_err(err)?,
            other => {
                return Err(err(format!(
                    "`#{other}` is not a command; the commands are {SYNTAX}"
                )));
            }
        };
        let clash = |a: &Command, b: &Command| {
            matches!(
                (a, b),
                (Command::Status { .. }, Command::Status { .. })
                    | (Command::Severity { .. }, Command::Severity { .. })
                    | (Command::Assign { .. }, Command::Assign { .. })
            )
        };
        if let Some(Command::Merge { .. }) = commands.last() {
            return Err(err(
                "#merge must be the last command: the ticket is closed by it".into(),
            ));
        }
        let once = |c: &Command| matches!(c, Command::Merge { .. } | Command::Open { .. });
        if once(&cmd) && commands.iter().any(once) {
            return Err(err(
                "#merge and #open go once in a mail, and not together".into()
            ));
        }
        if commands.iter().any(|c| clash(c, &cmd)) {
            return Err(err(format!(
                "a second {} in one mail: say it once",
                match cmd {
                    Command::Status { .. } => "change of state",
                    Command::Severity { .. } => "#severity",
                    _ => "#assign",
                }
            )));
        }
        commands.push(cmd);
        i += 1;
    }
    let text = lines[i.min(lines.len())..].join("\n").trim().to_string();
    Ok(Parsed { commands, text })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Parsed {
        parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    #[test]
    fn every_command_parses() {
        let p = ok("#close\n#severity 1\n#assign alice\n#rma approve\n\nThanks, done.\n");
        assert_eq!(
            p.commands,
            vec![
                Command::Status {
                    to: TicketStatus::Closed
                },
                Command::Severity { level: 1 },
                Command::Assign { to: "alice".into() },
                Command::Rma {
                    step: RmaVerb::Approve,
                    part: None,
                    tracking: None
                },
            ]
        );
        assert_eq!(p.text, "Thanks, done.");
        assert_eq!(
            ok("#reopen").commands,
            vec![Command::Status {
                to: TicketStatus::Open
            }]
        );
        assert_eq!(
            ok("  #STATUS Waiting_Customer\nPlease send the log.").commands,
            vec![Command::Status {
                to: TicketStatus::WaitingCustomer
            }]
        );
        assert_eq!(
            ok("#rma issue ada0\n#rma received").commands,
            vec![
                Command::Rma {
                    step: RmaVerb::Issue,
                    part: Some("ada0".into()),
                    tracking: None
                },
                Command::Rma {
                    step: RmaVerb::Received,
                    part: None,
                    tracking: None
                },
            ]
        );
    }

    #[test]
    fn a_note_takes_the_rest_of_the_mail_and_nothing_is_relayed() {
        let p = ok("#close\n#note replaced under warranty,\nsee RMA 7.\n");
        assert_eq!(
            p.commands[1],
            Command::Note {
                text: "replaced under warranty,\nsee RMA 7.".into()
            }
        );
        assert_eq!(p.text, "");
        let p = ok("#note\ncustomer called, will send logs\n");
        assert_eq!(
            p.commands,
            vec![Command::Note {
                text: "customer called, will send logs".into()
            }]
        );
        // A note followed by commands is its own line, and they run too.
        let p = ok("#note called Dana, the disk was unseated\n#close\n");
        assert_eq!(
            p.commands,
            vec![
                Command::Note {
                    text: "called Dana, the disk was unseated".into()
                },
                Command::Status {
                    to: TicketStatus::Closed
                }
            ]
        );
        assert_eq!(parse("#note\n#close").unwrap_err().line_no, 1);
    }

    #[test]
    fn commands_after_prose_are_prose() {
        let p = ok("Hello Dana,\n#close\nthe fix is in 24.10.1.\n");
        assert!(p.commands.is_empty());
        assert_eq!(p.text, "Hello Dana,\n#close\nthe fix is in 24.10.1.");
        // `#1` and `# heading` are not commands.
        let p = ok("#1 cause: the cable.\n");
        assert!(p.commands.is_empty());
        assert_eq!(ok("# Steps\n1. reboot").commands, vec![]);
    }

    #[test]
    fn malformed_and_unknown_commands_name_their_line() {
        for (text, line_no, says) in [
            ("#clsoe\nThanks", 1, "is not a command"),
            ("#close\n\n#severity high", 3, "not a severity number"),
            ("#severity", 1, "takes one number"),
            ("#status pending", 1, "is not a state"),
            ("#status", 1, "takes one state"),
            ("#close now", 1, "takes nothing after it"),
            ("#assign", 1, "one staff member"),
            ("#assign alice bob", 1, "one staff member"),
            ("#rma", 1, "takes a step"),
            ("#rma ship", 1, "takes a step"),
            ("#rma issue a b", 1, "at most one part"),
            (
                "#rma shipped a UPS 1Z 9",
                1,
                "at most the part, the carrier",
            ),
            ("#merge", 1, "#merge takes the ticket"),
            ("#merge twelve", 1, "not a ticket number"),
            ("#merge 12 now", 1, "#merge takes the ticket"),
            ("#merge 12\n#close", 2, "must be the last command"),
            ("#open\n#merge 3", 2, "not together"),
            ("#open dana", 1, "the customer's address"),
            ("#open a@b.example c@d.example", 1, "the customer's address"),
            // One plain address: no quoted local part (`"support"@` is our
            // own address read another way), no second address or bracket.
            ("#open \"support\"@acme.test", 1, "the customer's address"),
            (
                "#open a@b.example<c@d.example>",
                1,
                "the customer's address",
            ),
            (
                "#open <a@b.example>,c@d.example",
                1,
                "the customer's address",
            ),
            ("#open a@b@c.example", 1, "the customer's address"),
            ("#open a@b.example\u{0}", 1, "the customer's address"),
            ("#open a(x)@b.example", 1, "the customer's address"),
            ("#note", 1, "needs the note's text"),
            ("#close\n#reopen", 2, "second change of state"),
            ("#severity 1\n#severity 2", 2, "second #severity"),
        ] {
            let e = parse(text).expect_err(text);
            assert_eq!(e.line_no, line_no, "{text:?}: {e}");
            assert!(e.error.contains(says), "{text:?}: {e}");
            assert_eq!(e.line, text.lines().nth(line_no - 1).unwrap().trim());
        }
    }

    #[test]
    fn every_rma_step_parses_by_mail_with_the_shipment_s_tracking() {
        let rma = |text: &str| ok(text).commands.remove(0);
        let ups = Some(Tracking {
            carrier: "UPS".into(),
            number: "1Z999AA10123456784".into(),
        });
        assert_eq!(
            rma("#rma shipped"),
            Command::Rma {
                step: RmaVerb::Shipped,
                part: None,
                tracking: None
            }
        );
        assert_eq!(
            rma("#rma shipped ada0"),
            Command::Rma {
                step: RmaVerb::Shipped,
                part: Some("ada0".into()),
                tracking: None
            }
        );
        assert_eq!(
            rma("#rma shipped UPS 1Z999AA10123456784"),
            Command::Rma {
                step: RmaVerb::Shipped,
                part: None,
                tracking: ups.clone()
            }
        );
        let c = rma("#rma Shipped ada0 UPS 1Z999AA10123456784");
        assert_eq!(
            c,
            Command::Rma {
                step: RmaVerb::Shipped,
                part: Some("ada0".into()),
                tracking: ups
            }
        );
        assert_eq!(c.to_string(), "#rma shipped ada0 UPS 1Z999AA10123456784");
        assert_eq!(
            rma("#rma returned ada0"),
            Command::Rma {
                step: RmaVerb::Returned,
                part: Some("ada0".into()),
                tracking: None
            }
        );
        // A tracking number belongs to a shipment only.
        assert!(parse("#rma returned UPS 1Z9").is_err());
    }

    #[test]
    fn merge_and_open_parse() {
        assert_eq!(
            ok("#merge 12").commands,
            vec![Command::Merge {
                into: 12,
                force: false
            }]
        );
        let p = ok("#note same disk as #12\n#merge #12 FORCE\nThanks");
        assert_eq!(
            p.commands[1],
            Command::Merge {
                into: 12,
                force: true
            }
        );
        assert_eq!(p.commands[1].to_string(), "#merge 12 force");
        assert_eq!(p.text, "Thanks");
        assert_eq!(ok("#open").commands, vec![Command::Open { to: None }]);
        assert_eq!(
            ok("#open <Dana@Example.NET>\nHello Dana").commands,
            vec![Command::Open {
                to: Some("dana@example.net".into())
            }]
        );
    }

    #[test]
    fn prose_only_is_relayed_whole() {
        let p = ok("Hi,\n\nplease update to 24.10.1.\n\nBest,\nAlice\n");
        assert!(p.commands.is_empty());
        assert_eq!(p.text, "Hi,\n\nplease update to 24.10.1.\n\nBest,\nAlice");
    }
}
