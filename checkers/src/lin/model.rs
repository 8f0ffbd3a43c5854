//! Sequential specifications: what a single object does when operations are applied one at a
//! time. The linearizability checkers ask a model whether an operation, applied to a state,
//! could have produced the recorded result, and what state it leaves behind.
//!
//! States are compact: every model keeps its states as `u64` ids (a register's value id, an
//! interned string, an interned set), so the search can hash and compare them in one
//! instruction and the memo never stores more than a fixed-size key per configuration.

use hashbrown::HashMap;
use history::{EventType, Op};
use std::fmt;
use std::str::FromStr;

/// Which sequential specification to check against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// A register with `read` and `write`.
    Register,
    /// A register with `read`, `write` and `cas` (compare-and-set, value `[expected, new]`).
    CasRegister,
    /// Porcupine's string map, per key: `get`/`read`, `put`/`write`, `append` of strings.
    StringKv,
    /// A set: `add` of an element, `read` of the whole set.
    Set,
}

impl ModelKind {
    pub const ALL: [ModelKind; 4] = [
        ModelKind::Register,
        ModelKind::CasRegister,
        ModelKind::StringKv,
        ModelKind::Set,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Register => "register",
            ModelKind::CasRegister => "cas-register",
            ModelKind::StringKv => "string-kv",
            ModelKind::Set => "set",
        }
    }

    /// The operations (`f`) the model understands.
    pub fn verbs(self) -> &'static [&'static str] {
        match self {
            ModelKind::Register => &["read", "write"],
            ModelKind::CasRegister => &["read", "write", "cas"],
            ModelKind::StringKv => &["get", "read", "put", "write", "append"],
            ModelKind::Set => &["add", "read"],
        }
    }

    /// Guesses the model from the operations a history contains, if they point to one.
    pub fn infer<'a>(fs: impl IntoIterator<Item = &'a str>) -> Option<ModelKind> {
        let mut seen = std::collections::BTreeSet::new();
        for f in fs {
            seen.insert(f);
        }
        let has = |f: &str| seen.contains(f);
        if has("add") && seen.iter().all(|f| ["add", "read"].contains(f)) {
            Some(ModelKind::Set)
        } else if (has("get") || has("put") || has("append"))
            && seen.iter().all(|f| ModelKind::StringKv.verbs().contains(f))
        {
            Some(ModelKind::StringKv)
        } else if seen
            .iter()
            .all(|f| ModelKind::CasRegister.verbs().contains(f))
        {
            Some(ModelKind::CasRegister)
        } else {
            None
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ModelKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = if s == "kv" { "string-kv" } else { s };
        ModelKind::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = ModelKind::ALL.iter().map(|m| m.name()).collect();
                format!("unknown model `{s}`; known models: {}", names.join(", "))
            })
    }
}

/// One operation in the compact form a model steps on. Ids are the model's interned values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Observed the state `v` (register value, string, set).
    Read(u32),
    /// Set the state to `v`.
    Write(u32),
    /// If the state is `from`, set it to `to`.
    Cas { from: u32, to: u32 },
    /// Observed that the state was not `from` (a compare-and-set to `to` refused on its
    /// precondition).
    CasFail { from: u32, to: u32 },
    /// Append string piece `v` to the state.
    Append(u32),
    /// Add element `v` to the set.
    Add(u32),
}

impl Action {
    /// Whether the action never changes the state (a pure observation). Only these may be
    /// committed greedily by the search: a write that happens to leave the state unchanged
    /// here could matter somewhere else.
    pub fn is_observation(self) -> bool {
        matches!(self, Action::Read(_) | Action::CasFail { .. })
    }

    /// The value this action needs to exist in order to succeed (what it reads from).
    pub fn reads_value(self) -> Option<u32> {
        match self {
            Action::Read(v) | Action::Cas { from: v, .. } => Some(v),
            _ => None,
        }
    }

    /// The value this action creates, for register-like models.
    pub fn writes_value(self) -> Option<u32> {
        match self {
            Action::Write(v) | Action::Cas { to: v, .. } => Some(v),
            _ => None,
        }
    }
}

