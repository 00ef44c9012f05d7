//! The Prometheus endpoint (`samsa.metrics.listener`, issue 10) scraped while real clients work:
//! values agree with what the clients did, replication gauges follow a killed follower, exactly
//! one broker reports itself as the active controller, and the output parses with
//! `prometheus_client`'s reference text-format parser.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use samsa_integration_tests::{clients, util, BrokerSpec, Cluster};

use crate::cluster::{ProduceLoop, T};
use crate::cluster_faults::create_assigned;

/// One sample: metric name, labels, value.
type Sample = (String, BTreeMap<String, String>, f64);

/// `GET /metrics` on `port`; None while the broker is down.
fn scrape(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(T)).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let (head, body) = resp.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// Parses sample lines of the text format (names and quoted labels as the broker writes them).
fn samples(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line.rsplit_once(' ').expect("sample line");
        let value: f64 = value.parse().expect("numeric value");
        let (name, labels) = match series.split_once('{') {
            None => (series.to_string(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("closing brace");
                let labels = body
                    .split("\",")
                    .filter(|kv| !kv.is_empty())
                    .map(|kv| {
                        let (k, v) = kv.split_once("=\"").expect("label");
                        (k.to_string(), v.trim_end_matches('"').to_string())
                    })
                    .collect();
                (name.to_string(), labels)
            }
        };
        out.push((name, labels, value));
    }
    out
}

/// The value of `name` with exactly `labels`, if present.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    samples
        .iter()
        .find(|(n, l, _)| n == name && *l == want)
        .map(|(_, _, v)| *v)
}

fn scrape_value(port: u16, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    value(&samples(&scrape(port)?), name, labels)
}

/// Sum of `name{labels}` over the brokers that answer.
fn cluster_sum(ports: &[u16], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut sum = 0.0;
    for p in ports {
        sum += scrape_value(*p, name, labels)?;
    }
    Some(sum)
}

/// Scrapes `port` through prometheus_client's parser; returns the families and their types.
fn parse_with_prometheus_client(port: u16) -> serde_json::Value {
    let url = format!("http://127.0.0.1:{port}/metrics");
    clients::python("prom_scrape.py", &[url], Duration::from_secs(60)).expect("prom_scrape.py")
}

const UNDER_REPLICATED: &str = "kafka_server_replicamanager_underreplicatedpartitions";
const ACTIVE_CONTROLLER: &str = "kafka_controller_kafkacontroller_activecontrollercount";
const MESSAGES_IN: &str = "kafka_server_brokertopicmetrics_messagesin_total";

