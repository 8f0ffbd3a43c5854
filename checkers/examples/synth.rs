//! Writes a synthetic register history (linearizable by construction, or with one planted
//! stale read) as JSON Lines, for `harness check`.
//!
//!     cargo run --release -p harness-checkers --example synth -- \
//!         --clients 50 --ops 100000 --keys 1 --bad --out /tmp/h.jsonl
//!     harness check /tmp/h.jsonl

use checkers::lin::synth::{generate_detailed, SynthConfig};
use history::jsonl::JsonlWriter;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::process::ExitCode;
use std::str::FromStr;

const USAGE: &str = "\
usage: synth [OPTIONS]

Writes a synthetic register history as JSON Lines (shared/DESIGN.md section 2). It is
linearizable by construction unless --bad plants one stale read.

options:
  --clients N      concurrent clients                         (default 50)
  --ops N          operations in total                        (default 100000)
  --keys N         registers; 1 writes events without a key   (default 1)
  --seed N         generator seed; same seed, same history    (default 1)
  --info-rate F    fraction of operations ending as `info`    (default 0.01)
  --no-cas         only read and write (the `register` model); default adds cas
  --bad            plant one stale read: the history is then not linearizable
  --out FILE       write to FILE instead of stdout
  -h, --help       show this message

example:
  cargo run --release -p harness-checkers --example synth -- \\
      --clients 50 --ops 100000 --keys 1 --bad --out /tmp/h.jsonl
  harness check /tmp/h.jsonl";

struct Args {
    cfg: SynthConfig,
    out: Option<String>,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
    let mut cfg = SynthConfig {
        clients: 50,
        ops: 100_000,
        keys: 1,
        seed: 1,
        cas: true,
        info_rate: 0.01,
        plant_stale_read: false,
    };
    let mut out = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--clients" => cfg.clients = number(&arg, &value(&arg)?)?,
            "--ops" => cfg.ops = number(&arg, &value(&arg)?)?,
            "--keys" => cfg.keys = number(&arg, &value(&arg)?)?,
            "--seed" => cfg.seed = number(&arg, &value(&arg)?)?,
            "--info-rate" => cfg.info_rate = number(&arg, &value(&arg)?)?,
            "--no-cas" => cfg.cas = false,
            "--bad" => cfg.plant_stale_read = true,
            "--out" => out = Some(value(&arg)?),
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    if cfg.clients == 0 {
        return Err("--clients must be at least 1".to_owned());
    }
    if cfg.keys == 0 {
        return Err("--keys must be at least 1".to_owned());
    }
    if !(0.0..=1.0).contains(&cfg.info_rate) {
        return Err(format!(
            "--info-rate must be between 0 and 1, got {}",
            cfg.info_rate
        ));
    }
    Ok(Some(Args { cfg, out }))
}

fn number<T: FromStr>(name: &str, text: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{name} expects a number, got `{text}`"))
}

fn write_all(args: &Args) -> io::Result<()> {
    let synthetic = generate_detailed(&args.cfg);
    let sink: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(
            File::create(path)
                .map_err(|e| io::Error::new(e.kind(), format!("cannot create {path}: {e}")))?,
        ),
        None => Box::new(io::stdout().lock()),
    };
    let mut w = JsonlWriter::new(BufWriter::with_capacity(1 << 20, sink));
    for event in &synthetic.history.events {
        w.write(event)?;
    }
    w.flush()?;
    let c = &args.cfg;
    eprintln!(
        "synth: {} events, {} ops, {} clients, {} key(s), seed {}, cas {}, info rate {}",
        synthetic.history.events.len(),
        c.ops,
        c.clients,
        c.keys,
        c.seed,
        c.cas,
        c.info_rate
    );
    match (&synthetic.stale_read, c.plant_stale_read) {
        (Some(s), _) => eprintln!(
            "synth: planted a stale read at index {} (key {}): it returns {}, overwritten by the \
             write completed at index {}",
            s.invoke_index,
            s.key.as_deref().unwrap_or("-"),
            s.value,
            s.overwritten_at
        ),
        (None, true) => eprintln!(
            "synth: warning: the history is too short to plant a stale read; it is linearizable"
        ),
        (None, false) => {}
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("synth: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match write_all(&args) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`| head`) is not an error worth shouting about.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("synth: {e}");
            ExitCode::FAILURE
        }
    }
}
