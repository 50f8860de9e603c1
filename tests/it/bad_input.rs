//! Malformed and adversarial input on raw sockets.
//!
//! Expected bytes are exactly what redis-server 7.0 sends (checked against
//! redis-server 7.0.15): protocol errors reply `-ERR Protocol error: ...`
//! and close the connection; things Redis tolerates (null/empty multibulk,
//! empty inline lines, bare `\n`) are tolerated.  While the abuse runs, an
//! observer client keeps issuing commands and must get correct replies
//! throughout, and afterwards the server must still answer a fresh PING.
//! Every test runs with `--shards 1`, `--shards 2` and `--shards 2 --io epoll`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::*;
use redis::Value;

const EOF_WAIT: Duration = Duration::from_secs(3);

/// Runs `abuse` while an observer connection keeps doing INCR/GET and
/// checking the replies; then checks the server is alive.
fn with_observer(abuse: impl Fn(&Server)) {
    for (shards, extra) in CONFIGS {
        eprintln!("--- running with --shards {shards} {extra:?}");
        let mut srv = Server::ringkv(shards, extra);
        let mut con = srv.client();
        assert_eq!(
            run(&mut con, &["SET", "obs:fixed", "stable"]),
            Ok(Value::Okay)
        );
        let stop = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(AtomicUsize::new(0));
        let observer = {
            let (stop, progress) = (stop.clone(), progress.clone());
            thread::spawn(move || -> usize {
                let start = Instant::now();
                let mut n = 0i64;
                while !stop.load(Ordering::Relaxed)
                    && start.elapsed() < Duration::from_secs(60)
                    && n < 1_000_000
                {
                    n += 1;
                    assert_eq!(run(&mut con, &["INCR", "obs:counter"]), Ok(Value::Int(n)));
                    assert_eq!(run(&mut con, &["GET", "obs:fixed"]), Ok(bulk("stable")));
                    progress.store(n as usize, Ordering::Relaxed);
                    thread::sleep(Duration::from_millis(1));
                }
                n as usize
            })
        };
        // The observer is running before the abuse starts, and gets more
        // correct replies after it.
        let wait_progress = |min: usize| {
            let deadline = Instant::now() + Duration::from_secs(10);
            while progress.load(Ordering::Relaxed) < min && Instant::now() < deadline {
                if observer.is_finished() {
                    break;
                }
                thread::sleep(Duration::from_millis(1));
            }
        };
        wait_progress(1);
        abuse(&srv);
        wait_progress(progress.load(Ordering::Relaxed) + 2);
        stop.store(true, Ordering::Relaxed);
        let n = observer.join().expect("observer got a wrong reply");
        assert!(n >= 3, "observer made no progress ({n} commands)");
        srv.assert_alive();
        let mut fresh = srv.client();
        assert_eq!(
            run(&mut fresh, &["GET", "obs:counter"]),
            Ok(bulk(&n.to_string()))
        );
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Sends `input` and asserts the server replies exactly `expected` and
/// then closes the connection.
#[track_caller]
fn expect_reply_and_close(srv: &Server, input: &[u8], expected: &[u8]) {
    let mut c = srv.raw_conn();
    c.send(input);
    let (got, closed) = c.read_to_eof(EOF_WAIT);
    assert_eq!(
        lossy(&got),
        lossy(expected),
        "reply to {:?}",
        lossy(&input[..input.len().min(60)])
    );
    assert!(
        closed,
        "connection must be closed after {:?}",
        lossy(&input[..input.len().min(60)])
    );
}

/// Sends `input`, expects exactly `expected`, then checks the same
/// connection still works (PING -> PONG).
#[track_caller]
fn expect_reply_and_open(srv: &Server, input: &[u8], expected: &[u8]) {
    let mut c = srv.raw_conn();
    c.send(input);
    c.expect(expected);
    c.send(b"*1\r\n$4\r\nPING\r\n");
    c.expect(b"+PONG\r\n");
    // Nothing else was sent.
    let extra = c.read_idle(Duration::from_millis(100), Duration::from_secs(1));
    assert!(
        extra.is_empty(),
        "unexpected extra bytes {:?} after {:?}",
        lossy(&extra),
        lossy(input)
    );
}

#[test]
fn protocol_errors_reply_and_close() {
    with_observer(|srv| {
        let mbulk = b"-ERR Protocol error: invalid multibulk length\r\n";
        let bulk_len = b"-ERR Protocol error: invalid bulk length\r\n";
        expect_reply_and_close(srv, b"*99999999999\r\n", mbulk);
        expect_reply_and_close(srv, b"*2147483648\r\n", mbulk);
        expect_reply_and_close(srv, b"*abc\r\n", mbulk);
        expect_reply_and_close(srv, b"*\r\n", mbulk);
        expect_reply_and_close(srv, b"*1\r\n$2147483648\r\n", bulk_len);
        expect_reply_and_close(srv, b"*1\r\n$536870913\r\n", bulk_len);
        expect_reply_and_close(srv, b"*1\r\n$-5\r\n", bulk_len);
        expect_reply_and_close(srv, b"*1\r\n$-1\r\n", bulk_len);
        expect_reply_and_close(srv, b"*1\r\n$abc\r\n", bulk_len);
        expect_reply_and_close(srv, b"*1\r\n$\r\n", bulk_len);
        expect_reply_and_close(
            srv,
            b"*1\r\nPING\r\n",
            b"-ERR Protocol error: expected '$', got 'P'\r\n",
        );
        expect_reply_and_close(
            srv,
            b"*1\r\n:1\r\n",
            b"-ERR Protocol error: expected '$', got ':'\r\n",
        );
        expect_reply_and_close(
            srv,
            b"*2\r\n$3\r\nGET\r\nfoo\r\n",
            b"-ERR Protocol error: expected '$', got 'f'\r\n",
        );
        // Replies to earlier commands in the same read are still sent.
        expect_reply_and_close(
            srv,
            b"*1\r\n$4\r\nPING\r\n*99999999999\r\n",
            b"+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n",
        );
        // Over-long header lines and inline requests.
        let mut long_count = b"*".to_vec();
        long_count.extend(std::iter::repeat_n(b'1', 70_000));
        expect_reply_and_close(
            srv,
            &long_count,
            b"-ERR Protocol error: too big mbulk count string\r\n",
        );
        let mut long_bulk = b"*1\r\n$".to_vec();
        long_bulk.extend(std::iter::repeat_n(b'1', 70_000));
        expect_reply_and_close(
            srv,
            &long_bulk,
            b"-ERR Protocol error: too big bulk count string\r\n",
        );
        let long_inline = vec![b'x'; 70_000];
        expect_reply_and_close(
            srv,
            &long_inline,
            b"-ERR Protocol error: too big inline request\r\n",
        );
    });
}

#[test]
fn inline_commands_and_unbalanced_quotes() {
    with_observer(|srv| {
        expect_reply_and_open(srv, b"PING\r\n", b"+PONG\r\n");
        expect_reply_and_open(srv, b"PING\n", b"+PONG\r\n");
        expect_reply_and_open(srv, b"ping hello\r\n", b"$5\r\nhello\r\n");
        expect_reply_and_open(srv, b"set a b\r\n", b"+OK\r\n");
        expect_reply_and_open(srv, b"get a\r\n", b"$1\r\nb\r\n");
        expect_reply_and_open(
            srv,
            b"set k v\r\nget k\nexists k a nope\r\n",
            b"+OK\r\n$1\r\nv\r\n:2\r\n",
        );
        expect_reply_and_open(
            srv,
            b"set \"sp ace\" \"v\\x41l\"\r\nget \"sp ace\"\r\n",
            b"+OK\r\n$3\r\nvAl\r\n",
        );
        expect_reply_and_open(srv, b"echo \"a\\nb\"\r\n", b"$3\r\na\nb\r\n");
        expect_reply_and_open(srv, b"echo ''\r\n", b"$0\r\n\r\n");
        expect_reply_and_open(srv, b"get nosuchkey\r\n", b"$-1\r\n");
        expect_reply_and_open(srv, b"\r\n\r\nping\r\n", b"+PONG\r\n");
        expect_reply_and_open(srv, b"   \r\nping\r\n", b"+PONG\r\n");
        expect_reply_and_open(
            srv,
            b"get\r\n",
            b"-ERR wrong number of arguments for 'get' command\r\n",
        );

        let unbalanced = b"-ERR Protocol error: unbalanced quotes in request\r\n";
        expect_reply_and_close(srv, b"set \"foo bar\r\n", unbalanced);
        expect_reply_and_close(srv, b"set 'a b\r\n", unbalanced);
        expect_reply_and_close(srv, b"set \"a\"b c\r\n", unbalanced);
        expect_reply_and_close(srv, b"echo 'it''s'\r\n", unbalanced);
        // The unbalanced SET did not happen.
        let mut con = srv.client();
        assert_eq!(
            run(&mut con, &["EXISTS", "foo bar", "\"foo"]),
            Ok(Value::Int(0))
        );
    });
}

#[test]
fn tolerated_odd_frames() {
    with_observer(|srv| {
        // Null and empty multibulks are silently skipped.
        expect_reply_and_open(srv, b"*-1\r\n*1\r\n$4\r\nping\r\n", b"+PONG\r\n");
        expect_reply_and_open(srv, b"*0\r\n*1\r\n$4\r\nping\r\n", b"+PONG\r\n");
        expect_reply_and_open(srv, b"*-5\r\n*1\r\n$4\r\nping\r\n", b"+PONG\r\n");
        expect_reply_and_open(
            srv,
            b"*3\r\n$3\r\nset\r\n$1\r\na\r\n$1\r\nb\r\n*-1\r\n*1\r\n$4\r\nping\r\n",
            b"+OK\r\n+PONG\r\n",
        );
        // A line starting with '$' (or '+', ':') is an inline command.
        expect_reply_and_open(
            srv,
            b"$-5\r\n",
            b"-ERR unknown command '$-5', with args beginning with: \r\n",
        );
        expect_reply_and_open(
            srv,
            b"$2147483648\r\n",
            b"-ERR unknown command '$2147483648', with args beginning with: \r\n",
        );
        expect_reply_and_open(
            srv,
            b"+PING\r\n",
            b"-ERR unknown command '+PING', with args beginning with: \r\n",
        );
        expect_reply_and_open(
            srv,
            b"*1\r\n$0\r\n\r\n",
            b"-ERR unknown command '', with args beginning with: \r\n",
        );
        expect_reply_and_open(
            srv,
            b"\xff garbage\r\n",
            b"-ERR unknown command '\xff', with args beginning with: 'garbage' \r\n",
        );
    });
}

#[test]
fn binary_garbage_does_not_hurt_the_server() {
    with_observer(|srv| {
        // Redis treats a NUL-led line as an incomplete inline request and
        // stays silent; any reply must at least be an error line.
        for garbage in [
            &b"\x00\xff garbage\r\n"[..],
            b"\x00\x00\x00\x00",
            b"\xde\xad\xbe\xef\r\n\x00\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", // TLS ClientHello-ish
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        ] {
            let mut c = srv.raw_conn();
            c.send(garbage);
            let got = c.read_idle(Duration::from_millis(200), Duration::from_secs(2));
            assert!(
                got.is_empty() || got.starts_with(b"-"),
                "reply to garbage {:?} must be empty or an error, got {:?}",
                lossy(garbage),
                lossy(&got)
            );
            assert!(
                !got.windows(3).any(|w| w == b"+OK"),
                "garbage must not execute anything"
            );
        }
        // Random byte soup on several connections.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20 {
            let mut soup = Vec::with_capacity(512);
            for _ in 0..512 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                soup.push((x >> 24) as u8);
            }
            let mut c = srv.raw_conn();
            let _ = c.try_send(&soup);
            let _ = c.read_idle(Duration::from_millis(20), Duration::from_millis(200));
        }
    });
}

