//! Device, buffers, dispatch and readback: the little that every kernel call needs.

use std::sync::{Arc, Mutex};

use crate::bail;
use crate::error::{Error, Result};
use wgpu::util::DeviceExt;

use super::kernels::{Kernels, MatmulKind};

/// Size of every uniform block, in 4-byte words.
const UNIFORM_WORDS: usize = 16;

#[derive(Clone)]
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub kernels: Kernels,
    /// The first error the device reported on its own (validation, out of memory, loss), if any.
    fault: Arc<Mutex<Option<String>>>,
}

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

impl Gpu {
    /// Opens the default adapter. `matmul` forces a matrix-product kernel; None times both and keeps the faster.
    pub async fn new(matmul: Option<MatmulKind>) -> Result<Gpu> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| Error(format!("no WebGPU/Vulkan adapter found ({e}); on Linux install Mesa's lavapipe (apt-get install mesa-vulkan-drivers)")))?;
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
            .map_err(|e| Error(format!("could not open the GPU device: {e}")))?;
        // Errors the device raises on its own become values (the default handler panics, which in
        // the page would take the whole module down); every readback reports them.
        let fault: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
        let f = fault.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let mut slot = f.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert_with(|| format!("GPU error: {e}"));
        }));
        let f = fault.clone();
        device.set_device_lost_callback(move |reason, msg| {
            let mut slot = f.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert_with(|| format!("the GPU device was lost ({reason:?}: {msg})"));
        });
        let kernels = Kernels::new(&device, MatmulKind::Blocked);
        let mut gpu = Gpu { device, queue, info, kernels, fault };
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

    /// A zeroed f32 storage buffer of n values (at least one, as wgpu refuses empty bindings).
    pub fn buffer(&self, label: &str, n: usize) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: (n.max(1) * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    pub fn buffer_from<T: bytemuck::Pod>(&self, label: &str, data: &[T]) -> wgpu::Buffer {
        let buf = self.buffer(label, data.len() * std::mem::size_of::<T>() / 4);
        self.queue.write_buffer(&buf, 0, bytemuck::cast_slice(data));
        buf
    }

    pub fn write<T: bytemuck::Pod>(&self, buf: &wgpu::Buffer, offset_words: usize, data: &[T]) {
        if !data.is_empty() {
            self.queue.write_buffer(buf, (offset_words * 4) as u64, bytemuck::cast_slice(data));
        }
    }

    /// Records one kernel call: `uniforms` go to binding 0, each (binding, buffer) to its storage binding.
    pub fn dispatch(
        &self,
        enc: &mut wgpu::CommandEncoder,
        pipeline: &wgpu::ComputePipeline,
        uniforms: &[u32],
        buffers: &[(u32, &wgpu::Buffer)],
        groups: [u32; 3],
    ) {
        // Every kernel's uniform struct fits in 16 words; padding to that size lets entry points
        // of one shader share a struct while passing only the fields they use.
        assert!(uniforms.len() <= UNIFORM_WORDS, "uniform block too large");
        let mut words = uniforms.to_vec();
        words.resize(UNIFORM_WORDS, 0);
        let ubuf = self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: None,
            contents: bytemuck::cast_slice(&words),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        let mut entries = vec![wgpu::BindGroupEntry { binding: 0, resource: ubuf.as_entire_binding() }];
        entries.extend(buffers.iter().map(|(b, buf)| wgpu::BindGroupEntry { binding: *b, resource: buf.as_entire_binding() }));
        let bind = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None });
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &bind, &[]);
        pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
    }

    pub fn encoder(&self) -> wgpu::CommandEncoder {
        self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None })
    }

    pub fn submit(&self, enc: wgpu::CommandEncoder) {
        self.queue.submit([enc.finish()]);
    }

    /// The error the device reported on its own, if any: after one, results cannot be trusted.
    pub fn check(&self) -> Result<()> {
        match self.fault.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            Some(msg) => Err(Error(msg.clone())),
            None => Ok(()),
        }
    }

    /// Destroys the device, as a driver reset would (for testing recovery).
    pub fn lose_device(&self) {
        self.device.destroy();
    }

    /// Copies n values starting at `offset` (in 4-byte words) back to the CPU.
    pub async fn read<T: bytemuck::Pod>(&self, buf: &wgpu::Buffer, offset: usize, n: usize) -> Result<Vec<T>> {
        self.check()?;
        if n == 0 {
            return Ok(Vec::new());
        }
        let bytes = (n * std::mem::size_of::<T>()) as u64;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = self.encoder();
        enc.copy_buffer_to_buffer(buf, (offset * 4) as u64, &staging, 0, bytes);
        self.submit(enc);
        let slice = staging.slice(..);
        let (tx, rx) = futures_channel::oneshot::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        #[cfg(not(target_arch = "wasm32"))]
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error(format!("GPU poll failed: {e}")))?;
        match rx.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => bail!("reading a GPU buffer failed: {e}"),
            Err(_) => bail!("the GPU device was lost while reading a buffer"),
        }
        let view = slice.get_mapped_range().map_err(|e| Error(format!("mapping a GPU buffer failed: {e}")))?;
        let out = bytemuck::cast_slice::<u8, T>(&view).to_vec();
        drop(view);
        staging.unmap();
        self.check()?;
        Ok(out)
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub fn read_blocking<T: bytemuck::Pod>(&self, buf: &wgpu::Buffer, offset: usize, n: usize) -> Result<Vec<T>> {
        pollster::block_on(self.read(buf, offset, n))
    }

    /// Waits for all submitted work (natively; the browser schedules for us).
    pub async fn finish(&self) -> Result<()> {
        let probe = self.buffer("finish", 1);
        self.read::<f32>(&probe, 0, 1).await.map(|_| ())
    }
}

/// Workgroup counts for n invocations in groups of `wg`, spilling into y past the 65535 limit.
pub fn groups_1d(n: usize, wg: usize) -> [u32; 3] {
    let total = n.div_ceil(wg).max(1);
    if total <= 65535 {
        [total as u32, 1, 1]
    } else {
        [65535, total.div_ceil(65535) as u32, 1]
    }
}
