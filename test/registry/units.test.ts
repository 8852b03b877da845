import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { BallastError } from '../../src/errors.js';
import { parseWwwAuthenticate } from '../../src/registry/auth.js';
import { describeErrorBody, isLoopback, RegistryClient, registryApiHost } from '../../src/registry/client.js';
import {
  authKeyHost,
  DOCKER_HUB_AUTH_KEY,
  findCredentials,
  parseCreds,
  storeCredentials,
} from '../../src/registry/credentials.js';
import { backoffDelay, DEFAULT_RETRY, parseRetryAfter } from '../../src/registry/retry.js';
import { streamDigest } from '../support/registry.js';

describe('WWW-Authenticate', () => {
  test('a bearer challenge with quoted parameters, commas inside the scope', () => {
    const [challenge, ...rest] = parseWwwAuthenticate(
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull,push"',
    );
    assert.deepEqual(rest, []);
    assert.deepEqual(challenge, {
      scheme: 'bearer',
      params: {
        realm: 'https://auth.docker.io/token',
        service: 'registry.docker.io',
        scope: 'repository:library/ubuntu:pull,push',
      },
    });
  });

  test('an error parameter, and two challenges in one header', () => {
    const challenges = parseWwwAuthenticate(
      'Bearer realm="http://h/token",error="insufficient_scope", Basic realm="basic-realm"',
    );
    assert.equal(challenges.length, 2);
    assert.equal(challenges[0]?.params.error, 'insufficient_scope');
    assert.deepEqual(challenges[1], { scheme: 'basic', params: { realm: 'basic-realm' } });
  });

  test('several headers, unquoted values, escapes', () => {
    const challenges = parseWwwAuthenticate(['Basic realm=x', 'Bearer realm="a\\"b"']);
    assert.deepEqual(
      challenges.map((c) => [c.scheme, c.params.realm]),
      [
        ['basic', 'x'],
        ['bearer', 'a"b'],
      ],
    );
    assert.deepEqual(parseWwwAuthenticate(undefined), []);
  });
});

describe('retry timing', () => {
  test('Retry-After in seconds and as an HTTP date', () => {
    assert.equal(parseRetryAfter('1'), 1000);
    assert.equal(parseRetryAfter(' 30 '), 30_000);
    const now = Date.parse('2024-01-01T00:00:00Z');
    assert.equal(parseRetryAfter('Mon, 01 Jan 2024 00:00:05 GMT', now), 5000);
    assert.equal(parseRetryAfter('Mon, 01 Jan 2023 00:00:05 GMT', now), 0);
    assert.equal(parseRetryAfter('soon'), undefined);
    assert.equal(parseRetryAfter(undefined), undefined);
  });

  test('exponential backoff, jittered between half and all of it, capped', () => {
    const policy = { ...DEFAULT_RETRY, baseDelayMs: 100, maxDelayMs: 1000 };
    assert.equal(
      backoffDelay(0, policy, () => 0),
      50,
    );
    assert.equal(
      backoffDelay(0, policy, () => 1),
      100,
    );
    assert.equal(
      backoffDelay(3, policy, () => 1),
      800,
    );
    assert.equal(
      backoffDelay(10, policy, () => 1),
      1000,
    );
  });
});

describe('registry names', () => {
  test('Docker Hub is served from registry-1.docker.io', () => {
    assert.equal(registryApiHost('docker.io'), 'registry-1.docker.io');
    assert.equal(registryApiHost('ghcr.io'), 'ghcr.io');
  });

  test('loopback hosts as docker sees them', () => {
    for (const host of ['localhost', 'localhost:5000', '127.0.0.1:5000', '127.8.9.10', '[::1]:5000', '::1']) {
      assert.ok(isLoopback(host), host);
    }
    for (const host of ['128.0.0.1', 'ghcr.io', 'localhost.example:5000', '10.0.0.1:5000']) {
      assert.ok(!isLoopback(host), host);
    }
  });

  test('registry error bodies become messages', () => {
    const body = Buffer.from(
      JSON.stringify({
        errors: [
          { code: 'MANIFEST_UNKNOWN', message: 'manifest unknown', detail: { Tag: 'x' } },
          { code: 'DENIED' },
        ],
      }),
    );
    assert.deepEqual(describeErrorBody(body), {
      codes: ['MANIFEST_UNKNOWN', 'DENIED'],
      text: 'MANIFEST_UNKNOWN: manifest unknown; DENIED',
    });
    assert.deepEqual(describeErrorBody(Buffer.from('<html>\n  Bad   gateway</html>')), {
      codes: [],
      text: '<html> Bad gateway</html>',
    });
  });
});

