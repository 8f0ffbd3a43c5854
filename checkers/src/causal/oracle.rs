//! A brute-force oracle for the causal checker, for tests on small histories: the definitions
//! of CC, CCv and CM (Bouajjani et al., POPL 2017, section 3) applied literally, with no bad
//! pattern in sight.
//!
//! The causal order is (session order ∪ reads-from)+, closed here by Warshall's algorithm over
//! a matrix. Only it needs trying: any larger causal order puts more writes in every causal
//! past and more order among them, so it explains no read the smallest one does not. Then:
//!
//! - **CC**: every read returns the last write of its key in some linear extension of the
//!   causal order over the writes in its causal past (every such extension is tried);
//! - **CCv**: one total order of all writes, extending the causal order (every one is tried),
//!   makes every read return the last write of its key in its causal past;
//! - **CM**: for each session, one total order of the writes in the causal past of its last
//!   operation and of its own reads, extending the causal order (every one is tried), makes
//!   each of its reads return the last write of its key before it.
//!
//! Exponential; [`MAX_EVENTS`] bounds it.

use super::Events;

/// The most events the oracle takes.
pub const MAX_EVENTS: usize = 10;

/// What the oracle decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdicts {
    pub cc: bool,
    pub ccv: bool,
    pub cm: bool,
}

/// Decides CC, CCv and CM for `ev` (single-value reads), or `None` when it is too large.
pub fn decide(ev: &Events) -> Option<Verdicts> {
    let n = ev.n();
    if n > MAX_EVENTS || ev.multi_value || ev.unusable.is_some() {
        return None;
    }
    if ev
        .events
        .iter()
        .enumerate()
        .any(|(r, e)| !e.write && ev.rf(r as u32).is_empty() && e.text != "null")
    {
        // A value nobody wrote: no order explains it.
        return Some(Verdicts {
            cc: false,
            ccv: false,
            cm: false,
        });
    }
    let mut co = vec![vec![false; n]; n];
    for (_, list) in &ev.sessions {
        for (i, &a) in list.iter().enumerate() {
            for &b in &list[i + 1..] {
                co[a as usize][b as usize] = true;
            }
        }
    }
    for r in 0..n as u32 {
        for &w in ev.rf(r) {
            co[w as usize][r as usize] = true;
        }
    }
    // Warshall's closure.
    for k in 0..n {
        let via = co[k].clone();
        for row in co.iter_mut() {
            if row[k] {
                for (x, &v) in row.iter_mut().zip(&via) {
                    *x |= v;
                }
            }
        }
    }
    if (0..n).any(|i| co[i][i]) {
        return Some(Verdicts {
            cc: false,
            ccv: false,
            cm: false,
        });
    }
    let writes: Vec<usize> = (0..n).filter(|&e| ev.events[e].write).collect();
    let reads: Vec<usize> = (0..n).filter(|&e| !ev.events[e].write).collect();
    let key = |e: usize| ev.events[e].key;
    let chosen = |r: usize| ev.rf(r as u32).first().map(|&w| w as usize);
    // The last write of r's key among `order` (writes only, or writes then r).
    let last_of = |order: &[usize], r: usize| {
        order
            .iter()
            .take_while(|&&e| e != r)
            .filter(|&&e| ev.events[e].write && key(e) == key(r))
            .last()
            .copied()
    };
    let cc = reads.iter().all(|&r| {
        let past: Vec<usize> = writes
            .iter()
            .copied()
            .filter(|&w| co[w][r] && key(w) == key(r))
            .collect();
        let mut found = false;
        extensions(&past, &co, &mut |order| {
            found |= order.last().copied() == chosen(r);
            found
        });
        found
    });
    let mut ccv = false;
    if cc {
        extensions(&writes, &co, &mut |order| {
            ccv = reads.iter().all(|&r| {
                let past: Vec<usize> = order.iter().copied().filter(|&w| co[w][r]).collect();
                last_of(&past, r) == chosen(r)
            });
            ccv
        });
    }
    let cm = cc
        && ev.sessions.iter().all(|(_, list)| {
            let Some(&last) = list.last() else {
                return true;
            };
            let last = last as usize;
            let mine: Vec<usize> = list
                .iter()
                .map(|&e| e as usize)
                .filter(|&e| !ev.events[e].write)
                .collect();
            if mine.is_empty() {
                return true;
            }
            let mut view: Vec<usize> = writes
                .iter()
                .copied()
                .filter(|&w| co[w][last] || w == last)
                .collect();
            view.extend(&mine);
            let mut ok = false;
            extensions(&view, &co, &mut |order| {
                ok = mine.iter().all(|&r| last_of(order, r) == chosen(r));
                ok
            });
            ok
        });
    Some(Verdicts { cc, ccv, cm })
}

/// Calls `visit` with every ordering of `items` that extends `co`, until it returns true.
fn extensions(items: &[usize], co: &[Vec<bool>], visit: &mut dyn FnMut(&[usize]) -> bool) {
    fn go(
        items: &[usize],
        co: &[Vec<bool>],
        placed: &mut Vec<usize>,
        used: &mut Vec<bool>,
        visit: &mut dyn FnMut(&[usize]) -> bool,
    ) -> bool {
        if placed.len() == items.len() {
            return visit(placed);
        }
        for i in 0..items.len() {
            if used[i] {
                continue;
            }
            let x = items[i];
            // Every item that must come before x is placed already.
            if items
                .iter()
                .enumerate()
                .any(|(j, &y)| !used[j] && j != i && co[y][x])
            {
                continue;
            }
            used[i] = true;
            placed.push(x);
            if go(items, co, placed, used, visit) {
                return true;
            }
            placed.pop();
            used[i] = false;
        }
        false
    }
    let mut used = vec![false; items.len()];
    go(items, co, &mut Vec::new(), &mut used, visit);
}
