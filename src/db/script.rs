//! A plain-SQL dump, split into what an import sends: statements, and the
//! rows of each `COPY ... FROM stdin`. No psql runs a tenant's file (`\!`
//! is a shell, `\c - postgres` the superuser), so the file is read here,
//! with PostgreSQL's own lexical rules (quotes, dollar quotes, nested
//! comments), and every psql meta-command is refused with its line. The
//! one exception is pg_dump's own `\restrict KEY` / `\unrestrict KEY`
//! pair (PostgreSQL 13.22, 15.14, 17.6 and later write it), which are
//! dropped.
//!
//! Transaction control is refused too: an import is one transaction, and a
//! `COMMIT` in the file would make everything before it stay.

use super::session::keywords;

/// The longest statement (or line) accepted: a dump's largest statements
/// are function bodies and long INSERTs, far below this.
pub const MAX_STATEMENT: usize = 64 << 20;

/// What the file holds next.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece {
    /// One SQL statement, its first line, and whether it is a
    /// `COPY ... FROM stdin` whose rows follow.
    Statement {
        sql: String,
        line: usize,
        copy_in: bool,
    },
    /// One row of COPY data, with its newline.
    CopyRow(Vec<u8>),
    /// The `\.` that ends the rows.
    CopyEnd,
}

/// Why a file is refused, with the line that says so.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub line: usize,
    pub reason: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Lex {
    Normal,
    /// '...', or E'...' where a backslash escapes the next byte.
    Quote {
        escapes: bool,
    },
    Ident,
    Dollar(Vec<u8>),
    Comment(u32),
}

/// Fed the file in chunks of any size; hands out pieces as they complete.
pub struct Splitter {
    lex: Lex,
    /// A backslash of an E'' string ended the last line.
    escaped: bool,
    partial: Vec<u8>,
    stmt: Vec<u8>,
    stmt_line: usize,
    /// The statement has something other than blanks and comments.
    content: bool,
    /// The upper-cased words of the statement outside quotes (the first 64).
    words: Vec<String>,
    word: Vec<u8>,
    line: usize,
    copying: bool,
}

impl Default for Splitter {
    fn default() -> Self {
        Splitter {
            lex: Lex::Normal,
            escaped: false,
            partial: Vec::new(),
            stmt: Vec::new(),
            stmt_line: 1,
            content: false,
            words: Vec::new(),
            word: Vec::new(),
            line: 0,
            copying: false,
        }
    }
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// `$tag$` at the start of `s` (tag empty or an identifier without `$`).
fn dollar_tag(s: &[u8]) -> Option<usize> {
    let rest = s.strip_prefix(b"$")?;
    let end = rest.iter().position(|&b| b == b'$')?;
    let tag = &rest[..end];
    let ok = tag.first().is_none_or(|&b| !b.is_ascii_digit())
        && tag
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80);
    ok.then_some(end + 2)
}

impl Splitter {
    pub fn new() -> Splitter {
        Splitter::default()
    }

    /// The next bytes of the file; complete pieces are appended to `out`.
    pub fn feed(&mut self, mut chunk: &[u8], out: &mut Vec<Piece>) -> Result<(), Refusal> {
        while let Some(nl) = chunk.iter().position(|&b| b == b'\n') {
            let (head, rest) = chunk.split_at(nl + 1);
            if self.partial.is_empty() {
                self.line(head, out)?;
            } else {
                let mut whole = std::mem::take(&mut self.partial);
                whole.extend_from_slice(head);
                self.line(&whole, out)?;
            }
            chunk = rest;
        }
        self.partial.extend_from_slice(chunk);
        if self.partial.len() > MAX_STATEMENT {
            return Err(self.refuse(format!("a line is longer than {MAX_STATEMENT} bytes")));
        }
        Ok(())
    }

    /// The end of the file: the last line, and the last statement even
    /// without its semicolon (as psql runs it).
    pub fn finish(&mut self, out: &mut Vec<Piece>) -> Result<(), Refusal> {
        if !self.partial.is_empty() {
            let last = std::mem::take(&mut self.partial);
            self.line(&last, out)?;
        }
        if self.copying {
            return Err(self.refuse(
                "the file ends inside COPY data: its rows must end with a line holding \\.".into(),
            ));
        }
        self.flush_word();
        if self.content {
            self.emit(out)?;
        }
        Ok(())
    }

    fn refuse(&self, reason: String) -> Refusal {
        Refusal {
            line: self.line.max(1),
            reason,
        }
    }

