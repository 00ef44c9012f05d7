//! SCRAM-SHA-256 / SCRAM-SHA-512 (RFC 5802, RFC 7677) as Kafka uses it: the credential
//! format stored in ZooKeeper, the key derivation, and the client side of the exchange
//! (the inter-broker client logs in with it; the broker's server side lives in
//! `broker/src/security/sasl/scram.rs` and uses the same primitives).
//!
//! Stored form (Kafka `ScramCredentialUtils.credentialToString`), one per mechanism in
//! `/config/users/<user>`: `salt=<b64>,stored_key=<b64>,server_key=<b64>,iterations=<n>`.

use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256, Sha512};

/// A SCRAM mechanism Kafka supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScramMechanism {
    Sha256,
    Sha512,
}

impl ScramMechanism {
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    /// The SASL mechanism name, also the key in `/config/users/<user>`.
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "SCRAM-SHA-256" => Some(ScramMechanism::Sha256),
            "SCRAM-SHA-512" => Some(ScramMechanism::Sha512),
            _ => None,
        }
    }

    /// Kafka's `ScramMechanism.minIterations` (4096 for both).
    pub fn min_iterations(self) -> u32 {
        4096
    }

    /// `ScramMechanism` type code in Describe/AlterUserScramCredentials.
    pub fn type_code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    pub fn from_type_code(code: i8) -> Option<Self> {
        match code {
            1 => Some(ScramMechanism::Sha256),
            2 => Some(ScramMechanism::Sha512),
            _ => None,
        }
    }

    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => Sha256::digest(data).to_vec(),
            ScramMechanism::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    pub fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => {
                // HMAC accepts keys of any length; new_from_slice cannot fail.
                let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key)
                    .unwrap_or_else(|_| unreachable_hmac());
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            ScramMechanism::Sha512 => {
                let mut m = <Hmac<Sha512> as Mac>::new_from_slice(key)
                    .unwrap_or_else(|_| unreachable_hmac());
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    /// `Hi(password, salt, i)` = PBKDF2 with this mechanism's HMAC.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => {
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out.to_vec()
            }
            ScramMechanism::Sha512 => {
                let mut out = [0u8; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
                out.to_vec()
            }
        }
    }
}

#[allow(clippy::panic)]
fn unreachable_hmac<T>() -> T {
    panic!("HMAC accepts keys of every length")
}

/// One user's stored SCRAM credential for one mechanism. Never logged (no `Debug` of
/// the keys).
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: u32,
}

impl fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScramCredential(iterations={})", self.iterations)
    }
}

impl ScramCredential {
    /// Derives the stored credential from a password (what `kafka-configs.sh` does).
    pub fn from_password(
        mech: ScramMechanism,
        password: &str,
        salt: &[u8],
        iterations: u32,
    ) -> Self {
        let salted = mech.salted_password(password.as_bytes(), salt, iterations);
        Self::from_salted_password(mech, &salted, salt, iterations)
    }

