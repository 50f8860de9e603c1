//! The latency monitor (Redis's latency.c): per event, a ring of the last
//! 160 one-second samples (the worst latency of each second, in ms) and
//! the all-time maximum. Each shard keeps its own series; readers merge
//! them per event ([`merge`]), which gives the same result as one series
//! fed by every shard.

/// Redis's LATENCY_TS_LEN.
pub const TS_LEN: usize = 160;

/// One event's time series.
#[derive(Clone)]
pub struct Series {
    pub name: &'static str,
    idx: usize,
    pub max: u32,
    /// (unix seconds, latency ms); time 0 = unused.
    samples: Box<[(i64, u32); TS_LEN]>,
}

impl Series {
    pub fn new(name: &'static str) -> Series {
        Series {
            name,
            idx: 0,
            max: 0,
            samples: Box::new([(0, 0); TS_LEN]),
        }
    }

    /// `latencyAddSample`: one sample per second, the worst one wins.
    pub fn add(&mut self, now: i64, latency: u32) {
        if latency > self.max {
            self.max = latency;
        }
        let prev = (self.idx + TS_LEN - 1) % TS_LEN;
        if self.samples[prev].0 == now {
            if latency > self.samples[prev].1 {
                self.samples[prev].1 = latency;
            }
            return;
        }
        self.samples[self.idx] = (now, latency);
        self.idx = (self.idx + 1) % TS_LEN;
    }

    /// The samples, oldest first.
    pub fn samples(&self) -> Vec<(i64, u32)> {
        (0..TS_LEN)
            .map(|j| self.samples[(self.idx + j) % TS_LEN])
            .filter(|s| s.0 != 0)
            .collect()
    }

    pub fn snapshot(&self) -> Merged {
        Merged {
            name: self.name.to_string(),
            samples: self.samples(),
            max: self.max,
        }
    }
}

/// An event's series merged over the shards.
#[derive(Clone, Debug, PartialEq)]
pub struct Merged {
    pub name: String,
    /// Oldest first, at most one per second, at most TS_LEN.
    pub samples: Vec<(i64, u32)>,
    pub max: u32,
}

impl Merged {
    /// The latest sample (time, latency), (0, 0) when there is none.
    pub fn latest(&self) -> (i64, u32) {
        self.samples.last().copied().unwrap_or((0, 0))
    }
}

/// Merges the shards' series per event, in order of first appearance.
pub fn merge(per_shard: Vec<Vec<Merged>>) -> Vec<Merged> {
    let mut out: Vec<Merged> = Vec::new();
    for list in per_shard {
        for m in list {
            match out.iter_mut().find(|o| o.name == m.name) {
                Some(o) => {
                    o.max = o.max.max(m.max);
                    o.samples.extend(m.samples);
                }
                None => out.push(m),
            }
        }
    }
    for o in &mut out {
        o.samples.sort_unstable();
        // Same second on several shards: keep the worst.
        let mut v: Vec<(i64, u32)> = Vec::with_capacity(o.samples.len());
        for s in o.samples.drain(..) {
            match v.last_mut() {
                Some(l) if l.0 == s.0 => l.1 = l.1.max(s.1),
                _ => v.push(s),
            }
        }
        if v.len() > TS_LEN {
            v.drain(..v.len() - TS_LEN);
        }
        o.samples = v;
    }
    out
}

// ----- LATENCY GRAPH -------------------------------------------------------------

/// Redis's LATENCY_GRAPH_COLS.
const GRAPH_COLS: usize = 80;

/// `latencyCommandGenSparkeline`: a header, a rule, and the sparkline
/// of the samples labelled with how long ago each happened.
pub fn graph(ev: &Merged, now: i64) -> String {
    let (mut min, mut max) = (0u32, 0u32);
    let mut seq: Vec<(f64, String)> = Vec::new();
    for (j, &(t, lat)) in ev.samples.iter().enumerate() {
        if j == 0 {
            min = lat;
            max = lat;
        } else {
            max = max.max(lat);
            min = min.min(lat);
        }
        let elapsed = now - t;
        let label = if elapsed < 60 {
            format!("{elapsed}s")
        } else if elapsed < 3600 {
            format!("{}m", elapsed / 60)
        } else if elapsed < 3600 * 24 {
            format!("{}h", elapsed / 3600)
        } else {
            format!("{}d", elapsed / (3600 * 24))
        };
        seq.push((lat as f64, label));
    }
    let mut g = format!(
        "{} - high {} ms, low {} ms (all time high {} ms)\n",
        ev.name, max, min, ev.max
    );
    g.push_str(&"-".repeat(GRAPH_COLS));
    g.push('\n');
    g.push_str(&sparkline(&seq, GRAPH_COLS, 4));
    g
}

