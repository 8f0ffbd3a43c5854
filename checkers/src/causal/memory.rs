//! Causal memory (Ahamad et al., "Causal memory: definitions, implementation, and
//! programming", 1995), by the bad patterns of Bouajjani et al. (POPL 2017): each session must
//! see one serialisation of the writes in its causal past that explains its own reads. Its
//! happens-before relation HB is the smallest transitive relation that contains the causal
//! order and, for each read of the session that returned w's value while another write w' of
//! the key was already before it in HB, orders w' before w (the read chose w over w'). The
//! patterns: `CyclicHB` (HB has a cycle) and `WriteHBInitRead` (a read of the session returned
//! the initial value though a write of the key is before it in HB).
//!
//! HB only grows along a session (its causal past and its reads only grow), so the relation
//! of a session's last operation decides the session. It is computed as a fixpoint: vector
//! clocks over the causal order plus the edges derived so far, each round adding, for each
//! read of the session and each other session, the edge from that session's last write of the
//! key before the read (earlier ones reach it by session order). Each round costs what the
//! causal order does (O(n · sessions)); rounds continue until nothing is added, so the whole
//! is O(rounds · sessions · n · sessions) — far above CC and CCv, and bounded by a time budget
//! past which CM is unknown.

use super::{anomaly, because, Events, Findings, Order, Via};
use std::time::{Duration, Instant};

/// Decides causal memory: `Some(holds)`, or `None` when the budget ran out first.
pub fn check(ev: &Events, co: &Order, budget: Duration, f: &mut Findings) -> Option<bool> {
    let started = Instant::now();
    let mut holds = true;
    for s in 0..ev.sessions.len() as u32 {
        let reads: Vec<u32> = ev.sessions[s as usize]
            .1
            .iter()
            .copied()
            .filter(|&e| !ev.events[e as usize].write)
            .collect();
        if reads.is_empty() {
            continue;
        }
        let mut derived: Vec<(u32, u32, Via)> = Vec::new();
        let mut owned: Option<Order> = None;
        loop {
            if started.elapsed() > budget {
                f.unknown.push(format!(
                    "CM undecided: its fixpoint ran out of its {:.0} s budget after {} of {} \
                     sessions ({} events); CC and CCv are decided",
                    budget.as_secs_f64(),
                    s,
                    ev.sessions.len(),
                    ev.n()
                ));
                return None;
            }
            let hb = owned.as_ref().unwrap_or(co);
            if !hb.acyclic() {
                holds = false;
                report_cycle(ev, hb, s, f);
                break;
            }
            let mut added = Vec::new();
            let mut broken = false;
            for &r in &reads {
                let er = &ev.events[r as usize];
                let from = ev.rf(r);
                if from.is_empty() && er.text != "null" {
                    continue;
                }
                for &t in &ev.writers_of_key[er.key as usize] {
                    let Some(w) = hb.last_write(ev, t, er.key, r) else {
                        continue;
                    };
                    if from.is_empty() {
                        holds = false;
                        broken = true;
                        report_init(ev, hb, s, w, r, f);
                        break;
                    }
                    let chosen = from[0];
                    if w != chosen && !hb.reaches(ev, w, chosen) {
                        added.push((w, chosen, Via::Hb(r)));
                    }
                }
                if broken {
                    break;
                }
            }
            if broken || added.is_empty() {
                break;
            }
            derived.extend(added);
            owned = Some(Order::new(ev, &derived));
        }
    }
    Some(holds)
}

fn report_cycle(ev: &Events, hb: &Order, s: u32, f: &mut Findings) {
    let process = ev.sessions[s as usize].0;
    for c in hb.cycles(1, Some(Via::is_hb)) {
        let events: Vec<u32> = c.iter().map(|e| e.0).collect();
        let mut sentences = vec![format!(
            "Session {process}'s reads cannot be explained by one order of the writes it saw: \
             in its view each operation below comes before the next, and the last before the \
             first."
        )];
        sentences.extend(
            c.iter()
                .map(|&(a, b, via)| format!("  - {}", because(ev, a, b, via))),
        );
        let title = format!(
            "session {process} saw writes in an order no serialisation of its causal past allows"
        );
        f.add(anomaly(ev, "CyclicHB", None, title, sentences, &events, &c));
    }
}

fn report_init(ev: &Events, hb: &Order, s: u32, w: u32, r: u32, f: &mut Findings) {
    let process = ev.sessions[s as usize].0;
    let key = ev.events[r as usize].key;
    let path = hb.path(ev, w, r);
    let mut sentences = vec![format!(
        "{} returned the initial value of {}, but in session {process}'s view {} comes \
             before it:",
        ev.who(r),
        ev.keys[key as usize],
        ev.who(w)
    )];
    sentences.extend(
        path.iter()
            .map(|&(a, b, via)| format!("  - {}", because(ev, a, b, via))),
    );
    let title = format!(
        "session {process} read the initial {} after a write of it was in its view",
        ev.keys[key as usize]
    );
    let mut a = anomaly(
        ev,
        "WriteHBInitRead",
        Some(key),
        title,
        sentences,
        &[w, r],
        &[],
    );
    a.cycle = super::edges_of(ev, &path);
    a.cycle.push(super::did_not_see(ev, r, w));
    f.add(a);
}
