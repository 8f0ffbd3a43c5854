//! Real server processes on 127.0.0.1 ports, for the process-level tests and benchmarks of
//! every bundled system: what the simulation cannot show (the binary's command line, fsync,
//! HTTP, a real SIGKILL) shown on the binary itself.
//!
//! Every bundled server takes the same command line (`--id`, `--listen`, `--peers id=addr,...`,
//! `--data-dir`) and serves the same /op and /health API; how its peers talk to each other is
//! its own business, so a [`Cluster`] needs only the path of the binary, which a test passes
//! as `env!("CARGO_BIN_EXE_raft-node")`, `env!("CARGO_BIN_EXE_paxos-node")`, ...
//!
//! Every process is SIGKILLed when the `Cluster` is dropped, even when a test panics.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long one /op request may take before the client gives up (the servers answer `info`
/// themselves after their own op timeout, 5 s by default).
const OP_TIMEOUT: Duration = Duration::from_secs(8);
/// How long one /health request may take: a node that is down or paused answers nothing.
const HEALTH_TIMEOUT: Duration = Duration::from_millis(500);
/// How often `leader` polls /health.
const LEADER_POLL: Duration = Duration::from_millis(20);
/// How often `caught_up` polls /health (each poll asks two servers).
const CATCH_UP_POLL: Duration = Duration::from_millis(50);

/// `n` server processes of one binary, each with a data directory and a log file in one
/// temporary directory.
pub struct Cluster {
    pub addrs: Vec<SocketAddr>,
    /// `n1`, `n2`, ...: the `--id` of each server, in the order of `addrs`.
    pub ids: Vec<String>,
    children: Vec<Option<Child>>,
    pub dir: tempfile::TempDir,
    program: PathBuf,
    extra: Vec<String>,
    pub client: reqwest::Client,
}

impl Cluster {
    /// Starts `n` servers of `program` with extra command-line arguments.
    pub fn start(program: impl AsRef<Path>, n: usize, extra: &[&str]) -> Cluster {
        // Every listener is held until all ports are chosen, so no two nodes get the same one.
        let held: Vec<TcpListener> = (0..n)
            .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port"))
            .collect();
        let addrs: Vec<SocketAddr> = held
            .iter()
            .map(|l| l.local_addr().expect("local addr"))
            .collect();
        drop(held);
        let mut c = Cluster {
            ids: (1..=n).map(|i| format!("n{i}")).collect(),
            addrs,
            children: (0..n).map(|_| None).collect(),
            dir: tempfile::tempdir().expect("tempdir"),
            program: program.as_ref().to_path_buf(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            client: reqwest::Client::builder()
                .no_proxy()
                .timeout(OP_TIMEOUT)
                .build()
                .expect("client"),
        };
        for i in 0..n {
            c.spawn(i);
        }
        c
    }

    /// The binary's file name, for messages.
    pub fn program_name(&self) -> String {
        self.program.file_name().map_or_else(
            || self.program.display().to_string(),
            |f| f.to_string_lossy().into_owned(),
        )
    }

    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(&self.ids[i])
    }

