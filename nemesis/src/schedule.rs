//! The fault schedule of a run: quiet periods and faults taking turns, drawn from the seed, so
//! the same `--seed` gives the same schedule. Targets that exist only at run time (the current
//! leader) are named here and resolved when the fault starts; the history records what was hit.
//!
//! What a user can ask for is typed: a [`NemesisKind`], maybe with one of its shapes
//! ([`PartitionShape`], [`KillShape`], [`ClockShape`]), each with `FromStr` and `Display`, so
//! a shape is known by its variant and never by its place in a list or its description.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use history::rng::SplitMix64;
use serde::{Serialize, Serializer};

use crate::status::StatusField;

/// The nemeses a user can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NemesisKind {
    Partition,
    Pause,
    Kill,
    Clock,
    Loss,
    Slow,
    Delay,
    /// Disk faults through the harness's FUSE filesystem: power loss, torn writes, failing
    /// or slow fsync. Not part of `all`: it needs FUSE, and is asked for by name.
    Disk,
}

impl NemesisKind {
    /// What `--nemesis all` means: every kind that needs nothing but the sandbox.
    pub const ALL: [NemesisKind; 7] = [
        NemesisKind::Partition,
        NemesisKind::Pause,
        NemesisKind::Kill,
        NemesisKind::Clock,
        NemesisKind::Loss,
        NemesisKind::Slow,
        NemesisKind::Delay,
    ];

    /// Every kind, by name: [`NemesisKind::ALL`] and `disk`.
    pub const KNOWN: [NemesisKind; 8] = [
        NemesisKind::Partition,
        NemesisKind::Pause,
        NemesisKind::Kill,
        NemesisKind::Clock,
        NemesisKind::Loss,
        NemesisKind::Slow,
        NemesisKind::Delay,
        NemesisKind::Disk,
    ];

    /// Faults of the network, as opposed to faults of processes and clocks.
    fn is_network(self) -> bool {
        matches!(
            self,
            NemesisKind::Partition | NemesisKind::Loss | NemesisKind::Slow | NemesisKind::Delay
        )
    }

    fn is_process(self) -> bool {
        matches!(self, NemesisKind::Pause | NemesisKind::Kill)
    }

    pub fn name(self) -> &'static str {
        match self {
            NemesisKind::Partition => "partition",
            NemesisKind::Pause => "pause",
            NemesisKind::Kill => "kill",
            NemesisKind::Clock => "clock",
            NemesisKind::Loss => "loss",
            NemesisKind::Slow => "slow",
            NemesisKind::Delay => "delay",
            NemesisKind::Disk => "disk",
        }
    }

    /// The shapes `KIND:SHAPE` may name for this kind, as `--nemesis` spells them.
    fn shape_names(self) -> Vec<&'static str> {
        match self {
            NemesisKind::Partition => PartitionShape::ALL.iter().map(|s| s.name()).collect(),
            NemesisKind::Kill => KillShape::ALL.iter().map(|s| s.name()).collect(),
            NemesisKind::Clock => ClockShape::ALL.iter().map(|s| s.name()).collect(),
            NemesisKind::Disk => DiskShape::ALL.iter().map(|s| s.name()).collect(),
            _ => Vec::new(),
        }
    }

    /// Parses `--nemesis`: a comma-separated list, `all`, or `none`.
    pub fn parse_list(s: &str) -> Result<Vec<NemesisKind>, String> {
        let s = s.trim();
        if s == "all" {
            return Ok(Self::ALL.to_vec());
        }
        if s == "none" || s.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = BTreeSet::new();
        for part in s.split(',').map(str::trim) {
            out.insert(part.parse::<NemesisKind>()?);
        }
        Ok(out.into_iter().collect())
    }
}

impl fmt::Display for NemesisKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for NemesisKind {
    type Err = String;

    /// The kind called `name`; an unknown name is answered with the valid ones.
    fn from_str(name: &str) -> Result<NemesisKind, String> {
        Self::KNOWN
            .into_iter()
            .find(|k| k.name() == name)
            .ok_or_else(|| {
                format!(
                    "unknown nemesis '{name}'; the nemeses are: {}, or all (every one but \
                     disk), or none",
                    Self::KNOWN.map(NemesisKind::name).join(", ")
                )
            })
    }
}

/// Declares a shape enum with its `--nemesis` names, `FromStr` and `Display`.
macro_rules! shapes {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The shape as `--nemesis KIND:SHAPE` spells it.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl FromStr for $name {
            type Err = ();

            fn from_str(s: &str) -> Result<$name, ()> {
                match s {
                    $($text => Ok($name::$variant),)*
                    _ => Err(()),
                }
            }
        }
    };
}

shapes! {
    /// The shapes of `partition`.
    PartitionShape {
        /// Isolate each new leader as soon as it leads ([`Fault::LeaderChurn`]).
        LeaderChurn = "leader-churn",
        /// A majority and a minority.
        Halves = "halves",
        IsolateOne = "isolate-one",
        IsolateLeader = "isolate-leader",
        /// Jepsen's majorities ring: every node sees a majority, no two the same one.
        MajoritiesRing = "majorities-ring",
        /// Two sides that only one node connects.
        Bridge = "bridge",
        /// One node stops hearing everyone else, who still hear it.
        OneWay = "one-way",
        /// The Raft paper's Figure 8, staged ([`Fault::Figure8`]).
        Figure8 = "figure-8",
    }
}

