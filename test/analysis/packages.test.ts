import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ImageAnalyzer } from '../../src/analysis/analyzer.js';
import { wantsContent } from '../../src/analysis/merge.js';
import { parseApkInstalled, parseDpkgStatus, parseFileList } from '../../src/analysis/packages.js';
import { del, dir, file, meta, run, symlink, text } from './synthetic.test.js';

const STATUS = `Package: libc6
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 12
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: amd64
Multi-Arch: same
Version: 2.36-9
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.

Package: bash
Essential: yes
Status: install ok installed
Priority: required
Architecture: amd64
Version: 5.2.15-2+b2
Conffiles:
 /etc/bash.bashrc 89269e1298235f1b12b4c16e4065ad0d

Package: gone
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: gcc-12
Status: install ok installed
Priority: optional
Architecture: amd64
Version: 12.2.0-14
`;

/** A merged-/usr Debian-like image: libc6 and bash in layer 0, gcc-12 installed by layer 1. */
function debian() {
  return run([
    [
      dir('usr'),
      dir('usr/lib'),
      dir('usr/lib/x86_64-linux-gnu'),
      file('usr/lib/x86_64-linux-gnu/libc.so.6', 2000),
      dir('usr/bin'),
      file('usr/bin/bash', 1200),
      symlink('bin', 'usr/bin'),
      symlink('lib', 'usr/lib'),
      dir('etc'),
      file('etc/bash.bashrc', 30),
      file('etc/hostname', 5),
      dir('var/lib/dpkg/info'),
      text('var/lib/dpkg/status', STATUS.split('\nPackage: gcc-12')[0] ?? ''),
      // libc6 is Multi-Arch: same, so its list is named with the architecture.
      text(
        'var/lib/dpkg/info/libc6:amd64.list',
        '/.\n/lib\n/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu/libc.so.6\n',
      ),
      // bash lists /bin/bash (through the bin -> usr/bin symlink), a conffile, and libc (owned already).
      text(
        'var/lib/dpkg/info/bash.list',
        '/.\n/bin\n/bin/bash\n/etc/bash.bashrc\n/usr/lib/x86_64-linux-gnu/libc.so.6\n/usr/share/doc/bash/gone\n',
      ),
    ],
    [
      dir('usr/bin'),
      file('usr/bin/gcc-12', 900),
      dir('usr/lib/gcc'),
      file('usr/lib/gcc/cc1', 30000),
      text('var/lib/dpkg/status', STATUS),
      text('var/lib/dpkg/info/gcc-12.list', '/usr/bin/gcc-12\n/usr/lib/gcc/cc1\n/usr/lib/gcc\n'),
      dir('var/cache/apt/archives'),
      file('var/cache/apt/archives/gcc-12_12.2.0-14_amd64.deb', 9000),
      dir('usr/local/cargo/bin'),
      file('usr/local/cargo/bin/cargo', 700),
      dir('root/.cache/pip/http'),
      file('root/.cache/pip/http/x', 40),
    ],
  ]);
}

