//! What a script or a test sets in place of a user's clicks: each is a control the window
//! shows (the Train panel's settings, the filter bar, a column title, the View menu, the import
//! dialog). Reading state is `inspect`'s.

use super::import_dialog::ImportDraft;
use super::table::{Filters, SortColumn};
use super::train_panel::TrainSettings;
use super::TweetlabApp;

impl TweetlabApp {
    /// The model and settings the next training run uses.
    pub fn train_settings(&mut self) -> &mut TrainSettings {
        &mut self.train.settings
    }

    /// The table's filters, as the filter bar sets them.
    pub fn filters_mut(&mut self) -> &mut Filters {
        self.table.mark_dirty();
        &mut self.table.filters
    }

    /// The table's sort column and direction (true: ascending), as a click on a title sets it.
    pub fn sort_mut(&mut self) -> &mut Option<(SortColumn, bool)> {
        self.table.mark_dirty();
        &mut self.table.sort
    }

    /// Whether a label key moves on to the next tweet (View menu).
    pub fn set_advance_after_labelling(&mut self, on: bool) {
        self.settings.advance_after_labelling = on;
    }

    /// The import dialog's choice in progress, when it is open.
    pub fn import_draft(&mut self) -> Option<&mut ImportDraft> {
        self.import.draft.as_mut()
    }
}