shapes! {
    /// The shapes of `kill`.
    KillShape {
        /// Kill the target for the whole window.
        Down = "down",
        /// Kill the leader (as `/health` names it when the window starts) for the whole
        /// window: a failover per window, for measuring how long one takes.
        Leader = "leader",
        CrashLoop = "crash-loop",
        ElectionStorm = "election-storm",
        /// A vote given twice, staged ([`Fault::AfterVote`]).
        AfterVote = "after-vote",
        /// A Paxos promise forgotten across a restart, staged ([`Fault::AfterPromise`]).
        AfterPromise = "after-promise",
    }
}

shapes! {
    /// The shapes of `disk` (the harness's FUSE filesystem over each node's data directory).
    DiskShape {
        /// A power loss: the node is killed and every write, create, rename and unlink it did
        /// not make durable (fsync, fdatasync, fsync of the directory) is gone; then it
        /// restarts.
        LoseUnsynced = "lose-unsynced",
        /// The same, but the last unsynced write of each file survives in part (a prefix
        /// ending at a sector boundary).
        Torn = "torn",
        /// fsync answers EIO for the whole window.
        FsyncError = "fsync-error",
        /// Every fsync takes 10 to 200 ms for the whole window.
        Slow = "slow",
    }
}

shapes! {
    /// The shapes of `clock`.
    ClockShape {
        Bump = "bump",
        Strobe = "strobe",
    }
}

impl PartitionShape {
    /// The fixed cuts, in the order the schedule draws them from.
    const DRAWN: [PartitionShape; 6] = [
        PartitionShape::Halves,
        PartitionShape::IsolateOne,
        PartitionShape::IsolateLeader,
        PartitionShape::MajoritiesRing,
        PartitionShape::Bridge,
        PartitionShape::OneWay,
    ];

    /// How run.json's schedule has always described a fixed cut.
    pub fn phrase(self) -> &'static str {
        match self {
            PartitionShape::IsolateOne => "isolate one node",
            PartitionShape::IsolateLeader => "isolate the leader",
            PartitionShape::MajoritiesRing => "majorities ring",
            other => other.name(),
        }
    }
}

impl Serialize for PartitionShape {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.phrase())
    }
}

/// A scenario that is set up step by step while watching the nodes' status
/// ([`crate::staged`]), instead of drawn at random.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Staged {
    /// `kill:after-vote`.
    AfterVote,
    /// `partition:figure-8`.
    Figure8,
    /// `kill:after-promise`.
    AfterPromise,
}

impl Staged {
    /// The status fields the scenario watches, without which it cannot be staged (shared/
    /// DESIGN.md section 3: faults aimed at voters are refused for a system whose status lacks
    /// what they need).
    pub fn needs(self) -> &'static [StatusField] {
        match self {
            Staged::AfterVote => &[StatusField::Role, StatusField::Term, StatusField::VotedFor],
            Staged::Figure8 | Staged::AfterPromise => {
                &[StatusField::Role, StatusField::Term, StatusField::Commit]
            }
        }
    }
}

impl fmt::Display for Staged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Staged::AfterVote => write!(f, "{}", Part::Kill(Some(KillShape::AfterVote))),
            Staged::Figure8 => write!(f, "{}", Part::Partition(Some(PartitionShape::Figure8))),
            Staged::AfterPromise => write!(f, "{}", Part::Kill(Some(KillShape::AfterPromise))),
        }
    }
}

/// One fault a user asked for: a kind, and maybe one of its shapes (`partition:bridge`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Part {
    Partition(Option<PartitionShape>),
    Pause,
    Kill(Option<KillShape>),
    Clock(Option<ClockShape>),
    Loss,
    Slow,
    Delay,
    Disk(Option<DiskShape>),
}

impl Part {
    fn plain(kind: NemesisKind) -> Part {
        match kind {
            NemesisKind::Partition => Part::Partition(None),
            NemesisKind::Pause => Part::Pause,
            NemesisKind::Kill => Part::Kill(None),
            NemesisKind::Clock => Part::Clock(None),
            NemesisKind::Loss => Part::Loss,
            NemesisKind::Slow => Part::Slow,
            NemesisKind::Delay => Part::Delay,
            NemesisKind::Disk => Part::Disk(None),
        }
    }

    pub fn kind(self) -> NemesisKind {
        match self {
            Part::Partition(_) => NemesisKind::Partition,
            Part::Pause => NemesisKind::Pause,
            Part::Kill(_) => NemesisKind::Kill,
            Part::Clock(_) => NemesisKind::Clock,
            Part::Loss => NemesisKind::Loss,
            Part::Slow => NemesisKind::Slow,
            Part::Delay => NemesisKind::Delay,
            Part::Disk(_) => NemesisKind::Disk,
        }
    }

    /// The shape it names, as `--nemesis` spells it.
    fn shape_name(self) -> Option<&'static str> {
        match self {
            Part::Partition(s) => s.map(PartitionShape::name),
            Part::Kill(s) => s.map(KillShape::name),
            Part::Clock(s) => s.map(ClockShape::name),
            Part::Disk(s) => s.map(DiskShape::name),
            _ => None,
        }
    }

    /// The staged scenario this part names, if it names one.
    pub fn staged(self) -> Option<Staged> {
        match self {
            Part::Kill(Some(KillShape::AfterVote)) => Some(Staged::AfterVote),
            Part::Kill(Some(KillShape::AfterPromise)) => Some(Staged::AfterPromise),
            Part::Partition(Some(PartitionShape::Figure8)) => Some(Staged::Figure8),
            _ => None,
        }
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.shape_name() {
            Some(s) => write!(f, "{}:{s}", self.kind()),
            None => write!(f, "{}", self.kind()),
        }
    }
}

impl FromStr for Part {
    type Err = String;

