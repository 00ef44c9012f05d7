//! Listener security: TLS beneath the connection, SASL as a state the connection passes
//! through before dispatch, and the principal handlers see. Built once at start-up from
//! `server.properties`; every problem is a start-up error naming the key.
//!
//! - [`tls`]: the TLS acceptor of SSL and SASL_SSL listeners.
//! - [`sasl`]: the SaslHandshake/SaslAuthenticate state machine, PLAIN (JAAS users) and
//!   SCRAM (credentials cached from ZooKeeper).
//! - [`principal`]: `User:` principals, the certificate DN, `ssl.principal.mapping.rules`.
//! - [`tokens`]: delegation tokens (ZooKeeper store, cache, SCRAM `tokenauth` logins).
//!
//! The inter-broker side (controller channels, replica fetchers, AlterPartition,
//! controlled shutdown) gets a [`ClientSecurity`] for the inter-broker listener.

pub mod authorizer;
pub mod principal;
pub mod sasl;
pub mod tls;
pub mod tokens;

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use samsa_common::config::{BrokerConfig, SecurityProtocol};
use samsa_common::security::client::{ClientSecurity, SaslLogin};
use samsa_common::security::jaas::{self, JaasEntry};
use samsa_common::security::ListenerSettings;

use principal::SslPrincipalMapper;
use sasl::oauthbearer::UnsecuredValidator;
use sasl::plain::PlainUsers;
use sasl::scram::ScramStore;
use sasl::SaslServerConfig;

/// Security shared through the broker context.
#[derive(Debug, Default)]
pub struct SecurityContext {
    /// SCRAM credentials cached from `/config/users`.
    pub scram: Arc<ScramStore>,
    /// How this broker connects to others (inter-broker listener); unset = PLAINTEXT.
    pub inter_broker: OnceLock<Arc<ClientSecurity>>,
    /// ACL authorizer (`authorizer.class.name`); disabled allows everything.
    pub authorizer: authorizer::Authorizer,
    /// Delegation tokens (its cache is shared with [`ScramStore::tokens`]).
    pub tokens: Arc<tokens::TokenManager>,
}

impl SecurityContext {
    /// The inter-broker client security, `None` for PLAINTEXT.
    pub fn client(&self) -> Option<Arc<ClientSecurity>> {
        self.inter_broker.get().cloned()
    }
}

/// Everything a listener's connections need.
pub struct ListenerSecurity {
    pub protocol: SecurityProtocol,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub sasl: Option<Arc<SaslServerConfig>>,
    pub mapper: SslPrincipalMapper,
}

impl std::fmt::Debug for ListenerSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListenerSecurity")
            .field("protocol", &self.protocol)
            .field("tls", &self.tls.is_some())
            .field("sasl", &self.sasl)
            .finish()
    }
}

impl ListenerSecurity {
    /// A PLAINTEXT listener.
    pub fn plaintext() -> Self {
        Self {
            protocol: SecurityProtocol::Plaintext,
            tls: None,
            sasl: None,
            mapper: SslPrincipalMapper::default(),
        }
    }
}

const PLAIN_MODULE: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";
const SCRAM_MODULE: &str = "org.apache.kafka.common.security.scram.ScramLoginModule";

fn module_for(mechanism: &str) -> Option<&'static str> {
    match mechanism {
        "PLAIN" => Some(PLAIN_MODULE),
        "SCRAM-SHA-256" | "SCRAM-SHA-512" => Some(SCRAM_MODULE),
        "OAUTHBEARER" => Some(sasl::oauthbearer::MODULE),
        _ => None,
    }
}

/// The JAAS file named in `KAFKA_OPTS`, parsed once.
fn jaas_file() -> Result<Option<std::collections::BTreeMap<String, Vec<JaasEntry>>>, String> {
    let Some(path) = std::env::var("KAFKA_OPTS")
        .ok()
        .and_then(|o| jaas::jaas_file_from_kafka_opts(&o))
    else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("java.security.auth.login.config={path}: {e}"))?;
    jaas::parse_file(&text)
        .map(Some)
        .map_err(|e| format!("java.security.auth.login.config={path}: {e}"))
}

