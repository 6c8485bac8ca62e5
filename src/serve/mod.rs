//! `tweetlab serve`: a fine-tuned model behind HTTP, with the SageMaker container's routes
//! (`GET /ping`, `POST /invocations`) and the shape Hugging Face text-embeddings-inference gives
//! classifiers (`POST /predict`), plus `/explain`, `/info`, `/health` and `/metrics`.
//!
//! One tokio worker thread runs the HTTP side (the tensor threads keep the cores); handlers
//! tokenise and hand the model worker (`batcher`) their texts over a bounded queue, and it
//! answers many requests with one pass. Every error is JSON `{"error", "error_type"}`; a bad
//! request never takes the server down. Stopping (SIGTERM, ctrl-C, or [`Server::stop`]) stops
//! accepting, answers what was queued, and returns.

mod batcher;
mod metrics;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use crossbeam_channel::{Sender, TrySendError};
use serde_json::{json, Value};
use tokio::sync::{oneshot, Notify};

use crate::engine::device::{self, DeviceChoice};
use crate::engine::infer::softmax;
use crate::engine::model::tokenize::TruncatingTokenizer;
use crate::engine::model::LoadedModel;
use batcher::{Batching, Work};
use metrics::Metrics;

/// Where SageMaker puts the model in its containers.
pub const SAGEMAKER_MODEL_DIR: &str = "/opt/ml/model";

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub model: PathBuf,
    pub host: IpAddr,
    /// 0: any free port.
    pub port: u16,
    pub device: DeviceChoice,
    /// The model worker stops gathering requests at this many tokens.
    pub max_batch_tokens: usize,
    /// ... or this long after the first one.
    pub max_wait: Duration,
    /// Requests waiting for the model worker; one more gets 429.
    pub max_queue: usize,
    /// Texts in one request; more gets 413.
    pub max_client_batch: usize,
    /// Request bodies larger than this get 413.
    pub max_body_bytes: usize,
}

impl ServeConfig {
    pub fn new(model: PathBuf) -> Self {
        Self {
            model,
            host: IpAddr::from([127, 0, 0, 1]),
            port: 8080,
            device: DeviceChoice::Auto,
            max_batch_tokens: 2048,
            max_wait: Duration::from_millis(2),
            max_queue: 512,
            max_client_batch: 64,
            max_body_bytes: 1 << 20,
        }
    }
}

/// What the handlers need of the loaded model.
struct Loaded {
    tokenizer: TruncatingTokenizer,
    labels: Vec<String>,
    max_len: usize,
    device: String,
}

struct AppState {
    config: ServeConfig,
    work: Sender<Work>,
    loaded: OnceLock<Loaded>,
    /// Why the model could not be loaded, if it could not.
    /// Why the model cannot answer (it did not load, or its worker panicked), once it cannot;
    /// shared with the worker, which must not hold the state (its queue sender).
    failed: Arc<OnceLock<String>>,
    metrics: Arc<Metrics>,
}

type Shared = Arc<AppState>;

/// A running server: its address, and how to stop it.
pub struct Server {
    pub addr: SocketAddr,
    stop: Arc<Notify>,
    stopping: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl Server {
    /// Binds, then loads the model in the background (`/ping` answers 503 until it is loaded)
    /// and serves. With `signals`, SIGTERM and ctrl-C stop it gracefully.
    pub fn start(config: ServeConfig, signals: bool) -> anyhow::Result<Self> {
        let listener = std::net::TcpListener::bind((config.host, config.port)).map_err(|e| {
            anyhow::anyhow!("cannot listen on {}:{}: {e}", config.host, config.port)
        })?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(Notify::new());
        let stopping = Arc::new(AtomicBool::new(false));
        let (stop2, stopping2) = (stop.clone(), stopping.clone());
        let thread = std::thread::Builder::new()
            .name("tweetlab-serve".into())
            .spawn(move || serve(listener, config, signals, stop2, stopping2))?;
        Ok(Self {
            addr,
            stop,
            stopping,
            thread: Some(thread),
        })
    }

    /// Stops accepting, answers what is queued, and waits for the server to end.
    pub fn stop(mut self) -> anyhow::Result<()> {
        self.stopping.store(true, Ordering::SeqCst);
        self.stop.notify_one();
        self.join()
    }

    /// Waits until the server ends (a signal, or the model failing to load).
    pub fn wait(mut self) -> anyhow::Result<()> {
        self.join()
    }

    /// Whether it still serves (it ends by itself when the model cannot be loaded).
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    fn join(&mut self) -> anyhow::Result<()> {
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| anyhow::anyhow!("the server thread panicked"))?,
            None => Ok(()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stopping.store(true, Ordering::SeqCst);
            self.stop.notify_one();
            let _ = self.join();
        }
    }
}

