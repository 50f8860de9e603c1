//! `maxmemory`: per-key access metadata and eviction.
//!
//! Every key's table node carries a 24-bit word (shard/dict.rs). Under an
//! LRU (or no) policy it is Redis's LRU clock: the access time in seconds,
//! modulo 2^24. Under an LFU policy it is Redis's LFU pair: the last
//! decrement time in minutes (16 bits) and a logarithmic access counter
//! (8 bits, a Morris counter tuned by `lfu-log-factor`, halved in effect
//! every `lfu-decay-time` minutes).
//!
//! **The limit is global.** `maxmemory` bounds the process's
//! `used_memory` (every thread's allocations, as INFO reports it), like
//! Redis's. No shard has a fixed share of it, so a skewed keyspace (hash
//! tags, one hot shard) is never evicted before the whole process is at
//! the limit. A shard that runs a command that may grow memory (DENYOOM,
//! or anything queued in MULTI) first checks the total and, if it is over,
//! evicts keys **of its own keyspace** until the total is back under: the
//! shard where memory is being added gives it back. Victims are chosen per
//! shard with Redis's approximation: `maxmemory-samples` keys sampled per
//! database into a 16-entry pool ordered by idle time (LRU), by
//! 255 - frequency (LFU) or by deadline (volatile-ttl). A shard that has
//! nothing to evict asks the others, which evict on their next loop turn;
//! a command fails with -OOM only when no shard has a candidate (or the
//! policy is noeviction).
//!
//! Checking the total costs a read of every thread's counter, so a shard
//! re-reads it only after its own counter moved by its share of the
//! remaining headroom (or once per cron tick); near the limit that is
//! every command, far from it almost never.
//!
//! **Bounded work.** One eviction pass runs for at most the
//! `maxmemory-eviction-tenacity` budget (500 µs at the default 10, as in
//! Redis). If the total is still over, the command is let through and the
//! shard goes on evicting at the top of every loop turn until it is under,
//! so a burst of evictions never stalls the loop for long; a pass longer
//! than `latency-monitor-threshold` is an `eviction-cycle` latency event.

use super::keyspace::Keyspace;
use super::Shard;
use std::sync::atomic::{AtomicU64, Ordering};

pub const LRU_CLOCK_MAX: u32 = (1 << 24) - 1;
/// Seconds per LRU clock tick is 1 (Redis's LRU_CLOCK_RESOLUTION, 1000 ms).
const LRU_RESOLUTION_MS: u64 = 1000;
/// The counter a new key starts with under LFU, so it is not evicted at
/// once for having no history.
pub const LFU_INIT_VAL: u32 = 5;
/// Entries of the eviction pool (Redis's EVPOOL_SIZE).
const POOL_SIZE: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Policy {
    #[default]
    NoEviction,
    AllkeysLru,
    AllkeysLfu,
    AllkeysRandom,
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
}

impl Policy {
    pub fn parse(s: &str) -> Policy {
        match s {
            "allkeys-lru" => Policy::AllkeysLru,
            "allkeys-lfu" => Policy::AllkeysLfu,
            "allkeys-random" => Policy::AllkeysRandom,
            "volatile-lru" => Policy::VolatileLru,
            "volatile-lfu" => Policy::VolatileLfu,
            "volatile-random" => Policy::VolatileRandom,
            "volatile-ttl" => Policy::VolatileTtl,
            _ => Policy::NoEviction,
        }
    }
    #[inline]
    pub fn is_lfu(self) -> bool {
        matches!(self, Policy::AllkeysLfu | Policy::VolatileLfu)
    }
    /// Only keys with a TTL may be evicted.
    pub fn is_volatile(self) -> bool {
        matches!(
            self,
            Policy::VolatileLru
                | Policy::VolatileLfu
                | Policy::VolatileRandom
                | Policy::VolatileTtl
        )
    }
    fn is_random(self) -> bool {
        matches!(self, Policy::AllkeysRandom | Policy::VolatileRandom)
    }
}

