//! Small histories for the checkers' unit tests: each operation is invoked and completed in
//! turn, in the order the test writes them.

use history::{Event, EventType, History, Process};
use serde_json::Value;

/// How an operation completes, and the optional fields of its events.
#[derive(Clone, Debug)]
pub struct Ev {
    kind: EventType,
    value: Option<Value>,
    ctx_in: Option<String>,
    ctx_out: Option<String>,
    siblings: bool,
}

impl Ev {
    pub fn ok() -> Ev {
        Ev {
            kind: EventType::Ok,
            value: None,
            ctx_in: None,
            ctx_out: None,
            siblings: false,
        }
    }
    pub fn ok_value(v: Value) -> Ev {
        Ev {
            value: Some(v),
            ..Ev::ok()
        }
    }
    pub fn fail() -> Ev {
        Ev {
            kind: EventType::Fail,
            ..Ev::ok()
        }
    }
    pub fn info() -> Ev {
        Ev {
            kind: EventType::Info,
            ..Ev::ok()
        }
    }
    /// The context the client sends.
    pub fn ctx_in(mut self, c: &str) -> Ev {
        self.ctx_in = Some(c.to_owned());
        self
    }
    /// The context the system returns.
    pub fn ctx_out(mut self, c: &str) -> Ev {
        self.ctx_out = Some(c.to_owned());
        self
    }
    pub fn siblings(mut self) -> Ev {
        self.siblings = true;
        self
    }
}

#[derive(Default)]
pub struct Builder {
    events: Vec<Event>,
    next_local: u64,
}

impl Builder {
    /// The history checked by the registry's checker `name` (with default options), after
    /// checking that the result serialises.
    pub fn check_with(&self, name: &str) -> crate::CheckerResult {
        let h = self.history();
        let paired = history::pair(&h).expect("well formed");
        let r = crate::registry::find(name)
            .expect("registered")
            .check(
                &h,
                &paired,
                &crate::Options::new(crate::ModelKind::CasRegister),
            )
            .expect("checks");
        serde_json::to_string(&r).expect("serialises");
        r
    }

    pub fn new() -> Builder {
        Builder::default()
    }

    fn push(&mut self, mut e: Event) -> u64 {
        e.index = self.events.len() as u64;
        e.time = e.index * 1_000_000;
        self.events.push(e);
        e_index(&self.events)
    }

    /// Invokes and completes `f` on `key` by `process` at n1; returns the invocation's index.
    pub fn op(&mut self, process: u64, f: &str, key: &str, value: Value, ev: Ev) -> u64 {
        self.op_at(process, "n1", f, key, value, ev, false)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn op_at(
        &mut self,
        process: u64,
        node: &str,
        f: &str,
        key: &str,
        value: Value,
        ev: Ev,
        local: bool,
    ) -> u64 {
        let base = Event {
            index: 0,
            time: 0,
            process: Process::Client(process),
            kind: EventType::Invoke,
            f: f.to_owned(),
            key: Some(key.to_owned()),
            value: value.clone(),
            node: Some(node.to_owned()),
            error: None,
            local,
            siblings: false,
            context: ev.ctx_in.clone(),
        };
        let at = self.push(base.clone());
        let ok = ev.kind == EventType::Ok;
        self.push(Event {
            kind: ev.kind,
            value: ev.value.unwrap_or(value),
            local: false,
            siblings: ok && ev.siblings,
            context: ev.ctx_out.filter(|_| ok),
            error: (!ok).then(|| Value::String("test".into())),
            ..base
        });
        at
    }

    /// Invokes and completes `f` without a key (Maelstrom's echo, generate, poll) by `process`
    /// at `node`; returns the invocation's index.
    pub fn keyless(&mut self, process: u64, node: &str, f: &str, value: Value, ev: Ev) -> u64 {
        let at = self.op_at(process, node, f, "", value, ev, false);
        let n = self.events.len();
        self.events[n - 2].key = None;
        self.events[n - 1].key = None;
        at
    }

    /// Invokes `f` on `key` (none: a keyless operation) by `process` at `node`, to be completed
    /// later by [`Builder::complete`] or never; returns the invocation's index.
    pub fn invoke(
        &mut self,
        process: u64,
        node: &str,
        f: &str,
        key: Option<&str>,
        value: Value,
    ) -> u64 {
        self.push(Event {
            index: 0,
            time: 0,
            process: Process::Client(process),
            kind: EventType::Invoke,
            f: f.to_owned(),
            key: key.map(str::to_owned),
            value,
            node: Some(node.to_owned()),
            error: None,
            local: false,
            siblings: false,
            context: None,
        })
    }

    /// Completes the operation invoked at index `invoked` (its value unless `ev` gives one).
    pub fn complete(&mut self, invoked: u64, ev: Ev) {
        let base = self.events[invoked as usize].clone();
        let ok = ev.kind == EventType::Ok;
        self.push(Event {
            kind: ev.kind,
            value: ev.value.unwrap_or(base.value.clone()),
            error: (!ok).then(|| Value::String("test".into())),
            ..base
        });
    }

    /// A local final read of `key` at `node` returning `value`, by a fresh process.
    pub fn local_read(&mut self, node: &str, key: &str, value: Value, siblings: bool) -> u64 {
        self.next_local += 1;
        let ev = if siblings {
            Ev::ok_value(value).siblings()
        } else {
            Ev::ok_value(value)
        };
        let p = 1_000_000 + self.next_local;
        self.op_at(p, node, "read", key, Value::Null, ev, true)
    }

    pub fn history(&self) -> History {
        let mut h = History::new("test.jsonl");
        for (i, e) in self.events.iter().enumerate() {
            h.push(e.clone(), i + 1);
        }
        h
    }
}

fn e_index(events: &[Event]) -> u64 {
    events.last().map_or(0, |e| e.index)
}