/// sparkline.c's `sparklineRender` with SPARKLINE_FILL: `rows` rows of
/// "_o#|" bars, then the labels written vertically under their column,
/// in chunks of `columns` samples.
pub fn sparkline(seq: &[(f64, String)], columns: usize, rows: usize) -> String {
    let mut out = String::new();
    if seq.is_empty() {
        return out;
    }
    let min = seq.iter().map(|s| s.0).fold(f64::INFINITY, f64::min);
    let max = seq.iter().map(|s| s.0).fold(f64::NEG_INFINITY, f64::max);
    let has_labels = seq.iter().any(|s| !s.1.is_empty());
    let mut j = 0;
    while j < seq.len() {
        let len = (seq.len() - j).min(columns);
        if j != 0 {
            out.push('\n');
        }
        render_range(&mut out, &seq[j..j + len], min, max, has_labels, rows);
        j += columns;
    }
    out
}

fn render_range(
    out: &mut String,
    seq: &[(f64, String)],
    min: f64,
    max: f64,
    has_labels: bool,
    rows: usize,
) {
    const FILL: &[u8] = b"_o#";
    const LABEL_MARGIN_TOP: usize = 1;
    let charset_len = FILL.len() as i64;
    let mut relmax = max - min;
    if relmax == 0.0 {
        relmax = 1.0;
    }
    let steps = charset_len * rows as i64;
    let mut row = 0usize;
    loop {
        let mut go = false;
        let mut chars = vec![b' '; seq.len()];
        for (j, (value, label)) in seq.iter().enumerate() {
            let relval = value - min;
            let mut step = (((relval * steps as f64) as i64) as f64 / relmax) as i64;
            step = step.clamp(0, steps - 1);
            if row < rows {
                let charidx = step - (rows - row - 1) as i64 * charset_len;
                go = true;
                if (0..charset_len).contains(&charidx) {
                    chars[j] = FILL[charidx as usize];
                } else if charidx >= charset_len {
                    chars[j] = b'|';
                }
            } else {
                if has_labels && row - rows < LABEL_MARGIN_TOP {
                    go = true;
                    break;
                }
                let label_char = row - rows - LABEL_MARGIN_TOP;
                if let Some(&c) = label.as_bytes().get(label_char) {
                    go = true;
                    chars[j] = c;
                }
            }
        }
        if !go {
            break;
        }
        row += 1;
        out.push_str(&String::from_utf8_lossy(&chars));
        out.push('\n');
    }
}

// ----- LATENCY DOCTOR -------------------------------------------------------------

/// What DOCTOR needs to know besides the events.
pub struct DoctorCtx {
    pub monitor_threshold_ms: u64,
    pub slowlog_us: i64,
    pub hz: i64,
    pub appendfsync_always: bool,
    pub anon_huge_pages: bool,
}

struct Stats {
    avg: u64,
    mad: u64,
    samples: usize,
    period: i64,
}

fn analyze(ev: &Merged, now: i64) -> Stats {
    let n = ev.samples.len();
    if n == 0 {
        return Stats {
            avg: 0,
            mad: 0,
            samples: 0,
            period: 0,
        };
    }
    let sum: u64 = ev.samples.iter().map(|s| s.1 as u64).sum();
    let avg = sum / n as u64;
    let oldest = ev.samples.iter().map(|s| s.0).min().unwrap_or(now);
    let mut period = now - oldest;
    if period == 0 {
        period = 1;
    }
    let mad: u64 = ev
        .samples
        .iter()
        .map(|s| (avg as i64 - s.1 as i64).unsigned_abs())
        .sum::<u64>()
        / n as u64;
    Stats {
        avg,
        mad,
        samples: n,
        period,
    }
}

