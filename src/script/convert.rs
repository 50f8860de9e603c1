//! Conversions between RESP replies and Lua values, with Redis 7.0's rules.
//!
//! RESP -> Lua (what `redis.call` returns): integer -> number, bulk ->
//! string, RESP2 null bulk/array -> false, array -> table, status ->
//! `{ok=...}`, error -> `{err=...}`; RESP3 (after `redis.setresp(3)`):
//! map -> `{map={...}}`, set -> `{set={member=true}}`, null -> nil,
//! double -> `{double=n}`, boolean -> boolean, big number ->
//! `{big_number=s}`, verbatim -> `{verbatim_string={format=, string=}}`.
//!
//! Lua -> RESP (the script's return value): number -> integer (truncated),
//! string -> bulk, true -> 1 (RESP3 script: boolean), false -> null (RESP3
//! script: boolean), table -> array up to the first nil, unless it has an
//! `err`, `ok`, `double`, `big_number`, `map` or `set` field.

use mlua::{Lua, Table, Value};

use crate::resp::Out;

/// Deepest nesting converted; deeper values become an error element.
const MAX_DEPTH: usize = 1000;

fn line<'a>(b: &'a [u8], pos: &mut usize) -> mlua::Result<&'a [u8]> {
    let rest = &b[*pos..];
    let end = memchr::memmem::find(rest, b"\r\n")
        .ok_or_else(|| mlua::Error::RuntimeError("truncated reply".into()))?;
    *pos += end + 2;
    Ok(&rest[..end])
}

fn int(s: &[u8]) -> mlua::Result<i64> {
    crate::util::parse_i64(s).ok_or_else(|| mlua::Error::RuntimeError("bad reply".into()))
}

fn table1(lua: &Lua, k: &str, v: impl mlua::IntoLua) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set(k, v)?;
    Ok(Value::Table(t))
}

/// Converts one reply (the whole buffer) to a Lua value; the flag tells
/// whether it is an error reply.
pub fn reply_to_lua(lua: &Lua, b: &[u8]) -> mlua::Result<(Value, bool)> {
    let is_err = b.first() == Some(&b'-') || b.first() == Some(&b'!');
    let mut pos = 0;
    let v = parse(lua, b, &mut pos, 0)?;
    Ok((v, is_err))
}

fn parse(lua: &Lua, b: &[u8], pos: &mut usize, depth: usize) -> mlua::Result<Value> {
    if depth > MAX_DEPTH {
        return Err(mlua::Error::RuntimeError("reply nested too deep".into()));
    }
    let tag = *b
        .get(*pos)
        .ok_or_else(|| mlua::Error::RuntimeError("empty reply".into()))?;
    *pos += 1;
    let l = line(b, pos)?;
    Ok(match tag {
        b'+' => table1(lua, "ok", lua.create_string(l)?)?,
        b'-' => table1(lua, "err", lua.create_string(l)?)?,
        b':' => Value::Number(int(l)? as f64),
        b'$' | b'!' | b'=' => {
            let n = int(l)?;
            if n < 0 {
                return Ok(Value::Boolean(false));
            }
            let n = n as usize;
            let data = b
                .get(*pos..*pos + n)
                .ok_or_else(|| mlua::Error::RuntimeError("truncated reply".into()))?;
            *pos += n + 2;
            match tag {
                b'!' => table1(lua, "err", lua.create_string(data)?)?,
                b'=' => {
                    let (fmt, text) = if data.len() >= 4 && data[3] == b':' {
                        (&data[..3], &data[4..])
                    } else {
                        (&b"txt"[..], data)
                    };
                    let t = lua.create_table()?;
                    t.raw_set("format", lua.create_string(fmt)?)?;
                    t.raw_set("string", lua.create_string(text)?)?;
                    table1(lua, "verbatim_string", t)?
                }
                _ => Value::String(lua.create_string(data)?),
            }
        }
        b'*' | b'>' | b'~' => {
            let n = int(l)?;
            if n < 0 {
                return Ok(Value::Boolean(false));
            }
            let t = lua.create_table_with_capacity(if tag == b'~' { 0 } else { n as usize }, 0)?;
            for i in 0..n as usize {
                let v = parse(lua, b, pos, depth + 1)?;
                if tag == b'~' {
                    t.raw_set(v, true)?;
                } else {
                    t.raw_set(i + 1, v)?;
                }
            }
            if tag == b'~' {
                table1(lua, "set", t)?
            } else {
                Value::Table(t)
            }
        }
        b'%' | b'|' => {
            let n = int(l)?;
            let t = lua.create_table()?;
            for _ in 0..n.max(0) {
                let k = parse(lua, b, pos, depth + 1)?;
                let v = parse(lua, b, pos, depth + 1)?;
                if !k.is_nil() {
                    t.raw_set(k, v)?;
                }
            }
            if tag == b'|' {
                // An attribute precedes the real reply: skip it.
                return parse(lua, b, pos, depth);
            }
            table1(lua, "map", t)?
        }
        b'_' => Value::Nil,
        b'#' => Value::Boolean(l == b"t"),
        b',' => {
            let s = std::str::from_utf8(l).unwrap_or("nan");
            let d = match s {
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                s => s.parse().unwrap_or(f64::NAN),
            };
            table1(lua, "double", d)?
        }
        b'(' => table1(lua, "big_number", lua.create_string(l)?)?,
        _ => return Err(mlua::Error::RuntimeError("unknown reply type".into())),
    })
}

