//! GELU, tanh form (as in GPT-2).

/// sqrt(2/π), shared with the WGSL kernels.
pub const GELU_SCALE: f32 = 0.797_884_6;

use super::expf::expf;

/// tanh through one exp, as the WGSL kernels compute it: several times faster than libm's tanhf
/// (the MLP applies it to every one of its 4C activations twice per step), and an exp the loops
/// vectorize. The clamp keeps exp finite; tanh is ±1 to f32 precision beyond it.
#[inline(always)]
fn tanh(x: f32) -> f32 {
    let e = expf(-2.0 * x.clamp(-15.0, 15.0));
    (1.0 - e) / (1.0 + e)
}

pub fn gelu_forward(out: &mut [f32], inp: &[f32]) {
    for (o, &x) in out.iter_mut().zip(inp) {
        let cube = 0.044715 * x * x * x;
        *o = 0.5 * x * (1.0 + tanh(GELU_SCALE * (x + cube)));
    }
}

/// dinp += gelu'(inp) · dout
pub fn gelu_backward(dinp: &mut [f32], inp: &[f32], dout: &[f32]) {
    for ((di, &x), &d) in dinp.iter_mut().zip(inp).zip(dout) {
        let cube = 0.044715 * x * x * x;
        let th = tanh(GELU_SCALE * (x + cube));
        let sech2 = 1.0 - th * th;
        let local = 0.5 * (1.0 + th) + x * 0.5 * sech2 * GELU_SCALE * (1.0 + 3.0 * 0.044715 * x * x);
        *di += local * d;
    }
}
