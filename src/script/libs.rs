//! Libraries Redis gives scripts, written in Rust: `bit` (LuaBitOp's
//! operations on 32-bit integers) and Redis's `math.random` /
//! `math.randomseed` on its rand48 generator.

use std::cell::Cell;

use mlua::{Lua, MultiValue, Table, Value};

use super::Rand48;

thread_local! {
    /// math.random's generator: per shard, kept across SCRIPT FLUSH, and
    /// starting from rand48's default state as in redis-server (which does
    /// not seed it).
    static RNG: Cell<Rand48> = const { Cell::new(Rand48::DEFAULT) };
}

/// A Lua error located at the caller, as luaL_error words it
/// ("user_script:3: bad argument ...").
pub(crate) fn located(lua: &Lua, msg: String) -> mlua::Error {
    let at = lua
        .inspect_stack(1, |d| {
            let src = d.source().short_src.map(|s| s.into_owned());
            (src, d.current_line())
        })
        .and_then(|(s, l)| Some(format!("{}:{}: ", s?, l?)))
        .unwrap_or_default();
    mlua::Error::RuntimeError(format!("{at}{msg}"))
}

fn type_name(v: Option<&Value>) -> &'static str {
    match v {
        None => "no value",
        Some(v) => v.type_name(),
    }
}

/// luaL_checknumber: a number, or a string that converts to one.
fn check_number(lua: &Lua, args: &MultiValue, i: usize, fname: &str) -> mlua::Result<f64> {
    let v = args.get(i);
    let n = match v {
        Some(Value::Integer(n)) => Some(*n as f64),
        Some(Value::Number(n)) => Some(*n),
        Some(v @ Value::String(_)) => lua.coerce_number(v.clone()).ok().flatten(),
        _ => None,
    };
    n.ok_or_else(|| {
        located(
            lua,
            format!(
                "bad argument #{} to '{fname}' (number expected, got {})",
                i + 1,
                type_name(v)
            ),
        )
    })
}

/// LuaBitOp's normalisation of a Lua number to a 32-bit integer (the low
/// word of x + 2^52 + 2^51: rounds to nearest, wraps modulo 2^32).
pub(crate) fn tobit(x: f64) -> i32 {
    (x + 6755399441055744.0).to_bits() as u32 as i32
}

fn bit_fn(
    lua: &Lua,
    t: &Table,
    name: &'static str,
    f: impl Fn(&Lua, &MultiValue) -> mlua::Result<f64> + 'static,
) -> mlua::Result<()> {
    t.raw_set(
        name,
        lua.create_function(move |lua, args: MultiValue| f(lua, &args))?,
    )
}

/// Builds the `bit` table.
pub(crate) fn bit_library(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let arg = |lua: &Lua, a: &MultiValue, i: usize, n: &str| -> mlua::Result<i32> {
        Ok(tobit(check_number(lua, a, i, n)?))
    };
    bit_fn(lua, &t, "tobit", move |l, a| {
        Ok(arg(l, a, 0, "tobit")? as f64)
    })?;
    bit_fn(lua, &t, "bnot", move |l, a| {
        Ok(!arg(l, a, 0, "bnot")? as f64)
    })?;
    bit_fn(lua, &t, "bswap", move |l, a| {
        Ok(arg(l, a, 0, "bswap")?.swap_bytes() as f64)
    })?;
    for (name, op) in [
        ("band", (|x, y| x & y) as fn(i32, i32) -> i32),
        ("bor", |x, y| x | y),
        ("bxor", |x, y| x ^ y),
    ] {
        bit_fn(lua, &t, name, move |l, a| {
            let mut acc = arg(l, a, 0, name)?;
            for i in 1..a.len() {
                acc = op(acc, arg(l, a, i, name)?);
            }
            Ok(acc as f64)
        })?;
    }
    for (name, op) in [
        (
            "lshift",
            (|x: i32, n: u32| ((x as u32) << n) as i32) as fn(i32, u32) -> i32,
        ),
        ("rshift", |x, n| ((x as u32) >> n) as i32),
        ("arshift", |x, n| x >> n),
        ("rol", |x, n| (x as u32).rotate_left(n) as i32),
        ("ror", |x, n| (x as u32).rotate_right(n) as i32),
    ] {
        bit_fn(lua, &t, name, move |l, a| {
            let x = arg(l, a, 0, name)?;
            let n = arg(l, a, 1, name)? as u32 & 31;
            Ok(op(x, n) as f64)
        })?;
    }
    t.raw_set(
        "tohex",
        lua.create_function(|lua, a: MultiValue| {
            let x = tobit(check_number(lua, &a, 0, "tohex")?) as u32;
            let mut n = match a.get(1) {
                None | Some(Value::Nil) => 8,
                Some(_) => tobit(check_number(lua, &a, 1, "tohex")?),
            };
            let upper = n < 0;
            if upper {
                n = n.saturating_neg();
            }
            let n = n.min(8) as usize;
            let s = if upper {
                format!("{x:08X}")
            } else {
                format!("{x:08x}")
            };
            Ok(s[8 - n..].to_string())
        })?,
    )?;
    Ok(t)
}

