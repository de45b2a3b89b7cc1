//! Restores: into a new instance (`restore --to`, `clone`), which recovers
//! in a one-off container before its first start; in place (the current
//! data directory kept aside); and undoing an in-place restore.

use crate::backups;
use crate::engine;
use crate::error::{Error, Result};
use crate::home::Home;
use crate::ops::backup::in_place;
use crate::ops::backup::recovery::{no_s3, recover, rfc3339, Recovery};
pub use crate::ops::backup::recovery::{parse_time, FromRepo, Target};
use crate::ops::backup::{archive_now, policy_of, source, Source};
use crate::ops::create::{create_begin, Pending};
use crate::ops::lifecycle::{operate, up_inner};
use crate::ops::views::InstanceView;
use crate::ops::{blocking, find};
use crate::registry::{Instance, Intent};
use crate::validate::CreateRequest;
use serde::Serialize;

/// Checks a target against the source's backups, forcing the current WAL
/// out first when the source runs (so the latest second is restorable).
async fn check_target(
    home: &Home,
    src: &Source,
    target: &Target,
    from: FromRepo,
    reachable: bool,
) -> Result<()> {
    if let Some(inst) = &src.live {
        if reachable && inst.backups.is_some() && matches!(target, Target::Latest | Target::Time(_))
        {
            archive_now(home, inst, from == FromRepo::S3).await;
        }
    }
    if from == FromRepo::S3 {
        // The window is known for the local repository only; a time past
        // what S3 holds fails the recovery, which says so.
        return check_s3(home, src, target).await;
    }
    let (dir, id) = (home.backup_dir(&src.id), src.id.clone());
    let report = blocking(move || backups::report(&dir, &id)).await?;
    let Some(window) = &report.window else {
        return Err(Error::Conflict(format!(
            "'{}' has no backup to restore from; take one with `dbaasctl backup {}`",
            src.name, src.name
        )));
    };
    match target {
        Target::Time(t) => {
            let t = rfc3339(t);
            // Second precision: the window's ends are whole seconds.
            let second = |s: &str| s.get(..19).unwrap_or(s).to_string();
            if second(&t) < second(&window.earliest) || second(&t) > second(&window.latest) {
                return Err(Error::invalid(
                    "time",
                    format!(
                        "{t} is outside the recoverable window of '{}': {} to {}",
                        src.name, window.earliest, window.latest
                    ),
                ));
            }
        }
        Target::Backup(b) if !report.backups.iter().any(|x| &x.label == b) => {
            return Err(Error::NotFound {
                what: format!("backup {b} of '{}'", src.name),
                hint: format!("`dbaasctl backups {}` lists them", src.name),
            });
        }
        _ => {}
    }
    Ok(())
}

/// An S3 restore needs the source's S3 settings, and a backup named by
/// label must be one S3 holds.
async fn check_s3(home: &Home, src: &Source, target: &Target) -> Result<()> {
    let dir = home.backup_dir(&src.id);
    let d = dir.clone();
    if blocking(move || crate::provision::read_s3(&d))
        .await?
        .is_none()
    {
        return Err(no_s3(&src.name));
    }
    if let Target::Backup(b) = target {
        let d = dir.clone();
        let labels = blocking(move || Ok(backups::s3_labels(&d))).await?;
        if !labels.iter().any(|l| l == b) {
            return Err(Error::NotFound {
                what: format!("backup {b} of '{}' in S3", src.name),
                hint: format!("`dbaasctl backups {}` lists them", src.name),
            });
        }
    }
    Ok(())
}

