//! Compiled pipelines and one typed call per kernel. Offsets and sizes are in f32 words.
//! Every backward kernel accumulates (+=) into zeroed gradient buffers, as the CPU reference does.

use wgpu::{Buffer, CommandEncoder, ComputePipeline, Device};

use super::context::{groups_1d, now_ms, Gpu};
use crate::error::Result;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatmulKind {
    /// 4×4 outputs per thread, no shared memory: fastest on software adapters.
    Blocked,
    /// 64×64 workgroup tiles through shared memory: for real GPUs.
    Tiled,
}

impl MatmulKind {
    pub fn parse(s: &str) -> Option<MatmulKind> {
        match s {
            "blocked" => Some(MatmulKind::Blocked),
            "tiled" => Some(MatmulKind::Tiled),
            _ => None,
        }
    }

    /// Times both kernels on a 256³ product and keeps the faster.
    pub async fn choose(gpu: &Gpu) -> Result<MatmulKind> {
        let n = 256;
        let a = gpu.buffer("probe a", n * n);
        let c = gpu.buffer("probe c", n * n);
        let mut best = (f64::INFINITY, MatmulKind::Blocked);
        for kind in [MatmulKind::Blocked, MatmulKind::Tiled] {
            let run = || {
                let mut enc = gpu.encoder();
                for _ in 0..4 {
                    gpu.kernels.matmul_with(gpu, &mut enc, kind, &Mm::plain(n, n, n), &a, &a, None, &c);
                }
                gpu.submit(enc);
            };
            run();
            gpu.finish().await?;
            let t0 = now_ms();
            run();
            gpu.finish().await?;
            let dt = now_ms() - t0;
            if dt < best.0 {
                best = (dt, kind);
            }
        }
        Ok(best.1)
    }
}

/// One strided matrix product C (M,N) = [C +] A·B [+ bias]: element (i,j) of A is at a_off + i·a_rs + j·a_cs.
#[derive(Clone, Copy, Debug)]
pub struct Mm {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: (usize, usize, usize),
    pub b: (usize, usize, usize),
    pub c_off: usize,
    /// Row stride of C (N when C is packed).
    pub c_rs: usize,
    pub bias_off: Option<usize>,
    pub accumulate: bool,
}

impl Mm {
    /// Contiguous row-major A (M,K), B (K,N), C (M,N).
    pub fn plain(m: usize, k: usize, n: usize) -> Mm {
        Mm { m, n, k, a: (0, k, 1), b: (0, n, 1), c_off: 0, c_rs: n, bias_off: None, accumulate: false }
    }
}

#[derive(Clone)]
pub struct Kernels {
    pub matmul_kind: MatmulKind,
    encoder_forward: ComputePipeline,
    encoder_backward_wte: ComputePipeline,
    encoder_backward_wpe: ComputePipeline,
    layernorm_forward: ComputePipeline,
    layernorm_backward_dinp: ComputePipeline,
    layernorm_backward_params: ComputePipeline,
    matmul_blocked: ComputePipeline,
    matmul_tiled: ComputePipeline,
    bias_backward: ComputePipeline,
    attention_forward: ComputePipeline,
    attention_backward_rows: ComputePipeline,
    attention_backward_cols: ComputePipeline,
    gelu_forward: ComputePipeline,
    gelu_backward: ComputePipeline,
    residual_forward: ComputePipeline,
    residual_backward: ComputePipeline,
    crossentropy_forward: ComputePipeline,
    crossentropy_backward: ComputePipeline,
    encoder_decode: ComputePipeline,
    attention_decode: ComputePipeline,
    sample_next: ComputePipeline,
    sumsq_partial: ComputePipeline,
    clip_scale: ComputePipeline,
    adamw: ComputePipeline,
}

pub const NUM_PARTIALS: usize = 64;

fn pipeline(device: &Device, module: &wgpu::ShaderModule, entry: &str) -> ComputePipeline {
    device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(entry),
        layout: None,
        module,
        entry_point: Some(entry),
        compilation_options: Default::default(),
        cache: None,
    })
}

