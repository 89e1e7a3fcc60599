//! Validation errors that name every offending field. Produced at the edge, rendered by the
//! server as the `errors` member of a problem document.

use serde::{Deserialize, Serialize};

/// One bad field: a dotted path such as `config.base_url` and a sentence saying what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

/// At most this many field errors are kept: a request with more is answered with the first
/// ones and a count of the rest, so a hostile body cannot make the answer larger than itself.
pub const MAX_FIELD_ERRORS: usize = 100;

/// Every field error found in one request, up to [`MAX_FIELD_ERRORS`]; validation collects
/// them instead of stopping at the first, so a client can fix a form in one round trip.
#[derive(Debug, Clone, Default, PartialEq, Eq, thiserror::Error)]
#[error("{} invalid field(s): {}{}", self.len(), summary(&self.errors), more(self.omitted))]
pub struct ValidationErrors {
    errors: Vec<FieldError>,
    omitted: usize,
}

fn summary(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(|e| format!("{}: {}", e.field, e.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

fn more(omitted: usize) -> String {
    if omitted == 0 {
        String::new()
    } else {
        format!("; and {omitted} more not listed")
    }
}

impl ValidationErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn single(field: impl Into<String>, reason: impl Into<String>) -> Self {
        let mut errors = Self::new();
        errors.push(field, reason);
        errors
    }

    pub fn push(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        if self.errors.len() < MAX_FIELD_ERRORS {
            self.errors.push(FieldError {
                field: field.into(),
                reason: reason.into(),
            });
        } else {
            self.omitted += 1;
        }
    }

    /// Puts `earlier`'s errors before these (as if they had been found first).
    pub fn prepend(&mut self, earlier: ValidationErrors) {
        let later = std::mem::replace(self, earlier);
        self.append(later);
    }

    /// Adds `later`'s errors after these.
    pub fn append(&mut self, later: ValidationErrors) {
        for e in later.errors {
            self.push(e.field, e.reason);
        }
        self.omitted += later.omitted;
    }

    /// The same errors with each field renamed by `rename` (a body that nests its fields
    /// differently from the one validated).
    pub fn renamed(mut self, rename: impl Fn(&str) -> String) -> Self {
        for e in &mut self.errors {
            e.field = rename(&e.field);
        }
        self
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// How many errors were found, listed or not.
    pub fn len(&self) -> usize {
        self.errors.len() + self.omitted
    }

    /// The errors listed.
    pub fn errors(&self) -> &[FieldError] {
        &self.errors
    }

    /// The errors listed, and how many more were found.
    pub fn into_parts(self) -> (Vec<FieldError>, usize) {
        (self.errors, self.omitted)
    }

    /// `Ok(value)` when nothing was collected, the collected errors otherwise.
    pub fn into_result<T>(self, value: T) -> Result<T, Self> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }

    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.errors.iter().map(|e| e.field.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_past_the_cap_are_counted_not_listed() {
        let mut e = ValidationErrors::new();
        for i in 0..MAX_FIELD_ERRORS + 250 {
            e.push(format!("f{i}"), "is bad");
        }
        assert_eq!(e.len(), MAX_FIELD_ERRORS + 250);
        assert_eq!(e.errors().len(), MAX_FIELD_ERRORS);
        let text = e.to_string();
        assert!(
            text.starts_with("350 invalid field(s): f0: is bad"),
            "{text}"
        );
        assert!(text.ends_with("; and 250 more not listed"), "{text}");
        let mut first = ValidationErrors::single("name", "is required");
        first.prepend(ValidationErrors::single("project", "is unknown"));
        assert_eq!(first.fields().collect::<Vec<_>>(), ["project", "name"]);
        let mut full = e.clone();
        full.prepend(ValidationErrors::single("early", "first"));
        assert_eq!(full.errors()[0].field, "early");
        assert_eq!(full.len(), MAX_FIELD_ERRORS + 251);
    }
}
