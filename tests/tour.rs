//! The README's five-minute tour, run as written: every `sh` block of its
//! "A five-minute tour" section, in order, in a home of its own, with
//! `dbaasctl` on the PATH. The block that talks to a running server (curl)
//! is left out: the API and the console have their own tests.

mod common;
use common::*;

/// The tour's shell blocks, as the README has them.
fn tour_blocks() -> Vec<String> {
    let readme = include_str!("../README.md");
    let start = readme
        .find("## A five-minute tour")
        .expect("the README has a tour");
    let end = readme[start + 3..]
        .find("\n## ")
        .map_or(readme.len(), |i| start + 3 + i);
    let mut blocks = vec![];
    let mut rest = &readme[start..end];
    while let Some(open) = rest.find("```sh\n") {
        let body = &rest[open + 6..];
        let close = body.find("```").expect("a closed block");
        blocks.push(body[..close].to_string());
        rest = &body[close + 3..];
    }
    blocks
}

#[test]
fn the_readmes_tour_runs_as_written() {
    if !docker_required() {
        return;
    }
    let blocks = tour_blocks();
    assert!(blocks.len() >= 5, "{blocks:?}");
    let script: String = blocks
        .iter()
        .filter(|b| !b.contains("curl "))
        .cloned()
        .collect::<Vec<_>>()
        .join("\n");
    for step in [
        "create shop",
        "backup shop",
        "restore shop",
        "clone shop",
        "destroy",
    ] {
        assert!(script.contains(step), "the tour lost `{step}`:\n{script}");
    }
    let h = TestHome::new("tour");
    let bin_dir = std::path::Path::new(BIN).parent().unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    let out = std::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .env("DBAAS_HOME", &h.root)
        .env("PATH", path)
        .current_dir(&h.root)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "the tour failed:\n{stdout}\n{stderr}");
    // The row deleted before the restore is back in the restored instance.
    assert!(stdout.contains("tea"), "{stdout}");
}
