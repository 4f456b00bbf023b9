//! What a polling consumer costs the broker: tansu (`sqlite://`) with one idle consumer group
//! member reading a topic of `p` partitions with `fetch.wait.max.ms = w`, no records at all;
//! the broker's CPU over 10 s. Baseline in the same run: the broker with no consumer.
//!
//! tansu answers a fetch for which it has no data only after the wait, partition by partition,
//! so this is the price of each of the pipeline's consumers whether or not a match is on.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};

use super::cpu_s;

const MEASURE: Duration = Duration::from_secs(10);

/// Share of one core the broker used over [`MEASURE`] (after a warm-up) with a consumer of
/// `partitions` partitions polling every `wait_ms` (no consumer when `partitions` is 0).
async fn cost(partitions: i32, wait_ms: u32) -> f64 {
    let kafka = sideline_testkit::Tansu::start_with_storage("sqlite://tansu.db");
    let brokers = kafka.brokers();
    let admin: AdminClient<_> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .unwrap();
    let topic = "bench.idle";
    let n = partitions.max(1);
    let new = NewTopic::new(topic, n, TopicReplication::Fixed(1));
    admin
        .create_topics(&[new], &AdminOptions::new())
        .await
        .unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = (partitions > 0).then(|| {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .set("group.id", "bench-idle")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", wait_ms.to_string())
            .create()
            .unwrap();
        c.subscribe(&[topic]).unwrap();
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = c.poll(Duration::from_millis(100));
            }
        })
    });
    tokio::time::sleep(Duration::from_secs(5)).await;
    let c0 = cpu_s(kafka.pid());
    tokio::time::sleep(MEASURE).await;
    let used = cpu_s(kafka.pid()) - c0;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(r) = reader {
        r.join().unwrap();
    }
    used / MEASURE.as_secs_f64()
}

pub async fn run() {
    println!("\n== 4. What an idle consumer costs tansu (sqlite://), share of one core over 10 s");
    println!("| consumer | tansu CPU |");
    println!("|---|---:|");
    println!("| none (baseline) | {:.0} % |", cost(0, 0).await * 100.0);
    for (p, w) in [(1, 50), (3, 50), (2, 20), (12, 20), (12, 50), (12, 500)] {
        println!(
            "| {p} partition(s), fetch.wait.max.ms = {w} | {:.0} % |",
            cost(p, w).await * 100.0
        );
    }
}
