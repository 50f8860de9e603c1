//! Sorted sets, in Redis 7.0's two encodings.
//!
//! - "listpack" (small sets): one byte buffer holding the entries sorted by
//!   (score, member), each as `[score: f64 LE][len: LEB128][member]`. Every
//!   operation is a linear scan, as in Redis, which is cheap below the
//!   `zset-max-listpack-entries` threshold.
//! - "skiplist" (large sets; the name OBJECT ENCODING reports): a member →
//!   score map ([`Dict`], so ZSCAN keeps Redis's cursor guarantee) plus an
//!   order-statistic B+tree keyed by (score, member) whose inner nodes keep
//!   the element count of every child. Insert, delete, rank (ZRANK), select
//!   by rank and range starts are O(log n); range walks are O(log n + k).
//!
//! Ties are ordered by member bytes (memcmp, shorter first), as Redis does.
//! Scores are never NaN.

use std::cmp::Ordering;

use std::alloc::Layout;
use std::hash::BuildHasher;
use std::ptr::NonNull;

/// Most items a tree leaf holds before it splits.
const LEAF_CAP: usize = 64;
/// Most children an inner tree node holds before it splits.
const INNER_CAP: usize = 64;

/// Orders (score, member) keys: by score, then by member bytes.
#[inline]
fn cmp_key(s1: f64, m1: &[u8], s2: f64, m2: &[u8]) -> Ordering {
    match s1.partial_cmp(&s2) {
        Some(Ordering::Equal) | None => m1.cmp(m2),
        Some(o) => o,
    }
}

/// The encoding thresholds (zset-max-listpack-entries/-value).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_entries: usize,
    pub max_value: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: 128,
            max_value: 64,
        }
    }
}

/// ZADD's options.
#[derive(Clone, Copy, Debug, Default)]
pub struct AddFlags {
    pub nx: bool,
    pub xx: bool,
    pub gt: bool,
    pub lt: bool,
    pub incr: bool,
}

/// What [`ZSet::add`] did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Added {
    /// A new member, with this score.
    New(f64),
    /// An existing member whose score changed to this.
    Updated(f64),
    /// An existing member, processed but with its score unchanged.
    Same(f64),
    /// Nothing done (NX/XX/GT/LT said no).
    Nop,
    /// INCR would have produced NaN; nothing done.
    Nan,
}

/// A score interval (ZRANGEBYSCORE and friends).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreRange {
    pub min: f64,
    pub max: f64,
    pub minex: bool,
    pub maxex: bool,
}

impl ScoreRange {
    #[inline]
    pub fn gte_min(&self, v: f64) -> bool {
        if self.minex {
            v > self.min
        } else {
            v >= self.min
        }
    }
    #[inline]
    pub fn lte_max(&self, v: f64) -> bool {
        if self.maxex {
            v < self.max
        } else {
            v <= self.max
        }
    }
}

/// One end of a lexicographic interval: `-`, `+`, `[x` or `(x`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LexBound {
    Min,
    Max,
    Incl(Vec<u8>),
    Excl(Vec<u8>),
}

impl LexBound {
    /// Redis's `zslParseLexRangeItem`.
    pub fn parse(s: &[u8]) -> Option<LexBound> {
        match s.first()? {
            b'+' if s.len() == 1 => Some(LexBound::Max),
            b'-' if s.len() == 1 => Some(LexBound::Min),
            b'(' => Some(LexBound::Excl(s[1..].to_vec())),
            b'[' => Some(LexBound::Incl(s[1..].to_vec())),
            _ => None,
        }
    }
    /// Whether the bound excludes its value (`-` and `+` count as exclusive).
    fn exclusive(&self) -> bool {
        !matches!(self, LexBound::Incl(_))
    }
}

/// A lexicographic interval (ZRANGEBYLEX and friends).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LexRange {
    pub min: LexBound,
    pub max: LexBound,
}

impl LexRange {
    pub fn parse(min: &[u8], max: &[u8]) -> Option<LexRange> {
        Some(LexRange {
            min: LexBound::parse(min)?,
            max: LexBound::parse(max)?,
        })
    }
    #[inline]
    pub fn gte_min(&self, v: &[u8]) -> bool {
        match &self.min {
            LexBound::Min => true,
            LexBound::Max => false,
            LexBound::Incl(m) => v >= &m[..],
            LexBound::Excl(m) => v > &m[..],
        }
    }
    #[inline]
    pub fn lte_max(&self, v: &[u8]) -> bool {
        match &self.max {
            LexBound::Max => true,
            LexBound::Min => false,
            LexBound::Incl(m) => v <= &m[..],
            LexBound::Excl(m) => v < &m[..],
        }
    }
    /// Redis's quick test for intervals that can hold nothing
    /// (`sdscmplex(min, max) > 0`, or equal ends with one exclusive).
    pub fn is_empty(&self) -> bool {
        use LexBound::*;
        let cmp = match (&self.min, &self.max) {
            (Min, Min) | (Max, Max) => Ordering::Equal,
            (Min, _) | (_, Max) => Ordering::Less,
            (Max, _) | (_, Min) => Ordering::Greater,
            (Incl(a) | Excl(a), Incl(b) | Excl(b)) => a.cmp(b),
        };
        cmp == Ordering::Greater
            || (cmp == Ordering::Equal && (self.min.exclusive() || self.max.exclusive()))
    }
}

// ----- listpack ------------------------------------------------------------

/// The small encoding: sorted entries in one buffer.
#[derive(Clone, Default)]
struct Lp {
    buf: Vec<u8>,
    n: usize,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[inline]
fn get_varint(b: &[u8], mut p: usize) -> (u64, usize) {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let c = b[p];
        p += 1;
        v |= ((c & 0x7f) as u64) << shift;
        if c < 0x80 {
            return (v, p);
        }
        shift += 7;
    }
}

/// Integral scores with |score| below this are stored as integers.
const LP_INT_RANGE: f64 = (1u64 << 53) as f64;
/// Score tags: a first byte below `LP_VARINT` is the score itself (an
/// integer 0..=239); `LP_VARINT` is followed by an integer as a LEB128
/// zigzag varint; `LP_F64` by the score as an f64 (LE).
const LP_VARINT: u8 = 0xF0;
const LP_F64: u8 = 0xF1;

/// Encodes one entry: `[score][len: LEB128][member]`. Redis 7.0 also
/// stores integral scores as listpack integers, so a -0 score reads back
/// as 0 in this encoding.
fn encode_entry(out: &mut Vec<u8>, m: &[u8], score: f64) {
    if score.fract() == 0.0 && score.abs() < LP_INT_RANGE {
        let n = score as i64;
        if (0..LP_VARINT as i64).contains(&n) {
            out.push(n as u8);
        } else {
            out.push(LP_VARINT);
            put_varint(out, ((n << 1) ^ (n >> 63)) as u64);
        }
    } else {
        out.push(LP_F64);
        out.extend_from_slice(&score.to_le_bytes());
    }
    put_varint(out, m.len() as u64);
    out.extend_from_slice(m);
}

/// The allocator size class (mimalloc: one per 8 bytes up to 64, then four
/// per doubling) that holds `n` bytes: growing a buffer to it costs no
/// more memory than the allocator would use anyway.
fn size_class(n: usize) -> usize {
    let w = n.div_ceil(8).max(1);
    if w <= 8 {
        return w * 8;
    }
    let b = usize::BITS - 1 - (w - 1).leading_zeros();
    let step = 1usize << (b - 2);
    w.div_ceil(step) * step * 8
}

struct LpIter<'a> {
    buf: &'a [u8],
    off: usize,
}

impl<'a> Iterator for LpIter<'a> {
    /// (offset, score, member)
    type Item = (usize, f64, &'a [u8]);
    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.off >= self.buf.len() {
            return None;
        }
        let (s, m, next) = lp_entry(self.buf, self.off);
        let off = self.off;
        self.off = next;
        Some((off, s, m))
    }
}

/// Decodes the entry at `off`: (score, member, offset of the next entry).
#[inline]
fn lp_entry(b: &[u8], off: usize) -> (f64, &[u8], usize) {
    let t = b[off];
    let mut p = off + 1;
    let score = if t < LP_VARINT {
        t as f64
    } else if t == LP_VARINT {
        let (z, q) = get_varint(b, p);
        p = q;
        (((z >> 1) as i64) ^ -((z & 1) as i64)) as f64
    } else {
        let mut sb = [0u8; 8];
        sb.copy_from_slice(&b[p..p + 8]);
        p += 8;
        f64::from_le_bytes(sb)
    };
    let (len, p) = get_varint(b, p);
    let len = len as usize;
    (score, &b[p..p + len], p + len)
}

