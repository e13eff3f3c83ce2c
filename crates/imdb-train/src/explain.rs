//! Why a verdict: a weight per word of how much it pushed the model towards the class it
//! predicted, by occlusion. Each word the model read is deleted in turn, and its weight is how
//! much the predicted class's probability falls without it (negative: the word argued for
//! another class). Every architecture works the same way, through the fast inference path:
//! a review of `L` words is `L + 1` rows of one batch (itself, and itself without each word).
//!
//! Occlusion measures what the explanation claims — the effect of a word on this model's
//! verdict — with no gradient and no baseline to choose (unlike integrated gradients), and a
//! deletion is the very change the faithfulness check of `cargo xtask bench explain` makes.

use burn::tensor::Device;
use imdb_data::Padding;
use imdb_model::{ModelInput, Predictor};
use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::metrics::ClassProbabilities;
use crate::step::try_host;

/// Most rows in one forward pass: a review and its occluded copies always go together, so a
/// review longer than this is a pass of its own.
pub const MAX_ROWS: usize = 512;

/// One word of a text and how much it pushed the verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenWeight {
    /// The word, as the tokenizer split it.
    pub token: String,
    /// How much the predicted class's probability falls when the word is deleted: positive
    /// for words that support the verdict, negative for words that argue against it, 0 for
    /// words the model did not read (cut by truncation).
    pub weight: f32,
}

/// The occlusion of one sequence of ids.
#[derive(Debug, Clone, PartialEq)]
pub struct Occlusion {
    /// Class probabilities of the whole sequence.
    pub probabilities: Vec<f32>,
    /// The class explained (the predicted one).
    pub class: u32,
    /// One weight per id: the explained class's probability with every id minus with every
    /// id but this one.
    pub weights: Vec<f32>,
}

/// How the sequences are laid out for the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowLayout {
    /// Which side the padding goes (the model's training layout).
    pub padding: Padding,
    /// `Some(maxlen)`: every row padded to `maxlen` (a model that reads padding must see what
    /// it saw in training); `None`: each batch cut to its longest row (a model that masks
    /// padding gives the same numbers, faster).
    pub fixed_steps: Option<usize>,
}

/// Occludes every id of each of `sequences` (unpadded ids, each at most the layout's length)
/// with `predictor`, whose model has `outputs` outputs, on `device`: the predicted class of
/// each sequence and the weight of each of its ids towards it.
pub fn occlude(
    predictor: &Predictor<'_>,
    outputs: usize,
    sequences: &[&[u32]],
    layout: RowLayout,
    device: &Device,
) -> Result<Vec<Occlusion>, TrainError> {
    occlude_towards(predictor, outputs, (sequences, None), layout, device)
}

/// [`occlude`], the weights towards `classes[i]` for sequence `i` when given (e.g. the
/// verdicts an evaluation reported, which rounding could flip at a probability of 0.5).
pub fn occlude_towards(
    predictor: &Predictor<'_>,
    outputs: usize,
    (sequences, classes): (&[&[u32]], Option<&[u32]>),
    layout: RowLayout,
    device: &Device,
) -> Result<Vec<Occlusion>, TrainError> {
    let mut results = Vec::with_capacity(sequences.len());
    let mut start = 0;
    while start < sequences.len() {
        // As many whole sequences as fit in one pass (at least one), each followed by its
        // copies without one id.
        let mut rows: Vec<Vec<u32>> = Vec::new();
        let mut end = start;
        while end < sequences.len()
            && (end == start || rows.len() + sequences[end].len() < MAX_ROWS)
        {
            let seq = sequences[end];
            rows.push(seq.to_vec());
            rows.extend((0..seq.len()).map(|skip| {
                let mut without = seq.to_vec();
                without.remove(skip);
                without
            }));
            end += 1;
        }
        let refs: Vec<&[u32]> = rows.iter().map(Vec::as_slice).collect();
        let probabilities = sequence_probabilities(predictor, outputs, &refs, layout, device)?;
        let mut row = 0;
        for (i, seq) in sequences.iter().enumerate().take(end).skip(start) {
            let class = classes.map_or_else(|| probabilities.predicted(row), |c| c[i]);
            let whole = probabilities.row(row)[class as usize];
            results.push(Occlusion {
                probabilities: probabilities.row(row).to_vec(),
                class,
                weights: (1..=seq.len())
                    .map(|j| whole - probabilities.row(row + j)[class as usize])
                    .collect(),
            });
            row += seq.len() + 1;
        }
        start = end;
    }
    Ok(results)
}

