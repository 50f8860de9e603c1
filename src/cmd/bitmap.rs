//! The bitmap family (Redis's bitops.c): SETBIT, GETBIT, BITCOUNT, BITPOS,
//! BITOP, BITFIELD and BITFIELD_RO, on plain string values.
//!
//! Bit 0 is the most significant bit of byte 0. Writes grow the string
//! with zero bytes up to the highest bit they touch; offsets are limited so
//! that the string never exceeds `proto-max-bulk-len`. Counting, searching
//! and BITOP work on 64-bit words, a byte at a time only at the edges.
//! BITOP on keys spread over several shards runs under one [`Shard::tx`].

use super::{CmdSpec, Ctx, Run, SrvCtx, DENYOOM, FAST, READONLY, WRITE};
use crate::resp::Out;
use crate::shard::keyspace::Keyspace;
use crate::shard::Shard;
use crate::types::{Str, Value};
use crate::util::{eq_ic, parse_i64};

#[allow(clippy::too_many_arguments)]
const fn spec(
    name: &'static str,
    arity: i32,
    flags: u32,
    keys: (i32, i32, i32),
    acl: &'static str,
    since: &'static str,
    run: Run,
    summary: &'static str,
) -> CmdSpec {
    CmdSpec {
        name,
        arity,
        flags,
        first_key: keys.0,
        last_key: keys.1,
        step: keys.2,
        group: "bitmap",
        acl,
        summary,
        since,
        run,
        subs: &[],
        getkeys: None,
    }
}

const ONE: (i32, i32, i32) = (1, 1, 1);

#[rustfmt::skip]
pub static COMMANDS: &[CmdSpec] = &[
    spec("bitcount", -2, READONLY, ONE, "@read @bitmap @slow", "2.6.0", Run::Key(bitcount), "Count set bits in a string"),
    spec("bitfield", -2, WRITE | DENYOOM, ONE, "@write @bitmap @slow", "3.2.0", Run::Key(bitfield), "Perform arbitrary bitfield integer operations on strings"),
    spec("bitfield_ro", -2, READONLY | FAST, ONE, "@read @bitmap @fast", "6.0.0", Run::Key(bitfield_ro), "Perform arbitrary bitfield integer operations on strings. Read-only variant of BITFIELD"),
    spec("bitop", -4, WRITE | DENYOOM, (2, -1, 1), "@write @bitmap @slow", "2.6.0", Run::KeyMulti(bitop, bitop_multi), "Perform bitwise operations between strings"),
    spec("bitpos", -3, READONLY, ONE, "@read @bitmap @slow", "2.8.7", Run::Key(bitpos), "Find first bit set or clear in a string"),
    spec("getbit", 3, READONLY | FAST, ONE, "@read @bitmap @fast", "2.2.0", Run::Key(getbit), "Returns the bit value at offset in the string value stored at key"),
    spec("setbit", 4, WRITE | DENYOOM, ONE, "@write @bitmap @slow", "2.2.0", Run::Key(setbit), "Sets or clears the bit at offset in the string value stored at key"),
];

const E_OFFSET: &str = "bit offset is not an integer or out of range";
const E_BIT: &str = "bit is not an integer or out of range";
const E_TYPE: &str =
    "Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";

// ----- word-at-a-time primitives ----------------------------------------------

