/**
 * Benchmark of the layer engine (issue 3): decompression + header parsing against plain zlib gunzip of
 * the same layer, and the seeking reader over a plain tar.
 *
 *   node dist/bench/layers.js [--size-mb 512] [--files 30000] [--runs 3]
 *
 * The synthetic layer is generated and compressed once, into a cache under os.tmpdir().
 */
import { execFileSync } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import * as zlib from 'node:zlib';
import { decompress } from '../src/layers/decompress.js';
import { measureLayer, measureLayerFile } from '../src/layers/measure.js';
import { tarChunks, type WriterEntry } from '../test/support/tar-writer.js';

const { values } = parseArgs({
  options: {
    'size-mb': { type: 'string', default: '512' },
    files: { type: 'string', default: '30000' },
    runs: { type: 'string', default: '3' },
  },
});
const totalBytes = Number(values['size-mb']) * 1024 * 1024;
const fileCount = Number(values.files);
const runs = Number(values.runs);

const cache = join(tmpdir(), 'ballast-bench-layers');
const base = join(cache, `layer-${values['size-mb']}mb-${fileCount}f-v2`);
const tarPath = `${base}.tar`;
const gzPath = `${base}.tar.gz`;
const zstPath = `${base}.tar.zst`;

/** xorshift32: cheap, seeded, and its low bits are as random as its high ones. */
function lcg(seed: number): (n: number) => number {
  let state = seed >>> 0 || 1;
  return (n) => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state % n;
  };
}

/**
 * Content that compresses roughly like a layer of binaries and text (about 2.5:1 with gzip -6): runs
 * of random bytes between words from a small vocabulary.
 */
function contentPool(size: number): Buffer {
  const random = lcg(7);
  const words = Array.from({ length: 512 }, (_, i) => Buffer.from(`${i.toString(36)}_sym${random(1e6)} `));
  const pool = Buffer.alloc(size);
  let at = 0;
  while (at < size) {
    if (random(10) < 2) {
      const run = 4 + random(24);
      for (let i = 0; i < run && at < size; i++) pool[at++] = random(256);
    } else {
      const word = words[random(words.length)]!;
      at += word.copy(pool, at, 0, Math.min(word.length, size - at));
    }
  }
  return pool;
}

/** 30k files whose sizes mix many small files with a few large ones, adding up to `total`. */
function* layerEntries(total: number, count: number): Generator<WriterEntry> {
  const random = lcg(42);
  const pool = contentPool(16 * 1024 * 1024);
  // Sizes drawn log-uniformly, then scaled so that they add up to the target.
  const raw = Array.from({ length: count }, () =>
    Math.exp(Math.log(64) + (random(10_000) / 10_000) * Math.log(2e6 / 64)),
  );
  const scale = total / raw.reduce((sum, size) => sum + size, 0);
  let dir = 0;
  for (let i = 0; i < count; i++) {
    if (i % 50 === 0) {
      dir++;
      yield { path: `usr/lib/pkg${dir}/`, type: 'dir' };
    }
    const size = Math.min(Math.round(raw[i]! * scale), pool.length);
    const start = random(pool.length - size + 1);
    const name = i % 97 === 0 ? `${'long-name-'.repeat(12)}${i}` : `file${i}.so`;
    yield { path: `usr/lib/pkg${dir}/${name}`, body: pool.subarray(start, start + size) };
    if (i % 200 === 0) yield { path: `usr/lib/pkg${dir}/link${i}`, type: 'symlink', linkname: name };
  }
}

async function prepare(): Promise<void> {
  mkdirSync(cache, { recursive: true });
  if (!existsSync(tarPath)) {
    process.stderr.write(`writing ${tarPath}\n`);
    await pipeline(
      Readable.from(tarChunks(layerEntries(totalBytes, fileCount))),
      createWriteStream(`${tarPath}.part`),
    );
    renameSync(`${tarPath}.part`, tarPath);
  }
  if (!existsSync(gzPath)) {
    process.stderr.write(`compressing ${gzPath} (gzip -6, once)\n`);
    await pipeline(
      createReadStream(tarPath),
      zlib.createGzip({ level: 6 }),
      createWriteStream(`${gzPath}.part`),
    );
    renameSync(`${gzPath}.part`, gzPath);
  }
  if (!existsSync(zstPath)) {
    try {
      // Through stdin, so that the frame has no content size, like a streamed layer.
      execFileSync('sh', ['-c', `zstd -q -3 -c < "${tarPath}" > "${zstPath}.part"`]);
      renameSync(`${zstPath}.part`, zstPath);
    } catch {
      process.stderr.write('no zstd CLI: skipping the zstd rows\n');
    }
  }
}

