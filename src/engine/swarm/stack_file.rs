//! The stack file of an instance on a swarm node (templates/stack.yml),
//! rendered from its spec.

use crate::provision::spec::{InstanceSpec, ProjectFile};
use askama::Template;

pub const STACK_FILE: &str = "stack.yml";

#[derive(Template)]
#[template(path = "stack.yml", escape = "none")]
struct StackFile<'a> {
    s: &'a InstanceSpec,
    /// The node every service is pinned to.
    node: &'a str,
}

pub fn stack_file(spec: &InstanceSpec) -> ProjectFile {
    ProjectFile {
        file: STACK_FILE,
        text: StackFile {
            s: spec,
            node: spec.node.as_deref().unwrap_or(""),
        }
        .render()
        .expect("stack template renders"),
    }
}
