//! Token + position embedding.

/// out (B,T,C) = wte[tokens[b,t]] + wpe[t]
pub fn encoder_forward(out: &mut [f32], tokens: &[u32], wte: &[f32], wpe: &[f32], b: usize, t: usize, c: usize) {
    for bi in 0..b {
        for ti in 0..t {
            let ix = tokens[bi * t + ti] as usize;
            let o = &mut out[(bi * t + ti) * c..][..c];
            let e = &wte[ix * c..][..c];
            let p = &wpe[ti * c..][..c];
            for i in 0..c {
                o[i] = e[i] + p[i];
            }
        }
    }
}

/// dwte (V,C) and dwpe (maxT,C) accumulate dout (B,T,C).
pub fn encoder_backward(dwte: &mut [f32], dwpe: &mut [f32], dout: &[f32], tokens: &[u32], b: usize, t: usize, c: usize) {
    for bi in 0..b {
        for ti in 0..t {
            let ix = tokens[bi * t + ti] as usize;
            let d = &dout[(bi * t + ti) * c..][..c];
            for i in 0..c {
                dwte[ix * c + i] += d[i];
                dwpe[ti * c + i] += d[i];
            }
        }
    }
}
