//! Command-level integration tests through the `redis` crate.
//!
//! Every shard-sensitive test runs against ringkv with `--shards 1` and
//! `--shards 2` and asserts the exact replies redis-server 7.0 gives
//! (reply types and error strings).  Keys are chosen so that, with two
//! shards, multi-key commands touch keys living on different shards.

use std::collections::HashSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::*;
use redis::Value;

/// Runs `f` against a fresh server for every shard count.
fn each_shards(f: impl Fn(&Server, &mut redis::Connection)) {
    for shards in SHARD_COUNTS {
        eprintln!("--- running with --shards {shards}");
        let srv = Server::ringkv(shards, &[]);
        let mut con = srv.client();
        f(&srv, &mut con);
    }
}

/// Asserts `args` replies `expected`.
#[track_caller]
fn t(con: &mut redis::Connection, args: &[&str], expected: Value) {
    match run(con, args) {
        Ok(v) => assert_eq!(v, expected, "reply to {args:?}"),
        Err(e) => panic!("{args:?}: expected {expected:?}, got error {e:?}"),
    }
}

/// Asserts `args` fails with exactly the error text `expected`.
#[track_caller]
fn te(con: &mut redis::Connection, args: &[&str], expected: &str) {
    match run(con, args) {
        Ok(v) => panic!("{args:?}: expected error {expected:?}, got {v:?}"),
        Err(e) => assert_eq!(e, expected, "error reply to {args:?}"),
    }
}

/// Integer reply of `args`.
#[track_caller]
fn int_of(con: &mut redis::Connection, args: &[&str]) -> i64 {
    match ok(con, args) {
        Value::Int(i) => i,
        v => panic!("{args:?}: expected an integer, got {v:?}"),
    }
}

/// Sorted list of bulk strings from an array reply.
#[track_caller]
fn sorted_strings(v: Value) -> Vec<String> {
    let Value::Array(items) = v else {
        panic!("expected an array, got {v:?}");
    };
    let mut out: Vec<String> = items
        .into_iter()
        .map(|i| match i {
            Value::BulkString(b) => String::from_utf8(b).expect("utf8"),
            other => panic!("expected bulk strings, got {other:?}"),
        })
        .collect();
    out.sort();
    out
}

fn nil() -> Value {
    Value::Nil
}

const WRONG_TYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
const NOT_INT: &str = "ERR value is not an integer or out of range";
const SYNTAX: &str = "ERR syntax error";

#[test]
fn harness_slot_function_matches_redis_cluster() {
    // Known values from the Redis Cluster specification / CLUSTER KEYSLOT.
    assert_eq!(key_slot(b"foo"), 12182);
    assert_eq!(key_slot(b"bar"), 5061);
    assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
    assert_eq!(crc16(b"123456789"), 0x31C3);
    // The key families used below really do spread over two shards.
    let shards: HashSet<usize> = (0..8).map(|i| shard_of(&format!("k{i}"), 2)).collect();
    assert_eq!(shards.len(), 2);
}

#[test]
fn set_get_del_exists_many_keys() {
    each_shards(|_, con| {
        let keys: Vec<String> = (0..200).map(|i| format!("key:{i}")).collect();
        let spread: HashSet<usize> = keys.iter().map(|k| shard_of(k, 2)).collect();
        assert_eq!(spread.len(), 2, "keys must span both shards");

        for (i, k) in keys.iter().enumerate() {
            t(con, &["SET", k, &format!("value-{i}")], Value::Okay);
        }
        for (i, k) in keys.iter().enumerate() {
            t(con, &["GET", k], bulk(&format!("value-{i}")));
        }
        t(con, &["GET", "missing"], nil());

        let mut exists = vec!["EXISTS"];
        exists.extend(keys.iter().map(String::as_str));
        t(con, &exists, int(200));
        t(
            con,
            &["EXISTS", "key:1", "key:1", "missing", "key:2"],
            int(3),
        );
        t(con, &["DBSIZE"], int(200));

        // DEL the even keys (plus a missing one and a duplicate).
        let mut del = vec!["DEL"];
        del.extend(keys.iter().step_by(2).map(String::as_str));
        del.push("missing");
        del.push("key:0");
        t(con, &del, int(100));
        t(con, &exists, int(100));
        t(con, &["GET", "key:0"], nil());
        t(con, &["GET", "key:1"], bulk("value-1"));
        t(con, &["UNLINK", "key:1", "key:3", "nope"], int(2));
        t(con, &["DBSIZE"], int(98));

        // MSET / MGET over 100 keys on both shards.
        let mut mset = vec!["MSET".to_string()];
        for i in 0..100 {
            mset.push(format!("m{i}"));
            mset.push(format!("mv{i}"));
        }
        let mset_ref: Vec<&str> = mset.iter().map(String::as_str).collect();
        t(con, &mset_ref, Value::Okay);
        let mut mget = vec!["MGET".to_string()];
        let mut expected = Vec::new();
        for i in 0..105 {
            mget.push(format!("m{i}"));
            expected.push(if i < 100 {
                bulk(&format!("mv{i}"))
            } else {
                nil()
            });
        }
        mget.push("m7".into());
        expected.push(bulk("mv7"));
        let mget_ref: Vec<&str> = mget.iter().map(String::as_str).collect();
        t(con, &mget_ref, arr(expected));
        // MSET with a repeated key: the last value wins.
        t(
            con,
            &["MSET", "dup", "1", "k3", "x", "dup", "2"],
            Value::Okay,
        );
        t(con, &["MGET", "dup", "k3"], arr(vec![bulk("2"), bulk("x")]));
        // MSETNX is all-or-nothing across shards.
        t(con, &["MSETNX", "k0", "a", "k1", "b", "dup", "c"], int(0));
        t(
            con,
            &["MGET", "k0", "k1", "dup"],
            arr(vec![nil(), nil(), bulk("2")]),
        );
        t(con, &["MSETNX", "k0", "a", "k1", "b", "k2", "c"], int(1));
        t(
            con,
            &["MGET", "k0", "k1", "k2"],
            arr(vec![bulk("a"), bulk("b"), bulk("c")]),
        );
        // Binary-safe values.
        let bin = redis::cmd("SET")
            .arg("bin")
            .arg(&b"a\x00b\r\n\xff"[..])
            .clone();
        assert_eq!(exec(con, &bin), Ok(Value::Okay));
        t(
            con,
            &["GET", "bin"],
            Value::BulkString(b"a\x00b\r\n\xff".to_vec()),
        );
        t(con, &["STRLEN", "bin"], int(6));
        // Empty key and empty value are legal.
        t(con, &["SET", "", ""], Value::Okay);
        t(con, &["GET", ""], bulk(""));
        t(con, &["EXISTS", ""], int(1));
    });
}

