//! The commands that read an instance's data: sql, metrics and dump.

use crate::cli;
use crate::print;
use dbaas::error::{Error, Result};
use dbaas::home::Home;
use dbaas::ops;
use std::io::IsTerminal;

pub(crate) async fn dump(home: &Home, c: cli::Dump) -> Result<i32> {
    let format = ops::dump::DumpFormat::parse(&c.format)?;
    if format == ops::dump::DumpFormat::Custom && std::io::stdout().is_terminal() {
        return Err(Error::invalid(
            "output",
            "a custom-format dump is binary: redirect it to a file (dbaasctl dump NAME > app.dump), or use --format plain",
        ));
    }
    ops::dump::dump(home, &c.name, format).await
}

pub(crate) async fn sql(home: &Home, c: cli::Sql) -> Result<()> {
    let st = dbaas::db::exec::Statement {
        sql: c.sql,
        params: c.param.into_iter().map(serde_json::Value::String).collect(),
    };
    let json = c.json;
    let opts = dbaas::db::sql_options(&home.settings.db, c.read_only, !json);
    let rs = ops::with_client(home, &c.name, move |client| {
        // A one-off connection: a late cancel has no next statement to hit.
        let cancelled = std::cell::Cell::new(false);
        dbaas::db::exec::run_sql(client, &st, &opts, &|| false, &cancelled)
    })
    .await?;
    if json {
        print::json(&dbaas::db::exec::SqlResult::from_set(rs, false)?);
    } else {
        print::rows(&rs);
    }
    Ok(())
}

pub(crate) async fn metrics(home: &Home, c: cli::Metrics) -> Result<()> {
    let samples = ops::samples(home, &c.name, c.last).await?;
    if c.json {
        print::json(&samples);
    } else if samples.is_empty() {
        let inst = ops::find(home, &c.name).await?;
        println!(
            "no samples yet for '{}' (the agent writes one every {} s)",
            inst.name, inst.metrics_interval
        );
    } else {
        let typed: Vec<_> = samples
            .into_iter()
            .filter_map(dbaas::metrics::Sample::from_value)
            .collect();
        print::samples(&typed);
    }
    Ok(())
}
