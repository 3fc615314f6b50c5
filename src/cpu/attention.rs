//! Causal multi-head self-attention over a fused qkv input, written as the matrix products of the
//! paper (scores q·kᵀ, weights times v) so the CPU's matrix kernel does the work.

use super::expf::expf;
use super::matmul::{gemm_scaled, gemm_strided};

/// inp (B,T,3C) holds q, k, v; writes preatt and att (B,NH,T,T) and out (B,T,C). Per (b, head):
/// preatt = q·kᵀ/√hs, att = softmax over the past (the future masked to 0), out = att·v.
#[allow(clippy::too_many_arguments)]
pub fn attention_forward(out: &mut [f32], preatt: &mut [f32], att: &mut [f32], inp: &[f32], b: usize, t: usize, c: usize, nh: usize) {
    let hs = c / nh;
    let scale = 1.0 / (hs as f32).sqrt();
    let c3 = 3 * c;
    for bi in 0..b {
        for h in 0..nh {
            let x = &inp[bi * t * c3..][..t * c3];
            let (q, k, v) = (&x[h * hs..], &x[c + h * hs..], &x[2 * c + h * hs..]);
            let m = ((bi * nh + h) * t * t)..((bi * nh + h + 1) * t * t);
            let (pre, a) = (&mut preatt[m.clone()], &mut att[m]);
            // (T,T) = q (T,hs) · kᵀ (hs,T) / √hs; every row's scores, the future's masked below
            gemm_scaled(t, hs, t, scale, (q, c3, 1), (k, 1, c3), 0.0, (&mut *pre, t));
            for ti in 0..t {
                let (p, w) = (&mut pre[ti * t..][..t], &mut a[ti * t..][..t]);
                let maxval = p[..=ti].iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0.0;
                for t2 in 0..=ti {
                    w[t2] = expf(p[t2] - maxval);
                    sum += w[t2];
                }
                w[..=ti].iter_mut().for_each(|x| *x /= sum);
                // the future is masked: zero weight
                w[ti + 1..].fill(0.0);
                p[ti + 1..].fill(0.0);
            }
            // out (T,hs) = att (T,T) · v (T,hs)
            gemm_strided(t, t, hs, (a, t, 1), (v, c3, 1), 0.0, (&mut out[bi * t * c + h * hs..], c));
        }
    }
}

/// Accumulates dinp (B,T,3C) from dout (B,T,C); datt and dpreatt (B,NH,T,T) are scratch.
#[allow(clippy::too_many_arguments)]
pub fn attention_backward(
    dinp: &mut [f32],
    dpreatt: &mut [f32],
    datt: &mut [f32],
    dout: &[f32],
    inp: &[f32],
    att: &[f32],
    b: usize,
    t: usize,
    c: usize,
    nh: usize,
) {
    let hs = c / nh;
    let scale = 1.0 / (hs as f32).sqrt();
    let c3 = 3 * c;
    for bi in 0..b {
        for h in 0..nh {
            let x = &inp[bi * t * c3..][..t * c3];
            let (q, k, v) = (&x[h * hs..], &x[c + h * hs..], &x[2 * c + h * hs..]);
            let m = ((bi * nh + h) * t * t)..((bi * nh + h + 1) * t * t);
            let (a, da, dp) = (&att[m.clone()], &mut datt[m.clone()], &mut dpreatt[m]);
            let d = &dout[bi * t * c + h * hs..];
            let dx = &mut dinp[bi * t * c3..][..t * c3];
            // out = att·v: datt (T,T) = dout·vᵀ, dv += attᵀ·dout
            gemm_strided(t, hs, t, (d, c, 1), (v, 1, c3), 0.0, (&mut *da, t));
            gemm_strided(t, t, hs, (a, 1, t), (d, c, 1), 1.0, (&mut dx[2 * c + h * hs..], c3));
            // softmax: dpre = att ⊙ (datt − Σ att·datt), row by row (zero in the masked future)
            for ti in 0..t {
                let (w, g) = (&a[ti * t..][..t], &da[ti * t..][..t]);
                let dot: f32 = w.iter().zip(g).map(|(x, y)| x * y).sum();
                for ((o, &x), &y) in dp[ti * t..][..t].iter_mut().zip(w).zip(g) {
                    *o = x * (y - dot);
                }
            }
            // pre = q·kᵀ/√hs: dq += dpre·k/√hs, dk += dpreᵀ·q/√hs
            gemm_scaled(t, t, hs, scale, (dp, t, 1), (k, c3, 1), 1.0, (&mut dx[h * hs..], c3));
            gemm_scaled(t, t, hs, scale, (dp, 1, t), (q, c3, 1), 1.0, (&mut dx[c + h * hs..], c3));
        }
    }
}

/// One new position per slot against a key-value cache: out (R,C) from each slot's query (slot i at
/// q[i·q_rs..]) and the cached keys and values kc, vc (rows,T,C), slot i = (row, pos) attending to
/// its row's positions 0..=pos.
#[allow(clippy::too_many_arguments)]
pub fn attention_decode(out: &mut [f32], q: &[f32], q_rs: usize, kc: &[f32], vc: &[f32], slots: &[(usize, usize)], t: usize, c: usize, nh: usize) {
    let hs = c / nh;
    let scale = 1.0 / (hs as f32).sqrt();
    let mut w = Vec::new();
    for (ri, &(row, pos)) in slots.iter().enumerate() {
        w.resize(pos + 1, 0.0f32);
        for h in 0..nh {
            let qh = &q[ri * q_rs + h * hs..][..hs];
            let mut maxval = f32::NEG_INFINITY;
            for (t2, wt) in w.iter_mut().enumerate() {
                let k = &kc[(row * t + t2) * c + h * hs..][..hs];
                *wt = qh.iter().zip(k).map(|(a, b)| a * b).sum::<f32>() * scale;
                maxval = maxval.max(*wt);
            }
            let mut sum = 0.0;
            for wt in w.iter_mut() {
                *wt = expf(*wt - maxval);
                sum += *wt;
            }
            let o = &mut out[ri * c + h * hs..][..hs];
            o.fill(0.0);
            for (t2, wt) in w.iter().enumerate() {
                let v = &vc[(row * t + t2) * c + h * hs..][..hs];
                let a = wt / sum;
                for i in 0..hs {
                    o[i] += a * v[i];
                }
            }
        }
    }
}
