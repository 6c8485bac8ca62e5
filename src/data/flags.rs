//! The one rule for what a row is flagged for: the table shows these flags and sorts by them,
//! the full predictions export writes them.

/// A row's flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RowFlags {
    /// The model predicts another class than the row's label.
    pub disagrees: bool,
    /// The same text (after normalising) is on another row, with the same label.
    pub duplicate: bool,
    /// The same text is on another row with a different label.
    pub conflict: bool,
}

/// What the model says about a row, in the dataset's classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Predicted {
    /// No prediction for this row.
    Nothing,
    /// A class of the dataset (an index into its label set).
    Label(u8),
    /// A model class the dataset has no class of that name for.
    Foreign,
}

impl RowFlags {
    /// `given` is the row's label; `group_conflicts` is `None` for a row without duplicates,
    /// else whether its duplicate group carries more than one label.
    pub fn of(given: Option<u8>, predicted: Predicted, group_conflicts: Option<bool>) -> Self {
        let disagrees = match (given, predicted) {
            (None, _) | (_, Predicted::Nothing) => false,
            (Some(l), Predicted::Label(p)) => l != p,
            (Some(_), Predicted::Foreign) => true,
        };
        Self {
            disagrees,
            duplicate: group_conflicts == Some(false),
            conflict: group_conflicts == Some(true),
        }
    }

    /// The order the table sorts flagged rows in: a disagreement first, then conflicts,
    /// then duplicates.
    pub fn rank(&self) -> u8 {
        4 * self.disagrees as u8 + 2 * self.conflict as u8 + self.duplicate as u8
    }

    /// The flags as the export writes them: `disagrees`, `conflict`, `duplicate`.
    pub fn names(&self) -> Vec<&'static str> {
        [
            (self.disagrees, "disagrees"),
            (self.conflict, "conflict"),
            (self.duplicate, "duplicate"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_without_a_label_or_a_prediction_never_disagrees() {
        assert!(!RowFlags::of(None, Predicted::Label(1), None).disagrees);
        assert!(!RowFlags::of(Some(1), Predicted::Nothing, None).disagrees);
        assert!(!RowFlags::of(Some(1), Predicted::Label(1), None).disagrees);
        assert!(RowFlags::of(Some(0), Predicted::Label(1), None).disagrees);
        assert!(RowFlags::of(Some(0), Predicted::Foreign, None).disagrees);
    }

    #[test]
    fn flags_rank_and_name_in_one_order() {
        let all = RowFlags::of(Some(0), Predicted::Label(1), Some(true));
        assert_eq!(all.names(), ["disagrees", "conflict"]);
        assert_eq!(all.rank(), 6);
        let dup = RowFlags::of(Some(0), Predicted::Label(0), Some(false));
        assert_eq!(dup.names(), ["duplicate"]);
        assert_eq!(dup.rank(), 1);
    }
}
