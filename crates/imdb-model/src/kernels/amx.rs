//! The recurrent product of inference on AMX tiles (Intel's Advanced Matrix Extensions, Xeon
//! Sapphire Rapids and later), in split bf16.
//!
//! AMX multiplies bf16 matrices with f32 accumulation at about 16 times the rate of AVX-512 f32
//! arithmetic, but one bf16 number keeps only 8 significant bits. So each f32 operand is written
//! as the sum of two bf16 numbers, `x ≈ hi + lo` (16 significant bits), and
//! `a·b ≈ hi_a·hi_b + hi_a·lo_b + lo_a·hi_b` (the dropped `lo_a·lo_b` is below 2^-18 of the
//! product): three bf16 products that the tile unit sums in f32 as one product with an inner
//! dimension three times as long. Each term is within about 1e-5 of its f32 value, and the sum is
//! accumulated in f32, so results agree with an f32 product to about 1e-5 relative (tested
//! below) while taking a fraction of its time.
//!
//! The tile instructions are written in inline assembly: Rust's AMX intrinsics are not stable.
//! Linux hands out the tile registers only to processes that ask ([`available`] does, once).

use super::product;
#[cfg(target_arch = "x86_64")]
use std::arch::asm;
use std::sync::OnceLock;

/// Rows of a tile.
const TILE_ROWS: usize = 16;
/// Bytes of a tile row: 32 bf16 values of an `a` row, 16 bf16 pairs of `b`, or 16 f32 of `c`.
const TILE_ROW_BYTES: usize = 64;
/// Inner-dimension values one tile product consumes.
const K_BLOCK: usize = 32;
/// Output columns of one tile.
const N_BLOCK: usize = 16;
/// Output rows of one block of four result tiles (two tiles of `a` rows).
const M_BLOCK: usize = 2 * TILE_ROWS;
/// Split bf16 values in one tile of `b`.
const B_TILE_LEN: usize = TILE_ROWS * K_BLOCK;

/// Whether this CPU has AMX with bf16 products and the operating system lets this process use
/// the tile registers. Asks Linux for them on the first call.
pub fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| cpu_has_amx_bf16() && request_tile_registers())
}

/// Whether [`SplitRhs`] products of a `k × n` right-hand side can run here: AMX is
/// [`available`] and `n` is a whole number of tiles.
pub fn supports(n: usize) -> bool {
    n > 0 && n.is_multiple_of(N_BLOCK) && available()
}

#[cfg(target_arch = "x86_64")]
fn cpu_has_amx_bf16() -> bool {
    use std::arch::x86_64::{__cpuid_count, __get_cpuid_max};
    // SAFETY: CPUID exists on every x86-64 CPU; leaf 7 is read only if the CPU reports it.
    #[allow(unused_unsafe)]
    let leaf7 = unsafe {
        if __get_cpuid_max(0).0 < 7 {
            return false;
        }
        __cpuid_count(7, 0)
    };
    const AMX_BF16: u32 = 1 << 22;
    const AMX_TILE: u32 = 1 << 24;
    leaf7.edx & AMX_BF16 != 0 && leaf7.edx & AMX_TILE != 0
}

#[cfg(not(target_arch = "x86_64"))]
fn cpu_has_amx_bf16() -> bool {
    false
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn request_tile_registers() -> bool {
    // From the kernel's uapi headers (asm/prctl.h, asm/fpu/xstate.h).
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // SAFETY: this request only changes which register state the kernel saves for the process.
    unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_REQ_XCOMP_PERM,
            XFEATURE_XTILEDATA,
        ) == 0
    }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn request_tile_registers() -> bool {
    false
}

/// `x` rounded to the nearest bf16 (ties to even), as its bits.
#[inline(always)]
fn bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    (bits.wrapping_add(0x7FFF + ((bits >> 16) & 1)) >> 16) as u16
}

/// The f32 value of bf16 bits.
#[inline(always)]
fn widen(v: u16) -> f32 {
    f32::from_bits((v as u32) << 16)
}

/// `x` as `hi + lo`, both bf16.
#[inline(always)]
fn split(x: f32) -> (u16, u16) {
    let hi = bf16(x);
    (hi, bf16(x - widen(hi)))
}

/// The inner dimension of the split product: `[hi | hi | lo]` of `a` against `[hi; lo; hi]` of
/// `b`, rounded up to whole tiles (the padding is zero).
fn split_depth(k: usize) -> usize {
    (3 * k).next_multiple_of(K_BLOCK)
}

