//! SORT and SORT_RO compared with a real redis-server: lists, sets and
//! sorted sets; numeric and ALPHA; ASC/DESC; LIMIT; BY string keys, hash
//! fields and nosort; GET #, string keys and hash fields; STORE; errors.
//! Keys used by BY/GET patterns are spread over both shards with --shards 2.

use crate::common::{run, Server};

const SETUP: &[&[&str]] = &[
    &["RPUSH", "nums", "3", "1", "10", "2", "-5", "2.5"],
    &["RPUSH", "words", "pear", "apple", "fig", "banana"],
    &["RPUSH", "mixed", "1", "x", "3"],
    &["SADD", "s", "5", "3", "9", "1"],
    &["ZADD", "z", "1", "c", "2", "a", "3", "b"],
    &[
        "MSET", "w_3", "30", "w_1", "10", "w_10", "5", "w_2", "20", "w_-5", "1",
    ],
    &["MSET", "name_3", "three", "name_1", "one", "name_10", "ten"],
    &["HSET", "obj_pear", "rank", "2", "label", "P"],
    &["HSET", "obj_apple", "rank", "1", "label", "A"],
    &["HSET", "obj_fig", "rank", "3"],
    &["SET", "str", "value"],
    &["RPUSH", "blanks", "3", "", "1", " 2", "0x10"],
    &["HSET", "h_3", "f", "1"],
    &["SADD", "letters", "b", "d", "a", "c"],
];

const CASES: &[&[&str]] = &[
    &["SORT", "nums"],
    &["SORT", "nums", "DESC"],
    &["SORT", "nums", "LIMIT", "1", "3"],
    &["SORT", "nums", "LIMIT", "-2", "2"],
    &["SORT", "nums", "LIMIT", "4", "-1"],
    &["SORT", "nums", "LIMIT", "100", "5"],
    &["SORT", "words", "ALPHA"],
    &["SORT", "words", "ALPHA", "DESC", "LIMIT", "0", "2"],
    &["SORT", "words"],
    &["SORT", "mixed"],
    &["SORT", "mixed", "ALPHA"],
    &["SORT", "s"],
    &["SORT", "s", "DESC"],
    &["SORT", "z"],
    &["SORT", "z", "ALPHA"],
    &["SORT", "z", "BY", "nosort"],
    &["SORT", "z", "BY", "nosort", "DESC"],
    &["SORT", "z", "BY", "nosort", "LIMIT", "1", "1"],
    &["SORT", "nums", "BY", "nosort"],
    &["SORT", "nums", "BY", "w_*"],
    &["SORT", "nums", "BY", "w_*", "DESC"],
    &["SORT", "nums", "BY", "w_*", "GET", "#", "GET", "name_*"],
    &["SORT", "nums", "BY", "missing_*", "GET", "w_*"],
    &[
        "SORT",
        "words",
        "BY",
        "obj_*->rank",
        "GET",
        "obj_*->label",
        "GET",
        "#",
    ],
    &["SORT", "words", "BY", "obj_*->rank", "ALPHA"],
    &["SORT", "words", "ALPHA", "GET", "obj_*->missing"],
    &["SORT", "nums", "STORE", "dst"],
    &["LRANGE", "dst", "0", "-1"],
    &[
        "SORT",
        "words",
        "ALPHA",
        "GET",
        "obj_*->label",
        "STORE",
        "dst2",
    ],
    &["LRANGE", "dst2", "0", "-1"],
    &["SORT", "nokey", "STORE", "dst"],
    &["EXISTS", "dst"],
    &["SORT_RO", "nums", "DESC"],
    &["SORT_RO", "nums", "STORE", "x"],
    &["SORT", "str"],
    &["SORT", "nokey"],
    &["SORT", "nums", "LIMIT", "a", "1"],
    &["SORT", "nums", "BOGUS"],
    // A list keeps its order with BY nosort, reversed for DESC (then LIMIT).
    &["SORT", "nums", "BY", "nosort", "DESC"],
    &["SORT", "nums", "BY", "nosort", "DESC", "LIMIT", "1", "2"],
    &["SORT", "nums", "BY", "nosort", "DESC", "STORE", "dst3"],
    &["LRANGE", "dst3", "0", "-1"],
    // Scores convert like strtod: "" is 0, leading spaces and hex are fine.
    &["SORT", "blanks"],
    &["SORT", "blanks", "DESC", "GET", "h_*->f"],
    &["SORT", "nums", "BY", "h_*->f", "GET", "h_*->missing"],
    // A set sorted into STORE with BY nosort is sorted ALPHA.
    &["SORT", "letters", "BY", "nosort", "DESC", "STORE", "dst4"],
    &["LRANGE", "dst4", "0", "-1"],
    &[
        "SORT", "letters", "BY", "nosort", "LIMIT", "1", "2", "STORE", "dst4",
    ],
    &["LRANGE", "dst4", "0", "-1"],
];

#[test]
fn sort_matches_redis() {
    let Some(redis) = Server::redis() else { return };
    for shards in [1, 2] {
        let rk = Server::ringkv(shards, &[]);
        let (mut a, mut b) = (redis.client(), rk.client());
        run(&mut a, &["FLUSHALL"]).unwrap();
        for c in SETUP {
            assert_eq!(run(&mut a, c).is_ok(), run(&mut b, c).is_ok(), "{c:?}");
        }
        for c in CASES {
            let want = run(&mut a, c);
            let got = run(&mut b, c);
            assert_eq!(got, want, "shards {shards}: {c:?}");
        }
    }
}
