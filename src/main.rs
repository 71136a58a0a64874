//! The `ticketd` command: run the daemon, check a config, explain a mail, import contracts, list tickets, the outbox and webhook deliveries, back up, release quarantined mail, manage contacts.

use anyhow::{Context, Result, anyhow, bail};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use ticketd::clock::{SharedClock, SystemClock};
use ticketd::config::Config;
use ticketd::intake::Engine;
use ticketd::model::RmaVerb;
use ticketd::model::{TicketId, TicketStatus};
use ticketd::store::Store;

/// jemalloc serves the daemon's allocations: measured against glibc's
/// malloc on the same mail, it takes 9 to 13 % less CPU per mail
/// (docs/performance.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read at its first allocation: two arenas (its default,
/// four per core, holds more memory idle for no gain here) and a background
/// thread that returns freed pages to the system while the daemon is idle,
/// so that its memory falls back after a burst of mail.
// SAFETY: jemalloc reads this symbol as a `const char *` to a NUL-terminated
// string; a reference to a byte array is that pointer, and the bytes end in
// NUL and are never written.
#[unsafe(export_name = "_rjem_malloc_conf")]
static MALLOC_CONF: &[u8; 33] = b"background_thread:true,narenas:2\0";

/// SQLite allocates through jemalloc too, and keeps no memory statistics
/// (nothing reads them, and they take a global mutex on every allocation).
/// By default SQLite calls glibc's malloc, about 135 times per mail (80M of
/// 1,852M instructions per 1,000 mails; docs/performance.md). Must run
/// before SQLite's first use: later, SQLite refuses the change
/// (`SQLITE_MISUSE`) and keeps its defaults, which is only slower.
fn sqlite_allocates_with_jemalloc() {
    use rusqlite::ffi;
    use std::ffi::{c_int, c_void};
    use tikv_jemalloc_sys as je;

    // SAFETY (all five): SQLite calls these as its `sqlite3_mem_methods`
    // contract says: sizes above zero, and only pointers that `x_malloc` or
    // `x_realloc` returned and that are still live.
    unsafe extern "C" fn x_malloc(n: c_int) -> *mut c_void {
        unsafe { je::malloc(n.max(1) as usize) }
    }
    unsafe extern "C" fn x_free(p: *mut c_void) {
        unsafe { je::free(p) }
    }
    unsafe extern "C" fn x_realloc(p: *mut c_void, n: c_int) -> *mut c_void {
        unsafe { je::realloc(p, n.max(1) as usize) }
    }
    unsafe extern "C" fn x_size(p: *mut c_void) -> c_int {
        if p.is_null() {
            return 0;
        }
        c_int::try_from(unsafe { je::malloc_usable_size(p) }).unwrap_or(c_int::MAX)
    }
    unsafe extern "C" fn x_roundup(n: c_int) -> c_int {
        c_int::try_from(unsafe { je::nallocx(n.max(1) as usize, 0) }).unwrap_or(n)
    }
    unsafe extern "C" fn x_init(_: *mut c_void) -> c_int {
        ffi::SQLITE_OK
    }
    unsafe extern "C" fn x_shutdown(_: *mut c_void) {}

    let methods = ffi::sqlite3_mem_methods {
        xMalloc: Some(x_malloc),
        xFree: Some(x_free),
        xRealloc: Some(x_realloc),
        xSize: Some(x_size),
        xRoundup: Some(x_roundup),
        xInit: Some(x_init),
        xShutdown: Some(x_shutdown),
        pAppData: std::ptr::null_mut(),
    };
    // SAFETY: SQLite is not yet initialised (this runs first in `main`);
    // SQLITE_CONFIG_MALLOC copies the struct it is given, and
    // SQLITE_CONFIG_MEMSTATUS takes one int.
    let (malloc, memstatus) = unsafe {
        (
            ffi::sqlite3_config(ffi::SQLITE_CONFIG_MALLOC, &methods as *const _),
            ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as c_int),
        )
    };
    debug_assert_eq!((malloc, memstatus), (ffi::SQLITE_OK, ffi::SQLITE_OK));
}

const DEFAULT_CONFIG: &str = "/etc/ticketd/ticketd.toml";

/// Prints a line on standard output. A reader that went away (`ticketd
/// tickets | head`) ends the command quietly: see [`ReaderGone`].
macro_rules! out {
    ($($arg:tt)*) => {
        emit(&format!("{}\n", format_args!($($arg)*)))?
    };
}

