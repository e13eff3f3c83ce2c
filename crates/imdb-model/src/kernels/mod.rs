//! Recurrent layers, the embedding lookup and the Adam update on raw `f32` buffers, with no
//! Burn types: the CPU fast path behind the backend extensions in [`crate::ops`].

pub mod adam;
pub mod amx;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub mod embedding;
pub mod gemm;
pub mod math;
pub mod recurrent;

use std::mem::MaybeUninit;

use rayon::prelude::*;

/// `n` zeros, written by every core: a buffer of megabytes zeroed by one thread (the
/// caller's) would leave the others idle.
pub(crate) fn zeroed(n: usize) -> Vec<f32> {
    const CHUNK: usize = 1 << 16;
    let mut v = Vec::with_capacity(n);
    v.spare_capacity_mut()[..n]
        .par_chunks_mut(CHUNK)
        .for_each(|c| c.fill(MaybeUninit::new(0.0)));
    // SAFETY: the first `n` elements were all initialised just above.
    unsafe { v.set_len(n) };
    v
}

/// The product of `sizes`, or a panic naming `what` when it overflows `usize`: a wrapped
/// product (release builds do not check) could pass a shape check and let a loop that trusts
/// it read outside its buffers.
pub(crate) fn product(sizes: &[usize], what: &str) -> usize {
    sizes
        .iter()
        .try_fold(1usize, |acc, &s| acc.checked_mul(s))
        .unwrap_or_else(|| panic!("{what}: the sizes {sizes:?} overflow usize"))
}
