import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { sha256 } from '../../src/image/digest.js';
import { RegistryClient } from '../../src/registry/client.js';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.js';
import {
  buildTinyImage,
  pushWithSkopeo,
  startRegistry,
  type TestRegistry,
  type TinyImage,
  type TokenServer,
} from '../support/registry.js';
import { copyTo, FAST_RETRY, peerView, rejectsWith, slowSource } from './helpers.js';

const PASSWORD = 'push-Pass-w0rd';
const ALICE = `alice:${PASSWORD}`;

let work: string;
let image: TinyImage;
let expected: string;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'ballast-push-auth-'));
  image = await buildTinyImage(join(work, 'layout'), { layers: [{ 'big.bin': randomBytes(1024 * 1024) }] });
  expected = (await peerView(image.ref)).digest;
});

after(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('push to a registry with bearer tokens', () => {
  let registry: TestRegistry;
  let tokens: TokenServer;
  let proxy: FaultProxy;

  before(async () => {
    registry = await startRegistry({ auth: 'token', users: { alice: PASSWORD } });
    tokens = registry.tokenServer as TokenServer;
    proxy = await startFaultProxy(registry.host);
    await pushWithSkopeo(registry, image.ref, 'team/base:1', ALICE);
  });

  after(async () => {
    await proxy?.close();
    await registry?.stop();
  });

  test('with credentials: digest kept, one pull+push token for the whole push', async () => {
    tokens.reset();
    const to = `docker://${registry.host}/team/app:1`;
    const { result } = await copyTo(image.ref, to, { destination: { registry: { creds: ALICE } } });
    assert.equal(result.digest, expected);
    assert.equal(tokens.log.length, 1);
    assert.deepEqual(tokens.log[0]?.scopes, ['repository:team/app:pull,push']);
    assert.equal((await peerView(to, ALICE)).digest, expected);
  });

  test('a mount from another repository asks for pull on it as well', async () => {
    tokens.reset();
    const from = `docker://${registry.host}/team/base:1`;
    const run1 = await copyTo(from, `docker://${registry.host}/team/mounted:1`, {
      source: { creds: ALICE },
      destination: { registry: { creds: ALICE } },
    });
    assert.equal(run1.result.blobsMounted, 2);
    assert.ok(
      tokens.log.some(
        (r) =>
          r.scopes.includes('repository:team/base:pull') &&
          r.scopes.includes('repository:team/mounted:pull,push'),
      ),
    );
  });

  test('anonymous: AUTH_FAILED, one line that says what to do', async () => {
    const error = await rejectsWith(
      copyTo(image.ref, `docker://${registry.host}/team/anon:1`),
      'AUTH_FAILED',
    );
    assert.equal(error.exitCode, 1);
    assert.match(error.message, /pushing to .*team\/anon requires authentication/);
    assert.ok(!error.message.includes('\n'));
    assert.match(error.hint ?? '', /ballast login/);
  });

  test('a push token that expires during a chunked upload is refreshed and the chunk sent again', async () => {
    tokens.reset();
    tokens.lifetimeSeconds = 1;
    proxy.requests.length = 0;
    let armed = false;
    try {
      const to = `docker://${proxy.host}/team/slow:1`;
      const { result } = await copyTo(image.ref, to, {
        destination: { registry: { creds: ALICE }, chunked: true, chunkSize: 128 * 1024 },
        // 1 MiB at 64 KiB per 100 ms: about 1.6 s, longer than a token lives.
        wrap: (source) => slowSource(source, 64 * 1024, 100),
        copy: {
          onEvent: (event) => {
            if (event.type === 'blob-progress' && !armed && event.bytes > 256 * 1024) {
              armed = true;
              // The next token the client asks for is already expired when the registry sees it.
              tokens.expiredTokensToIssue = 1;
            }
          },
        },
      });
      assert.equal(result.digest, expected);
      assert.equal((await peerView(`docker://${registry.host}/team/slow:1`, ALICE)).digest, expected);
      const refused = proxy.requests.filter((r) => r.status === 401 && r.headers.authorization !== undefined);
      assert.ok(refused.length >= 1, 'the registry refused the expired token');
      assert.ok(
        refused.every(
          (r) => r.method === 'PATCH' || r.method === 'PUT' || r.method === 'HEAD' || r.method === 'POST',
        ),
      );
      assert.ok(tokens.log.length >= 3, `${tokens.log.length} token requests`);
    } finally {
      tokens.lifetimeSeconds = 300;
      tokens.expiredTokensToIssue = 0;
    }
  });

  test('a refused token on a monolithic PUT: Expect: 100-continue leaves the stream unread for the retry', async () => {
    tokens.reset();
    tokens.lifetimeSeconds = 1;
    // Straight to the registry: a proxy of node's would answer 100 Continue itself.
    const client = new RegistryClient(registry.host, { creds: ALICE, retry: FAST_RETRY, env: {} });
    try {
      const blob = randomBytes(300 * 1024);
      const descriptor = { digest: sha256(blob), size: blob.length };
      const session = await client.startUpload('team/direct');
      await new Promise((resolve) => setTimeout(resolve, 1100));
      tokens.expiredTokensToIssue = 1;
      const before = tokens.log.length;
      // No reopen: a retry that needed the stream again would fail.
      const result = await client.uploadBlob('team/direct', descriptor, Readable.from([blob]), { session });
      assert.equal(result.chunked, false);
      assert.equal(result.attempts, 2);
      // The expired token, then a good one.
      assert.equal(tokens.log.length - before, 2);
      assert.equal(
        await client.hasBlob('team/direct', descriptor.digest, { actions: ['pull', 'push'] }),
        true,
      );
    } finally {
      client.close();
      tokens.lifetimeSeconds = 300;
      tokens.expiredTokensToIssue = 0;
    }
  });
});

describe('push to a registry with basic auth', () => {
  let registry: TestRegistry;

  before(async () => {
    registry = await startRegistry({ auth: 'basic', users: { alice: PASSWORD } });
  });

  after(async () => {
    await registry?.stop();
  });

  test('with credentials: digest kept', async () => {
    const to = `docker://${registry.host}/basic/app:1`;
    const { result } = await copyTo(image.ref, to, { destination: { registry: { creds: ALICE } } });
    assert.equal(result.digest, expected);
    assert.equal((await peerView(to, ALICE)).digest, expected);
  });

  test('without credentials: AUTH_FAILED', async () => {
    const error = await rejectsWith(
      copyTo(image.ref, `docker://${registry.host}/basic/none:1`),
      'AUTH_FAILED',
    );
    assert.equal(error.exitCode, 1);
    assert.match(error.message, new RegExp(registry.host));
  });

  test('a wrong password: AUTH_FAILED, the password nowhere', async () => {
    const wrong = 'Wrong-pass-123';
    const error = await rejectsWith(
      copyTo(image.ref, `docker://${registry.host}/basic/wrong:1`, {
        destination: { registry: { creds: `alice:${wrong}` } },
      }),
      'AUTH_FAILED',
    );
    assert.ok(!`${error.message} ${error.hint} ${error.stack}`.includes(wrong));
  });
});
