//! The hash type (the data side of Redis's t_hash.c), in Redis's two
//! encodings:
//!
//! - "listpack": small hashes live in one contiguous byte buffer of
//!   alternating field and value entries, in insertion order (an update
//!   replaces the value in place; a delete closes the gap), found by a
//!   linear scan, exactly as Redis's listpack is used. Entries are encoded
//!   compactly: canonical integers in binary (1 to 9 bytes), strings up to
//!   191 bytes behind a one-byte length (see [`pack`]). No back-lengths are
//!   kept (a hash never walks backwards), so each entry is one byte smaller
//!   than Redis's.
//! - "hashtable": a chained hash table whose chains are packed byte blobs
//!   (see [`table`]): Redis's reverse-binary SCAN cursor, incremental
//!   rehashing and random sampling, at less than half the bytes per field
//!   of Redis's dictEntry + two sds strings.
//!
//! A hash converts to "hashtable" when it gets more than
//! `hash-max-listpack-entries` pairs or a field or value longer than
//! `hash-max-listpack-value` bytes, and never converts back (as Redis).

use crate::util::parse_i64;
use table::HTable;

/// A field or value as stored: bytes, or an integer the compact form keeps
/// in binary (it reads back as its canonical decimal form).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Elem<'a> {
    Str(&'a [u8]),
    Int(i64),
}

impl<'a> Elem<'a> {
    /// The bytes; integers are formatted into `tmp`.
    #[inline]
    pub fn as_bytes<'b>(&self, tmp: &'b mut itoa::Buffer) -> &'b [u8]
    where
        'a: 'b,
    {
        match *self {
            Elem::Str(s) => s,
            Elem::Int(n) => tmp.format(n).as_bytes(),
        }
    }

    pub fn to_vec(&self) -> Vec<u8> {
        self.as_bytes(&mut itoa::Buffer::new()).to_vec()
    }

    /// Length of the decimal/byte form (HSTRLEN).
    pub fn len(&self) -> usize {
        match *self {
            Elem::Str(s) => s.len(),
            Elem::Int(n) => itoa::Buffer::new().format(n).len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value as an integer, parsed strictly as Redis's `string2ll`.
    pub fn as_int(&self) -> Option<i64> {
        match *self {
            Elem::Int(n) => Some(n),
            Elem::Str(s) => parse_i64(s),
        }
    }

    fn eq_bytes(&self, b: &[u8]) -> bool {
        self.as_bytes(&mut itoa::Buffer::new()) == b
    }
}

/// The compact entry codec. Each entry starts with a header byte `h`:
///
/// | `h`           | entry                                          |
/// |---------------|------------------------------------------------|
/// | `0x00..=0xBF` | string of `h` bytes, which follow              |
/// | `0xC0..=0xEF` | integer `h - 0xC0` (0..=47), nothing follows   |
/// | `0xF0`        | integer, 2 bytes little-endian two's complement |
/// | `0xF1`        | integer, 3 bytes                               |
/// | `0xF2`        | integer, 4 bytes                               |
/// | `0xF3`        | integer, 8 bytes                               |
/// | `0xF4`        | string; u32 LE length, then the bytes          |
///
/// A string is stored as an integer exactly when `string2ll` accepts it, so
/// the encoding is canonical: two elements are equal iff their encodings
/// are, and lookups compare encoded bytes. The integer forms are never
/// longer than the string form would be.
pub mod pack {
    use super::Elem;
    use crate::util::parse_i64;

    pub const STR_DIRECT_MAX: usize = 0xBF;
    const SMALL_INT: u8 = 0xC0;
    const SMALL_INT_MAX: i64 = 0xEF - 0xC0;
    const I16: u8 = 0xF0;
    const I24: u8 = 0xF1;
    const I32: u8 = 0xF2;
    const I64: u8 = 0xF3;
    const STR32: u8 = 0xF4;

    /// The encoding of an element minus a string's payload: the whole
    /// entry for integers, the length header for strings.
    #[derive(Clone, Copy)]
    pub struct Head {
        bytes: [u8; 9],
        len: u8,
        /// A string: its bytes follow the header.
        payload: bool,
    }

    impl Head {
        pub fn of(b: &[u8]) -> Head {
            if b.len() <= 20 {
                if let Some(n) = parse_i64(b) {
                    return Head::int(n);
                }
            }
            let mut bytes = [0u8; 9];
            if b.len() <= STR_DIRECT_MAX {
                bytes[0] = b.len() as u8;
                Head {
                    bytes,
                    len: 1,
                    payload: true,
                }
            } else {
                bytes[0] = STR32;
                bytes[1..5].copy_from_slice(&(b.len() as u32).to_le_bytes());
                Head {
                    bytes,
                    len: 5,
                    payload: true,
                }
            }
        }

        fn int(n: i64) -> Head {
            let mut bytes = [0u8; 9];
            let le = n.to_le_bytes();
            let len = if (0..=SMALL_INT_MAX).contains(&n) {
                bytes[0] = SMALL_INT + n as u8;
                1
            } else if i16::try_from(n).is_ok() {
                bytes[0] = I16;
                3
            } else if (-(1i64 << 23)..(1i64 << 23)).contains(&n) {
                bytes[0] = I24;
                4
            } else if i32::try_from(n).is_ok() {
                bytes[0] = I32;
                5
            } else {
                bytes[0] = I64;
                9
            };
            if len > 1 {
                bytes[1..len].copy_from_slice(&le[..len - 1]);
            }
            Head {
                bytes,
                len: len as u8,
                payload: false,
            }
        }

        /// A string: its bytes follow the header.
        #[inline]
        pub fn has_payload(&self) -> bool {
            self.payload
        }

        #[inline]
        pub fn bytes(&self) -> &[u8] {
            &self.bytes[..self.len as usize]
        }

        /// Size of the whole entry for an element `b` of this head.
        #[inline]
        pub fn entry_len(&self, b: &[u8]) -> usize {
            self.len as usize + if self.payload { b.len() } else { 0 }
        }

        /// Does the entry at `pos` hold element `b` (of this head)?
        #[inline]
        pub fn matches(&self, buf: &[u8], pos: usize, b: &[u8]) -> bool {
            let h = self.bytes();
            let end = pos + h.len();
            if buf.get(pos..end) != Some(h) {
                return false;
            }
            !self.payload || buf.get(end..end + b.len()) == Some(b)
        }

        /// Appends the entry for `b` to `buf`.
        pub fn write(&self, buf: &mut Vec<u8>, b: &[u8]) {
            buf.extend_from_slice(self.bytes());
            if self.payload {
                buf.extend_from_slice(b);
            }
        }
    }

    #[inline]
    fn u32_at(buf: &[u8], pos: usize) -> usize {
        u32::from_le_bytes([buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]]) as usize
    }

    /// Size of the entry at `pos`.
    #[inline]
    pub fn entry_len(buf: &[u8], pos: usize) -> usize {
        let h = buf[pos];
        match h {
            0..=0xBF => 1 + h as usize,
            0xC0..=0xEF => 1,
            I16 => 3,
            I24 => 4,
            I32 => 5,
            I64 => 9,
            _ => 5 + u32_at(buf, pos + 1),
        }
    }

    /// The element at `pos`.
    #[inline]
    pub fn decode(buf: &[u8], pos: usize) -> Elem<'_> {
        let h = buf[pos];
        let int = |n: usize| {
            let mut le = [0u8; 8];
            le[..n].copy_from_slice(&buf[pos + 1..pos + 1 + n]);
            // Sign-extend from n bytes.
            let shift = 64 - 8 * n as u32;
            Elem::Int((i64::from_le_bytes(le) << shift) >> shift)
        };
        match h {
            0..=0xBF => Elem::Str(&buf[pos + 1..pos + 1 + h as usize]),
            0xC0..=0xEF => Elem::Int((h - SMALL_INT) as i64),
            I16 => int(2),
            I24 => int(3),
            I32 => int(4),
            I64 => int(8),
            _ => {
                let n = u32_at(buf, pos + 1);
                Elem::Str(&buf[pos + 5..pos + 5 + n])
            }
        }
    }
}

