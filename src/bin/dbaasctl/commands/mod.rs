//! One module per group of commands; main.rs dispatches to them. What
//! more than one group prints is here.

pub mod backup;
pub mod data;
pub mod doctor;
pub mod instances;

use crate::print;
use dbaas::error::Result;
use dbaas::home::Home;
use dbaas::ops;

/// A create (or a restore into a new instance) to its end, printed; Ctrl-C
/// rolls back what this process was creating (exit 130).
pub(crate) async fn created_or_rolled_back(
    home: &Home,
    work: impl std::future::Future<Output = Result<ops::Created>>,
    json: bool,
    verb: &str,
) -> Result<i32> {
    let created = tokio::select! {
        r = work => r?,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("interrupted: rolling back");
            let undone = ops::abandon_own_creates(home).await?;
            eprintln!("rolled back {}", if undone.is_empty() { "nothing".to_string() } else { undone.join(", ") });
            return Ok(130);
        }
    };
    if json {
        print::json(&created);
    } else {
        let i = &created.instance;
        eprintln!(
            "{verb} '{}' ({}): PostgreSQL {} on {}:{}",
            i.name, i.id, i.version, i.bind_address, i.port
        );
        println!("{}", created.url);
    }
    Ok(0)
}
