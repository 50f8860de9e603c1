//! Lua scripting (EVAL/EVALSHA): the script cache, one Lua 5.1 state per
//! shard and the conversions between Lua values and RESP replies.
//!
//! The cache (SHA1 -> source) is global, so SCRIPT LOAD on one shard and
//! EVALSHA on another work; each shard compiles a script the first time it
//! runs it. SCRIPT FLUSH empties the cache and bumps a generation number:
//! each shard then drops its Lua state and builds a fresh one on next use.
//!
//! A script runs on the calling connection's shard. `redis.call` runs the
//! command through the path EXEC uses for queued commands
//! ([`Shard::exec_one`]): with several shards the whole script runs inside
//! a transaction that holds every shard whole, so it is atomic whatever
//! keys it touches (declared or not).

mod binlibs;
mod cjson;
mod convert;
pub mod functions;
mod libs;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use mlua::{Function, Lua, LuaOptions, MultiValue, StdLib, Table, Value};

use crate::cmd::{self, CmdSpec};
use crate::conn::Conn;
use crate::resp::Out;
use crate::shard::locks::LockSet;
use crate::shard::Shard;

/// Most memory one shard's Lua state may use; past it the allocation
/// fails and the script gets a "not enough memory" error.
pub const LUA_MEMORY_LIMIT: usize = 256 << 20;

/// Starts the message of the Rust error `redis.call` raises for an error
/// reply, so the glue turns it back into `{err=...}`.
const REPLY_MARK: &str = "\u{1}reply:";

/// Redis 7.0.15 as REDIS_VERSION_NUM encodes it (0x00MMmmpp).
const VERSION_NUM: i64 = 0x07_00_0f;

type Cache = RwLock<HashMap<String, Arc<[u8]>>>;

static CACHE: OnceLock<Cache> = OnceLock::new();
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// The script running on a shard, as other shards see it (SCRIPT KILL,
/// BUSY replies).
pub struct Running {
    /// When it started (Unix ms); 0 = no script running.
    pub since_ms: AtomicU64,
    /// It ran a write command (it can no longer be killed).
    pub wrote: AtomicBool,
    /// SCRIPT KILL asked it to stop.
    pub kill: AtomicBool,
    /// It is a function (FCALL), not an EVAL script.
    pub function: AtomicBool,
    /// Its name and command line (FUNCTION STATS).
    pub info: Mutex<Option<(String, Vec<Vec<u8>>)>>,
}

/// One entry per shard (shard ids wrap at this size).
pub static RUNNING: [Running; 1024] = [const {
    Running {
        since_ms: AtomicU64::new(0),
        wrote: AtomicBool::new(false),
        kill: AtomicBool::new(false),
        function: AtomicBool::new(false),
        info: Mutex::new(None),
    }
}; 1024];

fn running(shard: usize) -> &'static Running {
    &RUNNING[shard % RUNNING.len()]
}

