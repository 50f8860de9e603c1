//! Redis's RDB serialization format, version 10 (Redis 7.0): the snapshot
//! file format and the DUMP/RESTORE payload. See docs/rdb-format.md for the
//! subset written and read, byte by byte.
//!
//! - this module: opcodes and type codes, the CRC64 (Jones) checksum, LZF,
//!   length and string encodings (writer side) and a bounds-checked
//!   [`Reader`] over a byte slice (reader side);
//! - [`encode`]: values to RDB bytes, choosing the value types Redis 7.0
//!   would choose for the same value (listpack, intset, quicklist2, ...);
//! - [`decode`]: RDB bytes to values, for every RDB version 1..=10 that
//!   Redis 7.0 loads, with every length and offset checked.

pub mod decode;
pub mod encode;
pub mod stream;

use std::fmt;

/// The RDB version written (Redis 7.0).
pub const RDB_VERSION: u16 = 10;

// ----- opcodes -------------------------------------------------------------
pub const OP_FUNCTION2: u8 = 245;
pub const OP_FUNCTION: u8 = 246;
pub const OP_MODULE_AUX: u8 = 247;
pub const OP_IDLE: u8 = 248;
pub const OP_FREQ: u8 = 249;
pub const OP_AUX: u8 = 250;
pub const OP_RESIZEDB: u8 = 251;
pub const OP_EXPIRETIME_MS: u8 = 252;
pub const OP_EXPIRETIME: u8 = 253;
pub const OP_SELECTDB: u8 = 254;
pub const OP_EOF: u8 = 255;

// ----- value types ---------------------------------------------------------
pub const T_STRING: u8 = 0;
pub const T_LIST: u8 = 1;
pub const T_SET: u8 = 2;
pub const T_ZSET: u8 = 3;
pub const T_HASH: u8 = 4;
pub const T_ZSET_2: u8 = 5;
pub const T_MODULE: u8 = 6;
pub const T_MODULE_2: u8 = 7;
pub const T_HASH_ZIPMAP: u8 = 9;
pub const T_LIST_ZIPLIST: u8 = 10;
pub const T_SET_INTSET: u8 = 11;
pub const T_ZSET_ZIPLIST: u8 = 12;
pub const T_HASH_ZIPLIST: u8 = 13;
pub const T_LIST_QUICKLIST: u8 = 14;
pub const T_STREAM_LISTPACKS: u8 = 15;
pub const T_HASH_LISTPACK: u8 = 16;
pub const T_ZSET_LISTPACK: u8 = 17;
pub const T_LIST_QUICKLIST_2: u8 = 18;
pub const T_STREAM_LISTPACKS_2: u8 = 19;

/// Quicklist-2 node containers.
pub const QUICKLIST_NODE_PLAIN: u64 = 1;
pub const QUICKLIST_NODE_PACKED: u64 = 2;

// ----- length / string encodings ------------------------------------------
const LEN_6BIT: u8 = 0;
const LEN_14BIT: u8 = 1;
const LEN_32BIT: u8 = 0x80;
const LEN_64BIT: u8 = 0x81;
const LEN_ENCVAL: u8 = 3;
pub const ENC_INT8: u8 = 0;
pub const ENC_INT16: u8 = 1;
pub const ENC_INT32: u8 = 2;
pub const ENC_LZF: u8 = 3;

// ----- CRC64 ---------------------------------------------------------------

