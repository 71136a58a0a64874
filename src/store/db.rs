//! The store's one connection, to SQLite or to PostgreSQL, with the same calls for both: statements prepared once per connection, parameters and columns converted the same way, transactions and savepoints, and the SQL translated where the dialects differ.
//!
//! The store's SQL is written once, in the dialect both servers read
//! (`?N` placeholders, `ON CONFLICT`, `RETURNING`); what PostgreSQL reads
//! otherwise is translated when a statement is first prepared
//! ([`translate`]). A value is bound and read through [`Value`], which
//! converts to what the server asks for: a PostgreSQL statement's parameter
//! types are inferred by the server, and an integer sent where it expects
//! `int4` or `text` is sent as that.

use super::target::{DropOffAsync, PgTarget};
use anyhow::{Context, anyhow};
use bytes::BytesMut;
use postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

pub type Result<T> = anyhow::Result<T>;

/// Which server a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A connection to either backend.
pub enum Conn {
    Sqlite(rusqlite::Connection),
    Postgres(Box<PgConn>),
}

/// A PostgreSQL session: the client, its prepared statements (by their SQL)
/// and how deep in transactions and savepoints it is.
pub struct PgConn {
    client: RefCell<DropOffAsync<postgres::Client>>,
    statements: RefCell<HashMap<String, postgres::Statement>>,
    depth: Cell<u32>,
    /// A statement failed inside the open transaction: PostgreSQL refuses
    /// everything until a rollback, and would answer COMMIT by rolling back.
    aborted: Cell<bool>,
    /// Where to connect again when the server closes the session.
    target: PgTarget,
    subscriptions: RefCell<Vec<[String; 3]>>,
}

/// A statement's failure to return a row, told apart from the others so
/// that [`OptionalExtension::optional`] needs no allocation.
#[derive(Debug)]
pub enum QueryError {
    NoRows,
    Failed(anyhow::Error),
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueryError::NoRows => f.write_str("query returned no rows"),
            QueryError::Failed(e) => write!(f, "{e:#}"),
        }
    }
}

impl std::error::Error for QueryError {}

impl From<anyhow::Error> for QueryError {
    fn from(e: anyhow::Error) -> Self {
        QueryError::Failed(e)
    }
}

impl From<rusqlite::Error> for QueryError {
    fn from(e: rusqlite::Error) -> Self {
        QueryError::Failed(e.into())
    }
}

/// `query_row`'s answer: a row, none, or a failure.
pub type QueryResult<T> = std::result::Result<T, QueryError>;

/// A query's single row as `Some`, no row as `None`.
pub trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for QueryResult<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(QueryError::NoRows) => Ok(None),
            Err(QueryError::Failed(e)) => Err(e),
        }
    }
}

/// One value bound to a statement or read from a column.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

/// What may be bound to a placeholder.
pub trait Param {
    fn value(&self) -> Value<'_>;
}

macro_rules! int_param {
    ($($t:ty),*) => {$(
        impl Param for $t {
            fn value(&self) -> Value<'_> {
                Value::Int(*self as i64)
            }
        }
    )*};
}
int_param!(i64, i32, u32, u16, u8, usize);

impl Param for bool {
    fn value(&self) -> Value<'_> {
        Value::Int(*self as i64)
    }
}

impl Param for f64 {
    fn value(&self) -> Value<'_> {
        Value::Real(*self)
    }
}

impl Param for str {
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl Param for String {
    fn value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl Param for [u8] {
    fn value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}

impl Param for Vec<u8> {
    fn value(&self) -> Value<'_> {
        Value::Blob(self)
    }
}

impl<T: Param + ?Sized> Param for &T {
    fn value(&self) -> Value<'_> {
        (**self).value()
    }
}

impl<T: Param> Param for Option<T> {
    fn value(&self) -> Value<'_> {
        match self {
            Some(v) => v.value(),
            None => Value::Null,
        }
    }
}

/// A statement's parameters: `()`, an array of one type, or `params![…]`.
pub trait Params {
    fn with<R>(&self, f: impl FnOnce(&[&dyn Param]) -> R) -> R;
}

impl Params for () {
    fn with<R>(&self, f: impl FnOnce(&[&dyn Param]) -> R) -> R {
        f(&[])
    }
}

