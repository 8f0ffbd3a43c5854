//! Telling history formats apart by their content, and reading any of them.

use crate::{edn, jsonl, porcupine, History, HistoryError};
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::str::FromStr;

/// Detection looks no further than this many lines for the first one with content.
const MAX_DETECT_LINES: usize = 10_000;
/// ... nor reads more than this many bytes of one line.
const MAX_DETECT_LINE_BYTES: u64 = 1 << 20;

/// The history formats `history` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// harness's own `history.jsonl` (DESIGN.md section 2).
    Jsonl,
    /// A Jepsen EDN history: one op map per line, or one vector of op maps.
    Edn,
    /// A Jepsen console log, as in Porcupine's `jepsen/etcd_NNN.log`.
    PorcupineLog,
    /// Porcupine's key-value histories, `kv/cNN-*.txt`.
    PorcupineKv,
}

impl Format {
    pub const ALL: [Format; 4] = [
        Format::Jsonl,
        Format::Edn,
        Format::PorcupineLog,
        Format::PorcupineKv,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Edn => "edn",
            Format::PorcupineLog => "porcupine-log",
            Format::PorcupineKv => "porcupine-kv",
        }
    }

    fn names() -> String {
        Format::ALL.map(Format::name).join("|")
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A format name that is not one of [`Format::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown history format `{0}`; expected one of jsonl, edn, porcupine-log, porcupine-kv")]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| UnknownFormat(s.to_owned()))
    }
}

/// Tells the format of the file at `path` from its first line with content (blank lines and
/// `;` comments are skipped). Reads only as far as that line.
///
/// This opens `path` and reads from it: on a pipe that consumes what it reads, so to read a
/// pipe call [`read_file`] (which reads it once) rather than this and then [`read_file`].
pub fn detect_format(path: &Path) -> Result<Format, HistoryError> {
    let f = File::open(path).map_err(|e| open_error(path, e))?;
    detect_format_from(BufReader::new(f), path)
}

fn open_error(path: &Path, e: std::io::Error) -> HistoryError {
    HistoryError::new(path, 0, None, format!("cannot open the file: {e}"))
}

/// [`detect_format`] over any reader; `file` names the source in messages.
pub fn detect_format_from<R: BufRead>(reader: R, file: &Path) -> Result<Format, HistoryError> {
    detect_with_line(reader, file).map(|(format, _)| format)
}

/// The detected format and the 1-based line it was told from.
fn detect_with_line<R: BufRead>(
    mut reader: R,
    file: &Path,
) -> Result<(Format, usize), HistoryError> {
    let mut buf = Vec::new();
    let mut seen_any = false;
    for line in 1..=MAX_DETECT_LINES {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_DETECT_LINE_BYTES)
            .read_until(b'\n', &mut buf)
            .map_err(|e| {
                HistoryError::new(file, line, None, format!("cannot read the file: {e}"))
            })?;
        if n == 0 {
            let message = if seen_any {
                "the file is empty: it has only blank lines and comments"
            } else {
                "the file is empty"
            };
            return Err(HistoryError::new(file, 0, None, message));
        }
        seen_any = true;
        if line == 1 {
            crate::strip_bom(&mut buf);
        }
        if buf.contains(&0) {
            return Err(HistoryError::new(
                file,
                line,
                None,
                "the file contains NUL bytes: this looks like a binary file, not a history",
            ));
        }
        // A first line cut at MAX_DETECT_LINE_BYTES may end inside a character; that is fine.
        let text = match std::str::from_utf8(&buf) {
            Ok(t) => t,
            Err(e) if e.error_len().is_none() => {
                std::str::from_utf8(&buf[..e.valid_up_to()]).expect("checked prefix")
            }
            Err(e) => {
                return Err(HistoryError::new(
                    file,
                    line,
                    None,
                    format!(
                        "the file is not UTF-8 text (bad byte at column {}); histories are text",
                        e.valid_up_to() + 1
                    ),
                ))
            }
        };
        let text = text.trim();
        if text.is_empty() || text.starts_with(';') {
            continue;
        }
        return format_of_line(text).map(|f| (f, line)).ok_or_else(|| {
            let start: String = text.chars().take(60).collect();
            let more = if text.chars().count() > 60 { "…" } else { "" };
            HistoryError::new(
                file,
                line,
                None,
                format!(
                    "cannot tell the format of {} from its first line ({start}{more}); pass \
                     --format {}",
                    file.display(),
                    Format::names()
                ),
            )
        });
    }
    Err(HistoryError::new(
        file,
        0,
        None,
        format!(
            "the first {MAX_DETECT_LINES} lines are blank or comments; pass --format {}",
            Format::names()
        ),
    ))
}

/// The format a first line with content belongs to, if it is recognisable.
fn format_of_line(text: &str) -> Option<Format> {
    let after_brace = text.strip_prefix('{').map(str::trim_start);
    if after_brace.is_some_and(|s| s.starts_with('"')) {
        return Some(Format::Jsonl);
    }
    if text.contains("jepsen.util") {
        return Some(Format::PorcupineLog);
    }
    let edn_map = after_brace.is_some_and(|s| s.starts_with(':'));
    if edn_map
        && text.contains(":key")
        && [":f :get", ":f :put", ":f :append"]
            .iter()
            .any(|f| text.contains(f))
    {
        return Some(Format::PorcupineKv);
    }
    // `#jepsen.history.Op{…}`: newer Jepsen prints each op as a tagged record.
    let tagged = text
        .strip_prefix('#')
        .and_then(|s| s.chars().next())
        .is_some_and(char::is_alphabetic);
    if edn_map || text.starts_with('[') || text.starts_with('(') || tagged {
        return Some(Format::Edn);
    }
    None
}

/// A history and the format it was read as.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub format: Format,
    pub history: History,
}

