//! Logical dumps, for moving data in and out of dbaas: `pg_dump` and
//! `pg_restore` inside the instance's container, as its app user, and a
//! plain-SQL import over a client connection (`db::import`), streamed
//! between the instance and the user's file (never held whole).

use super::access::serving;
use crate::db::import::PlainImport;
use crate::engine::{self, Attach, Service};
use crate::error::{Error, Result};
use crate::home::Home;
use crate::registry::Instance;
use std::path::Path;

/// pg_dump's formats that a file can hold and `import` reads back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DumpFormat {
    /// pg_dump -Fc: compressed, restored by pg_restore.
    Custom,
    /// Plain SQL, replayed by psql.
    Plain,
}

impl DumpFormat {
    pub fn parse(s: &str) -> Result<DumpFormat> {
        match s {
            "custom" => Ok(DumpFormat::Custom),
            "plain" => Ok(DumpFormat::Plain),
            other => Err(Error::invalid(
                "format",
                format!("'{other}' is not custom or plain"),
            )),
        }
    }
}

/// Custom-format archives start with these bytes.
const CUSTOM_MAGIC: &[u8] = b"PGDMP";

/// The app database, to the user's standard output; returns pg_dump's exit
/// status. Ownership and grants are left out, so that the dump imports into
/// any instance whatever its user is called.
pub async fn dump(home: &Home, key: &str, format: DumpFormat) -> Result<i32> {
    let inst = serving(home, key).await?;
    let what = Attach::Run {
        service: Service::Db,
        argv: dump_argv(&inst, format),
    };
    engine::of(home).attach(&inst.id, what).await
}

fn dump_argv(inst: &Instance, format: DumpFormat) -> Vec<String> {
    let mut argv = vec![
        "pg_dump".to_string(),
        "--no-owner".into(),
        "--no-privileges".into(),
        // dbaas's own (pg_stat_statements); the dump keeps the extension's
        // CREATE EXTENSION IF NOT EXISTS, a no-op where it is installed.
        "--exclude-schema=extensions".into(),
        "-U".into(),
        inst.user.clone(),
        "-d".into(),
        inst.database.clone(),
    ];
    if format == DumpFormat::Custom {
        argv.push("-Fc".into());
    }
    argv
}

/// A dump file into the app database, as the app user, streamed through an
/// `Importer`: nothing is changed unless the whole file went in and the
/// tool succeeded.
pub async fn import(home: &Home, key: &str, file: &Path) -> Result<()> {
    use tokio::io::AsyncReadExt;
    let (input, custom) = open_dump(file)?;
    let mut input = tokio::fs::File::from_std(input);
    let mut importer = Importer::start(home, key, custom).await?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = input
            .read(&mut buf)
            .await
            .map_err(|e| Error::io(format!("reading {}", file.display()), e))?;
        if n == 0 || !importer.write(&buf[..n]).await {
            break;
        }
    }
    importer.finish().await
}

/// pg_restore of a custom-format archive, as the app user, without the
/// archive's owners and grants, all or nothing.
fn import_argv(inst: &Instance) -> Vec<String> {
    [
        "pg_restore",
        "--no-owner",
        "--no-privileges",
        "--exit-on-error",
        "--single-transaction",
    ]
    .map(String::from)
    .into_iter()
    .chain([
        "-U".into(),
        inst.user.clone(),
        "-d".into(),
        inst.database.clone(),
    ])
    .collect()
}

/// Whether a dump's first bytes are a custom-format archive's.
pub fn is_custom(head: &[u8]) -> bool {
    head.starts_with(CUSTOM_MAGIC)
}

/// A dump or import running for the API: the tool inside the container
/// with its stdin and stdout for the caller to stream through, and its
/// stderr gathered (the last 64 KiB) for the error message.
pub struct Piped {
    pub child: tokio::process::Child,
    stderr: tokio::task::JoinHandle<String>,
    /// The tool's name, for its messages.
    tool: String,
    /// A failed import is the dump's fault (invalid); a failed dump ours.
    import: bool,
}

/// The most of a tool's stderr kept for its error message.
const STDERR_KEEP: usize = 64 * 1024;

