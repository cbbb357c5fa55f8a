//! Splitting a custom action's parameter string into arguments.
//!
//! The seed: "Use quotes only when a parameter contains spaces". Tokens
//! are separated by spaces or tabs; a double-quoted run keeps its spaces
//! (the quotes are removed); `""` inside quotes is a literal quote. Macros
//! are expanded per token afterwards, so a value with spaces stays one
//! argument and can never add arguments of its own.

/// The tokens of `text`.
pub fn split(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut in_token = false;
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                current.push('"');
            }
            '"' => {
                quoted = !quoted;
                in_token = true;
            }
            ' ' | '\t' if !quoted => {
                if in_token {
                    tokens.push(std::mem::take(&mut current));
                    in_token = false;
                }
            }
            c => {
                current.push(c);
                in_token = true;
            }
        }
    }
    if in_token {
        tokens.push(current);
    }
    tokens
}

/// The first token and the rest of the string after it (for a DLL action:
/// the entry point, then `pszCommandLine`).
pub fn first_token(text: &str) -> Option<(String, &str)> {
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return None;
    }
    let end = if let Some(stripped) = trimmed.strip_prefix('"') {
        stripped.find('"').map_or(trimmed.len(), |i| i + 2)
    } else {
        trimmed.find([' ', '\t']).unwrap_or(trimmed.len())
    };
    let token = trimmed[..end].trim_matches('"').to_owned();
    Some((token, trimmed[end..].trim_start()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_group_and_are_removed() {
        assert_eq!(
            split(r#"a "b c"  d"" "say ""hi""" """#),
            vec!["a", "b c", "d", r#"say "hi""#, ""]
        );
        assert!(split("  \t ").is_empty());
        assert_eq!(split(r#""unterminated x"#), vec!["unterminated x"]);
    }

    #[test]
    fn first_token_splits_off_the_entry_point() {
        assert_eq!(
            first_token("  SetRoutes /STATIC_FILE_NAME add.txt"),
            Some(("SetRoutes".to_string(), "/STATIC_FILE_NAME add.txt"))
        );
        assert_eq!(first_token("\"Fn\"  x"), Some(("Fn".to_string(), "x")));
        assert_eq!(first_token("Only"), Some(("Only".to_string(), "")));
        assert_eq!(first_token("   "), None);
    }
}