/// An operation ready for checking: what it does and whether it must be linearized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prepared {
    pub action: Action,
    /// `true` for operations known to have taken effect (`ok`, and refused compare-and-sets,
    /// which observed the state); `false` for indeterminate ones (`info`), which may be
    /// linearized anywhere after their invocation, or left out.
    pub required: bool,
}

/// The state id every model starts in: the absent value, the empty string, the empty set.
pub const INIT: u64 = 0;

/// A sequential specification over compact states. One instance checks one key, so it may
/// keep interning tables for that key.
pub trait Model: Send {
    /// Turns a history operation into an action, or `None` when it constrains nothing
    /// (a failed or indeterminate read, a write that certainly did not happen).
    /// `Err` explains why the operation makes no sense for this model.
    fn prepare(&mut self, op: &Op) -> Result<Option<Prepared>, PrepareError>;
    /// Applies `action` to `state`: the next state, or `None` if the recorded result is
    /// impossible from this state.
    fn step(&mut self, state: u64, action: Action) -> Option<u64>;
    /// A short human rendering of a state, for witnesses.
    fn show_state(&self, state: u64) -> String;
    /// A short human rendering of an action ("write 3", "cas 3→4", "read 5").
    fn show_action(&self, action: Action) -> String;
    /// One sentence on why `action` cannot take effect in `state`.
    fn why_impossible(&self, state: u64, action: Action) -> String {
        let (a, st) = (self.show_action(action), self.show_state(state));
        match action {
            Action::CasFail { .. } => {
                format!("{a} was refused, but the value was {st}, so it would have succeeded")
            }
            Action::Read(_) => format!("{a} is impossible: the value was {st}"),
            Action::Cas { .. } => format!("{a} is impossible: the value was {st}"),
            _ => format!("{a} is impossible in state {st}"),
        }
    }
    /// Whether the values written by this model's actions are unique, which makes the
    /// reads-from relation known (register models only).
    fn unique_writes(&self) -> bool {
        false
    }
    /// Whether a read observes exactly one write's value (registers), so reads-from is known
    /// whenever values are unique.
    fn register_like(&self) -> bool {
        false
    }
    /// For models whose only way back is a plain `Write` (string-kv appends only extend, set
    /// adds only grow): whether `read` can still be observed from `state` using no `Write`.
    /// `None` means the model makes no such promise.
    fn reachable_without_write(&self, _state: u64, _read: Action) -> Option<bool> {
        None
    }
    /// Roughly how many bytes the model's tables hold (states interned during a search count
    /// against the memory limit too).
    fn memory_bytes(&self) -> usize {
        0
    }
}

/// Why an operation cannot be checked against a model; names the field at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct PrepareError {
    pub field: &'static str,
    pub message: String,
    /// The fault is in the completion (a result), not in the invocation.
    pub in_completion: bool,
}

fn bad(field: &'static str, message: impl Into<String>) -> PrepareError {
    PrepareError {
        field,
        message: message.into(),
        in_completion: false,
    }
}

fn in_result(mut e: PrepareError) -> PrepareError {
    e.in_completion = true;
    e
}

fn unknown_f(model: ModelKind, f: &str) -> PrepareError {
    bad(
        "f",
        format!(
            "the {model} model does not know the operation `{f}`; it knows: {} (choose another with --model)",
            model.verbs().join(", ")
        ),
    )
}

/// Interns JSON values (by their canonical JSON text) to dense ids; `null` is id 0.
#[derive(Default, Debug)]
pub struct ValueTable {
    ids: HashMap<String, u32>,
    texts: Vec<String>,
}

impl ValueTable {
    pub fn new() -> Self {
        let mut t = ValueTable::default();
        t.intern_text("null".to_owned());
        t
    }

    pub fn intern(&mut self, v: &serde_json::Value) -> u32 {
        self.intern_text(v.to_string())
    }

