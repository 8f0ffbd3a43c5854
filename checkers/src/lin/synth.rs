//! Synthetic register histories that are linearizable by construction, for benchmarks and
//! tests of the linearizability checker.
//!
//! A seeded discrete-event simulation: every key is a real register, every client invokes one
//! operation at a time, and each operation takes effect at one instant between its invocation
//! and its completion (its linearization point, Herlihy & Wing 1990), so the recorded history
//! is linearizable by construction while clients overlap freely. Written values are unique
//! (a global counter), as harness workloads write them (shared/DESIGN.md section 2).
//!
//! Indeterminate operations follow Jepsen's rule: an `info` operation may take effect at any
//! time after its invocation, even after its `info` completion, or never; its process id is
//! then retired and the client continues under a fresh one.
//!
//! With `plant_stale_read`, exactly one `ok` read in the second half of the history returns a
//! value that an `ok` write had overwritten before the read was invoked (and whose own writer
//! had completed before that write began), which no linearization can explain.
//!
//! The generator keeps only the history itself plus a few words per client and per key, so a
//! million operations fit in memory alongside the checker.

use crate::rng::SplitMix64;
use history::{Event, EventType, History, Process};
use serde_json::Value;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// What to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthConfig {
    /// Concurrent client workers (each has at most one operation outstanding).
    pub clients: usize,
    /// Operations to invoke in total, over all clients and keys.
    pub ops: usize,
    /// Registers; with one, events carry no key (a single register, as in Porcupine's etcd logs).
    pub keys: usize,
    pub seed: u64,
    /// Whether clients also issue compare-and-set operations (the `cas-register` model).
    pub cas: bool,
    /// Fraction of operations that complete as `info` (indeterminate), in [0, 1].
    pub info_rate: f64,
    /// Plant one stale `ok` read, making the history certainly not linearizable.
    pub plant_stale_read: bool,
}

impl SynthConfig {
    /// A cas register workload with no indeterminate operations and nothing planted.
    pub fn new(clients: usize, ops: usize, keys: usize, seed: u64) -> Self {
        SynthConfig {
            clients,
            ops,
            keys,
            seed,
            cas: true,
            info_rate: 0.0,
            plant_stale_read: false,
        }
    }
}

/// The stale read planted by `plant_stale_read`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaleRead {
    /// `index` of the read's invocation event.
    pub invoke_index: u64,
    pub key: Option<String>,
    /// The value the read returned.
    pub value: u64,
    /// `index` of the completion of the `ok` write (or cas) that had overwritten `value`
    /// before the read was invoked.
    pub overwritten_at: u64,
}

/// A generated history and what was planted in it.
#[derive(Clone, Debug)]
pub struct Synthetic {
    pub history: History,
    /// `None` unless `plant_stale_read` was asked for; also `None` if the history was too
    /// short to hold a stale read (no key had two `ok` writes in a row by mid-history).
    pub stale_read: Option<StaleRead>,
}

/// Generates a history per `cfg`; see [`generate_detailed`] to learn where a stale read went.
pub fn generate(cfg: &SynthConfig) -> History {
    generate_detailed(cfg).history
}

/// Generates a history per `cfg`, reporting the planted stale read if there is one.
pub fn generate_detailed(cfg: &SynthConfig) -> Synthetic {
    Sim::new(cfg).run()
}

/// Operation latency, invocation to completion, in nanoseconds.
const MIN_LATENCY_NS: u64 = 20_000;
const MAX_LATENCY_NS: u64 = 1_000_000;
/// Pause between a completion and the same client's next invocation.
const MAX_THINK_NS: u64 = 50_000;
/// Values a register recently held, for cas operations to expect.
const RECENT_VALUES: usize = 4;
/// `ok` writes remembered per key, to find a stale value to plant.
const REMEMBERED_WRITES: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Read,
    Write(u64),
    /// Expected value (`None`: absent), new value.
    Cas(Option<u64>, u64),
}

