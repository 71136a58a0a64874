//! Where a store is: a SQLite path or a PostgreSQL database (its URL without a password, the password kept apart and never shown), connecting to it, and running the blocking PostgreSQL client where it may block.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

/// Where the store is: a SQLite file or a PostgreSQL database.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(PgTarget),
}

/// A PostgreSQL database: its URL without a password, and the password
/// (read from a file or a systemd credential), never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct PgTarget {
    pub url: String,
    pub password: Option<String>,
    /// The CAs the server's certificate is checked against (`[daemon]
    /// database_ca_file`); the system's when none.
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "{}", p.display()),
            Location::Postgres(t) => f.write_str(&t.url),
        }
    }
}

impl Location {
    /// `postgres://` and `postgresql://` URLs name a PostgreSQL database;
    /// anything else is a SQLite path.
    pub fn is_url(s: &str) -> bool {
        s.starts_with("postgres://") || s.starts_with("postgresql://")
    }

    /// For messages: the path or the URL (which holds no password).
    pub fn display(&self) -> &Self {
        self
    }

    /// The SQLite file, if the store is one.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Location::Sqlite(p) => Some(p),
            Location::Postgres(_) => None,
        }
    }

    /// Whether there is a store to read: a SQLite file that exists, or a
    /// PostgreSQL database (whose reachability opening tells).
    pub fn exists(&self) -> bool {
        match self {
            Location::Sqlite(p) => p.exists(),
            Location::Postgres(_) => true,
        }
    }
}

impl PgTarget {
    /// Checks a URL: no password in it (it would be shown in logs and
    /// `ps`); the password comes from `password`.
    pub fn parse(url: &str, password: Option<String>) -> Result<PgTarget> {
        // The URL is not repeated: a mistyped one may hold a password.
        let config: postgres::Config = url.parse().map_err(|_| {
            anyhow::anyhow!("not a PostgreSQL URL (postgres://USER@HOST[:PORT]/DATABASE)")
        })?;
        if config.get_password().is_some() {
            bail!(
                "the database URL holds a password: give it in database_password_file (or a systemd credential) instead"
            );
        }
        if config.get_dbname().is_none() {
            bail!("the database URL names no database (postgres://user@host/DATABASE)");
        }
        Ok(PgTarget {
            url: url.to_string(),
            password,
            ca_file: None,
        })
    }

    /// Checks the server's certificate against `ca_file`'s CAs.
    pub fn with_ca_file(mut self, ca_file: Option<PathBuf>) -> PgTarget {
        self.ca_file = ca_file;
        self
    }

    /// Connects through the project's one TLS configuration (`net`): the
    /// server's certificate and name checked. A server off this host is
    /// reached over TLS only, unless the URL's `sslmode` says otherwise;
    /// on loopback TLS is used when the server offers it.
    pub(super) fn connect(&self) -> Result<postgres::Client> {
        let mut config: postgres::Config = self.url.parse()?;
        if let Some(p) = &self.password {
            config.password(p);
        }
        config.application_name("ticketd");
        config.connect_timeout(std::time::Duration::from_secs(10));
        let local = config.get_hosts().iter().all(|h| match h {
            postgres::config::Host::Tcp(name) => {
                name == "localhost"
                    || name
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|a| a.is_loopback())
            }
            postgres::config::Host::Unix(_) => true,
        });
        if !local && !self.url.contains("sslmode=") {
            config.ssl_mode(postgres::config::SslMode::Require);
        }
        let tls = crate::net::client_config(self.ca_file.as_deref())?;
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new((*tls).clone());
        config
            .connect(tls)
            .with_context(|| format!("cannot connect to {}", self.url))
    }
}

/// Runs `f` on a thread of its own and waits for it: the PostgreSQL client
/// blocks on a runtime of its own, which it may not do on an async thread
/// (the store is otherwise reached from blocking threads).
pub fn off_async<T: Send>(f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|s| s.spawn(f).join())
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// A value dropped on a thread of its own: a PostgreSQL client closes its
/// connection on its runtime when dropped, which it may not do on an async
/// thread.
pub(crate) struct DropOffAsync<T: Send>(Option<T>);

impl<T: Send> DropOffAsync<T> {
    pub(crate) fn new(v: T) -> Self {
        DropOffAsync(Some(v))
    }
}

impl<T: Send> std::ops::Deref for DropOffAsync<T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.0.as_ref().expect("dropped only once")
    }
}

impl<T: Send> std::ops::DerefMut for DropOffAsync<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.0.as_mut().expect("dropped only once")
    }
}

impl<T: Send> Drop for DropOffAsync<T> {
    fn drop(&mut self) {
        if let Some(v) = self.0.take() {
            let _ = off_async(move || {
                drop(v);
                Ok(())
            });
        }
    }
}
