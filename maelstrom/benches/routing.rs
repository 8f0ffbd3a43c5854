//! How fast the harness routes Maelstrom messages: five nodes that send each other pings and
//! answer pongs, each keeping a window of messages in flight, over real pipes through the
//! same routing a run uses (with its message log written, as in a run, and without). Prints
//! messages routed per second and the latency each hop adds (from the line written by one
//! node to the line read by the other). The nodes are tasks of this process, so what is
//! measured is the harness's share, not a node program's.
//!
//!   cargo bench -p harness-maelstrom --bench routing          (5 s per setting)
//!   BENCH_QUICK=1 cargo bench -p harness-maelstrom --bench routing

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use maelstrom::{Net, Options};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::pipe;

const NODES: usize = 5;
/// Pings each node keeps in flight: many, to find the most it routes; one, to see the latency
/// a hop adds when nothing queues.
const WINDOWS: [usize; 2] = [64, 1];

fn main() {
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let secs = if quick { 1.5 } else { 5.0 };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("maelstrom routing: {NODES} nodes pinging each other, {secs} s per setting");
    for window in WINDOWS {
        for log in [true, false] {
            let (rate, p50, p99, max) =
                runtime.block_on(measure(log, window, Duration::from_secs_f64(secs)));
            println!(
                "  {window:>2} in flight per node, {:<18} {:>9.0} messages/s routed; per hop p50 \
                 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
                if log { "messages.jsonl:" } else { "no log:" },
                rate,
                p50,
                p99,
                max
            );
        }
    }
}

async fn measure(log: bool, window: usize, length: Duration) -> (f64, f64, f64, f64) {
    let names: Vec<String> = (1..=NODES).map(|i| format!("n{i}")).collect();
    let dir = std::env::temp_dir().join(format!("maelstrom-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log_path = dir.join("messages.jsonl");
    let net = Net::new(
        &names,
        log.then_some(log_path.as_path()),
        Options::default(),
    )
    .unwrap();
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::<u64>::new()));
    let mut tasks = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let (stdin_r, stdin_w) = std::io::pipe().unwrap();
        let (stdout_r, stdout_w) = std::io::pipe().unwrap();
        net.attach(name, OwnedFd::from(stdin_w), OwnedFd::from(stdout_r));
        let input = pipe::Receiver::from_owned_fd(OwnedFd::from(stdin_r)).unwrap();
        let output = pipe::Sender::from_owned_fd(OwnedFd::from(stdout_w)).unwrap();
        let peers: Vec<String> = names.iter().filter(|n| *n != name).cloned().collect();
        tasks.push(tokio::spawn(node(
            name.clone(),
            i,
            window,
            peers,
            input,
            output,
            started,
            stop.clone(),
            received.clone(),
            latencies.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let from = net.stats().between_nodes;
    let t = Instant::now();
    received.store(0, Ordering::Relaxed);
    latencies.lock().unwrap().clear();
    tokio::time::sleep(length).await;
    let routed = net.stats().between_nodes - from;
    let rate = routed as f64 / t.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    drop(net);
    for t in tasks {
        t.abort();
    }
    let _ = std::fs::remove_dir_all(&dir);
    let mut l = std::mem::take(&mut *latencies.lock().unwrap());
    l.sort_unstable();
    let q = |p: f64| l[((l.len() - 1) as f64 * p) as usize] as f64 / 1e6;
    (rate, q(0.5), q(0.99), q(1.0))
}

/// One node: answers init, then keeps `window` pings out and answers every ping with a pong;
/// each pong it receives sends a new ping. Every message carries the time it was written.
#[allow(clippy::too_many_arguments)]
async fn node(
    name: String,
    index: usize,
    window: usize,
    peers: Vec<String>,
    input: pipe::Receiver,
    mut output: pipe::Sender,
    started: Instant,
    stop: Arc<AtomicBool>,
    received: Arc<AtomicU64>,
    latencies: Arc<Mutex<Vec<u64>>>,
) {
    let mut lines = BufReader::new(input).lines();
    let mut next = index;
    let msg = |dest: &str, kind: &str, src: &str, extra: &str| {
        format!(
            "{{\"src\":\"{src}\",\"dest\":\"{dest}\",\"body\":{{\"type\":\"{kind}\",\"t\":{}{extra}}}}}\n",
            started.elapsed().as_nanos()
        )
    };
    let mut out = String::new();
    let mut sample = 0u64;
    while let Ok(Some(line)) = lines.next_line().await {
        let v: Value = serde_json::from_str(&line).unwrap();
        let body = &v["body"];
        out.clear();
        match body["type"].as_str().unwrap_or("") {
            "init" => {
                out.push_str(&msg(
                    "c0",
                    "init_ok",
                    &name,
                    &format!(",\"in_reply_to\":{}", body["msg_id"]),
                ));
                for _ in 0..window {
                    next += 1;
                    out.push_str(&msg(&peers[next % peers.len()], "ping", &name, ""));
                }
            }
            kind @ ("ping" | "pong") => {
                let sent = body["t"].as_u64().unwrap_or(0);
                let now = started.elapsed().as_nanos() as u64;
                received.fetch_add(1, Ordering::Relaxed);
                sample += 1;
                if sample.is_multiple_of(16) {
                    latencies.lock().unwrap().push(now.saturating_sub(sent));
                }
                if stop.load(Ordering::Relaxed) {
                    continue;
                }
                let from = v["src"].as_str().unwrap_or("");
                if kind == "ping" {
                    out.push_str(&msg(from, "pong", &name, ""));
                } else {
                    next += 1;
                    out.push_str(&msg(&peers[next % peers.len()], "ping", &name, ""));
                }
            }
            _ => {}
        }
        if !out.is_empty() && output.write_all(out.as_bytes()).await.is_err() {
            return;
        }
    }
}
