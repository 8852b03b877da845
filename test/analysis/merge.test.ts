import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ImageAnalyzer } from '../../src/analysis/analyzer.js';
import { BallastError } from '../../src/errors.js';
import { del, dir, file, hardlink, meta, opq, run, symlink, visible } from './synthetic.test.js';

/** The invariants every analysis must keep. */
function checkTotals(a: ReturnType<typeof run>): void {
  const r = a.report;
  assert.equal(r.wastedBytes, r.totalBytes - r.finalBytes);
  assert.equal(r.wastedBytes, r.deletedBytes + r.overwrittenBytes);
  assert.equal(
    r.layers.reduce((t, l) => t + l.fileBytes, 0),
    r.totalBytes,
  );
  assert.equal(
    r.layers.reduce((t, l) => t + l.wastesBytes + l.wastesOwnBytes, 0),
    r.wastedBytes,
  );
  assert.equal(
    r.layers.reduce((t, l) => t + l.finalBytes, 0),
    r.finalBytes,
  );
  const sum = Object.values(visible(a)).reduce((t, b) => t + b, 0);
  assert.equal(sum, r.finalBytes);
  assert.equal(a.cumBytes[0], r.finalBytes);
}

describe('merged filesystem: replacement rules', () => {
  it('a file over a file: the lower one is overwritten', () => {
    const a = run([[dir('etc'), file('etc/a', 100)], [file('etc/a', 50, { mode: 0o600 })]]);
    checkTotals(a);
    const r = a.report;
    assert.deepEqual([r.totalBytes, r.finalBytes, r.overwrittenBytes, r.deletedBytes], [150, 50, 100, 0]);
    assert.deepEqual(r.wasted, [
      {
        path: 'etc/a',
        bytes: 100,
        reason: 'overwritten',
        metadataOnly: false,
        changed: [],
        layer: 0,
        removedBy: 1,
      },
    ]);
    assert.equal(r.layers[0]?.filesAdded, 1);
    assert.equal(r.layers[1]?.filesChanged, 1);
    assert.equal(r.layers[1]?.filesAdded, 0);
    assert.equal(r.layers[1]?.wastesBytes, 100);
    assert.equal(r.layers[0]?.finalBytes, 0);
    assert.equal(r.layers[1]?.finalBytes, 50);
  });

  it('a directory over a file replaces the file', () => {
    const a = run([[file('x', 10)], [dir('x'), file('x/y', 5)]]);
    checkTotals(a);
    assert.deepEqual(visible(a), { 'x/y': 5 });
    assert.equal(a.report.overwrittenBytes, 10);
    assert.equal(a.report.layers[1]?.filesRemoved, 1);
    assert.equal(a.report.layers[1]?.filesAdded, 1);
  });

  it('an entry below a lower file replaces the file by an implicit directory', () => {
    const a = run([[file('x', 10)], [file('x/y', 5)]]);
    checkTotals(a);
    assert.deepEqual(visible(a), { 'x/y': 5 });
    assert.equal(a.report.overwrittenBytes, 10);
  });

  it('a file over a directory with children removes all below it', () => {
    const a = run([
      [dir('d'), file('d/a', 10), dir('d/sub'), file('d/sub/b', 20), file('keep', 1)],
      [file('d', 7)],
    ]);
    checkTotals(a);
    assert.deepEqual(visible(a), { d: 7, keep: 1 });
    const r = a.report;
    assert.deepEqual([r.totalBytes, r.finalBytes, r.deletedBytes, r.overwrittenBytes], [38, 8, 30, 0]);
    assert.equal(r.layers[1]?.filesRemoved, 2);
    assert.equal(r.layers[1]?.filesChanged, 1);
    assert.deepEqual(
      r.wasted.map((w) => [w.path, w.bytes, w.reason]),
      [
        ['d/sub/b', 20, 'deleted'],
        ['d/a', 10, 'deleted'],
      ],
    );
  });

  it('a directory over a directory merges', () => {
    const a = run([
      [dir('d', { mode: 0o700 }), file('d/a', 10)],
      [dir('d', { mode: 0o755 }), file('d/b', 5)],
    ]);
    checkTotals(a);
    assert.deepEqual(visible(a), { 'd/a': 10, 'd/b': 5 });
    assert.equal(a.report.wastedBytes, 0);
    assert.equal(a.report.layers[1]?.filesChanged, 0);
  });

  it('a whiteout of a directory removes it and everything below', () => {
    const a = run([
      [dir('d'), file('d/a', 10), file('d/b', 20), symlink('d/l', 'a'), file('e', 5)],
      [del('d')],
    ]);
    checkTotals(a);
    assert.deepEqual(visible(a), { e: 5 });
    assert.equal(a.report.deletedBytes, 30);
    assert.equal(a.report.layers[1]?.filesRemoved, 3);
    assert.equal(a.report.layers[1]?.wastesBytes, 30);
  });

  it('a whiteout of a file, and of a path that does not exist', () => {
    const a = run([
      [file('a', 10), file('b', 3)],
      [del('a'), del('nothing/here')],
    ]);
    checkTotals(a);
    assert.deepEqual(visible(a), { b: 3 });
    assert.deepEqual(a.report.wasted[0], {
      path: 'a',
      bytes: 10,
      reason: 'deleted',
      metadataOnly: false,
      changed: [],
      layer: 0,
      removedBy: 1,
    });
  });

  it('an opaque directory hides lower content, not the same layer’s, before or after the marker', () => {
    const a = run([
      [dir('d'), file('d/a', 10), dir('d/sub'), file('d/sub/b', 20), file('d/sub/c', 40), file('other', 1)],
      // d/sub is emitted again in the upper layer: still its lower content goes.
      [dir('d'), file('d/c', 3), dir('d/sub'), file('d/sub/c', 6), opq('d'), file('d/e', 4)],
    ]);
    checkTotals(a);
    assert.deepEqual(visible(a), { 'd/c': 3, 'd/e': 4, 'd/sub/c': 6, other: 1 });
    // d/a and d/sub/b deleted by the opaque dir; d/sub/c overwritten by the new d/sub/c.
    assert.equal(a.report.deletedBytes, 30);
    assert.equal(a.report.overwrittenBytes, 40);
    assert.equal(a.report.layers[1]?.filesRemoved, 2);
  });

  it('an opaque marker on a directory new in the layer removes nothing', () => {
    const a = run([[file('x', 1)], [dir('n'), opq('n'), file('n/f', 2)]]);
    checkTotals(a);
    assert.deepEqual(visible(a), { 'n/f': 2, x: 1 });
    assert.equal(a.report.wastedBytes, 0);
  });

  it('an opaque root hides every lower path', () => {
    const a = run([
      [file('a', 1), dir('b'), file('b/c', 2)],
      [opq(''), file('z', 3)],
    ]);
    checkTotals(a);
    assert.deepEqual(visible(a), { z: 3 });
    assert.equal(a.report.deletedBytes, 3);
  });

  it('a whiteout then the path again in the same layer: deleted, then added', () => {
    const a = run([[file('a', 10)], [del('a'), file('a', 20)]]);
    checkTotals(a);
    assert.deepEqual(visible(a), { a: 20 });
    assert.equal(a.report.deletedBytes, 10);
    assert.equal(a.report.wasted[0]?.reason, 'deleted');
  });

  it('a path then its whiteout in the same layer: the whiteout only applies below', () => {
    const a = run([
      [dir('d'), file('d/old', 10), file('a', 5)],
      [file('a', 20), dir('d'), file('d/new', 1), del('a'), del('d')],
    ]);
    checkTotals(a);
    assert.deepEqual(visible(a), { a: 20, 'd/new': 1 });
    assert.equal(a.report.overwrittenBytes, 5);
    assert.equal(a.report.deletedBytes, 10);
  });

  it('a whiteout, then the path again in a later layer', () => {
    const a = run([[dir('d'), file('d/a', 10)], [del('d')], [dir('d'), file('d/a', 30)]]);
    checkTotals(a);
    assert.deepEqual(visible(a), { 'd/a': 30 });
    assert.equal(a.report.deletedBytes, 10);
    assert.equal(a.report.layers[2]?.filesAdded, 1);
    assert.equal(a.report.layers[2]?.filesChanged, 0);
    assert.equal(a.report.wasted[0]?.removedBy, 1);
  });

  it('a path written twice in one layer: the first is overwritten, counted once as added', () => {
    const a = run([[file('a', 10), file('a', 15)]]);
    checkTotals(a);
    const r = a.report;
    assert.deepEqual([r.totalBytes, r.finalBytes, r.overwrittenBytes], [25, 15, 10]);
    assert.equal(r.layers[0]?.filesAdded, 1);
    assert.equal(r.layers[0]?.wastesBytes, 0);
    assert.equal(r.layers[0]?.wastesOwnBytes, 10);
    assert.equal(r.wasted[0]?.layer, 0);
    assert.equal(r.wasted[0]?.removedBy, 0);
  });
});