impl Lp {
    #[inline]
    fn iter(&self) -> LpIter<'_> {
        LpIter {
            buf: &self.buf,
            off: 0,
        }
    }

    /// Byte offsets of every entry, plus the end of the buffer.
    fn offsets(&self) -> Vec<usize> {
        let mut v: Vec<usize> = self.iter().map(|(o, _, _)| o).collect();
        v.push(self.buf.len());
        v
    }

    /// (offset, score) of `m`.
    fn find(&self, m: &[u8]) -> Option<(usize, f64)> {
        self.iter()
            .find(|&(_, _, mm)| mm == m)
            .map(|(o, s, _)| (o, s))
    }

    fn rank(&self, m: &[u8]) -> Option<usize> {
        self.iter().position(|(_, _, mm)| mm == m)
    }

    /// Inserts a member known to be absent at its sorted position.
    fn insert(&mut self, m: &[u8], score: f64) {
        let off = self
            .iter()
            .find(|&(_, s, mm)| cmp_key(s, mm, score, m) == Ordering::Greater)
            .map(|(o, _, _)| o)
            .unwrap_or(self.buf.len());
        let mut enc = Vec::with_capacity(1 + 8 + 5 + m.len());
        encode_entry(&mut enc, m, score);
        // Grow to the next allocator size class rather than doubling: the
        // buffer is small (bounded by the listpack limits), so the extra
        // copies are cheap, and most small sets never change after they
        // are built.
        let need = self.buf.len() + enc.len();
        if need > self.buf.capacity() {
            self.buf.reserve_exact(size_class(need) - self.buf.len());
        }
        self.buf.splice(off..off, enc);
        self.n += 1;
    }

    fn remove_at(&mut self, off: usize) {
        let (_, _, next) = lp_entry(&self.buf, off);
        self.buf.drain(off..next);
        self.n -= 1;
        self.trim();
    }

    /// Gives back a large unused tail (after removals).
    fn trim(&mut self) {
        if self.buf.capacity() > self.buf.len() + self.buf.len() / 4 + 64 {
            self.buf.shrink_to(self.buf.len() + self.buf.len() / 8);
        }
    }

    fn get(&self, rank: usize) -> Option<(&[u8], f64)> {
        self.iter().nth(rank).map(|(_, s, m)| (m, s))
    }
}
// ----- order-statistic B+tree ----------------------------------------------

/// A leaf slot: the score (so most comparisons never leave the leaf) and
/// the member's node, owned by the set's [`ZMap`].
#[derive(Clone, Copy)]
struct Item {
    score: f64,
    node: ZPtr,
}

impl Item {
    /// The member's bytes.
    #[inline]
    fn member(&self) -> &[u8] {
        // SAFETY: a tree only holds nodes its set's map owns, and a node is
        // freed only after it has left the tree.
        unsafe { znode_member(self.node) }
    }
    #[inline]
    fn lt(&self, s: f64, m: &[u8]) -> bool {
        match self.score.partial_cmp(&s) {
            Some(Ordering::Equal) | None => self.member() < m,
            Some(o) => o == Ordering::Less,
        }
    }
}

/// A separator of an inner node: a key of its own (it may outlive the
/// member it was copied from).
struct Sep {
    score: f64,
    member: Box<[u8]>,
}

impl Sep {
    fn of(it: &Item) -> Sep {
        Sep {
            score: it.score,
            member: it.member().into(),
        }
    }
    #[inline]
    fn lt(&self, s: f64, m: &[u8]) -> bool {
        cmp_key(self.score, &self.member, s, m) == Ordering::Less
    }
}

enum Node {
    Leaf(Vec<Item>),
    Inner(Box<Inner>),
}

/// An inner node: `seps[i]` is an upper bound of child `i` (>= every key
/// in it, < every key of child `i + 1`); the last child is bounded by the
/// parent. Bounds may be stale after deletions, which keeps them valid.
struct Inner {
    kids: Vec<Node>,
    counts: Vec<usize>,
    seps: Vec<Sep>,
}

struct Tree {
    root: Node,
    len: usize,
}

impl Node {
    /// Entries of the node itself (items or children).
    fn width(&self) -> usize {
        match self {
            Node::Leaf(v) => v.len(),
            Node::Inner(n) => n.kids.len(),
        }
    }
    fn cap(&self) -> usize {
        match self {
            Node::Leaf(_) => LEAF_CAP,
            Node::Inner(_) => INNER_CAP,
        }
    }
}

/// Inserts into the subtree; on a split returns (right node, its count,
/// separator = upper bound of the left part).
fn tree_ins(node: &mut Node, item: Item) -> Option<(Node, usize, Sep)> {
    match node {
        Node::Leaf(v) => {
            let pos = v.partition_point(|x| x.lt(item.score, item.member()));
            if v.len() == v.capacity() {
                v.reserve_exact((LEAF_CAP + 1 - v.len()).clamp(1, 8));
            }
            v.insert(pos, item);
            if v.len() > LEAF_CAP {
                // An append (the new key is the leaf's last) keeps the leaf
                // full and starts a new one, so sets built in key order end
                // up with full leaves; other inserts split in the middle.
                let mid = if pos + 1 == v.len() {
                    v.len() - 1
                } else {
                    v.len() / 2
                };
                let mut right = Vec::with_capacity(v.len() - mid + 8);
                right.extend(v.drain(mid..));
                // A fresh allocation of the exact size: shrinking in place
                // would keep the old block's size class in the allocator.
                let mut left = Vec::with_capacity(v.len());
                left.extend_from_slice(v);
                *v = left;
                let sep = Sep::of(v.last().expect("non-empty leaf"));
                let n = right.len();
                return Some((Node::Leaf(right), n, sep));
            }
            None
        }
        Node::Inner(inn) => {
            let i = inn
                .seps
                .partition_point(|x| x.lt(item.score, item.member()));
            inn.counts[i] += 1;
            let (right, rcount, sep) = tree_ins(&mut inn.kids[i], item)?;
            inn.counts[i] -= rcount;
            inn.kids.insert(i + 1, right);
            inn.counts.insert(i + 1, rcount);
            inn.seps.insert(i, sep);
            if inn.kids.len() > INNER_CAP {
                // As for leaves: an append keeps this node full.
                let mid = if i + 2 == inn.kids.len() {
                    inn.kids.len() - 1
                } else {
                    inn.kids.len() / 2
                };
                let kids = inn.kids.split_off(mid);
                let counts = inn.counts.split_off(mid);
                let seps = inn.seps.split_off(mid);
                let up = inn.seps.pop().expect("separator");
                let total = counts.iter().sum();
                return Some((
                    Node::Inner(Box::new(Inner { kids, counts, seps })),
                    total,
                    up,
                ));
            }
            None
        }
    }
}

fn tree_rem(node: &mut Node, s: f64, m: &[u8]) -> Option<Item> {
    match node {
        Node::Leaf(v) => {
            let pos = v.partition_point(|x| x.lt(s, m));
            if pos < v.len() && v[pos].score == s && v[pos].member() == m {
                let it = v.remove(pos);
                if v.capacity() > 2 * v.len() + 16 {
                    v.shrink_to(v.len() + 8);
                }
                Some(it)
            } else {
                None
            }
        }
        Node::Inner(inn) => {
            let i = inn.seps.partition_point(|x| x.lt(s, m));
            let r = tree_rem(&mut inn.kids[i], s, m)?;
            inn.counts[i] -= 1;
            inn.fix(i);
            Some(r)
        }
    }
}

impl Inner {
    /// Restores balance after child `i` shrank: drops it when empty, or
    /// merges it with a neighbour when both fit in one node.
    fn fix(&mut self, i: usize) {
        let w = self.kids[i].width();
        if w == 0 {
            self.kids.remove(i);
            self.counts.remove(i);
            if i < self.seps.len() {
                self.seps.remove(i);
            } else if i > 0 {
                self.seps.remove(i - 1);
            }
            return;
        }
        if w >= self.kids[i].cap() / 4 || self.kids.len() < 2 {
            return;
        }
        let j = if i + 1 < self.kids.len() { i } else { i - 1 };
        if self.kids[j].width() + self.kids[j + 1].width() > self.kids[j].cap() {
            return;
        }
        let right = self.kids.remove(j + 1);
        let rc = self.counts.remove(j + 1);
        let sep = self.seps.remove(j);
        match (&mut self.kids[j], right) {
            (Node::Leaf(a), Node::Leaf(b)) => a.extend(b),
            (Node::Inner(a), Node::Inner(b)) => {
                let b = *b;
                a.kids.extend(b.kids);
                a.counts.extend(b.counts);
                a.seps.push(sep);
                a.seps.extend(b.seps);
            }
            _ => unreachable!("siblings at different depths"),
        }
        self.counts[j] += rc;
    }
}

