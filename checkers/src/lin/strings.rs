//! Porcupine's string key-value model seen as a register with unique values, so the graph path
//! decides it in O(n log n) instead of an exponential search.
//!
//! When every `put` and `append` writes a distinct string, a `get` result spells out exactly
//! which pieces were appended, in which order: cut it into pieces and walk a trie of piece
//! sequences. Each trie node is a version with exactly one writer: a `put p` writes version
//! `[p]`; an `append x` that some `get` observed is a compare-and-set from the version before
//! `x` to the version ending in `x` (every observation of `x` must agree on what preceded it).
//! An `append` no `get` ever observed is *blind*: its result was never read, so it must take
//! effect where nothing observes it — just before a `put` or after the last observation; the
//! graph path checks that once it has a linearization of the rest.

use crate::lin::model::{Action, StringKvModel, INIT};
use crate::lin::search::KeyOp;
use hashbrown::HashMap;

/// The register view of one key's string operations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StringView {
    /// The same operations, index for index, as register actions over version ids (blind
    /// appends stay `Append`).
    Registers(Vec<KeyOp>),
    /// Already impossible: a `get` that no sequence of writes explains, or two `get`s that
    /// disagree on what preceded a piece.
    Invalid { suspects: Vec<u32>, reason: String },
    /// Writes are not unique (or pieces are ambiguous): use the search.
    NotApplicable(String),
}

/// What each `get` depends on: the writes of every piece it shows (indices into the key's
/// operations), for building witnesses that keep each read explained.
pub type Needs = Vec<Vec<u32>>;

/// Builds the register view and the needs of every operation.
pub fn register_view(
    model: &StringKvModel,
    ops: &[KeyOp],
    describe: &dyn Fn(u32) -> String,
) -> (StringView, Option<Needs>) {
    // Pieces: the strings written by put and append. A text written by several operations
    // (a client repeating itself) is told apart per read, below.
    let mut piece_of_text: HashMap<&[u8], u32> = HashMap::new();
    let mut writers_of_text: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut lengths: Vec<usize> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let piece = match op.prepared.action {
            Action::Write(p) | Action::Append(p) => p,
            _ => continue,
        };
        let text = model.text(piece).as_bytes();
        if text.is_empty() {
            return (
                StringView::NotApplicable(format!(
                    "{} writes the empty string",
                    describe(i as u32)
                )),
                None,
            );
        }
        writers_of_text.entry(piece).or_default().push(i as u32);
        piece_of_text.insert(text, piece);
        lengths.push(text.len());
    }
    lengths.sort_unstable();
    lengths.dedup();
    let is_put = |w: u32| matches!(ops[w as usize].prepared.action, Action::Write(_));
    // Puts that certainly happened, by invocation, with the earliest completion from each on:
    // "some put certainly took effect after `a` completed and before `b` began".
    let puts: Vec<u32> = (0..ops.len() as u32)
        .filter(|&i| {
            let o = &ops[i as usize];
            o.prepared.required && matches!(o.prepared.action, Action::Write(_))
        })
        .collect();
    let mut min_ret_from: Vec<u64> = vec![u64::MAX; puts.len() + 1];
    for k in (0..puts.len()).rev() {
        min_ret_from[k] = min_ret_from[k + 1].min(ops[puts[k] as usize].ret);
    }
    let reset_between = |a_ret: u64, b_call: u64| {
        let first = puts.partition_point(|&p| ops[p as usize].call <= a_ret);
        min_ret_from[first] < b_call
    };

    // The trie of versions: node 0 is the empty string.
    let mut child: HashMap<(u32, u32), u32> = HashMap::new();
    let mut parent_of: Vec<u32> = vec![INIT as u32];
    // writing operation -> (node ending in its piece, first get that showed it)
    let mut node_of_piece: HashMap<u32, (u32, u32)> = HashMap::new();
    let mut out: Vec<KeyOp> = ops.to_vec();
    let mut used: Needs = vec![Vec::new(); ops.len()];
    let needs = read_needs(model, ops, &piece_of_text, &lengths, &writers_of_text);
    let mut node_for = |parent: u32, piece: u32, parent_of: &mut Vec<u32>| -> u32 {
        *child.entry((parent, piece)).or_insert_with(|| {
            parent_of.push(parent);
            (parent_of.len() - 1) as u32
        })
    };
    for (i, op) in ops.iter().enumerate() {
        let Action::Read(s) = op.prepared.action else {
            continue;
        };
        let text = model.text(s).as_bytes();
        let mut pos = 0;
        let mut node = INIT as u32;
        while pos < text.len() {
            let mut found: Option<u32> = None;
            for &len in &lengths {
                if pos + len > text.len() {
                    break;
                }
                if let Some(&p) = piece_of_text.get(&text[pos..pos + len]) {
                    if found.is_some() {
                        return (
                            StringView::NotApplicable(
                                "the written strings do not cut reads into pieces unambiguously"
                                    .to_owned(),
                            ),
                            Some(needs),
                        );
                    }
                    found = Some(p);
                }
            }
            let Some(piece) = found else {
                return invalid(
                    vec![i as u32],
                    format!(
                        "{} returned a string that no sequence of the recorded puts and appends produces",
                        describe(i as u32)
                    ),
                    needs,
                );
            };
            // Which operation wrote this occurrence: it must have been invoked before the read
            // returned, and no put may certainly lie between it and the read.
            let writers = &writers_of_text[&piece];
            let mut candidates = writers.iter().copied().filter(|&w| {
                let wo = &ops[w as usize];
                wo.call < op.ret && !reset_between(wo.ret, op.call)
            });
            let w = match (candidates.next(), candidates.next()) {
                (Some(w), None) => w,
                (None, _) => {
                    // Every write of this text began after the read returned, or a put
                    // certainly replaced the value in between.
                    let mut suspects: Vec<u32> = writers.clone();
                    suspects.extend(used[i].iter().copied());
                    suspects.push(i as u32);
                    for &w in writers {
                        let wo = &ops[w as usize];
                        suspects.extend(puts.iter().copied().find(|&p| {
                            let p = &ops[p as usize];
                            p.call > wo.ret && p.ret < op.call
                        }));
                    }
                    return invalid(
                        suspects,
                        format!(
                            "{} shows the text {:?}, but every write of it began after the read returned or was certainly overwritten by a put before the read began",
                            describe(i as u32),
                            model.text(piece)
                        ),
                        needs,
                    );
                }
                (Some(_), Some(_)) => {
                    return (
                        StringView::NotApplicable(format!(
                            "cannot tell which write {} shows at byte {pos}",
                            describe(i as u32)
                        )),
                        Some(needs),
                    )
                }
            };
            if used[i].contains(&w) {
                return (
                    StringView::NotApplicable(format!(
                        "{} shows the same write twice",
                        describe(i as u32)
                    )),
                    Some(needs),
                );
            }
            used[i].push(w);
            if is_put(w) && pos != 0 {
                return invalid(
                    used[i].iter().copied().chain([i as u32]).collect(),
                    format!(
                        "{} shows the value of {} after other text, but a put replaces the whole value",
                        describe(i as u32),
                        describe(w)
                    ),
                    needs,
                );
            }
            let next = node_for(node, w, &mut parent_of);
            match node_of_piece.get(&w) {
                Some(&(n, first)) if n != next => {
                    let mut suspects = used[first as usize].clone();
                    suspects.extend(used[i].iter().copied());
                    suspects.extend([first, i as u32]);
                    return invalid(
                        suspects,
                        format!(
                            "{} and {} disagree on what came before the text of {}, which was written once",
                            describe(first),
                            describe(i as u32),
                            describe(w)
                        ),
                        needs,
                    );
                }
                Some(_) => {}
                None => {
                    node_of_piece.insert(w, (next, i as u32));
                }
            }
            node = next;
            pos += model.text(piece).len();
        }
        out[i].prepared.action = Action::Read(node);
    }
    for (i, op) in ops.iter().enumerate() {
        match op.prepared.action {
            Action::Write(_) => {
                out[i].prepared.action =
                    Action::Write(node_for(INIT as u32, i as u32, &mut parent_of))
            }
            Action::Append(_) => {
                if let Some(&(node, _)) = node_of_piece.get(&(i as u32)) {
                    out[i].prepared.action = Action::Cas {
                        from: parent_of[node as usize],
                        to: node,
                    };
                }
            }
            _ => {}
        }
    }
    (StringView::Registers(out), Some(needs))
}

