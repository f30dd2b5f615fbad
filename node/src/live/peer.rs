//! One live peer: a swarm running gossipsub on one broadcast's topic, in a
//! task of its own, driven by bounded command and event channels.

use std::time::Duration;

use futures::StreamExt;
use libp2p::gossipsub::{self, MessageAuthenticity, TopicHash};
use libp2p::rendezvous;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, SwarmBuilder, noise, tcp, yamux};
use mayfly_protocol::live::chat::{Chat, ChatBody, ChatGate, ChatMessage, ChatRefusal};
use mayfly_protocol::live::{EpochKey, Refusal, Segment, SegmentGate, SegmentPlaintext};
use mayfly_protocol::{Codec, Device, UnixMillis};
use tokio::sync::{mpsc, oneshot};

use super::discovery::{Behaviour, BehaviourEvent, Discovery, limits, point_config, registrable};
use super::{LiveConfig, acceptance, gossipsub_config, topic};

/// A live peer could not start, or a command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LivePeerError {
    /// The gossipsub settings are inconsistent.
    #[error("live overlay settings: {0}")]
    Config(String),
    /// The transport could not be set up or listen.
    #[error("transport: {0}")]
    Transport(String),
    /// Publishing failed (the message is too large, every queue is full).
    #[error("publish: {0}")]
    Publish(String),
    /// A chat message could not be sealed: no key is held yet, or the
    /// text breaks a rule (LIVE.md §12.1).
    #[error("chat: {0}")]
    Chat(String),
    /// The peer's task has stopped.
    #[error("the live peer has stopped")]
    Stopped,
}

/// What a live peer reports.
#[derive(Debug)]
#[non_exhaustive]
pub enum LiveEvent {
    /// A segment passed the gate (and was forwarded). `plaintext` is there
    /// when the peer holds its epoch's key and it opened.
    Segment {
        /// Its sequence number.
        seq: u64,
        /// Its flags (`FLAG_KEYFRAME`, `FLAG_END`).
        flags: u8,
        /// When the broadcaster sealed it.
        produced_at: UnixMillis,
        /// When it arrived here.
        arrived_at: UnixMillis,
        /// Its plaintext, if this peer can open it.
        plaintext: Option<SegmentPlaintext>,
        /// The peer it came from.
        from: PeerId,
    },
    /// A message the gate refused (not forwarded; the sender is penalised
    /// unless it was a duplicate).
    Refused {
        /// Why.
        reason: Refusal,
        /// The peer it came from.
        from: PeerId,
    },
    /// A chat message (join, leave, comment) passed the chat gate and was
    /// forwarded (LIVE.md §12.4).
    Chat {
        /// What it says, and who signed it.
        chat: Box<Chat>,
        /// The peer it came from.
        from: PeerId,
    },
    /// A chat message the chat gate refused (not forwarded).
    ChatRefused {
        /// Why.
        reason: ChatRefusal,
        /// The peer it came from.
        from: PeerId,
    },
}

struct ChatRequest {
    body: ChatBody,
    signer: Option<Device>,
    salt: [u8; 32],
}

enum Command {
    Dial(Multiaddr),
    AddKey(u32, EpochKey),
    Publish(Vec<u8>, oneshot::Sender<Result<bool, LivePeerError>>),
    Chat(
        Box<ChatRequest>,
        oneshot::Sender<Result<bool, LivePeerError>>,
    ),
    MeshSize(oneshot::Sender<usize>),
    Subscribers(oneshot::Sender<usize>),
    SubscribedPeers(oneshot::Sender<Vec<PeerId>>),
    Connections(oneshot::Sender<usize>),
    FailedDials(oneshot::Sender<u64>),
    Direct(PeerId, Multiaddr),
    Stop,
}

/// A handle on a running live peer.
#[derive(Clone)]
pub struct LivePeer {
    commands: mpsc::Sender<Command>,
    peer_id: PeerId,
    addresses: Vec<Multiaddr>,
}

