// GELU, tanh form, elementwise over n values at a shared offset (fch and fch_gelu have one layout).

struct P { n: u32, off: u32, _p0: u32, _p1: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> inp: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read> dout: array<f32>;
@group(0) @binding(4) var<storage, read_write> dinp: array<f32>;

const GELU_SCALE: f32 = 0.7978845608;

// tanh through exp, clamped: some WGSL backends overflow tanh for large arguments
fn tanh_safe(x: f32) -> f32 {
    let e = exp(-2.0 * clamp(x, -15.0, 15.0));
    return (1.0 - e) / (1.0 + e);
}

@compute @workgroup_size(256)
fn gelu_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) { return; }
    let x = inp[p.off + i];
    let cube = 0.044715 * x * x * x;
    out[p.off + i] = 0.5 * x * (1.0 + tanh_safe(GELU_SCALE * (x + cube)));
}

@compute @workgroup_size(256)
fn gelu_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.n) { return; }
    let x = inp[p.off + i];
    let cube = 0.044715 * x * x * x;
    let th = tanh_safe(GELU_SCALE * (x + cube));
    let sech2 = 1.0 - th * th;
    let local = 0.5 * (1.0 + th) + x * 0.5 * sech2 * GELU_SCALE * (1.0 + 3.0 * 0.044715 * x * x);
    dinp[p.off + i] += local * dout[p.off + i];
}
