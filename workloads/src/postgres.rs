//! The PostgreSQL adapter: each [`Op`] as one transaction at the isolation level the system's
//! definition names (`[client] isolation`), spoken with tokio-postgres, and its outcome as a
//! [`Completion`] classified as shared/DESIGN.md section 3 asks.
//!
//! # The mapping
//!
//! Every operation is `BEGIN ISOLATION LEVEL <level>`, its steps in order, `COMMIT`: a `txn`'s
//! micro-ops, or the one step of a single-key operation. Four tables, one per kind of value:
//!
//! | step                     | statement                                                              |
//! |--------------------------|------------------------------------------------------------------------|
//! | `append k v` (`append`)  | `INSERT INTO lists … ON CONFLICT (k) DO UPDATE SET v = lists.v \|\| excluded.v` |
//! | `w k v` (`write`)        | `INSERT INTO registers … ON CONFLICT (k) DO UPDATE SET v = excluded.v`  |
//! | `incr k n` (`incr`)      | `INSERT INTO counters … ON CONFLICT (k) DO UPDATE SET v = counters.v + excluded.v` |
//! | `add k e`                | `INSERT INTO set_elements (k, e) … ON CONFLICT DO NOTHING`             |
//! | `cas k [old, new]`       | `UPDATE registers SET v = new WHERE k = $1 AND v = old`; old null: `INSERT … ON CONFLICT DO NOTHING`; no row changed: `fail` "precondition" |
//! | `r k` (`read`)           | one `SELECT` of `k` in all four tables                                  |
//!
//! A read is told nothing of what `k` is, and asks all four tables at once (as the etcd adapter
//! reads registers and sets with one range): a list reads as its array, a register or counter
//! as its integer, a set as its elements in ascending order, a key in none as `null`, and a key
//! in two tables fails the operation (no workload writes one; /op would have refused it).
//! Values are 64-bit integers (`bigint`).
//!
//! The tables are created by the first connection to each server, `CREATE TABLE IF NOT EXISTS`
//! inside a transaction that holds an advisory lock ([`SCHEMA_LOCK`]), so that concurrent
//! clients neither race nor fail; readiness ([`ready`]) does it before any client starts.
//!
//! # Connections
//!
//! A client keeps, per server, the connections it is not using; an operation takes one, or
//! opens one (lazily: after a kill, the first operation that needs a connection makes it), and
//! gives it back when the connection is known to be idle again. So the harness holds at most
//! one connection per client worker, plus one per leader probe. A connection that timed out or
//! failed in a way that leaves its state unknown is closed (its task aborted, its socket shut),
//! never reused.
//!
//! # Classification
//!
//! The whole operation, connecting included, is bounded by the client's timeout.
//!
//! - **Connecting** fails (refused, unreachable, no answer in time, too many connections,
//!   still starting up): `fail`, nothing was sent. (The runner backs off after fast ones.)
//! - **Before `COMMIT` was sent**, anything — an error the server answered (a serialization
//!   failure `40001`, a deadlock `40P01`, any other), a connection lost, a timeout: `fail`.
//!   PostgreSQL commits a transaction only on `COMMIT`; without one, the server rolls it back
//!   when it fails, when the client says `ROLLBACK` (it does, on a connection it keeps), or when
//!   the connection closes (it is closed on a timeout, so a paused server that wakes up reads
//!   the end of the connection, never a `COMMIT`).
//! - **`COMMIT` itself**:
//!   - answered `40001` or `40P01` (serializable transactions are checked again at commit):
//!     `fail`, the server rolled it back;
//!   - any other error, a connection lost, a timeout: `info`, it may have committed, unless the
//!     transaction wrote nothing: then `fail`, since a transaction of reads changes nothing
//!     whether or not it committed (as the etcd adapter fails reads);
//!   - answered: `ok`, with the reads filled in.
//! - A `cas` whose row did not match: `fail` "precondition" (rolled back; nothing was written).
//! - An operation the adapter cannot express (a value that is not an integer, an unknown `f`):
//!   `fail` before anything is sent.
//!
//! # Leader probe and readiness
//!
//! One server, which leads unless it is a standby: [`role`] asks `pg_is_in_recovery()` and
//! says `leader` when it is false; PostgreSQL has no term (0). So faults aimed at the leader
//! take the one node, and a definition lists `[status] fields = ["role"]`. Readiness is a
//! connection that creates the tables and answers `SELECT`: PostgreSQL speaks no HTTP.

