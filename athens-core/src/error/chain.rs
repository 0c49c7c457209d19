//! One way to print an error with its causes, for logs and the CLI.

use std::error::Error;
use std::fmt;

/// Displays an error and its [`source`](Error::source) chain on one line, `top: cause: root`.
///
/// A cause whose words the line already holds is skipped: adapters often repeat their cause's
/// message in their own, and each level is printed once. Use it for every log field and user
/// message that shows an error: `warn!(error = %ErrorChain(&error), "...")`.
#[derive(Clone, Copy)]
pub struct ErrorChain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut line = self.0.to_string();
        let mut cause = self.0.source();
        while let Some(error) = cause {
            let text = error.to_string();
            if !line.contains(&text) {
                line.push_str(": ");
                line.push_str(&text);
            }
            cause = error.source();
        }
        f.write_str(&line)
    }
}

impl fmt::Debug for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;
    use crate::{IndexError, SearchError, SourceError};

    #[test]
    fn prints_every_level_once() {
        let root = io::Error::new(io::ErrorKind::ConnectionRefused, "connection refused");
        let error = SourceError::unavailable("cannot poll changes").with_source(root);
        assert_eq!(
            ErrorChain(&error).to_string(),
            "source unavailable: cannot poll changes: connection refused"
        );
        assert_eq!(error.to_string(), "source unavailable: cannot poll changes");
    }

    #[test]
    fn skips_a_cause_the_message_already_holds() {
        let root = io::Error::other("tcp reset");
        let middle = SourceError::invalid("bad row").with_source(root);
        let top = IndexError::rejected(format!("refused: {middle}")).with_source(middle);
        assert_eq!(
            ErrorChain(&top).to_string(),
            "index rejected the request: refused: source returned invalid data: bad row: tcp reset"
        );
    }

    #[test]
    fn search_errors_keep_the_index_error_cause() {
        let root = io::Error::other("socket closed");
        let unavailable = SearchError::from(IndexError::unavailable("no answer").with_source(root));
        assert_eq!(unavailable.to_string(), "search unavailable: no answer");
        let cause = unavailable
            .source()
            .and_then(|c| c.downcast_ref::<io::Error>());
        assert_eq!(
            cause.map(io::Error::to_string).as_deref(),
            Some("socket closed")
        );

        let root = io::Error::other("mapping parse error");
        let internal = SearchError::from(IndexError::rejected("bad mapping").with_source(root));
        let index = internal
            .source()
            .and_then(|c| c.downcast_ref::<IndexError>());
        assert!(
            matches!(index, Some(IndexError::Rejected { .. })),
            "{internal:?}"
        );
        assert_eq!(
            ErrorChain(&internal).to_string(),
            "search failed: index rejected the request: bad mapping: mapping parse error"
        );
    }
}