/// What an operation's effect produced: a read's value, or whether a cas matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Effect {
    Read(Option<u64>),
    Wrote,
    CasRefused,
}

#[derive(Clone, Debug)]
struct InFlight {
    /// Distinguishes this operation from the client's later ones, for late effects.
    serial: u64,
    key: usize,
    action: Action,
    /// Completes as `info` rather than by its effect.
    indeterminate: bool,
    effect: Option<Effect>,
    invoke_index: u64,
    /// The value a planted stale read returns instead of the truth.
    stale: Option<u64>,
}

#[derive(Clone, Debug)]
struct Client {
    process: u64,
    op: Option<InFlight>,
}

#[derive(Clone, Debug)]
struct Written {
    value: u64,
    invoke_index: u64,
    complete_index: u64,
}

#[derive(Clone, Debug, Default)]
struct Register {
    value: Option<u64>,
    recent: VecDeque<u64>,
    /// `ok` writes and cas, in completion order (only kept when planting).
    written: VecDeque<Written>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Pending {
    Invoke {
        client: usize,
    },
    /// The operation `serial` of `client` takes effect.
    TakeEffect {
        client: usize,
        serial: u64,
    },
    Complete {
        client: usize,
    },
}

/// An effect that outlives its operation's `info` completion.
#[derive(Clone, Copy, Debug)]
struct LateEffect {
    key: usize,
    action: Action,
}

struct Sim<'a> {
    cfg: &'a SynthConfig,
    rng: SplitMix64,
    /// Min-heap of (time ns, tie-break sequence, what happens).
    queue: BinaryHeap<Reverse<(u64, u64, Pending)>>,
    seq: u64,
    clients: Vec<Client>,
    registers: Vec<Register>,
    /// Effects of `info` operations still to apply, by serial.
    late: hashbrown::HashMap<u64, LateEffect>,
    next_value: u64,
    next_serial: u64,
    invoked: usize,
    last_time: u64,
    history: History,
    stale_read: Option<StaleRead>,
}

impl<'a> Sim<'a> {
    fn new(cfg: &'a SynthConfig) -> Self {
        let keys = cfg.keys.max(1);
        let mut history = History::new(format!(
            "synth-c{}-n{}-k{}-seed{}.jsonl",
            cfg.clients, cfg.ops, keys, cfg.seed
        ));
        history.events.reserve(cfg.ops.saturating_mul(2));
        history.lines.reserve(cfg.ops.saturating_mul(2));
        Sim {
            cfg,
            rng: SplitMix64(cfg.seed),
            queue: BinaryHeap::new(),
            seq: 0,
            clients: (0..cfg.clients)
                .map(|c| Client {
                    process: c as u64,
                    op: None,
                })
                .collect(),
            registers: vec![Register::default(); keys],
            late: hashbrown::HashMap::new(),
            next_value: 1,
            next_serial: 0,
            invoked: 0,
            last_time: 0,
            history,
            stale_read: None,
        }
    }

    fn schedule(&mut self, time: u64, what: Pending) {
        self.seq += 1;
        self.queue.push(Reverse((time, self.seq, what)));
    }

    fn run(mut self) -> Synthetic {
        for c in 0..self.clients.len() {
            let t = 1 + self.rng.below(MAX_THINK_NS);
            self.schedule(t, Pending::Invoke { client: c });
        }
        while let Some(Reverse((time, _, what))) = self.queue.pop() {
            match what {
                Pending::Invoke { client } => self.invoke(time, client),
                Pending::TakeEffect { client, serial } => self.take_effect(client, serial),
                Pending::Complete { client } => self.complete(time, client),
            }
        }
        Synthetic {
            history: self.history,
            stale_read: self.stale_read,
        }
    }

    fn key_name(&self, key: usize) -> Option<String> {
        (self.cfg.keys > 1).then(|| format!("k{key}"))
    }

