//! Recurrent layers on raw `f32` buffers, with no Burn types: the CPU fast path behind the
//! backend extension in [`crate::ops`].

pub mod adam;
pub mod gemm;
pub mod lstm;
pub mod math;
