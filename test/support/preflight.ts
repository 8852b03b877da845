/**
 * Run before the tests: every system program they use must be installed. A missing one fails the
 * run with the package to install; nothing is skipped silently.
 */
import { spawnSync } from 'node:child_process';

const REQUIRED: { program: string; args: string[]; pkg: string }[] = [
  { program: 'docker-registry', args: ['--version'], pkg: 'docker-registry' },
  { program: 'skopeo', args: ['--version'], pkg: 'skopeo' },
  { program: 'umoci', args: ['--version'], pkg: 'umoci' },
  { program: 'oci-image-tool', args: ['--version'], pkg: 'oci-image-tool' },
  { program: 'htpasswd', args: ['-h'], pkg: 'apache2-utils' },
  { program: 'openssl', args: ['version'], pkg: 'openssl' },
  { program: 'dockerd', args: ['--version'], pkg: 'docker.io' },
  { program: 'docker', args: ['--version'], pkg: 'docker.io' },
  { program: 'tar', args: ['--version'], pkg: 'tar' },
];

const missing = REQUIRED.filter(({ program, args }) => {
  const result = spawnSync(program, args, { stdio: 'ignore' });
  return result.error !== undefined;
});
if (missing.length > 0) {
  const packages = [...new Set(missing.map((m) => m.pkg))].join(' ');
  process.stderr.write(
    `The tests need ${missing.map((m) => m.program).join(', ')}: install them with\n  apt-get install -y ${packages}\n(.ci/run does this)\n`,
  );
  process.exit(1);
}
