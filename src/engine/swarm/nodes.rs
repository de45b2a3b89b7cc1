//! What the swarm engine adds as an engine of several nodes: the nodes,
//! moving an instance's data between them, and the copies of what agents
//! and backup sidecars write on them.

use super::super::docker::QUICK_TIMEOUT;
use super::super::{NodeInfo, Service};
use super::state::parse_nodes;
use super::{backups, mirror, relocate, Swarm};
use crate::error::Result;
use std::path::Path;

#[async_trait::async_trait]
impl super::super::MultiNode for Swarm {
    async fn nodes(&self) -> Result<Vec<NodeInfo>> {
        let ids = self.run(&["node", "ls", "-q"], None, QUICK_TIMEOUT).await?;
        let mut args = vec!["node", "inspect"];
        args.extend(ids.lines().map(str::trim).filter(|l| !l.is_empty()));
        if args.len() == 2 {
            return Ok(vec![]);
        }
        parse_nodes(&self.run(&args, None, QUICK_TIMEOUT).await?)
    }

    async fn check_move(&self, id: &str, to: &str) -> Result<()> {
        let ep = self.endpoint(to).await?;
        relocate::check_free(self.docker(), &ep, id).await
    }

    async fn move_data(&self, id: &str, image: &str, from: &str, to: &str) -> Result<()> {
        let (a, b) = (self.endpoint(from).await?, self.endpoint(to).await?);
        let tag = self.home.tag();
        relocate::copy_data(self.docker(), &a, &b, id, image, &tag).await
    }

    async fn clear_node(&self, id: &str, node: &str) -> Result<()> {
        let ep = self.endpoint(node).await?;
        relocate::remove_stopped(self.docker(), &ep, id).await?;
        relocate::remove_volumes(self.docker(), &ep, id, false).await
    }

    async fn mirror_metrics(&self, id: &str, dir: &Path, keep: u32) -> Result<()> {
        let (ep, c) = self.container_of(id, &Service::Agent).await?;
        mirror::sync(self.docker(), &ep, &c, id, dir, keep).await
    }

    async fn mirror_backups(&self, id: &str, dir: &Path) -> Result<()> {
        let (ep, c) = self.container_of(id, &Service::Backup).await?;
        backups::sync(self.docker(), &ep, &c, dir).await
    }
}
