//! Throughput and latency over time, summarised into buckets so that a run of any length
//! draws in a bounded number of points: at most [`MAX_BUCKETS`] per line.

use crate::ops::{Ops, Outcome};

/// Buckets per line at most.
pub const MAX_BUCKETS: usize = 200;
/// Operation names drawn as lines of their own; the rest are drawn together as "other".
pub const MAX_FS: usize = 6;

/// Bucket widths to choose from (ns): round numbers, so the axis reads well.
const WIDTHS_NS: [u64; 18] = [
    1_000_000,
    2_000_000,
    5_000_000,
    10_000_000,
    20_000_000,
    50_000_000,
    100_000_000,
    200_000_000,
    500_000_000,
    1_000_000_000,
    2_000_000_000,
    5_000_000_000,
    10_000_000_000,
    30_000_000_000,
    60_000_000_000,
    300_000_000_000,
    600_000_000_000,
    3_600_000_000_000,
];

/// One line: a value per bucket (`None` where the bucket has no operation).
#[derive(Clone, Debug)]
pub struct Line {
    /// The operation (`read`, `write`, …, or `other`).
    pub f: String,
    /// Throughput: operations per second. Latency: the median, in ms.
    pub values: Vec<Option<f64>>,
    /// Latency only: the 99th percentile per bucket, in ms.
    pub p99: Vec<Option<f64>>,
    /// Operations behind the line.
    pub total: usize,
}

/// The lines of one outcome (ok, fail or info).
#[derive(Clone, Debug)]
pub struct Panel {
    pub outcome: Outcome,
    pub throughput: Vec<Line>,
    pub latency: Vec<Line>,
    pub total: usize,
}

#[derive(Clone, Debug)]
pub struct Series {
    pub bucket_ns: u64,
    pub buckets: usize,
    /// The time axis ends here (ns).
    pub end_ns: u64,
    pub panels: Vec<Panel>,
    /// Names lumped into "other" (there were more than [`MAX_FS`]).
    pub lumped: Vec<String>,
}

/// The bucket width for a run of `end_ns`: the smallest round width that needs no more than
/// [`MAX_BUCKETS`] buckets.
pub fn bucket_width(end_ns: u64) -> u64 {
    WIDTHS_NS
        .iter()
        .copied()
        .find(|w| end_ns / w < MAX_BUCKETS as u64)
        .unwrap_or_else(|| end_ns / MAX_BUCKETS as u64 + 1)
}

pub(crate) fn quantile(sorted: &[u64], q: f64) -> u64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Buckets every completed operation of `ops` by its completion time.
pub fn compute(ops: &Ops) -> Series {
    let end_ns = ops.end_ns.max(1);
    let bucket_ns = bucket_width(end_ns);
    let buckets = (end_ns / bucket_ns + 1) as usize;
    let lines_n = ops.fs.len().min(MAX_FS + 1);
    let lumped: Vec<String> = if ops.fs.len() > MAX_FS + 1 {
        ops.fs[MAX_FS..].to_vec()
    } else {
        Vec::new()
    };
    let line_of = |f: usize| f.min(lines_n.saturating_sub(1));
    let names: Vec<String> = (0..lines_n)
        .map(|i| {
            if !lumped.is_empty() && i == MAX_FS {
                "other".to_string()
            } else {
                ops.fs[i].clone()
            }
        })
        .collect();
    let mut panels = Vec::new();
    for outcome in Outcome::COMPLETED {
        // latencies[line][bucket]
        let mut lat: Vec<Vec<Vec<u64>>> = vec![vec![Vec::new(); buckets]; lines_n];
        let mut total = 0usize;
        for op in ops.ops.iter().filter(|o| o.outcome == outcome) {
            let Some(done) = op.complete_ns else { continue };
            let b = ((done / bucket_ns) as usize).min(buckets - 1);
            lat[line_of(op.f)][b].push(done.saturating_sub(op.invoke_ns));
            total += 1;
        }
        let per_s = 1e9 / bucket_ns as f64;
        let mut throughput = Vec::new();
        let mut latency = Vec::new();
        for (li, per_bucket) in lat.iter_mut().enumerate() {
            let n: usize = per_bucket.iter().map(Vec::len).sum();
            if n == 0 {
                continue;
            }
            throughput.push(Line {
                f: names[li].clone(),
                values: per_bucket
                    .iter()
                    .map(|v| Some(v.len() as f64 * per_s))
                    .collect(),
                p99: Vec::new(),
                total: n,
            });
            let mut med = Vec::with_capacity(buckets);
            let mut p99 = Vec::with_capacity(buckets);
            for v in per_bucket.iter_mut() {
                if v.is_empty() {
                    med.push(None);
                    p99.push(None);
                } else {
                    v.sort_unstable();
                    med.push(Some(quantile(v, 0.5) as f64 / 1e6));
                    p99.push(Some(quantile(v, 0.99) as f64 / 1e6));
                }
            }
            latency.push(Line {
                f: names[li].clone(),
                values: med,
                p99,
                total: n,
            });
        }
        panels.push(Panel {
            outcome,
            throughput,
            latency,
            total,
        });
    }
    Series {
        bucket_ns,
        buckets,
        end_ns,
        panels,
        lumped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::OpRec;

    #[test]
    fn buckets_are_round_and_bounded() {
        assert_eq!(bucket_width(10_000_000_000), 100_000_000);
        assert_eq!(bucket_width(600_000_000_000), 5_000_000_000);
        assert!(1_000_000_000_000_000 / bucket_width(1_000_000_000_000_000) <= 200);
    }

    #[test]
    fn throughput_counts_completions_per_second() {
        let op = |f, outcome, t| OpRec {
            f,
            outcome,
            invoke_ns: t,
            complete_ns: Some(t + 2_000_000),
            node: None,
        };
        let ops = Ops {
            fs: vec!["read".into(), "write".into()],
            ops: vec![
                op(0, Outcome::Ok, 0),
                op(0, Outcome::Ok, 10_000_000),
                op(1, Outcome::Fail, 20_000_000),
            ],
            nodes: Vec::new(),
            unmatched: 0,
            end_ns: 10_000_000_000,
        };
        let s = compute(&ops);
        assert_eq!(s.bucket_ns, 100_000_000);
        let ok = &s.panels[0];
        assert_eq!(ok.total, 2);
        assert_eq!(ok.throughput.len(), 1);
        assert_eq!(ok.throughput[0].values[0], Some(20.0));
        assert_eq!(ok.latency[0].values[0], Some(2.0));
        assert_eq!(s.panels[1].throughput[0].f, "write");
        assert!(s.panels[2].throughput.is_empty());
    }
}
