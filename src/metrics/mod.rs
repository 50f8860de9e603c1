//! Per-shard latency metrics: per-command latency histograms (INFO
//! latencystats, LATENCY HISTOGRAM), SLOWLOG, the latency monitor
//! (LATENCY LATEST/HISTORY/...) and MONITOR feeds.
//!
//! Everything is recorded by the shard that ran the command, with no
//! locking; readers gather the shards' state with one `Shard::on_all`
//! round and merge it (`src/cmd/latency.rs`, INFO).
//!
//! The hot path is [`Metrics::on_command`]: two relaxed atomic loads and
//! compares when tracking is off, plus one histogram increment when it is
//! on. The settings it reads (latency-tracking, slowlog-log-slower-than,
//! latency-monitor-threshold, slowlog-max-len) live in process-wide atomics
//! that [`load_config`] refreshes whenever a shard re-reads the
//! configuration (start-up and CONFIG SET).

pub mod events;
pub mod hist;
pub mod monitor;
pub mod slowlog;

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;

use crate::cmd::{self, CmdSpec, SubSpec};
use crate::config::Config;
use crate::conn::Conn;
use crate::shard::Shard;

pub use events::Series;
pub use hist::{Counts, Hist};
pub use monitor::feed_monitors;
pub use slowlog::SlowEntry;

// ----- settings ----------------------------------------------------------------

/// `latency-tracking`.
static TRACKING: AtomicBool = AtomicBool::new(true);
/// Commands at least this slow (ns) take the slow path (slowlog and/or
/// latency monitor); `u64::MAX` when both are off.
static COLD_NS: AtomicU64 = AtomicU64::new(10_000 * 1000);
/// `slowlog-log-slower-than` (µs; negative = off).
static SLOWLOG_US: AtomicI64 = AtomicI64::new(10_000);
/// `slowlog-max-len`.
static SLOWLOG_MAX: AtomicU64 = AtomicU64::new(128);
/// `latency-monitor-threshold` (ms; 0 = off).
static MONITOR_MS: AtomicU64 = AtomicU64::new(0);

/// Re-reads the settings the hot path needs. Called by
/// `Global::shard_cfg` (every shard at start-up and after CONFIG SET).
pub fn load_config(c: &Config) {
    let slow = c.get_i64("slowlog-log-slower-than");
    let mon = c.get_i64("latency-monitor-threshold").max(0) as u64;
    TRACKING.store(c.get_bool("latency-tracking"), Relaxed);
    SLOWLOG_US.store(slow, Relaxed);
    SLOWLOG_MAX.store(c.get_i64("slowlog-max-len").max(0) as u64, Relaxed);
    MONITOR_MS.store(mon, Relaxed);
    let slow_ns = if slow < 0 {
        u64::MAX
    } else {
        (slow as u64).saturating_mul(1000)
    };
    let mon_ns = if mon == 0 {
        u64::MAX
    } else {
        mon.saturating_mul(1_000_000)
    };
    COLD_NS.store(slow_ns.min(mon_ns), Relaxed);
}

/// Whether per-command histograms are being recorded.
pub fn tracking_enabled() -> bool {
    TRACKING.load(Relaxed)
}

/// `latency-monitor-threshold` in ms (0 = the latency monitor is off).
/// Subsystems may skip timing work altogether when it is 0.
pub fn monitor_threshold_ms() -> u64 {
    MONITOR_MS.load(Relaxed)
}

/// `slowlog-log-slower-than` in µs (negative = off).
pub fn slowlog_threshold_us() -> i64 {
    SLOWLOG_US.load(Relaxed)
}

/// `slowlog-max-len`.
pub fn slowlog_max_len() -> usize {
    SLOWLOG_MAX.load(Relaxed) as usize
}

// ----- histogram slots -----------------------------------------------------------

