//! MEMORY (USAGE, STATS, DOCTOR, MALLOC-STATS, PURGE, HELP) and the memory
//! figures INFO memory shares with it: what the keyspaces' tables cost
//! (overhead), what the data costs (dataset) and what the allocator holds.

use crate::cmd::{self, SrvCtx};
use crate::resp::Out;
use crate::shard::dict::Dict;
use crate::shard::Shard;
use crate::types::Value;
use crate::util::{eq_ic, parse_i64};

/// One database's table overheads on one shard.
#[derive(Clone, Copy, Debug, Default)]
pub struct DbMem {
    pub keys: u64,
    /// The main table's buckets and entries, values' own bytes excluded.
    pub main: u64,
    /// The expiry table's buckets and entries.
    pub expires: u64,
}

/// What one shard holds besides the data itself.
#[derive(Clone, Debug, Default)]
pub struct MemFig {
    /// Per database (index = db).
    pub dbs: Vec<DbMem>,
    /// Connections' structures and buffers.
    pub clients: u64,
}

/// mimalloc's block for `n` bytes (small size classes are multiples of
/// 16 at this scale; what matters is not to report less than is held).
fn rounded(n: usize) -> u64 {
    n.div_ceil(16) as u64 * 16
}

/// A table's own cost: its bucket array and one node per entry (link,
/// hash, inline key and the value's fixed part).
fn dict_overhead<V>(d: &Dict<V>) -> u64 {
    const NODE_FIXED: usize = 8 + 8 + 24;
    d.bucket_count() as u64 * 8 + d.len() as u64 * rounded(NODE_FIXED + std::mem::size_of::<V>())
}

/// This shard's figures (runs on the shard's thread).
pub fn mem_fig(sh: &Shard) -> MemFig {
    let dbs = sh
        .ks
        .dbs
        .iter()
        .map(|d| DbMem {
            keys: d.main.len() as u64,
            main: dict_overhead::<Value>(&d.main),
            expires: dict_overhead::<u64>(&d.expires),
        })
        .collect();
    let clients = sh
        .conns
        .iter()
        .flatten()
        .map(|c| {
            (std::mem::size_of::<crate::conn::Conn>()
                + c.rbuf.capacity()
                + c.wbuf.capacity()
                + c.sending.capacity()) as u64
        })
        .sum();
    MemFig { dbs, clients }
}

/// The process-wide breakdown, from every shard's figures.
#[derive(Clone, Debug, Default)]
pub struct MemReport {
    pub used: u64,
    pub peak: u64,
    pub startup: u64,
    pub rss: u64,
    pub clients: u64,
    /// Per database, summed over shards.
    pub dbs: Vec<DbMem>,
    pub overhead: u64,
    pub dataset: u64,
    pub keys: u64,
    /// The allocator's view: live blocks, committed pages, resident pages.
    pub allocated: u64,
    pub active: u64,
    pub resident: u64,
}

impl MemReport {
    pub fn new<'a>(figs: impl Iterator<Item = &'a MemFig>, used: u64, peak: u64) -> MemReport {
        let mut r = MemReport {
            used,
            peak,
            startup: crate::alloc::startup_memory(),
            rss: crate::alloc::rss_bytes(),
            ..Default::default()
        };
        for f in figs {
            r.clients += f.clients;
            if r.dbs.len() < f.dbs.len() {
                r.dbs.resize(f.dbs.len(), DbMem::default());
            }
            for (t, d) in r.dbs.iter_mut().zip(&f.dbs) {
                t.keys += d.keys;
                t.main += d.main;
                t.expires += d.expires;
            }
        }
        r.keys = r.dbs.iter().map(|d| d.keys).sum();
        let tables: u64 = r.dbs.iter().map(|d| d.main + d.expires).sum();
        r.overhead = r.startup + r.clients + tables;
        r.dataset = used.saturating_sub(r.overhead);
        // mimalloc reports the pages it has committed (active); it keeps no
        // count of the touched ones, so resident is that figure bounded by
        // the process's resident size.
        r.allocated = used;
        r.active = crate::alloc::allocator_committed().max(used);
        r.resident = r.active.min(r.rss.max(used));
        r
    }

    /// The share of the memory above start-up that is data (percent).
    pub fn dataset_perc(&self) -> f64 {
        let net = self.used.saturating_sub(self.startup);
        if net == 0 {
            0.0
        } else {
            self.dataset as f64 * 100.0 / net as f64
        }
    }

    pub fn peak_perc(&self) -> f64 {
        ratio(self.used, self.peak) * 100.0
    }
}

