//! The keyspace of one shard: every database's main table and expiry table.
//! This is the only code that mutates stored data; command handlers go
//! through its methods, so dirty counters, lazy expiry and (later) snapshot
//! versioning and keyspace notifications live in one place.

use super::dict::Dict;
use crate::types::Value;

#[derive(Default)]
pub struct Db {
    pub main: Dict<Value>,
    /// Absolute expiry deadlines in Unix milliseconds, for volatile keys only.
    pub expires: Dict<u64>,
    /// Average TTL estimate for INFO keyspace (ms).
    pub avg_ttl: u64,
}

#[derive(Default, Clone, Copy, Debug)]
pub struct KsStats {
    pub expired_keys: u64,
    pub expired_stale_perc: f64,
    pub expired_time_cap_reached: u64,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
    pub evicted_keys: u64,
}

/// Encoding thresholds and limits handlers need (from CONFIG), refreshed
/// by the shard when the configuration changes.
#[derive(Clone, Copy, Debug)]
pub struct EncCfg {
    pub hash_max_listpack_entries: usize,
    pub hash_max_listpack_value: usize,
    pub set_max_intset_entries: usize,
    pub zset_max_listpack_entries: usize,
    pub zset_max_listpack_value: usize,
    /// Negative: bytes per node (-1 = 4 KiB ... -5 = 64 KiB); positive: entries per node.
    pub list_max_listpack_size: i64,
    pub proto_max_bulk_len: usize,
    /// HLLs stay sparse up to this many bytes (hll-sparse-max-bytes).
    pub hll_sparse_max_bytes: usize,
    /// Stream node limits (0 = none).
    pub stream_node_max_bytes: usize,
    pub stream_node_max_entries: usize,
}

impl Default for EncCfg {
    fn default() -> Self {
        EncCfg {
            hash_max_listpack_entries: 512,
            hash_max_listpack_value: 64,
            set_max_intset_entries: 512,
            zset_max_listpack_entries: 128,
            zset_max_listpack_value: 64,
            list_max_listpack_size: -2,
            proto_max_bulk_len: 512 * 1024 * 1024,
            hll_sparse_max_bytes: 3000,
            stream_node_max_bytes: 4096,
            stream_node_max_entries: 100,
        }
    }
}

/// Which removals free their values on the lazyfree thread (crate::lazyfree),
/// from the `lazyfree-lazy-*` options, refreshed like [`EncCfg`].
#[derive(Clone, Copy, Debug, Default)]
pub struct LazyCfg {
    pub eviction: bool,
    pub expire: bool,
    pub server_del: bool,
    pub user_del: bool,
    pub user_flush: bool,
}

/// A request, made by a blocking command that found nothing to serve, to
/// park the client until one of `keys` receives data or the deadline.
#[derive(Clone, Debug)]
pub struct BlockReq {
    pub keys: Vec<Vec<u8>>,
    /// Absolute deadline in Unix ms; 0 = wait forever.
    pub deadline_ms: u64,
    /// Reply on timeout: the null array (BLPOP, BZPOPMIN, BLMPOP...) or,
    /// when false, the null bulk string (BLMOVE, BRPOPLPUSH).
    pub null_array: bool,
    /// The arguments to re-run the command with, when not its own (XREAD
    /// replaces `$` by the ID it stood for).
    pub args: Option<Vec<Vec<u8>>>,
}

