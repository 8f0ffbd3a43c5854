//! The streaming JSON Lines reader and writer for `history.jsonl` (shared/DESIGN.md section 2).
//!
//! The reader holds one line at a time. Each line is parsed to a JSON value first and its fields
//! are then checked one by one, so every error names the file, the line and the field. A run that
//! was killed while writing leaves a truncated last line: that line is skipped with a warning,
//! and the prefix before it is checked as usual. Only a last line that is cut (its JSON ends
//! too early) counts as truncated; a whole last line with a bad byte or bad JSON is an error.
//! A UTF-8 byte order mark at the start is dropped. Integers beyond `i64`/`u64`, which
//! serde_json would round to floats (so that two different ones compare equal), are an error.

use crate::{Event, EventType, History, HistoryError, Process, Warning};
use serde_json::{Map, Value};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

/// No event is anywhere near this long; a longer line is a corrupt file, not an event.
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// After this many "time goes backwards" warnings the rest are only counted.
const MAX_TIME_WARNINGS: usize = 10;

/// The fields of an event, in the order DESIGN.md lists them.
pub const FIELDS: [&str; 12] = [
    "index", "time", "process", "type", "f", "key", "value", "node", "error", "local", "siblings",
    "context",
];

/// Watches event times and warns when they go backwards (the harness's clock is monotonic, so
/// that means the events were reordered or come from another clock).
#[derive(Debug, Default)]
pub(crate) struct TimeOrder {
    last: Option<(u64, usize)>,
    reported: usize,
    unreported: usize,
}

impl TimeOrder {
    pub(crate) fn observe(&mut self, file: &Path, time: u64, line: usize, out: &mut Vec<Warning>) {
        if let Some((prev, prev_line)) = self.last {
            if time < prev {
                if self.reported < MAX_TIME_WARNINGS {
                    self.reported += 1;
                    out.push(Warning {
                        file: file.to_path_buf(),
                        line,
                        message: format!(
                            "time goes backwards: {time} ns here, after {prev} ns on line \
                             {prev_line}"
                        ),
                    });
                } else {
                    self.unreported += 1;
                }
            }
        }
        self.last = Some((time, line));
    }

    pub(crate) fn finish(&mut self, file: &Path, out: &mut Vec<Warning>) {
        if self.unreported > 0 {
            out.push(Warning {
                file: file.to_path_buf(),
                line: 0,
                message: format!(
                    "time goes backwards on {} more lines (not listed)",
                    self.unreported
                ),
            });
            self.unreported = 0;
        }
    }
}

pub(crate) fn truncated_warning(file: &Path, line: usize) -> Warning {
    Warning {
        file: file.to_path_buf(),
        line,
        message: format!(
            "line {line} is truncated (the run was probably killed while writing it); skipped"
        ),
    }
}

/// Streams events from JSON Lines text, yielding each event with its 1-based line.
///
/// Blank lines are skipped. After the first error the iterator ends. Warnings (a truncated last
/// line, time going backwards) are collected and read with [`JsonlReader::take_warnings`].
pub struct JsonlReader<R: BufRead> {
    reader: R,
    file: PathBuf,
    buf: Vec<u8>,
    line: usize,
    next_index: u64,
    time_order: TimeOrder,
    warnings: Vec<Warning>,
    done: bool,
}

impl<R: BufRead> JsonlReader<R> {
    /// `file` names the source in errors and warnings.
    pub fn new(reader: R, file: impl Into<PathBuf>) -> Self {
        JsonlReader {
            reader,
            file: file.into(),
            buf: Vec::new(),
            line: 0,
            next_index: 0,
            time_order: TimeOrder::default(),
            warnings: Vec::new(),
            done: false,
        }
    }

    /// The warnings met so far.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// Takes the warnings met so far.
    pub fn take_warnings(&mut self) -> Vec<Warning> {
        std::mem::take(&mut self.warnings)
    }

    fn fail(
        &mut self,
        line: usize,
        field: Option<&str>,
        msg: String,
    ) -> Option<<Self as Iterator>::Item> {
        self.done = true;
        Some(Err(HistoryError::new(&self.file, line, field, msg)))
    }

    fn end(&mut self) -> Option<<Self as Iterator>::Item> {
        self.done = true;
        self.time_order.finish(&self.file, &mut self.warnings);
        None
    }
}

