//! Redis functions (FUNCTION ..., FCALL, FCALL_RO), `#!lua` shebang flags
//! on EVAL, and the distributed-lock recipes with redis-py.
//!
//! * `functions_match_redis_*`: one stream of FUNCTION/FCALL/EVAL commands
//!   (good and bad) is sent to redis-server 7.0 and to ringkv (1 and 3
//!   shards), pipelined 1, 16 and 50 deep, in RESP2 and RESP3; the reply
//!   bytes must be equal (FUNCTION DUMP included: same payload bytes).
//! * DUMP/RESTORE and RDB files with libraries cross between the two
//!   servers both ways.
//! * Bad input: garbage RESTORE payloads, huge ones, misuse of
//!   register_function; the server answers errors and stays up.
//!
//! The redis-server parts are skipped (with a message) when it is not
//! installed.

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

const LIB1: &str = "#!lua name=lib1\n\
redis.register_function('setget', function(keys, args)\n\
  redis.call('set', keys[1], args[1])\n\
  return redis.call('get', keys[1])\n\
end)";

const LIB1_V2: &str = "#!lua name=lib1\n\
redis.register_function('setget', function(keys, args)\n\
  return {redis.call('set', keys[1], args[1]), 'v2'}\n\
end)";

const LIB2: &str = "#!lua name=lib2\n\
redis.register_function{function_name='ro_get', description='reads a key',\n\
  flags={'no-writes', 'allow-stale'},\n\
  callback=function(keys, args) return redis.call('get', keys[1]) end}";

const LIB_RO_WRITER: &str = "#!lua name=rowriter\n\
redis.register_function{function_name='sneaky', flags={'no-writes'},\n\
  callback=function(keys, args) return redis.call('set', keys[1], 'x') end}";

/// Sets every key it gets (on whatever shard), then returns them all.
const LIB_MULTI: &str = "#!lua name=multi\n\
redis.register_function('setall', function(keys, args)\n\
  for i, k in ipairs(keys) do redis.call('set', k, args[1] .. i) end\n\
  local out = {}\n\
  for i, k in ipairs(keys) do out[i] = redis.call('get', k) end\n\
  return out\n\
end)";

const LIB_TYPES: &str = "#!lua name=types\n\
redis.register_function('types', function(keys, args)\n\
  return {1, 2.9, 'str', true, false, {ok='fine'}, {1, {2, 3}}, #args}\n\
end)";

const LIB_ERRS: &str = "#!lua name=errs\n\
redis.register_function('boom', function() error('boom') end)\n\
redis.register_function('reply_err', function() return redis.error_reply('MY failure') end)\n\
redis.register_function('reply_err2', function() return {redis.error_reply('-nospace'), redis.error_reply('-')} end)\n\
redis.register_function('bad_call', function() return redis.call('nosuchcmd') end)\n\
redis.register_function('caught', function() return {pcall(redis.call, 'nosuchcmd')} end)\n\
redis.register_function('keys_global', function() return KEYS end)\n\
redis.register_function('reg_at_runtime', function() redis.register_function('x', function() end) end)";

/// Library sources that FUNCTION LOAD refuses, each with a Redis error.
const BAD_LIBS: &[&str] = &[
    "return 1",
    "#!lua name=nonl",
    "#!lua\nredis.register_function('f', function() end)",
    "#!js name=x\nredis.register_function('f', function() end)",
    "#!lua name=x foo=bar\nredis.register_function('f', function() end)",
    "#!lua name=a name=b\nredis.register_function('f', function() end)",
    "#!lua name=bad-name\nredis.register_function('f', function() end)",
    "#!lua name=\nredis.register_function('f', function() end)",
    "#!lua name=x\nlocal a = ",
    "#!lua name=x\nlocal a = 1",
    "#!lua name=x\nerror('at load')",
    "#!lua name=x\nstring.format('%d', 1)",
    "#!lua name=x\nredis.call('ping')",
    "#!lua name=x\nredis.setresp(3)",
    "#!lua name=x\nnewglobal = 1",
    "#!lua name=x\nredis.register_function('f f', function() end)",
    "#!lua name=x\nredis.register_function()",
    "#!lua name=x\nredis.register_function('a', function() end, 3)",
    "#!lua name=x\nredis.register_function(5)",
    "#!lua name=x\nredis.register_function({}, function() end)",
    "#!lua name=x\nredis.register_function('a', 'b')",
    "#!lua name=x\nredis.register_function{function_name='h'}",
    "#!lua name=x\nredis.register_function{callback=function() end}",
    "#!lua name=x\nredis.register_function{function_name={}, callback=function() end}",
    "#!lua name=x\nredis.register_function{function_name='h', callback='no'}",
    "#!lua name=x\nredis.register_function{function_name='h', callback=function() end, flags='no-writes'}",
    "#!lua name=x\nredis.register_function{function_name='h', callback=function() end, flags={'no-writes', 'bogus'}}",
    "#!lua name=x\nredis.register_function{function_name='h', callback=function() end, description={}}",
    "#!lua name=x\nredis.register_function{function_name='h', callback=function() end, other=1}",
    // A function name another library owns.
    "#!lua name=thief\nredis.register_function('setget', function() end)",
    "#!lua name=x\nredis.register_function('a', function() end)\nredis.register_function('a', function() end)",
];