/// The maxmemory settings the keyspace and the shard need.
#[derive(Clone, Copy, Debug)]
pub struct MemCfg {
    /// Bytes; 0 = no limit.
    pub maxmemory: u64,
    pub policy: Policy,
    pub samples: usize,
    pub tenacity: u32,
    pub lfu_log_factor: u32,
    /// Minutes per counter decrement; 0 = never decay.
    pub lfu_decay_time: u32,
}

impl Default for MemCfg {
    fn default() -> Self {
        MemCfg {
            maxmemory: 0,
            policy: Policy::NoEviction,
            samples: 5,
            tenacity: 10,
            lfu_log_factor: 10,
            lfu_decay_time: 1,
        }
    }
}

impl MemCfg {
    pub fn from_config(c: &crate::config::Config) -> MemCfg {
        MemCfg {
            maxmemory: c.get_i64("maxmemory").max(0) as u64,
            policy: Policy::parse(c.get("maxmemory-policy")),
            samples: c.get_i64("maxmemory-samples").clamp(1, 64) as usize,
            tenacity: c.get_i64("maxmemory-eviction-tenacity").clamp(0, 100) as u32,
            lfu_log_factor: c.get_i64("lfu-log-factor").clamp(0, u32::MAX as i64) as u32,
            lfu_decay_time: c.get_i64("lfu-decay-time").clamp(0, u32::MAX as i64) as u32,
        }
    }

    /// How long one eviction pass may run (Redis's evictionTimeLimitUs):
    /// 50 µs per tenacity step up to 10, then 15% more per step; 100 means
    /// no limit.
    pub fn time_limit_us(&self) -> u64 {
        match self.tenacity {
            t if t <= 10 => 50 * t as u64,
            t if t < 100 => (500.0 * 1.15f64.powi(t as i32 - 10)) as u64,
            _ => u64::MAX,
        }
    }
}

// ----- the access word ----------------------------------------------------

/// The LRU clock at `now_ms`.
#[inline]
pub fn lru_clock(now_ms: u64) -> u32 {
    ((now_ms / LRU_RESOLUTION_MS) & LRU_CLOCK_MAX as u64) as u32
}

/// Milliseconds since a key with LRU word `lru` was last accessed.
pub fn idle_ms(now_ms: u64, lru: u32) -> u64 {
    let clock = lru_clock(now_ms);
    let ticks = if clock >= lru {
        clock - lru
    } else {
        clock + (LRU_CLOCK_MAX - lru)
    };
    ticks as u64 * LRU_RESOLUTION_MS
}

/// The LFU clock: minutes, modulo 2^16.
#[inline]
fn lfu_minutes(now_ms: u64) -> u32 {
    ((now_ms / 60_000) & 0xFFFF) as u32
}

/// The LFU counter of `meta` after the decay due since its last decrement.
pub fn lfu_decayed(meta: u32, now_ms: u64, decay_time: u32) -> u32 {
    let ldt = meta >> 8;
    let counter = meta & 0xFF;
    if decay_time == 0 {
        return counter;
    }
    let now = lfu_minutes(now_ms);
    let elapsed = if now >= ldt {
        now - ldt
    } else {
        65535 - ldt + now
    };
    let periods = elapsed / decay_time;
    counter.saturating_sub(periods)
}

/// One logarithmic increment: the more hits a key has, the less likely
/// the next one counts. `rnd` is a uniform 64-bit random number.
fn lfu_log_incr(counter: u32, log_factor: u32, rnd: u64) -> u32 {
    if counter >= 255 {
        return 255;
    }
    let base = counter.saturating_sub(LFU_INIT_VAL) as f64;
    let p = 1.0 / (base * log_factor as f64 + 1.0);
    let r = (rnd >> 11) as f64 / (1u64 << 53) as f64;
    if r < p {
        counter + 1
    } else {
        counter
    }
}

/// What an access writes into a key's word, computed once per lookup.
#[derive(Clone, Copy)]
pub struct Stamp {
    lfu: bool,
    now_ms: u64,
    rnd: u64,
    log_factor: u32,
    decay_time: u32,
}

