//! Recurrent layers (LSTM, GRU, vanilla RNN) with Keras semantics: padding masks that carry
//! the state, and recurrent dropout with one mask per sequence.

use burn::module::{Module, Param};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Device, Int, Tensor, s};
use imdb_rng::SeededRng;
use serde::{Deserialize, Serialize};

use crate::init::{glorot_uniform, orthogonal, param1, param2};
use crate::ops::{fused_recurrent, fused_recurrent_lookup, has_fused_kernels};

pub use crate::kernels::recurrent::{CellKind, Direction, InferencePrecision, StateOutput};

/// How a layer's forward pass is computed. All give the same numbers (up to rounding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Implementation {
    /// One fused kernel per layer with a handwritten backward where the device has one (the
    /// CPU backends); the composed form elsewhere.
    #[default]
    Fused,
    /// Tensor operations step by step, differentiated by Burn's autodiff: works on every
    /// backend.
    Composed,
    /// Burn's own `nn::Lstm` (LSTM only, no masking or recurrent dropout), for comparison.
    Burn,
}

/// How a recurrent layer's biases start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GateBias {
    /// Keras' default: every bias 0 but an LSTM's forget gate, 1 (`unit_forget_bias`).
    #[default]
    Keras,
    /// Chrono initialization (Tallec & Ollivier, 2018) for dependencies up to this many steps
    /// (at least 3): per unit, `u` uniform in `[1, steps − 1]`; an LSTM's forget-gate bias is
    /// `ln u` and its input-gate bias `−ln u`, a GRU's update-gate bias (the gate that keeps
    /// the previous state) `ln u`, every other bias 0. A vanilla RNN has no gate: its biases
    /// stay 0 and nothing is drawn.
    Chrono(usize),
}

impl GateBias {
    /// The setting of [`ModelConfig::chrono_init`](crate::ModelConfig::chrono_init): 0 for
    /// Keras' biases.
    pub fn from_chrono_steps(steps: usize) -> Self {
        match steps {
            0 => GateBias::Keras,
            steps => GateBias::Chrono(steps),
        }
    }

    /// The bias of a `cell` layer with `hidden` units, `[bias_len]`; chrono draws one time
    /// scale per unit from `rng`.
    pub fn values(self, cell: CellKind, hidden: usize, rng: &mut SeededRng) -> Vec<f32> {
        let h = hidden;
        let mut bias = vec![0.0f32; cell.bias_len(h)];
        match (self, cell) {
            (GateBias::Keras, CellKind::Lstm) => bias[h..2 * h].fill(1.0),
            (GateBias::Keras, _) | (GateBias::Chrono(_), CellKind::Rnn) => {}
            (GateBias::Chrono(steps), cell) => {
                let span = steps.saturating_sub(2) as f32;
                for k in 0..h {
                    let scale = (1.0 + span * rng.next_f32()).ln();
                    if cell == CellKind::Lstm {
                        // Gates in the order input, forget, candidate, output.
                        bias[k] = -scale;
                        bias[h + k] = scale;
                    } else {
                        // GRU: update gate first; it weighs the previous state.
                        bias[k] = scale;
                    }
                }
            }
        }
        bias
    }
}

/// One direction of one recurrent layer.
#[derive(Module, Debug)]
pub struct RecurrentLayer {
    /// Input weights, `[input, gates·hidden]`.
    pub w_ih: Param<Tensor<2>>,
    /// Recurrent weights, `[hidden, gates·hidden]`.
    pub w_hh: Param<Tensor<2>>,
    /// Bias, `[bias_len]` (see [`CellKind::bias_len`]).
    pub bias: Param<Tensor<1>>,
    /// The cell.
    #[module(skip)]
    pub cell: CellKind,
    /// Hidden units.
    pub hidden: usize,
    /// The order it reads the sequence in ([`Direction::Reverse`]: the second half of a
    /// bidirectional layer).
    #[module(skip)]
    pub direction: Direction,
}

impl RecurrentLayer {
    /// A layer with Keras' initialization: Glorot-uniform input weights, orthogonal recurrent
    /// weights, and gate biases as `gate_bias` says.
    pub fn init(
        cell: CellKind,
        (input, hidden): (usize, usize),
        direction: Direction,
        gate_bias: GateBias,
        rng: &mut SeededRng,
        device: &Device,
    ) -> Self {
        let g = cell.gates() * hidden;
        let w_ih = glorot_uniform(rng, input, g);
        let w_hh = orthogonal(rng, hidden, g);
        let bias = gate_bias.values(cell, hidden, rng);
        Self {
            w_ih: param2(w_ih, [input, g], device),
            w_hh: param2(w_hh, [hidden, g], device),
            bias: param1(bias, device),
            cell,
            hidden,
            direction,
        }
    }