/// struct and cmsgpack: bytes, values and errors as redis-server gives
/// them.
const BINLIB_CASES: &[&str] = &[
    "return struct.pack('>i', 1)",
    "return struct.pack('<i', -2)",
    "return struct.pack('b', 300)",
    "return struct.pack('B', -1)",
    "return struct.pack('h', 70000)",
    "return struct.pack('l', 2^53)",
    "return struct.pack('L', -1)",
    "return struct.pack('i3', 0x123456)",
    "return struct.pack('>i16', -1)",
    "return struct.pack('<I16', 2^63)",
    "return struct.pack('i33', 1)",
    "return struct.pack('i0', 1)",
    "return struct.pack('i3', 2^40)",
    "return struct.pack('>I8', 2^64)",
    "return struct.pack('<l', -2^63)",
    "return struct.pack('<l', 2^63)",
    "return struct.pack('f', 1.5)",
    "return struct.pack('>d', -0.1)",
    "return struct.pack('s', 'abc')",
    "return struct.pack('c2', 'abc')",
    "return struct.pack('c0', 'abc')",
    "return struct.pack('c5', 'abc')",
    "return struct.pack('x')",
    "return struct.pack('!4 b i', 1, 2)",
    "return struct.pack('!3 i', 1)",
    "return struct.pack('!b d', 1, 2)",
    "return struct.pack('!16 d', 1)",
    "return struct.pack('!2 b h b i', 1, 2, 3, 4)",
    "return struct.pack('z', 1)",
    "return struct.pack('T', 5)",
    "return struct.pack('=i', 5)",
    "return struct.pack('i')",
    "return struct.pack('i', 'x')",
    "return struct.pack('i', '12')",
    "return struct.pack('i99999999999', 1)",
    "return struct.pack('c', 'abc')",
    "return struct.pack('s', 5)",
    "return struct.pack(5)",
    "return struct.pack()",
    "return struct.pack('>b', -128.7)",
    "return struct.pack('>I4', 1e10)",
    "return struct.pack('>i4', -1e19)",
    "return struct.pack('>i4', 0/0)",
    "return {struct.unpack('>i', struct.pack('>i', -5))}",
    "return {struct.unpack('B', 'abc', 2)}",
    "return {struct.unpack('B', 'abc', 0)}",
    "return {struct.unpack('B', 'abc', 4)}",
    "return {struct.unpack('b c0', struct.pack('b c0', 3, 'xyz'))}",
    "return {struct.unpack('c0', 'abc')}",
    "return {struct.unpack('s', 'ab')}",
    "return {struct.unpack('s s', 'ab\\0cd\\0')}",
    "return {struct.unpack('<i8', '\\255\\255\\255\\255\\255\\255\\255\\255')}",
    "return {struct.unpack('<i16', string.rep('\\255', 16))}",
    "return {struct.unpack('!8 b d', struct.pack('!8 b d', 1, 2.5))}",
    "return {struct.unpack('d', 'short')}",
    "return {struct.unpack('>I3', '\\1\\2\\3')}",
    "return {struct.unpack('i1', '')}",
    "return {struct.unpack('b', 'a', 1.5)}",
    "return {struct.unpack('x i', '\\1\\2\\0\\0\\0')}",
    "return tostring(struct.unpack('>d', struct.pack('>d', 0.1)))",
    "return tostring(struct.unpack('<f', struct.pack('<f', 0.1)))",
    "return struct.size('!8 b d')",
    "return struct.size('s')",
    "return struct.size('c0')",
    "return struct.size('i i2 c3')",
    "return struct.size('y')",
    "return struct.size('<>!')",
    "return cmsgpack.pack(nil, true, false, 0, 127, 128, 255, 256, 65535, 65536, 2^32-1, 2^32, -1, -32, -33, -128, -129, -32768, -32769, -2^31, -2^31-1)",
    "return cmsgpack.pack(1.5, 0.1, -2.5, 1e300, 2^63, 2^64, -2^63, 1/0, -1/0, 0/0, -0.0, 2^53, -2^53)",
    "return cmsgpack.pack(string.rep('a', 31), string.rep('b', 32))",
    "return cmsgpack.pack(string.rep('a', 255)):sub(1, 3) .. cmsgpack.pack(string.rep('a', 256)):sub(1, 4)",
    "return #cmsgpack.pack(string.rep('a', 65536))",
    "return cmsgpack.pack({1,2,3}, {}, {a=1}, {1, nil, 3}, {[1]=1, [3]=3}, {[2]=2})",
    "return cmsgpack.pack({x={y={z=1}}, 'q'})",
    "return cmsgpack.pack({[1.5]=1}, {[0]=1}, {[1]=1, [2]=2, x=3}, {[true]=1})",
    "return #cmsgpack.pack({1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16})",
    "local t = {} for i=1,20 do t = {t} end return cmsgpack.pack(t)",
    "local t = {} for i=1,70000 do t[i]=i%100 end return #cmsgpack.pack(t)",
    "local t = {} for i=1,17 do t['k'..i]=1 end return cmsgpack.pack(t):sub(1,3)",
    "return cmsgpack.pack(function() end)",
    "return cmsgpack.pack()",
    "return {cmsgpack.unpack(cmsgpack.pack(1, 'a', {1,2}, {k='v'}))}",
    "return {cmsgpack.unpack('\\193')}",
    "return {cmsgpack.unpack('\\205\\1')}",
    "return {cmsgpack.unpack('')}",
    "return {cmsgpack.unpack(5)}",
    "return {cmsgpack.unpack('\\217\\3abc\\218\\0\\3abc\\219\\0\\0\\0\\3abc')}",
    "return {cmsgpack.unpack('\\196\\3abc')}",
    "return {cmsgpack.unpack('\\212\\1\\2')}",
    "return {cmsgpack.unpack('\\217\\5abc')}",
    "return {cmsgpack.unpack('\\219\\255\\255\\255\\255abc')}",
    "return {cmsgpack.unpack('\\221\\255\\255\\255\\255')}",
    "return {cmsgpack.unpack('\\207\\0\\0\\0\\0\\0\\0\\1\\0\\211\\255\\255\\255\\255\\255\\255\\255\\254\\202\\63\\192\\0\\0\\203\\63\\248\\0\\0\\0\\0\\0\\0')}",
    "return {cmsgpack.unpack('\\255\\224\\204\\200\\208\\200\\209\\255\\0\\210\\255\\255\\255\\0\\206\\1\\0\\0\\0')}",
    "return {cmsgpack.unpack('\\220\\0\\2\\1\\2\\221\\0\\0\\0\\1\\3')}",
    "local t = cmsgpack.unpack('\\130\\161a\\1\\161b\\2') return {t.a, t.b}",
    "return {cmsgpack.unpack('\\147\\1\\192\\3')}",
    "return {cmsgpack.unpack_one(cmsgpack.pack(1, 2, 3))}",
    "return {cmsgpack.unpack_one(cmsgpack.pack(1, 2, 3), 2)}",
    "return {cmsgpack.unpack_one(cmsgpack.pack(1, 2, 3), 10)}",
    "return {cmsgpack.unpack_one('\\1\\2', -1)}",
    "return {cmsgpack.unpack_one('', 0)}",
    "return {cmsgpack.unpack_one('\\1', 'x')}",
    "return {cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 2)}",
    "return {cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), 2, 1)}",
    "return {cmsgpack.unpack_limit(cmsgpack.pack(1, 2, 3), -1)}",
    "return {cmsgpack.unpack_limit('\\1\\2\\3', 0, 3)}",
    "return {cmsgpack.unpack_limit('\\1\\2', 0, 0)}",
    "return {cmsgpack.unpack_limit('\\1', 1.7)}",
    "return cmsgpack._NAME .. cmsgpack._VERSION",
    "return {pcall(cmsgpack.unpack, string.rep('\\145', 190) .. '\\1')}",
];