/// What [`read_file`] calls standard input (the path `-`) in messages and `History::file`.
pub const STDIN_NAME: &str = "<stdin>";

/// Reads the history at `path` in `format`, or in the format detected from its content.
///
/// The path `-` is standard input. A regular file is opened once to detect its format and again
/// to stream it; anything else (a pipe such as `<(cat f)`, `/dev/stdin`, a FIFO) is read into
/// memory exactly once, and both detected and parsed from there, so no byte is lost.
///
/// When a forced `format` fails at the first event (or finds none) and the content looks like
/// another format, the error message says so.
pub fn read_file(path: &Path, format: Option<Format>) -> Result<Loaded, HistoryError> {
    if path.as_os_str() == "-" {
        return read_from(std::io::stdin().lock(), Path::new(STDIN_NAME), format);
    }
    let meta = std::fs::metadata(path).map_err(|e| open_error(path, e))?;
    if !meta.file_type().is_file() {
        let f = File::open(path).map_err(|e| open_error(path, e))?;
        return read_from(f, path, format);
    }
    let Some(forced) = format else {
        let format = detect_format(path)?;
        let history = parse_file(path, format)?;
        return Ok(Loaded { format, history });
    };
    match parse_file(path, forced) {
        Ok(history) => Ok(Loaded {
            format: forced,
            history,
        }),
        Err(e) => {
            let detected = File::open(path)
                .map_err(|e| open_error(path, e))
                .and_then(|f| detect_with_line(BufReader::new(f), path));
            Err(with_format_hint(e, forced, detected))
        }
    }
}

/// Reads a whole history from `reader` into memory once, then detects its format (unless
/// `format` is given) and parses it from that copy; `file` names the source in messages.
pub fn read_from<R: Read>(
    mut reader: R,
    file: &Path,
    format: Option<Format>,
) -> Result<Loaded, HistoryError> {
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .map_err(|e| HistoryError::new(file, 0, None, format!("cannot read the file: {e}")))?;
    read_bytes(bytes, file, format)
}

