// Which build of the engine this browser runs. Both come from the same source and share the JS
// glue (scripts/build_page.sh); the relaxed one's matrix products use relaxed SIMD's fused
// multiply-add (f32x4.relaxed_madd), which a browser either validates or not: there is no asking
// at run time from inside wasm, so the page asks before it loads one.

const V128_ZERO = [0xfd, 0x0c, ...new Array(16).fill(0)];
// (module (func (result v128) (f32x4.relaxed_madd (v128.const 0) (v128.const 0) (v128.const 0))))
const PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // types: () -> v128
  0x03, 0x02, 0x01, 0x00, // one function of type 0
  0x0a, 0x3d, 0x01, 0x3b, 0x00, ...V128_ZERO, ...V128_ZERO, ...V128_ZERO, 0xfd, 0x85, 0x02, 0x0b,
]);

export const hasRelaxedSimd = () => WebAssembly.validate(PROBE);

const BUILDS = {
  relaxed: { name: "relaxed", label: "wasm SIMD with fused multiply-add", file: "./pkg/rlhf_lab_relaxed_bg.wasm" },
  plain: { name: "plain", label: "wasm SIMD", file: "./pkg/rlhf_lab_bg.wasm" },
};

/// The build to load: the one named (tests of one build), else the fastest this browser runs.
export function engineBuild(forced) {
  const b = BUILDS[forced] || (hasRelaxedSimd() ? BUILDS.relaxed : BUILDS.plain);
  return { name: b.name, label: b.label, url: new URL(b.file, import.meta.url).href };
}
