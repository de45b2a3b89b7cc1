//! Where an instance's containers are: the node its stack file pins it
//! to, that node's daemon (its `dbaas.endpoint` label), and a service's
//! running container there.

use super::super::docker::QUICK_TIMEOUT;
use super::super::Service;
use super::{Swarm, ENDPOINT_LABEL};
use crate::engine::MultiNode as _;
use crate::error::{Error, Result};

impl Swarm {
    /// The node an instance is pinned to, read from its stack file.
    pub(super) fn node_of(&self, id: &str) -> Result<String> {
        let file = self.file(id);
        let text = crate::safe_fs::read_to_string(&file)
            .map_err(|e| Error::io(format!("reading {}", file.display()), e))?;
        text.lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("constraints: [\"node.hostname == ")
                    .and_then(|r| r.strip_suffix("\"]"))
            })
            .map(str::to_string)
            .ok_or_else(|| Error::Failed(format!("{} names no node", self.file(id).display())))
    }

    /// The db service's image and memory limit, read from the stack file.
    pub(super) fn image_and_memory(&self, id: &str) -> Result<(String, Option<String>)> {
        let file = self.file(id);
        let text = crate::safe_fs::read_to_string(&file)
            .map_err(|e| Error::io(format!("reading {}", file.display()), e))?;
        let mut lines = text.lines().map(str::trim);
        let image = lines
            .find_map(|l| {
                l.strip_prefix("image: \"")
                    .and_then(|r| r.strip_suffix('"'))
            })
            .ok_or_else(|| Error::Failed(format!("{} names no image", file.display())))?
            .to_string();
        // The first limits in the file are the db service's.
        // As the stack file says it (`256m`), which docker's --memory reads.
        let memory = lines.find_map(|l| {
            l.strip_prefix("limits: {memory: ")
                .and_then(|r| r.split(',').next())
                .map(str::trim)
                .filter(|m| !m.is_empty() && m.chars().all(|c| c.is_ascii_alphanumeric()))
                .map(str::to_string)
        });
        Ok((image, memory))
    }

    /// `docker -H ENDPOINT` of the node `name`, from its label.
    pub(super) async fn endpoint(&self, name: &str) -> Result<String> {
        let nodes = self.nodes().await?;
        let node = nodes
            .iter()
            .find(|n| n.name == name)
            .ok_or_else(|| Error::NotFound {
                what: format!("the swarm node '{name}'"),
                hint: "`dbaasctl nodes` lists the nodes".into(),
            })?;
        node.labels.get(ENDPOINT_LABEL).cloned().ok_or_else(|| {
            Error::Docker(format!(
                "node '{name}' has no {ENDPOINT_LABEL} label, so dbaas cannot reach its daemon; add one, e.g. docker node update --label-add {ENDPOINT_LABEL}=ssh://root@{name} {name}"
            ))
        })
    }

    /// The running container of `service` on the instance's node, and the
    /// endpoint of that node's daemon.
    pub(super) async fn container_of(
        &self,
        id: &str,
        service: &Service,
    ) -> Result<(String, String)> {
        let ep = self.endpoint(&self.node_of(id)?).await?;
        let filter = format!(
            "label=com.docker.swarm.service.name={id}_{}",
            service.name()
        );
        let out = self
            .run(
                &[
                    "-H",
                    &ep,
                    "ps",
                    "-q",
                    "--filter",
                    &filter,
                    "--filter",
                    "status=running",
                ],
                None,
                QUICK_TIMEOUT,
            )
            .await?;
        match out.lines().next() {
            Some(c) => Ok((ep, c.trim().to_string())),
            None => Err(Error::Conflict(format!(
                "instance {id} has no running {} container; start it first",
                service.name()
            ))),
        }
    }
}