#[test]
fn counters() {
    each_shards(|_, con| {
        t(con, &["INCR", "c"], int(1));
        t(con, &["INCRBY", "c", "10"], int(11));
        t(con, &["DECR", "c"], int(10));
        t(con, &["DECRBY", "c", "5"], int(5));
        t(con, &["INCRBY", "c", "-7"], int(-2));
        t(con, &["DECR", "newc"], int(-1));
        t(con, &["GET", "c"], bulk("-2"));
        t(con, &["SET", "s", "abc"], Value::Okay);
        te(con, &["INCR", "s"], NOT_INT);
        te(con, &["INCRBY", "c", "abc"], NOT_INT);
        te(con, &["INCRBY", "c", "1.5"], NOT_INT);
        t(con, &["SET", "sp", " 1"], Value::Okay);
        te(con, &["INCR", "sp"], NOT_INT);
        t(con, &["SET", "max", "9223372036854775807"], Value::Okay);
        te(
            con,
            &["INCR", "max"],
            "ERR increment or decrement would overflow",
        );
        t(con, &["SET", "min", "-9223372036854775808"], Value::Okay);
        te(
            con,
            &["DECR", "min"],
            "ERR increment or decrement would overflow",
        );
        te(
            con,
            &["DECRBY", "c", "-9223372036854775808"],
            "ERR decrement would overflow",
        );
        te(
            con,
            &["INCR", "c", "1"],
            "ERR wrong number of arguments for 'incr' command",
        );

        // The examples from the INCRBYFLOAT documentation.
        t(con, &["SET", "f", "10.50"], Value::Okay);
        t(con, &["INCRBYFLOAT", "f", "0.1"], bulk("10.6"));
        t(con, &["INCRBYFLOAT", "f", "-5"], bulk("5.6"));
        t(con, &["SET", "f", "5.0e3"], Value::Okay);
        t(con, &["INCRBYFLOAT", "f", "2.0e2"], bulk("5200"));
        t(con, &["GET", "f"], bulk("5200"));
        t(con, &["INCRBYFLOAT", "nf", "1.5"], bulk("1.5"));
        t(con, &["INCRBYFLOAT", "nf", "-1.5"], bulk("0"));
        t(con, &["INCRBYFLOAT", "c", "0.25"], bulk("-1.75"));
        te(con, &["INCR", "c"], NOT_INT);
        te(
            con,
            &["INCRBYFLOAT", "s", "1"],
            "ERR value is not a valid float",
        );
        te(
            con,
            &["INCRBYFLOAT", "f", "abc"],
            "ERR value is not a valid float",
        );
        te(
            con,
            &["INCRBYFLOAT", "f", "inf"],
            "ERR increment would produce NaN or Infinity",
        );
    });
}

#[test]
fn append_strlen_getrange_setrange() {
    each_shards(|_, con| {
        t(con, &["APPEND", "a", "Hello"], int(5));
        t(con, &["APPEND", "a", " World"], int(11));
        t(con, &["GET", "a"], bulk("Hello World"));
        t(con, &["STRLEN", "a"], int(11));
        t(con, &["STRLEN", "missing"], int(0));
        t(con, &["GETRANGE", "a", "0", "4"], bulk("Hello"));
        t(con, &["GETRANGE", "a", "-5", "-1"], bulk("World"));
        t(con, &["GETRANGE", "a", "0", "-1"], bulk("Hello World"));
        t(con, &["GETRANGE", "a", "5", "1"], bulk(""));
        t(con, &["GETRANGE", "a", "100", "200"], bulk(""));
        t(con, &["GETRANGE", "a", "-100", "2"], bulk("Hel"));
        t(con, &["GETRANGE", "a", "6", "1000"], bulk("World"));
        t(con, &["GETRANGE", "missing", "0", "-1"], bulk(""));
        t(con, &["SUBSTR", "a", "0", "4"], bulk("Hello"));
        te(con, &["GETRANGE", "a", "x", "1"], NOT_INT);
        t(con, &["SETRANGE", "a", "6", "Redis"], int(11));
        t(con, &["GET", "a"], bulk("Hello Redis"));
        t(con, &["SETRANGE", "a", "11", "!!"], int(13));
        t(con, &["GET", "a"], bulk("Hello Redis!!"));
        t(con, &["SETRANGE", "pad", "5", "x"], int(6));
        t(
            con,
            &["GET", "pad"],
            Value::BulkString(b"\0\0\0\0\0x".to_vec()),
        );
        // An empty SETRANGE on a missing key creates nothing.
        t(con, &["SETRANGE", "none", "3", ""], int(0));
        t(con, &["EXISTS", "none"], int(0));
        te(
            con,
            &["SETRANGE", "a", "-1", "x"],
            "ERR offset is out of range",
        );
        te(
            con,
            &["SETRANGE", "a", "536870912", "x"],
            "ERR string exceeds maximum allowed size (proto-max-bulk-len)",
        );
        // APPEND to an integer-encoded value.
        t(con, &["SET", "n", "12"], Value::Okay);
        t(con, &["APPEND", "n", "34"], int(4));
        t(con, &["INCR", "n"], int(1235));
    });
}

