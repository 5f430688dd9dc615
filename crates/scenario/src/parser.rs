//! Builds a raw syntax tree from tokens.
//!
//! The raw tree records what was written, not what it means: calls are
//! just a name and a list of arguments, flags are just names. Giving them
//! meaning (signatures, flag families, scoping, machine limits) is the job
//! of [`crate::check`], which keeps the grammar small and lets semantic
//! errors be reported with the full picture (e.g. a `machine` line that
//! comes after the threads it constrains).
//!
//! Grammar (newlines are significant; `;` may replace a newline):
//!
//! ```text
//! file     := (item? NL)*
//! item     := 'scenario' STRING
//!           | 'machine' setting*
//!           | 'budget' NUMBER
//!           | 'expect' PROFILE setting* ':' ('clean' | 'finding' STRING)
//!           | 'file' NAME setting*
//!           | 'process' NAME body
//! body     := '{' (setup | thread | child | NL)* '}'
//! setup    := 'setup' block
//! thread   := 'thread' NAME setting* block
//! child    := 'child' NAME body
//! setting  := KEY ('=' VALUE)?
//! block    := '{' NL* (stmt (NL+ stmt)*)? NL* '}'
//! stmt     := (NAME '=')? NAME '(' (arg (',' arg)*)? ')' ('=>' outcome ('|' outcome)*)?
//! outcome  := 'ok' | NUMBER | '-'? NAME | NAME '(' NAME ')'
//! arg      := NAME '=' expr | expr ('..' expr)?
//! expr     := sum ('|' sum)*
//! sum      := atom (('+' | '-') atom)*
//! atom     := NUMBER | NAME | '(' expr ')'
//! ```

use crate::ast::Span;
use crate::diag::Error;
use crate::lexer::{parse_int, Tok, Token};

/// Parenthesis nesting allowed in one expression; deeper input is surely
/// garbage and would otherwise risk exhausting the stack.
const MAX_PAREN_DEPTH: u32 = 32;
/// Terms allowed in one expression, for the same reason (the tree is
/// processed recursively).
const MAX_TERMS: u32 = 256;

/// A parsed file: its top-level items in source order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawFile {
    pub items: Vec<Item>,
}

/// One top-level item. `span` is the item's keyword.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Item {
    Scenario {
        name: String,
        name_span: Span,
        span: Span,
    },
    Machine {
        settings: Vec<Setting>,
        span: Span,
    },
    Budget {
        text: String,
        value_span: Span,
        span: Span,
    },
    Expect {
        profile: String,
        profile_span: Span,
        /// `knob=value` overrides after the profile.
        knobs: Vec<Setting>,
        verdict: RawVerdict,
        span: Span,
    },
    /// `file <name> size=N fill=V`: a regular file on disk.
    File {
        name: String,
        name_span: Span,
        settings: Vec<Setting>,
        span: Span,
    },
    Process(RawProcess),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RawVerdict {
    Clean,
    Finding(String, Span),
}

/// `key` or `key=value`, as written on `machine` and `thread` lines.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Setting {
    pub key: String,
    pub key_span: Span,
    pub value: Option<(String, Span)>,
    /// The whole `key=value`.
    pub span: Span,
}

