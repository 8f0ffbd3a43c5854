//! The replica: one node of a Dynamo-style store as a sans-IO state machine (DeCandia et
//! al., "Dynamo: Amazon's Highly Available Key-value Store", SOSP 2007).
//!
//! - **Partitioning**: a consistent-hash ring with virtual nodes ([`crate::ring`]); a key's
//!   preference list is the next N distinct nodes clockwise from its hash.
//! - **Coordination**: any node coordinates any request. A write is applied to the
//!   coordinator's own copy first (so the dots it issues never repeat), made durable, then
//!   sent, whole, to the first N *reachable* nodes of the key's walk; it succeeds with W
//!   acknowledgements. A read asks the same N and answers with the merge of the first R
//!   replies.
//! - **Sloppy quorum and hinted handoff** (section 4.6): a node standing in for an
//!   unreachable owner keeps the write with a durable hint naming the owner, and hands the
//!   object back when the owner is reachable again. A target that does not answer within
//!   [`Config::retry_ticks`] is replaced by the next node of the walk.
//! - **Versions** ([`crate::version`]): siblings with dots and one causal context per key,
//!   or last-writer-wins by the coordinator's (skewable) wall clock.
//! - **Read repair**: when every asked node has answered (or a grace period has passed), the
//!   ones whose copy differs from the merge get the merge.
//! - **Anti-entropy** (section 4.7): every [`Config::ae_ticks`], a Merkle exchange
//!   ([`crate::merkle`]) with one random reachable peer over the keys both replicate,
//!   descending only into differing subtrees and exchanging only differing leaves.
//! - **Membership and failure detection** (section 4.8): every node pings every other
//!   [`Config::gossip_ticks`] (a heartbeat failure detector: a peer unheard for
//!   [`Config::fd_timeout_ticks`] is down) and gossips its membership view (incarnation and
//!   heartbeat counter of every node) to one random peer per round; a restart shows as a new
//!   incarnation.
//! - **Causal sessions** (`--session causal`, after COPS: Lloyd et al., "Don't settle for
//!   eventual", SOSP 2011): a client's context is its session's, per key what it has seen; a
//!   write stores it with the version as that version's dependencies, a read answers only with
//!   a version at least as new as the session has seen of the key (asking further replicas,
//!   and again each retry period, until one has it; `fail` when none has by the timeout) and
//!   hands the session the dependencies of what it returned. So every session sees every
//!   write causally before its reads, even across keys and during partitions (where a read
//!   that cannot be served fails rather than go back in time).
//! - **CRDTs** ([`crate::crdt`]): `incr` keys are PN-counters, `add` keys OR-sets, merged by
//!   read repair and anti-entropy like any object.
//!
//! Every change of a stored object or hint is in the `Ready`'s `persist`, written durably
//! before any message or answer of that round leaves.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use node::op::{OpKind, OpRequest, OpResponse};
use node::runtime::{ClientId, Core, NodeId, NotLeader, PeerMessage, Ready, Status};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::crdt::{OrSet, PnCounter};
use crate::merkle::{self, Tree, DEPTH, FANOUT};
use crate::object::{client_context, encode_session, Context, MergeRules, Object};
use crate::ring::{hash64, Ring};
use crate::version::{Conflict, Deps, Reg, Seen, Sib, Stamp};

/// The planted bugs (`--bug NAME`), each a mistake a Dynamo implementation can make.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bugs {
    /// LWW: a write's timestamp is the clock alone, not above the one it replaces.
    pub lww_no_max: bool,
    /// Hints are kept in memory only: a stand-in that restarts forgets whom it owes.
    pub volatile_hints: bool,
    /// Version vectors merge by the pointwise minimum.
    pub vclock_merge_min: bool,
    /// Read repair overwrites every asked replica with the oldest copy it was given.
    pub repair_older: bool,
    /// After a restart or a peer's return, anti-entropy skips a quarter of the key space.
    pub merkle_skip: bool,
}

impl Bugs {
    pub const NAMES: [&'static str; 5] = [
        "lww-no-max",
        "volatile-hints",
        "vclock-merge-min",
        "repair-older",
        "merkle-skip",
    ];

    pub fn enable(&mut self, name: &str) -> Result<(), String> {
        match name {
            "lww-no-max" => self.lww_no_max = true,
            "volatile-hints" => self.volatile_hints = true,
            "vclock-merge-min" => self.vclock_merge_min = true,
            "repair-older" => self.repair_older = true,
            "merkle-skip" => self.merkle_skip = true,
            _ => {
                return Err(format!(
                    "'{name}': no such bug; dynamo-node's bugs are {}",
                    Self::NAMES.join(", ")
                ))
            }
        }
        Ok(())
    }

    pub fn names(&self) -> Vec<&'static str> {
        let on = [
            self.lww_no_max,
            self.volatile_hints,
            self.vclock_merge_min,
            self.repair_older,
            self.merkle_skip,
        ];
        Self::NAMES
            .iter()
            .zip(on)
            .filter(|(_, on)| *on)
            .map(|(n, _)| *n)
            .collect()
    }
}

/// What a client's context stands for (`--session`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Session {
    /// One key's context, as Dynamo's clients keep them: a write supersedes what it says.
    #[default]
    Key,
    /// The session's: what it has seen of every key, honoured by every read (causal
    /// consistency).
    Causal,
}

/// Everything a replica is configured with. Times are in ticks.
#[derive(Clone, Debug)]
pub struct Config {
    pub me: NodeId,
    /// Every member, with the name its ring tokens are made from.
    pub members: Vec<(NodeId, String)>,
    pub n: usize,
    pub r: usize,
    pub w: usize,
    pub vnodes: usize,
    pub conflict: Conflict,
    pub bugs: Bugs,
    /// What a client's context is: one key's (Dynamo's) or its whole session's (causal).
    pub session: Session,
    pub seed: u64,
    /// A request not finished by then is answered (`info` for a write, `fail` for a read).
    pub op_timeout_ticks: u64,
    /// A target that has not answered by then is replaced by the next node of the walk.
    pub retry_ticks: u64,
    pub gossip_ticks: u64,
    pub fd_timeout_ticks: u64,
    pub ae_ticks: u64,
    pub hint_ticks: u64,
}