/// Scripts running now, on all shards.
static ACTIVE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Whether a script runs somewhere (one relaxed load: dispatch's check).
#[inline]
pub fn any_running() -> bool {
    ACTIVE.load(Ordering::Relaxed) > 0
}

/// Whether some shard runs a script that started more than `ms` ago.
pub fn busy_for(ms: u64) -> bool {
    if !any_running() {
        return false;
    }
    let now = crate::util::now_ms();
    RUNNING.iter().any(|r| {
        let t = r.since_ms.load(Ordering::Relaxed);
        t != 0 && now.saturating_sub(t) >= ms
    })
}

/// SCRIPT KILL / FUNCTION KILL: stops a running script that has not
/// written.
pub enum Kill {
    Killed,
    NotBusy,
    Unkillable,
    /// SCRIPT KILL for a function or FUNCTION KILL for a script: the BUSY
    /// message naming the right command.
    WrongKind(&'static str),
}

const BUSY_EVAL: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
const BUSY_FUNCTION: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

/// The -BUSY reply while a script runs past busy-reply-threshold: it
/// names FUNCTION KILL when the script is a function.
pub fn busy_message() -> &'static str {
    let function = RUNNING
        .iter()
        .any(|r| r.since_ms.load(Ordering::Relaxed) != 0 && r.function.load(Ordering::Relaxed));
    if function {
        BUSY_FUNCTION
    } else {
        BUSY_EVAL
    }
}

/// `is_eval`: SCRIPT KILL (true) or FUNCTION KILL (false).
pub fn kill(is_eval: bool) -> Kill {
    let mut r = Kill::NotBusy;
    for x in RUNNING.iter() {
        if x.since_ms.load(Ordering::Acquire) == 0 {
            continue;
        }
        let function = x.function.load(Ordering::Acquire);
        if x.wrote.load(Ordering::Acquire) {
            r = Kill::Unkillable;
        } else if is_eval && function {
            r = Kill::WrongKind(BUSY_FUNCTION);
        } else if !is_eval && !function {
            r = Kill::WrongKind(BUSY_EVAL);
        } else {
            x.kill.store(true, Ordering::Release);
            return Kill::Killed;
        }
    }
    r
}

/// Whether an EVAL script (not a function) runs now: FUNCTION STATS then
/// answers -BUSY, as Redis does.
pub fn eval_running() -> bool {
    RUNNING
        .iter()
        .any(|r| r.since_ms.load(Ordering::Acquire) != 0 && !r.function.load(Ordering::Acquire))
}

/// The function running now, if any: its name, command line and how long
/// it has run (FUNCTION STATS).
pub fn running_function() -> Option<(String, Vec<Vec<u8>>, u64)> {
    let now = crate::util::now_ms();
    RUNNING.iter().find_map(|r| {
        let t = r.since_ms.load(Ordering::Acquire);
        if t == 0 || !r.function.load(Ordering::Acquire) {
            return None;
        }
        let info = r.info.lock().ok()?.clone()?;
        Some((info.0, info.1, now.saturating_sub(t)))
    })
}

/// The flags of an EVAL script's `#!lua` line: None for a script without
/// one (it runs as before Redis 7.0), or the error message.
pub fn shebang_flags(body: &[u8]) -> Result<Option<u32>, String> {
    if !body.starts_with(b"#!") {
        return Ok(None);
    }
    let Some(nl) = body.iter().position(|&c| c == b'\n') else {
        return Err("Invalid script shebang".into());
    };
    let mut parts = body[..nl].split(|&c| c == b' ').filter(|p| !p.is_empty());
    let engine = parts.next().unwrap_or(b"#!");
    if engine != b"#!lua" {
        return Err(format!(
            "Unexpected engine in script shebang: {}",
            String::from_utf8_lossy(engine)
        ));
    }
    let mut flags = 0;
    for p in parts {
        let Some(list) = p.strip_prefix(b"flags=") else {
            return Err(format!(
                "Unknown lua shebang option: {}",
                String::from_utf8_lossy(p)
            ));
        };
        if list.is_empty() {
            continue;
        }
        for f in list.split(|&c| c == b',') {
            match functions::FLAG_NAMES
                .iter()
                .find(|(n, _)| n.as_bytes() == f)
            {
                Some((_, bit)) => flags |= bit,
                None => {
                    return Err(format!(
                        "Unexpected flag in script shebang: {}",
                        String::from_utf8_lossy(f)
                    ))
                }
            }
        }
    }
    Ok(Some(flags))
}

/// The Lua source of a script: after its `#!` line, from that line's
/// newline on (so line numbers still count it).
fn lua_source(body: &[u8]) -> &[u8] {
    if body.starts_with(b"#!") {
        let nl = body.iter().position(|&c| c == b'\n').unwrap_or(body.len());
        &body[nl..]
    } else {
        body
    }
}

fn cache() -> &'static Cache {
    CACHE.get_or_init(Default::default)
}

/// Lower-case hex SHA1 of `data`.
pub fn sha1hex(data: &[u8]) -> String {
    sha1_smol::Sha1::from(data).digest().to_string()
}

/// The source of a cached script (`sha` in lower case).
pub fn cache_get(sha: &str) -> Option<Arc<[u8]>> {
    cache().read().ok()?.get(sha).cloned()
}

pub fn cache_exists(sha: &str) -> bool {
    cache().read().map(|c| c.contains_key(sha)).unwrap_or(false)
}

fn cache_put(sha: &str, body: &[u8]) -> Arc<[u8]> {
    if let Some(b) = cache_get(sha) {
        return b;
    }
    let b: Arc<[u8]> = body.into();
    if let Ok(mut c) = cache().write() {
        c.insert(sha.to_string(), b.clone());
    }
    b
}

/// SCRIPT FLUSH: forgets every script; each shard rebuilds its Lua state.
pub fn cache_flush() {
    if let Ok(mut c) = cache().write() {
        c.clear();
    }
    GENERATION.fetch_add(1, Ordering::SeqCst);
}

/// Number of cached scripts and their total source size.
pub fn cache_stats() -> (usize, usize) {
    cache()
        .read()
        .map(|c| (c.len(), c.values().map(|b| b.len()).sum()))
        .unwrap_or((0, 0))
}

/// Redis's 48-bit linear congruential generator (drand48 family), as its
/// scripts' math.random uses it.
#[derive(Clone, Copy)]
pub(crate) struct Rand48(u64);

impl Rand48 {
    const MASK: u64 = (1 << 48) - 1;
    /// The state before any seeding.
    const DEFAULT: Rand48 = Rand48(0x1234_ABCD_330E);
    pub(crate) fn new(seed: i32) -> Rand48 {
        Rand48((((seed as u32) as u64) << 16) | 0x330E)
    }
    /// Next value in 0..2^31.
    pub(crate) fn next(&mut self) -> i64 {
        self.0 = (self.0.wrapping_mul(0x5_DEEC_E66D).wrapping_add(0xB)) & Self::MASK;
        (self.0 >> 17) as i64
    }
}

