//! The geo family (Redis's geo.c, geohash.c, geohash_helper.c): points
//! stored in sorted sets, their score a 52-bit geohash (26 bits of
//! latitude and of longitude, interleaved).
//!
//! Searches follow Redis step for step so that results, their order and
//! every printed digit match: the radius picks a geohash precision, the
//! centre's box and its eight neighbours are scanned as score ranges (in
//! Redis's order, skipping a box equal to the one before), each candidate
//! is checked with the haversine distance (libm's sin/cos/asin, as Redis
//! calls them), then results are sorted by distance when asked. Distances
//! print with 4 decimals (rounded half-to-even, `llrint`), coordinates as
//! `%.17Lf` with trailing zeros removed.
//!
//! GEORADIUS ... STORE and GEOSEARCHSTORE whose destination lives on
//! another shard search on the source's shard and store on the
//! destination's, both under one [`Shard::tx`].

use super::{CmdSpec, Ctx, Run, SrvCtx, DENYOOM, READONLY, WRITE};
use crate::resp::Out;
use crate::shard::keyspace::Keyspace;
use crate::shard::Shard;
use crate::types::zset::{Limits, ScoreRange, ZSet};
use crate::types::Value;
use crate::util::eq_ic;

#[allow(clippy::too_many_arguments)]
const fn spec(
    name: &'static str,
    arity: i32,
    flags: u32,
    keys: (i32, i32, i32),
    acl: &'static str,
    since: &'static str,
    run: Run,
    getkeys: Option<super::GetKeysFn>,
    summary: &'static str,
) -> CmdSpec {
    CmdSpec {
        name,
        arity,
        flags,
        first_key: keys.0,
        last_key: keys.1,
        step: keys.2,
        group: "geo",
        acl,
        summary,
        since,
        run,
        subs: &[],
        getkeys,
    }
}

const ONE: (i32, i32, i32) = (1, 1, 1);
const R_SLOW: &str = "@read @geo @slow";
const W_SLOW: &str = "@write @geo @slow";

#[rustfmt::skip]
pub static COMMANDS: &[CmdSpec] = &[
    spec("geoadd", -5, WRITE | DENYOOM, ONE, W_SLOW, "3.2.0", Run::Key(geoadd), None, "Add one or more geospatial items in the geospatial index represented using a sorted set"),
    spec("geodist", -4, READONLY, ONE, R_SLOW, "3.2.0", Run::Key(geodist), None, "Returns the distance between two members of a geospatial index"),
    spec("geohash", -2, READONLY, ONE, R_SLOW, "3.2.0", Run::Key(geohash), None, "Returns members of a geospatial index as standard geohash strings"),
    spec("geopos", -2, READONLY, ONE, R_SLOW, "3.2.0", Run::Key(geopos), None, "Returns longitude and latitude of members of a geospatial index"),
    spec("georadius", -6, WRITE | DENYOOM, ONE, W_SLOW, "3.2.0", Run::KeyMulti(georadius, georadius_multi), Some(georadius_keys), "Query a sorted set representing a geospatial index to fetch members matching a given maximum distance from a point"),
    spec("georadius_ro", -6, READONLY, ONE, R_SLOW, "3.2.10", Run::Key(georadius_ro), None, "A read-only variant for GEORADIUS"),
    spec("georadiusbymember", -5, WRITE | DENYOOM, ONE, W_SLOW, "3.2.0", Run::KeyMulti(georadiusbymember, georadiusbymember_multi), Some(georadius_keys), "Query a sorted set representing a geospatial index to fetch members matching a given maximum distance from a member"),
    spec("georadiusbymember_ro", -5, READONLY, ONE, R_SLOW, "3.2.10", Run::Key(georadiusbymember_ro), None, "A read-only variant for GEORADIUSBYMEMBER"),
    spec("geosearch", -7, READONLY, ONE, R_SLOW, "6.2.0", Run::Key(geosearch), None, "Query a sorted set representing a geospatial index to fetch members inside an area of a box or a circle."),
    spec("geosearchstore", -8, WRITE | DENYOOM, (1, 2, 1), W_SLOW, "6.2.0", Run::KeyMulti(geosearchstore, geosearchstore_multi), None, "Query a sorted set representing a geospatial index to fetch members inside an area of a box or a circle, and store the result in another key."),
];

/// GEORADIUS/GEORADIUSBYMEMBER keys: the source and the last STORE or
/// STOREDIST argument (Redis's `georadiusGetKeys`).
fn georadius_keys(args: &[&[u8]]) -> Vec<usize> {
    let mut store = None;
    let mut i = 5;
    while i < args.len() {
        if (eq_ic(args[i], "store") || eq_ic(args[i], "storedist")) && i + 1 < args.len() {
            store = Some(i + 1);
            i += 1;
        }
        i += 1;
    }
    let mut v = vec![1];
    v.extend(store);
    v
}

// ----- geohash ---------------------------------------------------------------

pub(crate) mod hash {
    pub const STEP_MAX: u8 = 26;
    pub const LAT_MIN: f64 = -85.05112878;
    pub const LAT_MAX: f64 = 85.05112878;
    pub const LON_MIN: f64 = -180.0;
    pub const LON_MAX: f64 = 180.0;
    const MERCATOR_MAX: f64 = 20037726.37;
    const EARTH_RADIUS: f64 = 6372797.560856;
    const D_R: f64 = std::f64::consts::PI / 180.0;

    /// A geohash cell: `step` bits of each coordinate, interleaved.
    #[derive(Clone, Copy, Debug, PartialEq, Default)]
    pub struct Bits {
        pub bits: u64,
        pub step: u8,
    }

    impl Bits {
        /// A cleared neighbour (`GZERO`).
        pub fn is_zero(&self) -> bool {
            self.bits == 0 && self.step == 0
        }
    }