impl Config {
    /// Dynamo's defaults (N=3, R=2, W=2) at 10 ms ticks.
    pub fn new(me: NodeId, members: Vec<(NodeId, String)>) -> Config {
        Config {
            me,
            members,
            n: 3,
            r: 2,
            w: 2,
            vnodes: 64,
            conflict: Conflict::Siblings,
            session: Session::Key,
            bugs: Bugs::default(),
            seed: 1,
            op_timeout_ticks: 150,
            retry_ticks: 15,
            gossip_ticks: 10,
            fd_timeout_ticks: 50,
            ae_ticks: 50,
            hint_ticks: 20,
        }
    }

    fn rules(&self) -> MergeRules {
        MergeRules {
            conflict: self.conflict,
            min_bug: self.bugs.vclock_merge_min,
        }
    }
}

/// A message between replicas.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Message {
    pub from: NodeId,
    pub to: NodeId,
    pub body: Body,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Body {
    /// Store (merge) this object; `hint` names the owner a stand-in keeps it for; `req` 0
    /// asks for no acknowledgement (repairs). `replace` overwrites instead of merging
    /// (only the `repair-older` bug sends it).
    Put {
        req: u64,
        key: String,
        obj: Object,
        hint: Option<u64>,
        replace: bool,
    },
    PutAck {
        req: u64,
    },
    Get {
        req: u64,
        key: String,
    },
    GetReply {
        req: u64,
        obj: Option<Object>,
    },
    /// The heartbeat of the failure detector.
    Ping {
        incarnation: u64,
    },
    /// The sender's membership view: (node, incarnation, heartbeat counter).
    Gossip {
        view: Vec<(u64, u64, u64)>,
    },
    /// Anti-entropy: the sender's hashes of these nodes of `level` of the tree over the keys
    /// both replicate.
    AeNodes {
        session: u64,
        level: u8,
        nodes: Vec<(u32, u64)>,
    },
    /// Anti-entropy: the sender's objects in these differing leaves; `reply` asks for the
    /// receiver's in return.
    AeLeaves {
        session: u64,
        leaves: Vec<u32>,
        entries: Vec<(String, Object)>,
        reply: bool,
    },
}

impl PeerMessage for Message {
    fn from(&self) -> NodeId {
        self.from
    }
    fn to(&self) -> NodeId {
        self.to
    }
    fn size_bytes(&self) -> usize {
        body_bytes(&self.body) + 16
    }
}

/// Roughly the bytes a body takes on the wire (postcard's encoding of it).
pub fn body_bytes(body: &Body) -> usize {
    match body {
        Body::Put { key, obj, .. } => key.len() + object_bytes(obj) + 12,
        Body::GetReply { obj, .. } => obj.as_ref().map_or(0, object_bytes) + 9,
        Body::Get { key, .. } => key.len() + 9,
        Body::Gossip { view } => view.len() * 12 + 2,
        Body::AeNodes { nodes, .. } => nodes.len() * 11 + 10,
        Body::AeLeaves {
            leaves, entries, ..
        } => {
            leaves.len() * 3
                + entries
                    .iter()
                    .map(|(k, o)| k.len() + 1 + object_bytes(o))
                    .sum::<usize>()
                + 12
        }
        Body::PutAck { .. } | Body::Ping { .. } => 9,
    }
}

fn object_bytes(o: &Object) -> usize {
    postcard::experimental::serialized_size(o).unwrap_or(0)
}

/// What one `Ready` asks the storage to write.
#[derive(Clone, Debug, Default)]
pub struct Persist {
    /// The new state of every object that changed.
    pub objects: Vec<(String, Object)>,
    pub hints: Vec<HintChange>,
    /// A new incarnation began (written once, at boot).
    pub boot: Option<u64>,
}

impl Persist {
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty() && self.hints.is_empty() && self.boot.is_none()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HintChange {
    /// Keep `key` for `owner` until it has it.
    Add(u64, String),
    /// `owner` acknowledged `key`.
    Done(u64, String),
}

/// What a replica restarts from.
#[derive(Clone, Debug, Default)]
pub struct Persisted {
    pub objects: BTreeMap<String, Object>,
    pub hints: BTreeSet<(u64, String)>,
    pub incarnation: u64,
}

/// Figures `/health` shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub ae_sessions: u64,
    /// Bytes of every anti-entropy message sent.
    pub ae_bytes: u64,
    /// Bytes a full transfer of the shared keys would have taken, session by session.
    pub ae_full_bytes: u64,
    /// Keys whose state an anti-entropy exchange changed here.
    pub ae_repaired: u64,
    pub hints_delivered: u64,
    pub read_repairs: u64,
}

struct Entry {
    obj: Object,
    digest: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Read,
    Write,
}

struct Pending {
    client: Option<ClientId>,
    kind: Kind,
    key: String,
    /// The key's walk: owners first, then the fallbacks.
    walk: Vec<NodeId>,
    /// Asked so far, each with the owner it stands in for.
    targets: Vec<(NodeId, Option<NodeId>)>,
    acks: BTreeSet<NodeId>,
    replies: Vec<(NodeId, Option<Object>)>,
    /// What a write sends.
    obj: Option<Object>,
    /// `--session causal`: what the client's session has seen, which a read must be at least
    /// as new as for its key, and which the answer's context extends.
    session: Option<Deps>,
    /// A causal write waiting for this read to catch the local copy up with its session.
    then_write: Option<OpRequest>,
    /// Per-key sessions (the default, with siblings): what the client's context said of every
    /// key, which the answer's context carries on (so a client that keeps one context for all
    /// keys loses none of them).
    known: Deps,
    next_retry: u64,
    deadline: u64,
    answered: bool,
}

/// One Dynamo node.
pub struct Replica {
    cfg: Config,
    ring: Ring,
    rng: u64,
    now: u64,
    wall_ms: i64,
    incarnation: u64,
    store: HashMap<String, Entry>,
    walks: HashMap<String, Vec<NodeId>>,
    hints: BTreeSet<(u64, String)>,
    hints_in_flight: HashMap<u64, (u64, String, u64)>,
    last_heard: HashMap<NodeId, u64>,
    up: BTreeSet<NodeId>,
    view: BTreeMap<u64, (u64, u64, u64)>,
    heartbeat: u64,
    pending: HashMap<u64, Pending>,
    next_req: u64,
    /// Set by the `merkle-skip` bug after a restart or a peer's return.
    skipping: bool,
    /// The sum over stored keys of a hash of (key, state), kept as objects change: two
    /// replicas that hold the same keys in the same states show the same figure.
    store_digest: u64,
    /// The encoded size of every stored object, kept likewise.
    store_bytes: u64,
    stats: Stats,
    dirty: BTreeSet<String>,
    hint_changes: Vec<HintChange>,
    boot: Option<u64>,
    messages: Vec<Message>,
    responses: Vec<(ClientId, OpResponse)>,
}

