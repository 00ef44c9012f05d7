//! The SASL state a connection on a SASL_PLAINTEXT or SASL_SSL listener passes through
//! before its requests reach dispatch (Kafka's `SaslServerAuthenticator`).
//!
//! Protocol (Kafka wire format):
//! 1. Optional ApiVersions (answered by the normal handler).
//! 2. SaslHandshake v0/v1 naming a mechanism. Unknown mechanism: UNSUPPORTED_SASL_MECHANISM
//!    with the enabled list, then close.
//! 3. v1: SaslAuthenticate requests carry the tokens (v0-v2; v1+ answer with
//!    `session_lifetime_ms`). v0 (legacy): the tokens follow as bare size-prefixed frames
//!    without a request header, answered the same way.
//! 4. Success: the principal is `User:<name>` and later frames go to dispatch. Failure:
//!    SASL_AUTHENTICATION_FAILED with Kafka's message (v1), then close.
//!
//! Any other request before authentication closes the connection. With
//! `connections.max.reauth.ms` > 0 (KIP-368) the session lifetime is sent to the client,
//! a SaslHandshake after authentication starts a re-authentication (same principal
//! only), and a request arriving after the session expired closes the connection.

pub mod oauthbearer;
pub mod plain;
pub mod scram;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::{
    ApiKey, RequestHeader, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use samsa_common::security::scram::ScramMechanism;

use crate::connection::{parse_request_header, Chunk};
use crate::dispatch::{decode, respond};
use oauthbearer::{OAuthBearerServer, UnsecuredValidator};
use plain::PlainUsers;
use scram::{ScramServer, ScramStore};

/// Error codes the authenticator answers with.
const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
const ILLEGAL_SASL_STATE: i16 = 34;
const SASL_AUTHENTICATION_FAILED: i16 = 58;

/// The SASL side of one listener.
#[derive(Debug)]
pub struct SaslServerConfig {
    /// `sasl.enabled.mechanisms` for this listener, in configured order.
    pub enabled: Vec<String>,
    /// PLAIN users from the listener's JAAS entry (empty when PLAIN is off).
    pub plain_users: PlainUsers,
    /// SCRAM credentials (shared by every listener).
    pub scram: Arc<ScramStore>,
    /// `connections.max.reauth.ms` (0 = sessions never expire).
    pub reauth_ms: i64,
    /// The unsecured-JWT validator's options (when OAUTHBEARER is enabled).
    pub oauth: UnsecuredValidator,
}

/// A finished exchange: principal, credential expiry (ms since the epoch), and whether the
/// credential was a delegation token.
type Done = (String, Option<i64>, bool);

enum Mech {
    Plain,
    Scram(Box<ScramServer>),
    OAuthBearer(OAuthBearerServer),
}

enum State {
    Handshake,
    Token {
        mechanism: String,
        mech: Mech,
        legacy: bool,
    },
    Done,
}

/// What the connection does with a frame.
pub enum Step {
    /// Not for the authenticator: hand it to the request handler.
    Forward,
    /// Send this response frame (without the size prefix) and go on.
    Reply(Vec<Chunk>),
    /// Send this response frame, then close (`String` says why, for the log).
    ReplyAndClose(Vec<Chunk>, String),
    /// Close without an answer.
    Close(String),
}

/// Per-connection SASL state.
pub struct Authenticator {
    cfg: Arc<SaslServerConfig>,
    state: State,
    principal: Option<String>,
    /// Logged in with a delegation token (SCRAM `tokenauth=true`).
    token_authenticated: bool,
    expires: Option<Instant>,
}

fn chunks(r: crate::error::Result<Option<Vec<Chunk>>>) -> Step {
    match r {
        Ok(Some(c)) => Step::Reply(c),
        Ok(None) => Step::Close("no response encoded".into()),
        Err(e) => Step::Close(e.to_string()),
    }
}

impl Authenticator {
    pub fn new(cfg: Arc<SaslServerConfig>) -> Self {
        Self {
            cfg,
            state: State::Handshake,
            principal: None,
            token_authenticated: false,
            expires: None,
        }
    }

    /// True once authenticated with a delegation token (such sessions may not use the
    /// token APIs, as in Kafka).
    pub fn token_authenticated(&self) -> bool {
        matches!(self.state, State::Done) && self.token_authenticated
    }

