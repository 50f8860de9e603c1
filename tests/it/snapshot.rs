//! Fork-free snapshots: point-in-time consistency under concurrent writes,
//! crash safety (kill -9 during BGSAVE), failed saves (file size limit as
//! a stand-in for a full disk), save points and the INFO persistence
//! fields.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;

fn tempdir(tag: &str) -> PathBuf {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let d = std::env::temp_dir().join(format!(
        "ringkv-snap-{}-{}-{}",
        tag,
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn info_field(con: &mut redis::Connection, field: &str) -> String {
    let text: String = redis::cmd("INFO").arg("persistence").query(con).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("INFO has no {field}:\n{text}"))
        .trim()
        .to_string()
}

/// Waits (bounded) until no snapshot is in progress.
fn wait_bgsave_done(con: &mut redis::Connection, limit: Duration) {
    let t0 = Instant::now();
    while info_field(con, "rdb_bgsave_in_progress") != "0" {
        assert!(
            t0.elapsed() < limit,
            "BGSAVE did not finish within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Fills `n` keys `fill:i` with 100-byte values through pipelines.
fn fill(con: &mut redis::Connection, n: usize) {
    for start in (0..n).step_by(1000) {
        let mut p = redis::pipe();
        for i in start..(start + 1000).min(n) {
            p.cmd("SET")
                .arg(format!("fill:{i}"))
                .arg(format!("{:0100}", i as u64 * 2654435761))
                .ignore();
        }
        p.query::<()>(con).unwrap();
    }
}

/// Starts a ringkv that loads `<dir>/dump.rdb` and returns it once it
/// answers (after loading).
fn load_from(dir: &Path, shards: usize) -> Server {
    let d = dir.to_str().unwrap().to_string();
    Server::ringkv(shards, &["--dir", &d])
}

/// A server whose snapshots are slow (1 % CPU share, `bps` bytes a
/// second), so that they overlap many writes; it saves into `dir`.
fn slow_snapshots(shards: usize, dir: &Path, bps: &str) -> Server {
    let d = dir.to_str().unwrap();
    Server::ringkv(
        shards,
        &[
            "--dir",
            d,
            "--snapshot-cpu-share",
            "1",
            "--snapshot-max-bytes-per-sec",
            bps,
        ],
    )
}

fn point_in_time(shards: usize) {
    let dir = tempdir("pit");
    // A slow, paced snapshot so that it overlaps many writes.
    let s = slow_snapshots(shards, &dir, "2mb");
    let mut con = s.client();
    fill(&mut con, 60_000);
    // Short-lived keys that expire while the snapshot runs.
    let mut p = redis::pipe();
    for i in 0..2000 {
        p.cmd("SET")
            .arg(format!("tmp:{i}"))
            .arg("x")
            .arg("PX")
            .arg(200 + (i % 800))
            .ignore();
    }
    p.query::<()>(&mut con).unwrap();

    // A writer: SET seq:n, then INCR c:(n % 16), one at a time, so the
    // order of its writes is the order they happened in.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let writer = {
        let stop = stop.clone();
        let done = done.clone();
        let mut wc = s.client();
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) && n < 2_000_000 {
                n += 1;
                let _: () = redis::cmd("SET")
                    .arg(format!("seq:{n}"))
                    .arg(n)
                    .query(&mut wc)
                    .unwrap();
                let _: i64 = redis::cmd("INCR")
                    .arg(format!("c:{}", n % 16))
                    .query(&mut wc)
                    .unwrap();
                // Also overwrite filler keys, deleting some of them.
                if n.is_multiple_of(3) {
                    let _: () = redis::cmd("SET")
                        .arg(format!("fill:{}", n % 60_000))
                        .arg("changed")
                        .query(&mut wc)
                        .unwrap();
                }
                if n.is_multiple_of(7) {
                    let _: i64 = redis::cmd("DEL")
                        .arg(format!("fill:{}", (n * 13) % 60_000))
                        .query(&mut wc)
                        .unwrap();
                }
                done.store(n, Ordering::SeqCst);
            }
        })
    };
    let t0 = Instant::now();
    while done.load(Ordering::SeqCst) < 500 {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "writer made no progress"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let before = done.load(Ordering::SeqCst);
    let r: String = redis::cmd("BGSAVE").query(&mut con).unwrap();
    assert_eq!(r, "Background saving started");
    let at_start = done.load(Ordering::SeqCst);
    // A second BGSAVE is refused while one runs (or scheduled).
    let e = err(&mut con, &["BGSAVE"]);
    assert!(
        e.contains("already in progress") || info_field(&mut con, "rdb_bgsave_in_progress") == "0",
        "{e}"
    );
    wait_bgsave_done(&mut con, Duration::from_secs(60));
    let at_end = done.load(Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    assert_eq!(info_field(&mut con, "rdb_last_bgsave_status"), "ok");
    assert!(
        at_end > at_start + 50,
        "too few writes overlapped the snapshot ({at_start}..{at_end}) for the test to mean anything"
    );
    drop(con);
    drop(s);

    // Load the snapshot and check it is one instant of the writer's history.
    let l = load_from(&dir, shards);
    let mut c = l.client();
    let seq_keys: Vec<String> = redis::cmd("KEYS").arg("seq:*").query(&mut c).unwrap();
    let k = seq_keys.len() as u64;
    for n in 1..=k {
        let v: Option<u64> = redis::cmd("GET")
            .arg(format!("seq:{n}"))
            .query(&mut c)
            .unwrap();
        assert_eq!(
            v,
            Some(n),
            "seq:{n} missing from a snapshot holding {k} seq keys"
        );
    }
    assert!(
        k >= before && k <= at_end,
        "snapshot holds {k} seq keys; BGSAVE started after {before}..{at_start} and ended by {at_end}"
    );
    let mut counters = [0u64; 16];
    for (j, slot) in counters.iter_mut().enumerate() {
        let v: Option<u64> = redis::cmd("GET")
            .arg(format!("c:{j}"))
            .query(&mut c)
            .unwrap();
        *slot = v.unwrap_or(0);
    }
    let m: u64 = counters.iter().sum();
    assert!(m == k || m + 1 == k, "counters sum {m} but {k} seq keys");
    for (j, &v) in counters.iter().enumerate() {
        let expect = (1..=m).filter(|n| n % 16 == j as u64).count() as u64;
        assert_eq!(
            v, expect,
            "counter c:{j} is not from the same instant (m = {m})"
        );
    }
    // Filler keys: replay the writer's overwrites and deletes up to the
    // cut. Those of step k may or may not precede the cut when the cut
    // fell after step k's INCR (m == k), so both states are accepted then.
    let state_after = |i: u64, steps: u64| {
        let mut st = Some(format!("{:0100}", i * 2654435761));
        for n in 1..=steps {
            if n.is_multiple_of(3) && n % 60_000 == i {
                st = Some("changed".to_string());
            }
            if n.is_multiple_of(7) && (n * 13) % 60_000 == i {
                st = None;
            }
        }
        st
    };
    for i in (0..60_000u64).step_by(97).chain([0, 3, 13, 26, 39]) {
        let v: Option<String> = redis::cmd("GET")
            .arg(format!("fill:{i}"))
            .query(&mut c)
            .unwrap();
        let a = state_after(i, k.saturating_sub(1));
        let b = state_after(i, k);
        assert!(
            v == a || (m == k && v == b),
            "fill:{i} = {v:?} does not match the snapshot instant (k = {k}, m = {m})"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bgsave_is_point_in_time_one_shard() {
    point_in_time(1);
}

#[test]
fn bgsave_is_point_in_time_two_shards() {
    point_in_time(2);
}

/// Spawns the ringkv binary directly (for shell wrappers and kill -9).
fn spawn_raw(shell_prefix: &str, args: &[&str], dir: &Path) -> (Child, u16) {
    let bin = env!("CARGO_BIN_EXE_ringkv");
    for _ in 0..5 {
        let port = free_port();
        let mut cmdline = format!("{shell_prefix} exec {bin} --port {port}");
        for a in args {
            cmdline.push_str(&format!(" '{a}'"));
        }
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(&cmdline)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(
                std::fs::File::create(dir.join("out.log")).unwrap(),
            ))
            .stderr(Stdio::from(
                std::fs::File::create(dir.join("err.log")).unwrap(),
            ))
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(10) {
            if ping_ok(port) {
                return (child, port);
            }
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("could not start ringkv via sh");
}

fn client_at(port: u16) -> redis::Connection {
    let c = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let con = c
        .get_connection_with_timeout(Duration::from_secs(5))
        .unwrap();
    con.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    con
}

#[test]
fn kill_9_during_bgsave_leaves_the_old_dump_loadable() {
    let dir = tempdir("crash");
    let d = dir.to_str().unwrap().to_string();
    let (mut child, port) = spawn_raw(
        "",
        &[
            "--no-pin",
            "--dir",
            &d,
            "--save",
            "",
            "--snapshot-max-bytes-per-sec",
            "1mb",
        ],
        &dir,
    );
    let mut con = client_at(port);
    for i in 0..1000 {
        let _: () = redis::cmd("SET")
            .arg(format!("old:{i}"))
            .arg(i)
            .query(&mut con)
            .unwrap();
    }
    let r: String = redis::cmd("SAVE").query(&mut con).unwrap();
    assert_eq!(r, "OK");
    let old = std::fs::read(dir.join("dump.rdb")).unwrap();
    fill(&mut con, 50_000);
    let _: String = redis::cmd("BGSAVE").query(&mut con).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        info_field(&mut con, "rdb_bgsave_in_progress"),
        "1",
        "the paced BGSAVE should still be running"
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(std::fs::read(dir.join("dump.rdb")).unwrap(), old);
    let l = load_from(&dir, 2);
    let mut c = l.client();
    let n: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(n, 1000);
    let v: i64 = redis::cmd("GET").arg("old:999").query(&mut c).unwrap();
    assert_eq!(v, 999);
    drop(l);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn failed_bgsave_keeps_the_old_dump_and_reports_the_error() {
    let dir = tempdir("efbig");
    let d = dir.to_str().unwrap().to_string();
    // ulimit -f (512-byte blocks in sh): writes past 256 KiB fail with
    // EFBIG, as on a full disk.
    let (mut child, port) = spawn_raw(
        "ulimit -f 512;",
        &["--no-pin", "--dir", &d, "--save", "3600 1"],
        &dir,
    );
    let mut con = client_at(port);
    for i in 0..100 {
        let _: () = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(i)
            .query(&mut con)
            .unwrap();
    }
    let r: String = redis::cmd("SAVE").query(&mut con).unwrap();
    assert_eq!(r, "OK");
    let old = std::fs::read(dir.join("dump.rdb")).unwrap();
    // About 1 MB of incompressible data.
    let mut x = 0x2545F4914F6CDD1Du64;
    for i in 0..1000 {
        let v: String = (0..1000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b'!' + (x % 90) as u8)
            })
            .collect();
        let _: () = redis::cmd("SET")
            .arg(format!("big{i}"))
            .arg(v)
            .query(&mut con)
            .unwrap();
    }
    let _: String = redis::cmd("BGSAVE").query(&mut con).unwrap();
    wait_bgsave_done(&mut con, Duration::from_secs(30));
    assert_eq!(info_field(&mut con, "rdb_last_bgsave_status"), "err");
    assert_eq!(std::fs::read(dir.join("dump.rdb")).unwrap(), old);
    // No temp file left behind.
    let temps: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("temp-"))
        .collect();
    assert!(temps.is_empty(), "temp files left: {temps:?}");
    // stop-writes-on-bgsave-error: writes (and PING) get MISCONF, reads work.
    let e = err(&mut con, &["SET", "a", "b"]);
    assert!(e.starts_with("MISCONF"), "{e}");
    let e = err(&mut con, &["PING"]);
    assert!(e.starts_with("MISCONF"), "{e}");
    let v: i64 = redis::cmd("GET").arg("k5").query(&mut con).unwrap();
    assert_eq!(v, 5);
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("stop-writes-on-bgsave-error")
        .arg("no")
        .query(&mut con)
        .unwrap();
    let t0 = Instant::now();
    loop {
        if run(&mut con, &["SET", "a", "b"]).is_ok() {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "MISCONF not lifted");
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(dir.join("out.log")).unwrap_or_default()
        + &std::fs::read_to_string(dir.join("err.log")).unwrap_or_default();
    assert!(log.contains("Background saving error"), "{log}");
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn save_points_trigger_a_background_save() {
    let dir = tempdir("savepoint");
    let d = dir.to_str().unwrap().to_string();
    let s = Server::ringkv(2, &["--dir", &d, "--save", "1 5"]);
    let mut con = s.client();
    let t0: i64 = redis::cmd("LASTSAVE").query(&mut con).unwrap();
    for i in 0..10 {
        let _: () = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(i)
            .query(&mut con)
            .unwrap();
    }
    assert!(
        info_field(&mut con, "rdb_changes_since_last_save")
            .parse::<u64>()
            .unwrap()
            >= 10
    );
    let start = Instant::now();
    while !dir.join("dump.rdb").exists() || info_field(&mut con, "rdb_saves") == "0" {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "save point did not fire"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    wait_bgsave_done(&mut con, Duration::from_secs(10));
    assert_eq!(info_field(&mut con, "rdb_changes_since_last_save"), "0");
    assert_eq!(info_field(&mut con, "rdb_last_bgsave_status"), "ok");
    let t1: i64 = redis::cmd("LASTSAVE").query(&mut con).unwrap();
    assert!(t1 >= t0);
    // BGSAVE SCHEDULE when idle starts at once; bad arguments are refused.
    let e = err(&mut con, &["BGSAVE", "NOW"]);
    assert!(e.contains("syntax error"), "{e}");
    drop(con);
    drop(s);
    let l = load_from(&dir, 1);
    let mut c = l.client();
    let n: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(n, 10);
    drop(l);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn flush_and_swapdb_during_a_snapshot_keep_the_cut() {
    for shards in SHARD_COUNTS {
        let dir = tempdir("flush");
        let s = slow_snapshots(shards, &dir, "1mb");
        let mut con = s.client();
        fill(&mut con, 30_000);
        let _: () = redis::cmd("SELECT").arg(1).query(&mut con).unwrap();
        let _: () = redis::cmd("SET")
            .arg("in-db1")
            .arg("1")
            .query(&mut con)
            .unwrap();
        let _: () = redis::cmd("SELECT").arg(0).query(&mut con).unwrap();
        let _: String = redis::cmd("BGSAVE").query(&mut con).unwrap();
        let _: () = redis::cmd("SWAPDB").arg(0).arg(1).query(&mut con).unwrap();
        let _: () = redis::cmd("FLUSHALL").query(&mut con).unwrap();
        let _: () = redis::cmd("SET")
            .arg("after")
            .arg("1")
            .query(&mut con)
            .unwrap();
        wait_bgsave_done(&mut con, Duration::from_secs(60));
        assert_eq!(info_field(&mut con, "rdb_last_bgsave_status"), "ok");
        drop(con);
        drop(s);
        let l = load_from(&dir, shards);
        let mut c = l.client();
        let n: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
        assert_eq!(n, 30_000, "db 0 as it was at the cut");
        let a: Option<String> = redis::cmd("GET").arg("after").query(&mut c).unwrap();
        assert_eq!(a, None);
        let _: () = redis::cmd("SELECT").arg(1).query(&mut c).unwrap();
        let v: Option<String> = redis::cmd("GET").arg("in-db1").query(&mut c).unwrap();
        assert_eq!(v.as_deref(), Some("1"));
        drop(l);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Big values (hashtables, skiplists, many-node lists) changed, renamed
/// and deleted over and over while a slow snapshot runs, on one and two
/// shards: the loaded file holds each of them exactly as it was at the
/// cut. (The unit test `big_values_changed_mid_piece_keep_the_cut` in
/// src/shard/snapshot.rs drives the half-written-record case step by step.)
#[test]
fn big_values_changed_during_a_snapshot_keep_the_cut() {
    for shards in SHARD_COUNTS {
        let dir = tempdir("big");
        let s = slow_snapshots(shards, &dir, "2mb");
        let mut con = s.client();
        fill(&mut con, 20_000);
        let n = 6000usize;
        for b in 0..3 {
            let mut p = redis::pipe();
            for i in 0..n {
                let m = format!("member:{i}");
                p.cmd("HSET")
                    .arg(format!("big:h{b}"))
                    .arg(&m)
                    .arg(i)
                    .ignore();
                p.cmd("SADD").arg(format!("big:s{b}")).arg(&m).ignore();
                p.cmd("ZADD")
                    .arg(format!("big:z{b}"))
                    .arg(i as f64 / 3.0)
                    .arg(&m)
                    .ignore();
                // 4 elements a node at most: a list of many nodes.
                p.cmd("RPUSH")
                    .arg(format!("big:l{b}"))
                    .arg(&m)
                    .arg(i)
                    .ignore();
            }
            p.query::<()>(&mut con).unwrap();
        }
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg("list-max-listpack-size")
            .arg("4")
            .query(&mut con)
            .unwrap();
        // Rebuild one list with small nodes (the setting applies to pushes).
        let mut p = redis::pipe();
        for i in 0..n {
            p.cmd("RPUSH").arg("big:l9").arg(i).ignore();
        }
        p.query::<()>(&mut con).unwrap();
        let _: String = redis::cmd("BGSAVE").query(&mut con).unwrap();
        let t0 = Instant::now();
        let mut round = 0u64;
        while info_field(&mut con, "rdb_bgsave_in_progress") != "0" {
            assert!(t0.elapsed() < Duration::from_secs(60), "BGSAVE too slow");
            let b = round % 3;
            let mut p = redis::pipe();
            p.cmd("HSET")
                .arg(format!("big:h{b}"))
                .arg(format!("new:{round}"))
                .arg(1)
                .ignore();
            p.cmd("HDEL")
                .arg(format!("big:h{b}"))
                .arg(format!("member:{round}"))
                .ignore();
            p.cmd("SADD")
                .arg(format!("big:s{b}"))
                .arg(format!("new:{round}"))
                .ignore();
            p.cmd("ZADD")
                .arg(format!("big:z{b}"))
                .arg(-1)
                .arg(format!("new:{round}"))
                .ignore();
            p.cmd("LPUSH").arg(format!("big:l{b}")).arg("new").ignore();
            p.cmd("LPUSH").arg("big:l9").arg("new").ignore();
            if round == 5 {
                p.cmd("DEL").arg("big:h2").ignore();
                p.cmd("RENAME").arg("big:z2").arg("big:z2-renamed").ignore();
            }
            p.query::<()>(&mut con).unwrap();
            round += 1;
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(
            round > 10,
            "too few writes overlapped the snapshot ({round})"
        );
        assert_eq!(info_field(&mut con, "rdb_last_bgsave_status"), "ok");
        drop(con);
        drop(s);
        let l = load_from(&dir, shards);
        let mut c = l.client();
        let total: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
        assert_eq!(total, 20_000 + 12 + 1);
        for b in 0..3 {
            let h: std::collections::HashMap<String, i64> = redis::cmd("HGETALL")
                .arg(format!("big:h{b}"))
                .query(&mut c)
                .unwrap();
            assert_eq!(h.len(), n, "big:h{b}");
            assert!((0..n).all(|i| h.get(&format!("member:{i}")) == Some(&(i as i64))));
            let sm: Vec<String> = redis::cmd("SMEMBERS")
                .arg(format!("big:s{b}"))
                .query(&mut c)
                .unwrap();
            let sm: std::collections::HashSet<String> = sm.into_iter().collect();
            assert_eq!(sm.len(), n, "big:s{b}");
            assert!((0..n).all(|i| sm.contains(&format!("member:{i}"))));
            let z: Vec<(String, f64)> = redis::cmd("ZRANGE")
                .arg(format!("big:z{b}"))
                .arg(0)
                .arg(-1)
                .arg("WITHSCORES")
                .query(&mut c)
                .unwrap();
            assert_eq!(z.len(), n, "big:z{b}");
            for (i, (m, sc)) in z.iter().enumerate() {
                assert_eq!(
                    (m.as_str(), *sc),
                    (format!("member:{i}").as_str(), i as f64 / 3.0)
                );
            }
            let l: Vec<String> = redis::cmd("LRANGE")
                .arg(format!("big:l{b}"))
                .arg(0)
                .arg(-1)
                .query(&mut c)
                .unwrap();
            assert_eq!(l.len(), 2 * n, "big:l{b}");
            assert_eq!(l[0], "member:0");
            assert_eq!(l[2 * n - 1], (n - 1).to_string());
        }
        let l9: Vec<i64> = redis::cmd("LRANGE")
            .arg("big:l9")
            .arg(0)
            .arg(-1)
            .query(&mut c)
            .unwrap();
        assert_eq!(l9, (0..n as i64).collect::<Vec<_>>());
        let gone: i64 = redis::cmd("EXISTS")
            .arg("big:z2-renamed")
            .query(&mut c)
            .unwrap();
        assert_eq!(gone, 0);
        drop(l);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn clients_get_loading_until_the_dump_is_loaded() {
    let dir = tempdir("loading");
    let d = dir.to_str().unwrap().to_string();
    let n = 1_000_000usize;
    {
        let s = Server::ringkv(2, &["--dir", &d]);
        let mut con = s.client();
        for start in (0..n).step_by(5000) {
            let mut p = redis::pipe();
            for i in start..(start + 5000).min(n) {
                p.cmd("SET").arg(format!("k{i}")).arg(i).ignore();
            }
            p.query::<()>(&mut con).unwrap();
        }
        let r: String = redis::cmd("SAVE").query(&mut con).unwrap();
        assert_eq!(r, "OK");
    }
    // Start on the dump and poll at once: the listeners are up before the
    // load starts, so the first replies are -LOADING.
    let bin = env!("CARGO_BIN_EXE_ringkv");
    let port = free_port();
    let mut child = Command::new(bin)
        .args([
            "--port",
            &port.to_string(),
            "--no-pin",
            "--shards",
            "2",
            "--save",
            "",
            "--dir",
            &d,
        ])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let mut saw_loading = false;
    let mut saw_info_loading = false;
    loop {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "never finished loading"
        );
        assert!(
            matches!(child.try_wait(), Ok(None)),
            "server exited while loading"
        );
        let Ok(c) = redis::Client::open(format!("redis://127.0.0.1:{port}/")) else {
            continue;
        };
        let Ok(mut con) = c.get_connection_with_timeout(Duration::from_millis(200)) else {
            std::thread::sleep(Duration::from_millis(2));
            continue;
        };
        match run(&mut con, &["GET", "k1"]) {
            Reply::Err(e) => {
                assert!(e.starts_with("LOADING"), "{e}");
                saw_loading = true;
                // INFO is allowed while loading and says so.
                let text: String = redis::cmd("INFO")
                    .arg("persistence")
                    .query(&mut con)
                    .unwrap();
                saw_info_loading |= text.contains("loading:1");
            }
            Reply::Ok(v) => {
                assert_eq!(v, bulk("1"));
                break;
            }
        }
    }
    assert!(
        saw_loading,
        "no command was answered -LOADING during a 1M-key load"
    );
    assert!(saw_info_loading, "INFO never reported loading:1");
    let mut con = client_at(port);
    let size: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(size, n as i64);
    assert_eq!(info_field(&mut con, "loading"), "0");
    assert_eq!(
        info_field(&mut con, "rdb_last_load_keys_loaded"),
        n.to_string()
    );
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The CPUs the `rdb-writer` thread of process `pid` may run on, while a
/// snapshot runs (None when no writer thread is there).
fn writer_cpus(pid: u32) -> Option<String> {
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.trim() == "rdb-writer" {
            let st = std::fs::read_to_string(t.path().join("status")).ok()?;
            return st
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .map(|v| v.trim().to_string());
        }
    }
    None
}

/// The snapshot writer is not stuck on the CPU of the shard that started
/// it: it may run on every CPU the process may use, or on
/// `bgsave_cpulist`; a bad list stops the start-up.
#[test]
fn the_writer_runs_on_bgsave_cpulist() {
    let own: String = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim()
        .to_string();
    // The shard is pinned to the first CPU; the writer, spawned by it,
    // must leave that CPU's mask: all CPUs by default, or the last one
    // when bgsave_cpulist names it.
    let first = own.split([',', '-']).next().unwrap().to_string();
    let last = own.rsplit([',', '-']).next().unwrap().to_string();
    for (extra, expect) in [(None, own.as_str()), (Some(last.as_str()), last.as_str())] {
        let dir = tempdir("cpus");
        let d = dir.to_str().unwrap().to_string();
        let mut args = vec![
            "--shards",
            "1",
            "--cpus",
            &first,
            "--save",
            "",
            "--dir",
            &d,
            "--snapshot-max-bytes-per-sec",
            "1mb",
        ];
        if let Some(l) = extra {
            args.extend(["--bgsave_cpulist", l]);
        }
        let (mut child, port) = spawn_raw("", &args, &dir);
        let mut con = client_at(port);
        fill(&mut con, 20_000);
        let _: String = redis::cmd("BGSAVE").query(&mut con).unwrap();
        // The thread is visible (named) a moment before it sets its CPUs:
        // wait for the expected mask while the 2-second snapshot runs.
        let t0 = Instant::now();
        let mut seen = None;
        while seen.as_deref() != Some(expect) && t0.elapsed() < Duration::from_secs(10) {
            seen = writer_cpus(child.id()).or(seen);
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(seen.as_deref(), Some(expect), "bgsave_cpulist {extra:?}");
        wait_bgsave_done(&mut con, Duration::from_secs(60));
        assert_eq!(info_field(&mut con, "rdb_last_bgsave_status"), "ok");
        drop(con);
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_dir_all(&dir);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_ringkv"))
        .args(["--port", "0", "--save", "", "--bgsave_cpulist", "0-x"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bgsave_cpulist"));
}