/// What [`JsonlReader`] yields: an event and its 1-based line, or the error that ends it.
pub type Item = Result<(Event, usize), HistoryError>;

impl<R: BufRead> Iterator for JsonlReader<R> {
    type Item = Item;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        loop {
            self.buf.clear();
            let limit = MAX_LINE_BYTES as u64 + 1;
            let n = match (&mut self.reader)
                .take(limit)
                .read_until(b'\n', &mut self.buf)
            {
                Ok(n) => n,
                Err(e) => {
                    let line = self.line + 1;
                    return self.fail(line, None, format!("cannot read the file: {e}"));
                }
            };
            if n == 0 {
                return self.end();
            }
            self.line += 1;
            let line = self.line;
            if line == 1 {
                crate::strip_bom(&mut self.buf);
            }
            let terminated = self.buf.last() == Some(&b'\n');
            if !terminated && self.buf.len() > MAX_LINE_BYTES {
                return self.fail(
                    line,
                    None,
                    format!("the line is longer than {MAX_LINE_BYTES} bytes; is this a history?"),
                );
            }
            // Only a last line can lack its newline: read_until stops early only at the end.
            let last_unterminated = !terminated;
            // A last line cut inside a multi-byte character: the whole characters before the
            // cut are parsed below, and only a cut JSON text makes it a truncation.
            let mut cut_char_at = None;
            let text = match std::str::from_utf8(&self.buf) {
                Ok(t) => t.trim(),
                Err(e) if last_unterminated && e.error_len().is_none() => {
                    cut_char_at = Some(e.valid_up_to());
                    std::str::from_utf8(&self.buf[..e.valid_up_to()])
                        .expect("checked prefix")
                        .trim()
                }
                Err(e) => {
                    return self.fail(line, None, bad_utf8_message(&self.buf, e.valid_up_to()));
                }
            };
            if text.is_empty() && cut_char_at.is_none() {
                continue;
            }
            // Fast path: a well-formed line deserialises straight into an Event; anything
            // unusual goes through the Value path below, which names the faulty field.
            if cut_char_at.is_none() {
                if let Ok(ev) = serde_json::from_str::<Event>(text) {
                    // Only `value` and `error` can hold a number serde_json made a float of.
                    let floats = has_float(&ev.value) || ev.error.as_ref().is_some_and(has_float);
                    if floats {
                        if let Some((field, literal)) = oversized_integer(text) {
                            return self.fail(line, field.as_deref(), too_large(literal));
                        }
                    }
                    if ev.index == self.next_index && !ev.f.is_empty() {
                        self.next_index += 1;
                        self.time_order
                            .observe(&self.file, ev.time, line, &mut self.warnings);
                        return Some(Ok((ev, line)));
                    }
                }
            }
            let value: Value = match serde_json::from_str(text) {
                // A killed writer leaves a last line that is cut, not one that is wrong: only a
                // text that ends too early counts as truncated. A complete last line with a bad
                // byte or bad JSON is an error like on any other line.
                Err(e) if last_unterminated && is_cut(&e, text) => {
                    self.warnings.push(truncated_warning(&self.file, line));
                    return self.end();
                }
                _ if cut_char_at.is_some() => {
                    let at = cut_char_at.expect("checked in the guard");
                    return self.fail(line, None, bad_utf8_message(&self.buf, at));
                }
                Ok(v) => v,
                Err(e) => {
                    return self.fail(
                        line,
                        None,
                        format!(
                            "not valid JSON at column {}: {}",
                            e.column(),
                            without_position(&e)
                        ),
                    )
                }
            };
            if has_float(&value) {
                if let Some((field, literal)) = oversized_integer(text) {
                    return self.fail(line, field.as_deref(), too_large(literal));
                }
            }
            match event_from_json(value, &self.file, line, self.next_index) {
                Ok(ev) => {
                    self.next_index += 1;
                    self.time_order
                        .observe(&self.file, ev.time, line, &mut self.warnings);
                    return Some(Ok((ev, line)));
                }
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

/// Whether `v` holds a number that serde_json keeps as a float: a JSON float, or an integer
/// beyond `i64`/`u64` that it rounded to one.
fn has_float(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_f64(),
        Value::Array(items) => items.iter().any(has_float),
        Value::Object(m) => m.values().any(has_float),
        _ => false,
    }
}

fn too_large(literal: &str) -> String {
    let digits = literal.trim_start_matches('-').len();
    let shown = if literal.len() > 40 {
        format!("{}…", &literal[..40])
    } else {
        literal.to_owned()
    };
    format!(
        "integer too large for exact comparison: {shown} ({digits} digits) does not fit a 64-bit \
         integer, and as a float it would equal its neighbours; write it as a string"
    )
}

/// The first integer literal in the JSON text `text` that fits neither `i64` nor `u64` (serde_json
/// would round it to a float, making 99999999999999999999999 equal 99999999999999999999998),
/// with the top-level field it appears in. Only called for lines holding a float, so a history
/// without floats pays nothing.
fn oversized_integer(text: &str) -> Option<(Option<String>, &str)> {
    let b = text.as_bytes();
    let mut i = 0;
    let mut depth = 0usize;
    let mut field: Option<String> = None;
    while i < b.len() {
        match b[i] {
            b'"' => {
                let start = i;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                let end = i.min(b.len());
                if depth == 1 {
                    let mut j = end;
                    while j < b.len() && b[j].is_ascii_whitespace() {
                        j += 1;
                    }
                    if j < b.len() && b[j] == b':' {
                        field = serde_json::from_str::<String>(&text[start..end]).ok();
                    }
                }
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < b.len() && matches!(b[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                let literal = &text[start..i];
                let integer = !literal.contains(['.', 'e', 'E']);
                if integer && literal.parse::<i64>().is_err() && literal.parse::<u64>().is_err() {
                    let digits = literal.strip_prefix('-').unwrap_or(literal);
                    if !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit()) {
                        return Some((field, literal));
                    }
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The message for a line that is not UTF-8, with the bad byte at `at` (0-based).
fn bad_utf8_message(line: &[u8], at: usize) -> String {
    let what = if line.contains(&0) {
        "contains NUL bytes: this looks like a binary file, not a history"
    } else {
        "is not valid UTF-8 text"
    };
    format!("the line {what} (bad byte at column {})", at + 1)
}

/// Whether `text` failed to parse only because it ends too early: serde_json ran out of input
/// (`Eof`), or the text ends inside a number (`1.`, `-`, `2e`: what a cut at that point looks
/// like, which serde_json reports as a syntax error at the very end; one more digit mends it).
fn is_cut(e: &serde_json::Error, text: &str) -> bool {
    match e.classify() {
        serde_json::error::Category::Eof => true,
        serde_json::error::Category::Syntax if text.ends_with(['-', '+', '.', 'e', 'E']) => {
            match serde_json::from_str::<serde::de::IgnoredAny>(&format!("{text}0")) {
                Ok(_) => true,
                Err(e) => e.classify() == serde_json::error::Category::Eof,
            }
        }
        _ => false,
    }
}

/// serde_json's message without its " at line 1 column 30" (the column is reported apart).
fn without_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

/// A JSON value for messages, cut to 60 characters.
fn short(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

/// Checks one parsed line and builds its event; `expected_index` is its position in the file.
pub fn event_from_json(
    value: Value,
    file: &Path,
    line: usize,
    expected_index: u64,
) -> Result<Event, HistoryError> {
    let err = |field: &str, msg: String| HistoryError::new(file, line, Some(field), msg);
    let mut m: Map<String, Value> = match value {
        Value::Object(m) => m,
        other => {
            return Err(HistoryError::new(
                file,
                line,
                None,
                format!(
                    "expected a JSON object (one event per line), got {}",
                    short(&other)
                ),
            ))
        }
    };
    if let Some(k) = m.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(err(
            k,
            format!("unknown field; an event has only {}", FIELDS.join(", ")),
        ));
    }
    let mut required = |field: &str| {
        m.remove(field).ok_or_else(|| {
            err(
                field,
                "missing; every event needs index, time, process, type and f".into(),
            )
        })
    };
    let index = required("index")?;
    let time = required("time")?;
    let process = required("process")?;
    let kind = required("type")?;
    let f = required("f")?;

    let index = index.as_u64().ok_or_else(|| {
        err(
            "index",
            format!("expected a non-negative integer, got {}", short(&index)),
        )
    })?;
    if index != expected_index {
        return Err(err(
            "index",
            format!(
                "is {index} but this is event {expected_index} of the file (counting from 0); \
                 index must be 0, 1, 2, … in file order"
            ),
        ));
    }
    let time = time.as_u64().ok_or_else(|| {
        err(
            "time",
            format!(
                "expected nanoseconds as a non-negative integer, got {}",
                short(&time)
            ),
        )
    })?;
    let process = match &process {
        Value::Number(n) if n.as_u64().is_some() => {
            Process::Client(n.as_u64().expect("checked in the guard"))
        }
        Value::String(s) if s == "nemesis" => Process::Nemesis,
        other => {
            return Err(err(
                "process",
                format!(
                    "expected a non-negative integer or \"nemesis\", got {}",
                    short(other)
                ),
            ))
        }
    };
    let kind = match kind.as_str() {
        Some("invoke") => EventType::Invoke,
        Some("ok") => EventType::Ok,
        Some("fail") => EventType::Fail,
        Some("info") => EventType::Info,
        _ => {
            return Err(err(
                "type",
                format!(
                    "expected one of \"invoke\" \"ok\" \"fail\" \"info\", got {}",
                    short(&kind)
                ),
            ))
        }
    };
    let f = match f {
        Value::String(s) if !s.is_empty() => s,
        other => {
            return Err(err(
                "f",
                format!("expected a non-empty string, got {}", short(&other)),
            ))
        }
    };
    let key = match m.remove("key") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        Some(other) => {
            return Err(err(
                "key",
                format!("expected a string (or an integer), got {}", short(&other)),
            ))
        }
    };
    let node = match m.remove("node") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => {
            return Err(err(
                "node",
                format!("expected a string, got {}", short(&other)),
            ))
        }
    };
    let error = match m.remove("error") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v),
    };
    let mut flag = |field: &str| match m.remove(field) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(b),
        Some(other) => Err(err(
            field,
            format!("expected true or false, got {}", short(&other)),
        )),
    };
    let local = flag("local")?;
    let siblings = flag("siblings")?;
    let context = match m.remove("context") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => {
            return Err(err(
                "context",
                format!(
                    "expected a string (an opaque context), got {}",
                    short(&other)
                ),
            ))
        }
    };
    Ok(Event {
        index,
        time,
        process,
        kind,
        f,
        key,
        value: m.remove("value").unwrap_or(Value::Null),
        node,
        error,
        local,
        siblings,
        context,
    })
}

/// Reads a whole history from JSON Lines text.
pub fn read_jsonl_from<R: BufRead>(reader: R, file: &Path) -> Result<History, HistoryError> {
    let mut history = History::new(file);
    let mut events = JsonlReader::new(reader, file);
    for item in &mut events {
        let (event, line) = item?;
        history.push(event, line);
    }
    history.warnings = events.take_warnings();
    if history.events.is_empty() {
        let message = if history.warnings.is_empty() {
            "the file is empty: no events"
        } else {
            "the file is empty: no events (its only line is truncated)"
        };
        return Err(HistoryError::new(file, 0, None, message));
    }
    Ok(history)
}

/// Reads `history.jsonl` line by line.
pub fn read_jsonl(path: &Path) -> Result<History, HistoryError> {
    let f = File::open(path)
        .map_err(|e| HistoryError::new(path, 0, None, format!("cannot open the file: {e}")))?;
    read_jsonl_from(BufReader::new(f), path)
}

/// Writes events as JSON Lines, one compact line each.
///
/// Each event goes to the underlying writer in a single `write_all` of the whole line, so an
/// unbuffered file that is killed mid-run holds whole lines and at most one cut last line,
/// which the reader skips with a warning.
pub struct JsonlWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
}

impl<W: Write> JsonlWriter<W> {
    pub fn new(out: W) -> Self {
        JsonlWriter {
            out,
            buf: Vec::with_capacity(256),
        }
    }

