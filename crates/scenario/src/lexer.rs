//! Turns source text into tokens.
//!
//! The lexer is deliberately context-free and dumb: a "word" is any run of
//! ASCII letters, digits and `_`, and punctuation is one token each. Names
//! that contain `-`, `.` or `+` (machine settings like `numa-nodes`, profile
//! names like `linux-6.1.159`) are glued back together by the parser from
//! tokens that touch each other, which keeps `p-4096` an expression while
//! still allowing `xen-pv`. Numbers are also words; the parser decides
//! whether a word is a number, a name or part of a profile name.
//!
//! Newlines are tokens because they end statements and top-level items.
//! Lexing never fails: problems become [`Tok::Error`] (after which the token
//! stream ends) or [`Tok::Unknown`], and the parser reports them when it
//! reaches them, so the first problem in the file is the one reported.

use crate::ast::Span;

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    /// A run of `[A-Za-z0-9_]`: a name, a keyword or a number literal.
    Word(String),
    /// A `"..."` string, with escapes resolved.
    Str(String),
    LParen,
    RParen,
    LBrace,
    RBrace,
    Comma,
    Eq,
    Pipe,
    Plus,
    Minus,
    Colon,
    Semi,
    Dot,
    DotDot,
    /// `=>`: what a statement is expected to do.
    FatArrow,
    Newline,
    /// A character that starts no token.
    Unknown(char),
    /// A malformed token (e.g. an unterminated string); the message says why.
    Error(String),
    Eof,
}

/// A token and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub span: Span,
}

impl Tok {
    /// How the token is named in "found ..." messages.
    pub fn describe(&self) -> String {
        match self {
            Tok::Word(w) => format!("'{w}'"),
            Tok::Str(s) => format!("string \"{s}\""),
            Tok::Newline => "newline".to_string(),
            Tok::Eof => "end of file".to_string(),
            Tok::Unknown(c) => format!("'{}'", c.escape_default()),
            Tok::Error(_) => "an invalid token".to_string(),
            punct => format!("'{}'", punct.punct_text()),
        }
    }

    /// The source text of a punctuation token, used to glue names.
    pub fn punct_text(&self) -> &'static str {
        match self {
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::Comma => ",",
            Tok::Eq => "=",
            Tok::Pipe => "|",
            Tok::Plus => "+",
            Tok::Minus => "-",
            Tok::Colon => ":",
            Tok::Semi => ";",
            Tok::Dot => ".",
            Tok::DotDot => "..",
            Tok::FatArrow => "=>",
            _ => "",
        }
    }
}

/// Splits `src` into tokens. The result always ends with [`Tok::Eof`].
pub(crate) fn lex(src: &str) -> Vec<Token> {
    let mut lexer = Lexer {
        chars: src.chars().collect(),
        pos: 0,
        line: 1,
        col: 1,
        last_newline: None,
        tokens: Vec::new(),
    };
    lexer.run();
    lexer.tokens
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
    line: u32,
    col: u32,
    /// Where the most recent newline was, to place end-of-file errors at the
    /// end of the last line rather than on an empty line after it.
    last_newline: Option<Span>,
    tokens: Vec<Token>,
}

impl Lexer {
    fn run(&mut self) {
        while let Some(c) = self.peek(0) {
            if !self.token(c) {
                break;
            }
        }
        let span = self.eof_span();
        self.tokens.push(Token {
            tok: Tok::Eof,
            span,
        });
    }

    /// Lexes one token (or skips blanks/comments) starting with `c`.
    /// Returns false when lexing must stop because of an error token.
    fn token(&mut self, c: char) -> bool {
        let start = self.here();
        match c {
            ' ' | '\t' | '\r' => {
                self.bump();
            }
            '#' => self.skip_comment(),
            '\n' => {
                self.bump();
                self.last_newline = Some(start);
                self.push(Tok::Newline, start);
            }
            '"' => return self.string(start),
            c if is_word_char(c) => self.word(start),
            '.' if self.peek(1) == Some('.') => {
                self.bump();
                self.bump();
                self.push(Tok::DotDot, start);
            }
            '=' if self.peek(1) == Some('>') => {
                self.bump();
                self.bump();
                self.push(Tok::FatArrow, start);
            }
            c => {
                self.bump();
                self.push(punct(c), start);
            }
        }
        true
    }

