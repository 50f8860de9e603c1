//! Latency observability commands: LATENCY (the latency monitor and the
//! per-command histograms), SLOWLOG and MONITOR.
//!
//! Redis 7.0 (latency.c, slowlog.c, replication.c) is the reference for
//! reply shapes and texts. The data is kept per shard (src/metrics);
//! every read gathers all shards with one `Shard::on_all` round and
//! merges, so the replies describe the whole server.

use crate::cmd::{
    find_sub, help_reply, CmdSpec, Run, SrvCtx, SubSpec, ADMIN, LOADING, NOSCRIPT, STALE,
};
use crate::metrics::{self, events, hist, slowlog, SlowEntry};
use crate::shard::Shard;
use crate::sub;
use crate::util::parse_i64;

const ADMIN_ACL: &str = "@admin @slow @dangerous";
const LAT_FLAGS: u32 = ADMIN | NOSCRIPT | LOADING | STALE;
const SLOW_FLAGS: u32 = ADMIN | LOADING | STALE;

#[rustfmt::skip]
const LATENCY_SUBS: &[SubSpec] = &[
    sub!("doctor", 2, LAT_FLAGS, ADMIN_ACL, "Return a human readable latency analysis report."),
    sub!("graph", 3, LAT_FLAGS, ADMIN_ACL, "Return a latency graph for the event."),
    sub!("help", 2, LOADING | STALE, "@slow", "Show helpful text about the different subcommands."),
    sub!("histogram", -2, LAT_FLAGS, ADMIN_ACL,
        "Return the cumulative distribution of latencies of a subset of commands or all."),
    sub!("history", 3, LAT_FLAGS, ADMIN_ACL, "Return timestamp-latency samples for the event."),
    sub!("latest", 2, LAT_FLAGS, ADMIN_ACL, "Return the latest latency samples for all events."),
    sub!("reset", -2, LAT_FLAGS, ADMIN_ACL, "Reset latency data for one or more events."),
];

#[rustfmt::skip]
const SLOWLOG_SUBS: &[SubSpec] = &[
    sub!("get", -2, SLOW_FLAGS, ADMIN_ACL, "Get the slow log's entries"),
    sub!("help", 2, LOADING | STALE, "@slow", "Show helpful text about the different subcommands"),
    sub!("len", 2, SLOW_FLAGS, ADMIN_ACL, "Get the slow log's length"),
    sub!("reset", 2, SLOW_FLAGS, ADMIN_ACL, "Clear all entries from the slow log"),
];

/// A keyless "server" group CmdSpec.
macro_rules! spec {
    ($name:expr, $arity:expr, $flags:expr, $acl:expr, $since:expr, $run:expr, $subs:expr,
     $summary:expr) => {
        CmdSpec {
            name: $name,
            arity: $arity,
            flags: $flags,
            first_key: 0,
            last_key: 0,
            step: 0,
            group: "server",
            acl: $acl,
            summary: $summary,
            since: $since,
            run: $run,
            subs: $subs,
            getkeys: None,
        }
    };
}

#[rustfmt::skip]
pub static COMMANDS: &[CmdSpec] = &[
    spec!("latency", -2, 0, "@slow", "2.8.13", Run::Srv(latency_cmd), LATENCY_SUBS,
        "A container for latency diagnostics commands"),
    spec!("slowlog", -2, 0, "@slow", "2.2.12", Run::Srv(slowlog_cmd), SLOWLOG_SUBS,
        "A container for slow log commands"),
    spec!("monitor", 1, ADMIN | NOSCRIPT | LOADING | STALE, ADMIN_ACL, "1.0.0",
        Run::Srv(monitor_cmd), &[], "Listen for all requests received by the server in real time"),
];

// ----- LATENCY -------------------------------------------------------------------

const LATENCY_HELP: &[&str] = &[
    "DOCTOR",
    "    Return a human readable latency analysis report.",
    "GRAPH <event>",
    "    Return an ASCII latency graph for the <event> class.",
    "HISTORY <event>",
    "    Return time-latency samples for the <event> class.",
    "LATEST",
    "    Return the latest latency samples for all events.",
    "RESET [<event> ...]",
    "    Reset latency data of one or more <event> classes.",
    "    (default: reset all data for all event classes)",
    "HISTOGRAM [COMMAND ...]",
    "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
    "    If no commands are specified then all histograms are replied.",
];

