/**
 * Registry-to-registry copy and sync against their floor and skopeo, on loopback registries. Prints a
 * markdown section. Every measurement copies into a freshly started, empty registry: skopeo keeps a
 * blob cache and mounts blobs it has seen, and a registry that has the blobs would be measured instead.
 *
 *   node dist/bench/copy.js [--size-mb 480]
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  buildTinyImage,
  pushWithSkopeo,
  startRegistry,
  type TestRegistry,
} from '../test/support/registry.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'ballast.js');
const CACHE = join(tmpdir(), 'ballast-bench-copy');
const RUNS = 5;

const sizeArg = process.argv.indexOf('--size-mb');
const SIZE_MB = sizeArg > 0 ? Number(process.argv[sizeArg + 1]) : 480;

const env = { ...process.env };
delete env.NODE_EXTRA_CA_CERTS;

function run(command: string, args: string[]): Promise<{ ms: number; maxRssKb: number }> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', '%M', command, ...args], {
      env,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      if (code !== 0) reject(new Error(`${command} ${args.join(' ')} failed: ${stderr}`));
      else resolve({ ms, maxRssKb: Number(stderr.trim().split('\n').pop()) });
    });
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function httpJson(
  method: string,
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => {
        body += c.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The floor: curl streams every blob from the source into a monolithic upload, all at once, then the manifest. */
async function curlCopy(
  from: TestRegistry,
  to: TestRegistry,
  repository: string,
  tag: string,
): Promise<number> {
  const start = process.hrtime.bigint();
  const accept =
    'application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json';
  const manifest = await httpJson('GET', `${from.url}/v2/${repository}/manifests/${tag}`, { Accept: accept });
  const doc = JSON.parse(manifest.body) as {
    config: { digest: string };
    layers: { digest: string }[];
    mediaType: string;
  };
  const blobs = [doc.config.digest, ...doc.layers.map((l) => l.digest)];
  await Promise.all(
    blobs.map(async (digest) => {
      const upload = await httpJson('POST', `${to.url}/v2/${repository}/blobs/uploads/`);
      const location = new URL(String(upload.headers.location), to.url);
      location.searchParams.set('digest', digest);
      const script = `curl -sf ${from.url}/v2/${repository}/blobs/${digest} | curl -sf -X PUT -H 'Content-Type: application/octet-stream' -T - '${location.href}'`;
      const result = await new Promise<number>((resolve) => {
        spawn('sh', ['-c', script], { stdio: 'ignore' }).on('close', (code) => resolve(code ?? 1));
      });
      if (result !== 0) throw new Error(`curl copy of ${digest} failed`);
    }),
  );
  const manifestFile = join(CACHE, 'manifest.json');
  await writeFile(manifestFile, manifest.body);
  const put = spawnSync('curl', [
    '-sf',
    '-X',
    'PUT',
    '-H',
    `Content-Type: ${doc.mediaType ?? 'application/vnd.oci.image.manifest.v1+json'}`,
    '--data-binary',
    `@${manifestFile}`,
    `${to.url}/v2/${repository}/manifests/${tag}`,
  ]);
  if (put.status !== 0) throw new Error('manifest PUT failed');
  return Number(process.hrtime.bigint() - start) / 1e6;
}

async function fresh<T>(fn: (registry: TestRegistry) => Promise<T>): Promise<T> {
  const registry = await startRegistry();
  try {
    return await fn(registry);
  } finally {
    await registry.stop();
  }
}

