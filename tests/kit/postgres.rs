//! A private PostgreSQL for the tests (scripts/mailstack postgres: initdb as the postgres user, 127.0.0.1 and a free port, a short temporary directory), a fresh database per use, stopped when dropped.

use std::path::PathBuf;
use std::process::Command;
use ticketd::store::{Location, PgTarget, Store};

pub const PG_SETUP_HINT: &str =
    "run scripts/test (it installs postgresql), or scripts/mailstack install";

/// The superuser's password, as scripts/mailstack sets it.
pub const PASSWORD: &str = "secret";

pub struct Postgres {
    dir: tempfile::TempDir,
    pub port: u16,
}

fn mailstack(args: &[&str]) -> std::process::Output {
    mailstack_with(args, &[])
}

fn mailstack_with(args: &[&str], env: &[(&str, &std::path::Path)]) -> std::process::Output {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/mailstack");
    Command::new(&script)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}; {PG_SETUP_HINT}", script.display()))
}

impl Postgres {
    /// Starts one; a missing PostgreSQL fails the test with the setup command.
    pub fn start() -> Postgres {
        Self::start_with(None)
    }

    /// Starts one that also takes TLS with this certificate chain and key (PEM).
    #[allow(dead_code)]
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> Postgres {
        Self::start_with(Some((cert_pem, key_pem)))
    }

    fn start_with(tls: Option<(&str, &str)>) -> Postgres {
        let dir = tempfile::Builder::new()
            .prefix("pg")
            .tempdir_in("/tmp")
            .expect("a temporary directory");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let d = dir.path().to_str().expect("a UTF-8 temporary path");
        let (cert, key) = (dir.path().join("server.crt"), dir.path().join("server.key"));
        let env: Vec<(&str, &std::path::Path)> = match tls {
            Some((c, k)) => {
                std::fs::write(&cert, c).expect("the certificate");
                std::fs::write(&key, k).expect("the key");
                vec![("MAILSTACK_TLS_CERT", &cert), ("MAILSTACK_TLS_KEY", &key)]
            }
            None => Vec::new(),
        };
        let out = mailstack_with(&["postgres", d, &port.to_string()], &env);
        assert!(
            out.status.success(),
            "cannot start a private PostgreSQL ({PG_SETUP_HINT}):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Postgres { dir, port }
    }

    /// The URL of database `name` (no password in it).
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Where database `name` is, password included.
    pub fn location(&self, name: &str) -> Location {
        Location::Postgres(PgTarget {
            url: self.url(name),
            password: Some(PASSWORD.into()),
            ca_file: None,
        })
    }

    /// Creates an empty database called after `name` and returns where it is.
    pub fn fresh(&self, name: &str) -> Location {
        let db: String = name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .take(60)
            .collect::<String>()
            .to_ascii_lowercase();
        let mut admin = postgres::Config::new()
            .host("127.0.0.1")
            .port(self.port)
            .user("postgres")
            .password(PASSWORD)
            .dbname("postgres")
            .connect(postgres::NoTls)
            .expect("the private PostgreSQL takes connections");
        for sql in [
            format!("DROP DATABASE IF EXISTS {db}"),
            format!("CREATE DATABASE {db}"),
        ] {
            admin.batch_execute(&sql).expect("a fresh database");
        }
        self.location(&db)
    }

    /// A fresh database's store, migrated.
    pub fn fresh_store(&self, name: &str) -> Store {
        Store::open_at(&self.fresh(name)).expect("a store on PostgreSQL")
    }

    /// Stops the server at once and starts it again (a restart in a burst).
    #[allow(dead_code)]
    pub fn restart(&self) {
        let d = self.dir.path().to_str().expect("a UTF-8 temporary path");
        let out = mailstack(&["postgres-restart", d]);
        assert!(
            out.status.success(),
            "cannot restart the private PostgreSQL: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(d) = self.dir.path().to_str() {
            let _ = mailstack(&["stop", d]);
        }
    }
}