/// Pure bit-string algorithms, shared with the unit tests.
pub(crate) mod bits {
    /// Number of set bits in `p`, eight bytes at a time.
    pub fn popcount(p: &[u8]) -> u64 {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("popcnt") {
                // SAFETY: the CPU supports POPCNT (checked just above), the
                // only requirement of this function's target feature.
                return unsafe { popcount_hw(p) };
            }
        }
        popcount_words(p)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "popcnt")]
    unsafe fn popcount_hw(p: &[u8]) -> u64 {
        popcount_words(p)
    }

    #[inline(always)]
    fn popcount_words(p: &[u8]) -> u64 {
        let mut chunks = p.chunks_exact(32);
        let (mut a, mut b, mut c, mut d) = (0u64, 0u64, 0u64, 0u64);
        for ch in &mut chunks {
            let w = |i: usize| u64::from_ne_bytes(ch[i..i + 8].try_into().unwrap());
            a += w(0).count_ones() as u64;
            b += w(8).count_ones() as u64;
            c += w(16).count_ones() as u64;
            d += w(24).count_ones() as u64;
        }
        let rest = chunks.remainder();
        let mut words = rest.chunks_exact(8);
        for ch in &mut words {
            a += u64::from_ne_bytes(ch.try_into().unwrap()).count_ones() as u64;
        }
        for &x in words.remainder() {
            b += x.count_ones() as u64;
        }
        a + b + c + d
    }

    /// Set bits among bits `sb..=eb` of `p` (both within `p`).
    pub fn count_range(p: &[u8], sb: u64, eb: u64) -> u64 {
        let (s, e) = ((sb >> 3) as usize, (eb >> 3) as usize);
        let head = 0xFFu8 >> (sb & 7);
        let tail = 0xFFu8 << (7 - (eb & 7));
        if s == e {
            return (p[s] & head & tail).count_ones() as u64;
        }
        (p[s] & head).count_ones() as u64
            + popcount(&p[s + 1..e])
            + (p[e] & tail).count_ones() as u64
    }

    /// The first bit equal to `bit` among bits `sb..=eb` of `p`.
    pub fn find_range(p: &[u8], sb: u64, eb: u64, bit: bool) -> Option<u64> {
        let flip = if bit { 0u8 } else { 0xFF };
        // Searching ones in `x ^ flip` finds `bit`s in `x`.
        let (s, e) = ((sb >> 3) as usize, (eb >> 3) as usize);
        let head = 0xFFu8 >> (sb & 7);
        let tail = 0xFFu8 << (7 - (eb & 7));
        let first = (p[s] ^ flip) & head & if s == e { tail } else { 0xFF };
        if first != 0 {
            return Some(s as u64 * 8 + first.leading_zeros() as u64);
        }
        if s == e {
            return None;
        }
        let mid = &p[s + 1..e];
        let wflip = if bit { 0u64 } else { u64::MAX };
        let mut words = mid.chunks_exact(8);
        let mut at = s + 1;
        for ch in &mut words {
            let w = u64::from_be_bytes(ch.try_into().unwrap()) ^ wflip;
            if w != 0 {
                return Some(at as u64 * 8 + w.leading_zeros() as u64);
            }
            at += 8;
        }
        for &x in words.remainder() {
            let x = x ^ flip;
            if x != 0 {
                return Some(at as u64 * 8 + x.leading_zeros() as u64);
            }
            at += 1;
        }
        let last = (p[e] ^ flip) & tail;
        (last != 0).then(|| e as u64 * 8 + last.leading_zeros() as u64)
    }

    #[derive(Clone, Copy, Debug, PartialEq)]
    pub enum Op {
        And,
        Or,
        Xor,
        Not,
    }

    /// BITOP: the result of `op` over `srcs` (shorter sources read as
    /// zero-padded to the longest).
    pub fn bitop(op: Op, srcs: &[&[u8]]) -> Vec<u8> {
        let maxlen = srcs.iter().map(|s| s.len()).max().unwrap_or(0);
        let mut res = vec![0u8; maxlen];
        if let Some(first) = srcs.first() {
            res[..first.len()].copy_from_slice(first);
        }
        match op {
            Op::Not => {
                for x in &mut res {
                    *x = !*x;
                }
            }
            Op::And => {
                for s in &srcs[1..] {
                    let n = s.len();
                    combine(&mut res[..n], s, |a, b| a & b);
                    res[n..].fill(0);
                }
            }
            Op::Or => {
                for s in &srcs[1..] {
                    combine(&mut res[..s.len()], s, |a, b| a | b);
                }
            }
            Op::Xor => {
                for s in &srcs[1..] {
                    combine(&mut res[..s.len()], s, |a, b| a ^ b);
                }
            }
        }
        res
    }

    /// dst = f(dst, src) on 64-bit words (same lengths).
    #[inline(always)]
    fn combine(dst: &mut [u8], src: &[u8], f: impl Fn(u64, u64) -> u64) {
        let mut d = dst.chunks_exact_mut(8);
        let mut s = src.chunks_exact(8);
        for (a, b) in (&mut d).zip(&mut s) {
            let x = f(
                u64::from_ne_bytes((*a).try_into().unwrap()),
                u64::from_ne_bytes(b.try_into().unwrap()),
            );
            a.copy_from_slice(&x.to_ne_bytes());
        }
        for (a, b) in d.into_remainder().iter_mut().zip(s.remainder()) {
            *a = f(*a as u64, *b as u64) as u8;
        }
    }

    /// The unsigned `bits`-wide field at bit `off` (reads past the end of
    /// `p` as zeros).
    pub fn get_field(p: &[u8], off: u64, bits: u32) -> u64 {
        let mut v = 0u64;
        for i in 0..bits as u64 {
            let o = off + i;
            let byte = p.get((o >> 3) as usize).copied().unwrap_or(0);
            v = (v << 1) | ((byte >> (7 - (o & 7))) & 1) as u64;
        }
        v
    }

    /// Stores the low `bits` bits of `v` at bit `off` (within `p`).
    pub fn set_field(p: &mut [u8], off: u64, bits: u32, v: u64) {
        for i in 0..bits as u64 {
            let o = off + i;
            let bit = ((v >> (bits as u64 - 1 - i)) & 1) as u8;
            let sh = 7 - (o & 7);
            let b = &mut p[(o >> 3) as usize];
            *b = (*b & !(1 << sh)) | (bit << sh);
        }
    }

    /// Sign-extends a `bits`-wide field.
    pub fn signed(v: u64, bits: u32) -> i64 {
        if bits == 64 {
            v as i64
        } else {
            ((v << (64 - bits)) as i64) >> (64 - bits)
        }
    }

    #[derive(Clone, Copy, Debug, PartialEq)]
    pub enum Overflow {
        Wrap,
        Sat,
        Fail,
    }

    /// Which way `v + incr` leaves a field's range: 1 above, -1 below, 0
    /// inside. Computed as Redis's `check[Un]signedBitfieldOverflow` does,
    /// 64-bit wrapping arithmetic included: a signed SET of a value so
    /// negative that `max - value` wraps (e.g. i64::MIN into an i32) counts
    /// as overflowing upwards, so SAT stores the maximum, as in Redis.
    fn overflow_dir(v: i128, incr: i64, bits: u32, signed: bool) -> i32 {
        if signed {
            let value = v as i64;
            let max: i64 = if bits == 64 {
                i64::MAX
            } else {
                (1i64 << (bits - 1)) - 1
            };
            let min = -max - 1;
            let maxincr = (max as u64).wrapping_sub(value as u64) as i64;
            let minincr = min.wrapping_sub(value);
            if value > max
                || (bits != 64 && incr > maxincr)
                || (value >= 0 && incr > 0 && incr > maxincr)
            {
                1
            } else if value < min
                || (bits != 64 && incr < minincr)
                || (value < 0 && incr < 0 && incr < minincr)
            {
                -1
            } else {
                0
            }
        } else {
            let value = v as u64;
            let max = if bits == 64 {
                u64::MAX
            } else {
                (1u64 << bits) - 1
            };
            let maxincr = max.wrapping_sub(value) as i64;
            let minincr = value.wrapping_neg() as i64;
            if value > max || (incr > 0 && incr > maxincr) {
                1
            } else if incr < 0 && incr < minincr {
                -1
            } else {
                0
            }
        }
    }

    /// Adds `incr` to the field value `v` (for SET: the new value with
    /// `incr` 0; an unsigned SET passes the argument's 64-bit pattern).
    /// Returns the field's new bit pattern, or None when FAIL refuses.
    pub fn add_field(v: i128, incr: i64, bits: u32, signed: bool, ow: Overflow) -> Option<u64> {
        let mask = if bits == 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        };
        let (min, max): (i128, i128) = if signed {
            (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
        } else {
            (0, (1i128 << bits) - 1)
        };
        let sum = v + incr as i128;
        let fitted = match (overflow_dir(v, incr, bits, signed), ow) {
            (0, _) => sum,
            (_, Overflow::Fail) => return None,
            // The low bits of the two's complement sum.
            (_, Overflow::Wrap) => sum,
            (d, Overflow::Sat) if d > 0 => max,
            (_, Overflow::Sat) => min,
        };
        Some(fitted as u128 as u64 & mask)
    }
}