    /// `KIND` or `KIND:SHAPE`; a mistake is answered with the valid names.
    fn from_str(part: &str) -> Result<Part, String> {
        let (name, shape) = match part.split_once(':') {
            Some((n, s)) => (n.trim(), Some(s.trim())),
            None => (part, None),
        };
        let kind: NemesisKind = name.parse()?;
        let Some(shape) = shape else {
            return Ok(Part::plain(kind));
        };
        let parsed = match kind {
            NemesisKind::Partition => shape.parse().ok().map(|s| Part::Partition(Some(s))),
            NemesisKind::Kill => shape.parse().ok().map(|s| Part::Kill(Some(s))),
            NemesisKind::Clock => shape.parse().ok().map(|s| Part::Clock(Some(s))),
            NemesisKind::Disk => shape.parse().ok().map(|s| Part::Disk(Some(s))),
            _ => None,
        };
        parsed.ok_or_else(|| {
            let shapes = kind.shape_names();
            if shapes.is_empty() {
                format!("'{part}': {name} has no shapes to choose from")
            } else {
                format!(
                    "'{part}': unknown shape of {name}; its shapes are: {}",
                    shapes.join(", ")
                )
            }
        })
    }
}

/// What `--nemesis` asks for: entries that take turns, one per fault window; an entry of
/// several parts joined by `+` runs them all at once.
///
/// `partition,kill` alternates partitions and kills (and, since it lists a network fault and a
/// process fault, makes one window in three both at once); `partition:majorities-ring+delay+
/// kill:election-storm` runs those three together in every window.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NemesisPlan {
    pub entries: Vec<Vec<Part>>,
}

impl NemesisPlan {
    pub fn parse(s: &str) -> Result<NemesisPlan, String> {
        let s = s.trim();
        if s == "all" {
            return Ok(NemesisPlan {
                entries: NemesisKind::ALL.map(|k| vec![Part::plain(k)]).to_vec(),
            });
        }
        if s == "none" || s.is_empty() {
            return Ok(NemesisPlan::default());
        }
        let mut entries: Vec<Vec<Part>> = Vec::new();
        for entry in s.split(',').map(str::trim) {
            let mut parts: Vec<Part> = Vec::new();
            for text in entry.split('+').map(str::trim) {
                let part: Part = text.parse()?;
                let kind = part.kind();
                if parts.iter().any(|p| p.kind() == kind) {
                    return Err(format!(
                        "'{entry}' names {kind} twice; join different faults"
                    ));
                }
                if kind.is_process() && parts.iter().any(|p| p.kind().is_process()) {
                    return Err(format!(
                        "'{entry}': pause and kill cannot run at once (a killed node cannot be \
                         resumed); list them with a comma to take turns"
                    ));
                }
                parts.push(part);
            }
            if let Some(staged) = parts.iter().find(|p| p.staged().is_some()) {
                if parts.iter().any(|p| p.kind().is_network() && p != staged) {
                    return Err(format!(
                        "'{entry}': {staged} makes its own partitions and delay, so it cannot \
                         run with another network fault; list them with a comma to take turns"
                    ));
                }
            }
            if !entries.contains(&parts) {
                entries.push(parts);
            }
        }
        let mut plan = NemesisPlan { entries };
        // A plain list reads the same in any order: keep the kinds' order, as before.
        if plan.is_plain() {
            plan.entries.sort_by_key(|e| e[0].kind());
        }
        Ok(plan)
    }

    /// Every kind the plan uses, once, in order.
    pub fn kinds(&self) -> Vec<NemesisKind> {
        let set: BTreeSet<NemesisKind> = self.entries.iter().flatten().map(|p| p.kind()).collect();
        set.into_iter().collect()
    }

    /// Every staged scenario the plan names, once.
    pub fn staged(&self) -> Vec<Staged> {
        let mut out: Vec<Staged> = Vec::new();
        for s in self.entries.iter().flatten().filter_map(|p| p.staged()) {
            if !out.contains(&s) {
                out.push(s);
            }
        }
        out
    }

    /// Only single kinds without shapes: the schedule may then pair them itself.
    fn is_plain(&self) -> bool {
        self.entries
            .iter()
            .all(|e| e.len() == 1 && e[0] == Part::plain(e[0].kind()))
    }