    fn intern_text(&mut self, text: String) -> u32 {
        if let Some(&id) = self.ids.get(&text) {
            return id;
        }
        let id = u32::try_from(self.texts.len()).expect("fewer than 2^32 distinct values per key");
        self.texts.push(text.clone());
        self.ids.insert(text, id);
        id
    }

    pub fn text(&self, id: u32) -> &str {
        self.texts.get(id as usize).map_or("?", String::as_str)
    }

    pub fn len(&self) -> usize {
        self.texts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }
}

fn is_precondition_failure(op: &Op) -> bool {
    match &op.error {
        Some(serde_json::Value::String(s)) => s == "precondition",
        _ => false,
    }
}

/// `register` and `cas-register`: the state is the id of the current value; absent is `null`.
#[derive(Debug)]
pub struct RegisterModel {
    allow_cas: bool,
    values: ValueTable,
    /// Written values seen so far, to tell whether every write is unique.
    written: hashbrown::HashSet<u32>,
    unique: bool,
}

impl RegisterModel {
    pub fn new(allow_cas: bool) -> Self {
        RegisterModel {
            allow_cas,
            values: ValueTable::new(),
            written: hashbrown::HashSet::new(),
            unique: true,
        }
    }

    fn note_write(&mut self, v: u32) {
        if v == 0 || !self.written.insert(v) {
            self.unique = false;
        }
    }

    fn kind(&self) -> ModelKind {
        if self.allow_cas {
            ModelKind::CasRegister
        } else {
            ModelKind::Register
        }
    }
}

impl Model for RegisterModel {
    fn prepare(&mut self, op: &Op) -> Result<Option<Prepared>, PrepareError> {
        let required = match op.kind {
            EventType::Ok => true,
            EventType::Info | EventType::Invoke => false,
            EventType::Fail => {
                // A refused compare-and-set observed a value other than the expected one;
                // any other failure certainly did not happen and constrains nothing.
                if op.f == "cas" && self.allow_cas && is_precondition_failure(op) {
                    let (from, to) = cas_args(&op.input)?;
                    let (from, to) = (self.values.intern(from), self.values.intern(to));
                    return Ok(Some(Prepared {
                        action: Action::CasFail { from, to },
                        required: true,
                    }));
                }
                if !self.kind().verbs().contains(&op.f.as_str()) {
                    return Err(unknown_f(self.kind(), &op.f));
                }
                return Ok(None);
            }
        };
        let action = match op.f.as_str() {
            "read" => {
                if !required {
                    return Ok(None);
                }
                Action::Read(self.values.intern(&op.output))
            }
            "write" => {
                let v = self.values.intern(&op.input);
                self.note_write(v);
                Action::Write(v)
            }
            "cas" if self.allow_cas => {
                let (from, to) = cas_args(&op.input)?;
                let (from, to) = (self.values.intern(from), self.values.intern(to));
                self.note_write(to);
                Action::Cas { from, to }
            }
            f => return Err(unknown_f(self.kind(), f)),
        };
        Ok(Some(Prepared { action, required }))
    }

    #[inline]
    fn step(&mut self, state: u64, action: Action) -> Option<u64> {
        match action {
            Action::Read(v) => (state == u64::from(v)).then_some(state),
            Action::Write(v) => Some(u64::from(v)),
            Action::Cas { from, to } => (state == u64::from(from)).then_some(u64::from(to)),
            Action::CasFail { from, .. } => (state != u64::from(from)).then_some(state),
            Action::Append(_) | Action::Add(_) => None,
        }
    }

    fn show_state(&self, state: u64) -> String {
        if state == INIT {
            "absent (null)".to_owned()
        } else {
            self.values.text(state as u32).to_owned()
        }
    }

    fn show_action(&self, action: Action) -> String {
        let t = |v: u32| self.values.text(v).to_owned();
        match action {
            Action::Read(v) => format!("read {}", t(v)),
            Action::Write(v) => format!("write {}", t(v)),
            Action::Cas { from, to } => format!("cas {}→{}", t(from), t(to)),
            Action::CasFail { from, to } => format!("cas {}→{} (refused)", t(from), t(to)),
            Action::Append(v) => format!("append {}", t(v)),
            Action::Add(v) => format!("add {}", t(v)),
        }
    }