fn c(args: &[&str]) -> Vec<u8> {
    let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
    resp_cmd(&a)
}

/// The command stream of the differential tests. FUNCTION LIST is only
/// asked for single-function libraries (Redis lists a library's functions
/// in hash order).
fn commands() -> Vec<Vec<u8>> {
    let mut v = vec![
        c(&["FUNCTION", "FLUSH"]),
        c(&["FUNCTION", "LOAD", LIB1]),
        c(&["FUNCTION", "LOAD", LIB1]),
        c(&["FCALL", "setget", "1", "{a}k1", "v1"]),
        c(&["FCALL", "SETGET", "1", "{a}k1", "v1b"]),
        c(&["FUNCTION", "LOAD", "REPLACE", LIB1_V2]),
        c(&["FUNCTION", "LOAD", "replace", LIB1_V2]),
        c(&["FUNCTION", "LOAD", "REPLAC", LIB1_V2]),
        c(&["FUNCTION", "LOAD", "REPLACE"]),
        c(&["FCALL", "setget", "1", "{a}k1", "v2"]),
        c(&["FUNCTION", "LOAD", LIB2]),
        c(&["FUNCTION", "LOAD", LIB_RO_WRITER]),
        c(&["FUNCTION", "LOAD", LIB_MULTI]),
        c(&["FUNCTION", "LOAD", LIB_TYPES]),
        c(&["FUNCTION", "LOAD", LIB_ERRS]),
        c(&["FCALL_RO", "ro_get", "1", "{a}k1"]),
        c(&["FCALL", "ro_get", "1", "{a}k1"]),
        c(&["FCALL_RO", "setget", "1", "{a}k1", "x"]),
        c(&["FCALL", "sneaky", "1", "{a}k1"]),
        c(&["FCALL_RO", "sneaky", "1", "{a}k1"]),
        c(&["FCALL", "setall", "4", "k1", "k2", "k3", "{b}k4", "val"]),
        c(&["FCALL", "types", "0", "a", "b", "c"]),
        c(&["FCALL", "boom", "0"]),
        c(&["FCALL", "reply_err", "0"]),
        c(&["FCALL", "reply_err2", "0"]),
        c(&["EVAL", "return redis.error_reply('-nospace')", "0"]),
        c(&["EVAL", "return redis.error_reply('-')", "0"]),
        c(&["EVAL", "return redis.error_reply('two words')", "0"]),
        c(&["FCALL", "bad_call", "0"]),
        c(&["FCALL", "caught", "0"]),
        c(&["FCALL", "keys_global", "0"]),
        c(&["FCALL", "reg_at_runtime", "0"]),
        c(&["FCALL", "nosuch", "0"]),
        c(&["FCALL", "nosuch", "x"]),
        c(&["FCALL", "setget", "x"]),
        c(&["FCALL", "setget", "5", "a"]),
        c(&["FCALL", "setget", "-1"]),
        c(&["FCALL", "setget"]),
        c(&["FCALL_RO"]),
        c(&["FUNCTION", "LIST", "LIBRARYNAME", "lib1"]),
        c(&["FUNCTION", "LIST", "LIBRARYNAME", "lib2", "WITHCODE"]),
        c(&["FUNCTION", "LIST", "WITHCODE", "LIBRARYNAME", "li?2"]),
        c(&["FUNCTION", "LIST", "LIBRARYNAME", "nomatch*"]),
        c(&["FUNCTION", "LIST", "LIBRARYNAME"]),
        c(&["FUNCTION", "LIST", "WITHCODE", "WITHCODE"]),
        c(&["FUNCTION", "LIST", "LIBRARYNAME", "a", "LIBRARYNAME", "b"]),
        c(&["FUNCTION", "LIST", "bogus"]),
        c(&["FUNCTION", "STATS"]),
        c(&["FUNCTION", "STATS", "x"]),
        c(&["FUNCTION", "KILL"]),
        c(&["FUNCTION", "DELETE", "types"]),
        c(&["FUNCTION", "DELETE", "types"]),
        c(&["FUNCTION", "DELETE", "LIB1"]),
        c(&["FUNCTION", "DELETE"]),
        c(&["FCALL", "types", "0"]),
        c(&["FUNCTION", "FLUSH", "bogus"]),
        c(&["FUNCTION", "FLUSH", "SYNC", "x"]),
        c(&["FUNCTION", "RESTORE", "payload", "bogus"]),
        c(&["FUNCTION", "RESTORE", "payload"]),
        c(&["FUNCTION", "RESTORE", "", "FLUSH", "x"]),
        c(&["FUNCTION", "BOGUS"]),
        c(&["FUNCTION"]),
        c(&["FUNCTION", "HELP"]),
        c(&["SCRIPT", "DEBUG", "NO"]),
        c(&["SCRIPT", "DEBUG", "maybe"]),
        // #!lua shebang on EVAL.
        c(&[
            "EVAL",
            "#!lua\nreturn redis.call('set', KEYS[1], 'e')",
            "1",
            "{a}e1",
        ]),
        c(&[
            "EVAL",
            "#!lua flags=no-writes\nreturn redis.call('set', KEYS[1], 'e')",
            "1",
            "{a}e1",
        ]),
        c(&[
            "EVAL",
            "#!lua flags=no-writes,allow-oom\nreturn redis.call('get', KEYS[1])",
            "1",
            "{a}e1",
        ]),
        c(&[
            "EVAL",
            "#!lua flags=no-writes,allow-stale,no-cluster,allow-cross-slot-keys\nreturn 1",
            "0",
        ]),
        c(&["EVAL", "#!lua flags=\nreturn 2", "0"]),
        c(&["EVAL", "#!lua   flags=no-writes\nreturn 3", "0"]),
        c(&["EVAL", "#!lua flags=no-writes,,allow-oom\nreturn 1", "0"]),
        c(&["EVAL", "#!lua flags=bogus\nreturn 1", "0"]),
        c(&["EVAL", "#!lua name=x\nreturn 1", "0"]),
        c(&["EVAL", "#!js\nreturn 1", "0"]),
        c(&["EVAL", "#!LUA\nreturn 1", "0"]),
        c(&["EVAL", "#!lua", "0"]),
        c(&["EVAL", "#!lua\nerror('line two')", "0"]),
        c(&["EVAL", "#!lua\nlocal x = ", "0"]),
        c(&["EVAL_RO", "#!lua\nreturn 1", "0"]),
        c(&["EVAL_RO", "#!lua flags=no-writes\nreturn 1", "0"]),
        c(&["EVAL_RO", "return 1", "0"]),
        c(&["SCRIPT", "LOAD", "#!lua flags=nope\nreturn 1"]),
        c(&[
            "SCRIPT",
            "LOAD",
            "#!lua flags=no-writes\nreturn redis.call('set', 'k', 'v')",
        ]),
        c(&["EVALSHA", "2a6bda0e1d6f6d8e1e8d8ea2c6e1f0c4f2c2ef7c", "0"]),
    ];
    for bad in BAD_LIBS {
        v.push(c(&["FUNCTION", "LOAD", bad]));
    }
    // (Names that differ only in case within one library are left out:
    // redis-server 7.0.15 answers FCALL for them in hash order, and
    // crashes on FUNCTION DELETE of such a library.)
    v.push(c(&["FUNCTION", "STATS"]));
    for script in BINLIB_CASES {
        v.push(c(&["EVAL", script, "0"]));
    }
    // FUNCTION DUMP of one library: the same payload bytes.
    v.push(c(&["FUNCTION", "FLUSH", "ASYNC"]));
    v.push(c(&["FUNCTION", "LOAD", LIB2]));
    v.push(c(&["FUNCTION", "DUMP"]));
    v.push(c(&["FUNCTION", "LIST"]));
    v.push(c(&["FUNCTION", "STATS"]));
    v.push(c(&["FUNCTION", "FLUSH"]));
    v.push(c(&["FUNCTION", "DUMP"]));
    v.push(c(&["FUNCTION", "LIST"]));
    v
}