/// CRC-64/Jones as Redis computes it (reflected polynomial
/// 0xad93d23594c935a9, initial value 0, no final xor), slice-by-8.
const CRC_TABLES: [[u64; 256]; 8] = {
    const POLY_REFLECTED: u64 = 0x95ac_9329_ac4b_c9b5;
    let mut t = [[0u64; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u64;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ POLY_REFLECTED
            } else {
                c >> 1
            };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut j = 1;
    while j < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[j - 1][i];
            t[j][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        j += 1;
    }
    t
};

/// Continues a CRC64 over `data` (start with 0).
pub fn crc64(mut crc: u64, data: &[u8]) -> u64 {
    let t = &CRC_TABLES;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let v = crc ^ u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        crc = t[7][(v & 0xff) as usize]
            ^ t[6][((v >> 8) & 0xff) as usize]
            ^ t[5][((v >> 16) & 0xff) as usize]
            ^ t[4][((v >> 24) & 0xff) as usize]
            ^ t[3][((v >> 32) & 0xff) as usize]
            ^ t[2][((v >> 40) & 0xff) as usize]
            ^ t[1][((v >> 48) & 0xff) as usize]
            ^ t[0][(v >> 56) as usize];
    }
    for &b in chunks.remainder() {
        crc = t[0][((crc ^ b as u64) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

// ----- LZF -----------------------------------------------------------------

/// Compresses `data` as Redis does before storing a string (a port of
/// Redis's own LZF compressor, so the bytes match Redis's): only strings
/// longer than 20 bytes are tried (the caller checks), and the result is
/// kept only when it saves at least 4 bytes.
pub fn lzf_compress(data: &[u8]) -> Option<Vec<u8>> {
    encode::lzf_compress_redis(data)
}

/// Decompresses an LZF blob that must expand to exactly `len` bytes.
pub fn lzf_decompress(data: &[u8], len: usize) -> Option<Vec<u8>> {
    if len == 0 {
        return None;
    }
    // A valid LZF stream expands at most ~ 264/2 times per input byte pair;
    // refuse absurd claims before allocating.
    if len / 300 > data.len() + 1 {
        return None;
    }
    std::panic::catch_unwind(|| lzf::decompress(data, len))
        .ok()?
        .ok()
        .filter(|v| v.len() == len)
}

// ----- writer primitives ---------------------------------------------------

/// Appends a length in Redis's 6/14/32/64-bit scheme.
pub fn write_len(out: &mut Vec<u8>, n: u64) {
    if n < 1 << 6 {
        out.push((LEN_6BIT << 6) | n as u8);
    } else if n < 1 << 14 {
        out.push((LEN_14BIT << 6) | (n >> 8) as u8);
        out.push(n as u8);
    } else if n <= u32::MAX as u64 {
        out.push(LEN_32BIT);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(LEN_64BIT);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// Appends an integer in the special "encoded value" form if it fits in 32
/// bits; returns false (writing nothing) otherwise.
fn write_encoded_int(out: &mut Vec<u8>, v: i64) -> bool {
    if v >= i8::MIN as i64 && v <= i8::MAX as i64 {
        out.push((LEN_ENCVAL << 6) | ENC_INT8);
        out.push(v as i8 as u8);
    } else if v >= i16::MIN as i64 && v <= i16::MAX as i64 {
        out.push((LEN_ENCVAL << 6) | ENC_INT16);
        out.extend_from_slice(&(v as i16).to_le_bytes());
    } else if v >= i32::MIN as i64 && v <= i32::MAX as i64 {
        out.push((LEN_ENCVAL << 6) | ENC_INT32);
        out.extend_from_slice(&(v as i32).to_le_bytes());
    } else {
        return false;
    }
    true
}

/// Appends an integer as an RDB string object (Redis's
/// `rdbSaveLongLongAsStringObject`).
pub fn write_int_string(out: &mut Vec<u8>, v: i64) {
    if !write_encoded_int(out, v) {
        let mut b = itoa::Buffer::new();
        let s = b.format(v).as_bytes();
        write_len(out, s.len() as u64);
        out.extend_from_slice(s);
    }
}

/// Appends a string object as Redis's `rdbSaveRawString` does: canonical
/// integers of up to 11 bytes that fit in 32 bits as encoded integers,
/// strings over 20 bytes LZF-compressed when `compress` and worthwhile,
/// everything else as length + bytes.
pub fn write_string(out: &mut Vec<u8>, s: &[u8], compress: bool) {
    if s.len() <= 11 {
        if let Some(v) = crate::util::parse_i64(s) {
            if write_encoded_int(out, v) {
                return;
            }
        }
    }
    if compress && s.len() > 20 {
        if let Some(c) = lzf_compress(s) {
            out.push((LEN_ENCVAL << 6) | ENC_LZF);
            write_len(out, c.len() as u64);
            write_len(out, s.len() as u64);
            out.extend_from_slice(&c);
            return;
        }
    }
    write_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// Appends a double in the binary form of ZSET_2 (little-endian IEEE 754).
pub fn write_binary_double(out: &mut Vec<u8>, v: f64) {
    out.extend_from_slice(&v.to_le_bytes());
}

// ----- reader --------------------------------------------------------------

/// A load or parse failure: what went wrong and the byte offset where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdbError {
    pub pos: usize,
    pub what: String,
}

impl fmt::Display for RdbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at offset {}", self.what, self.pos)
    }
}

impl std::error::Error for RdbError {}

pub type Result<T> = std::result::Result<T, RdbError>;

/// A length, or the marker of a specially encoded string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Len {
    Plain(u64),
    /// One of `ENC_INT8`, `ENC_INT16`, `ENC_INT32`, `ENC_LZF`.
    Encoded(u8),
}

/// A bounds-checked cursor over RDB bytes. Every read fails with an
/// [`RdbError`] naming the offset instead of reading past the end.
pub struct Reader<'a> {
    pub buf: &'a [u8],
    pub pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn err<T>(&self, what: impl Into<String>) -> Result<T> {
        Err(RdbError {
            pos: self.pos,
            what: what.into(),
        })
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return self.err(format!(
                "unexpected end of data: {} bytes needed, {} left",
                n,
                self.remaining()
            ));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.bytes(1)?[0])
    }

    pub fn u32_le(&mut self) -> Result<u32> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64_le(&mut self) -> Result<u64> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// Reads a length or an encoded-string marker.
    pub fn len_or_enc(&mut self) -> Result<Len> {
        let b = self.u8()?;
        match b >> 6 {
            0 => Ok(Len::Plain((b & 0x3f) as u64)),
            1 => Ok(Len::Plain((((b & 0x3f) as u64) << 8) | self.u8()? as u64)),
            3 => Ok(Len::Encoded(b & 0x3f)),
            _ => match b {
                LEN_32BIT => {
                    let v = self.bytes(4)?;
                    Ok(Len::Plain(
                        u32::from_be_bytes([v[0], v[1], v[2], v[3]]) as u64
                    ))
                }
                LEN_64BIT => {
                    let v = self.bytes(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(v);
                    Ok(Len::Plain(u64::from_be_bytes(a)))
                }
                _ => {
                    self.pos -= 1;
                    self.err(format!("unknown length encoding 0x{b:02x}"))
                }
            },
        }
    }

    /// Reads a plain length.
    pub fn len(&mut self) -> Result<u64> {
        match self.len_or_enc()? {
            Len::Plain(n) => Ok(n),
            Len::Encoded(e) => self.err(format!("encoded value {e} where a length was expected")),
        }
    }

    /// Reads a length that counts items each taking at least `min_item`
    /// bytes of the remaining input, so absurd lengths are refused before
    /// anything is allocated.
    pub fn count(&mut self, min_item: usize) -> Result<usize> {
        let start = self.pos;
        let n = self.len()?;
        if n.saturating_mul(min_item.max(1) as u64) > self.remaining() as u64 {
            self.pos = start;
            return self.err(format!(
                "length {n} points past the end of the data ({} bytes left)",
                self.remaining()
            ));
        }
        Ok(n as usize)
    }

    /// Reads a string object (plain, integer-encoded or LZF-compressed).
    pub fn string(&mut self) -> Result<Vec<u8>> {
        let start = self.pos;
        match self.len_or_enc()? {
            Len::Plain(n) => {
                if n > self.remaining() as u64 {
                    self.pos = start;
                    return self.err(format!(
                        "string length {n} points past the end of the data ({} bytes left)",
                        self.remaining() - 1
                    ));
                }
                Ok(self.bytes(n as usize)?.to_vec())
            }
            Len::Encoded(ENC_INT8) => Ok(itoa::Buffer::new()
                .format(self.u8()? as i8)
                .as_bytes()
                .to_vec()),
            Len::Encoded(ENC_INT16) => {
                let b = self.bytes(2)?;
                Ok(itoa::Buffer::new()
                    .format(i16::from_le_bytes([b[0], b[1]]))
                    .as_bytes()
                    .to_vec())
            }
            Len::Encoded(ENC_INT32) => {
                let v = self.u32_le()? as i32;
                Ok(itoa::Buffer::new().format(v).as_bytes().to_vec())
            }
            Len::Encoded(ENC_LZF) => {
                let clen = self.len()?;
                let len = self.len()?;
                if clen > self.remaining() as u64 {
                    return self.err(format!(
                        "compressed length {clen} points past the end of the data"
                    ));
                }
                if len > (1u64 << 32) {
                    return self.err(format!("compressed string too long ({len} bytes)"));
                }
                let at = self.pos;
                let c = self.bytes(clen as usize)?;
                match lzf_decompress(c, len as usize) {
                    Some(v) => Ok(v),
                    None => Err(RdbError {
                        pos: at,
                        what: "invalid LZF compressed string".into(),
                    }),
                }
            }
            Len::Encoded(e) => {
                self.pos = start;
                self.err(format!("unknown string encoding {e}"))
            }
        }
    }

    /// Reads a double in the old string form (RDB_TYPE_ZSET): one length
    /// byte, 253 = NaN, 254 = +inf, 255 = -inf, else that many ASCII bytes.
    pub fn string_double(&mut self) -> Result<f64> {
        let n = self.u8()?;
        match n {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            _ => {
                let at = self.pos;
                let b = self.bytes(n as usize)?;
                std::str::from_utf8(b)
                    .ok()
                    .and_then(|s| s.trim().parse::<f64>().ok())
                    .ok_or(RdbError {
                        pos: at,
                        what: "invalid double value".into(),
                    })
            }
        }
    }

    /// Reads a little-endian binary double (RDB_TYPE_ZSET_2).
    pub fn binary_double(&mut self) -> Result<f64> {
        Ok(f64::from_bits(self.u64_le()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_matches_redis_check_value() {
        assert_eq!(crc64(0, b"123456789"), 0xe9c6_d914_c4b8_d9ca);
        // Incremental use gives the same result.
        let c = crc64(crc64(0, b"1234"), b"56789");
        assert_eq!(c, 0xe9c6_d914_c4b8_d9ca);
        let long: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let whole = crc64(0, &long);
        let split = crc64(crc64(0, &long[..333]), &long[333..]);
        assert_eq!(whole, split);
    }

    #[test]
    fn lengths_round_trip() {
        for n in [0u64, 1, 63, 64, 16383, 16384, u32::MAX as u64, 1 << 40] {
            let mut out = Vec::new();
            write_len(&mut out, n);
            let mut r = Reader::new(&out);
            assert_eq!(r.len().unwrap(), n);
            assert!(r.is_empty());
        }
    }

    #[test]
    fn strings_round_trip_in_every_encoding() {
        let long = vec![b'a'; 1000];
        let cases: Vec<&[u8]> = vec![
            b"",
            b"12",
            b"-129",
            b"40000",
            b"2147483647",
            b"2147483648",
            b"012",
            b"hello",
            &long,
        ];
        for s in cases {
            for compress in [false, true] {
                let mut out = Vec::new();
                write_string(&mut out, s, compress);
                let mut r = Reader::new(&out);
                assert_eq!(r.string().unwrap(), s);
                assert!(r.is_empty());
            }
        }
        let mut out = Vec::new();
        write_string(&mut out, &long, true);
        assert!(out.len() < 100, "LZF should shrink a run of 1000 bytes");
        assert_eq!(out[0], 0xC3);
        let mut out = Vec::new();
        write_string(&mut out, b"-129", false);
        assert_eq!(out, vec![0xC1, 0x7f, 0xff]);
    }

    #[test]
    fn hostile_lengths_are_refused() {
        // A 32-bit length far past the end.
        let mut r = Reader::new(&[0x80, 0xff, 0xff, 0xff, 0xff, b'a']);
        assert!(r.string().is_err());
        // LZF claiming a huge output.
        let mut r = Reader::new(&[0xC3, 0x02, 0x80, 0x7f, 0xff, 0xff, 0xff, 0x00, 0x61]);
        assert!(r.string().is_err());
        let mut r = Reader::new(&[0x81]);
        assert!(r.len().is_err());
        let mut r = Reader::new(&[0xC7]);
        assert!(r.string().is_err());
    }
}
