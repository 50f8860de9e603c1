//! Random pipelined command streams against a 2-shard server running in
//! this process: valid RESP, commands drawn from ringkv's command table,
//! arguments from a small dictionary (keys on both shards, numbers, huge
//! counts, patterns, CR/LF) or raw fuzz bytes. Every reply must parse as
//! RESP, one per command, and the server must still answer PING.
//!
//! Left out, because they end or stall the session by design: SHUTDOWN,
//! DEBUG, CLIENT, CONFIG, MONITOR, QUIT, RESET, SAVE/BGSAVE, HELLO (may
//! switch the protocol mid-stream; RESP3 replies still parse, but the
//! harness keeps RESP2 simple) and the blocking commands (timeout 0 waits
//! forever; tests/it/diff_pipeline.rs covers them with timeouts).
//!
//!   cargo +nightly fuzz run pipeline -- -max_total_time=600
#![no_main]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;

const SKIP: &[&str] = &[
    "shutdown",
    "debug",
    "client",
    "config",
    "monitor",
    "quit",
    "reset",
    "save",
    "bgsave",
    "hello",
    "sync",
    "psync",
    "replconf",
    "failover",
    "slaveof",
    "replicaof",
    "auth",
    "select",
    "swapdb",
    "bgrewriteaof",
    // Subscribing changes how many replies a command gets (one per
    // channel) and what PING answers afterwards.
    "subscribe",
    "psubscribe",
    "ssubscribe",
    "unsubscribe",
    "punsubscribe",
    "sunsubscribe",
];

const WORDS: &[&[u8]] = &[
    b"k0",
    b"k1",
    b"k2",
    b"{t}a",
    b"{t}b",
    b"",
    b"0",
    b"1",
    b"-1",
    b"2",
    b"10",
    b"0.5",
    b"-0",
    b"inf",
    b"nan",
    b"9223372036854775807",
    b"-9223372036854775808",
    b"100000000000",
    b"*",
    b"a*a*a*a*a*a*a*a*a*a*b",
    b"[a-",
    b"\\",
    b"a\r\nb",
    b"\n",
    b"COUNT",
    b"MATCH",
    b"LIMIT",
    b"BY",
    b"nosort",
    b"WITHSCORES",
    b"LEFT",
    b"RIGHT",
    b"NX",
    b"XX",
    b"GT",
    b"EX",
    b"PX",
    b"KEEPTTL",
    b"GET",
    b"STORE",
    b"ALPHA",
    b"DESC",
    b"REV",
    b"BYSCORE",
    b"BYLEX",
    b"(1",
    b"[a",
    b"+",
    b"-",
    b"TYPE",
    b"string",
    b"WEIGHTS",
    b"AGGREGATE",
    b"MIN",
    b"MAX",
    b"RANK",
    b"MAXLEN",
    b"IDX",
    b"LEN",
];

struct Harness {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

fn harness() -> &'static Mutex<Harness> {
    static H: OnceLock<Mutex<Harness>> = OnceLock::new();
    H.get_or_init(|| {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cfg = ringkv::config::Config::default();
        for (k, v) in [
            ("port", port.to_string()),
            ("bind", "127.0.0.1".to_string()),
            ("save", String::new()),
            ("loglevel", "warning".to_string()),
        ] {
            cfg.apply(k, &[v]).unwrap();
        }
        cfg.shards = Some(2);
        cfg.pin = false;
        std::thread::spawn(move || ringkv::server::run(cfg));
        let w = (0..500)
            .find_map(|_| {
                std::thread::sleep(Duration::from_millis(10));
                TcpStream::connect(("127.0.0.1", port)).ok()
            })
            .expect("the server did not start");
        w.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let r = BufReader::new(w.try_clone().unwrap());
        Mutex::new(Harness { w, r })
    })
}

fn read_reply(r: &mut BufReader<TcpStream>) {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line).expect("read");
    assert!(
        line.len() >= 3 && line.ends_with(b"\r\n"),
        "bad line {:?}",
        String::from_utf8_lossy(&line)
    );
    let body = &line[1..line.len() - 2];
    assert!(
        !body.contains(&b'\r') && !body.contains(&b'\n'),
        "CR/LF inside a line: {:?}",
        String::from_utf8_lossy(&line)
    );
    let n = || -> i64 { std::str::from_utf8(body).unwrap().parse().unwrap() };
    match line[0] {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => {}
        b'$' | b'=' | b'!' => {
            let n = n();
            if n >= 0 {
                let mut d = vec![0u8; n as usize + 2];
                r.read_exact(&mut d).expect("read");
                assert!(d.ends_with(b"\r\n"));
            }
        }
        b'*' | b'~' | b'>' | b'%' => {
            let k = if line[0] == b'%' { 2 } else { 1 };
            for _ in 0..n().max(0) * k {
                read_reply(r);
            }
        }
        t => panic!("unknown reply type {:?}", t as char),
    }
}

fn encode(out: &mut Vec<u8>, args: &[Vec<u8>]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

fuzz_target!(|data: &[u8]| {
    let table: Vec<&'static ringkv::cmd::CmdSpec> = ringkv::cmd::table()
        .list
        .iter()
        .copied()
        .filter(|c| c.flags & ringkv::cmd::BLOCKING == 0 && !SKIP.contains(&c.name))
        .collect();
    let mut it = data.iter().copied();
    let mut cmds: Vec<Vec<Vec<u8>>> = Vec::new();
    while cmds.len() < 64 {
        let Some(c) = it.next() else { break };
        let spec = table[c as usize % table.len()];
        let mut args = vec![spec.name.as_bytes().to_vec()];
        let nargs = it.next().unwrap_or(0) % 8;
        for _ in 0..nargs {
            let a = it.next().unwrap_or(0);
            if a < 200 {
                args.push(WORDS[a as usize % WORDS.len()].to_vec());
            } else {
                let len = (a - 200) as usize % 12;
                args.push(it.by_ref().take(len).collect());
            }
        }
        cmds.push(args);
    }
    if cmds.is_empty() {
        return;
    }
    let mut buf = Vec::new();
    for c in &cmds {
        encode(&mut buf, c);
    }
    // Leaves a MULTI the input may have opened (an error reply otherwise).
    encode(&mut buf, &[b"DISCARD".to_vec()]);
    encode(&mut buf, &[b"PING".to_vec()]);
    let mut h = harness().lock().unwrap_or_else(|e| e.into_inner());
    h.w.write_all(&buf).expect("write");
    for _ in 0..cmds.len() + 1 {
        read_reply(&mut h.r);
    }
    let mut pong = Vec::new();
    h.r.read_until(b'\n', &mut pong).expect("read");
    assert_eq!(pong, b"+PONG\r\n", "after {} commands", cmds.len());
});
