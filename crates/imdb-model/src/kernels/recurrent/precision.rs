//! What a forward pass is for, what inference may trade for speed, and which fast kernels
//! it takes on this CPU.

use super::CellKind;

/// How a forward pass without a tape (inference) computes. The caller chooses (e.g. on
/// [`crate::Predictor`]); nothing in this crate reads the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InferencePrecision {
    /// Split-bf16 AMX products and the fused AVX-512 LSTM step where the CPU has them: within
    /// about 1e-5 of f32, and faster.
    #[default]
    Fast,
    /// Exactly the arithmetic of the forward pass with a tape (f32 throughout).
    F32,
}

/// What a forward pass is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Keep the tape for [`super::recurrent_backward`]; f32 throughout.
    Training,
    /// Keep nothing, computing at the precision given.
    Inference(InferencePrecision),
}

/// The fast kernels a pass takes on this CPU for one layer: the forward pass asks this very
/// function, so what it reports is what runs (tests print it, so a run on a CPU without a
/// kernel says so instead of passing without it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InferenceKernels {
    /// The LSTM's gates and state update in one AVX-512 pass (LSTM layers of a multiple of
    /// 16 units, on a CPU with AVX-512F and DQ).
    pub fused_lstm_step: bool,
    /// The recurrent product in split bf16 on AMX tiles (a multiple of 16 gate columns, on a
    /// CPU with AMX-BF16 that Linux lets this process use).
    pub amx_product: bool,
}

impl InferenceKernels {
    /// What a pass of `cell` with `hidden` units takes; only [`InferencePrecision::Fast`]
    /// inference takes either kernel.
    pub fn select(cell: CellKind, hidden: usize, pass: Pass) -> Self {
        if pass != Pass::Inference(InferencePrecision::Fast) {
            return Self {
                fused_lstm_step: false,
                amx_product: false,
            };
        }
        Self {
            fused_lstm_step: cell == CellKind::Lstm && super::cells::lstm_inference_usable(hidden),
            amx_product: super::super::amx::supports(cell.gates() * hidden),
        }
    }
}

impl std::fmt::Display for InferenceKernels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let yes_no = |taken: bool| if taken { "yes" } else { "no" };
        write!(
            f,
            "fused AVX-512 LSTM step: {}; AMX split-bf16 product: {} (CPU: AVX-512 {}, AMX {})",
            yes_no(self.fused_lstm_step),
            yes_no(self.amx_product),
            yes_no(cpu_has_avx512()),
            yes_no(super::super::amx::available()),
        )
    }
}

/// Whether this CPU has the AVX-512 subsets the hand-written loops use.
fn cpu_has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512dq");
    #[cfg(not(target_arch = "x86_64"))]
    false
}
