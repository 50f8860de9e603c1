//! `cjson.encode` / `cjson.decode` with lua-cjson 2.1's behaviour as Redis
//! ships it: numbers as %.14g, `/` escaped, tables whose keys are all
//! positive integers are arrays (holes as null, refused when too sparse),
//! others objects, `cjson.null` for JSON null; its error messages.

use mlua::{LightUserData, Lua, MultiValue, Table, Value};

use super::libs::located;

const MAX_DEPTH: usize = 1000;

fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

/// C's printf("%.14g").
pub(crate) fn fmt_g14(x: f64) -> String {
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let exp = x.abs().log10().floor() as i32;
    // Round to 14 significant digits first: the exponent may change.
    let s = format!("{:.13e}", x);
    let (mant, e) = s.split_once('e').unwrap_or((&s, "0"));
    let e: i32 = e.parse().unwrap_or(exp);
    if !(-4..14).contains(&e) {
        let mant = trim_zeros(mant);
        let sign = if e < 0 { '-' } else { '+' };
        return format!("{mant}e{sign}{:02}", e.abs());
    }
    let decimals = (13 - e).max(0) as usize;
    trim_zeros(&format!("{:.*}", decimals, x)).to_string()
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

fn encode_string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            c if c < 0x20 || c == 0x7f => out.extend_from_slice(format!("\\u{:04x}", c).as_bytes()),
            c => out.push(c),
        }
    }
    out.push(b'"');
}

fn encode_number(lua: &Lua, out: &mut Vec<u8>, n: f64) -> mlua::Result<()> {
    if !n.is_finite() {
        return Err(located(
            lua,
            "Cannot serialise number: must not be NaN or Inf".into(),
        ));
    }
    out.extend_from_slice(fmt_g14(n).as_bytes());
    Ok(())
}

/// lua-cjson's array test: Some(max index) when every key is a positive
/// integer, None for an object.
fn array_length(lua: &Lua, t: &Table) -> mlua::Result<Option<usize>> {
    let (mut max, mut items) = (0usize, 0usize);
    for p in t.pairs::<Value, Value>() {
        let (k, _) = p?;
        let n = match k {
            Value::Integer(i) => i as f64,
            Value::Number(n) => n,
            _ => return Ok(None),
        };
        if n < 1.0 || n.fract() != 0.0 {
            return Ok(None);
        }
        max = max.max(n as usize);
        items += 1;
    }
    if max > 10 && max > items * 2 {
        return Err(located(
            lua,
            "Cannot serialise table: excessively sparse array".into(),
        ));
    }
    Ok(Some(max))
}

