//! JSON Schemas that plugins supply (tool input and output schemas): checked
//! for size and complexity once at load, and applied where a costly one
//! cannot stall the protocol.
//!
//! A schema is the plugin's code running in ward, outside the sandbox, so:
//! - its size, nesting and patterns are capped (guarding the catalog every
//!   client lists and the validator's build);
//! - patterns run on the `regex` engine, whose matching time is linear in
//!   the input; jsonschema's default, `fancy-regex`, backtracks and takes
//!   exponential time on backreferences and look-around, which are refused
//!   instead;
//! - a schema with keywords that can make validation cost more than one pass
//!   over the value (combinators, references, patterns, ...) is applied on the
//!   blocking pool, at most [`VALIDATIONS_PER_PLUGIN`] at a time per plugin,
//!   and the call gives up after the plugin's `limits.timeout`. A validation
//!   that overruns runs on to its end on its blocking thread (jsonschema
//!   cannot be interrupted), holding one of its plugin's slots, never a
//!   protocol worker.

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::JsonObject;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::sandbox::policy::{format_duration, format_size};

/// The largest schema, as JSON text.
pub const MAX_SCHEMA_BYTES: usize = 128 * 1024;
/// The deepest nesting of JSON objects and arrays in a schema.
pub const MAX_SCHEMA_DEPTH: usize = 32;
/// The most regular expressions (`pattern` values, `patternProperties`
/// keys) in one schema.
pub const MAX_PATTERNS: usize = 100;
/// The longest regular expression, in bytes.
pub const MAX_PATTERN_LEN: usize = 1000;
/// Costly validations of one plugin running at once.
pub const VALIDATIONS_PER_PLUGIN: usize = 2;

/// Compiled size of one regular expression, and its lazy DFA's cache.
const REGEX_SIZE_LIMIT: usize = 1 << 20;
const REGEX_DFA_LIMIT: usize = 1 << 20;

/// Keywords whose validation may visit a value more than once, or run a
/// regular expression: a schema with any of them is applied off the
/// protocol's workers. Matching keys anywhere (a property named `format`
/// included) only errs on the safe side.
const COSTLY: &[&str] = &[
    "$ref",
    "$dynamicRef",
    "$recursiveRef",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "if",
    "contains",
    "dependentSchemas",
    "dependencies",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
    "uniqueItems",
    "pattern",
    "patternProperties",
    "format",
    "contentSchema",
];

/// A checked, compiled schema.
pub struct Schema {
    validator: jsonschema::Validator,
    costly: bool,
}

/// Parses, checks and compiles a schema; `what` names it in errors
/// ("input schema").
pub fn compile(text: &str, what: &str) -> anyhow::Result<(JsonObject, Arc<Schema>)> {
    anyhow::ensure!(
        text.len() <= MAX_SCHEMA_BYTES,
        "{what} is {} long; at most {} is accepted",
        format_size(text.len() as u64),
        format_size(MAX_SCHEMA_BYTES as u64)
    );
    let value: Value =
        serde_json::from_str(text).map_err(|e| anyhow::anyhow!("{what} is not JSON: {e}"))?;
    let mut shape = Shape::default();
    shape.walk(&value, 1);
    anyhow::ensure!(
        shape.depth <= MAX_SCHEMA_DEPTH,
        "{what} nests {} levels deep; at most {MAX_SCHEMA_DEPTH} are accepted",
        shape.depth
    );
    anyhow::ensure!(
        shape.patterns <= MAX_PATTERNS,
        "{what} has {} regular expressions; at most {MAX_PATTERNS} are accepted",
        shape.patterns
    );
    if let Some(long) = shape.long_pattern {
        anyhow::bail!("{what} has a regular expression of {long} bytes; at most {MAX_PATTERN_LEN} are accepted");
    }
    let Value::Object(object) = &value else {
        anyhow::bail!("{what} is not a JSON object")
    };
    let validator = jsonschema::options()
        .with_pattern_options(
            jsonschema::PatternOptions::regex()
                .size_limit(REGEX_SIZE_LIMIT)
                .dfa_size_limit(REGEX_DFA_LIMIT),
        )
        .build(&value)
        .map_err(|e| {
            anyhow::anyhow!(
                "{what} is not a valid JSON Schema, or uses a regular expression feature ward does not run \
                 (backreferences and look-around can take exponential time): {e}"
            )
        })?;
    Ok((
        object.clone(),
        Arc::new(Schema {
            validator,
            costly: shape.costly,
        }),
    ))
}

#[derive(Default)]
struct Shape {
    depth: usize,
    patterns: usize,
    long_pattern: Option<usize>,
    costly: bool,
}

impl Shape {
    fn walk(&mut self, value: &Value, depth: usize) {
        // serde_json's recursion limit (128) bounds the depth of this walk.
        match value {
            Value::Object(map) => {
                self.depth = self.depth.max(depth);
                for (key, v) in map {
                    self.costly |= COSTLY.contains(&key.as_str());
                    match (key.as_str(), v) {
                        ("pattern", Value::String(p)) => self.pattern(p),
                        ("patternProperties", Value::Object(ps)) => {
                            ps.keys().for_each(|p| self.pattern(p))
                        }
                        _ => {}
                    }
                    self.walk(v, depth + 1);
                }
            }
            Value::Array(items) => {
                self.depth = self.depth.max(depth);
                items.iter().for_each(|v| self.walk(v, depth + 1));
            }
            _ => {}
        }
    }