describe('credentials', () => {
  test('auth keys are matched as docker matches them', () => {
    assert.equal(authKeyHost('https://index.docker.io/v1/'), 'index.docker.io');
    assert.equal(authKeyHost('http://127.0.0.1:5000/v2/'), '127.0.0.1:5000');
    assert.equal(authKeyHost('ghcr.io'), 'ghcr.io');
  });

  test('--creds splits at the first colon; passwords may hold colons', () => {
    assert.deepEqual(parseCreds('u:p:q'), { username: 'u', password: 'p:q' });
    assert.throws(
      () => parseCreds('u'),
      (e: unknown) => BallastError.is(e) && e.code === 'CREDENTIALS',
    );
  });

  test('Docker Hub credentials under https://index.docker.io/v1/, stored and found again', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ballast-creds-'));
    try {
      const env = { DOCKER_CONFIG: dir, HOME: dir };
      await writeFile(join(dir, 'config.json'), JSON.stringify({ auths: {}, psFormat: 'table {{.ID}}' }));
      const where = await storeCredentials('docker.io', { username: 'me', password: 'pw:1' }, { env });
      assert.equal(where, join(dir, 'config.json'));
      const saved = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
      assert.equal(saved.psFormat, 'table {{.ID}}', 'other settings are kept');
      assert.deepEqual(Object.keys(saved.auths as object), [DOCKER_HUB_AUTH_KEY]);
      const found = await findCredentials('docker.io', { env });
      assert.deepEqual(found, {
        username: 'me',
        password: 'pw:1',
        source: `auth file ${join(dir, 'config.json')}`,
      });
      assert.equal(await findCredentials('ghcr.io', { env }), undefined);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('redirects', () => {
  function listen(server: Server): Promise<number> {
    return new Promise((resolve) =>
      server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
    );
  }

  test('a blob redirected to another host loses the Authorization header; same-host hops keep it', async () => {
    const blob = Buffer.from('blob bytes that live in storage\n');
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
    const storageSeen: IncomingHttpHeaders[] = [];
    const registrySeen: IncomingHttpHeaders[] = [];
    const storage = createServer((req, res) => {
      storageSeen.push(req.headers);
      res.writeHead(200, { 'content-length': String(blob.length) });
      res.end(blob);
    });
    const storagePort = await listen(storage);
    const registry = createServer((req, res) => {
      registrySeen.push(req.headers);
      if (req.headers.authorization !== 'Basic dTpw') {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="r"' });
        res.end();
      } else if (req.url?.startsWith('/v2/a/blobs/')) {
        res.writeHead(307, { location: `/hop${req.url}` });
        res.end();
      } else {
        // "localhost" is another host than 127.0.0.1, as far as headers go.
        res.writeHead(302, { location: `http://localhost:${storagePort}/data?sig=x` });
        res.end();
      }
    });
    const registryPort = await listen(registry);
    const client = new RegistryClient(`127.0.0.1:${registryPort}`, { creds: 'u:p', env: {} });
    try {
      const stream = await client.getBlob('a', { digest, size: blob.length });
      assert.deepEqual(await streamDigest(stream), { bytes: blob.length, digest });
      // 401, then the authorized request, then the same-host hop that still carries it.
      assert.equal(registrySeen.filter((h) => h.authorization === 'Basic dTpw').length, 2);
      assert.equal(storageSeen.length, 1);
      assert.equal(storageSeen[0]?.authorization, undefined);
    } finally {
      client.close();
      storage.close();
      registry.close();
    }
  });
});
