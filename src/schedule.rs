//! The fault schedule of a run: quiet periods and faults taking turns, drawn from the seed, so
//! the same `--seed` gives the same schedule. Targets that exist only at run time (the current
//! leader) are named here and resolved when the fault starts; the history records what was hit.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

/// The nemeses a user can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NemesisKind {
    Partition,
    Pause,
    Kill,
    Clock,
    Loss,
    Slow,
}

impl NemesisKind {
    pub const ALL: [NemesisKind; 6] = [
        NemesisKind::Partition,
        NemesisKind::Pause,
        NemesisKind::Kill,
        NemesisKind::Clock,
        NemesisKind::Loss,
        NemesisKind::Slow,
    ];

    pub fn name(self) -> &'static str {
        match self {
            NemesisKind::Partition => "partition",
            NemesisKind::Pause => "pause",
            NemesisKind::Kill => "kill",
            NemesisKind::Clock => "clock",
            NemesisKind::Loss => "loss",
            NemesisKind::Slow => "slow",
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
            match Self::ALL.iter().find(|k| k.name() == part) {
                Some(k) => {
                    out.insert(*k);
                }
                None => {
                    return Err(format!(
                        "unknown nemesis '{part}'; the nemeses are: {}, or all, or none",
                        Self::ALL.map(NemesisKind::name).join(", ")
                    ))
                }
            }
        }
        Ok(out.into_iter().collect())
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
        shape: &'static str,
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
}

impl Fault {
    #[allow(dead_code)] // used by the report (next issue)
    pub fn kind(&self) -> NemesisKind {
        match self {
            Fault::Partition { .. } | Fault::LeaderChurn { .. } => NemesisKind::Partition,
            Fault::Pause { .. } => NemesisKind::Pause,
            Fault::Kill { .. } => NemesisKind::Kill,
            Fault::ClockBump { .. } | Fault::ClockStrobe { .. } => NemesisKind::Clock,
            Fault::Loss { .. } => NemesisKind::Loss,
            Fault::Slow { .. } => NemesisKind::Slow,
        }
    }

