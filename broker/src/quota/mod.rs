//! Quotas: Kafka's windowed rates and throttle times ([`rate`]) and connection limits
//! ([`connections`]).

pub mod connections;
pub mod rate;
