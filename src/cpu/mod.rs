//! The CPU reference: every layer as a readable forward/backward pair (after llm.c's train_gpt2.c),
//! and a GPT built from them. The GPU kernels are tested against these functions.

pub mod adamw;
pub mod attention;
pub mod crossentropy;
pub mod decode;
pub mod encoder;
pub mod expf;
pub mod gelu;
pub mod gpt;
pub mod layernorm;
pub mod matmul;
pub mod residual;
pub mod rows;
