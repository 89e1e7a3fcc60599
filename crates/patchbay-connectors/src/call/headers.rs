//! Which headers travel: hop-by-hop, `Patchbay-*` and the caller's own credentials stay
//! behind in both directions.

use reqwest::header::{self, HeaderMap, HeaderName};

/// Whether `name` is never forwarded in either direction: it describes one hop (RFC 9110
/// §7.6.1), is a credential of the caller's own that must not reach the upstream, or is
/// Patchbay's own. (Names the `Connection` header lists are hop-by-hop too: see [`strip`].)
pub(super) fn hop_by_hop(name: &HeaderName) -> bool {
    let n = name.as_str();
    matches!(
        n,
        "connection"
            | "keep-alive"
            | "close"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
            | "authorization"
            | "forwarded"
            | "x-forwarded-for"
            | "x-forwarded-host"
            | "x-forwarded-proto"
            | "x-real-ip"
    ) || n.starts_with("patchbay-")
}

/// Whether a `Connection` option is `keep-alive` or `close`, which [`hop_by_hop`] names already.
fn usual_option(option: &[u8]) -> bool {
    option.eq_ignore_ascii_case(b"keep-alive") || option.eq_ignore_ascii_case(b"close")
}

/// The header names the `Connection` header lists beyond `keep-alive` and `close`: they are
/// hop-by-hop too. A value that is one of those two alone (the usual answer from an upstream)
/// is not split.
fn connection_listed(headers: &HeaderMap) -> smallvec::SmallVec<[&str; 4]> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter(|v| !usual_option(v.as_bytes().trim_ascii()))
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty() && !usual_option(s.as_bytes()))
        .collect()
}

/// Keeps the end-to-end headers of `headers`.
pub fn forwardable(headers: HeaderMap) -> HeaderMap {
    strip(headers, |_| false)
}

/// Room a forwarded request's headers keep for what is added to them (credentials, the user
/// agent, the host).
const ADDED: usize = 4;

/// Removes the headers that are never forwarded from `headers`, except those `keep` names.
pub fn strip(mut headers: HeaderMap, keep: impl Fn(&HeaderName) -> bool) -> HeaderMap {
    // The positions of the names that go, in the map's order (which its iterators share).
    let mut gone: smallvec::SmallVec<[usize; 8]> = smallvec::SmallVec::new();
    let mut lists = false;
    for (i, name) in headers.keys().enumerate() {
        lists |= name == header::CONNECTION;
        if hop_by_hop(name) && !keep(name) {
            gone.push(i);
        }
    }
    // A `Connection` header rarely lists more than `keep-alive` or `close`: only then are the
    // names read again, for those it lists.
    if lists {
        let listed = connection_listed(&headers);
        if !listed.is_empty() {
            for (i, name) in headers.keys().enumerate() {
                if !gone.contains(&i)
                    && !keep(name)
                    && listed.iter().any(|l| l.eq_ignore_ascii_case(name.as_str()))
                {
                    gone.push(i);
                }
            }
            gone.sort_unstable();
        }
    }
    let names = headers.keys_len();
    if gone.len() == names {
        // Nothing stays (a proxied request often carries only its host and credentials): the
        // map is emptied and keeps its room.
        headers.clear();
        return headers;
    }
    if gone.len() * 2 <= names {
        let doomed: smallvec::SmallVec<[HeaderName; 8]> = headers
            .keys()
            .enumerate()
            .filter(|(i, _)| gone.contains(i))
            .map(|(_, n)| n.clone())
            .collect();
        for name in doomed {
            headers.remove(name);
        }
        return headers;
    }
    // Most names go: what stays is moved to a new map, which costs less than removing the rest
    // one by one.
    let mut kept = HeaderMap::with_capacity(names - gone.len() + ADDED);
    let mut gone = gone.into_iter().peekable();
    let mut position = 0;
    let mut stays = false;
    let mut current = None;
    for (name, value) in headers {
        if let Some(name) = name {
            stays = gone.next_if_eq(&position).is_none();
            position += 1;
            current = Some(name);
        }
        if stays && let Some(name) = &current {
            kept.append(name, value);
        }
    }
    kept
}
