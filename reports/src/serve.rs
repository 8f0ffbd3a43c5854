//! `harness serve`: the runs of a store over HTTP, read-only, on 127.0.0.1 only.
//!
//! `/` is the index of runs (newest first); every other path is a file or folder of the store.
//! A path must stay inside the store: segments `.` and `..` (also percent-encoded, `%2e%2e`),
//! encoded slashes or backslashes, NUL, empty segments (`//etc/passwd`) are refused with 403,
//! and the file is opened only after its canonical path (symbolic links resolved) is checked
//! to lie under the store's canonical path, so a link out of the store is refused too; links
//! inside it (`latest`) work. Only GET and HEAD are answered. As in axum's examples, the
//! server is `app(store) -> Router`, and `serve(listener, store, shutdown)` runs it.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use percent_encoding::percent_decode_str;
use serde::Serialize;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::text::{clip, CELL_CHARS};
use crate::view::encode_segment;

/// Entries listed in a folder page at most.
const MAX_DIR_ENTRIES: usize = 5_000;

/// Reports are self-contained: nothing may be fetched from anywhere, scripts and styles are
/// inline only.
const REPORT_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'";

struct Store {
    root: PathBuf,
}

/// The router over `store`. Fails when the store cannot be resolved (it does not exist).
pub fn app(store: &Path) -> std::io::Result<Router> {
    let root = store
        .canonicalize()
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", store.display())))?;
    if !root.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotADirectory,
            format!("{}: not a directory", store.display()),
        ));
    }
    Ok(Router::new()
        .fallback(handle)
        .with_state(Arc::new(Store { root })))
}

/// Binds 127.0.0.1:`port` (0: any free port). Never another address: runs can hold anything.
pub async fn bind(port: u16) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await
}

/// Serves `store` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: &Path,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = app(store)?;
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

fn plain(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}

/// Why a path is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Tries to leave the store, or is not a plain path: 403.
    Forbidden,
    /// Nothing there: 404.
    NotFound,
}

/// The file or folder of the store that the URL path `raw` (still percent-encoded) names.
pub fn resolve(root: &Path, raw: &str) -> Result<PathBuf, Refusal> {
    let rest = raw.strip_prefix('/').ok_or(Refusal::Forbidden)?;
    let mut rel = PathBuf::new();
    let segments: Vec<&str> = rest.split('/').collect();
    for (i, seg) in segments.iter().enumerate() {
        if seg.is_empty() {
            // Only a trailing slash (a folder) may leave a segment empty.
            if i + 1 == segments.len() {
                continue;
            }
            return Err(Refusal::Forbidden);
        }
        let decoded = percent_decode_str(seg)
            .decode_utf8()
            .map_err(|_| Refusal::Forbidden)?;
        if decoded == "." || decoded == ".." || decoded.contains(['/', '\\', '\0']) {
            return Err(Refusal::Forbidden);
        }
        rel.push(decoded.as_ref());
    }
    let full = root.join(&rel);
    let canonical = full.canonicalize().map_err(|_| {
        // A link that points out of the store and to nothing is still a link out.
        match std::fs::read_link(&full) {
            Ok(_) => Refusal::Forbidden,
            Err(_) => Refusal::NotFound,
        }
    })?;
    if !canonical.starts_with(root) {
        return Err(Refusal::Forbidden);
    }
    Ok(canonical)
}

/// The content type of a store file, by its name.
pub fn content_type(path: &Path) -> &'static str {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let ext = name.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match ext.to_ascii_lowercase().as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "json" => "application/json",
        // Shown in the browser rather than downloaded.
        "jsonl" | "ndjson" | "log" | "txt" | "edn" | "toml" | "md" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "css" => "text/css; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        _ => "application/octet-stream",
    }
}

