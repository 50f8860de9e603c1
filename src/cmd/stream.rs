//! The stream family (Redis's t_stream.c): XADD, XRANGE/XREVRANGE, XLEN,
//! XDEL, XTRIM, XREAD/XREADGROUP (blocking too), consumer groups (XGROUP,
//! XACK, XPENDING, XCLAIM, XAUTOCLAIM), XINFO and XSETID.
//!
//! Handlers follow Redis 7.0's order of checks so that error replies match.
//! XREAD and XREADGROUP over keys of several shards run under one
//! [`Shard::tx`]: every key is validated first, then served, as Redis does.
//! A blocking read that finds nothing asks to park with its `$` IDs
//! replaced by the stream's last ID at that moment, so that the re-run on
//! XADD only returns what arrived after the call.

use super::{
    find_sub, help_reply, CmdSpec, Ctx, GetKeysFn, Run, SrvCtx, SubSpec, BLOCKING, DENYOOM, FAST,
    LOADING, READONLY, STALE, WRITE,
};
use crate::notify as N;
use crate::resp::Out;
use crate::shard::keyspace::Keyspace;
use crate::shard::Shard;
use crate::types::stream::{parse_id, Entry, Group, Stream, StreamId, Trim, INVALID_ENTRIES_READ};
use crate::types::Value;
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
    subs: &'static [SubSpec],
    getkeys: Option<GetKeysFn>,
) -> CmdSpec {
    CmdSpec {
        name,
        arity,
        flags,
        first_key: keys.0,
        last_key: keys.1,
        step: keys.2,
        group: "stream",
        acl,
        summary,
        since,
        run,
        subs,
        getkeys,
    }
}

const ONE: (i32, i32, i32) = (1, 1, 1);
const MOVABLE: (i32, i32, i32) = (0, 0, 0);
const KEY2: (i32, i32, i32) = (2, 2, 1);

#[rustfmt::skip]
const XGROUP_SUBS: &[SubSpec] = &[
    crate::sub!("create", -5, WRITE | DENYOOM, (2, 2, 1), "@write @stream @slow", "Create a consumer group."),
    crate::sub!("createconsumer", 5, WRITE | DENYOOM, (2, 2, 1), "@write @stream @slow", "Create a consumer in a consumer group."),
    crate::sub!("delconsumer", 5, WRITE, (2, 2, 1), "@write @stream @slow", "Delete a consumer from a consumer group."),
    crate::sub!("destroy", 4, WRITE, (2, 2, 1), "@write @stream @slow", "Destroy a consumer group."),
    crate::sub!("help", 2, LOADING | STALE, "@stream @slow", "Show helpful text about the different subcommands"),
    crate::sub!("setid", -5, WRITE, (2, 2, 1), "@write @stream @slow", "Set a consumer group to an arbitrary last delivered ID value."),
];

#[rustfmt::skip]
const XINFO_SUBS: &[SubSpec] = &[
    crate::sub!("consumers", 4, READONLY, (2, 2, 1), "@read @stream @slow", "List the consumers in a consumer group"),
    crate::sub!("groups", 3, READONLY, (2, 2, 1), "@read @stream @slow", "List the consumer groups of a stream"),
    crate::sub!("help", 2, LOADING | STALE, "@stream @slow", "Show helpful text about the different subcommands"),
    crate::sub!("stream", -3, READONLY, (2, 2, 1), "@read @stream @slow", "Get information about a stream"),
];

#[rustfmt::skip]
pub static COMMANDS: &[CmdSpec] = &[
    spec("xack", -4, WRITE | FAST, ONE, "@write @stream @fast", "5.0.0", Run::Key(xack), "Marks a pending message as correctly processed, effectively removing it from the pending entries list of the consumer group. Return value of the command is the number of messages successfully acknowledged, that is, the IDs we were actually able to resolve in the PEL.", &[], None),
    spec("xadd", -5, WRITE | DENYOOM | FAST, ONE, "@write @stream @fast", "5.0.0", Run::Key(xadd), "Appends a new entry to a stream", &[], None),
    spec("xautoclaim", -6, WRITE | FAST, ONE, "@write @stream @fast", "6.2.0", Run::Key(xautoclaim), "Changes (or acquires) ownership of messages in a consumer group, as if the messages were delivered to the specified consumer.", &[], None),
    spec("xclaim", -6, WRITE | FAST, ONE, "@write @stream @fast", "5.0.0", Run::Key(xclaim), "Changes (or acquires) ownership of a message in a consumer group, as if the message was delivered to the specified consumer.", &[], None),
    spec("xdel", -3, WRITE | FAST, ONE, "@write @stream @fast", "5.0.0", Run::Key(xdel), "Removes the specified entries from the stream. Returns the number of items actually deleted, that may be different from the number of IDs passed in case certain IDs do not exist.", &[], None),
    spec("xgroup", -2, 0, KEY2, "@slow", "5.0.0", Run::Key(xgroup), "A container for consumer groups commands", XGROUP_SUBS, None),
    spec("xinfo", -2, 0, KEY2, "@slow", "5.0.0", Run::Key(xinfo), "A container for stream introspection commands", XINFO_SUBS, None),
    spec("xlen", 2, READONLY | FAST, ONE, "@read @stream @fast", "5.0.0", Run::Key(xlen), "Return the number of entries in a stream", &[], None),
    spec("xpending", -3, READONLY, ONE, "@read @stream @slow", "5.0.0", Run::Key(xpending), "Return information and entries from a stream consumer group pending entries list, that are messages fetched but never acknowledged.", &[], None),
    spec("xrange", -4, READONLY, ONE, "@read @stream @slow", "5.0.0", Run::Key(xrange), "Return a range of elements in a stream, with IDs matching the specified IDs interval", &[], None),
    spec("xread", -4, READONLY | BLOCKING, MOVABLE, "@read @stream @slow @blocking", "5.0.0", Run::KeyMulti(xread, xread_coord), "Return never seen elements in multiple streams, with IDs greater than the ones reported by the caller for each stream. Can block.", &[], Some(xread_keys)),
    spec("xreadgroup", -7, WRITE | BLOCKING, MOVABLE, "@write @stream @slow @blocking", "5.0.0", Run::KeyMulti(xread, xread_coord), "Return new entries from a stream using a consumer group, or access the history of the pending entries for a given consumer. Can block.", &[], Some(xread_keys)),
    spec("xrevrange", -4, READONLY, ONE, "@read @stream @slow", "5.0.0", Run::Key(xrevrange), "Return a range of elements in a stream, with IDs matching the specified IDs interval, in reverse order (from greater to smaller IDs) compared to XRANGE", &[], None),
    spec("xsetid", -3, WRITE | DENYOOM | FAST, ONE, "@write @stream @fast", "5.0.0", Run::Key(xsetid), "An internal command for replicating stream values", &[], None),
    spec("xtrim", -4, WRITE, ONE, "@write @stream @slow", "5.0.0", Run::Key(xtrim), "Trims the stream to (approximately if '~' is passed) a certain size", &[], None),
];

// ----- error texts --------------------------------------------------------------

const E_INVALID_ID: &str = "Invalid stream ID specified as stream command argument";
const E_START_ID: &str = "invalid start ID for the interval";
const E_END_ID: &str = "invalid end ID for the interval";

// ----- key positions ------------------------------------------------------------------

/// Replaces the STREAMS keyword in the arguments a blocked read is re-run
/// with, so that the re-run knows it waited (a deleted stream or group then
/// ends the wait with Redis's error instead of the call-time one).
const RETRY_STREAMS: &[u8] = b"\0streams";

fn is_streams(a: &[u8]) -> bool {
    eq_ic(a, "streams") || a == RETRY_STREAMS
}

/// XREAD/XREADGROUP: the first half of the arguments after STREAMS.
fn xread_keys(args: &[&[u8]]) -> Vec<usize> {
    let mut i = 1;
    while i < args.len() {
        let a = args[i];
        if is_streams(a) {
            let n = (args.len() - i - 1) / 2;
            return (i + 1..i + 1 + n).collect();
        }
        if eq_ic(a, "block") || eq_ic(a, "count") {
            i += 2;
        } else if eq_ic(a, "group") {
            i += 3;
        } else {
            i += 1;
        }
    }
    Vec::new()
}

// ----- lookups and reply helpers ----------------------------------------------------

