//! Turning an encoded set into batches: seeded shuffling, length bucketing, and tensors.

use burn::tensor::{Device, Tensor, TensorData};
use imdb_data::{EncodedSet, Padding, SeededRng};
use imdb_model::ModelInput;

/// Batches per bucket pool: reviews are sorted by length within pools of this many batches.
const POOL_BATCHES: usize = 50;

/// Indices of the rows of each batch, for one epoch.
///
/// Without bucketing: a seeded shuffle cut into batches (Keras' `shuffle=True`). With
/// bucketing: the shuffled rows are cut into pools of 50 batches, each pool is sorted by
/// length and cut into batches, and the batches are shuffled, so each batch holds reviews of
/// similar length while the epoch stays random. `seed = None` keeps the set's order.
pub fn plan_batches(
    lengths: &[usize],
    batch_size: usize,
    seed: Option<u64>,
    bucketing: bool,
) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    let mut rng = seed.map(SeededRng::new);
    if let Some(rng) = rng.as_mut() {
        rng.shuffle(&mut order);
    }
    if !bucketing {
        return order.chunks(batch_size).map(<[usize]>::to_vec).collect();
    }
    let mut batches: Vec<Vec<usize>> = Vec::with_capacity(order.len().div_ceil(batch_size));
    for pool in order.chunks_mut(batch_size * POOL_BATCHES) {
        // Stable, so equal lengths keep their shuffled order.
        pool.sort_by_key(|&i| lengths[i]);
        batches.extend(pool.chunks(batch_size).map(<[usize]>::to_vec));
    }
    if let Some(rng) = rng.as_mut() {
        rng.shuffle(&mut batches);
    }
    batches
}

/// Rows of an evaluation pass: sorted by length when `bucketing` (fewer padded steps), in
/// batches of `batch_size`. Results must be put back in set order by index.
pub fn plan_eval_batches(lengths: &[usize], batch_size: usize, bucketing: bool) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    if bucketing {
        order.sort_by_key(|&i| lengths[i]);
    }
    order.chunks(batch_size).map(<[usize]>::to_vec).collect()
}

/// Training targets `[rows, outputs]` for class ids: the class itself (0.0 or 1.0) for one
/// output, one-hot rows for more.
pub fn targets(labels: &[u32], outputs: usize, device: &Device) -> Tensor<2> {
    let outputs = outputs.max(1);
    let values: Vec<f32> = if outputs == 1 {
        labels.iter().map(|&y| y as f32).collect()
    } else {
        let mut v = vec![0.0f32; labels.len() * outputs];
        for (row, &y) in v.chunks_exact_mut(outputs).zip(labels) {
            row[y as usize] = 1.0;
        }
        v
    };
    Tensor::from_data(TensorData::new(values, [labels.len(), outputs]), device)
}

/// The model input of the rows `rows` of `set`, and their targets for a model with `outputs`
/// outputs (see [`targets`]).
///
/// With `trim`, the batch is cut to its longest review (the padding side is dropped), which
/// changes nothing when the model masks padding and saves the work of reading it.
pub fn make_batch(
    set: &EncodedSet,
    rows: &[usize],
    trim: bool,
    outputs: usize,
    device: &Device,
) -> (ModelInput, Tensor<2>) {
    let labels: Vec<u32> = rows.iter().map(|&r| set.labels[r]).collect();
    (
        batch_input(set, rows, trim, device),
        targets(&labels, outputs, device),
    )
}

/// The model input of the rows `rows` of `set` (see [`make_batch`]).
pub fn batch_input(set: &EncodedSet, rows: &[usize], trim: bool, device: &Device) -> ModelInput {
    let seqs = &set.sequences;
    let maxlen = seqs.maxlen;
    let steps = if trim {
        rows.iter()
            .map(|&r| seqs.lengths[r])
            .max()
            .unwrap_or(1)
            .max(1)
    } else {
        maxlen
    };
    let pre = seqs.padding == Padding::Pre;
    let mut ids = Vec::with_capacity(rows.len() * steps);
    let mut lengths = Vec::with_capacity(rows.len());
    for &r in rows {
        let row = seqs.row(r);
        let kept = if pre {
            &row[maxlen - steps..]
        } else {
            &row[..steps]
        };
        ids.extend_from_slice(kept);
        lengths.push(seqs.lengths[r].min(steps));
    }
    ModelInput::from_padded(&ids, &lengths, steps, pre, device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_once_and_seeded() {
        let lengths: Vec<usize> = (0..1000).map(|i| (i * 37) % 300 + 1).collect();
        for bucketing in [false, true] {
            let plan = plan_batches(&lengths, 64, Some(3), bucketing);
            let mut all: Vec<usize> = plan.iter().flatten().copied().collect();
            all.sort_unstable();
            assert_eq!(all, (0..1000).collect::<Vec<_>>());
            assert_eq!(plan, plan_batches(&lengths, 64, Some(3), bucketing));
            assert_ne!(plan, plan_batches(&lengths, 64, Some(4), bucketing));
        }
    }

    #[test]
    fn bucketing_groups_similar_lengths() {
        let lengths: Vec<usize> = (0..6400).map(|i| (i * 7919) % 500 + 1).collect();
        let spread = |plan: &Vec<Vec<usize>>| -> f64 {
            plan.iter()
                .map(|b| {
                    let l: Vec<usize> = b.iter().map(|&i| lengths[i]).collect();
                    (l.iter().max().unwrap() - l.iter().min().unwrap()) as f64
                })
                .sum::<f64>()
                / plan.len() as f64
        };
        let plain = spread(&plan_batches(&lengths, 64, Some(1), false));
        let bucketed = spread(&plan_batches(&lengths, 64, Some(1), true));
        assert!(bucketed * 10.0 < plain, "bucketed {bucketed} plain {plain}");
    }
}
