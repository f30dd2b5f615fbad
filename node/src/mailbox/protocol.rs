//! The stream codec: one length-prefixed frame per request and per
//! response (RELAY.md §2), each decoded strictly.

use std::io;
use std::marker::PhantomData;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use libp2p::request_response;
use mayfly_protocol::codec::Codec;
use mayfly_protocol::mailbox::{MAX_FRAME_LEN, Notify, Request, Response};

use super::budget::{ByteBudget, Held, Hold};

/// A [`request_response::Codec`] for requests `Req` and responses `Resp`,
/// each one frame: `u32 length ‖ body`, `1 ≤ length ≤ MAX_FRAME_LEN`.
///
/// A length of 0 or above [`MAX_FRAME_LEN`] fails the stream before anything
/// is allocated; a stream that ends inside a frame fails it too
/// (`UnexpectedEof`); a body that does not decode strictly (trailing bytes,
/// non-canonical values, unknown types) is [`io::ErrorKind::InvalidData`].
/// Either way request_response drops the stream, which is how RELAY.md §5.5
/// wants an undecodable request answered.
///
/// With a [`ByteBudget`], an inbound request's length is taken from the
/// budget before its body is read, and the [`Held`] request carries it until
/// dropped. A response is [`Held`] too: whatever it holds (the service's
/// response budget) is given back once it has been written.
pub struct FrameCodec<Req, Resp> {
    budget: Option<ByteBudget>,
    _types: PhantomData<fn() -> (Req, Resp)>,
}

impl<Req, Resp> FrameCodec<Req, Resp> {
    /// A codec whose inbound requests hold bytes of `budget`.
    pub fn with_budget(budget: ByteBudget) -> Self {
        Self {
            budget: Some(budget),
            _types: PhantomData,
        }
    }
}

impl<Req, Resp> Default for FrameCodec<Req, Resp> {
    fn default() -> Self {
        Self {
            budget: None,
            _types: PhantomData,
        }
    }
}

impl<Req, Resp> Clone for FrameCodec<Req, Resp> {
    fn clone(&self) -> Self {
        Self {
            budget: self.budget.clone(),
            _types: PhantomData,
        }
    }
}

/// The codec of `/mayfly/relay/1`.
pub type RelayCodec = FrameCodec<Request, Response>;
/// The codec of `/mayfly/notify/1`: the relay sends a notification, the
/// owner answers [`Response::Ok`].
pub type NotifyCodec = FrameCodec<Notify, Response>;

/// Reads exactly one frame body. The length is checked before the body is
/// allocated.
pub async fn read_frame<T: AsyncRead + Unpin>(io: &mut T) -> io::Result<Vec<u8>> {
    let len = read_frame_len(io).await?;
    read_body(io, len).await
}

/// Reads and checks a frame's length prefix.
async fn read_frame_len<T: AsyncRead + Unpin>(io: &mut T) -> io::Result<usize> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    checked_len(len)
}

/// A frame's length from its prefix, if it is in `1..=MAX_FRAME_LEN`.
fn checked_len(prefix: [u8; 4]) -> io::Result<usize> {
    let len = u32::from_be_bytes(prefix) as usize;
    if len == 0 || len > MAX_FRAME_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame length {len} not in 1..={MAX_FRAME_LEN}"),
        ));
    }
    Ok(len)
}

async fn read_body<T: AsyncRead + Unpin>(io: &mut T, len: usize) -> io::Result<Vec<u8>> {
    let mut body = vec![0u8; len];
    io.read_exact(&mut body).await?;
    Ok(body)
}

/// Reads one frame and decodes it strictly. With a `budget`, the frame's
/// length is taken from it before the body is read (waiting while it is
/// spent), and the returned message holds it until dropped.
pub async fn read_held<T: AsyncRead + Unpin, M: Codec>(
    io: &mut T,
    budget: Option<&ByteBudget>,
) -> io::Result<Held<M>> {
    read_held_or_end(io, budget)
        .await?
        .ok_or_else(|| io::ErrorKind::UnexpectedEof.into())
}

