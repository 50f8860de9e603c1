//! The set value, in Redis 7.0's two encodings:
//!
//! - **intset**: a sorted array of integers stored at the narrowest width
//!   that holds them all (16, 32 or 64 bits), as Redis's `intset.c`; the
//!   width only ever grows. Used while every member reads back as a 64-bit
//!   integer (`util::parse_i64`, Redis's `string2ll`) and there are at most
//!   `set-max-intset-entries` members.
//! - **hashtable**: a chained hash table built like the keyspace's
//!   `shard::dict` (power-of-two bucket arrays, incremental rehashing one
//!   bucket per write, Redis's reverse-binary SCAN cursor) but specialised
//!   for members: a node is just a link and the member (up to 22 bytes
//!   inline), 32 bytes, with no value and no stored hash. It also keeps an
//!   upper bound on its chain lengths so that a random member is drawn
//!   exactly uniformly (random bucket, random slot below the bound, retry
//!   when the slot is empty) where Redis's `dictGetFairRandomKey` is only
//!   approximately fair.
//!
//! A set converts from intset to hashtable when a non-integer member is
//! added or it grows past the limit; it never converts back on its own
//! (Redis only builds a fresh intset in SPOP's "keep the remainder"
//! strategy and the *STORE commands, which start from an empty intset).

use std::hash::BuildHasher;

use crate::util::parse_i64;

/// Redis caps intsets at 2^30 entries whatever the configuration says.
const INTSET_HARD_MAX: usize = 1 << 30;

/// One member as stored: an integer of an intset, or the bytes of a
/// hashtable member. A set yields only one of the two forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Member<'a> {
    Int(i64),
    Str(&'a [u8]),
}

impl Member<'_> {
    /// The member's bytes (integers in decimal).
    pub fn to_vec(&self) -> Vec<u8> {
        match *self {
            Member::Int(v) => itoa::Buffer::new().format(v).as_bytes().to_vec(),
            Member::Str(b) => b.to_vec(),
        }
    }

    /// Calls `f` with the member's bytes without allocating.
    #[inline]
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match *self {
            Member::Int(v) => f(itoa::Buffer::new().format(v).as_bytes()),
            Member::Str(b) => f(b),
        }
    }
}

// ----- intset ----------------------------------------------------------------

/// A sorted array of distinct integers at the narrowest width holding all.
#[derive(Clone, Debug)]
enum IntSet {
    W16(Vec<i16>),
    W32(Vec<i32>),
    W64(Vec<i64>),
}

/// Runs `$body` with `$v` bound to the vector, whatever its width.
macro_rules! each_width {
    ($s:expr, $v:ident => $body:expr) => {
        match $s {
            IntSet::W16($v) => $body,
            IntSet::W32($v) => $body,
            IntSet::W64($v) => $body,
        }
    };
}

/// An element of any width as an i64.
#[inline]
fn widen<T: Into<i64>>(x: T) -> i64 {
    x.into()
}

/// Bytes per element for a value (Redis's `_intsetValueEncoding`).
fn width_for(v: i64) -> u8 {
    if i16::try_from(v).is_ok() {
        2
    } else if i32::try_from(v).is_ok() {
        4
    } else {
        8
    }
}

/// Inserts `v` into a sorted vector of a width that can hold it, growing
/// the allocation one slot at a time as Redis's intset does (an intset
/// insert moves memory anyway). Returns whether it was added.
fn vec_insert<T: Copy + Ord + TryFrom<i64>>(vec: &mut Vec<T>, v: i64) -> bool {
    let Ok(x) = T::try_from(v) else {
        unreachable!("width checked by the caller")
    };
    match vec.binary_search(&x) {
        Ok(_) => false,
        Err(pos) => {
            if vec.len() == vec.capacity() {
                vec.reserve_exact(1);
            }
            vec.insert(pos, x);
            true
        }
    }
}

fn vec_find<T: Copy + Ord + TryFrom<i64>>(vec: &[T], v: i64) -> Option<usize> {
    let x = T::try_from(v).ok()?;
    vec.binary_search(&x).ok()
}

