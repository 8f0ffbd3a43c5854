//! Writes a synthetic run folder (run.json, history.jsonl, results.json) and renders its
//! report, printing how long rendering took and how big the page is: the report's benchmark,
//! and the source of the small fixtures under reports/tests/fixtures/.
//!
//!     cargo run --release -p harness-reports --example synthetic-run -- --ops 100000 --bad
//!
//! Register histories come from `checkers::lin::synth` (linearizable by construction, or with one
//! planted stale read); set histories are made here (adds, reads, final reads; `--bad` loses
//! one acknowledged element and invents one). Times are stretched over `--seconds`, and a
//! fault starts and stops every `--fault-every` seconds (partition, kill, pause, clock in
//! turn), so the report has a timeline to draw. The results are what the checkers say, in the
//! layout `harness run` writes.

use checkers::lin::synth::{generate_detailed, SynthConfig};
use history::jsonl::JsonlWriter;
use history::{Event, EventType, History, Process};
use serde_json::{json, Value};
use std::io::BufWriter;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Instant;

const USAGE: &str = "\
usage: synthetic-run [OPTIONS]

Writes a synthetic run folder and renders its report.html, printing the render time and size.

options:
  --workload W       register or set                             (default register)
  --ops N            client operations                           (default 100000)
  --keys N           keys                                        (default 10)
  --clients N        concurrent clients                          (default 50)
  --seed N           generator seed                              (default 1)
  --seconds S        the run's length, times are stretched to it (default 120)
  --fault-every S    a fault starts every 2S seconds, lasting S  (default 10; 0: none)
  --bad              plant an anomaly (a stale read; a lost and an unexpected element)
  --out DIR          the run folder                              (default /tmp/synthetic-run)
  --no-render        write the folder only
  -h, --help         show this message";

struct Args {
    workload: String,
    ops: usize,
    keys: usize,
    clients: usize,
    seed: u64,
    seconds: f64,
    fault_every: f64,
    bad: bool,
    out: PathBuf,
    render: bool,
}

