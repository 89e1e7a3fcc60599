//! Host normalisation: an IP literal in any spelling (decimal `2130706433`, hex `0x7f000001`,
//! octal `017700000001`, short `127.1`, bracketed or bare IPv6) becomes the address it names,
//! so that no spelling slips past the range check.

use std::net::IpAddr;

use crate::NetError;

/// A host as the gate sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Ip(IpAddr),
    /// A DNS name, lower-cased, without a trailing dot.
    Name(String),
}

pub fn parse_host(raw: &str) -> Result<Target, NetError> {
    let trimmed = raw.trim();
    if trimmed.is_empty()
        || trimmed.len() > 253
        || trimmed.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(NetError::InvalidHost(raw.chars().take(64).collect()));
    }
    let bare = trimmed
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(trimmed);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(Target::Ip(ip));
    }
    // The WHATWG host parser (what browsers and the `url` crate use) reads every numeric IPv4
    // spelling; a name that parses as one is an address.
    match url::Host::parse(trimmed) {
        Ok(url::Host::Ipv4(v4)) => Ok(Target::Ip(IpAddr::V4(v4))),
        Ok(url::Host::Ipv6(v6)) => Ok(Target::Ip(IpAddr::V6(v6))),
        Ok(url::Host::Domain(d)) => Ok(Target::Name(d.trim_end_matches('.').to_ascii_lowercase())),
        Err(_) => Err(NetError::InvalidHost(raw.chars().take(64).collect())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Target {
        Target::Ip(s.parse().unwrap())
    }

    #[test]
    fn numeric_spellings_are_addresses() {
        assert_eq!(parse_host("2130706433").unwrap(), ip("127.0.0.1"));
        assert_eq!(parse_host("0x7f000001").unwrap(), ip("127.0.0.1"));
        assert_eq!(parse_host("017700000001").unwrap(), ip("127.0.0.1"));
        assert_eq!(parse_host("0177.0.0.1").unwrap(), ip("127.0.0.1"));
        assert_eq!(parse_host("127.1").unwrap(), ip("127.0.0.1"));
        assert_eq!(parse_host("0").unwrap(), ip("0.0.0.0"));
        assert_eq!(parse_host("[::1]").unwrap(), ip("::1"));
        assert_eq!(
            parse_host("::ffff:127.0.0.1").unwrap(),
            ip("::ffff:127.0.0.1")
        );
        assert_eq!(parse_host("[fd00:ec2::254]").unwrap(), ip("fd00:ec2::254"));
    }

    #[test]
    fn names_are_normalised() {
        assert_eq!(
            parse_host("API.Example.COM.").unwrap(),
            Target::Name("api.example.com".into())
        );
        assert_eq!(
            parse_host("localhost").unwrap(),
            Target::Name("localhost".into())
        );
    }

    #[test]
    fn junk_is_refused() {
        for bad in ["", " ", "a b", "x\r\ny", "http://x/", "a/b"] {
            assert!(parse_host(bad).is_err(), "{bad:?}");
        }
    }
}
