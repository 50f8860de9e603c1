//! Redis functions: the library registry (FUNCTION LOAD/DELETE/LIST/...),
//! FCALL, and the libraries' RDB form (FUNCTION DUMP/RESTORE, snapshots).
//!
//! The registry is global: a FUNCTION LOAD on one shard is seen by every
//! shard at once. Each library is checked when it is created, in a fresh
//! Lua state (metadata line, compile, running its top level so it
//! registers its functions). Each shard's own Lua state then loads every
//! library lazily: a generation number changes with each registry change,
//! and a shard whose state is older reloads all libraries before its next
//! FCALL.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use crate::conn::Conn;
use crate::rdb::{self, Reader, OP_FUNCTION, OP_FUNCTION2, RDB_VERSION};
use crate::resp::Out;
use crate::shard::Shard;

/// Script flags (function flags and `#!lua flags=`), as Redis numbers
/// them; FUNCTION LIST shows them in this order.
pub const NO_WRITES: u32 = 1;
pub const ALLOW_OOM: u32 = 1 << 1;
pub const ALLOW_STALE: u32 = 1 << 2;
pub const NO_CLUSTER: u32 = 1 << 3;
pub const ALLOW_CROSS_SLOT: u32 = 1 << 4;

pub const FLAG_NAMES: [(&str, u32); 5] = [
    ("no-writes", NO_WRITES),
    ("allow-oom", ALLOW_OOM),
    ("allow-stale", ALLOW_STALE),
    ("no-cluster", NO_CLUSTER),
    ("allow-cross-slot-keys", ALLOW_CROSS_SLOT),
];

/// A flag by its name (case-insensitive).
pub fn flag_by_name(name: &[u8]) -> Option<u32> {
    FLAG_NAMES
        .iter()
        .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name))
        .map(|(_, f)| *f)
}

/// What FUNCTION LOAD learnt about one function.
#[derive(Debug, Clone)]
pub struct FuncMeta {
    pub name: String,
    pub desc: Option<Vec<u8>>,
    pub flags: u32,
}

#[derive(Debug)]
pub struct Library {
    pub name: String,
    /// The whole source, metadata line included (FUNCTION LIST WITHCODE,
    /// DUMP).
    pub code: Arc<[u8]>,
    pub funcs: Vec<FuncMeta>,
}

#[derive(Default, Clone)]
struct Registry {
    libs: BTreeMap<String, Arc<Library>>,
    /// Lower-cased function name -> its library and index there
    /// (function names are case-insensitive, library names are not).
    funcs: HashMap<String, (Arc<Library>, usize)>,
}

impl Registry {
    fn link(&mut self, lib: Arc<Library>) {
        for (i, f) in lib.funcs.iter().enumerate() {
            // Two names of one library that differ only in case: the
            // first one is reached (as in Redis).
            self.funcs
                .entry(f.name.to_ascii_lowercase())
                .or_insert_with(|| (lib.clone(), i));
        }
        self.libs.insert(lib.name.clone(), lib);
    }

    fn unlink(&mut self, name: &str) -> Option<Arc<Library>> {
        let lib = self.libs.remove(name)?;
        for f in &lib.funcs {
            let key = f.name.to_ascii_lowercase();
            if self
                .funcs
                .get(&key)
                .is_some_and(|(l, _)| Arc::ptr_eq(l, &lib))
            {
                self.funcs.remove(&key);
            }
        }
        Some(lib)
    }

    fn function_count(&self) -> usize {
        self.funcs.len()
    }
}

static REGISTRY: OnceLock<RwLock<Registry>> = OnceLock::new();
/// Changes with every change of the registry (each shard's Lua state
/// reloads the libraries when it lags behind).
pub(super) static GENERATION: AtomicU64 = AtomicU64::new(1);

fn registry() -> &'static RwLock<Registry> {
    REGISTRY.get_or_init(Default::default)
}

fn read() -> std::sync::RwLockReadGuard<'static, Registry> {
    registry().read().unwrap_or_else(|e| e.into_inner())
}

fn write() -> std::sync::RwLockWriteGuard<'static, Registry> {
    registry().write().unwrap_or_else(|e| e.into_inner())
}

