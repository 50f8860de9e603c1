//! The global allocator: mimalloc, wrapped to count live heap bytes per
//! thread without contention (each thread adds to its own cache line), so
//! INFO can report `used_memory` as the sum.
//!
//! Each block counts as what mimalloc really reserved for it (its usable
//! size: the request rounded up to the size class), read from the block's
//! page header on both allocation and free, so the two always agree. That
//! costs a few loads per call: no lock, no system call.

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

/// mimalloc entry points that the `libmimalloc-sys` crate only declares
/// under its `extended` feature; the linked library always defines them.
mod ffi {
    use std::ffi::{c_char, c_void};
    pub type OutputFn = unsafe extern "C" fn(msg: *const c_char, arg: *mut c_void);
    extern "C" {
        pub fn mi_usable_size(p: *const c_void) -> usize;
        pub fn mi_collect(force: bool);
        pub fn mi_version() -> i32;
        pub fn mi_stats_print_out(out: Option<OutputFn>, arg: *mut c_void);
        pub fn mi_process_info(
            elapsed_msecs: *mut usize,
            user_msecs: *mut usize,
            system_msecs: *mut usize,
            current_rss: *mut usize,
            peak_rss: *mut usize,
            current_commit: *mut usize,
            peak_commit: *mut usize,
            page_faults: *mut usize,
        );
    }
}

/// The bytes mimalloc holds for the live block at `ptr`.
#[inline]
fn usable(ptr: *mut u8) -> i64 {
    // SAFETY: only called with a non-null pointer mimalloc returned and
    // that has not been freed yet.
    unsafe { ffi::mi_usable_size(ptr as *const std::ffi::c_void) as i64 }
}

// SAFETY: every call forwards to mimalloc with the same layout and pointer;
// the counters are plain atomics and never affect the memory handed out.
// `usable` runs on a block only while it is live (after its allocation,
// before its free).
unsafe impl GlobalAlloc for Counting {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = mimalloc::MiMalloc.alloc(layout);
        if !p.is_null() {
            slot().fetch_add(usable(p), Ordering::Relaxed);
        }
        p
    }
    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = mimalloc::MiMalloc.alloc_zeroed(layout);
        if !p.is_null() {
            slot().fetch_add(usable(p), Ordering::Relaxed);
        }
        p
    }
    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        slot().fetch_sub(usable(ptr), Ordering::Relaxed);
        mimalloc::MiMalloc.dealloc(ptr, layout)
    }
    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = usable(ptr);
        let p = mimalloc::MiMalloc.realloc(ptr, layout, new_size);
        if !p.is_null() {
            slot().fetch_add(usable(p) - old, Ordering::Relaxed);
        }
        p
    }
}

/// Live heap bytes allocated through the global allocator (all threads),
/// counted as mimalloc's usable sizes. Sums only the counter slots handed
/// out to threads so far.
pub fn used_memory() -> u64 {
    // Slot 0 also takes the counts of threads whose TLS is gone.
    let n = NEXT_SLOT.load(Ordering::Relaxed).clamp(1, SLOTS);
    USED[..n]
        .iter()
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

static STARTUP: AtomicI64 = AtomicI64::new(0);
static SHARDS_READY: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Records the memory in use once the server is set up (INFO
/// `used_memory_startup`); called again when every shard has built its
/// event loop (see [`shard_ready`]).
pub fn mark_startup() {
    STARTUP.store(used_memory() as i64, Ordering::Relaxed);
}

/// A shard's event loop starts its first iteration: once all `n` have,
/// the start-up figure is taken (before they serve any request).
pub fn shard_ready(n: usize) {
    if SHARDS_READY.fetch_add(1, Ordering::Relaxed) + 1 == n {
        mark_startup();
    }
}

/// The memory in use at start-up (see [`mark_startup`]).
pub fn startup_memory() -> u64 {
    STARTUP.load(Ordering::Relaxed).max(0) as u64
}

/// mimalloc's version as "major.minor.patch".
pub fn allocator_version() -> String {
    // SAFETY: a pure query.
    let v = unsafe { ffi::mi_version() };
    format!("{}.{}.{}", v / 10000, v / 100 % 100, v % 100)
}

/// Bytes mimalloc has committed from the OS (its pages, used or not).
pub fn allocator_committed() -> u64 {
    let mut commit = 0usize;
    // SAFETY: null outputs are skipped by mimalloc; `commit` is a valid
    // place to write.
    unsafe {
        ffi::mi_process_info(
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut commit,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        );
    }
    commit as u64
}

/// Returns the calling thread's free pages to the OS where mimalloc can
/// (mimalloc's heaps are per thread: each shard purges its own).
pub fn purge_thread() {
    // SAFETY: collects the calling thread's heap; no pointer is involved.
    unsafe { ffi::mi_collect(true) }
}

/// mimalloc's statistics report as text (MEMORY MALLOC-STATS).
pub fn malloc_stats() -> String {
    // The report is collected into a buffer allocated beforehand: the
    // callback must not allocate while mimalloc is printing.
    unsafe extern "C" fn append(msg: *const std::ffi::c_char, arg: *mut std::ffi::c_void) {
        if msg.is_null() || arg.is_null() {
            return;
        }
        // SAFETY: `arg` is the `Vec` passed below, alive for the whole
        // call; `msg` is a NUL-terminated string from mimalloc.
        let out = unsafe { &mut *(arg as *mut Vec<u8>) };
        let s = unsafe { std::ffi::CStr::from_ptr(msg) }.to_bytes();
        let room = out.capacity() - out.len();
        out.extend_from_slice(&s[..s.len().min(room)]);
    }
    let mut out: Vec<u8> = Vec::with_capacity(256 * 1024);
    // SAFETY: the callback only appends to `out`, within its capacity, and
    // `out` outlives the call.
    unsafe {
        ffi::mi_stats_print_out(
            Some(append),
            &mut out as *mut Vec<u8> as *mut std::ffi::c_void,
        );
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Resident set size of the process, from /proc/self/statm.
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}
