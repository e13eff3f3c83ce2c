//! Verdicts explained word by word in a run's report: the words of a text coloured by how much
//! they pushed the verdict, and the words that most often drive the model's mistakes.

use std::collections::HashMap;

use imdb_train::TokenWeight;
use serde::{Deserialize, Serialize};

use crate::examples::TestOutcome;
use crate::html::{Markup, html, table};
use crate::report::{MISTAKES_SHOWN, SAMPLE_SIZE};

/// The most confident mistakes whose words are analysed for the words that drive mistakes.
pub const MISTAKES_ANALYSED: usize = 200;
/// Words counted as the drivers of one mistake: its largest positive weights.
pub const DRIVERS_PER_MISTAKE: usize = 3;
/// Rows of the table of words that drive mistakes.
const DRIVERS_SHOWN: usize = 20;

/// One test row explained: the words the model read, in order, with their weights towards
/// its verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExplainedRow {
    /// Row in the test set.
    pub index: usize,
    /// The words read (decoded ids: `<UNK>` beyond the vocabulary), with their weights.
    pub tokens: Vec<TokenWeight>,
}

/// The test rows whose explanations a run's report uses, in ascending order without repeats:
/// the random sample (drawn with `seed`) and the mistakes it shows, and the
/// [`MISTAKES_ANALYSED`] most confident mistakes overall.
pub fn rows_to_explain(test: &TestOutcome<'_>, seed: u64) -> Vec<usize> {
    let shown = test
        .random_sample(SAMPLE_SIZE, seed)
        .into_iter()
        .chain(
            test.confident_mistakes(MISTAKES_SHOWN)
                .into_iter()
                .flatten(),
        )
        .map(|e| e.index);
    let mut rows: Vec<usize> = shown
        .chain(test.most_confident_mistakes(MISTAKES_ANALYSED))
        .collect();
    rows.sort_unstable();
    rows.dedup();
    rows
}

/// The words of `tokens` as HTML spans coloured by weight: green for words that support the
/// verdict, red for words against it, stronger for larger weights (relative to the text's
/// largest); each span's title gives the weight.
pub fn highlighted(tokens: &[TokenWeight]) -> Markup {
    let largest = tokens
        .iter()
        .map(|t| t.weight.abs())
        .fold(0.0f32, f32::max)
        .max(f32::MIN_POSITIVE);
    html! {
        span.explained {
            @for (i, t) in tokens.iter().enumerate() {
                @if i > 0 { " " }
                span
                    style=(format!(
                        "background:rgba({},{:.2})",
                        if t.weight >= 0.0 { "44,160,44" } else { "214,39,40" },
                        0.85 * (t.weight.abs() / largest).clamp(0.0, 1.0)
                    ))
                    title=(format!("{:+.4}", t.weight))
                { (t.token) }
            }
        }
    }
}

/// One word that drives mistakes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MistakeDriver {
    /// The word.
    pub word: String,
    /// The wrong verdict it pushed towards.
    pub towards: String,
    /// Mistakes in which it is among the words that pushed the wrong verdict most.
    pub mistakes: usize,
    /// Its mean weight in those mistakes.
    pub mean_weight: f32,
}

/// The words that most often drive the model's mistakes: over the explained rows that are
/// mistakes, the [`DRIVERS_PER_MISTAKE`] words with the largest positive weight of each
/// (towards the wrong verdict), counted by word and wrong class; most frequent first.
pub fn mistake_drivers(test: &TestOutcome<'_>, explained: &[ExplainedRow]) -> Vec<MistakeDriver> {
    let mut counts: HashMap<(String, u32), (usize, f32)> = HashMap::new();
    for row in explained {
        let predicted = test.probabilities.predicted(row.index);
        if predicted == test.labels[row.index] {
            continue;
        }
        let mut order: Vec<&TokenWeight> = row.tokens.iter().filter(|t| t.weight > 0.0).collect();
        order.sort_by(|a, b| b.weight.total_cmp(&a.weight));
        // A word counts once per mistake, however often it occurs.
        let mut seen: Vec<&str> = Vec::new();
        for t in order {
            if seen.len() == DRIVERS_PER_MISTAKE {
                break;
            }
            if seen.contains(&t.token.as_str()) {
                continue;
            }
            seen.push(&t.token);
            let entry = counts.entry((t.token.clone(), predicted)).or_default();
            entry.0 += 1;
            entry.1 += t.weight;
        }
    }
    let mut drivers: Vec<MistakeDriver> = counts
        .into_iter()
        .map(|((word, class), (mistakes, total))| MistakeDriver {
            word,
            towards: test.class_name(class),
            mistakes,
            mean_weight: total / mistakes as f32,
        })
        .collect();
    drivers.sort_by(|a, b| {
        b.mistakes
            .cmp(&a.mistakes)
            .then(b.mean_weight.total_cmp(&a.mean_weight))
            .then(a.word.cmp(&b.word))
    });
    drivers
}

/// The report's section on the words that drive mistakes.
pub fn drivers_section(drivers: &[MistakeDriver], mistakes: usize) -> Markup {
    if drivers.is_empty() {
        return html! {};
    }
    let rows: Vec<Vec<String>> = drivers
        .iter()
        .take(DRIVERS_SHOWN)
        .map(|d| {
            vec![
                d.word.clone(),
                d.towards.clone(),
                d.mistakes.to_string(),
                format!("{:.4}", d.mean_weight),
            ]
        })
        .collect();
    html! {
        h3 { "Words that drive mistakes" }
        p {
            "Over the " (mistakes) " most confident mistakes, the words that pushed the wrong \
             verdict most (" (DRIVERS_PER_MISTAKE) " per mistake), by how many mistakes they \
             drive."
        }
        (table(&["Word", "Wrong verdict", "Mistakes", "Mean weight"], &rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tw(token: &str, weight: f32) -> TokenWeight {
        TokenWeight {
            token: token.into(),
            weight,
        }
    }

    #[test]
    fn spans_are_coloured_by_sign_and_strength_and_escaped() {
        let html = highlighted(&[tw("great", 0.4), tw("<b>", -0.2), tw("film", 0.0)]).into_string();
        assert!(html.contains("rgba(44,160,44,0.85)\" title=\"+0.4000\">great</span>"));
        assert!(html.contains("rgba(214,39,40,0.43)\" title=\"-0.2000\">&lt;b&gt;</span>"));
        assert!(html.contains("rgba(44,160,44,0.00)\" title=\"+0.0000\">film</span>"));
        assert!(highlighted(&[]).into_string().contains("explained"));
    }
}