/// The JAAS entry for `mechanism` on `listener`, in Kafka's order:
/// `listener.name.<l>.<mechanism>.sasl.jaas.config`, then `sasl.jaas.config`, then the
/// JAAS file's `<l>.KafkaServer` section, then its `KafkaServer` section.
fn jaas_entry(
    s: &ListenerSettings,
    listener: &str,
    mechanism: &str,
    file: &Option<std::collections::BTreeMap<String, Vec<JaasEntry>>>,
) -> Result<Option<JaasEntry>, String> {
    let key = format!("{}.sasl.jaas.config", mechanism.to_ascii_lowercase());
    let inline = s.prefixed_only(&key).or_else(|| s.get("sasl.jaas.config"));
    if let Some((k, v)) = inline {
        return jaas::parse_inline(&v)
            .map(Some)
            .map_err(|e| format!("{k}: {e}"));
    }
    let Some(file) = file else { return Ok(None) };
    let module = module_for(mechanism);
    let section = file
        .get(&format!("{}.KafkaServer", listener.to_ascii_lowercase()))
        .or_else(|| file.get("KafkaServer"));
    Ok(section.and_then(|entries| {
        entries
            .iter()
            .find(|e| Some(e.login_module.as_str()) == module)
            .cloned()
    }))
}

/// `sasl.enabled.mechanisms` of a listener, refusing what Samsa cannot serve.
fn enabled_mechanisms(s: &ListenerSettings, listener: &str) -> Result<Vec<String>, String> {
    let (key, _) = s
        .get("sasl.enabled.mechanisms")
        .unwrap_or_else(|| ("sasl.enabled.mechanisms".into(), "GSSAPI".into()));
    let list = s
        .list("sasl.enabled.mechanisms")
        .unwrap_or_else(|| vec!["GSSAPI".into()]);
    for m in &list {
        match m.as_str() {
            "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512" | "OAUTHBEARER" => {}
            "GSSAPI" => {
                return Err(format!(
                    "{key}: GSSAPI (Kerberos) is not supported by Samsa (listener {listener}); \
                     set {key} to PLAIN, SCRAM-SHA-256 and/or SCRAM-SHA-512 \
                     (Kafka's default for {key} is GSSAPI)"
                ))
            }
            other => {
                return Err(format!(
                    "{key}: SASL mechanism {other} is not supported (listener {listener}); \
                     Samsa serves PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER \
                     (unsecured JWTs)"
                ))
            }
        }
    }
    if list.is_empty() {
        return Err(format!(
            "{key}: no SASL mechanism enabled for listener {listener}"
        ));
    }
    Ok(list)
}

/// Kafka's default OAUTHBEARER server callback handler, the only one Samsa implements.
const UNSECURED_VALIDATOR: &str = "org.apache.kafka.common.security.oauthbearer.internals.\
    unsecured.OAuthBearerUnsecuredValidatorCallbackHandler";

/// The unsecured-JWT validator of a listener with OAUTHBEARER: its JAAS entry is required (as
/// in Kafka), and another server callback handler (e.g. KIP-768's JWKS validator) is refused.
fn oauth_validator(
    s: &ListenerSettings,
    listener: &str,
    file: &Option<std::collections::BTreeMap<String, Vec<JaasEntry>>>,
) -> Result<UnsecuredValidator, String> {
    let key = "oauthbearer.sasl.server.callback.handler.class";
    if let Some((k, class)) = s.prefixed_only(key) {
        if class.trim() != UNSECURED_VALIDATOR {
            return Err(format!(
                "{k}={}: only Kafka's unsecured-JWT validator \
                 ({UNSECURED_VALIDATOR}) is supported for OAUTHBEARER",
                class.trim()
            ));
        }
    }
    let entry = jaas_entry(s, listener, "OAUTHBEARER", file)?.ok_or_else(|| {
        format!(
            "listener {listener}: OAUTHBEARER is enabled but has no JAAS configuration: set \
             listener.name.{}.oauthbearer.sasl.jaas.config={} required;",
            listener.to_ascii_lowercase(),
            sasl::oauthbearer::MODULE
        )
    })?;
    UnsecuredValidator::from_options(&entry.options)
        .map_err(|e| format!("listener {listener}: OAUTHBEARER JAAS options: {e}"))
}

