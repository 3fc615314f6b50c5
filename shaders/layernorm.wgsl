// LayerNorm over channels. One thread per row for the forward pass and dinp; one per channel for dweight, dbias.

struct P { n: u32, c: u32, inp_off: u32, out_off: u32, stat_off: u32, w_off: u32, b_off: u32, _p0: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> inp: array<f32>;
@group(0) @binding(2) var<storage, read> params: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> rstd: array<f32>;

const EPS: f32 = 1e-5;

@compute @workgroup_size(64)
fn layernorm_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = gid.x + gid.y * nwg.x * 64u;
    if (r >= p.n) { return; }
    let x0 = p.inp_off + r * p.c;
    var m = 0.0;
    for (var i = 0u; i < p.c; i++) { m += inp[x0 + i]; }
    m = m / f32(p.c);
    var v = 0.0;
    for (var i = 0u; i < p.c; i++) { let d = inp[x0 + i] - m; v += d * d; }
    let s = 1.0 / sqrt(v / f32(p.c) + EPS);
    let o0 = p.out_off + r * p.c;
    for (var i = 0u; i < p.c; i++) {
        out[o0 + i] = (inp[x0 + i] - m) * s * params[p.w_off + i] + params[p.b_off + i];
    }
    mean[p.stat_off + r] = m;
    rstd[p.stat_off + r] = s;
}
