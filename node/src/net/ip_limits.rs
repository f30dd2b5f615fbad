//! Per-address connection limits (RELAY.md §5.5, "Connections"): how many incoming
//! connections one remote address may have in their handshake, and how many
//! established, at once.
//!
//! libp2p's `connection_limits` bounds connections over the whole node. On
//! its own that lets one host fill every handshake slot with idle TCP
//! connections that never send a byte, and lock every other client out for
//! as long as it keeps them open. Counting per address closes that: one host
//! gets a few handshake slots, and a connection beyond them is refused as
//! soon as it is accepted, before any handshake work is done. The handshake
//! itself has a deadline ([`Limits::handshake_timeout`]), so a slot held by
//! a connection that never authenticates is freed early.
//!
//! IPv4 addresses count one by one; IPv6 addresses count by their /64
//! prefix, the block one subscriber is usually given (an IPv4 address mapped
//! into IPv6 counts as the IPv4 address). A connection whose address has no
//! IP (not the case for TCP or QUIC) is not counted here.
//!
//! This behaviour sits before `connection_limits` in the node's behaviour,
//! so a connection it refuses never takes one of the node-wide slots.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::task::{Context, Poll};

use libp2p::core::Endpoint;
use libp2p::core::transport::PortUse;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{
    ConnectionClosed, ConnectionDenied, ConnectionId, FromSwarm, ListenFailure, NetworkBehaviour,
    THandler, THandlerInEvent, THandlerOutEvent, ToSwarm, dummy,
};
use libp2p::{Multiaddr, PeerId};

use crate::config::Limits;

/// The address a connection counts against: an IPv4 address, or an IPv6
/// address with all but its first 64 bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Source(IpAddr);

impl Source {
    /// The source of a connection from `addr`, if it has an IP address.
    pub fn of(addr: &Multiaddr) -> Option<Self> {
        let ip = addr.iter().find_map(|p| match p {
            Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
            Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
            _ => None,
        })?;
        Some(Self::from_ip(ip))
    }

    /// The source `ip` counts against.
    pub fn from_ip(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => {
                    let bits = u128::from(v6) & !((1u128 << 64) - 1);
                    Self(IpAddr::V6(Ipv6Addr::from(bits)))
                }
            },
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

/// Which per-address limit refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Exceeded {
    /// The address has `max_pending_per_ip` connections in their handshake.
    #[error("{0} connections from one address are in their handshake already")]
    Pending(u32),
    /// The address has `max_established_per_ip` established connections.
    #[error("{0} connections from one address are established already")]
    Established(u32),
}

/// Per-address counts of incoming connections, and the connections they
/// count (so each is uncounted once, whatever ends it).
#[derive(Debug, Default)]
struct Counts {
    pending: HashMap<Source, u32>,
    established: HashMap<Source, u32>,
    /// Every counted connection: its source, and whether it is established.
    connections: HashMap<ConnectionId, (Source, bool)>,
}

impl Counts {
    fn add(&mut self, id: ConnectionId, source: Source, established: bool) {
        let map = if established {
            &mut self.established
        } else {
            &mut self.pending
        };
        *map.entry(source).or_default() += 1;
        self.connections.insert(id, (source, established));
    }

    fn remove(&mut self, id: ConnectionId) {
        let Some((source, established)) = self.connections.remove(&id) else {
            return;
        };
        let map = if established {
            &mut self.established
        } else {
            &mut self.pending
        };
        if let Some(n) = map.get_mut(&source) {
            *n -= 1;
            if *n == 0 {
                map.remove(&source);
            }
        }
    }

    fn count(&self, source: Source, established: bool) -> u32 {
        let map = if established {
            &self.established
        } else {
            &self.pending
        };
        map.get(&source).copied().unwrap_or(0)
    }
}

/// Refuses an incoming connection whose address already has
/// `max_pending_per_ip` connections in their handshake, or
/// `max_established_per_ip` established. Outgoing connections are not
/// limited here.
#[derive(Debug)]
pub struct Behaviour {
    max_pending: u32,
    max_established: u32,
    counts: Counts,
}

impl Behaviour {
    /// The limits of `limits`.
    pub fn new(limits: &Limits) -> Self {
        Self {
            max_pending: limits.max_pending_per_ip,
            max_established: limits.max_established_per_ip,
            counts: Counts::default(),
        }
    }

    /// Connections from `source` in their handshake.
    pub fn pending(&self, source: Source) -> u32 {
        self.counts.count(source, false)
    }

