//! The GPU engine: WGSL kernels (in `shaders/`) dispatched through wgpu, natively and in the browser.

pub mod context;
pub mod generate;
pub mod gpt;
pub mod kernels;

pub use context::Gpu;
pub use kernels::MatmulKind;
