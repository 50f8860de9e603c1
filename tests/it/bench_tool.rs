//! Tests for the `ringkv-bench` load generator against a real ringkv:
//! exact request counts, error counting, monotone percentiles, the JSON
//! report, the HdrHistogram interval log, the open-loop schedule and
//! transactions (`--multi`, against redis-server).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;

// ---------------------------------------------------------------------------
// a tiny JSON reader (enough for the report)
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(BTreeMap<String, Json>),
}

impl Json {
    fn get(&self, key: &str) -> &Json {
        match self {
            Json::Obj(m) => m
                .get(key)
                .unwrap_or_else(|| panic!("no key {key:?} in JSON object")),
            other => panic!("not an object: {other:?}"),
        }
    }

    fn num(&self) -> f64 {
        match self {
            Json::Num(n) => *n,
            other => panic!("not a number: {other:?}"),
        }
    }

    fn u(&self, key: &str) -> u64 {
        let n = self.get(key).num();
        assert!(n >= 0.0 && n.fract() == 0.0, "{key} = {n} is not a count");
        n as u64
    }

    fn arr(&self) -> &[Json] {
        match self {
            Json::Arr(v) => v,
            other => panic!("not an array: {other:?}"),
        }
    }
}

struct JsonParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl JsonParser<'_> {
    fn parse(text: &str) -> Json {
        let mut p = JsonParser {
            s: text.as_bytes(),
            i: 0,
        };
        let v = p.value();
        p.ws();
        assert_eq!(p.i, p.s.len(), "trailing bytes after JSON value");
        v
    }

    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) {
        self.ws();
        assert_eq!(
            self.s.get(self.i).copied(),
            Some(c),
            "expected {:?} at byte {}",
            c as char,
            self.i
        );
        self.i += 1;
    }

    fn peek(&mut self) -> u8 {
        self.ws();
        *self.s.get(self.i).expect("unexpected end of JSON")
    }

    fn value(&mut self) -> Json {
        match self.peek() {
            b'{' => {
                self.eat(b'{');
                let mut m = BTreeMap::new();
                if self.peek() == b'}' {
                    self.eat(b'}');
                    return Json::Obj(m);
                }
                loop {
                    let Json::Str(k) = self.value() else {
                        panic!("object key is not a string at byte {}", self.i)
                    };
                    self.eat(b':');
                    let v = self.value();
                    m.insert(k, v);
                    if self.peek() == b',' {
                        self.eat(b',');
                    } else {
                        self.eat(b'}');
                        return Json::Obj(m);
                    }
                }
            }
            b'[' => {
                self.eat(b'[');
                let mut v = Vec::new();
                if self.peek() == b']' {
                    self.eat(b']');
                    return Json::Arr(v);
                }
                loop {
                    v.push(self.value());
                    if self.peek() == b',' {
                        self.eat(b',');
                    } else {
                        self.eat(b']');
                        return Json::Arr(v);
                    }
                }
            }
            b'"' => {
                self.i += 1;
                let mut out = String::new();
                loop {
                    let c = self.s[self.i];
                    self.i += 1;
                    match c {
                        b'"' => return Json::Str(out),
                        b'\\' => {
                            let e = self.s[self.i];
                            self.i += 1;
                            match e {
                                b'n' => out.push('\n'),
                                b't' => out.push('\t'),
                                b'r' => out.push('\r'),
                                b'u' => {
                                    let hex = std::str::from_utf8(&self.s[self.i..self.i + 4])
                                        .expect("hex");
                                    self.i += 4;
                                    let cp = u32::from_str_radix(hex, 16).expect("hex");
                                    out.push(char::from_u32(cp).unwrap_or('?'));
                                }
                                other => out.push(other as char),
                            }
                        }
                        _ => {
                            // copy one UTF-8 sequence
                            let start = self.i - 1;
                            let mut end = self.i;
                            while end < self.s.len() && (self.s[end] & 0xC0) == 0x80 {
                                end += 1;
                            }
                            out.push_str(std::str::from_utf8(&self.s[start..end]).expect("utf8"));
                            self.i = end;
                        }
                    }
                }
            }
            b't' => self.word("true", Json::Bool(true)),
            b'f' => self.word("false", Json::Bool(false)),
            b'n' => self.word("null", Json::Null),
            _ => {
                let start = self.i;
                while self.i < self.s.len()
                    && matches!(
                        self.s[self.i],
                        b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                    )
                {
                    self.i += 1;
                }
                let t = std::str::from_utf8(&self.s[start..self.i]).unwrap();
                Json::Num(
                    t.parse()
                        .unwrap_or_else(|_| panic!("bad number {t:?} at byte {start}")),
                )
            }
        }
    }

    fn word(&mut self, w: &str, v: Json) -> Json {
        assert!(self.s[self.i..].starts_with(w.as_bytes()), "bad literal");
        self.i += w.len();
        v
    }
}

