//! Matching URIs against RFC 6570 templates (the forms MCP servers use).

/// The variables a URI matched, handed to a resource template's handler.
#[derive(Debug, Clone, Default)]
pub struct Vars {
    uri: String,
    vars: Vec<(String, String)>,
}

impl Vars {
    /// The URI that was read.
    pub fn uri(&self) -> &str {
        &self.uri
    }
    /// The value of variable `name` (percent-decoded), if the template has it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
    /// All variables, in template order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
}

impl std::ops::Index<&str> for Vars {
    type Output = str;
    /// The value of a variable of the template. Panics for a name the
    /// template does not have.
    fn index(&self, name: &str) -> &str {
        self.get(name).unwrap_or_else(|| panic!("the URI template has no variable `{name}`"))
    }
}

#[derive(Debug)]
enum Part<'a> {
    Lit(&'a str),
    /// `{name}`: one segment (no `/`, `?`, `#`); `{+name}`: anything.
    Var { name: &'a str, reserved: bool },
}

fn parse(template: &str) -> Option<Vec<Part<'_>>> {
    let mut parts = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        match rest.find('{') {
            Some(0) => {
                let end = rest.find('}')?;
                let inner = &rest[1..end];
                let (reserved, name) = match inner.strip_prefix('+').or_else(|| inner.strip_prefix('#')) {
                    Some(name) => (true, name),
                    None => (false, inner),
                };
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
                    return None; // operators and lists beyond {var} and {+var} are not supported
                }
                parts.push(Part::Var { name, reserved });
                rest = &rest[end + 1..];
            }
            Some(i) => {
                parts.push(Part::Lit(&rest[..i]));
                rest = &rest[i..];
            }
            None => {
                parts.push(Part::Lit(rest));
                rest = "";
            }
        }
    }
    Some(parts)
}

fn match_parts<'u>(parts: &[Part<'_>], uri: &'u str, out: &mut Vec<&'u str>) -> bool {
    match parts.split_first() {
        None => uri.is_empty(),
        Some((Part::Lit(lit), rest)) => uri.strip_prefix(lit).is_some_and(|u| match_parts(rest, u, out)),
        Some((Part::Var { reserved, .. }, rest)) => {
            // Longest first, never empty.
            let limit = if *reserved { uri.len() } else { uri.find(['/', '?', '#']).unwrap_or(uri.len()) };
            let mut ends: Vec<usize> = uri[..limit].char_indices().map(|(i, c)| i + c.len_utf8()).collect();
            ends.reverse();
            for end in ends {
                out.push(&uri[..end]);
                if match_parts(rest, &uri[end..], out) {
                    return true;
                }
                out.pop();
            }
            false
        }
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Matches `uri` against `template` (RFC 6570 level 1 `{var}`, plus `{+var}`
/// and `{#var}` which may span `/`). Returns the variables, or `None`.
pub(crate) fn match_uri(template: &str, uri: &str) -> Option<Vars> {
    let parts = parse(template)?;
    let mut found = Vec::new();
    if !match_parts(&parts, uri, &mut found) {
        return None;
    }
    let names: Vec<&str> = parts
        .iter()
        .filter_map(|p| match p {
            Part::Var { name, .. } => Some(*name),
            Part::Lit(_) => None,
        })
        .collect();
    let vars = names.iter().zip(found).map(|(n, v)| (n.to_string(), percent_decode(v))).collect();
    Some(Vars { uri: uri.to_owned(), vars })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches() {
        let v = match_uri("test://template/{id}/data", "test://template/42/data").unwrap();
        assert_eq!(&v["id"], "42");
        assert!(match_uri("test://template/{id}/data", "test://template/4/2/data").is_none());
        assert!(match_uri("test://template/{id}/data", "test://template//data").is_none());
        let v = match_uri("file:///{+path}", "file:///a/b%20c.txt").unwrap();
        assert_eq!(&v["path"], "a/b c.txt");
        let v = match_uri("x://{a}-{b}", "x://1-2-3").unwrap();
        assert_eq!((&v["a"], &v["b"]), ("1-2", "3"));
    }
}
