//! Recurrent layers and the Adam update on raw `f32` buffers, with no Burn types: the CPU fast
//! path behind the backend extensions in [`crate::ops`].

pub mod adam;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub mod gemm;
pub mod math;
pub mod recurrent;
