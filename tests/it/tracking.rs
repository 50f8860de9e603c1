//! Client-side caching (CLIENT TRACKING): replies and invalidation frames
//! byte for byte against redis-server, RESP2 redirection, a broken
//! redirect, and invalidations reaching readers on every shard.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::common::*;

fn cmd(line: &str) -> Vec<u8> {
    let a: Vec<&[u8]> = line.split(' ').map(|s| s.as_bytes()).collect();
    resp_cmd(&a)
}

/// Sends each line and reads what comes back (until idle on redis-server;
/// as many bytes as redis-server sent on ringkv).
fn session(port: u16, lines: &[&str], lens: Option<&[usize]>) -> Vec<Vec<u8>> {
    let mut c = RawConn::connect(port);
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        c.send(&cmd(l));
        out.push(match lens {
            None => c.read_idle(Duration::from_millis(80), Duration::from_secs(5)),
            Some(n) => c.read_len(n[i], Duration::from_secs(5)),
        });
    }
    out
}

#[test]
fn tracking_replies_and_invalidations_match_redis() {
    let Some(redis) = Server::redis() else {
        eprintln!("redis-server not installed: skipping");
        return;
    };
    let lines = [
        "CLIENT TRACKINGINFO",
        "CLIENT GETREDIR",
        "CLIENT CACHING YES",
        "CLIENT TRACKING ON PREFIX foo",
        "CLIENT TRACKING ON OPTIN OPTOUT",
        "CLIENT TRACKING ON BCAST OPTIN",
        "CLIENT TRACKING ON REDIRECT 999999",
        "CLIENT TRACKING ON REDIRECT abc",
        "CLIENT TRACKING ON BCAST PREFIX foo PREFIX foobar",
        "CLIENT TRACKING MAYBE",
        "CLIENT TRACKING ON BOGUS",
        "HELLO 3",
        "CLIENT TRACKING ON",
        "GET x",
        "GET y",
        "SET x 1",
        "MGET {t}a {t}b {t}c",
        "MSET {t}a 1 {t}c 2",
        "SET y 2",
        "SET y 3",
        "MULTI",
        "GET m1",
        "GET {t}m2",
        "EXEC",
        "SET m1 x",
        "SET {t}m2 x",
        "EVAL return(redis.call('GET',KEYS[1])) 1 m3",
        "SET m3 x",
        "CLIENT TRACKINGINFO",
        "CLIENT GETREDIR",
        "HGET h f",
        "HSET h f v",
        "FLUSHALL",
        "CLIENT TRACKING ON BCAST",
        "CLIENT TRACKING ON OPTIN",
        "CLIENT TRACKING OFF",
        "CLIENT TRACKING ON BCAST PREFIX a PREFIX b NOLOOP",
        "SET abc 1",
        "CLIENT TRACKING ON BCAST PREFIX ab",
        "CLIENT TRACKING ON BCAST PREFIX c",
        "CLIENT TRACKINGINFO",
        "CLIENT TRACKING OFF",
        "CLIENT TRACKING ON OPTOUT",
        "CLIENT CACHING YES",
        "CLIENT CACHING NO",
        "GET q",
        "SET q 1",
        "GET q",
        "SET q 2",
        "CLIENT TRACKING ON OPTIN",
        "CLIENT TRACKING OFF",
        "CLIENT TRACKING ON OPTIN NOLOOP",
        "CLIENT CACHING NO",
        "CLIENT CACHING YES",
        "CLIENT TRACKINGINFO",
        "GET q",
        "CLIENT TRACKINGINFO",
        "SET q 3",
        "CLIENT TRACKING OFF",
        "CLIENT TRACKINGINFO",
        "RESET",
    ];
    let want = session(redis.port(), &lines, None);
    let lens: Vec<usize> = want.iter().map(|w| w.len()).collect();
    for shards in [1, 3] {
        let srv = Server::ringkv(shards, &[]);
        let got = session(srv.port(), &lines, Some(&lens));
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                mask_hello_id(g),
                mask_hello_id(w),
                "shards {shards}: {:?}",
                lines[i]
            );
        }
    }
}

/// A RESP2 redirect client subscribed to `__redis__:invalidate`, then the
/// redirect client leaves: the RESP3 tracking client is told once.
fn redirect_session(port: u16) -> Vec<String> {
    let mut a = RawConn::connect(port);
    let mut b = RawConn::connect(port);
    let mut c = RawConn::connect(port);
    let idle = |x: &mut RawConn| x.read_idle(Duration::from_millis(150), Duration::from_secs(5));
    a.send(&cmd("CLIENT ID"));
    let id_line = idle(&mut a);
    let aid = String::from_utf8_lossy(&id_line[1..id_line.len() - 2]).into_owned();
    let mut log = Vec::new();
    let mut note = |who: &str, b: Vec<u8>| {
        log.push(format!(
            "{who}: {}",
            String::from_utf8_lossy(&b).replace(&format!(":{aid}\r\n"), ":<id>\r\n")
        ))
    };
    a.send(&cmd("SUBSCRIBE __redis__:invalidate"));
    note("a", idle(&mut a));
    b.send(&cmd(&format!("CLIENT TRACKING ON REDIRECT {aid}")));
    note("b", idle(&mut b));
    b.send(&cmd("GET k"));
    note("b", idle(&mut b));
    b.send(&cmd("MGET k2 k3 k4"));
    note("b", idle(&mut b));
    c.send(&cmd("SET k 1"));
    note("c", idle(&mut c));
    note("a", idle(&mut a));
    for k in ["k2", "k3", "k4"] {
        c.send(&cmd(&format!("SET {k} 1")));
        note("c", idle(&mut c));
        note("a", idle(&mut a));
    }
    c.send(&cmd("FLUSHALL"));
    note("c", idle(&mut c));
    note("a", idle(&mut a));
    drop(a);
    std::thread::sleep(Duration::from_millis(100));
    b.send(&cmd("HELLO 3"));
    idle(&mut b);
    b.send(&cmd("GET k"));
    note("b", idle(&mut b));
    c.send(&cmd("SET k 2"));
    note("c", idle(&mut c));
    note("b", idle(&mut b));
    c.send(&cmd("SET k 3"));
    note("c", idle(&mut c));
    b.send(&cmd("CLIENT TRACKINGINFO"));
    note("b", idle(&mut b));
    b.send(&cmd("CLIENT GETREDIR"));
    note("b", idle(&mut b));
    log
}

