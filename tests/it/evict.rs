//! maxmemory and eviction: what each policy may evict, volatile-ttl's
//! order, LRU/LFU keeping a hot set, -OOM replies against redis-server
//! (pipelined, 1 and 3 shards), CONFIG SET maxmemory at run time, OBJECT
//! FREQ/IDLETIME and TOUCH, and the `evicted` event.

use std::time::{Duration, Instant};

use crate::common::*;

/// The memory counted against maxmemory (Redis: used_memory minus
/// mem_not_counted_for_evict).
fn counted(p: &mut Pipe) -> u64 {
    p.info_u64("used_memory") - p.info_u64("mem_not_counted_for_evict")
}

/// SETs `keys` (value `val`; with `ex`, key i gets EX ex+i), `depth`
/// commands per write. Returns the replies.
fn set_keys(
    p: &mut Pipe,
    keys: &[String],
    val: &str,
    ex: Option<u64>,
    depth: usize,
) -> Vec<String> {
    let mut out = Vec::new();
    for (ci, chunk) in keys.chunks(depth).enumerate() {
        let cmds: Vec<Vec<String>> = chunk
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let mut c = vec!["SET".to_string(), k.clone(), val.to_string()];
                if let Some(s) = ex {
                    c.push("EX".into());
                    c.push((s + (ci * depth + i) as u64).to_string());
                }
                c
            })
            .collect();
        out.extend(
            p.pipeline(&cmds)
                .into_iter()
                .map(|r| String::from_utf8_lossy(&r).into_owned()),
        );
    }
    out
}

/// How many of `keys` exist (pipelined EXISTS).
fn existing(p: &mut Pipe, keys: &[String]) -> Vec<bool> {
    let mut out = Vec::new();
    for chunk in keys.chunks(50) {
        let cmds: Vec<Vec<&str>> = chunk.iter().map(|k| vec!["EXISTS", k.as_str()]).collect();
        out.extend(p.pipeline(&cmds).into_iter().map(|r| r == b":1\r\n"));
    }
    out
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}:{i}")).collect()
}

const OOM: &str = "-OOM command not allowed when used memory > 'maxmemory'.\r\n";

#[test]
fn volatile_policies_never_evict_persistent_keys() {
    for shards in [1, 3] {
        for policy in [
            "volatile-lru",
            "volatile-lfu",
            "volatile-random",
            "volatile-ttl",
        ] {
            let s = Server::ringkv(shards, &["--maxmemory-policy", policy]);
            let mut p = Pipe::connect(s.port());
            let persistent = names("p", 2000);
            assert!(set_keys(&mut p, &persistent, &"x".repeat(100), None, 50)
                .iter()
                .all(|r| r == "+OK\r\n"));
            let limit = counted(&mut p) + 1_000_000;
            p.one(&["CONFIG", "SET", "maxmemory", &limit.to_string()]);
            // 4 MB of volatile keys into 1 MB of room.
            let volatile = names("v", 4000);
            let replies = set_keys(&mut p, &volatile, &"y".repeat(1000), Some(1000), 16);
            assert!(
                replies.iter().all(|r| r == "+OK\r\n"),
                "{policy}, {shards} shards: a write failed while volatile keys could be evicted: {:?}",
                replies.iter().find(|r| *r != "+OK\r\n")
            );
            let evicted = p.info_u64("evicted_keys");
            assert!(
                evicted > 1000,
                "{policy}, {shards} shards: evicted {evicted}"
            );
            let kept = existing(&mut p, &persistent).iter().filter(|&&b| b).count();
            assert_eq!(
                kept, 2000,
                "{policy}, {shards} shards: a persistent key was evicted"
            );
            let mem = counted(&mut p);
            assert!(
                mem <= limit + limit / 20 + 256 * 1024,
                "{policy}, {shards} shards: {mem} counted bytes over the {limit} limit"
            );
            // Only persistent keys left to write and nothing volatile to
            // evict once they are gone: -OOM, and the data survives.
            let now = counted(&mut p).to_string();
            p.one(&["CONFIG", "SET", "maxmemory", &now]);
            let more = names("q", 3000);
            let replies = set_keys(&mut p, &more, &"z".repeat(1000), None, 50);
            assert!(
                replies.iter().any(|r| r == OOM),
                "{policy}, {shards} shards: no -OOM once nothing could be evicted"
            );
            let kept = existing(&mut p, &persistent).iter().filter(|&&b| b).count();
            assert_eq!(kept, 2000, "{policy}, {shards} shards");
            assert_eq!(p.one(&["PING"]), "+PONG\r\n");
        }
    }
}

