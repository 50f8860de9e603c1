//! Values to RDB bytes, as Redis 7.0 writes them.
//!
//! Every value is written in the RDB type Redis 7.0's `rdbSaveObjectType`
//! picks for the same value in the same encoding, and the body is laid out
//! as `rdbSaveObject` lays it out:
//!
//! - strings: `T_STRING`, an integer-encoded or (LZF-compressed) string;
//! - lists: `T_LIST_QUICKLIST_2`, one packed listpack per node of the list;
//! - hashes: `T_HASH_LISTPACK` in the compact form (fields and values
//!   alternating in stored order), else `T_HASH`;
//! - sets: `T_SET_INTSET` (the intset blob) for an intset, else `T_SET`;
//! - sorted sets: `T_ZSET_LISTPACK` (member, score text alternating, in
//!   ascending order) for a listpack, else `T_ZSET_2` (highest first, with
//!   binary scores, as Redis walks its skiplist from the tail).
//!
//! Blobs (listpacks, intsets) and strings are written through
//! [`put_string`], so they get LZF-compressed exactly when Redis would
//! compress them, with [`lzf_compress_redis`] giving Redis's very bytes.

use super::{
    crc64, write_binary_double, write_int_string, write_len, write_string, OP_AUX, OP_EOF,
    OP_EXPIRETIME_MS, OP_RESIZEDB, OP_SELECTDB, QUICKLIST_NODE_PACKED, RDB_VERSION, T_HASH,
    T_HASH_LISTPACK, T_LIST_QUICKLIST_2, T_SET, T_SET_INTSET, T_STRING, T_ZSET_2, T_ZSET_LISTPACK,
};
use crate::types::{hash, list, set, Str, Value};

// ----- listpack ----------------------------------------------------------------

/// Listpack header: total bytes (u32) and element count (u16).
const LP_HDR_SIZE: usize = 6;
/// The element count stored once a listpack holds this many or more.
const LP_NUMELE_UNKNOWN: u16 = u16::MAX;
const LP_EOF: u8 = 0xFF;

const LP_ENC_13BIT_INT: u8 = 0xC0;
const LP_ENC_16BIT_INT: u8 = 0xF1;
const LP_ENC_24BIT_INT: u8 = 0xF2;
const LP_ENC_32BIT_INT: u8 = 0xF3;
const LP_ENC_64BIT_INT: u8 = 0xF4;
const LP_ENC_6BIT_STR: u8 = 0x80;
const LP_ENC_12BIT_STR: u8 = 0xE0;
const LP_ENC_32BIT_STR: u8 = 0xF0;

/// Appends an entry's back-length (the size of its encoding and data) as
/// Redis's `lpEncodeBacklen`: big-endian groups of 7 bits, every byte but
/// the first with the high bit set, so it can be read from its end.
fn push_backlen(out: &mut Vec<u8>, l: u64) {
    let n = if l <= 127 {
        1
    } else if l < 16383 {
        2
    } else if l < 2_097_151 {
        3
    } else if l < 268_435_455 {
        4
    } else {
        5
    };
    for i in (0..n).rev() {
        let group = ((l >> (7 * i)) & 127) as u8;
        out.push(if i == n - 1 { group } else { group | 128 });
    }
}

/// Builds a listpack (Redis's `listpack.c` format) by appending entries:
/// `u32` total bytes, `u16` element count (65535 once it is that many or
/// more), the entries, then 0xFF. Each entry is its encoding and data,
/// then its back-length.
#[derive(Clone, Debug)]
pub struct ListpackWriter {
    buf: Vec<u8>,
    count: usize,
}

impl Default for ListpackWriter {
    fn default() -> Self {
        ListpackWriter::new()
    }
}

impl ListpackWriter {
    pub fn new() -> ListpackWriter {
        ListpackWriter::with_capacity(0)
    }

    /// A writer with room for about `bytes` bytes of entries.
    pub fn with_capacity(bytes: usize) -> ListpackWriter {
        let mut buf = Vec::with_capacity(LP_HDR_SIZE + bytes + 1);
        buf.resize(LP_HDR_SIZE, 0);
        ListpackWriter { buf, count: 0 }
    }

    /// Entries appended so far.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Appends an element given as bytes, as `lpAppend` does: a string
    /// that reads back as a canonical 64-bit integer (Redis's
    /// `lpStringToInt64`, same rules as `string2ll`) is stored as an
    /// integer, anything else as a string.
    pub fn push(&mut self, s: &[u8]) {
        match crate::util::parse_i64(s) {
            Some(v) => self.push_int(v),
            None => self.push_str(s),
        }
    }

    /// Appends an integer in the narrowest integer encoding.
    pub fn push_int(&mut self, v: i64) {
        let start = self.buf.len();
        let b = &mut self.buf;
        if (0..=127).contains(&v) {
            b.push(v as u8);
        } else if (-4096..=4095).contains(&v) {
            let u = (v as u64) & 0x1FFF;
            b.push(LP_ENC_13BIT_INT | (u >> 8) as u8);
            b.push(u as u8);
        } else if (-32768..=32767).contains(&v) {
            b.push(LP_ENC_16BIT_INT);
            b.extend_from_slice(&(v as i16).to_le_bytes());
        } else if (-8_388_608..=8_388_607).contains(&v) {
            b.push(LP_ENC_24BIT_INT);
            b.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
        } else if i32::try_from(v).is_ok() {
            b.push(LP_ENC_32BIT_INT);
            b.extend_from_slice(&(v as i32).to_le_bytes());
        } else {
            b.push(LP_ENC_64BIT_INT);
            b.extend_from_slice(&v.to_le_bytes());
        }
        let l = (self.buf.len() - start) as u64;
        push_backlen(&mut self.buf, l);
        self.count += 1;
    }

    /// Appends a string entry as is (no integer detection; use [`push`]
    /// for Redis's behaviour).
    ///
    /// [`push`]: ListpackWriter::push
    pub fn push_str(&mut self, s: &[u8]) {
        let start = self.buf.len();
        let n = s.len();
        let b = &mut self.buf;
        if n < 64 {
            b.push(LP_ENC_6BIT_STR | n as u8);
        } else if n < 4096 {
            b.push(LP_ENC_12BIT_STR | (n >> 8) as u8);
            b.push(n as u8);
        } else {
            b.push(LP_ENC_32BIT_STR);
            b.extend_from_slice(&(n as u32).to_le_bytes());
        }
        b.extend_from_slice(s);
        let l = (self.buf.len() - start) as u64;
        push_backlen(&mut self.buf, l);
        self.count += 1;
    }

    /// The finished listpack bytes.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(LP_EOF);
        let total = self.buf.len() as u32;
        let n = if self.count >= LP_NUMELE_UNKNOWN as usize {
            LP_NUMELE_UNKNOWN
        } else {
            self.count as u16
        };
        self.buf[0..4].copy_from_slice(&total.to_le_bytes());
        self.buf[4..6].copy_from_slice(&n.to_le_bytes());
        self.buf
    }
}

// ----- strings and LZF -------------------------------------------------------

/// LZF as Redis 7.0 compresses (its bundled liblzf 3.6 with `HLOG` 16 and
/// `VERY_FAST`), with a zeroed hash table, so the output is byte-for-byte
/// Redis's for the same input. Like `rdbSaveLzfStringObject`, the result
/// must fit in `len - 4` bytes (liblzf's own conservative bound checks
/// included), else None.
pub fn lzf_compress_redis(data: &[u8]) -> Option<Vec<u8>> {
    if data.len() <= 4 || data.len() >= u32::MAX as usize {
        return None;
    }
    LZF_TABLE.with(|t| {
        let mut t = t.borrow_mut();
        let (epoch, table) = &mut *t;
        if table.is_empty() {
            table.resize(LZF_HSIZE, 0);
        }
        *epoch = epoch.wrapping_add(1);
        if *epoch == 0 {
            table.fill(0);
            *epoch = 1;
        }
        lzf_compress_with(data, table, (*epoch as u64) << 32)
    })
}