impl<T: Param, const N: usize> Params for [T; N] {
    fn with<R>(&self, f: impl FnOnce(&[&dyn Param]) -> R) -> R {
        f(&self.each_ref().map(|p| p as &dyn Param))
    }
}

impl Params for &[&dyn Param] {
    fn with<R>(&self, f: impl FnOnce(&[&dyn Param]) -> R) -> R {
        f(self)
    }
}

impl<const N: usize> Params for &[&dyn Param; N] {
    fn with<R>(&self, f: impl FnOnce(&[&dyn Param]) -> R) -> R {
        f(&self[..])
    }
}

/// `params![a, b]`: parameters of several types.
#[macro_export]
macro_rules! db_params {
    () => { &[] as &[&dyn $crate::store::db::Param] };
    ($($p:expr),+ $(,)?) => { &[$(&$p as &dyn $crate::store::db::Param),+] };
}
pub use crate::db_params as params;

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match *self {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Integer(i),
            Value::Real(f) => ValueRef::Real(f),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

type BoxError = Box<dyn std::error::Error + Sync + Send>;

impl ToSql for Value<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> std::result::Result<IsNull, BoxError> {
        use bytes::BufMut;
        let mismatch = || -> BoxError { format!("cannot bind {self:?} as {ty}").into() };
        match *self {
            Value::Null => return Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT8 => out.put_i64(i),
                Type::INT4 => out.put_i32(i32::try_from(i)?),
                Type::INT2 => out.put_i16(i16::try_from(i)?),
                Type::BOOL => out.put_u8((i != 0) as u8),
                Type::FLOAT8 => out.put_f64(i as f64),
                Type::FLOAT4 => out.put_f32(i as f32),
                Type::TEXT | Type::VARCHAR | Type::UNKNOWN => {
                    out.put_slice(i.to_string().as_bytes())
                }
                _ => return Err(mismatch()),
            },
            Value::Real(f) => match *ty {
                Type::FLOAT8 => out.put_f64(f),
                Type::FLOAT4 => out.put_f32(f as f32),
                Type::TEXT | Type::VARCHAR | Type::UNKNOWN => {
                    out.put_slice(f.to_string().as_bytes())
                }
                _ => return Err(mismatch()),
            },
            Value::Text(s) => match *ty {
                Type::TEXT | Type::VARCHAR | Type::UNKNOWN | Type::NAME | Type::JSON => {
                    out.put_slice(s.as_bytes())
                }
                Type::JSONB => {
                    out.put_u8(1);
                    out.put_slice(s.as_bytes())
                }
                Type::BYTEA => out.put_slice(s.as_bytes()),
                Type::INT8 => out.put_i64(s.trim().parse()?),
                _ => return Err(mismatch()),
            },
            Value::Blob(b) => match *ty {
                Type::BYTEA => out.put_slice(b),
                _ => return Err(mismatch()),
            },
        }
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// A PostgreSQL column as it came, for [`FromDb`] to read.
struct Raw<'a>(Option<&'a [u8]>, Type);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> std::result::Result<Self, BoxError> {
        Ok(Raw(Some(raw), ty.clone()))
    }

    fn from_sql_null(ty: &Type) -> std::result::Result<Self, BoxError> {
        Ok(Raw(None, ty.clone()))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// A PostgreSQL column's value in the terms of [`Value`].
fn pg_value<'a>(raw: &'a Raw<'a>) -> Result<Value<'a>> {
    let Some(b) = raw.0 else {
        return Ok(Value::Null);
    };
    let fixed = |n: usize| -> Result<&[u8]> {
        (b.len() == n)
            .then_some(b)
            .ok_or_else(|| anyhow!("a {} column of {} bytes", raw.1, b.len()))
    };
    Ok(match raw.1 {
        Type::INT8 => Value::Int(i64::from_be_bytes(fixed(8)?.try_into()?)),
        Type::INT4 => Value::Int(i32::from_be_bytes(fixed(4)?.try_into()?) as i64),
        Type::INT2 => Value::Int(i16::from_be_bytes(fixed(2)?.try_into()?) as i64),
        Type::BOOL => Value::Int((fixed(1)?[0] != 0) as i64),
        Type::FLOAT8 => Value::Real(f64::from_be_bytes(fixed(8)?.try_into()?)),
        Type::FLOAT4 => Value::Real(f32::from_be_bytes(fixed(4)?.try_into()?) as f64),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::JSON | Type::UNKNOWN => {
            Value::Text(std::str::from_utf8(b)?)
        }
        Type::JSONB => Value::Text(std::str::from_utf8(b.get(1..).unwrap_or_default())?),
        Type::BYTEA => Value::Blob(b),
        ref other => anyhow::bail!("a column of type {other} (cast it in the query)"),
    })
}

/// What a column may be read as.
pub trait FromDb: Sized + rusqlite::types::FromSql {
    fn from_value(v: Value<'_>) -> Result<Self>;
}

macro_rules! int_from_db {
    ($($t:ty),*) => {$(
        impl FromDb for $t {
            fn from_value(v: Value<'_>) -> Result<Self> {
                match v {
                    Value::Int(i) => Ok(<$t>::try_from(i)?),
                    other => Err(anyhow!("{other:?} is not an integer")),
                }
            }
        }
    )*};
}
int_from_db!(i64, i32, u32, u16, u8);

impl FromDb for bool {
    fn from_value(v: Value<'_>) -> Result<Self> {
        match v {
            Value::Int(i) => Ok(i != 0),
            other => Err(anyhow!("{other:?} is not a boolean")),
        }
    }
}

impl FromDb for f64 {
    fn from_value(v: Value<'_>) -> Result<Self> {
        match v {
            Value::Real(f) => Ok(f),
            Value::Int(i) => Ok(i as f64),
            other => Err(anyhow!("{other:?} is not a number")),
        }
    }
}

impl FromDb for String {
    fn from_value(v: Value<'_>) -> Result<Self> {
        match v {
            Value::Text(s) => Ok(s.to_owned()),
            Value::Int(i) => Ok(i.to_string()),
            other => Err(anyhow!("{other:?} is not text")),
        }
    }
}

impl FromDb for Vec<u8> {
    fn from_value(v: Value<'_>) -> Result<Self> {
        match v {
            Value::Blob(b) => Ok(b.to_vec()),
            Value::Text(s) => Ok(s.as_bytes().to_vec()),
            other => Err(anyhow!("{other:?} is not bytes")),
        }
    }
}

impl<T: FromDb> FromDb for Option<T> {
    fn from_value(v: Value<'_>) -> Result<Self> {
        match v {
            Value::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// A column's position.
pub trait ColumnIndex {
    fn index(self) -> usize;
}

impl ColumnIndex for usize {
    fn index(self) -> usize {
        self
    }
}

/// One row of a result.
pub enum Row<'r> {
    Sqlite(&'r rusqlite::Row<'r>),
    Postgres(&'r postgres::Row),
}

impl Row<'_> {
    /// Column `i` as a `T`.
    pub fn get<I: ColumnIndex, T: FromDb>(&self, i: I) -> Result<T> {
        let i = i.index();
        match self {
            Row::Sqlite(r) => Ok(r.get(i)?),
            Row::Postgres(r) => {
                let raw: Raw<'_> = r.try_get(i)?;
                T::from_value(pg_value(&raw)?).with_context(|| format!("column {i}"))
            }
        }
    }

    /// Whether column `i` is NULL.
    pub fn is_null(&self, i: usize) -> Result<bool> {
        match self {
            Row::Sqlite(r) => Ok(matches!(r.get_ref(i)?, rusqlite::types::ValueRef::Null)),
            Row::Postgres(r) => Ok(r.try_get::<_, Raw<'_>>(i)?.0.is_none()),
        }
    }
}

/// A prepared statement.
pub enum Stmt<'c> {
    Cached(rusqlite::CachedStatement<'c>),
    Plain(rusqlite::Statement<'c>),
    Postgres(&'c PgConn, postgres::Statement),
}

impl<'c> Stmt<'c> {
    fn sqlite(&mut self) -> &mut rusqlite::Statement<'c> {
        match self {
            Stmt::Cached(s) => s,
            Stmt::Plain(s) => s,
            Stmt::Postgres(..) => unreachable!("a PostgreSQL statement"),
        }
    }

    fn pg_rows<P: Params>(&mut self, p: P) -> Result<Vec<postgres::Row>> {
        let Stmt::Postgres(conn, st) = self else {
            unreachable!("a SQLite statement")
        };
        p.with(|p| {
            let values: Vec<Value<'_>> = p.iter().map(|v| v.value()).collect();
            let refs: Vec<&(dyn ToSql + Sync)> =
                values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
            blocking(|| conn.client.borrow_mut().query(st, &refs)).map_err(|e| pg_error(e, conn))
        })
    }

    /// Runs the statement; the rows it changed.
    pub fn execute<P: Params>(&mut self, p: P) -> Result<usize> {
        if let Stmt::Postgres(conn, st) = self {
            return p.with(|p| {
                let values: Vec<Value<'_>> = p.iter().map(|v| v.value()).collect();
                let refs: Vec<&(dyn ToSql + Sync)> =
                    values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
                Ok(blocking(|| conn.client.borrow_mut().execute(&*st, &refs))
                    .map_err(|e| pg_error(e, conn))? as usize)
            });
        }
        let st = self.sqlite();
        Ok(p.with(|p| st.execute(rusqlite::params_from_iter(p.iter().map(|v| v.value()))))?)
    }

    /// An `INSERT` that returns the new row's `id` (its SQL ends with
    /// `RETURNING id` on PostgreSQL, see [`Conn::prepare_insert`]).
    pub fn insert<P: Params>(&mut self, p: P) -> Result<i64> {
        if let Stmt::Postgres(..) = self {
            let rows = self.pg_rows(p)?;
            let row = rows.first().context("an INSERT returned no id")?;
            return Row::Postgres(row).get(0);
        }
        let st = self.sqlite();
        Ok(p.with(|p| st.insert(rusqlite::params_from_iter(p.iter().map(|v| v.value()))))?)
    }

    /// The first row, mapped by `f`; [`QueryError::NoRows`] when there is none.
    pub fn query_row<T, P: Params>(
        &mut self,
        p: P,
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> QueryResult<T> {
        if let Stmt::Postgres(..) = self {
            let rows = self.pg_rows(p)?;
            let row = rows.first().ok_or(QueryError::NoRows)?;
            return Ok(f(&Row::Postgres(row))?);
        }
        let st = self.sqlite();
        p.with(|p| {
            let mut rows = st.query(rusqlite::params_from_iter(p.iter().map(|v| v.value())))?;
            match rows.next()? {
                Some(r) => Ok(f(&Row::Sqlite(r))?),
                None => Err(QueryError::NoRows),
            }
        })
    }

    /// Every row, mapped by `f`.
    pub fn query_map<T, P: Params>(
        &mut self,
        p: P,
        mut f: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<std::vec::IntoIter<Result<T>>> {
        let mut out = Vec::new();
        if let Stmt::Postgres(..) = self {
            for row in &self.pg_rows(p)? {
                out.push(f(&Row::Postgres(row)));
            }
            return Ok(out.into_iter());
        }
        let st = self.sqlite();
        p.with(|p| -> Result<()> {
            let mut rows = st.query(rusqlite::params_from_iter(p.iter().map(|v| v.value())))?;
            while let Some(r) = rows.next()? {
                out.push(f(&Row::Sqlite(r)));
            }
            Ok(())
        })?;
        Ok(out.into_iter())
    }

    /// Whether the statement returns a row.
    pub fn exists<P: Params>(&mut self, p: P) -> Result<bool> {
        match self.query_row(p, |_| Ok(())) {
            Ok(()) => Ok(true),
            Err(QueryError::NoRows) => Ok(false),
            Err(QueryError::Failed(e)) => Err(e),
        }
    }
}

/// A PostgreSQL error with its server message and the statement it came from.
fn pg_error(e: postgres::Error, conn: &PgConn) -> anyhow::Error {
    conn.failed();
    match e.as_db_error() {
        Some(db) => anyhow!("{}: {}", db.code().code(), db.message()).context(e),
        None => e.into(),
    }
}

impl Conn {
    pub fn backend(&self) -> Backend {
        match self {
            Conn::Sqlite(_) => Backend::Sqlite,
            Conn::Postgres(_) => Backend::Postgres,
        }
    }

    /// The SQLite connection, for what only SQLite has (pragmas, backup).
    pub fn sqlite(&self) -> Option<&rusqlite::Connection> {
        match self {
            Conn::Sqlite(c) => Some(c),
            Conn::Postgres(_) => None,
        }
    }

    /// A PostgreSQL statement, prepared once per session: `suffix` is
    /// added to its translation (`RETURNING id` for an insert).
    fn pg_prepare<'c>(pg: &'c PgConn, sql: &str, suffix: &str) -> Result<Stmt<'c>> {
        pg.reconnect_if_closed()?;
        let key = format!("{sql}{suffix}");
        if let Some(st) = pg.statements.borrow().get(&key) {
            return Ok(Stmt::Postgres(pg, st.clone()));
        }
        let translated = format!("{}{suffix}", translate(sql));
        let st = blocking(|| pg.client.borrow_mut().prepare(&translated)).map_err(|e| {
            pg.failed();
            pg_error_sql(e, &translated)
        })?;
        pg.statements.borrow_mut().insert(key, st.clone());
        Ok(Stmt::Postgres(pg, st))
    }

    /// A statement kept prepared for the connection's life.
    pub fn prepare_cached(&self, sql: &str) -> Result<Stmt<'_>> {
        match self {
            Conn::Sqlite(c) => Ok(Stmt::Cached(c.prepare_cached(sql)?)),
            Conn::Postgres(pg) => Self::pg_prepare(pg, sql, ""),
        }
    }

    /// A statement prepared for one use.
    pub fn prepare(&self, sql: &str) -> Result<Stmt<'_>> {
        match self {
            Conn::Sqlite(c) => Ok(Stmt::Plain(c.prepare(sql)?)),
            Conn::Postgres(pg) => Self::pg_prepare(pg, sql, ""),
        }
    }

    /// An `INSERT` whose [`Stmt::insert`] returns the new row's `id`.
    pub fn prepare_insert(&self, sql: &str) -> Result<Stmt<'_>> {
        match self {
            Conn::Sqlite(c) => Ok(Stmt::Cached(c.prepare_cached(sql)?)),
            Conn::Postgres(pg) => Self::pg_prepare(pg, sql, " RETURNING id"),
        }
    }

    pub fn execute<P: Params>(&self, sql: &str, p: P) -> Result<usize> {
        self.prepare_cached(sql)?.execute(p)
    }

    pub fn query_row<T, P: Params>(
        &self,
        sql: &str,
        p: P,
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> QueryResult<T> {
        self.prepare_cached(sql)?.query_row(p, f)
    }

    /// Runs statements that take no parameters, in order.
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match self {
            Conn::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Conn::Postgres(pg) => {
                pg.reconnect_if_closed()?;
                blocking(|| pg.client.borrow_mut().batch_execute(sql)).map_err(|e| {
                    pg.failed();
                    pg_error_sql(e, sql)
                })
            }
        }
    }

    /// Whether no transaction is open.
    pub fn is_autocommit(&self) -> bool {
        match self {
            Conn::Sqlite(c) => c.is_autocommit(),
            Conn::Postgres(pg) => pg.depth.get() == 0,
        }
    }

    /// Opens a transaction that takes the write lock at once (SQLite's
    /// `BEGIN IMMEDIATE`); [`Conn::commit`] or [`Conn::rollback`] ends it.
    pub fn begin(&self) -> Result<()> {
        match self {
            Conn::Sqlite(c) => Ok(c.execute_batch("BEGIN IMMEDIATE")?),
            Conn::Postgres(pg) if pg.depth.get() > 0 => {
                anyhow::bail!("cannot start a transaction within a transaction")
            }
            Conn::Postgres(pg) => {
                // One writer at a time, as SQLite's BEGIN IMMEDIATE: a batch
                // reads what it decides on and writes it without another
                // writer in between.
                self.execute_batch("BEGIN")?;
                pg.depth.set(1);
                if let Err(e) = self.execute_batch(WRITER_LOCK) {
                    let _ = self.rollback();
                    return Err(e);
                }
                Ok(())
            }
        }
    }

    pub fn commit(&self) -> Result<()> {
        if let Conn::Postgres(pg) = self
            && pg.aborted.get()
        {
            let _ = self.rollback();
            anyhow::bail!("the transaction was rolled back: a statement in it failed");
        }
        let done = self.execute_batch("COMMIT");
        if let Conn::Postgres(pg) = self {
            pg.depth.set(0);
        }
        done
    }

    pub fn rollback(&self) -> Result<()> {
        let done = self.execute_batch("ROLLBACK");
        if let Conn::Postgres(pg) = self {
            pg.depth.set(0);
            pg.aborted.set(false);
        }
        done
    }

    /// A transaction (or, inside one, a savepoint), rolled back when dropped
    /// before [`Tx::commit`].
    pub fn transaction(&self) -> Result<Tx<'_>> {
        if self.is_autocommit() {
            self.begin_deferred()?;
            Ok(Tx {
                conn: self,
                savepoint: None,
                done: false,
            })
        } else {
            self.savepoint()
        }
    }

    fn begin_deferred(&self) -> Result<()> {
        self.execute_batch("BEGIN")?;
        if let Conn::Postgres(pg) = self {
            pg.depth.set(1);
        }
        Ok(())
    }

    /// A savepoint: its own transaction outside one, a part of it inside.
    pub fn savepoint(&self) -> Result<Tx<'_>> {
        let depth = match self {
            Conn::Sqlite(_) => None,
            Conn::Postgres(pg) => Some(pg.depth.get()),
        };
        let name = match depth {
            Some(0) => {
                // PostgreSQL has savepoints only inside a transaction.
                self.begin_deferred()?;
                return Ok(Tx {
                    conn: self,
                    savepoint: None,
                    done: false,
                });
            }
            Some(d) => {
                if let Conn::Postgres(pg) = self {
                    pg.depth.set(d + 1);
                }
                format!("sp{d}")
            }
            None => {
                let Conn::Sqlite(c) = self else {
                    unreachable!()
                };
                format!("sp{}", c.is_autocommit() as u8)
            }
        };
        if let Err(e) = self.execute_batch(&format!("SAVEPOINT {name}")) {
            if let Conn::Postgres(pg) = self {
                pg.depth.set(pg.depth.get() - 1);
            }
            return Err(e);
        }
        Ok(Tx {
            conn: self,
            savepoint: Some(name),
            done: false,
        })
    }
}

fn pg_error_sql(e: postgres::Error, sql: &str) -> anyhow::Error {
    let what = match e.as_db_error() {
        Some(db) => anyhow!("{}: {}", db.code().code(), db.message()),
        None => anyhow!("{e}"),
    };
    what.context(format!(
        "in {}",
        sql.split_whitespace().collect::<Vec<_>>().join(" ")
    ))
}

/// A transaction or savepoint in progress.
pub struct Tx<'c> {
    conn: &'c Conn,
    savepoint: Option<String>,
    done: bool,
}