#[test]
fn set_options() {
    each_shards(|_, con| {
        t(con, &["SET", "k", "v1", "NX"], Value::Okay);
        t(con, &["SET", "k", "v2", "NX"], nil());
        t(con, &["GET", "k"], bulk("v1"));
        t(con, &["SET", "k", "v2", "XX"], Value::Okay);
        t(con, &["SET", "nokey", "v", "XX"], nil());
        t(con, &["EXISTS", "nokey"], int(0));
        t(con, &["SET", "k", "v3", "GET"], bulk("v2"));
        t(con, &["SET", "fresh", "v", "GET"], nil());
        t(con, &["GET", "fresh"], bulk("v"));
        // NX + GET is allowed since 7.0: returns the old value, sets nothing.
        t(con, &["SET", "k", "zzz", "NX", "GET"], bulk("v3"));
        t(con, &["GET", "k"], bulk("v3"));
        t(con, &["SET", "k", "v4", "XX", "GET"], bulk("v3"));

        t(con, &["SET", "k", "v", "EX", "100"], Value::Okay);
        let ttl = int_of(con, &["TTL", "k"]);
        assert!((99..=100).contains(&ttl), "TTL after EX 100: {ttl}");
        t(con, &["SET", "k", "v2", "KEEPTTL"], Value::Okay);
        let ttl = int_of(con, &["TTL", "k"]);
        assert!((99..=100).contains(&ttl), "TTL after KEEPTTL: {ttl}");
        t(con, &["SET", "k", "v3"], Value::Okay);
        t(con, &["TTL", "k"], int(-1));
        t(con, &["SET", "k", "v", "px", "100000"], Value::Okay);
        let pttl = int_of(con, &["PTTL", "k"]);
        assert!(
            (98_000..=100_000).contains(&pttl),
            "PTTL after PX 100000: {pttl}"
        );
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        t(
            con,
            &["SET", "k", "v", "EXAT", &(now + 200).to_string()],
            Value::Okay,
        );
        let ttl = int_of(con, &["TTL", "k"]);
        assert!((195..=201).contains(&ttl), "TTL after EXAT now+200: {ttl}");
        t(
            con,
            &["SET", "k", "v", "PXAT", &((now + 300) * 1000).to_string()],
            Value::Okay,
        );
        let ttl = int_of(con, &["TTL", "k"]);
        assert!((295..=301).contains(&ttl), "TTL after PXAT now+300s: {ttl}");
        t(con, &["SET", "k", "v", "EX", "50", "GET"], bulk("v"));

        // An absolute expiry in the past: OK, but the key is gone.
        t(con, &["SET", "past", "v", "PXAT", "1"], Value::Okay);
        t(con, &["GET", "past"], nil());
        t(con, &["EXISTS", "past"], int(0));
        t(con, &["SET", "past", "v"], Value::Okay);
        t(con, &["GETEX", "past", "EXAT", "1"], bulk("v"));
        t(con, &["EXISTS", "past"], int(0));
        t(con, &["SET", "past", "v"], Value::Okay);
        t(con, &["EXPIREAT", "past", "1"], int(1));
        t(con, &["GET", "past"], nil());

        te(
            con,
            &["SET", "k", "v", "EX", "0"],
            "ERR invalid expire time in 'set' command",
        );
        te(
            con,
            &["SET", "k", "v", "EX", "-1"],
            "ERR invalid expire time in 'set' command",
        );
        te(
            con,
            &["SET", "k", "v", "PX", "0"],
            "ERR invalid expire time in 'set' command",
        );
        te(con, &["SET", "k", "v", "EX", "abc"], NOT_INT);
        te(con, &["SET", "k", "v", "NX", "XX"], SYNTAX);
        te(con, &["SET", "k", "v", "EX", "10", "PX", "100"], SYNTAX);
        te(con, &["SET", "k", "v", "KEEPTTL", "EX", "10"], SYNTAX);
        te(con, &["SET", "k", "v", "EX"], SYNTAX);
        te(con, &["SET", "k", "v", "BOGUS"], SYNTAX);
        te(
            con,
            &["SET", "k"],
            "ERR wrong number of arguments for 'set' command",
        );
        // Failed SETs changed nothing.
        t(con, &["GET", "k"], bulk("v"));

        t(con, &["SETNX", "k", "x"], int(0));
        t(con, &["SETNX", "sn", "x"], int(1));
        t(con, &["GETSET", "sn", "y"], bulk("x"));
        t(con, &["GETSET", "gs", "y"], nil());
        t(con, &["GETDEL", "sn"], bulk("y"));
        t(con, &["GETDEL", "sn"], nil());
        t(con, &["SETEX", "se", "100", "v"], Value::Okay);
        let ttl = int_of(con, &["TTL", "se"]);
        assert!((99..=100).contains(&ttl), "TTL after SETEX 100: {ttl}");
        te(
            con,
            &["SETEX", "se", "0", "v"],
            "ERR invalid expire time in 'setex' command",
        );
        t(con, &["PSETEX", "pse", "100000", "v"], Value::Okay);
        t(con, &["GETEX", "pse", "PERSIST"], bulk("v"));
        t(con, &["TTL", "pse"], int(-1));
        t(con, &["GETEX", "pse", "EX", "100"], bulk("v"));
        let ttl = int_of(con, &["TTL", "pse"]);
        assert!((99..=100).contains(&ttl), "TTL after GETEX EX 100: {ttl}");
        t(con, &["GETEX", "missing", "EX", "100"], nil());
        te(con, &["GETEX", "pse", "EX", "10", "PERSIST"], SYNTAX);
    });
}

#[test]
fn expire_ttl_persist() {
    each_shards(|_, con| {
        t(con, &["EXPIRE", "missing", "100"], int(0));
        t(con, &["TTL", "missing"], int(-2));
        t(con, &["PTTL", "missing"], int(-2));
        t(con, &["SET", "k", "v"], Value::Okay);
        t(con, &["TTL", "k"], int(-1));
        t(con, &["PTTL", "k"], int(-1));
        t(con, &["EXPIRE", "k", "100"], int(1));
        let ttl = int_of(con, &["TTL", "k"]);
        assert!((99..=100).contains(&ttl), "TTL: {ttl}");
        let pttl = int_of(con, &["PTTL", "k"]);
        assert!((98_000..=100_000).contains(&pttl), "PTTL: {pttl}");
        t(con, &["PERSIST", "k"], int(1));
        t(con, &["PERSIST", "k"], int(0));
        t(con, &["PERSIST", "missing"], int(0));
        t(con, &["TTL", "k"], int(-1));

        // NX / XX / GT / LT.
        t(con, &["EXPIRE", "k", "100", "XX"], int(0));
        t(con, &["EXPIRE", "k", "100", "GT"], int(0));
        t(con, &["EXPIRE", "k", "100", "LT"], int(1));
        t(con, &["EXPIRE", "k", "200", "NX"], int(0));
        t(con, &["EXPIRE", "k", "200", "XX"], int(1));
        t(con, &["EXPIRE", "k", "100", "GT"], int(0));
        t(con, &["EXPIRE", "k", "300", "GT"], int(1));
        t(con, &["EXPIRE", "k", "400", "LT"], int(0));
        t(con, &["EXPIRE", "k", "150", "LT"], int(1));
        let ttl = int_of(con, &["TTL", "k"]);
        assert!((149..=150).contains(&ttl), "TTL: {ttl}");
        t(con, &["PEXPIRE", "k", "500000"], int(1));
        let ttl = int_of(con, &["TTL", "k"]);
        assert!((499..=500).contains(&ttl), "TTL after PEXPIRE: {ttl}");
        t(con, &["SET", "n", "v"], Value::Okay);
        t(con, &["EXPIRE", "n", "100", "NX"], int(1));

        te(
            con,
            &["EXPIRE", "k", "100", "NX", "XX"],
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        );
        te(
            con,
            &["EXPIRE", "k", "100", "GT", "LT"],
            "ERR GT and LT options at the same time are not compatible",
        );
        te(
            con,
            &["EXPIRE", "k", "100", "FOO"],
            "ERR Unsupported option FOO",
        );
        te(con, &["EXPIRE", "k", "abc"], NOT_INT);
        te(
            con,
            &["EXPIRE", "k"],
            "ERR wrong number of arguments for 'expire' command",
        );
        te(
            con,
            &["TTL"],
            "ERR wrong number of arguments for 'ttl' command",
        );

        // A non-positive TTL deletes the key.
        t(con, &["EXPIRE", "k", "0"], int(1));
        t(con, &["EXISTS", "k"], int(0));
        t(con, &["SET", "k", "v"], Value::Okay);
        t(con, &["PEXPIRE", "k", "-5"], int(1));
        t(con, &["GET", "k"], nil());
    });
}

#[test]
fn px_key_expires() {
    each_shards(|_, con| {
        let keys: Vec<String> = (0..6).map(|i| format!("exp{i}")).collect();
        for k in &keys {
            t(con, &["SET", k, "v", "PX", "50"], Value::Okay);
        }
        t(con, &["SET", "stay", "v"], Value::Okay);
        std::thread::sleep(Duration::from_millis(150));
        for k in &keys {
            t(con, &["GET", k], nil());
            t(con, &["EXISTS", k], int(0));
            t(con, &["TTL", k], int(-2));
        }
        t(
            con,
            &["MGET", "exp0", "exp1", "stay"],
            arr(vec![nil(), nil(), bulk("v")]),
        );
        t(con, &["KEYS", "exp*"], arr(vec![]));
        // An expired key behaves as missing for NX.
        t(con, &["SET", "exp0", "again", "NX"], Value::Okay);
        t(con, &["GET", "exp0"], bulk("again"));
    });
}