use bits::{Op, Overflow};

// ----- argument parsing -----------------------------------------------------

/// Redis's `getBitOffsetFromArgument`: a bit offset, or `#n` (n fields of
/// `bits` bits) when `bits` is given.
fn parse_offset(arg: &[u8], bits: Option<u32>, max_bulk: usize) -> Option<u64> {
    let (hash, digits) = match (arg.first(), bits) {
        (Some(b'#'), Some(_)) => (true, &arg[1..]),
        _ => (false, arg),
    };
    let mut off = parse_i64(digits)?;
    if hash {
        // C's signed multiply; a wrapped result is caught by the checks.
        off = off.wrapping_mul(bits.unwrap_or(1) as i64);
    }
    if off < 0 || (off >> 3) as u64 >= max_bulk as u64 {
        return None;
    }
    Some(off as u64)
}

/// A bitfield type: (signed, bits).
fn parse_type(arg: &[u8]) -> Option<(bool, u32)> {
    let signed = match arg.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return None,
    };
    // strlen() stops at a NUL byte, as Redis reads it.
    let rest = &arg[1..];
    let rest = &rest[..memchr::memchr(0, rest).unwrap_or(rest.len())];
    let n = parse_i64(rest)?;
    if n < 1 || (signed && n > 64) || (!signed && n > 63) {
        return None;
    }
    Some((signed, n as u32))
}

/// The string at `key` for reading: Ok(None) when missing, Err on wrong type.
fn read_str<'a>(ks: &'a mut Keyspace, db: usize, key: &[u8]) -> Result<Option<&'a Str>, ()> {
    match ks.get(db, key) {
        None => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s)),
        Some(_) => Err(()),
    }
}

/// Redis's `lookupStringForBitCommand`: the string at `key` grown with
/// zeros so that bit `maxbit` exists (created when missing). Returns the
/// buffer, whether it was created or grown, and whether it was created
/// (a creation is already counted as a write); None on wrong type.
fn string_for_bits<'a>(
    ks: &'a mut Keyspace,
    db: usize,
    key: &[u8],
    maxbit: u64,
) -> Option<(&'a mut Vec<u8>, bool, bool)> {
    let need = (maxbit >> 3) as usize + 1;
    let exists = match ks.get_mut(db, key) {
        None => false,
        Some(Value::Str(_)) => true,
        Some(_) => return None,
    };
    if !exists {
        ks.set(db, key, Value::Str(Str::Raw(vec![0u8; need])), false);
    }
    let Some(Value::Str(s)) = ks.get_mut(db, key) else {
        return None;
    };
    let buf = s.make_raw();
    let grown = !exists || buf.len() < need;
    if buf.len() < need {
        buf.resize(need, 0);
    }
    Some((buf, grown, !exists))
}

// ----- SETBIT / GETBIT --------------------------------------------------------

fn setbit(ctx: &mut Ctx, args: &[&[u8]]) {
    let Some(off) = parse_offset(args[2], None, ctx.ks.enc.proto_max_bulk_len) else {
        return ctx.out.err(E_OFFSET);
    };
    let on = match parse_i64(args[3]) {
        Some(v @ (0 | 1)) => v as u8,
        _ => return ctx.out.err(E_BIT),
    };
    let Some((buf, grown, created)) = string_for_bits(ctx.ks, ctx.db, args[1], off) else {
        return ctx.out.wrongtype();
    };
    let (byte, sh) = ((off >> 3) as usize, 7 - (off & 7));
    let old = (buf[byte] >> sh) & 1;
    buf[byte] = (buf[byte] & !(1 << sh)) | (on << sh);
    if (old != on || grown) && !created {
        ctx.ks.touch_write(1);
    }
    if old != on || grown || created {
        ctx.ks
            .notify(crate::notify::STRING, "setbit", ctx.db, args[1]);
    }
    ctx.out.int(old as i64);
}

