//! Feeds arbitrary bytes through the connection's frame checks and request
//! header parser: `fuzz/run.sh frame_header` (stable toolchain, see fuzz/README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;
use samsa_broker::connection::{check_frame_size, parse_request_header};

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let size = i32::from_be_bytes([data[0], data[1], data[2], data[3]]);
    if let Ok(n) = check_frame_size(size, 1 << 20) {
        let body = &data[4..];
        let frame = &body[..n.min(body.len())];
        let mut b = bytes::Bytes::copy_from_slice(frame);
        let _ = parse_request_header(&mut b);
    }
});
