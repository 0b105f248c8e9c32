//! The `pushhand` binary: parse flags and environment, set up logging, run a subcommand.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use pushhand::{app, config::Config, db, graphql, metrics::Metrics, seed, telemetry};

#[derive(Parser)]
#[command(
    name = "pushhand",
    version,
    about = "GraphQL API server for curated social commerce"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    config: Config,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default): applies pending migrations first.
    Serve,
    /// Apply pending migrations and exit.
    Migrate,
    /// Write the demo catalog (idempotent: a second run adds nothing).
    Seed,
    /// Print the GraphQL schema (SDL) or write it to a file.
    ExportSchema {
        /// Write here instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.config.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.config;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = app::App::build(config).await?;
            tracing::info!(addr = %app.local_addr()?, "listening; GraphiQL at http://{}/", app.local_addr()?);
            app.run(app::shutdown_signal()).await
        }
        Command::Migrate => {
            config.validate()?;
            let conn = db::connect(&config, &Metrics::new()).await?;
            db::migrate(&conn).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Seed => {
            config.validate()?;
            let conn = db::connect(&config, &Metrics::new()).await?;
            db::migrate(&conn).await?;
            let started = std::time::Instant::now();
            let report = seed::run(&conn).await?;
            if report.already_seeded {
                println!("demo data already present: nothing added");
            } else {
                println!(
                    "seeded {} categories, {} merchants, {} brands, {} products ({} published), {} SKUs in {:.1}s",
                    report.categories,
                    report.merchants,
                    report.brands,
                    report.products,
                    report.published,
                    report.skus,
                    started.elapsed().as_secs_f64()
                );
            }
            Ok(())
        }
        Command::ExportSchema { output } => {
            let sdl = graphql::sdl();
            match output {
                Some(path) => std::fs::write(&path, sdl)
                    .with_context(|| format!("writing {}", path.display())),
                None => {
                    print!("{sdl}");
                    Ok(())
                }
            }
        }
    }
}