    #[derive(Clone, Copy, Debug, Default)]
    pub struct Area {
        pub lon: (f64, f64),
        pub lat: (f64, f64),
    }

    /// Spreads the low 32 bits of `v` over the even bits.
    fn spread(v: u32) -> u64 {
        let mut x = v as u64;
        x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
        x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
        x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
        x = (x | (x << 2)) & 0x3333_3333_3333_3333;
        (x | (x << 1)) & 0x5555_5555_5555_5555
    }

    /// Gathers the even bits of `v` into 32 bits.
    fn squash(v: u64) -> u32 {
        let mut x = v & 0x5555_5555_5555_5555;
        x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
        x = (x | (x >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
        x = (x | (x >> 4)) & 0x00FF_00FF_00FF_00FF;
        x = (x | (x >> 8)) & 0x0000_FFFF_0000_FFFF;
        x = (x | (x >> 16)) & 0x0000_0000_FFFF_FFFF;
        x as u32
    }

    /// Latitude in the even bits, longitude in the odd ones.
    pub fn interleave(lat: u32, lon: u32) -> u64 {
        spread(lat) | (spread(lon) << 1)
    }

    /// (latitude part, longitude part).
    pub fn deinterleave(bits: u64) -> (u32, u32) {
        (squash(bits), squash(bits >> 1))
    }

    /// Encodes a point in the given ranges (None outside them or outside
    /// the Web Mercator limits).
    pub fn encode(
        lon_r: (f64, f64),
        lat_r: (f64, f64),
        lon: f64,
        lat: f64,
        step: u8,
    ) -> Option<Bits> {
        if step > 32 || step == 0 {
            return None;
        }
        if !(LON_MIN..=LON_MAX).contains(&lon) || !(LAT_MIN..=LAT_MAX).contains(&lat) {
            return None;
        }
        if lat < lat_r.0 || lat > lat_r.1 || lon < lon_r.0 || lon > lon_r.1 {
            return None;
        }
        let scale = (1u64 << step) as f64;
        let lat_off = (lat - lat_r.0) / (lat_r.1 - lat_r.0) * scale;
        let lon_off = (lon - lon_r.0) / (lon_r.1 - lon_r.0) * scale;
        Some(Bits {
            bits: interleave(lat_off as u32, lon_off as u32),
            step,
        })
    }

    pub fn encode_wgs84(lon: f64, lat: f64, step: u8) -> Option<Bits> {
        encode((LON_MIN, LON_MAX), (LAT_MIN, LAT_MAX), lon, lat, step)
    }

    /// The cell's bounds (None for a cleared cell).
    pub fn decode(h: Bits) -> Option<Area> {
        if h.is_zero() {
            return None;
        }
        let (ilat, ilon) = deinterleave(h.bits);
        let scale = (1u64 << h.step) as f64;
        let (lat_s, lon_s) = (LAT_MAX - LAT_MIN, LON_MAX - LON_MIN);
        let edge = |i: u32| i as f64 / scale;
        Some(Area {
            lat: (
                LAT_MIN + edge(ilat) * lat_s,
                LAT_MIN + edge(ilat.wrapping_add(1)) * lat_s,
            ),
            lon: (
                LON_MIN + edge(ilon) * lon_s,
                LON_MIN + edge(ilon.wrapping_add(1)) * lon_s,
            ),
        })
    }

    /// A stored score as C converts a double to uint64_t on x86-64.
    pub fn score_bits(score: f64) -> u64 {
        const TWO63: f64 = 9_223_372_036_854_775_808.0;
        if score < TWO63 {
            // Truncation; out of range (or -inf) gives the "indefinite" value.
            if score > -TWO63 - 1.0 || score == -TWO63 {
                score as i64 as u64
            } else {
                1 << 63
            }
        } else {
            let t = score - TWO63;
            let low = if t < TWO63 { t as i64 as u64 } else { 1 << 63 };
            low ^ (1 << 63)
        }
    }

    /// The centre of the cell a 52-bit score names (lon, lat), clamped.
    pub fn decode_score(score: f64) -> (f64, f64) {
        let h = Bits {
            bits: score_bits(score),
            step: STEP_MAX,
        };
        let a = decode(h).unwrap_or_default();
        let lon = ((a.lon.0 + a.lon.1) / 2.0).clamp(LON_MIN, LON_MAX);
        let lat = ((a.lat.0 + a.lat.1) / 2.0).clamp(LAT_MIN, LAT_MAX);
        (lon, lat)
    }

    /// The cell's bits shifted to 52-bit score precision.
    pub fn align52(h: Bits) -> u64 {
        h.bits << (52 - h.step as u32 * 2)
    }

    fn move_x(h: &mut Bits, d: i8) {
        if d == 0 {
            return;
        }
        let x = h.bits & 0xaaaa_aaaa_aaaa_aaaa;
        let y = h.bits & 0x5555_5555_5555_5555;
        let zz = 0x5555_5555_5555_5555u64 >> (64 - h.step as u32 * 2);
        let x = if d > 0 {
            x.wrapping_add(zz + 1)
        } else {
            (x | zz).wrapping_sub(zz + 1)
        };
        h.bits = (x & (0xaaaa_aaaa_aaaa_aaaau64 >> (64 - h.step as u32 * 2))) | y;
    }

    fn move_y(h: &mut Bits, d: i8) {
        if d == 0 {
            return;
        }
        let x = h.bits & 0xaaaa_aaaa_aaaa_aaaa;
        let y = h.bits & 0x5555_5555_5555_5555;
        let zz = 0xaaaa_aaaa_aaaa_aaaau64 >> (64 - h.step as u32 * 2);
        let y = if d > 0 {
            y.wrapping_add(zz + 1)
        } else {
            (y | zz).wrapping_sub(zz + 1)
        };
        h.bits = x | (y & (0x5555_5555_5555_5555u64 >> (64 - h.step as u32 * 2)));
    }

    /// The eight neighbours in Redis's scan order: N, S, E, W, NE, NW, SE, SW.
    pub fn neighbors(h: Bits) -> [Bits; 8] {
        let mv = |dx: i8, dy: i8| {
            let mut n = h;
            move_x(&mut n, dx);
            move_y(&mut n, dy);
            n
        };
        [
            mv(0, 1),
            mv(0, -1),
            mv(1, 0),
            mv(-1, 0),
            mv(1, 1),
            mv(-1, 1),
            mv(1, -1),
            mv(-1, -1),
        ]
    }

    fn deg_rad(a: f64) -> f64 {
        a * D_R
    }

    fn rad_deg(a: f64) -> f64 {
        a / D_R
    }

    pub fn lat_distance(lat1: f64, lat2: f64) -> f64 {
        EARTH_RADIUS * (deg_rad(lat2) - deg_rad(lat1)).abs()
    }

    /// Haversine great-circle distance in meters.
    pub fn distance(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
        let (lon1r, lon2r) = (deg_rad(lon1), deg_rad(lon2));
        let v = ((lon2r - lon1r) / 2.0).sin();
        if v == 0.0 {
            return lat_distance(lat1, lat2);
        }
        let (lat1r, lat2r) = (deg_rad(lat1), deg_rad(lat2));
        let u = ((lat2r - lat1r) / 2.0).sin();
        let a = u * u + lat1r.cos() * lat2r.cos() * v * v;
        2.0 * EARTH_RADIUS * a.sqrt().asin()
    }

    /// The search area: a circle (radius) or an axis-aligned box.
    #[derive(Clone, Copy, Debug)]
    pub enum Kind {
        Radius(f64),
        Box { width: f64, height: f64 },
    }

    #[derive(Clone, Copy, Debug)]
    pub struct Shape {
        pub lon: f64,
        pub lat: f64,
        pub kind: Kind,
        /// Meters per unit.
        pub conv: f64,
    }

    fn estimate_steps(mut range: f64, lat: f64) -> u8 {
        if range == 0.0 {
            return 26;
        }
        let mut step: i32 = 1;
        while range < MERCATOR_MAX {
            range *= 2.0;
            step += 1;
        }
        step -= 2;
        if !(-66.0..=66.0).contains(&lat) {
            step -= 1;
            if !(-80.0..=80.0).contains(&lat) {
                step -= 1;
            }
        }
        step.clamp(1, 26) as u8
    }

    /// [min lon, min lat, max lon, max lat] around the shape.
    fn bounding_box(s: &Shape) -> [f64; 4] {
        let (h, w) = match s.kind {
            Kind::Radius(r) => (s.conv * r, s.conv * r),
            Kind::Box { width, height } => (s.conv * (height / 2.0), s.conv * (width / 2.0)),
        };
        let lat_delta = rad_deg(h / EARTH_RADIUS);
        let top = rad_deg(w / EARTH_RADIUS / deg_rad(s.lat + lat_delta).cos());
        let bottom = rad_deg(w / EARTH_RADIUS / deg_rad(s.lat - lat_delta).cos());
        let d = if s.lat < 0.0 { bottom } else { top };
        [s.lon - d, s.lat - lat_delta, s.lon + d, s.lat + lat_delta]
    }

    /// The cells to scan: the centre's cell first, then its neighbours
    /// (cleared ones are skipped by the caller).
    pub fn cells(s: &Shape) -> [Bits; 9] {
        let [min_lon, min_lat, max_lon, max_lat] = bounding_box(s);
        let radius = match s.kind {
            Kind::Radius(r) => r,
            Kind::Box { width, height } => {
                ((width / 2.0) * (width / 2.0) + (height / 2.0) * (height / 2.0)).sqrt()
            }
        } * s.conv;
        let mut steps = estimate_steps(radius, s.lat);
        let enc = |st: u8| encode_wgs84(s.lon, s.lat, st).unwrap_or(Bits { bits: 0, step: st });
        let mut h = enc(steps);
        let mut nb = neighbors(h);
        let mut area = decode(h).unwrap_or_default();
        let dec = |b: Bits| decode(b).unwrap_or_default();
        let shrink = dec(nb[0]).lat.1 < max_lat
            || dec(nb[1]).lat.0 > min_lat
            || dec(nb[2]).lon.1 < max_lon
            || dec(nb[3]).lon.0 > min_lon;
        if steps > 1 && shrink {
            steps -= 1;
            h = enc(steps);
            nb = neighbors(h);
            area = decode(h).unwrap_or_default();
        }
        if steps >= 2 {
            let z = Bits::default();
            let [n, so, e, w, ne, nw, se, sw] = &mut nb;
            if area.lat.0 < min_lat {
                (*so, *sw, *se) = (z, z, z);
            }
            if area.lat.1 > max_lat {
                (*n, *ne, *nw) = (z, z, z);
            }
            if area.lon.0 < min_lon {
                (*w, *sw, *nw) = (z, z, z);
            }
            if area.lon.1 > max_lon {
                (*e, *se, *ne) = (z, z, z);
            }
        }
        [h, nb[0], nb[1], nb[2], nb[3], nb[4], nb[5], nb[6], nb[7]]
    }

    /// Is the point at `score` inside the shape? Returns its coordinates
    /// and distance from the centre (meters).
    pub fn within(s: &Shape, score: f64) -> Option<(f64, f64, f64)> {
        let (lon, lat) = decode_score(score);
        let dist = match s.kind {
            Kind::Radius(r) => {
                let d = distance(s.lon, s.lat, lon, lat);
                if d > r * s.conv {
                    return None;
                }
                d
            }
            Kind::Box { width, height } => {
                if lat_distance(lat, s.lat) > height * s.conv / 2.0 {
                    return None;
                }
                if distance(lon, lat, s.lon, lat) > width * s.conv / 2.0 {
                    return None;
                }
                distance(s.lon, s.lat, lon, lat)
            }
        };
        Some((lon, lat, dist))
    }

    /// GEOHASH's 11-character standard geohash of a stored score.
    pub fn standard(score: f64) -> [u8; 11] {
        const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";
        let (lon, lat) = decode_score(score);
        let bits = encode((-180.0, 180.0), (-90.0, 90.0), lon, lat, 26).map_or(0, |h| h.bits);
        let mut out = [b'0'; 11];
        for (i, c) in out.iter_mut().enumerate().take(10) {
            *c = ALPHABET[((bits >> (52 - (i + 1) * 5)) & 0x1f) as usize];
        }
        out
    }
}

use hash::{Kind, Shape};

// ----- replies ----------------------------------------------------------------

/// Redis's `fixedpoint_d2string(.., 4)`: llrint(d * 10000) as a fixed
/// point number with 4 decimals.
fn fmt_distance(d: f64) -> String {
    if d == 0.0 {
        return "0.0000".into();
    }
    let v = (d * 10000.0).round_ties_even();
    // llrint's out-of-range result is LLONG_MIN, as for NaN.
    let v = if !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&v) {
        i64::MIN
    } else {
        v as i64
    };
    let sign = if v < 0 { "-" } else { "" };
    let u = v.unsigned_abs();
    format!("{sign}{}.{:04}", u / 10000, u % 10000)
}

fn reply_distance(out: &mut Out, d: f64) {
    out.bulk(fmt_distance(d).as_bytes());
}

/// `%.17Lf` with trailing zeros (and a trailing '.') removed; "-0" is "0".
fn fmt_human(d: f64) -> String {
    if d.is_infinite() {
        return if d > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let mut s = format!("{d:.17}");
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    if s == "-0" {
        s = "0".into();
    }
    s
}

/// A coordinate: a bulk string in RESP2, a double in RESP3.
fn reply_coord(out: &mut Out, d: f64) {
    let s = fmt_human(d);
    if out.resp3 {
        out.raw(b",");
        out.raw(s.as_bytes());
        out.raw(b"\r\n");
    } else {
        out.bulk(s.as_bytes());
    }
}

// ----- argument parsing ---------------------------------------------------------

fn parse_double(a: &[u8]) -> Option<f64> {
    super::zset::parse_float_arg(a)
}

/// Redis's `extractLongLatOrReply`.
fn parse_lonlat(lon: &[u8], lat: &[u8]) -> Result<(f64, f64), String> {
    let (Some(x), Some(y)) = (parse_double(lon), parse_double(lat)) else {
        return Err("value is not a valid float".into());
    };
    if !(hash::LON_MIN..=hash::LON_MAX).contains(&x)
        || !(hash::LAT_MIN..=hash::LAT_MAX).contains(&y)
    {
        return Err(format!("invalid longitude,latitude pair {x:.6},{y:.6}"));
    }
    Ok((x, y))
}

/// Meters per unit (Redis's `extractUnitOrReply`).
fn parse_unit(u: &[u8]) -> Result<f64, String> {
    if eq_ic(u, "m") {
        Ok(1.0)
    } else if eq_ic(u, "km") {
        Ok(1000.0)
    } else if eq_ic(u, "ft") {
        Ok(0.3048)
    } else if eq_ic(u, "mi") {
        Ok(1609.34)
    } else {
        Err("unsupported unit provided. please use M, KM, FT, MI".into())
    }
}

/// (radius, meters per unit).
fn parse_radius(r: &[u8], unit: &[u8]) -> Result<(f64, f64), String> {
    let Some(d) = parse_double(r) else {
        return Err("need numeric radius".into());
    };
    if d < 0.0 {
        return Err("radius cannot be negative".into());
    }
    Ok((d, parse_unit(unit)?))
}

// ----- GEOADD / GEODIST / GEOHASH / GEOPOS ------------------------------------------

fn read_zset<'a>(ks: &'a mut Keyspace, db: usize, key: &[u8]) -> Result<Option<&'a ZSet>, ()> {
    match ks.get(db, key) {
        None => Ok(None),
        Some(Value::ZSet(z)) => Ok(Some(z)),
        Some(_) => Err(()),
    }
}

