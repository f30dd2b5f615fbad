//! How viewers find each other (LIVE.md §8.1): libp2p rendezvous, with the
//! broadcaster as the rendezvous point. Each viewer registers its addresses
//! under the broadcast's topic at the broadcaster it dialled, discovers the
//! others registered there, and dials a few of them, so that the gossipsub
//! mesh forms among the viewers and the broadcaster's own mesh stays at
//! its few peers however many watch.

use std::collections::HashSet;
use std::time::Duration;

use libp2p::rendezvous::{self, Namespace};
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{Multiaddr, PeerId, connection_limits, gossipsub};

use super::LiveConfig;

/// Everything a live peer runs. The limits come first, so that a
/// connection they refuse costs nothing else.
#[derive(NetworkBehaviour)]
pub(super) struct Behaviour {
    /// Incoming connections per address (one host cannot take them all).
    pub per_ip: crate::net::ip_limits::Behaviour,
    /// Connections in all, per peer, and in their handshake.
    pub limits: connection_limits::Behaviour,
    pub gossipsub: gossipsub::Behaviour,
    /// The broadcaster's: where viewers register and discover.
    pub rendezvous_point: Toggle<rendezvous::server::Behaviour>,
    /// A viewer's.
    pub rendezvous: Toggle<rendezvous::client::Behaviour>,
}

/// The connection limits of a live peer (LIVE.md §8.1): a broadcaster takes
/// as many viewers as it keeps registrations for, a viewer a few times the
/// peers others dial it for.
pub(super) fn limits(
    config: &LiveConfig,
    broadcaster: bool,
) -> (
    crate::net::ip_limits::Behaviour,
    connection_limits::Behaviour,
) {
    let incoming = if broadcaster {
        config.max_viewers
    } else {
        config.max_incoming
    };
    let per_ip = crate::config::Limits {
        max_pending_per_ip: config.max_pending_per_ip,
        max_established_per_ip: config.max_per_ip,
        ..crate::config::Limits::default()
    };
    let all = connection_limits::ConnectionLimits::default()
        .with_max_pending_incoming(Some(config.max_pending_incoming))
        .with_max_established_incoming(Some(incoming))
        .with_max_established_outgoing(Some(config.max_outgoing))
        .with_max_established_per_peer(Some(2));
    (
        crate::net::ip_limits::Behaviour::new(&per_ip),
        connection_limits::Behaviour::new(all),
    )
}

/// The rendezvous server's settings at a broadcaster: one registration per
/// viewer, at most `config.max_registrations` in all, short TTLs.
pub(super) fn point_config(config: &LiveConfig) -> rendezvous::server::Config {
    rendezvous::server::Config::default()
        .with_min_ttl(config.registration_ttl.as_secs())
        .with_max_ttl(config.registration_ttl.as_secs())
        .with_max_registration_per_peer(1)
        .with_max_registration_total(config.max_registrations)
}

/// A viewer's discovery: which peers are rendezvous points (the peers its
/// key named), whom it has registered with, and whom it has dialled.
pub(super) struct Discovery {
    namespace: Namespace,
    /// Peers named with a `/p2p/` id in the addresses dialled: the
    /// broadcaster (or, later, relays carrying the broadcast).
    points: HashSet<PeerId>,
    registered: HashSet<PeerId>,
    cookie: Option<rendezvous::Cookie>,
    /// Viewers dialled after discovery (bounded by `want`).
    dialled: HashSet<PeerId>,
    want: usize,
    /// Registrations asked for per discovery.
    limit: u64,
    ttl: u64,
    local: PeerId,
    /// Picks whom to dial at random: every viewer gets the same list from
    /// the broadcaster, and dialling its first few would pile everyone
    /// onto the earliest viewers.
    rng: rand_chacha::ChaCha20Rng,
}