fn module(device: &Device, name: &str, src: &str) -> wgpu::ShaderModule {
    device.create_shader_module(wgpu::ShaderModuleDescriptor { label: Some(name), source: wgpu::ShaderSource::Wgsl(src.into()) })
}

fn f(x: f32) -> u32 {
    x.to_bits()
}

fn u(x: usize) -> u32 {
    x as u32
}

/// Attention offsets: where layer l's qkv, output and attention matrices start.
#[derive(Clone, Copy, Debug)]
pub struct AttnOffsets {
    pub qkv: usize,
    pub out: usize,
    pub att: usize,
}

/// LayerNorm offsets: input rows, output rows, statistics, weight and bias (into params/grads).
#[derive(Clone, Copy, Debug)]
pub struct LnOffsets {
    pub inp: usize,
    pub out: usize,
    pub stat: usize,
    pub w: usize,
    pub b: usize,
}

/// AdamW hyperparameters of one step, bias corrections included.
#[derive(Clone, Copy, Debug)]
pub struct AdamUniforms {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub b1_corr: f32,
    pub b2_corr: f32,
}

impl Kernels {
    pub fn new(device: &Device, matmul_kind: MatmulKind) -> Kernels {
        let enc = module(device, "encoder", include_str!("../../shaders/encoder.wgsl"));
        let ln = module(device, "layernorm", include_str!("../../shaders/layernorm.wgsl"));
        let lnb = module(device, "layernorm_backward", include_str!("../../shaders/layernorm_backward.wgsl"));
        let mmb = module(device, "matmul_blocked", include_str!("../../shaders/matmul_blocked.wgsl"));
        let mmt = module(device, "matmul_tiled", include_str!("../../shaders/matmul_tiled.wgsl"));
        let bias = module(device, "matmul_bias", include_str!("../../shaders/matmul_bias.wgsl"));
        let att = module(device, "attention", include_str!("../../shaders/attention.wgsl"));
        let gelu = module(device, "gelu", include_str!("../../shaders/gelu.wgsl"));
        let res = module(device, "residual", include_str!("../../shaders/residual.wgsl"));
        let ce = module(device, "crossentropy", include_str!("../../shaders/crossentropy.wgsl"));
        let adam = module(device, "adamw", include_str!("../../shaders/adamw.wgsl"));
        let dec = module(device, "decode", include_str!("../../shaders/decode.wgsl"));
        let smp = module(device, "sample", include_str!("../../shaders/sample.wgsl"));
        Kernels {
            matmul_kind,
            encoder_forward: pipeline(device, &enc, "encoder_forward"),
            encoder_backward_wte: pipeline(device, &enc, "encoder_backward_wte"),
            encoder_backward_wpe: pipeline(device, &enc, "encoder_backward_wpe"),
            layernorm_forward: pipeline(device, &ln, "layernorm_forward"),
            layernorm_backward_dinp: pipeline(device, &lnb, "layernorm_backward_dinp"),
            layernorm_backward_params: pipeline(device, &lnb, "layernorm_backward_params"),
            matmul_blocked: pipeline(device, &mmb, "matmul"),
            matmul_tiled: pipeline(device, &mmt, "matmul"),
            bias_backward: pipeline(device, &bias, "bias_backward"),
            attention_forward: pipeline(device, &att, "attention_forward"),
            attention_backward_rows: pipeline(device, &att, "attention_backward_rows"),
            attention_backward_cols: pipeline(device, &att, "attention_backward_cols"),
            gelu_forward: pipeline(device, &gelu, "gelu_forward"),
            gelu_backward: pipeline(device, &gelu, "gelu_backward"),
            residual_forward: pipeline(device, &res, "residual_forward"),
            residual_backward: pipeline(device, &res, "residual_backward"),
            crossentropy_forward: pipeline(device, &ce, "crossentropy_forward"),
            crossentropy_backward: pipeline(device, &ce, "crossentropy_backward"),
            encoder_decode: pipeline(device, &dec, "encoder_decode"),
            attention_decode: pipeline(device, &dec, "attention_decode"),
            sample_next: pipeline(device, &smp, "sample_next"),
            sumsq_partial: pipeline(device, &adam, "sumsq_partial"),
            clip_scale: pipeline(device, &adam, "clip_scale"),
            adamw: pipeline(device, &adam, "adamw"),
        }
    }

