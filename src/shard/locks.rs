//! Per-key intent locks for transactions that span shards (in the style of
//! VLL, as Dragonfly uses it).
//!
//! Every multi-shard transaction (a multi-key command whose keys live on
//! several shards, EXEC, a command that needs every shard) takes a global
//! sequence number and asks each shard it involves to lock its keys there
//! (or the whole shard, `LockSet::All`). Each shard keeps its requests in
//! sequence order and grants a request once no conflicting request with a
//! smaller number is ahead of it. A request that arrives after a
//! conflicting request with a larger number was already granted is refused;
//! its coordinator unlocks everywhere and retries with a new number.
//!
//! Hence on every shard, conflicting requests are granted in increasing
//! sequence order, so a transaction only ever waits for transactions with
//! smaller numbers: the waits-for graph has no cycle and there is no
//! deadlock. The smallest waiting transaction is never refused again
//! (nothing conflicting and larger can be granted ahead of it on any shard
//! where it is queued), so retries end.
//!
//! While a request is granted, commands that are not part of its
//! transaction and touch one of its keys wait (local clients stop reading
//! their input, requests from other shards are deferred); every other key
//! of the shard stays available. Transactions on disjoint keys run in
//! parallel.

use hashbrown::{HashMap, HashSet};

/// A borrowed (db, key), to look keys up without copying them.
#[derive(Hash)]
pub struct KeyRef<'a>(pub usize, pub &'a [u8]);

impl hashbrown::Equivalent<(usize, Vec<u8>)> for KeyRef<'_> {
    fn equivalent(&self, k: &(usize, Vec<u8>)) -> bool {
        self.0 == k.0 && self.1 == k.1.as_slice()
    }
}

/// What a transaction locks on one shard.
#[derive(Clone, Debug)]
pub enum LockSet {
    /// The whole shard (FLUSHALL, SWAPDB, KEYS, a snapshot's cut, ...).
    All,
    /// These keys (db, key).
    Keys(HashSet<(usize, Vec<u8>)>),
}

impl LockSet {
    fn conflicts(&self, other: &LockSet) -> bool {
        match (self, other) {
            (LockSet::All, _) | (_, LockSet::All) => true,
            (LockSet::Keys(a), LockSet::Keys(b)) => {
                let (small, big) = if a.len() <= b.len() { (a, b) } else { (b, a) };
                small.iter().any(|k| big.contains(k))
            }
        }
    }
}

struct Entry {
    seq: u64,
    /// The coordinating shard, told when the request is granted.
    coord: usize,
    set: LockSet,
    granted: bool,
}

/// One shard's lock table.
#[derive(Default)]
pub struct Locks {
    /// Requests in sequence order, granted or waiting.
    entries: Vec<Entry>,
    /// Keys of granted requests, for the checks of ordinary commands.
    granted_keys: HashMap<(usize, Vec<u8>), u64>,
    /// Granted whole-shard requests.
    granted_all: usize,
    granted: usize,
}

/// The answer to a lock request.
#[derive(Debug, PartialEq, Eq)]
pub enum Lock {
    Granted,
    Queued,
    Refused,
}

impl Locks {
    /// No request is granted: ordinary commands need no check.
    #[inline]
    pub fn idle(&self) -> bool {
        self.granted == 0
    }

    /// No request at all, granted or waiting.
    pub fn empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A whole-shard request is granted.
    pub fn all_granted(&self) -> bool {
        self.granted_all > 0
    }

    /// Whether an ordinary command touching `key` must wait.
    pub fn blocks(&self, db: usize, key: &[u8]) -> bool {
        self.granted_all > 0
            || (!self.granted_keys.is_empty() && self.granted_keys.contains_key(&KeyRef(db, key)))
    }

    /// Requests a lock for transaction `seq` coordinated by shard `coord`.
    pub fn lock(&mut self, seq: u64, coord: usize, set: LockSet) -> Lock {
        if self
            .entries
            .iter()
            .any(|e| e.granted && e.seq > seq && e.set.conflicts(&set))
        {
            return Lock::Refused;
        }
        let pos = self.entries.partition_point(|e| e.seq < seq);
        let free = !self.entries[..pos].iter().any(|e| e.set.conflicts(&set));
        self.entries.insert(
            pos,
            Entry {
                seq,
                coord,
                set,
                granted: false,
            },
        );
        if free {
            self.grant(pos);
            Lock::Granted
        } else {
            Lock::Queued
        }
    }

    fn grant(&mut self, i: usize) {
        let e = &mut self.entries[i];
        e.granted = true;
        self.granted += 1;
        match &e.set {
            LockSet::All => self.granted_all += 1,
            LockSet::Keys(keys) => {
                for k in keys {
                    self.granted_keys.insert(k.clone(), e.seq);
                }
            }
        }
    }

