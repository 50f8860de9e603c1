//! Keyspace micro-benchmarks: `ringkv::shard::keyspace::Keyspace` get/set on
//! a 100k-key database (hits and misses, with and without volatile keys)
//! and `ringkv::shard::dict::Dict` inserts that grow the table from empty
//! (incremental rehashing included).
//!
//! Run: `cargo bench --bench keyspace` (add `-- keyspace/` or `-- dict/` to
//! pick a group; `-- --warm-up-time 1 --measurement-time 2` for a quick
//! pass).

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ringkv::shard::dict::Dict;
use ringkv::shard::keyspace::Keyspace;
use ringkv::types::{Str, Value};

const KEYS: usize = 100_000;

fn key(i: usize) -> Vec<u8> {
    format!("key:{i:012}").into_bytes()
}

fn value() -> Value {
    Value::Str(Str::from_bytes(&[b'x'; 32]))
}

/// A keyspace with `KEYS` string keys in db 0; every `ttl_every`-th key
/// (0 = none) gets a TTL an hour out, so lookups also probe the expiry dict.
fn filled(ttl_every: usize) -> Keyspace {
    let mut ks = Keyspace::new(16);
    let far = ks.now + 3_600_000;
    for i in 0..KEYS {
        if ttl_every != 0 && i % ttl_every == 0 {
            ks.set_with_expire(0, &key(i), value(), far);
        } else {
            ks.set(0, &key(i), value(), false);
        }
    }
    ks
}

/// Keys visited in a fixed pseudo-random order (an LCG), so lookups are not
/// sequential in memory.
fn shuffled(n: usize, prefix: &str) -> Vec<Vec<u8>> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            format!("{prefix}{:012}", (x >> 33) as usize % n).into_bytes()
        })
        .collect()
}

fn bench_keyspace(c: &mut Criterion) {
    let hits = shuffled(KEYS, "key:");
    let misses = shuffled(KEYS, "nokey:");
    let mut g = c.benchmark_group("keyspace");
    g.throughput(Throughput::Elements(1));

    for (label, ttl_every) in [("", 0), ("_volatile10pct", 10)] {
        let mut ks = filled(ttl_every);
        let mut i = 0;
        g.bench_function(format!("get_hit_100k{label}"), |b| {
            b.iter(|| {
                i = (i + 1) % KEYS;
                black_box(ks.get(0, black_box(&hits[i])).is_some())
            })
        });
        g.bench_function(format!("get_miss_100k{label}"), |b| {
            b.iter(|| {
                i = (i + 1) % KEYS;
                black_box(ks.get(0, black_box(&misses[i])).is_some())
            })
        });
        // Overwrites an existing key (the common SET path). Only without
        // TTLs: SET clears a TTL, so the volatile keyspace would not stay so.
        if ttl_every == 0 {
            g.bench_function("set_existing_100k", |b| {
                b.iter(|| {
                    i = (i + 1) % KEYS;
                    ks.set(0, black_box(&hits[i]), value(), false)
                })
            });
        }
    }
    g.finish();
}

fn bench_dict(c: &mut Criterion) {
    let keys: Vec<Vec<u8>> = (0..KEYS).map(key).collect();
    let mut g = c.benchmark_group("dict");
    g.sample_size(10);
    g.throughput(Throughput::Elements(KEYS as u64));
    // 100k inserts into an empty Dict: every resize and incremental rehash
    // step is inside the measurement. Dropping the table is not.
    g.bench_function("insert_grow_100k", |b| {
        b.iter_batched(
            Dict::<u64>::new,
            |mut d| {
                for (i, k) in keys.iter().enumerate() {
                    d.insert(k, i as u64);
                }
                d
            },
            BatchSize::LargeInput,
        )
    });
    // The same through the Keyspace (new keys: SET of a fresh key).
    g.bench_function("keyspace_set_new_100k", |b| {
        b.iter_batched(
            || Keyspace::new(1),
            |mut ks| {
                for k in &keys {
                    ks.set(0, k, value(), false);
                }
                ks
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench_keyspace, bench_dict);
criterion_main!(benches);
