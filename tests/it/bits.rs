//! Bitmaps, BITFIELD, HyperLogLog and geo against a real redis-server 7.0.
//!
//! * Pipelined differential streams (depth 1, 16 and 50; ringkv with 1 and
//!   2 shards; seeded `StdRng`, a failure prints seed, depth and command),
//!   one per family, compared byte for byte (RESP3 on some seeds):
//!   - bitmaps: SETBIT GETBIT BITCOUNT BITPOS BITOP BITFIELD BITFIELD_RO
//!     mixed with SET/APPEND/SETRANGE/GETRANGE/GET on the same keys, so
//!     both servers must hold the same bytes;
//!   - HLL: PFADD (up to 600 elements, so HLLs turn dense) PFCOUNT (one and
//!     several keys) PFMERGE PFDEBUG and GET of the raw HLL bytes, plus
//!     corruptions (SETRANGE of header and opcode bytes, APPEND, SET of
//!     non-HLL strings) that both servers must report the same way;
//!   - geo: GEOADD (NX/XX/CH, invalid coordinates) GEODIST GEOHASH GEOPOS
//!     GEOSEARCH GEOSEARCHSTORE GEORADIUS[BYMEMBER][_RO] with every option,
//!     and ZRANGE WITHSCORES of stored results.
//!
//!   Untagged keys land on both shards (BITOP, PFCOUNT, PFMERGE and the
//!   geo STORE forms take the cross-shard path); `{t}` keys share one.
//!   Arguments include bad offsets, types, units and keywords, keys of the
//!   wrong type and CR/LF inside keys and members.
//! * HLL interop: the same adds give the same bytes on both servers
//!   (sparse and dense); values move both ways by GET/SET and DUMP/RESTORE
//!   and count the same; hostile HLL strings never crash ringkv.
//! * Geo over 100 and 3000 points: same members, order and digits.

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

type Args = Vec<Vec<u8>>;

fn b(x: &str) -> Vec<u8> {
    x.as_bytes().to_vec()
}

// ----- a strict pipelined client ---------------------------------------------

fn encode(args: &Args) -> Vec<u8> {
    resp_cmd(&args.iter().map(|a| a.as_slice()).collect::<Vec<_>>())
}

use crate::common::read_one_reply as read_reply;

struct Client {
    w: TcpStream,
    r: BufReader<TcpStream>,
}

impl Client {
    fn new(port: u16) -> Client {
        let w = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        w.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        w.set_nodelay(true).unwrap();
        let r = BufReader::new(w.try_clone().unwrap());
        Client { w, r }
    }

    /// Sends `cmds` as one write and reads one reply per command.
    fn pipeline(&mut self, cmds: &[Args]) -> Result<Vec<Vec<u8>>, String> {
        let mut buf = Vec::new();
        for c in cmds {
            buf.extend(encode(c));
        }
        self.w.write_all(&buf).map_err(|e| e.to_string())?;
        let mut replies = Vec::with_capacity(cmds.len());
        for (i, c) in cmds.iter().enumerate() {
            let mut out = Vec::new();
            read_reply(&mut self.r, &mut out)
                .map_err(|e| format!("reply {i} of {} ({}): {e}", cmds.len(), show(c)))?;
            replies.push(out);
        }
        Ok(replies)
    }

    fn one(&mut self, args: &[&[u8]]) -> Vec<u8> {
        let a: Args = args.iter().map(|x| x.to_vec()).collect();
        self.pipeline(&[a]).expect("reply").remove(0)
    }
}

