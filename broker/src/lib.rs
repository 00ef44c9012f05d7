//! The Samsa broker: network, one handler per Kafka API, log storage, replication.

pub mod broker;
pub mod config_change;
pub mod connection;
pub mod coordinator;
pub mod dispatch;
pub mod dynamic_config;
pub mod error;
pub mod handlers;
pub mod log;
pub mod log_levels;
pub mod metadata_cache;
pub mod metrics;
pub mod producer_id;
pub mod quota;
pub mod replica;
pub mod security;
pub mod sendfile;
pub mod server;
pub mod supervise;
pub mod zk_broker;
pub mod zk_notifications;
