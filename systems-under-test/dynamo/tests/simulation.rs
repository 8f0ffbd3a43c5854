//! dynamo-node's replica in the seeded simulation: partitions, crashes, lost, duplicated and
//! reordered messages; at the end every fault healed, a long quiet period, and the judgement
//! of the end state (every replica of a key equal, every acknowledged element and increment
//! there, every hint handed back).

mod sim;

use harness_sim::{seeds, Sim};
use sim::{checked, config, judge, Dynamo};

const NODES: usize = 5;

fn run(
    seed: u64,
    cfg: harness_sim::SimConfig,
    system: Dynamo,
) -> (Vec<String>, harness_sim::SimResult<Dynamo>) {
    let result = Sim::new(cfg, system).run();
    let mut problems = judge(NODES, &result.system.end, &result.history);
    problems.extend(checked(&result.history));
    if let Some(v) = &result.violation {
        problems.insert(0, v.clone());
    }
    let _ = seed;
    (problems, result)
}

#[test]
fn replicas_converge_after_every_partition_heals() {
    let mut hints = 0;
    let mut ops = 0;
    for seed in seeds(20, 0xd1).expect("SEED/SEEDS") {
        let (problems, r) = run(seed, config(NODES, seed), Dynamo::new(NODES));
        assert!(problems.is_empty(), "seed {seed}: {problems:#?}");
        hints += r
            .system
            .end
            .iter()
            .flatten()
            .map(|e| e.hints_delivered)
            .sum::<u64>();
        ops += r.ops_ok;
    }
    assert!(ops > 1000, "the clients got work done: {ops}");
    assert!(
        hints > 0,
        "partitions and crashes made stand-ins, whose hints were delivered"
    );
}
