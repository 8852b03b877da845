/**
 * Benchmark of `ballast analyze` (issue 3) on synthetic images, printed as a markdown section:
 *
 *   npx tsc -p . && node dist/bench/analyze.js [--runs 3] [--size-mb 1100] [--million 1000000]
 *
 * (a) a 1 GB-plus OCI layout (four gzip layers, ~60k files of mixed sizes, whiteouts and overwrites):
 *     `ballast analyze --format json oci:...` against only gunzipping the same blobs with node's zlib
 *     (the same two layers at a time as analyze), medians of N, and ballast's peak RSS;
 * (b) the same image as a docker-archive (uncompressed layer.tar): GB/s of archive;
 * (c) an image of one million small files: time and peak RSS.
 * Images are generated once into a cache under os.tmpdir(). Progress goes to stderr.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  createReadStream,
  createWriteStream,
  existsSync,
  linkSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as zlib from 'node:zlib';
import { tarChunks, type WriterEntry, whiteout } from '../test/support/tar-writer.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'ballast.js');

const { values, positionals } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    'size-mb': { type: 'string', default: '1100' },
    million: { type: 'string', default: '1000000' },
    // Internal: the baseline, run as its own process like ballast is.
    'gunzip-only': { type: 'boolean', default: false },
  },
  allowPositionals: true,
});

function sink(): Writable {
  return new Writable({
    write(_chunk, _encoding, callback) {
      callback();
    },
  });
}

/** The baseline: gunzip every file given, two at a time (analyze's default layer concurrency). */
async function gunzipOnly(files: string[]): Promise<void> {
  const queue = [...files];
  const worker = async () => {
    for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
      await pipeline(createReadStream(file), zlib.createGunzip(), sink());
    }
  };
  await Promise.all([worker(), worker()]);
}

/** xorshift32: cheap and seeded, so the images are the same on every run. */
function rng(seed: number): (n: number) => number {
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

/** Bytes that gzip about 2.5:1, like a layer of binaries and text: random runs between words. */
function contentPool(size: number): Buffer {
  const random = rng(11);
  const words = Array.from({ length: 512 }, (_, i) => Buffer.from(`${i.toString(36)}_w${random(1e6)} `));
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

interface LayerPlan {
  dir: string;
  bytes: number;
  files: number;
  /** Whiteouts of files of layer `deletes.layer` (every `step`-th), and overwrites likewise. */
  deletes?: { layer: number; step: number };
  overwrites?: { layer: number; step: number };
}

const pool = contentPool(32 * 1024 * 1024);

/** File sizes log-uniform between 64 B and 4 MB, scaled to add up to `total`. */
function sizes(seed: number, total: number, count: number): number[] {
  const random = rng(seed);
  const raw = Array.from({ length: count }, () =>
    Math.exp(Math.log(64) + (random(10_000) / 10_000) * Math.log(4e6 / 64)),
  );
  const scale = total / raw.reduce((sum, s) => sum + s, 0);
  return raw.map((s) => Math.min(Math.round(s * scale), pool.length));
}

const fileName = (plan: LayerPlan, i: number) => `${plan.dir}/d${Math.floor(i / 40)}/file${i}.bin`;

function* layerEntries(plans: LayerPlan[], index: number): Generator<WriterEntry> {
  const plan = plans[index]!;
  const random = rng(1000 + index);
  const own = sizes(index + 1, plan.bytes, plan.files);
  const parts = plan.dir.split('/');
  for (let i = 1; i <= parts.length; i++) yield { path: `${parts.slice(0, i).join('/')}/`, type: 'dir' };
  if (plan.deletes) {
    const lower = plans[plan.deletes.layer]!;
    for (let i = 0; i < lower.files; i += plan.deletes.step) {
      const path = fileName(lower, i);
      yield whiteout(path.slice(0, path.lastIndexOf('/')), path.slice(path.lastIndexOf('/') + 1));
    }
  }
  if (plan.overwrites) {
    const lower = plans[plan.overwrites.layer]!;
    const lowerSizes = sizes(plan.overwrites.layer + 1, lower.bytes, lower.files);
    for (let i = 1; i < lower.files; i += plan.overwrites.step) {
      const size = lowerSizes[i]!;
      const start = random(pool.length - size + 1);
      yield { path: fileName(lower, i), body: pool.subarray(start, start + size), mode: 0o755 };
    }
  }
  for (let i = 0; i < plan.files; i++) {
    if (i % 40 === 0) yield { path: `${plan.dir}/d${i / 40}/`, type: 'dir' };
    const size = own[i]!;
    const start = random(pool.length - size + 1);
    yield { path: fileName(plan, i), body: pool.subarray(start, start + size) };
    if (i % 300 === 0)
      yield {
        path: `${plan.dir}/d${Math.floor(i / 40)}/link${i}`,
        type: 'symlink',
        linkname: `file${i}.bin`,
      };
  }
}

function hashing(hash: ReturnType<typeof createHash>): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      callback(null, chunk);
    },
  });
}

