//! The safety properties of the Raft paper's Figure 3, as code, checked after every step of a
//! simulated run:
//! - Election Safety (section 5.2): at most one leader per term;
//! - Log Matching (section 5.3): entries with the same index and term have identical prefixes;
//! - Leader Completeness (section 5.4): a leader holds every entry committed before its term;
//! - State Machine Safety (section 5.4.3): no two servers apply different entries at one index
//!   (checked on what is committed and on the state machines themselves).
//!
//! Log Matching is checked over all time, not only over the logs of the moment: every server's
//! log is mirrored as a chain of hashes (each entry's hash covers its whole prefix), and every
//! `(index, term)` ever written must always come with the same chain hash.

use std::collections::{BTreeMap, HashMap};

use raft::core::{Entry, LogIndex, Persist, Role, Term};
use raft::replica::Replica;

fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn entry_hash(prev: u64, e: &Entry) -> u64 {
    let mut h = mix(prev ^ e.term.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ e.index);
    for chunk in e.data.chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        h = mix(h ^ u64::from_le_bytes(word));
    }
    h | 1 // never 0, which marks "unknown" in a chain
}

pub struct Invariants {
    /// Election Safety: the leader of each term.
    leaders: HashMap<Term, usize>,
    /// Log Matching: chain hash of every (index, term) any server ever wrote.
    entries: HashMap<(LogIndex, Term), u64>,
    /// Per server, the chain hash of its log at each index (0: unknown, before a snapshot).
    chains: Vec<Vec<u64>>,
    /// Every committed index, with the chain hash of the entry committed there.
    committed: BTreeMap<LogIndex, u64>,
    /// Per server, the highest commit index already recorded.
    recorded_commit: Vec<LogIndex>,
    /// State Machine Safety: the digest of the state machine after applying each index.
    digests: HashMap<LogIndex, (u64, usize)>,
    was_leader: Vec<Option<Term>>,
    elections: usize,
    snapshots_installed: usize,
    broken: Option<String>,
}

impl Invariants {
    pub fn new(nodes: usize) -> Invariants {
        Invariants {
            leaders: HashMap::new(),
            entries: HashMap::new(),
            chains: vec![vec![0]; nodes],
            committed: BTreeMap::new(),
            recorded_commit: vec![0; nodes],
            digests: HashMap::new(),
            was_leader: vec![None; nodes],
            elections: 0,
            snapshots_installed: 0,
            broken: None,
        }
    }

    pub fn elections(&self) -> usize {
        self.elections
    }

    pub fn snapshots_installed(&self) -> usize {
        self.snapshots_installed
    }

    fn fail(&mut self, msg: String) {
        self.broken.get_or_insert(msg);
    }

    /// A server restarted from its disk; its chain mirrors that disk already.
    pub fn restarted(&mut self, i: usize, _replica: &Replica) {
        self.was_leader[i] = None;
    }