use crate::client::{Completion, NodeRole, CONNECT_TIMEOUT};
use crate::Op;
use history::txn::{self, Mop, MopKind, MopValue};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;
use tokio_postgres::{Client, NoTls, Statement};

/// The advisory lock under which the tables are created (a number nothing else uses:
/// "HARNESS" in ASCII).
pub const SCHEMA_LOCK: i64 = 0x0048_4152_4e45_5353;

/// The tables, created once per server under [`SCHEMA_LOCK`].
pub fn schema() -> String {
    format!(
        "BEGIN; \
         SELECT pg_advisory_xact_lock({SCHEMA_LOCK}); \
         CREATE TABLE IF NOT EXISTS lists (k text PRIMARY KEY, v bigint[] NOT NULL); \
         CREATE TABLE IF NOT EXISTS registers (k text PRIMARY KEY, v bigint NOT NULL); \
         CREATE TABLE IF NOT EXISTS counters (k text PRIMARY KEY, v bigint NOT NULL); \
         CREATE TABLE IF NOT EXISTS set_elements (k text, e bigint, PRIMARY KEY (k, e)); \
         COMMIT"
    )
}

const READ: &str = "SELECT (SELECT v FROM lists WHERE k = $1), \
    (SELECT v FROM registers WHERE k = $1), \
    (SELECT v FROM counters WHERE k = $1), \
    (SELECT array_agg(e ORDER BY e) FROM set_elements WHERE k = $1)";
const APPEND: &str = "INSERT INTO lists AS l (k, v) VALUES ($1, ARRAY[$2::bigint]) \
    ON CONFLICT (k) DO UPDATE SET v = l.v || excluded.v";
const WRITE: &str = "INSERT INTO registers AS r (k, v) VALUES ($1, $2) \
    ON CONFLICT (k) DO UPDATE SET v = excluded.v";
const INCR: &str = "INSERT INTO counters AS c (k, v) VALUES ($1, $2) \
    ON CONFLICT (k) DO UPDATE SET v = c.v + excluded.v";
const ADD: &str = "INSERT INTO set_elements (k, e) VALUES ($1, $2) ON CONFLICT DO NOTHING";
const CAS: &str = "UPDATE registers SET v = $2 WHERE k = $1 AND v = $3";
const CAS_ABSENT: &str = "INSERT INTO registers (k, v) VALUES ($1, $2) ON CONFLICT DO NOTHING";

/// SQLSTATEs after which the server has certainly rolled the transaction back, even when they
/// answer `COMMIT`: `serialization_failure` and `deadlock_detected`.
pub const ROLLED_BACK: [&str; 2] = ["40001", "40P01"];

/// How long a `ROLLBACK` on a connection we would like to keep may take; past it the
/// connection is closed instead.
const ROLLBACK_TIMEOUT: Duration = Duration::from_millis(500);

/// The isolation level every transaction runs at (`[client] isolation` of a definition).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Isolation {
    #[default]
    Serializable,
    RepeatableRead,
    ReadCommitted,
}

impl Isolation {
    /// The names [`Isolation::from_str`] accepts.
    pub const NAMES: [&'static str; 3] = ["serializable", "repeatable-read", "read-committed"];

    pub fn name(self) -> &'static str {
        match self {
            Isolation::Serializable => "serializable",
            Isolation::RepeatableRead => "repeatable-read",
            Isolation::ReadCommitted => "read-committed",
        }
    }

    /// The statement that opens a transaction at this level.
    pub fn begin(self) -> &'static str {
        match self {
            Isolation::Serializable => "BEGIN ISOLATION LEVEL SERIALIZABLE",
            Isolation::RepeatableRead => "BEGIN ISOLATION LEVEL REPEATABLE READ",
            Isolation::ReadCommitted => "BEGIN ISOLATION LEVEL READ COMMITTED",
        }
    }
}