#[test]
fn rename_copy_move_across_shards() {
    each_shards(|_, con| {
        let (a, b) = keys_on_different_shards("r");
        let (c, d) = keys_on_different_shards("cp");
        t(con, &["SET", &a, "va"], Value::Okay);
        t(con, &["EXPIRE", &a, "100"], int(1));
        t(con, &["RENAME", &a, &b], Value::Okay);
        t(con, &["GET", &a], nil());
        t(con, &["GET", &b], bulk("va"));
        let ttl = int_of(con, &["TTL", &b]);
        assert!((99..=100).contains(&ttl), "RENAME keeps the TTL: {ttl}");
        te(con, &["RENAME", "missing", &a], "ERR no such key");
        t(con, &["RENAME", &b, &b], Value::Okay);
        t(con, &["RENAMENX", &b, &b], int(0));

        t(con, &["SET", &c, "vc"], Value::Okay);
        t(con, &["RENAMENX", &b, &c], int(0));
        t(con, &["GET", &c], bulk("vc"));
        t(con, &["RENAMENX", &b, &a], int(1));
        t(con, &["MGET", &a, &b], arr(vec![bulk("va"), nil()]));
        te(con, &["RENAMENX", "missing", "x"], "ERR no such key");
        // RENAME overwrites (and drops the destination's TTL semantics).
        t(con, &["SET", &d, "old", "EX", "100"], Value::Okay);
        t(con, &["PERSIST", &a], int(1));
        t(con, &["RENAME", &a, &d], Value::Okay);
        t(con, &["GET", &d], bulk("va"));
        t(con, &["TTL", &d], int(-1));

        t(con, &["COPY", &c, &a], int(1));
        t(con, &["MGET", &a, &c], arr(vec![bulk("vc"), bulk("vc")]));
        t(con, &["COPY", &d, &a], int(0));
        t(con, &["COPY", &d, &a, "REPLACE"], int(1));
        t(con, &["GET", &a], bulk("va"));
        t(con, &["COPY", "missing", &a], int(0));
        te(
            con,
            &["COPY", &a, &a],
            "ERR source and destination objects are the same",
        );
        te(con, &["COPY", &a, &b, "BOGUS"], SYNTAX);
        // The copy is independent of the source.
        t(con, &["APPEND", &a, "!"], int(3));
        t(con, &["GET", &d], bulk("va"));
        t(con, &["COPY", &c, &b, "DB", "1"], int(1));
        t(con, &["GET", &b], nil());

        t(con, &["MOVE", &c, "1"], int(1));
        t(con, &["EXISTS", &c], int(0));
        t(con, &["SET", &c, "again"], Value::Okay);
        t(con, &["MOVE", &c, "1"], int(0));
        t(con, &["MOVE", "missing", "1"], int(0));
        te(
            con,
            &["MOVE", &c, "0"],
            "ERR source and destination objects are the same",
        );
        te(con, &["MOVE", &c, "99"], "ERR DB index is out of range");
        t(con, &["SELECT", "1"], Value::Okay);
        t(con, &["MGET", &b, &c], arr(vec![bulk("vc"), bulk("vc")]));
        t(con, &["SELECT", "0"], Value::Okay);
        t(con, &["GET", &c], bulk("again"));
    });
}

#[test]
fn select_dbsize_flush() {
    each_shards(|_, con| {
        for i in 0..300 {
            t(con, &["SET", &format!("d0:{i}"), "x"], Value::Okay);
        }
        t(con, &["DBSIZE"], int(300));
        t(con, &["SELECT", "1"], Value::Okay);
        t(con, &["DBSIZE"], int(0));
        t(con, &["GET", "d0:1"], nil());
        t(con, &["SET", "d0:1", "db1"], Value::Okay);
        t(con, &["SET", "only1", "y"], Value::Okay);
        t(con, &["DBSIZE"], int(2));
        t(con, &["SELECT", "0"], Value::Okay);
        t(con, &["GET", "d0:1"], bulk("x"));
        t(con, &["GET", "only1"], nil());
        te(con, &["SELECT", "16"], "ERR DB index is out of range");
        te(con, &["SELECT", "-1"], "ERR DB index is out of range");
        te(con, &["SELECT", "abc"], NOT_INT);
        t(con, &["FLUSHDB"], Value::Okay);
        t(con, &["DBSIZE"], int(0));
        t(con, &["SELECT", "1"], Value::Okay);
        t(con, &["DBSIZE"], int(2));
        t(con, &["SELECT", "15"], Value::Okay);
        t(con, &["SET", "x", "1"], Value::Okay);
        t(con, &["FLUSHALL"], Value::Okay);
        t(con, &["DBSIZE"], int(0));
        t(con, &["SELECT", "1"], Value::Okay);
        t(con, &["DBSIZE"], int(0));
        t(con, &["SELECT", "0"], Value::Okay);
        t(con, &["SET", "after", "1"], Value::Okay);
        t(con, &["FLUSHALL", "SYNC"], Value::Okay);
        t(con, &["FLUSHDB", "ASYNC"], Value::Okay);
        t(con, &["DBSIZE"], int(0));
        te(con, &["FLUSHDB", "BOGUS"], SYNTAX);
    });
}

#[test]
fn keys_pattern() {
    each_shards(|_, con| {
        for k in [
            "foo", "foobar", "fxo", "hello", "hallo", "hxllo", "heeeello", "{t}1", "{t}2", "a*b",
        ] {
            t(con, &["SET", k, "1"], Value::Okay);
        }
        let keys = |con: &mut redis::Connection, p: &str| sorted_strings(ok(con, &["KEYS", p]));
        assert_eq!(keys(con, "f*"), ["foo", "foobar", "fxo"]);
        assert_eq!(keys(con, "h?llo"), ["hallo", "hello", "hxllo"]);
        assert_eq!(keys(con, "h*llo"), ["hallo", "heeeello", "hello", "hxllo"]);
        assert_eq!(keys(con, "h[ae]llo"), ["hallo", "hello"]);
        assert_eq!(keys(con, "h[^e]llo"), ["hallo", "hxllo"]);
        assert_eq!(keys(con, "h[a-b]llo"), ["hallo"]);
        assert_eq!(keys(con, "{t}*"), ["{t}1", "{t}2"]);
        assert_eq!(keys(con, "a\\*b"), ["a*b"]);
        assert_eq!(keys(con, "nomatch*"), Vec::<String>::new());
        assert_eq!(keys(con, "*").len(), 10);
        te(
            con,
            &["KEYS"],
            "ERR wrong number of arguments for 'keys' command",
        );
    });
}