pub struct Keyspace {
    pub dbs: Vec<Db>,
    /// Set by a blocking command's handler (see [`Keyspace::block`]).
    pub block_request: Option<BlockReq>,
    /// Keys some client is blocked on, mirrored from the shard's waiter
    /// registry, so [`Keyspace::signal_ready`] costs nothing otherwise.
    pub blocking_keys: hashbrown::HashSet<(usize, Vec<u8>)>,
    /// Encoding thresholds (hash-max-listpack-entries and friends).
    pub enc: EncCfg,
    /// lazyfree-lazy-* (which deletions free in the background).
    pub lazy: LazyCfg,
    /// Keys that received data while clients may be blocked on them
    /// (db, key), drained by the shard after each batch.
    pub ready_keys: Vec<(usize, Vec<u8>)>,
    /// Writes since the last save (rdb_changes_since_last_save).
    pub dirty: u64,
    /// The time of the command being executed (Unix ms), set per command.
    pub now: u64,
    pub stats: KsStats,
    rng: u64,
    /// Where the active expiry cycle resumes (db index).
    expire_db_cursor: usize,
    /// The point-in-time snapshot in progress, if any (shard/snapshot.rs).
    pub snap: Option<Box<super::snapshot::SnapOut>>,
    /// WATCH records of this shard's keys (shard/watch.rs).
    pub watched: hashbrown::HashMap<(usize, Vec<u8>), Vec<super::watch::WatchRec>>,
    /// Watched keys handed out by `get_mut` during the running command,
    /// with the write counter then (settled after the command).
    pub watch_pending: Vec<(usize, Vec<u8>, u64)>,
    /// notify-keyspace-events (0 when no event goes anywhere).
    pub notify_flags: u32,
    /// Keyspace events of the running command(s), published by the shard
    /// afterwards (shard/notify.rs): (db, event, key).
    pub events: Vec<(usize, &'static str, Vec<u8>)>,
    /// Client-side caching (shard/tracking.rs): the clients that read each
    /// key of this shard (key name only, as Redis keys its table).
    pub tracked: hashbrown::HashMap<Vec<u8>, Vec<super::tracking::TrackTarget>>,
    /// BCAST registrations of every client: prefix -> clients.
    pub bcast: Vec<(Vec<u8>, Vec<super::tracking::TrackTarget>)>,
    /// Invalidations waiting to be sent.
    pub invalidations: Vec<super::tracking::Inval>,
    /// The client id of the running command (NOLOOP), 0 when unknown.
    pub writer: u64,
    /// This shard's share of tracking-table-max-keys (0 = no limit).
    pub track_max: usize,
    /// maxmemory settings (shard/evict.rs).
    pub mem: super::evict::MemCfg,
    /// The eviction pool.
    pub evictor: super::evict::Evictor,
}

impl Keyspace {
    pub fn new(databases: usize) -> Self {
        let mut dbs = Vec::with_capacity(databases);
        dbs.resize_with(databases, Db::default);
        Keyspace {
            dbs,
            block_request: None,
            blocking_keys: hashbrown::HashSet::new(),
            enc: EncCfg::default(),
            lazy: LazyCfg::default(),
            ready_keys: Vec::new(),
            dirty: 0,
            now: crate::util::now_ms(),
            stats: KsStats::default(),
            rng: 0x9E37_79B9_7F4A_7C15 ^ crate::util::now_us(),
            expire_db_cursor: 0,
            snap: None,
            watched: hashbrown::HashMap::new(),
            watch_pending: Vec::new(),
            notify_flags: 0,
            events: Vec::new(),
            tracked: hashbrown::HashMap::new(),
            bcast: Vec::new(),
            invalidations: Vec::new(),
            writer: 0,
            track_max: 0,
            mem: Default::default(),
            evictor: Default::default(),
        }
    }

    /// A key is being modified: WATCH records and client-side caching.
    #[inline]
    pub(crate) fn key_modified(&mut self, db: usize, key: &[u8], quiet: bool) {
        if !self.watched.is_empty() {
            self.touch_watched(db, key, quiet);
        }
        if self.tracking_on() {
            self.invalidate_key(key);
        }
    }

    /// Records a keyspace event of class `class` (crate::notify) for
    /// publication after the command, if that class is enabled.
    #[inline]
    pub fn notify(&mut self, class: u32, event: &'static str, db: usize, key: &[u8]) {
        if self.notify_flags & class != 0 {
            self.events.push((db, event, key.to_vec()));
        }
    }

    /// Asks to park the client: a blocking command (BLPOP, BZPOPMIN, ...)
    /// calls this instead of replying when none of its keys can serve it.
    /// `timeout_ms` is relative (0 = forever). The command is re-run when a
    /// key receives data, and replies null at the deadline.
    pub fn block(&mut self, keys: Vec<Vec<u8>>, timeout_ms: u64, null_array: bool) {
        let deadline_ms = if timeout_ms == 0 {
            0
        } else {
            self.now.saturating_add(timeout_ms)
        };
        self.block_request = Some(BlockReq {
            keys,
            deadline_ms,
            null_array,
            args: None,
        });
    }

