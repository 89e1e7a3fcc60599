//! Context for actions and nodes: `${var}` / `{{var}}` templates filled into *parsed* JSON
//! values (never into raw text or SQL), and conditions in CEL, a language without loops or
//! side effects.

use serde_json::{Map, Value};

use crate::{EngineError, Result};

/// `a.b.0.c` inside `ctx`.
fn lookup<'a>(ctx: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut cur = ctx.get(parts.next()?.trim())?;
    for p in parts {
        cur = match cur {
            Value::Object(m) => m.get(p.trim())?,
            Value::Array(a) => a.get(p.trim().parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// The placeholders of a string: (start, end, variable path).
pub(crate) fn placeholders(s: &str) -> Vec<(usize, usize, &str)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        let (open, close) = if rest.starts_with("${") {
            ("${", "}")
        } else if rest.starts_with("{{") {
            ("{{", "}}")
        } else {
            i += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        };
        match rest[open.len()..].find(close) {
            Some(end) => {
                let name = rest[open.len()..open.len() + end].trim();
                let total = open.len() + end + close.len();
                if !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_alphanumeric() || "_.-".contains(c))
                {
                    out.push((i, i + total, name));
                }
                i += total;
            }
            None => break,
        }
    }
    out
}

/// Fills the templates of every string in `value`. A string that is one placeholder becomes
/// the variable's value with its type; placeholders inside text become the value's text. A
/// variable missing from the context is an error naming it.
pub fn fill(value: &Value, ctx: &Map<String, Value>, field: &str) -> Result<Value> {
    Ok(match value {
        Value::String(s) => {
            let found = placeholders(s);
            if found.is_empty() {
                return Ok(value.clone());
            }
            let get = |name: &str| {
                lookup(ctx, name).ok_or_else(|| {
                    EngineError::from(patchbay_domain::ValidationErrors::single(
                        format!("context.{name}"),
                        format!("is used by {field} but not set"),
                    ))
                })
            };
            if let [(0, end, name)] = found.as_slice()
                && *end == s.len()
            {
                return get(name).cloned();
            }
            let mut out = String::with_capacity(s.len());
            let mut last = 0;
            for (start, end, name) in found {
                out.push_str(&s[last..start]);
                match get(name)? {
                    Value::String(v) => out.push_str(v),
                    Value::Null => {}
                    other => out.push_str(&other.to_string()),
                }
                last = end;
            }
            out.push_str(&s[last..]);
            Value::String(out)
        }
        Value::Array(a) => Value::Array(
            a.iter()
                .enumerate()
                .map(|(i, v)| fill(v, ctx, &format!("{field}[{i}]")))
                .collect::<Result<_>>()?,
        ),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| Ok((k.clone(), fill(v, ctx, &format!("{field}.{k}"))?)))
                .collect::<Result<_>>()?,
        ),
        other => other.clone(),
    })
}

/// Fills the templates of a URL path, each value percent-encoded as one path segment (so a
/// value cannot add segments, a query or a fragment).
pub fn fill_path(path: &str, ctx: &Map<String, Value>, field: &str) -> Result<String> {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let mut out = String::with_capacity(path.len());
    let mut last = 0;
    for (start, end, name) in placeholders(path) {
        out.push_str(&path[last..start]);
        let v = lookup(ctx, name).ok_or_else(|| {
            EngineError::from(patchbay_domain::ValidationErrors::single(
                format!("context.{name}"),
                format!("is used by {field} but not set"),
            ))
        })?;
        let text = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.extend(percent_encoding::utf8_percent_encode(&text, SEGMENT));
        last = end;
    }
    out.push_str(&path[last..]);
    Ok(out)
}

/// Like [`fill`] for an operation's body: a key whose value is a lone placeholder for a
/// variable that is not set is left out (an optional parameter such as `temperature`).
pub fn fill_optional(value: &Value, ctx: &Map<String, Value>, field: &str) -> Result<Value> {
    match value {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                if let Value::String(s) = v
                    && let [(0, end, name)] = placeholders(s).as_slice()
                    && *end == s.len()
                    && lookup(ctx, name).is_none()
                {
                    continue;
                }
                out.insert(k.clone(), fill_optional(v, ctx, &format!("{field}.{k}"))?);
            }
            Ok(Value::Object(out))
        }
        other => fill(other, ctx, field),
    }
}

