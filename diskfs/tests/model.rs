//! Seeded random operations on one directory, checked after every step against a model of
//! what is current and what is durable (as jepsen-io/local-fs checks a filesystem against a
//! pure model). Reproduce a failure with SEED=<seed>.

mod common;

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;

use common::{fsync_dir, mount};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Default, Clone)]
struct Model {
    /// name -> file id, as the directory is now and as it is durably
    current_ns: BTreeMap<String, usize>,
    durable_ns: BTreeMap<String, usize>,
    current: Vec<Vec<u8>>,
    durable: Vec<Vec<u8>>,
}

fn check(fx: &common::Fixture, m: &Model, seed: u64, step: usize, what: &str) {
    let names = fx.names(".");
    let want: Vec<&String> = m.current_ns.keys().collect();
    assert_eq!(
        names.iter().collect::<Vec<_>>(),
        want,
        "seed {seed} step {step} ({what}): names; reproduce with SEED={seed}"
    );
    for (name, id) in &m.current_ns {
        let got = fx.read_both(name);
        assert!(
            got == m.current[*id],
            "seed {seed} step {step} ({what}): {name} is {} bytes, the model says {}; reproduce with SEED={seed}",
            got.len(),
            m.current[*id].len()
        );
    }
}

fn run(seed: u64, steps: usize) {
    let Some(fx) = mount("model") else { return };
    let mut rng = Rng(seed);
    let mut m = Model::default();
    let names = ["a", "b", "c", "d"];
    for step in 0..steps {
        let name = names[rng.below(names.len() as u64) as usize].to_string();
        let exists = m.current_ns.get(&name).copied();
        let what;
        match (rng.below(100), exists) {
            (0..=29, Some(id)) => {
                let off = rng.below(3000) as usize;
                let len = 1 + rng.below(1500) as usize;
                let byte = b'a' + rng.below(26) as u8;
                let f = OpenOptions::new().write(true).open(fx.m(&name)).unwrap();
                f.write_all_at(&vec![byte; len], off as u64).unwrap();
                let d = &mut m.current[id];
                if d.len() < off + len {
                    d.resize(off + len, 0);
                }
                d[off..off + len].fill(byte);
                what = format!("write {name} {off}+{len}");
            }
            (30..=39, Some(id)) => {
                let len = rng.below(4000) as usize;
                OpenOptions::new()
                    .write(true)
                    .open(fx.m(&name))
                    .unwrap()
                    .set_len(len as u64)
                    .unwrap();
                m.current[id].resize(len, 0);
                what = format!("truncate {name} {len}");
            }
            (40..=54, Some(id)) => {
                File::open(fx.m(&name)).unwrap().sync_data().unwrap();
                m.durable[id] = m.current[id].clone();
                what = format!("fsync {name}");
            }
            (55..=64, None) => {
                File::create(fx.m(&name)).unwrap();
                m.current.push(Vec::new());
                m.durable.push(Vec::new());
                m.current_ns.insert(name.clone(), m.current.len() - 1);
                what = format!("create {name}");
            }
            (65..=72, Some(_)) => {
                fs::remove_file(fx.m(&name)).unwrap();
                m.current_ns.remove(&name);
                what = format!("unlink {name}");
            }
            (73..=82, Some(id)) => {
                let to = names[rng.below(names.len() as u64) as usize].to_string();
                fs::rename(fx.m(&name), fx.m(&to)).unwrap();
                m.current_ns.remove(&name);
                m.current_ns.insert(to.clone(), id);
                what = format!("rename {name} {to}");
            }
            (83..=92, _) => {
                fsync_dir(&fx.mnt);
                m.durable_ns = m.current_ns.clone();
                what = "fsync dir".to_string();
            }
            (93..=99, _) => {
                fx.control.lose_unsynced().unwrap();
                m.current_ns = m.durable_ns.clone();
                m.current = m.durable.clone();
                assert_eq!(fx.control.pending(), diskfs::Pending::default());
                what = "power loss".to_string();
            }
            _ => continue,
        }
        check(&fx, &m, seed, step, &what);
    }
}

#[test]
fn random_operations_match_the_model() {
    let seeds: Vec<u64> = match std::env::var("SEED") {
        Ok(s) => vec![s.parse().expect("SEED is a number")],
        Err(_) => (1..=12).collect(),
    };
    for seed in seeds {
        run(seed, 300);
    }
}
