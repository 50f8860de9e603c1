//! Pub/Sub: byte-for-byte against redis-server, delivery across shards in
//! publish order, and the pubsub output-buffer limit.

use std::time::Duration;

use crate::common::*;

use crate::common::resp_strs as cmd;

/// A scripted session over several connections: (connection, command).
/// PUBSUB CHANNELS is left out (its order is a hash table's in Redis).
const SCRIPT: &[(usize, &[&str])] = &[
    (0, &["SUBSCRIBE", "news", "all"]),
    (1, &["SUBSCRIBE", "sport", "all"]),
    (2, &["PSUBSCRIBE", "n*", "s*"]),
    (3, &["SSUBSCRIBE", "shard-a"]),
    (0, &["GET", "x"]),
    (0, &["PING"]),
    (0, &["PING", "hello"]),
    (1, &["SUBSCRIBE", "sport"]),
    (4, &["PUBLISH", "news", "n1"]),
    (4, &["PUBLISH", "sport", "s1"]),
    (4, &["PUBLISH", "all", "a\r\nb"]),
    (4, &["PUBLISH", "nobody", "x"]),
    (4, &["SPUBLISH", "shard-a", "sa"]),
    (4, &["SPUBLISH", "news", "not-sharded"]),
    (4, &["PUBSUB", "NUMSUB", "news", "all", "missing"]),
    (4, &["PUBSUB", "NUMPAT"]),
    (4, &["PUBSUB", "SHARDNUMSUB", "shard-a"]),
    (4, &["PUBSUB", "NUMSUB"]),
    (4, &["PUBSUB", "CHANNELS", "a", "b"]),
    (4, &["PUBSUB", "FOO"]),
    (0, &["UNSUBSCRIBE", "news"]),
    (0, &["UNSUBSCRIBE", "never"]),
    (2, &["PUNSUBSCRIBE"]),
    (2, &["PUNSUBSCRIBE"]),
    (2, &["GET", "x"]),
    (3, &["SUNSUBSCRIBE"]),
    (1, &["RESET"]),
    (1, &["GET", "x"]),
    (4, &["PUBLISH", "all", "after"]),
    (4, &["HELLO", "3"]),
    (4, &["SUBSCRIBE", "r3"]),
    (4, &["SET", "k", "v"]),
    (4, &["PUBLISH", "r3", "to-self"]),
    (0, &["PUBLISH", "r3", "from-a-subscriber"]),
    (4, &["PUBSUB", "NUMSUB", "r3", "all", "sport"]),
];

/// Runs the script; the output of each step as read (redis-server) or as
/// long as `lens` says (ringkv).
fn run_script(port: u16, lens: Option<&[usize]>) -> Vec<Vec<u8>> {
    let mut conns: Vec<RawConn> = (0..5).map(|_| RawConn::connect(port)).collect();
    let mut outs = Vec::new();
    for (i, (c, args)) in SCRIPT.iter().enumerate() {
        conns[*c].send(&cmd(args));
        // What every connection received after this step, in order.
        let mut step = Vec::new();
        for (j, conn) in conns.iter_mut().enumerate() {
            let got = match lens {
                None => conn.read_idle(Duration::from_millis(60), Duration::from_secs(2)),
                Some(l) => conn.read_len(l[i * 5 + j], Duration::from_secs(5)),
            };
            step.push(got);
        }
        outs.extend(step);
    }
    outs
}

#[test]
fn pubsub_matches_redis_byte_for_byte() {
    let Some(redis) = Server::redis() else {
        eprintln!("redis-server not installed: skipping");
        return;
    };
    let want = run_script(redis.port(), None);
    let lens: Vec<usize> = want.iter().map(|o| o.len()).collect();
    for shards in [1, 3] {
        let srv = Server::ringkv(shards, &[]);
        let got = run_script(srv.port(), Some(&lens));
        // HELLO's reply carries the client id, which differs.
        let mask = mask_hello_id;
        for (i, (w, g)) in want.iter().zip(&got).enumerate() {
            assert_eq!(
                mask(g),
                mask(w),
                "shards {shards}: step {} ({:?}), connection {}",
                i / 5,
                SCRIPT[i / 5].1,
                i % 5
            );
        }
    }
}

