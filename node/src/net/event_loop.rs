//! The task that owns the swarm: it carries out the [`Client`]'s requests
//! and turns swarm events into [`Event`]s.

use std::collections::HashMap;
use std::ops::ControlFlow;

use futures::StreamExt;
use libp2p::core::ConnectedPoint;
use libp2p::request_response::{self, OutboundFailure, OutboundRequestId};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, DialError, SwarmEvent};
use libp2p::{PeerId, Swarm, identify, ping};
use mayfly_protocol::mailbox::Response;

use crate::mailbox::Held;
use tokio::sync::{mpsc, oneshot};

#[cfg(doc)]
use super::Client;
use super::behaviour::{Behaviour, BehaviourEvent};
use super::command::Command;
use super::event::{Direction, Event};
use super::reply::Reply;

/// Owns the [`Swarm`]; run it with [`EventLoop::run`] on its own task.
pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
    pending_dials: HashMap<ConnectionId, oneshot::Sender<Result<PeerId, DialError>>>,
    pending_requests:
        HashMap<OutboundRequestId, oneshot::Sender<Result<Response, OutboundFailure>>>,
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
            pending_requests: HashMap::new(),
        }
    }

    /// Drives the swarm until a [`Client`] asks it to stop or every
    /// [`Client`] is dropped.
    ///
    /// Events are delivered with back-pressure: while the event channel is
    /// full the loop stops polling the swarm until the application takes
    /// one, but keeps carrying out commands, so an application that answers
    /// requests (or awaits any command) while events queue up cannot
    /// deadlock with it. An application that no longer wants events drops the
    /// receiver; the loop then discards them and carries on.
    pub async fn run(mut self) {
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => {
                    if let Some(event) = self.on_swarm_event(event)
                        && self.deliver(event).await.is_break()
                    {
                        break;
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

    /// Sends `event` to the application, carrying out commands while the
    /// channel is full.
    async fn deliver(&mut self, event: Event) -> ControlFlow<()> {
        let events = self.events.clone();
        loop {
            tokio::select! {
                permit = events.reserve() => {
                    // An error means the receiver is gone: nobody to tell.
                    if let Ok(permit) = permit {
                        permit.send(event);
                    }
                    return ControlFlow::Continue(());
                }
                command = self.commands.recv() => {
                    let Some(command) = command else { return ControlFlow::Break(()) };
                    self.on_command(command)?;
                }
            }
        }
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
            Command::Request {
                peer,
                request,
                reply,
            } => {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .relay
                    .send_request(&peer, Held::outbound(*request));
                self.pending_requests.insert(id, reply);
            }
            Command::Respond { channel, response } => {
                // An error means the stream is gone (timed out, closed).
                if self
                    .swarm
                    .behaviour_mut()
                    .relay
                    .send_response(channel, response)
                    .is_err()
                {
                    tracing::debug!("response dropped: the stream is gone");
                }
            }
            Command::Notify { peer, notify } => {
                // Only over an existing connection: a relay never dials an owner.
                if self.swarm.is_connected(&peer) {
                    self.swarm
                        .behaviour_mut()
                        .notify
                        .send_request(&peer, Held::outbound(notify));
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
                num_established,
                ..
            } => Some(Event::ConnectionClosed {
                peer: peer_id,
                connection: connection_id,
                cause,
                remaining: num_established,
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
            SwarmEvent::Behaviour(BehaviourEvent::Relay(event)) => self.on_relay_event(*event),
            SwarmEvent::Behaviour(BehaviourEvent::Notify(event)) => self.on_notify_event(*event),
            other => {
                tracing::trace!(?other, "swarm event");
                None
            }
        }
    }

    fn on_relay_event(
        &mut self,
        event: request_response::Event<Held<mayfly_protocol::mailbox::Request>, Held<Response>>,
    ) -> Option<Event> {
        match event {
            request_response::Event::Message {
                peer,
                connection_id,
                message,
            } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => Some(Event::InboundRequest {
                    peer,
                    connection: Some(connection_id),
                    request: Box::new(request.message),
                    hold: request.hold,
                    channel: Reply::stream(channel),
                }),
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(reply) = self.pending_requests.remove(&request_id) {
                        let _ = reply.send(Ok(response.message));
                    }
                    None
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                tracing::debug!(%peer, "mailbox request failed: {error}");
                if let Some(reply) = self.pending_requests.remove(&request_id) {
                    let _ = reply.send(Err(error));
                }
                None
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, "inbound mailbox request failed: {error}");
                None
            }
            request_response::Event::ResponseSent { .. } => None,
        }
    }

    fn on_notify_event(
        &mut self,
        event: request_response::Event<Held<mayfly_protocol::mailbox::Notify>, Held<Response>>,
    ) -> Option<Event> {
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .notify
                    .send_response(channel, Held::outbound(Response::Ok));
                Some(Event::Notification {
                    peer,
                    notify: request.message,
                })
            }
            request_response::Event::Message {
                peer,
                message: request_response::Message::Response { response, .. },
                ..
            } => {
                if response.message != Response::Ok {
                    tracing::debug!(%peer, ?response, "notification refused");
                }
                None
            }
            request_response::Event::OutboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, "notification failed: {error}");
                None
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, "inbound notification failed: {error}");
                None
            }
            request_response::Event::ResponseSent { .. } => None,
        }
    }
}
