//! Nemesis events as a typed value: the injector writes them, the report reads them, and only
//! this module knows how they look on disk.
//!
//! On disk (shared/DESIGN.md section 2) a nemesis event is an `info` event of process
//! `"nemesis"` whose `f` is `start-<fault>` or `stop-<fault>` (`start-partition`,
//! `stop-kill`, `start-clock-strobe`) and whose `value` says what was hit: a grudge for a
//! partition, a list of nodes for pause and kill, `{"nodes", "offset_ms"}` for a clock,
//! `{"percent"}`, `{"kbit"}`, `{"mean_ms", "jitter_ms"}` for loss, slow and delay. Jepsen's own
//! histories also use a bare `start` and `stop`, read here as [`FaultKind::Unnamed`].

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use crate::{Event, EventType, Process};

/// Whether a fault begins or ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    Start,
    Stop,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Start => "start",
            Phase::Stop => "stop",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which fault an event starts or stops.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FaultKind {
    Partition,
    Pause,
    Kill,
    /// A clock moved once (harness writes this one for a bump).
    Clock,
    /// A clock flipping back and forth.
    ClockStrobe,
    /// A clock bump, as other tools name it.
    ClockBump,
    Loss,
    Slow,
    Delay,
    /// A disk fault: power loss (unsynced writes lost, maybe torn), failing or slow fsync.
    Disk,
    /// Jepsen's bare `start` / `stop`.
    Unnamed,
    /// Any other `start-<name>` / `stop-<name>` (imported histories).
    Other(String),
}

impl FaultKind {
    /// The name after `start-` / `stop-`; empty for [`FaultKind::Unnamed`].
    pub fn name(&self) -> &str {
        match self {
            FaultKind::Partition => "partition",
            FaultKind::Pause => "pause",
            FaultKind::Kill => "kill",
            FaultKind::Clock => "clock",
            FaultKind::ClockStrobe => "clock-strobe",
            FaultKind::ClockBump => "clock-bump",
            FaultKind::Loss => "loss",
            FaultKind::Slow => "slow",
            FaultKind::Delay => "delay",
            FaultKind::Disk => "disk",
            FaultKind::Unnamed => "",
            FaultKind::Other(name) => name,
        }
    }

    /// The fault a person would name: every clock fault is `clock`, a bare start is `fault`.
    /// A stop of one kind closes an interval of another kind of the same family
    /// (`stop-clock` ends a `start-clock-strobe`).
    pub fn family(&self) -> &str {
        match self {
            FaultKind::Clock | FaultKind::ClockStrobe | FaultKind::ClockBump => "clock",
            FaultKind::Unnamed => "fault",
            other => other.name(),
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultKind::Unnamed => f.write_str("fault"),
            other => f.write_str(other.name()),
        }
    }
}

impl FromStr for FaultKind {
    type Err = std::convert::Infallible;

    /// Every name is a kind: the ones harness writes get their own variant, the rest
    /// [`FaultKind::Other`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "partition" => FaultKind::Partition,
            "pause" => FaultKind::Pause,
            "kill" => FaultKind::Kill,
            "clock" => FaultKind::Clock,
            "clock-strobe" => FaultKind::ClockStrobe,
            "clock-bump" => FaultKind::ClockBump,
            "loss" => FaultKind::Loss,
            "slow" => FaultKind::Slow,
            "delay" => FaultKind::Delay,
            "disk" => FaultKind::Disk,
            "" => FaultKind::Unnamed,
            other => FaultKind::Other(other.to_string()),
        })
    }
}

/// One nemesis event of a history.
#[derive(Clone, Debug, PartialEq)]
pub struct NemesisEvent {
    pub phase: Phase,
    pub kind: FaultKind,
    /// What the fault hit (see the module's documentation); null when a stop names nothing.
    pub value: Value,
}

impl NemesisEvent {
    pub fn start(kind: FaultKind, value: Value) -> NemesisEvent {
        NemesisEvent {
            phase: Phase::Start,
            kind,
            value,
        }
    }

    pub fn stop(kind: FaultKind, value: Value) -> NemesisEvent {
        NemesisEvent {
            phase: Phase::Stop,
            kind,
            value,
        }
    }

    /// The event's `f` on disk: `start-partition`, `stop-kill`, or a bare `start`.
    pub fn f(&self) -> String {
        match self.kind {
            FaultKind::Unnamed => self.phase.name().to_string(),
            ref kind => format!("{}-{}", self.phase, kind.name()),
        }
    }

    /// The phase and kind an `f` names; None when it is neither a start nor a stop.
    pub fn parse_f(f: &str) -> Option<(Phase, FaultKind)> {
        let (phase, rest) = if let Some(r) = f.strip_prefix("start-") {
            (Phase::Start, r)
        } else if let Some(r) = f.strip_prefix("stop-") {
            (Phase::Stop, r)
        } else if f == "start" {
            (Phase::Start, "")
        } else if f == "stop" {
            (Phase::Stop, "")
        } else {
            return None;
        };
        let Ok(kind) = rest.parse::<FaultKind>();
        Some((phase, kind))
    }

    /// The nemesis event `e` records; None for a client's event, an invocation, or a nemesis
    /// event that neither starts nor stops a fault.
    pub fn from_event(e: &Event) -> Option<NemesisEvent> {
        if e.process != Process::Nemesis || e.kind == EventType::Invoke {
            return None;
        }
        let (phase, kind) = NemesisEvent::parse_f(&e.f)?;
        Some(NemesisEvent {
            phase,
            kind,
            value: e.value.clone(),
        })
    }

    /// The history event for this, at `index` and `time`: an `info`, since a fault's effect is
    /// never certain.
    pub fn to_event(&self, index: u64, time: u64) -> Event {
        Event {
            index,
            time,
            process: Process::Nemesis,
            kind: EventType::Info,
            f: self.f(),
            key: None,
            value: self.value.clone(),
            node: None,
            error: None,
            local: false,
            siblings: false,
            context: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_round_trip_through_their_f() {
        for (f, phase, kind) in [
            ("start-partition", Phase::Start, FaultKind::Partition),
            ("stop-kill", Phase::Stop, FaultKind::Kill),
            ("start-clock-strobe", Phase::Start, FaultKind::ClockStrobe),
            ("stop", Phase::Stop, FaultKind::Unnamed),
            (
                "start-bitflip",
                Phase::Start,
                FaultKind::Other("bitflip".into()),
            ),
        ] {
            let ev = NemesisEvent {
                phase,
                kind: kind.clone(),
                value: json!(["n1"]),
            };
            assert_eq!(ev.f(), f);
            let back = NemesisEvent::from_event(&ev.to_event(3, 9));
            assert_eq!(back.as_ref(), Some(&ev), "{f}");
        }
        assert_eq!(NemesisEvent::parse_f("hiccup"), None);
        assert_eq!(FaultKind::ClockStrobe.family(), "clock");
        assert_eq!(FaultKind::Unnamed.family(), "fault");
    }

    #[test]
    fn client_events_and_invocations_are_not_nemesis_events() {
        let mut e = NemesisEvent::start(FaultKind::Pause, json!(["n2"])).to_event(0, 0);
        e.kind = EventType::Invoke;
        assert_eq!(NemesisEvent::from_event(&e), None);
        e.kind = EventType::Info;
        e.process = Process::Client(1);
        assert_eq!(NemesisEvent::from_event(&e), None);
    }
}
