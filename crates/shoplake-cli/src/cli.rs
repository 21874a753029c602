//! Command-line arguments.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// shoplake: e-commerce behaviour events to a governed analytics lake.
///
/// Land the store's event exports (CSV or CSV.gz) in a layered lake of Delta tables
/// (raw -> clean -> model), keep it up to date incrementally, and query it with SQL.
///
/// Quick start:  shoplake demo
#[derive(Debug, Parser)]
#[command(
    name = "shoplake",
    version,
    about,
    long_about,
    propagate_version = true
)]
pub struct Cli {
    /// Lake location (a directory). Default: `lake` from shoplake.toml, else ./lake.
    #[arg(long, global = true, env = "SHOPLAKE_LAKE", value_name = "PATH")]
    pub lake: Option<String>,

    /// Memory budget of the query engine, e.g. 2GiB or 512MiB; work beyond it spills to disk.
    #[arg(
        long,
        global = true,
        env = "SHOPLAKE_MEMORY_LIMIT",
        value_name = "SIZE"
    )]
    pub memory_limit: Option<String>,

    /// Configuration file. Default: ./shoplake.toml when it exists.
    #[arg(long, global = true, env = "SHOPLAKE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log format: human (default) or json (one object per line, for machines).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,

    /// Print only results and errors (no progress bars, no log lines).
    #[arg(long, short, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// How log lines look.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    /// Readable lines.
    Human,
    /// JSON lines.
    Json,
}

/// The verbs.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate a realistic month of events, run the whole pipeline, print a report.
    Demo(DemoArgs),
    /// Write synthetic store events in the export format (CSV, or CSV.gz when FILE ends in .gz).
    Generate(GenerateArgs),
    /// Land CSV / CSV.gz exports (files or directories) in raw.events.
    Ingest(IngestArgs),
    /// Bring clean and model tables up to date with raw (only the days that changed).
    Run(RunArgs),
    /// Clean exports straight into day-partitioned Parquet, without a lake (no Delta log,
    /// rejects table or star schema): the same rules as `run`, duplicates dropped, rejected
    /// lines in OUT/_rejects.csv, counts in OUT/_report.json.
    Convert(ConvertArgs),
    /// Evaluate the quality checks on the published tables (all, or one) and store the results
    /// in quality.results. Exit code 3 when a check of severity error fails.
    Check(CheckArgs),
    /// Run a read-only SQL query over the lake's tables (raw.events, clean.events, model.*, ...).
    #[command(visible_alias = "sql")]
    Query(QueryArgs),
    /// Profile an export (CSV / CSV.gz) or a lake table: nulls, duplicates, distributions,
    /// suggested cleaning rules. Exact unless --sample or --approx is given.
    Profile(ProfileArgs),
    /// The BI reports from the marts: funnel, products, sessions, categories, brands, trends,
    /// prices, users (and a summary), over a range of days, for a category or brand. With no
    /// name, lists them and what each answers.
    Report(ReportArgs),
    /// Serve the dashboard (a page with charts), the reports' JSON API, /healthz and
    /// /metrics over HTTP, and with --pg the lake over the PostgreSQL protocol (read-only),
    /// on loopback unless told otherwise.
    Serve(ServeArgs),
    /// The users file of `serve`: logins and their roles.
    Users(UsersArgs),
    /// The store's PostgreSQL database: create its schema, load an export into it as the app
    /// would have written it, or play live app traffic against it.
    Oltp(OltpArgs),
    /// Change data capture: copy the store's database into raw.cdc_* tables (an initial
    /// snapshot, then every committed change), exactly once, until stopped (or with
    /// --catch-up, until everything committed before the start is in).
    Cdc(CdcArgs),
    /// Show every table (version, partitions, rows, last update) and the latest runs.
    Status(StatusArgs),
    /// Write the data dictionary (docs/data_dictionary.md) from the table definitions.
    Docs(DocsArgs),
}