/// Sends `cmds` `depth` at a time (each batch followed by an ECHO marker)
/// and returns all the reply bytes.
fn run_stream(port: u16, resp3: bool, cmds: &[Vec<u8>], depth: usize) -> Vec<u8> {
    let mut c = RawConn::connect(port);
    if resp3 {
        c.send(&resp_cmd(&[b"HELLO", b"3"]));
        c.send(&resp_cmd(&[b"ECHO", b"hello-done"]));
        read_until_marker(&mut c, "hello-done");
    }
    let mut out = Vec::new();
    for (i, batch) in cmds.chunks(depth).enumerate() {
        let mut req = batch.concat();
        let marker = format!("batch-{i}-done");
        req.extend(resp_cmd(&[b"ECHO", marker.as_bytes()]));
        c.send(&req);
        out.extend(read_until_marker(&mut c, &marker));
    }
    out
}

fn assert_same(label: &str, want: &[u8], got: &[u8]) {
    if want != got {
        let (w, g) = (String::from_utf8_lossy(want), String::from_utf8_lossy(got));
        let (wl, gl): (Vec<&str>, Vec<&str>) =
            (w.split("\r\n").collect(), g.split("\r\n").collect());
        let i = wl
            .iter()
            .zip(&gl)
            .position(|(a, b)| a != b)
            .unwrap_or(wl.len().min(gl.len()));
        panic!(
            "{label} differs from redis-server at line {i}:\n redis:  {:?}\n ringkv: {:?}",
            &wl[i.saturating_sub(3)..(i + 3).min(wl.len())],
            &gl[i.saturating_sub(3)..(i + 3).min(gl.len())]
        );
    }
}