#[test]
fn scan_full_iteration() {
    each_shards(|_, con| {
        let n = 500;
        for chunk in 0..5 {
            let mut mset = vec!["MSET".to_string()];
            for i in chunk * 100..(chunk + 1) * 100 {
                mset.push(format!("scan:{i}"));
                mset.push(i.to_string());
            }
            let r: Vec<&str> = mset.iter().map(String::as_str).collect();
            t(con, &r, Value::Okay);
        }
        let mut seen = HashSet::new();
        let mut cursor = "0".to_string();
        let mut calls = 0;
        loop {
            calls += 1;
            assert!(calls <= 5000, "SCAN did not terminate after {calls} calls");
            let reply = ok(con, &["SCAN", &cursor, "COUNT", "10"]);
            let Value::Array(parts) = reply else {
                panic!("SCAN reply is not an array: {reply:?}");
            };
            assert_eq!(parts.len(), 2, "SCAN reply shape");
            let Value::BulkString(c) = &parts[0] else {
                panic!("SCAN cursor is not a bulk string: {:?}", parts[0]);
            };
            cursor = String::from_utf8(c.clone()).unwrap();
            cursor
                .parse::<u64>()
                .expect("cursor is an unsigned integer");
            let Value::Array(keys) = &parts[1] else {
                panic!("SCAN keys is not an array: {:?}", parts[1]);
            };
            for k in keys {
                let Value::BulkString(k) = k else {
                    panic!("SCAN key is not a bulk string: {k:?}");
                };
                seen.insert(String::from_utf8(k.clone()).unwrap());
            }
            if cursor == "0" {
                break;
            }
        }
        assert_eq!(seen.len(), n, "every key seen by SCAN");
        for i in 0..n {
            assert!(
                seen.contains(&format!("scan:{i}")),
                "scan:{i} not returned by SCAN"
            );
        }
        assert!(calls > 1, "COUNT 10 over 500 keys needs several calls");

        // MATCH filters, TYPE filters, bad cursor.
        let mut matched = HashSet::new();
        let mut cursor = "0".to_string();
        for _ in 0..5000 {
            let Value::Array(parts) =
                ok(con, &["SCAN", &cursor, "MATCH", "scan:1?", "COUNT", "50"])
            else {
                panic!("SCAN reply is not an array");
            };
            let Value::BulkString(c) = &parts[0] else {
                panic!("cursor")
            };
            cursor = String::from_utf8(c.clone()).unwrap();
            for k in sorted_strings(parts[1].clone()) {
                matched.insert(k);
            }
            if cursor == "0" {
                break;
            }
        }
        assert_eq!(cursor, "0");
        let expected: HashSet<String> = (10..20).map(|i| format!("scan:{i}")).collect();
        assert_eq!(matched, expected);
        let Value::Array(parts) = ok(con, &["SCAN", "0", "TYPE", "list", "COUNT", "1000"]) else {
            panic!("SCAN reply is not an array");
        };
        let Value::Array(keys) = &parts[1] else {
            panic!("keys")
        };
        assert!(keys.is_empty(), "no list keys: {keys:?}");
        te(con, &["SCAN", "abc"], "ERR invalid cursor");
        te(con, &["SCAN", "0", "COUNT", "0"], SYNTAX);
        te(con, &["SCAN", "0", "BOGUS", "1"], SYNTAX);
    });
}

#[test]
fn type_and_object_encoding() {
    each_shards(|_, con| {
        t(con, &["TYPE", "missing"], status("none"));
        t(con, &["SET", "n", "12345"], Value::Okay);
        t(con, &["TYPE", "n"], status("string"));
        t(con, &["OBJECT", "ENCODING", "n"], bulk("int"));
        t(con, &["SET", "neg", "-5"], Value::Okay);
        t(con, &["OBJECT", "ENCODING", "neg"], bulk("int"));
        t(con, &["SET", "lead0", "012"], Value::Okay);
        t(con, &["OBJECT", "ENCODING", "lead0"], bulk("embstr"));
        t(con, &["SET", "big", "12345678901234567890"], Value::Okay);
        t(con, &["OBJECT", "ENCODING", "big"], bulk("embstr"));
        t(con, &["SET", "s", "hello"], Value::Okay);
        t(con, &["OBJECT", "ENCODING", "s"], bulk("embstr"));
        let s44 = "x".repeat(44);
        let s45 = "x".repeat(45);
        t(con, &["SET", "s44", &s44], Value::Okay);
        t(con, &["OBJECT", "ENCODING", "s44"], bulk("embstr"));
        t(con, &["SET", "s45", &s45], Value::Okay);
        t(con, &["OBJECT", "ENCODING", "s45"], bulk("raw"));
        t(con, &["APPEND", "s", "x"], int(6));
        t(con, &["OBJECT", "ENCODING", "s"], bulk("raw"));
        t(con, &["INCR", "n"], int(12346));
        t(con, &["OBJECT", "ENCODING", "n"], bulk("int"));
        t(con, &["OBJECT", "ENCODING", "missing"], nil());
        te(
            con,
            &["OBJECT", "ENCODING"],
            "ERR wrong number of arguments for 'object|encoding' command",
        );
        te(
            con,
            &["OBJECT", "FOO", "n"],
            "ERR unknown subcommand 'FOO'. Try OBJECT HELP.",
        );
    });
}

#[test]
fn arity_and_unknown_command_errors() {
    each_shards(|_, con| {
        te(
            con,
            &["GET"],
            "ERR wrong number of arguments for 'get' command",
        );
        te(
            con,
            &["GET", "a", "b"],
            "ERR wrong number of arguments for 'get' command",
        );
        te(
            con,
            &["get"],
            "ERR wrong number of arguments for 'get' command",
        );
        te(
            con,
            &["SET", "a"],
            "ERR wrong number of arguments for 'set' command",
        );
        te(
            con,
            &["MSET", "a"],
            "ERR wrong number of arguments for 'mset' command",
        );
        te(
            con,
            &["MSET", "a", "1", "b"],
            "ERR wrong number of arguments for 'mset' command",
        );
        te(
            con,
            &["MGET"],
            "ERR wrong number of arguments for 'mget' command",
        );
        te(
            con,
            &["DEL"],
            "ERR wrong number of arguments for 'del' command",
        );
        te(
            con,
            &["EXISTS"],
            "ERR wrong number of arguments for 'exists' command",
        );
        te(
            con,
            &["INCRBY", "a"],
            "ERR wrong number of arguments for 'incrby' command",
        );
        te(
            con,
            &["APPEND", "a"],
            "ERR wrong number of arguments for 'append' command",
        );
        te(
            con,
            &["GETRANGE", "a", "0"],
            "ERR wrong number of arguments for 'getrange' command",
        );
        te(
            con,
            &["RENAME", "a"],
            "ERR wrong number of arguments for 'rename' command",
        );
        te(
            con,
            &["DBSIZE", "x"],
            "ERR wrong number of arguments for 'dbsize' command",
        );
        te(
            con,
            &["ECHO"],
            "ERR wrong number of arguments for 'echo' command",
        );
        te(
            con,
            &["NOSUCHCMD", "a", "b"],
            "ERR unknown command 'NOSUCHCMD', with args beginning with: 'a' 'b' ",
        );
        te(
            con,
            &["nosuchcmd"],
            "ERR unknown command 'nosuchcmd', with args beginning with: ",
        );
        te(
            con,
            &["CLIENT", "NOSUCH"],
            "ERR unknown subcommand 'NOSUCH'. Try CLIENT HELP.",
        );
        // The connection is still usable after errors.
        t(con, &["PING"], status("PONG"));
    });
}

#[test]
fn wrong_type_errors() {
    each_shards(|_, con| {
        t(con, &["RPUSH", "list", "a", "b"], int(2));
        t(con, &["TYPE", "list"], status("list"));
        te(con, &["GET", "list"], WRONG_TYPE);
        te(con, &["INCR", "list"], WRONG_TYPE);
        te(con, &["INCRBYFLOAT", "list", "1"], WRONG_TYPE);
        te(con, &["APPEND", "list", "x"], WRONG_TYPE);
        te(con, &["STRLEN", "list"], WRONG_TYPE);
        te(con, &["GETRANGE", "list", "0", "1"], WRONG_TYPE);
        te(con, &["SETRANGE", "list", "0", "x"], WRONG_TYPE);
        te(con, &["GETSET", "list", "x"], WRONG_TYPE);
        te(con, &["GETDEL", "list"], WRONG_TYPE);
        te(con, &["SET", "list", "x", "GET"], WRONG_TYPE);
        t(con, &["MGET", "list", "missing"], arr(vec![nil(), nil()]));
        t(con, &["EXISTS", "list"], int(1));
        t(con, &["SET", "list", "x"], Value::Okay);
        t(con, &["TYPE", "list"], status("string"));
        t(con, &["GET", "list"], bulk("x"));
    });
}