fn show(args: &Args) -> String {
    args.iter()
        .map(|a| format!("{:?}", String::from_utf8_lossy(a)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The payload of a bulk reply (`$n\r\n...\r\n`).
fn bulk_payload(reply: &[u8]) -> Vec<u8> {
    assert_eq!(reply[0], b'$', "{:?}", String::from_utf8_lossy(reply));
    let nl = reply.iter().position(|&c| c == b'\n').unwrap();
    reply[nl + 1..reply.len() - 2].to_vec()
}

// ----- the command generator -------------------------------------------------

/// Which command families a stream draws from.
#[derive(Clone, Copy)]
enum Family {
    Bitmap,
    Hll,
    Geo,
}

const GEO_KEYS: [&str; 6] = ["g0", "g1", "{t}g", "{t}h", "gstr", "g\r\n"];
const HLL_KEYS: [&str; 7] = ["h0", "h1", "h2", "{t}h", "{t}i", "hlst", "h\r\n"];
const BIT_KEYS: [&str; 8] = ["b0", "b1", "b2", "{t}a", "{t}b", "{t}c", "lst", "k\r\nx"];

struct Gen {
    rng: StdRng,
}

impl Gen {
    fn pct(&mut self, p: u32) -> bool {
        self.rng.gen_range(0..100) < p
    }

    fn pick(&mut self, xs: &[&str]) -> Vec<u8> {
        b(xs[self.rng.gen_range(0..xs.len())])
    }

    fn int(&mut self, lo: i64, hi: i64) -> Vec<u8> {
        b(&self.rng.gen_range(lo..=hi).to_string())
    }

    fn bit_offset(&mut self) -> Vec<u8> {
        match self.rng.gen_range(0..40) {
            0 => self.pick(&[
                "-1",
                "abc",
                "",
                "4294967296",
                "99999999999999999999",
                "1.5",
                "#3",
            ]),
            // Large valid offsets are in their own test (512 MB strings).
            1..=5 => self.int(0, 3000),
            _ => self.int(0, 90),
        }
    }

    fn range_arg(&mut self) -> Vec<u8> {
        match self.rng.gen_range(0..20) {
            0 => self.pick(&[
                "x",
                "",
                "9223372036854775807",
                "-9223372036854775808",
                "1e3",
            ]),
            1..=4 => self.int(-100, 100),
            _ => self.int(-12, 12),
        }
    }

    fn unit(&mut self) -> Option<Vec<u8>> {
        match self.rng.gen_range(0..10) {
            0..=3 => None,
            4..=6 => Some(self.pick(&["BIT", "bit"])),
            7 | 8 => Some(self.pick(&["BYTE", "byte"])),
            _ => Some(self.pick(&["bits", "x"])),
        }
    }

    fn field_type(&mut self) -> Vec<u8> {
        if self.pct(4) {
            return self.pick(&["u64", "i65", "i0", "u0", "x8", "", "i", "I8", "i-1", "u08"]);
        }
        let signed = self.pct(50);
        let bits = match self.rng.gen_range(0..4) {
            0 => self.rng.gen_range(1..=8),
            1 => [8, 16, 32][self.rng.gen_range(0..3)],
            2 => {
                if signed {
                    64
                } else {
                    63
                }
            }
            _ => self.rng.gen_range(1..=63),
        };
        b(&format!("{}{bits}", if signed { 'i' } else { 'u' }))
    }

    fn field_offset(&mut self) -> Vec<u8> {
        match self.rng.gen_range(0..30) {
            0 => self.pick(&[
                "-1",
                "x",
                "#-1",
                "#x",
                "4294967296",
                "#4294967296",
                "#99999999999999999",
            ]),
            1..=8 => b(&format!("#{}", self.rng.gen_range(0..12))),
            _ => self.int(0, 120),
        }
    }

    fn field_value(&mut self) -> Vec<u8> {
        match self.rng.gen_range(0..12) {
            0 => self.pick(&["x", "1.5", "18446744073709551615", ""]),
            1 => self.pick(&["9223372036854775807", "-9223372036854775808"]),
            2 => b(&self.rng.gen::<i64>().to_string()),
            3 | 4 => self.int(-300, 300),
            _ => self.int(-3, 3),
        }
    }

    fn bitfield(&mut self, ro: bool) -> Args {
        let key = self.pick(&BIT_KEYS);
        let mut v = vec![b(if ro { "BITFIELD_RO" } else { "BITFIELD" }), key];
        for _ in 0..self.rng.gen_range(0..5) {
            match self.rng.gen_range(0..12) {
                0..=3 => {
                    v.push(self.pick(&["GET", "get"]));
                    v.push(self.field_type());
                    v.push(self.field_offset());
                }
                4..=6 if !ro || self.pct(10) => {
                    v.push(self.pick(&["SET", "set"]));
                    v.push(self.field_type());
                    v.push(self.field_offset());
                    v.push(self.field_value());
                }
                7..=9 if !ro || self.pct(10) => {
                    v.push(self.pick(&["INCRBY", "incrby"]));
                    v.push(self.field_type());
                    v.push(self.field_offset());
                    v.push(self.field_value());
                }
                10 => {
                    v.push(b("OVERFLOW"));
                    v.push(self.pick(&["WRAP", "sat", "FAIL", "fail", "wrap", "SAT", "x"]));
                }
                _ => {
                    // Truncated or unknown operations.
                    let n = self.rng.gen_range(0..3);
                    v.push(self.pick(&["GET", "SET", "INCRBY", "OVERFLOW", "foo"]));
                    for _ in 0..n {
                        v.push(self.field_type());
                    }
                }
            }
        }
        v
    }

    fn bitmap(&mut self) -> Vec<Args> {
        let key = self.pick(&BIT_KEYS);
        let c = match self.rng.gen_range(0..100) {
            0..=19 => {
                let bit = if self.pct(95) {
                    self.int(0, 1)
                } else {
                    self.pick(&["2", "-1", "x", ""])
                };
                vec![b("SETBIT"), key, self.bit_offset(), bit]
            }
            20..=27 => vec![b("GETBIT"), key, self.bit_offset()],
            28..=39 => {
                let mut v = vec![b("BITCOUNT"), key];
                let n = [0, 2, 2, 2, 3, 1, 4][self.rng.gen_range(0..7)];
                if n >= 1 {
                    v.push(self.range_arg());
                }
                if n >= 2 {
                    v.push(self.range_arg());
                }
                if n >= 3 {
                    v.push(self.unit().unwrap_or(b("BIT")));
                }
                if n >= 4 {
                    v.push(b("BIT"));
                }
                v
            }
            40..=51 => {
                let bit = if self.pct(95) {
                    self.int(0, 1)
                } else {
                    self.pick(&["2", "x"])
                };
                let mut v = vec![b("BITPOS"), key, bit];
                let n = self.rng.gen_range(0..5);
                if n >= 1 {
                    v.push(self.range_arg());
                }
                if n >= 2 {
                    v.push(self.range_arg());
                }
                if n >= 3 {
                    v.push(self.unit().unwrap_or(b("BYTE")));
                }
                if n >= 4 {
                    v.push(b("x"));
                }
                v
            }
            52..=61 => {
                let op = self.pick(&["AND", "or", "XOR", "not", "NOT", "nand"]);
                let mut v = vec![b("BITOP"), op, key];
                let n = if self.pct(80) {
                    self.rng.gen_range(1..4)
                } else {
                    self.rng.gen_range(0..6)
                };
                for _ in 0..n {
                    v.push(self.pick(&BIT_KEYS));
                }
                v
            }
            62..=76 => self.bitfield(false),
            77..=81 => self.bitfield(true),
            82..=85 => {
                let val = match self.rng.gen_range(0..4) {
                    0 => self.int(-1000, 100000),
                    1 => b(""),
                    2 => (0..self.rng.gen_range(1..80))
                        .map(|_| self.rng.gen())
                        .collect(),
                    _ => vec![0xFF; self.rng.gen_range(1..40)],
                };
                vec![b("SET"), key, val]
            }
            86..=88 => vec![
                b("APPEND"),
                key,
                self.pick(&["\u{ff}", "a", "\x00\x00", "12"]),
            ],
            89..=91 => vec![
                b("SETRANGE"),
                key,
                self.int(0, 30),
                self.pick(&["\u{1}", "zz"]),
            ],
            92..=95 => vec![b("GET"), key],
            96 => vec![b("GETRANGE"), key, self.range_arg(), self.range_arg()],
            97 => vec![b("DEL"), key],
            98 => vec![b("STRLEN"), key],
            _ => vec![b("OBJECT"), b("ENCODING"), key],
        };
        let mut out = vec![c];
        if self.pct(2) {
            // Keep a non-string key around for WRONGTYPE.
            out.push(vec![b("RPUSH"), b("lst"), b("x")]);
        }
        out
    }

    fn element(&mut self) -> Vec<u8> {
        match self.rng.gen_range(0..10) {
            0 => b(""),
            1 => (0..self.rng.gen_range(1..30))
                .map(|_| self.rng.gen())
                .collect(),
            2 => b("a\r\nb"),
            _ => b(&format!("e{}", self.rng.gen_range(0..5000))),
        }
    }

    fn hll(&mut self) -> Vec<Args> {
        let key = self.pick(&HLL_KEYS);
        let c = match self.rng.gen_range(0..100) {
            0..=29 => {
                let mut v = vec![b("PFADD"), key];
                let n = match self.rng.gen_range(0..10) {
                    0 => 0,
                    1 => self.rng.gen_range(100..600),
                    _ => self.rng.gen_range(1..6),
                };
                for _ in 0..n {
                    v.push(self.element());
                }
                v
            }
            30..=44 => {
                let mut v = vec![b("PFCOUNT"), key];
                for _ in 0..[0, 0, 1, 2][self.rng.gen_range(0..4)] {
                    v.push(self.pick(&HLL_KEYS));
                }
                v
            }
            45..=52 => {
                let mut v = vec![b("PFMERGE"), key];
                for _ in 0..self.rng.gen_range(0..4) {
                    v.push(self.pick(&HLL_KEYS));
                }
                v
            }
            53..=64 => vec![b("GET"), key],
            65..=72 => {
                let sub = self.pick(&[
                    "ENCODING", "DECODE", "GETREG", "TODENSE", "encoding", "nope",
                ]);
                vec![b("PFDEBUG"), sub, key]
            }
            73..=78 => {
                // Corrupt the HLL: a byte of its header or of its opcodes.
                // Never a lone XZERO byte that could end the string: Redis
                // then reads past the end (its NUL, or a byte a previous
                // edit left there), which ringkv reads as zero only.
                let at = match self.rng.gen_range(0..4) {
                    0 => self.rng.gen_range(0..16),
                    _ => self.rng.gen_range(16..40),
                };
                let byte: u8 = match self.rng.gen_range(0..3) {
                    0 => 0x80 | self.rng.gen_range(0..0x7c), // VAL, value <= 32
                    1 => self.rng.gen_range(0..0x40),        // ZERO
                    _ => self.rng.gen::<u8>() | 0x80,
                };
                vec![b("SETRANGE"), key, b(&at.to_string()), vec![byte]]
            }
            79..=82 => vec![b("APPEND"), key, self.pick(&["\u{1}", "\u{80}", "\u{5}"])],
            83..=85 => vec![
                b("SET"),
                key,
                self.pick(&["HYLL", "12", "HYLL\u{1}\0\0\0\0\0\0\0\0\0\0\0\u{7f}\u{ff}"]),
            ],
            86..=88 => {
                // A truncated copy of another HLL.
                vec![
                    b("GETRANGE"),
                    self.pick(&HLL_KEYS),
                    b("0"),
                    self.int(15, 30),
                ]
            }
            89..=91 => vec![b("DEL"), key],
            92..=94 => vec![b("RPUSH"), b("hlst"), b("x")],
            95..=97 => vec![b("PFDEBUG"), b("GETREG"), key],
            _ => vec![b("PFCOUNT"), b("hlst"), key],
        };
        vec![c]
    }

    /// A longitude/latitude pair: mostly around two centres, sometimes
    /// anywhere, at the limits, or invalid.
    fn lonlat(&mut self) -> (Vec<u8>, Vec<u8>) {
        let r = self.rng.gen_range(0..100);
        let (lon, lat): (f64, f64) = match r {
            0..=44 => (
                13.4 + self.rng.gen_range(-1.5..1.5),
                38.1 + self.rng.gen_range(-1.5..1.5),
            ),
            45..=69 => (
                -0.12 + self.rng.gen_range(-0.05..0.05),
                51.5 + self.rng.gen_range(-0.05..0.05),
            ),
            70..=89 => (
                self.rng.gen_range(-180.0..180.0),
                self.rng.gen_range(-85.0..85.0),
            ),
            90..=93 => (
                self.rng.gen_range(179.0..180.0) * if self.pct(50) { 1.0 } else { -1.0 },
                self.rng.gen_range(80.0..85.05) * if self.pct(50) { 1.0 } else { -1.0 },
            ),
            _ => {
                let bad = ["181", "-180.5", "x", "", "inf", "nan", "1e400", "0x10"];
                let (a, b2) = if self.pct(50) {
                    (self.pick(&bad), self.int(-10, 10))
                } else {
                    (self.int(-10, 10), self.pick(&["86", "-85.1", "y", "-inf"]))
                };
                return (a, b2);
            }
        };
        (b(&format!("{lon:.6}")), b(&format!("{lat:.6}")))
    }

    fn geo_member(&mut self) -> Vec<u8> {
        if self.pct(3) {
            return self.pick(&["", "m\r\nx", "nope"]);
        }
        b(&format!("m{}", self.rng.gen_range(0..40)))
    }

    fn radius(&mut self) -> (Vec<u8>, Vec<u8>) {
        let r = match self.rng.gen_range(0..20) {
            0 => self.pick(&["-1", "x", "0", "inf", "1e9"]),
            1..=4 => b(&format!("{:.3}", self.rng.gen_range(0.0..5.0))),
            5..=8 => b(&format!("{}", self.rng.gen_range(1..6000))),
            _ => b(&format!("{:.1}", self.rng.gen_range(1.0..300.0))),
        };
        let unit = if self.pct(97) {
            self.pick(&["km", "KM", "m", "mi", "ft"])
        } else {
            self.pick(&["yd", ""])
        };
        (r, unit)
    }

    fn geo_opts(&mut self, v: &mut Args, store: bool) {
        for _ in 0..self.rng.gen_range(0..4) {
            match self.rng.gen_range(0..14) {
                0 => v.push(self.pick(&["WITHDIST", "withdist"])),
                1 => v.push(b("WITHCOORD")),
                2 => v.push(b("WITHHASH")),
                3 | 4 => v.push(self.pick(&["ASC", "DESC", "asc"])),
                5 | 6 => {
                    v.push(b("COUNT"));
                    v.push(if self.pct(95) {
                        self.int(1, 8)
                    } else {
                        self.pick(&["0", "-1", "x"])
                    });
                    if self.pct(30) {
                        v.push(b("ANY"));
                    }
                }
                7 if store => {
                    v.push(self.pick(&["STORE", "STOREDIST"]));
                    v.push(self.pick(&GEO_KEYS));
                }
                8 => v.push(self.pick(&["ANY", "BOGUS"])),
                _ => {}
            }
        }
    }

    fn geo(&mut self) -> Vec<Args> {
        let key = self.pick(&GEO_KEYS);
        let c = match self.rng.gen_range(0..100) {
            0..=24 => {
                let mut v = vec![b("GEOADD"), key];
                for _ in 0..self.rng.gen_range(0..3) {
                    v.push(self.pick(&["NX", "XX", "CH", "ch", "nx"]));
                }
                for _ in 0..self.rng.gen_range(1..5) {
                    let (lo, la) = self.lonlat();
                    v.push(lo);
                    v.push(la);
                    v.push(self.geo_member());
                }
                if self.pct(3) {
                    v.pop();
                }
                v
            }
            25..=31 => {
                let mut v = vec![b("GEODIST"), key, self.geo_member(), self.geo_member()];
                if self.pct(60) {
                    v.push(self.pick(&["km", "m", "mi", "ft", "KM", "x"]));
                }
                if self.pct(3) {
                    v.push(b("extra"));
                }
                v
            }
            32..=35 => {
                let mut v = vec![b("GEOHASH"), key];
                for _ in 0..self.rng.gen_range(0..4) {
                    v.push(self.geo_member());
                }
                v
            }
            36..=41 => {
                let mut v = vec![b("GEOPOS"), key];
                for _ in 0..self.rng.gen_range(0..4) {
                    v.push(self.geo_member());
                }
                v
            }
            42..=63 => {
                let store = self.pct(30);
                let mut v = if store {
                    vec![b("GEOSEARCHSTORE"), self.pick(&GEO_KEYS), key]
                } else {
                    vec![b("GEOSEARCH"), key]
                };
                if self.pct(50) {
                    v.push(b("FROMMEMBER"));
                    v.push(self.geo_member());
                } else if self.pct(95) {
                    let (lo, la) = self.lonlat();
                    v.push(b("FROMLONLAT"));
                    v.push(lo);
                    v.push(la);
                }
                if self.pct(55) {
                    let (r, u) = self.radius();
                    v.push(b("BYRADIUS"));
                    v.push(r);
                    v.push(u);
                } else if self.pct(95) {
                    let (w, u) = self.radius();
                    let (h, _) = self.radius();
                    v.push(b("BYBOX"));
                    v.push(w);
                    v.push(h);
                    v.push(u);
                }
                if store && self.pct(40) {
                    v.push(b("STOREDIST"));
                }
                self.geo_opts(&mut v, false);
                v
            }
            64..=79 => {
                let (r, u) = self.radius();
                let ro = self.pct(30);
                let mut v = if self.pct(50) {
                    let (lo, la) = self.lonlat();
                    vec![
                        b(if ro { "GEORADIUS_RO" } else { "GEORADIUS" }),
                        key,
                        lo,
                        la,
                        r,
                        u,
                    ]
                } else {
                    let m = self.geo_member();
                    vec![
                        b(if ro {
                            "GEORADIUSBYMEMBER_RO"
                        } else {
                            "GEORADIUSBYMEMBER"
                        }),
                        key,
                        m,
                        r,
                        u,
                    ]
                };
                self.geo_opts(&mut v, true);
                v
            }
            80..=86 => vec![b("ZRANGE"), key, b("0"), b("-1"), b("WITHSCORES")],
            87..=89 => vec![
                b("ZADD"),
                key,
                self.pick(&["1e300", "-5", "inf", "4503599627370496"]),
                self.geo_member(),
            ],
            90..=91 => vec![b("ZREM"), key, self.geo_member()],
            92 => vec![b("DEL"), key],
            93 => vec![b("SET"), b("gstr"), b("x")],
            _ => vec![b("ZCARD"), key],
        };
        vec![c]
    }

    fn next(&mut self, fams: &[Family]) -> Vec<Args> {
        match fams[self.rng.gen_range(0..fams.len())] {
            Family::Bitmap => self.bitmap(),
            Family::Hll => self.hll(),
            Family::Geo => self.geo(),
        }
    }
}

/// Runs one seeded stream of `n` commands at pipeline depth `depth`
/// against both servers (flushed first) and compares every reply.
fn run_stream(
    ringkv: u16,
    redis: u16,
    seed: u64,
    depth: usize,
    n: usize,
    fams: &[Family],
    label: &str,
) {
    let mut g = Gen {
        rng: StdRng::seed_from_u64(seed),
    };
    let mut rk = Client::new(ringkv);
    let mut rd = Client::new(redis);
    let flush = vec![b("FLUSHALL")];
    rk.pipeline(std::slice::from_ref(&flush)).unwrap();
    rd.pipeline(std::slice::from_ref(&flush)).unwrap();
    let resp3 = seed % 3 == 2;
    if resp3 {
        let hello = vec![b("HELLO"), b("3")];
        rk.pipeline(std::slice::from_ref(&hello)).unwrap();
        rd.pipeline(std::slice::from_ref(&hello)).unwrap();
    }
    let mut stream: Vec<Args> = Vec::new();
    while stream.len() < n {
        stream.extend(g.next(fams));
    }
    for batch in stream.chunks(depth) {
        let want = rd
            .pipeline(batch)
            .unwrap_or_else(|e| panic!("redis-server: {e}"));
        let got = rk.pipeline(batch).unwrap_or_else(|e| {
            panic!("{label} seed {seed} depth {depth} resp3 {resp3}: reply stream broken: {e}")
        });
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            if g == w {
                continue;
            }
            let key = batch[i].get(1).cloned().unwrap_or_default();
            let probe = vec![vec![b("TYPE"), key.clone()], vec![b("GET"), key.clone()]];
            let state = |c: &mut Client| {
                c.pipeline(&probe)
                    .map(|r| {
                        r.iter()
                            .map(|x| String::from_utf8_lossy(x).into_owned())
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_else(|e| e)
            };
            panic!(
                "{label} seed {seed} depth {depth} resp3 {resp3}: command {i} of its batch: {}\n  ringkv: {:?}\n  redis:  {:?}\n  batch: {}\n  key state ringkv: {:?}\n  key state redis:  {:?}",
                show(&batch[i]),
                String::from_utf8_lossy(g),
                String::from_utf8_lossy(w),
                batch.iter().map(show).collect::<Vec<_>>().join(" | "),
                state(&mut rk),
                state(&mut rd),
            );
        }
    }
    let pong = rk.pipeline(&[vec![b("PING")]]).unwrap();
    assert!(pong[0] == b"+PONG\r\n", "{label}: {:?}", pong);
}

fn run_family(shards: usize, base: u64, fams: &[Family], n: usize) {
    let Some(redis) = Server::redis() else {
        return;
    };
    let ringkv = Server::ringkv(shards, &[]);
    // RINGKV_BITS_SEEDS=N runs N seeds per depth (longer local bug hunts).
    let seeds: u64 = std::env::var("RINGKV_BITS_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    for depth in [1usize, 16, 50] {
        for s in 0..seeds {
            let seed = base + depth as u64 * 1000 + s;
            run_stream(
                ringkv.port(),
                redis.port(),
                seed,
                depth,
                n,
                fams,
                &format!("--shards {shards}"),
            );
        }
    }
}

#[test]
fn bitmap_commands_match_redis_1_shard() {
    run_family(1, 100, &[Family::Bitmap], 600);
}

#[test]
fn bitmap_commands_match_redis_2_shards() {
    run_family(2, 200, &[Family::Bitmap], 600);
}

#[test]
fn hll_commands_match_redis_1_shard() {
    run_family(1, 300, &[Family::Hll], 500);
}

#[test]
fn hll_commands_match_redis_2_shards() {
    run_family(2, 400, &[Family::Hll], 500);
}

#[test]
fn geo_commands_match_redis_1_shard() {
    run_family(1, 500, &[Family::Geo], 700);
}

#[test]
fn geo_commands_match_redis_2_shards() {
    run_family(2, 600, &[Family::Geo], 700);
}

/// Many points (listpack and skiplist encodings), searches of every size:
/// same members, same order, same digits.
#[test]
fn geo_searches_over_many_points_match_redis() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let srv = Server::ringkv(2, &[]);
    let mut rk = Client::new(srv.port());
    let mut rd = Client::new(redis.port());
    let mut rng = StdRng::seed_from_u64(7);
    for (key, n) in [("small", 100usize), ("big", 3000)] {
        let mut args: Args = vec![b("GEOADD"), b(key)];
        for i in 0..n {
            let lon = 2.35 + rng.gen_range(-3.0..3.0);
            let lat = 48.85 + rng.gen_range(-2.0..2.0);
            args.push(b(&format!("{lon:.7}")));
            args.push(b(&format!("{lat:.7}")));
            args.push(b(&format!("p{i}")));
        }
        let a = rk.pipeline(std::slice::from_ref(&args)).unwrap();
        let r = rd.pipeline(std::slice::from_ref(&args)).unwrap();
        assert_eq!(a, r);
        for q in 0..60 {
            let radius = [0.5, 5.0, 20.0, 80.0, 300.0, 1500.0, 9000.0][q % 7];
            let lon = 2.35 + rng.gen_range(-3.0..3.0);
            let lat = 48.85 + rng.gen_range(-2.0..2.0);
            let cmds: Vec<Args> = vec![
                [
                    "GEOSEARCH",
                    key,
                    "FROMLONLAT",
                    &format!("{lon}"),
                    &format!("{lat}"),
                    "BYRADIUS",
                    &radius.to_string(),
                    "km",
                    "WITHDIST",
                    "WITHCOORD",
                    "WITHHASH",
                ]
                .iter()
                .map(|x| b(x))
                .collect(),
                [
                    "GEOSEARCH",
                    key,
                    "FROMMEMBER",
                    &format!("p{q}"),
                    "BYBOX",
                    &(radius * 2.0).to_string(),
                    &radius.to_string(),
                    "km",
                    "DESC",
                    "WITHDIST",
                ]
                .iter()
                .map(|x| b(x))
                .collect(),
                [
                    "GEORADIUS",
                    key,
                    &format!("{lon}"),
                    &format!("{lat}"),
                    &radius.to_string(),
                    "km",
                    "COUNT",
                    "5",
                    "ASC",
                    "WITHDIST",
                ]
                .iter()
                .map(|x| b(x))
                .collect(),
                [
                    "GEORADIUS",
                    key,
                    &format!("{lon}"),
                    &format!("{lat}"),
                    &radius.to_string(),
                    "km",
                    "COUNT",
                    "3",
                    "ANY",
                ]
                .iter()
                .map(|x| b(x))
                .collect(),
                [
                    "GEORADIUSBYMEMBER",
                    key,
                    &format!("p{q}"),
                    &radius.to_string(),
                    "mi",
                    "STOREDIST",
                    "{d}dst",
                ]
                .iter()
                .map(|x| b(x))
                .collect(),
                ["ZRANGE", "{d}dst", "0", "-1", "WITHSCORES"]
                    .iter()
                    .map(|x| b(x))
                    .collect(),
            ];
            let a = rk.pipeline(&cmds).unwrap();
            let r = rd.pipeline(&cmds).unwrap();
            for (i, (x, y)) in a.iter().zip(&r).enumerate() {
                assert_eq!(
                    String::from_utf8_lossy(x),
                    String::from_utf8_lossy(y),
                    "{key} query {q}: {}",
                    show(&cmds[i])
                );
            }
        }
    }
}

/// Adds the same elements on both servers and returns the raw HLL bytes
/// each one stores.
fn hll_bytes(cl: &mut Client, key: &[u8], elements: &[Vec<u8>]) -> Vec<u8> {
    for chunk in elements.chunks(500) {
        let mut args: Vec<&[u8]> = vec![b"PFADD", key];
        args.extend(chunk.iter().map(|e| e.as_slice()));
        cl.one(&args);
    }
    bulk_payload(&cl.one(&[b"GET", key]))
}

/// HLLs built by redis-server and by ringkv from the same elements are the
/// same bytes (sparse and dense, cached count included), PFCOUNT agrees,
/// and each server's value moved to the other (GET/SET and DUMP/RESTORE)
/// counts the same there and merges the same.
#[test]
fn hll_values_move_between_redis_and_ringkv() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let srv = Server::ringkv(2, &[]);
    let mut rk = Client::new(srv.port());
    let mut rd = Client::new(redis.port());
    let mut rng = StdRng::seed_from_u64(14);
    for n in [0usize, 1, 3, 50, 400, 1500, 5000, 40_000] {
        let els: Vec<Vec<u8>> = (0..n)
            .map(|i| match i % 3 {
                0 => format!("user:{}", rng.gen::<u32>()).into_bytes(),
                1 => rng.gen::<u64>().to_le_bytes().to_vec(),
                _ => (0..rng.gen_range(0..20)).map(|_| rng.gen()).collect(),
            })
            .collect();
        let key = format!("hll{n}");
        let k = key.as_bytes();
        if n == 0 {
            rk.one(&[b"PFADD", k]);
            rd.one(&[b"PFADD", k]);
        }
        let a = hll_bytes(&mut rk, k, &els);
        let b2 = hll_bytes(&mut rd, k, &els);
        assert_eq!(a, b2, "n={n}: bytes differ before PFCOUNT");
        let ca = rk.one(&[b"PFCOUNT", k]);
        let cb = rd.one(&[b"PFCOUNT", k]);
        assert_eq!(ca, cb, "n={n}: PFCOUNT");
        // The cached count is written back the same way.
        assert_eq!(
            bulk_payload(&rk.one(&[b"GET", k])),
            bulk_payload(&rd.one(&[b"GET", k])),
            "n={n}: bytes after PFCOUNT"
        );
        assert_eq!(
            rk.one(&[b"PFDEBUG", b"ENCODING", k]),
            rd.one(&[b"PFDEBUG", b"ENCODING", k]),
            "n={n}"
        );
        // Raw bytes from redis-server into ringkv and back.
        let from_rd = bulk_payload(&rd.one(&[b"GET", k]));
        let k2 = format!("copy{n}");
        rk.one(&[b"SET", k2.as_bytes(), &from_rd]);
        rd.one(&[b"SET", k2.as_bytes(), &from_rd]);
        assert_eq!(
            rk.one(&[b"PFCOUNT", k2.as_bytes()]),
            cb,
            "n={n}: redis bytes in ringkv"
        );
        // DUMP/RESTORE both ways.
        let dump = bulk_payload(&rd.one(&[b"DUMP", k]));
        let k3 = format!("restored{n}");
        assert_eq!(
            rk.one(&[b"RESTORE", k3.as_bytes(), b"0", &dump]),
            b"+OK\r\n"
        );
        assert_eq!(
            rk.one(&[b"PFCOUNT", k3.as_bytes()]),
            cb,
            "n={n}: RESTORE in ringkv"
        );
        let dump = bulk_payload(&rk.one(&[b"DUMP", k]));
        assert_eq!(
            rd.one(&[b"RESTORE", k3.as_bytes(), b"0", &dump]),
            b"+OK\r\n"
        );
        assert_eq!(
            rd.one(&[b"PFCOUNT", k3.as_bytes()]),
            ca,
            "n={n}: RESTORE in redis"
        );
        assert_eq!(
            bulk_payload(&rd.one(&[b"GET", k3.as_bytes()])),
            a_after(&mut rk, k)
        );
        // More adds after the move keep both sides identical.
        let more: Vec<Vec<u8>> = (0..300).map(|i| format!("more{i}").into_bytes()).collect();
        let x = hll_bytes(&mut rk, k3.as_bytes(), &more);
        let y = hll_bytes(&mut rd, k3.as_bytes(), &more);
        assert_eq!(x, y, "n={n}: adds after RESTORE");
    }
    // Multi-key PFCOUNT and PFMERGE (keys on both shards) agree.
    let keys: Vec<&[u8]> = vec![b"hll50", b"hll1500", b"hll5000", b"copy400", b"nokey"];
    let mut args: Vec<&[u8]> = vec![b"PFCOUNT"];
    args.extend(&keys);
    assert_eq!(rk.one(&args), rd.one(&args), "multi-key PFCOUNT");
    let mut args: Vec<&[u8]> = vec![b"PFMERGE", b"merged"];
    args.extend(&keys);
    assert_eq!(rk.one(&args), rd.one(&args));
    assert_eq!(rk.one(&[b"GET", b"merged"]), rd.one(&[b"GET", b"merged"]));
    assert_eq!(
        rk.one(&[b"PFCOUNT", b"merged"]),
        rd.one(&[b"PFCOUNT", b"merged"])
    );
    let mut args: Vec<&[u8]> = vec![b"PFMERGE", b"hll3"];
    args.extend(&keys[..1]);
    assert_eq!(rk.one(&args), rd.one(&args));
    assert_eq!(rk.one(&[b"GET", b"hll3"]), rd.one(&[b"GET", b"hll3"]));
}

fn a_after(cl: &mut Client, k: &[u8]) -> Vec<u8> {
    bulk_payload(&cl.one(&[b"GET", k]))
}

/// Hostile HLL strings (random bytes after a valid header, truncated
/// sparse data, bad opcodes, huge run lengths) never crash ringkv; every
/// reply is a count or one of Redis's two HLL errors.
#[test]
fn hostile_hll_strings_never_crash() {
    let mut srv = Server::ringkv(2, &[]);
    let mut cl = Client::new(srv.port());
    let mut rng = StdRng::seed_from_u64(99);
    let mut good = b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\0".to_vec();
    good.extend_from_slice(b"\x7f\xff");
    for round in 0..1500 {
        let mut s = good[..16].to_vec();
        if rng.gen_bool(0.3) {
            s[4] = rng.gen_range(0..3);
        }
        if rng.gen_bool(0.5) {
            s[15] = 0x80;
        }
        match round % 4 {
            0 => s.extend((0..rng.gen_range(0..64)).map(|_| rng.gen::<u8>())),
            1 => s.extend(std::iter::repeat_n(0x7fu8, rng.gen_range(0..8))),
            2 => {
                for _ in 0..rng.gen_range(0..40) {
                    s.push(0x80 | rng.gen_range(0..0x80));
                }
                s.push(0x7f);
            }
            _ => {
                s.extend_from_slice(b"\x7f\xff");
                s.truncate(rng.gen_range(16..18));
                s.push(0x40 | rng.gen_range(0..0x40));
            }
        }
        cl.one(&[b"SET", b"bad", &s]);
        cl.one(&[b"PFADD", b"ok", b"a", b"b"]);
        for cmd in [
            vec![&b"PFADD"[..], b"bad", b"x", b"y", b"zz", b"e1", b"e2"],
            vec![b"PFCOUNT", b"bad"],
            vec![b"PFCOUNT", b"bad", b"ok"],
            vec![b"PFMERGE", b"ok", b"bad"],
            vec![b"PFMERGE", b"bad", b"ok"],
            vec![b"PFDEBUG", b"DECODE", b"bad"],
            vec![b"PFDEBUG", b"GETREG", b"bad"],
            vec![b"PFADD", b"bad", b"after"],
            vec![b"PFCOUNT", b"bad"],
        ] {
            let r = cl.one(&cmd);
            let ok = r.starts_with(b":")
                || r.starts_with(b"+")
                || r.starts_with(b"$")
                || r.starts_with(b"*16384\r\n")
                || r == b"-INVALIDOBJ Corrupted HLL object detected\r\n"
                || r == b"-WRONGTYPE Key is not a valid HyperLogLog string value.\r\n"
                || r == b"-ERR HLL encoding is not sparse\r\n";
            assert!(
                ok,
                "round {round}: {:?} on {:?}: {:?}",
                show(&cmd.iter().map(|x| x.to_vec()).collect()),
                s,
                String::from_utf8_lossy(&r)
            );
        }
    }
    srv.assert_alive();
    assert_eq!(cl.one(&[b"PING"]), b"+PONG\r\n");
}

/// BITOP over keys on different shards: the result is the whole
/// computation over both sources, and a wrong-type source writes nothing.
#[test]
fn bitop_across_shards_stores_the_whole_result() {
    let (a, c) = keys_on_different_shards("bop");
    let srv = Server::ringkv(2, &[]);
    let mut cl = Client::new(srv.port());
    let big: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
    cl.one(&[b"SET", a.as_bytes(), &big]);
    cl.one(&[b"SET", c.as_bytes(), b"\xff\x0f"]);
    for (op, want) in [
        ("AND", {
            let mut v = vec![0u8; big.len()];
            v[0] = big[0];
            v[1] = big[1] & 0x0f;
            v
        }),
        ("OR", {
            let mut v = big.clone();
            v[0] = 0xff;
            v[1] |= 0x0f;
            v
        }),
        ("XOR", {
            let mut v = big.clone();
            v[0] ^= 0xff;
            v[1] ^= 0x0f;
            v
        }),
    ] {
        let n = cl.one(&[b"BITOP", op.as_bytes(), b"dst", a.as_bytes(), c.as_bytes()]);
        assert_eq!(n, format!(":{}\r\n", big.len()).into_bytes(), "{op}");
        assert_eq!(bulk_payload(&cl.one(&[b"GET", b"dst"])), want, "{op}");
        let cnt = cl.one(&[b"BITCOUNT", b"dst"]);
        let ones: u64 = want.iter().map(|x| x.count_ones() as u64).sum();
        assert_eq!(cnt, format!(":{ones}\r\n").into_bytes(), "{op}");
    }
    // A wrong-type source fails the whole command and writes nothing.
    cl.one(&[b"RPUSH", c.as_bytes(), b"x"]);
    cl.one(&[b"DEL", c.as_bytes()]);
    cl.one(&[b"RPUSH", c.as_bytes(), b"x"]);
    let e = cl.one(&[b"BITOP", b"OR", b"dst2", a.as_bytes(), c.as_bytes()]);
    assert!(
        e.starts_with(b"-WRONGTYPE"),
        "{:?}",
        String::from_utf8_lossy(&e)
    );
    assert_eq!(cl.one(&[b"EXISTS", b"dst2"]), b":0\r\n");
}

/// BITOP reads its sources on several shards as one snapshot: while
/// another client flips both sources together with MSET (atomic across
/// shards), `BITOP XOR` of the two must always give all-zero bytes; a
/// torn read would give 0xFF bytes.
#[test]
fn bitop_across_shards_is_atomic() {
    let (a, c) = keys_on_different_shards("atom");
    let srv = Server::ringkv(2, &[]);
    let port = srv.port();
    let zeros = vec![0u8; 4096];
    let ones = vec![0xFFu8; 4096];
    let mut cl = Client::new(port);
    cl.one(&[b"MSET", a.as_bytes(), &zeros, c.as_bytes(), &zeros]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (a, c, stop) = (a.clone(), c.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut w = Client::new(port);
            let mut flip = false;
            for _ in 0..3000 {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let v = if flip { &ones } else { &zeros };
                w.one(&[b"MSET", a.as_bytes(), v, c.as_bytes(), v]);
                flip = !flip;
            }
        })
    };
    for i in 0..400 {
        let n = cl.one(&[b"BITOP", b"XOR", b"{x}dst", a.as_bytes(), c.as_bytes()]);
        assert_eq!(n, b":4096\r\n");
        let cnt = cl.one(&[b"BITCOUNT", b"{x}dst"]);
        assert_eq!(
            cnt, b":0\r\n",
            "iteration {i}: BITOP saw the sources half-updated"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
}

/// Huge offsets: the string grows zero-filled to exactly the bit's byte,
/// and the limit is proto-max-bulk-len.
#[test]
fn bit_offsets_grow_strings_and_respect_the_limit() {
    let srv = Server::ringkv(1, &[]);
    let mut cl = Client::new(srv.port());
    assert_eq!(cl.one(&[b"SETBIT", b"k", b"8000007", b"1"]), b":0\r\n");
    assert_eq!(cl.one(&[b"STRLEN", b"k"]), b":1000001\r\n");
    assert_eq!(cl.one(&[b"BITCOUNT", b"k"]), b":1\r\n");
    assert_eq!(cl.one(&[b"BITPOS", b"k", b"1"]), b":8000007\r\n");
    assert_eq!(
        cl.one(&[b"GETRANGE", b"k", b"-1", b"-1"]),
        b"$1\r\n\x01\r\n"
    );
    let e = b"-ERR bit offset is not an integer or out of range\r\n".to_vec();
    assert_eq!(cl.one(&[b"SETBIT", b"k", b"4294967296", b"1"]), e);
    assert_eq!(cl.one(&[b"GETBIT", b"k", b"-1"]), e);
    assert_eq!(
        cl.one(&[b"BITFIELD", b"k", b"SET", b"u8", b"#536870912", b"1"]),
        e
    );
    assert_eq!(
        cl.one(&[b"CONFIG", b"SET", b"proto-max-bulk-len", b"1048576"]),
        b"+OK\r\n"
    );
    assert_eq!(cl.one(&[b"SETBIT", b"k", b"8388608", b"1"]), e);
    assert_eq!(cl.one(&[b"SETBIT", b"k", b"8388607", b"1"]), b":0\r\n");
    assert_eq!(cl.one(&[b"STRLEN", b"k"]), b":1048576\r\n");
}