/// Calls `f` on the items of ranks `from..to` (relative to `node`), in
/// order or reversed; stops (returning false) when `f` does.
fn tree_visit(
    node: &Node,
    from: usize,
    to: usize,
    rev: bool,
    f: &mut dyn FnMut(&Item) -> bool,
) -> bool {
    match node {
        Node::Leaf(v) => {
            let s = &v[from..to];
            if rev {
                s.iter().rev().all(f)
            } else {
                s.iter().all(f)
            }
        }
        Node::Inner(inn) => {
            if !rev {
                let mut base = 0;
                for (k, &c) in inn.kids.iter().zip(&inn.counts) {
                    if base >= to {
                        break;
                    }
                    if base + c > from
                        && !tree_visit(k, from.saturating_sub(base), (to - base).min(c), rev, f)
                    {
                        return false;
                    }
                    base += c;
                }
            } else {
                let mut end: usize = inn.counts.iter().sum();
                for (k, &c) in inn.kids.iter().zip(&inn.counts).rev() {
                    if end <= from {
                        break;
                    }
                    let base = end - c;
                    if base < to
                        && !tree_visit(k, from.saturating_sub(base), (to - base).min(c), rev, f)
                    {
                        return false;
                    }
                    end = base;
                }
            }
            true
        }
    }
}

fn tree_drain(node: Node, out: &mut Vec<Item>) {
    match node {
        Node::Leaf(v) => out.extend(v),
        Node::Inner(inn) => {
            for k in inn.kids {
                tree_drain(k, out);
            }
        }
    }
}

impl Tree {
    fn new() -> Tree {
        Tree {
            root: Node::Leaf(Vec::new()),
            len: 0,
        }
    }

    /// Builds a tree from items sorted by key, nodes about 3/4 full.
    fn from_sorted(items: Vec<Item>) -> Tree {
        let len = items.len();
        if len <= LEAF_CAP {
            return Tree {
                root: Node::Leaf(items),
                len,
            };
        }
        let per = LEAF_CAP * 3 / 4;
        let nleaves = len.div_ceil(per);
        let mut level: Vec<(Node, usize, Sep)> = Vec::with_capacity(nleaves);
        let mut it = items.into_iter();
        for i in 0..nleaves {
            let take = len / nleaves + usize::from(i < len % nleaves);
            let mut v = Vec::with_capacity(take + 4);
            v.extend(it.by_ref().take(take));
            let max = Sep::of(v.last().expect("non-empty leaf"));
            level.push((Node::Leaf(v), take, max));
        }
        let per = INNER_CAP * 3 / 4;
        while level.len() > 1 {
            let n = level.len();
            let groups = n.div_ceil(per);
            let mut next = Vec::with_capacity(groups);
            let mut it = level.into_iter();
            for g in 0..groups {
                let take = n / groups + usize::from(g < n % groups);
                let mut kids = Vec::with_capacity(take);
                let mut counts = Vec::with_capacity(take);
                let mut seps = Vec::with_capacity(take);
                let mut total = 0;
                let mut last: Option<Sep> = None;
                for (node, c, max) in it.by_ref().take(take) {
                    if let Some(prev) = last.take() {
                        seps.push(prev);
                    }
                    kids.push(node);
                    counts.push(c);
                    total += c;
                    last = Some(max);
                }
                let node = Node::Inner(Box::new(Inner { kids, counts, seps }));
                next.push((node, total, last.expect("non-empty group")));
            }
            level = next;
        }
        Tree {
            root: level.pop().expect("root").0,
            len,
        }
    }

    fn into_items(self) -> Vec<Item> {
        let mut v = Vec::with_capacity(self.len);
        tree_drain(self.root, &mut v);
        v
    }

    fn insert(&mut self, score: f64, node: ZPtr) {
        if let Some((right, rcount, sep)) = tree_ins(&mut self.root, Item { score, node }) {
            let left = std::mem::replace(&mut self.root, Node::Leaf(Vec::new()));
            let lcount = self.len + 1 - rcount;
            self.root = Node::Inner(Box::new(Inner {
                kids: vec![left, right],
                counts: vec![lcount, rcount],
                seps: vec![sep],
            }));
        }
        self.len += 1;
    }

    fn remove(&mut self, s: f64, m: &[u8]) -> Option<Item> {
        let r = tree_rem(&mut self.root, s, m)?;
        self.len -= 1;
        loop {
            match &mut self.root {
                Node::Inner(inn) if inn.kids.len() == 1 => {
                    let k = inn.kids.pop().expect("one child");
                    self.root = k;
                }
                Node::Inner(inn) if inn.kids.is_empty() => self.root = Node::Leaf(Vec::new()),
                _ => break,
            }
        }
        Some(r)
    }

    /// 0-based rank of (s, m).
    fn rank(&self, s: f64, m: &[u8]) -> Option<usize> {
        let mut node = &self.root;
        let mut r = 0;
        loop {
            match node {
                Node::Inner(inn) => {
                    let i = inn.seps.partition_point(|x| x.lt(s, m));
                    r += inn.counts[..i].iter().sum::<usize>();
                    node = &inn.kids[i];
                }
                Node::Leaf(v) => {
                    let pos = v.partition_point(|x| x.lt(s, m));
                    return (pos < v.len() && v[pos].member() == m).then_some(r + pos);
                }
            }
        }
    }

    fn select(&self, mut rank: usize) -> Option<&Item> {
        if rank >= self.len {
            return None;
        }
        let mut node = &self.root;
        loop {
            match node {
                Node::Inner(inn) => {
                    let mut i = 0;
                    while rank >= inn.counts[i] {
                        rank -= inn.counts[i];
                        i += 1;
                    }
                    node = &inn.kids[i];
                }
                Node::Leaf(v) => return v.get(rank),
            }
        }
    }

    /// The number of leading items for which `p` holds (`p` must be true
    /// on a prefix of the key order).
    fn partition(&self, p: &dyn Fn(f64, &[u8]) -> bool) -> usize {
        let mut node = &self.root;
        let mut r = 0;
        loop {
            match node {
                Node::Inner(inn) => {
                    let i = inn.seps.partition_point(|x| p(x.score, &x.member));
                    r += inn.counts[..i].iter().sum::<usize>();
                    node = &inn.kids[i];
                }
                Node::Leaf(v) => return r + v.partition_point(|x| p(x.score, x.member())),
            }
        }
    }

    fn visit(&self, from: usize, to: usize, rev: bool, f: &mut dyn FnMut(&Item) -> bool) {
        let to = to.min(self.len);
        if from < to {
            tree_visit(&self.root, from, to, rev, f);
        }
    }

    /// Removes ranks `start..end`; returns the removed items (whose nodes
    /// the caller still has to free).
    fn remove_range(&mut self, start: usize, end: usize) -> Vec<Item> {
        let end = end.min(self.len);
        if start >= end {
            return Vec::new();
        }
        let k = end - start;
        if k <= 32 || k * 8 <= self.len {
            let mut keys = Vec::with_capacity(k);
            self.visit(start, end, false, &mut |it| {
                keys.push(*it);
                true
            });
            let mut out = Vec::with_capacity(k);
            for it in keys {
                if let Some(it) = self.remove(it.score, it.member()) {
                    out.push(it);
                }
            }
            out
        } else {
            let items = std::mem::replace(self, Tree::new()).into_items();
            let mut removed = Vec::with_capacity(k);
            let mut kept = Vec::with_capacity(items.len() - k);
            for (i, it) in items.into_iter().enumerate() {
                if i >= start && i < end {
                    removed.push(it);
                } else {
                    kept.push(it);
                }
            }
            *self = Tree::from_sorted(kept);
            removed
        }
    }