impl Stamp {
    /// The word after an access.
    #[inline]
    pub fn touch(&self, meta: u32) -> u32 {
        if !self.lfu {
            return lru_clock(self.now_ms);
        }
        let c = lfu_decayed(meta, self.now_ms, self.decay_time);
        let c = lfu_log_incr(c, self.log_factor, self.rnd);
        (lfu_minutes(self.now_ms) << 8) | c
    }

    /// The word of a key being stored: new keys start fresh; an
    /// overwritten key keeps its LFU history (Redis's dbSetValue) but is
    /// "just accessed" for LRU.
    #[inline]
    pub fn store(&self, old: Option<u32>) -> u32 {
        match (self.lfu, old) {
            (true, Some(m)) => m,
            (true, None) => (lfu_minutes(self.now_ms) << 8) | LFU_INIT_VAL,
            (false, _) => lru_clock(self.now_ms),
        }
    }
}

// ----- eviction -------------------------------------------------------------

/// A sampled candidate; higher `score` = better to evict.
#[derive(Clone, Debug)]
pub struct PoolEntry {
    score: u64,
    db: usize,
    key: Vec<u8>,
}

/// The shard's eviction state.
#[derive(Default)]
pub struct Evictor {
    pool: Vec<PoolEntry>,
    /// Database the random policies take their next victim from.
    next_db: usize,
}

/// What one eviction attempt found.
#[derive(Debug, PartialEq, Eq)]
pub enum Evicted {
    /// A key was evicted.
    One,
    /// No key of this shard may be evicted under the policy.
    Nothing,
}

/// Samples up to `count` keys of a table with their metadata. Consecutive
/// buckets are cheap but can all be empty in a sparse table; then one
/// uniformly random key is taken, so a non-empty table always yields one.
fn sample_keys<V>(d: &super::dict::Dict<V>, count: usize, rnd: u64, mut f: impl FnMut(&[u8], u32)) {
    if d.is_empty() {
        return;
    }
    if d.sample(count, rnd, |k, _, m| f(k, m)) == 0 {
        let mut x = rnd | 1;
        if let Some((k, _)) = d.random(|| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }) {
            let m = d.meta(k).unwrap_or(0);
            f(k, m);
        }
    }
}

impl Keyspace {
    /// The access stamp for lookups of the running command.
    #[inline]
    pub fn stamp(&mut self) -> Stamp {
        let lfu = self.mem.policy.is_lfu();
        Stamp {
            lfu,
            now_ms: self.now,
            rnd: if lfu { self.rand() } else { 0 },
            log_factor: self.mem.lfu_log_factor,
            decay_time: self.mem.lfu_decay_time,
        }
    }

    /// OBJECT IDLETIME: seconds since the key's last access (LRU word).
    pub fn idle_secs(&self, db: usize, key: &[u8]) -> Option<u64> {
        let m = self.dbs[db].main.meta(key)?;
        Some(idle_ms(self.now, m) / 1000)
    }

    /// OBJECT FREQ: the key's decayed LFU counter.
    pub fn lfu_freq(&self, db: usize, key: &[u8]) -> Option<u32> {
        let m = self.dbs[db].main.meta(key)?;
        Some(lfu_decayed(m, self.now, self.mem.lfu_decay_time))
    }

    /// RESTORE ... IDLETIME s: makes the key look idle for `secs` (only
    /// meaningful under an LRU policy, as in Redis).
    pub fn set_idle(&mut self, db: usize, key: &[u8], secs: u64) {
        if self.mem.policy.is_lfu() {
            return;
        }
        let clock = lru_clock(self.now) as u64;
        let back = secs % (LRU_CLOCK_MAX as u64 + 1);
        let m = (clock + LRU_CLOCK_MAX as u64 + 1 - back) & LRU_CLOCK_MAX as u64;
        self.dbs[db].main.set_meta(key, m as u32);
    }

