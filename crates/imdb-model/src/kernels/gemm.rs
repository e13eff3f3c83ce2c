//! A safe front to the `gemm` crate for the large products of a recurrent layer.

use super::product;

/// How a matrix argument is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Row-major as given.
    Normal,
    /// Row-major storage of the transpose: the product uses the matrix transposed.
    Transposed,
}

/// `c = a · b` (or `c += a · b` when `accumulate`), with `a` logically `m × k`, `b` `k × n`
/// and `c` `m × n`, all row-major in storage; `Transposed` reads the stored matrix as its
/// transpose. Runs on rayon's threads when the product is large enough to gain from it and the
/// caller is not already one of them.
///
/// # Panics
///
/// If a slice is shorter than its shape needs: callers derive the shapes from the slices, so
/// this is a bug in the caller, never a consequence of user input.
#[allow(clippy::too_many_arguments)]
pub fn matmul(
    c: &mut [f32],
    a: &[f32],
    a_layout: Layout,
    b: &[f32],
    b_layout: Layout,
    m: usize,
    k: usize,
    n: usize,
    accumulate: bool,
) {
    // Strides in elements: (column stride, row stride) of the logical matrix.
    let a_strides = match a_layout {
        Layout::Normal => (1, k),
        Layout::Transposed => (m, 1),
    };
    strided(c, (a, a_strides), b, b_layout, (m, k, n), accumulate);
}

/// [`matmul`] with `a` row-major whose rows start `a_row_stride` elements apart: the rows of
/// one time step in a `[batch, steps, features]` buffer, without copying them out.
pub fn matmul_strided_rows(
    c: &mut [f32],
    a: &[f32],
    a_row_stride: usize,
    b: &[f32],
    b_layout: Layout,
    (m, k, n): (usize, usize, usize),
    accumulate: bool,
) {
    strided(
        c,
        (a, (1, a_row_stride)),
        b,
        b_layout,
        (m, k, n),
        accumulate,
    );
}

/// The product with `a` given by its (column, row) strides.
fn strided(
    c: &mut [f32],
    (a, (a_cs, a_rs)): (&[f32], (usize, usize)),
    b: &[f32],
    b_layout: Layout,
    (m, k, n): (usize, usize, usize),
    accumulate: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    let mn = product(&[m, n], "matmul");
    assert!(
        c.len() >= mn && b.len() >= product(&[k, n], "matmul"),
        "matmul shapes"
    );
    if k == 0 {
        if !accumulate {
            c[..mn].fill(0.0);
        }
        return;
    }
    let last = product(&[m - 1, a_rs], "matmul")
        .checked_add(product(&[k - 1, a_cs], "matmul"))
        .expect("matmul: the strides overflow usize");
    assert!(a.len() > last, "matmul shapes");
    let (b_cs, b_rs) = match b_layout {
        Layout::Normal => (1, n),
        Layout::Transposed => (k, 1),
    };
    let flops = 2 * m * n * k;
    // Inside a rayon task (a batch chunk) the other threads already have their own chunks.
    let parallelism = if flops >= 4_000_000 && rayon::current_thread_index().is_none() {
        gemm::Parallelism::Rayon(rayon::current_num_threads())
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the asserts above guarantee every index the strides reach is inside the slices;
    // `c` does not alias `a` or `b` (it is borrowed mutably).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.as_ptr(),
            a_cs as isize,
            a_rs as isize,
            b.as_ptr(),
            b_cs as isize,
            b_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    fn transpose(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
        let mut t = vec![0.0; x.len()];
        for r in 0..rows {
            for c in 0..cols {
                t[c * rows + r] = x[r * cols + c];
            }
        }
        t
    }

    #[test]
    fn all_layouts_match_naive() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| i as f32 * 0.5 - 3.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32).sin()).collect();
        let expected = naive(&a, &b, m, k, n);
        let (at, bt) = (transpose(&a, m, k), transpose(&b, k, n));
        for (aa, al, bb, bl) in [
            (&a, Layout::Normal, &b, Layout::Normal),
            (&at, Layout::Transposed, &b, Layout::Normal),
            (&a, Layout::Normal, &bt, Layout::Transposed),
            (&at, Layout::Transposed, &bt, Layout::Transposed),
        ] {
            let mut c = vec![1.0; m * n];
            matmul(&mut c, aa, al, bb, bl, m, k, n, false);
            for (x, y) in c.iter().zip(&expected) {
                assert!((x - y).abs() < 1e-4, "{al:?} {bl:?}");
            }
            matmul(&mut c, aa, al, bb, bl, m, k, n, true);
            for (x, y) in c.iter().zip(&expected) {
                assert!((x - 2.0 * y).abs() < 1e-4, "accumulate {al:?} {bl:?}");
            }
        }
    }

    #[test]
    fn strided_rows_read_every_other_row() {
        let (m, k, n) = (3, 4, 2);
        let a: Vec<f32> = (0..m * k).map(|i| i as f32 - 4.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32).cos()).collect();
        let expected = naive(&a, &b, m, k, n);
        // Interleave a zero row after each row of `a`.
        let mut spread = vec![0.0; 2 * m * k];
        for r in 0..m {
            spread[2 * r * k..(2 * r + 1) * k].copy_from_slice(&a[r * k..(r + 1) * k]);
        }
        let mut c = vec![0.0; m * n];
        matmul_strided_rows(&mut c, &spread, 2 * k, &b, Layout::Normal, (m, k, n), false);
        for (x, y) in c.iter().zip(&expected) {
            assert!((x - y).abs() < 1e-4);
        }
    }
}
