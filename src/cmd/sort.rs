//! SORT and SORT_RO over lists, sets and sorted sets, with BY (string keys,
//! hash fields, `nosort`), LIMIT, GET (`#`, string keys, hash fields),
//! ASC/DESC, ALPHA and STORE.
//!
//! BY and GET patterns name other keys, which may live on any shard: when
//! they are used, the whole command runs as one transaction over every
//! shard, so it sees a single instant of the data, as in Redis.

use super::*;
use crate::shard::{Shard, Tx};
use crate::types::Value;
use crate::util::{eq_ic, parse_i64};

pub static COMMANDS: &[CmdSpec] = &[
    CmdSpec {
        name: "sort",
        arity: -2,
        flags: WRITE | DENYOOM,
        first_key: 1,
        last_key: 1,
        step: 1,
        group: "generic",
        acl: "@write @set @sortedset @list @slow @dangerous",
        summary: "Sort the elements in a list, set or sorted set",
        since: "1.0.0",
        run: Run::Srv(sort),
        subs: &[],
        getkeys: Some(sort_keys),
    },
    CmdSpec {
        name: "sort_ro",
        arity: -2,
        flags: READONLY,
        first_key: 1,
        last_key: 1,
        step: 1,
        group: "generic",
        acl: "@read @set @sortedset @list @slow @dangerous",
        summary: "Sort the elements in a list, set or sorted set. Read-only variant of SORT.",
        since: "7.0.0",
        run: Run::Srv(sort_ro),
        subs: &[],
        getkeys: None,
    },
];

/// SORT's keys: the source, and the STORE destination if any.
fn sort_keys(args: &[&[u8]]) -> Vec<usize> {
    let mut v = vec![1];
    let mut i = 2;
    while i < args.len() {
        if eq_ic(args[i], "store") && i + 1 < args.len() {
            v.push(i + 1);
            i += 2;
        } else if eq_ic(args[i], "limit") {
            i += 3;
        } else if eq_ic(args[i], "by") || eq_ic(args[i], "get") {
            i += 2;
        } else {
            i += 1;
        }
    }
    v
}

struct Opts {
    desc: bool,
    alpha: bool,
    limit: Option<(i64, i64)>,
    store: Option<Vec<u8>>,
    by: Option<Vec<u8>>,
    nosort: bool,
    gets: Vec<Vec<u8>>,
}

fn parse_opts(out: &mut Out, args: &[&[u8]], ro: bool) -> Option<Opts> {
    let mut o = Opts {
        desc: false,
        alpha: false,
        limit: None,
        store: None,
        by: None,
        nosort: false,
        gets: Vec::new(),
    };
    let mut i = 2;
    while i < args.len() {
        let left = args.len() - i - 1;
        let a = args[i];
        if eq_ic(a, "asc") {
            o.desc = false;
        } else if eq_ic(a, "desc") {
            o.desc = true;
        } else if eq_ic(a, "alpha") {
            o.alpha = true;
        } else if eq_ic(a, "limit") && left >= 2 {
            let (Some(s), Some(c)) = (parse_i64(args[i + 1]), parse_i64(args[i + 2])) else {
                out.not_int();
                return None;
            };
            o.limit = Some((s, c));
            i += 2;
        } else if eq_ic(a, "store") && left >= 1 && !ro {
            o.store = Some(args[i + 1].to_vec());
            i += 1;
        } else if eq_ic(a, "by") && left >= 1 {
            let p = args[i + 1];
            // A pattern without '*' means "don't sort".
            if !p.contains(&b'*') {
                o.nosort = true;
            }
            o.by = Some(p.to_vec());
            i += 1;
        } else if eq_ic(a, "get") && left >= 1 {
            o.gets.push(args[i + 1].to_vec());
            i += 1;
        } else {
            out.syntax();
            return None;
        }
        i += 1;
    }
    Some(o)
}

fn sort(c: &mut SrvCtx, args: &[&[u8]]) {
    run(c, args, false)
}

fn sort_ro(c: &mut SrvCtx, args: &[&[u8]]) {
    run(c, args, true)
}

/// What a pattern resolves to for one element.
fn pattern_key(pat: &[u8], elem: &[u8]) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    let star = pat.iter().position(|&b| b == b'*')?;
    // A "->field" suffix after the star selects a hash field.
    let arrow = pat[star + 1..]
        .windows(2)
        .position(|w| w == b"->")
        .map(|p| p + star + 1);
    let (key_pat, field) = match arrow {
        Some(a) if a + 2 < pat.len() => (&pat[..a], Some(pat[a + 2..].to_vec())),
        _ => (pat, None),
    };
    let mut key = Vec::with_capacity(key_pat.len() + elem.len());
    key.extend_from_slice(&key_pat[..star]);
    key.extend_from_slice(elem);
    key.extend_from_slice(&key_pat[star + 1..]);
    Some((key, field))
}

