//! Keyspace notifications (notify-keyspace-events): the events of a random
//! command stream over every family, pipelined, against redis-server; the
//! `expired`, `new` and `keymiss` classes; CONFIG's parsing and printing.

use std::time::Duration;

use crate::common::*;

use crate::common::resp_strs as cmd;

/// Parses complete RESP2 arrays of bulk strings (pub/sub frames).
fn frames(b: &[u8]) -> Vec<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut p = 0;
    let line = |p: usize| -> Option<(&[u8], usize)> {
        let e = b[p..].windows(2).position(|w| w == b"\r\n")?;
        Some((&b[p..p + e], p + e + 2))
    };
    while p < b.len() {
        let Some((h, mut q)) = line(p) else { break };
        assert_eq!(
            h[0],
            b'*',
            "not a frame: {:?}",
            String::from_utf8_lossy(&b[p..])
        );
        let n: usize = std::str::from_utf8(&h[1..]).unwrap().parse().unwrap();
        let mut items = Vec::new();
        for _ in 0..n {
            let (h, r) = line(q).expect("truncated frame");
            if h[0] == b':' {
                items.push(h[1..].to_vec());
                q = r;
                continue;
            }
            let len: usize = std::str::from_utf8(&h[1..]).unwrap().parse().unwrap();
            items.push(b[r..r + len].to_vec());
            q = r + len + 2;
        }
        out.push(items);
        p = q;
    }
    out
}

/// The length of the first complete RESP2 reply in `b`, if there is one.
fn reply_len(b: &[u8]) -> Option<usize> {
    let e = b.windows(2).position(|w| w == b"\r\n")?;
    let n = || -> i64 { std::str::from_utf8(&b[1..e]).unwrap().parse().unwrap() };
    match b[0] {
        b'+' | b'-' | b':' => Some(e + 2),
        b'$' if n() < 0 => Some(e + 2),
        b'$' => {
            let end = e + 2 + n() as usize + 2;
            (b.len() >= end).then_some(end)
        }
        b'*' => {
            let mut p = e + 2;
            for _ in 0..n().max(0) {
                p += reply_len(&b[p..])?;
            }
            Some(p)
        }
        c => panic!("unexpected reply type {:?}", c as char),
    }
}

/// Reads exactly `n` replies.
fn read_replies(c: &mut RawConn, n: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    loop {
        let (mut p, mut k) = (0, 0);
        while k < n {
            match reply_len(&buf[p..]) {
                Some(l) => {
                    p += l;
                    k += 1;
                }
                None => break,
            }
        }
        if k == n {
            assert_eq!(p, buf.len(), "more replies than commands");
            return buf;
        }
        let more = c.read_len(1, Duration::from_secs(10));
        assert!(!more.is_empty(), "replies stalled");
        buf.extend_from_slice(&more);
    }
}

/// A subscriber to every keyspace and keyevent channel.
fn subscriber(port: u16) -> RawConn {
    let mut s = RawConn::connect(port);
    s.send(&cmd(&["PSUBSCRIBE", "__key*__:*"]));
    let got = s.read_len(1, Duration::from_secs(5));
    assert!(got.starts_with(b"*3\r\n$10\r\npsubscribe"), "{got:?}");
    // The rest of the confirmation, if it came in pieces.
    s.read_idle(Duration::from_millis(50), Duration::from_secs(1));
    s
}

/// (channel, message) of every event frame received until the subscriber
/// has been idle for a while.
fn events(s: &mut RawConn) -> Vec<(String, String)> {
    let b = s.read_idle(Duration::from_millis(400), Duration::from_secs(20));
    frames(&b)
        .into_iter()
        .map(|f| {
            assert_eq!(f[0], b"pmessage");
            (
                String::from_utf8_lossy(&f[2]).into_owned(),
                String::from_utf8_lossy(&f[3]).into_owned(),
            )
        })
        .collect()
}