/// The answer to a `local` read at a node that holds no replica of the key; the harness's
/// final reads recognise the prefix.
pub const NOT_A_REPLICA: &str = "not-a-replica";

/// Level-1 subtrees the `merkle-skip` bug leaves out (a quarter of the key space).
const SKIPPED_SUBTREES: usize = FANOUT / 4;

/// Hints handed back at once, at most.
const MAX_HINTS_IN_FLIGHT: usize = 256;

impl Replica {
    /// A replica restarting from `state` (empty for a new one).
    pub fn new(cfg: Config, state: Persisted) -> Replica {
        let ring = Ring::new(&cfg.members, cfg.vnodes);
        let incarnation = state.incarnation + 1;
        let restarted = !state.objects.is_empty() || state.incarnation > 0;
        let store: HashMap<String, Entry> = state
            .objects
            .into_iter()
            .map(|(k, obj)| {
                let digest = obj.digest();
                (k, Entry { obj, digest })
            })
            .collect();
        let store_digest = store.iter().fold(0u64, |acc, (k, e)| {
            acc.wrapping_add(entry_hash(k, e.digest))
        });
        let store_bytes = store
            .iter()
            .map(|(k, e)| (k.len() + object_bytes(&e.obj)) as u64)
            .sum();
        let last_heard = cfg.members.iter().map(|(id, _)| (*id, 0)).collect();
        let up = cfg.members.iter().map(|(id, _)| *id).collect();
        let view = cfg
            .members
            .iter()
            .map(|(id, _)| (id.0, (0, 0, 0)))
            .collect();
        Replica {
            rng: cfg.seed | 1,
            skipping: cfg.bugs.merkle_skip && restarted,
            store_digest,
            store_bytes,
            cfg,
            ring,
            now: 0,
            wall_ms: 0,
            incarnation,
            store,
            walks: HashMap::new(),
            hints: state.hints,
            hints_in_flight: HashMap::new(),
            last_heard,
            up,
            view,
            heartbeat: 0,
            pending: HashMap::new(),
            next_req: 1,
            stats: Stats::default(),
            dirty: BTreeSet::new(),
            hint_changes: Vec::new(),
            boot: Some(incarnation),
            messages: Vec::new(),
            responses: Vec::new(),
        }
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    pub fn hints(&self) -> &BTreeSet<(u64, String)> {
        &self.hints
    }

    /// This replica's copy of `key`, if it has one.
    pub fn object(&self, key: &str) -> Option<&Object> {
        self.store.get(key).map(|e| &e.obj)
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.store.keys()
    }

    /// The key's preference list (its N owners).
    pub fn owners(&mut self, key: &str) -> Vec<NodeId> {
        let n = self.cfg.n;
        let walk = self.walk(key);
        walk[..n.min(walk.len())].to_vec()
    }

    pub fn is_owner(&mut self, key: &str) -> bool {
        let me = self.cfg.me;
        self.owners(key).contains(&me)
    }

    fn walk(&mut self, key: &str) -> Vec<NodeId> {
        if let Some(w) = self.walks.get(key) {
            return w.clone();
        }
        let w = self.ring.walk(hash64(key.as_bytes()));
        self.walks.insert(key.to_string(), w.clone());
        w
    }

    fn random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        crate::ring::mix(self.rng)
    }

    fn send(&mut self, to: NodeId, body: Body) {
        if to == self.cfg.me {
            return;
        }
        self.messages.push(Message {
            from: self.cfg.me,
            to,
            body,
        });
    }

    fn alive(&self, n: NodeId) -> bool {
        n == self.cfg.me || self.up.contains(&n)
    }

    /// Merges `obj` into this replica's copy of `key` (or, for `replace`, overwrites it);
    /// whether anything changed.
    fn merge_in(&mut self, key: &str, obj: &Object, replace: bool) -> bool {
        let rules = self.cfg.rules();
        let (before, old_bytes) = match self.store.get(key) {
            Some(e) => (Some(e.digest), (key.len() + object_bytes(&e.obj)) as u64),
            None => (None, 0),
        };
        let entry = self.store.entry(key.to_string()).or_insert_with(|| Entry {
            obj: obj.clone(),
            digest: 0,
        });
        if before.is_some() {
            if replace {
                entry.obj = obj.clone();
            } else {
                entry.obj.merge(obj, rules);
            }
        }
        entry.digest = entry.obj.digest();
        let after = entry.digest;
        if before == Some(after) {
            return false;
        }
        let new_bytes = (key.len() + object_bytes(&entry.obj)) as u64;
        if let Some(b) = before {
            self.store_digest = self.store_digest.wrapping_sub(entry_hash(key, b));
        }
        self.store_digest = self.store_digest.wrapping_add(entry_hash(key, after));
        self.store_bytes = (self.store_bytes + new_bytes).saturating_sub(old_bytes);
        self.dirty.insert(key.to_string());
        true
    }

    fn add_hint(&mut self, owner: NodeId, key: &str) {
        if owner == self.cfg.me {
            return;
        }
        if self.hints.insert((owner.0, key.to_string())) {
            self.hint_changes
                .push(HintChange::Add(owner.0, key.to_string()));
        }
    }

    // ---- client operations ----------------------------------------------------------

    fn answer(&mut self, client: ClientId, resp: OpResponse) {
        self.responses.push((client, resp));
    }

