//! ringkv's integration tests, linked into one test binary (`it`) so the
//! suite builds and links once instead of once per file.
//!
//! Each former `tests/<name>.rs` is a module here; filter by module path:
//! `cargo test --release --test it basic::` runs what was `--test basic`.
//! All of them share one process and run in parallel (one thread per CPU
//! unless `--test-threads` says otherwise): tests must not change
//! process-wide state (environment, current directory, signal handlers,
//! CPU affinity) and must use unique temp paths. `common` is the shared
//! harness (servers on ephemeral loopback ports, RESP helpers).

mod common;

mod bad_input;
mod basic;
mod bench_tool;
mod benchmark_smoke;
mod bits;
mod concurrency;
mod diff_hash;
mod diff_list;
mod diff_pipeline;
mod diff_set;
mod diff_zset;
mod differential;
mod evict;
mod functions;
mod latency;
mod lazyfree;
mod multi;
mod notify;
mod pubsub;
mod rdb_interop;
mod scripting;
mod snapshot;
mod sort;
mod startup;
mod streams;
mod tracking;
