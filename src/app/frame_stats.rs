//! Debug overlay (F12): how long this app spends building each frame, and the interval between
//! frames. While it is shown the window repaints continuously, so the interval is the real frame
//! time (build + paint), not idle time. That costs CPU (a software renderer took 4 of 5 parts of
//! a CPU training run's throughput), so the overlay always starts hidden. `TWEETLAB_FRAME_LOG=file` appends one line per frame
//! (`seconds_since_start interval_ms build_ms`) for measurements.

use std::collections::VecDeque;
use std::io::Write;
use std::time::Instant;

const WINDOW: usize = 240;

pub struct FrameStats {
    pub visible: bool,
    started: Instant,
    last_frame: Option<Instant>,
    /// Milliseconds between frame starts, and spent building each frame.
    intervals: VecDeque<f32>,
    build: VecDeque<f32>,
    log: Option<std::io::BufWriter<std::fs::File>>,
}

impl Default for FrameStats {
    fn default() -> Self {
        let log = std::env::var_os("TWEETLAB_FRAME_LOG").and_then(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .ok()
                .map(std::io::BufWriter::new)
        });
        Self {
            visible: false,
            started: Instant::now(),
            last_frame: None,
            intervals: VecDeque::with_capacity(WINDOW),
            build: VecDeque::with_capacity(WINDOW),
            log,
        }
    }
}

fn push(q: &mut VecDeque<f32>, v: f32) {
    if q.len() == WINDOW {
        q.pop_front();
    }
    q.push_back(v);
}

/// (mean, 95th percentile, max) of `q`.
fn summary(q: &VecDeque<f32>) -> (f32, f32, f32) {
    if q.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let mut v: Vec<f32> = q.iter().copied().collect();
    v.sort_by(f32::total_cmp);
    let mean = v.iter().sum::<f32>() / v.len() as f32;
    let p95 = v[((v.len() - 1) as f32 * 0.95) as usize];
    (mean, p95, v[v.len() - 1])
}

impl FrameStats {
    /// Call at the start of a frame; returns the start time for `end_frame`.
    pub fn begin_frame(&mut self) -> Instant {
        let now = Instant::now();
        if let Some(last) = self.last_frame.replace(now) {
            push(&mut self.intervals, (now - last).as_secs_f32() * 1e3);
        }
        now
    }

    /// Writes `# what <unix seconds>` to the frame log, for timing events against the launch.
    pub fn mark(&mut self, what: &str) {
        if let Some(log) = &mut self.log {
            let unix = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            let _ = writeln!(log, "# {what} {unix:.3}");
            let _ = log.flush();
        }
    }

    pub fn end_frame(&mut self, ctx: &egui::Context, start: Instant) {
        let build_ms = start.elapsed().as_secs_f32() * 1e3;
        push(&mut self.build, build_ms);
        if let Some(log) = &mut self.log {
            let interval = self.intervals.back().copied().unwrap_or(0.0);
            let _ = writeln!(
                log,
                "{:.4} {interval:.3} {build_ms:.3}",
                self.started.elapsed().as_secs_f64()
            );
            let _ = log.flush();
        }
        if self.visible {
            self.draw(ctx);
            ctx.request_repaint();
        }
    }

    fn draw(&self, ctx: &egui::Context) {
        let (i_mean, i_p95, i_max) = summary(&self.intervals);
        let (b_mean, b_p95, b_max) = summary(&self.build);
        egui::Area::new(egui::Id::unique("frame_stats"))
            .anchor(egui::Align2::RIGHT_BOTTOM, egui::vec2(-8.0, -32.0))
            .show(ctx, |ui| {
                egui::Frame::popup(ui.style()).show(ui, |ui| {
                    ui.monospace(format!(
                        "frame  {i_mean:5.1} ms avg  {i_p95:5.1} p95  {i_max:5.1} max\nbuild  {b_mean:5.1} ms avg  {b_p95:5.1} p95  {b_max:5.1} max\n(last {} frames; F12 hides)",
                        self.intervals.len()
                    ));
                });
            });
    }
}