describe('merged filesystem: hardlinks', () => {
  it('counts the bytes of hardlinked content once', () => {
    const a = run([[file('f', 100), hardlink('h', 'f'), hardlink('h2', 'f')]]);
    checkTotals(a);
    assert.equal(a.report.totalBytes, 100);
    assert.equal(a.report.finalBytes, 100);
    assert.deepEqual(visible(a), { f: 100, h: 0, h2: 0 });
  });

  it('a hardlink whose target is later deleted keeps the bytes visible', () => {
    const a = run([[file('f', 100), hardlink('h', 'f')], [del('f')]]);
    checkTotals(a);
    assert.equal(a.report.finalBytes, 100);
    assert.equal(a.report.wastedBytes, 0);
    assert.deepEqual(visible(a), { h: 100 });
    assert.deepEqual(a.report.largestFiles[0], { path: 'h', bytes: 100, files: 1, layer: 0 });
  });

  it('deleting every path of hardlinked content wastes it once', () => {
    const a = run([
      [file('f', 100), hardlink('h', 'f')],
      [del('f'), del('h')],
    ]);
    checkTotals(a);
    assert.equal(a.report.deletedBytes, 100);
    assert.equal(a.report.wasted.length, 1);
    assert.equal(a.report.wasted[0]?.path, 'h');
  });

  it('overwriting the target leaves the link on the old content', () => {
    const a = run([[file('f', 100), hardlink('h', 'f')], [file('f', 10)]]);
    checkTotals(a);
    assert.deepEqual(visible(a), { f: 10, h: 100 });
    assert.equal(a.report.wastedBytes, 0);
  });

  it('a hardlink to nothing is reported and counts 0', () => {
    const a = run([[hardlink('h', 'missing')]]);
    checkTotals(a);
    assert.equal(a.report.issues[0]?.code, 'dangling-hardlink');
  });
});

