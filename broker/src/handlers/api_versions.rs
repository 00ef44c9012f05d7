//! ApiVersions (key 18): the version table from `dispatch`, plus Kafka's KIP-511
//! fallback for requests newer than we know.
//!
//! Features (SupportedFeatures, FinalizedFeatures, ZkMigrationReady tagged fields)
//! are deliberately left at their defaults so no tagged field is written: Debian's
//! librdkafka 2.0.2 mis-parses them.

use bytes::Bytes;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse, RequestHeader};
use kafka_protocol::ResponseError;

use crate::connection::Chunk;
use crate::dispatch::{decode, kafka_zk_versions, respond, version_table};
use crate::error::Result;

/// Answers an ApiVersions request of any version. Unknown (newer) versions get a
/// v0-encoded answer with UNSUPPORTED_VERSION and the full api list, so the client
/// can retry with a version we support.
pub fn handle(header: &RequestHeader, body: &mut Bytes) -> Result<Option<Vec<Chunk>>> {
    let v = header.request_api_version;
    let (lo, hi) =
        kafka_zk_versions(kafka_protocol::messages::ApiKey::ApiVersions).unwrap_or((0, 0));
    if v < lo || v > hi {
        let mut resp = full_response();
        resp.error_code = ResponseError::UnsupportedVersion.code();
        let mut h0 = header.clone();
        h0.request_api_version = 0;
        return respond(&h0, resp);
    }
    let req: ApiVersionsRequest = decode(body, v)?;
    if v >= 3
        && !(valid_software_field(&req.client_software_name)
            && valid_software_field(&req.client_software_version))
    {
        let mut resp = ApiVersionsResponse::default();
        resp.error_code = ResponseError::InvalidRequest.code();
        return respond(header, resp);
    }
    respond(header, full_response())
}

/// The normal answer: every implemented API with its advertised range.
pub fn full_response() -> ApiVersionsResponse {
    let mut resp = ApiVersionsResponse::default();
    resp.api_keys = version_table()
        .into_iter()
        .map(|(key, lo, hi)| {
            let mut a = ApiVersion::default();
            a.api_key = key;
            a.min_version = lo;
            a.max_version = hi;
            a
        })
        .collect();
    resp
}

/// Kafka's rule for ClientSoftwareName/Version: `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?`.
fn valid_software_field(s: &str) -> bool {
    let b = s.as_bytes();
    let Some((first, rest)) = b.split_first() else {
        return false;
    };
    if !first.is_ascii_alphanumeric() {
        return false;
    }
    match rest.split_last() {
        None => true,
        Some((last, mid)) => {
            last.is_ascii_alphanumeric()
                && mid
                    .iter()
                    .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'.')
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn header(version: i16) -> RequestHeader {
        let mut h = RequestHeader::default();
        h.request_api_key = 18;
        h.request_api_version = version;
        h.correlation_id = 7;
        h
    }

    fn bytes_of(chunks: Vec<Chunk>) -> Vec<u8> {
        chunks
            .into_iter()
            .flat_map(|c| match c {
                Chunk::Bytes(b) => b.to_vec(),
                Chunk::File(_) => panic!("no file chunks"),
            })
            .collect()
    }

    /// v3 answer: header v0 (correlation id only), no tagged fields at all.
    #[test]
    fn v3_has_no_tagged_fields() {
        let mut req = ApiVersionsRequest::default();
        req.client_software_name = "librdkafka".into();
        req.client_software_version = "2.0.2".into();
        let mut body = bytes::BytesMut::new();
        kafka_protocol::protocol::Encodable::encode(&req, &mut body, 3).unwrap();
        let out = handle(&header(3), &mut body.freeze()).unwrap().unwrap();
        let out = bytes_of(out);
        assert_eq!(&out[..4], &7i32.to_be_bytes());
        // error_code, compact array, ..., throttle_time_ms, then 0 tagged fields.
        assert_eq!(&out[4..6], &[0, 0]);
        assert_eq!(*out.last().unwrap(), 0);
        let n = version_table().len();
        // 4 corr + 2 err + varint(n+1) + n*(2+2+2+1 tag) + 4 throttle + 1 tags
        assert_eq!(out.len(), 4 + 2 + 1 + n * 7 + 4 + 1);
    }

    /// KIP-511: an unknown version gets a v0 body with UNSUPPORTED_VERSION and the list.
    #[test]
    fn unknown_version_falls_back_to_v0() {
        let out = handle(&header(99), &mut Bytes::new()).unwrap().unwrap();
        let out = bytes_of(out);
        assert_eq!(&out[4..6], &35i16.to_be_bytes());
        let n = version_table().len() as i32;
        assert_eq!(&out[6..10], &n.to_be_bytes());
        assert_eq!(out.len(), 4 + 2 + 4 + n as usize * 6);
    }

    #[test]
    fn invalid_software_name_is_invalid_request() {
        let mut req = ApiVersionsRequest::default();
        req.client_software_name = "bad name".into();
        req.client_software_version = "1".into();
        let mut body = bytes::BytesMut::new();
        kafka_protocol::protocol::Encodable::encode(&req, &mut body, 3).unwrap();
        let out = bytes_of(handle(&header(3), &mut body.freeze()).unwrap().unwrap());
        assert_eq!(&out[4..6], &42i16.to_be_bytes());
    }

    #[test]
    fn software_field_rule() {
        assert!(valid_software_field("librdkafka"));
        assert!(valid_software_field("2.0.2"));
        assert!(valid_software_field("a"));
        assert!(!valid_software_field(""));
        assert!(!valid_software_field("-a"));
        assert!(!valid_software_field("a."));
        assert!(!valid_software_field("a b"));
    }
}
