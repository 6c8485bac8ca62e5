//! What the window remembers between sessions (eframe persistence): training settings, recent
//! files, which panels are open. The workspace itself lives in SQLite, not here.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::engine::model::source::DEFAULT_MODEL;
use crate::engine::train::TrainConfig;

/// Key under which eframe stores the settings.
pub const STORAGE_KEY: &str = "tweetlab-settings";
const RECENT_MAX: usize = 10;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub model: String,
    pub train: TrainConfig,
    /// Most recent first; the first one reopens at start when no file is given.
    pub recent: Vec<PathBuf>,
    pub show_detail: bool,
    pub theme: Theme,
    /// A label key moves the cursor to the next tweet (as labelling tools do).
    pub advance_after_labelling: bool,
    /// The last team project joined: its connection line, never a password.
    pub team_connection: Option<String>,
    /// Seconds of training steps per 1,000 training rows, per model, measured on this machine
    /// by the first steps of its last run here.
    pub measured_speed: BTreeMap<String, f64>,
}

/// Light or dark, or as the desktop says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Theme {
    #[default]
    System,
    Light,
    Dark,
}

impl Theme {
    pub fn preference(self) -> egui::ThemePreference {
        match self {
            Theme::System => egui::ThemePreference::System,
            Theme::Light => egui::ThemePreference::Light,
            Theme::Dark => egui::ThemePreference::Dark,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            model: DEFAULT_MODEL.to_string(),
            train: TrainConfig::default(),
            recent: Vec::new(),
            show_detail: true,
            theme: Theme::System,
            advance_after_labelling: true,
            team_connection: None,
            measured_speed: BTreeMap::new(),
        }
    }
}

impl Settings {
    /// Puts `csv` first in the recent list.
    pub fn remember(&mut self, csv: &std::path::Path) {
        let csv = std::fs::canonicalize(csv).unwrap_or_else(|_| csv.to_path_buf());
        self.recent.retain(|p| p != &csv);
        self.recent.insert(0, csv);
        self.recent.truncate(RECENT_MAX);
    }

    /// The file to reopen at start: the most recent one that still exists.
    pub fn last_file(&self) -> Option<PathBuf> {
        self.recent.iter().find(|p| p.is_file()).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_files_are_unique_most_recent_first_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Settings::default();
        for i in 0..12 {
            let p = dir.path().join(format!("{i}.csv"));
            std::fs::write(&p, "text\n").unwrap();
            s.remember(&p);
        }
        s.remember(&dir.path().join("5.csv"));
        assert_eq!(s.recent.len(), RECENT_MAX);
        assert!(s.recent[0].ends_with("5.csv"));
        assert_eq!(s.recent.iter().filter(|p| p.ends_with("5.csv")).count(), 1);
        std::fs::remove_file(&s.recent[0]).unwrap();
        assert!(s.last_file().unwrap().ends_with("11.csv"));
        // Older settings (fewer fields) still load.
        let old: Settings = serde_json::from_str(r#"{"model":"m"}"#).unwrap();
        assert_eq!(old.model, "m");
        assert!(old.show_detail);
    }
}
