//! A chained hash table with incremental rehashing, a stable SCAN cursor and
//! random sampling: the three things the keyspace needs that an
//! open-addressing table (hashbrown) cannot give.
//!
//! - Growth never stalls a shard: a resize allocates the new bucket array and
//!   then moves one bucket per operation (plus a bounded amount per cron).
//! - SCAN uses Redis's reverse-binary cursor over bucket indexes, so every
//!   element present for the whole scan is returned at least once even when
//!   the table grows or shrinks in between.
//! - Random sampling (RANDOMKEY, active expiry, eviction) picks a random
//!   non-empty bucket, then a random element of its chain.

use std::hash::BuildHasher;

pub type Key = Box<[u8]>;

const INLINE_KEY: usize = 22;

/// A node's stored hash word: the low 32 bits are the key's hash (enough
/// to index 4G buckets and to reject most chain mismatches), bits 32..56
/// a 24-bit per-key metadata word (the keyspace keeps Redis's LRU clock or
/// LFU counter there, see shard/evict.rs), and the top byte the node's
/// snapshot version (see [`Dict::mark`]).
const HASH_MASK: u64 = (1 << 32) - 1;
const META_SHIFT: u32 = 32;
const META_MASK: u64 = ((1 << 24) - 1) << META_SHIFT;
const VER_SHIFT: u32 = 56;

/// A key stored in a node: short keys live inline (no extra allocation and
/// no extra cache miss on lookup), long ones on the heap.
enum NodeKey {
    Inline { len: u8, buf: [u8; INLINE_KEY] },
    Heap(Key),
}

impl NodeKey {
    #[inline]
    fn new(k: &[u8]) -> NodeKey {
        if k.len() <= INLINE_KEY {
            let mut buf = [0u8; INLINE_KEY];
            buf[..k.len()].copy_from_slice(k);
            NodeKey::Inline {
                len: k.len() as u8,
                buf,
            }
        } else {
            NodeKey::Heap(k.into())
        }
    }
    #[inline]
    fn from_box(k: Key) -> NodeKey {
        if k.len() <= INLINE_KEY {
            NodeKey::new(&k)
        } else {
            NodeKey::Heap(k)
        }
    }
    #[inline]
    fn as_bytes(&self) -> &[u8] {
        match self {
            NodeKey::Inline { len, buf } => &buf[..*len as usize],
            NodeKey::Heap(b) => b,
        }
    }
    fn into_box(self) -> Key {
        match self {
            NodeKey::Inline { len, buf } => buf[..len as usize].into(),
            NodeKey::Heap(b) => b,
        }
    }
}

struct Node<V> {
    next: Option<Box<Node<V>>>,
    /// The key's hash (low 32 bits), so rehashing never rehashes a key and
    /// most mismatches in a chain are rejected without touching the key
    /// bytes; then the 24-bit metadata and the snapshot version.
    hash: u64,
    key: NodeKey,
    val: V,
}

struct Table<V> {
    buckets: Vec<Option<Box<Node<V>>>>,
    used: usize,
}

impl<V> Node<V> {
    #[inline]
    fn same_hash(&self, h: u64) -> bool {
        self.hash & HASH_MASK == h
    }
    #[inline]
    fn ver(&self) -> u8 {
        (self.hash >> VER_SHIFT) as u8
    }
    #[inline]
    fn set_ver(&mut self, v: u8) {
        self.hash = (self.hash & !(0xFF << VER_SHIFT)) | ((v as u64) << VER_SHIFT);
    }
    #[inline]
    fn meta(&self) -> u32 {
        ((self.hash & META_MASK) >> META_SHIFT) as u32
    }
    #[inline]
    fn set_meta(&mut self, m: u32) {
        self.hash = (self.hash & !META_MASK) | (((m as u64) << META_SHIFT) & META_MASK);
    }
}

