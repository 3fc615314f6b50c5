//! LayerNorm over the channel dimension.

pub const LN_EPS: f32 = 1e-5;

/// out (N,C) = (inp - mean) * rstd * weight + bias, keeping mean and rstd (N) for the backward pass.
#[allow(clippy::too_many_arguments)]
pub fn layernorm_forward(out: &mut [f32], mean: &mut [f32], rstd: &mut [f32], inp: &[f32], weight: &[f32], bias: &[f32], n: usize, c: usize) {
    for r in 0..n {
        let x = &inp[r * c..][..c];
        let m = x.iter().sum::<f32>() / c as f32;
        let var = x.iter().map(|v| (v - m) * (v - m)).sum::<f32>() / c as f32;
        let s = 1.0 / (var + LN_EPS).sqrt();
        let o = &mut out[r * c..][..c];
        for i in 0..c {
            o[i] = (x[i] - m) * s * weight[i] + bias[i];
        }
        mean[r] = m;
        rstd[r] = s;
    }
}

/// Accumulates dinp (N,C), dweight (C), dbias (C) from dout (N,C).
#[allow(clippy::too_many_arguments)]
pub fn layernorm_backward(
    dinp: &mut [f32],
    dweight: &mut [f32],
    dbias: &mut [f32],
    dout: &[f32],
    inp: &[f32],
    weight: &[f32],
    mean: &[f32],
    rstd: &[f32],
    n: usize,
    c: usize,
) {
    for r in 0..n {
        let x = &inp[r * c..][..c];
        let d = &dout[r * c..][..c];
        let (m, s) = (mean[r], rstd[r]);
        // two reductions: mean of dnorm and of dnorm * norm
        let mut dnorm_mean = 0.0;
        let mut dnorm_norm_mean = 0.0;
        for i in 0..c {
            let norm = (x[i] - m) * s;
            let dnorm = weight[i] * d[i];
            dnorm_mean += dnorm;
            dnorm_norm_mean += dnorm * norm;
        }
        dnorm_mean /= c as f32;
        dnorm_norm_mean /= c as f32;
        let di = &mut dinp[r * c..][..c];
        for i in 0..c {
            let norm = (x[i] - m) * s;
            let dnorm = weight[i] * d[i];
            dbias[i] += d[i];
            dweight[i] += norm * d[i];
            di[i] += (dnorm - dnorm_mean - norm * dnorm_norm_mean) * s;
        }
    }
}
