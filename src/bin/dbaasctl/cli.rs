//! Command-line arguments (argh). Each command parses into options and makes
//! one call into `ops`; printing lives in main.rs.

use argh::FromArgs;

#[derive(FromArgs, Debug)]
/// dbaas: PostgreSQL instances on demand, each a Docker Compose project under
/// $DBAAS_HOME/instances/<id>. State lives in $DBAAS_HOME (default: the current
/// directory).
pub struct Cli {
    #[argh(subcommand)]
    pub command: Command,
}

#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum Command {
    Create(Create),
    Up(Up),
    Down(Down),
    Restart(Restart),
    Resize(Resize),
    Move(Move),
    Destroy(Destroy),
    List(List),
    Show(Show),
    Url(Url),
    Ca(Ca),
    Logs(Logs),
    Psql(Psql),
    Doctor(Doctor),
    Serve(Serve),
    Sql(Sql),
    Tables(Tables),
    Metrics(Metrics),
    Top(Top),
    Dump(Dump),
    Import(Import),
    Backup(crate::commands::backup::Backup),
    Backups(crate::commands::backup::Backups),
    Restore(crate::commands::backup::Restore),
    Clone(crate::commands::backup::Clone),
    Pool(Pool),
    Init(Init),
    Nodes(Nodes),
}

#[derive(FromArgs, Debug)]
/// Create and start an instance; prints its connection string when the app
/// user can connect.
#[argh(subcommand, name = "create")]
pub struct Create {
    /// instance name: lowercase letters, digits and '-', up to 63 characters
    #[argh(positional)]
    pub name: String,
    /// postgreSQL major version: 13, 15 or 17 (default 15)
    #[argh(option)]
    pub version: Option<String>,
    /// memory limit, e.g. 512m or 2g (default 512m)
    #[argh(option)]
    pub memory: Option<String>,
    /// CPU limit, e.g. 0.5 or 2 (default 1.0)
    #[argh(option)]
    pub cpus: Option<String>,
    /// host port (default: the lowest free port of DBAAS_PORT_RANGE)
    #[argh(option)]
    pub port: Option<u32>,
    /// application database name (default app)
    #[argh(option)]
    pub database: Option<String>,
    /// application user name (default app)
    #[argh(option)]
    pub user: Option<String>,
    /// seconds between monitoring samples, 1-3600 (default 10)
    #[argh(option)]
    pub metrics_interval: Option<String>,
    /// when full backups are taken: 24h (default), 6h, 30m or daily@HH:MM (UTC)
    #[argh(option)]
    pub backup_schedule: Option<String>,
    /// how long backups are kept: 7d (default; days of recovery) or a number of full backups
    #[argh(option)]
    pub backup_retention: Option<String>,
    /// no WAL archiving and no backups
    #[argh(switch)]
    pub no_backups: bool,
    /// also back up to this S3-compatible repository (a settings file of mode 0600; see docs/backups.md)
    #[argh(option)]
    pub s3: Option<std::path::PathBuf>,
    /// no S3 repository, though the host has one (DBAAS_S3)
    #[argh(switch)]
    pub no_s3: bool,
    /// keep containers and files if creation fails, for debugging
    #[argh(switch)]
    pub keep_on_failure: bool,
    /// accept TCP logins without TLS too (default: TLS only)
    #[argh(switch)]
    pub allow_plaintext: bool,
    /// the swarm node to run on (swarm homes; default: the node with the most free memory)
    #[argh(option)]
    pub node: Option<String>,
    /// print the result as JSON
    #[argh(switch)]
    pub json: bool,
}

#[derive(FromArgs, Debug)]
/// Start an instance (docker compose up) and wait until it accepts connections.
#[argh(subcommand, name = "up")]
pub struct Up {
    /// instance name or id
    #[argh(positional)]
    pub name: String,
}

#[derive(FromArgs, Debug)]
/// Stop an instance (docker compose down); its data is kept.
#[argh(subcommand, name = "down")]
pub struct Down {
    /// instance name or id
    #[argh(positional)]
    pub name: String,
}

#[derive(FromArgs, Debug)]
/// Restart an instance and wait until it accepts connections.
#[argh(subcommand, name = "restart")]
pub struct Restart {
    /// instance name or id
    #[argh(positional)]
    pub name: String,
}

