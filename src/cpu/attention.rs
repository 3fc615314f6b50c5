//! Causal multi-head self-attention over a fused qkv input.

/// inp (B,T,3C) holds q, k, v; writes preatt and att (B,NH,T,T) and out (B,T,C).
#[allow(clippy::too_many_arguments)]
pub fn attention_forward(
    out: &mut [f32], preatt: &mut [f32], att: &mut [f32],
    inp: &[f32], b: usize, t: usize, c: usize, nh: usize,
) {
    let hs = c / nh;
    let scale = 1.0 / (hs as f32).sqrt();
    let c3 = 3 * c;
    for bi in 0..b {
        for ti in 0..t {
            for h in 0..nh {
                let q = &inp[(bi * t + ti) * c3 + h * hs..][..hs];
                let row = ((bi * nh + h) * t + ti) * t;
                // scores q·k over the past, and their max for a stable softmax
                let mut maxval = f32::NEG_INFINITY;
                for t2 in 0..=ti {
                    let k = &inp[(bi * t + t2) * c3 + c + h * hs..][..hs];
                    let s = q.iter().zip(k).map(|(a, b)| a * b).sum::<f32>() * scale;
                    preatt[row + t2] = s;
                    maxval = maxval.max(s);
                }
                let mut sum = 0.0;
                for t2 in 0..=ti {
                    let e = (preatt[row + t2] - maxval).exp();
                    att[row + t2] = e;
                    sum += e;
                }
                for t2 in 0..t {
                    // the future is masked: zero weight
                    att[row + t2] = if t2 <= ti { att[row + t2] / sum } else { 0.0 };
                    if t2 > ti {
                        preatt[row + t2] = 0.0;
                    }
                }
                let o = &mut out[(bi * t + ti) * c + h * hs..][..hs];
                o.fill(0.0);
                for t2 in 0..=ti {
                    let v = &inp[(bi * t + t2) * c3 + 2 * c + h * hs..][..hs];
                    let a = att[row + t2];
                    for i in 0..hs {
                        o[i] += a * v[i];
                    }
                }
            }
        }
    }
}

/// Accumulates dinp (B,T,3C) from dout (B,T,C); datt and dpreatt (B,NH,T,T) are scratch.
#[allow(clippy::too_many_arguments)]
pub fn attention_backward(
    dinp: &mut [f32], dpreatt: &mut [f32], datt: &mut [f32],
    dout: &[f32], inp: &[f32], att: &[f32], b: usize, t: usize, c: usize, nh: usize,
) {
    let hs = c / nh;
    let scale = 1.0 / (hs as f32).sqrt();
    let c3 = 3 * c;
    for bi in 0..b {
        for ti in 0..t {
            for h in 0..nh {
                let row = ((bi * nh + h) * t + ti) * t;
                let d = &dout[(bi * t + ti) * c + h * hs..][..hs];
                // out = Σ att·v
                for t2 in 0..=ti {
                    let v_off = (bi * t + t2) * c3 + 2 * c + h * hs;
                    let mut da = 0.0;
                    for i in 0..hs {
                        da += inp[v_off + i] * d[i];
                        dinp[v_off + i] += att[row + t2] * d[i];
                    }
                    datt[row + t2] = da;
                }
                // softmax: dpre = att * (datt - Σ att·datt)
                let dot: f32 = (0..=ti).map(|t2| att[row + t2] * datt[row + t2]).sum();
                for t2 in 0..=ti {
                    dpreatt[row + t2] = att[row + t2] * (datt[row + t2] - dot);
                }
                // pre = scale · q·k
                let q_off = (bi * t + ti) * c3 + h * hs;
                for t2 in 0..=ti {
                    let k_off = (bi * t + t2) * c3 + c + h * hs;
                    let g = dpreatt[row + t2] * scale;
                    for i in 0..hs {
                        dinp[q_off + i] += inp[k_off + i] * g;
                        dinp[k_off + i] += inp[q_off + i] * g;
                    }
                }
            }
        }
    }
}

/// One new position per row against a key-value cache: out (R,C) from each row's query (row r at
/// q[r·q_rs..]) and the cached keys and values kc, vc (R,T,C) at positions 0..=pos.
#[allow(clippy::too_many_arguments)]
pub fn attention_decode(out: &mut [f32], q: &[f32], q_rs: usize, kc: &[f32], vc: &[f32], r: usize, t: usize, c: usize, nh: usize, pos: usize) {
    let hs = c / nh;
    let scale = 1.0 / (hs as f32).sqrt();
    let mut w = vec![0.0f32; pos + 1];
    for ri in 0..r {
        for h in 0..nh {
            let qh = &q[ri * q_rs + h * hs..][..hs];
            let mut maxval = f32::NEG_INFINITY;
            for (t2, wt) in w.iter_mut().enumerate() {
                let k = &kc[(ri * t + t2) * c + h * hs..][..hs];
                *wt = qh.iter().zip(k).map(|(a, b)| a * b).sum::<f32>() * scale;
                maxval = maxval.max(*wt);
            }
            let mut sum = 0.0;
            for wt in w.iter_mut() {
                *wt = (*wt - maxval).exp();
                sum += *wt;
            }
            let o = &mut out[ri * c + h * hs..][..hs];
            o.fill(0.0);
            for (t2, wt) in w.iter().enumerate() {
                let v = &vc[(ri * t + t2) * c + h * hs..][..hs];
                let a = wt / sum;
                for i in 0..hs {
                    o[i] += a * v[i];
                }
            }
        }
    }
}
