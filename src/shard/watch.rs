//! WATCH bookkeeping on the shard that owns a watched key.
//!
//! A client's WATCH leaves one record per key on the key's owner shard.
//! Every mutation of a watched key (through the keyspace's mutating
//! methods, lazy and active expiry included) marks the records of that key
//! dirty; EXEC, running with the shards of its watched keys held, reads
//! and removes the records and fails (null reply) if any is dirty.
//!
//! Redis 7.0's rules for keys already expired at WATCH time are kept: such
//! a record is flagged `expired`; the key disappearing (lazy or active
//! expiry, FLUSHDB/FLUSHALL) is then no logical change and only clears the
//! flag, while any other write marks it dirty. A key that was live at
//! WATCH time and has expired by EXEC makes EXEC fail even if nobody
//! deleted it yet.
//!
//! Writes that go through `Keyspace::get_mut` are only known to be writes
//! when the handler then counts a change (the dirty counter moves), so
//! they are noted as pending and settled right after the command
//! ([`Keyspace::settle_watch`]): a WRONGTYPE error or a no-op (SREM of a
//! missing member) does not break other clients' WATCH, as in Redis.

use super::keyspace::Keyspace;

/// One client's WATCH on one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchRec {
    pub client: u64,
    /// The key was logically expired (but still stored) at WATCH time.
    pub expired: bool,
    /// The key was modified since WATCH.
    pub dirty: bool,
}

impl Keyspace {
    /// Whether `key` is stored but past its deadline (without deleting it).
    fn stored_but_expired(&self, db: usize, key: &[u8]) -> bool {
        let d = &self.dbs[db];
        d.main.contains_key(key) && matches!(self.get_expire(db, key), Some(at) if at <= self.now)
    }

    /// Registers `client`'s WATCH of `key` (a second WATCH of the same key
    /// keeps the first record, as Redis does).
    pub fn watch_add(&mut self, db: usize, key: &[u8], client: u64) {
        let expired = self.stored_but_expired(db, key);
        let recs = self.watched.entry((db, key.to_vec())).or_default();
        if recs.iter().any(|r| r.client == client) {
            return;
        }
        recs.push(WatchRec {
            client,
            expired,
            dirty: false,
        });
    }

    /// Removes `client`'s WATCH of `key`; returns whether EXEC must fail
    /// because of it.
    pub fn watch_take(&mut self, db: usize, key: &[u8], client: u64) -> bool {
        let k = (db, key.to_vec());
        let Some(recs) = self.watched.get_mut(&k) else {
            return false;
        };
        let Some(i) = recs.iter().position(|r| r.client == client) else {
            return false;
        };
        let r = recs.swap_remove(i);
        if recs.is_empty() {
            self.watched.remove(&k);
        }
        r.dirty || (!r.expired && self.stored_but_expired(db, key))
    }

    /// Marks the WATCH records of a key that is being modified. `quiet`:
    /// the key disappears because it had expired (or a flush removes it),
    /// which does not count for a record that saw it expired already.
    pub(crate) fn touch_watched(&mut self, db: usize, key: &[u8], quiet: bool) {
        // Callers check `watched.is_empty()` first; the key is only
        // copied when someone watches something.
        let Some(recs) = self.watched.get_mut(&super::locks::KeyRef(db, key)) else {
            return;
        };
        for r in recs.iter_mut() {
            if r.expired {
                if quiet {
                    r.expired = false;
                    continue;
                }
                r.expired = false;
            }
            r.dirty = true;
        }
    }

    /// A write Redis signals even though it changed nothing (LTRIM that
    /// trims nothing): marks the key's WATCH records.
    #[inline]
    pub fn signal_modified(&mut self, db: usize, key: &[u8]) {
        self.key_modified(db, key, false);
    }

    /// Notes a key handed out by `get_mut`: it counts as modified if the
    /// command then records a write.
    #[inline]
    pub(crate) fn watch_note_get_mut(&mut self, db: usize, key: &[u8]) {
        if (!self.watched.is_empty() && self.watched.contains_key(&super::locks::KeyRef(db, key)))
            || (self.tracking_on() && self.tracks(key))
        {
            self.watch_pending.push((db, key.to_vec(), self.dirty));
        }
    }

    /// Called after every command: keys taken by `get_mut` during it
    /// count as modified if the write counter moved since.
    #[inline]
    pub fn settle_watch(&mut self) {
        if self.watch_pending.is_empty() {
            return;
        }
        for (db, key, at) in std::mem::take(&mut self.watch_pending) {
            if self.dirty > at {
                self.key_modified(db, &key, false);
            }
        }
    }