impl<V> Table<V> {
    fn empty() -> Self {
        Table {
            buckets: Vec::new(),
            used: 0,
        }
    }
    fn with_size(n: usize) -> Self {
        let mut buckets = Vec::with_capacity(n);
        buckets.resize_with(n, || None);
        Table { buckets, used: 0 }
    }
    #[inline]
    fn mask(&self) -> u64 {
        (self.buckets.len() as u64).wrapping_sub(1)
    }
}

pub struct Dict<V> {
    t: [Table<V>; 2],
    /// Next bucket of `t[0]` to move into `t[1]`; None when not rehashing.
    rehash_idx: Option<usize>,
    hasher: hashbrown::DefaultHashBuilder,
    /// The version new nodes get (snapshots; see [`Dict::mark`]).
    cur_ver: u8,
    /// Bytes a growth may allocate for its new bucket array (the room left
    /// under maxmemory; unlimited by default). A growth that does not fit
    /// waits until the table is 1.618 times fuller than its buckets, as
    /// Redis 7.0 delays dict expansion near maxmemory: otherwise the new
    /// array (megabytes for a big keyspace) would be paid for by evicting
    /// as many bytes of keys, given back once the rehash frees the old one.
    pub grow_budget: usize,
}

const INITIAL: usize = 4;

impl<V> Default for Dict<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> Dict<V> {
    pub fn new() -> Self {
        Dict {
            t: [Table::empty(), Table::empty()],
            rehash_idx: None,
            hasher: hashbrown::DefaultHashBuilder::default(),
            cur_ver: 0,
            grow_budget: usize::MAX,
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.t[0].used + self.t[1].used
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Total bucket slots allocated (for memory accounting).
    pub fn bucket_count(&self) -> usize {
        self.t[0].buckets.len() + self.t[1].buckets.len()
    }

    #[inline]
    pub fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key) & HASH_MASK
    }

    #[inline]
    pub fn is_rehashing(&self) -> bool {
        self.rehash_idx.is_some()
    }

    /// Moves up to `n` buckets from the old table to the new one.
    /// Returns true while more work remains.
    pub fn rehash_step(&mut self, n: usize) -> bool {
        let Some(mut idx) = self.rehash_idx else {
            return false;
        };
        let mut empty_visits = n * 10;
        let mut moved = 0;
        while moved < n && self.t[0].used > 0 {
            while self.t[0].buckets[idx].is_none() {
                idx += 1;
                empty_visits -= 1;
                if empty_visits == 0 {
                    self.rehash_idx = Some(idx);
                    return true;
                }
            }
            let mut chain = self.t[0].buckets[idx].take();
            let mask1 = self.t[1].mask();
            while let Some(mut node) = chain {
                chain = node.next.take();
                let h = node.hash & mask1;
                let slot = &mut self.t[1].buckets[h as usize];
                node.next = slot.take();
                *slot = Some(node);
                self.t[0].used -= 1;
                self.t[1].used += 1;
            }
            idx += 1;
            moved += 1;
        }
        if self.t[0].used == 0 {
            self.t[0] = std::mem::replace(&mut self.t[1], Table::empty());
            self.rehash_idx = None;
            false
        } else {
            self.rehash_idx = Some(idx);
            true
        }
    }

    fn resize_to(&mut self, size: usize) {
        if self.is_rehashing() {
            return;
        }
        let size = size.max(INITIAL).next_power_of_two();
        if size == self.t[0].buckets.len() {
            return;
        }
        if self.t[0].buckets.is_empty() {
            self.t[0] = Table::with_size(size);
            return;
        }
        self.t[1] = Table::with_size(size);
        self.rehash_idx = Some(0);
    }

    fn grow_if_needed(&mut self) {
        if self.is_rehashing() {
            return;
        }
        let size = self.t[0].buckets.len();
        if size == 0 {
            self.resize_to(INITIAL);
        } else if self.t[0].used >= size {
            let used = self.t[0].used;
            let bytes =
                (used * 2).next_power_of_two() * std::mem::size_of::<Option<Box<Node<V>>>>();
            if bytes > self.grow_budget && used * 1000 < size * 1618 {
                return;
            }
            self.resize_to(used * 2);
        }
    }