impl fmt::Display for Isolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Isolation {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Isolation::NAMES
            .iter()
            .zip([
                Isolation::Serializable,
                Isolation::RepeatableRead,
                Isolation::ReadCommitted,
            ])
            .find(|(n, _)| **n == s)
            .map(|(_, i)| i)
            .ok_or_else(|| {
                format!(
                    "unknown isolation level '{s}'; the levels are: {}",
                    Isolation::NAMES.join(", ")
                )
            })
    }
}

/// One step of an operation's transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Read(String),
    Write(String, i64),
    Append(String, i64),
    Incr(String, i64),
    Add(String, i64),
    /// Expected value (None: absent), new value.
    Cas(String, Option<i64>, i64),
}

impl Step {
    fn writes(&self) -> bool {
        !matches!(self, Step::Read(_))
    }
}

/// What an operation asks: its steps, and the micro-ops to fill in for a `txn`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Plan {
    steps: Vec<Step>,
    /// A `txn`'s micro-ops (None for a single-key operation).
    mops: Option<Vec<Mop>>,
}

impl Plan {
    /// The plan for `op`, or why the adapter cannot express it (nothing is sent then).
    fn of(op: &Op) -> Result<Plan, String> {
        if op.f == "txn" {
            let mops = txn::parse_mops(&op.value).map_err(|e| format!("postgres adapter: {e}"))?;
            let steps = mops
                .iter()
                .map(|m| {
                    let key = m.key.clone();
                    let int = || {
                        m.value
                            .int()
                            .ok_or_else(|| format!("postgres adapter: {m} needs an integer"))
                    };
                    Ok(match m.f {
                        MopKind::Read => Step::Read(key),
                        MopKind::Write => Step::Write(key, int()?),
                        MopKind::Append => Step::Append(key, int()?),
                        MopKind::Incr => Step::Incr(key, int()?),
                    })
                })
                .collect::<Result<_, String>>()?;
            return Ok(Plan {
                steps,
                mops: Some(mops),
            });
        }
        let key = match op.key.as_deref() {
            Some(k) if !k.is_empty() => k.to_owned(),
            _ => return Err(format!("postgres adapter: {} needs a non-empty key", op.f)),
        };
        let int = |v: &Value| {
            v.as_i64().ok_or_else(|| {
                format!("postgres adapter: {} stores 64-bit integers, not {v}", op.f)
            })
        };
        let step = match op.f.as_str() {
            "read" => Step::Read(key),
            "write" => Step::Write(key, int(&op.value)?),
            "append" => Step::Append(key, int(&op.value)?),
            "incr" => Step::Incr(key, int(&op.value)?),
            "add" => Step::Add(key, int(&op.value)?),
            "cas" => match op.value.as_array().map(Vec::as_slice) {
                Some([Value::Null, new]) => Step::Cas(key, None, int(new)?),
                Some([old, new]) => Step::Cas(key, Some(int(old)?), int(new)?),
                _ => {
                    return Err(format!(
                        "postgres adapter: cas needs [expected, new], not {}",
                        op.value
                    ))
                }
            },
            other => {
                return Err(format!(
                    "postgres adapter: {other:?} is not supported (txn, read, write, cas, add, \
                     append, incr are)"
                ))
            }
        };
        Ok(Plan {
            steps: vec![step],
            mops: None,
        })
    }

    fn writes(&self) -> bool {
        self.steps.iter().any(Step::writes)
    }

    /// The `ok` completion, given what each read returned (in order).
    fn completed(&self, op: &Op, reads: Vec<MopValue>) -> Completion {
        match &self.mops {
            Some(mops) => {
                let mut reads = reads.into_iter();
                let filled: Vec<Mop> = mops
                    .iter()
                    .map(|m| match m.f {
                        MopKind::Read => Mop {
                            value: reads.next().unwrap_or(MopValue::Nil),
                            ..m.clone()
                        },
                        _ => m.clone(),
                    })
                    .collect();
                Completion::ok(txn::to_json(&filled))
            }
            None if matches!(self.steps.first(), Some(Step::Read(_))) => {
                Completion::ok(reads.into_iter().next().unwrap_or(MopValue::Nil).to_json())
            }
            None => Completion::ok(op.value.clone()),
        }
    }
}

