//! Colours shared by the drawings, the charts and the page's legends, so a fault or an
//! operation has one colour everywhere (a colour-blind-safe palette, Paul Tol's "bright").

/// The colour of a fault kind.
pub fn fault_rgb(kind: &str) -> (u8, u8, u8) {
    match kind {
        "partition" => (238, 119, 51),
        "pause" => (170, 51, 119),
        "kill" => (204, 51, 17),
        "clock" => (0, 153, 136),
        "loss" => (51, 187, 238),
        _ => (120, 120, 120),
    }
}

/// The colour of the `i`th operation name (most frequent first).
pub fn op_rgb(i: usize) -> (u8, u8, u8) {
    const OPS: [(u8, u8, u8); 7] = [
        (0, 119, 187),
        (34, 136, 51),
        (102, 51, 153),
        (187, 85, 102),
        (204, 187, 68),
        (68, 68, 68),
        (153, 153, 153),
    ];
    OPS[i.min(OPS.len() - 1)]
}

/// `rgb(r,g,b)` for SVG attributes and CSS.
pub fn css((r, g, b): (u8, u8, u8)) -> String {
    format!("rgb({r},{g},{b})")
}

/// Roles of operations in a witness drawing.
pub const WINDOW: &str = "rgb(0,119,187)";
pub const STUCK: &str = "rgb(204,51,17)";
pub const CANDIDATE: &str = "rgb(238,119,51)";
pub const PREFIX: &str = "rgb(187,187,187)";
pub const ANOMALY: &str = "rgb(204,51,17)";
pub const SEEN: &str = "rgb(34,136,51)";