    #[cfg(test)]
    fn check(&self) {
        fn walk(
            n: &Node,
            lo: Option<&Sep>,
            hi: Option<&Sep>,
            depth: usize,
            d: &mut Option<usize>,
        ) -> usize {
            match n {
                Node::Leaf(v) => {
                    assert!(v.len() <= LEAF_CAP);
                    for w in v.windows(2) {
                        assert!(w[0].lt(w[1].score, w[1].member()));
                    }
                    if let (Some(lo), Some(f)) = (lo, v.first()) {
                        assert!(lo.lt(f.score, f.member()));
                    }
                    if let (Some(hi), Some(l)) = (hi, v.last()) {
                        assert!(!hi.lt(l.score, l.member()));
                    }
                    match d {
                        None => *d = Some(depth),
                        Some(x) => assert_eq!(*x, depth, "leaves at different depths"),
                    }
                    v.len()
                }
                Node::Inner(inn) => {
                    assert_eq!(inn.kids.len(), inn.counts.len());
                    assert_eq!(inn.seps.len() + 1, inn.kids.len());
                    assert!(inn.kids.len() <= INNER_CAP);
                    let mut total = 0;
                    for (i, k) in inn.kids.iter().enumerate() {
                        let klo = if i == 0 { lo } else { Some(&inn.seps[i - 1]) };
                        let khi = if i + 1 == inn.kids.len() {
                            hi
                        } else {
                            Some(&inn.seps[i])
                        };
                        let c = walk(k, klo, khi, depth + 1, d);
                        assert_eq!(c, inn.counts[i]);
                        total += c;
                    }
                    total
                }
            }
        }
        let mut d = None;
        assert_eq!(walk(&self.root, None, None, 0, &mut d), self.len);
    }
}

// ----- member index ----------------------------------------------------------

/// The head of a member's node: one allocation per member of a large set,
/// holding the member index's chain link, the score and (after the head)
/// the member bytes, preceded by their length (one byte below 255, else
/// 255 and a u64). The member is stored once: the tree points here.
#[repr(C)]
struct ZHead {
    next: Option<ZPtr>,
    score: f64,
}

type ZPtr = NonNull<ZHead>;

const HEAD: usize = std::mem::size_of::<ZHead>();

fn znode_layout(len: usize) -> Layout {
    let prefix = if len < 255 { 1 } else { 9 };
    Layout::from_size_align(HEAD + prefix + len, std::mem::align_of::<ZHead>())
        .expect("member too large")
}

/// Allocates a detached node for `m`.
fn znode_new(m: &[u8], score: f64) -> ZPtr {
    let layout = znode_layout(m.len());
    // SAFETY: the layout is non-zero-sized and fits the head, the length
    // prefix and the bytes written below; nothing is read before written.
    unsafe {
        let p = std::alloc::alloc(layout);
        let Some(head) = NonNull::new(p as *mut ZHead) else {
            std::alloc::handle_alloc_error(layout)
        };
        head.as_ptr().write(ZHead { next: None, score });
        let mut q = p.add(HEAD);
        if m.len() < 255 {
            q.write(m.len() as u8);
            q = q.add(1);
        } else {
            q.write(255);
            std::ptr::copy_nonoverlapping((m.len() as u64).to_le_bytes().as_ptr(), q.add(1), 8);
            q = q.add(9);
        }
        std::ptr::copy_nonoverlapping(m.as_ptr(), q, m.len());
        head
    }
}

/// The member bytes of a node.
///
/// # Safety
/// `p` must come from [`znode_new`] and not be freed while the slice lives.
#[inline]
unsafe fn znode_member<'a>(p: ZPtr) -> &'a [u8] {
    // SAFETY: per the contract, the node holds a length prefix and that
    // many bytes after its head (see `znode_new`).
    unsafe {
        let b = (p.as_ptr() as *const u8).add(HEAD);
        if *b < 255 {
            std::slice::from_raw_parts(b.add(1), *b as usize)
        } else {
            let mut l = [0u8; 8];
            std::ptr::copy_nonoverlapping(b.add(1), l.as_mut_ptr(), 8);
            std::slice::from_raw_parts(b.add(9), u64::from_le_bytes(l) as usize)
        }
    }
}

/// Frees a node.
///
/// # Safety
/// `p` must come from [`znode_new`], be unreachable from any table or tree,
/// and not be used again.
unsafe fn znode_free(p: ZPtr) {
    // SAFETY: per the contract; the layout is recomputed from the stored
    // length exactly as it was allocated.
    unsafe {
        let layout = znode_layout(znode_member(p).len());
        std::alloc::dealloc(p.as_ptr() as *mut u8, layout);
    }
}

/// One bucket array of the member index.
struct ZTable {
    buckets: Box<[Option<ZPtr>]>,
    used: usize,
}

impl ZTable {
    fn with_size(n: usize) -> ZTable {
        ZTable {
            buckets: vec![None; n].into_boxed_slice(),
            used: 0,
        }
    }
    #[inline]
    fn mask(&self) -> u64 {
        (self.buckets.len() as u64).wrapping_sub(1)
    }
}

/// The member → node index of a large set: a chained hash table whose
/// chains run through the member nodes themselves (no entry allocation
/// and no second copy of the member), with Redis's incremental rehashing
/// (one bucket moved per insert or removal, so growth never stalls) and
/// reverse-binary SCAN cursor (every member present for a whole ZSCAN is
/// returned). It owns the nodes.
struct ZMap {
    t: [ZTable; 2],
    /// Next bucket of `t[0]` to move into `t[1]`, while rehashing.
    rehash_idx: Option<usize>,
    hasher: hashbrown::DefaultHashBuilder,
}

const ZMAP_INITIAL: usize = 4;

impl ZMap {
    fn with_capacity(n: usize) -> ZMap {
        ZMap {
            t: [
                ZTable::with_size(n.max(ZMAP_INITIAL).next_power_of_two()),
                ZTable::with_size(0),
            ],
            rehash_idx: None,
            hasher: hashbrown::DefaultHashBuilder::default(),
        }
    }

    #[inline]
    fn len(&self) -> usize {
        self.t[0].used + self.t[1].used
    }

    fn bucket_count(&self) -> usize {
        self.t[0].buckets.len() + self.t[1].buckets.len()
    }

    #[inline]
    fn hash(&self, m: &[u8]) -> u64 {
        self.hasher.hash_one(m)
    }

    /// The tables to look in: both while rehashing.
    #[inline]
    fn tables(&self) -> usize {
        if self.rehash_idx.is_some() {
            2
        } else {
            1
        }
    }

    fn find(&self, m: &[u8]) -> Option<ZPtr> {
        if self.len() == 0 {
            return None;
        }
        let h = self.hash(m);
        for t in &self.t[..self.tables()] {
            let mut cur = t.buckets[(h & t.mask()) as usize];
            while let Some(p) = cur {
                // SAFETY: every node in a chain is live and owned by us.
                unsafe {
                    if znode_member(p) == m {
                        return Some(p);
                    }
                    cur = (*p.as_ptr()).next;
                }
            }
        }
        None
    }

    /// Moves one non-empty bucket (looking at most at 10 empty ones) from
    /// the old table to the new one.
    fn rehash_step(&mut self) {
        let Some(mut idx) = self.rehash_idx else {
            return;
        };
        let mut empty = 10;
        while self.t[0].used > 0 {
            let Some(mut cur) = self.t[0].buckets[idx].take() else {
                idx += 1;
                empty -= 1;
                if empty == 0 {
                    break;
                }
                continue;
            };
            let mask1 = self.t[1].mask();
            loop {
                // SAFETY: `cur` is a live node we own; it is relinked into
                // the new table and stays reachable from exactly one chain.
                let next = unsafe {
                    let h = self.hasher.hash_one(znode_member(cur)) & mask1;
                    let slot = &mut self.t[1].buckets[h as usize];
                    let next = (*cur.as_ptr()).next;
                    (*cur.as_ptr()).next = *slot;
                    *slot = Some(cur);
                    next
                };
                self.t[0].used -= 1;
                self.t[1].used += 1;
                match next {
                    Some(n) => cur = n,
                    None => break,
                }
            }
            idx += 1;
            break;
        }
        if self.t[0].used == 0 {
            self.t[0] = std::mem::replace(&mut self.t[1], ZTable::with_size(0));
            self.rehash_idx = None;
        } else {
            self.rehash_idx = Some(idx);
        }
    }

    fn resize_to(&mut self, size: usize) {
        let size = size.max(ZMAP_INITIAL).next_power_of_two();
        if self.rehash_idx.is_some() || size == self.t[0].buckets.len() {
            return;
        }
        if self.t[0].used == 0 {
            self.t[0] = ZTable::with_size(size);
            return;
        }
        self.t[1] = ZTable::with_size(size);
        self.rehash_idx = Some(0);
    }

    /// Links a new node for `m` (which must be absent) and returns it.
    fn insert(&mut self, m: &[u8], score: f64) -> ZPtr {
        self.rehash_step();
        if self.rehash_idx.is_none() && self.t[0].used >= self.t[0].buckets.len() {
            self.resize_to(self.t[0].used * 2);
        }
        let p = znode_new(m, score);
        let t = &mut self.t[if self.rehash_idx.is_some() { 1 } else { 0 }];
        let slot = &mut t.buckets[(self.hasher.hash_one(m) & t.mask()) as usize];
        // SAFETY: `p` is a fresh node, now linked into one chain only.
        unsafe { (*p.as_ptr()).next = *slot };
        *slot = Some(p);
        t.used += 1;
        p
    }

