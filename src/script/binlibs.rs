//! The binary-format libraries Redis gives scripts, written in Rust:
//! `struct` (pack/unpack/size of C-like records) and `cmsgpack`
//! (MessagePack pack/unpack). Their output and errors follow the
//! libraries Redis 7.0 embeds (struct 1.4, lua-cmsgpack 0.4.0) byte for
//! byte, on a little-endian 64-bit machine.

use mlua::{Lua, MultiValue, Table, Value};

use super::libs::located;

fn type_name(v: Option<&Value>) -> &'static str {
    match v {
        None => "no value",
        Some(v) => v.type_name(),
    }
}

/// luaL_argerror's message, located at the calling Lua code.
fn arg_error(lua: &Lua, n: usize, fname: &str, msg: &str) -> mlua::Error {
    located(lua, format!("bad argument #{n} to '{fname}' ({msg})"))
}

/// luaL_checknumber (argument `i`, 0-based).
fn check_number(lua: &Lua, a: &MultiValue, i: usize, fname: &str) -> mlua::Result<f64> {
    let v = a.get(i);
    let n = match v {
        Some(Value::Integer(n)) => Some(*n as f64),
        Some(Value::Number(n)) => Some(*n),
        Some(v @ Value::String(_)) => lua.coerce_number(v.clone()).ok().flatten(),
        _ => None,
    };
    n.ok_or_else(|| {
        arg_error(
            lua,
            i + 1,
            fname,
            &format!("number expected, got {}", type_name(v)),
        )
    })
}

/// luaL_checklstring (numbers are turned into strings).
fn check_string(lua: &Lua, a: &MultiValue, i: usize, fname: &str) -> mlua::Result<Vec<u8>> {
    let v = a.get(i);
    let s = match v {
        Some(Value::String(s)) => Some(s.as_bytes().to_vec()),
        Some(v @ (Value::Integer(_) | Value::Number(_))) => lua
            .coerce_string(v.clone())
            .ok()
            .flatten()
            .map(|s| s.as_bytes().to_vec()),
        _ => None,
    };
    s.ok_or_else(|| {
        arg_error(
            lua,
            i + 1,
            fname,
            &format!("string expected, got {}", type_name(v)),
        )
    })
}

/// luaL_optinteger: C's truncating conversion of the number.
fn opt_integer(lua: &Lua, a: &MultiValue, i: usize, fname: &str, def: i64) -> mlua::Result<i64> {
    match a.get(i) {
        None | Some(Value::Nil) => Ok(def),
        _ => Ok(c_i64(check_number(lua, a, i, fname)?)),
    }
}

/// A double converted to int64 as x86-64 does in C: out of range and NaN
/// give the "integer indefinite" value.
fn c_i64(x: f64) -> i64 {
    if !(-9223372036854775808.0..9223372036854775808.0).contains(&x) {
        i64::MIN
    } else {
        x as i64
    }
}

/// A double converted to uint64 as x86-64 code compiled from C does it.
fn c_u64(x: f64) -> u64 {
    if (0.0..9223372036854775808.0).contains(&x) {
        x as u64
    } else if x >= 9223372036854775808.0 {
        (c_i64(x - 9223372036854775808.0) as u64) ^ (1 << 63)
    } else {
        c_i64(x) as u64
    }
}

// ----- struct -------------------------------------------------------------------

const MAXINTSIZE: i64 = 32;
/// Alignment of a double on x86-64 (the default of `!`).
const MAXALIGN: i64 = 8;

struct Header {
    little: bool,
    align: i64,
}

/// The format being read: bytes and a cursor.
struct Fmt<'a> {
    b: &'a [u8],
    i: usize,
}

impl Fmt<'_> {
    fn next(&mut self) -> Option<u8> {
        let c = *self.b.get(self.i)?;
        self.i += 1;
        Some(c)
    }

    /// A number after an option, or `df`.
    fn num(&mut self, lua: &Lua, df: i64) -> mlua::Result<i64> {
        if !self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            return Ok(df);
        }
        let mut a: i64 = 0;
        while let Some(&d) = self.b.get(self.i).filter(|d| d.is_ascii_digit()) {
            let d = (d - b'0') as i64;
            if a > (i32::MAX as i64) / 10 || a * 10 > i32::MAX as i64 - d {
                return Err(located(lua, "integral size overflow".into()));
            }
            a = a * 10 + d;
            self.i += 1;
        }
        Ok(a)
    }
}

