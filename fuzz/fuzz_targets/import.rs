//! The CSV importer on arbitrary bytes: it may reject a file, never panic, and every row it
//! keeps must have come with a line number inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tweetlab::data::dataset::{parse, ImportOptions};

fuzz_target!(|data: &[u8]| {
    for tsv in [false, true] {
        if let Ok(d) = parse(data, tsv, &ImportOptions::default(), &mut |_, _| {}) {
            let lines = 1 + data.iter().filter(|&&b| b == b'\n').count() as u64;
            for row in &d.rows {
                assert!(
                    row.line >= 1 && row.line <= lines + 1,
                    "line {} of {lines}",
                    row.line
                );
            }
            for p in &d.problems {
                assert!(
                    p.line >= 1 && p.line <= lines + 1,
                    "problem line {} of {lines}",
                    p.line
                );
            }
        }
    }
});
