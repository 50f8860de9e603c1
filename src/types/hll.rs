//! HyperLogLog strings in Redis's exact format, so that values move
//! between ringkv and redis-server (GET/SET, DUMP/RESTORE, RDB) unchanged.
//!
//! Layout: a 16-byte header ("HYLL", encoding byte, 3 zero bytes, the
//! cached cardinality as 8 little-endian bytes whose top bit marks it
//! stale) followed by the registers, either
//! - dense: 16384 registers of 6 bits, packed least significant bit first
//!   (12288 bytes), or
//! - sparse: run-length opcodes, ZERO `00xxxxxx` (1..64 zero registers),
//!   XZERO `01xxxxxx yyyyyyyy` (1..16384 zero registers) and VAL
//!   `1vvvvvxx` (1..4 registers of value 1..32).
//!
//! Values are hashed with MurmurHash64A (seed 0xadc83b19): the low 14 bits
//! pick the register, the position of the lowest set bit in the other 50
//! (plus one) is the run length kept as the register's maximum. A sparse
//! value turns dense when a register needs more than 32 or when it would
//! grow past `hll-sparse-max-bytes`. The estimate is Ertl's improved
//! estimator, as Redis 7.0 computes it.
//!
//! Every read of a possibly hostile string is bounds-checked: a byte past
//! the end reads as zero (as Redis reads the string's NUL terminator), and
//! malformed data is reported as corruption, never trusted.
//!
//! Known difference on corrupted input only: when a sparse string ends in
//! a lone XZERO byte, Redis reads the byte after its end, which is the NUL
//! terminator unless an earlier split of that opcode left a byte there
//! (Redis writes the split sequence after growing the length, so its last
//! byte lands past the end). ringkv always reads zero, so after several
//! edits of such a value the two may store different run lengths. Valid
//! HLLs (any made by PFADD/PFMERGE) never end that way.

pub const P: u32 = 14;
pub const REGISTERS: usize = 1 << P;
/// Hash bits left after the register index.
pub const Q: u32 = 64 - P;
pub const HDR: usize = 16;
pub const DENSE_SIZE: usize = HDR + (REGISTERS * 6).div_ceil(8);
pub const ENC_DENSE: u8 = 0;
pub const ENC_SPARSE: u8 = 1;
const REG_MAX: u8 = 63;
const VAL_MAX_VALUE: u8 = 32;
const VAL_MAX_LEN: usize = 4;
const ZERO_MAX_LEN: usize = 64;
const XZERO_MAX_LEN: usize = 16384;
const SEED: u64 = 0xadc8_3b19;

/// Error text for a string that is not an HLL (sent with its own prefix).
pub const E_NOT_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";
/// Error text for a corrupted HLL.
pub const E_CORRUPT: &str = "INVALIDOBJ Corrupted HLL object detected";

/// The corrupted-HLL error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Corrupt;