/// The server's thread: the runtime, the model worker, and the HTTP side until stopped.
fn serve(
    listener: std::net::TcpListener,
    config: ServeConfig,
    signals: bool,
    stop: Arc<Notify>,
    stopping: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("tweetlab-http")
        .enable_all()
        .build()?;
    let (work_tx, work_rx) = crossbeam_channel::bounded::<Work>(config.max_queue);
    let metrics = Arc::new(Metrics::default());
    let state: Shared = Arc::new(AppState {
        config: config.clone(),
        work: work_tx,
        loaded: OnceLock::new(),
        failed: Arc::new(OnceLock::new()),
        metrics: metrics.clone(),
    });
    let worker_state = state.clone();
    let worker_stop = stop.clone();
    let worker_failed = state.failed.clone();
    let worker = std::thread::Builder::new()
        .name("tweetlab-model".into())
        .spawn(move || {
            let loaded = load(&worker_state.config);
            let model = match loaded {
                Ok((model, info)) => {
                    let _ = worker_state.loaded.set(info);
                    model
                }
                Err(e) => {
                    let _ = worker_failed.set(format!("the model could not be loaded: {e}"));
                    worker_stop.notify_one();
                    return;
                }
            };
            let batching = Batching {
                max_batch_tokens: worker_state.config.max_batch_tokens,
                max_wait: worker_state.config.max_wait,
                forward_batch: 64,
            };
            // The queue's receiver only: the sender lives in the state, dropped at shutdown.
            let metrics = worker_state.metrics.clone();
            drop(worker_state);
            // A panic in the model ends the server with its reason (waiting requests get 503),
            // rather than leaving a server that answers /ping and nothing else.
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                batcher::run(&model, &work_rx, batching, &metrics)
            }));
            if let Err(panic) = run {
                let _ = worker_failed.set(format!(
                    "the model worker stopped: {}",
                    crate::engine::train::panic_message(&*panic)
                ));
                worker_stop.notify_one();
            }
        })?;
    let app = router(state.clone());
    let result = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                if signals {
                    tokio::select! {
                        _ = stop.notified() => {}
                        _ = shutdown_signal() => {}
                    }
                } else {
                    stop.notified().await;
                }
            })
            .await
    });
    // The handlers are gone; with the state's sender dropped the worker answers what is queued
    // and ends.
    let failed = state.failed.get().cloned();
    drop(state);
    let _ = worker.join();
    drop(runtime);
    result?;
    match failed {
        Some(message) => Err(anyhow::anyhow!("{message}")),
        None => Ok(()),
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn load(config: &ServeConfig) -> anyhow::Result<(LoadedModel, Loaded)> {
    let model = LoadedModel::load_finetuned(&config.model, config.device)?;
    let max_len = model.default_max_len();
    let info = Loaded {
        tokenizer: model.tokenizer.truncating(max_len)?,
        labels: model.labels.clone(),
        max_len,
        device: device::describe(&model.device),
    };
    Ok((model, info))
}

fn router(state: Shared) -> Router {
    Router::new()
        .route("/ping", get(ping))
        .route("/health", get(ping))
        .route("/info", get(info))
        .route("/metrics", get(metrics))
        .route("/invocations", post(predict))
        .route("/predict", post(predict))
        .route("/explain", post(explain))
        .fallback(not_found)
        .with_state(state)
}

/// A request that cannot be answered: sent as JSON `{"error": message, "error_type": kind}`.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": self.message, "error_type": self.kind})),
        )
            .into_response()
    }
}

fn error(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
        status,
        kind,
        message: message.into(),
    }
}

async fn not_found() -> ApiError {
    error(
        StatusCode::NOT_FOUND,
        "NotFound",
        "no such route: GET /ping /health /info /metrics, POST /invocations /predict /explain",
    )
}

/// The loaded model, or the 503 to answer while there is none.
fn ready(state: &AppState) -> Result<&Loaded, ApiError> {
    match (state.loaded.get(), state.failed.get()) {
        (_, Some(why)) => Err(error(StatusCode::SERVICE_UNAVAILABLE, "Unhealthy", why)),
        (Some(l), None) => Ok(l),
        (None, None) => Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Unhealthy",
            "the model is still loading",
        )),
    }
}