    /// Applies a client's write to this node's own copy: the coordinator's step.
    fn apply_write(&mut self, op: &OpRequest, key: &str) -> Result<Object, String> {
        let me = self.cfg.me.0;
        let mut obj = match self.store.get(key) {
            Some(e) => e.obj.clone(),
            None => match op.f {
                OpKind::Write => Object::Reg(Reg::default()),
                OpKind::Incr => Object::Counter(PnCounter::default()),
                _ => Object::Set(OrSet::default()),
            },
        };
        match (op.f, &mut obj) {
            (OpKind::Write, Object::Reg(reg)) => {
                let (ctx, deps) = client_context(op.context.as_deref(), key)
                    .map_err(|e| format!("context: {e}"))?;
                let dot = reg.next_dot(me);
                let mut ms = self.wall_ms;
                if !self.cfg.bugs.lww_no_max {
                    // A write must win over everything it replaces, whatever the clocks say:
                    // above what the client saw and above what this copy holds.
                    for s in [ctx.stamp, reg.max_stamp()].into_iter().flatten() {
                        ms = ms.max(s.ms + 1);
                    }
                }
                let sib = Sib {
                    dot,
                    stamp: Stamp {
                        ms,
                        node: me,
                        counter: dot.counter,
                    },
                    value: op.value.to_string(),
                    deps: if self.cfg.session == Session::Causal {
                        deps
                    } else {
                        Deps::default()
                    },
                };
                if self.cfg.session == Session::Causal {
                    let seen = sib.deps.of(key);
                    reg.put_seen(&seen, sib);
                } else {
                    reg.put(
                        &ctx.vv,
                        sib,
                        self.cfg.conflict,
                        self.cfg.bugs.vclock_merge_min,
                    );
                }
            }
            (OpKind::Incr, Object::Counter(c)) => {
                c.incr(me, op.value.as_i64().unwrap_or(0));
            }
            (OpKind::Add, Object::Set(s)) => s.add(me, op.value.to_string()),
            (f, o) => {
                return Err(format!(
                    "key {key} holds a {}; {} does not apply to it",
                    o.kind(),
                    f.as_str()
                ))
            }
        }
        self.merge_in(key, &obj, true);
        Ok(obj)
    }

    /// Applies a client's write here and sends it to the key's replicas; a causal session has
    /// then seen its own write (and only that of what this copy holds).
    fn write(
        &mut self,
        client: ClientId,
        op: &OpRequest,
        key: &str,
        session: Option<Deps>,
        known: Deps,
    ) {
        match self.apply_write(op, key) {
            Ok(obj) => {
                let session = session.map(|mut deps| {
                    if let Object::Reg(r) = &obj {
                        let me = self.cfg.me.0;
                        let mine = r.sibs.iter().filter(|s| s.dot.node == me);
                        if let Some(d) = mine.map(|s| s.dot).max() {
                            deps.see_dot(key, d);
                        }
                    }
                    deps
                });
                self.start(Some(client), Kind::Write, key, Some(obj), session, known)
            }
            Err(e) => self.answer(client, OpResponse::fail(e)),
        }
    }

    fn local_read(&mut self, client: ClientId, key: &str) {
        if !self.is_owner(key) {
            let owners: Vec<String> = self
                .owners(key)
                .iter()
                .map(|n| self.name(*n).to_string())
                .collect();
            let msg = format!(
                "{NOT_A_REPLICA}: {} holds no replica of {key}; its replicas are {}",
                self.name(self.cfg.me),
                owners.join(", ")
            );
            self.answer(client, OpResponse::fail(msg));
            return;
        }
        let resp = match self.store.get(key) {
            Some(e) => read_response(&e.obj, key),
            None => OpResponse::ok_value(Value::Null),
        };
        self.answer(client, resp);
    }

    fn name(&self, n: NodeId) -> &str {
        self.cfg
            .members
            .iter()
            .find(|(id, _)| *id == n)
            .map_or("?", |(_, name)| name.as_str())
    }

    fn start(
        &mut self,
        client: Option<ClientId>,
        kind: Kind,
        key: &str,
        obj: Option<Object>,
        session: Option<Deps>,
        known: Deps,
    ) {
        let walk = self.walk(key);
        let n = self.cfg.n.min(walk.len());
        let owners: Vec<NodeId> = walk[..n].to_vec();
        // The first N reachable nodes of the walk; each fallback stands in for an owner
        // that is not reachable.
        let mut chosen: Vec<NodeId> = walk
            .iter()
            .copied()
            .filter(|x| self.alive(*x))
            .take(n)
            .collect();
        if chosen.is_empty() {
            chosen.push(self.cfg.me);
        }
        let mut missing = owners.iter().filter(|o| !chosen.contains(o)).copied();
        let targets: Vec<(NodeId, Option<NodeId>)> = chosen
            .iter()
            .map(|t| {
                let hint = if owners.contains(t) {
                    None
                } else {
                    missing.next()
                };
                (*t, hint)
            })
            .collect();
        let req = self.next_req;
        self.next_req += 1;
        let pending = Pending {
            client,
            kind,
            key: key.to_string(),
            walk,
            targets: Vec::new(),
            acks: BTreeSet::new(),
            replies: Vec::new(),
            obj,
            session,
            then_write: None,
            known,
            next_retry: self.now + self.cfg.retry_ticks,
            deadline: self.now + self.cfg.op_timeout_ticks,
            answered: false,
        };
        self.pending.insert(req, pending);
        for (t, hint) in targets {
            self.ask(req, t, hint);
        }
        self.progress(req);
    }

    /// Sends request `req` to `target` (or serves it here).
    fn ask(&mut self, req: u64, target: NodeId, hint: Option<NodeId>) {
        let Some(p) = self.pending.get_mut(&req) else {
            return;
        };
        p.targets.push((target, hint));
        let key = p.key.clone();
        match p.kind {
            Kind::Read => {
                if target == self.cfg.me {
                    let obj = self.store.get(&key).map(|e| e.obj.clone());
                    if let Some(p) = self.pending.get_mut(&req) {
                        p.replies.push((target, obj));
                    }
                } else {
                    self.send(target, Body::Get { req, key });
                }
            }
            Kind::Write => {
                if target == self.cfg.me {
                    p.acks.insert(target);
                    if let Some(h) = hint {
                        self.add_hint(h, &key);
                    }
                } else {
                    let obj = p.obj.clone().expect("a write carries its object");
                    self.send(
                        target,
                        Body::Put {
                            req,
                            key,
                            obj,
                            hint: hint.map(|h| h.0),
                            replace: false,
                        },
                    );
                }
            }
        }
    }

