//! Scripting commands: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT, FCALL,
//! FCALL_RO and FUNCTION. The Lua engine, the script cache, the function
//! libraries and the conversions live in src/script.

use super::*;
use crate::script;
use crate::script::functions::{self, Policy};

const GROUP: &str = "scripting";
const EVAL_FLAGS: u32 = NOSCRIPT | STALE;

/// The KEYS of a script call: `numkeys` at index 2, the keys after it.
fn script_keys(args: &[&[u8]]) -> Vec<usize> {
    numkeys_positions(args, 2, &[])
}

macro_rules! eval_spec {
    ($name:expr, $flags:expr, $since:expr, $run:expr, $summary:expr) => {
        CmdSpec {
            name: $name,
            arity: -3,
            flags: $flags,
            first_key: 0,
            last_key: 0,
            step: 0,
            group: GROUP,
            acl: "@slow @scripting",
            summary: $summary,
            since: $since,
            run: Run::Srv($run),
            subs: &[],
            getkeys: Some(script_keys),
        }
    };
}

const SCRIPT_FLAGS: u32 = NOSCRIPT;

static SCRIPT_SUBS: &[SubSpec] = &[
    crate::sub!(
        "debug",
        3,
        SCRIPT_FLAGS,
        "@slow @scripting",
        "Set the debug mode for executed scripts."
    ),
    crate::sub!(
        "exists",
        -3,
        SCRIPT_FLAGS,
        "@slow @scripting",
        "Check existence of scripts in the script cache."
    ),
    crate::sub!(
        "flush",
        -2,
        SCRIPT_FLAGS,
        "@slow @scripting",
        "Remove all the scripts from the script cache."
    ),
    crate::sub!(
        "help",
        2,
        SCRIPT_FLAGS | LOADING | STALE,
        "@slow @scripting",
        "Show helpful text about the different subcommands"
    ),
    crate::sub!(
        "kill",
        2,
        SCRIPT_FLAGS | ALLOW_BUSY,
        "@slow @scripting",
        "Kill the script currently in execution."
    ),
    crate::sub!(
        "load",
        3,
        SCRIPT_FLAGS | STALE,
        "@slow @scripting",
        "Load the specified Lua script into the script cache."
    ),
];

static FUNCTION_SUBS: &[SubSpec] = &[
    crate::sub!(
        "delete",
        3,
        NOSCRIPT | WRITE,
        "@write @slow @scripting",
        "Delete a function by name"
    ),
    crate::sub!(
        "dump",
        2,
        NOSCRIPT,
        "@slow @scripting",
        "Dump all functions into a serialized binary payload"
    ),
    crate::sub!(
        "flush",
        -2,
        NOSCRIPT | WRITE,
        "@write @slow @scripting",
        "Deleting all functions"
    ),
    crate::sub!(
        "help",
        2,
        LOADING | STALE,
        "@slow @scripting",
        "Show helpful text about the different subcommands"
    ),
    crate::sub!(
        "kill",
        2,
        NOSCRIPT | ALLOW_BUSY,
        "@slow @scripting",
        "Kill the function currently in execution."
    ),
    crate::sub!(
        "list",
        -2,
        NOSCRIPT,
        "@slow @scripting",
        "List information about all the functions"
    ),
    crate::sub!(
        "load",
        -3,
        NOSCRIPT | WRITE | DENYOOM,
        "@write @slow @scripting",
        "Create a function with the given arguments (name, code, description)"
    ),
    crate::sub!(
        "restore",
        -3,
        NOSCRIPT | WRITE | DENYOOM,
        "@write @slow @scripting",
        "Restore all the functions on the given payload"
    ),
    crate::sub!(
        "stats",
        2,
        NOSCRIPT | ALLOW_BUSY,
        "@slow @scripting",
        "Return information about the function currently running (name, description, duration)"
    ),
];