/// `shoplake demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Events to generate.
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: u64,
    /// Random seed (same seed, same data).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Where to write the generated export. Default: shoplake-demo-events.csv.gz beside the lake
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// `shoplake generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Number of event rows (the header is not counted).
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: u64,
    /// Output file: .csv, or .csv.gz for gzip.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Random seed: the same seed and options give byte-identical output.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// First day (UTC).
    #[arg(long, default_value = "2020-04-01", value_parser = parse_date)]
    pub start: NaiveDate,
    /// Number of days.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Make this day (0-based index) a near-empty logging gap.
    #[arg(long, value_name = "INDEX")]
    pub gap_day: Option<u32>,
}

/// `shoplake convert`.
#[derive(Debug, Args)]
#[command(
    after_help = "Output: OUT/event_date=YYYY-MM-DD/part-NNN.parquet (zstd), one file per \
worker and day, with event_time, event_type, product_id, category_id, category_code, brand, \
price, user_id, user_session, hour_of_day, day_of_week. Written into a hidden staging directory \
and renamed into place when complete: a killed conversion publishes nothing."
)]
pub struct ConvertArgs {
    /// Files (.csv, .csv.gz) or directories holding them.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Output directory (must not exist unless --overwrite).
    #[arg(long, short, value_name = "DIR")]
    pub out: PathBuf,
    /// Replace OUT when it exists (the old content stays until the new one is complete).
    #[arg(long)]
    pub overwrite: bool,
    /// Parse workers; one more thread inflates the input. Default: the number of cores.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// zstd level of the Parquet files (1 fastest .. 22 smallest).
    #[arg(long, default_value_t = 1, value_name = "LEVEL")]
    pub zstd_level: i32,
    /// How to print the report: a table, or the JSON of OUT/_report.json.
    #[arg(long, short, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
}

/// How `convert` prints its report.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ReportFormat {
    /// Readable summary.
    Table,
    /// The report as JSON.
    Json,
}

/// `shoplake ingest`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Files (.csv, .csv.gz) or directories holding them.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

/// `shoplake run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Rebuild this day, whether it changed or not.
    #[arg(long, value_parser = parse_date, conflicts_with_all = ["from", "to"])]
    pub date: Option<NaiveDate>,
    /// Rebuild every day from this one (with --to).
    #[arg(long, value_parser = parse_date, requires = "to")]
    pub from: Option<NaiveDate>,
    /// Last day to rebuild (with --from).
    #[arg(long, value_parser = parse_date, requires = "from")]
    pub to: Option<NaiveDate>,
    /// Show which days would be rebuilt and why; write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `shoplake check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Only the checks of this table (e.g. clean.events).
    #[arg(value_name = "TABLE")]
    pub table: Option<String>,
}

/// Output format of query results.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum OutputFormat {
    /// Aligned text table.
    Table,
    /// CSV with a header line.
    Csv,
    /// One JSON object per line.
    Json,
}

/// `shoplake query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The SQL statement (read-only). Tables: raw.events, clean.events, clean.rejects,
    /// model.fact_user_events, model.dim_users, model.dim_products, model.dim_categories,
    /// model.dim_sessions, model.dim_time, meta.runs, meta.run_days, meta.ingests.
    #[arg(value_name = "SQL")]
    pub sql: String,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// After the result, print to standard error how long the statement took, split into
    /// planning (opening the tables' Delta logs, the SQL, its plan and the files each scan
    /// reads) and execution (reading and computing). Printing the result and starting the process are not counted.
    #[arg(long)]
    pub timing: bool,
}

/// Output format of a profile.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ProfileFormat {
    /// Text tables for a terminal.
    Table,
    /// Markdown.
    Md,
    /// One JSON document.
    Json,
    /// One self-contained HTML page with charts (opens offline).
    Html,
}

/// `shoplake profile`.
#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// A CSV / CSV.gz export, or a lake table such as raw.events or model.fact_user_events.
    #[arg(value_name = "PATH|TABLE")]
    pub target: String,
    /// Profile a reproducible random sample of this fraction of rows (0 < F <= 1); figures
    /// are then estimates and say so.
    #[arg(long, value_name = "FRACTION")]
    pub sample: Option<f64>,
    /// Seed of the sample: the same seed draws the same rows.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Count distinct values with a sketch (faster, bounded memory, approximate).
    #[arg(long)]
    pub approx: bool,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = ProfileFormat::Table)]
    pub format: ProfileFormat,
    /// Write to this file instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// The store database's URL.