async function main(): Promise<void> {
  await mkdir(CACHE, { recursive: true });
  const layout = join(CACHE, `layout-${SIZE_MB}-shared`);
  const layerCount = 6;
  const layerBytes = Math.round((SIZE_MB * 1e6) / layerCount);
  if (!existsSync(join(layout, 'index.json'))) {
    await rm(layout, { recursive: true, force: true });
    // Random bytes do not compress: the compressed image is SIZE_MB.
    const layers = Array.from({ length: layerCount }, (_, i) => ({
      [`data/layer-${i}.bin`]: randomBytes(layerBytes),
    }));
    await buildTinyImage(layout, { tag: 'big', layers });
    // Three images made of the big image's layers plus one small layer each: the sync workload.
    for (let variant = 0; variant < 3; variant++) {
      const tag = `shared-${variant}`;
      const bundle = join(CACHE, `bundle-${variant}`);
      await rm(bundle, { recursive: true, force: true });
      await run('umoci', ['tag', '--image', `${layout}:big`, tag]);
      await run('umoci', ['unpack', '--rootless', '--image', `${layout}:${tag}`, bundle]);
      await writeFile(join(bundle, 'rootfs', `v${variant}.txt`), `variant ${variant}\n`);
      await run('umoci', ['repack', '--image', `${layout}:${tag}`, bundle]);
      await rm(bundle, { recursive: true, force: true });
    }
  }
  const source = await startRegistry();
  try {
    await pushWithSkopeo(source, `oci:${layout}:big`, 'bench/big:1');
    for (let variant = 0; variant < 3; variant++) {
      await pushWithSkopeo(source, `oci:${layout}:shared-${variant}`, `bench/shared:${variant}`);
    }
    const src = `docker://${source.host}/bench/big:1`;
    const floor: number[] = [];
    const skopeo: number[] = [];
    const ballast: number[] = [];
    const rss: number[] = [];
    let again = 0;
    for (let i = 0; i < RUNS; i++) {
      floor.push(await fresh((dst) => curlCopy(source, dst, 'bench/big', '1')));
      skopeo.push(
        await fresh(
          async (dst) =>
            (
              await run('skopeo', [
                'copy',
                '--quiet',
                '--src-tls-verify=false',
                '--dest-tls-verify=false',
                src,
                `docker://${dst.host}/bench/big:1`,
              ])
            ).ms,
        ),
      );
      await fresh(async (dst) => {
        const first = await run(process.execPath, [
          BIN,
          'copy',
          '--quiet',
          src,
          `docker://${dst.host}/bench/big:1`,
        ]);
        ballast.push(first.ms);
        rss.push(first.maxRssKb);
        if (i === 0)
          again = (
            await run(process.execPath, [BIN, 'copy', '--quiet', src, `docker://${dst.host}/bench/big:1`])
          ).ms;
      });
    }

    // Sync: three tags sharing layers, to two destinations.
    const skopeoSync: number[] = [];
    const ballastSync: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      skopeoSync.push(
        await fresh((a) =>
          fresh(async (b) => {
            let ms = 0;
            for (const dst of [a, b]) {
              ms += (
                await run('skopeo', [
                  'sync',
                  '--src',
                  'docker',
                  '--dest',
                  'docker',
                  '--src-tls-verify=false',
                  '--dest-tls-verify=false',
                  `${source.host}/bench/shared`,
                  `${dst.host}/mirror`,
                ])
              ).ms;
            }
            return ms;
          }),
        ),
      );
      ballastSync.push(
        await fresh((a) =>
          fresh(async (b) => {
            const config = join(CACHE, 'sync.yaml');
            await writeFile(
              config,
              `images:\n  - source: ${source.host}/bench/shared\n    tagsRegex: '.*'\n    destinations:\n      - ${a.host}/mirror/shared\n      - ${b.host}/mirror/shared\n`,
            );
            return (await run(process.execPath, [BIN, 'sync', '--quiet', config])).ms;
          }),
        ),
      );
    }

    const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
    const f = median(floor);
    const k = median(skopeo);
    const b = median(ballast);
    const lines = [
      '## copy and sync between loopback registries',
      '',
      `Image: ${layerCount} layers of random bytes, ${SIZE_MB} MB compressed, in a registry on 127.0.0.1; every copy goes into a freshly started, empty registry. Medians of ${RUNS}.`,
      '',
      '| copy | time | ratio to the floor |',
      '|---|---|---|',
      `| floor: \`curl\` GET piped into a monolithic PUT, all blobs at once | ${s(f)} | 1.00 |`,
      `| \`skopeo copy\` | ${s(k)} | ${(k / f).toFixed(2)} |`,
      `| \`ballast copy\` | ${s(b)} | ${(b / f).toFixed(2)} (${(b / k).toFixed(2)} of skopeo) |`,
      `| \`ballast copy\` again, every blob already there | ${s(again)} | |`,
      '',
      `Peak RSS of \`ballast copy\`: ${Math.round(median(rss) / 1024)} MB for layers of ${Math.round(layerBytes / 1e6)} MB each (blobs are streamed, never held).`,
      '',
      '| sync: 3 tags sharing 6 layers, to 2 destinations | time | ratio |',
      '|---|---|---|',
      `| \`skopeo sync\`, once per destination | ${s(median(skopeoSync))} | 1.00 |`,
      `| \`ballast sync\` | ${s(median(ballastSync))} | ${(median(ballastSync) / median(skopeoSync)).toFixed(2)} |`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await source.stop();
  }
}

await main();
