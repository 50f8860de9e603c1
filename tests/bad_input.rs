//! Malformed and adversarial input on raw sockets.
//!
//! Expected bytes are exactly what redis-server 7.0 sends (checked against
//! redis-server 7.0.15): protocol errors reply `-ERR Protocol error: ...`
//! and close the connection; things Redis tolerates (null/empty multibulk,
//! empty inline lines, bare `\n`) are tolerated.  While the abuse runs, an
//! observer client keeps issuing commands and must get correct replies
//! throughout, and afterwards the server must still answer a fresh PING.
//! Every test runs with `--shards 1`, `--shards 2` and `--shards 2 --io epoll`.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
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
