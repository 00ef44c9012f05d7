//! A small Kafka-protocol client (framing, correlation ids, ApiVersions) used by the
//! controller's broker channels, the replica fetcher and tests.
//!
//! One TCP connection; requests are pipelined: every `send` registers its
//! correlation id, hands a frame to a writer task and awaits the reader task, which
//! matches responses to callers by correlation id (so out-of-order answers are fine).
//! Wire format: `int32 size` + request header (v0/v1/v2 by API version, from
//! kafka-protocol) + body; responses `int32 size` + response header (v0, or v1 for
//! flexible versions; ApiVersions is always v0) + body.
//!
//! When the connection fails every pending and future request gets
//! [`Error::Disconnected`]; callers reconnect by building a new client.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::error::{Error, Result};

/// Largest response frame we accept (protects against garbage lengths).
const MAX_FRAME: usize = 1 << 30;
/// UNSUPPORTED_VERSION error code.
const UNSUPPORTED_VERSION: i16 = 35;

/// Options for [`KafkaClient::connect_with`].
#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub client_id: Option<String>,
    pub connect_timeout: Duration,
    /// Per-request deadline for [`KafkaClient::send`]; `None` = wait forever.
    pub request_timeout: Option<Duration>,
    /// TLS and SASL for the connection (`None` = PLAINTEXT).
    pub security: Option<Arc<crate::security::client::ClientSecurity>>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            client_id: Some("samsa".to_string()),
            connect_timeout: Duration::from_secs(30),
            request_timeout: Some(Duration::from_secs(30)),
            security: None,
        }
    }
}

type Pending = HashMap<i32, (i16, oneshot::Sender<Result<Bytes>>)>;

struct Shared {
    addr: String,
    pending: Mutex<Pending>,
    closed: AtomicBool,
}

impl Shared {
    fn fail_all(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let drained: Vec<_> = match self.pending.lock() {
            Ok(mut p) => p.drain().collect(),
            Err(_) => Vec::new(),
        };
        for (_, (_, tx)) in drained {
            let _ = tx.send(Err(Error::Disconnected(self.addr.clone())));
        }
    }
}

struct Inner {
    shared: Arc<Shared>,
    writer: mpsc::UnboundedSender<Bytes>,
    next_correlation: AtomicI32,
    options: ClientOptions,
    versions: Mutex<Option<HashMap<i16, (i16, i16)>>>,
    tasks: [JoinHandle<()>; 2],
}

impl Drop for Inner {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// An async Kafka-protocol connection. Cheap to clone (clones share the socket).
#[derive(Clone)]
pub struct KafkaClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for KafkaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaClient")
            .field("addr", &self.inner.shared.addr)
            .finish()
    }
}

impl KafkaClient {
    /// Connect with default options (client id `samsa`, 30 s timeouts).
    pub async fn connect(addr: &str) -> Result<Self> {
        Self::connect_with(addr, ClientOptions::default()).await
    }