    /// The plan as `--nemesis` would take it back.
    pub fn text(&self) -> String {
        if self.entries.is_empty() {
            return "none".into();
        }
        self.entries
            .iter()
            .map(|e| e.iter().map(Part::to_string).collect::<Vec<_>>().join("+"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A short name for the run folder: `all`, `none`, or the plan with `,` as `+`-free joins.
    pub fn label(&self) -> String {
        if self.entries.is_empty() {
            return "none".into();
        }
        if self.is_plain() && self.entries.len() == NemesisKind::ALL.len() {
            return "all".into();
        }
        if self.is_plain() {
            return self
                .kinds()
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join("+");
        }
        self.text().replace(':', "-").replace(',', "_")
    }
}

/// Who a process fault hits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// The node that `/health` names leader when the fault starts (a random one if none does).
    Leader,
    Nodes(Vec<String>),
}

/// One fault, concrete except for `Target::Leader`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "fault", rename_all = "kebab-case")]
pub enum Fault {
    /// `grudge[x]`: the nodes x stops hearing from. `leader`: isolate the leader instead.
    Partition {
        shape: PartitionShape,
        grudge: BTreeMap<String, BTreeSet<String>>,
        isolate_leader: bool,
    },
    /// Isolates the leader, holds the cut for a random time up to `max_hold_ms`, then lets the
    /// isolated node back and cuts off whoever leads next, as soon as it leads. Leaders then
    /// live from a few milliseconds (their entries reach nobody) to a few hundred (they reach
    /// some followers), so logs of several terms are left half replicated: the situation of
    /// the Raft paper's Figure 8. `seed` draws the hold times.
    LeaderChurn {
        max_hold_ms: u64,
        seed: u64,
    },
    Pause {
        target: Target,
    },
    Kill {
        target: Target,
    },
    /// Kills one node at a time, over and over: each stays down for a random time up to
    /// `max_down_ms` and is restarted on its data, and the next is picked after up to
    /// `max_up_ms`. Restarts then land in the middle of elections and of replication, where a
    /// node that did not make a promise durable before keeping it (its vote, a log entry it
    /// acknowledged) is found out. `seed` draws the nodes and the times.
    CrashLoop {
        max_down_ms: u64,
        max_up_ms: u64,
        seed: u64,
    },
    /// An election storm. Watches every node's role and term (through the system's own status
    /// call, every few milliseconds). Each node that moves to a new term while neither leading
    /// nor campaigning, a voter, is frozen (SIGSTOP) at once for up to `max_hold_ms`, so that
    /// what reaches it next (the winner's first entries, a rival candidate's request) waits
    /// unread, then killed and restarted on its data after up to `max_down_ms`. When no
    /// election has happened for `leader_every_ms`, the leader is killed to start one. A node
    /// that forgets its vote across the restart can then give it to a rival, still asking, of
    /// the same term; a delay on the network widens these moments, and a majorities ring gives
    /// two candidates majorities that share a node and cannot hear each other.
    ElectionStorm {
        leader_every_ms: u64,
        max_hold_ms: u64,
        max_down_ms: u64,
        seed: u64,
    },
    /// Stages the Raft paper's Figure 8, over and over (`partition:figure-8`). Each attempt:
    /// isolate the leader A, with as many followers as leave the others a bare majority (none
    /// of 3 nodes, one of 5); A goes on appending clients' writes in its term that only its
    /// side holds. Delay every message by `delay_ms`. The moment the others elect B, isolate B
    /// instead (the delay still holds B's first entry back, so only B has an entry of its
    /// term) and let A's side back. A node of A's side, whose log is the longest, wins a later
    /// term and sends the old entries on. The moment its commit index moves, isolate it: a
    /// leader that commits old-term entries by counting replicas has just acknowledged writes
    /// that its own term's first entry does not yet protect. B, whose last entry has a higher
    /// term than anything the others hold, wins and overwrites them. Then `hold_ms` of that
    /// before everything heals. Needs one entry per message (raft-node `--max-batch 1
    /// --max-inflight 1`) and an `--op-timeout` of a few seconds, so that A's clients are
    /// still waiting when their writes commit, and a system whose status call gives the
    /// commit index; brings its own delay.
    Figure8 {
        delay_ms: u64,
        hold_ms: u64,
        seed: u64,
    },
    /// Stages a vote given twice, over and over, instead of waiting for one (`kill:after-vote`).
    /// Each attempt: cut the leader's side of the cluster from the other side, with one
    /// follower V (the one with the shortest log) the only bridge; kill V, so that each side
    /// campaigns and neither can win; delay every message by `delay_ms`; restart V, which
    /// grants both sides' pre-votes. The moment V says it voted in the new term (`/health`
    /// `voted_for`), make it deaf to the rival's side, so that the rival's request goes unread;
    /// the moment the winner leads, freeze V (the delay still holds the winner's first entries
    /// back), make it deaf to the winner's side instead, lift the delay, kill V and restart it.
    /// A node that forgot its vote across the restart now votes for the rival too, in the same
    /// term. V then hears both sides for `hold_ms`, so that two leaders of one term each commit
    /// through it, before everything heals. Cuts refuse TCP with a reset rather than dropping
    /// it, so no node waits out a request that can never be answered. Needs a system whose
    /// status call says whom a node voted for; brings its own partitions and delay.
    AfterVote {
        delay_ms: u64,
        hold_ms: u64,
        seed: u64,
    },
    /// Stages a promise forgotten across a restart, over and over (`kill:after-promise`), for
    /// Multi-Paxos. Each attempt: cut the leader L from everyone and freeze it; once the
    /// others elect N at a higher
    /// ballot (every acceptor of N's majority promised it) and N has chosen a few slots, cut N
    /// from everyone, kill and restart every node but L and N, and thaw L, for `hold_ms`. L
    /// still leads at its old ballot in its own eyes and sends Accepts for the slots it would
    /// use next, the slots N just chose; acceptors that kept their promise refuse them and L
    /// steps down, acceptors that forgot it let L choose a second value in those slots. Then
    /// everything heals. Needs a system whose status call gives role, term and commit.
    AfterPromise {
        hold_ms: u64,
        seed: u64,
    },
    /// Several faults at once (`a+b` in `--nemesis`, or a network fault and a process fault
    /// paired by the schedule), started in this order and healed in the reverse order. Many
    /// bugs need more than one: a restart whose window is widened by messages that a lossy,
    /// slow or cut network holds back.
    Together {
        faults: Vec<Fault>,
    },
    /// Moves the target's wall clock by `offset_ms` for the whole fault.
    ClockBump {
        target: Target,
        offset_ms: i64,
    },
    /// Flips the target's clock between 0 and `offset_ms` every `period_ms`.
    ClockStrobe {
        target: Target,
        offset_ms: i64,
        period_ms: u64,
    },
    Loss {
        percent: u8,
    },
    /// Every link limited to `kbit` kbit/s each way: a congested network.
    Slow {
        kbit: u32,
    },
    /// Every message between nodes arrives `mean_ms ± jitter_ms` late (netem's `delay`), and
    /// jitter reorders them. `seed` draws each packet's delay.
    Delay {
        mean_ms: u64,
        jitter_ms: u64,
        seed: u64,
    },
    /// Power losses, over and over for the whole window: every `gap_ms` or so (drawn up to
    /// twice that), the nodes drawn from `seed` (all of them, a majority or one) are killed,
    /// everything they had not made durable is discarded (`torn`: except a prefix of each
    /// file's last unsynced write), and they are restarted after up to `max_down_ms`.
    PowerLoss {
        torn: bool,
        gap_ms: u64,
        max_down_ms: u64,
        seed: u64,
    },
    /// fsync, fdatasync and fsync of a directory answer EIO on the target for the whole
    /// window (and make nothing durable).
    FsyncError {
        target: Target,
    },
    /// Every fsync on the target takes `min_ms` to `max_ms` (drawn from `seed`).
    SlowFsync {
        target: Target,
        min_ms: u64,
        max_ms: u64,
        seed: u64,
    },
}

impl Fault {
    /// A short description for the progress line and the summary.
    pub fn describe(&self) -> String {
        match self {
            Fault::Partition { shape, .. } => format!("partition ({})", shape.phrase()),
            Fault::LeaderChurn { max_hold_ms, .. } => {
                format!("partition (isolate each new leader, holding up to {max_hold_ms} ms)")
            }
            Fault::Pause { target } => format!("pause {}", target_name(target)),
            Fault::Kill { target } => format!("kill {}", target_name(target)),
            Fault::CrashLoop { max_down_ms, .. } => {
                format!("crash loop (kill a node, restart it within {max_down_ms} ms, again)")
            }
            Fault::ElectionStorm {
                leader_every_ms,
                max_down_ms,
                ..
            } => format!(
                "election storm (kill the leader after {leader_every_ms} ms without an election \
                 and each voter as it votes; restart within {max_down_ms} ms)"
            ),
            Fault::Figure8 { hold_ms, .. } => format!(
                "figure 8, staged (isolate the leader, then each new leader, and the old one \
                 again once it commits; the overwriting leader kept for {hold_ms} ms)"
            ),
            Fault::AfterPromise { hold_ms, .. } => format!(
                "promise forgotten, staged (freeze the leader, let a new one be elected, restart \
                 its acceptors and thaw the old one for {hold_ms} ms)"
            ),
            Fault::AfterVote { hold_ms, .. } => format!(
                "vote given twice, staged (kill a voter right after its vote, restart it for the \
                 rival; two leaders for {hold_ms} ms)"
            ),
            Fault::Together { faults } => faults
                .iter()
                .map(Fault::describe)
                .collect::<Vec<_>>()
                .join(" + "),
            Fault::ClockBump { target, offset_ms } => {
                format!("clock {} {:+} ms", target_name(target), offset_ms)
            }
            Fault::ClockStrobe {
                target, offset_ms, ..
            } => format!("clock strobe {} ±{} ms", target_name(target), offset_ms),
            Fault::Loss { percent } => format!("loss {percent}%"),
            Fault::Slow { kbit } => format!("slow network, {kbit} kbit/s per link"),
            Fault::Delay {
                mean_ms, jitter_ms, ..
            } => format!("delay {mean_ms} ± {jitter_ms} ms between nodes"),
            Fault::PowerLoss { torn, gap_ms, .. } => format!(
                "power losses about every {gap_ms} ms (unsynced writes {})",
                if *torn {
                    "lost, the last one torn"
                } else {
                    "lost"
                }
            ),
            Fault::FsyncError { target } => format!("fsync fails (EIO) on {}", target_name(target)),
            Fault::SlowFsync {
                target,
                min_ms,
                max_ms,
                ..
            } => format!(
                "fsync takes {min_ms}-{max_ms} ms on {}",
                target_name(target)
            ),
        }
    }
}

fn target_name(t: &Target) -> String {
    match t {
        Target::Leader => "the leader".into(),
        Target::Nodes(n) => n.join(","),
    }
}

/// A fault and when it starts and ends, in milliseconds since the workload began.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    pub start_ms: u64,
    pub end_ms: u64,
    #[serde(flatten)]
    pub fault: Fault,
}

#[derive(Clone, Debug, Serialize)]
pub struct Schedule {
    pub interval_ms: u64,
    pub steps: Vec<Step>,
    /// Every fault is healed by then; the workload goes on quietly until `end_ms`.
    pub healed_by_ms: u64,
    pub end_ms: u64,
}

/// The schedule must not depend on anything but the seed.
struct Rng(SplitMix64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0.below(n.max(1))
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        self.0.shuffle(v)
    }
}

