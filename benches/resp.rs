//! RESP micro-benchmarks: the request parser (`ringkv::resp::parse`) and the
//! reply encoder (`ringkv::resp::Out`).
//!
//! Run: `cargo bench --bench resp` (add `-- parser/` or `-- reply/` to pick a
//! group; `-- --warm-up-time 1 --measurement-time 2` for a quick pass).

use bumpalo::collections::Vec as BVec;
use bumpalo::Bump;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ringkv::resp::{parse, Limits, Out, Parsed};

/// Encodes one command as a RESP multibulk frame.
fn frame(args: &[&[u8]]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        v.extend_from_slice(a);
        v.extend_from_slice(b"\r\n");
    }
    v
}

/// Parses every request in `buf`, as the shard does for one receive batch
/// (one arena, one argument vector, cleared per request). Returns the number
/// of arguments seen so the work cannot be optimised away.
fn parse_all(buf: &[u8], bump: &mut Bump) -> usize {
    bump.reset();
    let mut args: BVec<&[u8]> = BVec::with_capacity_in(8, bump);
    let mut pos = 0;
    let mut total = 0;
    while pos < buf.len() {
        args.clear();
        match parse(&buf[pos..], bump, &mut args, Limits::default()) {
            Ok(Parsed::Done { consumed }) => {
                pos += consumed;
                total += args.len();
            }
            other => panic!("unexpected parse result at {pos}: {other:?}"),
        }
    }
    total
}

fn bench_parser(c: &mut Criterion) {
    let get = frame(&[b"GET", b"key:000000012345"]);
    let set = frame(&[b"SET", b"key:000000012345", &[b'x'; 32]]);
    let pipeline: Vec<u8> = (0..64)
        .flat_map(|i| frame(&[b"GET", format!("key:{i:012}").as_bytes()]))
        .collect();
    let big = vec![b'v'; 1 << 20];
    let big_set = frame(&[b"SET", b"big", &big]);
    let inline = b"SET key:000000012345 \"hello world\" EX 100\r\n".to_vec();

    let mut g = c.benchmark_group("parser");
    let mut bump = Bump::new();
    // Throughput is in requests: arguments are slices into the buffer, so
    // a 1 MiB value is never copied and bytes/s would mean little.
    let cases: [(&str, &[u8], u64); 5] = [
        ("get", &get, 1),
        ("set_32b", &set, 1),
        ("pipeline_64_get", &pipeline, 64),
        ("set_1mib", &big_set, 1),
        ("inline_set_quoted", &inline, 1),
    ];
    for (name, buf, requests) in cases {
        g.throughput(Throughput::Elements(requests));
        g.bench_function(name, |b| b.iter(|| parse_all(black_box(buf), &mut bump)));
    }
    g.finish();
}

fn bench_reply(c: &mut Criterion) {
    let mut g = c.benchmark_group("reply");
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let value = [b'x'; 32];
    let members: Vec<Vec<u8>> = (0..100)
        .map(|i| format!("member:{i:08}").into_bytes())
        .collect();

    g.bench_function("bulk_32b", |b| {
        b.iter(|| {
            buf.clear();
            Out::new(&mut buf, false).bulk(black_box(&value));
            buf.len()
        })
    });
    g.bench_function("integer", |b| {
        b.iter(|| {
            buf.clear();
            Out::new(&mut buf, false).int(black_box(-1_234_567_890));
            buf.len()
        })
    });
    g.bench_function("array_100_bulks", |b| {
        b.iter(|| {
            buf.clear();
            let mut o = Out::new(&mut buf, false);
            o.array(members.len());
            for m in black_box(&members) {
                o.bulk(m);
            }
            buf.len()
        })
    });
    for (name, resp3) in [
        ("map_50_double_resp3", true),
        ("map_50_double_resp2", false),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                buf.clear();
                let mut o = Out::new(&mut buf, resp3);
                o.map(50);
                for (i, m) in black_box(&members[..50]).iter().enumerate() {
                    o.bulk(m);
                    o.double(i as f64 * 1.5 + 0.1);
                }
                buf.len()
            })
        });
    }
    g.bench_function("double_resp3", |b| {
        b.iter(|| {
            buf.clear();
            Out::new(&mut buf, true).double(black_box(1.0_f64 / 3.0));
            buf.len()
        })
    });
    g.finish();
}

criterion_group!(benches, bench_parser, bench_reply);
criterion_main!(benches);
