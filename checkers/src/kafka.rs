//! The kafka checker: Maelstrom's `kafka` workload (jepsen-io/maelstrom,
//! src/maelstrom/workload/kafka.clj), whose checker is Jepsen's (jepsen.tests.kafka,
//! Kingsbury): append-only logs, one per key, in which each offset holds one message.
//!
//! The history, as the Maelstrom adapter records it:
//!
//! - `{"f":"send","key":k,"value":msg}`, ok value `[offset, msg]`;
//! - `{"f":"poll","value":{k: offset, ...}}` (no key: the offsets to read from), ok value
//!   `{k: [[offset, msg], ...], ...}`;
//! - `{"f":"commit_offsets","value":{k: offset, ...}}`, ok value the same map;
//! - `{"f":"list_committed_offsets","value":[k, ...]}`, ok value `{k: offset, ...}` (a key
//!   with no committed offset is left out).
//!
//! What is known of each key's log comes from the acknowledged sends (the offset each got) and
//! the ok polls (every `[offset, msg]` they returned). Anomalies, each naming its operations:
//!
//! - **duplicate-offset**: two acknowledged sends to one key got the same offset.
//! - **inconsistent-offset**: one offset of a key holds one message for one operation and
//!   another for another (a send's acknowledgement and a poll, or two polls).
//! - **duplicate-message**: one message at two offsets of a key (every send's message is
//!   unique, so it was appended twice).
//! - **unexpected-message**: a poll returned a message no send ever sent to that key, or one
//!   whose every send failed.
//! - **nonmonotonic-poll**: a poll's messages for a key are not in strictly increasing offset
//!   order, or begin below the offset it asked for.
//! - **poll-skip**: a poll passed over an offset known to hold a message (between the offset
//!   it asked for and its first message, or between two messages it returned) that another
//!   poll did return. The log returns contiguous messages from the offset asked for: offsets
//!   may be sparse, but not skip what exists.
//! - **lost-write**: Jepsen's and Maelstrom's definition: an acknowledged send at offset o of
//!   key k whose message no poll ever returned, though polls returned k's messages at offsets
//!   up to at least o. There is no recency requirement (a log may be slow to show a message),
//!   but once later offsets were read, a consumer moving forward will never see it. The
//!   anomaly names the send, the poll that read k's highest offset, and the polls that passed
//!   over o.
//! - **nonmonotonic-send**: a process's later send to a key got a lower offset than its
//!   earlier one (its sends are sequential: the later began after the earlier was
//!   acknowledged).
//! - **committed-offset-regression**: a `commit_offsets` of k to o was acknowledged, and a
//!   `list_committed_offsets` invoked after that returned less than o for k, or nothing. Maelstrom
//!   asks a node to *advance* the committed offset; a node that lets a slower consumer's
//!   commit take it back fails this.
//!
//! Not a violation, only counted: **unseen** messages, acknowledged at an offset above the
//! highest any poll of their key returned (Jepsen's `unseen`).

use crate::registry::Checker;
use crate::result::{brief, line, natural_key, secs, widen, Anomaly, CheckerResult, Judgement};
use crate::{CheckError, Options};
use history::{EventType, History, Paired};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

/// Anomalies described per kind per key (the rest are counted).
pub const MAX_ANOMALIES_PER_KIND: usize = 20;
/// Offsets (or operations) listed per anomaly.
pub const MAX_LISTED: usize = 5;

/// Every kind of anomaly, in the order the checks run.
pub const KINDS: [&str; 9] = [
    "duplicate-offset",
    "inconsistent-offset",
    "duplicate-message",
    "unexpected-message",
    "nonmonotonic-poll",
    "poll-skip",
    "lost-write",
    "nonmonotonic-send",
    "committed-offset-regression",
];

/// One key's figures (the checker's `detail.keys`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KafkaKey {
    pub key: String,
    pub verdict: Judgement,
    pub sends_ok: usize,
    pub sends_failed: usize,
    pub sends_indeterminate: usize,
    /// Ok polls that returned messages of this key, and the distinct messages they returned.
    pub polls: usize,
    pub messages_polled: usize,
    pub highest_offset_polled: Option<i64>,
    /// Acknowledged messages above the highest offset polled: never seen, not a violation.
    pub unseen: usize,
    pub commits_ok: usize,
    pub highest_offset_committed: Option<i64>,
    /// Ok list_committed_offsets that asked for this key.
    pub lists: usize,
    /// Anomalies by kind (all of them, including those not described).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub anomalies: BTreeMap<String, usize>,
}

/// The registry's kafka checker.
pub struct KafkaChecker;

impl Checker for KafkaChecker {
    fn name(&self) -> &'static str {
        "kafka"
    }

    fn property(&self) -> &'static str {
        "kafka"
    }

    fn about(&self) -> &'static str {
        "Maelstrom's kafka: offsets agree across sends and polls, polls move forward without \
         skipping, no acknowledged message is passed over for good, committed offsets never go \
         back"
    }

    fn check(
        &self,
        history: &History,
        paired: &Paired,
        _opts: &Options,
    ) -> Result<CheckerResult, CheckError> {
        Ok(check(history, paired))
    }
}

/// Where a message was seen at an offset: the first acknowledged send and the first ok poll
/// that put it there (op ids).
#[derive(Clone, Copy, Debug)]
struct Seen {
    msg: u32,
    send: Option<usize>,
    poll: Option<usize>,
}

impl Seen {
    fn first(&self) -> usize {
        self.send.or(self.poll).expect("seen by a send or a poll")
    }
}

struct Ack {
    op: usize,
    msg: u32,
    offset: i64,
}

struct PollRec {
    op: usize,
    requested: Option<i64>,
    pairs: Vec<(i64, u32)>,
}

#[derive(Default)]
struct KeyData {
    /// Every send's op id, by message.
    attempts: HashMap<u32, Vec<usize>>,
    acks: Vec<Ack>,
    sends_failed: usize,
    sends_indeterminate: usize,
    polls: Vec<PollRec>,
    /// Offset -> the distinct messages seen there.
    log: BTreeMap<i64, Vec<Seen>>,
    /// Message -> the distinct offsets it was seen at.
    offsets_of: HashMap<u32, Vec<i64>>,
    /// Messages some ok poll returned.
    polled: HashSet<u32>,
    /// The highest offset polled, and the first poll that returned it.
    max_polled: Option<(i64, usize)>,
    /// Ok commits: (completion position, offset, op id).
    commits: Vec<(usize, i64, usize)>,
}

