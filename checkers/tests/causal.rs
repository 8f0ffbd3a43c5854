//! The causal checker on hand-made histories, one per bad pattern and per session guarantee,
//! and differentially against the brute-force oracle on random small histories.
//! SEEDS=N checks N random histories (default 3000); FIRST_SEED=S starts elsewhere.

use checkers::causal::{self, oracle, synth, Events, Model};
use checkers::{Judgement, ModelKind, Options};
use std::time::Duration;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn events(text: &str) -> Events {
    let h = synth::of(text);
    let p = history::pair(&h).expect("pairs");
    Events::from_history(&h, &p)
}

/// The verdicts for CC, CCv, CM and the anomaly kinds found.
fn check(text: &str) -> ([Option<bool>; 3], Vec<String>) {
    let ev = events(text);
    let f = causal::analyse(&ev, Duration::from_secs(10));
    let holds = Model::ALL.map(|m| f.holds.get(&m).copied().flatten());
    let mut kinds: Vec<String> = f.counts.keys().cloned().collect();
    kinds.sort();
    (holds, kinds)
}

const ALL: [Option<bool>; 3] = [Some(true); 3];
const NONE: [Option<bool>; 3] = [Some(false); 3];

fn only(text: &str, kind: &str, holds: [Option<bool>; 3]) {
    let (h, kinds) = check(text);
    assert_eq!(kinds, [kind], "{text}");
    assert_eq!(h, holds, "{text}: CC, CCv, CM");
}

#[test]
fn causal_histories_pass_every_model() {
    for text in [
        "1: w(x,1) r(x,1); 2: r(x,_) w(x,2) r(x,2)",
        "1: w(x,1) w(y,1); 2: r(y,1) r(x,1); 3: r(x,_) r(y,_)",
        // Stale but causal: session 2 has not seen x=1 at all.
        "1: w(x,1); 2: r(x,_) r(x,1) r(x,1)",
        "1: cas(x,_,1) cas(x,1,2); 2: r(x,2) w(y,3); 3: r(y,3) r(x,2)",
    ] {
        let (h, kinds) = check(text);
        assert!(kinds.is_empty(), "{text}: {kinds:?}");
        assert_eq!(h, ALL, "{text}");
    }
}

#[test]
fn each_cc_pattern_is_reported_as_itself() {
    only("1: r(x,2) w(y,1); 2: r(y,1) w(x,2)", "CyclicCO", NONE);
    only("1: w(x,1); 2: r(x,5)", "ThinAirRead", NONE);
    only("1: w!(x,1); 2: r(x,1)", "ThinAirRead", NONE);
    only(
        "1: w(x,1) w(y,1); 2: r(y,1) w(z,1); 3: r(z,1) r(x,_)",
        "WriteCOInitRead",
        NONE,
    );
    only(
        "1: w(x,1) w(x,2) w(y,1); 2: r(y,1) w(z,1); 3: r(z,1) r(x,1)",
        "WriteCORead",
        NONE,
    );
}

#[test]
fn each_session_guarantee_is_reported_by_name() {
    only("1: w(x,1) r(x,_)", "read-your-writes", NONE);
    only("1: w(x,1) w(x,2) r(x,1)", "read-your-writes", NONE);
    only(
        "2: w(x,1) w(x,2); 1: r(x,2) r(x,1)",
        "monotonic-reads",
        NONE,
    );
    only(
        "2: w(x,1) w(y,1); 1: r(y,1) r(x,_)",
        "monotonic-writes",
        NONE,
    );
    only(
        "2: w(x,1); 3: r(x,1) w(y,1); 1: r(y,1) r(x,_)",
        "writes-follow-reads",
        NONE,
    );
}

#[test]
fn cc_but_not_ccv_and_ccv_but_not_cm() {
    // Each session reads the other's write after its own: fine for each session alone (CM),
    // but no one order of the two writes explains both reads (CCv).
    only(
        "1: w(x,1) r(x,2); 2: w(x,2) r(x,1)",
        "CyclicCF",
        [Some(true), Some(false), Some(true)],
    );
    // Session 2 must place x=1 before x=2 (it read 2 after seeing 1), so z=1, before x=1 in
    // session 1, is before its read of z: which returned the initial value.
    only(
        "1: w(z,1) w(x,1) w(y,1); 2: w(x,2) r(z,_) r(y,1) r(x,2)",
        "WriteHBInitRead",
        [Some(true), Some(true), Some(false)],
    );
    only(
        "3: w(z,3); 1: r(z,3) w(z,1) w(x,1) w(y,1); 2: w(x,2) r(z,3) r(y,1) r(x,2)",
        "CyclicHB",
        [Some(true), Some(true), Some(false)],
    );
}

