//! e^x for the layers' inner loops (GELU's tanh, the softmaxes of attention and cross-entropy).
//! Written out (Cephes' expf: x = n·ln2 + r, a degree-6 polynomial for e^r, 2^n from the exponent
//! bits) so that the compiler inlines it and vectorizes the loops around it: wasm has no exp
//! instruction, and the libm call it makes instead was 8% of the page's engine time (V8's profile
//! of an iteration on the demo model).

const LOG2E: f32 = std::f32::consts::LOG2_E;
// ln 2 split in two, so that n·LN2_HI is exact
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Adding and subtracting 1.5·2^23 rounds to the nearest integer, without a call.
const ROUND: f32 = 12_582_912.0;
/// Below it e^x is under f32's smallest normal (it gives 0: a denormal would slow every product
/// it enters); above it, near f32's largest value.
pub const EXP_MIN: f32 = -87.336_55;
pub const EXP_MAX: f32 = 88.0;

/// e^x within 2 ulp for EXP_MIN ≤ x ≤ EXP_MAX, 0 below, e^EXP_MAX above (every caller here takes
/// e^x of x ≤ 30); NaN stays NaN.
#[inline(always)]
pub fn expf(x: f32) -> f32 {
    let under = x < EXP_MIN;
    let x = x.clamp(EXP_MIN, EXP_MAX);
    // 1.5·2^23 + n: the integer n sits in the mantissa's low bits
    let shifted = x * LOG2E + ROUND;
    let n = shifted - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = ((((1.987_569_2e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 1.666_666_5e-1) * r + 0.5;
    let er = p * r * r + r + 1.0;
    // 2^n from those bits, as integers: `n as i32` (the same value) kept the loops around scalar,
    // a conversion per lane; this way GELU runs 1.4 times as fast, bit for bit the same
    let two_n = f32::from_bits(shifted.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127) << 23);
    if under {
        0.0
    } else {
        er * two_n
    }
}
