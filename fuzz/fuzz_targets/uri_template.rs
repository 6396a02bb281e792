//! Two URI templates and a URI, from one input split at NUL bytes. Whatever
//! the text, parsing and matching never panic, and the squatting check is
//! sound: if one URI matches both templates, `overlaps` says so both ways,
//! so a plugin can never catch another's URIs through a template the
//! registry let through.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ward::registry::UriTemplate;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(3, '\0');
    let (Some(a), Some(b), Some(uri)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    let (Ok(a), Ok(b)) = (UriTemplate::parse_any(a), UriTemplate::parse_any(b)) else {
        return;
    };
    if a.matches(uri) && b.matches(uri) {
        assert!(a.overlaps(&b), "{a:?} and {b:?} both match {uri:?}");
        assert!(b.overlaps(&a), "{b:?} and {a:?} both match {uri:?}");
    }
    // The stricter parse (the scheme and authority rules) never panics either.
    let _ = UriTemplate::parse(a.as_str());
});