/// [`read_from`] for bytes already in memory.
pub fn read_bytes(
    bytes: Vec<u8>,
    file: &Path,
    format: Option<Format>,
) -> Result<Loaded, HistoryError> {
    let (format, forced) = match format {
        Some(f) => (f, true),
        None => (detect_format_from(&bytes[..], file)?, false),
    };
    let parsed = match format {
        Format::Jsonl => jsonl::read_jsonl_from(&bytes[..], file),
        Format::PorcupineLog => porcupine::read_porcupine_log_from(&bytes[..], file),
        Format::Edn | Format::PorcupineKv => {
            // The hint needs the bytes after the EDN reader has taken them.
            let detected = forced.then(|| detect_with_line(&bytes[..], file));
            let options = edn::EdnOptions {
                detect_independent: format == Format::Edn,
            };
            let parsed = edn::text_from_bytes(bytes, file)
                .and_then(|text| edn::parse_edn_history(file, &text, options));
            return match (parsed, detected) {
                (Ok(history), _) => Ok(Loaded { format, history }),
                (Err(e), Some(detected)) => Err(with_format_hint(e, format, detected)),
                (Err(e), None) => Err(e),
            };
        }
    };
    match parsed {
        Ok(history) => Ok(Loaded { format, history }),
        Err(e) if forced => Err(with_format_hint(
            e,
            format,
            detect_with_line(&bytes[..], file),
        )),
        Err(e) => Err(e),
    }
}

/// Reads the regular file at `path` in `format`.
fn parse_file(path: &Path, format: Format) -> Result<History, HistoryError> {
    match format {
        Format::Jsonl => jsonl::read_jsonl(path),
        Format::Edn => edn::read_edn(path),
        Format::PorcupineLog => porcupine::read_porcupine_log(path),
        Format::PorcupineKv => porcupine::read_porcupine_kv(path),
    }
}

