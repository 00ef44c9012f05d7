//! The only socket code: size-prefixed frames, request headers, pipelined
//! requests answered strictly in order, zero-copy writes of file slices.
//!
//! Wire format (Kafka): every request and response is `size: i32 BE` followed by
//! `size` bytes. A request starts with a request header (v0: api_key i16,
//! api_version i16, correlation_id i32; v1 adds client_id nullable string; v2 adds
//! tagged fields) whose version follows from the api key and api version.
//!
//! Per connection there are three tasks' worth of work: a reader that frames and
//! queues requests (so a client may pipeline), the processing loop that handles one
//! request at a time (like Kafka, so side effects keep the client's order), and a
//! writer that sends responses in the same order. A bad frame or a handler error
//! closes only this connection.
//!
//! Security sits beneath and before dispatch, never in handlers: the [`Transport`] is
//! TCP or TLS over TCP (the TLS handshake is done by the accept loop), and on SASL
//! listeners every frame goes through the [`Authenticator`] until the client has logged
//! in. Handlers only see the resulting principal in [`ConnInfo`]. File slices go out
//! with `sendfile` on TCP (zero-copy); TLS must encrypt in user space, so there they are
//! read through a pooled buffer.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::Decodable;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, WriteHalf};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info};

use crate::error::{Error, Result};
use crate::log::FileSlice;
use crate::metrics::{self, RequestTiming};
use crate::security::sasl::{Authenticator, SaslServerConfig, Step};

/// A server-side TLS stream over TCP.
pub type TlsStream = tokio_rustls::server::TlsStream<TcpStream>;

/// The byte stream beneath a connection.
pub enum Transport {
    /// PLAINTEXT and SASL_PLAINTEXT: responses may use `sendfile`.
    Plain(TcpStream),
    /// SSL and SASL_SSL, after the TLS handshake.
    Tls(Box<TlsStream>),
}

/// One piece of a response frame: bytes in memory, or a file range sent with
/// `sendfile`. A response is `Vec<Chunk>`; the connection adds the size prefix.
#[derive(Clone, Debug)]
pub enum Chunk {
    Bytes(Bytes),
    File(FileSlice),
}

impl Chunk {
    /// Number of bytes this chunk puts on the wire.
    pub fn len(&self) -> usize {
        match self {
            Chunk::Bytes(b) => b.len(),
            Chunk::File(f) => f.len,
        }
    }

    /// True when the chunk writes nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a handler may need to know about the connection a request came in on.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    /// Listener name (e.g. `PLAINTEXT`) the client connected to; Metadata and
    /// FindCoordinator answer with endpoints of this listener.
    pub listener: Arc<str>,
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// The authenticated principal (`User:<name>`; `User:ANONYMOUS` on PLAINTEXT and on
    /// SSL without a client certificate). Set by the connection, never by handlers.
    pub principal: Arc<str>,
    /// The listener's security protocol.
    pub protocol: samsa_common::config::SecurityProtocol,
    /// Authenticated with a delegation token (SCRAM `tokenauth=true`).
    pub token_authenticated: bool,
    /// Throttle time (ms) the dispatcher charged to the request being handled (client
    /// quotas). The connection takes it after the handler returns: the response goes out
    /// at once and no further request is processed for that long (KIP-219 mute).
    pub throttle: Arc<ThrottleSlot>,
}

/// Where the request being handled leaves its throttle time for the connection.
#[derive(Debug, Default)]
pub struct ThrottleSlot(std::sync::atomic::AtomicU64);