/// Where each command's histogram lives: one slot per command, plus one
/// per subcommand of a container (CONFIG|SET ...), as Redis keeps them.
pub struct Layout {
    /// Per command index: its own slot and its number of subcommands
    /// (sub `i` is at `slot + 1 + i`).
    cmds: Vec<(u32, u32)>,
    /// Per slot: the full name ("get", "config|set") and command flags.
    pub names: Vec<String>,
    pub flags: Vec<u32>,
}

impl Layout {
    fn build() -> Layout {
        let t = cmd::table();
        let mut l = Layout {
            cmds: Vec::with_capacity(t.list.len()),
            names: Vec::new(),
            flags: Vec::new(),
        };
        for c in &t.list {
            let slot = l.names.len() as u32;
            l.cmds.push((slot, c.subs.len() as u32));
            l.names.push(c.name.to_string());
            l.flags.push(c.flags);
            for s in c.subs {
                l.names.push(format!("{}|{}", c.name, s.name));
                l.flags.push(s.flags);
            }
        }
        l
    }

    /// The slot recording command `cmd` called with `args`; None for a
    /// container whose subcommand does not exist (Redis rejects those
    /// before running them, so they are not recorded).
    #[inline]
    pub fn slot(&self, cmd: u16, args: &[&[u8]]) -> Option<usize> {
        let &(slot, nsubs) = self.cmds.get(cmd as usize)?;
        if nsubs == 0 {
            return Some(slot as usize);
        }
        let spec = cmd::table().list.get(cmd as usize)?;
        match resolve_sub(spec, args) {
            Resolved::Sub(i, _) => Some(slot as usize + 1 + i),
            _ => None,
        }
    }