    fn unique_writes(&self) -> bool {
        self.unique
    }

    fn register_like(&self) -> bool {
        true
    }
}

fn cas_args(
    v: &serde_json::Value,
) -> Result<(&serde_json::Value, &serde_json::Value), PrepareError> {
    match v.as_array().map(Vec::as_slice) {
        Some([from, to]) => Ok((from, to)),
        _ => Err(bad(
            "value",
            format!("a cas value must be [expected, new], got {v}"),
        )),
    }
}

/// Hash-consed states: equal contents get equal ids, so comparing two states is one compare,
/// and each transition is computed once and then looked up.
#[derive(Debug)]
struct Arena<T: std::hash::Hash + Eq + Clone> {
    ids: HashMap<T, u32>,
    items: Vec<T>,
    transitions: HashMap<(u32, u32), u32>,
}

impl<T: std::hash::Hash + Eq + Clone> Arena<T> {
    fn new(empty: T) -> Self {
        let mut a = Arena {
            ids: HashMap::new(),
            items: Vec::new(),
            transitions: HashMap::new(),
        };
        a.intern(empty);
        a
    }

    fn intern(&mut self, item: T) -> u32 {
        if let Some(&id) = self.ids.get(&item) {
            return id;
        }
        let id = u32::try_from(self.items.len()).expect("fewer than 2^32 distinct states per key");
        self.items.push(item.clone());
        self.ids.insert(item, id);
        id
    }

    /// The state reached from `state` by piece `piece`, computing it with `f` the first time.
    fn transition(&mut self, state: u32, piece: u32, f: impl FnOnce(&[T], &T) -> T) -> u32 {
        if let Some(&to) = self.transitions.get(&(state, piece)) {
            return to;
        }
        let next = f(&self.items, &self.items[state as usize]);
        let to = self.intern(next);
        self.transitions.insert((state, piece), to);
        to
    }
}

/// Porcupine's key-value model, one key at a time.
///
/// Actions name interned texts (the strings written and read). States are never built as
/// strings: a state is identified by a fingerprint of its content — two polynomial hashes
/// modulo the Mersenne prime 2^61 − 1 and the length — so an append costs O(1) whatever the
/// length of the value, and equal contents reached by different paths get the same state id.
/// Two different contents share a fingerprint with probability about 2^-120 per pair.
#[derive(Debug)]
pub struct StringKvModel {
    texts: Vec<String>,
    text_ids: HashMap<String, u32>,
    /// For each text: its state id, and the fingerprints of its prefixes (filled for read
    /// results, which the lookahead compares states against).
    text_state: Vec<u32>,
    prefixes: Vec<Vec<Fp>>,
    /// States: fingerprint, and how to spell it (for witnesses).
    states: Vec<(Fp, Spelling)>,
    state_ids: HashMap<Fp, u32>,
    transitions: HashMap<(u32, u32), u32>,
}

/// A content fingerprint: (hash mod p with base 1, hash mod p with base 2, length).
type Fp = (u64, u64, u64);

#[derive(Debug, Clone, Copy)]
enum Spelling {
    Text(u32),
    Append(u32, u32),
}

const MERSENNE61: u64 = (1 << 61) - 1;
const BASES: (u64, u64) = (
    0x1F3D_5B79_A3C1_E5F1 % MERSENNE61,
    0x2B6D_1A4F_9E37_C2D5 % MERSENNE61,
);

#[inline]
fn mulmod(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    let r = (p & u128::from(MERSENNE61)) as u64 + (p >> 61) as u64;
    let r = (r & MERSENNE61) + (r >> 61);
    if r >= MERSENNE61 {
        r - MERSENNE61
    } else {
        r
    }
}

#[inline]
fn addmod(a: u64, b: u64) -> u64 {
    let r = a + b;
    if r >= MERSENNE61 {
        r - MERSENNE61
    } else {
        r
    }
}

