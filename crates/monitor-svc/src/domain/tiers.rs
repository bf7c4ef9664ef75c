//! Samples in tiers, as Proxmox VE keeps its RRD: every sample for a day, 30-minute average
//! and maximum for a month, 6-hour average and maximum for a year. What each timeframe of
//! PVE's rrddata reads.

use proto::monitor::v1::Timeframe;

pub const DAY_SECS: i64 = 86_400;

/// Where samples are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// Every sample.
    Raw,
    /// Consolidated over this many seconds.
    Rollup { width_secs: i64, keep_secs: i64 },
}

pub const RAW_KEEP_SECS: i64 = DAY_SECS;
pub const HALF_HOUR: Tier = Tier::Rollup {
    width_secs: 1800,
    keep_secs: 31 * DAY_SECS,
};
pub const SIX_HOURS: Tier = Tier::Rollup {
    width_secs: 6 * 3600,
    keep_secs: 366 * DAY_SECS,
};
pub const ROLLUPS: [Tier; 2] = [HALF_HOUR, SIX_HOURS];

impl Tier {
    /// The rollup's number in storage (raw samples have their own table).
    pub fn code(self) -> i16 {
        match self {
            Self::Raw => 0,
            Self::Rollup { width_secs, .. } => {
                if width_secs == 1800 {
                    1
                } else {
                    2
                }
            }
        }
    }
}

/// The start of the period of `width_secs` that holds `at_secs`.
pub fn bucket(width_secs: i64, at_secs: i64) -> i64 {
    at_secs - at_secs.rem_euclid(width_secs)
}

/// Which tier a timeframe reads, and from when.
pub fn window(timeframe: Timeframe, now_secs: i64) -> Option<(Tier, i64)> {
    match timeframe {
        Timeframe::Unspecified => None,
        Timeframe::Hour => Some((Tier::Raw, now_secs - 3600)),
        Timeframe::Day => Some((Tier::Raw, now_secs - DAY_SECS)),
        Timeframe::Week => Some((HALF_HOUR, now_secs - 7 * DAY_SECS)),
        Timeframe::Month => Some((HALF_HOUR, now_secs - 31 * DAY_SECS)),
        Timeframe::Year => Some((SIX_HOURS, now_secs - 366 * DAY_SECS)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_start_on_their_boundary() {
        assert_eq!(bucket(1800, 3599), 1800);
        assert_eq!(bucket(1800, 3600), 3600);
        assert_eq!(bucket(21_600, 100_000), 86_400);
    }

    #[test]
    fn timeframes_read_the_tier_that_covers_them() {
        let now = 10 * DAY_SECS;
        assert_eq!(window(Timeframe::Unspecified, now), None);
        assert_eq!(window(Timeframe::Hour, now), Some((Tier::Raw, now - 3600)));
        assert_eq!(window(Timeframe::Week, now).map(|w| w.0), Some(HALF_HOUR));
        assert_eq!(window(Timeframe::Year, now).map(|w| w.0.code()), Some(2));
    }
}