/// Redis refuses to grow a listpack past 1 GiB (`lpSafeToAdd`) and
/// converts the hash instead.
const PACK_SAFETY_SIZE: usize = 1 << 30;

/// The compact form: one exactly-sized allocation holding the number of
/// pairs (u32 LE) and then alternating field and value entries; empty (no
/// allocation) when there are no pairs. Like Redis's listpack it is
/// reallocated on every insert and delete, never over-allocated.
#[derive(Clone, Default)]
struct Pack {
    buf: Box<[u8]>,
}

/// Bytes of the pair count in front of a non-empty [`Pack`].
const PACK_HDR: usize = 4;

/// Where a pair sits in a [`Pack`]: field start, value start, value end.
#[derive(Clone, Copy)]
struct Slot {
    field: usize,
    value: usize,
    end: usize,
}

impl Pack {
    #[inline]
    fn len(&self) -> usize {
        match self.buf.get(..PACK_HDR) {
            Some(h) => u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize,
            None => 0,
        }
    }

    /// Offset of the first entry.
    #[inline]
    fn first(&self) -> usize {
        PACK_HDR.min(self.buf.len())
    }

    fn set_len(v: &mut [u8], n: usize) {
        v[..PACK_HDR].copy_from_slice(&(n as u32).to_le_bytes());
    }

    fn find(&self, field: &[u8]) -> Option<Slot> {
        let head = pack::Head::of(field);
        let buf = &self.buf[..];
        let mut pos = self.first();
        while pos < buf.len() {
            let flen = pack::entry_len(buf, pos);
            let vpos = pos + flen;
            let vend = vpos + pack::entry_len(buf, vpos);
            if head.matches(buf, pos, field) {
                return Some(Slot {
                    field: pos,
                    value: vpos,
                    end: vend,
                });
            }
            pos = vend;
        }
        None
    }

    /// Sets a field; returns true when it was added (not updated).
    fn set(&mut self, field: &[u8], value: &[u8]) -> bool {
        let vh = pack::Head::of(value);
        let found = self.find(field);
        let n = self.len();
        // Box -> Vec -> Box without copies: the capacity stays exact.
        let mut v = Vec::from(std::mem::take(&mut self.buf));
        let added = match found {
            Some(s) => {
                let (new_len, old_len) = (vh.entry_len(value), s.end - s.value);
                if new_len > old_len {
                    v.reserve_exact(new_len - old_len);
                }
                let payload: &[u8] = if vh.has_payload() { value } else { &[] };
                v.splice(
                    s.value..s.end,
                    vh.bytes().iter().chain(payload.iter()).copied(),
                );
                false
            }
            None => {
                let fh = pack::Head::of(field);
                let hdr = if v.is_empty() { PACK_HDR } else { 0 };
                v.reserve_exact(hdr + fh.entry_len(field) + vh.entry_len(value));
                if v.is_empty() {
                    v.extend_from_slice(&[0; PACK_HDR]);
                }
                fh.write(&mut v, field);
                vh.write(&mut v, value);
                Pack::set_len(&mut v, n + 1);
                true
            }
        };
        self.buf = v.into_boxed_slice();
        added
    }

    fn remove(&mut self, field: &[u8]) -> bool {
        let Some(s) = self.find(field) else {
            return false;
        };
        let n = self.len() - 1;
        if n == 0 {
            self.buf = Box::default();
            return true;
        }
        let mut v = Vec::from(std::mem::take(&mut self.buf));
        v.drain(s.field..s.end);
        Pack::set_len(&mut v, n);
        self.buf = v.into_boxed_slice();
        true
    }

