//! # mayfly-node
//!
//! Drives the sans-IO `mayfly-protocol` core: the local demo today; libp2p
//! networking, the relay, the client and storage as they land.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod demo;
pub mod rng;
