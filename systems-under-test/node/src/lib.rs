//! What every bundled server shares (DESIGN section 3).
