import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { run as login } from '../../src/cli/login.js';
import { run as logout } from '../../src/cli/logout.js';
import { BallastError } from '../../src/errors.js';
import { RegistryClient } from '../../src/registry/client.js';
import {
  DOCKER_HUB_AUTH_KEY,
  findCredentials,
  loginRegistryName,
  storeCredentials,
} from '../../src/registry/credentials.js';
import {
  buildTinyImage,
  pushWithSkopeo,
  run,
  startRegistry,
  type TestRegistry,
} from '../support/registry.js';

const PASSWORD = 'Login-Pass-w0rd!';
const WRONG = 'Wrong-Pass-w0rd?';

let work: string;
let layoutRef: string;
let counter = 0;

interface Outcome {
  stdout: string;
  stderr: string;
  error: BallastError | undefined;
}

/** Runs a command in-process with stdin fed from `input`; captures stdout and stderr. */
async function command(
  fn: typeof login | typeof logout,
  args: string[],
  env: NodeJS.ProcessEnv,
  input = '',
): Promise<Outcome> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (c: Buffer) => out.push(c));
  stderr.on('data', (c: Buffer) => err.push(c));
  let error: BallastError | undefined;
  try {
    await fn(args, {
      stdout,
      stderr,
      debug: false,
      env,
      stdin: Readable.from([Buffer.from(input)]),
    } as never);
  } catch (caught) {
    if (!BallastError.is(caught)) throw caught;
    error = caught;
  }
  return { stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), error };
}

/** A fresh DOCKER_CONFIG folder and an env that points at it (and nothing else of the host's). */
async function freshEnv(extra: NodeJS.ProcessEnv = {}): Promise<{ env: NodeJS.ProcessEnv; config: string }> {
  const dir = join(work, `cfg-${++counter}`);
  await mkdir(dir, { recursive: true });
  return {
    env: { PATH: process.env.PATH, HOME: join(dir, 'home'), DOCKER_CONFIG: dir, ...extra },
    config: join(dir, 'config.json'),
  };
}

function assertNoSecret(outcome: Outcome, secret: string): void {
  const all = `${outcome.stdout} ${outcome.stderr} ${outcome.error?.message} ${outcome.error?.hint} ${outcome.error?.stack}`;
  assert.ok(!all.includes(secret), 'the password was printed');
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'ballast-login-'));
  layoutRef = (await buildTinyImage(join(work, 'layout'))).ref;
});

after(async () => {
  await rm(work, { recursive: true, force: true });
});

for (const auth of ['basic', 'token'] as const) {
  describe(`login against a registry with ${auth} auth`, () => {
    let registry: TestRegistry;

    before(async () => {
      registry = await startRegistry({ auth, users: { alice: PASSWORD } });
      await pushWithSkopeo(registry, layoutRef, 'team/app:1', `alice:${PASSWORD}`);
    });

    after(async () => {
      await registry?.stop();
    });

    test('stores the credentials as docker does; skopeo and ballast read them; logout removes them', async () => {
      const { env, config } = await freshEnv();
      const done = await command(
        login,
        [registry.host, '-u', 'alice', '--password-stdin'],
        env,
        `${PASSWORD}\n`,
      );
      assert.equal(done.error, undefined, done.error?.message);
      assert.equal(done.stdout, 'Login Succeeded\n');
      assertNoSecret(done, PASSWORD);
      const stored = JSON.parse(await readFile(config, 'utf8')) as {
        auths: Record<string, { auth: string }>;
      };
      assert.equal(stored.auths[registry.host]?.auth, Buffer.from(`alice:${PASSWORD}`).toString('base64'));

      // skopeo reads the file, with --authfile and with REGISTRY_AUTH_FILE.
      const ref = `docker://${registry.host}/team/app:1`;
      const inspected = await run('skopeo', ['inspect', '--tls-verify=false', '--authfile', config, ref]);
      assert.match(inspected.stdout, /"Digest"/);
      await run('skopeo', ['inspect', '--tls-verify=false', ref], {
        env: { PATH: process.env.PATH, HOME: env.HOME, REGISTRY_AUTH_FILE: config },
      });
      // And ballast, through DOCKER_CONFIG.
      const client = new RegistryClient(registry.host, { env });
      try {
        assert.ok((await client.getManifest('team/app', '1')).digest.startsWith('sha256:'));
      } finally {
        client.close();
      }

      const out = await command(logout, [registry.host], env);
      assert.equal(out.error, undefined);
      assert.equal(out.stdout, `Removing login credentials for ${registry.host}\n`);
      const after = JSON.parse(await readFile(config, 'utf8')) as { auths: Record<string, unknown> };
      assert.equal(after.auths[registry.host], undefined);
      assert.equal(await findCredentials(registry.host, { env }), undefined);
      const again = await command(logout, [registry.host], env);
      assert.equal(again.stdout, `Not logged in to ${registry.host}\n`);
    });

    test('a wrong password: AUTH_FAILED (exit 1), one line, nothing stored, the password never printed', async () => {
      const { env, config } = await freshEnv();
      const failed = await command(login, [registry.host, '-u', 'alice', '--password-stdin'], env, WRONG);
      assert.equal(failed.error?.code, 'AUTH_FAILED');
      assert.equal(failed.error?.exitCode, 1);
      assert.ok(!failed.error?.message.includes('\n'));
      assert.equal(failed.stdout, '');
      assertNoSecret(failed, WRONG);
      await assert.rejects(readFile(config, 'utf8'), { code: 'ENOENT' });
    });

    test('--authfile and REGISTRY_AUTH_FILE choose the file written', async () => {
      const { env } = await freshEnv();
      const file = join(work, `auth-${++counter}.json`);
      const done = await command(
        login,
        [registry.host, '--username=alice', '--password-stdin', '--authfile', file],
        env,
        PASSWORD,
      );
      assert.equal(done.error, undefined, done.error?.message);
      await run('skopeo', [
        'inspect',
        '--tls-verify=false',
        '--authfile',
        file,
        `docker://${registry.host}/team/app:1`,
      ]);
      const viaEnv = join(work, `auth-${++counter}.json`);
      const second = await command(
        login,
        [registry.host, '-u', 'alice', '--password-stdin'],
        { ...env, REGISTRY_AUTH_FILE: viaEnv },
        PASSWORD,
      );
      assert.equal(second.error, undefined, second.error?.message);
      const credentials = await findCredentials(registry.host, { authFile: viaEnv, env: {} });
      assert.equal(credentials?.username, 'alice');
      assert.equal(credentials?.password, PASSWORD);
    });
  });
}

