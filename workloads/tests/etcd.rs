//! The etcd adapter against a real etcd 3.4 cluster: three members on loopback addresses with
//! free ports and data directories in a temporary directory (the flags of
//! shared/notes/faults-measured.md section 6). Skipped with a notice where `/usr/bin/etcd` is
//! missing, except under `CI=true`, where that is a failure.
//!
//! Every member is stopped when the test ends, however it ends: [`Cluster`]'s `Drop` sends
//! SIGTERM, waits at most [`STOP_GRACE`], then SIGKILLs what is left (a campaigning etcd can
//! ignore SIGTERM for a minute), and each member also gets SIGKILL from the kernel should the
//! test's thread die without running it (`PR_SET_PDEATHSIG`).

use history::EventType;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use workloads::{Completion, NodeRole, Op, OpClient, Protocol};

const ETCD: &str = "/usr/bin/etcd";

/// How long a member may take to exit after SIGTERM before it gets SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// How long the cluster may take to answer `/health` with `{"health":"true"}` everywhere.
const FORMATION_LIMIT: Duration = Duration::from_secs(60);

const MEMBERS: usize = 3;

struct Member {
    name: String,
    client: SocketAddr,
    child: Child,
    log: PathBuf,
}

/// A running cluster; dropping it stops every member.
struct Cluster {
    members: Vec<Member>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Starts `MEMBERS` members at once on three distinct 127.0.0.x addresses.
    fn start() -> Cluster {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let ips = loopback_ips();
        // Each port is taken from the kernel by binding port 0 and released just before etcd
        // binds it; nothing else on this machine picks ports on these addresses.
        let ports: Vec<(u16, u16)> = ips
            .iter()
            .map(|ip| (free_port(*ip), free_port(*ip)))
            .collect();
        let peer_url = |i: usize| format!("http://{}:{}", ips[i], ports[i].1);
        let initial_cluster = (0..MEMBERS)
            .map(|i| format!("n{}={}", i + 1, peer_url(i)))
            .collect::<Vec<_>>()
            .join(",");
        let token = format!("workloads-test-{}", std::process::id());
        let mut cluster = Cluster {
            members: Vec::new(),
            _dir: dir,
        };
        for i in 0..MEMBERS {
            let name = format!("n{}", i + 1);
            let client = SocketAddr::new(IpAddr::V4(ips[i]), ports[i].0);
            let log = cluster._dir.path().join(format!("{name}.log"));
            let out = File::create(&log).expect("a log file in the temporary directory");
            let err = out.try_clone().expect("a second handle on the log file");
            let mut cmd = Command::new(ETCD);
            cmd.arg("--name")
                .arg(&name)
                .arg("--data-dir")
                .arg(cluster._dir.path().join(&name))
                .arg("--listen-client-urls")
                .arg(format!("http://{client}"))
                .arg("--advertise-client-urls")
                .arg(format!("http://{client}"))
                .arg("--listen-peer-urls")
                .arg(peer_url(i))
                .arg("--initial-advertise-peer-urls")
                .arg(peer_url(i))
                .arg("--initial-cluster")
                .arg(&initial_cluster)
                .arg("--initial-cluster-token")
                .arg(&token)
                .arg("--initial-cluster-state")
                .arg("new")
                .args(["--logger", "zap", "--log-outputs", "stderr"])
                .stdin(Stdio::null())
                .stdout(Stdio::from(out))
                .stderr(Stdio::from(err));
            // SAFETY: prctl is async-signal-safe and touches nothing of the parent's.
            unsafe {
                cmd.pre_exec(|| {
                    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
                });
            }
            let child = cmd.spawn().expect("etcd starts");
            // Each member joins the guard as soon as it runs: a failure to start the next one
            // still stops it.
            cluster.members.push(Member {
                name,
                client,
                child,
                log,
            });
        }
        cluster
    }

    fn addr(&self, i: usize) -> SocketAddr {
        self.members[i].client
    }

