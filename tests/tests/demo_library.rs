//! The node's demo driven as a library: the protocol crate's whole life cycle
//! through the node crate, with a fixed seed and clip sizes around chunk
//! boundaries.

use mayfly_node::demo::{DemoOptions, run};
use mayfly_protocol::{CHUNK_SIZE, UnixMillis};

#[test]
fn demo_life_cycle_holds_for_several_sizes() {
    for (seed, bytes) in [
        (1u64, 1usize),
        (2, CHUNK_SIZE - 1),
        (3, CHUNK_SIZE),
        (4, 3 * CHUNK_SIZE + 7),
    ] {
        let mut log = Vec::new();
        let report = run(
            &DemoOptions {
                clip_bytes: bytes,
                seed: Some(seed),
                now: UnixMillis(1_800_000_000_000),
            },
            &mut log,
        )
        .expect("demo runs");
        assert!(report.opened_intact, "size {bytes}");
        assert!(report.unopenable_after_revocation, "size {bytes}");
        assert!(report.ciphertext_bytes >= bytes as u64);
        assert_eq!(String::from_utf8(log).expect("utf-8").lines().count(), 8);
    }
}
