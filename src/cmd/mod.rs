//! The command table: one declarative entry per command (name, arity,
//! flags, key positions, group, ACL categories, handler). It is the single
//! source for dispatch, arity errors, COMMAND/COMMAND INFO/DOCS/GETKEYS and
//! key extraction for shard routing.
//!
//! Handlers come in two kinds:
//! - [`KeyFn`]: runs on the shard that owns all of the command's keys, with
//!   only that shard's keyspace ([`Ctx`]). It may run inline on the
//!   connection's shard or on another shard after a hop.
//! - [`SrvFn`]: runs on the connection's shard with the server context
//!   ([`SrvCtx`]): the connection, the shard, and cross-shard transactions.
//!   Multi-key commands whose keys span shards use a SrvFn as coordinator.

pub mod bitmap;
pub mod conn;
pub mod geo;
pub mod hash;
pub mod hll;
pub mod keys;
pub mod latency;
pub mod list;
pub mod memory;
pub mod multi;
pub mod persist;
pub mod pubsub;
pub mod scripting;
pub mod server;
pub mod set;
pub mod sort;
pub mod stream;
pub mod string;
pub mod zset;

use crate::conn::Conn;
use crate::resp::Out;
use crate::shard::keyspace::Keyspace;
use crate::shard::Shard;

/// Context of a keyed command: one shard's keyspace and the client's db.
pub struct Ctx<'a> {
    pub ks: &'a mut Keyspace,
    pub db: usize,
    pub out: Out<'a>,
}

/// Context of a server-side command on the connection's own shard.
pub struct SrvCtx<'a> {
    pub sh: &'a mut Shard,
    pub conn: &'a mut Conn,
    pub out: Out<'a>,
}

pub type KeyFn = fn(&mut Ctx, &[&[u8]]);
pub type SrvFn = fn(&mut SrvCtx, &[&[u8]]);
/// Finds the key positions of a command's arguments.
pub type GetKeysFn = fn(&[&[u8]]) -> Vec<usize>;

#[derive(Clone, Copy)]
pub enum Run {
    /// Keyed; all keys must hash to one shard (single-key commands).
    Key(KeyFn),
    /// Keyed; the SrvFn coordinates when the keys span several shards.
    KeyMulti(KeyFn, SrvFn),
    /// Runs on the connection's shard.
    Srv(SrvFn),
}

// Command flags (a subset of Redis's).
pub const WRITE: u32 = 1;
pub const READONLY: u32 = 1 << 1;
pub const DENYOOM: u32 = 1 << 2;
pub const ADMIN: u32 = 1 << 3;
pub const PUBSUB: u32 = 1 << 4;
pub const NOSCRIPT: u32 = 1 << 5;
pub const BLOCKING: u32 = 1 << 6;
pub const LOADING: u32 = 1 << 7;
pub const STALE: u32 = 1 << 8;
pub const NO_AUTH: u32 = 1 << 9;
pub const FAST: u32 = 1 << 10;
pub const NO_MULTI: u32 = 1 << 11;
pub const ALLOW_BUSY: u32 = 1 << 12;

pub const FLAG_NAMES: &[(u32, &str)] = &[
    (WRITE, "write"),
    (READONLY, "readonly"),
    (DENYOOM, "denyoom"),
    (ADMIN, "admin"),
    (PUBSUB, "pubsub"),
    (NOSCRIPT, "noscript"),
    (BLOCKING, "blocking"),
    (LOADING, "loading"),
    (STALE, "stale"),
    (NO_AUTH, "no_auth"),
    (FAST, "fast"),
    (NO_MULTI, "no_multi"),
    (ALLOW_BUSY, "allow_busy"),
];

/// One command.
pub struct CmdSpec {
    /// Lower-case name; subcommands are listed in `subs`.
    pub name: &'static str,
    /// Redis arity: N = exactly N args (name included), -N = at least N.
    pub arity: i32,
    pub flags: u32,
    /// Key positions (Redis's legacy first/last/step; last -1 = last arg).
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    /// Command group as in the Redis docs ("string", "generic", ...).
    pub group: &'static str,
    /// ACL categories, e.g. "@write @string @slow".
    pub acl: &'static str,
    pub summary: &'static str,
    pub since: &'static str,
    pub run: Run,
    /// Subcommands for container commands (CLIENT, CONFIG, OBJECT ...).
    pub subs: &'static [SubSpec],
    /// Key positions for commands first/last/step cannot describe
    /// (`numkeys` arguments, keywords): returns the indexes of the keys.
    pub getkeys: Option<GetKeysFn>,
}

/// A subcommand of a container command (for COMMAND output and arity).
pub struct SubSpec {
    pub name: &'static str,
    pub arity: i32,
    pub flags: u32,
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    pub acl: &'static str,
    pub summary: &'static str,
}