interface BuiltLayer {
  tar: string;
  diffId: string;
  blob: string;
  digest: string;
  size: number;
}

/** Writes the layer tar (hashing it), then its gzip blob (hashing that). */
async function buildLayer(dir: string, name: string, entries: Iterable<WriterEntry>): Promise<BuiltLayer> {
  const tar = join(dir, `${name}.tar`);
  const diff = createHash('sha256');
  await pipeline(Readable.from(tarChunks(entries)), hashing(diff), createWriteStream(tar));
  const blobHash = createHash('sha256');
  const temp = join(dir, `${name}.tar.gz`);
  await pipeline(
    createReadStream(tar),
    zlib.createGzip({ level: 6 }),
    hashing(blobHash),
    createWriteStream(temp),
  );
  const digest = blobHash.digest('hex');
  mkdirSync(join(dir, 'layout', 'blobs', 'sha256'), { recursive: true });
  const blob = join(dir, 'layout', 'blobs', 'sha256', digest);
  renameSync(temp, blob);
  return {
    tar,
    diffId: `sha256:${diff.digest('hex')}`,
    blob,
    digest: `sha256:${digest}`,
    size: statSync(blob).size,
  };
}

function writeJsonBlob(layout: string, value: unknown): { digest: string; size: number; bytes: Buffer } {
  const bytes = Buffer.from(JSON.stringify(value));
  const hex = createHash('sha256').update(bytes).digest('hex');
  writeFileSync(join(layout, 'blobs', 'sha256', hex), bytes);
  return { digest: `sha256:${hex}`, size: bytes.length, bytes };
}

interface BenchImage {
  dir: string;
  ociRef: string;
  archive: string;
  blobs: string[];
  tarBytes: number;
  blobBytes: number;
  files: number;
}