async fn ping(State(state): State<Shared>) -> Response {
    let started = Instant::now();
    let response = match ready(&state) {
        Ok(_) => Json(json!({"status": "ok"})).into_response(),
        Err(e) => e.into_response(),
    };
    state
        .metrics
        .record_request("ping", response.status().as_u16(), started.elapsed());
    response
}

async fn info(State(state): State<Shared>) -> Response {
    let loaded = state.loaded.get();
    Json(json!({
        "model_dir": absolute(&state.config.model),
        "labels": loaded.map(|l| l.labels.clone()),
        "max_input_length": loaded.map(|l| l.max_len),
        "device": loaded.map(|l| l.device.clone()),
        "ready": loaded.is_some(),
        "max_batch_tokens": state.config.max_batch_tokens,
        "max_client_batch_size": state.config.max_client_batch,
        "max_concurrent_requests": state.config.max_queue,
        "max_wait_ms": state.config.max_wait.as_secs_f64() * 1000.0,
        "version": env!("CARGO_PKG_VERSION"),
    }))
    .into_response()
}

fn absolute(path: &Path) -> String {
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

async fn metrics(State(state): State<Shared>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

/// Past the size limit a body is still read, and dropped, up to this many more bytes and for
/// this long: a client that writes its whole body before reading (most do) then gets the 413
/// instead of a broken pipe. A body beyond both is cut off by closing the connection.
const DRAIN_BYTES: usize = 64 << 20;
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// The next data chunk of `body` (trailers skipped); `None` at its end.
async fn next_chunk(body: &mut Body) -> Option<Result<axum::body::Bytes, axum::Error>> {
    use axum::body::HttpBody;
    loop {
        let frame =
            std::future::poll_fn(|cx| std::pin::Pin::new(&mut *body).poll_frame(cx)).await?;
        match frame.map(|f| f.into_data()) {
            Ok(Ok(data)) => return Some(Ok(data)),
            Ok(Err(_trailers)) => continue,
            Err(e) => return Some(Err(e)),
        }
    }
}

/// The request's JSON body, read up to the size limit.
async fn json_body(state: &AppState, request: Request) -> Result<Value, ApiError> {
    let limit = state.config.max_body_bytes;
    let unreadable = |e: axum::Error| {
        error(
            StatusCode::BAD_REQUEST,
            "Validation",
            format!("the body could not be read: {e}"),
        )
    };
    let mut body = request.into_body();
    let mut bytes = Vec::new();
    while let Some(chunk) = next_chunk(&mut body).await {
        let chunk = chunk.map_err(unreadable)?;
        if bytes.len() + chunk.len() > limit {
            let mut drained = bytes.len() + chunk.len();
            let _ = tokio::time::timeout(DRAIN_TIME, async {
                while drained <= limit + DRAIN_BYTES {
                    match next_chunk(&mut body).await {
                        Some(Ok(chunk)) => drained += chunk.len(),
                        _ => break,
                    }
                }
            })
            .await;
            return Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PayloadTooLarge",
                format!("the body is larger than {limit} bytes"),
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "Validation",
            format!("the body is not JSON: {e}"),
        )
    })
}

/// `inputs` as texts, and whether it was one string.
fn inputs(body: &Value, max: usize) -> Result<(Vec<String>, bool), ApiError> {
    let bad = |m: &str| error(StatusCode::UNPROCESSABLE_ENTITY, "Validation", m);
    match body.get("inputs") {
        Some(Value::String(s)) => Ok((vec![s.clone()], true)),
        Some(Value::Array(items)) => {
            if items.is_empty() {
                return Err(bad("`inputs` is an empty list"));
            }
            if items.len() > max {
                return Err(error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Validation",
                    format!(
                        "{} inputs in one request; at most {max} (--max-client-batch)",
                        items.len()
                    ),
                ));
            }
            items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .map(|t| (t, false))
                .ok_or_else(|| bad("every item of `inputs` must be a string"))
        }
        Some(_) => Err(bad("`inputs` must be a string or a list of strings")),
        None => Err(bad("the body has no `inputs`")),
    }
}