    /// Unlinks the node of `m` and returns it (the caller frees it).
    fn unlink(&mut self, m: &[u8]) -> Option<ZPtr> {
        if self.len() == 0 {
            return None;
        }
        self.rehash_step();
        let h = self.hash(m);
        let n = self.tables();
        for t in &mut self.t[..n] {
            let mask = t.mask();
            let mut link: *mut Option<ZPtr> = &mut t.buckets[(h & mask) as usize];
            // SAFETY: `link` points at a bucket or at the `next` field of a
            // live node of this chain; both outlive the loop.
            unsafe {
                while let Some(p) = *link {
                    if znode_member(p) == m {
                        *link = (*p.as_ptr()).next;
                        (*p.as_ptr()).next = None;
                        t.used -= 1;
                        return Some(p);
                    }
                    link = &mut (*p.as_ptr()).next;
                }
            }
        }
        None
    }

    /// Starts shrinking the table when it is under 1/8 full.
    fn shrink_if_needed(&mut self) {
        let size = self.t[0].buckets.len();
        if self.rehash_idx.is_none() && size > ZMAP_INITIAL && self.t[0].used * 8 < size {
            self.resize_to(self.t[0].used);
        }
    }

    /// One step of ZSCAN (Redis's `dictScan` cursor).
    fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8], f64)) -> u64 {
        if self.len() == 0 {
            return 0;
        }
        let emit = |t: &ZTable, idx: u64, f: &mut dyn FnMut(&[u8], f64)| {
            let mut cur = t.buckets[(idx & t.mask()) as usize];
            while let Some(p) = cur {
                // SAFETY: every node in a chain is live and owned by us.
                unsafe {
                    f(znode_member(p), (*p.as_ptr()).score);
                    cur = (*p.as_ptr()).next;
                }
            }
        };
        let mut v = cursor;
        if self.rehash_idx.is_none() {
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
}

impl Drop for ZMap {
    fn drop(&mut self) {
        for t in &mut self.t {
            for b in t.buckets.iter_mut() {
                let mut cur = b.take();
                while let Some(p) = cur {
                    // SAFETY: each node is reachable from exactly one chain,
                    // so it is freed exactly once; the tree holding pointers
                    // to them is dropped with the set and never reads them
                    // while dropping.
                    unsafe {
                        cur = (*p.as_ptr()).next;
                        znode_free(p);
                    }
                }
            }
        }
    }
}

// ----- the sorted set --------------------------------------------------------

/// The large encoding: member index + ordered index, sharing one node per
/// member.
struct Big {
    map: ZMap,
    tree: Tree,
    /// Sum of member lengths (memory accounting).
    bytes: usize,
}

// SAFETY: a Big exclusively owns every node its raw pointers reach (the
// map frees them; the tree only borrows them), it has no interior
// mutability, and nothing else holds those pointers, so moving it to or
// sharing `&` to it with another thread is as safe as for owned data.
unsafe impl Send for Big {}
// SAFETY: as above: `&Big` only reads the nodes.
unsafe impl Sync for Big {}

impl Big {
    /// Builds the large encoding from unique members sorted by key.
    fn from_sorted<'a>(n: usize, items: impl Iterator<Item = (&'a [u8], f64)>) -> Big {
        let mut map = ZMap::with_capacity(n);
        let mut bytes = 0;
        let mut v = Vec::with_capacity(n);
        for (m, score) in items {
            let node = map.insert(m, score);
            bytes += m.len();
            v.push(Item { score, node });
        }
        Big {
            map,
            tree: Tree::from_sorted(v),
            bytes,
        }
    }

    fn score(&self, m: &[u8]) -> Option<f64> {
        // SAFETY: nodes the map returns are live.
        self.map.find(m).map(|p| unsafe { (*p.as_ptr()).score })
    }

    fn insert(&mut self, m: &[u8], score: f64) {
        let node = self.map.insert(m, score);
        self.tree.insert(score, node);
        self.bytes += m.len();
    }

    fn set_score(&mut self, m: &[u8], old: f64, score: f64) {
        let Some(p) = self.map.find(m) else { return };
        // SAFETY: nodes the map returns are live; nothing else borrows it.
        unsafe { (*p.as_ptr()).score = score };
        self.tree.remove(old, m);
        self.tree.insert(score, p);
    }

    fn remove(&mut self, m: &[u8]) -> bool {
        let Some(p) = self.map.unlink(m) else {
            return false;
        };
        // SAFETY: the node is unlinked but still live (freed below).
        let s = unsafe { (*p.as_ptr()).score };
        self.tree.remove(s, m);
        // SAFETY: the node has now left both the map and the tree.
        unsafe { znode_free(p) };
        self.bytes -= m.len();
        self.map.shrink_if_needed();
        true
    }

    fn remove_range(&mut self, start: usize, end: usize) -> usize {
        let removed = self.tree.remove_range(start, end);
        for it in &removed {
            let m = it.member();
            self.bytes -= m.len();
            if let Some(p) = self.map.unlink(m) {
                // SAFETY: the node has left the tree and now the map; `m`
                // is not used after this.
                unsafe { znode_free(p) };
            }
        }
        self.map.shrink_if_needed();
        removed.len()
    }
}

enum Repr {
    Lp(Lp),
    Sl(Box<Big>),
}

/// A sorted set value.
pub struct ZSet {
    repr: Repr,
}

impl Default for ZSet {
    fn default() -> Self {
        ZSet::new()
    }
}

impl Clone for ZSet {
    fn clone(&self) -> Self {
        match &self.repr {
            Repr::Lp(lp) => ZSet {
                repr: Repr::Lp(lp.clone()),
            },
            Repr::Sl(b) => {
                let mut items = Vec::with_capacity(b.tree.len);
                b.tree.visit(0, b.tree.len, false, &mut |it| {
                    items.push(*it);
                    true
                });
                let big =
                    Big::from_sorted(items.len(), items.iter().map(|it| (it.member(), it.score)));
                ZSet {
                    repr: Repr::Sl(Box::new(big)),
                }
            }
        }
    }
}

impl PartialEq for ZSet {
    fn eq(&self, other: &Self) -> bool {
        if self.len() != other.len() {
            return false;
        }
        let (mut a, mut b) = (Vec::new(), Vec::new());
        self.range(0, self.len(), false, |m, s| a.push((m.to_vec(), s)));
        other.range(0, other.len(), false, |m, s| b.push((m.to_vec(), s)));
        a == b
    }
}

impl std::fmt::Debug for ZSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut l = f.debug_list();
        self.range(0, self.len(), false, |m, s| {
            l.entry(&(String::from_utf8_lossy(m), s));
        });
        l.finish()
    }
}

impl ZSet {
    /// An empty set in the small encoding.
    pub fn new() -> ZSet {
        ZSet {
            repr: Repr::Lp(Lp::default()),
        }
    }

    /// An empty set for ZADD, encoded as Redis picks from its first member.
    pub fn for_first(first_len: usize, lim: Limits) -> ZSet {
        if lim.max_entries == 0 || first_len > lim.max_value {
            ZSet {
                repr: Repr::Sl(Box::new(Big::from_sorted(0, std::iter::empty()))),
            }
        } else {
            ZSet::new()
        }
    }

