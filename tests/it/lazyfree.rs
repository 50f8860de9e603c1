//! Lazy freeing (UNLINK, FLUSHALL/FLUSHDB ASYNC, lazyfree-lazy-*), MEMORY
//! introspection and used_memory accounting.

use std::io::Read;
use std::time::{Duration, Instant};

use redis::Value;

use crate::common::*;

/// A reply's text (bulk, verbatim or status).
fn text(v: Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
        Value::VerbatimString { text, .. } => text,
        Value::SimpleString(s) => s,
        other => panic!("not a string reply: {other:?}"),
    }
}

/// INFO `section` as (field, value) pairs in order.
fn info(con: &mut redis::Connection, section: &str) -> Vec<(String, String)> {
    text(ok(con, &["INFO", section]))
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

fn info_u64(con: &mut redis::Connection, field: &str) -> u64 {
    info(con, "memory")
        .into_iter()
        .find(|(k, _)| k == field)
        .unwrap_or_else(|| panic!("INFO memory has no {field}"))
        .1
        .parse()
        .unwrap_or_else(|e| panic!("{field}: {e}"))
}

/// (lazyfree_pending_objects, lazyfreed_objects).
fn lazy_counters(con: &mut redis::Connection) -> (u64, u64) {
    (
        info_u64(con, "lazyfree_pending_objects"),
        info_u64(con, "lazyfreed_objects"),
    )
}

/// Waits (bounded) until lazyfreed_objects reaches `n` with nothing
/// pending, and checks it does not overshoot.
fn wait_freed(con: &mut redis::Connection, n: u64) {
    let t0 = Instant::now();
    loop {
        let (pending, freed) = lazy_counters(con);
        assert!(freed <= n, "lazyfreed_objects {freed} > expected {n}");
        if freed == n && pending == 0 {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "lazyfreed_objects stuck at {freed} (pending {pending}), want {n}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `count` commands from `cmds` pipelined on a raw connection and
/// reads their one-line (integer or status) replies, bounded.
fn pipeline(port: u16, count: usize, cmds: impl Iterator<Item = Vec<u8>> + Send) {
    let mut c = RawConn::connect(port);
    let mut writer = c.stream.try_clone().expect("clone");
    std::thread::scope(|s| {
        // Write from another thread so neither side's buffers fill up.
        s.spawn(move || {
            for cmd in cmds {
                std::io::Write::write_all(&mut writer, &cmd).expect("send");
            }
        });
        c.stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        let mut lines = 0usize;
        let mut buf = [0u8; 65536];
        while lines < count {
            let k = c.stream.read(&mut buf).expect("reply");
            assert!(k > 0, "server closed");
            assert!(!buf[..k].contains(&b'-'), "error reply in pipeline");
            lines += buf[..k].iter().filter(|&&b| b == b'\n').count();
        }
    });
}

/// SADD of `n` string members to `key`, `per` members per command.
fn fill_set(port: u16, key: &str, n: usize, per: usize) {
    let key = key.to_string();
    pipeline(
        port,
        n.div_ceil(per),
        (0..n).step_by(per).map(move |start| {
            let members: Vec<Vec<u8>> = (start..(start + per).min(n))
                .map(|i| format!("member:{i}").into_bytes())
                .collect();
            let mut args: Vec<&[u8]> = vec![b"SADD", key.as_bytes()];
            args.extend(members.iter().map(|m| m.as_slice()));
            resp_cmd(&args)
        }),
    );
}

fn big_set(con: &mut redis::Connection, key: &str) {
    let mut args = vec!["SADD".to_string(), key.to_string()];
    args.extend((0..200).map(|i| format!("m{i}")));
    let refs: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    assert_eq!(ok(con, &refs), int(200));
}

fn set_keys(con: &mut redis::Connection, n: usize) {
    for i in 0..n {
        ok(con, &["SET", &format!("k{i}"), "v"]);
    }
}

#[test]
fn unlink_of_a_huge_set_is_freed_by_the_background_thread() {
    // 5M members builds in about 10 s on a loaded 2-core box (the time is
    // printed); the assertions are on counters, never on time.
    const N: usize = 5_000_000;
    let srv = Server::ringkv(1, &[]);
    let mut a = srv.client();
    let mut b = srv.client();
    let t0 = Instant::now();
    fill_set(srv.port(), "big", N, 10_000);
    eprintln!("built a set of {N} members in {:?}", t0.elapsed());
    assert_eq!(ok(&mut a, &["SCARD", "big"]), int(N as i64));
    assert_eq!(lazy_counters(&mut b), (0, 0));

    assert_eq!(ok(&mut a, &["UNLINK", "big"]), int(1));
    // The shard answers at once while the set is being freed elsewhere.
    assert_eq!(ok(&mut b, &["PING"]), status("PONG"));
    assert_eq!(ok(&mut b, &["EXISTS", "big"]), int(0));
    assert_eq!(ok(&mut b, &["SET", "x", "1"]), Value::Okay);
    assert_eq!(ok(&mut b, &["GET", "x"]), Value::BulkString(b"1".to_vec()));
    let (pending, freed) = lazy_counters(&mut b);
    assert_eq!(pending + freed, 1, "one object queued or freed");
    wait_freed(&mut b, 1);
}

#[test]
fn lazyfree_options_choose_what_is_freed_in_the_background() {
    let srv = Server::ringkv(2, &[]);
    let mut c = srv.client();
    let get = |c: &mut redis::Connection, name: &str| ok(c, &["CONFIG", "GET", name]);

    // DEL frees inline unless lazyfree-lazy-user-del.
    big_set(&mut c, "s1");
    assert_eq!(ok(&mut c, &["DEL", "s1"]), int(1));
    assert_eq!(lazy_counters(&mut c), (0, 0));
    ok(&mut c, &["CONFIG", "SET", "lazyfree-lazy-user-del", "yes"]);
    assert_eq!(
        get(&mut c, "lazyfree-lazy-user-del"),
        arr(vec![bulk("lazyfree-lazy-user-del"), bulk("yes")])
    );
    big_set(&mut c, "s1");
    assert_eq!(ok(&mut c, &["DEL", "s1"]), int(1));
    wait_freed(&mut c, 1);

    // Small values are never worth a trip to the thread.
    ok(&mut c, &["SADD", "small", "a", "b"]);
    assert_eq!(ok(&mut c, &["UNLINK", "small"]), int(1));
    assert_eq!(lazy_counters(&mut c), (0, 1));

    // Overwrites by the server (SET, RENAME) iff lazyfree-lazy-server-del.
    big_set(&mut c, "s2");
    ok(&mut c, &["SET", "s2", "x"]);
    assert_eq!(lazy_counters(&mut c), (0, 1));
    ok(
        &mut c,
        &["CONFIG", "SET", "lazyfree-lazy-server-del", "yes"],
    );
    ok(&mut c, &["DEL", "s2"]);
    big_set(&mut c, "s2");
    ok(&mut c, &["SET", "s2", "x"]);
    wait_freed(&mut c, 2);
    big_set(&mut c, "{r}dst");
    ok(&mut c, &["SET", "{r}src", "v"]);
    ok(&mut c, &["RENAME", "{r}src", "{r}dst"]);
    wait_freed(&mut c, 3);

    // Expiry iff lazyfree-lazy-expire.
    ok(&mut c, &["CONFIG", "SET", "lazyfree-lazy-expire", "yes"]);
    big_set(&mut c, "s3");
    ok(&mut c, &["PEXPIRE", "s3", "1"]);
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(ok(&mut c, &["EXISTS", "s3"]), int(0));
    wait_freed(&mut c, 4);

    // FLUSHALL ASYNC hands each shard's tables over: one object per key.
    ok(&mut c, &["FLUSHALL", "SYNC"]);
    assert_eq!(lazy_counters(&mut c), (0, 4));
    set_keys(&mut c, 300);
    ok(&mut c, &["FLUSHALL", "ASYNC"]);
    wait_freed(&mut c, 304);
    set_keys(&mut c, 300);
    ok(&mut c, &["FLUSHDB", "SYNC"]);
    assert_eq!(ok(&mut c, &["DBSIZE"]), int(0));
    assert_eq!(lazy_counters(&mut c), (0, 304));
    set_keys(&mut c, 300);
    ok(&mut c, &["FLUSHDB"]);
    assert_eq!(lazy_counters(&mut c), (0, 304));
    // With lazyfree-lazy-user-flush, no argument means ASYNC; SYNC wins.
    ok(
        &mut c,
        &["CONFIG", "SET", "lazyfree-lazy-user-flush", "yes"],
    );
    set_keys(&mut c, 300);
    ok(&mut c, &["FLUSHDB"]);
    wait_freed(&mut c, 604);
    set_keys(&mut c, 300);
    ok(&mut c, &["FLUSHALL", "SYNC"]);
    assert_eq!(ok(&mut c, &["DBSIZE"]), int(0));
    assert_eq!(lazy_counters(&mut c), (0, 604));

    // CONFIG RESETSTAT clears the freed count.
    ok(&mut c, &["CONFIG", "RESETSTAT"]);
    assert_eq!(lazy_counters(&mut c), (0, 0));
}

#[test]
fn flush_unlink_and_memory_arguments_match_redis() {
    let Some(redis) = Server::redis() else {
        eprintln!("redis-server not installed: skipped");
        return;
    };
    let ringkv = Server::ringkv(2, &[]);
    let mut r = redis.client();
    let mut k = ringkv.client();
    let cases: &[&[&str]] = &[
        &["SET", "a", "1"],
        &["FLUSHALL", "foo"],
        &["FLUSHALL", "ASYNC", "SYNC"],
        &["FLUSHALL", "async"],
        &["FLUSHALL", "SYNC"],
        &["FLUSHALL"],
        &["FLUSHDB", "async", "x"],
        &["FLUSHDB", "Sync"],
        &["FLUSHDB", "ASYNC"],
        &["FLUSHDB", "nope"],
        &["FLUSHDB"],
        &["UNLINK"],
        &["SET", "a", "1"],
        &["UNLINK", "a", "b", "a"],
        &["CONFIG", "SET", "lazyfree-lazy-user-flush", "maybe"],
        &["CONFIG", "SET", "lazyfree-lazy-user-flush", "yes"],
        &["CONFIG", "GET", "lazyfree-lazy-user-flush"],
        &["CONFIG", "SET", "lazyfree-lazy-user-del", "yes"],
        &["CONFIG", "GET", "lazyfree-lazy-user-del"],
        &["CONFIG", "SET", "lazyfree-lazy-user-del", "no"],
        &["FLUSHALL"],
        &["MEMORY", "USAGE"],
        &["MEMORY", "USAGE", "nokey"],
        &["MEMORY", "USAGE", "nokey", "SAMPLES"],
        &["MEMORY", "USAGE", "nokey", "SAMPLES", "-1"],
        &["MEMORY", "USAGE", "nokey", "SAMPLES", "x"],
        &["MEMORY", "USAGE", "nokey", "foo", "1"],
        &["MEMORY", "USAGE", "nokey", "SAMPLES", "5", "SAMPLES", "0"],
        &["MEMORY", "STATS", "x"],
        &["MEMORY", "MALLOC-STATS", "x"],
        &["MEMORY", "DOCTOR", "x"],
        &["MEMORY", "PURGE"],
        &["MEMORY", "HELP"],
        &["MEMORY", "NOPE"],
        &["MEMORY"],
    ];
    for c in cases {
        assert_eq!(run(&mut k, c), run(&mut r, c), "{c:?}");
    }
    // Present keys: an integer for both (the sizes differ by design).
    for con in [&mut r, &mut k] {
        ok(con, &["SADD", "s", "a", "b", "c"]);
        for samples in ["0", "5"] {
            match ok(con, &["MEMORY", "USAGE", "s", "SAMPLES", samples]) {
                Value::Int(n) => assert!(n > 0),
                other => panic!("MEMORY USAGE: {other:?}"),
            }
        }
    }
}

/// The keys of a flat RESP2 map reply.
fn map_keys(v: Value) -> Vec<String> {
    let Value::Array(items) = v else {
        panic!("not an array: {v:?}");
    };
    items.into_iter().step_by(2).map(text).collect()
}

#[test]
fn memory_stats_and_info_memory_follow_redis_7_layout() {
    let Some(redis) = Server::redis() else {
        eprintln!("redis-server not installed: skipped");
        return;
    };
    let ringkv = Server::ringkv(2, &[]);
    let mut r = redis.client();
    let mut k = ringkv.client();
    for con in [&mut r, &mut k] {
        ok(con, &["FLUSHALL"]);
        ok(con, &["SET", "a", "1"]);
        ok(con, &["SET", "b", "2"]);
        ok(con, &["EXPIRE", "b", "100"]);
    }
    let rk = map_keys(ok(&mut r, &["MEMORY", "STATS"]));
    let kk = map_keys(ok(&mut k, &["MEMORY", "STATS"]));
    assert_eq!(kk, rk);
    // The per-db map.
    let Value::Array(items) = ok(&mut k, &["MEMORY", "STATS"]) else {
        panic!()
    };
    let pos = items
        .iter()
        .position(|v| v == &Value::BulkString(b"db.0".to_vec()))
        .unwrap();
    assert_eq!(
        map_keys(items[pos + 1].clone()),
        [
            "overhead.hashtable.main",
            "overhead.hashtable.expires",
            "overhead.hashtable.slot-to-keys"
        ]
    );
    let kcount = items
        .iter()
        .position(|v| v == &Value::BulkString(b"keys.count".to_vec()))
        .unwrap();
    assert_eq!(items[kcount + 1], int(2));

    // INFO memory: every field ringkv shows is one of Redis's, in Redis's
    // order, and the allocator/overhead ones are all there.
    let rf: Vec<String> = info(&mut r, "memory").into_iter().map(|p| p.0).collect();
    let kf: Vec<(String, String)> = info(&mut k, "memory");
    let mut last = 0;
    for (name, _) in &kf {
        let at = rf
            .iter()
            .position(|f| f == name)
            .unwrap_or_else(|| panic!("{name} is not a Redis 7.0 INFO memory field"));
        assert!(at >= last, "{name} out of Redis's order");
        last = at;
    }
    for want in [
        "used_memory_overhead",
        "used_memory_startup",
        "used_memory_dataset",
        "used_memory_dataset_perc",
        "allocator_allocated",
        "allocator_active",
        "allocator_resident",
        "allocator_frag_ratio",
        "allocator_frag_bytes",
        "allocator_rss_ratio",
        "allocator_rss_bytes",
        "rss_overhead_ratio",
        "rss_overhead_bytes",
        "mem_fragmentation_ratio",
        "mem_fragmentation_bytes",
        "mem_clients_normal",
        "lazyfree_pending_objects",
        "lazyfreed_objects",
    ] {
        assert!(
            kf.iter().any(|(n, _)| n == want),
            "INFO memory lacks {want}"
        );
    }
    let field = |n: &str| kf.iter().find(|(f, _)| f == n).unwrap().1.clone();
    assert!(field("mem_allocator").starts_with("mimalloc-"));
    assert!(field("used_memory_dataset_perc").ends_with('%'));
    let used: u64 = field("used_memory").parse().unwrap();
    let startup: u64 = field("used_memory_startup").parse().unwrap();
    let overhead: u64 = field("used_memory_overhead").parse().unwrap();
    let dataset: u64 = field("used_memory_dataset").parse().unwrap();
    assert!(startup > 0 && startup <= overhead);
    assert_eq!(overhead + dataset, used);

    // The other subcommands' reply types.
    let doc = text(ok(&mut k, &["MEMORY", "DOCTOR"]));
    assert!(
        doc.starts_with("Hi Sam") || doc.starts_with("Sam,"),
        "{doc}"
    );
    let stats = text(ok(&mut k, &["MEMORY", "MALLOC-STATS"]));
    assert!(stats.contains("committed"), "{stats}");
    assert_eq!(ok(&mut k, &["MEMORY", "PURGE"]), Value::Okay);
}

#[test]
fn used_memory_grows_like_the_allocator_and_rss() {
    // Values of 130 bytes sit in mimalloc's 160-byte class: counting the
    // requested sizes instead of what mimalloc reserves would report about
    // 15% less than the allocator holds.
    const N: usize = 1_000_000;
    let srv = Server::ringkv(1, &[]);
    let mut c = srv.client();
    let before = (
        info_u64(&mut c, "used_memory"),
        info_u64(&mut c, "used_memory_rss"),
        info_u64(&mut c, "allocator_active"),
    );
    let pad = "v".repeat(122);
    pipeline(
        srv.port(),
        N / 100,
        (0..N).step_by(100).map(move |start| {
            let kv: Vec<Vec<u8>> = (start..start + 100)
                .flat_map(|i| [format!("key:{i:07}"), format!("{pad}{i:08}")])
                .map(String::into_bytes)
                .collect();
            let mut args: Vec<&[u8]> = vec![b"MSET"];
            args.extend(kv.iter().map(|a| a.as_slice()));
            resp_cmd(&args)
        }),
    );
    assert_eq!(ok(&mut c, &["DBSIZE"]), int(N as i64));
    assert_eq!(ok(&mut c, &["STRLEN", "key:0000007"]), int(130));
    let after = (
        info_u64(&mut c, "used_memory"),
        info_u64(&mut c, "used_memory_rss"),
        info_u64(&mut c, "allocator_active"),
    );
    let d_used = (after.0 - before.0) as f64;
    let d_rss = after.1 as f64 - before.1 as f64;
    let d_active = after.2 as f64 - before.2 as f64;
    eprintln!(
        "{N} keys: used_memory +{d_used}, rss +{d_rss}, allocator_active +{d_active} \
         (used/rss {:.3}, used/active {:.3})",
        d_used / d_rss,
        d_used / d_active
    );
    // Stated tolerances: within 10% of mimalloc's committed growth, within
    // 15% of the RSS growth.
    assert!((d_used / d_active - 1.0).abs() <= 0.10, "used vs allocator");
    assert!((d_used / d_rss - 1.0).abs() <= 0.15, "used vs rss");
}