fn geoadd(ctx: &mut Ctx, args: &[&[u8]]) {
    let (mut nx, mut xx) = (false, false);
    let mut i = 2;
    while i < args.len() {
        if eq_ic(args[i], "nx") {
            nx = true;
        } else if eq_ic(args[i], "xx") {
            xx = true;
        } else if !eq_ic(args[i], "ch") {
            break;
        }
        i += 1;
    }
    if !(args.len() - i).is_multiple_of(3) || (xx && nx) {
        return ctx.out.syntax();
    }
    // Rewritten as ZADD key [options] score member ...
    let mut scores: Vec<Vec<u8>> = Vec::with_capacity((args.len() - i) / 3);
    for t in args[i..].chunks_exact(3) {
        let (lon, lat) = match parse_lonlat(t[0], t[1]) {
            Ok(p) => p,
            Err(e) => return ctx.out.err(&e),
        };
        let h = hash::encode_wgs84(lon, lat, hash::STEP_MAX).unwrap_or_default();
        scores.push(
            itoa::Buffer::new()
                .format(hash::align52(h))
                .as_bytes()
                .to_vec(),
        );
    }
    let mut zargs: Vec<&[u8]> = vec![b"zadd"];
    zargs.extend_from_slice(&args[1..i]);
    for (t, s) in args[i..].chunks_exact(3).zip(&scores) {
        zargs.push(s);
        zargs.push(t[2]);
    }
    let Some((_, spec)) = super::table().get(b"zadd") else {
        return ctx.out.err("ZADD is missing");
    };
    match spec.run {
        Run::Key(f) | Run::KeyMulti(f, _) => f(ctx, &zargs),
        Run::Srv(_) => ctx.out.err("ZADD is missing"),
    }
}

