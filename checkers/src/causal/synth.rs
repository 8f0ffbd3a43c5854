//! Histories for the causal checker's tests and benchmark: a small text form for hand-made
//! ones, random small ones for the differential test, and large ones from a simulated causal
//! store for the benchmark.
//!
//! The text form: sessions separated by `;` or new lines, each `P:` (its process id) followed
//! by operations in session order: `w(x,1)` writes 1 to x, `r(x,1)` reads 1, `r(x,_)` reads
//! the initial value (null), `r(x,[1,2])` reads siblings 1 and 2, `w?(x,3)` is a write whose
//! outcome is unknown (`info`), `w!(x,3)` one that failed, `cas(x,1,2)` a successful cas.
//! Operations are written to the history round-robin across sessions; causal consistency does
//! not look at real time.

use crate::rng::SplitMix64;
use history::{Event, EventType, History, Process};
use serde_json::{json, Value};

/// One operation of the text form.
#[derive(Clone, Debug, PartialEq)]
pub struct TextOp {
    pub f: &'static str,
    pub key: String,
    /// The write's value, the read's result, or a cas's [from, to].
    pub value: Value,
    pub kind: EventType,
    pub siblings: bool,
}

/// Parses the text form into sessions (process id, operations).
pub fn parse(text: &str) -> Result<Vec<(u64, Vec<TextOp>)>, String> {
    let mut out = Vec::new();
    for part in text
        .split([';', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let (p, ops) = part
            .split_once(':')
            .ok_or_else(|| format!("'{part}': a session starts with its process id and ':'"))?;
        let process: u64 = p
            .trim()
            .parse()
            .map_err(|_| format!("'{p}' is not a process id"))?;
        let mut list = Vec::new();
        let mut rest = ops.trim();
        while !rest.is_empty() {
            let close = rest
                .find(')')
                .ok_or_else(|| format!("'{rest}': an operation ends with ')'"))?;
            let (op, tail) = rest.split_at(close + 1);
            rest = tail.trim_start_matches([' ', ',']).trim();
            list.push(parse_op(op.trim())?);
        }
        out.push((process, list));
    }
    Ok(out)
}

fn parse_op(op: &str) -> Result<TextOp, String> {
    let (head, args) = op
        .strip_suffix(')')
        .and_then(|o| o.split_once('('))
        .ok_or_else(|| format!("'{op}' is not f(key,value)"))?;
    let (key, value) = args
        .split_once(',')
        .ok_or_else(|| format!("'{op}': expected a key and a value"))?;
    let key = key.trim().to_owned();
    let value = value.trim();
    let num = |v: &str| -> Result<Value, String> {
        v.trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("'{op}': '{v}' is not a number"))
    };
    let mut o = TextOp {
        f: "read",
        key,
        value: Value::Null,
        kind: EventType::Ok,
        siblings: false,
    };
    match head {
        "r" => {
            if value == "_" {
            } else if let Some(list) = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
                o.value = Value::Array(list.split(',').map(num).collect::<Result<_, _>>()?);
                o.siblings = true;
            } else {
                o.value = num(value)?;
            }
        }
        "w" | "w?" | "w!" => {
            o.f = "write";
            o.value = num(value)?;
            o.kind = match head {
                "w?" => EventType::Info,
                "w!" => EventType::Fail,
                _ => EventType::Ok,
            };
        }
        "cas" => {
            let (a, b) = value
                .split_once(',')
                .ok_or_else(|| format!("'{op}': cas(key,from,to)"))?;
            o.f = "cas";
            let from = if a.trim() == "_" {
                Value::Null
            } else {
                num(a)?
            };
            o.value = json!([from, num(b)?]);
        }
        _ => return Err(format!("'{op}': the operations are r, w, w?, w! and cas")),
    }
    Ok(o)
}

/// The history of `sessions`, operations interleaved round-robin.
pub fn history(sessions: &[(u64, Vec<TextOp>)]) -> History {
    let mut h = History::new("causal-test.jsonl");
    let push = |h: &mut History, mut e: Event| {
        let i = h.events.len();
        e.index = i as u64;
        e.time = i as u64 * 1_000;
        h.push(e, i + 1);
    };
    let longest = sessions.iter().map(|s| s.1.len()).max().unwrap_or(0);
    for step in 0..longest {
        for (p, ops) in sessions {
            let Some(op) = ops.get(step) else { continue };
            let input = match op.f {
                "read" => Value::Null,
                _ => op.value.clone(),
            };
            let base = Event {
                index: 0,
                time: 0,
                process: Process::Client(*p),
                kind: EventType::Invoke,
                f: op.f.to_owned(),
                key: Some(op.key.clone()),
                value: input.clone(),
                node: Some(format!("n{}", p % 5 + 1)),
                error: None,
                local: false,
                siblings: false,
                context: None,
            };
            push(&mut h, base.clone());
            let ok = op.kind == EventType::Ok;
            push(
                &mut h,
                Event {
                    kind: op.kind,
                    value: if op.f == "read" && ok {
                        op.value.clone()
                    } else {
                        input
                    },
                    siblings: op.siblings && ok,
                    error: (!ok).then(|| json!("timeout")),
                    ..base
                },
            );
        }
    }
    h
}