    /// Answers the client once R replies or W acks are in, and finishes the request when
    /// every target has answered or time is up.
    fn progress(&mut self, req: u64) {
        let (r, w) = (self.cfg.r, self.cfg.w);
        let Some(p) = self.pending.get_mut(&req) else {
            return;
        };
        let mut answer = None;
        // A causal read whose replies are all older than its session: ask more nodes.
        let mut wider = false;
        // A causal write's catch-up read that caught up: the merge to take in, then write.
        let mut write_now: Option<Object> = None;
        if !p.answered {
            match p.kind {
                Kind::Read if p.replies.len() >= r.min(p.walk.len()) => {
                    let merged = merge_all(&p.replies, self.cfg.rules());
                    match &p.session {
                        None => {
                            let mut resp = match &merged {
                                Some(o) => read_response(o, &p.key),
                                None => OpResponse::ok_value(Value::Null),
                            };
                            if self.cfg.conflict == Conflict::Siblings {
                                resp.context =
                                    Some(encode_session(&seen(&p.known, &p.key, &merged)));
                            }
                            answer = Some(resp);
                        }
                        Some(_)
                            if p.then_write.is_some()
                                && caught_up(
                                    merged.as_ref(),
                                    &p.session.as_ref().map(|d| d.of(&p.key)).unwrap_or_default(),
                                ) =>
                        {
                            write_now = merged;
                        }
                        Some(deps) if caught_up(merged.as_ref(), &deps.of(&p.key)) => {
                            let mut resp = match &merged {
                                Some(o) => read_response(o, &p.key),
                                None => OpResponse::ok_value(Value::Null),
                            };
                            resp.context = Some(encode_session(&seen(deps, &p.key, &merged)));
                            answer = Some(resp);
                        }
                        Some(_) => wider = true,
                    }
                }
                Kind::Write if p.acks.len() >= w.min(p.walk.len()) => {
                    let mut resp = OpResponse::ok();
                    if let Some(Object::Reg(reg)) = &p.obj {
                        resp.context = Some(match &p.session {
                            Some(deps) => encode_session(deps),
                            None if self.cfg.conflict == Conflict::Siblings => {
                                encode_session(&seen(&p.known, &p.key, &p.obj))
                            }
                            None => Context::of(reg).keyed(&p.key).encode(),
                        });
                    }
                    answer = Some(resp);
                }
                _ => {}
            }
        }
        if let Some(resp) = answer {
            p.answered = true;
            if let Some(c) = p.client {
                self.responses.push((c, resp));
            }
        }
        if let Some(merged) = write_now {
            p.answered = true;
            let (client, key) = (p.client, p.key.clone());
            let (op, session, known) = (p.then_write.take(), p.session.clone(), p.known.clone());
            self.merge_in(&key, &merged, false);
            if let (Some(c), Some(op)) = (client, op) {
                self.write(c, &op, &key, session, known);
            }
            return;
        }
        if wider && p.replies.len() >= p.targets.len() {
            self.ask_wider(req);
            return;
        }
        let Some(p) = self.pending.get(&req) else {
            return;
        };
        let all_in = match p.kind {
            Kind::Read => p.replies.len() >= p.targets.len(),
            Kind::Write => p.acks.len() >= p.targets.len(),
        };
        if p.answered && all_in {
            self.finish(req);
        }
    }

    /// A causal read whose every target answered with a version older than the session has
    /// seen: ask every other node of the key's walk this node can reach, and itself (a
    /// coordinator keeps what it coordinated). Nothing new to ask: the retry period asks
    /// everyone again.
    fn ask_wider(&mut self, req: u64) {
        let Some(p) = self.pending.get(&req) else {
            return;
        };
        let tried: BTreeSet<NodeId> = p.targets.iter().map(|(t, _)| *t).collect();
        let me = self.cfg.me;
        let more: Vec<NodeId> = p
            .walk
            .iter()
            .copied()
            .chain(std::iter::once(me))
            .filter(|n| !tried.contains(n) && (*n == me || self.alive(*n)))
            .collect();
        for n in more {
            self.ask(req, n, None);
        }
    }

    /// Read repair, then forget the request.
    fn finish(&mut self, req: u64) {
        let Some(p) = self.pending.remove(&req) else {
            return;
        };
        if p.kind != Kind::Read || p.replies.is_empty() {
            return;
        }
        let rules = self.cfg.rules();
        let Some(merged) = merge_all(&p.replies, rules) else {
            return;
        };
        let (push, replace) = if self.cfg.bugs.repair_older {
            // The planted mistake: the copy that looks oldest is taken for the truth.
            match oldest(&p.replies) {
                Some(o) if o.digest() != merged.digest() => (o, true),
                _ => (merged, false),
            }
        } else {
            (merged, false)
        };
        let digest = push.digest();
        for (node, obj) in &p.replies {
            let differs = obj.as_ref().is_none_or(|o| o.digest() != digest);
            if !differs {
                continue;
            }
            self.stats.read_repairs += 1;
            if *node == self.cfg.me {
                self.merge_in(&p.key, &push, replace);
            } else {
                self.send(
                    *node,
                    Body::Put {
                        req: 0,
                        key: p.key.clone(),
                        obj: push.clone(),
                        hint: None,
                        replace,
                    },
                );
            }
        }
    }