    /// Drops transaction `seq`'s request (granted or not) and grants what
    /// became free: returns (coordinator, seq) of each newly granted one.
    pub fn unlock(&mut self, seq: u64) -> Vec<(usize, u64)> {
        let Some(i) = self.entries.iter().position(|e| e.seq == seq) else {
            return Vec::new();
        };
        let e = self.entries.remove(i);
        if e.granted {
            self.granted -= 1;
            match &e.set {
                LockSet::All => self.granted_all -= 1,
                LockSet::Keys(keys) => {
                    for k in keys {
                        if self.granted_keys.get(k) == Some(&e.seq) {
                            self.granted_keys.remove(k);
                        }
                    }
                }
            }
        }
        let mut newly = Vec::new();
        for j in 0..self.entries.len() {
            if self.entries[j].granted {
                continue;
            }
            let free = !self.entries[..j]
                .iter()
                .any(|x| x.set.conflicts(&self.entries[j].set));
            if free {
                self.grant(j);
                newly.push((self.entries[j].coord, self.entries[j].seq));
            }
        }
        newly
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(ks: &[&str]) -> LockSet {
        LockSet::Keys(ks.iter().map(|k| (0, k.as_bytes().to_vec())).collect())
    }

    #[test]
    fn borrowed_keys_find_owned_ones() {
        use std::hash::BuildHasher;
        let m: HashMap<(usize, Vec<u8>), u64> = [((3, b"abc".to_vec()), 1)].into_iter().collect();
        assert!(m.contains_key(&KeyRef(3, b"abc")));
        assert!(!m.contains_key(&KeyRef(3, b"ab")));
        assert!(!m.contains_key(&KeyRef(2, b"abc")));
        let h = m.hasher();
        assert_eq!(
            h.hash_one(KeyRef(3, b"abc")),
            h.hash_one((3usize, b"abc".to_vec()))
        );
    }

    #[test]
    fn disjoint_requests_are_granted_together() {
        let mut l = Locks::default();
        assert_eq!(l.lock(1, 0, keys(&["a", "b"])), Lock::Granted);
        assert_eq!(l.lock(2, 1, keys(&["c"])), Lock::Granted);
        assert!(l.blocks(0, b"a") && l.blocks(0, b"c") && !l.blocks(0, b"d"));
        assert!(!l.blocks(1, b"a"), "other db");
    }

    #[test]
    fn conflicting_requests_are_granted_in_sequence_order() {
        let mut l = Locks::default();
        assert_eq!(l.lock(5, 0, keys(&["a"])), Lock::Granted);
        // A smaller number arriving after a larger conflicting grant.
        assert_eq!(l.lock(3, 1, keys(&["a", "x"])), Lock::Refused);
        assert_eq!(l.lock(7, 1, keys(&["a"])), Lock::Queued);
        // A smaller number than a merely queued one goes ahead of it.
        assert_eq!(l.lock(6, 2, keys(&["a"])), Lock::Queued);
        assert_eq!(l.unlock(5), vec![(2, 6)]);
        assert_eq!(l.unlock(6), vec![(1, 7)]);
        assert_eq!(l.unlock(7), vec![]);
        assert!(l.idle() && l.empty());
    }

    #[test]
    fn whole_shard_requests_conflict_with_everything() {
        let mut l = Locks::default();
        assert_eq!(l.lock(1, 0, keys(&["a"])), Lock::Granted);
        assert_eq!(l.lock(2, 1, LockSet::All), Lock::Queued);
        assert_eq!(
            l.lock(3, 2, keys(&["z"])),
            Lock::Queued,
            "behind the whole-shard one"
        );
        assert_eq!(l.unlock(1), vec![(1, 2)]);
        assert!(l.all_granted() && l.blocks(3, b"anything"));
        assert_eq!(l.unlock(2), vec![(2, 3)]);
        assert!(!l.all_granted());
    }

    #[test]
    fn unlocking_a_waiting_request_lets_later_ones_through() {
        let mut l = Locks::default();
        assert_eq!(l.lock(1, 0, keys(&["a"])), Lock::Granted);
        assert_eq!(l.lock(2, 1, keys(&["a", "b"])), Lock::Queued);
        assert_eq!(l.lock(3, 2, keys(&["b"])), Lock::Queued);
        // Transaction 2 gave up (refused elsewhere).
        assert_eq!(l.unlock(2), vec![(2, 3)]);
    }

    /// Random schedules: the smallest waiting request is always granted
    /// after everything before it is released (no deadlock), and granted
    /// requests never conflict with each other.
    #[test]
    fn random_schedules_never_grant_conflicts() {
        let mut rng = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut l = Locks::default();
        let mut live: Vec<(u64, LockSet, bool)> = Vec::new();
        let mut seq = 0;
        for _ in 0..20_000 {
            if next() % 3 != 0 || live.is_empty() {
                seq += 1 + next() % 3;
                let set = if next() % 20 == 0 {
                    LockSet::All
                } else {
                    let n = 1 + next() % 3;
                    let ks: Vec<String> = (0..n).map(|_| format!("k{}", next() % 8)).collect();
                    keys(&ks.iter().map(|s| s.as_str()).collect::<Vec<_>>())
                };
                match l.lock(seq, 0, set.clone()) {
                    Lock::Refused => {}
                    r => live.push((seq, set, r == Lock::Granted)),
                }
            } else {
                let i = (next() % live.len() as u64) as usize;
                let (s, _, _) = live.remove(i);
                for (_, g) in l.unlock(s) {
                    live.iter_mut().find(|x| x.0 == g).expect("granted").2 = true;
                }
            }
            let granted: Vec<&(u64, LockSet, bool)> = live.iter().filter(|x| x.2).collect();
            for (i, a) in granted.iter().enumerate() {
                for b in &granted[i + 1..] {
                    assert!(!a.1.conflicts(&b.1), "{} and {} both granted", a.0, b.0);
                }
            }
            // The smallest live request is granted (nothing is ahead of it).
            if let Some(min) = live.iter().min_by_key(|x| x.0) {
                assert!(min.2, "smallest request {} not granted", min.0);
            }
        }
    }
}
