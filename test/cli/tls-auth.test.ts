/** TLS and credentials as a user meets them on the command line. */
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ballast, oneLineError } from '../support/cli.js';
import { buildTinyImage, run, startRegistry, type TestRegistry } from '../support/registry.js';

const PASSWORD = 'Tls-Secret-42';
let secure: TestRegistry;
let work: string;

before(async () => {
  secure = await startRegistry({ tls: true, auth: 'basic', users: { alice: PASSWORD } });
  work = await mkdtemp(join(tmpdir(), 'ballast-tls-'));
  const image = await buildTinyImage(join(work, 'layout'), { tag: 't', layers: [{ f: 'tls\n' }] });
  await run('skopeo', [
    'copy',
    '--quiet',
    '--dest-cert-dir',
    secure.certDir!,
    '--dest-creds',
    `alice:${PASSWORD}`,
    image.ref,
    `docker://${secure.host}/app:1`,
  ]);
});

after(async () => {
  await secure?.stop();
});

const ref = () => `${secure.host}/app:1`;
const creds = () => ['--creds', `alice:${PASSWORD}`];

test('a certificate that does not verify is refused, with what to do', async () => {
  const result = await ballast(['inspect', '--no-tags', ...creds(), ref()]);
  assert.equal(result.code, 1);
  assert.match(oneLineError(result), /--ca-file|--insecure/);
});

test('--ca-file trusts the registry certificate', async () => {
  const result = await ballast(['inspect', '--no-tags', '--ca-file', secure.caFile!, ...creds(), ref()]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(JSON.parse(result.stdout).Name, `${secure.host}/app`);
});

test('--insecure accepts it unverified', async () => {
  const result = await ballast(['history', '--insecure', ...creds(), ref()]);
  assert.equal(result.code, 0, result.stderr);
});

test('wrong credentials: exit 1, one line, the secret nowhere', async () => {
  const wrong = 'Not-The-Password-99';
  const result = await ballast(['inspect', '--insecure', '--creds', `alice:${wrong}`, ref()]);
  assert.equal(result.code, 1);
  const line = oneLineError(result);
  assert.match(line, new RegExp(secure.host.replace(/[.]/g, '\\.')));
  assert.ok(!`${result.stdout}${result.stderr}`.includes(wrong));
});

test('no credentials at all names the registry and says none were sent', async () => {
  const result = await ballast(['inspect', '--insecure', ref()], {
    env: { DOCKER_CONFIG: work, REGISTRY_AUTH_FILE: '' },
  });
  assert.equal(result.code, 1);
  oneLineError(result);
});

test('credentials from --authfile', async () => {
  const file = join(work, 'auth.json');
  await writeFile(
    file,
    JSON.stringify({
      auths: { [secure.host]: { auth: Buffer.from(`alice:${PASSWORD}`).toString('base64') } },
    }),
  );
  const result = await ballast(['tags', '--insecure', '--authfile', file, `${secure.host}/app`]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, '1\n');
});