    fn emit(
        &mut self,
        time: u64,
        process: u64,
        kind: EventType,
        f: &str,
        key: usize,
        value: Value,
    ) {
        // The harness's clock is monotonic and events are observed one at a time.
        let time = time.max(self.last_time + 1);
        self.last_time = time;
        let index = self.history.events.len() as u64;
        let error = match kind {
            EventType::Fail => Some(Value::from("precondition")),
            EventType::Info => Some(Value::from("timeout")),
            _ => None,
        };
        let event = Event {
            index,
            time,
            process: Process::Client(process),
            kind,
            f: f.to_owned(),
            key: self.key_name(key),
            value,
            node: None,
            error,
            local: false,
            siblings: false,
            context: None,
        };
        self.history.push(event, index as usize + 1);
    }

    fn invoke(&mut self, time: u64, client: usize) {
        if self.invoked >= self.cfg.ops {
            return;
        }
        self.invoked += 1;
        let key = self.rng.below(self.registers.len() as u64) as usize;
        let roll = self.rng.below(4);
        let action = match (roll, self.cfg.cas) {
            (0 | 1, _) => Action::Read,
            (2, true) => {
                let reg = &self.registers[key];
                let expect = if reg.recent.is_empty() || self.rng.chance(0.7) {
                    reg.value
                } else {
                    let i = self.rng.below(reg.recent.len() as u64) as usize;
                    Some(reg.recent[i])
                };
                Action::Cas(expect, self.fresh_value())
            }
            _ => Action::Write(self.fresh_value()),
        };
        let invoke_index = self.history.events.len() as u64;
        let indeterminate = self.rng.chance(self.cfg.info_rate);
        // Planting draws nothing from the generator, so the planted history equals the clean
        // one with the same seed except for the stale read's value.
        let stale = if action == Action::Read && !indeterminate {
            self.maybe_plant(key, invoke_index)
        } else {
            None
        };
        let latency = MIN_LATENCY_NS + self.rng.below(MAX_LATENCY_NS - MIN_LATENCY_NS);
        let serial = self.next_serial;
        self.next_serial += 1;
        self.clients[client].op = Some(InFlight {
            serial,
            key,
            action,
            indeterminate,
            effect: None,
            invoke_index,
            stale,
        });
        let process = self.clients[client].process;
        let (f, value) = describe(action);
        self.emit(time, process, EventType::Invoke, f, key, value);
        if !indeterminate {
            let at = time + 1 + self.rng.below(latency - 1);
            self.schedule(at, Pending::TakeEffect { client, serial });
        } else if self.rng.chance(0.5) {
            // Takes effect after all, possibly long after its `info` completion.
            let at = time + 1 + self.rng.below(2 * latency);
            self.late.insert(serial, LateEffect { key, action });
            self.schedule(at, Pending::TakeEffect { client, serial });
        }
        self.schedule(time + latency, Pending::Complete { client });
    }

    fn fresh_value(&mut self) -> u64 {
        let v = self.next_value;
        self.next_value += 1;
        v
    }

    /// From mid-history on, the first read that can be made certainly stale is.
    fn maybe_plant(&mut self, key: usize, invoke_index: u64) -> Option<u64> {
        if !self.cfg.plant_stale_read
            || self.stale_read.is_some()
            || self.invoked * 2 < self.cfg.ops
        {
            return None;
        }
        let written = &self.registers[key].written;
        // `newer` overwrote `older`, and began only after `older` had completed, so every
        // linearization puts older < newer < this read: the read cannot see `older`'s value.
        let newer = written.back()?;
        let older = written
            .iter()
            .rev()
            .find(|w| w.complete_index < newer.invoke_index)?;
        self.stale_read = Some(StaleRead {
            invoke_index,
            key: self.key_name(key),
            value: older.value,
            overwritten_at: newer.complete_index,
        });
        Some(older.value)
    }

