/**
 * The merged filesystem must hold a million entries in bounded memory. Measured (Node 20, x64):
 * 1.1M paths retain ~190 MB of typed arrays and under 1 MB of JS heap; peak RSS ~290 MB for the
 * whole process. The bounds below leave a margin over those figures.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { ImageAnalyzer } from '../../src/analysis/analyzer.js';
import { del, dir, file, meta } from './synthetic.test.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

function memory() {
  gc();
  gc();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, arrays: m.arrayBuffers, rss: m.rss };
}

const MB = 1e6;

it('holds a million files in bounded memory', () => {
  const files = 1_000_000;
  const before = memory();
  const analyzer = new ImageAnalyzer();
  analyzer.beginLayer(meta(0));
  for (let i = 0; i < files; i++) {
    const d = `usr/lib/pkg${Math.floor(i / 2000)}/dir${Math.floor(i / 20)}`;
    if (i % 20 === 0) analyzer.apply(dir(d));
    analyzer.apply(file(`${d}/file-${i}.so`, 1000 + (i % 5000)));
  }
  analyzer.beginLayer(meta(1));
  for (let p = 0; p < 25; p++) analyzer.apply(del(`usr/lib/pkg${p}`));
  for (let i = 0; i < 50_000; i++) analyzer.apply(file(`opt/app/node_modules/m${i % 500}/f${i}.js`, 300));
  const analysis = analyzer.finish();
  const after = memory();

  const r = analysis.report;
  assert.equal(r.wastedCount, 50_000);
  assert.equal(r.wastedBytes, r.totalBytes - r.finalBytes);
  assert.equal(r.fileCount, files - 50_000 + 50_000);
  const heap = (after.heap - before.heap) / MB;
  const arrays = (after.arrays - before.arrays) / MB;
  console.log(
    `1M files: JS heap +${heap.toFixed(1)} MB, typed arrays +${arrays.toFixed(1)} MB, rss ${(after.rss / MB).toFixed(0)} MB`,
  );
  assert.ok(heap < 40, `JS heap grew ${heap} MB`);
  assert.ok(arrays < 260, `typed arrays grew ${arrays} MB`);
  assert.ok(after.rss < 600 * MB, `rss ${after.rss / MB} MB`);
  // Keep the analysis alive until measured.
  assert.ok(analysis.merger.tree.count > files);
});