    /// out (B,T,C) = wte[tokens] + wpe[t]
    #[allow(clippy::too_many_arguments)]
    pub fn encoder_forward(&self, g: &Gpu, e: &mut CommandEncoder, out: &Buffer, tokens: &Buffer, params: &Buffer, wte: usize, wpe: usize, b: usize, t: usize, c: usize) {
        let uni = [u(b), u(t), u(c), u(wte), u(wpe)];
        g.dispatch(e, &self.encoder_forward, &uni, &[(1, tokens), (2, params), (3, out)], groups_1d(b * t * c, 256));
    }

    #[allow(clippy::too_many_arguments)]
    pub fn encoder_backward(&self, g: &Gpu, e: &mut CommandEncoder, grads: &Buffer, dout: &Buffer, tokens: &Buffer, wte: usize, wpe: usize, b: usize, t: usize, c: usize) {
        let uni = [u(b), u(t), u(c), u(wte), u(wpe)];
        g.dispatch(e, &self.encoder_backward_wte, &uni, &[(1, tokens), (4, dout), (5, grads)], groups_1d(c, 64));
        g.dispatch(e, &self.encoder_backward_wpe, &uni, &[(4, dout), (5, grads)], groups_1d(t * c, 64));
    }

    /// out (N,C) = layernorm(inp); mean, rstd (N)
    #[allow(clippy::too_many_arguments)]
    pub fn layernorm_forward(&self, g: &Gpu, e: &mut CommandEncoder, out: &Buffer, mean: &Buffer, rstd: &Buffer, inp: &Buffer, params: &Buffer, o: LnOffsets, n: usize, c: usize) {
        let uni = [u(n), u(c), u(o.inp), u(o.out), u(o.stat), u(o.w), u(o.b)];
        g.dispatch(e, &self.layernorm_forward, &uni, &[(1, inp), (2, params), (3, out), (4, mean), (5, rstd)], groups_1d(n, 64));
    }

    /// dinp (at dinp_off) += ∂/∂inp; grads[w], grads[b] += ∂/∂weight, ∂/∂bias. dout is laid out like the forward output.
    #[allow(clippy::too_many_arguments)]
    pub fn layernorm_backward(
        &self, g: &Gpu, e: &mut CommandEncoder, dinp: &Buffer, dinp_off: usize, grads: &Buffer,
        dout: &Buffer, inp: &Buffer, params: &Buffer, mean: &Buffer, rstd: &Buffer, o: LnOffsets, n: usize, c: usize,
    ) {
        let uni = [u(n), u(c), u(o.inp), u(o.out), u(o.stat), u(o.w), u(o.b), u(dinp_off)];
        g.dispatch(e, &self.layernorm_backward_dinp, &uni, &[(1, inp), (2, params), (3, dout), (4, mean), (5, rstd), (6, dinp)], groups_1d(n, 64));
        g.dispatch(e, &self.layernorm_backward_params, &uni, &[(1, inp), (3, dout), (4, mean), (5, rstd), (7, grads)], groups_1d(c, 64));
    }

