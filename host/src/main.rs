use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = ztpd::cli::Cli::parse();
    // A server logs what it does; one-shot commands print their result and only warn.
    let default_level = match cli.command {
        ztpd::cli::Command::Serve { .. } => "info",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_writer(std::io::stderr)
        .init();
    match ztpd::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ztpd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
