//! The list type (Redis 7.0's "quicklist").
//!
//! A list is a deque of nodes; each node is one contiguous byte buffer of
//! packed entries (like a listpack) of at most `list-max-listpack-size`
//! (-1 = 4 KiB ... -5 = 64 KiB; positive = that many entries and at most
//! 8 KiB), so an element costs a couple of bytes of overhead instead of a
//! heap allocation. Push and pop at both ends are O(1) amortized (one node
//! touched, at most one memmove inside a node); index access walks node
//! counts from the nearer end, then entries inside one node.
//!
//! Entry layout: `header [data] backlen`.
//! - `header` is a LEB128 varint: `len << 1` for a string of `len` bytes
//!   (the bytes follow), or `zigzag(n) << 1 | 1` for an integer `n` (no
//!   data). A string that reads back as a canonical integer with
//!   |n| < 2^61 is stored in that compact form, as listpacks do; it is
//!   formatted back to the very same bytes.
//! - `backlen` is the size of `header [data]` as a LEB128 varint stored
//!   back to front, so an entry can be decoded from its end (pops and
//!   reverse iteration from the tail).
//!
//! Nodes never stay empty, and a node holds more than its limit only when
//! it has a single (large) entry.

use std::collections::VecDeque;
use std::fmt;

/// Byte cap of a node when the fill is a count of entries.
const SAFETY_LIMIT: usize = 8192;
/// Integers with |n| below this are stored in the compact integer form
/// (so that `zigzag(n) << 1 | 1` fits in 64 bits).
const INT_RANGE: i64 = 1 << 61;
/// Smallest buffer a new node starts with.
const MIN_NODE_CAP: usize = 16;

// ----- varints -------------------------------------------------------------

#[inline]
fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Writes a LEB128 varint at `p`; returns the position after it.
#[inline]
fn put_varint(dst: &mut [u8], mut p: usize, mut v: u64) -> usize {
    while v >= 0x80 {
        dst[p] = (v as u8) | 0x80;
        v >>= 7;
        p += 1;
    }
    dst[p] = v as u8;
    p + 1
}

/// Reads a LEB128 varint at `p`; returns it and the position after it.
#[inline]
fn get_varint(b: &[u8], mut p: usize) -> (u64, usize) {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let c = b[p];
        v |= ((c & 0x7f) as u64) << shift;
        p += 1;
        if c & 0x80 == 0 {
            return (v, p);
        }
        shift += 7;
    }
}

/// Writes a varint back to front at `p` (its low group last); returns the
/// position after it.
#[inline]
fn put_rvarint(dst: &mut [u8], p: usize, mut v: u64) -> usize {
    let end = p + varint_len(v);
    let mut i = end;
    loop {
        i -= 1;
        if v >= 0x80 {
            dst[i] = (v as u8) | 0x80;
            v >>= 7;
        } else {
            dst[i] = v as u8;
            return end;
        }
    }
}

/// Reads a back-to-front varint that ends at `end`; returns it and where
/// it starts.
#[inline]
fn get_rvarint(b: &[u8], end: usize) -> (u64, usize) {
    let mut p = end;
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        p -= 1;
        let c = b[p];
        v |= ((c & 0x7f) as u64) << shift;
        if c & 0x80 == 0 {
            return (v, p);
        }
        shift += 7;
    }
}

// ----- entries ---------------------------------------------------------------

/// The compact integer form of `v`, if it has one.
#[inline]
fn small_int(v: &[u8]) -> Option<i64> {
    if v.is_empty() || v.len() > 20 || !(v[0] == b'-' || v[0].is_ascii_digit()) {
        return None;
    }
    crate::util::parse_i64(v).filter(|n| (-INT_RANGE..INT_RANGE).contains(n))
}

/// One element, as stored: the bytes of a string or an integer whose
/// decimal form is the element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem<'a> {
    Str(&'a [u8]),
    Int(i64),
}

impl Elem<'_> {
    /// The element's bytes.
    pub fn to_vec(self) -> Vec<u8> {
        match self {
            Elem::Str(s) => s.to_vec(),
            Elem::Int(n) => itoa::Buffer::new().format(n).as_bytes().to_vec(),
        }
    }

    /// Calls `f` with the element's bytes (integers formatted on the stack).
    pub fn with_bytes<R>(self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self {
            Elem::Str(s) => f(s),
            Elem::Int(n) => f(itoa::Buffer::new().format(n).as_bytes()),
        }
    }
}

/// A value to compare elements with (LREM, LPOS, LINSERT's pivot),
/// classified once.
pub struct Needle<'a> {
    bytes: &'a [u8],
    int: Option<i64>,
}