/// LATENCY DOCTOR's report: the same analysis as Redis's (which events
/// lead to which suggestions), in ringkv's own words.
pub fn doctor(events: &[Merged], ctx: &DoctorCtx, now: i64) -> String {
    if events.is_empty() && ctx.monitor_threshold_ms == 0 {
        return "The latency monitor is off, so there is nothing to analyse. Turn it on with \"CONFIG SET latency-monitor-threshold <milliseconds>\" (events slower than that many milliseconds are then recorded); https://redis.io/topics/latency-monitor explains the feature.\n".into();
    }
    let mut r = String::new();
    let mut advices = 0;
    let (mut slowlog_enabled, mut slowlog_tuning, mut slowlog_inspect) = (false, false, false);
    let (mut scheduler, mut hz, mut large_objects, mut mass_eviction) =
        (false, false, false, false);
    let (mut local_disk, mut ssd, mut writeback, mut contention) = (false, false, false, false);
    let (mut no_appendfsync, mut relax_fsync, mut write_load) = (false, false, false);
    for (n, ev) in events.iter().enumerate() {
        if n == 0 {
            r.push_str("Latency spikes were recorded on this server. Per event:\n\n");
        }
        let ls = analyze(ev, now);
        r.push_str(&format!(
            "{}. {}: {} latency spikes (average {}ms, mean deviation {}ms, period {:.2} sec). Worst all time event {}ms.",
            n + 1,
            ev.name,
            ls.samples,
            ls.avg,
            ls.mad,
            ls.period as f64 / ls.samples.max(1) as f64,
            ev.max
        ));
        match ev.name.to_ascii_lowercase().as_str() {
            "command" => {
                if ctx.slowlog_us < 0 {
                    slowlog_enabled = true;
                    advices += 1;
                } else if (ctx.slowlog_us / 1000) as u64 > ctx.monitor_threshold_ms {
                    slowlog_tuning = true;
                    advices += 1;
                }
                slowlog_inspect = true;
                large_objects = true;
                advices += 2;
            }
            "fast-command" => {
                scheduler = true;
                advices += 1;
            }
            "aof-write-pending-fsync" => {
                (local_disk, contention, ssd, writeback) = (true, true, true, true);
                advices += 4;
            }
            "aof-write-active-child" => {
                (no_appendfsync, writeback, ssd) = (true, true, true);
                advices += 3;
            }
            "aof-write-alone" => {
                (local_disk, writeback, ssd) = (true, true, true);
                advices += 3;
            }
            "aof-fsync-always" => {
                relax_fsync = true;
                advices += 1;
            }
            "aof-fstat" | "rdb-unlink-temp-file" => {
                (contention, local_disk) = (true, true);
                advices += 2;
            }
            "aof-rewrite-diff-write" | "aof-rename" => {
                (write_load, writeback, ssd, local_disk) = (true, true, true, true);
                advices += 4;
            }
            "expire-cycle" => {
                (hz, large_objects) = (true, true);
                advices += 2;
            }
            "eviction-del" => {
                large_objects = true;
                advices += 1;
            }
            "eviction-cycle" => {
                mass_eviction = true;
                advices += 1;
            }
            _ => {}
        }
        r.push('\n');
    }
    if ctx.anon_huge_pages {
        advices += 1;
    }
    if events.is_empty() && advices == 0 {
        r.push_str(
            "No latency spike has been recorded since this server started: nothing to report.\n",
        );
        return r;
    }
    if !events.is_empty() && advices == 0 {
        r.push_str("\nThese events have no simple known remedy. When asking for help, include this report.\n");
        return r;
    }
    r.push_str("\nSuggestions:\n\n");
    let th_us = ctx.monitor_threshold_ms * 1000;
    if slowlog_enabled {
        r.push_str(&format!("- Some of the commands you run may be slow, but the slow log is off, so they are not recorded. Turn it on with 'CONFIG SET slowlog-log-slower-than {th_us}' to see which ones.\n"));
    }
    if slowlog_tuning {
        r.push_str(&format!("- The slow log threshold is higher than the latency monitor's, so slow commands the monitor saw may be missing from it. Lower it with 'CONFIG SET slowlog-log-slower-than {th_us}'.\n"));
    }
    if slowlog_inspect {
        r.push_str("- SLOWLOG GET lists the slowest recent commands with their arguments; see https://redis.io/commands/slowlog.\n");
    }
    if scheduler {
        r.push_str("- Work that makes no system call took long: the server's threads probably did not get the CPU. Things to check:\n  1) the load of the machine, and other programs sharing its CPUs (give the shards CPUs of their own with --cpus);\n  2) a noisy neighbour on a shared VM;\n  3) the machine's own latency, with 'redis-cli --intrinsic-latency 100'.\n");
    }
    if local_disk {
        r.push_str("- Keep snapshots on a local disk; network disks add long and unpredictable write delays.\n");
    }
    if ssd {
        r.push_str("- A faster disk (SSD) shortens fsync and snapshot writes; consider it only after the other suggestions.\n");
    }
    if writeback {
        r.push_str("- ext3/ext4 mounted with data=writeback writes faster than data=ordered, at the price of weaker guarantees after a crash.\n");
    }
    if contention {
        r.push_str("- Other disk-heavy processes on the machine (another server's persistence included) compete for the disk; reduce them.\n");
    }
    if no_appendfsync {
        r.push_str("- If your durability needs allow it, 'no-appendfsync-on-rewrite yes' skips fsync while a snapshot is being written, when the disk is busiest.\n");
    }
    if relax_fsync && ctx.appendfsync_always {
        r.push_str("- appendfsync is 'always', which puts an fsync in the path of every write; 'everysec' costs far less.\n");
    }
    if write_load {
        r.push_str("- Very high write load makes the end of a journal rewrite slow; fewer, larger commands (MSET, pipelines, transactions) reduce it.\n");
    }
    if hz && ctx.hz < 100 {
        r.push_str("- Active expiry runs in bigger steps at a low 'hz'; 'CONFIG SET hz 100' spreads it into smaller ones.\n");
    }
    if large_objects {
        r.push_str("- Freeing a very large value (by DEL, expiry or eviction) takes time proportional to its size; split values that are often freed into smaller keys.\n");
    }
    if mass_eviction {
        r.push_str("- A large drop of 'maxmemory', or commands that create big values at once (set and sorted-set STORE operations, SORT ... STORE, RESTORE of a big key), can force a long burst of evictions.\n");
    }
    if ctx.anon_huge_pages {
        r.push_str("- The process uses transparent huge pages, whose first touch can stall a command or a snapshot step for milliseconds. Keep 'disable-thp yes', or turn THP off system-wide ('echo never > /sys/kernel/mm/transparent_hugepage/enabled', also at boot); pages already mapped stay until the server restarts.\n");
    }
    r
}

