//! The Mayfly client library: what an app embeds.
//!
//! Shaped like the network layer below it (and rust-libp2p's file-sharing
//! example): [`new`] opens nothing itself; it takes an opened [`Home`] and
//! returns a [`Client`] (a cheap, cloneable handle whose async methods send,
//! sync, open, revoke and react), the receiving end of the bounded
//! [`Event`] channel, and the [`EventLoop`] to spawn, which serves direct
//! deliveries from peers, follows relay notifications, and erases expired
//! clips.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use mayfly_node::client::{self, ClientConfig};
//! use mayfly_node::home::Home;
//!
//! let home = Home::open(std::path::Path::new("/home/alice/.mayfly"))?;
//! let (client, mut events, event_loop) = client::new(home, ClientConfig::default())?;
//! tokio::spawn(event_loop.run());
//! client.start().await?; // listen, log in to the relays, publish prekeys, sync
//! while let Some(event) = events.recv().await {
//!     println!("{event:?}");
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Every secret the client must be able to forget (content keys, revocation
//! keys, prekey secrets) is kept by [`Home`] in its in-place slot file, so
//! erasing one leaves no copy in the home directory (`spec/CLIENT.md`).

mod config;
mod control;
mod deliver;
mod error;
mod event;
mod event_loop;
mod held;
mod ingest;
mod init;
mod inner;
mod intake;
mod live_relays;
mod open;
mod peer;
mod progress;
mod relays;
mod revoke;
mod send;
mod spool;
mod upload;

pub use crate::clock::Clock;
pub use config::ClientConfig;
pub use error::ClientError;
pub use event::Event;
pub use event_loop::EventLoop;
pub use init::create_home;
pub use live_relays::RelayRef;
pub use open::{OpenReport, OpenTarget};
pub use peer::parse_relay;
pub use progress::{Progress, ProgressFn, none as progress_none};
pub use revoke::RevokeReport;
pub use send::{Delivered, SendOptions, SendReport};

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::home::Home;
use inner::Inner;

/// Events the client may queue before it waits for the application.
pub const EVENT_CHANNEL_CAPACITY: usize = 256;

/// A cheap, cloneable handle on a running client.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("peer", &self.inner.net.local_peer_id())
            .finish_non_exhaustive()
    }
}

/// Builds a client over `home`: its libp2p identity is the home's device
/// key. Spawn the returned [`EventLoop`], then call [`Client::start`].
pub fn new(
    home: Home,
    config: ClientConfig,
) -> Result<(Client, mpsc::Receiver<Event>, EventLoop), ClientError> {
    let (inner, events, event_loop) = Inner::build(home, config)?;
    Ok((Client { inner }, events, event_loop))
}