    /// SIGKILLs member `i` and reaps it.
    fn kill(&mut self, i: usize) {
        let child = &mut self.members[i].child;
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for m in &self.members {
                eprintln!(
                    "--- last lines of {}'s log ---\n{}",
                    m.name,
                    tail(&m.log, 15)
                );
            }
        }
        for m in &mut self.members {
            if let Ok(None) = m.child.try_wait() {
                let pid = i32::try_from(m.child.id()).expect("pids fit in i32");
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
        }
        let deadline = Instant::now() + STOP_GRACE;
        for m in &mut self.members {
            loop {
                match m.child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() >= deadline => {
                        eprintln!("{} ignored SIGTERM for {STOP_GRACE:?}: SIGKILL", m.name);
                        let _ = m.child.kill();
                        let _ = m.child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Three distinct addresses in 127.0.0.2..=127.0.0.254, varied per run so that concurrent runs
/// on one machine rarely meet.
fn loopback_ips() -> Vec<Ipv4Addr> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let first = 2 + (u64::from(nanos) ^ u64::from(std::process::id())) % 250;
    (0..MEMBERS as u64)
        .map(|i| Ipv4Addr::new(127, 0, 0, (2 + (first - 2 + i) % 253) as u8))
        .collect()
}

fn free_port(ip: Ipv4Addr) -> u16 {
    TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on a loopback address")
}

/// `None` when the test cannot run here (and that is allowed).
fn etcd_available() -> Option<()> {
    if Path::new(ETCD).exists() {
        return Some(());
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{ETCD} is missing: install etcd-server (apt-get install etcd-server)");
    }
    eprintln!("notice: {ETCD} is missing, so the etcd adapter test is skipped (apt-get install etcd-server)");
    None
}

/// What one `/health` request saw.
fn health_outcome(r: Result<(u16, String), reqwest::Error>) -> String {
    match r {
        Ok((status, body)) => format!("HTTP {status} {}", body.trim_end()),
        Err(e) if e.is_connect() => "connection refused or unreachable".to_owned(),
        Err(e) if e.is_timeout() => "timeout".to_owned(),
        Err(e) => format!("error: {e}"),
    }
}

async fn get_health(
    http: &reqwest::Client,
    addr: SocketAddr,
) -> Result<(u16, String), reqwest::Error> {
    let r = http.get(format!("http://{addr}/health")).send().await?;
    let status = r.status().as_u16();
    Ok((status, r.text().await?))
}

/// Polls every member's `/health` until all answer 200 `{"health":"true"}`; prints each change
/// of what a member answered, with the time since the start.
async fn wait_healthy(cluster: &Cluster) {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_millis(500))
        .build()
        .expect("a plain HTTP client");
    let started = Instant::now();
    let mut last: Vec<Option<String>> = vec![None; MEMBERS];
    let healthy = "HTTP 200 {\"health\":\"true\"}";
    loop {
        for (i, seen) in last.iter_mut().enumerate() {
            if seen.as_deref() == Some(healthy) {
                continue;
            }
            let now = health_outcome(get_health(&http, cluster.addr(i)).await);
            if seen.as_deref() != Some(now.as_str()) {
                eprintln!(
                    "/health {} at {:>5} ms: {now}",
                    cluster.members[i].name,
                    started.elapsed().as_millis()
                );
                *seen = Some(now);
            }
        }
        if last.iter().all(|s| s.as_deref() == Some(healthy)) {
            return;
        }
        assert!(
            started.elapsed() < FORMATION_LIMIT,
            "the cluster did not become healthy within {FORMATION_LIMIT:?}: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn op(f: &str, key: &str, value: Value) -> Op {
    Op {
        f: f.to_owned(),
        key: Some(key.to_owned()),
        value,
        local: false,
        context: None,
    }
}

fn assert_ok(c: &Completion, value: Value, what: &str) {
    assert_eq!(
        (c.kind, &c.value, &c.error),
        (EventType::Ok, &value, &None),
        "{what}"
    );
}

fn assert_fail(c: &Completion, error: &str, what: &str) {
    assert_eq!(c.kind, EventType::Fail, "{what}: {c:?}");
    assert_eq!(c.error.as_deref(), Some(error), "{what}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_real_etcd_cluster_through_the_adapter() {
    if etcd_available().is_none() {
        return;
    }
    let mut cluster = Cluster::start();
    eprintln!(
        "members: {:?}",
        cluster.members.iter().map(|m| m.client).collect::<Vec<_>>()
    );
    wait_healthy(&cluster).await;
    let c = OpClient::with_protocol(
        Duration::from_secs(10),
        Protocol::Etcd {
            serializable: false,
        },
    );
    let (a, b, d) = (cluster.addr(0), cluster.addr(1), cluster.addr(2));

    // Registers: write, read elsewhere, cas both ways.
    assert_ok(&c.invoke(a, &Op::read("k1")).await, json!(null), "absent");
    assert_ok(
        &c.invoke(a, &op("write", "k1", json!(5))).await,
        json!(5),
        "write",
    );
    assert_ok(
        &c.invoke(b, &Op::read("k1")).await,
        json!(5),
        "read after write",
    );
    let cas = op("cas", "k1", json!([5, 6]));
    assert_ok(&c.invoke(d, &cas).await, json!([5, 6]), "cas 5 -> 6");
    assert_ok(
        &c.invoke(a, &Op::read("k1")).await,
        json!(6),
        "read after cas",
    );
    let stale = c.invoke(b, &op("cas", "k1", json!([5, 7]))).await;
    assert_fail(
        &stale,
        "cas: k1 is 6, not 5",
        "cas from a value no longer there",
    );
    assert_eq!(stale.value, json!([5, 7]));
    assert_ok(
        &c.invoke(d, &Op::read("k1")).await,
        json!(6),
        "a failed cas wrote nothing",
    );

    // An absent key fails a value compare; [null, x] is create-if-absent.
    let absent = c.invoke(a, &op("cas", "k2", json!([1, 2]))).await;
    assert_fail(&absent, "cas: k2 is absent, not 1", "cas on an absent key");
    assert_ok(
        &c.invoke(b, &Op::read("k2")).await,
        json!(null),
        "still absent",
    );
    let create = op("cas", "k3", json!([null, 9]));
    assert_ok(
        &c.invoke(b, &create).await,
        json!([null, 9]),
        "cas from absent",
    );
    let again = c.invoke(d, &op("cas", "k3", json!([null, 10]))).await;
    assert_fail(
        &again,
        "cas: k3 is 9, not absent",
        "cas from absent, but present",
    );
    assert_ok(&c.invoke(a, &Op::read("k3")).await, json!(9), "create kept");

    // A read of k1 ranges up to "k10": keys next to it are not in its answer.
    assert_ok(
        &c.invoke(a, &op("write", "k10", json!(100))).await,
        json!(100),
        "k10",
    );
    assert_ok(
        &c.invoke(a, &op("write", "k1.x", json!(101))).await,
        json!(101),
        "k1.x",
    );
    assert_ok(
        &c.invoke(b, &Op::read("k1")).await,
        json!(6),
        "k1 beside k10 and k1.x",
    );

    // A value that is not an integer reads back as the string.
    let text = op("write", "k4", json!("forty-two"));
    assert_ok(
        &c.invoke(a, &text).await,
        json!("forty-two"),
        "write a string",
    );
    assert_ok(
        &c.invoke(b, &Op::read("k4")).await,
        json!("forty-two"),
        "read a string",
    );

    // Sets: adds on every member, one read, elements in numeric order.
    for (i, e) in [3, 10, 9, 1].into_iter().enumerate() {
        let add = op("add", "s0", json!(e));
        assert_ok(
            &c.invoke(cluster.addr(i % MEMBERS), &add).await,
            json!(e),
            "add",
        );
    }
    assert_ok(
        &c.invoke(d, &Op::read("s0")).await,
        json!([1, 3, 9, 10]),
        "set read",
    );
    assert_ok(
        &c.invoke(a, &Op::read("s1")).await,
        json!(null),
        "empty set",
    );

    // A request etcd refuses before proposing it is a definite fail: 3 MiB is over the default
    // --max-request-bytes (1.5 MiB).
    let huge = op("write", "k5", json!("x".repeat(3 << 20)));
    let refused = c.invoke(a, &huge).await;
    assert_eq!(refused.kind, EventType::Fail, "{:?}", refused.error);
    eprintln!("a 3 MiB put: {:?}", refused.error);
    assert_ok(
        &c.invoke(b, &Op::read("k5")).await,
        json!(null),
        "nothing written",
    );

    // Serializable reads answer from each member's own state.
    let s = OpClient::with_protocol(
        Duration::from_secs(10),
        Protocol::Etcd { serializable: true },
    );
    for i in 0..MEMBERS {
        // A follower may apply the last write a moment after the leader answered it.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let r = s.invoke(cluster.addr(i), &Op::read("k1")).await;
            assert_eq!(
                r.kind,
                EventType::Ok,
                "serializable read on n{}: {r:?}",
                i + 1
            );
            if r.value == json!(6) {
                break;
            }
            assert!(Instant::now() < deadline, "n{} stays at {}", i + 1, r.value);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    // The leader probe: exactly one member leads, and every member names the same term.
    let mut roles = Vec::new();
    for i in 0..MEMBERS {
        roles.push(c.role(cluster.addr(i)).await);
    }
    eprintln!("roles: {roles:?}");
    let roles: Vec<NodeRole> = roles
        .into_iter()
        .map(|r| r.expect("every member answers its status"))
        .collect();
    assert_eq!(roles.iter().filter(|r| r.leader).count(), 1, "{roles:?}");
    assert!(
        roles.iter().all(|r| r.term == roles[0].term && r.term > 0),
        "{roles:?}"
    );

    // Mixing the two kinds under one key is refused by the read, as /op refuses it.
    assert_ok(
        &c.invoke(a, &op("add", "k1", json!(4))).await,
        json!(4),
        "add to k1",
    );
    let mixed = c.invoke(b, &Op::read("k1")).await;
    assert_eq!(mixed.kind, EventType::Fail, "{mixed:?}");

    // Without a quorum: a serializable read still answers, a linearizable one cannot, and the
    // survivor names no leader.
    let leader = roles.iter().position(|r| r.leader).expect("one leader");
    let survivor = (leader + 1) % MEMBERS;
    for i in (0..MEMBERS).filter(|&i| i != survivor) {
        cluster.kill(i);
    }
    let short = OpClient::with_protocol(
        Duration::from_secs(1),
        Protocol::Etcd {
            serializable: false,
        },
    );
    let r = s.invoke(cluster.addr(survivor), &Op::read("k3")).await;
    assert_ok(&r, json!(9), "a serializable read without quorum");
    let r = short.invoke(cluster.addr(survivor), &Op::read("k3")).await;
    assert_ne!(
        r.kind,
        EventType::Ok,
        "a linearizable read without quorum: {r:?}"
    );
    let w = short
        .invoke(cluster.addr(survivor), &op("write", "k3", json!(11)))
        .await;
    assert_eq!(w.kind, EventType::Info, "a write without quorum: {w:?}");
    let killed = cluster.addr((survivor + 1) % MEMBERS);
    let gone = c.invoke(killed, &op("write", "k3", json!(12))).await;
    assert_eq!(gone.kind, EventType::Fail, "nothing listens: {gone:?}");
    // Leadership lapses after an election timeout (1 s by default) without a quorum.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let role = c.role(cluster.addr(survivor)).await;
        if role.as_ref().is_some_and(|r| !r.leader) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the survivor still says {role:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("a plain HTTP client");
    eprintln!(
        "/health on the survivor without quorum: {}",
        health_outcome(get_health(&http, cluster.addr(survivor)).await)
    );
}