    fn on_timeouts(&mut self) {
        let now = self.now;
        let due: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now || p.next_retry <= now)
            .map(|(r, _)| *r)
            .collect();
        for req in due {
            let Some(p) = self.pending.get_mut(&req) else {
                continue;
            };
            if p.deadline <= now {
                if !p.answered {
                    p.answered = true;
                    let resp = match p.kind {
                        Kind::Read if p.then_write.is_some() => OpResponse::fail(format!(
                            "write {}: no replica this node could reach has caught up with what \
                             the session has seen of it, which the write must supersede \
                             (--session causal); not written",
                            p.key
                        )),
                        Kind::Read if p.session.is_some() => OpResponse::fail(format!(
                            "read {}: no replica this node could reach has caught up with what \
                             the session has seen of it (--session causal: a read never goes \
                             back in time)",
                            p.key
                        )),
                        Kind::Read => OpResponse::fail(format!(
                            "read {}: {} of R={} replicas answered in time",
                            p.key,
                            p.replies.len(),
                            self.cfg.r
                        )),
                        Kind::Write => OpResponse::info(format!(
                            "write {}: {} of W={} acknowledgements in time; it may still \
                             take effect",
                            p.key,
                            p.acks.len(),
                            self.cfg.w
                        )),
                    };
                    if let Some(c) = p.client {
                        self.responses.push((c, resp));
                    }
                }
                self.finish(req);
                continue;
            }
            p.next_retry = now + self.cfg.retry_ticks;
            if p.answered {
                // A read waiting for its stragglers before repairing: give them one
                // retry period, then repair with what came.
                if p.kind == Kind::Read {
                    self.finish(req);
                }
                continue;
            }
            // Sloppy quorum: replace the silent ones by the next nodes of the walk.
            let answered: BTreeSet<NodeId> = match p.kind {
                Kind::Read => p.replies.iter().map(|(n, _)| *n).collect(),
                Kind::Write => p.acks.clone(),
            };
            let silent: Vec<(NodeId, Option<NodeId>)> = p
                .targets
                .iter()
                .filter(|(t, _)| !answered.contains(t))
                .copied()
                .collect();
            let tried: BTreeSet<NodeId> = p.targets.iter().map(|(t, _)| *t).collect();
            let fresh: Vec<NodeId> = p
                .walk
                .iter()
                .copied()
                .filter(|n| !tried.contains(n))
                .collect();
            let owners: Vec<NodeId> = p.walk[..self.cfg.n.min(p.walk.len())].to_vec();
            let mut extra = Vec::new();
            for ((t, hint), next) in silent.iter().zip(fresh) {
                let stand_in_for = if owners.contains(t) { Some(*t) } else { *hint };
                let hint = if owners.contains(&next) {
                    None
                } else {
                    stand_in_for
                };
                extra.push((next, hint));
            }
            let again = p.session.is_some() && p.kind == Kind::Read && silent.is_empty();
            for (t, hint) in extra {
                self.ask(req, t, hint);
            }
            if again {
                // A causal read still waiting for a new enough version: a fresh round over
                // every reachable node of the walk (hints and anti-entropy may have brought it).
                if let Some(p) = self.pending.get_mut(&req) {
                    p.replies.clear();
                    p.targets.clear();
                }
                let walk: Vec<NodeId> = self.pending[&req].walk.clone();
                let me = self.cfg.me;
                for n in walk.into_iter().chain(std::iter::once(me)) {
                    let asked = self.pending[&req].targets.iter().any(|(t, _)| *t == n);
                    if !asked && (n == me || self.alive(n)) {
                        self.ask(req, n, None);
                    }
                }
            }
            self.progress(req);
        }
    }

    // ---- background work --------------------------------------------------------------

    fn gossip(&mut self) {
        self.heartbeat += 1;
        let me = self.cfg.me;
        self.view
            .insert(me.0, (self.incarnation, self.heartbeat, self.now));
        let peers: Vec<NodeId> = self
            .cfg
            .members
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| *id != me)
            .collect();
        for p in &peers {
            self.send(
                *p,
                Body::Ping {
                    incarnation: self.incarnation,
                },
            );
        }
        if !peers.is_empty() {
            let pick = peers[(self.random() % peers.len() as u64) as usize];
            let view = self
                .view
                .iter()
                .map(|(n, (inc, hb, _))| (*n, *inc, *hb))
                .collect();
            self.send(pick, Body::Gossip { view });
        }
    }

    fn detect(&mut self) {
        for (id, _) in self.cfg.members.clone() {
            if id == self.cfg.me {
                continue;
            }
            let heard = self.last_heard.get(&id).copied().unwrap_or(0);
            let alive = self.now.saturating_sub(heard) <= self.cfg.fd_timeout_ticks;
            let was = self.up.contains(&id);
            if alive && !was {
                self.up.insert(id);
                tracing::info!("{} is reachable again", self.name(id));
                if self.cfg.bugs.merkle_skip {
                    self.skipping = true;
                }
                // It may have missed writes, or taken some this node missed: compare now
                // rather than when the random pick of a later round falls on it.
                self.anti_entropy_with(id);
            } else if !alive && was {
                self.up.remove(&id);
                tracing::info!(
                    "{} is unreachable (nothing heard for {} ticks)",
                    self.name(id),
                    self.cfg.fd_timeout_ticks
                );
            }
        }
    }

    fn on_gossip(&mut self, view: Vec<(u64, u64, u64)>) {
        for (n, inc, hb) in view {
            let mine = self.view.get(&n).copied().unwrap_or((0, 0, 0));
            if (inc, hb) > (mine.0, mine.1) {
                if inc > mine.0 && mine.0 > 0 {
                    tracing::info!("gossip: node {n} restarted (incarnation {inc})");
                    if self.cfg.bugs.merkle_skip {
                        self.skipping = true;
                    }
                }
                self.view.insert(n, (inc, hb, self.now));
            }
        }
    }

    fn hand_off(&mut self) {
        let now = self.now;
        let retry = self.cfg.retry_ticks * 4;
        self.hints_in_flight
            .retain(|_, (_, _, at)| now < *at + retry);
        let busy: BTreeSet<(u64, String)> = self
            .hints_in_flight
            .values()
            .map(|(o, k, _)| (*o, k.clone()))
            .collect();
        let ready: Vec<(u64, String)> = self
            .hints
            .iter()
            .filter(|(o, _)| self.alive(NodeId(*o)))
            .filter(|h| !busy.contains(*h))
            .take(MAX_HINTS_IN_FLIGHT.saturating_sub(self.hints_in_flight.len()))
            .cloned()
            .collect();
        for (owner, key) in ready {
            let Some(obj) = self.store.get(&key).map(|e| e.obj.clone()) else {
                continue;
            };
            let req = self.next_req;
            self.next_req += 1;
            self.hints_in_flight.insert(req, (owner, key.clone(), now));
            self.send(
                NodeId(owner),
                Body::Put {
                    req,
                    key,
                    obj,
                    hint: None,
                    replace: false,
                },
            );
        }
    }

    /// The keys this node and `peer` both replicate, with their hashes and digests.
    fn shared(&mut self, peer: NodeId) -> Vec<(u64, String, u64)> {
        let me = self.cfg.me;
        let keys: Vec<(String, u64)> = self
            .store
            .iter()
            .map(|(k, e)| (k.clone(), e.digest))
            .collect();
        let mut out = Vec::new();
        for (k, digest) in keys {
            let owners = self.owners(&k);
            if owners.contains(&me) && owners.contains(&peer) {
                out.push((hash64(k.as_bytes()), k, digest));
            }
        }
        out
    }

    fn tree(&mut self, peer: NodeId) -> Tree {
        Tree::build(self.shared(peer).into_iter().map(|(h, _, d)| (h, d)))
    }

    fn send_ae(&mut self, to: NodeId, body: Body) {
        self.stats.ae_bytes += body_bytes(&body) as u64 + 16;
        self.send(to, body);
    }

    fn start_anti_entropy(&mut self) {
        let peers: Vec<NodeId> = self
            .up
            .iter()
            .copied()
            .filter(|p| *p != self.cfg.me)
            .collect();
        if peers.is_empty() {
            return;
        }
        let peer = peers[(self.random() % peers.len() as u64) as usize];
        self.anti_entropy_with(peer);
    }

    /// Starts a Merkle exchange with `peer` over the keys both replicate.
    fn anti_entropy_with(&mut self, peer: NodeId) {
        let shared = self.shared(peer);
        if shared.is_empty() {
            return;
        }
        self.stats.ae_sessions += 1;
        // What sending every shared object both ways would cost, for comparison.
        let full: usize = shared
            .iter()
            .filter_map(|(_, k, _)| self.store.get(k).map(|e| k.len() + object_bytes(&e.obj)))
            .sum();
        self.stats.ae_full_bytes += 2 * full as u64;
        let tree = Tree::build(shared.into_iter().map(|(h, _, d)| (h, d)));
        let session = self.random();
        self.send_ae(
            peer,
            Body::AeNodes {
                session,
                level: 0,
                nodes: vec![(0, tree.root())],
            },
        );
    }

    /// Whether the `merkle-skip` bug leaves node `index` of `level` out.
    fn skipped(&self, level: usize, index: usize) -> bool {
        if !self.skipping || level == 0 {
            return false;
        }
        let top = index / FANOUT.pow((level - 1) as u32);
        top < SKIPPED_SUBTREES
    }

    fn on_ae_nodes(&mut self, from: NodeId, session: u64, level: usize, nodes: Vec<(u32, u64)>) {
        if level > DEPTH {
            return;
        }
        let tree = self.tree(from);
        let differing: Vec<usize> = nodes
            .into_iter()
            .map(|(i, h)| (i as usize, h))
            .filter(|&(i, h)| i < FANOUT.pow(level as u32) && tree.hash(level, i) != h)
            .map(|(i, _)| i)
            .filter(|&i| !self.skipped(level, i))
            .collect();
        if differing.is_empty() {
            return;
        }
        if level < DEPTH {
            let nodes: Vec<(u32, u64)> = differing
                .iter()
                .flat_map(|&i| tree.children(level, i))
                .map(|(i, h)| (i as u32, h))
                .collect();
            self.send_ae(
                from,
                Body::AeNodes {
                    session,
                    level: (level + 1) as u8,
                    nodes,
                },
            );
        } else {
            let leaves: Vec<u32> = differing.iter().map(|&i| i as u32).collect();
            let entries = self.entries_in(from, &leaves);
            self.send_ae(
                from,
                Body::AeLeaves {
                    session,
                    leaves,
                    entries,
                    reply: true,
                },
            );
        }
    }

    fn entries_in(&mut self, peer: NodeId, leaves: &[u32]) -> Vec<(String, Object)> {
        let wanted: BTreeSet<usize> = leaves.iter().map(|&l| l as usize).collect();
        self.shared(peer)
            .into_iter()
            .filter(|(h, _, _)| wanted.contains(&merkle::leaf_of(*h)))
            .filter_map(|(_, k, _)| self.store.get(&k).map(|e| (k.clone(), e.obj.clone())))
            .collect()
    }

    fn on_ae_leaves(
        &mut self,
        from: NodeId,
        session: u64,
        leaves: Vec<u32>,
        entries: Vec<(String, Object)>,
        reply: bool,
    ) {
        let me = self.cfg.me;
        for (k, obj) in &entries {
            let owners = self.owners(k);
            if owners.contains(&me) && owners.contains(&from) && self.merge_in(k, obj, false) {
                self.stats.ae_repaired += 1;
            }
        }
        if reply {
            // Only what the sender lacks: keys it did not send, or whose merge here differs
            // from the copy it sent.
            let sent: HashMap<&String, u64> =
                entries.iter().map(|(k, o)| (k, o.digest())).collect();
            let entries: Vec<(String, Object)> = self
                .entries_in(from, &leaves)
                .into_iter()
                .filter(|(k, o)| sent.get(k) != Some(&o.digest()))
                .collect();
            self.send_ae(
                from,
                Body::AeLeaves {
                    session,
                    leaves,
                    entries,
                    reply: false,
                },
            );
        }
    }
}