impl<'a> Needle<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Needle {
            bytes,
            int: small_int(bytes),
        }
    }

    /// Whether `e` is equal to the needle. The encoding is a function of
    /// the bytes, so a string entry never equals an integer-encoded needle.
    #[inline]
    pub fn matches(&self, e: Elem) -> bool {
        match e {
            Elem::Str(s) => self.int.is_none() && s == self.bytes,
            Elem::Int(n) => self.int == Some(n),
        }
    }
}

/// An element ready to be written: its header and sizes.
struct Enc {
    hdr: u64,
    int: bool,
    /// Bytes of header + data.
    body: usize,
    /// Bytes of the whole entry (body + backlen).
    total: usize,
}

#[inline]
fn prep(v: &[u8]) -> Enc {
    let (hdr, int, body) = match small_int(v) {
        Some(n) => {
            let z = ((n << 1) ^ (n >> 63)) as u64;
            let hdr = (z << 1) | 1;
            (hdr, true, varint_len(hdr))
        }
        None => {
            let hdr = (v.len() as u64) << 1;
            (hdr, false, varint_len(hdr) + v.len())
        }
    };
    Enc {
        hdr,
        int,
        body,
        total: body + varint_len(body as u64),
    }
}

/// Writes the entry for `v` into `dst` (exactly `e.total` bytes).
#[inline]
fn write_entry(e: &Enc, v: &[u8], dst: &mut [u8]) {
    let mut p = put_varint(dst, 0, e.hdr);
    if !e.int {
        dst[p..p + v.len()].copy_from_slice(v);
        p += v.len();
    }
    put_rvarint(dst, p, e.body as u64);
}

/// Decodes the entry at `p`; returns it and the position after it.
#[inline]
fn decode_at(b: &[u8], p: usize) -> (Elem<'_>, usize) {
    let (h, q) = get_varint(b, p);
    let (e, end) = if h & 1 == 1 {
        let z = h >> 1;
        (Elem::Int(((z >> 1) as i64) ^ -((z & 1) as i64)), q)
    } else {
        let l = (h >> 1) as usize;
        (Elem::Str(&b[q..q + l]), q + l)
    };
    (e, end + varint_len((end - p) as u64))
}

/// Where the entry starting at `p` ends.
#[inline]
fn next_end(b: &[u8], p: usize) -> usize {
    decode_at(b, p).1
}

/// Where the entry ending at `end` starts.
#[inline]
fn prev_start(b: &[u8], end: usize) -> usize {
    let (body, s) = get_rvarint(b, end);
    s - body as usize
}

/// Makes room for `extra` more bytes: capacity doubles, but not past the
/// node limit unless the entry needs it.
#[inline]
fn grow(buf: &mut Vec<u8>, extra: usize, limit: usize) {
    let need = buf.len() + extra;
    if need > buf.capacity() {
        let target = (buf.capacity() * 2).min(limit).max(need).max(MIN_NODE_CAP);
        buf.reserve_exact(target - buf.len());
    }
}

/// Replaces the bytes `s..e` of `buf` with the entry for `v`.
fn splice_entry(buf: &mut Vec<u8>, s: usize, e: usize, enc: &Enc, v: &[u8], limit: usize) {
    let (old, new, len) = (e - s, enc.total, buf.len());
    if new > old {
        grow(buf, new - old, limit);
        buf.resize(len + new - old, 0);
        buf.copy_within(e..len, s + new);
    } else if new < old {
        buf.copy_within(e..len, s + new);
        buf.truncate(len - (old - new));
    }
    write_entry(enc, v, &mut buf[s..s + new]);
}

/// Gives back a node's spare capacity once it is no longer an end node. A
/// fresh exact-size allocation (not a realloc, which may keep the old
/// block and its size class) so the memory really returns to the allocator.
#[inline]
fn maybe_shrink(buf: &mut Vec<u8>) {
    if buf.capacity() > buf.len() + buf.len() / 8 + MIN_NODE_CAP {
        *buf = buf.as_slice().to_vec();
    }
}

// ----- nodes -----------------------------------------------------------------

#[derive(Clone, Default)]
struct Node {
    buf: Vec<u8>,
    count: u32,
}

impl Node {
    fn with_entry(e: &Enc, v: &[u8]) -> Node {
        let mut buf = Vec::with_capacity(e.total.max(MIN_NODE_CAP));
        buf.resize(e.total, 0);
        write_entry(e, v, &mut buf);
        Node { buf, count: 1 }
    }

    /// Byte offset of entry `k` (`k == count` gives the end), walking from
    /// the nearer end of the node.
    fn offset(&self, k: usize) -> usize {
        let count = self.count as usize;
        if k <= count / 2 {
            let mut p = 0;
            for _ in 0..k {
                p = next_end(&self.buf, p);
            }
            p
        } else {
            let mut p = self.buf.len();
            for _ in k..count {
                p = prev_start(&self.buf, p);
            }
            p
        }
    }
}

// ----- the list ----------------------------------------------------------------