/// Like [`read_held`], but `None` when the stream ends cleanly before the
/// first byte of a frame (an end inside a frame stays an error).
pub async fn read_held_or_end<T: AsyncRead + Unpin, M: Codec>(
    io: &mut T,
    budget: Option<&ByteBudget>,
) -> io::Result<Option<Held<M>>> {
    let mut prefix = [0u8; 4];
    if io.read(&mut prefix[..1]).await? == 0 {
        return Ok(None);
    }
    io.read_exact(&mut prefix[1..]).await?;
    let len = checked_len(prefix)?;
    let hold = match budget {
        Some(budget) => budget.take(len).await?,
        None => Hold::none(),
    };
    let message = read_message(io, len).await?;
    Ok(Some(Held { message, hold }))
}

/// Reads a frame body of `len` bytes and decodes it strictly. A chunk
/// frame's head and chunk are read into buffers of their own
/// ([`Codec::head_len`]), so the chunk keeps its buffer unmoved.
async fn read_message<T: AsyncRead + Unpin, M: Codec>(io: &mut T, len: usize) -> io::Result<M> {
    let mut first = [0u8; 1];
    io.read_exact(&mut first).await?;
    let head_len = M::head_len(first[0]).filter(|&h| h <= len).unwrap_or(len);
    let mut head = vec![0u8; head_len];
    head[0] = first[0];
    io.read_exact(&mut head[1..]).await?;
    if head_len == len {
        return decode_owned(head);
    }
    let tail = read_body(io, len - head_len).await?;
    M::decode_parts(&head, tail).map_err(invalid_data)
}

/// Decodes one frame body strictly.
pub fn decode<M: Codec>(body: &[u8]) -> io::Result<M> {
    M::decode(body).map_err(invalid_data)
}

/// Decodes one frame body strictly, keeping the buffer for a chunk in it
/// (no second copy of the chunk).
fn decode_owned<M: Codec>(body: Vec<u8>) -> io::Result<M> {
    M::decode_owned(body).map_err(invalid_data)
}

fn invalid_data(e: mayfly_protocol::DecodeError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

/// Writes `message` as one frame. A message whose encoding does not fit a
/// frame is refused (it could not be read back).
pub async fn write_frame<T: AsyncWrite + Unpin, M: Codec>(
    io: &mut T,
    message: &M,
) -> io::Result<()> {
    let (head, tail) = message.encode_split();
    let len = head.len() + tail.len();
    if len == 0 || len > MAX_FRAME_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("message of {len} bytes does not fit a frame"),
        ));
    }
    // The length and the head in one write, then a chunk straight from the
    // message: the chunk is never copied into a frame buffer, and a frame
    // is at most two writes (each write is a muxer frame on the wire).
    let mut first = Vec::with_capacity(4 + head.len());
    first.extend_from_slice(&(len as u32).to_be_bytes());
    first.extend_from_slice(&head);
    io.write_all(&first).await?;
    if !tail.is_empty() {
        io.write_all(tail).await?;
    }
    io.flush().await
}

