//! The global allocator: mimalloc, wrapped to count live heap bytes per
//! thread without contention (each thread adds to its own cache line), so
//! INFO can report `used_memory` as the sum.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicI64, Ordering};

pub struct Counting;

const SLOTS: usize = 256;

#[repr(align(64))]
struct Slot(AtomicI64);

static USED: [Slot; SLOTS] = [const { Slot(AtomicI64::new(0)) }; SLOTS];
static NEXT_SLOT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

thread_local! {
    static MY_SLOT: Cell<usize> = const { Cell::new(usize::MAX) };
}

#[inline]
fn slot() -> &'static AtomicI64 {
    let i = MY_SLOT
        .try_with(|s| {
            let v = s.get();
            if v != usize::MAX {
                return v;
            }
            let v = NEXT_SLOT.fetch_add(1, Ordering::Relaxed) % SLOTS;
            s.set(v);
            v
        })
        .unwrap_or(0);
    &USED[i].0
}

// SAFETY: every call forwards to mimalloc with the same layout and pointer;
// the counters are plain atomics and never affect the memory handed out.
unsafe impl GlobalAlloc for Counting {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        slot().fetch_add(layout.size() as i64, Ordering::Relaxed);
        mimalloc::MiMalloc.alloc(layout)
    }
    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        slot().fetch_add(layout.size() as i64, Ordering::Relaxed);
        mimalloc::MiMalloc.alloc_zeroed(layout)
    }
    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        slot().fetch_sub(layout.size() as i64, Ordering::Relaxed);
        mimalloc::MiMalloc.dealloc(ptr, layout)
    }
    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        slot().fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        mimalloc::MiMalloc.realloc(ptr, layout, new_size)
    }
}

/// Live heap bytes allocated through the global allocator (all threads).
pub fn used_memory() -> u64 {
    USED.iter()
        .map(|s| s.0.load(Ordering::Relaxed))
        .sum::<i64>()
        .max(0) as u64
}

/// Bytes allocated minus bytes freed by the calling thread (can be
/// negative when it frees what others allocated): a cheap, uncontended
/// read for code that tracks its own thread's growth.
#[inline]
pub fn thread_used() -> i64 {
    slot().load(Ordering::Relaxed)
}

/// Resident set size of the process, from /proc/self/statm.
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}
