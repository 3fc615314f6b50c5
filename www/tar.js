// A tar archive (ustar, uncompressed) of named files, so an export is one download that keeps its
// folders: `tar xf` or Python's tarfile unpacks it.

const enc = new TextEncoder();

function field(buf, off, len, text) {
  buf.set(enc.encode(text).subarray(0, len), off);
}

function header(name, size) {
  const h = new Uint8Array(512);
  field(h, 0, 100, name);
  field(h, 100, 8, "0000644\0");
  field(h, 108, 8, "0000000\0");
  field(h, 116, 8, "0000000\0");
  field(h, 124, 12, size.toString(8).padStart(11, "0") + "\0");
  field(h, 136, 12, Math.floor(Date.now() / 1000).toString(8).padStart(11, "0") + "\0");
  field(h, 148, 8, "        "); // the checksum counts its own field as spaces
  field(h, 156, 1, "0");
  field(h, 257, 8, "ustar\u000000");
  const sum = h.reduce((a, b) => a + b, 0);
  field(h, 148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return h;
}

// files: [[path, string | Uint8Array]] → Uint8Array
export function tar(files) {
  const parts = [];
  for (const [name, data] of files) {
    const bytes = typeof data === "string" ? enc.encode(data) : data;
    parts.push(header(name, bytes.length), bytes, new Uint8Array((512 - (bytes.length % 512)) % 512));
  }
  parts.push(new Uint8Array(1024));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