fn geodist(ctx: &mut Ctx, args: &[&[u8]]) {
    let to_meter = match args.len() {
        4 => 1.0,
        5 => match parse_unit(args[4]) {
            Ok(u) => u,
            Err(e) => return ctx.out.err(&e),
        },
        _ => return ctx.out.syntax(),
    };
    let z = match read_zset(ctx.ks, ctx.db, args[1]) {
        Err(()) => return ctx.out.wrongtype(),
        Ok(None) => return ctx.out.null(),
        Ok(Some(z)) => z,
    };
    let (Some(s1), Some(s2)) = (z.score(args[2]), z.score(args[3])) else {
        return ctx.out.null();
    };
    let (a, b) = (hash::decode_score(s1), hash::decode_score(s2));
    reply_distance(&mut ctx.out, hash::distance(a.0, a.1, b.0, b.1) / to_meter);
}

fn geohash(ctx: &mut Ctx, args: &[&[u8]]) {
    let z = match read_zset(ctx.ks, ctx.db, args[1]) {
        Err(()) => return ctx.out.wrongtype(),
        Ok(z) => z,
    };
    ctx.out.array(args.len() - 2);
    for m in &args[2..] {
        match z.and_then(|z| z.score(m)) {
            None => ctx.out.null(),
            Some(s) => ctx.out.bulk(&hash::standard(s)),
        }
    }
}

