//! A plain-SQL import: the file's statements (split by `script`) run over
//! one client connection as the app user, in one transaction, committed
//! only after the whole file went in. Nothing of the file reaches psql or
//! a shell, so the most a file can do is what the app user's password
//! already allows.
//!
//! The connection runs on a thread of its own (the postgres crate is
//! synchronous) and is fed through a bounded channel, so a large file is
//! streamed, never held. Dropped before `finish`, the importer closes the
//! channel without its end mark: the transaction rolls back.

use super::script::{Piece, Refusal, Splitter};
use crate::error::{Error, Result};
use std::io::Write;
use tokio::sync::mpsc;

/// Chunks in flight between the reader and the connection's thread.
const QUEUE: usize = 8;

enum Msg {
    Chunk(Vec<u8>),
    End,
}

pub struct PlainImport {
    tx: Option<mpsc::Sender<Msg>>,
    worker: tokio::task::JoinHandle<Result<()>>,
}

impl PlainImport {
    /// Connects (on the blocking pool) with `cfg`, the app user's.
    pub fn start(cfg: postgres::Config, tls: super::tls::Connector) -> PlainImport {
        let (tx, rx) = mpsc::channel(QUEUE);
        let worker = tokio::task::spawn_blocking(move || run(cfg, tls, rx));
        PlainImport {
            tx: Some(tx),
            worker,
        }
    }

    /// The next bytes of the file; false once the import stopped (it
    /// failed: `finish` says why).
    pub async fn write(&mut self, chunk: &[u8]) -> bool {
        match &self.tx {
            Some(tx) => tx.send(Msg::Chunk(chunk.to_vec())).await.is_ok(),
            None => false,
        }
    }

    /// The whole file was written: commit, or say why not.
    pub async fn finish(mut self) -> Result<()> {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Msg::End).await;
        }
        (&mut self.worker)
            .await
            .map_err(|e| Error::Failed(format!("the import's task failed: {e}")))?
    }
}

/// The pieces of the file, pulled from the channel as they are needed.
struct Source {
    rx: mpsc::Receiver<Msg>,
    splitter: Splitter,
    ready: std::collections::VecDeque<Piece>,
    ended: bool,
}

impl Source {
    /// The next piece; None at the end of the file; an error when the
    /// file is refused or the writer went away without its end mark.
    fn next(&mut self) -> Result<Option<Piece>> {
        loop {
            if let Some(p) = self.ready.pop_front() {
                return Ok(Some(p));
            }
            if self.ended {
                return Ok(None);
            }
            let mut out = Vec::new();
            match self.rx.blocking_recv() {
                Some(Msg::Chunk(c)) => self.splitter.feed(&c, &mut out).map_err(refused)?,
                Some(Msg::End) => {
                    self.splitter.finish(&mut out).map_err(refused)?;
                    self.ended = true;
                }
                None => {
                    return Err(Error::Failed(
                        "the import was abandoned; nothing was changed".into(),
                    ))
                }
            }
            self.ready.extend(out);
        }
    }
}

fn refused(r: Refusal) -> Error {
    Error::invalid("dump", format!("{r}; nothing was imported"))
}

fn statement_failed(line: usize, e: &postgres::Error) -> Error {
    let what = match e.as_db_error() {
        Some(d) => format!("{}: {}", d.severity(), d.message()),
        None => e.to_string(),
    };
    Error::invalid(
        "dump",
        format!("line {line}: {what}; nothing was imported (the transaction was rolled back)"),
    )
}

fn run(cfg: postgres::Config, tls: super::tls::Connector, rx: mpsc::Receiver<Msg>) -> Result<()> {
    let mut src = Source {
        rx,
        splitter: Splitter::new(),
        ready: Default::default(),
        ended: false,
    };
    let mut client = cfg
        .connect(tls)
        .map_err(|e| Error::Unavailable(format!("cannot connect for the import: {e}")))?;
    let mut tx = client
        .transaction()
        .map_err(|e| Error::Unavailable(format!("starting the import's transaction: {e}")))?;
    while let Some(piece) = src.next()? {
        let Piece::Statement { sql, line, copy_in } = piece else {
            return Err(Error::Failed("COPY data without its statement".into()));
        };
        // One statement per round trip, by the extended protocol, which
        // refuses two in one (whatever a string trick made of the split).
        if !copy_in {
            tx.execute(sql.as_str(), &[])
                .map_err(|e| statement_failed(line, &e))?;
            continue;
        }
        let mut w = tx
            .copy_in(sql.as_str())
            .map_err(|e| statement_failed(line, &e))?;
        loop {
            match src.next()? {
                // A failed write: the server's error comes with finish.
                Some(Piece::CopyRow(row)) => {
                    if w.write_all(&row).is_err() {
                        break;
                    }
                }
                Some(Piece::CopyEnd) => break,
                _ => return Err(Error::Failed("COPY data ended early".into())),
            }
        }
        w.finish().map_err(|e| statement_failed(line, &e))?;
    }
    tx.commit().map_err(|e| {
        Error::Failed(format!(
            "committing the import: {e}; its outcome is unknown"
        ))
    })
}