impl Discovery {
    pub fn new(namespace: Namespace, local: PeerId, config: &LiveConfig) -> Self {
        Self {
            namespace,
            points: HashSet::new(),
            registered: HashSet::new(),
            cookie: None,
            dialled: HashSet::new(),
            want: config.discover_peers,
            limit: config.discover_limit,
            ttl: config.registration_ttl.as_secs(),
            local,
            rng: crate::rng::node_rng(None).unwrap_or_else(|_| {
                use rand_core::SeedableRng;
                rand_chacha::ChaCha20Rng::from_seed(blake3::hash(&local.to_bytes()).into())
            }),
        }
    }

    /// An address about to be dialled: if it names its peer, that peer is
    /// a rendezvous point.
    pub fn dialling(&mut self, address: &Multiaddr) {
        if let Some(libp2p::multiaddr::Protocol::P2p(id)) = address.iter().last() {
            self.points.insert(id);
        }
    }

    /// A connection is up: at a rendezvous point, register and discover.
    pub fn connected(&mut self, client: &mut rendezvous::client::Behaviour, peer: PeerId) {
        if !self.points.contains(&peer) || self.registered.contains(&peer) {
            return;
        }
        match client.register(self.namespace.clone(), peer, Some(self.ttl)) {
            Ok(()) => {
                self.registered.insert(peer);
            }
            Err(e) => tracing::debug!("live rendezvous: cannot register: {e}"),
        }
        client.discover(Some(self.namespace.clone()), None, Some(self.limit), peer);
    }

    /// Every so often: register again before the TTL runs out, and look for
    /// more viewers while fewer than wanted are connected.
    pub fn tick(&mut self, client: &mut rendezvous::client::Behaviour, connected: usize) {
        for &point in &self.registered {
            if let Err(e) = client.register(self.namespace.clone(), point, Some(self.ttl)) {
                tracing::debug!("live rendezvous: cannot register again: {e}");
            }
            if connected < self.want + 1 {
                client.discover(
                    Some(self.namespace.clone()),
                    self.cookie.clone(),
                    Some(self.limit),
                    point,
                );
            }
        }
    }

    /// Registrations discovered: the peers to dial (at most `want` viewers
    /// in all, none already connected, not itself) and their addresses.
    pub fn discovered(
        &mut self,
        registrations: Vec<rendezvous::Registration>,
        cookie: rendezvous::Cookie,
        is_connected: impl Fn(&PeerId) -> bool,
    ) -> Vec<(PeerId, Vec<Multiaddr>)> {
        self.cookie = Some(cookie);
        // Forget viewers that went away, so that the budget is for the
        // living (and for those dialled a moment ago, counted again if they
        // are still registered and not yet connected).
        self.dialled.retain(|p| is_connected(p));
        let mut registrations = registrations;
        for i in (1..registrations.len()).rev() {
            let j = (rand_core::Rng::next_u64(&mut self.rng) % (i as u64 + 1)) as usize;
            registrations.swap(i, j);
        }
        let mut out = Vec::new();
        for r in registrations {
            let peer = r.record.peer_id();
            if peer == self.local
                || self.points.contains(&peer)
                || is_connected(&peer)
                || self.dialled.contains(&peer)
            {
                continue;
            }
            if self.dialled.len() >= self.want {
                break;
            }
            self.dialled.insert(peer);
            out.push((peer, r.record.addresses().to_vec()));
        }
        out
    }

    /// How often [`Discovery::tick`] runs.
    pub fn interval(config: &LiveConfig) -> Duration {
        config.registration_ttl / 3
    }
}

/// The addresses a viewer registers: those not on loopback if it has any
/// (others cannot reach its loopback), else the loopback ones (everyone is
/// on this host).
pub(super) fn registrable(addresses: &[Multiaddr]) -> Vec<Multiaddr> {
    let loopback = |a: &Multiaddr| {
        a.iter().any(|p| match p {
            libp2p::multiaddr::Protocol::Ip4(ip) => ip.is_loopback(),
            libp2p::multiaddr::Protocol::Ip6(ip) => ip.is_loopback(),
            _ => false,
        })
    };
    let outside: Vec<Multiaddr> = addresses.iter().filter(|a| !loopback(a)).cloned().collect();
    if outside.is_empty() {
        addresses.to_vec()
    } else {
        outside
    }
}
