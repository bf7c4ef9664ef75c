//! One reading of a guest against the one before: CPU as a fraction of the server's cores
//! and counters turned into rates, across guest restarts and counter resets.

/// A guest's cumulative counters at one reading, kept until the next.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counters {
    pub at_ms: i64,
    pub cpu_time_ns: u64,
    pub net_rx: u64,
    pub net_tx: u64,
    pub disk_read: u64,
    pub disk_write: u64,
    pub uptime_secs: u64,
}

impl Counters {
    /// Whether the guest restarted (or its counters were reset) since `prev`: its uptime went
    /// back, or any counter did.
    pub fn restarted_since(&self, prev: &Self) -> bool {
        self.uptime_secs < prev.uptime_secs
            || self.cpu_time_ns < prev.cpu_time_ns
            || self.net_rx < prev.net_rx
            || self.net_tx < prev.net_tx
            || self.disk_read < prev.disk_read
            || self.disk_write < prev.disk_write
    }
}

/// What a counter grew by since `prev`. After a restart the counter began again at zero, so
/// all of it is new.
pub fn delta(prev: u64, now: u64, restarted: bool) -> u64 {
    if restarted || now < prev {
        now
    } else {
        now - prev
    }
}

/// Rates per second between two readings (zero for the first reading of a guest).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rates {
    pub cpu: f64,
    pub net_in: f64,
    pub net_out: f64,
    pub disk_read: f64,
    pub disk_write: f64,
}

/// The rates from `prev` to `now`. `cpu_fraction` is the hypervisor's own figure where it
/// gives one (Proxmox); otherwise CPU comes from CPU time over wall time and cores.
pub fn rates(
    prev: Option<&Counters>,
    now: &Counters,
    cores: u32,
    cpu_fraction: Option<f64>,
) -> Rates {
    let cores = f64::from(cores.max(1));
    let Some(prev) = prev.filter(|p| now.at_ms > p.at_ms) else {
        // No earlier reading: the average since the guest started is the best CPU figure.
        let cpu = cpu_fraction.unwrap_or_else(|| {
            if now.uptime_secs == 0 {
                0.0
            } else {
                now.cpu_time_ns as f64 / (now.uptime_secs as f64 * 1e9 * cores)
            }
        });
        return Rates {
            cpu: cpu.clamp(0.0, 1.0),
            ..Rates::default()
        };
    };
    let restarted = now.restarted_since(prev);
    let mut secs = (now.at_ms - prev.at_ms) as f64 / 1000.0;
    if restarted && now.uptime_secs > 0 {
        // Only the time since the restart produced the new counts.
        secs = secs.min(now.uptime_secs as f64);
    }
    let secs = secs.max(0.001);
    let per_sec = |p: u64, n: u64| delta(p, n, restarted) as f64 / secs;
    let cpu = cpu_fraction.unwrap_or_else(|| {
        delta(prev.cpu_time_ns, now.cpu_time_ns, restarted) as f64 / (secs * 1e9 * cores)
    });
    Rates {
        cpu: cpu.clamp(0.0, 1.0),
        net_in: per_sec(prev.net_rx, now.net_rx),
        net_out: per_sec(prev.net_tx, now.net_tx),
        disk_read: per_sec(prev.disk_read, now.disk_read),
        disk_write: per_sec(prev.disk_write, now.disk_write),
    }
}

/// `used` as a percentage of `max` (0 when there is no max).
pub fn percent(used: u64, max: u64) -> f64 {
    if max == 0 {
        0.0
    } else {
        used as f64 / max as f64 * 100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64, cpu_s: u64, rx: u64, up: u64) -> Counters {
        Counters {
            at_ms: ms,
            cpu_time_ns: cpu_s * 1_000_000_000,
            net_rx: rx,
            uptime_secs: up,
            ..Counters::default()
        }
    }

    #[test]
    fn cpu_is_time_over_wall_time_and_cores() {
        let a = at(0, 100, 0, 1000);
        let b = at(10_000, 115, 0, 1010);
        let r = rates(Some(&a), &b, 2, None);
        assert!((r.cpu - 0.75).abs() < 1e-9, "{}", r.cpu);
    }

    #[test]
    fn the_hypervisors_figure_wins_and_is_clamped() {
        let a = at(0, 0, 0, 10);
        let b = at(1000, 0, 0, 11);
        assert_eq!(rates(Some(&a), &b, 1, Some(0.4)).cpu, 0.4);
        assert_eq!(rates(Some(&a), &b, 1, Some(3.0)).cpu, 1.0);
    }

    #[test]
    fn a_restart_counts_everything_since_it() {
        let a = at(0, 50, 9_000, 500);
        // Restarted 5 s ago: 1000 bytes received since.
        let b = at(30_000, 1, 1_000, 5);
        assert!(b.restarted_since(&a));
        let r = rates(Some(&a), &b, 1, None);
        assert!((r.net_in - 200.0).abs() < 1e-9, "{}", r.net_in);
        assert_eq!(delta(9_000, 1_000, true), 1_000);
        assert_eq!(delta(1_000, 9_000, false), 8_000);
    }

    #[test]
    fn the_first_reading_has_no_rates() {
        let r = rates(None, &at(0, 30, 500, 60), 1, None);
        assert_eq!(r.net_in, 0.0);
        assert!((r.cpu - 0.5).abs() < 1e-9);
    }

    proptest::proptest! {
        #[test]
        fn rates_are_never_negative(
            a in proptest::array::uniform6(0u64..1 << 40),
            b in proptest::array::uniform6(0u64..1 << 40),
            dt in 1i64..100_000,
            cores in 0u32..64,
        ) {
            let c = |v: [u64; 6], ms| Counters { at_ms: ms, cpu_time_ns: v[0], net_rx: v[1], net_tx: v[2], disk_read: v[3], disk_write: v[4], uptime_secs: v[5] };
            let r = rates(Some(&c(a, 0)), &c(b, dt), cores, None);
            proptest::prop_assert!(r.cpu >= 0.0 && r.cpu <= 1.0);
            for v in [r.net_in, r.net_out, r.disk_read, r.disk_write] {
                proptest::prop_assert!(v >= 0.0 && v.is_finite());
            }
        }
    }
}
