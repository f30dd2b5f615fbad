//! The task that owns the swarm: it carries out the [`Client`]'s requests
//! and turns swarm events into [`Event`]s.

use std::collections::HashMap;
use std::ops::ControlFlow;

use futures::StreamExt;
use libp2p::core::ConnectedPoint;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, DialError, SwarmEvent};
use libp2p::{PeerId, Swarm, identify, ping};
use tokio::sync::{mpsc, oneshot};

#[cfg(doc)]
use super::Client;
use super::behaviour::{Behaviour, BehaviourEvent};
use super::command::Command;
use super::event::{Direction, Event};

/// Owns the [`Swarm`]; run it with [`EventLoop::run`] on its own task.
pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
    pending_dials: HashMap<ConnectionId, oneshot::Sender<Result<PeerId, DialError>>>,
}

impl EventLoop {
    pub(super) fn new(
        swarm: Swarm<Behaviour>,
        commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<Event>,
    ) -> Self {
        Self {
            swarm,
            commands,
            events,
            pending_dials: HashMap::new(),
        }
    }

    /// Drives the swarm until a [`Client`] asks it to stop or every
    /// [`Client`] is dropped.
    ///
    /// Events are delivered with back-pressure: while the event channel is
    /// full the loop waits for the application to take one. An application
    /// that no longer wants events drops the receiver; the loop then discards
    /// them and carries on.
    pub async fn run(mut self) {
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => {
                    if let Some(event) = self.on_swarm_event(event) {
                        // An error means the receiver is gone: nobody to tell.
                        let _ = self.events.send(event).await;
                    }
                }
                command = self.commands.recv() => {
                    // `None`: every client was dropped, so no one can use the network.
                    let Some(command) = command else { break };
                    if self.on_command(command).is_break() {
                        break;
                    }
                }
            }
        }
        tracing::debug!("network event loop stopped");
    }

    fn on_command(&mut self, command: Command) -> ControlFlow<()> {
        match command {
            Command::ListenOn { address, reply } => {
                let _ = reply.send(self.swarm.listen_on(address));
            }
            Command::Dial { address, reply } => {
                let opts = DialOpts::from(address);
                let connection = opts.connection_id();
                match self.swarm.dial(opts) {
                    Ok(()) => {
                        self.pending_dials.insert(connection, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::Shutdown => return ControlFlow::Break(()),
        }
        ControlFlow::Continue(())
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) -> Option<Event> {
        match event {
            SwarmEvent::NewListenAddr {
                listener_id,
                address,
            } => Some(Event::ListenAddr {
                listener: listener_id,
                address,
            }),
            SwarmEvent::ExpiredListenAddr {
                listener_id,
                address,
            } => Some(Event::ListenAddrExpired {
                listener: listener_id,
                address,
            }),
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } => Some(Event::ListenerClosed {
                listener: listener_id,
                error: reason.err(),
            }),
            SwarmEvent::ListenerError { listener_id, error } => {
                tracing::warn!(?listener_id, "listener error: {error}");
                None
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } => {
                if let Some(reply) = self.pending_dials.remove(&connection_id) {
                    let _ = reply.send(Ok(peer_id));
                }
                let (direction, address) = match endpoint {
                    ConnectedPoint::Dialer { address, .. } => (Direction::Outbound, address),
                    ConnectedPoint::Listener { send_back_addr, .. } => {
                        (Direction::Inbound, send_back_addr)
                    }
                };
                Some(Event::ConnectionEstablished {
                    peer: peer_id,
                    connection: connection_id,
                    direction,
                    address,
                })
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                cause,
                ..
            } => Some(Event::ConnectionClosed {
                peer: peer_id,
                connection: connection_id,
                cause,
            }),
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                tracing::debug!(?peer_id, "outgoing connection failed: {error}");
                if let Some(reply) = self.pending_dials.remove(&connection_id) {
                    let _ = reply.send(Err(error));
                }
                None
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error,
                ..
            } => {
                tracing::debug!(from = %send_back_addr, "incoming connection failed: {error}");
                None
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(event)) => match *event {
                identify::Event::Received { peer_id, info, .. } => Some(Event::Identified {
                    peer: peer_id,
                    info: Box::new(info),
                }),
                identify::Event::Error { peer_id, error, .. } => {
                    tracing::debug!(%peer_id, "identify failed: {error}");
                    None
                }
                identify::Event::Sent { .. } | identify::Event::Pushed { .. } => None,
            },
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
                peer,
                connection,
                result,
            })) => match result {
                Ok(rtt) => Some(Event::Pong {
                    peer,
                    connection,
                    rtt,
                }),
                Err(e) => {
                    tracing::debug!(%peer, "ping failed: {e}");
                    None
                }
            },
            other => {
                tracing::trace!(?other, "swarm event");
                None
            }
        }
    }
}