/// MurmurHash64A (Austin Appleby), little-endian word reads.
pub fn murmur64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let mut k = u64::from_le_bytes(w.try_into().unwrap());
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        for (i, &b) in rest.iter().enumerate() {
            h ^= (b as u64) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element maps to and the run length it offers.
pub fn pat_len(ele: &[u8]) -> (usize, u8) {
    let hash = murmur64a(ele, SEED);
    let index = (hash as usize) & (REGISTERS - 1);
    let rest = (hash >> P) | (1u64 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

/// A new, empty HLL: sparse, one XZERO covering every register.
pub fn new_sparse() -> Vec<u8> {
    let mut s = Vec::with_capacity(64);
    s.extend_from_slice(b"HYLL");
    s.push(ENC_SPARSE);
    s.extend_from_slice(&[0; 11]);
    let mut left = REGISTERS;
    while left > 0 {
        let n = left.min(XZERO_MAX_LEN);
        push_xzero(&mut s, n);
        left -= n;
    }
    s
}

/// Redis's `isHLLObjectOrReply` test on a string's bytes.
pub fn is_valid(s: &[u8]) -> bool {
    s.len() >= HDR
        && &s[..4] == b"HYLL"
        && s[4] <= ENC_SPARSE
        && (s[4] != ENC_DENSE || s.len() == DENSE_SIZE)
}

pub fn is_sparse(s: &[u8]) -> bool {
    s[4] == ENC_SPARSE
}

/// The cached cardinality, when valid.
pub fn cached_card(s: &[u8]) -> Option<u64> {
    let c = u64::from_le_bytes(s[8..16].try_into().unwrap());
    (c >> 63 == 0).then_some(c)
}

pub fn set_card(s: &mut [u8], card: u64) {
    s[8..16].copy_from_slice(&card.to_le_bytes());
}

pub fn invalidate(s: &mut [u8]) {
    s[15] |= 0x80;
}

// ----- dense registers --------------------------------------------------------

#[inline]
pub fn get_reg(regs: &[u8], i: usize) -> u8 {
    let (byte, fb) = (i * 6 / 8, (i * 6) & 7);
    let b0 = regs[byte] as u16;
    let b1 = regs.get(byte + 1).copied().unwrap_or(0) as u16;
    (((b0 >> fb) | (b1 << (8 - fb))) & REG_MAX as u16) as u8
}

#[inline]
pub fn set_reg(regs: &mut [u8], i: usize, v: u8) {
    let (byte, fb) = (i * 6 / 8, (i * 6) & 7);
    let v = v as u16;
    regs[byte] = (regs[byte] & !((REG_MAX as u16) << fb) as u8) | (v << fb) as u8;
    // The last register fits its byte; there is no next byte to touch.
    if fb > 2 {
        let nb = &mut regs[byte + 1];
        *nb = (*nb & !((REG_MAX as u16) >> (8 - fb)) as u8) | (v >> (8 - fb)) as u8;
    }
}

/// Raises register `i` of a dense HLL to `count`; true when it changed.
fn dense_set(s: &mut [u8], i: usize, count: u8) -> bool {
    let regs = &mut s[HDR..];
    if count > get_reg(regs, i) {
        set_reg(regs, i, count);
        true
    } else {
        false
    }
}

// ----- sparse opcodes ---------------------------------------------------------

/// A decoded opcode: (registers covered, value; 0 for the zero runs,
/// bytes taken).
#[inline]
fn opcode(s: &[u8], at: usize) -> (usize, u8, usize) {
    let b = s[at];
    if b & 0xc0 == 0 {
        ((b & 0x3f) as usize + 1, 0, 1)
    } else if b & 0xc0 == 0x40 {
        // A truncated XZERO reads the byte after the end as zero.
        let lo = s.get(at + 1).copied().unwrap_or(0) as usize;
        ((((b & 0x3f) as usize) << 8 | lo) + 1, 0, 2)
    } else {
        ((b & 0x3) as usize + 1, ((b >> 2) & 0x1f) + 1, 1)
    }
}

fn is_val(b: u8) -> bool {
    b & 0x80 != 0
}

fn val_byte(value: u8, len: usize) -> u8 {
    ((value - 1) << 2) | (len as u8 - 1) | 0x80
}

fn push_zero_run(v: &mut Vec<u8>, len: usize) {
    if len > ZERO_MAX_LEN {
        push_xzero(v, len);
    } else {
        v.push((len - 1) as u8);
    }
}

fn push_xzero(v: &mut Vec<u8>, len: usize) {
    let l = len - 1;
    v.push((l >> 8) as u8 | 0x40);
    v.push((l & 0xff) as u8);
}

/// Calls `f(first_register, len, value)` for each run of a sparse HLL and
/// returns the number of registers covered. Stops (returning Err) when a
/// VAL run would pass the last register.
fn sparse_runs(s: &[u8], mut f: impl FnMut(usize, usize, u8)) -> Result<usize, Corrupt> {
    let mut at = HDR;
    let mut idx = 0usize;
    while at < s.len() {
        let (len, val, oplen) = opcode(s, at);
        if val > 0 {
            if idx + len > REGISTERS {
                return Err(Corrupt);
            }
            f(idx, len, val);
        }
        idx += len;
        at += oplen;
    }
    Ok(idx)
}

/// Redis's `hllSparseToDense`: the dense form of a sparse HLL (header and
/// cached cardinality kept).
pub fn sparse_to_dense(s: &[u8]) -> Result<Vec<u8>, Corrupt> {
    let mut d = vec![0u8; DENSE_SIZE];
    d[..HDR].copy_from_slice(&s[..HDR]);
    d[4] = ENC_DENSE;
    let (head, regs) = d.split_at_mut(HDR);
    let _ = head;
    let n = sparse_runs(s, |first, len, val| {
        for i in first..first + len {
            set_reg(regs, i, val);
        }
    })?;
    if n != REGISTERS {
        return Err(Corrupt);
    }
    Ok(d)
}

/// Raises register `index` of the HLL in `s` to `count`. Works on both
/// encodings; a sparse HLL is converted to dense when needed. Returns
/// whether a register changed.
pub fn set(s: &mut Vec<u8>, index: usize, count: u8, max_bytes: usize) -> Result<bool, Corrupt> {
    if s[4] == ENC_DENSE {
        return Ok(dense_set(s, index, count));
    }
    if count > VAL_MAX_VALUE {
        return promote(s, index, count);
    }
    // Find the opcode covering `index`.
    let end = s.len();
    let mut p = HDR;
    let mut first = 0usize;
    let mut prev: Option<usize> = None;
    let mut span = 0usize;
    let mut oplen = 1usize;
    while p < end {
        let (len, _, ol) = opcode(s, p);
        span = len;
        oplen = ol;
        if index < first + span {
            break;
        }
        prev = Some(p);
        p += oplen;
        first += span;
    }
    if span == 0 || p >= end {
        return Err(Corrupt);
    }
    let b = s[p];
    let (runlen, curval, _) = opcode(s, p);
    let is_v = is_val(b);
    if is_v {
        if curval >= count {
            return Ok(false);
        }
        if runlen == 1 {
            s[p] = val_byte(count, 1);
            merge_adjacent(s, prev.unwrap_or(HDR));
            invalidate(s);
            return Ok(true);
        }
    }
    if !is_v && oplen == 1 && runlen == 1 {
        s[p] = val_byte(count, 1);
        merge_adjacent(s, prev.unwrap_or(HDR));
        invalidate(s);
        return Ok(true);
    }
    // Split the run: [before] VAL(count) [after].
    let last = first + span - 1;
    let mut seq: Vec<u8> = Vec::with_capacity(5);
    if is_v {
        if index != first {
            seq.push(val_byte(curval, index - first));
        }
        seq.push(val_byte(count, 1));
        if index != last {
            seq.push(val_byte(curval, last - index));
        }
    } else {
        if index != first {
            push_zero_run(&mut seq, index - first);
        }
        seq.push(val_byte(count, 1));
        if index != last {
            push_zero_run(&mut seq, last - index);
        }
    }
    let delta = seq.len() as isize - oplen as isize;
    if delta > 0 && end + delta as usize > max_bytes {
        return promote(s, index, count);
    }
    // Replace the opcode; the string's length changes by exactly `delta`
    // (for a truncated XZERO at the very end that drops the sequence's
    // last byte, as Redis's in-place edit does).
    let new_len = (end as isize + delta) as usize;
    let tail_from = (p + oplen).min(end);
    let tail: Vec<u8> = s[tail_from..].to_vec();
    s.truncate(p);
    s.extend_from_slice(&seq);
    s.extend_from_slice(&tail);
    s.resize(new_len, 0);
    merge_adjacent(s, prev.unwrap_or(HDR));
    invalidate(s);
    Ok(true)
}

/// Merges adjacent VAL opcodes of equal value (up to 4 registers), looking
/// at no more than 5 opcodes from `p`, as Redis does after an update.
fn merge_adjacent(s: &mut Vec<u8>, mut p: usize) {
    let mut scan = 5;
    while p < s.len() && scan > 0 {
        scan -= 1;
        let b = s[p];
        if b & 0xc0 == 0x40 {
            p += 2;
            continue;
        }
        if b & 0xc0 == 0 {
            p += 1;
            continue;
        }
        if p + 1 < s.len() && is_val(s[p + 1]) {
            let (l1, v1, _) = opcode(s, p);
            let (l2, v2, _) = opcode(s, p + 1);
            if v1 == v2 && l1 + l2 <= VAL_MAX_LEN {
                s[p + 1] = val_byte(v1, l1 + l2);
                s.remove(p);
                continue;
            }
        }
        p += 1;
    }
}

fn promote(s: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, Corrupt> {
    *s = sparse_to_dense(s)?;
    let changed = dense_set(s, index, count);
    debug_assert!(changed);
    Ok(true)
}

/// PFADD of one element; returns whether a register changed.
pub fn add(s: &mut Vec<u8>, ele: &[u8], max_bytes: usize) -> Result<bool, Corrupt> {
    let (index, count) = pat_len(ele);
    set(s, index, count, max_bytes)
}

// ----- counting and merging -----------------------------------------------------

/// Register histogram of a valid HLL (the second value: a sparse HLL
/// whose runs do not cover exactly every register).
pub fn histogram(s: &[u8]) -> ([u32; 64], bool) {
    let mut h = [0u32; 64];
    if s[4] == ENC_DENSE {
        let regs = &s[HDR..];
        for i in 0..REGISTERS {
            h[get_reg(regs, i) as usize] += 1;
        }
        return (h, false);
    }
    let mut at = HDR;
    let mut idx = 0usize;
    while at < s.len() {
        let (len, val, oplen) = opcode(s, at);
        h[val as usize] = h[val as usize].wrapping_add(len as u32);
        idx += len;
        at += oplen;
    }
    (h, idx != REGISTERS)
}

/// Histogram of raw one-byte-per-register maxima.
pub fn raw_histogram(regs: &[u8]) -> [u32; 64] {
    let mut h = [0u32; 64];
    for &r in regs {
        h[(r & REG_MAX) as usize] += 1;
    }
    h
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let zp = z;
        z += x * y;
        y += y;
        if zp == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let zp = z;
        y *= 0.5;
        let d = 1.0 - x;
        z -= d * d * y;
        if zp == z {
            return z / 3.0;
        }
    }
}

/// The cardinality estimate from a register histogram.
pub fn estimate(h: &[u32; 64]) -> u64 {
    const ALPHA_INF: f64 = 0.721_347_520_444_481_7;
    let m = REGISTERS as f64;
    let mut z = m * tau((m - h[Q as usize + 1] as f64) / m);
    for j in (1..=Q as usize).rev() {
        z += h[j] as f64;
        z *= 0.5;
    }
    z += m * sigma(h[0] as f64 / m);
    (ALPHA_INF * m * m / z).round() as u64
}

/// Folds an HLL's registers into `max` (one byte per register).
pub fn merge_into(max: &mut [u8], s: &[u8]) -> Result<(), Corrupt> {
    if s[4] == ENC_DENSE {
        let regs = &s[HDR..];
        for (i, m) in max.iter_mut().enumerate().take(REGISTERS) {
            let v = get_reg(regs, i);
            if v > *m {
                *m = v;
            }
        }
        return Ok(());
    }
    let n = sparse_runs(s, |first, len, val| {
        for m in &mut max[first..first + len] {
            if val > *m {
                *m = val;
            }
        }
    })?;
    if n != REGISTERS {
        return Err(Corrupt);
    }
    Ok(())
}

/// PFDEBUG DECODE's text of a sparse HLL.
pub fn decode(s: &[u8]) -> String {
    let mut out = String::new();
    let mut at = HDR;
    while at < s.len() {
        let (len, val, oplen) = opcode(s, at);
        let item = if val > 0 {
            format!("v:{val},{len} ")
        } else if oplen == 2 {
            format!("Z:{len} ")
        } else {
            format!("z:{len} ")
        };
        out.push_str(&item);
        at += oplen;
    }
    out.trim_matches(' ').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn dense_regs(s: &[u8]) -> Vec<u8> {
        let d = if is_sparse(s) {
            sparse_to_dense(s).unwrap()
        } else {
            s.to_vec()
        };
        (0..REGISTERS).map(|i| get_reg(&d[HDR..], i)).collect()
    }

    /// Every tail length (0..7 bytes after the 8-byte words) feeds the
    /// hash. (Equality with Redis's hash is checked end to end: the HLL
    /// bytes ringkv and redis-server build from the same elements are
    /// compared in tests/it/bits.rs.)
    #[test]
    fn murmur_hashes_every_tail_length() {
        let a = murmur64a(b"hello", SEED);
        let b = murmur64a(b"hellp", SEED);
        assert_ne!(a, b);
        // Tail handling: every length 0..17 hashes differently.
        let v: Vec<u64> = (0..17)
            .map(|n| murmur64a(&[7u8; 16][..n.min(16)], 1))
            .collect();
        for i in 0..16 {
            assert_ne!(v[i], v[i + 1]);
        }
    }

    #[test]
    fn registers_pack_six_bits() {
        let mut regs = vec![0u8; DENSE_SIZE - HDR];
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let vals: Vec<u8> = (0..REGISTERS).map(|_| rng.gen_range(0..64)).collect();
        for (i, &v) in vals.iter().enumerate() {
            set_reg(&mut regs, i, v);
        }
        for (i, &v) in vals.iter().enumerate() {
            assert_eq!(get_reg(&regs, i), v, "register {i}");
        }
    }

    /// The same adds into a sparse and a dense HLL give the same registers
    /// and count, whatever the sparse limit; the sparse one stays within it.
    #[test]
    fn sparse_and_dense_agree() {
        for (n, max_bytes) in [
            (10usize, 3000usize),
            (300, 3000),
            (2000, 3000),
            (5000, 100_000),
            (3000, 40),
        ] {
            let mut sp = new_sparse();
            let mut de = sparse_to_dense(&new_sparse()).unwrap();
            for i in 0..n {
                let e = format!("ele:{i}");
                let a = add(&mut sp, e.as_bytes(), max_bytes).unwrap();
                let b = add(&mut de, e.as_bytes(), max_bytes).unwrap();
                assert_eq!(a, b, "element {i}");
                if is_sparse(&sp) {
                    assert!(sp.len() <= max_bytes.max(18), "{} > {max_bytes}", sp.len());
                    assert!(!histogram(&sp).1);
                }
            }
            assert_eq!(dense_regs(&sp), dense_regs(&de), "n={n}");
            assert_eq!(estimate(&histogram(&sp).0), estimate(&histogram(&de).0));
            let mut max = vec![0u8; REGISTERS];
            merge_into(&mut max, &sp).unwrap();
            assert_eq!(max, dense_regs(&de));
            assert_eq!(estimate(&raw_histogram(&max)), estimate(&histogram(&de).0));
        }
    }

    #[test]
    fn estimates_are_close() {
        let mut s = new_sparse();
        for i in 0..100_000u32 {
            add(&mut s, &i.to_le_bytes(), 3000).unwrap();
        }
        let e = estimate(&histogram(&s).0) as f64;
        assert!((e - 100_000.0).abs() < 100_000.0 * 0.03, "{e}");
        assert_eq!(estimate(&histogram(&new_sparse()).0), 0);
    }

    #[test]
    fn hostile_strings_never_panic() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        for round in 0..20_000 {
            let mut s = new_sparse();
            if round % 2 == 0 {
                for i in 0..rng.gen_range(0..200) {
                    add(&mut s, format!("{i}").as_bytes(), 3000).unwrap();
                }
            }
            // Corrupt: random bytes after the header, truncation, or noise.
            match rng.gen_range(0..3) {
                0 => {
                    let n = rng.gen_range(0..40);
                    s.truncate(HDR);
                    s.extend((0..n).map(|_| rng.gen::<u8>()));
                }
                1 => {
                    let keep = rng.gen_range(HDR..=s.len());
                    s.truncate(keep);
                }
                _ => {
                    for _ in 0..rng.gen_range(1..4) {
                        let i = rng.gen_range(HDR..s.len().max(HDR + 1));
                        if i < s.len() {
                            s[i] = rng.gen();
                        }
                    }
                }
            }
            if !is_valid(&s) {
                continue;
            }
            let _ = histogram(&s);
            let _ = decode(&s);
            let mut max = vec![0u8; REGISTERS];
            let _ = merge_into(&mut max, &s);
            let _ = sparse_to_dense(&s);
            let mut t = s.clone();
            for i in 0..5 {
                if add(&mut t, format!("x{i}").as_bytes(), 3000).is_err() {
                    break;
                }
            }
        }
    }
}
