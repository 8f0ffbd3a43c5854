//! Maelstrom's messages (jepsen-io/maelstrom, `doc/protocol.md`): one JSON object per line,
//! `{"src":"n1","dest":"n2","body":{"type":"...","msg_id":7,"in_reply_to":3,...}}`, and its
//! error codes, each either definite (the operation certainly did not happen) or not.

use serde_json::{Map, Value};

/// A message as it crossed a node's stdout, with the fields routing needs read out.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub src: String,
    pub dest: String,
    /// The body, a JSON object with a string `type`.
    pub body: Map<String, Value>,
}

impl Message {
    /// The body's `type`.
    pub fn kind(&self) -> &str {
        self.body.get("type").and_then(Value::as_str).unwrap_or("")
    }

    /// The body's `in_reply_to`, when it is a reply.
    pub fn in_reply_to(&self) -> Option<u64> {
        self.body.get("in_reply_to").and_then(Value::as_u64)
    }

    /// The body's `msg_id`, when the sender expects a reply.
    pub fn msg_id(&self) -> Option<u64> {
        self.body.get("msg_id").and_then(Value::as_u64)
    }

    /// The message as one line of JSON (no newline).
    pub fn to_line(&self) -> String {
        let mut m = Map::new();
        m.insert("src".into(), Value::String(self.src.clone()));
        m.insert("dest".into(), Value::String(self.dest.clone()));
        m.insert("body".into(), Value::Object(self.body.clone()));
        Value::Object(m).to_string()
    }
}

/// Why a line a node wrote is not a message. Shown with the node and the line number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// Not JSON at all (or not UTF-8).
    NotJson(String),
    /// JSON, but not an object with string `src` and `dest` and an object `body`.
    MissingField(&'static str),
    /// A body without a string `type`.
    NoType,
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Malformed::NotJson(e) => write!(f, "not JSON ({e})"),
            Malformed::MissingField(field) => write!(
                f,
                "not a message: `{field}` is missing or of the wrong type \
                 (a message is {{\"src\": string, \"dest\": string, \"body\": object}})"
            ),
            Malformed::NoType => f.write_str("the body has no string `type`"),
        }
    }
}

/// Reads one line a node wrote.
pub fn parse(line: &[u8]) -> Result<Message, Malformed> {
    let v: Value = serde_json::from_slice(line).map_err(|e| Malformed::NotJson(e.to_string()))?;
    let Value::Object(mut m) = v else {
        return Err(Malformed::MissingField("src"));
    };
    let mut string = |field: &'static str| match m.remove(field) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(Malformed::MissingField(field)),
    };
    let src = string("src")?;
    let dest = string("dest")?;
    let Some(Value::Object(body)) = m.remove("body") else {
        return Err(Malformed::MissingField("body"));
    };
    if !matches!(body.get("type"), Some(Value::String(_))) {
        return Err(Malformed::NoType);
    }
    Ok(Message { src, dest, body })
}

/// An error body's code, by Maelstrom's table (`doc/protocol.md`, "Errors").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorCode(pub i64);

impl ErrorCode {
    pub const TIMEOUT: ErrorCode = ErrorCode(0);
    pub const NODE_NOT_FOUND: ErrorCode = ErrorCode(1);
    pub const NOT_SUPPORTED: ErrorCode = ErrorCode(10);
    pub const TEMPORARILY_UNAVAILABLE: ErrorCode = ErrorCode(11);
    pub const MALFORMED_REQUEST: ErrorCode = ErrorCode(12);
    pub const CRASH: ErrorCode = ErrorCode(13);
    pub const ABORT: ErrorCode = ErrorCode(14);
    pub const KEY_DOES_NOT_EXIST: ErrorCode = ErrorCode(20);
    pub const KEY_ALREADY_EXISTS: ErrorCode = ErrorCode(21);
    pub const PRECONDITION_FAILED: ErrorCode = ErrorCode(22);
    pub const TXN_CONFLICT: ErrorCode = ErrorCode(30);