    fn pattern(&mut self, p: &str) {
        self.patterns += 1;
        if p.len() > MAX_PATTERN_LEN {
            self.long_pattern = Some(p.len());
        }
    }
}

/// A plugin's share of the blocking pool for costly validations.
pub fn validation_slots() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(VALIDATIONS_PER_PLUGIN))
}

impl Schema {
    /// Why `value` fails the schema, one line per problem naming the field
    /// (at most ten), or `None`. Errs when a costly schema takes longer than
    /// `timeout` (waiting for a slot included).
    pub async fn problems(
        self: &Arc<Self>,
        value: Arc<Value>,
        slots: &Arc<Semaphore>,
        timeout: Duration,
    ) -> Result<Option<String>, String> {
        if !self.costly {
            return Ok(self.problems_now(&value));
        }
        let schema = self.clone();
        let slots = slots.clone();
        let work = async move {
            let permit = slots.acquire_owned().await.expect("never closed");
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                schema.problems_now(&value)
            })
            .await
            .map_err(|e| format!("validation failed: {e}"))
        };
        tokio::time::timeout(timeout, work).await.unwrap_or_else(|_| {
            Err(format!(
                "checking the value against the plugin's schema took longer than {} (its `limits.timeout`); the schema is too costly to apply",
                format_duration(timeout)
            ))
        })
    }

    fn problems_now(&self, value: &Value) -> Option<String> {
        let problems: Vec<String> = self
            .validator
            .iter_errors(value)
            .take(10)
            .map(|e| {
                let at = e.instance_path().to_string();
                if at.is_empty() {
                    e.to_string()
                } else {
                    format!("{at}: {e}")
                }
            })
            .collect();
        (!problems.is_empty()).then(|| problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> String {
        match compile(text, "input schema") {
            Ok(_) => panic!("accepted: {text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn plain_schemas_are_checked_inline_and_others_are_costly() {
        let (_, s) = compile(
            r#"{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}"#,
            "input schema",
        )
        .unwrap();
        assert!(!s.costly);
        let (_, s) = compile(
            r#"{"type":"object","properties":{"name":{"type":"string","pattern":"^a+$"}}}"#,
            "input schema",
        )
        .unwrap();
        assert!(s.costly);
    }

    #[test]
    fn big_deep_and_pattern_heavy_schemas_are_refused() {
        let big = format!(
            r#"{{"type":"object","description":"{}"}}"#,
            "x".repeat(MAX_SCHEMA_BYTES)
        );
        assert!(
            refused(&big).contains("at most 128 KiB"),
            "{}",
            refused(&big)
        );
        let mut deep = r#"{"type":"string"}"#.to_string();
        for _ in 0..40 {
            deep = format!(r#"{{"type":"object","properties":{{"a":{deep}}}}}"#);
        }
        assert!(refused(&deep).contains("levels deep"));
        let many: Vec<String> = (0..=MAX_PATTERNS)
            .map(|i| format!(r#""^p{i}$":{{}}"#))
            .collect();
        let many = format!(
            r#"{{"type":"object","patternProperties":{{{}}}}}"#,
            many.join(",")
        );
        assert!(refused(&many).contains("regular expressions"));
        let long = format!(
            r#"{{"type":"string","pattern":"{}"}}"#,
            "a".repeat(MAX_PATTERN_LEN + 1)
        );
        assert!(refused(&long).contains("regular expression of"));
    }

    #[test]
    fn backtracking_features_are_refused() {
        let e = refused(
            r#"{"type":"object","properties":{"s":{"type":"string","pattern":"^(a|a)*\\1b$"}}}"#,
        );
        assert!(e.contains("backreferences"), "{e}");
        let e = refused(r#"{"type":"string","pattern":"a(?=b)"}"#);
        assert!(e.contains("look-around"), "{e}");
    }

    #[test]
    fn a_costly_validation_gives_up_at_the_timeout() {
        let (_, s) = compile(
            r##"{"$ref":"#/$defs/n","$defs":{"n":{"oneOf":[{"type":"array","items":{"$ref":"#/$defs/n"}},{"type":"array","items":{"$ref":"#/$defs/n"}}]}}}"##,
            "input schema",
        )
        .unwrap();
        // The runaway validation cannot be interrupted: leave its thread
        // behind rather than wait for it when the runtime shuts down.
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let slots = validation_slots();
            let start = std::time::Instant::now();
            let e = s
                .problems(Arc::new(json_nested(30)), &slots, Duration::from_millis(20))
                .await
                .unwrap_err();
            assert!(e.contains("longer than 20ms"), "{e}");
            assert!(start.elapsed() < Duration::from_secs(2));
            // A quick value still gets the other slot.
            let ok = s
                .problems(Arc::new(json_nested(1)), &slots, Duration::from_secs(20))
                .await
                .unwrap();
            assert!(ok.is_some(), "two identical oneOf branches never validate");
        });
        rt.shutdown_background();
    }

    fn json_nested(depth: usize) -> Value {
        let mut v = Value::Array(vec![]);
        for _ in 0..depth {
            v = Value::Array(vec![v]);
        }
        v
    }
}
