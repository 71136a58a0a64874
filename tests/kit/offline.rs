//! ticketd without servers: the shipped development config (`config/dev.toml`) pointed at a scratch directory, for running the engine in process (benches, the generator's check).

pub use super::repo;
use std::path::Path;
use ticketd::config::Config;

/// `config/dev.toml` with its database and password file in `dir`, the
/// `pack`, and acknowledgement limits high enough that a load of mail from
/// few customers is answered in full (`extra` TOML is appended).
pub fn dev_config(dir: &Path, pack: &str, extra: &str) -> Config {
    let pw = dir.join("pw");
    std::fs::write(&pw, "secret\n").expect("write the password file");
    let dev = repo().join("config/dev.toml");
    let text = std::fs::read_to_string(&dev)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dev.display()))
        .replace(
            "/tmp/ticketd-demo/ticketd.db",
            &dir.join("ticketd.db").display().to_string(),
        )
        .replace("/tmp/ticketd-demo/imap-password", &pw.display().to_string())
        .replace("pack = \"ixsystems\"", &format!("pack = \"{pack}\""));
    let text = format!("{text}\n{extra}");
    Config::from_str_at(&dev, &text).unwrap_or_else(|e| panic!("the dev config:\n{e}"))
}

/// `[limits]` under which no limit binds on generated load: every new
/// ticket and every follow-up acknowledged, as the generator's manifest says
/// (the defaults hold back a customer's sixth mail within hours, which a
/// dense corpus has).
pub const LOAD_LIMITS: &str = "[limits]
new_ticket_acks = { burst = 1000000, per_hour = 1000000 }
replies_per_recipient = { burst = 1000, per_hour = 10000 }
replies_per_ticket = { burst = 1000, per_hour = 10000 }
";