#[derive(Parser)]
#[command(name = "ticketd", version, about = "Email ticket intake daemon")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// What a listing of queued work takes.
#[derive(clap::Args)]
struct Listing {
    #[arg(long, env = "TICKETD_CONFIG", default_value = DEFAULT_CONFIG)]
    config: PathBuf,
    /// Only the rows in this state.
    #[arg(long)]
    status: Option<String>,
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Watch the mailboxes and answer mail until SIGTERM or SIGINT.
    Run {
        #[arg(long, env = "TICKETD_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Process everything waiting, drain the outbox, and exit.
        #[arg(long)]
        once: bool,
    },
    /// Validate a configuration and its vendor pack; report every problem.
    CheckConfig {
        #[arg(env = "TICKETD_CONFIG", default_value = DEFAULT_CONFIG)]
        file: PathBuf,
        /// Check this pack file with the configuration instead of the pack
        /// it names (a change to review with `replay` before a reload).
        #[arg(long)]
        pack: Option<PathBuf>,
    },
    /// Run the stored mail again through the decision with a changed pack
    /// and print, per mail, what would differ (rule IDs, severity, the
    /// first-response target, replies, timers, RMA, routing) and a count
    /// per rule. Each mail is decided at its own arrival, with the tickets
    /// as the mail before it left them, on copies in memory: the database
    /// is only read and nothing is sent.
    Replay {
        /// The changed pack file.
        #[arg(long)]
        pack: PathBuf,
        /// Compare the mail that arrived from then on (YYYY-MM-DD in the
        /// pack's zone, or RFC 3339); earlier mail is replayed, not shown.
        #[arg(long)]
        since: Option<String>,
        /// ... up to then (YYYY-MM-DD: that whole day).
        #[arg(long)]
        until: Option<String>,
        /// Compare only the mail of this mailbox.
        #[arg(long)]
        mailbox: Option<String>,
        #[arg(long)]
        json: bool,
        #[arg(long, env = "TICKETD_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Show what the daemon would do with a mail, without acting on it.
    ///
    /// The pack (`--pack NAME`, or the config's) is the first
    /// `vendors/NAME.toml` found: in the config's `[daemon] packs`, else in
    /// `vendors/` beside the config (`/etc/ticketd/vendors`), else in the
    /// shipped data directory (`$TICKETD_DATA_DIR`, else `share/ticketd`
    /// under the binary's prefix, else `/usr/share/ticketd`), else the copy
    /// built into the binary. The templates are the first of the config's
    /// `[daemon] templates`, `templates/` beside the config, the data
    /// directory's `templates/`, the built-in ones. Without a config the
    /// search starts at the data directory. `--json` names what was used
    /// under `sources` (a path, or "built in").
    Explain(ExplainArgs),
    /// Import or show contracts (entitlements).
    Contracts {
        #[command(subcommand)]
        command: ContractsCommand,
    },
    /// List tickets (`ticket N` shows one's whole history).
    Tickets {
        #[arg(long, env = "TICKETD_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Whole-store operations (`store copy`).
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// List the daemons on a PostgreSQL store, the mailbox each holds and
    /// when each renewed.
    Nodes {
        #[arg(long, env = "TICKETD_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// List outgoing mail (--status queued, sent or failed).
    Outbox(Listing),
    /// List webhook deliveries, oldest first (--status queued, delivered or failed).
    Webhooks(Listing),
    /// List pending timers (escalation steps and the like), earliest first.
    Timers {
        #[arg(long, env = "TICKETD_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Only timers due before this instant (RFC 3339, e.g. 2026-12-01T09:00:00-06:00).
        #[arg(long, value_parser = parse_instant)]
        due_before: Option<chrono::DateTime<chrono::Utc>>,
        #[arg(long)]
        json: bool,
    },
    /// Close a ticket (its pending timers are cancelled): one transaction, an event naming who did it.
    Close {
        ticket: i64,
        /// Who closes it (default: the Unix user).
        #[arg(long = "as")]
        by: Option<String>,
        #[arg(long, env = "TICKETD_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Set a ticket's state: open, waiting_customer (pauses its SLA clock and
    /// sets the pack's reminder), waiting_staff or closed.
    Status {
        ticket: i64,
        status: String,
        /// Who sets it (default: the Unix user).
        #[arg(long = "as")]
        by: Option<String>,
        #[arg(long, env = "TICKETD_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Merge ticket SOURCE into ticket INTO (as `#merge INTO` on SOURCE):
    /// its messages, events, RMAs, pending timers and thread move, it is
    /// closed, later mail to it lands on INTO, and each customer is told
    /// once. Refused across customers' organisations without --force, and
    /// when either ticket is merged already.
    Merge {
        source: i64,
        into: i64,
        /// Merge tickets of different customers' organisations.
        #[arg(long)]
        force: bool,
        /// Who merges them (default: the Unix user).
        #[arg(long = "as")]
        by: Option<String>,
        #[arg(long, env = "TICKETD_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Give a ticket to a staff member of `[staff.members]`: they hear of
    /// it from then on instead of the whole queue.
    Assign {
        ticket: i64,
        member: String,
        /// Who assigns it (default: the Unix user).
        #[arg(long = "as")]
        by: Option<String>,
        #[arg(long, env = "TICKETD_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Change a ticket's severity: its escalation ladder is planned again
    /// from the report (steps already past are sent at once, marked late).
    Severity {
        ticket: i64,
        severity: u8,
        /// Who changes it (default: the Unix user).
        #[arg(long = "as")]
        by: Option<String>,
        #[arg(long, env = "TICKETD_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Reopen a closed ticket.
    Reopen {
        ticket: i64,
        /// Who reopens it (default: the Unix user).
        #[arg(long = "as")]
        by: Option<String>,
        #[arg(long, env = "TICKETD_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// A step of a ticket's RMA: approve (documents or symptoms verified),
    /// issue (the code is sent to the customer; asking again gives the same
    /// code and sends nothing), shipped (the replacement and a prepaid return
    /// label went out), received (the replacement reached the customer),
    /// returned (the defective part is back: its deadlines end). The
    /// deadlines that count from a step start when it is recorded.
    Rma {
        #[arg(value_parser = ["approve", "issue", "shipped", "received", "returned"])]
        step: String,
        ticket: i64,
        /// The part or serial the RMA covers (default: the ticket's only RMA).
        #[arg(long)]
        part: Option<String>,
        /// With `shipped`: the replacement's carrier (with --tracking).
        #[arg(long, requires = "tracking")]
        carrier: Option<String>,
        /// With `shipped`: its tracking number, given in the customer's notice.
        #[arg(long, requires = "carrier")]
        tracking: Option<String>,
        /// Who acts (default: the Unix user).
        #[arg(long = "as")]
        by: Option<String>,
        #[arg(long, env = "TICKETD_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Send a staff answer (the text of FILE, `-` for standard input) to the
    /// ticket's customer in their thread; the first response, and the ticket
    /// then waits on the customer.
    Reply {
        ticket: i64,
        file: PathBuf,
        /// Who answers (default: the Unix user).
        #[arg(long = "as")]
        by: Option<String>,
        #[arg(long, env = "TICKETD_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Add an internal note to a ticket (never sent to the customer).
    Note {
        ticket: i64,
        text: String,
        /// Who writes it (default: the Unix user).
        #[arg(long = "as")]
        by: Option<String>,
        #[arg(long, env = "TICKETD_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// One ticket's whole history: its messages (what each person wrote
    /// now), events, timers, RMAs and outgoing mail.
    Ticket {
        ticket: i64,
        #[arg(long)]
        json: bool,
        #[arg(long, env = "TICKETD_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// List the messages in quarantine; show or release one.
    Quarantine {
        #[command(subcommand)]
        command: Option<QuarantineCommand>,
        #[arg(long, global = true, env = "TICKETD_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Write a consistent copy of the database to FILE while the daemon runs.
    Backup {
        file: PathBuf,
        #[arg(long, env = "TICKETD_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// List contacts; clear an undeliverable mark.
    Contacts {
        #[command(subcommand)]
        command: Option<ContactsCommand>,
        #[arg(long, global = true)]
        json: bool,
        #[arg(long, global = true, env = "TICKETD_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
}

#[derive(clap::Args)]
struct ExplainArgs {
    file: PathBuf,
    #[arg(long)]
    json: bool,
    /// FILE is a bare plain-text body (no header): report only its reply text.
    #[arg(long)]
    body: bool,
    /// Arrival time (RFC 3339); default now.
    #[arg(long)]
    at: Option<String>,
    /// Mailbox name or role (support, rma, 24x7).
    #[arg(long)]
    mailbox: Option<String>,
    /// Vendor pack: a name (looked for as above) or a file.
    #[arg(long)]
    pack: Option<String>,
    /// Contracts CSV to read entitlements from.
    #[arg(long)]
    contracts: Option<PathBuf>,
    #[arg(long, env = "TICKETD_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum QuarantineCommand {
    /// Show a quarantined message: where it came from, why, and what is stored.
    Show { row: i64 },
    /// Fetch each message whole from its quarantine folder and process it as new.
    Release {
        #[arg(required = true)]
        rows: Vec<i64>,
    },
}

#[derive(Subcommand)]
enum ContactsCommand {
    /// Clear ADDRESS's undeliverable mark, so mail may be sent to it again.
    Deliverable { address: String },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Copy a whole store into a new, empty one (SQLite to PostgreSQL or
    /// back) and compare every table's count. Stop the daemons first.
    Copy {
        /// A SQLite file or a postgres:// URL (no password in it).
        #[arg(long)]
        from: String,
        /// A new SQLite file or an empty PostgreSQL database.
        #[arg(long)]
        to: String,
        /// The password of a PostgreSQL --from, from this file.
        #[arg(long)]
        from_password_file: Option<PathBuf>,
        /// The password of a PostgreSQL --to, from this file.
        #[arg(long)]
        to_password_file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ContractsCommand {
    /// Import a contracts CSV: every row is inserted or updated in one transaction;
    /// with any bad row nothing is imported.
    Import {
        file: PathBuf,
        #[arg(long, env = "TICKETD_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Show, as JSON, the contract found by a serial, an address or a tax ID.
    Show {
        /// A serial number, an email address or a tax ID.
        key: String,
        #[arg(long, env = "TICKETD_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
}

fn parse_instant(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.to_utc())
        .map_err(|e| {
            format!("{s:?} is not an RFC 3339 instant such as 2026-12-01T09:00:00-06:00: {e}")
        })
}

/// Who a shell action is recorded as: `--as`, else the Unix user.
fn actor(by: Option<String>) -> String {
    by.or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("LOGNAME").ok())
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "an unknown user".into())
}

/// What a staff action from the shell needs: the engine (templates, pack),
/// the store, and who acts.
fn staff(config: &Path, by: Option<String>) -> Result<(Engine, Store, String)> {
    let cfg = load(config)?;
    let mut st = Store::open_at(&cfg.database)?;
    // The events of the action queue their webhooks' deliveries.
    st.set_webhooks(&cfg.pack.name, &cfg.subscriptions())?;
    Ok((Engine::from_config(&cfg)?, st, actor(by)))
}

/// `close`, `reopen`, `status`: one transaction, an event naming who did it.
fn set_status(
    config: &Path,
    ticket: i64,
    to: TicketStatus,
    by: Option<String>,
    now: DateTime<Utc>,
) -> Result<TicketStatus> {
    let (engine, mut st, by) = staff(config, by)?;
    let was = ticketd::actions::set_status(&engine, &mut st, TicketId(ticket), to, &by, now)?;
    out!("ticket {ticket} {to} by {by} (was {was})");
    Ok(was)
}

fn load(path: &Path) -> Result<Config> {
    Config::load(path).map_err(|e| anyhow!("{e}"))
}

fn open_db(path: &Path) -> Result<Store> {
    let cfg = load(path)?;
    Store::open_read_only_at(&cfg.database)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Standard output's reader went away (a closed pipe): the listing ends
/// there, quietly and successfully, as `head` and `grep -q` expect.
#[derive(Debug)]
struct ReaderGone;

impl std::fmt::Display for ReaderGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("standard output was closed")
    }
}

impl std::error::Error for ReaderGone {}

/// Writes `text` to standard output now; a closed pipe is [`ReaderGone`].
fn emit(text: &str) -> Result<()> {
    let mut o = std::io::stdout().lock();
    match o.write_all(text.as_bytes()).and_then(|()| o.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(ReaderGone.into()),
        r => Ok(r?),
    }
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    out!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn main() -> ExitCode {
    sqlite_allocates_with_jemalloc();
    let cli = Cli::parse();
    match dispatch(cli.command, Arc::new(SystemClock)) {
        Ok(code) => code,
        Err(e) if e.is::<ReaderGone>() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ticketd: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// One function per command.
fn dispatch(command: Command, clock: SharedClock) -> Result<ExitCode> {
    let now = clock.now();
    match command {
        Command::Run { config, once } => run(&config, once, clock),
        Command::CheckConfig { file, pack } => check_config(&file, pack.as_deref()),
        Command::Replay {
            pack,
            since,
            until,
            mailbox,
            json,
            config,
        } => replay(&config, &pack, (since, until, mailbox), json),
        Command::Explain(args) => explain(args, now),
        Command::Contracts {
            command: ContractsCommand::Import { file, config },
        } => contracts_import(&file, &config),
        Command::Contracts {
            command: ContractsCommand::Show { key, config },
        } => contracts_show(&key, &config),
        Command::Tickets { config, json } => tickets(&config, json),
        Command::Nodes { config, json } => nodes(&config, json),
        Command::Store {
            command:
                StoreCommand::Copy {
                    from,
                    to,
                    from_password_file,
                    to_password_file,
                },
        } => store_copy(
            (&from, from_password_file.as_deref()),
            (&to, to_password_file.as_deref()),
        ),
        Command::Outbox(l) => outbox(&l.config, l.status.as_deref(), l.json),
        Command::Webhooks(l) => webhooks(&l.config, l.status.as_deref(), l.json),
        Command::Timers {
            config,
            due_before,
            json,
        } => timers(&config, due_before, json),
        Command::Close { ticket, by, config } => {
            set_status(&config, ticket, TicketStatus::Closed, by, now).map(done)
        }
        Command::Reopen { ticket, by, config } => reopen(&config, ticket, by, now),
        Command::Status {
            ticket,
            status,
            by,
            config,
        } => status_of(&config, ticket, &status, by, now),
        Command::Merge {
            source,
            into,
            force,
            by,
            config,
        } => merge(&config, (source, into), force, by, now),
        Command::Assign {
            ticket,
            member,
            by,
            config,
        } => assign(&config, ticket, &member, by, now),
        Command::Severity {
            ticket,
            severity,
            by,
            config,
        } => severity_of(&config, ticket, severity, by, now),
        Command::Rma {
            step,
            ticket,
            part,
            carrier,
            tracking,
            by,
            config,
        } => {
            let tracking = carrier
                .zip(tracking)
                .map(|(carrier, number)| ticketd::model::Tracking { carrier, number });
            rma(&config, &step, ticket, (part.as_deref(), tracking), by, now)
        }
        Command::Reply {
            ticket,
            file,
            by,
            config,
        } => reply(&config, ticket, &file, by, now),
        Command::Note {
            ticket,
            text,
            by,
            config,
        } => note(&config, ticket, &text, by, now),
        Command::Ticket {
            ticket,
            json,
            config,
        } => ticket_history(&config, ticket, json),
        Command::Quarantine { command, config } => match command {
            None => quarantine_list(&config),
            Some(QuarantineCommand::Show { row }) => quarantine_show(&config, row),
            Some(QuarantineCommand::Release { rows }) => quarantine_release(&config, &rows, clock),
        },
        Command::Backup { file, config } => backup(&config, &file),
        Command::Contacts {
            command,
            json,
            config,
        } => match command {
            None => contacts(&config, json),
            Some(ContactsCommand::Deliverable { address }) => deliverable(&config, &address),
        },
    }
}

/// A command that did what it was asked.
fn done<T>(_: T) -> ExitCode {
    ExitCode::SUCCESS
}

fn run(config: &Path, once: bool, clock: SharedClock) -> Result<ExitCode> {
    ticketd::logging::init();
    let cfg = load(config)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        if once {
            ticketd::daemon::run_once(cfg, clock).await
        } else {
            let reloads = ticketd::daemon::sighup()?;
            ticketd::daemon::serve(cfg, clock, shutdown_signal(), reloads).await
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

fn check_config(file: &Path, pack: Option<&Path>) -> Result<ExitCode> {
    let loaded = match pack {
        Some(p) => Config::load_with_pack(file, p),
        None => Config::load(file),
    };
    match loaded {
        Ok(cfg) => {
            ticketd::templates::Templates::from_source(&cfg.templates)?;
            // The pack's sentences compile with the templates.
            ticketd::outgoing::Renderer::from_config(&cfg)?;
            out!(
                "{}: ok ({} mailboxes, pack {}, language {}, zone {})",
                file.display(),
                cfg.mailboxes.len(),
                cfg.pack.name,
                cfg.pack.language.as_str(),
                cfg.pack.zone
            );
            out!("  pack from {}", cfg.pack_source);
            out!("  templates from {}", cfg.templates);
            if let ticketd::store::Location::Postgres(_) = &cfg.database {
                let st = Store::open_read_only_at(&cfg.database)?;
                let (have, known) = (st.schema_version()?, st.known_schema());
                out!(
                    "  database {}: {}{}, schema {have} of {known}{}",
                    cfg.database,
                    st.server_version()?,
                    if st.over_tls()? { " over TLS" } else { "" },
                    if have == known {
                        " (current)"
                    } else {
                        " (the daemon migrates it at start)"
                    }
                );
            }
            for w in &cfg.webhooks {
                let events: Vec<&str> = w.sub.events.iter().map(|e| e.as_str()).collect();
                out!(
                    "  webhook {} ({:?}) to {}: {}",
                    w.sub.name,
                    w.sub.kind,
                    w.url.origin(),
                    events.join(", ")
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(problems) => {
            eprintln!("{problems}");
            eprintln!("{} problem(s) found", problems.0.len());
            Ok(ExitCode::from(1))
        }
    }
}

/// An instant of `replay`'s window: RFC 3339, or a day in `zone` (its
/// start, or with `end` its last instant).
fn window_instant(s: &str, zone: chrono_tz::Tz, end: bool) -> Result<DateTime<Utc>> {
    if let Ok(t) = parse_instant(s) {
        return Ok(t);
    }
    let day = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| anyhow!("{s:?} is neither a day (YYYY-MM-DD) nor an RFC 3339 instant"))?;
    let at = if end {
        day.and_hms_opt(23, 59, 59)
    } else {
        day.and_hms_opt(0, 0, 0)
    }
    .ok_or_else(|| anyhow!("{s:?} has no such time"))?;
    use chrono::TimeZone;
    zone.from_local_datetime(&at)
        .earliest()
        .map(|t| t.to_utc())
        .ok_or_else(|| anyhow!("{s:?} does not exist in {zone}"))
}

fn replay(
    config: &Path,
    pack: &Path,
    (since, until, mailbox): (Option<String>, Option<String>, Option<String>),
    json: bool,
) -> Result<ExitCode> {
    let cfg = load(config)?;
    let changed = Config::load_with_pack(config, pack).map_err(|e| anyhow!("{e}"))?;
    if let Some(m) = &mailbox
        && cfg.mailbox(m).is_none()
    {
        bail!("mailbox {m:?} is not configured in {}", config.display());
    }
    let zone = cfg.pack.zone;
    let window = ticketd::replay::Window {
        since: since.map(|s| window_instant(&s, zone, false)).transpose()?,
        until: until.map(|s| window_instant(&s, zone, true)).transpose()?,
        mailbox,
    };
    let db = Store::open_read_only_at(&cfg.database)?;
    let report = ticketd::replay::replay(&cfg, &db, &changed.pack, &window)?;
    if json {
        print_json(&report)?;
    } else {
        emit(&report.text())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn explain(a: ExplainArgs, now: DateTime<Utc>) -> Result<ExitCode> {
    let raw =
        std::fs::read(&a.file).with_context(|| format!("cannot read {}", a.file.display()))?;
    if a.body {
        let v = ticketd::explain::explain_body(&raw);
        if a.json {
            print_json(&v)?;
        } else {
            out!("{}", v["reply_text"].as_str().unwrap_or(""));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let at =
        a.at.map(|s| {
            DateTime::parse_from_rfc3339(&s)
                .map(|d| d.with_timezone(&Utc))
                .with_context(|| {
                    format!("--at {s}: not an RFC 3339 time such as 2026-03-02T09:30:00-08:00")
                })
        })
        .transpose()?;
    let opts = ticketd::explain::Options {
        config: a.config,
        at,
        mailbox: a.mailbox,
        pack: a.pack,
        contracts: a.contracts,
        data_dir: None,
    };
    let v = ticketd::explain::explain(&raw, &opts, now)?;
    if a.json {
        print_json(&v)?;
    } else {
        emit(&ticketd::explain::to_text(&v))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn contracts_import(file: &Path, config: &Path) -> Result<ExitCode> {
    let cfg = load(config)?;
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let contracts = match ticketd::contracts::parse_csv(&text, &file.display().to_string()) {
        Ok(c) => c,
        Err(problems) => {
            for p in &problems {
                eprintln!("{p}");
            }
            eprintln!("{} problem(s) found; nothing was imported", problems.len());
            return Ok(ExitCode::from(1));
        }
    };
    // A technician the config does not know gets no routed ticket
    // (AV-04, AV-05): the queue hears of it instead. Said, not refused.
    for c in &contracts {
        if !c.technician.is_empty() && cfg.staff.member(&c.technician).is_none() {
            eprintln!(
                "warning: {}: contract {} names technician `{}`, who is not in [staff.members] of {}",
                file.display(),
                c.serial,
                c.technician,
                cfg.path.display()
            );
        }
    }
    let mut st = Store::open_at(&cfg.database)?;
    let bar = ticketd::admin::progress(contracts.len() as u64, "import");
    let stats = st.import_contracts_with(&contracts, &mut |i| bar.set_position(i as u64))?;
    bar.finish_and_clear();
    out!(
        "{}: {} inserted, {} updated, {} unchanged",
        file.display(),
        stats.inserted,
        stats.updated,
        stats.unchanged
    );
    Ok(ExitCode::SUCCESS)
}

fn contracts_show(key: &str, config: &Path) -> Result<ExitCode> {
    let st = open_db(config)?;
    let keys = [key.to_string()];
    match st.find_contract(&keys, key, &keys)? {
        Some(m) => {
            print_json(&m)?;
            Ok(ExitCode::SUCCESS)
        }
        None => {
            eprintln!("no contract for {key}");
            Ok(ExitCode::from(1))
        }
    }
}

/// A store named on the command line: a SQLite path or a PostgreSQL URL
/// with its password from a file.
fn location_arg(s: &str, password_file: Option<&Path>) -> Result<ticketd::store::Location> {
    use ticketd::store::{Location, PgTarget};
    if !Location::is_url(s) {
        if password_file.is_some() {
            bail!("{s}: a SQLite file takes no password");
        }
        return Ok(Location::Sqlite(PathBuf::from(s)));
    }
    let password = password_file
        .map(|f| {
            std::fs::read_to_string(f)
                .map(|p| p.trim_end_matches(['\r', '\n']).to_string())
                .with_context(|| format!("cannot read {}", f.display()))
        })
        .transpose()?;
    Ok(Location::Postgres(PgTarget::parse(s, password)?))
}

fn store_copy(from: (&str, Option<&Path>), to: (&str, Option<&Path>)) -> Result<ExitCode> {
    let (from, to) = (location_arg(from.0, from.1)?, location_arg(to.0, to.1)?);
    if from == to {
        bail!("--from and --to are the same store");
    }
    if let ticketd::store::Location::Sqlite(p) = &from
        && !p.exists()
    {
        bail!("{}: no such database", p.display());
    }
    let source = Store::open_read_only_at(&from)?;
    source.require_current()?;
    let mut target = Store::open_at(&to)?;
    let counts = target.copy_from(&source)?;
    out!("{:<20} {:>10}", "table", "rows");
    for (t, n) in &counts {
        out!("{t:<20} {n:>10}");
    }
    out!("copied {from} to {to}: every table's count matches");
    Ok(ExitCode::SUCCESS)
}

fn nodes(config: &Path, json: bool) -> Result<ExitCode> {
    let st = open_db(config)?;
    let (nodes, leases) = st.cluster()?;
    if json {
        print_json(&serde_json::json!({ "nodes": nodes, "leases": leases }))?;
        return Ok(ExitCode::SUCCESS);
    }
    out!(
        "{:<24} {:>8}  {:<5} {:<28} mailboxes",
        "node",
        "pid",
        "live",
        "renewed"
    );
    for n in &nodes {
        let held: Vec<&str> = leases
            .iter()
            .filter(|l| l.live && l.holder.as_deref() == Some(n.node.as_str()))
            .map(|l| l.mailbox.as_str())
            .collect();
        out!(
            "{:<24} {:>8}  {:<5} {:<28} {}",
            n.node,
            n.pid,
            if n.live { "yes" } else { "no" },
            n.renewed_at,
            held.join(", ")
        );
    }
    for l in leases.iter().filter(|l| !l.live) {
        out!(
            "mailbox {} is free (epoch {}, {} takeovers)",
            l.mailbox,
            l.epoch,
            l.takeovers
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn tickets(config: &Path, json: bool) -> Result<ExitCode> {
    let st = open_db(config)?;
    let tickets = st.tickets()?;
    if json {
        print_json(&tickets)?;
        return Ok(ExitCode::SUCCESS);
    }
    out!(
        "{:>6}  {:<8} {:<28} {:<4} {:>4}  subject",
        "id",
        "status",
        "requester",
        "lang",
        "msgs"
    );
    for t in tickets {
        out!(
            "{:>6}  {:<8} {:<28} {:<4} {:>4}  {}",
            t.id,
            t.status,
            t.requester,
            t.language,
            t.messages,
            t.subject
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A listing: the rows as JSON, or a head line and one line per row.
fn listing<T: serde::Serialize>(
    rows: &[T],
    json: bool,
    head: &str,
    line: impl Fn(&T) -> String,
) -> Result<ExitCode> {
    if json {
        print_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    out!("{head}");
    for r in rows {
        out!("{}", line(r));
    }
    Ok(ExitCode::SUCCESS)
}

fn outbox(config: &Path, status: Option<&str>, json: bool) -> Result<ExitCode> {
    let rows = open_db(config)?.outbox(status)?;
    let head = format!(
        "{:>6}  {:<7} {:>3}  {:<16} {:<28} error",
        "id", "status", "try", "kind", "to"
    );
    listing(&rows, json, &head, |r| {
        format!(
            "{:>6}  {:<7} {:>3}  {:<16} {:<28} {}",
            r.id,
            r.status,
            r.attempts,
            r.kind,
            r.rcpt_to.join(","),
            r.last_error.as_deref().unwrap_or_default()
        )
    })
}

fn webhooks(config: &Path, status: Option<&str>, json: bool) -> Result<ExitCode> {
    if let Some(s) = status
        && !["queued", "delivered", "failed"].contains(&s)
    {
        anyhow::bail!("--status {s}: one of queued, delivered, failed");
    }
    let st = open_db(config)?;
    st.require_current()?;
    let rows = st.deliveries(status)?;
    let head = format!(
        "{:>6}  {:<9} {:>3}  {:<16} {:<16} {:>6}  {:<36} error",
        "id", "status", "try", "webhook", "event", "ticket", "webhook-id"
    );
    listing(&rows, json, &head, |r| {
        format!(
            "{:>6}  {:<9} {:>3}  {:<16} {:<16} {:>6}  {:<36} {}",
            r.id,
            r.status,
            r.attempts,
            r.webhook,
            r.event,
            r.ticket_id.map(|t| t.to_string()).unwrap_or_default(),
            r.msg_id,
            r.last_error.as_deref().unwrap_or_default()
        )
    })
}

fn timers(config: &Path, due_before: Option<DateTime<Utc>>, json: bool) -> Result<ExitCode> {
    let cfg = load(config)?;
    let st = Store::open_read_only_at(&cfg.database)?;
    st.require_current()?;
    let zone = cfg.pack.zone;
    let rows: Vec<serde_json::Value> = st
        .pending_timers(due_before, usize::MAX >> 1)?
        .into_iter()
        .map(|t| {
            serde_json::json!({
                "ticket": t.ticket,
                "kind": t.plan.kind,
                "key": t.plan.cause.to_string(),
                "at": ticketd::policy::rfc3339(zone, t.plan.due),
                "rule": t.plan.rule,
                "to": t.plan.to,
            })
        })
        .collect();
    if json {
        print_json(&rows)?;
        return Ok(ExitCode::SUCCESS);
    }
    out!(
        "{:>6}  {:<25} {:<11} {:<6}  to",
        "ticket",
        "due",
        "kind",
        "rule"
    );
    for r in &rows {
        out!(
            "{:>6}  {:<25} {:<11} {:<6}  {}",
            r["ticket"],
            r["at"].as_str().unwrap_or_default(),
            r["kind"].as_str().unwrap_or_default(),
            r["rule"].as_str().unwrap_or_default(),
            r["to"].as_str().unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn reopen(config: &Path, ticket: i64, by: Option<String>, now: DateTime<Utc>) -> Result<ExitCode> {
    let cfg = load(config)?;
    let st = Store::open_read_only_at(&cfg.database)?;
    match st.ticket(TicketId(ticket))? {
        Some(t) if t.status != TicketStatus::Closed => {
            anyhow::bail!("ticket {ticket} is not closed (it is {})", t.status)
        }
        _ => {}
    }
    set_status(config, ticket, TicketStatus::Open, by, now).map(done)
}

fn status_of(
    config: &Path,
    ticket: i64,
    status: &str,
    by: Option<String>,
    now: DateTime<Utc>,
) -> Result<ExitCode> {
    let to = TicketStatus::parse(status).ok_or_else(|| {
        anyhow!("`{status}` is not a state: open, waiting_customer, waiting_staff or closed")
    })?;
    set_status(config, ticket, to, by, now).map(done)
}

fn merge(
    config: &Path,
    (source, into): (i64, i64),
    force: bool,
    by: Option<String>,
    now: DateTime<Utc>,
) -> Result<ExitCode> {
    let (engine, mut st, by) = staff(config, by)?;
    let done = ticketd::actions::merge(
        &engine,
        &mut st,
        (TicketId(source), TicketId(into)),
        force,
        &by,
        now,
    )?;
    out!("ticket {source} merged into ticket {into} by {by}");
    for line in done {
        out!("  {line}");
    }
    Ok(ExitCode::SUCCESS)
}

fn assign(
    config: &Path,
    ticket: i64,
    member: &str,
    by: Option<String>,
    now: DateTime<Utc>,
) -> Result<ExitCode> {
    let (engine, mut st, by) = staff(config, by)?;
    let was = ticketd::actions::assign(&engine, &mut st, TicketId(ticket), member, &by, now)?;
    match was {
        Some(w) if w.eq_ignore_ascii_case(member) => {
            out!("ticket {ticket} is already assigned to {w}")
        }
        Some(w) => out!("ticket {ticket} assigned to {member} by {by} (was {w})"),
        None => out!("ticket {ticket} assigned to {member} by {by}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn severity_of(
    config: &Path,
    ticket: i64,
    severity: u8,
    by: Option<String>,
    now: DateTime<Utc>,
) -> Result<ExitCode> {
    let (engine, mut st, by) = staff(config, by)?;
    let was =
        ticketd::actions::set_severity(&engine, &mut st, TicketId(ticket), severity, &by, now)?;
    let was = was.map_or("unknown".to_string(), |s| s.to_string());
    out!("ticket {ticket} severity {severity} by {by} (was {was})");
    Ok(ExitCode::SUCCESS)
}

fn rma(
    config: &Path,
    step: &str,
    ticket: i64,
    (part, tracking): (Option<&str>, Option<ticketd::model::Tracking>),
    by: Option<String>,
    now: DateTime<Utc>,
) -> Result<ExitCode> {
    let (engine, mut st, by) = staff(config, by)?;
    let verb = RmaVerb::parse(step).unwrap_or(RmaVerb::Returned);
    let (out, sent) = ticketd::actions::rma(
        &engine,
        &mut st,
        TicketId(ticket),
        verb,
        part,
        tracking.as_ref(),
        &by,
        now,
    )?;
    let what = if out.part.is_empty() {
        "the whole unit".to_string()
    } else {
        format!("part {}", out.part)
    };
    let code = out.code.map(|c| format!(", code {c}")).unwrap_or_default();
    if out.already {
        out!(
            "ticket {ticket}: the RMA for {what} is already {}{code}; nothing sent",
            out.state
        );
    } else {
        out!(
            "ticket {ticket}: the RMA for {what} is {}{code} ({by}); {sent} mail queued",
            out.state
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn reply(
    config: &Path,
    ticket: i64,
    file: &Path,
    by: Option<String>,
    now: DateTime<Utc>,
) -> Result<ExitCode> {
    let body = if file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        s
    } else {
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?
    };
    let (engine, mut st, by) = staff(config, by)?;
    ticketd::actions::reply(&engine, &mut st, TicketId(ticket), &body, &by, now)?;
    out!("ticket {ticket}: answer by {by} queued for the customer");
    Ok(ExitCode::SUCCESS)
}

fn note(
    config: &Path,
    ticket: i64,
    text: &str,
    by: Option<String>,
    now: DateTime<Utc>,
) -> Result<ExitCode> {
    let (engine, mut st, by) = staff(config, by)?;
    ticketd::actions::note(&engine, &mut st, TicketId(ticket), text, &by, now)?;
    out!("ticket {ticket}: note by {by} added");
    Ok(ExitCode::SUCCESS)
}

fn ticket_history(config: &Path, ticket: i64, json: bool) -> Result<ExitCode> {
    let cfg = load(config)?;
    let st = Store::open_read_only_at(&cfg.database)?;
    st.require_current()?;
    let h = st
        .history(TicketId(ticket))?
        .ok_or_else(|| anyhow!("ticket {ticket} does not exist"))?;
    if json {
        print_json(&h)?;
    } else {
        emit(&h.text(cfg.pack.zone))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn quarantine_list(config: &Path) -> Result<ExitCode> {
    let st = open_db(config)?;
    for q in st.quarantined()? {
        out!(
            "row {:>6}  mailbox {:<10} uid {:>6}  {} bytes  {:<11}  {}",
            q.row,
            q.mailbox,
            q.uid,
            q.size,
            q.outcome,
            q.reason.unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn quarantine_show(config: &Path, row: i64) -> Result<ExitCode> {
    let st = open_db(config)?;
    let m = st
        .quarantined_message(row)?
        .ok_or_else(|| anyhow!("message row {row} is not a quarantined message"))?;
    print_json(&m)?;
    let raw = String::from_utf8_lossy(&m.raw);
    let head = raw.split("\r\n\r\n").next().unwrap_or_default();
    out!("\n{head}");
    Ok(ExitCode::SUCCESS)
}

fn quarantine_release(config: &Path, rows: &[i64], clock: SharedClock) -> Result<ExitCode> {
    ticketd::logging::init();
    let cfg = load(config)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let released = rt.block_on(ticketd::admin::release(&cfg, clock, rows))?;
    for d in released {
        match d.ticket {
            Some(t) => out!(
                "row {}: {} on ticket {t}, {} mail(s) queued",
                d.row,
                d.outcome,
                d.replies
            ),
            None => out!("row {}: {} {}", d.row, d.outcome, d.reasons.join("; ")),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn backup(config: &Path, file: &Path) -> Result<ExitCode> {
    let cfg = load(config)?;
    let pages = ticketd::admin::backup(&cfg, file)?;
    out!(
        "{}: {pages} pages copied from {}",
        file.display(),
        cfg.database.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn deliverable(config: &Path, address: &str) -> Result<ExitCode> {
    let cfg = load(config)?;
    let mut st = Store::open_at(&cfg.database)?;
    match st.set_deliverable(address)? {
        None => anyhow::bail!("no contact {address}"),
        Some(true) => out!("{address}: deliverable again"),
        Some(false) => out!("{address}: was not marked undeliverable"),
    }
    Ok(ExitCode::SUCCESS)
}

fn contacts(config: &Path, json: bool) -> Result<ExitCode> {
    let st = open_db(config)?;
    let contacts = st.contacts()?;
    if json {
        print_json(&contacts)?;
        return Ok(ExitCode::SUCCESS);
    }
    out!(
        "{:<36} {:<4} {:>7}  undeliverable",
        "address",
        "lang",
        "tickets"
    );
    for c in contacts {
        out!(
            "{:<36} {:<4} {:>7}  {}",
            c.address,
            c.language.unwrap_or_default(),
            c.tickets,
            if c.undeliverable {
                c.undeliverable_reason.unwrap_or_else(|| "yes".into())
            } else {
                String::new()
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}
