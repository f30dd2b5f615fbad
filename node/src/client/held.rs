//! The sender's copy of a clip it sent: its ciphertext chunks, kept in the
//! local store with no envelope until the clip expires or is revoked, so
//! that recipients can fetch them from this device while it is online
//! (RELAY.md §8). The content key stays where it always is (CLIENT.md §5);
//! the chunks alone open nothing. The spool the clip was sealed into
//! becomes the copy's chunk file, so the chunks are written and hashed
//! once, when the clip is sealed.

use mayfly_protocol::SealedClip;

use super::inner::Inner;
use super::spool::Spool;
use super::{ClientError, Event};

impl Inner {
    /// Keeps `sealed`'s chunks, the file of `spool` (or, where the store
    /// cannot take the file, chunks read from it), in the local store.
    /// Best effort: a failure (a full store, say) is reported as
    /// [`Event::Warning`] and the send stands.
    pub(super) async fn hold_sent(&self, sealed: &SealedClip, spool: Spool) {
        let local = self.local.clone();
        let manifest = sealed.manifest().clone();
        let now = self.now();
        let held = tokio::task::spawn_blocking(move || -> Result<(), ClientError> {
            if local.hold_file(&manifest, now, spool.path())? {
                spool.held();
                return Ok(());
            }
            let id = manifest.message_id();
            for index in local.hold(&manifest, now)? {
                local.put_chunk(&id, index, &spool.chunk(&manifest, index)?)?;
            }
            Ok(())
        })
        .await;
        let error = match held {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        self.emit(Event::Warning {
            message: format!("no copy of the sent clip is served from here: {error}"),
        });
    }
}
