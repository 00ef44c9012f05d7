//! Key stores and trust stores from the `ssl.*` keys, as Kafka's
//! `DefaultSslEngineFactory` reads them:
//! - `ssl.keystore.type` / `ssl.truststore.type`: `PKCS12`, `PEM`, or `JKS` (Kafka's
//!   default). A "JKS" file that is really PKCS#12 (what `keytool` writes since Java 9) is
//!   read as PKCS#12; a true JKS file (magic `FEEDFEED`) is refused with a message naming
//!   the key and how to convert it.
//! - `ssl.keystore.location` + `ssl.keystore.password` (+ `ssl.key.password` for PEM
//!   keys), or inline PEM in `ssl.keystore.certificate.chain` + `ssl.keystore.key`.
//! - `ssl.truststore.location` + `ssl.truststore.password`, or inline PEM in
//!   `ssl.truststore.certificates`.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::ListenerSettings;

/// A certificate chain and its private key. The key is never printed.
pub struct KeyMaterial {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyMaterial({} certificates)", self.chain.len())
    }
}

/// What went wrong loading a store: names the key, never a secret.
pub type StoreResult<T> = Result<T, String>;

const JKS_MAGIC: [u8; 4] = [0xFE, 0xED, 0xFE, 0xED];

fn store_type(s: &ListenerSettings, key: &str) -> (String, String) {
    s.get(key)
        .map(|(k, v)| (k, v.to_ascii_uppercase()))
        .unwrap_or_else(|| (key.to_string(), "JKS".to_string()))
}

fn read_file(key: &str, path: &str) -> StoreResult<Vec<u8>> {
    std::fs::read(path).map_err(|e| format!("{key}: cannot read {path}: {e}"))
}

/// Why a store named JKS/PKCS12 cannot be read: a PEM file needs `<type key>=PEM`; a true
/// JKS file must be converted.
fn not_pkcs12(type_key: &str, location_key: &str, path: &str, data: &[u8]) -> String {
    if data.starts_with(b"-----BEGIN") {
        return format!(
            "{location_key}={path} is a PEM file but {type_key} is not PEM: set {type_key}=PEM"
        );
    }
    jks_error(type_key, location_key, path)
}

fn jks_error(type_key: &str, location_key: &str, path: &str) -> String {
    format!(
        "{location_key}={path} is a JKS keystore ({type_key}); Samsa reads PKCS12 and PEM \
         only. Convert it with `keytool -importkeystore -srckeystore {path} \
         -destkeystore store.p12 -deststoretype PKCS12` and set {type_key}=PKCS12"
    )
}

fn pem_certs(key: &str, pem: &[u8]) -> StoreResult<Vec<CertificateDer<'static>>> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{key}: invalid PEM certificate: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{key}: no certificate found"));
    }
    Ok(certs)
}

fn pem_key(key: &str, pem: &[u8]) -> StoreResult<PrivateKeyDer<'static>> {
    if std::str::from_utf8(pem).is_ok_and(|s| s.contains("ENCRYPTED PRIVATE KEY")) {
        return Err(format!(
            "{key}: encrypted PEM private keys are not supported; store the key unencrypted \
             (protected by file permissions) or use a PKCS12 keystore"
        ));
    }
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| format!("{key}: no usable private key: {e}"))
}

fn pkcs12(
    key: &str,
    data: &[u8],
    password: &str,
    policy: p12_keystore::Pkcs12ImportPolicy,
) -> StoreResult<p12_keystore::KeyStore> {
    p12_keystore::KeyStore::from_pkcs12(data, password, policy).map_err(|e| {
        format!("{key}: cannot open the PKCS12 store (wrong password or corrupt file): {e}")
    })
}

/// The broker's (or client's) own certificate and key; `None` when no keystore is set.
pub fn load_keystore(s: &ListenerSettings) -> StoreResult<Option<KeyMaterial>> {
    let (type_key, ty) = store_type(s, "ssl.keystore.type");
    if let (Some((ck, chain)), Some((kk, keypem))) = (
        s.get("ssl.keystore.certificate.chain"),
        s.get("ssl.keystore.key"),
    ) {
        if ty != "PEM" {
            return Err(format!("{ck} and {kk} need {type_key}=PEM (it is {ty})"));
        }
        return Ok(Some(KeyMaterial {
            chain: pem_certs(&ck, chain.as_bytes())?,
            key: pem_key(&kk, keypem.as_bytes())?,
        }));
    }
    let Some((lk, path)) = s.get("ssl.keystore.location") else {
        return Ok(None);
    };
    let data = read_file(&lk, &path)?;
    match ty.as_str() {
        "PEM" => Ok(Some(KeyMaterial {
            chain: pem_certs(&lk, &data)?,
            key: pem_key(&lk, &data)?,
        })),
        "PKCS12" | "JKS" => {
            if data.starts_with(&JKS_MAGIC) || (ty == "JKS" && data.first() != Some(&0x30)) {
                return Err(not_pkcs12(&type_key, &lk, &path, &data));
            }
            let password = s.value("ssl.keystore.password").unwrap_or_default();
            let ks = pkcs12(
                &lk,
                &data,
                &password,
                p12_keystore::Pkcs12ImportPolicy::Strict,
            )?;
            let (_, chain) = ks
                .private_key_chain()
                .ok_or_else(|| format!("{lk}: the keystore holds no private key entry"))?;
            let key = PrivateKeyDer::try_from(chain.key().as_der().to_vec())
                .map_err(|e| format!("{lk}: unusable private key: {e}"))?;
            let certs = chain
                .certs()
                .iter()
                .map(|c| CertificateDer::from(c.as_der().to_vec()))
                .collect::<Vec<_>>();
            if certs.is_empty() {
                return Err(format!("{lk}: the key entry has no certificate"));
            }
            Ok(Some(KeyMaterial { chain: certs, key }))
        }
        other => Err(format!(
            "{type_key}={other} is not supported (use PKCS12, PEM or JKS-as-PKCS12)"
        )),
    }
}

