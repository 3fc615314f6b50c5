// The same product as matmul_blocked.wgsl, tiled through workgroup memory for real GPUs:
// a 64×64 tile of C per workgroup of 16×16 threads, each thread 4×4 outputs, K in steps of 16.

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

var<workgroup> As: array<f32, 1024>; // [16 k][64 m]
var<workgroup> Bs: array<f32, 1024>; // [16 k][64 n]

@compute @workgroup_size(16, 16)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let tid = lid.y * 16u + lid.x;
    let m0 = wid.y * 64u;
    let n0 = wid.x * 64u;
    var acc: array<f32, 16>;
    for (var k0 = 0u; k0 < p.k; k0 += 16u) {
        for (var i = 0u; i < 4u; i++) {
            let e = tid + i * 256u;
            let ka = e % 16u;
            let ma = e / 16u;
            let gm = m0 + ma;
            let gka = k0 + ka;
            let va = a[p.a_off + min(gm, p.m - 1u) * p.a_rs + min(gka, p.k - 1u) * p.a_cs];
            As[ka * 64u + ma] = select(0.0, va, gm < p.m && gka < p.k);
            let nb = e % 64u;
            let kb = e / 64u;
            let gn = n0 + nb;
            let gkb = k0 + kb;
            let vb = b[p.b_off + min(gkb, p.k - 1u) * p.b_rs + min(gn, p.n - 1u) * p.b_cs];
            Bs[kb * 64u + nb] = select(0.0, vb, gn < p.n && gkb < p.k);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < 16u; kk++) {
            var av: array<f32, 4>;
            var bv: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                av[i] = As[kk * 64u + lid.y * 4u + i];
                bv[i] = Bs[kk * 64u + lid.x * 4u + i];
            }
            for (var i = 0u; i < 4u; i++) {
                for (var j = 0u; j < 4u; j++) {
                    acc[i * 4u + j] += av[i] * bv[j];
                }
            }
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let r = m0 + lid.y * 4u + i;
        for (var j = 0u; j < 4u; j++) {
            let cc = n0 + lid.x * 4u + j;
            if (r < p.m && cc < p.n) {
                var v = acc[i * 4u + j];
                if (p.has_bias != 0u) { v += bias[p.bias_off + cc]; }
                let o = p.c_off + r * p.c_rs + cc;
                if (p.accumulate != 0u) { v += c[o]; }
                c[o] = v;
            }
        }
    }
}
