import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { OciLayoutDestination } from '../../src/copy/oci-layout-destination.js';
import { loadSyncConfig, parseSyncConfig, planSync, syncImages } from '../../src/copy/sync-config.js';
import { BallastError } from '../../src/errors.js';
import { parseReference } from '../../src/reference/parse.js';
import { openSource } from '../../src/sources/open.js';
import { type OciFixtures, ociFixtures } from '../support/fixtures.js';
import { run } from '../support/registry.js';

function rejectsAt(text: string, line: number, pattern: RegExp): void {
  assert.throws(
    () => parseSyncConfig(text, 'sync.yaml'),
    (error: unknown) => {
      assert.ok(BallastError.is(error), String(error));
      assert.equal(error.exitCode, 2);
      assert.equal(error.code, 'USAGE');
      assert.ok(error.message.startsWith(`sync.yaml:${line}: `), error.message);
      assert.match(error.message, pattern);
      return true;
    },
  );
}

describe('sync config', () => {
  test('parses the documented example', () => {
    const config = parseSyncConfig(
      [
        'images:',
        '  - source: registry.example/crab-iot',
        '    tags: [latest, "1.2"]',
        '    destinations:',
        '      - docker.io/arturocs/crab-iot',
        '      - ghcr.io/arturocs/crab-iot',
        '  - source: registry.example/other',
        "    tagsRegex: '^v\\d+'",
        '    destinations: [ghcr.io/arturocs/other]',
        '  - source: registry.example/third:stable',
        '    destinations: [oci:/tmp/third]',
      ].join('\n'),
      'sync.yaml',
    );
    assert.equal(config.images.length, 3);
    assert.deepEqual(config.images[0], {
      source: 'registry.example/crab-iot',
      tags: ['latest', '1.2'],
      destinations: ['docker.io/arturocs/crab-iot', 'ghcr.io/arturocs/crab-iot'],
      line: 2,
    });
    assert.equal(config.images[1]?.tagsRegex, '^v\\d+');
    assert.equal(config.images[2]?.line, 10);
  });

  test('not YAML: the line of the syntax error', () => {
    rejectsAt('images:\n  - source: a/b\n    tags: [x, y\n', 3, /not valid YAML/);
    rejectsAt('images:\n  - source: "a/b\n', 2, /not valid YAML/);
  });

  test('unknown keys, at their own line', () => {
    rejectsAt('images:\n  - source: a/b\n    destination: [c/d]\n', 3, /unknown key "destination"/);
    rejectsAt('image:\n  - source: a/b\n', 1, /unknown key "image"/);
  });

  test('wrong types, at the line of the value', () => {
    rejectsAt(
      'images:\n  - source: a/b\n    tags: latest\n    destinations: [c/d]\n',
      3,
      /"tags" must be a non-empty list/,
    );
    rejectsAt(
      'images:\n  - source: a/b\n    tags: [latest, 1.2]\n    destinations: [c/d]\n',
      3,
      /quote it: "1.2"/,
    );
    rejectsAt('images:\n  - source: 42\n    destinations: [c/d]\n', 2, /"source" must be a non-empty string/);
    rejectsAt('images: {}\n', 1, /"images" must be a list/);
    rejectsAt('- a\n- b\n', 1, /expected a mapping/);
    rejectsAt(
      'images:\n  - source: a/b\n    destinations:\n      - c/d\n      - [e]\n',
      5,
      /must hold strings/,
    );
  });

  test('missing, conflicting and invalid values', () => {
    rejectsAt('images:\n  - source: a/b\n', 2, /needs "destinations"/);
    rejectsAt('images:\n  - destinations: [c/d]\n', 2, /needs "source"/);
    rejectsAt(
      'images:\n  - source: a/b\n    tags: [x]\n    tagsRegex: y\n    destinations: [c/d]\n',
      4,
      /not both/,
    );
    rejectsAt('images:\n  - source: a/b:1\n    tags: [x]\n    destinations: [c/d]\n', 2, /names a tag/);
    rejectsAt('images:\n  - source: a/b\n    destinations:\n      - c/d\n      - e/f:1\n', 5, /names a tag/);
    rejectsAt(
      'images:\n  - source: a/b\n    tagsRegex: "("\n    destinations: [c/d]\n',
      3,
      /regular expression/,
    );
    rejectsAt('images:\n  - source: A/B\n    destinations: [c/d]\n', 2, /invalid image reference/);
    rejectsAt(
      'images:\n  - source: a/b\n    destinations: [docker-archive:/x.tar]\n',
      3,
      /registry repository or an OCI layout/,
    );
  });

  test('plans pairs: tags, a regex over the listed tags, or the source tag', async () => {
    const config = parseSyncConfig(
      [
        'images:',
        '  - source: registry.example/crab-iot',
        '    tags: [latest, "1.2"]',
        '    destinations: [docker.io/arturocs/crab-iot, ghcr.io/arturocs/crab-iot]',
        '  - source: registry.example/other',
        "    tagsRegex: '^v\\d+$'",
        '    destinations: [oci:/tmp/other]',
        '  - source: registry.example/third:stable',
        '    destinations: [ghcr.io/me/third]',
      ].join('\n'),
      'sync.yaml',
    );
    const listed: string[] = [];
    const plan = await planSync(config, async (source) => {
      listed.push(source);
      return ['v1', 'v2', 'v2-rc', 'latest', 'v10'];
    });
    assert.deepEqual(listed, ['registry.example/other']);
    assert.deepEqual(
      plan.map((pair) => [pair.source, pair.destination]),
      [
        ['docker://registry.example/crab-iot:latest', 'docker://docker.io/arturocs/crab-iot:latest'],
        ['docker://registry.example/crab-iot:latest', 'docker://ghcr.io/arturocs/crab-iot:latest'],
        ['docker://registry.example/crab-iot:1.2', 'docker://docker.io/arturocs/crab-iot:1.2'],
        ['docker://registry.example/crab-iot:1.2', 'docker://ghcr.io/arturocs/crab-iot:1.2'],
        ['docker://registry.example/other:v1', 'oci:/tmp/other:v1'],
        ['docker://registry.example/other:v10', 'oci:/tmp/other:v10'],
        ['docker://registry.example/other:v2', 'oci:/tmp/other:v2'],
        ['docker://registry.example/third:stable', 'docker://ghcr.io/me/third:stable'],
      ],
    );
    assert.equal(plan[4]?.line, 5);
  });
});

