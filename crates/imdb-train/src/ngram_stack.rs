//! A trained network stacked with a Naive-Bayes-weighted n-gram logistic regression
//! (NBSVM-style, `imdb_model::ngram`): the `ngram_stack` step of a [`crate::Recipe`].
//!
//! The n-gram model is fitted on the run's training reviews — every word, not only the
//! `maxlen` the network reads, ids as the network sees them (`num_words`) — and the two
//! models' log-odds are stacked by a logistic regression fitted on the validation reviews
//! ([`crate::Stacking`]); for the test, the n-gram model is fitted again on training and
//! validation reviews together (the network cannot be: it stops early on the validation
//! reviews). Both fits share one hashing of the reviews (the training reviews come first)
//! and run one after the other, each on every core. The test verdicts, metrics and report are the stack's; the saved model keeps
//! the n-gram model of the test verdicts and the stack's weights beside the network, so that
//! `predict`, `evaluate` and `serve` give what the run reported. Each model alone and the
//! weights are described by a [`StackRecord`] (a run's `stacking.json`).

use std::time::Instant;

use burn::tensor::Device;
use imdb_data::{PreparedData, TokenizedReview, Vocabulary};
use imdb_model::ngram::{NgramClassifier, NgramConfig, NgramFeatures};
use imdb_model::{InferencePrecision, SentimentClassifier};
use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::evaluate::{Evaluation, evaluate_at};
use crate::stacking::{NgramStack, Stacking};

/// Where a stacked run's verdicts came from and how each part does alone (`stacking.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StackRecord {
    /// The n-gram model's settings.
    pub ngram: NgramConfig,
    /// How many distinct n-grams the n-gram model of the test verdicts knows.
    pub ngram_features: usize,
    /// The fitted weights of the two models' log-odds.
    pub stacking: Stacking,
    /// Validation accuracy: the network, the n-gram model, the stack (fitted on these very
    /// rows, so in-sample).
    pub validation_accuracy: PartAccuracies,
    /// The stack's validation accuracy on rows it was not fitted on: the validation rows in
    /// two folds (even and odd rows), each scored by a stack fitted on the other. What a
    /// stacked run is compared and chosen by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validation_held_out: Option<f64>,
    /// Test accuracy: the network, the n-gram model, the stack.
    pub test_accuracy: PartAccuracies,
    /// Fitting the n-gram models (unless they were fitted before, for another run on the same
    /// sets), scoring the sets and fitting the stack.
    pub seconds: f64,
}

/// The accuracy of each part of a stack, and of the stack, on one set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PartAccuracies {
    /// The network alone.
    pub network: f64,
    /// The n-gram model alone.
    pub ngram: f64,
    /// The two stacked.
    pub stacked: f64,
}

/// What a run's model and data are, for stacking.
pub struct StackInputs<'a> {
    /// The trained network.
    pub model: &'a SentimentClassifier,
    /// The run's sets (their `source` rows index the corpus' splits).
    pub data: &'a PreparedData,
    /// The corpus' training reviews (training and validation rows).
    pub train_reviews: &'a [TokenizedReview],
    /// The corpus' test reviews.
    pub test_reviews: &'a [TokenizedReview],
    /// The run's vocabulary size.
    pub num_words: usize,
    /// Evaluation batch size and bucketing, as for the test set.
    pub eval: (usize, bool),
    /// The inference precision.
    pub precision: InferencePrecision,
}

/// The n-gram half of a stack: it depends on the run's sets and n-gram settings alone, not on
/// the network, so one fit serves every network trained on the same sets (an experiment's
/// runs of one seed). [`stack_with_ngrams`] fits it each time; [`stack_fitted`] takes one
/// fitted before.
#[derive(Debug, Clone)]
pub struct FittedNgrams {
    config: NgramConfig,
    /// The rows of the training, validation and test sets it was fitted and scored on, and
    /// the vocabulary size, to refuse other sets.
    rows: [Vec<usize>; 3],
    num_words: usize,
    /// The log-odds of the validation reviews, from the model fitted on the training reviews.
    val_logits: Vec<f64>,
    /// The model fitted on training and validation reviews together (the stack's, saved).
    for_test: NgramClassifier,
    /// Its log-odds of the test reviews.
    test_logits: Vec<f64>,
    seconds: f64,
}

