//! Sending: seal once, one envelope per recipient, deliver each.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use mayfly_protocol::{
    CONTROL_MEDIA_TYPE, ClipHeader, ClipKind, Codec, Control, DEFAULT_CLIP_TTL_MS, MessageId,
    SigningPublicKey,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::inner::{Inner, lock};
use super::progress::{self, Progress, ProgressFn};
use super::spool::Spool;
use super::{Client, ClientError};
use crate::home::{Contact, Delivery, Sent, Via};
use crate::media;

/// How to send a clip.
#[derive(Clone)]
pub struct SendOptions {
    /// How long the clip lives, at most 14 days.
    pub ttl_ms: u64,
    /// Whether recipients may keep a copy (`open --out FILE`).
    pub allow_save: bool,
    /// Progress of each upload.
    pub progress: ProgressFn,
}

impl Default for SendOptions {
    fn default() -> Self {
        Self {
            ttl_ms: DEFAULT_CLIP_TTL_MS,
            allow_save: false,
            progress: progress::none(),
        }
    }
}

impl std::fmt::Debug for SendOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendOptions")
            .field("ttl_ms", &self.ttl_ms)
            .field("allow_save", &self.allow_save)
            .finish_non_exhaustive()
    }
}

/// How one recipient got a clip.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// The recipient's name.
    pub name: String,
    /// The recipient's identity.
    pub identity: SigningPublicKey,
    /// Straight to its device, or through which relay.
    pub via: Via,
    /// How long the delivery took.
    pub elapsed: Duration,
}

/// What a send did.
#[derive(Debug)]
pub struct SendReport {
    /// The clip's id.
    pub message_id: MessageId,
    /// Each recipient that got it.
    pub delivered: Vec<Delivered>,
    /// Each recipient that did not, and why.
    pub failed: Vec<(String, ClientError)>,
    /// Ciphertext bytes of the clip.
    pub ciphertext_len: u64,
}

impl Client {
    /// Sends the MP4 file at `path` as a video message to `to` (contacts'
    /// identity keys).
    pub async fn send_file(
        &self,
        to: &[SigningPublicKey],
        path: &Path,
        options: SendOptions,
    ) -> Result<SendReport, ClientError> {
        self.send_media(to, path, ClipKind::Clip, None, options)
            .await
    }

    /// Sends flik `flik` (a name in the home's library; the first one if
    /// `None`) as a reaction to message `parent`, to the parent's sender.
    /// The reaction expires no later than its parent.
    pub async fn react(
        &self,
        parent: &MessageId,
        flik: Option<&str>,
        mut options: SendOptions,
    ) -> Result<SendReport, ClientError> {
        let (path, to, parent_expires) = {
            let home = self.inner.home();
            let received = home
                .received(parent)?
                .ok_or_else(|| ClientError::UnknownMessage(parent.to_hex()))?;
            let path = match flik {
                Some(name) => home.flik(name)?,
                None => home
                    .fliks()?
                    .into_iter()
                    .next()
                    .map(|(_, p)| p)
                    .ok_or_else(|| {
                        ClientError::io(
                            "no flik in the library",
                            std::io::ErrorKind::NotFound.into(),
                        )
                    })?,
            };
            (path, received.sender, received.header.expires_at)
        };
        let now = self.inner.now();
        if parent_expires <= now {
            return Err(ClientError::Expired(parent.to_hex()));
        }
        options.ttl_ms = options.ttl_ms.min(parent_expires.since(now));
        self.send_media(&[to], &path, ClipKind::Reaction, Some(*parent), options)
            .await
    }