#[rustfmt::skip]
pub static COMMANDS: &[CmdSpec] = &[
    eval_spec!("eval", EVAL_FLAGS, "2.6.0", eval, "Execute a Lua script server side"),
    eval_spec!("evalsha", EVAL_FLAGS, "2.6.0", evalsha, "Execute a Lua script server side"),
    eval_spec!("eval_ro", EVAL_FLAGS | READONLY, "7.0.0", eval_ro,
        "Execute a read-only Lua script server side"),
    eval_spec!("evalsha_ro", EVAL_FLAGS | READONLY, "7.0.0", evalsha_ro,
        "Execute a read-only Lua script server side"),
    eval_spec!("fcall", EVAL_FLAGS, "7.0.0", fcall, "Invoke a function"),
    eval_spec!("fcall_ro", EVAL_FLAGS | READONLY, "7.0.0", fcall_ro, "Invoke a read-only function"),
    CmdSpec {
        name: "function",
        arity: -2,
        flags: 0,
        first_key: 0,
        last_key: 0,
        step: 0,
        group: GROUP,
        acl: "@slow",
        summary: "A container for function commands",
        since: "7.0.0",
        run: Run::Srv(function_cmd),
        subs: FUNCTION_SUBS,
        getkeys: None,
    },
    CmdSpec {
        name: "script",
        arity: -2,
        flags: 0,
        first_key: 0,
        last_key: 0,
        step: 0,
        group: GROUP,
        acl: "@slow",
        summary: "A container for Lua scripts management commands",
        since: "2.6.0",
        run: Run::Srv(script_cmd),
        subs: SCRIPT_SUBS,
        getkeys: None,
    },
];

fn eval(c: &mut SrvCtx, args: &[&[u8]]) {
    eval_generic(c, args, false, false)
}

fn evalsha(c: &mut SrvCtx, args: &[&[u8]]) {
    eval_generic(c, args, true, false)
}

fn eval_ro(c: &mut SrvCtx, args: &[&[u8]]) {
    eval_generic(c, args, false, true)
}

fn evalsha_ro(c: &mut SrvCtx, args: &[&[u8]]) {
    eval_generic(c, args, true, true)
}

fn fcall(c: &mut SrvCtx, args: &[&[u8]]) {
    functions::fcall(c.sh, c.conn, &mut c.out, args, false)
}

fn fcall_ro(c: &mut SrvCtx, args: &[&[u8]]) {
    functions::fcall(c.sh, c.conn, &mut c.out, args, true)
}

fn kill_reply(out: &mut Out, is_eval: bool) {
    match script::kill(is_eval) {
        script::Kill::Killed => out.ok(),
        script::Kill::NotBusy => out.error("NOTBUSY No scripts in execution right now."),
        script::Kill::Unkillable => out.error(
            "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.",
        ),
        script::Kill::WrongKind(msg) => out.error(msg),
    }
}