    fn take_effect(&mut self, client: usize, serial: u64) {
        let in_flight = self.clients[client]
            .op
            .as_ref()
            .filter(|op| op.serial == serial)
            .map(|op| (op.key, op.action));
        let (key, action) = match in_flight {
            Some(ka) => ka,
            None => match self.late.remove(&serial) {
                Some(l) => (l.key, l.action),
                None => return,
            },
        };
        self.late.remove(&serial);
        let reg = &mut self.registers[key];
        let effect = match action {
            Action::Read => Effect::Read(reg.value),
            Action::Write(v) => {
                set(reg, v);
                Effect::Wrote
            }
            Action::Cas(from, to) => {
                if reg.value == from {
                    set(reg, to);
                    Effect::Wrote
                } else {
                    Effect::CasRefused
                }
            }
        };
        if let Some(op) = self.clients[client].op.as_mut() {
            if op.serial == serial {
                op.effect = Some(effect);
            }
        }
    }

    fn complete(&mut self, time: u64, client: usize) {
        let op = self.clients[client]
            .op
            .take()
            .expect("a completion is scheduled only for an operation in flight");
        let process = self.clients[client].process;
        let (f, input) = describe(op.action);
        let complete_index = self.history.events.len() as u64;
        if op.indeterminate {
            let value = if op.action == Action::Read {
                Value::Null
            } else {
                input
            };
            self.emit(time, process, EventType::Info, f, op.key, value);
            self.clients[client].process += self.clients.len() as u64;
        } else {
            let effect = op
                .effect
                .expect("a determinate operation takes effect before it completes");
            match effect {
                Effect::Read(v) => {
                    let v = op.stale.or(v);
                    self.emit(time, process, EventType::Ok, f, op.key, opt_value(v));
                }
                Effect::Wrote => {
                    if self.cfg.plant_stale_read {
                        let value = match op.action {
                            Action::Write(v) | Action::Cas(_, v) => v,
                            Action::Read => unreachable!("a read writes nothing"),
                        };
                        let w = &mut self.registers[op.key].written;
                        if w.len() == REMEMBERED_WRITES {
                            w.pop_front();
                        }
                        w.push_back(Written {
                            value,
                            invoke_index: op.invoke_index,
                            complete_index,
                        });
                    }
                    self.emit(time, process, EventType::Ok, f, op.key, input);
                }
                Effect::CasRefused => {
                    self.emit(time, process, EventType::Fail, f, op.key, input);
                }
            }
        }
        if self.invoked < self.cfg.ops {
            let t = time + 1 + self.rng.below(MAX_THINK_NS);
            self.schedule(t, Pending::Invoke { client });
        }
    }
}

fn set(reg: &mut Register, v: u64) {
    if let Some(old) = reg.value {
        if reg.recent.len() == RECENT_VALUES {
            reg.recent.pop_front();
        }
        reg.recent.push_back(old);
    }
    reg.value = Some(v);
}

fn opt_value(v: Option<u64>) -> Value {
    v.map_or(Value::Null, Value::from)
}