fn encode_value(lua: &Lua, out: &mut Vec<u8>, v: &Value, depth: usize) -> mlua::Result<()> {
    match v {
        Value::String(s) => encode_string(out, &s.as_bytes()),
        Value::Integer(i) => encode_number(lua, out, *i as f64)?,
        Value::Number(n) => encode_number(lua, out, *n)?,
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        Value::Table(t) => {
            let depth = depth + 1;
            if depth > MAX_DEPTH {
                return Err(located(
                    lua,
                    format!("Cannot serialise, excessive nesting ({depth})"),
                ));
            }
            match array_length(lua, t)? {
                Some(n) if n > 0 => {
                    out.push(b'[');
                    for i in 1..=n {
                        if i > 1 {
                            out.push(b',');
                        }
                        encode_value(lua, out, &t.raw_get::<Value>(i)?, depth)?;
                    }
                    out.push(b']');
                }
                _ => {
                    out.push(b'{');
                    let mut first = true;
                    for p in t.pairs::<Value, Value>() {
                        let (k, v) = p?;
                        if !first {
                            out.push(b',');
                        }
                        first = false;
                        match &k {
                            Value::String(s) => encode_string(out, &s.as_bytes()),
                            Value::Integer(_) | Value::Number(_) => {
                                let n = match k {
                                    Value::Integer(i) => i as f64,
                                    Value::Number(n) => n,
                                    _ => 0.0,
                                };
                                out.push(b'"');
                                encode_number(lua, out, n)?;
                                out.push(b'"');
                            }
                            k => {
                                return Err(located(
                                    lua,
                                    format!(
                                        "Cannot serialise {}: table key must be a number or string",
                                        k.type_name()
                                    ),
                                ))
                            }
                        }
                        out.push(b':');
                        encode_value(lua, out, &v, depth)?;
                    }
                    out.push(b'}');
                }
            }
        }
        v => {
            return Err(located(
                lua,
                format!("Cannot serialise {}: type not supported", v.type_name()),
            ))
        }
    }
    Ok(())
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

/// What the parser found where it expected something else (lua-cjson's
/// token names).
enum Found {
    Token(&'static str, usize),
    Invalid(&'static str, usize),
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while matches!(self.s.get(self.pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn found(&self) -> Found {
        let i = self.pos;
        let name = match self.s.get(i) {
            None => "T_END",
            Some(b'{') => "T_OBJ_BEGIN",
            Some(b'}') => "T_OBJ_END",
            Some(b'[') => "T_ARR_BEGIN",
            Some(b']') => "T_ARR_END",
            Some(b'"') => "T_STRING",
            Some(b'-' | b'0'..=b'9') => "T_NUMBER",
            Some(b't') if self.s[i..].starts_with(b"true") => "T_BOOLEAN",
            Some(b'f') if self.s[i..].starts_with(b"false") => "T_BOOLEAN",
            Some(b'n') if self.s[i..].starts_with(b"null") => "T_NULL",
            Some(b':') => "T_COLON",
            Some(b',') => "T_COMMA",
            _ => return Found::Invalid("invalid token", i),
        };
        Found::Token(name, i)
    }

    fn fail<T>(&self, lua: &Lua, expected: &str, f: Found) -> mlua::Result<T> {
        let (what, at) = match f {
            Found::Token(n, i) => (n, i),
            Found::Invalid(n, i) => (n, i),
        };
        Err(located(
            lua,
            format!(
                "Expected {expected} but found {what} at character {}",
                at + 1
            ),
        ))
    }

    fn value(&mut self, lua: &Lua, depth: usize) -> mlua::Result<Value> {
        self.skip_ws();
        let start = self.pos;
        match self.s.get(self.pos) {
            Some(b'{') | Some(b'[') => {
                let depth = depth + 1;
                if depth > MAX_DEPTH {
                    return Err(located(
                        lua,
                        format!(
                            "Found too many nested data structures ({depth}) at character {}",
                            start + 1
                        ),
                    ));
                }
                if self.s[self.pos] == b'{' {
                    self.object(lua, depth)
                } else {
                    self.array(lua, depth)
                }
            }
            Some(b'"') => Ok(Value::String(lua.create_string(self.string(lua)?)?)),
            Some(b'-' | b'0'..=b'9') => self.number(lua),
            _ => {
                for (word, v) in [
                    (&b"true"[..], Value::Boolean(true)),
                    (b"false", Value::Boolean(false)),
                    (b"null", null()),
                ] {
                    if self.s[self.pos..].starts_with(word) {
                        self.pos += word.len();
                        return Ok(v);
                    }
                }
                let f = self.found();
                self.fail(lua, "value", f)
            }
        }
    }

    fn number(&mut self, lua: &Lua) -> mlua::Result<Value> {
        let start = self.pos;
        let mut end = start;
        while matches!(
            self.s.get(end),
            Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
        ) {
            end += 1;
        }
        let text = std::str::from_utf8(&self.s[start..end]).unwrap_or("");
        match text.parse::<f64>() {
            Ok(n) => {
                self.pos = end;
                Ok(Value::Number(n))
            }
            Err(_) => self.fail(lua, "value", Found::Invalid("invalid number", start)),
        }
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let h = self.s.get(at..at + 4)?;
        u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()
    }

    fn string(&mut self, lua: &Lua) -> mlua::Result<Vec<u8>> {
        let start = self.pos;
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.pos) else {
                return self.fail(
                    lua,
                    "value",
                    Found::Invalid("unexpected end of string", start),
                );
            };
            self.pos += 1;
            match c {
                b'"' => return Ok(out),
                b'\\' => {
                    let Some(&e) = self.s.get(self.pos) else {
                        return self.fail(
                            lua,
                            "value",
                            Found::Invalid("unexpected end of string", start),
                        );
                    };
                    self.pos += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0c),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let bad = Found::Invalid("invalid unicode escape code", start);
                            let Some(mut cp) = self.hex4(self.pos) else {
                                return self.fail(lua, "value", bad);
                            };
                            self.pos += 4;
                            if (0xD800..0xDC00).contains(&cp) {
                                let low = if self.s.get(self.pos..self.pos + 2) == Some(b"\\u") {
                                    self.hex4(self.pos + 2)
                                } else {
                                    None
                                };
                                match low {
                                    Some(l) if (0xDC00..0xE000).contains(&l) => {
                                        cp = 0x10000 + ((cp - 0xD800) << 10) + (l - 0xDC00);
                                        self.pos += 6;
                                    }
                                    _ => return self.fail(lua, "value", bad),
                                }
                            } else if (0xDC00..0xE000).contains(&cp) {
                                return self.fail(lua, "value", bad);
                            }
                            let ch = char::from_u32(cp).unwrap_or('\u{FFFD}');
                            let mut b = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
                        }
                        _ => {
                            return self.fail(
                                lua,
                                "value",
                                Found::Invalid("invalid escape code", start),
                            )
                        }
                    }
                }
                c => out.push(c),
            }
        }
    }

    fn array(&mut self, lua: &Lua, depth: usize) -> mlua::Result<Value> {
        self.pos += 1;
        let t = lua.create_table()?;
        self.skip_ws();
        if self.s.get(self.pos) == Some(&b']') {
            self.pos += 1;
            return Ok(Value::Table(t));
        }
        let mut i = 1;
        loop {
            let v = self.value(lua, depth)?;
            t.raw_set(i, v)?;
            i += 1;
            self.skip_ws();
            match self.s.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(Value::Table(t));
                }
                _ => {
                    let f = self.found();
                    return self.fail(lua, "comma or array end", f);
                }
            }
        }
    }

    fn object(&mut self, lua: &Lua, depth: usize) -> mlua::Result<Value> {
        self.pos += 1;
        let t = lua.create_table()?;
        self.skip_ws();
        if self.s.get(self.pos) == Some(&b'}') {
            self.pos += 1;
            return Ok(Value::Table(t));
        }
        loop {
            self.skip_ws();
            if self.s.get(self.pos) != Some(&b'"') {
                let f = self.found();
                return self.fail(lua, "object key string", f);
            }
            let k = self.string(lua)?;
            self.skip_ws();
            if self.s.get(self.pos) != Some(&b':') {
                let f = self.found();
                return self.fail(lua, "colon", f);
            }
            self.pos += 1;
            let v = self.value(lua, depth)?;
            t.raw_set(lua.create_string(&k)?, v)?;
            self.skip_ws();
            match self.s.get(self.pos) {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Value::Table(t));
                }
                _ => {
                    let f = self.found();
                    return self.fail(lua, "comma or object end", f);
                }
            }
        }
    }
}