fn optsize(lua: &Lua, opt: u8, f: &mut Fmt) -> mlua::Result<i64> {
    Ok(match opt {
        b'B' | b'b' => 1,
        b'H' | b'h' => 2,
        b'L' | b'l' | b'T' | b'd' => 8,
        b'f' => 4,
        b'x' => 1,
        b'c' => f.num(lua, 1)?,
        b'i' | b'I' => {
            let sz = f.num(lua, 4)?;
            if sz > MAXINTSIZE {
                return Err(located(
                    lua,
                    format!("integral size {sz} is larger than limit of {MAXINTSIZE}"),
                ));
            }
            sz
        }
        _ => 0,
    })
}

fn gettoalign(len: i64, h: &Header, opt: u8, size: i64) -> i64 {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    (size - (len & (size - 1))) & (size - 1)
}

fn controloptions(
    lua: &Lua,
    opt: u8,
    f: &mut Fmt,
    h: &mut Header,
    fname: &str,
) -> mlua::Result<()> {
    match opt {
        b' ' => {}
        b'>' => h.little = false,
        b'<' => h.little = true,
        b'!' => {
            let a = f.num(lua, MAXALIGN)?;
            if !(a > 0 && a & (a - 1) == 0) {
                return Err(located(lua, format!("alignment {a} is not a power of 2")));
            }
            h.align = a;
        }
        _ => {
            return Err(arg_error(
                lua,
                1,
                fname,
                &format!("invalid format option '{}'", opt as char),
            ))
        }
    }
    Ok(())
}

fn is_int_opt(opt: u8) -> bool {
    matches!(
        opt,
        b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I'
    )
}

fn struct_pack(lua: &Lua, mut a: MultiValue) -> mlua::Result<mlua::LuaString> {
    let fmt = check_string(lua, &a, 0, "pack")?;
    // The C library pushes a nil after its arguments: a missing first
    // value is reported as "nil", later ones as "no value".
    a.push_back(Value::Nil);
    let mut f = Fmt { b: &fmt, i: 0 };
    let mut h = Header {
        little: true,
        align: 1,
    };
    let mut arg = 1usize;
    let mut out: Vec<u8> = Vec::new();
    let mut total: i64 = 0;
    while let Some(opt) = f.next() {
        let mut size = optsize(lua, opt, &mut f)?;
        let pad = gettoalign(total, &h, opt, size);
        total += pad;
        out.extend(std::iter::repeat_n(0u8, pad as usize));
        match opt {
            o if is_int_opt(o) => {
                let n = check_number(lua, &a, arg, "pack")?;
                arg += 1;
                let mut v = if n < 0.0 { c_i64(n) as u64 } else { c_u64(n) };
                let mut buf = vec![0u8; size as usize];
                for k in 0..size as usize {
                    let at = if h.little { k } else { size as usize - 1 - k };
                    buf[at] = v as u8;
                    v = v.checked_shr(8).unwrap_or(0);
                }
                out.extend(buf);
            }
            b'x' => out.push(0),
            b'f' => {
                let n = check_number(lua, &a, arg, "pack")? as f32;
                arg += 1;
                out.extend(if h.little {
                    n.to_le_bytes()
                } else {
                    n.to_be_bytes()
                });
            }
            b'd' => {
                let n = check_number(lua, &a, arg, "pack")?;
                arg += 1;
                out.extend(if h.little {
                    n.to_le_bytes()
                } else {
                    n.to_be_bytes()
                });
            }
            b'c' | b's' => {
                let s = check_string(lua, &a, arg, "pack")?;
                arg += 1;
                if size == 0 {
                    size = s.len() as i64;
                }
                if (s.len() as i64) < size {
                    // luaL_argcheck names the argument after the string.
                    return Err(arg_error(lua, arg + 1, "pack", "string too short"));
                }
                out.extend_from_slice(&s[..size as usize]);
                if opt == b's' {
                    out.push(0);
                    size += 1;
                }
            }
            _ => controloptions(lua, opt, &mut f, &mut h, "pack")?,
        }
        total += size;
    }
    lua.create_string(&out)
}

