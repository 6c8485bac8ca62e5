//! Duplicate and conflicting tweets: the same text after normalising case, whitespace, URLs
//! and HTML entities. Conflicting groups carry both labels, which a classifier cannot satisfy.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::dataset::Tweet;

/// Decodes the HTML entities tweets carry (`&amp;`, `&lt;`, `&#39;`, `&#x2F;`, ...).
pub fn decode_entities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let tail = &rest[amp..];
        // An entity is at most 10 bytes long: look for its `;` that far only, so a text of many
        // `&` stays linear.
        let decoded = tail
            .bytes()
            .take(11)
            .position(|b| b == b';')
            .and_then(|semi| {
                let name = &tail[1..semi];
                let ch = match name {
                    "amp" => Some('&'),
                    "lt" => Some('<'),
                    "gt" => Some('>'),
                    "quot" => Some('"'),
                    "apos" => Some('\''),
                    "nbsp" => Some(' '),
                    _ if name.starts_with("#x") || name.starts_with("#X") => {
                        u32::from_str_radix(&name[2..], 16)
                            .ok()
                            .and_then(char::from_u32)
                    }
                    _ if name.starts_with('#') => name[1..].parse().ok().and_then(char::from_u32),
                    _ => None,
                };
                ch.map(|c| (c, semi + 1))
            });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &tail[len..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The key two tweets share when they are "the same text": entities decoded, URLs removed,
/// lowercased, whitespace collapsed.
pub fn normalise(text: &str) -> String {
    let decoded = decode_entities(text);
    let mut words = Vec::new();
    for word in decoded.split_whitespace() {
        let lower = word.to_lowercase();
        let cut = ["http://", "https://", "www."]
            .iter()
            .filter_map(|p| lower.find(p))
            .min()
            .unwrap_or(lower.len());
        if cut > 0 {
            words.push(lower[..cut].to_string());
        }
    }
    words.join(" ")
}

#[derive(Debug, Clone, Serialize)]
pub struct DuplicateGroup {
    /// The normalised text.
    pub key: String,
    /// Row indices, in file order.
    pub rows: Vec<usize>,
    /// How many rows carry each class (index = class; as long as the highest class present).
    pub label_counts: Vec<usize>,
}

impl DuplicateGroup {
    /// Same text, two or more different labels.
    pub fn is_conflicting(&self) -> bool {
        self.label_counts.iter().filter(|&&n| n > 0).count() > 1
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Duplicates {
    /// Groups of two or more rows, largest first.
    pub groups: Vec<DuplicateGroup>,
    /// For each row, the index of its group in `groups`.
    pub group_of: Vec<Option<usize>>,
}

impl Duplicates {
    pub fn conflicting(&self) -> impl Iterator<Item = &DuplicateGroup> {
        self.groups.iter().filter(|g| g.is_conflicting())
    }
}

pub fn find_duplicates(rows: &[Tweet]) -> Duplicates {
    let mut by_key: HashMap<String, Vec<usize>> = HashMap::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        by_key.entry(normalise(&row.text)).or_default().push(i);
    }
    let mut groups: Vec<DuplicateGroup> = by_key
        .into_iter()
        .filter(|(_, members)| members.len() > 1)
        .map(|(key, members)| {
            let mut label_counts: Vec<usize> = Vec::new();
            for &i in &members {
                if let Some(l) = rows[i].label {
                    let l = usize::from(l);
                    if label_counts.len() <= l {
                        label_counts.resize(l + 1, 0);
                    }
                    label_counts[l] += 1;
                }
            }
            DuplicateGroup {
                key,
                rows: members,
                label_counts,
            }
        })
        .collect();
    groups.sort_by(|a, b| {
        b.rows
            .len()
            .cmp(&a.rows.len())
            .then(a.rows[0].cmp(&b.rows[0]))
    });
    let mut group_of = vec![None; rows.len()];
    for (g, group) in groups.iter().enumerate() {
        for &i in &group.rows {
            group_of[i] = Some(g);
        }
    }
    Duplicates { groups, group_of }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KeywordBalance {
    pub keyword: String,
    pub negative: usize,
    pub positive: usize,
    pub unlabelled: usize,
}

/// Label counts per keyword (keyword decoded: the Kaggle file writes spaces as `%20`).
pub fn keyword_balance(rows: &[Tweet]) -> Vec<KeywordBalance> {
    let mut by: BTreeMap<String, KeywordBalance> = BTreeMap::new();
    for row in rows {
        let keyword = row.keyword.replace("%20", " ");
        let entry = by.entry(keyword.clone()).or_insert_with(|| KeywordBalance {
            keyword,
            ..Default::default()
        });
        match row.label {
            Some(0) => entry.negative += 1,
            Some(_) => entry.positive += 1,
            None => entry.unlabelled += 1,
        }
    }
    by.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tweet(text: &str, label: Option<u8>) -> Tweet {
        Tweet {
            text: text.into(),
            label,
            ..Default::default()
        }
    }

    #[test]
    fn normalisation_ignores_case_space_urls_and_entities() {
        assert_eq!(
            normalise("  Fire &amp; SMOKE\n near http://t.co/abc  town "),
            "fire & smoke near town"
        );
        assert_eq!(
            normalise("Fire & smoke near town https://x.y"),
            "fire & smoke near town"
        );
        assert_eq!(normalise("look:http://t.co/1"), "look:");
        assert_eq!(
            decode_entities("&lt;b&gt; &#39;x&#x27; &bogus; &"),
            "<b> 'x' &bogus; &"
        );
    }

    #[test]
    fn groups_and_conflicts() {
        let rows = vec![
            tweet("Flood in town http://a", Some(1)),
            tweet("flood in  TOWN", Some(0)),
            tweet("unique", Some(1)),
            tweet("Same same", None),
            tweet("same same", Some(1)),
            tweet("FLOOD in town", Some(1)),
        ];
        let d = find_duplicates(&rows);
        assert_eq!(d.groups.len(), 2);
        assert_eq!(d.groups[0].rows, vec![0, 1, 5]);
        assert_eq!(d.groups[0].label_counts, vec![1, 2]);
        assert!(d.groups[0].is_conflicting());
        assert!(!d.groups[1].is_conflicting());
        assert_eq!(d.conflicting().count(), 1);
        assert_eq!(
            d.group_of,
            vec![Some(0), Some(0), None, Some(1), Some(1), Some(0)]
        );
    }

    #[test]
    fn keyword_balance_counts_each_class() {
        let mut rows = vec![tweet("a", Some(1)), tweet("b", Some(0)), tweet("c", None)];
        for r in &mut rows {
            r.keyword = "forest%20fire".into();
        }
        assert_eq!(
            keyword_balance(&rows),
            vec![KeywordBalance {
                keyword: "forest fire".into(),
                negative: 1,
                positive: 1,
                unlabelled: 1
            }]
        );
    }
}
