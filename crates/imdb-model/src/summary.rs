//! A Keras-style model summary.

use serde::{Deserialize, Serialize};

/// One row of the summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerSummary {
    /// Layer name, e.g. `lstm`.
    pub name: String,
    /// Layer class, e.g. `LSTM`.
    pub kind: String,
    /// Output shape in Keras' notation, e.g. `(None, 64)`.
    pub output_shape: String,
    /// Trainable parameters.
    pub params: usize,
}

/// The layers with their shapes and parameter counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSummary {
    /// Layers in order.
    pub layers: Vec<LayerSummary>,
    /// Parameters counted on the module itself (equal to the sum of the rows).
    pub total_params: usize,
}

impl ModelSummary {
    /// A summary of `layers`; `total_params` is counted on the module.
    pub fn new(layers: Vec<LayerSummary>, total_params: usize) -> Self {
        Self {
            layers,
            total_params,
        }
    }

    /// Sum of the rows' parameter counts.
    pub fn rows_total(&self) -> usize {
        self.layers.iter().map(|l| l.params).sum()
    }
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl std::fmt::Display for ModelSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let line = "─".repeat(75);
        writeln!(
            f,
            "{:<34}{:<26}{:>15}",
            "Layer (type)", "Output Shape", "Param #"
        )?;
        writeln!(f, "{line}")?;
        for l in &self.layers {
            let name = format!("{} ({})", l.name, l.kind);
            writeln!(
                f,
                "{name:<34}{:<26}{:>15}",
                l.output_shape,
                thousands(l.params)
            )?;
        }
        writeln!(f, "{line}")?;
        writeln!(f, " Total params: {}", thousands(self.total_params))?;
        writeln!(f, " Trainable params: {}", thousands(self.total_params))?;
        write!(f, " Non-trainable params: 0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(2_609_473), "2,609,473");
        assert_eq!(thousands(1_000), "1,000");
    }
}