fn struct_unpack(lua: &Lua, a: MultiValue) -> mlua::Result<MultiValue> {
    let fmt = check_string(lua, &a, 0, "unpack")?;
    let data = check_string(lua, &a, 1, "unpack")?;
    let ld = data.len() as i64;
    let pos = opt_integer(lua, &a, 2, "unpack", 1)?;
    if pos <= 0 {
        return Err(arg_error(lua, 3, "unpack", "offset must be 1 or greater"));
    }
    let mut pos = pos - 1;
    let mut f = Fmt { b: &fmt, i: 0 };
    let mut h = Header {
        little: true,
        align: 1,
    };
    let mut res: Vec<Value> = Vec::new();
    let short = |lua: &Lua| arg_error(lua, 2, "unpack", "data string too short");
    while let Some(opt) = f.next() {
        let mut size = optsize(lua, opt, &mut f)?;
        pos += gettoalign(pos, &h, opt, size);
        if pos.checked_add(size).is_none_or(|e| e > ld) {
            return Err(short(lua));
        }
        let at = pos as usize;
        match opt {
            o if is_int_opt(o) => {
                let bytes = &data[at..at + size as usize];
                let mut l: u64 = 0;
                for k in 0..size as usize {
                    let b = if h.little {
                        bytes[size as usize - 1 - k]
                    } else {
                        bytes[k]
                    };
                    l = (l << 8) | b as u64;
                }
                let v = if o.is_ascii_lowercase() {
                    let mask = (!0u64).wrapping_shl((size as i32 * 8 - 1) as u32);
                    if l & mask != 0 {
                        l |= mask;
                    }
                    l as i64 as f64
                } else {
                    l as f64
                };
                res.push(Value::Number(v));
            }
            b'x' => {}
            b'f' => {
                let mut b = [0u8; 4];
                b.copy_from_slice(&data[at..at + 4]);
                let v = if h.little {
                    f32::from_le_bytes(b)
                } else {
                    f32::from_be_bytes(b)
                };
                res.push(Value::Number(v as f64));
            }
            b'd' => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&data[at..at + 8]);
                let v = if h.little {
                    f64::from_le_bytes(b)
                } else {
                    f64::from_be_bytes(b)
                };
                res.push(Value::Number(v));
            }
            b'c' => {
                if size == 0 {
                    // The length is the number read just before (or the
                    // data argument itself when nothing was read yet).
                    let prev = match res.last() {
                        Some(v) => v.clone(),
                        None => a.get(1).cloned().unwrap_or(Value::Nil),
                    };
                    let n = match &prev {
                        Value::Integer(_) | Value::Number(_) | Value::String(_) => {
                            lua.coerce_number(prev.clone()).ok().flatten()
                        }
                        _ => None,
                    };
                    let Some(n) = n else {
                        return Err(located(lua, "format 'c0' needs a previous size".into()));
                    };
                    size = c_u64(n) as i64;
                    res.pop();
                    if size < 0 || pos.checked_add(size).is_none_or(|e| e > ld) {
                        return Err(short(lua));
                    }
                }
                res.push(Value::String(
                    lua.create_string(&data[at..at + size as usize])?,
                ));
            }
            b's' => {
                let Some(end) = data[at..].iter().position(|&c| c == 0) else {
                    return Err(located(lua, "unfinished string in data".into()));
                };
                size = end as i64 + 1;
                res.push(Value::String(lua.create_string(&data[at..at + end])?));
            }
            _ => controloptions(lua, opt, &mut f, &mut h, "unpack")?,
        }
        pos += size;
    }
    res.push(Value::Integer(pos + 1));
    Ok(MultiValue::from_iter(res))
}