#[test]
fn hello3_and_resp3_replies() {
    each_shards(|srv, con| {
        let hello = ok(con, &["HELLO", "3"]);
        let Value::Map(fields) = hello else {
            panic!("HELLO 3 must reply with a map, got {hello:?}");
        };
        let names: Vec<String> = fields
            .iter()
            .map(|(k, _)| match k {
                Value::BulkString(b) => String::from_utf8(b.clone()).unwrap(),
                Value::SimpleString(s) => s.clone(),
                other => panic!("HELLO map key {other:?}"),
            })
            .collect();
        assert_eq!(
            names,
            ["server", "version", "proto", "id", "mode", "role", "modules"]
        );
        let get = |name: &str| {
            fields[names.iter().position(|n| n == name).unwrap()]
                .1
                .clone()
        };
        assert_eq!(get("proto"), int(3));
        assert_eq!(get("mode"), bulk("standalone"));
        assert_eq!(get("role"), bulk("master"));
        assert_eq!(get("modules"), arr(vec![]));
        assert!(
            matches!(get("id"), Value::Int(i) if i > 0),
            "id: {:?}",
            get("id")
        );
        assert!(
            matches!(get("version"), Value::BulkString(_)),
            "version: {:?}",
            get("version")
        );
        // In RESP3 CONFIG GET is a map.
        let cfg = ok(con, &["CONFIG", "GET", "maxclients"]);
        let Value::Map(m) = &cfg else {
            panic!("CONFIG GET under RESP3 must be a map, got {cfg:?}");
        };
        assert_eq!(m.len(), 1, "{cfg:?}");
        assert_eq!(m[0].0, bulk("maxclients"));
        let v = ok(con, &["HELLO", "2"]);
        assert!(
            matches!(v, Value::Array(ref a) if a.len() == 14),
            "HELLO 2 is a flat 14-element array: {v:?}"
        );
        te(con, &["HELLO", "4"], "NOPROTO unsupported protocol version");
        te(
            con,
            &["HELLO", "abc"],
            "ERR Protocol version is not an integer or out of range",
        );

        // Raw bytes: RESP3 null and map framing, RESP2 null bulk.
        let mut raw = srv.raw_conn();
        raw.send(b"*2\r\n$3\r\nGET\r\n$6\r\nnokey1\r\n");
        raw.expect(b"$-1\r\n");
        raw.send(b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n");
        let head = raw.read_idle(Duration::from_millis(200), Duration::from_secs(2));
        assert!(
            head.starts_with(b"%7\r\n$6\r\nserver\r\n$"),
            "HELLO 3 reply must be a 7-entry map: {:?}",
            String::from_utf8_lossy(&head)
        );
        assert!(
            head.ends_with(b"$7\r\nmodules\r\n*0\r\n"),
            "{:?}",
            String::from_utf8_lossy(&head)
        );
        raw.send(b"*2\r\n$3\r\nGET\r\n$6\r\nnokey1\r\n");
        raw.expect(b"_\r\n");
        raw.send(b"*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$10\r\nmaxclients\r\n");
        let reply = raw.read_idle(Duration::from_millis(200), Duration::from_secs(2));
        assert!(
            reply.starts_with(b"%1\r\n$10\r\nmaxclients\r\n$"),
            "{:?}",
            String::from_utf8_lossy(&reply)
        );
        raw.send(b"*3\r\n$3\r\nSET\r\n$1\r\nf\r\n$3\r\n1.5\r\n*3\r\n$11\r\nINCRBYFLOAT\r\n$1\r\nf\r\n$1\r\n1\r\n");
        raw.expect(b"+OK\r\n$3\r\n2.5\r\n");
        raw.send(b"*2\r\n$6\r\nEXISTS\r\n$1\r\nf\r\n*1\r\n$4\r\nPING\r\n");
        raw.expect(b":1\r\n+PONG\r\n");

        // A RESP3 client connection from the redis crate.
        let mut c3 = srv.client_resp3();
        t(&mut c3, &["SET", "r3", "v"], Value::Okay);
        t(&mut c3, &["GET", "r3"], bulk("v"));
        t(&mut c3, &["GET", "missing"], nil());
        t(
            &mut c3,
            &["MGET", "r3", "missing"],
            arr(vec![bulk("v"), nil()]),
        );
        assert!(matches!(
            ok(&mut c3, &["CONFIG", "GET", "maxclients"]),
            Value::Map(_)
        ));
    });
}

#[test]
fn client_commands() {
    each_shards(|srv, con| {
        let id1 = int_of(con, &["CLIENT", "ID"]);
        assert!(id1 > 0);
        t(con, &["CLIENT", "GETNAME"], nil());
        t(con, &["CLIENT", "SETNAME", "my-conn"], Value::Okay);
        t(con, &["CLIENT", "GETNAME"], bulk("my-conn"));
        te(
            con,
            &["CLIENT", "SETNAME", "bad name"],
            "ERR Client names cannot contain spaces, newlines or special characters.",
        );
        t(con, &["CLIENT", "GETNAME"], bulk("my-conn"));
        t(con, &["CLIENT", "SETNAME", ""], Value::Okay);
        t(con, &["CLIENT", "GETNAME"], nil());
        let mut other = srv.client();
        let id2 = int_of(&mut other, &["CLIENT", "ID"]);
        assert!(id2 > id1, "client ids increase: {id1} then {id2}");
        t(&mut other, &["CLIENT", "GETNAME"], nil());
        assert_eq!(int_of(con, &["CLIENT", "ID"]), id1, "CLIENT ID is stable");
    });
}

#[test]
fn config_get_set() {
    each_shards(|_, con| {
        let v = ok(con, &["CONFIG", "GET", "maxclients"]);
        let Value::Array(items) = &v else {
            panic!("CONFIG GET reply {v:?}");
        };
        assert_eq!(items.len(), 2, "{v:?}");
        assert_eq!(items[0], bulk("maxclients"));
        let Value::BulkString(n) = &items[1] else {
            panic!("{v:?}")
        };
        let n: i64 = String::from_utf8(n.clone())
            .unwrap()
            .parse()
            .expect("maxclients is a number");
        assert!(n > 0);
        t(con, &["CONFIG", "SET", "maxclients", "500"], Value::Okay);
        t(
            con,
            &["CONFIG", "GET", "maxclients"],
            arr(vec![bulk("maxclients"), bulk("500")]),
        );
        t(
            con,
            &["CONFIG", "GET", "maxc*"],
            arr(vec![bulk("maxclients"), bulk("500")]),
        );
        t(con, &["CONFIG", "GET", "nosuchparam"], arr(vec![]));
        te(
            con,
            &["CONFIG", "SET", "nosuchparam", "1"],
            "ERR Unknown option or number of arguments for CONFIG SET - 'nosuchparam'",
        );
        te(
            con,
            &["CONFIG", "GET"],
            "ERR wrong number of arguments for 'config|get' command",
        );
    });
}

#[test]
fn echo_ping_time_info() {
    each_shards(|_, con| {
        t(con, &["PING"], status("PONG"));
        t(con, &["PING", "hello world"], bulk("hello world"));
        te(
            con,
            &["PING", "a", "b"],
            "ERR wrong number of arguments for 'ping' command",
        );
        t(con, &["ECHO", "hi there"], bulk("hi there"));
        t(con, &["ECHO", ""], bulk(""));

        let v = ok(con, &["TIME"]);
        let Value::Array(parts) = &v else {
            panic!("TIME {v:?}")
        };
        assert_eq!(parts.len(), 2, "{v:?}");
        let num = |x: &Value| match x {
            Value::BulkString(b) => String::from_utf8(b.clone())
                .unwrap()
                .parse::<u64>()
                .unwrap(),
            other => panic!("TIME element {other:?}"),
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(
            num(&parts[0]).abs_diff(now) <= 5,
            "TIME seconds {v:?} vs {now}"
        );
        assert!(num(&parts[1]) < 1_000_000, "TIME micros {v:?}");

        t(con, &["SET", "infokey", "1"], Value::Okay);
        t(con, &["SET", "infokey2", "1", "EX", "100"], Value::Okay);
        let info = match ok(con, &["INFO"]) {
            Value::BulkString(b) => String::from_utf8(b).unwrap(),
            Value::VerbatimString { text, .. } => text,
            other => panic!("INFO {other:?}"),
        };
        assert!(info.contains("redis_version:"), "{info}");
        assert!(info.contains("# Keyspace"), "{info}");
        assert!(info.contains("# Server"), "{info}");
        assert!(info.contains("db0:keys=2,expires=1,"), "{info}");
        assert!(info.contains("\r\n"), "INFO lines end with CRLF");
        let ks = match ok(con, &["INFO", "keyspace"]) {
            Value::BulkString(b) => String::from_utf8(b).unwrap(),
            other => panic!("INFO keyspace {other:?}"),
        };
        assert!(ks.starts_with("# Keyspace\r\n"), "{ks}");
        assert!(!ks.contains("redis_version:"), "{ks}");
    });
}

#[test]
fn redis_cli_set_get_and_stdin_pipe() {
    let Some(cli) = require_tool("redis-cli") else {
        return;
    };
    let srv = Server::ringkv(2, &[]);
    let port = srv.port().to_string();
    let run_cli = |args: &[&str]| {
        let out = Command::new(&cli)
            .args(["-h", "127.0.0.1", "-p", &port])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli");
        assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(run_cli(&["SET", "clikey", "hello"]), "OK\n");
    assert_eq!(run_cli(&["GET", "clikey"]), "hello\n");
    assert_eq!(run_cli(&["GET", "nokey"]), "\n");
    assert_eq!(run_cli(&["INCR", "n"]), "1\n");

    let mut child = Command::new(&cli)
        .args(["-h", "127.0.0.1", "-p", &port])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn redis-cli");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"SET a 1\nINCR a\nGET a\nMGET a clikey nokey\nAPPEND a xyz\nGET a\n")
        .unwrap();
    let out = child.wait_with_output().expect("redis-cli output");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "OK\n2\n2\n2\nhello\n\n4\n2xyz\n"
    );
}

/// `disable-thp yes` (the default, as in Redis 7.0) turns transparent huge
/// pages off for the process (prctl PR_SET_THP_DISABLE); `no` leaves them.
#[test]
fn disable_thp_sets_the_process_flag() {
    let thp = |pid: u32| -> Option<String> {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("THP_enabled:"))
            .map(|v| v.trim().to_string())
    };
    if thp(std::process::id()).is_none() {
        eprintln!("SKIPPED: this kernel does not report THP_enabled");
        return;
    }
    let s = Server::ringkv(1, &[]);
    assert_eq!(thp(s.pid()).as_deref(), Some("0"));
    let mut c = s.client();
    let v: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("disable-thp")
        .query(&mut c)
        .unwrap();
    assert_eq!(v, vec!["disable-thp".to_string(), "yes".to_string()]);
    let e: redis::RedisResult<()> = redis::cmd("CONFIG")
        .arg("SET")
        .arg("disable-thp")
        .arg("no")
        .query(&mut c);
    assert!(e.is_err(), "disable-thp is immutable at run time");
    drop(s);
    let s = Server::ringkv(1, &["--disable-thp", "no"]);
    assert_eq!(thp(s.pid()).as_deref(), Some("1"));
}

/// ringkv with one and two shards, plus redis-server when installed: the
/// tests below assert the replies redis-server 7.0 was seen to give, on
/// all of them.
fn with_reference() -> Vec<Server> {
    let mut servers = vec![Server::ringkv(1, &[]), Server::ringkv(2, &[])];
    servers.extend(Server::redis());
    servers
}

/// A CONFIG GET reply as sorted (name, value) pairs (Redis's order is
/// its hash table's).
#[track_caller]
fn config_pairs(v: Value) -> Vec<(String, String)> {
    let text = |v: &Value| match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).expect("utf8"),
        other => panic!("expected a bulk string, got {other:?}"),
    };
    let Value::Array(items) = v else {
        panic!("expected an array, got {v:?}");
    };
    let mut out: Vec<(String, String)> = items
        .chunks(2)
        .map(|p| (text(&p[0]), text(&p[1])))
        .collect();
    out.sort();
    out
}

