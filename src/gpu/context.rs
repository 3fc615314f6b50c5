//! The device, its buffers and readbacks, and the counters the benchmark reports.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::bail;
use crate::error::{Error, ErrorKind, Result};

use super::kernels::{Kernels, MatmulKind};
use super::recorder::Caches;

/// A storage buffer of f32-sized words with an identity, so bind groups can be cached by the
/// buffers they hold.
#[derive(Clone, Debug)]
pub struct GBuf {
    pub(crate) raw: wgpu::Buffer,
    pub(crate) id: u64,
    pub(crate) words: usize,
}

impl GBuf {
    pub fn words(&self) -> usize {
        self.words
    }

    pub fn bytes(&self) -> u64 {
        (self.words * 4) as u64
    }
}

/// What the engine asked of the device so far; the benchmark reads differences of these.
#[derive(Default, Debug)]
pub struct Counters {
    pub dispatches: AtomicU64,
    pub submissions: AtomicU64,
    pub readbacks: AtomicU64,
    pub buffers_created: AtomicU64,
    pub bind_groups_created: AtomicU64,
    /// CPU time spent recording and encoding commands, in nanoseconds.
    pub encode_ns: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub dispatches: u64,
    pub submissions: u64,
    pub readbacks: u64,
    pub buffers_created: u64,
    pub bind_groups_created: u64,
    pub encode_ms: f64,
}

impl Snapshot {
    pub fn since(&self, earlier: &Snapshot) -> Snapshot {
        Snapshot {
            dispatches: self.dispatches - earlier.dispatches,
            submissions: self.submissions - earlier.submissions,
            readbacks: self.readbacks - earlier.readbacks,
            buffers_created: self.buffers_created - earlier.buffers_created,
            bind_groups_created: self.bind_groups_created - earlier.bind_groups_created,
            encode_ms: self.encode_ms - earlier.encode_ms,
        }
    }
}

#[derive(Clone)]
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub kernels: Kernels,
    pub counters: Arc<Counters>,
    pub(crate) caches: Rc<RefCell<Caches>>,
    /// Buffers that stand in for the matrix kernels' unused writable bindings.
    pub(crate) spares: Rc<std::cell::OnceCell<super::kernels::Spares>>,
    next_id: Arc<AtomicU64>,
    /// The first error the device reported on its own (validation, out of memory, loss), if any.
    fault: Arc<Mutex<Option<Error>>>,
}

