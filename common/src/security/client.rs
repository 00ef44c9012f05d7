//! The client side of a secured Kafka connection, for inter-broker traffic (controller
//! RPCs, replica fetchers, AlterPartition, controlled shutdown): TCP, then TLS (SSL and
//! SASL_SSL), then the SASL exchange (SaslHandshake v1 + SaslAuthenticate v1 with PLAIN
//! or SCRAM-SHA-256/512), giving back a byte stream the callers frame as before.
//!
//! Built once from the inter-broker listener's settings (`ssl.*` with the listener
//! prefix, `sasl.mechanism.inter.broker.protocol`, and the `username`/`password` options
//! of that listener's JAAS entry for the mechanism), shared by every connection.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::{
    ApiKey, RequestHeader, ResponseHeader, SaslAuthenticateRequest, SaslAuthenticateResponse,
    SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::scram::{ScramClient, ScramMechanism};
use super::{stores, ListenerSettings};
use crate::config::SecurityProtocol;

/// Any byte stream a connection can run over (TCP or TLS over TCP).
pub trait AsyncStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> AsyncStream for T {}

/// A boxed [`AsyncStream`].
pub type BoxedStream = Box<dyn AsyncStream>;

/// SASL login of the client. The password never appears in `Debug`.
#[derive(Clone)]
pub struct SaslLogin {
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: String,
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for SaslLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SaslLogin({} as {})", self.mechanism, self.username)
    }
}

/// How to secure outgoing connections.
#[derive(Clone, Default)]
pub struct ClientSecurity {
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub sasl: Option<SaslLogin>,
}

impl std::fmt::Debug for ClientSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSecurity")
            .field("tls", &self.tls.is_some())
            .field("sasl", &self.sasl)
            .finish()
    }
}

/// The crypto provider restricted to `ssl.cipher.suites` (Java/IANA names) and the
/// protocol versions of `ssl.enabled.protocols` (default `TLSv1.2,TLSv1.3`).
pub fn crypto(
    s: &ListenerSettings,
) -> Result<
    (
        Arc<rustls::crypto::CryptoProvider>,
        Vec<&'static rustls::SupportedProtocolVersion>,
    ),
    String,
> {
    // ring builds with a C compiler only (aws-lc-rs needs cmake); its lack of post-quantum
    // key exchange matches what Java 21 offers Kafka clients.
    #[allow(deprecated)]
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some((key, wanted)) = s.get("ssl.cipher.suites") {
        let mut chosen = Vec::new();
        for name in wanted.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let found = provider
                .cipher_suites
                .iter()
                .find(|cs| java_suite_name(cs) == name)
                .ok_or_else(|| {
                    format!(
                        "{key}: unsupported cipher suite {name} (supported: {})",
                        provider
                            .cipher_suites
                            .iter()
                            .map(java_suite_name)
                            .collect::<Vec<_>>()
                            .join(",")
                    )
                })?;
            chosen.push(*found);
        }
        if !chosen.is_empty() {
            provider.cipher_suites = chosen;
        }
    }
    let protocols = s
        .list("ssl.enabled.protocols")
        .unwrap_or_else(|| vec!["TLSv1.2".into(), "TLSv1.3".into()]);
    let mut versions = Vec::new();
    for p in &protocols {
        match p.as_str() {
            "TLSv1.2" => versions.push(&rustls::version::TLS12),
            "TLSv1.3" => versions.push(&rustls::version::TLS13),
            // Java still accepts the old names; they are disabled in any modern JDK.
            "TLSv1" | "TLSv1.1" | "SSLv3" => {}
            other => {
                return Err(format!(
                    "ssl.enabled.protocols: unsupported protocol {other} (use TLSv1.2, TLSv1.3)"
                ))
            }
        }
    }
    if versions.is_empty() {
        return Err(
            "ssl.enabled.protocols: none of the listed protocols is supported \
                    (TLSv1.2 and TLSv1.3 are)"
                .into(),
        );
    }
    Ok((Arc::new(provider), versions))
}