/// Whether this process uses anonymous huge pages (Redis's
/// `THPGetAnonHugePagesSize() > 0`).
pub fn anon_huge_pages() -> bool {
    let text = std::fs::read_to_string("/proc/self/smaps_rollup")
        .or_else(|_| std::fs::read_to_string("/proc/self/smaps"))
        .unwrap_or_default();
    text.lines()
        .filter_map(|l| l.strip_prefix("AnonHugePages:"))
        .filter_map(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .any(|kb| kb > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sample_per_second_worst_wins() {
        let mut s = Series::new("command");
        s.add(100, 5);
        s.add(100, 9);
        s.add(100, 3);
        s.add(101, 2);
        assert_eq!(s.samples(), vec![(100, 9), (101, 2)]);
        assert_eq!(s.max, 9);
        for t in 0..200 {
            s.add(1000 + t, 1);
        }
        let v = s.samples();
        assert_eq!(v.len(), TS_LEN);
        assert_eq!(v[0].0, 1040);
    }

    #[test]
    fn merges_shards() {
        let a = Merged {
            name: "command".into(),
            samples: vec![(10, 5), (12, 7)],
            max: 7,
        };
        let b = Merged {
            name: "command".into(),
            samples: vec![(11, 1), (12, 9)],
            max: 20,
        };
        let c = Merged {
            name: "fast-command".into(),
            samples: vec![(11, 1)],
            max: 1,
        };
        let m = merge(vec![vec![a], vec![b, c]]);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].samples, vec![(10, 5), (11, 1), (12, 9)]);
        assert_eq!(m[0].max, 20);
        assert_eq!(m[0].latest(), (12, 9));
    }

    #[test]
    fn sparkline_as_redis() {
        let seq = vec![(10.0, "3s".to_string()), (20.0, "1s".to_string())];
        let g = sparkline(&seq, 80, 4);
        // 4 rows of bars, a blank margin row, then the labels vertically.
        assert_eq!(g, " #\n |\n |\n_|\n  \n31\nss\n");
        let ev = Merged {
            name: "command".into(),
            samples: vec![(97, 10), (99, 20)],
            max: 25,
        };
        let out = graph(&ev, 100);
        assert!(out.starts_with("command - high 20 ms, low 10 ms (all time high 25 ms)\n"));
    }

    #[test]
    fn doctor_texts() {
        let ctx = DoctorCtx {
            monitor_threshold_ms: 0,
            slowlog_us: 10000,
            hz: 10,
            appendfsync_always: false,
            anon_huge_pages: false,
        };
        assert!(doctor(&[], &ctx, 0).starts_with("The latency monitor is off"));
        let ctx = DoctorCtx {
            monitor_threshold_ms: 10,
            ..ctx
        };
        assert!(doctor(&[], &ctx, 0).starts_with("No latency spike has been recorded"));
        let ev = Merged {
            name: "command".into(),
            samples: vec![(98, 20)],
            max: 20,
        };
        let r = doctor(&[ev], &ctx, 100);
        assert!(r.contains("1. command: 1 latency spikes (average 20ms, mean deviation 0ms, period 2.00 sec). Worst all time event 20ms."), "{r}");
        assert!(r.contains("- SLOWLOG GET lists the slowest"), "{r}");
    }
}
