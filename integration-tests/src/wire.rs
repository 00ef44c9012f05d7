//! A raw, blocking Kafka-protocol connection for readiness checks and malformed-input tests.
//! (Real clients are exercised through librdkafka, Python, Java and kcat.)

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

pub struct Conn {
    stream: TcpStream,
    correlation_id: i32,
}

impl Conn {
    pub fn connect(addr: &str) -> Result<Conn> {
        let sock: std::net::SocketAddr = addr
            .parse()
            .with_context(|| format!("bad address {addr}"))?;
        let stream = TcpStream::connect_timeout(&sock, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(15)))?;
        stream.set_write_timeout(Some(Duration::from_secs(15)))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            correlation_id: 1,
        })
    }

    /// Connects from a chosen local address (e.g. `127.0.0.2`, to test per-IP limits).
    pub fn connect_from(local_ip: &str, addr: &str) -> Result<Conn> {
        let local: std::net::IpAddr = local_ip.parse().context("bad local address")?;
        let sock: std::net::SocketAddr = addr
            .parse()
            .with_context(|| format!("bad address {addr}"))?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let stream = rt.block_on(async {
            let s = tokio::net::TcpSocket::new_v4()?;
            s.bind(std::net::SocketAddr::new(local, 0))?;
            tokio::time::timeout(Duration::from_secs(5), s.connect(sock))
                .await
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
        })?;
        let stream = stream.into_std()?;
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(Duration::from_secs(15)))?;
        stream.set_write_timeout(Some(Duration::from_secs(15)))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            correlation_id: 1,
        })
    }

    /// Sends ApiVersions v3 and waits for the answer (true) or the read timeout (false).
    pub fn api_versions_answered(&mut self) -> Result<bool> {
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("samsa-e2e"))
            .with_client_software_version(StrBytes::from_static_str("1.0"));
        match self.request::<_, ApiVersionsResponse>(ApiKey::ApiVersions, 3, &req) {
            Ok(r) => Ok(r.error_code == 0),
            Err(e)
                if e.downcast_ref::<std::io::Error>().is_some_and(|io| {
                    matches!(
                        io.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    )
                }) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    pub fn set_read_timeout(&self, t: Duration) -> Result<()> {
        Ok(self.stream.set_read_timeout(Some(t))?)
    }

    /// Writes bytes exactly as given (no size prefix added).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream.write_all(bytes)?;
        Ok(())
    }

    /// Reads one size-prefixed frame (without the prefix).
    pub fn read_frame(&mut self) -> Result<Bytes> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len)?;
        let len = i32::from_be_bytes(len);
        if !(0..=256 * 1024 * 1024).contains(&len) {
            bail!("bad response size {len}");
        }
        let mut buf = vec![0u8; len as usize];
        self.stream.read_exact(&mut buf)?;
        Ok(Bytes::from(buf))
    }

    /// True if the peer closed the connection (EOF or reset) within the read timeout.
    pub fn peer_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        match self.stream.read(&mut b) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            ),
        }
    }

    /// Encodes header + body, sends it and returns the raw frame to send (for tests that tamper with it).
    pub fn encode_request<Req: Encodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        req: &Req,
    ) -> Result<BytesMut> {
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("samsa-e2e")));
        self.correlation_id += 1;
        let mut body = BytesMut::new();
        header.encode(&mut body, key.request_header_version(version))?;
        req.encode(&mut body, version)?;
        let mut frame = BytesMut::with_capacity(body.len() + 4);
        frame.put_i32(body.len() as i32);
        frame.extend_from_slice(&body);
        Ok(frame)
    }

    /// Sends a typed request and decodes the typed response (checks the correlation id).
    pub fn request<Req: Encodable, Resp: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        req: &Req,
    ) -> Result<Resp> {
        let frame = self.encode_request(key, version, req)?;
        let expected = self.correlation_id - 1;
        self.send_raw(&frame)?;
        let mut resp = self.read_frame()?;
        let header = ResponseHeader::decode(&mut resp, key.response_header_version(version))?;
        if header.correlation_id != expected {
            bail!("correlation id {} != {expected}", header.correlation_id);
        }
        let body = Resp::decode(&mut resp, version)?;
        if resp.has_remaining() {
            bail!(
                "{} trailing bytes after {key:?} v{version} response",
                resp.remaining()
            );
        }
        Ok(body)
    }
}

/// ApiVersions v3 (what current clients send first).
pub fn api_versions(addr: &str) -> Result<ApiVersionsResponse> {
    let mut c = Conn::connect(addr)?;
    let req = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("samsa-e2e"))
        .with_client_software_version(StrBytes::from_static_str("0.1"));
    c.request(ApiKey::ApiVersions, 3, &req)
}