    /// [`Keyspace::block`], re-running the command with `args` instead of
    /// its own.
    pub fn block_with_args(
        &mut self,
        keys: Vec<Vec<u8>>,
        timeout_ms: u64,
        null_array: bool,
        args: Vec<Vec<u8>>,
    ) {
        self.block(keys, timeout_ms, null_array);
        if let Some(r) = self.block_request.as_mut() {
            r.args = Some(args);
        }
    }

    /// Tells blocked clients that `key` may now serve them: every command
    /// that adds elements to a list or sorted set calls this.
    #[inline]
    pub fn signal_ready(&mut self, db: usize, key: &[u8]) {
        if self.blocking_keys.is_empty() {
            return;
        }
        let k = (db, key.to_vec());
        if self.blocking_keys.contains(&k) && !self.ready_keys.contains(&k) {
            self.ready_keys.push(k);
        }
    }

    /// Wakes clients blocked on a stream that is about to be deleted or
    /// replaced (Redis 7.0 answers a waiting XREADGROUP with an error).
    #[inline]
    fn signal_stream_gone(&mut self, db: usize, key: &[u8]) {
        if self.blocking_keys.is_empty() {
            return;
        }
        if matches!(self.dbs[db].main.get(key), Some(Value::Stream(_))) {
            self.signal_ready(db, key);
        }
    }

