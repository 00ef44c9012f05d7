//! Kafka's `EncryptingPasswordEncoder`: how password-typed dynamic broker configs are kept in
//! `/config/brokers/<id>`, so that a Kafka broker and a Samsa broker with the same
//! `password.encoder.secret` read each other's values.
//!
//! The stored value is a CSV map `key:value,...` (Kafka's `Csv.parseCsvMap` reads it):
//! `initializationVector`, `keyLength` (bits), `salt` (256 random bytes),
//! `keyFactoryAlgorithm`, `cipherAlgorithm`, `iterations`, `passwordLength` (UTF-16 code
//! units, a sanity check) and `encryptedPassword`; byte values are standard base64. The key
//! is PBKDF2 (HMAC-SHA512, or SHA1 when so named) of the secret over the salt; the cipher
//! is AES in CBC mode with PKCS#5 padding and a random IV. The keys are written in the
//! order Java's `HashMap` iterates them, so the text looks like Kafka's.
//!
//! Only `AES/CBC/PKCS5Padding` (Kafka's default `password.encoder.cipher.algorithm`) is
//! supported; another cipher name is refused at start-up.

use aes::cipher::{block_padding::Pkcs7, BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rand::RngCore;

/// Kafka's default cipher (`password.encoder.cipher.algorithm`).
pub const DEFAULT_CIPHER: &str = "AES/CBC/PKCS5Padding";
/// Kafka's default key factory when none is configured (`PBKDF2WithHmacSHA512`).
pub const DEFAULT_KEY_FACTORY: &str = "PBKDF2WithHmacSHA512";

/// Why a value could not be encoded or decoded (Kafka's `ConfigException` texts).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EncoderError(pub String);

fn err(s: impl Into<String>) -> EncoderError {
    EncoderError(s.into())
}

/// One configured encoder (`password.encoder.*` keys).
#[derive(Clone)]
pub struct PasswordEncoder {
    secret: String,
    key_factory: String,
    cipher: String,
    key_length: u32,
    iterations: u32,
}

impl std::fmt::Debug for PasswordEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordEncoder")
            .field("key_factory", &self.key_factory)
            .field("cipher", &self.cipher)
            .field("key_length", &self.key_length)
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl PasswordEncoder {
    /// `key_factory` `None` = Kafka's default (`PBKDF2WithHmacSHA512`).
    pub fn new(
        secret: &str,
        key_factory: Option<&str>,
        cipher: &str,
        key_length: u32,
        iterations: u32,
    ) -> Result<Self, EncoderError> {
        let key_factory = key_factory.unwrap_or(DEFAULT_KEY_FACTORY).to_string();
        check_algorithms(&key_factory, cipher, key_length)?;
        Ok(Self {
            secret: secret.to_string(),
            key_factory,
            cipher: cipher.to_string(),
            key_length,
            iterations,
        })
    }

    fn derive(
        &self,
        key_factory: &str,
        salt: &[u8],
        iterations: u32,
        key_length: u32,
    ) -> Result<Vec<u8>, EncoderError> {
        let mut key = vec![0u8; (key_length / 8) as usize];
        match key_factory {
            "PBKDF2WithHmacSHA512" => pbkdf2::pbkdf2_hmac::<sha2::Sha512>(
                self.secret.as_bytes(),
                salt,
                iterations,
                &mut key,
            ),
            "PBKDF2WithHmacSHA256" => pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
                self.secret.as_bytes(),
                salt,
                iterations,
                &mut key,
            ),
            other => return Err(err(format!("Unsupported key factory algorithm {other}"))),
        }
        Ok(key)
    }

    /// Encrypts `password` with a fresh salt and IV.
    pub fn encode(&self, password: &str) -> Result<String, EncoderError> {
        let mut rng = rand::thread_rng();
        let mut salt = [0u8; 256];
        rng.fill_bytes(&mut salt);
        let mut iv = [0u8; 16];
        rng.fill_bytes(&mut iv);
        let key = self.derive(&self.key_factory, &salt, self.iterations, self.key_length)?;
        let encrypted = encrypt(&key, &iv, password.as_bytes())?;
        let fields = [
            ("initializationVector", B64.encode(iv)),
            ("keyLength", self.key_length.to_string()),
            ("salt", B64.encode(salt)),
            ("keyFactoryAlgorithm", self.key_factory.clone()),
            ("cipherAlgorithm", self.cipher.clone()),
            ("iterations", self.iterations.to_string()),
            (
                "passwordLength",
                password.encode_utf16().count().to_string(),
            ),
            ("encryptedPassword", B64.encode(encrypted)),
        ];
        Ok(fields
            .iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect::<Vec<_>>()
            .join(","))
    }

    /// Decrypts a value written by [`Self::encode`] or by Kafka, with the parameters stored
    /// in it.
    pub fn decode(&self, encoded: &str) -> Result<String, EncoderError> {
        let params = parse_csv_map(encoded);
        let get = |k: &str| {
            params
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
                .ok_or_else(|| err(format!("Password could not be decoded: {k} missing")))
        };
        let int = |k: &str| -> Result<u32, EncoderError> {
            get(k)?
                .parse()
                .map_err(|_| err(format!("Password could not be decoded: bad {k}")))
        };
        let b64 = |k: &str| -> Result<Vec<u8>, EncoderError> {
            B64.decode(get(k)?)
                .map_err(|_| err(format!("Password could not be decoded: bad {k}")))
        };
        let key_factory = get("keyFactoryAlgorithm")?;
        let cipher = get("cipherAlgorithm")?;
        let key_length = int("keyLength")?;
        check_algorithms(key_factory, cipher, key_length)?;
        let key = self.derive(key_factory, &b64("salt")?, int("iterations")?, key_length)?;
        let plain = decrypt(
            &key,
            &b64("initializationVector")?,
            &b64("encryptedPassword")?,
        )
        .ok_or_else(|| err("Password could not be decoded"))?;
        let password =
            String::from_utf8(plain).map_err(|_| err("Password could not be decoded"))?;
        if password.encode_utf16().count() as u64 != u64::from(int("passwordLength")?) {
            return Err(err(
                "Password could not be decoded, sanity check of length failed",
            ));
        }
        Ok(password)
    }
}