describe('figures', () => {
  it('computes efficiency and userWastedPercent by hand', () => {
    // Layer 0: 1000 bytes base. Layer 1 adds 400 (of which a 300-byte tarball). Layer 2 deletes the
    // tarball and chmods a 100-byte file of layer 1 (copying it again).
    const a = run([
      [dir('usr'), file('usr/base', 1000)],
      [file('tmp.tgz', 300), file('app', 100, { mode: 0o644 })],
      [del('tmp.tgz'), file('app', 100, { mode: 0o755 })],
    ]);
    checkTotals(a);
    const r = a.report;
    assert.equal(r.totalBytes, 1500);
    assert.equal(r.finalBytes, 1100);
    assert.equal(r.deletedBytes, 300);
    assert.equal(r.overwrittenBytes, 100);
    assert.equal(r.efficiency, 1100 / 1500);
    // dive: wasted over the bytes of all layers but the first (400 + 100).
    assert.equal(r.userWastedPercent, 400 / 500);
    const chmod = r.wasted.find((w) => w.path === 'app');
    assert.equal(chmod?.metadataOnly, true);
    assert.deepEqual(chmod?.changed, ['mode']);
    assert.deepEqual(
      r.layers.map((l) => [
        l.index,
        l.fileBytes,
        l.finalBytes,
        l.filesAdded,
        l.filesChanged,
        l.filesRemoved,
        l.wastesBytes,
      ]),
      [
        [0, 1000, 1000, 1, 0, 0, 0],
        [1, 400, 0, 2, 0, 0, 0],
        [2, 100, 100, 0, 1, 1, 400],
      ],
    );
    assert.equal(r.layers[1]?.createdBy, 'layer 1');
    assert.equal(r.layers[1]?.compressedBytes, 1001);
    assert.equal(r.fileCount, 2);
  });

  it('an empty image has efficiency 1 and no waste', () => {
    const a = run([[dir('etc')]]);
    assert.equal(a.report.efficiency, 1);
    assert.equal(a.report.userWastedPercent, 0);
    assert.equal(a.report.totalBytes, 0);
  });

  it('a same-size rewrite with the same metadata is metadataOnly with nothing changed', () => {
    const a = run([
      [file('a', 10, { uid: 1 })],
      [file('a', 10, { uid: 1 })],
      [file('a', 10, { uid: 2, gid: 3 })],
    ]);
    assert.deepEqual(
      a.report.wasted.map((w) => [w.layer, w.metadataOnly, w.changed]),
      [
        [0, true, []],
        [1, true, ['uid', 'gid']],
      ],
    );
  });

  it('lists the largest files and directories of the final filesystem', () => {
    const a = run(
      [[dir('a'), file('a/x', 5), file('a/y', 7), dir('b'), dir('b/c'), file('b/c/z', 20), file('t', 1)]],
      {
        top: 2,
      },
    );
    assert.deepEqual(a.report.largestFiles, [
      { path: 'b/c/z', bytes: 20, files: 1, layer: 0 },
      { path: 'a/y', bytes: 7, files: 1, layer: 0 },
    ]);
    assert.deepEqual(a.report.largestDirectories, [
      { path: 'b', bytes: 20, files: 1 },
      { path: 'b/c', bytes: 20, files: 1 },
    ]);
  });

  it('limits the wasted list but counts every wasted path', () => {
    const a = run(
      [
        [file('a', 1), file('b', 2), file('c', 3)],
        [del('a'), del('b'), del('c')],
      ],
      { wastedLimit: 2 },
    );
    assert.equal(a.report.wastedCount, 3);
    assert.deepEqual(
      a.report.wasted.map((w) => w.path),
      ['c', 'b'],
    );
  });
});

