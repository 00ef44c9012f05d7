//! Quotas: Kafka's windowed rates and throttle times ([`rate`]), client quotas
//! ([`client`]) and connection limits ([`connections`]).

pub mod admin;
pub mod client;
pub mod connections;
pub mod ip_rates;
pub mod mutation;
pub mod rate;