    fn iter(&self) -> PackIter<'_> {
        PackIter {
            buf: &self.buf,
            pos: self.first(),
        }
    }

    /// Start offsets of every pair (for random access).
    fn offsets(&self) -> Vec<u32> {
        let mut v = Vec::with_capacity(self.len());
        let mut pos = self.first();
        while pos < self.buf.len() {
            v.push(pos as u32);
            pos += pack::entry_len(&self.buf, pos);
            pos += pack::entry_len(&self.buf, pos);
        }
        v
    }

    fn pair_at(&self, pos: usize) -> (Elem<'_>, Elem<'_>) {
        let f = pack::decode(&self.buf, pos);
        let v = pack::decode(&self.buf, pos + pack::entry_len(&self.buf, pos));
        (f, v)
    }
}

/// Pairs of a [`Pack`] in order.
pub struct PackIter<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for PackIter<'a> {
    type Item = (Elem<'a>, Elem<'a>);
    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let buf = self.buf;
        let f = pack::decode(buf, self.pos);
        self.pos += pack::entry_len(buf, self.pos);
        let v = pack::decode(buf, self.pos);
        self.pos += pack::entry_len(buf, self.pos);
        Some((f, v))
    }
}

enum Repr {
    Pack(Pack),
    Table(Box<HTable>),
}

/// A hash value.
pub struct Hash {
    repr: Repr,
}

impl Default for Hash {
    fn default() -> Self {
        Hash::new()
    }
}

impl Hash {
    pub fn new() -> Hash {
        Hash {
            repr: Repr::Pack(Pack::default()),
        }
    }

    pub fn len(&self) -> usize {
        match &self.repr {
            Repr::Pack(p) => p.len(),
            Repr::Table(d) => d.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        match &self.repr {
            Repr::Pack(_) => "listpack",
            Repr::Table(_) => "hashtable",
        }
    }

    /// Whether the hash is in the compact (listpack) form, whose order is
    /// insertion order.
    pub fn is_compact(&self) -> bool {
        matches!(self.repr, Repr::Pack(_))
    }

    /// Approximate heap bytes held (MEMORY USAGE). The hashtable form's
    /// entry bytes are estimated from a sample, as Redis does.
    pub fn heap_size(&self) -> usize {
        match &self.repr {
            Repr::Pack(p) => p.buf.len(),
            Repr::Table(d) => std::mem::size_of::<HTable>() + d.heap_bytes(),
        }
    }

    /// The value of `field`.
    pub fn get(&self, field: &[u8]) -> Option<Elem<'_>> {
        match &self.repr {
            Repr::Pack(p) => p.find(field).map(|s| pack::decode(&p.buf, s.value)),
            Repr::Table(d) => d.get(field).map(Elem::Str),
        }
    }

    pub fn contains(&self, field: &[u8]) -> bool {
        match &self.repr {
            Repr::Pack(p) => p.find(field).is_some(),
            Repr::Table(d) => d.contains_key(field),
        }
    }

    /// Sets `field` to `value`, as Redis's `hashTypeSet`: a compact hash
    /// converts first when either is longer than `max_value` bytes (or the
    /// pack would pass 1 GiB), and after the write when it holds more than
    /// `max_entries` pairs. Returns true when the field was added.
    pub fn set(
        &mut self,
        field: &[u8],
        value: &[u8],
        max_entries: usize,
        max_value: usize,
    ) -> bool {
        if let Repr::Pack(p) = &self.repr {
            if field.len() > max_value
                || value.len() > max_value
                || p.buf.len() + field.len() + value.len() > PACK_SAFETY_SIZE
            {
                self.convert();
            }
        }
        match &mut self.repr {
            Repr::Pack(p) => {
                let added = p.set(field, value);
                if p.len() > max_entries {
                    self.convert();
                }
                added
            }
            Repr::Table(d) => d.insert(field, value),
        }
    }

    /// Removes `field`; returns whether it was there.
    pub fn remove(&mut self, field: &[u8]) -> bool {
        match &mut self.repr {
            Repr::Pack(p) => p.remove(field),
            Repr::Table(d) => {
                let r = d.remove(field);
                if r {
                    // Redis resizes a hash's dict after every delete.
                    d.shrink_if_needed();
                }
                r
            }
        }
    }

    /// Converts to the hashtable form (a no-op when already there).
    pub fn convert(&mut self) {
        let Repr::Pack(p) = &self.repr else {
            return;
        };
        // Sized for the pairs up front, as Redis's conversion does.
        let mut d = Box::new(HTable::with_capacity(p.len()));
        let (mut tf, mut tv) = (itoa::Buffer::new(), itoa::Buffer::new());
        for (f, v) in p.iter() {
            d.insert(f.as_bytes(&mut tf), v.as_bytes(&mut tv));
        }
        self.repr = Repr::Table(d);
    }

    /// Every pair: insertion order for the compact form, bucket order for
    /// the hashtable.
    pub fn iter(&self) -> impl Iterator<Item = (Elem<'_>, Elem<'_>)> + '_ {
        let (a, b) = match &self.repr {
            Repr::Pack(p) => (Some(p.iter()), None),
            Repr::Table(d) => (
                None,
                Some(d.iter().map(|(k, v)| (Elem::Str(k), Elem::Str(v)))),
            ),
        };
        a.into_iter().flatten().chain(b.into_iter().flatten())
    }

    /// One SCAN step: calls `f` for the pairs under `cursor` and returns
    /// the next cursor. The compact form returns everything at once with
    /// cursor 0, as Redis does.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(Elem<'_>, Elem<'_>)) -> u64 {
        match &self.repr {
            Repr::Pack(p) => {
                for (k, v) in p.iter() {
                    f(k, v);
                }
                0
            }
            Repr::Table(d) => d.scan(cursor, |k, v| f(Elem::Str(k), Elem::Str(v))),
        }
    }

    /// A random-access helper for HRANDFIELD.
    pub fn sampler(&self) -> Sampler<'_> {
        match &self.repr {
            Repr::Pack(p) => Sampler(SamplerRepr::Pack(p, p.offsets())),
            Repr::Table(d) => Sampler(SamplerRepr::Table(d)),
        }
    }
}