impl KeyData {
    fn observe(&mut self, offset: i64, msg: u32, send: Option<usize>, poll: Option<usize>) {
        let at = self.log.entry(offset).or_default();
        match at.iter_mut().find(|s| s.msg == msg) {
            Some(s) => {
                s.send = s.send.or(send);
                s.poll = s.poll.or(poll);
            }
            None => at.push(Seen { msg, send, poll }),
        }
        let offs = self.offsets_of.entry(msg).or_default();
        if !offs.contains(&offset) {
            offs.push(offset);
        }
    }
}

/// Messages, interned: integers (what the workload sends) by value, anything else by its JSON.
#[derive(Default)]
struct Messages {
    ints: HashMap<i64, u32>,
    others: HashMap<String, u32>,
    values: Vec<Value>,
}

impl Messages {
    fn id(&mut self, v: &Value) -> u32 {
        let next = u32::try_from(self.values.len()).expect("fewer than 2^32 messages");
        let id = match v.as_i64() {
            Some(i) => *self.ints.entry(i).or_insert(next),
            None => *self.others.entry(v.to_string()).or_insert(next),
        };
        if id == next {
            self.values.push(v.clone());
        }
        id
    }

    fn show(&self, m: u32) -> String {
        brief(&self.values[m as usize])
    }
}

/// Checks every send, poll, commit_offsets and list_committed_offsets (others are ignored).
pub fn check(history: &History, paired: &Paired) -> CheckerResult {
    let started = Instant::now();
    let mut msgs = Messages::default();
    let mut keys: BTreeMap<String, KeyData> = BTreeMap::new();
    let mut lists: Vec<usize> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut malformed = 0usize;
    let mut polls_ok = 0usize;
    let mut note = |notes: &mut Vec<String>, text: String| {
        malformed += 1;
        if notes.len() < 5 {
            notes.push(text);
        }
    };
    for (i, op) in paired.ops.iter().enumerate() {
        let ok = op.kind == EventType::Ok && op.complete.is_some();
        let at = line(history, op.complete.unwrap_or(op.invoke));
        match op.f.as_str() {
            "send" => {
                let Some(k) = &op.key else {
                    note(
                        &mut notes,
                        format!("the send at line {at} has no key; ignored"),
                    );
                    continue;
                };
                let msg = msgs.id(&op.input);
                let kd = keys.entry(k.clone()).or_default();
                kd.attempts.entry(msg).or_default().push(i);
                match op.kind {
                    EventType::Ok if ok => match op.output.get(0).and_then(Value::as_i64) {
                        Some(offset) => {
                            kd.acks.push(Ack { op: i, msg, offset });
                            kd.observe(offset, msg, Some(i), None);
                        }
                        None => note(
                            &mut notes,
                            format!(
                                "the send at line {at} returned {}, not [offset, msg]; ignored",
                                brief(&op.output)
                            ),
                        ),
                    },
                    EventType::Fail => kd.sends_failed += 1,
                    _ => kd.sends_indeterminate += 1,
                }
            }
            "poll" if ok => {
                polls_ok += 1;
                let empty = Map::new();
                let map = match &op.output {
                    Value::Object(m) => m,
                    Value::Null => &empty,
                    other => {
                        note(
                            &mut notes,
                            format!(
                                "the poll at line {at} returned {}, not a map of keys; ignored",
                                brief(other)
                            ),
                        );
                        continue;
                    }
                };
                for (k, pairs) in map {
                    let parsed: Option<Vec<(i64, u32)>> = match pairs {
                        Value::Array(items) => items
                            .iter()
                            .map(|p| {
                                let o = p.get(0)?.as_i64()?;
                                let m = p.get(1)?;
                                Some((o, msgs.id(m)))
                            })
                            .collect(),
                        Value::Null => Some(Vec::new()),
                        _ => None,
                    };
                    let Some(pairs) = parsed else {
                        note(
                            &mut notes,
                            format!(
                                "the poll at line {at} returned {} for {k}, not a list of \
                                 [offset, msg]; ignored",
                                brief(pairs)
                            ),
                        );
                        continue;
                    };
                    let kd = keys.entry(k.clone()).or_default();
                    for &(o, m) in &pairs {
                        kd.observe(o, m, None, Some(i));
                        kd.polled.insert(m);
                        if kd.max_polled.is_none_or(|(max, _)| o > max) {
                            kd.max_polled = Some((o, i));
                        }
                    }
                    kd.polls.push(PollRec {
                        op: i,
                        requested: op.input.get(k).and_then(Value::as_i64),
                        pairs,
                    });
                }
            }
            "commit_offsets" if ok => {
                let Some(map) = op.input.as_object() else {
                    note(
                        &mut notes,
                        format!("the commit_offsets at line {at} has no map of offsets; ignored"),
                    );
                    continue;
                };
                for (k, o) in map {
                    if let Some(o) = o.as_i64() {
                        let complete = op.complete.expect("ok ops completed");
                        keys.entry(k.clone())
                            .or_default()
                            .commits
                            .push((complete, o, i));
                    }
                }
            }
            "list_committed_offsets" if ok => lists.push(i),
            _ => {}
        }
    }

    let ctx = Ctx {
        history,
        paired,
        msgs: &msgs,
    };
    let mut found: Vec<Anomaly> = Vec::new();
    let mut figures: Vec<KafkaKey> = Vec::new();
    let mut order: Vec<&String> = keys.keys().collect();
    order.sort_by_cached_key(|k| natural_key(&Some((*k).clone())));
    for k in order {
        let kd = &keys[k];
        let mut out = Found::default();
        ctx.offsets(k, kd, &mut out);
        ctx.unexpected(k, kd, &mut out);
        ctx.polls(k, kd, &mut out);
        let unseen = ctx.lost(k, kd, &mut out);
        ctx.sends(k, kd, &mut out);
        let list_count = ctx.committed(k, kd, &lists, &mut out, &mut |text| {
            note(&mut notes, text);
        });
        let mut polled_by: HashSet<usize> = HashSet::new();
        for p in &kd.polls {
            if !p.pairs.is_empty() {
                polled_by.insert(p.op);
            }
        }
        figures.push(KafkaKey {
            key: k.clone(),
            verdict: if out.counts.is_empty() {
                Judgement::Valid
            } else {
                Judgement::Invalid
            },
            sends_ok: kd.acks.len(),
            sends_failed: kd.sends_failed,
            sends_indeterminate: kd.sends_indeterminate,
            polls: polled_by.len(),
            messages_polled: kd.polled.len(),
            highest_offset_polled: kd.max_polled.map(|(o, _)| o),
            unseen,
            commits_ok: kd.commits.len(),
            highest_offset_committed: kd.commits.iter().map(|c| c.1).max(),
            lists: list_count,
            anomalies: out.counts.clone(),
        });
        found.extend(out.anomalies);
    }

    let mut summary = vec![
        "Maelstrom's kafka checks: offsets agree across sends and polls, polls move forward \
         without skipping, no acknowledged message is passed over for good, committed offsets \
         never go back"
            .to_owned(),
    ];
    for kind in KINDS {
        let n: usize = figures.iter().filter_map(|f| f.anomalies.get(kind)).sum();
        if n > 0 {
            summary.push(format!("{n} {kind}"));
        }
    }
    summary.extend(found.iter().take(5).map(|a| a.title.clone()));
    for f in figures.iter().filter(|f| f.unseen > 0) {
        summary.push(format!(
            "key {}: {} acknowledged messages above the highest offset polled ({}) were never \
             polled: not a violation (no recency is required)",
            f.key,
            f.unseen,
            f.highest_offset_polled
                .map_or_else(|| "none".to_owned(), |o| o.to_string())
        ));
    }
    summary.extend(notes.iter().cloned());
    if malformed > notes.len() {
        summary.push(format!(
            "... and {} more values that were not what the adapter records",
            malformed - notes.len()
        ));
    }
    let verdict = if !found.is_empty() {
        Judgement::Invalid
    } else if polls_ok == 0 {
        summary.push("no poll completed ok: nothing was read to check".into());
        Judgement::Unknown
    } else if malformed > 0 {
        summary.push(format!(
            "{malformed} values could not be read (see the notes above)"
        ));
        Judgement::Unknown
    } else {
        Judgement::Valid
    };
    CheckerResult {
        checker: "kafka".into(),
        verdict,
        promised: true,
        summary,
        anomalies: found,
        elapsed_us: started.elapsed().as_micros() as u64,
        detail: serde_json::json!({ "keys": figures, "notes": notes }),
    }
}

