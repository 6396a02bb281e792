//! RFC 6570 URI templates as ward routes them: which URIs a template
//! matches, and whether two templates could ever match the same URI.
//!
//! Every URI a plugin answers for is one it listed. A template that could
//! catch another plugin's URIs would let it read the URIs (and answer for
//! them), so templates must begin with a literal scheme (and a literal
//! authority, for `scheme://` URIs), and the registry refuses any template
//! or fixed URI that [`UriTemplate::overlaps`] one of another plugin's.
//! The overlap test is conservative: two templates whose literal prefixes
//! and suffixes are compatible are taken to overlap.

use regex::Regex;

/// The longest template ward accepts, in bytes.
pub const MAX_TEMPLATE_LEN: usize = 1024;

/// A parsed URI template (or a fixed URI: a template without expressions).
///
/// Public for fuzzing: for any templates `a`, `b` and URI `u`,
/// `a.matches(u) && b.matches(u)` implies `a.overlaps(&b)`.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct UriTemplate {
    text: String,
    /// `text[..prefix]` is the literal text before the first expression.
    prefix: usize,
    /// `text[suffix..]` is the literal text after the last expression.
    suffix: usize,
    /// No expressions: the template is one URI.
    fixed: bool,
    pattern: Regex,
}

impl UriTemplate {
    /// Parses a template a plugin listed, refusing one that could catch URIs
    /// of any scheme or authority. The error says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let template = Self::parse_any(text)?;
        let literal = &text[..template.prefix];
        let Some(colon) = literal.find(':').filter(|&i| is_scheme(&literal[..i])) else {
            return Err(if template.prefix == 0 {
                "it starts with an expression; a template must start with a literal scheme (such as `notes://`), so that it cannot catch other plugins' URIs".into()
            } else {
                "it has no literal scheme (such as `notes:`) before its first expression, so it could catch other plugins' URIs".into()
            });
        };
        if let Some(after) = literal[colon + 1..].strip_prefix("//") {
            // The authority ends at the first `/`, `?` or `#`; that end must
            // be literal too, or the expression could extend the authority.
            if !template.fixed && !after.contains(['/', '?', '#']) {
                return Err(
                    "its authority (after `//`) is not wholly literal, so it could catch other plugins' URIs; write the host part out, as in `notes://local/{id}`".into(),
                );
            }
        }
        Ok(template)
    }

    /// Parses any well-formed template, a fixed URI included, without the
    /// scheme rule (for fixed resource URIs, which match only themselves).
    pub fn parse_any(text: &str) -> Result<Self, String> {
        if text.len() > MAX_TEMPLATE_LEN {
            return Err(format!(
                "it is {} bytes long; at most {MAX_TEMPLATE_LEN}",
                text.len()
            ));
        }
        let mut pattern = String::from("^");
        let mut rest = text;
        let mut first: Option<usize> = None;
        let mut last_end = 0;
        while let Some(open) = rest.find('{') {
            pattern.push_str(&regex::escape(&rest[..open]));
            let at = text.len() - rest.len() + open;
            first.get_or_insert(at);
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| format!("unclosed `{{` at byte {at}"))?
                + open;
            let expr = &rest[open + 1..close];
            if expr.is_empty() {
                return Err(format!("empty expression `{{}}` at byte {at}"));
            }
            if expr.contains('{') {
                return Err(format!("`{{` inside the expression at byte {at}"));
            }
            pattern.push_str(match expr.as_bytes()[0] {
                b'+' | b'#' | b'?' | b'&' => "(.*)",
                _ => "([^/?#]*)",
            });
            rest = &rest[close + 1..];
            last_end = text.len() - rest.len();
        }
        pattern.push_str(&regex::escape(rest));
        pattern.push('$');
        let pattern = Regex::new(&pattern).map_err(|e| e.to_string())?;
        Ok(Self {
            text: text.to_string(),
            prefix: first.unwrap_or(text.len()),
            suffix: last_end,
            fixed: first.is_none(),
            pattern,
        })
    }

    /// The template as listed.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `uri` is one of this template's URIs. `{var}` matches one
    /// path segment, `{+var}`, `{#var}`, `{?var}` and `{&var}` anything.
    pub fn matches(&self, uri: &str) -> bool {
        if self.fixed {
            uri == self.text
        } else {
            uri.starts_with(&self.text[..self.prefix]) && self.pattern.is_match(uri)
        }
    }

    /// Whether some URI could match both templates. Exact when either is a
    /// fixed URI; otherwise conservative: `false` only when their literal
    /// prefixes or their literal suffixes exclude each other.
    pub fn overlaps(&self, other: &UriTemplate) -> bool {
        if self.fixed {
            return other.matches(&self.text);
        }
        if other.fixed {
            return self.matches(&other.text);
        }
        let (a, b) = (&self.text[..self.prefix], &other.text[..other.prefix]);
        if !(a.starts_with(b) || b.starts_with(a)) {
            return false;
        }
        let (a, b) = (&self.text[self.suffix..], &other.text[other.suffix..]);
        a.ends_with(b) || b.ends_with(a)
    }
}

