import type { Writable } from 'node:stream';

/** What a command needs from the process, so tests can run commands in-process. */
export interface CommandContext {
  stdout: Writable & { isTTY?: boolean };
  stderr: Writable & { isTTY?: boolean };
  debug: boolean;
  env: NodeJS.ProcessEnv;
}
