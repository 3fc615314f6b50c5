// LayerNorm over channels, each fused with what feeds it: the token + position embedding (the first
// block's ln1) or a residual add (every later LayerNorm). One thread per row; `res` receives the
// residual stream (the LayerNorm's input), `out` the normalized rows, mean and rstd the statistics.
// The backward pass writes dinp (one thread per row) and dweight, dbias (one thread per channel)
// in one dispatch: the first row_groups workgroups take rows, the rest take channels.

struct P {
    n: u32, c: u32, t: u32, pos0: u32,
    inp_off: u32, inp2_off: u32, res_off: u32, out_off: u32,
    stat_off: u32, w_off: u32, b_off: u32, dinp_off: u32,
    row_groups: u32, wte_off: u32, wpe_off: u32, accumulate: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> tokens: array<u32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read> inp: array<f32>;
@group(0) @binding(4) var<storage, read> inp2: array<f32>;
@group(0) @binding(5) var<storage, read_write> res: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;
@group(0) @binding(7) var<storage, read_write> mean: array<f32>;
@group(0) @binding(8) var<storage, read_write> rstd: array<f32>;
@group(0) @binding(9) var<storage, read> dout: array<f32>;
@group(0) @binding(10) var<storage, read> mean_r: array<f32>;
@group(0) @binding(11) var<storage, read> rstd_r: array<f32>;
@group(0) @binding(12) var<storage, read_write> dinp: array<f32>;
@group(0) @binding(13) var<storage, read_write> grads: array<f32>;

fn row_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WG_ROWS;
}

// Normalizes res[row] (already written) into out[row].
fn normalize_row(r: u32) {
    let x0 = p.res_off + r * p.c;
    var m = 0.0;
    for (var i = 0u; i < p.c; i++) { m += res[x0 + i]; }
    m = m / f32(p.c);
    var v = 0.0;
    for (var i = 0u; i < p.c; i++) { let d = res[x0 + i] - m; v += d * d; }
    let s = 1.0 / sqrt(v / f32(p.c) + LN_EPS);
    let o0 = p.out_off + r * p.c;
    for (var i = 0u; i < p.c; i++) {
        out[o0 + i] = (res[x0 + i] - m) * s * params[p.w_off + i] + params[p.b_off + i];
    }
    mean[p.stat_off + r] = m;
    rstd[p.stat_off + r] = s;
}

// res (N,C) = wte[tokens] + wpe[pos0 + row mod T]; out = layernorm(res)
@compute @workgroup_size(WG_ROWS)
fn embed_layernorm(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = row_index(gid, nwg);
    if (r >= p.n) { return; }
    let tok = tokens[r];
    let pos = p.pos0 + r % p.t;
    for (var i = 0u; i < p.c; i++) {
        res[p.res_off + r * p.c + i] = params[p.wte_off + tok * p.c + i] + params[p.wpe_off + pos * p.c + i];
    }
    normalize_row(r);
}

// res (N,C) = inp + inp2; out = layernorm(res)
@compute @workgroup_size(WG_ROWS)
fn residual_layernorm(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = row_index(gid, nwg);
    if (r >= p.n) { return; }
    for (var i = 0u; i < p.c; i++) {
        res[p.res_off + r * p.c + i] = inp[p.inp_off + r * p.c + i] + inp2[p.inp2_off + r * p.c + i];
    }
    normalize_row(r);
}

// dinp (at dinp_off) += ∂/∂inp (= when accumulate is 0); grads[w], grads[b] += ∂/∂weight, ∂/∂bias.
// inp is the forward input (at inp_off), dout is laid out like the forward output (at out_off).
@compute @workgroup_size(WG_ROWS)
fn layernorm_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let w = wid.x + wid.y * nwg.x;
    if (w < p.row_groups) {
        let r = w * WG_ROWS + lid.x;
        if (r >= p.n) { return; }
        let m = mean_r[p.stat_off + r];
        let s = rstd_r[p.stat_off + r];
        let x0 = p.inp_off + r * p.c;
        let d0 = p.out_off + r * p.c;
        var dnorm_mean = 0.0;
        var dnorm_norm_mean = 0.0;
        for (var i = 0u; i < p.c; i++) {
            let norm = (inp[x0 + i] - m) * s;
            let dnorm = params[p.w_off + i] * dout[d0 + i];
            dnorm_mean += dnorm;
            dnorm_norm_mean += dnorm * norm;
        }
        dnorm_mean = dnorm_mean / f32(p.c);
        dnorm_norm_mean = dnorm_norm_mean / f32(p.c);
        let di0 = p.dinp_off + r * p.c;
        for (var i = 0u; i < p.c; i++) {
            let norm = (inp[x0 + i] - m) * s;
            let dnorm = params[p.w_off + i] * dout[d0 + i];
            let g = (dnorm - dnorm_mean - norm * dnorm_norm_mean) * s;
            dinp[di0 + i] = select(g, dinp[di0 + i] + g, p.accumulate != 0u);
        }
    } else {
        let ch = (w - p.row_groups) * WG_ROWS + lid.x;
        if (ch >= p.c) { return; }
        var dw = 0.0;
        var db = 0.0;
        for (var r = 0u; r < p.n; r++) {
            let norm = (inp[p.inp_off + r * p.c + ch] - mean_r[p.stat_off + r]) * rstd_r[p.stat_off + r];
            let d = dout[p.out_off + r * p.c + ch];
            dw += norm * d;
            db += d;
        }
        grads[p.w_off + ch] += dw;
        grads[p.b_off + ch] += db;
    }
}