    /// `User:<name>` once authenticated.
    pub fn principal(&self) -> Option<&str> {
        match self.state {
            State::Done => self.principal.as_deref(),
            _ => None,
        }
    }

    /// Whether this frame belongs to the authenticator: everything before
    /// authentication, and a SaslHandshake after it (re-authentication).
    pub fn wants(&self, frame: &[u8]) -> bool {
        match self.state {
            State::Done => {
                frame.len() >= 2
                    && i16::from_be_bytes([frame[0], frame[1]]) == ApiKey::SaslHandshake as i16
                    // Sessions with a lifetime (reauth or a token's expiry) may re-authenticate.
                    && (self.cfg.reauth_ms > 0 || self.expires.is_some())
            }
            _ => true,
        }
    }

    /// True when the authenticated session has passed its lifetime.
    pub fn expired(&self, now: Instant) -> bool {
        matches!(self.state, State::Done) && self.expires.is_some_and(|e| now >= e)
    }

    /// Handles one frame the authenticator [`wants`](Self::wants).
    pub fn on_frame(&mut self, frame: Bytes) -> Step {
        if let State::Token { legacy: true, .. } = self.state {
            return self.legacy_token(&frame);
        }
        let mut body = frame;
        let header = match parse_request_header(&mut body) {
            Ok(h) => h,
            Err(e) => return Step::Close(format!("invalid request during SASL exchange: {e}")),
        };
        let key = ApiKey::try_from(header.request_api_key).ok();
        match (&self.state, key) {
            (State::Handshake, Some(ApiKey::ApiVersions)) => Step::Forward,
            (State::Handshake | State::Done, Some(ApiKey::SaslHandshake)) => {
                self.handshake(&header, body)
            }
            (State::Token { legacy: false, .. }, Some(ApiKey::SaslAuthenticate)) => {
                self.authenticate(&header, body)
            }
            (_, k) => Step::Close(format!(
                "Unexpected Kafka request of type {} during SASL handshake",
                k.map(|k| format!("{k:?}"))
                    .unwrap_or_else(|| header.request_api_key.to_string())
            )),
        }
    }

    fn handshake(&mut self, header: &RequestHeader, mut body: Bytes) -> Step {
        let v = header.request_api_version;
        if !(0..=1).contains(&v) {
            return Step::Close(format!("unsupported SaslHandshake version {v}"));
        }
        let req: SaslHandshakeRequest = match decode(&mut body, v) {
            Ok(r) => r,
            Err(e) => return Step::Close(e.to_string()),
        };
        let reauth = matches!(self.state, State::Done);
        let mechanisms = self
            .cfg
            .enabled
            .iter()
            .map(|m| StrBytes::from_string(m.clone()))
            .collect();
        let wanted = req.mechanism.to_string();
        let mech = if self.cfg.enabled.contains(&wanted) {
            match wanted.as_str() {
                "PLAIN" => Some(Mech::Plain),
                "OAUTHBEARER" => Some(Mech::OAuthBearer(OAuthBearerServer::default())),
                other => ScramMechanism::from_name(other)
                    .map(|m| Mech::Scram(Box::new(ScramServer::new(m)))),
            }
        } else {
            None
        };
        let Some(mech) = mech.filter(|_| !(reauth && v == 0)) else {
            let resp = SaslHandshakeResponse::default()
                .with_error_code(UNSUPPORTED_SASL_MECHANISM)
                .with_mechanisms(mechanisms);
            return match respond(header, resp) {
                Ok(Some(c)) => {
                    Step::ReplyAndClose(c, format!("Unsupported SASL mechanism {wanted}"))
                }
                _ => Step::Close(format!("Unsupported SASL mechanism {wanted}")),
            };
        };
        self.state = State::Token {
            mechanism: wanted,
            mech,
            legacy: v == 0,
        };
        chunks(respond(
            header,
            SaslHandshakeResponse::default().with_mechanisms(mechanisms),
        ))
    }

