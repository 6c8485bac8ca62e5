//! What `GET /metrics` reports, in Prometheus' text format: requests by route and status, the
//! texts per model pass, the queue depth and a latency histogram.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Latency bucket bounds, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Texts-per-pass bucket bounds.
const BATCH_BUCKETS: [f64; 8] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum: Mutex<f64>,
    count: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum: Mutex::new(0.0),
            count: AtomicU64::new(0),
        }
    }

    fn observe(&self, v: f64) {
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            if v <= *b {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        *self.sum.lock().unwrap_or_else(|p| p.into_inner()) += v;
    }

    fn write(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{b}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = *self.sum.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

pub struct Metrics {
    /// (route, status) -> count.
    requests: Mutex<Vec<((&'static str, u16), u64)>>,
    latency: Histogram,
    batch: Histogram,
    pub queue_depth: AtomicUsize,
    pub texts: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            requests: Mutex::new(Vec::new()),
            latency: Histogram::new(&LATENCY_BUCKETS),
            batch: Histogram::new(&BATCH_BUCKETS),
            queue_depth: AtomicUsize::new(0),
            texts: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    pub fn record_request(&self, route: &'static str, status: u16, took: Duration) {
        let mut r = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        match r.iter_mut().find(|(k, _)| *k == (route, status)) {
            Some((_, n)) => *n += 1,
            None => r.push(((route, status), 1)),
        }
        drop(r);
        self.latency.observe(took.as_secs_f64());
    }

    pub fn record_batch(&self, texts: usize) {
        self.batch.observe(texts as f64);
        self.texts.fetch_add(texts as u64, Ordering::Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP tweetlab_requests_total Requests by route and status.\n# TYPE tweetlab_requests_total counter"
        );
        let requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        for ((route, status), n) in requests.iter() {
            let _ = writeln!(
                out,
                "tweetlab_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        drop(requests);
        self.latency.write(
            &mut out,
            "tweetlab_request_seconds",
            "Time from a request's arrival to its answer.",
        );
        self.batch.write(
            &mut out,
            "tweetlab_batch_texts",
            "Texts in one pass of the model worker.",
        );
        let _ = writeln!(
            out,
            "# HELP tweetlab_queue_depth Requests waiting for the model worker.\n# TYPE tweetlab_queue_depth gauge\ntweetlab_queue_depth {}",
            self.queue_depth.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP tweetlab_texts_total Texts classified.\n# TYPE tweetlab_texts_total counter\ntweetlab_texts_total {}",
            self.texts.load(Ordering::Relaxed)
        );
        out
    }
}
