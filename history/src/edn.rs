//! A small EDN reader (https://github.com/edn-format/edn) and the Jepsen EDN history importer.
//!
//! The reader covers what Jepsen prints: nil, booleans, integers (with the `N` bigint suffix),
//! floats, strings, characters, keywords, symbols, lists, vectors, maps, sets, tagged literals
//! (`#inst "…"`, `#jepsen.history.Op{…}`), `#_` discards, `;` comments, and commas as whitespace.
//! Every error carries the 1-based line it was found on.
//!
//! The importer accepts either one op map per line (Jepsen's `history.edn`) or one top-level
//! vector or list of op maps, and turns each op into an [`Event`]. Histories made by
//! `jepsen.independent` carry `[key value]` tuples; those are split into `key` and `value`.

use crate::jsonl::TimeOrder;
use crate::{Event, EventType, History, HistoryError, Process, Warning};
use serde_json::Value;
use std::fmt;
use std::path::Path;

/// Deeper nesting than this is not a history but an attack on the stack.
pub const MAX_DEPTH: usize = 512;

/// An EDN value.
#[derive(Clone, Debug, PartialEq)]
pub enum Edn {
    Nil,
    Bool(bool),
    Int(i64),
    /// An integer beyond `i64`, as its decimal digits (with a leading `-` when negative).
    BigInt(String),
    Float(f64),
    Str(String),
    Char(char),
    /// Without the leading colon: `:foo/bar` is `Keyword("foo/bar")`.
    Keyword(String),
    Symbol(String),
    Vector(Vec<Edn>),
    List(Vec<Edn>),
    /// Entries in file order.
    Map(Vec<(Edn, Edn)>),
    Set(Vec<Edn>),
    /// `#tag value`: the tag without `#`, and the value it wraps.
    Tagged(String, Box<Edn>),
}

impl Edn {
    /// The value inside any number of tags (`#jepsen.history.Op{…}` is its map).
    pub fn untagged(&self) -> &Edn {
        let mut v = self;
        while let Edn::Tagged(_, inner) = v {
            v = inner;
        }
        v
    }

    /// The value stored under keyword `:name`, if `self` is a map holding it.
    pub fn get(&self, name: &str) -> Option<&Edn> {
        match self.untagged() {
            Edn::Map(entries) => entries.iter().find_map(|(k, v)| match k {
                Edn::Keyword(k) if k == name => Some(v),
                _ => None,
            }),
            _ => None,
        }
    }

    /// A short description for error messages: the EDN text, cut to 60 characters.
    pub fn short(&self) -> String {
        shorten(&self.to_string(), 60)
    }
}

fn shorten(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

impl fmt::Display for Edn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn seq(f: &mut fmt::Formatter<'_>, open: &str, items: &[Edn], close: &str) -> fmt::Result {
            f.write_str(open)?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(" ")?;
                }
                write!(f, "{item}")?;
            }
            f.write_str(close)
        }
        match self {
            Edn::Nil => f.write_str("nil"),
            Edn::Bool(b) => write!(f, "{b}"),
            Edn::Int(i) => write!(f, "{i}"),
            Edn::BigInt(s) => write!(f, "{s}N"),
            Edn::Float(x) if x.is_nan() => f.write_str("##NaN"),
            Edn::Float(x) if x.is_infinite() => {
                f.write_str(if *x > 0.0 { "##Inf" } else { "##-Inf" })
            }
            Edn::Float(x) => write!(f, "{x:?}"),
            Edn::Str(s) => write!(f, "{s:?}"),
            Edn::Char(c) => match c {
                '\n' => f.write_str("\\newline"),
                ' ' => f.write_str("\\space"),
                '\t' => f.write_str("\\tab"),
                '\r' => f.write_str("\\return"),
                c => write!(f, "\\{c}"),
            },
            Edn::Keyword(k) => write!(f, ":{k}"),
            Edn::Symbol(s) => f.write_str(s),
            Edn::Vector(v) => seq(f, "[", v, "]"),
            Edn::List(v) => seq(f, "(", v, ")"),
            Edn::Set(v) => seq(f, "#{", v, "}"),
            Edn::Map(entries) => {
                f.write_str("{")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k} {v}")?;
                }
                f.write_str("}")
            }
            Edn::Tagged(tag, v) => write!(f, "#{tag} {v}"),
        }
    }
}

/// A syntax error in EDN text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct EdnError {
    /// 1-based line of the text where the problem was found.
    pub line: usize,
    pub message: String,
    /// The text ended in the middle of a value (what a truncated last line looks like).
    pub at_eof: bool,
}

/// Parses exactly one EDN value from `text` (surrounding whitespace and comments allowed).
pub fn parse_one(text: &str) -> Result<Edn, EdnError> {
    let mut p = Parser::new(text);
    let v = p.read()?;
    if p.peek_nonblank()?.is_some() {
        return Err(p.error(format!(
            "unexpected `{}` after the value",
            shorten(p.rest_of_line(), 30)
        )));
    }
    Ok(v)
}

/// Parses every top-level EDN value in `text`, each with the line it starts on.
pub fn parse_all(text: &str) -> Result<Vec<(Edn, usize)>, EdnError> {
    let mut p = Parser::new(text);
    let mut out = Vec::new();
    while let Some(form) = p.next_form() {
        out.push(form?);
    }
    Ok(out)
}

/// An EDN reader over text held in memory, tracking line numbers.
pub struct Parser<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
    depth: usize,
    /// The line the most recent top-level form started on.
    form_line: usize,
}

fn is_delimiter(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            ',' | '(' | ')' | '[' | ']' | '{' | '}' | '"' | ';' | '\\'
        )
}

fn is_symbol_char(c: char) -> bool {
    c.is_alphanumeric()
        || matches!(
            c,
            '.' | '*'
                | '+'
                | '!'
                | '-'
                | '_'
                | '?'
                | '$'
                | '%'
                | '&'
                | '='
                | '<'
                | '>'
                | '/'
                | '#'
                | ':'
                | '\''
        )
}

impl<'a> Parser<'a> {
    pub fn new(text: &'a str) -> Self {
        Parser {
            text,
            pos: 0,
            line: 1,
            depth: 0,
            form_line: 1,
        }
    }

    /// The current 1-based line.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The line the most recent top-level form (from [`Parser::next_form`]) started on.
    pub fn form_line(&self) -> usize {
        self.form_line
    }

    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn peek2(&self) -> Option<char> {
        let mut it = self.text[self.pos..].chars();
        it.next();
        it.next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn rest_of_line(&self) -> &'a str {
        let rest = &self.text[self.pos..];
        rest.split('\n').next().unwrap_or(rest).trim_end()
    }

    fn error(&self, message: impl Into<String>) -> EdnError {
        EdnError {
            line: self.line,
            message: message.into(),
            at_eof: false,
        }
    }