function sink(): Writable {
  return new Writable({
    write(_chunk, _encoding, callback) {
      callback();
    },
  });
}

async function median(label: string, work: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    await work();
    times.push(Number(process.hrtime.bigint() - start) / 1e9);
  }
  times.sort((a, b) => a - b);
  const value = times[Math.floor(times.length / 2)]!;
  process.stderr.write(`  ${label}: ${times.map((t) => t.toFixed(3)).join(' ')} s\n`);
  return value;
}

async function main(): Promise<void> {
  await prepare();
  const tarSize = statSync(tarPath).size;
  const gzSize = statSync(gzPath).size;
  const mb = tarSize / 1e6;
  // Warm the page cache so that the first timed run does not pay for the disk.
  for (const path of [tarPath, gzPath, zstPath])
    if (existsSync(path)) await pipeline(createReadStream(path), sink());

  const check = await measureLayerFile(tarPath);
  process.stdout.write(
    `layer: ${mb.toFixed(0)} MB tar, ${check.entries} entries (${check.files} files), gzip ${(gzSize / 1e6).toFixed(0)} MB; median of ${runs} runs\n`,
  );

  const rows: [string, number][] = [];
  const gunzipDefault = await median('gunzip (zlib, default 16 KiB chunks)', () =>
    pipeline(createReadStream(gzPath), zlib.createGunzip(), sink()),
  );
  rows.push(['gunzip only, default chunks', gunzipDefault]);
  const gunzipBig = await median('gunzip (zlib, 128 KiB chunks)', () =>
    pipeline(createReadStream(gzPath), zlib.createGunzip({ chunkSize: 128 * 1024 }), sink()),
  );
  rows.push(['gunzip only, 128 KiB chunks', gunzipBig]);
  const analyse = await median('gunzip + parse (measureLayer)', () => measureLayer(createReadStream(gzPath)));
  rows.push(['gunzip + parse (measureLayer)', analyse]);
  const parseStream = await median('parse a plain tar stream', () => measureLayer(createReadStream(tarPath)));
  rows.push(['parse plain tar stream', parseStream]);
  const seek = await median('seeking reader (measureLayerFile)', () => measureLayerFile(tarPath));
  rows.push(['seeking reader over plain tar', seek]);
  if (existsSync(zstPath)) {
    const zstdOnly = await median('zstd decompress only (auto decoder)', async () => {
      const layer = await decompress(createReadStream(zstPath));
      await pipeline(layer.stream, sink());
    });
    rows.push(['zstd decompress only (auto)', zstdOnly]);
    const zstdParse = await median('zstd + parse (measureLayer)', () =>
      measureLayer(createReadStream(zstPath)),
    );
    rows.push(['zstd + parse (measureLayer)', zstdParse]);
  }

  process.stdout.write('\n');
  for (const [label, seconds] of rows) {
    process.stdout.write(
      `${label.padEnd(34)} ${seconds.toFixed(3).padStart(7)} s ${(mb / seconds).toFixed(0).padStart(6)} MB/s\n`,
    );
  }
  const floor = Math.min(gunzipDefault, gunzipBig);
  process.stdout.write(
    `\nanalysis / gunzip floor: ${(analyse / floor).toFixed(2)}x (goal <= 1.1x, limit 1.3x); ` +
      `vs default-chunk gunzip ${(analyse / gunzipDefault).toFixed(2)}x\n` +
      `seeking reader: ${(tarSize / seek / 1e9).toFixed(2)} GB/s of archive (goal >= 1 GB/s)\n`,
  );
}

await main();