impl ThrottleSlot {
    /// Sets the throttle time of the current request (the largest wins).
    pub fn set(&self, ms: u64) {
        self.0.fetch_max(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// Takes the throttle time, leaving 0.
    pub fn take(&self) -> u64 {
        self.0.swap(0, std::sync::atomic::Ordering::Relaxed)
    }
}

impl ConnInfo {
    /// A connection that has not authenticated (yet).
    pub fn anonymous(listener: Arc<str>, peer: SocketAddr, local: SocketAddr) -> Self {
        Self {
            listener,
            peer,
            local,
            principal: Arc::from(crate::security::principal::ANONYMOUS),
            protocol: samsa_common::config::SecurityProtocol::Plaintext,
            token_authenticated: false,
            throttle: Arc::default(),
        }
    }
}

/// Something that turns one request frame into a response. The broker's
/// implementation is [`crate::dispatch`]; tests plug in their own.
pub trait RequestHandler: Send + Sync + 'static {
    /// `body` is the request body after the header. `Ok(None)` means no response
    /// (Produce with acks=0). `Err` closes the connection.
    fn handle(
        &self,
        conn: &ConnInfo,
        header: RequestHeader,
        body: Bytes,
    ) -> impl Future<Output = Result<Option<Vec<Chunk>>>> + Send;
}

/// Limits for one connection.
#[derive(Clone, Copy, Debug)]
pub struct ConnLimits {
    /// `socket.request.max.bytes`: largest request frame accepted.
    pub max_request_bytes: usize,
    /// Requests read ahead of the one being processed.
    pub pipeline_depth: usize,
    /// `connections.max.idle.ms`: close a connection that sends no request for this long.
    pub idle_timeout: Option<std::time::Duration>,
}

impl Default for ConnLimits {
    fn default() -> Self {
        Self {
            max_request_bytes: 100 * 1024 * 1024,
            pipeline_depth: 32,
            idle_timeout: Some(std::time::Duration::from_millis(600_000)),
        }
    }
}

/// Why a frame was refused. Each one closes the connection.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("invalid frame size {0} (max {1})")]
    BadSize(i64, usize),
    #[error("request header too short")]
    ShortHeader,
    #[error("unknown api key {0}")]
    UnknownApiKey(i16),
    #[error("malformed request header: {0}")]
    BadHeader(String),
}

/// Validates a frame size prefix against the limit (Kafka closes on a negative
/// size or one above `socket.request.max.bytes`).
pub fn check_frame_size(size: i32, max: usize) -> Result<usize, FrameError> {
    if size < 0 || size as usize > max {
        return Err(FrameError::BadSize(size as i64, max));
    }
    Ok(size as usize)
}

/// Parses the request header at the front of `frame`, leaving the body in
/// `frame`. Never panics on arbitrary input.
pub fn parse_request_header(frame: &mut Bytes) -> Result<RequestHeader, FrameError> {
    if frame.len() < 8 {
        return Err(FrameError::ShortHeader);
    }
    let api_key = i16::from_be_bytes([frame[0], frame[1]]);
    let api_version = i16::from_be_bytes([frame[2], frame[3]]);
    let key = ApiKey::try_from(api_key).map_err(|_| FrameError::UnknownApiKey(api_key))?;
    let header_version = key.request_header_version(api_version);
    RequestHeader::decode(frame, header_version).map_err(|e| FrameError::BadHeader(e.to_string()))
}

