//! Validation errors that point at the field that caused them.

use std::fmt;

/// One problem with one field of a resource, such as `spec.schedule: the minute field "61" is
/// invalid`.
///
/// The engine validates what the CRD schema and CEL rules cannot (cron expressions, time zone
/// names) and repeats what they can, because `kubectl patchwave validate` runs offline without
/// an API server. The field path lets both report the error against the line a person has to
/// fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the offending field from the resource root, for example `spec.schedule`.
    pub field: String,
    /// What is wrong and, where possible, what would be right.
    pub message: String,
}

impl FieldError {
    /// A field error for `field` saying `message`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for FieldError {}
