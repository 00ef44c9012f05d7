//! In-process network tests on 127.0.0.1:0: framing limits, garbage frames,
//! pipelining order, ApiVersions answers, sendfile of file slices, drain.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse, RequestHeader};
use kafka_protocol::protocol::{Decodable, Encodable};
use samsa_broker::connection::{Chunk, ConnInfo, ConnLimits, RequestHandler};
use samsa_broker::dispatch::{version_table, Dispatcher};
use samsa_broker::error::Result;
use samsa_broker::log::FileSlice;
use samsa_broker::server::{self, BoundListener, ServerLimits};
use samsa_common::config::{BrokerConfig, Endpoint, SecurityProtocol};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const DEADLINE: Duration = Duration::from_secs(20);

/// Test handler: api key 0 echoes the body; api key 1 returns the file slice
/// described by the body (u64 position, u64 len) sandwiched between two markers;
/// the first body byte of key 0 is a delay in ms, to shuffle completion times.
struct TestHandler {
    file: Arc<std::fs::File>,
}

impl RequestHandler for TestHandler {
    async fn handle(
        &self,
        _conn: &ConnInfo,
        header: RequestHeader,
        mut body: Bytes,
    ) -> Result<Option<Vec<Chunk>>> {
        let mut out = BytesMut::new();
        out.extend_from_slice(&header.correlation_id.to_be_bytes());
        match header.request_api_key {
            0 => {
                if let Some(&d) = body.first() {
                    tokio::time::sleep(Duration::from_millis(d as u64)).await;
                }
                out.extend_from_slice(&body);
                Ok(Some(vec![Chunk::Bytes(out.freeze())]))
            }
            1 => {
                let position = body.get_u64();
                let len = body.get_u64() as usize;
                out.extend_from_slice(b"<<");
                Ok(Some(vec![
                    Chunk::Bytes(out.freeze()),
                    Chunk::File(FileSlice {
                        file: self.file.clone(),
                        position,
                        len,
                    }),
                    Chunk::Bytes(Bytes::from_static(b">>")),
                ]))
            }
            _ => Ok(None),
        }
    }
}

struct Harness {
    addr: std::net::SocketAddr,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    _file: tempfile::NamedTempFile,
    data: Vec<u8>,
}

async fn start_test_server(max_request_bytes: usize) -> Harness {
    start_test_server_idle(max_request_bytes, None).await
}

async fn start_test_server_idle(max_request_bytes: usize, idle: Option<Duration>) -> Harness {
    let data: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(&data).unwrap();
    f.flush().unwrap();
    let file = Arc::new(f.reopen().unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = watch::channel(false);
    let limits = ServerLimits {
        conn: ConnLimits {
            max_request_bytes,
            pipeline_depth: 8,
            idle_timeout: idle,
        },
        connections: samsa_broker::quota::connections::ConnectionLimits {
            max_connections: 64,
            ..Default::default()
        },
        quotas: None,
        drain_timeout: Duration::from_secs(5),
    };
    let task = tokio::spawn(server::run(
        vec![BoundListener {
            name: Arc::from("PLAINTEXT"),
            listener,
            security: None,
        }],
        Arc::new(TestHandler { file }),
        limits,
        rx,
    ));
    Harness {
        addr,
        shutdown: tx,
        task,
        _file: f,
        data,
    }
}

fn frame(api_key: i16, version: i16, corr: i32, body: &[u8]) -> Vec<u8> {
    let mut h = RequestHeader::default();
    h.request_api_key = api_key;
    h.request_api_version = version;
    h.correlation_id = corr;
    h.client_id = Some("test".into());
    let mut buf = BytesMut::new();
    let hv = kafka_protocol::messages::ApiKey::try_from(api_key)
        .unwrap()
        .request_header_version(version);
    h.encode(&mut buf, hv).unwrap();
    buf.extend_from_slice(body);
    let mut out = (buf.len() as i32).to_be_bytes().to_vec();
    out.extend_from_slice(&buf);
    out
}

async fn read_frame(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await?;
    let mut buf = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).await?;
    Ok(buf)
}

