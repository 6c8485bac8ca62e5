//! Label sets: the classes a file's label column stands for (2 to [`MAX_CLASSES`], each with a
//! name), which cell values mean each class, and which mean "unlabelled". A row's label is the
//! index of its class in the set, from the importer through the workspace, training and the
//! exported `id2label`.

use serde::{Deserialize, Serialize};

/// The most classes a set may have: the keys and the window's colours are made for few classes,
/// and a label column with more distinct values is usually not a label.
pub const MAX_CLASSES: usize = 20;

/// One class: its name (shown, and written as the model's `id2label`) and the cell values that
/// mean it (compared trimmed, case-insensitively; the first is what Save writes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelClass {
    pub name: String,
    pub values: Vec<String>,
}

/// The classes of a dataset, in order; index `i` is label `i`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "LabelSetJson")]
pub struct LabelSet {
    pub classes: Vec<LabelClass>,
    /// Cell values that mean "no label yet" besides the empty cell.
    #[serde(default)]
    pub unlabelled: Vec<String>,
}

/// Workspaces written before named label sets stored `{negative, positive}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum LabelSetJson {
    Named {
        classes: Vec<LabelClass>,
        #[serde(default)]
        unlabelled: Vec<String>,
    },
    Binary {
        negative: Vec<String>,
        positive: Vec<String>,
    },
}

impl From<LabelSetJson> for LabelSet {
    fn from(j: LabelSetJson) -> Self {
        match j {
            LabelSetJson::Named {
                classes,
                unlabelled,
            } => Self {
                classes,
                unlabelled,
            },
            LabelSetJson::Binary { negative, positive } => Self::binary(negative, positive),
        }
    }
}

/// The names the default 0/1 classes carry into an exported model's `id2label`.
pub const BINARY_NAMES: [&str; 2] = ["not_disaster", "disaster"];

impl Default for LabelSet {
    /// The Kaggle convention: 0 (or false) and 1 (or true).
    fn default() -> Self {
        Self::binary(
            ["0", "0.0", "false"].map(String::from).to_vec(),
            ["1", "1.0", "true"].map(String::from).to_vec(),
        )
    }
}