fn geopos(ctx: &mut Ctx, args: &[&[u8]]) {
    let z = match read_zset(ctx.ks, ctx.db, args[1]) {
        Err(()) => return ctx.out.wrongtype(),
        Ok(z) => z,
    };
    ctx.out.array(args.len() - 2);
    for m in &args[2..] {
        match z.and_then(|z| z.score(m)) {
            None => ctx.out.null_array(),
            Some(s) => {
                let (lon, lat) = hash::decode_score(s);
                ctx.out.array(2);
                reply_coord(&mut ctx.out, lon);
                reply_coord(&mut ctx.out, lat);
            }
        }
    }
}

// ----- searches -------------------------------------------------------------------

const COORDS: u32 = 1;
const MEMBER: u32 = 1 << 1;
const NOSTORE: u32 = 1 << 2;
const SEARCH: u32 = 1 << 3;
const SEARCHSTORE: u32 = 1 << 4;

/// A search result.
struct Point {
    member: Vec<u8>,
    score: f64,
    lon: f64,
    lat: f64,
    dist: f64,
}

/// What a search produced: a reply, or members to store (with their new
/// scores) at the destination, replying their number.
enum Outcome {
    Reply(Vec<u8>),
    /// The members with their scores, and the destination's index in the
    /// arguments.
    Store(Vec<(Box<[u8]>, f64)>, usize),
}

/// Collects the points of `z` inside the shape, scanning the cells as
/// Redis does; stops early once `limit` (COUNT ... ANY) points are found.
fn collect(z: &ZSet, shape: &Shape, limit: usize) -> Vec<Point> {
    let cells = hash::cells(shape);
    let mut found: Vec<Point> = Vec::new();
    let mut last: Option<usize> = None;
    for (i, c) in cells.iter().enumerate() {
        if c.is_zero() {
            continue;
        }
        // Redis compares with the previously scanned cell only once a
        // neighbour (not the centre, index 0) was scanned.
        if let Some(l) = last.filter(|&l| l != 0) {
            if cells[l] == *c {
                continue;
            }
        }
        if limit > 0 && found.len() >= limit {
            break;
        }
        let min = hash::align52(*c) as f64;
        let max = hash::align52(hash::Bits {
            bits: c.bits.wrapping_add(1),
            step: c.step,
        }) as f64;
        let range = ScoreRange {
            min,
            max,
            minex: false,
            maxex: true,
        };
        if let Some(start) = z.score_first(&range) {
            z.walk(start, false, |m, s| {
                if !range.lte_max(s) {
                    return false;
                }
                if let Some((lon, lat, dist)) = hash::within(shape, s) {
                    found.push(Point {
                        member: m.to_vec(),
                        score: s,
                        lon,
                        lat,
                        dist,
                    });
                }
                !(limit > 0 && found.len() >= limit)
            });
        }
        last = Some(i);
    }
    found
}

/// Redis's `georadiusGeneric`, once the source is known not to be of the
/// wrong type. `src` is the index of the source key.
fn search(z: Option<&ZSet>, args: &[&[u8]], src: usize, flags: u32, resp3: bool) -> Outcome {
    let mut buf = Vec::new();
    let mut out = Out::new(&mut buf, resp3);
    let r = search_into(z, args, src, flags, &mut out);
    match r {
        Err(e) => {
            out.err(&e);
            Outcome::Reply(buf)
        }
        Ok(None) => Outcome::Reply(buf),
        Ok(Some((items, dst))) => Outcome::Store(items, dst),
    }
}

#[derive(PartialEq)]
enum Sort {
    None,
    Asc,
    Desc,
}

