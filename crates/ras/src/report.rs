//! One line per failed command: what `ras` prints when a command fails.
//!
//! A library error often prints its cause in its own message *and* keeps it
//! as its source (thiserror does both for a field named `source`), and a
//! `.context()` adds one more link: printed link by link that repeats the
//! cause ("installing x: y: z" then "Caused by: z"). [`one_line`] folds the
//! chain into one message, leaving out every link whose text the message
//! already holds, so each cause is said once.

/// The error as one line: its chain joined with ": ", without repeats and
/// without line breaks.
pub fn one_line(error: anyhow::Error) -> anyhow::Error {
    let mut message = String::new();
    for link in error.chain() {
        let text = link.to_string();
        let text = text.trim();
        if text.is_empty() || message.contains(text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(text);
    }
    anyhow::anyhow!(message.replace(['\r', '\n'], " "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    /// Like a thiserror type with `#[error("{path}: {source}")]`.
    #[derive(Debug)]
    struct Embeds {
        path: String,
        source: std::io::Error,
    }

    impl std::fmt::Display for Embeds {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{}: {}", self.path, self.source)
        }
    }

    impl std::error::Error for Embeds {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.source)
        }
    }

    #[test]
    fn each_cause_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e: anyhow::Result<()> = Err(Embeds {
            path: "/x".into(),
            source: io,
        })
        .context("installing p");
        let raw = format!("{:#}", e.as_ref().unwrap_err());
        assert_eq!(
            raw, "installing p: /x: no such file: no such file",
            "the repeat this removes"
        );
        let folded = one_line(e.unwrap_err());
        assert_eq!(folded.to_string(), "installing p: /x: no such file");
        assert_eq!(folded.chain().count(), 1);
    }
}