/// Gives back the freed slot, as Redis's `intsetResize` after a removal
/// (the allocator resizes in place within a size class).
fn vec_shrink<T>(vec: &mut Vec<T>) {
    vec.shrink_to_fit();
}

impl IntSet {
    fn new() -> IntSet {
        IntSet::W16(Vec::new())
    }

    #[inline]
    fn len(&self) -> usize {
        each_width!(self, v => v.len())
    }

    fn width(&self) -> u8 {
        match self {
            IntSet::W16(_) => 2,
            IntSet::W32(_) => 4,
            IntSet::W64(_) => 8,
        }
    }

    #[inline]
    fn get(&self, i: usize) -> i64 {
        each_width!(self, v => widen(v[i]))
    }

    #[inline]
    fn find(&self, x: i64) -> Option<usize> {
        each_width!(self, v => vec_find(v, x))
    }

    /// Widens every element to `w` bytes (Redis's `intsetUpgradeAndAdd`),
    /// leaving room for one more.
    fn upgrade(&mut self, w: u8) {
        let n = self.len() + 1;
        let wider = if w == 4 {
            let mut v = Vec::with_capacity(n);
            v.extend(self.iter().map(|x| x as i32));
            IntSet::W32(v)
        } else {
            let mut v = Vec::with_capacity(n);
            v.extend(self.iter());
            IntSet::W64(v)
        };
        *self = wider;
    }

    fn insert(&mut self, x: i64) -> bool {
        let w = width_for(x);
        if w > self.width() {
            self.upgrade(w);
        }
        each_width!(self, v => vec_insert(v, x))
    }

    fn remove_at(&mut self, i: usize) -> i64 {
        each_width!(self, v => {
            let x = widen(v.remove(i));
            vec_shrink(v);
            x
        })
    }

    fn remove(&mut self, x: i64) -> bool {
        match self.find(x) {
            Some(i) => {
                self.remove_at(i);
                true
            }
            None => false,
        }
    }

    fn heap_size(&self) -> usize {
        each_width!(self, v => v.capacity()) * self.width() as usize
    }

    fn iter(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }
}

// ----- hashtable ---------------------------------------------------------------

/// Members up to this length live inside their node.
const INLINE_KEY: usize = 22;

/// A member's bytes: inline when short, on the heap otherwise.
#[derive(Clone)]
enum Key {
    Inline { len: u8, buf: [u8; INLINE_KEY] },
    Heap(Box<[u8]>),
}

impl Key {
    #[inline]
    fn new(k: &[u8]) -> Key {
        if k.len() <= INLINE_KEY {
            let mut buf = [0u8; INLINE_KEY];
            buf[..k.len()].copy_from_slice(k);
            Key::Inline {
                len: k.len() as u8,
                buf,
            }
        } else {
            Key::Heap(k.into())
        }
    }

    #[inline]
    fn as_bytes(&self) -> &[u8] {
        match self {
            Key::Inline { len, buf } => &buf[..*len as usize],
            Key::Heap(b) => b,
        }
    }
}

type Link = Option<Box<Node>>;

#[derive(Clone)]
struct Node {
    next: Link,
    key: Key,
}

/// One bucket array.
#[derive(Clone, Default)]
struct Tab {
    buckets: Vec<Link>,
    used: usize,
    /// An upper bound on the length of every chain (removals may leave it
    /// high; it is exact again after the next rehash).
    max_chain: usize,
}

impl Tab {
    fn with_size(n: usize) -> Tab {
        let mut buckets = Vec::with_capacity(n);
        buckets.resize_with(n, || None);
        Tab {
            buckets,
            used: 0,
            max_chain: 0,
        }
    }

    #[inline]
    fn mask(&self) -> u64 {
        (self.buckets.len() as u64).wrapping_sub(1)
    }