#[allow(clippy::type_complexity)]
fn search_into(
    z: Option<&ZSet>,
    args: &[&[u8]],
    src: usize,
    flags: u32,
    out: &mut Out,
) -> Result<Option<(Vec<(Box<[u8]>, f64)>, usize)>, String> {
    let mut shape = Shape {
        lon: 0.0,
        lat: 0.0,
        kind: Kind::Radius(0.0),
        conv: 1.0,
    };
    let mut store: Option<usize> = None;
    let mut storedist = false;
    let base = if flags & COORDS != 0 {
        let (lon, lat) = parse_lonlat(args[2], args[3])?;
        let (r, conv) = parse_radius(args[4], args[5])?;
        (shape.lon, shape.lat, shape.kind, shape.conv) = (lon, lat, Kind::Radius(r), conv);
        6
    } else if flags & MEMBER != 0 {
        if let Some(z) = z {
            let Some(s) = z.score(args[2]) else {
                return Err("could not decode requested zset member".into());
            };
            (shape.lon, shape.lat) = hash::decode_score(s);
            let (r, conv) = parse_radius(args[3], args[4])?;
            (shape.kind, shape.conv) = (Kind::Radius(r), conv);
        }
        5
    } else if flags & SEARCHSTORE != 0 {
        store = Some(1);
        3
    } else {
        2
    };
    let (mut withdist, mut withhash, mut withcoord) = (false, false, false);
    let (mut frommember, mut fromloc, mut byradius, mut bybox) = (false, false, false, false);
    let mut sort = Sort::None;
    let mut any = false;
    let mut count: i64 = 0;
    let search = flags & SEARCH != 0;
    let rem = args.len() - base;
    let mut i = 0;
    while i < rem {
        let a = args[base + i];
        let arg = |k: usize| args[base + i + k];
        if eq_ic(a, "withdist") {
            withdist = true;
        } else if eq_ic(a, "withhash") {
            withhash = true;
        } else if eq_ic(a, "withcoord") {
            withcoord = true;
        } else if eq_ic(a, "any") {
            any = true;
        } else if eq_ic(a, "asc") {
            sort = Sort::Asc;
        } else if eq_ic(a, "desc") {
            sort = Sort::Desc;
        } else if eq_ic(a, "count") && i + 1 < rem {
            let Some(n) = crate::util::parse_i64(arg(1)) else {
                return Err("value is not an integer or out of range".into());
            };
            if n <= 0 {
                return Err("COUNT must be > 0".into());
            }
            count = n;
            i += 1;
        } else if (eq_ic(a, "store") || eq_ic(a, "storedist"))
            && i + 1 < rem
            && flags & (NOSTORE | SEARCH) == 0
        {
            store = Some(base + i + 1);
            storedist = eq_ic(a, "storedist");
            i += 1;
        } else if eq_ic(a, "storedist") && flags & SEARCH != 0 && flags & SEARCHSTORE != 0 {
            storedist = true;
        } else if eq_ic(a, "frommember") && i + 1 < rem && search && !fromloc {
            if let Some(z) = z {
                let Some(s) = z.score(arg(1)) else {
                    return Err("could not decode requested zset member".into());
                };
                (shape.lon, shape.lat) = hash::decode_score(s);
            }
            frommember = true;
            i += 1;
        } else if eq_ic(a, "fromlonlat") && i + 2 < rem && search && !frommember {
            (shape.lon, shape.lat) = parse_lonlat(arg(1), arg(2))?;
            fromloc = true;
            i += 2;
        } else if eq_ic(a, "byradius") && i + 2 < rem && search && !bybox {
            let (r, conv) = parse_radius(arg(1), arg(2))?;
            (shape.kind, shape.conv) = (Kind::Radius(r), conv);
            byradius = true;
            i += 2;
        } else if eq_ic(a, "bybox") && i + 3 < rem && search && !byradius {
            let (Some(w), Some(h)) = (parse_double(arg(1)), parse_double(arg(2))) else {
                return Err(if parse_double(arg(1)).is_none() {
                    "need numeric width".into()
                } else {
                    "need numeric height".into()
                });
            };
            if h < 0.0 || w < 0.0 {
                return Err("height or width cannot be negative".into());
            }
            let conv = parse_unit(arg(3))?;
            (shape.kind, shape.conv) = (
                Kind::Box {
                    width: w,
                    height: h,
                },
                conv,
            );
            bybox = true;
            i += 3;
        } else {
            return Err("syntax error".into());
        }
        i += 1;
    }
    if store.is_some() && (withdist || withhash || withcoord) {
        return Err(format!(
            "{} is not compatible with WITHDIST, WITHHASH and WITHCOORD options",
            if flags & SEARCHSTORE != 0 {
                "GEOSEARCHSTORE"
            } else {
                "STORE option in GEORADIUS"
            }
        ));
    }
    let name = String::from_utf8_lossy(args[0]);
    if search && !(frommember || fromloc) {
        return Err(format!(
            "exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}"
        ));
    }
    if search && !(byradius || bybox) {
        return Err(format!(
            "exactly one of BYRADIUS and BYBOX can be specified for {name}"
        ));
    }
    if any && count == 0 {
        return Err("the ANY argument requires COUNT argument".into());
    }
    let _ = src;
    let Some(z) = z else {
        if let Some(d) = store {
            return Ok(Some((Vec::new(), d)));
        }
        out.array(0);
        return Ok(None);
    };
    if count != 0 && sort == Sort::None && !any {
        sort = Sort::Asc;
    }
    let limit = if any { count as usize } else { 0 };
    let mut pts = collect(z, &shape, limit);
    if pts.is_empty() && store.is_none() {
        out.array(0);
        return Ok(None);
    }
    match sort {
        Sort::None => {}
        Sort::Asc => pts.sort_by(|a, b| a.dist.total_cmp(&b.dist)),
        Sort::Desc => pts.sort_by(|a, b| b.dist.total_cmp(&a.dist)),
    }
    let n = if count == 0 {
        pts.len()
    } else {
        pts.len().min(count as usize)
    };
    pts.truncate(n);
    for p in &mut pts {
        p.dist /= shape.conv;
    }
    if let Some(d) = store {
        let items = pts
            .into_iter()
            .map(|p| {
                let s = if storedist { p.dist } else { p.score };
                (p.member.into_boxed_slice(), s)
            })
            .collect();
        return Ok(Some((items, d)));
    }
    let opts = withdist as usize + withhash as usize + withcoord as usize;
    out.array(n);
    for p in &pts {
        if opts > 0 {
            out.array(opts + 1);
        }
        out.bulk(&p.member);
        if withdist {
            reply_distance(out, p.dist);
        }
        if withhash {
            out.int(p.score as i64);
        }
        if withcoord {
            out.array(2);
            reply_coord(out, p.lon);
            reply_coord(out, p.lat);
        }
    }
    Ok(None)
}

