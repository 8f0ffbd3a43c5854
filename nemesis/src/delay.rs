//! Message delay without netem: this kernel has no `sch_netem`, so packets between nodes are
//! handed to userspace and held there.
//!
//! Each node's namespace gets an iptables rule in its `mangle` table that sends the node's
//! outgoing packets to the other nodes into NFQUEUE 0 (`--queue-bypass`: with no listener they
//! pass untouched, so a dead harness never leaves a node mute). A thread per node enters that
//! namespace, listens on the queue, and gives each packet its verdict (accept) only after a
//! random delay drawn from `[mean - jitter, mean + jitter]`. Packets are released in order of
//! their release time, so jitter reorders them, as netem's does. The `mangle` table is used so
//! that the partition rules, which replace the `filter` table wholesale, never touch this one.
//!
//! Traffic between the harness and the nodes is never delayed.

use std::collections::BinaryHeap;
use std::fs::File;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sched::{setns, CloneFlags};

use crate::cmd::Cmd;
use crate::net::{net_err, node_place, NetError};

const QUEUE: u16 = 0;
/// Packets a queue may hold before the kernel drops new ones (the default is 1024, which a
/// busy node fills in a few hundred milliseconds of delay).
const QUEUE_MAX_LEN: u32 = 65_536;

/// One node's side: its namespace, its address, and the addresses it sends to.
pub(crate) struct DelayTarget {
    pub name: String,
    pub netns: Arc<File>,
    pub peers: Vec<Ipv4Addr>,
}

/// Delay in force; dropping it (or [`DelayQueues::stop`]) removes the rules and lets every
/// held packet go at once.
pub(crate) struct DelayQueues {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    rules: Vec<(String, Arc<File>)>,
}

impl DelayQueues {
    /// Starts holding every packet between the targets for `mean_ms ± jitter_ms`.
    pub(crate) fn start(
        targets: Vec<DelayTarget>,
        mean_ms: u64,
        jitter_ms: u64,
        seed: u64,
    ) -> Result<DelayQueues, NetError> {
        if jitter_ms > mean_ms {
            return Err(NetError::InvalidArgument(format!(
                "delay jitter ({jitter_ms} ms) must not exceed the mean ({mean_ms} ms)"
            )));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let mut queues = DelayQueues {
            stop: stop.clone(),
            threads: Vec::new(),
            rules: Vec::new(),
        };
        for (i, t) in targets.into_iter().enumerate() {
            // The listener must be bound before the rule exists, or the first packets would
            // bypass it; it reports back once it is.
            let (ready_tx, ready_rx) = mpsc::channel();
            let (netns, name, stop) = (t.netns.clone(), t.name.clone(), stop.clone());
            let seed = seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let thread = std::thread::Builder::new()
                .name(format!("delay-{name}"))
                .spawn(move || hold_packets(netns, mean_ms, jitter_ms, seed, stop, ready_tx))
                .map_err(|source| NetError::Spawn {
                    cmd: "a delay thread".into(),
                    place: node_place(&t.name),
                    source,
                })?;
            queues.threads.push(thread);
            match ready_rx.recv_timeout(Duration::from_secs(5)) {
                Ok(Ok(())) => {}
                Ok(Err(why)) => {
                    return Err(NetError::NotAvailable(format!(
                        "cannot hold node {}'s packets (NFQUEUE): {why}",
                        t.name
                    )))
                }
                Err(_) => {
                    return Err(NetError::NotAvailable(format!(
                        "the delay thread of node {} did not start",
                        t.name
                    )))
                }
            }
            queues.rules.push((t.name.clone(), t.netns.clone()));
            set_mangle(&t.name, &t.netns, &t.peers).map_err(|e| match e {
                NetError::Spawn { .. } => NetError::NotAvailable(format!(
                    "the delay fault needs iptables with NFQUEUE (apt-get install iptables), \
                     since this kernel has no netem: {e}"
                )),
                e => e,
            })?;
        }
        Ok(queues)
    }

    /// Removes the rules, releases every held packet and stops the threads.
    pub(crate) fn stop(mut self) -> Result<(), NetError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), NetError> {
        let mut first_error = None;
        for (name, netns) in self.rules.drain(..) {
            if let Err(e) = set_mangle(&name, &netns, &[]) {
                // A namespace that is already gone took its rule with it.
                first_error.get_or_insert(e);
            }
        }
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for DelayQueues {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// Replaces node `name`'s `mangle` table with one that queues its packets to `peers` (none:
/// an empty table).
fn set_mangle(name: &str, netns: &Arc<File>, peers: &[Ipv4Addr]) -> Result<(), NetError> {
    let mut script = String::from("*mangle\n:OUTPUT ACCEPT [0:0]\n");
    for ip in peers {
        script.push_str(&format!(
            "-A OUTPUT -d {ip}/32 -j NFQUEUE --queue-num {QUEUE} --queue-bypass\n"
        ));
    }
    script.push_str("COMMIT\n");
    Cmd::new("iptables-restore", &["-w"])
        .stdin(script)
        .netns(netns.clone())
        .run()
        .map(drop)
        .map_err(|f| net_err(&node_place(name), f))
}

/// A packet waiting for its verdict, released earliest first.
struct Held {
    at: Instant,
    seq: u64,
    msg: nfq::Message,
}

impl PartialEq for Held {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // BinaryHeap is a max-heap: the earliest release must compare greatest.
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

fn hold_packets(
    netns: Arc<File>,
    mean_ms: u64,
    jitter_ms: u64,
    seed: u64,
    stop: Arc<AtomicBool>,
    ready: mpsc::Sender<Result<(), String>>,
) {
    let open = || -> Result<nfq::Queue, String> {
        setns(&*netns, CloneFlags::CLONE_NEWNET).map_err(|e| format!("setns: {e}"))?;
        let mut q = nfq::Queue::open().map_err(|e| format!("netlink socket: {e}"))?;
        q.bind(QUEUE)
            .map_err(|e| format!("bind queue {QUEUE}: {e}"))?;
        // Only the headers are needed: the verdict is by packet id.
        q.set_copy_range(QUEUE, 64)
            .map_err(|e| format!("copy range: {e}"))?;
        q.set_queue_max_len(QUEUE, QUEUE_MAX_LEN)
            .map_err(|e| format!("queue length: {e}"))?;
        q.set_nonblocking(true);
        Ok(q)
    };
    let mut q = match open() {
        Ok(q) => {
            let _ = ready.send(Ok(()));
            q
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let mut rng = seed | 1;
    let mut next = move || {
        // xorshift64*: the spread of delays, not their secrecy, matters here.
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    let mut held: BinaryHeap<Held> = BinaryHeap::new();
    let mut seq = 0u64;
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        loop {
            match q.recv() {
                Ok(mut msg) => {
                    msg.set_verdict(nfq::Verdict::Accept);
                    let spread = 2 * jitter_ms + 1;
                    let ms = mean_ms - jitter_ms + next() % spread;
                    seq += 1;
                    held.push(Held {
                        at: Instant::now() + Duration::from_millis(ms),
                        seq,
                        msg,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::warn!(error = %e, "delay queue receive failed");
                    break;
                }
            }
        }
        let now = Instant::now();
        while held.peek().is_some_and(|h| stopping || h.at <= now) {
            if let Some(h) = held.pop() {
                if let Err(e) = q.verdict(h.msg) {
                    tracing::warn!(error = %e, "delay verdict failed");
                }
            }
        }
        if stopping {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
