// C (M,N) = [C +] A·B [+ bias], A and B addressed by strides so one kernel serves out = inp·Wᵀ,
// dinp = dout·W and dW = doutᵀ·inp. Register-blocked: each thread computes a 4×4 block of C.
// Row r of C starts at c_off + r·c_rs (c_rs = N for a packed C; larger to write rows into a KV cache).
// This is the fast path on software adapters (lavapipe, SwiftShader), where shared memory costs more than it saves.

struct P {
    m: u32, n: u32, k: u32, accumulate: u32,
    a_off: u32, a_rs: u32, a_cs: u32, has_bias: u32,
    b_off: u32, b_rs: u32, b_cs: u32, bias_off: u32,
    c_off: u32, c_rs: u32, _p1: u32, _p2: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

@compute @workgroup_size(8, 8)
fn matmul(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row0 = gid.y * 4u;
    let col0 = gid.x * 4u;
    if (row0 >= p.m || col0 >= p.n) { return; }
    var acc: array<f32, 16>;
    for (var kk = 0u; kk < p.k; kk++) {
        var av: array<f32, 4>;
        var bv: array<f32, 4>;
        for (var i = 0u; i < 4u; i++) {
            // clamped indices stay in bounds; the extra rows and columns are never written
            let r = min(row0 + i, p.m - 1u);
            let cc = min(col0 + i, p.n - 1u);
            av[i] = a[p.a_off + r * p.a_rs + kk * p.a_cs];
            bv[i] = b[p.b_off + kk * p.b_rs + cc * p.b_cs];
        }
        for (var i = 0u; i < 4u; i++) {
            for (var j = 0u; j < 4u; j++) {
                acc[i * 4u + j] += av[i] * bv[j];
            }
        }
    }
    for (var i = 0u; i < 4u; i++) {
        let r = row0 + i;
        if (r >= p.m) { break; }
        for (var j = 0u; j < 4u; j++) {
            let cc = col0 + j;
            if (cc >= p.n) { break; }
            var v = acc[i * 4u + j];
            if (p.has_bias != 0u) { v += bias[p.bias_off + cc]; }
            let o = p.c_off + r * p.c_rs + cc;
            if (p.accumulate != 0u) { v += c[o]; }
            c[o] = v;
        }
    }
}