/// Stores search results at `dst` (deleting it when there are none) and
/// returns their number.
/// `event`: the keyspace event of a stored result (geosearchstore or
/// georadiusstore).
fn store_points(
    ks: &mut Keyspace,
    db: usize,
    dst: &[u8],
    mut items: Vec<(Box<[u8]>, f64)>,
    event: &'static str,
) -> i64 {
    if items.is_empty() {
        if ks.delete(db, dst) {
            ks.notify(crate::notify::GENERIC, "del", db, dst);
        }
        return 0;
    }
    let n = items.len() as i64;
    items.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    // A member found twice (overlapping cells) is stored once.
    items.dedup_by(|a, b| a.0 == b.0);
    let lim = Limits {
        max_entries: ks.enc.zset_max_listpack_entries,
        max_value: ks.enc.zset_max_listpack_value,
    };
    let z = ZSet::from_sorted(items, lim);
    ks.set(db, dst, Value::ZSet(Box::new(z)), false);
    ks.signal_ready(db, dst);
    ks.notify(crate::notify::ZSET, event, db, dst);
    n
}

/// The keyspace event of a storing search command.
fn store_event(args: &[&[u8]]) -> &'static str {
    if eq_ic(args[0], "geosearchstore") {
        "geosearchstore"
    } else {
        "georadiusstore"
    }
}

/// Runs a search whose keys all live on this shard.
fn search_local(ctx: &mut Ctx, args: &[&[u8]], src: usize, flags: u32) {
    let resp3 = ctx.out.resp3;
    let outcome = match read_zset(ctx.ks, ctx.db, args[src]) {
        Err(()) => return ctx.out.wrongtype(),
        Ok(z) => search(z, args, src, flags, resp3),
    };
    match outcome {
        Outcome::Reply(b) => ctx.out.raw(&b),
        Outcome::Store(items, d) => {
            let n = store_points(ctx.ks, ctx.db, args[d], items, store_event(args));
            ctx.out.int(n);
        }
    }
}

/// Runs a storing search whose destination may be on another shard.
fn search_multi(ctx: &mut SrvCtx, args: &[&[u8]], src: usize, flags: u32) {
    let db = ctx.conn.db;
    let resp3 = ctx.conn.resp3;
    let now = crate::util::now_ms();
    let owned: Vec<Vec<u8>> = args.iter().map(|a| a.to_vec()).collect();
    let src_shard = ctx.sh.shard_of(args[src]);
    // Every argument that could name the destination is locked.
    let mut shards = vec![src_shard];
    if flags & SEARCHSTORE != 0 {
        shards.push(ctx.sh.shard_of(args[1]));
    }
    for i in 2..args.len() {
        if (eq_ic(args[i], "store") || eq_ic(args[i], "storedist")) && i + 1 < args.len() {
            shards.push(ctx.sh.shard_of(args[i + 1]));
        }
    }
    shards.sort_unstable();
    shards.dedup();
    let event = store_event(args);
    let r = ctx.sh.tx(&shards, move |tx| {
        let a2 = owned.clone();
        let outcome = tx.run(src_shard, move |sh: &mut Shard| {
            sh.ks.now = now;
            let args: Vec<&[u8]> = a2.iter().map(|a| a.as_slice()).collect();
            match read_zset(&mut sh.ks, db, args[src]) {
                Err(()) => None,
                Ok(z) => Some(search(z, &args, src, flags, resp3)),
            }
        });
        match outcome {
            None => Err(()),
            Some(Outcome::Reply(b)) => Ok(Ok(b)),
            Some(Outcome::Store(items, d)) => {
                let dst = owned[d].clone();
                let ds = tx.sh.shard_of(&dst);
                Ok(Err(tx.run(ds, move |sh: &mut Shard| {
                    sh.ks.now = now;
                    store_points(&mut sh.ks, db, &dst, items, event)
                })))
            }
        }
    });
    match r {
        Err(()) => ctx.out.wrongtype(),
        Ok(Ok(b)) => ctx.out.raw(&b),
        Ok(Err(n)) => ctx.out.int(n),
    }
}

fn georadius(ctx: &mut Ctx, args: &[&[u8]]) {
    search_local(ctx, args, 1, COORDS);
}
fn georadius_multi(ctx: &mut SrvCtx, args: &[&[u8]]) {
    search_multi(ctx, args, 1, COORDS);
}
fn georadius_ro(ctx: &mut Ctx, args: &[&[u8]]) {
    search_local(ctx, args, 1, COORDS | NOSTORE);
}
fn georadiusbymember(ctx: &mut Ctx, args: &[&[u8]]) {
    search_local(ctx, args, 1, MEMBER);
}
fn georadiusbymember_multi(ctx: &mut SrvCtx, args: &[&[u8]]) {
    search_multi(ctx, args, 1, MEMBER);
}
fn georadiusbymember_ro(ctx: &mut Ctx, args: &[&[u8]]) {
    search_local(ctx, args, 1, MEMBER | NOSTORE);
}
fn geosearch(ctx: &mut Ctx, args: &[&[u8]]) {
    search_local(ctx, args, 1, SEARCH);
}
fn geosearchstore(ctx: &mut Ctx, args: &[&[u8]]) {
    search_local(ctx, args, 2, SEARCH | SEARCHSTORE);
}
fn geosearchstore_multi(ctx: &mut SrvCtx, args: &[&[u8]]) {
    search_multi(ctx, args, 2, SEARCH | SEARCHSTORE);
}

#[cfg(test)]
mod tests {
    use super::hash::*;
    use super::*;
    use crate::cmd::run_keyed;