fn getbit(ctx: &mut Ctx, args: &[&[u8]]) {
    let Some(off) = parse_offset(args[2], None, ctx.ks.enc.proto_max_bulk_len) else {
        return ctx.out.err(E_OFFSET);
    };
    match read_str(ctx.ks, ctx.db, args[1]) {
        Err(()) => ctx.out.wrongtype(),
        Ok(None) => ctx.out.int(0),
        Ok(Some(s)) => {
            let mut tmp = itoa::Buffer::new();
            let p = s.as_bytes(&mut tmp);
            let bit = p
                .get((off >> 3) as usize)
                .map_or(0, |b| (b >> (7 - (off & 7))) & 1);
            ctx.out.int(bit as i64);
        }
    }
}

// ----- BITCOUNT / BITPOS ------------------------------------------------------

/// Resolves a start/end pair (negative = from the end) over `total` units,
/// as BITCOUNT and BITPOS clamp it. None when empty.
fn clamp_range(mut start: i64, mut end: i64, total: i64) -> Option<(i64, i64)> {
    if start < 0 {
        start += total;
    }
    if end < 0 {
        end += total;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= total {
        end = total - 1;
    }
    (start <= end).then_some((start, end))
}

/// BYTE (false) or BIT (true); None for anything else.
fn parse_unit(arg: &[u8]) -> Option<bool> {
    if eq_ic(arg, "bit") {
        Some(true)
    } else if eq_ic(arg, "byte") {
        Some(false)
    } else {
        None
    }
}

fn bitcount(ctx: &mut Ctx, args: &[&[u8]]) {
    let s = match read_str(ctx.ks, ctx.db, args[1]) {
        Err(()) => return ctx.out.wrongtype(),
        Ok(None) => return ctx.out.int(0),
        Ok(Some(s)) => s,
    };
    let mut tmp = itoa::Buffer::new();
    let p = s.as_bytes(&mut tmp);
    let len = p.len() as i64;
    let (sb, eb) = match args.len() {
        2 => (0, len * 8 - 1),
        4 | 5 => {
            let (Some(start), Some(end)) = (parse_i64(args[2]), parse_i64(args[3])) else {
                return ctx.out.not_int();
            };
            if start < 0 && end < 0 && start > end {
                return ctx.out.int(0);
            }
            let isbit = match args.get(4) {
                None => false,
                Some(a) => match parse_unit(a) {
                    Some(b) => b,
                    None => return ctx.out.syntax(),
                },
            };
            let total = if isbit { len * 8 } else { len };
            match clamp_range(start, end, total) {
                None => return ctx.out.int(0),
                Some((s, e)) if isbit => (s, e),
                Some((s, e)) => (s * 8, e * 8 + 7),
            }
        }
        _ => return ctx.out.syntax(),
    };
    if sb > eb || len == 0 {
        return ctx.out.int(0);
    }
    ctx.out
        .int(bits::count_range(p, sb as u64, eb as u64) as i64);
}

fn bitpos(ctx: &mut Ctx, args: &[&[u8]]) {
    let bit = match parse_i64(args[2]) {
        None => return ctx.out.not_int(),
        Some(b @ (0 | 1)) => b == 1,
        Some(_) => return ctx.out.err("The bit argument must be 1 or 0."),
    };
    let s = match read_str(ctx.ks, ctx.db, args[1]) {
        Err(()) => return ctx.out.wrongtype(),
        Ok(None) => return ctx.out.int(if bit { -1 } else { 0 }),
        Ok(Some(s)) => s,
    };
    let mut tmp = itoa::Buffer::new();
    let p = s.as_bytes(&mut tmp);
    let len = p.len() as i64;
    let mut end_given = false;
    let range = match args.len() {
        3 => (len > 0).then(|| (0, len * 8 - 1)),
        4..=6 => {
            let Some(start) = parse_i64(args[3]) else {
                return ctx.out.not_int();
            };
            let isbit = match args.get(5) {
                None => false,
                Some(a) => match parse_unit(a) {
                    Some(b) => b,
                    None => return ctx.out.syntax(),
                },
            };
            let end = match args.get(4) {
                Some(a) => match parse_i64(a) {
                    Some(e) => {
                        end_given = true;
                        e
                    }
                    None => return ctx.out.not_int(),
                },
                None => i64::MAX,
            };
            let total = if isbit { len * 8 } else { len };
            match clamp_range(start, end, total) {
                None => None,
                Some((s, e)) if isbit => Some((s, e)),
                Some((s, e)) => Some((s * 8, e * 8 + 7)),
            }
        }
        _ => return ctx.out.syntax(),
    };
    let Some((sb, eb)) = range else {
        return ctx.out.int(-1);
    };
    let pos = match bits::find_range(p, sb as u64, eb as u64, bit) {
        Some(pos) => pos as i64,
        // Looking for a clear bit with no end given: the string reads as
        // followed by zeros, so the answer is the first bit past it.
        None if !bit && !end_given => (eb + 1 + 7) / 8 * 8,
        None => -1,
    };
    ctx.out.int(pos);
}

/// Keys of one shard with their positions in the command.
type KeyGroup = Vec<(usize, Vec<u8>)>;

// ----- BITOP ----------------------------------------------------------------

/// Parses BITOP's operation and source count. On error replies and
/// returns None.
fn bitop_parse(out: &mut Out, args: &[&[u8]]) -> Option<Op> {
    let op = if eq_ic(args[1], "and") {
        Op::And
    } else if eq_ic(args[1], "or") {
        Op::Or
    } else if eq_ic(args[1], "xor") {
        Op::Xor
    } else if eq_ic(args[1], "not") {
        Op::Not
    } else {
        out.syntax();
        return None;
    };
    if op == Op::Not && args.len() != 4 {
        out.err("BITOP NOT must be called with a single source key.");
        return None;
    }
    Some(op)
}

/// Copies the sources' bytes out (None: missing key; Err: wrong type).
fn read_sources(ks: &mut Keyspace, db: usize, keys: &[&[u8]]) -> Result<Vec<Option<Vec<u8>>>, ()> {
    let mut v = Vec::with_capacity(keys.len());
    for k in keys {
        v.push(read_str(ks, db, k)?.map(|s| s.as_bytes(&mut itoa::Buffer::new()).to_vec()));
    }
    Ok(v)
}

/// Stores BITOP's result (an empty one deletes the destination) and
/// returns the reply.
fn bitop_store(ks: &mut Keyspace, db: usize, dst: &[u8], res: Vec<u8>) -> i64 {
    let n = res.len() as i64;
    if res.is_empty() {
        if ks.delete(db, dst) {
            ks.notify(crate::notify::GENERIC, "del", db, dst);
        }
    } else {
        ks.set(db, dst, Value::Str(Str::Raw(res)), false);
        ks.notify(crate::notify::STRING, "set", db, dst);
    }
    n
}

fn bitop_compute(op: Op, srcs: &[Option<Vec<u8>>]) -> Vec<u8> {
    let refs: Vec<&[u8]> = srcs.iter().map(|s| s.as_deref().unwrap_or(&[])).collect();
    bits::bitop(op, &refs)
}

fn bitop(ctx: &mut Ctx, args: &[&[u8]]) {
    let Some(op) = bitop_parse(&mut ctx.out, args) else {
        return;
    };
    let Ok(srcs) = read_sources(ctx.ks, ctx.db, &args[3..]) else {
        return ctx.out.wrongtype();
    };
    let res = bitop_compute(op, &srcs);
    let n = bitop_store(ctx.ks, ctx.db, args[2], res);
    ctx.out.int(n);
}

fn bitop_multi(ctx: &mut SrvCtx, args: &[&[u8]]) {
    let Some(op) = bitop_parse(&mut ctx.out, args) else {
        return;
    };
    let db = ctx.conn.db;
    let now = crate::util::now_ms();
    let dst = args[2].to_vec();
    let keys: Vec<Vec<u8>> = args[3..].iter().map(|k| k.to_vec()).collect();
    let ds = ctx.sh.shard_of(&dst);
    let mut shards: Vec<usize> = keys.iter().map(|k| ctx.sh.shard_of(k)).collect();
    shards.push(ds);
    shards.sort_unstable();
    shards.dedup();
    let r = ctx.sh.tx(&shards, move |tx| {
        // Read each shard's sources in one visit, keeping argument order.
        let mut srcs: Vec<Option<Vec<u8>>> = vec![None; keys.len()];
        let mut groups: Vec<(usize, KeyGroup)> = Vec::new();
        for (i, k) in keys.into_iter().enumerate() {
            let s = tx.sh.shard_of(&k);
            match groups.iter_mut().find(|g| g.0 == s) {
                Some(g) => g.1.push((i, k)),
                None => groups.push((s, vec![(i, k)])),
            }
        }
        for (s, group) in groups {
            let got = tx.run(s, move |sh: &mut Shard| {
                sh.ks.now = now;
                let mut v = Vec::with_capacity(group.len());
                for (i, k) in group {
                    v.push((
                        i,
                        read_str(&mut sh.ks, db, &k)?
                            .map(|s| s.as_bytes(&mut itoa::Buffer::new()).to_vec()),
                    ));
                }
                Ok::<_, ()>(v)
            })?;
            for (i, v) in got {
                srcs[i] = v;
            }
        }
        let res = bitop_compute(op, &srcs);
        Ok(tx.run(ds, move |sh: &mut Shard| {
            sh.ks.now = now;
            bitop_store(&mut sh.ks, db, &dst, res)
        }))
    });
    match r {
        Ok(n) => ctx.out.int(n),
        Err(()) => ctx.out.wrongtype(),
    }
}

// ----- BITFIELD ---------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq)]
enum FieldOp {
    Get,
    Set(i64),
    Incr(i64),
}

#[derive(Clone, Copy, Debug)]
struct Field {
    op: FieldOp,
    signed: bool,
    bits: u32,
    off: u64,
    ow: Overflow,
}

/// Parses BITFIELD's operations. On error returns the reply's text.
fn bitfield_parse(args: &[&[u8]], max_bulk: usize) -> Result<Vec<Field>, &'static str> {
    let mut ops = Vec::new();
    let mut ow = Overflow::Wrap;
    let mut j = 2;
    while j < args.len() {
        let rem = args.len() - j - 1;
        let sub = args[j];
        let kind = if eq_ic(sub, "get") && rem >= 2 {
            0
        } else if eq_ic(sub, "set") && rem >= 3 {
            1
        } else if eq_ic(sub, "incrby") && rem >= 3 {
            2
        } else if eq_ic(sub, "overflow") && rem >= 1 {
            let t = args[j + 1];
            ow = if eq_ic(t, "wrap") {
                Overflow::Wrap
            } else if eq_ic(t, "sat") {
                Overflow::Sat
            } else if eq_ic(t, "fail") {
                Overflow::Fail
            } else {
                return Err("Invalid OVERFLOW type specified");
            };
            j += 2;
            continue;
        } else {
            return Err("syntax error");
        };
        let Some((signed, bits)) = parse_type(args[j + 1]) else {
            return Err(E_TYPE);
        };
        let Some(off) = parse_offset(args[j + 2], Some(bits), max_bulk) else {
            return Err(E_OFFSET);
        };
        let op = match kind {
            0 => FieldOp::Get,
            _ => {
                let Some(v) = parse_i64(args[j + 3]) else {
                    return Err("value is not an integer or out of range");
                };
                if kind == 1 {
                    FieldOp::Set(v)
                } else {
                    FieldOp::Incr(v)
                }
            }
        };
        ops.push(Field {
            op,
            signed,
            bits,
            off,
            ow,
        });
        j += if kind == 0 { 3 } else { 4 };
    }
    Ok(ops)
}