impl Gpu {
    /// Opens the default adapter. `matmul` forces a matrix-product kernel; None times both and keeps the faster.
    pub async fn new(matmul: Option<MatmulKind>) -> Result<Gpu> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions { power_preference: wgpu::PowerPreference::HighPerformance, ..Default::default() })
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::Device,
                    format!("no WebGPU/Vulkan adapter found ({e}); on Linux install Mesa's lavapipe (apt-get install mesa-vulkan-drivers)"),
                )
            })?;
        let info = adapter.get_info();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("rlhf-lab"),
                required_features: wgpu::Features::empty(),
                // Ask for what the adapter offers: the default 128 MiB binding limit is too small for some batches.
                required_limits: adapter.limits(),
                ..Default::default()
            })
            .await
            .map_err(|e| Error::new(ErrorKind::Device, format!("could not open the GPU device: {e}")))?;
        // Errors the device raises on its own become values (the default handler panics, which in
        // the page would take the whole module down); every readback reports them.
        let fault: Arc<Mutex<Option<Error>>> = Arc::new(Mutex::new(None));
        let f = fault.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let kind = if matches!(e, wgpu::Error::OutOfMemory { .. }) { ErrorKind::OutOfMemory } else { ErrorKind::Device };
            f.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_with(|| Error::new(kind, format!("GPU error: {e}")));
        }));
        let f = fault.clone();
        device.set_device_lost_callback(move |reason, msg| {
            let e = Error::new(ErrorKind::Device, format!("the GPU device was lost ({reason:?}: {msg})"));
            f.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
        });
        let kernels = Kernels::new(&device, MatmulKind::Blocked);
        let mut gpu = Gpu {
            device,
            queue,
            info,
            kernels,
            counters: Arc::new(Counters::default()),
            caches: Rc::new(RefCell::new(Caches::default())),
            spares: Rc::new(std::cell::OnceCell::new()),
            next_id: Arc::new(AtomicU64::new(1)),
            fault,
        };
        // Adapter info cannot decide: software adapters differ (SwiftShader favours the blocked
        // kernel by 10x, lavapipe slightly the tiled one) and the browser hides the adapter. Measure.
        gpu.kernels.matmul_kind = match matmul {
            Some(k) => k,
            None => MatmulKind::choose(&gpu).await?,
        };
        Ok(gpu)
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_blocking(matmul: Option<MatmulKind>) -> Result<Gpu> {
        pollster::block_on(Gpu::new(matmul))
    }

    /// The adapter's name without the driver details in parentheses.
    pub fn short_name(&self) -> String {
        self.info.name.split(" (").next().unwrap_or("").to_string()
    }

    pub fn adapter_name(&self) -> String {
        format!("{} ({:?}, {:?})", self.info.name, self.info.device_type, self.info.backend)
    }

    pub fn snapshot(&self) -> Snapshot {
        let c = &self.counters;
        Snapshot {
            dispatches: c.dispatches.load(Ordering::Relaxed),
            submissions: c.submissions.load(Ordering::Relaxed),
            readbacks: c.readbacks.load(Ordering::Relaxed),
            buffers_created: c.buffers_created.load(Ordering::Relaxed),
            bind_groups_created: c.bind_groups_created.load(Ordering::Relaxed),
            encode_ms: c.encode_ns.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }

    pub(crate) fn raw_buffer(&self, label: &str, bytes: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
        self.counters.buffers_created.fetch_add(1, Ordering::Relaxed);
        self.device.create_buffer(&wgpu::BufferDescriptor { label: Some(label), size: bytes, usage, mapped_at_creation: false })
    }

    pub(crate) fn fresh_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// A zeroed storage buffer of n f32-sized words (at least one, as wgpu refuses empty bindings).
    pub fn buffer(&self, label: &str, n: usize) -> GBuf {
        let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
        GBuf { raw: self.raw_buffer(label, (n.max(1) * 4) as u64, usage), id: self.fresh_id(), words: n.max(1) }
    }

    pub fn buffer_from<T: bytemuck::Pod>(&self, label: &str, data: &[T]) -> GBuf {
        let buf = self.buffer(label, std::mem::size_of_val(data) / 4);
        self.write(&buf, 0, data);
        buf
    }

    pub fn write<T: bytemuck::Pod>(&self, buf: &GBuf, offset_words: usize, data: &[T]) {
        if !data.is_empty() {
            self.queue.write_buffer(&buf.raw, (offset_words * 4) as u64, bytemuck::cast_slice(data));
        }
    }

    /// The error the device reported on its own, if any: after one, results cannot be trusted.
    pub fn check(&self) -> Result<()> {
        match self.fault.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Destroys the device, as a driver reset would (for testing recovery).
    pub fn lose_device(&self) {
        self.device.destroy();
    }

    /// Copies n values starting at `offset` (in 4-byte words) back to the CPU: its own submission.
    pub async fn read<T: bytemuck::Pod>(&self, buf: &GBuf, offset: usize, n: usize) -> Result<Vec<T>> {
        let rec = self.recorder();
        rec.submit_and_read(buf, offset, n).await
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_blocking<T: bytemuck::Pod>(&self, buf: &GBuf, offset: usize, n: usize) -> Result<Vec<T>> {
        pollster::block_on(self.read(buf, offset, n))
    }

    /// Maps a staging buffer that a submitted copy filled, and returns its first `bytes` bytes.
    pub(crate) async fn map_staging<T: bytemuck::Pod>(&self, staging: &wgpu::Buffer, bytes: u64) -> Result<Vec<T>> {
        self.counters.readbacks.fetch_add(1, Ordering::Relaxed);
        let slice = staging.slice(..bytes);
        let (tx, rx) = futures_channel::oneshot::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        #[cfg(not(target_arch = "wasm32"))]
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| Error::new(ErrorKind::Device, format!("GPU poll failed: {e}")))?;
        match rx.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => bail!(kind: ErrorKind::Device, "reading a GPU buffer failed: {e}"),
            Err(_) => bail!(kind: ErrorKind::Device, "the GPU device was lost while reading a buffer"),
        }
        let view = slice.get_mapped_range().map_err(|e| Error::new(ErrorKind::Device, format!("mapping a GPU buffer failed: {e}")))?;
        let out = bytemuck::cast_slice::<u8, T>(&view).to_vec();
        drop(view);
        staging.unmap();
        self.check()?;
        Ok(out)
    }

    /// Waits for all submitted work (natively; the browser schedules for us).
    pub async fn finish(&self) -> Result<()> {
        let rec = self.recorder();
        let probe = self.caches.borrow_mut().probe(self);
        rec.submit_and_read::<f32>(&probe, 0, 1).await.map(|_| ())
    }
}

/// Workgroup counts for n invocations in groups of `wg`, spilling into y past the 65535 limit.
pub fn groups_1d(n: usize, wg: u32) -> [u32; 3] {
    let total = n.div_ceil(wg as usize).max(1);
    if total <= 65535 {
        [total as u32, 1, 1]
    } else {
        [65535, total.div_ceil(65535) as u32, 1]
    }
}