impl LivePeer {
    /// Starts a peer for the broadcast `gate` checks, listening on
    /// `listen` (loopback TCP port 0, say). `broadcaster` selects the
    /// publisher's smaller mesh. Events go to the returned receiver.
    ///
    /// With `metrics`, gossipsub records its counters there (among them
    /// `topic_msg_sent_bytes`: the bytes of messages this peer sent).
    pub async fn start(
        gate: SegmentGate,
        broadcaster: bool,
        listen: Multiaddr,
        config: &LiveConfig,
        metrics: Option<&mut prometheus_client::registry::Registry>,
    ) -> Result<(LivePeer, mpsc::Receiver<LiveEvent>), LivePeerError> {
        Self::start_as(gate, broadcaster, broadcaster, listen, config, metrics).await
    }

    /// Starts a relay's forwarder (LIVE.md §8.2): a viewer's mesh and no
    /// key, and, like the broadcaster, a rendezvous point, so that viewers
    /// who reach the broadcast only through the relay find each other
    /// there; it takes as many incoming connections as a broadcaster.
    pub async fn start_forwarder(
        gate: SegmentGate,
        listen: Multiaddr,
        config: &LiveConfig,
    ) -> Result<(LivePeer, mpsc::Receiver<LiveEvent>), LivePeerError> {
        Self::start_as(gate, false, true, listen, config, None).await
    }

    /// `publisher`: the broadcaster's smaller mesh; `point`: a rendezvous
    /// point (and the broadcaster's connection limits) rather than a client.
    async fn start_as(
        gate: SegmentGate,
        publisher: bool,
        point: bool,
        listen: Multiaddr,
        config: &LiveConfig,
        metrics: Option<&mut prometheus_client::registry::Registry>,
    ) -> Result<(LivePeer, mpsc::Receiver<LiveEvent>), LivePeerError> {
        let broadcaster = point;
        let gs_config = gossipsub_config(config, publisher)?;
        let transport = |e: &dyn std::fmt::Display| LivePeerError::Transport(e.to_string());
        let mut behaviour = gossipsub::Behaviour::new(MessageAuthenticity::Anonymous, gs_config)
            .map_err(|e| LivePeerError::Config(e.to_string()))?;
        if let Some(registry) = metrics {
            behaviour = behaviour.with_metrics(registry, gossipsub::MetricsConfig::default());
        }
        let builder = SwarmBuilder::with_new_identity()
            .with_tokio()
            .with_tcp(
                tcp::Config::new().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| transport(&e))?;
        let point = point_config(config);
        let (per_ip, limits) = limits(config, broadcaster);
        let Ok(builder) = builder.with_behaviour(move |key| Behaviour {
            per_ip,
            limits,
            gossipsub: behaviour,
            // The broadcaster is where its viewers find each other.
            rendezvous_point: broadcaster
                .then(|| rendezvous::server::Behaviour::new(point))
                .into(),
            rendezvous: (!broadcaster)
                .then(|| rendezvous::client::Behaviour::new(key.clone()))
                .into(),
        });
        let mut swarm = builder
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        let topic = topic(&gate.broadcast_id());
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(&topic)
            .map_err(|e| LivePeerError::Config(e.to_string()))?;
        swarm.listen_on(listen).map_err(|e| transport(&e))?;
        let mut addresses = vec![loop {
            match swarm.select_next_some().await {
                SwarmEvent::NewListenAddr { address, .. } => break address,
                SwarmEvent::ListenerError { error, .. } => return Err(transport(&error)),
                _ => {}
            }
        }];
        // An unspecified address (0.0.0.0) is reported once per interface,
        // all at once; nothing else happens before anyone dials.
        for _ in 0..MAX_LISTEN_EVENTS {
            match tokio::time::timeout(LISTEN_SETTLE, swarm.select_next_some()).await {
                Ok(SwarmEvent::NewListenAddr { address, .. }) => addresses.push(address),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let peer_id = *swarm.local_peer_id();
        for a in registrable(&addresses) {
            swarm.add_external_address(a);
        }
        let namespace = rendezvous::Namespace::new(topic.to_string())
            .map_err(|e| LivePeerError::Config(e.to_string()))?;
        let discovery = Discovery::new(namespace, peer_id, config);
        let tick = Discovery::interval(config);
        let (commands, rx) = mpsc::channel(config.command_queue);
        let (events, events_rx) = mpsc::channel(config.event_queue);
        tokio::spawn(run(
            swarm,
            gate,
            topic.hash(),
            rx,
            events,
            config.clock_offset_ms,
            config.hold_without_key,
            (discovery, tick),
        ));
        Ok((
            LivePeer {
                commands,
                peer_id,
                addresses,
            },
            events_rx,
        ))
    }

    /// This peer's id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Where this peer listens (with no `/p2p` suffix): the first address.
    pub fn address(&self) -> &Multiaddr {
        &self.addresses[0]
    }

    /// Every address this peer listens on (with no `/p2p` suffix).
    pub fn addresses(&self) -> &[Multiaddr] {
        &self.addresses
    }

    /// Hands the gate the key of `epoch`, so segments of that epoch open.
    pub async fn add_key(&self, epoch: u32, key: EpochKey) -> Result<(), LivePeerError> {
        self.send(Command::AddKey(epoch, key)).await
    }

    /// Dials another live peer.
    pub async fn dial(&self, address: Multiaddr) -> Result<(), LivePeerError> {
        self.send(Command::Dial(address)).await
    }

    /// Publishes an encoded segment (the broadcaster), once, to its mesh.
    /// False if no peer is subscribed to the broadcast yet.
    pub async fn publish(&self, segment: Vec<u8>) -> Result<bool, LivePeerError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Publish(segment, tx)).await?;
        rx.await.map_err(|_| LivePeerError::Stopped)?
    }

