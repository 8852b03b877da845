/**
 * Damaged and hostile layers through the CLI: a truncated or corrupt layer is one clear error line that
 * names the layer (exit 1); entries that climb out of the root are reported as warnings, never followed,
 * and the rest of the layer still counts.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { analyzeJson, type BadInputs, badInputs, filesJson } from '../support/analyze-fixtures.js';
import { ballast, oneLineError } from '../support/cli.js';

// biome-ignore lint/suspicious/noExplicitAny: the CLI's JSON, checked field by field
type Json = any;

let bad: BadInputs;

before(async () => {
  bad = await badInputs();
});

describe('a damaged layer is one error line naming it', () => {
  for (const command of ['analyze', 'files'] as const) {
    test(`${command}: a gzip layer cut in the middle`, async () => {
      const result = await ballast([command, bad.truncatedGzip.reference]);
      assert.equal(result.code, 1);
      const line = oneLineError(result);
      assert.ok(line.includes(`layer ${bad.truncatedGzip.layer} (${bad.truncatedGzip.digest})`), line);
      assert.match(line, /truncated/);
      assert.equal(result.stdout, '');
    });
  }

  test('analyze --format json: a corrupt gzip layer', async () => {
    const { result } = await analyzeJson(bad.corruptGzip.reference);
    assert.equal(result.code, 1);
    const line = oneLineError(result);
    assert.ok(line.includes(`layer ${bad.corruptGzip.layer} (${bad.corruptGzip.digest})`), line);
    assert.match(line, /corrupt gzip/);
    assert.equal(result.stdout, '', 'no half report on stdout');
  });

  test('a docker-archive whose layer.tar ends inside a file body (read by seeking)', async () => {
    const result = await ballast(['analyze', bad.truncatedArchive.reference]);
    assert.equal(result.code, 1);
    const line = oneLineError(result);
    assert.match(line, new RegExp(`layer ${bad.truncatedArchive.layer} \\(sha256:[0-9a-f]{64}\\)`));
    assert.match(line, /truncated tar/);
  });

  test('the same archive with --verify (streamed and hashed)', async () => {
    const result = await ballast(['analyze', '--verify', bad.truncatedArchive.reference]);
    assert.equal(result.code, 1);
    const line = oneLineError(result);
    assert.match(line, new RegExp(`layer ${bad.truncatedArchive.layer} \\(sha256:[0-9a-f]{64}\\)`));
  });

  test('--debug gives the stack trace instead', async () => {
    const result = await ballast(['analyze', '--debug', bad.truncatedGzip.reference]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /\n\s+at /);
  });
});

describe('entries that climb out of the root', () => {
  test('are warnings in the JSON, with the layer; the report still succeeds', async () => {
    const { result, report } = await analyzeJson(bad.escaping.reference);
    assert.equal(result.code, 0, result.stderr);
    const escapes = report.layerIssues.filter((i: Json) => i.code === 'path-escapes');
    assert.deepEqual(
      escapes.map((i: Json) => [i.layer, i.path]),
      bad.escaping.escapingPaths.map((path) => [bad.escaping.layer, path]),
    );
    const link = report.layerIssues.find((i: Json) => i.code === 'link-escapes');
    assert.ok(link, 'the hard link out of the root is reported');
    assert.equal(link.layer, bad.escaping.layer);
    assert.equal(link.path, bad.escaping.escapingLink.path);
    assert.ok(link.message.includes(bad.escaping.escapingLink.target));
  });

  test('are never followed: nothing outside the layer tree, the good file and the symlinked one counted', async () => {
    const { report } = await analyzeJson(bad.escaping.reference);
    const { view } = await filesJson(bad.escaping.reference, ['--depth', '9']);
    const paths = view.rows.map((r: Json) => r.path);
    for (const path of paths) assert.ok(!path.split('/').includes('..'), path);
    assert.ok(!paths.includes('etc/evil'), 'the ../../../etc/evil entry did not land in /etc');
    assert.ok(!paths.includes('outside.txt'));
    assert.ok(!paths.includes('tmp/evil.txt'), 'the entry below the symlink did not go where it points');
    assert.ok(!paths.includes(bad.escaping.escapingLink.path), 'the escaping hard link is not in the tree');
    assert.ok(paths.includes(bad.escaping.goodPath));
    // An entry below a symlink turns the symlink into a directory, as a lower file would.
    const below = view.rows.find((r: Json) => r.path === bad.escaping.symlink.below);
    assert.equal(below.bytes, bad.escaping.symlink.belowSize);
    assert.equal(view.rows.find((r: Json) => r.path === bad.escaping.symlink.path).type, 'dir');
    // Only what stayed inside counts: the good file and the one below the symlink.
    const layer = report.layers[bad.escaping.layer];
    assert.equal(layer.fileBytes, bad.escaping.goodSize + bad.escaping.symlink.belowSize);
    assert.equal(layer.finalBytes, layer.fileBytes);
  });

  test('the symlink this layer wrote and then turned into a directory is not a removal', async () => {
    const { report } = await analyzeJson(bad.escaping.reference);
    const layer = report.layers[bad.escaping.layer];
    assert.equal(layer.filesRemoved, 0);
    assert.equal(layer.wastesBytes, 0);
  });

  test('the text report lists them under Warnings as not followed', async () => {
    const result = await ballast(['analyze', bad.escaping.reference]);
    assert.equal(result.code, 0, result.stderr);
    const warnings = result.stdout.slice(result.stdout.indexOf('\nWarnings\n'));
    assert.ok(warnings.length > 10, result.stdout);
    for (const path of bad.escaping.escapingPaths) {
      assert.ok(
        warnings.includes(
          `layer ${bad.escaping.layer}: the path "${path}" climbs out of the root (not followed)`,
        ),
      );
    }
    assert.match(warnings, /hardlink target "\.\.\/\.\.\/etc\/shadow" is outside the root \(not followed\)/);
  });
});