const LZF_HSIZE: usize = 1 << 16;

thread_local! {
    /// liblzf's hash table, reused across calls: a slot is
    /// `epoch << 32 | position + 1` and counts as empty unless its epoch is
    /// the current call's, so no call pays for clearing 512 KiB.
    static LZF_TABLE: std::cell::RefCell<(u32, Vec<u64>)> =
        const { std::cell::RefCell::new((0, Vec::new())) };
}

fn lzf_compress_with(data: &[u8], htab: &mut [u64], tag: u64) -> Option<Vec<u8>> {
    const HLOG: u32 = 16;
    const HSIZE: usize = LZF_HSIZE;
    const MAX_LIT: usize = 1 << 5;
    const MAX_OFF: usize = 1 << 13;
    const MAX_REF: usize = (1 << 8) + (1 << 3);
    #[inline]
    fn idx(h: u32) -> usize {
        ((h >> (3 * 8 - HLOG)).wrapping_sub(h.wrapping_mul(5)) as usize) & (HSIZE - 1)
    }
    let n = data.len();
    let out_end = n - 4;
    let inp = data;
    // A slot of this call holds `tag | position + 1`; anything else reads
    // as empty (liblzf's NULL).
    let get = |v: u64| {
        if v >> 32 == tag >> 32 {
            (v & 0xFFFF_FFFF) as usize
        } else {
            0
        }
    };
    // Room for the bytes liblzf may touch past `out_end` before it bails.
    let mut out = vec![0u8; out_end + 4];
    let mut ip = 0usize;
    let mut op = 1usize; // start run
    let mut lit = 0usize;
    let mut hval: u32 = ((inp[0] as u32) << 8) | inp[1] as u32;
    while ip + 2 < n {
        hval = (hval << 8) | inp[ip + 2] as u32;
        let slot = &mut htab[idx(hval)];
        let r = get(*slot);
        *slot = tag | (ip as u64 + 1);
        // `ref > in_data`: a reference to position 0 is never used.
        let matched = r > 1 && {
            let rp = r - 1;
            ip - rp - 1 < MAX_OFF
                && inp[rp + 2] == inp[ip + 2]
                && inp[rp..rp + 2] == inp[ip..ip + 2]
        };
        if matched {
            let rp = r - 1;
            let off = ip - rp - 1;
            let mut len = 2usize;
            let maxlen = (n - ip - len).min(MAX_REF);
            if op + 3 + 1 >= out_end && op - (lit == 0) as usize + 3 + 1 >= out_end {
                return None;
            }
            out[op - lit - 1] = (lit as u8).wrapping_sub(1); // stop run
            op -= (lit == 0) as usize; // undo run if length is zero
            let mut stopped = false;
            if maxlen > 16 {
                // liblzf's unrolled loop: 16 steps without the maxlen test.
                for _ in 0..16 {
                    len += 1;
                    if inp[rp + len] != inp[ip + len] {
                        stopped = true;
                        break;
                    }
                }
            }
            if !stopped {
                loop {
                    len += 1;
                    if !(len < maxlen && inp[rp + len] == inp[ip + len]) {
                        break;
                    }
                }
            }
            len -= 2; // now #octets - 1
            ip += 1;
            if len < 7 {
                out[op] = ((off >> 8) + (len << 5)) as u8;
                op += 1;
            } else {
                out[op] = ((off >> 8) + (7 << 5)) as u8;
                out[op + 1] = (len - 7) as u8;
                op += 2;
            }
            out[op] = off as u8;
            op += 1;
            lit = 0;
            op += 1; // start run
            ip += len + 1;
            if ip + 2 >= n {
                break;
            }
            // VERY_FAST: hash the last two positions of the match.
            ip -= 2;
            hval = ((inp[ip] as u32) << 8) | inp[ip + 1] as u32;
            for _ in 0..2 {
                hval = (hval << 8) | inp[ip + 2] as u32;
                htab[idx(hval)] = tag | (ip as u64 + 1);
                ip += 1;
            }
        } else {
            if op >= out_end {
                return None;
            }
            lit += 1;
            out[op] = inp[ip];
            op += 1;
            ip += 1;
            if lit == MAX_LIT {
                out[op - lit - 1] = (lit - 1) as u8;
                lit = 0;
                op += 1;
            }
        }
    }
    if op + 3 > out_end {
        return None;
    }
    while ip < n {
        lit += 1;
        out[op] = inp[ip];
        op += 1;
        ip += 1;
        if lit == MAX_LIT {
            out[op - lit - 1] = (lit - 1) as u8;
            lit = 0;
            op += 1;
        }
    }
    out[op - lit - 1] = (lit as u8).wrapping_sub(1); // end run
    op -= (lit == 0) as usize;
    out.truncate(op);
    Some(out)
}

// ----- values --------------------------------------------------------------------

/// The RDB type byte Redis 7.0 writes for this value.
pub fn value_type(v: &Value) -> u8 {
    match v {
        Value::Str(_) => T_STRING,
        Value::List(_) => T_LIST_QUICKLIST_2,
        Value::Hash(h) => {
            if h.is_compact() {
                T_HASH_LISTPACK
            } else {
                T_HASH
            }
        }
        Value::Set(s) => {
            if s.is_intset() {
                T_SET_INTSET
            } else {
                T_SET
            }
        }
        Value::ZSet(z) => {
            if z.is_listpack() {
                T_ZSET_LISTPACK
            } else {
                T_ZSET_2
            }
        }
        Value::Stream(_) => super::T_STREAM_LISTPACKS_2,
    }
}

/// A score as Redis 7.0's `d2string` writes it into a sorted set's
/// listpack (`zzlInsertAt`): integral values within ±2^52 as integers,
/// everything else as `%.17g` ("inf", "-inf", "-0" included).
fn score_text(d: f64, tmp: &mut itoa::Buffer) -> Vec<u8> {
    const MIN: f64 = -4_503_599_627_370_495.0;
    const MAX: f64 = 4_503_599_627_370_496.0;
    if d != 0.0 && d > MIN && d < MAX && d == (d as i64) as f64 {
        tmp.format(d as i64).as_bytes().to_vec()
    } else {
        crate::util::fmt_double(d).into_bytes()
    }
}

/// The intset blob of an intset-encoded set (Redis's `intset.c` layout):
/// `u32` element width in bytes, `u32` length, then the sorted elements,
/// all little-endian.
fn intset_blob(s: &set::Set, width: u8) -> Vec<u8> {
    let w = width as usize;
    let mut b = Vec::with_capacity(8 + s.len() * w);
    b.extend_from_slice(&(width as u32).to_le_bytes());
    b.extend_from_slice(&(s.len() as u32).to_le_bytes());
    for m in s.iter() {
        let x = match m {
            set::Member::Int(x) => x,
            // An intset holds integers only; be lenient anyway.
            set::Member::Str(v) => crate::util::parse_i64(v).unwrap_or(0),
        };
        b.extend_from_slice(&x.to_le_bytes()[..w]);
    }
    b
}

/// One quicklist node: a packed-node marker and its listpack.
fn write_list_node<'a>(
    out: &mut Vec<u8>,
    count: usize,
    elems: impl Iterator<Item = list::Elem<'a>>,
    compress: bool,
) {
    write_len(out, QUICKLIST_NODE_PACKED);
    let mut lp = ListpackWriter::with_capacity(count * 4);
    for e in elems {
        match e {
            list::Elem::Int(n) => lp.push_int(n),
            list::Elem::Str(b) => lp.push(b),
        }
    }
    write_string(out, &lp.finish(), compress);
}

/// Writes a hashtable hash's pairs from SCAN cursor `c` on, until at
/// least `min` were written or the scan ends; returns the next cursor (0
/// at the end).
fn write_hash_scan(
    out: &mut Vec<u8>,
    h: &hash::Hash,
    mut c: u64,
    min: usize,
    compress: bool,
) -> u64 {
    let (mut tmp, mut n) = (itoa::Buffer::new(), 0);
    loop {
        c = h.scan(c, |f, v| {
            write_string(out, f.as_bytes(&mut tmp), compress);
            write_string(out, v.as_bytes(&mut tmp), compress);
            n += 1;
        });
        if c == 0 || n >= min {
            return c;
        }
    }
}

