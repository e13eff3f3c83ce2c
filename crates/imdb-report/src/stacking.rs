//! A run stacked with an n-gram model: what `stacking.json` records and the report's section
//! on it.

pub use imdb_train::ngram_stack::{PartAccuracies, StackRecord};

use crate::html::{Markup, html, table};

/// The report's section on a stacked run: each part alone and together, and the weights.
pub fn stacking_section(record: &StackRecord) -> Markup {
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
    let combined = format!(
        "σ({:.3}·network + {:.3}·n-grams {} {:.3})",
        s.network_weight,
        s.other_weight,
        if s.bias < 0.0 { '−' } else { '+' },
        s.bias.abs()
    );
    html! {
        h2 { "Stacked with an n-gram model" }
        p {
            "This run's test verdicts (metrics, predictions, examples) are a stack: a \
             Naive-Bayes-weighted logistic regression over the " (grams) " of each review \
             (hashed into 2" sup { (record.ngram.hash_bits) } " buckets, "
            (record.ngram_features) " of them used; C = " (record.ngram.c) ") and the \
             network, combined as " (combined) " over their log-odds, weights fitted on the \
             validation reviews. The saved model is the whole stack (what " code { "predict" }
            ", " code { "evaluate" } " and " code { "serve" } " use), and each word's weight \
             in the explanations is the fall of the stacked probability when the word is \
             deleted."
        }
        (table(
            &["Accuracy", "network", "n-grams", "stacked"],
            &[
                row("validation", &record.validation_accuracy),
                row("test", &record.test_accuracy),
            ],
        ))
        @if let Some(held_out) = record.validation_held_out {
            p {
                "The stack's validation accuracy above is in-sample (it was fitted on those \
                 rows); on validation rows it was not fitted on (two folds, each fitted on the \
                 other) it is " b { (format!("{held_out:.4}")) } ", what this run is compared \
                 and chosen by."
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use imdb_model::ngram::NgramConfig;
    use imdb_train::Stacking;

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
        let html = stacking_section(&record).into_string();
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
        let html = stacking_section(&pairs).into_string();
        assert!(
            html.contains("the words and word pairs of each review"),
            "{html}"
        );
        assert!(!html.contains("triples"), "{html}");
    }
}
