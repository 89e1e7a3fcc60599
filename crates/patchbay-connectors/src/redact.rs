//! Credential values kept out of what is relayed back to callers. A caller may use a
//! connection without being allowed to read its secrets, so an upstream answer that echoes an
//! injected credential — a redirect whose `Location` carries an API key from the query, an
//! echo endpoint, an error message quoting the key — must not hand it over. The values are
//! known (they were just injected): every secret of the connection, the Basic `user:password`
//! pair as it is encoded, and each value as a query string encodes it. Headers are scrubbed on
//! every path (the proxy's too); bodies where they are buffered (actions, nodes, webhook
//! answers). Values shorter than [`MIN_LEN`] are not searched for: they would match by chance.

use base64::Engine as _;
use http::{HeaderMap, HeaderValue};
use secrecy::ExposeSecret;
use zeroize::Zeroizing;

use crate::Material;

/// Shorter values are not searched for.
pub const MIN_LEN: usize = 6;

/// What stands in for a credential value.
pub const MARK: &str = "[REDACTED]";

/// The values one connection's answers must not carry.
#[derive(Default)]
pub struct Redactor {
    /// Longest first, so a value containing another is replaced whole.
    needles: Vec<Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Redactor({} values)", self.needles.len())
    }
}

impl Redactor {
    /// The values `m` may inject, in every form they travel in.
    pub fn of(m: &Material) -> Self {
        let mut needles: Vec<Zeroizing<Vec<u8>>> = Vec::new();
        let mut add = |v: &[u8]| {
            if v.len() >= MIN_LEN && !needles.iter().any(|n| n.as_slice() == v) {
                needles.push(Zeroizing::new(v.to_vec()));
            }
        };
        for value in m.secrets.values() {
            let raw = value.expose_secret().as_bytes();
            add(raw);
            let encoded: Zeroizing<String> =
                Zeroizing::new(url::form_urlencoded::byte_serialize(raw).collect());
            add(encoded.as_bytes());
            let percent: Zeroizing<String> = Zeroizing::new(
                percent_encoding::utf8_percent_encode(
                    value.expose_secret(),
                    percent_encoding::NON_ALPHANUMERIC,
                )
                .to_string(),
            );
            add(percent.as_bytes());
        }
        if let Some(password) = m.secret("password") {
            let user = m.username().unwrap_or("");
            let pair = Zeroizing::new(format!("{user}:{}", password.expose_secret()));
            let basic =
                Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(pair.as_bytes()));
            add(basic.as_bytes());
        }
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        Self { needles }
    }

    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    fn found_in(&self, hay: &[u8]) -> bool {
        self.needles
            .iter()
            .any(|n| memchr::memmem::find(hay, n).is_some())
    }

    /// A copy of `hay` with every value replaced by [`MARK`]; `None` when it holds none.
    pub fn scrub(&self, hay: &[u8]) -> Option<Vec<u8>> {
        if !self.found_in(hay) {
            return None;
        }
        let mut out = hay.to_vec();
        for n in &self.needles {
            if memchr::memmem::find(&out, n).is_none() {
                continue;
            }
            let mut next = Vec::with_capacity(out.len());
            let mut rest = out.as_slice();
            while let Some(at) = memchr::memmem::find(rest, n) {
                next.extend_from_slice(&rest[..at]);
                next.extend_from_slice(MARK.as_bytes());
                rest = &rest[at + n.len()..];
            }
            next.extend_from_slice(rest);
            out = next;
        }
        Some(out)
    }

    /// Replaces every value in `headers` (a redirect's `Location` among them); how many
    /// headers were changed.
    pub fn scrub_headers(&self, headers: &mut HeaderMap) -> usize {
        if self.needles.is_empty() {
            return 0;
        }
        let mut changed = 0;
        for value in headers.values_mut() {
            if let Some(clean) = self.scrub(value.as_bytes()) {
                // The mark is visible ASCII, so the value stays a valid header value.
                *value = HeaderValue::from_bytes(&clean)
                    .unwrap_or_else(|_| HeaderValue::from_static(MARK));
                value.set_sensitive(false);
                changed += 1;
            }
        }
        changed
    }

    /// `text` with every value replaced.
    pub fn scrub_str(&self, text: &str) -> Option<String> {
        self.scrub(text.as_bytes())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// Replaces every value inside the strings (and keys) of a JSON document.
    pub fn scrub_json(&self, v: &mut serde_json::Value) -> bool {
        use serde_json::Value;
        if self.needles.is_empty() {
            return false;
        }
        match v {
            Value::String(s) => match self.scrub_str(s) {
                Some(clean) => {
                    *s = clean;
                    true
                }
                None => false,
            },
            Value::Array(items) => items
                .iter_mut()
                .fold(false, |hit, item| self.scrub_json(item) | hit),
            Value::Object(map) => {
                let keys: Vec<String> = map
                    .keys()
                    .filter(|k| self.found_in(k.as_bytes()))
                    .cloned()
                    .collect();
                let mut hit = !keys.is_empty();
                for k in keys {
                    if let Some(val) = map.remove(&k) {
                        let clean = self.scrub_str(&k).unwrap_or_else(|| MARK.to_owned());
                        map.insert(clean, val);
                    }
                }
                for val in map.values_mut() {
                    hit |= self.scrub_json(val);
                }
                hit
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_form_of_a_credential_is_replaced() {
        let m = crate::test_material(
            json!({"base_url": "https://api.example.com"}),
            json!({"type": "basic", "username": "svc"}),
            &[
                ("api_key", "k3y/with+odd=chars"),
                ("password", "hunter22"),
                ("short", "abc"),
            ],
        );
        let r = Redactor::of(&m);
        let mut headers = HeaderMap::new();
        headers.insert(
            "location",
            HeaderValue::from_static(
                "https://api.example.com/next?api_key=k3y%2Fwith%2Bodd%3Dchars&x=1",
            ),
        );
        headers.insert("x-echo", HeaderValue::from_static("key k3y/with+odd=chars"));
        headers.insert(
            "x-plain",
            HeaderValue::from_static("abc is too short to matter"),
        );
        let basic = base64::engine::general_purpose::STANDARD.encode("svc:hunter22");
        headers.insert(
            "x-auth",
            HeaderValue::from_str(&format!("Basic {basic}")).unwrap(),
        );
        assert_eq!(r.scrub_headers(&mut headers), 3);
        assert_eq!(
            headers["location"],
            "https://api.example.com/next?api_key=[REDACTED]&x=1"
        );
        assert_eq!(headers["x-echo"], "key [REDACTED]");
        assert_eq!(headers["x-auth"], "Basic [REDACTED]");
        assert_eq!(headers["x-plain"], "abc is too short to matter");

        let mut body = json!({"headers": {"authorization": "Bearer hunter22"},
            "args": {"api_key": "k3y/with+odd=chars"}, "hunter22": 1, "n": 5});
        assert!(r.scrub_json(&mut body));
        assert_eq!(
            body,
            json!({"headers": {"authorization": "Bearer [REDACTED]"},
                "args": {"api_key": "[REDACTED]"}, "[REDACTED]": 1, "n": 5})
        );
        assert_eq!(r.scrub(b"nothing here"), None);
        assert_eq!(
            r.scrub(b"a hunter22hunter22 b").unwrap(),
            b"a [REDACTED][REDACTED] b"
        );
    }
}