    /// Seals `body` under the newest key held, signed by `signer` unless
    /// anonymous, with the random `salt`, and publishes it (LIVE.md §12.3).
    /// False if no peer is subscribed yet.
    pub async fn chat(
        &self,
        body: ChatBody,
        signer: Option<Device>,
        salt: [u8; 32],
    ) -> Result<bool, LivePeerError> {
        let (tx, rx) = oneshot::channel();
        let request = Box::new(ChatRequest { body, signer, salt });
        self.send(Command::Chat(request, tx)).await?;
        rx.await.map_err(|_| LivePeerError::Stopped)?
    }

    /// How many peers are in this peer's mesh for the topic.
    pub async fn mesh_size(&self) -> Result<usize, LivePeerError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::MeshSize(tx)).await?;
        rx.await.map_err(|_| LivePeerError::Stopped)
    }

    /// How many peers this peer is connected to.
    pub async fn connections(&self) -> Result<usize, LivePeerError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Connections(tx)).await?;
        rx.await.map_err(|_| LivePeerError::Stopped)
    }

    /// Dials `address` (it ends in `/p2p/<id>`) and sends that peer every
    /// message from then on, outside the mesh (a gossipsub explicit peer):
    /// for a relay's forwarder, through which viewers that cannot dial this
    /// peer are reached (LIVE.md §8.2).
    pub async fn add_direct(&self, address: Multiaddr) -> Result<(), LivePeerError> {
        let Some(libp2p::multiaddr::Protocol::P2p(peer)) = address.iter().last() else {
            return Err(LivePeerError::Config(format!(
                "{address}: an explicit peer's address must end in /p2p/<id>"
            )));
        };
        self.send(Command::Direct(peer, address)).await
    }

    /// How many dials of this peer have failed so far.
    pub async fn failed_dials(&self) -> Result<u64, LivePeerError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::FailedDials(tx)).await?;
        rx.await.map_err(|_| LivePeerError::Stopped)
    }

    /// The connected peers subscribed to the topic.
    pub async fn subscribed_peers(&self) -> Result<Vec<PeerId>, LivePeerError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::SubscribedPeers(tx)).await?;
        rx.await.map_err(|_| LivePeerError::Stopped)
    }

    /// How many connected peers are subscribed to the topic.
    pub async fn subscribers(&self) -> Result<usize, LivePeerError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Subscribers(tx)).await?;
        rx.await.map_err(|_| LivePeerError::Stopped)
    }

    /// Stops the peer's task (its connections close).
    pub async fn stop(&self) {
        let _ = self.send(Command::Stop).await;
    }

    async fn send(&self, c: Command) -> Result<(), LivePeerError> {
        self.commands
            .send(c)
            .await
            .map_err(|_| LivePeerError::Stopped)
    }
}