    /// Runs the mechanism on one token: `Ok((challenge, Some(done)))` when done,
    /// `Err((client message, log message))` on failure.
    fn evaluate(&mut self, token: &[u8]) -> Result<(Vec<u8>, Option<Done>), (String, String)> {
        let State::Token {
            mechanism, mech, ..
        } = &mut self.state
        else {
            return Err((
                "Illegal SASL state".into(),
                "no exchange in progress".into(),
            ));
        };
        let generic = format!(
            "Authentication failed during {} due to invalid credentials with SASL mechanism {mechanism}",
            if self.principal.is_some() { "re-authentication" } else { "authentication" }
        );
        let result = match mech {
            Mech::Plain => match plain::authenticate(&self.cfg.plain_users, token) {
                Ok(user) => Ok((Vec::new(), Some((user, None, false)))),
                // PlainSaslServer's own "Authentication failed: ..." messages reach the client.
                Err(e) if e.starts_with("Authentication failed:") => Err((e.clone(), e)),
                Err(e) => Err((generic.clone(), e)),
            },
            Mech::Scram(s) => s
                .evaluate(&self.cfg.scram, token)
                .map(|(c, l)| {
                    let delegation = l.as_ref().is_some_and(|l| l.token_expiry_ms.is_some());
                    (c, l.map(|l| (l.user, l.token_expiry_ms, delegation)))
                })
                .map_err(|e| (generic.clone(), e)),
            Mech::OAuthBearer(s) => {
                match s.evaluate(&self.cfg.oauth, token, crate::security::tokens::now_ms()) {
                    Ok(oauthbearer::Outcome::Challenge(c)) => Ok((c, None)),
                    Ok(oauthbearer::Outcome::Done { user, expiry_ms }) => {
                        Ok((Vec::new(), Some((user, Some(expiry_ms), false))))
                    }
                    Err(oauthbearer::Failure::Client(m)) => Err((m.clone(), m)),
                    Err(oauthbearer::Failure::Generic(m)) => Err((generic.clone(), m)),
                }
            }
        };
        let (challenge, done) = result?;
        let Some((user, token_expiry, delegation)) = done else {
            return Ok((challenge, None));
        };
        let principal = format!("User:{user}");
        if let Some(prev) = &self.principal {
            if *prev != principal {
                return Err((
                    format!(
                        "Cannot change principals during re-authentication from {prev}: {principal}"
                    ),
                    "principal changed during re-authentication".into(),
                ));
            }
        }
        Ok((challenge, Some((principal, token_expiry, delegation))))
    }

    /// Marks the session authenticated and returns its lifetime in ms (0 = unbounded), as
    /// Kafka's `ReauthInfo`: the smaller of `connections.max.reauth.ms` and the time left
    /// before the credential (a delegation token, an OAUTHBEARER token) expires.
    fn complete(&mut self, (principal, token_expiry_ms, delegation): Done) -> i64 {
        self.principal = Some(principal);
        self.token_authenticated = delegation;
        self.state = State::Done;
        let reauth = (self.cfg.reauth_ms > 0).then_some(self.cfg.reauth_ms);
        let left = token_expiry_ms.map(|e| (e - crate::security::tokens::now_ms()).max(0));
        let lifetime = match (left, reauth) {
            (None, None) => None,
            (Some(l), None) => Some(l),
            (None, Some(r)) => Some(r),
            (Some(l), Some(r)) => Some(l.min(r)),
        };
        self.expires = lifetime.map(|l| Instant::now() + Duration::from_millis(l as u64));
        lifetime.unwrap_or(0)
    }

    fn authenticate(&mut self, header: &RequestHeader, mut body: Bytes) -> Step {
        let v = header.request_api_version;
        if !(0..=2).contains(&v) {
            return Step::Close(format!("unsupported SaslAuthenticate version {v}"));
        }
        let req: SaslAuthenticateRequest = match decode(&mut body, v) {
            Ok(r) => r,
            Err(e) => return Step::Close(e.to_string()),
        };
        match self.evaluate(&req.auth_bytes) {
            Ok((challenge, done)) => {
                let mut resp =
                    SaslAuthenticateResponse::default().with_auth_bytes(challenge.into());
                if let Some(done) = done {
                    resp.session_lifetime_ms = self.complete(done);
                }
                chunks(respond(header, resp))
            }
            Err((client_msg, log_msg)) => {
                let resp = SaslAuthenticateResponse::default()
                    .with_error_code(SASL_AUTHENTICATION_FAILED)
                    .with_error_message(Some(StrBytes::from_string(client_msg)));
                match respond(header, resp) {
                    Ok(Some(c)) => {
                        Step::ReplyAndClose(c, format!("Failed authentication: {log_msg}"))
                    }
                    _ => Step::Close(format!("Failed authentication: {log_msg}")),
                }
            }
        }
    }

