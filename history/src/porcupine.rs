//! Importers for the history formats in Porcupine's test data (shared/conformance/porcupine).
//!
//! - Jepsen console logs (`jepsen/etcd_NNN.log`): lines `INFO  jepsen.util - 4 :ok :read 3`.
//! - Key-value histories (`kv/cNN-*.txt`): one EDN op map per line with a `:key`.

use crate::edn::{self, Edn, EdnOptions};
use crate::jsonl::{truncated_warning, TimeOrder, MAX_LINE_BYTES};
use crate::{Event, EventType, History, HistoryError, Process, Warning};
use serde_json::Value;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// What precedes the op on every line of a Jepsen console log that describes an op.
pub const LOG_MARKER: &str = "jepsen.util - ";

/// Reads a Jepsen console log. Lines without `jepsen.util - ` are ignored. `index` and `time`
/// are the event's position; `lines` are the real line numbers.
///
/// A keyword value on a `:fail` or `:info` completion (`:timed-out`) is why the operation has no
/// result: the event's value is null and its `error` is the keyword's name. A `:fail :cas` with a
/// pair is etcd refusing the compare-and-set because the current value differed, an observed
/// failed compare; its `error` is "precondition".
pub fn read_porcupine_log(path: &Path) -> Result<History, HistoryError> {
    let f = File::open(path)
        .map_err(|e| HistoryError::new(path, 0, None, format!("cannot open the file: {e}")))?;
    read_porcupine_log_from(BufReader::new(f), path)
}

/// [`read_porcupine_log`] over any reader; `file` names the source in messages.
pub fn read_porcupine_log_from<R: BufRead>(
    mut reader: R,
    file: &Path,
) -> Result<History, HistoryError> {
    let mut history = History::new(file);
    let mut time_order = TimeOrder::default();
    let mut buf = Vec::new();
    let mut line = 0usize;
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| {
                HistoryError::new(file, line + 1, None, format!("cannot read the file: {e}"))
            })?;
        if n == 0 {
            break;
        }
        line += 1;
        if line == 1 {
            crate::strip_bom(&mut buf);
        }
        let terminated = buf.last() == Some(&b'\n');
        if !terminated && buf.len() > MAX_LINE_BYTES {
            return Err(HistoryError::new(
                file,
                line,
                None,
                format!("the line is longer than {MAX_LINE_BYTES} bytes; is this a log?"),
            ));
        }
        let text = String::from_utf8_lossy(&buf);
        let Some(at) = text.find(LOG_MARKER) else {
            continue;
        };
        let pos = history.events.len() as u64;
        match parse_log_op(&text[at + LOG_MARKER.len()..], file, line, pos) {
            Ok(event) => {
                if !terminated {
                    history.warnings.push(Warning {
                        file: file.to_path_buf(),
                        line,
                        message: format!(
                            "line {line} does not end with a newline; if the run was killed while \
                             writing it, its value may be cut short"
                        ),
                    });
                }
                time_order.observe(file, event.time, line, &mut history.warnings);
                history.push(event, line);
            }
            Err(_) if !terminated => {
                history.warnings.push(truncated_warning(file, line));
                break;
            }
            Err(e) => return Err(e),
        }
    }
    time_order.finish(file, &mut history.warnings);
    if history.events.is_empty() {
        return Err(HistoryError::new(
            file,
            0,
            None,
            format!("the file is empty: no events (no line contains `{LOG_MARKER}`)"),
        ));
    }
    Ok(history)
}