/// Trusted CA certificates; `None` when no truststore is set.
pub fn load_truststore(s: &ListenerSettings) -> StoreResult<Option<Vec<CertificateDer<'static>>>> {
    let (type_key, ty) = store_type(s, "ssl.truststore.type");
    if let Some((k, pem)) = s.get("ssl.truststore.certificates") {
        if ty != "PEM" {
            return Err(format!("{k} needs {type_key}=PEM (it is {ty})"));
        }
        return pem_certs(&k, pem.as_bytes()).map(Some);
    }
    let Some((lk, path)) = s.get("ssl.truststore.location") else {
        return Ok(None);
    };
    let data = read_file(&lk, &path)?;
    match ty.as_str() {
        "PEM" => pem_certs(&lk, &data).map(Some),
        "PKCS12" | "JKS" => {
            if data.starts_with(&JKS_MAGIC) || (ty == "JKS" && data.first() != Some(&0x30)) {
                return Err(not_pkcs12(&type_key, &lk, &path, &data));
            }
            let password = s.value("ssl.truststore.password").unwrap_or_default();
            let ks = pkcs12(&lk, &data, &password, p12_keystore::Pkcs12ImportPolicy::Raw)?;
            let mut certs = Vec::new();
            for (_, entry) in ks.entries() {
                match entry {
                    p12_keystore::KeyStoreEntry::Certificate(c) => {
                        certs.push(CertificateDer::from(c.as_der().to_vec()))
                    }
                    p12_keystore::KeyStoreEntry::PrivateKeyChain(ch) => certs.extend(
                        ch.certs()
                            .iter()
                            .map(|c| CertificateDer::from(c.as_der().to_vec())),
                    ),
                    _ => {}
                }
            }
            if certs.is_empty() {
                return Err(format!("{lk}: the truststore holds no certificate"));
            }
            Ok(Some(certs))
        }
        other => Err(format!(
            "{type_key}={other} is not supported (use PKCS12, PEM or JKS-as-PKCS12)"
        )),
    }
}

/// A root store from trusted certificates.
pub fn root_store(certs: &[CertificateDer<'static>]) -> StoreResult<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    for c in certs {
        roots
            .add(c.clone())
            .map_err(|e| format!("truststore: unusable CA certificate: {e}"))?;
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::BTreeMap;

    fn settings(pairs: &[(&str, &str)]) -> ListenerSettings {
        let props: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ListenerSettings::new(Some("ssl"), props)
    }

    #[test]
    fn store_type_mistakes_name_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("k.pem");
        std::fs::write(
            &pem,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let s = settings(&[(
            "listener.name.ssl.ssl.keystore.location",
            pem.to_str().unwrap(),
        )]);
        let e = load_keystore(&s).unwrap_err();
        assert!(e.contains("set ssl.keystore.type=PEM"), "{e}");
        let jks = dir.path().join("k.jks");
        std::fs::write(&jks, [0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2]).unwrap();
        let s = settings(&[
            ("ssl.truststore.location", jks.to_str().unwrap()),
            ("ssl.truststore.type", "JKS"),
        ]);
        let e = load_truststore(&s).unwrap_err();
        assert!(
            e.contains("keytool -importkeystore") && e.contains("ssl.truststore.type=PKCS12"),
            "{e}"
        );
        let s = settings(&[
            ("ssl.keystore.location", "/nonexistent/k.p12"),
            ("ssl.keystore.type", "PKCS12"),
        ]);
        assert!(load_keystore(&s)
            .unwrap_err()
            .starts_with("ssl.keystore.location"));
        let s = settings(&[
            ("ssl.keystore.certificate.chain", "x"),
            ("ssl.keystore.key", "y"),
        ]);
        assert!(load_keystore(&s)
            .unwrap_err()
            .contains("ssl.keystore.type=PEM"));
        assert!(load_keystore(&settings(&[])).unwrap().is_none());
    }
}
