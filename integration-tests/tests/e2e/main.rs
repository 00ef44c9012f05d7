//! End-to-end suite: one test binary (one shared ZooKeeper), tests run in parallel threads, each with its
//! own ZooKeeper chroot, ports and directories. See integration-tests/README.md.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod acl_enforcement;
mod acl_enforcement_ops;
mod acls;
mod bad_input;
mod broker_logger;
mod cluster;
mod cluster_faults;
mod common;
mod connection_limits;
mod durability;
mod dynamic_configs;
mod group_coordinator;
mod groups;
mod groups_replication;
mod harness_smoke;
mod java_admin;
mod kcat;
mod log_dir_failure;
mod log_dir_moves;
mod metrics;
mod other_clients;
mod quotas;
mod rdkafka_client;
mod scale;
mod security;
mod security_oauth;
mod security_tokens;
mod transactions;
mod transactions_compact;
mod transactions_eos;
mod transactions_leader;
mod zk_conformance;
