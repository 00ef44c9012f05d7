//! Per-request cost of the metrics hooks (harness = false):
//!
//! `cargo bench -p samsa-broker --bench metrics_bench`
//!
//! Times what the connection and the replica manager add to one Produce request of one
//! partition — `track_request` around the handler future, the BrokerTopicMetrics charge,
//! one `response_error`, and `request_sent` with its six timer records — with counting on
//! and with it off (the `samsa.metrics.listener` knob), on one thread and on two threads
//! charging the same counters (the contended case). Prints ns per request, median of 5.

use std::sync::Arc;
use std::time::Instant;

use samsa_broker::metrics::{self, registry};

const N: u64 = 2_000_000;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// One Produce request's worth of hooks, `n` times; ns per request.
async fn requests(n: u64, topic: &metrics::TopicStats) -> f64 {
    let start = Instant::now();
    for i in 0..n {
        let received = Instant::now();
        let (out, timing) = metrics::track_request(0, 9, received, async {
            metrics::produce_appended(topic, 10, 1_000);
            metrics::response_error(0);
            Ok::<u64, samsa_broker::error::Error>(i)
        })
        .await;
        std::hint::black_box(out.ok());
        if let Some(t) = timing {
            metrics::request_sent(&t, Instant::now());
        }
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

fn run(threads: usize, on: bool) -> f64 {
    metrics::set_enabled(on);
    let topic = registry().topic("bench");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .build()
        .expect("runtime");
    median(
        (0..5)
            .map(|_| {
                rt.block_on(async {
                    let hs: Vec<_> = (0..threads)
                        .map(|_| {
                            let topic = Arc::clone(&topic);
                            tokio::spawn(async move { requests(N, &topic).await })
                        })
                        .collect();
                    let mut worst: f64 = 0.0;
                    for h in hs {
                        worst = worst.max(h.await.expect("task"));
                    }
                    worst
                })
            })
            .collect(),
    )
}

fn main() {
    for threads in [1, 2] {
        let off = run(threads, false);
        let on = run(threads, true);
        println!(
            "{threads} thread(s): off {off:.1} ns/request, on {on:.1} ns/request, cost {:.1} ns",
            on - off
        );
    }
}
