//! Lua scripting: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT.
//!
//! * `scripts_match_redis_*`: a list of scripts with KEYS/ARGV is sent
//!   pipelined over one raw connection to redis-server 7.0 and to ringkv
//!   (1 and 3 shards), in RESP2 and RESP3; the reply bytes must be equal.
//!   Skipped (with a message) when redis-server is not installed.
//! * Errors, the script cache across shards, the lock recipe under
//!   contention, and hostile scripts are checked on ringkv alone.

use std::time::{Duration, Instant};

use crate::common::*;
use redis::Value;

/// Reads until the reply stream ends with `marker`'s ECHO reply (bounded).
fn read_until_marker(c: &mut RawConn, marker: &str) -> Vec<u8> {
    let end = format!("${}\r\n{marker}\r\n", marker.len()).into_bytes();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut buf = Vec::new();
    while !buf.ends_with(&end) {
        assert!(
            Instant::now() < deadline,
            "no complete reply; got {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend(c.read_len(1, Duration::from_secs(5)));
    }
    buf.truncate(buf.len() - end.len());
    buf
}

/// (script, keys, args). Scripts whose output holds addresses, timings or
/// server-specific values are left out.
const CASES: &[(&str, &[&str], &[&str])] = &[
    ("return 1", &[], &[]),
    ("return 3.99", &[], &[]),
    ("return -3.7", &[], &[]),
    ("return 'str'", &[], &[]),
    ("return {1, 2, 3, 'x', nil, 5}", &[], &[]),
    ("return {true, false}", &[], &[]),
    ("return true", &[], &[]),
    ("return false", &[], &[]),
    ("return nil", &[], &[]),
    ("return {ok='FINE'}", &[], &[]),
    ("return {err='My Err'}", &[], &[]),
    ("return {ok='A', err='B'}", &[], &[]),
    ("return {double=1.5}", &[], &[]),
    ("return {1, 'two', {3, {ok='four'}}, {err='five'}}", &[], &[]),
    ("return 10000000000000000000", &[], &[]),
    ("return -1/0", &[], &[]),
    ("return redis.error_reply('boom')", &[], &[]),
    ("return redis.error_reply('-X boom')", &[], &[]),
    ("return redis.error_reply(5)", &[], &[]),
    ("return redis.status_reply('X')", &[], &[]),
    ("return redis.sha1hex('')", &[], &[]),
    ("return redis.sha1hex(5)", &[], &[]),
    ("return redis.sha1hex('a', 'b')", &[], &[]),
    ("return {KEYS[1], KEYS[2], ARGV[1], ARGV[2]}", &["k1", "k2"], &["a1", "a2"]),
    ("return #KEYS + #ARGV", &["a", "b", "c"], &["d"]),
    (
        "redis.call('set', KEYS[1], ARGV[1]) return redis.call('get', KEYS[1])",
        &["s1"],
        &["v1"],
    ),
    ("return redis.call('get', 'nokey')", &[], &[]),
    ("return type(redis.call('get', 'nokey'))", &[], &[]),
    ("return redis.call('incr', 's1')", &[], &[]),
    ("return redis.pcall('incr', 's1')", &[], &[]),
    ("local r = redis.pcall('incr', 's1') return r.err", &[], &[]),
    ("return redis.call('incr')", &[], &[]),
    ("return redis.call('nosuch')", &[], &[]),
    ("return redis.pcall('nosuch')", &[], &[]),
    ("return redis.call('multi')", &[], &[]),
    ("return redis.call('set', 'a', 'b', 'c')", &[], &[]),
    ("return redis.call()", &[], &[]),
    ("return redis.call('get', {})", &[], &[]),
    ("return redis.call('set', 'n', 3.5)", &[], &[]),
    ("return redis.call('get', 'n')", &[], &[]),
    ("return redis.call('ping')", &[], &[]),
    (
        "redis.call('rpush', KEYS[1], 'a', 'b', 'c') return redis.call('lrange', KEYS[1], 0, -1)",
        &["list1"],
        &[],
    ),
    ("return redis.call('lpop', 'list1', 10)", &[], &[]),
    ("return redis.call('blpop', 'nolist', 0)", &[], &[]),
    ("return redis.call('hset', 'h1', 'f', 'v', 'g', 'w')", &[], &[]),
    ("return redis.call('hgetall', 'h1')", &[], &[]),
    ("redis.setresp(3) return redis.call('hgetall', 'h1')", &[], &[]),
    ("redis.setresp(3) local r = redis.call('hgetall', 'h1') return r.map.f", &[], &[]),
    ("redis.setresp(3) return redis.call('smembers', 'noset')", &[], &[]),
    ("redis.setresp(3) return {double=3.25}", &[], &[]),
    ("redis.setresp(3) return {true, false, nil}", &[], &[]),
    ("redis.setresp(3) return {map={a=1}}", &[], &[]),
    ("redis.setresp(3) return {set={a=true}}", &[], &[]),
    ("return redis.call('zadd', 'z', 1.5, 'm')", &[], &[]),
    ("redis.setresp(3) return redis.call('zscore', 'z', 'm')", &[], &[]),
    ("redis.setresp(3) return redis.call('zscore', 'z', 'm').double", &[], &[]),
    ("redis.setresp(3) return redis.call('get', 'nokey') == nil", &[], &[]),
    ("return redis.setresp(4)", &[], &[]),
    ("return redis.setresp()", &[], &[]),
    ("x = 1", &[], &[]),
    ("KEYS = 1", &[], &[]),
    ("string.x = 1", &[], &[]),
    ("redis.x = 1", &[], &[]),
    ("return y", &[], &[]),
    ("return os", &[], &[]),
    ("return loadfile", &[], &[]),
    ("return require", &[], &[]),
    ("return print", &[], &[]),
    ("return type(loadstring)", &[], &[]),
    ("return loadstring('return 7')()", &[], &[]),
    ("error('xx')", &[], &[]),
    ("error({err='TAB x'})", &[], &[]),
    ("local function f() return f() + 1 end return f()", &[], &[]),
    ("return (", &[], &[]),
    ("return 1 +", &[], &[]),
    ("return redis.REDIS_VERSION_NUM", &[], &[]),
    ("return redis.REDIS_VERSION", &[], &[]),
    ("return {redis.REPL_ALL, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_NONE}", &[], &[]),
    ("return {redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING}", &[], &[]),
    ("return redis.log(redis.LOG_DEBUG, 'quiet')", &[], &[]),
    ("return redis.log(1)", &[], &[]),
    ("return redis.log('a', 'b')", &[], &[]),
    ("return redis.log(7, 'b')", &[], &[]),
    ("return redis.set_repl(redis.REPL_ALL)", &[], &[]),
    ("return redis.set_repl(9)", &[], &[]),
    ("return redis.replicate_commands()", &[], &[]),
    ("return redis.breakpoint()", &[], &[]),
    ("return redis.acl_check_cmd('get', 'x')", &[], &[]),
    ("return redis.acl_check_cmd('nosuch')", &[], &[]),
    ("return tostring(math.random())", &[], &[]),
    ("return {math.random(100), math.random(5, 10)}", &[], &[]),
    ("math.randomseed(7) return {math.random(1000), math.random(1000)}", &[], &[]),
    ("return math.random(1000)", &[], &[]),
    ("local ok, e = pcall(redis.call, 'nosuch') return {type(e), tostring(e)}", &[], &[]),
    ("local ok, e = pcall(error, {err='x'}) return tostring(e)", &[], &[]),
    ("local ok, e = pcall(error, 'plain') return tostring(e)", &[], &[]),
    ("return string.format('%d-%s', 5, 'x')", &[], &[]),
    ("return table.concat({'a', 'b'}, ',')", &[], &[]),
    ("return tonumber('0x10')", &[], &[]),
    (r#"return cjson.encode({1,2,{a=1}})"#, &[], &[]),
    (r#"return cjson.encode({})"#, &[], &[]),
    (r#"return cjson.encode('a/b"c\n\1\127')"#, &[], &[]),
    (r#"return cjson.encode({1.5, 0.1, 1e20, -0, 123456789012345, 0.00001, 100})"#, &[], &[]),
    (r#"return cjson.encode({[1]=1,[3]=3})"#, &[], &[]),
    (r#"return cjson.encode({[1]=1,[20]=3})"#, &[], &[]),
    (r#"return cjson.encode({a={b={}}})"#, &[], &[]),
    (r#"return cjson.encode(true)"#, &[], &[]),
    (r#"return cjson.encode(nil)"#, &[], &[]),
    (r#"return cjson.encode(cjson.null)"#, &[], &[]),
    (r#"return cjson.encode({[1.5]=1})"#, &[], &[]),
    (r#"return cjson.encode(1/0)"#, &[], &[]),
    (r#"return cjson.encode()"#, &[], &[]),
    (r#"return cjson.encode(function() end)"#, &[], &[]),
    (r#"return cjson.encode({[true]=1})"#, &[], &[]),
    (r#"local t = cjson.decode('{"a":[1,2,null,{"b":"x"}],"c":true}') return {t.a[1], t.a[4].b, tostring(t.c), tostring(t.a[3] == cjson.null)}"#, &[], &[]),
    (r#"return cjson.decode('[1,')"#, &[], &[]),
    (r#"return cjson.decode('[1 2]')"#, &[], &[]),
    (r#"return cjson.decode('{"a" 1}')"#, &[], &[]),
    (r#"return cjson.decode('{1:2}')"#, &[], &[]),
    (r#"return cjson.decode('{"a":1,}')"#, &[], &[]),
    (r#"return cjson.decode('[1] x')"#, &[], &[]),
    (r#"return cjson.decode('')"#, &[], &[]),
    (r#"return cjson.decode('nul')"#, &[], &[]),
    (r#"return cjson.decode('"\\u00e9\\ud83d\\ude00"')"#, &[], &[]),
    (r#"return type(cjson.null)"#, &[], &[]),
    (r#"return cjson.encode({a=1,b=2,c={1,2},d='x'})"#, &[], &[]),
    (r#"return cjson.decode('1e2')"#, &[], &[]),
    (r#"return cjson.decode('[-1.5e3, 0.25]')[1]"#, &[], &[]),
    (r#"return cjson.encode(cjson.decode('{"x":{"y":[true,false,null]}}'))"#, &[], &[]),
    (r#"return cjson.decode()"#, &[], &[]),
    (r#"return cjson.decode({})"#, &[], &[]),
    ("return math.random(0)", &[], &[]),
    ("return math.random(1, 2, 3)", &[], &[]),
    ("return math.random('x')", &[], &[]),
    ("return bit.band()", &[], &[]),
    ("return bit.tobit('x')", &[], &[]),
    ("bit.x = 1", &[], &[]),
    (
        "return {bit.tobit(0xffffffff), bit.bnot(0), bit.band(0x12345678, 0xff), \
         bit.bor(1, 2, 4, 8), bit.bxor(5, 3), bit.lshift(1, 31), bit.lshift(1, 33), \
         bit.rshift(-1, 28), bit.arshift(-256, 4)}",
        &[],
        &[],
    ),
    (
        "return {bit.tohex(bit.rol(0x12345678, 12)), bit.tohex(bit.ror(0x12345678, 12)), \
         bit.tohex(bit.bswap(0x12345678)), bit.tohex(65535), bit.tohex(255, 2), \
         bit.tohex(-1, -4), bit.tohex(1.5), bit.tohex(2.5), bit.tohex('16')}",
        &[],
        &[],
    ),
];

fn requests(with_keys_prefix: &str) -> Vec<u8> {
    let mut req = Vec::new();
    for (script, keys, args) in CASES {
        let nk = keys.len().to_string();
        let keys: Vec<String> = keys
            .iter()
            .map(|k| format!("{with_keys_prefix}{k}"))
            .collect();
        let mut a: Vec<&[u8]> = vec![b"EVAL", script.as_bytes(), nk.as_bytes()];
        a.extend(keys.iter().map(|k| k.as_bytes()));
        a.extend(args.iter().map(|s| s.as_bytes()));
        req.extend(resp_cmd(&a));
    }
    // The cache and the error texts of the script commands.
    for a in [
        &[&b"SCRIPT"[..], b"LOAD", b"return 'loaded'"][..],
        &[
            b"EVALSHA",
            b"6bc4f8b1d0b4fd9fe9f4f4b7c95c5c1f9ea0ab2e",
            b"0",
        ],
        &[
            b"EVALSHA",
            b"FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
            b"0",
        ],
        &[b"EVALSHA", b"abc", b"0"],
        &[b"EVAL", b"return 1", b"2", b"a"],
        &[b"EVAL", b"return 1", b"-1"],
        &[b"EVAL", b"return 1", b"x"],
        &[b"EVAL", b"return 1"],
        &[
            b"EVAL_RO",
            b"return redis.call('set', KEYS[1], 'b')",
            b"1",
            b"a",
        ],
        &[
            b"EVAL_RO",
            b"return redis.call('get', KEYS[1])",
            b"1",
            b"s1",
        ],
        &[b"SCRIPT", b"LOAD", b"return ("],
        &[
            b"SCRIPT",
            b"EXISTS",
            b"e0e1f9fabfc9d4800c877a703b823ac0578ff8db",
            b"0000",
        ],
        &[b"SCRIPT", b"KILL"],
        &[b"SCRIPT", b"FLUSH", b"FOO"],
        &[b"SCRIPT", b"FLUSH", b"ASYNC"],
        &[
            b"SCRIPT",
            b"EXISTS",
            b"e0e1f9fabfc9d4800c877a703b823ac0578ff8db",
        ],
        &[b"SCRIPT", b"NOPE"],
        &[
            b"COMMAND",
            b"GETKEYS",
            b"EVAL",
            b"return 1",
            b"2",
            b"a",
            b"b",
            b"c",
        ],
        &[
            b"COMMAND",
            b"GETKEYS",
            b"EVALSHA_RO",
            b"x",
            b"1",
            b"a",
            b"b",
        ],
    ] {
        req.extend(resp_cmd(a));
    }
    req
}

fn run_stream(port: u16, resp3: bool, req: &[u8]) -> Vec<u8> {
    let mut c = RawConn::connect(port);
    if resp3 {
        c.send(&resp_cmd(&[b"HELLO", b"3"]));
        c.send(&resp_cmd(&[b"ECHO", b"hello-done"]));
        read_until_marker(&mut c, "hello-done");
    }
    c.send(req);
    c.send(&resp_cmd(&[b"ECHO", b"stream-done"]));
    read_until_marker(&mut c, "stream-done")
}

fn differential(shards: usize, resp3: bool) {
    let Some(redis) = Server::redis() else {
        return;
    };
    let ringkv = Server::ringkv(shards, &[]);
    // Keys with hash tags that land on every shard.
    let req = requests("");
    let want = run_stream(redis.port(), resp3, &req);
    let got = run_stream(ringkv.port(), resp3, &req);
    if want != got {
        let (w, g) = (
            String::from_utf8_lossy(&want),
            String::from_utf8_lossy(&got),
        );
        let (wl, gl): (Vec<&str>, Vec<&str>) =
            (w.split("\r\n").collect(), g.split("\r\n").collect());
        let i = wl.iter().zip(&gl).position(|(a, b)| a != b).unwrap_or(0);
        panic!(
            "ringkv --shards {shards} (resp3={resp3}) differs from redis-server at line {i}:\n redis:  {:?}\n ringkv: {:?}",
            &wl[i.saturating_sub(3)..(i + 3).min(wl.len())],
            &gl[i.saturating_sub(3)..(i + 3).min(gl.len())]
        );
    }
}

#[test]
fn scripts_match_redis_resp2_one_shard() {
    differential(1, false);
}

#[test]
fn scripts_match_redis_resp2_three_shards() {
    differential(3, false);
}

#[test]
fn scripts_match_redis_resp3_one_shard() {
    differential(1, true);
}

#[test]
fn scripts_match_redis_resp3_three_shards() {
    differential(3, true);
}

/// Keys on every one of `n` shards.
fn keys_per_shard(n: usize) -> Vec<String> {
    (0..n)
        .map(|s| {
            (0..)
                .map(|i| format!("key{i}"))
                .find(|k| shard_of(k, n) == s)
                .unwrap()
        })
        .collect()
}

#[test]
fn script_touches_keys_on_every_shard() {
    let srv = Server::ringkv(3, &[]);
    let mut c = srv.client();
    let keys = keys_per_shard(3);
    let mut args = vec![
        "EVAL",
        "for i, k in ipairs(KEYS) do redis.call('set', k, ARGV[1] .. i) end \
         local r = {} for i, k in ipairs(KEYS) do r[i] = redis.call('get', k) end \
         r[#r + 1] = redis.call('dbsize') return r",
        "3",
    ];
    args.extend(keys.iter().map(|s| s.as_str()));
    args.push("v");
    assert_eq!(
        ok(&mut c, &args),
        arr(vec![bulk("v1"), bulk("v2"), bulk("v3"), int(3)])
    );
    // Undeclared keys on other shards work too.
    let script = format!(
        "return {{redis.call('get', '{}'), redis.call('get', '{}')}}",
        keys[1], keys[2]
    );
    assert_eq!(
        ok(&mut c, &["EVAL", &script, "0"]),
        arr(vec![bulk("v2"), bulk("v3")])
    );
    for k in &keys {
        assert!(matches!(ok(&mut c, &["GET", k]), Value::BulkString(_)));
    }
}

#[test]
fn script_cache_is_shared_by_all_shards() {
    let srv = Server::ringkv(3, &[]);
    let mut c = srv.client();
    let sha = match ok(&mut c, &["SCRIPT", "LOAD", "return ARGV[1] .. '!'"]) {
        Value::BulkString(b) => String::from_utf8(b).unwrap(),
        v => panic!("SCRIPT LOAD replied {v:?}"),
    };
    // Connections are spread over the shards: a dozen hits them all.
    for i in 0..12 {
        let mut other = srv.client();
        let arg = format!("x{i}");
        assert_eq!(
            ok(&mut other, &["EVALSHA", &sha, "0", &arg]),
            bulk(&format!("x{i}!"))
        );
        assert_eq!(
            ok(&mut other, &["SCRIPT", "EXISTS", &sha.to_uppercase()]),
            arr(vec![int(1)])
        );
    }
    assert_eq!(ok(&mut c, &["SCRIPT", "FLUSH"]), Value::Okay);
    for _ in 0..6 {
        let mut other = srv.client();
        assert_eq!(
            err(&mut other, &["EVALSHA", &sha, "0"]),
            "NOSCRIPT No matching script. Please use EVAL."
        );
    }
}

const RELEASE: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then \
    return redis.call('del', KEYS[1]) else return 0 end";

/// The SET NX PX + compare-and-delete lock: under contention from several
/// threads, no two holders ever overlap (checked with a counter the holder
/// increments and reads back under the lock), on locks spread over shards.
#[test]
fn distributed_lock_recipe_under_contention() {
    let srv = Server::ringkv(3, &[]);
    let locks = keys_per_shard(3);
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let url = srv.url();
            let locks = locks.clone();
            std::thread::spawn(move || {
                let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
                let mut held = 0;
                for i in 0..40 {
                    let lock = &locks[(t + i) % locks.len()];
                    let token = format!("t{t}-{i}");
                    let deadline = Instant::now() + Duration::from_secs(60);
                    loop {
                        let r = run(&mut c, &["SET", lock, &token, "NX", "PX", "30000"]);
                        if r == Ok(Value::Okay) {
                            break;
                        }
                        assert_eq!(r, Ok(Value::Nil));
                        assert!(Instant::now() < deadline, "lock never acquired");
                        std::thread::yield_now();
                    }
                    // Inside the critical section: nobody else may be here.
                    let guard = format!("{lock}:owner");
                    let prev = run(&mut c, &["GETSET", &guard, &token]).unwrap();
                    assert_eq!(prev, Value::Nil, "two holders of {lock}");
                    assert_eq!(ok(&mut c, &["DEL", &guard]), int(1));
                    // A release with a wrong token is refused.
                    assert_eq!(
                        ok(&mut c, &["EVAL", RELEASE, "1", lock, "not-mine"]),
                        int(0)
                    );
                    assert_eq!(ok(&mut c, &["EVAL", RELEASE, "1", lock, &token]), int(1));
                    held += 1;
                }
                held
            })
        })
        .collect();
    let total: i32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(total, 6 * 40);
}

/// Scripts that run concurrently on several shards and each read-modify-
/// write keys on every shard stay atomic: no increment is lost and the
/// keys never disagree.
#[test]
fn cross_shard_scripts_are_atomic() {
    let srv = Server::ringkv(3, &[]);
    let keys = keys_per_shard(3);
    let script = "local v = tonumber(redis.call('get', KEYS[1]) or '0') \
        for _, k in ipairs(KEYS) do \
          if tonumber(redis.call('get', k) or '0') ~= v then return redis.error_reply('torn') end \
          redis.call('set', k, v + 1) end return v + 1";
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let url = srv.url();
            let keys = keys.clone();
            std::thread::spawn(move || {
                let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
                for _ in 0..50 {
                    let mut a = vec!["EVAL", script, "3"];
                    a.extend(keys.iter().map(|k| k.as_str()));
                    let r = run(&mut c, &a);
                    assert!(matches!(r, Ok(Value::Int(_))), "{r:?}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut c = srv.client();
    for k in &keys {
        assert_eq!(ok(&mut c, &["GET", k]), bulk("200"));
    }
}

#[test]
fn hostile_scripts_do_not_hurt_the_server() {
    let mut srv = Server::ringkv(2, &[]);
    let mut c = srv.client();
    // Memory bomb: stopped by the Lua state's memory limit.
    let e = err(
        &mut c,
        &[
            "EVAL",
            "local t = {} local s = string.rep('x', 1024 * 1024) \
          for i = 1, 100000 do t[i] = s .. i end return #t",
            "0",
        ],
    );
    assert!(e.contains("not enough memory"), "{e}");
    // Deep recursion.
    let e = err(
        &mut c,
        &[
            "EVAL",
            "local function f(n) return f(n + 1) + 1 end return f(1)",
            "0",
        ],
    );
    assert!(e.contains("stack overflow"), "{e}");
    // Huge and self-referencing replies.
    assert!(matches!(
        ok(&mut c, &["EVAL", "local t = {} for i = 1, 100000 do t[i] = i end return t", "0"]),
        Value::Array(v) if v.len() == 100000
    ));
    // (Too deep for the client library: read it raw.)
    let mut raw = srv.raw_conn();
    raw.send(&resp_cmd(&[
        b"EVAL",
        b"local t = {} t[1] = t return t",
        b"0",
    ]));
    raw.send(&resp_cmd(&[b"ECHO", b"selfref-done"]));
    let r = read_until_marker(&mut raw, "selfref-done");
    assert!(r.ends_with(b"-ERR reached lua stack limit\r\n"), "{r:?}");
    // Bytecode is refused.
    let e = err(&mut c, &["EVAL", "\x1bLua", "0"]);
    assert!(e.starts_with("ERR Error compiling script"), "{e}");
    // The state still works, and so does the server.
    assert_eq!(ok(&mut c, &["EVAL", "return 42", "0"]), int(42));
    assert_eq!(ok(&mut c, &["PING"]), status("PONG"));
    srv.assert_alive();
}

#[test]
fn select_inside_a_script_does_not_leak_to_the_client() {
    let srv = Server::ringkv(1, &[]);
    let mut c = srv.client();
    ok(&mut c, &["SET", "k", "db0"]);
    assert_eq!(
        ok(&mut c, &["EVAL", "redis.call('select', 1) redis.call('set', 'k', 'db1') return redis.call('get', 'k')", "0"]),
        bulk("db1")
    );
    assert_eq!(ok(&mut c, &["GET", "k"]), bulk("db0"));
}

/// A runaway script on one shard: other shards answer -BUSY past
/// busy-reply-threshold, SCRIPT KILL stops it while it has not written,
/// and refuses (UNKILLABLE) once it has.
#[test]
fn script_kill_and_busy_replies() {
    let srv = Server::ringkv(2, &[]);
    let mut admin = srv.client();
    ok(
        &mut admin,
        &["CONFIG", "SET", "busy-reply-threshold", "100"],
    );
    let c = |args: &[&str]| {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        resp_cmd(&a)
    };
    let mut a = RawConn::connect(srv.port());
    a.send(&c(&[
        "EVAL",
        "local i = 0 while true do i = i + 1 end",
        "0",
    ]));
    std::thread::sleep(Duration::from_millis(300));
    // Connections land on either shard; one on the other shard answers.
    let mut other = None;
    for _ in 0..32 {
        let mut o = RawConn::connect(srv.port());
        o.send(&c(&["GET", "k"]));
        let r = o.read_len(1, Duration::from_millis(300));
        if !r.is_empty() {
            assert!(
                r.starts_with(b"-BUSY Redis is busy running a script."),
                "{}",
                String::from_utf8_lossy(&r)
            );
            other = Some(o);
            break;
        }
    }
    let mut o = other.expect("a connection on the shard without the script");
    o.send(&c(&["SCRIPT", "KILL"]));
    o.expect(b"+OK\r\n");
    let r = a.read_len(1, Duration::from_secs(10));
    assert!(
        r.starts_with(b"-ERR Script killed by user with SCRIPT KILL... script: "),
        "{}",
        String::from_utf8_lossy(&r)
    );
    o.send(&c(&["SCRIPT", "KILL"]));
    o.expect(b"-NOTBUSY No scripts in execution right now.\r\n");
    // After a write it cannot be killed; it runs to its end.
    a.send(&c(&[
        "EVAL",
        "redis.call('set', KEYS[1], '1') local i = 0 while i < 50000000 do i = i + 1 end return i",
        "1",
        "w",
    ]));
    let t0 = Instant::now();
    loop {
        o.send(&c(&["SCRIPT", "KILL"]));
        let r = o.read_len(1, Duration::from_secs(10));
        if r.starts_with(b"-UNKILLABLE") {
            break;
        }
        // Not started yet (NOTBUSY): try again.
        assert!(
            r.starts_with(b"-NOTBUSY"),
            "{}",
            String::from_utf8_lossy(&r)
        );
        assert!(t0.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(5));
    }
    a.expect(b":50000000\r\n");
    assert_eq!(ok(&mut admin, &["GET", "w"]), bulk("1"));
}