    /// RESTORE ... FREQ f: sets the LFU counter (LFU policies only).
    pub fn set_freq(&mut self, db: usize, key: &[u8], freq: u32) {
        if !self.mem.policy.is_lfu() {
            return;
        }
        let m = (lfu_minutes(self.now) << 8) | freq.min(255);
        self.dbs[db].main.set_meta(key, m);
    }

    /// How many keys of this shard the policy may evict.
    pub fn evictable(&self) -> u64 {
        if self.mem.policy == Policy::NoEviction {
            return 0;
        }
        self.dbs
            .iter()
            .map(|d| {
                if self.mem.policy.is_volatile() {
                    d.expires.len()
                } else {
                    d.main.len()
                }
            })
            .sum::<usize>() as u64
    }

    /// The eviction score of a key (higher = evict first).
    fn score(&self, db: usize, key: &[u8], meta: u32) -> u64 {
        match self.mem.policy {
            Policy::AllkeysLfu | Policy::VolatileLfu => {
                255 - lfu_decayed(meta, self.now, self.mem.lfu_decay_time) as u64
            }
            Policy::VolatileTtl => match self.dbs[db].expires.get(key) {
                Some(&at) => u64::MAX - at,
                None => 0,
            },
            _ => idle_ms(self.now, meta),
        }
    }

    /// Samples every database into the pool (Redis's
    /// evictionPoolPopulate): the pool keeps the 16 best candidates seen.
    fn pool_populate(&mut self) {
        let volatile = self.mem.policy.is_volatile();
        let samples = self.mem.samples;
        let mut picked: Vec<(usize, Vec<u8>, u32)> = Vec::with_capacity(samples);
        for db in 0..self.dbs.len() {
            let rnd = self.rand();
            let d = &self.dbs[db];
            picked.clear();
            if volatile {
                sample_keys(&d.expires, samples, rnd, |k, _| {
                    picked.push((db, k.to_vec(), 0));
                });
                for p in picked.iter_mut() {
                    p.2 = d.main.meta(&p.1).unwrap_or(0);
                }
            } else {
                sample_keys(&d.main, samples, rnd, |k, m| {
                    picked.push((db, k.to_vec(), m));
                });
            }
            for (db, key, meta) in picked.drain(..) {
                let score = self.score(db, &key, meta);
                self.pool_insert(PoolEntry { score, db, key });
            }
        }
    }

    fn pool_insert(&mut self, e: PoolEntry) {
        let pool = &mut self.evictor.pool;
        if pool.iter().any(|p| p.db == e.db && p.key == e.key) {
            return;
        }
        // Ascending by score; the best candidate is last.
        let pos = pool.partition_point(|p| p.score < e.score);
        if pool.len() < POOL_SIZE {
            pool.insert(pos, e);
        } else if pos > 0 {
            // Full: drop the worst (first) to make room.
            pool.remove(0);
            pool.insert(pos - 1, e);
        }
    }

    /// Picks the next victim under the policy, if any.
    fn pick_victim(&mut self) -> Option<(usize, Vec<u8>)> {
        let volatile = self.mem.policy.is_volatile();
        if self.mem.policy.is_random() {
            let n = self.dbs.len();
            for i in 0..n {
                let db = (self.evictor.next_db + i) % n;
                let rnd = self.rand();
                let d = &self.dbs[db];
                let mut k = None;
                if volatile {
                    sample_keys(&d.expires, 1, rnd, |key, _| k = Some(key.to_vec()));
                } else {
                    sample_keys(&d.main, 1, rnd, |key, _| k = Some(key.to_vec()));
                }
                if let Some(k) = k {
                    self.evictor.next_db = db + 1;
                    return Some((db, k));
                }
            }
            return None;
        }
        // A few rounds: entries can be stale (deleted or, for volatile
        // policies, persisted since they were sampled).
        for _ in 0..4 {
            self.pool_populate();
            while let Some(e) = self.evictor.pool.pop() {
                let d = &self.dbs[e.db];
                let live = !volatile || d.expires.get(&e.key).is_some();
                let Some(meta) = d.main.meta(&e.key).filter(|_| live) else {
                    continue;
                };
                // The score is from when the key was sampled: a key read
                // since then goes back in with its current score (Redis
                // takes the stale one, which evicts hot keys when a pool
                // entry outlives many accesses, as on a shard that evicts
                // rarely).
                let now = self.score(e.db, &e.key, meta);
                if now < e.score {
                    // Back in at its place; the next pop takes the best.
                    self.pool_insert(PoolEntry { score: now, ..e });
                    continue;
                }
                return Some((e.db, e.key));
            }
        }
        None
    }