fn powmod(mut b: u64, mut e: u64) -> u64 {
    let mut r = 1;
    while e > 0 {
        if e & 1 == 1 {
            r = mulmod(r, b);
        }
        b = mulmod(b, b);
        e >>= 1;
    }
    r
}

/// Fingerprint of `a` followed by `b`.
#[inline]
fn concat(a: Fp, b: Fp) -> Fp {
    (
        addmod(mulmod(a.0, powmod(BASES.0, b.2)), b.0),
        addmod(mulmod(a.1, powmod(BASES.1, b.2)), b.1),
        a.2 + b.2,
    )
}

/// Fingerprints of every prefix of `text` (the empty one first).
fn prefix_fingerprints(text: &str) -> Vec<Fp> {
    let mut out = Vec::with_capacity(text.len() + 1);
    let mut fp: Fp = (0, 0, 0);
    out.push(fp);
    for &byte in text.as_bytes() {
        let c = u64::from(byte) + 1;
        fp = (
            addmod(mulmod(fp.0, BASES.0), c),
            addmod(mulmod(fp.1, BASES.1), c),
            fp.2 + 1,
        );
        out.push(fp);
    }
    out
}

impl Default for StringKvModel {
    fn default() -> Self {
        let mut m = StringKvModel {
            texts: Vec::new(),
            text_ids: HashMap::new(),
            text_state: Vec::new(),
            prefixes: Vec::new(),
            states: Vec::new(),
            state_ids: HashMap::new(),
            transitions: HashMap::new(),
        };
        let empty = m.intern_text(String::new(), false);
        debug_assert_eq!(u64::from(m.text_state[empty as usize]), INIT);
        m
    }
}

fn as_text(v: &serde_json::Value) -> Result<String, PrepareError> {
    match v {
        serde_json::Value::String(s) => Ok(s.clone()),
        serde_json::Value::Null => Ok(String::new()),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        other => Err(bad(
            "value",
            format!("the string-kv model needs string values, got {other}"),
        )),
    }
}

impl StringKvModel {
    /// The text of an interned string (a written piece or a read result).
    pub fn text(&self, id: u32) -> &str {
        self.texts.get(id as usize).map_or("", String::as_str)
    }

    fn intern_state(&mut self, fp: Fp, spelling: Spelling) -> u32 {
        if let Some(&id) = self.state_ids.get(&fp) {
            return id;
        }
        let id = u32::try_from(self.states.len()).expect("fewer than 2^32 states per key");
        self.states.push((fp, spelling));
        self.state_ids.insert(fp, id);
        id
    }

    fn intern_text(&mut self, text: String, keep_prefixes: bool) -> u32 {
        let id = match self.text_ids.get(&text) {
            Some(&id) => id,
            None => {
                let id = u32::try_from(self.texts.len()).expect("fewer than 2^32 texts per key");
                let prefixes = prefix_fingerprints(&text);
                let fp = *prefixes.last().expect("at least the empty prefix");
                let state = self.intern_state(fp, Spelling::Text(id));
                self.texts.push(text.clone());
                self.text_ids.insert(text, id);
                self.text_state.push(state);
                self.prefixes.push(Vec::new());
                if keep_prefixes {
                    self.prefixes[id as usize] = prefixes;
                }
                return id;
            }
        };
        if keep_prefixes && self.prefixes[id as usize].is_empty() {
            self.prefixes[id as usize] = prefix_fingerprints(&self.texts[id as usize]);
        }
        id
    }

    fn spell(&self, state: u32, out: &mut String) {
        match self.states[state as usize].1 {
            Spelling::Text(t) => out.push_str(self.text(t)),
            Spelling::Append(prev, piece) => {
                self.spell(prev, out);
                out.push_str(self.text(piece));
            }
        }
    }
}