/// A `process` item, or a `child` block inside one.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawProcess {
    pub name: String,
    /// `process <name>` or `child <name>`.
    pub span: Span,
    pub blocks: Vec<Block>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Block {
    /// `span` is the `setup` keyword.
    Setup {
        span: Span,
        body: Vec<RawStmt>,
    },
    Thread(RawThread),
    /// `child <name> { ... }`: what the process forked as `<name>` runs.
    Child(RawProcess),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawThread {
    pub name: String,
    /// `thread <name>`.
    pub span: Span,
    pub settings: Vec<Setting>,
    pub body: Vec<RawStmt>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawStmt {
    pub bind: Option<(String, Span)>,
    pub call: String,
    pub call_span: Span,
    pub args: Vec<RawArg>,
    /// The closing parenthesis, where missing arguments are reported.
    pub close: Span,
    /// The whole statement.
    pub span: Span,
    /// `=> outcome | ...`: the outcomes the statement is expected to have.
    pub expect: Vec<RawOutcome>,
}

/// One outcome after `=>`, as written: a word (`ok`, `ENOMEM`,
/// `SIGSEGV`, a number), negated (`-ENOMEM`), or with a code
/// (`SIGSEGV(SEGV_ACCERR)`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawOutcome {
    pub word: String,
    pub negated: bool,
    pub code: Option<(String, Span)>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RawArg {
    Expr(RawExpr),
    Range {
        lo: RawExpr,
        hi: RawExpr,
        span: Span,
    },
    Named {
        name: String,
        name_span: Span,
        value: RawExpr,
        span: Span,
    },
}

impl RawArg {
    pub fn span(&self) -> Span {
        match self {
            RawArg::Expr(e) => e.span,
            RawArg::Range { span, .. } | RawArg::Named { span, .. } => *span,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawExpr {
    pub kind: RawKind,
    /// The whole expression, including any enclosing parentheses.
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RawKind {
    Int(u64),
    Name(String),
    Binary {
        op: BinOp,
        op_span: Span,
        lhs: Box<RawExpr>,
        rhs: Box<RawExpr>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Or,
}

type PResult<T> = Result<T, Error>;

/// Parses a token stream (as produced by [`crate::lexer::lex`]).
pub(crate) fn parse(tokens: Vec<Token>) -> PResult<RawFile> {
    let eof_span = tokens.last().map_or(Span::new(1, 1, 1), |t| t.span);
    let mut parser = Parser {
        tokens,
        pos: 0,
        eof: Token {
            tok: Tok::Eof,
            span: eof_span,
        },
        terms: 0,
    };
    parser.file()
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    /// Returned by `peek` past the end, so that peeking never fails.
    eof: Token,
    /// Terms seen in the current expression (see [`MAX_TERMS`]).
    terms: u32,
}

/// Is this word a name (as opposed to a number literal)?
fn is_name(word: &str) -> bool {
    word.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
}

fn is_key_piece(tok: &Tok) -> bool {
    matches!(tok, Tok::Word(_) | Tok::Minus)
}

fn is_value_piece(tok: &Tok) -> bool {
    matches!(tok, Tok::Word(_) | Tok::Minus | Tok::Dot | Tok::Plus)
}

fn is_profile_piece(tok: &Tok) -> bool {
    matches!(
        tok,
        Tok::Word(_) | Tok::Minus | Tok::Dot | Tok::DotDot | Tok::Plus
    )
}

fn is_separator(tok: &Tok) -> bool {
    matches!(tok, Tok::Newline | Tok::Semi)
}

/// Do two tokens touch, with no blank between them?
fn adjacent(a: Span, b: Span) -> bool {
    a.line == b.line && a.col.saturating_add(a.len) == b.col
}

// Token-level helpers.
impl Parser {
    fn peek(&self) -> &Token {
        self.tokens.get(self.pos).unwrap_or(&self.eof)
    }

    fn peek_tok(&self) -> &Tok {
        &self.peek().tok
    }

    fn peek_at(&self, ahead: usize) -> &Tok {
        self.tokens
            .get(self.pos.saturating_add(ahead))
            .map_or(&Tok::Eof, |t| &t.tok)
    }

    fn span(&self) -> Span {
        self.peek().span
    }

    /// The current word, if the current token is one.
    fn word(&self) -> Option<&str> {
        match self.peek_tok() {
            Tok::Word(w) => Some(w),
            _ => None,
        }
    }

    fn at(&self, tok: &Tok) -> bool {
        self.peek_tok() == tok
    }

    /// Consumes the current token (never moving past end of file).
    fn bump(&mut self) -> Token {
        let token = self.peek().clone();
        if token.tok != Tok::Eof {
            self.pos += 1;
        }
        token
    }

    fn eat(&mut self, tok: &Tok) -> Option<Span> {
        self.at(tok).then(|| self.bump().span)
    }

    /// Consumes `tok` or fails with "expected 'tok' <context>, found ...".
    fn expect(&mut self, tok: &Tok, context: &str) -> PResult<Span> {
        self.eat(tok)
            .ok_or_else(|| self.unexpected(&format!("'{}' {context}", tok.punct_text())))
    }

    /// The error for an unexpected current token. A lexer error token
    /// reports its own message, since it explains more than "found X".
    fn unexpected(&self, expected: &str) -> Error {
        let token = self.peek();
        match &token.tok {
            Tok::Error(message) => Error::new(token.span, message.clone()),
            found => Error::new(
                token.span,
                format!("expected {expected}, found {}", found.describe()),
            ),
        }
    }

    fn skip_separators(&mut self) {
        while is_separator(self.peek_tok()) {
            self.bump();
        }
    }

    /// A name (not a number, not punctuation); `what` describes it.
    fn name(&mut self, what: &str) -> PResult<(String, Span)> {
        match self.word() {
            Some(w) if is_name(w) => {
                let w = w.to_string();
                Ok((w, self.bump().span))
            }
            _ => Err(self.unexpected(what)),
        }
    }

    /// Glues touching tokens accepted by `piece` into one name, as for
    /// `numa-nodes` or `linux-6.1.159`. `None` if the current token is not
    /// a piece.
    fn glued(&mut self, piece: fn(&Tok) -> bool) -> Option<(String, Span)> {
        if !piece(self.peek_tok()) {
            return None;
        }
        let first = self.bump();
        let mut text = token_text(&first.tok);
        let mut span = first.span;
        while piece(self.peek_tok()) && adjacent(span, self.span()) {
            let next = self.bump();
            text.push_str(&token_text(&next.tok));
            span = span.to(next.span);
        }
        Some((text, span))
    }
}

fn token_text(tok: &Tok) -> String {
    match tok {
        Tok::Word(w) => w.clone(),
        other => other.punct_text().to_string(),
    }
}

// Top level.
impl Parser {
    fn file(&mut self) -> PResult<RawFile> {
        let mut items = Vec::new();
        loop {
            self.skip_separators();
            if self.at(&Tok::Eof) {
                return Ok(RawFile { items });
            }
            items.push(self.item()?);
            self.end_of_line("after this item")?;
        }
    }

    /// Requires the end of the line (or of the file) after an item.
    fn end_of_line(&self, context: &str) -> PResult<()> {
        match self.peek_tok() {
            Tok::Newline | Tok::Semi | Tok::Eof => Ok(()),
            _ => Err(self.unexpected(&format!("end of line {context}"))),
        }
    }

    fn item(&mut self) -> PResult<Item> {
        match self.word().unwrap_or_default() {
            "scenario" => self.scenario(),
            "machine" => self.machine(),
            "budget" => self.budget(),
            "expect" => self.expectation(),
            "file" => self.file_item(),
            "process" => self.process().map(Item::Process),
            "child" => Err(Error::new(
                self.span(),
                "a 'child' block goes inside the process whose setup forks it: \
                 process <name> { setup { c = fork() } child c { ... } }",
            )),
            _ => Err(self.unexpected(
                "a top-level item (scenario, machine, budget, expect, file or process)",
            )),
        }
    }

    fn scenario(&mut self) -> PResult<Item> {
        let span = self.bump().span;
        match self.peek_tok().clone() {
            Tok::Str(name) => Ok(Item::Scenario {
                name,
                name_span: self.bump().span,
                span,
            }),
            _ => Err(self.unexpected("a quoted name after 'scenario'")),
        }
    }

    fn machine(&mut self) -> PResult<Item> {
        let span = self.bump().span;
        let mut settings = Vec::new();
        while self.word().is_some() {
            settings.push(self.setting()?);
        }
        if !matches!(self.peek_tok(), Tok::Newline | Tok::Semi | Tok::Eof) {
            return Err(self.unexpected("a machine setting (key=value) or end of line"));
        }
        Ok(Item::Machine { settings, span })
    }

    /// `key` or `key=value`; the caller has checked that a word comes next.
    fn setting(&mut self) -> PResult<Setting> {
        let Some((key, key_span)) = self.glued(is_key_piece) else {
            return Err(self.unexpected("a setting"));
        };
        if self.eat(&Tok::Eq).is_none() {
            return Ok(Setting {
                key,
                key_span,
                value: None,
                span: key_span,
            });
        }
        let Some((value, value_span)) = self.glued(is_value_piece) else {
            return Err(self.unexpected(&format!("a value after '{key}='")));
        };
        Ok(Setting {
            key,
            key_span,
            value: Some((value, value_span)),
            span: key_span.to(value_span),
        })
    }

    fn budget(&mut self) -> PResult<Item> {
        let span = self.bump().span;
        match self.word() {
            Some(w) if !is_name(w) => {
                let text = w.to_string();
                Ok(Item::Budget {
                    text,
                    value_span: self.bump().span,
                    span,
                })
            }
            _ => Err(self.unexpected("a number of executions after 'budget'")),
        }
    }

    fn expectation(&mut self) -> PResult<Item> {
        let keyword = self.bump().span;
        let Some((profile, profile_span)) = self.glued(is_profile_piece) else {
            return Err(self.unexpected("a profile name after 'expect'"));
        };
        let mut knobs = Vec::new();
        while self.word().is_some() {
            let before = self.unexpected(&format!("':' after profile '{profile}'"));
            let knob = self.setting()?;
            if knob.value.is_none() {
                // A bare word is a forgotten ':', not a knob.
                return Err(before);
            }
            knobs.push(knob);
        }
        self.expect(&Tok::Colon, &format!("after profile '{profile}'"))?;
        let (verdict, end) = self.verdict()?;
        Ok(Item::Expect {
            profile,
            profile_span,
            knobs,
            verdict,
            span: keyword.to(end),
        })
    }

    /// `file <name> setting*`.
    fn file_item(&mut self) -> PResult<Item> {
        let keyword = self.bump().span;
        let (name, name_span) = self.name("a file name after 'file'")?;
        let mut settings = Vec::new();
        while self.word().is_some() {
            settings.push(self.setting()?);
        }
        if !matches!(self.peek_tok(), Tok::Newline | Tok::Semi | Tok::Eof) {
            return Err(self.unexpected("a file setting (size=N, fill=V) or end of line"));
        }
        Ok(Item::File {
            name,
            name_span,
            settings,
            span: keyword.to(name_span),
        })
    }

    /// `clean` or `finding "<text>"`, with the span of its last token.
    fn verdict(&mut self) -> PResult<(RawVerdict, Span)> {
        match self.word() {
            Some("clean") => Ok((RawVerdict::Clean, self.bump().span)),
            Some("finding") => {
                self.bump();
                match self.peek_tok().clone() {
                    Tok::Str(text) => {
                        let span = self.bump().span;
                        Ok((RawVerdict::Finding(text, span), span))
                    }
                    _ => Err(self.unexpected("a quoted message substring after 'finding'")),
                }
            }
            _ => Err(self.unexpected("'clean' or 'finding \"<text>\"' after ':'")),
        }
    }
}

// Processes, blocks and statements.
impl Parser {
    /// `process <name> { ... }`; the caller has checked the keyword.
    fn process(&mut self) -> PResult<RawProcess> {
        let keyword_span = self.bump().span;
        let (name, name_span) = self.name("a process name after 'process'")?;
        self.process_body(name, keyword_span.to(name_span), "process")
    }

    /// `child <name> { ... }`, inside a process; the caller has checked the
    /// keyword.
    fn child(&mut self) -> PResult<RawProcess> {
        let keyword_span = self.bump().span;
        let (name, name_span) =
            self.name("a child name after 'child', as bound by 'c = fork()'")?;
        self.process_body(name, keyword_span.to(name_span), "child")
    }

    /// The `{ ... }` of a process or child `name`; `what` says which.
    fn process_body(&mut self, name: String, span: Span, what: &str) -> PResult<RawProcess> {
        self.expect(&Tok::LBrace, &format!("after {what} '{name}'"))?;
        let mut blocks = Vec::new();
        loop {
            self.skip_separators();
            if self.eat(&Tok::RBrace).is_some() {
                return Ok(RawProcess { name, span, blocks });
            }
            let opened = format!("{what} '{name}'");
            blocks.push(self.process_block(&opened, span)?);
        }
    }

    /// One `setup`, `thread` or `child` block inside `process` (e.g.
    /// "process 'app'").
    fn process_block(&mut self, process: &str, opened: Span) -> PResult<Block> {
        match self.word() {
            Some("setup") => {
                let span = self.bump().span;
                let body = self.block("the setup block", span)?;
                Ok(Block::Setup { span, body })
            }
            Some("thread") => self.thread().map(Block::Thread),
            Some("child") => self.child().map(Block::Child),
            Some(w) if is_name(w) && matches!(self.peek_at(1), Tok::LParen | Tok::Eq) => {
                Err(Error::new(
                    self.span(),
                    format!(
                        "expected 'setup' or 'thread' in {process}, found statement '{w}'; \
                         statements go inside 'setup {{ ... }}' or 'thread <name> {{ ... }}'"
                    ),
                ))
            }
            _ if self.at(&Tok::Eof) => Err(self.unclosed(process, opened)),
            _ => Err(self.unexpected(&format!("'setup', 'thread', 'child' or '}}' in {process}"))),
        }
    }

    /// The error for a block still open at end of file.
    fn unclosed(&self, what: &str, opened: Span) -> Error {
        Error::new(
            self.span(),
            format!(
                "expected '}}' to close {what} (opened at line {}), found end of file",
                opened.line
            ),
        )
    }

    fn thread(&mut self) -> PResult<RawThread> {
        let keyword = self.bump().span;
        let (name, name_span) = self.name("a thread name after 'thread'")?;
        let span = keyword.to(name_span);
        let mut settings = Vec::new();
        while self.word().is_some() {
            settings.push(self.setting()?);
        }
        let body = self.block(&format!("thread '{name}'"), span)?;
        Ok(RawThread {
            name,
            span,
            settings,
            body,
        })
    }

    /// `{ stmt; stmt ... }`; `what` names the block in error messages.
    fn block(&mut self, what: &str, opened: Span) -> PResult<Vec<RawStmt>> {
        self.expect(&Tok::LBrace, &format!("to open {what}"))?;
        let mut stmts = Vec::new();
        loop {
            self.skip_separators();
            if self.eat(&Tok::RBrace).is_some() {
                return Ok(stmts);
            }
            if self.at(&Tok::Eof) {
                return Err(self.unclosed(what, opened));
            }
            stmts.push(self.stmt()?);
            if !matches!(self.peek_tok(), Tok::Newline | Tok::Semi | Tok::RBrace) {
                return Err(self.unexpected("newline, ';' or '}' after statement"));
            }
        }
    }

    fn stmt(&mut self) -> PResult<RawStmt> {
        let bind = if self.word().is_some_and(is_name) && self.peek_at(1) == &Tok::Eq {
            let bound = self.name("a variable name")?;
            self.bump();
            Some(bound)
        } else {
            None
        };
        let (call, call_span) = self.name("a statement such as 'read(p)'")?;
        self.expect(&Tok::LParen, &format!("after '{call}'"))?;
        let (args, close) = self.args()?;
        let start = bind.as_ref().map_or(call_span, |(_, s)| *s);
        let mut expect = Vec::new();
        if self.eat(&Tok::FatArrow).is_some() {
            loop {
                expect.push(self.outcome()?);
                if self.eat(&Tok::Pipe).is_none() {
                    break;
                }
            }
        }
        Ok(RawStmt {
            bind,
            call,
            call_span,
            args,
            close,
            span: start.to(close),
            expect,
        })
    }

    /// One outcome after `=>`.
    fn outcome(&mut self) -> PResult<RawOutcome> {
        let minus = self.eat(&Tok::Minus);
        let Some(word) = self.word().map(str::to_string) else {
            return Err(self.unexpected(
                "an outcome after '=>' (ok, a number, an errno such as ENOMEM, or a signal such \
                 as SIGSEGV)",
            ));
        };
        let word_span = self.bump().span;
        let mut span = minus.map_or(word_span, |m| m.to(word_span));
        let mut code = None;
        if self.eat(&Tok::LParen).is_some() {
            let (c, c_span) = self.name("a si_code such as SEGV_ACCERR")?;
            span = span.to(self.expect(&Tok::RParen, "after the si_code")?);
            code = Some((c, c_span));
        }
        Ok(RawOutcome {
            word,
            negated: minus.is_some(),
            code,
            span,
        })
    }

    /// Arguments after '(' up to and including ')'.
    fn args(&mut self) -> PResult<(Vec<RawArg>, Span)> {
        let mut args = Vec::new();
        if let Some(close) = self.eat(&Tok::RParen) {
            return Ok((args, close));
        }
        loop {
            args.push(self.arg()?);
            if self.eat(&Tok::Comma).is_some() {
                continue;
            }
            if let Some(close) = self.eat(&Tok::RParen) {
                return Ok((args, close));
            }
            let expected = match self.peek_tok() {
                Tok::Newline | Tok::Semi | Tok::RBrace | Tok::Eof => "')' after arguments",
                _ => "',' or ')' after argument",
            };
            return Err(self.unexpected(expected));
        }
    }

    fn arg(&mut self) -> PResult<RawArg> {
        if self.word().is_some_and(is_name) && self.peek_at(1) == &Tok::Eq {
            let (name, name_span) = self.name("an argument name")?;
            self.bump();
            let value = self.expr()?;
            let span = name_span.to(value.span);
            return Ok(RawArg::Named {
                name,
                name_span,
                value,
                span,
            });
        }
        let lo = self.expr()?;
        if self.eat(&Tok::DotDot).is_none() {
            return Ok(RawArg::Expr(lo));
        }
        let hi = self.expr()?;
        let span = lo.span.to(hi.span);
        Ok(RawArg::Range { lo, hi, span })
    }
}

// Expressions.
impl Parser {
    fn expr(&mut self) -> PResult<RawExpr> {
        self.terms = 0;
        self.or_expr(0)
    }

    fn or_expr(&mut self, depth: u32) -> PResult<RawExpr> {
        let mut lhs = self.sum(depth)?;
        while let Some(op_span) = self.eat(&Tok::Pipe) {
            let rhs = self.sum(depth)?;
            lhs = binary(BinOp::Or, op_span, lhs, rhs);
        }
        Ok(lhs)
    }

    fn sum(&mut self, depth: u32) -> PResult<RawExpr> {
        let mut lhs = self.atom(depth)?;
        loop {
            let op = match self.peek_tok() {
                Tok::Plus => BinOp::Add,
                Tok::Minus => BinOp::Sub,
                _ => return Ok(lhs),
            };
            let op_span = self.bump().span;
            let rhs = self.atom(depth)?;
            lhs = binary(op, op_span, lhs, rhs);
        }
    }

    fn atom(&mut self, depth: u32) -> PResult<RawExpr> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            let message = format!("expression too long; at most {MAX_TERMS} terms are allowed");
            return Err(Error::new(self.span(), message));
        }
        let span = self.span();
        match self.peek_tok().clone() {
            Tok::Word(w) if is_name(&w) => {
                self.bump();
                Ok(RawExpr {
                    kind: RawKind::Name(w),
                    span,
                })
            }
            Tok::Word(w) => {
                let value = parse_int(&w).map_err(|m| Error::new(span, m))?;
                self.bump();
                Ok(RawExpr {
                    kind: RawKind::Int(value),
                    span,
                })
            }
            Tok::LParen => self.parenthesized(depth),
            _ => Err(self.unexpected("an expression")),
        }
    }

    fn parenthesized(&mut self, depth: u32) -> PResult<RawExpr> {
        let open = self.span();
        if depth >= MAX_PAREN_DEPTH {
            let message =
                format!("expression nested too deeply; at most {MAX_PAREN_DEPTH} parentheses");
            return Err(Error::new(open, message));
        }
        self.bump();
        let inner = self.or_expr(depth + 1)?;
        let close = self.expect(&Tok::RParen, "to close '('")?;
        Ok(RawExpr {
            span: open.to(close),
            ..inner
        })
    }
}

fn binary(op: BinOp, op_span: Span, lhs: RawExpr, rhs: RawExpr) -> RawExpr {
    RawExpr {
        span: lhs.span.to(rhs.span),
        kind: RawKind::Binary {
            op,
            op_span,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lexer::lex;

    fn parse_src(src: &str) -> PResult<RawFile> {
        parse(lex(src))
    }

    fn first_stmt(src: &str) -> RawStmt {
        let file = parse_src(&format!("process a {{ thread t {{ {src} }} }}")).expect("parses");
        match &file.items[0] {
            Item::Process(p) => match &p.blocks[0] {
                Block::Thread(t) => t.body[0].clone(),
                other => panic!("not a thread: {other:?}"),
            },
            other => panic!("not a process: {other:?}"),
        }
    }

    #[test]
    fn pipe_binds_looser_than_plus() {
        let stmt = first_stmt("f(1 + 2 | 3)");
        let RawArg::Expr(e) = &stmt.args[0] else {
            panic!("not an expression")
        };
        let RawKind::Binary { op, lhs, .. } = &e.kind else {
            panic!("not binary")
        };
        assert_eq!(*op, BinOp::Or);
        assert!(matches!(lhs.kind, RawKind::Binary { op: BinOp::Add, .. }));
        assert_eq!(e.span, Span::new(1, 26, 9));
    }

    #[test]
    fn parentheses_widen_the_span() {
        let stmt = first_stmt("f(((p)))");
        assert_eq!(stmt.args[0].span(), Span::new(1, 26, 5));
        assert_eq!(stmt.span, Span::new(1, 24, 8));
    }

    #[test]
    fn glued_names() {
        let file = parse_src("machine numa-nodes=2 xen-pv\nexpect linux-6.1.1+x_y: clean")
            .expect("parses");
        let Item::Machine { settings, .. } = &file.items[0] else {
            panic!("not machine")
        };
        assert_eq!(settings[0].key, "numa-nodes");
        assert_eq!(settings[0].value.as_ref().map(|v| v.0.as_str()), Some("2"));
        assert_eq!(settings[0].span, Span::new(1, 9, 12));
        assert_eq!(settings[1].key, "xen-pv");
        let Item::Expect { profile, .. } = &file.items[1] else {
            panic!("not expect")
        };
        assert_eq!(profile, "linux-6.1.1+x_y");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("f({}1{})", "(".repeat(10_000), ")".repeat(10_000));
        let err = parse_src(&format!("process a {{ thread t {{ {deep} }} }}")).unwrap_err();
        assert!(err.message.contains("nested too deeply"));
        let long = format!("f(1{})", "+1".repeat(10_000));
        let err = parse_src(&format!("process a {{ thread t {{ {long} }} }}")).unwrap_err();
        assert!(err.message.contains("too long"));
    }
}