    /// A fast pseudo-random number (xorshift64*).
    pub fn rand(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Deletes `key` if its deadline has passed. Returns true if it did.
    #[inline]
    fn expire_if_needed(&mut self, db: usize, key: &[u8]) -> bool {
        let d = &mut self.dbs[db];
        if d.expires.is_empty() {
            return false;
        }
        match d.expires.get(key) {
            Some(&at) if at <= self.now => {
                self.signal_stream_gone(db, key);
                self.pre_write(db, key);
                self.key_modified(db, key, true);
                let d = &mut self.dbs[db];
                d.expires.remove(key);
                if let Some(old) = d.main.remove(key) {
                    crate::lazyfree::dispose(old, self.lazy.expire);
                }
                self.stats.expired_keys += 1;
                self.dirty += 1;
                self.notify(crate::notify::EXPIRED, "expired", db, key);
                true
            }
            _ => false,
        }
    }

    /// Looks a key up for reading; counts keyspace hits and misses and
    /// records the access (LRU/LFU).
    #[inline]
    pub fn get(&mut self, db: usize, key: &[u8]) -> Option<&Value> {
        self.lookup(db, key, true)
    }

    /// [`Keyspace::get`] without recording an access (OBJECT, TYPE, TTL:
    /// Redis's LOOKUP_NOTOUCH); hits and misses still count.
    pub fn get_notouch(&mut self, db: usize, key: &[u8]) -> Option<&Value> {
        self.lookup(db, key, false)
    }

    #[inline]
    fn lookup(&mut self, db: usize, key: &[u8], touch: bool) -> Option<&Value> {
        self.expire_if_needed(db, key);
        let st = touch.then(|| self.stamp());
        let main = &mut self.dbs[db].main;
        let found = match st {
            Some(st) => main.get_touch(key, |m| st.touch(m)).map(|v| &*v),
            None => main.get(key),
        };
        match found {
            Some(v) => {
                self.stats.keyspace_hits += 1;
                Some(v)
            }
            None => {
                self.stats.keyspace_misses += 1;
                if self.notify_flags & crate::notify::KEY_MISS != 0 {
                    self.events.push((db, "keymiss", key.to_vec()));
                }
                None
            }
        }
    }

    /// Looks a key up without touching hit/miss statistics.
    #[inline]
    pub fn peek(&mut self, db: usize, key: &[u8]) -> Option<&Value> {
        self.expire_if_needed(db, key);
        self.dbs[db].main.get(key)
    }

    /// Looks a key up for writing. The caller must call [`Keyspace::touch_write`]
    /// (or use a method that does) when it actually modifies the value.
    #[inline]
    pub fn get_mut(&mut self, db: usize, key: &[u8]) -> Option<&mut Value> {
        self.expire_if_needed(db, key);
        self.pre_write(db, key);
        self.watch_note_get_mut(db, key);
        let st = self.stamp();
        let d = &mut self.dbs[db].main;
        if d.is_rehashing() {
            d.rehash_step(1);
        }
        d.get_touch(key, |m| st.touch(m))
    }

    /// Records `n` writes.
    #[inline]
    pub fn touch_write(&mut self, n: u64) {
        self.dirty += n;
    }

    #[inline]
    pub fn exists(&mut self, db: usize, key: &[u8]) -> bool {
        self.expire_if_needed(db, key);
        self.dbs[db].main.contains_key(key)
    }

    /// Stores a value, replacing any old one. The TTL is cleared unless
    /// `keep_ttl`.
    pub fn set(&mut self, db: usize, key: &[u8], val: Value, keep_ttl: bool) {
        self.expire_if_needed(db, key);
        self.signal_stream_gone(db, key);
        self.pre_write(db, key);
        self.key_modified(db, key, false);
        let st = self.stamp();
        let d = &mut self.dbs[db];
        let old = d.main.insert_meta(key, val, |m| st.store(m));
        if old.is_some() && !keep_ttl && !d.expires.is_empty() {
            d.expires.remove(key);
        }
        self.dirty += 1;
        match old {
            // pre_write above has serialized it for a snapshot in progress.
            Some(old) => crate::lazyfree::dispose(old, self.lazy.server_del),
            None => self.notify(crate::notify::NEW, "new", db, key),
        }
    }

    /// Stores a value with an absolute deadline (ms); a deadline in the past
    /// deletes the key instead, as Redis does.
    pub fn set_with_expire(&mut self, db: usize, key: &[u8], val: Value, at_ms: u64) {
        if at_ms <= self.now {
            self.delete(db, key);
            self.dirty += 1;
            return;
        }
        self.set(db, key, val, true);
        self.dbs[db].expires.insert(key, at_ms);
    }

    /// Deletes a key (a server-side deletion: its value is freed lazily
    /// iff lazyfree-lazy-server-del). Returns whether it existed.
    pub fn delete(&mut self, db: usize, key: &[u8]) -> bool {
        let lazy = self.lazy.server_del;
        self.delete_freeing(db, key, lazy)
    }

    /// Deletes a key, freeing its value on the lazyfree thread when `lazy`
    /// and it is big (DEL, UNLINK). Returns whether it existed.
    pub fn delete_freeing(&mut self, db: usize, key: &[u8], lazy: bool) -> bool {
        if self.expire_if_needed(db, key) {
            return false;
        }
        self.signal_stream_gone(db, key);
        self.pre_write(db, key);
        let d = &mut self.dbs[db];
        if let Some(old) = d.main.remove(key) {
            if !d.expires.is_empty() {
                d.expires.remove(key);
            }
            crate::lazyfree::dispose(old, lazy);
            self.dirty += 1;
            self.key_modified(db, key, false);
            true
        } else {
            false
        }
    }

    /// Removes a key with its deadline (for RENAME, MOVE and friends).
    pub fn take(&mut self, db: usize, key: &[u8]) -> Option<(Value, Option<u64>)> {
        self.expire_if_needed(db, key);
        self.signal_stream_gone(db, key);
        self.pre_write(db, key);
        let d = &mut self.dbs[db];
        let v = d.main.remove(key)?;
        let ttl = if d.expires.is_empty() {
            None
        } else {
            d.expires.remove(key)
        };
        self.dirty += 1;
        self.key_modified(db, key, false);
        Some((v, ttl))
    }

    /// Inserts a value with an optional deadline, replacing any old key.
    pub fn put(&mut self, db: usize, key: &[u8], val: Value, expire_at: Option<u64>) {
        match expire_at {
            Some(at) => self.set_with_expire(db, key, val, at),
            None => self.set(db, key, val, false),
        }
    }

    /// The deadline of a key in Unix ms, if it has one (key must exist).
    #[inline]
    pub fn get_expire(&self, db: usize, key: &[u8]) -> Option<u64> {
        let d = &self.dbs[db];
        if d.expires.is_empty() {
            None
        } else {
            d.expires.get(key).copied()
        }
    }

    /// Sets the deadline of an existing key. A deadline not in the future
    /// deletes the key (Redis replies as if it was set and then expired).
    pub fn set_expire(&mut self, db: usize, key: &[u8], at_ms: u64) {
        if at_ms <= self.now {
            self.delete(db, key);
        } else {
            self.pre_write(db, key);
            self.dbs[db].expires.insert(key, at_ms);
            self.dirty += 1;
            self.key_modified(db, key, false);
        }
    }

    /// Removes the deadline of a key. Returns whether there was one.
    pub fn persist(&mut self, db: usize, key: &[u8]) -> bool {
        self.pre_write(db, key);
        let r = self.dbs[db].expires.remove(key).is_some();
        if r {
            self.dirty += 1;
            self.key_modified(db, key, false);
        }
        r
    }

    pub fn db_len(&self, db: usize) -> usize {
        self.dbs[db].main.len()
    }

    pub fn flush_db(&mut self, db: usize) -> usize {
        self.flush_db_freeing(db, false)
    }

    /// Empties `db`; with `lazy` (FLUSHDB ASYNC) its tables are handed
    /// whole to the lazyfree thread instead of being freed here.
    pub fn flush_db_freeing(&mut self, db: usize, lazy: bool) -> usize {
        self.pre_write_db(db);
        if !self.watched.is_empty() {
            self.touch_watched_flush(db);
        }
        let d = &mut self.dbs[db];
        let n = d.main.len();
        if lazy && n > crate::lazyfree::LAZYFREE_THRESHOLD {
            // The fresh tables keep the snapshot version (as clear does).
            let main = std::mem::take(&mut d.main);
            let expires = std::mem::take(&mut d.expires);
            d.main.set_version(main.version());
            d.expires.set_version(expires.version());
            crate::lazyfree::dispose_db((main, expires), n, true);
        } else {
            d.main.clear();
            d.expires.clear();
        }
        self.dirty += n as u64;
        n
    }

    pub fn flush_all(&mut self) -> usize {
        self.flush_all_freeing(false)
    }

    /// Empties every database, lazily with `lazy` (FLUSHALL ASYNC).
    pub fn flush_all_freeing(&mut self, lazy: bool) -> usize {
        (0..self.dbs.len())
            .map(|i| self.flush_db_freeing(i, lazy))
            .sum()
    }

    pub fn swap_db(&mut self, a: usize, b: usize) {
        self.pre_write_db(a);
        self.pre_write_db(b);
        if !self.watched.is_empty() {
            self.touch_watched_swap(a, b);
        }
        self.dbs.swap(a, b);
        self.dirty += 1;
    }

    /// A random live key of `db`, expiring stale ones it meets.
    pub fn random_key(&mut self, db: usize) -> Option<Vec<u8>> {
        for _ in 0..100 {
            let mut seed = self.rand();
            let key = {
                let d = &self.dbs[db];
                let (k, _) = d.main.random(|| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    seed >> 11
                })?;
                k.to_vec()
            };
            if !self.expire_if_needed(db, &key) {
                return Some(key);
            }
        }
        None
    }

