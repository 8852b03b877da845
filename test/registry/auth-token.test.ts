import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { RegistryClient } from '../../src/registry/client.js';
import { rejectsWith } from '../support/assert.js';
import { startFaultProxy } from '../support/fault-proxy.js';
import {
  buildTinyImage,
  pushWithSkopeo,
  skopeoInspect,
  startRegistry,
  streamDigest,
  type TestRegistry,
  type TokenServer,
} from '../support/registry.js';

const PASSWORD = 'token-Pass-w0rd';
const WRONG = 'not-the-Token-pass';

interface RawManifest {
  config: { digest: string; size: number };
  layers: { digest: string; size: number }[];
}

describe('registry with bearer tokens (our token server, ES256 with x5c)', () => {
  let registry: TestRegistry;
  let tokens: TokenServer;
  let work: string;
  let digest: string;
  let raw: RawManifest;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'ballast-token-'));
    const image = await buildTinyImage(join(work, 'layout'), {
      layers: [{ 'a.txt': 'a\n' }, { 'b.txt': 'b\n' }, { 'c.txt': 'c\n' }],
    });
    registry = await startRegistry({ auth: 'token', users: { alice: PASSWORD } });
    tokens = registry.tokenServer as TokenServer;
    await pushWithSkopeo(registry, image.ref, 'team/app:v1', `alice:${PASSWORD}`);
    const args = ['--creds', `alice:${PASSWORD}`];
    digest = String((await skopeoInspect(`docker://${registry.host}/team/app:v1`, args)).Digest);
    raw = (await skopeoInspect(`docker://${registry.host}/team/app:v1`, [
      ...args,
      '--raw',
    ])) as unknown as RawManifest;
    env = { HOME: join(work, 'home'), PATH: process.env.PATH };
  });

  beforeEach(() => {
    tokens.reset();
    tokens.lifetimeSeconds = 300;
  });

  after(async () => {
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  test('anonymous: a pull token for the repository, asked once', async () => {
    const client = new RegistryClient(registry.host, { env });
    try {
      assert.equal((await client.getManifest('team/app', 'v1')).digest, digest);
      assert.equal(tokens.requests, 1);
      const record = tokens.log[0];
      assert.equal(record?.user, undefined);
      assert.deepEqual(record?.scopes, ['repository:team/app:pull']);
    } finally {
      client.close();
    }
  });

  test('credentials: the token request carries them and the token is reused for many requests', async () => {
    const client = new RegistryClient(registry.host, { creds: `alice:${PASSWORD}`, env });
    try {
      assert.equal((await client.getManifest('team/app', 'v1')).digest, digest);
      // Concurrent blob reads share the one token.
      const results = await Promise.all(
        [...raw.layers, raw.config].map(async (d) => streamDigest(await client.getBlob('team/app', d))),
      );
      assert.deepEqual(
        results.map((r) => r.digest),
        [...raw.layers, raw.config].map((d) => d.digest),
      );
      assert.deepEqual(await client.listTags('team/app'), ['v1']);
      await client.headManifest('team/app', 'v1');
      assert.equal(tokens.requests, 1, 'one token for seven requests');
      assert.equal(tokens.log[0]?.user, 'alice');
      assert.equal(client.tokenFetches, 1);
    } finally {
      client.close();
    }
  });

  test('another repository needs another scope, hence another token', async () => {
    const client = new RegistryClient(registry.host, { env });
    try {
      await client.getManifest('team/app', 'v1');
      await rejectsWith(client.getManifest('team/other', 'v1'), 'NOT_FOUND');
      assert.ok(tokens.log.some((r) => r.scopes.includes('repository:team/other:pull')));
      const before = tokens.requests;
      await client.getManifest('team/app', 'v1');
      assert.equal(tokens.requests, before, 'the first scope is still cached');
    } finally {
      client.close();
    }
  });

  test('a token is fetched again once expires_in has passed', async () => {
    tokens.lifetimeSeconds = 1;
    const client = new RegistryClient(registry.host, { env });
    try {
      await client.getManifest('team/app', 'v1');
      await client.getManifest('team/app', 'v1');
      assert.equal(tokens.requests, 1);
      await new Promise((r) => setTimeout(r, 1100));
      await client.getManifest('team/app', 'v1');
      assert.equal(tokens.requests, 2);
    } finally {
      client.close();
    }
  });

  test('a freshly issued token the registry refuses is AUTH_FAILED, and not kept', async () => {
    const client = new RegistryClient(registry.host, { env });
    try {
      tokens.expiredTokensToIssue = 1;
      const error = await rejectsWith(client.getManifest('team/app', 'v1'), 'AUTH_FAILED');
      assert.match(error.message, /no credentials were sent/);
      assert.equal(tokens.requests, 1);
      assert.equal((await client.getManifest('team/app', 'v1')).digest, digest);
      assert.equal(tokens.requests, 2);
    } finally {
      client.close();
    }
  });

  test('a 401 with a fresh challenge on a cached token: the token is fetched again, once', async () => {
    const proxy = await startFaultProxy(registry.host);
    const client = new RegistryClient(proxy.host, { env });
    try {
      await client.getManifest('team/app', 'v1');
      assert.equal(tokens.requests, 1);
      proxy.addFault({
        kind: 'status',
        status: 401,
        headers: {
          'www-authenticate': `Bearer realm="${tokens.realm}",service="${tokens.service}",scope="repository:team/app:pull",error="invalid_token"`,
        },
        match: (r) => r.headers.authorization !== undefined,
      });
      assert.equal((await client.getManifest('team/app', 'v1')).digest, digest);
      assert.equal(tokens.requests, 2);
      assert.equal(proxy.requests.filter((r) => r.action === 'status').length, 1);
    } finally {
      client.close();
      await proxy.close();
    }
  });

  test('a wrong password: AUTH_FAILED from the token server, the password nowhere', async () => {
    const client = new RegistryClient(registry.host, { creds: `alice:${WRONG}`, env });
    try {
      const error = await rejectsWith(client.getManifest('team/app', 'v1'), 'AUTH_FAILED');
      assert.equal(error.exitCode, 1);
      assert.ok(error.message.includes(registry.host));
      assert.match(error.message, /credentials for user "alice" were sent \(from --creds\)/);
      assert.ok(!`${error.message} ${error.hint} ${error.stack}`.includes(WRONG));
      assert.equal(tokens.log[0]?.status, 401);
    } finally {
      client.close();
    }
  });

  test('an identity token in config.json is traded with the refresh_token grant', async () => {
    const dir = join(work, 'identity');
    await mkdir(dir, { recursive: true });
    const refresh = tokens.issueRefreshToken('alice');
    await writeFile(
      join(dir, 'config.json'),
      JSON.stringify({ auths: { [registry.host]: { auth: '', identitytoken: refresh } } }),
    );
    const client = new RegistryClient(registry.host, { env: { ...env, DOCKER_CONFIG: dir } });
    try {
      assert.equal((await client.getManifest('team/app', 'v1')).digest, digest);
      assert.equal(tokens.log[0]?.method, 'POST');
      assert.equal(tokens.log[0]?.grantType, 'refresh_token');
      assert.equal(tokens.log[0]?.user, 'alice');
    } finally {
      client.close();
    }
  });

  test('RS256 tokens work too', async () => {
    const rsa = await startRegistry({ auth: 'token', users: { bob: PASSWORD }, tokenAlgorithm: 'RS256' });
    const layout = join(work, 'layout');
    try {
      await pushWithSkopeo(rsa, `oci:${layout}:latest`, 'x/y:z', `bob:${PASSWORD}`);
      const client = new RegistryClient(rsa.host, { creds: `bob:${PASSWORD}`, env });
      try {
        assert.equal((await client.getManifest('x/y', 'z')).digest, digest);
      } finally {
        client.close();
      }
    } finally {
      await rsa.stop();
    }
  });
});
