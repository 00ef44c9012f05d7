//! ZooKeeper: the session wrapper and every znode Kafka 3.9 uses.

pub mod acl;
pub mod admin;
pub mod delegation_token;
pub mod session;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
pub mod znodes;