/// Reads message frames (RESP2 arrays of bulk strings) off a stream.
#[derive(Default)]
struct Frames {
    buf: Vec<u8>,
    pos: usize,
}

impl Frames {
    fn next(&mut self, c: &mut RawConn) -> Vec<Vec<u8>> {
        loop {
            if let Some((f, used)) = parse_frame(&self.buf[self.pos..]) {
                self.pos += used;
                if self.pos > 1 << 20 {
                    self.buf.drain(..self.pos);
                    self.pos = 0;
                }
                return f;
            }
            let more = c.read_len(1, Duration::from_secs(10));
            assert!(!more.is_empty(), "stream stalled");
            self.buf.extend_from_slice(&more);
        }
    }
}

fn read_messages(c: &mut RawConn, n: usize) -> Vec<Vec<Vec<u8>>> {
    let mut r = Frames::default();
    (0..n).map(|_| r.next(c)).collect()
}

fn parse_frame(b: &[u8]) -> Option<(Vec<Vec<u8>>, usize)> {
    let line = |p: usize| -> Option<(&[u8], usize)> {
        let e = b[p..].windows(2).position(|w| w == b"\r\n")?;
        Some((&b[p..p + e], p + e + 2))
    };
    let (h, mut p) = line(0)?;
    assert_eq!(h[0], b'*', "not an array: {:?}", String::from_utf8_lossy(h));
    let n: usize = std::str::from_utf8(&h[1..]).ok()?.parse().ok()?;
    let mut items = Vec::new();
    for _ in 0..n {
        let (h, q) = line(p)?;
        assert_eq!(h[0], b'$');
        let len: usize = std::str::from_utf8(&h[1..]).ok()?.parse().ok()?;
        if b.len() < q + len + 2 {
            return None;
        }
        items.push(b[q..q + len].to_vec());
        p = q + len + 2;
    }
    Some((items, p))
}