/// One stored key's share of [`Replica`]'s store digest.
fn entry_hash(key: &str, digest: u64) -> u64 {
    crate::ring::mix(hash64(key.as_bytes()) ^ digest.rotate_left(29))
}

/// The merge of every copy in `replies`; `None` when nobody had the key.
fn merge_all(replies: &[(NodeId, Option<Object>)], rules: MergeRules) -> Option<Object> {
    let mut out: Option<Object> = None;
    for o in replies.iter().filter_map(|(_, o)| o.as_ref()) {
        match &mut out {
            None => out = Some(o.clone()),
            Some(m) => m.merge(o, rules),
        }
    }
    out
}

/// The copy that has seen the least (the `repair-older` bug's choice).
fn oldest(replies: &[(NodeId, Option<Object>)]) -> Option<Object> {
    replies
        .iter()
        .filter_map(|(_, o)| o.as_ref())
        .min_by_key(|o| match o {
            Object::Reg(r) => r.vv.0.values().sum::<u64>(),
            Object::Counter(c) => c.value().unsigned_abs(),
            Object::Set(s) => s.entries.len() as u64,
        })
        .cloned()
}

fn read_response(obj: &Object, key: &str) -> OpResponse {
    let (value, siblings, context) = obj.read();
    let mut resp = OpResponse::ok_value(value);
    resp.siblings = siblings;
    resp.context = match obj {
        Object::Reg(r) => Some(Context::of(r).keyed(key).encode()),
        _ => context,
    };
    resp
}

/// Whether `obj` is at least as new as `need` (what a session has seen of its key). Counters
/// and sets carry no versions: always.
fn caught_up(obj: Option<&Object>, need: &Seen) -> bool {
    match obj {
        Some(Object::Reg(r)) => need.within(&r.vv),
        Some(_) => true,
        None => need.vv.0.is_empty() && need.dots.is_empty(),
    }
}

/// What a session has seen after reading or writing `obj` under `key`: what it had, the
/// object's version, and the dependencies of every version it holds.
fn seen(deps: &Deps, key: &str, obj: &Option<Object>) -> Deps {
    let mut out = deps.clone();
    if let Some(Object::Reg(r)) = obj {
        out.see(key, &r.vv);
        for s in &r.sibs {
            out.join(&s.deps);
        }
    }
    out
}

impl Core for Replica {
    type Message = Message;
    type Persist = Persist;