/// The Java (IANA) name of a rustls suite, e.g. `TLS_AES_128_GCM_SHA256` or
/// `TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384`.
pub fn java_suite_name(cs: &rustls::SupportedCipherSuite) -> String {
    let n = format!("{:?}", cs.suite());
    match n.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => n,
    }
}

/// Skips the host name check (`ssl.endpoint.identification.algorithm=` empty) but still
/// verifies the chain against the truststore.
#[derive(Debug)]
struct NoHostnameVerifier(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for NoHostnameVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// A TLS client config from a listener's `ssl.*` settings (truststore required; the
/// keystore, when set, is presented for mutual TLS).
pub fn tls_client_config(s: &ListenerSettings) -> Result<rustls::ClientConfig, String> {
    let trusted = stores::load_truststore(s)?.ok_or_else(|| {
        "ssl.truststore.location (or ssl.truststore.certificates) is required for \
         outgoing TLS connections"
            .to_string()
    })?;
    let roots = Arc::new(stores::root_store(&trusted)?);
    let (provider, versions) = crypto(s)?;
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
            .build()
            .map_err(|e| format!("truststore: {e}"))?;
    let check_host = s
        .get("ssl.endpoint.identification.algorithm")
        .map(|(_, v)| !v.is_empty())
        .unwrap_or(true);
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| format!("ssl.enabled.protocols: {e}"))?;
    let builder = if check_host {
        builder.with_webpki_verifier(verifier)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoHostnameVerifier(verifier)))
    };
    match stores::load_keystore(s)? {
        Some(km) => builder
            .with_client_auth_cert(km.chain, km.key)
            .map_err(|e| format!("ssl.keystore: {e}")),
        None => Ok(builder.with_no_client_auth()),
    }
}

impl ClientSecurity {
    /// From the inter-broker listener's protocol and settings. `sasl` is the login for
    /// SASL protocols (the caller reads it from the JAAS configuration).
    pub fn new(
        protocol: SecurityProtocol,
        s: &ListenerSettings,
        sasl: Option<SaslLogin>,
    ) -> Result<Self, String> {
        let tls = match protocol {
            SecurityProtocol::Ssl | SecurityProtocol::SaslSsl => {
                Some(Arc::new(tls_client_config(s)?))
            }
            _ => None,
        };
        let sasl = match protocol {
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl => Some(sasl.ok_or(
                "a SASL inter-broker listener needs a login (JAAS username and password)",
            )?),
            _ => None,
        };
        Ok(Self { tls, sasl })
    }
}

fn err(kind: io::ErrorKind, msg: impl Into<String>) -> io::Error {
    io::Error::new(kind, msg.into())
}

/// Connects to `addr` (`host:port`) and performs TLS and SASL as configured.
pub async fn connect(
    addr: &str,
    security: Option<&ClientSecurity>,
    client_id: &str,
    timeout: Duration,
) -> io::Result<BoxedStream> {
    let tcp = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| err(io::ErrorKind::TimedOut, format!("connecting to {addr}")))??;
    let _ = tcp.set_nodelay(true);
    let Some(sec) = security else {
        return Ok(Box::new(tcp));
    };
    let mut stream: BoxedStream = match &sec.tls {
        None => Box::new(tcp),
        Some(cfg) => {
            let host = addr
                .rsplit_once(':')
                .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']'))
                .unwrap_or(addr);
            let name = ServerName::try_from(host.to_string()).map_err(|e| {
                err(
                    io::ErrorKind::InvalidInput,
                    format!("server name {host}: {e}"),
                )
            })?;
            let tls = tokio::time::timeout(
                timeout,
                tokio_rustls::TlsConnector::from(cfg.clone()).connect(name, tcp),
            )
            .await
            .map_err(|_| {
                err(
                    io::ErrorKind::TimedOut,
                    format!("TLS handshake with {addr}"),
                )
            })??;
            Box::new(tls)
        }
    };
    if let Some(login) = &sec.sasl {
        tokio::time::timeout(timeout, sasl_login(&mut stream, login, client_id))
            .await
            .map_err(|_| err(io::ErrorKind::TimedOut, format!("SASL login to {addr}")))??;
    }
    Ok(stream)
}

