//! RDB bytes to values: whole snapshot files ([`load`]), single value
//! bodies ([`read_value`]) and DUMP payloads ([`restore_payload`]).
//!
//! Every RDB version Redis 7.0 loads (1..=10) is accepted, with every value
//! type it accepts except streams and module values. The input is treated
//! as hostile: every length is checked against the bytes actually present
//! before anything is allocated, and every compact encoding embedded in a
//! string (listpack, ziplist, intset, zipmap) is validated entry by entry,
//! as Redis's deep sanitization (`sanitize-dump-payload yes`) does. A
//! problem is reported as an [`RdbError`] naming what is wrong and the file
//! offset where; nothing here panics.
//!
//! Values are built in the encoding Redis 7.0 would give them after loading
//! under the thresholds of [`EncCfg`]: ziplists and zipmaps become
//! listpacks, compact encodings over the entry limits become hashtables or
//! skiplists, plain collections small enough become compact.

use crate::shard::keyspace::EncCfg;
use crate::types::hash::Hash;
use crate::types::list::List;
use crate::types::set::Set;
use crate::types::zset::{Limits, ZSet};
use crate::types::{Str, Value};

use super::{
    crc64, RdbError, Reader, Result, OP_AUX, OP_EOF, OP_EXPIRETIME, OP_EXPIRETIME_MS, OP_FREQ,
    OP_FUNCTION, OP_FUNCTION2, OP_IDLE, OP_MODULE_AUX, OP_RESIZEDB, OP_SELECTDB,
    QUICKLIST_NODE_PACKED, QUICKLIST_NODE_PLAIN, RDB_VERSION, T_HASH, T_HASH_LISTPACK,
    T_HASH_ZIPLIST, T_HASH_ZIPMAP, T_LIST, T_LIST_QUICKLIST, T_LIST_QUICKLIST_2, T_LIST_ZIPLIST,
    T_MODULE, T_MODULE_2, T_SET, T_SET_INTSET, T_STREAM_LISTPACKS, T_STREAM_LISTPACKS_2, T_STRING,
    T_ZSET, T_ZSET_2, T_ZSET_LISTPACK, T_ZSET_ZIPLIST,
};

// ----- elements of the compact encodings ------------------------------------

/// One element of a listpack or ziplist: a byte string or an integer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Item<'a> {
    Str(&'a [u8]),
    Int(i64),
}

impl Item<'_> {
    /// Calls `f` with the element's bytes (integers formatted in decimal).
    fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match *self {
            Item::Str(b) => f(b),
            Item::Int(v) => f(itoa::Buffer::new().format(v).as_bytes()),
        }
    }

    fn to_vec(self) -> Vec<u8> {
        self.with_bytes(|b| b.to_vec())
    }
}

/// Errors inside a compact blob: reported at the file offset of the string
/// object holding it (its bytes may have been LZF-compressed), with the
/// offset inside the blob in the message.
#[derive(Clone, Copy)]
struct Blob {
    pos: usize,
    kind: &'static str,
    len: usize,
}

impl Blob {
    fn err<T>(&self, off: usize, what: impl std::fmt::Display) -> Result<T> {
        Err(RdbError {
            pos: self.pos,
            what: format!(
                "{} integrity check failed: {} (at byte {} of {})",
                self.kind, what, off, self.len
            ),
        })
    }
}

#[inline]
fn le_u16(b: &[u8], p: usize) -> u16 {
    u16::from_le_bytes([b[p], b[p + 1]])
}

#[inline]
fn le_u32(b: &[u8], p: usize) -> u32 {
    u32::from_le_bytes([b[p], b[p + 1], b[p + 2], b[p + 3]])
}

#[inline]
fn le_i64(b: &[u8], p: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[p..p + 8]);
    i64::from_le_bytes(a)
}

/// A 24-bit little-endian two's-complement integer.
#[inline]
fn le_i24(b: &[u8], p: usize) -> i64 {
    (((u32::from(b[p]) | u32::from(b[p + 1]) << 8 | u32::from(b[p + 2]) << 16) << 8) as i32 >> 8)
        as i64
}

// ----- listpack ------------------------------------------------------------

const LP_HEADER: usize = 6;
const LP_EOF: u8 = 0xFF;

/// The back-length field Redis writes after a listpack entry whose
/// encoding + data take `l` bytes (`lpEncodeBacklen`): its bytes in file
/// order and how many there are.
fn lp_backlen(l: u64) -> ([u8; 5], usize) {
    let b = |shift: u32, more: bool| ((l >> shift) & 127) as u8 | if more { 128 } else { 0 };
    if l <= 127 {
        ([l as u8, 0, 0, 0, 0], 1)
    } else if l < 16383 {
        ([(l >> 7) as u8, b(0, true), 0, 0, 0], 2)
    } else if l < 2_097_151 {
        ([(l >> 14) as u8, b(7, true), b(0, true), 0, 0], 3)
    } else if l < 268_435_455 {
        ([(l >> 21) as u8, b(14, true), b(7, true), b(0, true), 0], 4)
    } else {
        (
            [
                (l >> 28) as u8,
                b(21, true),
                b(14, true),
                b(7, true),
                b(0, true),
            ],
            5,
        )
    }
}

/// A listpack element (for the stream reader).
pub(super) type LpItem<'a> = Item<'a>;

/// [`parse_listpack`] for a stream node read at file offset `pos`.
pub(super) fn parse_listpack_items(b: &[u8], pos: usize) -> Result<Vec<LpItem<'_>>> {
    parse_listpack(
        b,
        Blob {
            pos,
            kind: "stream listpack",
            len: b.len(),
        },
    )
}

/// Validates a listpack (header size, entry encodings, back-lengths,
/// element count, terminator) and returns its elements.
fn parse_listpack<'a>(b: &'a [u8], blob: Blob) -> Result<Vec<Item<'a>>> {
    let len = b.len();
    if len < LP_HEADER + 1 {
        return blob.err(0, "too short for a header and terminator");
    }
    let total = le_u32(b, 0) as usize;
    if total != len {
        return blob.err(0, format!("header says {total} bytes, the blob has {len}"));
    }
    let declared = le_u16(b, 4);
    if b[len - 1] != LP_EOF {
        return blob.err(len - 1, "terminator missing");
    }
    // Entries take at least two bytes each.
    let mut items = Vec::with_capacity((declared as usize).min((len - LP_HEADER) / 2));
    let end = len - 1; // entries must end before the terminator
    let mut p = LP_HEADER;
    loop {
        if p > end {
            return blob.err(p, "entry runs past the terminator");
        }
        let c = b[p];
        if c == LP_EOF {
            if p != end {
                return blob.err(p, "terminator before the end of the blob");
            }
            break;
        }
        let need = |n: usize| -> Result<()> {
            if p + n > end {
                blob.err(p, "entry header runs past the end")
            } else {
                Ok(())
            }
        };
        // (header bytes, data bytes, element for integers)
        let (hdr, data, int): (usize, u64, Option<i64>) = if c & 0x80 == 0 {
            (1, 0, Some((c & 0x7f) as i64))
        } else if c & 0xC0 == 0x80 {
            (1, (c & 0x3f) as u64, None)
        } else if c & 0xE0 == 0xC0 {
            need(2)?;
            let uv = ((c as u64 & 0x1f) << 8) | b[p + 1] as u64;
            let v = if uv >= 1 << 12 {
                uv as i64 - (1 << 13)
            } else {
                uv as i64
            };
            (2, 0, Some(v))
        } else if c & 0xF0 == 0xE0 {
            need(2)?;
            (2, ((c as u64 & 0x0f) << 8) | b[p + 1] as u64, None)
        } else {
            match c {
                0xF0 => {
                    need(5)?;
                    (5, le_u32(b, p + 1) as u64, None)
                }
                0xF1 => {
                    need(3)?;
                    (3, 0, Some(i16::from_le_bytes([b[p + 1], b[p + 2]]) as i64))
                }
                0xF2 => {
                    need(4)?;
                    (4, 0, Some(le_i24(b, p + 1)))
                }
                0xF3 => {
                    need(5)?;
                    (5, 0, Some(le_u32(b, p + 1) as i32 as i64))
                }
                0xF4 => {
                    need(9)?;
                    (9, 0, Some(le_i64(b, p + 1)))
                }
                _ => return blob.err(p, format!("invalid entry encoding 0x{c:02x}")),
            }
        };
        let entry = hdr as u64 + data;
        let (bl, bl_len) = lp_backlen(entry);
        let next = p as u64 + entry + bl_len as u64;
        if next > end as u64 {
            return blob.err(p, format!("entry of {entry} bytes runs past the end"));
        }
        let (data_at, next) = (p + hdr, next as usize);
        let bl_at = next - bl_len;
        if b[bl_at..next] != bl[..bl_len] {
            return blob.err(
                bl_at,
                format!("back-length does not match entry size {entry}"),
            );
        }
        items.push(match int {
            Some(v) => Item::Int(v),
            None => Item::Str(&b[data_at..bl_at]),
        });
        p = next;
    }
    if declared != u16::MAX && declared as usize != items.len() {
        return blob.err(
            4,
            format!("header counts {declared} entries, found {}", items.len()),
        );
    }
    Ok(items)
}

// ----- ziplist -------------------------------------------------------------

const ZL_HEADER: usize = 10;
const ZL_END: u8 = 0xFF;

/// Validates a ziplist (zlbytes, zltail, entry count, every prevlen and
/// encoding, end marker) and returns its elements.
fn parse_ziplist<'a>(b: &'a [u8], blob: Blob) -> Result<Vec<Item<'a>>> {
    let len = b.len();
    if len < ZL_HEADER + 1 {
        return blob.err(0, "too short for a header and end marker");
    }
    let zlbytes = le_u32(b, 0) as usize;
    if zlbytes != len {
        return blob.err(0, format!("zlbytes says {zlbytes}, the blob has {len}"));
    }
    let zltail = le_u32(b, 4) as usize;
    let declared = le_u16(b, 8);
    let end = len - 1;
    if b[end] != ZL_END {
        return blob.err(end, "end marker missing");
    }
    if zltail > end {
        return blob.err(4, format!("zltail {zltail} points past the end"));
    }
    let mut items = Vec::with_capacity((declared as usize).min((len - ZL_HEADER) / 2));
    let mut p = ZL_HEADER;
    let mut prev_len: u64 = 0;
    let mut last = None;
    loop {
        if p > end {
            return blob.err(p, "entry runs past the end marker");
        }
        if b[p] == ZL_END {
            if p != end {
                return blob.err(p, "end marker before the end of the blob");
            }
            break;
        }
        let need = |at: usize, n: usize| -> Result<()> {
            if at + n > end {
                blob.err(p, "entry header runs past the end")
            } else {
                Ok(())
            }
        };
        let (plen_size, plen) = if b[p] < 254 {
            (1, b[p] as u64)
        } else {
            need(p, 5)?;
            (5, le_u32(b, p + 1) as u64)
        };
        if plen != prev_len {
            return blob.err(
                p,
                format!("prevlen {plen} does not match the previous entry's {prev_len} bytes"),
            );
        }
        let q = p + plen_size;
        need(q, 1)?;
        let e = b[q];
        let (enc_size, data, int): (usize, u64, Option<i64>) = match e >> 6 {
            0 => (1, (e & 0x3f) as u64, None),
            1 => {
                need(q, 2)?;
                (2, ((e as u64 & 0x3f) << 8) | b[q + 1] as u64, None)
            }
            2 => {
                need(q, 5)?;
                let n = u32::from_be_bytes([b[q + 1], b[q + 2], b[q + 3], b[q + 4]]);
                (5, n as u64, None)
            }
            _ => {
                let (size, v) = match e {
                    0xC0 => {
                        need(q, 3)?;
                        (2, i16::from_le_bytes([b[q + 1], b[q + 2]]) as i64)
                    }
                    0xD0 => {
                        need(q, 5)?;
                        (4, le_u32(b, q + 1) as i32 as i64)
                    }
                    0xE0 => {
                        need(q, 9)?;
                        (8, le_i64(b, q + 1))
                    }
                    0xF0 => {
                        need(q, 4)?;
                        (3, le_i24(b, q + 1))
                    }
                    0xFE => {
                        need(q, 2)?;
                        (1, b[q + 1] as i8 as i64)
                    }
                    0xF1..=0xFD => (0, (e & 0x0f) as i64 - 1),
                    _ => return blob.err(q, format!("invalid entry encoding 0x{e:02x}")),
                };
                (1 + size, 0, Some(v))
            }
        };
        let header = (plen_size + enc_size) as u64;
        let total = header + data;
        let next = p as u64 + total;
        if next > end as u64 {
            return blob.err(p, format!("entry of {total} bytes runs past the end"));
        }
        let next = next as usize;
        items.push(match int {
            Some(v) => Item::Int(v),
            None => Item::Str(&b[q + enc_size..next]),
        });
        last = Some(p);
        prev_len = total;
        p = next;
    }
    if declared != u16::MAX && declared as usize != items.len() {
        return blob.err(
            8,
            format!("header counts {declared} entries, found {}", items.len()),
        );
    }
    if let Some(l) = last {
        if zltail != l {
            return blob.err(
                4,
                format!("zltail {zltail} is not the last entry's offset {l}"),
            );
        }
    }
    Ok(items)
}