    /// Mirrors what server `i` writes to disk into its hash chain.
    pub fn before_persist(&mut self, i: usize, p: &Persist) {
        if let Some(s) = &p.snapshot {
            let last = s.last_index as usize;
            let known = self.chains[i].get(last).copied().unwrap_or(0);
            if known == 0 || Some(&known) != self.entries.get(&(s.last_index, s.last_term)) {
                // An installed snapshot: its last entry must be one some server wrote.
                match self.entries.get(&(s.last_index, s.last_term)).copied() {
                    Some(h) => {
                        self.snapshots_installed += 1;
                        let chain = &mut self.chains[i];
                        chain.truncate(last + 1);
                        chain.resize(last + 1, 0);
                        chain[last] = h;
                        // The snapshot replaced whatever the log held before it, except what
                        // was committed (and so matches); the rest is no longer known.
                        for (idx, c) in chain.iter_mut().enumerate().take(last).skip(1) {
                            if self.committed.get(&(idx as u64)) != Some(c) {
                                *c = 0;
                            }
                        }
                    }
                    None => self.fail(format!(
                        "n{i} stored a snapshot ending at index {} term {}, an entry no server ever had",
                        s.last_index, s.last_term
                    )),
                }
            }
        }
        if let Some(from) = p.truncate_from {
            let chain = &mut self.chains[i];
            chain.truncate(from as usize);
        }
        for e in &p.append {
            let idx = e.index as usize;
            let chain = &mut self.chains[i];
            if chain.len() < idx {
                self.fail(format!(
                    "n{i} appended entry {} after a gap in its log",
                    e.index
                ));
                return;
            }
            chain.truncate(idx);
            let h = entry_hash(chain[idx - 1], e);
            chain.push(h);
            if chain[idx - 1] == 0 && idx > 1 {
                // The prefix is only known through a snapshot; compare by (index, term).
                self.entries.entry((e.index, e.term)).or_insert(h);
                continue;
            }
            let seen = *self.entries.entry((e.index, e.term)).or_insert(h);
            if seen != h {
                self.fail(format!(
                    "Log Matching (section 5.3) broken: n{i} holds entry {} of term {} with a different history from another server's",
                    e.index, e.term
                ));
            }
        }
    }

    /// Checks every property for server `i` after it handled an input.
    pub fn check(&mut self, i: usize, r: &Replica, _now: u64) -> Result<(), String> {
        if let Some(b) = self.broken.take() {
            return Err(b);
        }
        let raft = r.raft();
        let log = raft.log();
        // openraft-style validate(): snapshot <= applied <= commit <= last.
        if !(log.snapshot_index() <= r.applied()
            && r.applied() <= raft.commit_index()
            && raft.commit_index() <= log.last_index())
        {
            return Err(format!(
                "n{i} bookkeeping out of order: snapshot {} applied {} commit {} last {}",
                log.snapshot_index(),
                r.applied(),
                raft.commit_index(),
                log.last_index()
            ));
        }
        let term = raft.term();
        if raft.role() == Role::Leader {
            let leader = *self.leaders.entry(term).or_insert(i);
            if leader != i {
                return Err(format!(
                    "Election Safety (section 5.2) broken: n{leader} and n{i} are both leaders of term {term}"
                ));
            }
            if self.was_leader[i] != Some(term) {
                self.was_leader[i] = Some(term);
                self.elections += 1;
                // Leader Completeness (section 5.4): every entry committed so far is here.
                let chain = &self.chains[i];
                for (idx, h) in &self.committed {
                    match chain.get(*idx as usize) {
                        Some(c) if c == h => {}
                        Some(0) if *idx <= log.snapshot_index() => {}
                        _ => {
                            return Err(format!(
                                "Leader Completeness (section 5.4) broken: n{i}, leader of term {term}, lacks committed entry {idx}"
                            ))
                        }
                    }
                }
            }
        } else {
            self.was_leader[i] = None;
        }
        // Every newly committed index must hold the entry committed there before, if any.
        let commit = raft.commit_index();
        let from = self.recorded_commit[i] + 1;
        for idx in from..=commit {
            let h = self.chains[i].get(idx as usize).copied().unwrap_or(0);
            if h == 0 {
                continue;
            }
            let seen = *self.committed.entry(idx).or_insert(h);
            if seen != h {
                return Err(format!(
                    "State Machine Safety (section 5.4.3) broken: index {idx} was committed with two different entries (n{i} commits another)"
                ));
            }
        }
        self.recorded_commit[i] = self.recorded_commit[i].max(commit);
        // And the state machines agree at every applied index.
        let digest = r.kv().digest();
        let (seen, by) = *self.digests.entry(r.applied()).or_insert((digest, i));
        if seen != digest {
            return Err(format!(
                "State Machine Safety (section 5.4.3) broken: n{i} and n{by} have different states after applying index {}",
                r.applied()
            ));
        }
        Ok(())
    }
}