    /// Starts shrinking when the table is under 10% full (called by cron).
    pub fn shrink_if_needed(&mut self) {
        if self.is_rehashing() {
            return;
        }
        let size = self.t[0].buckets.len();
        if size > INITIAL && self.t[0].used * 10 < size {
            self.resize_to(self.t[0].used);
        }
    }

    fn find(&self, key: &[u8], h: u64) -> Option<&Node<V>> {
        for ti in 0..2 {
            let t = &self.t[ti];
            if t.buckets.is_empty() {
                continue;
            }
            let mut cur = t.buckets[(h & t.mask()) as usize].as_deref();
            while let Some(n) = cur {
                if n.same_hash(h) && n.key.as_bytes() == key {
                    return Some(n);
                }
                cur = n.next.as_deref();
            }
            if !self.is_rehashing() {
                break;
            }
        }
        None
    }

    fn find_mut(&mut self, key: &[u8], h: u64) -> Option<&mut Node<V>> {
        let rehashing = self.is_rehashing();
        for t in self.t.iter_mut() {
            if t.buckets.is_empty() {
                continue;
            }
            let m = t.mask();
            let mut cur = t.buckets[(h & m) as usize].as_deref_mut();
            while let Some(n) = cur {
                if n.same_hash(h) && n.key.as_bytes() == key {
                    return Some(n);
                }
                cur = n.next.as_deref_mut();
            }
            if !rehashing {
                break;
            }
        }
        None
    }

    #[inline]
    pub fn get(&self, key: &[u8]) -> Option<&V> {
        if self.is_empty() {
            return None;
        }
        let h = self.hash(key);
        self.find(key, h).map(|n| &n.val)
    }

    /// Key and value, the key being the table's own copy.
    pub fn get_key_value(&self, key: &[u8]) -> Option<(&[u8], &V)> {
        if self.is_empty() {
            return None;
        }
        let h = self.hash(key);
        self.find(key, h).map(|n| (n.key.as_bytes(), &n.val))
    }

    #[inline]
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut V> {
        if self.is_empty() {
            return None;
        }
        if self.is_rehashing() {
            self.rehash_step(1);
        }
        let h = self.hash(key);
        self.find_mut(key, h).map(|n| &mut n.val)
    }

    #[inline]
    pub fn contains_key(&self, key: &[u8]) -> bool {
        self.get(key).is_some()
    }

    /// Inserts or replaces; returns the previous value.
    pub fn insert(&mut self, key: &[u8], val: V) -> Option<V> {
        let h = self.hash(key);
        if self.is_rehashing() {
            self.rehash_step(1);
        }
        if let Some(n) = self.find_mut(key, h) {
            return Some(std::mem::replace(&mut n.val, val));
        }
        self.insert_new(NodeKey::new(key), val, h, 0);
        None
    }

    /// Inserts or replaces, setting the node's metadata to `meta(old)`
    /// (`None` for a new key); returns the previous value.
    pub fn insert_meta(
        &mut self,
        key: &[u8],
        val: V,
        meta: impl FnOnce(Option<u32>) -> u32,
    ) -> Option<V> {
        let h = self.hash(key);
        if self.is_rehashing() {
            self.rehash_step(1);
        }
        if let Some(n) = self.find_mut(key, h) {
            let m = meta(Some(n.meta()));
            n.set_meta(m);
            return Some(std::mem::replace(&mut n.val, val));
        }
        self.insert_new(NodeKey::new(key), val, h, meta(None));
        None
    }

    /// Looks a key up and rewrites its metadata with `f` (an access).
    #[inline]
    pub fn get_touch(&mut self, key: &[u8], f: impl FnOnce(u32) -> u32) -> Option<&mut V> {
        if self.is_empty() {
            return None;
        }
        let h = self.hash(key);
        let n = self.find_mut(key, h)?;
        let m = f(n.meta());
        n.set_meta(m);
        Some(&mut n.val)
    }

    /// The metadata of a key.
    pub fn meta(&self, key: &[u8]) -> Option<u32> {
        if self.is_empty() {
            return None;
        }
        let h = self.hash(key);
        self.find(key, h).map(|n| n.meta())
    }