#[test]
fn resp2_redirection_and_a_broken_redirect_match_redis() {
    let Some(redis) = Server::redis() else {
        eprintln!("redis-server not installed: skipping");
        return;
    };
    let want = redirect_session(redis.port());
    assert!(want
        .iter()
        .any(|l| l.contains("__redis__:invalidate\r\n*1\r\n$1\r\nk\r\n")));
    for shards in [1, 3] {
        let srv = Server::ringkv(shards, &[]);
        let got = redirect_session(srv.port());
        assert_eq!(got, want, "shards {shards}");
    }
}

/// The keys named by RESP3 invalidation frames in `b`.
fn invalidated(b: &[u8]) -> Vec<String> {
    let s = String::from_utf8_lossy(b);
    let mut keys = Vec::new();
    for part in s.split(">2\r\n$10\r\ninvalidate\r\n").skip(1) {
        let mut lines = part.split("\r\n");
        let n: usize = lines.next().unwrap()[1..].parse().unwrap();
        for _ in 0..n {
            lines.next();
            keys.push(lines.next().unwrap().to_string());
        }
    }
    keys
}

#[test]
fn invalidations_reach_readers_on_every_shard() {
    let srv = Server::ringkv(3, &[]);
    let keys: Vec<String> = (0..40).map(|i| format!("key:{i}")).collect();
    let mut readers: Vec<RawConn> = (0..4).map(|_| RawConn::connect(srv.port())).collect();
    for (i, r) in readers.iter_mut().enumerate() {
        r.send(&cmd("HELLO 3"));
        r.read_idle(Duration::from_millis(50), Duration::from_secs(2));
        r.send(&cmd("CLIENT TRACKING ON"));
        r.expect(b"+OK\r\n");
        // Half the readers read key by key, pipelined; the others with
        // one MGET spanning every shard.
        let mut buf = Vec::new();
        if i % 2 == 0 {
            for k in &keys {
                buf.extend_from_slice(&cmd(&format!("GET {k}")));
            }
            r.send(&buf);
            r.read_len(keys.len() * 3, Duration::from_secs(5));
        } else {
            r.send(&cmd(&format!("MGET {}", keys.join(" "))));
            r.read_len(4 + keys.len() * 3, Duration::from_secs(5));
        }
    }
    let mut bcast = RawConn::connect(srv.port());
    bcast.send(&cmd("HELLO 3"));
    bcast.read_idle(Duration::from_millis(50), Duration::from_secs(2));
    bcast.send(&cmd("CLIENT TRACKING ON BCAST PREFIX key:1 NOLOOP"));
    bcast.expect(b"+OK\r\n");
    let mut w = srv.client();
    let info = match run(&mut w, &["INFO", "stats"]) {
        Ok(redis::Value::BulkString(b)) => String::from_utf8_lossy(&b).into_owned(),
        other => panic!("{other:?}"),
    };
    assert!(
        info.contains(&format!("tracking_total_keys:{}", keys.len())),
        "{info}"
    );
    assert!(
        info.contains(&format!("tracking_total_items:{}", keys.len() * 4)),
        "{info}"
    );
    // Writes from another connection, half of them in one MSET.
    for k in &keys[..20] {
        ok(&mut w, &["SET", k, "v"]);
    }
    let mut mset = vec!["MSET"];
    for k in &keys[20..] {
        mset.push(k);
        mset.push("v");
    }
    ok(&mut w, &mset);
    let all: BTreeSet<String> = keys.iter().cloned().collect();
    for r in &mut readers {
        let got = r.read_idle(Duration::from_millis(300), Duration::from_secs(10));
        let got: BTreeSet<String> = invalidated(&got).into_iter().collect();
        assert_eq!(got, all, "every key read is invalidated once written");
    }
    let got = bcast.read_idle(Duration::from_millis(300), Duration::from_secs(10));
    let got: BTreeSet<String> = invalidated(&got).into_iter().collect();
    let want: BTreeSet<String> = keys
        .iter()
        .filter(|k| k.starts_with("key:1"))
        .cloned()
        .collect();
    assert_eq!(got, want, "BCAST prefix key:1");
    // NOLOOP: the BCAST client's own write is not sent back to it.
    bcast.send(&cmd("SET key:1000 x"));
    let got = bcast.read_idle(Duration::from_millis(300), Duration::from_secs(5));
    assert_eq!(got, b"+OK\r\n");
    let info = match run(&mut w, &["INFO"]) {
        Ok(redis::Value::BulkString(b)) => String::from_utf8_lossy(&b).into_owned(),
        other => panic!("{other:?}"),
    };
    assert!(info.contains("tracking_clients:5"), "{info}");
    assert!(info.contains("tracking_total_keys:0"), "{info}");
    assert!(info.contains("tracking_total_prefixes:1"), "{info}");
}