/// a / b, 0 when b is 0.
pub fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

fn diff(a: u64, b: u64) -> i64 {
    a as i64 - b as i64
}

/// The breakdown over all shards (MEMORY STATS, MEMORY DOCTOR).
fn report(ctx: &mut SrvCtx) -> MemReport {
    let figs = ctx.sh.on_all(|sh: &mut Shard| mem_fig(sh));
    let (used, peak) = super::server::used_and_peak();
    MemReport::new(figs.iter(), used, peak)
}

const MEMORY_HELP: &[&str] = &[
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "STATS",
    "    Return information about the memory usage of the server.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
];

/// MEMORY runs on the connection's shard: USAGE asks its key's shard,
/// STATS and PURGE visit every shard.
pub fn memory_cmd(ctx: &mut SrvCtx, args: &[&[u8]]) {
    let Some(sub) = cmd::find_sub(&mut ctx.out, super::server::MEMORY_SUBS, args) else {
        return;
    };
    match sub.name {
        "usage" => usage(ctx, args),
        "doctor" => {
            let r = report(ctx);
            ctx.out.verbatim(doctor(&r).as_bytes());
        }
        "malloc-stats" => ctx.out.verbatim(crate::alloc::malloc_stats().as_bytes()),
        "purge" => {
            // mimalloc's heaps belong to threads: each shard returns its
            // own free pages. Other threads' heaps are left as they are.
            ctx.sh.on_all(|_: &mut Shard| crate::alloc::purge_thread());
            ctx.out.ok();
        }
        "stats" => {
            let r = report(ctx);
            stats_reply(&mut ctx.out, &r);
        }
        _ => cmd::help_reply(&mut ctx.out, "MEMORY", MEMORY_HELP),
    }
}

/// MEMORY USAGE key [SAMPLES n]. The size is computed from every element
/// (the allocation sizes are known), so SAMPLES is validated and accepted
/// but never makes the answer an estimate.
fn usage(ctx: &mut SrvCtx, args: &[&[u8]]) {
    let mut j = 3;
    while j < args.len() {
        if eq_ic(args[j], "samples") && j + 1 < args.len() {
            match parse_i64(args[j + 1]) {
                None => return ctx.out.not_int(),
                Some(n) if n < 0 => return ctx.out.syntax(),
                Some(_) => {}
            }
            j += 2;
        } else {
            return ctx.out.syntax();
        }
    }
    let key = args[2].to_vec();
    let db = ctx.conn.db;
    let s = ctx.sh.shard_of(&key);
    let n = ctx.sh.tx(&[s], move |tx| {
        tx.run(s, move |sh: &mut Shard| {
            // peek expires a stale key without counting a hit or a miss.
            sh.ks.peek(db, &key)?;
            sh.ks.usage(db, &key)
        })
    });
    match n {
        Some(n) => ctx.out.int(n as i64),
        None => ctx.out.null(),
    }
}