impl FittedNgrams {
    /// Fits the two n-gram models on a run's sets (`data`, whose `source` rows index the
    /// corpus' `train_reviews` and `test_reviews`, ids below `num_words`): one from the
    /// training reviews, for the validation reviews the stack is fitted on; one from training
    /// and validation reviews together, for the test (the network needs the validation
    /// reviews to stop early, the n-gram model does not).
    pub fn fit(
        config: &NgramConfig,
        data: &PreparedData,
        (train_reviews, test_reviews): (&[TokenizedReview], &[TokenizedReview]),
        num_words: usize,
    ) -> Result<Self, TrainError> {
        let started = Instant::now();
        let texts = |reviews: &[TokenizedReview], rows: &[usize]| -> Vec<Vec<u32>> {
            rows.iter()
                .map(|&i| Vocabulary::encode_ranks(&reviews[i].ranks, num_words))
                .collect()
        };
        let train = texts(train_reviews, &data.train.source);
        let val = texts(train_reviews, &data.val.source);
        let labelled: Vec<&[u32]> = train.iter().chain(&val).map(Vec::as_slice).collect();
        let mut labels = data.train.labels.clone();
        labels.extend(&data.val.labels);
        // One after the other (each on every core): one fit's optimizer state in memory at a
        // time.
        let features = NgramFeatures::new(&labelled, config.max_n, config.hash_bits)?;
        let for_val = features.fit(&data.train.labels, config)?;
        let val_logits: Vec<f64> = val.iter().map(|t| for_val.logit(t)).collect();
        drop(for_val);
        let for_test = features.fit(&labels, config)?;
        drop(features);
        let test_logits = texts(test_reviews, &data.test.source)
            .iter()
            .map(|t| for_test.logit(t))
            .collect();
        Ok(Self {
            config: *config,
            rows: set_rows(data),
            num_words,
            val_logits,
            for_test,
            test_logits,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// The settings it was fitted with.
    pub fn config(&self) -> &NgramConfig {
        &self.config
    }

    /// Seconds the fit took.
    pub fn seconds(&self) -> f64 {
        self.seconds
    }
}

/// The source rows of a run's training, validation and test sets.
fn set_rows(data: &PreparedData) -> [Vec<usize>; 3] {
    [
        data.train.source.clone(),
        data.val.source.clone(),
        data.test.source.clone(),
    ]
}

/// Stacks the network (whose test evaluation is `network_test`) with an n-gram model set by
/// `config`; returns the stack's test evaluation, its record and the stack itself (to save
/// with the network: [`crate::SavedModel::with_stack`]).
pub fn stack_with_ngrams(
    config: &NgramConfig,
    inputs: &StackInputs<'_>,
    network_test: &Evaluation,
    device: &Device,
) -> Result<(Evaluation, StackRecord, NgramStack), TrainError> {
    let reviews = (inputs.train_reviews, inputs.test_reviews);
    let fitted = FittedNgrams::fit(config, inputs.data, reviews, inputs.num_words)?;
    let (test, mut record, stack) = stack_fitted(config, &fitted, inputs, network_test, device)?;
    record.seconds += fitted.seconds;
    Ok((test, record, stack))
}

/// [`stack_with_ngrams`] with n-gram models fitted before on the same sets; refused, saying
/// why, when they were fitted with settings other than `config` (`TrainError::InvalidRecipe`,
/// key `ngram_stack`) or on other rows or another vocabulary size (`TrainError::BadSet`). The
/// record's `seconds` are this stacking's, without the earlier fit.
pub fn stack_fitted(
    config: &NgramConfig,
    fitted: &FittedNgrams,
    inputs: &StackInputs<'_>,
    network_test: &Evaluation,
    device: &Device,
) -> Result<(Evaluation, StackRecord, NgramStack), TrainError> {
    let started = Instant::now();
    let data = inputs.data;
    if fitted.config != *config {
        return Err(TrainError::InvalidRecipe {
            key: "ngram_stack".into(),
            problem: format!(
                "the n-gram models given were fitted with {:?}, the recipe stacks with \
                 {config:?}: fit them with this recipe's fit_ngrams",
                fitted.config
            ),
        });
    }
    if fitted.rows != set_rows(data) || fitted.num_words != inputs.num_words {
        return Err(TrainError::BadSet {
            split: "training",
            problem: "the n-gram models were fitted on other sets (other rows or another \
                      num_words): fit them on this run's sets"
                .into(),
        });
    }
    let network_val = evaluate_at(
        inputs.model,
        &data.val,
        inputs.eval,
        inputs.precision,
        device,
    )?;
    let val_ngram = &fitted.val_logits;
    let held_out = held_out_accuracy(&network_val, val_ngram)?;
    let stacking = Stacking::fit(&network_val, val_ngram)?;
    let stacked_val = stacking.evaluate(&network_val, val_ngram, "validation")?;
    // The saved model's own arithmetic (`NgramStack::evaluate`: the n-gram model's log-odds,
    // then the stack's), so that `evaluate` gives these verdicts exactly.
    let stacked_test = stacking.evaluate(network_test, &fitted.test_logits, "test")?;
    let stack = NgramStack {
        ngram: fitted.for_test.clone(),
        stacking,
    };
    let record = StackRecord {
        ngram: fitted.config,
        ngram_features: stack.ngram.num_features(),
        stacking,
        validation_accuracy: PartAccuracies {
            network: network_val.metrics.accuracy,
            ngram: accuracy(val_ngram, &data.val.labels),
            stacked: stacked_val.metrics.accuracy,
        },
        validation_held_out: Some(held_out),
        test_accuracy: PartAccuracies {
            network: network_test.metrics.accuracy,
            ngram: accuracy(&fitted.test_logits, &data.test.labels),
            stacked: stacked_test.metrics.accuracy,
        },
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok((stacked_test, record, stack))
}

/// The stack's accuracy on validation rows it was not fitted on: the rows in two folds (even
/// and odd), each scored by a stack fitted on the other fold.
fn held_out_accuracy(network: &Evaluation, ngram: &[f64]) -> Result<f64, TrainError> {
    let fold = |parity: usize| -> (Evaluation, Vec<f64>) {
        let rows: Vec<usize> = (0..network.labels.len())
            .filter(|i| i % 2 == parity)
            .collect();
        let logits = rows.iter().map(|&i| network.logits[i]).collect();
        let labels = rows.iter().map(|&i| network.labels[i]).collect();
        let other = rows.iter().map(|&i| ngram[i]).collect();
        (Evaluation::from_logits(logits, 1, labels), other)
    };
    let (even, odd) = (fold(0), fold(1));
    let mut right = 0.0;
    for ((fit_on, fit_other), (score, score_other)) in [(&even, &odd), (&odd, &even)] {
        let stacking = Stacking::fit(fit_on, fit_other)?;
        let scored = stacking.evaluate(score, score_other, "validation")?;
        right += scored.metrics.accuracy * score.labels.len() as f64;
    }
    Ok(right / network.labels.len() as f64)
}

/// The accuracy of a two-class model's log-odds, read as the network's are.
fn accuracy(logits: &[f64], labels: &[u32]) -> f64 {
    let logits = logits.iter().map(|&z| z as f32).collect();
    Evaluation::from_logits(logits, 1, labels.to_vec())
        .metrics
        .accuracy
}