#[test]
fn volatile_ttl_evicts_the_nearest_deadlines_first() {
    let s = Server::ringkv(1, &["--maxmemory-policy", "volatile-ttl"]);
    let mut p = Pipe::connect(s.port());
    // TTLs 1000 s .. 4999 s in key order.
    let keys = names("t", 4000);
    set_keys(&mut p, &keys, &"v".repeat(500), Some(1000), 50);
    let now = counted(&mut p);
    p.one(&["CONFIG", "SET", "maxmemory", &(now - 800_000).to_string()]);
    assert_eq!(p.one(&["SET", "trigger", "1"]), "+OK\r\n");
    let alive = existing(&mut p, &keys);
    let gone = |r: std::ops::Range<usize>| r.clone().filter(|&i| !alive[i]).count();
    let (near, far) = (gone(0..1000), gone(3000..4000));
    assert!(
        near > 300,
        "only {near} of the 1000 nearest deadlines evicted"
    );
    assert!(near > 5 * far.max(1), "near {near} vs far {far}");
}

/// Writes fresh keys for a few seconds while reading a hot set; returns
/// how many hot keys and how many of the written keys survived.
fn hot_set_survival(shards: usize, policy: &str) -> (usize, usize, usize) {
    let s = Server::ringkv(shards, &["--maxmemory-policy", policy]);
    let mut p = Pipe::connect(s.port());
    let hot = names("hot", 100);
    set_keys(&mut p, &hot, &"h".repeat(200), None, 50);
    let limit = counted(&mut p) + 1_000_000;
    p.one(&["CONFIG", "SET", "maxmemory", &limit.to_string()]);
    let gets: Vec<Vec<&str>> = hot.iter().map(|k| vec!["GET", k.as_str()]).collect();
    let mut cold = Vec::new();
    // The LRU clock ticks once a second (as Redis's): write slowly enough
    // (at most 1000 keys/s) that the room (about 3000 keys, less what
    // connection buffers take) holds about 3 seconds of writes, so the
    // oldest cold keys are clearly idler than the hot ones (idle 0 or 1 s).
    for batch in 0..70 {
        let b = names(&format!("cold{batch}"), 100);
        set_keys(&mut p, &b, &"c".repeat(200), None, 50);
        cold.extend(b);
        p.pipeline(&gets);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(p.info_u64("evicted_keys") > 0, "{policy}: nothing evicted");
    let hot_alive = existing(&mut p, &hot).iter().filter(|&&b| b).count();
    let cold_alive = existing(&mut p, &cold).iter().filter(|&&b| b).count();
    (hot_alive, cold_alive, cold.len())
}

#[test]
fn lru_and_lfu_keep_a_hot_set_that_random_does_not() {
    let runs: Vec<_> = [
        (1, "allkeys-lru"),
        (3, "allkeys-lru"),
        (1, "allkeys-lfu"),
        (3, "allkeys-lfu"),
    ]
    .into_iter()
    .map(|(shards, policy)| {
        (
            shards,
            policy,
            std::thread::spawn(move || hot_set_survival(shards, policy)),
        )
    })
    .collect();
    for (shards, policy, run) in runs {
        {
            let (hot, cold, written) = run.join().unwrap();
            let cold_frac = cold as f64 / written as f64;
            assert!(
                cold_frac < 0.6,
                "{policy}, {shards} shards: {cold} of {written} cold keys fit: the test did not evict enough"
            );
            // Sampling is approximate (5 samples, a 1 s clock): random
            // eviction would keep about as many hot keys as cold ones.
            assert!(
                hot >= 75 && hot as f64 >= 100.0 * cold_frac + 25.0,
                "{policy}, {shards} shards: only {hot}/100 hot keys kept (cold survival {cold_frac:.2})"
            );
        }
    }
    // The control: random eviction keeps about as many hot keys as cold.
    let (hot, cold, written) = hot_set_survival(1, "allkeys-random");
    let cold_frac = cold as f64 / written as f64;
    assert!(
        (hot as f64) < 100.0 * (cold_frac + 0.35),
        "allkeys-random kept {hot}/100 hot keys with cold survival {cold_frac:.2}"
    );
}

/// Commands to run at maxmemory 1 (always out of memory): their replies
/// must be redis-server's, byte for byte.
fn oom_script() -> Vec<Vec<String>> {
    let c = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        c(&["SET", "a", "1"]),
        c(&["GET", "a"]),
        c(&["DEL", "a", "b"]),
        c(&["INCR", "n"]),
        c(&["APPEND", "a", "x"]),
        c(&["LPUSH", "l", "1"]),
        c(&["RPOP", "l"]),
        c(&["HSET", "h", "f", "v"]),
        c(&["SADD", "s", "m"]),
        c(&["ZADD", "z", "1", "m"]),
        c(&["XADD", "x", "*", "f", "v"]),
        c(&["PFADD", "hll", "a"]),
        c(&["SETBIT", "bits", "7", "1"]),
        c(&["SET", "key\r\nwith crlf", "v"]),
        c(&["EXPIRE", "a", "100"]),
        c(&["PING"]),
        c(&["MULTI"]),
        c(&["SET", "a", "2"]),
        c(&["EXEC"]),
        c(&["MULTI"]),
        c(&["GET", "a"]),
        c(&["EXEC"]),
        c(&["MULTI"]),
        c(&["DISCARD"]),
        c(&["EVAL", "return redis.call('set', KEYS[1], 'v')", "1", "a"]),
        c(&["EVAL", "return redis.call('get', KEYS[1])", "1", "a"]),
        c(&["EVAL", "return redis.pcall('incr', KEYS[1])", "1", "n"]),
        c(&["EVAL", "#!lua\nreturn 1", "0"]),
        c(&["EVAL", "#!lua flags=no-writes\nreturn 2", "0"]),
        c(&[
            "EVAL",
            "#!lua flags=allow-oom\nreturn redis.call('set', 'a', 'v')",
            "0",
        ]),
        c(&["GET", "a"]),
        c(&["DEL", "a"]),
        c(&["CONFIG", "GET", "maxmemory"]),
    ]
}

