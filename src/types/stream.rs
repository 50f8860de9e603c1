//! The stream value (Redis's t_stream.c data model).
//!
//! Entries live in packed nodes kept in an ordered map keyed by each node's
//! master ID (the ID of the first entry ever added to the node), like
//! Redis's rax of listpacks. A node holds the master entry's field names and
//! a byte buffer of entries; each entry stores its ID as two varint deltas
//! from the master ID, a flags byte (deleted, same fields as the master) and
//! its fields and values (only the values when the fields equal the
//! master's). A node is closed when it reaches `stream-node-max-entries`
//! entries (deleted ones included) or `stream-node-max-bytes` bytes; a node
//! whose entries are all deleted is dropped.
//!
//! Consumer groups keep a global pending entries list (PEL) and one per
//! consumer, as Redis does.

use std::collections::{BTreeMap, BTreeSet};

/// A stream entry ID.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub const fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    pub fn is_zero(&self) -> bool {
        self.ms == 0 && self.seq == 0
    }

    /// The next ID, None on overflow.
    pub fn incr(self) -> Option<StreamId> {
        if self.seq == u64::MAX {
            if self.ms == u64::MAX {
                None
            } else {
                Some(StreamId::new(self.ms + 1, 0))
            }
        } else {
            Some(StreamId::new(self.ms, self.seq + 1))
        }
    }

    /// The previous ID, None below 0-0.
    pub fn decr(self) -> Option<StreamId> {
        if self.seq == 0 {
            if self.ms == 0 {
                None
            } else {
                Some(StreamId::new(self.ms - 1, u64::MAX))
            }
        } else {
            Some(StreamId::new(self.ms, self.seq - 1))
        }
    }

    pub fn fmt(&self) -> String {
        format!("{}-{}", self.ms, self.seq)
    }

    /// Big-endian 16 bytes (the key of a node in RDB files).
    pub fn to_be(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.ms.to_be_bytes());
        b[8..].copy_from_slice(&self.seq.to_be_bytes());
        b
    }

    pub fn from_be(b: &[u8]) -> Option<StreamId> {
        if b.len() != 16 {
            return None;
        }
        Some(StreamId::new(
            u64::from_be_bytes(b[..8].try_into().ok()?),
            u64::from_be_bytes(b[8..].try_into().ok()?),
        ))
    }
}

/// Parses an unsigned 64-bit number as Redis's `string2ull` does: a strict
/// signed parse first (negatives rejected), else C's strtoull rules
/// (leading blanks, an optional sign, digits to the end, no overflow).
pub fn parse_ull(s: &[u8]) -> Option<u64> {
    if let Some(n) = crate::util::parse_i64(s) {
        return (n >= 0).then_some(n as u64);
    }
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    if i >= s.len() {
        return None;
    }
    let mut v: u64 = 0;
    for &c in &s[i..] {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// A parsed ID argument: the ID, and whether its sequence part was given
/// (false for `<ms>-*`, only accepted when `allow_seq_star`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParsedId {
    pub id: StreamId,
    pub seq_given: bool,
}

/// Parses a stream ID argument: `-`, `+`, `<ms>`, `<ms>-<seq>` and, when
/// `allow_seq_star`, `<ms>-*`. `missing_seq` fills a bare `<ms>`. `strict`
/// rejects `-` and `+`. None: invalid.
pub fn parse_id(
    arg: &[u8],
    missing_seq: u64,
    strict: bool,
    allow_seq_star: bool,
) -> Option<ParsedId> {
    if arg.len() > 127 {
        return None;
    }
    // Redis reads the argument as a C string.
    let arg = match memchr::memchr(0, arg) {
        Some(p) => &arg[..p],
        None => arg,
    };
    if arg == b"-" || arg == b"+" {
        if strict {
            return None;
        }
        let id = if arg == b"-" {
            StreamId::MIN
        } else {
            StreamId::MAX
        };
        return Some(ParsedId {
            id,
            seq_given: true,
        });
    }
    let (ms_part, seq_part) = match memchr::memchr(b'-', arg) {
        Some(p) => (&arg[..p], Some(&arg[p + 1..])),
        None => (arg, None),
    };
    let ms = parse_ull(ms_part)?;
    match seq_part {
        None => Some(ParsedId {
            id: StreamId::new(ms, missing_seq),
            seq_given: true,
        }),
        Some(b"*") if allow_seq_star => Some(ParsedId {
            id: StreamId::new(ms, 0),
            seq_given: false,
        }),
        Some(s) => Some(ParsedId {
            id: StreamId::new(ms, parse_ull(s)?),
            seq_given: true,
        }),
    }
}

// ----- packed nodes ---------------------------------------------------------------

const F_DELETED: u8 = 1;
const F_SAMEFIELDS: u8 = 2;

fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn get_varint(buf: &[u8], pos: &mut usize) -> u64 {
    let mut v: u64 = 0;
    let mut shift = 0;
    loop {
        let b = buf[*pos];
        *pos += 1;
        v |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return v;
        }
        shift += 7;
    }
}

