//! PostgreSQL through its definition files (systems-under-test/external/postgres-*.toml): the
//! start wrapper initialises a data directory and starts the server on a loopback address,
//! readiness is the adapter's probe, and at each isolation level transactions come back with
//! their reads filled in, while a transaction forced into a write conflict with another one
//! fails with a serialization failure (at repeatable-read and serializable) or waits and
//! succeeds (at read-committed, where that is allowed). A kill and a restart on the same data
//! keep what was committed. Skipped with a notice where PostgreSQL is not installed, except
//! under `CI=true`, where that is a failure.
//!
//! The server is stopped however the test ends: the supervisor's `Drop` kills the whole tree
//! (postmaster and backends, which leave its process group).

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use harness::systems::{NodeVars, SystemDef};
use history::EventType;
use nemesis::process::{NodeSpec, Supervisor};
use serde_json::{json, Value};
use workloads::postgres::Isolation;
use workloads::{Completion, Op, OpClient, Protocol};

const LEVELS: [(&str, Isolation); 3] = [
    ("postgres-serializable.toml", Isolation::Serializable),
    ("postgres-repeatable-read.toml", Isolation::RepeatableRead),
    ("postgres-read-committed.toml", Isolation::ReadCommitted),
];

const NODE: &str = "n1";
const READY_LIMIT: Duration = Duration::from_secs(60);
const OP_TIMEOUT: Duration = Duration::from_secs(5);

fn definition(file: &str) -> SystemDef {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("systems-under-test/external")
        .join(file);
    SystemDef::load(path.to_str().expect("a UTF-8 path")).expect("the definition loads")
}

/// `None` when the test cannot run here (and that is allowed).
fn postgres_available() -> Option<()> {
    let found = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().any(|e| e.path().join("bin/postgres").exists()))
        .unwrap_or(false);
    if found {
        return Some(());
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "PostgreSQL is missing (scripts/install-deps installs Debian's postgresql)"
    );
    eprintln!("notice: PostgreSQL is not installed, so the postgres test is skipped");
    None
}

/// An address in 127.0.0.2..=127.0.0.254, varied per run, and a free port on it.
fn loopback_addr() -> SocketAddr {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let ip = Ipv4Addr::new(
        127,
        0,
        0,
        (2 + (u64::from(nanos) ^ u64::from(std::process::id())) % 253) as u8,
    );
    let port = TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on a loopback address");
    SocketAddr::from((ip, port))
}

/// One server started as the definition says, on `addr`.
struct Server {
    sup: Supervisor,
    addr: SocketAddr,
    stop_grace: Duration,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start(def: &SystemDef) -> Server {
        let dir = tempfile::tempdir().expect("a temporary directory");
        // The server runs as the `postgres` user, which must be able to reach its folder.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .expect("chmod the temporary directory");
        let addr = loopback_addr();
        let mut def = def.clone();
        def.port = addr.port();
        let data = dir.path().join(NODE).join("data");
        std::fs::create_dir_all(&data).expect("the data directory");
        let ip = addr.ip().to_string();
        let (args, env) = def.render(
            &NodeVars {
                node: NODE,
                index: 1,
                ip: &ip,
                data_dir: &data,
                peers: "",
                clock_offset_file: &dir.path().join("clock-offset"),
                op_timeout_ms: 1_000,
            },
            None,
        );
        let spec = NodeSpec {
            name: NODE.into(),
            program: def.locate_program().expect("the start wrapper"),
            args,
            env,
            dir: dir.path().join(NODE),
            health_url: String::new(),
        };
        let mut sup = Supervisor::new(Default::default());
        sup.start(&spec).expect("the wrapper starts");
        let server = Server {
            sup,
            addr,
            stop_grace: def.stop_grace,
            _dir: dir,
        };
        server.wait_ready().await;
        server
    }

    async fn wait_ready(&self) {
        let what = format!("postgres at {}", self.addr);
        let addr = self.addr;
        if let Err(e) = self
            .sup
            .wait_ready_with(NODE, READY_LIMIT, &what, |t| {
                workloads::postgres::ready(addr, t)
            })
            .await
        {
            panic!("PostgreSQL did not become ready: {e}");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- last lines of the server's log ---\n{}",
                self.sup.log_tail(NODE, 30)
            );
        }
        self.sup.stop_all(self.stop_grace);
    }
}

fn txn(mops: Value) -> Op {
    Op {
        f: "txn".into(),
        key: None,
        value: mops,
        local: false,
        context: None,
    }
}

fn assert_ok(c: &Completion, what: &str) {
    assert_eq!(c.kind, EventType::Ok, "{what}: {c:?}");
}