/// True once the peer has closed the connection (EOF or reset).
async fn closed_by_peer(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!(
        tokio::time::timeout(DEADLINE, s.read(&mut b)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

#[tokio::test]
async fn oversized_frame_closes_only_that_connection() {
    let h = start_test_server(1024).await;
    let mut good = TcpStream::connect(h.addr).await.unwrap();
    let mut bad = TcpStream::connect(h.addr).await.unwrap();
    bad.write_all(&2000i32.to_be_bytes()).await.unwrap();
    assert!(closed_by_peer(&mut bad).await);

    // Exactly at the limit is fine.
    let body = vec![0u8; 1024 - 14];
    let f = frame(0, 0, 5, &body);
    assert_eq!(f.len() - 4, 1024);
    good.write_all(&f).await.unwrap();
    let resp = tokio::time::timeout(DEADLINE, read_frame(&mut good))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&resp[..4], &5i32.to_be_bytes());
    assert_eq!(resp.len(), 4 + body.len());
}

#[tokio::test]
async fn garbage_frames_close_the_connection() {
    let h = start_test_server(1 << 20).await;
    // Negative size.
    let mut s = TcpStream::connect(h.addr).await.unwrap();
    s.write_all(&(-5i32).to_be_bytes()).await.unwrap();
    assert!(closed_by_peer(&mut s).await);
    // Unknown api key.
    let mut s = TcpStream::connect(h.addr).await.unwrap();
    let mut f = 8i32.to_be_bytes().to_vec();
    f.extend_from_slice(&[0x7f, 0x00, 0, 0, 0, 0, 0, 1]);
    s.write_all(&f).await.unwrap();
    assert!(closed_by_peer(&mut s).await);
    // Header shorter than 8 bytes.
    let mut s = TcpStream::connect(h.addr).await.unwrap();
    s.write_all(&[0, 0, 0, 3, 0, 0, 0]).await.unwrap();
    assert!(closed_by_peer(&mut s).await);
    // Client id length runs past the frame.
    let mut s = TcpStream::connect(h.addr).await.unwrap();
    let mut f = 10i32.to_be_bytes().to_vec();
    f.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 0xff]);
    s.write_all(&f).await.unwrap();
    assert!(closed_by_peer(&mut s).await);
    // The server still serves new connections.
    let mut s = TcpStream::connect(h.addr).await.unwrap();
    s.write_all(&frame(0, 0, 9, b"")).await.unwrap();
    let resp = read_frame(&mut s).await.unwrap();
    assert_eq!(resp, 9i32.to_be_bytes());
}

#[tokio::test]
async fn pipelined_requests_answered_in_order() {
    let h = start_test_server(1 << 20).await;
    let mut s = TcpStream::connect(h.addr).await.unwrap();
    let mut all = Vec::new();
    for i in 0..40i32 {
        // Earlier requests take longer.
        let delay = (40 - i) as u8 / 4;
        all.extend_from_slice(&frame(0, 0, i, &[delay, i as u8]));
    }
    // One request with no response (acks=0 style) in the middle.
    all.extend_from_slice(&frame(2, 0, 1000, b""));
    all.extend_from_slice(&frame(0, 0, 40, &[0, 40]));
    s.write_all(&all).await.unwrap();
    for i in 0..=40i32 {
        let resp = tokio::time::timeout(DEADLINE, read_frame(&mut s))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&resp[..4], &i.to_be_bytes());
        assert_eq!(resp[5], i as u8);
    }
}