fn read<'a>(ks: &'a mut Keyspace, db: usize, key: &[u8]) -> Result<Option<&'a Stream>, ()> {
    match ks.get(db, key) {
        None => Ok(None),
        Some(Value::Stream(s)) => Ok(Some(&**s)),
        Some(_) => Err(()),
    }
}

fn write<'a>(ks: &'a mut Keyspace, db: usize, key: &[u8]) -> Result<Option<&'a mut Stream>, ()> {
    match ks.get_mut(db, key) {
        None => Ok(None),
        Some(Value::Stream(s)) => Ok(Some(&mut **s)),
        Some(_) => Err(()),
    }
}

fn new_stream(ks: &Keyspace) -> Stream {
    Stream::new(ks.enc.stream_node_max_bytes, ks.enc.stream_node_max_entries)
}

fn id_bytes(id: StreamId) -> Vec<u8> {
    let mut b = itoa::Buffer::new();
    let mut v = b.format(id.ms).as_bytes().to_vec();
    v.push(b'-');
    v.extend_from_slice(b.format(id.seq).as_bytes());
    v
}

fn reply_id(out: &mut Out, id: StreamId) {
    out.bulk(&id_bytes(id));
}

fn reply_fields(out: &mut Out, fields: &[(&[u8], &[u8])]) {
    out.array(fields.len() * 2);
    for (f, v) in fields {
        out.bulk(f);
        out.bulk(v);
    }
}

fn reply_entry(out: &mut Out, id: StreamId, fields: &[(&[u8], &[u8])]) {
    out.array(2);
    reply_id(out, id);
    reply_fields(out, fields);
}

fn reply_owned(out: &mut Out, e: &Entry) {
    let f: Vec<(&[u8], &[u8])> = e.1.iter().map(|(a, b)| (&a[..], &b[..])).collect();
    reply_entry(out, e.0, &f);
}

/// Redis's strict ID parse (no `-`/`+`).
fn strict_id(arg: &[u8]) -> Option<StreamId> {
    parse_id(arg, 0, true, false).map(|p| p.id)
}

/// An interval bound: `(id` is exclusive. Returns the inclusive bound.
fn interval_id(arg: &[u8], missing_seq: u64, start: bool) -> Result<StreamId, &'static str> {
    if arg.len() > 1 && arg[0] == b'(' {
        let id = parse_id(&arg[1..], missing_seq, true, false)
            .ok_or(E_INVALID_ID)?
            .id;
        if start {
            id.incr().ok_or(E_START_ID)
        } else {
            id.decr().ok_or(E_END_ID)
        }
    } else {
        parse_id(arg, missing_seq, false, false)
            .map(|p| p.id)
            .ok_or(E_INVALID_ID)
    }
}

fn int_arg(out: &mut Out, a: &[u8]) -> Option<i64> {
    let v = parse_i64(a);
    if v.is_none() {
        out.not_int();
    }
    v
}

// ----- XADD / XTRIM -----------------------------------------------------------------

#[derive(Default)]
struct AddArgs {
    trim: Option<Trim>,
    approx: bool,
    limit: u64,
    no_mkstream: bool,
    id: Option<(StreamId, bool)>,
}

/// Parses XADD's or XTRIM's options; returns the index of the last option
/// consumed (for XADD, of the ID argument).
fn parse_add_trim(
    out: &mut Out,
    args: &[&[u8]],
    xadd: bool,
    max_entries: usize,
) -> Option<(AddArgs, usize)> {
    let mut a = AddArgs::default();
    let mut limit_given = false;
    let mut limit: i64 = 0;
    let mut i = 2;
    let argc = args.len();
    while i < argc {
        let more = argc - 1 - i;
        let opt = args[i];
        if xadd && opt == b"*" {
            break;
        } else if (eq_ic(opt, "maxlen") || eq_ic(opt, "minid")) && more > 0 {
            if a.trim.is_some() {
                out.err(
                    "syntax error, MAXLEN and MINID options at the same time are not compatible",
                );
                return None;
            }
            a.approx = false;
            let next = args[i + 1];
            if more >= 2 && next == b"~" {
                a.approx = true;
                i += 1;
            } else if more >= 2 && next == b"=" {
                i += 1;
            }
            if eq_ic(opt, "maxlen") {
                let n = int_arg(out, args[i + 1])?;
                if n < 0 {
                    out.err("The MAXLEN argument must be >= 0.");
                    return None;
                }
                a.trim = Some(Trim::MaxLen(n as u64));
            } else {
                let Some(id) = strict_id(args[i + 1]) else {
                    out.err(E_INVALID_ID);
                    return None;
                };
                a.trim = Some(Trim::MinId(id));
            }
            i += 1;
        } else if eq_ic(opt, "limit") && more > 0 {
            limit = int_arg(out, args[i + 1])?;
            if limit < 0 {
                out.err("The LIMIT argument must be >= 0.");
                return None;
            }
            limit_given = true;
            i += 1;
        } else if xadd && eq_ic(opt, "nomkstream") {
            a.no_mkstream = true;
        } else if xadd {
            let Some(p) = parse_id(opt, 0, true, true) else {
                out.err(E_INVALID_ID);
                return None;
            };
            a.id = Some((p.id, p.seq_given));
            break;
        } else {
            out.syntax();
            return None;
        }
        i += 1;
    }
    if limit != 0 && a.trim.is_none() {
        out.err("syntax error, LIMIT cannot be used without specifying a trimming strategy");
        return None;
    }
    if !xadd && a.trim.is_none() {
        out.err("syntax error, XTRIM must be called with a trimming strategy");
        return None;
    }
    if limit_given {
        if !a.approx {
            out.err("syntax error, LIMIT cannot be used without the special ~ option");
            return None;
        }
        a.limit = limit as u64;
    } else if a.approx {
        let l = 100 * max_entries as i64;
        a.limit = if l <= 0 { 10000 } else { l.min(1_000_000) } as u64;
    }
    Some((a, i))
}

fn xadd(ctx: &mut Ctx, args: &[&[u8]]) {
    let max_entries = ctx.ks.enc.stream_node_max_entries;
    let Some((a, i)) = parse_add_trim(&mut ctx.out, args, true, max_entries) else {
        return;
    };
    let field_pos = i + 1;
    if args.len() < field_pos + 2 || !(args.len() - field_pos).is_multiple_of(2) {
        return ctx.out.wrong_arity("xadd");
    }
    if let Some((id, true)) = a.id {
        if id.is_zero() {
            return ctx
                .out
                .err("The ID specified in XADD must be greater than 0-0");
        }
    }
    let key = args[1];
    let db = ctx.db;
    let fresh = match write(ctx.ks, db, key) {
        Err(()) => return ctx.out.wrongtype(),
        Ok(None) if a.no_mkstream => return ctx.out.null(),
        Ok(None) => true,
        Ok(Some(_)) => false,
    };
    if fresh {
        let s = new_stream(ctx.ks);
        ctx.ks.set(db, key, Value::Stream(Box::new(s)), false);
    }
    let now = ctx.ks.now;
    let Ok(Some(s)) = write(ctx.ks, db, key) else {
        return ctx.out.wrongtype();
    };
    if s.last_id == StreamId::MAX {
        return ctx
            .out
            .err("The stream has exhausted the last possible ID, unable to add more items");
    }
    let id = match a.id {
        None => s.next_id(now),
        Some((id, true)) => Some(id),
        Some((id, false)) => {
            if s.last_id.ms == id.ms {
                s.last_id.incr().filter(|n| n.ms == id.ms)
            } else {
                Some(id)
            }
        }
    };
    let Some(id) = id.filter(|id| *id > s.last_id) else {
        return ctx
            .out
            .err("The ID specified in XADD is equal or smaller than the target stream top item");
    };
    let fields: Vec<(&[u8], &[u8])> = args[field_pos..]
        .chunks_exact(2)
        .map(|c| (c[0], c[1]))
        .collect();
    s.append(id, &fields);
    let trimmed = match a.trim {
        Some(t) => s.trim(t, a.approx, a.limit) > 0,
        None => false,
    };
    ctx.ks.touch_write(1);
    reply_id(&mut ctx.out, id);
    ctx.ks.signal_ready(db, key);
    ctx.ks.notify(N::STREAM, "xadd", db, key);
    if trimmed {
        ctx.ks.notify(N::STREAM, "xtrim", db, key);
    }
}

