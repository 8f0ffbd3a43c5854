//! Real `raft-node` processes on 127.0.0.1 ports, for the process-level tests and the
//! benchmark. Every process is killed when the `Cluster` is dropped, even if a test panics.

#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub struct Cluster {
    pub addrs: Vec<SocketAddr>,
    pub ids: Vec<String>,
    children: Vec<Option<Child>>,
    pub dir: tempfile::TempDir,
    extra: Vec<String>,
    pub client: reqwest::Client,
}

impl Cluster {
    /// Starts `n` nodes with extra command-line arguments.
    pub fn start(n: usize, extra: &[&str]) -> Cluster {
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
            extra: extra.iter().map(|s| s.to_string()).collect(),
            client: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(8))
                .build()
                .expect("client"),
        };
        for i in 0..n {
            c.spawn(i);
        }
        c
    }

    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(&self.ids[i])
    }

    pub fn spawn(&mut self, i: usize) {
        let peers: Vec<String> = self
            .ids
            .iter()
            .zip(&self.addrs)
            .map(|(id, a)| format!("{id}={a}"))
            .collect();
        let log = std::fs::File::create(self.dir.path().join(format!("{}.log", self.ids[i])))
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_raft-node"))
            .args(["--id", &self.ids[i], "--listen", &self.addrs[i].to_string()])
            .args(["--peers", &peers.join(",")])
            .arg("--data-dir")
            .arg(self.data_dir(i))
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start raft-node");
        self.children[i] = Some(child);
    }

    /// SIGKILL, no goodbye.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{}.log", self.ids[i])))
            .unwrap_or_default()
    }

    pub async fn health(&self, i: usize) -> Option<Value> {
        let url = format!("http://{}/health", self.addrs[i]);
        let resp = self
            .client
            .get(url)
            .timeout(Duration::from_millis(500))
            .send()
            .await
            .ok()?;
        resp.json().await.ok()
    }

    /// Waits until the nodes in `among` agree on one leader among them; returns its index.
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
                among
                    .iter()
                    .map(|i| self.log(*i))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

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
