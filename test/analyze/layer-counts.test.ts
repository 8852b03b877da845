/**
 * Per-layer counts through the CLI on small hand-written OCI layouts (uncompressed layers), for the
 * within-layer cases the real images do not have. docs/analyze.md: `filesRemoved` counts
 * "non-directory paths of **lower** layers it removes"; a path the layer itself wrote and then replaced
 * is own waste (`wastesOwnBytes`), not a removal.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { analyzeJson, writeLayout } from '../support/analyze-fixtures.js';
import { type WriterEntry, writeTar } from '../support/tar-writer.js';

let work: string;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'ballast-layer-counts-'));
});

after(async () => {
  await rm(work, { recursive: true, force: true });
});

const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const TAR = 'application/vnd.oci.image.layer.v1.tar';

// biome-ignore lint/suspicious/noExplicitAny: the CLI's JSON
async function analyzeLayers(name: string, layers: WriterEntry[][]): Promise<any> {
  const blobs = layers.map((entries) => writeTar(entries));
  const reference = await writeLayout(
    join(work, name),
    't',
    blobs.map((blob, i) => ({ blob, diffId: sha256(blob), mediaType: TAR, createdBy: `layer ${i}` })),
  );
  const { result, report } = await analyzeJson(reference);
  assert.equal(result.code, 0, result.stderr);
  return report;
}

const BASE: WriterEntry[] = [
  { path: 'etc/', type: 'dir' },
  { path: 'etc/hostname', body: 'h\n' },
  { path: 'lower', body: Buffer.alloc(40, 1) },
];

describe('filesRemoved and waste when a layer replaces what it wrote itself', () => {
  test('a path written twice: own waste, no removal (passes)', async () => {
    const r = await analyzeLayers('twice', [
      BASE,
      [
        { path: 'x', body: Buffer.alloc(100, 1) },
        { path: 'x', body: Buffer.alloc(10, 2) },
      ],
    ]);
    const l = r.layers[1];
    assert.deepEqual([l.filesAdded, l.filesRemoved, l.wastesBytes, l.wastesOwnBytes], [1, 0, 0, 100]);
    assert.equal(r.overwrittenBytes, 100);
  });

  test('an entry below a file the same layer wrote (x then x/y)', async () => {
    const r = await analyzeLayers('below', [
      BASE,
      [
        { path: 'x', body: Buffer.alloc(100, 1) },
        { path: 'x/y', body: Buffer.alloc(10, 2) },
      ],
    ]);
    const l = r.layers[1];
    assert.equal(l.wastesOwnBytes, 100);
    assert.equal(l.wastesBytes, 0);
    assert.equal(r.overwrittenBytes, 100);
    // Reported 1 before a15c7c5 (merge.ts ensureDir counted a file this layer wrote as removed).
    assert.equal(l.filesRemoved, 0, 'x was written by this layer, not a lower one');
  });

  test('a directory over a file the same layer wrote (x then x/)', async () => {
    const r = await analyzeLayers('dir-over', [
      BASE,
      [
        { path: 'x', body: Buffer.alloc(100, 1) },
        { path: 'x/', type: 'dir' },
      ],
    ]);
    const l = r.layers[1];
    assert.equal(l.wastesOwnBytes, 100);
    // Reported 1 before a15c7c5 (merge.ts add(), the "directory over a file" branch).
    assert.equal(l.filesRemoved, 0);
  });

  test('a file over a directory the same layer filled (d/f then d)', async () => {
    const r = await analyzeLayers('file-over', [
      BASE,
      [
        { path: 'd/', type: 'dir' },
        { path: 'd/f', body: Buffer.alloc(50, 1) },
        { path: 'd', body: Buffer.alloc(7, 1) },
      ],
    ]);
    const l = r.layers[1];
    assert.equal(r.deletedBytes, 50);
    assert.equal(l.wastesOwnBytes, 50);
    // Reported 1 before a15c7c5 (merge.ts add(): killBelow counted own-layer files below).
    assert.equal(l.filesRemoved, 0);
  });

  test('the same replacements of a lower layer are removals (passes)', async () => {
    const r = await analyzeLayers('lower', [
      [...BASE, { path: 'd/', type: 'dir' }, { path: 'd/f', body: Buffer.alloc(50, 1) }],
      [
        { path: 'lower/y', body: Buffer.alloc(10, 2) },
        { path: 'd', body: Buffer.alloc(7, 1) },
      ],
    ]);
    const l = r.layers[1];
    assert.equal(l.filesRemoved, 2);
    assert.equal(l.wastesBytes, 90);
    assert.equal(l.wastesOwnBytes, 0);
    assert.equal(r.overwrittenBytes, 40);
    assert.equal(r.deletedBytes, 50);
  });
});
