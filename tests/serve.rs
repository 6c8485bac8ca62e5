//! `tweetlab serve` as a client sees it: the real binary on a free loopback port, every route,
//! the JSON errors, answers equal to `predict`'s, many concurrent clients answered by shared
//! passes of the model, and a graceful stop on SIGTERM. Every wait is bounded.
#![cfg(feature = "serve")]

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tweetlab::engine::device::DeviceChoice;
use tweetlab::engine::infer;
use tweetlab::engine::model::LoadedModel;

const MODEL: &str = "tests/fixtures/tiny-classifier";
const MODEL_4: &str = "tests/fixtures/tiny-classifier-4";

struct Running {
    child: Child,
    url: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the server on a free port and waits (at most 60 s) until `/ping` answers 200.
fn start(model: &str, extra: &[&str]) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tweetlab"))
        .args(["serve", "--model", model, "--port", "0", "--device", "cpu"])
        .args(extra)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("listening on ") {
                let _ = tx.send(url.to_string());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the server printed its address");
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let running = Running { child, url };
    let start = Instant::now();
    loop {
        if let Ok(r) = ureq::get(&format!("{}/ping", running.url)).call() {
            if r.status() == 200 {
                break;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "/ping never answered 200"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    running
}

/// POSTs `body` to `route`: (status, JSON).
fn post(url: &str, route: &str, body: &str) -> (u16, serde_json::Value) {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(60))
        .build();
    let response = match agent
        .post(&format!("{url}{route}"))
        .set("Content-Type", "application/json")
        .send_string(body)
    {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{route}: {e}"),
    };
    let status = response.status();
    let text = response.into_string().unwrap();
    let json = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, json)
}

fn get(url: &str, route: &str) -> (u16, String) {
    match ureq::get(&format!("{url}{route}")).call() {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_string().unwrap()),
        Err(e) => panic!("{route}: {e}"),
    }
}

fn texts() -> Vec<String> {
    let data = tweetlab::data::load_csv(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-data/test.csv"),
    )
    .unwrap();
    data.rows.into_iter().map(|r| r.text).take(40).collect()
}

/// Every class's probability per text, as `predict` computes them.
fn expected(model: &str, texts: &[String]) -> (Vec<String>, Vec<Vec<f32>>) {
    let m = LoadedModel::load_finetuned(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join(model),
        DeviceChoice::Cpu,
    )
    .unwrap();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let p = infer::probabilities(&m, &refs, m.default_max_len(), 64, &mut |_, _| {}).unwrap();
    (m.labels.clone(), p)
}

/// A response's `[{label, score}, ...]` as scores in the model's class order, checking that it
/// is sorted best first.
fn scores(answer: &serde_json::Value, labels: &[String]) -> Vec<f32> {
    let items = answer.as_array().unwrap();
    let s: Vec<f64> = items.iter().map(|i| i["score"].as_f64().unwrap()).collect();
    assert!(s.windows(2).all(|w| w[0] >= w[1]), "best first: {answer}");
    labels
        .iter()
        .map(|l| {
            items
                .iter()
                .find(|i| i["label"] == l.as_str())
                .unwrap_or_else(|| panic!("no {l} in {answer}"))["score"]
                .as_f64()
                .unwrap() as f32
        })
        .collect()
}

#[test]
fn routes_answers_and_errors() {
    let server = start(MODEL, &["--max-client-batch", "8"]);
    let url = &server.url;
    let texts = texts();
    let (labels, want) = expected(MODEL, &texts);

    // One text, and a list: the same probabilities as `predict`, best first.
    let (status, one) = post(
        url,
        "/invocations",
        &serde_json::json!({"inputs": texts[0]}).to_string(),
    );
    assert_eq!(status, 200, "{one}");
    let got = scores(&one, &labels);
    assert!(
        got.iter().zip(&want[0]).all(|(g, w)| (g - w).abs() < 1e-5),
        "{got:?} {:?}",
        want[0]
    );
    let (status, many) = post(
        url,
        "/predict",
        &serde_json::json!({"inputs": &texts[..8]}).to_string(),
    );
    assert_eq!(status, 200);
    for (answer, w) in many.as_array().unwrap().iter().zip(&want) {
        let got = scores(answer, &labels);
        assert!(got.iter().zip(w).all(|(g, w)| (g - w).abs() < 1e-5));
    }
    let (_, raw) = post(
        url,
        "/predict",
        &serde_json::json!({"inputs": texts[0], "raw_scores": true}).to_string(),
    );
    let logits = scores(&raw, &labels);
    assert!((tweetlab::engine::infer::softmax(&logits)[1] - want[0][1]).abs() < 1e-5);

    // Errors: JSON with a type, and the server goes on answering.
    for (body, status, kind) in [
        ("{not json", 400, "Validation"),
        ("{}", 422, "Validation"),
        (r#"{"inputs": 7}"#, 422, "Validation"),
        (r#"{"inputs": []}"#, 422, "Validation"),
        (r#"{"inputs": ["a", 1]}"#, 422, "Validation"),
        (
            r#"{"inputs": ["a","b","c","d","e","f","g","h","i"]}"#,
            413,
            "Validation",
        ),
    ] {
        let (got, e) = post(url, "/predict", body);
        assert_eq!(got, status, "{body}: {e}");
        assert_eq!(e["error_type"], kind, "{e}");
        assert!(e["error"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // Past the 1 MiB limit, bodies larger than loopback's socket buffers too: the client, which
    // writes its whole body before reading, gets the 413 and not a broken pipe.
    for mib in [2, 32] {
        let huge = format!(r#"{{"inputs": "{}"}}"#, "a".repeat(mib << 20));
        let (status, e) = post(url, "/predict", &huge);
        assert_eq!(
            (status, e["error_type"].as_str()),
            (413, Some("PayloadTooLarge")),
            "{mib} MiB"
        );
    }
    let (status, body) = get(url, "/nowhere");
    assert_eq!(status, 404, "{body}");
    assert_eq!(get(url, "/health").0, 200);

    // /explain: what `explain --json` prints.
    let (status, explained) = post(
        url,
        "/explain",
        &serde_json::json!({"inputs": "Forest fire near the town"}).to_string(),
    );
    assert_eq!(status, 200);
    let cli = Command::new(env!("CARGO_BIN_EXE_tweetlab"))
        .args([
            "explain",
            "--model",
            MODEL,
            "--json",
            "Forest fire near the town",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let cli: serde_json::Value = serde_json::from_slice(&cli.stdout).unwrap();
    assert_eq!(
        explained["words"].as_array().unwrap().len(),
        cli["words"].as_array().unwrap().len()
    );
    assert_eq!(explained["class"], cli["class"]);

    let (_, info) = get(url, "/info");
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["labels"], serde_json::json!(labels));
    assert_eq!(info["max_client_batch_size"], 8);
    assert_eq!(info["ready"], true);
    let (_, metrics) = get(url, "/metrics");
    assert!(
        metrics.contains("tweetlab_requests_total{route=\"predict\",status=\"422\"} 4"),
        "{metrics}"
    );
    assert!(metrics.contains("tweetlab_batch_texts_count"));
}

/// Many clients at once: every answer right, and the model worker answered several requests
/// with one pass (dynamic batching). Then SIGTERM: exit 0 once the queue is answered.
#[test]
fn concurrent_clients_share_passes_and_sigterm_stops_gracefully() {
    let server = start(MODEL_4, &["--max-wait-ms", "20"]);
    let texts = texts();
    let (labels, want) = expected(MODEL_4, &texts);
    assert_eq!(labels.len(), 4);
    let handles: Vec<_> = (0..texts.len())
        .map(|i| {
            let url = server.url.clone();
            let body = serde_json::json!({"inputs": texts[i]}).to_string();
            std::thread::spawn(move || post(&url, "/invocations", &body))
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        let (status, answer) = h.join().unwrap();
        assert_eq!(status, 200, "{answer}");
        let got = scores(&answer, &labels);
        assert!(got.iter().zip(&want[i]).all(|(g, w)| (g - w).abs() < 1e-5));
    }
    let (_, metrics) = get(&server.url, "/metrics");
    let count = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {metrics}"))
    };
    let passes = count("tweetlab_batch_texts_count");
    let single = count("tweetlab_batch_texts_bucket{le=\"1\"}");
    assert_eq!(count("tweetlab_texts_total"), texts.len() as f64);
    assert!(
        passes < texts.len() as f64,
        "{passes} passes for {} texts",
        texts.len()
    );
    assert!(
        single < passes,
        "some pass answered several requests: {metrics}"
    );

    let mut server = server;
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let start = Instant::now();
    let exit = loop {
        if let Some(s) = server.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "still running after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    server
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(exit.success(), "{exit:?}: {stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
}

#[test]
fn a_model_that_cannot_load_ends_the_server_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_tweetlab"))
        .args([
            "serve",
            "--port",
            "0",
            "--model",
            dir.path().to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains(&dir.path().display().to_string()),
        "{stderr}"
    );
}

/// The port comes from SageMaker's variable before `$PORT`; a bad one is named.
#[test]
fn the_port_comes_from_sagemakers_variable_then_port() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tweetlab"))
        .args(["serve", "--model", MODEL, "--device", "cpu"])
        .env("SAGEMAKER_BIND_TO_PORT", "0")
        .env("PORT", "1")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let port: u16 = line.trim().rsplit(':').next().unwrap().parse().unwrap();
    assert!(
        line.starts_with("listening on http://127.0.0.1:") && port > 1,
        "{line}"
    );
    let o = Command::new(env!("CARGO_BIN_EXE_tweetlab"))
        .args(["serve", "--model", MODEL])
        .env_remove("SAGEMAKER_BIND_TO_PORT")
        .env("PORT", "eighty")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("$PORT is `eighty`"));
}

/// An MPNet run (relative position bias, no token types, RoBERTa's head) serves what `predict`
/// computes, as the other families do.
#[test]
fn an_mpnet_run_serves_what_predict_computes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mpnet-run");
    let trained = Command::new(env!("CARGO_BIN_EXE_tweetlab"))
        .args(["train", "--data", "sample-data/train.csv", "--out"])
        .arg(&out)
        .args([
            "--model",
            "tests/fixtures/tiny-mpnet",
            "--epochs",
            "1",
            "--lr",
            "1e-3",
        ])
        .args(["--batch-size", "16", "--max-len", "40", "--device", "cpu"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        trained.status.success(),
        "{}",
        String::from_utf8_lossy(&trained.stderr)
    );
    let model = out.to_str().unwrap();
    let server = start(model, &[]);
    let texts = texts();
    let (labels, want) = expected(model, &texts[..8]);
    let (status, many) = post(
        &server.url,
        "/invocations",
        &serde_json::json!({"inputs": &texts[..8]}).to_string(),
    );
    assert_eq!(status, 200, "{many}");
    let answers = many.as_array().unwrap();
    assert_eq!(answers.len(), 8);
    for (answer, w) in answers.iter().zip(&want) {
        let got = scores(answer, &labels);
        assert!(
            got.iter().zip(w).all(|(g, w)| (g - w).abs() < 1e-5),
            "{got:?} {w:?}"
        );
    }
}
