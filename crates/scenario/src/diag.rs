//! Diagnostics: an error message tied to a place in a scenario file,
//! rendered the way rustc renders its errors so that it reads familiar.

use std::fmt;
use std::path::Path;

use crate::ast::Span;

/// An error in a scenario file, ready to show to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based; 0 when the error is not about a place in the file (I/O).
    pub line: u32,
    /// 1-based, counting characters; 0 when `line` is 0.
    pub col: u32,
    /// Number of characters to underline (at least one caret is drawn).
    pub len: u32,
    pub message: String,
    /// The text of line `line`, without its line terminator.
    pub source_line: String,
}

impl Diagnostic {
    /// An error at `span` in `source`, quoting the offending line.
    pub fn new(file: &str, source: &str, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_string(),
            line: span.line,
            col: span.col,
            len: span.len,
            message: message.into(),
            source_line: line_text(source, span.line).to_string(),
        }
    }

    /// The file could not be read at all, so there is no place to point at.
    pub fn io(path: &Path, err: &std::io::Error) -> Self {
        let file = path.display().to_string();
        Diagnostic {
            message: format!("cannot read {file}: {err}"),
            file,
            line: 0,
            col: 0,
            len: 0,
            source_line: String::new(),
        }
    }
}

/// Line `line` (1-based) of `source`, without `\n` or `\r\n`; empty when
/// out of range (e.g. an error at the end of a file ending in a newline).
fn line_text(source: &str, line: u32) -> &str {
    let Some(index) = (line as usize).checked_sub(1) else {
        return "";
    };
    let text = source.split('\n').nth(index).unwrap_or("");
    text.strip_suffix('\r').unwrap_or(text)
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", self.message)?;
        if self.line == 0 {
            return write!(f, " --> {}", self.file);
        }
        let number = self.line.to_string();
        let pad = " ".repeat(number.chars().count());
        writeln!(f, "{pad}--> {}:{}:{}", self.file, self.line, self.col)?;
        writeln!(f, "{pad} |")?;
        if self.source_line.is_empty() {
            writeln!(f, "{number} |")?;
        } else {
            writeln!(f, "{number} | {}", self.source_line)?;
        }
        let carets = "^".repeat(self.len.max(1) as usize);
        write!(f, "{pad} | {}{carets}", self.indent())
    }
}

impl Diagnostic {
    /// Whitespace that puts the carets under column `col`: tabs in the
    /// quoted line are copied so that the carets line up in a terminal.
    fn indent(&self) -> String {
        let width = self.col.saturating_sub(1) as usize;
        let mut chars = self.source_line.chars();
        (0..width)
            .map(|_| match chars.next() {
                Some('\t') => '\t',
                _ => ' ',
            })
            .collect()
    }
}

impl std::error::Error for Diagnostic {}

/// An error inside the parser or checker, before it is attached to a file.
/// Kept separate from [`Diagnostic`] so that the inner passes need not
/// carry the file name and source text around.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Error {
    pub span: Span,
    pub message: String,
}

impl Error {
    pub fn new(span: Span, message: impl Into<String>) -> Self {
        Error {
            span,
            message: message.into(),
        }
    }

    pub fn into_diagnostic(self, file: &str, source: &str) -> Diagnostic {
        Diagnostic::new(file, source, self.span, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_matches_rustc_layout() {
        let src = "machine numa-nodes=2\n\nprocess a {\n\tthread user node=3 { read(p) }\n}\n";
        let d = Diagnostic::new("x.txt", src, Span::new(4, 14, 6), "bad node");
        let want = "error: bad node\n --> x.txt:4:14\n  |\n4 | \tthread user node=3 { read(p) }\n  | \t            ^^^^^^";
        assert_eq!(d.to_string(), want);
    }

    #[test]
    fn zero_length_spans_get_one_caret_and_missing_lines_are_empty() {
        let d = Diagnostic::new("f", "a\n", Span::new(2, 1, 0), "eof");
        assert_eq!(d.source_line, "");
        assert!(d.to_string().ends_with("2 |\n  | ^"));
    }

    #[test]
    fn crlf_is_stripped_from_the_quoted_line() {
        let d = Diagnostic::new("f", "ab\r\ncd\r\n", Span::new(1, 2, 1), "m");
        assert_eq!(d.source_line, "ab");
    }

    #[test]
    fn io_errors_have_no_location() {
        let err = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let d = Diagnostic::io(Path::new("/nope.txt"), &err);
        assert_eq!((d.line, d.col), (0, 0));
        assert_eq!(d.message, "cannot read /nope.txt: gone");
        assert_eq!(
            d.to_string(),
            "error: cannot read /nope.txt: gone\n --> /nope.txt"
        );
    }
}