/// A right-hand side `b` (`k × n`, row-major f32) split and laid out tile by tile, built once
/// per layer call and reused at every time step.
#[derive(Debug, Clone)]
pub struct SplitRhs {
    /// Tile `(kb, nb)` starts at `(nb · k_blocks + kb) · B_TILE_LEN`; its row `p` holds, for
    /// each of its 16 columns, the pair of rows `2p, 2p + 1` of its inner-dimension block (the
    /// pairwise layout the bf16 tile product reads).
    tiles: Vec<u16>,
    k: usize,
    n: usize,
}

impl SplitRhs {
    /// Splits `b`, `k × n` row-major.
    ///
    /// # Panics
    ///
    /// If `b` is shorter than `k · n` or `n` is not a multiple of 16 (see [`supports`]).
    pub fn new(b: &[f32], k: usize, n: usize) -> Self {
        assert!(b.len() >= product(&[k, n], "split rhs"), "split rhs shape");
        assert!(n.is_multiple_of(N_BLOCK), "split rhs columns");
        let depth = split_depth(k);
        let (k_blocks, n_blocks) = (depth / K_BLOCK, n / N_BLOCK);
        let mut tiles = vec![0u16; k_blocks * n_blocks * B_TILE_LEN];
        for kk in 0..depth.min(3 * k) {
            let (segment, row) = (kk / k, kk % k);
            let (kb, p, e) = (kk / K_BLOCK, (kk % K_BLOCK) / 2, kk % 2);
            for j in 0..n {
                let (hi, lo) = split(b[row * n + j]);
                let v = if segment == 1 { lo } else { hi };
                let (nb, col) = (j / N_BLOCK, j % N_BLOCK);
                tiles[(nb * k_blocks + kb) * B_TILE_LEN + p * K_BLOCK + col * 2 + e] = v;
            }
        }
        Self { tiles, k, n }
    }
}

/// A left-hand side (`m × k`) split into `[hi | hi | lo]` rows, with its rows padded to whole
/// blocks (zero, as is every row until it is filled); refilled at every time step.
#[derive(Debug, Clone)]
pub struct SplitLhs {
    values: Vec<u16>,
    m: usize,
    k: usize,
}

impl SplitLhs {
    /// Room for `m × k`.
    pub fn new(m: usize, k: usize) -> Self {
        Self {
            values: vec![0; padded_rows(m) * split_depth(k)],
            m,
            k,
        }
    }

    /// Rows the product writes: `m` rounded up to a whole block. The output buffer must hold
    /// this many rows; those past `m` are left zero.
    pub fn padded_rows(&self) -> usize {
        padded_rows(self.m)
    }

    /// Splits `a`, `m × k` row-major.
    ///
    /// # Panics
    ///
    /// If `a` is shorter than `m · k`.
    pub fn fill(&mut self, a: &[f32]) {
        let (m, k) = (self.m, self.k);
        assert!(a.len() >= product(&[m, k], "split lhs"), "split lhs shape");
        let depth = split_depth(k);
        if k == 0 {
            return;
        }
        for (row, out) in a[..m * k]
            .chunks_exact(k)
            .zip(self.values.chunks_exact_mut(depth))
        {
            split_row(row, out);
        }
    }

    /// Splits `row` into row `i` (`row.len()` must be `k`, `i` below `m`), leaving the others.
    ///
    /// # Panics
    ///
    /// If `i` or `row.len()` is out of shape.
    pub fn fill_row(&mut self, i: usize, row: &[f32]) {
        assert!(row.len() == self.k, "split lhs row shape");
        split_row(row, self.row_mut(i));
    }

    /// Row `i` as stored, for a caller that splits as it computes: `[hi | hi | lo]` of its `k`
    /// values, as [`split_row`] writes them, then zero padding.
    ///
    /// # Panics
    ///
    /// If `i` is not below `m`.
    pub fn row_mut(&mut self, i: usize) -> &mut [u16] {
        assert!(i < self.m, "split lhs row");
        let depth = split_depth(self.k);
        &mut self.values[i * depth..(i + 1) * depth]
    }
}

fn padded_rows(m: usize) -> usize {
    m.next_multiple_of(M_BLOCK)
}

