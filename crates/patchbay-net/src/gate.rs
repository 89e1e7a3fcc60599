//! Resolve, then check every address; the operator's allow-list is the only way around a
//! denied range.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use ipnet::IpNet;

use crate::NetError;
use crate::host::{Target, parse_host};
use crate::ip::{denied_reason, embedded_v4};

/// What the operator configured.
#[derive(Debug, Clone, Default)]
pub struct GateSettings {
    /// Ranges opened despite the deny-list (`--allow-net`).
    pub allow_net: Vec<IpNet>,
    /// DNS servers to ask instead of the system's (`--dns-server`).
    pub dns_servers: Vec<SocketAddr>,
}

/// Shared by everything that connects outward.
#[derive(Clone)]
pub struct Gate {
    allow: Arc<Vec<IpNet>>,
    resolver: TokioResolver,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("allow", &self.allow)
            .finish_non_exhaustive()
    }
}

impl Gate {
    pub fn new(settings: &GateSettings) -> Result<Self, String> {
        let provider = TokioRuntimeProvider::default();
        let mut builder = if settings.dns_servers.is_empty() {
            hickory_resolver::Resolver::builder_tokio()
                .map_err(|e| format!("system DNS configuration: {e}"))?
        } else {
            let servers = settings
                .dns_servers
                .iter()
                .map(|addr| {
                    let mut udp = ConnectionConfig::udp();
                    udp.port = addr.port();
                    let mut tcp = ConnectionConfig::tcp();
                    tcp.port = addr.port();
                    NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
                })
                .collect();
            hickory_resolver::Resolver::builder_with_config(
                ResolverConfig::from_name_servers(servers),
                provider,
            )
        };
        let opts = builder.options_mut();
        opts.use_hosts_file = ResolveHosts::Always;
        opts.timeout = Duration::from_secs(5);
        opts.attempts = 2;
        // Answers are checked per request; caching them would only hide a changed answer.
        opts.cache_size = 0;
        let resolver = builder.build().map_err(|e| format!("DNS resolver: {e}"))?;
        Ok(Self {
            allow: Arc::new(settings.allow_net.clone()),
            resolver,
        })
    }

    fn allowed(&self, ip: IpAddr) -> bool {
        let direct = self.allow.iter().any(|net| net.contains(&ip));
        let embedded = match ip {
            IpAddr::V6(v6) => embedded_v4(v6)
                .into_iter()
                .any(|v4| self.allow.iter().any(|n| n.contains(&IpAddr::V4(v4)))),
            IpAddr::V4(_) => false,
        };
        direct || embedded
    }

    /// `Ok` when `ip` may be reached.
    pub fn check(&self, host: &str, ip: IpAddr) -> Result<(), NetError> {
        if self.allowed(ip) {
            return Ok(());
        }
        match denied_reason(ip) {
            Some(reason) => Err(NetError::Blocked {
                host: host.to_owned(),
                addr: ip,
                reason,
            }),
            None => Ok(()),
        }
    }

    /// Every address `host` names, each checked; any denied address blocks the whole host, so
    /// that a name mixing public and private answers cannot be used to reach the private one.
    pub async fn resolve(&self, host: &str) -> Result<Vec<IpAddr>, NetError> {
        let ips =
            match parse_host(host)? {
                Target::Ip(ip) => vec![ip],
                Target::Name(name) => {
                    let fqdn = format!("{name}.");
                    let answer = self.resolver.lookup_ip(fqdn.as_str()).await.map_err(|e| {
                        NetError::Dns {
                            host: name.clone(),
                            message: e.to_string(),
                        }
                    })?;
                    let ips: Vec<IpAddr> = answer.iter().collect();
                    if ips.is_empty() {
                        return Err(NetError::Dns {
                            host: name,
                            message: "no addresses".into(),
                        });
                    }
                    ips
                }
            };
        for ip in &ips {
            self.check(host, *ip)?;
        }
        Ok(ips)
    }

    /// [`Gate::resolve`] with a port.
    pub async fn resolve_socket(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, NetError> {
        Ok(self
            .resolve(host)
            .await?
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect())
    }
}