    /// As [`ScramCredential::from_password`] with a salted password computed elsewhere
    /// (AlterUserScramCredentials carries it).
    pub fn from_salted_password(
        mech: ScramMechanism,
        salted: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> Self {
        let client_key = mech.hmac(salted, b"Client Key");
        let stored_key = mech.hash(&client_key);
        let server_key = mech.hmac(salted, b"Server Key");
        Self {
            salt: salt.to_vec(),
            stored_key,
            server_key,
            iterations,
        }
    }

    /// A fresh random salt, as Kafka's `ScramFormatter.secureRandomBytes`.
    pub fn random_salt() -> Vec<u8> {
        let mut s = vec![0u8; 32];
        rand::thread_rng().fill_bytes(&mut s);
        s
    }

    /// Kafka's string form (see module docs).
    pub fn to_kafka_string(&self) -> String {
        format!(
            "salt={},stored_key={},server_key={},iterations={}",
            B64.encode(&self.salt),
            B64.encode(&self.stored_key),
            B64.encode(&self.server_key),
            self.iterations
        )
    }

    /// Parses Kafka's string form; `None` when a field is missing or malformed.
    pub fn parse_kafka_string(s: &str) -> Option<Self> {
        let (mut salt, mut stored, mut server, mut iterations) = (None, None, None, None);
        for part in s.split(',') {
            let (k, v) = part.split_once('=')?;
            match k.trim() {
                "salt" => salt = B64.decode(v.trim()).ok(),
                "stored_key" => stored = B64.decode(v.trim()).ok(),
                "server_key" => server = B64.decode(v.trim()).ok(),
                "iterations" => iterations = v.trim().parse().ok(),
                _ => {}
            }
        }
        Some(Self {
            salt: salt?,
            stored_key: stored?,
            server_key: server?,
            iterations: iterations?,
        })
    }
}

/// A random printable nonce (Kafka uses 32 random bytes, base64-free alphanumerics work).
pub fn nonce() -> String {
    use rand::distributions::Alphanumeric;
    use rand::Rng;
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// SCRAM `saslname` encoding of a user name (`,` → `=2C`, `=` → `=3D`).
pub fn encode_saslname(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

/// Inverse of [`encode_saslname`]; `None` on a stray `=`.
pub fn decode_saslname(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 3)?;
        match code {
            "2C" => out.push(','),
            "3D" => out.push('='),
            _ => return None,
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// Client side of one SCRAM exchange (used by the inter-broker client).
pub struct ScramClient {
    mech: ScramMechanism,
    user: String,
    password: String,
    client_nonce: String,
    client_first_bare: String,
    expected_server_signature: Option<Vec<u8>>,
}

impl ScramClient {
    pub fn new(mech: ScramMechanism, user: &str, password: &str) -> Self {
        Self::with_nonce(mech, user, password, nonce())
    }

    pub fn with_nonce(mech: ScramMechanism, user: &str, password: &str, nonce: String) -> Self {
        let client_first_bare = format!("n={},r={}", encode_saslname(user), nonce);
        Self {
            mech,
            user: user.to_string(),
            password: password.to_string(),
            client_nonce: nonce,
            client_first_bare,
            expected_server_signature: None,
        }
    }

    /// Adds the `tokenauth=true` extension: a delegation-token login (user = token id,
    /// password = the token's base64 HMAC).
    pub fn with_token_auth(mut self) -> Self {
        self.client_first_bare.push_str(",tokenauth=true");
        self
    }

    /// `client-first-message` (no channel binding, no authzid).
    pub fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// Answers `server-first-message` with `client-final-message`.
    pub fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, String> {
        let sf = std::str::from_utf8(server_first).map_err(|_| "server-first is not UTF-8")?;
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for attr in sf.split(',') {
            if let Some(v) = attr.strip_prefix("r=") {
                nonce = Some(v);
            } else if let Some(v) = attr.strip_prefix("s=") {
                salt = B64.decode(v).ok();
            } else if let Some(v) = attr.strip_prefix("i=") {
                iterations = v.parse::<u32>().ok();
            } else if let Some(v) = attr.strip_prefix("e=") {
                return Err(format!("server error: {v}"));
            }
        }
        let (nonce, salt, iterations) = match (nonce, salt, iterations) {
            (Some(n), Some(s), Some(i)) => (n, s, i),
            _ => return Err("malformed server-first-message".into()),
        };
        if !nonce.starts_with(&self.client_nonce) {
            return Err("server nonce does not extend the client nonce".into());
        }
        if iterations < self.mech.min_iterations() {
            return Err(format!("iterations {iterations} below the minimum"));
        }
        let salted = self
            .mech
            .salted_password(self.password.as_bytes(), &salt, iterations);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{},{}", self.client_first_bare, sf, without_proof);
        let client_key = self.mech.hmac(&salted, b"Client Key");
        let stored_key = self.mech.hash(&client_key);
        let client_signature = self.mech.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&client_signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = self.mech.hmac(&salted, b"Server Key");
        self.expected_server_signature = Some(self.mech.hmac(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks `server-final-message`.
    pub fn verify_server_final(&self, server_final: &[u8]) -> Result<(), String> {
        let sf = std::str::from_utf8(server_final).map_err(|_| "server-final is not UTF-8")?;
        if let Some(e) = sf.strip_prefix("e=") {
            return Err(format!("server error: {e}"));
        }
        let v = sf
            .strip_prefix("v=")
            .and_then(|v| B64.decode(v.split(',').next().unwrap_or(v)).ok())
            .ok_or("malformed server-final-message")?;
        match &self.expected_server_signature {
            Some(expected) if *expected == v => Ok(()),
            _ => Err(format!(
                "invalid server signature for user {} (wrong server credentials?)",
                self.user
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// RFC 7677 section 3 test vector (user "user", password "pencil").
    #[test]
    fn rfc7677_sha256_vector() {
        let mut c = ScramClient::with_nonce(
            ScramMechanism::Sha256,
            "user",
            "pencil",
            "rOprNGfwEbeRWgbNEkqO".to_string(),
        );
        assert_eq!(c.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first =
            b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let fin = c.client_final(server_first).unwrap();
        assert_eq!(
            String::from_utf8(fin).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        c.verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        assert!(c
            .verify_server_final(b"v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .is_err());
    }

    #[test]
    fn credential_string_round_trip() {
        let c = ScramCredential::from_password(ScramMechanism::Sha512, "secret", b"salty", 4096);
        let s = c.to_kafka_string();
        assert!(s.starts_with("salt=c2FsdHk=,stored_key="));
        assert!(s.ends_with(",iterations=4096"));
        assert_eq!(ScramCredential::parse_kafka_string(&s).unwrap(), c);
        assert!(ScramCredential::parse_kafka_string("salt=xx").is_none());
        assert!(!format!("{c:?}").contains(&B64.encode(&c.stored_key)));
    }

    #[test]
    fn saslname_escaping() {
        assert_eq!(encode_saslname("a,b=c"), "a=2Cb=3Dc");
        assert_eq!(decode_saslname("a=2Cb=3Dc").unwrap(), "a,b=c");
        assert!(decode_saslname("a=zz").is_none());
        assert!(decode_saslname("a=").is_none());
    }
}
