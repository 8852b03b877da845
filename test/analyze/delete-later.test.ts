/**
 * The delete-later image: every figure of its waste is known from its Dockerfile
 * (test/support/analyze-fixtures.ts): a 5 MB file added then deleted, a file added then chmodded
 * (a whole-file copy), a file added then overwritten by a smaller one. Also the CI gate and
 * `ballast files --layer`.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  analyzeJson,
  type DeleteLaterFixture,
  deleteLaterFixture,
  dockerLayerSizes,
  ensureInDaemon,
  filesJson,
} from '../support/analyze-fixtures.js';
import { ballast } from '../support/cli.js';
import { type DockerDaemon, startDocker } from '../support/docker.js';

// biome-ignore lint/suspicious/noExplicitAny: the CLI's JSON, checked field by field
type Json = any;

let image: DeleteLaterFixture;
let report: Json;
let baseBytes: number;
let work: string;

before(async () => {
  image = await deleteLaterFixture();
  work = await mkdtemp(join(tmpdir(), 'ballast-analyze-dl-'));
  const daemon: DockerDaemon = await startDocker();
  try {
    await ensureInDaemon(daemon, image);
    // The base layer's size from docker, not from ballast.
    baseBytes = (await dockerLayerSizes(daemon, image))[0]!;
  } finally {
    await daemon.release();
  }
  const analyzed = await analyzeJson(image.archiveRef);
  assert.equal(analyzed.result.code, 0, analyzed.result.stderr);
  report = analyzed.report;
});

after(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

const stripSlash = (path: string) => path.replace(/^\//, '');

describe('figures from what the Dockerfile did', () => {
  test('totals', () => {
    const { big, chmodded, rewritten } = image;
    const written = big.size + chmodded.size + rewritten.oldSize + chmodded.size + rewritten.newSize;
    assert.equal(report.layers.length, image.layerCount);
    assert.equal(report.totalBytes, baseBytes + written);
    assert.equal(report.finalBytes, baseBytes + chmodded.size + rewritten.newSize);
    assert.equal(report.deletedBytes, big.size);
    assert.equal(report.overwrittenBytes, chmodded.size + rewritten.oldSize);
    assert.equal(report.wastedBytes, big.size + chmodded.size + rewritten.oldSize);
    assert.equal(report.efficiency, report.finalBytes / report.totalBytes);
    assert.equal(report.userWastedPercent, report.wastedBytes / written);
    assert.equal(report.wastedCount, 3);
  });

  test('per layer: what each wrote, kept, added, changed, removed and wasted', () => {
    const { big, chmodded, rewritten } = image;
    const expected = [
      { fileBytes: baseBytes, finalBytes: baseBytes, added: null, changed: 0, removed: 0, wastes: 0 },
      { fileBytes: big.size, finalBytes: 0, added: 1, changed: 0, removed: 0, wastes: 0 },
      { fileBytes: chmodded.size, finalBytes: 0, added: 1, changed: 0, removed: 0, wastes: 0 },
      { fileBytes: rewritten.oldSize, finalBytes: 0, added: 1, changed: 0, removed: 0, wastes: 0 },
      { fileBytes: 0, finalBytes: 0, added: 0, changed: 0, removed: 1, wastes: big.size },
      {
        fileBytes: chmodded.size,
        finalBytes: chmodded.size,
        added: 0,
        changed: 1,
        removed: 0,
        wastes: chmodded.size,
      },
      {
        fileBytes: rewritten.newSize,
        finalBytes: rewritten.newSize,
        added: 0,
        changed: 1,
        removed: 0,
        wastes: rewritten.oldSize,
      },
    ];
    for (const [i, want] of expected.entries()) {
      const layer = report.layers[i];
      assert.equal(layer.index, i);
      assert.equal(layer.fileBytes, want.fileBytes, `layer ${i} fileBytes`);
      assert.equal(layer.finalBytes, want.finalBytes, `layer ${i} finalBytes`);
      if (want.added !== null) assert.equal(layer.filesAdded, want.added, `layer ${i} filesAdded`);
      assert.equal(layer.filesChanged, want.changed, `layer ${i} filesChanged`);
      assert.equal(layer.filesRemoved, want.removed, `layer ${i} filesRemoved`);
      assert.equal(layer.wastesBytes, want.wastes, `layer ${i} wastesBytes`);
      assert.equal(layer.wastesOwnBytes, 0, `layer ${i} wastesOwnBytes`);
    }
    assert.match(report.layers[4].createdBy, /rm \/opt\/big\.bin/);
    assert.match(report.layers[5].createdBy, /chmod 755/);
  });

  test('wasted[]: each path with its reason and the layers that wrote and removed it', () => {
    const { big, chmodded, rewritten } = image;
    assert.deepEqual(report.wasted, [
      {
        path: stripSlash(big.path),
        bytes: big.size,
        reason: 'deleted',
        metadataOnly: false,
        changed: [],
        layer: big.addedBy,
        removedBy: big.deletedBy,
      },
      {
        path: stripSlash(chmodded.path),
        bytes: chmodded.size,
        reason: 'overwritten',
        metadataOnly: true,
        changed: ['mode'],
        layer: chmodded.addedBy,
        removedBy: chmodded.chmodBy,
      },
      {
        path: stripSlash(rewritten.path),
        bytes: rewritten.oldSize,
        reason: 'overwritten',
        metadataOnly: false,
        changed: [],
        layer: rewritten.addedBy,
        removedBy: rewritten.rewrittenBy,
      },
    ]);
  });

  test('the final filesystem: the chmodded and rewritten files are visible at their new layers', async () => {
    assert.equal(
      report.largestFiles.some((f: Json) => f.path === stripSlash(image.big.path)),
      false,
    );
    const bin = await filesJson(image.archiveRef, ['--path', '/usr/local/bin']);
    assert.equal(bin.result.code, 0, bin.result.stderr);
    assert.deepEqual(bin.view.rows, [
      {
        path: 'usr/local/bin/tool',
        type: 'file',
        bytes: image.chmodded.size,
        files: 1,
        layer: image.chmodded.chmodBy,
      },
    ]);
    const etc = await filesJson(image.archiveRef, ['--path', '/etc']);
    const conf = etc.view.rows.find((r: Json) => r.path === 'etc/app.conf');
    assert.deepEqual(conf, {
      path: 'etc/app.conf',
      type: 'file',
      bytes: image.rewritten.newSize,
      files: 1,
      layer: image.rewritten.rewrittenBy,
    });
  });
});

describe('advice with exact bytes', () => {
  const advice = (id: string): Json => report.recommendations.find((r: Json) => r.id === id);

  test('deleted-later: the 5 MB file, written by layer 1 and removed by layer 4', () => {
    const rule = advice('deleted-later');
    assert.ok(rule);
    assert.equal(rule.bytes, image.big.size);
    const pair = rule.evidence.find((e: Json) => e.path === undefined);
    assert.equal(pair.layer, image.big.addedBy);
    assert.equal(pair.bytes, image.big.size);
    assert.match(pair.note, /removed by layer 4/);
    const path = rule.evidence.find((e: Json) => e.path === stripSlash(image.big.path));
    assert.equal(path.bytes, image.big.size);
  });

  test('metadata-copy: the chmod copied the whole file', () => {
    const rule = advice('metadata-copy');
    assert.ok(rule);
    assert.equal(rule.bytes, image.chmodded.size);
    assert.ok(rule.evidence.some((e: Json) => e.path === stripSlash(image.chmodded.path)));
  });

  test('rewritten-later: the first app.conf', () => {
    const rule = advice('rewritten-later');
    assert.ok(rule);
    assert.equal(rule.bytes, image.rewritten.oldSize);
  });

  test('no apt cache, no toolchain in this image', () => {
    assert.equal(advice('apt-cache'), undefined);
    assert.equal(advice('build-toolchain'), undefined);
  });
});

describe('the CI gate', () => {
  test('--ci with dive defaults fails on user waste: exit 3, each rule with its figure', async () => {
    const { result, report: r } = await analyzeJson(image.archiveRef, ['--ci']);
    assert.equal(result.code, 3, result.stderr);
    assert.equal(r.ci.pass, false);
    const rules = new Map(r.ci.rules.map((x: Json) => [x.rule, x]));
    const efficiency: Json = rules.get('lowestEfficiency');
    assert.deepEqual(efficiency, { rule: 'lowestEfficiency', limit: 0.9, actual: r.efficiency, pass: true });
    const user: Json = rules.get('highestUserWastedPercent');
    assert.deepEqual(user, {
      rule: 'highestUserWastedPercent',
      limit: 0.1,
      actual: r.userWastedPercent,
      pass: false,
    });
    assert.equal(rules.has('highestWastedBytes'), false, "dive's default leaves it disabled");
  });

  test('the text form prints PASS and FAIL lines and the count', async () => {
    const result = await ballast(['analyze', '--ci', image.archiveRef]);
    assert.equal(result.code, 3, result.stderr);
    assert.match(result.stdout, /^PASS {2}lowestEfficiency: /m);
    assert.match(result.stdout, /^FAIL {2}highestUserWastedPercent: /m);
    assert.match(result.stdout, /1 of 2 rules failed/);
  });

  test('generous limits pass: exit 0', async () => {
    const { result, report: r } = await analyzeJson(image.archiveRef, [
      '--ci',
      '--lowest-efficiency',
      '0.5',
      '--highest-user-wasted-percent',
      '1',
      '--highest-wasted-bytes',
      '10MB',
      '--max-size',
      '1GB',
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(r.ci.pass, true);
    assert.equal(r.ci.rules.length, 4);
    const wasted = r.ci.rules.find((x: Json) => x.rule === 'highestWastedBytes');
    assert.deepEqual(wasted, {
      rule: 'highestWastedBytes',
      limit: 10_000_000,
      actual: r.wastedBytes,
      pass: true,
    });
  });

  test('--highest-wasted-bytes 1MB fails on the 5.42 MB of waste', async () => {
    const { result, report: r } = await analyzeJson(image.archiveRef, [
      '--highest-wasted-bytes',
      '1MB',
      '--highest-user-wasted-percent',
      'disabled',
    ]);
    assert.equal(result.code, 3, result.stderr);
    const wasted = r.ci.rules.find((x: Json) => x.rule === 'highestWastedBytes');
    assert.deepEqual(wasted, {
      rule: 'highestWastedBytes',
      limit: 1_000_000,
      actual: 5_420_000,
      pass: false,
    });
    assert.equal(r.ci.rules.find((x: Json) => x.rule === 'lowestEfficiency').pass, true);
  });

  test('--max-size compares totalBytes; binary units', async () => {
    const { result, report: r } = await analyzeJson(image.archiveRef, [
      '--max-size',
      '100MiB',
      '--highest-user-wasted-percent',
      'disabled',
    ]);
    assert.equal(result.code, 3, result.stderr);
    const max = r.ci.rules.find((x: Json) => x.rule === 'maxSize');
    assert.deepEqual(max, { rule: 'maxSize', limit: 100 * 1024 * 1024, actual: r.totalBytes, pass: false });
  });

  test('a .dive-ci file through --ci-config; flags override it', async () => {
    const config = join(work, '.dive-ci');
    await writeFile(
      config,
      [
        '---',
        'rules:',
        '  # as dive writes them',
        '  lowestEfficiency: 0.95',
        '  highestWastedBytes: 6MB',
        '  highestUserWastedPercent: "disabled"',
        '',
      ].join('\n'),
    );
    const pass = await analyzeJson(image.archiveRef, ['--ci-config', config]);
    assert.equal(pass.result.code, 0, pass.result.stderr);
    assert.deepEqual(
      pass.report.ci.rules.map((x: Json) => [x.rule, x.limit, x.pass]),
      [
        ['lowestEfficiency', 0.95, true],
        ['highestWastedBytes', 6_000_000, true],
      ],
    );
    const fail = await analyzeJson(image.archiveRef, [
      '--ci-config',
      config,
      '--highest-wasted-bytes',
      '5MB',
    ]);
    assert.equal(fail.result.code, 3, fail.result.stderr);
    assert.equal(fail.report.ci.rules.find((x: Json) => x.rule === 'highestWastedBytes').limit, 5_000_000);
  });

  test('a bad .dive-ci is a usage error naming the file and line', async () => {
    const config = join(work, 'bad.dive-ci');
    await writeFile(config, 'rules:\n  lowestEfficiency: 0.9\n  highestWastedByte: 20MB\n');
    const result = await ballast(['analyze', '--ci-config', config, image.archiveRef]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /bad\.dive-ci:3: unknown rule "highestWastedByte"/);
  });
});

describe('ballast files --layer', () => {
  test('layer 1 added the 5 MB file', async () => {
    const { result, view } = await filesJson(image.archiveRef, ['--layer', '1', '--depth', '2']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(view.layer, 1);
    assert.equal(view.bytes, image.big.size);
    assert.equal(view.removedBytes, 0);
    const row = view.rows.find((r: Json) => r.path === stripSlash(image.big.path));
    assert.deepEqual(row, {
      path: 'opt/big.bin',
      type: 'file',
      bytes: image.big.size,
      files: 1,
      change: 'added',
    });
  });

  test('layer 4 removed it: removedBytes at the path and on its directory', async () => {
    const { result, view } = await filesJson(image.archiveRef, ['--layer', '4', '--depth', '2']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(view.bytes, 0);
    assert.equal(view.removedBytes, image.big.size);
    const row = view.rows.find((r: Json) => r.path === 'opt/big.bin');
    assert.equal(row.change, 'removed');
    assert.equal(row.removedBytes, image.big.size);
    assert.equal(view.rows.find((r: Json) => r.path === 'opt').removedBytes, image.big.size);
  });

  test('layer 5 changed the chmodded file; layer 6 the rewritten one', async () => {
    const five = await filesJson(image.archiveRef, ['--layer', '5', '--path', '/usr/local/bin']);
    assert.equal(five.result.code, 0, five.result.stderr);
    assert.equal(five.view.bytes, image.chmodded.size);
    assert.equal(five.view.rows.find((r: Json) => r.path === 'usr/local/bin/tool').change, 'changed');
    const six = await filesJson(image.archiveRef, ['--layer', '6', '--path', '/etc']);
    assert.deepEqual(
      six.view.rows.map((r: Json) => [r.path, r.bytes, r.change]),
      [['etc/app.conf', image.rewritten.newSize, 'changed']],
    );
  });

  test('the final filesystem: /opt holds nothing any more; --layer beyond the image is a usage error', async () => {
    const { view } = await filesJson(image.archiveRef, ['--path', '/opt']);
    assert.equal(view.bytes, 0);
    assert.deepEqual(view.rows, []);
    const result = await ballast(['files', '--layer', '7', image.archiveRef]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--layer 7: the image has 7 layers \(0 to 6\)/);
  });
});