/// The value a pattern names for one element, read on the key's shard.
fn lookup(sh: &mut Shard, db: usize, key: &[u8], field: Option<&[u8]>) -> Option<Vec<u8>> {
    let v = sh.ks.get(db, key)?;
    match (v, field) {
        (Value::Str(s), None) => Some(s.as_bytes(&mut itoa::Buffer::new()).to_vec()),
        (Value::Hash(h), Some(f)) => hash_field(h, f),
        _ => None,
    }
}

enum Source {
    Missing,
    WrongType,
    /// The elements, and whether a `BY nosort` must sort them anyway
    /// (a set into STORE: Redis sorts it ALPHA so the result is stable).
    Elems(Vec<Vec<u8>>, bool),
}

fn run(c: &mut SrvCtx, args: &[&[u8]], ro: bool) {
    let Some(o) = parse_opts(&mut c.out, args, ro) else {
        return;
    };
    let db = c.conn.db;
    let src = args[1].to_vec();
    let uses_patterns =
        (o.by.is_some() && !o.nosort) || o.gets.iter().any(|g| g.as_slice() != b"#");
    let src_shard = c.sh.shard_of(&src);
    let mut shards = vec![src_shard];
    if let Some(d) = &o.store {
        shards.push(c.sh.shard_of(d));
    }
    if uses_patterns {
        shards = c.sh.all_shards();
    }
    let resp3 = c.out.resp3;
    let reply = c.sh.tx(&shards, move |tx| {
        sort_in_tx(tx, db, src, src_shard, o, resp3)
    });
    c.out.raw(&reply);
}

/// (element index, key, hash field) to read for one element.
type Lookup = (usize, Vec<u8>, Option<Vec<u8>>);

/// Reads a pattern's value for every element, grouped by owning shard.
fn resolve(tx: &mut Tx, db: usize, pat: &[u8], elems: &[Vec<u8>]) -> Vec<Option<Vec<u8>>> {
    let mut res: Vec<Option<Vec<u8>>> = vec![None; elems.len()];
    let mut by_shard: Vec<Vec<Lookup>> = vec![Vec::new(); tx.sh.n];
    for (i, e) in elems.iter().enumerate() {
        if pat == b"#" {
            res[i] = Some(e.clone());
            continue;
        }
        if let Some((k, f)) = pattern_key(pat, e) {
            let s = tx.sh.shard_of(&k);
            by_shard[s].push((i, k, f));
        }
    }
    for (s, items) in by_shard.into_iter().enumerate() {
        if items.is_empty() {
            continue;
        }
        let got = tx.run(s, move |sh| {
            items
                .into_iter()
                .map(|(i, k, f)| (i, lookup(sh, db, &k, f.as_deref())))
                .collect::<Vec<_>>()
        });
        for (i, v) in got {
            res[i] = v;
        }
    }
    res
}