/// The history of the text form; panics on a malformed text (for tests).
pub fn of(text: &str) -> History {
    history(&parse(text).unwrap_or_else(|e| panic!("{e}")))
}

/// A random small history: 2 or 3 sessions, up to `max_ops` operations over keys x, y and z,
/// every written value unique; reads return some write of their key, or the initial value,
/// so many histories are not causally consistent. Some writes are `info`.
pub fn random_small(seed: u64, max_ops: usize) -> Vec<(u64, Vec<TextOp>)> {
    let mut rng = SplitMix64::for_stream(seed, 0, 0xca05a1);
    let sessions = 2 + rng.below(2) as usize;
    let total = 3 + rng.below(max_ops.saturating_sub(2).max(1) as u64) as usize;
    let keys = ["x", "y", "z"];
    let nkeys = 2 + rng.below(2);
    // First the shape: (session, write?, key) in one random interleaving of the sessions.
    let mut steps: Vec<(usize, bool, usize)> = Vec::new();
    for _ in 0..total {
        let s = rng.below(sessions as u64) as usize;
        steps.push((s, rng.chance(0.45), rng.below(nkeys) as usize));
    }
    // Reads mostly return a write made earlier in the interleaving (or the initial value),
    // as a store with stale replicas would; sometimes any write of the key, even a later one.
    let anywhere = rng.chance(0.3);
    let mut next = 1i64;
    let mut written: [Vec<i64>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    let mut out: Vec<(u64, Vec<TextOp>)> = (0..sessions as u64).map(|s| (s, Vec::new())).collect();
    let mut reads = Vec::new();
    let last_of: Vec<usize> = (0..sessions)
        .map(|s| steps.iter().rposition(|x| x.0 == s).unwrap_or(0))
        .collect();
    for (i, &(s, write, key)) in steps.iter().enumerate() {
        if write {
            written[key].push(next);
            // An info write ends its session, as a process does in the history.
            let info = last_of[s] == i && rng.chance(0.2);
            out[s].1.push(TextOp {
                f: "write",
                key: keys[key].to_owned(),
                value: Value::from(next),
                kind: if info { EventType::Info } else { EventType::Ok },
                siblings: false,
            });
            next += 1;
        } else {
            reads.push((s, out[s].1.len(), key, written[key].len()));
            out[s].1.push(TextOp {
                f: "read",
                key: keys[key].to_owned(),
                value: Value::Null,
                kind: EventType::Ok,
                siblings: false,
            });
        }
    }
    for (s, at, key, seen) in reads {
        let range = if anywhere { written[key].len() } else { seen };
        let pick = rng.below(range as u64 + 1) as usize;
        out[s].1[at].value = written[key]
            .get(pick)
            .map_or(Value::Null, |&v| Value::from(v));
    }
    out.retain(|(_, ops)| !ops.is_empty());
    out
}

/// A large history from a simulated causally consistent store: `replicas` replicas apply one
/// global sequence of writes, each lagging behind it by a random amount; a session stays on
/// one replica; a write is appended to the sequence and its replica catches up to it first (so
/// every write follows everything its session saw). Reads return the replica's value. Valid
/// for CC, CCv and CM. With `plant`, one late read of a key its own session wrote returns the
/// initial value instead: a read-your-writes violation.
pub fn large(seed: u64, ops: usize, sessions: usize, keys: usize, plant: bool) -> History {
    let mut rng = SplitMix64::for_stream(seed, 1, 0xca05a1);
    let replicas = 5usize;
    let mut log: Vec<(usize, i64)> = Vec::new();
    let mut applied = vec![0usize; replicas];
    let mut state: Vec<Vec<Option<i64>>> = vec![vec![None; keys]; replicas];
    let mut lists: Vec<(u64, Vec<TextOp>)> =
        (0..sessions as u64).map(|s| (s, Vec::new())).collect();
    let mut next = 1i64;
    let mut written_by: Vec<Vec<bool>> = vec![vec![false; keys]; sessions];
    let mut planted = !plant;
    for i in 0..ops {
        let s = rng.below(sessions as u64) as usize;
        let rep = s % replicas;
        // The replica catches up a little.
        let behind = log.len() - applied[rep];
        let step = rng.below(behind as u64 + 1) as usize;
        for &(k, v) in &log[applied[rep]..applied[rep] + step] {
            state[rep][k] = Some(v);
        }
        applied[rep] += step;
        let key = rng.below(keys as u64) as usize;
        if rng.chance(0.5) {
            for &(k, v) in &log[applied[rep]..] {
                state[rep][k] = Some(v);
            }
            log.push((key, next));
            applied[rep] = log.len();
            state[rep][key] = Some(next);
            written_by[s][key] = true;
            lists[s].1.push(TextOp {
                f: "write",
                key: format!("k{key}"),
                value: Value::from(next),
                kind: EventType::Ok,
                siblings: false,
            });
            next += 1;
        } else {
            let mut value = state[rep][key].map_or(Value::Null, Value::from);
            if !planted && i > ops * 3 / 4 && written_by[s][key] {
                value = Value::Null;
                planted = true;
            }
            lists[s].1.push(TextOp {
                f: "read",
                key: format!("k{key}"),
                value,
                kind: EventType::Ok,
                siblings: false,
            });
        }
    }
    history(&lists)
}
