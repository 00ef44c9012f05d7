//! One scrape: the registry's counters and timers plus gauges computed now from the
//! broker's state, encoded in the Prometheus text format (0.0.4) by the `prometheus` crate.
//!
//! Names follow the JMX exporter with Strimzi's Kafka rules (`lowercaseOutputName: true`):
//! `kafka.<domain><type=T, name=N[, k=v]...>` becomes
//! * `<>Count` of a `...PerSec` meter → `kafka_<domain>_<t>_<n without PerSec>_total{k="v"}`
//! * `<>Value` of a gauge → `kafka_<domain>_<t>_<n>{k="v"}` (`..._percent` for `...Percent`)
//! * `<>Count` of a timer → `kafka_<domain>_<t>_<n>_count{k="v"}` and its
//!   `<>NNthPercentile` → `kafka_<domain>_<t>_<n>{k="v",quantile="0.NN"}`
//! * socket-server-metrics attributes → `kafka_server_socket_server_metrics_<attr>`.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus::core::Collector;
use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};
use samsa_common::histogram::{Histogram, PERCENTILES};

use super::names::{error_name, request_name, MAX_API_KEY};
use super::{registry, FETCH_CONSUMER, FETCH_FOLLOWER};
use crate::broker::BrokerContext;

type Labels = Vec<(&'static str, String)>;

/// Families being built, in output order.
#[derive(Default)]
pub struct Families(Vec<MetricFamily>);

impl Families {
    fn push(&mut self, name: &str, help: &str, ty: MetricType, samples: Vec<(Labels, f64)>) {
        if samples.is_empty() {
            return;
        }
        let mut mf = MetricFamily::default();
        mf.set_name(name.to_string());
        mf.set_help(help.to_string());
        mf.set_field_type(ty);
        let metrics = samples
            .into_iter()
            .map(|(labels, v)| {
                let mut m = Metric::default();
                m.set_label(
                    labels
                        .into_iter()
                        .map(|(k, v)| {
                            let mut l = LabelPair::default();
                            l.set_name(k.to_string());
                            l.set_value(v);
                            l
                        })
                        .collect(),
                );
                match ty {
                    MetricType::COUNTER => {
                        let mut c = Counter::default();
                        c.set_value(v);
                        m.set_counter(c);
                    }
                    _ => {
                        let mut g = Gauge::default();
                        g.set_value(v);
                        m.set_gauge(g);
                    }
                }
                m
            })
            .collect();
        mf.set_metric(metrics);
        self.0.push(mf);
    }

    fn counter(&mut self, name: &str, help: &str, samples: Vec<(Labels, f64)>) {
        self.push(name, help, MetricType::COUNTER, samples);
    }

    fn gauge(&mut self, name: &str, help: &str, samples: Vec<(Labels, f64)>) {
        self.push(name, help, MetricType::GAUGE, samples);
    }

    fn gauge1(&mut self, name: &str, help: &str, v: f64) {
        self.gauge(name, help, vec![(Vec::new(), v)]);
    }

    /// A Yammer timer as the rules export it: `<base>_count` and `<base>{quantile}`.
    fn timer(&mut self, base: &str, help: &str, timers: Vec<(Labels, &Histogram)>) {
        let mut counts = Vec::with_capacity(timers.len());
        let mut quantiles = Vec::with_capacity(timers.len() * PERCENTILES.len());
        for (labels, h) in timers {
            let (count, values) = h.read_ms();
            for ((_, q), v) in PERCENTILES.iter().zip(values) {
                let mut l = labels.clone();
                l.push(("quantile", (*q).to_string()));
                quantiles.push((l, v));
            }
            counts.push((labels, count as f64));
        }
        self.counter(&format!("{base}_count"), help, counts);
        self.gauge(base, help, quantiles);
    }
}

fn u(a: &AtomicU64) -> f64 {
    a.load(Ordering::Relaxed) as f64
}

fn i(a: &AtomicI64) -> f64 {
    a.load(Ordering::Relaxed) as f64
}

/// Everything, encoded. `ctx` is `None` only in tests of the registry alone.
pub fn render(ctx: Option<&Arc<BrokerContext>>) -> String {
    let mut f = Families::default();
    broker_topic_metrics(&mut f, ctx);
    request_metrics(&mut f);
    if let Some(ctx) = ctx {
        replica_manager(&mut f, ctx);
        controller(&mut f, ctx);
        group_coordinator(&mut f, ctx);
        f.gauge1(
            "kafka_server_kafkaserver_brokerstate",
            "kafka.server:type=KafkaServer,name=BrokerState (3 = RUNNING)",
            3.0,
        );
    }
    let r = registry();
    f.counter(
        "kafka_server_replicamanager_isrshrinks_total",
        "kafka.server:type=ReplicaManager,name=IsrShrinksPerSec",
        vec![(Vec::new(), u(&r.isr_shrinks))],
    );
    f.counter(
        "kafka_server_replicamanager_isrexpands_total",
        "kafka.server:type=ReplicaManager,name=IsrExpandsPerSec",
        vec![(Vec::new(), u(&r.isr_expands))],
    );
    f.timer(
        "kafka_log_logflushstats_logflushrateandtimems",
        "kafka.log:type=LogFlushStats,name=LogFlushRateAndTimeMs",
        vec![(Vec::new(), &r.log_flush)],
    );
    network(&mut f);
    let mut families = f.0;
    families.extend(prometheus::process_collector::ProcessCollector::for_self().collect());
    let mut out = String::new();
    if let Err(e) = prometheus::TextEncoder::new().encode_utf8(&families, &mut out) {
        tracing::warn!(error = %e, "metrics encoding failed");
    }
    out
}

/// BrokerTopicMetrics: all topics (no tag) and each hosted topic whose meter moved.
fn broker_topic_metrics(f: &mut Families, ctx: Option<&Arc<BrokerContext>>) {
    let r = registry();
    let hosted: Option<std::collections::HashSet<String>> = ctx
        .and_then(|c| c.replica_manager.get())
        .map(|rm| rm.partitions().iter().map(|p| p.tp.topic.clone()).collect());
    let mut topics = r.topics();
    topics.retain(|(t, _)| hosted.as_ref().is_none_or(|h| h.contains(t)));
    topics.sort_by(|a, b| a.0.cmp(&b.0));
    let topic_values: Vec<(String, [(&str, u64); 8])> = topics
        .iter()
        .map(|(t, s)| (t.clone(), s.topic_meters()))
        .collect();
    for (k, (meter, all)) in r.all_topics.topic_meters().into_iter().enumerate() {
        let mut samples = vec![(Labels::new(), all as f64)];
        for (t, values) in &topic_values {
            let v = values[k].1;
            if v > 0 {
                samples.push((vec![("topic", t.clone())], v as f64));
            }
        }
        f.counter(
            &format!("kafka_server_brokertopicmetrics_{meter}_total"),
            "kafka.server:type=BrokerTopicMetrics",
            samples,
        );
    }
    for (meter, a) in [
        ("replicationbytesin", &r.all_topics.replication_bytes_in),
        ("replicationbytesout", &r.all_topics.replication_bytes_out),
    ] {
        f.counter(
            &format!("kafka_server_brokertopicmetrics_{meter}_total"),
            "kafka.server:type=BrokerTopicMetrics",
            vec![(Vec::new(), u(a))],
        );
    }
}

/// Request types that have RequestMetrics: every API a 3.9 ZooKeeper broker serves, plus
/// Kafka's two Fetch sub-types.
fn request_indexes() -> impl Iterator<Item = usize> {
    (0..=MAX_API_KEY)
        .filter(|k| {
            i16::try_from(*k)
                .ok()
                .and_then(|k| kafka_protocol::messages::ApiKey::try_from(k).ok())
                .and_then(crate::dispatch::kafka_zk_versions)
                .is_some()
        })
        .chain([FETCH_CONSUMER, FETCH_FOLLOWER])
}

fn request_metrics(f: &mut Families) {
    let r = registry();
    let mut requests = Vec::new();
    let mut errors = Vec::new();
    let mut timers: Vec<Vec<(Labels, &Histogram)>> = vec![Vec::new(); 6];
    let mut timer_names = [""; 6];
    for idx in request_indexes() {
        let (Some(name), Some(s)) = (request_name(idx), r.request(idx)) else {
            continue;
        };
        for (v, c) in s.requests.iter().enumerate() {
            let c = c.load(Ordering::Relaxed);
            if c > 0 {
                requests.push((
                    vec![("request", name.to_string()), ("version", v.to_string())],
                    c as f64,
                ));
            }
        }
        for (slot, c) in s.errors.iter().enumerate() {
            let c = c.load(Ordering::Relaxed);
            if c > 0 {
                errors.push((
                    vec![
                        ("request", name.to_string()),
                        ("error", error_name(slot).to_string()),
                    ],
                    c as f64,
                ));
            }
        }
        for (k, (tname, h)) in s.timers().into_iter().enumerate() {
            timer_names[k] = tname;
            timers[k].push((vec![("request", name.to_string())], h));
        }
    }
    f.counter(
        "kafka_network_requestmetrics_requests_total",
        "kafka.network:type=RequestMetrics,name=RequestsPerSec",
        requests,
    );
    f.counter(
        "kafka_network_requestmetrics_errors_total",
        "kafka.network:type=RequestMetrics,name=ErrorsPerSec",
        errors,
    );
    for (tname, t) in timer_names.iter().zip(timers) {
        f.timer(
            &format!("kafka_network_requestmetrics_{tname}"),
            "kafka.network:type=RequestMetrics",
            t,
        );
    }
}

fn replica_manager(f: &mut Families, ctx: &Arc<BrokerContext>) {
    let Some(rm) = ctx.replica_manager.get() else {
        return;
    };
    let mut partitions = 0usize;
    let mut leaders = 0usize;
    let mut under_replicated = 0usize;
    let mut under_min_isr = 0usize;
    let mut at_min_isr = 0usize;
    let mut offline = 0usize;
    for p in rm.partitions() {
        partitions += 1;
        if p.is_offline() {
            offline += 1;
            continue;
        }
        let (leader, isr, replicas) =
            p.read_state(|s| (s.is_leader(), s.isr.len(), s.replicas.len()));
        if !leader {
            continue;
        }
        leaders += 1;
        if isr < replicas {
            under_replicated += 1;
        }
        let min_isr = p
            .log()
            .map_or(1, |l| l.config().min_insync_replicas.max(1) as usize);
        if isr < min_isr {
            under_min_isr += 1;
        } else if isr == min_isr {
            at_min_isr += 1;
        }
    }
    for (name, v) in [
        ("partitioncount", partitions),
        ("leadercount", leaders),
        ("underreplicatedpartitions", under_replicated),
        ("underminisrpartitioncount", under_min_isr),
        ("atminisrpartitioncount", at_min_isr),
        ("offlinereplicacount", offline),
    ] {
        f.gauge1(
            &format!("kafka_server_replicamanager_{name}"),
            "kafka.server:type=ReplicaManager",
            v as f64,
        );
    }
}

fn controller(f: &mut Families, ctx: &Arc<BrokerContext>) {
    let handle = ctx.controller.get();
    let active = handle.as_ref().is_some_and(|h| h.is_active());
    f.gauge1(
        "kafka_controller_kafkacontroller_activecontrollercount",
        "kafka.controller:type=KafkaController,name=ActiveControllerCount",
        if active { 1.0 } else { 0.0 },
    );
    let Some(h) = handle else {
        return;
    };
    let m = h.metrics();
    for (name, a) in [
        ("offlinepartitionscount", &m.offline_partitions),
        (
            "preferredreplicaimbalancecount",
            &m.preferred_replica_imbalance,
        ),
        ("globaltopiccount", &m.global_topics),
        ("globalpartitioncount", &m.global_partitions),
        ("topicstodeletecount", &m.topics_to_delete),
        ("replicastodeletecount", &m.replicas_to_delete),
        (
            "topicsineligibletodeletecount",
            &m.topics_ineligible_to_delete,
        ),
        ("activebrokercount", &m.active_brokers),
    ] {
        let v = if active { i(a) } else { 0.0 };
        f.gauge1(
            &format!("kafka_controller_kafkacontroller_{name}"),
            "kafka.controller:type=KafkaController",
            v,
        );
    }
    f.timer(
        "kafka_controller_controllerstats_leaderelectionrateandtimems",
        "kafka.controller:type=ControllerStats,name=LeaderElectionRateAndTimeMs",
        vec![(Vec::new(), &m.leader_election_time)],
    );
    f.counter(
        "kafka_controller_controllerstats_uncleanleaderelections_total",
        "kafka.controller:type=ControllerStats,name=UncleanLeaderElectionsPerSec",
        vec![(Vec::new(), u(&m.unclean_elections))],
    );
}

/// `kafka.coordinator.group:type=GroupMetadataManager`. Strimzi's generic rules skip the
/// dotted `kafka.coordinator.group` domain; these are the names of the widely used
/// `kafka.coordinator.(\w+)<type=(.+), name=(.+)><>Value` rule.
fn group_coordinator(f: &mut Families, ctx: &Arc<BrokerContext>) {
    let (states, offsets) = ctx.groups.metric_counts();
    let [empty, preparing, completing, stable, dead] = states;
    for (name, v) in [
        ("numgroups", states.iter().sum::<usize>()),
        ("numgroupsstable", stable),
        ("numgroupspreparingrebalance", preparing),
        ("numgroupscompletingrebalance", completing),
        ("numgroupsempty", empty),
        ("numgroupsdead", dead),
        ("numoffsets", offsets),
    ] {
        f.gauge1(
            &format!("kafka_coordinator_group_groupmetadatamanager_{name}"),
            "kafka.coordinator.group:type=GroupMetadataManager",
            v as f64,
        );
    }
}

/// Busy time of the runtime's workers at the previous scrape.
static LAST_BUSY: Mutex<Option<(Instant, Duration)>> = Mutex::new(None);

/// Fraction of worker time idle since the previous scrape (1.0 on the first one).
fn idle_ratio() -> f64 {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return 1.0;
    };
    let m = handle.metrics();
    let workers = m.num_workers().max(1);
    let busy: Duration = (0..m.num_workers())
        .map(|w| m.worker_total_busy_duration(w))
        .sum();
    let now = Instant::now();
    let mut last = LAST_BUSY.lock().unwrap_or_else(|p| p.into_inner());
    let ratio = match *last {
        Some((t, b)) if now > t => {
            let wall = now.duration_since(t).as_secs_f64() * workers as f64;
            let used = busy.saturating_sub(b).as_secs_f64();
            (1.0 - used / wall).clamp(0.0, 1.0)
        }
        _ => 1.0,
    };
    *last = Some((now, busy));
    ratio
}

