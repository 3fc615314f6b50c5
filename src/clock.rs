//! A monotonic clock that works natively and in the browser.

/// Milliseconds from a monotonic clock (std's Instant panics on wasm32-unknown-unknown).
pub fn now_ms() -> f64 {
    #[cfg(target_arch = "wasm32")]
    {
        let perf = js_sys::Reflect::get(&js_sys::global(), &"performance".into()).ok();
        let now = perf.as_ref().and_then(|p| js_sys::Reflect::get(p, &"now".into()).ok());
        match (perf, now) {
            (Some(p), Some(f)) => js_sys::Function::from(f).call0(&p).ok().and_then(|v| v.as_f64()).unwrap_or(0.0),
            _ => 0.0,
        }
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        use std::sync::OnceLock;
        static START: OnceLock<std::time::Instant> = OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed().as_secs_f64() * 1e3
    }
}