/// Picks random pairs of a hash (with repetition).
pub struct Sampler<'a>(SamplerRepr<'a>);

enum SamplerRepr<'a> {
    /// The pack and the offset of every pair.
    Pack(&'a Pack, Vec<u32>),
    Table(&'a HTable),
}

impl<'a> Sampler<'a> {
    /// A uniformly random pair (the hash must not be empty).
    pub fn pick(&self, rnd: &mut impl FnMut() -> u64) -> (Elem<'a>, Elem<'a>) {
        match &self.0 {
            SamplerRepr::Pack(p, offs) => {
                let i = (rnd() % offs.len() as u64) as usize;
                p.pair_at(offs[i] as usize)
            }
            SamplerRepr::Table(d) => {
                let (k, v) = d.random(&mut *rnd).expect("non-empty hash");
                (Elem::Str(k), Elem::Str(v))
            }
        }
    }
}

impl Clone for Hash {
    fn clone(&self) -> Self {
        match &self.repr {
            Repr::Pack(p) => Hash {
                repr: Repr::Pack(p.clone()),
            },
            Repr::Table(d) => Hash {
                repr: Repr::Table(Box::new(d.duplicate())),
            },
        }
    }
}

/// Equal contents (the encoding is not compared).
impl PartialEq for Hash {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self.iter().all(|(f, v)| {
                let mut tmp = itoa::Buffer::new();
                match other.get(f.as_bytes(&mut tmp)) {
                    Some(o) => o.eq_bytes(v.as_bytes(&mut itoa::Buffer::new())),
                    None => false,
                }
            })
    }
}

impl std::fmt::Debug for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hash({}) ", self.encoding())?;
        f.debug_map()
            .entries(self.iter().map(|(k, v)| {
                (
                    String::from_utf8_lossy(&k.to_vec()).into_owned(),
                    String::from_utf8_lossy(&v.to_vec()).into_owned(),
                )
            }))
            .finish()
    }
}

/// The large form: a chained hash table whose chains are packed byte
/// blobs. Each non-empty bucket is one allocation holding its entries back
/// to back (`varint flen, field, varint vlen, value`), so an entry costs
/// its bytes plus two length bytes plus its share of a 16-byte bucket slot,
/// where Redis pays a 24-byte dictEntry and two sds strings. Buckets hold
/// up to two entries on average (the table doubles when the element count
/// reaches twice the bucket count) and are scanned with memcmp.
///
/// The rest follows Redis's dict (and our keyspace [`Dict`]): power-of-two
/// sizes, incremental rehashing into a second table (one bucket per write,
/// so a resize never stalls the shard), shrinking when under 10% full, the
/// reverse-binary SCAN cursor (every element present for a whole scan is
/// returned at least once, through resizes), and random sampling by
/// random non-empty bucket.
///
/// [`Dict`]: crate::shard::dict::Dict
pub mod table {
    use std::hash::BuildHasher;
    use std::ops::Range;

    type Blob = Box<[u8]>;

    const INITIAL: usize = 4;
    /// Grow when elements reach this many per bucket.
    const MAX_LOAD: usize = 2;
    /// Shrink when under this percentage full (Redis's HASHTABLE_MIN_FILL).
    const MIN_FILL_PCT: usize = 10;

    #[inline]
    fn put_len(v: &mut Vec<u8>, mut n: usize) {
        while n >= 0x80 {
            v.push(n as u8 | 0x80);
            n >>= 7;
        }
        v.push(n as u8);
    }

    #[inline]
    fn len_size(mut n: usize) -> usize {
        let mut s = 1;
        while n >= 0x80 {
            n >>= 7;
            s += 1;
        }
        s
    }

    #[inline]
    fn get_len(b: &[u8], pos: &mut usize) -> usize {
        let mut n = 0usize;
        let mut shift = 0;
        loop {
            let c = b[*pos];
            *pos += 1;
            n |= ((c & 0x7f) as usize) << shift;
            if c < 0x80 {
                return n;
            }
            shift += 7;
        }
    }

    /// One entry of a blob: field and value ranges; the entry ends where
    /// the value does.
    #[inline]
    fn entry(b: &[u8], pos: usize) -> (Range<usize>, Range<usize>) {
        let mut p = pos;
        let fl = get_len(b, &mut p);
        let f = p..p + fl;
        p += fl;
        let vl = get_len(b, &mut p);
        (f, p..p + vl)
    }

