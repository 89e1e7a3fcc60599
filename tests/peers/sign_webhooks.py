"""Signs webhook deliveries the way each provider does, with the provider's own signer where it
publishes one: standardwebhooks (Standard Webhooks), stripe, slack_sdk and twilio from PyPI,
@octokit/webhooks-methods from npm (GitHub, run with node), and Shopify's documented recipe
(base64 of the body's HMAC-SHA256).

Reads [{scheme, secret, body, timestamp, id, url}] as JSON on stdin; prints the headers of each
delivery as a JSON list.
"""

import base64
import datetime
import hashlib
import hmac
import json
import os
import subprocess
import sys
from urllib.parse import parse_qsl

TOOLS = os.path.join(os.path.dirname(__file__), "..", "..", ".tools")


def github(secret, body):
    script = (
        "import { sign } from '@octokit/webhooks-methods';"
        "const [secret, body] = JSON.parse(process.argv[1]);"
        "console.log(await sign(secret, body));"
    )
    out = subprocess.run(
        ["node", "--input-type=module", "-e", script, json.dumps([secret, body])],
        cwd=TOOLS,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def sign(d):
    scheme, secret, body, ts = d["scheme"], d["secret"], d["body"], d.get("timestamp")
    if scheme == "standard_webhooks":
        from standardwebhooks import Webhook

        at = datetime.datetime.fromtimestamp(ts, tz=datetime.timezone.utc)
        return {
            "webhook-id": d["id"],
            "webhook-timestamp": str(ts),
            "webhook-signature": Webhook(secret).sign(d["id"], at, body),
            "content-type": "application/json",
        }
    if scheme == "stripe":
        import stripe

        sig = stripe.WebhookSignature._compute_signature(f"{ts}.{body}", secret)
        return {"stripe-signature": f"t={ts},v1={sig}", "content-type": "application/json"}
    if scheme == "slack":
        from slack_sdk.signature import SignatureVerifier

        return {
            "x-slack-request-timestamp": str(ts),
            "x-slack-signature": SignatureVerifier(secret).generate_signature(
                timestamp=str(ts), body=body
            ),
            "content-type": "application/json",
        }
    if scheme == "twilio":
        from twilio.request_validator import RequestValidator

        params = dict(parse_qsl(body, keep_blank_values=True))
        return {
            "x-twilio-signature": RequestValidator(secret).compute_signature(d["url"], params),
            "content-type": "application/x-www-form-urlencoded",
            "i-twilio-idempotency-token": d["id"],
        }
    if scheme == "github":
        return {
            "x-hub-signature-256": github(secret, body),
            "x-github-delivery": d["id"],
            "x-github-event": "push",
            "content-type": "application/json",
        }
    if scheme == "shopify":
        digest = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
        return {
            "x-shopify-hmac-sha256": base64.b64encode(digest).decode(),
            "x-shopify-webhook-id": d["id"],
            "content-type": "application/json",
        }
    if scheme == "hmac":
        content = f"{ts}.{body}".encode()
        return {
            "x-signature": "sha256=" + hmac.new(secret.encode(), content, hashlib.sha256).hexdigest(),
            "x-timestamp": str(ts),
            "x-event-id": d["id"],
            "content-type": "application/json",
        }
    raise SystemExit(f"unknown scheme {scheme}")


print(json.dumps([sign(d) for d in json.load(sys.stdin)]))