/// A deterministic pseudo-random stream of commands over every family.
/// Keys come from a small pool shared by all types, so WRONGTYPE paths,
/// creations and deletions all happen. Members have equal lengths, so
/// replies of random pops have the same size everywhere.
fn stream(seed: u64, n: usize) -> Vec<Vec<String>> {
    let mut x = seed;
    let mut next = move |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m
    };
    let pools: [&[&str]; 6] = [
        &["k1", "k2", "{t}k"],
        &["l1", "l2", "{t}l"],
        &["h1", "h2"],
        &["s1", "s2", "{t}s"],
        &["z1", "z2", "{t}z"],
        &["x1", "x2", "{t}x"],
    ];
    // Explicit, increasing stream IDs (auto IDs depend on the clock).
    let mut ctr = 0u64;
    let mut out = Vec::new();
    for _ in 0..n {
        let op = next(75);
        ctr += 1;
        // The family of the command picks the key pool; one time in ten
        // any pool (WRONGTYPE, generic commands on every type).
        let fam = match op {
            0..=17 | 62..=65 => 0,
            66..=67 => 4,
            69..=74 => 5,
            27..=38 => 1,
            39..=43 => 2,
            44..=51 => 3,
            52..=60 => 4,
            _ => next(6) as usize,
        };
        let pick = |next: &mut dyn FnMut(u64) -> u64| {
            let p = if next(10) == 0 {
                pools[next(6) as usize]
            } else {
                pools[fam]
            };
            p[next(p.len() as u64) as usize].to_string()
        };
        let k = pick(&mut next);
        let k2 = pick(&mut next);
        let m = format!("m{}", next(6));
        let m_pop = m.clone();
        let v = format!("{}", next(20));
        let c: Vec<String> = match op {
            0 => vec!["SET".into(), k, v],
            1 => vec!["SET".into(), k, v, "EX".into(), "1000".into()],
            2 => vec!["SET".into(), k, v, "NX".into()],
            3 => vec!["SET".into(), k, v, "XX".into(), "KEEPTTL".into()],
            4 => vec!["SETEX".into(), k, "500".into(), v],
            5 => vec!["PSETEX".into(), k, "500000".into(), v],
            6 => vec!["SETNX".into(), k, v],
            7 => vec!["GETSET".into(), k, v],
            8 => vec!["GETDEL".into(), k],
            9 => vec!["GETEX".into(), k, "EX".into(), "100".into()],
            10 => vec!["GETEX".into(), k, "PERSIST".into()],
            11 => vec!["APPEND".into(), k, v],
            12 => vec!["SETRANGE".into(), k, "2".into(), v],
            13 => vec!["INCR".into(), k],
            14 => vec!["DECRBY".into(), k, v],
            15 => vec!["INCRBYFLOAT".into(), k, "1.5".into()],
            16 => vec!["MSET".into(), k, v.clone(), k2, v],
            17 => vec!["MSETNX".into(), k, v.clone(), k2, v],
            18 => vec!["DEL".into(), k, k2],
            19 => vec!["UNLINK".into(), k],
            20 => vec!["EXPIRE".into(), k, "100".into()],
            21 => vec!["PEXPIRE".into(), k, "-1".into()],
            22 => vec!["PERSIST".into(), k],
            23 => vec!["RENAME".into(), k, k2],
            24 => vec!["RENAMENX".into(), k, k2],
            25 => vec!["COPY".into(), k, k2, "REPLACE".into()],
            26 => vec!["MOVE".into(), k, "1".into()],
            27 => vec!["LPUSH".into(), k, m.clone(), m],
            28 => vec!["RPUSH".into(), k, m],
            29 => vec!["LPUSHX".into(), k, m],
            30 => vec!["RPOP".into(), k],
            31 => vec!["LPOP".into(), k, "2".into()],
            32 => vec!["LSET".into(), k, "0".into(), m],
            33 => vec!["LINSERT".into(), k, "BEFORE".into(), m, "m9".into()],
            34 => vec!["LREM".into(), k, "0".into(), m],
            35 => vec!["LTRIM".into(), k, "0".into(), "1".into()],
            36 => vec!["LMOVE".into(), k, k2, "LEFT".into(), "RIGHT".into()],
            37 => vec!["RPOPLPUSH".into(), k, k2],
            38 => vec!["LMPOP".into(), "2".into(), k, k2, "LEFT".into()],
            39 => vec!["HSET".into(), k, m, v],
            40 => vec!["HSETNX".into(), k, m, v],
            41 => vec!["HDEL".into(), k, m, "m1".into()],
            42 => vec!["HINCRBY".into(), k, m, v],
            43 => vec!["HINCRBYFLOAT".into(), k, m, "0.5".into()],
            44 => vec!["SADD".into(), k, m, "m2".into()],
            45 => vec!["SREM".into(), k, m],
            // SPOP picks members at random (differently from Redis): it
            // runs on a set of its own, so no other key depends on what it
            // took; the events depend only on the counts.
            46 => vec!["SPOP".into(), "{t}p".into()],
            47 => vec!["SPOP".into(), "{t}p".into(), "2".into()],
            48 => vec!["SMOVE".into(), k, k2, m],
            49 => vec!["SINTERSTORE".into(), k, k2, "s1".into()],
            50 => vec!["SUNIONSTORE".into(), k, k2, "s2".into()],
            51 => vec!["SDIFFSTORE".into(), k, k2, "{t}s".into()],
            52 => vec!["ZADD".into(), k, v, m],
            53 => vec!["ZADD".into(), k, "XX".into(), "INCR".into(), v, m],
            54 => vec!["ZINCRBY".into(), k, v, m],
            55 => vec!["ZREM".into(), k, m],
            56 => vec!["ZREMRANGEBYSCORE".into(), k, "0".into(), v],
            57 => vec!["ZREMRANGEBYRANK".into(), k, "0".into(), "0".into()],
            58 => vec!["ZPOPMIN".into(), k],
            59 => vec!["ZUNIONSTORE".into(), k, "2".into(), k2, "z1".into()],
            60 => vec!["ZRANGESTORE".into(), k, k2, "0".into(), "-1".into()],
            61 => vec!["SORT".into(), k2, "ALPHA".into(), "STORE".into(), k],
            62 => vec!["SETBIT".into(), k, v, "1".into()],
            63 => vec!["BITOP".into(), "OR".into(), k, k2, "k1".into()],
            64 => vec!["PFADD".into(), k, m, "x".into()],
            65 => vec!["PFMERGE".into(), k, k2],
            66 => vec!["GEOADD".into(), k, "13.36".into(), "38.11".into(), m],
            67 => vec![
                "GEOSEARCHSTORE".into(),
                k,
                k2,
                "FROMLONLAT".into(),
                "13".into(),
                "38".into(),
                "BYRADIUS".into(),
                "200".into(),
                "km".into(),
            ],
            69 => vec![
                "XADD".into(),
                k,
                "MAXLEN".into(),
                "3".into(),
                format!("{ctr}-1"),
                "f".into(),
                v,
            ],
            70 => vec!["XDEL".into(), k, format!("{}-1", ctr.saturating_sub(2))],
            71 => vec!["XTRIM".into(), k, "MAXLEN".into(), "1".into()],
            72 => vec![
                "XGROUP".into(),
                "CREATE".into(),
                k,
                "g".into(),
                "$".into(),
                "MKSTREAM".into(),
            ],
            73 => vec!["XGROUP".into(), "DESTROY".into(), k, "g".into()],
            74 => vec!["XSETID".into(), k, format!("{ctr}-5")],
            _ => vec![
                "BITFIELD".into(),
                k,
                "INCRBY".into(),
                "u8".into(),
                "0".into(),
                v,
            ],
        };
        if op == 46 || op == 47 {
            out.push(vec!["DEL".into(), "{t}p".into()]);
            out.push(vec!["SADD".into(), "{t}p".into(), m_pop, "m9".into()]);
        }
        out.push(c);
    }
    out
}