fn reply_field(out: &mut Out, v: u64, f: &Field) {
    if f.signed {
        out.int(bits::signed(v, f.bits));
    } else {
        out.int(v as i64);
    }
}

fn bitfield_generic(ctx: &mut Ctx, args: &[&[u8]], ro: bool) {
    let ops = match bitfield_parse(args, ctx.ks.enc.proto_max_bulk_len) {
        Ok(ops) => ops,
        Err(e) => return ctx.out.err(e),
    };
    let writes = ops.iter().any(|f| f.op != FieldOp::Get);
    if !writes {
        let s = match read_str(ctx.ks, ctx.db, args[1]) {
            Err(()) => return ctx.out.wrongtype(),
            Ok(s) => s,
        };
        let mut tmp = itoa::Buffer::new();
        let p: &[u8] = s.map_or(&[], |s| s.as_bytes(&mut tmp));
        ctx.out.array(ops.len());
        for f in &ops {
            reply_field(&mut ctx.out, bits::get_field(p, f.off, f.bits), f);
        }
        return;
    }
    if ro {
        return ctx.out.err("BITFIELD_RO only supports the GET subcommand");
    }
    let maxbit = ops
        .iter()
        .filter(|f| f.op != FieldOp::Get)
        .map(|f| f.off + f.bits as u64 - 1)
        .max()
        .unwrap_or(0);
    let Some((buf, grown, created)) = string_for_bits(ctx.ks, ctx.db, args[1], maxbit) else {
        return ctx.out.wrongtype();
    };
    ctx.out.array(ops.len());
    let mut changes = 0u64;
    for f in &ops {
        let old = bits::get_field(buf, f.off, f.bits);
        let (new, reply) = match f.op {
            FieldOp::Get => {
                reply_field(&mut ctx.out, old, f);
                continue;
            }
            FieldOp::Set(v) => {
                let v = if f.signed {
                    v as i128
                } else {
                    v as u64 as i128
                };
                (bits::add_field(v, 0, f.bits, f.signed, f.ow), old)
            }
            FieldOp::Incr(by) => {
                let cur = if f.signed {
                    bits::signed(old, f.bits) as i128
                } else {
                    old as i128
                };
                let n = bits::add_field(cur, by, f.bits, f.signed, f.ow);
                (n, n.unwrap_or(0))
            }
        };
        match new {
            None => ctx.out.null(),
            Some(new) => {
                reply_field(&mut ctx.out, reply, f);
                bits::set_field(buf, f.off, f.bits, new);
                if grown || new != old {
                    changes += 1;
                }
            }
        }
    }
    // A created key was already counted once by `set`.
    ctx.ks
        .touch_write(changes - (created && changes > 0) as u64);
    if changes > 0 {
        ctx.ks
            .notify(crate::notify::STRING, "setbit", ctx.db, args[1]);
    }
}