fn xtrim(ctx: &mut Ctx, args: &[&[u8]]) {
    let db = ctx.db;
    match write(ctx.ks, db, args[1]) {
        Err(()) => return ctx.out.wrongtype(),
        Ok(None) => return ctx.out.int(0),
        Ok(Some(_)) => {}
    }
    let max_entries = ctx.ks.enc.stream_node_max_entries;
    let Some((a, _)) = parse_add_trim(&mut ctx.out, args, false, max_entries) else {
        return;
    };
    let Ok(Some(s)) = write(ctx.ks, db, args[1]) else {
        return;
    };
    let n = s.trim(a.trim.expect("strategy"), a.approx, a.limit);
    if n > 0 {
        ctx.ks.touch_write(1);
        ctx.ks.notify(N::STREAM, "xtrim", db, args[1]);
    }
    ctx.out.int(n as i64);
}

// ----- XRANGE / XREVRANGE / XLEN / XDEL --------------------------------------------

fn range_generic(ctx: &mut Ctx, args: &[&[u8]], rev: bool) {
    let (sa, ea) = if rev {
        (args[3], args[2])
    } else {
        (args[2], args[3])
    };
    let start = match interval_id(sa, 0, true) {
        Ok(id) => id,
        Err(e) => return ctx.out.err(e),
    };
    let end = match interval_id(ea, u64::MAX, false) {
        Ok(id) => id,
        Err(e) => return ctx.out.err(e),
    };
    let mut count: i64 = -1;
    let mut j = 4;
    while j < args.len() {
        if eq_ic(args[j], "count") && j + 1 < args.len() {
            let Some(n) = int_arg(&mut ctx.out, args[j + 1]) else {
                return;
            };
            count = n.max(0);
            j += 2;
        } else {
            return ctx.out.syntax();
        }
    }
    let s = match read(ctx.ks, ctx.db, args[1]) {
        Err(()) => return ctx.out.wrongtype(),
        Ok(None) => return ctx.out.array(0),
        Ok(Some(s)) => s,
    };
    if count == 0 {
        return ctx.out.null_array();
    }
    let count = if count < 0 { 0 } else { count as usize };
    let mut n = 0;
    let mut body = Vec::new();
    {
        let mut o = Out::new(&mut body, ctx.out.resp3);
        s.for_each(start, end, rev, |id, f| {
            reply_entry(&mut o, id, f);
            n += 1;
            count == 0 || n < count
        });
    }
    ctx.out.array(n);
    ctx.out.raw(&body);
}

fn xrange(ctx: &mut Ctx, args: &[&[u8]]) {
    range_generic(ctx, args, false)
}

fn xrevrange(ctx: &mut Ctx, args: &[&[u8]]) {
    range_generic(ctx, args, true)
}

fn xlen(ctx: &mut Ctx, args: &[&[u8]]) {
    match read(ctx.ks, ctx.db, args[1]) {
        Err(()) => ctx.out.wrongtype(),
        Ok(None) => ctx.out.int(0),
        Ok(Some(s)) => ctx.out.int(s.len() as i64),
    }
}

fn xdel(ctx: &mut Ctx, args: &[&[u8]]) {
    let db = ctx.db;
    match write(ctx.ks, db, args[1]) {
        Err(()) => return ctx.out.wrongtype(),
        Ok(None) => return ctx.out.int(0),
        Ok(Some(_)) => {}
    }
    let mut ids = Vec::with_capacity(args.len() - 2);
    for a in &args[2..] {
        match strict_id(a) {
            Some(id) => ids.push(id),
            None => return ctx.out.err(E_INVALID_ID),
        }
    }
    let Ok(Some(s)) = write(ctx.ks, db, args[1]) else {
        return;
    };
    let n = ids.iter().filter(|id| s.delete(**id)).count();
    if n > 0 {
        ctx.ks.touch_write(n as u64);
        ctx.ks.notify(N::STREAM, "xdel", db, args[1]);
    }
    ctx.out.int(n as i64);
}

// ----- XREAD / XREADGROUP ----------------------------------------------------------------

struct ReadArgs {
    group: bool,
    /// Timeout in ms when BLOCK was given.
    block: Option<u64>,
    count: usize,
    noack: bool,
    groupname: Vec<u8>,
    consumer: Vec<u8>,
    /// Index of the first key.
    streams_at: usize,
    n: usize,
    /// Re-run of a blocked call.
    retry: bool,
}