    fn set_wall_ms(&mut self, ms: i64) {
        self.wall_ms = ms;
    }

    fn tick(&mut self) {
        self.now += 1;
        let now = self.now;
        if now.is_multiple_of(self.cfg.gossip_ticks.max(1)) {
            self.gossip();
        }
        self.detect();
        if now.is_multiple_of(self.cfg.hint_ticks.max(1)) {
            self.hand_off();
        }
        if now.is_multiple_of(self.cfg.ae_ticks.max(1)) {
            self.start_anti_entropy();
        }
        self.on_timeouts();
    }

    fn step(&mut self, msg: Message) {
        let from = msg.from;
        self.last_heard.insert(from, self.now);
        match msg.body {
            Body::Put {
                req,
                key,
                obj,
                hint,
                replace,
            } => {
                self.merge_in(&key, &obj, replace);
                if let Some(h) = hint {
                    self.add_hint(NodeId(h), &key);
                }
                if req != 0 {
                    self.send(from, Body::PutAck { req });
                }
            }
            Body::PutAck { req } => {
                if let Some((owner, key, _)) = self.hints_in_flight.remove(&req) {
                    if owner == from.0 && self.hints.remove(&(owner, key.clone())) {
                        self.stats.hints_delivered += 1;
                        self.hint_changes.push(HintChange::Done(owner, key));
                    }
                    return;
                }
                if let Some(p) = self.pending.get_mut(&req) {
                    if p.targets.iter().any(|(t, _)| *t == from) {
                        p.acks.insert(from);
                    }
                    self.progress(req);
                }
            }
            Body::Get { req, key } => {
                let obj = self.store.get(&key).map(|e| e.obj.clone());
                self.send(from, Body::GetReply { req, obj });
            }
            Body::GetReply { req, obj } => {
                if let Some(p) = self.pending.get_mut(&req) {
                    let asked = p.targets.iter().any(|(t, _)| *t == from);
                    if asked && !p.replies.iter().any(|(n, _)| *n == from) {
                        p.replies.push((from, obj));
                    }
                    self.progress(req);
                }
            }
            Body::Ping { incarnation } => {
                let hb = self.view.get(&from.0).map_or(0, |v| v.1);
                self.on_gossip(vec![(from.0, incarnation, hb)]);
            }
            Body::Gossip { view } => self.on_gossip(view),
            Body::AeNodes {
                session,
                level,
                nodes,
            } => self.on_ae_nodes(from, session, level as usize, nodes),
            Body::AeLeaves {
                session,
                leaves,
                entries,
                reply,
            } => self.on_ae_leaves(from, session, leaves, entries, reply),
        }
    }

    fn submit(&mut self, client: ClientId, op: OpRequest) -> Result<(), NotLeader> {
        let Some(key) = op.key.clone() else {
            self.answer(client, OpResponse::fail("key: required"));
            return Ok(());
        };
        match op.f {
            OpKind::Read if op.local => self.local_read(client, &key),
            OpKind::Read | OpKind::Write | OpKind::Add | OpKind::Incr => {
                // What the client's context says it has seen, of this key or of every key.
                let known = match client_context(op.context.as_deref(), &key) {
                    Ok((_, deps)) => deps,
                    Err(e) => {
                        self.answer(client, OpResponse::fail(format!("context: {e}")));
                        return Ok(());
                    }
                };
                let session = (self.cfg.session == Session::Causal).then(|| known.clone());
                if op.f == OpKind::Read {
                    self.start(Some(client), Kind::Read, &key, None, session, known);
                    return Ok(());
                }
                if let Some(deps) = &session {
                    // A causal write supersedes what its session has seen, which this copy
                    // must hold first (its version vector cannot say "that one write, not
                    // the ones before it"): a read of the key catches it up, then it writes.
                    let have = match self.store.get(&key) {
                        Some(Entry {
                            obj: Object::Reg(r),
                            ..
                        }) => deps.of(&key).within(&r.vv),
                        _ => caught_up(None, &deps.of(&key)),
                    };
                    if !have {
                        let req = self.next_req;
                        self.start(Some(client), Kind::Read, &key, None, session, known);
                        if let Some(p) = self.pending.get_mut(&req) {
                            p.then_write = Some(op);
                            // It may have caught up at once (from this node's own reply).
                            self.progress(req);
                        }
                        return Ok(());
                    }
                }
                self.write(client, &op, &key, session, known);
            }
            f => self.answer(
                client,
                OpResponse::fail(format!(
                    "unsupported: {} needs agreement among replicas, which an eventually \
                     consistent store does not offer (read, write, add and incr are served)",
                    f.as_str()
                )),
            ),
        }
        Ok(())
    }

    fn has_ready(&self) -> bool {
        !self.dirty.is_empty()
            || !self.hint_changes.is_empty()
            || self.boot.is_some()
            || !self.messages.is_empty()
            || !self.responses.is_empty()
    }

    fn ready(&mut self) -> Ready<Message, Persist> {
        let objects = std::mem::take(&mut self.dirty)
            .into_iter()
            .filter_map(|k| self.store.get(&k).map(|e| (k, e.obj.clone())))
            .collect();
        let mut hints = std::mem::take(&mut self.hint_changes);
        if self.cfg.bugs.volatile_hints {
            hints.clear();
        }
        Ready {
            persist: Persist {
                objects,
                hints,
                boot: self.boot.take(),
            },
            messages: std::mem::take(&mut self.messages),
            responses: std::mem::take(&mut self.responses),
        }
    }

    fn advance(&mut self) {}

    fn fatal(&self) -> Option<&str> {
        None
    }

    fn status(&self) -> Status {
        let s = self.stats;
        Status {
            role: "replica",
            applied: self.store.len() as u64,
            extra: vec![
                ("incarnation", self.incarnation),
                ("keys", self.store.len() as u64),
                ("store_digest", self.store_digest),
                ("store_bytes", self.store_bytes),
                (
                    "peers_up",
                    self.up.iter().filter(|p| **p != self.cfg.me).count() as u64,
                ),
                ("hints", self.hints.len() as u64),
                ("hints_delivered", s.hints_delivered),
                ("read_repairs", s.read_repairs),
                ("ae_sessions", s.ae_sessions),
                ("ae_bytes", s.ae_bytes),
                ("ae_full_bytes", s.ae_full_bytes),
                ("ae_repaired", s.ae_repaired),
            ],
            ..Status::default()
        }
    }
}
