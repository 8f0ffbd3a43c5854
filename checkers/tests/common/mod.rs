//! Helpers shared by the differential and adversarial tests.

use checkers::lin::model::AnyModel;
use checkers::lin::prepare;
use checkers::lin::search::KeyOp;
use history::History;

/// The checker's form of a single-key history, interned by `model`.
pub fn kops_of(model: &mut AnyModel, h: &History) -> Vec<KeyOp> {
    let paired = history::pair(h).expect("test histories are well formed");
    let ids: Vec<usize> = (0..paired.ops.len()).collect();
    prepare(model, h, &paired, &ids).expect("test values fit the model")
}

/// The seeds to run: `SEED=<n>` replays one; otherwise `count` of them (`CASES=<n>` for more,
/// in a longer hunt), spread by `stride` and offset by `salt`.
pub fn seeds(count: u64, stride: u64, salt: u64) -> Vec<u64> {
    match std::env::var("SEED") {
        Ok(s) => vec![s.parse().expect("SEED is a number")],
        Err(_) => {
            let count =
                std::env::var("CASES").map_or(count, |c| c.parse().expect("CASES is a number"));
            (0..count).map(|i| i * stride + salt).collect()
        }
    }
}

/// A witness window as the checker's operations, with a fresh model that interned the same
/// history (so the window's value ids mean the same thing), ready for an oracle.
pub fn window_of(
    model: checkers::ModelKind,
    h: &History,
    kops: &[KeyOp],
    window_ids: &[usize],
) -> (AnyModel, Vec<KeyOp>) {
    let window = kops
        .iter()
        .filter(|k| window_ids.contains(&k.id))
        .copied()
        .collect();
    let mut fresh = checkers::lin::model::new_model(model);
    let _ = kops_of(&mut fresh, h);
    (fresh, window)
}