    /// Evicts one key of this shard. Returns whether it found one.
    pub fn evict_one(&mut self) -> Evicted {
        if self.mem.policy == Policy::NoEviction {
            return Evicted::Nothing;
        }
        let Some((db, key)) = self.pick_victim() else {
            return Evicted::Nothing;
        };
        self.remove_evicted(db, &key);
        Evicted::One
    }

    /// Deletes an evicted key: watchers and tracking clients are told, an
    /// `evicted` event is published, and the value is freed (off the
    /// thread when lazyfree-lazy-eviction is on and it is big).
    fn remove_evicted(&mut self, db: usize, key: &[u8]) {
        let Some((v, _)) = self.take(db, key) else {
            return;
        };
        self.stats.evicted_keys += 1;
        self.notify(crate::notify::EVICTED, "evicted", db, key);
        crate::lazyfree::dispose(v, self.lazy.eviction);
    }

    /// Drops the eviction pool (FLUSHALL, a policy change).
    pub fn evict_reset(&mut self) {
        self.evictor.pool.clear();
    }
}

// ----- the shard's memory check ----------------------------------------------

/// A shard's cached view of the process's used memory.
#[derive(Default)]
pub struct MemGuard {
    /// used_memory at the last full read.
    last_total: u64,
    /// This thread's counter at that read.
    own_base: i64,
    /// How far this thread's counter may move before the total is read
    /// again (0: read it at the next check).
    pub slack: i64,
    /// Over the limit after a pass ran out of time: go on evicting at the
    /// top of every loop turn.
    pub evicting: bool,
    /// Whether the last check found the process out of memory (a
    /// script's write commands then fail with -OOM, as in Redis).
    pub oom: bool,
}

/// The outcome of [`Shard::perform_evictions`].
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum MemState {
    /// Under the limit (or no limit).
    Ok,
    /// Still over, but eviction goes on (this pass's time ran out, or
    /// other shards were asked): the command may run.
    Running,
    /// Over the limit and nothing may be evicted: -OOM.
    Fail,
}

/// Bytes of fixed I/O infrastructure allocated once at start: the
/// io_uring provided-buffer pools and the shard-to-shard rings. They do
/// not grow with data or clients, so they are not counted against
/// maxmemory (INFO `mem_not_counted_for_evict`, as Redis reports its
/// replication and AOF buffers).
pub static FIXED_IO: AtomicU64 = AtomicU64::new(0);

/// The memory counted against maxmemory.
#[inline]
pub fn used_for_evict() -> u64 {
    crate::alloc::used_memory().saturating_sub(FIXED_IO.load(Ordering::Relaxed))
}

pub const OOM_ERR: &str = "OOM command not allowed when used memory > 'maxmemory'.";

impl Shard {
    /// The process's used memory, read in full only when this shard's own
    /// allocations moved by more than its share of the headroom.
    fn mem_estimate(&mut self) -> u64 {
        let own = crate::alloc::thread_used();
        let g = &mut self.memg;
        let delta = own - g.own_base;
        if g.slack > 0 && delta.abs() < g.slack {
            return (g.last_total as i64 + delta).max(0) as u64;
        }
        self.mem_read()
    }