fn number<T: FromStr>(name: &str, text: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{name} expects a number, got `{text}`"))
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut a = Args {
        workload: "register".into(),
        ops: 100_000,
        keys: 10,
        clients: 50,
        seed: 1,
        seconds: 120.0,
        fault_every: 10.0,
        bad: false,
        out: PathBuf::from("/tmp/synthetic-run"),
        render: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--workload" => a.workload = value()?,
            "--ops" => a.ops = number(&arg, &value()?)?,
            "--keys" => a.keys = number(&arg, &value()?)?,
            "--clients" => a.clients = number(&arg, &value()?)?,
            "--seed" => a.seed = number(&arg, &value()?)?,
            "--seconds" => a.seconds = number(&arg, &value()?)?,
            "--fault-every" => a.fault_every = number(&arg, &value()?)?,
            "--bad" => a.bad = true,
            "--out" => a.out = PathBuf::from(value()?),
            "--no-render" => a.render = false,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if a.workload != "register" && a.workload != "set" {
        return Err(format!("--workload: register or set, not {}", a.workload));
    }
    if a.keys == 0 || a.clients == 0 || a.ops == 0 || a.seconds <= 0.0 {
        return Err("--keys, --clients, --ops and --seconds must be positive".into());
    }
    Ok(Some(a))
}

const NODES: usize = 5;

fn node(i: u64) -> String {
    format!("n{}", 1 + i % NODES as u64)
}

fn event(
    time: u64,
    process: Process,
    kind: EventType,
    f: &str,
    key: Option<String>,
    value: Value,
) -> Event {
    Event {
        index: 0,
        time,
        process,
        kind,
        f: f.into(),
        key,
        value,
        node: None,
        error: None,
        local: false,
        siblings: false,
        context: None,
    }
}

/// A set workload: clients add unique elements to keys s0.. and now and then read one; at the
/// end every node reads every key. `bad`: one acknowledged element is missing from the final
/// reads (lost) and one read returns an element nobody added (unexpected).
fn set_history(a: &Args) -> Vec<Event> {
    let mut rng = checkers::rng::SplitMix64(a.seed);
    let mut events = Vec::new();
    let mut sets: Vec<Vec<u64>> = vec![Vec::new(); a.keys];
    let span = 1_000_000_000u64;
    let step = (span / a.ops as u64).max(1);
    let mut t = 0u64;
    let mut planted = false;
    for i in 0..a.ops as u64 {
        let p = i % a.clients as u64;
        let k = (rng.next_u64() % a.keys as u64) as usize;
        let key = Some(format!("s{k}"));
        let lat = 20_000 + rng.next_u64() % 400_000;
        if rng.next_u64().is_multiple_of(10) {
            let mut seen = sets[k].clone();
            if a.bad && !planted && i >= (a.ops / 2) as u64 {
                seen.push(999_999);
                planted = true;
            }
            events.push(event(
                t,
                Process::Client(p),
                EventType::Invoke,
                "read",
                key.clone(),
                Value::Null,
            ));
            events.push(event(
                t + lat,
                Process::Client(p),
                EventType::Ok,
                "read",
                key,
                json!(seen),
            ));
        } else {
            let fail = rng.next_u64().is_multiple_of(20);
            events.push(event(
                t,
                Process::Client(p),
                EventType::Invoke,
                "add",
                key.clone(),
                json!(i),
            ));
            if fail {
                let mut e = event(
                    t + lat,
                    Process::Client(p),
                    EventType::Fail,
                    "add",
                    key,
                    json!(i),
                );
                e.error = Some(json!("no leader"));
                events.push(e);
            } else {
                events.push(event(
                    t + lat,
                    Process::Client(p),
                    EventType::Ok,
                    "add",
                    key,
                    json!(i),
                ));
                sets[k].push(i);
            }
        }
        t += step;
    }
    // Final reads, one per node and key, after everything completed.
    let lost = sets[0].get(sets[0].len() / 2).copied();
    let mut t = t + 10_000_000;
    for n in 0..NODES as u64 {
        for (k, s) in sets.iter().enumerate() {
            let p = a.clients as u64 + n;
            let seen: Vec<u64> = s
                .iter()
                .copied()
                .filter(|&e| !(a.bad && Some(e) == lost))
                .collect();
            let key = Some(format!("s{k}"));
            events.push(event(
                t,
                Process::Client(p),
                EventType::Invoke,
                "read",
                key.clone(),
                Value::Null,
            ));
            events.push(event(
                t + 300_000,
                Process::Client(p),
                EventType::Ok,
                "read",
                key,
                json!(seen),
            ));
            t += 400_000;
        }
    }
    for e in &mut events {
        if let Process::Client(p) = e.process {
            e.node = Some(node(p));
        }
    }
    events
}

fn register_history(a: &Args) -> Vec<Event> {
    let cfg = SynthConfig {
        clients: a.clients,
        ops: a.ops,
        keys: a.keys,
        seed: a.seed,
        cas: true,
        info_rate: 0.01,
        plant_stale_read: a.bad,
    };
    let mut events = generate_detailed(&cfg).history.events;
    for e in &mut events {
        if let Process::Client(p) = e.process {
            e.node = Some(node(p));
        }
    }
    events
}

/// Faults in turn: partition (isolate a node), kill, pause, clock bump.
fn nemesis(seconds: f64, every: f64) -> Vec<Event> {
    let mut out = Vec::new();
    if every <= 0.0 {
        return out;
    }
    let ns = |s: f64| (s * 1e9) as u64;
    let mut start = every;
    let mut k = 0usize;
    while start + every < seconds {
        let target = format!("n{}", 1 + k % NODES);
        let others: Vec<String> = (1..=NODES)
            .map(|i| format!("n{i}"))
            .filter(|n| *n != target)
            .collect();
        let (f_start, v_start, f_stop, v_stop) = match k % 4 {
            0 => {
                let mut grudge = serde_json::Map::new();
                grudge.insert(target.clone(), json!(others));
                for o in &others {
                    grudge.insert(o.clone(), json!([target]));
                }
                (
                    "start-partition",
                    Value::Object(grudge),
                    "stop-partition",
                    Value::Null,
                )
            }
            1 => ("start-kill", json!([target]), "stop-kill", json!([target])),
            2 => (
                "start-pause",
                json!([target]),
                "stop-pause",
                json!([target]),
            ),
            _ => (
                "start-clock",
                json!({"nodes": [target], "offset_ms": -60_000}),
                "stop-clock",
                json!([target]),
            ),
        };
        out.push(event(
            ns(start),
            Process::Nemesis,
            EventType::Info,
            f_start,
            None,
            v_start,
        ));
        out.push(event(
            ns(start + every),
            Process::Nemesis,
            EventType::Info,
            f_stop,
            None,
            v_stop,
        ));
        start += 2.0 * every;
        k += 1;
    }
    out
}

/// What `harness run` writes: the workload's checkers through the registry (results.json),
/// and the verdict and counts for run.json.
fn results(history: &History, workload: &str) -> Result<(Value, Value, &'static str), String> {
    let paired = history::pair(history).map_err(|e| e.to_string())?;
    let counts = |k: EventType| {
        history
            .events
            .iter()
            .filter(|e| e.kind == k && e.process != Process::Nemesis)
            .count()
    };
    let w = workloads::registry::find(workload)?;
    let opts = checkers::Options::new(checkers::ModelKind::CasRegister);
    let promises = vec!["linearizable".to_string()];
    let results = checkers::registry::run(w.checkers, &promises, history, &paired, &opts)?;
    let verdict = checkers::Judgement::worst(results.iter().map(|r| r.verdict));
    let stats = json!({
        "counts": {"ok": counts(EventType::Ok), "fail": counts(EventType::Fail), "info": counts(EventType::Info)},
    });
    Ok((json!(results), stats, verdict.name()))
}

fn write(a: &Args) -> Result<(), String> {
    let mut client = if a.workload == "register" {
        register_history(a)
    } else {
        set_history(a)
    };
    // Stretch the client events over the run, then merge in the faults.
    let last = client.iter().map(|e| e.time).max().unwrap_or(1).max(1);
    let stretch = a.seconds * 1e9 * 0.97 / last as f64;
    for e in &mut client {
        e.time = (e.time as f64 * stretch) as u64 + 10_000_000;
    }
    let mut events = nemesis(a.seconds, a.fault_every);
    events.extend(client);
    events.sort_by_key(|e| e.time);
    for (i, e) in events.iter_mut().enumerate() {
        e.index = i as u64;
    }
    let dir = &a.out;
    std::fs::create_dir_all(dir.join("nodes")).map_err(|e| format!("{}: {e}", dir.display()))?;
    for n in 1..=NODES {
        let nd = dir.join("nodes").join(format!("n{n}"));
        std::fs::create_dir_all(&nd).map_err(|e| format!("{}: {e}", nd.display()))?;
        std::fs::write(
            nd.join("node.log"),
            format!("n{n}: a synthetic node writes no log\n"),
        )
        .map_err(|e| format!("{}: {e}", nd.display()))?;
    }
    let path = dir.join("history.jsonl");
    let file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut w = JsonlWriter::new(BufWriter::with_capacity(1 << 20, file));
    for e in &events {
        w.write(e).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    w.flush().map_err(|e| format!("{}: {e}", path.display()))?;
    let history = History {
        file: path.clone(),
        lines: (1..=events.len()).collect(),
        events,
        warnings: Vec::new(),
    };
    let (res, stats, verdict) = results(&history, &a.workload)?;
    let nemesis: Vec<&str> = if a.fault_every > 0.0 {
        vec!["partition", "pause", "kill", "clock"]
    } else {
        Vec::new()
    };
    let command = format!(
        "cargo run --release -p harness-reports --example synthetic-run -- --workload {} --ops {} --keys {} --clients {} --seed {} --seconds {} --fault-every {}{}",
        a.workload, a.ops, a.keys, a.clients, a.seed, a.seconds, a.fault_every,
        if a.bad { " --bad" } else { "" }
    );
    let run = json!({
        "system": "synthetic",
        "workload": a.workload,
        "nemesis": nemesis,
        "nodes": (1..=NODES).map(|n| format!("n{n}")).collect::<Vec<_>>(),
        "concurrency": a.clients,
        "rate": 0.0,
        "keys": a.keys,
        "seed": a.seed,
        "bug": Value::Null,
        "time_limit_ms": (a.seconds * 1000.0) as u64,
        "elapsed_ms": (a.seconds * 1000.0) as u64,
        "command": command,
        "started_at": "20260101T000000Z",
        "interrupted": false,
        "verdict": verdict,
        "stats": stats,
    });
    for (name, v) in [("run.json", &run), ("results.json", &res)] {
        let p = dir.join(name);
        let bytes = serde_json::to_vec_pretty(v).map_err(|e| e.to_string())?;
        std::fs::write(&p, bytes).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    println!(
        "synthetic-run: {} events in {} ({} ops, {}, verdict {})",
        history.events.len(),
        dir.display(),
        a.ops,
        a.workload,
        verdict
    );
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("synthetic-run: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = write(&args) {
        eprintln!("synthetic-run: {e}");
        return ExitCode::from(4);
    }
    if !args.render {
        return ExitCode::SUCCESS;
    }
    let started = Instant::now();
    match reports::render_run(&args.out) {
        Ok(stats) => {
            println!(
                "render: {} ms, {:.2} MB ({} bytes), {} events, verdict {}, {} anomalies: {}",
                started.elapsed().as_millis(),
                stats.bytes as f64 / 1e6,
                stats.bytes,
                stats.events,
                stats.verdict,
                stats.anomalies,
                stats.path.display()
            );
            for n in &stats.notices {
                println!("  {n}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("synthetic-run: {e}");
            ExitCode::from(4)
        }
    }
}
