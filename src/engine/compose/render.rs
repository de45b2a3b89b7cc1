//! The compose file of an instance (templates/docker-compose.yml), rendered
//! from its spec.

use crate::provision::spec::{InstanceSpec, ProjectFile};
use askama::Template;

/// The generated project file in each instance directory.
pub const COMPOSE_FILE: &str = "docker-compose.yml";

#[derive(Template)]
#[template(path = "docker-compose.yml", escape = "none")]
struct ComposeFile<'a> {
    s: &'a InstanceSpec,
}

pub fn compose_file(spec: &InstanceSpec) -> ProjectFile {
    ProjectFile {
        file: COMPOSE_FILE,
        text: ComposeFile { s: spec }
            .render()
            .expect("compose template renders"),
    }
}