fn parse_read(out: &mut Out, args: &[&[u8]]) -> Option<ReadArgs> {
    let group = args[0].len() == 10;
    let mut r = ReadArgs {
        group,
        block: None,
        count: 0,
        noack: false,
        groupname: Vec::new(),
        consumer: Vec::new(),
        streams_at: 0,
        n: 0,
        retry: false,
    };
    let mut have_group = false;
    let mut i = 1;
    let argc = args.len();
    while i < argc {
        let more = argc - i - 1;
        let o = args[i];
        if eq_ic(o, "block") && more > 0 {
            i += 1;
            let Some(t) = parse_i64(args[i]) else {
                out.err("timeout is not an integer or out of range");
                return None;
            };
            if t < 0 {
                out.err("timeout is negative");
                return None;
            }
            r.block = Some(t as u64);
        } else if eq_ic(o, "count") && more > 0 {
            i += 1;
            let c = int_arg(out, args[i])?;
            r.count = c.max(0) as usize;
        } else if is_streams(o) && more > 0 {
            r.retry = o == RETRY_STREAMS;
            r.streams_at = i + 1;
            let n = argc - r.streams_at;
            if !n.is_multiple_of(2) {
                let (name, sym) = if group {
                    ("xreadgroup", '>')
                } else {
                    ("xread", '$')
                };
                out.err(&format!("Unbalanced '{name}' list of streams: for each stream key an ID or '{sym}' must be specified."));
                return None;
            }
            r.n = n / 2;
            break;
        } else if eq_ic(o, "group") && more >= 2 {
            if !group {
                out.err(
                    "The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                );
                return None;
            }
            r.groupname = args[i + 1].to_vec();
            r.consumer = args[i + 2].to_vec();
            have_group = true;
            i += 2;
        } else if eq_ic(o, "noack") {
            if !group {
                out.err(
                    "The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                );
                return None;
            }
            r.noack = true;
        } else {
            out.syntax();
            return None;
        }
        i += 1;
    }
    if r.streams_at == 0 {
        out.syntax();
        return None;
    }
    if group && !have_group {
        out.err("Missing GROUP option for XREADGROUP");
        return None;
    }
    Some(r)
}

/// XREAD/XREADGROUP with BLOCK called from a script: Redis 7.0 refuses it
/// when its option parser reaches BLOCK (earlier option errors win).
pub fn script_block_error(args: &[&[u8]]) -> Option<String> {
    let name = if eq_ic(args[0], "xread") {
        "xread"
    } else if eq_ic(args[0], "xreadgroup") {
        "xreadgroup"
    } else {
        return None;
    };
    let group = name == "xreadgroup";
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - i - 1;
        let o = args[i];
        if eq_ic(o, "block") && more > 0 {
            return Some(format!(
                "ERR {name} command is not allowed with BLOCK option from scripts"
            ));
        } else if eq_ic(o, "count") && more > 0 {
            parse_i64(args[i + 1])?;
            i += 2;
        } else if eq_ic(o, "group") && more >= 2 && group {
            i += 3;
        } else if eq_ic(o, "noack") && group {
            i += 1;
        } else {
            return None;
        }
    }
    None
}

/// What the check of one key resolved its ID argument to.
#[derive(Clone, Copy, Debug)]
enum Gt {
    /// Entries after this ID.
    After(StreamId),
    /// `>`: new entries for the group.
    New,
}

/// Validates one key of XREAD/XREADGROUP: its type, its group and its ID
/// argument. Returns the resolved ID or the full error line.
fn read_check(
    ks: &mut Keyspace,
    db: usize,
    key: &[u8],
    idarg: &[u8],
    group: Option<&[u8]>,
    retry: bool,
) -> Result<Gt, String> {
    const GONE: &str = "UNBLOCKED the stream key no longer exists";
    let s = match read(ks, db, key) {
        Ok(s) => s,
        Err(()) if retry && group.is_some() => return Err(GONE.into()),
        // A waiting XREAD keeps waiting (the re-run finds nothing).
        Err(()) if retry => None,
        Err(()) => {
            return Err("WRONGTYPE Operation against a key holding the wrong kind of value".into())
        }
    };
    if let Some(g) = group {
        if retry {
            match s {
                None => return Err(GONE.into()),
                Some(s) if !s.groups.contains_key(g) => {
                    return Err(
                        "NOGROUP the consumer group this client was blocked on no longer exists"
                            .into(),
                    )
                }
                _ => {}
            }
        }
        if s.is_none_or(|s| !s.groups.contains_key(g)) {
            return Err(format!(
                "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                String::from_utf8_lossy(key),
                String::from_utf8_lossy(g)
            ));
        }
    }
    if idarg == b"$" {
        if group.is_some() {
            return Err("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.".into());
        }
        return Ok(Gt::After(s.map(|s| s.last_id).unwrap_or_default()));
    }
    if idarg == b">" {
        if group.is_none() {
            return Err("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.".into());
        }
        return Ok(Gt::New);
    }
    match strict_id(idarg) {
        Some(id) => Ok(Gt::After(id)),
        None => Err(format!("ERR {E_INVALID_ID}")),
    }
}

/// The last live entry's ID.
fn last_valid(s: &Stream) -> Option<StreamId> {
    let mut last = None;
    s.for_each(StreamId::MIN, StreamId::MAX, true, |id, _| {
        last = Some(id);
        false
    });
    last
}

/// Parameters of a group read.
#[derive(Clone)]
struct GroupRead {
    group: Vec<u8>,
    consumer: Vec<u8>,
    noack: bool,
}

/// Serves one key: returns the reply for it (the key and its entries), or
/// None when it has nothing for the caller.
fn read_serve(
    ks: &mut Keyspace,
    db: usize,
    key: &[u8],
    gt: Gt,
    count: usize,
    g: Option<&GroupRead>,
    resp3: bool,
) -> Option<Vec<u8>> {
    let now = ks.now;
    let mut buf = Vec::new();
    match g {
        None => {
            let Gt::After(after) = gt else { return None };
            let s = read(ks, db, key).ok()??;
            if s.is_empty() || last_valid(s).is_none_or(|m| m <= after) {
                return None;
            }
            let start = after.incr()?;
            let mut o = Out::new(&mut buf, resp3);
            if !resp3 {
                o.array(2);
            }
            o.bulk(key);
            let mut n = 0;
            let mut body = Vec::new();
            {
                let mut b = Out::new(&mut body, resp3);
                s.for_each(start, StreamId::MAX, false, |id, f| {
                    reply_entry(&mut b, id, f);
                    n += 1;
                    count == 0 || n < count
                });
            }
            o.array(n);
            o.raw(&body);
            Some(buf)
        }
        Some(g) => {
            let s = match write(ks, db, key) {
                Ok(Some(s)) => s,
                _ => return None,
            };
            let (start, history) = match gt {
                Gt::After(id) => (id.incr()?, true),
                Gt::New => {
                    let last = s.groups.get(&g.group)?.last_id;
                    if s.is_empty() || last_valid(s).is_none_or(|m| m <= last) {
                        return None;
                    }
                    (last.incr()?, false)
                }
            };
            let mut o = Out::new(&mut buf, resp3);
            if !resp3 {
                o.array(2);
            }
            o.bulk(key);
            let grp = s.groups.get_mut(&g.group)?;
            let (c, _) = grp.consumer(&g.consumer, now);
            c.seen_time = now;
            if history {
                let ids: Vec<StreamId> = c
                    .pel
                    .range(start..)
                    .take(if count == 0 { usize::MAX } else { count })
                    .copied()
                    .collect();
                o.array(ids.len());
                for id in ids {
                    match s.get(id) {
                        Some(e) => {
                            reply_owned(&mut o, &e);
                            let grp = s.groups.get_mut(&g.group).expect("group");
                            if let Some(n) = grp.pel.get_mut(&id) {
                                n.delivery_time = now;
                                n.delivery_count = n.delivery_count.wrapping_add(1);
                            }
                        }
                        None => {
                            o.array(2);
                            reply_id(&mut o, id);
                            o.null_array();
                        }
                    }
                }
            } else {
                let entries = s.range(start, StreamId::MAX, count, false);
                o.array(entries.len());
                for e in &entries {
                    reply_owned(&mut o, e);
                    s.group_delivered(&g.group, e.0);
                    if !g.noack {
                        let grp = s.groups.get_mut(&g.group).expect("group");
                        if let Some(old) = grp.pel.get(&e.0).map(|n| n.consumer.clone()) {
                            if let Some(oc) = grp.consumers.get_mut(&old) {
                                oc.pel.remove(&e.0);
                            }
                        }
                        grp.pel.insert(
                            e.0,
                            crate::types::stream::Nack {
                                delivery_time: now,
                                delivery_count: 1,
                                consumer: g.consumer.clone(),
                            },
                        );
                        grp.consumers
                            .get_mut(&g.consumer)
                            .expect("consumer")
                            .pel
                            .insert(e.0);
                    }
                }
            }
            ks.touch_write(1);
            Some(buf)
        }
    }
}

/// The arguments to re-run a blocked read with: `$` replaced by the IDs
/// it stood for at block time.
fn block_args(args: &[&[u8]], r: &ReadArgs, gts: &[Gt]) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = args.iter().map(|a| a.to_vec()).collect();
    v[r.streams_at - 1] = RETRY_STREAMS.to_vec();
    for (i, gt) in gts.iter().enumerate() {
        let at = r.streams_at + r.n + i;
        if v[at] == b"$" {
            if let Gt::After(id) = gt {
                v[at] = id_bytes(*id);
            }
        }
    }
    v
}

fn write_read_reply(out: &mut Out, parts: &[Vec<u8>]) {
    if out.resp3 {
        out.map(parts.len());
    } else {
        out.array(parts.len());
    }
    for p in parts {
        out.raw(p);
    }
}

fn xread(ctx: &mut Ctx, args: &[&[u8]]) {
    let Some(r) = parse_read(&mut ctx.out, args) else {
        return;
    };
    let db = ctx.db;
    let keys = &args[r.streams_at..r.streams_at + r.n];
    let ids = &args[r.streams_at + r.n..];
    let gname = r.group.then_some(&r.groupname[..]);
    let mut gts = Vec::with_capacity(r.n);
    for (k, id) in keys.iter().zip(ids) {
        match read_check(ctx.ks, db, k, id, gname, r.retry) {
            Ok(gt) => gts.push(gt),
            Err(e) => return ctx.out.error(&e),
        }
    }
    let gr = r.group.then(|| GroupRead {
        group: r.groupname.clone(),
        consumer: r.consumer.clone(),
        noack: r.noack,
    });
    let resp3 = ctx.out.resp3;
    let mut parts = Vec::new();
    for (k, gt) in keys.iter().zip(&gts) {
        if let Some(p) = read_serve(ctx.ks, db, k, *gt, r.count, gr.as_ref(), resp3) {
            parts.push(p);
        }
    }
    if !parts.is_empty() {
        return write_read_reply(&mut ctx.out, &parts);
    }
    match r.block {
        Some(ms) => {
            let owned = block_args(args, &r, &gts);
            ctx.ks
                .block_with_args(keys.iter().map(|k| k.to_vec()).collect(), ms, true, owned);
        }
        None => ctx.out.null_array(),
    }
}

