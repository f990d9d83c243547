use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use secrecy::ExposeSecret;
use tenantql::app::App;
use tenantql::governance::erasure::erase_organization;
use tenantql::ids::OrgId;
use tenantql::integrations::crypto::Keyring;
use tenantql::integrations::keys;
use tenantql::integrations::workspaces::Workspaces;
use tenantql::settings::{Cli, Command, OrgCommand};
use tenantql::tenancy::audit::Origin;
use tenantql::tenancy::{Actor, Db, erasure};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let telemetry = tenantql::telemetry::init(cli.settings.log_format);
    let code = match run(cli).await {
        Ok(code) => code,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    };
    telemetry.shutdown().await;
    code
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::PrintSchema => {
            print!("{}", tenantql::graphql::sdl());
        }
        Command::Healthcheck => return Ok(healthcheck(cli.settings.listen_addr).await),
        Command::Migrate => {
            let config = cli.settings.into_config()?;
            Db::connect(&config.database_url, 1).await?.migrate().await?;
            tracing::info!("migrations applied");
        }
        Command::RotateKeys => {
            let config = cli.settings.into_config()?;
            let keyring = Keyring::parse(config.encryption_keys.expose_secret())?;
            let db = Db::connect(&config.database_url, 1).await?;
            let done = keys::rotate(&db, &keyring).await?;
            tracing::info!(
                rotated = done.rotated,
                spent_oauth_states_deleted = done.deleted,
                key = keyring.current_key_id(),
                "stored secrets are under the newest key"
            );
        }
        Command::Org { action } => {
            let config = cli.settings.into_config()?;
            let db = Db::connect(&config.database_url, 2).await?;
            match action {
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
        }
        Command::Worker => {
            let config = cli.settings.into_config()?;
            tenantql::app::run_workers(config, shutdown_signal()).await?;
        }
        Command::Serve => {
            let config = cli.settings.into_config()?;
            let started = std::time::Instant::now();
            let app = App::build(config).await?;
            tracing::info!(
                graphiql = %format!("http://{}/", app.local_addr()),
                startup_ms = started.elapsed().as_millis() as u64,
                "tenantql is ready; open GraphiQL at the address shown"
            );
            app.run(shutdown_signal()).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
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
async fn healthcheck(mut addr: std::net::SocketAddr) -> ExitCode {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A server listening on every interface is reached through loopback.
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
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
