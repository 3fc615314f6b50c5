//! The compiled kernels, one file of launchers per shader family beside its uniform struct.
//! Every size the shaders and their launchers share (workgroup sizes, tiles, partial sums,
//! numeric constants) is a constant here, written once into the WGSL as a header.
//! Offsets and sizes are in f32 words. Every backward kernel accumulates (+=) into zeroed gradient
//! buffers, as the CPU reference does.

mod adamw;
mod attention;
mod crossentropy;
pub use crossentropy::CeBufs;
pub use layernorm::LnOut;
mod decode;
mod layernorm;
mod matmul;
mod surrogate;

use wgpu::{ComputePipeline, Device};

pub use adamw::{AdamUniforms, AdamW};
pub use attention::AttnOffsets;
pub use layernorm::LnOffsets;
pub(crate) use matmul::Spares;
pub use matmul::{Epilogue, MatmulKind, Mm, Operands};
pub use surrogate::SurrogateBufs;

use crate::cpu::gelu::GELU_SCALE;
use crate::cpu::layernorm::LN_EPS;

/// Threads per workgroup of elementwise kernels.
pub const WG: u32 = 256;
/// Threads per workgroup of one-thread-per-row kernels.
pub const WG_ROWS: u32 = 64;
/// Both matrix kernels: each thread computes an MM_PER_THREAD² block of C in registers.
pub const MM_PER_THREAD: u32 = 4;
/// The blocked matrix kernel: MM_BLOCK_WG² threads, a (MM_PER_THREAD·MM_BLOCK_WG)² tile of C.
pub const MM_BLOCK_WG: u32 = 8;
pub const MM_BLOCK_TILE: u32 = MM_PER_THREAD * MM_BLOCK_WG;
/// The tiled matrix kernel: MM_TILE_WG² threads, an MM_TILE² tile of C per workgroup, K in steps
/// of MM_TILE_K through workgroup memory, each thread loading MM_TILE_LOADS elements of A and of B.
pub const MM_TILE_WG: u32 = 16;
pub const MM_TILE: u32 = MM_PER_THREAD * MM_TILE_WG;
pub const MM_TILE_K: u32 = 16;
pub const MM_TILE_THREADS: u32 = MM_TILE_WG * MM_TILE_WG;
pub const MM_TILE_LOADS: u32 = MM_TILE_K * MM_TILE / MM_TILE_THREADS;
/// Workgroups of the first gradient-norm pass.
pub const NUM_PARTIALS: u32 = 64;
/// The largest head size the attention kernels hold in registers.
pub const MAX_HEAD_SIZE: u32 = 128;
/// Parameter kinds the AdamW kernel tells apart (for weight decay), in groups of four.
pub const MAX_KINDS_VEC4: u32 = 4;
/// Bisection steps of the sampler's top-k and top-p thresholds (src/sample.rs mirrors them).
pub const SAMPLE_BISECT_ITERS: u32 = crate::sample::BISECT_ITERS as u32;
/// The matrix kernels' epilogue flags.
pub const MM_ACCUMULATE: u32 = 1;
pub const MM_BIAS: u32 = 2;
pub const MM_GELU: u32 = 4;
pub const MM_GELU_GRAD: u32 = 8;
pub const MM_BIAS_GRAD: u32 = 16;

