//! Vectorizable elementwise math and the small matrix products of one recurrent step.
//!
//! `f32::exp` is a library call the compiler cannot vectorize; the gate nonlinearities of a
//! recurrent layer are millions of calls per batch, so they use the branch-free polynomial
//! [`exp`] below, which the compiler turns into SIMD code. Hot loops are compiled several times
//! (AVX-512, AVX2+FMA, portable) and the best one for the running CPU is chosen at run time, so
//! the binary stays portable.

/// Runs `$body` (a block using the given arguments) compiled for the best instruction set the
/// running CPU has. The body must be written so that the compiler can vectorize it.
macro_rules! dispatch_simd {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body

            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
                fn avx512($($arg: $ty),*) { body($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) { body($($arg),*) }

                if std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512vl")
                {
                    // SAFETY: the features were detected on the running CPU just above.
                    return unsafe { avx512($($arg),*) };
                }
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: as above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}
pub(crate) use dispatch_simd;

/// `e^x` within about 2 ulp for `|x| < 87`; saturates to 0 below and to `e^87` above (finite).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let x = x.clamp(-87.0, 87.0);
    let n = (x.mul_add(LOG2E, 0.5)).floor();
    let r = n.mul_add(-LN2_LO, n.mul_add(-LN2_HI, x));
    // Minimax polynomial for e^r on [-ln2/2, ln2/2] (Cephes expf).
    let mut p = 1.987_569_1e-4f32;
    p = p.mul_add(r, 1.398_2e-3);
    p = p.mul_add(r, 8.333_452e-3);
    p = p.mul_add(r, 4.166_579_6e-2);
    p = p.mul_add(r, 1.666_666_5e-1);
    p = p.mul_add(r, 5e-1);
    let er = (p * r).mul_add(r, r) + 1.0;
    // 2^n from the bits: adding 1.5·2^23 leaves n as an integer in the low mantissa bits. A
    // float-to-int cast would be saturating, which the compiler cannot vectorize.
    let shifted = (n + 12_582_912.0).to_bits() as i32;
    let exponent = shifted.wrapping_sub(0x4B40_0000).wrapping_add(127);
    er * f32::from_bits((exponent << 23) as u32)
}

/// `x`, or 0 if `x` is subnormal.
///
/// Arithmetic on subnormal numbers is up to a hundred times slower on x86 (microcode assists).
/// Gradients through saturated gates and slowly decaying cell states drift into that range
/// during training and then slow every matrix product they enter, so the kernels flush them
/// to zero, as TensorFlow does for the whole process with the CPU's flush-to-zero mode.
#[inline(always)]
pub fn flush(x: f32) -> f32 {
    if x.abs() < f32::MIN_POSITIVE { 0.0 } else { x }
}

/// `1 / x` within about 1e-7 relative for positive normal `x` below `2^126`, without a
/// division.
///
/// A vector division is the slowest instruction of the gate nonlinearities (one per sigmoid or
/// tanh, several times the cost of a fused multiply-add); this starts from an estimate read off
/// the bits (within 12%) and refines it with three Newton steps, each squaring the error.
#[inline(always)]
pub fn recip(x: f32) -> f32 {
    let mut y = f32::from_bits(0x7EF3_11C3u32.wrapping_sub(x.to_bits()));
    for _ in 0..3 {
        y *= (-x).mul_add(y, 2.0);
    }
    y
}

/// The logistic function `1 / (1 + e^-x)`.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    recip(1.0 + exp(-x))
}

/// The hyperbolic tangent, as `1 - 2 / (e^2x + 1)`, exact to about 1e-7 absolute.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    (-2.0f32).mul_add(recip(exp(2.0 * x) + 1.0), 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_accurate() {
        let mut worst = 0.0f32;
        let mut x = -80.0f32;
        while x < 80.0 {
            let rel = (exp(x) - x.exp()).abs() / x.exp();
            worst = worst.max(rel);
            x += 0.0137;
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
        assert!((0.0..1e-37).contains(&exp(-1000.0)));
        assert!(exp(1000.0).is_finite());
    }

    #[test]
    fn recip_is_accurate_over_the_range_it_serves() {
        // The arguments the nonlinearities pass: 1 + e^x for every x exp can return.
        let mut worst = 0.0f64;
        let mut x = 1.0f32;
        while x < 6.1e37 {
            let rel = ((recip(x) as f64) * (x as f64) - 1.0).abs();
            worst = worst.max(rel);
            x *= 1.000_73;
        }
        assert!(worst < 3e-7, "worst relative error {worst}");
    }

    #[test]
    fn flush_zeroes_subnormals_only() {
        assert_eq!(flush(1e-40), 0.0);
        assert_eq!(flush(-1e-39), 0.0);
        assert_eq!(flush(f32::MIN_POSITIVE), f32::MIN_POSITIVE);
        assert_eq!(flush(-2.5), -2.5);
        assert!(flush(f32::NAN).is_nan());
    }

    #[test]
    fn sigmoid_and_tanh_are_accurate() {
        let mut x = -30.0f32;
        while x < 30.0 {
            let s = 1.0 / (1.0 + (-x).exp());
            assert!((sigmoid(x) - s).abs() < 1e-6, "sigmoid({x})");
            assert!(
                (tanh(x) - x.tanh()).abs() < 2e-6,
                "tanh({x}) {} {}",
                tanh(x),
                x.tanh()
            );
            x += 0.011;
        }
    }
}
