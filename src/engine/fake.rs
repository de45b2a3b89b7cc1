//! A fake engine for the unit tests of `ops/`: it records every call, keeps
//! which instances are "up", and fails the first call of a chosen kind with
//! the error a real engine gives when the daemon is gone. `install` makes
//! `engine::of` return it for one home (each test has its own).

use super::{
    Attach, Container, ContainerState, Engine, HostCheck, Mount, NodeInfo, PsMap, Service,
};
use crate::error::{Error, Result};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

fn installed() -> &'static Mutex<HashMap<PathBuf, Arc<FakeEngine>>> {
    static MAP: OnceLock<Mutex<HashMap<PathBuf, Arc<FakeEngine>>>> = OnceLock::new();
    MAP.get_or_init(Default::default)
}

/// `engine::of` of the home at `root` returns `engine` from now on.
pub fn install(root: &Path, engine: Arc<FakeEngine>) {
    installed()
        .lock()
        .expect("fakes")
        .insert(root.to_path_buf(), engine);
}

pub(super) fn for_home(root: &Path) -> Option<Arc<dyn Engine>> {
    let map = installed().lock().expect("fakes");
    map.get(root).map(|e| e.clone() as Arc<dyn Engine>)
}

#[derive(Default)]
pub struct FakeEngine {
    calls: Mutex<Vec<String>>,
    /// Kinds of call (`up`, `down`, `preflight`, ...) whose next one fails.
    fail: Mutex<Vec<String>>,
    up: Mutex<HashSet<String>>,
    /// Projects written (`provisioned` answers from the directory).
    pub instances_dir: Option<PathBuf>,
    /// Nodes of a multi-node fake.
    pub nodes: Vec<NodeInfo>,
    /// What it says it can do (default: one host's engine).
    pub capabilities: Option<super::Capabilities>,
    /// What `exec` prints (a program's output in a container).
    exec_output: Mutex<String>,
}

impl FakeEngine {
    pub fn new(instances_dir: &Path) -> FakeEngine {
        FakeEngine {
            instances_dir: Some(instances_dir.to_path_buf()),
            ..Default::default()
        }
    }

    /// The next call of this kind fails as if the daemon had gone.
    pub fn fail_next(&self, kind: &str) {
        self.fail.lock().expect("fail").push(kind.to_string());
    }

    /// `exec` prints this from now on.
    pub fn exec_prints(&self, out: &str) {
        *self.exec_output.lock().expect("exec") = out.to_string();
    }

    /// The calls so far, as "kind id".
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("calls").clone()
    }

    pub fn is_up(&self, id: &str) -> bool {
        self.up.lock().expect("up").contains(id)
    }

    fn call(&self, kind: &str, id: &str) -> Result<()> {
        self.calls
            .lock()
            .expect("calls")
            .push(format!("{kind} {id}").trim_end().to_string());
        let mut fail = self.fail.lock().expect("fail");
        if let Some(i) = fail.iter().position(|k| k == kind) {
            fail.remove(i);
            return Err(Error::Docker(format!(
                "the Docker daemon is not reachable (fake: {kind} {id} failed)"
            )));
        }
        Ok(())
    }

    fn container(id: &str, service: &Service) -> Container {
        Container {
            name: format!("{id}-{}-1", service.name()),
            service: service.clone(),
            state: ContainerState::Running,
            health: None,
            status: "Up (fake)".into(),
        }
    }
}