/// Serves one client connection until it closes, errs, or `shutdown` flips to
/// true. On shutdown the request being processed still gets its response. With `sasl`
/// the client must authenticate before any request but ApiVersions is served.
pub async fn serve<H: RequestHandler>(
    stream: Transport,
    mut conn: ConnInfo,
    handler: Arc<H>,
    limits: ConnLimits,
    sasl: Option<Arc<SaslServerConfig>>,
    mut shutdown: watch::Receiver<bool>,
    activity: Arc<crate::quota::connections::Activity>,
) {
    let _counted = metrics::connection_opened(&conn.listener);
    // Frames carry the instant they were read, responses their request's timing (metrics).
    let (req_tx, mut req_rx) = mpsc::channel::<(Bytes, Instant)>(limits.pipeline_depth.max(1));
    let (resp_tx, resp_rx) = mpsc::channel::<Response>(limits.pipeline_depth.max(1));
    let (reader, writer) = match stream {
        Transport::Plain(tcp) => {
            let _ = tcp.set_nodelay(true);
            let (rd, wr) = tcp.into_split();
            (
                spawn_reader(rd, &conn, limits, &req_tx, &shutdown),
                spawn_writer(ResponseWriter::Plain(wr), &conn, resp_rx),
            )
        }
        Transport::Tls(tls) => {
            let _ = tls.get_ref().0.set_nodelay(true);
            let (rd, wr) = tokio::io::split(*tls);
            (
                spawn_reader(rd, &conn, limits, &req_tx, &shutdown),
                spawn_writer(ResponseWriter::Tls(wr), &conn, resp_rx),
            )
        }
    };
    drop(req_tx);
    let mut auth = sasl.map(Authenticator::new);

    loop {
        let frame = tokio::select! {
            biased;
            f = req_rx.recv() => match f { Some(f) => f, None => break },
            _ = wait_true(&mut shutdown) => break,
            _ = activity.closed() => break,
        };
        activity.touch();
        if let Some(a) = auth.as_mut() {
            let wanted = a.wants(&frame.0);
            if !wanted && a.expired(std::time::Instant::now()) {
                info!(peer = %conn.peer, listener = %conn.listener, principal = %conn.principal,
                      "closing connection: SASL session expired (connections.max.reauth.ms)");
                break;
            }
            if wanted {
                match a.on_frame(frame.0.clone()) {
                    Step::Forward => {}
                    Step::Reply(chunks) => {
                        if let Some(p) = a.principal() {
                            if *conn.principal != *p {
                                debug!(peer = %conn.peer, principal = p, "authenticated");
                                conn.principal = Arc::from(p);
                            }
                            conn.token_authenticated = a.token_authenticated();
                        }
                        if resp_tx
                            .send((with_size_prefix(chunks), None))
                            .await
                            .is_err()
                        {
                            break;
                        }
                        continue;
                    }
                    Step::ReplyAndClose(chunks, why) => {
                        info!(peer = %conn.peer, listener = %conn.listener, "{why}");
                        let _ = resp_tx.send((with_size_prefix(chunks), None)).await;
                        break;
                    }
                    Step::Close(why) => {
                        info!(peer = %conn.peer, listener = %conn.listener, "closing connection: {why}");
                        break;
                    }
                }
            }
        }
        let (result, timing) = process_one(&conn, handler.as_ref(), frame).await;
        match result {
            Ok(Some(chunks)) => {
                if resp_tx.send((chunks, timing)).await.is_err() {
                    break;
                }
            }
            Ok(None) => timing.iter().for_each(metrics::request_done),
            Err(e) => {
                timing.iter().for_each(metrics::request_done);
                debug!(peer = %conn.peer, error = %e, "closing connection");
                break;
            }
        }
        // KIP-219: the response is on its way; the channel stays muted for the throttle
        // time (Kafka 3.9 does this for every request version; old clients just wait).
        let throttle = conn.throttle.take();
        if throttle > 0 {
            debug!(peer = %conn.peer, throttle_ms = throttle, "throttling connection (client quota)");
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_millis(throttle)) => {}
                _ = wait_true(&mut shutdown) => break,
                _ = activity.closed() => break,
            }
        }
    }
    reader.abort();
    drop(resp_tx);
    // Let queued responses drain; the writer closes the socket when done.
    let _ = writer.await;
}

fn spawn_reader<R: AsyncRead + Unpin + Send + 'static>(
    mut rd: R,
    conn: &ConnInfo,
    limits: ConnLimits,
    req_tx: &mpsc::Sender<(Bytes, Instant)>,
    shutdown: &watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let peer = conn.peer;
    let mut shutdown = shutdown.clone();
    let req_tx = req_tx.clone();
    tokio::spawn(async move {
        let r = tokio::select! {
            r = read_frames(&mut rd, limits.max_request_bytes, limits.idle_timeout, &req_tx) => r,
            _ = wait_true(&mut shutdown) => Ok(()),
        };
        if let Err(e) = r {
            debug!(%peer, error = %e, "closing connection on read");
        }
    })
}