fn sort_in_tx(
    tx: &mut Tx,
    db: usize,
    src: Vec<u8>,
    src_shard: usize,
    o: Opts,
    resp3: bool,
) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut out = Out::new(&mut buf, resp3);
    let (limit, nosort, desc, store) = (o.limit, o.nosort, o.desc, o.store.is_some());
    let source = tx.run(src_shard, move |sh| match sh.ks.get(db, &src) {
        None => Source::Missing,
        Some(v) => {
            let force = nosort && store && matches!(v, Value::Set(_));
            match elements(v, nosort && !force, desc, limit) {
                Some(e) => Source::Elems(e, force),
                None => Source::WrongType,
            }
        }
    });
    let mut o = o;
    let mut elems = match source {
        Source::WrongType => {
            out.wrongtype();
            return buf;
        }
        Source::Missing => Vec::new(),
        Source::Elems(e, force) => {
            if force {
                o.nosort = false;
                o.alpha = true;
                o.by = None;
            }
            e
        }
    };
    // Sort (unless BY nosort), by the element itself or the BY values.
    if !o.nosort {
        let keys: Vec<Option<Vec<u8>>> = match &o.by {
            Some(p) => resolve(tx, db, p, &elems),
            None => elems.iter().map(|e| Some(e.clone())).collect(),
        };
        let mut items: Vec<(Vec<u8>, Option<Vec<u8>>, f64)> = Vec::with_capacity(elems.len());
        for (e, k) in elems.into_iter().zip(keys) {
            let score = if o.alpha {
                0.0
            } else {
                match &k {
                    None => 0.0,
                    Some(b) => match parse_score(b) {
                        Some(s) => s,
                        None => {
                            out.err("One or more scores can't be converted into double");
                            return buf;
                        }
                    },
                }
            };
            items.push((e, k, score));
        }
        items.sort_by(|a, b| {
            let ord = if o.alpha {
                match (&a.1, &b.1) {
                    (None, None) => std::cmp::Ordering::Equal,
                    (None, Some(_)) => std::cmp::Ordering::Less,
                    (Some(_), None) => std::cmp::Ordering::Greater,
                    (Some(x), Some(y)) => x.cmp(y),
                }
            } else {
                a.2.partial_cmp(&b.2)
                    .unwrap_or(std::cmp::Ordering::Equal)
                    // Equal scores: by element, so the result is deterministic.
                    .then_with(|| a.0.cmp(&b.0))
            };
            if o.desc {
                ord.reverse()
            } else {
                ord
            }
        });
        elems = items.into_iter().map(|(e, _, _)| e).collect();
    }
    // LIMIT: for nosort it was applied while reading the source.
    if !o.nosort {
        if let Some((start, count)) = o.limit {
            elems = apply_limit(elems, start, count);
        }
    }
    // GET patterns.
    let rows: Vec<Option<Vec<u8>>> = if o.gets.is_empty() {
        elems.into_iter().map(Some).collect()
    } else {
        let cols: Vec<Vec<Option<Vec<u8>>>> =
            o.gets.iter().map(|g| resolve(tx, db, g, &elems)).collect();
        (0..elems.len())
            .flat_map(|i| cols.iter().map(move |c| c[i].clone()))
            .collect()
    };
    match o.store {
        Some(dest) => {
            let n = rows.len();
            let dest_shard = tx.sh.shard_of(&dest);
            tx.run(dest_shard, move |sh| {
                if rows.is_empty() {
                    if sh.ks.delete(db, &dest) {
                        sh.ks.notify(crate::notify::GENERIC, "del", db, &dest);
                    }
                } else {
                    let items: Vec<Vec<u8>> =
                        rows.into_iter().map(|r| r.unwrap_or_default()).collect();
                    let fill = sh.ks.enc.list_max_listpack_size;
                    sh.ks.set(db, &dest, make_list(items, fill), false);
                    sh.ks.signal_ready(db, &dest);
                    sh.ks.notify(crate::notify::LIST, "sortstore", db, &dest);
                }
            });
            out.int(n as i64);
        }
        None => {
            out.array(rows.len());
            for r in rows {
                match r {
                    Some(v) => out.bulk(&v),
                    None => out.null(),
                }
            }
        }
    }
    buf
}