/// RFC 3986: `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`.
fn is_scheme(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> UriTemplate {
        UriTemplate::parse(s).unwrap()
    }

    #[test]
    fn templates_match_their_uris() {
        let p = t("test://template/{id}/data");
        assert!(p.matches("test://template/42/data"));
        assert!(!p.matches("test://template/4/2/data"));
        assert!(!p.matches("test://template/42/data/x"));
        let p = t("file:///{+path}");
        assert!(p.matches("file:///a/b/c.txt"));
        assert!(UriTemplate::parse("x://{").is_err());
        assert!(UriTemplate::parse("x://a/{}").is_err());
        let fixed = UriTemplate::parse_any("test://static-text").unwrap();
        assert!(fixed.matches("test://static-text"));
        assert!(!fixed.matches("test://static-tex"));
    }

    #[test]
    fn catch_alls_are_refused() {
        for bad in [
            "{+u}",
            "{u}",
            "{+scheme}://x",
            "test://{+u}",
            "test://{host}/data",
            "test://host{x}/data",
            "1x:{u}",
            "/path/{u}",
        ] {
            assert!(UriTemplate::parse(bad).is_err(), "{bad}");
        }
        for good in [
            "test://template/{id}/data",
            "file:///{+p}",
            "urn:x:{id}",
            "notes://h?{q}",
        ] {
            assert!(UriTemplate::parse(good).is_ok(), "{good}");
        }
        assert!(UriTemplate::parse(&format!("x://a/{}", "b".repeat(MAX_TEMPLATE_LEN))).is_err());
    }

    #[test]
    fn overlaps_are_found_by_prefix_and_suffix() {
        let conformance = t("test://template/{id}/data");
        assert!(t("test://template/{+u}").overlaps(&conformance));
        // `test://template/x/data` matches both.
        assert!(conformance.overlaps(&t("test://template/x/{y}")));
        assert!(!t("test://other/{id}").overlaps(&conformance));
        assert!(!t("test://template/{id}/info").overlaps(&conformance));
        assert!(t("test://template/{a}/{b}").overlaps(&conformance));
        let fixed = UriTemplate::parse_any("test://template/7/data").unwrap();
        assert!(fixed.overlaps(&conformance) && conformance.overlaps(&fixed));
        let other = UriTemplate::parse_any("test://static-text").unwrap();
        assert!(!other.overlaps(&conformance));
        assert!(other.overlaps(&other.clone()));
    }

    #[test]
    fn disjoint_means_no_common_uri() {
        let templates = [
            "a://x/{p}",
            "a://x/{+p}",
            "a://x/{p}/y",
            "a://x/y{p}",
            "a://x/{p}z",
            "a://xy/{p}",
            "a:{p}",
        ];
        let uris = [
            "a://x/",
            "a://x/y",
            "a://x/yz",
            "a://x/q/y",
            "a://xy/z",
            "a://x/y/z",
            "a:q",
        ];
        for a in templates {
            for b in templates {
                let (ta, tb) = (
                    UriTemplate::parse_any(a).unwrap(),
                    UriTemplate::parse_any(b).unwrap(),
                );
                for u in uris {
                    if ta.matches(u) && tb.matches(u) {
                        assert!(ta.overlaps(&tb), "{a} and {b} both match {u}");
                    }
                }
            }
        }
    }
}