    fn run(ks: &mut Keyspace, args: &[&str]) -> String {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        String::from_utf8_lossy(&run_keyed(ks, 0, false, &a)).into_owned()
    }

    #[test]
    fn interleave_round_trips() {
        for (lat, lon) in [
            (0u32, 0u32),
            (1, 0),
            (0, 1),
            (0x3FF_FFFF, 0x123_4567),
            (u32::MAX, 7),
        ] {
            let b = interleave(lat, lon);
            assert_eq!(deinterleave(b), (lat, lon));
        }
        assert_eq!(interleave(1, 0), 1);
        assert_eq!(interleave(0, 1), 2);
    }

    /// Encoding then decoding lands within one cell of the point, and the
    /// known Redis scores and positions come out.
    #[test]
    fn encode_decode_match_redis() {
        let h = encode_wgs84(13.361389, 38.115556, STEP_MAX).unwrap();
        assert_eq!(align52(h), 3479099956230698);
        let (lon, lat) = decode_score(3479099956230698.0);
        assert_eq!(fmt_human(lon), "13.36138933897018433");
        assert_eq!(fmt_human(lat), "38.11555639549629859");
        let c = decode_score(3479447370796909.0);
        let d = distance(lon, lat, c.0, c.1);
        assert_eq!(fmt_distance(d), "166274.1516");
        assert_eq!(&standard(3479099956230698.0), b"sqc8b49rny0");
        for i in 0..2000 {
            let lon = -180.0 + (i as f64) * 0.18;
            let lat = -85.0 + (i as f64) * 0.085;
            let s = align52(encode_wgs84(lon, lat, STEP_MAX).unwrap()) as f64;
            let (x, y) = decode_score(s);
            assert!(
                (x - lon).abs() < 1e-5 && (y - lat).abs() < 1e-5,
                "{lon},{lat} -> {x},{y}"
            );
        }
    }

    #[test]
    fn neighbours_are_adjacent_cells() {
        let h = encode_wgs84(10.0, 10.0, 10).unwrap();
        let a = decode(h).unwrap();
        let n = neighbors(h);
        let north = decode(n[0]).unwrap();
        assert!((north.lat.0 - a.lat.1).abs() < 1e-9);
        let east = decode(n[2]).unwrap();
        assert!((east.lon.0 - a.lon.1).abs() < 1e-9);
        let sw = decode(n[7]).unwrap();
        assert!((sw.lat.1 - a.lat.0).abs() < 1e-9 && (sw.lon.1 - a.lon.0).abs() < 1e-9);
    }

    #[test]
    fn distances_print_like_redis() {
        assert_eq!(fmt_distance(0.0), "0.0000");
        assert_eq!(fmt_distance(0.00004), "0.0000");
        assert_eq!(fmt_distance(190.44242300000001), "190.4424");
        assert_eq!(fmt_distance(0.12345), "0.1234");
        assert_eq!(fmt_distance(12.5), "12.5000");
        assert_eq!(fmt_human(-0.0), "0");
        assert_eq!(fmt_human(1.5), "1.5");
    }

    #[test]
    fn geo_commands_follow_redis() {
        let mut ks = Keyspace::new(1);
        assert_eq!(
            run(
                &mut ks,
                &[
                    "geoadd",
                    "g",
                    "13.361389",
                    "38.115556",
                    "Palermo",
                    "15.087269",
                    "37.502669",
                    "Catania"
                ]
            ),
            ":2\r\n"
        );
        assert_eq!(
            run(&mut ks, &["geoadd", "g", "200", "100", "x"]),
            "-ERR invalid longitude,latitude pair 200.000000,100.000000\r\n"
        );
        assert_eq!(
            run(&mut ks, &["geoadd", "g", "nx", "xx", "1", "2", "x"]),
            "-ERR syntax error\r\n"
        );
        assert_eq!(
            run(&mut ks, &["zscore", "g", "Palermo"]),
            "$16\r\n3479099956230698\r\n"
        );
        assert_eq!(
            run(&mut ks, &["geodist", "g", "Palermo", "Catania", "km"]),
            "$8\r\n166.2742\r\n"
        );
        assert_eq!(
            run(&mut ks, &["geodist", "g", "Palermo", "nope"]),
            "$-1\r\n"
        );
        assert_eq!(
            run(&mut ks, &["geosearch", "g", "fromlonlat", "15", "37", "byradius", "200", "km", "asc", "withdist"]),
            "*2\r\n*2\r\n$7\r\nCatania\r\n$7\r\n56.4413\r\n*2\r\n$7\r\nPalermo\r\n$8\r\n190.4424\r\n"
        );
        assert_eq!(
            run(
                &mut ks,
                &[
                    "geosearch",
                    "g",
                    "fromlonlat",
                    "15",
                    "37",
                    "byradius",
                    "200"
                ]
            ),
            "-ERR syntax error\r\n"
        );
        assert_eq!(
            run(&mut ks, &["geosearch", "g", "bybox", "1", "1", "km", "asc"]),
            "-ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for geosearch\r\n"
        );
        assert_eq!(
            run(
                &mut ks,
                &["georadius", "g", "15", "37", "200", "km", "store", "dst"]
            ),
            ":2\r\n"
        );
        assert_eq!(
            run(&mut ks, &["zscore", "dst", "Palermo"]),
            "$16\r\n3479099956230698\r\n"
        );
        assert_eq!(
            run(
                &mut ks,
                &["georadius_ro", "g", "15", "37", "200", "km", "store", "dst"]
            ),
            "-ERR syntax error\r\n"
        );
        assert_eq!(
            run(&mut ks, &["georadiusbymember", "g", "nope", "200", "km"]),
            "-ERR could not decode requested zset member\r\n"
        );
        assert_eq!(
            run(&mut ks, &["geohash", "g", "Palermo", "nope"]),
            "*2\r\n$11\r\nsqc8b49rny0\r\n$-1\r\n"
        );
    }
}
