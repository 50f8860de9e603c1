//! Start-up validation: bad flags, values and config lines are reported by
//! name and the process exits with status 1 without serving.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

fn run(args: &[&str]) -> (i32, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ringkv"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn ringkv");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(_status) = child.try_wait().expect("wait") {
            let out = child.wait_with_output().expect("output");
            let text = String::from_utf8_lossy(&out.stderr).into_owned()
                + &String::from_utf8_lossy(&out.stdout);
            return (out.status.code().unwrap_or(-1), text);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ringkv {args:?} did not exit within 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn unknown_flag_exits_1_naming_it() {
    let (code, text) = run(&["--no-such-flag", "1"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("no-such-flag"), "{text}");
}

#[test]
fn bad_values_exit_1_naming_them() {
    for (args, needle) in [
        (&["--shards", "abc"][..], "shards"),
        (&["--maxclients", "lots"][..], "maxclients"),
        (&["--io", "kqueue"][..], "kqueue"),
        (&["--cpus", "9-3"][..], "cpus"),
        (&["--hz", "0"][..], "hz"),
        (&["--port", "70000"][..], "port"),
    ] {
        let (code, text) = run(args);
        assert_eq!(code, 1, "{args:?}: {text}");
        assert!(text.contains(needle), "{args:?}: {text}");
    }
}

#[test]
fn bad_config_file_line_is_reported_with_its_line() {
    let dir = std::env::temp_dir().join(format!("ringkv-startup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.conf");
    std::fs::write(
        &path,
        "# a comment\nport 7777\nmaxmemory-policy sometimes\n",
    )
    .unwrap();
    let (code, text) = run(&[path.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("line 3") && text.contains("maxmemory-policy"),
        "{text}"
    );
}

#[test]
fn missing_config_file_exits_1() {
    let (code, text) = run(&["/nonexistent/ringkv.conf"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("/nonexistent/ringkv.conf"), "{text}");
}

#[test]
fn help_succeeds() {
    let (code, text) = run(&["--help"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("--shards"), "{text}");
}

/// redis.conf files and flags written for Redis <= 6.2 use the ziplist
/// names (and lua-time-limit, slave-*); Redis 7.0 still accepts them as
/// aliases. Both servers load the same file and flags and must report the
/// same values under the main names and the aliases.
#[test]
fn config_file_and_flags_accept_redis_7_0_aliases() {
    let dir = std::env::temp_dir().join(format!("ringkv-startup-alias-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("old-names.conf");
    std::fs::write(
        &path,
        "list-max-ziplist-size -3\nzset-max-ziplist-entries 16\nzset-max-ziplist-value 8\n\
         hash-max-ziplist-value 32\nlua-time-limit 1000\nslave-serve-stale-data no\n",
    )
    .unwrap();
    let flags = [
        "--hash-max-ziplist-entries",
        "64",
        "--zset-max-ziplist-value",
        "9",
    ];
    let want: Vec<(&str, &str)> = vec![
        ("hash-max-listpack-entries", "64"),
        ("hash-max-ziplist-entries", "64"),
        ("hash-max-listpack-value", "32"),
        ("list-max-listpack-size", "-3"),
        ("list-max-ziplist-size", "-3"),
        ("zset-max-listpack-entries", "16"),
        ("zset-max-ziplist-value", "9"),
        ("busy-reply-threshold", "1000"),
        ("lua-time-limit", "1000"),
        ("replica-serve-stale-data", "no"),
        ("slave-serve-stale-data", "no"),
    ];
    let check = |srv: &common::Server| {
        let mut con = srv.client();
        for (name, value) in &want {
            let got = common::ok(&mut con, &["CONFIG", "GET", name]);
            assert_eq!(
                got,
                common::arr(vec![common::bulk(name), common::bulk(value)]),
                "{}: CONFIG GET {name}",
                srv.label()
            );
        }
    };
    check(&common::Server::ringkv_conf(&path, &flags));
    if let Some(redis) = common::Server::redis_conf(&path, &flags) {
        check(&redis);
    }
    // A bad value under an alias is reported with its line, like any.
    let bad = dir.join("bad-alias.conf");
    std::fs::write(&bad, "# old names\nhash-max-ziplist-entries lots\n").unwrap();
    let (code, text) = run(&[bad.to_str().unwrap()]);
    let (fcode, ftext) = run(&["--zset-max-ziplist-entries", "x"]);
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("line 2") && text.contains("hash-max-ziplist-entries"),
        "{text}"
    );
    assert_eq!(fcode, 1, "{ftext}");
    assert!(ftext.contains("zset-max-ziplist-entries"), "{ftext}");
}