fn xread_coord(ctx: &mut SrvCtx, args: &[&[u8]]) {
    let Some(r) = parse_read(&mut ctx.out, args) else {
        return;
    };
    let db = ctx.conn.db;
    let resp3 = ctx.out.resp3;
    let now = crate::util::now_ms();
    let keys: Vec<Vec<u8>> = args[r.streams_at..r.streams_at + r.n]
        .iter()
        .map(|k| k.to_vec())
        .collect();
    let ids: Vec<Vec<u8>> = args[r.streams_at + r.n..]
        .iter()
        .map(|k| k.to_vec())
        .collect();
    let shards: Vec<usize> = keys.iter().map(|k| ctx.sh.shard_of(k)).collect();
    let gname = r.group.then(|| r.groupname.clone());
    let gr = r.group.then(|| GroupRead {
        group: r.groupname.clone(),
        consumer: r.consumer.clone(),
        noack: r.noack,
    });
    let count = r.count;
    let retry = r.retry;
    let shard_list = shards.clone();
    let res = ctx.sh.tx(&shard_list, move |tx| {
        let mut gts = Vec::new();
        for i in 0..keys.len() {
            let (k, id, g) = (keys[i].clone(), ids[i].clone(), gname.clone());
            let got = tx.run(shards[i], move |sh: &mut Shard| {
                sh.ks.now = now;
                read_check(&mut sh.ks, db, &k, &id, g.as_deref(), retry)
            });
            match got {
                Ok(gt) => gts.push(gt),
                Err(e) => return Err(e),
            }
        }
        let mut parts = Vec::new();
        for i in 0..keys.len() {
            let (k, gt, g) = (keys[i].clone(), gts[i], gr.clone());
            let p = tx.run(shards[i], move |sh: &mut Shard| {
                sh.ks.now = now;
                let p = read_serve(&mut sh.ks, db, &k, gt, count, g.as_ref(), resp3);
                sh.ks.settle_watch();
                p
            });
            if let Some(p) = p {
                parts.push(p);
            }
        }
        Ok((gts, parts))
    });
    match res {
        Err(e) => ctx.out.error(&e),
        Ok((_, parts)) if !parts.is_empty() => write_read_reply(&mut ctx.out, &parts),
        Ok((gts, _)) => match r.block {
            Some(ms) => {
                let owned = block_args(args, &r, &gts);
                let keys = args[r.streams_at..r.streams_at + r.n]
                    .iter()
                    .map(|k| k.to_vec())
                    .collect();
                ctx.sh.ks.block_with_args(keys, ms, true, owned);
            }
            None => ctx.out.null_array(),
        },
    }
}

// ----- consumer groups -------------------------------------------------------------

fn nogroup_key(out: &mut Out, key: &[u8], group: &[u8]) {
    out.error(&format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        String::from_utf8_lossy(key),
        String::from_utf8_lossy(group)
    ));
}

const XGROUP_HELP: &[&str] = &[
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
];

fn sub_syntax(out: &mut Out, sub: &[u8], cmd: &str) {
    out.err(&format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try {cmd} HELP.",
        String::from_utf8_lossy(&sub[..sub.len().min(128)])
    ));
}

fn xgroup(ctx: &mut Ctx, args: &[&[u8]]) {
    let Some(sub) = find_sub(&mut ctx.out, XGROUP_SUBS, args) else {
        return;
    };
    if sub.name == "help" {
        return help_reply(&mut ctx.out, "XGROUP", XGROUP_HELP);
    }
    let db = ctx.db;
    let now = ctx.ks.now;
    let mut mkstream = false;
    let mut entries_read = INVALID_ENTRIES_READ;
    if sub.name == "create" || sub.name == "setid" {
        let mut i = 5;
        while i < args.len() {
            if sub.name == "create" && eq_ic(args[i], "mkstream") {
                mkstream = true;
                i += 1;
            } else if eq_ic(args[i], "entriesread") && i + 1 < args.len() {
                let Some(n) = int_arg(&mut ctx.out, args[i + 1]) else {
                    return;
                };
                if n < 0 && n != INVALID_ENTRIES_READ {
                    return ctx.out.err("value for ENTRIESREAD must be positive or -1");
                }
                entries_read = n;
                i += 2;
            } else {
                return sub_syntax(&mut ctx.out, args[1], "XGROUP");
            }
        }
    }
    let key = args[2];
    let grp = args[3];
    let exists = match read(ctx.ks, db, key) {
        Err(()) => return ctx.out.wrongtype(),
        Ok(s) => s.map(|s| s.groups.contains_key(grp)),
    };
    if !mkstream {
        let Some(has_group) = exists else {
            return ctx.out.err("The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.");
        };
        if !has_group && matches!(sub.name, "setid" | "createconsumer" | "delconsumer") {
            return ctx.out.error(&format!(
                "NOGROUP No such consumer group '{}' for key name '{}'",
                String::from_utf8_lossy(grp),
                String::from_utf8_lossy(key)
            ));
        }
    }
    match sub.name {
        "create" => {
            if args.len() > 8 {
                return sub_syntax(&mut ctx.out, args[1], "XGROUP");
            }
            let id = if args[4] == b"$" {
                match read(ctx.ks, db, key) {
                    Ok(Some(s)) => s.last_id,
                    _ => StreamId::MIN,
                }
            } else {
                match strict_id(args[4]) {
                    Some(id) => id,
                    None => return ctx.out.err(E_INVALID_ID),
                }
            };
            if exists.is_none() {
                let s = new_stream(ctx.ks);
                ctx.ks.set(db, key, Value::Stream(Box::new(s)), false);
            }
            let Ok(Some(s)) = write(ctx.ks, db, key) else {
                return;
            };
            if s.groups.contains_key(grp) {
                return ctx
                    .out
                    .error("BUSYGROUP Consumer Group name already exists");
            }
            s.groups.insert(grp.to_vec(), Group::new(id, entries_read));
            ctx.ks.touch_write(1);
            ctx.ks.notify(N::STREAM, "xgroup-create", db, key);
            ctx.out.ok();
        }
        "setid" => {
            if args.len() != 5 && args.len() != 7 {
                return sub_syntax(&mut ctx.out, args[1], "XGROUP");
            }
            let Ok(Some(s)) = write(ctx.ks, db, key) else {
                return;
            };
            let id = if args[4] == b"$" {
                s.last_id
            } else {
                match parse_id(args[4], 0, false, false) {
                    Some(p) => p.id,
                    None => return ctx.out.err(E_INVALID_ID),
                }
            };
            let g = s.groups.get_mut(grp).expect("group");
            g.last_id = id;
            g.entries_read = entries_read;
            ctx.ks.touch_write(1);
            ctx.ks.notify(N::STREAM, "xgroup-setid", db, key);
            ctx.out.ok();
        }
        "destroy" => {
            let Ok(Some(s)) = write(ctx.ks, db, key) else {
                return;
            };
            if s.groups.remove(grp).is_some() {
                ctx.ks.touch_write(1);
                ctx.ks.notify(N::STREAM, "xgroup-destroy", db, key);
                ctx.out.int(1);
                // Wake XREADGROUP clients of that group: they get an error.
                ctx.ks.signal_ready(db, key);
            } else {
                ctx.out.int(0);
            }
        }
        "createconsumer" => {
            let Ok(Some(s)) = write(ctx.ks, db, key) else {
                return;
            };
            let g = s.groups.get_mut(grp).expect("group");
            let (_, created) = g.consumer(args[4], now);
            if created {
                ctx.ks.touch_write(1);
                ctx.ks.notify(N::STREAM, "xgroup-createconsumer", db, key);
            }
            ctx.out.int(created as i64);
        }
        "delconsumer" => {
            let Ok(Some(s)) = write(ctx.ks, db, key) else {
                return;
            };
            let g = s.groups.get_mut(grp).expect("group");
            let pending = match g.consumers.remove(args[4]) {
                Some(c) => {
                    for id in &c.pel {
                        g.pel.remove(id);
                    }
                    c.pel.len() as i64
                }
                None => 0,
            };
            ctx.ks.touch_write(1);
            ctx.ks.notify(N::STREAM, "xgroup-delconsumer", db, key);
            ctx.out.int(pending);
        }
        _ => sub_syntax(&mut ctx.out, args[1], "XGROUP"),
    }
}

fn xack(ctx: &mut Ctx, args: &[&[u8]]) {
    let db = ctx.db;
    let has_group = match read(ctx.ks, db, args[1]) {
        Err(()) => return ctx.out.wrongtype(),
        Ok(s) => s.is_some_and(|s| s.groups.contains_key(args[2])),
    };
    let mut ids = Vec::with_capacity(args.len() - 3);
    for a in &args[3..] {
        match strict_id(a) {
            Some(id) => ids.push(id),
            None => return ctx.out.err(E_INVALID_ID),
        }
    }
    if !has_group {
        return ctx.out.int(0);
    }
    let Ok(Some(s)) = write(ctx.ks, db, args[1]) else {
        return;
    };
    let g = s.groups.get_mut(args[2]).expect("group");
    let n = ids.iter().filter(|id| g.ack(**id)).count();
    if n > 0 {
        ctx.ks.touch_write(n as u64);
    }
    ctx.out.int(n as i64);
}