/// Connections per listener and the idle ratios of the network and handler threads (both
/// are the async runtime's workers here).
fn network(f: &mut Families) {
    let listeners = registry().listeners();
    let label = |name: &Arc<str>| -> Labels {
        vec![
            ("listener", name.to_string()),
            ("networkProcessor", "0".to_string()),
        ]
    };
    f.gauge(
        "kafka_server_socket_server_metrics_connection_count",
        "kafka.server:type=socket-server-metrics,name=connection-count",
        listeners
            .iter()
            .map(|(n, s)| (label(n), i(&s.connection_count)))
            .collect(),
    );
    f.counter(
        "kafka_server_socket_server_metrics_connection_creation_total",
        "kafka.server:type=socket-server-metrics,name=connection-creation-total",
        listeners
            .iter()
            .map(|(n, s)| (label(n), u(&s.connection_creation_total)))
            .collect(),
    );
    f.counter(
        "kafka_server_socket_server_metrics_connection_close_total",
        "kafka.server:type=socket-server-metrics,name=connection-close-total",
        listeners
            .iter()
            .map(|(n, s)| (label(n), u(&s.connection_close_total)))
            .collect(),
    );
    let idle = idle_ratio();
    f.gauge1(
        "kafka_network_socketserver_networkprocessoravgidle_percent",
        "kafka.network:type=SocketServer,name=NetworkProcessorAvgIdlePercent",
        idle,
    );
    f.gauge1(
        "kafka_server_kafkarequesthandlerpool_requesthandleravgidle_percent",
        "kafka.server:type=KafkaRequestHandlerPool,name=RequestHandlerAvgIdlePercent",
        idle,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{self, names};

    /// Output of the registry alone parses back line by line with the names the rules give.
    #[test]
    fn render_uses_kafka_rule_names() {
        metrics::set_enabled(true);
        let topic = registry().topic("render-test");
        metrics::produce_appended(&topic, 3, 300);
        registry().log_flush.record(Duration::from_millis(2));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let (out, timing) = rt.block_on(async {
            let (out, timing) = metrics::track_request(0, 9, Instant::now(), async {
                metrics::add_remote_time(Duration::from_millis(1));
                Ok::<_, crate::error::Error>(())
            })
            .await;
            (out, timing)
        });
        assert!(out.is_ok());
        let timing = timing.expect("enabled");
        metrics::request_sent(&timing, Instant::now());
        let text = render(None);
        for want in [
            "kafka_server_brokertopicmetrics_messagesin_total{topic=\"render-test\"} 3",
            "kafka_server_brokertopicmetrics_bytesin_total{topic=\"render-test\"} 300",
            "kafka_network_requestmetrics_requests_total{request=\"Produce\",version=\"9\"} 1",
            "kafka_network_requestmetrics_errors_total{request=\"Produce\",error=\"NONE\"} 1",
            "kafka_network_requestmetrics_totaltimems_count{request=\"Produce\"} 1",
            "kafka_network_requestmetrics_remotetimems{request=\"Produce\",quantile=\"0.99\"}",
            "kafka_network_requestmetrics_localtimems{request=\"FetchFollower\",quantile=\"0.50\"} 0",
            "kafka_log_logflushstats_logflushrateandtimems_count 1",
            "# TYPE kafka_server_brokertopicmetrics_messagesin_total counter",
            "kafka_network_socketserver_networkprocessoravgidle_percent",
            "process_resident_memory_bytes",
        ] {
            assert!(text.contains(want), "missing {want}\n{text}");
        }
        assert!(text.contains("kafka_server_brokertopicmetrics_messagesin_total "));
        // Every sample line is `name{labels} value` with a numeric value.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, v) = line.rsplit_once(' ').expect(line);
            assert!(v.parse::<f64>().is_ok(), "{line}");
        }
        assert_eq!(names::request_name(0), Some("Produce"));
    }
}
