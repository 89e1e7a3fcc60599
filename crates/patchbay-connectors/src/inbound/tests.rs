//! Each scheme against its provider's published example (Slack's, GitHub's, Twilio's and the
//! Standard Webhooks test vector, each as the provider's own SDK also computes it) or, where
//! the provider publishes none, a signature its SDK made (Stripe's `_compute_signature`) or
//! its documented recipe (Shopify's).

use http::{HeaderMap, HeaderName, HeaderValue};

use super::{
    Algorithm, Encoding, HmacTemplate, Incoming, Refusal, Scheme, Verified, fill_template, verify,
};

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

fn check(
    scheme: Scheme,
    secret: &str,
    h: &HeaderMap,
    body: &str,
    url: &str,
    now: i64,
) -> Result<Verified, Refusal> {
    verify(
        scheme,
        None,
        secret,
        &Incoming {
            headers: h,
            body: body.as_bytes(),
            url,
            now,
            tolerance: 300,
        },
    )
}

const SLACK_BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";

#[test]
fn slack_v0_as_its_documentation_signs() {
    let h = headers(&[
        ("x-slack-request-timestamp", "1531420618"),
        (
            "x-slack-signature",
            "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
        ),
    ]);
    let secret = "8f742231b10e8888abcd99yyyzzz85a5";
    let ok = check(Scheme::Slack, secret, &h, SLACK_BODY, "", 1531420618 + 10).unwrap();
    assert_eq!(ok.timestamp, Some(1531420618));
    assert_eq!(
        check(Scheme::Slack, secret, &h, SLACK_BODY, "", 1531420618 + 301),
        Err(Refusal::Stale)
    );
    let tampered = SLACK_BODY.replace("roadrunner", "coyote");
    assert_eq!(
        check(Scheme::Slack, secret, &h, &tampered, "", 1531420618),
        Err(Refusal::Mismatch)
    );
    assert_eq!(
        check(
            Scheme::Slack,
            "another-secret",
            &h,
            SLACK_BODY,
            "",
            1531420618
        ),
        Err(Refusal::Mismatch)
    );
}