fn spawn_writer(
    wr: ResponseWriter,
    conn: &ConnInfo,
    resp_rx: mpsc::Receiver<Response>,
) -> tokio::task::JoinHandle<()> {
    let peer = conn.peer;
    tokio::spawn(async move {
        if let Err(e) = write_responses(wr, resp_rx).await {
            debug!(%peer, error = %e, "closing connection on write");
        }
    })
}

/// Prepends the `size: i32` of a response frame.
fn with_size_prefix(mut chunks: Vec<Chunk>) -> Vec<Chunk> {
    let size: usize = chunks.iter().map(Chunk::len).sum();
    chunks.insert(
        0,
        Chunk::Bytes(Bytes::copy_from_slice(&(size as i32).to_be_bytes())),
    );
    chunks
}

async fn wait_true(rx: &mut watch::Receiver<bool>) {
    if rx.wait_for(|v| *v).await.is_err() {
        // Sender gone: never shut down through this path.
        std::future::pending::<()>().await;
    }
}

/// A response frame and, when metrics are on, the timing of its request.
type Response = (Vec<Chunk>, Option<RequestTiming>);

async fn process_one<H: RequestHandler>(
    conn: &ConnInfo,
    handler: &H,
    (mut frame, received): (Bytes, Instant),
) -> (Result<Option<Vec<Chunk>>>, Option<RequestTiming>) {
    let header = match parse_request_header(&mut frame) {
        Ok(h) => h,
        Err(e) => return (Err(Error::InvalidRequest(e.to_string())), None),
    };
    let (key, version) = (header.request_api_key, header.request_api_version);
    // Boxed: the dispatch future (the largest handler's state) lives on the heap only
    // while a request is in flight, not inside every connection's task.
    let handled = Box::pin(handler.handle(conn, header, frame));
    let (result, timing) = metrics::track_request(key, version, received, handled).await;
    (result.map(|c| c.map(with_size_prefix)), timing)
}

/// Reads size-prefixed frames and queues them; returns on EOF or a bad frame.
///
/// Frames are split off one connection buffer that `read_buf` fills without zeroing, so a
/// busy connection reuses its memory instead of allocating (and faulting in) a fresh
/// buffer per request; a frame keeps its slice alive only while it is being handled.
/// The buffer starts small and doubles its read size (up to 64 KiB) each time a read fills
/// it, so 10,000 idle connections do not each hold a 64 KiB buffer while a busy one soon
/// reads in large chunks.
async fn read_frames<R: AsyncRead + Unpin>(
    rd: &mut R,
    max: usize,
    idle: Option<std::time::Duration>,
    tx: &mpsc::Sender<(Bytes, Instant)>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    const MAX_READ: usize = 64 * 1024;
    const FIRST_READ: usize = 1024;
    let mut read_size = FIRST_READ;
    let mut buf = BytesMut::new();
    loop {
        // Hand over every complete frame already buffered.
        while buf.len() >= 4 {
            let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
            let len = check_frame_size(size, max)?;
            if buf.len() < 4 + len {
                buf.reserve(4 + len - buf.len());
                break;
            }
            buf.advance(4);
            let frame = buf.split_to(len).freeze();
            if tx.send((frame, Instant::now())).await.is_err() {
                return Ok(());
            }
        }
        if buf.capacity() - buf.len() < read_size / 4 {
            buf.reserve(read_size);
        }
        let between_requests = buf.is_empty();
        let room = buf.capacity() - buf.len();
        let read = rd.read_buf(&mut buf);
        let n = match idle {
            // The idle limit applies between requests, not inside a slowly arriving one.
            Some(d) if between_requests => match tokio::time::timeout(d, read).await {
                Ok(r) => r?,
                Err(_) => return Err("idle connection closed (connections.max.idle.ms)".into()),
            },
            _ => read.await?,
        };
        if n == 0 {
            // EOF; a partial frame at EOF is dropped with the connection.
            return Ok(());
        }
        if n == room && read_size < MAX_READ {
            read_size *= 2;
        }
    }
}

/// The write side of a connection.
enum ResponseWriter {
    Plain(OwnedWriteHalf),
    Tls(WriteHalf<TlsStream>),
}

