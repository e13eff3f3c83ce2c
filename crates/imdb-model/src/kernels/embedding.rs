//! An embedding lookup with Keras' input-dropout mask, and its gradient scattered back into the
//! table, on raw buffers and on every core.
//!
//! Burn's own lookup runs its backward on one thread and builds the table's gradient with two
//! full passes over it (zeros, then a copy into aligned storage); for the notebook's
//! 20,000 × 128 table, that and the dropout multiply around the lookup kept one core busy for
//! several milliseconds of each ~40 ms training step while the other waited.

use rayon::prelude::*;

use super::{product, zeroed};

/// Table rows per unit of parallel work in the backward pass.
const ROWS_PER_PART: usize = 256;

/// The shapes of one lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbeddingDims {
    /// Rows of the table (vocabulary size).
    pub words: usize,
    /// Width of a row.
    pub width: usize,
    /// Sequences in the batch.
    pub batch: usize,
    /// Tokens per sequence.
    pub steps: usize,
}

impl EmbeddingDims {
    fn check(&self, ids: &[u32], mask: &[f32]) {
        assert_eq!(
            ids.len(),
            product(&[self.batch, self.steps], "ids"),
            "ids shape"
        );
        assert_eq!(
            mask.len(),
            product(&[self.batch, self.width], "mask"),
            "mask shape"
        );
        // Ids come from a vocabulary of `words` entries; one outside it is a caller's bug.
        if let Some(&id) = ids.iter().find(|&&id| id as usize >= self.words) {
            panic!("token id {id} outside a table of {} rows", self.words);
        }
    }
}

/// `out[b, t] = table[ids[b, t]] ⊙ mask[b]`: `[batch, steps, width]`, row-major. `ids` is
/// `[batch, steps]`; `mask` is `[batch, width]`, one row of feature multipliers per sequence.
///
/// # Panics
///
/// If a buffer does not match `dims` or an id is outside the table.
pub fn embedding_forward(
    table: &[f32],
    ids: &[u32],
    mask: &[f32],
    dims: EmbeddingDims,
) -> Vec<f32> {
    dims.check(ids, mask);
    assert_eq!(
        table.len(),
        product(&[dims.words, dims.width], "table"),
        "table shape"
    );
    let EmbeddingDims { width, steps, .. } = dims;
    let mut out = zeroed(ids.len() * width);
    if width == 0 || steps == 0 {
        return out;
    }
    out.par_chunks_mut(steps * width)
        .zip(ids.par_chunks(steps))
        .enumerate()
        .for_each(|(b, (rows, ids))| {
            let mask = &mask[b * width..(b + 1) * width];
            for (row, &id) in rows.chunks_exact_mut(width).zip(ids) {
                let id = id as usize;
                let src = &table[id * width..(id + 1) * width];
                for ((o, &s), &m) in row.iter_mut().zip(src).zip(mask) {
                    *o = s * m;
                }
            }
        });
    out
}

/// Gradient of the table given `d_out = ∂L/∂out` (`[batch, steps, width]`): every looked-up
/// row receives its `d_out ⊙ mask`, summed in token order, so the result does not depend on
/// how the work is split. `[words, width]`.
///
/// # Panics
///
/// As [`embedding_forward`], or if `d_out` does not match `dims`.
pub fn embedding_backward(
    d_out: &[f32],
    ids: &[u32],
    mask: &[f32],
    dims: EmbeddingDims,
) -> Vec<f32> {
    let EmbeddingDims {
        words,
        width,
        steps,
        ..
    } = dims;
    dims.check(ids, mask);
    assert_eq!(
        d_out.len(),
        product(&[ids.len(), width], "d_out"),
        "d_out shape"
    );
    let mut grad = zeroed(product(&[words, width], "table"));
    if width == 0 {
        return grad;
    }
    // Token positions grouped by the part of the table their row lies in, in token order.
    let mut positions: Vec<Vec<usize>> = vec![Vec::new(); words.div_ceil(ROWS_PER_PART)];
    for (k, &id) in ids.iter().enumerate() {
        positions[id as usize / ROWS_PER_PART].push(k);
    }
    grad.par_chunks_mut(ROWS_PER_PART * width)
        .zip(positions.par_iter())
        .enumerate()
        .for_each(|(part, (rows, positions))| {
            let first = part * ROWS_PER_PART;
            for &k in positions {
                let at = (ids[k] as usize - first) * width;
                let dst = &mut rows[at..at + width];
                let src = &d_out[k * width..(k + 1) * width];
                let b = k / steps;
                let mask = &mask[b * width..(b + 1) * width];
                for ((d, &s), &m) in dst.iter_mut().zip(src).zip(mask) {
                    *d += s * m;
                }
            }
        });
    grad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dims(words: usize) -> EmbeddingDims {
        EmbeddingDims {
            words,
            width: 3,
            batch: 2,
            steps: 4,
        }
    }

    #[test]
    fn forward_looks_up_and_masks_each_sequence() {
        let table: Vec<f32> = (0..5 * 3).map(|v| v as f32).collect();
        let ids = [1, 4, 0, 1, 2, 2, 3, 0];
        let mask = [1.0, 0.0, 2.0, 0.5, 0.5, 0.0];
        let out = embedding_forward(&table, &ids, &mask, dims(5));
        let expected: Vec<f32> = ids
            .iter()
            .enumerate()
            .flat_map(|(k, &id)| {
                let m = &mask[(k / 4) * 3..(k / 4 + 1) * 3];
                (0..3).map(move |j| (id as usize * 3 + j) as f32 * m[j])
            })
            .collect();
        assert_eq!(out, expected);
    }

    /// The gradient of `Σ out ⊙ w` for a fixed `w` is `d_out = w`; checked against a
    /// sequential scatter, with rows in several parts of the table.
    #[test]
    fn backward_sums_each_rows_gradient_in_every_part() {
        let words = 2 * ROWS_PER_PART + 7;
        let ids = [0, 518, 300, 0, 518, 1, 300, 511];
        let d_out: Vec<f32> = (0..8 * 3).map(|v| (v as f32 * 0.37).sin()).collect();
        let mask = [1.25, 0.0, 1.25, 0.0, 1.25, 1.25];
        let grad = embedding_backward(&d_out, &ids, &mask, dims(words));
        let mut expected = vec![0.0f32; words * 3];
        for (k, &id) in ids.iter().enumerate() {
            for j in 0..3 {
                expected[id as usize * 3 + j] += d_out[k * 3 + j] * mask[(k / 4) * 3 + j];
            }
        }
        assert_eq!(grad, expected);
        assert_ne!(grad[518 * 3], 0.0);
    }

    #[test]
    #[should_panic(expected = "token id 9 outside a table of 5 rows")]
    fn an_id_outside_the_table_is_refused() {
        embedding_forward(&[0.0; 15], &[0, 1, 9, 0, 0, 0, 0, 0], &[1.0; 6], dims(5));
    }
}
