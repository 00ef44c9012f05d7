//! Security end to end: SSL, mutual TLS, SASL_PLAINTEXT (PLAIN, SCRAM-SHA-256/512) and SASL_SSL
//! listeners served to the Java 3.9.1 client, confluent-kafka, kafka-python and kcat; refusals
//! with the errors Kafka's clients report; SCRAM users added live through ZooKeeper; and a
//! three-broker cluster whose inter-broker listener is SASL_SSL with SCRAM.
//!
//! Certificates are made per test with Debian's `openssl` (a CA, a broker certificate for
//! 127.0.0.1/localhost, a client certificate, and a second "rogue" CA the broker does not trust)
//! and `keytool` (a PKCS12 truststore as Java tools write it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse,
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::StrBytes;
use samsa_common::security::scram::{ScramCredential, ScramMechanism};
use samsa_integration_tests::wire::Conn;
use samsa_integration_tests::{clients, util, wait_until, BrokerSpec, Cluster};
use serde_json::{json, Value};

use crate::common::create_topic;

const T: Duration = Duration::from_secs(120);

struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    /// Broker key + chain, PKCS12 (`serverpw`).
    server_p12: PathBuf,
    /// Broker key + certificate + CA in one PEM file.
    server_pem: PathBuf,
    /// PKCS12 truststore holding the CA, written by keytool (`trustpw`).
    trust_p12: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    /// Client key + chain, PKCS12 (`clientpw`).
    client_p12: PathBuf,
    rogue_ca: PathBuf,
    rogue_cert: PathBuf,
    rogue_key: PathBuf,
}

fn run(dir: &Path, prog: &str, args: &[&str]) {
    let out = Command::new(prog)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{prog}: {e}"));
    assert!(
        out.status.success(),
        "{prog} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `name.key` + `name.crt` signed by `ca` (`ca.crt`/`ca.key`), with `ext` as v3 extensions.
fn issue(dir: &Path, ca: &str, name: &str, subject: &str, ext: &str) {
    std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
    run(
        dir,
        "openssl",
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            subject,
        ],
    );
    run(
        dir,
        "openssl",
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.crt"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.crt"),
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
}

fn make_pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for ca in ["ca", "rogue"] {
        run(
            d,
            "openssl",
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.crt"),
                "-days",
                "2",
                "-subj",
                &format!("/CN=Samsa {ca} CA"),
            ],
        );
    }
    issue(
        d,
        "ca",
        "server",
        "/CN=localhost/O=Samsa Test",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n",
    );
    issue(
        d,
        "ca",
        "client",
        "/O=Samsa Test/OU=clients/CN=alice",
        "extendedKeyUsage=clientAuth\n",
    );
    issue(
        d,
        "rogue",
        "roguec",
        "/CN=mallory",
        "extendedKeyUsage=clientAuth\n",
    );
    run(
        d,
        "openssl",
        &[
            "pkcs12",
            "-export",
            "-in",
            "server.crt",
            "-inkey",
            "server.key",
            "-certfile",
            "ca.crt",
            "-name",
            "broker",
            "-out",
            "server.p12",
            "-passout",
            "pass:serverpw",
        ],
    );
    run(
        d,
        "openssl",
        &[
            "pkcs12",
            "-export",
            "-in",
            "client.crt",
            "-inkey",
            "client.key",
            "-certfile",
            "ca.crt",
            "-name",
            "alice",
            "-out",
            "client.p12",
            "-passout",
            "pass:clientpw",
        ],
    );
    let pem: String = ["server.key", "server.crt", "ca.crt"]
        .iter()
        .map(|f| std::fs::read_to_string(d.join(f)).unwrap())
        .collect();
    std::fs::write(d.join("server.pem"), pem).unwrap();
    run(
        d,
        "keytool",
        &[
            "-importcert",
            "-noprompt",
            "-alias",
            "ca",
            "-file",
            "ca.crt",
            "-keystore",
            "trust.p12",
            "-storetype",
            "PKCS12",
            "-storepass",
            "trustpw",
        ],
    );
    Pki {
        ca: d.join("ca.crt"),
        server_p12: d.join("server.p12"),
        server_pem: d.join("server.pem"),
        trust_p12: d.join("trust.p12"),
        client_cert: d.join("client.crt"),
        client_key: d.join("client.key"),
        client_p12: d.join("client.p12"),
        rogue_ca: d.join("rogue.crt"),
        rogue_cert: d.join("roguec.crt"),
        rogue_key: d.join("roguec.key"),
        _dir: dir,
    }
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

