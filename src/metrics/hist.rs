//! Per-command latency histograms, as Redis 7.0 keeps them: HdrHistogram
//! over 1 ns ..= 1 s with 2 significant digits, values in nanoseconds.
//!
//! Recording is on every command's path, so shards count into a plain
//! array laid out exactly like that HdrHistogram's counts ([`Counts`],
//! one increment per call); readers turn it into an
//! [`hdrhistogram::Histogram`] ([`to_hist`]) for percentiles and the CDF.

use hdrhistogram::Histogram;

pub type Hist = Histogram<u64>;

/// Redis's LATENCY_HISTOGRAM_MIN_VALUE / MAX_VALUE / PRECISION.
const MIN_NS: u64 = 1;
const MAX_NS: u64 = 1_000_000_000;
const SIGFIG: u8 = 2;

/// With 2 significant digits the HdrHistogram has 256 sub-buckets (half
/// of them, 128, per bucket after the first); 1 s lands in index 3054.
const HALF_MAG: u32 = 7;
const HALF: usize = 1 << HALF_MAG;
pub const NCOUNTS: usize = 3072;

/// Counts per HdrHistogram index.
pub type Counts = [u64; NCOUNTS];

pub fn new_counts() -> Box<Counts> {
    Box::new([0; NCOUNTS])
}

/// The HdrHistogram counts index of `ns` (clamped to 1 ns ..= 1 s, as
/// Redis clamps): bucket = magnitude above the first 256 values,
/// sub-bucket = the top 8 bits.
#[inline]
pub fn index(ns: u64) -> usize {
    let v = ns.clamp(MIN_NS, MAX_NS);
    let bucket = (64 - (v | (2 * HALF as u64 - 1)).leading_zeros() - (HALF_MAG + 1)) as usize;
    let sub = (v >> bucket) as usize;
    ((bucket + 1) << HALF_MAG) + sub - HALF
}

/// The lowest value counted at index `i` (inverse of [`index`]).
fn value_of(i: usize) -> u64 {
    if i < 2 * HALF {
        return i as u64;
    }
    let bucket = (i >> HALF_MAG) - 1;
    let sub = (i & (HALF - 1)) + HALF;
    (sub as u64) << bucket
}

/// Records one duration.
#[inline]
pub fn record(c: &mut Counts, ns: u64) {
    c[index(ns)] += 1;
}

/// Adds `src` into `dst`.
pub fn add(dst: &mut Counts, src: &Counts) {
    for (d, s) in dst.iter_mut().zip(src.iter()) {
        *d += s;
    }
}

/// The HdrHistogram Redis would hold for these counts.
pub fn to_hist(c: &Counts) -> Hist {
    let mut h = new();
    for (i, &n) in c.iter().enumerate() {
        if n > 0 {
            h.saturating_record_n(value_of(i), n);
        }
    }
    h
}

pub fn new() -> Hist {
    Histogram::new_with_bounds(MIN_NS, MAX_NS, SIGFIG).expect("valid histogram bounds")
}

/// The cumulative distribution LATENCY HISTOGRAM reports: Redis walks the
/// histogram with a logarithmic iterator (first bucket 1024 ns, base 2)
/// and, at each power-of-two step that added samples, reports the step's
/// highest equivalent value in µs and the count of samples up to it.
pub fn cdf(h: &Hist) -> Vec<(u64, u64)> {
    let total = h.len();
    let recorded: Vec<(u64, u64)> = h
        .iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect();
    let mut out = Vec::new();
    let (mut level, mut cum, mut i, mut prev) = (1024u64, 0u64, 0usize, 0u64);
    while cum < total && level < u64::MAX / 2 {
        let hi = h.highest_equivalent(level);
        while i < recorded.len() && recorded[i].0 <= hi {
            cum += recorded[i].1;
            i += 1;
        }
        if cum > prev {
            out.push((hi / 1000, cum));
        }
        prev = cum;
        level *= 2;
    }
    out
}

/// `hdr_value_at_percentile` of the C library Redis uses (rounds the
/// target count to nearest, where the Rust crate rounds up).
pub fn value_at_percentile(h: &Hist, p: f64) -> u64 {
    let p = p.min(100.0);
    let target = ((p / 100.0 * h.len() as f64) + 0.5) as u64;
    let target = target.max(1);
    let mut cum = 0;
    for v in h.iter_recorded() {
        cum += v.count_at_value();
        if cum >= target {
            let value = v.value_iterated_to();
            return if p == 0.0 {
                h.lowest_equivalent(value)
            } else {
                value
            };
        }
    }
    0
}

/// C's `%f` with trailing zeros (and a trailing dot) removed, as Redis
/// names percentiles ("50", "99.9").
pub fn percentile_name(p: f64) -> String {
    let s = format!("{p:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// One INFO latencystats line.
pub fn percentile_line(name: &str, h: &Hist, percentiles: &[f64]) -> String {
    let mut s = format!("latency_percentiles_usec_{name}:");
    for (j, &p) in percentiles.iter().enumerate() {
        if j > 0 {
            s.push(',');
        }
        let v = value_at_percentile(h, p) as f64 / 1000.0;
        s.push_str(&format!("p{}={:.3}", percentile_name(p), v));
    }
    s.push_str("\r\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records into counts and converts, as the shards and readers do.
    fn hist_of(values: &[u64]) -> Hist {
        let mut c = new_counts();
        for &v in values {
            record(&mut c, v);
        }
        to_hist(&c)
    }

    #[test]
    fn counts_match_hdrhistogram_layout() {
        let mut reference = new();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut values = vec![0, 1, 2, 255, 256, 257, 511, 512, 1023, 1024, 999_999_999];
        values.extend([1_000_000_000, 1_000_000_001, u64::MAX]);
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(x >> (x % 64));
        }
        for &v in &values {
            reference.saturating_record(v.clamp(MIN_NS, MAX_NS));
            assert!(index(v) < NCOUNTS);
            let w = value_of(index(v));
            assert!(
                reference.equivalent(v.clamp(MIN_NS, MAX_NS), w),
                "{v} vs {w}"
            );
        }
        let h = hist_of(&values);
        assert_eq!(h.len(), reference.len());
        for q in [0.0, 0.1, 0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(
                h.value_at_quantile(q),
                reference.value_at_quantile(q),
                "{q}"
            );
        }
        assert_eq!(index(1_000_000_000), 3054);
    }

    #[test]
    fn cdf_uses_power_of_two_buckets() {
        let mut values = vec![500; 10]; // under the first bucket
        values.extend([3_000; 5]);
        values.push(40_000);
        // Buckets as Redis reports them: 1, 2, 4, 8, 16, 33, 66 ...
        assert_eq!(cdf(&hist_of(&values)), vec![(1, 10), (4, 15), (66, 16)]);
        assert_eq!(cdf(&hist_of(&[0])), vec![(1, 1)]);
    }

    #[test]
    fn percentiles_as_redis() {
        let values: Vec<u64> = (1..=100u64).map(|v| v * 1000).collect();
        let h = hist_of(&values);
        assert_eq!(value_at_percentile(&h, 50.0), h.highest_equivalent(50_000));
        assert_eq!(percentile_name(99.9), "99.9");
        assert_eq!(percentile_name(50.0), "50");
        let line = percentile_line("get", &h, &[50.0, 99.0, 99.9]);
        assert!(
            line.starts_with("latency_percentiles_usec_get:p50=50.175,p99="),
            "{line}"
        );
        assert!(line.ends_with("\r\n"));
    }
}
