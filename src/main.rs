//! The `pushhand` binary: parse flags and environment, set up logging, run a subcommand.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use pushhand::config::{Config, Environment};
use pushhand::service::{self, members};
use pushhand::{app, db, graphql, metrics::Metrics, seed, telemetry};

/// mimalloc instead of the system allocator: a GraphQL answer is many small allocations, and
/// glibc's malloc was a quarter of the server's CPU time under load (measured with `perf`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Write the demo data: catalog, accounts and curation records (idempotent: a second
    /// run adds nothing). Refused in production: the demo accounts' password is public.
    Seed {
        /// Only the demo catalog (categories, merchants, brands, products): no accounts and
        /// no curation records, so it is allowed in production.
        #[arg(long)]
        catalog_only: bool,
    },
    /// Create a staff account or a founding push-hand / partner (who have nobody to invite
    /// them). Exits with status 1 if the email is taken.
    CreateUser {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
        /// ADMIN, CURATOR, MERCHANT, PARTNER or PUSH_HAND.
        #[arg(long, value_enum)]
        role: RoleArg,
        #[arg(long)]
        display_name: Option<String>,
    },
    /// Print the GraphQL schema (SDL) or write it to a file.
    ExportSchema {
        /// Write here instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Compare a provider's daily trade bill with our payments, read-only: trades paid at
    /// the provider but not here, paid here but not in the bill, and amount differences.
    /// Exits with status 1 when there are any.
    Reconcile {
        /// Whose bill: WeChat Pay's trade bill, or Alipay's business detail (业务明细) CSV.
        #[arg(long, value_enum)]
        provider: BillProviderArg,
        /// The bill file (UTF-8 or GBK).
        #[arg(long)]
        file: PathBuf,
        /// The Beijing day whose payments here must be in the bill (default: the days of
        /// the bill's payments).
        #[arg(long)]
        date: Option<chrono::NaiveDate>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum BillProviderArg {
    Wechat,
    Alipay,
}

#[derive(Clone, Copy, clap::ValueEnum)]
#[value(rename_all = "SCREAMING_SNAKE_CASE")]
enum RoleArg {
    Admin,
    Curator,
    Merchant,
    Partner,
    PushHand,
}

impl From<RoleArg> for members::CliRole {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Admin => members::CliRole::Admin,
            RoleArg::Curator => members::CliRole::Curator,
            RoleArg::Merchant => members::CliRole::Merchant,
            RoleArg::Partner => members::CliRole::Partner,
            RoleArg::PushHand => members::CliRole::PushHand,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Spans are exported (OTLP, when configured) by the server only, not by one-off commands.
    let serving = matches!(cli.command, None | Some(Command::Serve));
    let logging = match telemetry::init(cli.config.log_format, serving.then(|| runtime.handle())) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {}", telemetry::error_message(&e));
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(run(cli));
    // The runtime still runs: the last batch of spans goes out on it.
    logging.shutdown();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", telemetry::error_message(&e));
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.config;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let graphiql = config.graphiql_enabled();
            let app = app::App::build(config).await?;
            let addr = app.local_addr()?;
            if graphiql {
                tracing::info!(%addr, "listening; GraphiQL at http://{addr}/");
            } else {
                tracing::info!(%addr, "listening");
            }
            if let Some(metrics) = app.metrics_addr() {
                tracing::info!(addr = %metrics, "metrics at http://{metrics}/metrics");
            }
            app.run(app::shutdown_signal()).await
        }
        Command::Migrate => {
            config.validate()?;
            let conn = db::connect(&config, &Metrics::new()).await?;
            db::migrate(&conn).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Seed { catalog_only } => {
            config.validate()?;
            if !catalog_only && config.environment == Environment::Production {
                anyhow::bail!(
                    "demo seeding is refused in production: it creates staff accounts \
                     (admin@pushhand.example, ...) whose password the README publishes. \
                     `pushhand seed --catalog-only` imports the demo catalog alone; create \
                     staff with `pushhand create-user`"
                );
            }
            let conn = db::connect(&config, &Metrics::new()).await?;
            db::migrate(&conn).await?;
            let started = std::time::Instant::now();
            // Running instances sharing Redis hear what the seed changed.
            let events = app::offline_events(&config, &conn).await?;
            let report = if catalog_only {
                seed::run_catalog_only(&conn, &events).await?
            } else {
                seed::run(&conn, &events).await?
            };
            if report.already_seeded {
                println!("demo data already present: nothing added");
            } else {
                println!(
                    "seeded {} categories, {} merchants, {} brands, {} products ({} published), {} SKUs, \
                     {} members, curation records for {} products in {:.1}s",
                    report.categories,
                    report.merchants,
                    report.brands,
                    report.products,
                    report.published,
                    report.skus,
                    report.members,
                    report.curated,
                    started.elapsed().as_secs_f64()
                );
            }
            Ok(())
        }
        Command::CreateUser {
            email,
            password,
            role,
            display_name,
        } => {
            config.validate()?;
            let conn = db::connect(&config, &Metrics::new()).await?;
            db::migrate(&conn).await?;
            let m = members::create_user(
                &conn,
                &email,
                &password,
                role.into(),
                display_name.as_deref(),
                service::now(),
            )
            .await?;
            println!("created member {} ({})", m.id, email);
            if let Some(code) = &m.invite_code {
                println!("invite code: {code}");
            }
            if let Some(code) = &m.partner_link_code {
                println!("partner link code: {code}");
            }
            Ok(())
        }
        Command::Reconcile {
            provider,
            file,
            date,
        } => {
            use pushhand::payments::reconcile::{self, BillProvider};
            config.validate()?;
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let provider = match provider {
                BillProviderArg::Wechat => BillProvider::Wechat,
                BillProviderArg::Alipay => BillProvider::Alipay,
            };
            let bill = match provider {
                BillProvider::Wechat => reconcile::parse_wechat(&bytes),
                BillProvider::Alipay => reconcile::parse_alipay(&bytes),
            }
            .with_context(|| format!("reading the bill {}", file.display()))?;
            // Read-only: no migration, no write.
            let conn = db::connect(&config, &Metrics::new()).await?;
            let report =
                reconcile::reconcile(&conn, provider, bill, date.map(|d| [d].into())).await?;
            print!("{}", report.render(provider));
            if report.clean() {
                Ok(())
            } else {
                anyhow::bail!("the bill and the books differ")
            }
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