    /// A strided product with the adapter's chosen kernel, except for products of a few rows (one
    /// decode step): a 64-row tile would be mostly idle there, and its barriers are what software
    /// adapters pay most for (on SwiftShader a demo decode step went from 1.7 s to about 30 ms).
    #[allow(clippy::too_many_arguments)]
    pub fn matmul(&self, g: &Gpu, e: &mut CommandEncoder, mm: &Mm, a: &Buffer, b: &Buffer, bias: Option<&Buffer>, c: &Buffer) {
        let kind = if mm.m < 32 { MatmulKind::Blocked } else { self.matmul_kind };
        self.matmul_with(g, e, kind, mm, a, b, bias, c)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn matmul_with(&self, g: &Gpu, e: &mut CommandEncoder, kind: MatmulKind, mm: &Mm, a: &Buffer, b: &Buffer, bias: Option<&Buffer>, c: &Buffer) {
        if mm.m == 0 || mm.n == 0 {
            return;
        }
        let uni = [
            u(mm.m), u(mm.n), u(mm.k), mm.accumulate as u32,
            u(mm.a.0), u(mm.a.1), u(mm.a.2), mm.bias_off.is_some() as u32,
            u(mm.b.0), u(mm.b.1), u(mm.b.2), u(mm.bias_off.unwrap_or(0)),
            u(mm.c_off), u(mm.c_rs), 0, 0,
        ];
        // An unused bias binding still needs a buffer: A is read-only, so it can stand in.
        let bufs = [(1, a), (2, b), (3, bias.unwrap_or(a)), (4, c)];
        let (pipe, tile) = match kind {
            MatmulKind::Blocked => (&self.matmul_blocked, 32),
            MatmulKind::Tiled => (&self.matmul_tiled, 64),
        };
        g.dispatch(e, pipe, &uni, &bufs, [mm.n.div_ceil(tile) as u32, mm.m.div_ceil(tile) as u32, 1]);
    }

    /// out (N,OC) = inp (N,C) · W (OC,C)ᵀ + bias
    #[allow(clippy::too_many_arguments)]
    pub fn linear_forward(
        &self, g: &Gpu, e: &mut CommandEncoder, out: &Buffer, out_off: usize, inp: &Buffer, inp_off: usize,
        params: &Buffer, w_off: usize, bias_off: Option<usize>, n: usize, c: usize, oc: usize,
    ) {
        let mm = Mm { m: n, n: oc, k: c, a: (inp_off, c, 1), b: (w_off, 1, c), c_off: out_off, c_rs: oc, bias_off, accumulate: false };
        self.matmul(g, e, &mm, inp, params, bias_off.map(|_| params), out);
    }

    /// dinp += dout·W, dW += doutᵀ·inp, dbias += Σ dout
    #[allow(clippy::too_many_arguments)]
    pub fn linear_backward(
        &self, g: &Gpu, e: &mut CommandEncoder, dinp: &Buffer, grads: &Buffer, dout: &Buffer, act_off_out: usize,
        inp: &Buffer, act_off_inp: usize, params: &Buffer, w_off: usize, bias_off: Option<usize>, n: usize, c: usize, oc: usize,
    ) {
        let dx = Mm { m: n, n: c, k: oc, a: (act_off_out, oc, 1), b: (w_off, c, 1), c_off: act_off_inp, c_rs: c, bias_off: None, accumulate: true };
        self.matmul(g, e, &dx, dout, params, None, dinp);
        let dw = Mm { m: oc, n: c, k: n, a: (act_off_out, 1, oc), b: (act_off_inp, c, 1), c_off: w_off, c_rs: c, bias_off: None, accumulate: true };
        self.matmul(g, e, &dw, dout, inp, None, grads);
        if let Some(bo) = bias_off {
            g.dispatch(e, &self.bias_backward, &[u(n), u(oc), u(act_off_out), u(bo)], &[(1, dout), (2, grads)], groups_1d(oc, 64));
        }
    }

    /// out (B,T,C), preatt and att (B,NH,T,T) from qkv (B,T,3C)
    #[allow(clippy::too_many_arguments)]
    pub fn attention_forward(&self, g: &Gpu, e: &mut CommandEncoder, out: &Buffer, preatt: &Buffer, att: &Buffer, qkv: &Buffer, o: AttnOffsets, b: usize, t: usize, c: usize, nh: usize) {
        let uni = [u(b), u(t), u(c), u(nh), u(o.qkv), u(o.out), u(o.att)];
        g.dispatch(e, &self.attention_forward, &uni, &[(1, qkv), (2, out), (3, preatt), (4, att)], groups_1d(b * nh * t, 64));
    }

    /// dqkv += ∂/∂qkv; dpreatt (B,NH,T,T) is scratch.
    #[allow(clippy::too_many_arguments)]
    pub fn attention_backward(
        &self, g: &Gpu, e: &mut CommandEncoder, dqkv: &Buffer, dpreatt: &Buffer, dout: &Buffer, qkv: &Buffer, att: &Buffer,
        o: AttnOffsets, b: usize, t: usize, c: usize, nh: usize,
    ) {
        let uni = [u(b), u(t), u(c), u(nh), u(o.qkv), u(o.out), u(o.att)];
        let groups = groups_1d(b * nh * t, 64);
        g.dispatch(e, &self.attention_backward_rows, &uni, &[(1, qkv), (5, att), (6, dout), (7, dpreatt), (8, dqkv)], groups);
        g.dispatch(e, &self.attention_backward_cols, &uni, &[(1, qkv), (5, att), (6, dout), (8, dqkv), (9, dpreatt)], groups);
    }

    pub fn gelu_forward(&self, g: &Gpu, e: &mut CommandEncoder, out: &Buffer, inp: &Buffer, off: usize, n: usize) {
        g.dispatch(e, &self.gelu_forward, &[u(n), u(off)], &[(1, inp), (2, out)], groups_1d(n, 256));
    }

    #[allow(clippy::too_many_arguments)]
    pub fn gelu_backward(&self, g: &Gpu, e: &mut CommandEncoder, dinp: &Buffer, inp: &Buffer, dout: &Buffer, off: usize, n: usize) {
        g.dispatch(e, &self.gelu_backward, &[u(n), u(off)], &[(1, inp), (3, dout), (4, dinp)], groups_1d(n, 256));
    }

    #[allow(clippy::too_many_arguments)]
    pub fn residual_forward(&self, g: &Gpu, e: &mut CommandEncoder, out: &Buffer, out_off: usize, a: &Buffer, a_off: usize, b: &Buffer, b_off: usize, n: usize) {
        g.dispatch(e, &self.residual_forward, &[u(n), u(a_off), u(b_off), u(out_off)], &[(1, a), (2, b), (3, out)], groups_1d(n, 256));
    }

    #[allow(clippy::too_many_arguments)]
    pub fn residual_backward(&self, g: &Gpu, e: &mut CommandEncoder, da: &Buffer, a_off: usize, db: &Buffer, b_off: usize, dout: &Buffer, out_off: usize, n: usize) {
        g.dispatch(e, &self.residual_backward, &[u(n), u(a_off), u(b_off), u(out_off)], &[(4, dout), (5, da), (6, db)], groups_1d(n, 256));
    }

    /// losses, lse, entropy (N) of softmax(logits/T) against targets (N).
    #[allow(clippy::too_many_arguments)]
    pub fn crossentropy_forward(
        &self, g: &Gpu, e: &mut CommandEncoder, losses: &Buffer, lse: &Buffer, entropy: &Buffer,
        logits: &Buffer, targets: &Buffer, temperature: f32, n: usize, v: usize,
    ) {
        let uni = [u(n), u(v), f(1.0 / temperature), 0];
        g.dispatch(e, &self.crossentropy_forward, &uni, &[(1, logits), (2, targets), (3, losses), (4, lse), (7, entropy)], groups_1d(n, 64));
    }

    /// dlogits += weights[r]·∂losses[r]/∂logits
    #[allow(clippy::too_many_arguments)]
    pub fn crossentropy_backward(
        &self, g: &Gpu, e: &mut CommandEncoder, dlogits: &Buffer, logits: &Buffer, lse: &Buffer, targets: &Buffer,
        weights: &Buffer, temperature: f32, n: usize, v: usize,
    ) {
        let uni = [u(n), u(v), f(1.0 / temperature), 0];
        g.dispatch(e, &self.crossentropy_backward, &uni, &[(1, logits), (2, targets), (5, lse), (6, dlogits), (8, weights)], groups_1d(n * v, 256));
    }

    /// out (B,C) = wte[tokens] + wpe[pos]: the embedding of one new position per row.
    #[allow(clippy::too_many_arguments)]
    pub fn encoder_decode(&self, g: &Gpu, e: &mut CommandEncoder, out: &Buffer, tokens: &Buffer, params: &Buffer, wte: usize, wpe: usize, b: usize, c: usize, pos: usize) {
        let uni = [u(b), 0, u(c), 0, 0, u(pos), u(wte), u(wpe)];
        g.dispatch(e, &self.encoder_decode, &uni, &[(1, tokens), (2, params), (3, out)], groups_1d(b * c, 64));
    }

    /// out (B,C): attention of position `pos` over the cached q, k, v (B,T,3C) at qkv_off.
    #[allow(clippy::too_many_arguments)]
    pub fn attention_decode(&self, g: &Gpu, e: &mut CommandEncoder, out: &Buffer, qkv: &Buffer, qkv_off: usize, b: usize, t: usize, c: usize, nh: usize, pos: usize) {
        let uni = [u(b), u(t), u(c), u(nh), u(qkv_off), u(pos), 0, 0];
        g.dispatch(e, &self.attention_decode, &uni, &[(3, out), (4, qkv)], groups_1d(b * nh, 64));
    }

    /// Samples one token per row from logits rows (row r at logits_off + r·logits_rs) into `next`
    /// and into out[r·out_stride + step].
    #[allow(clippy::too_many_arguments)]
    pub fn sample_next(
        &self, g: &Gpu, e: &mut CommandEncoder, next: &Buffer, out: &Buffer, logits: &Buffer, logits_off: usize, logits_rs: usize,
        b: usize, v: usize, sc: &crate::sample::SampleConfig, seed: u64, step: usize, out_stride: usize,
    ) {
        let greedy = sc.temperature <= 0.0;
        let inv_t = if greedy { 1.0 } else { 1.0 / sc.temperature };
        let uni = [
            u(b), u(v), u(logits_off), u(logits_rs),
            u(sc.top_k), seed as u32, (seed >> 32) as u32, u(step),
            f(inv_t), f(sc.top_p), greedy as u32, u(out_stride),
            u(step), 0, 0, 0,
        ];
        g.dispatch(e, &self.sample_next, &uni, &[(1, logits), (2, next), (3, out)], groups_1d(b, 64));
    }

    /// Writes [global norm, clip scale] of grads (n values) into `norm`.
    #[allow(clippy::too_many_arguments)]
    pub fn grad_norm(&self, g: &Gpu, e: &mut CommandEncoder, grads: &Buffer, partial: &Buffer, norm: &Buffer, n: usize, max_norm: f32) {
        let uni = [u(n), 0, f(max_norm), 0];
        g.dispatch(e, &self.sumsq_partial, &uni, &[(1, grads), (2, partial)], [NUM_PARTIALS as u32, 1, 1]);
        g.dispatch(e, &self.clip_scale, &uni, &[(3, partial), (4, norm)], [1, 1, 1]);
    }

    /// AdamW on params[off..off+n], reading the clip scale from `norm` (skipped when the norm is not finite).
    #[allow(clippy::too_many_arguments)]
    pub fn adamw(
        &self, g: &Gpu, e: &mut CommandEncoder, params: &Buffer, grads: &Buffer, m: &Buffer, v: &Buffer, norm: &Buffer,
        off: usize, n: usize, a: &AdamUniforms, weight_decay: f32,
    ) {
        let uni = [u(n), u(off), 0, f(a.lr), f(a.beta1), f(a.beta2), f(a.eps), f(weight_decay), f(a.b1_corr), f(a.b2_corr), 0, 0];
        g.dispatch(e, &self.adamw, &uni, &[(1, grads), (5, params), (6, m), (7, v), (8, norm)], groups_1d(n, 256));
    }
}
