//! `IMDB_F32_INFERENCE`: the user's choice of inference precision, read here and passed to the
//! libraries through their API (the model crate reads no environment).

use imdb_model::InferencePrecision;

use crate::error::XtaskError;

/// The environment variable that selects [`InferencePrecision::F32`].
pub const VARIABLE: &str = "IMDB_F32_INFERENCE";

/// Reads a value of [`VARIABLE`]: `1`/`true`/`yes` for f32, `0`/`false`/`no` or empty for the
/// default.
pub fn parse(value: &str) -> Result<InferencePrecision, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" => Ok(InferencePrecision::F32),
        "" | "0" | "false" | "no" => Ok(InferencePrecision::Fast),
        other => Err(format!(
            "{VARIABLE}={other:?} is not understood: set it to 1 for exact f32 inference, or to 0 \
             (or leave it unset) for the default"
        )),
    }
}

/// The precision the environment asks for; an unreadable value is a usage error.
pub fn from_env() -> Result<InferencePrecision, XtaskError> {
    match std::env::var(VARIABLE) {
        Ok(value) => parse(&value).map_err(XtaskError::Usage),
        Err(_) => Ok(InferencePrecision::Fast),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use InferencePrecision::{F32, Fast};

    #[test]
    fn reads_its_variable() {
        for (value, want) in [
            ("1", F32),
            (" TRUE ", F32),
            ("yes", F32),
            ("0", Fast),
            ("", Fast),
        ] {
            assert_eq!(parse(value), Ok(want), "{value:?}");
        }
        let message = parse("exact").unwrap_err();
        assert!(
            message.contains(VARIABLE) && message.contains('1'),
            "{message}"
        );
    }
}
