// LayerNorm backward: dinp (one thread per row) and dweight, dbias (one thread per channel, no collisions).
// inp_off addresses inp; out_off addresses dout and dinp (both laid out like the forward output).

struct P { n: u32, c: u32, inp_off: u32, out_off: u32, stat_off: u32, w_off: u32, b_off: u32, dinp_off: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> inp: array<f32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read> dout: array<f32>;
@group(0) @binding(4) var<storage, read> mean: array<f32>;
@group(0) @binding(5) var<storage, read> rstd: array<f32>;
@group(0) @binding(6) var<storage, read_write> dinp: array<f32>;
@group(0) @binding(7) var<storage, read_write> grads: array<f32>;

@compute @workgroup_size(64)
fn layernorm_backward_dinp(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = gid.x + gid.y * nwg.x * 64u;
    if (r >= p.n) { return; }
    let m = mean[p.stat_off + r];
    let s = rstd[p.stat_off + r];
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
        dinp[di0 + i] += (dnorm - dnorm_mean - norm * dnorm_norm_mean) * s;
    }
}

@compute @workgroup_size(64)
fn layernorm_backward_params(@builtin(global_invocation_id) gid: vec3<u32>) {
    let ch = gid.x;
    if (ch >= p.c) { return; }
    var dw = 0.0;
    var db = 0.0;
    for (var r = 0u; r < p.n; r++) {
        let norm = (inp[p.inp_off + r * p.c + ch] - mean[p.stat_off + r]) * rstd[p.stat_off + r];
        let d = dout[p.out_off + r * p.c + ch];
        dw += norm * d;
        db += d;
    }
    grads[p.w_off + ch] += dw;
    grads[p.b_off + ch] += db;
}