fn owned_pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn config_aliases_and_multi_set_match_redis() {
    for srv in with_reference() {
        eprintln!("--- {}", srv.label());
        let con = &mut srv.client();
        t(
            con,
            &["CONFIG", "SET", "list-max-ziplist-size", "-3"],
            Value::Okay,
        );
        t(
            con,
            &["CONFIG", "GET", "list-max-listpack-size"],
            arr(vec![bulk("list-max-listpack-size"), bulk("-3")]),
        );
        // A pattern matching a directive and its alias reports both.
        assert_eq!(
            config_pairs(ok(con, &["CONFIG", "GET", "list-max-*"])),
            owned_pairs(&[
                ("list-max-listpack-size", "-3"),
                ("list-max-ziplist-size", "-3")
            ])
        );
        t(
            con,
            &[
                "CONFIG",
                "SET",
                "hash-max-ziplist-entries",
                "2",
                "hash-max-ziplist-value",
                "32",
                "zset-max-ziplist-entries",
                "16",
                "zset-max-ziplist-value",
                "8",
                "lua-time-limit",
                "1000",
                "slave-read-only",
                "no",
            ],
            Value::Okay,
        );
        assert_eq!(
            config_pairs(ok(
                con,
                &[
                    "CONFIG",
                    "GET",
                    "*ziplist*",
                    "busy-reply-threshold",
                    "LUA-TIME-LIMIT",
                    "replica-read-only",
                    "hash-max-listpack-entries",
                ]
            )),
            owned_pairs(&[
                ("LUA-TIME-LIMIT", "1000"),
                ("busy-reply-threshold", "1000"),
                ("hash-max-listpack-entries", "2"),
                ("hash-max-ziplist-entries", "2"),
                ("hash-max-ziplist-value", "32"),
                ("list-max-ziplist-size", "-3"),
                ("replica-read-only", "no"),
                ("zset-max-ziplist-entries", "16"),
                ("zset-max-ziplist-value", "8"),
            ])
        );
        // Exact names: each once, case-insensitively, echoed as given.
        t(
            con,
            &["CONFIG", "GET", "HZ", "hz"],
            arr(vec![bulk("HZ"), bulk("10")]),
        );
        // The alias drives the same setting: past 2 fields, a hashtable.
        ok(con, &["HSET", "h", "a", "1", "b", "2"]);
        t(con, &["OBJECT", "ENCODING", "h"], bulk("listpack"));
        ok(con, &["HSET", "h", "c", "3"]);
        t(con, &["OBJECT", "ENCODING", "h"], bulk("hashtable"));
        // A directive and its alias are not duplicates: the later wins.
        t(
            con,
            &[
                "CONFIG",
                "SET",
                "list-max-ziplist-size",
                "5",
                "list-max-listpack-size",
                "7",
            ],
            Value::Okay,
        );
        t(
            con,
            &["CONFIG", "GET", "list-max-ziplist-size"],
            arr(vec![bulk("list-max-ziplist-size"), bulk("7")]),
        );
        let failed = "ERR CONFIG SET failed (possibly related to argument";
        te(
            con,
            &["CONFIG", "SET", "Hz", "5", "HZ", "6"],
            &format!("{failed} 'HZ') - duplicate parameter"),
        );
        te(
            con,
            &[
                "CONFIG",
                "SET",
                "hz",
                "5",
                "maxmemory-policy",
                "nope",
                "hz",
                "7",
            ],
            &format!("{failed} 'hz') - duplicate parameter"),
        );
        te(
            con,
            &[
                "CONFIG",
                "SET",
                "hz",
                "5",
                "DAEMONIZE",
                "yes",
                "nosuch",
                "1",
            ],
            &format!("{failed} 'DAEMONIZE') - can't set immutable config"),
        );
        te(
            con,
            &[
                "CONFIG",
                "SET",
                "hz",
                "5",
                "nosuch",
                "1",
                "daemonize",
                "yes",
            ],
            "ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'",
        );
        te(
            con,
            &["CONFIG", "SET", "LIST-max-ziplist-size", "abc"],
            &format!(
                "{failed} 'list-max-ziplist-size') - argument couldn't be parsed into an integer"
            ),
        );
        te(
            con,
            &["CONFIG", "SET", "hz", "20", "maxmemory-policy", "nope"],
            &format!("{failed} 'maxmemory-policy') - argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction"),
        );
        te(con, &["CONFIG", "SET", "hz", "5", "maxclients"], SYNTAX);
        // Nothing of a failed CONFIG SET applied.
        assert_eq!(
            config_pairs(ok(con, &["CONFIG", "GET", "hz", "list-max-listpack-size"])),
            owned_pairs(&[("hz", "10"), ("list-max-listpack-size", "7")])
        );
    }
}