/// Runs `cmds` pipelined `depth` at a time; returns the byte length of the
/// replies of each batch and the events seen.
fn run_stream(
    port: u16,
    flags: &str,
    cmds: &[Vec<String>],
    depth: usize,
) -> (Vec<Vec<u8>>, Vec<(String, String)>) {
    let mut w = RawConn::connect(port);
    w.send(&cmd(&["FLUSHALL"]));
    w.expect(b"+OK\r\n");
    w.send(&cmd(&["CONFIG", "SET", "notify-keyspace-events", flags]));
    w.expect(b"+OK\r\n");
    let mut sub = subscriber(port);
    let mut got = Vec::new();
    for chunk in cmds.chunks(depth) {
        let mut buf = Vec::new();
        for c in chunk {
            let a: Vec<&str> = c.iter().map(|s| s.as_str()).collect();
            buf.extend_from_slice(&cmd(&a));
        }
        w.send(&buf);
        got.push(read_replies(&mut w, chunk.len()));
    }
    let ev = events(&mut sub);
    w.send(&cmd(&["CONFIG", "SET", "notify-keyspace-events", ""]));
    w.expect(b"+OK\r\n");
    (got, ev)
}

/// Replies of each batch have the same size as redis-server's (SPOP's
/// members differ, not their sizes); on a mismatch both are shown.
fn same_sizes(got: &[Vec<u8>], want: &[Vec<u8>], cmds: &[Vec<String>], depth: usize, what: &str) {
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(
            g.len(),
            w.len(),
            "{what}: batch {i} ({:?}): got {:?}, redis-server {:?}",
            &cmds[i * depth..((i + 1) * depth).min(cmds.len())],
            String::from_utf8_lossy(g),
            String::from_utf8_lossy(w)
        );
    }
}

