//! Connection limits as Kafka's `ConnectionQuotas` enforces them:
//!
//! - `max.connections` (broker-wide) and `listener.name.<l>.max.connections`: the acceptor
//!   of a listener at its limit waits for a slot. The inter-broker listener is protected
//!   (when there is more than one listener): it is admitted beyond the broker-wide limit,
//!   and the least recently active connection of another listener is closed instead.
//! - `max.connections.per.ip` and `max.connections.per.ip.overrides`: a connection beyond
//!   its address's limit is closed at once.
//! - `max.connection.creation.rate` (broker-wide) and
//!   `listener.name.<l>.max.connection.creation.rate`: the acceptor is delayed until the
//!   rate over the quota window falls back to the limit, at most one window.
//!
//! The state is one mutex held only for counting (never across an await).

use std::collections::HashMap;
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use samsa_common::config::BrokerConfig;
use tokio::sync::Notify;
use tracing::{info, warn};

use super::rate::{Rate, WindowConfig};

/// Limits of one listener (`listener.name.<l>.max.connections`, `...max.connection.creation.rate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenerLimits {
    pub max_connections: u32,
    pub max_creation_rate: u32,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        Self {
            max_connections: i32::MAX as u32,
            max_creation_rate: i32::MAX as u32,
        }
    }
}

/// The settings, from the broker config.
#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    pub max_connections: u32,
    pub max_per_ip: u32,
    pub per_ip_overrides: HashMap<IpAddr, u32>,
    pub max_creation_rate: u32,
    pub listeners: HashMap<String, ListenerLimits>,
    /// The protected listener (`inter.broker.listener.name`), if there are several.
    pub inter_broker_listener: Option<String>,
    pub window: WindowConfig,
    /// `connection_creation_rate` quotas per IP, changed live from ZooKeeper.
    pub ip_rates: Arc<super::ip_rates::IpConnectionRates>,
}

/// Equal settings; the live IP quota table counts as equal when it is the same table.
impl PartialEq for ConnectionLimits {
    fn eq(&self, other: &Self) -> bool {
        self.max_connections == other.max_connections
            && self.max_per_ip == other.max_per_ip
            && self.per_ip_overrides == other.per_ip_overrides
            && self.max_creation_rate == other.max_creation_rate
            && self.listeners == other.listeners
            && self.inter_broker_listener == other.inter_broker_listener
            && self.window == other.window
            && Arc::ptr_eq(&self.ip_rates, &other.ip_rates)
    }
}

impl Default for ConnectionLimits {
    /// No limits.
    fn default() -> Self {
        Self {
            max_connections: i32::MAX as u32,
            max_per_ip: i32::MAX as u32,
            per_ip_overrides: HashMap::new(),
            max_creation_rate: i32::MAX as u32,
            listeners: HashMap::new(),
            inter_broker_listener: None,
            window: WindowConfig::default(),
            ip_rates: Arc::default(),
        }
    }
}

fn non_negative(v: i32) -> u32 {
    v.max(0) as u32
}

impl ConnectionLimits {
    /// From `server.properties`. Host names in the per-IP overrides are resolved once, as
    /// Kafka resolves them when the config is loaded; an unresolvable one is logged and
    /// ignored.
    pub fn from_config(config: &BrokerConfig) -> Self {
        let props = config.all_props();
        let listener_int = |listener: &str, key: &str, default: u32| -> u32 {
            let prefixed = format!("listener.name.{}.{key}", listener.to_ascii_lowercase());
            match props.get(&prefixed).map(|v| v.trim().parse::<i32>()) {
                Some(Ok(v)) => non_negative(v),
                Some(Err(_)) => {
                    warn!(key = %prefixed, "not an integer; ignored");
                    default
                }
                None => default,
            }
        };
        let listeners = config
            .listeners
            .iter()
            .map(|l| {
                let limits = ListenerLimits {
                    max_connections: listener_int(&l.name, "max.connections", i32::MAX as u32),
                    max_creation_rate: listener_int(
                        &l.name,
                        "max.connection.creation.rate",
                        i32::MAX as u32,
                    ),
                };
                (l.name.clone(), limits)
            })
            .collect();
        let mut per_ip_overrides = HashMap::new();
        for (host, limit) in &config.max_connections_per_ip_overrides {
            match resolve(host) {
                Some(ip) => {
                    per_ip_overrides.insert(ip, non_negative(*limit));
                }
                None => {
                    warn!(host = %host, "max.connections.per.ip.overrides: cannot resolve host; ignored")
                }
            }
        }
        Self {
            max_connections: non_negative(config.max_connections),
            max_per_ip: non_negative(config.max_connections_per_ip),
            per_ip_overrides,
            max_creation_rate: non_negative(config.max_connection_creation_rate),
            listeners,
            inter_broker_listener: (config.listeners.len() > 1)
                .then(|| config.inter_broker_listener_name.clone()),
            window: WindowConfig::new(config.quota_window_num, config.quota_window_size_seconds),
            ip_rates: Arc::default(),
        }
    }
}