fn function_cmd(c: &mut SrvCtx, args: &[&[u8]]) {
    let Some(sub) = find_sub(&mut c.out, FUNCTION_SUBS, args) else {
        return;
    };
    match sub.name {
        "load" => {
            let code = args[args.len() - 1];
            let mut replace = false;
            for a in &args[2..args.len() - 1] {
                if a.eq_ignore_ascii_case(b"replace") {
                    replace = true;
                } else {
                    return c.out.err(&format!(
                        "Unknown option given: {}",
                        String::from_utf8_lossy(a)
                    ));
                }
            }
            match functions::load(code, replace) {
                Ok(name) => {
                    // A change for the save points, as Redis counts it.
                    c.sh.ks.dirty += 1;
                    c.out.bulk(name.as_bytes())
                }
                Err(e) => c.out.err(&e),
            }
        }
        "delete" => {
            if functions::delete(args[2]) {
                c.sh.ks.dirty += 1;
                c.out.ok()
            } else {
                c.out.err("Library not found")
            }
        }
        "list" => {
            let mut with_code = false;
            let mut pattern: Option<&[u8]> = None;
            let mut i = 2;
            while i < args.len() {
                let a = args[i];
                if a.eq_ignore_ascii_case(b"withcode") && !with_code {
                    with_code = true;
                } else if a.eq_ignore_ascii_case(b"libraryname") && pattern.is_none() {
                    if i + 1 >= args.len() {
                        return c.out.err("library name argument was not given");
                    }
                    i += 1;
                    pattern = Some(args[i]);
                } else {
                    return c.out.err(&format!(
                        "Unknown argument {}",
                        String::from_utf8_lossy(a)
                    ));
                }
                i += 1;
            }
            functions::list(&mut c.out, pattern, with_code);
        }
        "flush" => {
            if args.len() > 3 {
                return c.out.err(&format!(
                    "unknown subcommand or wrong number of arguments for '{}'. Try FUNCTION HELP.",
                    String::from_utf8_lossy(args[1])
                ));
            }
            if let Some(mode) = args.get(2) {
                if !mode.eq_ignore_ascii_case(b"sync") && !mode.eq_ignore_ascii_case(b"async") {
                    return c.out.err("FUNCTION FLUSH only supports SYNC|ASYNC option");
                }
            }
            functions::flush();
            c.sh.ks.dirty += 1;
            c.out.ok();
        }
        "dump" => c.out.bulk(&functions::dump(true)),
        "restore" => {
            if args.len() > 4 {
                return c.out.err(&format!(
                    "unknown subcommand or wrong number of arguments for '{}'. Try FUNCTION HELP.",
                    String::from_utf8_lossy(args[1])
                ));
            }
            let policy = match args.get(3) {
                None => Policy::Append,
                Some(p) if p.eq_ignore_ascii_case(b"append") => Policy::Append,
                Some(p) if p.eq_ignore_ascii_case(b"replace") => Policy::Replace,
                Some(p) if p.eq_ignore_ascii_case(b"flush") => Policy::Flush,
                Some(_) => {
                    return c.out.err(
                        "Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
                    )
                }
            };
            match functions::restore(args[2], policy) {
                Ok(()) => {
                    c.sh.ks.dirty += 1;
                    c.out.ok()
                }
                Err(e) => c.out.err(&e),
            }
        }
        "stats" => {
            if script::eval_running() {
                return c.out.error(
                    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
                );
            }
            let (libs, funcs) = functions::counts();
            c.out.map(2);
            c.out.bulk(b"running_script");
            match script::running_function() {
                None => c.out.null(),
                Some((name, cmd, ms)) => {
                    c.out.map(3);
                    c.out.bulk(b"name");
                    c.out.bulk(name.as_bytes());
                    c.out.bulk(b"command");
                    c.out.array(cmd.len());
                    for a in &cmd {
                        c.out.bulk(a);
                    }
                    c.out.bulk(b"duration_ms");
                    c.out.int(ms as i64);
                }
            }
            c.out.bulk(b"engines");
            c.out.map(1);
            c.out.bulk(b"LUA");
            c.out.map(2);
            c.out.bulk(b"libraries_count");
            c.out.int(libs as i64);
            c.out.bulk(b"functions_count");
            c.out.int(funcs as i64);
        }
        "kill" => kill_reply(&mut c.out, false),
        _ => help_reply(
            &mut c.out,
            "FUNCTION",
            &[
                "LOAD [REPLACE] <FUNCTION CODE>",
                "    Create a new library with the given library name and code.",
                "DELETE <LIBRARY NAME>",
                "    Delete the given library.",
                "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
                "    Return general information on all the libraries:",
                "    * Library name",
                "    * The engine used to run the Library",
                "    * Library description",
                "    * Functions list",
                "    * Library code (if WITHCODE is given)",
                "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
                "STATS",
                "    Return information about the current function running:",
                "    * Function name",
                "    * Command used to run the function",
                "    * Duration in MS that the function is running",
                "    If no function is running, return nil",
                "    In addition, returns a list of available engines.",
                "KILL",
                "    Kill the current running function.",
                "FLUSH [ASYNC|SYNC]",
                "    Delete all the libraries.",
                "    When called without the optional mode argument, the behavior is determined by the",
                "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
                "    * ASYNC: Asynchronously flush the libraries.",
                "    * SYNC: Synchronously flush the libraries.",
                "DUMP",
                "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
                "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
                "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
                "    control how to handle existing libraries (default APPEND):",
                "    * FLUSH: delete all existing libraries.",
                "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
                "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
                "      libraries with the new libraries (notice that even on this option there is a chance of failure",
                "      in case of functions name collision with another library).",
            ],
        ),
    }
}