#[test]
fn oom_replies_match_redis_pipelined() {
    let Some(redis) = Server::redis() else { return };
    let mut r = Pipe::connect(redis.port());
    r.one(&["CONFIG", "SET", "maxmemory", "1"]);
    let script = oom_script();
    for shards in [1, 3] {
        let s = Server::ringkv(shards, &["--maxmemory", "1"]);
        let mut k = Pipe::connect(s.port());
        for depth in [1, 16, 50] {
            for chunk in script.chunks(depth) {
                let want = r.pipeline(chunk);
                let got = k.pipeline(chunk);
                for (i, (w, g)) in want.iter().zip(&got).enumerate() {
                    let w = String::from_utf8_lossy(w);
                    let g = String::from_utf8_lossy(g);
                    // Script errors name the script's SHA and line.
                    assert_eq!(g, w, "{shards} shards, depth {depth}: {:?}", chunk[i]);
                }
            }
        }
        // The policy refuses nothing once memory is allowed again.
        k.one(&["CONFIG", "SET", "maxmemory", "0"]);
        assert_eq!(k.one(&["SET", "a", "1"]), "+OK\r\n");
    }
}

#[test]
fn lowering_maxmemory_at_run_time_evicts_down_to_it() {
    for shards in [1, 3] {
        let s = Server::ringkv(shards, &["--maxmemory-policy", "allkeys-random"]);
        let mut p = Pipe::connect(s.port());
        let keys = names("k", 20_000);
        set_keys(&mut p, &keys, &"v".repeat(200), None, 50);
        let before = counted(&mut p);
        let limit = before / 2;
        assert_eq!(
            p.one(&["CONFIG", "SET", "maxmemory", &limit.to_string()]),
            "+OK\r\n"
        );
        assert_eq!(p.one(&["SET", "one-more", "v"]), "+OK\r\n");
        // Shards that did not run the write get under on their next
        // turns; bounded wait.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut mem = counted(&mut p);
        while mem > limit + limit / 20 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            p.one(&["SET", "one-more", "v"]);
            mem = counted(&mut p);
        }
        assert!(
            mem <= limit + limit / 20,
            "{shards} shards: {mem} > {limit}"
        );
        let left = p.int(&["DBSIZE"]);
        assert!(
            left < 20_000 && left > 2_000,
            "{shards} shards: {left} keys left"
        );
        // Every key gone was evicted ("one-more" may have been evicted
        // and written again).
        let evicted = p.info_u64("evicted_keys") as i64;
        assert!(
            evicted >= 20_000 - left && evicted <= 20_000 - left + 600,
            "{shards} shards: evicted_keys {evicted}, keys gone {}",
            20_000 - left
        );
    }
}

