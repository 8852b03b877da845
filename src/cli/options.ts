import { type ParseArgsConfig, parseArgs } from 'node:util';
import { usageError } from '../errors.js';
import type { SourceOptions } from '../sources/types.js';
import type { CommandContext } from './context.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/** Flags every command that reads images takes. */
export const SOURCE_FLAGS = {
  platform: { type: 'string' },
  creds: { type: 'string' },
  authfile: { type: 'string' },
  insecure: { type: 'boolean' },
  'ca-file': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies Options;

export const SOURCE_HELP = [
  '  --platform OS/ARCH[/VARIANT]  image to choose in a multi-platform index (default: this host)',
  '  --creds USER[:PASSWORD]       registry credentials (prefer --authfile or `docker login`)',
  '  --authfile FILE               docker-style auth file (default: REGISTRY_AUTH_FILE, docker config.json)',
  '  --insecure                    allow plain HTTP and unverified certificates',
  '  --ca-file FILE                trust this CA certificate (PEM) as well',
];

export function parseCommand<T extends Options>(
  args: string[],
  options: T,
  allowPositionals = true,
): ReturnType<typeof parseArgs<{ options: T; allowPositionals: true; strict: true }>> {
  return parseArgs({ args, options, allowPositionals, strict: true }) as ReturnType<
    typeof parseArgs<{ options: T; allowPositionals: true; strict: true }>
  >;
}

export function sourceOptions(
  values: { platform?: string; creds?: string; authfile?: string; insecure?: boolean; 'ca-file'?: string },
  context: CommandContext,
): SourceOptions {
  const options: SourceOptions = {
    onWarning: (message) => context.stderr.write(`ballast: warning: ${message}\n`),
  };
  if (values.platform !== undefined) options.platform = values.platform;
  if (values.creds !== undefined) options.creds = values.creds;
  if (values.authfile !== undefined) options.authFile = values.authfile;
  if (values.insecure) options.insecure = true;
  if (values['ca-file'] !== undefined) options.caFile = values['ca-file'];
  return options;
}

export function formatOption<F extends string>(
  value: string | undefined,
  allowed: readonly F[],
  fallback: F,
): F {
  if (value === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(value)) {
    throw usageError(`unknown format "${value}"`, `use ${allowed.join(' or ')}`);
  }
  return value as F;
}

export function requireArgs(positionals: string[], min: number, max: number, usage: string): void {
  if (positionals.length < min) throw usageError(`missing argument`, `usage: ${usage}`);
  if (positionals.length > max)
    throw usageError(`unexpected argument "${positionals[max]}"`, `usage: ${usage}`);
}

export function writeJson(context: CommandContext, value: unknown): void {
  context.stdout.write(`${JSON.stringify(value, null, 4)}\n`);
}

/** `--jobs N`: a whole number from 1 to 64. */
export function parseJobs(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const jobs = Number(text);
  if (!Number.isInteger(jobs) || jobs < 1 || jobs > 64) {
    throw usageError(`invalid --jobs "${text}"`, 'give a whole number from 1 to 64');
  }
  return jobs;
}
