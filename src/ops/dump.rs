//! Logical dumps, for moving data in and out of dbaas: `pg_dump` and
//! `pg_restore`/`psql` inside the instance's container, as its app user,
//! streamed between the container and the user's file (never held whole).

use super::find;
use super::views::status_view;
use crate::engine::{self, Attach, Service};
use crate::error::{Error, Result};
use crate::home::Home;
use crate::registry::Instance;
use std::io::Read;
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

/// The instance, which must be serving: a dump or an import needs its
/// PostgreSQL.
async fn serving(home: &Home, key: &str) -> Result<Instance> {
    let inst = find(home, key).await?;
    let view = status_view(home, &inst).await?;
    if !view.status.serves() {
        return Err(Error::Conflict(format!(
            "instance '{}' is {}, not running; start it with `dbaasctl up {}`",
            inst.name, view.status, inst.name
        )));
    }
    Ok(inst)
}

/// The app database, to the user's standard output; returns pg_dump's exit
/// status. Ownership and grants are left out, so that the dump imports into
/// any instance whatever its user is called.
pub async fn dump(home: &Home, key: &str, format: DumpFormat) -> Result<i32> {
    let inst = serving(home, key).await?;
    let mut argv = vec![
        "pg_dump".to_string(),
        "--no-owner".into(),
        "--no-privileges".into(),
        "-U".into(),
        inst.user.clone(),
        "-d".into(),
        inst.database.clone(),
    ];
    if format == DumpFormat::Custom {
        argv.push("-Fc".into());
    }
    let what = Attach::Run {
        service: Service::Db,
        argv,
        stdin: None,
    };
    engine::of(home).attach(&inst.id, what).await
}

/// A dump file into the app database, as the app user: pg_restore for the
/// custom format (told apart by its first bytes), psql for plain SQL. Both
/// run it in one transaction and stop at the first error, so a failed
/// import changes nothing. Returns the tool's exit status.
pub async fn import(home: &Home, key: &str, file: &Path) -> Result<i32> {
    let (input, custom) = open_dump(file)?;
    let inst = serving(home, key).await?;
    let (user, db) = (inst.user.clone(), inst.database.clone());
    let argv: Vec<String> = if custom {
        [
            "pg_restore",
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
        ]
        .map(String::from)
        .into_iter()
        .chain(["-U".into(), user, "-d".into(), db])
        .collect()
    } else {
        ["psql", "-q", "-X", "-1", "-v", "ON_ERROR_STOP=1"]
            .map(String::from)
            .into_iter()
            .chain(["-U".into(), user, "-d".into(), db])
            .collect()
    };
    let what = Attach::Run {
        service: Service::Db,
        argv,
        stdin: Some(input),
    };
    engine::of(home).attach(&inst.id, what).await
}

/// The file, opened, and whether it is a custom-format archive; a missing
/// or unreadable file is the user's error, found before anything runs.
fn open_dump(file: &Path) -> Result<(std::fs::File, bool)> {
    let open = || {
        std::fs::File::open(file)
            .map_err(|e| Error::invalid("file", format!("cannot read {}: {e}", file.display())))
    };
    let mut head = [0u8; 5];
    let n = open()?.read(&mut head).unwrap_or(0);
    Ok((open()?, &head[..n] == CUSTOM_MAGIC))
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