fn now_s() -> i64 {
    crate::util::now_ms() as i64 / 1000
}

/// Every shard's latency monitor series, merged per event.
fn gather_events(sh: &mut Shard) -> Vec<events::Merged> {
    let per_shard = sh.on_all(|sh: &mut Shard| {
        sh.metrics
            .events
            .iter()
            .map(|s| s.snapshot())
            .collect::<Vec<_>>()
    });
    events::merge(per_shard)
}

fn latency_cmd(ctx: &mut SrvCtx, args: &[&[u8]]) {
    let Some(sub) = find_sub(&mut ctx.out, LATENCY_SUBS, args) else {
        return;
    };
    match sub.name {
        "histogram" => latency_histogram(ctx, args),
        "latest" => {
            let evs = gather_events(ctx.sh);
            ctx.out.array(evs.len());
            for e in &evs {
                let (t, lat) = e.latest();
                ctx.out.array(4);
                ctx.out.bulk(e.name.as_bytes());
                ctx.out.int(t);
                ctx.out.int(lat as i64);
                ctx.out.int(e.max as i64);
            }
        }
        "history" => {
            let evs = gather_events(ctx.sh);
            match evs.iter().find(|e| e.name.as_bytes() == args[2]) {
                None => ctx.out.array(0),
                Some(e) => {
                    ctx.out.array(e.samples.len());
                    for &(t, lat) in &e.samples {
                        ctx.out.array(2);
                        ctx.out.int(t);
                        ctx.out.int(lat as i64);
                    }
                }
            }
        }
        "graph" => {
            let evs = gather_events(ctx.sh);
            match evs.iter().find(|e| e.name.as_bytes() == args[2]) {
                None => ctx.out.err(&format!(
                    "No samples available for event '{}'",
                    String::from_utf8_lossy(args[2])
                )),
                Some(e) => ctx.out.verbatim(events::graph(e, now_s()).as_bytes()),
            }
        }
        "doctor" => {
            let evs = gather_events(ctx.sh);
            let dctx = {
                let c = ctx.sh.g.config.read().unwrap_or_else(|e| e.into_inner());
                events::DoctorCtx {
                    monitor_threshold_ms: metrics::monitor_threshold_ms(),
                    slowlog_us: metrics::slowlog_threshold_us(),
                    hz: c.get_i64("hz"),
                    appendfsync_always: c.get("appendfsync") == "always",
                    anon_huge_pages: events::anon_huge_pages(),
                }
            };
            let report = events::doctor(&evs, &dctx, now_s());
            ctx.out.verbatim(report.as_bytes());
        }
        "reset" => {
            // None = every event; otherwise names matched without case.
            let names: Option<Vec<String>> = (args.len() > 2).then(|| {
                args[2..]
                    .iter()
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect()
            });
            let wanted = names.clone();
            let removed = ctx.sh.on_all(move |sh: &mut Shard| {
                let mut gone = Vec::new();
                sh.metrics.events.retain(|s| {
                    let hit = match &wanted {
                        None => true,
                        Some(w) => w.iter().any(|n| n.eq_ignore_ascii_case(s.name)),
                    };
                    if hit {
                        gone.push(s.name);
                    }
                    !hit
                });
                gone
            });
            let mut left: Vec<&str> = removed.into_iter().flatten().collect();
            left.sort_unstable();
            left.dedup();
            // Count as Redis does: each argument resets what is still there.
            let count = match names {
                None => left.len(),
                Some(names) => {
                    let mut n = 0;
                    for name in &names {
                        let before = left.len();
                        left.retain(|e| !e.eq_ignore_ascii_case(name));
                        n += before - left.len();
                    }
                    n
                }
            };
            ctx.out.int(count as i64);
        }
        _ => help_reply(&mut ctx.out, "LATENCY", LATENCY_HELP),
    }
}