    fn legacy_token(&mut self, frame: &Bytes) -> Step {
        match self.evaluate(frame) {
            Ok((challenge, done)) => {
                if let Some(done) = done {
                    self.complete(done);
                }
                Step::Reply(vec![Chunk::Bytes(Bytes::from(challenge))])
            }
            // Legacy clients get no error frame: Kafka just closes.
            Err((_, log_msg)) => Step::Close(format!("Failed authentication: {log_msg}")),
        }
    }
}

/// Error code a SaslHandshake/SaslAuthenticate gets when it reaches dispatch (a
/// non-SASL listener, or after authentication without re-authentication).
pub const AFTER_AUTH_ERROR: i16 = ILLEGAL_SASL_STATE;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::protocol::{Encodable, Request};

    fn frame<R: Request + Encodable>(req: &R, v: i16) -> Bytes {
        let mut b = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(v)
            .with_client_id(Some(StrBytes::from_static_str("t")))
            .encode(&mut b, R::header_version(v))
            .unwrap();
        req.encode(&mut b, v).unwrap();
        b.freeze()
    }

    fn cfg(reauth_ms: i64) -> Arc<SaslServerConfig> {
        Arc::new(SaslServerConfig {
            enabled: vec!["PLAIN".into(), "SCRAM-SHA-256".into()],
            plain_users: PlainUsers::from_options(&std::collections::BTreeMap::from([(
                "user_alice".to_string(),
                "pw".to_string(),
            )])),
            scram: Arc::new(ScramStore::default()),
            reauth_ms,
            oauth: UnsecuredValidator::default(),
        })
    }

    fn reply(s: Step) -> Vec<Chunk> {
        match s {
            Step::Reply(c) => c,
            _ => panic!("expected a reply"),
        }
    }

    #[test]
    fn plain_v1_flow_and_reauth() {
        let mut a = Authenticator::new(cfg(60_000));
        let hs = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN"));
        reply(a.on_frame(frame(&hs, 1)));
        let auth =
            SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from_static(b"\0alice\0pw"));
        reply(a.on_frame(frame(&auth, 2)));
        assert_eq!(a.principal(), Some("User:alice"));
        assert!(!a.expired(Instant::now()));
        assert!(a.expired(Instant::now() + Duration::from_secs(61)));
        let f = frame(&hs, 1);
        assert!(a.wants(&f));
        reply(a.on_frame(f));
        assert_eq!(a.principal(), None);
        reply(a.on_frame(frame(&auth, 1)));
        assert_eq!(a.principal(), Some("User:alice"));
    }

    #[test]
    fn refusals_close() {
        let mut a = Authenticator::new(cfg(0));
        let hs =
            SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("GSSAPI"));
        assert!(matches!(a.on_frame(frame(&hs, 1)), Step::ReplyAndClose(..)));

        let mut a = Authenticator::new(cfg(0));
        let md = kafka_protocol::messages::MetadataRequest::default();
        assert!(matches!(a.on_frame(frame(&md, 4)), Step::Close(_)));

        let mut a = Authenticator::new(cfg(0));
        let hs = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN"));
        reply(a.on_frame(frame(&hs, 1)));
        let bad =
            SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from_static(b"\0alice\0no"));
        assert!(matches!(
            a.on_frame(frame(&bad, 1)),
            Step::ReplyAndClose(..)
        ));
        assert_eq!(a.principal(), None);
    }

    #[test]
    fn legacy_v0_raw_tokens() {
        let mut a = Authenticator::new(cfg(0));
        let hs = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN"));
        reply(a.on_frame(frame(&hs, 0)));
        let r = reply(a.on_frame(Bytes::from_static(b"\0alice\0pw")));
        assert_eq!(r.iter().map(Chunk::len).sum::<usize>(), 0);
        assert_eq!(a.principal(), Some("User:alice"));
        assert!(!a.wants(b"\0\x11"));
    }
}