impl Model for StringKvModel {
    fn prepare(&mut self, op: &Op) -> Result<Option<Prepared>, PrepareError> {
        let required = match op.kind {
            EventType::Ok => true,
            EventType::Info | EventType::Invoke => false,
            EventType::Fail => {
                if !ModelKind::StringKv.verbs().contains(&op.f.as_str()) {
                    return Err(unknown_f(ModelKind::StringKv, &op.f));
                }
                return Ok(None);
            }
        };
        let action = match op.f.as_str() {
            "get" | "read" => {
                if !required {
                    return Ok(None);
                }
                Action::Read(self.intern_text(as_text(&op.output).map_err(in_result)?, true))
            }
            "put" | "write" => Action::Write(self.intern_text(as_text(&op.input)?, false)),
            "append" => Action::Append(self.intern_text(as_text(&op.input)?, false)),
            f => return Err(unknown_f(ModelKind::StringKv, f)),
        };
        Ok(Some(Prepared { action, required }))
    }

    #[inline]
    fn step(&mut self, state: u64, action: Action) -> Option<u64> {
        match action {
            Action::Read(v) => (state == u64::from(self.text_state[v as usize])).then_some(state),
            Action::Write(v) => Some(u64::from(self.text_state[v as usize])),
            Action::Append(piece) => {
                let s = state as u32;
                if let Some(&to) = self.transitions.get(&(s, piece)) {
                    return Some(u64::from(to));
                }
                let fp = concat(
                    self.states[s as usize].0,
                    self.states[self.text_state[piece as usize] as usize].0,
                );
                let to = self.intern_state(fp, Spelling::Append(s, piece));
                self.transitions.insert((s, piece), to);
                Some(u64::from(to))
            }
            _ => None,
        }
    }

    fn show_state(&self, state: u64) -> String {
        let mut s = String::new();
        self.spell(state as u32, &mut s);
        format!("{s:?}")
    }

    fn memory_bytes(&self) -> usize {
        let texts: usize = self.texts.iter().map(|t| 2 * t.capacity() + 48).sum();
        let prefixes: usize = self.prefixes.iter().map(|p| p.capacity() * 24).sum();
        texts
            + prefixes
            + self.states.capacity() * 40
            + self.state_ids.capacity() * 33
            + self.transitions.capacity() * 13
    }

    #[inline]
    fn reachable_without_write(&self, state: u64, read: Action) -> Option<bool> {
        let Action::Read(v) = read else { return None };
        let fp = self.states[state as usize].0;
        let prefixes = &self.prefixes[v as usize];
        Some(prefixes.get(fp.2 as usize) == Some(&fp))
    }

    fn show_action(&self, action: Action) -> String {
        let t = |v: u32| format!("{:?}", self.text(v));
        match action {
            Action::Read(v) => format!("get {}", t(v)),
            Action::Write(v) => format!("put {}", t(v)),
            Action::Append(v) => format!("append {}", t(v)),
            other => format!("{other:?}"),
        }
    }
}

/// A grow-only set: the state is an interned sorted list of element ids.
#[derive(Debug)]
pub struct SetModel {
    elements: ValueTable,
    sets: Arena<Vec<u32>>,
}

impl Default for SetModel {
    fn default() -> Self {
        SetModel {
            elements: ValueTable::new(),
            sets: Arena::new(Vec::new()),
        }
    }
}

impl Model for SetModel {
    fn prepare(&mut self, op: &Op) -> Result<Option<Prepared>, PrepareError> {
        let required = match op.kind {
            EventType::Ok => true,
            EventType::Info | EventType::Invoke => false,
            EventType::Fail => {
                if !ModelKind::Set.verbs().contains(&op.f.as_str()) {
                    return Err(unknown_f(ModelKind::Set, &op.f));
                }
                return Ok(None);
            }
        };
        let action = match op.f.as_str() {
            "add" => Action::Add(self.elements.intern(&op.input)),
            "read" => {
                if !required {
                    return Ok(None);
                }
                let items = match &op.output {
                    serde_json::Value::Array(items) => items,
                    serde_json::Value::Null => &Vec::new(),
                    other => {
                        return Err(in_result(bad(
                            "value",
                            format!("a set read must return a list of elements, got {other}"),
                        )))
                    }
                };
                let mut ids: Vec<u32> = items.iter().map(|e| self.elements.intern(e)).collect();
                ids.sort_unstable();
                ids.dedup();
                Action::Read(self.sets.intern(ids))
            }
            f => return Err(unknown_f(ModelKind::Set, f)),
        };
        Ok(Some(Prepared { action, required }))
    }