/// A uniform block: a `#[repr(C)]` struct laid out as its WGSL twin, with its fields' names and
/// offsets for the test that holds the two to each other (naga reflects the WGSL side).
macro_rules! uniform {
    ($(#[$m:meta])* struct $name:ident { $($field:ident: $ty:ty,)* }) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, Default, bytemuck::Pod, bytemuck::Zeroable)]
        pub(super) struct $name {
            $($field: $ty,)*
        }

        impl $name {
            /// (field, byte offset) in declaration order, and the size.
            #[allow(dead_code)]
            pub(super) fn layout() -> (Vec<(&'static str, usize)>, usize) {
                (vec![$((stringify!($field), std::mem::offset_of!($name, $field)),)*], std::mem::size_of::<$name>())
            }
        }
    };
}
pub(crate) use uniform;

/// One uniform block on both sides: the WGSL source that declares it (after the header), its WGSL
/// name, and the Rust struct's fields (name, offset) and size.
pub struct UniformLayout {
    pub wgsl: String,
    pub wgsl_struct: &'static str,
    pub fields: Vec<(&'static str, usize)>,
    pub size: usize,
}

/// Every uniform block, for the test that reflects each WGSL struct with naga.
pub fn uniform_layouts() -> Vec<UniformLayout> {
    let with = |src: &str, wgsl_struct, (fields, size): (Vec<(&'static str, usize)>, usize)| UniformLayout {
        wgsl: format!("{}{src}", header()),
        wgsl_struct,
        fields,
        size,
    };
    vec![
        with(&matmul::SOURCES.concat(), "Mm", matmul::MmU::layout()),
        with(&matmul::SOURCES.concat(), "P", matmul::MatmulP::layout()),
        with(layernorm::SOURCES[0], "P", layernorm::LnP::layout()),
        with(layernorm::SOURCES[1], "P", layernorm::EncP::layout()),
        with(attention::SOURCE, "P", attention::AttnP::layout()),
        with(crossentropy::SOURCE, "P", crossentropy::CeP::layout()),
        with(decode::SOURCES[0], "P", decode::DecodeP::layout()),
        with(decode::SOURCES[1], "P", decode::SampleP::layout()),
        with(adamw::SOURCE, "P", adamw::AdamP::layout()),
        with(surrogate::SOURCE, "P", surrogate::SurrogateP::layout()),
    ]
}

/// The constants above, as WGSL, in front of every shader.
fn header() -> String {
    let u = |name: &str, v: u32| format!("const {name}: u32 = {v}u;\n");
    [
        u("WG", WG),
        u("WG_ROWS", WG_ROWS),
        u("MM_PER_THREAD", MM_PER_THREAD),
        u("MM_BLOCK_WG", MM_BLOCK_WG),
        u("MM_BLOCK_TILE", MM_BLOCK_TILE),
        u("MM_TILE_WG", MM_TILE_WG),
        u("MM_TILE", MM_TILE),
        u("MM_TILE_K", MM_TILE_K),
        u("MM_TILE_THREADS", MM_TILE_THREADS),
        u("MM_TILE_LOADS", MM_TILE_LOADS),
        u("NUM_PARTIALS", NUM_PARTIALS),
        u("MAX_HEAD_SIZE", MAX_HEAD_SIZE),
        u("MAX_KINDS_VEC4", MAX_KINDS_VEC4),
        u("SAMPLE_BISECT_ITERS", SAMPLE_BISECT_ITERS),
        u("MM_ACCUMULATE", MM_ACCUMULATE),
        u("MM_BIAS", MM_BIAS),
        u("MM_GELU", MM_GELU),
        u("MM_GELU_GRAD", MM_GELU_GRAD),
        u("MM_BIAS_GRAD", MM_BIAS_GRAD),
        format!("const LN_EPS: f32 = {LN_EPS:e};\n"),
        format!("const GELU_SCALE: f32 = {GELU_SCALE:?};\n"),
        // the most negative finite f32, as a starting maximum
        "const NEG_INF: f32 = -3.4028234e38;\n".to_string(),
    ]
    .concat()
}

/// How a kernel uses one storage binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    ReadWrite,
}

/// One compute pipeline with its explicit bind group layout: binding 0 is the uniform block (at a
/// dynamic offset into the recorder's arena), the others are the storage buffers named here.
#[derive(Clone, Debug)]
pub struct Kernel {
    pub(crate) id: u16,
    pub name: &'static str,
    pub(crate) pipeline: ComputePipeline,
    pub(crate) layout: wgpu::BindGroupLayout,
    pub(crate) uniform_bytes: u64,
}

/// Compiles shader sources (after the shared header) and makes kernels from their entry points.
pub(crate) struct Builder<'d> {
    device: &'d Device,
    next_id: u16,
}

impl Builder<'_> {
    pub(crate) fn module(&self, name: &str, sources: &[&str]) -> wgpu::ShaderModule {
        let src = std::iter::once(header()).chain(sources.iter().map(|s| s.to_string())).collect::<Vec<_>>().join("\n");
        self.device.create_shader_module(wgpu::ShaderModuleDescriptor { label: Some(name), source: wgpu::ShaderSource::Wgsl(src.into()) })
    }

    /// The kernel at `entry` of `module`, whose uniform block is a `U` and whose storage bindings are `binds`.
    pub(crate) fn kernel<U>(&mut self, module: &wgpu::ShaderModule, entry: &'static str, binds: &[(u32, Access)]) -> Kernel {
        let uniform_bytes = std::mem::size_of::<U>() as u64;
        let mut entries = vec![wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: true,
                min_binding_size: std::num::NonZeroU64::new(uniform_bytes),
            },
            count: None,
        }];
        entries.extend(binds.iter().map(|&(b, access)| wgpu::BindGroupLayoutEntry {
            binding: b,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only: access == Access::Read },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        }));
        let layout = self.device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(entry), entries: &entries });
        let pl = self.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(entry),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: Some(&pl),
            module,
            entry_point: Some(entry),
            compilation_options: Default::default(),
            cache: None,
        });
        self.next_id += 1;
        Kernel { id: self.next_id, name: entry, pipeline, layout, uniform_bytes }
    }
}

/// Every kernel the engine calls.
#[derive(Clone)]
pub struct Kernels {
    pub matmul_kind: MatmulKind,
    pub(crate) matmul: matmul::MatmulKernels,
    pub(crate) layernorm: layernorm::LayerNormKernels,
    pub(crate) attention: attention::AttentionKernels,
    pub(crate) crossentropy: crossentropy::CrossEntropyKernels,
    pub(crate) adamw: adamw::AdamWKernels,
    pub(crate) decode: decode::DecodeKernels,
    pub(crate) surrogate: surrogate::SurrogateKernels,
}

impl Kernels {
    pub fn new(device: &Device, matmul_kind: MatmulKind) -> Kernels {
        let mut b = Builder { device, next_id: 0 };
        Kernels {
            matmul_kind,
            matmul: matmul::MatmulKernels::new(&mut b),
            layernorm: layernorm::LayerNormKernels::new(&mut b),
            attention: attention::AttentionKernels::new(&mut b),
            crossentropy: crossentropy::CrossEntropyKernels::new(&mut b),
            adamw: adamw::AdamWKernels::new(&mut b),
            decode: decode::DecodeKernels::new(&mut b),
            surrogate: surrogate::SurrogateKernels::new(&mut b),
        }
    }
}

fn u(x: usize) -> u32 {
    x as u32
}