#[test]
fn siblings_must_hold_every_causally_preceding_write() {
    let base = "1: w(x,1) w(y,1); 2: r(y,1) w(z,1); 4: w(x,2); 5: w(x,3)";
    only(
        &format!("{base}; 3: r(z,1) r(x,[2,3])"),
        "WriteCOMissing",
        NONE,
    );
    let (h, kinds) = check(&format!("{base}; 3: r(z,1) r(x,[1,2,3])"));
    assert!(kinds.is_empty() && h == ALL, "{kinds:?}");
    // A version superseded by a write causally before the read, returned beside it.
    only(
        "1: w(x,1); 2: r(x,1) w(x,2); 3: r(x,[1,2])",
        "WriteCORead",
        NONE,
    );
    // Own write missing from the siblings: read-your-writes.
    only(
        "1: w(x,1); 2: w(x,2); 3: w(x,3) r(x,[1,2])",
        "read-your-writes",
        NONE,
    );
}

#[test]
fn witnesses_name_the_path_and_the_verdict_the_model() {
    let text = "2: w(x,1); 3: r(x,1) w(y,7); 1: r(y,7) r(x,_)";
    let h = synth::of(text);
    let p = history::pair(&h).expect("pairs");
    let mut opts = Options::new(ModelKind::Register);
    for (model, want) in [
        (Model::Cc, Judgement::Invalid),
        (Model::Ccv, Judgement::Invalid),
    ] {
        opts.causal = Some(model);
        let r = checkers::registry::find("causal")
            .expect("registered")
            .check(&h, &p, &opts)
            .expect("checks");
        assert_eq!(r.verdict, want);
        let a = &r.anomalies[0];
        assert_eq!(a.kind, "writes-follow-reads");
        let text = a.sentences.join("\n");
        assert!(
            text.contains("w(x, 1) by session 2 is causally before r(x, null)")
                && text.contains("session 3 read x=1, which session 2 wrote")
                && text.contains("session 1 read y=7, which session 3 wrote"),
            "{text}"
        );
        // The causal path, closed by the read that did not see the write.
        assert_eq!(a.cycle.len(), 5, "{:?}", a.cycle);
        assert_eq!(a.cycle[4].from, a.cycle[3].to);
        assert_eq!(a.cycle[4].to, a.cycle[0].from);
        assert!(r
            .summary
            .iter()
            .any(|s| s.contains("writes-follow-reads violated")));
    }
    let cf = synth::of("1: w(x,1) r(x,2); 2: w(x,2) r(x,1)");
    let p = history::pair(&cf).expect("pairs");
    let mut check = |m| {
        opts.causal = Some(m);
        checkers::registry::find("causal")
            .expect("registered")
            .check(&cf, &p, &opts)
            .expect("checks")
    };
    assert_eq!(check(Model::Cc).verdict, Judgement::Valid);
    assert_eq!(check(Model::Cm).verdict, Judgement::Valid);
    let r = check(Model::Ccv);
    assert_eq!(r.verdict, Judgement::Invalid);
    assert!(r
        .summary
        .iter()
        .any(|s| s.contains("CC: holds, CCv: violated, CM: holds")));
    assert_eq!(r.anomalies[0].cycle.len(), 2, "{:?}", r.anomalies[0]);
    assert!(r.anomalies[0].sentences[1].contains("r(x, 2) by session 1 returned the latter"));
}

#[test]
fn unread_info_writes_are_left_out_and_read_ones_kept() {
    let (h, kinds) = check("1: w(x,1) w?(x,2); 2: r(x,1)");
    assert!(kinds.is_empty() && h == ALL, "{kinds:?}");
    // Read: it happened, after x=1 in its session, so reading 1 later is stale.
    let (_, kinds) = check("1: w(x,1) w?(x,2); 2: r(x,2) r(x,1)");
    assert_eq!(kinds, ["monotonic-reads"]);
}