fn next_random() -> f64 {
    let v = RNG.with(|g| {
        let mut x = g.get();
        let v = x.next();
        g.set(x);
        v
    });
    (v % 2147483647) as f64 / 2147483647.0
}

/// luaL_checkint: the number truncated to a C int.
fn check_int(lua: &Lua, a: &MultiValue, i: usize, fname: &str) -> mlua::Result<i64> {
    Ok(check_number(lua, a, i, fname)? as i32 as i64)
}

/// Replaces math.random and math.randomseed with Redis's versions.
pub(crate) fn install_random(lua: &Lua, math: &Table) -> mlua::Result<()> {
    math.raw_set(
        "random",
        lua.create_function(|lua, a: MultiValue| {
            let r = next_random();
            match a.len() {
                0 => Ok(r),
                1 => {
                    let u = check_int(lua, &a, 0, "random")?;
                    if u < 1 {
                        return Err(located(
                            lua,
                            "bad argument #1 to 'random' (interval is empty)".into(),
                        ));
                    }
                    Ok((r * u as f64).floor() + 1.0)
                }
                2 => {
                    let l = check_int(lua, &a, 0, "random")?;
                    let u = check_int(lua, &a, 1, "random")?;
                    if l > u {
                        return Err(located(
                            lua,
                            "bad argument #2 to 'random' (interval is empty)".into(),
                        ));
                    }
                    Ok((r * (u - l + 1) as f64).floor() + l as f64)
                }
                _ => Err(located(lua, "wrong number of arguments".into())),
            }
        })?,
    )?;
    math.raw_set(
        "randomseed",
        lua.create_function(|lua, a: MultiValue| {
            let s = check_int(lua, &a, 0, "randomseed")?;
            RNG.with(|g| g.set(Rand48::new(s as i32)));
            Ok(())
        })?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(lua: &Lua, src: &str) -> String {
        lua.load(src).eval::<String>().unwrap()
    }

    #[test]
    fn bit_operations_match_luabitop() {
        let lua = Lua::new();
        lua.globals()
            .set("bit", bit_library(&lua).unwrap())
            .unwrap();
        // Expected values from LuaBitOp's documentation and redis-server.
        assert_eq!(eval(&lua, "return bit.tohex(65535)"), "0000ffff");
        assert_eq!(eval(&lua, "return bit.tohex(-1, -4)"), "FFFF");
        assert_eq!(eval(&lua, "return bit.tohex(255, 2)"), "ff");
        assert_eq!(eval(&lua, "return tostring(bit.tobit(0xffffffff))"), "-1");
        assert_eq!(eval(&lua, "return tostring(bit.tobit(2^32 + 5))"), "5");
        assert_eq!(eval(&lua, "return tostring(bit.bnot(0))"), "-1");
        assert_eq!(
            eval(&lua, "return tostring(bit.band(0x12345678, 0xff))"),
            "120"
        );
        assert_eq!(eval(&lua, "return tostring(bit.bor(1, 2, 4, 8))"), "15");
        assert_eq!(eval(&lua, "return tostring(bit.bxor(5, 3))"), "6");
        assert_eq!(
            eval(&lua, "return tostring(bit.lshift(1, 31))"),
            "-2147483648"
        );
        assert_eq!(eval(&lua, "return tostring(bit.lshift(1, 33))"), "2");
        assert_eq!(eval(&lua, "return tostring(bit.rshift(-1, 28))"), "15");
        assert_eq!(eval(&lua, "return tostring(bit.arshift(-256, 4))"), "-16");
        assert_eq!(
            eval(&lua, "return bit.tohex(bit.rol(0x12345678, 12))"),
            "45678123"
        );
        assert_eq!(
            eval(&lua, "return bit.tohex(bit.ror(0x12345678, 12))"),
            "67812345"
        );
        assert_eq!(
            eval(&lua, "return bit.tohex(bit.bswap(0x12345678))"),
            "78563412"
        );
        let e = lua.load("return bit.band()").eval::<Value>().unwrap_err();
        assert!(
            e.to_string().contains("number expected, got no value"),
            "{e}"
        );
    }
}
