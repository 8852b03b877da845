import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseReference } from '../../src/reference/parse.js';
import { RegistryClient } from '../../src/registry/client.js';
import { RegistrySource } from '../../src/sources/registry.js';
import { rejectsWith } from '../support/assert.js';
import {
  buildTinyImage,
  pushWithSkopeo,
  skopeoInspect,
  startRegistry,
  type TestRegistry,
} from '../support/registry.js';

const PASSWORD = 's3cret-Basic-pass';
const WRONG = 'wrong-Basic-pass';

describe('registry with basic auth (htpasswd)', () => {
  let registry: TestRegistry;
  let work: string;
  let digest: string;
  /** An environment with no credentials anywhere: no HOME config, no REGISTRY_AUTH_FILE. */
  let emptyEnv: NodeJS.ProcessEnv;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'ballast-basic-'));
    const image = await buildTinyImage(join(work, 'layout'));
    registry = await startRegistry({ auth: 'basic', users: { alice: PASSWORD } });
    await pushWithSkopeo(registry, image.ref, 'private/app:1.0', `alice:${PASSWORD}`);
    const info = await skopeoInspect(`docker://${registry.host}/private/app:1.0`, [
      '--creds',
      `alice:${PASSWORD}`,
    ]);
    digest = String(info.Digest);
    emptyEnv = { HOME: join(work, 'home'), PATH: process.env.PATH };
  });

  after(async () => {
    await registry?.stop();
    await rm(work, { recursive: true, force: true });
  });

  async function manifestDigest(options: ConstructorParameters<typeof RegistryClient>[1]): Promise<string> {
    const client = new RegistryClient(registry.host, { env: emptyEnv, ...options });
    try {
      return (await client.getManifest('private/app', '1.0')).digest;
    } finally {
      client.close();
    }
  }

  test('--creds user:password reads the image', async () => {
    assert.equal(await manifestDigest({ creds: `alice:${PASSWORD}` }), digest);
  });

  test('through RegistrySource with creds', async () => {
    const source = await RegistrySource.open(parseReference(`${registry.host}/private/app:1.0`), {
      creds: `alice:${PASSWORD}`,
      client: { env: emptyEnv },
    });
    try {
      assert.equal((await source.getManifest()).digest, digest);
      assert.deepEqual(await source.listTags?.(), ['1.0']);
    } finally {
      await source.close();
    }
  });

  test('no credentials: AUTH_FAILED saying none were sent', async () => {
    const error = await rejectsWith(manifestDigest({}), 'AUTH_FAILED');
    assert.match(error.message, /user name and password|no credentials/);
    assert.equal(error.exitCode, 1);
  });

  test('a wrong password: AUTH_FAILED naming the registry and the source, never the secret', async () => {
    const error = await rejectsWith(manifestDigest({ creds: `alice:${WRONG}` }), 'AUTH_FAILED');
    assert.equal(error.exitCode, 1);
    assert.ok(error.message.includes(registry.host), error.message);
    assert.match(error.message, /credentials for user "alice" were sent \(from --creds\)/);
    const everything = `${error.message} ${error.hint ?? ''} ${error.stack ?? ''}`;
    assert.ok(!everything.includes(WRONG), 'the password must not appear');
  });

  test('--creds with a user alone asks for the password (exit 2)', async () => {
    const error = await rejectsWith(manifestDigest({ creds: 'alice' }), 'CREDENTIALS');
    assert.equal(error.exitCode, 2);
    assert.match(error.message, /no password/);
  });

  test('credentials from $DOCKER_CONFIG/config.json auths (base64 auth, key with scheme and /v2/)', async () => {
    const dir = join(work, 'docker-config');
    await mkdir(dir, { recursive: true });
    const auth = Buffer.from(`alice:${PASSWORD}`).toString('base64');
    await writeFile(
      join(dir, 'config.json'),
      JSON.stringify({
        auths: { 'other.example:5000': { auth: 'eDp5' }, [`http://${registry.host}/v2/`]: { auth } },
      }),
    );
    assert.equal(await manifestDigest({ env: { ...emptyEnv, DOCKER_CONFIG: dir } }), digest);
  });

  test('credentials from ~/.docker/config.json with username/password fields', async () => {
    const home = join(work, 'home-with-config');
    await mkdir(join(home, '.docker'), { recursive: true });
    await writeFile(
      join(home, '.docker', 'config.json'),
      JSON.stringify({ auths: { [registry.host]: { username: 'alice', password: PASSWORD } } }),
    );
    assert.equal(await manifestDigest({ env: { HOME: home, PATH: process.env.PATH } }), digest);
  });

  test('REGISTRY_AUTH_FILE comes before the docker config; --authfile replaces both', async () => {
    const good = join(work, 'auth-good.json');
    const bad = join(work, 'auth-bad.json');
    await writeFile(
      good,
      JSON.stringify({
        auths: { [registry.host]: { auth: Buffer.from(`alice:${PASSWORD}`).toString('base64') } },
      }),
    );
    await writeFile(
      bad,
      JSON.stringify({
        auths: { [registry.host]: { auth: Buffer.from(`alice:${WRONG}`).toString('base64') } },
      }),
    );
    assert.equal(await manifestDigest({ env: { ...emptyEnv, REGISTRY_AUTH_FILE: good } }), digest);
    assert.equal(
      await manifestDigest({ authFile: good, env: { ...emptyEnv, REGISTRY_AUTH_FILE: bad } }),
      digest,
    );
    const error = await rejectsWith(manifestDigest({ authFile: bad }), 'AUTH_FAILED');
    assert.ok(error.message.includes(`auth file ${bad}`), error.message);
    assert.ok(!error.message.includes(WRONG));
    await rejectsWith(manifestDigest({ authFile: join(work, 'missing.json') }), 'CREDENTIALS');
  });

  test('credentials from a credential helper (credHelpers), and "credentials not found" means anonymous', async () => {
    const bin = join(work, 'bin');
    await mkdir(bin, { recursive: true });
    const log = join(work, 'helper.log');
    // The helper answers for our registry only, and records what it was asked.
    await writeFile(
      join(bin, 'docker-credential-test'),
      `#!/bin/sh
read server
echo "$1 $server" >> "${log}"
if [ "$server" = "${registry.host}" ]; then
  printf '{"ServerURL":"%s","Username":"alice","Secret":"${PASSWORD}"}' "$server"
  exit 0
fi
echo "credentials not found in native keychain"
exit 1
`,
    );
    await chmod(join(bin, 'docker-credential-test'), 0o755);
    const dir = join(work, 'helper-config');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'config.json'), JSON.stringify({ credHelpers: { [registry.host]: 'test' } }));
    const env = { HOME: emptyEnv.HOME, DOCKER_CONFIG: dir, PATH: `${bin}${delimiter}${process.env.PATH}` };
    assert.equal(await manifestDigest({ env }), digest);

    // credsStore for everything: a registry it does not know is anonymous, not an error.
    const storeDir = join(work, 'store-config');
    await mkdir(storeDir, { recursive: true });
    await writeFile(join(storeDir, 'config.json'), JSON.stringify({ credsStore: 'test' }));
    const { findCredentials } = await import('../../src/registry/credentials.js');
    const none = await findCredentials('unknown.example', { env: { ...env, DOCKER_CONFIG: storeDir } });
    assert.equal(none, undefined);
    const found = await findCredentials(registry.host, { env: { ...env, DOCKER_CONFIG: storeDir } });
    assert.equal(found?.username, 'alice');
    assert.equal(found?.source, 'credential helper docker-credential-test');
  });

  test('a helper that is not installed is a CREDENTIALS error naming it', async () => {
    const dir = join(work, 'missing-helper');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'config.json'), JSON.stringify({ credsStore: 'nonexistent-ballast' }));
    const error = await rejectsWith(
      manifestDigest({ env: { ...emptyEnv, DOCKER_CONFIG: dir, PATH: '/nonexistent' } }),
      'CREDENTIALS',
    );
    assert.match(error.message, /docker-credential-nonexistent-ballast/);
  });
});