    /// Builds a set from unique members sorted by (score, member), in the
    /// small encoding when it fits the limits (as a ZUNIONSTORE result).
    pub fn from_sorted(items: Vec<(Box<[u8]>, f64)>, lim: Limits) -> ZSet {
        let fits =
            items.len() <= lim.max_entries && items.iter().all(|(m, _)| m.len() <= lim.max_value);
        if fits {
            let mut buf = Vec::with_capacity(items.iter().map(|(m, _)| m.len() + 4).sum());
            for (m, s) in &items {
                encode_entry(&mut buf, m, *s);
            }
            let lp = Lp {
                buf: buf.as_slice().into(),
                n: items.len(),
            };
            ZSet { repr: Repr::Lp(lp) }
        } else {
            let big = Big::from_sorted(items.len(), items.iter().map(|(m, s)| (&m[..], *s)));
            ZSet {
                repr: Repr::Sl(Box::new(big)),
            }
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Lp(lp) => lp.n,
            Repr::Sl(b) => b.tree.len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match &self.repr {
            Repr::Lp(_) => "listpack",
            Repr::Sl(_) => "skiplist",
        }
    }

    pub fn is_listpack(&self) -> bool {
        matches!(self.repr, Repr::Lp(_))
    }

    /// Approximate heap bytes held (MEMORY USAGE).
    pub fn heap_size(&self) -> usize {
        match &self.repr {
            Repr::Lp(lp) => lp.buf.capacity(),
            Repr::Sl(b) => {
                // Per member: its tree slot (16 bytes, leaves mostly
                // full) and its node (head, length byte, member bytes);
                // plus the map's bucket arrays.
                let n = b.tree.len;
                std::mem::size_of::<Big>()
                    + n * (20 + HEAD + 1)
                    + b.bytes
                    + b.map.bucket_count() * 8
            }
        }
    }

    /// Converts to the large encoding.
    fn make_big(&mut self) {
        if let Repr::Lp(lp) = &self.repr {
            let big = Big::from_sorted(lp.n, lp.iter().map(|(_, s, m)| (m, s)));
            self.repr = Repr::Sl(Box::new(big));
        }
    }

    pub fn score(&self, m: &[u8]) -> Option<f64> {
        match &self.repr {
            Repr::Lp(lp) => lp.find(m).map(|(_, s)| s),
            Repr::Sl(b) => b.score(m),
        }
    }

    /// Inserts a member known to be absent, converting to the large
    /// encoding first when the small one would exceed the limits.
    pub fn insert(&mut self, m: &[u8], score: f64, lim: Limits) {
        if let Repr::Lp(lp) = &self.repr {
            if lp.n + 1 > lim.max_entries || m.len() > lim.max_value {
                self.make_big();
            }
        }
        match &mut self.repr {
            Repr::Lp(lp) => lp.insert(m, score),
            Repr::Sl(b) => b.insert(m, score),
        }
    }

    /// Changes the score of an existing member.
    fn set_score(&mut self, m: &[u8], old: f64, score: f64) {
        match &mut self.repr {
            Repr::Lp(lp) => {
                if let Some((off, _)) = lp.find(m) {
                    lp.remove_at(off);
                    lp.insert(m, score);
                }
            }
            Repr::Sl(b) => b.set_score(m, old, score),
        }
    }

    /// Redis's `zsetAdd`: adds or updates `m` following ZADD's flags.
    pub fn add(&mut self, m: &[u8], score: f64, f: AddFlags, lim: Limits) -> Added {
        let mut score = score;
        match self.score(m) {
            Some(cur) => {
                if f.nx {
                    return Added::Nop;
                }
                if f.incr {
                    score += cur;
                    if score.is_nan() {
                        return Added::Nan;
                    }
                }
                if (f.lt && score >= cur) || (f.gt && score <= cur) {
                    return Added::Nop;
                }
                if score != cur {
                    self.set_score(m, cur, score);
                    Added::Updated(score)
                } else {
                    Added::Same(score)
                }
            }
            None => {
                if f.xx {
                    return Added::Nop;
                }
                self.insert(m, score, lim);
                Added::New(score)
            }
        }
    }

    /// Removes `m`; returns whether it was there.
    pub fn remove(&mut self, m: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Lp(lp) => match lp.find(m) {
                Some((off, _)) => {
                    lp.remove_at(off);
                    true
                }
                None => false,
            },
            Repr::Sl(b) => b.remove(m),
        }
    }

    /// 0-based rank of `m` in ascending order.
    pub fn rank(&self, m: &[u8]) -> Option<usize> {
        match &self.repr {
            Repr::Lp(lp) => lp.rank(m),
            Repr::Sl(b) => {
                let s = b.score(m)?;
                b.tree.rank(s, m)
            }
        }
    }

    /// The member and score at `rank`.
    pub fn get(&self, rank: usize) -> Option<(&[u8], f64)> {
        match &self.repr {
            Repr::Lp(lp) => lp.get(rank),
            Repr::Sl(b) => b.tree.select(rank).map(|it| (it.member(), it.score)),
        }
    }

    /// Walks from rank `start` towards the end (or the start when `rev`)
    /// while `f` returns true.
    pub fn walk(&self, start: usize, rev: bool, mut f: impl FnMut(&[u8], f64) -> bool) {
        let len = self.len();
        if start >= len {
            return;
        }
        match &self.repr {
            Repr::Lp(lp) => {
                if rev {
                    let offs = lp.offsets();
                    for &o in offs[..=start].iter().rev() {
                        let (s, m, _) = lp_entry(&lp.buf, o);
                        if !f(m, s) {
                            return;
                        }
                    }
                } else {
                    for (_, s, m) in lp.iter().skip(start) {
                        if !f(m, s) {
                            return;
                        }
                    }
                }
            }
            Repr::Sl(b) => {
                let (from, to) = if rev { (0, start + 1) } else { (start, len) };
                b.tree
                    .visit(from, to, rev, &mut |it| f(it.member(), it.score));
            }
        }
    }

    /// Calls `f` on ranks `start..end` (ascending, or descending when `rev`).
    pub fn range(&self, start: usize, end: usize, rev: bool, mut f: impl FnMut(&[u8], f64)) {
        let end = end.min(self.len());
        if start >= end {
            return;
        }
        let mut left = end - start;
        let from = if rev { end - 1 } else { start };
        self.walk(from, rev, |m, s| {
            f(m, s);
            left -= 1;
            left > 0
        });
    }

    /// The number of leading members for which `p(score, member)` holds;
    /// `p` must hold on a prefix of the order.
    pub fn partition(&self, p: impl Fn(f64, &[u8]) -> bool) -> usize {
        match &self.repr {
            Repr::Lp(lp) => lp.iter().position(|(_, s, m)| !p(s, m)).unwrap_or(lp.n),
            Repr::Sl(b) => b.tree.partition(&p),
        }
    }

    /// Rank of the first member in the score range.
    pub fn score_first(&self, r: &ScoreRange) -> Option<usize> {
        let i = self.partition(|s, _| !r.gte_min(s));
        let (_, s) = self.get(i)?;
        r.lte_max(s).then_some(i)
    }

    /// Rank of the last member in the score range.
    pub fn score_last(&self, r: &ScoreRange) -> Option<usize> {
        let end = self.partition(|s, _| r.lte_max(s));
        let (_, s) = self.get(end.checked_sub(1)?)?;
        r.gte_min(s).then_some(end - 1)
    }

    /// Ranks `start..end` of the members in the score range.
    pub fn score_span(&self, r: &ScoreRange) -> (usize, usize) {
        let start = self.partition(|s, _| !r.gte_min(s));
        let end = self.partition(|s, _| r.lte_max(s));
        (start, end.max(start))
    }

    /// Rank of the first member in the lex range. On the small encoding
    /// this follows Redis's listpack scan exactly, which matters only when
    /// scores differ (where Redis leaves the result unspecified).
    pub fn lex_first(&self, r: &LexRange) -> Option<usize> {
        if self.is_empty() || r.is_empty() {
            return None;
        }
        match &self.repr {
            Repr::Lp(lp) => {
                let (last, _) = self.get(lp.n - 1)?;
                let (first, _) = self.get(0)?;
                if !r.gte_min(last) || !r.lte_max(first) {
                    return None;
                }
                let (i, (_, _, m)) = lp.iter().enumerate().find(|(_, (_, _, m))| r.gte_min(m))?;
                r.lte_max(m).then_some(i)
            }
            Repr::Sl(_) => {
                let i = self.partition(|_, m| !r.gte_min(m));
                let (m, _) = self.get(i)?;
                r.lte_max(m).then_some(i)
            }
        }
    }

    /// Rank of the last member in the lex range (see [`ZSet::lex_first`]).
    pub fn lex_last(&self, r: &LexRange) -> Option<usize> {
        if self.is_empty() || r.is_empty() {
            return None;
        }
        match &self.repr {
            Repr::Lp(lp) => {
                let (last, _) = self.get(lp.n - 1)?;
                let (first, _) = self.get(0)?;
                if !r.gte_min(last) || !r.lte_max(first) {
                    return None;
                }
                let (i, m) = lp
                    .iter()
                    .enumerate()
                    .filter(|(_, (_, _, m))| r.lte_max(m))
                    .map(|(i, (_, _, m))| (i, m))
                    .last()?;
                r.gte_min(m).then_some(i)
            }
            Repr::Sl(_) => {
                let end = self.partition(|_, m| r.lte_max(m));
                let (m, _) = self.get(end.checked_sub(1)?)?;
                r.gte_min(m).then_some(end - 1)
            }
        }
    }