    /// Reads used_memory and resets the estimate.
    fn mem_read(&mut self) -> u64 {
        let total = used_for_evict();
        let limit = self.ks.mem.maxmemory;
        let room = if limit == 0 {
            usize::MAX
        } else {
            limit.saturating_sub(total) as usize
        };
        for d in &mut self.ks.dbs {
            d.main.grow_budget = room;
            d.expires.grow_budget = room;
        }
        let g = &mut self.memg;
        g.own_base = crate::alloc::thread_used();
        g.last_total = total;
        // Every shard may drift by its slack before re-reading: half the
        // headroom in all, so the total is seen before it crosses.
        g.slack = if total < limit {
            ((limit - total) / (2 * self.n.max(1) as u64)) as i64
        } else {
            0
        };
        total
    }

    /// Redis's performEvictions: if used memory is over `maxmemory`, evict
    /// keys of this shard until it is under, for at most the tenacity
    /// budget. Called before commands that may grow memory.
    pub fn perform_evictions(&mut self) -> MemState {
        let limit = self.ks.mem.maxmemory;
        if limit == 0 {
            return MemState::Ok;
        }
        if self.mem_estimate() <= limit {
            return MemState::Ok;
        }
        self.evict_pass(false)
    }

    /// One bounded eviction pass against the current total. `asked`: this
    /// shard was asked to do its share (or is finishing a pass that ran out
    /// of time).
    pub fn evict_pass(&mut self, asked: bool) -> MemState {
        let limit = self.ks.mem.maxmemory;
        self.memg.evicting = false;
        let total = self.mem_read();
        if limit == 0 || total <= limit {
            return MemState::Ok;
        }
        if self.ks.mem.policy == Policy::NoEviction {
            return MemState::Fail;
        }
        let own = self.ks.evictable();
        self.g.evictable[self.id].store(own, Ordering::Relaxed);
        if own == 0 {
            return self.ask_others();
        }
        if !asked
            && (0..self.n).any(|i| i != self.id && self.g.evict_asked[i].load(Ordering::Acquire))
        {
            // A round is under way: the shards asked have not done their
            // share yet. Doing more here would take this shard's keys for
            // their memory; let the command through and check again after.
            return MemState::Running;
        }
        // Each shard frees its share of the excess, in proportion to the
        // keys it may evict, so the oldest keys go everywhere rather than
        // every key of the shard that happens to run the writes.
        let others = self.ask_all_others();
        let over = total - limit;
        let share = (over as u128 * own as u128 / (own + others) as u128) as u64;
        let share = share.max(1).min(over) as i64;
        let floor = total - share as u64;
        let budget = self.ks.mem.time_limit_us();
        let start = std::time::Instant::now();
        self.ks.now = crate::util::now_ms();
        let mut keys = 0u64;
        // What this shard frees shows in its own thread's counter, exactly
        // and whatever the other shards do meanwhile (values handed to the
        // lazyfree thread do not, hence the total's floor as well).
        let own_before = crate::alloc::thread_used();
        let state = loop {
            if self.ks.evict_one() == Evicted::Nothing {
                // Nothing more here; other shards may have candidates.
                break self.ask_others();
            }
            keys += 1;
            let t = self.mem_read();
            if t <= limit {
                break MemState::Ok;
            }
            if t <= floor || own_before - crate::alloc::thread_used() >= share {
                // This shard's share is done; the others are on theirs.
                break MemState::Running;
            }
            if keys.is_multiple_of(16) && start.elapsed().as_micros() as u64 >= budget {
                self.memg.evicting = true;
                break MemState::Running;
            }
        };
        self.g.evictable[self.id].store(self.ks.evictable(), Ordering::Relaxed);
        let ms = start.elapsed().as_millis() as u64;
        self.metrics.add_event("eviction-cycle", ms);
        state
    }

    /// Asks every other shard that has candidates to evict its share (on
    /// its next loop turn; one request in flight per shard). Returns how
    /// many keys they may evict in all.
    fn ask_all_others(&mut self) -> u64 {
        let mut total = 0;
        for to in 0..self.n {
            if to == self.id {
                continue;
            }
            let n = self.g.evictable[to].load(Ordering::Relaxed);
            if n == 0 {
                continue;
            }
            total += n;
            self.ask(to);
        }
        total
    }