fn struct_size(lua: &Lua, a: MultiValue) -> mlua::Result<i64> {
    let fmt = check_string(lua, &a, 0, "size")?;
    let mut f = Fmt { b: &fmt, i: 0 };
    let mut h = Header {
        little: true,
        align: 1,
    };
    let mut pos: i64 = 0;
    while let Some(opt) = f.next() {
        let size = optsize(lua, opt, &mut f)?;
        pos += gettoalign(pos, &h, opt, size);
        if opt == b's' {
            return Err(arg_error(lua, 1, "size", "option 's' has no fixed size"));
        } else if opt == b'c' && size == 0 {
            return Err(arg_error(lua, 1, "size", "option 'c0' has no fixed size"));
        }
        if !opt.is_ascii_alphanumeric() {
            controloptions(lua, opt, &mut f, &mut h, "size")?;
        }
        pos += size;
    }
    Ok(pos)
}

/// Builds the `struct` table.
pub(crate) fn struct_library(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("pack", lua.create_function(struct_pack)?)?;
    t.raw_set("unpack", lua.create_function(struct_unpack)?)?;
    t.raw_set("size", lua.create_function(struct_size)?)?;
    Ok(t)
}

// ----- cmsgpack -----------------------------------------------------------------

/// Tables nested deeper are packed as nil (and cycles end).
const MAX_NESTING: usize = 16;
/// Unpacking nested arrays/maps stops past this depth with the C
/// library's "stack overflow" error (it runs out of Lua stack somewhat
/// deeper).
const MAX_UNPACK_DEPTH: usize = 1000;