    /// Redis's adaptive active expiry: sample volatile keys per db, delete
    /// the expired ones, repeat while more than 10% of a sample was stale,
    /// within `budget_us` microseconds. Returns the number of keys expired.
    pub fn active_expire_cycle(&mut self, budget_us: u64) -> u64 {
        const SAMPLE: usize = 20;
        let start = std::time::Instant::now();
        let ndb = self.dbs.len();
        let mut expired_total = 0;
        self.now = crate::util::now_ms();
        for i in 0..ndb {
            let db = (self.expire_db_cursor + i) % ndb;
            let mut iterations = 0u32;
            loop {
                let n = self.dbs[db].expires.len();
                if n == 0 {
                    break;
                }
                let mut expired = 0;
                let sample = SAMPLE.min(n);
                for _ in 0..sample {
                    let mut seed = self.rand();
                    let now = self.now;
                    let stale = {
                        let (k, &at) = match self.dbs[db].expires.random(|| {
                            seed = seed
                                .wrapping_mul(6364136223846793005)
                                .wrapping_add(1442695040888963407);
                            seed >> 11
                        }) {
                            Some(e) => e,
                            None => break,
                        };
                        (at <= now).then(|| k.to_vec())
                    };
                    if let Some(k) = stale {
                        if self.expire_if_needed(db, &k) {
                            expired += 1;
                        }
                    }
                }
                expired_total += expired;
                iterations += 1;
                if iterations.is_multiple_of(16) && start.elapsed().as_micros() as u64 > budget_us {
                    self.stats.expired_time_cap_reached += 1;
                    self.expire_db_cursor = db;
                    return expired_total;
                }
                if expired * 10 <= sample as u64 {
                    break;
                }
            }
        }
        expired_total
    }