impl Piped {
    async fn start(home: &Home, inst: &Instance, argv: Vec<String>, import: bool) -> Result<Piped> {
        let tool = argv.first().cloned().unwrap_or_default();
        let mut child = engine::of(home)
            .exec_piped(&inst.id, &Service::Db, &argv)
            .await?;
        let mut err = child.stderr.take();
        let stderr = tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut kept = Vec::new();
            let mut chunk = [0u8; 8192];
            while let Some(e) = err.as_mut() {
                match e.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        kept.extend_from_slice(&chunk[..n]);
                        let over = kept.len().saturating_sub(STDERR_KEEP);
                        kept.drain(..over);
                    }
                }
            }
            String::from_utf8_lossy(&kept).trim().to_string()
        });
        Ok(Piped {
            child,
            stderr,
            tool,
            import,
        })
    }

    /// Waits for the tool; its failure names it with its last words.
    pub async fn finish(mut self) -> Result<()> {
        drop(self.child.stdin.take());
        let status = self
            .child
            .wait()
            .await
            .map_err(|e| Error::io(format!("waiting for {}", self.tool), e))?;
        let stderr = self.stderr.await.unwrap_or_default();
        if status.success() {
            return Ok(());
        }
        let reason = format!("{} failed ({status}): {stderr}", self.tool);
        Err(if self.import {
            Error::invalid("dump", reason)
        } else {
            Error::Failed(reason)
        })
    }
}

/// `dump` for the API: pg_dump's output on the child's stdout.
pub async fn dump_piped(home: &Home, key: &str, format: DumpFormat) -> Result<Piped> {
    let inst = serving(home, key).await?;
    Piped::start(home, &inst, dump_argv(&inst, format), false).await
}

/// An import under way.
/// - A custom-format archive: pg_restore in the container, as the app user,
///   in one transaction of its own (a cut archive is an error, so a
///   rollback). pg_restore runs no meta-commands.
/// - Plain SQL never reaches psql (`\!` would be a shell in the container,
///   `\c - postgres` the superuser): its statements run over a client
///   connection as the app user, in one transaction committed only after
///   the whole file (`db::import`).
///
/// Dropped before `finish` (the client left, the request timed out,
/// dbaasctl was killed), nothing is committed.
pub enum Importer {
    Archive {
        piped: Box<Piped>,
        stdin: tokio::process::ChildStdin,
    },
    Plain(PlainImport),
}

impl Importer {
    /// `custom` as the dump's first bytes say (`is_custom`).
    pub async fn start(home: &Home, key: &str, custom: bool) -> Result<Importer> {
        let inst = serving(home, key).await?;
        if !custom {
            let (cfg, tls) = super::access::app_config(home, &inst).await?;
            return Ok(Importer::Plain(PlainImport::start(cfg, tls)));
        }
        let mut piped = Piped::start(home, &inst, import_argv(&inst), true).await?;
        let stdin = piped
            .child
            .stdin
            .take()
            .ok_or_else(|| Error::Failed("the import has no input pipe".into()))?;
        Ok(Importer::Archive {
            piped: Box::new(piped),
            stdin,
        })
    }

    /// The next part of the dump; false once the import stopped (it
    /// failed: `finish` says why).
    pub async fn write(&mut self, chunk: &[u8]) -> bool {
        use tokio::io::AsyncWriteExt;
        match self {
            Importer::Archive { stdin, .. } => stdin.write_all(chunk).await.is_ok(),
            Importer::Plain(p) => p.write(chunk).await,
        }
    }

    /// The whole dump went in: commit, and name a failure with its cause.
    pub async fn finish(self) -> Result<()> {
        match self {
            Importer::Archive { piped, stdin } => {
                drop(stdin);
                piped.finish().await
            }
            Importer::Plain(p) => p.finish().await,
        }
    }
}

/// The file, opened, and whether it is a custom-format archive; a missing
/// or unreadable file is the user's error, found before anything runs.
fn open_dump(file: &Path) -> Result<(std::fs::File, bool)> {
    use std::io::{Read, Seek};
    let unreadable =
        |e: std::io::Error| Error::invalid("file", format!("cannot read {}: {e}", file.display()));
    let mut f = std::fs::File::open(file).map_err(unreadable)?;
    let mut head = Vec::with_capacity(CUSTOM_MAGIC.len());
    (&mut f)
        .take(CUSTOM_MAGIC.len() as u64)
        .read_to_end(&mut head)
        .map_err(unreadable)?;
    f.rewind().map_err(unreadable)?;
    Ok((f, is_custom(&head)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_files_are_checked() {
        assert_eq!(DumpFormat::parse("custom").unwrap(), DumpFormat::Custom);
        assert_eq!(DumpFormat::parse("plain").unwrap(), DumpFormat::Plain);
        let e = DumpFormat::parse("tar").unwrap_err().to_string();
        assert!(e.contains("format") && e.contains("tar"), "{e}");
        let d = crate::testing::TempDir::new("dump");
        std::fs::write(d.join("c.dump"), b"PGDMP\x01\x0e").unwrap();
        std::fs::write(d.join("p.sql"), b"CREATE TABLE t ();\n").unwrap();
        assert!(open_dump(&d.join("c.dump")).unwrap().1);
        assert!(!open_dump(&d.join("p.sql")).unwrap().1);
        let e = open_dump(&d.join("missing")).unwrap_err();
        assert!(matches!(e, Error::Invalid { ref field, .. } if field == "file"));
    }
}