    /// Slots for a LATENCY HISTOGRAM argument: "get", "config|set", or a
    /// container name (its own slot, then every subcommand's).
    pub fn lookup(&self, name: &[u8]) -> Vec<usize> {
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        if name.contains('|') {
            return self
                .names
                .iter()
                .position(|n| *n == name)
                .into_iter()
                .collect();
        }
        let Some((ci, _)) = cmd::table().get(name.as_bytes()) else {
            return Vec::new();
        };
        let (slot, nsubs) = self.cmds[ci as usize];
        (slot as usize..=(slot + nsubs) as usize).collect()
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// What a call runs, as Redis resolves it before running anything.
pub enum Resolved {
    /// A command without subcommands.
    Plain,
    /// A container's subcommand (its index in `subs`, and its spec).
    Sub(usize, &'static SubSpec),
    /// A container call whose subcommand does not exist or has the wrong
    /// arity: Redis rejects it before running it, so it is not recorded,
    /// not logged and not shown to MONITOR.
    Rejected,
}

#[cold]
pub fn resolve_sub(spec: &'static CmdSpec, args: &[&[u8]]) -> Resolved {
    if spec.subs.is_empty() {
        return Resolved::Plain;
    }
    let Some(a) = args.get(1) else {
        return Resolved::Rejected;
    };
    let Some((i, sub)) = spec
        .subs
        .iter()
        .enumerate()
        .find(|(_, s)| crate::util::eq_ic(a, s.name))
    else {
        return Resolved::Rejected;
    };
    let (arity, n) = (sub.arity, args.len() as i32);
    if (arity >= 0 && n != arity) || (arity < 0 && n < -arity) {
        return Resolved::Rejected;
    }
    Resolved::Sub(i, sub)
}

static LAYOUT: OnceLock<Layout> = OnceLock::new();

pub fn layout() -> &'static Layout {
    LAYOUT.get_or_init(Layout::build)
}

/// The command flags Redis would look at for this call: the subcommand's
/// for a container (CONFIG SET is admin, CONFIG is not); None when Redis
/// would have rejected the call before running it (see [`resolve_sub`]).
pub fn effective_flags(spec: &'static CmdSpec, args: &[&[u8]]) -> Option<u32> {
    match resolve_sub(spec, args) {
        Resolved::Plain => Some(spec.flags),
        Resolved::Sub(_, sub) => Some(sub.flags),
        Resolved::Rejected => None,
    }
}

// ----- per-shard state -----------------------------------------------------------

/// Per-shard metrics state.
pub struct Metrics {
    layout: &'static Layout,
    /// Latency histogram counts by slot, created on first use.
    hists: Vec<Option<Box<Counts>>>,
    /// This shard's slow log, newest first.
    pub slowlog: std::collections::VecDeque<SlowEntry>,
    /// Latency monitor time series, one per event.
    pub events: Vec<Series>,
}

impl Default for Metrics {
    fn default() -> Self {
        let layout = layout();
        Metrics {
            layout,
            hists: (0..layout.len()).map(|_| None).collect(),
            slowlog: Default::default(),
            events: Vec::new(),
        }
    }
}

impl Metrics {
    /// Called by dispatch after every executed command with its index in
    /// `cmd::table().list`, its execution time and its arguments.
    #[inline]
    pub fn on_command(&mut self, cmd: u16, ns: u64, args: &[&[u8]], conn: &Conn) {
        if TRACKING.load(Relaxed) {
            self.record(cmd, ns, args);
        }
        if ns >= COLD_NS.load(Relaxed) {
            let entry = self.slow_command(cmd, ns, args);
            if let Some(mut e) = entry {
                e.set_client(conn);
                self.push_slowlog(e);
            }
        }
    }

    /// Records one call in the command's latency histogram: an array
    /// increment once the histogram exists.
    #[inline]
    fn record(&mut self, cmd: u16, ns: u64, args: &[&[u8]]) {
        if let Some(&(slot, 0)) = self.layout.cmds.get(cmd as usize) {
            if let Some(Some(c)) = self.hists.get_mut(slot as usize) {
                hist::record(c, ns);
                return;
            }
        }
        self.record_slow(cmd, ns, args);
    }

    /// A container's subcommand, or a histogram's first call.
    #[cold]
    #[inline(never)]
    fn record_slow(&mut self, cmd: u16, ns: u64, args: &[&[u8]]) {
        let Some(slot) = self.layout.slot(cmd, args) else {
            return;
        };
        if let Some(h) = self.hists.get_mut(slot) {
            hist::record(h.get_or_insert_with(hist::new_counts), ns);
        }
    }

    /// The slow path: a latency monitor sample and/or a slow log entry
    /// (returned without its client fields, which the caller fills).
    #[cold]
    fn slow_command(&mut self, cmd: u16, ns: u64, args: &[&[u8]]) -> Option<SlowEntry> {
        let spec = cmd::table().list.get(cmd as usize)?;
        let flags = effective_flags(spec, args)?;
        let ms = ns / 1_000_000;
        let event = if flags & cmd::FAST != 0 {
            "fast-command"
        } else {
            "command"
        };
        self.add_event(event, ms);
        let us = ns / 1000;
        let th = SLOWLOG_US.load(Relaxed);
        if th < 0 || us < th as u64 || spec.name == "exec" {
            return None;
        }
        Some(SlowEntry::new(spec.name, args, us))
    }

    /// Adds an entry to this shard's slow log, trimming it to
    /// slowlog-max-len.
    pub fn push_slowlog(&mut self, e: SlowEntry) {
        self.slowlog.push_front(e);
        let max = slowlog_max_len();
        while self.slowlog.len() > max {
            self.slowlog.pop_back();
        }
    }

    /// Adds a latency sample of `ms` milliseconds for `event` if the
    /// latency monitor is on and `ms` reaches latency-monitor-threshold
    /// (Redis's `latencyAddSampleIfNeeded`). For other subsystems: the
    /// expire cycle, snapshots, ... ("expire-cycle", "fork", ...).
    pub fn add_event(&mut self, name: &'static str, ms: u64) {
        let th = MONITOR_MS.load(Relaxed);
        if th == 0 || ms < th {
            return;
        }
        self.add_sample(name, ms);
    }

    /// Adds a latency sample unconditionally (Redis's `latencyAddSample`).
    pub fn add_sample(&mut self, name: &'static str, ms: u64) {
        let now = crate::util::now_ms() as i64 / 1000;
        let lat = ms.min(u32::MAX as u64) as u32;
        match self.events.iter_mut().find(|s| s.name == name) {
            Some(s) => s.add(now, lat),
            None => {
                let mut s = Series::new(name);
                s.add(now, lat);
                self.events.push(s);
            }
        }
    }

    /// Copies of the histogram counts with data, restricted to `slots`
    /// when given.
    pub fn histograms(&self, slots: Option<&[usize]>) -> Vec<(usize, Box<Counts>)> {
        let pick = |i: usize| {
            self.hists
                .get(i)
                .and_then(|h| h.as_ref())
                .map(|h| (i, h.clone()))
        };
        match slots {
            Some(s) => s.iter().filter_map(|&i| pick(i)).collect(),
            None => (0..self.hists.len()).filter_map(pick).collect(),
        }
    }

    /// Drops every histogram (CONFIG RESETSTAT).
    pub fn reset_histograms(&mut self) {
        for h in &mut self.hists {
            *h = None;
        }
    }
}

/// A command that ran on this shard for a client of shard `origin` (a
/// hop): records it here, and sends a slow log entry to the client's
/// shard, which knows the client's address and name.
#[inline]
pub fn on_hop(
    sh: &mut Shard,
    cmd: u16,
    ns: u64,
    args: &[&[u8]],
    origin: usize,
    idx: u32,
    gen: u32,
) {
    if TRACKING.load(Relaxed) {
        sh.metrics.record(cmd, ns, args);
    }
    if ns >= COLD_NS.load(Relaxed) {
        hop_slow(sh, cmd, ns, args, origin, idx, gen);
    }
}

#[cold]
fn hop_slow(sh: &mut Shard, cmd: u16, ns: u64, args: &[&[u8]], origin: usize, idx: u32, gen: u32) {
    let Some(mut e) = sh.metrics.slow_command(cmd, ns, args) else {
        return;
    };
    sh.post(origin, move |sh: &mut Shard| {
        if let Some(Some(c)) = sh.conns.get(idx as usize) {
            if c.gen == gen {
                e.set_client(c);
            }
        }
        sh.metrics.push_slowlog(e);
    });
}

/// Gathers every shard's histograms (restricted to `slots` when given)
/// and merges them per slot, in slot order.
pub fn gather_histograms(sh: &mut Shard, slots: Option<Vec<usize>>) -> Vec<(usize, Hist)> {
    let per_shard = sh.on_all(move |sh: &mut Shard| sh.metrics.histograms(slots.as_deref()));
    let mut merged: std::collections::BTreeMap<usize, Box<Counts>> = Default::default();
    for list in per_shard {
        for (slot, c) in list {
            match merged.get_mut(&slot) {
                Some(m) => hist::add(m, &c),
                None => {
                    merged.insert(slot, c);
                }
            }
        }
    }
    merged
        .into_iter()
        .map(|(slot, c)| (slot, hist::to_hist(&c)))
        .collect()
}

/// The body of INFO's `# Latencystats` section (Redis prints only the
/// header when latency-tracking is off): one
/// `latency_percentiles_usec_<cmd>:p50=..,p99=..,p99.9=..` line per
/// command with data, using latency-tracking-info-percentiles.
pub fn info_latencystats(sh: &mut Shard) -> String {
    let mut s = String::from("# Latencystats\r\n");
    if !tracking_enabled() {
        return s;
    }
    let percentiles: Vec<f64> = {
        let c = sh.g.config.read().unwrap_or_else(|e| e.into_inner());
        c.get("latency-tracking-info-percentiles")
            .split_whitespace()
            .filter_map(|p| p.parse::<f64>().ok())
            .collect()
    };
    let l = layout();
    for (slot, h) in gather_histograms(sh, None) {
        s.push_str(&hist::percentile_line(&l.names[slot], &h, &percentiles));
    }
    s
}
