//! Small text helpers: every string that comes from a run (keys, values, node names, errors,
//! checker sentences that quote them) passes through [`clip`] before it reaches the page, so a
//! huge or strange value cannot swamp or garble it. Escaping is not done here: the template
//! engine escapes HTML, the SVG libraries escape their text nodes.

use std::fmt::Write as _;

/// Longest label drawn inside an SVG (a bar's action, a node name).
pub const LABEL_CHARS: usize = 40;
/// Longest string shown in a table cell or a heading.
pub const CELL_CHARS: usize = 200;
/// Longest sentence shown.
pub const SENTENCE_CHARS: usize = 2_000;

/// `s` with control characters made visible (`\u{1b}`) and cut to `max` characters, saying how
/// much was left out.
pub fn clip(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max + 32));
    let mut chars = s.chars();
    for (shown, c) in chars.by_ref().enumerate() {
        if shown >= max {
            let rest = 1 + chars.count();
            let _ = write!(out, "… ({rest} more characters)");
            return out;
        }
        match c {
            '\n' | '\t' => out.push(' '),
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// A short label for a drawing: like [`clip`], but cut with a bare "…" (the full text is in
/// the drawing's tooltip).
pub fn label(s: &str, max: usize) -> String {
    let clipped = clip(s, max);
    match clipped.find("… (") {
        Some(i) if s.chars().count() > max => format!("{}…", &clipped[..i]),
        _ => clipped,
    }
}

/// "20261126T172544Z" (run.json's `started_at`) as "2026-11-26 17:25:44"; anything else as is.
pub fn stamp(s: &str) -> String {
    let b = s.as_bytes();
    if b.len() == 16
        && b[8] == b'T'
        && b[15] == b'Z'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit)
    {
        format!(
            "{}-{}-{} {}:{}:{}",
            &s[0..4],
            &s[4..6],
            &s[6..8],
            &s[9..11],
            &s[11..13],
            &s[13..15]
        )
    } else {
        s.to_string()
    }
}

/// Seconds with millisecond precision: "12.345 s".
pub fn secs(ns: u64) -> String {
    format!("{:.3} s", ns as f64 / 1e9)
}

/// A duration in the unit that suits it: "850 µs", "12.3 ms", "4.21 s".
pub fn duration(ns: u64) -> String {
    if ns < 1_000_000 {
        format!("{} µs", ns / 1_000)
    } else if ns < 1_000_000_000 {
        format!("{:.1} ms", ns as f64 / 1e6)
    } else {
        format!("{:.2} s", ns as f64 / 1e9)
    }
}

/// "1 operation", "3 operations".
pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!(
        "{} {}",
        thousands(n as u64),
        if n == 1 { one } else { many }
    )
}

/// 100000 → "100,000".
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A tick step for an axis spanning `span` units with about `ticks` ticks: 1, 2 or 5 times a
/// power of ten.
pub fn nice_step(span: f64, ticks: f64) -> f64 {
    if span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let raw = span / ticks.max(1.0);
    let pow = 10f64.powf(raw.log10().floor());
    let m = raw / pow;
    let nice = if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * pow
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_cuts_and_shows_control_characters() {
        assert_eq!(clip("abc", 10), "abc");
        assert_eq!(clip("abcdef", 3), "abc… (3 more characters)");
        assert_eq!(clip("a\u{1b}b\u{0}", 10), "a\\u{1b}b\\u{0}");
        assert_eq!(clip("a\nb", 10), "a b");
        assert_eq!(label("abcdef", 3), "abc…");
        assert_eq!(label("abc", 3), "abc");
        assert_eq!(stamp("20261126T172544Z"), "2026-11-26 17:25:44");
        assert_eq!(stamp("yesterday"), "yesterday");
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(100_000), "100,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(duration(850_000), "850 µs");
        assert_eq!(duration(12_340_000), "12.3 ms");
        assert_eq!(plural(1, "op", "ops"), "1 op");
        assert_eq!(nice_step(60.0, 6.0), 10.0);
        assert_eq!(nice_step(0.7, 7.0), 0.1);
    }
}
