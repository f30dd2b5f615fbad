//! Who is watching and what they say: the chat messages a peer's chat gate
//! accepted (LIVE.md §12), turned into joins, leaves and comments. The
//! broadcaster and every viewer keep one.

use mayfly_protocol::UnixMillis;
use mayfly_protocol::keys::SigningPublicKey;
use mayfly_protocol::live::chat::{Chat, ChatKind, ViewerChange, ViewerList};

/// Who a chat message names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speaker {
    /// A signed message: the sender's identity.
    Named(SigningPublicKey),
    /// An anonymous viewer (unsigned joins and leaves).
    Anonymous,
}

impl From<Option<SigningPublicKey>> for Speaker {
    fn from(id: Option<SigningPublicKey>) -> Self {
        id.map_or(Speaker::Anonymous, Speaker::Named)
    }
}

/// A change in the audience, or a comment.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AudienceEvent {
    /// A viewer started watching.
    Joined(Speaker),
    /// A viewer left, or went silent for `PRESENCE_TIMEOUT_MS`.
    Left(Speaker),
    /// A comment (always signed).
    Comment {
        /// Its author.
        from: SigningPublicKey,
        /// Its text (no control characters: safe to print).
        text: String,
        /// When it was sent, by the author's clock.
        sent_at: UnixMillis,
    },
}

/// The viewer list and the comments of one broadcast, as seen from one peer.
#[derive(Debug, Default)]
pub struct Audience {
    list: ViewerList,
}

impl Audience {
    /// An empty audience.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes in a chat message the gate accepted at `now`.
    pub fn observe(&mut self, chat: &Chat, now: UnixMillis) -> Vec<AudienceEvent> {
        let mut out: Vec<AudienceEvent> = self
            .list
            .observe(chat, now)
            .into_iter()
            .filter_map(change_event)
            .collect();
        if chat.body.kind == ChatKind::Comment
            && let Some(from) = chat.identity()
        {
            out.push(AudienceEvent::Comment {
                from,
                text: chat.body.text.clone(),
                sent_at: chat.body.sent_at,
            });
        }
        out
    }

    /// Ends the watches silent for too long.
    pub fn expire(&mut self, now: UnixMillis) -> Vec<AudienceEvent> {
        self.list
            .expire(now)
            .into_iter()
            .filter_map(change_event)
            .collect()
    }

    /// Who is watching now: named identities, and anonymous watches.
    pub fn present(&self) -> (Vec<SigningPublicKey>, usize) {
        self.list.present()
    }

    /// Everyone who watched: named identities in the order they joined,
    /// and how many anonymous watches there were.
    pub fn ever(&self) -> (Vec<SigningPublicKey>, u64) {
        let (named, anonymous) = self.list.ever();
        (named.to_vec(), anonymous)
    }
}

fn change_event(c: ViewerChange) -> Option<AudienceEvent> {
    match c {
        ViewerChange::Joined(id) => Some(AudienceEvent::Joined(id.into())),
        ViewerChange::Left(id) => Some(AudienceEvent::Left(id.into())),
        _ => None,
    }
}