async fn roundtrip<Req, Resp>(
    stream: &mut BoxedStream,
    key: ApiKey,
    version: i16,
    correlation: i32,
    client_id: &str,
    req: &Req,
) -> io::Result<Resp>
where
    Req: Encodable + HeaderVersion,
    Resp: Decodable + HeaderVersion,
{
    let bad = |e: anyhow::Error| err(io::ErrorKind::InvalidData, e.to_string());
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation)
        .with_client_id(Some(StrBytes::from_string(client_id.to_string())));
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    header
        .encode(&mut buf, Req::header_version(version))
        .map_err(bad)?;
    req.encode(&mut buf, version).map_err(bad)?;
    let size = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&size.to_be_bytes());
    stream.write_all(&buf).await?;
    let len = stream.read_i32().await?;
    if !(0..=1 << 20).contains(&len) {
        return Err(err(io::ErrorKind::InvalidData, "bad SASL response size"));
    }
    let mut body = vec![0u8; len as usize];
    stream.read_exact(&mut body).await?;
    let mut b = bytes::Bytes::from(body);
    ResponseHeader::decode(&mut b, Resp::header_version(version)).map_err(bad)?;
    Resp::decode(&mut b, version).map_err(bad)
}

async fn authenticate(
    stream: &mut BoxedStream,
    correlation: i32,
    client_id: &str,
    token: Vec<u8>,
) -> io::Result<Vec<u8>> {
    let req = SaslAuthenticateRequest::default().with_auth_bytes(token.into());
    let resp: SaslAuthenticateResponse = roundtrip(
        stream,
        ApiKey::SaslAuthenticate,
        1,
        correlation,
        client_id,
        &req,
    )
    .await?;
    if resp.error_code != 0 {
        return Err(err(
            io::ErrorKind::PermissionDenied,
            format!(
                "SASL authentication failed (error {}): {}",
                resp.error_code,
                resp.error_message.as_deref().unwrap_or("")
            ),
        ));
    }
    Ok(resp.auth_bytes.to_vec())
}

async fn sasl_login(
    stream: &mut BoxedStream,
    login: &SaslLogin,
    client_id: &str,
) -> io::Result<()> {
    let hs = SaslHandshakeRequest::default()
        .with_mechanism(StrBytes::from_string(login.mechanism.clone()));
    let resp: SaslHandshakeResponse =
        roundtrip(stream, ApiKey::SaslHandshake, 1, 1, client_id, &hs).await?;
    if resp.error_code != 0 {
        return Err(err(
            io::ErrorKind::PermissionDenied,
            format!(
                "SASL mechanism {} refused (error {}); the broker enables {:?}",
                login.mechanism, resp.error_code, resp.mechanisms
            ),
        ));
    }
    match ScramMechanism::from_name(&login.mechanism) {
        None if login.mechanism == "PLAIN" => {
            let token = format!("\0{}\0{}", login.username, login.password).into_bytes();
            authenticate(stream, 2, client_id, token).await?;
        }
        None => {
            return Err(err(
                io::ErrorKind::Unsupported,
                format!("SASL mechanism {} is not supported", login.mechanism),
            ))
        }
        Some(mech) => {
            let mut c = ScramClient::new(mech, &login.username, &login.password);
            let server_first = authenticate(stream, 2, client_id, c.client_first()).await?;
            let fin = c
                .client_final(&server_first)
                .map_err(|e| err(io::ErrorKind::InvalidData, e))?;
            let server_final = authenticate(stream, 3, client_id, fin).await?;
            c.verify_server_final(&server_final)
                .map_err(|e| err(io::ErrorKind::PermissionDenied, e))?;
        }
    }
    Ok(())
}
