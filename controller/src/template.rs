//! Filling in command templates: `{name}` placeholders, escaped for where
//! they land.

/// How a value is escaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escape {
    /// Inside a JSON string (without the quotes).
    Json,
    /// In a URL path segment.
    Path,
}

/// Replaces every `{name}` with its value; an unknown name is left as it is.
pub fn render(template: &str, values: &[(&str, &str)], escape: Escape) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find('}').map(|end| (&after[..end], end)) {
            Some((name, end)) if values.iter().any(|(n, _)| *n == name) => {
                let value = values
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| *v)
                    .unwrap_or("");
                out.push_str(&match escape {
                    Escape::Json => json_escape(value),
                    Escape::Path => path_escape(value),
                });
                rest = &after[end + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn json_escape(value: &str) -> String {
    let quoted = serde_json::to_string(value).unwrap_or_default();
    quoted[1..quoted.len() - 1].to_owned()
}

fn path_escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_and_escaped_for_their_place() {
        let values = [("id", "a b/c"), ("password", "p\"q\\\\r")];
        assert_eq!(
            render("/pbxes/{id}/power", &values, Escape::Path),
            "/pbxes/a%20b%2Fc/power"
        );
        assert_eq!(
            render(
                r#"{"password":"{password}","n":{id}}"#,
                &values,
                Escape::Json
            ),
            r#"{"password":"p\"q\\\\r","n":a b/c}"#
        );
        assert_eq!(render("{unknown} {", &values, Escape::Json), "{unknown} {");
    }
}