    /// Sets the metadata of a key; false if absent.
    pub fn set_meta(&mut self, key: &[u8], m: u32) -> bool {
        if self.is_empty() {
            return false;
        }
        let h = self.hash(key);
        match self.find_mut(key, h) {
            Some(n) => {
                n.set_meta(m);
                true
            }
            None => false,
        }
    }

    /// Inserts a key known to be absent.
    pub fn insert_unique(&mut self, key: Key, val: V) {
        let h = self.hash(&key);
        if self.is_rehashing() {
            self.rehash_step(1);
        }
        self.insert_new(NodeKey::from_box(key), val, h, 0);
    }

    /// [`Dict::insert_unique`] with the node's metadata.
    pub fn insert_unique_meta(&mut self, key: Key, val: V, meta: u32) {
        let h = self.hash(&key);
        if self.is_rehashing() {
            self.rehash_step(1);
        }
        self.insert_new(NodeKey::from_box(key), val, h, meta);
    }

    fn insert_new(&mut self, key: NodeKey, val: V, h: u64, meta: u32) {
        self.grow_if_needed();
        let t = if self.is_rehashing() {
            &mut self.t[1]
        } else {
            &mut self.t[0]
        };
        let m = t.mask();
        let slot = &mut t.buckets[(h & m) as usize];
        let next = slot.take();
        *slot = Some(Box::new(Node {
            next,
            hash: h
                | (((meta as u64) << META_SHIFT) & META_MASK)
                | ((self.cur_ver as u64) << VER_SHIFT),
            key,
            val,
        }));
        t.used += 1;
    }

    /// Removes a key, returning its stored key and value.
    pub fn remove_entry(&mut self, key: &[u8]) -> Option<(Key, V)> {
        if self.is_empty() {
            return None;
        }
        if self.is_rehashing() {
            self.rehash_step(1);
        }
        let h = self.hash(key);
        let rehashing = self.is_rehashing();
        for t in self.t.iter_mut() {
            if t.buckets.is_empty() {
                continue;
            }
            let idx = (h & t.mask()) as usize;
            let mut link = &mut t.buckets[idx];
            loop {
                match link {
                    None => break,
                    Some(n) if n.same_hash(h) && n.key.as_bytes() == key => {
                        let mut node = link.take().unwrap();
                        *link = node.next.take();
                        t.used -= 1;
                        return Some((node.key.into_box(), node.val));
                    }
                    Some(n) => link = &mut n.next,
                }
            }
            if !rehashing {
                break;
            }
        }
        None
    }

    pub fn remove(&mut self, key: &[u8]) -> Option<V> {
        self.remove_entry(key).map(|(_, v)| v)
    }

    /// Drops everything.
    pub fn clear(&mut self) {
        *self = Dict {
            t: [Table::empty(), Table::empty()],
            rehash_idx: None,
            hasher: std::mem::take(&mut self.hasher),
            cur_ver: self.cur_ver,
            grow_budget: self.grow_budget,
        };
    }

