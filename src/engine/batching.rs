//! Grouping texts into batches: length bucketing so that padding stays small.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;

/// How many batches' worth of examples are sorted together. Large enough that batches hold
/// texts of similar length, small enough that each epoch still mixes the data well.
const POOL_BATCHES: usize = 50;

/// Shuffled training batches of similar-length examples: shuffle, cut into pools, sort each
/// pool by length, cut into batches, shuffle the batch order.
pub fn bucketed_batches(
    indices: &[usize],
    lengths: &[usize],
    batch_size: usize,
    rng: &mut StdRng,
) -> Vec<Vec<usize>> {
    let batch_size = batch_size.max(1);
    let mut order = indices.to_vec();
    order.shuffle(rng);
    let mut batches = Vec::with_capacity(order.len().div_ceil(batch_size));
    for pool in order.chunks_mut(batch_size * POOL_BATCHES) {
        pool.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
        batches.extend(pool.chunks(batch_size).map(<[usize]>::to_vec));
    }
    batches.shuffle(rng);
    batches
}

/// Deterministic batches for inference: sorted by length so each pads little.
pub fn sorted_batches(lengths: &[usize], batch_size: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
    order
        .chunks(batch_size.max(1))
        .map(<[usize]>::to_vec)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn every_example_appears_once_and_batches_are_bucketed() {
        let lengths: Vec<usize> = (0..1000).map(|i| (i * 37) % 60 + 3).collect();
        let indices: Vec<usize> = (0..1000).collect();
        let mut rng = StdRng::seed_from_u64(1);
        let batches = bucketed_batches(&indices, &lengths, 32, &mut rng);
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort();
        assert_eq!(seen, indices);
        // Padding waste: bucketed batches pad far less than random ones would.
        let waste: usize = batches
            .iter()
            .map(|b| {
                let max = b.iter().map(|&i| lengths[i]).max().unwrap();
                b.iter().map(|&i| max - lengths[i]).sum::<usize>()
            })
            .sum();
        assert!(waste < 1000 * 5, "padding waste {waste} tokens");
    }

    #[test]
    fn same_seed_same_batches() {
        let lengths = vec![5; 100];
        let idx: Vec<usize> = (0..100).collect();
        let a = bucketed_batches(&idx, &lengths, 8, &mut StdRng::seed_from_u64(7));
        let b = bucketed_batches(&idx, &lengths, 8, &mut StdRng::seed_from_u64(7));
        assert_eq!(a, b);
    }
}
