//! The GPU engine: WGSL kernels (in `shaders/`) dispatched through wgpu, natively and in the browser.

pub mod context;
pub mod generate;
pub mod gpt;
pub mod kernels;
pub mod recorder;

pub use context::{GBuf, Gpu};
pub use kernels::MatmulKind;