    /// The end of the run of members from rank `start` that are within the
    /// range's maximum.
    pub fn lex_run_end(&self, start: usize, r: &LexRange) -> usize {
        match &self.repr {
            Repr::Lp(lp) => {
                start
                    + lp.iter()
                        .skip(start)
                        .take_while(|(_, _, m)| r.lte_max(m))
                        .count()
            }
            Repr::Sl(_) => self.partition(|_, m| r.lte_max(m)).max(start),
        }
    }

    /// Removes ranks `start..end`; returns how many were removed.
    pub fn remove_range(&mut self, start: usize, end: usize) -> usize {
        let end = end.min(self.len());
        if start >= end {
            return 0;
        }
        match &mut self.repr {
            Repr::Lp(lp) => {
                let offs = lp.offsets();
                lp.buf.drain(offs[start]..offs[end]);
                lp.n -= end - start;
                lp.trim();
                end - start
            }
            Repr::Sl(b) => b.remove_range(start, end),
        }
    }

    /// Removes and returns the first (or last) member.
    pub fn pop(&mut self, max: bool) -> Option<(Vec<u8>, f64)> {
        let rank = if max { self.len().checked_sub(1)? } else { 0 };
        let (m, s) = self.get(rank).map(|(m, s)| (m.to_vec(), s))?;
        self.remove_range(rank, rank + 1);
        Some((m, s))
    }