/// Cuts every link between `a` and `b`, both ways.
pub fn cut_between(grudge: &mut BTreeMap<String, BTreeSet<String>>, a: &[String], b: &[String]) {
    for x in a {
        for y in b {
            grudge.entry(x.clone()).or_default().insert(y.clone());
            grudge.entry(y.clone()).or_default().insert(x.clone());
        }
    }
}

fn partition(rng: &mut Rng, nodes: &[String], shape: Option<PartitionShape>) -> Fault {
    let n = nodes.len();
    let mut shuffled = nodes.to_vec();
    rng.shuffle(&mut shuffled);
    let mut grudge = BTreeMap::new();
    let shape = match shape {
        Some(s) => s,
        // One in three is leader churn; the rest are spread over the fixed shapes.
        None if n >= 3 && rng.below(3) == 0 => PartitionShape::LeaderChurn,
        None => PartitionShape::DRAWN[rng.below(if n >= 3 { 6 } else { 2 }) as usize],
    };
    let isolate_leader = match shape {
        // Only when named: it needs a system that reports its commit index.
        PartitionShape::Figure8 => {
            return Fault::Figure8 {
                delay_ms: 40 + rng.below(21),
                hold_ms: 1_000 + rng.below(2_001),
                seed: rng.below(u64::MAX),
            }
        }
        PartitionShape::LeaderChurn => {
            return Fault::LeaderChurn {
                max_hold_ms: 200 + rng.below(600),
                seed: rng.below(u64::MAX),
            }
        }
        PartitionShape::Halves => {
            // A majority and a minority (equal halves for an even count).
            let (a, b) = shuffled.split_at(n / 2);
            cut_between(&mut grudge, a, b);
            false
        }
        PartitionShape::IsolateOne => {
            let (a, b) = shuffled.split_at(1);
            cut_between(&mut grudge, a, b);
            false
        }
        PartitionShape::IsolateLeader => true,
        PartitionShape::MajoritiesRing => {
            // Jepsen's majorities ring: every node sees a majority, no two the same one.
            let keep = n / 2; // neighbours seen on each side, at most
            for (i, x) in shuffled.iter().enumerate() {
                for (j, y) in shuffled.iter().enumerate() {
                    let d = (i + n - j) % n;
                    let ring = d.min(n - d);
                    if ring > keep / 2 + keep % 2 && i != j && ring > 0 {
                        grudge.entry(x.clone()).or_default().insert(y.clone());
                    }
                }
            }
            false
        }
        PartitionShape::Bridge => {
            // A bridge: two sides that only one node connects.
            let rest = &shuffled[1..];
            let (a, b) = rest.split_at(rest.len() / 2);
            cut_between(&mut grudge, a, b);
            false
        }
        PartitionShape::OneWay => {
            // One node stops hearing from everyone else, who still hear it.
            let x = shuffled[0].clone();
            grudge.insert(x, shuffled[1..].iter().cloned().collect());
            false
        }
    };
    Fault::Partition {
        shape,
        grudge,
        isolate_leader,
    }
}
fn process_target(rng: &mut Rng, nodes: &[String]) -> Target {
    let mut shuffled = nodes.to_vec();
    rng.shuffle(&mut shuffled);
    match rng.below(3) {
        0 => Target::Leader,
        1 => Target::Nodes(vec![shuffled[0].clone()]),
        _ => {
            let minority = (nodes.len().saturating_sub(1) / 2).max(1);
            let mut v = shuffled[..minority].to_vec();
            v.sort();
            Target::Nodes(v)
        }
    }
}