#[test]
fn duplicate_written_values_make_the_check_unknown() {
    let h = synth::of("1: w(x,1); 2: w(x,1); 3: r(x,1)");
    let p = history::pair(&h).expect("pairs");
    let r = checkers::registry::find("causal")
        .expect("registered")
        .check(&h, &p, &Options::new(ModelKind::Register))
        .expect("checks");
    assert_eq!(r.verdict, Judgement::Unknown);
    assert!(
        r.summary
            .iter()
            .any(|s| s.contains("written twice to key x")),
        "{:?}",
        r.summary
    );
}

#[test]
fn agrees_with_the_brute_force_oracle() {
    let (first, n) = (env("FIRST_SEED", 0), env("SEEDS", 3000));
    let mut counts = [[0u64; 2]; 3];
    // Histories that separate the models: CC but not CCv, CCv but not CM, CM but not CCv.
    let mut split = [0u64; 3];
    let mut bad = Vec::new();
    for seed in first..first + n {
        let sessions = synth::random_small(seed, 10);
        let h = synth::history(&sessions);
        let p = history::pair(&h).expect("pairs");
        let ev = Events::from_history(&h, &p);
        let Some(want) = oracle::decide(&ev) else {
            continue;
        };
        let f = causal::analyse(&ev, Duration::from_secs(10));
        let got = Model::ALL.map(|m| f.holds.get(&m).copied().flatten());
        let want = [want.cc, want.ccv, want.cm];
        split[0] += u64::from(want[0] && !want[1]);
        split[1] += u64::from(want[1] && !want[2]);
        split[2] += u64::from(want[2] && !want[1]);
        for i in 0..3 {
            counts[i][usize::from(want[i])] += 1;
            if got[i] != Some(want[i]) {
                bad.push(format!(
                    "seed {seed}: {} checker {:?} oracle {}: {:?}\n{:?}",
                    Model::ALL[i].name(),
                    got[i],
                    want[i],
                    f.counts,
                    sessions
                        .iter()
                        .map(|(p, ops)| format!(
                            "{p}: {}",
                            ops.iter()
                                .map(|o| format!("{}({},{}){:?}", o.f, o.key, o.value, o.kind))
                                .collect::<Vec<_>>()
                                .join(" ")
                        ))
                        .collect::<Vec<_>>()
                ));
            }
        }
    }
    println!("CC, CCv, CM: [rejected, accepted] by the oracle: {counts:?}");
    println!("CC not CCv, CCv not CM, CM not CCv: {split:?}");
    // CCv-but-not-CM histories are about 1 in 50,000 random ones (SEEDS=50000 finds one);
    // the hand-made ones below cover them.
    assert!(
        (split[0] > 0 && split[2] > 0) || n < 1000,
        "no history separates the models: {split:?}"
    );
    assert!(
        bad.is_empty(),
        "{} disagreements:\n{}",
        bad.len(),
        bad[..bad.len().min(5)].join("\n")
    );
    for (i, [no, yes]) in counts.iter().enumerate() {
        assert!(
            *no > n / 20 && *yes > n / 20,
            "{}: too few of one verdict to compare: {no} rejected, {yes} accepted",
            Model::ALL[i].name()
        );
    }
}

#[test]
fn the_oracle_agrees_on_the_hand_made_histories() {
    for (text, want) in [
        ("1: w(x,1) r(x,2); 2: w(x,2) r(x,1)", [true, false, true]),
        (
            "1: w(z,1) w(x,1) w(y,1); 2: w(x,2) r(z,_) r(y,1) r(x,2)",
            [true, true, false],
        ),
        (
            "3: w(z,3); 1: r(z,3) w(z,1) w(x,1) w(y,1); 2: w(x,2) r(z,3) r(y,1) r(x,2)",
            [true, true, false],
        ),
        ("2: w(x,1); 3: r(x,1) w(y,1); 1: r(y,1) r(x,_)", [false; 3]),
        ("1: w(x,1) r(x,1); 2: r(x,_) w(x,2) r(x,2)", [true; 3]),
    ] {
        let v = oracle::decide(&events(text)).expect("small");
        assert_eq!([v.cc, v.ccv, v.cm], want, "{text}");
    }
}
