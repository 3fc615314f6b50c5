// GELU, tanh form (as in GPT-2), and its derivative.

// tanh through exp, clamped: some WGSL backends overflow tanh for large arguments
fn tanh_safe(x: f32) -> f32 {
    let e = exp(-2.0 * clamp(x, -15.0, 15.0));
    return (1.0 - e) / (1.0 + e);
}

fn gelu(x: f32) -> f32 {
    return 0.5 * x * (1.0 + tanh_safe(GELU_SCALE * (x + 0.044715 * x * x * x)));
}

fn gelu_grad(x: f32) -> f32 {
    let th = tanh_safe(GELU_SCALE * (x + 0.044715 * x * x * x));
    let sech2 = 1.0 - th * th;
    return 0.5 * (1.0 + th) + x * 0.5 * sech2 * GELU_SCALE * (1.0 + 3.0 * 0.044715 * x * x);
}