/// [`write_hash_scan`] for a hashtable set's members.
fn write_set_scan(out: &mut Vec<u8>, st: &set::Set, mut c: u64, min: usize, compress: bool) -> u64 {
    let (mut tmp, mut n) = (itoa::Buffer::new(), 0);
    loop {
        c = st.scan(c, |m| {
            match m {
                set::Member::Str(b) => write_string(out, b, compress),
                set::Member::Int(x) => write_string(out, tmp.format(x).as_bytes(), compress),
            }
            n += 1;
        });
        if c == 0 || n >= min {
            return c;
        }
    }
}

/// Appends the value body (without the type byte), exactly as Redis 7.0's
/// `rdbSaveObject` would for the same value.
pub fn write_value(out: &mut Vec<u8>, v: &Value, compress: bool) {
    match v {
        Value::Str(s) => match s {
            Str::Int(n) => write_int_string(out, *n),
            Str::Emb(b) => write_string(out, b, compress),
            Str::Raw(b) => write_string(out, b, compress),
        },
        Value::List(l) => {
            let nodes = l.rdb_nodes();
            write_len(out, nodes.len() as u64);
            for (count, elems) in nodes {
                write_list_node(out, count, elems, compress);
            }
        }
        Value::Hash(h) => {
            if h.is_compact() {
                let mut lp = ListpackWriter::with_capacity(h.len() * 8);
                let mut push = |e: hash::Elem| match e {
                    hash::Elem::Int(n) => lp.push_int(n),
                    hash::Elem::Str(b) => lp.push(b),
                };
                for (f, v) in h.iter() {
                    push(f);
                    push(v);
                }
                write_string(out, &lp.finish(), compress);
            } else {
                // In SCAN order, as the piecewise writer goes.
                write_len(out, h.len() as u64);
                write_hash_scan(out, h, 0, usize::MAX, compress);
            }
        }
        Value::Set(s) => match s.intset_width() {
            Some(w) => write_string(out, &intset_blob(s, w), compress),
            None => {
                // In SCAN order, as the piecewise writer goes.
                write_len(out, s.len() as u64);
                write_set_scan(out, s, 0, usize::MAX, compress);
            }
        },
        Value::ZSet(z) => {
            if z.is_listpack() {
                let mut lp = ListpackWriter::with_capacity(z.len() * 8);
                let mut tmp = itoa::Buffer::new();
                z.range(0, z.len(), false, |m, s| {
                    lp.push(m);
                    lp.push(&score_text(s, &mut tmp));
                });
                write_string(out, &lp.finish(), compress);
            } else {
                write_len(out, z.len() as u64);
                z.range(0, z.len(), true, |m, s| {
                    write_string(out, m, compress);
                    write_binary_double(out, s);
                });
            }
        }
        Value::Stream(s) => super::stream::write_stream(out, s, compress),
    }
}

/// Elements (or list nodes) per piece when a big value is written in
/// pieces, and the size from which it is.
const PIECE: usize = 256;
const LIST_PIECE: usize = 8;
const BIG_ELEMS: usize = 2048;
const BIG_NODES: usize = 64;

/// For a value big enough to be written in pieces (a hashtable hash or
/// set, a skiplist zset, a list of many nodes), the number of units to
/// write (elements, or list nodes); None for everything else.
pub fn piece_units(v: &Value) -> Option<usize> {
    match v {
        Value::Hash(h) if !h.is_compact() && h.len() >= BIG_ELEMS => Some(h.len()),
        Value::Set(st) if st.intset_width().is_none() && st.len() >= BIG_ELEMS => Some(st.len()),
        Value::ZSet(z) if !z.is_listpack() && z.len() >= BIG_ELEMS => Some(z.len()),
        Value::List(l) if l.rdb_nodes().len() >= BIG_NODES => Some(l.rdb_nodes().len()),
        Value::Stream(s) if s.nodes.len() >= BIG_NODES => Some(s.nodes.len()),
        _ => None,
    }
}

/// Writes one piece of a value body: with `pos` None the first one (and
/// the length header), then from the position the previous call returned.
/// Returns the next position, or None when the body is complete. Written
/// in order on an unchanged value, the pieces are exactly the bytes
/// [`write_value`] produces. Positions are a SCAN cursor for hashtables
/// (so each piece costs its own size, not the elements before it), a node
/// index for lists and a rank for sorted sets.
pub fn write_value_piece(
    out: &mut Vec<u8>,
    v: &Value,
    compress: bool,
    pos: Option<u64>,
) -> Option<u64> {
    let Some(total) = piece_units(v) else {
        if pos.is_none() {
            write_value(out, v, compress);
        }
        return None;
    };
    if pos.is_none() {
        write_len(out, total as u64);
    }
    let pos = pos.unwrap_or(0);
    match v {
        Value::List(l) => {
            let pos = pos as usize;
            let end = (pos + LIST_PIECE).min(total);
            for (count, elems) in l.rdb_nodes().skip(pos).take(end - pos) {
                write_list_node(out, count, elems, compress);
            }
            (end < total).then_some(end as u64)
        }
        Value::ZSet(z) => {
            // Highest score first: ranks total-end .. total-pos, descending.
            let pos = pos as usize;
            let end = (pos + PIECE).min(total);
            z.range(total - end, total - pos, true, |m, sc| {
                write_string(out, m, compress);
                write_binary_double(out, sc);
            });
            (end < total).then_some(end as u64)
        }
        Value::Hash(h) => Some(write_hash_scan(out, h, pos, PIECE, compress)).filter(|&c| c != 0),
        Value::Set(st) => Some(write_set_scan(out, st, pos, PIECE, compress)).filter(|&c| c != 0),
        Value::Stream(s) => {
            let pos = pos as usize;
            let end = (pos + LIST_PIECE).min(total);
            super::stream::write_stream_nodes(out, s, pos, end, compress);
            if end < total {
                Some(end as u64)
            } else {
                super::stream::write_stream_tail(out, s, compress);
                None
            }
        }
        Value::Str(_) => None,
    }
}

/// Appends the start of a key record written in pieces: [EXPIRETIME_MS]
/// type key (the body follows with [`write_value_piece`]).
pub fn write_entry_head(
    out: &mut Vec<u8>,
    key: &[u8],
    v: &Value,
    expire_ms: Option<u64>,
    compress: bool,
) {
    if let Some(ms) = expire_ms {
        out.push(OP_EXPIRETIME_MS);
        out.extend_from_slice(&ms.to_le_bytes());
    }
    out.push(value_type(v));
    write_string(out, key, compress);
}

/// Appends one key record: `[OP_EXPIRETIME_MS + 8-byte LE ms] type key
/// value` (Redis's `rdbSaveKeyValuePair` with no LRU/LFU information, as
/// under the default `noeviction` policy).
pub fn write_entry(
    out: &mut Vec<u8>,
    key: &[u8],
    v: &Value,
    expire_ms: Option<u64>,
    compress: bool,
) {
    write_entry_head(out, key, v, expire_ms, compress);
    write_value(out, v, compress);
}

// ----- file framing ----------------------------------------------------------------

/// The auxiliary fields written after the magic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Aux {
    /// Creation time, Unix seconds ("ctime").
    pub ctime_secs: u64,
    /// Memory in use when saving ("used-mem").
    pub used_mem: u64,
    /// Whether this RDB is the base of an AOF ("aof-base").
    pub aof_base: bool,
}

fn write_aux(out: &mut Vec<u8>, key: &[u8], val: &[u8]) {
    out.push(OP_AUX);
    write_string(out, key, false);
    write_string(out, val, false);
}