fn differential(shards: usize) {
    let Some(redis) = Server::redis() else {
        return;
    };
    let ringkv = Server::ringkv(shards, &[]);
    let cmds = commands();
    for resp3 in [false, true] {
        for depth in [1, 16, 50] {
            let want = run_stream(redis.port(), resp3, &cmds, depth);
            let got = run_stream(ringkv.port(), resp3, &cmds, depth);
            assert_same(
                &format!("ringkv --shards {shards} (resp3={resp3}, depth {depth})"),
                &want,
                &got,
            );
        }
    }
}

#[test]
fn functions_match_redis_one_shard() {
    differential(1);
}

#[test]
fn functions_match_redis_three_shards() {
    differential(3);
}

/// A library loaded through one connection is seen at once by
/// connections on every shard; DELETE and REPLACE too.
#[test]
fn every_shard_sees_function_changes_at_once() {
    let srv = Server::ringkv(3, &[]);
    let mut conns: Vec<redis::Connection> = (0..9).map(|_| srv.client()).collect();
    assert_eq!(ok(&mut conns[0], &["FUNCTION", "LOAD", LIB1]), bulk("lib1"));
    for (i, con) in conns.iter_mut().enumerate() {
        let key = format!("k{i}");
        let v = format!("v{i}");
        assert_eq!(ok(con, &["FCALL", "setget", "1", &key, &v]), bulk(&v));
    }
    ok(&mut conns[1], &["FUNCTION", "LOAD", "REPLACE", LIB1_V2]);
    for con in conns.iter_mut() {
        assert_eq!(
            ok(con, &["FCALL", "setget", "1", "k", "x"]),
            arr(vec![Value::Okay, bulk("v2")])
        );
    }
    ok(&mut conns[2], &["FUNCTION", "DELETE", "lib1"]);
    for con in conns.iter_mut() {
        assert_eq!(
            err(con, &["FCALL", "setget", "1", "k", "x"]),
            "ERR Function not found"
        );
    }
    // SCRIPT FLUSH drops the shards' Lua states; the libraries stay.
    ok(&mut conns[3], &["FUNCTION", "LOAD", LIB_MULTI]);
    ok(&mut conns[4], &["SCRIPT", "FLUSH"]);
    for con in conns.iter_mut() {
        assert_eq!(
            ok(con, &["FCALL", "setall", "1", "z", "q"]),
            arr(vec![bulk("q1")])
        );
    }
}

/// Redis's CRC-64 (Jones polynomial, reflected), as DUMP payloads use it.
fn crc64(data: &[u8]) -> u64 {
    let mut crc = 0u64;
    for &b in data {
        crc ^= b as u64;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x95AC_9329_AC4B_C9B5
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// A payload with a valid footer (RDB version 10 and CRC) around `body`.
fn payload(body: &[u8]) -> Vec<u8> {
    let mut p = body.to_vec();
    p.extend_from_slice(&10u16.to_le_bytes());
    let crc = crc64(&p);
    p.extend_from_slice(&crc.to_le_bytes());
    p
}

/// One FUNCTION2 record: opcode, then the code as an RDB string (14-bit
/// length).
fn rec(code: &[u8]) -> Vec<u8> {
    assert!(code.len() < 1 << 14);
    let mut b = vec![245, 0x40 | (code.len() >> 8) as u8, code.len() as u8];
    b.extend_from_slice(code);
    b
}

fn raw_cmd(con: &mut redis::Connection, args: &[&[u8]]) -> Result<Value, String> {
    let mut cm = redis::cmd(std::str::from_utf8(args[0]).unwrap());
    for a in &args[1..] {
        cm.arg(*a);
    }
    exec(con, &cm)
}

fn dump_of(con: &mut redis::Connection) -> Vec<u8> {
    match ok(con, &["FUNCTION", "DUMP"]) {
        Value::BulkString(b) => b,
        v => panic!("FUNCTION DUMP gave {v:?}"),
    }
}

/// FUNCTION LIST with each library's functions sorted by name (Redis
/// keeps them in hash order) and libraries sorted by name.
fn normalized_list(con: &mut redis::Connection) -> Vec<String> {
    let Value::Array(libs) = ok(con, &["FUNCTION", "LIST", "WITHCODE"]) else {
        panic!("FUNCTION LIST is no array");
    };
    let mut out: Vec<String> = libs
        .into_iter()
        .map(|lib| {
            let Value::Array(mut fields) = lib else {
                panic!("library is no array")
            };
            if let Value::Array(fs) = &mut fields[5] {
                fs.sort_by_key(|f| format!("{f:?}"));
            }
            format!("{fields:?}")
        })
        .collect();
    out.sort();
    out
}

/// FUNCTION DUMP from redis-server is RESTOREd by ringkv and the other way
/// round, with the same results and errors for each policy.
#[test]
fn function_dump_and_restore_cross_servers() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let ringkv = Server::ringkv(3, &[]);
    let mut r = redis.client();
    let mut k = ringkv.client();
    for lib in [LIB1, LIB2, LIB_MULTI, LIB_ERRS] {
        ok(&mut r, &["FUNCTION", "LOAD", lib]);
    }
    let from_redis = dump_of(&mut r);
    // Our CRC agrees with redis-server's footer.
    let n = from_redis.len();
    assert_eq!(
        crc64(&from_redis[..n - 8]).to_le_bytes(),
        from_redis[n - 8..]
    );
    assert_eq!(
        raw_cmd(&mut k, &[b"FUNCTION", b"RESTORE", &from_redis]),
        Ok(Value::Okay)
    );
    assert_eq!(normalized_list(&mut k), normalized_list(&mut r));
    assert_eq!(
        ok(&mut k, &["FCALL", "setall", "3", "a", "b", "c", "x"]),
        arr(vec![bulk("x1"), bulk("x2"), bulk("x3")])
    );
    // The policies, on both servers.
    for policy in ["APPEND", "REPLACE", "FLUSH", "bogus"] {
        let a = raw_cmd(
            &mut r,
            &[b"FUNCTION", b"RESTORE", &from_redis, policy.as_bytes()],
        );
        let b = raw_cmd(
            &mut k,
            &[b"FUNCTION", b"RESTORE", &from_redis, policy.as_bytes()],
        );
        if policy == "APPEND" {
            // Which clashing library is named depends on hash order.
            for e in [&a, &b] {
                let e = e.as_ref().unwrap_err();
                assert!(
                    e.starts_with("ERR Library ") && e.ends_with(" already exists"),
                    "{e}"
                );
            }
        } else {
            assert_eq!(a, b, "RESTORE {policy}");
        }
    }
    // A payload whose function clashes with another library's: refused
    // by both, whatever the policy.
    let redis_b = Server::redis().unwrap();
    let mut rb = redis_b.client();
    ok(
        &mut rb,
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=other\nredis.register_function('setget', function() return 1 end)",
        ],
    );
    let clash = dump_of(&mut rb);
    for policy in ["APPEND", "REPLACE"] {
        let a = raw_cmd(
            &mut r,
            &[b"FUNCTION", b"RESTORE", &clash, policy.as_bytes()],
        );
        let b = raw_cmd(
            &mut k,
            &[b"FUNCTION", b"RESTORE", &clash, policy.as_bytes()],
        );
        assert_eq!(a, b, "RESTORE {policy}");
        assert_eq!(a, Err("ERR Function setget already exists".into()));
    }

    // And back: ringkv's payload into a fresh redis-server.
    let mut k2 = ringkv.client();
    ok(&mut k2, &["FUNCTION", "FLUSH"]);
    for lib in [LIB1, LIB_TYPES] {
        ok(&mut k2, &["FUNCTION", "LOAD", lib]);
    }
    let from_ringkv = dump_of(&mut k2);
    let redis2 = Server::redis().unwrap();
    let mut r2 = redis2.client();
    ok(&mut r2, &["FUNCTION", "FLUSH"]);
    assert_eq!(
        raw_cmd(&mut r2, &[b"FUNCTION", b"RESTORE", &from_ringkv]),
        Ok(Value::Okay)
    );
    assert_eq!(normalized_list(&mut r2), normalized_list(&mut k2));
    assert_eq!(ok(&mut r2, &["FCALL", "setget", "1", "k", "v"]), bulk("v"));
}