describe('login with a credential helper (credsStore)', () => {
  let registry: TestRegistry;

  before(async () => {
    registry = await startRegistry({ auth: 'basic', users: { alice: PASSWORD } });
  });

  after(async () => {
    await registry?.stop();
  });

  test('the helper receives store, get and erase; config.json holds no secret', async () => {
    const bin = join(work, 'bin');
    await mkdir(bin, { recursive: true });
    const log = join(work, 'helper.log');
    const store = join(work, 'helper-store.json');
    // A docker-credential-* helper in sh: logs each call, keeps one credential in a file.
    const script = [
      '#!/bin/sh',
      'input=$(cat)',
      `echo "$1" >> ${log}`,
      'case "$1" in',
      `  store) printf '%s' "$input" > ${store} ;;`,
      `  get) if [ -f ${store} ]; then cat ${store}; else echo "credentials not found in native keychain"; exit 1; fi ;;`,
      `  erase) if [ -f ${store} ]; then rm ${store}; else echo "credentials not found in native keychain"; exit 1; fi ;;`,
      'esac',
      '',
    ].join('\n');
    await writeFile(join(bin, 'docker-credential-balltest'), script);
    await chmod(join(bin, 'docker-credential-balltest'), 0o755);
    const { env, config } = await freshEnv({ PATH: `${bin}:${process.env.PATH}` });
    await writeFile(config, JSON.stringify({ credsStore: 'balltest' }));

    const done = await command(login, [registry.host, '-u', 'alice', '--password-stdin'], env, PASSWORD);
    assert.equal(done.error, undefined, done.error?.message);
    const saved = JSON.parse(await readFile(store, 'utf8')) as Record<string, string>;
    assert.deepEqual(saved, { ServerURL: registry.host, Username: 'alice', Secret: PASSWORD });
    const text = await readFile(config, 'utf8');
    assert.ok(
      !text.includes(Buffer.from(`alice:${PASSWORD}`).toString('base64')) && !text.includes(PASSWORD),
    );
    assert.deepEqual(JSON.parse(text).auths, { [registry.host]: {} });

    const credentials = await findCredentials(registry.host, { env });
    assert.equal(credentials?.password, PASSWORD);
    assert.match(credentials?.source ?? '', /docker-credential-balltest/);

    const out = await command(logout, [registry.host], env);
    assert.equal(out.stdout, `Removing login credentials for ${registry.host}\n`);
    assert.deepEqual((await readFile(log, 'utf8')).trim().split('\n'), ['store', 'get', 'erase']);
    await assert.rejects(readFile(store, 'utf8'), { code: 'ENOENT' });
  });
});

describe('login arguments', () => {
  test('a password given as an argument is refused (exit 2) and never echoed', async () => {
    const { env, config } = await freshEnv();
    for (const args of [
      ['127.0.0.1:1', '-u', 'alice', '-p', PASSWORD],
      ['127.0.0.1:1', '-u', 'alice', `-p${PASSWORD}`],
      ['127.0.0.1:1', '-u', 'alice', `--password=${PASSWORD}`],
      ['127.0.0.1:1', '--password', PASSWORD],
    ]) {
      const refused = await command(login, args, env);
      assert.equal(refused.error?.code, 'USAGE');
      assert.equal(refused.error?.exitCode, 2);
      assert.match(refused.error?.hint ?? '', /--password-stdin/);
      assertNoSecret(refused, PASSWORD);
    }
    await assert.rejects(readFile(config, 'utf8'), { code: 'ENOENT' });
  });

  test('without --password-stdin and without a terminal: a usage error naming --password-stdin', async () => {
    const { env } = await freshEnv();
    const refused = await command(login, ['127.0.0.1:1', '-u', 'alice'], env, PASSWORD);
    assert.equal(refused.error?.exitCode, 2);
    assert.match(`${refused.error?.message} ${refused.error?.hint}`, /--password-stdin/);
  });

  test('Docker Hub is stored under https://index.docker.io/v1/, as docker does', async () => {
    for (const name of [
      'docker.io',
      'index.docker.io',
      'https://index.docker.io/v1/',
      'registry-1.docker.io',
    ]) {
      assert.equal(loginRegistryName(name), 'docker.io');
    }
    assert.equal(loginRegistryName('https://ghcr.io'), 'ghcr.io');
    const { env, config } = await freshEnv();
    await storeCredentials('docker.io', { username: 'bob', password: 'ghp_exampletoken' }, { env });
    const stored = JSON.parse(await readFile(config, 'utf8')) as { auths: Record<string, { auth: string }> };
    assert.deepEqual(Object.keys(stored.auths), [DOCKER_HUB_AUTH_KEY]);
    const out = await command(logout, ['docker.io'], env);
    assert.equal(out.stdout, `Removing login credentials for ${DOCKER_HUB_AUTH_KEY}\n`);
  });
});