fn write_aux_int(out: &mut Vec<u8>, key: &[u8], val: i64) {
    write_aux(out, key, itoa::Buffer::new().format(val).as_bytes());
}

/// "REDIS0010" then the AUX fields of Redis 7.0's `rdbSaveInfoAuxFields`
/// in its order: redis-ver, redis-bits, ctime, used-mem, aof-base (the
/// integers as strings, integer-encoded when they fit, as
/// `rdbSaveAuxFieldStrInt`).
pub fn write_header(out: &mut Vec<u8>, aux: &Aux) {
    out.extend_from_slice(format!("REDIS{RDB_VERSION:04}").as_bytes());
    write_aux(out, b"redis-ver", crate::REDIS_VERSION.as_bytes());
    write_aux_int(out, b"redis-bits", 64);
    write_aux_int(out, b"ctime", aux.ctime_secs as i64);
    write_aux_int(out, b"used-mem", aux.used_mem as i64);
    write_aux_int(out, b"aof-base", aux.aof_base as i64);
}

/// `OP_SELECTDB` and the database number.
pub fn write_select_db(out: &mut Vec<u8>, db: usize) {
    out.push(OP_SELECTDB);
    write_len(out, db as u64);
}

/// `OP_RESIZEDB`, the number of keys and the number with an expiry.
pub fn write_resize_db(out: &mut Vec<u8>, size: u64, expires: u64) {
    out.push(OP_RESIZEDB);
    write_len(out, size);
    write_len(out, expires);
}

/// The file trailer: 0xFF then the CRC64 (LE) over all bytes before it
/// *including* the 0xFF, given `crc_before` = crc64 of all bytes before
/// the 0xFF; when `checksum` is false the 8 CRC bytes are zero (as Redis
/// with `rdbchecksum no`).
pub fn trailer(crc_before: u64, checksum: bool) -> [u8; 9] {
    let mut t = [0u8; 9];
    t[0] = OP_EOF;
    if checksum {
        let crc = crc64(crc_before, &[OP_EOF]);
        t[1..].copy_from_slice(&crc.to_le_bytes());
    }
    t
}