fn parse_score(b: &[u8]) -> Option<f64> {
    // Redis converts with strtod and accepts the value only when the whole
    // text was used, it did not overflow or underflow, and it is not NaN:
    // so "" is 0, leading whitespace is allowed and trailing is not.
    if b.is_empty() {
        return Some(0.0);
    }
    let s = std::str::from_utf8(b).ok()?;
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    if t.is_empty() || t.ends_with(char::is_whitespace) {
        return None;
    }
    let (neg, body) = match t.as_bytes()[0] {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let lower = body.to_ascii_lowercase();
    let v = if lower == "inf" || lower == "infinity" {
        f64::INFINITY
    } else if let Some(hex) = lower.strip_prefix("0x") {
        parse_hex_float(hex)?
    } else {
        if lower.contains("nan") || lower.contains("inf") || body.starts_with(['+', '-']) {
            return None;
        }
        let v: f64 = body.parse().ok()?;
        let nonzero_digits = body
            .split(['e', 'E'])
            .next()
            .is_some_and(|m| m.bytes().any(|c| matches!(c, b'1'..=b'9')));
        // strtod's ERANGE: overflow to infinity, underflow to zero or a
        // subnormal.
        if v.is_infinite() || (nonzero_digits && v.abs() < f64::MIN_POSITIVE) {
            return None;
        }
        v
    };
    Some(if neg { -v } else { v })
}

/// strtod's hexadecimal form after `0x`: hex digits, an optional fraction
/// and an optional binary exponent (`p`).
fn parse_hex_float(s: &str) -> Option<f64> {
    let (mant, exp) = match s.split_once('p') {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (s, 0),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int.chars() {
        v = v * 16.0 + c.to_digit(16)? as f64;
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += c.to_digit(16)? as f64 * scale;
        scale /= 16.0;
    }
    let v = v * 2f64.powi(exp);
    if v.is_infinite() {
        return None;
    }
    Some(v)
}

/// Redis's LIMIT window over `v`.
fn apply_limit<T>(v: Vec<T>, start: i64, count: i64) -> Vec<T> {
    let len = v.len() as i64;
    let mut s = start.max(0);
    let mut e = if count < 0 { len - 1 } else { s + count - 1 };
    if s >= len {
        s = len - 1;
        e = len - 2;
    }
    if e >= len {
        e = len - 1;
    }
    if len == 0 || e < s {
        return Vec::new();
    }
    v.into_iter()
        .skip(s as usize)
        .take((e - s + 1) as usize)
        .collect()
}

// ----- adapters to the value types ---------------------------------------

/// The elements SORT works on, or None for a type it cannot sort. With
/// `nosort`, a list keeps its order and a sorted set gives its members in
/// score order, both reversed for DESC, and the LIMIT window is applied
/// here, as Redis does.
fn elements(
    v: &Value,
    nosort: bool,
    desc: bool,
    limit: Option<(i64, i64)>,
) -> Option<Vec<Vec<u8>>> {
    let all = match v {
        Value::List(l) => {
            let mut e = list_elements(l);
            if nosort && desc {
                e.reverse();
            }
            e
        }
        Value::Set(s) => set_members(s),
        Value::ZSet(z) => {
            let mut m = zset_members(z);
            if nosort && desc {
                m.reverse();
            }
            m
        }
        _ => return None,
    };
    Some(match (nosort, limit) {
        (true, Some((s, c))) => apply_limit(all, s, c),
        _ => all,
    })
}

fn list_elements(l: &crate::types::list::List) -> Vec<Vec<u8>> {
    l.iter().map(|e| e.to_vec()).collect()
}

fn set_members(s: &crate::types::set::Set) -> Vec<Vec<u8>> {
    s.iter().map(|m| m.to_vec()).collect()
}

fn zset_members(z: &crate::types::zset::ZSet) -> Vec<Vec<u8>> {
    let mut v = Vec::with_capacity(z.len());
    z.range(0, z.len(), false, |m, _| v.push(m.to_vec()));
    v
}

fn hash_field(h: &crate::types::hash::Hash, f: &[u8]) -> Option<Vec<u8>> {
    h.get(f).map(|e| e.to_vec())
}

fn make_list(items: Vec<Vec<u8>>, fill: i64) -> Value {
    let mut l = crate::types::list::List::new(fill);
    for i in &items {
        l.push_back(i);
    }
    Value::List(Box::new(l))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_window_matches_redis() {
        let v: Vec<i32> = (0..10).collect();
        assert_eq!(apply_limit(v.clone(), 2, 3), vec![2, 3, 4]);
        assert_eq!(apply_limit(v.clone(), -5, 2), vec![0, 1]);
        assert_eq!(apply_limit(v.clone(), 8, -1), vec![8, 9]);
        assert_eq!(apply_limit(v.clone(), 20, 5), Vec::<i32>::new());
        assert_eq!(apply_limit(v, 0, 0), Vec::<i32>::new());
    }

    #[test]
    fn scores_convert_like_strtod() {
        assert_eq!(parse_score(b""), Some(0.0));
        assert_eq!(parse_score(b" 1.5"), Some(1.5));
        assert_eq!(parse_score(b"1 "), None);
        assert_eq!(parse_score(b"   "), None);
        assert_eq!(parse_score(b"0x10"), Some(16.0));
        assert_eq!(parse_score(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_score(b"nan"), None);
        assert_eq!(parse_score(b"1e400"), None);
        assert_eq!(parse_score(b"1e-400"), None);
        assert_eq!(parse_score(b"0e-400"), Some(0.0));
        assert_eq!(parse_score(b"--1"), None);
        assert_eq!(parse_score(b"1a"), None);
    }

    #[test]
    fn patterns_substitute_the_first_star() {
        assert_eq!(pattern_key(b"w_*", b"3"), Some((b"w_3".to_vec(), None)));
        assert_eq!(
            pattern_key(b"obj_*->weight", b"a"),
            Some((b"obj_a".to_vec(), Some(b"weight".to_vec())))
        );
        assert_eq!(pattern_key(b"nostar", b"a"), None);
        // "->" with nothing after it is part of the key name.
        assert_eq!(pattern_key(b"k_*->", b"a"), Some((b"k_a->".to_vec(), None)));
    }
}
