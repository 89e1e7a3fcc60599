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
    """A blocking webhook action waits out its retries (five attempts, 15 s of backoff by
    default) before it answers; where a generated action leaves `retry` out, it is sent with one
    attempt, so the run stays bounded. What is checked of the answer does not change."""
    body = case.body
    if case.path == "/v1/actions/webhook" and isinstance(body, dict) and body.get("retry") is None:
        body["retry"] = {"attempts": 1}
