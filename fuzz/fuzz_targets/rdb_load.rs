//! Feeds arbitrary bytes to the RDB file loader and the DUMP payload
//! decoder. Neither may panic, hang or allocate without bound.
//!
//! Each input is tried as it is and, so that mutations get past the
//! checksums to the parsers, with its RDB trailer zeroed (checksum
//! disabled) and as a DUMP payload with its CRC64 recomputed.
//!
//! Run: `cargo +nightly fuzz run rdb_load` (seeds: corpus/rdb_load).

#![no_main]

use libfuzzer_sys::fuzz_target;
use ringkv::rdb::crc64;
use ringkv::rdb::decode::{load, restore_payload};
use ringkv::shard::keyspace::EncCfg;

/// libfuzzer-sys aborts on every panic, even a caught one. The only caught
/// panics are the lzf crate's on corrupt compressed strings (the reader
/// turns them into errors with `catch_unwind`), so those are let through
/// silently; any other panic still aborts with its message.
fn install_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let from_lzf = info
                .location()
                .is_some_and(|l| l.file().contains("lzf-") && l.file().contains("decompress"));
            if !from_lzf {
                prev(info);
                std::process::abort();
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    install_hook();
    let enc = EncCfg {
        // Small limits so conversions between encodings are reached too.
        hash_max_listpack_entries: 8,
        set_max_intset_entries: 8,
        zset_max_listpack_entries: 8,
        list_max_listpack_size: 4,
        ..EncCfg::default()
    };
    let mut keys = 0usize;
    let _ = load(data, &enc, 16, |e| {
        keys += e.key.len();
        Ok(())
    });
    let _ = restore_payload(data, &enc);

    let n = data.len();
    if n >= 18 && data[n - 8..] != [0; 8] {
        let mut z = data.to_vec();
        z[n - 8..].fill(0);
        let _ = load(&z, &EncCfg::default(), 16, |_| Ok(()));
    }
    if n >= 10 {
        let mut p = data.to_vec();
        let crc = crc64(0, &p[..n - 8]);
        p[n - 8..].copy_from_slice(&crc.to_le_bytes());
        let _ = restore_payload(&p, &enc);
        let _ = restore_payload(&p, &EncCfg::default());
    }
});
