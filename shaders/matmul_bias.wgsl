// dbias (OC) += Σ_n dout (N,OC): one thread per output channel.

struct P { n: u32, oc: u32, dout_off: u32, bias_off: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> dout: array<f32>;
@group(0) @binding(2) var<storage, read_write> grads: array<f32>;

@compute @workgroup_size(64)
fn bias_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let o = gid.x;
    if (o >= p.oc) { return; }
    var acc = 0.0;
    for (var r = 0u; r < p.n; r++) {
        acc += dout[p.dout_off + r * p.oc + o];
    }
    grads[p.bias_off + o] += acc;
}