/// LATENCY HISTOGRAM [command ...]: per command, its call count and the
/// cumulative distribution of its latencies over power-of-two µs buckets.
fn latency_histogram(ctx: &mut SrvCtx, args: &[&[u8]]) {
    let layout = metrics::layout();
    // The reply order: every command with data, or the requested ones in
    // argument order (a container name brings its subcommands).
    let order: Option<Vec<usize>> =
        (args.len() > 2).then(|| args[2..].iter().flat_map(|a| layout.lookup(a)).collect());
    let filter = order.clone().map(|mut v| {
        v.sort_unstable();
        v.dedup();
        v
    });
    let merged = metrics::gather_histograms(ctx.sh, filter);
    let list: Vec<(usize, &hist::Hist)> = match &order {
        None => merged.iter().map(|(s, h)| (*s, h)).collect(),
        Some(o) => o
            .iter()
            .filter_map(|s| merged.iter().find(|(m, _)| m == s).map(|(m, h)| (*m, h)))
            .collect(),
    };
    ctx.out.map(list.len());
    for (slot, h) in list {
        ctx.out.bulk(layout.names[slot].as_bytes());
        ctx.out.map(2);
        ctx.out.bulk(b"calls");
        ctx.out.int(h.len() as i64);
        ctx.out.bulk(b"histogram_usec");
        let cdf = hist::cdf(h);
        ctx.out.map(cdf.len());
        for (us, count) in cdf {
            ctx.out.int(us as i64);
            ctx.out.int(count as i64);
        }
    }
}

// ----- SLOWLOG -------------------------------------------------------------------

const SLOWLOG_HELP: &[&str] = &[
    "GET [<count>]",
    "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
    "    Entries are made of:",
    "    id, timestamp, time in microseconds, arguments array, client IP and port,",
    "    client name",
    "LEN",
    "    Return the length of the slowlog.",
    "RESET",
    "    Reset the slowlog.",
];

fn slowlog_cmd(ctx: &mut SrvCtx, args: &[&[u8]]) {
    let Some(sub) = find_sub(&mut ctx.out, SLOWLOG_SUBS, args) else {
        return;
    };
    let max = metrics::slowlog_max_len();
    match sub.name {
        "get" => {
            if args.len() > 3 {
                return ctx.out.err(&format!(
                    "unknown subcommand or wrong number of arguments for '{}'. Try SLOWLOG HELP.",
                    String::from_utf8_lossy(args[1])
                ));
            }
            let count = match args.get(2).map(|a| parse_i64(a)) {
                None => 10,
                Some(Some(-1)) => max,
                Some(Some(n)) if n >= 0 => (n as u64).min(usize::MAX as u64) as usize,
                Some(_) => return ctx.out.err("count should be greater than or equal to -1"),
            };
            let n = count.min(max);
            let logs = ctx.sh.on_all(move |sh: &mut Shard| {
                sh.metrics
                    .slowlog
                    .iter()
                    .take(n)
                    .cloned()
                    .collect::<Vec<SlowEntry>>()
            });
            let entries = slowlog::merge(logs, n);
            ctx.out.array(entries.len());
            for e in &entries {
                ctx.out.array(6);
                ctx.out.int(e.id as i64);
                ctx.out.int(e.time);
                ctx.out.int(e.duration_us as i64);
                ctx.out.array(e.args.len());
                for a in &e.args {
                    ctx.out.bulk(a);
                }
                ctx.out.bulk(e.addr.as_bytes());
                ctx.out.bulk(&e.name);
            }
        }
        "len" => {
            let lens = ctx.sh.on_all(|sh: &mut Shard| sh.metrics.slowlog.len());
            ctx.out.int(lens.iter().sum::<usize>().min(max) as i64);
        }
        "reset" => {
            ctx.sh.on_all(|sh: &mut Shard| sh.metrics.slowlog.clear());
            ctx.out.ok();
        }
        _ => help_reply(&mut ctx.out, "SLOWLOG", SLOWLOG_HELP),
    }
}

// ----- MONITOR -------------------------------------------------------------------

fn monitor_cmd(ctx: &mut SrvCtx, _args: &[&[u8]]) {
    let Some(idx) = ctx.sh.current_idx() else {
        return ctx.out.err("MONITOR is not available here");
    };
    // A client already monitoring gets no reply, as in Redis.
    if metrics::monitor::register(ctx.sh, ctx.conn, idx) {
        ctx.out.ok();
    }
}
