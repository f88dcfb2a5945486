//! SSRF guard: webhook URLs are merchant input, so payfac must not become a proxy into its own
//! network.
//!
//! Two checks, both at delivery time: [`NetworkPolicy::check_url`] refuses a non-https URL and a
//! literal internal IP before the request is built, and [`GuardedResolver`] (the HTTP client's
//! only DNS resolver) drops every internal address a hostname resolves to. Because the filter sits
//! in the resolver, the address checked is the address connected to: a hostname that answered
//! with a public address when the endpoint was registered and a private one now (DNS rebinding)
//! is still refused. Redirects are never followed and proxies are disabled, so nothing else
//! chooses where a request goes.

use crate::WebhookError;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use url::{Host, Url};

/// Longest endpoint URL accepted.
const MAX_URL_LEN: usize = 2048;

/// What endpoint URLs may point at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetworkPolicy {
    /// Allow `http://` (development only; `PAYFAC_WEBHOOK_ALLOW_HTTP=true`).
    pub allow_http: bool,
    /// Allow loopback, private and other internal addresses (development only;
    /// `PAYFAC_WEBHOOK_ALLOW_PRIVATE=true`).
    pub allow_private: bool,
}

impl NetworkPolicy {
    /// The production policy: https only, public addresses only.
    pub const STRICT: NetworkPolicy = NetworkPolicy {
        allow_http: false,
        allow_private: false,
    };

    /// Parses and checks an endpoint URL as a merchant submits it (create or update). The same
    /// checks run again at every delivery; this one gives the merchant an early, clear error.
    pub fn parse_endpoint_url(&self, input: &str) -> Result<Url, WebhookError> {
        if input.len() > MAX_URL_LEN {
            return Err(WebhookError::UrlRefused(
                "URL longer than 2048 bytes".into(),
            ));
        }
        let url = Url::parse(input.trim())
            .map_err(|e| WebhookError::UrlRefused(format!("not a URL: {e}")))?;
        self.check_url(&url)?;
        Ok(url)
    }

    /// Checks scheme, host and (for a literal IP) the address. Hostnames are checked later,
    /// on every connection, by [`GuardedResolver`].
    pub fn check_url(&self, url: &Url) -> Result<(), WebhookError> {
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            "http" => {
                return Err(WebhookError::UrlRefused(
                    "only https URLs are allowed".into(),
                ));
            }
            other => {
                return Err(WebhookError::UrlRefused(format!(
                    "scheme `{other}` is not http(s)"
                )));
            }
        }
        match url.host() {
            None => Err(WebhookError::UrlRefused("URL has no host".into())),
            Some(Host::Ipv4(v4)) => self.check_ip(IpAddr::V4(v4)),
            Some(Host::Ipv6(v6)) => self.check_ip(IpAddr::V6(v6)),
            Some(Host::Domain(_)) => Ok(()),
        }
    }

    /// Refuses an internal address unless private addresses are allowed.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), WebhookError> {
        match forbidden_reason(ip) {
            Some(reason) if !self.allow_private => {
                Err(WebhookError::ForbiddenAddress { addr: ip, reason })
            }
            _ => Ok(()),
        }
    }
}

/// Why an address is internal, or `None` for a public unicast address.
pub fn forbidden_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

/// IPv4 ranges no webhook may reach: (network, prefix length, reason).
const FORBIDDEN_V4: [([u8; 4], u8, &str); 11] = [
    ([0, 0, 0, 0], 8, "unspecified"),
    ([10, 0, 0, 0], 8, "private"),
    ([100, 64, 0, 0], 10, "carrier-grade NAT"),
    ([127, 0, 0, 0], 8, "loopback"),
    ([169, 254, 0, 0], 16, "link-local"),
    ([172, 16, 0, 0], 12, "private"),
    ([192, 0, 0, 0], 24, "IETF protocol assignments"),
    ([192, 168, 0, 0], 16, "private"),
    ([198, 18, 0, 0], 15, "benchmarking"),
    ([224, 0, 0, 0], 4, "multicast"),
    ([240, 0, 0, 0], 4, "reserved or broadcast"),
];

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let bits = u32::from(ip);
    FORBIDDEN_V4.iter().find_map(|(net, len, reason)| {
        let mask = u32::MAX.checked_shl(32 - u32::from(*len)).unwrap_or(0);
        (bits & mask == u32::from_be_bytes(*net) & mask).then_some(*reason)
    })
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let seg = ip.segments();
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    // Forms that carry an IPv4 address inside: judge the IPv4 address.
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    if seg[..6] == [0, 0, 0, 0, 0, 0] {
        // Deprecated IPv4-compatible ::a.b.c.d.
        return forbidden_v4(embedded(seg[6], seg[7])).or(Some("IPv4-compatible"));
    }
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // NAT64 well-known prefix: the gateway would connect to the embedded IPv4 address.
        return forbidden_v4(embedded(seg[6], seg[7]));
    }
    if seg[0] == 0x2002 {
        // 6to4 relays to the embedded IPv4 address.
        return forbidden_v4(embedded(seg[1], seg[2]));
    }
    match seg[0] {
        s if s & 0xfe00 == 0xfc00 => Some("unique local"),
        s if s & 0xffc0 == 0xfe80 => Some("link-local"),
        s if s & 0xffc0 == 0xfec0 => Some("site-local"),
        s if s & 0xff00 == 0xff00 => Some("multicast"),
        _ => None,
    }
}