    fn eof_error(&self, message: impl Into<String>) -> EdnError {
        EdnError {
            line: self.line,
            message: message.into(),
            at_eof: true,
        }
    }

    /// Skips whitespace, commas, comments and `#_` discarded values; returns the next character.
    pub fn peek_nonblank(&mut self) -> Result<Option<char>, EdnError> {
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() || c == ',' => {
                    self.bump();
                }
                Some(';') => {
                    while let Some(c) = self.peek() {
                        if c == '\n' {
                            break;
                        }
                        self.bump();
                    }
                }
                Some('#') if self.peek2() == Some('_') => {
                    self.bump();
                    self.bump();
                    if self.peek_nonblank()?.is_none() {
                        return Err(self.eof_error("`#_` at the end of the input discards nothing"));
                    }
                    self.read()?;
                }
                other => return Ok(other),
            }
        }
    }

    /// The next top-level value and the line it starts on; `None` at the end of the text.
    pub fn next_form(&mut self) -> Option<Result<(Edn, usize), EdnError>> {
        match self.peek_nonblank() {
            Err(e) => Some(Err(e)),
            Ok(None) => None,
            Ok(Some(_)) => {
                self.form_line = self.line;
                Some(self.read().map(|v| (v, self.form_line)))
            }
        }
    }

    /// For a text that is one top-level vector or list: its elements, each with its line.
    /// Anything but comments after the closing bracket is an error.
    pub fn read_top_level_elements(&mut self) -> Result<Vec<(Edn, usize)>, EdnError> {
        let open_line = self.line;
        let close = match self.peek_nonblank()? {
            Some('[') => ']',
            Some('(') => ')',
            _ => return Err(self.error("expected a top-level `[` or `(`")),
        };
        self.bump();
        let mut out = Vec::new();
        loop {
            match self.peek_nonblank()? {
                None => {
                    return Err(EdnError {
                        line: open_line,
                        message: format!(
                            "the top-level collection opened on line {open_line} is never closed: \
                             the text ends before its `{close}`"
                        ),
                        at_eof: true,
                    })
                }
                Some(c) if c == close => {
                    self.bump();
                    break;
                }
                Some(_) => {
                    let line = self.line;
                    out.push((self.read()?, line));
                }
            }
        }
        if self.peek_nonblank()?.is_some() {
            return Err(self.error(format!(
                "unexpected `{}` after the top-level collection that ended here",
                shorten(self.rest_of_line(), 30)
            )));
        }
        Ok(out)
    }

    /// Reads one value (after any whitespace); errors at the end of the text.
    pub fn read(&mut self) -> Result<Edn, EdnError> {
        let Some(c) = self.peek_nonblank()? else {
            return Err(self.eof_error("unexpected end of input: expected a value"));
        };
        match c {
            '(' | '[' | '{' => {
                if self.depth >= MAX_DEPTH {
                    return Err(self.error(format!("nesting deeper than {MAX_DEPTH} levels")));
                }
                self.depth += 1;
                self.bump();
                let r = match c {
                    '(' => self.read_seq(')').map(Edn::List),
                    '[' => self.read_seq(']').map(Edn::Vector),
                    _ => self.read_map(),
                };
                self.depth -= 1;
                r
            }
            ')' | ']' | '}' => Err(self.error(format!("unexpected `{c}` with nothing open"))),
            '"' => {
                self.bump();
                self.read_string().map(Edn::Str)
            }
            '\\' => {
                self.bump();
                self.read_char()
            }
            ':' => {
                self.bump();
                self.read_keyword()
            }
            '#' => {
                self.bump();
                self.read_dispatch()
            }
            _ => self.read_atom(),
        }
    }

    fn read_seq(&mut self, close: char) -> Result<Vec<Edn>, EdnError> {
        let open_line = self.line;
        let mut items = Vec::new();
        loop {
            match self.peek_nonblank()? {
                None => {
                    return Err(EdnError {
                        line: open_line,
                        message: format!(
                            "what is opened on line {open_line} is never closed: the text ends \
                             before its `{close}`"
                        ),
                        at_eof: true,
                    })
                }
                Some(c) if c == close => {
                    self.bump();
                    return Ok(items);
                }
                Some(c @ (')' | ']' | '}')) => {
                    return Err(self.error(format!(
                        "`{c}` where the `{close}` closing what was opened on line {open_line} \
                         belongs"
                    )))
                }
                Some(_) => items.push(self.read()?),
            }
        }
    }

    fn read_map(&mut self) -> Result<Edn, EdnError> {
        let open_line = self.line;
        let items = self.read_seq('}')?;
        if items.len() % 2 != 0 {
            return Err(EdnError {
                line: open_line,
                message: format!(
                    "the map opened on line {open_line} has an odd number of forms ({}): a key \
                     without a value",
                    items.len()
                ),
                at_eof: false,
            });
        }
        let mut entries = Vec::with_capacity(items.len() / 2);
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            entries.push((k, v));
        }
        Ok(Edn::Map(entries))
    }

    fn read_hex4(&mut self) -> Result<u32, EdnError> {
        let mut n = 0u32;
        for _ in 0..4 {
            let Some(c) = self.bump() else {
                return Err(self.eof_error("the text ends inside a \\u escape"));
            };
            let d = c
                .to_digit(16)
                .ok_or_else(|| self.error(format!("`{c}` is not a hex digit in a \\u escape")))?;
            n = n * 16 + d;
        }
        Ok(n)
    }

    fn read_string(&mut self) -> Result<String, EdnError> {
        let open_line = self.line;
        let mut s = String::new();
        loop {
            let Some(c) = self.bump() else {
                return Err(EdnError {
                    line: open_line,
                    message: format!(
                        "the string opened on line {open_line} is never closed: the text ends \
                         inside it"
                    ),
                    at_eof: true,
                });
            };
            match c {
                '"' => return Ok(s),
                '\\' => {
                    let Some(e) = self.bump() else {
                        return Err(self.eof_error("the text ends inside a string escape"));
                    };
                    match e {
                        'n' => s.push('\n'),
                        't' => s.push('\t'),
                        'r' => s.push('\r'),
                        'b' => s.push('\u{8}'),
                        'f' => s.push('\u{c}'),
                        '"' => s.push('"'),
                        '\\' => s.push('\\'),
                        '\'' => s.push('\''),
                        'u' => {
                            let hi = self.read_hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                // Clojure strings are UTF-16: a non-BMP char is two escapes.
                                if self.peek() != Some('\\') || self.peek2() != Some('u') {
                                    return Err(self.error(format!(
                                        "\\u{hi:04X} is half a surrogate pair without its other half"
                                    )));
                                }
                                self.bump();
                                self.bump();
                                let lo = self.read_hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(self.error(format!(
                                        "\\u{hi:04X} must be followed by a low surrogate, not \
                                         \\u{lo:04X}"
                                    )));
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            let ch = char::from_u32(code).ok_or_else(|| {
                                self.error(format!("\\u{code:04X} is not a character"))
                            })?;
                            s.push(ch);
                        }
                        '0'..='7' => {
                            // Clojure's octal escape, \0 to \377.
                            let mut n = e.to_digit(8).expect("matched an octal digit");
                            for _ in 0..2 {
                                match self.peek().and_then(|c| c.to_digit(8)) {
                                    Some(d) if n * 8 + d <= 0o377 => {
                                        n = n * 8 + d;
                                        self.bump();
                                    }
                                    _ => break,
                                }
                            }
                            s.push(char::from_u32(n).expect("octal escapes stay below 256"));
                        }
                        other => {
                            return Err(self.error(format!("unknown string escape `\\{other}`")))
                        }
                    }
                }
                c => s.push(c),
            }
        }
    }

    /// The run of non-delimiter characters starting here.
    fn token(&mut self) -> &'a str {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if is_delimiter(c) {
                break;
            }
            self.bump();
        }
        &self.text[start..self.pos]
    }

    fn read_char(&mut self) -> Result<Edn, EdnError> {
        let Some(first) = self.bump() else {
            return Err(self.eof_error("the text ends after `\\`: expected a character"));
        };
        let rest = self.token();
        if rest.is_empty() {
            return Ok(Edn::Char(first));
        }
        let name = format!("{first}{rest}");
        let c = match name.as_str() {
            "newline" => '\n',
            "space" => ' ',
            "tab" => '\t',
            "return" => '\r',
            "backspace" => '\u{8}',
            "formfeed" => '\u{c}',
            _ if first == 'u' && rest.len() == 4 => u32::from_str_radix(rest, 16)
                .ok()
                .and_then(char::from_u32)
                .ok_or_else(|| self.error(format!("`\\{name}` is not a character")))?,
            _ if first == 'o' && (1..=3).contains(&rest.len()) => u32::from_str_radix(rest, 8)
                .ok()
                .filter(|n| *n <= 0o377)
                .and_then(char::from_u32)
                .ok_or_else(|| self.error(format!("`\\{name}` is not a character")))?,
            _ => return Err(self.error(format!("unknown character literal `\\{name}`"))),
        };
        Ok(Edn::Char(c))
    }

    fn read_keyword(&mut self) -> Result<Edn, EdnError> {
        let name = self.token();
        if name.is_empty() {
            return Err(self.error("a lone `:` is not a keyword"));
        }
        if name.starts_with(':') {
            return Err(self.error(format!(
                "`:{name}` is an auto-resolved Clojure keyword, which EDN does not have"
            )));
        }
        if let Some(bad) = name.chars().find(|c| !is_symbol_char(*c)) {
            return Err(self.error(format!("`{bad}` cannot appear in keyword `:{name}`")));
        }
        if name.ends_with('/') && name != "/" {
            return Err(self.error(format!("keyword `:{name}` has an empty name after `/`")));
        }
        Ok(Edn::Keyword(name.to_owned()))
    }

    fn read_dispatch(&mut self) -> Result<Edn, EdnError> {
        match self.peek() {
            None => Err(self.eof_error("the text ends after `#`")),
            Some('{') => {
                if self.depth >= MAX_DEPTH {
                    return Err(self.error(format!("nesting deeper than {MAX_DEPTH} levels")));
                }
                self.depth += 1;
                self.bump();
                let r = self.read_seq('}').map(Edn::Set);
                self.depth -= 1;
                r
            }
            Some('#') => {
                self.bump();
                match self.token() {
                    "Inf" => Ok(Edn::Float(f64::INFINITY)),
                    "-Inf" => Ok(Edn::Float(f64::NEG_INFINITY)),
                    "NaN" => Ok(Edn::Float(f64::NAN)),
                    other => Err(self.error(format!("unknown symbolic value `##{other}`"))),
                }
            }
            Some(c) if c.is_alphabetic() => {
                let tag = self.token();
                if let Some(bad) = tag.chars().find(|c| !is_symbol_char(*c)) {
                    return Err(self.error(format!("`{bad}` cannot appear in tag `#{tag}`")));
                }
                if self.peek_nonblank()?.is_none() {
                    return Err(self.eof_error(format!("the text ends after the tag `#{tag}`")));
                }
                if self.depth >= MAX_DEPTH {
                    return Err(self.error(format!("nesting deeper than {MAX_DEPTH} levels")));
                }
                self.depth += 1;
                let r = self.read();
                self.depth -= 1;
                Ok(Edn::Tagged(tag.to_owned(), Box::new(r?)))
            }
            Some(c) => Err(self.error(format!(
                "`#{c}` is not EDN (expected `#{{`, `#_`, `##Inf` or a tag like `#inst`)"
            ))),
        }
    }

    fn read_atom(&mut self) -> Result<Edn, EdnError> {
        let tok = self.token();
        if tok.is_empty() {
            // is_delimiter characters are all handled by read(); this is a safety net.
            let c = self.peek().unwrap_or(' ');
            return Err(self.error(format!("unexpected `{c}`")));
        }
        let mut chars = tok.chars();
        let first = chars.next().expect("token is not empty");
        let second = chars.next();
        let numeric = first.is_ascii_digit()
            || (matches!(first, '+' | '-') && second.is_some_and(|c| c.is_ascii_digit()));
        if numeric {
            return parse_number(tok).map_err(|m| self.error(m));
        }
        match tok {
            "nil" => return Ok(Edn::Nil),
            "true" => return Ok(Edn::Bool(true)),
            "false" => return Ok(Edn::Bool(false)),
            _ => {}
        }
        if let Some(bad) = tok.chars().find(|c| !is_symbol_char(*c)) {
            return Err(self.error(format!("`{bad}` cannot appear in symbol `{tok}`")));
        }
        Ok(Edn::Symbol(tok.to_owned()))
    }
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Parses a decimal integer with optional sign; beyond `i64` it becomes a [`Edn::BigInt`].
fn parse_integer(tok: &str, body: &str) -> Result<Edn, String> {
    let (neg, digits) = match body.as_bytes().first() {
        Some(b'-') => (true, &body[1..]),
        Some(b'+') => (false, &body[1..]),
        _ => (false, body),
    };
    if !is_digits(digits) {
        return Err(format!("`{tok}` is not a number"));
    }
    if digits.len() > 1 && digits.starts_with('0') {
        return Err(format!(
            "`{tok}`: integers with leading zeros (octal in Clojure) are not EDN"
        ));
    }
    let text = if neg {
        format!("-{digits}")
    } else {
        digits.to_owned()
    };
    Ok(match text.parse::<i64>() {
        Ok(i) => Edn::Int(i),
        Err(_) => Edn::BigInt(text),
    })
}