impl ResponseWriter {
    async fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        match self {
            ResponseWriter::Plain(w) => w.write_all(b).await,
            ResponseWriter::Tls(w) => w.write_all(b).await,
        }
    }

    /// TCP: `sendfile`, the bytes never enter user space. TLS: read through a pooled
    /// buffer and encrypt.
    async fn write_file(&mut self, slice: &FileSlice) -> io::Result<()> {
        match self {
            ResponseWriter::Plain(w) => crate::sendfile::send_file_slice(w.as_ref(), slice).await,
            ResponseWriter::Tls(w) => {
                let mut buf = FileBuf::take();
                let mut pos = slice.position;
                let mut remaining = slice.len;
                while remaining > 0 {
                    let n = remaining.min(buf.0.len());
                    read_exact_at(&slice.file, &mut buf.0[..n], pos)?;
                    w.write_all(&buf.0[..n]).await?;
                    pos += n as u64;
                    remaining -= n;
                }
                Ok(())
            }
        }
    }

    /// TLS keeps encrypted records queued until flushed; TCP has nothing to flush.
    async fn flush(&mut self) -> io::Result<()> {
        match self {
            ResponseWriter::Plain(_) => Ok(()),
            ResponseWriter::Tls(w) => w.flush().await,
        }
    }

    async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            ResponseWriter::Plain(w) => w.shutdown().await,
            ResponseWriter::Tls(w) => w.shutdown().await,
        }
    }
}

/// Reads `buf.len()` bytes at `pos`; a file shorter than the slice (truncated underneath
/// us) is `UnexpectedEof` and closes the connection, as the sendfile path does.
fn read_exact_at(file: &std::fs::File, buf: &mut [u8], pos: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    // The segment pages are almost always in the page cache (just written or read
    // ahead), so this is a memory copy, not a disk wait.
    file.read_exact_at(buf, pos)
}

/// Buffers for TLS fetch responses, shared by all connections so that a broker with
/// many TLS consumers keeps a bounded set of warm buffers instead of one per response.
static FILE_BUFS: std::sync::Mutex<Vec<Vec<u8>>> = std::sync::Mutex::new(Vec::new());
const FILE_BUF_SIZE: usize = 256 * 1024;
const FILE_BUFS_KEPT: usize = 64;

struct FileBuf(Vec<u8>);

impl FileBuf {
    fn take() -> Self {
        let pooled = FILE_BUFS.lock().ok().and_then(|mut p| p.pop());
        FileBuf(pooled.unwrap_or_else(|| vec![0u8; FILE_BUF_SIZE]))
    }
}

impl Drop for FileBuf {
    fn drop(&mut self) {
        if let Ok(mut p) = FILE_BUFS.lock() {
            if p.len() < FILE_BUFS_KEPT {
                p.push(std::mem::take(&mut self.0));
            }
        }
    }
}