#[async_trait::async_trait]
impl Engine for FakeEngine {
    async fn preflight(&self, image: &str, _s3_network: Option<&str>) -> Result<()> {
        self.call("preflight", image)
    }
    fn provisioned(&self, id: &str) -> bool {
        self.instances_dir.as_ref().is_some_and(|d| {
            d.join(id).join("docker-compose.yml").exists() || d.join(id).join("stack.yml").exists()
        })
    }
    fn defines(&self, id: &str, _service: &Service) -> bool {
        self.provisioned(id)
    }
    async fn up(&self, id: &str) -> Result<()> {
        self.call("up", id)?;
        self.up.lock().expect("up").insert(id.to_string());
        Ok(())
    }
    async fn up_service(&self, id: &str, _service: &Service) -> Result<()> {
        self.call("up_service", id)
    }
    async fn down(&self, id: &str) -> Result<()> {
        self.call("down", id)?;
        self.up.lock().expect("up").remove(id);
        Ok(())
    }
    async fn restart(&self, id: &str) -> Result<()> {
        self.call("restart", id)
    }
    async fn restart_service(&self, id: &str, _service: &Service) -> Result<()> {
        self.call("restart_service", id)
    }
    async fn ps(&self, only: Option<&str>) -> Result<PsMap> {
        self.call("ps", only.unwrap_or(""))?;
        let up = self.up.lock().expect("up");
        Ok(up
            .iter()
            .filter(|id| only.is_none_or(|o| o == id.as_str()))
            .map(|id| (id.clone(), vec![Self::container(id, &Service::Db)]))
            .collect())
    }
    async fn ps_service(&self, service: &Service) -> Result<PsMap> {
        self.call("ps_service", service.name())?;
        let up = self.up.lock().expect("up");
        Ok(up
            .iter()
            .map(|id| (id.clone(), vec![Self::container(id, service)]))
            .collect())
    }
    async fn logs(&self, id: &str, _s: &Service, _tail: u32, _max: usize) -> Result<Vec<String>> {
        self.call("logs", id).map(|_| vec![])
    }
    async fn attach(&self, id: &str, _what: Attach<'_>) -> Result<i32> {
        self.call("attach", id).map(|_| 0)
    }
    async fn exec_piped(
        &self,
        id: &str,
        _service: &Service,
        _argv: &[String],
    ) -> Result<tokio::process::Child> {
        self.call("exec_piped", id)?;
        Err(Error::Failed("the fake engine runs no programs".into()))
    }
    async fn exec(
        &self,
        id: &str,
        _service: &Service,
        _argv: &[String],
        _timeout: std::time::Duration,
    ) -> Result<String> {
        self.call("exec", id)?;
        Ok(self.exec_output.lock().expect("exec").clone())
    }
    async fn run_once(
        &self,
        id: &str,
        _service: &Service,
        _mounts: &[Mount],
        _argv: &[String],
        _timeout: std::time::Duration,
    ) -> Result<String> {
        self.call("run_once", id).map(|_| String::new())
    }
    async fn host_checks(&self) -> Vec<HostCheck> {
        vec![]
    }
    async fn image_present(&self, _image: &str) -> bool {
        true
    }
    async fn update_limits(&self, id: &str, _s: &Service, _m: u64, _c: f64) -> Result<()> {
        self.call("update_limits", id)
    }
    async fn image_id(&self, image: &str) -> Result<String> {
        self.call("image_id", image).map(|_| "sha256:fake".into())
    }
    async fn make_template(
        &self,
        image: &str,
        _dir: &Path,
        _timeout: std::time::Duration,
    ) -> Result<()> {
        self.call("make_template", image)
    }
    async fn check_s3_network(&self, network: &str) -> Result<()> {
        self.call("check_s3_network", network)
    }
    fn capabilities(&self) -> super::Capabilities {
        self.capabilities.unwrap_or(super::Capabilities::ONE_HOST)
    }
    /// A fake given nodes is an engine of several nodes.
    fn multi_node(&self) -> Option<&dyn super::MultiNode> {
        (!self.nodes.is_empty()).then_some(self as &dyn super::MultiNode)
    }
}

#[async_trait::async_trait]
impl super::MultiNode for FakeEngine {
    async fn check_move(&self, id: &str, to: &str) -> Result<()> {
        self.call("check_move", &format!("{id} {to}"))
    }
    async fn move_data(&self, id: &str, _image: &str, from: &str, to: &str) -> Result<()> {
        self.call("move_data", &format!("{id} {from} {to}"))
    }
    async fn clear_node(&self, id: &str, node: &str) -> Result<()> {
        self.call("clear_node", &format!("{id} {node}"))
    }
    async fn nodes(&self) -> Result<Vec<NodeInfo>> {
        self.call("nodes", "")?;
        Ok(self.nodes.clone())
    }
    async fn mirror_metrics(&self, id: &str, _dir: &Path, _keep: u32) -> Result<()> {
        self.call("mirror_metrics", id)
    }
    async fn mirror_backups(&self, id: &str, _dir: &Path) -> Result<()> {
        self.call("mirror_backups", id)
    }
}
