import { readFileSync } from 'node:fs';
import { BallastError, redact } from '../errors.js';
import type { CommandContext } from './context.js';

interface CommandEntry {
  summary: string;
  load: () => Promise<{ run(args: string[], context: CommandContext): Promise<void> }>;
}

// Each command's modules load only when it runs: `ballast --version` stays fast.
const COMMANDS: Record<string, CommandEntry> = {
  inspect: { summary: 'Show an image as `skopeo inspect` does', load: () => import('./inspect.js') },
  history: {
    summary: 'List the layers of an image as `docker history` does',
    load: () => import('./history.js'),
  },
  sizes: { summary: 'Compare images by size without pulling them', load: () => import('./sizes.js') },
  tags: { summary: 'List the tags of a repository', load: () => import('./tags.js') },
  analyze: {
    summary: 'Where every byte comes from, the dead weight, what to cut',
    load: () => import('./analyze.js'),
  },
  files: {
    summary: 'A du-like view of the final filesystem or of one layer',
    load: () => import('./files.js'),
  },
  copy: { summary: 'Copy an image exactly, digests kept', load: () => import('./copy.js') },
  login: { summary: 'Log in to a registry (stored as docker does)', load: () => import('./login.js') },
  logout: { summary: 'Remove stored registry credentials', load: () => import('./logout.js') },
  sync: { summary: 'Publish images to several registries from one file', load: () => import('./sync.js') },
};

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

function usage(): string {
  const lines = [
    'Usage: ballast COMMAND [OPTIONS]',
    '',
    'Find the dead weight in container images and publish them exactly.',
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([name, entry]) => `  ${name.padEnd(10)} ${entry.summary}`),
    '',
    'Images: NAME[:TAG|@DIGEST], docker://NAME, oci:PATH[:REF], docker-archive:PATH[:NAME:TAG],',
    '        docker-daemon:NAME[:TAG]',
    '',
    'Run `ballast COMMAND --help` for the options of a command.',
  ];
  return `${lines.join('\n')}\n`;
}

/** The CLI entry point: runs one command and sets the exit code; never throws. */
export async function main(argv: string[]): Promise<void> {
  const debug = argv.includes('--debug');
  const args = argv.filter((a) => a !== '--debug');
  const [command, ...rest] = args;
  const context: CommandContext = {
    stdout: process.stdout,
    stderr: process.stderr,
    debug,
    env: process.env,
  };
  try {
    if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
      process.stdout.write(usage());
      if (command === undefined) process.exitCode = 2;
      return;
    }
    if (command === '--version' || command === '-v' || command === 'version') {
      process.stdout.write(`ballast ${version()}\n`);
      return;
    }
    const entry = COMMANDS[command];
    if (!entry) {
      throw new BallastError('USAGE', `unknown command "${command}"`, {
        hint: `commands: ${Object.keys(COMMANDS).join(', ')}`,
        exitCode: 2,
      });
    }
    const module = await entry.load();
    await module.run(rest, context);
  } catch (error) {
    reportError(error, debug);
  }
}

function reportError(error: unknown, debug: boolean): void {
  if (BallastError.is(error)) {
    const hint = error.hint ? ` (${error.hint})` : '';
    process.stderr.write(`ballast: ${redact(error.message)}${redact(hint)}\n`);
    if (debug && error.stack) process.stderr.write(`${redact(error.stack)}\n`);
    process.exitCode = error.exitCode;
    return;
  }
  const err = error as NodeJS.ErrnoException;
  if (err && typeof err.code === 'string' && err.code.startsWith('ERR_PARSE_ARGS')) {
    process.stderr.write(`ballast: ${err.message} (run with --help for usage)\n`);
    process.exitCode = 2;
    return;
  }
  if (err && (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED')) {
    process.exitCode = 1;
    return;
  }
  const message = err instanceof Error ? err.message : String(error);
  process.stderr.write(`ballast: internal error: ${redact(message)} (run with --debug for details)\n`);
  if (debug && err instanceof Error && err.stack) process.stderr.write(`${redact(err.stack)}\n`);
  process.exitCode = 1;
}