/// Whether a text holds a template placeholder.
pub fn has_placeholder(s: &str) -> bool {
    !placeholders(s).is_empty()
}

/// Evaluates a CEL condition over the context (each key is a variable; `context` is all of
/// them). Anything but `true` or `false` is an error naming `field`.
pub fn condition(expr: &str, ctx: &Map<String, Value>, field: &str) -> Result<bool> {
    let invalid = |reason: String| -> EngineError {
        patchbay_domain::ValidationErrors::single(field, reason).into()
    };
    let program = cel::Program::compile(expr)
        .map_err(|e| invalid(format!("is not a valid expression: {e}")))?;
    let mut context = cel::Context::default();
    for (k, v) in ctx {
        let value = cel::to_value(v).map_err(|e| invalid(format!("context.{k}: {e}")))?;
        context.add_variable_from_value(k.clone(), value);
    }
    let all = cel::to_value(ctx).map_err(|e| invalid(format!("context: {e}")))?;
    context.add_variable_from_value("context", all);
    match program.execute(&context) {
        Ok(cel::Value::Bool(b)) => Ok(b),
        Ok(other) => Err(invalid(format!("must be true or false, not {other:?}"))),
        Err(e) => Err(invalid(format!("cannot be evaluated: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn ctx() -> Map<String, Value> {
        json!({"name": "Ada", "n": 3, "workflow": {"name": "billing", "steps": [{"id": "s1"}]}, "totalAmount": 12000})
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn templates_fill_values_not_text() {
        let v = json!({"text": "Hi ${name}, {{n}} steps in ${workflow.name}", "count": "{{n}}",
            "first": "${workflow.steps.0.id}", "list": ["${name}", 1], "plain": "no $ here {{ }}", "obj": "{{workflow}}"});
        let out = fill(&v, &ctx(), "body").unwrap();
        assert_eq!(out["text"], "Hi Ada, 3 steps in billing");
        assert_eq!(out["count"], 3, "a lone placeholder keeps the type");
        assert_eq!(out["first"], "s1");
        assert_eq!(out["list"], json!(["Ada", 1]));
        assert_eq!(out["plain"], "no $ here {{ }}");
        assert_eq!(
            out["obj"],
            json!({"name": "billing", "steps": [{"id": "s1"}]})
        );
        // A quote in a value stays inside its string: nothing is spliced into JSON text.
        let tricky = json!({"name": "\", \"admin\": true, \""})
            .as_object()
            .unwrap()
            .clone();
        let out = fill(&json!({"who": "user ${name}"}), &tricky, "body").unwrap();
        assert_eq!(out.as_object().unwrap().len(), 1);
        assert_eq!(out["who"], "user \", \"admin\": true, \"");
        let err = fill(&json!({"a": ["${missing.x}"]}), &ctx(), "body").unwrap_err();
        assert!(err.to_string().contains("context.missing.x"), "{err}");
        assert!(err.to_string().contains("body.a[0]"), "{err}");
    }

    #[test]
    fn paths_encode_values_and_optional_keys_drop() {
        let ctx = json!({"owner": "acme", "repo": "a/b?c#d", "n": 2})
            .as_object()
            .unwrap()
            .clone();
        assert_eq!(
            fill_path("/repos/${owner}/${repo}/issues/{{n}}", &ctx, "path").unwrap(),
            "/repos/acme/a%2Fb%3Fc%23d/issues/2"
        );
        let body = json!({"model": "${owner}", "temperature": "${temperature}", "text": "x ${n}"});
        assert_eq!(
            fill_optional(&body, &ctx, "body").unwrap(),
            json!({"model": "acme", "text": "x 2"})
        );
        assert!(fill_optional(&json!({"t": "a ${missing}"}), &ctx, "body").is_err());
    }

    #[test]
    fn conditions_are_cel() {
        assert!(condition("totalAmount > 10000", &ctx(), "condition").unwrap());
        assert!(!condition("totalAmount > 100000 || name == 'Bob'", &ctx(), "condition").unwrap());
        assert!(condition("context.workflow.name == 'billing'", &ctx(), "condition").unwrap());
        for bad in ["totalAmount >", "name + 1", "unknownVar > 1"] {
            let err = condition(bad, &ctx(), "condition").unwrap_err();
            assert!(err.to_string().contains("condition"), "{bad}: {err}");
        }
    }
}
