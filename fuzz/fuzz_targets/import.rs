//! The CSV importer on arbitrary bytes: it may reject a file, never panic, every row it keeps
//! must have come with a line number inside the input, and no input takes more than linear
//! time (importing plus finding duplicates, whose entity decoding once was quadratic). A short
//! input is also tried repeated up to `AMPLIFIED` bytes: quadratic work hides in small inputs
//! (a few lines of `a","` cost nothing) and shows at the sizes an analyst's file has.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use tweetlab::data::dataset::{parse, ImportOptions};
use tweetlab::data::duplicates::find_duplicates;

/// Far above what linear work costs even instrumented and unoptimised (tens of ms for 64 KB),
/// far below what quadratic work on such inputs costs (seconds).
fn linear_bound(bytes: usize) -> Duration {
    Duration::from_millis(200) + Duration::from_micros(2 * bytes as u64)
}

/// The size a short input is repeated up to.
const AMPLIFIED: usize = 256 * 1024;

fuzz_target!(|data: &[u8]| {
    check(data);
    if !data.is_empty() && data.len() <= 4096 {
        check(&data.repeat(AMPLIFIED / data.len()));
    }
});

fn check(data: &[u8]) {
    for tsv in [false, true] {
        let start = Instant::now();
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
            assert_eq!(d.spans.len(), d.rows.len());
            find_duplicates(&d.rows);
        }
        let took = start.elapsed();
        assert!(
            took <= linear_bound(data.len()),
            "{} bytes took {took:?}: more than linear time",
            data.len()
        );
    }
}