    /// Asks shard `to` to evict its share on its next loop turn, unless a
    /// request is already in flight (its flag drops when the share is done).
    fn ask(&mut self, to: usize) {
        if !self.g.evict_asked[to].swap(true, Ordering::AcqRel) {
            self.post(to, |sh| sh.memg.evicting = true);
        }
    }

    /// This shard has nothing left to evict: ask the shard with the most
    /// candidates to evict (on its next loop turn). Fails when none has any.
    fn ask_others(&mut self) -> MemState {
        let best = (0..self.n)
            .filter(|&i| i != self.id)
            .map(|i| (self.g.evictable[i].load(Ordering::Relaxed), i))
            .max();
        match best {
            Some((n, to)) if n > 0 => {
                self.ask(to);
                MemState::Running
            }
            _ => MemState::Fail,
        }
    }

    /// Every loop turn: continue an unfinished eviction, and check the
    /// memory this shard's own work added (commands run for clients of
    /// other shards allocate here, and only this shard sees that growth
    /// cheaply).
    pub fn evict_tick(&mut self) {
        let limit = self.ks.mem.maxmemory;
        if limit == 0 {
            self.memg.evicting = false;
            if self
                .ks
                .dbs
                .first()
                .is_some_and(|d| d.main.grow_budget != usize::MAX)
            {
                self.mem_read();
            }
            return;
        }
        // Other shards read this when they have nothing to evict
        // themselves: keep it fresh (16 table lengths).
        let n = self.ks.evictable();
        if self.g.evictable[self.id].load(Ordering::Relaxed) != n {
            self.g.evictable[self.id].store(n, Ordering::Relaxed);
        }
        if self.memg.evicting {
            self.evict_pass(true);
            if !self.memg.evicting {
                // This shard's share is done (the flag stays up while a
                // pass continues over several turns).
                self.g.evict_asked[self.id].store(false, Ordering::Release);
            }
        } else if self.mem_estimate() > limit {
            self.evict_pass(false);
        }
    }

    /// Cron: the total is re-read at the next check (other shards' growth
    /// is seen within a tick) and the evictable count is published.
    pub fn evict_cron(&mut self) {
        self.memg.slack = 0;
        self.g.evictable[self.id].store(self.ks.evictable(), Ordering::Relaxed);
        if self.ks.mem.maxmemory != 0 && self.mem_read() > self.ks.mem.maxmemory {
            self.memg.evicting = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Str, Value};

    fn s(v: &[u8]) -> Value {
        Value::Str(Str::from_bytes(v))
    }

    fn ks_with(policy: &str) -> Keyspace {
        let mut ks = Keyspace::new(2);
        ks.mem.policy = Policy::parse(policy);
        ks.mem.maxmemory = 1;
        ks.now = 1_000_000_000;
        ks
    }

    #[test]
    fn lru_idle_wraps_around_the_clock() {
        let now = 5_000u64;
        assert_eq!(idle_ms(now, lru_clock(now)), 0);
        assert_eq!(idle_ms(now, lru_clock(2_000)), 3_000);
        // The clock wrapped since the access.
        let lru = LRU_CLOCK_MAX - 1;
        assert_eq!(idle_ms(now, lru), (5 + 1) * 1000);
    }

    #[test]
    fn lfu_counter_grows_logarithmically_and_decays() {
        let mut c = LFU_INIT_VAL;
        let mut x = 0x1234_5678_9abc_def0u64;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            c = lfu_log_incr(c, 10, x);
        }
        // Redis's documented table: factor 10 gives 142 after 100K hits.
        assert!((120..=165).contains(&c), "counter {c}");
        let meta = (lfu_minutes(60_000 * 100) << 8) | 20;
        assert_eq!(lfu_decayed(meta, 60_000 * 100, 1), 20);
        assert_eq!(lfu_decayed(meta, 60_000 * 107, 1), 13);
        assert_eq!(lfu_decayed(meta, 60_000 * 200, 1), 0);
        assert_eq!(lfu_decayed(meta, 60_000 * 200, 0), 20);
    }