    /// The entries of a blob: (start, field range, value range).
    fn entries(b: &[u8]) -> impl Iterator<Item = (usize, Range<usize>, Range<usize>)> + '_ {
        let mut pos = 0;
        std::iter::from_fn(move || {
            if pos >= b.len() {
                return None;
            }
            let start = pos;
            let (f, v) = entry(b, pos);
            pos = v.end;
            Some((start, f, v))
        })
    }

    fn pairs(b: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        entries(b).map(move |(_, f, v)| (&b[f], &b[v]))
    }

    /// Appends raw entry bytes to a bucket (one exact reallocation).
    fn append(slot: &mut Option<Blob>, parts: &[&[u8]]) {
        let mut v: Vec<u8> = slot.take().map(Vec::from).unwrap_or_default();
        v.reserve_exact(parts.iter().map(|p| p.len()).sum());
        for p in parts {
            v.extend_from_slice(p);
        }
        *slot = Some(v.into_boxed_slice());
    }

    fn append_pair(slot: &mut Option<Blob>, field: &[u8], value: &[u8]) {
        let mut hdr = Vec::with_capacity(10);
        put_len(&mut hdr, field.len());
        let split = hdr.len();
        put_len(&mut hdr, value.len());
        append(slot, &[&hdr[..split], field, &hdr[split..], value]);
    }

    /// Replaces `range` of a bucket with `with` (None when it ends empty).
    fn splice(slot: &mut Option<Blob>, range: Range<usize>, with: &[u8]) {
        let mut v: Vec<u8> = slot.take().map(Vec::from).unwrap_or_default();
        v.splice(range, with.iter().copied());
        *slot = (!v.is_empty()).then(|| v.into_boxed_slice());
    }

    #[derive(Default)]
    struct Tab {
        buckets: Vec<Option<Blob>>,
        used: usize,
    }

    impl Tab {
        fn with_size(n: usize) -> Tab {
            let mut buckets = Vec::with_capacity(n);
            buckets.resize_with(n, || None);
            Tab { buckets, used: 0 }
        }
        #[inline]
        fn mask(&self) -> u64 {
            (self.buckets.len() as u64).wrapping_sub(1)
        }
    }

    /// Where an entry lives.
    struct Found {
        table: usize,
        bucket: usize,
        start: usize,
        value: Range<usize>,
    }

    pub struct HTable {
        t: [Tab; 2],
        /// Next bucket of `t[0]` to move into `t[1]`; `usize::MAX` when
        /// not rehashing.
        rehash_idx: usize,
        hasher: hashbrown::DefaultHashBuilder,
    }

    impl Default for HTable {
        fn default() -> Self {
            HTable::new()
        }
    }

    const NOT_REHASHING: usize = usize::MAX;

    impl HTable {
        pub fn new() -> HTable {
            HTable {
                t: [Tab::default(), Tab::default()],
                rehash_idx: NOT_REHASHING,
                hasher: hashbrown::DefaultHashBuilder::default(),
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

        /// Bucket slots allocated, both tables.
        pub fn bucket_count(&self) -> usize {
            self.t[0].buckets.len() + self.t[1].buckets.len()
        }

        #[inline]
        pub fn is_rehashing(&self) -> bool {
            self.rehash_idx != NOT_REHASHING
        }

        #[inline]
        fn hash(&self, key: &[u8]) -> u64 {
            self.hasher.hash_one(key)
        }

        /// Moves up to `n` buckets from the old table to the new one
        /// (visiting at most 10n empty ones). Returns true while more
        /// work remains.
        pub fn rehash_step(&mut self, n: usize) -> bool {
            if !self.is_rehashing() {
                return false;
            }
            let mut idx = self.rehash_idx;
            let mut empty_visits = n * 10;
            let mut moved = 0;
            while moved < n && self.t[0].used > 0 {
                while self.t[0].buckets[idx].is_none() {
                    idx += 1;
                    empty_visits -= 1;
                    if empty_visits == 0 {
                        self.rehash_idx = idx;
                        return true;
                    }
                }
                let blob = self.t[0].buckets[idx].take().unwrap_or_default();
                let mask1 = self.t[1].mask();
                for (start, f, v) in entries(&blob) {
                    let h = self.hasher.hash_one(&blob[f]);
                    let slot = &mut self.t[1].buckets[(h & mask1) as usize];
                    append(slot, &[&blob[start..v.end]]);
                    self.t[0].used -= 1;
                    self.t[1].used += 1;
                }
                idx += 1;
                moved += 1;
            }
            if self.t[0].used == 0 {
                self.t[0] = std::mem::take(&mut self.t[1]);
                self.rehash_idx = NOT_REHASHING;
                false
            } else {
                self.rehash_idx = idx;
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
            if self.t[0].buckets.is_empty() || self.t[0].used == 0 {
                self.t[0] = Tab::with_size(size);
                return;
            }
            self.t[1] = Tab::with_size(size);
            self.rehash_idx = 0;
        }

        fn grow_if_needed(&mut self) {
            if self.is_rehashing() {
                return;
            }
            let size = self.t[0].buckets.len();
            if size == 0 {
                self.resize_to(INITIAL);
            } else if self.t[0].used >= size * MAX_LOAD {
                self.resize_to(self.t[0].used);
            }
        }

        /// Starts shrinking when under 10% full (Redis checks after every
        /// delete from a hash).
        pub fn shrink_if_needed(&mut self) {
            if self.is_rehashing() {
                return;
            }
            let size = self.t[0].buckets.len();
            if size > INITIAL && self.t[0].used * 100 / size < MIN_FILL_PCT {
                self.resize_to(self.t[0].used);
            }
        }

        fn find(&self, key: &[u8]) -> Option<Found> {
            if self.is_empty() {
                return None;
            }
            self.find_hashed(key, self.hash(key))
        }

        fn find_hashed(&self, key: &[u8], h: u64) -> Option<Found> {
            for ti in 0..2 {
                let t = &self.t[ti];
                if t.buckets.is_empty() {
                    continue;
                }
                let bucket = (h & t.mask()) as usize;
                if let Some(b) = &t.buckets[bucket] {
                    for (start, f, v) in entries(b) {
                        if &b[f] == key {
                            return Some(Found {
                                table: ti,
                                bucket,
                                start,
                                value: v,
                            });
                        }
                    }
                }
                if !self.is_rehashing() {
                    break;
                }
            }
            None
        }

        pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
            let f = self.find(key)?;
            let b = self.t[f.table].buckets[f.bucket].as_deref()?;
            Some(&b[f.value])
        }

        #[inline]
        pub fn contains_key(&self, key: &[u8]) -> bool {
            self.find(key).is_some()
        }

        /// Inserts or replaces; returns true when the key was added.
        pub fn insert(&mut self, key: &[u8], val: &[u8]) -> bool {
            if self.is_rehashing() {
                self.rehash_step(1);
            }
            let h = self.hash(key);
            if let Some(f) = self.find_hashed(key, h) {
                // Rewrite the value's length and bytes in place.
                let slot = &mut self.t[f.table].buckets[f.bucket];
                let vstart = f.value.start - len_size(f.value.len());
                let mut with = Vec::with_capacity(len_size(val.len()) + val.len());
                put_len(&mut with, val.len());
                with.extend_from_slice(val);
                splice(slot, vstart..f.value.end, &with);
                return false;
            }
            self.grow_if_needed();
            let t = if self.is_rehashing() {
                &mut self.t[1]
            } else {
                &mut self.t[0]
            };
            let m = t.mask();
            append_pair(&mut t.buckets[(h & m) as usize], key, val);
            t.used += 1;
            true
        }

        /// Removes a key; returns whether it was there.
        pub fn remove(&mut self, key: &[u8]) -> bool {
            if self.is_rehashing() {
                self.rehash_step(1);
            }
            let Some(f) = self.find(key) else {
                return false;
            };
            let t = &mut self.t[f.table];
            splice(&mut t.buckets[f.bucket], f.start..f.value.end, &[]);
            t.used -= 1;
            true
        }

        /// Calls `f` for every entry of the buckets addressed by `cursor`
        /// and returns the next cursor (0 when the scan is complete).
        pub fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8], &[u8])) -> u64 {
            if self.is_empty() {
                return 0;
            }
            let emit = |t: &Tab, idx: u64, f: &mut dyn FnMut(&[u8], &[u8])| {
                if let Some(b) = &t.buckets[(idx & t.mask()) as usize] {
                    for (k, v) in pairs(b) {
                        f(k, v);
                    }
                }
            };
            let mut v = cursor;
            if !self.is_rehashing() {
                let t = &self.t[0];
                emit(t, v, &mut f);
                v |= !t.mask();
                v = v.reverse_bits().wrapping_add(1).reverse_bits();
            } else {
                // The bucket of the smaller table, then every bucket of the
                // larger table it expands to.
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

        /// A random entry (None when empty): a random non-empty bucket,
        /// then a random entry of it.
        pub fn random(&self, mut rnd: impl FnMut() -> u64) -> Option<(&[u8], &[u8])> {
            if self.is_empty() {
                return None;
            }
            let n0 = self.t[0].buckets.len();
            let total = n0 + self.t[1].buckets.len();
            let mut tries = 0usize;
            let blob = loop {
                let i = (rnd() % total as u64) as usize;
                let b = if i < n0 {
                    self.t[0].buckets[i].as_deref()
                } else {
                    self.t[1].buckets[i - n0].as_deref()
                };
                if let Some(b) = b {
                    break b;
                }
                tries += 1;
                if tries > 10_000 {
                    // Very sparse table: take the first entry.
                    return self.iter().next();
                }
            };
            let n = entries(blob).count() as u64;
            pairs(blob).nth((rnd() % n) as usize)
        }

        /// Every entry, in bucket order.
        pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
            self.t
                .iter()
                .flat_map(|t| t.buckets.iter().flatten().flat_map(|b| pairs(b)))
        }

        /// Heap bytes: bucket arrays plus blobs (the blobs sampled from
        /// the first buckets on big tables).
        pub fn heap_bytes(&self) -> usize {
            const SAMPLE_BUCKETS: usize = 64;
            let (mut entries_seen, mut bytes) = (0usize, 0usize);
            let mut sampled = 0;
            'outer: for t in &self.t {
                for b in t.buckets.iter().flatten() {
                    bytes += b.len();
                    entries_seen += entries(b).count();
                    sampled += 1;
                    if sampled == SAMPLE_BUCKETS {
                        break 'outer;
                    }
                }
            }
            let blobs = (bytes * self.len()).checked_div(entries_seen).unwrap_or(0);
            self.bucket_count() * std::mem::size_of::<Option<Blob>>() + blobs
        }

        /// An empty table sized for `n` entries.
        pub fn with_capacity(n: usize) -> HTable {
            let mut t = HTable::new();
            t.t[0] = Tab::with_size(n.div_ceil(MAX_LOAD).max(INITIAL).next_power_of_two());
            t
        }

        /// A copy (sized for its entries, no rehash in progress).
        pub fn duplicate(&self) -> HTable {
            let mut n = HTable::with_capacity(self.len());
            for (k, v) in self.iter() {
                let h = n.hash(k);
                let m = n.t[0].mask();
                append_pair(&mut n.t[0].buckets[(h & m) as usize], k, v);
                n.t[0].used += 1;
            }
            n
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use std::collections::{HashMap, HashSet};

        fn key(i: usize) -> Vec<u8> {
            format!("key:{i}").into_bytes()
        }

        #[test]
        fn varints() {
            for n in [0usize, 1, 127, 128, 16383, 16384, 1 << 30, usize::MAX >> 1] {
                let mut v = Vec::new();
                put_len(&mut v, n);
                assert_eq!(v.len(), len_size(n));
                let mut pos = 0;
                assert_eq!(get_len(&v, &mut pos), n);
                assert_eq!(pos, v.len());
            }
        }

        #[test]
        fn model_through_growth_and_shrink() {
            let mut t = HTable::new();
            let mut m: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
            let mut x = 12345u64;
            let mut rnd = move || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            for round in 0..3 {
                for i in 0..5000 {
                    let k = key((rnd() % 3000) as usize);
                    let v = vec![b'v'; (rnd() % 300) as usize];
                    if rnd() % 3 == 0 {
                        assert_eq!(t.remove(&k), m.remove(&k).is_some());
                        t.shrink_if_needed();
                    } else {
                        assert_eq!(t.insert(&k, &v), m.insert(k.clone(), v).is_none());
                    }
                    if i % 500 == 0 {
                        assert_eq!(t.len(), m.len());
                    }
                }
                for (k, v) in &m {
                    assert_eq!(t.get(k), Some(&v[..]), "round {round}");
                }
                assert_eq!(t.iter().count(), m.len());
                // Delete most, shrinking through rehashes.
                let ks: Vec<Vec<u8>> = m.keys().cloned().collect();
                for k in ks.iter().skip(10) {
                    assert!(t.remove(k));
                    m.remove(k);
                    t.shrink_if_needed();
                }
                assert_eq!(t.len(), m.len());
                for (k, v) in &m {
                    assert_eq!(t.get(k), Some(&v[..]));
                }
                let d = t.duplicate();
                let a: HashSet<_> = t.iter().collect();
                let b: HashSet<_> = d.iter().collect();
                assert_eq!(a, b);
            }
        }

        /// Every key present for a whole scan is returned, while the
        /// table grows (inserts) or shrinks (deletes of other keys)
        /// between the calls.
        #[test]
        fn scan_survives_growth_and_shrink() {
            for shrink in [false, true] {
                let mut t = HTable::new();
                for i in 0..1000 {
                    t.insert(&key(i), b"v");
                }
                if shrink {
                    for i in 1000..20_000 {
                        t.insert(&key(i), b"x");
                    }
                    while t.rehash_step(100) {}
                }
                let (mut seen, mut resized) = (HashSet::new(), false);
                let (mut cursor, mut rounds, mut next) = (0, 0, 1000);
                loop {
                    cursor = t.scan(cursor, |k, _| {
                        seen.insert(k.to_vec());
                    });
                    // Deletes/inserts only keys outside the first 1000.
                    for _ in 0..if shrink { 20 } else { 1 } {
                        if shrink && next < 20_000 {
                            t.remove(&key(next));
                            t.shrink_if_needed();
                        } else if !shrink {
                            t.insert(&key(next + 100_000), b"v");
                        }
                        next += 1;
                    }
                    resized |= t.is_rehashing();
                    rounds += 1;
                    if cursor == 0 || rounds > 100_000 {
                        break;
                    }
                }
                assert_eq!(cursor, 0);
                assert!(resized, "the table never resized during the scan");
                for i in 0..1000 {
                    assert!(seen.contains(&key(i)), "missed {i} (shrink {shrink})");
                }
            }
        }

        #[test]
        fn random_covers_everything() {
            let mut t = HTable::new();
            for i in 0..50 {
                t.insert(&key(i), &key(i));
            }
            let mut x = 88172645463325252u64;
            let mut rnd = move || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            let mut seen = HashSet::new();
            for _ in 0..5000 {
                let (k, v) = t.random(&mut rnd).unwrap();
                assert_eq!(k, v);
                seen.insert(k.to_vec());
            }
            assert_eq!(seen.len(), 50);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let x = self.0;
            (x ^ (x >> 33)).wrapping_mul(0xff51afd7ed558ccd) ^ (x >> 29)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(std::mem::size_of::<Hash>(), 16);
    }

    #[test]
    fn codec_roundtrips_and_is_canonical() {
        let cases: Vec<Vec<u8>> = [
            "",
            "0",
            "47",
            "48",
            "-1",
            "-0",
            "01",
            "+1",
            "32767",
            "32768",
            "-32768",
            "-32769",
            "8388607",
            "8388608",
            "-8388608",
            "-8388609",
            "2147483647",
            "2147483648",
            "-2147483648",
            "-2147483649",
            "9223372036854775807",
            "-9223372036854775808",
            "9223372036854775808",
            "1.5",
            " 1",
            "abc",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .chain([vec![b'x'; 191], vec![b'y'; 192], vec![0u8; 70000]])
        .collect();
        for c in &cases {
            let h = pack::Head::of(c);
            let mut buf = vec![0xAA];
            h.write(&mut buf, c);
            assert_eq!(pack::entry_len(&buf, 1), buf.len() - 1);
            assert_eq!(h.entry_len(c), buf.len() - 1);
            assert!(h.matches(&buf, 1, c));
            let e = pack::decode(&buf, 1);
            assert_eq!(e.to_vec(), *c);
            assert_eq!(e.len(), c.len());
            assert_eq!(matches!(e, Elem::Int(_)), parse_i64(c).is_some());
            // Never longer than a string entry would be.
            assert!(buf.len() - 1 <= c.len() + if c.len() <= 191 { 1 } else { 5 });
            for o in &cases {
                if o != c {
                    assert!(!pack::Head::of(o).matches(&buf, 1, o));
                }
            }
        }
    }

    #[test]
    fn compact_keeps_insertion_order_and_updates_in_place() {
        let mut h = Hash::new();
        assert!(h.set(b"a", b"1", 512, 64));
        assert!(h.set(b"b", b"hello", 512, 64));
        assert!(h.set(b"c", b"-70000", 512, 64));
        assert!(!h.set(b"a", b"a much longer value now", 512, 64));
        assert!(!h.set(b"b", b"", 512, 64));
        let got: Vec<(Vec<u8>, Vec<u8>)> =
            h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
        assert_eq!(
            got,
            vec![
                (b"a".to_vec(), b"a much longer value now".to_vec()),
                (b"b".to_vec(), b"".to_vec()),
                (b"c".to_vec(), b"-70000".to_vec())
            ]
        );
        assert!(h.remove(b"b"));
        assert!(!h.remove(b"b"));
        assert!(h.set(b"b", b"2", 512, 64));
        let order: Vec<Vec<u8>> = h.iter().map(|(f, _)| f.to_vec()).collect();
        assert_eq!(order, vec![b"a".to_vec(), b"c".to_vec(), b"b".to_vec()]);
        assert_eq!(h.encoding(), "listpack");
        assert_eq!(h.get(b"c"), Some(Elem::Int(-70000)));
    }

    #[test]
    fn converts_at_thresholds_and_never_back() {
        let mut h = Hash::new();
        for i in 0..4 {
            h.set(format!("f{i}").as_bytes(), b"v", 4, 8);
        }
        assert_eq!(h.encoding(), "listpack");
        // An update keeps the form; a fifth pair converts.
        h.set(b"f0", b"w", 4, 8);
        assert_eq!(h.encoding(), "listpack");
        h.set(b"f4", b"v", 4, 8);
        assert_eq!(h.encoding(), "hashtable");
        for i in 0..5 {
            assert!(h.remove(format!("f{i}").as_bytes()));
        }
        h.set(b"x", b"y", 4, 8);
        assert_eq!(h.encoding(), "hashtable");

        // Lengths: exactly max_value stays compact, one more converts.
        let mut h = Hash::new();
        h.set(&[b'k'; 8], &[b'v'; 8], 4, 8);
        assert_eq!(h.encoding(), "listpack");
        h.set(b"k", &[b'v'; 9], 4, 8);
        assert_eq!(h.encoding(), "hashtable");
        let mut h = Hash::new();
        h.set(&[b'k'; 9], b"v", 4, 8);
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.get(&[b'k'; 9]), Some(Elem::Str(b"v")));

        // A lowered entry limit converts on the next write, even an update.
        let mut h = Hash::new();
        for i in 0..5 {
            h.set(format!("f{i}").as_bytes(), b"v", 512, 64);
        }
        h.set(b"f0", b"v2", 3, 64);
        assert_eq!(h.encoding(), "hashtable");
        assert_eq!(h.len(), 5);
    }

    /// Random operations against a HashMap model, through both forms and
    /// the conversion, with small thresholds so conversions are frequent.
    #[test]
    fn random_ops_match_model() {
        for seed in 0..40u64 {
            let mut rng = Rng(seed);
            let max_entries = rng.below(12) as usize;
            let max_value = 1 + rng.below(30) as usize;
            let mut h = Hash::new();
            let mut model: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
            let mut order: Vec<Vec<u8>> = Vec::new();
            let elem = |rng: &mut Rng| -> Vec<u8> {
                match rng.below(6) {
                    0 => (rng.below(100) as i64 - 50).to_string().into_bytes(),
                    1 => (rng.next() as i64).to_string().into_bytes(),
                    2 => vec![b'z'; rng.below(40) as usize],
                    3 => b"007".to_vec(),
                    _ => format!("f{}", rng.below(20)).into_bytes(),
                }
            };
            for _ in 0..400 {
                let f = elem(&mut rng);
                match rng.below(10) {
                    0..=5 => {
                        let v = elem(&mut rng);
                        let was_compact = h.is_compact();
                        let added = h.set(&f, &v, max_entries, max_value);
                        assert_eq!(added, model.insert(f.clone(), v.clone()).is_none());
                        if added {
                            order.push(f.clone());
                        }
                        let must_convert =
                            f.len() > max_value || v.len() > max_value || model.len() > max_entries;
                        if was_compact {
                            assert_eq!(h.is_compact(), !must_convert, "seed {seed}");
                        } else {
                            assert!(!h.is_compact());
                        }
                    }
                    6..=8 => {
                        assert_eq!(h.remove(&f), model.remove(&f).is_some());
                        order.retain(|o| *o != f);
                    }
                    _ => {
                        assert_eq!(h.get(&f).map(|e| e.to_vec()), model.get(&f).cloned());
                        assert_eq!(h.contains(&f), model.contains_key(&f));
                    }
                }
                assert_eq!(h.len(), model.len());
                if h.is_compact() {
                    let keys: Vec<Vec<u8>> = h.iter().map(|(f, _)| f.to_vec()).collect();
                    assert_eq!(keys, order, "seed {seed}");
                }
            }
            let mut all: Vec<(Vec<u8>, Vec<u8>)> =
                h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
            all.sort();
            let mut want: Vec<(Vec<u8>, Vec<u8>)> = model.into_iter().collect();
            want.sort();
            assert_eq!(all, want);
            assert_eq!(h.clone(), h);
        }
    }

    #[test]
    fn table_scan_visits_everything() {
        let mut h = Hash::new();
        for i in 0..1000 {
            h.set(format!("field:{i}").as_bytes(), b"v", 16, 64);
        }
        assert_eq!(h.encoding(), "hashtable");
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        loop {
            cursor = h.scan(cursor, |f, _| {
                seen.insert(f.to_vec());
            });
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 1000);
        let s = h.sampler();
        let mut x = 1u64;
        let mut rnd = move || {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
            x >> 11
        };
        for _ in 0..100 {
            let (f, v) = s.pick(&mut rnd);
            assert_eq!(h.get(&f.to_vec()), Some(v));
        }
    }

    #[test]
    fn clone_and_eq_ignore_form() {
        let mut a = Hash::new();
        let mut b = Hash::new();
        for i in 0..10 {
            a.set(
                format!("{i}").as_bytes(),
                format!("v{i}").as_bytes(),
                512,
                64,
            );
            b.set(format!("{i}").as_bytes(), format!("v{i}").as_bytes(), 4, 64);
        }
        assert_eq!(a.encoding(), "listpack");
        assert_eq!(b.encoding(), "hashtable");
        assert_eq!(a, b);
        assert_eq!(b.clone().encoding(), "hashtable");
        b.set(b"0", b"other", 4, 64);
        assert_ne!(a, b);
    }
}