// ----- intset --------------------------------------------------------------

/// Validates an intset (encoding, length, strictly ascending members) and
/// returns its members.
fn parse_intset(b: &[u8], blob: Blob) -> Result<Vec<i64>> {
    if b.len() < 8 {
        return blob.err(0, "too short for a header");
    }
    let width = le_u32(b, 0) as usize;
    if !matches!(width, 2 | 4 | 8) {
        return blob.err(0, format!("invalid encoding {width}"));
    }
    let count = le_u32(b, 4) as u64;
    if count * width as u64 != (b.len() - 8) as u64 {
        return blob.err(
            4,
            format!(
                "{count} members of {width} bytes do not fill {} bytes",
                b.len() - 8
            ),
        );
    }
    let mut out = Vec::with_capacity(count as usize);
    for (i, c) in b[8..].chunks_exact(width).enumerate() {
        let v = match width {
            2 => i16::from_le_bytes([c[0], c[1]]) as i64,
            4 => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64,
            _ => le_i64(c, 0),
        };
        if let Some(&prev) = out.last() {
            if v <= prev {
                return blob.err(8 + i * width, "members not strictly ascending");
            }
        }
        out.push(v);
    }
    Ok(out)
}

// ----- zipmap --------------------------------------------------------------

/// Validates a zipmap (Redis < 2.6 small hashes) and returns its pairs.
fn parse_zipmap(b: &[u8], blob: Blob) -> Result<Vec<(&[u8], &[u8])>> {
    let len = b.len();
    if len < 2 {
        return blob.err(0, "too short");
    }
    let declared = b[0];
    let mut pairs = Vec::new();
    let mut p = 1;
    // A length: one byte below 254, else 254/255 and 4 bytes LE.
    let read_len = |p: usize| -> Result<(usize, usize)> {
        if b[p] < 254 {
            Ok((b[p] as usize, 1))
        } else if p + 5 <= len {
            Ok((le_u32(b, p + 1) as usize, 5))
        } else {
            blob.err(p, "length runs past the end")
        }
    };
    loop {
        if p >= len {
            return blob.err(p, "end marker missing");
        }
        if b[p] == 0xFF {
            if p != len - 1 {
                return blob.err(p, "end marker before the end of the blob");
            }
            break;
        }
        let (klen, s) = read_len(p)?;
        p += s;
        if klen > len - p {
            return blob.err(p, format!("key of {klen} bytes runs past the end"));
        }
        let key = &b[p..p + klen];
        p += klen;
        if p >= len || b[p] == 0xFF {
            return blob.err(p, "value missing");
        }
        let (vlen, s) = read_len(p)?;
        p += s;
        if p >= len {
            return blob.err(p, "free byte missing");
        }
        let free = b[p] as usize;
        p += 1;
        if vlen as u64 + free as u64 > (len - p) as u64 {
            return blob.err(p, format!("value of {vlen} bytes runs past the end"));
        }
        let val = &b[p..p + vlen];
        p += vlen + free;
        pairs.push((key, val));
    }
    if declared != 254 && declared as usize != pairs.len() {
        return blob.err(
            0,
            format!("header counts {declared} pairs, found {}", pairs.len()),
        );
    }
    Ok(pairs)
}

// ----- building values -----------------------------------------------------

/// An empty hash in the form that will hold `n` pairs: the hashtable right
/// away when `n` is over the entry limit (no quadratic listpack phase).
fn hash_for(n: usize, max_entries: usize) -> Hash {
    let mut h = Hash::new();
    if n > max_entries {
        h.convert();
    }
    h
}

/// Adds pairs to a hash under the given limits; a repeated field is an
/// error (Redis: "Duplicate hash fields detected").
fn hash_from_items(
    items: &[Item],
    max_entries: usize,
    max_value: usize,
    pos: usize,
) -> Result<Hash> {
    if !items.len().is_multiple_of(2) {
        return Err(RdbError {
            pos,
            what: format!("hash with an odd number of elements ({})", items.len()),
        });
    }
    let mut h = hash_for(items.len() / 2, max_entries);
    for pair in items.chunks_exact(2) {
        let added =
            pair[0].with_bytes(|f| pair[1].with_bytes(|v| h.set(f, v, max_entries, max_value)));
        if !added {
            return Err(RdbError {
                pos,
                what: format!("duplicate hash field \"{}\"", pair[0].with_bytes(show)),
            });
        }
    }
    Ok(h)
}

/// Builds a sorted set from unordered (member, score) pairs: NaN scores
/// and repeated members are errors.
fn zset_from_pairs(mut items: Vec<(Box<[u8]>, f64)>, lim: Limits, pos: usize) -> Result<ZSet> {
    {
        let mut seen = hashbrown::HashSet::with_capacity(items.len());
        for (m, s) in &items {
            if s.is_nan() {
                return Err(RdbError {
                    pos,
                    what: format!("zset member \"{}\" with a NaN score", show(m)),
                });
            }
            if !seen.insert(&m[..]) {
                return Err(RdbError {
                    pos,
                    what: format!("duplicate zset member \"{}\"", show(m)),
                });
            }
        }
    }
    // Redis saves skiplists from the tail, so the common input is one
    // descending run, which the adaptive sort reverses in linear time.
    items.sort_by(|(m1, s1), (m2, s2)| {
        s1.partial_cmp(s2)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| m1.cmp(m2))
    });
    Ok(ZSet::from_sorted(items, lim))
}

/// A score stored as a listpack/ziplist element.
fn item_score(it: &Item, pos: usize) -> Result<f64> {
    let v = match *it {
        Item::Int(v) => v as f64,
        Item::Str(b) => std::str::from_utf8(b)
            .ok()
            .filter(|s| !s.is_empty() && s.len() < 128)
            .and_then(|s| s.parse::<f64>().ok())
            .ok_or_else(|| RdbError {
                pos,
                what: format!("invalid zset score \"{}\"", show(b)),
            })?,
    };
    Ok(v)
}

fn zset_from_items(items: &[Item], enc: &EncCfg, pos: usize) -> Result<ZSet> {
    if !items.len().is_multiple_of(2) {
        return Err(RdbError {
            pos,
            what: format!("zset with an odd number of elements ({})", items.len()),
        });
    }
    let mut pairs = Vec::with_capacity(items.len() / 2);
    for pair in items.chunks_exact(2) {
        let s = item_score(&pair[1], pos)?;
        pairs.push((pair[0].to_vec().into_boxed_slice(), s));
    }
    // Redis converts a loaded listpack only on its entry count.
    let lim = Limits {
        max_entries: enc.zset_max_listpack_entries,
        max_value: usize::MAX,
    };
    zset_from_pairs(pairs, lim, pos)
}

/// A key or member for an error message (lossy, cut at 64 bytes).
fn show(b: &[u8]) -> String {
    let cut = &b[..b.len().min(64)];
    let mut s = String::from_utf8_lossy(cut).into_owned();
    if b.len() > 64 {
        s.push_str("...");
    }
    s
}

fn is_value_type(t: u8) -> bool {
    matches!(t, 0..=7 | 9..=19 | 21)
}