#[tokio::test]
async fn sendfile_slices_reach_a_slow_reader() {
    let h = start_test_server(1 << 20).await;
    let mut s = TcpStream::connect(h.addr).await.unwrap();
    let position = 12345u64;
    let len = 6 * 1024 * 1024u64;
    let mut body = position.to_be_bytes().to_vec();
    body.extend_from_slice(&len.to_be_bytes());
    s.write_all(&frame(1, 0, 77, &body)).await.unwrap();
    // A second request pipelined behind the big one.
    s.write_all(&frame(0, 0, 78, &[0, 1, 2])).await.unwrap();

    let mut size = [0u8; 4];
    s.read_exact(&mut size).await.unwrap();
    let size = i32::from_be_bytes(size) as usize;
    assert_eq!(size, 4 + 2 + len as usize + 2);
    // Read slowly in small pieces so the server hits EAGAIN / partial sends.
    let mut got = Vec::with_capacity(size);
    let mut buf = vec![0u8; 64 * 1024];
    let mut reads = 0;
    while got.len() < size {
        let want = buf.len().min(size - got.len());
        let n = tokio::time::timeout(DEADLINE, s.read(&mut buf[..want]))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "connection closed early");
        got.extend_from_slice(&buf[..n]);
        reads += 1;
        if reads % 16 == 0 {
            tokio::task::yield_now().await;
        }
    }
    assert_eq!(&got[..4], &77i32.to_be_bytes());
    assert_eq!(&got[4..6], b"<<");
    let p = position as usize;
    assert!(got[6..6 + len as usize] == h.data[p..p + len as usize]);
    assert_eq!(&got[size - 2..], b">>");
    let next = read_frame(&mut s).await.unwrap();
    assert_eq!(next, [0, 0, 0, 78, 0, 1, 2]);
}

#[tokio::test]
async fn slice_past_end_of_file_closes_connection() {
    let h = start_test_server(1 << 20).await;
    let mut s = TcpStream::connect(h.addr).await.unwrap();
    let mut body = (h.data.len() as u64 - 10).to_be_bytes().to_vec();
    body.extend_from_slice(&100u64.to_be_bytes());
    s.write_all(&frame(1, 0, 1, &body)).await.unwrap();
    // We get size, correlation id, marker and the 10 bytes that exist; then the
    // connection closes instead of sending a corrupt response.
    let mut got = Vec::new();
    let _ = tokio::time::timeout(DEADLINE, s.read_to_end(&mut got))
        .await
        .unwrap();
    assert_eq!(got.len(), 4 + 4 + 2 + 10);
    assert_eq!(&got[10..], &h.data[h.data.len() - 10..]);
}

#[tokio::test]
async fn shutdown_drains_in_flight_request() {
    let h = start_test_server(1 << 20).await;
    let mut s = TcpStream::connect(h.addr).await.unwrap();
    // 200 ms of work in flight when shutdown starts.
    s.write_all(&frame(0, 0, 3, &[200])).await.unwrap();
    // Wait until the server has read the frame: a second connection's answer
    // proves the accept loop and reader ran.
    let mut probe = TcpStream::connect(h.addr).await.unwrap();
    probe.write_all(&frame(0, 0, 4, &[0])).await.unwrap();
    read_frame(&mut probe).await.unwrap();
    h.shutdown.send(true).unwrap();
    let resp = tokio::time::timeout(DEADLINE, read_frame(&mut s))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&resp[..4], &3i32.to_be_bytes());
    assert!(closed_by_peer(&mut s).await);
    tokio::time::timeout(DEADLINE, h.task)
        .await
        .unwrap()
        .unwrap();
    assert!(TcpStream::connect(h.addr).await.is_err());
}

// ---------------------------------------------------------------- real dispatch

fn test_config() -> BrokerConfig {
    let props = std::collections::HashMap::from([
        ("broker.id".to_string(), "1".to_string()),
        ("zookeeper.connect".to_string(), "127.0.0.1:1".to_string()),
        (
            "listeners".to_string(),
            "PLAINTEXT://127.0.0.1:0".to_string(),
        ),
        (
            "log.dirs".to_string(),
            "/tmp/samsa-net-test-unused".to_string(),
        ),
    ]);
    BrokerConfig::from_props(&props).unwrap()
}

