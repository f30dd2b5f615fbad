//! A peer that speaks `/mayfly/relay/1` with raw bytes, to send what the
//! library would never encode: garbage, truncated and oversize frames, and
//! frames that stall half-way (slow-loris).

#![allow(dead_code)]

use std::time::Duration;

use futures::StreamExt;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, StreamProtocol, noise, tcp, yamux};
use mayfly_protocol::mailbox::RELAY_PROTOCOL;

use crate::common::TIMEOUT;

/// The raw codec: a request is written as given; a `stall` after it
/// keeps the stream open without finishing the request.
mod raw {
    use std::io;

    use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
    use libp2p::StreamProtocol;
    use libp2p::request_response::Codec;

    #[derive(Clone, Default)]
    pub struct RawCodec {
        /// How long to keep the stream open after writing the request,
        /// without closing it (a slow-loris sender).
        pub stall: std::time::Duration,
    }

    impl Codec for RawCodec {
        type Protocol = StreamProtocol;
        type Request = Vec<u8>;
        type Response = Vec<u8>;

        async fn read_request<T>(&mut self, _: &StreamProtocol, _: &mut T) -> io::Result<Vec<u8>>
        where
            T: AsyncRead + Unpin + Send,
        {
            Err(io::ErrorKind::Unsupported.into())
        }

        async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
        where
            T: AsyncRead + Unpin + Send,
        {
            let mut out = Vec::new();
            io.take(1 << 20).read_to_end(&mut out).await?;
            Ok(out)
        }

        async fn write_request<T>(
            &mut self,
            _: &StreamProtocol,
            io: &mut T,
            req: Vec<u8>,
        ) -> io::Result<()>
        where
            T: AsyncWrite + Unpin + Send,
        {
            io.write_all(&req).await?;
            io.flush().await?;
            if !self.stall.is_zero() {
                tokio::time::sleep(self.stall).await;
            }
            Ok(())
        }

        async fn write_response<T>(
            &mut self,
            _: &StreamProtocol,
            _: &mut T,
            _: Vec<u8>,
        ) -> io::Result<()>
        where
            T: AsyncWrite + Unpin + Send,
        {
            Err(io::ErrorKind::Unsupported.into())
        }
    }
}

/// Sends `bytes` raw on a `/mayfly/relay/1` stream; returns what came back
/// (`None` if the relay closed or reset the stream without a response).
/// Each call is a new connection from a new identity.
pub async fn send_raw(addr: &Multiaddr, bytes: Vec<u8>) -> Option<Vec<u8>> {
    let out = send_raw_all(addr, vec![bytes], Duration::ZERO).await;
    out.into_iter().next().flatten()
}

/// Sends each of `requests` raw on its own stream of one new connection,
/// keeping each stream open `stall` after its bytes; returns what came back
/// on each (`None`: closed or reset without a response, or timed out).
pub async fn send_raw_all(
    addr: &Multiaddr,
    requests: Vec<Vec<u8>>,
    stall: Duration,
) -> Vec<Option<Vec<u8>>> {
    let Ok(builder) = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::new(),
            noise::Config::new,
            yamux::Config::default,
        )
    else {
        return vec![None; requests.len()];
    };
    let mut swarm = builder
        .with_behaviour(|_| {
            request_response::Behaviour::<raw::RawCodec>::with_codec(
                raw::RawCodec { stall },
                [(
                    StreamProtocol::new(RELAY_PROTOCOL),
                    ProtocolSupport::Outbound,
                )],
                request_response::Config::default()
                    .with_request_timeout(stall + Duration::from_secs(10))
                    .with_max_concurrent_streams(requests.len().max(1)),
            )
        })
        .expect("a behaviour")
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(1)))
        .build();
    let relay = addr
        .iter()
        .find_map(|p| match p {
            libp2p::multiaddr::Protocol::P2p(id) => Some(id),
            _ => None,
        })
        .expect("a /p2p address");
    if swarm.dial(addr.clone()).is_err() {
        return vec![None; requests.len()];
    }
    let ids: Vec<_> = requests
        .into_iter()
        .map(|r| swarm.behaviour_mut().send_request(&relay, r))
        .collect();
    let mut out: std::collections::HashMap<_, Option<Vec<u8>>> = Default::default();
    let _ = tokio::time::timeout(stall + TIMEOUT, async {
        while out.len() < ids.len() {
            match swarm.select_next_some().await {
                SwarmEvent::Behaviour(request_response::Event::Message {
                    message:
                        request_response::Message::Response {
                            request_id,
                            response,
                        },
                    ..
                }) => {
                    out.insert(request_id, Some(response).filter(|r| !r.is_empty()));
                }
                SwarmEvent::Behaviour(request_response::Event::OutboundFailure {
                    request_id,
                    ..
                }) => {
                    out.insert(request_id, None);
                }
                SwarmEvent::OutgoingConnectionError { .. } => break,
                _ => {}
            }
        }
    })
    .await;
    ids.iter().map(|id| out.remove(id).flatten()).collect()
}