    /// The code's name in Maelstrom's table, `error-<code>` for one of a node's own.
    pub fn name(self) -> String {
        match self.0 {
            0 => "timeout".into(),
            1 => "node-not-found".into(),
            10 => "not-supported".into(),
            11 => "temporarily-unavailable".into(),
            12 => "malformed-request".into(),
            13 => "crash".into(),
            14 => "abort".into(),
            20 => "key-does-not-exist".into(),
            21 => "key-already-exists".into(),
            22 => "precondition-failed".into(),
            30 => "txn-conflict".into(),
            c => format!("error-{c}"),
        }
    }

    /// Whether the code promises that the operation did not take effect (a `fail` in the
    /// history). Timeouts, crashes and codes of the node's own (1000 and up) do not (`info`).
    pub fn definite(self) -> bool {
        matches!(self.0, 1 | 10 | 11 | 12 | 14 | 20 | 21 | 22 | 30)
    }
}

/// An error body replying to `msg_id`.
pub fn error_body(in_reply_to: Option<u64>, code: ErrorCode, text: &str) -> Map<String, Value> {
    let mut b = Map::new();
    b.insert("type".into(), "error".into());
    if let Some(id) = in_reply_to {
        b.insert("in_reply_to".into(), id.into());
    }
    b.insert("code".into(), code.0.into());
    b.insert("text".into(), text.into());
    b
}

/// The code and text of an error body; None for a body that is not `type: error`.
pub fn error_of(body: &Map<String, Value>) -> Option<(ErrorCode, String)> {
    if body.get("type").and_then(Value::as_str) != Some("error") {
        return None;
    }
    let code = body.get("code").and_then(Value::as_i64).unwrap_or(-1);
    let text = body
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    Some((ErrorCode(code), text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_read_with_its_routing_fields() {
        let m = parse(br#"{"src":"n1","dest":"c3","body":{"type":"echo_ok","in_reply_to":4,"msg_id":9,"echo":"hi"}}"#)
            .unwrap();
        assert_eq!((m.src.as_str(), m.dest.as_str()), ("n1", "c3"));
        assert_eq!(
            (m.kind(), m.in_reply_to(), m.msg_id()),
            ("echo_ok", Some(4), Some(9))
        );
        assert_eq!(parse(m.to_line().as_bytes()).unwrap(), m);
    }

    #[test]
    fn malformed_lines_say_what_is_wrong() {
        assert!(matches!(parse(b"hello"), Err(Malformed::NotJson(_))));
        assert_eq!(parse(b"[1]"), Err(Malformed::MissingField("src")));
        assert_eq!(
            parse(br#"{"src":"n1","body":{"type":"x"}}"#),
            Err(Malformed::MissingField("dest"))
        );
        assert_eq!(
            parse(br#"{"src":"n1","dest":"n2","body":"x"}"#),
            Err(Malformed::MissingField("body"))
        );
        assert_eq!(
            parse(br#"{"src":"n1","dest":"n2","body":{"msg_id":1}}"#),
            Err(Malformed::NoType)
        );
        assert!(Malformed::NoType.to_string().contains("type"));
    }

    #[test]
    fn definite_codes_are_the_ones_maelstrom_names_definite() {
        for c in [1, 10, 11, 12, 14, 20, 21, 22, 30] {
            assert!(ErrorCode(c).definite(), "{c}");
        }
        for c in [0, 13, 1000, -1] {
            assert!(!ErrorCode(c).definite(), "{c}");
        }
        assert_eq!(ErrorCode(22).name(), "precondition-failed");
        assert_eq!(ErrorCode(1001).name(), "error-1001");
        let b = error_body(Some(3), ErrorCode::KEY_DOES_NOT_EXIST, "no x");
        assert_eq!(error_of(&b), Some((ErrorCode(20), "no x".into())));
    }
}