/// Settings of one listener.
pub fn listener_settings(config: &BrokerConfig, listener: &str) -> ListenerSettings {
    ListenerSettings::new(Some(listener), config.all_props())
}

/// Builds the security of every listener (by name). Errors name the key at fault.
pub fn build_listeners(
    config: &BrokerConfig,
    scram: &Arc<ScramStore>,
) -> Result<HashMap<String, Arc<ListenerSecurity>>, String> {
    let file = jaas_file()?;
    let reauth_ms = config
        .get("connections.max.reauth.ms")
        .and_then(|v| v.trim().parse::<i64>().ok())
        .unwrap_or(0);
    let mut out = HashMap::new();
    for ep in &config.listeners {
        let s = listener_settings(config, &ep.name);
        let protocol = ep.security_protocol;
        let tls = match protocol {
            SecurityProtocol::Ssl | SecurityProtocol::SaslSsl => {
                Some(tokio_rustls::TlsAcceptor::from(Arc::new(
                    tls::server_config(&s, protocol)
                        .map_err(|e| format!("listener {}: {e}", ep.name))?,
                )))
            }
            _ => None,
        };
        let sasl = match protocol {
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl => {
                let enabled = enabled_mechanisms(&s, &ep.name)?;
                let plain_users = if enabled.iter().any(|m| m == "PLAIN") {
                    let entry = jaas_entry(&s, &ep.name, "PLAIN", &file)?.ok_or_else(|| {
                        format!(
                            "listener {}: PLAIN is enabled but no JAAS configuration names \
                             its users: set listener.name.{}.plain.sasl.jaas.config (or a \
                             KafkaServer section in the file of \
                             -Djava.security.auth.login.config)",
                            ep.name,
                            ep.name.to_ascii_lowercase()
                        )
                    })?;
                    PlainUsers::from_options(&entry.options)
                } else {
                    PlainUsers::default()
                };
                let oauth = if enabled.iter().any(|m| m == "OAUTHBEARER") {
                    oauth_validator(&s, &ep.name, &file)?
                } else {
                    UnsecuredValidator::default()
                };
                Some(Arc::new(SaslServerConfig {
                    enabled,
                    plain_users,
                    scram: scram.clone(),
                    reauth_ms,
                    oauth,
                }))
            }
            _ => None,
        };
        let mapper = match s.get("ssl.principal.mapping.rules") {
            Some((k, v)) => SslPrincipalMapper::parse(&v).map_err(|e| format!("{k}: {e}"))?,
            None => SslPrincipalMapper::default(),
        };
        out.insert(
            ep.name.clone(),
            Arc::new(ListenerSecurity {
                protocol,
                tls,
                sasl,
                mapper,
            }),
        );
    }
    Ok(out)
}

