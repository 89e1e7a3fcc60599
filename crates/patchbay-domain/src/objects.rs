//! Nested request objects read as objects only: serde would also read a struct from an array
//! of its fields (`"retry": [3, 100]`), which no caller means and the document does not allow.

use serde::de::{DeserializeOwned, Error};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

fn from_object<T: DeserializeOwned, E: Error>(v: Value) -> Result<T, E> {
    if v.is_array() {
        return Err(E::custom("must be an object, not an array"));
    }
    T::deserialize(v).map_err(E::custom)
}

/// An optional object: absent or `null` is `None`.
pub fn optional<'de, D: Deserializer<'de>, T: DeserializeOwned>(
    d: D,
) -> Result<Option<T>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(v) => from_object(v).map(Some),
    }
}

/// A list of objects.
pub fn list<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Vec<T>, D::Error> {
    Vec::<Value>::deserialize(d)?
        .into_iter()
        .map(from_object)
        .collect()
}

/// The integer a JSON number stands for, however it is written (`58` or `58.0`).
pub fn whole(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| {
        v.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() <= i64::MAX as f64)
            .map(|f| f as i64)
    })
}

/// An optional count or duration: JSON Schema's `integer` takes `58.0` as well as `58`.
pub fn integer<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    let whole = n.as_u64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u64::MAX as f64)
            .map(|f| f as u64)
    });
    whole
        .and_then(|w| T::try_from(w).ok())
        .map(Some)
        .ok_or_else(|| D::Error::custom(format!("{n} is not a whole number in range")))
}

/// A field that may be absent (`None`) or present, `null` included (`Some(Value::Null)`):
/// for bodies whose `null` means something other than absence.
pub fn present<'de, D>(d: D) -> Result<Option<serde_json::Value>, D::Error>
where
    D: Deserializer<'de>,
{
    serde_json::Value::deserialize(d).map(Some)
}

#[cfg(test)]
mod tests {
    use crate::actions::{HttpAction, WebhookAction};

    #[test]
    fn nested_objects_are_not_read_from_arrays() {
        let e = serde_json::from_value::<WebhookAction>(
            serde_json::json!({"url": "https://a.example", "retry": [3, 100]}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("must be an object"), "{e}");
        let ok = serde_json::from_value::<WebhookAction>(
            serde_json::json!({"url": "https://a.example", "retry": {"attempts": 3}}),
        )
        .unwrap();
        assert_eq!(ok.retry.unwrap().attempts, Some(3));
        let e = serde_json::from_value::<HttpAction>(serde_json::json!({
            "connection": "con_01j0000000000000000000000a", "map": [["n", "$.a"]]
        }))
        .unwrap_err();
        assert!(e.to_string().contains("must be an object"), "{e}");
    }

    #[test]
    fn whole_numbers_may_be_written_with_a_fraction_of_zero() {
        let a: crate::actions::SqlAction = serde_json::from_value(serde_json::json!({
            "connection": "con_01j0000000000000000000000a", "query": "SELECT 1",
            "timeout_ms": 58.0, "max_rows": 3
        }))
        .unwrap();
        assert_eq!((a.timeout_ms, a.max_rows), (Some(58), Some(3)));
        for bad in [
            serde_json::json!(1.5),
            serde_json::json!(-1),
            serde_json::json!(1e300),
        ] {
            let e = serde_json::from_value::<crate::actions::SqlAction>(serde_json::json!({
                "connection": "con_01j0000000000000000000000a", "query": "SELECT 1",
                "max_rows": bad
            }))
            .unwrap_err();
            assert!(e.to_string().contains("whole number"), "{e}");
        }
    }
}
