//! Who the client is, network-wise. Directly connected clients are their
//! socket's address. Behind a reverse proxy or load balancer that the
//! operator lists as trusted (`proxy.trusted`), the client is the rightmost
//! address in `X-Forwarded-For` that is not itself a trusted proxy — the
//! first hop nobody trusted could have forged. Throttling, lockout audit
//! and trusted-IP skipping all use this address.

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The resolved client address, as a request extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(pub Arc<Vec<IpNet>>);

impl TrustedProxies {
    /// Whether `ip` is one of the operator's reverse proxies.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client behind `peer`, given the request's `X-Forwarded-For` values.
    pub fn client(&self, peer: IpAddr, forwarded_for: &[&str]) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let hops: Vec<IpAddr> = forwarded_for
            .iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .map(|h| h.parse::<IpAddr>().ok())
            .collect::<Option<Vec<_>>>()
            // A garbled header from a trusted proxy: fall back to the proxy.
            .unwrap_or_default();
        hops.into_iter()
            .rev()
            .find(|ip| !self.trusts(*ip))
            .unwrap_or(peer)
    }
}

pub async fn resolve(
    State(proxies): State<TrustedProxies>,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let client = proxies.client(peer, &forwarded);
    req.extensions_mut().insert(ClientIp(client));
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peers_are_themselves() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client(ip("192.0.2.9"), &["203.0.113.7"]),
            ip("192.0.2.9")
        );
    }

    #[test]
    fn trusted_proxies_pass_the_client_on() {
        let p = TrustedProxies(Arc::new(vec!["10.0.0.0/8".parse().unwrap()]));
        assert_eq!(
            p.client(ip("10.0.0.2"), &["203.0.113.7"]),
            ip("203.0.113.7")
        );
        // A client-forged entry on the left is ignored; the rightmost untrusted wins.
        assert_eq!(
            p.client(ip("10.0.0.2"), &["1.2.3.4, 203.0.113.7, 10.0.0.5"]),
            ip("203.0.113.7")
        );
        assert_eq!(
            p.client(ip("10.0.0.2"), &["1.2.3.4", "203.0.113.7"]),
            ip("203.0.113.7")
        );
        // No header, or garbage: the proxy itself.
        assert_eq!(p.client(ip("10.0.0.2"), &[]), ip("10.0.0.2"));
        assert_eq!(p.client(ip("10.0.0.2"), &["not-an-ip"]), ip("10.0.0.2"));
        assert_eq!(p.client(ip("10.0.0.2"), &["10.0.0.3"]), ip("10.0.0.2"));
    }
}