/// The key an event is about.
fn key_of(e: &(String, String)) -> String {
    match e.0.split_once("__:") {
        Some((ch, rest)) if ch.starts_with("__keyspace@") => format!("{ch}:{rest}"),
        Some((ch, _)) => format!("{}:{}", ch.replace("keyevent", "keyspace"), e.1),
        None => e.0.clone(),
    }
}

/// The events of each key, in order.
fn per_key(ev: &[(String, String)]) -> std::collections::BTreeMap<String, Vec<(String, String)>> {
    let mut m = std::collections::BTreeMap::<String, Vec<(String, String)>>::new();
    for e in ev {
        m.entry(key_of(e)).or_default().push(e.clone());
    }
    m
}

#[test]
fn keyspace_events_match_redis_over_a_pipelined_random_stream() {
    let Some(redis) = Server::redis() else {
        eprintln!("redis-server not installed: skipping");
        return;
    };
    let one = Server::ringkv(1, &[]);
    let three = Server::ringkv(3, &[]);
    let mut names = std::collections::BTreeSet::new();
    for (seed, depth, flags) in [
        (7u64, 1usize, "KEA"),
        (11, 16, "KEA"),
        (23, 50, "KEA"),
        (5, 16, "Kl$E"),
    ] {
        let cmds = stream(seed, 600);
        if let Ok(path) = std::env::var("NOTIFY_DUMP") {
            let text: Vec<String> = cmds.iter().map(|c| c.join(" ")).collect();
            std::fs::write(format!("{path}.{seed}"), text.join("\n")).unwrap();
        }
        let (lens, want) = run_stream(redis.port(), flags, &cmds, depth);
        assert!(
            want.len() > 100,
            "the stream should make many events: {}",
            want.len()
        );
        names.extend(
            want.iter()
                .filter_map(|e| e.0.strip_prefix("__keyevent@0__:").map(str::to_string)),
        );
        // One shard: the exact sequence.
        let (got_lens, got) = run_stream(one.port(), flags, &cmds, depth);
        same_sizes(&got_lens, &lens, &cmds, depth, "1 shard");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                g,
                w,
                "seed {seed} depth {depth}: event {i} differs (context {:?})",
                &want[i.saturating_sub(4)..i]
            );
        }
        assert_eq!(got.len(), want.len(), "seed {seed}: number of events");
        // Three shards: each key's events in order (keys live on different
        // shards, whose events may interleave differently).
        let (got_lens, got) = run_stream(three.port(), flags, &cmds, depth);
        same_sizes(&got_lens, &lens, &cmds, depth, "3 shards");
        assert_eq!(
            per_key(&got),
            per_key(&want),
            "seed {seed}: per-key events (3 shards)"
        );
    }
    // The stream covers most of the events there are.
    assert!(names.len() >= 35, "events covered: {names:?}");
}

