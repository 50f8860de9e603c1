//! Scripting commands: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT.
//! The Lua engine, the script cache and the conversions live in
//! src/script.

use super::*;
use crate::script;

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

#[rustfmt::skip]
pub static COMMANDS: &[CmdSpec] = &[
    eval_spec!("eval", EVAL_FLAGS, "2.6.0", eval, "Execute a Lua script server side"),
    eval_spec!("evalsha", EVAL_FLAGS, "2.6.0", evalsha, "Execute a Lua script server side"),
    eval_spec!("eval_ro", EVAL_FLAGS | READONLY, "7.0.0", eval_ro,
        "Execute a read-only Lua script server side"),
    eval_spec!("evalsha_ro", EVAL_FLAGS | READONLY, "7.0.0", evalsha_ro,
        "Execute a read-only Lua script server side"),
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
        "kill" => match crate::script::kill() {
            crate::script::Kill::Killed => c.out.ok(),
            crate::script::Kill::NotBusy => c.out.error("NOTBUSY No scripts in execution right now."),
            crate::script::Kill::Unkillable => c.out.error(
                "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.",
            ),
        },
        _ => help_reply(
            &mut c.out,
            "SCRIPT",
            &[
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
