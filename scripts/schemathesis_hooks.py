"""Generators for the custom string formats Patchbay's OpenAPI document uses, and the
realistic references a request needs.

Schemathesis cannot know what a JSONPath or a CEL expression is; these strategies give it
values of each format for its positive tests. Nor can a schema say that a referenced
organization secret or OAuth app exists: `before_call` points such references at ones made
here. Loaded through SCHEMATHESIS_HOOKS by scripts/schemathesis.sh, which sets PATCHBAY_URL
and PATCHBAY_TOKEN.
"""

import json
import os
import re
import urllib.error
import urllib.request

import schemathesis
from hypothesis import strategies as st

_member = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,11}", fullmatch=True)
_step = st.one_of(
    _member.map(lambda m: "." + m),
    st.integers(min_value=0, max_value=99).map(lambda i: f"[{i}]"),
    _member.map(lambda m: f"['{m}']"),
    st.just("[*]"),
    _member.map(lambda m: ".." + m),
)
# RFC 9535 JSONPath queries: `$` and a few segments.
schemathesis.openapi.format(
    "jsonpath", st.lists(_step, max_size=4).map(lambda steps: "$" + "".join(steps))
)

_literal = st.one_of(
    st.integers(min_value=-1000, max_value=1000).map(str),
    _member.map(lambda m: f"'{m}'"),
)
# CEL conditions that evaluate to a boolean without any variable.
schemathesis.openapi.format(
    "cel",
    st.one_of(
        st.sampled_from(["true", "false"]),
        st.tuples(st.integers(-1000, 1000), st.sampled_from(["==", "!=", "<", "<=", ">", ">="]),
                  st.integers(-1000, 1000)).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
        st.tuples(_member, _member).map(lambda t: f"'{t[0]}' == '{t[1]}'"),
        _literal.map(lambda v: f"size([{v}]) == 1"),
    ),
)


_URL = os.environ.get("PATCHBAY_URL", "")
_TOKEN = os.environ.get("PATCHBAY_TOKEN", "")
_SECRET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,127}$")
_TEXT = re.compile(r"^[^\x00-\x1f\x7f-\x9f]{1,2048}$")
# The organization secret every generated reference is pointed at.
SHARED_SECRET = "schemathesis_shared"
_made = set()


