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

use crate::model::{Action, StringKvModel, INIT};
use crate::search::KeyOp;
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
    // Pieces: the strings written by put and append, each by one operation.
    let mut piece_of_text: HashMap<&[u8], u32> = HashMap::new();
    let mut writer_of_piece: HashMap<u32, u32> = HashMap::new();
    let mut lengths: Vec<usize> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        let piece = match op.prepared.action {
            Action::Write(p) | Action::Append(p) => p,
            _ => continue,
        };
        let text = model.text(piece).as_bytes();
        if text.is_empty() || writer_of_piece.insert(piece, i as u32).is_some() {
            return (
                StringView::NotApplicable(format!(
                    "{} writes a string that is empty or written more than once",
                    describe(i as u32)
                )),
                None,
            );
        }
        piece_of_text.insert(text, piece);
        lengths.push(text.len());
    }
    lengths.sort_unstable();
    lengths.dedup();
    let is_put = |piece: u32| {
        matches!(
            ops[writer_of_piece[&piece] as usize].prepared.action,
            Action::Write(_)
        )
    };

    // The trie of versions: node 0 is the empty string.
    let mut child: HashMap<(u32, u32), u32> = HashMap::new();
    let mut parent_of: Vec<u32> = vec![INIT as u32];
    // piece -> (node ending in it, first get that showed it)
    let mut node_of_piece: HashMap<u32, (u32, u32)> = HashMap::new();
    let mut out: Vec<KeyOp> = ops.to_vec();
    let mut needs: Needs = vec![Vec::new(); ops.len()];
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
                            None,
                        );
                    }
                    found = Some(p);
                }
            }
            let Some(piece) = found else {
                return (
                    StringView::Invalid {
                        suspects: vec![i as u32],
                        reason: format!(
                            "{} returned a string that no sequence of the recorded puts and appends produces",
                            describe(i as u32)
                        ),
                    },
                    None,
                );
            };
            let w = writer_of_piece[&piece];
            needs[i].push(w);
            if is_put(piece) && pos != 0 {
                return (
                    StringView::Invalid {
                        suspects: needs[i].clone().into_iter().chain([i as u32]).collect(),
                        reason: format!(
                            "{} shows the value of {} after other text, but a put replaces the whole value",
                            describe(i as u32),
                            describe(w)
                        ),
                    },
                    None,
                );
            }
            let next = node_for(node, piece, &mut parent_of);
            match node_of_piece.get(&piece) {
                Some(&(n, first)) if n != next => {
                    let mut suspects = needs[first as usize].clone();
                    suspects.extend(needs[i].iter().copied());
                    suspects.extend([first, i as u32]);
                    suspects.sort_unstable();
                    suspects.dedup();
                    return (
                        StringView::Invalid {
                            suspects,
                            reason: format!(
                                "{} and {} disagree on what came before the text of {}, which was written once",
                                describe(first),
                                describe(i as u32),
                                describe(w)
                            ),
                        },
                        None,
                    );
                }
                Some(_) => {}
                None => {
                    node_of_piece.insert(piece, (next, i as u32));
                }
            }
            node = next;
            pos += model.text(piece).len();
        }
        out[i].prepared.action = Action::Read(node);
    }
    for (i, op) in ops.iter().enumerate() {
        match op.prepared.action {
            Action::Write(p) => {
                out[i].prepared.action = Action::Write(node_for(INIT as u32, p, &mut parent_of))
            }
            Action::Append(p) => {
                if let Some(&(node, _)) = node_of_piece.get(&p) {
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
