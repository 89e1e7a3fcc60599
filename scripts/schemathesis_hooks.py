"""Generators for the custom string formats Patchbay's OpenAPI document uses.

Schemathesis cannot know what a JSONPath or a CEL expression is; these strategies give it
values of each format for its positive tests. Loaded through SCHEMATHESIS_HOOKS by
scripts/schemathesis.sh.
"""

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


@schemathesis.hook
def before_call(context, case, kwargs):
    """Realistic values where generated ones would only wait or miss. A blocking webhook action
    (or node) waits out its retries before it answers (five attempts and 15 s of backoff by
    default, up to 20 attempts of an hour each): valid policies are bounded so the run stays
    short. What is checked of the answers does not change."""
    body = case.body
    if not isinstance(body, dict):
        return
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