impl CmdSpec {
    /// Positions of the keys in `args`.
    pub fn key_positions(&self, args: &[&[u8]]) -> KeyPositions {
        if let Some(f) = self.getkeys {
            return KeyPositions::List(f(args).into_iter());
        }
        let n = args.len() as i32;
        let (first, step) = (self.first_key, self.step.max(1));
        let last = if self.last_key < 0 {
            n + self.last_key
        } else {
            self.last_key.min(n - 1)
        };
        let range = if first <= 0 || first >= n {
            0..0
        } else {
            first..last + 1
        };
        KeyPositions::Range(range.step_by(step as usize))
    }

    pub fn arity_ok(&self, argc: usize) -> bool {
        let a = self.arity;
        (a >= 0 && argc as i32 == a) || (a < 0 && argc as i32 >= -a)
    }
}

/// Iterator over key positions (a range for first/last/step, a list from
/// a `getkeys` function).
pub enum KeyPositions {
    Range(std::iter::StepBy<std::ops::Range<i32>>),
    List(std::vec::IntoIter<usize>),
}

impl Iterator for KeyPositions {
    type Item = usize;
    #[inline]
    fn next(&mut self) -> Option<usize> {
        match self {
            KeyPositions::Range(r) => r.next().map(|i| i as usize),
            KeyPositions::List(l) => l.next(),
        }
    }
}

/// Key positions for `numkeys`-style commands: `numkeys_at` is the index of
/// the count, keys follow it. Extra fixed keys (e.g. a destination) are
/// listed in `extra`. Bad counts yield no keys (the handler reports them).
pub fn numkeys_positions(args: &[&[u8]], numkeys_at: usize, extra: &[usize]) -> Vec<usize> {
    let mut v: Vec<usize> = extra.iter().copied().filter(|&i| i < args.len()).collect();
    if let Some(n) = args.get(numkeys_at).and_then(|a| crate::util::parse_i64(a)) {
        if n > 0 && (n as usize) < args.len() {
            let first = numkeys_at + 1;
            v.extend((first..first + n as usize).filter(|&i| i < args.len()));
        }
    }
    v
}

/// Every command, from each family's table.
pub fn all_commands() -> impl Iterator<Item = &'static CmdSpec> {
    string::COMMANDS
        .iter()
        .chain(keys::COMMANDS)
        .chain(conn::COMMANDS)
        .chain(server::COMMANDS)
        .chain(list::COMMANDS)
        .chain(hash::COMMANDS)
        .chain(set::COMMANDS)
        .chain(zset::COMMANDS)
        .chain(sort::COMMANDS)
        .chain(stream::COMMANDS)
        .chain(latency::COMMANDS)
        .chain(persist::COMMANDS)
        .chain(multi::COMMANDS)
        .chain(pubsub::COMMANDS)
        .chain(scripting::COMMANDS)
        .chain(bitmap::COMMANDS)
        .chain(hll::COMMANDS)
        .chain(geo::COMMANDS)
}

/// The lookup table, built once.
pub struct Table {
    map: hashbrown::HashMap<&'static [u8], (u16, &'static CmdSpec)>,
    pub list: Vec<&'static CmdSpec>,
}

impl Table {
    pub fn build() -> Table {
        let list: Vec<&'static CmdSpec> = all_commands().collect();
        let mut map = hashbrown::HashMap::new();
        for (i, c) in list.iter().enumerate() {
            map.insert(c.name.as_bytes(), (i as u16, *c));
        }
        Table { map, list }
    }

    /// Case-insensitive lookup; returns the command's index too (for stats).
    #[inline]
    pub fn get(&self, name: &[u8]) -> Option<(u16, &'static CmdSpec)> {
        let mut buf = [0u8; 32];
        if name.len() > buf.len() {
            return None;
        }
        for (d, s) in buf.iter_mut().zip(name) {
            *d = s.to_ascii_lowercase();
        }
        self.map.get(&buf[..name.len()]).copied()
    }
}

static TABLE: std::sync::OnceLock<Table> = std::sync::OnceLock::new();

pub fn table() -> &'static Table {
    TABLE.get_or_init(Table::build)
}

/// Every subcommand's full name ("client|list"), keyed by (container,
/// subcommand); built once, the strings live for the whole run.
static FULL_NAMES: std::sync::OnceLock<
    hashbrown::HashMap<(&'static str, &'static str), &'static str>,
> = std::sync::OnceLock::new();