/// Reads one value body of RDB type `t` and builds it in the encoding
/// Redis 7.0 would use for it under `enc`'s thresholds (e.g. a listpack
/// hash over hash-max-listpack-entries becomes a hashtable; a T_SET of
/// integers within set-max-intset-entries becomes an intset; ziplists
/// become listpacks). Returns Ok(None) for an empty collection (Redis 7.0
/// skips empty keys).
pub fn read_value(r: &mut Reader, t: u8, enc: &EncCfg) -> Result<Option<Value>> {
    let start = r.pos;
    let err = |what: String| -> Result<Option<Value>> { Err(RdbError { pos: start, what }) };
    let value = match t {
        T_STRING => Value::Str(Str::from_vec(r.string()?)),
        T_LIST => {
            let n = r.count(1)?;
            let mut l = List::new(enc.list_max_listpack_size);
            for _ in 0..n {
                l.push_back(&r.string()?);
            }
            if l.is_empty() {
                return Ok(None);
            }
            Value::List(Box::new(l))
        }
        T_SET => {
            let n = r.count(1)?;
            let max = enc.set_max_intset_entries;
            // Over the intset limit: a hashtable from the start.
            let mut s = if n > max {
                Set::for_member(b"-")
            } else {
                Set::new()
            };
            for _ in 0..n {
                let at = r.pos;
                let m = r.string()?;
                if !s.add(&m, max) {
                    return Err(RdbError {
                        pos: at,
                        what: format!("duplicate set member \"{}\"", show(&m)),
                    });
                }
            }
            if s.is_empty() {
                return Ok(None);
            }
            Value::Set(Box::new(s))
        }
        T_ZSET | T_ZSET_2 => {
            let n = r.count(if t == T_ZSET_2 { 9 } else { 2 })?;
            if n == 0 {
                return Ok(None);
            }
            let mut items = Vec::with_capacity(n);
            for _ in 0..n {
                let m = r.string()?;
                let s = if t == T_ZSET_2 {
                    r.binary_double()?
                } else {
                    r.string_double()?
                };
                items.push((m.into_boxed_slice(), s));
            }
            let lim = Limits {
                max_entries: enc.zset_max_listpack_entries,
                max_value: enc.zset_max_listpack_value,
            };
            Value::ZSet(Box::new(zset_from_pairs(items, lim, start)?))
        }
        T_HASH => {
            let n = r.count(2)?;
            if n == 0 {
                return Ok(None);
            }
            let (me, mv) = (enc.hash_max_listpack_entries, enc.hash_max_listpack_value);
            let mut h = hash_for(n, me);
            for _ in 0..n {
                let at = r.pos;
                let f = r.string()?;
                let v = r.string()?;
                if !h.set(&f, &v, me, mv) {
                    return Err(RdbError {
                        pos: at,
                        what: format!("duplicate hash field \"{}\"", show(&f)),
                    });
                }
            }
            Value::Hash(Box::new(h))
        }
        T_LIST_QUICKLIST | T_LIST_QUICKLIST_2 => {
            let n = r.count(if t == T_LIST_QUICKLIST_2 { 2 } else { 1 })?;
            let mut l = List::new(enc.list_max_listpack_size);
            for _ in 0..n {
                let mut container = QUICKLIST_NODE_PACKED;
                if t == T_LIST_QUICKLIST_2 {
                    let at = r.pos;
                    container = r.len()?;
                    if container != QUICKLIST_NODE_PACKED && container != QUICKLIST_NODE_PLAIN {
                        return Err(RdbError {
                            pos: at,
                            what: format!("invalid quicklist node container {container}"),
                        });
                    }
                }
                let at = r.pos;
                let data = r.string()?;
                if data.is_empty() {
                    return Err(RdbError {
                        pos: at,
                        what: "empty quicklist node".into(),
                    });
                }
                if container == QUICKLIST_NODE_PLAIN {
                    l.push_back(&data);
                    continue;
                }
                let items = if t == T_LIST_QUICKLIST_2 {
                    let blob = Blob {
                        pos: at,
                        kind: "quicklist listpack",
                        len: data.len(),
                    };
                    parse_listpack(&data, blob)?
                } else {
                    let blob = Blob {
                        pos: at,
                        kind: "quicklist ziplist",
                        len: data.len(),
                    };
                    parse_ziplist(&data, blob)?
                };
                for it in &items {
                    it.with_bytes(|b| l.push_back(b));
                }
            }
            if l.is_empty() {
                return Ok(None);
            }
            Value::List(Box::new(l))
        }
        T_HASH_ZIPMAP | T_LIST_ZIPLIST | T_SET_INTSET | T_ZSET_ZIPLIST | T_HASH_ZIPLIST
        | T_HASH_LISTPACK | T_ZSET_LISTPACK => {
            let data = r.string()?;
            let kind = match t {
                T_HASH_ZIPMAP => "hash zipmap",
                T_LIST_ZIPLIST => "list ziplist",
                T_SET_INTSET => "intset",
                T_ZSET_ZIPLIST => "zset ziplist",
                T_HASH_ZIPLIST => "hash ziplist",
                T_HASH_LISTPACK => "hash listpack",
                _ => "zset listpack",
            };
            let blob = Blob {
                pos: start,
                kind,
                len: data.len(),
            };
            match t {
                T_HASH_ZIPMAP => {
                    let pairs = parse_zipmap(&data, blob)?;
                    if pairs.is_empty() {
                        return Ok(None);
                    }
                    // Converted like Redis: to a hashtable when over either
                    // limit.
                    let maxlen = pairs
                        .iter()
                        .map(|(f, v)| f.len().max(v.len()))
                        .max()
                        .unwrap_or(0);
                    let (me, mv) = (enc.hash_max_listpack_entries, enc.hash_max_listpack_value);
                    let mut h = hash_for(if maxlen > mv { usize::MAX } else { pairs.len() }, me);
                    for (f, v) in &pairs {
                        if !h.set(f, v, me, usize::MAX) {
                            return err(format!("duplicate hash field \"{}\"", show(f)));
                        }
                    }
                    Value::Hash(Box::new(h))
                }
                T_LIST_ZIPLIST => {
                    let items = parse_ziplist(&data, blob)?;
                    if items.is_empty() {
                        return Ok(None);
                    }
                    let mut l = List::new(enc.list_max_listpack_size);
                    for it in &items {
                        it.with_bytes(|b| l.push_back(b));
                    }
                    Value::List(Box::new(l))
                }
                T_SET_INTSET => {
                    let members = parse_intset(&data, blob)?;
                    if members.is_empty() {
                        return Ok(None);
                    }
                    let max = enc.set_max_intset_entries;
                    let mut s = if members.len() > max {
                        Set::for_member(b"-")
                    } else {
                        Set::new()
                    };
                    for &x in &members {
                        s.add_int(x, max);
                    }
                    Value::Set(Box::new(s))
                }
                T_ZSET_ZIPLIST => {
                    let items = parse_ziplist(&data, blob)?;
                    if items.is_empty() {
                        return Ok(None);
                    }
                    Value::ZSet(Box::new(zset_from_items(&items, enc, start)?))
                }
                T_ZSET_LISTPACK => {
                    let items = parse_listpack(&data, blob)?;
                    if items.is_empty() {
                        return Ok(None);
                    }
                    Value::ZSet(Box::new(zset_from_items(&items, enc, start)?))
                }
                _ => {
                    let items = if t == T_HASH_ZIPLIST {
                        parse_ziplist(&data, blob)?
                    } else {
                        parse_listpack(&data, blob)?
                    };
                    if items.is_empty() {
                        return Ok(None);
                    }
                    // Redis converts a loaded listpack only on its entry
                    // count, whatever its element sizes.
                    let h =
                        hash_from_items(&items, enc.hash_max_listpack_entries, usize::MAX, start)?;
                    Value::Hash(Box::new(h))
                }
            }
        }
        T_STREAM_LISTPACKS | T_STREAM_LISTPACKS_2 | super::stream::T_STREAM_LISTPACKS_3 => {
            return super::stream::read_stream(r, t, enc)
        }
        T_MODULE | T_MODULE_2 => return err(format!("module values are not supported (type {t})")),
        _ => return err(format!("unknown value type {t}")),
    };
    Ok(Some(value))
}

// ----- whole files -----------------------------------------------------------

/// One key delivered by [`load`].
#[derive(Debug)]
pub struct Entry {
    pub db: usize,
    pub key: Vec<u8>,
    pub value: Value,
    /// Absolute expiry, Unix ms (an expiry before 1970 reads as 0).
    pub expire_ms: Option<u64>,
    /// LRU idle time in seconds (OP_IDLE).
    pub idle_secs: Option<u64>,
    /// LFU counter (OP_FREQ).
    pub freq: Option<u8>,
}

/// What [`load`] found besides the keys.
#[derive(Default, Debug)]
pub struct LoadInfo {
    pub version: u16,
    /// AUX fields in file order (redis-ver, ctime, repl-id, ...).
    pub aux: Vec<(Vec<u8>, Vec<u8>)>,
    /// Keys delivered to the sink.
    pub keys: u64,
    /// Empty collections skipped, as Redis 7.0 skips them.
    pub empty_keys_skipped: u64,
    /// Function libraries in the pre-GA format (FUNCTION opcode), skipped.
    pub functions_skipped: u64,
    /// The code of each function library (FUNCTION2 opcode), in file
    /// order.
    pub functions: Vec<Vec<u8>>,
}

fn err_at<T>(pos: usize, what: impl Into<String>) -> Result<T> {
    Err(RdbError {
        pos,
        what: what.into(),
    })
}

/// Parses a whole RDB file held in memory. Verifies the "REDIS" magic and
/// a version 1..=10, and (for version >= 5 when the stored checksum is
/// non-zero) the CRC64 trailer BEFORE delivering any entry. Then calls
/// `sink` for each key in file order; an Err from the sink aborts with
/// that message. Any structural problem returns RdbError { pos, what }
/// naming what is wrong and where. Never panics, never allocates based on
/// an unchecked length.
pub fn load(
    buf: &[u8],
    enc: &EncCfg,
    databases: usize,
    sink: impl FnMut(Entry) -> std::result::Result<(), String>,
) -> Result<LoadInfo> {
    if buf.len() < 9 {
        return err_at(0, "file too short for an RDB header");
    }
    if &buf[..5] != b"REDIS" {
        return err_at(0, "wrong signature: not an RDB file");
    }
    let digits = &buf[5..9];
    if !digits.iter().all(u8::is_ascii_digit) {
        return err_at(5, format!("invalid RDB version field \"{}\"", show(digits)));
    }
    let version = digits.iter().fold(0u16, |v, d| v * 10 + (d - b'0') as u16);
    if !(1..=RDB_VERSION).contains(&version) {
        return err_at(
            5,
            format!("unsupported RDB version {version} (this server loads 1..={RDB_VERSION})"),
        );
    }
    // The trailer is checked before anything is parsed or delivered: it is
    // the last 8 bytes of a well-formed file, right after the EOF opcode.
    let body_end = if version >= 5 {
        if buf.len() < 9 + 1 + 8 {
            return err_at(
                buf.len(),
                "Short read loading DB: Unexpected EOF reading RDB file (too short for the EOF marker and checksum)",
            );
        }
        let at = buf.len() - 8;
        let mut stored = [0u8; 8];
        stored.copy_from_slice(&buf[at..]);
        let stored = u64::from_le_bytes(stored);
        if stored != 0 {
            let computed = crc64(0, &buf[..at]);
            if computed != stored {
                // A truncated file also fails here (its last 8 bytes are
                // data, not a checksum). Parse it through, keeping nothing,
                // to tell the two apart: if the records run out before an
                // EOF marker, report the short read, as redis-server does
                // ("Unexpected EOF reading RDB file").
                if let Err(e) = parse_body(buf, buf.len(), version, enc, databases, |_| Ok(())) {
                    // Records cut short, or the EOF marker followed by less
                    // than a whole checksum.
                    let cut_trailer =
                        e.what.starts_with("unexpected data between") && buf.len() - e.pos < 8;
                    let ran_out = e.what.starts_with("unexpected end")
                        || e.what.contains("past the end of the data");
                    if ran_out || cut_trailer {
                        let why = if cut_trailer {
                            format!(
                                "only {} of 8 checksum bytes after the EOF marker",
                                buf.len() - e.pos
                            )
                        } else {
                            e.what
                        };
                        return err_at(
                            e.pos,
                            format!(
                                "Short read loading DB: Unexpected EOF reading RDB file ({why}); the file is truncated (its last 8 bytes are no valid checksum)"
                            ),
                        );
                    }
                }
                return err_at(
                    at,
                    format!("wrong RDB checksum: stored {stored:016x}, computed {computed:016x}"),
                );
            }
        }
        at
    } else {
        buf.len()
    };
    parse_body(buf, body_end, version, enc, databases, sink)
}

/// Parses the records of an RDB file after its 9-byte header, up to
/// `body_end` (where the checksum starts), calling `sink` for each key.
fn parse_body(
    buf: &[u8],
    body_end: usize,
    version: u16,
    enc: &EncCfg,
    databases: usize,
    mut sink: impl FnMut(Entry) -> std::result::Result<(), String>,
) -> Result<LoadInfo> {
    let mut r = Reader::new(&buf[..body_end]);
    r.pos = 9;
    let mut info = LoadInfo {
        version,
        ..LoadInfo::default()
    };
    let mut db = 0usize;
    let (mut expire_ms, mut idle_secs, mut freq) = (None, None, None);
    loop {
        let op_pos = r.pos;
        if r.is_empty() {
            return err_at(op_pos, "unexpected end of file: EOF marker missing");
        }
        let t = r.u8()?;
        match t {
            OP_EXPIRETIME => {
                let s = r.u32_le()? as i32 as i64;
                expire_ms = Some((s * 1000).max(0) as u64);
            }
            OP_EXPIRETIME_MS => {
                expire_ms = Some((r.u64_le()? as i64).max(0) as u64);
            }
            OP_FREQ => freq = Some(r.u8()?),
            OP_IDLE => idle_secs = Some(r.len()?),
            OP_EOF => break,
            OP_SELECTDB => {
                let d = r.len()?;
                if d >= databases as u64 {
                    return err_at(
                        op_pos,
                        format!("database {d} selected but the server has {databases} databases"),
                    );
                }
                db = d as usize;
            }
            OP_RESIZEDB => {
                r.len()?;
                r.len()?;
            }
            OP_AUX => {
                let k = r.string()?;
                let v = r.string()?;
                info.aux.push((k, v));
            }
            OP_MODULE_AUX => return err_at(op_pos, "module data is not supported"),
            OP_FUNCTION2 => {
                let code = r.string()?;
                info.functions.push(code);
            }
            OP_FUNCTION => {
                // The 7.0-rc format: name, engine, optional description,
                // code.
                r.string()?;
                r.string()?;
                if r.len()? != 0 {
                    r.string()?;
                }
                r.string()?;
                info.functions_skipped += 1;
            }
            _ => {
                if !is_value_type(t) {
                    return err_at(op_pos, format!("unknown value type {t}"));
                }
                let key = r.string()?;
                let value = read_value(&mut r, t, enc).map_err(|e| RdbError {
                    pos: e.pos,
                    what: format!("{} (key \"{}\")", e.what, show(&key)),
                })?;
                match value {
                    None => info.empty_keys_skipped += 1,
                    Some(value) => {
                        info.keys += 1;
                        sink(Entry {
                            db,
                            key,
                            value,
                            expire_ms,
                            idle_secs,
                            freq,
                        })
                        .map_err(|what| RdbError { pos: op_pos, what })?;
                    }
                }
                (expire_ms, idle_secs, freq) = (None, None, None);
            }
        }
    }
    if version >= 5 && !r.is_empty() {
        return err_at(
            r.pos,
            "unexpected data between the EOF marker and the checksum",
        );
    }
    Ok(info)
}

// ----- DUMP / RESTORE ----------------------------------------------------------

/// Why a RESTORE payload was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum RestoreError {
    /// "-ERR DUMP payload version or checksum are wrong"
    VersionOrChecksum,
    /// "-ERR Bad data format"
    BadFormat,
}