    /// A short description for the progress line and the summary.
    pub fn describe(&self) -> String {
        match self {
            Fault::Partition { shape, .. } => format!("partition ({shape})"),
            Fault::LeaderChurn { max_hold_ms, .. } => {
                format!("partition (isolate each new leader, holding up to {max_hold_ms} ms)")
            }
            Fault::Pause { target } => format!("pause {}", target_name(target)),
            Fault::Kill { target } => format!("kill {}", target_name(target)),
            Fault::ClockBump { target, offset_ms } => {
                format!("clock {} {:+} ms", target_name(target), offset_ms)
            }
            Fault::ClockStrobe {
                target, offset_ms, ..
            } => format!("clock strobe {} ±{} ms", target_name(target), offset_ms),
            Fault::Loss { percent } => format!("loss {percent}%"),
            Fault::Slow { kbit } => format!("slow network, {kbit} kbit/s per link"),
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
struct Rng(workloads::rng::SplitMix64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0.below(n.max(1))
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
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

fn partition(rng: &mut Rng, nodes: &[String]) -> Fault {
    let n = nodes.len();
    let mut shuffled = nodes.to_vec();
    rng.shuffle(&mut shuffled);
    let mut grudge = BTreeMap::new();
    if n >= 3 && rng.below(3) == 0 {
        return Fault::LeaderChurn {
            max_hold_ms: 200 + rng.below(600),
            seed: rng.below(u64::MAX),
        };
    }
    let shapes = if n >= 3 { 6 } else { 2 };
    let (shape, isolate_leader) = match rng.below(shapes) {
        0 => {
            // Halves: a majority and a minority (equal halves for an even count).
            let (a, b) = shuffled.split_at(n / 2);
            cut_between(&mut grudge, a, b);
            ("halves", false)
        }
        1 => {
            let (a, b) = shuffled.split_at(1);
            cut_between(&mut grudge, a, b);
            ("isolate one node", false)
        }
        2 => ("isolate the leader", true),
        3 => {
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
            ("majorities ring", false)
        }
        4 => {
            // A bridge: two sides that only one node connects.
            let rest = &shuffled[1..];
            let (a, b) = rest.split_at(rest.len() / 2);
            cut_between(&mut grudge, a, b);
            ("bridge", false)
        }
        _ => {
            // One-way: one node stops hearing from everyone else, who still hear it.
            let x = shuffled[0].clone();
            grudge.insert(x, shuffled[1..].iter().cloned().collect());
            ("one-way", false)
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

fn clock(rng: &mut Rng, nodes: &[String]) -> Fault {
    let target = match rng.below(2) {
        0 => Target::Leader,
        _ => Target::Nodes(vec![nodes[rng.below(nodes.len() as u64) as usize].clone()]),
    };
    let sign = if rng.below(2) == 0 { -1 } else { 1 };
    if rng.below(3) == 0 {
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

/// Draws the schedule: quiet for one interval, a fault for one interval, and so on, with every
/// fault over before `time_limit_ms`. An interval longer than a third of the run is shortened,
/// so even a short run sees a fault.
pub fn generate(
    kinds: &[NemesisKind],
    nodes: &[String],
    time_limit_ms: u64,
    interval_ms: u64,
    seed: u64,
) -> Schedule {
    let mut rng = Rng(workloads::rng::SplitMix64(seed ^ 0x005E_ED0F_FA17));
    let interval_ms = interval_ms.min(time_limit_ms / 3).max(100);
    let mut steps = Vec::new();
    let mut t = interval_ms;
    while !kinds.is_empty() && !nodes.is_empty() && t + interval_ms <= time_limit_ms {
        let kind = kinds[rng.below(kinds.len() as u64) as usize];
        let fault = match kind {
            NemesisKind::Partition => partition(&mut rng, nodes),
            NemesisKind::Pause => Fault::Pause {
                target: process_target(&mut rng, nodes),
            },
            NemesisKind::Kill => Fault::Kill {
                target: process_target(&mut rng, nodes),
            },
            NemesisKind::Clock => clock(&mut rng, nodes),
            NemesisKind::Loss => Fault::Loss {
                percent: 10 + rng.below(41) as u8,
            },
            NemesisKind::Slow => Fault::Slow {
                kbit: 100 + rng.below(901) as u32,
            },
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

    fn nodes(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    #[test]
    fn same_seed_same_schedule_and_faults_alternate_with_quiet() {
        let a = generate(&NemesisKind::ALL, &nodes(5), 60_000, 10_000, 7);
        let b = generate(&NemesisKind::ALL, &nodes(5), 60_000, 10_000, 7);
        let c = generate(&NemesisKind::ALL, &nodes(5), 60_000, 10_000, 8);
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
    fn a_short_run_still_gets_a_fault() {
        let s = generate(&[NemesisKind::Partition], &nodes(5), 10_000, 10_000, 1);
        assert_eq!(s.steps.len(), 1);
        assert!(s.steps[0].end_ms <= 10_000);
        let none = generate(&[], &nodes(5), 10_000, 10_000, 1);
        assert!(none.steps.is_empty());
    }

    #[test]
    fn majorities_ring_leaves_every_node_a_majority() {
        let mut rng = Rng(workloads::rng::SplitMix64(3));
        for _ in 0..200 {
            if let Fault::Partition { shape, grudge, .. } = partition(&mut rng, &nodes(5)) {
                if shape == "majorities ring" {
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
        assert_eq!(NemesisKind::parse_list("all").map(|v| v.len()), Ok(6));
        assert_eq!(
            NemesisKind::parse_list("kill,partition"),
            Ok(vec![NemesisKind::Partition, NemesisKind::Kill])
        );
        let e = NemesisKind::parse_list("partiton").unwrap_err();
        assert!(
            e.contains("partiton") && e.contains("partition, pause"),
            "{e}"
        );
    }
}