    /// Links `node` at the head of its bucket.
    fn push(&mut self, h: u64, mut node: Box<Node>) {
        let idx = (h & self.mask()) as usize;
        let slot = &mut self.buckets[idx];
        node.next = slot.take();
        let mut len = 1;
        let mut cur = node.next.as_deref();
        while let Some(n) = cur {
            len += 1;
            cur = n.next.as_deref();
        }
        *slot = Some(node);
        self.used += 1;
        self.max_chain = self.max_chain.max(len);
    }

    fn contains(&self, key: &[u8], h: u64) -> bool {
        if self.buckets.is_empty() {
            return false;
        }
        let mut cur = self.buckets[(h & self.mask()) as usize].as_deref();
        while let Some(n) = cur {
            if n.key.as_bytes() == key {
                return true;
            }
            cur = n.next.as_deref();
        }
        false
    }

    fn remove(&mut self, key: &[u8], h: u64) -> bool {
        if self.buckets.is_empty() {
            return false;
        }
        let idx = (h & self.mask()) as usize;
        let mut link = &mut self.buckets[idx];
        loop {
            match link {
                None => return false,
                Some(n) if n.key.as_bytes() == key => {
                    let mut node = link.take().expect("matched a node");
                    *link = node.next.take();
                    self.used -= 1;
                    return true;
                }
                Some(n) => link = &mut n.next,
            }
        }
    }
}

/// The hashtable encoding (see the module docs).
#[derive(Clone, Default)]
struct HTable {
    t: [Tab; 2],
    /// Next bucket of `t[0]` to move into `t[1]`; None when not rehashing.
    rehash_idx: Option<usize>,
    hasher: hashbrown::DefaultHashBuilder,
}

const HT_INITIAL: usize = 4;

impl HTable {
    /// A table presized for `n` members (as `dictExpand` before a
    /// conversion).
    fn with_capacity(n: usize) -> HTable {
        let mut t = HTable::default();
        if n > 0 {
            t.t[0] = Tab::with_size(n.max(HT_INITIAL).next_power_of_two());
        }
        t
    }

    #[inline]
    fn len(&self) -> usize {
        self.t[0].used + self.t[1].used
    }

    #[inline]
    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    #[inline]
    fn rehashing(&self) -> bool {
        self.rehash_idx.is_some()
    }

    fn bucket_count(&self) -> usize {
        self.t[0].buckets.len() + self.t[1].buckets.len()
    }

    /// Moves up to `n` buckets of the old table into the new one.
    fn rehash_step(&mut self, n: usize) {
        let Some(mut idx) = self.rehash_idx else {
            return;
        };
        let hasher = &self.hasher;
        let [t0, t1] = &mut self.t;
        let mut empty_visits = n * 10;
        let mut moved = 0;
        while moved < n && t0.used > 0 {
            while t0.buckets[idx].is_none() {
                idx += 1;
                empty_visits -= 1;
                if empty_visits == 0 {
                    self.rehash_idx = Some(idx);
                    return;
                }
            }
            let mut chain = t0.buckets[idx].take();
            while let Some(mut node) = chain {
                chain = node.next.take();
                let h = hasher.hash_one(node.key.as_bytes());
                t0.used -= 1;
                t1.push(h, node);
            }
            idx += 1;
            moved += 1;
        }
        if t0.used == 0 {
            *t0 = std::mem::take(t1);
            self.rehash_idx = None;
        } else {
            self.rehash_idx = Some(idx);
        }
    }

    fn resize_to(&mut self, size: usize) {
        if self.rehashing() {
            return;
        }
        let size = size.max(HT_INITIAL).next_power_of_two();
        if size == self.t[0].buckets.len() {
            return;
        }
        if self.t[0].buckets.is_empty() {
            self.t[0] = Tab::with_size(size);
        } else {
            self.t[1] = Tab::with_size(size);
            self.rehash_idx = Some(0);
        }
    }

    fn contains(&self, key: &[u8]) -> bool {
        if self.len() == 0 {
            return false;
        }
        let h = self.hash(key);
        self.t[0].contains(key, h) || (self.rehashing() && self.t[1].contains(key, h))
    }