/// Writes `/config/users/<user>` with SCRAM credentials for `mechs`, as `kafka-configs.sh
/// --zookeeper` does, and (when `notify`) the `/config/changes` notification.
pub(crate) fn add_scram_user(
    cluster: &Cluster,
    user: &str,
    password: &str,
    mechs: &[ScramMechanism],
    notify: bool,
) {
    let mut config = serde_json::Map::new();
    for m in mechs {
        let c = ScramCredential::from_password(*m, password, &ScramCredential::random_salt(), 4096);
        config.insert(m.name().to_string(), Value::String(c.to_kafka_string()));
    }
    let data = serde_json::to_vec(&json!({"version": 1, "config": config})).unwrap();
    let path = format!("/config/users/{user}");
    if cluster.zk().exists(&path).unwrap().is_some() {
        cluster.zk().set(&path, &data, None).unwrap();
    } else {
        cluster
            .zk()
            .create(&path, &data, zookeeper_client::CreateMode::Persistent)
            .unwrap();
    }
    if notify {
        let n = serde_json::to_vec(&json!({"version": 2, "entity_path": format!("users/{user}")}))
            .unwrap();
        cluster
            .zk()
            .create(
                "/config/changes/config_change_",
                &n,
                zookeeper_client::CreateMode::PersistentSequential,
            )
            .unwrap();
    }
}

/// A fresh single-partition topic (through the PLAINTEXT listener) for one client run, so
/// that what the client reads back is exactly what it wrote.
pub(crate) fn fresh_topic(cluster: &Cluster, prefix: &str) -> String {
    let t = util::unique(prefix);
    create_topic(&cluster.bootstrap(), &t, 1, 1, crate::common::KEEP_FOREVER);
    t
}

fn java(bootstrap: &str, topic: &str, count: usize, props: &[String]) -> Value {
    let mut args = vec![bootstrap.to_string(), topic.to_string(), count.to_string()];
    args.extend(props.iter().cloned());
    clients::java("SecureRoundTrip", &args, T).unwrap()
}

pub(crate) fn python(
    client: &str,
    bootstrap: &str,
    topic: &str,
    count: usize,
    cfg: Value,
) -> Value {
    let args = [
        client.to_string(),
        bootstrap.to_string(),
        topic.to_string(),
        count.to_string(),
        cfg.to_string(),
    ];
    clients::python("secure_roundtrip.py", &args, T).unwrap()
}

/// The client acknowledged `count` records and read back at least those of this run.
pub(crate) fn assert_roundtrip(who: &str, r: &Value, count: usize) {
    assert_eq!(r["acked"], count, "{who}: {r}");
    let values = r["values"]
        .as_array()
        .unwrap_or_else(|| panic!("{who}: {r}"));
    assert!(values.len() >= count, "{who}: {r}");
    assert!(values.iter().any(|v| v == "secure-0"), "{who}: {r}");
}

pub(crate) fn error_of(who: &str, r: &Value) -> String {
    r["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{who} should have been refused: {r}"))
        .to_string()
}

