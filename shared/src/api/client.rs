//! Where a request comes from: the address the API counts wrong keys by.
//!
//! On a server it is the connection's peer. On AWS Lambda it is the `sourceIp` API Gateway
//! reports (the function sees no socket). When that address is a trusted proxy
//! (`TRUSTED_PROXY_CIDRS`), the client is the last address in `X-Forwarded-For` that is
//! not one: each proxy appends the address it was called from, so only the entries our
//! own proxies added can be believed, and anything to their left may be made up.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request};

use crate::outbound::Cidr;

/// The client's address, or `None` when the request carries no peer (a router called
/// directly, as tests do).
pub fn address(request: &Request, trusted_proxies: &[Cidr]) -> Option<IpAddr> {
    let peer = peer(request)?;
    if !is_trusted(peer, trusted_proxies) {
        return Some(peer);
    }
    let hops: Vec<&str> = request
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect();
    // From the right: past our own proxies to the first address they did not add. An entry
    // that is not an address ends the walk at the last proxy that forwarded it.
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(hop) = hop.trim().parse::<IpAddr>() else {
            break;
        };
        client = hop;
        if !is_trusted(hop, trusted_proxies) {
            break;
        }
    }
    Some(client)
}

fn is_trusted(address: IpAddr, trusted_proxies: &[Cidr]) -> bool {
    trusted_proxies.iter().any(|range| range.contains(address))
}

/// The address that handed the request to tickwork.
fn peer(request: &Request) -> Option<IpAddr> {
    if let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>() {
        return Some(peer.ip());
    }
    lambda_source(request)
}

/// API Gateway's `sourceIp`, on Lambda.
#[cfg(feature = "lambda")]
fn lambda_source(request: &Request) -> Option<IpAddr> {
    use lambda_http::request::RequestContext;

    let source = match request.extensions().get::<RequestContext>()? {
        RequestContext::ApiGatewayV2(context) => context.http.source_ip.as_deref(),
        RequestContext::ApiGatewayV1(context) => context.identity.source_ip.as_deref(),
        _ => None,
    };
    source?.trim().parse().ok()
}

#[cfg(not(feature = "lambda"))]
fn lambda_source(_request: &Request) -> Option<IpAddr> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    fn from(peer: &str, forwarded: &[&str]) -> Request {
        let mut request = Request::new(Body::empty());
        let peer: SocketAddr = format!("{peer}:4000").parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(peer));
        for value in forwarded {
            request
                .headers_mut()
                .append("x-forwarded-for", value.parse().unwrap());
        }
        request
    }

    #[test]
    fn the_peer_is_the_client_unless_it_is_a_trusted_proxy() {
        let proxies: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        // Not a proxy: what it says it forwards is not believed.
        assert_eq!(
            address(&from("203.0.113.9", &["198.51.100.1"]), &proxies),
            ip("203.0.113.9")
        );
        // A proxy: the last hop it did not add itself.
        assert_eq!(
            address(&from("10.1.2.3", &["198.51.100.1, 203.0.113.7"]), &proxies),
            ip("203.0.113.7")
        );
        assert_eq!(
            address(
                &from("10.1.2.3", &["198.51.100.1", "203.0.113.7, 10.9.9.9"]),
                &proxies
            ),
            ip("203.0.113.7")
        );
        // Only proxies forwarded it: the first of them; nothing forwarded: the proxy.
        assert_eq!(
            address(&from("10.1.2.3", &["10.4.4.4, 10.5.5.5"]), &proxies),
            ip("10.4.4.4")
        );
        assert_eq!(address(&from("10.1.2.3", &[]), &proxies), ip("10.1.2.3"));
        // An entry that is not an address: the proxy that forwarded it.
        assert_eq!(
            address(
                &from("10.1.2.3", &["198.51.100.1, nonsense, 10.5.5.5"]),
                &proxies
            ),
            ip("10.5.5.5")
        );
        // No trusted proxies: the header is never read.
        assert_eq!(
            address(&from("10.1.2.3", &["198.51.100.1"]), &[]),
            ip("10.1.2.3")
        );
        // No peer at all.
        assert_eq!(address(&Request::new(Body::empty()), &proxies), None);
    }
}
