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
pub fn detect_format(path: &Path) -> Result<Format, HistoryError> {
    let f = File::open(path)
        .map_err(|e| HistoryError::new(path, 0, None, format!("cannot open the file: {e}")))?;
    detect_format_from(BufReader::new(f), path)
}

/// [`detect_format`] over any reader; `file` names the source in messages.
pub fn detect_format_from<R: BufRead>(mut reader: R, file: &Path) -> Result<Format, HistoryError> {
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
        return format_of_line(text).ok_or_else(|| {
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

/// Reads the history at `path` in `format`, or in the format detected from its content.
pub fn read_file(path: &Path, format: Option<Format>) -> Result<Loaded, HistoryError> {
    let format = match format {
        Some(f) => f,
        None => detect_format(path)?,
    };
    let history = match format {
        Format::Jsonl => jsonl::read_jsonl(path)?,
        Format::Edn => edn::read_edn(path)?,
        Format::PorcupineLog => porcupine::read_porcupine_log(path)?,
        Format::PorcupineKv => porcupine::read_porcupine_kv(path)?,
    };
    Ok(Loaded { format, history })
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
}