async fn handle(State(store): State<Arc<Store>>, method: Method, uri: Uri) -> Response {
    if method != Method::GET && method != Method::HEAD {
        let mut r = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "read-only: GET and HEAD only",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let raw = uri.path();
    let head = method == Method::HEAD;
    if raw == "/" || raw.is_empty() {
        let root = store.root.clone();
        return match tokio::task::spawn_blocking(move || crate::index::render_index(&root)).await {
            Ok(Ok(html)) => html_response(html, head),
            Ok(Err(e)) => plain(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
            Err(e) => plain(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        };
    }
    let path = match resolve(&store.root, raw) {
        Ok(p) => p,
        Err(Refusal::Forbidden) => {
            return plain(StatusCode::FORBIDDEN, "forbidden: outside the store")
        }
        Err(Refusal::NotFound) => return plain(StatusCode::NOT_FOUND, "not found"),
    };
    if path.is_dir() {
        if !raw.ends_with('/') {
            let mut r = StatusCode::MOVED_PERMANENTLY.into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("{raw}/")) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            return r;
        }
        let root = store.root.clone();
        return match tokio::task::spawn_blocking(move || dir_page(&root, &path)).await {
            Ok(Ok(html)) => html_response(html, head),
            Ok(Err(e)) => plain(StatusCode::INTERNAL_SERVER_ERROR, &e),
            Err(e) => plain(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        };
    }
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(_) => return plain(StatusCode::NOT_FOUND, "not found"),
    };
    let len = file.metadata().await.map(|m| m.len()).ok();
    let ctype = content_type(&path);
    let body = if head {
        Body::empty()
    } else {
        Body::from_stream(tokio_util::io::ReaderStream::new(file))
    };
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Some(len) = len {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    }
    if ctype.starts_with("text/html") {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(REPORT_CSP),
        );
    }
    r
}

fn html_response(html: String, head: bool) -> Response {
    let len = html.len();
    let mut r = Response::new(if head {
        Body::empty()
    } else {
        Body::from(html)
    });
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(REPORT_CSP),
    );
    r
}

#[derive(Serialize)]
struct DirEntry {
    name: String,
    href: String,
    dir: bool,
}

#[derive(Serialize)]
struct DirPage {
    path: String,
    parent: Option<String>,
    entries: Vec<DirEntry>,
    total: usize,
    more: bool,
}

/// A folder of the store, listed.
fn dir_page(root: &Path, dir: &Path) -> Result<String, String> {
    let rel = dir.strip_prefix(root).unwrap_or(Path::new(""));
    let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut entries: Vec<DirEntry> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_owned();
            let is_dir = e.path().is_dir();
            Some(DirEntry {
                href: format!("{}{}", encode_segment(&name), if is_dir { "/" } else { "" }),
                name: clip(&name, CELL_CHARS),
                dir: is_dir,
            })
        })
        .collect();
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    let total = entries.len();
    entries.truncate(MAX_DIR_ENTRIES);
    let page = DirPage {
        path: clip(&format!("/{}", rel.display()), CELL_CHARS),
        parent: (!rel.as_os_str().is_empty()).then(|| "../".to_string()),
        more: total > entries.len(),
        entries,
        total,
    };
    crate::render_template("dir.html", page, dir).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_in_the_store() {
        let store = tempfile::tempdir().expect("tempdir");
        let root = store.path().canonicalize().expect("root");
        std::fs::create_dir_all(root.join("a/b")).expect("mkdir");
        std::fs::write(root.join("a/b/report.html"), "x").expect("write");
        std::os::unix::fs::symlink("a/b", root.join("latest")).expect("link in");
        std::os::unix::fs::symlink("/etc", root.join("out")).expect("link out");
        std::os::unix::fs::symlink("/nonexistent/x", root.join("dangling")).expect("link");
        assert_eq!(
            resolve(&root, "/a/b/report.html"),
            Ok(root.join("a/b/report.html"))
        );
        assert_eq!(
            resolve(&root, "/latest/report.html"),
            Ok(root.join("a/b/report.html"))
        );
        for bad in [
            "/../etc/passwd",
            "/a/../../etc/passwd",
            "/%2e%2e/etc/passwd",
            "/%2E%2E/%2e%2e/etc/passwd",
            "/a/..%2f..%2fetc/passwd",
            "//etc/passwd",
            "/%2fetc%2fpasswd",
            "/out/passwd",
            "/dangling",
            "/a/%00",
            "/a/.",
            "relative",
        ] {
            assert_eq!(resolve(&root, bad), Err(Refusal::Forbidden), "{bad}");
        }
        assert_eq!(resolve(&root, "/a/nothing"), Err(Refusal::NotFound));
    }

    #[test]
    fn content_types_follow_the_name() {
        assert_eq!(
            content_type(Path::new("x/report.html")),
            "text/html; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("results.json")), "application/json");
        assert_eq!(
            content_type(Path::new("history.jsonl")),
            "text/plain; charset=utf-8"
        );
        assert_eq!(
            content_type(Path::new("raft.wal")),
            "application/octet-stream"
        );
    }
}
