/**
 * The toolchain image (Debian bookworm minbase + `apt-get install gcc libc6-dev make`, apt cache and
 * lists left in the layer, a command that does not build) against what a container of the image says:
 * per-package bytes from the dpkg lists and `stat`, Essential and Priority from dpkg-query, the apt
 * directories from `find`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  analyzeJson,
  type BuiltImage,
  CONTAINER_FILES,
  ensureInDaemon,
  exportedFiles,
  filesJson,
  type ImageOracle,
  imageOracle,
  oraclePackageBytes,
  TOOLCHAIN_CMD,
  TOOLCHAIN_PACKAGES,
  toolchainFixture,
  treeBytes,
} from '../support/analyze-fixtures.js';
import { type DockerDaemon, startDocker } from '../support/docker.js';

// biome-ignore lint/suspicious/noExplicitAny: the CLI's JSON, checked field by field
type Json = any;

let daemon: DockerDaemon;
let image: BuiltImage;
let oracle: ImageOracle;
let report: Json;

const APT_DIRS = ['/var/cache/apt', '/var/lib/apt/lists'];

before(async () => {
  image = await toolchainFixture();
  daemon = await startDocker();
  await ensureInDaemon(daemon, image);
  oracle = await imageOracle(daemon, image.name, [...APT_DIRS, '/usr']);
  const analyzed = await analyzeJson(image.archiveRef);
  assert.equal(analyzed.result.code, 0, analyzed.result.stderr);
  report = analyzed.report;
});

after(async () => {
  await daemon?.release();
});

const pkg = (name: string): Json => {
  const found = report.packages.find((p: Json) => p.name === name);
  assert.ok(found, `package ${name} is in the report`);
  return found;
};

describe('packages against the dpkg database of a running container', () => {
  test('the installed packages are the ones dpkg-query lists, with Essential and Priority', () => {
    assert.equal(report.packageDatabases[0].manager, 'dpkg');
    assert.equal(report.packageDatabases[0].readable, true);
    assert.deepEqual(report.packages.map((p: Json) => p.name).sort(), [...oracle.query.keys()].sort());
    for (const p of report.packages) {
      const q = oracle.query.get(p.name)!;
      assert.equal(p.manager, 'dpkg');
      assert.equal(p.essential, q.essential, `${p.name} Essential`);
      assert.equal(p.priority, q.priority, `${p.name} Priority`);
    }
    // The ones Debian warns against removing.
    for (const name of ['dpkg', 'bash', 'coreutils']) {
      assert.equal(pkg(name).essential, true, name);
      assert.equal(pkg(name).priority, 'required', name);
    }
    assert.equal(pkg('gcc').essential, false);
    assert.equal(pkg('gcc').priority, 'optional');
  });

  test('per-package bytes equal the stat sums of the regular files in each .list (first owner wins)', () => {
    const expected = oraclePackageBytes(oracle);
    let compared = 0;
    for (const p of report.packages) {
      // Hard-linked files: the tar names one path as the file and the others as links; ballast counts
      // the bytes at the file's path, the oracle at the inode's first listing. Compared below.
      if (expected.hardlinked.has(p.name)) continue;
      assert.equal(p.bytes, expected.bytes.get(p.name) ?? 0, `bytes of ${p.name}`);
      compared++;
    }
    assert.ok(compared >= report.packages.length - 5, `${compared} of ${report.packages.length} compared`);
    // perl-base's hard links (perl, perl5.36.0) stay inside one package: the sums still agree.
    const hardTotal = [...expected.hardlinked].reduce(
      (sum, name) => sum + (expected.bytes.get(name) ?? 0),
      0,
    );
    const reportedHard = report.packages
      .filter((p: Json) => expected.hardlinked.has(p.name))
      .reduce((sum: number, p: Json) => sum + p.bytes, 0);
    assert.equal(reportedHard, hardTotal);
  });

  test('gcc, libc6-dev and make were installed by layer 1; the base packages by layer 0', () => {
    for (const name of TOOLCHAIN_PACKAGES) {
      assert.equal(pkg(name).layer, 1, `${name} layer`);
      assert.ok(pkg(name).bytes > 0, `${name} bytes`);
    }
    for (const name of ['gcc-12', 'cpp-12', 'binutils-x86-64-linux-gnu', 'libc6-dev', 'linux-libc-dev']) {
      assert.equal(pkg(name).layer, 1, `${name} layer`);
    }
    for (const name of ['dpkg', 'bash', 'coreutils', 'libc6', 'apt']) assert.equal(pkg(name).layer, 0, name);
    assert.ok(report.layers[1].createdBy.includes('apt-get install'));
  });

  test('what no package owns includes the apt cache, grouped by directory', () => {
    const cache = report.unowned.find((u: Json) => u.path === 'var/cache/apt');
    assert.ok(cache, 'var/cache/apt is unowned');
    assert.equal(cache.bytes, treeBytes(oracle, '/var/cache/apt'));
    // unowned[].files counts files with bytes only (result.ts skips empty ones: archives/lock here),
    // while `ballast files` counts every file.
    assert.equal(cache.files, oracle.trees.get('/var/cache/apt')!.filter((f) => f.size > 0).length);
  });
});

describe('advice', () => {
  const advice = (id: string): Json => report.recommendations.find((r: Json) => r.id === id);

  test('apt-cache fires with the bytes of /var/cache/apt and /var/lib/apt/lists', async () => {
    const rule = advice('apt-cache');
    assert.ok(rule, 'apt-cache advice');
    const cache = treeBytes(oracle, '/var/cache/apt');
    const lists = treeBytes(oracle, '/var/lib/apt/lists');
    assert.ok(cache > 10_000_000 && lists > 10_000_000, 'the cache and lists are really there');
    assert.equal(rule.bytes, cache + lists);
    const byPath = new Map(rule.evidence.filter((e: Json) => e.path).map((e: Json) => [e.path, e.bytes]));
    assert.equal(byPath.get('var/cache/apt'), cache);
    assert.equal(byPath.get('var/lib/apt/lists'), lists);
    const layerEvidence = rule.evidence.find((e: Json) => e.layer === 1);
    assert.ok(layerEvidence?.createdBy.includes('apt-get install'), 'names the RUN that left them');
    // The same figures from `ballast files`.
    for (const [dir, bytes] of [
      ['/var/cache/apt', cache],
      ['/var/lib/apt/lists', lists],
    ] as const) {
      const { result, view } = await filesJson(image.archiveRef, ['--path', dir, '--depth', '1']);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(view.bytes, bytes, dir);
    }
  });

  test('build-toolchain fires: the command does not build, and the bytes are the toolchain packages', () => {
    const rule = advice('build-toolchain');
    assert.ok(rule, 'build-toolchain advice');
    assert.ok(rule.detail.includes(TOOLCHAIN_CMD[0]), `the detail shows the command: ${rule.detail}`);
    const named = new Set(rule.evidence.map((e: Json) => e.package));
    for (const name of ['gcc-12', 'cpp-12', 'libc6-dev'])
      assert.ok(named.has(name), `evidence names ${name}`);
    // docs/analyze.md's list of toolchain packages, applied to the oracle's per-package bytes.
    const toolchain = (name: string) =>
      /^(gcc|g\+\+|cpp|gfortran)(-\d+)?(-[a-z0-9_-]+-linux-gnu[a-z0-9]*)?$/.test(name) ||
      /^(clang|llvm|lld)(-\d+)?(-dev|-tools)?$/.test(name) ||
      /^(libclang|libllvm|binutils|libctf|libgprofng|libsframe|libcc1-|libisl|libmpc|libasan|liblsan|libtsan|libubsan|libhwasan|libitm|libquadmath|golang|openjdk-\d+-jdk|default-jdk)/.test(
        name,
      ) ||
      [
        'make',
        'cmake',
        'ninja-build',
        'meson',
        'autoconf',
        'automake',
        'autotools-dev',
        'libtool',
        'bison',
        'flex',
        'm4',
        'build-essential',
        'dpkg-dev',
        'pkg-config',
        'pkgconf',
        'patch',
        'libbinutils',
        'rustc',
        'cargo',
      ].includes(name) ||
      name.endsWith('-dev');
    const expected = oraclePackageBytes(oracle);
    const members = [...expected.bytes.keys()].filter(toolchain);
    for (const name of [...TOOLCHAIN_PACKAGES, 'gcc-12', 'binutils']) assert.ok(members.includes(name), name);
    for (const name of ['gcc-12-base', 'libgcc-s1', 'libstdc++6', 'libc6', 'libmpfr6']) {
      assert.ok(!members.includes(name), `${name} is a runtime library`);
    }
    const bytes = members.reduce((sum, name) => sum + expected.bytes.get(name)!, 0);
    assert.equal(rule.bytes, bytes, `toolchain packages: ${members.join(' ')}`);
  });

  test('advice is sorted by bytes, and every item has evidence', () => {
    const bytes = report.recommendations.map((r: Json) => r.bytes);
    assert.deepEqual(
      bytes,
      [...bytes].sort((a, b) => b - a),
    );
    for (const r of report.recommendations) {
      assert.ok(r.bytes > 0 && r.evidence.length > 0 && r.title, r.id);
    }
    // No layer deletes anything: the install only rewrites dpkg's own files.
    assert.equal(advice('deleted-later'), undefined);
    assert.equal(report.deletedBytes, 0);
  });
});

describe('the final filesystem against docker export of a container', () => {
  test('finalBytes and fileCount are what the daemon merges (its own /etc/hosts and the like aside)', async () => {
    const exported = await exportedFiles(daemon, image.name);
    // What the image has at the paths the daemon replaces in a container.
    let ownBytes = 0;
    let ownFiles = 0;
    for (const path of CONTAINER_FILES) {
      const dir = path.includes('/') ? `/${path.slice(0, path.lastIndexOf('/'))}` : '/';
      const { view } = await filesJson(image.archiveRef, ['--path', dir, '--depth', '1']);
      const row = view.rows.find((r: Json) => r.path === path && r.type !== 'dir');
      if (row) {
        ownBytes += row.bytes;
        ownFiles++;
      }
    }
    const exportedBytes = [...exported.files.values()].reduce((a, b) => a + b, 0);
    assert.equal(report.finalBytes - ownBytes, exportedBytes);
    assert.equal(report.fileCount - ownFiles, exported.nonDirs);
    // The only waste is dpkg's and ldconfig's own files, rewritten by the install.
    assert.equal(report.totalBytes - exportedBytes - ownBytes, report.overwrittenBytes);
  });
});

describe('ballast files on the toolchain image', () => {
  test('--path through a merged-/usr symlink (/lib -> usr/lib) lists usr/lib', async () => {
    const viaLink = await filesJson(image.archiveRef, ['--path', '/lib', '--depth', '1']);
    const direct = await filesJson(image.archiveRef, ['--path', '/usr/lib', '--depth', '1']);
    assert.equal(viaLink.result.code, 0, viaLink.result.stderr);
    // The last component is followed: /lib is listed as usr/lib, not as the symlink itself.
    assert.ok(direct.view.bytes > 0);
    assert.deepEqual(
      { bytes: viaLink.view.bytes, files: viaLink.view.files, rows: viaLink.view.rows },
      { bytes: direct.view.bytes, files: direct.view.files, rows: direct.view.rows },
    );
  });

  test('--path /usr --depth 1: the rows sum to the /usr total, which is what find sees', async () => {
    const { result, view } = await filesJson(image.archiveRef, ['--path', '/usr', '--depth', '1']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(view.layer, null);
    assert.equal(view.path, 'usr');
    assert.ok(view.rows.length >= 4);
    assert.equal(
      view.rows.reduce((sum: number, row: Json) => sum + row.bytes, 0),
      view.bytes,
    );
    assert.equal(
      view.rows.reduce((sum: number, row: Json) => sum + row.files, 0),
      view.files,
    );
    assert.equal(view.bytes, treeBytes(oracle, '/usr'));
    for (const row of view.rows) assert.equal(row.path.split('/').length, 2, row.path);
    const sorted = view.rows.map((r: Json) => r.bytes);
    assert.deepEqual(
      sorted,
      [...sorted].sort((a, b) => b - a),
    );
  });

  test('--layer 1 lists what the install added, with the same total as the layer', async () => {
    const { result, view } = await filesJson(image.archiveRef, ['--layer', '1', '--depth', '1']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(view.layer, 1);
    assert.equal(view.bytes, report.layers[1].fileBytes);
    const dirs = new Map(view.rows.map((r: Json) => [r.path, r.bytes]));
    assert.ok((dirs.get('usr') as number) > 100_000_000, 'most of it below /usr');
    assert.ok((dirs.get('var') as number) >= treeBytes(oracle, '/var/cache/apt'));
    const gcc = await filesJson(image.archiveRef, ['--layer', '1', '--path', '/usr/bin', '--depth', '1']);
    const row = gcc.view.rows.find((r: Json) => r.path === 'usr/bin/gcc-12');
    assert.ok(row, 'usr/bin/gcc-12 was added by layer 1');
    assert.equal(row.change, 'added');
    const base = await filesJson(image.archiveRef, ['--layer', '0', '--path', '/usr/bin', '--depth', '1']);
    assert.equal(
      base.view.rows.find((r: Json) => r.path === 'usr/bin/gcc-12'),
      undefined,
    );
  });

  test('the text report shows the summary, layers, packages and advice', async () => {
    const { ballast } = await import('../support/cli.js');
    const result = await ballast(['analyze', image.archiveRef]);
    assert.equal(result.code, 0, result.stderr);
    for (const heading of ['Total size', 'Layers', 'Largest directories', 'Packages (dpkg)', 'Advice']) {
      assert.ok(result.stdout.includes(heading), heading);
    }
    assert.match(result.stdout, /Clean the apt cache/);
  });
});
