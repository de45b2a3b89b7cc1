//! `doctor`: what is wrong, and `--fix`.

use crate::cli;
use crate::print;
use dbaas::error::Result;
use dbaas::home::Home;
use dbaas::ops;

pub(crate) async fn doctor(home: &Home, c: cli::Doctor) -> Result<i32> {
    let findings = ops::doctor::run(home, c.fix).await?;
    if c.json {
        print::json(&findings);
    } else {
        print::findings(&findings);
    }
    match ops::doctor::as_error(&findings) {
        Some(e) if c.json => Ok(e.exit_code()),
        Some(e) => Err(e),
        None => Ok(0),
    }
}