/// Builds the `cjson` table.
pub(crate) fn library(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "encode",
        lua.create_function(|lua, a: MultiValue| {
            if a.len() != 1 {
                return Err(located(
                    lua,
                    "bad argument #1 to 'encode' (expected 1 argument)".into(),
                ));
            }
            let mut out = Vec::new();
            encode_value(lua, &mut out, &a[0], 0)?;
            lua.create_string(&out)
        })?,
    )?;
    t.raw_set(
        "decode",
        lua.create_function(|lua, a: MultiValue| {
            if a.len() != 1 {
                return Err(located(
                    lua,
                    "bad argument #1 to 'decode' (expected 1 argument)".into(),
                ));
            }
            let s = match &a[0] {
                Value::String(s) => s.as_bytes().to_vec(),
                v @ (Value::Integer(_) | Value::Number(_)) => lua
                    .coerce_string(v.clone())?
                    .map(|s| s.as_bytes().to_vec())
                    .unwrap_or_default(),
                v => {
                    return Err(located(
                        lua,
                        format!(
                            "bad argument #1 to 'decode' (string expected, got {})",
                            v.type_name()
                        ),
                    ))
                }
            };
            let mut p = Parser { s: &s, pos: 0 };
            let v = p.value(lua, 0)?;
            p.skip_ws();
            if p.pos < s.len() {
                let f = p.found();
                return p.fail(lua, "the end", f);
            }
            Ok(v)
        })?,
    )?;
    t.raw_set("null", null())?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g14_formats_like_printf() {
        for (x, s) in [
            (1.5, "1.5"),
            (0.1, "0.1"),
            (1e20, "1e+20"),
            (123456789012345.0, "1.2345678901234e+14"),
            (100.0, "100"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (99999999999999.0, "99999999999999"),
        ] {
            assert_eq!(fmt_g14(x), s, "{x}");
        }
    }

    fn eval(lua: &Lua, src: &str) -> String {
        lua.load(src).eval::<String>().unwrap()
    }

    #[test]
    fn encode_and_decode_like_lua_cjson() {
        let lua = Lua::new();
        lua.globals().set("cjson", library(&lua).unwrap()).unwrap();
        assert_eq!(
            eval(&lua, "return cjson.encode({1, 2, {a=1}})"),
            r#"[1,2,{"a":1}]"#
        );
        assert_eq!(eval(&lua, "return cjson.encode({})"), "{}");
        assert_eq!(
            eval(&lua, r#"return cjson.encode('a/b"c\n\1')"#),
            r#""a\/b\"c\n\u0001""#
        );
        assert_eq!(
            eval(&lua, "return cjson.encode({[1]=1, [3]=3})"),
            "[1,null,3]"
        );
        assert_eq!(eval(&lua, "return cjson.encode({[1.5]=1})"), r#"{"1.5":1}"#);
        assert_eq!(
            eval(
                &lua,
                r#"local t = cjson.decode('{"a":[1,2,null,{"b":"x"}]}') return t.a[4].b .. tostring(t.a[3] == cjson.null)"#
            ),
            "xtrue"
        );
        assert_eq!(eval(&lua, r#"return cjson.decode('"\\u00e9"')"#), "é");
        let e = lua
            .load("return cjson.decode('[1,')")
            .eval::<Value>()
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("Expected value but found T_END at character 4"),
            "{e}"
        );
        let e = lua
            .load("return cjson.encode({[1]=1, [20]=3})")
            .eval::<Value>()
            .unwrap_err();
        assert!(e.to_string().contains("excessively sparse array"), "{e}");
    }
}