/// Events of a fixed session (`flags` on), including blocked clients that
/// a push serves and keys that expire lazily and actively.
fn fixed_session(port: u16, flags: &str) -> Vec<(String, String)> {
    let mut w = RawConn::connect(port);
    let mut b = RawConn::connect(port);
    let send = |c: &mut RawConn, a: &[&str]| {
        c.send(&cmd(a));
        read_replies(c, 1)
    };
    send(&mut w, &["FLUSHALL"]);
    send(&mut w, &["CONFIG", "SET", "notify-keyspace-events", flags]);
    let mut sub = subscriber(port);
    // A blocked BLPOP, served by a push from another client.
    b.send(&cmd(&["BLPOP", "bl", "5"]));
    std::thread::sleep(Duration::from_millis(100));
    send(&mut w, &["RPUSH", "bl", "a"]);
    read_replies(&mut b, 1);
    b.send(&cmd(&["BZPOPMIN", "bz", "5"]));
    std::thread::sleep(Duration::from_millis(100));
    send(&mut w, &["ZADD", "bz", "1", "a", "2", "b"]);
    read_replies(&mut b, 1);
    // new and keymiss.
    for a in [
        &["GET", "missing"][..],
        &["SET", "n1", "v"],
        &["SET", "n1", "w"],
        &["LRANGE", "nolist", "0", "-1"],
        &["HSET", "h", "f", "v"],
        &["DEL", "h"],
    ] {
        send(&mut w, a);
    }
    // RESTORE of the string "x" as redis-server 7.0 dumps it.
    let payload = b"\x00\x01x\n\x00\"\x80\x86_\xbd\xe8H\xd0";
    w.send(&resp_cmd(&[b"RESTORE", b"r", b"0", payload]));
    assert_eq!(read_replies(&mut w, 1), b"+OK\r\n");
    // Lazy expiry (the key is read after its deadline) and active expiry
    // (nobody reads it).
    send(&mut w, &["SET", "lazy", "v", "PX", "20"]);
    send(&mut w, &["SET", "active", "v", "PX", "20"]);
    send(&mut w, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    std::thread::sleep(Duration::from_millis(60));
    send(&mut w, &["GET", "lazy"]);
    send(&mut w, &["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
    // Active expiry runs within a second or so.
    let mut ev = Vec::new();
    let rounds = if flags.contains(['x', 'A']) { 40 } else { 3 };
    for _ in 0..rounds {
        ev.extend(events(&mut sub));
        if ev.iter().any(|e: &(String, String)| e.1 == "active") {
            break;
        }
    }
    send(&mut w, &["CONFIG", "SET", "notify-keyspace-events", ""]);
    ev
}

#[test]
fn blocked_pops_expiry_new_and_keymiss_events_match_redis() {
    let Some(redis) = Server::redis() else {
        eprintln!("redis-server not installed: skipping");
        return;
    };
    for flags in ["KEA", "KEAnm", "Ex", "Kn"] {
        let want = fixed_session(redis.port(), flags);
        assert!(!want.is_empty(), "{flags}: redis-server sent no events");
        for shards in [1, 3] {
            let srv = Server::ringkv(shards, &[]);
            let got = fixed_session(srv.port(), flags);
            if shards == 1 {
                assert_eq!(got, want, "{flags}: events (1 shard)");
            } else {
                assert_eq!(
                    per_key(&got),
                    per_key(&want),
                    "{flags}: per-key events (3 shards)"
                );
            }
        }
    }
}

#[test]
fn config_parses_and_prints_classes_as_redis() {
    let Some(redis) = Server::redis() else {
        eprintln!("redis-server not installed: skipping");
        return;
    };
    let srv = Server::ringkv(2, &[]);
    let mut r = redis.client();
    let mut k = srv.client();
    for flags in [
        "KEA",
        "Kg",
        "g$lshzxetd",
        "KEn",
        "KEAmn",
        "E$lz",
        "Kd",
        "",
        "KEAQ",
        "A",
    ] {
        let a = ["CONFIG", "SET", "notify-keyspace-events", flags];
        assert_eq!(run(&mut k, &a), run(&mut r, &a), "CONFIG SET {flags:?}");
        let g = ["CONFIG", "GET", "notify-keyspace-events"];
        assert_eq!(
            run(&mut k, &g),
            run(&mut r, &g),
            "CONFIG GET after {flags:?}"
        );
    }
}