fn bitfield(ctx: &mut Ctx, args: &[&[u8]]) {
    bitfield_generic(ctx, args, false);
}

fn bitfield_ro(ctx: &mut Ctx, args: &[&[u8]]) {
    bitfield_generic(ctx, args, true);
}

#[cfg(test)]
mod tests {
    use super::bits::*;
    use super::*;
    use crate::cmd::run_keyed;
    use rand::{Rng, SeedableRng};

    fn run(ks: &mut Keyspace, args: &[&str]) -> String {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        String::from_utf8_lossy(&run_keyed(ks, 0, false, &a)).into_owned()
    }

    fn naive_bit(p: &[u8], i: u64) -> bool {
        (p[(i >> 3) as usize] >> (7 - (i & 7))) & 1 == 1
    }

    #[test]
    fn count_and_find_match_a_bit_loop() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..3000 {
            let len = rng.gen_range(1..80);
            let dense = rng.gen_range(0..4);
            let p: Vec<u8> = (0..len)
                .map(|_| {
                    let b: u8 = match dense {
                        0 => 0,
                        1 => 0xFF,
                        _ => rng.gen(),
                    };
                    if rng.gen_range(0..10) == 0 {
                        b ^ (1 << rng.gen_range(0..8))
                    } else {
                        b
                    }
                })
                .collect();
            let nbits = len as u64 * 8;
            let sb = rng.gen_range(0..nbits);
            let eb = rng.gen_range(sb..nbits);
            let want = (sb..=eb).filter(|&i| naive_bit(&p, i)).count() as u64;
            assert_eq!(count_range(&p, sb, eb), want);
            for bit in [false, true] {
                let want = (sb..=eb).find(|&i| naive_bit(&p, i) == bit);
                assert_eq!(find_range(&p, sb, eb, bit), want, "{p:?} {sb} {eb} {bit}");
            }
            assert_eq!(popcount(&p), p.iter().map(|b| b.count_ones() as u64).sum());
        }
    }

    #[test]
    fn bitop_matches_bytewise_model() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for _ in 0..500 {
            let n = rng.gen_range(1..5);
            let srcs: Vec<Vec<u8>> = (0..n)
                .map(|_| (0..rng.gen_range(0..70)).map(|_| rng.gen()).collect())
                .collect();
            let refs: Vec<&[u8]> = srcs.iter().map(|s| s.as_slice()).collect();
            let max = srcs.iter().map(|s| s.len()).max().unwrap();
            for op in [Op::And, Op::Or, Op::Xor, Op::Not] {
                let used = if op == Op::Not { &refs[..1] } else { &refs[..] };
                let max = if op == Op::Not { refs[0].len() } else { max };
                let want: Vec<u8> = (0..max)
                    .map(|j| {
                        let at = |s: &[u8]| s.get(j).copied().unwrap_or(0);
                        let mut o = at(used[0]);
                        for s in &used[1..] {
                            o = match op {
                                Op::And => o & at(s),
                                Op::Or => o | at(s),
                                _ => o ^ at(s),
                            };
                        }
                        if op == Op::Not {
                            !o
                        } else {
                            o
                        }
                    })
                    .collect();
                assert_eq!(bits::bitop(op, used), want, "{op:?}");
            }
        }
    }

    /// BITFIELD against a model: the string as a big-endian bit vector, the
    /// field values as unbounded integers (i128) with Redis's rules.
    #[test]
    fn bitfield_matches_bit_vector_model() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut ks = Keyspace::new(1);
        let mut model: Vec<bool> = Vec::new();
        let _ = run(&mut ks, &["del", "bf"]);
        for step in 0..4000 {
            let signed = rng.gen_bool(0.5);
            let bits: u32 = if signed {
                rng.gen_range(1..=64)
            } else {
                rng.gen_range(1..=63)
            };
            let off: u64 = rng.gen_range(0..200);
            let ow = ["wrap", "sat", "fail"][rng.gen_range(0..3)];
            let val: i64 = match rng.gen_range(0..4) {
                0 => rng.gen_range(-3..3),
                1 => rng.gen(),
                2 => i64::MAX - rng.gen_range(0..3),
                _ => rng.gen_range(-300..300),
            };
            let kind = rng.gen_range(0..3);
            let ty = format!("{}{bits}", if signed { 'i' } else { 'u' });
            let offs = off.to_string();
            let vals = val.to_string();
            let args: Vec<&str> = match kind {
                0 => vec!["bitfield", "bf", "get", &ty, &offs],
                1 => vec!["bitfield", "bf", "overflow", ow, "set", &ty, &offs, &vals],
                _ => vec![
                    "bitfield", "bf", "overflow", ow, "incrby", &ty, &offs, &vals,
                ],
            };
            let got = run(&mut ks, &args);
            // The model.
            let get = |m: &Vec<bool>| -> i128 {
                let mut u: u128 = 0;
                for i in 0..bits as u64 {
                    u = (u << 1) | *m.get((off + i) as usize).unwrap_or(&false) as u128;
                }
                if signed && (u >> (bits - 1)) & 1 == 1 {
                    u as i128 - (1i128 << bits)
                } else {
                    u as i128
                }
            };
            let (min, max) = if signed {
                (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
            } else {
                (0, (1i128 << bits) - 1)
            };
            let old = get(&model);
            let m = 1i128 << bits;
            // Redis's quirk: a signed SET whose `max - value` overflows a
            // 64-bit integer saturates upwards.
            let quirk_up = signed && kind == 1 && bits < 64 && max - val as i128 > i64::MAX as i128;
            let fit = |x: i128| -> Option<i128> {
                if x >= min && x <= max {
                    return Some(x);
                }
                match ow {
                    "fail" => None,
                    "sat" => Some(if x > max || quirk_up { max } else { min }),
                    _ => {
                        let r = x.rem_euclid(m);
                        Some(if signed && r > max { r - m } else { r })
                    }
                }
            };
            let (store, reply) = match kind {
                0 => (None, Some(old)),
                1 => {
                    // An unsigned SET reads the argument as a 64-bit pattern.
                    let v = if signed {
                        val as i128
                    } else {
                        val as u64 as i128
                    };
                    match fit(v) {
                        Some(n) => (Some(n), Some(old)),
                        None => (None, None),
                    }
                }
                _ => match fit(old + val as i128) {
                    Some(n) => (Some(n), Some(n)),
                    None => (None, None),
                },
            };
            if kind != 0 {
                let need = ((off + bits as u64 - 1) / 8 + 1) as usize * 8;
                if model.len() < need {
                    model.resize(need, false);
                }
            }
            if let Some(n) = store {
                let u = n.rem_euclid(m) as u128;
                for i in 0..bits as u64 {
                    model[(off + i) as usize] = (u >> (bits as u64 - 1 - i)) & 1 == 1;
                }
            }
            let want = match reply {
                Some(r) => format!("*1\r\n:{r}\r\n"),
                None => "*1\r\n$-1\r\n".to_string(),
            };
            assert_eq!(got, want, "step {step}: {args:?}");
        }
        // The stored bytes equal the model's.
        let bytes: Vec<u8> = model
            .chunks(8)
            .map(|c| c.iter().fold(0u8, |a, &b| (a << 1) | b as u8))
            .collect();
        let got = run(&mut ks, &["getrange", "bf", "0", "-1"]);
        let mut want = format!("${}\r\n", bytes.len()).into_bytes();
        want.extend_from_slice(&bytes);
        want.extend_from_slice(b"\r\n");
        assert_eq!(got.as_bytes(), String::from_utf8_lossy(&want).as_bytes());
    }

    #[test]
    fn bitfield_sat_keeps_redis_wraparound_quirk() {
        let mut ks = Keyspace::new(1);
        // redis-server 7.0 stores 2147483647 here (see overflow_dir).
        let r = run(
            &mut ks,
            &[
                "bitfield",
                "q",
                "overflow",
                "sat",
                "set",
                "i32",
                "0",
                "-9223372036854775808",
                "get",
                "i32",
                "0",
            ],
        );
        assert_eq!(r, "*2\r\n:0\r\n:2147483647\r\n");
        let r = run(
            &mut ks,
            &[
                "bitfield",
                "q",
                "overflow",
                "sat",
                "set",
                "i32",
                "0",
                "-3000000000",
                "get",
                "i32",
                "0",
            ],
        );
        assert_eq!(r, "*2\r\n:2147483647\r\n:-2147483648\r\n");
    }

    #[test]
    fn bit_commands_follow_redis() {
        let mut ks = Keyspace::new(1);
        assert_eq!(run(&mut ks, &["setbit", "k", "7", "1"]), ":0\r\n");
        assert_eq!(run(&mut ks, &["get", "k"]), "$1\r\n\x01\r\n");
        assert_eq!(run(&mut ks, &["setbit", "k", "7", "0"]), ":1\r\n");
        assert_eq!(
            run(&mut ks, &["setbit", "k", "-1", "0"]),
            format!("-ERR {E_OFFSET}\r\n")
        );
        assert_eq!(
            run(&mut ks, &["setbit", "k", "4294967296", "0"]),
            format!("-ERR {E_OFFSET}\r\n")
        );
        assert_eq!(
            run(&mut ks, &["setbit", "k", "1", "2"]),
            format!("-ERR {E_BIT}\r\n")
        );
        assert_eq!(run(&mut ks, &["setbit", "k", "23", "1"]), ":0\r\n");
        assert_eq!(run(&mut ks, &["strlen", "k"]), ":3\r\n");
        assert_eq!(run(&mut ks, &["getbit", "k", "23"]), ":1\r\n");
        assert_eq!(run(&mut ks, &["getbit", "k", "4294967295"]), ":0\r\n");
        assert_eq!(run(&mut ks, &["bitcount", "k"]), ":1\r\n");
        assert_eq!(
            run(&mut ks, &["bitcount", "k", "0"]),
            "-ERR syntax error\r\n"
        );
        assert_eq!(run(&mut ks, &["bitcount", "nokey", "0"]), ":0\r\n");
        assert_eq!(run(&mut ks, &["bitcount", "k", "-1", "-2", "x"]), ":0\r\n");
        assert_eq!(
            run(&mut ks, &["bitcount", "k", "0", "-1", "x"]),
            "-ERR syntax error\r\n"
        );
        assert_eq!(
            run(&mut ks, &["bitcount", "k", "16", "22", "bit"]),
            ":0\r\n"
        );
        assert_eq!(run(&mut ks, &["bitpos", "k", "1"]), ":23\r\n");
        assert_eq!(
            run(&mut ks, &["bitpos", "k", "2"]),
            "-ERR The bit argument must be 1 or 0.\r\n"
        );
        assert_eq!(run(&mut ks, &["bitpos", "nokey", "0"]), ":0\r\n");
        assert_eq!(run(&mut ks, &["set", "f", "\u{7f}"]), "+OK\r\n");
        assert_eq!(run(&mut ks, &["setbit", "f", "0", "1"]), ":0\r\n");
        assert_eq!(run(&mut ks, &["bitpos", "f", "0"]), ":8\r\n");
        assert_eq!(run(&mut ks, &["bitpos", "f", "0", "0", "-1"]), ":-1\r\n");
        assert_eq!(run(&mut ks, &["bitop", "not", "d", "f"]), ":1\r\n");
        assert_eq!(run(&mut ks, &["get", "d"]), "$1\r\n\x00\r\n");
        assert_eq!(
            run(&mut ks, &["bitop", "not", "d", "f", "k"]),
            "-ERR BITOP NOT must be called with a single source key.\r\n"
        );
        assert_eq!(run(&mut ks, &["bitop", "and", "d", "nokey"]), ":0\r\n");
        assert_eq!(run(&mut ks, &["exists", "d"]), ":0\r\n");
        assert_eq!(
            run(&mut ks, &["bitfield", "k", "get", "u64", "0"]),
            format!("-ERR {E_TYPE}\r\n")
        );
        assert_eq!(
            run(&mut ks, &["bitfield", "k", "get", "i8", "#1"]),
            "*1\r\n:0\r\n"
        );
        assert_eq!(
            run(&mut ks, &["bitfield_ro", "k", "set", "i8", "0", "1"]),
            "-ERR BITFIELD_RO only supports the GET subcommand\r\n"
        );
        assert_eq!(
            run(&mut ks, &["bitfield", "k", "overflow", "x"]),
            "-ERR Invalid OVERFLOW type specified\r\n"
        );
        assert_eq!(
            run(&mut ks, &["bitfield", "k", "get", "i8"]),
            "-ERR syntax error\r\n"
        );
        assert_eq!(run(&mut ks, &["lpush", "l", "a"]), ":1\r\n");
        assert!(run(&mut ks, &["setbit", "l", "0", "1"]).starts_with("-WRONGTYPE"));
        assert!(run(&mut ks, &["bitfield", "l", "get", "i8", "0"]).starts_with("-WRONGTYPE"));
        // Integer-encoded strings are read as their digits.
        assert_eq!(run(&mut ks, &["set", "n", "1"]), "+OK\r\n");
        assert_eq!(run(&mut ks, &["bitcount", "n"]), ":3\r\n");
        assert_eq!(
            run(&mut ks, &["bitfield", "n", "incrby", "u8", "0", "1"]),
            "*1\r\n:50\r\n"
        );
        assert_eq!(run(&mut ks, &["get", "n"]), "$1\r\n2\r\n");
    }
}