impl std::ops::Deref for Tx<'_> {
    type Target = Conn;

    fn deref(&self) -> &Conn {
        self.conn
    }
}

impl Tx<'_> {
    /// Commits (releases the savepoint); when that fails, dropping rolls
    /// it back, so no transaction is left open.
    pub fn commit(mut self) -> Result<()> {
        match &self.savepoint {
            None => self.conn.commit()?,
            Some(name) => {
                self.conn.execute_batch(&format!("RELEASE {name}"))?;
                self.left();
            }
        }
        self.done = true;
        Ok(())
    }

    fn left(&self) {
        if let Conn::Postgres(pg) = self.conn {
            pg.depth.set(pg.depth.get().saturating_sub(1));
        }
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        match &self.savepoint {
            None => {
                let _ = self.conn.rollback();
            }
            Some(name) => {
                let undone = self
                    .conn
                    .execute_batch(&format!("ROLLBACK TO {name}; RELEASE {name}"));
                if let (Ok(()), Conn::Postgres(pg)) = (undone, self.conn) {
                    pg.aborted.set(false);
                }
                self.left();
            }
        }
    }
}

/// The transaction-scoped advisory lock a writing batch takes ("ticketd\x02").
const WRITER_LOCK: &str = "SELECT pg_advisory_xact_lock(8388345093869036546)";