    /// FLUSHDB: every watched key of `db` that is stored goes away.
    pub(crate) fn touch_watched_flush(&mut self, db: usize) {
        let keys: Vec<Vec<u8>> = self
            .watched
            .keys()
            .filter(|(d, k)| *d == db && self.dbs[db].main.contains_key(k))
            .map(|(_, k)| k.clone())
            .collect();
        for k in keys {
            self.touch_watched(db, &k, true);
        }
    }

    /// SWAPDB a b (called before the swap): for the records on each side,
    /// Redis 7.0's rules for a db emptied and replaced by the other.
    pub(crate) fn touch_watched_swap(&mut self, a: usize, b: usize) {
        let now = self.now;
        let entries: Vec<(usize, Vec<u8>)> = self
            .watched
            .keys()
            .filter(|(d, _)| *d == a || *d == b)
            .cloned()
            .collect();
        for (db, key) in entries {
            let other = if db == a { b } else { a };
            let here = self.dbs[db].main.contains_key(&key);
            let there = self.dbs[other].main.contains_key(&key);
            if !here && !there {
                continue;
            }
            let there_expired =
                there && matches!(self.dbs[other].expires.get(&key), Some(&at) if at <= now);
            let Some(recs) = self.watched.get_mut(&(db, key)) else {
                continue;
            };
            for r in recs.iter_mut() {
                if r.expired {
                    if !there {
                        // The expired key is gone: no logical change.
                        r.expired = false;
                        continue;
                    }
                    if there_expired {
                        // Still an expired key.
                        continue;
                    }
                } else if !here && there_expired {
                    // A missing key replaced by an expired one.
                    r.expired = true;
                    continue;
                }
                r.dirty = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Value;

    fn ks() -> Keyspace {
        let mut ks = Keyspace::new(2);
        ks.now = 1_000_000;
        ks
    }

    fn s(v: &str) -> Value {
        Value::Str(crate::types::Str::from_bytes(v.as_bytes()))
    }

    #[test]
    fn a_write_after_watch_makes_exec_fail() {
        let mut ks = ks();
        ks.set(0, b"k", s("1"), false);
        ks.watch_add(0, b"k", 7);
        ks.watch_add(0, b"k", 8);
        assert!(!ks.watch_take(0, b"k", 8), "untouched");
        ks.set(0, b"k", s("2"), false);
        assert!(ks.watch_take(0, b"k", 7));
        assert!(ks.watched.is_empty());
    }

    #[test]
    fn get_mut_counts_only_when_the_command_wrote() {
        let mut ks = ks();
        ks.set(0, b"k", s("1"), false);
        ks.watch_add(0, b"k", 1);
        let _ = ks.get_mut(0, b"k");
        ks.settle_watch();
        assert!(
            !ks.watch_take(0, b"k", 1),
            "a read through get_mut is no write"
        );
        ks.watch_add(0, b"k", 1);
        let _ = ks.get_mut(0, b"k");
        ks.touch_write(1);
        ks.settle_watch();
        assert!(ks.watch_take(0, b"k", 1));
    }

    #[test]
    fn expiry_rules_follow_redis() {
        let mut ks = ks();
        // Live at WATCH, expired by EXEC: dirty even if not deleted yet.
        ks.set_with_expire(0, b"a", s("1"), ks.now + 10);
        ks.watch_add(0, b"a", 1);
        ks.now += 20;
        assert!(ks.watch_take(0, b"a", 1));
        // Expired at WATCH: its lazy deletion is no change...
        ks.watch_add(0, b"a", 1);
        assert!(!ks.exists(0, b"a"));
        assert!(!ks.watch_take(0, b"a", 1));
        // ... but a new value after it is.
        ks.set_with_expire(0, b"b", s("1"), ks.now + 10);
        ks.now += 20;
        ks.watch_add(0, b"b", 1);
        assert!(!ks.exists(0, b"b"));
        ks.set(0, b"b", s("2"), false);
        assert!(ks.watch_take(0, b"b", 1));
    }

    #[test]
    fn flush_counts_only_stored_keys() {
        let mut ks = ks();
        ks.watch_add(0, b"missing", 1);
        ks.set(0, b"k", s("1"), false);
        ks.watch_add(0, b"k", 1);
        ks.flush_db(0);
        assert!(!ks.watch_take(0, b"missing", 1));
        assert!(ks.watch_take(0, b"k", 1));
    }

    #[test]
    fn swapdb_marks_keys_present_on_either_side() {
        let mut ks = ks();
        ks.set(1, b"x", s("1"), false);
        ks.watch_add(0, b"x", 1);
        ks.watch_add(0, b"y", 1);
        ks.swap_db(0, 1);
        assert!(ks.watch_take(0, b"x", 1));
        assert!(!ks.watch_take(0, b"y", 1));
    }
}
