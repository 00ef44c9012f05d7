//! Verification against a fake transaction coordinator on 127.0.0.1:0.

#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

#[derive(Default)]
struct Counters {
    connections: AtomicUsize,
    requests: AtomicUsize,
    transactions: AtomicUsize,
}

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

async fn respond<M: Encodable>(sock: &mut TcpStream, header: &RequestHeader, body: &M) {
    let key = ApiKey::try_from(header.request_api_key).unwrap();
    let v = header.request_api_version;
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    ResponseHeader::default()
        .with_correlation_id(header.correlation_id)
        .encode(&mut buf, key.response_header_version(v))
        .unwrap();
    body.encode(&mut buf, v).unwrap();
    let n = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&n.to_be_bytes());
    let _ = sock.write_all(&buf).await;
}

/// A coordinator answering per transactional id: "in-txn" verified, "not-in-txn"
/// TRANSACTION_ABORTABLE, "fenced" PRODUCER_FENCED. `v4` = whether it serves v4+.
async fn fake_coordinator(v4: bool) -> (String, Arc<Counters>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let counters = Arc::new(Counters::default());
    let c = counters.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            c.connections.fetch_add(1, Ordering::SeqCst);
            let c = c.clone();
            tokio::spawn(async move {
                while let Some((h, mut body)) = read_request(&mut sock).await {
                    if h.request_api_key == ApiKey::ApiVersions as i16 {
                        let mut keys = vec![ApiVersion::default()
                            .with_api_key(ApiKey::ApiVersions as i16)
                            .with_max_version(3)];
                        keys.push(
                            ApiVersion::default()
                                .with_api_key(ApiKey::AddPartitionsToTxn as i16)
                                .with_max_version(if v4 { 5 } else { 3 }),
                        );
                        respond(
                            &mut sock,
                            &h,
                            &ApiVersionsResponse::default().with_api_keys(keys),
                        )
                        .await;
                        continue;
                    }
                    c.requests.fetch_add(1, Ordering::SeqCst);
                    // Slow enough that concurrent verifications queue behind this one.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    let req = AddPartitionsToTxnRequest::decode(&mut body, h.request_api_version)
                        .unwrap();
                    let mut resp = AddPartitionsToTxnResponse::default();
                    for t in req.transactions {
                        c.transactions.fetch_add(1, Ordering::SeqCst);
                        assert!(t.verify_only);
                        let code = match t.transactional_id.as_str() {
                            "not-in-txn" => TRANSACTION_ABORTABLE,
                            "fenced" => PRODUCER_FENCED,
                            _ => 0,
                        };
                        let mut r = AddPartitionsToTxnResult::default();
                        r.transactional_id = t.transactional_id.clone();
                        for topic in t.topics {
                            let mut tr = AddPartitionsToTxnTopicResult::default();
                            tr.name = topic.name.clone();
                            for p in topic.partitions {
                                let mut pr = AddPartitionsToTxnPartitionResult::default();
                                pr.partition_index = p;
                                pr.partition_error_code = code;
                                tr.results_by_partition.push(pr);
                            }
                            r.topic_results.push(tr);
                        }
                        resp.results_by_transaction.push(r);
                    }
                    respond(&mut sock, &h, &resp).await;
                }
            });
        }
    });
    (addr, counters)
}

fn node(addr: &str) -> Option<CoordinatorNode> {
    Some(CoordinatorNode {
        id: 7,
        addr: addr.to_string(),
    })
}

fn tps(n: i32) -> Vec<TopicPartition> {
    (0..n).map(|p| TopicPartition::new("t", p)).collect()
}

#[tokio::test]
async fn verification_outcomes_are_translated() {
    let (addr, counters) = fake_coordinator(true).await;
    let v = TxnVerifier::new(1, 5000);
    assert!(v
        .verify(node(&addr), "in-txn", 5, 0, tps(2), true)
        .await
        .is_empty());
    let e = v
        .verify(node(&addr), "not-in-txn", 5, 0, tps(1), true)
        .await;
    assert_eq!(
        e.get(&TopicPartition::new("t", 0)),
        Some(&TRANSACTION_ABORTABLE)
    );
    let e = v
        .verify(node(&addr), "not-in-txn", 5, 0, tps(1), false)
        .await;
    assert_eq!(
        e.get(&TopicPartition::new("t", 0)),
        Some(&INVALID_TXN_STATE),
        "Produce < v11"
    );
    let e = v.verify(node(&addr), "fenced", 5, 0, tps(1), true).await;
    assert_eq!(
        e.get(&TopicPartition::new("t", 0)),
        Some(&INVALID_PRODUCER_EPOCH)
    );
    assert_eq!(
        counters.connections.load(Ordering::SeqCst),
        1,
        "connection cached"
    );
    let e = v.verify(None, "in-txn", 5, 0, tps(1), true).await;
    assert_eq!(
        e.get(&TopicPartition::new("t", 0)),
        Some(&COORDINATOR_NOT_AVAILABLE)
    );
    assert_eq!(
        produce_error(COORDINATOR_NOT_AVAILABLE),
        NOT_ENOUGH_REPLICAS
    );
    assert_eq!(produce_error(INVALID_TXN_STATE), INVALID_TXN_STATE);
}

#[tokio::test]
async fn concurrent_verifications_share_requests() {
    let (addr, counters) = fake_coordinator(true).await;
    let v = TxnVerifier::new(1, 5000);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let v = v.clone();
        let addr = addr.clone();
        tasks.push(tokio::spawn(async move {
            v.verify(node(&addr), &format!("txn-{i}"), i, 0, tps(1), true)
                .await
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap().is_empty());
    }
    assert_eq!(counters.transactions.load(Ordering::SeqCst), 20);
    let requests = counters.requests.load(Ordering::SeqCst);
    assert!(requests < 20, "batched into {requests} requests");

    // Same transactional id queued twice behind an in-flight request: the older one is
    // answered NETWORK_EXCEPTION (same epoch), the newer one verified.
    let first = {
        let (v, addr) = (v.clone(), addr.clone());
        tokio::spawn(async move { v.verify(node(&addr), "busy", 1, 0, tps(1), true).await })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    let a = {
        let (v, addr) = (v.clone(), addr.clone());
        tokio::spawn(async move { v.verify(node(&addr), "dup", 1, 3, tps(1), true).await })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    let b = v.verify(node(&addr), "dup", 1, 3, tps(1), true).await;
    assert!(first.await.unwrap().is_empty());
    assert!(b.is_empty());
    let a = a.await.unwrap();
    // Unless the first request had already finished (then both went out separately).
    assert!(
        a.is_empty() || a.get(&TopicPartition::new("t", 0)) == Some(&NETWORK_EXCEPTION),
        "{a:?}"
    );
}

#[tokio::test]
async fn old_coordinators_and_dead_ones() {
    let (addr, _) = fake_coordinator(false).await;
    let v = TxnVerifier::new(1, 5000);
    assert!(
        v.verify(node(&addr), "not-in-txn", 5, 0, tps(1), true)
            .await
            .is_empty(),
        "a coordinator without v4 skips verification"
    );
    // Nobody listens: NETWORK_EXCEPTION (NOT_ENOUGH_REPLICAS for the producer).
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let v = TxnVerifier::new(1, 2000);
    let e = v
        .verify(
            Some(CoordinatorNode { id: 9, addr: dead }),
            "in-txn",
            5,
            0,
            tps(1),
            true,
        )
        .await;
    assert_eq!(
        e.get(&TopicPartition::new("t", 0)),
        Some(&NETWORK_EXCEPTION)
    );
}
