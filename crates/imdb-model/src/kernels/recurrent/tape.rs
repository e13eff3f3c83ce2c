//! What the forward pass keeps for the backward pass.

use super::CellKind;

/// What the backward pass needs from the forward pass: the batch split the forward pass used
/// and one tape per chunk of rows. The backward pass reads the split from here rather than
/// computing it again, so a thread count that changed in between cannot misalign them.
#[derive(Debug, Clone, Default)]
pub struct RecurrentTape {
    /// Rows per chunk (the last chunk may have fewer).
    pub(super) rows: usize,
    /// The batch the tape was made for.
    pub(super) batch: usize,
    pub(super) chunks: Vec<ChunkTape>,
}

/// One chunk's tape. Everything is batch-major like the input, so that the large products
/// read and write the callers' buffers directly; one time step's rows are `T·width` apart.
#[derive(Debug, Clone, Default)]
pub(super) struct ChunkTape {
    /// `[r, T, G·H]` gate activations (RNN: the new state).
    pub(super) gates: Vec<f32>,
    /// `[r, T, H]` previous hidden state times the recurrent mask.
    pub(super) h_prev: Vec<f32>,
    /// What only this cell's backward pass reads.
    pub(super) cell: CellTape,
}

/// The per-cell part of a chunk's tape, each `[r, T, H]`.
#[derive(Debug, Clone, Default)]
pub(super) enum CellTape {
    /// LSTM.
    Lstm {
        /// The cell state after each step.
        c: Vec<f32>,
        /// Its tanh.
        tanh_c: Vec<f32>,
    },
    /// GRU.
    Gru {
        /// The recurrent part of the candidate, `h_{t-1}·W_hn + b_hn`.
        hp_n: Vec<f32>,
        /// The state before each step (unmasked).
        h_before: Vec<f32>,
    },
    /// The vanilla RNN keeps nothing beyond its gates; also the tape of a pass that keeps
    /// nothing.
    #[default]
    Rnn,
}

impl CellTape {
    /// Zeroed buffers of `len` values for `cell` (none when `len` is 0: no tape is kept).
    pub(super) fn new(cell: CellKind, len: usize) -> Self {
        match cell {
            _ if len == 0 => CellTape::Rnn,
            CellKind::Lstm => CellTape::Lstm {
                c: vec![0.0; len],
                tanh_c: vec![0.0; len],
            },
            CellKind::Gru => CellTape::Gru {
                hp_n: vec![0.0; len],
                h_before: vec![0.0; len],
            },
            CellKind::Rnn => CellTape::Rnn,
        }
    }
}