fn eval_generic(c: &mut SrvCtx, args: &[&[u8]], by_sha: bool, read_only: bool) {
    let Some(numkeys) = crate::util::parse_i64(args[2]) else {
        return c.out.not_int();
    };
    if numkeys > (args.len() - 3) as i64 {
        return c
            .out
            .err("Number of keys can't be greater than number of args");
    }
    if numkeys < 0 {
        return c.out.err("Number of keys can't be negative");
    }
    let nk = numkeys as usize;
    let (keys, argv) = args[3..].split_at(nk);
    let (sha, body) = if by_sha {
        (String::from_utf8_lossy(args[1]).to_ascii_lowercase(), None)
    } else {
        (script::sha1hex(args[1]), Some(args[1]))
    };
    script::eval(c.sh, c.conn, &mut c.out, &sha, body, keys, argv, read_only);
}

fn script_cmd(c: &mut SrvCtx, args: &[&[u8]]) {
    let Some(sub) = find_sub(&mut c.out, SCRIPT_SUBS, args) else {
        return;
    };
    match sub.name {
        "load" => {
            if let Some(sha) = script::load(&mut c.out, args[2]) {
                c.out.bulk(sha.as_bytes());
            }
        }
        "exists" => {
            c.out.array(args.len() - 2);
            for a in &args[2..] {
                let sha = String::from_utf8_lossy(a).to_ascii_lowercase();
                c.out.int(script::cache_exists(&sha) as i64);
            }
        }
        "flush" => {
            if args.len() > 3 {
                return c.out.syntax();
            }
            if let Some(mode) = args.get(2) {
                if !mode.eq_ignore_ascii_case(b"sync") && !mode.eq_ignore_ascii_case(b"async") {
                    return c.out.err("SCRIPT FLUSH only support SYNC|ASYNC option");
                }
            }
            script::cache_flush();
            c.out.ok();
        }
        "kill" => kill_reply(&mut c.out, true),
        "debug" => {
            // Replies of earlier pipelined commands still waiting to be
            // sent: Redis refuses (the debugger needs the connection).
            if !c.out.buf.is_empty() {
                return c.out.err("SCRIPT DEBUG must be called outside a pipeline");
            }
            let mode = args[2];
            if mode.eq_ignore_ascii_case(b"no") {
                c.out.ok()
            } else if mode.eq_ignore_ascii_case(b"yes") || mode.eq_ignore_ascii_case(b"sync") {
                c.out.err("SCRIPT DEBUG is not supported: ringkv has no Lua debugger")
            } else {
                c.out.err("Use SCRIPT DEBUG YES/SYNC/NO")
            }
        }
        _ => help_reply(
            &mut c.out,
            "SCRIPT",
            &[
                "DEBUG (YES|SYNC|NO)",
                "    Set the debug mode for subsequent scripts executed.",
                "EXISTS <sha1> [<sha1> ...]",
                "    Return information about the existence of the scripts in the script cache.",
                "FLUSH [ASYNC|SYNC]",
                "    Flush the Lua scripts cache. Very dangerous on replicas.",
                "    When called without the optional mode argument, the behavior is determined by the",
                "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
                "    * ASYNC: Asynchronously flush the scripts cache.",
                "    * SYNC: Synchronously flush the scripts cache.",
                "KILL",
                "    Kill the currently executing Lua script.",
                "LOAD <script>",
                "    Load a script into the scripts cache without executing it.",
            ],
        ),
    }
}
