//! The fast provisioning path: per PostgreSQL version, one data directory
//! initialised by the image's own initdb (template-data/<version>/data,
//! with the id of the image that made it in template-data/<version>/image),
//! copied into each new instance (a reflink where the filesystem offers
//! one) and personalised by the image's entrypoint at the instance's first
//! start: its superuser password, database, roles and init scripts, exactly
//! as after initdb. The template holds no password an instance keeps.

use super::blocking;
use crate::engine;
use crate::error::{Error, IoContext, Result};
use crate::home::Home;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// initdb in a container: seconds on this machine; bounded only to catch
/// a hang.
const MAKE_TIMEOUT: Duration = Duration::from_secs(300);
/// The image that made a template.
const IMAGE_FILE: &str = "image";

/// While this file is in a data directory, a copy is filling it: the
/// image's entrypoint waits for it to go before it looks at the directory,
/// so that the db container starts beside the copy (scripts/docker-entrypoint.sh).
pub const COPYING: &str = "dbaas-copying";

/// Fills `data` (an empty directory) with a copy of the template of
/// `version`, making the template first when it is missing or was made by
/// another image than `image` is now. `COPYING` is there from the start
/// until the copy is complete.
pub async fn fill(home: &Home, version: u32, image: &str, data: &Path) -> Result<()> {
    let marker = data.join(COPYING);
    let m = marker.clone();
    blocking(move || {
        crate::registry::write_atomic(&m, b"a template copy is filling this directory\n", 0o644)
    })
    .await?;
    fill_template(home, version, image, data).await?;
    blocking(move || std::fs::remove_file(&marker).ctx(|| format!("removing {}", marker.display())))
        .await
}

async fn fill_template(home: &Home, version: u32, image: &str, data: &Path) -> Result<()> {
    let image_id = engine::of(home).image_id(image).await?;
    let dir = home.template_dir(version);
    loop {
        // Copies share the template; making one excludes everyone.
        let shared = blocking(lock_file(dir.clone(), libc::LOCK_SH)).await?;
        if current(&dir, &image_id) {
            let copied = copy(&dir.join("data"), data).await;
            drop(shared);
            return copied;
        }
        drop(shared);
        let exclusive = blocking(lock_file(dir.clone(), libc::LOCK_EX)).await?;
        if !current(&dir, &image_id) {
            make(home, &dir, image, &image_id).await?;
        }
        drop(exclusive);
    }
}

/// Whether the template exists and was made by the image `image_id`.
fn current(dir: &Path, image_id: &str) -> bool {
    dir.join("data").join("PG_VERSION").is_file()
        && std::fs::read_to_string(dir.join(IMAGE_FILE)).is_ok_and(|s| s.trim() == image_id)
}

/// (Re)makes the template: initdb into a new directory, which then replaces
/// the old one, so that a copy never sees a half-made template.
async fn make(home: &Home, dir: &Path, image: &str, image_id: &str) -> Result<()> {
    let fresh = dir.with_extension("new");
    let (f, old) = (fresh.clone(), dir.with_extension("old"));
    blocking(move || {
        for d in [&f, &old] {
            super::destroy::remove_dir(d)?;
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(f.join("data"))
            .ctx(|| format!("creating {}", f.display()))
    })
    .await?;
    log::info!("making the template of {image} in {}", dir.display());
    engine::of(home)
        .make_template(image, &fresh.join("data"), MAKE_TIMEOUT)
        .await?;
    let (f, d, id) = (fresh, dir.to_path_buf(), image_id.to_string());
    blocking(move || {
        crate::registry::write_atomic(&f.join(IMAGE_FILE), format!("{id}\n").as_bytes(), 0o644)?;
        let old = d.with_extension("old");
        if d.exists() {
            std::fs::rename(&d, &old).ctx(|| format!("moving {} aside", d.display()))?;
        }
        std::fs::rename(&f, &d).ctx(|| format!("putting {} in place", d.display()))?;
        super::destroy::remove_dir(&old)
    })
    .await
}

/// `cp -a --reflink=auto FROM/. TO`: owners, modes and the directory's own
/// attributes kept; a reflink (no data copied) where the filesystem allows.
/// Killed when the create is abandoned (the future dropped: Ctrl-C), so
/// that it does not go on writing into a directory the rollback removes.
async fn copy(from: &Path, to: &Path) -> Result<()> {
    let mut cp = tokio::process::Command::new("cp");
    cp.arg("-a")
        .arg("--reflink=auto")
        .arg(from.join("."))
        .arg(to)
        .kill_on_drop(true);
    // The same for a killed dbaasctl (doctor --fix removes the directory).
    // SAFETY: prctl only sets a flag of the child; no memory is touched.
    unsafe {
        cp.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let out = cp.output().await.ctx(|| "running cp".to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Failed(format!(
            "copying the template {} into {} failed: {}",
            from.display(),
            to.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// A flock on template-data/<version>.lock.
fn lock_file(dir: PathBuf, how: libc::c_int) -> impl FnOnce() -> Result<crate::registry::Lock> {
    move || crate::registry::lock_file(&dir.with_extension("lock"), how)
}
