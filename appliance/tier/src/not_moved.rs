//! Why a pass left a unit where it is: each unit a pass considered and did not move gets a
//! reason, counted in the pass's totals and printed per unit by `chronicle tier run
//! --verbose` (`docs/tiers.md`). Without them a pass over freshly imported old days says
//! "0 warm -> cold" and nothing about the late window that holds them.

use crate::manager::MoveKind;
use std::fmt;
use std::path::PathBuf;

/// Why a unit was not moved this pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotMoved {
    /// Its day ended less than the move's age ago (`warm_to_cold_after_hours`, or
    /// `cold_to_remote_after_days`); due at `until_ns`.
    TooYoung { until_ns: u64 },
    /// Among its symbol's newest `keep_newest_per_symbol` partitions in the warm root.
    NewestKept,
    /// Inside the late window (`[partitions] grace_ms`): its day ended, or its `book.q` was
    /// last written (`written_ns`; an import or a replay of old days writes them now), less
    /// than that long ago. Due at `until_ns` if nothing writes it meanwhile.
    LateWindow {
        until_ns: u64,
        written_ns: Option<u64>,
    },
    /// No `meta.json` while its `book.q` is still being written (at `written_ns`): the
    /// partition is open.
    NotClosed { written_ns: u64 },
    /// A leftover reconciliation could not resolve (the pass lists it as unresolved).
    Unresolved,
    /// The pass had made its `max_moves_per_pass` moves.
    MaxMoves,
}

impl NotMoved {
    /// The name the totals count it under.
    pub fn label(self) -> &'static str {
        match self {
            NotMoved::TooYoung { .. } => "too young",
            NotMoved::NewestKept => "newest kept",
            NotMoved::LateWindow { .. } => "late window",
            NotMoved::NotClosed { .. } => "not closed",
            NotMoved::Unresolved => "unresolved",
            NotMoved::MaxMoves => "max_moves_per_pass",
        }
    }

    /// When the unit is due, where the reason says.
    pub fn until_ns(self) -> Option<u64> {
        match self {
            NotMoved::TooYoung { until_ns } | NotMoved::LateWindow { until_ns, .. } => {
                Some(until_ns)
            }
            _ => None,
        }
    }
}

impl fmt::Display for NotMoved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            NotMoved::TooYoung { until_ns } => write!(f, "too young: due at {}", at(until_ns)),
            NotMoved::NewestKept => {
                f.write_str("among its symbol's newest (keep_newest_per_symbol)")
            }
            NotMoved::LateWindow {
                until_ns,
                written_ns: None,
            } => write!(
                f,
                "inside its day's late window (grace_ms) until {}",
                at(until_ns)
            ),
            NotMoved::LateWindow {
                until_ns,
                written_ns: Some(w),
            } => write!(
                f,
                "inside the late window (grace_ms) until {}: book.q was written at {}",
                at(until_ns),
                at(w)
            ),
            NotMoved::NotClosed { written_ns } => write!(
                f,
                "not closed: no meta.json, book.q written at {}",
                at(written_ns)
            ),
            NotMoved::Unresolved => f.write_str("a leftover needs an operator (see unresolved)"),
            NotMoved::MaxMoves => f.write_str("the pass made its max_moves_per_pass moves"),
        }
    }
}

/// A unit a pass did not move, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub kind: MoveKind,
    pub unit: PathBuf,
    pub reason: NotMoved,
}

/// The held units of one reason.
struct Group {
    label: &'static str,
    count: usize,
    /// When the first and the last of them are due, where the reason says.
    due: Option<(u64, u64)>,
}

/// `2 late window (until 2026-12-03T21:00:00Z), 1 newest kept`: the held units of `kind` by
/// reason, most first, each with when the first and last of them are due; None if there are
/// none.
pub fn summary(held: &[Held], kind: MoveKind) -> Option<String> {
    let mut groups: Vec<Group> = Vec::new();
    for h in held.iter().filter(|h| h.kind == kind) {
        let label = h.reason.label();
        let i = match groups.iter().position(|g| g.label == label) {
            Some(i) => i,
            None => {
                groups.push(Group {
                    label,
                    count: 0,
                    due: None,
                });
                groups.len() - 1
            }
        };
        let g = &mut groups[i];
        g.count += 1;
        if let Some(u) = h.reason.until_ns() {
            g.due = Some(g.due.map_or((u, u), |(lo, hi)| (lo.min(u), hi.max(u))));
        }
    }
    if groups.is_empty() {
        return None;
    }
    groups.sort_by(|a, b| b.count.cmp(&a.count).then(a.label.cmp(b.label)));
    let parts: Vec<String> = groups
        .iter()
        .map(|g| {
            let (n, label) = (g.count, g.label);
            match g.due.map(|(lo, hi)| (at(lo), at(hi))) {
                Some((lo, hi)) if lo == hi => format!("{n} {label} (until {lo})"),
                Some((lo, hi)) => format!("{n} {label} (until {lo} to {hi})"),
                None => format!("{n} {label}"),
            }
        })
        .collect();
    Some(parts.join(", "))
}

/// ns since the epoch as `2026-12-03T21:00:05Z`, rounded up to the second (a unit is not due
/// before the time printed).
pub fn at(ns: u64) -> String {
    let secs = ns.div_ceil(1_000_000_000);
    let t = chronicle_storage::utc::rfc3339(secs.saturating_mul(1_000_000_000));
    format!("{}Z", &t[..19])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(kind: MoveKind, reason: NotMoved) -> Held {
        Held {
            kind,
            unit: PathBuf::from("v1/x/y/2024-08-08"),
            reason,
        }
    }

    #[test]
    fn the_summary_counts_by_reason_with_when_they_are_due() {
        let t = 1_796_331_600_000_000_000; // 2026-12-03T21:00:00Z
        let late = |until_ns| NotMoved::LateWindow {
            until_ns,
            written_ns: Some(until_ns - 3_600_000_000_000),
        };
        let list = [
            held(MoveKind::WarmToCold, NotMoved::NewestKept),
            held(MoveKind::WarmToCold, late(t)),
            held(MoveKind::WarmToCold, late(t - 400_000_000)),
            held(MoveKind::ColdToRemote, NotMoved::TooYoung { until_ns: t }),
            held(
                MoveKind::ColdToRemote,
                NotMoved::TooYoung {
                    until_ns: t + 86_400_000_000_000,
                },
            ),
        ];
        assert_eq!(
            summary(&list, MoveKind::WarmToCold).unwrap(),
            "2 late window (until 2026-12-03T21:00:00Z), 1 newest kept"
        );
        assert_eq!(
            summary(&list, MoveKind::ColdToRemote).unwrap(),
            "2 too young (until 2026-12-03T21:00:00Z to 2026-12-04T21:00:00Z)"
        );
        assert_eq!(summary(&list[..1], MoveKind::ColdToRemote), None);
        assert_eq!(at(t + 1), "2026-12-03T21:00:01Z", "rounded up");
    }
}