/// The libraries now, for a shard's Lua state to load.
pub(super) fn libraries() -> Vec<Arc<Library>> {
    read().libs.values().cloned().collect()
}

/// A function and its library, by name (case-insensitive).
pub fn lookup(name: &[u8]) -> Option<(Arc<Library>, usize)> {
    let key = String::from_utf8_lossy(name).to_ascii_lowercase();
    read().funcs.get(&key).cloned()
}

pub(super) const NAME_ERR: &str = "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

/// Library and function names: letters, digits and '_', at least one.
pub(super) fn valid_name(b: &[u8]) -> bool {
    !b.is_empty() && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// The metadata line of a library (`#!<engine> name=<lib>`): the library
/// name, and where the code after the line starts (at its newline, so
/// line numbers count the metadata line).
fn parse_metadata(code: &[u8]) -> Result<(String, usize), String> {
    if !code.starts_with(b"#!") {
        return Err("Missing library metadata".into());
    }
    let Some(nl) = code.iter().position(|&c| c == b'\n') else {
        return Err("Invalid library metadata".into());
    };
    let line = &code[..nl];
    let mut parts = line.split(|&c| c == b' ').filter(|p| !p.is_empty());
    let engine = &parts.next().unwrap_or(b"#!")[2..];
    let mut name: Option<&[u8]> = None;
    for p in parts {
        if let Some(v) = p.strip_prefix(b"name=") {
            if name.is_some() {
                return Err(
                    "Invalid metadata value, name argument was given multiple times".into(),
                );
            }
            name = Some(v);
        } else {
            return Err(format!(
                "Invalid metadata value given: {}",
                String::from_utf8_lossy(p)
            ));
        }
    }
    let Some(name) = name else {
        return Err("Library name was not given".into());
    };
    if !engine.eq_ignore_ascii_case(b"lua") {
        return Err(format!(
            "Engine '{}' not found",
            String::from_utf8_lossy(engine)
        ));
    }
    if !valid_name(name) {
        return Err(NAME_ERR.into());
    }
    Ok((String::from_utf8_lossy(name).into_owned(), nl))
}

/// Creates a library in `reg` (Redis's functionsCreateWithLibraryCtx):
/// checks its metadata, compiles and runs it in a fresh Lua state, and
/// links it unless a name clashes. `timeout`: FUNCTION LOAD's 500 ms limit
/// on the library's top level (none for RESTORE and RDB loading).
fn create_in(
    reg: &mut Registry,
    code: &[u8],
    replace: bool,
    timeout: bool,
) -> Result<String, String> {
    let (name, body_at) = parse_metadata(code)?;
    let old = if reg.libs.contains_key(&name) {
        if !replace {
            return Err(format!("Library '{name}' already exists"));
        }
        reg.unlink(&name)
    } else {
        None
    };
    let relink = |reg: &mut Registry, e: String| {
        if let Some(o) = old.clone() {
            reg.link(o);
        }
        Err(e)
    };
    let regs = match super::Engine::new()
        .map_err(|e| e.to_string())
        .and_then(|mut eng| eng.load_library(&code[body_at..], timeout))
    {
        Ok(r) => r,
        Err(e) => return relink(reg, e),
    };
    if regs.is_empty() {
        return relink(reg, "No functions registered".into());
    }
    for r in &regs {
        if reg.funcs.contains_key(&r.name.to_ascii_lowercase()) {
            return relink(reg, format!("Function {} already exists", r.name));
        }
    }
    let lib = Library {
        name: name.clone(),
        code: code.into(),
        funcs: regs
            .into_iter()
            .map(|r| FuncMeta {
                name: r.name,
                desc: r.desc,
                flags: r.flags,
            })
            .collect(),
    };
    reg.link(Arc::new(lib));
    Ok(name)
}

fn changed() {
    GENERATION.fetch_add(1, Ordering::SeqCst);
}

/// FUNCTION LOAD [REPLACE]: the library's name, or the error message
/// (without "ERR ").
pub fn load(code: &[u8], replace: bool) -> Result<String, String> {
    let mut reg = write();
    let r = create_in(&mut reg, code, replace, true);
    if r.is_ok() {
        changed();
    }
    r
}

/// FUNCTION DELETE: false when there is no such library.
pub fn delete(name: &[u8]) -> bool {
    let name = String::from_utf8_lossy(name);
    let done = write().unlink(&name).is_some();
    if done {
        changed();
    }
    done
}

/// FUNCTION FLUSH.
pub fn flush() {
    *write() = Registry::default();
    changed();
}

/// Number of libraries and functions (FUNCTION STATS, INFO).
pub fn counts() -> (usize, usize) {
    let r = read();
    (r.libs.len(), r.function_count())
}

/// FUNCTION LIST's reply.
pub fn list(out: &mut Out, pattern: Option<&[u8]>, with_code: bool) {
    let reg = read();
    let libs: Vec<&Arc<Library>> = reg
        .libs
        .values()
        .filter(|l| pattern.is_none_or(|p| crate::util::glob_match(p, l.name.as_bytes(), false)))
        .collect();
    out.array(libs.len());
    for l in libs {
        out.map(if with_code { 4 } else { 3 });
        out.bulk(b"library_name");
        out.bulk(l.name.as_bytes());
        out.bulk(b"engine");
        out.bulk(b"LUA");
        out.bulk(b"functions");
        out.array(l.funcs.len());
        for f in &l.funcs {
            out.map(3);
            out.bulk(b"name");
            out.bulk(f.name.as_bytes());
            out.bulk(b"description");
            match &f.desc {
                Some(d) => out.bulk(d),
                None => out.null(),
            }
            out.bulk(b"flags");
            let names: Vec<&str> = FLAG_NAMES
                .iter()
                .filter(|(_, b)| f.flags & b != 0)
                .map(|(n, _)| *n)
                .collect();
            out.set(names.len());
            for n in names {
                out.simple(n);
            }
        }
        if with_code {
            out.bulk(b"library_code");
            out.bulk(&l.code);
        }
    }
}

/// The libraries as RDB records (opcode FUNCTION2 and the code), as
/// Redis 7.0 writes them in snapshots and FUNCTION DUMP payloads.
pub fn rdb_records(compress: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for l in read().libs.values() {
        out.push(OP_FUNCTION2);
        rdb::write_string(&mut out, &l.code, compress);
    }
    out
}

/// FUNCTION DUMP's payload: the records, the RDB version and a CRC64.
pub fn dump(compress: bool) -> Vec<u8> {
    let mut out = rdb_records(compress);
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = rdb::crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Flush,
    Append,
    Replace,
}

/// FUNCTION RESTORE: the error message (without "ERR ") on failure, and
/// then nothing changed.
pub fn restore(p: &[u8], policy: Policy) -> Result<(), String> {
    const BAD: &str = "DUMP payload version or checksum are wrong";
    if p.len() < 10 {
        return Err(BAD.into());
    }
    let footer = p.len() - 10;
    let version = u16::from_le_bytes([p[footer], p[footer + 1]]);
    let mut stored = [0u8; 8];
    stored.copy_from_slice(&p[footer + 2..]);
    if version > RDB_VERSION || rdb::crc64(0, &p[..footer + 2]) != u64::from_le_bytes(stored) {
        return Err(BAD.into());
    }
    // The records are read from the whole payload (a string whose length
    // runs into the footer is read as Redis reads it), until only the
    // footer is left.
    let mut codes = Vec::new();
    let mut r = Reader::new(p);
    while r.remaining() > 10 {
        let t = r.u8().map_err(|_| "can not read data type".to_string())?;
        if t == OP_FUNCTION {
            // The 7.0 release candidates' format (name, engine,
            // description, code): read, then refused.
            let fail = |m: &str| Err::<(), String>(m.to_string());
            if r.string().is_err() {
                fail("Failed loading library name")?;
            }
            if r.string().is_err() {
                fail("Failed loading engine name")?;
            }
            match r.len() {
                Err(_) => fail("Failed loading library description indicator")?,
                Ok(0) => {}
                Ok(_) => {
                    if r.string().is_err() {
                        fail("Failed loading library description")?;
                    }
                }
            }
            if r.string().is_err() {
                fail("Failed loading code")?;
            }
            return Err("Pre-GA function format not supported".into());
        }
        if t != OP_FUNCTION2 {
            return Err("given type is not a function".into());
        }
        let code = r
            .string()
            .map_err(|_| "Failed loading library payload".to_string())?;
        codes.push(code);
    }
    let mut fresh = Registry::default();
    for c in &codes {
        create_in(&mut fresh, c, false, false)?;
    }
    let mut reg = write();
    match policy {
        Policy::Flush => *reg = fresh,
        Policy::Append | Policy::Replace => {
            // Join: on any clash nothing changes.
            let mut joined = reg.clone();
            for name in fresh.libs.keys() {
                if joined.libs.contains_key(name) {
                    if policy == Policy::Append {
                        return Err(format!("Library {name} already exists"));
                    }
                    joined.unlink(name);
                }
            }
            for lib in fresh.libs.values() {
                for f in &lib.funcs {
                    if joined.funcs.contains_key(&f.name.to_ascii_lowercase()) {
                        return Err(format!("Function {} already exists", f.name));
                    }
                }
            }
            for lib in fresh.libs.into_values() {
                joined.link(lib);
            }
            *reg = joined;
        }
    }
    changed();
    Ok(())
}

/// Start-up: the libraries read from an RDB file (FUNCTION2 records).
pub fn load_rdb(codes: &[Vec<u8>]) -> Result<(), String> {
    let mut reg = write();
    for c in codes {
        create_in(&mut reg, c, false, false)
            .map_err(|e| format!("Failed loading library from the RDB file: {e}"))?;
    }
    changed();
    Ok(())
}

/// FCALL and FCALL_RO.
pub fn fcall(sh: &mut Shard, conn: &mut Conn, out: &mut Out, args: &[&[u8]], ro: bool) {
    let Some((lib, idx)) = lookup(args[1]) else {
        return out.err("Function not found");
    };
    let Some(numkeys) = crate::util::parse_i64(args[2]) else {
        return out.err("Bad number of keys provided");
    };
    if numkeys > (args.len() - 3) as i64 {
        return out.err("Number of keys can't be greater than number of args");
    }
    if numkeys < 0 {
        return out.err("Number of keys can't be negative");
    }
    let meta = &lib.funcs[idx];
    if ro && meta.flags & NO_WRITES == 0 {
        return out.err("Can not execute a script with write flag using *_ro command.");
    }
    if !super::oom_allowed(sh, meta.flags) {
        return out.error(crate::shard::evict::OOM_ERR);
    }
    let (keys, argv) = args[3..].split_at(numkeys as usize);
    let read_only = ro || meta.flags & NO_WRITES != 0;
    super::run_function(sh, conn, out, &meta.name, keys, argv, read_only, args);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_errors_match_redis() {
        let e = |c: &[u8]| parse_metadata(c).unwrap_err();
        assert_eq!(e(b"return 1"), "Missing library metadata");
        assert_eq!(e(b"#!lua name=x"), "Invalid library metadata");
        assert_eq!(e(b"#!lua\nx"), "Library name was not given");
        assert_eq!(e(b"#!js name=x\n"), "Engine 'js' not found");
        assert_eq!(
            e(b"#!lua name=x foo=1\n"),
            "Invalid metadata value given: foo=1"
        );
        assert_eq!(
            e(b"#!lua name=a name=b\n"),
            "Invalid metadata value, name argument was given multiple times"
        );
        assert_eq!(e(b"#!lua name=a-b\n"), NAME_ERR);
        assert_eq!(e(b"#!lua name=\n"), NAME_ERR);
        assert_eq!(
            parse_metadata(b"#!LUA  name=ok_1\nx").unwrap(),
            ("ok_1".into(), 16)
        );
    }

    #[test]
    fn restore_refuses_garbage() {
        assert!(restore(b"", Policy::Append).is_err());
        let mut p = vec![7u8, 1, 2];
        p.extend_from_slice(&RDB_VERSION.to_le_bytes());
        let crc = rdb::crc64(0, &p);
        p.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(
            restore(&p, Policy::Append).unwrap_err(),
            "given type is not a function"
        );
        // A string length far past the end.
        let mut p = vec![OP_FUNCTION2, 0x80, 0xff, 0xff, 0xff, 0xff];
        p.extend_from_slice(&RDB_VERSION.to_le_bytes());
        let crc = rdb::crc64(0, &p);
        p.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(
            restore(&p, Policy::Append).unwrap_err(),
            "Failed loading library payload"
        );
    }
}
