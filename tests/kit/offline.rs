//! ticketd without servers: the shipped development config (`config/dev.toml`) pointed at a scratch directory, for running the engine in process (benches, the generator's check).

pub use super::repo;
use std::path::Path;
use ticketd::config::Config;

/// `config/dev.toml` with its database and password file in `dir`, the
/// `pack`, and acknowledgement limits high enough that a load of mail from
/// few customers is answered in full (`extra` TOML is appended).
pub fn dev_config(dir: &Path, pack: &str, extra: &str) -> Config {
    let dev = repo().join("config/dev.toml");
    let text = dev_text(dir, pack, extra);
    Config::from_str_at(&dev, &text).unwrap_or_else(|e| panic!("the dev config:\n{e}"))
}

/// `dev_config` written to `dir/ticketd.toml` (its paths made absolute),
/// for running the `ticketd` binary on it.
pub fn dev_config_file(dir: &Path, pack: &str, extra: &str) -> Config {
    let config = repo().join("config");
    let text = dev_text(dir, pack, extra)
        .replace(
            "templates = \"../templates\"",
            &format!("templates = \"{}\"", repo().join("templates").display()),
        )
        .replace(
            "packs = \"vendors\"",
            &format!("packs = \"{}\"", config.join("vendors").display()),
        )
        .replace(
            "token_key_file = \"dev-reply-token.key\"",
            &format!(
                "token_key_file = \"{}\"",
                config.join("dev-reply-token.key").display()
            ),
        );
    let path = dir.join("ticketd.toml");
    std::fs::write(&path, text).expect("write the config");
    Config::load(&path).unwrap_or_else(|e| panic!("the dev config:\n{e}"))
}

/// The text of `config/dev.toml` with its database and password file in
/// `dir`, the `pack`, and `extra` appended.
fn dev_text(dir: &Path, pack: &str, extra: &str) -> String {
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
    format!("{text}\n{extra}")
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
