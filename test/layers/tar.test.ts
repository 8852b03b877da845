import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { open, readFile as readBytes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { BallastError } from '../../src/errors.js';
import {
  normalisePath,
  parseTar,
  parseTarFile,
  type TarEntry,
  type TarIssue,
  type TarReadOptions,
  type TarSummary,
  tarEntries,
} from '../../src/layers/tar.js';
import { chunked, tarStream, type WriterEntry, writeBase256, writeTar } from '../support/tar-writer.js';

const scratch = mkdtempSync(join(tmpdir(), 'ballast-tar-test-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

async function readStream(
  tar: Buffer | Readable,
  chunkSize = 64 * 1024,
  options: TarReadOptions = {},
): Promise<{ entries: TarEntry[]; summary: TarSummary }> {
  const entries: TarEntry[] = [];
  const input = Buffer.isBuffer(tar) ? chunked(tar, chunkSize) : tar;
  const summary = await parseTar(input, (entry) => entries.push(entry), options);
  return { entries, summary };
}

let fileCount = 0;
/** The same tar read by the seeking reader, stored at an offset inside a bigger file. */
async function readFile(
  tar: Buffer,
  options: TarReadOptions = {},
): Promise<{ entries: TarEntry[]; summary: TarSummary }> {
  const path = join(scratch, `embedded-${fileCount++}.bin`);
  const before = Buffer.alloc(1000, 0xaa);
  writeFileSync(path, Buffer.concat([before, tar, Buffer.alloc(777, 0xbb)]));
  const entries: TarEntry[] = [];
  const summary = await parseTarFile(
    path,
    { offset: before.length, length: tar.length },
    (entry) => entries.push(entry),
    options,
  );
  return { entries, summary };
}

function brief(entry: TarEntry) {
  return { path: entry.path, type: entry.type, size: entry.size, linkname: entry.linkname };
}

async function rejectsLayer(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(BallastError.is(error), `expected a BallastError, got ${String(error)}`);
    assert.equal(error.code, 'LAYER_INVALID');
    assert.match(error.message, pattern);
    return true;
  });
}

const LONG = `${'d'.repeat(60)}/${'e'.repeat(70)}/${'f'.repeat(90)}`;

const KINDS: WriterEntry[] = [
  { path: 'etc/', type: 'dir', mode: 0o755 },
  { path: 'etc/hosts', body: 'hello\n', uid: 5, gid: 6, mtime: 1700000123, uname: 'u', gname: 'g' },
  { path: 'etc/link', type: 'symlink', linkname: '../usr/hosts' },
  { path: 'etc/hard', type: 'hardlink', linkname: 'etc/hosts' },
  { path: 'dev/null', type: 'char', devmajor: 1, devminor: 3 },
  { path: 'dev/sda', type: 'block', devmajor: 8, devminor: 0 },
  { path: 'run/fifo', type: 'fifo' },
  { path: 'contiguous', type: 'contiguous', body: 'c'.repeat(513) },
  { path: 'unknown', typeflag: 'A', body: 'vendor data' },
  { path: 'empty', body: '' },
];

describe('tar reader: header kinds', () => {
  it('reads every entry type with its fields', async () => {
    const tar = writeTar(KINDS);
    const { entries, summary } = await readStream(tar);
    assert.deepEqual(entries.map(brief), [
      { path: 'etc', type: 'dir', size: 0, linkname: '' },
      { path: 'etc/hosts', type: 'file', size: 6, linkname: '' },
      { path: 'etc/link', type: 'symlink', size: 0, linkname: '../usr/hosts' },
      { path: 'etc/hard', type: 'hardlink', size: 0, linkname: 'etc/hosts' },
      { path: 'dev/null', type: 'char', size: 0, linkname: '' },
      { path: 'dev/sda', type: 'block', size: 0, linkname: '' },
      { path: 'run/fifo', type: 'fifo', size: 0, linkname: '' },
      { path: 'contiguous', type: 'file', size: 513, linkname: '' },
      { path: 'unknown', type: 'other', size: 11, linkname: '' },
      { path: 'empty', type: 'file', size: 0, linkname: '' },
    ]);
    const hosts = entries[1]!;
    assert.equal(hosts.uid, 5);
    assert.equal(hosts.gid, 6);
    assert.equal(hosts.mtime, 1700000123);
    assert.equal(hosts.uname, 'u');
    assert.equal(hosts.gname, 'g');
    assert.equal(hosts.mode, 0o644);
    assert.equal(entries[0]!.mode, 0o755);
    assert.equal(hosts.offset, 512);
    assert.equal(hosts.dataOffset, 1024);
    assert.equal(entries[8]!.typeflag, 'A');
    assert.equal(summary.entries, 10);
    assert.equal(summary.endMarker, true);
    assert.equal(summary.bytes, tar.length);
    assert.deepEqual(
      summary.issues.map((issue) => issue.code),
      ['unknown-type'],
    );
  });

  it('treats a v7 regular entry whose name ends in / as a directory', async () => {
    const tar = writeTar([{ path: 'olddir/', typeflag: '0', size: 0 }]);
    const { entries } = await readStream(tar);
    assert.equal(entries[0]!.type, 'dir');
    assert.equal(entries[0]!.path, 'olddir');
  });

  it('gives the same entries whatever the chunk boundaries', async () => {
    const tar = writeTar([
      ...KINDS,
      { path: LONG, body: 'x'.repeat(1500) },
      { path: `${LONG}-gnu`, body: 'y', long: 'gnu' },
      { path: 'big', size: 5_000 },
    ]);
    const reference = (await readStream(tar)).entries;
    for (const size of [1, 7, 100, 511, 512, 513, 1023, 4096, tar.length]) {
      const { entries, summary } = await readStream(tar, size);
      assert.deepEqual(entries, reference, `chunks of ${size}`);
      assert.equal(summary.bytes, tar.length);
    }
  });

  it('reads entries through the async iterator', async () => {
    const tar = writeTar(KINDS);
    const paths: string[] = [];
    for await (const entry of tarEntries(chunked(tar, 700))) paths.push(entry.path);
    assert.deepEqual(
      paths,
      KINDS.map((entry) => normalisePath(entry.path)),
    );
  });

  it('reads an empty stream as an empty archive', async () => {
    const { entries, summary } = await readStream(Buffer.alloc(0));
    assert.equal(entries.length, 0);
    assert.equal(summary.endMarker, false);
    assert.equal(summary.issueCount, 0);
  });
});

describe('tar reader: long names and big numbers', () => {
  it('reads pax paths, link paths, sizes, times and ids', async () => {
    const tar = writeTar([
      { path: LONG, body: 'x'.repeat(1000), mtime: 1700000000.25, uid: 3_000_000, gid: 4_000_000 },
      { path: 'l', type: 'symlink', linkname: LONG },
      { path: 'h', type: 'hardlink', linkname: `./${LONG}` },
      { path: 'unicode-ü', body: 'u', pax: { uname: 'jürgen', gname: 'staff' } },
    ]);
    const { entries } = await readStream(tar);
    assert.equal(entries.length, 4);
    const [file, link, hard, unicode] = entries as [TarEntry, TarEntry, TarEntry, TarEntry];
    assert.equal(file.path, LONG);
    assert.equal(file.size, 1000);
    assert.equal(file.mtime, 1700000000.25);
    assert.equal(file.uid, 3_000_000);
    assert.equal(file.gid, 4_000_000);
    assert.equal(file.offset, 0, 'the offset is the pax header');
    assert.equal(file.dataOffset, 3 * 512);
    assert.equal(link.linkname, LONG);
    assert.equal(hard.linkname, LONG);
    assert.equal(unicode.path, 'unicode-ü');
    assert.equal(unicode.uname, 'jürgen');
  });

  it('reads GNU long names and long link names', async () => {
    const tar = writeTar([
      { path: LONG, body: 'gnu', long: 'gnu' },
      { path: 'sym', type: 'symlink', linkname: LONG, long: 'gnu' },
      { path: `${LONG}/both`, type: 'hardlink', linkname: LONG, long: 'gnu' },
      { path: 'short', body: 'after' },
    ]);
    const { entries } = await readStream(tar);
    assert.deepEqual(entries.map(brief), [
      { path: LONG, type: 'file', size: 3, linkname: '' },
      { path: 'sym', type: 'symlink', size: 0, linkname: LONG },
      { path: `${LONG}/both`, type: 'hardlink', size: 0, linkname: LONG },
      { path: 'short', type: 'file', size: 5, linkname: '' },
    ]);
  });

  it('joins the ustar prefix and name', async () => {
    const path = LONG.slice(0, 150);
    const tar = writeTar([{ path, body: 'p', long: 'ustar-prefix' }]);
    assert.equal(tar.length, 512 * 4, 'no pax header was needed');
    const { entries } = await readStream(tar);
    assert.equal(entries[0]!.path, path);
  });

  it('applies pax global headers to later entries, under local ones', async () => {
    const tar = writeTar(
      [
        { path: 'a', body: '1' },
        { path: 'b', body: '2', pax: { uname: 'local' } },
        { path: 'c', body: '3', pax: { mtime: '' } },
      ],
      { global: { uname: 'global', mtime: '1234567890.5' } },
    );
    const { entries } = await readStream(tar);
    assert.deepEqual(
      entries.map((entry) => [entry.path, entry.uname, entry.mtime]),
      [
        ['a', 'global', 1234567890.5],
        ['b', 'local', 1234567890.5],
        ['c', 'global', 1700000000],
      ],
    );
  });

  it('reads base-256 numbers, positive and negative', async () => {
    const tar = writeTar([
      { path: 'b256', body: 'abc', base256: true },
      { path: 'old', body: '', mtime: -100, long: 'gnu' },
    ]);
    const { entries } = await readStream(tar);
    assert.equal(entries[0]!.size, 3);
    assert.equal(entries[1]!.mtime, -100);
  });

  it('skips a 9 GiB body declared in base-256 without holding it', async () => {
    const size = 9 * 1024 ** 3 + 1;
    const stream = tarStream([
      { path: 'huge', size, long: 'gnu' },
      { path: 'after', body: 'tail' },
    ]);
    const { entries, summary } = await readStream(stream);
    assert.deepEqual(
      entries.map((entry) => [entry.path, entry.size]),
      [
        ['huge', size],
        ['after', 4],
      ],
    );
    assert.equal(summary.bytes, 512 + size + 511 + 1024 + 1024);
  });

  it('seeks over a 9 GiB body in a sparse file', async () => {
    const size = 9 * 1024 ** 3 + 5;
    const head = writeTar([{ path: 'huge', size: 0, long: 'gnu' }], { end: 'none' });
    writeBase256(head, size, 124, 12);
    // Re-checksum the edited header.
    head.fill(32, 148, 156);
    let sum = 0;
    for (const byte of head) sum += byte;
    head.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
    const tail = writeTar([{ path: 'after', body: 'tail' }]);
    const path = join(scratch, 'sparse.tar');
    const handle = await open(path, 'w');
    await handle.write(head, 0, head.length, 0);
    const tailAt = 512 + size + (512 - (size % 512));
    await handle.write(tail, 0, tail.length, tailAt);
    await handle.close();
    const entries: TarEntry[] = [];
    const summary = await parseTarFile(path, {}, (entry) => entries.push(entry));
    assert.deepEqual(
      entries.map((entry) => [entry.path, entry.size]),
      [
        ['huge', size],
        ['after', 4],
      ],
    );
    assert.equal(summary.endMarker, true);
    // GNU tar agrees on the listing.
    const listing = execFileSync('tar', ['-tvf', path], { encoding: 'utf8' });
    assert.match(listing, new RegExp(`${size} .* huge`));
    rmSync(path);
  });
});

describe('tar reader: paths', () => {
  it('normalises paths', () => {
    const cases: [string, string][] = [
      ['./a/b', 'a/b'],
      ['/a/b', 'a/b'],
      ['a//b', 'a/b'],
      ['a/./b/', 'a/b'],
      ['./', ''],
      ['.', ''],
      ['a/../b', 'b'],
      ['a/b/..', 'a'],
      ['../etc/passwd', '../etc/passwd'],
      ['a/../../x', '../x'],
      ['foo./bar', 'foo./bar'],
      ['.wh..wh..opq', '.wh..wh..opq'],
      ['plain/path.txt', 'plain/path.txt'],
    ];
    for (const [raw, expected] of cases) assert.equal(normalisePath(raw), expected, raw);
  });

  it('reports entries that climb out of the root and never resolves them inside it', async () => {
    const issues: TarIssue[] = [];
    const tar = writeTar([
      { path: '../../etc/passwd', body: 'evil' },
      { path: 'ok/../fine', body: 'fine' },
      { path: 'hl', type: 'hardlink', linkname: '../outside' },
      { path: '/abs/path', body: 'a' },
    ]);
    const { entries, summary } = await readStream(tar, 512, { onIssue: (issue) => issues.push(issue) });
    assert.deepEqual(
      entries.map((entry) => [entry.path, entry.unsafe]),
      [
        ['../../etc/passwd', true],
        ['fine', false],
        ['hl', true],
        ['abs/path', false],
      ],
    );
    assert.deepEqual(
      summary.issues.map((issue) => issue.code),
      ['path-escapes', 'link-escapes', 'absolute-path'],
    );
    assert.deepEqual(issues, summary.issues);
    assert.equal(summary.issues[0]!.path, '../../etc/passwd');
  });
});

describe('tar reader: endings and broken archives', () => {
  const entries: WriterEntry[] = [
    { path: 'a', body: 'x'.repeat(600) },
    { path: 'b', body: 'y' },
  ];

  it('accepts an archive without its end blocks, and with one', async () => {
    for (const end of ['none', 'one-block'] as const) {
      const tar = writeTar(entries, { end });
      for (const read of [readStream, readFile]) {
        const result = await read(tar);
        assert.deepEqual(
          result.entries.map((entry) => entry.path),
          ['a', 'b'],
        );
        assert.equal(result.summary.endMarker, false, end);
        assert.deepEqual(
          result.summary.issues.map((issue) => issue.code),
          ['no-end-marker'],
        );
      }
    }
  });

  it('ignores what follows the end blocks (record padding, junk)', async () => {
    const tar = Buffer.concat([writeTar(entries, { record: 10240 }), Buffer.from('garbage after the end')]);
    const { entries: read, summary } = await readStream(tar, 333);
    assert.equal(read.length, 2);
    assert.equal(summary.endMarker, true);
    assert.equal(summary.bytes, tar.length);
    assert.equal(summary.issueCount, 0);
  });

  it('stops at a lone zero block, as GNU tar does', async () => {
    const tar = writeTar(entries, { end: 'lone-zero-then-data' });
    for (const read of [readStream, readFile]) {
      const result = await read(tar);
      assert.deepEqual(
        result.entries.map((entry) => entry.path),
        ['a', 'b'],
      );
      assert.deepEqual(
        result.summary.issues.map((issue) => issue.code),
        ['lone-zero-block'],
      );
    }
  });

  it('fails on a stream cut inside a body', async () => {
    const tar = writeTar(entries, { end: 'none' });
    const cut = tar.subarray(0, 512 + 300);
    await rejectsLayer(readStream(cut), /truncated tar: the archive ends inside the data of an entry/);
    await rejectsLayer(readFile(cut), /truncated tar.*data of an entry/);
  });

  it('fails on a stream cut inside a header', async () => {
    const tar = writeTar(entries, { end: 'none' });
    const cut = tar.subarray(0, 512 * 3 + 100);
    await rejectsLayer(readStream(cut, 64), /truncated tar: the archive ends inside a header/);
    await rejectsLayer(readFile(cut), /truncated tar.*a header/);
  });

  it('fails on a stream cut between a pax header and its entry', async () => {
    const tar = writeTar([{ path: LONG, body: 'x' }], { end: 'none' });
    const cut = tar.subarray(0, 1024);
    await rejectsLayer(readStream(cut), /truncated tar.*pax or long-name/);
    await rejectsLayer(readFile(cut), /truncated tar.*pax or long-name/);
  });

  it('tolerates a last body without its padding, and says so', async () => {
    const tar = writeTar([{ path: 'a', body: 'abc' }], { end: 'none' });
    const cut = tar.subarray(0, 512 + 3);
    for (const read of [readStream, readFile]) {
      const result = await read(cut);
      assert.equal(result.entries.length, 1);
      assert.equal(result.summary.issues[0]!.code, 'missing-padding');
    }
  });

  it('fails with a clear error on a corrupt header checksum', async () => {
    const tar = writeTar([
      { path: 'a', body: 'x' },
      { path: 'b', body: 'y', corruptChecksum: true },
    ]);
    await rejectsLayer(
      readStream(tar),
      /corrupt tar header \(checksum \d+, computed \d+\) at byte 1024 of the tar/,
    );
    await rejectsLayer(readFile(tar), /corrupt tar header .* at byte 1024/);
  });

  it('says "not a tar archive" when the first header does not verify', async () => {
    const junk = Buffer.alloc(4096, 'this is not a tar');
    await rejectsLayer(readStream(junk), /not a tar archive/);
    await rejectsLayer(readFile(junk), /not a tar archive/);
  });

  it('fails on a garbled size field', async () => {
    const tar = writeTar([{ path: 'a', body: 'x' }]);
    tar.write('9999', 124, 'ascii');
    tar.fill(32, 148, 156);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += tar[i]!;
    tar.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
    await rejectsLayer(readStream(tar), /invalid size field/);
  });

  it('fails on a malformed pax record', async () => {
    const tar = writeTar([{ path: 'a', body: 'x', pax: { comment: 'ok' } }]);
    tar.write('99', 512, 'ascii'); // the record's length now overruns the header
    await rejectsLayer(readStream(tar), /malformed pax extended header record at byte 0/);
  });
});

describe('tar reader: bodies on request', () => {
  const status = `Package: libc6\nStatus: install ok installed\n${'x'.repeat(100_000)}\n`;
  const tar = writeTar([
    { path: 'usr/bin/big', size: 300_000 },
    { path: 'var/lib/dpkg/status', body: status },
    { path: 'var/lib/dpkg/info/libc6:amd64.list', body: '/.\n/lib\n' },
    { path: 'var/lib/dpkg/info/empty.list', body: '' },
    { path: 'etc/other', body: 'not wanted' },
  ]);
  const wantBody = (entry: TarEntry) => entry.path.startsWith('var/lib/dpkg/');

  it('hands over the bodies asked for, whatever the chunking', async () => {
    for (const size of [97, 511, 4096, 65536]) {
      const { entries } = await readStream(tar, size, { wantBody });
      const bodies = entries.filter((entry) => entry.body !== undefined);
      assert.deepEqual(
        bodies.map((entry) => [entry.path, entry.body!.toString()]),
        [
          ['var/lib/dpkg/status', status],
          ['var/lib/dpkg/info/libc6:amd64.list', '/.\n/lib\n'],
          ['var/lib/dpkg/info/empty.list', ''],
        ],
      );
      assert.deepEqual(
        entries.map((entry) => entry.path),
        [
          'usr/bin/big',
          'var/lib/dpkg/status',
          'var/lib/dpkg/info/libc6:amd64.list',
          'var/lib/dpkg/info/empty.list',
          'etc/other',
        ],
      );
    }
  });

  it('hands over the same bodies from the seeking reader', async () => {
    const stream = await readStream(tar, 4096, { wantBody });
    const file = await readFile(tar, { wantBody });
    assert.deepEqual(file.entries, stream.entries);
  });

  it('skips a body larger than the limit and reports it', async () => {
    const { entries, summary } = await readStream(tar, 4096, { wantBody, maxBodyBytes: 1000 });
    assert.equal(entries[1]!.body, undefined);
    assert.equal(entries[2]!.body!.toString(), '/.\n/lib\n');
    assert.equal(summary.issues[0]!.code, 'body-too-large');
  });
});

describe('tar reader: the seeking file reader', () => {
  it('gives the same entries as the stream reader', async () => {
    const tar = writeTar([
      ...KINDS,
      { path: LONG, body: 'x'.repeat(1500) },
      { path: `${LONG}-gnu`, body: 'y', long: 'gnu' },
      { path: 'big', size: 200_000 },
      { path: 'after-big', body: 'z' },
    ]);
    const stream = await readStream(tar);
    const file = await readFile(tar);
    assert.deepEqual(file.entries, stream.entries);
    assert.deepEqual(file.summary, stream.summary);
  });

  it('fails when the range lies beyond the file', async () => {
    const path = join(scratch, 'short.tar');
    writeFileSync(path, writeTar([{ path: 'a', body: 'x' }]));
    await rejectsLayer(
      parseTarFile(path, { offset: 100, length: 10_000 }, () => {}),
      /lies beyond the file/,
    );
  });
});

describe('tar reader: archives GNU tar wrote', () => {
  const root = join(scratch, 'tree');
  mkdirSync(join(root, 'usr/bin'), { recursive: true });
  writeFileSync(join(root, 'usr/bin/tool'), Buffer.alloc(12_345, 1));
  writeFileSync(join(root, 'usr/bin/empty'), '');
  linkSync(join(root, 'usr/bin/tool'), join(root, 'usr/bin/tool-hardlink'));
  symlinkSync('tool', join(root, 'usr/bin/tool-symlink'));
  const deep = join(root, 'x'.repeat(120), 'y'.repeat(120));
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, `${'z'.repeat(150)}.txt`), 'deep file\n');

  /** `tar -tv` as [type char, size, path] for regular files, links and directories. */
  function gnuListing(path: string): [string, number, string][] {
    const text = execFileSync('tar', ['--numeric-owner', '--quoting-style=literal', '-tvf', path], {
      encoding: 'utf8',
    });
    return text
      .trim()
      .split('\n')
      .map((line) => {
        const match = /^(\S)\S+\s+\S+\s+(\d+|\d+,\d+)\s+\S+\s+\S+\s+(.*?)(?: -> .*| link to .*)?$/.exec(line);
        assert.ok(match, line);
        const size = match[2]!.includes(',') ? 0 : Number(match[2]); // devices show major,minor
        return [match[1]!, size, normalisePath(match[3]!)];
      });
  }

  // ustar stores at most 255 bytes of path (prefix + name), v7 100: they get a shallower tree.
  const ustarRoot = join(scratch, 'tree-ustar');
  mkdirSync(join(ustarRoot, 'usr/bin'), { recursive: true });
  writeFileSync(join(ustarRoot, 'usr/bin/tool'), Buffer.alloc(4321, 2));
  linkSync(join(ustarRoot, 'usr/bin/tool'), join(ustarRoot, 'usr/bin/tool-hardlink'));
  symlinkSync('tool', join(ustarRoot, 'usr/bin/tool-symlink'));
  const ustarDeep = join(ustarRoot, 'x'.repeat(80), 'w'.repeat(60));
  mkdirSync(ustarDeep, { recursive: true });
  writeFileSync(join(ustarDeep, `${'z'.repeat(90)}.txt`), 'deep file\n');

  const formats: [string, string, string[], number][] = [
    ['pax', root, [], 120 + 1 + 120 + 1 + 154],
    ['gnu', root, [], 120 + 1 + 120 + 1 + 154],
    ['ustar', ustarRoot, [], 80 + 1 + 60 + 1 + 94],
    ['v7', ustarRoot, [`--exclude=./${'x'.repeat(80)}`], 0],
  ];
  for (const [format, tree, extra, longestLength] of formats) {
    it(`reads GNU tar --format=${format} as tar -tv lists it`, async () => {
      const path = join(scratch, `gnu-${format}.tar`);
      execFileSync('tar', [`--format=${format}`, ...extra, '-C', tree, '-cf', path, '.'], { stdio: 'pipe' });
      const bytes = await readBytes(path);
      const { entries } = await readStream(bytes, 10_000);
      const ours = entries.map((entry): [string, number, string] => [
        { file: '-', dir: 'd', symlink: 'l', hardlink: 'h', char: 'c', block: 'b', fifo: 'p', other: '?' }[
          entry.type
        ],
        entry.size,
        entry.path,
      ]);
      assert.deepEqual(ours, gnuListing(path));
      if (longestLength > 0) {
        const longest = entries.find((entry) => entry.path.endsWith('.txt'))!;
        assert.equal(longest.path.length, longestLength);
      }
      const hardlink = entries.find((entry) => entry.type === 'hardlink')!;
      assert.ok(['usr/bin/tool', 'usr/bin/tool-hardlink'].includes(hardlink.linkname));
      const file = await readFile(bytes);
      assert.deepEqual(file.entries, entries);
    });
  }

  it('steps over GNU sparse files (old GNU extension blocks, pax 1.0) without losing its place', async () => {
    const dir = join(scratch, 'sparse-tree');
    mkdirSync(dir);
    const handle = await open(join(dir, 'sparse'), 'w');
    // Ten data islands: more than the four an old GNU header holds, so extension blocks follow.
    for (let i = 0; i < 10; i++) await handle.write(Buffer.alloc(4096, i + 1), 0, 4096, i * 409_600);
    await handle.close();
    writeFileSync(join(dir, 'after'), 'after\n');
    for (const format of ['gnu', 'pax']) {
      const path = join(scratch, `sparse-${format}.tar`);
      execFileSync('tar', [`--format=${format}`, '--sparse', '-C', dir, '-cf', path, 'sparse', 'after']);
      const bytes = await readBytes(path);
      for (const read of [readStream, readFile]) {
        const { entries, summary } = await read(bytes);
        assert.deepEqual(
          entries.map((entry) => [entry.path, entry.type]),
          [
            ['sparse', 'file'],
            ['after', 'file'],
          ],
          format,
        );
        assert.equal(entries[1]!.size, 6);
        assert.deepEqual(
          summary.issues.map((issue) => issue.code),
          ['sparse'],
        );
      }
    }
  });

  it('writes archives that GNU tar lists as written', () => {
    const written: WriterEntry[] = [
      ...KINDS.filter((entry) => entry.typeflag === undefined),
      { path: LONG, body: 'x'.repeat(1000) },
      { path: `${LONG}-gnu`, body: 'y', long: 'gnu' },
      { path: LONG.slice(0, 150), body: 'z', long: 'ustar-prefix' },
      { path: 'b256', body: 'abc', base256: true },
      { path: 'sym-long', type: 'symlink', linkname: LONG },
    ];
    const path = join(scratch, 'ours.tar');
    writeFileSync(path, writeTar(written, { global: { comment: 'global' } }));
    const listing = gnuListing(path);
    assert.deepEqual(
      listing.map(([, size, name]) => [name, size]),
      written.map((entry) => {
        const body = typeof entry.body === 'string' ? Buffer.byteLength(entry.body) : (entry.size ?? 0);
        const type = entry.type ?? 'file';
        return [normalisePath(entry.path), type === 'file' || type === 'contiguous' ? body : 0];
      }),
    );
  });
});
