//! Where callbacks may go: public unicast addresses only (unless the service allows private
//! targets), checked at submission, at connection by a resolver that drops the others, and
//! for literal addresses (which never reach the resolver) before each delivery.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

/// Whether `ip` is a public unicast address: not loopback, private, link-local, shared
/// (CGNAT), documentation, benchmarking, multicast, reserved or unspecified.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let s = v6.segments();
            // NAT64 (64:ff9b::/96) reaches the IPv4 address in its last 32 bits.
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return is_public_v4(Ipv4Addr::from(((s[6] as u32) << 16) | s[7] as u32));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // Tunnels and translators that reach IPv4 (or local networks) through an
                // address of their own: 6to4 (2002::/16), Teredo (2001::/32), local-use NAT64
                // (64:ff9b:1::/48); and benchmarking (2001:2::/48), ORCHID (2001:10::/28,
                // 2001:20::/28).
                || s[0] == 0x2002
                || (s[0] == 0x2001 && s[1] == 0)
                || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1)
                || (s[0] == 0x2001 && s[1] == 2 && s[2] == 0)
                || (s[0] == 0x2001 && (s[1] & 0xffe0) == 0x0020)
                || (s[0] == 0x2001 && (s[1] & 0xfff0) == 0x0010)
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || s[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible (deprecated)
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_unspecified()
        || ip.is_multicast()
        || o[0] == 0 // "this network"
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // shared address space (CGNAT)
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking
        || o[0] >= 240) // reserved
}

/// Why a callback URL is refused.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// Checks a callback URL at submission: http(s), a host, and (unless private targets are
/// allowed) only public addresses.
pub async fn check_target(url: &str, allow_private: bool) -> std::result::Result<Url, Refused> {
    let parsed = Url::parse(url).map_err(|e| Refused(format!("callback_url {url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Refused(format!(
            "callback_url {url:?}: only http and https are allowed"
        )));
    }
    let host = match parsed.host() {
        Some(h) => h.to_owned(),
        None => return Err(Refused(format!("callback_url {url:?} has no host"))),
    };
    if allow_private {
        return Ok(parsed);
    }
    let port = parsed.port_or_known_default().unwrap_or(80);
    let addrs: Vec<IpAddr> = match host {
        url::Host::Ipv4(ip) => vec![IpAddr::V4(ip)],
        url::Host::Ipv6(ip) => vec![IpAddr::V6(ip)],
        url::Host::Domain(name) => {
            let lookup = tokio::net::lookup_host((name.as_str(), port));
            match tokio::time::timeout(Duration::from_secs(5), lookup).await {
                Ok(Ok(a)) => a.map(|a| a.ip()).collect(),
                _ => {
                    return Err(Refused(format!(
                        "callback_url {url:?}: {name} does not resolve"
                    )))
                }
            }
        }
    };
    if let Some(ip) = addrs.iter().find(|ip| !is_public(**ip)) {
        return Err(Refused(format!(
            "callback_url {url:?} reaches {ip}, a loopback or private address \
             (the server refuses those unless run with --allow-private-callbacks)"
        )));
    }
    Ok(parsed)
}

/// A resolver that drops non-public addresses, so a delivery never connects to one.
pub(super) struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = all.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                let e: Box<dyn std::error::Error + Send + Sync> =
                    format!("{host} resolves to no public address").into();
                return Err(e);
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

pub(super) fn check_literal(url: &str) -> std::result::Result<(), Refused> {
    let parsed = Url::parse(url).map_err(|e| Refused(e.to_string()))?;
    let ip = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        _ => return Ok(()),
    };
    if is_public(ip) {
        Ok(())
    } else {
        Err(Refused(format!("{ip} is not a public address")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_addresses() {
        let public = [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ];
        let private = [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.0.8",
            "198.18.0.1",
            "192.0.2.1",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::7f00:1",
            "::127.0.0.1",
            "2002:7f00:1::",
            "2002:808:808::1",
            "64:ff9b:1::1",
            "64:ff9b:1::808:808",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:2::1",
            "2001:10::1",
            "2001:20::1",
        ];
        for a in public {
            assert!(is_public(a.parse().unwrap()), "{a} is public");
        }
        for a in private {
            assert!(!is_public(a.parse().unwrap()), "{a} is not public");
        }
        // The edges of the ranges.
        assert!(is_public("172.32.0.1".parse().unwrap()));
        assert!(is_public("100.128.0.1".parse().unwrap()));
        assert!(is_public("198.20.0.1".parse().unwrap()));
    }

    #[tokio::test]
    async fn targets() {
        for bad in [
            "http://127.0.0.1:9/x",
            "http://localhost:9/x",
            "http://[::1]/x",
            "http://169.254.169.254/latest/meta-data",
            "http://10.0.0.1/",
            "ftp://example.com/",
            "not a url",
            "http://",
            "mailto:ops@example.com",
        ] {
            assert!(check_target(bad, false).await.is_err(), "{bad} refused");
        }
        assert!(check_target("http://8.8.8.8/hook", false).await.is_ok());
        assert!(check_target("http://127.0.0.1:9/x", true).await.is_ok());
        assert!(check_target("ftp://127.0.0.1/", true).await.is_err());
    }
}
