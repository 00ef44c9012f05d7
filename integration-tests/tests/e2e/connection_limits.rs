//! Connection limits as Kafka enforces them: `max.connections.per.ip` with overrides (the
//! extra connection is closed at once), a listener's `max.connections` (the extra
//! connection waits for a slot), a listener's `max.connection.creation.rate` (accepts are
//! delayed), while real clients keep working on the same broker.

use std::time::{Duration, Instant};

use samsa_integration_tests::wire::Conn;
use samsa_integration_tests::{clients, util, Cluster};

/// Polls `f` until it returns true or `timeout` passes.
fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn connection_limits_per_ip_per_listener_and_creation_rate() {
    let (p0, client, limited, rated) = (
        util::free_port(),
        util::free_port(),
        util::free_port(),
        util::free_port(),
    );
    let cluster = Cluster::builder("connlimits")
        .prop(
            "listeners",
            format!(
                "PLAINTEXT://127.0.0.1:{p0},LIMITED://127.0.0.1:{limited},\
                 RATED://127.0.0.1:{rated},CLIENT://127.0.0.1:{client}"
            ),
        )
        .prop(
            "listener.security.protocol.map",
            "PLAINTEXT:PLAINTEXT,CLIENT:PLAINTEXT,LIMITED:PLAINTEXT,RATED:PLAINTEXT",
        )
        .prop("inter.broker.listener.name", "PLAINTEXT")
        .prop("max.connections.per.ip.overrides", "127.0.0.2:2")
        .prop("listener.name.limited.max.connections", "2")
        .prop("listener.name.rated.max.connection.creation.rate", "5")
        .prop("quota.window.num", "2")
        .prop("quota.window.size.seconds", "1")
        .start();
    cluster.wait_registered(Duration::from_secs(30));
    let client_addr = format!("127.0.0.1:{client}");

    // Per IP: 127.0.0.2 may hold two connections; the third is closed at once.
    let mut a = Conn::connect_from("127.0.0.2", &client_addr).unwrap();
    let mut b = Conn::connect_from("127.0.0.2", &client_addr).unwrap();
    assert!(a.api_versions_answered().unwrap());
    assert!(b.api_versions_answered().unwrap());
    let mut c = Conn::connect_from("127.0.0.2", &client_addr).unwrap();
    c.set_read_timeout(Duration::from_secs(10)).unwrap();
    assert!(
        c.peer_closed(),
        "a third connection from 127.0.0.2 is refused"
    );
    assert!(
        eventually(Duration::from_secs(10), || {
            cluster.brokers[0]
            .log_text()
            .contains("Rejected connection from 127.0.0.2, address already has the configured maximum of 2 connections")
        }),
        "the refusal is logged as Kafka logs it"
    );
    // Other addresses are not limited by the override.
    let mut others: Vec<Conn> = (0..3)
        .map(|_| Conn::connect_from("127.0.0.3", &client_addr).unwrap())
        .collect();
    for o in &mut others {
        assert!(o.api_versions_answered().unwrap());
    }
    // Closing one frees its slot.
    drop(a);
    assert!(
        eventually(Duration::from_secs(10), || {
            Conn::connect_from("127.0.0.2", &client_addr)
                .and_then(|mut c| {
                    c.set_read_timeout(Duration::from_secs(2))?;
                    c.api_versions_answered()
                })
                .unwrap_or(false)
        }),
        "a freed per-IP slot admits a new connection"
    );

    // A listener at its max.connections makes the next connection wait, not fail.
    let limited_addr = format!("127.0.0.1:{limited}");
    let mut l1 = Conn::connect(&limited_addr).unwrap();
    let mut l2 = Conn::connect(&limited_addr).unwrap();
    assert!(l1.api_versions_answered().unwrap());
    assert!(l2.api_versions_answered().unwrap());
    let mut l3 = Conn::connect(&limited_addr).unwrap();
    l3.set_read_timeout(Duration::from_millis(1500)).unwrap();
    assert!(
        !l3.api_versions_answered().unwrap(),
        "the third LIMITED connection waits for a slot"
    );
    drop(l1);
    l3.set_read_timeout(Duration::from_secs(15)).unwrap();
    // Its ApiVersions was sent while waiting; the answer arrives once it is admitted.
    let frame = l3.read_frame().expect("answered once a slot frees");
    assert!(!frame.is_empty());
    drop(l2);

    // The creation rate (5/s over a 2 x 1 s window) delays accepts: 15 connections in a
    // row take more than a second. Connections on other listeners are not delayed.
    let rated_addr = format!("127.0.0.1:{rated}");
    let start = Instant::now();
    for _ in 0..15 {
        let mut c = Conn::connect(&rated_addr).unwrap();
        assert!(c.api_versions_answered().unwrap());
    }
    let rated_elapsed = start.elapsed();
    assert!(
        rated_elapsed >= Duration::from_secs(1),
        "15 connections at 5/s were accepted in {rated_elapsed:?}"
    );

    // A real client works beside all this.
    let topic = "connlimits";
    clients::kcat(
        &["-b", &client_addr, "-t", topic, "-P", "-K:"],
        Some(b"k1:v1\nk2:v2\n"),
        Duration::from_secs(60),
    )
    .unwrap();
    let out = clients::kcat(
        &["-b", &client_addr, "-t", topic, "-C", "-e", "-f", "%k=%s\n"],
        None,
        Duration::from_secs(60),
    )
    .unwrap();
    assert!(out.contains("k1=v1") && out.contains("k2=v2"), "{out}");
    drop((b, others));
    cluster.finish();
}
