//! Smoke test with the stock `redis-benchmark` client against ringkv
//! (`--shards 1`): `-t ping,set,get,incr,mset -n 100000 -P 16 -q` must
//! exit 0, print no error, and print one result line with a positive
//! "requests per second" for each test (PING runs as PING_INLINE and
//! PING_MBULK, MSET is reported as "MSET (10 keys)").

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

const BENCH_TIMEOUT: Duration = Duration::from_secs(180);

/// Parses "NAME: 12345.67 requests per second, p50=..." lines.
fn results(output: &str) -> Vec<(String, f64)> {
    output
        .split(['\r', '\n'])
        .filter_map(|line| {
            let line = line.trim();
            let (name, rest) = line.split_once(": ")?;
            let (rps, _) = rest.split_once(" requests per second")?;
            Some((name.to_string(), rps.trim().parse::<f64>().ok()?))
        })
        .collect()
}

#[test]
fn parser_understands_redis_benchmark_output() {
    let sample = " \rPING_INLINE: rps=0.0 (overall: -nan) avg_msec=-nan (overall: -nan)\r      \
                  \rPING_INLINE: 1204819.38 requests per second, p50=0.487 msec\n\
                  \rMSET (10 keys): 591716.00 requests per second, p50=1.215 msec\n";
    assert_eq!(
        results(sample),
        vec![
            ("PING_INLINE".to_string(), 1204819.38),
            ("MSET (10 keys)".to_string(), 591716.0)
        ]
    );
}

#[test]
fn redis_benchmark_runs_clean() {
    let Some(bench) = require_tool("redis-benchmark") else {
        return;
    };
    let mut srv = Server::ringkv(1, &[]);
    let dir = std::env::temp_dir().join(format!("ringkv-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out_path = dir.join("stdout");
    let err_path = dir.join("stderr");
    let port = srv.port().to_string();
    let mut child = Command::new(&bench)
        .args(["-h", "127.0.0.1", "-p", &port])
        .args([
            "-t",
            "ping,set,get,incr,mset",
            "-n",
            "100000",
            "-P",
            "16",
            "-q",
        ])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("spawn redis-benchmark");
    let deadline = Instant::now() + BENCH_TIMEOUT;
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait redis-benchmark") {
            break Some(st);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&dir);
    let all = format!("{stdout}\n{stderr}");
    let Some(status) = status else {
        panic!("redis-benchmark did not finish within {BENCH_TIMEOUT:?}\n{all}");
    };
    assert!(status.success(), "redis-benchmark failed: {status}\n{all}");
    for line in all.split(['\r', '\n']) {
        assert!(
            !line.contains("ERR") && !line.to_lowercase().contains("error"),
            "error in redis-benchmark output: {line:?}\n{all}"
        );
    }
    let res = results(&stdout);
    for name in [
        "PING_INLINE",
        "PING_MBULK",
        "SET",
        "GET",
        "INCR",
        "MSET (10 keys)",
    ] {
        let found: Vec<&(String, f64)> = res.iter().filter(|(n, _)| n == name).collect();
        assert_eq!(found.len(), 1, "exactly one result line for {name}\n{all}");
        assert!(
            found[0].1 > 0.0,
            "{name}: non-positive requests per second\n{all}"
        );
    }
    assert_eq!(res.len(), 6, "unexpected result lines: {res:?}\n{all}");
    srv.assert_alive();
    // The benchmark's keys are really there.
    let mut con = srv.client();
    assert_eq!(
        run(
            &mut con,
            &["EXISTS", "key:__rand_int__", "counter:__rand_int__"]
        ),
        Ok(int(2))
    );
}