fn parse_number(tok: &str) -> Result<Edn, String> {
    if let Some(body) = tok.strip_suffix('N') {
        return parse_integer(tok, body);
    }
    if let Some((num, den)) = tok.split_once('/') {
        // Clojure ratios, 1/3: kept as the nearest float.
        let (Ok(Edn::Int(n)), Ok(Edn::Int(d))) = (parse_integer(tok, num), parse_integer(tok, den))
        else {
            return Err(format!("`{tok}` is not a number"));
        };
        if d == 0 {
            return Err(format!("`{tok}` divides by zero"));
        }
        return Ok(Edn::Float(n as f64 / d as f64));
    }
    let body = tok.strip_suffix('M').unwrap_or(tok);
    if !body.contains(['.', 'e', 'E']) {
        if tok.ends_with('M') {
            return parse_integer(tok, body).map(|v| match v {
                Edn::Int(i) => Edn::Float(i as f64),
                other => other,
            });
        }
        return parse_integer(tok, body);
    }
    // Grammar: [+-]? digits ('.' digits*)? ([eE] [+-]? digits)?
    let unsigned = body.strip_prefix(['+', '-']).unwrap_or(body);
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (unsigned, None),
    };
    let (int_part, frac_part) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let ok = is_digits(int_part)
        && frac_part.is_none_or(|f| f.is_empty() || is_digits(f))
        && exponent.is_none_or(|e| is_digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    if !ok {
        return Err(format!("`{tok}` is not a number"));
    }
    body.parse::<f64>()
        .map(Edn::Float)
        .map_err(|e| format!("`{tok}` is not a number: {e}"))
}

