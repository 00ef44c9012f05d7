//! Listeners: one accept loop per configured listener, a connection cap, and a
//! graceful drain on shutdown (stop accepting, let each connection finish the
//! request it is processing, then close). On SSL and SASL_SSL listeners each accepted
//! socket first completes its TLS handshake (in the connection's own task, bounded by
//! [`TLS_HANDSHAKE_TIMEOUT`]); a failed handshake closes that socket only.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use samsa_common::config::Endpoint;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::connection::{self, ConnInfo, ConnLimits, RequestHandler, Transport};
use crate::quota::connections::{ConnectionLimits, ConnectionQuotas, Refused};
use crate::security::ListenerSecurity;

/// How long a client may take to complete the TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// A bound listener socket with its listener name.
#[derive(Debug)]
pub struct BoundListener {
    pub name: Arc<str>,
    pub listener: TcpListener,
    /// TLS and SASL of this listener; `None` = PLAINTEXT.
    pub security: Option<Arc<ListenerSecurity>>,
}

impl BoundListener {
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// Binds every endpoint of `listeners` (an empty host means all interfaces, like
/// Kafka). Port 0 binds an ephemeral port; read it back with `local_addr`.
pub async fn bind(listeners: &[Endpoint]) -> io::Result<Vec<BoundListener>> {
    let mut out = Vec::with_capacity(listeners.len());
    for ep in listeners {
        let host = if ep.host.is_empty() {
            "0.0.0.0"
        } else {
            ep.host.as_str()
        };
        let listener = TcpListener::bind((host, ep.port)).await.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("binding listener {} ({host}:{}): {e}", ep.name, ep.port),
            )
        })?;
        out.push(BoundListener {
            name: Arc::from(ep.name.as_str()),
            listener,
            security: None,
        });
    }
    Ok(out)
}

/// Server-wide limits.
#[derive(Clone, Debug)]
pub struct ServerLimits {
    pub conn: ConnLimits,
    /// `max.connections`, per-IP and per-listener limits, creation rates.
    pub connections: ConnectionLimits,
    /// Quotas built by the caller (so dynamic broker configs can reconfigure them);
    /// `None` = built here from `connections`.
    pub quotas: Option<Arc<ConnectionQuotas>>,
    /// How long a drain waits for connections to finish before dropping them.
    pub drain_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            conn: ConnLimits::default(),
            connections: ConnectionLimits::default(),
            quotas: None,
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// Serves `listeners` until `shutdown` becomes true, then drains connections.
pub async fn run<H: RequestHandler>(
    listeners: Vec<BoundListener>,
    handler: Arc<H>,
    limits: ServerLimits,
    shutdown: watch::Receiver<bool>,
) {
    let quotas = limits
        .quotas
        .clone()
        .unwrap_or_else(|| ConnectionQuotas::new(limits.connections.clone()));
    let mut accept_loops = JoinSet::new();
    for l in listeners {
        let handler = handler.clone();
        let quotas = quotas.clone();
        let shutdown = shutdown.clone();
        let limits = limits.clone();
        accept_loops.spawn(accept_loop(l, handler, limits, quotas, shutdown));
    }
    while accept_loops.join_next().await.is_some() {}
}

/// The TLS handshake (SSL, SASL_SSL) and the certificate principal; `None` closes the
/// socket (the reason is logged at INFO, as Kafka logs failed authentications).
async fn secure(
    stream: tokio::net::TcpStream,
    mut info: ConnInfo,
    security: Option<&ListenerSecurity>,
) -> Option<(Transport, ConnInfo)> {
    let Some(acceptor) = security.and_then(|s| s.tls.as_ref()) else {
        return Some((Transport::Plain(stream), info));
    };
    let tls = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            info!(peer = %info.peer, listener = %info.listener,
                  "Failed authentication with {} (SSL handshake failed): {e}", info.peer.ip());
            return None;
        }
        Err(_) => {
            info!(peer = %info.peer, listener = %info.listener,
                  "Failed authentication with {} (SSL handshake timed out)", info.peer.ip());
            return None;
        }
    };
    // SSL listeners take the principal from the client certificate; SASL_SSL ones from
    // the SASL login that follows.
    if let Some(sec) = security.filter(|s| s.sasl.is_none()) {
        if let Some(cert) = tls.get_ref().1.peer_certificates().and_then(|c| c.first()) {
            let Some(dn) = crate::security::principal::subject_rfc2253(cert) else {
                info!(peer = %info.peer, "Failed authentication: unreadable client certificate subject");
                return None;
            };
            match sec.mapper.name(&dn) {
                Ok(name) => info.principal = Arc::from(format!("User:{name}")),
                Err(e) => {
                    info!(peer = %info.peer, "Failed authentication: {e}");
                    return None;
                }
            }
        }
    }
    Some((Transport::Tls(Box::new(tls)), info))
}

async fn accept_loop<H: RequestHandler>(
    l: BoundListener,
    handler: Arc<H>,
    limits: ServerLimits,
    quotas: Arc<ConnectionQuotas>,
    mut shutdown: watch::Receiver<bool>,
) {
    let local = l.local_addr().ok();
    info!(listener = %l.name, addr = ?local, "accepting connections");
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = l.listener.accept() => a,
            _ = shutdown.wait_for(|v| *v) => break,
            // Reap finished connections so the set does not grow without bound.
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        match accepted {
            Ok((stream, peer)) => {
                // Kafka's acceptor blocks here while the listener is at its limits.
                let permit = match quotas.admit(&l.name, peer.ip(), &mut shutdown).await {
                    Ok(p) => p,
                    Err(Refused::TooManyConnections { ip, max }) => {
                        info!(listener = %l.name,
                              "Rejected connection from {ip}, address already has the configured \
                               maximum of {max} connections.");
                        continue;
                    }
                    Err(Refused::Throttled { ip, throttle_ms }) => {
                        tracing::debug!(listener = %l.name, "Delaying closing of connection from {ip} for {throttle_ms} ms");
                        let mut shutdown = shutdown.clone();
                        conns.spawn(async move {
                            tokio::select! {
                                _ = tokio::time::sleep(Duration::from_millis(throttle_ms)) => {}
                                _ = shutdown.wait_for(|v| *v) => {}
                            }
                            drop(stream);
                        });
                        continue;
                    }
                    Err(Refused::ShuttingDown) => break,
                };
                let mut info =
                    ConnInfo::anonymous(l.name.clone(), peer, stream.local_addr().unwrap_or(peer));
                if let Some(s) = &l.security {
                    info.protocol = s.protocol;
                }
                let handler = handler.clone();
                let shutdown = shutdown.clone();
                let security = l.security.clone();
                conns.spawn(async move {
                    if let Some((transport, info)) = secure(stream, info, security.as_deref()).await
                    {
                        let sasl = security.and_then(|s| s.sasl.clone());
                        let activity = permit.activity();
                        connection::serve(
                            transport,
                            info,
                            handler,
                            limits.conn,
                            sasl,
                            shutdown,
                            activity,
                        )
                        .await;
                    }
                    drop(permit);
                });
            }
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                warn!(listener = %l.name, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    drop(l);
    // Drain: every connection saw the shutdown flag; give them time to finish.
    let drained = tokio::time::timeout(limits.drain_timeout, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!("connections still open after drain timeout; closing them");
        conns.abort_all();
    }
}
