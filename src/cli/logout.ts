import { eraseCredentials, loginAuthFile, loginRegistryName, serverUrlFor } from '../registry/credentials.js';
import type { CommandContext } from './context.js';
import { parseCommand, requireArgs } from './options.js';

const USAGE = 'ballast logout REGISTRY [--authfile FILE]';
const HELP = [
  `Usage: ${USAGE}`,
  '',
  'Remove the credentials `ballast login` or `docker login` stored for a registry (the config.json',
  '`auths` entry, or `erase` through the credential helper).',
  '',
  '  --authfile FILE   the auth file (default: REGISTRY_AUTH_FILE, else docker config.json)',
].join('\n');

export async function run(args: string[], context: CommandContext): Promise<void> {
  const { values, positionals } = parseCommand(args, {
    authfile: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    context.stdout.write(`${HELP}\n`);
    return;
  }
  requireArgs(positionals, 1, 1, USAGE);
  const registry = loginRegistryName(positionals[0]!);
  const file = loginAuthFile(values.authfile, context.env);
  const { removed } = await eraseCredentials(registry, { authFile: file, env: context.env });
  // docker's wording; both are success.
  context.stdout.write(
    removed
      ? `Removing login credentials for ${serverUrlFor(registry)}\n`
      : `Not logged in to ${serverUrlFor(registry)}\n`,
  );
}