fn clock(rng: &mut Rng, nodes: &[String], shape: Option<ClockShape>) -> Fault {
    let target = match rng.below(2) {
        0 => Target::Leader,
        _ => Target::Nodes(vec![nodes[rng.below(nodes.len() as u64) as usize].clone()]),
    };
    let sign = if rng.below(2) == 0 { -1 } else { 1 };
    let strobe = match shape {
        Some(s) => s == ClockShape::Strobe,
        None => rng.below(3) == 0,
    };
    if strobe {
        Fault::ClockStrobe {
            target,
            offset_ms: sign * (200 + rng.below(5_000) as i64),
            period_ms: 20 + rng.below(200),
        }
    } else {
        // Up to two minutes either way.
        Fault::ClockBump {
            target,
            offset_ms: sign * (1_000 + rng.below(119_000) as i64),
        }
    }
}

fn storm(rng: &mut Rng) -> Fault {
    Fault::ElectionStorm {
        leader_every_ms: 100 + rng.below(501),
        max_hold_ms: 10 + rng.below(91),
        max_down_ms: rng.below(51),
        seed: rng.below(u64::MAX),
    }
}

/// One fault of `part`'s kind, of its shape if it names one.
fn draw(part: Part, rng: &mut Rng, nodes: &[String]) -> Fault {
    match part {
        Part::Partition(shape) => partition(rng, nodes, shape),
        Part::Pause => Fault::Pause {
            target: process_target(rng, nodes),
        },
        Part::Kill(shape) => {
            // Drawn even when a shape is named, so that a seed gives the same draws after it.
            let drawn = rng.below(3);
            let shape = shape.unwrap_or(match drawn {
                1 => KillShape::CrashLoop,
                2 => KillShape::ElectionStorm,
                _ => KillShape::Down,
            });
            match shape {
                KillShape::CrashLoop => Fault::CrashLoop {
                    max_down_ms: 20 + rng.below(181),
                    max_up_ms: 50 + rng.below(451),
                    seed: rng.below(u64::MAX),
                },
                KillShape::ElectionStorm => storm(rng),
                // Only when named: it needs a system that says whom its nodes voted for.
                KillShape::AfterVote => Fault::AfterVote {
                    delay_ms: 15 + rng.below(11),
                    hold_ms: 1_000 + rng.below(2_001),
                    seed: rng.below(u64::MAX),
                },
                // Only when named, as after-vote.
                KillShape::AfterPromise => Fault::AfterPromise {
                    hold_ms: 1_000 + rng.below(2_001),
                    seed: rng.below(u64::MAX),
                },
                KillShape::Down => Fault::Kill {
                    target: process_target(rng, nodes),
                },
                KillShape::Leader => Fault::Kill {
                    target: Target::Leader,
                },
            }
        }
        Part::Clock(shape) => clock(rng, nodes, shape),
        Part::Loss => Fault::Loss {
            percent: 10 + rng.below(41) as u8,
        },
        Part::Slow => Fault::Slow {
            kbit: 100 + rng.below(901) as u32,
        },
        Part::Disk(shape) => {
            let drawn = rng.below(4);
            let shape = shape.unwrap_or(DiskShape::ALL[drawn as usize]);
            match shape {
                DiskShape::LoseUnsynced | DiskShape::Torn => Fault::PowerLoss {
                    torn: shape == DiskShape::Torn,
                    gap_ms: 1_000 + rng.below(2_001),
                    max_down_ms: 50 + rng.below(451),
                    seed: rng.below(u64::MAX),
                },
                DiskShape::FsyncError => Fault::FsyncError {
                    target: process_target(rng, nodes),
                },
                DiskShape::Slow => Fault::SlowFsync {
                    target: process_target(rng, nodes),
                    min_ms: 10,
                    max_ms: 200,
                    seed: rng.below(u64::MAX),
                },
            }
        }
        Part::Delay => {
            // Up to a fifth of the shortest election timeout of a typical Raft (250 ms): long
            // enough to open races, short enough that elections still finish.
            let mean_ms = 5 + rng.below(56);
            Fault::Delay {
                mean_ms,
                jitter_ms: rng.below(mean_ms / 2 + 1),
                seed: rng.below(u64::MAX),
            }
        }
    }
}

