//! Arbitrary bytes as one request frame: size prefix, request header, then the body decoded
//! at the header's version for every API the broker advertises (ApiVersions through its
//! handler, which also answers unknown versions). Decoding must fail cleanly, never panic.
#![no_main]

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestKind};
use libfuzzer_sys::fuzz_target;
use samsa_broker::connection::{check_frame_size, parse_request_header};
use samsa_broker::dispatch::supported_versions;
use samsa_broker::handlers::api_versions;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let size = i32::from_be_bytes([data[0], data[1], data[2], data[3]]);
    let Ok(n) = check_frame_size(size, 1 << 20) else {
        return;
    };
    let body = &data[4..];
    let mut frame = Bytes::copy_from_slice(&body[..n.min(body.len())]);
    let Ok(header) = parse_request_header(&mut frame) else {
        return;
    };
    let Ok(key) = ApiKey::try_from(header.request_api_key) else {
        return;
    };
    if key == ApiKey::ApiVersions {
        let _ = api_versions::handle(&header, &mut frame);
        return;
    }
    let v = header.request_api_version;
    match supported_versions(key) {
        Some((lo, hi)) if v >= lo && v <= hi => {
            let _ = RequestKind::decode(key, &mut frame, v);
        }
        _ => {}
    }
});
