//! "Serve this model": the open file's latest fine-tuned model behind `tweetlab serve`'s HTTP
//! routes, on 127.0.0.1 and a free port, from the window. Shows the address and a curl line to
//! copy; stopping is one click (the server ends on its own thread, answering what is queued).

use std::path::{Path, PathBuf};

use crate::serve::{ServeConfig, Server};

#[derive(Default)]
pub struct ServePanel {
    running: Option<(Server, PathBuf)>,
    error: Option<String>,
}

impl ServePanel {
    /// The address being served, and the model.
    pub fn serving(&self) -> Option<(String, &Path)> {
        self.running
            .as_ref()
            .map(|(s, dir)| (format!("http://{}", s.addr), dir.as_path()))
    }

    /// Starts serving `model_dir` (binding is immediate; the model loads in the background).
    pub fn start(&mut self, model_dir: &Path) {
        self.stop();
        let config = ServeConfig {
            port: 0,
            ..ServeConfig::new(model_dir.to_path_buf())
        };
        match Server::start(config, false) {
            Ok(server) => {
                self.running = Some((server, model_dir.to_path_buf()));
                self.error = None;
            }
            Err(e) => self.error = Some(format!("{e:#}")),
        }
    }

    /// Stops the server without waiting for it on the UI thread.
    pub fn stop(&mut self) {
        if let Some((server, _)) = self.running.take() {
            std::thread::spawn(move || {
                let _ = server.stop();
            });
        }
    }

    /// Draws the section; `model_dir` is the model whose predictions the window shows.
    pub fn show(&mut self, ui: &mut egui::Ui, model_dir: Option<&Path>) {
        // A server that ended by itself (its model would not load) says why.
        if self.running.as_ref().is_some_and(|(s, _)| !s.is_running()) {
            if let Some((server, _)) = self.running.take() {
                if let Err(e) = server.wait() {
                    self.error = Some(format!("Serving stopped: {e:#}"));
                }
            }
        }
        if self.running.is_none() && model_dir.is_none() && self.error.is_none() {
            return;
        }
        match (&self.running, model_dir) {
            (Some((server, dir)), _) => {
                let url = format!("http://{}", server.addr);
                let at = ui.label(format!("Serving {} at", dir.display()));
                ui.add(egui::TextEdit::singleline(&mut url.as_str()).desired_width(f32::INFINITY))
                    .labelled_by(at.id);
                let mut curl = format!(
                    "curl -s {url}/invocations -d '{{\"inputs\": \"Forest fire near La Ronge\"}}'"
                );
                let try_it = ui.label("Try it:");
                ui.add(
                    egui::TextEdit::multiline(&mut curl)
                        .desired_rows(2)
                        .desired_width(f32::INFINITY),
                )
                .labelled_by(try_it.id);
                if ui.button("Stop serving").clicked() {
                    self.stop();
                }
            }
            (None, Some(dir)) => {
                if ui
                    .button("Serve this model")
                    .on_hover_text(
                        "HTTP on 127.0.0.1 (SageMaker and text-embeddings-inference routes), as `tweetlab serve` does",
                    )
                    .clicked()
                {
                    self.start(dir);
                }
            }
            (None, None) => {}
        }
        if let Some(e) = &self.error {
            ui.colored_label(ui.visuals().error_fg_color, e);
        }
        ui.separator();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use egui_kittest::kittest::Queryable;

    /// A model that will not load ends the server; the panel stops showing an address and says
    /// why, instead of pointing at a server that is gone.
    #[test]
    fn serving_a_model_that_will_not_load_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().to_path_buf();
        let mut panel = ServePanel::default();
        panel.start(&bad);
        assert!(panel.serving().is_some());
        let start = std::time::Instant::now();
        while panel.running.as_ref().is_some_and(|(s, _)| s.is_running()) {
            assert!(start.elapsed() < std::time::Duration::from_secs(30));
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let mut h = egui_kittest::Harness::builder().build_ui_state(
            move |ui, panel: &mut ServePanel| panel.show(ui, Some(&bad)),
            panel,
        );
        h.run();
        assert!(h.state().serving().is_none());
        let error = h.state().error.clone().unwrap();
        assert!(error.starts_with("Serving stopped:"), "{error}");
        assert!(h.query_by_label("Serve this model").is_some());
    }
}