impl<Req, Resp> request_response::Codec for FrameCodec<Req, Resp>
where
    Req: Codec + Send + Sync + 'static,
    Resp: Codec + Send + Sync + 'static,
{
    type Protocol = StreamProtocol;
    type Request = Held<Req>;
    type Response = Held<Resp>;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Held<Req>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_held(io, self.budget.as_ref()).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Held<Resp>>
    where
        T: AsyncRead + Unpin + Send,
    {
        let len = read_frame_len(io).await?;
        Ok(Held::outbound(read_message(io, len).await?))
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Held<Req>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, &req.message).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Held<Resp>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        // The hold is given back once the response has been written.
        write_frame(io, &res.message).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use mayfly_protocol::mailbox::{ErrorCode, encode_frame};

    fn read(bytes: &[u8]) -> io::Result<Request> {
        block_on(async {
            let mut io = bytes;
            decode(&read_frame(&mut io).await?)
        })
    }

    #[test]
    fn one_frame_round_trips() {
        let mut wire = futures::io::Cursor::new(Vec::new());
        block_on(write_frame(
            &mut wire,
            &Request::List { after: 3, limit: 5 },
        ))
        .unwrap();
        assert_eq!(
            read(wire.get_ref()).unwrap(),
            Request::List { after: 3, limit: 5 }
        );
        let mut wire = futures::io::Cursor::new(Vec::new());
        let err = Response::error(ErrorCode::NotFound, "x");
        block_on(write_frame(&mut wire, &err)).unwrap();
        let mut io = &wire.get_ref()[..];
        let back: Response =
            block_on(async { decode(&read_frame(&mut io).await.unwrap()) }).unwrap();
        assert_eq!(back, err);
    }

    #[test]
    fn an_inbound_request_holds_its_length_until_dropped() {
        use futures::FutureExt;
        use libp2p::request_response::Codec as _;

        let budget = ByteBudget::new(0);
        let mut codec = RelayCodec::with_budget(budget.clone());
        let proto = StreamProtocol::new("/t");
        let frame = encode_frame(&Request::List { after: 1, limit: 2 }.to_bytes());
        let mut io = &frame[..];
        let first = block_on(codec.read_request(&proto, &mut io)).unwrap();
        assert_eq!(first.message, Request::List { after: 1, limit: 2 });
        assert_eq!(first.hold.bytes(), frame.len() - 4);
        assert_eq!(budget.available(), MAX_FRAME_LEN - (frame.len() - 4));
        // A largest frame does not fit beside it: its body stays unread.
        let mut big = ((MAX_FRAME_LEN as u32).to_be_bytes()).to_vec();
        big.resize(4 + MAX_FRAME_LEN, 0);
        let mut io = &big[..];
        let mut second = Box::pin(codec.read_request(&proto, &mut io));
        assert!((&mut second).now_or_never().is_none());
        // Dropping the first hands its bytes to the waiting one, whose body
        // (all zero) is then read, and refused as no request.
        drop(first);
        let err = block_on(second).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(budget.available(), MAX_FRAME_LEN);
    }

    #[test]
    fn a_chunk_frame_is_read_as_head_and_chunk() {
        let put = Request::PutChunk {
            message_id: mayfly_protocol::MessageId([3; 32]),
            index: 9,
            bytes: (0..=255u8).cycle().take(5000).collect(),
        };
        let frame = encode_frame(&put.to_bytes());
        let read = |bytes: &[u8]| {
            let mut io = bytes;
            block_on(read_held::<_, Request>(&mut io, None)).map(|h| h.message)
        };
        assert_eq!(read(&frame).unwrap(), put);
        // Ending inside the chunk, or a length that claims less than the
        // frame holds, are errors as for any frame.
        let cut = read(&frame[..frame.len() - 1]).unwrap_err();
        assert_eq!(cut.kind(), io::ErrorKind::UnexpectedEof);
        let mut short = frame.clone();
        short[4 + 1 + 32 + 4 + 3] -= 1;
        assert_eq!(read(&short).unwrap_err().kind(), io::ErrorKind::InvalidData);
        // A response chunk too.
        let chunk = Response::Chunk {
            bytes: vec![7; 300],
        };
        let frame = encode_frame(&chunk.to_bytes());
        let mut io = &frame[..];
        let back = block_on(read_held::<_, Response>(&mut io, None)).unwrap();
        assert_eq!(back.message, chunk);
    }

    #[test]
    fn bad_frames_are_errors() {
        let kind = |b: &[u8]| read(b).unwrap_err().kind();
        // Empty and oversize lengths: refused on the prefix alone.
        assert_eq!(kind(&[0, 0, 0, 0]), io::ErrorKind::InvalidData);
        let over = ((MAX_FRAME_LEN + 1) as u32).to_be_bytes();
        assert_eq!(kind(&over), io::ErrorKind::InvalidData);
        assert_eq!(kind(&[0xff; 4]), io::ErrorKind::InvalidData);
        // Truncated prefix and body.
        assert_eq!(kind(&[0, 0]), io::ErrorKind::UnexpectedEof);
        assert_eq!(kind(&[0, 0, 0, 5, 1]), io::ErrorKind::UnexpectedEof);
        // Unknown type, trailing bytes.
        assert_eq!(kind(&[0, 0, 0, 1, 0x7f]), io::ErrorKind::InvalidData);
        assert_eq!(kind(&[0, 0, 0, 2, 0x01, 0]), io::ErrorKind::InvalidData);
        assert_eq!(read(&[0, 0, 0, 1, 0x01]).unwrap(), Request::Challenge);
    }
}
