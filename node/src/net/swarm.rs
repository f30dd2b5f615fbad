//! Building the swarm: transports, security, multiplexing and behaviour.

use libp2p::identity::Keypair;
use libp2p::{Swarm, SwarmBuilder, noise, tcp, yamux};

use super::behaviour::Behaviour;
use crate::config::Limits;
use crate::mailbox::{ByteBudget, Role};

/// Why a swarm could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Noise handshake could not be set up for the key.
    #[error("cannot set up the noise handshake")]
    Noise(#[from] noise::Error),
}

/// A swarm for `keypair` that speaks TCP (with Noise and yamux) and QUIC,
/// runs [`Behaviour`] for `role` under `limits`, and is driven by tokio.
/// Inbound mailbox requests hold bytes of `budget`; inbound chunk streams
/// go to `chunk_queue`.
///
/// It listens nowhere and dials no one until told to.
pub fn build(
    keypair: Keypair,
    limits: &Limits,
    role: Role,
    budget: ByteBudget,
    chunk_queue: super::chunks_inbound::Queue,
) -> Result<Swarm<Behaviour>, BuildError> {
    let builder = SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::new(),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_quic();
    let Ok(builder) =
        builder.with_behaviour(|key| Behaviour::new(key, limits, role, budget, chunk_queue));
    Ok(builder
        .with_swarm_config(|c| c.with_idle_connection_timeout(limits.idle_connection_timeout()))
        .with_connection_timeout(limits.handshake_timeout())
        .build())
}