/// kcat produce of `count` lines then consume to the end; returns the lines read.
fn kcat_roundtrip(bootstrap: &str, topic: &str, count: usize, x: &[String]) -> Vec<String> {
    let mut args: Vec<&str> = vec!["-b", bootstrap, "-P", "-t", topic, "-p", "0"];
    for o in x {
        args.extend(["-X", o.as_str()]);
    }
    let input: String = (0..count).map(|i| format!("kcat-{i}\n")).collect();
    clients::kcat(&args, Some(input.as_bytes()), T).unwrap();
    let mut args: Vec<&str> = vec![
        "-b",
        bootstrap,
        "-C",
        "-t",
        topic,
        "-p",
        "0",
        "-o",
        "beginning",
        "-e",
    ];
    for o in x {
        args.extend(["-X", o.as_str()]);
    }
    clients::kcat(&args, None, T)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn kcat_fails(bootstrap: &str, x: &[String]) -> String {
    let mut cmd = clients::kcat_command();
    cmd.args(["-b", bootstrap, "-L", "-m", "15"]);
    for o in x {
        cmd.args(["-X", o]);
    }
    let out = clients::run(cmd, None, T).unwrap();
    assert!(!out.status.success(), "kcat -L should fail");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn security_ssl_and_mutual_tls_listeners() {
    let pki = make_pki();
    let (p0, p1, p2) = (util::free_port(), util::free_port(), util::free_port());
    let cluster = Cluster::builder("secssl")
        .prop(
            "listeners",
            format!("SSL://127.0.0.1:{p1},MTLS://127.0.0.1:{p2},PLAINTEXT://127.0.0.1:{p0}"),
        )
        .prop(
            "listener.security.protocol.map",
            "SSL:SSL,MTLS:SSL,PLAINTEXT:PLAINTEXT",
        )
        .prop("inter.broker.listener.name", "PLAINTEXT")
        .prop("ssl.keystore.type", "PKCS12")
        .prop("ssl.keystore.location", p(&pki.server_p12))
        .prop("ssl.keystore.password", "serverpw")
        .prop("ssl.key.password", "serverpw")
        .prop("listener.name.mtls.ssl.client.auth", "required")
        .prop("listener.name.mtls.ssl.truststore.type", "PKCS12")
        .prop(
            "listener.name.mtls.ssl.truststore.location",
            p(&pki.trust_p12),
        )
        .prop("listener.name.mtls.ssl.truststore.password", "trustpw")
        .prop(
            "listener.name.mtls.ssl.principal.mapping.rules",
            "RULE:^CN=([^,]*),.*$/$1/L,DEFAULT",
        )
        .start();
    create_topic(
        &cluster.bootstrap(),
        "tls",
        1,
        1,
        crate::common::KEEP_FOREVER,
    );
    let ssl = format!("127.0.0.1:{p1}");
    let mtls = format!("127.0.0.1:{p2}");

    // One-way TLS: every client trusts the CA.
    let kx = vec![
        "security.protocol=SSL".to_string(),
        format!("ssl.ca.location={}", p(&pki.ca)),
    ];
    let lines = kcat_roundtrip(&ssl, "tls", 50, &kx);
    assert!(lines.contains(&"kcat-49".to_string()), "{lines:?}");
    let r = python(
        "confluent",
        &ssl,
        &fresh_topic(&cluster, "tls"),
        20,
        json!({"security.protocol": "SSL", "ssl.ca.location": p(&pki.ca)}),
    );
    assert_roundtrip("confluent SSL", &r, 20);
    let r = python(
        "kafka-python",
        &ssl,
        &fresh_topic(&cluster, "tls"),
        20,
        json!({"security_protocol": "SSL", "ssl_cafile": p(&pki.ca)}),
    );
    assert_roundtrip("kafka-python SSL", &r, 20);
    let java_trust = vec![
        "security.protocol=SSL".to_string(),
        "ssl.truststore.type=PEM".to_string(),
        format!("ssl.truststore.location={}", p(&pki.ca)),
    ];
    let r = java(&ssl, &fresh_topic(&cluster, "tls"), 20, &java_trust);
    assert_roundtrip("java SSL", &r, 20);

    // A client that does not trust the broker's CA: Kafka's client-side refusal.
    let r = java(
        &ssl,
        &fresh_topic(&cluster, "tls"),
        1,
        &[
            "security.protocol=SSL".to_string(),
            "ssl.truststore.type=PEM".to_string(),
            format!("ssl.truststore.location={}", p(&pki.rogue_ca)),
        ],
    );
    let e = error_of("java with the wrong truststore", &r);
    assert!(e.contains("SslAuthenticationException"), "{e}");

    // Mutual TLS: a client certificate from the trusted CA gets in ...
    let mut jm = java_trust.clone();
    jm.extend([
        "ssl.keystore.type=PKCS12".to_string(),
        format!("ssl.keystore.location={}", p(&pki.client_p12)),
        "ssl.keystore.password=clientpw".to_string(),
        "ssl.key.password=clientpw".to_string(),
    ]);
    let r = java(&mtls, &fresh_topic(&cluster, "tls"), 10, &jm);
    assert_roundtrip("java mTLS", &r, 10);
    let mut km = kx.clone();
    km.extend([
        format!("ssl.certificate.location={}", p(&pki.client_cert)),
        format!("ssl.key.location={}", p(&pki.client_key)),
    ]);
    let lines = kcat_roundtrip(&mtls, "tls", 5, &km);
    assert!(lines.contains(&"kcat-4".to_string()), "{lines:?}");

    // ... no certificate, or one from an untrusted CA, does not.
    let r = java(&mtls, &fresh_topic(&cluster, "tls"), 1, &java_trust);
    let e = error_of("java mTLS without a certificate", &r);
    assert!(e.contains("SslAuthenticationException"), "{e}");
    let mut rogue = kx.clone();
    rogue.extend([
        format!("ssl.certificate.location={}", p(&pki.rogue_cert)),
        format!("ssl.key.location={}", p(&pki.rogue_key)),
    ]);
    let out = kcat_fails(&mtls, &rogue);
    assert!(out.to_lowercase().contains("ssl"), "{out}");

    // The broker keeps serving everyone else after the refusals.
    let lines = kcat_roundtrip(&ssl, "tls", 1, &kx);
    assert!(!lines.is_empty());
    assert!(cluster.brokers[0]
        .log_text()
        .contains("SSL handshake failed"));
    cluster.finish();
}

fn handshake(c: &mut Conn, mech: &'static str, v: i16) -> SaslHandshakeResponse {
    let req = SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(mech));
    c.request(ApiKey::SaslHandshake, v, &req).unwrap()
}

/// True when the peer closes the connection, possibly after a few bytes (a TLS alert).
fn closes_after_alert(c: &mut Conn) -> bool {
    c.set_read_timeout(Duration::from_secs(10)).unwrap();
    for _ in 0..256 {
        let start = std::time::Instant::now();
        if c.peer_closed() {
            return true;
        }
        if start.elapsed() >= Duration::from_secs(5) {
            return false;
        }
    }
    false
}

/// Raw-protocol checks of the SASL state machine and of bad input on secured listeners: each
/// misbehaving connection is answered (or closed) as Kafka does, and only that connection.
fn sasl_wire_checks(plain: &str, sasl: &str, sasl_ssl: &str) {
    // ApiVersions is served before authentication; anything else closes the connection.
    let mut c = Conn::connect(sasl).unwrap();
    let req = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("samsa-e2e"))
        .with_client_software_version(StrBytes::from_static_str("0.1"));
    let v: ApiVersionsResponse = c.request(ApiKey::ApiVersions, 3, &req).unwrap();
    assert_eq!(v.error_code, 0);
    assert!(v
        .api_keys
        .iter()
        .any(|k| k.api_key == ApiKey::SaslAuthenticate as i16));
    let frame = c
        .encode_request(ApiKey::Metadata, 9, &MetadataRequest::default())
        .unwrap();
    c.send_raw(&frame).unwrap();
    assert!(
        c.peer_closed(),
        "Metadata before authentication must close the connection"
    );

    // Unknown mechanism: UNSUPPORTED_SASL_MECHANISM with the enabled list, then close.
    let mut c = Conn::connect(sasl).unwrap();
    let r = handshake(&mut c, "GSSAPI", 1);
    assert_eq!(r.error_code, 33);
    let enabled: Vec<String> = r.mechanisms.iter().map(|m| m.to_string()).collect();
    assert_eq!(enabled, ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]);
    assert!(c.peer_closed());

    // Wrong password: SASL_AUTHENTICATION_FAILED with PlainSaslServer's message, then close.
    let mut c = Conn::connect(sasl).unwrap();
    assert_eq!(handshake(&mut c, "PLAIN", 1).error_code, 0);
    let bad = SaslAuthenticateRequest::default()
        .with_auth_bytes(bytes::Bytes::from_static(b"\0alice\0nope"));
    let r: SaslAuthenticateResponse = c.request(ApiKey::SaslAuthenticate, 2, &bad).unwrap();
    assert_eq!(r.error_code, 58);
    assert_eq!(
        r.error_message.as_deref(),
        Some("Authentication failed: Invalid username or password")
    );
    assert!(c.peer_closed());

    // Legacy v0 handshake: the token follows as a bare frame, answered by an empty frame; then
    // the connection is an ordinary authenticated one.
    let mut c = Conn::connect(sasl).unwrap();
    assert_eq!(handshake(&mut c, "PLAIN", 0).error_code, 0);
    let token = b"\0alice\0alice-pw";
    let mut raw = (token.len() as i32).to_be_bytes().to_vec();
    raw.extend_from_slice(token);
    c.send_raw(&raw).unwrap();
    assert!(c.read_frame().unwrap().is_empty());
    let md: MetadataResponse = c
        .request(ApiKey::Metadata, 9, &MetadataRequest::default())
        .unwrap();
    assert_eq!(md.brokers.len(), 1);

    // An oversized frame before authentication closes the connection.
    let mut c = Conn::connect(sasl).unwrap();
    c.send_raw(&i32::MAX.to_be_bytes()).unwrap();
    assert!(c.peer_closed());

    // Plain Kafka bytes to a TLS listener: the handshake fails, the socket is closed.
    let mut c = Conn::connect(sasl_ssl).unwrap();
    let frame = c
        .encode_request(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .unwrap();
    c.send_raw(&frame).unwrap();
    assert!(
        closes_after_alert(&mut c),
        "a TLS listener must close on a non-TLS client"
    );

    // SaslHandshake on a listener without SASL: ILLEGAL_SASL_STATE, connection kept.
    let mut c = Conn::connect(plain).unwrap();
    assert_eq!(handshake(&mut c, "PLAIN", 1).error_code, 34);
    let md: MetadataResponse = c
        .request(ApiKey::Metadata, 9, &MetadataRequest::default())
        .unwrap();
    assert_eq!(md.brokers.len(), 1);
}

