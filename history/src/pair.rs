//! The validator: pairs each invocation with its completion, per process.
//!
//! Rules (shared/DESIGN.md section 2): a process has at most one operation outstanding; a
//! completion names the same `f` (and key) as its invocation; after an `info` completion the
//! process id is never used again. An invocation that never completes (the run was killed) is
//! indeterminate, exactly like `info`.

use crate::{Event, EventType, History, HistoryError, Process};
use std::collections::HashMap;
use std::path::Path;

/// One client operation: an invocation and its completion.
#[derive(Clone, Debug, PartialEq)]
pub struct Op {
    pub process: u64,
    pub f: String,
    pub key: Option<String>,
    /// `Ok`, `Fail` or `Info`; an invocation without completion is `Info`.
    pub kind: EventType,
    /// Position of the invocation in `History::events`.
    pub invoke: usize,
    /// Position of the completion in `History::events`, if there is one.
    pub complete: Option<usize>,
    /// The invocation's value (the argument).
    pub input: serde_json::Value,
    /// The completion's value (a read's result); `Null` without completion.
    pub output: serde_json::Value,
    pub error: Option<serde_json::Value>,
    pub node: Option<String>,
}

/// A validated history: client operations in invocation order, and the nemesis events.
#[derive(Clone, Debug, Default)]
pub struct Paired {
    pub ops: Vec<Op>,
    /// Positions in `History::events` of the nemesis's events.
    pub nemesis: Vec<usize>,
}

/// Pairs invocations and completions, enforcing the rules above. Errors name file, line and field.
pub fn pair(history: &History) -> Result<Paired, HistoryError> {
    let file = history.file.as_path();
    let line_of = |pos: usize| history.lines.get(pos).copied().unwrap_or(pos + 1);
    let mut out = Paired::default();
    let mut rules = Pairing::new(file);
    for (pos, ev) in history.events.iter().enumerate() {
        let line = line_of(pos);
        match rules.next(ev, line, out.ops.len())? {
            Step::Nemesis => out.nemesis.push(pos),
            Step::Invoke(p) => out.ops.push(Op {
                process: p,
                f: ev.f.clone(),
                key: ev.key.clone(),
                kind: EventType::Info,
                invoke: pos,
                complete: None,
                input: ev.value.clone(),
                output: serde_json::Value::Null,
                error: None,
                node: ev.node.clone(),
            }),
            Step::Complete(i) => {
                let op = &mut out.ops[i];
                op.kind = ev.kind;
                op.complete = Some(pos);
                op.output = ev.value.clone();
                op.error = ev.error.clone();
                if op.node.is_none() {
                    op.node = ev.node.clone();
                }
            }
        }
    }
    Ok(out)
}

/// What one event is to [`Pairing`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// A nemesis event.
    Nemesis,
    /// An invocation by this process, now outstanding under the id it was given.
    Invoke(u64),
    /// The completion of the operation with this id.
    Complete(usize),
}

/// The pairing rules, one event at a time, for readers that keep only what they need of each
/// operation (a streaming reader of a million transactions): [`pair`] is built on it.
pub struct Pairing<'a> {
    file: &'a Path,
    /// process -> its outstanding operation: (id, line of the invocation, f, key)
    outstanding: HashMap<u64, (usize, usize, String, Option<String>)>,
    /// process -> line of the info completion that retired it
    retired: HashMap<u64, usize>,
}

impl<'a> Pairing<'a> {
    pub fn new(file: &'a Path) -> Self {
        Pairing {
            file,
            outstanding: HashMap::new(),
            retired: HashMap::new(),
        }
    }