    fn log_path(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("{}.log", self.ids[i]))
    }

    /// Starts server `i` (again) on its data directory; its stderr is appended to its log.
    pub fn spawn(&mut self, i: usize) {
        assert!(
            self.children[i].is_none(),
            "{} is already running",
            self.ids[i]
        );
        let peers: Vec<String> = self
            .ids
            .iter()
            .zip(&self.addrs)
            .map(|(id, a)| format!("{id}={a}"))
            .collect();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(i))
            .expect("log file");
        let child = Command::new(&self.program)
            .args(["--id", &self.ids[i], "--listen", &self.addrs[i].to_string()])
            .args(["--peers", &peers.join(",")])
            .arg("--data-dir")
            .arg(self.data_dir(i))
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.program.display()));
        self.children[i] = Some(child);
    }

    /// SIGKILL, no goodbye.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOP: the server keeps its sockets but answers nothing, as if cut off.
    pub fn pause(&self, i: usize) {
        self.signal(i, "-STOP");
    }

    /// SIGCONT after [`Cluster::pause`].
    pub fn resume(&self, i: usize) {
        self.signal(i, "-CONT");
    }

    fn signal(&self, i: usize, sig: &str) {
        if let Some(c) = &self.children[i] {
            let status = Command::new("kill")
                .args([sig, &c.id().to_string()])
                .status()
                .expect("run kill");
            assert!(status.success(), "kill {sig} {}", self.ids[i]);
        }
    }

    /// Everything server `i` wrote to stderr, over all its lives.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.log_path(i)).unwrap_or_default()
    }

    /// The logs of the servers in `among`, each under its id, for a failure message.
    pub fn logs(&self, among: &[usize]) -> String {
        among
            .iter()
            .map(|i| format!("--- {} ---\n{}", self.ids[*i], self.log(*i)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub async fn health(&self, i: usize) -> Option<Value> {
        let url = format!("http://{}/health", self.addrs[i]);
        let resp = self
            .client
            .get(url)
            .timeout(HEALTH_TIMEOUT)
            .send()
            .await
            .ok()?;
        resp.json().await.ok()
    }

    /// Waits until exactly one of the nodes in `among` says it leads; returns its index.
    pub async fn leader(&self, among: &[usize], within: Duration) -> usize {
        let start = Instant::now();
        loop {
            let mut leaders = Vec::new();
            for &i in among {
                if let Some(h) = self.health(i).await {
                    if h["role"] == "leader" {
                        leaders.push(i);
                    }
                }
            }
            if leaders.len() == 1 {
                return leaders[0];
            }
            assert!(
                start.elapsed() < within,
                "no single leader among {among:?} within {within:?}; logs:\n{}",
                self.logs(among)
            );
            tokio::time::sleep(LEADER_POLL).await;
        }
    }

    /// Waits until server `node` has applied everything server `reference` knows committed
    /// (its /health `applied` equals the other's `commit`); returns how long that took.
    pub async fn caught_up(&self, node: usize, reference: usize, within: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let commit = self.health(reference).await.map(|h| h["commit"].clone());
            let h = self.health(node).await;
            if let (Some(h), Some(commit)) = (h, commit) {
                if h["applied"] == commit {
                    return start.elapsed();
                }
            }
            assert!(
                start.elapsed() < within,
                "{} did not catch up with {} within {within:?}: {:?} against {:?}; its log:\n{}",
                self.ids[node],
                self.ids[reference],
                self.health(node).await,
                self.health(reference).await,
                self.log(node)
            );
            tokio::time::sleep(CATCH_UP_POLL).await;
        }
    }

    /// One /op request; a request that got no answer is `info`, as the harness records it.
    pub async fn op(&self, i: usize, body: Value) -> Value {
        let url = format!("http://{}/op", self.addrs[i]);
        match self.client.post(url).json(&body).send().await {
            Ok(r) => r
                .json()
                .await
                .unwrap_or_else(|e| json!({"type": "info", "error": e.to_string()})),
            Err(e) => json!({"type": "info", "error": e.to_string()}),
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.kill(i);
        }
    }
}

/// The scenario every bundled consensus node passes, against `program`: every /op operation
/// through a follower (which forwards) and the leader; 50 acknowledged writes; the leader
/// SIGKILLed; a survivor acknowledging a write within `failover_bound`; every acknowledged
/// write readable on both survivors; the killed node restarted on its data, caught up, and
/// able to carry the cluster with the new leader once the other survivor is gone.
pub async fn ops_survive_killing_the_leader(program: &str, failover_bound: Duration) {
    let mut c = Cluster::start(program, 3, &[]);
    let leader = c.leader(&[0, 1, 2], Duration::from_secs(10)).await;
    let follower = (leader + 1) % 3;

    // The protocol of DESIGN section 3, through a follower (which forwards) and the leader.
    assert_eq!(
        c.op(follower, json!({"f":"write","key":"x","value":1}))
            .await,
        json!({"type":"ok"})
    );
    assert_eq!(
        c.op(leader, json!({"f":"read","key":"x"})).await,
        json!({"type":"ok","value":1})
    );
    assert_eq!(
        c.op(follower, json!({"f":"read","key":"nope"})).await,
        json!({"type":"ok","value":null})
    );
    assert_eq!(
        c.op(follower, json!({"f":"cas","key":"x","value":[1,2]}))
            .await,
        json!({"type":"ok"})
    );
    assert_eq!(
        c.op(leader, json!({"f":"cas","key":"x","value":[1,3]}))
            .await,
        json!({"type":"fail","error":"precondition"})
    );
    assert_eq!(
        c.op(leader, json!({"f":"add","key":"s","value":5})).await["type"],
        "ok"
    );
    assert_eq!(
        c.op(leader, json!({"f":"incr","key":"c","value":2})).await["type"],
        "ok"
    );
    assert_eq!(
        c.op(
            follower,
            json!({"f":"txn","value":[["r","x",null],["append","l",7],["r","l",null]]})
        )
        .await,
        json!({"type":"ok","value":[["r","x",2],["append","l",7],["r","l",[7]]]})
    );
    let bad = c.op(leader, json!({"f":"cas","key":"x","value":5})).await;
    assert_eq!(bad["type"], "fail", "{bad}");

    // Acknowledged writes, then the leader dies without a word.
    let mut acked = Vec::new();
    for v in 0..50 {
        let key = format!("k{}", v % 5);
        let r = c
            .op(follower, json!({"f":"write","key":key,"value":v}))
            .await;
        assert_eq!(r["type"], "ok", "{r}");
        acked.push((key, v));
    }
    c.kill(leader);
    let killed = Instant::now();
    let survivors: Vec<usize> = (0..3).filter(|i| *i != leader).collect();

    // A successor serves within the bound: the first write any survivor acknowledges.
    let mut attempt = 0;
    let failover = loop {
        let node = survivors[attempt % 2];
        attempt += 1;
        let r = c
            .op(node, json!({"f":"write","key":"failover","value":attempt}))
            .await;
        if r["type"] == "ok" {
            break killed.elapsed();
        }
        assert!(
            killed.elapsed() < failover_bound,
            "no write acknowledged within {failover_bound:?} of killing the leader (last: {r}); logs:\n{}",
            c.logs(&survivors)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eprintln!("failover: first write acknowledged {failover:?} after SIGKILL of the leader");
    let new_leader = c.leader(&survivors, Duration::from_secs(5)).await;
    assert_ne!(new_leader, leader);

    // Everything acknowledged before the kill is there, on either survivor: the new leader's
    // phase 1 found every chosen slot among a majority's votes.
    let last: BTreeMap<String, i64> = acked.iter().cloned().collect();
    for (key, v) in &last {
        for &i in &survivors {
            let r = c.op(i, json!({"f":"read","key":key})).await;
            assert_eq!(
                r,
                json!({"type":"ok","value":v}),
                "n{} lost {key}={v}",
                i + 1
            );
        }
    }
    assert_eq!(
        c.op(survivors[0], json!({"f":"read","key":"x"})).await["value"],
        2
    );
    assert_eq!(
        c.op(survivors[1], json!({"f":"read","key":"l"})).await["value"],
        json!([7])
    );

    // Writes go on with two of three; the killed node comes back on its WAL and catches up.
    assert_eq!(
        c.op(survivors[1], json!({"f":"write","key":"after","value":9}))
            .await["type"],
        "ok"
    );
    c.spawn(leader);
    c.caught_up(leader, new_leader, Duration::from_secs(10))
        .await;
    // Its own reads are forwarded to the leader, and they see everything.
    assert_eq!(
        c.op(leader, json!({"f":"read","key":"after"})).await,
        json!({"type":"ok","value":9})
    );
    // And it can carry the cluster: with the other survivor gone, writes still succeed.
    let other = 3 - leader - new_leader;
    c.kill(other);
    let r = c
        .op(new_leader, json!({"f":"write","key":"late","value":1}))
        .await;
    assert_eq!(r["type"], "ok", "{r}");
}
