// PPO's clipped surrogate at each action of a policy minibatch (src/surrogate.rs is its CPU twin):
// the loss weights the backward pass takes on −log π, and the sums the metrics need, so a policy
// step needs no readback before its backward pass. One workgroup: a minibatch has at most a few
// thousand positions.

struct P { n: u32, out: u32, clip: f32, answers: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> targets: array<i32>;
@group(0) @binding(2) var<storage, read> losses: array<f32>;
// the old log-probabilities (n), then the advantages (n)
@group(0) @binding(3) var<storage, read> old_adv: array<f32>;
@group(0) @binding(4) var<storage, read_write> weights: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

// per thread: (loss, clipped, actions, ρ − 1 − log ρ)
var<workgroup> acc: array<vec4<f32>, WG>;

@compute @workgroup_size(WG)
fn surrogate(@builtin(local_invocation_id) lid: vec3<u32>) {
    var s = vec4<f32>(0.0);
    for (var r = lid.x; r < p.n; r += WG) {
        if (targets[r] < 0) {
            weights[r] = 0.0;
            continue;
        }
        let logp = -losses[r];
        let log_rho = logp - old_adv[r];
        let adv = old_adv[p.n + r];
        let ratio = exp(log_rho);
        let unclipped = -adv * ratio;
        let clipped = -adv * clamp(ratio, 1.0 - p.clip, 1.0 + p.clip);
        // the clipped term is constant in log π: no gradient where it is the larger
        let is_clipped = clipped > unclipped;
        let dlogp = select(-adv * ratio, 0.0, is_clipped);
        weights[r] = -dlogp / p.answers;
        s += vec4<f32>(select(unclipped, clipped, is_clipped), select(0.0, 1.0, is_clipped), 1.0, ratio - 1.0 - log_rho);
    }
    acc[lid.x] = s;
    workgroupBarrier();
    for (var k = WG / 2u; k > 0u; k = k / 2u) {
        if (lid.x < k) { acc[lid.x] += acc[lid.x + k]; }
        workgroupBarrier();
    }
    if (lid.x == 0u) {
        for (var i = 0u; i < 4u; i++) { out[p.out + i] = acc[0][i]; }
    }
}