async fn start_dispatch_server() -> (std::net::SocketAddr, watch::Sender<bool>) {
    let config = Arc::new(test_config());
    let listeners = server::bind(&config.listeners).await.unwrap();
    let addr = listeners[0].local_addr().unwrap();
    let advertised = vec![Endpoint {
        name: "PLAINTEXT".into(),
        host: "127.0.0.1".into(),
        port: addr.port(),
        security_protocol: SecurityProtocol::Plaintext,
    }];
    let ctx = Arc::new(samsa_broker::broker::BrokerContext::new(config, advertised));
    let (tx, rx) = watch::channel(false);
    tokio::spawn(server::run(
        listeners,
        Arc::new(Dispatcher(ctx)),
        ServerLimits::default(),
        rx,
    ));
    (addr, tx)
}

#[tokio::test]
async fn api_versions_every_version_and_fallback() {
    let (addr, _stop) = start_dispatch_server().await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let table = version_table();
    for v in 0..=4i16 {
        let mut req = ApiVersionsRequest::default();
        req.client_software_name = "samsa-test".into();
        req.client_software_version = "1.0".into();
        let mut body = BytesMut::new();
        req.encode(&mut body, v).unwrap();
        s.write_all(&frame(18, v, 100 + v as i32, &body))
            .await
            .unwrap();
        let resp = read_frame(&mut s).await.unwrap();
        let mut b = Bytes::from(resp);
        assert_eq!(b.get_i32(), 100 + v as i32);
        let r = ApiVersionsResponse::decode(&mut b, v).unwrap();
        assert_eq!(r.error_code, 0, "v{v}");
        assert!(!b.has_remaining(), "v{v}: trailing bytes");
        let got: Vec<_> = r
            .api_keys
            .iter()
            .map(|a| (a.api_key, a.min_version, a.max_version))
            .collect();
        assert_eq!(got, table, "v{v}");
        assert!(r.supported_features.is_empty() && r.finalized_features.is_empty());
    }
    // KIP-511: a newer version than we know gets a v0 answer.
    s.write_all(&frame(18, 9, 200, &[0xde, 0xad]))
        .await
        .unwrap();
    let mut b = Bytes::from(read_frame(&mut s).await.unwrap());
    assert_eq!(b.get_i32(), 200);
    let r = ApiVersionsResponse::decode(&mut b, 0).unwrap();
    assert_eq!(r.error_code, 35);
    assert_eq!(r.api_keys.len(), table.len());
    assert!(!b.has_remaining());
}

#[tokio::test]
async fn unsupported_version_closes_connection() {
    let (addr, _stop) = start_dispatch_server().await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    // Metadata v13 does not exist in 3.9.
    s.write_all(&frame(3, 13, 1, &[])).await.unwrap();
    assert!(closed_by_peer(&mut s).await);
}

#[tokio::test]
async fn huge_array_count_closes_only_that_connection() {
    let (addr, _stop) = start_dispatch_server().await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    // Metadata v1 whose topic array claims i32::MAX entries.
    s.write_all(&frame(3, 1, 1, &0x7fff_ffffi32.to_be_bytes()))
        .await
        .unwrap();
    assert!(closed_by_peer(&mut s).await);
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&frame(18, 0, 2, &[])).await.unwrap();
    let resp = read_frame(&mut s).await.unwrap();
    assert_eq!(&resp[..4], &2i32.to_be_bytes());
}

#[tokio::test]
async fn idle_connection_is_closed() {
    let h = start_test_server_idle(1 << 20, Some(Duration::from_millis(300))).await;
    let mut s = TcpStream::connect(h.addr).await.unwrap();
    s.write_all(&frame(0, 0, 1, &[0])).await.unwrap();
    read_frame(&mut s).await.unwrap();
    // No further request: the server closes within the deadline.
    assert!(closed_by_peer(&mut s).await);
}