def _call(path, body=None):
    """Calls the server under test: a POST of `body`, or a GET without one. The status and the
    JSON answer (`None` for an error)."""
    headers = {"Authorization": "Bearer " + _TOKEN}
    data = None
    if body is not None:
        headers["Content-Type"] = "application/json"
        data = json.dumps(body).encode()
    request = urllib.request.Request(_URL + path, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as e:
        return e.code, None


def _once(key, path, body):
    """Makes a resource the first time it is needed (201 or 200: made; 409: it was there)."""
    if key not in _made and _call(path, body)[0] in (200, 201, 409):
        _made.add(key)


def _shared_secret():
    """The shared organization secret's name, made the first time it is needed."""
    _once("secret", "/v1/secrets", {"name": SHARED_SECRET, "value": "shared value"})
    return SHARED_SECRET


def _connection(body):
    """A connection body's references, made real: a valid secret reference names the shared
    organization secret, a valid `auth.app` names an OAuth app of the body's provider, and a
    custom auth template's `${secrets.NAME}` names a secret the body sets."""
    secrets = body.get("secrets")
    if isinstance(secrets, dict):
        for value in secrets.values():
            if (
                isinstance(value, dict)
                and list(value) == ["ref"]
                and isinstance(value["ref"], str)
                and _SECRET_NAME.match(value["ref"])
            ):
                value["ref"] = _shared_secret()
    auth = body.get("auth")
    if not isinstance(auth, dict):
        return
    provider = body.get("provider")
    if isinstance(auth.get("app"), str) and _TEXT.match(auth["app"]) and isinstance(provider, str):
        name = "schemathesis " + provider
        _once(("app", provider), "/v1/oauth/apps",
              {"name": name, "provider": provider, "client_id": "schemathesis"})
        auth["app"] = name
    inject = auth.get("inject")
    if auth.get("type") == "custom" and isinstance(inject, list):
        for rule in inject:
            template = rule.get("template") if isinstance(rule, dict) else None
            if not isinstance(template, str):
                continue
            for name in re.findall(r"\$\{secrets\.([^}]*)\}", template):
                if not isinstance(secrets, dict):
                    secrets = body["secrets"] = {}
                if _SECRET_NAME.match(name) and not name.startswith("__") and secrets.get(name) is None:
                    secrets[name] = "template value"


_CONNECTION_ID = re.compile(r"^con_[0-7][0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{25}$")
# The kind of connection each action and node runs on.
_ACTION_KIND = {
    "/v1/actions/http": "http",
    "/v1/actions/sql": "database",
    "/v1/actions/email": "smtp",
    "/v1/actions/webhook": "webhook",
    "/v1/actions/mcp": "mcp",
}
_NODE_KIND = {"http": "http", "webhook": "webhook", "sql": "database", "database": "database",
              "email": "smtp", "integration": "http", "llm": "http", "mcp_tool": "mcp"}
# A connection of each kind to a host that does not resolve here.
_OF_KIND = {
    "http": {"config": {"base_url": "https://api.example.com"}, "auth": {"type": "none"}},
    "database": {"config": {"driver": "postgresql", "host": "db.example.com", "database": "d",
                            "username": "u"}, "secrets": {"password": "p"}},
    "smtp": {"config": {"host": "smtp.example.com", "from_address": "ops@example.com",
                        "encryption": "none"}},
    "webhook": {"config": {"url": "https://hooks.example.com/in"}},
    # Loopback is closed to tenants here: its calls are refused at once, not waited on.
    "mcp": {"config": {"server_url": "http://127.0.0.1:9/mcp"}},
}
_of_kind = {}


def _right_kind(value, kind, provider):
    """A connection id replaced by one of a connection of the kind (and provider) the action or
    node runs on, unless it names one: which connection an id names is not something a
    request's schema can say. (An id that names no connection is answered 404; the Rust
    tests hold that.)"""
    if not (isinstance(value, str) and _CONNECTION_ID.match(value)):
        return value
    status, connection = _call("/v1/connections/" + value)
    if (
        status == 200
        and isinstance(connection, dict)
        and connection.get("kind") == kind
        and (provider is None or connection.get("provider") == provider)
    ):
        return value
    key = (kind, provider)
    if key not in _of_kind:
        body = {"name": f"schemathesis {kind} {provider or 'custom'}", "kind": kind,
                "provider": provider or "custom", **_OF_KIND[kind]}
        status, made = _call("/v1/connections", body)
        _of_kind[key] = made.get("id") if status == 201 and isinstance(made, dict) else None
    return _of_kind[key] or value


def _override(auth):
    """Replacement credentials name the shared organization secret."""
    if isinstance(auth, dict):
        for name in ("secret_ref", "tokenRef"):
            if isinstance(auth.get(name), str):
                auth[name] = _shared_secret()


def _runs_on(case, body):
    """Points an action's or node's connection at one it can run on, and its replacement
    credentials at a secret that exists."""
    if case.path == "/v1/actions/http":
        _override(body.get("auth"))
    elif case.path == "/v1/nodes/run" and isinstance(body.get("config"), dict):
        _override(body["config"].get("auth"))
    if case.path in _ACTION_KIND:
        if "connection" in body:
            body["connection"] = _right_kind(body["connection"], _ACTION_KIND[case.path], None)
        return
    config = body.get("config")
    kind = _NODE_KIND.get(body.get("type")) if isinstance(body.get("type"), str) else None
    if case.path != "/v1/nodes/run" or kind is None or not isinstance(config, dict):
        return
    provider = None
    if body["type"] in ("integration", "llm"):
        provider = config.get("service" if body["type"] == "integration" else "provider")
        if not isinstance(provider, str):
            return
    for name in ("connectionId", "connection_id", "connection"):
        if name in config:
            config[name] = _right_kind(config[name], kind, provider)


# What the two generators above produce.
_CEL = re.compile(
    r"^(true|false|-?\d+ (==|!=|<|<=|>|>=) -?\d+|'[A-Za-z_]\w*' == '[A-Za-z_]\w*'"
    r"|size\(\[(-?\d+|'[A-Za-z_]\w*')\]\) == 1)$"
)
_JSONPATH = re.compile(r"^\$(\.[A-Za-z_]\w*|\[\d+\]|\['[A-Za-z_]\w*'\]|\[\*\]|\.\.[A-Za-z_]\w*)*$")


def _formats(body):
    """Strings of the `cel` and `jsonpath` formats, made of those formats. Schemathesis leaves
    a custom format out where a nullable type or a nested choice surrounds it and draws any
    string; the format says what the server parses, so such a draw is replaced by the
    format's simplest value. A string drawn from the format is kept."""
    for holder in (body, body.get("config")):
        if not isinstance(holder, dict):
            continue
        if isinstance(holder.get("condition"), str) and not _CEL.match(holder["condition"]):
            holder["condition"] = "true"
        rules = holder.get("map")
        for rule in rules if isinstance(rules, list) else []:
            if isinstance(rule, dict) and isinstance(rule.get("select"), str) and not _JSONPATH.match(rule["select"]):
                rule["select"] = "$"


@schemathesis.hook
def before_call(context, case, kwargs):
    """Realistic values where generated ones would only wait or miss. A blocking webhook action
    (or node) waits out its retries before it answers (five attempts and 15 s of backoff by
    default, up to 20 attempts of an hour each): valid policies are bounded so the run stays
    short. What is checked of the answers does not change."""
    body = case.body
    if not isinstance(body, dict):
        return
    if case.path in ("/v1/connections", "/v1/connections/test", "/v1/mcp/discover"):
        _connection(body)
    _runs_on(case, body)
    if case.path in ("/v1/actions/http", "/v1/actions/webhook", "/v1/nodes/run"):
        _formats(body)
    if case.path == "/v1/actions/webhook":
        body["retry"] = _bounded(body.get("retry"))
    # A secret shared with projects names ones that exist (what a caller would do); the answer
    # to a project that does not exist is tested in tests/it/secret_scope.rs.
    projects = body.get("projects")
    if (
        case.path.startswith("/v1/secrets")
        and isinstance(projects, list)
        and projects
        and all(isinstance(p, str) for p in projects)
    ):
        body["projects"] = ["default"]
    # A webhook node reads `retryPolicy` or `retry`.
    config = body.get("config")
    if (
        case.path == "/v1/nodes/run"
        and body.get("type") == "webhook"
        and isinstance(config, dict)
    ):
        key = "retryPolicy" if config.get("retryPolicy") is not None else "retry"
        config[key] = _bounded(config.get(key))


def _bounded(retry):
    """A retry policy that ends within a second: valid attempts and backoff are lowered, an
    absent policy is one attempt; an invalid one is left for the server to refuse."""
    if retry is None:
        return {"attempts": 1}
    if not isinstance(retry, dict):
        return retry
    attempts, backoff = retry.get("attempts"), retry.get("backoff_ms")
    if attempts is None or (_whole(attempts) and 1 <= attempts <= 20):
        retry["attempts"] = min(attempts or 1, 2)
    if backoff is None or (_whole(backoff) and 0 <= backoff <= 3_600_000):
        retry["backoff_ms"] = 0
    return retry


def _whole(n):
    """A JSON integer, however it is written (`3` or `3.0`)."""
    return isinstance(n, (int, float)) and not isinstance(n, bool) and float(n).is_integer()
