//! A cheap monotonic clock for per-command timing.
//!
//! On x86-64 with an invariant TSC (`constant_tsc` and `nonstop_tsc`), the
//! time-stamp counter is read directly and converted with a rate calibrated
//! once at start-up, as Redis does for its command timings. Elsewhere it
//! falls back to `Instant`. Reading the TSC costs a few nanoseconds where
//! `clock_gettime` through the vDSO cost ~10% of a GET-heavy profile.

use std::sync::OnceLock;
use std::time::Instant;

struct Calib {
    /// TSC ticks per microsecond, or 0 when the TSC is not used.
    ticks_per_us: f64,
    base: Instant,
}

static CALIB: OnceLock<Calib> = OnceLock::new();

fn invariant_tsc() -> bool {
    if !cfg!(target_arch = "x86_64") {
        return false;
    }
    std::fs::read_to_string("/proc/cpuinfo")
        .map(|s| {
            let flags = s.lines().find(|l| l.starts_with("flags")).unwrap_or("");
            let has = |f: &str| flags.split_whitespace().any(|w| w == f);
            has("constant_tsc") && has("nonstop_tsc")
        })
        .unwrap_or(false)
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no memory effects and is available on every x86-64
    // CPU; it is only used when /proc/cpuinfo reports an invariant TSC.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn rdtsc() -> u64 {
    0
}

fn calib() -> &'static Calib {
    CALIB.get_or_init(|| {
        let base = Instant::now();
        if !invariant_tsc() {
            return Calib {
                ticks_per_us: 0.0,
                base,
            };
        }
        let t0 = rdtsc();
        let i0 = Instant::now();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let t1 = rdtsc();
        let us = i0.elapsed().as_secs_f64() * 1e6;
        let rate = (t1.wrapping_sub(t0)) as f64 / us;
        Calib {
            ticks_per_us: if rate.is_finite() && rate > 1.0 {
                rate
            } else {
                0.0
            },
            base,
        }
    })
}

/// Calibrates now (call once at start-up, before the shards run).
pub fn init() {
    calib();
}

/// An opaque timestamp; subtract two with [`elapsed_us`].
#[derive(Clone, Copy)]
pub struct Stamp(u64);

#[inline]
pub fn now() -> Stamp {
    let c = calib();
    if c.ticks_per_us > 0.0 {
        Stamp(rdtsc())
    } else {
        Stamp(c.base.elapsed().as_nanos() as u64)
    }
}

/// Nanoseconds from `start` to now.
#[inline]
pub fn elapsed_ns(start: Stamp) -> u64 {
    let c = calib();
    if c.ticks_per_us > 0.0 {
        (rdtsc().saturating_sub(start.0) as f64 * 1000.0 / c.ticks_per_us) as u64
    } else {
        (c.base.elapsed().as_nanos() as u64).saturating_sub(start.0)
    }
}

/// Microseconds from `start` to now.
#[inline]
pub fn elapsed_us(start: Stamp) -> u64 {
    elapsed_ns(start) / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_a_sleep() {
        init();
        let s = now();
        std::thread::sleep(std::time::Duration::from_millis(30));
        let us = elapsed_us(s);
        assert!((25_000..2_000_000).contains(&us), "{us}");
    }
}
