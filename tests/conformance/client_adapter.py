"""Patchbay as the client under test of the MCP conformance suite's client scenarios.

The suite runs `client_adapter.py URL` with MCP_CONFORMANCE_SCENARIO (and, for some auth
scenarios, MCP_CONFORMANCE_CONTEXT) set. This adapter makes a running Patchbay
(PATCHBAY_URL, PATCHBAY_TOKEN) do what a user of it would:

- create an MCP connection to URL (`oauth2` auth for the auth scenarios; a pre-registered
  client from the context), which discovers the server;
- for auth scenarios, start the authorization (Patchbay follows the server's 401 to its
  authorization server and registers or uses its client), play the browser — take the
  authorization server's redirect and hand it to Patchbay's callback — then list and call the
  scenario's tool, authorizing again (at most three times in all) when Patchbay answers that
  the server stepped the scopes up;
- otherwise call the scenario's tool (`tools_call`: add_numbers; `sse-retry`:
  test_reconnection).

Exits 0 when every step answered as it should.
"""

import http.client
import json
import os
import secrets
import sys
import urllib.parse

BASE = os.environ["PATCHBAY_URL"].rstrip("/")
TOKEN = os.environ["PATCHBAY_TOKEN"]


def request(method, url, body=None, token=True):
    """One request, redirects not followed: (status, headers, parsed body or text)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    headers = {"accept": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {TOKEN}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["content-type"] = "application/json"
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    conn.request(method, path or "/", body=data, headers=headers)
    r = conn.getresponse()
    raw = r.read().decode(errors="replace")
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw
    return r.status, dict(r.getheaders()), parsed


def api(method, path, body=None):
    return request(method, BASE + path, body)


def fail(what, detail):
    print(f"conformance adapter: {what}: {detail}", file=sys.stderr)
    sys.exit(1)


def authorize(cid):
    status, _, started = api("POST", f"/v1/connections/{cid}/oauth/start")
    if status != 200:
        fail("oauth/start", started)
    # The authorization server answers the browser with a redirect to Patchbay's callback.
    status, headers, _ = request("GET", started["authorization_url"], token=False)
    location = {k.lower(): v for k, v in headers.items()}.get("location")
    if status not in (301, 302, 303, 307) or not location:
        fail("the authorization request", f"HTTP {status}, no redirect")
    status, _, page = request("GET", location, token=False)
    if status != 200:
        fail("the callback", f"HTTP {status}: {page}")


def call(cid, tool, arguments):
    return api("POST", "/v1/actions/mcp", {"connection": cid, "tool": tool, "arguments": arguments})


def main():
    server = sys.argv[-1]
    scenario = os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
    context = json.loads(os.environ.get("MCP_CONFORMANCE_CONTEXT") or "{}")
    auth = scenario.startswith("auth/")
    body = {
        "name": f"conformance-{secrets.token_hex(4)}",
        "kind": "mcp",
        "config": {"server_url": server},
        "auth": {"type": "oauth2"} if auth else {"type": "none"},
    }
    if context.get("client_id"):
        body["secrets"] = {"client_id": context["client_id"]}
        if context.get("client_secret"):
            body["secrets"]["client_secret"] = context["client_secret"]
    status, _, created = api("POST", "/v1/connections", body)
    if status != 201:
        fail("creating the connection", created)
    cid = created["id"]
    if not auth:
        if created.get("test_status") != "success":
            fail("discovery", created.get("test_message"))
        tool = {"tools_call": ("add_numbers", {"a": 2, "b": 3}), "sse-retry": ("test_reconnection", {})}
        if scenario in tool:
            status, _, result = call(cid, *tool[scenario])
            if status != 200:
                fail(f"calling {tool[scenario][0]}", result)
        return
    for attempt in range(3):
        authorize(cid)
        status, _, found = api("POST", f"/v1/connections/{cid}/refresh-tools")
        if status != 200 or not found.get("success"):
            detail = found.get("message") if isinstance(found, dict) else found
            if attempt < 2 and "authorize it again" in str(detail):
                continue
            fail("discovery", detail)
        status, _, result = call(cid, "test-tool", {})
        if status == 200:
            return
        detail = result.get("detail") if isinstance(result, dict) else result
        if "authorize it again" not in str(detail):
            fail("calling test-tool", detail)
    fail("calling test-tool", "still refused after three authorizations")


if __name__ == "__main__":
    main()
