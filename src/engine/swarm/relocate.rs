//! Moving a stopped swarm instance's data from one node to another: its
//! data volume (and its backup repository's) is streamed as a tar archive
//! from a one-off container on the old node into a new volume of the same
//! name on the new one, both made by the nodes' own daemons (a manager
//! cannot reach another node's volume). The stack, pinned to the new node,
//! then finds its volumes there.

use crate::engine::docker;
use crate::error::{Error, Result};
use std::time::Duration;

/// A volume of several GB streams in minutes; the bound catches a stall.
const COPY_TIMEOUT: Duration = Duration::from_secs(3600);

/// The volume the stack `id` calls `data`.
pub fn data_volume(id: &str) -> String {
    format!("{id}_data")
}

/// Whether the daemon at `ep` has the volume `vol`.
async fn has_volume(docker_cli: &str, ep: &str, vol: &str) -> Result<bool> {
    let filter = format!("name=^{vol}$");
    let out = docker::run(
        docker_cli,
        &["-H", ep, "volume", "ls", "-q", "--filter", &filter],
        None,
        docker::QUICK_TIMEOUT,
    )
    .await?;
    Ok(!out.stdout.trim().is_empty())
}

/// Refuses a node (the daemon at `to`) that has a volume by a name the
/// instance's data or backup repository would take: it is not ours to
/// overwrite.
pub async fn check_free(docker_cli: &str, to: &str, id: &str) -> Result<()> {
    for vol in [data_volume(id), repo_volume(id)] {
        if has_volume(docker_cli, to, &vol).await? {
            return Err(Error::Conflict(format!(
                "the new node already has a volume {vol}; remove it there (docker volume rm {vol}) if it is a leftover of an earlier move"
            )));
        }
    }
    Ok(())
}

/// Copies the data volume of `id`, and its backup repository volume when
/// it has one, from the daemon at `from` to the one at `to`, where neither
/// may exist yet; `image` (the instance's, present on both nodes) runs
/// tar. Ownership and modes are kept, by number. A failure removes what it
/// made on `to`.
pub async fn copy_data(
    docker_cli: &str,
    from: &str,
    to: &str,
    id: &str,
    image: &str,
    home_tag: &str,
) -> Result<()> {
    check_free(docker_cli, to, id).await?;
    let mut vols = vec![data_volume(id)];
    if has_volume(docker_cli, from, &repo_volume(id)).await? {
        vols.push(repo_volume(id));
    }
    let mut made = vec![];
    for vol in &vols {
        made.push(vol.as_str());
        let copied = copy_volume(docker_cli, from, to, id, vol, image, home_tag).await;
        if copied.is_err() {
            // Nothing of a half copy stays on the new node.
            let mut rm = vec!["-H", to, "volume", "rm", "-f"];
            rm.extend(&made);
            if let Err(e) = docker::run(docker_cli, &rm, None, docker::QUICK_TIMEOUT).await {
                log::warn!("removing the half-copied volumes {made:?}: {e}");
            }
            return copied;
        }
    }
    Ok(())
}

/// Makes the volume `vol` of instance `id` on the daemon at `ep`, with the
/// labels dbaas finds it by and the stack's namespace (a deploy of the
/// stack then adopts it). An existing volume of that name is kept.
pub async fn create_volume(
    docker_cli: &str,
    ep: &str,
    id: &str,
    vol: &str,
    home_tag: &str,
) -> Result<()> {
    let labels = [
        format!("dbaas.instance={id}"),
        format!("dbaas.home={home_tag}"),
        format!("com.docker.stack.namespace={id}"),
    ];
    let mut create = vec!["-H", ep, "volume", "create"];
    for l in &labels {
        create.extend(["--label", l.as_str()]);
    }
    create.push(vol);
    docker::run(docker_cli, &create, None, docker::QUICK_TIMEOUT)
        .await
        .map(|_| ())
}

async fn copy_volume(
    docker_cli: &str,
    from: &str,
    to: &str,
    id: &str,
    vol: &str,
    image: &str,
    home_tag: &str,
) -> Result<()> {
    create_volume(docker_cli, to, id, vol, home_tag).await?;
    let (src, dst) = (format!("{vol}:/from:ro"), format!("{vol}:/to"));
    let read = [
        "-H",
        from,
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &src,
        "--entrypoint",
        "tar",
        image,
        "--numeric-owner",
        "-C",
        "/from",
        "-cf",
        "-",
        ".",
    ];
    let write = [
        "-H",
        to,
        "run",
        "--rm",
        "-i",
        "--network",
        "none",
        "-v",
        &dst,
        "--entrypoint",
        "tar",
        image,
        "--numeric-owner",
        "-C",
        "/to",
        "-xpf",
        "-",
    ];
    docker::pipe(docker_cli, &read, &write, COPY_TIMEOUT).await
}

/// Removes the stopped containers of stack `id` from the daemon at `ep`:
/// Swarm keeps those of replaced tasks as history, and they hold the
/// volumes. A running one is an error (the instance runs there).
pub async fn remove_stopped(docker_cli: &str, ep: &str, id: &str) -> Result<()> {
    let filter = format!("label=com.docker.stack.namespace={id}");
    let list = |all: bool| {
        let flag = if all { "-aq" } else { "-q" };
        let args = ["-H", ep, "ps", flag, "--filter", filter.as_str()];
        async move {
            docker::run(docker_cli, &args, None, docker::QUICK_TIMEOUT)
                .await
                .map(|o| o.stdout)
        }
    };
    let running = list(false).await?;
    if !running.trim().is_empty() {
        return Err(Error::Conflict(format!(
            "a container of {id} still runs on the old node ({}); stop it first",
            running.trim()
        )));
    }
    let all = list(true).await?;
    remove_listed(docker_cli, &["-H", ep, "rm"], &all).await
}

/// Runs `rm` (a removal command) on the names a listing printed, one a
/// line; nothing when it printed none.
async fn remove_listed(docker_cli: &str, rm: &[&str], listed: &str) -> Result<()> {
    let names: Vec<&str> = listed
        .lines()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    let mut args = rm.to_vec();
    args.extend(names);
    docker::run(docker_cli, &args, None, docker::QUICK_TIMEOUT)
        .await
        .map(|_| ())
}

/// The volume of an instance's backup repository on its node.
pub fn repo_volume(id: &str) -> String {
    format!("{id}_repo")
}

/// Removes the volumes of `id` from the daemon at `ep` (they must be out
/// of use: the instance's containers there are gone), all but its backup
/// repository with `keep_repo`.
pub async fn remove_volumes(docker_cli: &str, ep: &str, id: &str, keep_repo: bool) -> Result<()> {
    let filter = format!("label=dbaas.instance={id}");
    let vols = docker::run(
        docker_cli,
        &["-H", ep, "volume", "ls", "-q", "--filter", &filter],
        None,
        docker::QUICK_TIMEOUT,
    )
    .await?
    .stdout;
    let repo = repo_volume(id);
    let vols: String = vols
        .lines()
        .filter(|v| !(keep_repo && v.trim() == repo))
        .map(|v| format!("{v}\n"))
        .collect();
    remove_listed(docker_cli, &["-H", ep, "volume", "rm"], &vols).await
}
