import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { BallastError } from '../../src/errors.js';
import { TarIndex } from '../../src/sources/archive/tar-index.js';
import { scanTar } from '../../src/sources/archive/tar-stream.js';
import { makeTar, pseudoRandom, run } from '../support/fixtures.js';

const longDir = `${'d'.repeat(60)}/${'e'.repeat(60)}`;
const entries = [
  { name: 'plain.txt', data: 'hello\n' },
  { name: `${longDir}/pax-named-file.bin`, data: pseudoRandom('pax', 1500), longNames: 'pax' as const },
  { name: `${longDir}/gnu-named-file.bin`, data: pseudoRandom('gnu', 700), longNames: 'gnu' as const },
  { name: 'big256.bin', data: pseudoRandom('b256', 513), base256Size: true },
  { name: 'blobs', type: 'dir' as const },
  { name: 'blobs/sha256', type: 'dir' as const },
  { name: 'blobs/sha256/abc', data: 'layer bytes' },
  { name: 'legacy', type: 'dir' as const },
  { name: 'legacy/layer.tar', type: 'symlink' as const, linkname: '../blobs/sha256/abc' },
  { name: 'chain', type: 'symlink' as const, linkname: 'legacy/layer.tar' },
  { name: 'hard', type: 'hardlink' as const, linkname: 'plain.txt' },
  { name: './dotted/./name.txt', data: 'dot' },
  { name: 'loop-a', type: 'symlink' as const, linkname: 'loop-b' },
  { name: 'loop-b', type: 'symlink' as const, linkname: 'loop-a' },
];

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ballast-tar-test-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function expectArchiveInvalid(path: string, pattern: RegExp): Promise<void> {
  await assert.rejects(TarIndex.open(path), (error: unknown) => {
    assert.ok(BallastError.is(error));
    assert.equal(error.code, 'ARCHIVE_INVALID');
    assert.match(error.message, pattern);
    assert.ok(error.message.includes(path));
    return true;
  });
}

describe('TarIndex', () => {
  it('indexes ustar, pax and GNU long names and base-256 sizes by headers, as GNU tar lists them', async () => {
    const path = join(dir, 'mixed.tar');
    await writeFile(path, makeTar(entries));
    const listed = (await run('tar', ['-tf', path])).trim().split('\n');
    assert.ok(listed.includes(`${longDir}/pax-named-file.bin`));
    assert.ok(listed.includes(`${longDir}/gnu-named-file.bin`));
    const index = await TarIndex.open(path);
    try {
      for (const entry of entries.filter((e) => 'data' in e)) {
        const member = index.get(entry.name);
        assert.ok(member, entry.name);
        assert.deepEqual(await index.read(member, 1 << 20), Buffer.from(entry.data!));
      }
      assert.equal(index.get('big256.bin')?.size, 513);
      assert.equal(index.get('dotted/name.txt')?.size, 3);
    } finally {
      await index.close();
    }
  });

  it('follows symlinks (relative to their folder) and hard links to regular members', async () => {
    const path = join(dir, 'links.tar');
    await writeFile(path, makeTar(entries));
    const index = await TarIndex.open(path);
    try {
      assert.equal(index.get('legacy/layer.tar')?.name, 'blobs/sha256/abc');
      assert.equal(index.get('chain')?.name, 'blobs/sha256/abc');
      assert.equal(index.get('hard')?.name, 'plain.txt');
      assert.equal(index.get('loop-a'), undefined);
      assert.equal(index.get('blobs'), undefined);
      assert.equal(index.get('missing'), undefined);
    } finally {
      await index.close();
    }
  });

  it('accepts an archive without end blocks, as docker does', async () => {
    const path = join(dir, 'no-end.tar');
    await writeFile(path, makeTar(entries.slice(0, 2), { endBlocks: false }));
    const index = await TarIndex.open(path);
    assert.equal(index.members.size, 2);
    await index.close();
  });

  it('is ARCHIVE_INVALID when cut inside a body or a header, or when not a tar', async () => {
    const whole = makeTar(entries);
    const inBody = join(dir, 'cut-body.tar');
    await writeFile(inBody, whole.subarray(0, 512 * 5 + 100));
    await expectArchiveInvalid(inBody, /is truncated: member .*pax-named-file\.bin needs \d+ bytes/);
    const inHeader = join(dir, 'cut-header.tar');
    await writeFile(inHeader, whole.subarray(0, 1024 + 300));
    await expectArchiveInvalid(inHeader, /truncated/);
    const garbage = join(dir, 'garbage.tar');
    await writeFile(garbage, pseudoRandom('garbage', 4096));
    await expectArchiveInvalid(garbage, /is not a tar archive \(no valid tar header at offset 0\)/);
    const gz = join(dir, 'gz.tar');
    await writeFile(gz, Buffer.concat([Buffer.from([0x1f, 0x8b]), pseudoRandom('gz', 1000)]));
    await expectArchiveInvalid(gz, /gzip-compressed/);
  });
});

describe('scanTar (the streaming pass)', () => {
  it('sees the same members, offsets and bytes as the file index', async () => {
    const bytes = makeTar(entries);
    const path = join(dir, 'scan.tar');
    await writeFile(path, bytes);
    const index = await TarIndex.open(path);
    const seen = new Map<string, { offset: number; data: Buffer }>();
    // Odd chunk sizes exercise headers and bodies split across chunks.
    const chunks: Buffer[] = [];
    for (let i = 0; i < bytes.length; i += 333) chunks.push(bytes.subarray(i, i + 333));
    await scanTar(Readable.from(chunks), 'test stream', (member) => {
      const parts: Buffer[] = [];
      return {
        data(chunk) {
          parts.push(Buffer.from(chunk));
        },
        end() {
          seen.set(member.name, { offset: member.offset, data: Buffer.concat(parts) });
          return undefined;
        },
      };
    });
    assert.equal(seen.size, index.members.size);
    for (const [name, member] of index.members) {
      assert.equal(seen.get(name)?.offset, member.offset, name);
      if (member.type === 'file') assert.deepEqual(seen.get(name)?.data, await index.read(member, 1 << 20));
    }
    await index.close();
  });

  it('stops early when asked and fails a truncated stream', async () => {
    const bytes = makeTar(entries);
    let count = 0;
    await scanTar(Readable.from([bytes]), 'test stream', () => {
      count++;
      return count === 2 ? 'stop' : undefined;
    });
    assert.equal(count, 2);
    await assert.rejects(
      scanTar(Readable.from([bytes.subarray(0, 2000)]), 'the save stream', () => undefined),
      /the save stream is truncated inside member/,
    );
  });
});