    /// Background housekeeping: incremental rehash and shrinking, bounded.
    pub fn cron(&mut self) {
        for d in &mut self.dbs {
            d.main.shrink_if_needed();
            d.expires.shrink_if_needed();
            if d.main.is_rehashing() {
                d.main.rehash_step(100);
            }
            if d.expires.is_rehashing() {
                d.expires.rehash_step(100);
            }
        }
    }

    /// Inserts a key read from dump.rdb at start-up. Returns false if the
    /// key was already present (a corrupt file with duplicated keys).
    pub fn load_insert(
        &mut self,
        db: usize,
        key: Vec<u8>,
        val: Value,
        expire_at: Option<u64>,
    ) -> bool {
        let st = self.stamp();
        let d = &mut self.dbs[db];
        if d.main.insert_meta(&key, val, |m| st.store(m)).is_some() {
            return false;
        }
        if let Some(at) = expire_at {
            d.expires.insert(&key, at);
        }
        true
    }

    /// Approximate bytes held by one key (MEMORY USAGE).
    pub fn usage(&self, db: usize, key: &[u8]) -> Option<usize> {
        let v = self.dbs[db].main.get(key)?;
        Some(key.len() + v.heap_size() + 48)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Str;

    fn s(v: &[u8]) -> Value {
        Value::Str(Str::from_bytes(v))
    }

    #[test]
    fn lazy_expiry_hides_and_removes() {
        let mut ks = Keyspace::new(16);
        ks.now = 1000;
        ks.set_with_expire(0, b"a", s(b"1"), 1500);
        assert!(ks.get(0, b"a").is_some());
        ks.now = 1500;
        assert!(ks.get(0, b"a").is_none());
        assert_eq!(ks.db_len(0), 0);
        assert_eq!(ks.stats.expired_keys, 1);
    }

    #[test]
    fn set_clears_ttl_unless_kept() {
        let mut ks = Keyspace::new(1);
        ks.now = 10;
        ks.set_with_expire(0, b"k", s(b"v"), 100);
        ks.set(0, b"k", s(b"w"), true);
        assert_eq!(ks.get_expire(0, b"k"), Some(100));
        ks.set(0, b"k", s(b"x"), false);
        assert_eq!(ks.get_expire(0, b"k"), None);
    }

    #[test]
    fn lazy_flush_empties_and_keeps_the_snapshot_version() {
        let mut ks = Keyspace::new(1);
        ks.dbs[0].main.set_version(3);
        ks.dbs[0].expires.set_version(3);
        for i in 0..100 {
            ks.set_with_expire(0, format!("k{i}").as_bytes(), s(b"v"), u64::MAX);
        }
        assert_eq!(ks.flush_db_freeing(0, true), 100);
        assert_eq!(ks.db_len(0), 0);
        assert!(ks.dbs[0].expires.is_empty());
        assert_eq!(ks.dbs[0].main.version(), 3);
        assert_eq!(ks.dbs[0].expires.version(), 3);
        ks.set(0, b"after", s(b"v"), false);
        assert!(ks.get(0, b"after").is_some());
    }

    #[test]
    fn active_cycle_reclaims_expired_keys() {
        let mut ks = Keyspace::new(2);
        let now = crate::util::now_ms();
        ks.now = now;
        for i in 0..1000 {
            let k = format!("k{i}");
            ks.set_with_expire(1, k.as_bytes(), s(b"v"), now + 1);
        }
        ks.set(1, b"keep", s(b"v"), false);
        std::thread::sleep(std::time::Duration::from_millis(5));
        for _ in 0..200 {
            ks.active_expire_cycle(25_000);
        }
        assert_eq!(ks.db_len(1), 1);
    }
}