/// The first, quick part of a restore into a new instance (`restore --to`,
/// `clone`): the source and target checked, the new instance allocated as
/// `creating` with its recovery to run before its first start. Errors here
/// change nothing. `create_finish` does the rest.
pub async fn restore_begin(
    home: &Home,
    key: &str,
    new_name: &str,
    target: Target,
    from: FromRepo,
    node: Option<String>,
) -> Result<Pending> {
    crate::validate::instance_name(new_name)?;
    let src = source(home, key).await?;
    let (node, reachable) = placement(home, &src, from, node).await?;
    if let Some(inst) = &src.live {
        crate::ops::record::refuse_if_creating(inst)?;
    }
    // The name is checked again under the registry lock; this is the early,
    // cheap refusal before any WAL is forced out.
    if find(home, new_name).await.is_ok() {
        return Err(Error::Conflict(format!(
            "an instance named '{new_name}' already exists; choose another name"
        )));
    }
    check_target(home, &src, &target, from, reachable).await?;
    let policy = src
        .live
        .as_ref()
        .and_then(|i| i.backups.clone())
        .unwrap_or_default();
    let req = CreateRequest {
        name: new_name.to_string(),
        version: Some(src.version.to_string()),
        memory: Some(crate::validate::format_bytes(src.memory)),
        cpus: Some(src.cpus.to_string()),
        database: Some(src.database.clone()),
        user: Some(src.user.clone()),
        backup_schedule: Some(policy.schedule),
        backup_retention: Some(policy.retention),
        // The new instance backs up where the source did.
        s3: match blocking({
            let d = home.backup_dir(&src.id);
            move || crate::provision::read_s3(&d)
        })
        .await?
        {
            Some(s) => crate::backups::s3::S3Choice::Given(Box::new(s)),
            None => crate::backups::s3::S3Choice::Off,
        },
        node,
        ..Default::default()
    };
    let mut pending = create_begin(home, &req).await?;
    pending.recovery = Some(Recovery {
        source_id: src.id.clone(),
        source_repo: home.backup_dir(&src.id),
        target,
        from,
    });
    Ok(pending)
}

/// Where a restore into a new instance runs, and whether the source's node
/// can be reached. On a swarm, a local repository is a volume on the
/// source's node, so the new instance goes there (and that node must be
/// up); an S3 restore goes where `node` says, or where placement chooses.
async fn placement(
    home: &Home,
    src: &Source,
    from: FromRepo,
    node: Option<String>,
) -> Result<(Option<String>, bool)> {
    let Some(src_node) = &src.node else {
        return Ok((node, true));
    };
    let nodes = engine::nodes_of(engine::of(home).as_ref()).await?;
    let up = nodes.iter().any(|n| &n.name == src_node && n.usable());
    if from == FromRepo::S3 {
        return Ok((node, up));
    }
    if let Some(n) = node.as_ref().filter(|n| *n != src_node) {
        return Err(Error::invalid(
            "node",
            format!(
                "the local backups of '{}' are on node {src_node}, so a restore from them runs there, not on {n}; restore from its S3 repository (--from s3) to place it on another node",
                src.name
            ),
        ));
    }
    if !up {
        return Err(Error::Conflict(format!(
            "the local backups of '{}' are on node {src_node}, which is down or drained; restore from its S3 repository instead (--from s3 --node OTHER), or wait for the node",
            src.name
        )));
    }
    Ok((Some(src_node.clone()), true))
}

/// What an in-place restore (or its undo) did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct InPlace {
    pub instance: InstanceView,
    /// Where the data directory it replaced is kept (`restore --undo` puts
    /// it back).
    pub kept_aside: String,
}

/// Stops the instance, keeps its data directory aside, recovers into an
/// empty one from its own backups, starts. On failure the data directory
/// is put back and the instance started again.
pub async fn restore_in_place(
    home: &Home,
    key: &str,
    target: Target,
    from: FromRepo,
) -> Result<InPlace> {
    let inst = find(home, key).await?;
    policy_of(&inst)?;
    if !crate::engine::of(home).capabilities().in_place_restore {
        // Its data is a volume on the node: nothing here to keep aside.
        return Err(Error::invalid(
            "in_place",
            format!(
                "an in-place restore is not available on the swarm engine yet; restore into a new instance instead (`dbaasctl restore {} --to NEW`)",
                inst.name
            ),
        ));
    }
    let src = Source::of(&inst);
    check_target(home, &src, &target, from, true).await?;
    let rec = Recovery {
        source_id: inst.id.clone(),
        source_repo: home.backup_dir(&inst.id),
        target,
        from,
    };
    let (view, aside) = operate_in_place(home, key, |inst| in_place_inner(home, inst, rec)).await?;
    Ok(InPlace {
        instance: view,
        kept_aside: home
            .instance_dir(&inst.id)
            .join(aside)
            .display()
            .to_string(),
    })
}

