//! The address of the client: the TCP peer, or, when the peer is a trusted reverse proxy, the
//! address that proxy reports in `X-Forwarded-For`.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use std::sync::Arc;

use axum::extract::FromRef;

use crate::config::Settings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S> FromRequestParts<S> for ClientIp
where
    S: Send + Sync,
    Arc<Settings>: FromRef<S>,
{
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let forwarded = parts
            .headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok());
        Ok(Self(client_ip(
            peer,
            forwarded,
            &Arc::<Settings>::from_ref(state).trusted_proxies,
        )))
    }
}

/// Walks `X-Forwarded-For` from the right, past trusted proxies, to the first address that
/// is not one; a header from an untrusted peer is ignored, since anyone can write it.
fn client_ip(peer: Option<IpAddr>, forwarded: Option<&str>, trusted: &[IpAddr]) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let mut client = peer;
    for hop in forwarded.unwrap_or_default().rsplit(',') {
        let Ok(address) = hop.trim().parse::<IpAddr>() else {
            break;
        };
        client = address;
        if !trusted.contains(&address) {
            break;
        }
    }
    Some(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn the_peer_is_the_client_unless_it_is_a_trusted_proxy() {
        let proxy = ip("10.0.0.1");
        assert_eq!(
            client_ip(Some(ip("203.0.113.9")), Some("1.2.3.4"), &[proxy]),
            Some(ip("203.0.113.9"))
        );
        assert_eq!(
            client_ip(Some(proxy), Some("1.2.3.4, 198.51.100.7"), &[proxy]),
            Some(ip("198.51.100.7"))
        );
        assert_eq!(client_ip(Some(proxy), None, &[proxy]), Some(proxy));
        assert_eq!(client_ip(None, Some("1.2.3.4"), &[proxy]), None);
    }

    #[test]
    fn trusted_hops_are_skipped_from_the_right() {
        let (outer, inner) = (ip("10.0.0.1"), ip("10.0.0.2"));
        assert_eq!(
            client_ip(
                Some(outer),
                Some("6.6.6.6, 198.51.100.7, 10.0.0.2"),
                &[outer, inner]
            ),
            Some(ip("198.51.100.7"))
        );
    }
}