/// The key of [`WRITER_LOCK`] ("ticketd\x02"), for an operator (or a test)
/// who must hold every writer back.
pub const WRITER_LOCK_KEY: i64 = 0x7469_636b_6574_6402;

/// What every PostgreSQL session of the store starts with: UTC, and the
/// session's own table of webhook subscriptions (as SQLite's `temp`).
const SESSION_SETUP: &str = "SET TIME ZONE 'UTC';
     SET idle_in_transaction_session_timeout = '60s';
     CREATE TEMP TABLE IF NOT EXISTS webhook_subscriptions (
         name TEXT COLLATE \"C\" PRIMARY KEY,
         pack TEXT COLLATE \"C\" NOT NULL,
         spec TEXT COLLATE \"C\" NOT NULL)";

impl PgConn {
    /// A session of `target` over `client`, set up.
    pub(super) fn open(client: postgres::Client, target: PgTarget) -> Result<PgConn> {
        let pg = PgConn {
            client: RefCell::new(DropOffAsync::new(client)),
            statements: RefCell::new(HashMap::new()),
            depth: Cell::new(0),
            aborted: Cell::new(false),
            target,
            subscriptions: RefCell::new(Vec::new()),
        };
        pg.setup()?;
        Ok(pg)
    }

    /// Notes a failed statement: inside a transaction, it aborted it.
    fn failed(&self) {
        if self.depth.get() > 0 {
            self.aborted.set(true);
        }
    }

    /// Keeps the webhook subscriptions written to the session's table, to
    /// write them again in a new session.
    pub(super) fn remember_subscriptions(&self, rows: Vec<[String; 3]>) {
        *self.subscriptions.borrow_mut() = rows;
    }

    /// Opens a new session when the server closed this one (a restart, a
    /// failover, an idle timeout) and no transaction was open in it: the
    /// failed statement's caller saw the error; the next one goes on.
    fn reconnect_if_closed(&self) -> Result<()> {
        if !self.client.borrow().is_closed() {
            return Ok(());
        }
        // Whatever was open died with the session.
        self.depth.set(0);
        self.aborted.set(false);
        tracing::warn!(database = %self.target.url, "the PostgreSQL session was closed: connecting again");
        let client = blocking(|| self.target.connect())?;
        *self.client.borrow_mut() = DropOffAsync::new(client);
        self.statements.borrow_mut().clear();
        blocking(|| self.setup())
    }

    /// Sets a new session up: the temporary table and the subscriptions.
    fn setup(&self) -> Result<()> {
        let mut c = self.client();
        c.batch_execute(SESSION_SETUP)
            .map_err(|e| pg_error_sql(e, SESSION_SETUP))?;
        for [name, pack, spec] in self.subscriptions.borrow().iter() {
            c.execute(
                "INSERT INTO pg_temp.webhook_subscriptions (name, pack, spec) VALUES ($1, $2, $3)",
                &[name, pack, spec],
            )?;
        }
        Ok(())
    }

    /// The client itself, for what the store does only on PostgreSQL.
    pub fn client(&self) -> std::cell::RefMut<'_, postgres::Client> {
        std::cell::RefMut::map(self.client.borrow_mut(), |c| &mut **c)
    }
}

