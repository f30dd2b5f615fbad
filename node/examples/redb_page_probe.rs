//! Why chunk records are split (RELAY.md §7): the cost of inserting one
//! value per non-durable redb transaction, by value size. A value that,
//! with its key and the leaf's headers, no longer fits a 256 KiB page takes
//! a 512 KiB one.
//!
//! ```sh
//! cargo run --release -p mayfly-node --example redb_page_probe
//! ```

use std::time::Instant;

use redb::{Database, TableDefinition};

const T: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("t");
const VALUES: u32 = 256;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("| value bytes | per insert + commit | file size |");
    println!("| ---: | ---: | ---: |");
    for size in [262_221usize, 262_144, 262_100, 261_888, 250_000] {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("probe.redb");
        let db = Database::builder().set_cache_size(64 << 20).create(&path)?;
        let value = vec![7u8; size];
        let t = Instant::now();
        for i in 0..VALUES {
            let key = *blake3::hash(&i.to_le_bytes()).as_bytes();
            let mut txn = db.begin_write()?;
            txn.set_durability(redb::Durability::None)?;
            txn.open_table(T)?.insert(&key, value.as_slice())?;
            txn.commit()?;
        }
        let per = t.elapsed().as_secs_f64() * 1e3 / f64::from(VALUES);
        let len = std::fs::metadata(&path)?.len();
        println!("| {size} | {per:.3} ms | {} MiB |", len >> 20);
    }
    Ok(())
}
