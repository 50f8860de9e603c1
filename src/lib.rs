//! ringkv: a Redis-compatible in-memory data store on core-pinned shard
//! threads, each running its own io_uring (or epoll) event loop.
//!
//! Layers, bottom up: `util` (parsing/formatting), `resp` (protocol),
//! `types` (values), `shard::dict` and `shard::keyspace` (data, the only
//! mutator), `cmd` (the command table and one module per family),
//! `shard` (routing, cross-shard messages and transactions), `io`
//! (event loops), `server` (start-up, threads, signals), `config`.

pub mod alloc;
pub mod clock;
pub mod cmd;
pub mod config;
pub mod conn;
pub mod io;
pub mod lazyfree;
pub mod log;
pub mod metrics;
pub mod notify;
pub mod persist;
pub mod rdb;
pub mod resp;
pub mod script;
pub mod server;
pub mod shard;
pub mod types;
pub mod util;

/// The Redis version ringkv reports to clients (HELLO, INFO), since
/// client libraries gate features on it.
pub const REDIS_VERSION: &str = "7.0.15";
