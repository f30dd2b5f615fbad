//! Sessions with this device's own relays: log in, keep prekeys published,
//! announce where the device can be reached, and sync the mailbox.

use libp2p::PeerId;
use mayfly_protocol::mailbox::{Request, Response};

use super::inner::{Inner, lock, unexpected};
use super::{Client, ClientError, Event};

/// Entries asked for per list request.
const LIST_PAGE: u16 = 64;

impl Client {
    /// Starts the client: listens for direct deliveries (if configured),
    /// then opens a session with every relay of the home ([`Client::sync`]).
    /// Returns the number of relays reached; failing to reach one is a
    /// [`Event::Warning`], failing to reach all is an error.
    pub async fn start(&self) -> Result<usize, ClientError> {
        for address in self.inner.config.listen.clone() {
            self.inner.net.listen_on(address).await?;
        }
        self.sync().await
    }

    /// Opens (or refreshes) a session with every relay of the home: logs in,
    /// publishes prekeys, announces the device's addresses, and fetches new
    /// deposits. Returns how many relays were reached.
    pub async fn sync(&self) -> Result<usize, ClientError> {
        let relays = self.inner.own_relays()?;
        if relays.is_empty() {
            return Err(ClientError::NoRelay);
        }
        let mut reached = 0;
        let mut last = None;
        for (address, peer, _) in relays {
            match self.inner.relay_session(peer).await {
                Ok(()) => reached += 1,
                Err(e @ ClientError::DeviceReplaced { .. }) => return Err(e),
                Err(e) => {
                    self.inner.emit(Event::Warning {
                        message: format!("relay {address}: {e}"),
                    });
                    last = Some(e);
                }
            }
        }
        self.inner.sync_local().await?;
        match (reached, last) {
            (0, Some(e)) => Err(e),
            _ => Ok(reached),
        }
    }
}

impl Inner {
    /// Connects to relay `peer` (one of ours), logs in, publishes prekeys,
    /// announces and syncs.
    pub async fn relay_session(&self, peer: PeerId) -> Result<(), ClientError> {
        let (_, _, dial) = self
            .own_relays()?
            .into_iter()
            .find(|(_, p, _)| *p == peer)
            .ok_or(ClientError::NoRelay)?;
        self.connect(peer, &dial).await?;
        self.login(peer).await?;
        // A refused publish must not cut the device off from its mailbox:
        // what is in it is fetched all the same, and the refusal is
        // reported after.
        let published = self.publish_prekeys(peer).await;
        if self.config.announce {
            self.announce(peer).await?;
        }
        self.sync_relay(peer).await?;
        published
    }

    /// Rotates the signed prekey if due, tops up one-time prekeys and
    /// publishes them to `peer`. Each one-time prekey goes to one relay only.
    async fn publish_prekeys(&self, peer: PeerId) -> Result<(), ClientError> {
        let now = self.now();
        let target = self.config.one_time_prekeys;
        let (signed_prekey, one_time) = {
            let home = self.home();
            let mut rng = lock(&self.rng);
            home.with_prekeys(|p, device| {
                p.rotate_if_due(device, now, &mut *rng);
                let need = target.saturating_sub(p.one_time_count());
                let fresh = p.issue_one_time(device, need, now, &mut *rng);
                (p.signed_prekey().clone(), fresh)
            })?
        };
        let batches: Vec<Vec<_>> = if one_time.is_empty() {
            vec![Vec::new()]
        } else {
            one_time
                .chunks(mayfly_protocol::MAX_PREKEYS_PER_PUBLISH)
                .map(<[_]>::to_vec)
                .collect()
        };
        for batch in batches {
            let request = Request::PublishPrekeys {
                signed_prekey: signed_prekey.clone(),
                one_time: batch,
            };
            match self.request(peer, request).await? {
                Response::Ok => {}
                _ => return Err(unexpected(peer, "publish prekeys")),
            }
        }
        Ok(())
    }

    /// Tells relay `peer` where this device accepts direct deliveries.
    pub async fn announce(&self, peer: PeerId) -> Result<(), ClientError> {
        let addrs: Vec<Vec<u8>> = lock(&self.listen_addrs)
            .iter()
            .take(mayfly_protocol::MAX_ANNOUNCE_ADDRS)
            .map(|a| a.to_vec())
            .collect();
        match self.request(peer, Request::Announce { addrs }).await? {
            Response::Ok => Ok(()),
            _ => Err(unexpected(peer, "announce")),
        }
    }

    /// Fetches every entry of our mailbox at relay `peer` past the cursor.
    pub async fn sync_relay(&self, peer: PeerId) -> Result<(), ClientError> {
        let address = self.relay_address(&peer).ok_or(ClientError::NoRelay)?;
        let _guard = self.sync_lock.lock().await;
        loop {
            let after = self.home().cursor(&address)?;
            let request = Request::List {
                after,
                limit: LIST_PAGE,
            };
            let Response::Entries { entries, more } = self.request(peer, request).await? else {
                return Err(unexpected(peer, "list"));
            };
            let Some(last) = entries.last().map(|e| e.seq) else {
                return Ok(());
            };
            for entry in entries {
                if let Err(e) = self.ingest_relay_entry(peer, &address, entry).await {
                    self.emit(Event::Warning {
                        message: format!("a message at {address} could not be taken in: {e}"),
                    });
                }
            }
            self.home().set_cursor(&address, last)?;
            if !more {
                return Ok(());
            }
        }
    }

    /// Takes in every direct delivery in the local store past the cursor.
    pub async fn sync_local(&self) -> Result<(), ClientError> {
        let _guard = self.sync_lock.lock().await;
        loop {
            let after = self.home().cursor(super::ingest::LOCAL_CURSOR)?;
            let (entries, more) =
                self.local
                    .list(&self.identity, after, LIST_PAGE, self.clock.now())?;
            let Some(last) = entries.last().map(|e| e.seq) else {
                return Ok(());
            };
            for entry in entries {
                if let Err(e) = self.ingest_local_entry(entry).await {
                    self.emit(Event::Warning {
                        message: format!("a direct delivery could not be taken in: {e}"),
                    });
                }
            }
            self.home().set_cursor(super::ingest::LOCAL_CURSOR, last)?;
            if !more {
                return Ok(());
            }
        }
    }
}
