//! Serve a directory through diskfs by hand: `serve <backing> <mountpoint>`, then commands on
//! stdin, one a line: `lose`, `tear <seed>`, `pending`, `durable`, `error on|off`,
//! `delay <min_ms> <max_ms>|off`, `quit`.

use std::io::BufRead;
use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: serve <backing> <mountpoint>");
        std::process::exit(2);
    }
    let mount = diskfs::Mount::new(&PathBuf::from(&args[1]), &PathBuf::from(&args[2]))?;
    let control = mount.control();
    println!("mounted");
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["lose"] => println!("{:?}", control.lose_unsynced()?),
            ["tear", seed] => println!("{:?}", control.tear(seed.parse().unwrap_or(0))?),
            ["durable"] => println!("{:?}", control.make_durable()),
            ["pending"] => println!("{:?}", control.pending()),
            ["error", on] => control.set_fsync_error(*on == "on"),
            ["delay", "off"] => control.set_fsync_delay(None, 0),
            ["delay", lo, hi] => {
                control.set_fsync_delay(Some((lo.parse().unwrap_or(0), hi.parse().unwrap_or(0))), 1)
            }
            ["quit"] => break,
            _ => println!("?"),
        }
    }
    Ok(())
}
