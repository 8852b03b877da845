import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { commandBuilds } from '../../src/analysis/advice.js';
import { isToolchainPackage } from '../../src/analysis/packages.js';
import type { ImageAnalysis } from '../../src/analysis/result.js';
import { del, dir, file, run, text } from './synthetic.test.js';

function rec(analysis: ImageAnalysis, id: string) {
  return analysis.report.recommendations.find((r) => r.id === id);
}

const base = [dir('usr/bin'), file('usr/bin/app', 1000)];

describe('advice', () => {
  it('apt caches and lists left in a layer', () => {
    const a = run([
      base,
      {
        createdBy: 'RUN apt-get update && apt-get install -y curl',
        changes: [
          file('var/cache/apt/archives/curl_8.0_amd64.deb', 4000),
          file('var/cache/apt/pkgcache.bin', 600),
          file('var/lib/apt/lists/deb.debian.org_dists_bookworm_InRelease', 150),
          file('var/lib/apt/lists/lock', 0),
        ],
      },
    ]);
    const r = rec(a, 'apt-cache');
    assert.equal(r?.bytes, 4750);
    assert.deepEqual(r?.evidence, [
      { path: 'var/cache/apt', bytes: 4600 },
      { path: 'var/lib/apt/lists', bytes: 150 },
      { layer: 1, createdBy: 'RUN apt-get update && apt-get install -y curl', bytes: 4750 },
    ]);
    // Cleaned in the same RUN: nothing to say.
    assert.equal(
      rec(run([base, [dir('var/cache/apt/archives'), dir('var/lib/apt/lists')]]), 'apt-cache'),
      undefined,
    );
  });

  it('files added in one layer and deleted in a later one', () => {
    const a = run([
      base,
      { createdBy: 'ADD big.tgz /tmp/', changes: [file('tmp/big.tgz', 5000), file('tmp/small', 10)] },
      {
        createdBy: 'RUN tar xzf /tmp/big.tgz && rm /tmp/big.tgz',
        changes: [del('tmp/big.tgz'), file('opt/x', 20)],
      },
    ]);
    const r = rec(a, 'deleted-later');
    assert.equal(r?.bytes, 5000);
    assert.equal(r?.evidence[0]?.layer, 1);
    assert.equal(r?.evidence[0]?.bytes, 5000);
    assert.match(r?.evidence[0]?.note ?? '', /removed by layer 2: RUN tar xzf/);
    assert.deepEqual(r?.evidence[1], { path: 'tmp/big.tgz', layer: 1, bytes: 5000 });
    // A file written twice within one layer is not this rule's.
    assert.equal(rec(run([[file('a', 10), file('a', 10)]]), 'deleted-later'), undefined);
  });

  it('whole files copied again only to change mode or owner', () => {
    const a = run([
      [file('app/server', 3000, { mode: 0o644 }), file('app/conf', 200), file('app/data', 50)],
      {
        createdBy: 'RUN chmod +x /app/server && chown 1000 /app/conf',
        changes: [
          file('app/server', 3000, { mode: 0o755 }),
          file('app/conf', 200, { uid: 1000 }),
          file('app/data', 60),
        ],
      },
    ]);
    const r = rec(a, 'metadata-copy');
    assert.equal(r?.bytes, 3200);
    assert.deepEqual(
      r?.evidence.filter((e) => e.path).map((e) => [e.path, e.bytes]),
      [
        ['app/server', 3000],
        ['app/conf', 200],
      ],
    );
    // The size changed: a real rewrite.
    assert.equal(rec(a, 'rewritten-later')?.bytes, 50);
    assert.equal(rec(run([[file('a', 10)], [file('a', 11, { mode: 0o755 })]]), 'metadata-copy'), undefined);
  });

  const status = [
    'Package: gcc-12\nStatus: install ok installed\nVersion: 12\n',
    'Package: libc6-dev\nStatus: install ok installed\nVersion: 2.36\n',
    'Package: gcc-12-base\nStatus: install ok installed\nVersion: 12\n',
    'Package: curl\nStatus: install ok installed\nVersion: 8\n',
  ].join('\n');
  const toolchainImage = (command?: string[]) =>
    run(
      [
        [
          file('usr/bin/gcc-12', 1000),
          file('usr/lib/gcc/cc1', 20000),
          file('usr/include/stdio.h', 300),
          file('usr/share/doc/gcc-12-base/README', 5),
          file('usr/bin/curl', 400),
          text('var/lib/dpkg/status', status),
          text('var/lib/dpkg/info/gcc-12.list', '/usr/bin/gcc-12\n/usr/lib/gcc/cc1\n'),
          text('var/lib/dpkg/info/libc6-dev.list', '/usr/include/stdio.h\n'),
          text('var/lib/dpkg/info/gcc-12-base.list', '/usr/share/doc/gcc-12-base/README\n'),
          text('var/lib/dpkg/info/curl.list', '/usr/bin/curl\n'),
        ],
        [
          file('usr/local/rustup/toolchains/rustc', 7000),
          file('usr/local/cargo/bin/cargo', 800),
          file('usr/local/cargo/registry/cache/x.crate', 90),
        ],
      ],
      command ? { command } : {},
    );

  it('a build toolchain in an image whose command does not build', () => {
    const r = rec(toolchainImage(['/usr/bin/curl', '-s', 'http://x']), 'build-toolchain');
    // gcc-12 21000 + libc6-dev 300 + rustup 7000 + cargo without its registry 800; not gcc-12-base, curl.
    assert.equal(r?.bytes, 29100);
    assert.deepEqual(
      r?.evidence.map((e) => e.package ?? e.path),
      ['gcc-12', 'libc6-dev', 'usr/local/rustup', 'usr/local/cargo'],
    );
    assert.equal(rec(toolchainImage(['make', 'test']), 'build-toolchain'), undefined);
    assert.equal(
      rec(toolchainImage(['sh', '-c', 'cargo build --release && ./target/x']), 'build-toolchain'),
      undefined,
    );
    // No command at all: still advice.
    assert.equal(rec(toolchainImage(), 'build-toolchain')?.bytes, 29100);
    assert.equal(rec(run([base]), 'build-toolchain'), undefined);
  });

  it('recognises toolchain packages and build commands', () => {
    for (const name of [
      'gcc',
      'g++-12',
      'cpp-12',
      'build-essential',
      'make',
      'binutils-x86-64-linux-gnu',
      'libgcc-12-dev',
      'zlib1g-dev',
      'clang-16',
      'libasan8',
      'gcc-12-x86-64-linux-gnu',
    ]) {
      assert.equal(isToolchainPackage('dpkg', name), true, name);
    }
    for (const name of ['gcc-12-base', 'libgcc-s1', 'libstdc++6', 'libc6', 'curl', 'libmpfr6', 'udev']) {
      assert.equal(isToolchainPackage('dpkg', name), false, name);
    }
    assert.equal(isToolchainPackage('apk', 'build-base'), true);
    assert.equal(isToolchainPackage('apk', 'musl'), false);
    assert.equal(commandBuilds(['/bin/sh', '-c', 'go build ./... && ./app']), true);
    assert.equal(commandBuilds(['node', 'server.js']), false);
    assert.equal(commandBuilds(['bash']), false);
    assert.equal(commandBuilds(undefined), false);
  });

  it('package manager caches', () => {
    const a = toolchainImage(['app']);
    const extra = run([
      base,
      [
        file('root/.cache/pip/wheels/x.whl', 500),
        file('home/me/.npm/_cacache/index', 70),
        file('var/cache/apk/APKINDEX.tar.gz', 30),
        file('root/.cache/go-build/00/a', 9),
      ],
    ]);
    assert.equal(rec(a, 'package-caches')?.bytes, 90);
    const r = rec(extra, 'package-caches');
    assert.equal(r?.bytes, 609);
    assert.deepEqual(
      r?.evidence.map((e) => [e.path, e.bytes, e.note, e.layer]),
      [
        ['root/.cache/pip', 500, 'pip', 1],
        ['home/me/.npm', 70, 'npm', 1],
        ['root/.cache/go-build', 9, 'go build cache', 1],
        ['var/cache/apk', 30, 'apk cache', 1],
      ],
    );
    assert.equal(rec(run([base]), 'package-caches'), undefined);
  });

  it('documentation and locales, keeping copyright files and the kept locales', () => {
    const layers = [
      [
        file('usr/share/doc/bash/copyright', 100),
        file('usr/share/doc/bash/README.gz', 900),
        file('usr/share/man/man1/bash.1.gz', 300),
        file('usr/share/info/bash.info.gz', 50),
        file('usr/share/locale/de/LC_MESSAGES/bash.mo', 400),
        file('usr/share/locale/en/LC_MESSAGES/bash.mo', 380),
        file('usr/share/locale/locale.alias', 20),
      ],
    ];
    const r = rec(run(layers), 'docs-locales');
    assert.equal(r?.bytes, 900 + 300 + 50 + 400);
    assert.deepEqual(
      r?.evidence.map((e) => [e.path, e.bytes]),
      [
        ['usr/share/doc', 900],
        ['usr/share/man', 300],
        ['usr/share/info', 50],
        ['usr/share/locale', 400],
      ],
    );
    assert.equal(rec(run(layers, { keepLocales: [] }), 'docs-locales')?.bytes, 900 + 300 + 50 + 400 + 380);
    assert.equal(rec(run([[file('usr/share/doc/x/copyright', 10)]]), 'docs-locales'), undefined);
  });

  it('sorts recommendations by the bytes they save', () => {
    const bytes = toolchainImage(['app']).report.recommendations.map((r) => r.bytes);
    assert.deepEqual(
      bytes,
      [...bytes].sort((x, y) => y - x),
    );
    assert.ok(bytes.every((b) => b > 0));
  });
});