#[test]
fn json_reader_works() {
    let v = JsonParser::parse(
        r#"{"a": [1, 2.5, -3e2], "b": {"c": null, "d": "x\"y\u0041"}, "e": true}"#,
    );
    assert_eq!(v.get("a").arr()[2].num(), -300.0);
    assert_eq!(v.get("b").get("d"), &Json::Str("x\"yA".into()));
    assert_eq!(v.get("e"), &Json::Bool(true));
}

// ---------------------------------------------------------------------------
// running the tool
// ---------------------------------------------------------------------------

const RUN_TIMEOUT: Duration = Duration::from_secs(60);

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ringkv-bench-tool-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs ringkv-bench with `args` (bounded by RUN_TIMEOUT).
fn bench(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringkv-bench"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ringkv-bench");
    let deadline = Instant::now() + RUN_TIMEOUT;
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "ringkv-bench {args:?} did not finish within {RUN_TIMEOUT:?}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn describe(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn read_json(path: &Path) -> Json {
    JsonParser::parse(&std::fs::read_to_string(path).expect("read JSON report"))
}

/// The latency summary must be non-decreasing p50 <= ... <= max, and the
/// percentile distribution monotone in both coordinates.
fn assert_monotone(h: &Json, what: &str) {
    let names = [
        "min_us",
        "p50_us",
        "p90_us",
        "p99_us",
        "p99_9_us",
        "p99_99_us",
        "max_us",
    ];
    let vals: Vec<f64> = names.iter().map(|n| h.get(n).num()).collect();
    for w in vals.windows(2) {
        assert!(w[0] <= w[1], "{what}: percentiles not monotone: {vals:?}");
    }
    assert!(vals[0] > 0.0, "{what}: zero latency");
    let dist = h.get("percentiles").arr();
    assert!(dist.len() > 5, "{what}: short distribution");
    let mut last = (-1.0, -1.0);
    for p in dist {
        let (q, v) = (p.arr()[0].num(), p.arr()[1].num());
        assert!(
            q >= last.0 && v >= last.1,
            "{what}: distribution not monotone"
        );
        last = (q, v);
    }
    assert_eq!(last.0, 100.0, "{what}: distribution ends below 100%");
}

/// Total counts of the untagged / "service" histograms in an interval log.
fn hdr_log_counts(path: &Path) -> (u64, u64, usize) {
    let bytes = std::fs::read(path).expect("read hdr log");
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.contains("#[Histogram log format version 1.3]"));
    assert!(text.contains("#[StartTime: "));
    assert!(text.contains("\"StartTimestamp\",\"Interval_Length\""));
    let mut de = Deserializer::new();
    let (mut plain, mut service, mut intervals) = (0u64, 0u64, 0usize);
    for entry in IntervalLogIterator::new(&bytes) {
        if let LogEntry::Interval(iv) = entry.expect("log entry parses") {
            let raw = base64_decode(iv.encoded_histogram());
            let h: Histogram<u64> = de
                .deserialize(&mut raw.as_slice())
                .expect("histogram deserializes");
            match iv.tag().map(|t| t.as_str().to_string()) {
                None => {
                    plain += h.len();
                    intervals += 1;
                }
                Some(t) if t == "service" => service += h.len(),
                Some(t) => panic!("unexpected tag {t}"),
            }
        }
    }
    (plain, service, intervals)
}