    /// One step of ZSCAN: calls `f` on the members the cursor addresses and
    /// returns the next cursor (0 when done). The small encoding is
    /// returned whole, as Redis does.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8], f64)) -> u64 {
        match &self.repr {
            Repr::Lp(lp) => {
                for (_, s, m) in lp.iter() {
                    f(m, s);
                }
                0
            }
            Repr::Sl(b) => b.map.scan(cursor, f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// The model: a Vec sorted by (score, member).
    #[derive(Default)]
    struct Model(Vec<(f64, Vec<u8>)>);
    impl Model {
        fn find(&self, m: &[u8]) -> Option<usize> {
            self.0.iter().position(|(_, x)| x == m)
        }
        fn insert(&mut self, m: &[u8], s: f64) {
            let pos = self
                .0
                .partition_point(|(xs, xm)| cmp_key(*xs, xm, s, m) == Ordering::Less);
            self.0.insert(pos, (s, m.to_vec()));
        }
    }

    fn all(z: &ZSet) -> Vec<(f64, Vec<u8>)> {
        let mut v = Vec::new();
        z.range(0, z.len(), false, |m, s| v.push((s, m.to_vec())));
        v
    }

    fn check_same(z: &ZSet, model: &Model) {
        assert_eq!(z.len(), model.0.len());
        assert_eq!(all(z), model.0);
        if let Repr::Sl(b) = &z.repr {
            b.tree.check();
            assert_eq!(b.map.len(), b.tree.len);
        }
    }

    fn member(r: &mut Rng, space: usize) -> Vec<u8> {
        let i = r.below(space);
        if i.is_multiple_of(7) {
            format!("m{i}-{}", "x".repeat(i % 50)).into_bytes()
        } else {
            format!("m{i}").into_bytes()
        }
    }

    fn score(r: &mut Rng) -> f64 {
        match r.below(20) {
            0 => f64::INFINITY,
            1 => f64::NEG_INFINITY,
            2..=9 => 0.0,
            _ => (r.below(40) as f64 - 20.0) / 2.0,
        }
    }

    fn run_model(seed: u64, ops: usize, space: usize, lim: Limits) -> ZSet {
        let mut r = Rng(seed);
        let mut z = ZSet::new();
        let mut model = Model::default();
        for step in 0..ops {
            let mut op = r.below(14);
            // Large runs mostly grow, so the tree gets several levels deep.
            if space > 1000 && (op == 11 || op == 12) && r.below(8) != 0 {
                op = 0;
            }
            match op {
                0..=4 => {
                    let m = member(&mut r, space);
                    let s = score(&mut r);
                    let flags = AddFlags {
                        nx: r.below(8) == 0,
                        incr: r.below(6) == 0,
                        ..Default::default()
                    };
                    let got = z.add(&m, s, flags, lim);
                    match model.find(&m) {
                        Some(i) => {
                            let cur = model.0[i].0;
                            let mut ns = s;
                            if flags.nx {
                                assert_eq!(got, Added::Nop);
                                continue;
                            }
                            if flags.incr {
                                ns += cur;
                                if ns.is_nan() {
                                    assert_eq!(got, Added::Nan);
                                    continue;
                                }
                            }
                            if ns != cur {
                                assert_eq!(got, Added::Updated(ns));
                                model.0.remove(i);
                                model.insert(&m, ns);
                            } else {
                                assert_eq!(got, Added::Same(ns));
                            }
                        }
                        None => {
                            assert_eq!(got, Added::New(s));
                            model.insert(&m, s);
                        }
                    }
                }
                5 | 6 => {
                    let m = member(&mut r, space);
                    let had = model.find(&m);
                    assert_eq!(z.remove(&m), had.is_some());
                    if let Some(i) = had {
                        model.0.remove(i);
                    }
                }
                7 => {
                    let m = member(&mut r, space);
                    assert_eq!(z.rank(&m), model.find(&m));
                    assert_eq!(z.score(&m), model.find(&m).map(|i| model.0[i].0));
                }
                8 => {
                    if !model.0.is_empty() {
                        let i = r.below(model.0.len());
                        let (m, s) = z.get(i).unwrap();
                        assert_eq!((s, m.to_vec()), model.0[i]);
                    }
                    assert!(z.get(model.0.len()).is_none());
                }
                9 => {
                    let (a, b) = (score(&mut r), score(&mut r));
                    let sr = ScoreRange {
                        min: a,
                        max: b,
                        minex: r.below(2) == 0,
                        maxex: r.below(2) == 0,
                    };
                    let inr: Vec<usize> = (0..model.0.len())
                        .filter(|&i| sr.gte_min(model.0[i].0) && sr.lte_max(model.0[i].0))
                        .collect();
                    assert_eq!(z.score_first(&sr), inr.first().copied());
                    assert_eq!(z.score_last(&sr), inr.last().copied());
                    let (s, e) = z.score_span(&sr);
                    assert_eq!(e - s, inr.len());
                }
                10 => {
                    // Ranged walks in both directions.
                    let n = model.0.len();
                    if n > 0 {
                        let a = r.below(n);
                        let b = a + r.below(n - a + 1);
                        let rev = r.below(2) == 0;
                        let mut got = Vec::new();
                        z.range(a, b, rev, |m, s| got.push((s, m.to_vec())));
                        let mut want: Vec<_> = model.0[a..b].to_vec();
                        if rev {
                            want.reverse();
                        }
                        assert_eq!(got, want);
                    }
                }
                11 => {
                    let n = model.0.len();
                    if n > 0 && r.below(3) == 0 {
                        let a = r.below(n);
                        let span = if r.below(40) == 0 { n } else { 4 };
                        let b = (a + r.below(span)).min(n);
                        assert_eq!(z.remove_range(a, b), b - a);
                        model.0.drain(a..b);
                    }
                }
                12 => {
                    let max = r.below(2) == 0;
                    let want = if max {
                        model.0.pop()
                    } else if model.0.is_empty() {
                        None
                    } else {
                        Some(model.0.remove(0))
                    };
                    assert_eq!(z.pop(max).map(|(m, s)| (s, m)), want);
                }
                _ => {
                    // Lex queries on an all-equal-score view.
                    let lo = member(&mut r, space);
                    let range = LexRange {
                        min: if r.below(5) == 0 {
                            LexBound::Min
                        } else {
                            LexBound::Incl(lo)
                        },
                        max: LexBound::Max,
                    };
                    if model
                        .0
                        .iter()
                        .all(|(s, _)| *s == model.0.first().map_or(0.0, |x| x.0))
                    {
                        let want = model.0.iter().position(|(_, m)| range.gte_min(m));
                        assert_eq!(z.lex_first(&range), want);
                    }
                }
            }
            if step % 97 == 0 || z.len() < 200 {
                check_same(&z, &model);
            }
            if let Repr::Lp(_) = z.repr {
                assert!(z.len() <= lim.max_entries);
            }
        }
        check_same(&z, &model);
        // Clone round trip and equality.
        let c = z.clone();
        assert_eq!(c, z);
        check_same(&c, &model);
        z
    }

    fn depth(z: &ZSet) -> usize {
        fn d(n: &Node) -> usize {
            match n {
                Node::Leaf(_) => 1,
                Node::Inner(i) => 1 + d(&i.kids[0]),
            }
        }
        match &z.repr {
            Repr::Lp(_) => 0,
            Repr::Sl(b) => d(&b.tree.root),
        }
    }

    #[test]
    fn model_small_and_converting() {
        for seed in 1..=20u64 {
            run_model(
                seed * 7919,
                3000,
                60,
                Limits {
                    max_entries: 16,
                    max_value: 20,
                },
            );
        }
    }

    #[test]
    fn model_large_tree() {
        // Deep trees: many members, splits and merges on every level.
        for seed in 1..=3u64 {
            let z = run_model(seed * 104729, 60_000, 20_000, Limits::default());
            assert!(
                depth(&z) >= 3,
                "the tree should be 3 levels deep: {} {}",
                z.len(),
                depth(&z)
            );
        }
    }

    #[test]
    fn conversion_thresholds() {
        let lim = Limits {
            max_entries: 3,
            max_value: 4,
        };
        let mut z = ZSet::new();
        for (i, m) in ["a", "b", "c"].iter().enumerate() {
            z.insert(m.as_bytes(), i as f64, lim);
        }
        assert_eq!(z.encoding(), "listpack");
        z.add(b"a", 5.0, AddFlags::default(), lim);
        assert_eq!(z.encoding(), "listpack");
        z.insert(b"d", 0.0, lim);
        assert_eq!(z.encoding(), "skiplist");
        let mut z = ZSet::new();
        z.insert(b"long!", 1.0, lim);
        assert_eq!(z.encoding(), "skiplist");
        assert_eq!(ZSet::for_first(5, lim).encoding(), "skiplist");
        assert_eq!(ZSet::for_first(4, lim).encoding(), "listpack");
        assert_eq!(
            ZSet::for_first(
                1,
                Limits {
                    max_entries: 0,
                    max_value: 4
                }
            )
            .encoding(),
            "skiplist"
        );
        // Results built whole convert back when they fit.
        let items: Vec<(Box<[u8]>, f64)> = vec![(b"a"[..].into(), 1.0), (b"b"[..].into(), 2.0)];
        assert_eq!(ZSet::from_sorted(items.clone(), lim).encoding(), "listpack");
        assert_eq!(
            ZSet::from_sorted(
                items,
                Limits {
                    max_entries: 1,
                    max_value: 4
                }
            )
            .encoding(),
            "skiplist"
        );
    }

    #[test]
    fn lex_ranges_follow_redis() {
        let r = LexRange::parse(b"[b", b"(d").unwrap();
        assert!(r.gte_min(b"b") && !r.gte_min(b"a") && r.lte_max(b"c") && !r.lte_max(b"d"));
        assert!(LexRange::parse(b"-", b"-").unwrap().is_empty());
        assert!(LexRange::parse(b"+", b"-").unwrap().is_empty());
        assert!(!LexRange::parse(b"-", b"+").unwrap().is_empty());
        assert!(LexRange::parse(b"(a", b"[a").unwrap().is_empty());
        assert!(!LexRange::parse(b"[a", b"[a").unwrap().is_empty());
        assert!(LexRange::parse(b"[b", b"[a").unwrap().is_empty());
        assert!(LexRange::parse(b"a", b"+").is_none());
        assert!(LexRange::parse(b"+x", b"+").is_none());
        assert!(LexRange::parse(b"", b"+").is_none());
        for big in [false, true] {
            let lim = if big {
                Limits {
                    max_entries: 0,
                    max_value: 0,
                }
            } else {
                Limits::default()
            };
            let mut z = ZSet::new();
            for m in ["a", "b", "c", "d", "e"] {
                z.insert(m.as_bytes(), 0.0, lim);
            }
            assert_eq!(z.is_listpack(), !big);
            assert_eq!(z.lex_first(&r), Some(1));
            assert_eq!(z.lex_last(&r), Some(2));
            assert_eq!(z.lex_run_end(1, &r), 3);
            let none = LexRange::parse(b"(e", b"+").unwrap();
            assert_eq!(z.lex_first(&none), None);
            assert_eq!(z.lex_last(&none), None);
        }
    }

    #[test]
    fn small_encoding_scores_round_trip_compactly() {
        let lim = Limits::default();
        let scores = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            63.0,
            64.0,
            -64.0,
            0.5,
            -2.25,
            1e15,
            -1e15,
            9007199254740991.0,
            -9007199254740991.0,
            9007199254740992.0,
            -9007199254740992.0,
            1e300,
            -1e300,
            f64::MIN_POSITIVE,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        let mut z = ZSet::new();
        for (i, s) in scores.iter().enumerate() {
            z.insert(format!("m{i}").as_bytes(), *s, lim);
        }
        assert!(z.is_listpack());
        for (i, s) in scores.iter().enumerate() {
            let got = z.score(format!("m{i}").as_bytes()).unwrap();
            // -0 reads back as 0 (as Redis's listpack integers do).
            assert_eq!(got.to_bits(), (s + 0.0).to_bits(), "{s}");
        }
        // 100 members with small integral scores: a couple of bytes of
        // score each instead of 8.
        let mut z = ZSet::new();
        for i in 0..100 {
            z.insert(format!("m{i}").as_bytes(), i as f64, lim);
        }
        let Repr::Lp(lp) = &z.repr else {
            panic!("listpack expected")
        };
        assert!(lp.buf.len() <= 100 * 5, "{}", lp.buf.len());
        assert_eq!(lp.buf.capacity(), size_class(lp.buf.len()));
        assert_eq!(
            [1, 8, 9, 64, 65, 72, 73, 490, 512, 513, 558, 1800].map(size_class),
            [8, 8, 16, 64, 80, 80, 80, 512, 512, 640, 640, 2048]
        );
    }

    #[test]
    fn big_appends_fill_leaves_and_index_rehashes() {
        let lim = Limits {
            max_entries: 0,
            max_value: 0,
        };
        let mut z = ZSet::new();
        for i in 0..10_000 {
            z.insert(format!("member:{i}").as_bytes(), i as f64, lim);
        }
        let Repr::Sl(b) = &z.repr else {
            panic!("skiplist expected")
        };
        b.tree.check();
        fn leaves<'a>(n: &'a Node, out: &mut Vec<&'a Vec<Item>>) {
            match n {
                Node::Leaf(v) => out.push(v),
                Node::Inner(i) => i.kids.iter().for_each(|k| leaves(k, out)),
            }
        }
        let mut ls = Vec::new();
        leaves(&b.tree.root, &mut ls);
        // Members added in key order leave every leaf but the last full,
        // with no spare capacity.
        for l in &ls[..ls.len() - 1] {
            assert_eq!(l.len(), LEAF_CAP);
            assert_eq!(l.capacity(), LEAF_CAP);
        }
        assert_eq!(b.map.len(), 10_000);
        // Grown to 16384 buckets (the 8192 old ones may still be moving).
        assert!(b.map.bucket_count() >= 16384, "{}", b.map.bucket_count());
        // Removing most members shrinks the index (incrementally), and a
        // ZSCAN running across growth and shrinking still returns every
        // member present throughout.
        let mut seen = std::collections::HashSet::new();
        let mut c = 0;
        let mut i = 0;
        loop {
            c = z.scan(c, |m, _| {
                seen.insert(m.to_vec());
            });
            for _ in 0..50 {
                if i < 9_000 {
                    assert!(z.remove(format!("member:{i}").as_bytes()));
                } else if i < 12_000 {
                    z.insert(format!("new:{i}").as_bytes(), i as f64, lim);
                }
                i += 1;
            }
            if c == 0 {
                break;
            }
        }
        for k in 9_000..10_000 {
            assert!(seen.contains(format!("member:{k}").as_bytes()), "{k}");
        }
        for k in 0..200 {
            z.insert(format!("more:{k}").as_bytes(), k as f64, lim);
        }
        let Repr::Sl(b) = &z.repr else {
            panic!("skiplist expected")
        };
        b.tree.check();
        assert_eq!(b.map.len(), b.tree.len);
        assert!(b.map.bucket_count() < 16384, "{}", b.map.bucket_count());
        for k in 9_000..10_000 {
            let m = format!("member:{k}");
            assert_eq!(z.score(m.as_bytes()), Some(k as f64));
            assert!(z.rank(m.as_bytes()).is_some());
        }
    }

    #[test]
    fn scan_big_visits_everything() {
        let lim = Limits {
            max_entries: 0,
            max_value: 0,
        };
        let mut z = ZSet::new();
        for i in 0..1000 {
            z.insert(format!("m{i}").as_bytes(), i as f64, lim);
        }
        let mut seen = std::collections::HashSet::new();
        let mut c = 0;
        loop {
            c = z.scan(c, |m, s| {
                assert_eq!(format!("m{s}").as_bytes(), m);
                seen.insert(m.to_vec());
            });
            if c == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 1000);
    }
}