/// A list value.
#[derive(Clone)]
pub struct List {
    nodes: VecDeque<Node>,
    len: usize,
    /// Node limits derived from `list-max-listpack-size` at creation.
    max_bytes: u32,
    max_count: u32,
}

impl Default for List {
    fn default() -> Self {
        List::new(-2)
    }
}

impl List {
    /// An empty list whose nodes follow `list-max-listpack-size` = `fill`.
    pub fn new(fill: i64) -> List {
        let (max_bytes, max_count) = if fill < 0 {
            (4096u32 << (fill.unsigned_abs().min(5) - 1), u32::MAX)
        } else {
            (SAFETY_LIMIT as u32, fill.clamp(1, u32::MAX as i64) as u32)
        };
        List {
            nodes: VecDeque::new(),
            len: 0,
            max_bytes,
            max_count,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Nodes (packed blocks) holding the elements: what dropping it frees.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        "quicklist"
    }

    /// Approximate heap bytes held (MEMORY USAGE).
    pub fn heap_size(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>()
            + self.nodes.iter().map(|n| n.buf.capacity()).sum::<usize>()
    }

    #[inline]
    fn fits(&self, bytes: usize, count: u32) -> bool {
        bytes <= self.max_bytes as usize && count <= self.max_count
    }

    #[inline]
    fn node_fits(&self, ni: usize) -> bool {
        let n = &self.nodes[ni];
        n.count <= 1 || self.fits(n.buf.len(), n.count)
    }

    #[inline]
    fn limit(&self) -> usize {
        self.max_bytes as usize
    }

    fn new_node(&mut self, e: &Enc, v: &[u8], front: bool) {
        if self.nodes.capacity() == 0 {
            self.nodes.reserve_exact(1);
        }
        let node = Node::with_entry(e, v);
        if front {
            if let Some(old) = self.nodes.front_mut() {
                maybe_shrink(&mut old.buf);
            }
            self.nodes.push_front(node);
        } else {
            if let Some(old) = self.nodes.back_mut() {
                maybe_shrink(&mut old.buf);
            }
            self.nodes.push_back(node);
        }
    }

    pub fn push_back(&mut self, v: &[u8]) {
        let e = prep(v);
        let limit = self.limit();
        let room = match self.nodes.back() {
            Some(n) => self.fits(n.buf.len() + e.total, n.count + 1),
            None => false,
        };
        if room {
            let n = self.nodes.back_mut().expect("a tail node");
            grow(&mut n.buf, e.total, limit);
            let at = n.buf.len();
            n.buf.resize(at + e.total, 0);
            write_entry(&e, v, &mut n.buf[at..]);
            n.count += 1;
        } else {
            self.new_node(&e, v, false);
        }
        self.len += 1;
    }

    pub fn push_front(&mut self, v: &[u8]) {
        let e = prep(v);
        let limit = self.limit();
        let room = match self.nodes.front() {
            Some(n) => self.fits(n.buf.len() + e.total, n.count + 1),
            None => false,
        };
        if room {
            let n = self.nodes.front_mut().expect("a head node");
            splice_entry(&mut n.buf, 0, 0, &e, v, limit);
            n.count += 1;
        } else {
            self.new_node(&e, v, true);
        }
        self.len += 1;
    }

    /// Pushes `vals` one after the other at the head (`front`, so the last
    /// one ends up first, as LPUSH does) or the tail, like repeated
    /// [`List::push`] calls, but sizes each end node for the entries it is
    /// about to receive, so a bulk push leaves no spare capacity.
    pub fn push_all(&mut self, vals: &[&[u8]], front: bool) {
        if let [v] = vals {
            return self.push(v, front);
        }
        let mut i = 0;
        while i < vals.len() {
            let end = if front {
                self.nodes.front()
            } else {
                self.nodes.back()
            };
            let first = prep(vals[i]).total;
            let (mut bytes, mut count) = match end {
                Some(n) if self.fits(n.buf.len() + first, n.count + 1) => (n.buf.len(), n.count),
                _ => (0, 0),
            };
            let fresh = count == 0;
            let mut j = i;
            while j < vals.len() {
                let t = if j == i { first } else { prep(vals[j]).total };
                if !(count == 0 || self.fits(bytes + t, count + 1)) {
                    break;
                }
                bytes += t;
                count += 1;
                j += 1;
            }
            let mut k = i;
            if fresh {
                self.push(vals[k], front);
                k += 1;
            }
            let n = if front {
                self.nodes.front_mut()
            } else {
                self.nodes.back_mut()
            }
            .expect("an end node");
            if n.buf.capacity() < bytes {
                n.buf.reserve_exact(bytes - n.buf.len());
            }
            for v in &vals[k..j] {
                self.push(v, front);
            }
            i = j;
        }
    }

    /// Pushes at the head (`front`) or the tail.
    pub fn push(&mut self, v: &[u8], front: bool) {
        if front {
            self.push_front(v)
        } else {
            self.push_back(v)
        }
    }

    /// The first element.
    pub fn first(&self) -> Option<Elem<'_>> {
        let n = self.nodes.front()?;
        Some(decode_at(&n.buf, 0).0)
    }

