//! The checks every entry point makes before touching a buffer.

use super::super::product;
use super::{CellKind, InputForm, RecurrentDims, RecurrentInputs, RecurrentWeights};

/// Panics, naming the argument, unless every buffer has the length `dims` implies. Products
/// are checked, so sizes whose product overflows are refused rather than wrapped.
pub(super) fn check_shapes(
    cell: CellKind,
    d: RecurrentDims,
    w: &RecurrentWeights<'_>,
    x: &RecurrentInputs<'_>,
) {
    let g = product(&[cell.gates(), d.hidden], "gates·hidden");
    let cells = product(&[d.batch, d.steps], "batch·steps");
    match x.form {
        InputForm::Features => {
            assert_eq!(w.w_ih.len(), product(&[d.input, g], "w_ih"), "w_ih shape");
            assert_eq!(x.x.len(), product(&[cells, d.input], "x"), "x shape");
        }
        InputForm::Projected => {
            assert_eq!(d.input, g, "a projected input has gates·hidden features");
            assert_eq!(x.x.len(), product(&[cells, g], "x"), "x shape");
        }
        InputForm::Lookup(ids) => {
            assert_eq!(d.input, g, "a projected input has gates·hidden features");
            assert_eq!(ids.len(), cells, "ids shape");
            assert!(g > 0 && x.x.len().is_multiple_of(g), "lookup table shape");
            let words = x.x.len() / g;
            assert!(
                ids.iter().all(|&id| (id as usize) < words),
                "id outside the table"
            );
        }
    }
    assert_eq!(w.bias.len(), cell.bias_len(d.hidden), "bias shape");
    assert_eq!(w.w_hh.len(), product(&[d.hidden, g], "w_hh"), "w_hh shape");
    assert_eq!(x.step_mask.len(), cells, "step_mask shape");
    if let Some(m) = x.recurrent_mask {
        assert_eq!(
            m.len(),
            product(&[d.batch, d.hidden], "recurrent_mask"),
            "recurrent_mask shape"
        );
    }
}