fn put_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    put_varint(buf, b.len() as u64);
    buf.extend_from_slice(b);
}

fn get_bytes<'a>(buf: &'a [u8], pos: &mut usize) -> &'a [u8] {
    let n = get_varint(buf, pos) as usize;
    let s = &buf[*pos..*pos + n];
    *pos += n;
    s
}

/// One packed node.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// The field names of the node's first entry.
    pub master_fields: Vec<Vec<u8>>,
    /// Packed entries (see the module comment).
    pub buf: Vec<u8>,
    /// Live entries.
    pub count: u32,
    /// Entries marked deleted.
    pub deleted: u32,
}

/// An entry read from a node.
#[derive(Debug)]
pub struct EntryRef<'a> {
    pub id: StreamId,
    /// Offset of the flags byte in the node's buffer.
    pub off: usize,
    pub deleted: bool,
    pub fields: Vec<(&'a [u8], &'a [u8])>,
}

impl Node {
    /// An empty node whose master entry has these fields (RDB loading).
    pub fn with_master_fields(master_fields: Vec<Vec<u8>>) -> Node {
        Node {
            master_fields,
            buf: Vec::new(),
            count: 0,
            deleted: 0,
        }
    }

    /// Appends an entry as read from a file (possibly a deleted one).
    pub fn push_raw(
        &mut self,
        master: StreamId,
        id: StreamId,
        deleted: bool,
        fields: &[(&[u8], &[u8])],
    ) {
        let at = self.buf.len();
        self.append(master, id, fields);
        if deleted {
            self.mark_deleted(at);
        }
    }

    fn new(fields: &[(&[u8], &[u8])]) -> Node {
        Node {
            master_fields: fields.iter().map(|f| f.0.to_vec()).collect(),
            buf: Vec::new(),
            count: 0,
            deleted: 0,
        }
    }

    /// Bytes the node takes (its buffer plus the master fields).
    pub fn bytes(&self) -> usize {
        self.buf.len()
            + self
                .master_fields
                .iter()
                .map(|f| f.len() + 1)
                .sum::<usize>()
    }

    fn same_fields(&self, fields: &[(&[u8], &[u8])]) -> bool {
        self.master_fields.len() == fields.len()
            && self
                .master_fields
                .iter()
                .zip(fields)
                .all(|(a, b)| a.as_slice() == b.0)
    }

    fn append(&mut self, master: StreamId, id: StreamId, fields: &[(&[u8], &[u8])]) {
        let same = self.same_fields(fields);
        self.buf.push(if same { F_SAMEFIELDS } else { 0 });
        put_varint(&mut self.buf, id.ms - master.ms);
        put_varint(&mut self.buf, id.seq.wrapping_sub(master.seq));
        if same {
            for (_, v) in fields {
                put_bytes(&mut self.buf, v);
            }
        } else {
            put_varint(&mut self.buf, fields.len() as u64);
            for (f, v) in fields {
                put_bytes(&mut self.buf, f);
                put_bytes(&mut self.buf, v);
            }
        }
        self.count += 1;
    }