/// The `f` and invocation `value` of an action.
fn describe(action: Action) -> (&'static str, Value) {
    match action {
        Action::Read => ("read", Value::Null),
        Action::Write(v) => ("write", Value::from(v)),
        Action::Cas(from, to) => ("cas", Value::Array(vec![opt_value(from), Value::from(to)])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{check, ModelKind, Options, Strategy};
    use std::time::Duration;

    const SEEDS: [u64; 4] = [1, 2, 3, 0xDEAD_BEEF];

    fn cfg(seed: u64, keys: usize, cas: bool, plant: bool) -> SynthConfig {
        SynthConfig {
            clients: 5,
            ops: 200,
            keys,
            seed,
            cas,
            info_rate: 0.05,
            plant_stale_read: plant,
        }
    }

    fn verdict(h: &History, cas: bool, strategy: Strategy) -> &'static str {
        let paired = history::pair(h).expect("generated histories pair");
        let model = if cas {
            ModelKind::CasRegister
        } else {
            ModelKind::Register
        };
        let mut opts = Options::new(model);
        opts.time_limit = Some(Duration::from_secs(30));
        opts.strategy = strategy;
        check(h, &paired, &opts)
            .expect("generated histories check")
            .verdict
    }

    #[test]
    fn synth_is_deterministic_per_seed() {
        for seed in SEEDS {
            let a = generate(&cfg(seed, 2, true, true));
            let b = generate(&cfg(seed, 2, true, true));
            assert_eq!(a.events, b.events, "reproduce with SEED={seed}");
        }
        let a = generate(&cfg(1, 1, true, false));
        let b = generate(&cfg(2, 1, true, false));
        assert_ne!(a.events, b.events);
    }

    #[test]
    fn synth_events_follow_the_history_rules() {
        for seed in SEEDS {
            let c = cfg(seed, 3, true, false);
            let h = generate(&c);
            assert_eq!(h.events.len(), 2 * c.ops, "reproduce with SEED={seed}");
            let paired = history::pair(&h).expect("pairs");
            assert_eq!(paired.ops.len(), c.ops);
            for (i, e) in h.events.iter().enumerate() {
                assert_eq!(e.index, i as u64);
                if i > 0 {
                    assert!(e.time > h.events[i - 1].time, "time increases at {i}");
                }
            }
            let kinds = |k: EventType| paired.ops.iter().filter(|o| o.kind == k).count();
            assert!(kinds(EventType::Info) > 0, "seed {seed}: some info");
            assert!(kinds(EventType::Fail) > 0, "seed {seed}: some refused cas");
            let max_outstanding = overlap(&h);
            assert!(max_outstanding >= 3, "seed {seed}: operations overlap");
        }
    }

    /// Most operations outstanding at once.
    fn overlap(h: &History) -> usize {
        let (mut now, mut max) = (0usize, 0usize);
        for e in &h.events {
            if e.kind == EventType::Invoke {
                now += 1;
                max = max.max(now);
            } else {
                now -= 1;
            }
        }
        max
    }

    #[test]
    fn synth_valid_histories_check_valid() {
        for seed in SEEDS {
            for (keys, cas) in [(1, true), (1, false), (3, true)] {
                let h = generate(&cfg(seed, keys, cas, false));
                for strategy in [Strategy::Auto, Strategy::Search] {
                    assert_eq!(
                        verdict(&h, cas, strategy),
                        "valid",
                        "keys={keys} cas={cas} {strategy:?}; reproduce with SEED={seed}"
                    );
                }
            }
        }
    }

    #[test]
    fn synth_planted_stale_read_checks_invalid() {
        for seed in SEEDS {
            for (keys, cas) in [(1, true), (1, false), (3, true)] {
                let s = generate_detailed(&cfg(seed, keys, cas, true));
                let stale = s
                    .stale_read
                    .clone()
                    .unwrap_or_else(|| panic!("planted; reproduce with SEED={seed}"));
                let ev = &s.history.events[stale.invoke_index as usize];
                assert_eq!(ev.f, "read");
                assert!(stale.overwritten_at < stale.invoke_index);
                assert!(stale.invoke_index as usize >= s.history.events.len() / 4);
                for strategy in [Strategy::Auto, Strategy::Search] {
                    assert_eq!(
                        verdict(&s.history, cas, strategy),
                        "invalid",
                        "keys={keys} cas={cas} {strategy:?}; reproduce with SEED={seed}"
                    );
                }
                // Only that one read differs from the unplanted run.
                let clean = generate(&cfg(seed, keys, cas, false));
                let differing: Vec<usize> = (0..clean.events.len())
                    .filter(|&i| clean.events[i] != s.history.events[i])
                    .collect();
                assert_eq!(differing.len(), 1, "seed {seed}: {differing:?}");
                assert_eq!(s.history.events[differing[0]].kind, EventType::Ok);
                assert_eq!(
                    s.history.events[differing[0]].value,
                    Value::from(stale.value)
                );
            }
        }
    }
}
