//! Recording kernel calls so that a step costs the device almost nothing to prepare: a call is a
//! small command in a list, its uniforms go into one arena written once per submission (bound at a
//! dynamic offset), and bind groups are cached by kernel and buffers, so after the first step of a
//! shape no buffer and no bind group is made. All dispatches between two copies or clears share one
//! compute pass; a submission is one command buffer.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::Ordering;

use super::context::{GBuf, Gpu};
use super::kernels::Kernel;
use crate::clock::now_ms;
use crate::error::Result;

/// Uniform blocks sit at multiples of this (WebGPU's minUniformBufferOffsetAlignment is at most 256).
const UNIFORM_ALIGN: usize = 256;
/// Storage bindings a kernel may have (binding 0 is its uniform block).
pub const MAX_BINDINGS: usize = 10;

enum Cmd {
    Dispatch {
        kernel: Kernel,
        binds: Range<usize>,
        uniform: u32,
        groups: [u32; 3],
    },
    Clear(GBuf),
    Copy {
        src: GBuf,
        src_off: u64,
        dst: GBuf,
        dst_off: u64,
        bytes: u64,
    },
    /// Bytes from the upload area into a buffer, in order with the other commands.
    Upload {
        dst: GBuf,
        dst_off: u64,
        src_off: u64,
        bytes: u64,
    },
}

/// What the device keeps between steps: the uniform arena, the bind groups, staging buffers.
#[derive(Default)]
pub(crate) struct Caches {
    arena: Option<GBuf>,
    upload: Option<GBuf>,
    bind_groups: HashMap<BindKey, wgpu::BindGroup>,
    /// Mappable buffers by size (a power of two), for readbacks.
    staging: HashMap<u64, Vec<wgpu::Buffer>>,
    probe: Option<GBuf>,
    /// Activation buffers shared by the engines of one model shape and batch (see `gpu::gpt`).
    pub(crate) acts: HashMap<(crate::config::ModelConfig, usize, usize), std::rc::Rc<dyn std::any::Any>>,
}

/// A bind group's identity: the kernel, the arena, and (binding, buffer id) of each storage binding.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct BindKey {
    kernel: u16,
    arena: u64,
    binds: [(u32, u64); MAX_BINDINGS],
}

/// The buffer in `slot` when it holds `bytes`; else a new one (the next power of two, at least 4 KiB)
/// in its place. Also returns the id of the buffer it replaced.
fn at_least(slot: &mut Option<GBuf>, gpu: &Gpu, bytes: usize, label: &str, usage: wgpu::BufferUsages) -> (GBuf, Option<u64>) {
    if let Some(b) = slot.as_ref().filter(|b| b.bytes() as usize >= bytes) {
        return (b.clone(), None);
    }
    let size = bytes.next_power_of_two().max(4096);
    let b = GBuf { raw: gpu.raw_buffer(label, size as u64, usage), id: gpu.fresh_id(), words: size / 4 };
    let replaced = slot.replace(b.clone()).map(|old| old.id);
    (b, replaced)
}

impl Caches {
    fn arena(&mut self, gpu: &Gpu, bytes: usize) -> GBuf {
        let usage = wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST;
        let (arena, replaced) = at_least(&mut self.arena, gpu, bytes, "uniform arena", usage);
        if let Some(old) = replaced {
            // bind groups of the old arena are of no more use
            self.bind_groups.retain(|k, _| k.arena != old);
        }
        arena
    }

    fn upload_area(&mut self, gpu: &Gpu, bytes: usize) -> GBuf {
        at_least(&mut self.upload, gpu, bytes, "upload area", wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST).0
    }

    fn bind_group(&mut self, gpu: &Gpu, kernel: &Kernel, arena: &GBuf, binds: &[(u32, GBuf)]) -> wgpu::BindGroup {
        let mut key = BindKey { kernel: kernel.id, arena: arena.id, binds: [(u32::MAX, 0); MAX_BINDINGS] };
        for (slot, (b, buf)) in key.binds.iter_mut().zip(binds) {
            *slot = (*b, buf.id);
        }
        self.bind_groups
            .entry(key)
            .or_insert_with(|| {
                gpu.counters.bind_groups_created.fetch_add(1, Ordering::Relaxed);
                let uniform = wgpu::BufferBinding { buffer: &arena.raw, offset: 0, size: std::num::NonZeroU64::new(kernel.uniform_bytes) };
                let mut entries = vec![wgpu::BindGroupEntry { binding: 0, resource: wgpu::BindingResource::Buffer(uniform) }];
                entries.extend(binds.iter().map(|(b, buf)| wgpu::BindGroupEntry { binding: *b, resource: buf.raw.as_entire_binding() }));
                gpu.device.create_bind_group(&wgpu::BindGroupDescriptor { label: Some(kernel.name), layout: &kernel.layout, entries: &entries })
            })
            .clone()
    }