/// Draws the schedule: quiet for one interval, a fault for one interval, and so on, with every
/// fault over before `time_limit_ms`. An interval longer than a third of the run is shortened,
/// so even a short run sees a fault.
pub fn generate(
    plan: &NemesisPlan,
    nodes: &[String],
    time_limit_ms: u64,
    interval_ms: u64,
    seed: u64,
) -> Schedule {
    let mut rng = Rng(SplitMix64(seed ^ 0x005E_ED0F_FA17));
    let interval_ms = interval_ms.min(time_limit_ms / 3).max(100);
    let mut steps = Vec::new();
    let mut t = interval_ms;
    let kinds = plan.kinds();
    let plain = plan.is_plain();
    let network: Vec<NemesisKind> = kinds.iter().copied().filter(|k| k.is_network()).collect();
    let process: Vec<NemesisKind> = kinds.iter().copied().filter(|k| k.is_process()).collect();
    while !plan.entries.is_empty() && !nodes.is_empty() && t + interval_ms <= time_limit_ms {
        let fault = if plain && !network.is_empty() && !process.is_empty() && rng.below(3) == 0 {
            // A plain list of kinds with both network and process faults: one fault in three
            // is one of each at once.
            let a = network[rng.below(network.len() as u64) as usize];
            let b = process[rng.below(process.len() as u64) as usize];
            Fault::Together {
                faults: vec![
                    draw(Part::plain(a), &mut rng, nodes),
                    draw(Part::plain(b), &mut rng, nodes),
                ],
            }
        } else {
            let entry = &plan.entries[rng.below(plan.entries.len() as u64) as usize];
            let mut faults: Vec<Fault> = entry.iter().map(|p| draw(*p, &mut rng, nodes)).collect();
            if faults.len() == 1 {
                faults.remove(0)
            } else {
                Fault::Together { faults }
            }
        };
        steps.push(Step {
            start_ms: t,
            end_ms: t + interval_ms,
            fault,
        });
        t += 2 * interval_ms;
    }
    let healed_by_ms = steps.last().map_or(0, |s| s.end_ms);
    Schedule {
        interval_ms,
        steps,
        healed_by_ms,
        end_ms: time_limit_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(s: &str) -> NemesisPlan {
        NemesisPlan::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn nodes(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    #[test]
    fn same_seed_same_schedule_and_faults_alternate_with_quiet() {
        let all = plan("all");
        let a = generate(&all, &nodes(5), 60_000, 10_000, 7);
        let b = generate(&all, &nodes(5), 60_000, 10_000, 7);
        let c = generate(&all, &nodes(5), 60_000, 10_000, 8);
        assert_eq!(
            serde_json::to_string(&a).ok(),
            serde_json::to_string(&b).ok()
        );
        assert_ne!(
            serde_json::to_string(&a).ok(),
            serde_json::to_string(&c).ok()
        );
        assert!(!a.steps.is_empty());
        for w in a.steps.windows(2) {
            assert!(w[0].end_ms < w[1].start_ms, "a quiet period between faults");
        }
        assert!(a.healed_by_ms <= 60_000);
    }

    #[test]
    fn disk_faults_are_named_not_part_of_all_and_drawn_by_shape() {
        assert!(!plan("all").kinds().contains(&NemesisKind::Disk));
        assert_eq!(plan("disk").kinds(), [NemesisKind::Disk]);
        let e = NemesisPlan::parse("disk:melt").unwrap_err();
        assert!(e.contains("lose-unsynced, torn, fsync-error, slow"), "{e}");
        let s = generate(&plan("disk:torn"), &nodes(5), 30_000, 5_000, 3);
        assert!(!s.steps.is_empty());
        for step in &s.steps {
            assert!(
                matches!(step.fault, Fault::PowerLoss { torn: true, .. }),
                "{:?}",
                step.fault
            );
        }
        let s = generate(&plan("disk:slow"), &nodes(5), 30_000, 5_000, 3);
        assert!(matches!(
            s.steps[0].fault,
            Fault::SlowFsync {
                min_ms: 10,
                max_ms: 200,
                ..
            }
        ));
        let s = generate(&plan("disk"), &nodes(5), 120_000, 5_000, 3);
        let shapes: BTreeSet<&str> = s
            .steps
            .iter()
            .map(|st| match st.fault {
                Fault::PowerLoss { torn: false, .. } => "lose",
                Fault::PowerLoss { torn: true, .. } => "torn",
                Fault::FsyncError { .. } => "error",
                Fault::SlowFsync { .. } => "slow",
                _ => "other",
            })
            .collect();
        assert_eq!(
            shapes.len(),
            4,
            "every shape drawn over a long run: {shapes:?}"
        );
    }

    #[test]
    fn a_short_run_still_gets_a_fault() {
        let s = generate(&plan("partition"), &nodes(5), 10_000, 10_000, 1);
        assert_eq!(s.steps.len(), 1);
        assert!(s.steps[0].end_ms <= 10_000);
        let none = generate(&plan("none"), &nodes(5), 10_000, 10_000, 1);
        assert!(none.steps.is_empty());
    }

    #[test]
    fn majorities_ring_leaves_every_node_a_majority() {
        let mut rng = Rng(SplitMix64(3));
        for _ in 0..200 {
            if let Fault::Partition { shape, grudge, .. } = partition(&mut rng, &nodes(5), None) {
                if shape == PartitionShape::MajoritiesRing {
                    for (x, cut) in &grudge {
                        assert!(5 - cut.len() >= 3, "{x} hears {} of 5", 5 - cut.len());
                    }
                    return;
                }
            }
        }
        panic!("never drew a majorities ring");
    }

    #[test]
    fn nemesis_names_parse_and_typos_list_the_valid_ones() {
        assert_eq!(plan("all").kinds().len(), 7);
        assert_eq!(
            plan("kill,partition").kinds(),
            vec![NemesisKind::Partition, NemesisKind::Kill]
        );
        assert_eq!(plan("kill,partition").text(), "partition,kill");
        let e = NemesisPlan::parse("partiton").unwrap_err();
        assert!(
            e.contains("partiton") && e.contains("partition, pause"),
            "{e}"
        );
    }

    #[test]
    fn shapes_and_joined_faults_parse_and_mistakes_are_named() {
        let p = plan("partition:majorities-ring+delay+kill:election-storm, clock:strobe");
        assert_eq!(p.entries.len(), 2);
        assert_eq!(
            p.text(),
            "partition:majorities-ring+delay+kill:election-storm,clock:strobe"
        );
        assert_eq!(
            p.kinds(),
            vec![
                NemesisKind::Partition,
                NemesisKind::Kill,
                NemesisKind::Clock,
                NemesisKind::Delay
            ]
        );
        assert_eq!(
            p.label(),
            "partition-majorities-ring+delay+kill-election-storm_clock-strobe"
        );
        assert_eq!(
            plan("none").label(),
            "none",
            "a run folder never ends in a dash"
        );
        for (bad, says) in [
            ("partition:ring", "its shapes are: leader-churn, halves"),
            ("loss:heavy", "loss has no shapes"),
            ("kill+pause", "cannot run at once"),
            (
                "kill:after-vote+delay",
                "makes its own partitions and delay",
            ),
            (
                "partition:figure-8+loss",
                "figure-8 makes its own partitions and delay",
            ),
            ("delay+delay", "names delay twice"),
            ("partition+kil", "unknown nemesis 'kil'"),
        ] {
            let e = NemesisPlan::parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn a_joined_entry_runs_its_faults_together_in_every_window() {
        let p = plan("partition:majorities-ring+delay+kill:election-storm");
        let s = generate(&p, &nodes(5), 60_000, 3_000, 11);
        assert!(s.steps.len() >= 5);
        for step in &s.steps {
            let Fault::Together { faults } = &step.fault else {
                panic!("not together: {:?}", step.fault);
            };
            assert!(
                matches!(&faults[0], Fault::Partition { shape, .. } if *shape == PartitionShape::MajoritiesRing)
            );
            assert!(matches!(faults[1], Fault::Delay { mean_ms, jitter_ms, .. }
                if (5..=60).contains(&mean_ms) && jitter_ms <= mean_ms / 2));
            assert!(matches!(faults[2], Fault::ElectionStorm { .. }));
        }
        // A shape alone is always that shape.
        let s = generate(&plan("kill:crash-loop"), &nodes(3), 60_000, 3_000, 5);
        assert!(s
            .steps
            .iter()
            .all(|st| matches!(st.fault, Fault::CrashLoop { .. })));
        // The staged vote is drawn only when named: it needs a system that reports votes.
        let s = generate(&plan("kill:after-vote"), &nodes(3), 60_000, 3_000, 5);
        assert!(s.steps.iter().all(|st| matches!(st.fault,
            Fault::AfterVote { delay_ms, hold_ms, .. }
                if (15..=25).contains(&delay_ms) && (1_000..=3_000).contains(&hold_ms))));
        let s = generate(&plan("kill:leader"), &nodes(3), 60_000, 3_000, 5);
        assert!(s.steps.iter().all(|st| matches!(
            st.fault,
            Fault::Kill {
                target: Target::Leader
            }
        )));
        let s = generate(&plan("kill:after-promise"), &nodes(3), 60_000, 3_000, 5);
        assert!(s.steps.iter().all(|st| matches!(st.fault,
            Fault::AfterPromise { hold_ms, .. } if (1_000..=3_000).contains(&hold_ms))));
        assert_eq!(
            plan("kill:after-promise").staged(),
            vec![Staged::AfterPromise]
        );
        let s = generate(&plan("partition:figure-8"), &nodes(3), 60_000, 3_000, 5);
        assert!(s.steps.iter().all(|st| matches!(st.fault,
            Fault::Figure8 { delay_ms, hold_ms, .. }
                if (40..=60).contains(&delay_ms) && (1_000..=3_000).contains(&hold_ms))));
        let s = generate(&plan("partition,kill"), &nodes(5), 6_000_000, 3_000, 5);
        assert!(s.steps.len() > 500);
        assert!(!s.steps.iter().any(|st| matches!(
            st.fault,
            Fault::AfterVote { .. } | Fault::Figure8 { .. } | Fault::AfterPromise { .. }
        )));
        // A plain list with network and process kinds pairs some windows on its own.
        let s = generate(&plan("partition,kill"), &nodes(5), 600_000, 3_000, 5);
        let together = s
            .steps
            .iter()
            .filter(|st| matches!(st.fault, Fault::Together { .. }))
            .count();
        assert!(
            together > 0 && together < s.steps.len(),
            "{together} of {}",
            s.steps.len()
        );
    }
}
