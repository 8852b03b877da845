import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { type Change, changeOf, layerChanges, readLayerChanges } from '../../src/layers/changes.js';
import type { TarEntry } from '../../src/layers/tar.js';
import { chunked, opaque, whiteout, writeTar } from '../support/tar-writer.js';

const LAYER = writeTar([
  { path: './', type: 'dir' },
  { path: 'etc/', type: 'dir', mode: 0o755, uid: 0, gid: 0 },
  whiteout('etc', 'old.conf'),
  whiteout('', 'tmp'),
  opaque('var/cache'),
  opaque(''),
  { path: 'var/cache/apt/pkgcache.bin', body: 'x'.repeat(1000), mode: 0o600, uid: 7, gid: 8 },
  { path: 'usr/bin/tool', body: 'y'.repeat(50) },
  { path: 'usr/bin/tool-alias', type: 'hardlink', linkname: 'usr/bin/tool' },
  { path: 'usr/bin/sym', type: 'symlink', linkname: 'tool' },
  { path: 'dev/null', type: 'char', devmajor: 1, devminor: 3 },
  { path: 'usr/bin/tool', body: 'z'.repeat(20) },
  { path: '.wh..wh.plnk/123.456', body: 'aufs' },
  { path: 'etc/.wh..wh.aufs', body: '' },
  { path: 'etc/.wh.', body: '' },
  { path: '../escape', body: 'evil' },
  { path: 'var/lib/dpkg/status', body: 'Package: a\n' },
]);

const EXPECTED: Change[] = [
  {
    kind: 'add',
    path: 'etc',
    type: 'dir',
    size: 0,
    mode: 0o755,
    uid: 0,
    gid: 0,
    mtime: 1700000000,
    linkname: '',
    body: undefined,
    index: 1,
  },
  { kind: 'delete', path: 'etc/old.conf', index: 2 },
  { kind: 'delete', path: 'tmp', index: 3 },
  { kind: 'opaque', path: 'var/cache', index: 4 },
  { kind: 'opaque', path: '', index: 5 },
  {
    kind: 'add',
    path: 'var/cache/apt/pkgcache.bin',
    type: 'file',
    size: 1000,
    mode: 0o600,
    uid: 7,
    gid: 8,
    mtime: 1700000000,
    linkname: '',
    body: undefined,
    index: 6,
  },
];

function simplify(change: Change) {
  return change.kind === 'add'
    ? {
        kind: change.kind,
        path: change.path,
        type: change.type,
        size: change.size,
        linkname: change.linkname,
      }
    : { kind: change.kind, path: change.path };
}

describe('change records', () => {
  it('turns whiteouts, opaque markers and entries into records, in archive order', async () => {
    const changes: Change[] = [];
    const result = await readLayerChanges(chunked(gzipSync(LAYER), 999), (change) => changes.push(change));
    assert.deepEqual(changes.slice(0, EXPECTED.length), EXPECTED);
    assert.deepEqual(changes.map(simplify).slice(EXPECTED.length), [
      { kind: 'add', path: 'usr/bin/tool', type: 'file', size: 50, linkname: '' },
      { kind: 'add', path: 'usr/bin/tool-alias', type: 'hardlink', size: 0, linkname: 'usr/bin/tool' },
      { kind: 'add', path: 'usr/bin/sym', type: 'symlink', size: 0, linkname: 'tool' },
      { kind: 'add', path: 'dev/null', type: 'char', size: 0, linkname: '' },
      // Written twice in one layer: two records, the later one wins in analysis.
      { kind: 'add', path: 'usr/bin/tool', type: 'file', size: 20, linkname: '' },
      { kind: 'add', path: 'var/lib/dpkg/status', type: 'file', size: 11, linkname: '' },
    ]);
    assert.equal(result.changes, changes.length);
    assert.deepEqual(result.skipped, { root: 1, unsafe: 1, 'aufs-metadata': 2, 'invalid-whiteout': 1 });
    assert.equal(result.compression, 'gzip');
    assert.equal(result.entries, 17);
    assert.equal(result.whiteouts, 6);
    assert.equal(result.fileBytes, 1000 + 50 + 20 + 4 + 4 + 11);
    assert.deepEqual(
      result.issues.map((issue) => issue.code),
      ['path-escapes', 'aufs-metadata', 'aufs-metadata', 'invalid-whiteout'],
    );
    assert.equal(result.issueCount, 4);
  });

  it('gives the same records through the async iterator', async () => {
    const viaCallback: Change[] = [];
    await readLayerChanges(chunked(LAYER, 4096), (change) => viaCallback.push(change));
    const viaIterator: Change[] = [];
    for await (const change of layerChanges(chunked(gzipSync(LAYER), 100))) viaIterator.push(change);
    assert.deepEqual(viaIterator, viaCallback);
  });

  it('hands over the bodies of the package databases asked for', async () => {
    const changes: Change[] = [];
    await readLayerChanges(chunked(gzipSync(LAYER), 4096), (change) => changes.push(change), {
      wantBody: (entry) => entry.path === 'var/lib/dpkg/status',
    });
    const withBodies = changes.filter((change) => change.kind === 'add' && change.body !== undefined);
    assert.deepEqual(
      withBodies.map((change) => change.kind === 'add' && [change.path, change.body!.toString()]),
      [['var/lib/dpkg/status', 'Package: a\n']],
    );
  });

  it('names the layer in its errors', async () => {
    const gz = gzipSync(LAYER);
    await assert.rejects(
      readLayerChanges(chunked(gz.subarray(0, gz.length - 10), 512), () => {}, { what: 'layer 3 of test' }),
      /^BallastError: layer 3 of test: truncated gzip data/,
    );
  });

  it('keeps whiteout records apart from regular names that merely contain .wh.', () => {
    const base: TarEntry = {
      path: '',
      type: 'file',
      typeflag: '0',
      size: 3,
      mode: 0o644,
      uid: 0,
      gid: 0,
      mtime: 0,
      uname: '',
      gname: '',
      linkname: '',
      offset: 0,
      dataOffset: 512,
      unsafe: false,
      body: undefined,
    };
    const kind = (path: string) => {
      const change = changeOf({ ...base, path }, 0);
      return typeof change === 'string' ? change : `${change.kind} ${change.path}`;
    };
    assert.equal(kind('usr/share/doc/a.wh.b'), 'add usr/share/doc/a.wh.b');
    assert.equal(kind('a/.wh.b'), 'delete a/b');
    assert.equal(kind('.wh.b.wh.c'), 'delete b.wh.c');
    assert.equal(kind('a/.wh..wh..opq'), 'opaque a');
    assert.equal(kind('a/.wh..wh.plnk'), 'aufs-metadata');
    assert.equal(kind('a/.wh..'), 'invalid-whiteout');
    assert.equal(kind(''), 'root');
  });
});