/// MEMORY STATS: Redis 7.0's fields, in its order.
fn stats_reply(out: &mut Out, r: &MemReport) {
    let used_dbs: Vec<(usize, &DbMem)> = r
        .dbs
        .iter()
        .enumerate()
        .filter(|(_, d)| d.keys > 0)
        .collect();
    out.map(27 + used_dbs.len());
    let int = |out: &mut Out, k: &str, v: i64| {
        out.bulk(k.as_bytes());
        out.int(v);
    };
    let dbl = |out: &mut Out, k: &str, v: f64| {
        out.bulk(k.as_bytes());
        out.double(v);
    };
    int(out, "peak.allocated", r.peak as i64);
    int(out, "total.allocated", r.used as i64);
    int(out, "startup.allocated", r.startup as i64);
    int(out, "replication.backlog", 0);
    int(out, "clients.slaves", 0);
    int(out, "clients.normal", r.clients as i64);
    int(out, "cluster.links", 0);
    int(out, "aof.buffer", 0);
    int(out, "lua.caches", 0);
    int(out, "functions.caches", 0);
    for (i, d) in used_dbs {
        out.bulk(format!("db.{i}").as_bytes());
        out.map(3);
        int(out, "overhead.hashtable.main", d.main as i64);
        int(out, "overhead.hashtable.expires", d.expires as i64);
        int(out, "overhead.hashtable.slot-to-keys", 0);
    }
    int(out, "overhead.total", r.overhead as i64);
    int(out, "keys.count", r.keys as i64);
    let net = r.used.saturating_sub(r.startup);
    int(
        out,
        "keys.bytes-per-key",
        net.checked_div(r.keys).unwrap_or(0) as i64,
    );
    int(out, "dataset.bytes", r.dataset as i64);
    dbl(out, "dataset.percentage", r.dataset_perc());
    dbl(out, "peak.percentage", r.peak_perc());
    int(out, "allocator.allocated", r.allocated as i64);
    int(out, "allocator.active", r.active as i64);
    int(out, "allocator.resident", r.resident as i64);
    dbl(
        out,
        "allocator-fragmentation.ratio",
        ratio(r.active, r.allocated),
    );
    int(
        out,
        "allocator-fragmentation.bytes",
        diff(r.active, r.allocated),
    );
    dbl(out, "allocator-rss.ratio", ratio(r.resident, r.active));
    int(out, "allocator-rss.bytes", diff(r.resident, r.active));
    dbl(out, "rss-overhead.ratio", ratio(r.rss, r.resident));
    int(out, "rss-overhead.bytes", diff(r.rss, r.resident));
    dbl(out, "fragmentation", ratio(r.rss, r.used));
    int(out, "fragmentation.bytes", diff(r.rss, r.used));
}