describe('syncImages over OCI layouts', () => {
  let work: string;
  let oci: OciFixtures;
  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'ballast-sync-'));
    oci = await ociFixtures();
  });
  after(async () => {
    await rm(work, { recursive: true, force: true });
  });

  test('copies every pair, skips up-to-date pairs with 0 bytes, and a failing destination does not stop the others', async () => {
    const file = join(work, 'sync.yaml');
    const good = join(work, 'good');
    const second = join(work, 'second');
    const bad = join(work, 'bad');
    await writeFile(bad, 'a file, not a folder');
    await writeFile(
      file,
      [
        'images:',
        `  - source: oci:${oci.ociApp.dir}`,
        '    tags: [app, base]',
        '    destinations:',
        `      - oci:${good}`,
        `      - oci:${bad}`,
        `      - oci:${second}`,
      ].join('\n'),
    );
    const config = await loadSyncConfig(file);
    const plan = await planSync(config, async () => []);
    assert.equal(plan.length, 6);
    const options = {
      openSource: (reference: string) => openSource(reference),
      openDestination: (reference: string) => OciLayoutDestination.open(parseReference(reference)),
      concurrency: 2,
    };

    const first = await syncImages(plan, options);
    assert.equal(first.copied, 4);
    assert.equal(first.failed, 2);
    for (const result of first.results.filter((r) => r.pair.destination.includes(bad))) {
      assert.equal(result.status, 'failed');
      assert.ok(result.error);
    }
    assert.ok(first.bytesCopied > 0);
    for (const dir of [good, second]) {
      for (const tag of ['app', 'base']) {
        await run('oci-image-tool', ['validate', '--type', 'image', '--ref', `name=${tag}`, dir]);
      }
    }
    const index = JSON.parse(await readFile(join(good, 'index.json'), 'utf8'));
    assert.equal(index.manifests.length, 2, 'two tags written concurrently into one layout, both kept');

    const dry = await syncImages(plan, { ...options, dryRun: true });
    assert.equal(dry.upToDate, 4);
    assert.equal(dry.bytesCopied, 0);

    const again = await syncImages(plan, options);
    assert.equal(again.upToDate, 4);
    assert.equal(again.copied, 0);
    assert.equal(again.bytesCopied, 0);
    assert.equal(again.failed, 2);
    const upToDate = again.results.find((r) => r.status === 'up-to-date');
    assert.equal(upToDate?.digest?.startsWith('sha256:'), true);
  });

  test('a dry run against an empty destination reports would-copy and tags nothing', async () => {
    const dir = join(work, 'dry');
    const plan = [{ source: oci.ociApp.reference, destination: `oci:${dir}:app`, tag: 'app', line: 1 }];
    const summary = await syncImages(plan, {
      openSource: (reference) => openSource(reference),
      openDestination: (reference) => OciLayoutDestination.open(parseReference(reference)),
      dryRun: true,
    });
    assert.equal(summary.results[0]?.status, 'would-copy');
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
    assert.deepEqual(index.manifests, []);
  });
});

describe('openDestination', () => {
  test('opens OCI layouts, archives and registries, and refuses the Docker daemon', async () => {
    const { openDestination } = await import('../../src/copy/open-destination.js');
    const dir = await mkdtemp(join(tmpdir(), 'ballast-open-dest-'));
    try {
      const layout = await openDestination(`oci:${join(dir, 'layout')}:x`);
      assert.ok(layout.accepts('application/vnd.oci.image.manifest.v1+json'));
      await layout.close();
      const archive = await openDestination(`docker-archive:${join(dir, 'a.tar')}`);
      assert.equal(archive.maxConcurrentBlobs, 1);
      await archive.close();
      const registry = await openDestination('127.0.0.1:5000/x:1');
      assert.ok(registry.accepts('application/vnd.docker.distribution.manifest.list.v2+json'));
      await registry.close();
      await assert.rejects(
        openDestination('docker-daemon:x:1'),
        (error: unknown) =>
          BallastError.is(error) && error.exitCode === 2 && /docker load/.test(error.hint ?? ''),
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