fn check_algorithms(key_factory: &str, cipher: &str, key_length: u32) -> Result<(), EncoderError> {
    if !matches!(key_factory, "PBKDF2WithHmacSHA512" | "PBKDF2WithHmacSHA256") {
        return Err(err(format!(
            "Unsupported key factory algorithm {key_factory}"
        )));
    }
    if cipher != DEFAULT_CIPHER {
        return Err(err(format!("Unsupported cipher algorithm {cipher}")));
    }
    if !matches!(key_length, 128 | 192 | 256) {
        return Err(err(format!("Invalid AES key length {key_length}")));
    }
    Ok(())
}

fn encrypt(key: &[u8], iv: &[u8], data: &[u8]) -> Result<Vec<u8>, EncoderError> {
    let bad = |_| err("Invalid AES key or IV");
    Ok(match key.len() {
        16 => cbc::Encryptor::<aes::Aes128>::new_from_slices(key, iv)
            .map_err(bad)?
            .encrypt_padded_vec::<Pkcs7>(data),
        24 => cbc::Encryptor::<aes::Aes192>::new_from_slices(key, iv)
            .map_err(bad)?
            .encrypt_padded_vec::<Pkcs7>(data),
        _ => cbc::Encryptor::<aes::Aes256>::new_from_slices(key, iv)
            .map_err(bad)?
            .encrypt_padded_vec::<Pkcs7>(data),
    })
}

fn decrypt(key: &[u8], iv: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    match key.len() {
        16 => cbc::Decryptor::<aes::Aes128>::new_from_slices(key, iv)
            .ok()?
            .decrypt_padded_vec::<Pkcs7>(data)
            .ok(),
        24 => cbc::Decryptor::<aes::Aes192>::new_from_slices(key, iv)
            .ok()?
            .decrypt_padded_vec::<Pkcs7>(data)
            .ok(),
        _ => cbc::Decryptor::<aes::Aes256>::new_from_slices(key, iv)
            .ok()?
            .decrypt_padded_vec::<Pkcs7>(data)
            .ok(),
    }
}

/// Kafka's `Csv.parseCsvMap`: entries split on commas, key and value on the last colon.
fn parse_csv_map(s: &str) -> Vec<(String, String)> {
    s.split(',')
        .filter_map(|e| {
            let (k, v) = e.rsplit_once(':')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn enc(secret: &str) -> PasswordEncoder {
        PasswordEncoder::new(secret, None, DEFAULT_CIPHER, 128, 4096).unwrap()
    }

    #[test]
    fn round_trip_and_wrong_secret() {
        let e = enc("s3cret");
        let v = e.encode("pässword").unwrap();
        assert!(v.starts_with("initializationVector:"), "{v}");
        assert!(v.contains(",keyFactoryAlgorithm:PBKDF2WithHmacSHA512,"));
        assert!(v.contains(",passwordLength:8,"));
        assert_eq!(e.decode(&v).unwrap(), "pässword");
        assert!(enc("other").decode(&v).is_err());
        assert!(e.decode("garbage").is_err());
    }

    /// Fixed inputs against independent implementations: the key is Python's
    /// `hashlib.pbkdf2_hmac('sha512', b'encoder-secret', bytes([7]*256), 4096, 16)` and the
    /// ciphertext `openssl enc -aes-128-cbc -K <key> -iv 000102..0f` of `hunter2`.
    #[test]
    fn matches_pbkdf2_and_openssl_aes_cbc() {
        let e = enc("encoder-secret");
        let salt = [7u8; 256];
        let key = e.derive("PBKDF2WithHmacSHA512", &salt, 4096, 128).unwrap();
        assert_eq!(
            key.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "97295c03aece037d25fc5a7b566f2354"
        );
        let iv: Vec<u8> = (0u8..16).collect();
        let ct = encrypt(&key, &iv, b"hunter2").unwrap();
        assert_eq!(B64.encode(&ct), "2PQu8olyZZYPz3qYWmOWJw==");
        let v = format!(
            "initializationVector:{},keyLength:128,salt:{},keyFactoryAlgorithm:PBKDF2WithHmacSHA512,\
             cipherAlgorithm:AES/CBC/PKCS5Padding,iterations:4096,passwordLength:7,encryptedPassword:{}",
            B64.encode(&iv),
            B64.encode(salt),
            B64.encode(&ct)
        );
        assert_eq!(e.decode(&v).unwrap(), "hunter2");
        // Whitespace around separators is tolerated as Java's split does.
        assert_eq!(e.decode(&v.replace(',', " , ")).unwrap(), "hunter2");
    }
}
