//! A run stacked with an n-gram model: what `stacking.json` records and the report's section
//! on it.

use imdb_model::ngram::NgramConfig;
use imdb_train::Stacking;
use serde::{Deserialize, Serialize};

use crate::html::table;

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
    /// Fitting the n-gram models, scoring the sets and fitting the stack.
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

/// The report's section on a stacked run: each part alone and together, and the weights.
pub fn stacking_section(record: &StackRecord) -> String {
    let row = |set: &str, a: &PartAccuracies| {
        vec![
            set.to_string(),
            format!("{:.4}", a.network),
            format!("{:.4}", a.ngram),
            format!("{:.4}", a.stacked),
        ]
    };
    let s = &record.stacking;
    let grams = match record.ngram.max_n {
        1 => "words",
        2 => "words and word pairs",
        _ => "words, pairs and triples",
    };
    let mut body = format!(
        "<h2>Stacked with an n-gram model</h2><p>This run's test verdicts (metrics, \
         predictions, examples) are a stack: a Naive-Bayes-weighted logistic regression over \
         the {grams} of each review (hashed into 2<sup>{bits}</sup> buckets, {features} of \
         them used; C = {c}) and the network, combined as σ({a:.3}·network + {b:.3}·n-grams \
         {sign} {bias:.3}) over their log-odds, weights fitted on the validation reviews. The \
         saved model is the whole stack (what <code>predict</code>, <code>evaluate</code> and \
         <code>serve</code> use), and each word's weight in the explanations is the fall of \
         the stacked probability when the word is deleted.</p>",
        bits = record.ngram.hash_bits,
        features = record.ngram_features,
        c = record.ngram.c,
        a = s.network_weight,
        b = s.other_weight,
        sign = if s.bias < 0.0 { '−' } else { '+' },
        bias = s.bias.abs(),
    );
    body += &table(
        &["Accuracy", "network", "n-grams", "stacked"],
        &[
            row("validation", &record.validation_accuracy),
            row("test", &record.test_accuracy),
        ],
    );
    if let Some(held_out) = record.validation_held_out {
        body += &format!(
            "<p>The stack's validation accuracy above is in-sample (it was fitted on those \
             rows); on validation rows it was not fitted on (two folds, each fitted on the \
             other) it is <b>{held_out:.4}</b>, what this run is compared and chosen by.</p>"
        );
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_shows_each_part_and_the_weights() {
        let record = StackRecord {
            ngram: NgramConfig::default(),
            ngram_features: 1234,
            stacking: Stacking {
                network_weight: 0.4,
                other_weight: 0.45,
                bias: -0.09,
            },
            validation_accuracy: PartAccuracies {
                network: 0.9154,
                ngram: 0.9186,
                stacked: 0.9226,
            },
            validation_held_out: Some(0.9201),
            test_accuracy: PartAccuracies {
                network: 0.9089,
                ngram: 0.9166,
                stacked: 0.9218,
            },
            seconds: 20.0,
        };
        let html = stacking_section(&record);
        for expected in [
            "1234 of them used",
            "σ(0.400·network + 0.450·n-grams − 0.090)",
            "0.9226",
            "0.9166",
            "0.9218",
            "words, pairs and triples",
            "2<sup>24</sup> buckets",
            "whole stack",
            "it is <b>0.9201</b>",
        ] {
            assert!(html.contains(expected), "{expected} missing: {html}");
        }
        let pairs = StackRecord {
            ngram: NgramConfig {
                max_n: 2,
                ..NgramConfig::default()
            },
            ..record
        };
        let html = stacking_section(&pairs);
        assert!(
            html.contains("the words and word pairs of each review"),
            "{html}"
        );
        assert!(!html.contains("triples"), "{html}");
    }
}