#[derive(Debug, Args, Clone)]
pub struct DbArg {
    /// The store's database: postgresql://user:password@host:port/database.
    #[arg(long, env = "SHOPLAKE_DB", value_name = "URL")]
    pub db: String,
}

/// `shoplake oltp`.
#[derive(Debug, Args)]
pub struct OltpArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: OltpCommand,
}

/// The `oltp` verbs.
#[derive(Debug, Subcommand)]
pub enum OltpCommand {
    /// Create the store's normalized schema (users, brands, categories, products, sessions,
    /// events) or bring it to the latest version; running it again changes nothing.
    Init {
        #[command(flatten)]
        db: DbArg,
    },
    /// Load an export (CSV or CSV.gz) the way the app would have written it: users,
    /// sessions, products, brands and the category tree derived from the events, in
    /// batches with COPY. Lines the schema cannot hold are counted by reason. A file is
    /// loaded once; an interrupted load resumes after its last batch.
    Load {
        /// The export.
        file: PathBuf,
        #[command(flatten)]
        db: DbArg,
        /// Events per transaction.
        #[arg(long, default_value_t = 100_000, value_name = "N")]
        batch: usize,
    },
    /// Play live app traffic: sign-ups, sessions and events at RATE events per second, with
    /// the updates and deletes an app makes (prices, stock, profiles, deleted accounts),
    /// one multi-statement transaction every tenth of a second.
    Simulate {
        #[command(flatten)]
        db: DbArg,
        /// Events per second.
        #[arg(long, default_value_t = 100)]
        rate: u64,
        /// How long, e.g. 30s or 10m.
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        duration: std::time::Duration,
        /// Random seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

/// `shoplake cdc`.
#[derive(Debug, Args)]
pub struct CdcArgs {
    #[command(flatten)]
    pub db: DbArg,
    /// Logical replication slot (created when missing).
    #[arg(long, default_value = "shoplake", value_name = "NAME")]
    pub slot: String,
    /// Publication of the store's tables (created when missing).
    #[arg(long, default_value = "shoplake", value_name = "NAME")]
    pub publication: String,
    /// Stop once everything committed before the start is in the lake.
    #[arg(long)]
    pub catch_up: bool,
    /// Drop the slot and the raw.cdc_* rows and start over from a new snapshot (after a
    /// TRUNCATE, a lost slot, a schema change).
    #[arg(long)]
    pub resnapshot: bool,
    /// How often a heartbeat row is written (it moves the slot when the store is quiet).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub heartbeat: std::time::Duration,
    /// Longest a committed transaction waits before it is landed.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub flush_interval: std::time::Duration,
}

/// `shoplake status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// How many recent runs to list.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// The store's database, to show the replication slot's lag.
    #[arg(long, env = "SHOPLAKE_DB", value_name = "URL")]
    pub db: Option<String>,
    /// The slot whose lag to show.
    #[arg(long, default_value = "shoplake", value_name = "NAME")]
    pub slot: String,
}

/// `shoplake docs`.
#[derive(Debug, Args)]
pub struct DocsArgs {
    /// Output file.
    #[arg(long, default_value = "docs/data_dictionary.md", value_name = "FILE")]
    pub out: PathBuf,
    /// Only check that the file is up to date (exit 1 when it is not).
    #[arg(long)]
    pub check: bool,
}

fn parse_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| format!("'{text}' is not a date; write it YYYY-MM-DD"))
}