/// A Lua error carrying an error reply (`{err=msg}` once in Lua).
fn fail<T>(msg: &str) -> mlua::Result<T> {
    Err(mlua::Error::RuntimeError(format!("{REPLY_MARK}{msg}")))
}

fn arg_string(lua: &Lua, v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        v @ (Value::Integer(_) | Value::Number(_)) => lua
            .coerce_string(v.clone())
            .ok()
            .flatten()
            .map(|s| s.as_bytes().to_vec()),
        _ => None,
    }
}

fn arg_number(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        _ => None,
    }
}

/// The `redis.*` helpers written in Rust. They are C functions to Lua, so
/// the script's frame stays on the stack when one is tail-called and an
/// error it raises is located in the script, as in Redis.
fn register_helpers(lua: &Lua, h: &Table, resp: Rc<Cell<u8>>) -> mlua::Result<()> {
    h.raw_set("version", crate::REDIS_VERSION)?;
    h.raw_set("version_num", VERSION_NUM)?;
    let reply_table = |lua: &Lua, args: MultiValue, field: &str| -> mlua::Result<Table> {
        let t = lua.create_table()?;
        match args.front() {
            Some(Value::String(s)) if args.len() == 1 => {
                let b = s.as_bytes();
                if field == "ok" {
                    t.raw_set(field, lua.create_string(&b)?)?;
                } else {
                    // Redis reads an error code before the first space
                    // (after an optional '-'); with no space the code is
                    // ERR.
                    let body = b.strip_prefix(b"-").unwrap_or(&b);
                    if body.contains(&b' ') {
                        t.raw_set(field, lua.create_string(body)?)?;
                    } else {
                        let mut e = b"ERR ".to_vec();
                        e.extend_from_slice(body);
                        t.raw_set(field, lua.create_string(&e)?)?;
                    }
                }
            }
            _ => t.raw_set("err", "ERR wrong number or type of arguments")?,
        }
        Ok(t)
    };
    h.raw_set(
        "error_reply",
        lua.create_function(move |lua, args: MultiValue| reply_table(lua, args, "err"))?,
    )?;
    h.raw_set(
        "status_reply",
        lua.create_function(move |lua, args: MultiValue| reply_table(lua, args, "ok"))?,
    )?;
    h.raw_set(
        "sha1hex",
        lua.create_function(|lua, args: MultiValue| {
            if args.len() != 1 {
                return fail("ERR wrong number of arguments");
            }
            Ok(sha1hex(&arg_string(lua, &args[0]).unwrap_or_default()))
        })?,
    )?;
    h.raw_set(
        "log",
        lua.create_function(|lua, args: MultiValue| {
            if args.len() < 2 {
                return fail("ERR redis.log() requires two arguments or more.");
            }
            let Some(level) = arg_number(&args[0]) else {
                return fail("ERR First argument must be a number (log level).");
            };
            if !(0.0..=3.0).contains(&level) {
                return fail("ERR Invalid debug level.");
            }
            let parts: Vec<String> = args
                .iter()
                .skip(1)
                .filter_map(|a| arg_string(lua, a))
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .collect();
            crate::log::log(level as u8, &parts.join(" "));
            Ok(())
        })?,
    )?;
    h.raw_set(
        "setresp",
        lua.create_function(move |_, args: MultiValue| {
            if args.len() != 1 {
                return fail("ERR redis.setresp() requires one argument.");
            }
            match arg_number(&args[0]) {
                Some(v) if v == 2.0 || v == 3.0 => {
                    resp.set(v as u8);
                    Ok(())
                }
                _ => fail("ERR RESP version must be 2 or 3."),
            }
        })?,
    )?;
    h.raw_set(
        "set_repl",
        lua.create_function(|_, args: MultiValue| {
            if args.len() != 1 {
                return fail("ERR redis.set_repl() requires two arguments.");
            }
            match arg_number(&args[0]) {
                Some(v) if (0.0..=3.0).contains(&v) => Ok(()),
                _ => fail(
                    "ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
                ),
            }
        })?,
    )?;
    h.raw_set(
        "acl_check_cmd",
        lua.create_function(|lua, args: MultiValue| {
            let known = args
                .front()
                .and_then(|a| arg_string(lua, a))
                .is_some_and(|n| cmd::table().get(&n).is_some());
            if !known {
                return fail("ERR Invalid command passed to redis.acl_check_cmd()");
            }
            Ok(true)
        })?,
    )?;
    Ok(())
}

/// What a `redis.call` needs while a script runs.
struct CallCtx<'a> {
    sh: &'a mut Shard,
    conn: &'a mut Conn,
    read_only: bool,
}

/// A function registered by a library's top level.
struct Reg {
    name: String,
    desc: Option<Vec<u8>>,
    flags: u32,
    f: Function,
}

type Regs = Rc<RefCell<Option<Vec<Reg>>>>;

/// A register_function error (Redis raises these without a location).
fn reg_fail<T>(msg: &str) -> mlua::Result<T> {
    fail(&format!("ERR {msg}"))
}

