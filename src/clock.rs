//! A monotonic clock and a sleep that work natively and in the browser.

/// Milliseconds from a monotonic clock (std's Instant panics on wasm32-unknown-unknown).
pub fn now_ms() -> f64 {
    #[cfg(target_arch = "wasm32")]
    {
        use wasm_bindgen::JsCast;
        let global = js_sys::global();
        let perf = match global.dyn_ref::<web_sys::WorkerGlobalScope>() {
            Some(w) => w.performance(),
            None => global.dyn_ref::<web_sys::Window>().and_then(|w| w.performance()),
        };
        perf.map_or(0.0, |p| p.now())
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        use std::sync::OnceLock;
        static START: OnceLock<std::time::Instant> = OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed().as_secs_f64() * 1e3
    }
}

/// Resolves after `ms` milliseconds on the event loop (0: after the messages already queued).
#[cfg(target_arch = "wasm32")]
pub async fn sleep_ms(ms: i32) {
    use wasm_bindgen::JsCast;
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        let global = js_sys::global();
        // a Worker's scope or a window; the lab runs in a Worker, its tests may not
        let _ = match global.dyn_ref::<web_sys::WorkerGlobalScope>() {
            Some(w) => w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms),
            None => global.unchecked_ref::<web_sys::Window>().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms),
        };
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}