/// The name Redis 7.0 reports for a request to `spec` (CLIENT LIST's and
/// CLIENT INFO's `cmd=`): "container|sub" for a subcommand, the command's
/// own name otherwise (a container given no subcommand included). None
/// for an unknown subcommand, which Redis reports as "NULL".
pub fn full_name(spec: &'static CmdSpec, args: &[&[u8]]) -> Option<&'static str> {
    if spec.subs.is_empty() || args.len() < 2 {
        return Some(spec.name);
    }
    let sub = spec
        .subs
        .iter()
        .find(|s| s.name.as_bytes().eq_ignore_ascii_case(args[1]))?;
    let names = FULL_NAMES.get_or_init(|| {
        all_commands()
            .flat_map(|c| c.subs.iter().map(move |s| (c.name, s.name)))
            .map(|(c, s)| {
                let full: &'static str = Box::leak(format!("{c}|{s}").into_boxed_str());
                ((c, s), full)
            })
            .collect()
    });
    names.get(&(spec.name, sub.name)).copied()
}

/// The "unknown command" error text, as Redis 7.0 words it.
pub fn unknown_command(args: &[&[u8]]) -> String {
    let mut s = format!(
        "unknown command '{}', with args beginning with: ",
        String::from_utf8_lossy(&args[0][..args[0].len().min(128)])
    );
    for a in args.iter().skip(1).take(20) {
        s.push('\'');
        s.push_str(&String::from_utf8_lossy(&a[..a.len().min(128)]));
        s.push_str("' ");
    }
    s
}

/// Helper macro: a CmdSpec literal with defaults.
#[macro_export]
macro_rules! cmd {
    ($name:expr, $arity:expr, $flags:expr, ($f:expr, $l:expr, $s:expr), $group:expr, $acl:expr, $run:expr, $summary:expr) => {
        $crate::cmd::CmdSpec {
            name: $name,
            arity: $arity,
            flags: $flags,
            first_key: $f,
            last_key: $l,
            step: $s,
            group: $group,
            acl: $acl,
            summary: $summary,
            since: "1.0.0",
            run: $run,
            subs: &[],
            getkeys: None,
        }
    };
}

/// Finds the subcommand of a container command (CLIENT, CONFIG, ...) and
/// checks its arity. On failure writes Redis's error and returns None.
pub fn find_sub(
    out: &mut Out,
    subs: &'static [SubSpec],
    args: &[&[u8]],
) -> Option<&'static SubSpec> {
    let container = String::from_utf8_lossy(args[0]).to_ascii_uppercase();
    let name = String::from_utf8_lossy(args.get(1).copied().unwrap_or(b"")).to_ascii_lowercase();
    let Some(sub) = subs.iter().find(|s| s.name == name) else {
        out.err(&format!(
            "unknown subcommand '{}'. Try {} HELP.",
            String::from_utf8_lossy(args.get(1).copied().unwrap_or(b"")),
            container
        ));
        return None;
    };
    let a = sub.arity;
    let n = args.len() as i32;
    if (a >= 0 && n != a) || (a < 0 && n < -a) {
        out.err(&format!(
            "wrong number of arguments for '{}|{}' command",
            container.to_ascii_lowercase(),
            sub.name
        ));
        return None;
    }
    Some(sub)
}

/// Writes a HELP reply: a header line, the given lines, and the HELP line.
pub fn help_reply(out: &mut Out, container: &str, lines: &[&str]) {
    out.array(lines.len() + 3);
    out.simple(&format!(
        "{container} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    ));
    for l in lines {
        out.simple(l);
    }
    out.simple("HELP");
    out.simple("    Prints this help.");
}

/// A SubSpec literal.
#[macro_export]
macro_rules! sub {
    ($name:expr, $arity:expr, $flags:expr, $acl:expr, $summary:expr) => {
        $crate::cmd::SubSpec {
            name: $name,
            arity: $arity,
            flags: $flags,
            first_key: 0,
            last_key: 0,
            step: 0,
            acl: $acl,
            summary: $summary,
        }
    };
    ($name:expr, $arity:expr, $flags:expr, ($f:expr, $l:expr, $s:expr), $acl:expr, $summary:expr) => {
        $crate::cmd::SubSpec {
            name: $name,
            arity: $arity,
            flags: $flags,
            first_key: $f,
            last_key: $l,
            step: $s,
            acl: $acl,
            summary: $summary,
        }
    };
}

/// The unit tests' way to run a keyed command without a server: looks it
/// up in the table, checks arity as dispatch does, runs its single-shard
/// handler on `ks` and returns the raw reply.
#[cfg(test)]
pub fn run_keyed(ks: &mut Keyspace, db: usize, resp3: bool, args: &[&[u8]]) -> Vec<u8> {
    let (_, spec) = table().get(args[0]).expect("command in the table");
    let mut buf = Vec::new();
    if !spec.arity_ok(args.len()) {
        Out::new(&mut buf, resp3).wrong_arity(spec.name);
        return buf;
    }
    let f = match spec.run {
        Run::Key(f) | Run::KeyMulti(f, _) => f,
        Run::Srv(_) => panic!("{} needs a shard", spec.name),
    };
    let mut ctx = Ctx {
        ks,
        db,
        out: Out::new(&mut buf, resp3),
    };
    f(&mut ctx, args);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_unique_names_and_sane_arity() {
        let t = Table::build();
        assert_eq!(t.map.len(), t.list.len(), "duplicate command names");
        for c in &t.list {
            assert!(c.arity != 0, "{}", c.name);
            assert_eq!(c.name, c.name.to_ascii_lowercase());
        }
        assert!(t.get(b"GeT").is_some());
    }
}