/// One key's anomalies, described up to [`MAX_ANOMALIES_PER_KIND`] per kind, all counted.
#[derive(Default)]
struct Found {
    anomalies: Vec<Anomaly>,
    counts: BTreeMap<String, usize>,
}

impl Found {
    fn push(&mut self, kind: &str, make: impl FnOnce() -> Anomaly) {
        let n = self.counts.entry(kind.to_owned()).or_default();
        *n += 1;
        if *n <= MAX_ANOMALIES_PER_KIND {
            self.anomalies.push(make());
        }
    }
}

struct Ctx<'a> {
    history: &'a History,
    paired: &'a Paired,
    msgs: &'a Messages,
}

impl Ctx<'_> {
    /// "the poll by process 3 via n1 (invoked at 1.20 s, ok at 1.31 s, lines 7–9)".
    fn op(&self, i: usize) -> String {
        let op = &self.paired.ops[i];
        let inv = &self.history.events[op.invoke];
        let via = op.node.as_deref().unwrap_or("an unnamed node");
        let f = op.f.replace('_', " ");
        match op.complete {
            Some(c) => format!(
                "the {f} by process {} via {via} (invoked at {}, {} at {}, lines {}–{})",
                op.process,
                secs(inv.time),
                op.kind,
                secs(self.history.events[c].time),
                line(self.history, op.invoke),
                line(self.history, c)
            ),
            None => format!(
                "the {f} by process {} via {via} (invoked at {}, line {}, never completed)",
                op.process,
                secs(inv.time),
                line(self.history, op.invoke)
            ),
        }
    }

    /// The anomaly, its ops (op ids, in the order the sentences use them) as history indices
    /// and its span covering them.
    fn anomaly(
        &self,
        kind: &str,
        key: &str,
        title: String,
        sentences: Vec<String>,
        ops: &[usize],
    ) -> Anomaly {
        let mut span_ns = None;
        let mut indices = Vec::new();
        for &i in ops {
            let op = &self.paired.ops[i];
            let inv = &self.history.events[op.invoke];
            let end = op
                .complete
                .map_or(inv.time, |c| self.history.events[c].time);
            widen(&mut span_ns, inv.time, end);
            if !indices.contains(&inv.index) {
                indices.push(inv.index);
            }
        }
        Anomaly {
            kind: kind.to_owned(),
            key: Some(key.to_owned()),
            title,
            sentences,
            ops: indices,
            cycle: Vec::new(),
            span_ns,
        }
    }

    fn m(&self, m: u32) -> String {
        self.msgs.show(m)
    }

    /// duplicate-offset, inconsistent-offset, duplicate-message.
    fn offsets(&self, k: &str, kd: &KeyData, out: &mut Found) {
        for (&o, seen) in kd.log.iter().filter(|(_, s)| s.len() > 1) {
            let sends: Vec<&Seen> = seen.iter().filter(|s| s.send.is_some()).collect();
            let kind = if sends.len() > 1 {
                "duplicate-offset"
            } else {
                "inconsistent-offset"
            };
            out.push(kind, || {
                let shown: Vec<String> = seen.iter().map(|s| self.m(s.msg)).collect();
                let mut sentences = vec![format!(
                    "Offset {o} of {k} holds {} different messages ({}), but an offset holds \
                     one message:",
                    seen.len(),
                    shown.join(", ")
                )];
                let mut ops = Vec::new();
                for s in seen.iter().take(MAX_LISTED) {
                    if let Some(send) = s.send {
                        ops.push(send);
                        sentences.push(format!(
                            "  - {} sent {} and was acknowledged at offset {o}",
                            self.op(send),
                            self.m(s.msg)
                        ));
                    }
                    if let Some(poll) = s.poll {
                        ops.push(poll);
                        sentences.push(format!(
                            "  - {} returned {} at offset {o}",
                            self.op(poll),
                            self.m(s.msg)
                        ));
                    }
                }
                let title = if kind == "duplicate-offset" {
                    format!(
                        "Key {k}: offset {o} acknowledged to {} sends ({})",
                        sends.len(),
                        sends
                            .iter()
                            .map(|s| self.m(s.msg))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                } else {
                    format!(
                        "Key {k}: offset {o} holds message {} for one operation and {} for \
                         another",
                        shown[0], shown[1]
                    )
                };
                self.anomaly(kind, k, title, sentences, &ops)
            });
        }
        let mut dups: Vec<(u32, &Vec<i64>)> = kd
            .offsets_of
            .iter()
            .filter(|(_, o)| o.len() > 1)
            .map(|(&m, o)| (m, o))
            .collect();
        dups.sort_by_key(|(_, o)| o.iter().min().copied());
        for (m, offs) in dups {
            out.push("duplicate-message", || {
                let mut offs = offs.clone();
                offs.sort_unstable();
                let mut sentences = vec![format!(
                    "Message {} of {k} is at {} offsets ({}); each send's message is unique, so \
                     it was appended more than once:",
                    self.m(m),
                    offs.len(),
                    offs.iter()
                        .map(i64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )];
                let mut ops = Vec::new();
                for o in offs.iter().take(MAX_LISTED) {
                    let s = kd.log[o]
                        .iter()
                        .find(|s| s.msg == m)
                        .expect("offsets_of and log agree");
                    let w = s.first();
                    ops.push(w);
                    sentences.push(format!("  - offset {o}: seen by {}", self.op(w)));
                }
                let title = format!(
                    "Key {k}: message {} at offsets {} and {}",
                    self.m(m),
                    offs[0],
                    offs[1]
                );
                self.anomaly("duplicate-message", k, title, sentences, &ops)
            });
        }
    }

    /// unexpected-message: polled, but never sent to this key, or every send of it failed.
    fn unexpected(&self, k: &str, kd: &KeyData, out: &mut Found) {
        let mut odd: Vec<(i64, u32, usize)> = Vec::new();
        for (&o, seen) in &kd.log {
            for s in seen {
                let Some(poll) = s.poll else { continue };
                let attempts = kd.attempts.get(&s.msg);
                let failed = attempts.is_some_and(|a| {
                    a.iter()
                        .all(|&i| self.paired.ops[i].kind == EventType::Fail)
                });
                if attempts.is_none() || failed {
                    odd.push((o, s.msg, poll));
                }
            }
        }
        let mut reported = HashSet::new();
        for (o, m, poll) in odd {
            if !reported.insert(m) {
                continue;
            }
            out.push("unexpected-message", || {
                let (why, ops) = match kd.attempts.get(&m) {
                    Some(a) => (
                        format!(
                            ", but every send of it failed ({} among them), a promise that it \
                             would never be appended",
                            self.op(a[0])
                        ),
                        vec![poll, a[0]],
                    ),
                    None => (", but no send ever sent it there".to_owned(), vec![poll]),
                };
                let title = format!(
                    "Key {k}: a poll returned message {}, which {}",
                    self.m(m),
                    if ops.len() > 1 {
                        "failed to send"
                    } else {
                        "nobody sent"
                    }
                );
                let sentences = vec![format!(
                    "{} returned message {} at offset {o} of {k}{why}.",
                    capital(&self.op(poll)),
                    self.m(m)
                )];
                self.anomaly("unexpected-message", k, title, sentences, &ops)
            });
        }
    }

    /// nonmonotonic-poll and poll-skip, poll by poll; skips of messages no poll ever returned
    /// are left to lost-write.
    fn polls(&self, k: &str, kd: &KeyData, out: &mut Found) {
        let known: Vec<i64> = kd.log.keys().copied().collect();
        for p in &kd.polls {
            // An offset the poll returned out of order is nonmonotonic, not skipped.
            let returned: HashSet<i64> = p.pairs.iter().map(|&(o, _)| o).collect();
            let mut skipped: Vec<i64> = Vec::new();
            let mut skipped_total = 0usize;
            // Offsets strictly above `lo` and below the next message's are passed over.
            let mut lo = p.requested.map(|r| r.saturating_sub(1));
            let mut prev: Option<i64> = None;
            for (n, &(o, _)) in p.pairs.iter().enumerate() {
                let backwards = match (prev, p.requested) {
                    (Some(before), _) if o <= before => Some(format!(
                        "offset {o} came after offset {before} in the same poll",
                    )),
                    (None, Some(r)) if o < r => Some(format!(
                        "it asked for offsets from {r} and its first message is at {o}"
                    )),
                    _ => None,
                };
                if let Some(why) = backwards {
                    out.push("nonmonotonic-poll", || {
                        let offsets: Vec<String> =
                            p.pairs.iter().map(|(o, _)| o.to_string()).collect();
                        let title = format!("Key {k}: a poll's offsets went backwards ({why})");
                        let sentences = vec![
                            format!(
                                "{} returned {k}'s offsets [{}]{}: {why}.",
                                capital(&self.op(p.op)),
                                cut(&offsets),
                                p.requested
                                    .map(|r| format!(", asked from {r}"))
                                    .unwrap_or_default()
                            ),
                            format!(
                                "A poll returns a key's messages in increasing offset order, \
                                 from the offset asked for (message {} of {} is where it went \
                                 wrong).",
                                n + 1,
                                p.pairs.len()
                            ),
                        ];
                        self.anomaly("nonmonotonic-poll", k, title, sentences, &[p.op])
                    });
                    lo = lo.max(Some(o));
                    prev = prev.max(Some(o));
                    continue;
                }
                if let Some(l) = lo {
                    let from = known.partition_point(|&x| x <= l);
                    let to = known.partition_point(|&x| x < o);
                    for &x in &known[from..to.max(from)] {
                        // A skipped message nobody ever polled is a lost write, told there.
                        if !returned.contains(&x)
                            && kd.log[&x].iter().any(|s| kd.polled.contains(&s.msg))
                        {
                            skipped_total += 1;
                            if skipped.len() < MAX_LISTED {
                                skipped.push(x);
                            }
                        }
                    }
                }
                lo = Some(o);
                prev = Some(o);
            }
            if skipped_total == 0 {
                continue;
            }
            out.push("poll-skip", || {
                let mut sentences = vec![format!(
                    "{} returned {k}'s offsets [{}]{}, passing over {} known to hold {}:",
                    capital(&self.op(p.op)),
                    cut(&p
                        .pairs
                        .iter()
                        .map(|(o, _)| o.to_string())
                        .collect::<Vec<_>>()),
                    p.requested
                        .map(|r| format!(" when asked from {r}"))
                        .unwrap_or_default(),
                    if skipped_total == 1 {
                        "1 offset".to_owned()
                    } else {
                        format!("{skipped_total} offsets")
                    },
                    if skipped_total == 1 {
                        "a message"
                    } else {
                        "messages"
                    }
                )];
                let mut ops = vec![p.op];
                for x in &skipped {
                    let s = &kd.log[x][0];
                    let w = s.first();
                    ops.push(w);
                    sentences.push(format!(
                        "  - offset {x} holds message {}, as {} shows",
                        self.m(s.msg),
                        self.op(w)
                    ));
                }
                sentences.push(
                    "A poll returns contiguous messages from the offset it asks for: offsets may \
                     be sparse, but what exists is not skipped."
                        .into(),
                );
                let title = format!(
                    "Key {k}: a poll passed over offset {}, which holds message {}",
                    skipped[0],
                    self.m(kd.log[&skipped[0]][0].msg)
                );
                self.anomaly("poll-skip", k, title, sentences, &ops)
            });
        }
    }

    /// lost-write; returns the number of unseen messages (above the highest offset polled).
    fn lost(&self, k: &str, kd: &KeyData, out: &mut Found) -> usize {
        let max = kd.max_polled;
        let mut unseen = 0;
        let mut lost: Vec<&Ack> = Vec::new();
        let mut reported = HashSet::new();
        for a in &kd.acks {
            if kd.polled.contains(&a.msg) || !reported.insert(a.msg) {
                continue;
            }
            match max {
                Some((m, _)) if a.offset <= m => lost.push(a),
                _ => unseen += 1,
            }
        }
        let Some((max_offset, max_poll)) = max else {
            return unseen;
        };
        lost.sort_by_key(|a| a.offset);
        for a in lost {
            out.push("lost-write", || {
                // The polls that returned messages on both sides of the lost offset, or asked
                // from at or below it and began above it.
                let passed: Vec<&PollRec> = kd
                    .polls
                    .iter()
                    .filter(|p| {
                        let below = p.requested.is_some_and(|r| r <= a.offset)
                            || p.pairs.iter().any(|&(o, _)| o < a.offset);
                        below
                            && p.pairs.iter().any(|&(o, _)| o > a.offset)
                            && !p.pairs.iter().any(|&(o, _)| o == a.offset)
                    })
                    .collect();
                let mut sentences = vec![
                    format!(
                        "{} sent message {} to {k} and was acknowledged at offset {}.",
                        capital(&self.op(a.op)),
                        self.m(a.msg),
                        a.offset
                    ),
                    format!(
                        "No poll ever returned it, though {} returned {k}'s offset {max_offset}.",
                        self.op(max_poll)
                    ),
                ];
                let mut ops = vec![a.op, max_poll];
                if !passed.is_empty() {
                    sentences.push(format!(
                        "{} polls passed over offset {}:",
                        passed.len(),
                        a.offset
                    ));
                    for p in passed.iter().take(MAX_LISTED) {
                        ops.push(p.op);
                        let below = p
                            .pairs
                            .iter()
                            .map(|&(o, _)| o)
                            .filter(|&o| o < a.offset)
                            .max();
                        let above = p
                            .pairs
                            .iter()
                            .map(|&(o, _)| o)
                            .filter(|&o| o > a.offset)
                            .min()
                            .expect("chosen for a message above");
                        let from = match below {
                            Some(b) => format!("returned offset {b} then {above}"),
                            None => format!(
                                "asked from {} and began at {above}",
                                p.requested.unwrap_or_default()
                            ),
                        };
                        sentences.push(format!("  - {}: {from}", self.op(p.op)));
                    }
                }
                sentences.push(
                    "Consumers move forward through a log, so once a poll has read past an \
                     offset they never come back to it: the message is lost to them."
                        .into(),
                );
                let title = if a.offset == max_offset {
                    format!(
                        "Key {k}: message {}, acknowledged at offset {}, was never polled; a poll \
                         returned another message there",
                        self.m(a.msg),
                        a.offset
                    )
                } else {
                    format!(
                        "Key {k}: message {}, acknowledged at offset {}, was never polled though \
                         offset {max_offset} was",
                        self.m(a.msg),
                        a.offset
                    )
                };
                self.anomaly("lost-write", k, title, sentences, &ops)
            });
        }
        unseen
    }

    /// nonmonotonic-send: per process, each acknowledged send to a key gets a higher offset
    /// than the one before.
    fn sends(&self, k: &str, kd: &KeyData, out: &mut Found) {
        let mut last: HashMap<u64, &Ack> = HashMap::new();
        for a in &kd.acks {
            let p = self.paired.ops[a.op].process;
            if let Some(before) = last.get(&p) {
                if a.offset <= before.offset {
                    out.push("nonmonotonic-send", || {
                        let title = format!(
                            "Key {k}: process {p}'s send got offset {} after its earlier one got \
                             {}",
                            a.offset, before.offset
                        );
                        let sentences = vec![
                            format!(
                                "{} was acknowledged at offset {}.",
                                capital(&self.op(before.op)),
                                before.offset
                            ),
                            format!(
                                "Then {} was acknowledged at offset {}: it began after the first \
                                 was acknowledged, so it was appended after it, at a higher \
                                 offset.",
                                self.op(a.op),
                                a.offset
                            ),
                        ];
                        self.anomaly("nonmonotonic-send", k, title, sentences, &[before.op, a.op])
                    });
                }
            }
            last.insert(p, a);
        }
    }

    /// committed-offset-regression; returns how many ok lists asked for `k`.
    fn committed(
        &self,
        k: &str,
        kd: &KeyData,
        lists: &[usize],
        out: &mut Found,
        note: &mut dyn FnMut(String),
    ) -> usize {
        let mut commits = kd.commits.clone();
        commits.sort_unstable();
        // Running maximum of the committed offset, by completion position.
        let mut best: Vec<(usize, i64, usize)> = Vec::with_capacity(commits.len());
        for c in commits {
            match best.last() {
                Some(b) if b.1 >= c.1 => {
                    let b = *b;
                    best.push((c.0, b.1, b.2));
                }
                _ => best.push(c),
            }
        }
        let mut asked = 0;
        for &l in lists {
            let op = &self.paired.ops[l];
            let wants = match &op.input {
                Value::Array(keys) => keys.iter().any(|x| x.as_str() == Some(k)),
                _ => op.output.get(k).is_some(),
            };
            if !wants {
                continue;
            }
            asked += 1;
            let returned = op.output.get(k);
            let value = match returned {
                None | Some(Value::Null) => None,
                Some(v) => match v.as_i64() {
                    Some(n) => Some(n),
                    None => {
                        note(format!(
                            "the list_committed_offsets at line {} returned {} for {k}, not an \
                             offset; ignored",
                            line(self.history, op.complete.unwrap_or(op.invoke)),
                            brief(v)
                        ));
                        continue;
                    }
                },
            };
            let before = best.partition_point(|b| b.0 < op.invoke);
            let Some(&(_, committed, commit)) = before.checked_sub(1).and_then(|i| best.get(i))
            else {
                continue;
            };
            if value.is_some_and(|v| v >= committed) {
                continue;
            }
            out.push("committed-offset-regression", || {
                let got = value.map_or_else(
                    || format!("no committed offset for {k}"),
                    |v| format!("{v} for {k}"),
                );
                let title = format!(
                    "Key {k}: committed offsets listed as {} after a commit of {committed} was \
                     acknowledged",
                    value.map_or_else(|| "absent".to_owned(), |v| v.to_string())
                );
                let sentences = vec![
                    format!(
                        "{} committed {k} at offset {committed}.",
                        capital(&self.op(commit))
                    ),
                    format!("After it was acknowledged, {} returned {got}.", self.op(l)),
                    "A committed offset only moves forward: a consumer that starts from it would \
                     read again what was already processed."
                        .into(),
                ];
                self.anomaly(
                    "committed-offset-regression",
                    k,
                    title,
                    sentences,
                    &[commit, l],
                )
            });
        }
        asked
    }
}

fn capital(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A list of offsets for a sentence: the first ten, then how many more.
fn cut(items: &[String]) -> String {
    const SHOWN: usize = 10;
    if items.len() <= SHOWN {
        items.join(", ")
    } else {
        format!(
            "{}, ... {} more",
            items[..SHOWN].join(", "),
            items.len() - SHOWN
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{Builder, Ev};
    use serde_json::json;

    fn run(b: &Builder) -> CheckerResult {
        b.check_with("kafka")
    }

    fn kinds(r: &CheckerResult) -> Vec<&str> {
        r.anomalies.iter().map(|a| a.kind.as_str()).collect()
    }

    /// A send of `msg` to `key` acknowledged at `offset`; returns its invocation's index.
    fn send(b: &mut Builder, p: u64, key: &str, msg: i64, offset: i64) -> u64 {
        b.op(
            p,
            "send",
            key,
            json!(msg),
            Ev::ok_value(json!([offset, msg])),
        )
    }

    fn poll(b: &mut Builder, p: u64, from: Value, got: Value) -> u64 {
        b.keyless(p, "n1", "poll", from, Ev::ok_value(got))
    }

    #[test]
    fn a_log_read_in_order_with_sparse_offsets_and_commits_passes() {
        let mut b = Builder::new();
        send(&mut b, 0, "k1", 10, 0);
        send(&mut b, 1, "k1", 11, 2); // offsets may be sparse
        send(&mut b, 0, "k2", 20, 0);
        b.op(2, "send", "k1", json!(12), Ev::info());
        b.op(3, "send", "k1", json!(13), Ev::fail());
        poll(
            &mut b,
            4,
            json!({"k1": 0, "k2": 0}),
            json!({"k1": [[0, 10], [2, 11]], "k2": [[0, 20]]}),
        );
        poll(&mut b, 5, json!({"k1": 1}), json!({"k1": [[2, 11]]}));
        poll(&mut b, 5, json!({"k1": 3}), json!({})); // nothing new: fine
        send(&mut b, 1, "k1", 14, 5);
        poll(&mut b, 4, json!({"k1": 3}), json!({"k1": [[5, 14]]}));
        b.keyless(4, "n1", "commit_offsets", json!({"k1": 5}), Ev::ok());
        b.keyless(
            5,
            "n2",
            "list_committed_offsets",
            json!(["k1", "k2"]),
            Ev::ok_value(json!({"k1": 5})),
        );
        let r = run(&b);
        assert_eq!(r.verdict, Judgement::Valid, "{:#?}", r.anomalies);
        let k1 = &r.detail["keys"][0];
        assert_eq!(k1["key"], json!("k1"));
        assert_eq!(k1["sends_ok"], json!(3));
        assert_eq!(k1["sends_indeterminate"], json!(1));
        assert_eq!(k1["highest_offset_polled"], json!(5));
        assert_eq!(k1["highest_offset_committed"], json!(5));
        assert_eq!(k1["lists"], json!(1));
    }

    #[test]
    fn two_sends_acknowledged_at_one_offset_are_rejected_naming_both() {
        let mut b = Builder::new();
        let a = send(&mut b, 0, "k1", 10, 0);
        let c = send(&mut b, 1, "k1", 11, 0);
        poll(&mut b, 2, json!({"k1": 0}), json!({"k1": [[0, 10]]}));
        let r = run(&b);
        assert_eq!(r.verdict, Judgement::Invalid);
        // Message 11 was never polled though offset 0 was: lost too.
        assert_eq!(kinds(&r), ["duplicate-offset", "lost-write"]);
        let d = &r.anomalies[0];
        assert_eq!(d.ops, vec![a, 4, c]);
        assert!(
            d.title
                .contains("offset 0 acknowledged to 2 sends (10, 11)"),
            "{}",
            d.title
        );
        assert_eq!(d.key.as_deref(), Some("k1"));
    }

    #[test]
    fn a_poll_that_disagrees_with_a_send_about_an_offset_is_inconsistent() {
        let mut b = Builder::new();
        send(&mut b, 0, "k1", 10, 0);
        let s = send(&mut b, 0, "k1", 11, 1);
        b.op(1, "send", "k1", json!(12), Ev::info());
        let p = poll(
            &mut b,
            2,
            json!({"k1": 0}),
            json!({"k1": [[0, 10], [1, 12]]}),
        );
        let r = run(&b);
        assert_eq!(kinds(&r), ["inconsistent-offset", "lost-write"]);
        let a = &r.anomalies[0];
        assert_eq!(a.ops, vec![s, p]);
        assert!(
            a.sentences[0].contains("Offset 1 of k1 holds 2 different messages (11, 12)"),
            "{:?}",
            a.sentences
        );
        assert!(a.sentences[1].contains("sent 11 and was acknowledged at offset 1"));
        assert!(a.sentences[2].contains("returned 12 at offset 1"));
    }

    #[test]
    fn one_message_at_two_offsets_and_messages_nobody_sent_are_rejected() {
        let mut b = Builder::new();
        send(&mut b, 0, "k1", 10, 0);
        b.op(1, "send", "k1", json!(11), Ev::fail());
        poll(
            &mut b,
            2,
            json!({"k1": 0}),
            json!({"k1": [[0, 10], [1, 10], [2, 11], [3, 99]]}),
        );
        let r = run(&b);
        assert_eq!(
            kinds(&r),
            [
                "duplicate-message",
                "unexpected-message",
                "unexpected-message"
            ]
        );
        assert!(
            r.anomalies[0]
                .title
                .contains("message 10 at offsets 0 and 1"),
            "{}",
            r.anomalies[0].title
        );
        assert!(r.anomalies[1].sentences[0].contains("every send of it failed"));
        assert!(r.anomalies[2].sentences[0].contains("no send ever sent it there"));
    }

    #[test]
    fn a_poll_going_backwards_is_nonmonotonic() {
        let mut b = Builder::new();
        send(&mut b, 0, "k1", 10, 0);
        send(&mut b, 0, "k1", 11, 1);
        send(&mut b, 0, "k1", 12, 2);
        let p = poll(
            &mut b,
            2,
            json!({"k1": 0}),
            json!({"k1": [[0, 10], [2, 12], [1, 11]]}),
        );
        let q = poll(
            &mut b,
            3,
            json!({"k1": 2}),
            json!({"k1": [[1, 11], [2, 12]]}),
        );
        let r = run(&b);
        assert_eq!(kinds(&r), ["nonmonotonic-poll", "nonmonotonic-poll"]);
        assert_eq!(r.anomalies[0].ops, vec![p]);
        assert!(
            r.anomalies[0]
                .title
                .contains("offset 1 came after offset 2"),
            "{}",
            r.anomalies[0].title
        );
        assert_eq!(r.anomalies[1].ops, vec![q]);
        assert!(
            r.anomalies[1]
                .title
                .contains("asked for offsets from 2 and its first message is at 1"),
            "{}",
            r.anomalies[1].title
        );
    }

    #[test]
    fn a_poll_that_skips_what_another_poll_read_is_a_poll_skip() {
        let mut b = Builder::new();
        send(&mut b, 0, "k1", 10, 0);
        let s = send(&mut b, 0, "k1", 11, 1);
        send(&mut b, 0, "k1", 12, 2);
        poll(
            &mut b,
            2,
            json!({"k1": 0}),
            json!({"k1": [[0, 10], [1, 11], [2, 12]]}),
        );
        let p = poll(
            &mut b,
            3,
            json!({"k1": 0}),
            json!({"k1": [[0, 10], [2, 12]]}),
        );
        // Asked from 0, began at 1: passed over offset 0.
        let q = poll(&mut b, 4, json!({"k1": 0}), json!({"k1": [[1, 11]]}));
        let r = run(&b);
        assert_eq!(kinds(&r), ["poll-skip", "poll-skip"]);
        let a = &r.anomalies[0];
        assert_eq!(
            a.ops,
            vec![p, s],
            "the poll, then what shows the offset it skipped"
        );
        assert!(
            a.title
                .contains("a poll passed over offset 1, which holds message 11"),
            "{}",
            a.title
        );
        assert_eq!(r.anomalies[1].ops[0], q);
        assert!(r.anomalies[1].sentences[0].contains("when asked from 0"));
    }

    #[test]
    fn an_acknowledged_message_passed_over_by_every_poll_is_a_lost_write() {
        let mut b = Builder::new();
        send(&mut b, 0, "k1", 10, 0);
        let lost = send(&mut b, 1, "k1", 11, 1);
        send(&mut b, 0, "k1", 12, 2);
        send(&mut b, 0, "k1", 13, 3); // never polled, above what was: unseen, allowed
        let p = poll(
            &mut b,
            2,
            json!({"k1": 0}),
            json!({"k1": [[0, 10], [2, 12]]}),
        );
        let q = poll(&mut b, 3, json!({"k1": 1}), json!({"k1": [[2, 12]]}));
        let r = run(&b);
        assert_eq!(r.verdict, Judgement::Invalid);
        assert_eq!(
            kinds(&r),
            ["lost-write"],
            "a lost message is not also a skip"
        );
        let a = &r.anomalies[0];
        assert_eq!(a.ops, vec![lost, p, q]);
        assert!(
            a.title.contains(
                "message 11, acknowledged at offset 1, was never polled though offset 2 was"
            ),
            "{}",
            a.title
        );
        assert!(a.sentences[2].starts_with("2 polls passed over offset 1"));
        assert!(
            a.sentences[3].contains("returned offset 0 then 2"),
            "{:?}",
            a.sentences
        );
        assert!(
            a.sentences[4].contains("asked from 1 and began at 2"),
            "{:?}",
            a.sentences
        );
        assert_eq!(r.detail["keys"][0]["unseen"], json!(1));
        assert!(r.summary.iter().any(|s| s.contains("not a violation")));
    }

    #[test]
    fn unseen_messages_alone_are_no_violation() {
        let mut b = Builder::new();
        send(&mut b, 0, "k1", 10, 0);
        poll(&mut b, 2, json!({"k1": 0}), json!({"k1": [[0, 10]]}));
        send(&mut b, 0, "k1", 11, 1);
        let r = run(&b);
        assert_eq!(r.verdict, Judgement::Valid, "{:?}", r.anomalies);
        assert_eq!(r.detail["keys"][0]["unseen"], json!(1));
    }

    #[test]
    fn a_process_whose_later_send_gets_a_lower_offset_is_nonmonotonic() {
        let mut b = Builder::new();
        let a = send(&mut b, 0, "k1", 10, 5);
        let c = send(&mut b, 0, "k1", 11, 3);
        send(&mut b, 1, "k1", 12, 4); // another process: no order with process 0's
        poll(
            &mut b,
            2,
            json!({"k1": 0}),
            json!({"k1": [[3, 11], [4, 12], [5, 10]]}),
        );
        let r = run(&b);
        assert_eq!(kinds(&r), ["nonmonotonic-send"]);
        assert_eq!(r.anomalies[0].ops, vec![a, c]);
    }

    #[test]
    fn a_committed_offset_listed_lower_after_its_commit_is_a_regression() {
        let mut b = Builder::new();
        send(&mut b, 0, "k1", 10, 5);
        poll(&mut b, 0, json!({"k1": 0}), json!({"k1": [[5, 10]]}));
        // A list concurrent with the commit may or may not see it.
        let commit = b.invoke(0, "n1", "commit_offsets", None, json!({"k1": 5}));
        let early = b.invoke(1, "n2", "list_committed_offsets", None, json!(["k1"]));
        b.complete(commit, Ev::ok());
        b.complete(early, Ev::ok_value(json!({"k1": 2})));
        let fine = |b: &mut Builder, v: Value| {
            b.keyless(
                2,
                "n3",
                "list_committed_offsets",
                json!(["k1"]),
                Ev::ok_value(v),
            )
        };
        fine(&mut b, json!({"k1": 5}));
        fine(&mut b, json!({"k1": 7}));
        assert_eq!(run(&b).verdict, Judgement::Valid);
        let lower = fine(&mut b, json!({"k1": 3}));
        let absent = fine(&mut b, json!({}));
        let r = run(&b);
        assert_eq!(
            kinds(&r),
            ["committed-offset-regression", "committed-offset-regression"]
        );
        assert_eq!(r.anomalies[0].ops, vec![commit, lower]);
        assert!(
            r.anomalies[0]
                .title
                .contains("committed offsets listed as 3 after a commit of 5"),
            "{}",
            r.anomalies[0].title
        );
        assert_eq!(r.anomalies[1].ops, vec![commit, absent]);
        assert!(r.anomalies[1].sentences[1].contains("returned no committed offset for k1"));
    }

    /// A correct log (sparse offsets, several consumers each polling from its own position and
    /// committing it, commits only advancing) passes, however it is interleaved; then dropping
    /// one message from every poll is caught as a lost write, and only that.
    #[test]
    fn a_simulated_correct_log_passes_and_a_dropped_message_is_lost() {
        let seed = std::env::var("SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0x5EED_u64);
        let build = |drop: Option<i64>| {
            let mut rng = crate::rng::SplitMix64::for_stream(seed, 0, 77);
            let keys = ["k1", "k2", "k3"];
            let mut logs: Vec<Vec<(i64, i64)>> = vec![Vec::new(); 3];
            let mut next_offset = [0i64; 3];
            let mut committed = [None::<i64>; 3];
            let mut positions = [[0i64; 3]; 4];
            let mut msg = 0i64;
            let mut b = Builder::new();
            for _ in 0..3_000 {
                let worker = rng.below(4) as usize;
                let k = rng.below(3) as usize;
                match rng.below(10) {
                    0..=4 => {
                        msg += 1;
                        next_offset[k] += 1 + rng.below(2) as i64; // sparse
                        logs[k].push((next_offset[k], msg));
                        send(&mut b, worker as u64, keys[k], msg, next_offset[k]);
                    }
                    5..=7 => {
                        let from = positions[worker][k];
                        let got: Vec<Value> = logs[k]
                            .iter()
                            .filter(|&&(o, m)| o >= from && Some(m) != drop)
                            .take(5)
                            .map(|&(o, m)| json!([o, m]))
                            .collect();
                        if let Some(last) = got.last() {
                            positions[worker][k] = last[0].as_i64().unwrap_or(0) + 1;
                        }
                        poll(
                            &mut b,
                            worker as u64,
                            json!({ keys[k]: from }),
                            json!({ keys[k]: got }),
                        );
                    }
                    8 => {
                        let mine = positions[worker][k] - 1;
                        if mine >= 0 {
                            committed[k] = committed[k].max(Some(mine));
                            b.keyless(
                                worker as u64,
                                "n1",
                                "commit_offsets",
                                json!({ keys[k]: mine }),
                                Ev::ok(),
                            );
                        }
                    }
                    _ => {
                        let got: serde_json::Map<String, Value> = (0..3)
                            .filter_map(|i| committed[i].map(|c| (keys[i].to_owned(), json!(c))))
                            .collect();
                        b.keyless(
                            worker as u64,
                            "n1",
                            "list_committed_offsets",
                            json!(keys),
                            Ev::ok_value(Value::Object(got)),
                        );
                    }
                }
            }
            b
        };
        let r = run(&build(None));
        assert_eq!(
            r.verdict,
            Judgement::Valid,
            "reproduce with SEED={seed}: {:#?}",
            r.anomalies.first()
        );
        // The first message sent is dropped from every poll.
        let r = run(&build(Some(1)));
        assert_eq!(r.verdict, Judgement::Invalid, "reproduce with SEED={seed}");
        assert!(
            kinds(&r).iter().all(|k| *k == "lost-write"),
            "reproduce with SEED={seed}: {:?}",
            kinds(&r)
        );
    }

    #[test]
    fn nothing_polled_or_unreadable_values_are_unknown() {
        let mut b = Builder::new();
        send(&mut b, 0, "k1", 10, 0);
        assert_eq!(run(&b).verdict, Judgement::Unknown);
        poll(&mut b, 1, json!({"k1": 0}), json!({"k1": [[0, 10]]}));
        assert_eq!(run(&b).verdict, Judgement::Valid);
        poll(&mut b, 1, json!({"k1": 1}), json!({"k1": "garbage"}));
        let r = run(&b);
        assert_eq!(r.verdict, Judgement::Unknown);
        assert!(
            r.summary
                .iter()
                .any(|s| s.contains("not a list of [offset, msg]")),
            "{:?}",
            r.summary
        );
    }
}
