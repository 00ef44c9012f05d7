//! In-process tests against a tiny tokio server speaking the Kafka framing.

use super::*;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::{MetadataRequest, MetadataResponse, TopicName};
use tokio::net::{TcpListener, TcpStream};

/// Read one request frame: (header, body bytes).
async fn read_request(sock: &mut TcpStream) -> Option<(RequestHeader, Bytes)> {
    let len = sock.read_i32().await.ok()?;
    let mut buf = BytesMut::zeroed(len as usize);
    sock.read_exact(&mut buf).await.ok()?;
    let mut frame = buf.freeze();
    let key = ApiKey::try_from(i16::from_be_bytes([frame[0], frame[1]])).ok()?;
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let header = RequestHeader::decode(&mut frame, key.request_header_version(version)).ok()?;
    Some((header, frame))
}

async fn write_response<M: Encodable>(
    sock: &mut TcpStream,
    header: &RequestHeader,
    body: &M,
) -> std::io::Result<()> {
    let key = ApiKey::try_from(header.request_api_key).map_err(|_| std::io::Error::other("key"))?;
    let v = header.request_api_version;
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(header.correlation_id)
        .encode(&mut buf, key.response_header_version(v))
        .map_err(std::io::Error::other)?;
    body.encode(&mut buf, v).map_err(std::io::Error::other)?;
    let n = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&n.to_be_bytes());
    sock.write_all(&buf).await
}

fn versions_response() -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(vec![
        ApiVersion::default()
            .with_api_key(ApiKey::ApiVersions as i16)
            .with_min_version(0)
            .with_max_version(3),
        ApiVersion::default()
            .with_api_key(ApiKey::Metadata as i16)
            .with_min_version(0)
            .with_max_version(9),
    ])
}

fn metadata_response_for(req: &MetadataRequest) -> MetadataResponse {
    let topics = req
        .topics
        .iter()
        .flatten()
        .map(|t| MetadataResponseTopic::default().with_name(t.name.clone()))
        .collect();
    MetadataResponse::default().with_topics(topics)
}

fn metadata_request(topic: &str) -> MetadataRequest {
    MetadataRequest::default().with_topics(Some(vec![MetadataRequestTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.to_string()))))]))
}

async fn listener() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    (l, addr)
}

#[tokio::test]
async fn api_versions_and_negotiation() {
    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.expect("accept");
        while let Some((h, mut body)) = read_request(&mut s).await {
            match ApiKey::try_from(h.request_api_key) {
                Ok(ApiKey::ApiVersions) => {
                    assert_eq!(h.request_api_version, 3);
                    let req = ApiVersionsRequest::decode(&mut body, 3).expect("decode");
                    assert_eq!(req.client_software_name.as_str(), "samsa");
                    write_response(&mut s, &h, &versions_response())
                        .await
                        .expect("write");
                }
                Ok(ApiKey::Metadata) => {
                    let req =
                        MetadataRequest::decode(&mut body, h.request_api_version).expect("decode");
                    write_response(&mut s, &h, &metadata_response_for(&req))
                        .await
                        .expect("write");
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    });
    let c = KafkaClient::connect(&addr).await.expect("connect");
    let v = c.negotiate::<MetadataRequest>(12).await.expect("negotiate");
    assert_eq!(v, 9);
    assert_eq!(
        c.negotiate::<MetadataRequest>(4).await.expect("negotiate"),
        4
    );
    assert!(c
        .negotiate::<kafka_protocol::messages::FetchRequest>(16)
        .await
        .is_err());
    // v9 is flexible: request header v2, response header v1.
    let resp = c.send(&metadata_request("a"), v).await.expect("metadata");
    assert_eq!(resp.topics.len(), 1);
    // v1 is not flexible: header v1 / v0.
    let resp = c
        .send(&metadata_request("b"), 1)
        .await
        .expect("metadata v1");
    assert_eq!(
        resp.topics[0].name.as_ref().map(|n| n.0.as_str()),
        Some("b")
    );
    drop(c);
    server.await.expect("server");
}

#[tokio::test]
async fn pipelined_responses_matched_by_correlation_id() {
    let (l, addr) = listener().await;
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.expect("accept");
        let mut batch = Vec::new();
        for _ in 0..3 {
            batch.push(read_request(&mut s).await.expect("request"));
        }
        // Answer in reverse order.
        for (h, mut body) in batch.into_iter().rev() {
            let req = MetadataRequest::decode(&mut body, h.request_api_version).expect("decode");
            write_response(&mut s, &h, &metadata_response_for(&req))
                .await
                .expect("write");
        }
        // Keep the socket open until the client is done.
        let _ = read_request(&mut s).await;
    });
    let c = KafkaClient::connect(&addr).await.expect("connect");
    let (r0, r1, r2) = (
        metadata_request("t0"),
        metadata_request("t1"),
        metadata_request("t2"),
    );
    let (a, b, d) = tokio::join!(c.send(&r0, 12), c.send(&r1, 12), c.send(&r2, 12));
    for (resp, want) in [(a, "t0"), (b, "t1"), (d, "t2")] {
        let resp = resp.expect("response");
        assert_eq!(
            resp.topics[0].name.as_ref().map(|n| n.0.as_str()),
            Some(want)
        );
    }
}

#[tokio::test]
async fn disconnect_fails_pending_and_later_requests() {
    let (l, addr) = listener().await;
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.expect("accept");
        let _ = read_request(&mut s).await;
        drop(s);
    });
    let c = KafkaClient::connect(&addr).await.expect("connect");
    let e = c
        .send(&metadata_request("x"), 12)
        .await
        .expect_err("closed");
    assert!(matches!(e, Error::Disconnected(_)), "{e}");
    assert!(c.is_closed());
    let e = c
        .send(&metadata_request("x"), 12)
        .await
        .expect_err("closed");
    assert!(matches!(e, Error::Disconnected(_)), "{e}");
}

#[tokio::test]
async fn connect_refused_and_request_timeout() {
    let (l, addr) = listener().await;
    drop(l);
    let e = KafkaClient::connect(&addr).await.expect_err("refused");
    assert!(matches!(e, Error::Connect { .. }), "{e}");

    let (l, addr) = listener().await;
    let server = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.expect("accept");
        // Read but never answer; return when the client goes away.
        while read_request(&mut s).await.is_some() {}
    });
    let c = KafkaClient::connect_with(
        &addr,
        ClientOptions {
            request_timeout: Some(Duration::from_millis(200)),
            ..ClientOptions::default()
        },
    )
    .await
    .expect("connect");
    let e = c
        .send(&metadata_request("x"), 12)
        .await
        .expect_err("timeout");
    assert!(matches!(e, Error::Timeout(_)), "{e}");
    assert!(!c.is_closed());
    drop(c);
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("server sees close")
        .expect("server");
}

#[test]
fn split_frame_handles_partial_input() {
    let mut b = BytesMut::new();
    b.put_i32(3);
    b.put_slice(&[1, 2]);
    assert!(split_frame(&mut b).is_none());
    b.put_u8(3);
    assert_eq!(split_frame(&mut b).expect("frame").as_ref(), &[1, 2, 3]);
    assert!(b.is_empty());
}