    fn line(&mut self, text: &[u8], out: &mut Vec<Piece>) -> Result<(), Refusal> {
        self.line += 1;
        if self.copying {
            self.copy_row(text, out);
            return Ok(());
        }
        if self.lex == Lex::Normal && !self.content && Self::is_restrict(text) {
            self.stmt.push(b'\n');
            return Ok(());
        }
        // i: the next byte; from: the first byte not yet in `stmt`.
        let (mut i, mut from) = (0, 0);
        while i < text.len() {
            if self.lex == Lex::Normal {
                if self.normal(text, &mut i, &mut from, out)? {
                    return Ok(());
                }
            } else {
                i = self.quoted(text, i);
            }
        }
        if self.lex == Lex::Normal {
            self.flush_word();
        }
        self.stmt.extend_from_slice(&text[from..]);
        if self.stmt.len() > MAX_STATEMENT {
            return Err(self.refuse(format!("a statement is longer than {MAX_STATEMENT} bytes")));
        }
        Ok(())
    }

    fn copy_row(&mut self, text: &[u8], out: &mut Vec<Piece>) {
        let bare = text.strip_suffix(b"\n").unwrap_or(text);
        let bare = bare.strip_suffix(b"\r").unwrap_or(bare);
        if bare == b"\\." {
            self.copying = false;
            self.stmt_line = self.line + 1;
            out.push(Piece::CopyEnd);
        } else {
            out.push(Piece::CopyRow(text.to_vec()));
        }
    }

    /// One token outside quotes at `text[*i]`; true when the rest of the
    /// line is COPY data's business (a `COPY ... FROM stdin;` ended it).
    fn normal(
        &mut self,
        text: &[u8],
        i: &mut usize,
        from: &mut usize,
        out: &mut Vec<Piece>,
    ) -> Result<bool, Refusal> {
        let b = text[*i];
        if is_word_byte(b) && !(b == b'$' && self.word.is_empty()) {
            self.word.push(b);
            self.content = true;
            *i += 1;
            return Ok(false);
        }
        let prefix = std::mem::take(&mut self.word);
        self.push_word(&prefix);
        let next = text.get(*i + 1);
        match b {
            b'-' if next == Some(&b'-') => {
                // A comment to the end of the line.
                self.stmt.extend_from_slice(&text[*from..*i]);
                self.stmt.push(b'\n');
                *from = text.len();
                *i = text.len();
                return Ok(false);
            }
            b'/' if next == Some(&b'*') => {
                self.lex = Lex::Comment(1);
                *i += 2;
                return Ok(false);
            }
            b'\'' => {
                let escapes = prefix.eq_ignore_ascii_case(b"e");
                self.lex = Lex::Quote { escapes };
            }
            b'"' => self.lex = Lex::Ident,
            b'$' => {
                if let Some(n) = dollar_tag(&text[*i..]) {
                    self.lex = Lex::Dollar(text[*i..*i + n].to_vec());
                    self.content = true;
                    *i += n;
                    return Ok(false);
                }
            }
            b'\\' => return Err(self.meta_command(&text[*i..])),
            b';' => return self.semicolon(text, i, from, out),
            _ => {}
        }
        if !b.is_ascii_whitespace() {
            self.content = true;
        }
        *i += 1;
        Ok(false)
    }

    /// The statement ends at `text[*i]`; true when COPY data follows.
    fn semicolon(
        &mut self,
        text: &[u8],
        i: &mut usize,
        from: &mut usize,
        out: &mut Vec<Piece>,
    ) -> Result<bool, Refusal> {
        self.stmt.extend_from_slice(&text[*from..=*i]);
        *from = *i + 1;
        *i += 1;
        self.content = true;
        if !self.emit(out)? {
            return Ok(false);
        }
        if text[*from..].iter().any(|b| !b.is_ascii_whitespace()) {
            return Err(self.refuse(
                "text follows COPY ... FROM stdin on its line; its rows must start on the next line"
                    .into(),
            ));
        }
        self.copying = true;
        Ok(true)
    }

    /// One byte (or a doubled quote, or a closing tag) inside a quote, a
    /// quoted identifier, a dollar quote or a comment; the next index.
    fn quoted(&mut self, text: &[u8], i: usize) -> usize {
        let b = text[i];
        let next = text.get(i + 1);
        match self.lex.clone() {
            Lex::Quote { escapes } => {
                if self.escaped {
                    self.escaped = false;
                } else if escapes && b == b'\\' {
                    self.escaped = true;
                } else if b == b'\'' {
                    if next == Some(&b'\'') {
                        return i + 2;
                    }
                    self.lex = Lex::Normal;
                }
                i + 1
            }
            Lex::Ident => {
                if b == b'"' {
                    if next == Some(&b'"') {
                        return i + 2;
                    }
                    self.lex = Lex::Normal;
                }
                i + 1
            }
            Lex::Dollar(tag) => {
                if text[i..].starts_with(&tag) {
                    self.lex = Lex::Normal;
                    return i + tag.len();
                }
                i + 1
            }
            Lex::Comment(depth) => {
                if b == b'/' && next == Some(&b'*') {
                    self.lex = Lex::Comment(depth + 1);
                    i + 2
                } else if b == b'*' && next == Some(&b'/') {
                    self.lex = if depth == 1 {
                        Lex::Normal
                    } else {
                        Lex::Comment(depth - 1)
                    };
                    i + 2
                } else {
                    i + 1
                }
            }
            Lex::Normal => i + 1,
        }
    }