/** An OCI layout (gzip) and a legacy docker-archive (layer.tar) of the same layers; cached under `dir`. */
async function buildImage(dir: string, layers: Iterable<WriterEntry>[], files: number): Promise<BenchImage> {
  const metaPath = join(dir, 'image.json');
  if (existsSync(metaPath)) return JSON.parse(readFileSync(metaPath, 'utf8')) as BenchImage;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const started = Date.now();
  // Two layers at a time: gzip runs on the thread pool.
  const built: BuiltLayer[] = new Array(layers.length);
  const queue = layers.map((entries, i) => ({ entries, i }));
  const worker = async () => {
    for (let job = queue.shift(); job !== undefined; job = queue.shift()) {
      built[job.i] = await buildLayer(dir, `layer${job.i}`, job.entries);
      process.stderr.write(
        `  layer ${job.i}: ${(statSync(built[job.i]!.tar).size / 1e6).toFixed(0)} MB tar\n`,
      );
    }
  };
  await Promise.all([worker(), worker()]);
  const layout = join(dir, 'layout');
  const config = {
    architecture: 'amd64',
    os: 'linux',
    config: { Cmd: ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: built.map((l) => l.diffId) },
    history: built.map((_, i) => ({ created: '2024-01-01T00:00:00Z', created_by: `synthetic layer ${i}` })),
  };
  const configBlob = writeJsonBlob(layout, config);
  const manifest = writeJsonBlob(layout, {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: {
      mediaType: 'application/vnd.oci.image.config.v1+json',
      digest: configBlob.digest,
      size: configBlob.size,
    },
    layers: built.map((l) => ({
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      digest: l.digest,
      size: l.size,
    })),
  });
  writeFileSync(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: manifest.digest,
          size: manifest.size,
          annotations: { 'org.opencontainers.image.ref.name': 'bench' },
        },
      ],
    }),
  );
  // The docker-archive: hard links of the layer tars in a staging folder, packed by GNU tar.
  const stage = join(dir, 'archive-stage');
  mkdirSync(stage, { recursive: true });
  const names: string[] = [];
  for (const layer of built) {
    const id = layer.diffId.slice(7);
    mkdirSync(join(stage, id));
    linkSync(layer.tar, join(stage, id, 'layer.tar'));
    names.push(`${id}/layer.tar`);
  }
  const configName = `${configBlob.digest.slice(7)}.json`;
  writeFileSync(join(stage, configName), configBlob.bytes);
  writeFileSync(
    join(stage, 'manifest.json'),
    JSON.stringify([{ Config: configName, RepoTags: ['bench/analyze:1'], Layers: names }]),
  );
  const archive = join(dir, 'image.tar');
  const packed = spawnSync(
    'tar',
    ['-cf', archive, '-C', stage, configName, 'manifest.json', ...names.map((n) => n.split('/')[0]!)],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  if (packed.status !== 0) throw new Error('tar failed to pack the docker-archive');
  rmSync(stage, { recursive: true, force: true });
  for (const layer of built) rmSync(layer.tar);
  const image: BenchImage = {
    dir,
    ociRef: `oci:${layout}:bench`,
    archive,
    blobs: built.map((l) => l.blob),
    tarBytes: statSync(archive).size,
    blobBytes: built.reduce((sum, l) => sum + l.size, 0),
    files,
  };
  writeFileSync(metaPath, JSON.stringify(image, null, 2));
  process.stderr.write(`  built ${dir} in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
  return image;
}

interface Run {
  seconds: number;
  /** Peak resident set, bytes. */
  rss: number;
}

const haveTime = existsSync('/usr/bin/time');

/**
 * Runs node with `args`, timing it and reading its peak RSS: GNU time's %M when /usr/bin/time is there,
 * else a preload that writes the process's own maxRSS when it exits.
 */
function runNode(args: string[]): Run {
  const rssFile = join(tmpdir(), `ballast-bench-rss-${process.pid}`);
  rmSync(rssFile, { force: true });
  const command = haveTime ? '/usr/bin/time' : process.execPath;
  const preload = `import { writeFileSync } from 'node:fs'; process.on('exit', () => writeFileSync(${JSON.stringify(rssFile)}, String(process.resourceUsage().maxRSS * 1024)));`;
  const full = haveTime
    ? ['-f', '%M', '-o', rssFile, process.execPath, ...args]
    : ['--import', `data:text/javascript,${encodeURIComponent(preload)}`, ...args];
  const start = process.hrtime.bigint();
  const result = spawnSync(command, full, { stdio: ['ignore', 'ignore', 'pipe'] });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (result.status !== 0) throw new Error(`node ${args.join(' ')} failed: ${result.stderr?.toString()}`);
  const text = readFileSync(rssFile, 'utf8').trim().split('\n').at(-1) ?? '0';
  rmSync(rssFile, { force: true });
  return { seconds, rss: haveTime ? Number(text) * 1024 : Number(text) };
}

function median(label: string, runs: number, args: string[]): Run {
  runNode(args); // warm the page cache
  const samples = Array.from({ length: runs }, () => runNode(args));
  process.stderr.write(`  ${label}: ${samples.map((s) => s.seconds.toFixed(2)).join(' ')} s\n`);
  const sorted = [...samples].sort((a, b) => a.seconds - b.seconds);
  return {
    seconds: sorted[Math.floor(sorted.length / 2)]!.seconds,
    rss: Math.max(...samples.map((s) => s.rss)),
  };
}

const mb = (bytes: number) => `${(bytes / 1e6).toFixed(0)} MB`;
const secs = (s: number) => `${s.toFixed(2)} s`;

async function main(): Promise<void> {
  const runs = Number(values.runs);
  const target = Number(values['size-mb']) * 1e6;
  const million = Number(values.million);
  const cache = join(tmpdir(), 'ballast-bench-analyze');

  // (a, b) ~1.1 GB over four layers; the upper ones delete and overwrite files of the lower ones.
  const plans: LayerPlan[] = [
    { dir: 'usr/lib', bytes: target * 0.36, files: 25_000 },
    { dir: 'opt/app', bytes: target * 0.3, files: 15_000 },
    { dir: 'usr/share/data', bytes: target * 0.22, files: 12_000, deletes: { layer: 0, step: 25 } },
    { dir: 'var/cache/build', bytes: target * 0.12, files: 8_000, overwrites: { layer: 1, step: 30 } },
  ];
  const filesA = plans.reduce((sum, p) => sum + p.files, 0);
  process.stderr.write(`preparing the ${mb(target)} image under ${cache} (once)\n`);
  const big = await buildImage(
    join(cache, `big-${values['size-mb']}mb-v1`),
    plans.map((_, i) => ({ [Symbol.iterator]: () => layerEntries(plans, i) })),
    filesA,
  );

  // (c) one million small files in one layer (0 to 1 KiB each, 1000 per directory), and a second
  // layer that whites out one directory.
  const millionEntries = function* (): Generator<WriterEntry> {
    const random = rng(99);
    yield { path: 'srv/', type: 'dir' };
    for (let i = 0; i < million; i++) {
      if (i % 1000 === 0) yield { path: `srv/d${i / 1000}/`, type: 'dir' };
      const size = random(1025);
      const start = random(pool.length - size + 1);
      yield { path: `srv/d${Math.floor(i / 1000)}/f${i}`, body: pool.subarray(start, start + size) };
    }
  };
  process.stderr.write(`preparing the ${million}-file image (once)\n`);
  const many = await buildImage(
    join(cache, `million-${million}-v1`),
    [{ [Symbol.iterator]: millionEntries }, [{ path: 'srv/', type: 'dir' }, whiteout('srv', 'd0')]],
    million,
  );

  process.stderr.write(`measuring (median of ${runs})\n`);
  const gunzip = median('gunzip only (zlib)', runs, [
    fileURLToPath(import.meta.url),
    '--gunzip-only',
    ...big.blobs,
  ]);
  const oci = median('ballast analyze oci:', runs, [BIN, 'analyze', '--format', 'json', big.ociRef]);
  const archive = median('ballast analyze docker-archive:', runs, [
    BIN,
    'analyze',
    '--format',
    'json',
    `docker-archive:${big.archive}`,
  ]);
  const manyRun = median('ballast analyze, 1M files', runs, [
    BIN,
    'analyze',
    '--format',
    'json',
    many.ociRef,
  ]);
  const manyArchive = median('ballast analyze, 1M files, docker-archive', runs, [
    BIN,
    'analyze',
    '--format',
    'json',
    `docker-archive:${many.archive}`,
  ]);
  const ratio = oci.seconds / gunzip.seconds;
  const gbps = big.tarBytes / archive.seconds / 1e9;
  const verdict = (ok: boolean) => (ok ? 'yes' : '**no**');

  const lines = [
    '## analyze: speed and memory',
    '',
    `Synthetic images generated by \`node dist/bench/analyze.js\` (cached under ${cache}): (a, b) ${mb(big.tarBytes)} of`,
    `uncompressed layers (${mb(big.blobBytes)} gzip -6) in 4 layers, ${filesA.toLocaleString('en-US')} files of 64 B to 4 MB, whiteouts and`,
    `overwrites in the upper layers; (c) ${million.toLocaleString('en-US')} files of 0 to 1 KiB in one layer (${mb(many.tarBytes)} of tar) and a whiteout`,
    `of one directory in a second. Each command is a fresh process; medians of ${runs} after one warm-up run;`,
    `peak RSS from ${haveTime ? 'GNU time (`%M`)' : "the children's getrusage"}.`,
    '',
    '| measurement | median | figure | goal / limit | met |',
    '|---|---|---|---|---|',
    `| gunzip only, node zlib, 2 layers at a time | ${secs(gunzip.seconds)} | ${(big.tarBytes / gunzip.seconds / 1e6).toFixed(0)} MB/s out | | |`,
    `| (a) \`ballast analyze --format json oci:\` | ${secs(oci.seconds)} | ${ratio.toFixed(2)}x gunzip | ≤ 1.1x / ≤ 1.3x | ${verdict(ratio <= 1.3)} |`,
    `| (a) its peak RSS | | ${mb(oci.rss)} | < 300 MB | ${verdict(oci.rss < 300e6)} |`,
    `| (b) \`ballast analyze --format json docker-archive:\` | ${secs(archive.seconds)} | ${gbps.toFixed(2)} GB/s of archive | ≥ 1 GB/s | ${verdict(gbps >= 1)} |`,
    `| (b) its peak RSS | | ${mb(archive.rss)} | | |`,
    `| (c) 1M files, \`oci:\` (gzip layer) | ${secs(manyRun.seconds)} | peak RSS ${mb(manyRun.rss)} | < 600 MB | ${verdict(manyRun.rss < 600e6)} |`,
    `| (c) 1M files, \`docker-archive:\` | ${secs(manyArchive.seconds)} | peak RSS ${mb(manyArchive.rss)} | < 600 MB | ${verdict(manyArchive.rss < 600e6)} |`,
    '',
    `Node ${process.version}, ${cpus().length} cores. The times include node's start-up and, for oci:, the sha256 check of every blob.`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

if (values['gunzip-only']) await gunzipOnly(positionals);
else await main();
