// Makes the committed screenshots small: an opaque 8-bit RGB/RGBA PNG (what Chromium writes)
// becomes a 256-colour palette PNG (median cut), deflated at level 9. Used only when the
// screenshots are updated (CONSOLE_SCREENSHOTS=update); no dependency.
import zlib from 'node:zlib';
import { crc32 } from './helpers.mjs';

function chunks(buf) {
  const out = [];
  for (let i = 8; i < buf.length;) {
    const len = buf.readUInt32BE(i);
    out.push({ type: buf.toString('latin1', i + 4, i + 8), data: buf.subarray(i + 8, i + 8 + len) });
    i += 12 + len;
  }
  return out;
}

/** The pixels of an 8-bit, non-interlaced RGB or RGBA PNG, as 0xRRGGBB numbers. */
function decode(buf) {
  const cs = chunks(buf);
  const ihdr = cs.find((c) => c.type === 'IHDR').data;
  const width = ihdr.readUInt32BE(0);
  const height = ihdr.readUInt32BE(4);
  const [depth, type, , , interlace] = ihdr.subarray(8, 13);
  if (depth !== 8 || (type !== 2 && type !== 6) || interlace !== 0) return null;
  const bpp = type === 6 ? 4 : 3;
  const raw = zlib.inflateSync(Buffer.concat(cs.filter((c) => c.type === 'IDAT').map((c) => c.data)));
  const stride = width * bpp;
  const px = new Uint32Array(width * height);
  let prev = Buffer.alloc(stride);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)];
    const line = Buffer.from(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)));
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? line[x - bpp] : 0;
      const b = prev[x];
      const c = x >= bpp ? prev[x - bpp] : 0;
      let p;
      if (f === 0) p = 0;
      else if (f === 1) p = a;
      else if (f === 2) p = b;
      else if (f === 3) p = (a + b) >> 1;
      else {
        const q = a + b - c;
        const pa = Math.abs(q - a), pb = Math.abs(q - b), pc = Math.abs(q - c);
        p = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      line[x] = (line[x] + p) & 0xff;
    }
    for (let x = 0; x < width; x++) {
      if (bpp === 4 && line[x * 4 + 3] !== 255) return null; // not opaque: leave it alone
      px[y * width + x] = (line[x * bpp] << 16) | (line[x * bpp + 1] << 8) | line[x * bpp + 2];
    }
    prev = line;
  }
  return { width, height, px };
}

const ch = (c, i) => (c >> (16 - 8 * i)) & 0xff;

/** Median cut of the colour histogram into at most 256 colours. */
function palette(hist) {
  const box = (colors) => {
    let weight = 0, axis = 0, range = -1;
    for (const c of colors) weight += hist.get(c);
    for (let i = 0; i < 3; i++) {
      let lo = 255, hi = 0;
      for (const c of colors) { const v = ch(c, i); if (v < lo) lo = v; if (v > hi) hi = v; }
      if (hi - lo > range) { range = hi - lo; axis = i; }
    }
    return { colors, weight, axis, score: colors.length < 2 ? 0 : range * Math.sqrt(weight) };
  };
  const boxes = [box([...hist.keys()])];
  while (boxes.length < 256) {
    let pick = 0;
    for (let i = 1; i < boxes.length; i++) if (boxes[i].score > boxes[pick].score) pick = i;
    const b = boxes[pick];
    if (b.score === 0) break;
    b.colors.sort((p, q) => ch(p, b.axis) - ch(q, b.axis));
    let acc = 0, cut = 1;
    for (; cut < b.colors.length - 1; cut++) { acc += hist.get(b.colors[cut - 1]); if (acc >= b.weight / 2) break; }
    boxes.splice(pick, 1, box(b.colors.slice(0, cut)), box(b.colors.slice(cut)));
  }
  return boxes.map((b) => [0, 1, 2].map((i) => Math.round(b.colors.reduce((s, c) => s + ch(c, i) * hist.get(c), 0) / b.weight)));
}

function chunk(type, data) {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** The PNG as a palette PNG, or unchanged when it is not one this handles. */
export function toPng8(buf) {
  const img = decode(buf);
  if (!img) return buf;
  const hist = new Map();
  for (const c of img.px) hist.set(c, (hist.get(c) ?? 0) + 1);
  const pal = palette(hist);
  const index = new Map();
  for (const c of hist.keys()) {
    let best = 0, bd = Infinity;
    pal.forEach((p, i) => {
      const d = (ch(c, 0) - p[0]) ** 2 * 2 + (ch(c, 1) - p[1]) ** 2 * 4 + (ch(c, 2) - p[2]) ** 2 * 3;
      if (d < bd) { bd = d; best = i; }
    });
    index.set(c, best);
  }
  const raw = Buffer.alloc((img.width + 1) * img.height);
  for (let y = 0; y < img.height; y++) {
    for (let x = 0; x < img.width; x++) raw[y * (img.width + 1) + 1 + x] = index.get(img.px[y * img.width + x]);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(img.width, 0);
  ihdr.writeUInt32BE(img.height, 4);
  ihdr[8] = 8; ihdr[9] = 3;
  const out = Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('PLTE', Buffer.from(pal.flat())),
    chunk('IDAT', zlib.deflateSync(raw, { level: 9 })),
    chunk('IEND', Buffer.alloc(0)),
  ]);
  return out.length < buf.length ? out : buf;
}