    /// pg_dump's `\restrict KEY` / `\unrestrict KEY`, alone on a line.
    fn is_restrict(text: &[u8]) -> bool {
        let Ok(t) = std::str::from_utf8(text) else {
            return false;
        };
        let mut parts = t.split_ascii_whitespace();
        matches!(parts.next(), Some("\\restrict" | "\\unrestrict"))
            && parts
                .next()
                .is_some_and(|k| k.bytes().all(|b| b.is_ascii_alphanumeric()))
            && parts.next().is_none()
    }

    fn meta_command(&self, at: &[u8]) -> Refusal {
        let name: String = String::from_utf8_lossy(at)
            .chars()
            .take_while(|c| !c.is_whitespace())
            .take(24)
            .collect();
        self.refuse(format!(
            "the psql meta-command {name} is not accepted: an import runs the file's SQL over a client connection as the app user, not through psql; remove it (pg_dump's plain format writes none but \\restrict)"
        ))
    }

    fn flush_word(&mut self) {
        let w = std::mem::take(&mut self.word);
        self.push_word(&w);
    }

    fn push_word(&mut self, w: &[u8]) {
        if !w.is_empty() && self.words.len() < 64 {
            self.words
                .push(String::from_utf8_lossy(w).to_ascii_uppercase());
        }
    }

    /// The statement so far is complete: checked and handed out. Returns
    /// whether it is a `COPY ... FROM stdin`.
    fn emit(&mut self, out: &mut Vec<Piece>) -> Result<bool, Refusal> {
        let bytes = std::mem::take(&mut self.stmt);
        let words = std::mem::take(&mut self.words);
        let start = self.stmt_line;
        self.content = false;
        // What follows on this line starts the next statement.
        self.stmt_line = self.line.max(1);
        let sql = String::from_utf8(bytes).map_err(|_| Refusal {
            line: start,
            reason: "the statement is not UTF-8: dump with --encoding=UTF8".into(),
        })?;
        let first = keywords(&sql, 2);
        if first.is_empty() && words.is_empty() {
            // Only blanks, comments and semicolons.
            return Ok(false);
        }
        let line = line_of_content(&sql, start);
        let refuse = |reason: String| Refusal { line, reason };
        let w = |i: usize| first.get(i).map(String::as_str).unwrap_or("");
        let tx_control = matches!(w(0), "BEGIN" | "START" | "COMMIT" | "END" | "ABORT")
            || (w(0) == "ROLLBACK" && w(1) != "TO")
            || (w(0) == "PREPARE" && w(1) == "TRANSACTION");
        if tx_control {
            return Err(refuse(format!(
                "{}: an import runs in one transaction, committed only when the whole file went in; remove the file's transaction control (BEGIN, COMMIT, ROLLBACK, ...)",
                w(0)
            )));
        }
        let has = |a: &str, b: &str| words.windows(2).any(|p| p[0] == a && p[1] == b);
        if w(0) == "SET"
            && words.iter().any(|x| x == "STANDARD_CONFORMING_STRINGS")
            && words.iter().any(|x| x == "OFF")
        {
            return Err(refuse(
                "standard_conforming_strings = off is not accepted: an import reads strings as standard SQL (pg_dump writes 'on')".into(),
            ));
        }
        let copy = w(0) == "COPY";
        if copy && (has("TO", "STDOUT") || has("TO", "PROGRAM") || has("FROM", "PROGRAM")) {
            return Err(refuse(
                "COPY ... TO STDOUT and COPY ... PROGRAM are not accepted in an import".into(),
            ));
        }
        let copy_in = copy && has("FROM", "STDIN");
        out.push(Piece::Statement { sql, line, copy_in });
        Ok(copy_in)
    }
}

/// The line of a statement's first non-blank, non-comment text, counted
/// from `start` (the line after the previous statement).
fn line_of_content(sql: &str, start: usize) -> usize {
    let mut line = start;
    let mut s = sql;
    loop {
        let t = s.trim_start_matches([' ', '\t', '\r']);
        if let Some(rest) = t.strip_prefix('\n') {
            line += 1;
            s = rest;
        } else if let Some(rest) = t.strip_prefix("--") {
            s = rest.find('\n').map_or("", |n| &rest[n..]);
        } else {
            return line;
        }
    }
}

#[cfg(test)]
#[path = "script_tests.rs"]
mod tests;