fn xpending(ctx: &mut Ctx, args: &[&[u8]]) {
    let argc = args.len();
    let justinfo = argc == 3;
    if argc != 3 && !(6..=9).contains(&argc) {
        return ctx.out.syntax();
    }
    let mut minidle = 0i64;
    let mut count = 0i64;
    let mut start = StreamId::MIN;
    let mut end = StreamId::MAX;
    let mut consumer: Option<&[u8]> = None;
    if argc >= 6 {
        let mut at = 3;
        if eq_ic(args[3], "idle") {
            let Some(n) = int_arg(&mut ctx.out, args[4]) else {
                return;
            };
            minidle = n;
            if argc < 8 {
                return ctx.out.syntax();
            }
            at += 2;
        }
        let Some(c) = int_arg(&mut ctx.out, args[at + 2]) else {
            return;
        };
        count = c.max(0);
        start = match interval_id(args[at], 0, true) {
            Ok(id) => id,
            Err(e) => return ctx.out.err(e),
        };
        end = match interval_id(args[at + 1], u64::MAX, false) {
            Ok(id) => id,
            Err(e) => return ctx.out.err(e),
        };
        if at + 3 < argc {
            consumer = Some(args[at + 3]);
        }
    }
    let now = ctx.ks.now;
    let s = match read(ctx.ks, ctx.db, args[1]) {
        Err(()) => return ctx.out.wrongtype(),
        Ok(s) => s,
    };
    let Some(g) = s.and_then(|s| s.groups.get(args[2])) else {
        return nogroup_key(&mut ctx.out, args[1], args[2]);
    };
    let out = &mut ctx.out;
    if justinfo {
        out.array(4);
        out.int(g.pel.len() as i64);
        if g.pel.is_empty() {
            out.null();
            out.null();
            out.null_array();
        } else {
            reply_id(out, *g.pel.keys().next().expect("first"));
            reply_id(out, *g.pel.keys().next_back().expect("last"));
            let cs: Vec<_> = g.consumers.iter().filter(|c| !c.1.pel.is_empty()).collect();
            out.array(cs.len());
            for (name, c) in cs {
                out.array(2);
                out.bulk(name);
                out.bulk_int(c.pel.len() as i64);
            }
        }
        return;
    }
    let ids: Vec<StreamId> = match consumer {
        Some(name) => match g.consumers.get(name) {
            None => return out.array(0),
            Some(c) => {
                if start > end {
                    Vec::new()
                } else {
                    c.pel.range(start..=end).copied().collect()
                }
            }
        },
        None => {
            if start > end {
                Vec::new()
            } else {
                g.pel.range(start..=end).map(|e| *e.0).collect()
            }
        }
    };
    let mut body = Vec::new();
    let mut n = 0usize;
    {
        let mut o = Out::new(&mut body, out.resp3);
        for id in ids {
            if count == 0 {
                break;
            }
            let Some(nack) = g.pel.get(&id) else {
                continue;
            };
            let idle = (now as i64).wrapping_sub(nack.delivery_time as i64);
            if minidle != 0 && idle < minidle {
                continue;
            }
            n += 1;
            count -= 1;
            o.array(4);
            reply_id(&mut o, id);
            o.bulk(&nack.consumer);
            o.int(idle.max(0));
            o.int(nack.delivery_count as i64);
        }
    }
    out.array(n);
    out.raw(&body);
}

fn claim_one(
    g: &mut Group,
    id: StreamId,
    consumer: &[u8],
    time: u64,
    count: Option<u64>,
    now: u64,
) {
    let (c, _) = g.consumer(consumer, now);
    c.seen_time = now;
    c.pel.insert(id);
    let nack = g.pel.get_mut(&id).expect("nack");
    if nack.consumer != consumer {
        let old = std::mem::replace(&mut nack.consumer, consumer.to_vec());
        nack.delivery_time = time;
        if let Some(n) = count {
            nack.delivery_count = n;
        }
        if let Some(oc) = g.consumers.get_mut(&old) {
            oc.pel.remove(&id);
        }
    } else {
        nack.delivery_time = time;
        if let Some(n) = count {
            nack.delivery_count = n;
        }
    }
}

fn xclaim(ctx: &mut Ctx, args: &[&[u8]]) {
    let db = ctx.db;
    let now = ctx.ks.now;
    let has_group = match read(ctx.ks, db, args[1]) {
        Err(()) => return ctx.out.wrongtype(),
        Ok(s) => s.is_some_and(|s| s.groups.contains_key(args[2])),
    };
    if !has_group {
        return nogroup_key(&mut ctx.out, args[1], args[2]);
    }
    let Some(minidle) = parse_i64(args[4]) else {
        return ctx.out.err("Invalid min-idle-time argument for XCLAIM");
    };
    let minidle = minidle.max(0);
    let mut ids = Vec::new();
    let mut j = 5;
    while j < args.len() {
        match strict_id(args[j]) {
            Some(id) => ids.push(id),
            None => break,
        }
        j += 1;
    }
    let (mut force, mut justid) = (false, false);
    let mut retry: i64 = -1;
    let mut dtime: i64 = -1;
    let mut last_id = StreamId::MIN;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let o = args[j];
        if eq_ic(o, "force") {
            force = true;
        } else if eq_ic(o, "justid") {
            justid = true;
        } else if eq_ic(o, "idle") && more > 0 {
            j += 1;
            let Some(n) = parse_i64(args[j]) else {
                return ctx.out.err("Invalid IDLE option argument for XCLAIM");
            };
            dtime = (now as i64).wrapping_sub(n);
        } else if eq_ic(o, "time") && more > 0 {
            j += 1;
            let Some(n) = parse_i64(args[j]) else {
                return ctx.out.err("Invalid TIME option argument for XCLAIM");
            };
            dtime = n;
        } else if eq_ic(o, "retrycount") && more > 0 {
            j += 1;
            let Some(n) = parse_i64(args[j]) else {
                return ctx.out.err("Invalid RETRYCOUNT option argument for XCLAIM");
            };
            retry = n;
        } else if eq_ic(o, "lastid") && more > 0 {
            j += 1;
            let Some(id) = strict_id(args[j]) else {
                return ctx.out.err(E_INVALID_ID);
            };
            last_id = id;
        } else {
            return ctx.out.err(&format!(
                "Unrecognized XCLAIM option '{}'",
                String::from_utf8_lossy(o)
            ));
        }
        j += 1;
    }
    let dtime = if dtime < 0 || dtime > now as i64 {
        now
    } else {
        dtime as u64
    };
    let Ok(Some(s)) = write(ctx.ks, db, args[1]) else {
        return;
    };
    let consumer = args[3];
    let mut body = Vec::new();
    let mut n = 0;
    {
        let mut o = Out::new(&mut body, ctx.out.resp3);
        {
            let g = s.groups.get_mut(args[2]).expect("group");
            if last_id > g.last_id {
                g.last_id = last_id;
            }
        }
        for id in ids {
            let entry = s.get(id);
            let g = s.groups.get_mut(args[2]).expect("group");
            let Some(entry) = entry else {
                g.ack(id);
                continue;
            };
            let mut fresh = false;
            if force && !g.pel.contains_key(&id) {
                g.pel.insert(
                    id,
                    crate::types::stream::Nack {
                        delivery_time: now,
                        delivery_count: 0,
                        consumer: Vec::new(),
                    },
                );
                fresh = true;
            }
            let Some(nack) = g.pel.get(&id) else {
                continue;
            };
            if !fresh
                && minidle > 0
                && ((now as i64).wrapping_sub(nack.delivery_time as i64)) < minidle
            {
                continue;
            }
            let cnt = if retry >= 0 {
                Some(retry as u64)
            } else if !justid {
                Some(nack.delivery_count.wrapping_add(1))
            } else {
                None
            };
            claim_one(g, id, consumer, dtime, cnt, now);
            if justid {
                reply_id(&mut o, id);
            } else {
                reply_owned(&mut o, &entry);
            }
            n += 1;
        }
    }
    ctx.ks.touch_write(1);
    ctx.out.array(n);
    ctx.out.raw(&body);
}

