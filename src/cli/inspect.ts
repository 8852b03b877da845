import { BallastError } from '../errors.js';
import type { CommandContext } from './context.js';

export async function run(_args: string[], _context: CommandContext): Promise<void> {
  throw new BallastError('USAGE', 'inspect is being written');
}