    /// The last element.
    pub fn last(&self) -> Option<Elem<'_>> {
        let n = self.nodes.back()?;
        let s = prev_start(&n.buf, n.buf.len());
        Some(decode_at(&n.buf, s).0)
    }

    pub fn pop_front(&mut self) -> Option<Vec<u8>> {
        let v = self.first()?.to_vec();
        self.remove_front(1);
        Some(v)
    }

    pub fn pop_back(&mut self) -> Option<Vec<u8>> {
        let v = self.last()?.to_vec();
        self.remove_back(1);
        Some(v)
    }

    /// Pops from the head (`front`) or the tail.
    pub fn pop(&mut self, front: bool) -> Option<Vec<u8>> {
        if front {
            self.pop_front()
        } else {
            self.pop_back()
        }
    }

    /// Removes the first `n` elements (all of them if fewer).
    pub fn remove_front(&mut self, n: usize) {
        let mut n = n.min(self.len);
        self.len -= n;
        while n > 0 {
            let node = self.nodes.front_mut().expect("a head node");
            let c = node.count as usize;
            if c <= n {
                n -= c;
                self.nodes.pop_front();
            } else {
                let off = node.offset(n);
                node.buf.drain(..off);
                node.count -= n as u32;
                n = 0;
            }
        }
    }

    /// Removes the last `n` elements (all of them if fewer).
    pub fn remove_back(&mut self, n: usize) {
        let mut n = n.min(self.len);
        self.len -= n;
        while n > 0 {
            let node = self.nodes.back_mut().expect("a tail node");
            let c = node.count as usize;
            if c <= n {
                n -= c;
                self.nodes.pop_back();
            } else {
                let off = node.offset(c - n);
                node.buf.truncate(off);
                node.count -= n as u32;
                n = 0;
            }
        }
    }

    /// The node holding element `index` (< len) and its position there,
    /// walking from the nearer end.
    fn locate(&self, index: usize) -> (usize, usize) {
        debug_assert!(index < self.len);
        if index < self.len / 2 {
            let mut i = index;
            for (ni, n) in self.nodes.iter().enumerate() {
                let c = n.count as usize;
                if i < c {
                    return (ni, i);
                }
                i -= c;
            }
        } else {
            let mut i = self.len - 1 - index;
            for (ni, n) in self.nodes.iter().enumerate().rev() {
                let c = n.count as usize;
                if i < c {
                    return (ni, c - 1 - i);
                }
                i -= c;
            }
        }
        unreachable!("list index {index} beyond the node counts")
    }

    /// Element `index` (0-based from the head).
    pub fn get(&self, index: usize) -> Option<Elem<'_>> {
        if index >= self.len {
            return None;
        }
        let (ni, k) = self.locate(index);
        let n = &self.nodes[ni];
        Some(decode_at(&n.buf, n.offset(k)).0)
    }

    /// Replaces element `index`; false if there is none.
    pub fn set(&mut self, index: usize, v: &[u8]) -> bool {
        if index >= self.len {
            return false;
        }
        let (ni, k) = self.locate(index);
        let e = prep(v);
        let limit = self.limit();
        let n = &mut self.nodes[ni];
        let s = n.offset(k);
        let end = next_end(&n.buf, s);
        splice_entry(&mut n.buf, s, end, &e, v, limit);
        if !self.node_fits(ni) {
            self.split(ni);
        }
        true
    }

    /// Inserts `v` so that it becomes element `index` (`index >= len`
    /// appends).
    pub fn insert(&mut self, index: usize, v: &[u8]) {
        if index == 0 {
            return self.push_front(v);
        }
        if index >= self.len {
            return self.push_back(v);
        }
        let (ni, k) = self.locate(index);
        let e = prep(v);
        let limit = self.limit();
        self.len += 1;
        if k == 0 {
            // At a node boundary: the previous node's tail may have room.
            let p = &self.nodes[ni - 1];
            if self.fits(p.buf.len() + e.total, p.count + 1) {
                let p = &mut self.nodes[ni - 1];
                let at = p.buf.len();
                splice_entry(&mut p.buf, at, at, &e, v, limit);
                p.count += 1;
                return;
            }
        }
        let n = &mut self.nodes[ni];
        let s = n.offset(k);
        splice_entry(&mut n.buf, s, s, &e, v, limit);
        n.count += 1;
        if !self.node_fits(ni) {
            self.split(ni);
        }
    }

    /// Splits an oversized node (two or more entries) near its middle byte,
    /// again and again until every part fits or holds a single entry.
    fn split(&mut self, ni: usize) {
        let n = &mut self.nodes[ni];
        let count = n.count as usize;
        debug_assert!(count >= 2);
        let half = n.buf.len() / 2;
        let (mut p, mut k) = (0, 0);
        while k < count - 1 {
            p = next_end(&n.buf, p);
            k += 1;
            if p >= half {
                break;
            }
        }
        let right = Node {
            buf: n.buf[p..].to_vec(),
            count: (count - k) as u32,
        };
        n.buf.truncate(p);
        n.buf.shrink_to_fit();
        n.count = k as u32;
        self.nodes.insert(ni + 1, right);
        if !self.node_fits(ni + 1) {
            self.split(ni + 1);
        }
        if !self.node_fits(ni) {
            self.split(ni);
        }
    }

    /// Merges neighbouring nodes whose entries fit in one node (after
    /// removals in the middle).
    fn compact(&mut self) {
        let limit = self.limit();
        let old = std::mem::take(&mut self.nodes);
        let mut out: VecDeque<Node> = VecDeque::with_capacity(old.len());
        for n in old {
            if n.count == 0 {
                continue;
            }
            if let Some(last) = out.back_mut() {
                if self.fits(last.buf.len() + n.buf.len(), last.count + n.count) {
                    grow(&mut last.buf, n.buf.len(), limit);
                    last.buf.extend_from_slice(&n.buf);
                    last.count += n.count;
                    continue;
                }
                maybe_shrink(&mut last.buf);
            }
            out.push_back(n);
        }
        if let Some(last) = out.back_mut() {
            maybe_shrink(&mut last.buf);
        }
        self.nodes = out;
    }

    /// Removes elements equal to `needle`: at most `limit` of them (0 = all),
    /// the first ones from the head, or from the tail if `from_tail`.
    /// Returns how many were removed.
    pub fn remove_matching(&mut self, needle: &Needle, limit: usize, from_tail: bool) -> usize {
        let mut removed = 0usize;
        let mut spans: Vec<(usize, usize, bool)> = Vec::new();
        let nn = self.nodes.len();
        for step in 0..nn {
            if limit != 0 && removed >= limit {
                break;
            }
            let ni = if from_tail { nn - 1 - step } else { step };
            let n = &mut self.nodes[ni];
            spans.clear();
            let mut p = 0;
            let mut any = false;
            while p < n.buf.len() {
                let (e, q) = decode_at(&n.buf, p);
                let m = needle.matches(e);
                any |= m;
                spans.push((p, q, m));
                p = q;
            }
            if !any {
                continue;
            }
            // Keep only the matches within the budget, in walk order.
            let mut take = |m: &mut bool| {
                if *m {
                    if limit == 0 || removed < limit {
                        removed += 1;
                    } else {
                        *m = false;
                    }
                }
            };
            if from_tail {
                spans.iter_mut().rev().for_each(|s| take(&mut s.2));
            } else {
                spans.iter_mut().for_each(|s| take(&mut s.2));
            }
            let mut w = 0;
            let mut gone = 0;
            for &(s, e, m) in &spans {
                if m {
                    gone += 1;
                } else {
                    n.buf.copy_within(s..e, w);
                    w += e - s;
                }
            }
            n.buf.truncate(w);
            n.count -= gone;
        }
        if removed > 0 {
            self.len -= removed;
            self.compact();
        }
        removed
    }

    /// Index of the first element equal to `needle`.
    pub fn position(&self, needle: &Needle) -> Option<usize> {
        self.iter().position(|e| needle.matches(e))
    }

    /// Iterates from element `index` towards the tail, or towards the head
    /// if `rev`. Empty when `index >= len`.
    pub fn iter_at(&self, index: usize, rev: bool) -> Iter<'_> {
        if index >= self.len {
            return Iter {
                nodes: &self.nodes,
                ni: 0,
                pos: 0,
                left: 0,
                rev,
            };
        }
        let (ni, k) = self.locate(index);
        let n = &self.nodes[ni];
        let (pos, left) = if rev {
            (n.offset(k + 1), index + 1)
        } else {
            (n.offset(k), self.len - index)
        };
        Iter {
            nodes: &self.nodes,
            ni,
            pos,
            left,
            rev,
        }
    }

    /// Head to tail.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            nodes: &self.nodes,
            ni: 0,
            pos: 0,
            left: self.len,
            rev: false,
        }
    }

    /// Tail to head.
    pub fn iter_rev(&self) -> Iter<'_> {
        let ni = self.nodes.len().saturating_sub(1);
        Iter {
            nodes: &self.nodes,
            ni,
            pos: self.nodes.get(ni).map_or(0, |n| n.buf.len()),
            left: self.len,
            rev: true,
        }
    }

    /// Checks the internal invariants (tests).
    #[cfg(test)]
    fn check(&self) {
        let mut total = 0;
        for (i, n) in self.nodes.iter().enumerate() {
            assert!(n.count > 0, "empty node {i}");
            assert!(self.node_fits(i), "node {i} over its limit");
            let mut p = 0;
            let mut c = 0;
            while p < n.buf.len() {
                let q = next_end(&n.buf, p);
                assert_eq!(prev_start(&n.buf, q), p, "backlen of node {i}");
                p = q;
                c += 1;
            }
            assert_eq!(p, n.buf.len());
            assert_eq!(c, n.count as usize, "count of node {i}");
            total += c;
        }
        assert_eq!(total, self.len);
    }
}