describe('analyzer input', () => {
  it('requires layers bottom first', () => {
    const analyzer = new ImageAnalyzer();
    assert.throws(
      () => analyzer.beginLayer(meta(1)),
      (e: unknown) => BallastError.is(e) && /expected layer 0/.test(e.message),
    );
    assert.throws(
      () => analyzer.apply(file('a', 1)),
      (e: unknown) => BallastError.is(e),
    );
  });

  it('keeps names of any script, and finds them again', () => {
    const a = run([
      [file('usr/share/日本/файл.txt', 5), file('usr/share/café', 2)],
      [file('usr/share/日本/файл.txt', 6)],
    ]);
    checkTotals(a);
    assert.deepEqual(visible(a), { 'usr/share/café': 2, 'usr/share/日本/файл.txt': 6 });
    assert.equal(a.report.wasted[0]?.path, 'usr/share/日本/файл.txt');
  });

  it('resolves paths through symlinks in directory components', () => {
    const a = run([
      [
        dir('usr'),
        dir('usr/lib'),
        file('usr/lib/libc.so', 9),
        symlink('lib', 'usr/lib'),
        symlink('usr/lib/abs', '/usr/lib'),
        symlink('l2', 'usr/lib/../lib'),
      ],
    ]);
    const tree = a.merger.tree;
    const target = tree.find('usr/lib/libc.so');
    assert.equal(a.resolve('lib/libc.so'), target);
    assert.equal(a.resolve('/usr/lib/abs/libc.so'), target);
    assert.equal(a.resolve('l2/libc.so'), target);
    assert.equal(a.resolve('lib/missing'), -1);
    // The last component is not followed: the symlink itself.
    assert.equal(a.resolve('lib'), tree.find('lib'));
  });
});

describe('files view', () => {
  const image = () =>
    run([
      [
        dir('usr'),
        dir('usr/lib'),
        file('usr/lib/a', 100),
        file('usr/lib/b', 50),
        dir('usr/bin'),
        file('usr/bin/sh', 30),
        file('etc', 1),
      ],
      [file('usr/lib/a', 10), del('usr/bin'), dir('opt'), file('opt/big', 500)],
    ]);

  it('lists the final filesystem largest first, to a depth', () => {
    const view = image().files({ depth: 1 });
    assert.equal(view.bytes, 561);
    assert.deepEqual(
      view.rows.map((r) => [r.path, r.bytes, r.files, r.type]),
      [
        ['opt', 500, 1, 'dir'],
        ['usr', 60, 2, 'dir'],
        ['etc', 1, 1, 'file'],
      ],
    );
    const deeper = image().files({ path: '/usr', depth: 2, limit: 2 });
    assert.deepEqual(
      deeper.rows.map((r) => [r.path, r.bytes]),
      [
        ['usr/lib', 60],
        ['usr/lib/b', 50],
      ],
    );
  });

  it('lists one layer’s changes with what they removed', () => {
    const view = image().files({ layer: 1, depth: 3 });
    assert.equal(view.bytes, 510);
    assert.equal(view.removedBytes, 30);
    const rows = Object.fromEntries(view.rows.map((r) => [r.path, r]));
    assert.deepEqual(rows['opt/big'], {
      path: 'opt/big',
      type: 'file',
      bytes: 500,
      files: 1,
      change: 'added',
    });
    assert.equal(rows['usr/lib/a']?.change, 'changed');
    assert.equal(rows['usr/bin']?.change, 'removed');
    assert.equal(rows['usr/bin']?.removedBytes, 30);
    assert.equal(rows.usr?.change, undefined);
  });

  it('rejects a layer that does not exist and a missing path', () => {
    assert.throws(() => image().files({ layer: 7 }), /no layer 7/);
    assert.throws(() => image().files({ path: 'nope' }), /not in the final filesystem/);
  });
});