/// Verifies a DUMP payload (footer: RDB version u16 LE, must be <= 10;
/// CRC64 LE over everything before it) and decodes it. RESTORE maps these
/// to "-ERR DUMP payload version or checksum are wrong" and "-ERR Bad data
/// format". Trailing bytes after the value = BadFormat.
pub fn restore_payload(p: &[u8], enc: &EncCfg) -> std::result::Result<Value, RestoreError> {
    if p.len() < 10 {
        return Err(RestoreError::VersionOrChecksum);
    }
    let footer = p.len() - 10;
    let version = le_u16(p, footer);
    if version > RDB_VERSION {
        return Err(RestoreError::VersionOrChecksum);
    }
    let mut stored = [0u8; 8];
    stored.copy_from_slice(&p[footer + 2..]);
    if crc64(0, &p[..footer + 2]) != u64::from_le_bytes(stored) {
        return Err(RestoreError::VersionOrChecksum);
    }
    let mut r = Reader::new(&p[..footer]);
    let t = r.u8().map_err(|_| RestoreError::BadFormat)?;
    if !is_value_type(t) {
        return Err(RestoreError::BadFormat);
    }
    match read_value(&mut r, t, enc) {
        Ok(Some(v)) if r.is_empty() => Ok(v),
        _ => Err(RestoreError::BadFormat),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rdb::{write_binary_double, write_len, write_string};
    use crate::util::parse_i64;

    // ----- builders ------------------------------------------------------------

    fn cfg() -> EncCfg {
        EncCfg::default()
    }

    fn s(x: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_string(&mut out, x, false);
        out
    }

    fn sz(x: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_string(&mut out, x, true);
        out
    }

    fn len(n: u64) -> Vec<u8> {
        let mut out = Vec::new();
        write_len(&mut out, n);
        out
    }

    /// One key: type byte, key string, value body.
    fn kv(t: u8, key: &[u8], body: &[u8]) -> Vec<u8> {
        let mut out = vec![t];
        out.extend(s(key));
        out.extend_from_slice(body);
        out
    }

    /// A whole file: magic, version, body, EOF, then (v >= 5) the CRC64
    /// trailer, or zeros when `checksum` is false.
    fn rdb_file(version: u16, body: &[u8], checksum: bool) -> Vec<u8> {
        let mut out = format!("REDIS{version:04}").into_bytes();
        out.extend_from_slice(body);
        out.push(OP_EOF);
        if version >= 5 {
            let crc = if checksum { crc64(0, &out) } else { 0 };
            out.extend_from_slice(&crc.to_le_bytes());
        }
        out
    }

    fn zl_enc(v: &[u8]) -> Vec<u8> {
        if let Some(i) = parse_i64(v) {
            return match i {
                0..=12 => vec![0xF1 + i as u8],
                -128..=127 => vec![0xFE, i as i8 as u8],
                -32768..=32767 => [&[0xC0][..], &(i as i16).to_le_bytes()].concat(),
                -8_388_608..=8_388_607 => [&[0xF0][..], &(i as i32).to_le_bytes()[..3]].concat(),
                _ if i32::try_from(i).is_ok() => [&[0xD0][..], &(i as i32).to_le_bytes()].concat(),
                _ => [&[0xE0][..], &i.to_le_bytes()].concat(),
            };
        }
        let n = v.len();
        let mut out = if n <= 63 {
            vec![n as u8]
        } else if n <= 16383 {
            vec![0x40 | (n >> 8) as u8, n as u8]
        } else {
            [&[0x80][..], &(n as u32).to_be_bytes()].concat()
        };
        out.extend_from_slice(v);
        out
    }

    fn ziplist(items: &[&[u8]]) -> Vec<u8> {
        let (mut body, mut prev, mut tail) = (Vec::new(), 0usize, 10usize);
        for v in items {
            let mut e = if prev < 254 {
                vec![prev as u8]
            } else {
                [&[0xFE][..], &(prev as u32).to_le_bytes()].concat()
            };
            e.extend(zl_enc(v));
            tail = 10 + body.len();
            prev = e.len();
            body.extend(e);
        }
        let total = 10 + body.len() + 1;
        let mut out = Vec::new();
        out.extend_from_slice(&(total as u32).to_le_bytes());
        out.extend_from_slice(&(tail as u32).to_le_bytes());
        out.extend_from_slice(&(items.len() as u16).to_le_bytes());
        out.extend(body);
        out.push(0xFF);
        out
    }

    fn lp_enc(v: &[u8]) -> Vec<u8> {
        if let Some(i) = parse_i64(v) {
            return match i {
                0..=127 => vec![i as u8],
                -4096..=4095 => {
                    let u = (i as u64) & 0x1fff;
                    vec![0xC0 | (u >> 8) as u8, u as u8]
                }
                -32768..=32767 => [&[0xF1][..], &(i as i16).to_le_bytes()].concat(),
                -8_388_608..=8_388_607 => [&[0xF2][..], &(i as i32).to_le_bytes()[..3]].concat(),
                _ if i32::try_from(i).is_ok() => [&[0xF3][..], &(i as i32).to_le_bytes()].concat(),
                _ => [&[0xF4][..], &i.to_le_bytes()].concat(),
            };
        }
        let n = v.len();
        let mut out = if n < 64 {
            vec![0x80 | n as u8]
        } else if n < 4096 {
            vec![0xE0 | (n >> 8) as u8, n as u8]
        } else {
            [&[0xF0][..], &(n as u32).to_le_bytes()].concat()
        };
        out.extend_from_slice(v);
        out
    }

    fn listpack(items: &[&[u8]]) -> Vec<u8> {
        let mut body = Vec::new();
        for v in items {
            let e = lp_enc(v);
            let l = e.len();
            body.extend(&e);
            if l <= 127 {
                body.push(l as u8);
            } else if l < 16383 {
                body.extend([(l >> 7) as u8, (l & 127) as u8 | 128]);
            } else {
                body.extend([
                    (l >> 14) as u8,
                    ((l >> 7) & 127) as u8 | 128,
                    (l & 127) as u8 | 128,
                ]);
            }
        }
        let total = 6 + body.len() + 1;
        let mut out = Vec::new();
        out.extend_from_slice(&(total as u32).to_le_bytes());
        out.extend_from_slice(&(items.len().min(65535) as u16).to_le_bytes());
        out.extend(body);
        out.push(0xFF);
        out
    }

    fn zipmap(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
        let zlen = |out: &mut Vec<u8>, n: usize| {
            if n < 254 {
                out.push(n as u8);
            } else {
                out.push(254);
                out.extend_from_slice(&(n as u32).to_le_bytes());
            }
        };
        let mut out = vec![pairs.len().min(254) as u8];
        for (i, (k, v)) in pairs.iter().enumerate() {
            zlen(&mut out, k.len());
            out.extend_from_slice(k);
            zlen(&mut out, v.len());
            // Every other value carries two free bytes, as after an update.
            let free = if i % 2 == 1 { 2 } else { 0 };
            out.push(free);
            out.extend_from_slice(v);
            out.extend(std::iter::repeat_n(0xAA, free as usize));
        }
        out.push(0xFF);
        out
    }

    fn intset(width: u32, vals: &[i64]) -> Vec<u8> {
        let mut out = width.to_le_bytes().to_vec();
        out.extend_from_slice(&(vals.len() as u32).to_le_bytes());
        for &v in vals {
            out.extend_from_slice(&v.to_le_bytes()[..width as usize]);
        }
        out
    }

    // ----- expected values -----------------------------------------------------

    fn list_of(items: &[&[u8]]) -> Value {
        let mut l = List::new(cfg().list_max_listpack_size);
        for v in items {
            l.push_back(v);
        }
        Value::List(Box::new(l))
    }

    fn hash_of(pairs: &[(&[u8], &[u8])]) -> Value {
        let mut h = Hash::new();
        for (f, v) in pairs {
            h.set(f, v, usize::MAX, usize::MAX);
        }
        Value::Hash(Box::new(h))
    }

    fn set_of(members: &[&[u8]]) -> Value {
        let mut st = Set::new();
        for m in members {
            st.add(m, usize::MAX);
        }
        Value::Set(Box::new(st))
    }

    fn zset_of(pairs: &[(&[u8], f64)]) -> Value {
        let mut items: Vec<(Box<[u8]>, f64)> =
            pairs.iter().map(|(m, x)| ((*m).into(), *x)).collect();
        items.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap().then_with(|| a.0.cmp(&b.0)));
        Value::ZSet(Box::new(ZSet::from_sorted(items, Limits::default())))
    }

    fn str_of(v: &[u8]) -> Value {
        Value::Str(Str::from_bytes(v))
    }

    fn load_all(buf: &[u8]) -> Result<(LoadInfo, Vec<Entry>)> {
        let mut v = Vec::new();
        let info = load(buf, &cfg(), 16, |e| {
            v.push(e);
            Ok(())
        })?;
        Ok((info, v))
    }

    fn rv(t: u8, body: &[u8]) -> Result<Option<Value>> {
        let mut r = Reader::new(body);
        let v = read_value(&mut r, t, &cfg())?;
        assert!(r.is_empty(), "type {t}: {} bytes left over", r.remaining());
        Ok(v)
    }

    fn rv_err(t: u8, body: &[u8], needle: &str) {
        match rv(t, body) {
            Ok(v) => panic!("type {t}: expected an error with {needle:?}, got {v:?}"),
            Err(e) => assert!(
                e.what.contains(needle),
                "type {t}: error {:?} does not mention {needle:?}",
                e.what
            ),
        }
    }

    fn dump_payload(t: u8, body: &[u8], version: u16) -> Vec<u8> {
        let mut p = vec![t];
        p.extend_from_slice(body);
        p.extend_from_slice(&version.to_le_bytes());
        let crc = crc64(0, &p);
        p.extend_from_slice(&crc.to_le_bytes());
        p
    }

    // ----- compact encodings -----------------------------------------------------

    const SAMPLE: [&[u8]; 16] = [
        b"0",
        b"12",
        b"13",
        b"127",
        b"128",
        b"-1",
        b"-4096",
        b"4095",
        b"-32768",
        b"8388607",
        b"-8388608",
        b"2147483647",
        b"-9223372036854775808",
        b"9223372036854775807",
        b"hello",
        b"",
    ];

    fn items_bytes(items: &[Item]) -> Vec<Vec<u8>> {
        items.iter().map(|i| i.to_vec()).collect()
    }

    #[test]
    fn listpack_and_ziplist_decode_every_encoding() {
        let mid = vec![b'm'; 300];
        let big = vec![b'b'; 5000];
        let huge = vec![b'h'; 70000];
        let mut all: Vec<&[u8]> = SAMPLE.to_vec();
        all.extend([&mid[..], &big[..], b"0123", b"+5", &huge[..], b"x"]);
        let want: Vec<Vec<u8>> = all.iter().map(|v| v.to_vec()).collect();
        let blob = |b: &[u8]| Blob {
            pos: 0,
            kind: "t",
            len: b.len(),
        };
        let lp = listpack(&all);
        assert_eq!(items_bytes(&parse_listpack(&lp, blob(&lp)).unwrap()), want);
        let zl = ziplist(&all);
        assert_eq!(items_bytes(&parse_ziplist(&zl, blob(&zl)).unwrap()), want);
        // Integers decode as integers.
        let lp = listpack(&[b"-4096", b"-8388608", b"7"]);
        let it = parse_listpack(&lp, blob(&lp)).unwrap();
        assert_eq!(
            it,
            vec![Item::Int(-4096), Item::Int(-8388608), Item::Int(7)]
        );
        // Count 65535 means "unknown": not checked.
        let mut lp = listpack(&[b"a", b"b"]);
        lp[4] = 0xff;
        lp[5] = 0xff;
        assert_eq!(parse_listpack(&lp, blob(&lp)).unwrap().len(), 2);
        // Empty containers are valid.
        let lp = listpack(&[]);
        assert!(parse_listpack(&lp, blob(&lp)).unwrap().is_empty());
        let zl = ziplist(&[]);
        assert!(parse_ziplist(&zl, blob(&zl)).unwrap().is_empty());
    }

    #[test]
    fn backlen_matches_redis_boundaries() {
        assert_eq!(lp_backlen(127), ([127, 0, 0, 0, 0], 1));
        assert_eq!(lp_backlen(128).1, 2);
        assert_eq!(lp_backlen(16382).1, 2);
        assert_eq!(lp_backlen(16383).1, 3);
        assert_eq!(lp_backlen(300).0[..2], [2, 44 | 128]);
        assert_eq!(lp_backlen(268_435_455).1, 5);
    }

    // ----- legacy and current value types -----------------------------------------

    /// A v9 file with one key of every type Redis 7.0 loads, plus every
    /// opcode; returns the file and the expected (db, key, value, expire).
    #[allow(clippy::type_complexity)]
    fn everything_file(version: u16) -> (Vec<u8>, Vec<(usize, Vec<u8>, Value, Option<u64>)>) {
        let mut b = Vec::new();
        let mut want: Vec<(usize, Vec<u8>, Value, Option<u64>)> = Vec::new();
        type Want = Vec<(usize, Vec<u8>, Value, Option<u64>)>;
        fn add(
            b: &mut Vec<u8>,
            want: &mut Want,
            db: usize,
            t: u8,
            key: &[u8],
            body: Vec<u8>,
            v: Value,
        ) {
            b.extend(kv(t, key, &body));
            want.push((db, key.to_vec(), v, None));
        }
        b.push(OP_AUX);
        b.extend(s(b"redis-ver"));
        b.extend(s(b"7.0.0"));
        b.push(OP_SELECTDB);
        b.extend(len(0));
        b.push(OP_RESIZEDB);
        b.extend(len(30));
        b.extend(len(2));
        b.push(OP_FUNCTION2);
        b.extend(s(
            b"#!lua name=lib\nredis.register_function('f', function() return 1 end)",
        ));
        b.push(OP_FUNCTION);
        b.extend(s(b"oldlib"));
        b.extend(s(b"LUA"));
        b.extend(len(1));
        b.extend(s(b"a description"));
        b.extend(s(b"redis.register_function('g', function() return 2 end)"));

        let long = b"compress me ".repeat(20);
        let mut body = len(3);
        body.extend(s(b"a"));
        body.extend(s(b"12"));
        body.extend(sz(&long));
        add(
            &mut b,
            &mut want,
            0,
            T_LIST,
            b"old:list",
            body,
            list_of(&[b"a", b"12", &long]),
        );

        let mut body = len(4);
        for (m, d) in [(&b"a"[..], &b"1.5"[..]), (b"d", b"-3"), (b"e", b"1e3")] {
            body.extend(s(m));
            body.push(d.len() as u8);
            body.extend_from_slice(d);
        }
        body.extend(s(b"b"));
        body.push(254);
        add(
            &mut b,
            &mut want,
            0,
            T_ZSET,
            b"old:zset",
            body,
            zset_of(&[
                (b"a", 1.5),
                (b"d", -3.0),
                (b"e", 1000.0),
                (b"b", f64::INFINITY),
            ]),
        );

        let zm = zipmap(&[(b"f1", b"v1"), (b"n", b"42"), (b"f3", b"")]);
        add(
            &mut b,
            &mut want,
            0,
            T_HASH_ZIPMAP,
            b"zipmap",
            s(&zm),
            hash_of(&[(b"f1", b"v1"), (b"n", b"42"), (b"f3", b"")]),
        );

        let big = vec![b'z'; 300];
        let zl_items: Vec<&[u8]> = vec![b"a", &big, b"5", b"-200", b"70000", b"9000000000", b"x"];
        add(
            &mut b,
            &mut want,
            0,
            T_LIST_ZIPLIST,
            b"zl:list",
            sz(&ziplist(&zl_items)),
            list_of(&zl_items),
        );
        add(
            &mut b,
            &mut want,
            0,
            T_ZSET_ZIPLIST,
            b"zl:zset",
            s(&ziplist(&[b"c", b"-inf", b"a", b"1", b"b", b"2.5"])),
            zset_of(&[(b"c", f64::NEG_INFINITY), (b"a", 1.0), (b"b", 2.5)]),
        );
        add(
            &mut b,
            &mut want,
            0,
            T_HASH_ZIPLIST,
            b"zl:hash",
            s(&ziplist(&[b"f1", b"v1", b"f2", b"2"])),
            hash_of(&[(b"f1", b"v1"), (b"f2", b"2")]),
        );

        let mut body = len(3);
        body.extend(s(&ziplist(&[b"a", b"b"])));
        body.extend(s(&ziplist(&[])));
        body.extend(sz(&ziplist(&[b"1", b"2", &long])));
        add(
            &mut b,
            &mut want,
            0,
            T_LIST_QUICKLIST,
            b"ql1",
            body,
            list_of(&[b"a", b"b", b"1", b"2", &long]),
        );

        let mut body = len(3);
        body.extend(len(QUICKLIST_NODE_PACKED));
        body.extend(s(&listpack(&[b"x", b"y"])));
        body.extend(len(QUICKLIST_NODE_PLAIN));
        body.extend(sz(&long));
        body.extend(len(QUICKLIST_NODE_PACKED));
        body.extend(s(&listpack(&[b"7"])));
        add(
            &mut b,
            &mut want,
            0,
            T_LIST_QUICKLIST_2,
            b"ql2",
            body,
            list_of(&[b"x", b"y", &long, b"7"]),
        );

        add(
            &mut b,
            &mut want,
            0,
            T_SET_INTSET,
            b"is16",
            s(&intset(2, &[-5, 1, 2, 300])),
            set_of(&[b"-5", b"1", b"2", b"300"]),
        );
        add(
            &mut b,
            &mut want,
            0,
            T_SET_INTSET,
            b"is32",
            s(&intset(4, &[-100000, 1, 100000])),
            set_of(&[b"-100000", b"1", b"100000"]),
        );
        add(
            &mut b,
            &mut want,
            0,
            T_SET_INTSET,
            b"is64",
            s(&intset(8, &[i64::MIN, 1, 1 << 40, i64::MAX])),
            set_of(&[
                b"-9223372036854775808",
                b"1",
                b"1099511627776",
                b"9223372036854775807",
            ]),
        );

        let mut body = len(3);
        for m in [&b"a"[..], b"b", b"3"] {
            body.extend(s(m));
        }
        add(
            &mut b,
            &mut want,
            0,
            T_SET,
            b"set",
            body,
            set_of(&[b"a", b"b", b"3"]),
        );

        let mut body = len(2);
        for (f, v) in [(&b"f"[..], &b"v"[..]), (b"n", b"-7")] {
            body.extend(s(f));
            body.extend(s(v));
        }
        add(
            &mut b,
            &mut want,
            0,
            T_HASH,
            b"hash",
            body,
            hash_of(&[(b"f", b"v"), (b"n", b"-7")]),
        );

        let mut body = len(3);
        for (m, x) in [(&b"n"[..], -1.0), (b"m", 2.5), (b"o", f64::NEG_INFINITY)] {
            body.extend(s(m));
            write_binary_double(&mut body, x);
        }
        add(
            &mut b,
            &mut want,
            0,
            T_ZSET_2,
            b"z2",
            body,
            zset_of(&[(b"n", -1.0), (b"m", 2.5), (b"o", f64::NEG_INFINITY)]),
        );

        add(
            &mut b,
            &mut want,
            0,
            T_HASH_LISTPACK,
            b"lp:hash",
            s(&listpack(&[b"f", b"v", b"num", b"12345"])),
            hash_of(&[(b"f", b"v"), (b"num", b"12345")]),
        );
        add(
            &mut b,
            &mut want,
            0,
            T_ZSET_LISTPACK,
            b"lp:zset",
            s(&listpack(&[b"a", b"1", b"b", b"2.5", b"c", b"inf"])),
            zset_of(&[(b"a", 1.0), (b"b", 2.5), (b"c", f64::INFINITY)]),
        );

        // Empty collections: skipped, not delivered.
        b.extend(kv(T_LIST, b"empty1", &len(0)));
        b.extend(kv(T_HASH_LISTPACK, b"empty2", &s(&listpack(&[]))));
        b.extend(kv(T_SET_INTSET, b"empty3", &s(&intset(2, &[]))));

        b.push(OP_EXPIRETIME);
        b.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        add(
            &mut b,
            &mut want,
            0,
            T_STRING,
            b"exp:s",
            s(b"v1"),
            str_of(b"v1"),
        );
        want.last_mut().unwrap().3 = Some(1_700_000_000_000);
        b.push(OP_EXPIRETIME_MS);
        b.extend_from_slice(&1_700_000_000_123u64.to_le_bytes());
        b.push(OP_IDLE);
        b.extend(len(77));
        add(
            &mut b,
            &mut want,
            0,
            T_STRING,
            b"exp:ms",
            s(b"12"),
            str_of(b"12"),
        );
        want.last_mut().unwrap().3 = Some(1_700_000_000_123);
        b.push(OP_FREQ);
        b.push(5);
        add(
            &mut b,
            &mut want,
            0,
            T_STRING,
            b"freq",
            sz(&long),
            str_of(&long),
        );

        b.push(OP_SELECTDB);
        b.extend(len(3));
        add(
            &mut b,
            &mut want,
            3,
            T_STRING,
            b"db3",
            s(b"in db 3"),
            str_of(b"in db 3"),
        );
        (rdb_file(version, &b, true), want)
    }

    fn check_everything(buf: &[u8]) -> LoadInfo {
        let (_, want) = everything_file(9);
        let (info, got) = load_all(buf).unwrap();
        assert_eq!(got.len(), want.len());
        for (e, (db, key, v, exp)) in got.iter().zip(&want) {
            let k = String::from_utf8_lossy(key);
            assert_eq!(e.key, *key);
            assert_eq!(e.db, *db, "{k}");
            assert_eq!(e.value, *v, "{k}");
            assert_eq!(e.expire_ms, *exp, "{k}");
        }
        assert_eq!(info.keys, want.len() as u64);
        assert_eq!(info.empty_keys_skipped, 3);
        assert_eq!(info.functions_skipped, 1);
        assert_eq!(
            info.functions,
            vec![b"#!lua name=lib\nredis.register_function('f', function() return 1 end)".to_vec()]
        );
        assert_eq!(info.aux, vec![(b"redis-ver".to_vec(), b"7.0.0".to_vec())]);
        let by = |k: &[u8]| got.iter().find(|e| e.key == k).unwrap();
        assert_eq!(by(b"exp:ms").idle_secs, Some(77));
        assert_eq!(by(b"freq").freq, Some(5));
        assert_eq!(by(b"freq").idle_secs, None);
        info
    }

    #[test]
    fn every_type_and_opcode_loads() {
        let (buf, _) = everything_file(9);
        let info = check_everything(&buf);
        assert_eq!(info.version, 9);
        // RINGKV_FUZZ_CORPUS=dir: also write these as fuzz seeds.
        if let Some(dir) = std::env::var_os("RINGKV_FUZZ_CORPUS") {
            let dir = std::path::PathBuf::from(dir);
            std::fs::write(dir.join("everything-v9.rdb"), &buf).unwrap();
            std::fs::write(dir.join("everything-v4.rdb"), everything_file(4).0).unwrap();
        }
        // The encodings Redis 7.0 gives them after loading.
        let (_, got) = load_all(&buf).unwrap();
        let enc: Vec<(&[u8], &str)> = got
            .iter()
            .map(|e| (&e.key[..], e.value.encoding()))
            .collect();
        for (k, want) in [
            (&b"zipmap"[..], "listpack"),
            (b"zl:zset", "listpack"),
            (b"zl:hash", "listpack"),
            (b"is16", "intset"),
            (b"set", "hashtable"),
            (b"hash", "listpack"),
            (b"z2", "listpack"),
            (b"old:list", "quicklist"),
            (b"exp:ms", "int"),
            (b"freq", "raw"),
        ] {
            let e = enc.iter().find(|(n, _)| *n == k).unwrap().1;
            assert_eq!(e, want, "{}", String::from_utf8_lossy(k));
        }
    }

    #[test]
    fn old_versions_with_and_without_trailer() {
        // v6 with a checksum, v6 with the checksum disabled (zeros), v4
        // which has no trailer at all.
        let (v6, _) = everything_file(6);
        check_everything(&v6);
        let mut v6z = v6.clone();
        let n = v6z.len();
        v6z[n - 8..].fill(0);
        check_everything(&v6z);
        let (v4, _) = everything_file(4);
        assert_eq!(&v4[v4.len() - 1..], &[OP_EOF]);
        assert_eq!(check_everything(&v4).version, 4);
        // A minimal v1 file.
        let f = rdb_file(1, &kv(T_STRING, b"k", &s(b"v")), true);
        let (info, got) = load_all(&f).unwrap();
        assert_eq!((info.version, got.len()), (1, 1));
    }

    #[test]
    fn thresholds_pick_redis_encodings() {
        let c = cfg();
        let n = c.hash_max_listpack_entries + 1;
        let fields: Vec<Vec<u8>> = (0..n).map(|i| format!("f{i}").into_bytes()).collect();
        let mut items: Vec<&[u8]> = Vec::new();
        for f in &fields {
            items.push(f);
            items.push(b"v");
        }
        let v = rv(T_HASH_LISTPACK, &s(&listpack(&items))).unwrap().unwrap();
        assert_eq!((v.encoding(), v.type_name()), ("hashtable", "hash"));
        let v = rv(T_HASH_LISTPACK, &s(&listpack(&items[..1024])))
            .unwrap()
            .unwrap();
        assert_eq!(v.encoding(), "listpack");
        // A loaded listpack keeps long values (Redis checks only counts)...
        let longv = vec![b'v'; 100];
        let v = rv(T_HASH_LISTPACK, &s(&listpack(&[b"f", &longv])))
            .unwrap()
            .unwrap();
        assert_eq!(v.encoding(), "listpack");
        // ...but a plain hash or a zipmap with a long value converts.
        let mut body = len(1);
        body.extend(s(b"f"));
        body.extend(s(&longv));
        assert_eq!(rv(T_HASH, &body).unwrap().unwrap().encoding(), "hashtable");
        let zm = zipmap(&[(b"f", &longv)]);
        assert_eq!(
            rv(T_HASH_ZIPMAP, &s(&zm)).unwrap().unwrap().encoding(),
            "hashtable"
        );
        // Plain hash over the count.
        let mut body = len(n as u64);
        for f in &fields {
            body.extend(s(f));
            body.extend(s(b"1"));
        }
        assert_eq!(rv(T_HASH, &body).unwrap().unwrap().encoding(), "hashtable");

        // Sets.
        let m = c.set_max_intset_entries as i64;
        let ints: Vec<i64> = (0..=m).collect();
        let v = rv(T_SET_INTSET, &s(&intset(2, &ints))).unwrap().unwrap();
        assert_eq!(v.encoding(), "hashtable");
        let v = rv(T_SET_INTSET, &s(&intset(2, &ints[..m as usize])))
            .unwrap()
            .unwrap();
        assert_eq!(v.encoding(), "intset");
        let mut body = len(m as u64 + 1);
        for i in 0..=m {
            body.extend(s(i.to_string().as_bytes()));
        }
        let v = rv(T_SET, &body).unwrap().unwrap();
        assert_eq!((v.encoding(), v.type_name()), ("hashtable", "set"));
        let mut body = len(3);
        for i in [5i64, -1, 1 << 50] {
            body.extend(s(i.to_string().as_bytes()));
        }
        assert_eq!(rv(T_SET, &body).unwrap().unwrap().encoding(), "intset");

        // Sorted sets.
        let me = c.zset_max_listpack_entries;
        let names: Vec<Vec<u8>> = (0..=me).map(|i| format!("m{i}").into_bytes()).collect();
        let mut items: Vec<&[u8]> = Vec::new();
        for nm in &names {
            items.push(nm);
            items.push(b"1");
        }
        let v = rv(T_ZSET_LISTPACK, &s(&listpack(&items))).unwrap().unwrap();
        assert_eq!(v.encoding(), "skiplist");
        let v = rv(T_ZSET_LISTPACK, &s(&listpack(&items[..2 * me])))
            .unwrap()
            .unwrap();
        assert_eq!(v.encoding(), "listpack");
        let mut body = len(1);
        body.extend(s(&longv));
        write_binary_double(&mut body, 1.0);
        assert_eq!(rv(T_ZSET_2, &body).unwrap().unwrap().encoding(), "skiplist");
    }

    #[test]
    fn big_zset_in_reverse_order_loads_sorted() {
        // Redis writes skiplists from the tail: one long descending run.
        let n = 100_000u64;
        let mut body = len(n);
        for i in (0..n).rev() {
            body.extend(s(format!("member:{i}").as_bytes()));
            write_binary_double(&mut body, (i / 2) as f64);
        }
        let v = rv(T_ZSET_2, &body).unwrap().unwrap();
        let Value::ZSet(z) = v else { panic!() };
        assert_eq!(z.len(), n as usize);
        assert_eq!(z.encoding(), "skiplist");
        assert_eq!(z.get(0).unwrap(), (&b"member:0"[..], 0.0));
        assert_eq!(z.get(1).unwrap(), (&b"member:1"[..], 0.0));
        assert_eq!(z.rank(b"member:99999"), Some(99_999));
    }

    #[test]
    fn many_keys_load() {
        let mut b = Vec::new();
        for i in 0..200_000u32 {
            b.extend(kv(
                T_STRING,
                format!("key:{i}").as_bytes(),
                &s(i.to_string().as_bytes()),
            ));
        }
        let f = rdb_file(10, &b, true);
        let mut n = 0u64;
        let info = load(&f, &cfg(), 16, |e| {
            assert_eq!(e.value.encoding(), "int");
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!((info.keys, n), (200_000, 200_000));
    }

    // ----- hostile input ---------------------------------------------------------

    /// A file cut short is reported as a short read, as redis-server
    /// does ("Unexpected EOF reading RDB file"), not as a bad checksum;
    /// a complete file with a damaged trailer is still a checksum error.
    #[test]
    fn truncated_file_is_a_short_read() {
        let (good, _) = everything_file(10);
        for cut in [good.len() / 2, good.len() - 4, good.len() - 9] {
            let e = load_all(&good[..cut]).unwrap_err();
            assert!(
                e.what.contains("Unexpected EOF reading RDB file"),
                "cut {cut}: {e}"
            );
        }
        let mut bad = good.clone();
        let n = bad.len();
        bad[n - 1] ^= 1;
        let e = load_all(&bad).unwrap_err();
        assert!(e.what.starts_with("wrong RDB checksum"), "{e}");
    }

    #[test]
    fn header_and_trailer_errors() {
        let (good, _) = everything_file(10);
        let mut bad = good.clone();
        let n = bad.len();
        bad[n - 3] ^= 1;
        let e = load_all(&bad).unwrap_err();
        assert!(e.what.contains("checksum"), "{e}");
        // A corrupted body is caught by the checksum before any entry.
        let mut bad = good.clone();
        bad[40] ^= 0x55;
        let mut delivered = 0;
        let e = load(&bad, &cfg(), 16, |_| {
            delivered += 1;
            Ok(())
        })
        .unwrap_err();
        assert!(e.what.contains("checksum"), "{e}");
        assert_eq!(delivered, 0);

        let v11 = rdb_file(11, &[], true);
        let e = load_all(&v11).unwrap_err();
        assert!(e.what.contains("version"), "{e}");
        let e = load_all(&rdb_file(0, &[], true)).unwrap_err();
        assert!(e.what.contains("version"), "{e}");
        let e = load_all(b"REDIX0009\xff").unwrap_err();
        assert!(e.what.contains("signature"), "{e}");
        let e = load_all(b"REDIS00a9\xff").unwrap_err();
        assert!(e.what.contains("version"), "{e}");
        assert!(load_all(b"REDIS").is_err());
        assert!(load_all(b"").is_err());
        // Data after EOF, before the trailer.
        let mut body = kv(T_STRING, b"k", &s(b"v"));
        body.push(OP_EOF);
        body.push(0);
        let e = load_all(&rdb_file(10, &body, true)).unwrap_err();
        assert!(
            e.what.contains("after") || e.what.contains("between"),
            "{e}"
        );
        // Checksum disabled still parses.
        let (info, got) = load_all(&rdb_file(10, &kv(T_STRING, b"k", &s(b"v")), false)).unwrap();
        assert_eq!((info.keys, got[0].key.as_slice()), (1, &b"k"[..]));
    }

    #[test]
    fn opcode_errors() {
        let f = |body: &[u8]| load_all(&rdb_file(10, body, true)).unwrap_err();
        let mut b = vec![OP_SELECTDB];
        b.extend(len(16));
        let e = f(&b);
        assert!(e.what.contains("database 16"), "{e}");
        assert_eq!(e.pos, 9);
        let e = f(&[OP_MODULE_AUX, 1, 2, 3]);
        assert!(e.what.contains("module data is not supported"), "{e}");
        // Streams load (rdb/stream.rs); a body cut after its node count
        // is refused, naming the key.
        for t in [T_STREAM_LISTPACKS_2, T_STREAM_LISTPACKS] {
            let e = f(&kv(t, b"st", &[0]));
            assert!(e.to_string().contains("key \"st\""), "{e}");
            assert!(!e.what.contains("not supported"), "{e}");
        }
        let e = f(&kv(T_MODULE_2, b"m", &[0]));
        assert!(e.what.contains("module values are not supported"), "{e}");
        let e = f(&kv(8, b"m", &[0]));
        assert!(e.what.contains("unknown value type 8"), "{e}");
        let e = f(&kv(40, b"m", &[0]));
        assert!(e.what.contains("unknown value type 40"), "{e}");
        // Errors inside a value name the key.
        let e = f(&kv(T_SET_INTSET, b"badkey", &s(&intset(3, &[]))));
        assert!(e.what.contains("badkey"), "{e}");
        // The sink's error aborts the load with its message.
        let buf = rdb_file(10, &kv(T_STRING, b"k", &s(b"v")), true);
        let e = load(&buf, &cfg(), 16, |_| Err("no room".into())).unwrap_err();
        assert_eq!(e.what, "no room");
    }

    #[test]
    fn duplicates_nan_and_odd_counts_are_refused() {
        let mut b = len(2);
        b.extend(s(b"a"));
        b.extend(s(b"a"));
        rv_err(T_SET, &b, "duplicate set member");
        let mut b = len(2);
        b.extend(s(b"7"));
        b.extend(s(b"7"));
        rv_err(T_SET, &b, "duplicate set member");
        let mut b = len(2);
        for _ in 0..2 {
            b.extend(s(b"f"));
            b.extend(s(b"v"));
        }
        rv_err(T_HASH, &b, "duplicate hash field");
        rv_err(
            T_HASH_LISTPACK,
            &s(&listpack(&[b"f", b"1", b"f", b"2"])),
            "duplicate hash field",
        );
        rv_err(
            T_HASH_ZIPLIST,
            &s(&ziplist(&[b"f", b"1", b"f", b"2"])),
            "duplicate hash field",
        );
        rv_err(
            T_HASH_ZIPMAP,
            &s(&zipmap(&[(b"f", b"1"), (b"f", b"2")])),
            "duplicate hash field",
        );
        rv_err(
            T_HASH_LISTPACK,
            &s(&listpack(&[b"f", b"1", b"g"])),
            "odd number",
        );
        rv_err(
            T_ZSET_LISTPACK,
            &s(&listpack(&[b"m", b"1", b"m", b"2"])),
            "duplicate zset member",
        );
        rv_err(
            T_ZSET_LISTPACK,
            &s(&listpack(&[b"m", b"1", b"n"])),
            "odd number",
        );
        rv_err(T_ZSET_LISTPACK, &s(&listpack(&[b"m", b"nan"])), "NaN");
        rv_err(
            T_ZSET_LISTPACK,
            &s(&listpack(&[b"m", b"abc"])),
            "invalid zset score",
        );
        rv_err(
            T_ZSET_ZIPLIST,
            &s(&ziplist(&[b"m", b"1", b"m", b"1"])),
            "duplicate zset member",
        );
        let mut b = len(1);
        b.extend(s(b"m"));
        b.push(253); // NaN in the string-double form
        rv_err(T_ZSET, &b, "NaN");
        let mut b = len(1);
        b.extend(s(b"m"));
        write_binary_double(&mut b, f64::NAN);
        rv_err(T_ZSET_2, &b, "NaN");
        let mut b = len(2);
        for _ in 0..2 {
            b.extend(s(b"m"));
            write_binary_double(&mut b, 1.0);
        }
        rv_err(T_ZSET_2, &b, "duplicate zset member");
    }

    #[test]
    fn corrupt_compact_encodings_are_refused() {
        let lp = listpack(&[b"aa", b"12", b"hello"]);
        // Total-bytes header disagreeing with the blob.
        let mut x = lp.clone();
        x[0] += 1;
        rv_err(T_HASH_LISTPACK, &s(&x), "header says");
        // A back-length that does not match its entry (a bad offset).
        let mut x = lp.clone();
        x[6 + 3] = 9;
        rv_err(T_ZSET_LISTPACK, &s(&x), "back-length");
        // An entry claiming to be longer than the blob.
        let mut x = lp.clone();
        x[6] = 0x80 | 60;
        rv_err(T_HASH_LISTPACK, &s(&x), "runs past");
        // Count mismatch, missing terminator, invalid encoding byte.
        let mut x = lp.clone();
        x[4] = 2;
        rv_err(T_HASH_LISTPACK, &s(&x), "counts");
        let mut x = lp.clone();
        let n = x.len();
        x[n - 1] = 0;
        rv_err(T_HASH_LISTPACK, &s(&x), "terminator");
        let mut x = lp.clone();
        x[6] = 0xF5;
        rv_err(T_HASH_LISTPACK, &s(&x), "encoding");
        // Quicklist-2 node with a broken listpack, a bad container, an
        // empty node.
        let mut b = len(1);
        b.extend(len(2));
        let mut x = lp.clone();
        x[4] = 9;
        b.extend(s(&x));
        rv_err(T_LIST_QUICKLIST_2, &b, "quicklist listpack");
        let mut b = len(1);
        b.extend(len(3));
        b.extend(s(&lp));
        rv_err(T_LIST_QUICKLIST_2, &b, "container");
        let mut b = len(1);
        b.extend(len(1));
        b.extend(s(b""));
        rv_err(T_LIST_QUICKLIST_2, &b, "empty quicklist node");

        let zl = ziplist(&[b"aa", b"12", b"hello"]);
        let mut x = zl.clone();
        x[0] += 1;
        rv_err(T_LIST_ZIPLIST, &s(&x), "zlbytes");
        let mut x = zl.clone();
        x[4] += 1;
        rv_err(T_LIST_ZIPLIST, &s(&x), "zltail");
        let mut x = zl.clone();
        x[8] = 5;
        rv_err(T_LIST_ZIPLIST, &s(&x), "counts");
        let mut x = zl.clone();
        x[10 + 4] = 7; // second entry's prevlen
        rv_err(T_LIST_ZIPLIST, &s(&x), "prevlen");
        let mut x = zl.clone();
        x[10] = 1; // first entry's prevlen must be 0
        rv_err(T_LIST_ZIPLIST, &s(&x), "prevlen");
        let mut x = zl.clone();
        x[11] = 0xC1;
        rv_err(T_LIST_ZIPLIST, &s(&x), "encoding");
        let mut x = zl.clone();
        let n = x.len();
        x[n - 1] = 0;
        rv_err(T_LIST_ZIPLIST, &s(&x), "end marker");
        let mut b = len(1);
        b.extend(s(&x));
        rv_err(T_LIST_QUICKLIST, &b, "quicklist ziplist");

        rv_err(T_SET_INTSET, &s(&intset(3, &[])), "invalid encoding");
        rv_err(T_SET_INTSET, &s(&intset(2, &[1, 1])), "ascending");
        rv_err(T_SET_INTSET, &s(&intset(4, &[2, 1])), "ascending");
        let mut x = intset(2, &[1, 2]);
        x.push(0);
        rv_err(T_SET_INTSET, &s(&x), "do not fill");
        rv_err(T_SET_INTSET, &s(&[2, 0, 0]), "too short");

        let zm = zipmap(&[(b"f1", b"v1"), (b"f2", b"v2")]);
        let mut x = zm.clone();
        x[0] = 3;
        rv_err(T_HASH_ZIPMAP, &s(&x), "counts");
        let mut x = zm.clone();
        let n = x.len();
        x[n - 1] = 0;
        rv_err(T_HASH_ZIPMAP, &s(&x), "hash zipmap");
        let mut x = zm.clone();
        x[1] = 200;
        rv_err(T_HASH_ZIPMAP, &s(&x), "runs past");
    }

    /// Every prefix of `file` must fail cleanly, also with the checksum
    /// disabled (so the parser itself meets the truncation), and byte flips
    /// with the checksum disabled must never panic.
    fn hostile_sweep(file: &[u8], flips: bool) {
        let n = file.len();
        for k in 0..n {
            assert!(load_all(&file[..k]).is_err(), "prefix {k} of {n} loaded");
        }
        let v = (file[5] - b'0') as u16 * 1000
            + (file[6] - b'0') as u16 * 100
            + (file[7] - b'0') as u16 * 10
            + (file[8] - b'0') as u16;
        let body = if v >= 5 { &file[..n - 8] } else { file };
        for k in 0..body.len() {
            let mut t = body[..k].to_vec();
            if v >= 5 {
                t.extend_from_slice(&[0; 8]);
            }
            assert!(load_all(&t).is_err(), "prefix {k} with no checksum loaded");
        }
        if !flips {
            return;
        }
        let mut z = body.to_vec();
        if v >= 5 {
            z.extend_from_slice(&[0; 8]);
        }
        for i in 9..body.len() {
            for mask in [0x01u8, 0x80, 0xFF, 0x40] {
                let mut t = z.clone();
                t[i] ^= mask;
                let _ = load_all(&t);
            }
        }
    }

    #[test]
    fn truncations_and_flips_never_panic() {
        let (f10, _) = everything_file(10);
        hostile_sweep(&f10, true);
        let (f4, _) = everything_file(4);
        hostile_sweep(&f4, false);
    }

    #[test]
    fn random_mutations_never_panic() {
        let (f, _) = everything_file(10);
        let body = &f[..f.len() - 8];
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for _ in 0..3000 {
            let mut t = body.to_vec();
            for _ in 0..(next() % 4 + 1) {
                let i = 9 + (next() as usize) % (t.len() - 9);
                match next() % 3 {
                    0 => t[i] = next() as u8,
                    1 => {
                        t.insert(i, next() as u8);
                    }
                    _ => {
                        t.remove(i);
                    }
                }
            }
            t.extend_from_slice(&[0; 8]);
            let _ = load_all(&t);
        }
    }

    // ----- DUMP payloads -----------------------------------------------------------

    #[test]
    fn restore_payload_checks() {
        let good = dump_payload(T_HASH_LISTPACK, &s(&listpack(&[b"f", b"v"])), 10);
        assert_eq!(
            restore_payload(&good, &cfg()).unwrap(),
            hash_of(&[(b"f", b"v")])
        );
        let old = dump_payload(T_LIST_ZIPLIST, &s(&ziplist(&[b"a", b"1"])), 6);
        assert_eq!(
            restore_payload(&old, &cfg()).unwrap(),
            list_of(&[b"a", b"1"])
        );

        let mut bad = good.clone();
        let n = bad.len();
        bad[n - 1] ^= 1;
        assert_eq!(
            restore_payload(&bad, &cfg()),
            Err(RestoreError::VersionOrChecksum)
        );
        let mut bad = good.clone();
        bad[2] ^= 1;
        assert_eq!(
            restore_payload(&bad, &cfg()),
            Err(RestoreError::VersionOrChecksum)
        );
        let v11 = dump_payload(T_STRING, &s(b"v"), 11);
        assert_eq!(
            restore_payload(&v11, &cfg()),
            Err(RestoreError::VersionOrChecksum)
        );
        assert_eq!(
            restore_payload(&good[..9], &cfg()),
            Err(RestoreError::VersionOrChecksum)
        );
        assert_eq!(
            restore_payload(b"", &cfg()),
            Err(RestoreError::VersionOrChecksum)
        );

        let garbage = dump_payload(T_HASH_LISTPACK, b"\x05hello", 10);
        assert_eq!(
            restore_payload(&garbage, &cfg()),
            Err(RestoreError::BadFormat)
        );
        let mut trailing = s(b"v");
        trailing.push(0);
        let t = dump_payload(T_STRING, &trailing, 10);
        assert_eq!(restore_payload(&t, &cfg()), Err(RestoreError::BadFormat));
        let empty = dump_payload(T_LIST, &len(0), 10);
        assert_eq!(
            restore_payload(&empty, &cfg()),
            Err(RestoreError::BadFormat)
        );
        let t8 = dump_payload(8, &s(b"v"), 10);
        assert_eq!(restore_payload(&t8, &cfg()), Err(RestoreError::BadFormat));
        let stream = dump_payload(T_STREAM_LISTPACKS, &len(0), 10);
        assert_eq!(
            restore_payload(&stream, &cfg()),
            Err(RestoreError::BadFormat)
        );
        let nobody = dump_payload(T_STRING, b"", 10);
        assert_eq!(
            restore_payload(&nobody, &cfg()),
            Err(RestoreError::BadFormat)
        );

        // Flips with a recomputed CRC exercise the decoder.
        let p = dump_payload(
            T_LIST_QUICKLIST_2,
            &{
                let mut b = len(2);
                b.extend(len(2));
                b.extend(s(&listpack(&[b"a", b"1234", b"hello"])));
                b.extend(len(1));
                b.extend(s(b"plain"));
                b
            },
            10,
        );
        for i in 0..p.len() - 10 {
            for mask in [1u8, 0x80, 0xFF] {
                let mut body = p[..p.len() - 10].to_vec();
                body[i] ^= mask;
                let q = dump_payload(body[0], &body[1..], 10);
                let _ = restore_payload(&q, &cfg());
            }
        }
    }

    // ----- files and payloads written by redis-server 7.0 ----------------------------

    mod real {
        use super::*;
        use std::net::TcpListener;
        use std::path::PathBuf;
        use std::process::{Child, Command, Stdio};
        use std::time::{Duration, Instant};

        struct RedisProc {
            child: Child,
            dir: PathBuf,
            con: redis::Connection,
        }

        impl Drop for RedisProc {
            fn drop(&mut self) {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let _ = std::fs::remove_dir_all(&self.dir);
            }
        }

        fn find_redis() -> Option<PathBuf> {
            let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).collect())
                .unwrap_or_default();
            dirs.push("/usr/bin".into());
            dirs.push("/usr/local/bin".into());
            let found = dirs
                .into_iter()
                .map(|d| d.join("redis-server"))
                .find(|p| p.is_file());
            if found.is_none() {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "redis-server is required under CI=true"
                );
                eprintln!("SKIPPED: redis-server not installed");
            }
            found
        }

        fn start() -> Option<RedisProc> {
            let bin = find_redis()?;
            for attempt in 0..5 {
                let port = TcpListener::bind("127.0.0.1:0")
                    .ok()?
                    .local_addr()
                    .ok()?
                    .port();
                let dir = std::env::temp_dir().join(format!(
                    "ringkv-rdb-test-{}-{attempt}-{port}",
                    std::process::id()
                ));
                std::fs::create_dir_all(&dir).ok()?;
                let mut child = Command::new(&bin)
                    .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                    .args(["--save", "", "--appendonly", "no"])
                    .arg("--dir")
                    .arg(&dir)
                    .args(["--enable-debug-command", "local"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("spawn redis-server");
                let deadline = Instant::now() + Duration::from_secs(10);
                let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
                loop {
                    if let Ok(Some(_)) = child.try_wait() {
                        break;
                    }
                    if let Ok(mut con) = client.get_connection_with_timeout(Duration::from_secs(1))
                    {
                        con.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                        if redis::cmd("PING").query::<String>(&mut con).is_ok() {
                            return Some(RedisProc { child, dir, con });
                        }
                    }
                    if Instant::now() > deadline {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                let _ = child.kill();
                let _ = child.wait();
                let _ = std::fs::remove_dir_all(&dir);
            }
            panic!("redis-server did not start");
        }

        fn q(con: &mut redis::Connection, args: &[&[u8]]) -> redis::RedisResult<redis::Value> {
            let mut c = redis::Cmd::new();
            for a in args {
                c.arg(*a);
            }
            c.query(con)
        }

        fn ok(con: &mut redis::Connection, args: &[&[u8]]) {
            if let Err(e) = q(con, args) {
                panic!("{:?}: {e}", String::from_utf8_lossy(args[0]));
            }
        }

        #[derive(Clone)]
        enum Spec {
            Str(Vec<u8>),
            List(Vec<Vec<u8>>),
            Hash(Vec<(Vec<u8>, Vec<u8>)>),
            Set(Vec<Vec<u8>>),
            ZSet(Vec<(Vec<u8>, f64)>),
        }

        struct Key {
            db: usize,
            name: Vec<u8>,
            spec: Spec,
            ttl: bool,
            encoding: String,
        }

        fn b(x: impl ToString) -> Vec<u8> {
            x.to_string().into_bytes()
        }

        fn expected(spec: &Spec) -> Value {
            match spec {
                Spec::Str(v) => str_of(v),
                Spec::List(v) => list_of(&v.iter().map(|x| &x[..]).collect::<Vec<_>>()),
                Spec::Hash(v) => {
                    hash_of(&v.iter().map(|(f, x)| (&f[..], &x[..])).collect::<Vec<_>>())
                }
                Spec::Set(v) => set_of(&v.iter().map(|x| &x[..]).collect::<Vec<_>>()),
                Spec::ZSet(v) => zset_of(&v.iter().map(|(m, x)| (&m[..], *x)).collect::<Vec<_>>()),
            }
        }

        fn small_keys() -> Vec<(usize, &'static str, Spec, bool)> {
            let pseudo: Vec<u8> = (0..60u32).map(|i| (i * 97 % 251) as u8).collect();
            vec![
                (0, "s:int", Spec::Str(b(12345)), false),
                (0, "s:neg", Spec::Str(b(-9_000_000_000i64)), false),
                (0, "s:emb", Spec::Str(b("hello world")), false),
                (0, "s:raw", Spec::Str(pseudo), false),
                (0, "s:lzf", Spec::Str(b"abc".repeat(100)), false),
                (0, "s:empty", Spec::Str(vec![]), false),
                (0, "s:ttl", Spec::Str(b("expiring")), true),
                (
                    0,
                    "l:small",
                    Spec::List(vec![
                        b("a"),
                        b(1),
                        b(-2),
                        b("hello"),
                        b(300000),
                        b(9_999_999_999i64),
                    ]),
                    false,
                ),
                (
                    0,
                    "h:small",
                    Spec::Hash(vec![
                        (b("f1"), b("v1")),
                        (b("n"), b(42)),
                        (b("big"), b(123_456_789_012i64)),
                    ]),
                    true,
                ),
                (
                    0,
                    "set:i16",
                    Spec::Set(vec![b(1), b(2), b(3), b(-5)]),
                    false,
                ),
                (
                    0,
                    "set:i32",
                    Spec::Set(vec![b(1), b(100000), b(-100000)]),
                    false,
                ),
                (
                    0,
                    "set:i64",
                    Spec::Set(vec![b(1), b(1i64 << 40), b(i64::MIN), b(i64::MAX)]),
                    false,
                ),
                (
                    0,
                    "set:str",
                    Spec::Set(vec![b("a"), b("b"), b("c"), b(1)]),
                    false,
                ),
                (
                    0,
                    "z:small",
                    Spec::ZSet(vec![
                        (b("a"), 1.0),
                        (b("b"), 1.5),
                        (b("c"), f64::NEG_INFINITY),
                        (b("d"), f64::INFINITY),
                        (b("e"), -2.25),
                        (b("f"), 0.0),
                        (b("g"), 1e300),
                        (b("h"), 0.1),
                    ]),
                    false,
                ),
                (3, "db3:s", Spec::Str(b("x")), false),
                (3, "db3:l", Spec::List(vec![b(1), b(2), b(3)]), true),
            ]
        }

        fn big_keys() -> Vec<(usize, &'static str, Spec, bool)> {
            let scores = |n: usize| -> Vec<(Vec<u8>, f64)> {
                (0..n)
                    .map(|i| {
                        let sc = match i % 4 {
                            0 => i as f64,
                            1 => i as f64 + 0.5,
                            2 => -(i as f64) / 3.0,
                            _ => 1e15 + i as f64,
                        };
                        (format!("member-{i}").into_bytes(), sc)
                    })
                    .chain([(b("pinf"), f64::INFINITY), (b("ninf"), f64::NEG_INFINITY)])
                    .collect()
            };
            vec![
                (
                    0,
                    "l:big",
                    Spec::List(
                        (0..3000)
                            .map(|i| {
                                if i % 3 == 0 {
                                    b(i * 1000)
                                } else {
                                    b(format!("item-{i}"))
                                }
                            })
                            .collect(),
                    ),
                    false,
                ),
                (
                    0,
                    "h:big",
                    Spec::Hash((0..1000).map(|i| (b(format!("field:{i}")), b(i))).collect()),
                    false,
                ),
                (
                    0,
                    "h:longval",
                    Spec::Hash(vec![(b("a"), vec![b'x'; 100])]),
                    false,
                ),
                (
                    0,
                    "set:big",
                    Spec::Set((0..1000).map(|i| b(i * 7 - 3000)).collect()),
                    false,
                ),
                (
                    0,
                    "set:strbig",
                    Spec::Set((0..300).map(|i| b(format!("m{i}"))).collect()),
                    false,
                ),
                (0, "z:big", Spec::ZSet(scores(500)), true),
                (
                    0,
                    "z:longmember",
                    Spec::ZSet(vec![(vec![b'q'; 100], 3.0)]),
                    false,
                ),
            ]
        }

        fn populate(
            con: &mut redis::Connection,
            keys: &[(usize, &'static str, Spec, bool)],
            out: &mut Vec<Key>,
        ) {
            for (db, name, spec, ttl) in keys {
                ok(con, &[b"SELECT", db.to_string().as_bytes()]);
                let k = name.as_bytes();
                match spec {
                    Spec::Str(v) => ok(con, &[b"SET", k, v]),
                    Spec::List(v) => {
                        for c in v.chunks(100) {
                            let mut a: Vec<&[u8]> = vec![b"RPUSH", k];
                            a.extend(c.iter().map(|x| &x[..]));
                            ok(con, &a);
                        }
                    }
                    Spec::Hash(v) => {
                        for (f, x) in v {
                            ok(con, &[b"HSET", k, f, x]);
                        }
                    }
                    Spec::Set(v) => {
                        for m in v {
                            ok(con, &[b"SADD", k, m]);
                        }
                    }
                    Spec::ZSet(v) => {
                        for (m, x) in v {
                            ok(con, &[b"ZADD", k, format!("{x:?}").as_bytes(), m]);
                        }
                    }
                }
                if *ttl {
                    ok(con, &[b"PEXPIRE", k, b"1000000000"]);
                }
                let encoding = match q(con, &[b"OBJECT", b"ENCODING", k]).unwrap() {
                    redis::Value::BulkString(e) => String::from_utf8(e).unwrap(),
                    redis::Value::SimpleString(e) => e,
                    v => panic!("OBJECT ENCODING: {v:?}"),
                };
                out.push(Key {
                    db: *db,
                    name: k.to_vec(),
                    spec: spec.clone(),
                    ttl: *ttl,
                    encoding,
                });
            }
        }

        fn save(p: &mut RedisProc) -> Vec<u8> {
            ok(&mut p.con, &[b"SAVE"]);
            std::fs::read(p.dir.join("dump.rdb")).unwrap()
        }

        fn check_file(buf: &[u8], keys: &[Key]) {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64;
            let (info, got) = load_all(buf).unwrap();
            assert_eq!(info.version, 10);
            assert!(info
                .aux
                .iter()
                .any(|(k, v)| k == b"redis-ver" && v.starts_with(b"7.")));
            assert_eq!(got.len(), keys.len());
            for k in keys {
                let name = String::from_utf8_lossy(&k.name);
                let e = got
                    .iter()
                    .find(|e| e.db == k.db && e.key == k.name)
                    .unwrap_or_else(|| panic!("{name} missing"));
                assert_eq!(e.value, expected(&k.spec), "{name}");
                assert_eq!(e.value.encoding(), k.encoding, "{name}");
                match e.expire_ms {
                    Some(t) => {
                        assert!(k.ttl, "{name} has an unexpected expiry");
                        assert!(t > now && t < now + 1_000_000_000 + 60_000, "{name}: {t}");
                    }
                    None => assert!(!k.ttl, "{name} lost its expiry"),
                }
            }
        }

        fn check_dumps(con: &mut redis::Connection, keys: &[Key], corpus: Option<&PathBuf>) {
            for (i, k) in keys.iter().enumerate() {
                let name = String::from_utf8_lossy(&k.name);
                ok(con, &[b"SELECT", k.db.to_string().as_bytes()]);
                let p = match q(con, &[b"DUMP", &k.name]).unwrap() {
                    redis::Value::BulkString(p) => p,
                    v => panic!("DUMP {name}: {v:?}"),
                };
                let v = restore_payload(&p, &cfg()).unwrap_or_else(|e| panic!("{name}: {e:?}"));
                assert_eq!(v, expected(&k.spec), "{name}");
                assert_eq!(v.encoding(), k.encoding, "{name}");
                if let Some(dir) = corpus {
                    std::fs::write(dir.join(format!("dump-{i:02}")), &p).unwrap();
                }
                // Damaged payloads: wrong CRC, then a body that no longer
                // parses under a correct CRC.
                let mut bad = p.clone();
                bad[0] ^= 0x40;
                assert_eq!(
                    restore_payload(&bad, &cfg()),
                    Err(RestoreError::VersionOrChecksum)
                );
                let n = bad.len();
                let crc = crc64(0, &bad[..n - 8]);
                bad[n - 8..].copy_from_slice(&crc.to_le_bytes());
                let _ = restore_payload(&bad, &cfg());
            }
        }

        #[test]
        fn files_and_dumps_from_redis_server() {
            let Some(mut p) = start() else { return };
            // RINGKV_FUZZ_CORPUS=dir writes the small file and the DUMP
            // payloads there (the fuzz seed corpus).
            let corpus = std::env::var_os("RINGKV_FUZZ_CORPUS").map(PathBuf::from);
            let mut keys = Vec::new();
            populate(&mut p.con, &small_keys(), &mut keys);
            let small = save(&mut p);
            check_file(&small, &keys);
            check_dumps(&mut p.con, &keys, corpus.as_ref());
            if let Some(dir) = &corpus {
                std::fs::write(dir.join("redis-small.rdb"), &small).unwrap();
            }
            hostile_sweep(&small, true);

            populate(&mut p.con, &big_keys(), &mut keys);
            // Compressed quicklist nodes (saved as LZF blobs as they are).
            ok(
                &mut p.con,
                &[b"CONFIG", b"SET", b"list-compress-depth", b"1"],
            );
            let compressed: Vec<Vec<u8>> = (0..2000)
                .map(|i| b(format!("value-{i}-{}", "x".repeat(i % 50))))
                .collect();
            populate(
                &mut p.con,
                &[(0, "l:compressed", Spec::List(compressed), false)],
                &mut keys,
            );
            ok(
                &mut p.con,
                &[b"CONFIG", b"SET", b"list-compress-depth", b"0"],
            );
            // Plain quicklist nodes, when DEBUG is allowed.
            ok(&mut p.con, &[b"SELECT", b"0"]);
            if q(
                &mut p.con,
                &[b"DEBUG", b"QUICKLIST-PACKED-THRESHOLD", b"100"],
            )
            .is_ok()
            {
                let items = vec![b("small"), vec![b'P'; 500], b(5), b"plain ".repeat(40)];
                populate(
                    &mut p.con,
                    &[(0, "l:plain", Spec::List(items), false)],
                    &mut keys,
                );
                ok(
                    &mut p.con,
                    &[b"DEBUG", b"QUICKLIST-PACKED-THRESHOLD", b"1073741824"],
                );
            } else {
                eprintln!("DEBUG disabled: no plain quicklist nodes tested");
            }
            let big = save(&mut p);
            check_file(&big, &keys);
            check_dumps(&mut p.con, &keys, None);
        }
    }
}
