//! Per-IP connection creation rate quotas (`connection_creation_rate` on `/config/ips/<ip>`
//! and `/config/ips/<default>`), as Kafka's `ConnectionQuotas` applies them: each new
//! connection from an address with a quota is counted in that address's windowed rate
//! (`quota.window.num` × `quota.window.size.seconds`); one that would exceed it is not
//! accepted — the socket is held without being read for the throttle time (at most one
//! window) and then closed — and it is taken back out of the broker, listener and IP rates.
//!
//! The quotas change live through the `/config/changes` listener (Kafka's
//! `IpConfigHandler`) and are loaded from ZooKeeper at start-up. Until some address has a
//! quota, checking costs one relaxed atomic load per accepted connection.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use samsa_common::zk::session::ZkSession;
use samsa_common::zk::znodes::{config_type, ConfigEntityTypeZNode};
use tracing::{error, info, warn};

use super::admin::CONNECTION_CREATION_RATE;
use super::rate::{Rate, WindowConfig};

/// Kafka's `IP_CONNECTION_RATE_DEFAULT`: no quota.
const UNLIMITED: u32 = i32::MAX as u32;

/// Idle IP sensors are dropped after this long.
const EXPIRATION_MS: u64 = 3_600_000;

#[derive(Debug)]
struct State {
    default: u32,
    overrides: HashMap<IpAddr, u32>,
    rates: HashMap<IpAddr, (Rate, u64)>,
}

/// The IP connection-rate quotas of the broker.
#[derive(Debug)]
pub struct IpConnectionRates {
    /// Any quota configured (default or override).
    enabled: AtomicBool,
    state: Mutex<State>,
}

impl Default for IpConnectionRates {
    fn default() -> Self {
        Self {
            enabled: AtomicBool::new(false),
            state: Mutex::new(State {
                default: UNLIMITED,
                overrides: HashMap::new(),
                rates: HashMap::new(),
            }),
        }
    }
}

impl IpConnectionRates {
    /// Kafka's `updateIpConnectionRateQuota`: `ip` `None` is the default; `rate` `None`
    /// removes the quota.
    pub fn update(&self, ip: Option<IpAddr>, rate: Option<u32>) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        match (ip, rate) {
            (Some(ip), Some(r)) => {
                info!(%ip, rate = r, "updating max connection rate override");
                st.overrides.insert(ip, r);
            }
            (Some(ip), None) => {
                info!(%ip, "removing max connection rate override");
                st.overrides.remove(&ip);
            }
            (None, r) => {
                st.default = r.unwrap_or(UNLIMITED);
                info!(rate = st.default, "updated default max IP connection rate");
            }
        }
        let any = st.default != UNLIMITED || st.overrides.values().any(|r| *r != UNLIMITED);
        self.enabled.store(any, Ordering::Relaxed);
    }

    /// The quota of `ip` (Kafka's `connectionRateForIp`).
    pub fn rate_for(&self, ip: IpAddr) -> u32 {
        self.state
            .lock()
            .map(|st| st.overrides.get(&ip).copied().unwrap_or(st.default))
            .unwrap_or(UNLIMITED)
    }

    /// Counts one new connection from `ip` and returns how long to hold it before closing
    /// it when it exceeds the address's quota (the connection is then not counted), else 0.
    pub fn record(&self, ip: IpAddr, window: WindowConfig, now_ms: u64) -> u64 {
        if !self.enabled.load(Ordering::Relaxed) {
            return 0;
        }
        let Ok(mut st) = self.state.lock() else {
            return 0;
        };
        let quota = st.overrides.get(&ip).copied().unwrap_or(st.default);
        if quota == UNLIMITED {
            return 0;
        }
        if st.rates.len() > 4096 {
            st.rates
                .retain(|_, (_, last)| now_ms.saturating_sub(*last) < EXPIRATION_MS);
        }
        let (rate, last) = st
            .rates
            .entry(ip)
            .or_insert_with(|| (Rate::new(window), now_ms));
        *last = now_ms;
        rate.record(1.0, now_ms);
        let throttle = if quota == 0 {
            window.window_ms
        } else {
            rate.throttle_ms(f64::from(quota), now_ms)
                .min(window.window_ms)
        };
        if throttle > 0 {
            rate.record(-1.0, now_ms);
        }
        throttle
    }

    /// An `/config/ips/<ip>` config (Kafka's `IpConfigHandler.processConfigChanges`); an
    /// address that does not resolve or a value that is not an integer is logged and skipped.
    pub fn config_changed(&self, ip: &str, config: &BTreeMap<String, String>) {
        let rate = match config
            .get(CONNECTION_CREATION_RATE)
            .map(|v| v.trim().parse::<i32>())
        {
            None => None,
            Some(Ok(r)) => Some(r.max(0) as u32),
            Some(Err(_)) => {
                warn!(ip, "ignoring malformed connection_creation_rate");
                return;
            }
        };
        if ip == config_type::DEFAULT_ENTITY {
            self.update(None, rate);
            return;
        }
        let addr = ip.parse::<IpAddr>().ok().or_else(|| {
            std::net::ToSocketAddrs::to_socket_addrs(&(ip, 0))
                .ok()?
                .next()
                .map(|a| a.ip())
        });
        match addr {
            Some(a) => self.update(Some(a), rate),
            None => warn!(
                ip,
                "Unable to resolve address; ignoring its connection rate quota"
            ),
        }
    }

    /// Reads every `/config/ips/<ip>` (start-up; Kafka reads all entity configs then).
    pub async fn load(&self, zk: &ZkSession) -> samsa_common::error::Result<()> {
        let ips = zk
            .children(&ConfigEntityTypeZNode::path(config_type::IP))
            .await?
            .unwrap_or_default();
        for ip in ips {
            match zk.get_entity_config(config_type::IP, &ip).await {
                Ok(c) => self.config_changed(&ip, &c),
                Err(e @ samsa_common::error::Error::InvalidZnode { .. }) => {
                    error!(ip, error = %e, "skipping unreadable ip quota config znode")
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn default_and_override_quotas_throttle_new_connections() {
        let q = IpConnectionRates::default();
        let w = WindowConfig::new(11, 1);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(q.record(a, w, 0), 0, "no quota");
        q.config_changed(
            "<default>",
            &BTreeMap::from([(CONNECTION_CREATION_RATE.into(), "1".into())]),
        );
        q.config_changed(
            "10.0.0.2",
            &BTreeMap::from([(CONNECTION_CREATION_RATE.into(), "100".into())]),
        );
        assert_eq!(q.rate_for(a), 1);
        assert_eq!(q.rate_for(b), 100);
        // Ten connections fit the padded ten-second window at 1/s; the eleventh is held.
        let now = 1_000_000;
        for _ in 0..10 {
            assert_eq!(q.record(a, w, now), 0);
        }
        let t = q.record(a, w, now);
        assert!(t > 0 && t <= 1000, "{t}");
        for _ in 0..50 {
            assert_eq!(q.record(b, w, now), 0);
        }
        // Removing the default lifts it for a; b keeps its override.
        q.config_changed("<default>", &BTreeMap::new());
        assert_eq!(q.record(a, w, now), 0);
        assert_eq!(q.rate_for(b), 100);
        q.config_changed("10.0.0.2", &BTreeMap::new());
        assert!(!q.enabled.load(Ordering::Relaxed));
    }
}
