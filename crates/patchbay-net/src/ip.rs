//! Address classification: which destinations a tenant may never reach. IPv6 forms that embed
//! an IPv4 address (mapped, compatible, NAT64, 6to4, Teredo) are judged by the IPv4 inside.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

const V4_DENIED: &[(&str, &str)] = &[
    ("0.0.0.0/8", "the unspecified 'this network' range"),
    ("10.0.0.0/8", "a private (RFC 1918) address"),
    ("100.64.0.0/10", "a carrier-grade NAT (RFC 6598) address"),
    ("127.0.0.0/8", "a loopback address"),
    (
        "169.254.0.0/16",
        "a link-local address (cloud metadata lives here)",
    ),
    ("172.16.0.0/12", "a private (RFC 1918) address"),
    ("192.0.0.0/24", "an IETF protocol assignment"),
    ("192.0.2.0/24", "a documentation address"),
    ("192.88.99.0/24", "a 6to4 relay anycast address"),
    ("192.168.0.0/16", "a private (RFC 1918) address"),
    ("198.18.0.0/15", "a benchmarking address"),
    ("198.51.100.0/24", "a documentation address"),
    ("203.0.113.0/24", "a documentation address"),
    ("224.0.0.0/4", "a multicast address"),
    ("240.0.0.0/4", "a reserved address"),
];

const V6_DENIED: &[(&str, &str)] = &[
    ("::/128", "the unspecified address"),
    ("::1/128", "a loopback address"),
    ("100::/64", "a discard-only address"),
    ("64:ff9b:1::/48", "a local-use NAT64 address"),
    ("2001:2::/48", "a benchmarking address"),
    ("2001:10::/28", "an ORCHID address"),
    ("2001:20::/28", "an ORCHID address"),
    ("2001:db8::/32", "a documentation address"),
    ("3fff::/20", "a documentation address"),
    ("5f00::/16", "a segment-routing address"),
    ("fc00::/7", "a unique-local (private) address"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a site-local address"),
    ("ff00::/8", "a multicast address"),
];

fn in_list_v4(ip: Ipv4Addr) -> Option<&'static str> {
    V4_DENIED.iter().find_map(|(net, why)| {
        let net: Ipv4Net = net
            .parse()
            .unwrap_or_else(|_| unreachable!("constant ranges parse"));
        net.contains(&ip).then_some(*why)
    })
}

fn in_list_v6(ip: Ipv6Addr) -> Option<&'static str> {
    V6_DENIED.iter().find_map(|(net, why)| {
        let net: Ipv6Net = net
            .parse()
            .unwrap_or_else(|_| unreachable!("constant ranges parse"));
        net.contains(&ip).then_some(*why)
    })
}

/// The IPv4 addresses an IPv6 address carries: mapped (`::ffff:a.b.c.d`), translated
/// (`::ffff:0:a.b.c.d`), compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`), 6to4 (`2002::/16`)
/// and Teredo (`2001::/32`: server and obfuscated client).
pub fn embedded_v4(ip: Ipv6Addr) -> Vec<Ipv4Addr> {
    let s = ip.segments();
    let o = ip.octets();
    let tail = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] => vec![tail],
        [0, 0, 0, 0, 0xffff, 0, _, _] => vec![tail],
        // IPv4-compatible (deprecated); :: and ::1 are judged as themselves.
        [0, 0, 0, 0, 0, 0, hi, _] if hi != 0 => vec![tail],
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => vec![tail],
        [0x2002, _, _, ..] => vec![Ipv4Addr::new(o[2], o[3], o[4], o[5])],
        [0x2001, 0, _, _, _, _, _, _] => vec![
            Ipv4Addr::new(o[4], o[5], o[6], o[7]),
            Ipv4Addr::new(!o[12], !o[13], !o[14], !o[15]),
        ],
        _ => vec![],
    }
}

/// Why `ip` may not be reached, or `None` when it is a public unicast address.
pub fn denied_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => in_list_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(why) = in_list_v6(v6) {
                return Some(why);
            }
            embedded_v4(v6).into_iter().find_map(in_list_v4)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denied(s: &str) -> bool {
        denied_reason(s.parse().unwrap()).is_some()
    }

    #[test]
    fn private_and_special_ranges_are_denied() {
        for ip in [
            "127.0.0.1",
            "127.255.255.254",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "169.254.169.254",
            "224.0.0.1",
            "255.255.255.255",
            "198.18.0.1",
            "::1",
            "::",
            "fd00:ec2::254",
            "fc00::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
        ] {
            assert!(denied(ip), "{ip} should be denied");
        }
    }

    #[test]
    fn embedded_ipv4_forms_are_judged_by_the_inner_address() {
        for ip in [
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::1",
            "2002:c0a8:101::",
            // Teredo with client 127.0.0.1 (obfuscated as 80ff:fffe).
            "2001:0:4136:e378:8000:63bf:80ff:fffe",
        ] {
            assert!(denied(ip), "{ip} should be denied");
        }
        for ip in ["::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"] {
            assert!(!denied(ip), "{ip} embeds a public address");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.216.34",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
        ] {
            assert!(!denied(ip), "{ip} is public");
        }
    }
}