/// MEMORY DOCTOR's report: a plain-text assessment of the figures.
pub fn doctor(r: &MemReport) -> String {
    const MB: u64 = 1 << 20;
    if r.used < 5 * MB {
        return "Hi Sam, there is too little data in this instance (under 5 MB) for a memory \
                diagnosis to mean anything. Load some data and ask me again.\n"
            .into();
    }
    let mut issues: Vec<String> = Vec::new();
    if ratio(r.peak, r.used) > 1.5 {
        issues.push(format!(
            " * Past peak: memory use once reached {} bytes, more than 1.5 times the {} bytes \
             in use now. Pages freed since may still be held by the allocator, which makes \
             the fragmentation figures look worse than the live data warrants. MEMORY PURGE \
             asks each shard's allocator heap to return its free pages.\n",
            r.peak, r.used
        ));
    }
    // mimalloc commits memory for each thread's heap in large slices, so a
    // small instance shows a high ratio for few bytes: both must be high.
    if ratio(r.active, r.allocated) > 1.1 && r.active.saturating_sub(r.allocated) > 32 * MB {
        issues.push(format!(
            " * Allocator fragmentation: mimalloc has {} bytes committed for {} bytes of live \
             blocks ({:.2}x). Partly filled pages are the usual cause: many small values \
             deleted at random leave pages that cannot be released.\n",
            r.active,
            r.allocated,
            ratio(r.active, r.allocated)
        ));
    }
    if ratio(r.rss, r.used) > 1.4 && r.rss.saturating_sub(r.used) > 32 * MB {
        issues.push(format!(
            " * Resident size: the process holds {} bytes of RAM for {} bytes of allocations \
             ({:.2}x). A past peak (see above) or fragmentation usually explains it; memory \
             outside the allocator (thread stacks, the Lua heap, I/O rings) adds to it.\n",
            r.rss,
            r.used,
            ratio(r.rss, r.used)
        ));
    }
    if r.clients > 200 * MB {
        issues.push(format!(
            " * Client buffers: connections hold {} bytes of query and reply buffers. Slow \
             readers of big replies or large pipelines are the likely cause; see \
             client-output-buffer-limit.\n",
            r.clients
        ));
    }
    if issues.is_empty() {
        "Hi Sam, nothing in this instance's memory figures looks wrong to me.\n".into()
    } else {
        format!(
            "Sam, I looked at this instance's memory and found {} thing(s) worth a look:\n\n{}\n\
             That is all I can tell from here.\n",
            issues.len(),
            issues.join("\n")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rep(used: u64, peak: u64, rss: u64, active: u64) -> MemReport {
        MemReport {
            used,
            peak,
            rss,
            allocated: used,
            active,
            resident: active,
            ..Default::default()
        }
    }

    #[test]
    fn doctor_texts() {
        const M: u64 = 1 << 20;
        assert!(doctor(&rep(1000, 1000, 1000, 1000)).starts_with("Hi Sam, there is too little"));
        assert!(doctor(&rep(100 * M, 100 * M, 100 * M, 100 * M)).starts_with("Hi Sam, nothing"));
        let d = doctor(&rep(100 * M, 200 * M, 300 * M, 250 * M));
        assert!(d.starts_with("Sam, I looked"), "{d}");
        assert!(d.contains("Past peak") && d.contains("fragmentation") && d.contains("Resident"));
    }

    #[test]
    fn report_sums_shards_and_splits_overhead() {
        let f = MemFig {
            dbs: vec![
                DbMem {
                    keys: 10,
                    main: 1000,
                    expires: 0,
                },
                DbMem::default(),
            ],
            clients: 500,
        };
        let r = MemReport::new([f.clone(), f].iter(), 10 << 20, 20 << 20);
        assert_eq!(r.keys, 20);
        assert_eq!(r.dbs[0].main, 2000);
        assert_eq!(r.clients, 1000);
        assert_eq!(r.overhead, r.startup + 1000 + 2000);
        assert_eq!(r.dataset, (10 << 20) - r.overhead);
        assert!((r.peak_perc() - 50.0).abs() < 1e-9);
    }

    #[test]
    fn stats_reply_has_redis_fields_in_order() {
        let r = MemReport {
            used: 100,
            peak: 100,
            dbs: vec![
                DbMem {
                    keys: 2,
                    main: 64,
                    expires: 0,
                },
                DbMem::default(),
            ],
            keys: 2,
            ..Default::default()
        };
        let mut v = Vec::new();
        let mut o = Out::new(&mut v, false);
        stats_reply(&mut o, &r);
        let s = String::from_utf8_lossy(&v).into_owned();
        assert!(
            s.starts_with("*56\r\n$14\r\npeak.allocated\r\n:100\r\n"),
            "{s}"
        );
        let order = [
            "functions.caches",
            "db.0",
            "overhead.hashtable.main",
            "overhead.hashtable.slot-to-keys",
            "overhead.total",
            "keys.bytes-per-key",
            "dataset.percentage",
            "allocator.resident",
            "rss-overhead.bytes",
            "\r\nfragmentation\r\n",
            "\r\nfragmentation.bytes\r\n",
        ];
        let pos: Vec<usize> = order.iter().map(|k| s.find(k).unwrap()).collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "{s}");
        assert!(!s.contains("db.1"));
    }
}