    /// Adds `key` if absent; grows (Redis's `_dictExpandIfNeeded`) first.
    fn insert(&mut self, key: &[u8]) -> bool {
        self.rehash_step(1);
        let h = self.hash(key);
        if self.t[0].contains(key, h) || (self.rehashing() && self.t[1].contains(key, h)) {
            return false;
        }
        if !self.rehashing() {
            let size = self.t[0].buckets.len();
            if size == 0 || self.t[0].used >= size {
                self.resize_to(self.t[0].used + 1);
            }
        }
        let node = Box::new(Node {
            next: None,
            key: Key::new(key),
        });
        let ti = self.rehashing() as usize;
        self.t[ti].push(h, node);
        true
    }

    /// Removes `key`; shrinks when under 10% full, as Redis's
    /// `htNeedsResize` + `dictResize` after a set removal.
    fn remove(&mut self, key: &[u8]) -> bool {
        if self.len() == 0 {
            return false;
        }
        self.rehash_step(1);
        let h = self.hash(key);
        let removed = self.t[0].remove(key, h) || (self.rehashing() && self.t[1].remove(key, h));
        if removed && !self.rehashing() {
            let size = self.t[0].buckets.len();
            if size > HT_INITIAL && self.t[0].used * 10 < size {
                self.resize_to(self.t[0].used);
            }
        }
        removed
    }

    fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.t.iter().flat_map(|t| {
            t.buckets.iter().flat_map(|b| {
                let mut cur = b.as_deref();
                std::iter::from_fn(move || {
                    let n = cur?;
                    cur = n.next.as_deref();
                    Some(n.key.as_bytes())
                })
            })
        })
    }

    /// Redis's `dictScan`: emits the buckets addressed by `cursor` (in both
    /// tables while rehashing) and returns the next cursor, 0 when done.
    fn scan<'a>(&'a self, cursor: u64, mut f: impl FnMut(&'a [u8])) -> u64 {
        if self.len() == 0 {
            return 0;
        }
        fn emit<'a>(t: &'a Tab, idx: u64, f: &mut impl FnMut(&'a [u8])) {
            let mut cur = t.buckets[(idx & t.mask()) as usize].as_deref();
            while let Some(n) = cur {
                f(n.key.as_bytes());
                cur = n.next.as_deref();
            }
        }
        let mut v = cursor;
        if !self.rehashing() {
            let t = &self.t[0];
            emit(t, v, &mut f);
            v |= !t.mask();
            v = v.reverse_bits().wrapping_add(1).reverse_bits();
        } else {
            let (small, large) = if self.t[0].buckets.len() <= self.t[1].buckets.len() {
                (&self.t[0], &self.t[1])
            } else {
                (&self.t[1], &self.t[0])
            };
            let (m0, m1) = (small.mask(), large.mask());
            emit(small, v, &mut f);
            loop {
                emit(large, v, &mut f);
                v |= !m1;
                v = v.reverse_bits().wrapping_add(1).reverse_bits();
                if v & (m0 ^ m1) == 0 {
                    break;
                }
            }
        }
        v
    }

    /// A uniformly random member: a random bucket of either table and a
    /// random chain position below the chain-length bound, retried while
    /// that slot is empty (every member has the same chance per try).
    fn random(&self, mut rnd: impl FnMut() -> u64) -> Option<&[u8]> {
        let len = self.len();
        if len == 0 {
            return None;
        }
        let n0 = self.t[0].buckets.len();
        let total = (n0 + self.t[1].buckets.len()) as u64;
        let bound = self.t[0].max_chain.max(self.t[1].max_chain).max(1) as u64;
        for _ in 0..100_000 {
            let i = (rnd() % total) as usize;
            let mut pos = rnd() % bound;
            let b = if i < n0 {
                &self.t[0].buckets[i]
            } else {
                &self.t[1].buckets[i - n0]
            };
            let mut cur = b.as_deref();
            while let Some(n) = cur {
                if pos == 0 {
                    return Some(n.key.as_bytes());
                }
                pos -= 1;
                cur = n.next.as_deref();
            }
        }
        // Pathologically sparse: walk to a random position instead.
        self.iter().nth((rnd() % len as u64) as usize)
    }

    fn heap_size(&self) -> usize {
        const SAMPLE: usize = 64;
        let n = self.len();
        let (mut seen, mut long_bytes) = (0usize, 0usize);
        for k in self.iter().take(SAMPLE) {
            seen += 1;
            if k.len() > INLINE_KEY {
                long_bytes += k.len();
            }
        }
        let long_total = (long_bytes * n).checked_div(seen).unwrap_or(0);
        std::mem::size_of::<HTable>()
            + self.bucket_count() * std::mem::size_of::<Link>()
            + n * std::mem::size_of::<Node>()
            + long_total
    }
}

