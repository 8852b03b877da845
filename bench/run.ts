/**
 * `npm run bench`: measures ballast against its peers on this machine and writes docs/benchmarks.md.
 * Medians of repeated runs; the machine is shared and noisy, so ratios matter more than seconds.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildTinyImage, pushWithSkopeo, startRegistry } from '../test/support/registry.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'bin', 'ballast.js');

function time(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): number {
  const start = process.hrtime.bigint();
  const result = spawnSync(command, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  const elapsed = Number(process.hrtime.bigint() - start) / 1e6;
  if (result.status !== 0)
    throw new Error(`${command} ${args.join(' ')} failed: ${result.stderr?.toString()}`);
  return elapsed;
}

function median(command: string, args: string[], runs: number, env?: NodeJS.ProcessEnv): number {
  time(command, args, env); // warm the page cache and the registry
  const samples = Array.from({ length: runs }, () => time(command, args, env)).sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)]!;
}

const ms = (value: number) => `${value.toFixed(0)} ms`;

async function main(): Promise<void> {
  const sections: string[] = [];
  const withoutCa = { ...process.env };
  delete withoutCa.NODE_EXTRA_CA_CERTS;

  const bare = median(process.execPath, ['-e', '0'], 15, withoutCa);
  const version = median(process.execPath, [BIN, '--version'], 15, withoutCa);
  const versionWithCa = median(process.execPath, [BIN, '--version'], 15);
  sections.push(
    [
      '## Start-up',
      '',
      '| command | median of 15 |',
      '|---|---|',
      `| \`node -e 0\` | ${ms(bare)} |`,
      `| \`ballast --version\` | ${ms(version)} |`,
      `| \`ballast --version\` with \`NODE_EXTRA_CA_CERTS\` set (as on this machine) | ${ms(versionWithCa)} |`,
      '',
      'Node itself loads every certificate named by `NODE_EXTRA_CA_CERTS` before any script runs; the',
      "rows without it show ballast's own cost. Each command's modules load only when it runs.",
    ].join('\n'),
  );

  const registry = await startRegistry();
  const work = await mkdtemp(join(tmpdir(), 'ballast-bench-'));
  try {
    const image = await buildTinyImage(join(work, 'layout'), {
      tag: 'bench',
      layers: [
        { 'usr/lib/a.bin': randomBytes(8_000_000), 'usr/share/doc/x': 'doc'.repeat(10_000) },
        { 'opt/b.bin': randomBytes(16_000_000) },
        { 'app/c.bin': randomBytes(4_000_000) },
      ],
    });
    await pushWithSkopeo(registry, image.ref, 'bench:1');
    const ref = `${registry.host}/bench:1`;
    const skopeo = median('skopeo', ['inspect', '--tls-verify=false', `docker://${ref}`], 9);
    const inspect = median(process.execPath, [BIN, 'inspect', ref], 9, withoutCa);
    const history = median(process.execPath, [BIN, 'history', ref], 9, withoutCa);
    const skopeoRaw = median('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`], 9);
    const raw = median(process.execPath, [BIN, 'inspect', '--raw', ref], 9, withoutCa);
    sections.push(
      [
        '## inspect and history against skopeo, one loopback registry',
        '',
        'Image: three layers, 28 MB of file bytes, pushed with skopeo to a fresh `docker-registry` on',
        '127.0.0.1. `history` streams and measures every layer; `skopeo inspect` reads the manifest, config and tags.',
        '',
        '| command | median of 9 | ratio to `skopeo inspect` |',
        '|---|---|---|',
        `| \`skopeo inspect\` | ${ms(skopeo)} | 1.00 |`,
        `| \`ballast inspect\` | ${ms(inspect)} | ${(inspect / skopeo).toFixed(2)} |`,
        `| \`skopeo inspect --raw\` | ${ms(skopeoRaw)} | ${(skopeoRaw / skopeo).toFixed(2)} |`,
        `| \`ballast inspect --raw\` | ${ms(raw)} | ${(raw / skopeo).toFixed(2)} |`,
        `| \`ballast history\` | ${ms(history)} | ${(history / skopeo).toFixed(2)} |`,
      ].join('\n'),
    );
  } finally {
    await registry.stop();
    await rm(work, { recursive: true, force: true });
  }

  // The other benchmarks print their own markdown sections.
  for (const name of ['layers', 'analyze', 'copy']) {
    const script = join(ROOT, 'dist', 'bench', `${name}.js`);
    if (!existsSync(script)) continue;
    process.stderr.write(`bench: ${name}...\n`);
    const result = spawnSync(process.execPath, [script], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    if (result.status !== 0) throw new Error(`bench/${name} failed`);
    sections.push(result.stdout.trim());
  }

  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const header = [
    '# Benchmarks',
    '',
    `Written by \`npm run bench\` on ${new Date().toISOString().slice(0, 10)}: Node ${process.version}, ${cpus().length} cores (${cpu}).`,
    'Reproduce with `npm ci && npm run bench` (needs the system packages that `.ci/run` installs).',
    'Timings are medians on a shared, noisy machine: compare ratios within one run, not across runs.',
  ].join('\n');
  const text = `${[header, ...sections].join('\n\n')}\n`;
  await writeFile(join(ROOT, 'docs', 'benchmarks.md'), text);
  process.stdout.write(text);
}

await main();
