//! What the compose engine checks of its host and of the networks it is
//! given, before anything is made: the daemon, Compose v2, an S3 network
//! that keeps its containers apart.

use super::{is_v2, Compose};
use crate::engine::docker::{self, QUICK_TIMEOUT};
use crate::engine::HostCheck;
use crate::error::{Error, Result};

impl Compose {
    /// The S3 network joins every instance that names it: it must refuse
    /// traffic between its containers (a bridge with ICC off), or one
    /// instance's containers reach another's database over it.
    pub(super) async fn s3_network_isolates(&self, network: &str) -> Result<()> {
        let format = "{{.Driver}} {{index .Options \"com.docker.network.bridge.enable_icc\"}}";
        match self
            .run(&["network", "inspect", "--format", format, network], None, QUICK_TIMEOUT)
            .await
        {
            Ok(out) => docker::s3_network_verdict(network, &out),
            Err(Error::Compose(f)) if f.stderr_tail.contains("No such network") => {
                Err(Error::invalid(
                    "s3",
                    format!(
                        "the S3 settings name the Docker network '{network}', which does not exist: {}",
                        docker::S3_NETWORK_HOWTO
                    ),
                ))
            }
            Err(e) => Err(e),
        }
    }

    /// doctor's checks of this host: the daemon (nothing else without it),
    /// then Compose v2.
    pub(super) async fn checks(&self) -> Vec<HostCheck> {
        let daemon = self
            .run(
                &["version", "--format", "{{.Server.Version}}"],
                None,
                QUICK_TIMEOUT,
            )
            .await;
        let daemon = HostCheck {
            check: "docker",
            outcome: daemon
                .map(|v| format!("Docker Engine {} reachable", v.trim()))
                .map_err(|e| e.to_string()),
            fix: "start the daemon: systemctl start docker (or dockerd &)",
            fatal: true,
        };
        if daemon.outcome.is_err() {
            return vec![daemon];
        }
        let compose = HostCheck {
            check: "compose",
            outcome: match self.compose_version().await {
                Ok(v) if is_v2(&v) => Ok(format!("Compose {v} present")),
                Ok(v) => Err(format!("Compose {v} is not v2")),
                Err(e) => Err(e.to_string()),
            },
            fix: "run scripts/setup-host.sh",
            fatal: false,
        };
        vec![daemon, compose]
    }
}