describe('package databases: parsers', () => {
  it('parses dpkg status stanzas, their state, Essential, Priority and Installed-Size', () => {
    const stanzas = parseDpkgStatus(STATUS);
    assert.deepEqual(
      stanzas.map((s) => [
        s.name,
        s.state,
        s.essential,
        s.priority,
        s.version,
        s.architecture,
        s.installedSize,
      ]),
      [
        ['libc6', 'installed', false, 'optional', '2.36-9', 'amd64', 12 * 1024],
        ['bash', 'installed', true, 'required', '5.2.15-2+b2', 'amd64', null],
        ['gone', 'config-files', false, null, '1.0', 'amd64', null],
        ['gcc-12', 'installed', false, 'optional', '12.2.0-14', 'amd64', null],
      ],
    );
  });

  it('parses .list and .md5sums files', () => {
    assert.deepEqual(parseFileList('/.\n/usr\n/usr/bin/x\r\n\n'), ['usr', 'usr/bin/x']);
    assert.deepEqual(parseFileList('d41d8cd98f00b204e9800998ecf8427e  usr/bin/x\nabc  usr/a b\n', true), [
      'usr/bin/x',
      'usr/a b',
    ]);
  });

  it('parses the apk installed database', () => {
    const db =
      'C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\nI:622592\nF:lib\nR:ld-musl-x86_64.so.1\nR:libc.musl-x86_64.so.1\n\nP:busybox\nV:1.36.1-r5\nF:bin\nR:busybox\nF:etc\nR:securetty\n';
    assert.deepEqual(parseApkInstalled(db), [
      {
        name: 'musl',
        version: '1.2.4-r2',
        architecture: 'x86_64',
        installedSize: 622592,
        files: ['lib/ld-musl-x86_64.so.1', 'lib/libc.musl-x86_64.so.1'],
      },
      {
        name: 'busybox',
        version: '1.36.1-r5',
        architecture: null,
        installedSize: null,
        files: ['bin/busybox', 'etc/securetty'],
      },
    ]);
  });

  it('asks for exactly the database files', () => {
    for (const path of [
      'var/lib/dpkg/status',
      'var/lib/dpkg/status.d/base-files',
      'var/lib/dpkg/status.d/base-files.md5sums',
      'var/lib/dpkg/info/libc6:amd64.list',
      'lib/apk/db/installed',
      'usr/lib/apk/db/installed',
    ]) {
      assert.equal(wantsContent(path), true, path);
    }
    for (const path of [
      'var/lib/dpkg/status-old',
      'var/lib/dpkg/info/libc6.postinst',
      'var/lib/dpkg/info/x/y.list',
      'var/lib/rpm/rpmdb.sqlite',
      'etc/passwd',
    ]) {
      assert.equal(wantsContent(path), false, path);
    }
  });
});