// ----- the set ---------------------------------------------------------------

#[derive(Clone)]
enum Repr {
    Int(IntSet),
    Hash(Box<HTable>),
}

/// A set value (see the module docs for the encodings).
#[derive(Clone)]
pub struct Set {
    repr: Repr,
}

impl Default for Set {
    fn default() -> Self {
        Set::new()
    }
}

impl std::fmt::Debug for Set {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let members: Vec<String> = self
            .iter()
            .map(|m| String::from_utf8_lossy(&m.to_vec()).into_owned())
            .collect();
        f.debug_struct("Set")
            .field("encoding", &self.encoding())
            .field("members", &members)
            .finish()
    }
}

/// Sets are equal when they hold the same members (encodings aside).
impl PartialEq for Set {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|m| other.contains_member(m))
    }
}

impl Set {
    /// An empty set in the intset encoding (the start of every *STORE
    /// result, as Redis's `createIntsetObject`).
    pub fn new() -> Set {
        Set {
            repr: Repr::Int(IntSet::new()),
        }
    }

    /// An empty set able to hold `first` (Redis's `setTypeCreate`): an
    /// intset when it is an integer, a hashtable otherwise.
    pub fn for_member(first: &[u8]) -> Set {
        if parse_i64(first).is_some() {
            Set::new()
        } else {
            Set {
                repr: Repr::Hash(Box::default()),
            }
        }
    }

    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Int(is) => is.len(),
            Repr::Hash(d) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match &self.repr {
            Repr::Int(_) => "intset",
            Repr::Hash(_) => "hashtable",
        }
    }

    pub fn is_intset(&self) -> bool {
        matches!(self.repr, Repr::Int(_))
    }

    /// Approximate heap bytes held (MEMORY USAGE). Long hashtable members
    /// are estimated from a sample, as Redis samples.
    pub fn heap_size(&self) -> usize {
        match &self.repr {
            Repr::Int(is) => is.heap_size(),
            Repr::Hash(d) => d.heap_size(),
        }
    }

    /// Converts an intset to a hashtable (Redis's `setTypeConvert`).
    fn convert_to_hash(&mut self) {
        if let Repr::Int(is) = &self.repr {
            let mut d = HTable::with_capacity(is.len() + 1);
            let mut buf = itoa::Buffer::new();
            for x in is.iter() {
                d.insert(buf.format(x).as_bytes());
            }
            self.repr = Repr::Hash(Box::new(d));
        }
    }

    /// Adds a member; `max_intset` is `set-max-intset-entries`. Returns
    /// whether it was new (Redis's `setTypeAdd`).
    pub fn add(&mut self, m: &[u8], max_intset: usize) -> bool {
        match &mut self.repr {
            Repr::Hash(d) => d.insert(m),
            Repr::Int(_) => match parse_i64(m) {
                Some(x) => self.add_int(x, max_intset),
                None => {
                    self.convert_to_hash();
                    let Repr::Hash(d) = &mut self.repr else {
                        unreachable!("just converted")
                    };
                    d.insert(m)
                }
            },
        }
    }

    /// Adds an integer member.
    pub fn add_int(&mut self, x: i64, max_intset: usize) -> bool {
        match &mut self.repr {
            Repr::Int(is) => {
                if !is.insert(x) {
                    return false;
                }
                if is.len() > max_intset.min(INTSET_HARD_MAX) {
                    self.convert_to_hash();
                }
                true
            }
            Repr::Hash(d) => d.insert(itoa::Buffer::new().format(x).as_bytes()),
        }
    }

    /// Adds a member in either form.
    pub fn add_member(&mut self, m: Member, max_intset: usize) -> bool {
        match m {
            Member::Int(x) => self.add_int(x, max_intset),
            Member::Str(b) => self.add(b, max_intset),
        }
    }

    /// Removes a member. Returns whether it was there.
    pub fn remove(&mut self, m: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Int(is) => parse_i64(m).is_some_and(|x| is.remove(x)),
            Repr::Hash(d) => d.remove(m),
        }
    }

    /// Removes a member in either form.
    pub fn remove_member(&mut self, m: Member) -> bool {
        match (m, &mut self.repr) {
            (Member::Int(x), Repr::Int(is)) => is.remove(x),
            _ => m.with_bytes(|b| self.remove(b)),
        }
    }

    pub fn contains(&self, m: &[u8]) -> bool {
        match &self.repr {
            Repr::Int(is) => parse_i64(m).is_some_and(|x| is.find(x).is_some()),
            Repr::Hash(d) => d.contains(m),
        }
    }

    pub fn contains_member(&self, m: Member) -> bool {
        match (m, &self.repr) {
            (Member::Int(x), Repr::Int(is)) => is.find(x).is_some(),
            (Member::Int(x), Repr::Hash(d)) => d.contains(itoa::Buffer::new().format(x).as_bytes()),
            (Member::Str(b), _) => self.contains(b),
        }
    }

    /// Every member: integers in ascending order for an intset, bucket
    /// order for a hashtable.
    pub fn iter(&self) -> impl Iterator<Item = Member<'_>> + '_ {
        let (ints, strs) = match &self.repr {
            Repr::Int(is) => (Some(is.iter().map(Member::Int)), None),
            Repr::Hash(d) => (None, Some(d.iter().map(Member::Str))),
        };
        ints.into_iter().flatten().chain(strs.into_iter().flatten())
    }

    /// A uniformly random member (None when empty); `rnd` supplies
    /// randomness.
    pub fn random(&self, mut rnd: impl FnMut() -> u64) -> Option<Member<'_>> {
        match &self.repr {
            Repr::Int(is) => {
                if is.len() == 0 {
                    return None;
                }
                Some(Member::Int(is.get((rnd() % is.len() as u64) as usize)))
            }
            Repr::Hash(d) => d.random(rnd).map(Member::Str),
        }
    }

    /// Removes and returns a random member as bytes.
    pub fn pop_random(&mut self, mut rnd: impl FnMut() -> u64) -> Option<Vec<u8>> {
        match &mut self.repr {
            Repr::Int(is) => {
                if is.len() == 0 {
                    return None;
                }
                let x = is.remove_at((rnd() % is.len() as u64) as usize);
                Some(itoa::Buffer::new().format(x).as_bytes().to_vec())
            }
            Repr::Hash(d) => {
                let k = d.random(rnd)?.to_vec();
                d.remove(&k);
                Some(k)
            }
        }
    }

    /// One SSCAN step. A hashtable visits the buckets addressed by
    /// `cursor` (Redis's `dictScan`) and returns the next cursor; an intset
    /// is returned whole with cursor 0, as Redis does.
    pub fn scan<'a>(&'a self, cursor: u64, mut f: impl FnMut(Member<'a>)) -> u64 {
        match &self.repr {
            Repr::Int(is) => {
                is.iter().for_each(|x| f(Member::Int(x)));
                0
            }
            Repr::Hash(d) => d.scan(cursor, |k| f(Member::Str(k))),
        }
    }
}