#[test]
fn github_sha256_as_its_documentation_signs() {
    let h = headers(&[
        (
            "x-hub-signature-256",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        ),
        ("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
    ]);
    let ok = check(
        Scheme::Github,
        "It's a Secret to Everybody",
        &h,
        "Hello, World!",
        "",
        0,
    )
    .unwrap();
    assert_eq!(
        ok.id.as_deref(),
        Some("72d3162e-cc78-11e3-81ab-4c9367dc0958")
    );
    assert_eq!(
        ok.dedupe, "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        "the delivery id is not signed"
    );
    assert_eq!(
        check(
            Scheme::Github,
            "It's a Secret to Everybody",
            &h,
            "Hello, World?",
            "",
            0
        ),
        Err(Refusal::Mismatch)
    );
    let sha1_only = headers(&[("x-hub-signature", "sha1=0000")]);
    assert_eq!(
        check(Scheme::Github, "s", &sha1_only, "x", "", 0),
        Err(Refusal::Missing)
    );
}

#[test]
fn twilio_as_its_documentation_signs_forms_and_json() {
    let body = "CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234&From=%2B12349013030&To=%2B18005551212";
    let h = headers(&[
        ("x-twilio-signature", "0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
        ("content-type", "application/x-www-form-urlencoded"),
    ]);
    let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
    check(Scheme::Twilio, "12345", &h, body, url, 0).unwrap();
    assert_eq!(
        check(
            Scheme::Twilio,
            "12345",
            &h,
            body,
            "https://mycompany.com/other",
            0
        ),
        Err(Refusal::Mismatch),
        "the URL is signed"
    );
    let digest = "015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862";
    let json_url = format!("https://mycompany.com/hook?bodySHA256={digest}");
    let h = headers(&[
        ("x-twilio-signature", "5RzLWLtxROOEDxluB0CLCWjQg48="),
        ("content-type", "application/json"),
    ]);
    check(Scheme::Twilio, "12345", &h, r#"{"a":1}"#, &json_url, 0).unwrap();
    assert_eq!(
        check(Scheme::Twilio, "12345", &h, r#"{"a":2}"#, &json_url, 0),
        Err(Refusal::Mismatch),
        "bodySHA256 binds the JSON body"
    );
}

#[test]
fn standard_webhooks_test_vector() {
    let h = headers(&[
        ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
        ("webhook-timestamp", "1614265330"),
        (
            "webhook-signature",
            "v1,bm90IHRoaXMgb25l v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ),
    ]);
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let body = r#"{"test": 2432232314}"#;
    let ok = check(Scheme::StandardWebhooks, secret, &h, body, "", 1614265330).unwrap();
    assert_eq!(ok.dedupe, "msg_p5jXN8AQM9LWM0D4loKWxJek");
    assert_eq!(
        check(
            Scheme::StandardWebhooks,
            secret,
            &h,
            body,
            "",
            1614265330 - 301
        ),
        Err(Refusal::Stale)
    );
    let mut renamed = h.clone();
    renamed.insert("webhook-id", HeaderValue::from_static("msg_other"));
    assert_eq!(
        check(
            Scheme::StandardWebhooks,
            secret,
            &renamed,
            body,
            "",
            1614265330
        ),
        Err(Refusal::Mismatch),
        "the id is signed"
    );
}

#[test]
fn stripe_as_its_sdk_signs() {
    let body = r#"{"id": "evt_test_webhook", "object": "event"}"#;
    let h = headers(&[(
        "stripe-signature",
        "t=1492774577,v1=c137b1b62277d523cf8fed4dfbd0170a9a5b8a380e00cc3711d4bf0652f2ce7a,v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39",
    )]);
    let ok = check(
        Scheme::Stripe,
        "whsec_test_secret",
        &h,
        body,
        "",
        1492774577,
    )
    .unwrap();
    assert_eq!(ok.dedupe, "evt_test_webhook");
    assert_eq!(
        check(
            Scheme::Stripe,
            "whsec_test_secret",
            &h,
            body,
            "",
            1492774577 + 600
        ),
        Err(Refusal::Stale)
    );
    let v0_only = headers(&[("stripe-signature", "t=1492774577,v0=abc")]);
    assert_eq!(
        check(
            Scheme::Stripe,
            "whsec_test_secret",
            &v0_only,
            body,
            "",
            1492774577
        ),
        Err(Refusal::Malformed)
    );
}

#[test]
fn shopify_as_its_documentation_computes() {
    let body = r#"{"id":820982911946154508,"email":"jon@example.com"}"#;
    let h = headers(&[
        (
            "x-shopify-hmac-sha256",
            "D0UMXmhjwBRi4y66TmhJrDlhQABD7zI2fm3p6/QLMo8=",
        ),
        (
            "x-shopify-webhook-id",
            "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        ),
    ]);
    let ok = check(Scheme::Shopify, "hush", &h, body, "", 0).unwrap();
    assert_eq!(
        ok.id.as_deref(),
        Some("b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")
    );
    assert_eq!(ok.dedupe, "D0UMXmhjwBRi4y66TmhJrDlhQABD7zI2fm3p6/QLMo8=");
    assert_eq!(
        check(Scheme::Shopify, "hush!", &h, body, "", 0),
        Err(Refusal::Mismatch)
    );
}

#[test]
fn a_generic_template_fills_its_fields_and_holds_its_window() {
    let t = HmacTemplate {
        header: "x-signature".into(),
        algorithm: Algorithm::Sha512,
        encoding: Encoding::Hex,
        prefix: "sha512=".into(),
        content: "{timestamp}.{id}.{body}".into(),
        timestamp_header: Some("x-timestamp".into()),
        id_header: Some("x-event".into()),
    };
    let h = headers(&[
        (
            "x-signature",
            "sha512=109f1a9859c27e926b766eeec6f37ce37e170eaebf88bc68419894a7faef555a9e79de4a2c3f12f9c5638645a4b26c621e3443092e761c8b9c00821e1d9cd4d4",
        ),
        ("x-timestamp", "1700000000"),
        ("x-event", "evt_1"),
    ]);
    let req = |now| Incoming {
        headers: &h,
        body: br#"{"x":1}"#,
        url: "",
        now,
        tolerance: 300,
    };
    let ok = verify(Scheme::Hmac, Some(&t), "k", &req(1_700_000_100)).unwrap();
    assert_eq!(ok.id.as_deref(), Some("evt_1"));
    assert_eq!(
        ok.dedupe, "evt_1",
        "the id is signed ({{id}} in the content)"
    );
    assert_eq!(
        verify(Scheme::Hmac, Some(&t), "k", &req(1_700_000_400)),
        Err(Refusal::Stale)
    );
    assert_eq!(
        fill_template("{a}{body}-{timestamp}", b"B", "T", ""),
        b"{a}B-T".to_vec()
    );
}