/// Where an operation was when it went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// Opening a connection: nothing of the operation was sent.
    Connect,
    /// `BEGIN` or a step: `COMMIT` was not sent.
    BeforeCommit,
    /// `COMMIT` was sent (or about to be).
    Commit,
}

/// What went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Trouble {
    /// The client's timeout passed.
    Timeout,
    /// The server answered with an error.
    Db { code: String, message: String },
    /// The connection was lost or could not be made, or the answer could not be read.
    Lost(String),
}

impl Trouble {
    fn of(e: &tokio_postgres::Error) -> Trouble {
        match e.as_db_error() {
            Some(db) => Trouble::Db {
                code: db.code().code().to_owned(),
                message: db.message().to_owned(),
            },
            None => Trouble::Lost(crate::client::chain(e)),
        }
    }
}

impl fmt::Display for Trouble {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trouble::Timeout => f.write_str("timed out"),
            Trouble::Db { code, message } => write!(f, "{code} {message}"),
            Trouble::Lost(e) => f.write_str(e),
        }
    }
}

/// How an operation that went wrong at `stage` completes (see the module documentation).
fn classify(op: &Op, writes: bool, stage: Stage, trouble: &Trouble) -> Completion {
    match stage {
        Stage::Connect => Completion::fail(op, format!("connect: {trouble}")),
        Stage::BeforeCommit => Completion::aborted(op, format!("before COMMIT: {trouble}")),
        Stage::Commit => match trouble {
            Trouble::Db { code, .. } if ROLLED_BACK.contains(&code.as_str()) => {
                Completion::aborted(op, format!("COMMIT: {trouble}"))
            }
            _ if !writes => {
                Completion::aborted(op, format!("COMMIT of a read-only transaction: {trouble}"))
            }
            _ => Completion::info(op, format!("COMMIT: {trouble}")),
        },
    }
}

/// A connection with its prepared statements. Dropping it closes it at once.
struct Conn {
    client: Client,
    statements: Statements,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        // The connection's task owns the socket: aborting it closes the socket now rather
        // than whenever a paused server answers what is in flight.
        self.task.abort();
    }
}

struct Statements {
    read: Statement,
    append: Statement,
    write: Statement,
    incr: Statement,
    add: Statement,
    cas: Statement,
    cas_absent: Statement,
}

/// One client's idle connections per server, and the servers whose tables it has made sure of.
#[derive(Default)]
pub(crate) struct Pool {
    idle: Mutex<HashMap<SocketAddr, Vec<Conn>>>,
    schema: Mutex<HashSet<SocketAddr>>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let idle: usize = self
            .idle
            .lock()
            .map(|m| m.values().map(Vec::len).sum())
            .unwrap_or(0);
        write!(f, "Pool {{ idle connections: {idle} }}")
    }
}

impl Pool {
    /// An idle connection to `addr`, or a new one.
    async fn take(&self, addr: SocketAddr, deadline: Instant) -> Result<Conn, Trouble> {
        loop {
            let conn = self
                .idle
                .lock()
                .ok()
                .and_then(|mut m| m.get_mut(&addr).and_then(Vec::pop));
            match conn {
                Some(c) if c.client.is_closed() => continue,
                Some(c) => return Ok(c),
                None => break,
            }
        }
        let known = self.schema.lock().is_ok_and(|s| s.contains(&addr));
        let conn = connect(addr, deadline, !known).await?;
        if let Ok(mut s) = self.schema.lock() {
            s.insert(addr);
        }
        Ok(conn)
    }

    /// Keeps `conn`, known to be idle (no transaction open), for the next operation.
    fn give_back(&self, addr: SocketAddr, conn: Conn) {
        if let Ok(mut m) = self.idle.lock() {
            m.entry(addr).or_default().push(conn);
        }
    }
}

