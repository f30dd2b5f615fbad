//! # mayfly-node
//!
//! Drives the sans-IO `mayfly-protocol` core: the local demo, libp2p
//! networking and the relay's networking skeleton today; the relay's
//! mailboxes, the client and storage as they land.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod clock;
pub mod config;
pub mod demo;
pub mod home;
pub mod live;
pub mod mailbox;
/// What a clip file holds (the `mayfly-media` crate).
pub use mayfly_media as media;
pub mod metrics;
pub mod net;
pub mod node_key;
mod redb_errors;
pub mod relay;
pub mod rng;
pub mod shutdown;
pub mod store;