/// A DUMP payload (Redis's `createDumpPayload`): type byte, value body, RDB
/// version (2 bytes LE), CRC64 (8 bytes LE) over everything before it.
pub fn dump_payload(v: &Value, compress: bool) -> Vec<u8> {
    let mut out = vec![value_type(v)];
    write_value(&mut out, v, compress);
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rdb::Reader;
    use crate::types::hash::Hash;
    use crate::types::list::List;
    use crate::types::set::Set;
    use crate::types::zset::{Limits, ZSet};

    fn lp_entry_int(v: i64) -> Vec<u8> {
        let mut w = ListpackWriter::new();
        w.push_int(v);
        let b = w.finish();
        b[LP_HDR_SIZE..b.len() - 1].to_vec()
    }

    fn lp_entry(s: &[u8]) -> Vec<u8> {
        let mut w = ListpackWriter::new();
        w.push(s);
        let b = w.finish();
        b[LP_HDR_SIZE..b.len() - 1].to_vec()
    }

    fn backlen(l: u64) -> Vec<u8> {
        let mut v = Vec::new();
        push_backlen(&mut v, l);
        v
    }

    #[test]
    fn listpack_integer_encodings() {
        let cases: Vec<(i64, Vec<u8>)> = vec![
            (0, vec![0x00, 0x01]),
            (127, vec![0x7f, 0x01]),
            (128, vec![0xC0, 0x80, 0x02]),
            (-1, vec![0xDF, 0xFF, 0x02]),
            (4095, vec![0xCF, 0xFF, 0x02]),
            (-4096, vec![0xD0, 0x00, 0x02]),
            (4096, vec![0xF1, 0x00, 0x10, 0x03]),
            (-4097, vec![0xF1, 0xFF, 0xEF, 0x03]),
            (32767, vec![0xF1, 0xFF, 0x7F, 0x03]),
            (-32768, vec![0xF1, 0x00, 0x80, 0x03]),
            (32768, vec![0xF2, 0x00, 0x80, 0x00, 0x04]),
            (-8_388_608, vec![0xF2, 0x00, 0x00, 0x80, 0x04]),
            (8_388_607, vec![0xF2, 0xFF, 0xFF, 0x7F, 0x04]),
            (8_388_608, vec![0xF3, 0x00, 0x00, 0x80, 0x00, 0x05]),
            (i32::MIN as i64, vec![0xF3, 0x00, 0x00, 0x00, 0x80, 0x05]),
            (i32::MAX as i64, vec![0xF3, 0xFF, 0xFF, 0xFF, 0x7F, 0x05]),
            (1 << 31, vec![0xF4, 0, 0, 0, 0x80, 0, 0, 0, 0, 0x09]),
            (i64::MIN, vec![0xF4, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x09]),
            (
                i64::MAX,
                vec![0xF4, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0x09],
            ),
        ];
        for (v, want) in cases {
            assert_eq!(lp_entry_int(v), want, "int {v}");
            // The same value given as text is detected as an integer.
            assert_eq!(lp_entry(v.to_string().as_bytes()), want, "text {v}");
        }
    }

    #[test]
    fn listpack_string_encodings() {
        assert_eq!(lp_entry(b""), vec![0x80, 0x01]);
        assert_eq!(lp_entry(b"abc"), vec![0x83, b'a', b'b', b'c', 0x04]);
        // Not canonical integers: stored as strings.
        for s in [
            &b"-0"[..],
            b"01",
            b"+1",
            b" 1",
            b"1 ",
            b"-",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"1.0",
        ] {
            let e = lp_entry(s);
            assert_eq!(e[0], 0x80 | s.len() as u8, "{s:?}");
            assert_eq!(&e[1..1 + s.len()], s);
            assert_eq!(e[1 + s.len()..], [1 + s.len() as u8]);
        }
        let s63 = vec![b'x'; 63];
        let e = lp_entry(&s63);
        assert_eq!(e.len(), 65);
        assert_eq!((e[0], e[64]), (0xBF, 64));
        let s64 = vec![b'x'; 64];
        let e = lp_entry(&s64);
        assert_eq!(e.len(), 2 + 64 + 1);
        assert_eq!((e[0], e[1], e[66]), (0xE0, 64, 66));
        // 2 + 126 = 128 bytes of body: a 2-byte backlen.
        let e = lp_entry(&[b'x'; 126]);
        assert_eq!(&e[..2], &[0xE0, 126]);
        assert_eq!(&e[128..], &[0x01, 0x80]);
        let e = lp_entry(&vec![b'x'; 4095]);
        assert_eq!(&e[..2], &[0xEF, 0xFF]);
        assert_eq!(&e[4097..], &[32, 0x81]);
        let e = lp_entry(&vec![b'x'; 4096]);
        assert_eq!(&e[..5], &[0xF0, 0x00, 0x10, 0x00, 0x00]);
        assert_eq!(&e[4101..], &[32, 0x85]);
        // 5 + 16383 = 16388: a 3-byte backlen.
        let e = lp_entry(&vec![b'x'; 16383]);
        assert_eq!(&e[16388..], &[0x01, 0x80, 0x84]);
    }

    #[test]
    fn listpack_backlen_sizes() {
        assert_eq!(backlen(0), [0]);
        assert_eq!(backlen(127), [127]);
        assert_eq!(backlen(128), [1, 0x80]);
        assert_eq!(backlen(300), [2, 0xAC]);
        assert_eq!(backlen(16382), [127, 0xFE]);
        assert_eq!(backlen(16383), [0, 0xFF, 0xFF]);
        assert_eq!(backlen(2_097_150), [127, 0xFF, 0xFE]);
        assert_eq!(backlen(2_097_151), [0, 0xFF, 0xFF, 0xFF]);
        assert_eq!(backlen(268_435_454), [127, 0xFF, 0xFF, 0xFE]);
        assert_eq!(backlen(268_435_455), [0, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert_eq!(backlen(u32::MAX as u64), [15, 0xFF, 0xFF, 0xFF, 0xFF]);
        // Decoding from the end gives the value back.
        for l in [
            0u64,
            127,
            128,
            16382,
            16383,
            2_097_151,
            268_435_455,
            1 << 32,
        ] {
            let b = backlen(l);
            let (mut v, mut shift) = (0u64, 0);
            for &c in b.iter().rev() {
                v |= ((c & 127) as u64) << shift;
                shift += 7;
            }
            assert_eq!(v, l);
        }
    }

    #[test]
    fn listpack_header_and_count() {
        let mut w = ListpackWriter::new();
        assert!(w.is_empty());
        w.push(b"a");
        w.push(b"12");
        assert_eq!(w.len(), 2);
        let b = w.finish();
        assert_eq!(b, vec![12, 0, 0, 0, 2, 0, 0x81, b'a', 0x02, 12, 0x01, 0xFF]);
        assert_eq!(ListpackWriter::new().finish(), vec![7, 0, 0, 0, 0, 0, 0xFF]);
        let mut w = ListpackWriter::new();
        for _ in 0..65535 {
            w.push_int(1);
        }
        let b = w.finish();
        assert_eq!(&b[4..6], &[0xFF, 0xFF]);
        assert_eq!(b.len(), 6 + 65535 * 2 + 1);
        assert_eq!(&b[..4], &(b.len() as u32).to_le_bytes());
        let mut w = ListpackWriter::new();
        for _ in 0..65534 {
            w.push_int(1);
        }
        assert_eq!(&w.finish()[4..6], &65534u16.to_le_bytes());
    }

    #[test]
    fn score_text_follows_d2string() {
        let mut t = itoa::Buffer::new();
        let f = |d: f64, t: &mut itoa::Buffer| String::from_utf8(score_text(d, t)).unwrap();
        assert_eq!(f(3.0, &mut t), "3");
        assert_eq!(f(-2.0, &mut t), "-2");
        assert_eq!(f(0.0, &mut t), "0");
        assert_eq!(f(-0.0, &mut t), "-0");
        assert_eq!(f(1.5, &mut t), "1.5");
        assert_eq!(f(0.1, &mut t), "0.10000000000000001");
        assert_eq!(f(1e20, &mut t), "1e+20");
        assert_eq!(f(f64::INFINITY, &mut t), "inf");
        assert_eq!(f(f64::NEG_INFINITY, &mut t), "-inf");
        assert_eq!(f(4503599627370495.0, &mut t), "4503599627370495");
        assert_eq!(f(9007199254740992.0, &mut t), "9007199254740992");
    }

    /// Pseudo-random test strings with some redundancy, so LZF has matches
    /// of every length and offset to find.
    fn lzf_inputs() -> Vec<Vec<u8>> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut v = Vec::new();
        for i in 0..300 {
            let len = match i % 4 {
                0 => rng.gen_range(21..64),
                1 => rng.gen_range(64..600),
                2 => rng.gen_range(600..12000),
                _ => rng.gen_range(21..40),
            };
            let alpha = rng.gen_range(2..=255u32);
            let mut s: Vec<u8> = Vec::with_capacity(len);
            while s.len() < len {
                if !s.is_empty() && rng.gen_bool(0.3) {
                    // Copy an earlier run (near or far, short or long).
                    let from = rng.gen_range(0..s.len());
                    let n = rng.gen_range(1..300).min(s.len() - from).min(len - s.len());
                    for k in 0..n {
                        s.push(s[from + k]);
                    }
                } else {
                    s.push(rng.gen_range(0..alpha) as u8);
                }
            }
            v.push(s);
        }
        v.push(vec![b'a'; 21]);
        v.push(vec![b'a'; 1000]);
        v.push(b"abababababababababababab".to_vec());
        v.push((0..=255u8).cycle().take(5000).collect());
        v
    }

    #[test]
    fn lzf_round_trips_and_matches_liblzf_format() {
        let mut compressed = 0;
        for s in lzf_inputs() {
            if let Some(c) = lzf_compress_redis(&s) {
                assert!(c.len() <= s.len() - 4);
                let d = crate::rdb::lzf_decompress(&c, s.len()).expect("decompresses");
                assert_eq!(d, s);
                compressed += 1;
            }
        }
        assert!(compressed > 200, "{compressed}");
        // A run: two literals (position 0 is never referenced), then
        // back-references.
        let c = lzf_compress_redis(&[b'a'; 1000]).unwrap();
        assert_eq!(&c[..4], &[0x01, b'a', b'a', 0xE0]);
        assert!(lzf_compress_redis(b"abcdefghijklmnopqrstuvwxyz").is_none());
        let mut out = Vec::new();
        write_string(&mut out, &[b'x'; 100], true);
        assert_eq!(out[0], 0xC3);
        let mut r = Reader::new(&out);
        assert_eq!(r.string().unwrap(), vec![b'x'; 100]);
    }

    // ----- value builders ------------------------------------------------

    fn s(b: &[u8]) -> Value {
        Value::Str(Str::from_bytes(b))
    }

    fn list(fill: i64, items: &[Vec<u8>]) -> Value {
        let mut l = List::new(fill);
        for it in items {
            l.push_back(it);
        }
        Value::List(Box::new(l))
    }

    fn hash(pairs: &[(Vec<u8>, Vec<u8>)]) -> Value {
        let mut h = Hash::new();
        for (f, v) in pairs {
            h.set(f, v, 128, 64);
        }
        Value::Hash(Box::new(h))
    }

    fn set(members: &[Vec<u8>]) -> Value {
        let mut st = Set::new();
        for m in members {
            st.add(m, 512);
        }
        Value::Set(Box::new(st))
    }

    fn zset(items: &[(Vec<u8>, f64)]) -> Value {
        let mut z = ZSet::new();
        for (m, sc) in items {
            z.insert(m, *sc, Limits::default());
        }
        Value::ZSet(Box::new(z))
    }

    fn b(x: impl ToString) -> Vec<u8> {
        x.to_string().into_bytes()
    }

    /// One value of every type and encoding, with the encoding Redis
    /// reports for it.
    fn samples() -> Vec<(&'static str, Value, &'static str)> {
        let long_text: Vec<u8> = "the quick brown fox jumps over the lazy dog; "
            .repeat(40)
            .into_bytes();
        let random_ish: Vec<u8> = (0..300u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let zs_small: Vec<(Vec<u8>, f64)> = vec![
            (b("a"), 1.0),
            (b("b"), 1.5),
            (b("c"), -2.0),
            (b("d"), f64::INFINITY),
            (b("e"), f64::NEG_INFINITY),
            (b("f"), 1e20),
            (b("g"), 0.1),
            (b("h"), 3e-5),
            (b("i"), -0.0),
            (b("12"), 1e6),
            (b("j"), 123456789012.0),
        ];
        let mut zs_big: Vec<(Vec<u8>, f64)> = (0..200)
            .map(|i| (b(format!("member:{i}")), (i as f64) * 0.75 - 30.0))
            .collect();
        zs_big.push((b("top"), f64::INFINITY));
        zs_big.push((b("bottom"), f64::NEG_INFINITY));
        zs_big.push((b("42"), 7.0));
        let mut big_hash: Vec<(Vec<u8>, Vec<u8>)> = (0..300)
            .map(|i| (b(format!("field:{i}")), b(i * 7)))
            .collect();
        big_hash.push((b("long"), long_text.clone()));
        vec![
            ("str:int", s(b"12345"), "int"),
            ("str:int-neg", s(b"-7"), "int"),
            ("str:int-64", s(b"1099511627776"), "int"),
            ("str:int-min", s(b"-9223372036854775808"), "int"),
            ("str:embstr", s(b"hello world"), "embstr"),
            ("str:emb-int-like", s(b"007"), "embstr"),
            ("str:empty", s(b""), "embstr"),
            ("str:raw", Value::Str(Str::Raw(random_ish.clone())), "raw"),
            (
                "str:long-compressible",
                Value::Str(Str::Raw(long_text.clone())),
                "raw",
            ),
            (
                "list:small",
                list(
                    -2,
                    &[
                        b("a"),
                        b("1"),
                        b("-1"),
                        b("200"),
                        b("-5000"),
                        b("70000"),
                        b("3000000000"),
                        b("-9223372036854775808"),
                        b("2305843009213693952"),
                        b("01"),
                        b(""),
                        b("x".repeat(100)),
                    ],
                ),
                "quicklist",
            ),
            (
                "list:fill4",
                list(4, &(0..30).map(|i| b(format!("e{i}"))).collect::<Vec<_>>()),
                "quicklist",
            ),
            (
                "list:large",
                list(
                    -2,
                    &(0..5000)
                        .map(|i| {
                            b(if i % 3 == 0 {
                                i.to_string()
                            } else {
                                format!("item-{i}")
                            })
                        })
                        .collect::<Vec<_>>(),
                ),
                "quicklist",
            ),
            (
                "hash:listpack",
                hash(&[
                    (b("name"), b("ringkv")),
                    (b("n"), b("42")),
                    (b("neg"), b("-4097")),
                    (b("7"), b("3000000000")),
                    (b("empty"), b("")),
                    (b("f"), b("1.5")),
                ]),
                "listpack",
            ),
            ("hash:hashtable", hash(&big_hash), "hashtable"),
            ("set:intset16", set(&[b(3), b(-1), b(1000), b(2)]), "intset"),
            ("set:intset32", set(&[b(1), b(70000), b(-70000)]), "intset"),
            (
                "set:intset64",
                set(&[b(5), b(i64::MAX), b(i64::MIN), b(1i64 << 40)]),
                "intset",
            ),
            (
                "set:hashtable",
                set(&[b("a"), b("b"), b("12"), b("-3"), b("x".repeat(50))]),
                "hashtable",
            ),
            ("zset:listpack", zset(&zs_small), "listpack"),
            ("zset:skiplist", zset(&zs_big), "skiplist"),
        ]
    }

    #[test]
    fn sample_types_and_encodings() {
        for (name, v, enc) in samples() {
            assert_eq!(v.encoding(), enc, "{name}");
            let t = value_type(&v);
            let want = match enc {
                "int" | "embstr" | "raw" => T_STRING,
                "quicklist" => T_LIST_QUICKLIST_2,
                "listpack" if name.starts_with("hash") => T_HASH_LISTPACK,
                "listpack" => T_ZSET_LISTPACK,
                "hashtable" if name.starts_with("hash") => T_HASH,
                "hashtable" => T_SET,
                "intset" => T_SET_INTSET,
                "skiplist" => T_ZSET_2,
                _ => unreachable!(),
            };
            assert_eq!(t, want, "{name}");
        }
    }

    #[test]
    fn intset_blob_layout() {
        let v = set(&[b(3), b(-1), b(1000)]);
        let p = dump_payload(&v, false);
        // type, string len 14, encoding 2, length 3, -1, 3, 1000.
        let mut want = vec![T_SET_INTSET, 14, 2, 0, 0, 0, 3, 0, 0, 0];
        want.extend_from_slice(&[0xFF, 0xFF, 3, 0, 0xE8, 0x03]);
        assert_eq!(&p[..p.len() - 10], &want[..]);
        let v = set(&[b(1), b(70000)]);
        let p = dump_payload(&v, false);
        assert_eq!(&p[..10], &[T_SET_INTSET, 16, 4, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(&p[10..18], &[1, 0, 0, 0, 0x70, 0x11, 0x01, 0x00]);
    }

    #[test]
    fn simple_payloads() {
        // DUMP of SET k hello in Redis 7.0.
        let p = dump_payload(&s(b"hello"), true);
        assert_eq!(&p[..8], &[0x00, 0x05, b'h', b'e', b'l', b'l', b'o', 0x0a]);
        assert_eq!(p[8], 0x00);
        let crc = crc64(0, &p[..9]);
        assert_eq!(&p[9..], &crc.to_le_bytes());
        // An int-encoded string.
        let p = dump_payload(&s(b"-129"), true);
        assert_eq!(&p[..3], &[0x00, 0xC1, 0x7F]);
        // A zset listpack: member, score alternating; 1.5 as text.
        let p = dump_payload(&zset(&[(b("a"), 1.5), (b("b"), 2.0)]), false);
        let lp = {
            let mut w = ListpackWriter::new();
            w.push(b"a");
            w.push(b"1.5");
            w.push(b"b");
            w.push_int(2);
            w.finish()
        };
        let mut want = vec![T_ZSET_LISTPACK, lp.len() as u8];
        want.extend_from_slice(&lp);
        assert_eq!(&p[..p.len() - 10], &want[..]);
    }

    #[test]
    fn zset_skiplist_is_written_highest_first() {
        let (_, v, _) = samples()
            .into_iter()
            .find(|(n, _, _)| *n == "zset:skiplist")
            .unwrap();
        let mut out = Vec::new();
        write_value(&mut out, &v, true);
        let mut r = Reader::new(&out);
        let n = r.len().unwrap() as usize;
        let mut prev = f64::INFINITY;
        let mut first = true;
        for _ in 0..n {
            let m = r.string().unwrap();
            let sc = r.binary_double().unwrap();
            if first {
                assert_eq!(m, b"top");
                first = false;
            }
            assert!(sc <= prev);
            prev = sc;
        }
        assert_eq!(prev, f64::NEG_INFINITY);
        assert!(r.is_empty());
    }

    #[test]
    fn list_nodes_are_packed_listpacks() {
        let v = list(4, &(0..10).map(b).collect::<Vec<_>>());
        let mut out = Vec::new();
        write_value(&mut out, &v, false);
        let mut r = Reader::new(&out);
        assert_eq!(r.len().unwrap(), 3);
        let mut all = Vec::new();
        for _ in 0..3 {
            assert_eq!(r.len().unwrap(), QUICKLIST_NODE_PACKED);
            let lp = r.string().unwrap();
            assert_eq!(&lp[..4], &(lp.len() as u32).to_le_bytes());
            let n = u16::from_le_bytes([lp[4], lp[5]]) as usize;
            // Small integers: one byte each plus a one-byte backlen.
            assert_eq!(lp.len(), 6 + 2 * n + 1);
            for k in 0..n {
                all.push(lp[6 + 2 * k] as i64);
            }
        }
        assert!(r.is_empty());
        assert_eq!(all, (0..10).collect::<Vec<_>>());
    }

    fn build_file(with_checksum: bool) -> Vec<u8> {
        let mut out = Vec::new();
        write_header(
            &mut out,
            &Aux {
                ctime_secs: 1_700_000_000,
                used_mem: 1_234_567,
                aof_base: false,
            },
        );
        let samples = samples();
        let far_future = crate::util::now_ms() + 86_400_000 * 365;
        let n = samples.len() as u64;
        write_select_db(&mut out, 0);
        write_resize_db(&mut out, n, 3);
        for (i, (name, v, _)) in samples.iter().enumerate() {
            let exp = (i % 7 == 0).then_some(far_future + i as u64);
            write_entry(&mut out, name.as_bytes(), v, exp, true);
        }
        write_select_db(&mut out, 3);
        write_resize_db(&mut out, 2, 0);
        write_entry(&mut out, b"uncompressed", &samples[8].1, None, false);
        write_entry(&mut out, b"x".repeat(30).as_slice(), &s(b"v"), None, true);
        let crc = crc64(0, &out);
        out.extend_from_slice(&trailer(crc, with_checksum));
        out
    }

    #[test]
    fn header_and_trailer_bytes() {
        let mut out = Vec::new();
        write_header(
            &mut out,
            &Aux {
                ctime_secs: 1_795_593_343,
                used_mem: 938_144,
                aof_base: false,
            },
        );
        // As Redis 7.0.15 writes them (ctime/used-mem as int32 encodings).
        let mut want = b"REDIS0010".to_vec();
        want.extend_from_slice(b"\xfa\x09redis-ver");
        want.push(crate::REDIS_VERSION.len() as u8);
        want.extend_from_slice(crate::REDIS_VERSION.as_bytes());
        want.extend_from_slice(b"\xfa\x0aredis-bits\xc0\x40");
        want.extend_from_slice(b"\xfa\x05ctime\xc2\x7f\x94\x06\x6b");
        want.extend_from_slice(b"\xfa\x08used-mem\xc2\xa0\x50\x0e\x00");
        want.extend_from_slice(b"\xfa\x08aof-base\xc0\x00");
        assert_eq!(out, want);
        // A large used-mem does not fit 32 bits: plain decimal text.
        let mut out = Vec::new();
        write_header(
            &mut out,
            &Aux {
                ctime_secs: 1,
                used_mem: 10_000_000_000,
                aof_base: true,
            },
        );
        let needle = b"used-mem\x0b10000000000\xfa";
        assert!(out.windows(needle.len()).any(|w| w == needle));
        assert!(out.ends_with(b"\xfa\x08aof-base\xc0\x01"));

        let mut out = Vec::new();
        write_select_db(&mut out, 0);
        write_resize_db(&mut out, 1, 0);
        out.extend_from_slice(&[T_STRING, 1, b'k', 1, b'v']);
        assert_eq!(out, b"\xfe\x00\xfb\x01\x00\x00\x01k\x01v");
        let t = trailer(0x1234, false);
        assert_eq!(t, [0xFF, 0, 0, 0, 0, 0, 0, 0, 0]);

        // The whole-file checksum covers the 0xFF.
        let f = build_file(true);
        let body = &f[..f.len() - 8];
        assert_eq!(body.last(), Some(&OP_EOF));
        assert_eq!(&f[f.len() - 8..], &crc64(0, body).to_le_bytes());
        assert!(f.starts_with(b"REDIS0010\xfa"));
        let f0 = build_file(false);
        assert!(f0.ends_with(&[0xFF, 0, 0, 0, 0, 0, 0, 0, 0]));
    }

    #[test]
    fn real_redis_file_trailer_matches() {
        // The tail of a file Redis 7.0.15 wrote for `SET k v` (after the
        // header above): our trailer gives the same CRC.
        let mut f = b"REDIS0010".to_vec();
        f.extend_from_slice(b"\xfa\x09redis-ver\x067.0.15");
        f.extend_from_slice(b"\xfa\x0aredis-bits\xc0\x40");
        f.extend_from_slice(b"\xfa\x05ctime\xc2\x7f\x94\x06\x6b");
        f.extend_from_slice(b"\xfa\x08used-mem\xc2\xa0\x54\x0e\x00");
        f.extend_from_slice(b"\xfa\x08aof-base\xc0\x00");
        f.extend_from_slice(b"\xfe\x00\xfb\x01\x00\x00\x01k\x01v");
        let t = trailer(crc64(0, &f), true);
        assert_eq!(t, *b"\xff\xe3\x30\x50\x11\x4c\x27\xc9\xa5");
    }

    // ----- interop with a real redis-server / redis-check-rdb ----------------

    fn have(cmd: &str) -> bool {
        std::process::Command::new(cmd)
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok()
    }

    /// Whether the tools are there; without them the test is skipped,
    /// unless CI=true, where that is a failure.
    fn tools_present(tools: &[&str]) -> bool {
        if tools.iter().all(|t| have(t)) {
            return true;
        }
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{tools:?} not found on PATH (required under CI=true)");
        }
        eprintln!("SKIPPED: {tools:?} not found on PATH");
        false
    }

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let d =
            std::env::temp_dir().join(format!("ringkv-rdb-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn redis_check_rdb_accepts_our_file() {
        if !tools_present(&["redis-check-rdb"]) {
            return;
        }
        struct Cleanup(std::path::PathBuf);
        impl Drop for Cleanup {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        let dir = temp_dir("check");
        let _cleanup = Cleanup(dir.clone());
        for (name, checksum) in [("dump.rdb", true), ("nocrc.rdb", false)] {
            let path = dir.join(name);
            std::fs::write(&path, build_file(checksum)).unwrap();
            let o = std::process::Command::new("redis-check-rdb")
                .arg(&path)
                .output()
                .unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
            assert!(o.status.success(), "redis-check-rdb {name} failed:\n{text}");
            assert!(text.contains("RDB looks OK"), "{name}:\n{text}");
            let keys = format!("{} keys read", samples().len() + 2);
            assert!(text.contains(&keys), "{name}: {text}");
            assert!(text.contains("3 expires"), "{name}: {text}");
        }
    }

    /// A RESP reply.
    #[derive(Debug, Clone, PartialEq)]
    enum Reply {
        Status(String),
        Error(String),
        Int(i64),
        Bulk(Option<Vec<u8>>),
        Array(Vec<Reply>),
    }

    struct Conn {
        r: std::io::BufReader<std::net::TcpStream>,
        w: std::net::TcpStream,
    }

    impl Conn {
        fn cmd(&mut self, args: &[&[u8]]) -> Reply {
            use std::io::Write;
            let mut m = format!("*{}\r\n", args.len()).into_bytes();
            for a in args {
                m.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
                m.extend_from_slice(a);
                m.extend_from_slice(b"\r\n");
            }
            self.w.write_all(&m).unwrap();
            self.read()
        }

        fn line(&mut self) -> String {
            use std::io::BufRead;
            let mut l = String::new();
            self.r.read_line(&mut l).unwrap();
            l.trim_end_matches("\r\n").to_string()
        }

        fn read(&mut self) -> Reply {
            use std::io::Read;
            let l = self.line();
            let (t, rest) = l.split_at(1);
            match t {
                "+" => Reply::Status(rest.into()),
                "-" => Reply::Error(rest.into()),
                ":" => Reply::Int(rest.parse().unwrap()),
                "$" => {
                    let n: i64 = rest.parse().unwrap();
                    if n < 0 {
                        return Reply::Bulk(None);
                    }
                    let mut b = vec![0u8; n as usize + 2];
                    self.r.read_exact(&mut b).unwrap();
                    b.truncate(n as usize);
                    Reply::Bulk(Some(b))
                }
                "*" => {
                    let n: usize = rest.parse().unwrap();
                    Reply::Array((0..n).map(|_| self.read()).collect())
                }
                _ => panic!("bad reply line {l:?}"),
            }
        }

        fn ok(&mut self, args: &[&[u8]]) {
            let r = self.cmd(args);
            assert!(
                matches!(r, Reply::Status(_) | Reply::Int(_)),
                "{:?} -> {r:?}",
                args.iter()
                    .map(|a| String::from_utf8_lossy(a))
                    .collect::<Vec<_>>()
            );
        }

        fn bulk(&mut self, args: &[&[u8]]) -> Vec<u8> {
            match self.cmd(args) {
                Reply::Bulk(Some(b)) => b,
                r => panic!("{r:?}"),
            }
        }

        fn strings(&mut self, args: &[&[u8]]) -> Vec<Vec<u8>> {
            match self.cmd(args) {
                Reply::Array(a) => a
                    .into_iter()
                    .map(|r| match r {
                        Reply::Bulk(Some(b)) => b,
                        r => panic!("{r:?}"),
                    })
                    .collect(),
                r => panic!("{r:?}"),
            }
        }
    }

    struct Server {
        child: std::process::Child,
        dir: std::path::PathBuf,
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn start_redis() -> (Server, Conn) {
        let dir = temp_dir("server");
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start redis-server");
        let server = Server { child, dir };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                let mut c = Conn {
                    r: std::io::BufReader::new(s.try_clone().unwrap()),
                    w: s,
                };
                if c.cmd(&[b"PING"]) == Reply::Status("PONG".into()) {
                    return (server, c);
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start on port {port}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Recreates `v` under `key` in Redis with ordinary commands, in our
    /// stored order (so compact encodings come out in the same order).
    fn build_in_redis(c: &mut Conn, key: &[u8], v: &Value) {
        c.ok(&[b"DEL", key]);
        let mut tmp = itoa::Buffer::new();
        let run = |c: &mut Conn, cmd: &[u8], args: Vec<Vec<u8>>, per: usize| {
            for chunk in args.chunks(per * 500) {
                let mut a: Vec<&[u8]> = vec![cmd, key];
                a.extend(chunk.iter().map(|x| x.as_slice()));
                c.ok(&a);
            }
        };
        match v {
            Value::Str(st) => {
                let b = st.as_bytes(&mut tmp).to_vec();
                c.ok(&[b"SET", key, &b]);
                if matches!(st, Str::Raw(_)) && b.len() <= 44 {
                    // Make it raw as ours is (APPEND converts).
                    c.ok(&[b"SET", key, &b[..b.len() - 1]]);
                    c.ok(&[b"APPEND", key, &b[b.len() - 1..]]);
                }
            }
            Value::List(l) => {
                let items = l.iter().map(|e| e.to_vec()).collect();
                run(c, b"RPUSH", items, 1);
            }
            Value::Hash(h) => {
                let items = h
                    .iter()
                    .flat_map(|(f, v)| [f.to_vec(), v.to_vec()])
                    .collect();
                run(c, b"HSET", items, 2);
            }
            Value::Set(st) => {
                let items = st.iter().map(|m| m.to_vec()).collect();
                run(c, b"SADD", items, 1);
            }
            Value::ZSet(z) => {
                let mut items = Vec::new();
                z.range(0, z.len(), false, |m, sc| {
                    items.push(crate::util::fmt_double(sc).into_bytes());
                    items.push(m.to_vec());
                });
                run(c, b"ZADD", items, 2);
            }
            Value::Stream(_) => unreachable!("streams are checked in rdb/stream.rs"),
        }
    }

    /// The value's contents in a canonical form, read through commands.
    fn contents(c: &mut Conn, key: &[u8]) -> Vec<Vec<u8>> {
        let t = match c.cmd(&[b"TYPE", key]) {
            Reply::Status(t) => t,
            r => panic!("{r:?}"),
        };
        let mut v = match t.as_str() {
            "string" => vec![c.bulk(&[b"GET", key])],
            "list" => c.strings(&[b"LRANGE", key, b"0", b"-1"]),
            "hash" => {
                let a = c.strings(&[b"HGETALL", key]);
                let mut pairs: Vec<Vec<u8>> = a
                    .chunks(2)
                    .map(|p| [p[0].as_slice(), b"=", p[1].as_slice()].concat())
                    .collect();
                pairs.sort();
                pairs
            }
            "set" => {
                let mut a = c.strings(&[b"SMEMBERS", key]);
                a.sort();
                a
            }
            "zset" => c.strings(&[b"ZRANGE", key, b"0", b"-1", b"WITHSCORES"]),
            t => panic!("type {t}"),
        };
        v.insert(0, t.into_bytes());
        v
    }

    #[test]
    fn dump_payloads_match_redis() {
        if !tools_present(&["redis-server"]) {
            return;
        }
        let (_server, mut c) = start_redis();
        // Deep-check every listpack/intset that RESTORE loads.
        c.ok(&[b"CONFIG", b"SET", b"sanitize-dump-payload", b"yes"]);
        let mut differences = Vec::new();
        for (name, v, enc) in samples() {
            let key = name.as_bytes();
            let fill: &[u8] = if name == "list:fill4" { b"4" } else { b"-2" };
            c.ok(&[b"CONFIG", b"SET", b"list-max-listpack-size", fill]);
            build_in_redis(&mut c, key, &v);
            let theirs = c.bulk(&[b"DUMP", key]);
            let ours = dump_payload(&v, true);
            // Hashtable orders differ by design; the default-fill list's
            // node boundaries follow our own byte accounting.
            let exact_expected = !matches!(enc, "hashtable" | "skiplist") && name != "list:large";
            if theirs != ours {
                differences.push(format!(
                    "{name}: redis {} bytes, ours {} bytes",
                    theirs.len(),
                    ours.len()
                ));
                if exact_expected {
                    panic!(
                        "{name}: DUMP differs\n redis: {:02x?}\n ours:  {:02x?}",
                        theirs, ours
                    );
                }
            }
            // Whatever the bytes, Redis must load ours to the same value
            // in the same encoding.
            let mine = [b"restored:".as_slice(), key].concat();
            let r = c.cmd(&[b"RESTORE", &mine, b"0", &ours, b"REPLACE"]);
            assert_eq!(r, Reply::Status("OK".into()), "{name}");
            assert_eq!(contents(&mut c, &mine), contents(&mut c, key), "{name}");
            assert_eq!(
                c.bulk(&[b"OBJECT", b"ENCODING", &mine]),
                enc.as_bytes(),
                "{name}"
            );
            // Uncompressed payloads load too.
            let plain = dump_payload(&v, false);
            let r = c.cmd(&[b"RESTORE", &mine, b"0", &plain, b"REPLACE"]);
            assert_eq!(r, Reply::Status("OK".into()), "{name} uncompressed");
            assert_eq!(contents(&mut c, &mine), contents(&mut c, key), "{name}");
        }
        // LZF: Redis's own compressor gives the same bytes.
        c.ok(&[b"CONFIG", b"SET", b"list-max-listpack-size", b"-2"]);
        for (i, v) in lzf_inputs().into_iter().enumerate() {
            let key = format!("lzf:{i}").into_bytes();
            c.ok(&[b"SET", &key, &v]);
            let theirs = c.bulk(&[b"DUMP", &key]);
            let ours = dump_payload(&Value::Str(Str::from_vec(v.clone())), true);
            assert!(
                theirs == ours,
                "lzf input {i} ({} bytes): DUMP differs\n redis: {:02x?}\n ours:  {:02x?}",
                v.len(),
                theirs,
                ours
            );
        }
        if !differences.is_empty() {
            eprintln!("DUMP differences (allowed): {differences:#?}");
        }
    }

    #[test]
    fn pieces_concatenate_to_the_whole_value() {
        let mut h = hash::Hash::new();
        let mut st = set::Set::new();
        let mut z = crate::types::zset::ZSet::new();
        let mut l = list::List::new(-2);
        for i in 0..5000 {
            let f = format!("field:{i}");
            h.set(f.as_bytes(), format!("v{i}").as_bytes(), 512, 64);
            st.add(f.as_bytes(), 512);
            z.add(
                f.as_bytes(),
                i as f64 * 0.5,
                crate::types::zset::AddFlags::default(),
                crate::types::zset::Limits {
                    max_entries: 128,
                    max_value: 64,
                },
            );
            l.push_back(f.as_bytes());
            l.push_back(i.to_string().as_bytes());
        }
        for i in 0..60_000 {
            l.push_back(format!("more:{i}").as_bytes());
        }
        let mut sm = crate::types::stream::Stream::new(4096, 100);
        for i in 1..=20_000u64 {
            let v = i.to_string();
            sm.append(
                crate::types::stream::StreamId::new(i, 0),
                &[(b"f", v.as_bytes())],
            );
        }
        sm.groups.insert(
            b"g".to_vec(),
            crate::types::stream::Group::new(crate::types::stream::StreamId::new(7, 0), 7),
        );
        for v in [
            Value::Hash(Box::new(h)),
            Value::Set(Box::new(st)),
            Value::ZSet(Box::new(z)),
            Value::List(Box::new(l)),
            Value::Stream(Box::new(sm)),
        ] {
            assert!(piece_units(&v).is_some(), "{}", v.type_name());
            let mut whole = Vec::new();
            write_value(&mut whole, &v, true);
            let mut pieces = Vec::new();
            let mut pos = None;
            let mut n = 0;
            while let Some(next) = write_value_piece(&mut pieces, &v, true, pos) {
                pos = Some(next);
                n += 1;
            }
            assert!(n > 1);
            assert_eq!(whole, pieces, "{}", v.type_name());
        }
    }
}