/// A forced format that fails before its first event (or finds none) on content that looks like
/// another format: the message names the format it looks like.
fn with_format_hint(
    mut e: HistoryError,
    forced: Format,
    detected: Result<(Format, usize), HistoryError>,
) -> HistoryError {
    if let Ok((looks_like, first_line)) = detected {
        if looks_like != forced && e.line <= first_line {
            e.message.push_str(&format!(
                "; this looks like {looks_like} — drop --format or pass --format {looks_like}"
            ));
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn temp(name: &str, bytes: &[u8]) -> PathBuf {
        let p = std::env::temp_dir().join(format!(
            "harness-history-detect-{}-{name}",
            std::process::id()
        ));
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn detect(text: &str) -> Result<Format, HistoryError> {
        detect_format_from(text.as_bytes(), Path::new("h.txt"))
    }

    #[test]
    fn names_round_trip_and_unknown_names_list_the_valid_ones() {
        for f in Format::ALL {
            assert_eq!(f.name().parse::<Format>().unwrap(), f);
            assert_eq!(f.to_string(), f.name());
        }
        let e = "csv".parse::<Format>().unwrap_err();
        let msg = e.to_string();
        for f in Format::ALL {
            assert!(msg.contains(f.name()), "{msg}");
        }
    }

    #[test]
    fn detects_each_format_from_its_first_line() {
        let cases = [
            (
                r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"read"}"#,
                Format::Jsonl,
            ),
            (
                "INFO  jepsen.util - 4\t:invoke\t:read\tnil",
                Format::PorcupineLog,
            ),
            (
                r#"{:process 9, :type :invoke, :f :append, :key "0", :value "x"}"#,
                Format::PorcupineKv,
            ),
            (
                "{:type :invoke, :f :read, :process 0, :value nil}",
                Format::Edn,
            ),
            ("[{:type :invoke, :f :read, :process 0}", Format::Edn),
            ("(", Format::Edn),
            ("#jepsen.history.Op{:index 0, :type :invoke}", Format::Edn),
            (
                "\n\n; a comment\n  {:type :invoke, :f :cas, :process 0, :key 1, :value [1 2]}",
                Format::Edn,
            ),
        ];
        for (text, want) in cases {
            assert_eq!(detect(text).unwrap(), want, "{text:?}");
        }
    }

    #[test]
    fn unknown_format_names_the_line_and_the_flag() {
        let e = detect("\nhello, this is some prose and not a history at all, really it is not\n")
            .unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("cannot tell the format of h.txt"), "{e}");
        assert!(e.message.contains("(hello, this is some prose"), "{e}");
        assert!(e.message.contains("…)"), "{e}");
        assert!(
            e.message
                .contains("pass --format jsonl|edn|porcupine-log|porcupine-kv"),
            "{e}"
        );
    }

    #[test]
    fn empty_and_binary_files_are_clear_errors() {
        let e = detect("").unwrap_err();
        assert_eq!((e.line, e.message.as_str()), (0, "the file is empty"));
        let e = detect("\n ; only a comment\n").unwrap_err();
        assert!(e.message.contains("only blank lines and comments"), "{e}");
        let e =
            detect_format_from(&b"\x7fELF\x02\x01\x00\x00"[..], Path::new("a.out")).unwrap_err();
        assert!(e.message.contains("binary"), "{e}");
        let e = detect_format_from(&b"\xff\xfe{\n"[..], Path::new("x")).unwrap_err();
        assert!(e.message.contains("not UTF-8"), "{e}");
    }

    #[test]
    fn missing_file_is_line_zero_with_the_os_message() {
        let e = read_file(Path::new("/no/such/history.jsonl"), None).unwrap_err();
        assert_eq!(e.line, 0);
        assert!(e.message.to_lowercase().contains("no such file"), "{e}");
        let e = read_file(Path::new("/no/such/history.edn"), Some(Format::Edn)).unwrap_err();
        assert_eq!(e.line, 0);
        assert!(e.message.to_lowercase().contains("no such file"), "{e}");
    }

    #[test]
    fn read_file_detects_and_reads_every_format() {
        let files = [
            (
                "a.jsonl",
                "{\"index\":0,\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n",
                Format::Jsonl,
            ),
            (
                "b.edn",
                "{:type :invoke, :f :read, :process 0, :value nil}\n",
                Format::Edn,
            ),
            (
                "c.log",
                "INFO  jepsen.util - 0\t:invoke\t:read\tnil\n",
                Format::PorcupineLog,
            ),
            (
                "d.txt",
                "{:process 0, :type :invoke, :f :get, :key \"1\", :value nil}\n",
                Format::PorcupineKv,
            ),
        ];
        for (name, text, want) in files {
            let p = temp(name, text.as_bytes());
            let loaded = read_file(&p, None).unwrap();
            std::fs::remove_file(&p).unwrap();
            assert_eq!(loaded.format, want, "{name}");
            assert_eq!(loaded.history.events.len(), 1, "{name}");
            assert_eq!(loaded.history.events[0].kind, crate::EventType::Invoke);
            assert_eq!(loaded.history.file, p);
        }
        // An explicit format wins over detection (and fails loudly if wrong).
        let p = temp("e.jsonl", b"{:type :invoke, :f :read, :process 0}\n");
        let e = read_file(&p, Some(Format::Jsonl)).unwrap_err();
        std::fs::remove_file(&p).unwrap();
        assert_eq!(e.line, 1);
    }

    fn jsonl_events(n: u64) -> String {
        let mut text = String::new();
        for i in 0..n {
            let (kind, value) = if i % 2 == 0 {
                ("invoke", "null")
            } else {
                ("ok", "7")
            };
            text.push_str(&format!(
                "{{\"index\":{i},\"time\":{i},\"process\":{},\"type\":\"{kind}\",\"f\":\"read\",\"value\":{value}}}\n",
                i / 2
            ));
        }
        text
    }

    #[test]
    fn read_from_reads_the_input_once_and_keeps_every_byte() {
        // Far more than the 8 KiB a BufReader takes for detection.
        let text = jsonl_events(600);
        assert!(text.len() > 32 << 10);
        let loaded = read_from(
            std::io::Cursor::new(text.into_bytes()),
            Path::new(STDIN_NAME),
            None,
        )
        .unwrap();
        assert_eq!(loaded.format, Format::Jsonl);
        assert_eq!(loaded.history.events.len(), 600);
        assert_eq!(loaded.history.events[0].index, 0);
        assert_eq!(loaded.history.file, Path::new("<stdin>"));
        let e = read_from(
            std::io::Cursor::new(b"\n".to_vec()),
            Path::new("<stdin>"),
            None,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "<stdin>:0: the file is empty: it has only blank lines and comments"
        );
    }

    /// A FIFO in its own temporary directory, removed on drop (also when the test fails).
    struct Fifo {
        dir: PathBuf,
        path: PathBuf,
    }

    impl Fifo {
        fn new(name: &str) -> Fifo {
            let dir = std::env::temp_dir().join(format!(
                "harness-history-fifo-{}-{name}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir(&dir).unwrap();
            let fifo = Fifo {
                path: dir.join("history.jsonl"),
                dir,
            };
            let status = std::process::Command::new("mkfifo")
                .arg(&fifo.path)
                .status()
                .expect("mkfifo runs");
            assert!(status.success(), "mkfifo failed");
            fifo
        }
    }

    impl Drop for Fifo {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn a_fifo_is_read_once_and_nothing_is_lost() {
        let fifo = Fifo::new("once");
        let text = jsonl_events(600);
        let writer = {
            let path = fifo.path.clone();
            let text = text.clone();
            std::thread::spawn(move || {
                use std::io::Write;
                // Errors (a reader that went away) are the reader's to report.
                if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&path) {
                    let _ = f.write_all(text.as_bytes());
                }
            })
        };
        let (tx, rx) = std::sync::mpsc::channel();
        {
            let path = fifo.path.clone();
            std::thread::spawn(move || {
                let _ = tx.send(read_file(&path, None));
            });
        }
        let result = match rx.recv_timeout(std::time::Duration::from_secs(10)) {
            Ok(r) => r,
            Err(_) => {
                // The reader opened the FIFO a second time and waits for a writer that is gone:
                // give it one that closes at once, so the thread ends, and fail.
                let _ = std::fs::OpenOptions::new().write(true).open(&fifo.path);
                panic!("read_file on a FIFO hangs: it opened the FIFO twice");
            }
        };
        writer.join().unwrap();
        let loaded = result.unwrap();
        assert_eq!(loaded.format, Format::Jsonl);
        assert_eq!(loaded.history.events.len(), 600);
        assert_eq!(loaded.history.lines[0], 1);
        assert_eq!(loaded.history.file, fifo.path);
    }

    /// `harness check <(cat f)`: the path is `/dev/fd/N`, a pipe that every open shares.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_pipe_path_loses_nothing_to_detection() {
        use std::os::fd::AsRawFd;
        let text = jsonl_events(600);
        let (reader, mut writer) = std::io::pipe().unwrap();
        let feeder = std::thread::spawn(move || {
            use std::io::Write;
            writer.write_all(text.as_bytes()).unwrap();
        });
        let path = PathBuf::from(format!("/proc/self/fd/{}", reader.as_raw_fd()));
        let result = read_file(&path, None);
        feeder.join().unwrap();
        drop(reader);
        let loaded = result.unwrap();
        assert_eq!(loaded.history.events.len(), 600);
        assert_eq!(loaded.history.lines[0], 1);
    }

    #[test]
    fn a_byte_order_mark_is_dropped_in_detection_and_by_every_reader() {
        let files = [
            (
                "bom.jsonl",
                "{\"index\":0,\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n",
                Format::Jsonl,
            ),
            (
                "bom.edn",
                "{:type :invoke, :f :read, :process 0, :value nil}\n",
                Format::Edn,
            ),
            (
                "bom.log",
                "INFO  jepsen.util - 0\t:invoke\t:read\tnil\n",
                Format::PorcupineLog,
            ),
            (
                "bom.txt",
                "{:process 0, :type :invoke, :f :get, :key \"1\", :value nil}\n",
                Format::PorcupineKv,
            ),
        ];
        for (name, text, want) in files {
            let mut bytes = b"\xEF\xBB\xBF".to_vec();
            bytes.extend_from_slice(text.as_bytes());
            assert_eq!(
                detect_format_from(&bytes[..], Path::new(name)).unwrap(),
                want,
                "{name}"
            );
            // In memory, and from a file with the format detected and forced.
            let loaded = read_bytes(bytes.clone(), Path::new(name), None).unwrap();
            assert_eq!(
                (loaded.format, loaded.history.events.len()),
                (want, 1),
                "{name}"
            );
            let p = temp(name, &bytes);
            let detected = read_file(&p, None);
            let forced = read_file(&p, Some(want));
            std::fs::remove_file(&p).unwrap();
            assert_eq!(detected.unwrap().history.events.len(), 1, "{name}");
            assert_eq!(forced.unwrap().history.events.len(), 1, "{name}");
        }
        // A BOM before blank lines and comments is dropped as well.
        let e = detect_format_from(&b"\xEF\xBB\xBF\n"[..], Path::new("x")).unwrap_err();
        assert!(e.message.contains("only blank lines"), "{e}");
    }

    #[test]
    fn a_wrong_forced_format_says_what_the_file_looks_like() {
        let jsonl = "{\"index\":0,\"time\":1,\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n";
        let p = temp("forced.jsonl", jsonl.as_bytes());
        let as_log = read_file(&p, Some(Format::PorcupineLog));
        let as_edn = read_file(&p, Some(Format::Edn));
        let as_kv = read_file(&p, Some(Format::PorcupineKv));
        std::fs::remove_file(&p).unwrap();
        let hint = "; this looks like jsonl — drop --format or pass --format jsonl";
        for (e, start) in [
            (as_log.unwrap_err(), "the file is empty: no events"),
            (as_edn.unwrap_err(), ""),
            (as_kv.unwrap_err(), ""),
        ] {
            assert!(e.message.starts_with(start), "{e}");
            assert!(e.message.ends_with(hint), "{e}");
        }
        // The same in memory (a pipe).
        let e = read_bytes(jsonl.into(), Path::new("p"), Some(Format::PorcupineLog)).unwrap_err();
        assert!(e.message.ends_with(hint), "{e}");
        let e = read_bytes(jsonl.into(), Path::new("p"), Some(Format::Edn)).unwrap_err();
        assert!(e.message.ends_with(hint), "{e}");
        let edn = "{:type :invoke, :f :read, :process 0, :value nil}\n";
        let e = read_bytes(edn.into(), Path::new("p"), Some(Format::Jsonl)).unwrap_err();
        assert!(
            e.message
                .ends_with("; this looks like edn — drop --format or pass --format edn"),
            "{e}"
        );
        // No hint when the forced format is what detection says, or the error is further on.
        let bad = format!("{jsonl}{{\"index\":5}}\n");
        let e = read_bytes(bad.into(), Path::new("p"), Some(Format::Jsonl)).unwrap_err();
        assert!(!e.message.contains("looks like"), "{e}");
        let later = format!("{edn}{edn}{{:type :ok}}\n");
        let e = read_bytes(
            later.clone().into(),
            Path::new("p"),
            Some(Format::PorcupineKv),
        )
        .unwrap_err();
        assert_eq!(e.line, 3);
        assert!(!e.message.contains("looks like"), "{e}");
    }
}