    fn skip_comment(&mut self) {
        while self.peek(0).is_some_and(|c| c != '\n') {
            self.bump();
        }
    }

    fn word(&mut self, start: Span) {
        let mut text = String::new();
        while let Some(c) = self.peek(0).filter(|&c| is_word_char(c)) {
            text.push(c);
            self.bump();
        }
        self.push(Tok::Word(text), start);
    }

    /// Lexes a string literal; strings end on the same line. Returns false
    /// (and pushes an error token) if the string is malformed.
    fn string(&mut self, start: Span) -> bool {
        self.bump();
        let mut text = String::new();
        loop {
            match self.peek(0) {
                None | Some('\n') => {
                    let message =
                        "unterminated string; expected a closing '\"' before the end of the line";
                    self.push(Tok::Error(message.to_string()), start);
                    return false;
                }
                Some('"') => {
                    self.bump();
                    self.push(Tok::Str(text), start);
                    return true;
                }
                Some('\\') => {
                    if !self.escape(&mut text) {
                        return false;
                    }
                }
                Some(c) => {
                    text.push(c);
                    self.bump();
                }
            }
        }
    }

    /// Handles `\"` and `\\`; anything else is an error token, because
    /// finding substrings must match kernel messages exactly.
    fn escape(&mut self, text: &mut String) -> bool {
        let at = self.here();
        self.bump();
        match self.peek(0) {
            Some(c @ ('"' | '\\')) => {
                text.push(c);
                self.bump();
                true
            }
            other => {
                let shown = other.map_or(String::new(), |c| c.escape_default().to_string());
                let message = format!(
                    "unknown escape '\\{shown}' in string; only \\\" and \\\\ are supported"
                );
                self.tokens.push(Token {
                    tok: Tok::Error(message),
                    span: Span { len: 2, ..at },
                });
                false
            }
        }
    }

    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    fn bump(&mut self) {
        if let Some(c) = self.peek(0) {
            self.pos += 1;
            if c == '\n' {
                self.line = self.line.saturating_add(1);
                self.col = 1;
            } else {
                self.col = self.col.saturating_add(1);
            }
        }
    }

    /// A zero-length span at the current position.
    fn here(&self) -> Span {
        Span::new(self.line, self.col, 0)
    }

    /// Pushes a token that started at `start` and ends at the current
    /// position (tokens never span lines, except the newline itself).
    fn push(&mut self, tok: Tok, start: Span) {
        let len = if tok == Tok::Newline {
            1
        } else {
            self.col.saturating_sub(start.col)
        };
        self.tokens.push(Token {
            tok,
            span: Span { len, ..start },
        });
    }

