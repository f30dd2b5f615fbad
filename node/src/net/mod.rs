//! libp2p networking: one swarm per node, TCP and QUIC, Noise and yamux,
//! identify and ping, and the mailbox protocol (requests and notifications,
//! see [`crate::mailbox`]), under connection and memory limits.
//!
//! Laid out like rust-libp2p's file-sharing example: [`new`] builds the
//! swarm and returns a [`Client`] (a cheap, cloneable handle), the receiving
//! end of the [`Event`] channel, and the [`EventLoop`] that owns the swarm
//! and must be spawned. Both channels are bounded.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use mayfly_node::{config::Limits, net};
//!
//! let keypair = libp2p::identity::Keypair::generate_ed25519();
//! let (client, mut events, event_loop) = net::new(keypair, &Limits::default())?;
//! tokio::spawn(event_loop.run());
//! client.listen_on("/ip4/127.0.0.1/tcp/0".parse()?).await?;
//! while let Some(event) = events.recv().await {
//!     if let net::Event::ListenAddr { address, .. } = event {
//!         println!("listening {address}");
//!     }
//! }
//! # Ok(())
//! # }
//! ```

mod behaviour;
pub mod bench;
pub mod chunks;
mod chunks_inbound;
mod client;
mod command;
mod event;
mod event_loop;
pub mod ip_limits;
mod reply;
pub mod shaper;
mod swarm;

use libp2p::identity::Keypair;
use tokio::sync::mpsc;

pub use behaviour::{Behaviour, BehaviourEvent, PROTOCOL_VERSION, agent_version};
pub use client::{Client, NetError};
pub use event::{Direction, Event};
pub use event_loop::EventLoop;
pub use reply::Reply;
pub use swarm::{BuildError, build as build_swarm};

use crate::config::Limits;
use crate::mailbox::ByteBudget;
pub use crate::mailbox::Role;

/// Requests a [`Client`] may queue before it waits for the event loop.
pub const COMMAND_CHANNEL_CAPACITY: usize = 32;

/// Events the event loop may queue before it waits for the application.
pub const EVENT_CHANNEL_CAPACITY: usize = 256;

/// Builds a client swarm for `keypair` under `limits` and returns a handle
/// on it, its events, and the event loop to spawn. A client sends mailbox
/// requests ([`Client::request`]) and receives notifications
/// ([`Event::Notification`]) and direct requests from other clients
/// ([`Event::InboundRequest`], on `/mayfly/direct/1`).
pub fn new(
    keypair: Keypair,
    limits: &Limits,
) -> Result<(Client, mpsc::Receiver<Event>, EventLoop), BuildError> {
    new_with_role(keypair, limits, Role::Client)
}

/// Like [`new`], for a node playing `role`. A relay receives mailbox
/// requests ([`Event::InboundRequest`], answered with [`Client::respond`])
/// and sends notifications ([`Client::notify`]).
pub fn new_with_role(
    keypair: Keypair,
    limits: &Limits,
    role: Role,
) -> Result<(Client, mpsc::Receiver<Event>, EventLoop), BuildError> {
    let (client, events, event_loop, _) = new_with_bench(keypair, limits, role)?;
    Ok((client, events, event_loop))
}

/// Like [`new_with_role`], and also returns the [`bench::Control`] when
/// `limits` enable the bench protocol ([`Limits::bench_protocol`], for
/// benchmarks only), with which to open `/mayfly/bench/1` streams
/// ([`bench::transfer`]). Such a swarm also answers them.
///
/// Called within a tokio runtime, this spawns on it the task that serves
/// chunk streams ([`chunks`]) and, with the bench protocol, the
/// [`bench::serve`] task. Outside one, neither is served.
#[allow(clippy::type_complexity)]
pub fn new_with_bench(
    keypair: Keypair,
    limits: &Limits,
    role: Role,
) -> Result<
    (
        Client,
        mpsc::Receiver<Event>,
        EventLoop,
        Option<bench::Control>,
    ),
    BuildError,
> {
    let local_peer_id = keypair.public().to_peer_id();
    let budget = ByteBudget::new(limits.max_buffered_request_bytes);
    let (chunk_queue, incoming_chunks) = mpsc::channel(limits.max_chunk_streams.max(1));
    let mut swarm = swarm::build(keypair, limits, role, budget.clone(), chunk_queue)?;
    let control = swarm.behaviour_mut().streams.new_control();
    let (command_sender, command_receiver) = mpsc::channel(COMMAND_CHANNEL_CAPACITY);
    let (event_sender, event_receiver) = mpsc::channel(EVENT_CHANNEL_CAPACITY);
    let bench = limits.bench_protocol.then(|| control.clone());
    // The chunk stream server stops when the swarm is dropped, and holds the
    // event channel only weakly, so the channel still closes when the event
    // loop ends.
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(chunks::serve(
                incoming_chunks,
                event_sender.downgrade(),
                budget,
                chunks::ServeLimits::new(limits),
            ));
            if let Some(control) = &bench {
                runtime.spawn(bench::serve(control.clone()));
                tracing::warn!(
                    protocol = %bench::BENCH_PROTOCOL,
                    "the bench protocol is on: for benchmarks only"
                );
            }
        }
        Err(_) => tracing::warn!("no tokio runtime: chunk streams are not served"),
    }
    Ok((
        Client::new(
            command_sender,
            local_peer_id,
            control,
            limits.max_concurrent_streams,
        ),
        event_receiver,
        EventLoop::new(swarm, command_receiver, event_sender),
        bench,
    ))
}
