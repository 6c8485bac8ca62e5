//! `tweetlab serve`: a fine-tuned model directory behind HTTP (see `crate::serve`).

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Args;

use crate::engine::device::DeviceChoice;
use crate::serve::{ServeConfig, Server, SAGEMAKER_MODEL_DIR};

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// A fine-tuned model directory (default: /opt/ml/model when it exists, as in SageMaker).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Port (default: $SAGEMAKER_BIND_TO_PORT, else $PORT, else 8080; 0 = any free port).
    #[arg(long)]
    pub port: Option<u16>,
    /// Address to listen on (default: 127.0.0.1; 0.0.0.0 when the model is SageMaker's
    /// /opt/ml/model, inside a container).
    #[arg(long)]
    pub host: Option<IpAddr>,
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    /// The model worker gathers requests into one pass up to this many tokens...
    #[arg(long, default_value_t = 2048)]
    pub max_batch_tokens: usize,
    /// ...or for this many milliseconds after the first.
    #[arg(long, default_value_t = 2)]
    pub max_wait_ms: u64,
    /// Requests waiting for the model at most; one more gets 429.
    #[arg(long, default_value_t = 512)]
    pub max_queue: usize,
    /// Texts in one request at most; more gets 413.
    #[arg(long, default_value_t = 64)]
    pub max_client_batch: usize,
}

/// The port from the flag, then SageMaker's variable, then `$PORT`, then 8080.
fn port(flag: Option<u16>) -> Result<u16> {
    if let Some(p) = flag {
        return Ok(p);
    }
    for var in ["SAGEMAKER_BIND_TO_PORT", "PORT"] {
        if let Ok(v) = std::env::var(var) {
            return v
                .trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("${var} is `{v}`, not a port number"));
        }
    }
    Ok(8080)
}

pub fn serve_cmd(a: ServeArgs) -> Result<ExitCode> {
    let (model, in_container) = match a.model {
        Some(m) => (m, false),
        None if std::path::Path::new(SAGEMAKER_MODEL_DIR).is_dir() => {
            (SAGEMAKER_MODEL_DIR.into(), true)
        }
        None => bail!("no model: give --model DIR (a directory from `tweetlab train`)"),
    };
    let host = a.host.unwrap_or(if in_container {
        IpAddr::from([0, 0, 0, 0])
    } else {
        IpAddr::from([127, 0, 0, 1])
    });
    if a.max_client_batch == 0 || a.max_queue == 0 || a.max_batch_tokens == 0 {
        bail!("--max-client-batch, --max-queue and --max-batch-tokens must be at least 1");
    }
    let config = ServeConfig {
        host,
        port: port(a.port)?,
        device: a.device,
        max_batch_tokens: a.max_batch_tokens,
        max_wait: Duration::from_millis(a.max_wait_ms),
        max_queue: a.max_queue,
        max_client_batch: a.max_client_batch,
        ..ServeConfig::new(model.clone())
    };
    let server = Server::start(config, true)?;
    // Scripts (and the tests) read the address from this line.
    println!("listening on http://{}", server.addr);
    let cpu_path = crate::engine::kernels::matmul_path_in_use(&candle_core::Device::Cpu);
    eprintln!(
        "serving {} (loading the model; GET /ping answers 200 once it is ready; dense layers on the CPU in {}). Stop with ctrl-C or SIGTERM.",
        model.display(),
        cpu_path.name()
    );
    server.wait()?;
    eprintln!("stopped: every queued request was answered");
    Ok(ExitCode::SUCCESS)
}