/// Garbage, truncated and huge RESTORE payloads get Redis's errors (the
/// same as redis-server's) and change nothing.
#[test]
fn bad_restore_payloads_get_redis_errors() {
    let redis = Server::redis();
    let ringkv = Server::ringkv(2, &[]);
    let mut k = ringkv.client();
    ok(&mut k, &["FUNCTION", "LOAD", LIB1]);
    let good = dump_of(&mut k);
    let mut cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"x".to_vec(),
        good[..good.len() - 1].to_vec(),
        {
            let mut g = good.clone();
            g[3] ^= 0xff;
            g
        },
        payload(&[7, 1, 2]),
        payload(&[246, 1, 2]),
        payload(&[245]),
        payload(&[245, 0x80, 0xff, 0xff, 0xff, 0xff]),
        payload(&[245, 0xc3, 10, 100, 1, 2, 3]),
        payload(&[245, 5, b'h', b'e', b'l', b'l', b'o']),
        // The same library twice in one payload.
        {
            let code =
                b"#!lua name=twice\nredis.register_function('twice', function() return 1 end)";
            let mut b = rec(code);
            b.extend(rec(code));
            payload(&b)
        },
        // A version from the future.
        {
            let mut p = vec![245, 3, b'a', b'b', b'c'];
            p.extend_from_slice(&11u16.to_le_bytes());
            let crc = crc64(&p);
            p.extend_from_slice(&crc.to_le_bytes());
            p
        },
        // 4 MB of noise with a valid footer.
        {
            let mut x = 0x1234_5678u32;
            let noise: Vec<u8> = (0..4 << 20)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            let mut b = vec![245];
            b.extend(noise);
            payload(&b)
        },
    ];
    // Many library records, the last one bad: nothing is kept.
    let mut many = Vec::new();
    for i in 0..200 {
        let code =
            format!("#!lua name=l{i}\nredis.register_function('f{i}', function() return {i} end)");
        many.extend(rec(code.as_bytes()));
    }
    many.extend_from_slice(&[245, 3, b'b', b'a', b'd']);
    cases.push(payload(&many));
    let mut r = redis.as_ref().map(|s| s.client());
    if let Some(r) = r.as_mut() {
        ok(r, &["FUNCTION", "LOAD", LIB1]);
    }
    for (i, p) in cases.iter().enumerate() {
        let got = raw_cmd(&mut k, &[b"FUNCTION", b"RESTORE", p]);
        assert!(got.is_err(), "case {i}: {got:?}");
        if let Some(r) = r.as_mut() {
            let want = raw_cmd(r, &[b"FUNCTION", b"RESTORE", p]);
            assert_eq!(got, want, "case {i}");
        }
    }
    // Ten zero bytes (version 0, CRC 0) and a bare footer are valid
    // empty payloads.
    for p in [vec![0u8; 10], payload(b"")] {
        assert_eq!(
            raw_cmd(&mut k, &[b"FUNCTION", b"RESTORE", &p]),
            Ok(Value::Okay)
        );
    }
    // Nothing changed, and the server is fine.
    assert_eq!(dump_of(&mut k), good);
    assert_eq!(ok(&mut k, &["FCALL", "setget", "1", "a", "b"]), bulk("b"));
}