    /// End of file is shown at the end of the last line when the file ends
    /// with a newline, which is where the missing text would go.
    fn eof_span(&self) -> Span {
        match self.last_newline {
            Some(newline) if self.col == 1 => Span { len: 1, ..newline },
            _ => Span::new(self.line, self.col, 1),
        }
    }
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn punct(c: char) -> Tok {
    match c {
        '(' => Tok::LParen,
        ')' => Tok::RParen,
        '{' => Tok::LBrace,
        '}' => Tok::RBrace,
        ',' => Tok::Comma,
        '=' => Tok::Eq,
        '|' => Tok::Pipe,
        '+' => Tok::Plus,
        '-' => Tok::Minus,
        ':' => Tok::Colon,
        ';' => Tok::Semi,
        '.' => Tok::Dot,
        other => Tok::Unknown(other),
    }
}

/// Parses an integer literal: decimal or `0x` hex, `_` allowed between
/// digits, with an optional `K`, `M` or `G` suffix (powers of 1024).
pub(crate) fn parse_int(text: &str) -> Result<u64, String> {
    let invalid = || {
        format!(
            "invalid integer literal '{text}'; expected decimal or 0x hex digits \
             with an optional K, M or G suffix"
        )
    };
    let (body, scale) = [('K', 10), ('M', 20), ('G', 30)]
        .into_iter()
        .find_map(|(suffix, shift)| text.strip_suffix(suffix).map(|b| (b, 1u64 << shift)))
        .unwrap_or((text, 1));
    let (digits, radix) = match body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (body, 10),
    };
    if !body.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(invalid());
    }
    let too_big = || format!("integer literal '{text}' does not fit in 64 bits");
    let mut value: u64 = 0;
    let mut seen_digit = false;
    for c in digits.chars().filter(|&c| c != '_') {
        let digit = c.to_digit(radix).ok_or_else(invalid)?;
        value = value
            .checked_mul(u64::from(radix))
            .and_then(|v| v.checked_add(u64::from(digit)))
            .ok_or_else(too_big)?;
        seen_digit = true;
    }
    if !seen_digit {
        return Err(invalid());
    }
    value.checked_mul(scale).ok_or_else(too_big)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<Tok> {
        lex(src).into_iter().map(|t| t.tok).collect()
    }

    fn word(w: &str) -> Tok {
        Tok::Word(w.to_string())
    }

    #[test]
    fn lexes_a_statement() {
        assert_eq!(
            kinds("p = mmap(NULL, 2M) # c\n"),
            vec![
                word("p"),
                Tok::Eq,
                word("mmap"),
                Tok::LParen,
                word("NULL"),
                Tok::Comma,
                word("2M"),
                Tok::RParen,
                Tok::Newline,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn ranges_and_profile_pieces() {
        assert_eq!(
            kinds("0..2M"),
            vec![word("0"), Tok::DotDot, word("2M"), Tok::Eof]
        );
        assert_eq!(
            kinds("linux-6.1:"),
            vec![
                word("linux"),
                Tok::Minus,
                word("6"),
                Tok::Dot,
                word("1"),
                Tok::Colon,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn spans_count_characters() {
        let toks = lex("é \"ü\" x");
        assert_eq!(toks[0].tok, Tok::Unknown('é'));
        assert_eq!(toks[1].span, Span::new(1, 3, 3));
        assert_eq!(toks[2].span, Span::new(1, 7, 1));
    }

    #[test]
    fn strings_handle_escapes_and_stop_at_newline() {
        assert_eq!(
            kinds(r#""a\"b\\""#),
            vec![Tok::Str("a\"b\\".to_string()), Tok::Eof]
        );
        let toks = lex("x \"abc\ny");
        assert!(matches!(toks[1].tok, Tok::Error(_)));
        assert_eq!(toks[1].span, Span::new(1, 3, 4));
        assert_eq!(toks.len(), 3, "lexing stops after an error");
        assert!(matches!(lex(r#""\q""#)[0].tok, Tok::Error(_)));
    }

    #[test]
    fn eof_sits_at_the_end_of_the_last_line() {
        assert_eq!(lex("ab\n").last().map(|t| t.span), Some(Span::new(1, 3, 1)));
        assert_eq!(lex("ab").last().map(|t| t.span), Some(Span::new(1, 3, 1)));
        assert_eq!(lex("").last().map(|t| t.span), Some(Span::new(1, 1, 1)));
    }

    #[test]
    fn integer_literals() {
        assert_eq!(parse_int("4096"), Ok(4096));
        assert_eq!(parse_int("1_000"), Ok(1000));
        assert_eq!(parse_int("0x1000"), Ok(0x1000));
        assert_eq!(parse_int("0x5a"), Ok(0x5a));
        assert_eq!(parse_int("4K"), Ok(4096));
        assert_eq!(parse_int("2M"), Ok(2 << 20));
        assert_eq!(parse_int("1G"), Ok(1 << 30));
        assert_eq!(parse_int("0x2M"), Ok(2 << 20));
        assert_eq!(parse_int("0xffffffffffffffff"), Ok(u64::MAX));
        assert!(parse_int("0x1_0000_0000_0000_0000")
            .unwrap_err()
            .contains("64 bits"));
        assert!(parse_int("17179869184G").unwrap_err().contains("64 bits"));
        for bad in ["0x", "2m", "12ab", "K", "0xg", "_1"] {
            assert!(parse_int(bad).unwrap_err().contains("invalid"), "{bad}");
        }
    }
}