    /// Every entry of the node, deleted ones included, in ID order.
    pub fn entries(&self, master: StreamId) -> Vec<EntryRef<'_>> {
        let mut v = Vec::with_capacity((self.count + self.deleted) as usize);
        let b = &self.buf;
        let mut p = 0;
        while p < b.len() {
            let off = p;
            let flags = b[p];
            p += 1;
            let ms = master.ms + get_varint(b, &mut p);
            let seq = master.seq.wrapping_add(get_varint(b, &mut p));
            let mut fields = Vec::new();
            if flags & F_SAMEFIELDS != 0 {
                for f in &self.master_fields {
                    fields.push((f.as_slice(), get_bytes(b, &mut p)));
                }
            } else {
                let n = get_varint(b, &mut p);
                for _ in 0..n {
                    let f = get_bytes(b, &mut p);
                    fields.push((f, get_bytes(b, &mut p)));
                }
            }
            v.push(EntryRef {
                id: StreamId::new(ms, seq),
                off,
                deleted: flags & F_DELETED != 0,
                fields,
            });
        }
        v
    }

    fn mark_deleted(&mut self, off: usize) {
        self.buf[off] |= F_DELETED;
        self.count -= 1;
        self.deleted += 1;
    }
}

// ----- consumer groups ------------------------------------------------------------

/// The "entries read" value that means unknown.
pub const INVALID_ENTRIES_READ: i64 = -1;

/// A pending entry of a group.
#[derive(Clone, Debug, PartialEq)]
pub struct Nack {
    pub delivery_time: u64,
    pub delivery_count: u64,
    pub consumer: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Consumer {
    /// Last time it was seen (read or claimed), Unix ms.
    pub seen_time: u64,
    pub pel: BTreeSet<StreamId>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    pub last_id: StreamId,
    pub entries_read: i64,
    pub pel: BTreeMap<StreamId, Nack>,
    pub consumers: BTreeMap<Vec<u8>, Consumer>,
}

impl Group {
    pub fn new(last_id: StreamId, entries_read: i64) -> Group {
        Group {
            last_id,
            entries_read,
            pel: BTreeMap::new(),
            consumers: BTreeMap::new(),
        }
    }

    /// Finds or creates a consumer; returns whether it was created.
    pub fn consumer(&mut self, name: &[u8], now: u64) -> (&mut Consumer, bool) {
        let mut created = false;
        if !self.consumers.contains_key(name) {
            self.consumers.insert(
                name.to_vec(),
                Consumer {
                    seen_time: now,
                    pel: BTreeSet::new(),
                },
            );
            created = true;
        }
        (self.consumers.get_mut(name).expect("consumer"), created)
    }

    /// Removes a pending entry from the group and its consumer.
    pub fn ack(&mut self, id: StreamId) -> bool {
        match self.pel.remove(&id) {
            Some(n) => {
                if let Some(c) = self.consumers.get_mut(&n.consumer) {
                    c.pel.remove(&id);
                }
                true
            }
            None => false,
        }
    }
}

// ----- the stream -----------------------------------------------------------------

/// Trimming strategy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trim {
    MaxLen(u64),
    MinId(StreamId),
}

/// A stream value.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Stream {
    pub nodes: BTreeMap<StreamId, Node>,
    pub length: u64,
    pub last_id: StreamId,
    pub first_id: StreamId,
    pub max_deleted_id: StreamId,
    pub entries_added: u64,
    /// Consumer groups by name.
    pub groups: BTreeMap<Vec<u8>, Group>,
    /// Node limits (`stream-node-max-bytes`, `stream-node-max-entries`;
    /// 0 = no limit).
    pub node_max_bytes: usize,
    pub node_max_entries: usize,
}

/// An owned entry (for replies built away from the stream).
pub type Entry = (StreamId, Vec<(Vec<u8>, Vec<u8>)>);

impl Stream {
    pub fn new(node_max_bytes: usize, node_max_entries: usize) -> Stream {
        Stream {
            node_max_bytes,
            node_max_entries,
            ..Default::default()
        }
    }