fn field(t: &Table, k: &str) -> Value {
    t.raw_get::<Value>(k).unwrap_or(Value::Nil)
}

/// Lua number to reply integer: truncated toward zero, as C's cast.
fn number_to_int(n: f64) -> i64 {
    // Out of range (and NaN) gives what x86's conversion gives C's cast.
    if (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&n) {
        n as i64
    } else {
        i64::MIN
    }
}

/// Writes a script's return value as a reply. `script_resp3`: the script
/// called `redis.setresp(3)`.
pub fn lua_to_reply(out: &mut Out, v: &Value, script_resp3: bool, depth: usize) {
    if depth > MAX_DEPTH {
        return out.err("reached lua stack limit");
    }
    match v {
        Value::String(s) => out.bulk(&s.as_bytes()),
        Value::Integer(i) => out.int(*i),
        Value::Number(n) => out.int(number_to_int(*n)),
        Value::Boolean(b) => {
            if script_resp3 {
                out.boolean(*b)
            } else if *b {
                out.int(1)
            } else {
                out.null()
            }
        }
        Value::Table(t) => table_to_reply(out, t, script_resp3, depth),
        _ => out.null(),
    }
}

fn table_to_reply(out: &mut Out, t: &Table, script_resp3: bool, depth: usize) {
    if let Value::String(e) = field(t, "err") {
        return out.error(&String::from_utf8_lossy(&e.as_bytes()));
    }
    if let Value::String(s) = field(t, "ok") {
        return out.simple(&String::from_utf8_lossy(&s.as_bytes()));
    }
    match field(t, "double") {
        Value::Number(d) => return out.double(d),
        Value::Integer(i) => return out.double(i as f64),
        _ => {}
    }
    if let Value::String(s) = field(t, "big_number") {
        let s = s.as_bytes();
        if out.resp3 {
            out.raw(b"(");
            out.raw(&s);
            return out.raw(b"\r\n");
        }
        return out.bulk(&s);
    }
    if let Value::Table(m) = field(t, "map") {
        let pairs: Vec<(Value, Value)> = m.pairs::<Value, Value>().filter_map(|p| p.ok()).collect();
        out.map(pairs.len());
        for (k, v) in &pairs {
            lua_to_reply(out, k, script_resp3, depth + 1);
            lua_to_reply(out, v, script_resp3, depth + 1);
        }
        return;
    }
    if let Value::Table(s) = field(t, "set") {
        let keys: Vec<Value> = s
            .pairs::<Value, Value>()
            .filter_map(|p| p.ok().map(|(k, _)| k))
            .collect();
        out.set(keys.len());
        for k in &keys {
            lua_to_reply(out, k, script_resp3, depth + 1);
        }
        return;
    }
    let mut items = Vec::new();
    loop {
        match t.raw_get::<Value>(items.len() + 1) {
            Ok(Value::Nil) | Err(_) => break,
            Ok(v) => items.push(v),
        }
    }
    out.array(items.len());
    for v in &items {
        lua_to_reply(out, v, script_resp3, depth + 1);
    }
}

