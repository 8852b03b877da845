/** End to end: tar layers written by GNU tar, read by src/layers, stacked by src/analysis. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { link, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { ImageAnalyzer } from '../../src/analysis/analyzer.js';
import { readLayerChanges } from '../../src/layers/changes.js';
import { meta } from './synthetic.test.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function layer(files: Record<string, string | { link: string } | { hard: string }>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'ballast-analysis-'));
  dirs.push(root);
  const tree = join(root, 'tree');
  await mkdir(tree);
  for (const [path, value] of Object.entries(files)) {
    const full = join(tree, path);
    await mkdir(join(full, '..'), { recursive: true });
    if (typeof value === 'string') await writeFile(full, value);
    else if ('link' in value) await symlink(value.link, full);
    else await link(join(tree, value.hard), full);
  }
  const tar = join(root, 'layer.tar.gz');
  execFileSync('tar', ['-czf', tar, '--owner=0', '--group=0', '--sort=name', '-C', tree, '.']);
  return tar;
}

it('analyses real tar layers with whiteouts, hardlinks and a dpkg database', async () => {
  const status =
    'Package: hello\nStatus: install ok installed\nVersion: 2.10\nArchitecture: amd64\nPriority: optional\n';
  const layers = [
    await layer({
      'usr/bin/hello': 'x'.repeat(1000),
      'usr/bin/hello-again': { hard: 'usr/bin/hello' },
      bin: { link: 'usr/bin' },
      'tmp/big': 'y'.repeat(5000),
      'var/lib/dpkg/status': status,
      'var/lib/dpkg/info/hello.list': '/.\n/bin\n/bin/hello\n/bin/hello-again\n',
    }),
    await layer({ 'tmp/.wh.big': '', 'etc/motd': 'hi' }),
  ];
  const analyzer = new ImageAnalyzer();
  for (const [index, path] of layers.entries()) {
    analyzer.beginLayer(meta(index));
    await readLayerChanges(createReadStream(path), (change) => analyzer.apply(change), {
      wantBody: (entry) => ImageAnalyzer.wantsContent(entry.path),
    });
    analyzer.endLayer();
  }
  const r = analyzer.finish().report;
  const dbBytes = status.length + '/.\n/bin\n/bin/hello\n/bin/hello-again\n'.length;
  assert.equal(r.totalBytes, 1000 + 5000 + dbBytes + 2);
  assert.equal(r.deletedBytes, 5000);
  assert.equal(r.finalBytes, 1000 + dbBytes + 2);
  assert.deepEqual(
    r.packages.map((p) => [p.name, p.bytes, p.files, p.layer]),
    [['hello', 1000, 2, 0]],
  );
  assert.equal(r.layers[1]?.filesRemoved, 1);
  assert.equal(r.recommendations.find((x) => x.id === 'deleted-later')?.bytes, 5000);
});