/// One CLIENT LIST / CLIENT INFO line as field -> value.
fn client_fields(line: &str) -> std::collections::HashMap<String, String> {
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn text_of(v: Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8(b).expect("utf8"),
        Value::VerbatimString { text, .. } => text,
        other => panic!("expected text, got {other:?}"),
    }
}

#[test]
fn client_introspection_matches_redis() {
    for srv in with_reference() {
        eprintln!("--- {}", srv.label());
        let con = &mut srv.client();
        let id = int_of(con, &["CLIENT", "ID"]).to_string();
        // The caller's own line: its request (26 bytes of RESP) is in the
        // query buffer and its arguments ("CLIENT" + "INFO") in argv-mem.
        let f = client_fields(&text_of(ok(con, &["CLIENT", "INFO"])));
        assert_eq!(f["cmd"], "client|info");
        assert_eq!(f["qbuf"], "26");
        assert_eq!(f["argv-mem"], "10");
        assert_eq!(f["multi"], "-1");
        assert!(f["tot-mem"].parse::<u64>().unwrap() > 0, "{f:?}");
        let req = ["CLIENT", "LIST", "ID", &id];
        let f = client_fields(&text_of(ok(con, &req)));
        let wire = resp_cmd(&req.map(str::as_bytes)).len().to_string();
        let argv = req.iter().map(|a| a.len()).sum::<usize>().to_string();
        assert_eq!(
            (
                f["cmd"].as_str(),
                f["qbuf"].as_str(),
                f["argv-mem"].as_str()
            ),
            ("client|list", wire.as_str(), argv.as_str())
        );
        // Another client, between commands: nothing buffered, no argv.
        let other = &mut srv.client();
        let oid = int_of(other, &["CLIENT", "ID"]).to_string();
        ok(other, &["CONFIG", "GET", "hz"]);
        let f = client_fields(&text_of(ok(con, &["CLIENT", "LIST", "ID", &oid])));
        assert_eq!(f["cmd"], "config|get");
        assert_eq!((f["qbuf"].as_str(), f["argv-mem"].as_str()), ("0", "0"));
        assert!(run(other, &["NOSUCHCMD"]).is_err());
        let f = client_fields(&text_of(ok(con, &["CLIENT", "LIST", "ID", &oid])));
        assert_eq!(f["cmd"], "NULL");
        ok(other, &["CLIENT", "GETNAME"]);
        assert!(run(other, &["CLIENT", "NOSUCHSUB"]).is_err());
        let f = client_fields(&text_of(ok(con, &["CLIENT", "LIST", "ID", &oid])));
        assert_eq!(f["cmd"], "NULL");
        ok(other, &["PING"]);
        let f = client_fields(&text_of(ok(con, &["CLIENT", "LIST", "ID", &oid])));
        assert_eq!(f["cmd"], "ping");

        // CLIENT KILL checks its options in order.
        te(
            con,
            &["CLIENT", "KILL", "USER", "nosuchuser"],
            "ERR No such user 'nosuchuser'",
        );
        te(
            con,
            &["CLIENT", "KILL", "USER", "NoSuch", "SKIPME"],
            "ERR No such user 'NoSuch'",
        );
        te(con, &["CLIENT", "KILL", "ID", "5", "SKIPME"], SYNTAX);
        te(
            con,
            &["CLIENT", "KILL", "ID", "0"],
            "ERR client-id should be greater than 0",
        );
        t(
            con,
            &[
                "CLIENT", "KILL", "USER", "default", "ID", &oid, "SKIPME", "yes",
            ],
            int(1),
        );

        // Names: printable ASCII without spaces, from CLIENT SETNAME and
        // HELLO SETNAME alike; HELLO applies its options in order.
        let bad_name = "ERR Client names cannot contain spaces, newlines or special characters.";
        te(con, &["CLIENT", "SETNAME", "a\nb"], bad_name);
        te(con, &["CLIENT", "SETNAME", "caf\u{e9}"], bad_name);
        te(con, &["HELLO", "2", "SETNAME", "a b"], bad_name);
        te(
            con,
            &["HELLO", "2", "SETNAME", "early", "BOGUS"],
            "ERR Syntax error in HELLO option 'BOGUS'",
        );
        t(con, &["CLIENT", "GETNAME"], bulk("early"));
        te(
            con,
            &["HELLO", "2", "SETNAME", "x y", "AUTH", "default", "wrong"],
            bad_name,
        );
        t(con, &["CLIENT", "GETNAME"], bulk("early"));
    }
}