#[derive(FromArgs, Debug)]
/// Change an instance's memory or CPUs while it runs (no restart), or its
/// port (recreates the container); settings derived from memory are
/// reloaded, and those that need a restart are reported as pending.
#[argh(subcommand, name = "resize")]
pub struct Resize {
    /// instance name or id
    #[argh(positional)]
    pub name: String,
    /// new memory limit, e.g. 1g
    #[argh(option)]
    pub memory: Option<String>,
    /// new CPU limit, e.g. 2 or 0.5
    #[argh(option)]
    pub cpus: Option<String>,
    /// new host port (a short restart)
    #[argh(option)]
    pub port: Option<u32>,
    /// restart now so that every setting applies
    #[argh(switch)]
    pub restart: bool,
    /// print the result as JSON
    #[argh(switch)]
    pub json: bool,
}

#[derive(FromArgs, Debug)]
/// Move a swarm instance to another node: it stops, its data is copied to
/// the node, and it starts there (its address becomes the node's); the old
/// node's copy is removed once it runs.
#[argh(subcommand, name = "move")]
pub struct Move {
    /// instance name or id
    #[argh(positional)]
    pub name: String,
    /// the node to move it to (`dbaasctl nodes` lists them)
    #[argh(option)]
    pub to: String,
    /// print the result as JSON
    #[argh(switch)]
    pub json: bool,
}

#[derive(FromArgs, Debug)]
/// Remove an instance: containers, network, directory and registry entry.
#[argh(subcommand, name = "destroy")]
pub struct Destroy {
    /// instance name or id
    #[argh(positional)]
    pub name: String,
    /// keep instances/<id>/ (and so the data) on disk
    #[argh(switch)]
    pub keep_data: bool,
    /// also delete its backups (kept by default in backups/<id>/)
    #[argh(switch)]
    pub delete_backups: bool,
    /// do not ask for confirmation (required when stdin is not a terminal)
    #[argh(switch, short = 'y')]
    pub yes: bool,
}

#[derive(FromArgs, Debug)]
/// List instances with their live status.
#[argh(subcommand, name = "list")]
pub struct List {
    /// print JSON
    #[argh(switch)]
    pub json: bool,
}

#[derive(FromArgs, Debug)]
/// Show one instance.
#[argh(subcommand, name = "show")]
pub struct Show {
    /// instance name or id
    #[argh(positional)]
    pub name: String,
    /// print JSON
    #[argh(switch)]
    pub json: bool,
    /// include the app user's password and full connection string
    #[argh(switch)]
    pub show_password: bool,
}

#[derive(FromArgs, Debug)]
/// Print the connection string (with the password) of an instance.
#[argh(subcommand, name = "url")]
pub struct Url {
    /// instance name or id
    #[argh(positional)]
    pub name: String,
}

#[derive(FromArgs, Debug)]
/// Print the home's certificate authority (PEM): clients on other machines
/// trust it to verify instances (libpq's sslrootcert, sslmode=verify-full).
#[argh(subcommand, name = "ca")]
pub struct Ca {}

#[derive(FromArgs, Debug)]
/// Print an instance's container logs.
#[argh(subcommand, name = "logs")]
pub struct Logs {
    /// instance name or id
    #[argh(positional)]
    pub name: String,
    /// number of lines from the end (default 100)
    #[argh(option, default = "100")]
    pub tail: u32,
    /// keep following the log
    #[argh(switch, short = 'f')]
    pub follow: bool,
}

#[derive(FromArgs, Debug)]
/// Open psql as the app user inside the instance's container.
#[argh(subcommand, name = "psql")]
pub struct Psql {
    /// instance name or id
    #[argh(positional)]
    pub name: String,
    /// run one command and exit (psql -c)
    #[argh(option, short = 'c')]
    pub command: Option<String>,
}

#[derive(FromArgs, Debug)]
/// Write the app database to standard output with pg_dump (redirect it to a
/// file): dbaasctl dump NAME > app.dump.
#[argh(subcommand, name = "dump")]
pub struct Dump {
    /// instance name or id
    #[argh(positional)]
    pub name: String,
    /// custom (compressed, for pg_restore; the default) or plain (SQL)
    #[argh(option, default = "String::from(\"custom\")")]
    pub format: String,
}