/// Opens a connection to `addr` (user and database `postgres`) and prepares the statements,
/// creating the tables first when `create_tables` says so.
async fn connect(
    addr: SocketAddr,
    deadline: Instant,
    create_tables: bool,
) -> Result<Conn, Trouble> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(addr.ip().to_string())
        .port(addr.port())
        .user("postgres")
        .dbname("postgres")
        .application_name("harness")
        .connect_timeout(CONNECT_TIMEOUT);
    let (client, connection) = within(deadline, config.connect(NoTls)).await?;
    let task = tokio::spawn(async move {
        let _ = connection.await;
    });
    if create_tables {
        if let Err(t) = within(deadline, client.batch_execute(&schema())).await {
            task.abort();
            return Err(t);
        }
    }
    let prepared = within(deadline, async {
        let (read, append, write, incr, add, cas, cas_absent) = tokio::try_join!(
            client.prepare(READ),
            client.prepare(APPEND),
            client.prepare(WRITE),
            client.prepare(INCR),
            client.prepare(ADD),
            client.prepare(CAS),
            client.prepare(CAS_ABSENT),
        )?;
        Ok(Statements {
            read,
            append,
            write,
            incr,
            add,
            cas,
            cas_absent,
        })
    })
    .await;
    match prepared {
        Ok(statements) => Ok(Conn {
            client,
            statements,
            task,
        }),
        Err(t) => {
            task.abort();
            Err(t)
        }
    }
}

