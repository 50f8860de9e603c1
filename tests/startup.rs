//! Start-up validation: bad flags, values and config lines are reported by
//! name and the process exits with status 1 without serving.

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