    /// Runs the layer over a batch.
    ///
    /// ## Parameters
    /// - `x`: `[batch, steps, input]`
    /// - `step_mask`: `[batch, steps]`, 1 for real tokens, 0 for padding (the state is carried
    ///   unchanged through padding)
    /// - `recurrent_mask`: `[batch, hidden]` multiplier of the previous hidden state
    ///   (recurrent dropout), or `None`
    /// - `implementation`: how the layer is computed
    /// - `precision`: how the fused kernel computes when nothing is differentiated
    ///
    /// ## Returns
    /// The hidden state after every step, `[batch, steps, hidden]`; the final state is at
    /// step `steps - 1` (or 0 when reading in reverse).
    pub fn forward(
        &self,
        x: Tensor<3>,
        step_mask: Tensor<2>,
        recurrent_mask: Option<Tensor<2>>,
        implementation: Implementation,
        precision: InferencePrecision,
    ) -> Tensor<3> {
        if implementation == Implementation::Fused && has_fused_kernels(&x.device()) {
            return self.forward_fused(
                x,
                step_mask,
                recurrent_mask,
                StateOutput::EveryStep,
                precision,
            );
        }
        if implementation == Implementation::Burn && self.cell == CellKind::Lstm {
            return self.forward_burn(x);
        }
        self.forward_composed(x, step_mask, recurrent_mask)
    }

    /// The state the layer ends in, `[batch, hidden]`: after its last step (its first when
    /// reading in reverse), which with masked padding is each review's last real token. Arguments as
    /// for [`forward`](Self::forward). The fused layer computes and differentiates nothing
    /// else; Burn's stock layer does not carry its state through padding, so its state is
    /// read at the last real token.
    pub fn final_state(
        &self,
        x: Tensor<3>,
        step_mask: Tensor<2>,
        recurrent_mask: Option<Tensor<2>>,
        implementation: Implementation,
        precision: InferencePrecision,
    ) -> Tensor<2> {
        let [batch, steps, _] = x.dims();
        let hidden = self.hidden;
        if implementation == Implementation::Fused && has_fused_kernels(&x.device()) {
            let last = self.forward_fused(
                x,
                step_mask,
                recurrent_mask,
                StateOutput::FinalOnly,
                precision,
            );
            return last.reshape([batch, hidden]);
        }
        let out = self.forward(
            x,
            step_mask.clone(),
            recurrent_mask,
            implementation,
            precision,
        );
        if implementation == Implementation::Burn && self.direction == Direction::Forward {
            // 1 at the last real step of each row: mask[t] - mask[t+1].
            let next = Tensor::cat(
                vec![
                    step_mask.clone().slice(s![.., 1..steps]),
                    Tensor::zeros([batch, 1], &step_mask.device()),
                ],
                1,
            );
            let last = (step_mask - next).reshape([batch, steps, 1]);
            return (out * last).sum_dim(1).reshape([batch, hidden]);
        }
        let t = self.direction.last_step(steps);
        out.slice(s![.., t..t + 1, ..]).reshape([batch, hidden])
    }

    /// The fused kernel: every step, or only the final state, `[batch, 1, hidden]`.
    fn forward_fused(
        &self,
        x: Tensor<3>,
        step_mask: Tensor<2>,
        recurrent_mask: Option<Tensor<2>>,
        output: StateOutput,
        precision: InferencePrecision,
    ) -> Tensor<3> {
        let [batch, _, _] = x.dims();
        let mask =
            recurrent_mask.unwrap_or_else(|| Tensor::ones([batch, self.hidden], &x.device()));
        fused_recurrent(
            x,
            self.w_ih.val(),
            self.w_hh.val(),
            self.bias.val(),
            step_mask,
            mask,
            (self.direction, output),
            self.cell,
            precision,
        )
    }

    /// The fused layer in inference, its input projections looked up per token from `table`
    /// (see [`projection_table`](Self::projection_table)) at `tokens`, `[batch, steps]`.
    /// Only on devices with fused kernels; no dropout, no gradients. With
    /// [`StateOutput::FinalOnly`] the output is only the final state, `[batch, 1, hidden]`.
    pub fn forward_lookup(
        &self,
        table: Tensor<2>,
        tokens: Tensor<2, Int>,
        step_mask: Tensor<2>,
        output: StateOutput,
        precision: InferencePrecision,
    ) -> Tensor<3> {
        fused_recurrent_lookup(
            table,
            tokens,
            (self.w_hh.val(), self.bias.val()),
            step_mask,
            (self.direction, output),
            self.cell,
            precision,
        )
    }

    /// The input projection of every word at once, `embedding · w_ih + input bias`:
    /// `[num_words, gates·hidden]`.
    pub fn projection_table(&self, embedding: Tensor<2>) -> Tensor<2> {
        let g = self.w_ih.dims()[1];
        let input_bias: Tensor<1> = self.bias.val().slice(s![0..g]);
        embedding.matmul(self.w_ih.val()) + input_bias.reshape([1, g])
    }