    fn staging(&mut self, gpu: &Gpu, bytes: u64) -> wgpu::Buffer {
        let size = bytes.next_power_of_two().max(256);
        match self.staging.get_mut(&size).and_then(|v| v.pop()) {
            Some(b) => b,
            None => gpu.raw_buffer("readback", size, wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST),
        }
    }

    fn give_back(&mut self, b: wgpu::Buffer) {
        self.staging.entry(b.size()).or_default().push(b);
    }

    /// A one-word buffer to read when only the wait matters.
    pub(crate) fn probe(&mut self, gpu: &Gpu) -> GBuf {
        self.probe.get_or_insert_with(|| gpu.buffer("probe", 1)).clone()
    }
}

/// A list of commands for one submission.
pub struct Recorder {
    gpu: Gpu,
    cmds: Vec<Cmd>,
    binds: Vec<(u32, GBuf)>,
    uniforms: Vec<u8>,
    uploads: Vec<u8>,
    t0: f64,
}

impl Gpu {
    pub fn recorder(&self) -> Recorder {
        Recorder { gpu: self.clone(), cmds: Vec::new(), binds: Vec::new(), uniforms: Vec::new(), uploads: Vec::new(), t0: now_ms() }
    }
}

impl Recorder {
    pub fn gpu(&self) -> &Gpu {
        &self.gpu
    }

    pub fn is_empty(&self) -> bool {
        self.cmds.is_empty()
    }

    /// One kernel call: its uniform block, its storage buffers by binding, its workgroup counts.
    pub fn dispatch<U: bytemuck::Pod>(&mut self, kernel: &Kernel, uniform: &U, binds: &[(u32, &GBuf)], groups: [u32; 3]) {
        debug_assert_eq!(std::mem::size_of::<U>() as u64, kernel.uniform_bytes, "{}: uniform block size", kernel.name);
        debug_assert!(binds.len() <= MAX_BINDINGS);
        if groups.contains(&0) {
            return;
        }
        let off = self.uniforms.len().next_multiple_of(UNIFORM_ALIGN);
        self.uniforms.resize(off, 0);
        self.uniforms.extend_from_slice(bytemuck::bytes_of(uniform));
        let start = self.binds.len();
        self.binds.extend(binds.iter().map(|(b, buf)| (*b, (*buf).clone())));
        self.cmds.push(Cmd::Dispatch { kernel: kernel.clone(), binds: start..self.binds.len(), uniform: off as u32, groups });
    }

    /// Writes data into a buffer at `offset_words`, after the commands recorded before this one and
    /// before those recorded after (unlike a queue write, which lands before the whole submission).
    pub fn write<T: bytemuck::Pod>(&mut self, buf: &GBuf, offset_words: usize, data: &[T]) {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        if bytes.is_empty() {
            return;
        }
        let src_off = self.uploads.len() as u64;
        self.uploads.extend_from_slice(bytes);
        self.uploads.resize(self.uploads.len().next_multiple_of(4), 0);
        self.cmds.push(Cmd::Upload { dst: buf.clone(), dst_off: (offset_words * 4) as u64, src_off, bytes: bytes.len() as u64 });
    }

    pub fn clear(&mut self, buf: &GBuf) {
        self.cmds.push(Cmd::Clear(buf.clone()));
    }

    pub fn copy(&mut self, src: &GBuf, src_off_words: usize, dst: &GBuf, dst_off_words: usize, words: usize) {
        let (src_off, dst_off, bytes) = ((src_off_words * 4) as u64, (dst_off_words * 4) as u64, (words * 4) as u64);
        self.cmds.push(Cmd::Copy { src: src.clone(), src_off, dst: dst.clone(), dst_off, bytes });
    }