// ----- RDB support -----

impl Set {
    /// For an intset, its element width in bytes (2, 4 or 8, as Redis's
    /// intset `encoding` field); None for a hashtable. The members come in
    /// ascending order from [`Set::iter`].
    pub fn intset_width(&self) -> Option<u8> {
        match &self.repr {
            Repr::Int(is) => Some(is.width()),
            Repr::Hash(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// xorshift64*, deterministic per seed.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn members(s: &Set) -> HashSet<Vec<u8>> {
        s.iter().map(|m| m.to_vec()).collect()
    }

    #[test]
    fn intset_widths_grow_and_stay_sorted() {
        let mut s = Set::new();
        for x in [5i64, -3, 100, 0] {
            assert!(s.add_int(x, 512));
        }
        assert!(matches!(&s.repr, Repr::Int(IntSet::W16(_))));
        assert!(s.add(b"70000", 512));
        assert!(matches!(&s.repr, Repr::Int(IntSet::W32(_))));
        assert!(s.add(b"-9223372036854775808", 512));
        assert!(matches!(&s.repr, Repr::Int(IntSet::W64(_))));
        assert!(!s.add(b"5", 512));
        let v: Vec<Member> = s.iter().collect();
        let want: Vec<Member> = [i64::MIN, -3, 0, 5, 100, 70000]
            .into_iter()
            .map(Member::Int)
            .collect();
        assert_eq!(v, want);
        // Removing never narrows the width again (as Redis).
        assert!(s.remove(b"-9223372036854775808"));
        assert!(s.remove(b"70000"));
        assert!(matches!(&s.repr, Repr::Int(IntSet::W64(_))));
        assert!(s.contains(b"100") && !s.contains(b"101") && !s.contains(b"0100"));
        assert!(!s.contains(b"99999999999999999999"));
        assert_eq!(s.heap_size(), 4 * 8);
    }

    #[test]
    fn conversion_rules_follow_redis() {
        // Non-integer members (by string2ll rules) convert.
        for m in [
            "a",
            "007",
            "-0",
            "+1",
            " 1",
            "1 ",
            "",
            "1.0",
            "9223372036854775808",
        ] {
            let mut s = Set::new();
            s.add(b"1", 512);
            assert!(s.add(m.as_bytes(), 512), "{m:?}");
            assert_eq!(s.encoding(), "hashtable", "{m:?}");
            assert!(s.contains(m.as_bytes()) && s.contains(b"1"));
        }
        // Growing past the limit converts; reaching it does not.
        let mut s = Set::new();
        for i in 0..4 {
            s.add_int(i, 4);
        }
        assert_eq!(s.encoding(), "intset");
        s.add_int(4, 4);
        assert_eq!(s.encoding(), "hashtable");
        assert_eq!(s.len(), 5);
        assert!(s.contains_member(Member::Int(3)));
        // A limit of 0 makes every set a hashtable.
        let mut s = Set::new();
        s.add(b"1", 0);
        assert_eq!(s.encoding(), "hashtable");
        assert_eq!(Set::for_member(b"12").encoding(), "intset");
        assert_eq!(Set::for_member(b"x").encoding(), "hashtable");
    }

    /// Random operations against a HashSet model, across both encodings
    /// and the conversion between them.
    #[test]
    fn matches_a_model_under_random_operations() {
        for seed in 1..=20u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
            let max = [0usize, 1, 8, 64, 512][seed as usize % 5];
            let mut s = Set::new();
            let mut model: HashSet<Vec<u8>> = HashSet::new();
            let strings = rng.below(3) == 0;
            for _ in 0..3000 {
                let m: Vec<u8> = if strings && rng.below(20) == 0 {
                    format!("s{}", rng.below(50)).into_bytes()
                } else {
                    match rng.below(4) {
                        0 => (rng.below(200) as i64 - 100).to_string().into_bytes(),
                        1 => (rng.below(100_000) as i64 * 1000).to_string().into_bytes(),
                        2 => (rng.next() as i64).to_string().into_bytes(),
                        _ => (rng.below(40) as i64).to_string().into_bytes(),
                    }
                };
                match rng.below(10) {
                    0..=4 => assert_eq!(s.add(&m, max), model.insert(m.clone())),
                    5..=6 => assert_eq!(s.remove(&m), model.remove(&m)),
                    7 => assert_eq!(s.contains(&m), model.contains(&m)),
                    8 => {
                        if let Some(p) = s.pop_random(|| rng.next()) {
                            assert!(model.remove(&p));
                        } else {
                            assert!(model.is_empty());
                        }
                    }
                    _ => {
                        if let Some(r) = s.random(|| rng.next()) {
                            assert!(model.contains(&r.to_vec()));
                        }
                    }
                }
                assert_eq!(s.len(), model.len());
                let all_ints = model.iter().all(|m| parse_i64(m).is_some());
                if !all_ints {
                    assert_eq!(s.encoding(), "hashtable");
                }
            }
            assert_eq!(members(&s), model, "seed {seed}");
            let c = s.clone();
            assert_eq!(c, s);
            assert_eq!(c.encoding(), s.encoding());
        }
    }

    #[test]
    fn scan_covers_every_member() {
        let mut s = Set::new();
        for i in 0..1000 {
            s.add(format!("m{i}").as_bytes(), 512);
        }
        let mut seen = HashSet::new();
        let mut cursor = 0;
        loop {
            cursor = s.scan(cursor, |m| {
                seen.insert(m.to_vec());
            });
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen, members(&s));
        let mut ints = Set::new();
        ints.add(b"3", 512);
        ints.add(b"1", 512);
        let mut got = Vec::new();
        assert_eq!(ints.scan(12345, |m| got.push(m.to_vec())), 0);
        assert_eq!(got, vec![b"1".to_vec(), b"3".to_vec()]);
    }

    #[test]
    fn hashtable_nodes_are_small() {
        assert_eq!(std::mem::size_of::<Node>(), 32);
        assert_eq!(std::mem::size_of::<Link>(), 8);
        assert!(std::mem::size_of::<Set>() <= 32);
    }

    /// Members present for a whole SSCAN are returned even when the table
    /// grows and shrinks (through incremental rehashes) between calls.
    #[test]
    fn scan_survives_growth_and_shrinking() {
        let mut s = Set::new();
        for i in 0..1000 {
            s.add(format!("k{i}").as_bytes(), 0);
        }
        let mut seen = HashSet::new();
        let (mut cursor, mut rounds, mut extra) = (0u64, 0, 0);
        loop {
            cursor = s.scan(cursor, |m| {
                seen.insert(m.to_vec());
            });
            rounds += 1;
            if rounds < 40 {
                for _ in 0..40 {
                    s.add(format!("x{extra}").as_bytes(), 0);
                    extra += 1;
                }
            } else if rounds < 80 {
                for _ in 0..40 {
                    extra -= 1;
                    s.remove(format!("x{extra}").as_bytes());
                }
            }
            if cursor == 0 || rounds > 100_000 {
                break;
            }
        }
        assert_eq!(cursor, 0);
        for i in 0..1000 {
            assert!(seen.contains(format!("k{i}").as_bytes()), "missed k{i}");
        }
    }

    #[test]
    fn random_is_roughly_uniform() {
        let mut rng = Rng(42);
        for enc in ["intset", "hashtable"] {
            let mut s = Set::new();
            for i in 0..10 {
                s.add(
                    i.to_string().as_bytes(),
                    if enc == "intset" { 512 } else { 0 },
                );
            }
            assert_eq!(s.encoding(), enc);
            let mut counts = std::collections::HashMap::new();
            for _ in 0..20_000 {
                *counts
                    .entry(s.random(|| rng.next()).unwrap().to_vec())
                    .or_insert(0) += 1;
            }
            assert_eq!(counts.len(), 10);
            assert!(counts.values().all(|&c| c > 1000), "{enc}: {counts:?}");
        }
    }
}