/// How this broker connects to the others: the inter-broker listener's protocol, its
/// `ssl.*` settings, and for SASL `sasl.mechanism.inter.broker.protocol` with the
/// `username`/`password` of that listener's JAAS entry. `None` for PLAINTEXT.
pub fn inter_broker_client(config: &BrokerConfig) -> Result<Option<ClientSecurity>, String> {
    let listener = config.inter_broker_listener_name.clone();
    let protocol = config
        .listener_security_protocol_map
        .iter()
        .find(|(n, _)| *n == listener)
        .map(|(_, p)| *p)
        .or_else(|| {
            config
                .advertised_listeners
                .iter()
                .find(|e| e.name == listener)
                .map(|e| e.security_protocol)
        })
        .unwrap_or(SecurityProtocol::Plaintext);
    if protocol == SecurityProtocol::Plaintext {
        return Ok(None);
    }
    let s = listener_settings(config, &listener);
    let login = match protocol {
        SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl => {
            let key = "sasl.mechanism.inter.broker.protocol";
            let mechanism = config.get(key).unwrap_or_else(|| "GSSAPI".into());
            let mechanism = mechanism.trim().to_string();
            if module_for(&mechanism).is_none() {
                return Err(format!(
                    "{key}={mechanism} is not supported (Kafka's default is GSSAPI); use PLAIN, \
                     SCRAM-SHA-256 or SCRAM-SHA-512"
                ));
            }
            let enabled = enabled_mechanisms(&s, &listener)?;
            if !enabled.contains(&mechanism) {
                return Err(format!(
                    "{key}={mechanism} must be in sasl.enabled.mechanisms of the inter-broker \
                     listener {listener} ({})",
                    enabled.join(",")
                ));
            }
            let entry = jaas_entry(&s, &listener, &mechanism, &jaas_file()?)?;
            let opt = |k: &str| entry.as_ref().and_then(|e| e.options.get(k).cloned());
            let (Some(username), Some(password)) = (opt("username"), opt("password")) else {
                return Err(format!(
                    "the inter-broker listener {listener} uses SASL {mechanism}, but its JAAS \
                     entry (listener.name.{}.{}.sasl.jaas.config) has no username and password",
                    listener.to_ascii_lowercase(),
                    mechanism.to_ascii_lowercase()
                ));
            };
            Some(SaslLogin {
                mechanism,
                username,
                password,
            })
        }
        _ => None,
    };
    ClientSecurity::new(protocol, &s, login)
        .map(Some)
        .map_err(|e| format!("inter-broker listener {listener}: {e}"))
}

