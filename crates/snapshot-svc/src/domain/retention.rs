//! Which backups a retention keeps, in Proxmox Backup Server's prune terms. Backups are
//! taken newest first. `keep_last` keeps the newest N. Then each of `keep_daily`,
//! `keep_weekly` and `keep_monthly` in turn keeps the newest backup of each of N distinct
//! periods (days, ISO weeks, months in the schedule's time zone), skipping periods a
//! backup kept by an earlier term already covers. Protected backups are always kept and
//! count for nothing. With every term zero, everything is kept.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Keep {
    pub last: u32,
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
}

impl Keep {
    pub fn keeps_all(self) -> bool {
        self.last == 0 && self.daily == 0 && self.weekly == 0 && self.monthly == 0
    }
}

/// A completed backup as retention sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub protected: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mark {
    Keep,
    Remove,
}

/// The ids of the backups `keep` removes.
pub fn prune(candidates: &[Candidate], keep: Keep, zone: Tz) -> Vec<i64> {
    if keep.keeps_all() {
        return Vec::new();
    }
    let mut list: Vec<Candidate> = candidates
        .iter()
        .copied()
        .filter(|c| !c.protected)
        .collect();
    list.sort_by(|a, b| b.at.cmp(&a.at).then(b.id.cmp(&a.id)));
    let mut marks: Vec<Option<Mark>> = vec![None; list.len()];
    let local = |c: &Candidate| c.at.with_timezone(&zone);
    mark(&list, &mut marks, keep.last, |c| c.id.to_string());
    mark(&list, &mut marks, keep.daily, |c| {
        local(c).format("%Y-%m-%d").to_string()
    });
    mark(&list, &mut marks, keep.weekly, |c| {
        local(c).format("%G-%V").to_string()
    });
    mark(&list, &mut marks, keep.monthly, |c| {
        local(c).format("%Y-%m").to_string()
    });
    list.iter()
        .zip(marks)
        .filter(|(_, m)| *m != Some(Mark::Keep))
        .map(|(c, _)| c.id)
        .collect()
}

fn mark(
    list: &[Candidate],
    marks: &mut [Option<Mark>],
    count: u32,
    period: impl Fn(&Candidate) -> String,
) {
    if count == 0 {
        return;
    }
    // Periods already covered by backups an earlier term kept.
    let covered: HashSet<String> = list
        .iter()
        .zip(marks.iter())
        .filter(|(_, m)| **m == Some(Mark::Keep))
        .map(|(c, _)| period(c))
        .collect();
    let mut kept: HashSet<String> = HashSet::new();
    for (c, m) in list.iter().zip(marks.iter_mut()) {
        if m.is_some() {
            continue;
        }
        let p = period(c);
        if covered.contains(&p) {
            continue;
        }
        if kept.contains(&p) {
            *m = Some(Mark::Remove);
            continue;
        }
        if kept.len() >= count as usize {
            break;
        }
        kept.insert(p);
        *m = Some(Mark::Keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone as _;

    fn day(d: u32, h: u32, id: i64) -> Candidate {
        Candidate {
            id,
            at: Utc.with_ymd_and_hms(2026, 3, d, h, 0, 0).unwrap(),
            protected: false,
        }
    }

    #[test]
    fn keep_last() {
        let list: Vec<_> = (1..=6).map(|i| day(i, 1, i64::from(i))).collect();
        let keep = Keep {
            last: 3,
            ..Keep::default()
        };
        let mut gone = prune(&list, keep, Tz::UTC);
        gone.sort_unstable();
        assert_eq!(gone, vec![1, 2, 3]);
    }

    #[test]
    fn keep_daily_keeps_the_newest_of_each_day() {
        let list = vec![
            day(1, 1, 1),
            day(1, 5, 2),
            day(2, 1, 3),
            day(2, 9, 4),
            day(3, 1, 5),
        ];
        let keep = Keep {
            daily: 2,
            ..Keep::default()
        };
        let mut gone = prune(&list, keep, Tz::UTC);
        gone.sort_unstable();
        // Days 3 and 2 are kept (5 and 4); everything else goes.
        assert_eq!(gone, vec![1, 2, 3]);
    }

    #[test]
    fn terms_combine_as_pbs_does() {
        // 1 March 2026 is a Sunday: ISO week 9 ends there.
        let list: Vec<_> = (1..=15).map(|i| day(i, 12, i64::from(i))).collect();
        let keep = Keep {
            last: 1,
            daily: 2,
            weekly: 2,
            ..Keep::default()
        };
        let mut kept: Vec<i64> = list
            .iter()
            .map(|c| c.id)
            .filter(|id| !prune(&list, keep, Tz::UTC).contains(id))
            .collect();
        kept.sort_unstable();
        // last: 15. daily: 14, 13. weekly: week 11 (9-15) is covered; 8 (week 10) and 1
        // (week 9) are kept.
        assert_eq!(kept, vec![1, 8, 13, 14, 15]);
    }

    #[test]
    fn protected_backups_are_never_pruned_and_count_for_nothing() {
        let mut list: Vec<_> = (1..=4).map(|i| day(i, 1, i64::from(i))).collect();
        list[3].protected = true;
        let keep = Keep {
            last: 1,
            ..Keep::default()
        };
        let mut gone = prune(&list, keep, Tz::UTC);
        gone.sort_unstable();
        assert_eq!(gone, vec![1, 2]);
    }

    #[test]
    fn no_terms_keep_everything() {
        let list: Vec<_> = (1..=4).map(|i| day(i, 1, i64::from(i))).collect();
        assert!(prune(&list, Keep::default(), Tz::UTC).is_empty());
    }

    #[test]
    fn days_are_the_zones_days() {
        // 23:30 UTC on the 1st is already the 2nd in Berlin.
        let late = Candidate {
            id: 1,
            at: Utc.with_ymd_and_hms(2026, 3, 1, 23, 30, 0).unwrap(),
            protected: false,
        };
        let next = day(2, 12, 2);
        let keep = Keep {
            daily: 5,
            ..Keep::default()
        };
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        assert_eq!(prune(&[late, next], keep, berlin), vec![1]);
        assert!(prune(&[late, next], keep, Tz::UTC).is_empty());
    }
}