/// The JAAS file a Kafka deployment names in KAFKA_OPTS.
const JAAS: &str = r#"
// PLAIN users of every SASL listener
KafkaServer {
    org.apache.kafka.common.security.plain.PlainLoginModule required
    username="admin"
    password="admin-pw"
    user_admin="admin-pw"
    user_alice="alice-pw";
};
"#;

#[test]
fn security_sasl_plain_and_scram_listeners() {
    let pki = make_pki();
    let jaas = pki._dir.path().join("kafka_server_jaas.conf");
    std::fs::write(&jaas, JAAS).unwrap();
    let (p0, p1, p2) = (util::free_port(), util::free_port(), util::free_port());
    let spec = BrokerSpec::id(1).env(
        "KAFKA_OPTS",
        format!("-Xmx1g -Djava.security.auth.login.config={}", p(&jaas)),
    );
    let mut cluster = Cluster::builder("secsasl")
        .specs(vec![spec])
        .prop(
            "listeners",
            format!("SASL_PLAINTEXT://127.0.0.1:{p1},SASL_SSL://127.0.0.1:{p2},PLAINTEXT://127.0.0.1:{p0}"),
        )
        .prop("inter.broker.listener.name", "PLAINTEXT")
        .prop("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512")
        .prop("listener.name.sasl_ssl.sasl.enabled.mechanisms", "SCRAM-SHA-512,PLAIN")
        .prop("ssl.keystore.type", "PEM")
        .prop("ssl.keystore.location", p(&pki.server_pem))
        .configure_only()
        .start();
    add_scram_user(
        &cluster,
        "alice",
        "alice-scram",
        &ScramMechanism::ALL,
        false,
    );
    cluster.brokers[0].start().unwrap();
    create_topic(
        &cluster.bootstrap(),
        "sasl",
        1,
        1,
        crate::common::KEEP_FOREVER,
    );
    let sp = format!("127.0.0.1:{p1}");
    let ss = format!("127.0.0.1:{p2}");
    sasl_wire_checks(&cluster.bootstrap(), &sp, &ss);
    let jaas_plain = |u: &str, pw: &str| {
        format!("sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"{u}\" password=\"{pw}\";")
    };
    let jaas_scram = |u: &str, pw: &str| {
        format!("sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{u}\" password=\"{pw}\";")
    };

    // SASL_PLAINTEXT with each mechanism and client.
    let r = python(
        "confluent",
        &sp,
        &fresh_topic(&cluster, "sasl"),
        20,
        json!({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "PLAIN",
               "sasl.username": "alice", "sasl.password": "alice-pw"}),
    );
    assert_roundtrip("confluent PLAIN", &r, 20);
    let r = python(
        "kafka-python",
        &sp,
        &fresh_topic(&cluster, "sasl"),
        20,
        json!({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-256",
               "sasl_plain_username": "alice", "sasl_plain_password": "alice-scram"}),
    );
    assert_roundtrip("kafka-python SCRAM-SHA-256", &r, 20);
    let r = java(
        &sp,
        &fresh_topic(&cluster, "sasl"),
        20,
        &[
            "security.protocol=SASL_PLAINTEXT".into(),
            "sasl.mechanism=SCRAM-SHA-512".into(),
            jaas_scram("alice", "alice-scram"),
        ],
    );
    assert_roundtrip("java SCRAM-SHA-512", &r, 20);
    let kx: Vec<String> = vec![
        "security.protocol=SASL_PLAINTEXT".into(),
        "sasl.mechanisms=SCRAM-SHA-256".into(),
        "sasl.username=alice".into(),
        "sasl.password=alice-scram".into(),
    ];
    let lines = kcat_roundtrip(&sp, "sasl", 10, &kx);
    assert!(lines.contains(&"kcat-9".to_string()), "{lines:?}");

    // SASL_SSL: TLS beneath, its own mechanism list.
    let tls = |mech: &str| -> Vec<String> {
        vec![
            "security.protocol=SASL_SSL".into(),
            "ssl.truststore.type=PEM".into(),
            format!("ssl.truststore.location={}", p(&pki.ca)),
            format!("sasl.mechanism={mech}"),
        ]
    };
    let mut a = tls("SCRAM-SHA-512");
    a.push(jaas_scram("alice", "alice-scram"));
    assert_roundtrip(
        "java SASL_SSL SCRAM-SHA-512",
        &java(&ss, &fresh_topic(&cluster, "sasl"), 10, &a),
        10,
    );
    let mut a = tls("PLAIN");
    a.push(jaas_plain("admin", "admin-pw"));
    assert_roundtrip(
        "java SASL_SSL PLAIN",
        &java(&ss, &fresh_topic(&cluster, "sasl"), 10, &a),
        10,
    );
    let r = python(
        "confluent",
        &ss,
        &fresh_topic(&cluster, "sasl"),
        10,
        json!({"security.protocol": "SASL_SSL", "ssl.ca.location": p(&pki.ca),
               "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": "alice",
               "sasl.password": "alice-scram"}),
    );
    assert_roundtrip("confluent SASL_SSL", &r, 10);

    // Refusals, with the messages Kafka's clients show.
    let r = java(
        &sp,
        &fresh_topic(&cluster, "sasl"),
        1,
        &[
            "security.protocol=SASL_PLAINTEXT".into(),
            "sasl.mechanism=SCRAM-SHA-256".into(),
            jaas_scram("alice", "wrong"),
        ],
    );
    let e = error_of("java wrong SCRAM password", &r);
    assert!(
        e.contains("SaslAuthenticationException")
            && e.contains("Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256"),
        "{e}"
    );
    let r = java(
        &sp,
        &fresh_topic(&cluster, "sasl"),
        1,
        &[
            "security.protocol=SASL_PLAINTEXT".into(),
            "sasl.mechanism=PLAIN".into(),
            jaas_plain("alice", "wrong"),
        ],
    );
    let e = error_of("java wrong PLAIN password", &r);
    assert!(
        e.contains("Authentication failed: Invalid username or password"),
        "{e}"
    );
    let mut a = tls("SCRAM-SHA-256");
    a.push(jaas_scram("alice", "alice-scram"));
    let e = error_of(
        "java mechanism not enabled",
        &java(&ss, &fresh_topic(&cluster, "sasl"), 1, &a),
    );
    assert!(e.contains("UnsupportedSaslMechanismException"), "{e}");

    // A SCRAM user written into ZooKeeper (as kafka-configs.sh --zookeeper does) logs in
    // without a restart; removing the credential locks it out again.
    let bob: Vec<String> = vec![
        "security.protocol=SASL_PLAINTEXT".into(),
        "sasl.mechanisms=SCRAM-SHA-512".into(),
        "sasl.username=bob".into(),
        "sasl.password=bob-pw".into(),
    ];
    let _ = kcat_fails(&sp, &bob);
    add_scram_user(&cluster, "bob", "bob-pw", &[ScramMechanism::Sha512], true);
    let bootstrap = sp.clone();
    wait_until(
        "bob logs in after the /config/changes notification",
        T,
        || {
            let mut cmd = clients::kcat_command();
            cmd.args(["-b", &bootstrap, "-L", "-m", "10"]);
            for o in &bob {
                cmd.args(["-X", o]);
            }
            clients::run(cmd, None, T)
                .ok()
                .filter(|o| o.status.success())
        },
    );
    add_scram_user(&cluster, "bob", "unused", &[], true);
    wait_until(
        "bob is locked out after his credential is removed",
        T,
        || {
            let mut cmd = clients::kcat_command();
            cmd.args(["-b", &bootstrap, "-L", "-m", "10"]);
            for o in &bob {
                cmd.args(["-X", o]);
            }
            clients::run(cmd, None, T)
                .ok()
                .filter(|o| !o.status.success())
        },
    );
    // AlterUserScramCredentials / DescribeUserScramCredentials through the Java Admin client:
    // the new user logs in at once, and the znode is Kafka's.
    let r = clients::java(
        "ScramAdmin",
        &[
            cluster.bootstrap(),
            "carol".into(),
            "carol-pw".into(),
            "SCRAM-SHA-256".into(),
        ],
        T,
    )
    .unwrap();
    assert_eq!(r["users"]["carol"], json!([["SCRAM-SHA-256", 4096]]), "{r}");
    assert_eq!(
        r["users"]["alice"],
        json!([["SCRAM-SHA-256", 4096], ["SCRAM-SHA-512", 4096]]),
        "{r}"
    );
    assert!(r["users"].get("bob").is_none(), "{r}");
    assert_eq!(
        r["bad"], "UnacceptableCredentialException: Too few iterations",
        "{r}"
    );
    let carol = cluster.zk().json("/config/users/carol").unwrap();
    assert!(
        carol["config"]["SCRAM-SHA-256"]
            .as_str()
            .is_some_and(|c| c.starts_with("salt=") && c.ends_with(",iterations=4096")),
        "{carol}"
    );
    let r = wait_until("carol logs in", T, || {
        let r = python(
            "kafka-python",
            &sp,
            &fresh_topic(&cluster, "carol"),
            5,
            json!({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "SCRAM-SHA-256",
                   "sasl_plain_username": "carol", "sasl_plain_password": "carol-pw"}),
        );
        r.get("acked").is_some().then_some(r)
    });
    assert_roundtrip("kafka-python as carol", &r, 5);

    let log = cluster.brokers[0].log_text();
    assert!(log.contains("Failed authentication"), "refusals are logged");
    for secret in ["alice-pw", "alice-scram", "admin-pw", "bob-pw", "carol-pw"] {
        assert!(!log.contains(secret), "broker log leaks a password");
    }
    cluster.finish();
}