super::math::dispatch_simd! {
    /// `out[..3k] = [hi | hi | lo]` of `row` (the padding past `3k` stays zero), each value
    /// rounded to the nearest bf16, ties to even.
    pub fn split_row(row: &[f32], out: &mut [u16]) {
        let k = row.len();
        let (his, rest) = out.split_at_mut(k);
        let (his2, los) = rest.split_at_mut(k);
        for (((&x, hi), hi2), lo) in row.iter().zip(his).zip(&mut his2[..k]).zip(&mut los[..k]) {
            let (h, l) = split(x);
            *hi = h;
            *hi2 = h;
            *lo = l;
        }
    }
}

/// `c = a · b` for the whole padded block of rows of `a`: `c` is `a.padded_rows()` rows of
/// `b`'s `n` columns, row-major.
///
/// # Panics
///
/// If the inner dimensions differ, `c` is too short, or AMX is not [`available`].
pub fn matmul(c: &mut [f32], a: &SplitLhs, b: &SplitRhs) {
    assert_eq!(a.k, b.k, "split product inner dimensions");
    let (rows, n) = (a.padded_rows(), b.n);
    assert!(
        c.len() >= product(&[rows, n], "split product"),
        "split product output shape"
    );
    assert!(available(), "AMX is not available on this CPU");
    // SAFETY: the tile unit is available and enabled for this process (asserted). Every tile
    // the loops load or store lies inside its buffer: `a` holds `rows × depth` values and
    // `rows` is a whole number of 32-row blocks; `b` holds `k_blocks × n_blocks` tiles; `c`
    // holds `rows × n` values (asserted) and `n` is a whole number of 16-column tiles.
    unsafe { tile_product(c, &a.values, &b.tiles, rows, split_depth(a.k), n) }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn tile_product(_: &mut [f32], _: &[u16], _: &[u16], _: usize, _: usize, _: usize) {
    unreachable!("AMX is never available off x86-64");
}

/// The tile configuration (palette 1): all eight tiles 16 rows of 64 bytes.
#[cfg(target_arch = "x86_64")]
#[repr(C, align(64))]
struct TileConfig([u8; 64]);

#[cfg(target_arch = "x86_64")]
impl TileConfig {
    fn uniform() -> Self {
        let mut cfg = [0u8; 64];
        cfg[0] = 1;
        for t in 0..8 {
            cfg[16 + 2 * t..18 + 2 * t].copy_from_slice(&(TILE_ROW_BYTES as u16).to_le_bytes());
            cfg[48 + t] = TILE_ROWS as u8;
        }
        Self(cfg)
    }
}

/// Tiles 0–3 accumulate a 32 × 32 block of `c` (0, 1 the upper rows, 2, 3 the lower; 0, 2 the
/// left columns); 4, 5 hold the upper and lower rows of `a`, 6, 7 the left and right columns of
/// `b`, one inner block at a time. A last single 16-column block uses tiles 0, 2, 4, 5, 6.
#[cfg(target_arch = "x86_64")]
unsafe fn tile_product(c: &mut [f32], a: &[u16], b: &[u16], rows: usize, depth: usize, n: usize) {
    let (k_blocks, n_blocks) = (depth / K_BLOCK, n / N_BLOCK);
    let a_stride = depth * 2;
    let c_stride = n * 4;
    let tile = TILE_ROW_BYTES;
    let cfg = TileConfig::uniform();
    // SAFETY (whole function): see `matmul`; offsets are computed from the same shapes.
    unsafe {
        asm!("ldtilecfg [{}]", in(reg) cfg.0.as_ptr(), options(nostack, readonly));
        for m0 in (0..rows).step_by(M_BLOCK) {
            for nb in (0..n_blocks).step_by(2) {
                let both = nb + 1 < n_blocks;
                asm!(
                    "tilezero tmm0",
                    "tilezero tmm1",
                    "tilezero tmm2",
                    "tilezero tmm3",
                    options(nostack, nomem)
                );
                for kb in 0..k_blocks {
                    let a_up = a.as_ptr().add(m0 * depth + kb * K_BLOCK);
                    let a_down = a_up.add(TILE_ROWS * depth);
                    let b_left = b.as_ptr().add((nb * k_blocks + kb) * B_TILE_LEN);
                    asm!(
                        "tileloadd tmm4, [{a_up} + {a_stride}*1]",
                        "tileloadd tmm5, [{a_down} + {a_stride}*1]",
                        "tileloadd tmm6, [{b_left} + {tile}*1]",
                        "tdpbf16ps tmm0, tmm4, tmm6",
                        "tdpbf16ps tmm2, tmm5, tmm6",
                        a_up = in(reg) a_up,
                        a_down = in(reg) a_down,
                        b_left = in(reg) b_left,
                        a_stride = in(reg) a_stride,
                        tile = in(reg) tile,
                        options(nostack, readonly)
                    );
                    if both {
                        let b_right = b_left.add(k_blocks * B_TILE_LEN);
                        asm!(
                            "tileloadd tmm7, [{b_right} + {tile}*1]",
                            "tdpbf16ps tmm1, tmm4, tmm7",
                            "tdpbf16ps tmm3, tmm5, tmm7",
                            b_right = in(reg) b_right,
                            tile = in(reg) tile,
                            options(nostack, readonly)
                        );
                    }
                }
                let c_up = c.as_mut_ptr().add(m0 * n + nb * N_BLOCK);
                let c_down = c_up.add(TILE_ROWS * n);
                asm!(
                    "tilestored [{c_up} + {c_stride}*1], tmm0",
                    "tilestored [{c_down} + {c_stride}*1], tmm2",
                    c_up = in(reg) c_up,
                    c_down = in(reg) c_down,
                    c_stride = in(reg) c_stride,
                    options(nostack)
                );
                if both {
                    asm!(
                        "tilestored [{c_up} + {c_stride}*1], tmm1",
                        "tilestored [{c_down} + {c_stride}*1], tmm3",
                        c_up = in(reg) c_up.add(N_BLOCK),
                        c_down = in(reg) c_down.add(N_BLOCK),
                        c_stride = in(reg) c_stride,
                        options(nostack)
                    );
                }
            }
        }
        // Hands the tile state back, so that context switches stop saving it.
        asm!("tilerelease", options(nostack, nomem));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_sixteen_bits() {
        for x in [1.0f32, -0.3, 0.123_456_79, 3.0e-3, -7.5e4, 1.0 / 3.0] {
            let (hi, lo) = split(x);
            let back = widen(hi) + widen(lo);
            assert!((back - x).abs() <= x.abs() * 2f32.powi(-17), "{x} {back}");
        }
        assert_eq!(bf16(1.0), 0x3F80);
        // Ties go to the even neighbour.
        assert_eq!(bf16(f32::from_bits(0x3F80_8000)), 0x3F80);
        assert_eq!(bf16(f32::from_bits(0x3F81_8000)), 0x3F82);
    }

    /// The product against f64 for shapes that cover partial blocks: rows not a multiple of
    /// 32, an inner dimension not a multiple of 32 / 3, a last single column tile.
    #[test]
    fn split_product_agrees_with_f32() {
        if !available() {
            eprintln!("no AMX on this CPU (or not granted): the split product cannot run here");
            return;
        }
        for (m, k, n) in [(37, 64, 256), (5, 16, 48), (64, 32, 16), (33, 7, 32)] {
            let a: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
                .collect();
            let b: Vec<f32> = (0..k * n)
                .map(|i| ((i * 104_729) % 997) as f32 / 800.0 - 0.6)
                .collect();
            let (mut lhs, rhs) = (SplitLhs::new(m, k), SplitRhs::new(&b, k, n));
            lhs.fill(&a);
            let mut by_rows = SplitLhs::new(m, k);
            for (i, row) in a.chunks_exact(k).enumerate().rev() {
                by_rows.fill_row(i, row);
            }
            assert_eq!(by_rows.values, lhs.values, "row by row");
            let mut c = vec![f32::NAN; lhs.padded_rows() * n];
            matmul(&mut c, &lhs, &rhs);
            for i in 0..lhs.padded_rows() {
                for j in 0..n {
                    let got = c[i * n + j] as f64;
                    if i >= m {
                        assert_eq!(got, 0.0, "padding row {i}");
                        continue;
                    }
                    let (exact, size) = (0..k).fold((0.0f64, 0.0f64), |(s, z), p| {
                        let t = a[i * k + p] as f64 * b[p * n + j] as f64;
                        (s + t, z + t.abs())
                    });
                    assert!(
                        (got - exact).abs() <= 2e-5 * size.max(1e-3),
                        "{m}×{k}×{n} [{i},{j}]: {got} vs {exact}"
                    );
                }
            }
        }
    }
}
