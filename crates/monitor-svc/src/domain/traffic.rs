//! Traffic per calendar month (UTC): the sum of the positive deltas of a guest's counters,
//! so restarts and counter resets lose nothing and count nothing twice.

use chrono::{DateTime, Datelike as _};

use super::reading::{Counters, delta};

/// `YYYY-MM` of a moment (UTC).
pub fn month_of(at_ms: i64) -> String {
    let at = DateTime::from_timestamp_millis(at_ms).unwrap_or_default();
    format!("{:04}-{:02}", at.year(), at.month())
}

/// One server's traffic in one month.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MonthTotal {
    pub month: String,
    pub in_bytes: u64,
    pub out_bytes: u64,
}

/// The month's total after a reading. The first reading of a guest counts nothing (what
/// its counters held began before it was watched); what passed between two readings counts
/// in the month of the later one.
pub fn account(total: Option<MonthTotal>, prev: Option<&Counters>, now: &Counters) -> MonthTotal {
    let month = month_of(now.at_ms);
    let mut total = match total {
        Some(t) if t.month == month => t,
        _ => MonthTotal {
            month,
            ..MonthTotal::default()
        },
    };
    if let Some(prev) = prev {
        let restarted = now.restarted_since(prev);
        total.in_bytes = total
            .in_bytes
            .saturating_add(delta(prev.net_rx, now.net_rx, restarted));
        total.out_bytes = total
            .out_bytes
            .saturating_add(delta(prev.net_tx, now.net_tx, restarted));
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(ms: i64, rx: u64, tx: u64, up: u64) -> Counters {
        Counters {
            at_ms: ms,
            net_rx: rx,
            net_tx: tx,
            uptime_secs: up,
            ..Counters::default()
        }
    }

    #[test]
    fn restarts_lose_nothing() {
        let t0 = 1_764_547_200_000; // 2025-12-01T00:00:00Z
        let readings = [
            reading(t0, 1000, 100, 10),
            reading(t0 + 30_000, 5000, 600, 40),
            // Restarted: counters began again.
            reading(t0 + 60_000, 700, 50, 3),
            reading(t0 + 90_000, 1700, 150, 33),
        ];
        let mut total = None;
        let mut prev: Option<Counters> = None;
        for r in readings {
            total = Some(account(total, prev.as_ref(), &r));
            prev = Some(r);
        }
        let total = total.expect("a total");
        assert_eq!(total.month, "2025-12");
        assert_eq!(total.in_bytes, 4000 + 700 + 1000);
        assert_eq!(total.out_bytes, 500 + 50 + 100);
    }

    #[test]
    fn a_new_month_starts_from_zero() {
        let end_of_nov = 1_764_547_199_000; // 2025-11-30T23:59:59Z
        let first = account(None, None, &reading(end_of_nov - 30_000, 0, 0, 100));
        let nov = account(
            Some(first),
            Some(&reading(end_of_nov - 30_000, 0, 0, 100)),
            &reading(end_of_nov, 10, 10, 130),
        );
        assert_eq!((nov.month.as_str(), nov.in_bytes), ("2025-11", 10));
        let dec = account(
            Some(nov),
            Some(&reading(end_of_nov, 10, 10, 130)),
            &reading(end_of_nov + 30_000, 25, 10, 160),
        );
        assert_eq!(
            (dec.month.as_str(), dec.in_bytes, dec.out_bytes),
            ("2025-12", 15, 0)
        );
    }
}