fn xautoclaim(ctx: &mut Ctx, args: &[&[u8]]) {
    let db = ctx.db;
    let now = ctx.ks.now;
    let Some(minidle) = parse_i64(args[4]) else {
        return ctx.out.err("Invalid min-idle-time argument for XAUTOCLAIM");
    };
    let minidle = minidle.max(0);
    let start = match interval_id(args[5], 0, true) {
        Ok(id) => id,
        Err(e) => return ctx.out.err(e),
    };
    let mut count: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if eq_ic(args[j], "count") && more > 0 {
            let max = i64::MAX / 16;
            match parse_i64(args[j + 1]) {
                Some(n) if (1..=max).contains(&n) => count = n,
                _ => return ctx.out.err("COUNT must be > 0"),
            }
            j += 1;
        } else if eq_ic(args[j], "justid") {
            justid = true;
        } else {
            return ctx.out.syntax();
        }
        j += 1;
    }
    let has_group = match read(ctx.ks, db, args[1]) {
        Err(()) => return ctx.out.wrongtype(),
        Ok(s) => s.is_some_and(|s| s.groups.contains_key(args[2])),
    };
    if !has_group {
        return nogroup_key(&mut ctx.out, args[1], args[2]);
    }
    let Ok(Some(s)) = write(ctx.ks, db, args[1]) else {
        return;
    };
    let consumer = args[3];
    let mut attempts = count.saturating_mul(10);
    let mut deleted = Vec::new();
    let mut body = Vec::new();
    let mut n = 0;
    let mut cursor = StreamId::MIN;
    let mut pos = start;
    {
        let mut o = Out::new(&mut body, ctx.out.resp3);
        loop {
            if attempts == 0 || count == 0 {
                // The cursor is the next pending entry, if any.
                let g = s.groups.get(args[2]).expect("group");
                cursor = g.pel.range(pos..).next().map(|e| *e.0).unwrap_or_default();
                break;
            }
            attempts -= 1;
            let g = s.groups.get(args[2]).expect("group");
            let Some((&id, nack)) = g.pel.range(pos..).next() else {
                break;
            };
            let idle = (now as i64).wrapping_sub(nack.delivery_time as i64);
            let cnt = nack.delivery_count;
            pos = match id.incr() {
                Some(p) => p,
                None => {
                    attempts = 0;
                    StreamId::MAX
                }
            };
            let entry = s.get(id);
            let g = s.groups.get_mut(args[2]).expect("group");
            let Some(entry) = entry else {
                g.ack(id);
                deleted.push(id);
                count -= 1;
                continue;
            };
            if minidle > 0 && idle < minidle {
                continue;
            }
            claim_one(
                g,
                id,
                consumer,
                now,
                (!justid).then_some(cnt.wrapping_add(1)),
                now,
            );
            if justid {
                reply_id(&mut o, id);
            } else {
                reply_owned(&mut o, &entry);
            }
            n += 1;
            count -= 1;
            if id == StreamId::MAX {
                break;
            }
        }
    }
    ctx.ks.touch_write(1);
    let out = &mut ctx.out;
    out.array(3);
    reply_id(out, cursor);
    out.array(n);
    out.raw(&body);
    out.array(deleted.len());
    for id in deleted {
        reply_id(out, id);
    }
}

// ----- XINFO / XSETID ------------------------------------------------------------------

const XINFO_HELP: &[&str] = &[
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
];

fn reply_opt_int(out: &mut Out, v: Option<i64>) {
    match v {
        Some(n) => out.int(n),
        None => out.null(),
    }
}

fn xinfo(ctx: &mut Ctx, args: &[&[u8]]) {
    let Some(sub) = find_sub(&mut ctx.out, XINFO_SUBS, args) else {
        return;
    };
    if sub.name == "help" {
        return help_reply(&mut ctx.out, "XINFO", XINFO_HELP);
    }
    let now = ctx.ks.now;
    let s = match read(ctx.ks, ctx.db, args[2]) {
        Err(()) => return ctx.out.wrongtype(),
        Ok(None) => return ctx.out.err("no such key"),
        Ok(Some(s)) => s,
    };
    let out = &mut ctx.out;
    match sub.name {
        "consumers" => {
            let Some(g) = s.groups.get(args[3]) else {
                return out.error(&format!(
                    "NOGROUP No such consumer group '{}' for key name '{}'",
                    String::from_utf8_lossy(args[3]),
                    String::from_utf8_lossy(args[2])
                ));
            };
            out.array(g.consumers.len());
            for (name, c) in &g.consumers {
                out.map(3);
                out.bulk(b"name");
                out.bulk(name);
                out.bulk(b"pending");
                out.int(c.pel.len() as i64);
                out.bulk(b"idle");
                out.int((now as i64).wrapping_sub(c.seen_time as i64).max(0));
            }
        }
        "groups" => {
            out.array(s.groups.len());
            for (name, g) in &s.groups {
                out.map(6);
                out.bulk(b"name");
                out.bulk(name);
                out.bulk(b"consumers");
                out.int(g.consumers.len() as i64);
                out.bulk(b"pending");
                out.int(g.pel.len() as i64);
                out.bulk(b"last-delivered-id");
                reply_id(out, g.last_id);
                out.bulk(b"entries-read");
                reply_opt_int(
                    out,
                    (g.entries_read != INVALID_ENTRIES_READ).then_some(g.entries_read),
                );
                out.bulk(b"lag");
                reply_opt_int(out, s.lag(g));
            }
        }
        _ => {
            let opts = &args[3..];
            let mut full = false;
            let mut count: i64 = 10;
            if !opts.is_empty() {
                if (opts.len() != 1 && opts.len() != 3) || !eq_ic(opts[0], "full") {
                    return sub_syntax(out, args[1], "XINFO");
                }
                full = true;
                if opts.len() == 3 {
                    if !eq_ic(opts[1], "count") {
                        return sub_syntax(out, args[1], "XINFO");
                    }
                    let Some(c) = int_arg(out, opts[2]) else {
                        return;
                    };
                    count = if c < 0 { 10 } else { c };
                }
            }
            out.map(if full { 9 } else { 10 });
            out.bulk(b"length");
            out.int(s.len() as i64);
            out.bulk(b"radix-tree-keys");
            out.int(s.nodes.len() as i64);
            out.bulk(b"radix-tree-nodes");
            out.int(s.nodes.len() as i64 + 1);
            out.bulk(b"last-generated-id");
            reply_id(out, s.last_id);
            out.bulk(b"max-deleted-entry-id");
            reply_id(out, s.max_deleted_id);
            out.bulk(b"entries-added");
            out.int(s.entries_added as i64);
            out.bulk(b"recorded-first-entry-id");
            reply_id(out, s.first_id);
            let lim = if count == 0 {
                usize::MAX
            } else {
                count as usize
            };
            if !full {
                out.bulk(b"groups");
                out.int(s.groups.len() as i64);
                out.bulk(b"first-entry");
                match s.range(StreamId::MIN, StreamId::MAX, 1, false).first() {
                    Some(e) => reply_owned(out, e),
                    None => out.null(),
                }
                out.bulk(b"last-entry");
                match s.range(StreamId::MIN, StreamId::MAX, 1, true).first() {
                    Some(e) => reply_owned(out, e),
                    None => out.null(),
                }
                return;
            }
            out.bulk(b"entries");
            let es = s.range(StreamId::MIN, StreamId::MAX, count as usize, false);
            out.array(es.len());
            for e in &es {
                reply_owned(out, e);
            }
            out.bulk(b"groups");
            out.array(s.groups.len());
            for (name, g) in &s.groups {
                out.map(7);
                out.bulk(b"name");
                out.bulk(name);
                out.bulk(b"last-delivered-id");
                reply_id(out, g.last_id);
                out.bulk(b"entries-read");
                reply_opt_int(
                    out,
                    (g.entries_read != INVALID_ENTRIES_READ).then_some(g.entries_read),
                );
                out.bulk(b"lag");
                reply_opt_int(out, s.lag(g));
                out.bulk(b"pel-count");
                out.int(g.pel.len() as i64);
                out.bulk(b"pending");
                let pel: Vec<_> = g.pel.iter().take(lim).collect();
                out.array(pel.len());
                for (id, n) in pel {
                    out.array(4);
                    reply_id(out, *id);
                    out.bulk(&n.consumer);
                    out.int(n.delivery_time as i64);
                    out.int(n.delivery_count as i64);
                }
                out.bulk(b"consumers");
                out.array(g.consumers.len());
                for (cname, c) in &g.consumers {
                    out.map(4);
                    out.bulk(b"name");
                    out.bulk(cname);
                    out.bulk(b"seen-time");
                    out.int(c.seen_time as i64);
                    out.bulk(b"pel-count");
                    out.int(c.pel.len() as i64);
                    out.bulk(b"pending");
                    let pel: Vec<_> = c.pel.iter().take(lim).collect();
                    out.array(pel.len());
                    for id in pel {
                        let nack = g.pel.get(id);
                        out.array(3);
                        reply_id(out, *id);
                        out.int(nack.map_or(0, |n| n.delivery_time as i64));
                        out.int(nack.map_or(0, |n| n.delivery_count as i64));
                    }
                }
            }
        }
    }
}

