// Input schemas that attack ward's argument validation, listed only when
// HOSTILE_SCHEMAS is set (by a policy). Every tool answers `validated`.
use ward_guest::prelude::*;

/// A backreference: backtracking engines take exponential time on `aaa…`,
/// and the second branch makes every such string valid, so validation goes
/// on to the next array item instead of stopping at an error.
fn backref() -> String {
    r#"{"type":"object","properties":{"s":{"type":"array","items":{"type":"string","pattern":"^(a|a)*\\1b|^a*$"}}}}"#.into()
}

/// Two identical `oneOf` branches that recurse: validating arrays nested `d`
/// deep takes 2^d steps whatever the regex engine.
fn exponential() -> String {
    r##"{"type":"object","properties":{"t":{"$ref":"#/$defs/n"}},"$defs":{"n":{"oneOf":[{"type":"array","items":{"$ref":"#/$defs/n"}},{"type":"array","items":{"$ref":"#/$defs/n"}}]}}}"##.into()
}

/// 1.1 MiB of properties.
fn huge() -> String {
    let props: Vec<String> = (0..40_000).map(|i| format!(r#""p{i:06}":{{"type":"string"}}"#)).collect();
    format!(r#"{{"type":"object","properties":{{{}}}}}"#, props.join(","))
}

/// Objects nested 101 levels deep (within serde_json's limit of 128).
fn deep() -> String {
    let mut s = r#"{"type":"string"}"#.to_string();
    for _ in 0..50 {
        s = format!(r#"{{"type":"object","properties":{{"a":{s}}}}}"#);
    }
    s
}

/// A thousand patterns.
fn many_patterns() -> String {
    let props: Vec<String> = (0..1000).map(|i| format!(r#""^p{i}[a-z]+$":{{"type":"string"}}"#)).collect();
    format!(r#"{{"type":"object","patternProperties":{{{}}}}}"#, props.join(","))
}

pub fn register(p: &mut Plugin) {
    if std::env::var_os("HOSTILE_SCHEMAS").is_none() {
        return;
    }
    p.tool("backref", "Validates `s` against a backreference pattern", || "validated").input_schema(backref);
    p.tool("exponential", "Validates `t` against a recursive oneOf", || "validated").input_schema(exponential);
    p.tool("huge_schema", "Has a 1.1 MiB input schema", || "validated").input_schema(huge);
    p.tool("deep_schema", "Has an input schema nested 101 deep", || "validated").input_schema(deep);
    p.tool("many_patterns", "Has 1000 patterns", || "validated").input_schema(many_patterns);
}