async fn in_place_inner(
    home: &Home,
    inst: Instance,
    rec: Recovery,
) -> Result<(InstanceView, String)> {
    let dir = home.instance_dir(&inst.id);
    engine::of(home).down(&inst.id).await?;
    let d = dir.clone();
    let aside = blocking(move || in_place::set_aside(&d)).await?;
    if let Err(e) = recover(home, &inst.id, &rec).await {
        let (d, a) = (dir.clone(), aside.clone());
        let back = blocking(move || in_place::put_back(&d, &a)).await;
        let note = match back {
            Ok(()) => match up_inner(home, inst.clone()).await {
                Ok(_) => "the data directory was put back and the instance started again"
                    .to_string(),
                Err(r) => format!(
                    "the data directory was put back, but the instance did not start again ({r}); `dbaasctl up {}` starts it",
                    inst.name
                ),
            },
            Err(r) => format!(
                "putting the data directory back failed too ({r}); it is in {}",
                dir.join(&aside).display()
            ),
        };
        return Err(Error::Failed(format!(
            "the restore of '{}' failed ({note}): {e}",
            inst.name
        )));
    }
    let (d, a) = (dir.clone(), aside.clone());
    blocking(move || in_place::recovering(&d, &a, in_place::Step::Recovered)).await?;
    let view = up_inner(home, inst).await?;
    blocking(move || in_place::done(&dir)).await?;
    Ok((view, aside))
}

/// Swaps the data directory with the newest one kept aside by an in-place
/// restore or undo (so a second undo swaps them back), and starts the
/// instance. The directory it replaces is kept too.
pub async fn undo(home: &Home, key: &str) -> Result<InPlace> {
    let inst = find(home, key).await?;
    let dir = home.instance_dir(&inst.id);
    if in_place::newest_kept(&dir).is_none() {
        return Err(Error::Conflict(format!(
            "'{}' has no data directory kept by an in-place restore (no {}* in {}); nothing to undo",
            inst.name,
            in_place::KEPT_PREFIX,
            dir.display()
        )));
    }
    let (view, out) = operate_in_place(home, key, |inst| async move {
        engine::of(home).down(&inst.id).await?;
        let d = home.instance_dir(&inst.id);
        let out = blocking(move || in_place::swap(&d)).await?;
        Ok((up_inner(home, inst).await?, out))
    })
    .await?;
    Ok(InPlace {
        instance: view,
        kept_aside: dir.join(out).display().to_string(),
    })
}

/// `operate` for an operation that also says which directory it kept.
async fn operate_in_place<F, Fut>(home: &Home, key: &str, f: F) -> Result<(InstanceView, String)>
where
    F: FnOnce(Instance) -> Fut,
    Fut: std::future::Future<Output = Result<(InstanceView, String)>>,
{
    let kept = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let k = kept.clone();
    let view = operate(home, key, Intent::Restore, |inst| async move {
        let (view, name) = f(inst).await?;
        *k.lock().unwrap_or_else(|e| e.into_inner()) = name;
        Ok(view)
    })
    .await?;
    let name = kept.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok((view, name))
}

/// Deletes the data directories in-place restores and undos kept aside;
/// returns their paths.
pub async fn prune(home: &Home, key: &str) -> Result<Vec<String>> {
    let inst = find(home, key).await?;
    let dir = home.instance_dir(&inst.id);
    let d = dir.clone();
    let names = blocking(move || in_place::prune(&d)).await?;
    Ok(names
        .iter()
        .map(|n| dir.join(n).display().to_string())
        .collect())
}