/// Writes each response in order: memory chunks are coalesced into one buffer,
/// file chunks go out with `sendfile` (TCP) or through a pooled buffer (TLS).
async fn write_responses(
    mut wr: ResponseWriter,
    mut rx: mpsc::Receiver<Response>,
) -> io::Result<()> {
    const COALESCE: usize = 64 * 1024;
    const KEEP_PENDING: usize = 8 * 1024;
    let mut pending = BytesMut::new();
    while let Some((chunks, timing)) = rx.recv().await {
        let dequeued = timing.as_ref().map(|_| Instant::now());
        for chunk in chunks {
            match chunk {
                Chunk::Bytes(b) => {
                    if pending.len() + b.len() > COALESCE && !pending.is_empty() {
                        wr.write_all(&pending).await?;
                        pending.clear();
                    }
                    if b.len() >= COALESCE {
                        wr.write_all(&b).await?;
                    } else {
                        pending.extend_from_slice(&b);
                    }
                }
                Chunk::File(slice) => {
                    if !pending.is_empty() {
                        wr.write_all(&pending).await?;
                        pending.clear();
                    }
                    wr.write_file(&slice).await?;
                }
            }
        }
        // Flush at the end of a response unless more responses are queued.
        if rx.is_empty() {
            if !pending.is_empty() {
                wr.write_all(&pending).await?;
                pending.clear();
            }
            // A large response leaves no large buffer behind on an idle connection.
            if pending.capacity() > KEEP_PENDING {
                pending = BytesMut::new();
            }
            wr.flush().await?;
        }
        if let (Some(t), Some(dequeued)) = (&timing, dequeued) {
            metrics::request_sent(t, dequeued);
        }
    }
    if !pending.is_empty() {
        wr.write_all(&pending).await?;
    }
    wr.shutdown().await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use kafka_protocol::protocol::Encodable;
    use proptest::prelude::*;

    proptest! {
        /// In-process twin of the cargo-fuzz target: arbitrary frames never panic.
        #[test]
        fn header_parse_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut b = Bytes::from(data);
            let _ = parse_request_header(&mut b);
        }

        /// Frames that start with a valid key/version still never panic.
        #[test]
        fn header_parse_known_prefix(key in 0i16..90, version in -2i16..20,
                                     rest in proptest::collection::vec(any::<u8>(), 0..48)) {
            let mut data = key.to_be_bytes().to_vec();
            data.extend_from_slice(&version.to_be_bytes());
            data.extend_from_slice(&rest);
            let mut b = Bytes::from(data);
            let _ = parse_request_header(&mut b);
        }

        /// Request bodies of arbitrary bytes never panic or abort the decoder
        /// (array counts are not trusted for allocation; see vendor/README.md).
        #[test]
        fn body_decode_never_panics(version in 0i16..13, count in any::<i32>(),
                                    rest in proptest::collection::vec(any::<u8>(), 0..64)) {
            use kafka_protocol::messages::*;
            let mut data = count.to_be_bytes().to_vec();
            data.extend_from_slice(&rest);
            let b = Bytes::from(data);
            let _ = MetadataRequest::decode(&mut b.clone(), version);
            let _ = ProduceRequest::decode(&mut b.clone(), version.min(11));
            let _ = FetchRequest::decode(&mut b.clone(), version);
            let _ = UpdateMetadataRequest::decode(&mut b.clone(), version.min(8));
            let _ = LeaderAndIsrRequest::decode(&mut b.clone(), version.min(7));
            let _ = StopReplicaRequest::decode(&mut b.clone(), version.min(4));
            let _ = ApiVersionsRequest::decode(&mut b.clone(), version.min(4));
        }

        /// Encoded headers parse back, leaving the body untouched.
        #[test]
        fn header_roundtrip(key in 0i16..69, version in 0i16..12, corr in any::<i32>(),
                            client in proptest::option::of("[a-z0-9.-]{0,20}"),
                            body in proptest::collection::vec(any::<u8>(), 0..16)) {
            let api = ApiKey::try_from(key);
            prop_assume!(api.is_ok());
            let hv = api.unwrap().request_header_version(version);
            let mut h = RequestHeader::default();
            h.request_api_key = key;
            h.request_api_version = version;
            h.correlation_id = corr;
            h.client_id = if hv >= 1 { client.map(Into::into) } else { None };
            let mut buf = BytesMut::new();
            h.encode(&mut buf, hv).unwrap();
            buf.extend_from_slice(&body);
            let mut b = buf.freeze();
            let mut parsed = parse_request_header(&mut b).unwrap();
            if hv == 0 {
                // Header v0 (ControlledShutdown v0) has no client id on the wire.
                parsed.client_id = None;
            }
            prop_assert_eq!(parsed, h);
            prop_assert_eq!(&b[..], &body[..]);
        }
    }

    #[test]
    fn frame_size_limits() {
        assert_eq!(check_frame_size(0, 10), Ok(0));
        assert_eq!(check_frame_size(10, 10), Ok(10));
        assert!(check_frame_size(11, 10).is_err());
        assert!(check_frame_size(-1, 10).is_err());
        assert!(check_frame_size(i32::MIN, usize::MAX).is_err());
    }
}
