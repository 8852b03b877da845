import { BallastError } from '../errors.js';
import { compareSizes, type SizeRow } from '../inspect/sizes.js';
import { parseReference } from '../reference/parse.js';
import { humanSize } from '../util/size.js';
import { timeAgo } from '../util/time.js';
import type { CommandContext } from './context.js';
import {
  formatOption,
  parseCommand,
  requireArgs,
  SOURCE_FLAGS,
  SOURCE_HELP,
  sourceOptions,
  writeJson,
} from './options.js';
import { formatTable } from './table.js';

const USAGE = 'ballast sizes IMAGE... [--exact] [--format table|json]';
const HELP = [
  `Usage: ${USAGE}`,
  '',
  'Compare candidate images by size without pulling them, smallest first. COMPRESSED is the',
  'download (the layer sizes in the manifest); with --exact every layer is streamed to measure',
  'SIZE, the uncompressed size `docker images` shows.',
  '',
  '  --exact            measure the uncompressed size (streams every layer)',
  '  --format FORMAT    table (default) or json',
  '  --verify           with --exact: hash archive layers instead of seeking over their file bodies',
  ...SOURCE_HELP,
  '',
  'Example: ballast sizes alpine:3.20 debian:bookworm-slim ubuntu:24.04 --exact',
].join('\n');

export async function run(args: string[], context: CommandContext): Promise<void> {
  const { values, positionals } = parseCommand(args, {
    ...SOURCE_FLAGS,
    exact: { type: 'boolean' },
    verify: { type: 'boolean' },
    format: { type: 'string' },
  });
  if (values.help) {
    context.stdout.write(`${HELP}\n`);
    return;
  }
  requireArgs(positionals, 1, Number.POSITIVE_INFINITY, USAGE);
  const format = formatOption(values.format, ['table', 'json'] as const, 'table');
  for (const reference of positionals) parseReference(reference); // usage errors before any network
  const results = await compareSizes(positionals, {
    ...sourceOptions(values, context),
    exact: values.exact === true,
    verify: values.verify === true,
  });
  const rows: SizeRow[] = [];
  const failures: BallastError[] = [];
  for (const result of results) {
    if (result.ok) {
      rows.push(result.row);
      continue;
    }
    const error = BallastError.is(result.error)
      ? result.error
      : new BallastError('IO', (result.error as Error).message ?? String(result.error));
    failures.push(error);
    context.stderr.write(
      `ballast: ${result.reference}: ${error.message}${error.hint ? ` (${error.hint})` : ''}\n`,
    );
  }
  if (format === 'json') {
    writeJson(
      context,
      rows.map(
        ({ reference, digest, created, layers, compressedBytes, sizeBytes, platform, platformDigest }) => ({
          reference,
          digest,
          created,
          layers,
          compressedBytes,
          sizeBytes,
          platform,
          platformDigest,
        }),
      ),
    );
  } else if (rows.length > 0) {
    const now = Date.now();
    const header = ['REFERENCE', 'DIGEST', 'CREATED', 'LAYERS', 'COMPRESSED'];
    if (values.exact) header.push('SIZE');
    const table = rows.map((row) => {
      const cells = [
        row.reference,
        row.digest.slice(7, 19),
        timeAgo(row.created ?? undefined, now),
        String(row.layers),
        humanSize(row.compressedBytes),
      ];
      if (values.exact) cells.push(humanSize(row.sizeBytes ?? 0));
      return cells;
    });
    context.stdout.write(formatTable(header, table));
  }
  if (failures.length > 0) {
    process.exitCode = Math.max(...failures.map((f) => f.exitCode));
  }
}