/// Converts an EDN *value* to JSON: nil→null, keywords→strings WITH their colon (`:a` becomes
/// ":a", so it stays distinct from the string "a"), symbols and characters→strings, vectors,
/// lists and sets→arrays, maps→objects with stringified keys (keyword keys keep their colon
/// too), tags→the tagged value, integers beyond i64 (and u64)→decimal strings, non-finite
/// floats→"##Inf" / "##-Inf" / "##NaN".
///
/// The op fields that are names rather than values (`:f`, `:type`, `:process`, `:key`, `:node`,
/// independent keys, and the `:error` field, see [`edn_names_to_json`]) drop the colon.
pub fn edn_to_json(v: &Edn) -> Value {
    to_json(v, true)
}

/// Like [`edn_to_json`], but keywords become their bare name (`:timed-out` → "timed-out"). Used
/// for the `error` field, which explains an outcome rather than carrying a value that is
/// compared: it stays readable, and `:precondition` still reads as "precondition" (a refused
/// compare-and-set).
pub fn edn_names_to_json(v: &Edn) -> Value {
    to_json(v, false)
}

fn to_json(v: &Edn, colons: bool) -> Value {
    match v {
        Edn::Nil => Value::Null,
        Edn::Bool(b) => Value::Bool(*b),
        Edn::Int(i) => Value::from(*i),
        Edn::BigInt(s) => match s.parse::<u64>() {
            Ok(u) => Value::from(u),
            Err(_) => Value::String(s.clone()),
        },
        Edn::Float(x) => match serde_json::Number::from_f64(*x) {
            Some(n) => Value::Number(n),
            None => Value::String(v.to_string()),
        },
        Edn::Str(s) => Value::String(s.clone()),
        Edn::Char(c) => Value::String(c.to_string()),
        Edn::Keyword(k) if colons => Value::String(format!(":{k}")),
        Edn::Keyword(k) | Edn::Symbol(k) => Value::String(k.clone()),
        Edn::Vector(items) | Edn::List(items) | Edn::Set(items) => {
            Value::Array(items.iter().map(|i| to_json(i, colons)).collect())
        }
        Edn::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| (map_key_string(k, colons), to_json(v, colons)))
                .collect(),
        ),
        Edn::Tagged(_, inner) => to_json(inner, colons),
    }
}

/// A txn's value: each `[:f key value]` micro-op becomes `["f", "key", value]`, with the
/// micro-op's name and key as bare names (shared/DESIGN.md section 2); anything else converts
/// as a value, for `txn::parse_mops` to judge.
fn txn_to_json(v: &Edn) -> Value {
    let (Edn::Vector(mops) | Edn::List(mops)) = v.untagged() else {
        return edn_to_json(v);
    };
    Value::Array(
        mops.iter()
            .map(|m| match m.untagged() {
                Edn::Vector(parts) | Edn::List(parts) if parts.len() == 3 => Value::Array(vec![
                    Value::String(key_string(&parts[0])),
                    Value::String(key_string(&parts[1])),
                    edn_to_json(&parts[2]),
                ]),
                other => edn_to_json(other),
            })
            .collect(),
    )
}

/// A map key inside a value: a keyword keeps its colon when `colons` (as in [`edn_to_json`]).
fn map_key_string(k: &Edn, colons: bool) -> String {
    match k.untagged() {
        Edn::Keyword(s) if colons => format!(":{s}"),
        Edn::Str(_)
        | Edn::Keyword(_)
        | Edn::Symbol(_)
        | Edn::BigInt(_)
        | Edn::Int(_)
        | Edn::Char(_) => key_string(k),
        other => to_json(other, colons).to_string(),
    }
}

/// An op's key or an independent key as a string: strings as they are, keywords without ':',
/// numbers in decimal, anything else as its JSON text.
fn key_string(k: &Edn) -> String {
    match k.untagged() {
        Edn::Str(s) | Edn::Keyword(s) | Edn::Symbol(s) | Edn::BigInt(s) => s.clone(),
        Edn::Int(i) => i.to_string(),
        Edn::Char(c) => c.to_string(),
        other => edn_to_json(other).to_string(),
    }
}

/// How to import an EDN history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EdnOptions {
    /// Detect `jepsen.independent` `[key value]` tuples and split them into key and value.
    pub detect_independent: bool,
}

impl Default for EdnOptions {
    fn default() -> Self {
        EdnOptions {
            detect_independent: true,
        }
    }
}

/// Reads a whole file as UTF-8 text. I/O errors are line 0 with the OS message. A file cut in
/// the middle of a multi-byte character at its very end keeps the valid prefix (the parser then
/// sees a truncated last line); any other invalid byte is an error naming its line.
pub(crate) fn read_text(path: &Path) -> Result<String, HistoryError> {
    let bytes = std::fs::read(path)
        .map_err(|e| HistoryError::new(path, 0, None, format!("cannot read the file: {e}")))?;
    text_from_bytes(bytes, path)
}