fn mp_int(out: &mut Vec<u8>, n: i64) {
    if n >= 0 {
        if n <= 127 {
            out.push(n as u8);
        } else if n <= 0xff {
            out.extend([0xcc, n as u8]);
        } else if n <= 0xffff {
            out.push(0xcd);
            out.extend((n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            out.push(0xce);
            out.extend((n as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend((n as u64).to_be_bytes());
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend([0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend((n as i16).to_be_bytes());
    } else if n >= -2147483648 {
        out.push(0xd2);
        out.extend((n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend(n.to_be_bytes());
    }
}

fn mp_number(out: &mut Vec<u8>, n: f64) {
    if !n.is_infinite() && c_i64(n) as f64 == n {
        return mp_int(out, c_i64(n));
    }
    let f = n as f32;
    if f as f64 == n {
        out.push(0xca);
        out.extend(f.to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend(n.to_be_bytes());
    }
}

fn mp_len(out: &mut Vec<u8>, n: usize, fix: u8, small: u8, fix_max: usize) {
    if n <= fix_max {
        out.push(fix | n as u8);
    } else if n <= 0xffff {
        out.push(small);
        out.extend((n as u16).to_be_bytes());
    } else {
        out.push(small + 1);
        out.extend((n as u32).to_be_bytes());
    }
}

fn mp_bytes(out: &mut Vec<u8>, s: &[u8]) {
    let n = s.len();
    if n < 32 {
        out.push(0xa0 | n as u8);
    } else if n <= 0xff {
        out.extend([0xd9, n as u8]);
    } else if n <= 0xffff {
        out.push(0xda);
        out.extend((n as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend((n as u32).to_be_bytes());
    }
    out.extend_from_slice(s);
}

/// Whether a table is packed as an array: only positive integer keys
/// (as C ints), and as many keys as the largest one.
fn is_array(t: &Table) -> mlua::Result<bool> {
    let (mut count, mut max) = (0i64, 0i64);
    for pair in t.clone().pairs::<Value, Value>() {
        let (k, _) = pair?;
        let n = match k {
            Value::Integer(i) => i as f64,
            Value::Number(n) => n,
            _ => return Ok(false),
        };
        let as_int = if n.is_nan() || !(-2147483649.0..2147483648.0).contains(&n) {
            i32::MIN as f64
        } else {
            n.trunc()
        };
        if n <= 0.0 || n.is_infinite() || as_int != n {
            return Ok(false);
        }
        max = max.max(n as i64);
        count += 1;
    }
    Ok(max == count)
}

fn mp_value(out: &mut Vec<u8>, v: &Value, level: usize) -> mlua::Result<()> {
    match v {
        Value::String(s) => mp_bytes(out, &s.as_bytes()),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => mp_number(out, *i as f64),
        Value::Number(n) => mp_number(out, *n),
        Value::Table(t) if level < MAX_NESTING => {
            if is_array(t)? {
                let n = t.raw_len();
                mp_len(out, n, 0x90, 0xdc, 15);
                for j in 1..=n {
                    let e: Value = t.get(j)?;
                    mp_value(out, &e, level + 1)?;
                }
            } else {
                let pairs: Vec<(Value, Value)> = t
                    .clone()
                    .pairs::<Value, Value>()
                    .collect::<mlua::Result<_>>()?;
                mp_len(out, pairs.len(), 0x80, 0xde, 15);
                for (k, e) in &pairs {
                    mp_value(out, k, level + 1)?;
                    mp_value(out, e, level + 1)?;
                }
            }
        }
        _ => out.push(0xc0),
    }
    Ok(())
}

fn mp_pack(lua: &Lua, a: MultiValue) -> mlua::Result<mlua::LuaString> {
    if a.is_empty() {
        return Err(arg_error(lua, 0, "pack", "MessagePack pack needs input."));
    }
    let mut out = Vec::new();
    for v in a.iter() {
        mp_value(&mut out, v, 0)?;
    }
    lua.create_string(&out)
}

enum MpErr {
    Eof,
    BadFmt,
    /// Too deep: the function that ran out of stack.
    Deep(&'static str),
    Lua(mlua::Error),
}

impl From<mlua::Error> for MpErr {
    fn from(e: mlua::Error) -> Self {
        MpErr::Lua(e)
    }
}

struct Cur<'a> {
    b: &'a [u8],
    at: usize,
}

impl Cur<'_> {
    fn left(&self) -> usize {
        self.b.len() - self.at
    }

    fn take(&mut self, n: usize) -> Result<&[u8], MpErr> {
        if self.left() < n {
            return Err(MpErr::Eof);
        }
        let s = &self.b[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }

    fn be(&mut self, n: usize) -> Result<u64, MpErr> {
        Ok(self.take(n)?.iter().fold(0u64, |a, &b| (a << 8) | b as u64))
    }
}

fn mp_decode(lua: &Lua, c: &mut Cur, depth: usize) -> Result<Value, MpErr> {
    let t = c.take(1)?[0];
    if depth > MAX_UNPACK_DEPTH {
        return Err(MpErr::Deep(if matches!(t, 0x80..=0x8f | 0xde | 0xdf) {
            "in function mp_decode_to_lua_hash"
        } else {
            "in function mp_decode_to_lua_array"
        }));
    }
    let num = |v: f64| Ok(Value::Number(v));
    match t {
        0x00..=0x7f => num(t as f64),
        0xe0..=0xff => num(t as i8 as f64),
        0xc0 => Ok(Value::Nil),
        0xc2 => Ok(Value::Boolean(false)),
        0xc3 => Ok(Value::Boolean(true)),
        0xcc => num(c.be(1)? as f64),
        0xcd => num(c.be(2)? as f64),
        0xce => num(c.be(4)? as f64),
        0xcf => num(c.be(8)? as f64),
        0xd0 => num(c.be(1)? as u8 as i8 as f64),
        0xd1 => num(c.be(2)? as u16 as i16 as f64),
        0xd2 => num(c.be(4)? as u32 as i32 as f64),
        0xd3 => num(c.be(8)? as i64 as f64),
        0xca => num(f32::from_bits(c.be(4)? as u32) as f64),
        0xcb => num(f64::from_bits(c.be(8)?)),
        0xa0..=0xbf | 0xd9 | 0xda | 0xdb => {
            let n = match t {
                0xd9 => c.be(1)?,
                0xda => c.be(2)?,
                0xdb => c.be(4)?,
                _ => (t & 0x1f) as u64,
            } as usize;
            let s = c.take(n)?;
            Ok(Value::String(lua.create_string(s)?))
        }
        0x90..=0x9f | 0xdc | 0xdd => {
            let n = match t {
                0xdc => c.be(2)?,
                0xdd => c.be(4)?,
                _ => (t & 0x0f) as u64,
            };
            let tab = lua.create_table()?;
            for i in 1..=n {
                let v = mp_decode(lua, c, depth + 1)?;
                tab.raw_set(i, v)?;
            }
            Ok(Value::Table(tab))
        }
        0x80..=0x8f | 0xde | 0xdf => {
            let n = match t {
                0xde => c.be(2)?,
                0xdf => c.be(4)?,
                _ => (t & 0x0f) as u64,
            };
            let tab = lua.create_table()?;
            for _ in 0..n {
                let k = mp_decode(lua, c, depth + 1)?;
                let v = mp_decode(lua, c, depth + 1)?;
                tab.set(k, v)?;
            }
            Ok(Value::Table(tab))
        }
        _ => Err(MpErr::BadFmt),
    }
}

/// lua-cmsgpack's mp_unpack_full: `limit` values from `offset` (both 0:
/// everything, without the offset in front).
fn mp_unpack_full(lua: &Lua, s: &[u8], limit: i64, offset: i64) -> mlua::Result<MultiValue> {
    let len = s.len() as i64;
    let decode_all = limit == 0 && offset == 0;
    if offset < 0 || limit < 0 {
        return Err(located(
            lua,
            format!(
                "Invalid request to unpack with offset of {} and limit of {}.",
                offset as i32, len as i32
            ),
        ));
    } else if offset > len {
        return Err(located(
            lua,
            format!(
                "Start offset {} greater than input length {}.",
                offset as i32, len as i32
            ),
        ));
    }
    let limit = if decode_all { i64::MAX } else { limit };
    let mut c = Cur {
        b: &s[offset as usize..],
        at: 0,
    };
    let mut out = Vec::new();
    let mut cnt = 0;
    while c.left() > 0 && cnt < limit {
        match mp_decode(lua, &mut c, 0) {
            Ok(v) => out.push(v),
            Err(MpErr::Eof) => return Err(located(lua, "Missing bytes in input.".into())),
            Err(MpErr::BadFmt) => return Err(located(lua, "Bad data format in input.".into())),
            Err(MpErr::Deep(f)) => return Err(located(lua, format!("stack overflow ({f})"))),
            Err(MpErr::Lua(e)) => return Err(e),
        }
        cnt += 1;
    }
    if !decode_all {
        let next = if c.left() == 0 {
            -1
        } else {
            (len - c.left() as i64) as i32 as i64
        };
        out.insert(0, Value::Integer(next));
    }
    Ok(MultiValue::from_iter(out))
}

/// Builds the `cmsgpack` table.
pub(crate) fn cmsgpack_library(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("pack", lua.create_function(mp_pack)?)?;
    t.raw_set(
        "unpack",
        lua.create_function(|lua, a: MultiValue| {
            let s = check_string(lua, &a, 0, "unpack")?;
            mp_unpack_full(lua, &s, 0, 0)
        })?,
    )?;
    t.raw_set(
        "unpack_one",
        lua.create_function(|lua, a: MultiValue| {
            let s = check_string(lua, &a, 0, "unpack_one")?;
            let offset = opt_integer(lua, &a, 1, "unpack_one", 0)?;
            mp_unpack_full(lua, &s, 1, offset)
        })?,
    )?;
    t.raw_set(
        "unpack_limit",
        lua.create_function(|lua, a: MultiValue| {
            let s = check_string(lua, &a, 0, "unpack_limit")?;
            let limit = c_i64(check_number(lua, &a, 1, "unpack_limit")?);
            let offset = opt_integer(lua, &a, 2, "unpack_limit", 0)?;
            mp_unpack_full(lua, &s, limit, offset)
        })?,
    )?;
    t.raw_set("_NAME", "cmsgpack")?;
    t.raw_set("_VERSION", "lua-cmsgpack 0.4.0")?;
    t.raw_set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
    t.raw_set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(lua: &Lua, src: &str) -> String {
        let s: mlua::LuaString = lua.load(src).eval().unwrap();
        s.as_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }

    fn lua() -> Lua {
        let lua = Lua::new();
        lua.globals()
            .set("struct", struct_library(&lua).unwrap())
            .unwrap();
        lua.globals()
            .set("cmsgpack", cmsgpack_library(&lua).unwrap())
            .unwrap();
        lua
    }

    #[test]
    fn struct_matches_redis() {
        // Expected bytes from redis-server 7.0.
        let l = lua();
        assert_eq!(hex(&l, "return struct.pack('>i', 1)"), "00000001");
        assert_eq!(hex(&l, "return struct.pack('<i', -2)"), "feffffff");
        assert_eq!(hex(&l, "return struct.pack('b', 300)"), "2c");
        assert_eq!(
            hex(&l, "return struct.pack('>i16', -1)"),
            "0000000000000000ffffffffffffffff"
        );
        assert_eq!(
            hex(&l, "return struct.pack('>I8', 2^64)"),
            "0000000000000000"
        );
        assert_eq!(
            hex(&l, "return struct.pack('<l', 2^63)"),
            "0000000000000080"
        );
        assert_eq!(hex(&l, "return struct.pack('>i4', -1e19)"), "00000000");
        assert_eq!(hex(&l, "return struct.pack('f', 1.5)"), "0000c03f");
        assert_eq!(
            hex(&l, "return struct.pack('!b d', 1, 2)"),
            "01000000000000000000000000000040"
        );
        assert_eq!(
            hex(&l, "return struct.pack('!4 b i', 1, 2)"),
            "0100000002000000"
        );
        assert_eq!(
            hex(&l, "return struct.pack('s c2', 'ab', 'xyz')"),
            "6162007879"
        );
        let n: i64 = l.load("return struct.size('!8 b d')").eval().unwrap();
        assert_eq!(n, 16);
        let n: i64 = l.load("return struct.size('y')").eval().unwrap();
        assert_eq!(n, 0);
        let v: Vec<f64> = l
            .load("return {struct.unpack('>I3 b', '\\1\\2\\3\\255')}")
            .eval()
            .unwrap();
        assert_eq!(v, vec![66051.0, -1.0, 5.0]);
        let e = l.load("return struct.pack('i33', 1)").exec().unwrap_err();
        assert!(e
            .to_string()
            .contains("integral size 33 is larger than limit of 32"));
        let e = l
            .load("return struct.unpack('c0', 'abc')")
            .exec()
            .unwrap_err();
        assert!(e.to_string().contains("format 'c0' needs a previous size"));
    }

    #[test]
    fn cmsgpack_matches_redis() {
        let l = lua();
        assert_eq!(
            hex(
                &l,
                "return cmsgpack.pack(nil, true, 0, 128, -33, 65536, -2^31-1)"
            ),
            "c0c300cc80d0dfce00010000d3ffffffff7fffffff"
        );
        assert_eq!(
            hex(&l, "return cmsgpack.pack(1.5, 0.1, 2^63, 1/0)"),
            "ca3fc00000cb3fb999999999999aca5f000000ca7f800000"
        );
        assert_eq!(
            hex(&l, "return cmsgpack.pack({1,2,3}, {}, {a=1}, {1, nil, 3})"),
            "930102039081a161018201010303"
        );
        assert_eq!(
            hex(
                &l,
                "local t = {} for i=1,20 do t = {t} end return cmsgpack.pack(t)"
            ),
            format!("{}c0", "91".repeat(16))
        );
        let v: Vec<i64> = l
            .load("return {cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 2)}")
            .eval()
            .unwrap();
        assert_eq!(v, vec![2, 1, 2]);
        let e = l
            .load("return cmsgpack.unpack('\\193')")
            .exec()
            .unwrap_err();
        assert!(e.to_string().contains("Bad data format in input."));
        let e = l
            .load("return cmsgpack.unpack('\\205\\1')")
            .exec()
            .unwrap_err();
        assert!(e.to_string().contains("Missing bytes in input."));
        // Deep nesting is refused, not a stack overflow.
        let e = l
            .load("return cmsgpack.unpack(string.rep('\\145', 100000))")
            .exec()
            .unwrap_err();
        assert!(e.to_string().contains("stack overflow"), "{e}");
    }
}
