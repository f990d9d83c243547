//! The `tenantql` command: its subcommands (serving by default), each run to its end.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;

use crate::app::{App, run_workers};
use crate::governance::erasure::erase_organization;
use crate::ids::OrgId;
use crate::integrations::crypto::Keyring;
use crate::integrations::keys;
use crate::integrations::workspaces::Workspaces;
use crate::settings::{Config, Settings};
use crate::tenancy::audit::Origin;
use crate::tenancy::{Actor, Db, erasure};

#[derive(Debug, Parser)]
#[command(name = "tenantql", version, about = "A multi-tenant GraphQL API server")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Debug, Clone, Copy, Subcommand, PartialEq, Eq)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the GraphQL schema (SDL) and exit.
    PrintSchema,
    /// Exit 0 when the server at LISTEN_ADDR answers /healthz, else 1 (for container health checks).
    Healthcheck,
    /// Run job workers only, no HTTP (for worker-only replicas).
    Worker,
    /// Re-encrypt every stored secret under the first key of ENCRYPTION_KEYS (resumable).
    RotateKeys,
    /// One organization's data: export it, or erase it.
    Org {
        #[command(subcommand)]
        action: OrgCommand,
    },
}

#[derive(Debug, Clone, Copy, Subcommand, PartialEq, Eq)]
pub enum OrgCommand {
    /// Write every row of the organization to stdout as JSON lines (secrets left out).
    Export { organization_id: uuid::Uuid },
    /// Erase every row and file of the organization; run again to finish an interrupted one.
    Delete { organization_id: uuid::Uuid },
}

impl Cli {
    /// Runs the command with logging set up; an error is logged and exits 1.
    pub async fn run(self) -> ExitCode {
        let telemetry = crate::telemetry::init(self.settings.log_format);
        let command = self.command.unwrap_or(Command::Serve);
        let code = match command.run(self.settings).await {
            Ok(code) => code,
            Err(error) => {
                tracing::error!("{error:#}");
                ExitCode::FAILURE
            }
        };
        telemetry.shutdown().await;
        code
    }
}

impl Command {
    async fn run(self, settings: Settings) -> anyhow::Result<ExitCode> {
        match self {
            Command::PrintSchema => print!("{}", crate::graphql::sdl()),
            Command::Healthcheck => return Ok(healthcheck(settings.listen_addr).await),
            Command::Migrate => migrate(settings.into_config()?).await?,
            Command::RotateKeys => rotate_keys(settings.into_config()?).await?,
            Command::Org { action } => action.run(settings.into_config()?).await?,
            Command::Worker => run_workers(settings.into_config()?, shutdown_signal()).await?,
            Command::Serve => serve(settings.into_config()?).await?,
        }
        Ok(ExitCode::SUCCESS)
    }
}

impl OrgCommand {
    async fn run(self, config: Config) -> anyhow::Result<()> {
        let db = Db::connect(&config.database_url, 2).await?;
        match self {
            OrgCommand::Export { organization_id } => {
                let mut out = std::io::BufWriter::new(std::io::stdout());
                let rows = erasure::export(&db, OrgId(organization_id), &mut out).await?;
                out.flush()?;
                tracing::info!(rows, "organization exported");
            }
            OrgCommand::Delete { organization_id } => {
                let workspaces = Workspaces::new(config.workspaces_dir.clone());
                let origin = Origin {
                    action: "deleteOrganization".into(),
                    client: Default::default(),
                };
                let org = OrgId(organization_id);
                // Other replicas' live streams of it end at their next re-check.
                erase_organization(&db, &workspaces, org, Actor::Operator, &origin, || {}).await?;
            }
        }
        db.close().await;
        Ok(())
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let started = Instant::now();
    let app = App::build(config).await?;
    tracing::info!(
        graphiql = %format!("http://{}/", app.local_addr()),
        startup_ms = started.elapsed().as_millis() as u64,
        "tenantql is ready; open GraphiQL at the address shown"
    );
    app.run(shutdown_signal()).await
}

async fn migrate(config: Config) -> anyhow::Result<()> {
    Db::connect(&config.database_url, 1).await?.migrate().await?;
    tracing::info!("migrations applied");
    Ok(())
}

async fn rotate_keys(config: Config) -> anyhow::Result<()> {
    let keyring = Keyring::parse(config.encryption_keys.expose_secret())?;
    let db = Db::connect(&config.database_url, 1).await?;
    let done = keys::rotate(&db, &keyring).await?;
    tracing::info!(
        rotated = done.rotated,
        spent_oauth_states_deleted = done.deleted,
        key = keyring.current_key_id(),
        "stored secrets are under the newest key"
    );
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => return interrupt.await.unwrap_or_default(),
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    interrupt.await.unwrap_or_default();
    tracing::info!("shutting down");
}

/// A plain HTTP/1.1 GET of /healthz, so container images need no curl.
async fn healthcheck(mut addr: SocketAddr) -> ExitCode {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A server listening on every interface is reached through loopback.
    if addr.ip().is_unspecified() {
        addr.set_ip(Ipv4Addr::LOCALHOST.into());
    }
    let check = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<bool, std::io::Error>(response.starts_with(b"HTTP/1.1 200"))
    };
    match tokio::time::timeout(Duration::from_secs(3), check).await {
        Ok(Ok(true)) => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    }
}