    #[test]
    fn lru_evicts_the_idlest_keys() {
        let mut ks = ks_with("allkeys-lru");
        let t0 = ks.now;
        for i in 0..200 {
            ks.now = t0 + i * 1000;
            ks.set(0, format!("k{i}").as_bytes(), s(b"v"), false);
        }
        ks.now = t0 + 1_000_000;
        let mut evicted = Vec::new();
        for _ in 0..50 {
            let before: Vec<_> = (0..200)
                .filter(|i| ks.exists(0, format!("k{i}").as_bytes()))
                .collect();
            assert_eq!(ks.evict_one(), Evicted::One);
            let after: Vec<_> = (0..200)
                .filter(|i| ks.exists(0, format!("k{i}").as_bytes()))
                .collect();
            let gone: Vec<_> = before.iter().filter(|i| !after.contains(i)).collect();
            assert_eq!(gone.len(), 1);
            evicted.push(*gone[0]);
        }
        // Sampling is approximate; the evicted keys are mostly old ones.
        let old = evicted.iter().filter(|&&i| i < 100).count();
        assert!(
            old >= 40,
            "only {old} of 50 evicted keys were in the older half"
        );
        assert_eq!(ks.stats.evicted_keys, 50);
    }

    #[test]
    fn volatile_policies_never_touch_persistent_keys() {
        for p in [
            "volatile-lru",
            "volatile-lfu",
            "volatile-random",
            "volatile-ttl",
        ] {
            let mut ks = ks_with(p);
            let now = ks.now;
            for i in 0..50 {
                ks.set(0, format!("p{i}").as_bytes(), s(b"v"), false);
                ks.set_with_expire(1, format!("v{i}").as_bytes(), s(b"v"), now + 10_000 + i);
            }
            for _ in 0..50 {
                assert_eq!(ks.evict_one(), Evicted::One, "{p}");
            }
            assert_eq!(ks.evict_one(), Evicted::Nothing, "{p}");
            assert_eq!(ks.db_len(0), 50, "{p}");
            assert_eq!(ks.db_len(1), 0, "{p}");
        }
    }

    #[test]
    fn volatile_ttl_takes_the_nearest_deadlines_first() {
        let mut ks = ks_with("volatile-ttl");
        let now = ks.now;
        for i in 0..100u64 {
            ks.set_with_expire(
                0,
                format!("k{i}").as_bytes(),
                s(b"v"),
                now + 1000 + i * 1000,
            );
        }
        for _ in 0..30 {
            ks.evict_one();
        }
        let early_gone = (0..30)
            .filter(|i| !ks.exists(0, format!("k{i}").as_bytes()))
            .count();
        assert!(
            early_gone >= 20,
            "{early_gone} of the 30 nearest deadlines evicted"
        );
    }

    #[test]
    fn noeviction_and_empty_shards_evict_nothing() {
        let mut ks = ks_with("noeviction");
        ks.set(0, b"a", s(b"v"), false);
        assert_eq!(ks.evict_one(), Evicted::Nothing);
        let mut ks = ks_with("allkeys-random");
        assert_eq!(ks.evict_one(), Evicted::Nothing);
        ks.set(1, b"a", s(b"v"), false);
        assert_eq!(ks.evict_one(), Evicted::One);
        assert_eq!(ks.db_len(1), 0);
    }

    #[test]
    fn lfu_keeps_frequently_read_keys() {
        let mut ks = ks_with("allkeys-lfu");
        for i in 0..100 {
            ks.set(0, format!("k{i}").as_bytes(), s(b"v"), false);
        }
        for _ in 0..200 {
            for i in 0..10 {
                ks.get(0, format!("k{i}").as_bytes());
            }
        }
        for _ in 0..60 {
            ks.evict_one();
        }
        let hot_left = (0..10)
            .filter(|i| ks.exists(0, format!("k{i}").as_bytes()))
            .count();
        assert_eq!(hot_left, 10);
        assert!(ks.lfu_freq(0, b"k0").unwrap() > LFU_INIT_VAL);
    }
}