describe('package attribution', () => {
  it('counts each visible file for one package, through merged-/usr symlinks', () => {
    const a = debian();
    const pkgs = Object.fromEntries(a.report.packages.map((p) => [p.name, p]));
    assert.deepEqual(Object.keys(pkgs), ['libc6', 'bash', 'gcc-12']);
    assert.deepEqual(pkgs.libc6, {
      name: 'libc6',
      manager: 'dpkg',
      version: '2.36-9',
      architecture: 'amd64',
      bytes: 2000,
      files: 1,
      missingFiles: 0,
      layer: 0,
      essential: false,
      priority: 'optional',
      installedSize: 12288,
    });
    // bash: /bin/bash and the conffile; libc.so.6 is libc6's already; one listed path is gone.
    assert.equal(pkgs.bash?.bytes, 1230);
    assert.equal(pkgs.bash?.files, 2);
    assert.equal(pkgs.bash?.missingFiles, 1);
    assert.equal(pkgs.bash?.essential, true);
    assert.equal(pkgs.bash?.priority, 'required');
    assert.equal(pkgs['gcc-12']?.bytes, 30900);
    assert.equal(pkgs['gcc-12']?.layer, 1);
    assert.deepEqual(a.report.packageDatabases, [
      { manager: 'dpkg', path: 'var/lib/dpkg/status', readable: true, packages: 3 },
    ]);
  });

  it('groups what no package owns by directory', () => {
    const a = debian();
    const unowned = Object.fromEntries(a.report.unowned.map((u) => [u.path, [u.bytes, u.files]]));
    assert.deepEqual(unowned['var/cache/apt'], [9000, 1]);
    assert.deepEqual(unowned['usr/local/cargo'], [700, 1]);
    assert.deepEqual(unowned['root/.cache/pip'], [40, 1]);
    // The database files themselves and /etc/hostname belong to no package.
    assert.equal(unowned.etc?.[0], 5);
    assert.equal(unowned['var/lib/dpkg']?.[1], 4);
  });

  it('only reads the version of a database that is visible at the end', () => {
    const analyzer = new ImageAnalyzer();
    analyzer.beginLayer(meta(0));
    analyzer.apply(file('var/lib/dpkg/status', 10));
    analyzer.endLayer();
    analyzer.beginLayer(meta(1));
    analyzer.apply(file('var/lib/dpkg/status', 20));
    analyzer.endLayer();
    // Only the lower layer's bytes were handed over: stale, so not used.
    analyzer.addContent(0, 'var/lib/dpkg/status', Buffer.from('Package: x\nStatus: install ok installed\n'));
    const a = analyzer.finish();
    assert.deepEqual(a.report.packages, []);
    assert.equal(a.report.issues[0]?.code, 'package-database-stale');
  });

  it('takes a database handed over out of order, and a status deleted later counts nothing', () => {
    const analyzer = new ImageAnalyzer();
    const body = 'Package: x\nStatus: install ok installed\nVersion: 1\n';
    analyzer.addContent(1, 'var/lib/dpkg/status', Buffer.from(body));
    analyzer.addContent(0, 'var/lib/dpkg/status', Buffer.from('garbage'));
    analyzer.beginLayer(meta(0));
    analyzer.apply(file('var/lib/dpkg/status', 7));
    analyzer.beginLayer(meta(1));
    analyzer.apply(file('var/lib/dpkg/status', body.length));
    const a = analyzer.finish();
    assert.equal(a.report.packages[0]?.name, 'x');

    const b = run([[text('var/lib/dpkg/status', body)], [del('var')]]);
    assert.deepEqual(b.report.packages, []);
    assert.deepEqual(b.report.packageDatabases, []);
  });

  it('reads distroless status.d stanzas with their md5sums lists', () => {
    const a = run([
      [
        dir('usr/lib'),
        file('usr/lib/os-release', 300),
        file('usr/lib/libz.so.1', 100000),
        text(
          'var/lib/dpkg/status.d/base-files',
          'Package: base-files\nVersion: 12.4\nArchitecture: amd64\nPriority: required\nEssential: yes\n',
        ),
        text('var/lib/dpkg/status.d/base-files.md5sums', '0123  usr/lib/os-release\n'),
        text('var/lib/dpkg/status.d/zlib1g', 'Package: zlib1g\nVersion: 1:1.2.13\nArchitecture: amd64\n'),
        text('var/lib/dpkg/status.d/zlib1g.md5sums', 'abcd  usr/lib/libz.so.1\n'),
      ],
    ]);
    assert.deepEqual(
      a.report.packages.map((p) => [p.name, p.version, p.bytes, p.essential, p.priority]),
      [
        ['base-files', '12.4', 300, true, 'required'],
        ['zlib1g', '1:1.2.13', 100000, false, null],
      ],
    );
    assert.equal(a.report.packageDatabases[0]?.path, 'var/lib/dpkg/status.d/');
  });

  it('reads the apk database (usr-merged too) and detects rpm without reading it', () => {
    const db =
      'P:musl\nV:1.2.4-r2\nF:lib\nR:ld-musl-x86_64.so.1\n\nP:busybox\nV:1.36.1-r5\nF:bin\nR:busybox\n';
    const a = run([
      [file('lib/ld-musl-x86_64.so.1', 600), file('bin/busybox', 900)],
      [file('bin/app', 50), text('lib/apk/db/installed', db)],
    ]);
    assert.deepEqual(
      a.report.packages.map((p) => [p.name, p.manager, p.version, p.bytes, p.layer]),
      [
        ['musl', 'apk', '1.2.4-r2', 600, 0],
        ['busybox', 'apk', '1.36.1-r5', 900, 0],
      ],
    );
    const merged = run([
      [
        dir('usr/lib'),
        symlink('lib', 'usr/lib'),
        file('usr/lib/ld-musl-x86_64.so.1', 600),
        text('usr/lib/apk/db/installed', db),
      ],
    ]);
    assert.equal(merged.report.packages[0]?.bytes, 600);
    assert.equal(merged.report.packageDatabases[0]?.path, 'usr/lib/apk/db/installed');

    const rpm = run([[file('var/lib/rpm/rpmdb.sqlite', 5000), file('usr/bin/bash', 10)]]);
    assert.deepEqual(rpm.report.packages, []);
    assert.equal(rpm.report.packageDatabases[0]?.manager, 'rpm');
    assert.equal(rpm.report.packageDatabases[0]?.readable, false);
    assert.equal(rpm.report.issues[0]?.code, 'package-database-unreadable');
  });

  it('attributes a package to the layer that wrote most of its bytes', () => {
    const status = 'Package: p\nStatus: install ok installed\nVersion: 1\n';
    const a = run([
      [
        file('usr/bin/p', 10),
        text('var/lib/dpkg/status', status),
        text('var/lib/dpkg/info/p.list', '/usr/bin/p\n/usr/lib/p.so\n'),
      ],
      [file('usr/lib/p.so', 90)],
    ]);
    assert.equal(a.report.packages[0]?.layer, 1);
  });
});
