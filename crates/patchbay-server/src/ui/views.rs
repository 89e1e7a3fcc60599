//! What pages show of engine objects: times as "5 min ago" with the absolute time beside,
//! status badges in words, connection cards and test results.

use chrono::{DateTime, Utc};
use patchbay_domain::api::{ErrorKind, TestResult};
use patchbay_domain::connection::Connection;
use patchbay_domain::{AuthType, Status, TestStatus};
use serde_json::Value;

/// A moment, for a `<time>` element.
#[derive(Debug, Clone)]
pub struct Moment {
    pub iso: String,
    pub absolute: String,
    pub relative: String,
}

impl Moment {
    pub fn new(at: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        Self {
            iso: at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            absolute: at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            relative: relative(at, now),
        }
    }
}

/// "just now", "5 min ago", "3 h ago", "2 days ago", "in 4 min".
pub fn relative(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let secs = (now - at).num_seconds();
    let (ahead, secs) = (secs < 0, secs.unsigned_abs());
    let span = match secs {
        0..45 => return "just now".into(),
        45..3_600 => format!("{} min", secs.div_ceil(60).max(1)),
        3_600..86_400 => format!("{} h", secs / 3_600),
        _ => {
            let days = secs / 86_400;
            format!("{days} day{}", if days == 1 { "" } else { "s" })
        }
    };
    if ahead {
        format!("in {span}")
    } else {
        format!("{span} ago")
    }
}

/// A connection's state in words, with the class that colours it:
/// Connected, Failed, Expired — reconnect, Untested, Stale, Expiring, Disabled.
pub fn badge(c: &Connection, now: DateTime<Utc>) -> (&'static str, &'static str) {
    let oauth = c.auth_type() == AuthType::Oauth2;
    match c.status {
        Status::Disabled => return ("muted", "Disabled"),
        Status::Expired | Status::Revoked | Status::Invalid if oauth => {
            return ("bad", "Expired — reconnect");
        }
        Status::Expired | Status::Revoked => return ("bad", "Expired — reconnect"),
        Status::Pending if oauth => return ("warn", "Not connected"),
        _ => {}
    }
    if let Some(o) = &c.oauth
        && !o.refreshable
        && o.expires_at
            .is_some_and(|at| at > now && at - now < chrono::TimeDelta::days(3))
    {
        return ("warn", "Expiring");
    }
    match c.test_status {
        TestStatus::Failed => ("bad", "Failed"),
        TestStatus::Untested => ("muted", "Untested"),
        TestStatus::Success if c.stale => ("warn", "Stale"),
        TestStatus::Success => ("ok", "Connected"),
    }
}

/// The words a status filter is written in (the badges' own).
pub const STATUS_FILTERS: &[&str] = &[
    "Connected",
    "Failed",
    "Expired — reconnect",
    "Not connected",
    "Untested",
    "Stale",
    "Expiring",
    "Disabled",
];

/// Two letters standing for a name.
pub fn initials(name: &str) -> String {
    let mut words = name
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty());
    let first = words.next().unwrap_or("?");
    let mut out: String = first.chars().take(1).collect();
    match words.next() {
        Some(second) => out.extend(second.chars().take(1)),
        None => out.extend(first.chars().skip(1).take(1)),
    }
    out.to_uppercase()
}

/// Where a connection points: its base URL, host or server.
pub fn target(c: &Connection) -> Option<String> {
    let s = |k: &str| c.config.get(k).and_then(Value::as_str).map(str::to_owned);
    s("base_url")
        .or_else(|| s("server_url"))
        .or_else(|| s("url"))
        .or_else(|| {
            s("host").map(|h| match c.config.get("port").and_then(Value::as_i64) {
                Some(p) => format!("{h}:{p}"),
                None => h,
            })
        })
        .or_else(|| s("command"))
        .or_else(|| s("database"))
}

/// A test's outcome as a person reads it: `✓ Connected (HTTP 200, 82 ms)`,
/// `✗ Authentication failed: 401 — check the API key`.
#[derive(Debug, Clone)]
pub struct ResultView {
    pub ok: bool,
    pub headline: String,
    pub details: Vec<(&'static str, String)>,
}

impl ResultView {
    pub fn of(r: &TestResult, auth: AuthType) -> Self {
        let mut facts = Vec::new();
        if let Some(code) = r.status_code {
            facts.push(format!("HTTP {code}"));
        }
        facts.push(latency(r.latency_ms));
        let headline = if r.success {
            let who = r
                .account
                .as_deref()
                .map(|a| format!(" as {a}"))
                .unwrap_or_default();
            format!("✓ Connected{who} ({})", facts.join(", "))
        } else {
            failure_headline(r, auth)
        };
        let mut details = vec![("Message", r.message.clone())];
        if let Some(k) = r.error_kind {
            details.push(("Kind", k.as_str().to_owned()));
        }
        details.push(("Latency", latency(r.latency_ms)));
        if let Some(scopes) = &r.scopes_granted {
            details.push(("Scopes granted", scopes.join(" ")));
        }
        Self {
            ok: r.success,
            headline,
            details,
        }
    }

