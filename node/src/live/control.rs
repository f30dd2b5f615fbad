//! The local control socket of a running broadcast or watch: while `mayfly
//! live start` or `live watch` holds the home, `mayfly live comment` and
//! `mayfly followers --remove` from another terminal hand their request to
//! it here (CLIENT.md §4.7).
//!
//! A Unix socket at `HOME/live.sock`, reachable only by whoever can enter
//! the home directory. One request per connection, one line each way:
//! `comment BROADCAST TEXT\n` or `remove-follower NAME\n`, answered by
//! `ok\n` or `error REASON\n`.
//! Everything is bounded: the line's length, the time a connection may
//! take, and the requests queued for the broadcast or watch.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

/// The socket's file name in the home directory.
pub const SOCKET_FILE: &str = "live.sock";
/// The longest request line: the verb, a broadcast id and a comment of
/// `MAX_COMMENT_LEN` bytes, with room to spare.
const MAX_LINE: u64 = 1024;
/// How long one connection may take.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes read and dropped after an answer, and for how long at most.
const MAX_DRAIN: u64 = 64 << 10;
const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);
/// Requests queued for the broadcast or watch.
const QUEUE: usize = 8;

/// What a request over the socket asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request {
    /// Post a comment on the broadcast (`comment BROADCAST TEXT`).
    Comment {
        /// The broadcast id as given (hex, a prefix is enough).
        broadcast: String,
        /// The comment.
        text: String,
    },
    /// Remove a follower, rotating the key of the running broadcast
    /// (`remove-follower NAME`).
    RemoveFollower {
        /// The contact, as `mayfly` names contacts.
        name: String,
    },
    /// Follow or unfollow a contact (`follow NAME`, `unfollow NAME`): the
    /// same as `mayfly follow` and `unfollow`, from the running process.
    Follow {
        /// The contact, as `mayfly` names contacts.
        name: String,
        /// Follow (true) or unfollow (false).
        follow: bool,
    },
}

/// A request handed over the socket, and where its answer goes.
#[derive(Debug)]
pub struct ControlRequest {
    /// What is asked.
    pub request: Request,
    /// `Ok` once done, or why not.
    pub reply: oneshot::Sender<Result<(), String>>,
}

impl ControlRequest {
    /// A request and the receiver of its answer.
    pub fn new(request: Request) -> (Self, oneshot::Receiver<Result<(), String>>) {
        let (reply, answer) = oneshot::channel();
        (Self { request, reply }, answer)
    }
}