#[test]
fn publishers_reach_subscribers_on_every_shard_in_order() {
    let srv = Server::ringkv(3, &[]);
    // Enough connections that the kernel spreads them over the shards.
    let mut subs: Vec<RawConn> = (0..6).map(|_| RawConn::connect(srv.port())).collect();
    for (i, s) in subs.iter_mut().enumerate() {
        if i % 2 == 0 {
            s.send(&cmd(&["SUBSCRIBE", "feed"]));
            s.expect(b"*3\r\n$9\r\nsubscribe\r\n$4\r\nfeed\r\n:1\r\n");
        } else {
            s.send(&cmd(&["PSUBSCRIBE", "f*d"]));
            s.expect(b"*3\r\n$10\r\npsubscribe\r\n$3\r\nf*d\r\n:1\r\n");
        }
    }
    // Two publishers on their own connections, pipelined.
    let n = 2000;
    let mut pubs: Vec<RawConn> = (0..2).map(|_| RawConn::connect(srv.port())).collect();
    // Counts can lag a subscription made on another shard by one hop.
    let mut p = srv.client();
    for _ in 0..100 {
        let v = ok(&mut p, &["PUBSUB", "NUMSUB", "feed"]);
        if v == arr(vec![bulk("feed"), int(3)]) && ok(&mut p, &["PUBSUB", "NUMPAT"]) == int(1) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut expect_replies = Vec::new();
    for (k, pc) in pubs.iter_mut().enumerate() {
        let mut batch = Vec::new();
        for i in 0..n {
            batch.extend(cmd(&["PUBLISH", "feed", &format!("p{k}-{i}")]));
        }
        pc.send(&batch);
        expect_replies.push(b":6\r\n".repeat(n));
    }
    for (pc, want) in pubs.iter_mut().zip(expect_replies) {
        pc.expect(&want);
    }
    for (i, s) in subs.iter_mut().enumerate() {
        let frames = read_messages(s, 2 * n);
        let mut next = [0usize; 2];
        for f in frames {
            let body = String::from_utf8(f.last().cloned().unwrap()).unwrap();
            let (k, seq) = body[1..].split_once('-').unwrap();
            let (k, seq): (usize, usize) = (k.parse().unwrap(), seq.parse().unwrap());
            assert_eq!(seq, next[k], "subscriber {i}: publisher {k} out of order");
            next[k] += 1;
            let kind = if i % 2 == 0 { "message" } else { "pmessage" };
            assert_eq!(f[0], kind.as_bytes());
        }
        assert_eq!(next, [n, n], "subscriber {i}");
    }
}

#[test]
fn a_subscriber_that_never_reads_is_dropped_at_the_pubsub_limit() {
    let srv = Server::ringkv(2, &[]);
    let mut admin = srv.client();
    ok(
        &mut admin,
        &[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "pubsub 1mb 256kb 60",
        ],
    );
    let mut slow = RawConn::connect(srv.port());
    slow.send(&cmd(&["CLIENT", "SETNAME", "slow"]));
    slow.expect(b"+OK\r\n");
    slow.send(&cmd(&["SUBSCRIBE", "big"]));
    slow.expect(b"*3\r\n$9\r\nsubscribe\r\n$3\r\nbig\r\n:1\r\n");
    let mut fast = RawConn::connect(srv.port());
    fast.send(&cmd(&["SUBSCRIBE", "big"]));
    fast.expect(b"*3\r\n$9\r\nsubscribe\r\n$3\r\nbig\r\n:1\r\n");
    for _ in 0..100 {
        if ok(&mut admin, &["PUBSUB", "NUMSUB", "big"]) == arr(vec![bulk("big"), int(2)]) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // 32 MB in 64 KB messages: far more than the socket buffers hold.
    let payload = "x".repeat(64 * 1024);
    let total = 512;
    // The reading subscriber reports its progress; the publisher stays at
    // most 8 messages ahead of it, so only the other one falls behind.
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen2 = seen.clone();
    let reader = std::thread::spawn(move || {
        let mut r = Frames::default();
        let mut got = 0;
        while got < total {
            let f = r.next(&mut fast);
            assert_eq!(f[0], b"message");
            got += 1;
            seen2.store(got, std::sync::atomic::Ordering::Release);
        }
        (got, fast)
    });
    let mut pubc = RawConn::connect(srv.port());
    for i in 0..total {
        let t0 = std::time::Instant::now();
        while i > seen.load(std::sync::atomic::Ordering::Acquire) + 8 {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "reader stuck at {i}"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        pubc.send(&cmd(&["PUBLISH", "big", &payload]));
        let r = pubc.read_len(4, Duration::from_secs(10));
        assert!(r.starts_with(b":"), "{:?}", String::from_utf8_lossy(&r));
    }
    let (got, _fast) = reader.join().unwrap();
    assert_eq!(got, total, "the reading subscriber got everything");
    // The slow one is gone.
    let list = match ok(&mut admin, &["CLIENT", "LIST"]) {
        redis::Value::BulkString(b) => String::from_utf8(b).unwrap(),
        v => panic!("{v:?}"),
    };
    assert!(!list.contains("name=slow"), "{list}");
    // Its subscription went with it (on every shard's directory).
    let mut numsub = redis::Value::Nil;
    for _ in 0..100 {
        numsub = ok(&mut admin, &["PUBSUB", "NUMSUB", "big"]);
        if numsub == arr(vec![bulk("big"), int(1)]) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(numsub, arr(vec![bulk("big"), int(1)]));
}

/// redis-py's PubSub (get_message, run_in_thread callbacks, patterns,
/// sharded channels; RESP3 too with redis-py 5+) against redis-server and
/// ringkv with 1 and 3 shards.
#[test]
fn redis_py_pubsub() {
    let Some(py) = python_with_redis() else {
        return;
    };
    let script = include_str!("py/test_pubsub.py");
    if let Some(redis) = Server::redis() {
        run_py(&py, "test_pubsub.py", script, redis.port(), "redis-server");
    }
    for shards in [1, 3] {
        let srv = Server::ringkv(shards, &[]);
        run_py(
            &py,
            "test_pubsub.py",
            script,
            srv.port(),
            &format!("ringkv --shards {shards}"),
        );
    }
}