/// A Lua string or number as bytes (lua_isstring).
fn string_like(lua: &Lua, v: &Value) -> Option<Vec<u8>> {
    arg_string(lua, v)
}

fn read_flags(lua: &Lua, t: &Table) -> Option<u32> {
    let mut flags = 0;
    for j in 1.. {
        let v: Value = t.get(j).ok()?;
        if v.is_nil() {
            break;
        }
        flags |= functions::flag_by_name(&string_like(lua, &v)?)?;
    }
    Some(flags)
}

/// `redis.register_function` while a library loads: the positional form
/// (name, callback) or the named one ({function_name=, callback=, flags=,
/// description=}), with Redis's checks and messages.
fn register_function(lua: &Lua, regs: &Regs, args: MultiValue) -> mlua::Result<()> {
    if regs.borrow().is_none() {
        return reg_fail("redis.register_function can only be called on FUNCTION LOAD command");
    }
    if args.is_empty() || args.len() > 2 {
        return reg_fail("wrong number of arguments to redis.register_function");
    }
    let (name, desc, flags, f) = if args.len() == 1 {
        let Value::Table(t) = &args[0] else {
            return reg_fail("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).");
        };
        let (mut name, mut desc, mut flags, mut f) = (None, None, 0, None);
        for pair in t.pairs::<Value, Value>() {
            let (k, v) = pair?;
            let Some(k) = string_like(lua, &k) else {
                return reg_fail(
                    "named argument key given to redis.register_function is not a string",
                );
            };
            let k = k.to_ascii_lowercase();
            match k.as_slice() {
                b"function_name" => match string_like(lua, &v) {
                    Some(n) => name = Some(n),
                    None => return reg_fail(
                        "function_name argument given to redis.register_function must be a string",
                    ),
                },
                b"description" => match string_like(lua, &v) {
                    Some(d) => desc = Some(d),
                    None => return reg_fail(
                        "description argument given to redis.register_function must be a string",
                    ),
                },
                b"callback" => {
                    match v {
                        Value::Function(cb) => f = Some(cb),
                        _ => return reg_fail(
                            "callback argument given to redis.register_function must be a function",
                        ),
                    }
                }
                b"flags" => {
                    let Value::Table(ft) = &v else {
                        return reg_fail("flags argument to redis.register_function must be a table representing function flags");
                    };
                    match read_flags(lua, ft) {
                        Some(x) => flags = x,
                        None => return reg_fail("unknown flag given"),
                    }
                }
                _ => return reg_fail("unknown argument given to redis.register_function"),
            }
        }
        let Some(name) = name else {
            return reg_fail("redis.register_function must get a function name argument");
        };
        let Some(f) = f else {
            return reg_fail("redis.register_function must get a callback argument");
        };
        (name, desc, flags, f)
    } else {
        let Some(name) = string_like(lua, &args[0]) else {
            return reg_fail("first argument to redis.register_function must be a string");
        };
        let Value::Function(f) = &args[1] else {
            return reg_fail("second argument to redis.register_function must be a function");
        };
        (name, None, 0, f.clone())
    };
    if !functions::valid_name(&name) {
        return reg_fail(functions::NAME_ERR);
    }
    let name = String::from_utf8_lossy(&name).into_owned();
    let mut guard = regs.borrow_mut();
    let list = guard.get_or_insert_with(Vec::new);
    if list.iter().any(|r| r.name == name) {
        return reg_fail("Function already exists in the library");
    }
    list.push(Reg {
        name,
        desc,
        flags,
        f,
    });
    Ok(())
}

/// One shard's Lua state.
struct Engine {
    lua: Lua,
    generation: u64,
    funcs: HashMap<String, Function>,
    /// FCALL: every library's functions by lower-cased name, loaded at
    /// library generation `fgen` (0: none loaded yet).
    fcalls: HashMap<String, Function>,
    fgen: u64,
    /// glue.lua's loader: runs a library's top level in the load
    /// environment.
    load_lib: Function,
    regs: Regs,
    /// Helper table shared with glue.lua (H).
    run: Function,
    setenv: Function,
    /// The `redis` table behind the read-only view scripts get.
    redis: Table,
    /// The protocol of `redis.call` replies (redis.setresp).
    resp: Rc<Cell<u8>>,
}

thread_local! {
    static ENGINE: RefCell<Option<Engine>> = const { RefCell::new(None) };
}