/// How long a starting peer waits for more listen addresses after the
/// first.
const LISTEN_SETTLE: Duration = Duration::from_millis(50);
/// The most events a starting peer takes while collecting addresses.
const MAX_LISTEN_EVENTS: usize = 32;

fn now(offset_ms: i64) -> UnixMillis {
    UnixMillis(super::system_now_ms().saturating_add_signed(offset_ms))
}

#[allow(clippy::too_many_arguments)]
async fn run(
    mut swarm: Swarm<Behaviour>,
    mut gate: SegmentGate,
    topic: TopicHash,
    mut commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<LiveEvent>,
    clock_offset_ms: i64,
    config_hold: usize,
    (mut discovery, every): (Discovery, Duration),
) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    let mut pending: std::collections::VecDeque<(Segment, UnixMillis, PeerId)> =
        std::collections::VecDeque::new();
    let mut chat_gate = ChatGate::new(gate.broadcast_id());
    let mut failed_dials = 0u64;
    loop {
        tokio::select! {
            c = commands.recv() => match c {
                None | Some(Command::Stop) => return,
                Some(Command::AddKey(epoch, key)) => {
                    chat_gate.add_key(epoch, key.clone());
                    gate.add_key(epoch, key);
                    // What waited for this key opens now.
                    let (ready, wait): (Vec<_>, Vec<_>) = pending
                        .drain(..)
                        .partition(|(seg, _, _)| seg.epoch() == epoch);
                    pending.extend(wait);
                    for (seg, at, from) in ready {
                        if events.send(segment_event(&gate, &seg, at, from)).await.is_err() {
                            return;
                        }
                    }
                }
                Some(Command::Dial(a)) => {
                    discovery.dialling(&a);
                    if let Err(e) = swarm.dial(a) {
                        tracing::debug!("live dial: {e}");
                    }
                }
                Some(Command::Publish(bytes, done)) => {
                    let _ = done.send(publish(&mut swarm, &topic, bytes));
                }
                Some(Command::Chat(request, done)) => {
                    let r = publish_chat(&mut swarm, &mut chat_gate, &topic, *request, now(clock_offset_ms));
                    let _ = done.send(r);
                }
                Some(Command::Connections(reply)) => {
                    let _ = reply.send(swarm.connected_peers().count());
                }
                Some(Command::FailedDials(reply)) => {
                    let _ = reply.send(failed_dials);
                }
                Some(Command::Direct(peer, a)) => {
                    swarm.behaviour_mut().gossipsub.add_explicit_peer(&peer);
                    if let Err(e) = swarm.dial(a) {
                        tracing::debug!("live dial of an explicit peer: {e}");
                    }
                }
                Some(Command::Subscribers(reply)) => {
                    let n = swarm
                        .behaviour()
                        .gossipsub
                        .all_peers()
                        .filter(|(_, topics)| topics.contains(&&topic))
                        .count();
                    let _ = reply.send(n);
                }
                Some(Command::SubscribedPeers(reply)) => {
                    let peers = swarm
                        .behaviour()
                        .gossipsub
                        .all_peers()
                        .filter(|(_, topics)| topics.contains(&&topic))
                        .map(|(p, _)| *p)
                        .collect();
                    let _ = reply.send(peers);
                }
                Some(Command::MeshSize(reply)) => {
                    let _ = reply.send(swarm.behaviour().gossipsub.mesh_peers(&topic).count());
                }
            },
            _ = tick.tick() => {
                let connected = swarm.connected_peers().count();
                if let Some(client) = swarm.behaviour_mut().rendezvous.as_mut() {
                    discovery.tick(client, connected);
                }
            }
            e = swarm.select_next_some() => {
                let (propagation_source, message_id, message) = match e {
                    SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                        propagation_source,
                        message_id,
                        message,
                    })) => (propagation_source, message_id, message),
                    SwarmEvent::OutgoingConnectionError { .. } => {
                        failed_dials += 1;
                        continue;
                    }
                    SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                        if let Some(client) = swarm.behaviour_mut().rendezvous.as_mut() {
                            discovery.connected(client, peer_id);
                        }
                        continue;
                    }
                    SwarmEvent::Behaviour(BehaviourEvent::Rendezvous(
                        rendezvous::client::Event::Discovered { registrations, cookie, .. },
                    )) => {
                        let to_dial = discovery.discovered(registrations, cookie, |p| swarm.is_connected(p));
                        for (peer, addresses) in to_dial {
                            let opts = libp2p::swarm::dial_opts::DialOpts::peer_id(peer)
                                .addresses(addresses)
                                .build();
                            if let Err(e) = swarm.dial(opts) {
                                tracing::debug!("live: dialling a discovered viewer: {e}");
                            }
                        }
                        continue;
                    }
                    _ => continue,
                };
                let at = now(clock_offset_ms);
                if message.data.first() == Some(&mayfly_protocol::codec::tag::LIVE_CHAT) {
                    let result = chat_gate.accept(&message.data, at);
                    swarm.behaviour_mut().gossipsub.report_message_validation_result(
                        &message_id,
                        &propagation_source,
                        acceptance(&result, ChatRefusal::is_offence),
                    );
                    let event = match result {
                        Ok(chat) => LiveEvent::Chat { chat: Box::new(chat), from: propagation_source },
                        Err(reason) => LiveEvent::ChatRefused { reason, from: propagation_source },
                    };
                    if events.send(event).await.is_err() {
                        return;
                    }
                    continue;
                }
                let result = gate.accept(&message.data, at);
                swarm.behaviour_mut().gossipsub.report_message_validation_result(
                    &message_id,
                    &propagation_source,
                    acceptance(&result, Refusal::is_offence),
                );
                let event = match result {
                    // The key of a new epoch may come after its first
                    // segments (a rotation): they wait for it (a few),
                    // then go out unopened.
                    Ok(seg)
                        if config_hold > 0
                            && gate.newest_epoch().is_some_and(|e| seg.epoch() > e) =>
                    {
                        pending.push_back((seg, at, propagation_source));
                        if pending.len() <= config_hold {
                            continue;
                        }
                        let (seg, at, from) = pending.pop_front().expect("one is there");
                        segment_event(&gate, &seg, at, from)
                    }
                    Ok(seg) => segment_event(&gate, &seg, at, propagation_source),
                    Err(reason) => LiveEvent::Refused {
                        reason,
                        from: propagation_source,
                    },
                };
                // The application is slow: wait for it (bounded queue).
                if events.send(event).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Seals a chat message under the newest key held and publishes it,
