// The embedding's backward pass (its forward pass is fused into layernorm.wgsl): dwte and dwpe in
// one dispatch. The first wte_groups workgroups take one channel per thread and walk every position,
// scattering by token, so no two threads collide; the rest take one (t, c) of wpe each.

struct P { b: u32, t: u32, c: u32, wte_off: u32, wpe_off: u32, dout_off: u32, wte_groups: u32, _p0: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> tokens: array<u32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(3) var<storage, read_write> grads: array<f32>;

@compute @workgroup_size(WG_ROWS)
fn encoder_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    if (wid.x < p.wte_groups) {
        let ch = wid.x * WG_ROWS + lid.x;
        if (ch >= p.c) { return; }
        for (var i = 0u; i < p.b * p.t; i++) {
            grads[p.wte_off + tokens[i] * p.c + ch] += dout[p.dout_off + i * p.c + ch];
        }
    } else {
        let idx = (wid.x - p.wte_groups) * WG_ROWS + lid.x;
        if (idx >= p.t * p.c) { return; }
        let ti = idx / p.c;
        let ch = idx % p.c;
        var acc = 0.0;
        for (var bi = 0u; bi < p.b; bi++) {
            acc += dout[p.dout_off + (bi * p.t + ti) * p.c + ch];
        }
        grads[p.wpe_off + idx] += acc;
    }
}