/// `shoplake report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The report (omit to list them).
    pub name: Option<String>,
    /// First day (default: the lake's first).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub from: Option<NaiveDate>,
    /// Last day, included (default: the lake's last).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub to: Option<NaiveDate>,
    /// A category code, or a prefix of one at a dot (`electronics` takes in
    /// `electronics.smartphone`).
    #[arg(long)]
    pub category: Option<String>,
    /// A brand.
    #[arg(long)]
    pub brand: Option<String>,
    /// Rows of a ranking (default 20).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Minimum views of the products report's "high traffic, low conversion" list (default 100).
    #[arg(long)]
    pub min_views: Option<u64>,
    /// Output: table (default), csv (one block per table), or json (the API's document).
    #[arg(long, short = 'f', value_enum, default_value_t = ReportOutput::Table)]
    pub format: ReportOutput,
}

/// How `shoplake report` prints.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ReportOutput {
    /// Aligned text tables.
    Table,
    /// CSV, one block per table, separated by a line `# table NAME`.
    Csv,
    /// The JSON document the API answers.
    Json,
}

/// `shoplake serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where the dashboard and the API listen (anything but loopback needs --users, with TLS,
    /// or --token).
    /// Default: `[serve] listen`, else 127.0.0.1:8080, unless only --pg is given
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<std::net::SocketAddr>,
    /// A token a request may carry instead of a login (Authorization: Bearer TOKEN, or
    /// ?token= on the page)
    #[arg(long, env = "SHOPLAKE_SERVE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Also answer the PostgreSQL wire protocol here (psql, BI tools, notebooks), read-only:
    /// e.g. 127.0.0.1:5433. Default: `[serve] pg`
    #[arg(long, value_name = "ADDR:PORT")]
    pub pg: Option<std::net::SocketAddr>,
    /// The users file (`shoplake users add` writes it): logins (SCRAM-SHA-256 over PostgreSQL,
    /// HTTP Basic on the dashboard), each with a role. Without it, only loopback is served,
    /// everyone as an engineer. Default: `[serve] users`
    #[arg(long, value_name = "FILE", env = "SHOPLAKE_USERS")]
    pub users: Option<PathBuf>,
    /// TLS certificate chain (PEM); with --tls-key, the dashboard is served over HTTPS and
    /// PostgreSQL clients may connect with sslmode=require (off loopback they must).
    /// Default: `[serve] tls_cert`
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM, unencrypted). Default: `[serve] tls_key`
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The most PostgreSQL connections served at once. Default: `[serve] pg_max_connections`,
    /// else 64
    #[arg(long, value_name = "N")]
    pub pg_max_connections: Option<usize>,
    /// The longest a statement may run (clients may lower it with SET statement_timeout).
    /// Default: `[serve] pg_statement_timeout`, else 5min
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub pg_statement_timeout: Option<std::time::Duration>,
    /// The most rows a result may send (a larger one ends with an error, SQLSTATE 54000).
    /// Default: `[serve] pg_max_rows`, else 1000000
    #[arg(long, value_name = "N")]
    pub pg_max_rows: Option<u64>,
    /// The engine memory one connection may use before it spills or fails, e.g. 1GiB.
    /// Default: `[serve] pg_memory_per_connection`, else 2GiB
    #[arg(long, value_name = "SIZE")]
    pub pg_memory_per_connection: Option<String>,
}

/// `shoplake users`.
#[derive(Debug, Args)]
pub struct UsersArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: UsersCommand,
}

/// The `users` verbs.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a user (or replace one's role and password) in the users file. The password is
    /// read from the first line of standard input; the file keeps only its SCRAM-SHA-256
    /// verifier.
    Add {
        /// The user's login name.
        name: String,
        /// The role: analyst (the model layer and the reports), engineer (every layer), or
        /// one the file defines under [roles.NAME].
        #[arg(long)]
        role: String,
        /// The users file (created when missing).
        #[arg(
            long,
            value_name = "FILE",
            env = "SHOPLAKE_USERS",
            default_value = "users.toml"
        )]
        file: PathBuf,
    },
    /// List the users of the users file and their roles.
    List {
        /// The users file.
        #[arg(
            long,
            value_name = "FILE",
            env = "SHOPLAKE_USERS",
            default_value = "users.toml"
        )]
        file: PathBuf,
    },
}