/// An `Invalid` view: the suspects in order, each once.
fn invalid(mut suspects: Vec<u32>, reason: String, needs: Needs) -> (StringView, Option<Needs>) {
    suspects.sort_unstable();
    suspects.dedup();
    (StringView::Invalid { suspects, reason }, Some(needs))
}

/// What each read needs in a witness, so that it is never left unexplained: for every piece
/// of its value (cut by the written strings, the longest match first), the latest write of
/// that text invoked before the read returned. A plausible choice, not a proof.
fn read_needs(
    model: &StringKvModel,
    ops: &[KeyOp],
    piece_of_text: &HashMap<&[u8], u32>,
    lengths: &[usize],
    writers_of_text: &HashMap<u32, Vec<u32>>,
) -> Needs {
    let mut needs: Needs = vec![Vec::new(); ops.len()];
    for (i, op) in ops.iter().enumerate() {
        let Action::Read(s) = op.prepared.action else {
            continue;
        };
        let text = model.text(s).as_bytes();
        let mut pos = 0;
        while pos < text.len() {
            let piece = lengths
                .iter()
                .rev()
                .filter(|&&len| pos + len <= text.len())
                .find_map(|&len| piece_of_text.get(&text[pos..pos + len]).copied());
            let Some(piece) = piece else { break };
            let writer = writers_of_text[&piece]
                .iter()
                .copied()
                .filter(|&w| ops[w as usize].call < op.ret && !needs[i].contains(&w))
                .max_by_key(|&w| ops[w as usize].call);
            needs[i].extend(writer);
            pos += model.text(piece).len();
        }
    }
    needs
}
