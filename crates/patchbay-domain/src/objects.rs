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
}