#[test]
fn object_freq_idletime_and_touch_match_redis() {
    let Some(redis) = Server::redis() else { return };
    let s = Server::ringkv(2, &[]);
    let mut results = Vec::new();
    for port in [redis.port(), s.port()] {
        let mut p = Pipe::connect(port);
        let mut out = Vec::new();
        p.one(&["SET", "src", "value"]);
        let dump = p.pipeline(&[vec!["DUMP", "src"]]).remove(0);
        let nl = dump.iter().position(|&c| c == b'\n').unwrap();
        let payload = dump[nl + 1..dump.len() - 2].to_vec();
        let cmds: Vec<Vec<Vec<u8>>> = [
            vec![
                b"CONFIG".to_vec(),
                b"SET".to_vec(),
                b"maxmemory-policy".to_vec(),
                b"allkeys-lru".to_vec(),
            ],
            vec![
                b"RESTORE".to_vec(),
                b"old".to_vec(),
                b"0".to_vec(),
                payload.clone(),
                b"IDLETIME".to_vec(),
                b"1000".to_vec(),
            ],
            vec![b"OBJECT".to_vec(), b"IDLETIME".to_vec(), b"old".to_vec()],
            vec![b"OBJECT".to_vec(), b"FREQ".to_vec(), b"old".to_vec()],
            vec![
                b"OBJECT".to_vec(),
                b"IDLETIME".to_vec(),
                b"missing".to_vec(),
            ],
            // TYPE, EXISTS and TTL do not count as an access; TOUCH does.
            vec![b"TYPE".to_vec(), b"old".to_vec()],
            vec![b"EXISTS".to_vec(), b"old".to_vec()],
            vec![b"TTL".to_vec(), b"old".to_vec()],
            vec![b"OBJECT".to_vec(), b"IDLETIME".to_vec(), b"old".to_vec()],
            vec![
                b"TOUCH".to_vec(),
                b"old".to_vec(),
                b"missing".to_vec(),
                b"src".to_vec(),
            ],
            vec![b"OBJECT".to_vec(), b"IDLETIME".to_vec(), b"old".to_vec()],
            vec![
                b"CONFIG".to_vec(),
                b"SET".to_vec(),
                b"maxmemory-policy".to_vec(),
                b"volatile-lfu".to_vec(),
            ],
            vec![
                b"RESTORE".to_vec(),
                b"f".to_vec(),
                b"0".to_vec(),
                payload.clone(),
                b"FREQ".to_vec(),
                b"100".to_vec(),
            ],
            vec![b"OBJECT".to_vec(), b"FREQ".to_vec(), b"f".to_vec()],
            vec![b"OBJECT".to_vec(), b"IDLETIME".to_vec(), b"f".to_vec()],
            vec![
                b"RESTORE".to_vec(),
                b"g".to_vec(),
                b"0".to_vec(),
                payload,
                b"FREQ".to_vec(),
                b"256".to_vec(),
            ],
            // (Not an integer: Redis shares small integers, whose LFU
            // word is meaningless.)
            vec![b"SET".to_vec(), b"new".to_vec(), b"val".to_vec()],
            vec![b"OBJECT".to_vec(), b"FREQ".to_vec(), b"new".to_vec()],
            vec![
                b"CONFIG".to_vec(),
                b"SET".to_vec(),
                b"maxmemory-policy".to_vec(),
                b"noeviction".to_vec(),
            ],
        ]
        .to_vec();
        for c in &cmds {
            // One at a time: CONFIG SET must have reached every shard.
            out.push(String::from_utf8_lossy(&p.pipeline(std::slice::from_ref(c))[0]).into_owned());
        }
        results.push(out);
    }
    assert_eq!(results[1], results[0]);
    // And the values themselves, not only agreement.
    assert_eq!(results[0][2], ":1000\r\n");
    assert_eq!(results[0][13], ":100\r\n");
}

