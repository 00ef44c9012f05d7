//! The TLS acceptor of an SSL or SASL_SSL listener, built from its `ssl.*` keys (with
//! the `listener.name.<l>.` overrides): key store, trust store, `ssl.client.auth`
//! (`none` / `requested` / `required`), `ssl.enabled.protocols` and `ssl.cipher.suites`.
//! Key and trust store loading is shared with the client side
//! (`samsa_common::security::stores`).
//!
//! As in Kafka (KIP-684), a SASL_SSL listener asks for client certificates only when
//! `ssl.client.auth` is set with that listener's prefix; the broker-wide value applies to
//! SSL listeners.

use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use samsa_common::config::SecurityProtocol;
use samsa_common::security::client::crypto;
use samsa_common::security::{stores, ListenerSettings};

/// `ssl.client.auth`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    Requested,
    Required,
}

fn client_auth(s: &ListenerSettings, protocol: SecurityProtocol) -> Result<ClientAuth, String> {
    let v = match protocol {
        SecurityProtocol::SaslSsl => s.prefixed_only("ssl.client.auth"),
        _ => s.get("ssl.client.auth"),
    };
    match v {
        None => Ok(ClientAuth::None),
        Some((k, v)) => match v.to_ascii_lowercase().as_str() {
            "none" | "" => Ok(ClientAuth::None),
            "requested" => Ok(ClientAuth::Requested),
            "required" => Ok(ClientAuth::Required),
            other => Err(format!(
                "Invalid value {other} for configuration {k}: String must be one of: required, requested, none"
            )),
        },
    }
}

/// The server config of a TLS listener.
pub fn server_config(
    s: &ListenerSettings,
    protocol: SecurityProtocol,
) -> Result<rustls::ServerConfig, String> {
    let prefix = s.prefix().unwrap_or_default();
    let km = stores::load_keystore(s)?.ok_or_else(|| {
        format!(
            "listener needs a key store: set {prefix}ssl.keystore.location (or \
             ssl.keystore.location, or ssl.keystore.certificate.chain and ssl.keystore.key)"
        )
    })?;
    let (provider, versions) = crypto(s)?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("ssl.enabled.protocols: {e}"))?;
    let auth = client_auth(s, protocol)?;
    let builder = match auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Requested | ClientAuth::Required => {
            let trusted = stores::load_truststore(s)?.ok_or_else(|| {
                format!("ssl.client.auth={auth:?} needs a trust store ({prefix}ssl.truststore.location)")
            })?;
            let roots = Arc::new(stores::root_store(&trusted)?);
            let vb = WebPkiClientVerifier::builder_with_provider(roots, provider);
            let vb = if auth == ClientAuth::Requested {
                vb.allow_unauthenticated()
            } else {
                vb
            };
            let verifier = vb.build().map_err(|e| format!("ssl.truststore: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    builder
        .with_single_cert(km.chain, km.key)
        .map_err(|e| format!("ssl.keystore: certificate and key do not fit: {e}"))
}