/// Loads every user's SCRAM credentials from `/config/users` into `store`.
pub async fn load_scram_users(
    zk: &samsa_common::zk::session::ZkSession,
    store: &ScramStore,
) -> samsa_common::error::Result<usize> {
    use samsa_common::zk::znodes::config_type;
    let path = samsa_common::zk::znodes::ConfigEntityTypeZNode::path(config_type::USER);
    let users = zk.children(&path).await?.unwrap_or_default();
    let mut n = 0;
    for child in users {
        let config = zk.get_entity_config(config_type::USER, &child).await?;
        if config.keys().any(|k| k.starts_with("SCRAM-")) {
            n += 1;
        }
        let user = samsa_common::zk::znodes::desanitize_entity_name(&child).unwrap_or(child);
        store.set_user(&user, &config);
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<BrokerConfig, String> {
        let mut p: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        p.insert("zookeeper.connect".into(), "x:1".into());
        BrokerConfig::from_props(&p).map_err(|e| e.to_string())
    }

    #[test]
    fn sasl_listener_needs_supported_mechanisms() {
        let ib = ("security.inter.broker.protocol", "SASL_PLAINTEXT");
        let c = config(&[("listeners", "SASL_PLAINTEXT://:0"), ib]).unwrap();
        let e = build_listeners(&c, &Arc::default()).unwrap_err();
        assert!(e.contains("GSSAPI"), "{e}");

        let c = config(&[
            ("listeners", "SASL_PLAINTEXT://:0"),
            ("sasl.enabled.mechanisms", "PLAIN"),
            ib,
        ])
        .unwrap();
        let e = build_listeners(&c, &Arc::default()).unwrap_err();
        assert!(e.contains("plain.sasl.jaas.config"), "{e}");

        let c = config(&[
            ("listeners", "SASL_PLAINTEXT://:0"),
            ib,
            (
                "listener.name.sasl_plaintext.sasl.enabled.mechanisms",
                "PLAIN,SCRAM-SHA-512",
            ),
            (
                "listener.name.sasl_plaintext.plain.sasl.jaas.config",
                "org.apache.kafka.common.security.plain.PlainLoginModule required user_a=\"b\";",
            ),
        ])
        .unwrap();
        let l = build_listeners(&c, &Arc::default()).unwrap();
        let sasl = l["SASL_PLAINTEXT"].sasl.as_ref().unwrap();
        assert_eq!(sasl.enabled, vec!["PLAIN", "SCRAM-SHA-512"]);
        assert_eq!(sasl.plain_users.len(), 1);
    }

    #[test]
    fn oauthbearer_needs_jaas_and_the_unsecured_validator() {
        let base = [
            ("listeners", "SASL_PLAINTEXT://:19093,PLAINTEXT://:19092"),
            ("sasl.enabled.mechanisms", "OAUTHBEARER"),
        ];
        let c = config(&base).unwrap();
        let e = build_listeners(&c, &Arc::default()).unwrap_err();
        assert!(e.contains("oauthbearer.sasl.jaas.config"), "{e}");
        let jaas = (
            "listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config",
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required \
             unsecuredValidatorRequiredScope=\"a b\";",
        );
        let c = config(&[base[0], base[1], jaas]).unwrap();
        let l = build_listeners(&c, &Arc::default()).unwrap();
        let sasl = l["SASL_PLAINTEXT"].sasl.as_ref().unwrap();
        assert_eq!(sasl.enabled, vec!["OAUTHBEARER"]);
        let handler = (
            "listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class",
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
        );
        let c = config(&[base[0], base[1], jaas, handler]).unwrap();
        let e = build_listeners(&c, &Arc::default()).unwrap_err();
        assert!(e.contains("unsecured-JWT validator"), "{e}");
    }

    #[test]
    fn ssl_listener_needs_keystore_and_refuses_jks() {
        let ib = ("security.inter.broker.protocol", "SSL");
        let c = config(&[("listeners", "SSL://:0"), ib]).unwrap();
        let e = build_listeners(&c, &Arc::default()).unwrap_err();
        assert!(e.contains("ssl.keystore.location"), "{e}");

        let dir = tempfile::tempdir().unwrap();
        let jks = dir.path().join("k.jks");
        std::fs::write(&jks, [0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2]).unwrap();
        let c = config(&[
            ("listeners", "SSL://:0"),
            ib,
            ("ssl.keystore.location", jks.to_str().unwrap()),
        ])
        .unwrap();
        let e = build_listeners(&c, &Arc::default()).unwrap_err();
        assert!(
            e.contains("ssl.keystore.type") && e.contains("PKCS12"),
            "{e}"
        );
    }

    #[test]
    fn inter_broker_sasl_login_from_jaas() {
        let c = config(&[
            ("listeners", "INTERNAL://:0,EXTERNAL://:0"),
            ("advertised.listeners", "INTERNAL://h:1,EXTERNAL://h:2"),
            ("listener.security.protocol.map", "INTERNAL:SASL_PLAINTEXT,EXTERNAL:PLAINTEXT"),
            ("inter.broker.listener.name", "INTERNAL"),
            ("sasl.mechanism.inter.broker.protocol", "SCRAM-SHA-256"),
            ("listener.name.internal.sasl.enabled.mechanisms", "SCRAM-SHA-256"),
            (
                "listener.name.internal.scram-sha-256.sasl.jaas.config",
                "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\"s3cret\";",
            ),
        ])
        .unwrap();
        let cs = inter_broker_client(&c).unwrap().unwrap();
        let login = cs.sasl.as_ref().unwrap();
        assert_eq!(login.username, "admin");
        assert_eq!(login.mechanism, "SCRAM-SHA-256");
        assert!(cs.tls.is_none());
        assert!(!format!("{cs:?}").contains("s3cret"));
    }
}
