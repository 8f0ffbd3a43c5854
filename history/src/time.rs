//! Wall-clock dates in UTC without a date library: run folders are named by them and reports
//! say when they were rendered. The history's own times are monotonic nanoseconds since the
//! run began (shared/DESIGN.md section 2); this is only for names and labels.

/// A second of UTC, split into calendar fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UtcTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl UtcTime {
    /// Now, from the system clock (the epoch itself if the clock is before it).
    pub fn now() -> UtcTime {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        UtcTime::from_unix_secs(secs)
    }

    /// The UTC calendar second `secs` after 1970-01-01T00:00:00Z.
    pub fn from_unix_secs(secs: u64) -> UtcTime {
        let (days, rem) = (secs / 86_400, secs % 86_400);
        // Civil date from days since 1970-01-01 (Howard Hinnant, "chrono-Compatible Low-Level
        // Date Algorithms", civil_from_days).
        let z = days as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        UtcTime {
            year: y,
            month: m as u32,
            day: d as u32,
            hour: (rem / 3600) as u32,
            minute: (rem / 60 % 60) as u32,
            second: (rem % 60) as u32,
        }
    }

    /// ISO 8601 basic format, `20261126T172558Z`: sorts by time and is a safe folder name.
    pub fn compact(&self) -> String {
        format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// For people: `2026-11-26 17:25:58 UTC`.
    pub fn readable(&self) -> String {
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(UtcTime::from_unix_secs(0).compact(), "19700101T000000Z");
        // 2000-02-29, a leap day of a century divisible by 400.
        assert_eq!(
            UtcTime::from_unix_secs(951_782_400 + 3_661).readable(),
            "2000-02-29 01:01:01 UTC"
        );
        assert_eq!(
            UtcTime::from_unix_secs(1_795_713_958).compact(),
            "20261126T172558Z"
        );
    }
}