    /// The result a connection keeps from its last test.
    pub fn stored(c: &Connection) -> Option<Self> {
        let message = c.test_message.clone()?;
        let latency_ms = c.test_latency_ms.unwrap_or(0).max(0) as u64;
        let r = match c.test_status {
            TestStatus::Untested => return None,
            TestStatus::Success => TestResult::ok(latency_ms, message),
            TestStatus::Failed => TestResult {
                error_kind: None,
                ..TestResult::failed(latency_ms, ErrorKind::Protocol, message)
            },
        };
        Some(Self::of(&r, c.auth_type()))
    }
}

fn latency(ms: u64) -> String {
    if ms >= 10_000 && ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{ms} ms")
    }
}

fn failure_headline(r: &TestResult, auth: AuthType) -> String {
    let what = match auth {
        AuthType::ApiKey => "the API key",
        AuthType::Bearer => "the token",
        AuthType::Basic => "the user name and password",
        AuthType::Oauth2 | AuthType::Oauth2ClientCredentials => "the OAuth client and grant",
        AuthType::Hmac => "the signing secret",
        _ => "the credentials",
    };
    match r.error_kind {
        Some(ErrorKind::Auth) => match r.status_code {
            Some(code) => format!("✗ Authentication failed: {code} — check {what}"),
            None if r.message.starts_with("Authentication failed") => {
                format!("✗ {} — check {what}", r.message)
            }
            None => format!("✗ Authentication failed: {} — check {what}", r.message),
        },
        Some(ErrorKind::Timeout) if r.latency_ms >= 1000 => {
            format!("✗ Timed out after {} s", (r.latency_ms + 500) / 1000)
        }
        Some(ErrorKind::Timeout) => format!("✗ Timed out after {}", latency(r.latency_ms)),
        Some(ErrorKind::Blocked) => format!(
            "✗ Blocked: {}",
            r.message.strip_prefix("blocked: ").unwrap_or(&r.message)
        ),
        Some(ErrorKind::Dns) => format!("✗ Name not found: {}", r.message),
        Some(ErrorKind::Refused) => format!("✗ Connection refused: {}", r.message),
        Some(ErrorKind::Tls) => format!("✗ TLS failed: {}", r.message),
        Some(ErrorKind::Protocol) | None => format!("✗ Failed: {}", r.message),
    }
}

/// One connection as a card shows it.
#[derive(Debug, Clone)]
pub struct Card {
    pub id: String,
    pub name: String,
    pub initials: String,
    pub kind: &'static str,
    pub auth: &'static str,
    pub provider: String,
    pub target: Option<String>,
    pub badge: (&'static str, &'static str),
    pub last_tested: Option<Moment>,
    pub last_used: Option<Moment>,
    pub used_by: Vec<String>,
    /// A result to show: the test just run, else the stored one.
    pub result: Option<ResultView>,
}

impl Card {
    pub fn of(c: &Connection, now: DateTime<Utc>) -> Self {
        Self {
            id: c.id.to_string(),
            name: c.name.as_str().to_owned(),
            initials: initials(c.name.as_str()),
            kind: c.kind.as_str(),
            auth: c.auth_type().as_str(),
            provider: c.provider.clone(),
            target: target(c),
            badge: badge(c, now),
            last_tested: c.last_tested_at.map(|t| Moment::new(t, now)),
            last_used: c.last_used_at.map(|t| Moment::new(t, now)),
            used_by: c.used_by.clone(),
            result: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_people_say_them() {
        let now = Utc::now();
        assert_eq!(relative(now, now), "just now");
        assert_eq!(
            relative(now - chrono::TimeDelta::minutes(5), now),
            "5 min ago"
        );
        assert_eq!(relative(now - chrono::TimeDelta::hours(3), now), "3 h ago");
        assert_eq!(relative(now - chrono::TimeDelta::days(1), now), "1 day ago");
        assert_eq!(
            relative(now + chrono::TimeDelta::minutes(4), now),
            "in 4 min"
        );
    }

    #[test]
    fn initials_take_two_words_or_two_letters() {
        assert_eq!(initials("github-prod"), "GP");
        assert_eq!(initials("stripe"), "ST");
        assert_eq!(initials("<script>"), "SC");
    }

    #[test]
    fn failures_say_what_to_check() {
        let r = TestResult::failed(31, ErrorKind::Auth, "401 Unauthorized").with_status(401);
        assert_eq!(
            ResultView::of(&r, AuthType::ApiKey).headline,
            "✗ Authentication failed: 401 — check the API key"
        );
        let r = TestResult::failed(10_004, ErrorKind::Timeout, "timed out");
        assert_eq!(
            ResultView::of(&r, AuthType::Bearer).headline,
            "✗ Timed out after 10 s"
        );
        let r = TestResult::failed(
            2,
            ErrorKind::Blocked,
            "blocked: 10.0.0.5 is a private address",
        );
        assert_eq!(
            ResultView::of(&r, AuthType::Bearer).headline,
            "✗ Blocked: 10.0.0.5 is a private address"
        );
        let r = TestResult::ok(82, "ok").with_status(200);
        assert_eq!(
            ResultView::of(&r, AuthType::Bearer).headline,
            "✓ Connected (HTTP 200, 82 ms)"
        );
    }
}
