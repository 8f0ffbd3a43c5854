//! Helpers shared by the integration tests: a tiny HTTP responder the tests run as a node
//! (the test binary re-executes itself), and /proc inspection.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::Duration;

/// Set to make a test binary act as a responder node.
pub const RESPONDER_ENV: &str = "NEMESIS_RESPONDER_ADDR";

/// Serves `{"node": $NODE, "pid": …}` on every request at `$NEMESIS_RESPONDER_ADDR`.
/// `NEMESIS_RESPONDER_IGNORE_TERM=1` makes it ignore SIGTERM; `NEMESIS_RESPONDER_DELAY_MS`
/// delays the bind.
pub fn responder_main() -> ! {
    let addr = std::env::var(RESPONDER_ENV).unwrap_or_else(|_| "127.0.0.1:0".into());
    let node = std::env::var("NODE").unwrap_or_else(|_| "unnamed".into());
    if std::env::var("NEMESIS_RESPONDER_IGNORE_TERM").as_deref() == Ok("1") {
        // SAFETY: setting a signal to ignored.
        unsafe {
            let _ = nix::sys::signal::signal(
                nix::sys::signal::Signal::SIGTERM,
                nix::sys::signal::SigHandler::SigIgn,
            );
        }
    }
    if let Some(ms) = std::env::var("NEMESIS_RESPONDER_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        std::thread::sleep(Duration::from_millis(ms));
    }
    let listener = match TcpListener::bind(&addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("responder: cannot bind {addr}: {e}");
            std::process::exit(2);
        }
    };
    println!("responder {node} listening on {addr}");
    let body = format!("{{\"node\":\"{node}\",\"pid\":{}}}", std::process::id());
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let body = body.clone();
        std::thread::spawn(move || {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let Ok(clone) = stream.try_clone() else {
                return;
            };
            let mut reader = BufReader::new(clone);
            let mut line = String::new();
            // Read the request head up to the blank line.
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) if line == "\r\n" || line == "\n" => break,
                    Ok(_) => {}
                }
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        });
    }
    std::process::exit(0)
}

/// (state, ppid, pgrp) of a process, from /proc/<pid>/stat.
pub fn proc_stat(pid: i32) -> Option<(char, i32, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, ppid, pgrp))
}

/// True while the process exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    matches!(proc_stat(pid), Some((state, _, _)) if state != 'Z' && state != 'X')
}

/// Every live process of process group `pgid`.
pub fn group_members(pgid: i32) -> Vec<i32> {
    all_pids()
        .into_iter()
        .filter(|p| matches!(proc_stat(*p), Some((s, _, g)) if g == pgid && s != 'Z'))
        .collect()
}

/// Every pid in /proc.
pub fn all_pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Polls `cond` every 10 ms for up to `limit`.
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