#[derive(FromArgs, Debug)]
/// Load a dump (custom or plain, told apart by its first bytes) into the app
/// database; stops at the first error.
#[argh(subcommand, name = "import")]
pub struct Import {
    /// instance name or id
    #[argh(positional)]
    pub name: String,
    /// the dump file
    #[argh(positional)]
    pub file: std::path::PathBuf,
}

#[derive(FromArgs, Debug)]
/// Check Docker, Compose, images and that the registry matches the containers.
#[argh(subcommand, name = "doctor")]
pub struct Doctor {
    /// repair what is safe to repair
    #[argh(switch)]
    pub fix: bool,
    /// print JSON
    #[argh(switch)]
    pub json: bool,
}

#[derive(FromArgs, Debug)]
/// Run one SQL statement as the app user and print the result as a table.
#[argh(subcommand, name = "sql")]
pub struct Sql {
    /// instance name or id
    #[argh(positional)]
    pub name: String,
    /// the statement, with $1, $2, ... for parameters
    #[argh(positional)]
    pub sql: String,
    /// a value for the next parameter ($1, then $2, ...); repeatable
    #[argh(option)]
    pub param: Vec<String>,
    /// run it in a READ ONLY transaction
    #[argh(switch)]
    pub read_only: bool,
    /// print JSON ({command, row_count, columns, rows})
    #[argh(switch)]
    pub json: bool,
}

#[derive(FromArgs, Debug)]
/// List the tables of an instance's database.
#[argh(subcommand, name = "tables")]
pub struct Tables {
    /// instance name or id
    #[argh(positional)]
    pub name: String,
    /// schema (default public)
    #[argh(option, default = "String::from(\"public\")")]
    pub schema: String,
    /// print JSON
    #[argh(switch)]
    pub json: bool,
}

#[derive(FromArgs, Debug)]
/// Print an instance's latest monitoring samples (instances/<id>/logs/metrics.json).
#[argh(subcommand, name = "metrics")]
pub struct Metrics {
    /// instance name or id
    #[argh(positional)]
    pub name: String,
    /// how many samples (default 1)
    #[argh(option, default = "1")]
    pub last: usize,
    /// print the samples as JSON
    #[argh(switch)]
    pub json: bool,
}

#[derive(FromArgs, Debug)]
/// The warm pool (DBAAS_WARM_POOL): `pool` lists the spares, `pool fill`
/// makes what is missing (and waits), `pool drain` destroys the spares.
#[argh(subcommand, name = "pool")]
pub struct Pool {
    /// status (the default), fill or drain
    #[argh(positional)]
    pub action: Option<String>,
    /// print JSON
    #[argh(switch)]
    pub json: bool,
}

#[derive(FromArgs, Debug)]
/// One screen: every instance with its status, connections, TPS, cache hit
/// ratio and size, from the agents' latest samples.
#[argh(subcommand, name = "top")]
pub struct Top {
    /// print JSON
    #[argh(switch)]
    pub json: bool,
}

#[derive(FromArgs, Debug)]
/// Bind this home to its engine, once: compose (one host, the default) or
/// swarm (a Docker Swarm cluster, reached through DOCKER_HOST's manager).
#[argh(subcommand, name = "init")]
pub struct Init {
    /// compose or swarm
    #[argh(option)]
    pub engine: String,
}

#[derive(FromArgs, Debug)]
/// The swarm's nodes: state, availability, labels, memory and CPUs, and
/// the instances on each with their budgets.
#[argh(subcommand, name = "nodes")]
pub struct Nodes {
    /// print JSON
    #[argh(switch)]
    pub json: bool,
}

#[derive(FromArgs, Debug)]
/// Run the REST API (OpenAPI at /openapi.json, Swagger UI at /docs, ReDoc at
/// /redoc). Every other route needs `Authorization: Bearer <token>`.
#[argh(subcommand, name = "serve")]
pub struct Serve {
    /// address to listen on (default 127.0.0.1:8000)
    #[argh(option, default = "String::from(\"127.0.0.1:8000\")")]
    pub listen: String,
}