impl PartialEq for List {
    fn eq(&self, other: &List) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl fmt::Debug for List {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.iter()
                    .map(|e| String::from_utf8_lossy(&e.to_vec()).into_owned()),
            )
            .finish()
    }
}

/// An iterator over a list's elements in either direction.
pub struct Iter<'a> {
    nodes: &'a VecDeque<Node>,
    ni: usize,
    pos: usize,
    left: usize,
    rev: bool,
}

impl<'a> Iterator for Iter<'a> {
    type Item = Elem<'a>;

    #[inline]
    fn next(&mut self) -> Option<Elem<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let nodes = self.nodes;
        if self.rev {
            loop {
                let b = &nodes[self.ni].buf;
                if self.pos > 0 {
                    let s = prev_start(b, self.pos);
                    self.pos = s;
                    return Some(decode_at(b, s).0);
                }
                self.ni -= 1;
                self.pos = nodes[self.ni].buf.len();
            }
        } else {
            loop {
                let b = &nodes[self.ni].buf;
                if self.pos < b.len() {
                    let (e, q) = decode_at(b, self.pos);
                    self.pos = q;
                    return Some(e);
                }
                self.ni += 1;
                self.pos = 0;
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Iter<'_> {}

// ----- RDB support -----

impl List {
    /// The nodes head to tail, each as its element count and its elements
    /// in order (RDB saving writes one listpack per node).
    pub fn rdb_nodes(
        &self,
    ) -> impl ExactSizeIterator<Item = (usize, impl Iterator<Item = Elem<'_>> + '_)> + '_ {
        self.nodes.iter().map(|n| {
            let b = &n.buf[..];
            let mut p = 0;
            let elems = std::iter::from_fn(move || {
                if p < b.len() {
                    let (e, q) = decode_at(b, p);
                    p = q;
                    Some(e)
                } else {
                    None
                }
            });
            (n.count as usize, elems)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn items(l: &List) -> Vec<Vec<u8>> {
        l.iter().map(|e| e.to_vec()).collect()
    }

    fn from(fill: i64, vals: &[&str]) -> List {
        let mut l = List::new(fill);
        for v in vals {
            l.push_back(v.as_bytes());
        }
        l
    }

    #[test]
    fn varints_round_trip() {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            16383,
            16384,
            u32::MAX as u64,
            u64::MAX >> 1,
        ] {
            let mut b = vec![0u8; 12];
            let e = put_varint(&mut b, 1, v);
            assert_eq!(e, 1 + varint_len(v));
            assert_eq!(get_varint(&b, 1), (v, e));
            let e = put_rvarint(&mut b, 1, v);
            assert_eq!(get_rvarint(&b, e), (v, 1));
        }
    }

    #[test]
    fn entries_keep_their_exact_bytes() {
        let vals: &[&[u8]] = &[
            b"",
            b"0",
            b"-0",
            b"007",
            b"+5",
            b"5 ",
            b"-1",
            b"63",
            b"-64",
            b"1234567890",
            b"2305843009213693951",
            b"2305843009213693952",
            b"-2305843009213693952",
            b"-2305843009213693953",
            b"9223372036854775807",
            b"-9223372036854775808",
            b"99999999999999999999",
            b"hello",
            b"\x00\xff\r\n",
        ];
        let mut l = List::new(-2);
        for v in vals {
            l.push_back(v);
            l.push_front(v);
        }
        l.check();
        let got = items(&l);
        for (i, v) in vals.iter().enumerate() {
            assert_eq!(&got[vals.len() + i][..], *v);
            assert_eq!(&got[vals.len() - 1 - i][..], *v);
            let n = Needle::new(v);
            assert_eq!(l.position(&n), Some(vals.len() - 1 - i), "{v:?}");
        }
        assert_eq!(prep(b"5").total, 2);
        assert_eq!(prep(b"abc").total, 5);
        let long = vec![b'x'; 200];
        assert_eq!(prep(&long).total, 2 + 200 + 2);
    }

    #[test]
    fn ends_and_indexes() {
        let mut l = from(2, &["a", "b", "c", "d", "e"]);
        l.check();
        assert_eq!(l.nodes.len(), 3);
        assert_eq!(l.first(), Some(Elem::Str(b"a")));
        assert_eq!(l.last(), Some(Elem::Str(b"e")));
        assert_eq!(l.get(3), Some(Elem::Str(b"d")));
        assert_eq!(l.get(5), None);
        assert!(l.set(1, b"BB"));
        assert!(!l.set(5, b"x"));
        l.insert(2, b"x");
        l.insert(0, b"h");
        l.insert(7, b"t");
        l.check();
        let want: Vec<&[u8]> = vec![b"h", b"a", b"BB", b"x", b"c", b"d", b"e", b"t"];
        assert_eq!(items(&l), want);
        assert_eq!(l.pop_front(), Some(b"h".to_vec()));
        assert_eq!(l.pop_back(), Some(b"t".to_vec()));
        let back: Vec<Vec<u8>> = l.iter_at(3, true).map(|e| e.to_vec()).collect();
        assert_eq!(
            back,
            vec![b"c".to_vec(), b"x".to_vec(), b"BB".to_vec(), b"a".to_vec()]
        );
        l.remove_front(2);
        l.remove_back(2);
        assert_eq!(items(&l), vec![b"x".to_vec(), b"c".to_vec()]);
        l.remove_back(10);
        assert!(l.is_empty() && l.nodes.is_empty());
        assert_eq!(l.pop_front(), None);
        assert_eq!(l.iter_rev().count(), 0);
    }

    #[test]
    fn large_elements_get_their_own_node() {
        let mut l = List::new(-1);
        let big = vec![b'b'; 10_000];
        l.push_back(b"a");
        l.push_back(&big);
        l.push_back(b"c");
        l.insert(1, &big);
        assert!(l.set(0, &big));
        l.check();
        assert_eq!(l.len(), 4);
        assert!(l.nodes.len() >= 3);
        assert_eq!(l.get(3), Some(Elem::Str(b"c")));
        assert_eq!(l.remove_matching(&Needle::new(&big), 0, false), 3);
        l.check();
        assert_eq!(items(&l), vec![b"c".to_vec()]);
    }

    #[test]
    fn push_all_matches_push_and_leaves_no_slack() {
        let vals: Vec<Vec<u8>> = (0..1000)
            .map(|i| match i {
                500 => vec![b'x'; 10_000],
                _ if i % 5 == 0 => i.to_string().into_bytes(),
                _ => format!("value-{i}").repeat(i % 7 + 1).into_bytes(),
            })
            .collect();
        let refs: Vec<&[u8]> = vals.iter().map(|v| &v[..]).collect();
        for fill in [-2, -1, 1, 3, 100] {
            for front in [false, true] {
                let (mut a, mut b) = (List::new(fill), List::new(fill));
                a.push_back(b"seed");
                b.push_back(b"seed");
                for chunk in refs.chunks(37) {
                    a.push_all(chunk, front);
                    for v in chunk {
                        b.push(v, front);
                    }
                }
                a.check();
                assert_eq!(items(&a), items(&b), "fill {fill} front {front}");
                let counts = |l: &List| l.nodes.iter().map(|n| n.count).collect::<Vec<_>>();
                assert_eq!(counts(&a), counts(&b), "fill {fill} front {front}");
            }
        }
        // One bulk push into a new list: the node holds exactly its entries.
        let vals: Vec<&[u8]> = vec![b"v000000000000001"; 100];
        for front in [false, true] {
            let mut l = List::new(-2);
            l.push_all(&vals, front);
            assert_eq!(l.nodes.len(), 1);
            assert_eq!(l.nodes[0].buf.len(), 100 * 18);
            assert_eq!(l.nodes[0].buf.capacity(), 100 * 18);
        }
    }

    #[test]
    fn memory_is_compact() {
        let mut l = List::new(-2);
        for i in 0..100_000 {
            l.push_back(format!("v{i}").as_bytes());
        }
        l.check();
        // About 8 bytes per element ("vNNNNN" + 2 bytes of framing).
        assert!(l.heap_size() < 100_000 * 10, "{}", l.heap_size());
        let mut s = List::new(-2);
        s.push_back(b"x");
        assert!(s.heap_size() <= 64, "{}", s.heap_size());
    }

    fn random_value(rng: &mut StdRng) -> Vec<u8> {
        match rng.gen_range(0..100) {
            0..=29 => rng.gen_range(-3i64..40).to_string().into_bytes(),
            30..=34 => [
                "007",
                "-0",
                "+1",
                "",
                "9223372036854775807",
                "-9223372036854775808",
                "2305843009213693952",
            ][rng.gen_range(0..7)]
            .as_bytes()
            .to_vec(),
            35..=39 => vec![b'L'; rng.gen_range(100..3000)],
            40..=41 => vec![b'H'; rng.gen_range(4000..9000)],
            _ => {
                let n = rng.gen_range(0..6);
                (0..n).map(|_| b"abc"[rng.gen_range(0..3)]).collect()
            }
        }
    }

    /// Random operations against a VecDeque model, with fills that force
    /// many node splits and merges.
    #[test]
    fn matches_a_model_under_random_operations() {
        let (mut max_nodes, mut max_len) = (0, 0);
        for seed in 0..24u64 {
            let fill = [-1i64, -2, 1, 2, 3, 7][(seed % 6) as usize];
            let mut rng = StdRng::seed_from_u64(seed);
            let mut l = List::new(fill);
            let mut m: VecDeque<Vec<u8>> = VecDeque::new();
            for step in 0..1500 {
                let len = m.len();
                match rng.gen_range(0..100) {
                    0..=19 => {
                        let v = random_value(&mut rng);
                        l.push_back(&v);
                        m.push_back(v);
                    }
                    20..=34 => {
                        let v = random_value(&mut rng);
                        l.push_front(&v);
                        m.push_front(v);
                    }
                    35..=41 => assert_eq!(l.pop_front(), m.pop_front()),
                    42..=47 => assert_eq!(l.pop_back(), m.pop_back()),
                    48..=59 => {
                        let i = rng.gen_range(0..=len);
                        let v = random_value(&mut rng);
                        l.insert(i, &v);
                        m.insert(i, v);
                    }
                    60..=67 => {
                        let i = rng.gen_range(0..=len);
                        let v = random_value(&mut rng);
                        assert_eq!(l.set(i, &v), i < len);
                        if i < len {
                            m[i] = v;
                        }
                    }
                    68..=73 => {
                        let v = if len > 0 && rng.gen_bool(0.7) {
                            m[rng.gen_range(0..len)].clone()
                        } else {
                            random_value(&mut rng)
                        };
                        let limit = rng.gen_range(0..4);
                        let tail = rng.gen_bool(0.5);
                        let got = l.remove_matching(&Needle::new(&v), limit, tail);
                        let mut idx: Vec<usize> = (0..len).filter(|&i| m[i] == v).collect();
                        if tail {
                            idx.reverse();
                        }
                        if limit > 0 {
                            idx.truncate(limit);
                        }
                        idx.sort_unstable();
                        for &i in idx.iter().rev() {
                            m.remove(i);
                        }
                        assert_eq!(got, idx.len());
                    }
                    74..=78 => {
                        let a = rng.gen_range(0..=len / 3 + 1);
                        let b = rng.gen_range(0..=len / 3 + 1);
                        l.remove_front(a);
                        l.remove_back(b);
                        for _ in 0..a {
                            m.pop_front();
                        }
                        for _ in 0..b {
                            m.pop_back();
                        }
                    }
                    79..=88 => {
                        let i = rng.gen_range(0..=len);
                        assert_eq!(l.get(i).map(|e| e.to_vec()), m.get(i).cloned());
                        let rev = rng.gen_bool(0.5);
                        let n = rng.gen_range(0..20);
                        let got: Vec<Vec<u8>> =
                            l.iter_at(i, rev).take(n).map(|e| e.to_vec()).collect();
                        let want: Vec<Vec<u8>> = if i >= len {
                            vec![]
                        } else if rev {
                            m.iter().take(i + 1).rev().take(n).cloned().collect()
                        } else {
                            m.iter().skip(i).take(n).cloned().collect()
                        };
                        assert_eq!(got, want, "seed {seed} step {step}");
                    }
                    89..=93 => {
                        let v = if len > 0 {
                            m[rng.gen_range(0..len)].clone()
                        } else {
                            b"zz".to_vec()
                        };
                        assert_eq!(l.position(&Needle::new(&v)), m.iter().position(|x| *x == v));
                    }
                    _ => {
                        assert_eq!(l.first().map(|e| e.to_vec()), m.front().cloned());
                        assert_eq!(l.last().map(|e| e.to_vec()), m.back().cloned());
                    }
                }
                l.check();
                max_nodes = max_nodes.max(l.nodes.len());
                max_len = max_len.max(l.len());
                assert_eq!(l.len(), m.len(), "seed {seed} step {step}");
                if step % 50 == 0 || l.len() < 8 {
                    let all: Vec<Vec<u8>> = m.iter().cloned().collect();
                    assert_eq!(items(&l), all, "seed {seed} step {step}");
                    let rev: Vec<Vec<u8>> = l.iter_rev().map(|e| e.to_vec()).collect();
                    assert_eq!(rev, all.into_iter().rev().collect::<Vec<_>>());
                }
            }
            assert_eq!(items(&l), m.iter().cloned().collect::<Vec<_>>());
            let c = l.clone();
            assert_eq!(c, l);
        }
        // The operations really built multi-node lists.
        assert!(
            max_nodes >= 20 && max_len >= 50,
            "{max_nodes} nodes, {max_len} elements"
        );
    }
}