    /// Connect to `host:port`.
    pub async fn connect_with(addr: &str, options: ClientOptions) -> Result<Self> {
        let client_id = options.client_id.clone().unwrap_or_default();
        let stream = crate::security::client::connect(
            addr,
            options.security.as_deref(),
            &client_id,
            options.connect_timeout,
        )
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::TimedOut => Error::Timeout(e.to_string()),
            _ => Error::Connect {
                addr: addr.to_string(),
                message: e.to_string(),
            },
        })?;
        let (mut rd, mut wr) = tokio::io::split(stream);
        let shared = Arc::new(Shared {
            addr: addr.to_string(),
            pending: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
        });
        let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();

        let wshared = shared.clone();
        let writer = tokio::spawn(async move {
            while let Some(frame) = rx.recv().await {
                if wr.write_all(&frame).await.is_err() {
                    break;
                }
            }
            let _ = wr.shutdown().await;
            wshared.fail_all();
        });

        let rshared = shared.clone();
        let reader = tokio::spawn(async move {
            while let Ok(len) = rd.read_i32().await {
                if len < 4 || len as usize > MAX_FRAME {
                    tracing::warn!(addr = %rshared.addr, len, "bad response frame size");
                    break;
                }
                let mut buf = BytesMut::zeroed(len as usize);
                if rd.read_exact(&mut buf).await.is_err() {
                    break;
                }
                let mut frame = buf.freeze();
                let correlation = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
                let entry = match rshared.pending.lock() {
                    Ok(mut p) => p.remove(&correlation),
                    Err(_) => None,
                };
                let Some((header_version, tx)) = entry else {
                    // Timed-out or unknown request: drop the answer.
                    continue;
                };
                let result = ResponseHeader::decode(&mut frame, header_version)
                    .map(|_| frame)
                    .map_err(|e| Error::Protocol(format!("response header: {e}")));
                let _ = tx.send(result);
            }
            rshared.fail_all();
        });

        Ok(Self {
            inner: Arc::new(Inner {
                shared,
                writer: tx,
                next_correlation: AtomicI32::new(0),
                options,
                versions: Mutex::new(None),
                tasks: [writer, reader],
            }),
        })
    }

    /// The address this client connected to.
    pub fn addr(&self) -> &str {
        &self.inner.shared.addr
    }

    /// True once the connection failed or was closed.
    pub fn is_closed(&self) -> bool {
        self.inner.shared.closed.load(Ordering::SeqCst)
    }

    /// Send a typed request at `version` and await its typed response.
    pub async fn send<R: Request>(&self, req: &R, version: i16) -> Result<R::Response> {
        let mut body = self
            .send_inner(
                R::KEY,
                version,
                R::header_version(version),
                R::Response::header_version(version),
                |buf| req.encode(buf, version),
                true,
            )
            .await?
            .ok_or_else(|| Error::Protocol("missing response".into()))?;
        R::Response::decode(&mut body, version).map_err(|e| {
            Error::Protocol(format!(
                "decoding {:?} v{version} response: {e}",
                api_name(R::KEY)
            ))
        })
    }

    /// Send a request that gets no response (Produce with acks=0).
    pub async fn send_no_response<R: Request>(&self, req: &R, version: i16) -> Result<()> {
        self.send_inner(
            R::KEY,
            version,
            R::header_version(version),
            0,
            |buf| req.encode(buf, version),
            false,
        )
        .await
        .map(|_| ())
    }

    /// Send pre-encoded body bytes; returns the response body after its header.
    pub async fn send_raw(&self, api_key: ApiKey, version: i16, body: &[u8]) -> Result<Bytes> {
        let req_hv = api_key.request_header_version(version);
        let resp_hv = api_key.response_header_version(version);
        self.send_inner(
            api_key as i16,
            version,
            req_hv,
            resp_hv,
            |buf| {
                buf.put_slice(body);
                Ok(())
            },
            true,
        )
        .await?
        .ok_or_else(|| Error::Protocol("missing response".into()))
    }

    async fn send_inner(
        &self,
        api_key: i16,
        version: i16,
        request_header_version: i16,
        response_header_version: i16,
        encode_body: impl FnOnce(&mut BytesMut) -> anyhow::Result<()>,
        expect_response: bool,
    ) -> Result<Option<Bytes>> {
        if self.is_closed() {
            return Err(Error::Disconnected(self.inner.shared.addr.clone()));
        }
        let correlation = self.inner.next_correlation.fetch_add(1, Ordering::Relaxed) & i32::MAX;
        let header = RequestHeader::default()
            .with_request_api_key(api_key)
            .with_request_api_version(version)
            .with_correlation_id(correlation)
            .with_client_id(
                self.inner
                    .options
                    .client_id
                    .clone()
                    .map(StrBytes::from_string),
            );
        let mut buf = BytesMut::with_capacity(256);
        buf.put_i32(0);
        header
            .encode(&mut buf, request_header_version)
            .map_err(|e| Error::Protocol(format!("encoding request header: {e}")))?;
        encode_body(&mut buf).map_err(|e| {
            Error::Protocol(format!(
                "encoding {:?} v{version} request: {e}",
                api_name(api_key)
            ))
        })?;
        let size = (buf.len() - 4) as i32;
        buf[0..4].copy_from_slice(&size.to_be_bytes());

        let rx = if expect_response {
            let (tx, rx) = oneshot::channel();
            self.inner
                .shared
                .pending
                .lock()
                .map_err(|_| Error::Other("client state poisoned".into()))?
                .insert(correlation, (response_header_version, tx));
            Some(rx)
        } else {
            None
        };
        if self.inner.writer.send(buf.freeze()).is_err() {
            self.forget(correlation);
            return Err(Error::Disconnected(self.inner.shared.addr.clone()));
        }
        // The reader may have failed between the closed check and the insert.
        if self.is_closed() {
            self.forget(correlation);
            return Err(Error::Disconnected(self.inner.shared.addr.clone()));
        }
        let Some(rx) = rx else { return Ok(None) };
        let wait = async {
            match rx.await {
                Ok(r) => r.map(Some),
                Err(_) => Err(Error::Disconnected(self.inner.shared.addr.clone())),
            }
        };
        match self.inner.options.request_timeout {
            None => wait.await,
            Some(t) => match tokio::time::timeout(t, wait).await {
                Ok(r) => r,
                Err(_) => {
                    self.forget(correlation);
                    Err(Error::Timeout(format!(
                        "{:?} v{version} request to {}",
                        api_name(api_key),
                        self.inner.shared.addr
                    )))
                }
            },
        }
    }

    fn forget(&self, correlation: i32) {
        if let Ok(mut p) = self.inner.shared.pending.lock() {
            p.remove(&correlation);
        }
    }

    /// Ask the peer which API versions it supports, remember them for
    /// [`KafkaClient::negotiate`], and return the raw response. Tries v3, falls back to v0
    /// when the peer answers UNSUPPORTED_VERSION.
    pub async fn api_versions(&self) -> Result<ApiVersionsResponse> {
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("samsa"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let mut resp = self.send(&req, 3).await?;
        if resp.error_code == UNSUPPORTED_VERSION {
            resp = self.send(&ApiVersionsRequest::default(), 0).await?;
        }
        if resp.error_code != 0 {
            return Err(Error::Protocol(format!(
                "ApiVersions failed with error code {}",
                resp.error_code
            )));
        }
        let map = resp
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        if let Ok(mut v) = self.inner.versions.lock() {
            *v = Some(map);
        }
        Ok(resp)
    }

    /// Highest version of `R` that both we (kafka-protocol's range, capped at `max`) and the
    /// peer support. Calls ApiVersions on first use.
    pub async fn negotiate<R: Request>(&self, max: i16) -> Result<i16> {
        let known = self.inner.versions.lock().ok().and_then(|v| v.clone());
        let map = match known {
            Some(m) => m,
            None => {
                self.api_versions().await?;
                self.inner
                    .versions
                    .lock()
                    .ok()
                    .and_then(|v| v.clone())
                    .unwrap_or_default()
            }
        };
        let (peer_min, peer_max) = map.get(&R::KEY).copied().ok_or_else(|| {
            Error::UnsupportedVersion(format!("peer does not support {:?}", api_name(R::KEY)))
        })?;
        let ours = R::VERSIONS;
        let hi = peer_max.min(ours.max).min(max);
        let lo = peer_min.max(ours.min);
        if hi < lo {
            return Err(Error::UnsupportedVersion(format!(
                "{:?}: peer {peer_min}..={peer_max}, ours {}..={}",
                api_name(R::KEY),
                ours.min,
                ours.max.min(max)
            )));
        }
        Ok(hi)
    }
}

fn api_name(key: i16) -> String {
    match ApiKey::try_from(key) {
        Ok(k) => format!("{k:?}"),
        Err(_) => format!("api key {key}"),
    }
}

/// Read one size-prefixed frame from a byte buffer (helper for tests/servers that
/// buffer input themselves). Returns `None` if the frame is incomplete.
pub fn split_frame(buf: &mut BytesMut) -> Option<Bytes> {
    if buf.len() < 4 {
        return None;
    }
    let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if len < 0 || buf.len() < 4 + len as usize {
        return None;
    }
    buf.advance(4);
    Some(buf.split_to(len as usize).freeze())
}

#[cfg(test)]
mod tests;
