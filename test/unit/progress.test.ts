import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createProgress } from '../../src/cli/progress.js';

function sink(isTTY: boolean): Writable & { isTTY: boolean; text: string } {
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      stream.text += chunk.toString();
      callback();
    },
  }) as Writable & { isTTY: boolean; text: string; columns: number };
  stream.isTTY = isTTY;
  stream.text = '';
  stream.columns = 100;
  return stream;
}

async function drive(stream: Writable & { isTTY: boolean }, quiet: boolean): Promise<void> {
  const progress = createProgress(stream, quiet);
  progress.addTotal(2_000_000);
  progress.start('a', 'layer 1/2', 1_000_000);
  progress.update('a', 500_000);
  await sleep(150);
  progress.done('a');
  progress.stop();
}

test('bars on a terminal: a line per item and a total, cleared at the end', async () => {
  const tty = sink(true);
  await drive(tty, false);
  assert.match(tty.text, /layer 1\/2 +\[={12} {12}\] +50% 500kB\/1MB/);
  assert.match(tty.text, /total +\[={6} {18}\] +25% 500kB\/2MB/);
  assert.ok(tty.text.endsWith('\x1b[2K\n\x1b[2K\n\x1b[2A'), 'the bars are cleared');
});

test('nothing in a pipe, and nothing with --quiet', async () => {
  const pipe = sink(false);
  await drive(pipe, false);
  assert.equal(pipe.text, '');
  const quiet = sink(true);
  await drive(quiet, true);
  assert.equal(quiet.text, '');
});
