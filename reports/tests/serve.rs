//! `harness serve`'s server on a real socket (127.0.0.1, a free port): the index lists the runs
//! newest first, files are served with their content types, and every way out of the store
//! (`..`, encoded `..`, absolute paths, symbolic links out) is refused with 403 or 404.
//! Requests are written by hand on a TCP stream, since HTTP clients tidy `..` away.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read") {
        let e = e.expect("entry");
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).expect("copy");
        }
    }
}

struct Reply {
    status: u16,
    head: String,
    body: String,
}

/// One request, as raw as given.
fn request(addr: SocketAddr, method: &str, path: &str) -> Reply {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Reply {
        status,
        head: head.to_ascii_lowercase(),
        body: body.to_string(),
    }
}

#[test]
fn serve_lists_runs_serves_files_and_refuses_paths_out_of_the_store() {
    let top = tempfile::tempdir().expect("tempdir");
    let store = top.path().join("store");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let older = store.join("synthetic-register-partition/20260101T000000Z");
    let newer = store.join("synthetic-set-partition/20260102T000000Z");
    copy_dir(&fixtures.join("valid"), &older);
    copy_dir(&fixtures.join("set-invalid"), &newer);
    // The fixtures share a start time; the index sorts by it, so make them differ.
    let run_json = std::fs::read_to_string(newer.join("run.json")).expect("run.json");
    std::fs::write(
        newer.join("run.json"),
        run_json.replace("20260101T000000Z", "20260102T000000Z"),
    )
    .expect("write");
    reports::render_run(&older).expect("render");
    reports::render_run(&newer).expect("render");
    std::os::unix::fs::symlink(
        "synthetic-set-partition/20260102T000000Z",
        store.join("latest"),
    )
    .expect("latest");
    std::fs::write(top.path().join("secret.txt"), "SECRET-OUTSIDE").expect("secret");
    std::os::unix::fs::symlink(top.path().join("secret.txt"), store.join("leak.txt"))
        .expect("link out");
    std::os::unix::fs::symlink(top.path(), newer.join("up")).expect("dir link out");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let listener = runtime
        .block_on(reports::serve::bind(0))
        .expect("bind a free port");
    let addr = listener.local_addr().expect("addr");
    assert!(addr.ip().is_loopback(), "binds 127.0.0.1 only: {addr}");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = runtime.spawn({
        let store = store.clone();
        async move {
            reports::serve::serve(listener, &store, async {
                let _ = stop_rx.await;
            })
            .await
        }
    });

    // The index: both runs, newest first, with verdicts and links.
    let r = request(addr, "GET", "/");
    assert_eq!(r.status, 200, "{}", r.head);
    assert!(r.head.contains("content-type: text/html"));
    // (The template escapes the `/` between the two folders as `&#x2f;`, as HTML allows.)
    let newer_at = r.body.find("20260102T000000Z/report.html");
    let older_at = r.body.find("20260101T000000Z/report.html");
    assert!(
        newer_at.is_some() && older_at.is_some(),
        "both runs listed: {}",
        r.body
    );
    assert!(newer_at < older_at, "newest first");
    assert!(r.body.contains(">invalid<") && r.body.contains(">valid<"));
    assert!(r.body.contains(">latest<"), "the latest run is marked");

    // Files, with their types; the latest link is followed inside the store.
    let r = request(addr, "GET", "/latest/report.html");
    assert_eq!(r.status, 200);
    assert!(r.head.contains("content-type: text/html"));
    assert!(r.body.contains(r#"data-verdict="invalid""#));
    let r = request(
        addr,
        "GET",
        "/synthetic-register-partition/20260101T000000Z/results.json",
    );
    assert_eq!(r.status, 200);
    assert!(r.head.contains("content-type: application/json"));
    let r = request(addr, "GET", "/latest/history.jsonl");
    assert_eq!(r.status, 200);
    assert!(r.head.contains("content-type: text/plain"));
    let r = request(addr, "GET", "/latest/nodes/n1/node.log");
    assert_eq!(r.status, 200);
    let r = request(addr, "GET", "/latest/nodes/");
    assert_eq!(r.status, 200, "a folder is listed");
    assert!(r.body.contains("n1"));
    let r = request(addr, "HEAD", "/latest/run.json");
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    let r = request(addr, "GET", "/latest/nothing.json");
    assert_eq!(r.status, 404);
    let r = request(addr, "POST", "/latest/run.json");
    assert_eq!(r.status, 405, "read-only");
    let r = request(addr, "DELETE", "/latest/run.json");
    assert_eq!(r.status, 405, "read-only");
    assert!(newer.join("run.json").is_file());

    // Every way out is refused.
    for path in [
        "/../secret.txt",
        "/../../../../etc/passwd",
        "/latest/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/%2e%2e/etc/passwd",
        "/latest/..%2f..%2f..%2fsecret.txt",
        "/latest/%2e%2e%2f%2e%2e%2fsecret.txt",
        "//etc/passwd",
        "/%2fetc%2fpasswd",
        "/leak.txt",
        "/latest/up/secret.txt",
        "/latest/..%5c..%5csecret.txt",
        "/latest/%00",
    ] {
        let r = request(addr, "GET", path);
        assert!(
            r.status == 403 || r.status == 404,
            "{path}: status {}",
            r.status
        );
        assert!(!r.body.contains("SECRET-OUTSIDE"), "{path} leaked the file");
        assert!(!r.body.contains("root:"), "{path} leaked /etc/passwd");
    }
    // A request line with an absolute path or full URL is not a way out either.
    let r = request(addr, "GET", "http://127.0.0.1/../secret.txt");
    assert!(!r.body.contains("SECRET-OUTSIDE"));

    stop_tx.send(()).expect("stop the server");
    runtime
        .block_on(server)
        .expect("server task")
        .expect("server ran");
}