    /// Checks the event on `line` against the rules; an invocation becomes operation `id`.
    pub fn next(&mut self, ev: &Event, line: usize, id: usize) -> Result<Step, HistoryError> {
        let file = self.file;
        let p = match ev.process {
            Process::Nemesis => return Ok(Step::Nemesis),
            Process::Client(p) => p,
        };
        if let Some(info_line) = self.retired.get(&p) {
            return Err(HistoryError::new(
                file,
                line,
                Some("process"),
                format!(
                    "process {p} is used again after its `info` completion on line {info_line}; \
                     after an indeterminate result a process id must never be reused"
                ),
            ));
        }
        if ev.kind == EventType::Invoke {
            if let Some((_, prev_line, prev_f, _)) = self.outstanding.get(&p) {
                return Err(HistoryError::new(
                    file,
                    line,
                    Some("process"),
                    format!(
                        "process {p} invokes `{}` while its `{prev_f}` from line {prev_line} has \
                         not completed; a process has at most one operation outstanding",
                        ev.f
                    ),
                ));
            }
            self.outstanding
                .insert(p, (id, line, ev.f.clone(), ev.key.clone()));
            return Ok(Step::Invoke(p));
        }
        let Some((id, invoke_line, f, key)) = self.outstanding.remove(&p) else {
            return Err(HistoryError::new(
                file,
                line,
                Some("type"),
                format!(
                    "`{}` completion of `{}` by process {p} has no matching invocation",
                    ev.kind, ev.f
                ),
            ));
        };
        if f != ev.f {
            return Err(HistoryError::new(
                file,
                line,
                Some("f"),
                format!(
                    "completion says `{}` but process {p} invoked `{f}` on line {invoke_line}",
                    ev.f
                ),
            ));
        }
        if ev.key.is_some() && key != ev.key {
            return Err(HistoryError::new(
                file,
                line,
                Some("key"),
                format!(
                    "completion names key {:?} but process {p} invoked key {:?} on line \
                     {invoke_line}",
                    ev.key.as_deref().unwrap_or(""),
                    key.as_deref().unwrap_or("")
                ),
            ));
        }
        if ev.kind == EventType::Info {
            self.retired.insert(p, line);
        }
        Ok(Step::Complete(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(index: u64, process: u64, kind: EventType, f: &str) -> Event {
        Event {
            index,
            time: index,
            process: Process::Client(process),
            kind,
            f: f.into(),
            key: None,
            value: serde_json::Value::Null,
            node: None,
            error: None,
            local: false,
            siblings: false,
            context: None,
        }
    }

    fn hist(events: Vec<Event>) -> History {
        let mut h = History::new("t.jsonl");
        for (i, e) in events.into_iter().enumerate() {
            h.push(e, i + 1);
        }
        h
    }

    #[test]
    fn pairs_and_keeps_unfinished_as_info() {
        let h = hist(vec![
            ev(0, 1, EventType::Invoke, "read"),
            ev(1, 2, EventType::Invoke, "write"),
            ev(2, 1, EventType::Ok, "read"),
        ]);
        let p = pair(&h).unwrap();
        assert_eq!(p.ops.len(), 2);
        assert_eq!(p.ops[0].kind, EventType::Ok);
        assert_eq!(p.ops[0].complete, Some(2));
        assert_eq!(p.ops[1].kind, EventType::Info);
        assert_eq!(p.ops[1].complete, None);
    }

    #[test]
    fn completion_without_invocation_names_line_and_field() {
        let h = hist(vec![ev(0, 1, EventType::Ok, "read")]);
        let e = pair(&h).unwrap_err();
        assert_eq!(e.line, 1);
        assert_eq!(e.field.as_deref(), Some("type"));
        assert!(e.to_string().contains("no matching invocation"), "{e}");
    }

    #[test]
    fn reuse_after_info_is_rejected() {
        let h = hist(vec![
            ev(0, 1, EventType::Invoke, "write"),
            ev(1, 1, EventType::Info, "write"),
            ev(2, 1, EventType::Invoke, "read"),
        ]);
        let e = pair(&h).unwrap_err();
        assert_eq!(e.line, 3);
        assert!(
            e.to_string()
                .contains("after its `info` completion on line 2"),
            "{e}"
        );
    }

    #[test]
    fn two_outstanding_ops_are_rejected() {
        let h = hist(vec![
            ev(0, 1, EventType::Invoke, "write"),
            ev(1, 1, EventType::Invoke, "read"),
        ]);
        let e = pair(&h).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(
            e.to_string().contains("at most one operation outstanding"),
            "{e}"
        );
    }

    #[test]
    fn mismatched_f_is_rejected() {
        let h = hist(vec![
            ev(0, 1, EventType::Invoke, "write"),
            ev(1, 1, EventType::Ok, "read"),
        ]);
        let e = pair(&h).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("f"));
    }
}