/// An interrupted in-place restore or undo (its process killed): the
/// journal says which step ran, and it is finished with either the
/// original or the restored data live, the other kept; then the instance
/// is started.
pub async fn resume_restore(home: &Home, id: &str) -> Result<()> {
    let dir = home.instance_dir(id);
    if let Some(did) = blocking(move || in_place::resume(&dir)).await? {
        log::warn!("{id}: {did}");
    }
    crate::ops::lifecycle::up(home, id).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_refuse_clearly() {
        assert_eq!(Target::parse(None, None, None).unwrap(), Target::Latest);
        assert_eq!(
            Target::parse(Some("2026-11-29T01:02:03Z"), None, None).unwrap(),
            Target::Time("2026-11-29 01:02:03.000000+00".into())
        );
        assert_eq!(
            Target::parse(Some("2026-11-29 01:02:03.25"), None, None).unwrap(),
            Target::Time("2026-11-29 01:02:03.250000+00".into())
        );
        assert_eq!(
            Target::parse(None, Some("0/3000060"), None).unwrap(),
            Target::Lsn("0/3000060".into())
        );
        assert!(Target::parse(Some("yesterday"), None, None).is_err());
        assert!(Target::parse(None, Some("3000060"), None).is_err());
        assert!(Target::parse(None, None, Some("x; rm -rf /")).is_err());
        assert!(Target::parse(Some("2026-11-29T01:02:03Z"), Some("0/1"), None).is_err());
        assert_eq!(
            rfc3339("2026-11-29 01:02:03.250000+00"),
            "2026-11-29T01:02:03.250000Z"
        );
    }

    /// Where a restore into a new instance goes, asked of a fake engine
    /// with two nodes: a local repository is on the source's node, so the
    /// restore runs there or is refused, clearly; S3 goes anywhere.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_restore_is_placed_where_its_backups_are() {
        use crate::engine::fake::{install, FakeEngine};
        let t = crate::testing::TempDir::new("placement");
        let home = Home::new(crate::settings::Settings::with_root(t.path().to_path_buf()));
        let mut fake = FakeEngine::new(&home.root.join("instances"));
        fake.nodes = crate::ops::fake_engine_tests::two_nodes();
        fake.nodes[1].availability = "drain".into();
        install(&home.root, std::sync::Arc::new(fake));
        let mut inst = Instance::fixture("db_0000000a", "src", 45440);
        let mut on = |node: &str| {
            inst.node = Some(node.into());
            Source::of(&inst)
        };
        let (n1, n2) = (on("n1"), on("n2"));
        let local = FromRepo::Local;
        // Local backups on n1: the restore goes to n1.
        assert_eq!(
            placement(&home, &n1, local, None).await.unwrap(),
            (Some("n1".into()), true)
        );
        assert_eq!(
            placement(&home, &n1, local, Some("n1".into()))
                .await
                .unwrap(),
            (Some("n1".into()), true)
        );
        // ... and not elsewhere: the error says to restore from S3.
        let e = placement(&home, &n1, local, Some("n2".into()))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Invalid { .. }), "{e}");
        assert!(e.to_string().contains("--from s3"), "{e}");
        // Local backups on a drained node: refused, with the way out.
        let e = placement(&home, &n2, local, None).await.unwrap_err();
        assert!(matches!(e, Error::Conflict(_)), "{e}");
        assert!(e.to_string().contains("down or drained"), "{e}");
        // From S3 the caller's node stands (placement chooses without one),
        // and the answer says whether the source's node is up.
        assert_eq!(
            placement(&home, &n2, FromRepo::S3, Some("n1".into()))
                .await
                .unwrap(),
            (Some("n1".into()), false)
        );
        assert_eq!(
            placement(&home, &n1, FromRepo::S3, None).await.unwrap(),
            (None, true)
        );
        // A source on one host (no node): the caller's choice stands.
        inst.node = None;
        let here = Source::of(&inst);
        assert_eq!(
            placement(&home, &here, local, None).await.unwrap(),
            (None, true)
        );
    }
}
