//! Threshold alerts: one per server and metric, firing after enough samples in a row above
//! the threshold, clearing only below a lower mark (so a value that hovers does not storm),
//! and resting for a cool-down after it clears.

/// The metrics alerts watch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    Cpu,
    Memory,
    Disk,
}

impl Metric {
    pub const ALL: [Self; 3] = [Self::Cpu, Self::Memory, Self::Disk];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Memory => "memory",
            Self::Disk => "disk",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }

    /// How people call it, in a message.
    pub fn label(self) -> &'static str {
        match self {
            Self::Cpu => "CPU",
            Self::Memory => "Memory",
            Self::Disk => "Disk",
        }
    }
}

/// When one metric's alert fires and clears.
#[derive(Clone, Copy, Debug)]
pub struct Rule {
    pub threshold: f64,
    pub clear_below: f64,
    pub critical: f64,
    pub consecutive: u32,
    pub cooldown_ms: i64,
}

/// One alert's state, persisted so a restart neither repeats nor forgets an alert.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct State {
    pub firing: bool,
    /// Samples in a row at or above the threshold.
    pub streak: u32,
    /// When it last fired or cleared (0: never).
    pub changed_at_ms: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Warning,
    Critical,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Fired(Level),
    Resolved,
}

/// The alert's state after one sample of `value` (percent) at `now_ms`, and what changed.
pub fn step(rule: &Rule, state: State, value: f64, now_ms: i64) -> (State, Option<Change>) {
    let mut next = state;
    if value >= rule.threshold {
        next.streak = state.streak.saturating_add(1);
        let rested = state.changed_at_ms == 0 || now_ms - state.changed_at_ms >= rule.cooldown_ms;
        if !state.firing && next.streak >= rule.consecutive && rested {
            next.firing = true;
            next.changed_at_ms = now_ms;
            let level = if value >= rule.critical {
                Level::Critical
            } else {
                Level::Warning
            };
            return (next, Some(Change::Fired(level)));
        }
        return (next, None);
    }
    next.streak = 0;
    if state.firing && value < rule.clear_below {
        next.firing = false;
        next.changed_at_ms = now_ms;
        return (next, Some(Change::Resolved));
    }
    (next, None)
}

/// What people read: "CPU usage is at 95%", "Disk usage is back to 70%".
pub fn message(metric: Metric, change: Change, value: f64) -> String {
    match change {
        Change::Fired(_) => format!("{} usage is at {:.0}%", metric.label(), value),
        Change::Resolved => format!("{} usage is back to {:.0}%", metric.label(), value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: Rule = Rule {
        threshold: 90.0,
        clear_below: 80.0,
        critical: 98.0,
        consecutive: 3,
        cooldown_ms: 60_000,
    };

    fn run(values: &[f64], every_ms: i64) -> Vec<(i64, Change)> {
        let mut state = State::default();
        let mut changes = Vec::new();
        for (i, v) in values.iter().enumerate() {
            let now = 1_000_000 + i as i64 * every_ms;
            let (next, change) = step(&RULE, state, *v, now);
            state = next;
            if let Some(c) = change {
                changes.push((i as i64, c));
            }
        }
        changes
    }

    #[test]
    fn fires_after_n_in_a_row() {
        let changes = run(&[95.0, 95.0, 50.0, 95.0, 95.0, 95.0], 30_000);
        assert_eq!(changes, vec![(5, Change::Fired(Level::Warning))]);
    }

    #[test]
    fn hovering_does_not_storm() {
        let changes = run(&[95.0, 95.0, 99.0, 85.0, 91.0, 85.0, 91.0, 79.0], 30_000);
        assert_eq!(
            changes,
            vec![(2, Change::Fired(Level::Critical)), (7, Change::Resolved)]
        );
    }

    #[test]
    fn rests_after_clearing() {
        // Samples 10 s apart. Cleared at sample 3; three samples above by sample 6, but the
        // cool-down (60 s) holds it until sample 9.
        let changes = run(
            &[95.0, 95.0, 95.0, 10.0, 95.0, 95.0, 95.0, 95.0, 95.0, 95.0],
            10_000,
        );
        assert_eq!(
            changes,
            vec![
                (2, Change::Fired(Level::Warning)),
                (3, Change::Resolved),
                (9, Change::Fired(Level::Warning)),
            ]
        );
    }
}