/// An RDB file with a library written by redis-server is loaded by ringkv,
/// and ringkv's snapshot with libraries is loaded by redis-server.
#[test]
fn rdb_libraries_cross_servers() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let mut r = redis.client();
    ok(&mut r, &["FUNCTION", "LOAD", LIB1]);
    ok(&mut r, &["FUNCTION", "LOAD", LIB2]);
    ok(&mut r, &["SET", "{a}k1", "from-redis"]);
    ok(&mut r, &["SAVE"]);
    let dir = std::env::temp_dir().join(format!("ringkv-fn-rdb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(redis.work_dir().join("dump.rdb"), dir.join("dump.rdb")).unwrap();
    drop(r);
    drop(redis);

    let ringkv = Server::ringkv_in_dir(3, &dir, &[]);
    let mut k = ringkv.client();
    assert_eq!(
        ok(&mut k, &["FCALL_RO", "ro_get", "1", "{a}k1"]),
        bulk("from-redis")
    );
    ok(&mut k, &["FUNCTION", "LOAD", LIB_MULTI]);
    ok(&mut k, &["FUNCTION", "DELETE", "lib2"]);
    ok(&mut k, &["SET", "{b}k2", "from-ringkv"]);
    ok(&mut k, &["SAVE"]);
    let want = normalized_list(&mut k);
    drop(k);
    drop(ringkv);

    // ringkv reads its own snapshot back.
    let ringkv = Server::ringkv_in_dir(2, &dir, &[]);
    let mut k = ringkv.client();
    assert_eq!(normalized_list(&mut k), want);
    drop(k);
    drop(ringkv);

    let d = dir.display().to_string();
    let redis = Server::redis_with(&["--dir", &d, "--dbfilename", "dump.rdb"]).unwrap();
    let mut r = redis.client();
    assert_eq!(normalized_list(&mut r), want);
    assert_eq!(
        ok(&mut r, &["FCALL", "setall", "2", "x", "y", "p"]),
        arr(vec![bulk("p1"), bulk("p2")])
    );
    assert_eq!(ok(&mut r, &["GET", "{b}k2"]), bulk("from-ringkv"));
    drop(r);
    drop(redis);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A function that loops: other clients get -BUSY naming FUNCTION KILL,
/// SCRIPT KILL is refused, FUNCTION STATS shows it, FUNCTION KILL stops
/// it; and the other way round for an EVAL script.
#[test]
fn function_kill_and_busy() {
    let srv = Server::ringkv(2, &[]);
    let mut admin = srv.client();
    ok(
        &mut admin,
        &["CONFIG", "SET", "busy-reply-threshold", "100"],
    );
    ok(
        &mut admin,
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=loop\nredis.register_function('spin', function() local i = 0 while true do i = i + 1 end end)",
        ],
    );
    for (start, own_kill, wrong_kill, busy_names) in [
        (
            c(&["FCALL", "spin", "0"]),
            "FUNCTION",
            "SCRIPT",
            "FUNCTION KILL",
        ),
        (
            c(&["EVAL", "local i = 0 while true do i = i + 1 end", "0"]),
            "SCRIPT",
            "FUNCTION",
            "SCRIPT KILL",
        ),
    ] {
        let mut a = RawConn::connect(srv.port());
        a.send(&start);
        std::thread::sleep(Duration::from_millis(300));
        // A connection on the shard without the script answers.
        let mut other = None;
        for _ in 0..32 {
            let mut o = RawConn::connect(srv.port());
            o.send(&c(&["GET", "k"]));
            let r = o.read_len(1, Duration::from_millis(300));
            if !r.is_empty() {
                let mut r = r;
                r.extend(o.read_idle(Duration::from_millis(100), Duration::from_secs(2)));
                let want = format!(
                    "-BUSY Redis is busy running a script. You can only call {busy_names} or SHUTDOWN NOSAVE.\r\n"
                );
                assert_eq!(String::from_utf8_lossy(&r), want);
                other = Some(o);
                break;
            }
        }
        let mut o = other.expect("a connection on the shard without the script");
        o.send(&c(&[wrong_kill, "KILL"]));
        let r = o.read_idle(Duration::from_millis(200), Duration::from_secs(5));
        assert!(
            String::from_utf8_lossy(&r).starts_with(&format!(
                "-BUSY Redis is busy running a script. You can only call {busy_names}"
            )),
            "{}",
            String::from_utf8_lossy(&r)
        );
        o.send(&c(&["FUNCTION", "STATS"]));
        let r = o.read_idle(Duration::from_millis(200), Duration::from_secs(5));
        let text = String::from_utf8_lossy(&r);
        if own_kill == "FUNCTION" {
            assert!(
                text.contains("$4\r\nname\r\n$4\r\nspin\r\n$7\r\ncommand\r\n*3\r\n$5\r\nFCALL\r\n"),
                "{text}"
            );
        } else {
            assert!(text.starts_with("-BUSY"), "{text}");
        }
        o.send(&c(&[own_kill, "KILL"]));
        let r = o.read_idle(Duration::from_millis(200), Duration::from_secs(5));
        assert_eq!(r, b"+OK\r\n");
        let r = a.read_idle(Duration::from_millis(200), Duration::from_secs(10));
        assert!(
            String::from_utf8_lossy(&r)
                .starts_with("-ERR Script killed by user with SCRIPT KILL... script: "),
            "{}",
            String::from_utf8_lossy(&r)
        );
    }
    assert_eq!(ok(&mut admin, &["PING"]), status("PONG"));
}

/// redis-py's `Lock` (its acquire, extend, reacquire and release are Lua
/// scripts), SET NX PX with a compare-and-delete release, and a
/// token-bucket rate limiter (EVALSHA through register_script, and the
/// same as a function through FCALL), under contention from threads, on
/// keys spread over the shards. Run against redis-server too, so the
/// expectations are Redis's.
const LOCK_RECIPES_PY: &str = r##"
import sys, threading
import redis
from redis.exceptions import LockError, LockNotOwnedError

port = int(sys.argv[1])
r = redis.Redis(port=port)
r.flushall()
r.function_flush()
errors = []

# 1. Blocking acquire under contention: never two holders.
def worker(tid):
    c = redis.Redis(port=port)
    for i in range(15):
        name = "lock:%d" % ((tid + i) % 4)
        lk = c.lock(name, timeout=10, blocking_timeout=60, sleep=0.001)
        if not lk.acquire():
            errors.append("acquire timed out")
            return
        try:
            if c.getset(name + ":guard", tid) is not None:
                errors.append("two holders of " + name)
            c.incr(name + ":count")
            c.delete(name + ":guard")
        finally:
            lk.release()

threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
for t in threads: t.start()
for t in threads: t.join(120)
assert not errors, errors
assert sum(int(r.get("lock:%d:count" % i)) for i in range(4)) == 8 * 15

# 2. Extend, reacquire, and a non-owner refused.
lk = r.lock("lock:x", timeout=1)
assert lk.acquire(blocking=False)
assert not r.lock("lock:x", timeout=1).acquire(blocking=False)
assert lk.extend(10)
assert 9000 < r.pttl("lock:x") <= 11000
assert lk.extend(5, replace_ttl=True)
assert 0 < r.pttl("lock:x") <= 5000
assert lk.reacquire()
assert 0 < r.pttl("lock:x") <= 1000
other = r.lock("lock:x", timeout=5)
for op in (other.release, lambda: other.extend(1), other.reacquire):
    # (a refused release forgets the token: set it each time)
    other.local.token = b"not-the-owner"
    try:
        op()
        raise AssertionError("a non-owner changed the lock")
    except LockNotOwnedError:
        pass
assert lk.owned() and lk.locked() and not other.owned()
lk.release()
assert not lk.locked()
try:
    lk.release()
    raise AssertionError("released twice")
except LockError:
    pass

# 3. SET NX PX + compare-and-delete.
CAD = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
assert r.set("res", "tok1", nx=True, px=10000)
assert r.set("res", "tok2", nx=True, px=10000) is None
assert r.eval(CAD, 1, "res", "tok2") == 0
assert r.eval(CAD, 1, "res", "tok1") == 1
assert r.get("res") is None

# 4. Token bucket: `now` comes from the caller, so results are exact.
BUCKET = """
local rate, cap = tonumber(ARGV[1]), tonumber(ARGV[2])
local now, want = tonumber(ARGV[3]), tonumber(ARGV[4])
local d = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(d[1]) or cap
local ts = tonumber(d[2]) or now
tokens = math.min(cap, tokens + math.max(0, now - ts) * rate / 1000)
local ok = 0
if tokens >= want then tokens = tokens - want ok = 1 end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'ts', now)
redis.call('PEXPIRE', KEYS[1], 60000)
return {ok, tostring(tokens)}
"""
limiter = r.register_script(BUCKET)
r.function_load("#!lua name=bucket\nredis.register_function('take', function(KEYS, ARGV)\n" + BUCKET + "\nend)")
for user in ("alice", "bob", "carol"):
    key = "bucket:" + user
    got = [limiter(keys=[key], args=[1, 5, 1000, 1])[0] for _ in range(7)]
    assert got == [1, 1, 1, 1, 1, 0, 0], got
    # Two seconds later: two more tokens.
    got = [r.fcall("take", 1, key, 1, 5, 3000, 1)[0] for _ in range(3)]
    assert got == [1, 1, 0], got

allowed = []
def spender(tid):
    c = redis.Redis(port=port)
    s = c.register_script(BUCKET)
    for i in range(10):
        res = s(keys=["bucket:shared"], args=[1, 20, 5000, 1]) if i % 2 else c.fcall("take", 1, "bucket:shared", 1, 20, 5000, 1)
        allowed.append(res[0])
threads = [threading.Thread(target=spender, args=(t,)) for t in range(6)]
for t in threads: t.start()
for t in threads: t.join(120)
assert len(allowed) == 60 and sum(allowed) == 20, (len(allowed), sum(allowed))
print("ok")
"##;

#[test]
fn lock_recipes_with_redis_py() {
    let Some(py) = python_with_redis() else {
        return;
    };
    let srv = Server::ringkv(3, &[]);
    run_py(
        &py,
        "locks.py",
        LOCK_RECIPES_PY,
        srv.port(),
        "ringkv --shards 3",
    );
    if let Some(redis) = Server::redis() {
        run_py(
            &py,
            "locks-redis.py",
            LOCK_RECIPES_PY,
            redis.port(),
            "redis-server",
        );
    }
}

/// FUNCTION LOAD, DELETE, FLUSH and RESTORE count as changes for the save
/// points (rdb_changes_since_last_save), as in Redis.
#[test]
fn function_changes_count_for_save_points() {
    let srv = Server::ringkv(2, &[]);
    let mut c = srv.client();
    let changes = |c: &mut redis::Connection| -> i64 {
        let Value::BulkString(b) = ok(c, &["INFO", "persistence"]) else {
            panic!("INFO is no bulk string");
        };
        let text = String::from_utf8(b).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("rdb_changes_since_last_save:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let wait_for = |c: &mut redis::Connection, n: i64| {
        let deadline = Instant::now() + Duration::from_secs(10);
        while changes(c) < n {
            assert!(Instant::now() < deadline, "changes stay below {n}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    assert_eq!(changes(&mut c), 0);
    ok(&mut c, &["FUNCTION", "LOAD", LIB1]);
    wait_for(&mut c, 1);
    let dump = dump_of(&mut c);
    ok(&mut c, &["FUNCTION", "DELETE", "lib1"]);
    wait_for(&mut c, 2);
    raw_cmd(&mut c, &[b"FUNCTION", b"RESTORE", &dump]).unwrap();
    wait_for(&mut c, 3);
    ok(&mut c, &["FUNCTION", "FLUSH"]);
    wait_for(&mut c, 4);
}