    /// Encodes the list into one command buffer (the uniform arena written once first).
    fn encode(&mut self, extra: impl FnOnce(&mut wgpu::CommandEncoder)) -> wgpu::CommandBuffer {
        let gpu = &self.gpu;
        let mut caches = gpu.caches.borrow_mut();
        let arena = caches.arena(gpu, self.uniforms.len().max(UNIFORM_ALIGN));
        if !self.uniforms.is_empty() {
            gpu.queue.write_buffer(&arena.raw, 0, &self.uniforms);
        }
        let upload = (!self.uploads.is_empty()).then(|| caches.upload_area(gpu, self.uploads.len()));
        if let Some(u) = &upload {
            gpu.queue.write_buffer(&u.raw, 0, &self.uploads);
        }
        let mut enc = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
        let mut pass: Option<wgpu::ComputePass<'static>> = None;
        let mut dispatches = 0;
        for cmd in &self.cmds {
            match cmd {
                Cmd::Dispatch { kernel, binds, uniform, groups } => {
                    let bg = caches.bind_group(gpu, kernel, &arena, &self.binds[binds.clone()]);
                    let p = pass.get_or_insert_with(|| {
                        enc.begin_compute_pass(&wgpu::ComputePassDescriptor { label: None, timestamp_writes: None }).forget_lifetime()
                    });
                    p.set_pipeline(&kernel.pipeline);
                    p.set_bind_group(0, &bg, &[*uniform]);
                    p.dispatch_workgroups(groups[0], groups[1], groups[2]);
                    dispatches += 1;
                }
                Cmd::Clear(buf) => {
                    pass = None;
                    enc.clear_buffer(&buf.raw, 0, None);
                }
                Cmd::Copy { src, src_off, dst, dst_off, bytes } => {
                    pass = None;
                    enc.copy_buffer_to_buffer(&src.raw, *src_off, &dst.raw, *dst_off, *bytes);
                }
                Cmd::Upload { dst, dst_off, src_off, bytes } => {
                    pass = None;
                    let src = upload.as_ref().expect("made above");
                    enc.copy_buffer_to_buffer(&src.raw, *src_off, &dst.raw, *dst_off, *bytes);
                }
            }
        }
        drop(pass);
        extra(&mut enc);
        let c = &gpu.counters;
        c.dispatches.fetch_add(dispatches, Ordering::Relaxed);
        c.submissions.fetch_add(1, Ordering::Relaxed);
        let buf = enc.finish();
        c.encode_ns.fetch_add(((now_ms() - self.t0) * 1e6) as u64, Ordering::Relaxed);
        buf
    }

    /// Submits the commands; nothing comes back.
    pub fn submit(mut self) {
        if self.cmds.is_empty() {
            return;
        }
        let cb = self.encode(|_| {});
        self.gpu.queue.submit([cb]);
    }

    /// Submits the commands with a copy of n values of `buf` at the end, and waits for those values:
    /// one submission, one readback.
    pub async fn submit_and_read<T: bytemuck::Pod>(self, buf: &GBuf, offset: usize, n: usize) -> Result<Vec<T>> {
        Ok(self.submit_and_read_parts(&[(buf, offset, n)]).await?.pop().unwrap_or_default())
    }

    /// Like `submit_and_read` for several ranges, copied side by side into one staging buffer.
    pub async fn submit_and_read_parts<T: bytemuck::Pod>(mut self, parts: &[(&GBuf, usize, usize)]) -> Result<Vec<Vec<T>>> {
        let gpu = self.gpu.clone();
        gpu.check()?;
        let size = std::mem::size_of::<T>() as u64;
        let bytes: u64 = parts.iter().map(|p| p.2 as u64 * size).sum();
        let staging = gpu.caches.borrow_mut().staging(&gpu, bytes.max(4));
        let cb = self.encode(|enc| {
            let mut at = 0;
            for (buf, offset, n) in parts {
                let len = *n as u64 * size;
                if len > 0 {
                    enc.copy_buffer_to_buffer(&buf.raw, (offset * 4) as u64, &staging, at, len);
                }
                at += len;
            }
        });
        gpu.queue.submit([cb]);
        let all: Result<Vec<T>> = if bytes == 0 { Ok(Vec::new()) } else { gpu.map_staging(&staging, bytes).await };
        gpu.caches.borrow_mut().give_back(staging);
        let mut all = all?.into_iter();
        Ok(parts.iter().map(|p| all.by_ref().take(p.2).collect()).collect())
    }
}