/// Opens a transaction outside the adapter that updates `key`'s list and holds its row lock
/// until the returned client commits.
async fn hold_row_lock(addr: SocketAddr, key: &str) -> tokio_postgres::Client {
    let mut config = tokio_postgres::Config::new();
    config
        .host(addr.ip().to_string())
        .port(addr.port())
        .user("postgres")
        .dbname("postgres");
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .expect("a second connection");
    tokio::spawn(connection);
    client
        .batch_execute(&format!(
            "BEGIN; UPDATE lists SET v = v || ARRAY[100::bigint] WHERE k = '{key}'"
        ))
        .await
        .expect("the competing update");
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_at_each_level_through_the_definitions() {
    if postgres_available().is_none() {
        return;
    }
    let mut server = Server::start(&definition(LEVELS[0].0)).await;
    for (file, isolation) in LEVELS {
        let def = definition(file);
        assert_eq!(def.protocol, Protocol::Postgres { isolation });
        let client = OpClient::with_protocol(OP_TIMEOUT, def.protocol);
        let (la, rw) = (format!("la-{isolation}"), format!("rw-{isolation}"));

        // Reads are filled in, in order, with the transaction's own writes.
        let c = client
            .invoke(
                server.addr,
                &txn(json!([
                    ["r", la, null],
                    ["append", la, 1],
                    ["append", la, 2],
                    ["r", la, null]
                ])),
            )
            .await;
        assert_ok(&c, file);
        assert_eq!(
            c.value,
            json!([
                ["r", la, null],
                ["append", la, 1],
                ["append", la, 2],
                ["r", la, [1, 2]]
            ])
        );
        let c = client
            .invoke(
                server.addr,
                &txn(json!([
                    ["w", rw, 5],
                    ["r", rw, null],
                    ["r", la, null],
                    ["r", "absent", null]
                ])),
            )
            .await;
        assert_ok(&c, file);
        assert_eq!(
            c.value,
            json!([
                ["w", rw, 5],
                ["r", rw, 5],
                ["r", la, [1, 2]],
                ["r", "absent", null]
            ])
        );

        // A write conflict: another transaction updated the list and holds its row until it
        // commits; ours read the list before that commit, then appends to it.
        let other = hold_row_lock(server.addr, &la).await;
        let ours = {
            let (client, addr, la) = (client.clone(), server.addr, la.clone());
            tokio::spawn(async move {
                client
                    .invoke(addr, &txn(json!([["r", la, null], ["append", la, 3]])))
                    .await
            })
        };
        // Long enough for ours to read and block on the row lock.
        tokio::time::sleep(Duration::from_millis(500)).await;
        other
            .batch_execute("COMMIT")
            .await
            .expect("the other commits");
        let c = ours.await.expect("the transaction task");
        match isolation {
            Isolation::Serializable | Isolation::RepeatableRead => {
                assert_eq!(c.kind, EventType::Fail, "{file}: {c:?}");
                let error = c.error.unwrap_or_default();
                assert!(error.contains("40001"), "{file}: {error}");
                assert_eq!(c.value, json!([["r", la, null], ["append", la, 3]]));
            }
            // Read committed lets the append go on top of the other's commit.
            Isolation::ReadCommitted => {
                assert_ok(&c, file);
                assert_eq!(c.value, json!([["r", la, [1, 2]], ["append", la, 3]]));
            }
        }
        let c = client.invoke(server.addr, &Op::read(la.clone())).await;
        assert_ok(&c, file);
        let expected = match isolation {
            Isolation::ReadCommitted => json!([1, 2, 100, 3]),
            _ => json!([1, 2, 100]),
        };
        assert_eq!(c.value, expected, "{file}");

        // The only node leads.
        let role = client.role(server.addr).await.expect("a role");
        assert!(role.leader, "{file}");
    }

    // A kill takes every process; nothing can be sent until the restart, and what was
    // committed survives it.
    let client = OpClient::with_protocol(OP_TIMEOUT, definition(LEVELS[0].0).protocol);
    server.sup.kill(NODE).expect("kill");
    let c = client
        .invoke(server.addr, &txn(json!([["append", "la-after", 1]])))
        .await;
    assert_eq!(c.kind, EventType::Fail, "{c:?}");
    assert!(c.refused, "a connection refused: {c:?}");
    server.sup.restart(NODE).expect("restart");
    server.wait_ready().await;
    let c = client
        .invoke(server.addr, &Op::read("la-serializable"))
        .await;
    assert_ok(&c, "after the restart");
    assert_eq!(c.value, json!([1, 2, 100]));
}