/// The HTTP client's DNS resolver: resolves with the system resolver, then drops every address
/// the policy refuses. A name with no address left fails to resolve, so no connection is made.
#[derive(Clone, Copy, Debug)]
pub struct GuardedResolver {
    policy: NetworkPolicy,
}

impl GuardedResolver {
    /// A resolver enforcing `policy`.
    pub fn new(policy: NetworkPolicy) -> Self {
        Self { policy }
    }

    /// Resolves `host` and keeps the addresses the policy allows.
    pub async fn resolve_allowed(&self, host: &str) -> Result<Vec<SocketAddr>, WebhookError> {
        let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
            .await
            .map_err(|e| WebhookError::UrlRefused(format!("cannot resolve `{host}`: {e}")))?
            .collect();
        let mut refused = None;
        let allowed: Vec<SocketAddr> = resolved
            .into_iter()
            .filter(|a| match self.policy.check_ip(a.ip()) {
                Ok(()) => true,
                Err(e) => {
                    refused.get_or_insert(e);
                    false
                }
            })
            .collect();
        match (allowed.is_empty(), refused) {
            (true, Some(e)) => Err(e),
            (true, None) => Err(WebhookError::UrlRefused(format!("`{host}` has no address"))),
            (false, _) => Ok(allowed),
        }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let this = *self;
        Box::pin(async move {
            let addrs = this.resolve_allowed(name.as_str()).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn internal_addresses_are_forbidden() {
        for (addr, reason) in [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("0.0.0.0", "unspecified"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "carrier-grade NAT"),
            ("100.127.255.255", "carrier-grade NAT"),
            ("169.254.169.254", "link-local"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "reserved or broadcast"),
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("fc00::1", "unique local"),
            ("fd12:3456::1", "unique local"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.0.0.1", "private"),
            ("::ffff:169.254.169.254", "link-local"),
            ("64:ff9b::a9fe:a9fe", "link-local"),
            ("2002:7f00:1::", "loopback"),
            ("::7f00:1", "loopback"),
        ] {
            assert_eq!(forbidden_reason(ip(addr)), Some(reason), "{addr}");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for addr in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "192.169.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "2002:808:808::",
        ] {
            assert_eq!(forbidden_reason(ip(addr)), None, "{addr}");
        }
    }

    #[test]
    fn urls_must_be_https_unless_http_is_allowed() {
        let strict = NetworkPolicy::STRICT;
        let url = |s: &str| Url::parse(s).unwrap();
        assert!(
            strict
                .check_url(&url("https://hooks.example.com/x"))
                .is_ok()
        );
        assert!(
            strict
                .check_url(&url("http://hooks.example.com/x"))
                .is_err()
        );
        assert!(strict.check_url(&url("ftp://hooks.example.com/x")).is_err());
        let dev = NetworkPolicy {
            allow_http: true,
            allow_private: false,
        };
        assert!(dev.check_url(&url("http://hooks.example.com/x")).is_ok());
        assert!(dev.check_url(&url("file:///etc/passwd")).is_err());
    }

    #[test]
    fn literal_internal_ips_are_refused_in_every_spelling() {
        let strict = NetworkPolicy::STRICT;
        for u in [
            "https://127.0.0.1/",
            "https://[::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://0x7f.1/",
            "https://2130706433/",
            "https://10.0.0.1:8443/hook",
            "https://169.254.169.254/latest/meta-data",
        ] {
            let parsed = Url::parse(u).unwrap();
            assert!(
                matches!(
                    strict.check_url(&parsed),
                    Err(WebhookError::ForbiddenAddress { .. })
                ),
                "{u}"
            );
        }
        let open = NetworkPolicy {
            allow_http: false,
            allow_private: true,
        };
        assert!(
            open.check_url(&Url::parse("https://127.0.0.1/").unwrap())
                .is_ok()
        );
    }

    #[test]
    fn submitted_urls_are_parsed_and_checked() {
        let strict = NetworkPolicy::STRICT;
        assert!(
            strict
                .parse_endpoint_url(" https://hooks.example.com/payfac ")
                .is_ok()
        );
        assert!(strict.parse_endpoint_url("not a url").is_err());
        assert!(strict.parse_endpoint_url("https://10.0.0.1/").is_err());
        let long = format!("https://hooks.example.com/{}", "a".repeat(2048));
        assert!(strict.parse_endpoint_url(&long).is_err());
    }

    #[tokio::test]
    async fn the_resolver_refuses_a_name_that_resolves_to_loopback() {
        let strict = GuardedResolver::new(NetworkPolicy::STRICT);
        let err = strict.resolve_allowed("localhost").await.unwrap_err();
        assert!(
            matches!(err, WebhookError::ForbiddenAddress { .. }),
            "{err}"
        );
        let open = GuardedResolver::new(NetworkPolicy {
            allow_http: true,
            allow_private: true,
        });
        let addrs = open.resolve_allowed("localhost").await.unwrap();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()));
    }
}