    #[inline]
    fn step(&mut self, state: u64, action: Action) -> Option<u64> {
        match action {
            Action::Read(v) => (state == u64::from(v)).then_some(state),
            Action::Add(e) => Some(u64::from(self.sets.transition(state as u32, e, |_, s| {
                let mut n = s.clone();
                if let Err(at) = n.binary_search(&e) {
                    n.insert(at, e);
                }
                n
            }))),
            _ => None,
        }
    }

    #[inline]
    fn reachable_without_write(&self, state: u64, read: Action) -> Option<bool> {
        let Action::Read(v) = read else { return None };
        let (have, want) = (
            &self.sets.items[state as usize],
            &self.sets.items[v as usize],
        );
        Some(have.len() <= want.len() && have.iter().all(|e| want.binary_search(e).is_ok()))
    }

    fn memory_bytes(&self) -> usize {
        let sets: usize = self
            .sets
            .items
            .iter()
            .map(|s| 2 * (s.capacity() * 4 + 24))
            .sum();
        sets + self.sets.ids.capacity() * 8 + self.sets.transitions.capacity() * 13
    }

    fn show_state(&self, state: u64) -> String {
        let items: Vec<&str> = self.sets.items[state as usize]
            .iter()
            .map(|&e| self.elements.text(e))
            .collect();
        format!("{{{}}}", items.join(", "))
    }

    fn show_action(&self, action: Action) -> String {
        match action {
            Action::Add(e) => format!("add {}", self.elements.text(e)),
            Action::Read(s) => format!("read {}", self.show_state(u64::from(s))),
            other => format!("{other:?}"),
        }
    }
}

/// A fresh model instance of the given kind, for one key.
pub fn new_model(kind: ModelKind) -> AnyModel {
    match kind {
        ModelKind::Register => AnyModel::Register(RegisterModel::new(false)),
        ModelKind::CasRegister => AnyModel::Register(RegisterModel::new(true)),
        ModelKind::StringKv => AnyModel::StringKv(StringKvModel::default()),
        ModelKind::Set => AnyModel::Set(SetModel::default()),
    }
}

/// A model of any kind, dispatched by `match` so the search's inner loop stays monomorphic
/// per variant and free of virtual calls.
#[derive(Debug)]
pub enum AnyModel {
    Register(RegisterModel),
    StringKv(StringKvModel),
    Set(SetModel),
}

macro_rules! dispatch {
    ($self:ident, $m:ident => $e:expr) => {
        match $self {
            AnyModel::Register($m) => $e,
            AnyModel::StringKv($m) => $e,
            AnyModel::Set($m) => $e,
        }
    };
}

impl Model for AnyModel {
    fn prepare(&mut self, op: &Op) -> Result<Option<Prepared>, PrepareError> {
        dispatch!(self, m => m.prepare(op))
    }
    #[inline]
    fn step(&mut self, state: u64, action: Action) -> Option<u64> {
        dispatch!(self, m => m.step(state, action))
    }
    fn show_state(&self, state: u64) -> String {
        dispatch!(self, m => m.show_state(state))
    }
    fn show_action(&self, action: Action) -> String {
        dispatch!(self, m => m.show_action(action))
    }
    fn why_impossible(&self, state: u64, action: Action) -> String {
        dispatch!(self, m => m.why_impossible(state, action))
    }
    fn unique_writes(&self) -> bool {
        dispatch!(self, m => m.unique_writes())
    }
    fn register_like(&self) -> bool {
        dispatch!(self, m => m.register_like())
    }
    #[inline]
    fn reachable_without_write(&self, state: u64, read: Action) -> Option<bool> {
        dispatch!(self, m => m.reachable_without_write(state, read))
    }
    fn memory_bytes(&self) -> usize {
        dispatch!(self, m => m.memory_bytes())
    }
}