/// [`read_text`] for bytes already in memory; `file` names them in errors.
pub(crate) fn text_from_bytes(bytes: Vec<u8>, file: &Path) -> Result<String, HistoryError> {
    match String::from_utf8(bytes) {
        Ok(s) => Ok(s),
        Err(e) => {
            let utf8 = e.utf8_error();
            let mut bytes = e.into_bytes();
            if utf8.error_len().is_none() {
                bytes.truncate(utf8.valid_up_to());
                return Ok(String::from_utf8(bytes).expect("the prefix was checked to be UTF-8"));
            }
            let at = utf8.valid_up_to();
            let line = bytes[..at].iter().filter(|b| **b == b'\n').count() + 1;
            let what = if bytes.contains(&0) {
                "contains NUL bytes: this looks like a binary file, not a history"
            } else {
                "is not valid UTF-8 text"
            };
            Err(HistoryError::new(
                file,
                line,
                None,
                format!("the file {what} (first bad byte at offset {at})"),
            ))
        }
    }
}

/// Reads a Jepsen EDN history file, detecting `jepsen.independent` tuples.
pub fn read_edn(path: &Path) -> Result<History, HistoryError> {
    read_edn_with(path, EdnOptions::default())
}

/// Reads an EDN history file with explicit options.
pub fn read_edn_with(path: &Path, options: EdnOptions) -> Result<History, HistoryError> {
    let text = read_text(path)?;
    parse_edn_history(path, &text, options)
}

/// One op map, checked, before independent tuples are split.
struct RawOp {
    line: usize,
    index: Option<u64>,
    time: Option<u64>,
    process: Process,
    kind: EventType,
    f: String,
    key: Option<String>,
    value: Edn,
    node: Option<String>,
    error: Option<Value>,
}

/// Imports an EDN history from `text`; `file` names it in errors and warnings.
pub fn parse_edn_history(
    file: &Path,
    text: &str,
    options: EdnOptions,
) -> Result<History, HistoryError> {
    // A UTF-8 byte order mark is not EDN whitespace; some editors put one at the start.
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let mut history = History::new(file);
    let mut parser = Parser::new(text);
    let first = parser
        .peek_nonblank()
        .map_err(|e| HistoryError::new(file, e.line, None, e.message))?;
    let forms: Vec<(Edn, usize)> = match first {
        None => Vec::new(),
        Some('[') | Some('(') => parser
            .read_top_level_elements()
            .map_err(|e| HistoryError::new(file, e.line, None, e.message))?,
        Some(_) => {
            let last_line = text.split('\n').count();
            let mut forms = Vec::new();
            while let Some(form) = parser.next_form() {
                match form {
                    Ok(f) => forms.push(f),
                    Err(e)
                        if e.at_eof && !text.ends_with('\n') && parser.form_line() == last_line =>
                    {
                        history.warnings.push(Warning {
                            file: file.to_path_buf(),
                            line: last_line,
                            message: format!(
                                "line {last_line} is truncated (the run was probably killed while \
                                 writing it); skipped"
                            ),
                        });
                        break;
                    }
                    Err(e) => return Err(HistoryError::new(file, e.line, None, e.message)),
                }
            }
            forms
        }
    };
    if forms.is_empty() {
        let message = if history.warnings.is_empty() {
            "the file is empty: no events"
        } else {
            "the file is empty: no events (its only line is truncated)"
        };
        return Err(HistoryError::new(file, 0, None, message));
    }
    let mut ops = Vec::with_capacity(forms.len());
    for (form, line) in &forms {
        ops.push(raw_op(file, *line, form)?);
    }
    drop(forms);

    let independent = options.detect_independent && is_independent(&ops);
    let mut time_order = TimeOrder::default();
    for (pos, op) in ops.into_iter().enumerate() {
        let (key, value) = match (independent, op.process, op.value) {
            (true, Process::Client(_), Edn::Vector(mut kv)) if kv.len() == 2 => {
                let v = kv.pop().expect("length checked");
                let k = kv.pop().expect("length checked");
                (Some(key_string(&k)), edn_to_json(&v))
            }
            (_, _, v) if op.f == "txn" => (op.key, txn_to_json(&v)),
            (_, _, v) => (op.key, edn_to_json(&v)),
        };
        let time = op.time.unwrap_or(pos as u64);
        time_order.observe(file, time, op.line, &mut history.warnings);
        history.push(
            Event {
                index: op.index.unwrap_or(pos as u64),
                time,
                process: op.process,
                kind: op.kind,
                f: op.f,
                key,
                value,
                node: op.node,
                error: op.error,
                local: false,
                siblings: false,
                context: None,
            },
            op.line,
        );
    }
    time_order.finish(file, &mut history.warnings);
    Ok(history)
}

/// `jepsen.independent` wraps every client value as `[key value]`. Tell-tale signs that a
/// history is such, not merely one whose values happen to be pairs: every client event's value
/// is a 2-vector with a scalar first element, and some cas has a 2-vector inside the tuple or some
/// read is invoked with `[k nil]`. A history that already names keys is left alone.
fn is_independent(ops: &[RawOp]) -> bool {
    let mut client = ops
        .iter()
        .filter(|o| matches!(o.process, Process::Client(_)))
        .peekable();
    if client.peek().is_none() || ops.iter().any(|o| o.key.is_some()) {
        return false;
    }
    let mut telltale = false;
    for o in client {
        let Edn::Vector(v) = &o.value else {
            return false;
        };
        if v.len() != 2
            || !matches!(
                v[0].untagged(),
                Edn::Str(_) | Edn::Int(_) | Edn::BigInt(_) | Edn::Keyword(_)
            )
        {
            return false;
        }
        telltale |= (o.f == "cas" && matches!(&v[1], Edn::Vector(w) if w.len() == 2))
            || (o.f == "read" && o.kind == EventType::Invoke && v[1] == Edn::Nil);
    }
    telltale
}