#[test]
fn security_three_brokers_replicate_over_sasl_ssl() {
    let pki = make_pki();
    let specs: Vec<BrokerSpec> = (1..=3)
        .map(|id| {
            BrokerSpec::id(id).prop(
                "listeners",
                format!(
                    "INTERNAL://127.0.0.1:{},PLAINTEXT://127.0.0.1:{}",
                    util::free_port(),
                    util::free_port()
                ),
            )
        })
        .collect();
    let mut cluster = Cluster::builder("secib")
        .specs(specs)
        .prop("listener.security.protocol.map", "INTERNAL:SASL_SSL,PLAINTEXT:PLAINTEXT")
        .prop("inter.broker.listener.name", "INTERNAL")
        .prop("sasl.mechanism.inter.broker.protocol", "SCRAM-SHA-512")
        .prop("listener.name.internal.sasl.enabled.mechanisms", "SCRAM-SHA-512")
        .prop(
            "listener.name.internal.scram-sha-512.sasl.jaas.config",
            "org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\"admin-secret\";",
        )
        .prop("ssl.keystore.type", "PKCS12")
        .prop("ssl.keystore.location", p(&pki.server_p12))
        .prop("ssl.keystore.password", "serverpw")
        .prop("ssl.truststore.type", "PKCS12")
        .prop("ssl.truststore.location", p(&pki.trust_p12))
        .prop("ssl.truststore.password", "trustpw")
        .configure_only()
        .start();
    add_scram_user(
        &cluster,
        "admin",
        "admin-secret",
        &[ScramMechanism::Sha512],
        false,
    );
    for b in &mut cluster.brokers {
        b.spawn().unwrap();
    }
    for b in &mut cluster.brokers {
        b.wait_ready(T).unwrap();
    }
    cluster.wait_registered(T);
    let bootstrap = cluster.bootstrap();
    // acks=all: each batch is acknowledged once every ISR member (all three) fetched it over
    // SASL_SSL. min.insync.replicas=2 keeps the partition writable and its high watermark
    // moving once the killed leader leaves the ISR.
    create_topic(
        &bootstrap,
        "rep",
        1,
        3,
        &[("min.insync.replicas", "2"), ("retention.ms", "-1")],
    );
    let input: String = (0..200).map(|i| format!("r-{i}\n")).collect();
    clients::kcat(
        &[
            "-b", &bootstrap, "-P", "-t", "rep", "-p", "0", "-X", "acks=all",
        ],
        Some(input.as_bytes()),
        T,
    )
    .unwrap();
    let state_path = "/brokers/topics/rep/partitions/0/state";
    let state = wait_until("all three replicas in the ISR", T, || {
        let s = cluster.zk().json(state_path).ok()?;
        (s["isr"].as_array()?.len() == 3).then_some(s)
    });

    // Transactions: the coordinator's WriteTxnMarkers and the leaders' KIP-890 verification
    // travel over the SASL_SSL inter-broker listener too.
    create_topic(&bootstrap, "jtx", 2, 3, &[]);
    let r = clients::java(
        "Transactions",
        &[bootstrap.clone(), "jtx".into(), "sec-tx".into()],
        Duration::from_secs(300),
    )
    .unwrap();
    let committed: Vec<&str> = r["committed"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(
        committed,
        ["0:c1-0", "0:c1-2", "0:c2-0", "0:p2-0", "1:c1-1", "1:c1-3", "1:c2-1", "1:p2-1"],
        "{r}"
    );

    // kill -9 the leader: a follower (replicated over SASL_SSL) takes over with every record.
    let leader = state["leader"].as_i64().unwrap() as i32;
    cluster.broker(leader).kill9();
    let new_leader = wait_until("a new leader", T, || {
        let s = cluster.zk().json(state_path).ok()?;
        let l = s["leader"].as_i64()? as i32;
        (l != leader && l >= 0).then_some(l)
    });
    let addr = cluster.broker(new_leader).addr();
    let lines = wait_until("all records from the new leader", T, || {
        let out = clients::kcat(
            &[
                "-b",
                &addr,
                "-C",
                "-t",
                "rep",
                "-p",
                "0",
                "-o",
                "beginning",
                "-e",
            ],
            None,
            T,
        )
        .ok()?;
        let lines: Vec<String> = out.lines().map(str::to_string).collect();
        (lines.len() >= 200).then_some(lines)
    });
    assert_eq!(lines[0], "r-0");
    assert_eq!(lines[199], "r-199");
    cluster.restart_killed(leader).unwrap();
    cluster.finish();
}

/// KIP-368: with `connections.max.reauth.ms` the Java client re-authenticates on its open
/// connection before the session expires, and keeps producing.
#[test]
fn security_sasl_reauthentication() {
    let (p0, p1) = (util::free_port(), util::free_port());
    let cluster = Cluster::builder("secreauth")
        .prop(
            "listeners",
            format!("SASL_PLAINTEXT://127.0.0.1:{p1},PLAINTEXT://127.0.0.1:{p0}"),
        )
        .prop("inter.broker.listener.name", "PLAINTEXT")
        .prop("sasl.enabled.mechanisms", "PLAIN")
        .prop(
            "listener.name.sasl_plaintext.plain.sasl.jaas.config",
            "org.apache.kafka.common.security.plain.PlainLoginModule required user_alice=\"alice-pw\";",
        )
        .prop("connections.max.reauth.ms", "2000")
        .start();
    let topic = fresh_topic(&cluster, "reauth");
    let r = clients::java(
        "ReauthProduce",
        &[
            format!("127.0.0.1:{p1}"),
            topic,
            "25".into(),
            "300".into(),
            "security.protocol=SASL_PLAINTEXT".into(),
            "sasl.mechanism=PLAIN".into(),
            "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"alice\" password=\"alice-pw\";".into(),
        ],
        T,
    )
    .unwrap();
    assert_eq!(r["acked"], 25, "{r}");
    assert!(r["reauth_ok"].as_f64().unwrap_or(0.0) >= 1.0, "{r}");
    assert_eq!(r["reauth_failed"].as_f64(), Some(0.0), "{r}");
    cluster.finish();
}
