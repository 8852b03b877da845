import type { Readable } from 'node:stream';
import { BallastError, redact, usageError } from '../errors.js';
import { RegistryClient } from '../registry/client.js';
import { loginAuthFile, loginRegistryName, storeCredentials } from '../registry/credentials.js';
import type { CommandContext } from './context.js';
import { parseCommand, requireArgs } from './options.js';

const USAGE = 'ballast login REGISTRY [-u USER] [--password-stdin] [--authfile FILE]';
const HELP = [
  `Usage: ${USAGE}`,
  '',
  'Check credentials against a registry, then store them as `docker login` does (config.json `auths`,',
  'or the configured credsStore / credHelpers), so docker, skopeo and ballast all use them.',
  'The password is read from stdin (--password-stdin) or asked for on a terminal; it is never an',
  'argument. A GitHub personal access token is the password for ghcr.io.',
  '',
  '  -u, --username USER   the user name (asked for on a terminal when absent)',
  '  --password-stdin      read the password (or token) from stdin',
  '  --authfile FILE       the auth file to write (default: REGISTRY_AUTH_FILE, else docker config.json)',
  '  --insecure            allow plain HTTP and unverified certificates',
  '  --ca-file FILE        trust this CA certificate (PEM) as well',
  '',
  'Example: echo "$GITHUB_TOKEN" | ballast login ghcr.io -u octocat --password-stdin',
].join('\n');

/** What login reads from: the process's stdin, or a test's. */
export type LoginInput = Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };

export type LoginContext = CommandContext & { stdin?: LoginInput };

/** `-p`, `-pSECRET`, `--password`, `--password=SECRET`: refused without ever echoing the value. */
function refusePasswordArgument(args: readonly string[]): void {
  for (const arg of args) {
    if (arg === '--') return;
    if (arg === '-p' || (arg.startsWith('-p') && !arg.startsWith('--')) || /^--password(=|$)/.test(arg)) {
      throw usageError(
        'ballast login does not take a password as an argument (it would show in the process list and shell history)',
        'pipe it in: echo "$TOKEN" | ballast login REGISTRY -u USER --password-stdin',
      );
    }
  }
}

async function readAll(input: Readable, limit = 64 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of input) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    length += buffer.length;
    if (length > limit) throw usageError(`the password on stdin is longer than ${limit} bytes`);
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** One line from a terminal; with `hidden`, the terminal does not echo it (raw mode). */
function promptLine(
  input: LoginInput,
  output: CommandContext['stderr'],
  prompt: string,
  hidden: boolean,
): Promise<string> {
  return new Promise((resolve, reject) => {
    output.write(prompt);
    let line = '';
    const raw = hidden && typeof input.setRawMode === 'function';
    if (raw) input.setRawMode?.(true);
    const finish = (error?: Error) => {
      input.off('data', onData);
      input.off('end', onEnd);
      if (raw) input.setRawMode?.(false);
      input.pause();
      if (hidden) output.write('\n');
      if (error) reject(error);
      else resolve(line);
    };
    const onEnd = () => finish();
    const onData = (chunk: Buffer | string) => {
      for (const char of chunk.toString()) {
        if (char === '\r' || char === '\n') {
          finish();
          return;
        }
        if (char === '\u0003' || char === '\u0004') {
          finish(usageError('login cancelled'));
          return;
        }
        if (char === '\u007f' || char === '\b') line = line.slice(0, -1);
        else line += char;
      }
    };
    input.on('data', onData);
    input.once('end', onEnd);
    input.resume();
  });
}

export async function run(args: string[], context: LoginContext): Promise<void> {
  refusePasswordArgument(args);
  const { values, positionals } = parseCommand(args, {
    username: { type: 'string', short: 'u' },
    'password-stdin': { type: 'boolean' },
    authfile: { type: 'string' },
    insecure: { type: 'boolean' },
    'ca-file': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help) {
    context.stdout.write(`${HELP}\n`);
    return;
  }
  requireArgs(positionals, 1, 1, USAGE);
  const registry = loginRegistryName(positionals[0]!);
  const stdin: LoginInput = context.stdin ?? process.stdin;
  const terminal = stdin.isTTY === true;

  let username = values.username;
  let password: string;
  if (values['password-stdin']) {
    if (username === undefined || username === '') {
      throw usageError('--password-stdin needs the user name', `usage: ${USAGE}`);
    }
    // Like docker: the trailing newline of `echo` is not part of the password.
    password = (await readAll(stdin)).replace(/\r?\n$/, '');
  } else {
    if (!terminal) {
      throw usageError(
        'no password: stdin is not a terminal to ask on',
        'pipe the password in with --password-stdin',
      );
    }
    if (username === undefined || username === '') {
      username = (await promptLine(stdin, context.stderr, 'Username: ', false)).trim();
    }
    password = await promptLine(stdin, context.stderr, 'Password: ', true);
  }
  if (username === undefined || username === '')
    throw usageError('the user name is empty', `usage: ${USAGE}`);
  if (password === '') throw usageError('the password is empty');

  const client = new RegistryClient(registry, {
    credentials: { username, password, source: 'ballast login' },
    insecure: values.insecure === true ? true : undefined,
    caFile: values['ca-file'],
    env: context.env,
  });
  try {
    await client.verifyCredentials();
  } catch (error) {
    if (BallastError.is(error)) {
      // A registry that echoes the password back must not get it printed.
      throw new BallastError(error.code, redact(error.message, [password]), {
        ...(error.hint === undefined ? {} : { hint: redact(error.hint, [password]) }),
        exitCode: error.exitCode,
      });
    }
    throw error;
  } finally {
    client.close();
  }
  const file = loginAuthFile(values.authfile, context.env);
  await storeCredentials(registry, { username, password }, { authFile: file, env: context.env });
  context.stdout.write('Login Succeeded\n');
}
