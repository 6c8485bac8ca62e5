//! Live updates: a thread with its own connection LISTENs on the project's channel and reports
//! the rows each committed change touched (tweetlab's clients say so after each commit). Notifications sent while
//! the connection is down are lost, so every (re)connection is reported too: the receiver reads
//! the whole state again then.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use postgres::fallible_iterator::FallibleIterator;

use super::{postgres_message, Target};

/// What the listener saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// Listening (first time or after a reconnection): read the state again.
    Connected,
    /// These rows' labels or final labels changed (the first 100 of a batch).
    Changed { rows: Vec<i64> },
    /// The connection dropped; the listener tries again.
    Lost(String),
}

/// Listens until dropped (the thread notices within a fraction of a second).
pub struct Listener {
    stop: Arc<AtomicBool>,
}

impl Listener {
    /// Starts listening as `target`'s role; `send` gets every notice and returns false when
    /// nobody wants them any more (the thread then ends).
    pub fn spawn(target: &Target, send: impl Fn(Notice) -> bool + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let target = target.clone();
        std::thread::Builder::new()
            .name("tweetlab-team-listen".into())
            .spawn(move || {
                let mut pause = Duration::from_millis(200);
                while !flag.load(Ordering::Relaxed) {
                    let mut client = match target.client() {
                        Ok(c) => c,
                        Err(e) => {
                            if !send(Notice::Lost(e.to_string())) {
                                return;
                            }
                            sleep_unless(&flag, pause);
                            pause = (pause * 2).min(Duration::from_secs(5));
                            continue;
                        }
                    };
                    if let Err(e) = client.batch_execute("LISTEN tweetlab") {
                        if !send(Notice::Lost(postgres_message(&e))) {
                            return;
                        }
                        continue;
                    }
                    pause = Duration::from_millis(200);
                    if !send(Notice::Connected) {
                        return;
                    }
                    let mut checked = Instant::now();
                    let lost = loop {
                        if flag.load(Ordering::Relaxed) {
                            return;
                        }
                        let next = client
                            .notifications()
                            .timeout_iter(Duration::from_millis(250))
                            .next();
                        match next {
                            Ok(Some(n)) => {
                                if !send(parse(n.payload())) {
                                    return;
                                }
                            }
                            Ok(None) => {
                                // A cut network says nothing: ask now and then.
                                if checked.elapsed() > Duration::from_secs(5) {
                                    if let Err(e) = client.is_valid(Duration::from_secs(3)) {
                                        break postgres_message(&e);
                                    }
                                    checked = Instant::now();
                                }
                            }
                            Err(e) => break postgres_message(&e),
                        }
                    };
                    if !send(Notice::Lost(lost)) {
                        return;
                    }
                    sleep_unless(&flag, pause);
                }
            })
            .expect("can spawn a thread");
        Self { stop }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn sleep_unless(stop: &AtomicBool, total: Duration) {
    let end = Instant::now() + total;
    while !stop.load(Ordering::Relaxed) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `tweetlab_changed`'s payload: `{"rows": [N, ...]}`.
fn parse(payload: &str) -> Notice {
    let v: serde_json::Value = serde_json::from_str(payload).unwrap_or_default();
    Notice::Changed {
        rows: v["rows"]
            .as_array()
            .map(|rows| rows.iter().filter_map(|r| r.as_i64()).collect())
            .unwrap_or_default(),
    }
}