fn resolve(host: &str) -> Option<IpAddr> {
    if let Ok(ip) = host.parse() {
        return Some(ip);
    }
    (host, 0).to_socket_addrs().ok()?.next().map(|a| a.ip())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What a live connection shares with the quotas: when it was last active (for the
/// least-recently-active choice) and a way to ask it to close.
#[derive(Debug, Default)]
pub struct Activity {
    last_active_ms: AtomicU64,
    closing: AtomicBool,
    close: Notify,
}

impl Activity {
    /// Marks the connection active now (called per request).
    pub fn touch(&self) {
        self.last_active_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// Resolves when the quotas ask this connection to close.
    pub async fn closed(&self) {
        self.close.notified().await
    }
}

/// Why a connection was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// `max.connections.per.ip` (or its override) reached.
    TooManyConnections { ip: IpAddr, max: u32 },
    /// The address's `connection_creation_rate` quota is exceeded: hold the socket this
    /// long, then close it (Kafka's `ConnectionThrottledException`).
    Throttled { ip: IpAddr, throttle_ms: u64 },
    /// The server is shutting down.
    ShuttingDown,
}

#[derive(Debug)]
struct Tracked {
    listener: Arc<str>,
    activity: Arc<Activity>,
}

#[derive(Debug)]
struct State {
    limits: ConnectionLimits,
    per_ip: HashMap<IpAddr, u32>,
    per_listener: HashMap<Arc<str>, u32>,
    total: u32,
    broker_rate: Rate,
    listener_rates: HashMap<Arc<str>, Rate>,
    conns: HashMap<u64, Tracked>,
    next_id: u64,
}

impl State {
    fn protected(&self, listener: &str) -> bool {
        self.limits.inter_broker_listener.as_deref() == Some(listener)
    }

    fn listener_limits(&self, listener: &str) -> ListenerLimits {
        self.limits
            .listeners
            .get(listener)
            .copied()
            .unwrap_or_default()
    }

    fn slot_available(&self, listener: &str) -> bool {
        let count = self.per_listener.get(listener).copied().unwrap_or(0);
        if count >= self.listener_limits(listener).max_connections {
            false
        } else {
            self.protected(listener) || self.total < self.limits.max_connections
        }
    }

    /// Records one new connection in the broker and listener creation rates and returns
    /// how long the acceptor must wait (the longer of the two, capped at one window).
    fn record_creation(&mut self, listener: &Arc<str>, now: u64) -> u64 {
        let window = self.limits.window;
        let max_throttle = window.window_ms;
        let mut throttle = 0;
        if !self.protected(listener) {
            self.broker_rate.record(1.0, now);
            throttle = self
                .broker_rate
                .throttle_ms(f64::from(self.limits.max_creation_rate), now);
        }
        let bound = f64::from(self.listener_limits(listener).max_creation_rate);
        let rate = self
            .listener_rates
            .entry(listener.clone())
            .or_insert_with(|| Rate::new(window));
        rate.record(1.0, now);
        throttle.max(rate.throttle_ms(bound, now)).min(max_throttle)
    }

    /// With the protected listener over the broker-wide limit, asks the least recently
    /// active connections of other listeners to close.
    fn evict_for_protected(&mut self) {
        let closing = self
            .conns
            .values()
            .filter(|c| c.activity.closing.load(Ordering::Relaxed))
            .count() as u32;
        let mut excess = self
            .total
            .saturating_sub(closing)
            .saturating_sub(self.limits.max_connections);
        while excess > 0 {
            let victim = self
                .conns
                .values()
                .filter(|c| !self.protected(&c.listener))
                .filter(|c| !c.activity.closing.load(Ordering::Relaxed))
                .min_by_key(|c| c.activity.last_active_ms.load(Ordering::Relaxed));
            let Some(victim) = victim else { break };
            info!(listener = %victim.listener,
                  "closing the least recently active connection: max.connections reached and \
                   the inter-broker listener needs a slot");
            victim.activity.closing.store(true, Ordering::Relaxed);
            victim.activity.close.notify_one();
            excess -= 1;
        }
    }
}

/// Connection counts and limits shared by every listener's acceptor.
#[derive(Debug)]
pub struct ConnectionQuotas {
    state: Mutex<State>,
    /// Signalled when a connection closes (a slot may have freed).
    freed: Notify,
}

impl ConnectionQuotas {
    pub fn new(limits: ConnectionLimits) -> Arc<Self> {
        let window = limits.window;
        Arc::new(Self {
            state: Mutex::new(State {
                limits,
                per_ip: HashMap::new(),
                per_listener: HashMap::new(),
                total: 0,
                broker_rate: Rate::new(window),
                listener_rates: HashMap::new(),
                conns: HashMap::new(),
                next_id: 0,
            }),
            freed: Notify::new(),
        })
    }

    /// New limits from a dynamic broker config change (Kafka's `SocketServer.reconfigure`):
    /// counts are kept, acceptors waiting for a slot re-check.
    /// The IP quota table is kept: it is changed live through `/config/ips`, not here.
    pub fn reconfigure(&self, limits: ConnectionLimits) {
        let mut state = self.lock();
        let ip_rates = state.limits.ip_rates.clone();
        state.limits = ConnectionLimits { ip_rates, ..limits };
        drop(state);
        self.freed.notify_waiters();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Connections currently counted from `ip`.
    pub fn count(&self, ip: IpAddr) -> u32 {
        self.lock().per_ip.get(&ip).copied().unwrap_or(0)
    }

    /// Admits a just-accepted connection on `listener` from `ip`: waits while the listener
    /// or the broker is at its connection limit or its creation rate is exceeded (as
    /// Kafka's acceptor blocks), then counts it, or refuses it when its address is at its
    /// limit. `shutdown` ends the wait.
    pub async fn admit(
        self: &Arc<Self>,
        listener: &Arc<str>,
        ip: IpAddr,
        shutdown: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Result<ConnPermit, Refused> {
        let throttle = self.lock().record_creation(listener, now_ms());
        let ready_at = Instant::now() + Duration::from_millis(throttle);
        if throttle > 0 {
            tracing::debug!(%listener, throttle_ms = throttle, "connection creation rate exceeded; delaying accept");
        }
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            {
                let mut st = self.lock();
                if Instant::now() >= ready_at && st.slot_available(listener) {
                    let now = now_ms();
                    let throttle_ms = st.limits.ip_rates.record(ip, st.limits.window, now);
                    if throttle_ms > 0 {
                        // Not accepted: it leaves the broker and listener rates too.
                        if !st.protected(listener) {
                            st.broker_rate.record(-1.0, now);
                        }
                        if let Some(r) = st.listener_rates.get_mut(listener) {
                            r.record(-1.0, now);
                        }
                        return Err(Refused::Throttled { ip, throttle_ms });
                    }
                    let count = st.per_ip.get(&ip).copied().unwrap_or(0);
                    let max = st
                        .limits
                        .per_ip_overrides
                        .get(&ip)
                        .copied()
                        .unwrap_or(st.limits.max_per_ip);
                    if count >= max {
                        return Err(Refused::TooManyConnections { ip, max });
                    }
                    *st.per_ip.entry(ip).or_insert(0) += 1;
                    *st.per_listener.entry(listener.clone()).or_insert(0) += 1;
                    st.total += 1;
                    let id = st.next_id;
                    st.next_id += 1;
                    let activity = Arc::new(Activity::default());
                    activity.touch();
                    st.conns.insert(
                        id,
                        Tracked {
                            listener: listener.clone(),
                            activity: activity.clone(),
                        },
                    );
                    if st.protected(listener) && st.total > st.limits.max_connections {
                        st.evict_for_protected();
                    }
                    return Ok(ConnPermit {
                        quotas: self.clone(),
                        id,
                        ip,
                        listener: listener.clone(),
                        activity,
                    });
                }
            }
            let wait = ready_at.saturating_duration_since(Instant::now());
            tokio::select! {
                _ = &mut freed => {}
                _ = tokio::time::sleep(wait), if !wait.is_zero() => {}
                r = shutdown.wait_for(|v| *v) => {
                    let _ = r;
                    return Err(Refused::ShuttingDown);
                }
            }
        }
    }

    fn release(&self, id: u64, ip: IpAddr, listener: &str) {
        {
            let mut st = self.lock();
            st.conns.remove(&id);
            if let Some(c) = st.per_ip.get_mut(&ip) {
                *c -= 1;
                if *c == 0 {
                    st.per_ip.remove(&ip);
                }
            }
            if let Some(c) = st.per_listener.get_mut(listener) {
                *c = c.saturating_sub(1);
            }
            st.total = st.total.saturating_sub(1);
        }
        self.freed.notify_waiters();
    }
}

/// A counted connection; dropping it frees its slot.
#[derive(Debug)]
pub struct ConnPermit {
    quotas: Arc<ConnectionQuotas>,
    id: u64,
    ip: IpAddr,
    listener: Arc<str>,
    activity: Arc<Activity>,
}

impl ConnPermit {
    pub fn activity(&self) -> Arc<Activity> {
        self.activity.clone()
    }
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        self.quotas.release(self.id, self.ip, &self.listener);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
mod tests {
    use super::*;
    use tokio::sync::watch;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn per_ip_limit_refuses_and_frees() {
        let q = ConnectionQuotas::new(ConnectionLimits {
            max_per_ip: 2,
            per_ip_overrides: HashMap::from([(ip("10.0.0.9"), 0)]),
            ..Default::default()
        });
        let (_tx, mut rx) = watch::channel(false);
        let l: Arc<str> = Arc::from("PLAINTEXT");
        let a = q.admit(&l, ip("10.0.0.1"), &mut rx).await.unwrap();
        let _b = q.admit(&l, ip("10.0.0.1"), &mut rx).await.unwrap();
        assert_eq!(
            q.admit(&l, ip("10.0.0.1"), &mut rx).await.unwrap_err(),
            Refused::TooManyConnections {
                ip: ip("10.0.0.1"),
                max: 2
            }
        );
        assert!(q.admit(&l, ip("10.0.0.2"), &mut rx).await.is_ok());
        assert!(q.admit(&l, ip("10.0.0.9"), &mut rx).await.is_err());
        drop(a);
        assert_eq!(q.count(ip("10.0.0.1")), 1);
        assert!(q.admit(&l, ip("10.0.0.1"), &mut rx).await.is_ok());
    }

    #[tokio::test]
    async fn broker_limit_waits_for_a_slot() {
        let q = ConnectionQuotas::new(ConnectionLimits {
            max_connections: 1,
            ..Default::default()
        });
        let (_tx, mut rx) = watch::channel(false);
        let l: Arc<str> = Arc::from("PLAINTEXT");
        let first = q.admit(&l, ip("10.0.0.1"), &mut rx).await.unwrap();
        let q2 = q.clone();
        let l2 = l.clone();
        let (_tx2, mut rx2) = watch::channel(false);
        let waiter =
            tokio::spawn(async move { q2.admit(&l2, ip("10.0.0.2"), &mut rx2).await.is_ok() });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            !waiter.is_finished(),
            "second connection must wait for a slot"
        );
        drop(first);
        assert!(tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap());
    }

    /// A dynamic `max.connections` raise admits a waiting connection at once.
    #[tokio::test]
    async fn reconfigure_wakes_waiting_acceptor() {
        let q = ConnectionQuotas::new(ConnectionLimits {
            max_connections: 1,
            ..Default::default()
        });
        let (_tx, mut rx) = watch::channel(false);
        let l: Arc<str> = Arc::from("PLAINTEXT");
        let _first = q.admit(&l, ip("10.0.0.1"), &mut rx).await.unwrap();
        let q2 = q.clone();
        let l2 = l.clone();
        let (_tx2, mut rx2) = watch::channel(false);
        let waiter =
            tokio::spawn(async move { q2.admit(&l2, ip("10.0.0.2"), &mut rx2).await.is_ok() });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "at the limit");
        q.reconfigure(ConnectionLimits {
            max_connections: 2,
            ..Default::default()
        });
        assert!(tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap());
    }

    #[tokio::test]
    async fn protected_listener_evicts_least_recently_active() {
        let q = ConnectionQuotas::new(ConnectionLimits {
            max_connections: 2,
            inter_broker_listener: Some("INTERNAL".into()),
            ..Default::default()
        });
        let (_tx, mut rx) = watch::channel(false);
        let ext: Arc<str> = Arc::from("EXTERNAL");
        let int: Arc<str> = Arc::from("INTERNAL");
        let old = q.admit(&ext, ip("10.0.0.1"), &mut rx).await.unwrap();
        let recent = q.admit(&ext, ip("10.0.0.2"), &mut rx).await.unwrap();
        old.activity().last_active_ms.store(1, Ordering::Relaxed);
        let _ib = tokio::time::timeout(
            Duration::from_secs(1),
            q.admit(&int, ip("10.0.0.3"), &mut rx),
        )
        .await
        .expect("the inter-broker listener is admitted beyond max.connections")
        .unwrap();
        tokio::time::timeout(Duration::from_secs(1), old.activity().closed())
            .await
            .expect("the least recently active connection is asked to close");
        assert!(!recent.activity().closing.load(Ordering::Relaxed));
    }

    #[tokio::test]
    async fn creation_rate_delays_accepts() {
        let q = ConnectionQuotas::new(ConnectionLimits {
            max_creation_rate: 5,
            window: WindowConfig::new(2, 1),
            ..Default::default()
        });
        let (_tx, mut rx) = watch::channel(false);
        let l: Arc<str> = Arc::from("PLAINTEXT");
        let start = Instant::now();
        let mut permits = Vec::new();
        for _ in 0..20 {
            permits.push(q.admit(&l, ip("10.0.0.1"), &mut rx).await.unwrap());
        }
        // 20 connections at 5/s over a 2 s window cannot all be accepted at once.
        assert!(
            start.elapsed() >= Duration::from_millis(1000),
            "{:?}",
            start.elapsed()
        );
    }
}