    /// Established connections from `source`.
    pub fn established(&self, source: Source) -> u32 {
        self.counts.count(source, true)
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        let Some(source) = Source::of(remote_addr) else {
            return Ok(());
        };
        if self.counts.count(source, false) >= self.max_pending {
            tracing::debug!(%source, "incoming connection refused: too many in their handshake");
            return Err(ConnectionDenied::new(Exceeded::Pending(self.max_pending)));
        }
        self.counts.add(connection_id, source, false);
        Ok(())
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _peer: PeerId,
        _local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.counts.remove(connection_id);
        let Some(source) = Source::of(remote_addr) else {
            return Ok(dummy::ConnectionHandler);
        };
        if self.counts.count(source, true) >= self.max_established {
            tracing::debug!(%source, "incoming connection refused: too many established");
            return Err(ConnectionDenied::new(Exceeded::Established(
                self.max_established,
            )));
        }
        self.counts.add(connection_id, source, true);
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        _peer: PeerId,
        _addr: &Multiaddr,
        _role_override: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionClosed(ConnectionClosed { connection_id, .. })
            | FromSwarm::ListenFailure(ListenFailure { connection_id, .. }) => {
                self.counts.remove(connection_id);
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _peer: PeerId,
        _connection: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn limits(pending: u32, established: u32) -> Limits {
        Limits {
            max_pending_per_ip: pending,
            max_established_per_ip: established,
            ..Limits::default()
        }
    }

    fn addr(s: &str) -> Multiaddr {
        s.parse().expect("valid multiaddr")
    }

    fn pending(b: &mut Behaviour, from: &str) -> Result<ConnectionId, ConnectionDenied> {
        let id = ConnectionId::new_unchecked(next_id());
        b.handle_pending_inbound_connection(id, &addr("/ip4/127.0.0.1/tcp/1"), &addr(from))
            .map(|()| id)
    }

    fn next_id() -> usize {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(1);
        NEXT.fetch_add(1, Ordering::Relaxed)
    }

    #[test]
    fn ipv6_counts_by_64_prefix_and_mapped_ipv4_as_ipv4() {
        let a = Source::of(&addr("/ip6/2001:db8:1:2:aaaa::1/tcp/1")).expect("ip");
        let b = Source::of(&addr("/ip6/2001:db8:1:2:bbbb::9/udp/1/quic-v1")).expect("ip");
        let c = Source::of(&addr("/ip6/2001:db8:1:3::1/tcp/1")).expect("ip");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.to_string(), "2001:db8:1:2::/64");
        let mapped = Source::of(&addr("/ip6/::ffff:192.0.2.7/tcp/1")).expect("ip");
        assert_eq!(
            mapped,
            Source::from_ip(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)))
        );
        assert_eq!(Source::of(&addr("/dns4/example.com/tcp/1")), None);
    }

    #[test]
    fn one_address_gets_its_handshake_slots_and_others_are_unaffected() {
        let mut b = Behaviour::new(&limits(3, 2));
        let ids: Vec<_> = (0..3)
            .map(|_| pending(&mut b, "/ip4/10.0.0.1/tcp/5").expect("within the limit"))
            .collect();
        assert!(pending(&mut b, "/ip4/10.0.0.1/tcp/6").is_err());
        // Another address has slots of its own.
        assert!(pending(&mut b, "/ip4/10.0.0.2/tcp/5").is_ok());
        // A handshake that fails frees its slot.
        b.on_swarm_event(FromSwarm::ListenFailure(ListenFailure {
            local_addr: &addr("/ip4/127.0.0.1/tcp/1"),
            send_back_addr: &addr("/ip4/10.0.0.1/tcp/5"),
            error: &libp2p::swarm::ListenError::Aborted,
            connection_id: ids[0],
            peer_id: None,
        }));
        assert_eq!(
            b.pending(Source::of(&addr("/ip4/10.0.0.1")).expect("ip")),
            2
        );
        let id = pending(&mut b, "/ip4/10.0.0.1/tcp/7").expect("slot freed");
        // Established connections count apart, up to their own limit.
        let from = addr("/ip4/10.0.0.1/tcp/7");
        let local = addr("/ip4/127.0.0.1/tcp/1");
        let peer = PeerId::random();
        assert!(
            b.handle_established_inbound_connection(id, peer, &local, &from)
                .is_ok()
        );
        assert!(
            b.handle_established_inbound_connection(ids[1], peer, &local, &from)
                .is_ok()
        );
        assert!(
            b.handle_established_inbound_connection(ids[2], peer, &local, &from)
                .is_err()
        );
        let source = Source::of(&from).expect("ip");
        assert_eq!((b.pending(source), b.established(source)), (0, 2));
        // The refused one was uncounted when it was refused; a later
        // ListenFailure for it changes nothing.
        b.on_swarm_event(FromSwarm::ListenFailure(ListenFailure {
            local_addr: &local,
            send_back_addr: &from,
            error: &libp2p::swarm::ListenError::Aborted,
            connection_id: ids[2],
            peer_id: None,
        }));
        assert_eq!((b.pending(source), b.established(source)), (0, 2));
    }
}