    /// The layer as plain tensor operations, one step at a time.
    pub fn forward_composed(
        &self,
        x: Tensor<3>,
        step_mask: Tensor<2>,
        recurrent_mask: Option<Tensor<2>>,
    ) -> Tensor<3> {
        let [batch, steps, _] = x.dims();
        let h = self.hidden;
        let device = x.device();
        let g = self.cell.gates() * h;
        let bias = self.bias.val();
        let input_bias = bias.clone().slice(s![0..g]);
        // Input projection of every step in one product.
        let projected = x.matmul(self.w_ih.val().unsqueeze::<3>()) + input_bias.reshape([1, 1, g]);
        let w_hh = self.w_hh.val();
        let mut state_h: Tensor<2> = Tensor::zeros([batch, h], &device);
        let mut state_c: Tensor<2> = Tensor::zeros([batch, h], &device);
        let mut outputs: Vec<Tensor<2>> = Vec::with_capacity(steps);
        let order = self.direction.order(steps);
        for &t in &order {
            let xp: Tensor<2> = projected
                .clone()
                .slice(s![.., t..t + 1, ..])
                .reshape([batch, g]);
            let hm = match &recurrent_mask {
                Some(m) => state_h.clone() * m.clone(),
                None => state_h.clone(),
            };
            let rec = hm.matmul(w_hh.clone());
            let (new_h, new_c) = match self.cell {
                CellKind::Lstm => {
                    let gates = xp + rec;
                    let i = sigmoid(gates.clone().slice(s![.., 0..h]));
                    let f = sigmoid(gates.clone().slice(s![.., h..2 * h]));
                    let c = gates.clone().slice(s![.., 2 * h..3 * h]).tanh();
                    let o = sigmoid(gates.slice(s![.., 3 * h..4 * h]));
                    let new_c = f * state_c.clone() + i * c;
                    (o * new_c.clone().tanh(), new_c)
                }
                CellKind::Gru => {
                    let rec = rec + bias.clone().slice(s![g..2 * g]).reshape([1, g]);
                    let z =
                        sigmoid(xp.clone().slice(s![.., 0..h]) + rec.clone().slice(s![.., 0..h]));
                    let r = sigmoid(
                        xp.clone().slice(s![.., h..2 * h]) + rec.clone().slice(s![.., h..2 * h]),
                    );
                    let candidate = (xp.slice(s![.., 2 * h..3 * h])
                        + r * rec.slice(s![.., 2 * h..3 * h]))
                    .tanh();
                    let new_h = z.clone() * state_h.clone() + (z.neg() + 1.0) * candidate;
                    (new_h, state_c.clone())
                }
                CellKind::Rnn => ((xp + rec).tanh(), state_c.clone()),
            };
            let m: Tensor<2> = step_mask.clone().slice(s![.., t..t + 1]);
            let keep = m.clone().neg() + 1.0;
            state_h = new_h * m.clone() + state_h * keep.clone();
            state_c = new_c * m + state_c * keep;
            outputs.push(state_h.clone());
        }
        if self.direction == Direction::Reverse {
            outputs.reverse();
        }
        Tensor::stack(outputs, 1)
    }

    /// Burn's stock `nn::Lstm` with this layer's weights (no masking, no recurrent dropout).
    pub fn forward_burn(&self, x: Tensor<3>) -> Tensor<3> {
        let lstm = self.to_burn_lstm();
        let (out, _) = lstm.forward(x, None);
        out
    }

    /// Burn's `nn::Lstm` holding this layer's weights, gate by gate (LSTM layers only).
    pub fn to_burn_lstm(&self) -> burn::nn::Lstm {
        use burn::nn::{GateController, Linear, LstmConfig};
        let h = self.hidden;
        let [input, _] = self.w_ih.dims();
        let device = self.w_ih.device();
        let mut lstm = LstmConfig::new(input, h, true)
            .with_reverse(self.direction == Direction::Reverse)
            .init(&device);
        let block = |k: usize| -> GateController {
            let w_x: Tensor<2> = self.w_ih.val().slice(s![.., k * h..(k + 1) * h]);
            let w_h: Tensor<2> = self.w_hh.val().slice(s![.., k * h..(k + 1) * h]);
            let b: Tensor<1> = self.bias.val().slice(s![k * h..(k + 1) * h]);
            let linear = |w: Tensor<2>, b: Option<Tensor<1>>| Linear {
                weight: Param::initialized(burn::module::ParamId::new(), w),
                bias: b.map(|b| Param::initialized(burn::module::ParamId::new(), b)),
            };
            GateController {
                input_transform: linear(w_x, Some(b)),
                hidden_transform: linear(w_h, None),
            }
        };
        lstm.input_gate = block(0);
        lstm.forget_gate = Some(block(1));
        lstm.cell_gate = block(2);
        lstm.output_gate = block(3);
        lstm
    }
}