#[test]
fn eviction_publishes_evicted_and_breaks_watch() {
    let s = Server::ringkv(
        2,
        &[
            "--maxmemory-policy",
            "allkeys-lru",
            "--notify-keyspace-events",
            "Ee",
        ],
    );
    let mut sub = RawConn::connect(s.port());
    sub.send(&resp_strs(&["SUBSCRIBE", "__keyevent@0__:evicted"]));
    let hello = sub.read_idle(Duration::from_millis(200), Duration::from_secs(5));
    assert!(String::from_utf8_lossy(&hello).contains("subscribe"));
    let mut p = Pipe::connect(s.port());
    let mut w = Pipe::connect(s.port());
    let keys = names("e", 3000);
    set_keys(&mut p, &keys, &"v".repeat(500), None, 50);
    assert_eq!(w.one(&["WATCH", "e:0"]), "+OK\r\n");
    let limit = counted(&mut p) * 3 / 4;
    p.one(&["CONFIG", "SET", "maxmemory", &limit.to_string()]);
    // Write until e:0 is gone (allkeys-lru: it is among the oldest).
    let mut n = 0;
    while p.int(&["EXISTS", "e:0"]) == 1 && n < 200 {
        set_keys(
            &mut p,
            &names(&format!("f{n}"), 50),
            &"v".repeat(500),
            None,
            50,
        );
        n += 1;
    }
    assert_eq!(p.int(&["EXISTS", "e:0"]), 0, "e:0 never evicted");
    w.one(&["MULTI"]);
    w.one(&["GET", "e:0"]);
    assert_eq!(
        w.one(&["EXEC"]),
        "*-1\r\n",
        "EXEC ran though a watched key was evicted"
    );
    let msgs = sub.read_idle(Duration::from_millis(300), Duration::from_secs(5));
    let text = String::from_utf8_lossy(&msgs);
    assert!(
        text.contains("__keyevent@0__:evicted"),
        "no evicted event: {text:.200}"
    );
    assert!(text.contains("e:0"), "e:0's eviction was not published");
}

#[test]
fn rdb_idle_hints_from_redis_are_applied_on_load() {
    let dir = std::env::temp_dir().join(format!("ringkv-evict-rdb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.to_str().unwrap();
    let Some(redis) = Server::redis_with(&["--dir", d, "--maxmemory-policy", "allkeys-lru"]) else {
        return;
    };
    let mut r = Pipe::connect(redis.port());
    r.one(&["SET", "fresh", "v"]);
    // Redis saves IDLE opcodes under an LRU policy.
    let script =
        "redis.call('restore', 'old', 0, redis.call('dump', 'fresh'), 'IDLETIME', 5000) return 1";
    assert_eq!(r.one(&["EVAL", script, "0"]), ":1\r\n");
    assert_eq!(r.one(&["SAVE"]), "+OK\r\n");
    drop(r);
    drop(redis);
    let s = Server::ringkv_in_dir(2, &dir, &["--maxmemory-policy", "allkeys-lru"]);
    let mut p = Pipe::connect(s.port());
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.one(&["PING"]) != "+PONG\r\n" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let idle = p.int(&["OBJECT", "IDLETIME", "old"]);
    assert!((5000..5010).contains(&idle), "old: idle {idle}");
    assert!(p.int(&["OBJECT", "IDLETIME", "fresh"]) < 5000);
    drop(s);
    let _ = std::fs::remove_dir_all(&dir);
}