impl Engine {
    fn new() -> mlua::Result<Engine> {
        let libs = StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG;
        // SAFETY: the debug library is only unsafe when scripts can reach
        // it; glue.lua keeps it in a local for its error handler and
        // removes it from the globals before any user code runs.
        let lua = unsafe { Lua::unsafe_new_with(libs, LuaOptions::new()) };
        lua.set_memory_limit(LUA_MEMORY_LIMIT)?;
        let real = lua.globals();
        let proxy = lua.create_table()?;
        let h = lua.create_table()?;
        let resp = Rc::new(Cell::new(2u8));

        h.raw_set("version", crate::REDIS_VERSION)?;
        h.raw_set("version_num", VERSION_NUM)?;
        register_helpers(&lua, &h, resp.clone())?;
        h.raw_set(
            "errval",
            lua.create_function(|_, e: Value| {
                Ok(match e {
                    Value::Error(e) => {
                        let mut e: &mlua::Error = &e;
                        while let mlua::Error::CallbackError { cause, .. } = e {
                            e = cause;
                        }
                        match e {
                            mlua::Error::RuntimeError(m) if m.starts_with(REPLY_MARK) => {
                                (m[REPLY_MARK.len()..].to_string(), true)
                            }
                            e => (error_text(e), false),
                        }
                    }
                    _ => ("unknown error".to_string(), false),
                })
            })?,
        )?;
        let regs: Regs = Rc::new(RefCell::new(None));
        let regs2 = regs.clone();
        h.raw_set(
            "register_function",
            lua.create_function(move |lua, args: MultiValue| register_function(lua, &regs2, args))?,
        )?;
        real.raw_set("bit", libs::bit_library(&lua)?)?;
        real.raw_set("cjson", cjson::library(&lua)?)?;
        real.raw_set("struct", binlibs::struct_library(&lua)?)?;
        real.raw_set("cmsgpack", binlibs::cmsgpack_library(&lua)?)?;
        libs::install_random(&lua, &real.raw_get::<Table>("math")?)?;
        let dbg: Value = real.raw_get("debug")?;
        let setfenv: Value = real.raw_get("setfenv")?;
        lua.load(include_str!("glue.lua"))
            .set_name("=ringkv")
            .call::<()>((real, proxy, h.clone(), dbg, setfenv))?;
        let run: Function = h.raw_get("run")?;
        let setenv: Function = h.raw_get("setenv")?;
        let redis: Table = h.raw_get("redis")?;
        let load_lib: Function = h.raw_get("load_lib")?;
        Ok(Engine {
            lua,
            generation: GENERATION.load(Ordering::SeqCst),
            funcs: HashMap::new(),
            fcalls: HashMap::new(),
            fgen: 0,
            load_lib,
            regs,
            run,
            setenv,
            redis,
            resp,
        })
    }

    /// The compiled function of a script, compiling it on first use. Err
    /// holds Lua's compile error message.
    fn function(&mut self, sha: &str, body: &[u8]) -> Result<Function, String> {
        if let Some(f) = self.funcs.get(sha) {
            return Ok(f.clone());
        }
        let f = self
            .lua
            .load(lua_source(body))
            .set_name("@user_script")
            .set_mode(mlua::chunk::ChunkMode::Text)
            .into_function()
            .map_err(|e| match e {
                mlua::Error::SyntaxError { message, .. } => message,
                e => e.to_string(),
            })?;
        let f: Function = self.setenv.call(f).map_err(|e| e.to_string())?;
        self.funcs.insert(sha.to_string(), f.clone());
        Ok(f)
    }

    /// Runs a library's top level (FUNCTION LOAD, or this shard loading
    /// the libraries): the functions it registered, or the error message.
    /// `src` is the code from the metadata line's newline on.
    fn load_library(&mut self, src: &[u8], timeout: bool) -> Result<Vec<Reg>, String> {
        let f = self
            .lua
            .load(src)
            .set_name("@user_function")
            .set_mode(mlua::chunk::ChunkMode::Text)
            .into_function()
            .map_err(|e| {
                let m = match e {
                    mlua::Error::SyntaxError { message, .. } => message,
                    e => error_text(&e),
                };
                format!("Error compiling function: {m}")
            })?;
        *self.regs.borrow_mut() = Some(Vec::new());
        if timeout {
            let start = std::time::Instant::now();
            let _ = self.lua.set_hook(
                mlua::HookTriggers::new().every_nth_instruction(100_000),
                move |_, _| {
                    if start.elapsed() > std::time::Duration::from_millis(500) {
                        Err(mlua::Error::RuntimeError("FUNCTION LOAD timeout".into()))
                    } else {
                        Ok(mlua::VmState::Continue)
                    }
                },
            );
        }
        let r = self.load_lib.call::<MultiValue>(f);
        self.lua.remove_hook();
        let regs = self.regs.borrow_mut().take().unwrap_or_default();
        let mv = r.map_err(|e| format!("Error registering functions: ERR {}", error_text(&e)))?;
        let mut it = mv.into_iter();
        if matches!(it.next(), Some(Value::Boolean(true))) {
            return Ok(regs);
        }
        let msg = match it.next() {
            Some(Value::Table(t)) => t
                .raw_get::<mlua::LuaString>("err")
                .map(|s| String::from_utf8_lossy(&s.as_bytes()).into_owned())
                .unwrap_or_else(|_| "ERR unknown error".into()),
            _ => "ERR unknown error".into(),
        };
        Err(format!("Error registering functions: {msg}"))
    }

