// The same products as matmul_blocked.wgsl, tiled through workgroup memory for real GPUs:
// an MM_TILE² tile of C per workgroup of 16×16 threads, each thread 4×4 outputs, K in steps of MM_TILE_K.

var<workgroup> As: array<f32, MM_TILE_K * MM_TILE>; // [k][m]
var<workgroup> Bs: array<f32, MM_TILE_K * MM_TILE>; // [k][n]

@compute @workgroup_size(16, 16)
fn matmul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let tile = tile_of(wid, nwg);
    let pi = tile.x;
    let mm = problem(pi);
    let ncols = cols(mm);
    let tid = lid.y * 16u + lid.x;
    let m0 = tile.y * MM_TILE;
    let n0 = tile.z * MM_TILE;
    var acc: array<f32, 16>;
    for (var k0 = 0u; k0 < mm.k; k0 += MM_TILE_K) {
        for (var i = 0u; i < 4u; i++) {
            let e = tid + i * 256u;
            let ka = e % MM_TILE_K;
            let ma = e / MM_TILE_K;
            let gka = k0 + ka;
            let va = load_a(mm, m0 + ma, min(gka, mm.k - 1u));
            As[ka * MM_TILE + ma] = select(0.0, va, m0 + ma < mm.m && gka < mm.k);
            let nb = e % MM_TILE;
            let kb = e / MM_TILE;
            let gkb = k0 + kb;
            let vb = load_b(pi, mm, min(gkb, mm.k - 1u), n0 + nb);
            Bs[kb * MM_TILE + nb] = select(0.0, vb, gkb < mm.k);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < MM_TILE_K; kk++) {
            var av: array<f32, 4>;
            var bv: array<f32, 4>;
            for (var i = 0u; i < 4u; i++) {
                av[i] = As[kk * MM_TILE + lid.y * 4u + i];
                bv[i] = Bs[kk * MM_TILE + lid.x * 4u + i];
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
        for (var j = 0u; j < 4u; j++) {
            let col = n0 + lid.x * 4u + j;
            if (col < ncols) { store(pi, mm, m0 + lid.y * 4u + i, col, acc[i * 4u + j]); }
        }
    }
}