fn xsetid(ctx: &mut Ctx, args: &[&[u8]]) {
    let Some(id) = strict_id(args[2]) else {
        return ctx.out.err(E_INVALID_ID);
    };
    let mut entries_added: i64 = -1;
    let mut max_del = StreamId::MIN;
    let mut i = 3;
    while i < args.len() {
        let more = args.len() - 1 - i;
        if eq_ic(args[i], "entriesadded") && more > 0 {
            let Some(n) = int_arg(&mut ctx.out, args[i + 1]) else {
                return;
            };
            if n < 0 {
                return ctx.out.err("entries_added must be positive");
            }
            entries_added = n;
            i += 2;
        } else if eq_ic(args[i], "maxdeletedid") && more > 0 {
            let Some(m) = strict_id(args[i + 1]) else {
                return ctx.out.err(E_INVALID_ID);
            };
            if id < m {
                return ctx.out.err(
                    "The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                );
            }
            max_del = m;
            i += 2;
        } else {
            return ctx.out.syntax();
        }
    }
    let s = match write(ctx.ks, ctx.db, args[1]) {
        Err(()) => return ctx.out.wrongtype(),
        Ok(None) => return ctx.out.err("no such key"),
        Ok(Some(s)) => s,
    };
    if !s.is_empty() {
        if last_valid(s).is_some_and(|m| id < m) {
            return ctx
                .out
                .err("The ID specified in XSETID is smaller than the target stream top item");
        }
        if entries_added != -1 && s.len() > entries_added as u64 {
            return ctx.out.err(
                "The entries_added specified in XSETID is smaller than the target stream length",
            );
        }
    }
    s.last_id = id;
    if entries_added != -1 {
        s.entries_added = entries_added as u64;
    }
    if !max_del.is_zero() {
        s.max_deleted_id = max_del;
    }
    ctx.ks.touch_write(1);
    ctx.ks.notify(N::STREAM, "xsetid", ctx.db, args[1]);
    ctx.out.ok();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(ks: &mut Keyspace, line: &str) -> String {
        let args: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        String::from_utf8_lossy(&crate::cmd::run_keyed(ks, 0, false, &args)).into_owned()
    }

    fn ks() -> Keyspace {
        let mut ks = Keyspace::new(16);
        ks.now = 1_700_000_000_000;
        ks
    }

    #[test]
    fn xadd_ids_and_errors() {
        let mut ks = ks();
        assert_eq!(run(&mut ks, "XADD s 5-* f v"), "$3\r\n5-0\r\n");
        assert_eq!(run(&mut ks, "XADD s 5-* f v"), "$3\r\n5-1\r\n");
        assert_eq!(run(&mut ks, "XADD s * f v"), "$15\r\n1700000000000-0\r\n");
        assert_eq!(
            run(&mut ks, "XADD s 5-9 f v"),
            "-ERR The ID specified in XADD is equal or smaller than the target stream top item\r\n"
        );
        assert_eq!(
            run(&mut ks, "XADD s 1-x f v"),
            "-ERR Invalid stream ID specified as stream command argument\r\n"
        );
        assert_eq!(
            run(&mut ks, "XADD s 0-0 f v"),
            "-ERR The ID specified in XADD must be greater than 0-0\r\n"
        );
        assert_eq!(
            run(&mut ks, "XADD s 9-0 f"),
            "-ERR wrong number of arguments for 'xadd' command\r\n"
        );
        assert_eq!(run(&mut ks, "XADD n NOMKSTREAM 1-0 f v"), "$-1\r\n");
        assert_eq!(run(&mut ks, "XLEN s"), ":3\r\n");
        assert_eq!(run(&mut ks, "TYPE s"), "+stream\r\n");
        assert_eq!(run(&mut ks, "OBJECT ENCODING s"), "$6\r\nstream\r\n");
        assert_eq!(
            run(
                &mut ks,
                "XADD s 18446744073709551615-18446744073709551615 f v"
            ),
            "$41\r\n18446744073709551615-18446744073709551615\r\n"
        );
        assert_eq!(
            run(&mut ks, "XADD s * f v"),
            "-ERR The stream has exhausted the last possible ID, unable to add more items\r\n"
        );
    }

    #[test]
    fn ranges_exclusive_and_count() {
        let mut ks = ks();
        for i in 1..=5 {
            run(&mut ks, &format!("XADD s {i}-0 f {i}"));
        }
        let r = run(&mut ks, "XRANGE s (2 (5-0 COUNT 10");
        assert!(
            r.starts_with("*2\r\n") && r.contains("3-0") && r.contains("4-0"),
            "{r}"
        );
        assert_eq!(run(&mut ks, "XRANGE s - + COUNT 0"), "*-1\r\n");
        assert!(run(&mut ks, "XREVRANGE s + - COUNT 1").contains("5-0"));
        assert_eq!(
            run(
                &mut ks,
                "XRANGE s (18446744073709551615-18446744073709551615 +"
            ),
            "-ERR invalid start ID for the interval\r\n"
        );
        assert_eq!(run(&mut ks, "XDEL s 3-0 3-0 9-0"), ":1\r\n");
        assert_eq!(run(&mut ks, "XTRIM s MAXLEN 2"), ":2\r\n");
        assert_eq!(run(&mut ks, "XLEN s"), ":2\r\n");
    }

    #[test]
    fn xread_blocks_with_dollar_resolved() {
        let mut ks = ks();
        run(&mut ks, "XADD s 7-0 f v");
        assert_eq!(run(&mut ks, "XREAD BLOCK 100 STREAMS s $"), "");
        let req = ks.block_request.take().expect("asked to block");
        assert_eq!(req.keys, vec![b"s".to_vec()]);
        let args = req.args.expect("rewritten args");
        assert_eq!(args.last().unwrap(), b"7-0");
        assert_eq!(args[3], RETRY_STREAMS);
        // Without BLOCK: the null array.
        assert_eq!(run(&mut ks, "XREAD STREAMS s $"), "*-1\r\n");
    }

    #[test]
    fn groups_pending_and_claims() {
        let mut ks = ks();
        for i in 1..=3 {
            run(&mut ks, &format!("XADD s {i}-0 f {i}"));
        }
        assert_eq!(run(&mut ks, "XGROUP CREATE s g 0"), "+OK\r\n");
        assert!(run(&mut ks, "XREADGROUP GROUP g a COUNT 2 STREAMS s >").contains("2-0"));
        let p = run(&mut ks, "XPENDING s g");
        assert!(
            p.starts_with("*4\r\n:2\r\n$3\r\n1-0\r\n$3\r\n2-0\r\n"),
            "{p}"
        );
        assert_eq!(
            run(&mut ks, "XCLAIM s g b 0 1-0 JUSTID"),
            "*1\r\n$3\r\n1-0\r\n"
        );
        run(&mut ks, "XDEL s 2-0");
        // XAUTOCLAIM reports the deleted entry and drops it from the PEL.
        assert_eq!(
            run(&mut ks, "XAUTOCLAIM s g c 0 0 JUSTID"),
            "*3\r\n$3\r\n0-0\r\n*1\r\n$3\r\n1-0\r\n*1\r\n$3\r\n2-0\r\n"
        );
        assert_eq!(run(&mut ks, "XACK s g 1-0 1-0"), ":1\r\n");
        assert_eq!(
            run(&mut ks, "XPENDING s g"),
            "*4\r\n:0\r\n$-1\r\n$-1\r\n*-1\r\n"
        );
    }
}