/// remembering it so that it is refused if it comes back.
fn publish_chat(
    swarm: &mut Swarm<Behaviour>,
    gate: &mut ChatGate,
    topic: &TopicHash,
    request: ChatRequest,
    now: UnixMillis,
) -> Result<bool, LivePeerError> {
    let Some((epoch, key)) = gate.newest() else {
        return Err(LivePeerError::Chat(
            "no key of the broadcast is held".into(),
        ));
    };
    let bytes = ChatMessage::seal(
        gate.broadcast_id(),
        epoch,
        key,
        request.salt,
        &request.body,
        request.signer.as_ref(),
    )
    .map_err(|e| LivePeerError::Chat(e.to_string()))?
    .to_bytes();
    gate.sent(&bytes, now);
    publish(swarm, topic, bytes)
}

/// Publishes `bytes` to the topic: true if some peer took it, false if
/// nobody is subscribed yet (not an error: nobody watches yet).
fn publish(
    swarm: &mut Swarm<Behaviour>,
    topic: &TopicHash,
    bytes: Vec<u8>,
) -> Result<bool, LivePeerError> {
    match swarm
        .behaviour_mut()
        .gossipsub
        .publish(topic.clone(), bytes)
    {
        Ok(_) => Ok(true),
        Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => Ok(false),
        Err(e) => Err(LivePeerError::Publish(e.to_string())),
    }
}

/// The event of an accepted segment, opened if the gate holds its key.
fn segment_event(gate: &SegmentGate, seg: &Segment, at: UnixMillis, from: PeerId) -> LiveEvent {
    LiveEvent::Segment {
        seq: seg.seq(),
        flags: seg.flags(),
        produced_at: seg.produced_at(),
        arrived_at: at,
        plaintext: gate.open(seg).and_then(Result::ok),
        from,
    }
}
