//! The embedding cache inside a workspace file.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

use super::{StoreError, Workspace};

/// Sentence embeddings by (model, text), so the label-quality tools embed each text once.
/// Keyed by a hash of the text rather than by row, so a cache stays right when the CSV changes.
pub struct EmbeddingCache {
    conn: Connection,
    path: PathBuf,
}

/// FNV-1a of `text`: stable across runs and platforms.
pub fn text_key(text: &str) -> i64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    }) as i64
}

impl EmbeddingCache {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Workspace::connect(path)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS embeddings (model TEXT NOT NULL, text_key INTEGER NOT NULL, vector BLOB NOT NULL, PRIMARY KEY (model, text_key))",
        )
        .map_err(|source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self {
            conn,
            path: path.to_path_buf(),
        })
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    /// The cached vector for each text, None where there is none yet.
    pub fn get(&self, model: &str, texts: &[&str]) -> Result<Vec<Option<Vec<f32>>>, StoreError> {
        let mut q = self
            .conn
            .prepare_cached("SELECT vector FROM embeddings WHERE model = ?1 AND text_key = ?2")
            .map_err(|e| self.err(e))?;
        texts
            .iter()
            .map(|t| {
                q.query_row(params![model, text_key(t)], |r| r.get::<_, Vec<u8>>(0))
                    .optional()
                    .map(|blob| {
                        blob.map(|b| {
                            b.chunks_exact(4)
                                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                                .collect()
                        })
                    })
                    .map_err(|e| self.err(e))
            })
            .collect()
    }

    /// Stores vectors for texts, in one transaction.
    pub fn put(&mut self, model: &str, items: &[(&str, &[f32])]) -> Result<(), StoreError> {
        let path = self.path.clone();
        let wrap = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(wrap)?;
        {
            let mut q = tx
                .prepare_cached("INSERT OR REPLACE INTO embeddings (model, text_key, vector) VALUES (?1, ?2, ?3)")
                .map_err(wrap)?;
            for (text, vector) in items {
                let blob: Vec<u8> = vector.iter().flat_map(|v| v.to_le_bytes()).collect();
                q.execute(params![model, text_key(text), blob])
                    .map_err(wrap)?;
            }
        }
        tx.commit().map_err(wrap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::store::tests::workspace;

    #[test]
    fn embedding_cache_round_trips_by_text() {
        let dir = tempfile::tempdir().unwrap();
        let ws = workspace(dir.path());
        let mut cache = EmbeddingCache::open(ws.path()).unwrap();
        cache
            .put(
                "m",
                &[("flood here", &[0.5, -1.25][..]), ("calm", &[1.0, 2.0][..])],
            )
            .unwrap();
        let got = cache.get("m", &["calm", "unknown", "flood here"]).unwrap();
        assert_eq!(
            got,
            vec![Some(vec![1.0, 2.0]), None, Some(vec![0.5, -1.25])]
        );
        assert_eq!(cache.get("other model", &["calm"]).unwrap(), vec![None]);
        // The workspace still opens with the extra table in it.
        drop(cache);
        assert!(Workspace::open(ws.path()).is_ok());
    }
}