fn base64_decode(s: &str) -> Vec<u8> {
    const ALPHA: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = ALPHA.iter().position(|&a| a == c).expect("base64 char") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

// ---------------------------------------------------------------------------
// tests
// ---------------------------------------------------------------------------

#[test]
fn closed_loop_counts_are_exact() {
    let srv = Server::ringkv(1, &[]);
    let dir = tmpdir("closed");
    let json = dir.join("report.json");
    let hlog = dir.join("run.hlog");
    let port = srv.port().to_string();
    let out = bench(&[
        "-p",
        &port,
        "--requests",
        "20000",
        "--pipeline",
        "8",
        "--connections",
        "2",
        "--keyspace",
        "1000",
        "--json",
        json.to_str().unwrap(),
        "--hdr-log",
        hlog.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("20,000 sent, 20,000 replies, 0 errors"),
        "{stdout}"
    );
    assert!(stdout.contains("p99.99"), "{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("req/s"), "no progress line: {stderr}");

    let r = read_json(&json);
    let req = r.get("requests");
    assert_eq!(req.u("target"), 20000);
    assert_eq!(req.u("sent"), 20000);
    assert_eq!(req.u("replies"), 20000);
    assert_eq!(req.u("errors"), 0);
    assert_eq!(req.u("unanswered"), 0);
    // SET:GET 1:10 over a cold key space: some GETs miss
    assert!(req.u("nil") > 0 && req.u("nil") < 20000);
    assert_eq!(r.get("config").get("mode"), &Json::Str("closed".into()));
    assert_eq!(r.get("latency").u("count"), 20000);
    assert_monotone(r.get("latency"), "latency");
    assert_eq!(r.get("service_time"), &Json::Null);
    assert!(r.get("throughput_rps").num() > 0.0);
    let iv_replies: u64 = r
        .get("intervals")
        .arr()
        .iter()
        .map(|iv| iv.u("replies"))
        .sum();
    assert_eq!(iv_replies, 20000, "intervals must add up");

    let (plain, service, intervals) = hdr_log_counts(&hlog);
    assert_eq!(plain, 20000, "HDR log histograms must hold every request");
    assert_eq!(service, 0);
    assert!(intervals >= 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn open_loop_follows_the_schedule() {
    let srv = Server::ringkv(1, &[]);
    let dir = tmpdir("open");
    let json = dir.join("report.json");
    let hlog = dir.join("run.hlog");
    let port = srv.port().to_string();
    let t0 = Instant::now();
    // 1500 requests at 2000 req/s: the last is due at 0.75 s
    let out = bench(&[
        "-p",
        &port,
        "--rate",
        "2000",
        "--requests",
        "1500",
        "--connections",
        "3",
        "--command",
        "SET k:__key__ __value__",
        "--command",
        "GET k:__key__",
        "--ratio",
        "1:1",
        "--distribution",
        "zipf",
        "--json",
        json.to_str().unwrap(),
        "--hdr-log",
        hlog.to_str().unwrap(),
        "--quiet",
    ]);
    let wall = t0.elapsed();
    assert!(out.status.success(), "{}", describe(&out));
    let r = read_json(&json);
    let req = r.get("requests");
    assert_eq!(req.u("sent"), 1500);
    assert_eq!(req.u("replies"), 1500);
    assert_eq!(req.u("errors"), 0);
    assert_eq!(r.get("config").get("mode"), &Json::Str("open".into()));
    let elapsed = r.get("elapsed_s").num();
    assert!(
        (0.70..5.0).contains(&elapsed),
        "open loop must follow its schedule: elapsed {elapsed} s"
    );
    assert!(wall >= Duration::from_millis(700), "ran too fast: {wall:?}");
    assert_monotone(r.get("latency"), "latency");
    assert_monotone(r.get("service_time"), "service time");
    assert_eq!(r.get("service_time").u("count"), 1500);
    // latency from the intended time is never below the service time
    assert!(r.get("latency").get("max_us").num() >= r.get("service_time").get("max_us").num());
    let (plain, service, _) = hdr_log_counts(&hlog);
    assert_eq!((plain, service), (1500, 1500));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn error_replies_are_counted() {
    let srv = Server::ringkv(1, &[]);
    let dir = tmpdir("errors");
    let json = dir.join("report.json");
    let port = srv.port().to_string();
    // every other request is an unknown command; pipelined, exact count
    let out = bench(&[
        "-p",
        &port,
        "-n",
        "1001",
        "-P",
        "4",
        "-c",
        "3",
        "--command",
        "NOSUCHCOMMAND __key__",
        "--command",
        "PING",
        "--json",
        json.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let r = read_json(&json);
    let req = r.get("requests");
    assert_eq!(req.u("sent"), 1001);
    assert_eq!(req.u("replies"), 1001);
    // connections 0,1,2 get 334,334,333 requests; connection j starts
    // its NOSUCHCOMMAND/PING cycle at position j % 2
    assert_eq!(req.u("errors"), 167 + 167 + 167);
    let samples = r.get("error_samples").arr();
    assert!(
        matches!(&samples[0], Json::Str(s) if s.starts_with("ERR unknown command")),
        "{samples:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--multi`: one request is MULTI + N commands + EXEC (checked against
/// redis-server, which has transactions).
#[test]
fn multi_sends_transactions_and_checks_their_replies() {
    let Some(srv) = Server::redis() else { return };
    let dir = tmpdir("multi");
    let json = dir.join("report.json");
    let port = srv.port().to_string();
    // 300 transactions of 10 INCRs of distinct keys, 4 in flight per
    // connection; with one key number every transaction hits k:0:0..k:0:9
    let out = bench(&[
        "-p",
        &port,
        "-n",
        "300",
        "-P",
        "4",
        "-c",
        "3",
        "--multi",
        "10",
        "--keyspace",
        "1",
        "--command",
        "INCR k:__key__:__i__",
        "--json",
        json.to_str().unwrap(),
        "-q",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let r = read_json(&json);
    let req = r.get("requests");
    assert_eq!(req.u("sent"), 300);
    assert_eq!(req.u("replies"), 300);
    assert_eq!(req.u("errors"), 0);
    assert_eq!(req.u("unanswered"), 0);
    assert_eq!(r.get("config").u("multi"), 10);
    assert_eq!(r.get("latency").u("count"), 300);
    let mut con = srv.client();
    for i in 0..10 {
        let key = format!("k:0:{i}");
        assert_eq!(ok(&mut con, &["GET", &key]), bulk("300"), "{key}");
    }
    assert_eq!(ok(&mut con, &["DBSIZE"]), int(10));

    // a command failing inside EXEC makes the transaction an error
    let out = bench(&[
        "-p",
        &port,
        "-n",
        "20",
        "-P",
        "2",
        "-c",
        "2",
        "--multi",
        "2",
        "--command",
        "SET s:__key__ abc",
        "--command",
        "INCR s:__key__",
        "--json",
        json.to_str().unwrap(),
        "-q",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let r = read_json(&json);
    let req = r.get("requests");
    assert_eq!((req.u("sent"), req.u("replies")), (20, 20));
    assert_eq!(req.u("errors"), 20);
    let samples = r.get("error_samples").arr();
    assert!(
        matches!(&samples[0], Json::Str(s) if s.starts_with("ERR value is not an integer")),
        "{samples:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_arguments_and_unreachable_server_fail_cleanly() {
    let out = bench(&["--ratio", "1:2:3", "-n", "10"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--ratio"));
    // nothing listens on this port
    let port = free_port().to_string();
    let out = bench(&["-p", &port, "-n", "10", "-c", "1"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("connect"));
}
