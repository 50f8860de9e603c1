//! Lazy freeing: one background thread that drops values (and whole
//! databases) handed to it, so that deleting a big collection does not stall
//! the shard thread that owned it (UNLINK, FLUSHALL ASYNC and the
//! `lazyfree-lazy-*` options).
//!
//! A value whose free effort (roughly the number of allocations its drop
//! releases) is at most [`LAZYFREE_THRESHOLD`] is dropped inline even when
//! lazy freeing is asked for: queueing it would cost more than freeing it.
//!
//! INFO memory reports `lazyfree_pending_objects` (queued, not freed yet)
//! and `lazyfreed_objects` (freed by the thread since start or CONFIG
//! RESETSTAT). A value counts as one object; a database counts as its keys.

use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Mutex, OnceLock};

use crate::types::Value;

/// Values that free up to this many allocations are dropped inline.
pub const LAZYFREE_THRESHOLD: usize = 64;

static PENDING: AtomicU64 = AtomicU64::new(0);
static FREED: AtomicU64 = AtomicU64::new(0);

/// A unit of work: something to drop and how many objects it counts for.
struct Job {
    payload: Box<dyn Any + Send>,
    objects: u64,
}

static QUEUE: OnceLock<Mutex<Sender<Job>>> = OnceLock::new();

/// The sending side of the queue, starting the thread on first use.
fn queue() -> Option<&'static Mutex<Sender<Job>>> {
    if let Some(q) = QUEUE.get() {
        return Some(q);
    }
    let (tx, rx) = channel::<Job>();
    let spawned = std::thread::Builder::new()
        .name("lazyfree".into())
        .spawn(move || {
            while let Ok(job) = rx.recv() {
                let n = job.objects;
                drop(job.payload);
                PENDING.fetch_sub(n, Ordering::Relaxed);
                FREED.fetch_add(n, Ordering::Relaxed);
            }
        });
    if spawned.is_err() {
        return None;
    }
    // Two shards racing here each start a thread; the loser's receiver
    // ends with its sender (dropped below), so its thread exits.
    let _ = QUEUE.set(Mutex::new(tx));
    QUEUE.get()
}

/// Hands `payload` (counting as `objects`) to the thread; drops it inline
/// if the thread cannot be started.
fn submit(payload: Box<dyn Any + Send>, objects: u64) {
    let Some(q) = queue() else {
        drop(payload);
        return;
    };
    PENDING.fetch_add(objects, Ordering::Relaxed);
    let sent = q
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send(Job { payload, objects });
    if let Err(e) = sent {
        PENDING.fetch_sub(objects, Ordering::Relaxed);
        drop(e.0);
    }
}

/// How many allocations dropping `v` releases, as Redis estimates it: one
/// for strings and compact encodings (listpack, intset), the element count
/// for hash tables and skiplists, the node count for lists and streams.
pub fn free_effort(v: &Value) -> usize {
    match v {
        Value::Str(_) => 1,
        Value::List(l) => l.node_count(),
        Value::Hash(h) if h.encoding() == "hashtable" => h.len(),
        Value::Set(s) if s.encoding() == "hashtable" => s.len(),
        Value::ZSet(z) if z.encoding() == "skiplist" => z.len(),
        Value::Stream(s) => s.nodes.len() + 1,
        _ => 1,
    }
}

/// Frees a value removed from the keyspace: on the lazyfree thread when
/// `lazy` and its free effort is above [`LAZYFREE_THRESHOLD`], inline
/// otherwise.
pub fn dispose(v: Value, lazy: bool) {
    if lazy && free_effort(&v) > LAZYFREE_THRESHOLD {
        submit(Box::new(v), 1);
    } else {
        drop(v);
    }
}

/// Frees a whole emptied database's tables (`payload`, holding `keys`
/// keys): on the thread when `lazy` and it holds more than
/// [`LAZYFREE_THRESHOLD`] keys, inline otherwise.
pub fn dispose_db<T: Send + 'static>(payload: T, keys: usize, lazy: bool) {
    if lazy && keys > LAZYFREE_THRESHOLD {
        submit(Box::new(payload), keys as u64);
    } else {
        drop(payload);
    }
}

/// Objects queued and not freed yet (INFO `lazyfree_pending_objects`).
pub fn pending_objects() -> u64 {
    PENDING.load(Ordering::Relaxed)
}

/// Objects the thread has freed (INFO `lazyfreed_objects`).
pub fn freed_objects() -> u64 {
    FREED.load(Ordering::Relaxed)
}

/// CONFIG RESETSTAT: Redis resets the freed count only.
pub fn reset_stats() {
    FREED.store(0, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::set::Set;
    use crate::types::Str;

    fn big_set(n: usize) -> Value {
        let mut s = Set::new();
        for i in 0..n {
            s.add(format!("m{i}").as_bytes(), 16);
        }
        Value::Set(Box::new(s))
    }

    #[test]
    fn effort_counts_elements_of_tables_only() {
        assert_eq!(free_effort(&Value::Str(Str::from_bytes(b"x"))), 1);
        let mut ints = Set::new();
        for i in 0..100 {
            ints.add_int(i, 512);
        }
        assert_eq!(ints.encoding(), "intset");
        assert_eq!(free_effort(&Value::Set(Box::new(ints))), 1);
        assert_eq!(free_effort(&big_set(3)), 3);
        assert_eq!(free_effort(&big_set(200)), 200);
    }

    #[test]
    fn big_values_go_to_the_thread() {
        // Other tests of this process may free lazily too: only growth is
        // asserted here (tests/it/lazyfree.rs checks exact counts).
        let before = freed_objects();
        dispose(big_set(10), true);
        dispose(big_set(1000), false);
        dispose(big_set(1000), true);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while freed_objects() == before && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(freed_objects() > before);
    }
}
