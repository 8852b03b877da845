/**
 * `analyze` and `files` on the example image the repository ships, whose construction is known:
 * 40,000 + 23 + 34 bytes in the base layer; a 60,000-byte .deb and a 30,000-byte data file in the
 * second; the third deletes the .deb and chmods the data file (a whole copy of it).
 */
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ballast, oneLineError } from '../support/cli.js';

const EXAMPLE = 'oci:examples/hello:latest';

interface Report {
  totalBytes: number;
  finalBytes: number;
  wastedBytes: number;
  deletedBytes: number;
  overwrittenBytes: number;
  efficiency: number;
  userWastedPercent: number;
  layers: { fileBytes: number; wastesBytes: number; createdBy: string }[];
  wasted: { path: string; bytes: number; reason: string; layer: number; removedBy: number }[];
  recommendations: { id: string; bytes: number }[];
  ci?: { pass: boolean; rules: { rule: string; pass: boolean; actual: number }[] };
}

async function analyze(args: string[] = []): Promise<{ code: number | null; report: Report }> {
  const result = await ballast(['analyze', '--format', 'json', ...args, EXAMPLE]);
  assert.ok(result.code === 0 || result.code === 3, result.stderr);
  return { code: result.code, report: JSON.parse(result.stdout) as Report };
}

describe('analyze', () => {
  test('the figures of the weight of an image', async () => {
    const { report } = await analyze();
    assert.equal(report.totalBytes, 40_000 + 23 + 34 + 60_000 + 30_000 + 30_000);
    assert.equal(report.finalBytes, 40_000 + 23 + 34 + 30_000);
    assert.equal(report.deletedBytes, 60_000);
    assert.equal(report.overwrittenBytes, 30_000);
    assert.equal(report.wastedBytes, report.deletedBytes + report.overwrittenBytes);
    assert.equal(report.efficiency, report.finalBytes / report.totalBytes);
    assert.equal(report.userWastedPercent, 90_000 / 120_000);
    assert.deepEqual(
      report.layers.map((l) => [l.fileBytes, l.wastesBytes]),
      [
        [40_057, 0],
        [90_000, 0],
        [30_000, 90_000],
      ],
    );
    assert.deepEqual(
      report.wasted.map((w) => [w.path, w.bytes, w.reason, w.layer, w.removedBy]),
      [
        ['var/cache/apt/archives/tool.deb', 60_000, 'deleted', 1, 2],
        ['app/data.bin', 30_000, 'overwritten', 1, 2],
      ],
    );
    const advice = new Map(report.recommendations.map((r) => [r.id, r.bytes]));
    assert.equal(advice.get('deleted-later'), 60_000);
    assert.equal(advice.get('metadata-copy'), 30_000);
  });

  test('history sizes and analyze layer sizes agree', async () => {
    const { report } = await analyze();
    const history = JSON.parse((await ballast(['history', '--format', 'json', EXAMPLE])).stdout) as {
      sizeBytes: number;
      emptyLayer: boolean;
    }[];
    assert.deepEqual(
      history
        .filter((r) => !r.emptyLayer)
        .map((r) => r.sizeBytes)
        .reverse(),
      report.layers.map((l) => l.fileBytes),
    );
  });

  test('the text report leads with the summary and names the advice', async () => {
    const result = await ballast(['analyze', EXAMPLE]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^Image {9}oci:examples\/hello:latest\nTotal size {4}160kB in 3 layers/);
    assert.match(result.stdout, /Wasted {8}90kB: 60kB deleted by later layers, 30kB overwritten/);
    assert.match(result.stdout, /saves 60kB/);
  });
});

describe('the CI gate', () => {
  test('a failing rule exits 3 and says which', async () => {
    const result = await ballast(['analyze', '--highest-wasted-bytes', '50kB', EXAMPLE]);
    assert.equal(result.code, 3, result.stderr);
    assert.match(
      result.stdout,
      /FAIL {2}highestWastedBytes: 90kB \(90000 bytes\) not <= 50kB \(50000 bytes\)/,
    );
  });
  test('generous limits pass with exit 0', async () => {
    const { code, report } = await analyze([
      '--lowest-efficiency',
      '0.4',
      '--highest-user-wasted-percent',
      '0.8',
      '--highest-wasted-bytes',
      '1MB',
      '--max-size',
      '1MiB',
    ]);
    assert.equal(code, 0);
    assert.equal(report.ci?.pass, true);
    assert.deepEqual(
      report.ci?.rules.map((r) => r.rule),
      ['lowestEfficiency', 'highestWastedBytes', 'highestUserWastedPercent', 'maxSize'],
    );
  });
  test('--ci alone applies dive defaults (efficiency 0.9)', async () => {
    const { code, report } = await analyze(['--ci']);
    assert.equal(code, 3);
    assert.equal(report.ci?.rules.find((r) => r.rule === 'lowestEfficiency')?.pass, false);
  });
  test('a .dive-ci file, and a broken one names its line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ballast-ci-'));
    const good = join(dir, 'good.yaml');
    await writeFile(good, 'rules:\n  lowestEfficiency: 0.4\n  highestUserWastedPercent: disabled\n');
    const { code } = await analyze(['--ci-config', good]);
    assert.equal(code, 0);
    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, 'rules:\n  lowestEfficiency: 0.4\n  mostWasted: 3\n');
    const result = await ballast(['analyze', '--ci-config', bad, EXAMPLE]);
    assert.equal(result.code, 2);
    assert.match(oneLineError(result), /bad\.yaml:3: .*mostWasted/);
  });
  test('a malformed limit is a usage error', async () => {
    const result = await ballast(['analyze', '--highest-wasted-bytes', 'lots', EXAMPLE]);
    assert.equal(result.code, 2);
    assert.match(oneLineError(result), /--highest-wasted-bytes/);
  });
});

describe('files', () => {
  test('the final filesystem, largest first, rows summing to the total', async () => {
    const result = await ballast(['files', '--format', 'json', EXAMPLE]);
    assert.equal(result.code, 0, result.stderr);
    const view = JSON.parse(result.stdout) as { bytes: number; rows: { path: string; bytes: number }[] };
    assert.equal(view.bytes, 70_057);
    assert.deepEqual(
      view.rows.map((r) => [r.path, r.bytes]),
      [
        ['usr', 40_000],
        ['app', 30_034],
        ['etc', 23],
        ['var', 0],
      ],
    );
  });
  test('one layer: what it wrote and what it removed', async () => {
    const result = await ballast(['files', '--format', 'json', '--layer', '2', '--depth', '5', EXAMPLE]);
    const view = JSON.parse(result.stdout) as {
      rows: { path: string; change?: string; removedBytes?: number }[];
    };
    const byPath = new Map(view.rows.map((r) => [r.path, r]));
    assert.equal(byPath.get('var/cache/apt/archives/tool.deb')?.change, 'removed');
    assert.equal(byPath.get('var/cache/apt/archives/tool.deb')?.removedBytes, 60_000);
    assert.equal(byPath.get('app/data.bin')?.change, 'changed');
  });
  test('a layer out of range', async () => {
    const result = await ballast(['files', '--layer', '7', EXAMPLE]);
    assert.equal(result.code, 2);
    assert.match(oneLineError(result), /the image has 3 layers/);
  });
});
