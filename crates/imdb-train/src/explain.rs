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
use crate::stacking::NgramStack;
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
    let logits = occluded_logits(predictor, outputs, sequences, layout, device)?;
    Ok(logits
        .into_iter()
        .enumerate()
        .map(|(i, rows)| {
            let probabilities = ClassProbabilities::from_logits(&rows, outputs);
            weigh(&probabilities, classes.map(|c| c[i]), |j| j + 1)
        })
        .collect())
}

/// One text for a stacked model's occlusion: every id of it, untruncated (what the n-gram
/// model reads), and which of them the network reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackedSequence<'a> {
    /// Every id of the text, in order.
    pub all: &'a [u32],
    /// The ids the network reads: `all[kept]`.
    pub kept: std::ops::Range<usize>,
}

/// [`occlude_towards`] for a network stacked with an n-gram model (`stack`): each id of each
/// text's `all` ids is deleted in turn, from what the n-gram model reads and, when the network
/// reads it, from the network's ids; its weight is the fall of the *stacked* probability of
/// the explained class. The weights follow `all` (ids the network does not read weigh only
/// through the n-gram model).
pub fn occlude_stacked(
    predictor: &Predictor<'_>,
    stack: &NgramStack,
    (sequences, classes): (&[StackedSequence<'_>], Option<&[u32]>),
    layout: RowLayout,
    device: &Device,
) -> Result<Vec<Occlusion>, TrainError> {
    let kept: Vec<&[u32]> = sequences.iter().map(|s| &s.all[s.kept.clone()]).collect();
    let network = occluded_logits(predictor, 1, &kept, layout, device)?;
    Ok(sequences
        .iter()
        .zip(network)
        .enumerate()
        .map(|(i, (seq, network))| {
            // Row 0: the whole text; row 1 + p: without id p of `all`.
            let mut logits = Vec::with_capacity(seq.all.len() + 1);
            logits.push(stack.logit(network[0], seq.all));
            let mut without = Vec::with_capacity(seq.all.len());
            for p in 0..seq.all.len() {
                without.clear();
                without.extend_from_slice(&seq.all[..p]);
                without.extend_from_slice(&seq.all[p + 1..]);
                let net = if seq.kept.contains(&p) {
                    network[p - seq.kept.start + 1]
                } else {
                    network[0]
                };
                logits.push(stack.logit(net, &without));
            }
            let probabilities = ClassProbabilities::from_logits(&logits, 1);
            weigh(&probabilities, classes.map(|c| c[i]), |p| p + 1)
        })
        .collect())
}

/// The class probabilities of texts after deleting some of their ids: for each text and the
/// positions (in its `all` ids) deleted, the network reads the ids of `kept` that remain and
/// a stack's n-gram part (with `stack`) every id that remains. Without a stack, give each
/// text's network ids as `all` (every one kept).
pub fn probabilities_without(
    predictor: &Predictor<'_>,
    outputs: usize,
    stack: Option<&NgramStack>,
    texts: &[(StackedSequence<'_>, &[usize])],
    layout: RowLayout,
    device: &Device,
) -> Result<ClassProbabilities, TrainError> {
    let remaining =
        |seq: &StackedSequence<'_>, deleted: &[usize], range: std::ops::Range<usize>| {
            range
                .filter(|p| !deleted.contains(p))
                .map(|p| seq.all[p])
                .collect::<Vec<u32>>()
        };
    let network: Vec<Vec<u32>> = texts
        .iter()
        .map(|(seq, deleted)| remaining(seq, deleted, seq.kept.clone()))
        .collect();
    let refs: Vec<&[u32]> = network.iter().map(Vec::as_slice).collect();
    let mut logits = sequence_logits(predictor, outputs, &refs, layout, device)?;
    if let Some(stack) = stack {
        for (logit, (seq, deleted)) in logits.iter_mut().zip(texts) {
            *logit = stack.logit(*logit, &remaining(seq, deleted, 0..seq.all.len()));
        }
    }
    Ok(ClassProbabilities::from_logits(&logits, outputs))
}

/// The occlusion of one sequence from its rows' probabilities (row 0 the whole sequence,
/// `row_of(j)` the row without id `j`), towards `class` or the predicted class.
fn weigh(
    probabilities: &ClassProbabilities,
    class: Option<u32>,
    row_of: impl Fn(usize) -> usize,
) -> Occlusion {
    let class = class.unwrap_or_else(|| probabilities.predicted(0));
    let whole = probabilities.row(0)[class as usize];
    Occlusion {
        probabilities: probabilities.row(0).to_vec(),
        class,
        weights: (0..probabilities.len() - 1)
            .map(|j| whole - probabilities.row(row_of(j))[class as usize])
            .collect(),
    }
}

/// For each of `sequences`, the logits (row-major, `outputs` per row) of the sequence and of
/// its copies without each id, in that order; whole sequences share passes of at most
/// [`MAX_ROWS`] rows.
fn occluded_logits(
    predictor: &Predictor<'_>,
    outputs: usize,
    sequences: &[&[u32]],
    layout: RowLayout,
    device: &Device,
) -> Result<Vec<Vec<f32>>, TrainError> {
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
        let logits = sequence_logits(predictor, outputs, &refs, layout, device)?;
        let mut row = 0;
        for seq in &sequences[start..end] {
            let rows = seq.len() + 1;
            results.push(logits[row * outputs..(row + rows) * outputs].to_vec());
            row += rows;
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
    let logits = sequence_logits(predictor, outputs, sequences, layout, device)?;
    Ok(ClassProbabilities::from_logits(&logits, outputs))
}

/// The model's logits (row-major, `outputs` per row) of each of `sequences` (unpadded ids),
/// laid out as `layout` says, in passes of at most [`MAX_ROWS`] rows.
pub fn sequence_logits(
    predictor: &Predictor<'_>,
    outputs: usize,
    sequences: &[&[u32]],
    layout: RowLayout,
    device: &Device,
) -> Result<Vec<f32>, TrainError> {
    let mut values = Vec::with_capacity(sequences.len() * outputs);
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
        if logits.len() != chunk.len() * outputs {
            return Err(TrainError::DeviceRead {
                backend: format!("{device:?}"),
                message: format!(
                    "{} outputs for {} rows",
                    logits.len() / outputs.max(1),
                    chunk.len()
                ),
            });
        }
        values.extend(logits);
    }
    Ok(values)
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