    /// Loads every library into this state when the registry changed
    /// since it last did.
    fn ensure_functions(&mut self) {
        let g = functions::GENERATION.load(Ordering::SeqCst);
        if self.fgen == g {
            return;
        }
        self.fcalls.clear();
        for lib in functions::libraries() {
            let at = lib
                .code
                .iter()
                .position(|&c| c == b'\n')
                .unwrap_or(lib.code.len());
            if let Ok(regs) = self.load_library(&lib.code[at..], false) {
                for r in regs {
                    self.fcalls
                        .entry(r.name.to_ascii_lowercase())
                        .or_insert(r.f);
                }
            }
        }
        self.fgen = g;
    }

    /// Runs a compiled script and writes its reply. `name`: the SHA1, or
    /// the function's name; `fcall`: the command line of an FCALL (the
    /// function gets KEYS and ARGV as arguments), None for EVAL.
    #[allow(clippy::too_many_arguments)]
    fn run(
        &mut self,
        sh: &mut Shard,
        conn: &mut Conn,
        out: &mut Out,
        name: &str,
        f: &Function,
        keys: &[&[u8]],
        argv: &[&[u8]],
        read_only: bool,
        fcall: Option<&[&[u8]]>,
    ) {
        let db = conn.db;
        let client_resp3 = conn.resp3;
        self.resp.set(2);
        let r = self.call(sh, conn, f, keys, argv, read_only, name, fcall);
        conn.db = db;
        conn.resp3 = client_resp3;
        let script_resp3 = self.resp.get() == 3;
        let mut o = Out::new(out.buf, client_resp3);
        match r {
            Ok(mv) => {
                let mut it = mv.into_iter();
                let ok = matches!(it.next(), Some(Value::Boolean(true)));
                let v = it.next().unwrap_or(Value::Nil);
                if ok {
                    convert::lua_to_reply(&mut o, &v, script_resp3, 0);
                } else {
                    o.error(&convert::script_error(&v, name));
                }
            }
            Err(e) => o.err(&format!("Error running script: {}", error_text(&e))),
        }
        // Drop what the script left (KEYS/ARGV tables of big calls, garbage
        // after a memory error).
        if matches!(self.lua.used_memory(), m if m > LUA_MEMORY_LIMIT / 2) {
            let _ = self.lua.gc_collect();
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn call(
        &mut self,
        sh: &mut Shard,
        conn: &mut Conn,
        f: &Function,
        keys: &[&[u8]],
        argv: &[&[u8]],
        read_only: bool,
        name: &str,
        fcall: Option<&[&[u8]]>,
    ) -> mlua::Result<MultiValue> {
        let real = self.lua.globals();
        let seq = |items: &[&[u8]]| -> mlua::Result<Table> {
            let t = self.lua.create_table_with_capacity(items.len(), 0)?;
            for (i, a) in items.iter().enumerate() {
                t.raw_set(i + 1, self.lua.create_string(a)?)?;
            }
            Ok(t)
        };
        let (ktab, atab) = (seq(keys)?, seq(argv)?);
        if fcall.is_some() {
            // Functions get them as arguments, not as globals.
            real.raw_set("KEYS", Value::Nil)?;
            real.raw_set("ARGV", Value::Nil)?;
        } else {
            real.raw_set("KEYS", ktab.clone())?;
            real.raw_set("ARGV", atab.clone())?;
        }
        let ctx = RefCell::new(CallCtx {
            sh,
            conn,
            read_only,
        });
        let resp = self.resp.clone();
        let redis = self.redis.clone();
        let run = self.run.clone();
        // SCRIPT KILL (sent on another shard) is noticed every 10,000
        // instructions.
        let me = running(ctx.borrow().sh.id);
        me.wrote.store(false, Ordering::Release);
        me.kill.store(false, Ordering::Release);
        me.function.store(fcall.is_some(), Ordering::Release);
        if let Some(cmd) = fcall {
            if let Ok(mut i) = me.info.lock() {
                *i = Some((name.to_string(), cmd.iter().map(|a| a.to_vec()).collect()));
            }
        }
        me.since_ms.store(crate::util::now_ms(), Ordering::Release);
        ACTIVE.fetch_add(1, Ordering::AcqRel);
        self.lua.set_hook(
            mlua::HookTriggers::new().every_nth_instruction(10_000),
            move |_, _| {
                if me.kill.load(Ordering::Acquire) {
                    Err(mlua::Error::RuntimeError(
                        "Script killed by user with SCRIPT KILL...".into(),
                    ))
                } else {
                    Ok(mlua::VmState::Continue)
                }
            },
        )?;
        let r = self.lua.scope(|scope| {
            let call = scope.create_function(|lua, args: MultiValue| {
                let mut c = ctx.borrow_mut();
                match redis_call(lua, &mut c, args, resp.get() == 3) {
                    (Value::Table(t), true) => {
                        let msg: String = t.raw_get("err").unwrap_or_default();
                        Err(mlua::Error::RuntimeError(format!("{REPLY_MARK}{msg}")))
                    }
                    (v, _) => Ok(v),
                }
            })?;
            let pcall = scope.create_function(|lua, args: MultiValue| {
                let mut c = ctx.borrow_mut();
                Ok(redis_call(lua, &mut c, args, resp.get() == 3).0)
            })?;
            redis.raw_set("call", call)?;
            redis.raw_set("pcall", pcall)?;
            let r = if fcall.is_some() {
                run.call::<MultiValue>((f.clone(), ktab, atab))
            } else {
                run.call::<MultiValue>(f.clone())
            };
            redis.raw_set("call", Value::Nil)?;
            redis.raw_set("pcall", Value::Nil)?;
            r
        });
        self.lua.remove_hook();
        me.since_ms.store(0, Ordering::Release);
        if fcall.is_some() {
            if let Ok(mut i) = me.info.lock() {
                *i = None;
            }
        }
        ACTIVE.fetch_sub(1, Ordering::AcqRel);
        r
    }
}

fn error_text(e: &mlua::Error) -> String {
    match e {
        mlua::Error::MemoryError(_) => "not enough memory".to_string(),
        mlua::Error::RuntimeError(m) => m.clone(),
        e => e.to_string(),
    }
}

/// An error as `redis.call` returns it to the glue: `{err=msg}` and true.
fn call_error(lua: &Lua, msg: &str) -> (Value, bool) {
    match lua.create_table().and_then(|t| {
        t.raw_set("err", msg)?;
        Ok(t)
    }) {
        Ok(t) => (Value::Table(t), true),
        Err(_) => (Value::Nil, true),
    }
}

/// `redis.call`/`redis.pcall`: runs one command; returns its reply as a
/// Lua value, and whether that reply is an error.
fn redis_call(lua: &Lua, c: &mut CallCtx, args: MultiValue, resp3: bool) -> (Value, bool) {
    if args.is_empty() {
        return call_error(
            lua,
            "ERR Please specify at least one argument for this redis lib call",
        );
    }
    let mut argv: Vec<Vec<u8>> = Vec::with_capacity(args.len());
    for a in args {
        let s = match a {
            Value::String(s) => Some(s),
            v @ (Value::Integer(_) | Value::Number(_)) => lua.coerce_string(v).ok().flatten(),
            _ => None,
        };
        match s {
            Some(s) => argv.push(s.as_bytes().to_vec()),
            None => {
                return call_error(
                    lua,
                    "ERR Lua redis lib command arguments must be strings or integers",
                )
            }
        }
    }
    let refs: Vec<&[u8]> = argv.iter().map(|a| a.as_slice()).collect();
    let Some((_, spec)) = cmd::table().get(refs[0]) else {
        return call_error(lua, "ERR Unknown Redis command called from script");
    };
    if !spec.arity_ok(refs.len()) {
        return call_error(
            lua,
            "ERR Wrong number of args calling Redis command from script",
        );
    }
    let flags = command_flags(spec, &refs);
    if flags & cmd::NOSCRIPT != 0 {
        return call_error(lua, "ERR This Redis command is not allowed from script");
    }
    if let Some(e) = cmd::stream::script_block_error(&refs) {
        return call_error(lua, &e);
    }
    if flags & cmd::DENYOOM != 0 && c.sh.memg.oom && c.sh.ks.mem.maxmemory != 0 {
        // Out of memory when the script started (Redis's
        // pre_command_oom_state): commands that grow memory fail.
        return call_error(lua, crate::shard::evict::OOM_ERR);
    }
    if c.read_only && flags & cmd::WRITE != 0 {
        return call_error(
            lua,
            "ERR Write commands are not allowed from read-only scripts.",
        );
    }
    if flags & cmd::WRITE != 0 {
        running(c.sh.id).wrote.store(true, Ordering::Release);
    }
    let mut buf = Vec::new();
    c.conn.resp3 = resp3;
    c.sh.exec_one(c.conn, &mut Out::new(&mut buf, resp3), spec, &refs);
    match convert::reply_to_lua(lua, &buf) {
        Ok(v) => v,
        Err(e) => call_error(lua, &format!("ERR {}", error_text(&e))),
    }
}

/// A command's flags, its subcommand's for a container command.
fn command_flags(spec: &CmdSpec, args: &[&[u8]]) -> u32 {
    if spec.subs.is_empty() || args.len() < 2 {
        return spec.flags;
    }
    spec.subs
        .iter()
        .find(|s| s.name.as_bytes().eq_ignore_ascii_case(args[1]))
        .map(|s| s.flags | (spec.flags & cmd::NOSCRIPT))
        .unwrap_or(spec.flags)
}

/// Runs `f` with this shard's Lua state, creating it (again after SCRIPT
/// FLUSH) when needed.
fn with_engine(out: &mut Out, f: impl FnOnce(&mut Engine, &mut Out)) {
    let cur = GENERATION.load(Ordering::SeqCst);
    let taken = ENGINE.with(|e| e.borrow_mut().take());
    let mut eng = match taken {
        Some(e) if e.generation == cur => e,
        _ => match Engine::new() {
            Ok(e) => e,
            Err(e) => return out.err(&format!("Error creating the Lua state: {e}")),
        },
    };
    f(&mut eng, out);
    ENGINE.with(|e| *e.borrow_mut() = Some(eng));
}

/// Compiles a script on this shard (SCRIPT LOAD) and caches it. Returns its
/// SHA1, or writes the compile error.
pub fn load(out: &mut Out, body: &[u8]) -> Option<String> {
    if let Err(e) = shebang_flags(body) {
        out.err(&e);
        return None;
    }
    let sha = sha1hex(body);
    let mut ok = false;
    with_engine(out, |eng, out| match eng.function(&sha, body) {
        Ok(_) => ok = true,
        Err(m) => out.err(&format!("Error compiling script (new function): {m}")),
    });
    if ok {
        cache_put(&sha, body);
        Some(sha)
    } else {
        None
    }
}

/// EVAL and friends: `body` is the source for EVAL, None for EVALSHA
/// (then `sha` must be in the cache).
#[allow(clippy::too_many_arguments)]
pub fn eval(
    sh: &mut Shard,
    conn: &mut Conn,
    out: &mut Out,
    sha: &str,
    body: Option<&[u8]>,
    keys: &[&[u8]],
    argv: &[&[u8]],
    read_only: bool,
) {
    let body: Arc<[u8]> = match body {
        Some(b) => b.into(),
        None => match cache_get(sha) {
            Some(b) => b,
            None => return out.error("NOSCRIPT No matching script. Please use EVAL."),
        },
    };
    let flags = match shebang_flags(&body) {
        Ok(f) => f,
        Err(e) => return out.err(&e),
    };
    with_engine(out, |eng, out| {
        let f = match eng.function(sha, &body) {
            Ok(f) => f,
            Err(m) => return out.err(&format!("Error compiling script (new function): {m}")),
        };
        cache_put(sha, &body);
        let mut read_only = read_only;
        if let Some(flags) = flags {
            if !oom_allowed(sh, flags) {
                return out.error(crate::shard::evict::OOM_ERR);
            }
            // A script with a #! line declares whether it writes.
            if flags & functions::NO_WRITES == 0 {
                if read_only {
                    return out.err("Can not execute a script with write flag using *_ro command.");
                }
            } else {
                read_only = true;
            }
        }
        run_locked(eng, sh, conn, out, sha, &f, keys, argv, read_only, None);
    });
}

/// A script or function with flags (a #! line, a registered function)
/// that may write is refused when the process is out of memory, unless it
/// declares `allow-oom` (then its commands are not checked either).
pub(crate) fn oom_allowed(sh: &mut Shard, flags: u32) -> bool {
    if flags & functions::ALLOW_OOM != 0 {
        sh.memg.oom = false;
        return true;
    }
    !(flags & functions::NO_WRITES == 0 && sh.memg.oom && sh.ks.mem.maxmemory != 0)
}

/// Runs a script or function: inline with one shard; with several, inside
/// a transaction that holds every shard whole for the whole script, so it
/// is atomic even when it touches keys it did not declare.
#[allow(clippy::too_many_arguments)]
fn run_locked(
    eng: &mut Engine,
    sh: &mut Shard,
    conn: &mut Conn,
    out: &mut Out,
    name: &str,
    f: &Function,
    keys: &[&[u8]],
    argv: &[&[u8]],
    read_only: bool,
    fcall: Option<&[&[u8]]>,
) {
    if sh.n == 1 {
        return eng.run(sh, conn, out, name, f, keys, argv, read_only, fcall);
    }
    let sets = (0..sh.n).map(|s| (s, LockSet::All)).collect();
    sh.tx_with(sets, |tx| {
        eng.run(tx.sh, conn, out, name, f, keys, argv, read_only, fcall)
    });
}

/// FCALL's run, after the checks: this shard's Lua state loads the
/// libraries if they changed, then runs the function.
#[allow(clippy::too_many_arguments)]
fn run_function(
    sh: &mut Shard,
    conn: &mut Conn,
    out: &mut Out,
    name: &str,
    keys: &[&[u8]],
    argv: &[&[u8]],
    read_only: bool,
    cmdline: &[&[u8]],
) {
    with_engine(out, |eng, out| {
        eng.ensure_functions();
        let Some(f) = eng.fcalls.get(&name.to_ascii_lowercase()).cloned() else {
            return out.err("Function not found");
        };
        run_locked(
            eng,
            sh,
            conn,
            out,
            name,
            &f,
            keys,
            argv,
            read_only,
            Some(cmdline),
        );
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_matches_redis() {
        assert_eq!(sha1hex(b""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            sha1hex(b"return 1"),
            "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"
        );
    }

    #[test]
    fn rand48_is_the_drand48_sequence() {
        // lrand48() after srand48(0), as glibc computes it.
        let mut r = Rand48::new(0);
        assert_eq!(r.next(), 366850414);
        assert_eq!(r.next(), 1610402240);
        // Unseeded, as redis-server's first math.random() (0.39646477363839).
        let mut r = Rand48::DEFAULT;
        assert_eq!(r.next() as f64 / 2147483647.0, 0.3964647736383904);
    }
}