fn same(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

impl LabelSet {
    /// Two classes, 0 and 1, written with the given values.
    pub fn binary(negative: Vec<String>, positive: Vec<String>) -> Self {
        Self {
            classes: vec![
                LabelClass {
                    name: BINARY_NAMES[0].into(),
                    values: negative,
                },
                LabelClass {
                    name: BINARY_NAMES[1].into(),
                    values: positive,
                },
            ],
            unlabelled: Vec::new(),
        }
    }

    /// One class per distinct value, each named by the value, in natural order (numbers by
    /// value, then text alphabetically).
    pub fn from_values<S: AsRef<str>>(values: &[S]) -> Self {
        let mut distinct: Vec<String> = Vec::new();
        for v in values {
            let v = v.as_ref().trim();
            if !v.is_empty() && !distinct.iter().any(|d| same(d, v)) {
                distinct.push(v.to_string());
            }
        }
        distinct.sort_by(|a, b| match (a.parse::<f64>(), b.parse::<f64>()) {
            (Ok(x), Ok(y)) => x.total_cmp(&y),
            (Ok(_), Err(_)) => std::cmp::Ordering::Less,
            (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
            (Err(_), Err(_)) => a.to_lowercase().cmp(&b.to_lowercase()).then(a.cmp(b)),
        });
        Self {
            classes: distinct
                .into_iter()
                .map(|v| LabelClass {
                    name: v.clone(),
                    values: vec![v],
                })
                .collect(),
            unlabelled: Vec::new(),
        }
    }

    /// Reads `NAME=VALUE,VALUE;NAME=VALUE…` (a class with no `=` is written as its name).
    pub fn parse_spec(spec: &str, unlabelled: &[String]) -> Result<Self, String> {
        let classes = spec
            .split(';')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(|c| {
                let (name, values) = c.split_once('=').unwrap_or((c, c));
                let values: Vec<String> = values
                    .split(',')
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
                    .collect();
                LabelClass {
                    name: name.trim().to_string(),
                    values,
                }
            })
            .collect();
        let set = Self {
            classes,
            unlabelled: unlabelled.to_vec(),
        };
        set.check()?;
        Ok(set)
    }

    /// A set tweetlab can train: 2 to `MAX_CLASSES` classes with distinct, non-empty names, and no
    /// value meaning two things.
    pub fn check(&self) -> Result<(), String> {
        let n = self.classes.len();
        if !(2..=MAX_CLASSES).contains(&n) {
            return Err(format!(
                "{n} classes: tweetlab trains 2 to {MAX_CLASSES} classes"
            ));
        }
        for (i, c) in self.classes.iter().enumerate() {
            if c.name.trim().is_empty() {
                return Err(format!("class {} has no name", i + 1));
            }
            if self.classes[..i].iter().any(|o| same(&o.name, &c.name)) {
                return Err(format!("two classes are named `{}`", c.name));
            }
        }
        let mut seen: Vec<(&str, String)> = Vec::new();
        let all = self.classes.iter().flat_map(|c| {
            c.values
                .iter()
                .map(move |v| (v.as_str(), format!("class `{}`", c.name)))
        });
        for (v, owner) in all.chain(
            self.unlabelled
                .iter()
                .map(|v| (v.as_str(), "unlabelled".to_string())),
        ) {
            if let Some((_, first)) = seen.iter().find(|(s, _)| same(s, v)) {
                return Err(format!("the value `{v}` means both {first} and {owner}"));
            }
            seen.push((v, owner));
        }
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.classes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }

    /// Whether every value is one of the default 0/1 ones: a Kaggle-style file.
    pub fn is_default_binary(&self) -> bool {
        *self == Self::default()
    }

    pub fn names(&self) -> Vec<String> {
        self.classes.iter().map(|c| c.name.clone()).collect()
    }

    /// The class of this name (compared trimmed, case-insensitively).
    pub fn index_of(&self, name: &str) -> Option<u8> {
        self.classes
            .iter()
            .position(|c| same(&c.name, name))
            .map(|i| i as u8)
    }

    /// How the window shows a label: 0/1 files as 0 and 1, named classes by name.
    pub fn short(&self, label: u8) -> String {
        if self.is_default_binary() {
            self.cell(label).to_string()
        } else {
            self.name(label)
        }
    }

    /// The class's name, or its number when the set has no such class.
    pub fn name(&self, label: u8) -> String {
        self.classes
            .get(label as usize)
            .map_or_else(|| label.to_string(), |c| c.name.clone())
    }

    /// How a label is written back into the analyst's file: the first value of its class (its
    /// name when it has none).
    pub fn cell(&self, label: u8) -> &str {
        self.classes.get(label as usize).map_or("", |c| {
            c.values.first().map_or(c.name.as_str(), String::as_str)
        })
    }

    /// Reads a label cell: `Ok(None)` for an empty or "unlabelled" cell.
    pub fn parse(&self, cell: &str) -> Result<Option<u8>, String> {
        let cell = cell.trim();
        if cell.is_empty() || self.unlabelled.iter().any(|u| same(u, cell)) {
            return Ok(None);
        }
        if let Some(i) = self
            .classes
            .iter()
            .position(|c| c.values.iter().any(|v| same(v, cell)))
        {
            return Ok(Some(i as u8));
        }
        let expected: Vec<String> = self
            .classes
            .iter()
            .map(|c| format!("{} for {}", c.values.join("/"), c.name))
            .collect();
        Err(format!(
            "unknown label value `{cell}` (expected {})",
            expected.join(", ")
        ))
    }

    /// Whether the cell is one the set knows (a class value, unlabelled, or empty).
    pub fn knows(&self, cell: &str) -> bool {
        self.parse(cell).is_ok()
    }

    /// Digit keys: when classes are written as digits (`0`/`1`, `1`…`5`) a digit labels the
    /// class written that way; otherwise `1`…`9` label the classes in order.
    pub fn class_for_key(&self, digit: u8) -> Option<u8> {
        let written = |c: &LabelClass| {
            c.values
                .iter()
                .any(|v| v.len() == 1 && v.as_bytes()[0].is_ascii_digit())
        };
        if self.classes.iter().any(written) {
            let key = (b'0' + digit) as char;
            self.classes
                .iter()
                .position(|c| c.values.iter().any(|v| v == &key.to_string()))
                .map(|i| i as u8)
        } else if digit >= 1 && (digit as usize) <= self.classes.len() {
            Some(digit - 1)
        } else {
            None
        }
    }

    /// The digit that labels `class`, if any (see [`Self::class_for_key`]).
    pub fn key_for_class(&self, class: u8) -> Option<u8> {
        (0..=9).find(|&d| self.class_for_key(d) == Some(class))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_workspaces_binary_maps_still_read() {
        let old = r#"{"negative":["no"],"positive":["yes","y"]}"#;
        let set: LabelSet = serde_json::from_str(old).unwrap();
        assert_eq!(set.names(), BINARY_NAMES.map(String::from).to_vec());
        assert_eq!(set.parse(" Y ").unwrap(), Some(1));
        assert_eq!(set.cell(0), "no");
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(serde_json::from_str::<LabelSet>(&json).unwrap(), set);
    }

    #[test]
    fn distinct_values_become_classes_in_natural_order() {
        let set = LabelSet::from_values(&["b", "10", "2", "", "B", "a", "2"]);
        assert_eq!(set.names(), vec!["2", "10", "a", "b"]);
        assert_eq!(set.parse("b").unwrap(), Some(3));
    }

    #[test]
    fn a_spec_maps_values_to_named_classes_and_refuses_ambiguity() {
        let set = LabelSet::parse_spec(
            "informative=Related and informative; not informative=Related - but not informative,Not related;other",
            &["Not applicable".into()],
        )
        .unwrap();
        assert_eq!(set.len(), 3);
        assert_eq!(set.parse("not related").unwrap(), Some(1));
        assert_eq!(set.parse("Not applicable").unwrap(), None);
        assert_eq!(set.parse("other").unwrap(), Some(2));
        let err = set.parse("maybe").unwrap_err();
        assert!(
            err.contains("`maybe`") && err.contains("for informative"),
            "{err}"
        );
        assert!(LabelSet::parse_spec("a=x;b=x", &[])
            .unwrap_err()
            .contains("`x`"));
        assert!(LabelSet::parse_spec("a=x", &[])
            .unwrap_err()
            .contains("2 to 20"));
        assert!(LabelSet::parse_spec("a=x;A=y", &[]).is_err());
    }

    #[test]
    fn digit_keys_follow_written_digits_else_class_order() {
        let binary = LabelSet::default();
        assert_eq!(binary.class_for_key(1), Some(1));
        assert_eq!(binary.class_for_key(0), Some(0));
        assert_eq!(binary.class_for_key(2), None);
        let named = LabelSet::from_values(&["low", "high", "mid"]);
        assert_eq!(named.class_for_key(1), Some(0));
        assert_eq!(named.class_for_key(3), Some(2));
        assert_eq!(named.class_for_key(0), None);
        assert_eq!(named.key_for_class(1), Some(2));
    }
}