    /// Appends one event as one line.
    pub fn write(&mut self, event: &Event) -> io::Result<()> {
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, event)?;
        self.buf.push(b'\n');
        self.out.write_all(&self.buf)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// The underlying writer (not flushed: call [`JsonlWriter::flush`] first if it buffers).
    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SAMPLE: &str = concat!(
        r#"{"index":0,"time":1843211,"process":3,"type":"invoke","f":"cas","key":"k7","value":[4,9],"node":"n2"}"#,
        "\n",
        r#"{"index":1,"time":9921034,"process":3,"type":"fail","f":"cas","key":"k7","value":[4,9],"error":"precondition"}"#,
        "\n",
        r#"{"index":2,"time":10000007,"process":"nemesis","type":"info","f":"start-partition","value":{"n1":["n4","n5"]}}"#,
        "\n",
    );

    fn read(text: &str) -> Result<History, HistoryError> {
        read_jsonl_from(text.as_bytes(), Path::new("h.jsonl"))
    }

    fn line(index: u64, rest: &str) -> String {
        format!(r#"{{"index":{index},"time":{index},{rest}}}"#)
    }

    #[test]
    fn reads_the_design_sample() {
        let h = read(SAMPLE).unwrap();
        assert_eq!(h.events.len(), 3);
        assert_eq!(h.lines, vec![1, 2, 3]);
        assert!(h.warnings.is_empty(), "{:?}", h.warnings);
        let e = &h.events[0];
        assert_eq!(e.process, Process::Client(3));
        assert_eq!(e.kind, EventType::Invoke);
        assert_eq!(e.key.as_deref(), Some("k7"));
        assert_eq!(e.value, json!([4, 9]));
        assert_eq!(e.node.as_deref(), Some("n2"));
        assert_eq!(h.events[1].error, Some(json!("precondition")));
        assert_eq!(h.events[2].process, Process::Nemesis);
        assert_eq!(h.events[2].value, json!({"n1": ["n4", "n5"]}));
        crate::pair(&h).unwrap();
    }

    #[test]
    fn writer_round_trips() {
        let h = read(SAMPLE).unwrap();
        let mut w = JsonlWriter::new(Vec::new());
        for e in &h.events {
            w.write(e).unwrap();
        }
        w.flush().unwrap();
        let bytes = w.into_inner();
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(text.ends_with('\n'));
        let back = read(&text).unwrap();
        assert_eq!(back.events, h.events);
        // Compact, and the absent optional fields stay absent.
        assert!(!text.contains(": "));
        assert!(!text.lines().nth(2).unwrap().contains("\"key\""));
    }

    #[test]
    fn local_siblings_and_context_are_read_and_written_only_when_set() {
        let text = format!(
            "{}\n{}\n",
            line(
                0,
                r#""process":1,"type":"invoke","f":"read","key":"k","local":true,"context":"c1""#
            ),
            line(
                1,
                r#""process":1,"type":"ok","f":"read","key":"k","value":[1,2],"siblings":true,"context":"c2""#
            )
        );
        let h = read(&text).unwrap();
        assert!(h.events[0].local && !h.events[0].siblings);
        assert_eq!(h.events[0].context.as_deref(), Some("c1"));
        assert!(h.events[1].siblings && !h.events[1].local);
        assert_eq!(h.events[1].context.as_deref(), Some("c2"));
        let mut w = JsonlWriter::new(Vec::new());
        for e in &h.events {
            w.write(e).unwrap();
        }
        let written = String::from_utf8(w.into_inner()).unwrap();
        assert_eq!(read(&written).unwrap().events, h.events);
        let plain = read(SAMPLE).unwrap();
        let mut w = JsonlWriter::new(Vec::new());
        w.write(&plain.events[0]).unwrap();
        let text = String::from_utf8(w.into_inner()).unwrap();
        assert!(!text.contains("local") && !text.contains("siblings") && !text.contains("context"));
        let bad = read(&line(
            0,
            r#""process":1,"type":"invoke","f":"read","local":"yes""#,
        ));
        assert!(bad.unwrap_err().to_string().contains("`local`"));
    }

    #[test]
    fn blank_lines_are_skipped_and_lines_stay_true() {
        let text = format!(
            "\n{}\n   \n{}\n",
            line(0, r#""process":1,"type":"invoke","f":"read""#),
            line(1, r#""process":1,"type":"ok","f":"read","value":3"#)
        );
        let h = read(&text).unwrap();
        assert_eq!(h.lines, vec![2, 4]);
        assert_eq!(h.events[1].value, json!(3));
    }

    #[test]
    fn integer_key_becomes_its_decimal_string() {
        let h = read(&line(
            0,
            r#""process":1,"type":"invoke","f":"read","key":17"#,
        ))
        .unwrap();
        assert_eq!(h.events[0].key.as_deref(), Some("17"));
    }

    #[test]
    fn missing_type_names_line_and_field() {
        let text = format!(
            "{}\n{}\n",
            line(0, r#""process":1,"type":"invoke","f":"read""#),
            line(1, r#""process":1,"f":"read""#)
        );
        let e = read(&text).unwrap_err();
        assert_eq!((e.line, e.field.as_deref()), (2, Some("type")));
        assert!(
            e.to_string()
                .starts_with("h.jsonl:2: field `type`: missing"),
            "{e}"
        );
    }

    #[test]
    fn bad_process_names_the_field() {
        for bad in [r#"-1"#, r#""client""#, "1.5", "null"] {
            let text = line(0, &format!(r#""process":{bad},"type":"invoke","f":"read""#));
            let e = read(&text).unwrap_err();
            assert_eq!(
                (e.line, e.field.as_deref()),
                (1, Some("process")),
                "{bad}: {e}"
            );
            assert!(
                e.message.contains("non-negative integer or \"nemesis\""),
                "{e}"
            );
        }
    }

    #[test]
    fn bad_type_and_empty_f_name_their_fields() {
        let e = read(&line(0, r#""process":1,"type":"done","f":"read""#)).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("type"));
        assert!(e.message.contains(r#"got "done""#), "{e}");
        let e = read(&line(0, r#""process":1,"type":"ok","f":"""#)).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("f"));
        let e = read(&line(0, r#""process":1,"type":"ok","f":"r","key":[1]"#)).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("key"));
        let e = read(&line(0, r#""process":1,"type":"ok","f":"r","node":3"#)).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("node"));
        let e = read(r#"{"index":0,"time":-5,"process":1,"type":"ok","f":"r"}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("time"));
    }

    #[test]
    fn unknown_field_is_named() {
        let e = read(&line(
            0,
            r#""process":1,"type":"invoke","f":"read","foo":1"#,
        ))
        .unwrap_err();
        assert_eq!((e.line, e.field.as_deref()), (1, Some("foo")));
        assert!(e.message.contains("unknown field"), "{e}");
    }

    #[test]
    fn index_must_count_from_zero_in_file_order() {
        let text = format!(
            "{}\n{}\n",
            line(0, r#""process":1,"type":"invoke","f":"read""#),
            line(5, r#""process":1,"type":"ok","f":"read""#)
        );
        let e = read(&text).unwrap_err();
        assert_eq!((e.line, e.field.as_deref()), (2, Some("index")));
        assert!(e.message.contains("is 5 but this is event 1"), "{e}");
    }

    #[test]
    fn garbage_in_the_middle_is_an_error() {
        let text = format!(
            "{}\ngarbage !!\n{}\n",
            line(0, r#""process":1,"type":"invoke","f":"read""#),
            line(1, r#""process":1,"type":"ok","f":"read""#)
        );
        let e = read(&text).unwrap_err();
        assert_eq!((e.line, e.field.as_deref()), (2, None));
        assert!(e.message.contains("not valid JSON at column 1"), "{e}");
    }

    #[test]
    fn a_bad_last_line_with_its_newline_is_an_error_not_a_truncation() {
        let text = format!(
            "{}\n{{\"index\":1,\"ti\n",
            line(0, r#""process":1,"type":"invoke","f":"read""#)
        );
        let e = read(&text).unwrap_err();
        assert_eq!(e.line, 2);
    }

    #[test]
    fn truncated_last_line_is_a_warning_and_the_prefix_is_kept() {
        let text = format!(
            "{}\n{}\n{{\"index\":2,\"time\":2,\"proc",
            line(0, r#""process":1,"type":"invoke","f":"read""#),
            line(1, r#""process":1,"type":"ok","f":"read","value":null"#)
        );
        let h = read(&text).unwrap();
        assert_eq!(h.events.len(), 2);
        assert_eq!(h.warnings.len(), 1);
        assert_eq!(h.warnings[0].line, 3);
        assert!(
            h.warnings[0].message.contains("line 3 is truncated"),
            "{:?}",
            h.warnings
        );
        // Cut inside a multi-byte character: still a truncation, not an encoding error.
        let mut bytes = format!(
            "{}\n{{\"index\":1,\"time\":1,\"f\":\"é",
            line(0, r#""process":1,"type":"invoke","f":"read""#)
        )
        .into_bytes();
        bytes.pop();
        let h = read_jsonl_from(&bytes[..], Path::new("h.jsonl")).unwrap();
        assert_eq!((h.events.len(), h.warnings.len()), (1, 1));
    }

    #[test]
    fn a_complete_last_line_with_a_bad_byte_is_an_error_not_a_truncation() {
        let first = line(
            0,
            r#""process":1,"type":"invoke","f":"write","value":"cafe""#,
        );
        // Latin-1 é (0xE9) inside a whole last line without its newline.
        let mut bytes = format!("{first}\n").into_bytes();
        bytes.extend_from_slice(
            b"{\"index\":1,\"time\":1,\"process\":1,\"type\":\"ok\",\"f\":\"write\",\"value\":\"caf\xe9\"}",
        );
        let e = read_jsonl_from(&bytes[..], Path::new("h.jsonl")).unwrap_err();
        assert_eq!((e.line, e.field.as_deref()), (2, None));
        assert!(e.message.contains("not valid UTF-8"), "{e}");
        // A stray lead byte after a whole object: still a bad byte, not a cut character.
        let mut bytes = format!("{first}\n").into_bytes();
        bytes.extend_from_slice(line(1, r#""process":1,"type":"ok","f":"write""#).as_bytes());
        bytes.push(0xe2);
        let e = read_jsonl_from(&bytes[..], Path::new("h.jsonl")).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("not valid UTF-8"), "{e}");
        // Whole but bad JSON on the last line.
        for bad in [
            format!("{}}}", line(1, r#""process":1,"type":"ok","f":"w""#)),
            r#"{"index":1,"time":1,"process":1,"type":"ok","f":"w","value":tru}"#.to_owned(),
            r#"{"index":1,"time":1x"#.to_owned(),
        ] {
            let e = read(&format!("{first}\n{bad}")).unwrap_err();
            assert_eq!(e.line, 2, "{bad}: {e}");
            assert!(e.message.contains("not valid JSON"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_last_line_cut_anywhere_is_a_truncation() {
        let first = line(
            0,
            r#""process":1,"type":"invoke","f":"write","value":1.5e-3"#,
        );
        let full = line(
            1,
            r#""process":1,"type":"ok","f":"write","value":[-1.5e-3,true,"aé"]"#,
        );
        // Every proper prefix of a whole line, cut between bytes, even inside a number or a
        // character, is a truncation; the whole line is an event.
        for cut in 1..full.len() {
            let mut bytes = format!("{first}\n").into_bytes();
            bytes.extend_from_slice(&full.as_bytes()[..cut]);
            let h = read_jsonl_from(&bytes[..], Path::new("h.jsonl"))
                .unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
            assert_eq!((h.events.len(), h.warnings.len()), (1, 1), "cut at {cut}");
            assert!(h.warnings[0].message.contains("line 2 is truncated"));
        }
        let h = read(&format!("{first}\n{full}")).unwrap();
        assert_eq!((h.events.len(), h.warnings.len()), (2, 0));
    }

    #[test]
    fn a_byte_order_mark_before_the_first_line_is_dropped() {
        let text = format!("\u{FEFF}{SAMPLE}");
        let h = read(&text).unwrap();
        assert_eq!(h.events.len(), 3);
        // Elsewhere it is not whitespace.
        let text = format!(
            "{}\n\u{FEFF}{}\n",
            line(0, r#""process":1,"type":"invoke","f":"r""#),
            line(1, r#""process":1,"type":"ok","f":"r""#)
        );
        assert_eq!(read(&text).unwrap_err().line, 2);
    }

    #[test]
    fn integers_beyond_64_bits_are_rejected_not_rounded() {
        let write = line(
            0,
            r#""process":1,"type":"invoke","f":"write","value":99999999999999999999999"#,
        );
        let e = read(&write).unwrap_err();
        assert_eq!((e.line, e.field.as_deref()), (1, Some("value")), "{e}");
        assert!(
            e.message.starts_with(
                "integer too large for exact comparison: 99999999999999999999999 (23 digits)"
            ),
            "{e}"
        );
        // Nested, negative, in a later line, in the error field, and on the slow path.
        let first = line(0, r#""process":1,"type":"invoke","f":"cas","value":[1,2]"#);
        for (bad, field) in [
            (
                r#""process":1,"type":"ok","f":"cas","value":[1,{"a":[-99999999999999999999]}]"#,
                "value",
            ),
            (
                r#""process":1,"type":"fail","f":"cas","value":[1,2.5],"error":[18446744073709551616]"#,
                "error",
            ),
            (
                r#""process":1,"type":"ok","f":"cas","value":[1,2],"key":100000000000000000000"#,
                "key",
            ),
        ] {
            let e = read(&format!("{first}\n{}\n", line(1, bad))).unwrap_err();
            assert_eq!((e.line, e.field.as_deref()), (2, Some(field)), "{bad}: {e}");
            assert!(e.message.contains("integer too large"), "{e}");
        }
        let e = read(r#"{"index":0,"time":99999999999999999999999,"process":1,"type":"ok","f":"r","value":1}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("time"), "{e}");
        // The edges of i64 and u64 fit, and floats, strings and keys that look like big numbers
        // are fine.
        let ok = line(
            0,
            r#""process":1,"type":"invoke","f":"write","value":[18446744073709551615,-9223372036854775808,1e30,0.5,"99999999999999999999999",{"99999999999999999999999":1.5}]"#,
        );
        let h = read(&ok).unwrap();
        assert_eq!(h.events[0].value[0], json!(u64::MAX));
        assert_eq!(h.events[0].value[1], json!(i64::MIN));
    }

    #[test]
    fn last_line_without_newline_that_parses_is_kept() {
        let h = read(&line(0, r#""process":1,"type":"invoke","f":"read""#)).unwrap();
        assert_eq!(h.events.len(), 1);
        assert!(h.warnings.is_empty());
    }

    #[test]
    fn empty_file_is_an_error() {
        for text in ["", "\n\n  \n"] {
            let e = read(text).unwrap_err();
            assert_eq!(e.line, 0);
            assert!(e.message.contains("is empty: no events"), "{e}");
        }
    }

    #[test]
    fn time_going_backwards_is_a_warning() {
        let text = concat!(
            r#"{"index":0,"time":50,"process":1,"type":"invoke","f":"read"}"#,
            "\n",
            r#"{"index":1,"time":40,"process":1,"type":"ok","f":"read"}"#,
            "\n"
        );
        let h = read(text).unwrap();
        assert_eq!(h.events.len(), 2);
        assert_eq!(h.warnings.len(), 1);
        assert_eq!(h.warnings[0].line, 2);
        assert!(h.warnings[0].message.contains("time goes backwards"));
    }

    #[test]
    fn many_backward_times_are_summarised() {
        let mut text = String::new();
        for i in 0..30u64 {
            let t = 1000 - i;
            text.push_str(&format!(
                "{{\"index\":{i},\"time\":{t},\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"x\"}}\n"
            ));
        }
        let h = read(&text).unwrap();
        assert_eq!(h.warnings.len(), MAX_TIME_WARNINGS + 1);
        assert!(h.warnings.last().unwrap().message.contains("19 more lines"));
    }

    #[test]
    fn non_utf8_line_is_an_error() {
        let mut bytes = line(0, r#""process":1,"type":"invoke","f":"read""#).into_bytes();
        bytes.extend_from_slice(b"\n\xff\xfe\n");
        let e = read_jsonl_from(&bytes[..], Path::new("h.jsonl")).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("UTF-8"), "{e}");
    }

    #[test]
    fn missing_file_is_line_zero_with_the_os_message() {
        let e = read_jsonl(Path::new("/nonexistent/dir/h.jsonl")).unwrap_err();
        assert_eq!(e.line, 0);
        assert!(e.message.contains("cannot open"), "{e}");
        assert!(e.message.to_lowercase().contains("no such file"), "{e}");
    }

    #[test]
    fn reader_streams_events_with_their_lines() {
        let mut r = JsonlReader::new(SAMPLE.as_bytes(), "h.jsonl");
        let (e, l) = r.next().unwrap().unwrap();
        assert_eq!((e.index, l), (0, 1));
        assert_eq!(r.by_ref().count(), 2);
        assert!(r.next().is_none());
    }
}