/// A control socket being served; removed from disk when dropped.
pub struct ControlSocket {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Serves the control socket of the home at `dir` (which this process has
/// locked, so a socket file left there is stale and is replaced). Requests
/// arrive on the returned receiver.
pub fn serve(dir: &Path) -> std::io::Result<(ControlSocket, mpsc::Receiver<ControlRequest>)> {
    let path = dir.join(SOCKET_FILE);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = UnixListener::bind(&path)?;
    let (tx, rx) = mpsc::channel(QUEUE);
    let task = tokio::spawn(async move {
        // One connection at a time: the socket is for one user's terminal.
        while let Ok((stream, _)) = listener.accept().await {
            if tokio::time::timeout(CONNECTION_TIMEOUT, handle(stream, &tx))
                .await
                .is_err()
            {
                tracing::debug!("control socket: a connection timed out");
            }
        }
    });
    Ok((ControlSocket { path, task }, rx))
}

async fn handle(stream: UnixStream, tx: &mpsc::Sender<ControlRequest>) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = String::new();
    let answer = match (&mut reader).take(MAX_LINE).read_line(&mut line).await {
        Err(e) => Err(format!("reading the request: {e}")),
        Ok(_) if !line.ends_with('\n') => Err("the request is too long or unterminated".into()),
        Ok(_) => match parse(line.trim_end_matches('\n')) {
            Err(e) => Err(e),
            Ok(request) => {
                let (request, answer) = ControlRequest::new(request);
                if tx.send(request).await.is_err() {
                    Err("the broadcast or watch has ended".into())
                } else {
                    answer
                        .await
                        .unwrap_or_else(|_| Err("the broadcast or watch has ended".into()))
                }
            }
        },
    };
    let reply = match answer {
        Ok(()) => "ok\n".to_owned(),
        Err(e) => format!("error {}\n", e.replace('\n', " ")),
    };
    let _ = write.write_all(reply.as_bytes()).await;
    // Read what the client sent beyond the line (a little, briefly) before
    // closing: closing with unread bytes resets the connection, and the
    // client could lose the answer.
    let _ = tokio::time::timeout(
        DRAIN_TIMEOUT,
        tokio::io::copy(&mut reader.take(MAX_DRAIN), &mut tokio::io::sink()),
    )
    .await;
}

/// `comment BROADCAST TEXT` or `remove-follower NAME`.
fn parse(line: &str) -> Result<Request, String> {
    if let Some(rest) = line.strip_prefix("comment ") {
        let (id, text) = rest
            .split_once(' ')
            .ok_or("expected: comment BROADCAST TEXT")?;
        return Ok(Request::Comment {
            broadcast: id.to_owned(),
            text: text.to_owned(),
        });
    }
    if let Some(name) = line.strip_prefix("remove-follower ") {
        return Ok(Request::RemoveFollower {
            name: name.to_owned(),
        });
    }
    for (verb, follow) in [("follow ", true), ("unfollow ", false)] {
        if let Some(name) = line.strip_prefix(verb) {
            return Ok(Request::Follow {
                name: name.to_owned(),
                follow,
            });
        }
    }
    Err("unknown request (expected: comment BROADCAST TEXT, remove-follower NAME, follow NAME or unfollow NAME)".into())
}

/// The request's line on the socket.
fn line(request: &Request) -> String {
    match request {
        Request::Comment { broadcast, text } => format!("comment {broadcast} {text}\n"),
        Request::RemoveFollower { name } => format!("remove-follower {name}\n"),
        Request::Follow { name, follow: true } => format!("follow {name}\n"),
        Request::Follow {
            name,
            follow: false,
        } => format!("unfollow {name}\n"),
    }
}

/// Why handing a comment over the control socket failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ControlError {
    /// No broadcast or watch is running in this home.
    #[error("no broadcast or watch is running in {}: {source}", dir.display())]
    NotRunning {
        /// The home.
        dir: PathBuf,
        /// Connecting failed.
        source: std::io::Error,
    },
    /// The socket answered with an error.
    #[error("{0}")]
    Refused(String),
    /// Talking to the socket failed.
    #[error("the control socket: {0}")]
    Io(#[from] std::io::Error),
}

/// Hands `request` to the broadcast or watch running in the home at `dir`.
pub async fn send(dir: &Path, request: &Request) -> Result<(), ControlError> {
    let one_line = match request {
        Request::Comment { broadcast, text } => {
            !text.contains('\n') && !broadcast.contains([' ', '\n'])
        }
        Request::RemoveFollower { name } | Request::Follow { name, .. } => !name.contains('\n'),
    };
    if !one_line {
        return Err(ControlError::Refused(
            "a request is one line, and a broadcast id has no spaces".into(),
        ));
    }
    let mut stream = UnixStream::connect(dir.join(SOCKET_FILE))
        .await
        .map_err(|source| ControlError::NotRunning {
            dir: dir.to_owned(),
            source,
        })?;
    let talk = async {
        stream.write_all(line(request).as_bytes()).await?;
        stream.shutdown().await?;
        let mut answer = String::new();
        BufReader::new(&mut stream)
            .take(MAX_LINE)
            .read_line(&mut answer)
            .await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = tokio::time::timeout(CONNECTION_TIMEOUT, talk)
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    match answer.trim_end() {
        "ok" => Ok(()),
        a => Err(ControlError::Refused(
            a.strip_prefix("error ").unwrap_or(a).to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn requests_go_through_and_their_answers_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let (_socket, mut rx) = serve(dir.path()).unwrap();
        let comment = |b: &str, t: &str| Request::Comment {
            broadcast: b.into(),
            text: t.into(),
        };
        let expected = [
            comment("9c41", "hello there"),
            comment("ffff", "hi"),
            Request::RemoveFollower { name: "bob".into() },
            Request::Follow {
                name: "carol".into(),
                follow: false,
            },
        ];
        let want = expected.clone();
        let server = tokio::spawn(async move {
            for (i, w) in want.iter().enumerate() {
                let r = rx.recv().await.unwrap();
                assert_eq!(&r.request, w);
                let answer = if i == 1 {
                    Err("not this broadcast".into())
                } else {
                    Ok(())
                };
                r.reply.send(answer).unwrap();
            }
        });
        send(dir.path(), &expected[0]).await.unwrap();
        let e = send(dir.path(), &expected[1]).await.unwrap_err();
        assert_eq!(e.to_string(), "not this broadcast");
        send(dir.path(), &expected[2]).await.unwrap();
        send(dir.path(), &expected[3]).await.unwrap();
        server.await.unwrap();
        let e = send(dir.path(), &comment("9c41", "two\nlines"))
            .await
            .unwrap_err();
        assert!(matches!(e, ControlError::Refused(_)));
    }

    #[tokio::test]
    async fn nothing_running_and_bad_requests_are_clear() {
        let dir = tempfile::tempdir().unwrap();
        let hi = Request::Comment {
            broadcast: "9c41".into(),
            text: "hi".into(),
        };
        let e = send(dir.path(), &hi).await.unwrap_err();
        assert!(matches!(e, ControlError::NotRunning { .. }), "{e}");
        // A stale socket file is replaced; garbage gets an error line.
        std::fs::write(dir.path().join(SOCKET_FILE), b"stale").unwrap();
        let (socket, _rx) = serve(dir.path()).unwrap();
        let mut s = UnixStream::connect(dir.path().join(SOCKET_FILE))
            .await
            .unwrap();
        s.write_all(b"launch missiles\n").await.unwrap();
        s.shutdown().await.unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("error unknown request"), "{answer}");
        let mut s = UnixStream::connect(dir.path().join(SOCKET_FILE))
            .await
            .unwrap();
        s.write_all(&[b'x'; 2000]).await.unwrap();
        s.shutdown().await.unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).await.unwrap();
        assert!(
            answer.starts_with("error the request is too long"),
            "{answer}"
        );
        drop(socket);
        assert!(!dir.path().join(SOCKET_FILE).exists());
    }
}
