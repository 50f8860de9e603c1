//! Start-up validation: bad flags, values and config lines are reported by
//! name and the process exits with status 1 without serving. Also: the
//! listening port is exclusive, signals are logged by name, and shutdown
//! finishes while a shard is stuck in a long command.

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{self, *};

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

/// A second server on a port ringkv already listens on must fail (as
/// redis-server does) instead of joining the SO_REUSEPORT group and taking
/// half of the connections; the first one's shards still share the port.
#[test]
fn second_instance_on_the_same_port_fails() {
    let srv = Server::ringkv(2, &[]);
    let port = srv.port().to_string();
    let (code, text) = run(&[
        "--port",
        &port,
        "--bind",
        "127.0.0.1",
        "--shards",
        "2",
        "--no-pin",
        "--save",
        "",
    ]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("Address already in use"), "{text}");
    assert!(ping_ok(srv.port()), "{}", srv.log());
}

/// An optional address (`-` prefix) that is in use is still an error;
/// only a missing address or family is skipped (redis-server's rule).
#[test]
fn optional_bind_address_in_use_fails() {
    let srv = Server::ringkv(1, &[]);
    // In a file: clap would take "-127.0.0.1" for a flag.
    let conf = srv.work_dir().join("optional-bind.conf");
    std::fs::write(
        &conf,
        format!("port {}\nbind -127.0.0.1\nsave \"\"\n", srv.port()),
    )
    .unwrap();
    let (code, text) = run(&[conf.to_str().unwrap(), "--shards", "1", "--no-pin"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("Address already in use"), "{text}");
}

/// Under a `RINGKV_TEST_BIN=.../redis-server` override the harness starts
/// redis-server, which ignores ringkv's extra arguments.
fn redis_override() -> bool {
    ringkv_bin().to_string_lossy().contains("redis-server")
}

fn signal(srv: &Server, sig: i32) {
    // SAFETY: kill(2) on our own child's pid.
    let r = unsafe { libc::kill(srv.pid() as libc::pid_t, sig) };
    assert_eq!(r, 0, "kill");
}

#[test]
fn sigint_is_logged_as_sigint() {
    let mut srv = Server::ringkv(1, &[]);
    signal(&srv, libc::SIGINT);
    let st = srv
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("still running after SIGINT\n{}", srv.log()));
    assert_eq!(st.code(), Some(0), "{}", srv.log());
    let log = srv.log();
    assert!(
        log.contains("Received SIGINT scheduling shutdown..."),
        "{log}"
    );
    assert!(!log.contains("SIGTERM"), "{log}");
}

/// Waits (bounded) until the server log contains `needle`.
fn wait_log(srv: &Server, needle: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if srv.log().contains(needle) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A shard stuck in a long command neither hangs SIGTERM nor goes
/// unnoticed: the watchdog names it while it runs, and shutdown gives up
/// on it after a bounded wait, says why it does not save, and exits 1.
#[test]
fn sigterm_with_a_stuck_shard_exits_and_names_it() {
    if redis_override() {
        eprintln!("SKIPPED: ringkv's shutdown of a stuck shard");
        return;
    }
    let mut srv = Server::ringkv(2, &["--save", "3600 1"]);
    let mut con = srv.client();
    ok(&mut con, &["config", "set", "watchdog-period", "200"]);
    let mut stuck = srv.raw_conn();
    stuck.send(b"*3\r\n$5\r\nDEBUG\r\n$5\r\nSLEEP\r\n$2\r\n30\r\n");
    stuck.stream.flush().unwrap();
    assert!(
        wait_log(&srv, "WATCHDOG TIMER EXPIRED", Duration::from_secs(10)),
        "no watchdog line while DEBUG SLEEP runs\n{}",
        srv.log()
    );
    let log = srv.log();
    assert!(log.contains("last command 'debug'"), "{log}");
    signal(&srv, libc::SIGTERM);
    let st = srv
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("still running 10 s after SIGTERM\n{}", srv.log()));
    assert_eq!(st.code(), Some(1), "{}", srv.log());
    let log = srv.log();
    assert!(log.contains("did not stop within"), "{log}");
    assert!(log.contains("last command 'debug'"), "{log}");
    assert!(log.contains("not saving: shard "), "{log}");
    assert!(!srv.work_dir().join("dump.rdb").exists(), "{log}");
}

const DEBUG_REFUSED: &str = "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";

/// DEBUG is refused by default, as in Redis 7.0; `local` allows loopback
/// clients; the setting cannot be changed at run time.
#[test]
fn debug_command_is_refused_unless_enabled() {
    let refs: Vec<Server> = Server::redis_with(&["--enable-debug-command", "no"])
        .into_iter()
        .collect();
    let mine: Vec<Server> = if redis_override() {
        Vec::new()
    } else {
        vec![Server::ringkv(2, &["--enable-debug-command", "no"])]
    };
    for srv in refs.iter().chain(&mine) {
        let mut con = srv.client();
        assert_eq!(
            err(&mut con, &["debug", "sleep", "0"]),
            DEBUG_REFUSED,
            "{}",
            srv.label()
        );
        assert_eq!(
            err(&mut con, &["config", "set", "enable-debug-command", "yes"]),
            "ERR CONFIG SET failed (possibly related to argument 'enable-debug-command') - can't set immutable config",
            "{}",
            srv.label()
        );
    }
    let local = if redis_override() {
        Server::redis_with(&["--enable-debug-command", "local"]).expect("redis-server")
    } else {
        Server::ringkv(1, &["--enable-debug-command", "local"])
    };
    let mut con = local.client();
    ok(&mut con, &["debug", "sleep", "0"]);
    let v = ok(&mut con, &["config", "get", "enable-debug-command"]);
    assert_eq!(
        v,
        redis::Value::Array(vec![
            redis::Value::BulkString(b"enable-debug-command".to_vec()),
            redis::Value::BulkString(b"local".to_vec()),
        ])
    );
}
