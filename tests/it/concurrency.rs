//! Multi-key atomicity under concurrency (ringkv with `--shards 2`, on the
//! default io_uring backend and with `--io epoll`).
//!
//! 4 writer threads repeatedly `MSET` the same 8 keys (which span both
//! shards) to a value unique to (writer, iteration); 2 reader threads
//! repeatedly `MGET` those keys and require every reply to hold one single
//! value for all 8 keys - never a mix of two MSETs.  A second test does the
//! same for `DEL` of all keys racing `MSET` (a reader sees all or none).
//! Bounded: 2 s or 2000 iterations per thread, whichever comes first.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::common::*;
use redis::Value;

const WRITERS: usize = 4;
const READERS: usize = 2;
const MAX_ITERS: usize = 2000;
const MAX_TIME: Duration = Duration::from_secs(2);

fn test_keys() -> Vec<String> {
    let keys: Vec<String> = (0..8).map(|i| format!("k{i}")).collect();
    let shards: HashSet<usize> = keys.iter().map(|k| shard_of(k, 2)).collect();
    assert_eq!(shards.len(), 2, "test keys must span both shards");
    keys
}

fn mget_values(con: &mut redis::Connection, keys: &[String]) -> Vec<Option<Vec<u8>>> {
    let mut c = redis::cmd("MGET");
    for k in keys {
        c.arg(k);
    }
    match exec(con, &c) {
        Ok(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::Nil => None,
                Value::BulkString(b) => Some(b),
                other => panic!("MGET element {other:?}"),
            })
            .collect(),
        other => panic!("MGET reply {other:?}"),
    }
}

/// Writes one iteration: `(con, keys, writer id, iteration)`.
type Writer = fn(&mut redis::Connection, &[String], usize, usize);
/// Validates one MGET reply.
type Check = fn(&[Option<Vec<u8>>]) -> Result<(), String>;

/// Runs writers (`write(con, writer, iter)`) against readers that check
/// each MGET reply with `check`.  Returns (writes, reads).
fn race(srv: &Server, write: Writer, check: Check) -> (usize, usize) {
    let keys = Arc::new(test_keys());
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicUsize::new(0));
    let reads = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();

    let mut handles = Vec::new();
    for w in 0..WRITERS {
        let mut con = srv.client();
        let (keys, stop, writes) = (keys.clone(), stop.clone(), writes.clone());
        handles.push(thread::spawn(move || {
            for it in 0..MAX_ITERS {
                if stop.load(Ordering::Relaxed) || start.elapsed() > MAX_TIME {
                    break;
                }
                write(&mut con, &keys, w, it);
                writes.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let mut readers = Vec::new();
    for _ in 0..READERS {
        let mut con = srv.client();
        let (keys, stop, reads) = (keys.clone(), stop.clone(), reads.clone());
        readers.push(thread::spawn(move || -> Result<(), String> {
            for _ in 0..MAX_ITERS * 2 {
                if stop.load(Ordering::Relaxed) || start.elapsed() > MAX_TIME {
                    break;
                }
                let vals = mget_values(&mut con, &keys);
                reads.fetch_add(1, Ordering::Relaxed);
                if let Err(e) = check(&vals) {
                    stop.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            }
            Ok(())
        }));
    }
    for h in handles {
        h.join().expect("writer thread panicked");
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        if let Err(e) = r.join().expect("reader thread panicked") {
            panic!("non-atomic multi-key reply: {e}");
        }
    }
    (
        writes.load(Ordering::Relaxed),
        reads.load(Ordering::Relaxed),
    )
}

fn show(vals: &[Option<Vec<u8>>]) -> String {
    format!(
        "{:?}",
        vals.iter()
            .map(|v| v.as_ref().map(|b| String::from_utf8_lossy(b).into_owned()))
            .collect::<Vec<_>>()
    )
}

fn mset_all(con: &mut redis::Connection, keys: &[String], w: usize, it: usize) {
    let val = format!("w{w}-i{it}");
    let mut c = redis::cmd("MSET");
    for k in keys {
        c.arg(k).arg(&val);
    }
    assert_eq!(exec(con, &c), Ok(Value::Okay));
}

fn all_identical(vals: &[Option<Vec<u8>>]) -> Result<(), String> {
    if vals.iter().all(|v| v.is_some() && *v == vals[0]) {
        Ok(())
    } else {
        Err(show(vals))
    }
}

/// Both event-loop backends, always with two shards.
const BACKENDS: [&[&str]; 2] = [&[], &["--io", "epoll"]];

#[test]
fn mset_mget_are_atomic_across_shards() {
    for extra in BACKENDS {
        let srv = Server::ringkv(2, extra);
        let mut con = srv.client();
        let keys = test_keys();
        mset_all(&mut con, &keys, 99, 0);
        let (writes, reads) = race(&srv, mset_all, all_identical);
        eprintln!("{}: MSET/MGET: {writes} writes, {reads} reads", srv.label());
        assert!(writes > 0 && reads > 0);
        let final_vals = mget_values(&mut con, &keys);
        all_identical(&final_vals).expect("final state is one MSET");
    }
}

fn mset_or_del(con: &mut redis::Connection, keys: &[String], w: usize, it: usize) {
    if (w + it).is_multiple_of(3) {
        let mut c = redis::cmd("DEL");
        for k in keys {
            c.arg(k);
        }
        match exec(con, &c) {
            Ok(Value::Int(n)) if n == 0 || n == keys.len() as i64 => {}
            other => panic!("DEL of all keys removed a partial set: {other:?}"),
        }
    } else {
        mset_all(con, keys, w, it);
    }
}

fn all_or_none(vals: &[Option<Vec<u8>>]) -> Result<(), String> {
    if vals.iter().all(|v| v.is_none()) || vals.iter().all(|v| v.is_some() && *v == vals[0]) {
        Ok(())
    } else {
        Err(show(vals))
    }
}

#[test]
fn del_races_mset_atomically_across_shards() {
    for extra in BACKENDS {
        let srv = Server::ringkv(2, extra);
        let (writes, reads) = race(&srv, mset_or_del, all_or_none);
        eprintln!(
            "{}: MSET|DEL/MGET: {writes} writes, {reads} reads",
            srv.label()
        );
        assert!(writes > 0 && reads > 0);
        let mut con = srv.client();
        all_or_none(&mget_values(&mut con, &test_keys())).expect("final state");
    }
}