/// Three brokers with the endpoint on: an idempotent acks=all producer writes to a partition
/// led by broker 1 while a follower is killed (kill -9) and restarted. The leader's
/// UnderReplicatedPartitions rises to 1 and falls back to 0 with ISR shrink and expand counts;
/// MessagesIn for the topic, summed over the cluster, equals the records the client saw
/// acknowledged; ActiveControllerCount sums to 1; both scrapes parse with prometheus_client.
#[test]
fn metrics_endpoint_tracks_clients_and_replication() {
    let ports: Vec<u16> = (0..3).map(|_| util::free_port()).collect();
    let specs = (1..=3)
        .map(|id| {
            BrokerSpec::id(id).prop(
                "samsa.metrics.listener",
                format!("http://127.0.0.1:{}", ports[id as usize - 1]),
            )
        })
        .collect();
    let mut c = Cluster::builder("metrics")
        .specs(specs)
        .prop("replica.lag.time.max.ms", "2000")
        .prop("zookeeper.session.timeout.ms", "20000")
        .start();
    c.wait_registered(T);
    let port_of = |id: i32| ports[id as usize - 1];

    // One active controller across the cluster, once the election settled.
    util::wait_until("ActiveControllerCount summing to 1", T, || {
        (cluster_sum(&ports, ACTIVE_CONTROLLER, &[])? == 1.0).then_some(())
    });
    let ctl = util::wait_until("/controller", T, || {
        Some(c.zk().json("/controller").ok()?["brokerid"].as_i64()? as i32)
    });
    assert_eq!(
        scrape_value(port_of(ctl), ACTIVE_CONTROLLER, &[]),
        Some(1.0),
        "the broker named in /controller reports itself active"
    );
    // The victim is a follower that is not the controller.
    let victim = if ctl == 3 { 2 } else { 3 };
    create_assigned(&c.bootstrap(), "m", &[&[1, 2, 3]], &[]);
    crate::cluster::wait_isr(&c, "m", 3, T);
    assert_eq!(
        scrape_value(
            port_of(ctl),
            "kafka_controller_kafkacontroller_globaltopiccount",
            &[]
        )
        .map(|v| v >= 1.0),
        Some(true)
    );

    let load = ProduceLoop::start(&c.bootstrap(), "m");
    load.wait_progress(200, T);
    // Scraped under load, the output is valid for the reference parser, with Kafka's names.
    let parsed = parse_with_prometheus_client(port_of(1));
    assert!(
        parsed["content_type"]
            .as_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
        "{}",
        parsed["content_type"]
    );
    let families = &parsed["families"];
    for (name, ty) in [
        ("kafka_server_brokertopicmetrics_messagesin", "counter"),
        ("kafka_server_brokertopicmetrics_bytesin", "counter"),
        ("kafka_network_requestmetrics_requests", "counter"),
        ("kafka_network_requestmetrics_totaltimems", "gauge"),
        ("kafka_network_requestmetrics_totaltimems_count", "counter"),
        (UNDER_REPLICATED, "gauge"),
        (ACTIVE_CONTROLLER, "gauge"),
        (
            "kafka_server_socket_server_metrics_connection_count",
            "gauge",
        ),
        ("process_resident_memory_bytes", "gauge"),
    ] {
        assert_eq!(families[name], ty, "family {name}: {families}");
    }
    let parsed_samples = parsed["samples"].as_array().unwrap();
    let produce_v = parsed_samples.iter().any(|s| {
        s[0] == "kafka_network_requestmetrics_requests_total"
            && s[1]["request"] == "Produce"
            && s[1]["version"].as_str().is_some_and(|v| !v.is_empty())
            && s[2].as_f64().unwrap() > 0.0
    });
    assert!(produce_v, "Produce requests by version under load");

    // Kill a follower: once the leader drops it from the ISR, the partition is under-replicated.
    c.broker(victim).kill9();
    util::wait_until("UnderReplicatedPartitions 1 on the leader", T, || {
        (scrape_value(port_of(1), UNDER_REPLICATED, &[])? == 1.0).then_some(())
    });
    let shrinks = scrape_value(
        port_of(1),
        "kafka_server_replicamanager_isrshrinks_total",
        &[],
    );
    assert!(shrinks.unwrap() >= 1.0, "{shrinks:?}");
    load.wait_progress(100, T);

    // It returns, catches up and rejoins the ISR: back to 0.
    c.restart_killed(victim).unwrap();
    util::wait_until(
        "UnderReplicatedPartitions back to 0",
        Duration::from_secs(60),
        || (scrape_value(port_of(1), UNDER_REPLICATED, &[])? == 0.0).then_some(()),
    );
    let expands = scrape_value(
        port_of(1),
        "kafka_server_replicamanager_isrexpands_total",
        &[],
    );
    assert!(expands.unwrap() >= 1.0, "{expands:?}");
    load.wait_progress(100, T);

    let result = load.finish();
    assert!(result.errors.is_empty(), "{:?}", result.errors);
    let acked = result.acked.len() as f64;
    // Records in, summed over the cluster (only the leader appends client records), equal the
    // records the producer saw acknowledged.
    let messages_in = util::wait_until("MessagesIn from every broker", T, || {
        let mut sum = 0.0;
        for p in &ports {
            // A broker that never appended to the topic has no series for it.
            sum += value(&samples(&scrape(*p)?), MESSAGES_IN, &[("topic", "m")]).unwrap_or(0.0);
        }
        Some(sum)
    });
    assert_eq!(messages_in, acked, "MessagesIn vs records acknowledged");
    let bytes_in = scrape_value(
        port_of(1),
        "kafka_server_brokertopicmetrics_bytesin_total",
        &[("topic", "m")],
    );
    assert!(bytes_in.unwrap() > acked, "{bytes_in:?}");
    // The followers fetched it: replication bytes out on the leader.
    let repl_out = scrape_value(
        port_of(1),
        "kafka_server_brokertopicmetrics_replicationbytesout_total",
        &[],
    );
    assert!(repl_out.unwrap() > 0.0, "{repl_out:?}");

    // Still exactly one active controller, and the final scrape parses too.
    util::wait_until("ActiveControllerCount summing to 1 at the end", T, || {
        (cluster_sum(&ports, ACTIVE_CONTROLLER, &[])? == 1.0).then_some(())
    });
    let end = parse_with_prometheus_client(port_of(victim));
    assert_eq!(end["families"][UNDER_REPLICATED], "gauge");
    c.finish();
}

#[test]
fn sample_parser_reads_labels() {
    let s = samples("# TYPE x counter\nx_total{request=\"Produce\",version=\"9\"} 3\ny 1.5\n");
    assert_eq!(
        value(&s, "x_total", &[("request", "Produce"), ("version", "9")]),
        Some(3.0)
    );
    assert_eq!(value(&s, "y", &[]), Some(1.5));
    assert_eq!(value(&s, "y", &[("a", "b")]), None);
}
