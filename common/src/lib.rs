//! Shared pieces of Samsa: configuration, typed ids, ZooKeeper znodes and session, a small Kafka client.

pub mod client;
pub mod config;
pub mod error;
pub mod histogram;
pub mod properties;
pub mod types;
pub mod zk;