    async fn send_media(
        &self,
        to: &[SigningPublicKey],
        path: &Path,
        kind: ClipKind,
        parent: Option<MessageId>,
        options: SendOptions,
    ) -> Result<SendReport, ClientError> {
        if options.ttl_ms > kind.max_ttl_ms() {
            return Err(ClientError::LifetimeTooLong {
                ttl_ms: options.ttl_ms,
                limit_ms: kind.max_ttl_ms(),
            });
        }
        let file = std::fs::File::open(path).map_err(|source| media::MediaError::Open {
            path: path.to_owned(),
            source,
        })?;
        let len = file
            .metadata()
            .map_err(|e| ClientError::io(format!("reading {}", path.display()), e))?
            .len();
        media::check_len(path, len)?;
        let info = media::probe_path(path)?;
        media::check(&info, kind)?;
        let now = self.inner.now();
        let header = ClipHeader {
            kind,
            allow_save: options.allow_save,
            duration_ms: info.duration_ms,
            created_at: now,
            expires_at: now.plus(options.ttl_ms.max(1)),
            content_len: len,
            parent,
            media_type: info.media_type.to_owned(),
        };
        let contacts = to
            .iter()
            .map(|id| {
                self.inner.home().contact(id)?.ok_or_else(|| {
                    ClientError::Home(crate::home::HomeError::UnknownContact(
                        super::inner::short_hex(&id.to_bytes()),
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Sealing reads and encrypts the whole file before the first upload
        // starts: seconds for a large clip, so it reports progress too.
        let label = format!(
            "sealing {}",
            path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into_owned()
            )
        );
        let content = Sealing::new(file, label, len, options.progress.clone());
        self.inner
            .send_content(
                &contacts,
                header,
                Box::new(content),
                &options.progress,
                true,
            )
            .await
    }
}

/// A clip file being sealed: each read is reported as progress, from
/// [`Progress::Start`] when it is made to [`Progress::Finish`] at the end
/// of the file (or when it is dropped).
struct Sealing<R> {
    inner: R,
    label: String,
    progress: ProgressFn,
    finished: bool,
}

impl<R> Sealing<R> {
    fn new(inner: R, label: String, total: u64, progress: ProgressFn) -> Self {
        progress(Progress::Start {
            label: label.clone(),
            total,
        });
        Self {
            inner,
            label,
            progress,
            finished: false,
        }
    }

    fn finish(&mut self) {
        if !self.finished {
            self.finished = true;
            (self.progress)(Progress::Finish {
                label: self.label.clone(),
            });
        }
    }
}

impl<R: Read> Read for Sealing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        match n {
            0 => self.finish(),
            n => (self.progress)(Progress::Advance {
                label: self.label.clone(),
                bytes: n as u64,
            }),
        }
        Ok(n)
    }
}

impl<R> Drop for Sealing<R> {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Inner {
    /// Seals `content` under `header` and delivers it to `contacts`;
    /// records the message (with its revocation key) if `record` is set.
    pub async fn send_content(
        &self,
        contacts: &[Contact],
        header: ClipHeader,
        content: Box<dyn Read + Send>,
        progress: &ProgressFn,
        record: bool,
    ) -> Result<SendReport, ClientError> {
        let spool_dir = self.home().dir().join("spool");
        let mut rng = {
            let mut seed = [0u8; 32];
            rand_core::Rng::fill_bytes(&mut *lock(&self.rng), &mut seed);
            ChaCha20Rng::from_seed(seed)
        };
        let mut content = content;
        let (sealed, spool) = tokio::task::spawn_blocking(move || {
            Spool::seal(&spool_dir, header, &mut *content, &mut rng)
        })
        .await
        .map_err(|e| ClientError::io("sealing", std::io::Error::other(e)))??;
        // Written ahead: a sender that dies while delivering can still
        // revoke whatever it may have deposited (CLIENT.md §4.3).
        if record {
            let pending = Sent {
                message_id: sealed.message_id(),
                header: sealed.header().clone(),
                recipients: contacts
                    .iter()
                    .map(|c| Delivery {
                        identity: c.card.identity_key(),
                        via: Via::Pending,
                    })
                    .collect(),
                created_at: sealed.header().created_at,
            };
            self.home()
                .put_sent(&pending, None, sealed.revocation_secret())?;
        }
        let mut delivered = Vec::new();
        let mut failed = Vec::new();
        for contact in contacts {
            match self.deliver(contact, &sealed, &spool, progress).await {
                Ok(d) => delivered.push(d),
                Err(e) => failed.push((contact.name.clone(), e)),
            }
        }
        // Only clips the user can revoke (recorded) are kept and served.
        if self.config.serve_sent && record && !delivered.is_empty() {
            self.hold_sent(&sealed, spool).await;
        } else {
            drop(spool);
        }
        if record && !delivered.is_empty() {
            let sent = Sent {
                message_id: sealed.message_id(),
                header: sealed.header().clone(),
                recipients: delivered
                    .iter()
                    .map(|d| Delivery {
                        identity: d.identity,
                        via: d.via.clone(),
                    })
                    .collect(),
                created_at: sealed.header().created_at,
            };
            // The content key is not kept: every recipient has its envelope.
            self.home()
                .put_sent(&sent, None, sealed.revocation_secret())?;
        } else if record {
            // Nothing was delivered: no record to revoke from.
            self.home().erase(&sealed.message_id())?;
        }
        if delivered.is_empty()
            && let Some((_, e)) = failed.pop()
        {
            return Err(e);
        }
        Ok(SendReport {
            message_id: sealed.message_id(),
            delivered,
            failed,
            ciphertext_len: sealed.manifest().ciphertext_len(),
        })
    }

    /// Sends `control` to `contact` as a control clip (not recorded).
    pub async fn send_control(
        &self,
        contact: &Contact,
        control: &Control,
    ) -> Result<(), ClientError> {
        let expires_at = self.now().plus(DEFAULT_CLIP_TTL_MS);
        self.send_control_until(contact, control, expires_at).await
    }

    /// [`Inner::send_control`] in a clip that expires at `expires_at`.
    pub async fn send_control_until(
        &self,
        contact: &Contact,
        control: &Control,
        expires_at: mayfly_protocol::UnixMillis,
    ) -> Result<(), ClientError> {
        let bytes = control.to_bytes();
        let now = self.now();
        let header = ClipHeader {
            kind: ClipKind::Clip,
            allow_save: false,
            duration_ms: 0,
            created_at: now,
            expires_at,
            content_len: bytes.len() as u64,
            parent: None,
            media_type: CONTROL_MEDIA_TYPE.to_owned(),
        };
        let report = self
            .send_content(
                std::slice::from_ref(contact),
                header,
                Box::new(std::io::Cursor::new(bytes)),
                &progress::none(),
                false,
            )
            .await?;
        match report.failed.into_iter().next() {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }
}