/// `fut`, unless `deadline` passes first.
async fn within<T>(
    deadline: Instant,
    fut: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, Trouble> {
    match tokio::time::timeout_at(deadline, fut).await {
        Err(_) => Err(Trouble::Timeout),
        Ok(Err(e)) => Err(Trouble::of(&e)),
        Ok(Ok(v)) => Ok(v),
    }
}

/// How a transaction ended without trouble.
enum Done {
    /// Committed; what each read returned, in order.
    Committed(Vec<MopValue>),
    /// A cas's row did not match; the transaction is still open (to roll back).
    Precondition(String),
}

/// Runs `plan` in one transaction on `conn`.
async fn run(
    conn: &Conn,
    plan: &Plan,
    isolation: Isolation,
    deadline: Instant,
) -> Result<Done, (Stage, Trouble)> {
    let before = |t| (Stage::BeforeCommit, t);
    let c = &conn.client;
    let s = &conn.statements;
    within(deadline, c.batch_execute(isolation.begin()))
        .await
        .map_err(before)?;
    let mut reads = Vec::new();
    for step in &plan.steps {
        match step {
            Step::Read(k) => {
                let row = within(deadline, c.query_one(&s.read, &[k]))
                    .await
                    .map_err(before)?;
                reads.push(read_value(k, &row).map_err(before)?);
            }
            Step::Write(k, v) => {
                within(deadline, c.execute(&s.write, &[k, v]))
                    .await
                    .map_err(before)?;
            }
            Step::Append(k, v) => {
                within(deadline, c.execute(&s.append, &[k, v]))
                    .await
                    .map_err(before)?;
            }
            Step::Incr(k, v) => {
                within(deadline, c.execute(&s.incr, &[k, v]))
                    .await
                    .map_err(before)?;
            }
            Step::Add(k, v) => {
                within(deadline, c.execute(&s.add, &[k, v]))
                    .await
                    .map_err(before)?;
            }
            Step::Cas(k, expected, new) => {
                let changed = match expected {
                    Some(old) => within(deadline, c.execute(&s.cas, &[k, new, old])).await,
                    None => within(deadline, c.execute(&s.cas_absent, &[k, new])).await,
                }
                .map_err(before)?;
                if changed == 0 {
                    let wanted = expected.map_or("absent".to_owned(), |v| v.to_string());
                    return Ok(Done::Precondition(format!("cas: {k} is not {wanted}")));
                }
            }
        }
    }
    within(deadline, c.batch_execute("COMMIT"))
        .await
        .map_err(|t| (Stage::Commit, t))?;
    Ok(Done::Committed(reads))
}

/// A read's row: `k` in lists, registers, counters and sets.
fn read_value(k: &str, row: &tokio_postgres::Row) -> Result<MopValue, Trouble> {
    let get = |e: tokio_postgres::Error| Trouble::Lost(format!("reading {k}: {e}"));
    let list: Option<Vec<i64>> = row.try_get(0).map_err(get)?;
    let register: Option<i64> = row.try_get(1).map_err(get)?;
    let counter: Option<i64> = row.try_get(2).map_err(get)?;
    let set: Option<Vec<i64>> = row.try_get(3).map_err(get)?;
    one_value(k, list, register, counter, set).map_err(|reason| Trouble::Db {
        code: "harness".to_owned(),
        message: reason,
    })
}

/// What a key reads as, from the four tables; a key in more than one is refused.
fn one_value(
    k: &str,
    list: Option<Vec<i64>>,
    register: Option<i64>,
    counter: Option<i64>,
    set: Option<Vec<i64>>,
) -> Result<MopValue, String> {
    let mut found = Vec::new();
    if let Some(l) = list {
        found.push(("a list", MopValue::List(l)));
    }
    if let Some(r) = register {
        found.push(("a register", MopValue::Int(r)));
    }
    if let Some(c) = counter {
        found.push(("a counter", MopValue::Int(c)));
    }
    if let Some(s) = set {
        found.push(("a set", MopValue::List(s)));
    }
    match found.len() {
        0 => Ok(MopValue::Nil),
        1 => Ok(found.remove(0).1),
        _ => Err(format!(
            "key {k} is {}",
            found
                .iter()
                .map(|(what, _)| *what)
                .collect::<Vec<_>>()
                .join(" and ")
        )),
    }
}

/// Runs `op` as one transaction at `isolation` on the server at `addr`, within `timeout`.
pub(crate) async fn invoke(
    pool: &Pool,
    addr: SocketAddr,
    op: &Op,
    isolation: Isolation,
    timeout: Duration,
) -> Completion {
    let plan = match Plan::of(op) {
        Ok(p) => p,
        Err(reason) => return Completion::fail(op, reason),
    };
    let deadline = Instant::now() + timeout;
    let conn = match pool.take(addr, deadline).await {
        Ok(c) => c,
        Err(t) => return classify(op, plan.writes(), Stage::Connect, &t),
    };
    match run(&conn, &plan, isolation, deadline).await {
        Ok(Done::Committed(reads)) => {
            pool.give_back(addr, conn);
            plan.completed(op, reads)
        }
        Ok(Done::Precondition(reason)) => {
            rollback_and_keep(pool, addr, conn).await;
            Completion::precondition_failed(op, reason)
        }
        Err((stage, trouble)) => {
            match (stage, &trouble) {
                // The server ended the transaction and answered: the connection is idle, or
                // will be once told ROLLBACK.
                (Stage::BeforeCommit, Trouble::Db { .. }) => {
                    rollback_and_keep(pool, addr, conn).await
                }
                (Stage::Commit, Trouble::Db { code, .. })
                    if ROLLED_BACK.contains(&code.as_str()) =>
                {
                    pool.give_back(addr, conn)
                }
                // Anything else: the connection's state is unknown; it is closed.
                _ => drop(conn),
            }
            classify(op, plan.writes(), stage, &trouble)
        }
    }
}

/// Ends the open transaction on `conn` and keeps the connection if that worked.
async fn rollback_and_keep(pool: &Pool, addr: SocketAddr, conn: Conn) {
    let deadline = Instant::now() + ROLLBACK_TIMEOUT;
    if within(deadline, conn.client.batch_execute("ROLLBACK"))
        .await
        .is_ok()
    {
        pool.give_back(addr, conn);
    }
}

/// The leader probe: the server leads unless it is a standby (`pg_is_in_recovery()`); no term.
pub(crate) async fn role(pool: &Pool, addr: SocketAddr, timeout: Duration) -> Option<NodeRole> {
    let deadline = Instant::now() + timeout;
    let conn = pool.take(addr, deadline).await.ok()?;
    let row = within(
        deadline,
        conn.client.query_one("SELECT pg_is_in_recovery()", &[]),
    )
    .await
    .ok()?;
    let standby: bool = row.try_get(0).ok()?;
    pool.give_back(addr, conn);
    Some(NodeRole {
        leader: !standby,
        ..Default::default()
    })
}

/// Readiness, for whoever starts the server: a connection that creates the tables if needed
/// and answers a `SELECT`, within `timeout`. The server's version and role on success, what
/// went wrong otherwise.
pub async fn ready(addr: SocketAddr, timeout: Duration) -> Result<Value, String> {
    let deadline = Instant::now() + timeout;
    let conn = connect(addr, deadline, true)
        .await
        .map_err(|t| format!("postgres at {addr}: {t}"))?;
    let row = within(
        deadline,
        conn.client.query_one(
            "SELECT current_setting('server_version'), pg_is_in_recovery()",
            &[],
        ),
    )
    .await
    .map_err(|t| format!("postgres at {addr}: {t}"))?;
    let version: String = row.try_get(0).map_err(|e| e.to_string())?;
    let standby: bool = row.try_get(1).map_err(|e| e.to_string())?;
    Ok(json!({
        "server_version": version,
        "role": if standby { "follower" } else { "leader" },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use history::EventType;

    fn op(f: &str, key: Option<&str>, value: Value) -> Op {
        Op {
            f: f.to_owned(),
            key: key.map(str::to_owned),
            value,
            local: false,
            context: None,
        }
    }

    fn db(code: &str) -> Trouble {
        Trouble::Db {
            code: code.to_owned(),
            message: "some message".to_owned(),
        }
    }

    #[test]
    fn isolation_levels_parse_by_name_and_refuse_typos() {
        for name in Isolation::NAMES {
            let level: Isolation = name.parse().expect("a known level");
            assert_eq!(level.name(), name);
        }
        assert_eq!(
            Isolation::RepeatableRead.begin(),
            "BEGIN ISOLATION LEVEL REPEATABLE READ"
        );
        let e = "serialisable".parse::<Isolation>().unwrap_err();
        assert!(
            e.contains("'serialisable'") && e.contains("repeatable-read"),
            "{e}"
        );
    }

    #[test]
    fn txns_and_single_ops_become_steps() {
        let t = op(
            "txn",
            None,
            json!([
                ["r", "la1", null],
                ["append", "la1", 5],
                ["w", "rw2", 7],
                ["incr", "c", 2]
            ]),
        );
        let plan = Plan::of(&t).expect("a valid txn");
        assert_eq!(
            plan.steps,
            vec![
                Step::Read("la1".into()),
                Step::Append("la1".into(), 5),
                Step::Write("rw2".into(), 7),
                Step::Incr("c".into(), 2),
            ]
        );
        assert!(plan.writes());
        let reads_only = Plan::of(&op("txn", None, json!([["r", "x", null]]))).expect("valid");
        assert!(!reads_only.writes());
        for (f, value, step) in [
            ("read", json!(null), Step::Read("k".into())),
            ("write", json!(3), Step::Write("k".into(), 3)),
            ("cas", json!([null, 4]), Step::Cas("k".into(), None, 4)),
            ("cas", json!([3, 4]), Step::Cas("k".into(), Some(3), 4)),
            ("add", json!(9), Step::Add("k".into(), 9)),
            ("append", json!(9), Step::Append("k".into(), 9)),
            ("incr", json!(1), Step::Incr("k".into(), 1)),
        ] {
            let plan = Plan::of(&op(f, Some("k"), value)).expect(f);
            assert_eq!(plan.steps, vec![step], "{f}");
        }
    }

    #[test]
    fn what_cannot_be_expressed_fails_before_sending() {
        for bad in [
            op("write", Some("k"), json!("text")),
            op("write", Some("k"), json!(1.5)),
            op("cas", Some("k"), json!([1])),
            op("read", None, json!(null)),
            op("delete", Some("k"), json!(null)),
            op("txn", None, json!([["x", "k", 1]])),
            op("txn", None, json!({"not": "a list"})),
        ] {
            assert!(Plan::of(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_committed_txn_has_its_reads_filled_in_order() {
        let t = op(
            "txn",
            None,
            json!([
                ["r", "a", null],
                ["append", "a", 3],
                ["r", "a", null],
                ["r", "b", null]
            ]),
        );
        let plan = Plan::of(&t).expect("valid");
        let c = plan.completed(
            &t,
            vec![
                MopValue::List(vec![1]),
                MopValue::List(vec![1, 3]),
                MopValue::Nil,
            ],
        );
        assert_eq!(c.kind, EventType::Ok);
        assert_eq!(
            c.value,
            json!([
                ["r", "a", [1]],
                ["append", "a", 3],
                ["r", "a", [1, 3]],
                ["r", "b", null]
            ])
        );
        let r = op("read", Some("k"), json!(null));
        let c = Plan::of(&r)
            .expect("valid")
            .completed(&r, vec![MopValue::Int(7)]);
        assert_eq!((c.kind, c.value), (EventType::Ok, json!(7)));
        let w = op("write", Some("k"), json!(7));
        let c = Plan::of(&w).expect("valid").completed(&w, vec![]);
        assert_eq!((c.kind, c.value), (EventType::Ok, json!(7)));
    }

    #[test]
    fn a_read_takes_the_one_table_that_holds_the_key() {
        assert_eq!(one_value("k", None, None, None, None), Ok(MopValue::Nil));
        assert_eq!(
            one_value("k", Some(vec![1, 2]), None, None, None),
            Ok(MopValue::List(vec![1, 2]))
        );
        assert_eq!(
            one_value("k", None, Some(5), None, None),
            Ok(MopValue::Int(5))
        );
        assert_eq!(
            one_value("k", None, None, Some(6), None),
            Ok(MopValue::Int(6))
        );
        assert_eq!(
            one_value("k", None, None, None, Some(vec![3])),
            Ok(MopValue::List(vec![3]))
        );
        assert_eq!(
            one_value("k", Some(vec![]), Some(1), None, None),
            Err("key k is a list and a register".to_owned())
        );
    }

    #[test]
    fn nothing_sent_or_no_commit_sent_is_fail() {
        let t = op("txn", None, json!([["append", "a", 1]]));
        for trouble in [
            Trouble::Timeout,
            db("40001"),
            db("40P01"),
            db("23505"),
            db("57P01"),
            Trouble::Lost("connection closed".into()),
        ] {
            let c = classify(&t, true, Stage::Connect, &trouble);
            assert_eq!(c.kind, EventType::Fail, "connect: {trouble}");
            assert!(c.refused, "a connection never made is a refusal");
            let c = classify(&t, true, Stage::BeforeCommit, &trouble);
            assert_eq!(c.kind, EventType::Fail, "before COMMIT: {trouble}");
            assert!(
                !c.refused,
                "the server's answer, or our timeout: no back-off"
            );
            assert_eq!(c.value, t.value, "the invocation's value");
        }
        let c = classify(&t, true, Stage::BeforeCommit, &db("40001"));
        assert_eq!(
            c.error.as_deref(),
            Some("before COMMIT: 40001 some message")
        );
    }

    #[test]
    fn commit_is_fail_only_when_rolled_back_or_read_only() {
        let t = op("txn", None, json!([["r", "a", null], ["append", "a", 1]]));
        for code in ROLLED_BACK {
            let c = classify(&t, true, Stage::Commit, &db(code));
            assert_eq!(c.kind, EventType::Fail, "{code} at COMMIT");
        }
        for trouble in [
            Trouble::Timeout,
            Trouble::Lost("connection closed".into()),
            db("57P01"),
            db("XX000"),
        ] {
            let c = classify(&t, true, Stage::Commit, &trouble);
            assert_eq!(c.kind, EventType::Info, "a write, {trouble} at COMMIT");
            assert_eq!(c.value, t.value);
            let c = classify(&t, false, Stage::Commit, &trouble);
            assert_eq!(c.kind, EventType::Fail, "read-only, {trouble} at COMMIT");
        }
    }
}