    /// Calls `f` for every element in the buckets addressed by `cursor` and
    /// returns the next cursor (0 when the scan is complete).
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8], &V)) -> u64 {
        if self.is_empty() {
            return 0;
        }
        let emit_bucket = |t: &Table<V>, idx: u64, f: &mut dyn FnMut(&[u8], &V)| {
            let mut cur = t.buckets[(idx & t.mask()) as usize].as_deref();
            while let Some(n) = cur {
                f(n.key.as_bytes(), &n.val);
                cur = n.next.as_deref();
            }
        };
        let mut v = cursor;
        if !self.is_rehashing() {
            let t = &self.t[0];
            let m0 = t.mask();
            emit_bucket(t, v, &mut f);
            v |= !m0;
            v = v.reverse_bits().wrapping_add(1).reverse_bits();
        } else {
            // Visit the bucket in the smaller table, then every bucket of the
            // larger table that it expands to.
            let (small, large) = if self.t[0].buckets.len() <= self.t[1].buckets.len() {
                (&self.t[0], &self.t[1])
            } else {
                (&self.t[1], &self.t[0])
            };
            let m0 = small.mask();
            let m1 = large.mask();
            emit_bucket(small, v, &mut f);
            loop {
                emit_bucket(large, v, &mut f);
                v |= !m1;
                v = v.reverse_bits().wrapping_add(1).reverse_bits();
                if v & (m0 ^ m1) == 0 {
                    break;
                }
            }
        }
        v
    }

    // ----- snapshot versions -------------------------------------------
    //
    // Every node carries a one-byte version. A point-in-time snapshot sets
    // the dict's version to a new value; a node whose version differs has
    // not been serialized yet. The snapshot cursor ([`Dict::scan_mark`]) and
    // the keyspace's serialize-before-mutate hook ([`Dict::mark`]) each
    // serialize a node once and stamp it, and nodes inserted during the
    // snapshot are born stamped. A completed (or abandoned, see
    // [`Dict::mark_all`]) snapshot leaves every node at the dict's version,
    // so one byte is enough however many snapshots are taken.

    /// The version new nodes get.
    pub fn version(&self) -> u8 {
        self.cur_ver
    }

    /// Sets the version new nodes get.
    pub fn set_version(&mut self, v: u8) {
        self.cur_ver = v;
    }

    /// If `key` is present with a version other than `v`, stamps it with
    /// `v` and returns its value (the caller serializes it); else None.
    #[inline]
    pub fn mark(&mut self, key: &[u8], v: u8) -> Option<(&[u8], &V)> {
        if self.is_empty() {
            return None;
        }
        let h = self.hash(key);
        let n = self.find_mut(key, h)?;
        if n.ver() == v {
            return None;
        }
        n.set_ver(v);
        Some((n.key.as_bytes(), &n.val))
    }

    /// Stamps every node with `v` without visiting values.
    pub fn mark_all(&mut self, v: u8) {
        for t in &mut self.t {
            for b in &mut t.buckets {
                let mut cur = b.as_deref_mut();
                while let Some(n) = cur {
                    n.set_ver(v);
                    cur = n.next.as_deref_mut();
                }
            }
        }
    }

    /// One step of a SCAN-style walk (same cursor as [`Dict::scan`], so
    /// every element present for the whole walk is seen even across
    /// resizes) that calls `f` only for nodes not yet stamped with `v`, and
    /// stamps them.
    pub fn scan_mark(&mut self, cursor: u64, v: u8, mut f: impl FnMut(&[u8], &V)) -> u64 {
        if self.is_empty() {
            return 0;
        }
        fn emit<V>(t: &mut Table<V>, idx: u64, v: u8, f: &mut dyn FnMut(&[u8], &V)) {
            let m = t.mask();
            let mut cur = t.buckets[(idx & m) as usize].as_deref_mut();
            while let Some(n) = cur {
                if n.ver() != v {
                    n.set_ver(v);
                    f(n.key.as_bytes(), &n.val);
                }
                cur = n.next.as_deref_mut();
            }
        }
        let mut c = cursor;
        if !self.is_rehashing() {
            let m0 = self.t[0].mask();
            emit(&mut self.t[0], c, v, &mut f);
            c |= !m0;
            c = c.reverse_bits().wrapping_add(1).reverse_bits();
        } else {
            let (small, large) = if self.t[0].buckets.len() <= self.t[1].buckets.len() {
                (0, 1)
            } else {
                (1, 0)
            };
            let m0 = self.t[small].mask();
            let m1 = self.t[large].mask();
            emit(&mut self.t[small], c, v, &mut f);
            loop {
                emit(&mut self.t[large], c, v, &mut f);
                c |= !m1;
                c = c.reverse_bits().wrapping_add(1).reverse_bits();
                if c & (m0 ^ m1) == 0 {
                    break;
                }
            }
        }
        c
    }

    /// A random element, or None when empty. `rnd` supplies randomness.
    pub fn random(&self, mut rnd: impl FnMut() -> u64) -> Option<(&[u8], &V)> {
        if self.is_empty() {
            return None;
        }
        // Pick a random non-empty bucket across both tables (buckets of
        // the old table below the rehash index are empty and just retried).
        let n0 = self.t[0].buckets.len();
        let total = n0 + self.t[1].buckets.len();
        let mut tries = 0usize;
        let node = loop {
            let i = (rnd() as usize) % total;
            let b = if i < n0 {
                self.t[0].buckets[i].as_deref()
            } else {
                self.t[1].buckets[i - n0].as_deref()
            };
            if let Some(n) = b {
                break n;
            }
            tries += 1;
            if tries > 10_000 {
                // Very sparse table: take the first element.
                return self.iter().next();
            }
        };
        let mut len = 0;
        let mut cur = Some(node);
        while let Some(n) = cur {
            len += 1;
            cur = n.next.as_deref();
        }
        let mut pick = (rnd() as usize) % len;
        let mut cur = node;
        while pick > 0 {
            cur = cur.next.as_deref().unwrap();
            pick -= 1;
        }
        Some((cur.key.as_bytes(), &cur.val))
    }

    /// Up to `count` elements from consecutive buckets starting at a
    /// random one (Redis's dictGetSomeKeys): cheap sampling for eviction.
    /// Visits at most `count * 10` buckets; calls `f(key, value, meta)`.
    pub fn sample(&self, count: usize, rnd: u64, mut f: impl FnMut(&[u8], &V, u32)) -> usize {
        if self.is_empty() || count == 0 {
            return 0;
        }
        let count = count.min(self.len());
        let mut got = 0;
        let mut empty_run = 0;
        let tables = if self.is_rehashing() { 2 } else { 1 };
        let maxsize = self.t[0].buckets.len().max(self.t[1].buckets.len());
        let mut i = (rnd as usize) & (maxsize - 1);
        let mut steps = count * 10;
        while got < count && steps > 0 {
            for t in &self.t[..tables] {
                if t.buckets.is_empty() || i >= t.buckets.len() {
                    continue;
                }
                match t.buckets[i].as_deref() {
                    None => {
                        empty_run += 1;
                        if empty_run >= 5 && empty_run > count {
                            // A long run of empty buckets: jump elsewhere.
                            i = (rnd.rotate_left(steps as u32 % 64) as usize).wrapping_add(steps)
                                & (maxsize - 1);
                            empty_run = 0;
                        }
                    }
                    Some(mut n) => {
                        empty_run = 0;
                        loop {
                            f(n.key.as_bytes(), &n.val, n.meta());
                            got += 1;
                            if got >= count {
                                return got;
                            }
                            match n.next.as_deref() {
                                Some(m) => n = m,
                                None => break,
                            }
                        }
                    }
                }
            }
            i = (i + 1) & (maxsize - 1);
            steps -= 1;
        }
        got
    }

    /// Visits every element (in bucket order).
    pub fn scan_all(&self, mut f: impl FnMut(&[u8], &V)) {
        for t in &self.t {
            for b in &t.buckets {
                let mut cur = b.as_deref();
                while let Some(n) = cur {
                    f(n.key.as_bytes(), &n.val);
                    cur = n.next.as_deref();
                }
            }
        }
    }

    /// Iterates over every element.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &V)> {
        self.t.iter().flat_map(|t| {
            t.buckets.iter().flat_map(|b| {
                let mut cur = b.as_deref();
                std::iter::from_fn(move || {
                    let n = cur?;
                    cur = n.next.as_deref();
                    Some((n.key.as_bytes(), &n.val))
                })
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn key(i: usize) -> Vec<u8> {
        format!("key:{i}").into_bytes()
    }

    #[test]
    fn insert_get_remove_through_rehash() {
        let mut d = Dict::new();
        for i in 0..10_000 {
            assert!(d.insert(&key(i), i).is_none());
        }
        assert_eq!(d.len(), 10_000);
        for i in 0..10_000 {
            assert_eq!(d.get(&key(i)), Some(&i));
        }
        for i in (0..10_000).step_by(2) {
            assert_eq!(d.remove(&key(i)), Some(i));
        }
        assert_eq!(d.len(), 5_000);
        for _ in 0..100 {
            d.shrink_if_needed();
            while d.rehash_step(100) {}
        }
        for i in 0..10_000 {
            assert_eq!(d.get(&key(i)).is_some(), i % 2 == 1);
        }
        assert_eq!(d.iter().count(), 5_000);
    }

    #[test]
    fn growth_waits_for_its_budget_up_to_a_fuller_table() {
        let mut d = Dict::new();
        for i in 0..64 {
            d.insert(&key(i), i);
        }
        while d.rehash_step(100) {}
        let size = d.bucket_count();
        d.grow_budget = 0;
        // Over the size but under 1.618 times it: no growth.
        for i in 64..(size * 16 / 10) {
            d.insert(&key(i), i);
        }
        assert_eq!(d.bucket_count(), size);
        for i in (size * 16 / 10)..(size * 17 / 10) {
            d.insert(&key(i), i);
        }
        assert!(d.bucket_count() > size, "growth forced past 1.618");
        for i in 0..(size * 17 / 10) {
            assert_eq!(d.get(&key(i)), Some(&i));
        }
    }

    #[test]
    fn scan_survives_growth() {
        let mut d = Dict::new();
        for i in 0..1000 {
            d.insert(&key(i), ());
        }
        let mut seen = HashSet::new();
        let mut cursor = 0;
        let mut extra = 1000;
        let mut rounds = 0;
        loop {
            cursor = d.scan(cursor, |k, _| {
                seen.insert(k.to_vec());
            });
            // Grow the table (through a rehash) in the middle of the scan.
            if rounds % 4 == 0 {
                d.insert(&key(extra), ());
                extra += 1;
            }
            rounds += 1;
            if cursor == 0 || rounds > 100_000 {
                break;
            }
        }
        assert_eq!(cursor, 0, "scan did not finish");
        assert!(extra > 1024, "the table never grew during the scan");
        for i in 0..1000 {
            assert!(seen.contains(&key(i)), "missed {i}");
        }
    }

    #[test]
    fn random_hits_every_key_eventually() {
        let mut d = Dict::new();
        for i in 0..20 {
            d.insert(&key(i), i);
        }
        let mut x = 88172645463325252u64;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut seen = HashSet::new();
        for _ in 0..2000 {
            let (_, v) = d.random(&mut rnd).unwrap();
            seen.insert(*v);
        }
        assert_eq!(seen.len(), 20);
    }

    #[test]
    fn snapshot_marks_visit_each_node_once_across_resizes() {
        let mut d: Dict<u32> = Dict::new();
        for i in 0..1000u32 {
            d.insert(format!("k{i}").as_bytes(), i);
        }
        d.set_version(1);
        // Serialize-before-mutate on a few keys.
        let mut seen = std::collections::HashSet::new();
        for i in 0..50u32 {
            let (k, _) = d.mark(format!("k{i}").as_bytes(), 1).unwrap();
            assert!(seen.insert(k.to_vec()));
            assert!(d.mark(format!("k{i}").as_bytes(), 1).is_none());
        }
        // Writes during the walk: new keys (born stamped) force growth.
        let mut cursor = 0;
        let mut steps = 0;
        loop {
            cursor = d.scan_mark(cursor, 1, |k, _| assert!(seen.insert(k.to_vec())));
            steps += 1;
            if steps % 10 == 0 {
                for j in 0..30 {
                    d.insert(format!("new{steps}-{j}").as_bytes(), 0);
                }
            }
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 1000);
        assert!(!seen.iter().any(|k| k.starts_with(b"new")));
        // Every node now carries version 1: a new snapshot sees them all.
        let total = d.len();
        let mut n = 0;
        let mut cursor = 0;
        loop {
            cursor = d.scan_mark(cursor, 2, |_, _| n += 1);
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(n, total);
        d.mark_all(3);
        assert!(d.mark(b"k1", 3).is_none());
        assert!(d.mark(b"k1", 4).is_some());
    }
}
