//! Turns on the engine in the browser, where the Worker's one thread runs both an iteration and
//! the person's requests. An iteration holds the turn and passes it at the end of each step (a
//! minibatch, a token of the batch's answers), so a request waiting for it (the person's own
//! question) runs between two steps instead of after the whole iteration. Natively nothing
//! interleaves: every call here is ready at once.

#[cfg(target_arch = "wasm32")]
mod imp {
    use std::cell::Cell;

    use crate::clock::{now_ms, sleep_ms};

    thread_local! {
        static HELD: Cell<bool> = const { Cell::new(false) };
        /// Requests waiting for the turn.
        static WAITING: Cell<u32> = const { Cell::new(0) };
        /// When the holder last let the event loop run.
        static LAST_PASS: Cell<f64> = const { Cell::new(0.0) };
    }

    /// How long a holder works before it lets waiting requests in, in milliseconds.
    const SLICE_MS: f64 = 40.0;

    /// The turn, held until dropped.
    pub struct Turn;

    impl Drop for Turn {
        fn drop(&mut self) {
            HELD.with(|h| h.set(false));
        }
    }

    pub async fn take() -> Turn {
        WAITING.with(|w| w.set(w.get() + 1));
        while HELD.with(|h| h.get()) {
            sleep_ms(1).await;
        }
        WAITING.with(|w| w.set(w.get() - 1));
        HELD.with(|h| h.set(true));
        LAST_PASS.with(|t| t.set(now_ms()));
        Turn
    }

    /// Lets the event loop run (messages come in), and the turn go to whoever waits for it, when
    /// the holder has worked a slice; returns with the turn held again.
    pub async fn pass() {
        if now_ms() - LAST_PASS.with(|t| t.get()) < SLICE_MS {
            return;
        }
        sleep_ms(0).await;
        if HELD.with(|h| h.get()) && WAITING.with(|w| w.get()) > 0 {
            HELD.with(|h| h.set(false));
            while WAITING.with(|w| w.get()) > 0 || HELD.with(|h| h.get()) {
                sleep_ms(1).await;
            }
            HELD.with(|h| h.set(true));
        }
        LAST_PASS.with(|t| t.set(now_ms()));
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    pub struct Turn;

    pub async fn take() -> Turn {
        Turn
    }

    pub async fn pass() {}
}

pub use imp::{pass, take, Turn};
