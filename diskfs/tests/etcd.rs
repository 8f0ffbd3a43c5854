//! A real server on diskfs: etcd (bbolt through mmap and pwrite, a WAL with preallocation,
//! snapshot renames, directory fsyncs). Skipped where etcd is not installed, unless CI=true
//! (scripts/install-deps installs it).

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 POST (or GET when body is None) to etcd's JSON gateway; the response body.
fn http(port: u16, path: &str, body: Option<&str>) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    let req = match body {
        Some(b) => format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        ),
        None => format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    };
    s.write_all(req.as_bytes())?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default())
}

fn b64(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

struct Etcd {
    child: Child,
    port: u16,
}

impl Etcd {
    fn start(data: &Path, log: &Path) -> Etcd {
        let (port, peer) = (free_port(), free_port());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new("etcd")
            .arg("--data-dir")
            .arg(data)
            .args(["--listen-client-urls", &format!("http://127.0.0.1:{port}")])
            .args([
                "--advertise-client-urls",
                &format!("http://127.0.0.1:{port}"),
            ])
            .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
            .args([
                "--initial-advertise-peer-urls",
                &format!("http://127.0.0.1:{peer}"),
            ])
            .args([
                "--initial-cluster",
                &format!("default=http://127.0.0.1:{peer}"),
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start etcd");
        let e = Etcd { child, port };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if http(port, "/health", None).is_ok_and(|b| b.contains("true")) {
                return e;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("etcd did not become healthy");
    }

    fn put(&self, k: &str, v: &str) {
        let body = format!(r#"{{"key":"{}","value":"{}"}}"#, b64(k), b64(v));
        let r = http(self.port, "/v3/kv/put", Some(&body)).unwrap();
        assert!(r.contains("revision"), "put: {r}");
    }

    fn count(&self, prefix: &str) -> u64 {
        let body = format!(
            r#"{{"key":"{}","range_end":"{}","count_only":true}}"#,
            b64(prefix),
            b64(&format!("{prefix}~"))
        );
        let r = http(self.port, "/v3/kv/range", Some(&body)).unwrap();
        // "count":"20" (absent when 0)
        r.split("\"count\":\"")
            .nth(1)
            .and_then(|x| x.split('"').next())
            .map(|n| n.parse().unwrap())
            .unwrap_or(0)
    }

    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

#[test]
fn etcd_keeps_acknowledged_puts_through_kill_and_power_loss() {
    if Command::new("etcd").arg("--version").output().is_err() {
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "etcd missing under CI"
        );
        eprintln!("skipped: etcd not installed");
        return;
    }
    let Some(fx) = common::mount("etcd_keeps_acknowledged_puts_through_kill_and_power_loss") else {
        return;
    };
    let data = fx.m("etcd");
    let log = fx.backing.parent().unwrap().join("etcd.log");
    let e = Etcd::start(&data, &log);
    // etcd 3.4 never fsyncs the directories above its WAL: a power loss now would take its
    // whole data directory. Settle what start-up made, as a journal commit would.
    let settled = fx.control.make_durable();
    assert!(settled.dir_ops > 0);
    for i in 0..20 {
        e.put(&format!("k{i:02}"), &format!("v{i}"));
    }
    assert_eq!(e.count("k"), 20);
    e.kill();
    let loss = fx.control.tear(3).unwrap();
    eprintln!("loss after acknowledged puts: {loss:?}");
    let e = Etcd::start(&data, &log);
    assert_eq!(
        e.count("k"),
        20,
        "every acknowledged put survives (etcd fsyncs before acking)"
    );
    e.put("after", "restart");
    e.kill();

    // Without the settle, a power loss takes everything etcd made: it starts over, empty.
    fx.control.lose_unsynced().unwrap();
    std::fs::remove_dir_all(&data).unwrap();
    common::fsync_dir(&fx.mnt);
    let e = Etcd::start(&data, &log);
    e.put("k", "v");
    e.kill();
    let loss = fx.control.lose_unsynced().unwrap();
    assert!(loss.dir_ops > 0);
    assert!(!data.exists(), "the unsynced data directory is gone");
}