/// The error reply of a script that raised `v` (the glue's error table, or
/// a plain message when Lua could not run the handler, e.g. out of memory).
pub fn script_error(v: &Value, sha: &str) -> String {
    let Value::Table(t) = v else {
        let msg = match v {
            Value::String(s) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
            _ => "unknown error".to_string(),
        };
        return format!("ERR {msg} script: {sha}");
    };
    let err = match field(t, "err") {
        Value::String(s) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
        _ => "ERR unknown error".to_string(),
    };
    let source = match field(t, "source") {
        Value::String(s) => Some(String::from_utf8_lossy(&s.as_bytes()).into_owned()),
        _ => None,
    };
    let line = match field(t, "line") {
        Value::Integer(i) => Some(i),
        Value::Number(n) => Some(n as i64),
        _ => None,
    };
    match (source, line) {
        (Some(s), Some(l)) => format!("{err} script: {sha}, on {s}:{l}."),
        _ => format!("{err} script: {sha}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to_reply(src: &str, resp3_client: bool, script_resp3: bool) -> Vec<u8> {
        let lua = Lua::new();
        let v: Value = lua.load(src).eval().unwrap();
        let mut buf = Vec::new();
        lua_to_reply(&mut Out::new(&mut buf, resp3_client), &v, script_resp3, 0);
        buf
    }

    #[test]
    fn lua_values_to_resp2() {
        assert_eq!(to_reply("return 3.99", false, false), b":3\r\n");
        assert_eq!(to_reply("return -3.7", false, false), b":-3\r\n");
        assert_eq!(to_reply("return 'x'", false, false), b"$1\r\nx\r\n");
        assert_eq!(
            to_reply("return {true, false, nil, 5}", false, false),
            b"*2\r\n:1\r\n$-1\r\n"
        );
        assert_eq!(
            to_reply("return {ok='A', err='B'}", false, false),
            b"-B\r\n"
        );
        assert_eq!(to_reply("return {ok='FINE'}", false, false), b"+FINE\r\n");
        assert_eq!(
            to_reply("return {double=1.5}", false, false),
            b"$3\r\n1.5\r\n"
        );
        assert_eq!(to_reply("return nil", false, false), b"$-1\r\n");
        assert_eq!(
            to_reply("return {1,{2,{3}},'a'}", false, false),
            b"*3\r\n:1\r\n*2\r\n:2\r\n*1\r\n:3\r\n$1\r\na\r\n"
        );
    }

    #[test]
    fn lua_values_to_resp3() {
        assert_eq!(
            to_reply("return {true,false}", true, false),
            b"*2\r\n:1\r\n_\r\n"
        );
        assert_eq!(
            to_reply("return {true,false}", true, true),
            b"*2\r\n#t\r\n#f\r\n"
        );
        assert_eq!(
            to_reply("return {true,false}", false, true),
            b"*2\r\n:1\r\n:0\r\n"
        );
        assert_eq!(to_reply("return {double=1.5}", true, true), b",1.5\r\n");
        assert_eq!(
            to_reply("return {map={a=1}}", true, true),
            b"%1\r\n$1\r\na\r\n:1\r\n"
        );
        assert_eq!(
            to_reply("return {map={a=1}}", false, true),
            b"*2\r\n$1\r\na\r\n:1\r\n"
        );
        assert_eq!(
            to_reply("return {set={a=true}}", true, true),
            b"~1\r\n$1\r\na\r\n"
        );
        assert_eq!(
            to_reply("return {big_number='123'}", true, true),
            b"(123\r\n"
        );
        assert_eq!(
            to_reply("return {big_number='123'}", false, true),
            b"$3\r\n123\r\n"
        );
    }

    #[test]
    fn self_referencing_table_is_bounded() {
        let r = to_reply("local t = {} t[1] = t return t", false, false);
        assert!(r.ends_with(b"-ERR reached lua stack limit\r\n"));
    }

    fn from_reply(b: &[u8], check: &str) {
        let lua = Lua::new();
        let (v, _) = reply_to_lua(&lua, b).unwrap();
        let f: mlua::Function = lua.load(check).eval().unwrap();
        assert!(f.call::<bool>(v).unwrap(), "{check}");
    }

    #[test]
    fn resp_replies_to_lua() {
        from_reply(b":5\r\n", "return function(v) return v == 5 end");
        from_reply(b"$3\r\nabc\r\n", "return function(v) return v == 'abc' end");
        from_reply(b"$-1\r\n", "return function(v) return v == false end");
        from_reply(b"*-1\r\n", "return function(v) return v == false end");
        from_reply(b"+OK\r\n", "return function(v) return v.ok == 'OK' end");
        from_reply(
            b"-ERR x\r\n",
            "return function(v) return v.err == 'ERR x' end",
        );
        from_reply(
            b"*2\r\n:1\r\n$1\r\na\r\n",
            "return function(v) return v[1] == 1 and v[2] == 'a' and #v == 2 end",
        );
        from_reply(b"_\r\n", "return function(v) return v == nil end");
        from_reply(b"#t\r\n", "return function(v) return v == true end");
        from_reply(b",1.5\r\n", "return function(v) return v.double == 1.5 end");
        from_reply(
            b"(12\r\n",
            "return function(v) return v.big_number == '12' end",
        );
        from_reply(
            b"%1\r\n$1\r\nk\r\n:2\r\n",
            "return function(v) return v.map.k == 2 end",
        );
        from_reply(
            b"~1\r\n$1\r\nm\r\n",
            "return function(v) return v.set.m == true end",
        );
        from_reply(
            b"=7\r\ntxt:abc\r\n",
            "return function(v) return v.verbatim_string.format == 'txt' and v.verbatim_string.string == 'abc' end",
        );
    }
}