#[test]
fn truncated_frames_and_half_pipelines() {
    with_observer(|srv| {
        // Truncated frames, then close.
        for frame in [
            &b"*3\r\n$3\r\nSET\r\n$1\r\nt\r\n$1"[..],
            b"*3\r\n$3\r\nSET\r\n$1\r\nt\r\n$5\r\nab",
            b"*1\r\n$4\r\nPI",
            b"*2\r\n",
            b"*",
            b"$",
            b"*1\r\n$10\r\nabc",
            b"*1\r\n$4\r\nPING",
            b"*1\r\n$4\r\nPING\r",
            b"set t v", // inline without newline
        ] {
            let mut c = srv.raw_conn();
            c.send(frame);
            let got = c.read_idle(Duration::from_millis(50), Duration::from_millis(500));
            assert!(
                got.is_empty(),
                "no reply to a truncated frame {:?}: {:?}",
                lossy(frame),
                lossy(&got)
            );
            drop(c);
        }
        let mut con = srv.client();
        assert_eq!(run(&mut con, &["EXISTS", "t"]), Ok(Value::Int(0)));
        assert_eq!(run(&mut con, &["PING"]), Ok(status("PONG")));

        // Half a pipeline: 50 complete SETs plus half of the 51st, then
        // disconnect without reading any reply.
        let mut pipeline = Vec::new();
        for i in 0..50 {
            pipeline.extend(resp_cmd(&[b"SET", format!("hp:{i}").as_bytes(), b"v"]));
        }
        let last = resp_cmd(&[b"SET", b"hp:50", b"v"]);
        pipeline.extend_from_slice(&last[..last.len() / 2]);
        let mut c = srv.raw_conn();
        c.send(&pipeline);
        drop(c);
        // Complete commands received before the close are executed.
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut exists = 0;
        while Instant::now() < deadline {
            let mut e = redis::cmd("EXISTS");
            for i in 0..=50 {
                e.arg(format!("hp:{i}"));
            }
            exists = match exec(&mut con, &e) {
                Ok(Value::Int(n)) => n,
                other => panic!("EXISTS {other:?}"),
            };
            if exists == 50 {
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(exists, 50, "the 50 complete SETs ran, the half one did not");
        assert_eq!(run(&mut con, &["EXISTS", "hp:50"]), Ok(Value::Int(0)));

        // A client that pipelines big replies and vanishes (EPIPE/RST on
        // the server's writes must not kill it).
        let big = vec![b'z'; 256 * 1024];
        assert_eq!(
            exec(&mut con, redis::cmd("SET").arg("big").arg(&big[..])),
            Ok(Value::Okay)
        );
        for _ in 0..3 {
            let mut c = srv.raw_conn();
            let mut gets = Vec::new();
            for _ in 0..64 {
                gets.extend(resp_cmd(&[b"GET", b"big"]));
            }
            let _ = c.try_send(&gets);
            let _ = c.read_len(10, Duration::from_secs(2));
            drop(c);
        }
        assert_eq!(
            run(&mut con, &["STRLEN", "big"]),
            Ok(Value::Int(256 * 1024))
        );
    });
}

#[test]
fn fragmented_and_large_pipelines() {
    with_observer(|srv| {
        // One byte at a time.
        let mut c = srv.raw_conn();
        let mut req = Vec::new();
        let mut expected = Vec::new();
        for i in 0..20 {
            let v = format!("val{i}");
            req.extend(resp_cmd(&[
                b"SET",
                format!("frag{i}").as_bytes(),
                v.as_bytes(),
            ]));
            req.extend(resp_cmd(&[b"GET", format!("frag{i}").as_bytes()]));
            expected.extend_from_slice(b"+OK\r\n");
            expected.extend_from_slice(format!("${}\r\n{v}\r\n", v.len()).as_bytes());
        }
        req.extend_from_slice(b"PING\r\n");
        expected.extend_from_slice(b"+PONG\r\n");
        for b in &req {
            c.send(std::slice::from_ref(b));
        }
        c.expect(&expected);

        // 10000 pipelined commands in one write.
        let mut c = srv.raw_conn();
        let mut req = Vec::new();
        for _ in 0..5000 {
            req.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
            req.extend(resp_cmd(&[b"INCR", b"pipe"]));
        }
        let writer = {
            let mut w = c.stream.try_clone().expect("clone stream");
            thread::spawn(move || {
                use std::io::Write;
                w.write_all(&req).expect("write pipeline");
            })
        };
        let mut expected = Vec::new();
        for i in 1..=5000 {
            expected.extend_from_slice(b"+PONG\r\n");
            expected.extend_from_slice(format!(":{i}\r\n").as_bytes());
        }
        let got = c.read_len(expected.len(), Duration::from_secs(20));
        writer.join().unwrap();
        assert_eq!(got.len(), expected.len(), "all pipelined replies arrive");
        assert!(got == expected, "pipelined replies in order");

        // A 4 MiB value round trip in one frame.
        let big: Vec<u8> = (0..4 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
        let mut c = srv.raw_conn();
        let set = resp_cmd(&[b"SET", b"huge", &big]);
        let writer = {
            let mut w = c.stream.try_clone().expect("clone stream");
            thread::spawn(move || {
                use std::io::Write;
                w.write_all(&set).expect("write big SET");
                w.write_all(&resp_cmd(&[b"GET", b"huge"]))
                    .expect("write GET");
            })
        };
        let mut expected = b"+OK\r\n".to_vec();
        expected.extend_from_slice(format!("${}\r\n", big.len()).as_bytes());
        expected.extend_from_slice(&big);
        expected.extend_from_slice(b"\r\n");
        let got = c.read_len(expected.len(), Duration::from_secs(20));
        writer.join().unwrap();
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "4 MiB value round-trips intact");
    });
}

#[test]
fn connection_churn() {
    with_observer(|srv| {
        for i in 0..200 {
            let mut c = srv.raw_conn();
            if i % 2 == 0 {
                c.send(b"*1\r\n$4\r\nPING\r\n");
                c.expect(b"+PONG\r\n");
            }
            if i % 5 == 0 {
                c.shutdown_write();
            }
        }
        // Many simultaneous connections.
        let conns: Vec<RawConn> = (0..100).map(|_| srv.raw_conn()).collect();
        for mut c in conns {
            c.send(b"PING\r\n");
            c.expect(b"+PONG\r\n");
        }
    });
}

// ----- client buffer limits ------------------------------------------------

/// One `INFO clients` field as a number.
fn clients_field(con: &mut redis::Connection, field: &str) -> u64 {
    let text: String = redis::cmd("INFO").arg("clients").query(con).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("INFO has no {field}:\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

/// False under a `RINGKV_TEST_BIN=.../redis-server` override (for checks
/// of ringkv's own wording or behaviour).
fn is_ringkv_under_test() -> bool {
    !ringkv_bin()
        .file_name()
        .map(|n| n.to_string_lossy().contains("redis-server"))
        .unwrap_or(false)
}

/// Polls `cond` every 50 ms for up to `limit`; returns whether it held.
fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if t0.elapsed() > limit {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// The server's resident memory (VmRSS) in bytes.
fn rss_bytes(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

#[test]
fn output_buffer_limit_config_round_trips() {
    let mut srv = Server::ringkv(1, &[]);
    let mut con = srv.client();
    let get = |con: &mut redis::Connection| -> String {
        let v: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("client-output-buffer-limit")
            .query(con)
            .unwrap();
        v[1].clone()
    };
    assert_eq!(
        get(&mut con),
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
    );
    // Only the classes given change; `replica` is `slave`.
    ok(
        &mut con,
        &[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "pubsub 1mb 2kb 30 replica 1k 2 3",
        ],
    );
    assert_eq!(
        get(&mut con),
        "normal 0 0 0 slave 1000 2 3 pubsub 1048576 2048 30"
    );
    let fail = |why: &str| {
        format!(
            "ERR CONFIG SET failed (possibly related to argument 'client-output-buffer-limit') - {why}"
        )
    };
    for (v, why) in [
        (
            "normal 1 2",
            "Wrong number of arguments in buffer limit configuration.",
        ),
        (
            "master 1 1 1",
            "Invalid client class specified in buffer limit configuration.",
        ),
        (
            "normal 10mbs 1 1",
            "Error in hard, soft or soft_seconds setting in buffer limit configuration.",
        ),
        (
            "normal 1 1 -1",
            "Error in hard, soft or soft_seconds setting in buffer limit configuration.",
        ),
    ] {
        assert_eq!(
            err(
                &mut con,
                &["CONFIG", "SET", "client-output-buffer-limit", v]
            ),
            fail(why),
            "{v}"
        );
    }
    assert_eq!(
        get(&mut con),
        "normal 0 0 0 slave 1000 2 3 pubsub 1048576 2048 30"
    );
    // The two input limits refuse less than 1 MB, as Redis does.
    for name in ["proto-max-bulk-len", "client-query-buffer-limit"] {
        assert_eq!(
            err(&mut con, &["CONFIG", "SET", name, "1000"]),
            format!(
                "ERR CONFIG SET failed (possibly related to argument '{name}') - argument must be between 1048576 and 9223372036854775807 inclusive"
            )
        );
    }
    srv.assert_alive();
}

#[test]
fn input_limits_set_at_run_time_apply() {
    for (shards, extra) in CONFIGS {
        let mut srv = Server::ringkv(shards, extra);
        let mut con = srv.client();
        ok(&mut con, &["CONFIG", "SET", "proto-max-bulk-len", "1mb"]);
        expect_reply_and_close(
            &srv,
            b"*1\r\n$1048577\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        );
        // A bulk at the limit is accepted (and waited for).
        let mut c = srv.raw_conn();
        c.send(b"*1\r\n$1048576\r\n");
        assert!(c
            .read_idle(Duration::from_millis(200), Duration::from_secs(1))
            .is_empty());
        ok(&mut con, &["CONFIG", "SET", "proto-max-bulk-len", "512mb"]);
        // A query buffer over client-query-buffer-limit closes the client
        // without a reply.
        ok(
            &mut con,
            &["CONFIG", "SET", "client-query-buffer-limit", "1mb"],
        );
        let mut c = srv.raw_conn();
        let mut req = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3000000\r\n".to_vec();
        req.extend(std::iter::repeat_n(b'y', 1_500_000));
        let _ = c.try_send(&req);
        let (got, closed) = c.read_to_eof(Duration::from_secs(5));
        assert!(closed && got.is_empty(), "{}", lossy(&got));
        assert_eq!(run(&mut con, &["EXISTS", "k"]), Ok(Value::Int(0)));
        srv.assert_alive();
    }
}

#[test]
fn output_buffer_limit_disconnects_a_client_that_does_not_read() {
    for (shards, extra) in CONFIGS {
        eprintln!("--- running with --shards {shards} {extra:?}");
        let mut srv = Server::ringkv(shards, extra);
        let mut con = srv.client();
        ok(
            &mut con,
            &[
                "CONFIG",
                "SET",
                "client-output-buffer-limit",
                "normal 1mb 0 0",
            ],
        );
        let v = "v".repeat(100_000);
        ok(&mut con, &["SET", "big", &v]);
        // 1000 GETs: 100 MB of replies it never reads.
        let mut slow = srv.raw_conn();
        slow.send(&b"GET big\r\n".repeat(1000));
        assert!(
            wait_for(Duration::from_secs(10), || clients_field(
                &mut con,
                "connected_clients"
            ) == 1),
            "the client over its output limit must be closed"
        );
        let (got, closed) = slow.read_to_eof(Duration::from_secs(10));
        assert!(closed, "connection closed");
        assert!(got.len() < 50_000_000, "got {} bytes", got.len());
        // Everyone else is served.
        assert_eq!(run(&mut con, &["GET", "big"]), Ok(bulk(&v)));
        let mut other = srv.raw_conn();
        other.send(b"GET big\r\n");
        let reply = other.read_len(100_011, Duration::from_secs(5));
        assert_eq!(reply.len(), 100_011);
        srv.assert_alive();
        if is_ringkv_under_test() {
            let log = srv.log();
            assert!(
                log.contains("exceed the normal class client-output-buffer-limit"),
                "{log}"
            );
        }
    }
}

#[test]
fn info_reports_recent_max_client_buffers() {
    for (shards, extra) in CONFIGS {
        eprintln!("--- running with --shards {shards} {extra:?}");
        let mut srv = Server::ringkv(shards, extra);
        let mut con = srv.client();
        ok(&mut con, &["SET", "big", &"v".repeat(100_000)]);
        // 20 MB of replies left unread, and half of a 2 MB request.
        let mut slow = srv.raw_conn();
        slow.send(&b"GET big\r\n".repeat(200));
        let mut part = srv.raw_conn();
        let mut req = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000\r\n".to_vec();
        req.extend(std::iter::repeat_n(b'y', 1_000_000));
        part.send(&req);
        let (mut inp, mut out) = (0, 0);
        let seen = wait_for(Duration::from_secs(10), || {
            inp = clients_field(&mut con, "client_recent_max_input_buffer");
            out = clients_field(&mut con, "client_recent_max_output_buffer");
            inp >= 900_000 && out >= 1_000_000
        });
        assert!(seen, "input peak {inp}, output peak {out}");
        drop((slow, part));
        srv.assert_alive();
    }
}

#[test]
fn query_buffer_shrinks_after_a_big_request() {
    for (shards, extra) in CONFIGS {
        eprintln!("--- running with --shards {shards} {extra:?}");
        let mut srv = Server::ringkv(shards, extra);
        let mut big = srv.client();
        ok(&mut big, &["CLIENT", "SETNAME", "big"]);
        ok(&mut big, &["SET", "k", &"x".repeat(10 << 20)]);
        let mut con = srv.client();
        let mut line = String::new();
        let shrunk = wait_for(Duration::from_secs(10), || {
            let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut con).unwrap();
            line = list
                .lines()
                .find(|l| l.contains(" name=big "))
                .unwrap_or_default()
                .to_string();
            let field = |f: &str| -> u64 {
                line.split(' ')
                    .find_map(|kv| kv.strip_prefix(f))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(u64::MAX)
            };
            field("qbuf=") == 0 && field("qbuf-free=") <= 32 * 1024
        });
        assert!(shrunk, "query buffer still big: {line}");
        // The client still works.
        assert_eq!(run(&mut big, &["STRLEN", "k"]), Ok(Value::Int(10 << 20)));
        srv.assert_alive();
    }
}

#[test]
fn slow_reader_memory_stays_bounded() {
    for (shards, extra) in CONFIGS {
        eprintln!("--- running with --shards {shards} {extra:?}");
        let mut srv = Server::ringkv(shards, extra);
        let mut con = srv.client();
        let v = "v".repeat(1 << 20);
        ok(&mut con, &["SET", "big", &v]);
        let base = rss_bytes(srv.pid());
        // 1000 GETs of 1 MB: 1 GB of replies, not read for 2 s.
        let n = 1000;
        let mut slow = srv.raw_conn();
        slow.send(&b"GET big\r\n".repeat(n));
        let mut peak = 0;
        for _ in 0..20 {
            thread::sleep(Duration::from_millis(100));
            peak = peak.max(rss_bytes(srv.pid()));
        }
        eprintln!(
            "rss before {} MB, peak while not reading {} MB",
            base >> 20,
            peak >> 20
        );
        // Redis has no such bound (its normal class is unlimited).
        if is_ringkv_under_test() {
            assert!(
                peak < base + (512 << 20),
                "server memory grew from {} MB to {} MB",
                base >> 20,
                peak >> 20
            );
        }
        // Reading resumes the client: every reply arrives, in full.
        let one = format!("${}\r\n{v}\r\n", v.len()).into_bytes();
        let got = slow.read_len(one.len() * n, Duration::from_secs(120));
        assert_eq!(got.len(), one.len() * n);
        assert!(got.chunks(one.len()).all(|c| c == one.as_slice()));
        assert_eq!(run(&mut con, &["PING"]), Ok(status("PONG")));
        srv.assert_alive();
    }
}