/// Runs a call of the PostgreSQL client, which blocks on a runtime of its
/// own: on an async worker thread, as a blocking section (the store is
/// reached from blocking threads, but a command or a test may read it from
/// async code).
pub(super) fn blocking<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// The store's SQL as PostgreSQL reads it: `?N` placeholders as `$N` (a
/// bare `?` numbered in order), and a JSON array's elements
/// (`json_each(?N)`) as `json_array_elements_text`, whose one column is
/// also named `value`. Quoted text is left as it is.
pub fn translate(sql: &str) -> String {
    let sql = sql
        .replace("json_each(", "json_array_elements_text(")
        .replace(
            "temp.webhook_subscriptions",
            "pg_temp.webhook_subscriptions",
        );
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut quote: Option<char> = None;
    let mut next = 0u32;
    let mut json_arg = false;
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            out.push(c);
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => {
                quote = Some(c);
                out.push(c);
            }
            // A comment runs to the end of its line, quotes and all.
            '-' if chars.peek() == Some(&'-') => {
                out.push(c);
                for c in chars.by_ref() {
                    out.push(c);
                    if c == '\n' {
                        break;
                    }
                }
            }
            '?' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    next += 1;
                    digits = next.to_string();
                }
                out.push('$');
                out.push_str(&digits);
                if json_arg {
                    out.push_str("::json");
                }
            }
            _ => out.push(c),
        }
        json_arg = out.ends_with("json_array_elements_text(");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::translate;

    #[test]
    fn placeholders_and_json_arrays_are_written_as_postgresql_reads_them() {
        assert_eq!(
            translate(
                "SELECT a FROM t WHERE b = ?2 AND c = '?1' AND d IN (SELECT value FROM json_each(?1))"
            ),
            "SELECT a FROM t WHERE b = $2 AND c = '?1' AND d IN (SELECT value FROM json_array_elements_text($1::json))"
        );
        assert_eq!(translate("VALUES (?, ?)"), "VALUES ($1, $2)");
        assert_eq!(
            translate("-- the owner's ?1\nSELECT ?1"),
            "-- the owner's ?1\nSELECT $1"
        );
    }
}