/// Splits off the first whitespace-separated field.
fn split_field(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

/// Parses `4 :ok :read 3` (what follows the marker) into the event at position `pos`.
fn parse_log_op(rest: &str, file: &Path, line: usize, pos: u64) -> Result<Event, HistoryError> {
    let err = |field: &str, msg: String| HistoryError::new(file, line, Some(field), msg);
    let (process, rest) = split_field(rest);
    let (kind, rest) = split_field(rest);
    let (f, rest) = split_field(rest);
    let value = rest.trim();

    let process = match process {
        ":nemesis" => Process::Nemesis,
        p => Process::Client(p.parse::<u64>().map_err(|_| {
            err(
                "process",
                format!("expected a non-negative integer or :nemesis, got `{p}`"),
            )
        })?),
    };
    let kind = match kind {
        ":invoke" => EventType::Invoke,
        ":ok" => EventType::Ok,
        ":fail" => EventType::Fail,
        ":info" => EventType::Info,
        other => {
            return Err(err(
                "type",
                format!("expected one of :invoke :ok :fail :info, got `{other}`"),
            ))
        }
    };
    let f = match f.strip_prefix(':') {
        Some(name) if !name.is_empty() => name.to_owned(),
        _ => {
            return Err(err(
                "f",
                format!("expected a keyword like :read, got `{f}`"),
            ))
        }
    };
    if value.is_empty() {
        return Err(err("value", "missing (write `nil` for no value)".into()));
    }
    let value = edn::parse_one(value).map_err(|e| err("value", e.message))?;
    let (value, mut error) = match (kind, &value) {
        (EventType::Fail | EventType::Info, Edn::Keyword(why)) => {
            (Value::Null, Some(Value::String(why.clone())))
        }
        _ => (edn::edn_to_json(&value), None),
    };
    if kind == EventType::Fail && f == "cas" && error.is_none() {
        error = Some(Value::String("precondition".into()));
    }
    Ok(Event {
        index: pos,
        time: pos,
        process,
        kind,
        f,
        key: None,
        value,
        node: None,
        error,
        local: false,
        siblings: false,
        context: None,
    })
}

/// Reads a Porcupine key-value history (`kv/cNN-*.txt`): one EDN op map per line, each with
/// `:key`; `f` stays `get`, `put` or `append`.
pub fn read_porcupine_kv(path: &Path) -> Result<History, HistoryError> {
    edn::read_edn_with(
        path,
        EdnOptions {
            detect_independent: false,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn log(text: &str) -> Result<History, HistoryError> {
        read_porcupine_log_from(text.as_bytes(), Path::new("etcd.log"))
    }

    const SAMPLE: &str = "\
2015-01-01 INFO  jepsen.core - Running test
INFO  jepsen.util - 4\t:invoke\t:read\tnil
INFO  jepsen.util - 2\t:invoke\t:cas\t[2 4]
INFO  jepsen.util - 4\t:ok\t:read\t3
INFO  jepsen.util - 2   :fail   :cas    [2 4]
INFO  jepsen.util - 0\t:invoke\t:read\tnil
INFO  jepsen.util - :nemesis\t:info\t:start\tnil
INFO  jepsen.util - 0\t:fail\t:read\t:timed-out
INFO  jepsen.util - 3\t:invoke\t:write\t1
INFO  jepsen.util - 3\t:info\t:write\t:timed-out
";

    #[test]
    fn reads_a_console_log() {
        let h = log(SAMPLE).unwrap();
        assert_eq!(h.events.len(), 9);
        assert_eq!(h.lines, (2..=10).collect::<Vec<_>>());
        assert!(h.warnings.is_empty(), "{:?}", h.warnings);
        for (i, e) in h.events.iter().enumerate() {
            assert_eq!((e.index, e.time), (i as u64, i as u64));
        }
        assert_eq!(h.events[0].value, json!(null));
        assert_eq!(h.events[1].value, json!([2, 4]));
        assert_eq!(h.events[1].error, None);
        assert_eq!(h.events[2].value, json!(3));
        // space-separated line, and etcd's refused compare
        assert_eq!(h.events[3].kind, EventType::Fail);
        assert_eq!(h.events[3].value, json!([2, 4]));
        assert_eq!(h.events[3].error, Some(json!("precondition")));
        assert_eq!(h.events[5].process, Process::Nemesis);
        assert_eq!(h.events[6].value, json!(null));
        assert_eq!(h.events[6].error, Some(json!("timed-out")));
        assert_eq!(h.events[8].kind, EventType::Info);
        assert_eq!(h.events[8].error, Some(json!("timed-out")));
        let p = crate::pair(&h).unwrap();
        assert_eq!(p.ops.len(), 4);
    }

    #[test]
    fn bad_fields_name_line_and_field() {
        let cases = [
            ("INFO  jepsen.util - x\t:invoke\t:read\tnil\n", "process"),
            ("INFO  jepsen.util - -1\t:invoke\t:read\tnil\n", "process"),
            ("INFO  jepsen.util - 1\t:done\t:read\tnil\n", "type"),
            ("INFO  jepsen.util - 1\t:invoke\tread\tnil\n", "f"),
            ("INFO  jepsen.util - 1\t:invoke\t:read\n", "value"),
            ("INFO  jepsen.util - 1\t:invoke\t:cas\t[1 2\n", "value"),
        ];
        for (bad, field) in cases {
            let text = format!("INFO  jepsen.util - 0\t:invoke\t:read\tnil\n{bad}");
            let e = log(&text).unwrap_err();
            assert_eq!(
                (e.line, e.field.as_deref()),
                (2, Some(field)),
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn truncated_last_line_is_a_warning() {
        let text = "INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:ok\t:re";
        let h = log(text).unwrap();
        assert_eq!(h.events.len(), 1);
        assert_eq!(h.warnings.len(), 1);
        assert!(h.warnings[0].message.contains("line 2 is truncated"));
        let text = "INFO  jepsen.util - 0\t:invoke\t:cas\t[1 2";
        let e = log(text).unwrap_err();
        assert!(e.message.contains("empty"), "{e}");
        // An unterminated last line that parses is kept, with a warning that it may be cut.
        let h = log("INFO  jepsen.util - 0\t:invoke\t:write\t3").unwrap();
        assert_eq!(h.events.len(), 1);
        assert!(h.warnings[0].message.contains("may be cut short"));
    }

    #[test]
    fn a_log_without_op_lines_is_empty() {
        let e = log("INFO jepsen.core - nothing\n").unwrap_err();
        assert_eq!(e.line, 0);
        assert!(e.message.contains("is empty: no events"), "{e}");
    }

    #[test]
    fn reads_a_kv_history() {
        let path =
            std::env::temp_dir().join(format!("harness-history-kv-{}.txt", std::process::id()));
        std::fs::write(
            &path,
            "{:process 9, :type :invoke, :f :append, :key \"0\", :value \"x 9 0 y\"}\n\
             {:process 0, :type :invoke, :f :get, :key \"7\", :value nil}\n\
             {:process 0, :type :ok, :f :get, :key \"7\", :value \"x 0 0 y\"}\n\
             {:process 9, :type :ok, :f :append, :key \"0\", :value \"x 9 0 y\"}\n",
        )
        .unwrap();
        let h = read_porcupine_kv(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(h.events.len(), 4);
        assert_eq!(h.events[0].f, "append");
        assert_eq!(h.events[0].key.as_deref(), Some("0"));
        assert_eq!(h.events[0].value, json!("x 9 0 y"));
        assert_eq!(h.events[2].value, json!("x 0 0 y"));
        assert_eq!(h.events[3].index, 3);
        crate::pair(&h).unwrap();
    }
}
