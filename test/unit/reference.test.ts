import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BallastError } from '../../src/errors.js';
import { formatDockerName, hasTagOrDigest, parseReference } from '../../src/reference/parse.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;

function docker(input: string): string {
  const ref = parseReference(input);
  assert.equal(ref.transport, 'docker');
  return formatDockerName(ref as Extract<typeof ref, { transport: 'docker' }>);
}

function rejects(input: string, pattern: RegExp): void {
  assert.throws(
    () => parseReference(input),
    (error: unknown) => {
      assert.ok(BallastError.is(error));
      assert.equal(error.code, 'REFERENCE_INVALID');
      assert.equal(error.exitCode, 2);
      assert.match(error.message, pattern);
      return true;
    },
  );
}

describe('registry names are normalised as docker does', () => {
  const cases: [string, string][] = [
    ['ubuntu', 'docker.io/library/ubuntu:latest'],
    ['ubuntu:18.04', 'docker.io/library/ubuntu:18.04'],
    ['docker://ubuntu', 'docker.io/library/ubuntu:latest'],
    ['arturocs/crab-iot', 'docker.io/arturocs/crab-iot:latest'],
    ['index.docker.io/library/alpine:3.20', 'docker.io/library/alpine:3.20'],
    ['ghcr.io/owner/app:v1', 'ghcr.io/owner/app:v1'],
    ['localhost/app', 'localhost/app:latest'],
    ['127.0.0.1:5000/team/app:1.2', '127.0.0.1:5000/team/app:1.2'],
    ['127.0.0.1:5000/app', '127.0.0.1:5000/app:latest'],
    [`alpine@${DIGEST}`, `docker.io/library/alpine@${DIGEST}`],
    [`alpine:3@${DIGEST}`, `docker.io/library/alpine:3@${DIGEST}`],
    ['my_org/a__b.c-d', 'docker.io/my_org/a__b.c-d:latest'],
    ['[::1]:5000/app', '[::1]:5000/app:latest'],
  ];
  for (const [input, expected] of cases) {
    test(input, () => assert.equal(docker(input), expected));
  }
});

describe('malformed references name the part that is wrong', () => {
  test('uppercase repository', () => rejects('Ubuntu', /lowercase/));
  test('bad tag', () => rejects('ubuntu:-x', /"-x" is not a valid tag/));
  test('bad digest', () => rejects('ubuntu@sha256:abc', /"sha256:abc" is not a digest/));
  test('empty component', () => rejects('library//ubuntu', /empty component/));
  test('empty', () => rejects('', /empty/));
  test('unknown transport', () => rejects('ftp://host/x', /transport "ftp:" is not supported/));
  test('skopeo transport not supported', () => rejects('dir:/tmp/x', /transport "dir:" is not supported/));
  test('empty oci path', () => rejects('oci:', /layout path is empty/));
  test('bad component', () => rejects('foo/-bar', /"-bar" is not a valid repository name component/));
});

describe('other transports', () => {
  test('oci with and without ref', () => {
    assert.deepEqual(parseReference('oci:/tmp/layout:app'), {
      transport: 'oci',
      input: 'oci:/tmp/layout:app',
      path: '/tmp/layout',
      ref: 'app',
    });
    const bare = parseReference('oci:./layout');
    assert.equal(bare.transport === 'oci' && bare.ref, undefined);
  });
  test('docker-archive with a name', () => {
    const ref = parseReference('docker-archive:/tmp/a.tar:local/app:1');
    assert.equal(ref.transport, 'docker-archive');
    if (ref.transport !== 'docker-archive') return;
    assert.equal(ref.path, '/tmp/a.tar');
    assert.equal(ref.name && formatDockerName(ref.name), 'docker.io/local/app:1');
  });
  test('docker-daemon by name and by id', () => {
    const byName = parseReference('docker-daemon:app');
    assert.equal(
      byName.transport === 'docker-daemon' && byName.name && formatDockerName(byName.name),
      'docker.io/library/app:latest',
    );
    const byId = parseReference(`docker-daemon:${DIGEST}`);
    assert.equal(byId.transport === 'docker-daemon' && byId.imageId, DIGEST);
    rejects(`docker-daemon:app@${DIGEST}`, /not a digest/);
  });
  test('hasTagOrDigest looks only at the last component', () => {
    assert.equal(hasTagOrDigest('127.0.0.1:5000/app'), false);
    assert.equal(hasTagOrDigest('127.0.0.1:5000/app:1'), true);
    assert.equal(hasTagOrDigest(`app@${DIGEST}`), true);
  });
});