/// The class probabilities of each of `sequences` (unpadded ids), laid out as `layout` says,
/// in passes of at most [`MAX_ROWS`] rows.
pub fn sequence_probabilities(
    predictor: &Predictor<'_>,
    outputs: usize,
    sequences: &[&[u32]],
    layout: RowLayout,
    device: &Device,
) -> Result<ClassProbabilities, TrainError> {
    let mut values = Vec::new();
    let mut num_classes = crate::metrics::num_classes_for(outputs);
    for chunk in sequences.chunks(MAX_ROWS) {
        let longest = chunk.iter().map(|s| s.len()).max().unwrap_or(0);
        let steps = layout.fixed_steps.unwrap_or(longest).max(longest).max(1);
        let mut ids = Vec::with_capacity(chunk.len() * steps);
        for seq in chunk {
            let pad = std::iter::repeat_n(0, steps - seq.len());
            match layout.padding {
                Padding::Pre => ids.extend(pad.chain(seq.iter().copied())),
                Padding::Post => ids.extend(seq.iter().copied().chain(pad)),
            }
        }
        let lengths: Vec<usize> = chunk.iter().map(|s| s.len()).collect();
        let input = ModelInput::from_padded(
            &ids,
            &lengths,
            steps,
            layout.padding == Padding::Pre,
            device,
        );
        let logits = try_host(predictor.logits(input))?;
        let probabilities = ClassProbabilities::from_logits(&logits, outputs);
        if probabilities.len() != chunk.len() {
            return Err(TrainError::DeviceRead {
                backend: format!("{device:?}"),
                message: format!("{} outputs for {} rows", probabilities.len(), chunk.len()),
            });
        }
        num_classes = probabilities.num_classes;
        values.extend(probabilities.values);
    }
    Ok(ClassProbabilities {
        num_classes,
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use imdb_model::{ModelConfig, SentimentClassifier};

    fn model(mask_padding: bool) -> SentimentClassifier {
        let config = ModelConfig {
            embed_dim: 8,
            units: 6,
            mask_padding,
            ..ModelConfig::default()
        };
        SentimentClassifier::new(&config, 40, 3, 5, &Device::flex()).unwrap()
    }

    #[test]
    fn each_weight_is_the_fall_without_that_word_in_one_pass_or_many() {
        let device = Device::flex();
        for (mask_padding, padding) in [(true, Padding::Post), (false, Padding::Pre)] {
            let model = model(mask_padding);
            let predictor = model.predictor();
            let layout = RowLayout {
                padding,
                fixed_steps: (!mask_padding).then_some(9),
            };
            let texts: Vec<Vec<u32>> = vec![vec![1, 7, 9, 30], vec![1, 12], vec![1], vec![5; 9]];
            let refs: Vec<&[u32]> = texts.iter().map(Vec::as_slice).collect();
            let together = occlude(&predictor, 3, &refs, layout, &device).unwrap();
            assert_eq!(together.len(), 4);
            for (text, got) in texts.iter().zip(&together) {
                assert_eq!(got.weights.len(), text.len());
                // Alone, and by direct evaluation of each deletion.
                let alone = occlude(&predictor, 3, &[text.as_slice()], layout, &device).unwrap();
                assert_eq!(alone[0].class, got.class);
                let probability = |ids: &[u32]| -> f32 {
                    let steps = layout.fixed_steps.unwrap_or(ids.len()).max(1);
                    let mut row = vec![0u32; steps];
                    match padding {
                        Padding::Post => row[..ids.len()].copy_from_slice(ids),
                        Padding::Pre => row[steps - ids.len()..].copy_from_slice(ids),
                    }
                    let input = ModelInput::from_padded(
                        &row,
                        &[ids.len()],
                        steps,
                        padding == Padding::Pre,
                        &device,
                    );
                    let logits = try_host(predictor.logits(input)).unwrap();
                    ClassProbabilities::from_logits(&logits, 3).row(0)[got.class as usize]
                };
                let whole = probability(text);
                assert!((got.probabilities[got.class as usize] - whole).abs() < 1e-5);
                for j in 0..text.len() {
                    let mut without = text.clone();
                    without.remove(j);
                    let expected = whole - probability(&without);
                    assert!(
                        (got.weights[j] - expected).abs() < 1e-5,
                        "{j}: {} vs {expected}",
                        got.weights[j]
                    );
                    assert!((alone[0].weights[j] - got.weights[j]).abs() < 1e-5);
                }
            }
        }
    }
}