    pub fn len(&self) -> u64 {
        self.length
    }

    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    pub fn encoding(&self) -> &'static str {
        "stream"
    }

    pub fn heap_size(&self) -> usize {
        let nodes: usize = self
            .nodes
            .values()
            .map(|n| {
                n.buf.capacity()
                    + n.master_fields
                        .iter()
                        .map(|f| f.capacity() + 24)
                        .sum::<usize>()
                    + std::mem::size_of::<Node>()
                    + 48
            })
            .sum();
        let groups: usize = self
            .groups
            .iter()
            .map(|(k, g)| {
                k.len()
                    + std::mem::size_of::<Group>()
                    + g.pel.values().map(|n| 64 + n.consumer.len()).sum::<usize>()
                    + g.consumers
                        .iter()
                        .map(|(k, c)| k.len() + 64 + c.pel.len() * 24)
                        .sum::<usize>()
            })
            .sum();
        nodes + groups
    }

    /// Appends an entry with `id` (already validated to be > last_id).
    pub fn append(&mut self, id: StreamId, fields: &[(&[u8], &[u8])]) {
        let mut new_node = true;
        if let Some((_, n)) = self.nodes.iter().next_back() {
            let full_entries = self.node_max_entries != 0
                && (n.count + n.deleted) as usize >= self.node_max_entries;
            let add: usize = fields
                .iter()
                .map(|(f, v)| f.len() + v.len() + 4)
                .sum::<usize>()
                + 8;
            let full_bytes = self.node_max_bytes != 0 && n.bytes() + add > self.node_max_bytes;
            new_node = full_entries || full_bytes;
        }
        if new_node {
            self.nodes.insert(id, Node::new(fields));
        }
        let (&master, node) = self.nodes.iter_mut().next_back().expect("a node");
        node.append(master, id, fields);
        if self.length == 0 {
            self.first_id = id;
        }
        self.length += 1;
        self.entries_added += 1;
        self.last_id = id;
    }

    /// The next auto ID after last_id for time `ms` (None: the stream is
    /// exhausted).
    pub fn next_id(&self, ms: u64) -> Option<StreamId> {
        if ms > self.last_id.ms {
            Some(StreamId::new(ms, 0))
        } else {
            self.last_id.incr()
        }
    }

    /// Entries with start <= id <= end, in order (reverse when `rev`), at
    /// most `count` (0 = all).
    pub fn range(&self, start: StreamId, end: StreamId, count: usize, rev: bool) -> Vec<Entry> {
        let mut out = Vec::new();
        if start > end {
            return out;
        }
        self.for_each(start, end, rev, |id, f| {
            out.push((
                id,
                f.iter().map(|(a, b)| (a.to_vec(), b.to_vec())).collect(),
            ));
            count == 0 || out.len() < count
        });
        out
    }

    /// Calls `f` for each live entry in [start, end], in order (reverse when
    /// `rev`), until it returns false.
    pub fn for_each<F>(&self, start: StreamId, end: StreamId, rev: bool, mut f: F)
    where
        F: FnMut(StreamId, &[(&[u8], &[u8])]) -> bool,
    {
        if start > end {
            return;
        }
        // The node holding `start` may begin before it.
        let first_key = self
            .nodes
            .range(..=start)
            .next_back()
            .map(|(k, _)| *k)
            .unwrap_or(start);
        let iter = self.nodes.range(first_key..=end);
        let visit = |(m, n): (&StreamId, &Node), f: &mut F| -> bool {
            let es = n.entries(*m);
            let mut go = |e: &EntryRef| -> Option<bool> {
                if e.deleted || e.id < start || e.id > end {
                    return None;
                }
                Some(f(e.id, &e.fields))
            };
            if rev {
                for e in es.iter().rev() {
                    if go(e) == Some(false) {
                        return false;
                    }
                }
            } else {
                for e in es.iter() {
                    if go(e) == Some(false) {
                        return false;
                    }
                }
            }
            true
        };
        if rev {
            for kv in iter.rev() {
                if !visit(kv, &mut f) {
                    return;
                }
            }
        } else {
            for kv in iter {
                if !visit(kv, &mut f) {
                    return;
                }
            }
        }
    }

    /// Looks an entry up.
    pub fn get(&self, id: StreamId) -> Option<Entry> {
        self.range(id, id, 1, false).pop()
    }

    pub fn contains(&self, id: StreamId) -> bool {
        let mut found = false;
        self.for_each(id, id, false, |_, _| {
            found = true;
            false
        });
        found
    }

    /// The first live entry's ID (0-0 when empty).
    fn compute_first(&self) -> StreamId {
        let mut first = StreamId::MIN;
        self.for_each(StreamId::MIN, StreamId::MAX, false, |id, _| {
            first = id;
            false
        });
        first
    }

    /// Deletes one entry. Returns whether it existed.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Some((&master, node)) = self.nodes.range_mut(..=id).next_back() else {
            return false;
        };
        let off = node
            .entries(master)
            .iter()
            .find(|e| e.id == id && !e.deleted)
            .map(|e| e.off);
        let Some(off) = off else {
            return false;
        };
        node.mark_deleted(off);
        if node.count == 0 {
            self.nodes.remove(&master);
        }
        self.length -= 1;
        if id > self.max_deleted_id {
            self.max_deleted_id = id;
        }
        if self.length == 0 {
            self.first_id = StreamId::MIN;
        } else if id == self.first_id {
            self.first_id = self.compute_first();
        }
        true
    }

    /// Trims by MAXLEN or MINID. `approx` only removes whole nodes; `limit`
    /// bounds the entries removed (0 = none). Returns the entries removed.
    pub fn trim(&mut self, how: Trim, approx: bool, limit: u64) -> u64 {
        let mut removed = 0u64;
        loop {
            if self.length == 0 {
                break;
            }
            let done = match how {
                Trim::MaxLen(n) => self.length <= n,
                Trim::MinId(_) => false,
            };
            if done {
                break;
            }
            let Some((&master, node)) = self.nodes.iter().next() else {
                break;
            };
            let entries = node.count as u64;
            // Can the whole node go?
            let whole = match how {
                Trim::MaxLen(n) => self.length - entries >= n,
                Trim::MinId(min) => {
                    // Its last entry must be below min.
                    let last = node.entries(master).iter().last().map(|e| e.id);
                    matches!(last, Some(l) if l < min)
                }
            };
            if whole {
                if limit != 0 && removed + entries > limit {
                    break;
                }
                self.nodes.remove(&master);
                self.length -= entries;
                removed += entries;
                continue;
            }
            if approx {
                break;
            }
            // Mark entries of the first node deleted one by one.
            let node = self.nodes.get_mut(&master).expect("node");
            let es: Vec<(StreamId, usize)> = node
                .entries(master)
                .iter()
                .filter(|e| !e.deleted)
                .map(|e| (e.id, e.off))
                .collect();
            for (id, off) in es {
                let stop = match how {
                    Trim::MaxLen(n) => self.length <= n,
                    Trim::MinId(min) => id >= min,
                };
                if stop {
                    break;
                }
                node.mark_deleted(off);
                self.length -= 1;
                removed += 1;
            }
            if node.count == 0 {
                self.nodes.remove(&master);
            }
            break;
        }
        if removed > 0 {
            self.first_id = if self.length == 0 {
                StreamId::MIN
            } else {
                self.compute_first()
            };
        }
        removed
    }

    // ----- entries-read bookkeeping (Redis 7.0's lag estimates) ---------

    /// Whether a deleted entry may lie in [start, end].
    pub fn range_has_tombstones(&self, start: StreamId, end: StreamId) -> bool {
        if self.length == 0 || self.max_deleted_id.is_zero() {
            return false;
        }
        if self.first_id > self.max_deleted_id {
            return false;
        }
        start <= self.max_deleted_id && self.max_deleted_id <= end
    }

    /// The logical position of `id` counted from the first entry ever
    /// added, when it can be known.
    pub fn estimate_distance(&self, id: StreamId) -> i64 {
        if self.entries_added == 0 {
            return 0;
        }
        if self.length == 0 && id <= self.last_id {
            return self.entries_added as i64;
        }
        if id == self.last_id {
            return self.entries_added as i64;
        }
        if id > self.last_id {
            return INVALID_ENTRIES_READ;
        }
        if self.max_deleted_id.is_zero() || self.max_deleted_id < self.first_id {
            if id < self.first_id {
                return self.entries_added.saturating_sub(self.length) as i64;
            } else if id == self.first_id {
                return (self.entries_added.saturating_sub(self.length) + 1) as i64;
            }
        }
        INVALID_ENTRIES_READ
    }

    /// A group's lag, None when unknown.
    pub fn lag(&self, g: &Group) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        if g.entries_read != INVALID_ENTRIES_READ
            && !self.range_has_tombstones(g.last_id, StreamId::MAX)
        {
            return Some((self.entries_added as i64).wrapping_sub(g.entries_read));
        }
        let er = self.estimate_distance(g.last_id);
        (er != INVALID_ENTRIES_READ).then(|| (self.entries_added as i64).wrapping_sub(er))
    }

    /// Updates a group after delivering `id` to it with `>`.
    pub fn group_delivered(&mut self, group: &[u8], id: StreamId) {
        let has_tomb = self.range_has_tombstones(id, StreamId::MAX);
        let est = self.estimate_distance(id);
        let added = self.entries_added;
        let g = self.groups.get_mut(group).expect("group");
        if id > g.last_id {
            if g.entries_read != INVALID_ENTRIES_READ && !has_tomb {
                g.entries_read = g.entries_read.wrapping_add(1);
            } else if added != 0 {
                g.entries_read = est;
            }
            g.last_id = id;
        }
    }

    /// Every entry in order, deleted ones excluded (tests, DEBUG).
    pub fn all(&self) -> Vec<Entry> {
        self.range(StreamId::MIN, StreamId::MAX, 0, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64, seq: u64) -> StreamId {
        StreamId::new(ms, seq)
    }

    #[test]
    fn parse_ids_like_redis() {
        let p = |s: &str| parse_id(s.as_bytes(), 0, false, false).map(|p| p.id);
        assert_eq!(p("5"), Some(id(5, 0)));
        assert_eq!(p("5-3"), Some(id(5, 3)));
        assert_eq!(p("-"), Some(StreamId::MIN));
        assert_eq!(p("+"), Some(StreamId::MAX));
        assert_eq!(
            p("18446744073709551615-18446744073709551615"),
            Some(StreamId::MAX)
        );
        assert_eq!(p("18446744073709551616-0"), None);
        assert_eq!(p("abc"), None);
        assert_eq!(p("1-2-3"), None);
        assert_eq!(p("1-"), None);
        assert_eq!(p("-1"), None);
        assert_eq!(p("1--1"), None);
        assert_eq!(p(""), None);
        assert_eq!(p("5-*"), None);
        let star = parse_id(b"5-*", 0, false, true).unwrap();
        assert!(!star.seq_given);
        assert_eq!(parse_id(b"-", 0, true, false), None);
        assert_eq!(
            parse_id(b"7", u64::MAX, false, false).unwrap().id,
            id(7, u64::MAX)
        );
    }

    #[test]
    fn nodes_pack_and_split() {
        let mut s = Stream::new(4096, 100);
        for i in 1..=250u64 {
            let v = i.to_string();
            s.append(id(i, 0), &[(b"f", v.as_bytes())]);
        }
        assert_eq!(s.nodes.len(), 3);
        assert_eq!(s.len(), 250);
        // Same fields as the master: values only.
        let n = s.nodes.values().next().unwrap();
        assert!(n.buf.len() < 100 * 8);
        let r = s.range(id(99, 0), id(102, 0), 0, false);
        assert_eq!(r.len(), 4);
        assert_eq!(r[0].1[0].1, b"99");
        let r = s.range(StreamId::MIN, StreamId::MAX, 3, true);
        assert_eq!(
            r.iter().map(|e| e.0.ms).collect::<Vec<_>>(),
            [250, 249, 248]
        );
        // Byte limit.
        let mut b = Stream::new(100, 0);
        for i in 1..=10u64 {
            b.append(id(i, 0), &[(b"f", &[b'x'; 40][..])]);
        }
        assert!(b.nodes.len() >= 5);
        assert_eq!(b.all().len(), 10);
    }

    #[test]
    fn delete_and_trim() {
        let mut s = Stream::new(4096, 10);
        for i in 1..=35u64 {
            s.append(id(i, 0), &[(b"a", b"1"), (b"b", b"2")]);
        }
        assert!(s.delete(id(1, 0)));
        assert!(!s.delete(id(1, 0)));
        assert_eq!(s.first_id, id(2, 0));
        assert_eq!(s.max_deleted_id, id(1, 0));
        // Approximate trimming only drops whole nodes.
        assert_eq!(s.trim(Trim::MaxLen(20), true, 0), 9);
        assert_eq!(s.len(), 25);
        assert_eq!(s.trim(Trim::MaxLen(20), false, 0), 5);
        assert_eq!(s.first_id, id(16, 0));
        assert_eq!(s.trim(Trim::MinId(id(30, 0)), false, 0), 14);
        assert_eq!(s.first_id, id(30, 0));
        assert_eq!(s.len(), 6);
        // LIMIT bounds whole-node removal: the node holding only 30-0
        // goes, the next one (5 entries) is over the limit.
        assert_eq!(s.trim(Trim::MaxLen(0), true, 1), 1);
        assert_eq!(s.trim(Trim::MaxLen(0), true, 1), 0);
        assert_eq!(s.len(), 5);
    }

    type Fields = Vec<(Vec<u8>, Vec<u8>)>;

    /// A model-based check: random appends, deletes and trims against a
    /// plain BTreeMap.
    #[test]
    fn model_matches_btreemap() {
        let mut rng = 0x1234_5678_9abc_def0u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for round in 0..20 {
            let mut s = Stream::new(if round % 2 == 0 { 200 } else { 4096 }, 1 + round % 7);
            let mut m: BTreeMap<StreamId, Fields> = BTreeMap::new();
            let mut last = id(0, 0);
            for _ in 0..400 {
                match next() % 10 {
                    0..=5 => {
                        last = if next() % 2 == 0 {
                            id(last.ms + 1 + next() % 3, 0)
                        } else {
                            id(last.ms, last.seq + 1)
                        };
                        let nf = 1 + (next() % 3) as usize;
                        let fv: Vec<(Vec<u8>, Vec<u8>)> = (0..nf)
                            .map(|i| {
                                (
                                    format!("f{}", i + (next() % 2) as usize).into_bytes(),
                                    format!("v{}", next() % 1000).into_bytes(),
                                )
                            })
                            .collect();
                        let refs: Vec<(&[u8], &[u8])> =
                            fv.iter().map(|(a, b)| (&a[..], &b[..])).collect();
                        s.append(last, &refs);
                        m.insert(last, fv);
                    }
                    6 | 7 => {
                        if let Some(k) = m.keys().nth((next() % (m.len() as u64 + 1)) as usize) {
                            let k = *k;
                            assert!(s.delete(k));
                            m.remove(&k);
                        }
                    }
                    8 => {
                        let n = next() % 50;
                        let approx = next() % 2 == 0;
                        let r = s.trim(Trim::MaxLen(n), approx, 0);
                        let mut removed = 0;
                        while !approx && m.len() as u64 > n {
                            let k = *m.keys().next().unwrap();
                            m.remove(&k);
                            removed += 1;
                        }
                        if approx {
                            for _ in 0..r {
                                let k = *m.keys().next().unwrap();
                                m.remove(&k);
                            }
                        } else {
                            assert_eq!(r, removed);
                        }
                    }
                    _ => {
                        let lo = id(next() % (last.ms + 1), 0);
                        let hi = id(lo.ms + next() % 20, u64::MAX);
                        let got = s.range(lo, hi, 0, next() % 2 == 0);
                        let mut want: Vec<StreamId> = m.range(lo..=hi).map(|e| *e.0).collect();
                        let mut gids: Vec<StreamId> = got.iter().map(|e| e.0).collect();
                        gids.sort();
                        want.sort();
                        assert_eq!(gids, want);
                    }
                }
                assert_eq!(s.len(), m.len() as u64);
                let all = s.all();
                let want: Vec<Entry> = m.iter().map(|(k, v)| (*k, v.clone())).collect();
                assert_eq!(all, want);
                let first = m.keys().next().copied().unwrap_or(StreamId::MIN);
                assert_eq!(s.first_id, first);
            }
        }
    }
}