/// Hands `work` to the model worker; 429 when its queue is full.
fn enqueue(state: &AppState, work: Work) -> Result<(), ApiError> {
    state.work.try_send(work).map_err(|e| match e {
        TrySendError::Full(_) => error(
            StatusCode::TOO_MANY_REQUESTS,
            "Overloaded",
            format!(
                "{} requests are already waiting for the model; retry shortly",
                state.config.max_queue
            ),
        ),
        TrySendError::Disconnected(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Unhealthy",
            "the model worker has stopped",
        ),
    })
}

async fn predict(State(state): State<Shared>, request: Request<Body>) -> Response {
    answered(&state, "predict", predict_inner(&state, request)).await
}

/// The answer (or the error as JSON), counted in /metrics with its route, status and time.
async fn answered(
    state: &AppState,
    route: &'static str,
    answer: impl std::future::Future<Output = Result<Response, ApiError>>,
) -> Response {
    let started = Instant::now();
    let response = answer.await.unwrap_or_else(IntoResponse::into_response);
    state
        .metrics
        .record_request(route, response.status().as_u16(), started.elapsed());
    response
}

async fn predict_inner(state: &AppState, request: Request) -> Result<Response, ApiError> {
    let loaded = ready(state)?;
    let body = json_body(state, request).await?;
    let (texts, single) = inputs(&body, state.config.max_client_batch)?;
    let raw = body
        .get("raw_scores")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let encoded = loaded.tokenizer.encode_here(&refs).map_err(|e| {
        error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Validation",
            e.to_string(),
        )
    })?;
    let (reply, answer) = oneshot::channel();
    enqueue(state, Work::Predict { encoded, reply })?;
    let logits = answer
        .await
        .map_err(|_| {
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unhealthy",
                "the model worker stopped",
            )
        })?
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, "Backend", e))?;
    let per_text: Vec<Value> = logits
        .iter()
        .map(|l| {
            let scores = if raw { l.clone() } else { softmax(l) };
            let mut pairs: Vec<(usize, f32)> = scores.into_iter().enumerate().collect();
            pairs.sort_by(|a, b| b.1.total_cmp(&a.1));
            Value::Array(
                pairs
                    .into_iter()
                    .map(|(c, s)| json!({"label": loaded.labels[c], "score": s}))
                    .collect(),
            )
        })
        .collect();
    Ok(if single {
        Json(per_text.into_iter().next().unwrap_or(Value::Null)).into_response()
    } else {
        Json(Value::Array(per_text)).into_response()
    })
}

async fn explain(State(state): State<Shared>, request: Request<Body>) -> Response {
    answered(&state, "explain", explain_inner(&state, request)).await
}

async fn explain_inner(state: &AppState, request: Request) -> Result<Response, ApiError> {
    ready(state)?;
    let body = json_body(state, request).await?;
    let text = match body.get("inputs") {
        Some(Value::String(s)) => s.clone(),
        _ => {
            return Err(error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Validation",
                "`inputs` must be one string",
            ))
        }
    };
    let (reply, answer) = oneshot::channel();
    enqueue(state, Work::Explain { text, reply })?;
    let explanation = answer
        .await
        .map_err(|_| {
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "Unhealthy",
                "the model worker stopped",
            )
        })?
        .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, "Backend", e))?;
    Ok(Json(explanation).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A full queue answers 429 at once, without waiting for the model.
    #[test]
    fn a_full_queue_answers_429_at_once() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-classifier");
        let config = ServeConfig {
            max_queue: 1,
            ..ServeConfig::new(dir)
        };
        let (_, info) = load(&config).unwrap();
        let (work, queue) = crossbeam_channel::bounded(1);
        let state = AppState {
            config,
            work,
            loaded: OnceLock::from(info),
            failed: Arc::new(OnceLock::new()),
            metrics: Arc::new(Metrics::default()),
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let request = || {
            Request::builder()
                .body(Body::from(r#"{"inputs": "flood on the bridge"}"#))
                .unwrap()
        };
        // Nobody reads the queue: the first request waits in it, the second is refused.
        let first = runtime.spawn({
            let state = Arc::new(state);
            let again = state.clone();
            async move {
                let waiting = tokio::spawn({
                    let state = state.clone();
                    async move { predict_inner(&state, request()).await.map(|r| r.status()) }
                });
                while state.work.is_empty() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                let refused = predict_inner(&again, request()).await.unwrap_err();
                waiting.abort();
                refused
            }
        });
        let refused = runtime.block_on(first).unwrap();
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(queue.len(), 1);
    }
}