fn raw_op(file: &Path, line: usize, form: &Edn) -> Result<RawOp, HistoryError> {
    let err = |field: Option<&str>, msg: String| HistoryError::new(file, line, field, msg);
    let Edn::Map(entries) = form.untagged() else {
        return Err(err(
            None,
            format!(
                "expected an op map like {{:type :invoke, :f :read, :process 0, :value nil}}, got \
                 {}",
                form.short()
            ),
        ));
    };
    const FIELDS: [&str; 9] = [
        "type", "f", "process", "value", "index", "time", "key", "error", "node",
    ];
    let mut found: [Option<&Edn>; 9] = [None; 9];
    for (k, v) in entries {
        if let Edn::Keyword(name) = k {
            if let Some(i) = FIELDS.iter().position(|f| f == name) {
                if found[i].is_some() {
                    return Err(err(Some(name), "appears twice in the op map".into()));
                }
                found[i] = Some(v);
            }
        }
    }
    let [type_, f, process, value, index, time, key, error, node] = found;
    let missing = |field: &str, example: &str| {
        err(
            Some(field),
            format!("missing: every op needs :{field} (for example :{field} {example})"),
        )
    };

    let type_ = type_.ok_or_else(|| missing("type", ":invoke"))?;
    let kind = match type_ {
        Edn::Keyword(k) if k == "invoke" => EventType::Invoke,
        Edn::Keyword(k) if k == "ok" => EventType::Ok,
        Edn::Keyword(k) if k == "fail" => EventType::Fail,
        Edn::Keyword(k) if k == "info" => EventType::Info,
        other => {
            return Err(err(
                Some("type"),
                format!(
                    "expected one of :invoke :ok :fail :info, got {}",
                    other.short()
                ),
            ))
        }
    };

    let f = match f.ok_or_else(|| missing("f", ":read"))? {
        Edn::Keyword(s) | Edn::Str(s) | Edn::Symbol(s) if !s.is_empty() => s.clone(),
        other => {
            return Err(err(
                Some("f"),
                format!(
                    "expected a keyword or a non-empty string, got {}",
                    other.short()
                ),
            ))
        }
    };

    let process = match process.ok_or_else(|| missing("process", "0"))? {
        Edn::Int(p) if *p >= 0 => Process::Client(*p as u64),
        Edn::Keyword(k) if k == "nemesis" => Process::Nemesis,
        other => {
            return Err(err(
                Some("process"),
                format!(
                    "expected a non-negative integer or :nemesis, got {}",
                    other.short()
                ),
            ))
        }
    };

    let non_negative = |field: &str, v: Option<&Edn>| -> Result<Option<u64>, HistoryError> {
        match v {
            None | Some(Edn::Nil) => Ok(None),
            Some(Edn::Int(i)) if *i >= 0 => Ok(Some(*i as u64)),
            Some(other) => Err(err(
                Some(field),
                format!("expected a non-negative integer, got {}", other.short()),
            )),
        }
    };
    let index = non_negative("index", index)?;
    let time = non_negative("time", time)?;

    let key = match key {
        None | Some(Edn::Nil) => None,
        Some(Edn::Str(s) | Edn::Keyword(s) | Edn::BigInt(s)) => Some(s.clone()),
        Some(Edn::Int(i)) => Some(i.to_string()),
        Some(other) => {
            return Err(err(
                Some("key"),
                format!("expected a string or an integer, got {}", other.short()),
            ))
        }
    };

    let node = match node {
        None | Some(Edn::Nil) => None,
        Some(Edn::Str(s) | Edn::Keyword(s) | Edn::Symbol(s)) => Some(s.clone()),
        Some(other) => {
            return Err(err(
                Some("node"),
                format!("expected a string, got {}", other.short()),
            ))
        }
    };

    Ok(RawOp {
        line,
        index,
        time,
        process,
        kind,
        f,
        key,
        value: value.cloned().unwrap_or(Edn::Nil),
        node,
        error: match error {
            None | Some(Edn::Nil) => None,
            Some(e) => Some(edn_names_to_json(e)),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(s: &str) -> Edn {
        parse_one(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn kw(s: &str) -> Edn {
        Edn::Keyword(s.into())
    }

    #[test]
    fn scalars() {
        assert_eq!(one("nil"), Edn::Nil);
        assert_eq!(one("true"), Edn::Bool(true));
        assert_eq!(one("false"), Edn::Bool(false));
        assert_eq!(one("42"), Edn::Int(42));
        assert_eq!(one("-7"), Edn::Int(-7));
        assert_eq!(one("+3"), Edn::Int(3));
        assert_eq!(one("0"), Edn::Int(0));
        assert_eq!(one("5N"), Edn::Int(5));
        assert_eq!(one("-9223372036854775808"), Edn::Int(i64::MIN));
        assert_eq!(
            one("12345678901234567890123N"),
            Edn::BigInt("12345678901234567890123".into())
        );
        assert_eq!(
            one("-99999999999999999999"),
            Edn::BigInt("-99999999999999999999".into())
        );
        assert_eq!(one("1.5"), Edn::Float(1.5));
        assert_eq!(one("-2e3"), Edn::Float(-2000.0));
        assert_eq!(one("2.5E-1"), Edn::Float(0.25));
        assert_eq!(one("1.25M"), Edn::Float(1.25));
        assert_eq!(one("1/4"), Edn::Float(0.25));
        assert_eq!(one("##Inf"), Edn::Float(f64::INFINITY));
        assert!(matches!(one("##NaN"), Edn::Float(x) if x.is_nan()));
        assert_eq!(one("foo"), Edn::Symbol("foo".into()));
        assert_eq!(one("clojure.core/+"), Edn::Symbol("clojure.core/+".into()));
        assert_eq!(one("-"), Edn::Symbol("-".into()));
        assert_eq!(one(":foo"), kw("foo"));
        assert_eq!(one(":foo/bar"), kw("foo/bar"));
        assert_eq!(one(":timed-out"), kw("timed-out"));
    }

    #[test]
    fn strings_and_characters() {
        assert_eq!(one(r#""a\"b\\c\n\t""#), Edn::Str("a\"b\\c\n\t".into()));
        assert_eq!(one(r#""\u0041\u00e9""#), Edn::Str("Aé".into()));
        assert_eq!(one(r#""\uD83D\uDE00""#), Edn::Str("😀".into()));
        assert_eq!(one("\"two\nlines\""), Edn::Str("two\nlines".into()));
        assert_eq!(one("\"ünï\""), Edn::Str("ünï".into()));
        assert_eq!(one(r"\a"), Edn::Char('a'));
        assert_eq!(one(r"\newline"), Edn::Char('\n'));
        assert_eq!(one(r"\space"), Edn::Char(' '));
        assert_eq!(one(r"\u0041"), Edn::Char('A'));
        assert_eq!(one(r"\("), Edn::Char('('));
        assert_eq!(
            one(r"[\a \b]"),
            Edn::Vector(vec![Edn::Char('a'), Edn::Char('b')])
        );
    }

    #[test]
    fn collections_comments_commas_discards_and_tags() {
        let v = one("[1, 2 ,3] ; trailing comment");
        assert_eq!(v, Edn::Vector(vec![Edn::Int(1), Edn::Int(2), Edn::Int(3)]));
        assert_eq!(
            one("(a :b)"),
            Edn::List(vec![Edn::Symbol("a".into()), kw("b")])
        );
        assert_eq!(one("#{1 2}"), Edn::Set(vec![Edn::Int(1), Edn::Int(2)]));
        assert_eq!(
            one("{:a 1, \"b\" [nil]}"),
            Edn::Map(vec![
                (kw("a"), Edn::Int(1)),
                (Edn::Str("b".into()), Edn::Vector(vec![Edn::Nil]))
            ])
        );
        assert_eq!(
            one("[1 #_ 2 3]"),
            Edn::Vector(vec![Edn::Int(1), Edn::Int(3)])
        );
        assert_eq!(one("[#_ #_ 1 2 3]"), Edn::Vector(vec![Edn::Int(3)]));
        assert_eq!(one("#_ [discarded] :kept"), kw("kept"));
        assert_eq!(
            one(r#"#inst "2024-01-01T00:00:00Z""#),
            Edn::Tagged(
                "inst".into(),
                Box::new(Edn::Str("2024-01-01T00:00:00Z".into()))
            )
        );
        let rec = one("#jepsen.history.Op{:type :ok}");
        assert_eq!(rec.get("type"), Some(&kw("ok")));
        assert_eq!(one("[]"), Edn::Vector(vec![]));
        assert_eq!(one("{}"), Edn::Map(vec![]));
    }

    #[test]
    fn parse_all_reports_start_lines() {
        let forms = parse_all("{:a 1}\n; comment\n\n[1\n 2]\n:x").unwrap();
        let lines: Vec<usize> = forms.iter().map(|(_, l)| *l).collect();
        assert_eq!(lines, vec![1, 4, 6]);
    }

    #[test]
    fn errors_carry_line_numbers() {
        let e = parse_all("[1 2]\n[3\n 4").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.at_eof);
        assert!(
            e.message.contains("opened on line 2 is never closed"),
            "{e}"
        );
        let e = parse_all("\n\"abc\n\n").unwrap_err();
        assert_eq!((e.line, e.at_eof), (2, true));
        let e = parse_all("{:a [1 2}\n").unwrap_err();
        assert!(e.message.contains("`}` where the `]`"), "{e}");

        let e = parse_all("{:a 1}\n{:a 1 :b}").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("odd number"), "{e}");
        assert!(!e.at_eof);

        let cases = [
            ("\n\n)", 3, "unexpected `)`"),
            ("\"a\\qb\"", 1, "unknown string escape"),
            ("\n::foo", 2, "auto-resolved"),
            ("[1 :]", 1, "lone `:`"),
            ("\\nope", 1, "unknown character literal"),
            ("0x1F", 1, "not a number"),
            ("007", 1, "leading zeros"),
            ("1.2.3", 1, "not a number"),
            ("#\"re\"", 1, "not EDN"),
            ("##Foo", 1, "unknown symbolic value"),
            ("[1 2] 3", 1, "after the value"),
            ("", 1, "end of input"),
            ("[1 #_]", 1, "unexpected `]`"),
            ("fo@o", 1, "cannot appear in symbol"),
        ];
        for (text, line, msg) in cases {
            let e = parse_one(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.message.contains(msg), "{text:?}: {e}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let text = "[".repeat(100_000);
        let e = parse_one(&text).unwrap_err();
        assert!(e.message.contains("nesting deeper"), "{e}");
        let ok = format!("{}{}", "[".repeat(100), "]".repeat(100));
        parse_one(&ok).unwrap();
    }

    #[test]
    fn edn_to_json_maps_every_kind() {
        let v = one(
            r#"{:a nil, :b [1 (2) #{3}], 4 :kw, "s" {:n/x 1.5}, :big 99999999999999999999999N,
                :u 18446744073709551615, :c \z, :t #inst "2020", :inf ##Inf}"#,
        );
        assert_eq!(
            edn_to_json(&v),
            json!({":a": null, ":b": [1, [2], [3]], "4": ":kw", "s": {":n/x": 1.5},
                   ":big": "99999999999999999999999", ":u": 18446744073709551615u64, ":c": "z",
                   ":t": "2020", ":inf": "##Inf"})
        );
    }

    #[test]
    fn a_keyword_value_stays_distinct_from_the_string_of_its_name() {
        assert_eq!(edn_to_json(&kw("a")), json!(":a"));
        assert_ne!(edn_to_json(&kw("a")), edn_to_json(&Edn::Str("a".into())));
        assert_ne!(edn_to_json(&one("{:a 1}")), edn_to_json(&one("{\"a\" 1}")));
        // Names (the error field) drop the colon.
        assert_eq!(
            edn_names_to_json(&one("[:not-found \"k\"]")),
            json!(["not-found", "k"])
        );
        let text = "\
{:type :invoke, :f :write, :process 0, :value :a}
{:type :ok, :f :write, :process 0, :value :a}
{:type :invoke, :f :read, :process 1, :value nil}
{:type :ok, :f :read, :process 1, :value \"a\"}
{:type :invoke, :f :cas, :process 2, :value [:a :b]}
{:type :fail, :f :cas, :process 2, :value [:a :b], :error :precondition}
{:type :invoke, :f :read, :process 3, :value nil}
{:type :info, :f :read, :process 3, :value nil, :error :timed-out}
";
        let h = import(text).unwrap();
        assert_eq!(h.events[0].value, json!(":a"));
        assert_eq!(h.events[3].value, json!("a"));
        assert_ne!(h.events[0].value, h.events[3].value);
        assert_eq!(h.events[4].value, json!([":a", ":b"]));
        // f, type and process are names, as before; so are errors.
        assert_eq!(h.events[4].f, "cas");
        assert_eq!(h.events[5].error, Some(json!("precondition")));
        assert_eq!(h.events[7].error, Some(json!("timed-out")));
    }

    #[test]
    fn a_byte_order_mark_at_the_start_is_dropped() {
        let h = import("\u{FEFF}{:type :invoke, :f :read, :process 0, :value nil}\n").unwrap();
        assert_eq!(h.events.len(), 1);
        let h = import("\u{FEFF}[{:type :invoke, :f :read, :process 0, :value nil}]").unwrap();
        assert_eq!(h.events.len(), 1);
    }

    fn import(text: &str) -> Result<History, HistoryError> {
        parse_edn_history(Path::new("h.edn"), text, EdnOptions::default())
    }

    #[test]
    fn imports_one_map_per_line() {
        let text = "\
{:type :invoke, :f :write, :process 0, :value 3, :time 10, :index 0}
{:type :ok, :f :write, :process 0, :value 3, :time 20, :index 1, :node \"n1\"}
{:type :info, :f :start-partition, :process :nemesis, :value {:n1 [:n2]}, :time 30, :index 2}
{:type :invoke, :f :read, :process 1, :value nil, :time 40, :index 3, :extra \"ignored\"}
{:type :fail, :f \"read\", :process 1, :value nil, :error [:not-found \"k\"], :time 50, :index 4}
";
        let h = import(text).unwrap();
        assert_eq!(h.events.len(), 5);
        assert_eq!(h.lines, vec![1, 2, 3, 4, 5]);
        assert_eq!(h.events[1].node.as_deref(), Some("n1"));
        assert_eq!(h.events[2].process, Process::Nemesis);
        assert_eq!(h.events[2].value, json!({":n1": [":n2"]}));
        assert_eq!(h.events[4].f, "read");
        assert_eq!(h.events[4].error, Some(json!(["not-found", "k"])));
        assert_eq!(h.events[4].time, 50);
        assert!(h.events.iter().all(|e| e.key.is_none()));
        let p = crate::pair(&h).unwrap();
        assert_eq!(p.ops.len(), 2);
    }

    #[test]
    fn imports_a_top_level_vector_with_element_lines() {
        let text = "; a history\n[{:type :invoke, :f :read, :process 0, :value nil}\n\n {:type :ok,\n  :f :read, :process 0, :value 5}]\n";
        let h = import(text).unwrap();
        assert_eq!(h.lines, vec![2, 4]);
        // No :index or :time: both default to the position.
        assert_eq!((h.events[1].index, h.events[1].time), (1, 1));
        assert_eq!(h.events[1].value, json!(5));

        let e = import("[{:type :invoke, :f :read, :process 0}] {:x 1}").unwrap_err();
        assert!(e.message.contains("after the top-level collection"), "{e}");
    }

    #[test]
    fn imports_tagged_op_records() {
        let text = "#jepsen.history.Op{:index 0, :time 5, :type :invoke, :process 0, :f :txn, :value [[:r :x nil]]}\n";
        let h = import(text).unwrap();
        assert_eq!(h.events[0].f, "txn");
        assert_eq!(h.events[0].value, json!([["r", "x", null]]));
    }

    #[test]
    fn txn_micro_ops_import_as_bare_names() {
        let text = "{:type :invoke, :process 0, :f :txn, :value [[:append 1 2] [:r :y nil] [:w \"z\" 3]]}\n\
                    {:type :ok, :process 0, :f :txn, :value [[:append 1 2] [:r :y [1 2]] [:w \"z\" 3]]}\n";
        let h = import(text).unwrap();
        assert_eq!(
            h.events[1].value,
            json!([["append", "1", 2], ["r", "y", [1, 2]], ["w", "z", 3]])
        );
        let p = crate::pair(&h).unwrap();
        let t = crate::txn::txns(&h, &p).unwrap();
        assert_eq!(t[0].mops[1].to_string(), "r(y)=[1 2]");
    }

    #[test]
    fn missing_type_names_line_and_field() {
        let text = "{:type :invoke, :f :read, :process 0}\n{:f :read, :process 0}\n";
        let e = import(text).unwrap_err();
        assert_eq!((e.line, e.field.as_deref()), (2, Some("type")));
        assert!(e.message.contains("missing"), "{e}");
    }

    #[test]
    fn bad_fields_are_named() {
        let e = import("{:type :foo, :f :read, :process 0}").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("type"));
        assert_eq!(
            e.message,
            "expected one of :invoke :ok :fail :info, got :foo"
        );
        assert_eq!(
            e.to_string(),
            "h.edn:1: field `type`: expected one of :invoke :ok :fail :info, got :foo"
        );
        let e = import("{:type :ok, :f :read, :process -1}").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("process"));
        let e = import("{:type :ok, :f :read, :process \"p\"}").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("process"));
        let e = import("{:type :ok, :process 1}").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("f"));
        let e = import("{:type :ok, :f :read}").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("process"));
        let e = import("{:type :ok, :f :r, :process 1, :time -3}").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("time"));
        let e = import("{:type :ok, :f :r, :process 1, :key [1]}").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("key"));
        let e = import("{:type :ok, :type :ok, :f :r, :process 1}").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("type"));
        let e = import("[1 2]").unwrap_err();
        assert_eq!((e.line, e.field.as_deref()), (1, None));
        assert!(e.message.contains("expected an op map"), "{e}");
    }

    #[test]
    fn garbage_line_in_the_middle_is_an_error() {
        let text = "{:type :invoke, :f :read, :process 0}\n{:type :ok, oops\n{:type :ok, :f :read, :process 0}\n";
        let e = import(text).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("never closed"), "{e}");
        let text = "{:type :invoke, :f :read, :process 0}\ngarbage !!\n{:type :ok, :f :read, :process 0}\n";
        let e = import(text).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("expected an op map"), "{e}");
    }

    #[test]
    fn truncated_last_line_is_a_warning() {
        let text = "{:type :invoke, :f :read, :process 0}\n{:type :ok, :f :read, :process 0, :val";
        let h = import(text).unwrap();
        assert_eq!(h.events.len(), 1);
        assert_eq!(h.warnings.len(), 1);
        assert_eq!(h.warnings[0].line, 2);
        assert!(h.warnings[0].message.contains("truncated"));
        // A truncated top-level vector is a broken file, not a killed append.
        let e = import("[{:type :invoke, :f :read, :process 0}\n{:type :ok").unwrap_err();
        assert!(e.message.contains("never closed"), "{e}");
    }

    #[test]
    fn empty_file_is_an_error() {
        let e = import(" ; nothing here\n\n").unwrap_err();
        assert_eq!(e.line, 0);
        assert!(e.message.contains("is empty: no events"), "{e}");
    }

    const INDEPENDENT: &str = "\
{:type :invoke, :f :read, :process 0, :value [3 nil]}
{:type :invoke, :f :cas, :process 1, :value [:k7 [1 2]]}
{:type :ok, :f :read, :process 0, :value [3 4]}
{:type :info, :f :start, :process :nemesis, :value nil}
{:type :fail, :f :cas, :process 1, :value [:k7 [1 2]]}
{:type :invoke, :f :write, :process 2, :value [\"s\" 9]}
{:type :ok, :f :write, :process 2, :value [\"s\" 9]}
";

    #[test]
    fn independent_tuples_are_split_into_keys() {
        let h = import(INDEPENDENT).unwrap();
        let keys: Vec<Option<&str>> = h.events.iter().map(|e| e.key.as_deref()).collect();
        assert_eq!(
            keys,
            vec![
                Some("3"),
                Some("k7"),
                Some("3"),
                None,
                Some("k7"),
                Some("s"),
                Some("s")
            ]
        );
        assert_eq!(h.events[0].value, json!(null));
        assert_eq!(h.events[1].value, json!([1, 2]));
        assert_eq!(h.events[2].value, json!(4));
        assert_eq!(h.events[5].value, json!(9));
        crate::pair(&h).unwrap();
    }

    #[test]
    fn independent_detection_needs_a_telltale_and_can_be_off() {
        let off = parse_edn_history(
            Path::new("h.edn"),
            INDEPENDENT,
            EdnOptions {
                detect_independent: false,
            },
        )
        .unwrap();
        assert!(off.events.iter().all(|e| e.key.is_none()));
        assert_eq!(off.events[0].value, json!([3, null]));
        // Every value a pair, but no cas-in-a-tuple and no [k nil] read: a register of pairs.
        let pairs = "{:type :invoke, :f :write, :process 0, :value [1 2]}\n{:type :ok, :f :write, :process 0, :value [1 2]}\n";
        let h = import(pairs).unwrap();
        assert!(h.events.iter().all(|e| e.key.is_none()));
        assert_eq!(h.events[0].value, json!([1, 2]));
        // One client value that is not a pair: not independent.
        let mixed = format!("{INDEPENDENT}{{:type :invoke, :f :read, :process 3, :value nil}}\n");
        let h = import(&mixed).unwrap();
        assert!(h.events.iter().all(|e| e.key.is_none()));
    }
}
