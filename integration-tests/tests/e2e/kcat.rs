//! Debian's kcat 1.7.1 (librdkafka 2.0.2, which mis-parses default-valued tagged fields in ApiVersions v3).

use std::time::Duration;

use samsa_integration_tests::{clients, Cluster};

use crate::common::create_topic;

#[test]
fn kcat_metadata_lists_brokers_and_topics() {
    let cluster = Cluster::single("kcatl");
    let b = cluster.bootstrap();
    create_topic(&b, "listed", 3, 1, &[]);
    let out = clients::kcat(&["-b", &b, "-L", "-J"], None, Duration::from_secs(30)).unwrap();
    let md: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(md["brokers"][0]["id"], 1, "{md}");
    assert_eq!(md["brokers"][0]["name"], format!("{b}"), "{md}");
    let t = md["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["topic"] == "listed")
        .expect("topic listed");
    assert_eq!(t["partitions"].as_array().unwrap().len(), 3);
    for p in t["partitions"].as_array().unwrap() {
        assert_eq!(p["leader"], 1);
    }
    cluster.finish();
}

#[test]
fn kcat_round_trip() {
    let cluster = Cluster::single("kcatrt");
    let b = cluster.bootstrap();
    create_topic(&b, "kc", 1, 1, &[]);
    let input: String = (0..100).map(|i| format!("k{i}:value {i}\n")).collect();
    clients::kcat(
        &["-b", &b, "-P", "-t", "kc", "-p", "0", "-K:", "-z", "snappy"],
        Some(input.as_bytes()),
        Duration::from_secs(30),
    )
    .unwrap();
    let out = clients::kcat(
        &[
            "-b",
            &b,
            "-C",
            "-t",
            "kc",
            "-p",
            "0",
            "-o",
            "beginning",
            "-e",
            "-f",
            "%o|%k|%s\n",
        ],
        None,
        Duration::from_secs(30),
    )
    .unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 100, "{out}");
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(*l, format!("{i}|k{i}|value {i}"));
    }
    cluster.finish();
}
