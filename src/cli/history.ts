import { imageHistory } from '../inspect/history.js';
import { openSource, resolveImage } from '../sources/open.js';
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

const USAGE = 'ballast history IMAGE [--no-trunc] [--format table|json]';
const HELP = [
  `Usage: ${USAGE}`,
  '',
  "List the layers of an image newest first, as `docker history` does, with each layer's",
  'uncompressed size (measured by streaming where the source does not know it) and download size.',
  '',
  '  --no-trunc          do not shorten CREATED BY',
  '  --format FORMAT     table (default) or json',
  '  --verify            hash archive layers instead of seeking over their file bodies',
  ...SOURCE_HELP,
  '',
  'Example: ballast history oci:./build/layout:app --format json',
].join('\n');

/** docker's Ellipsis: at most `max` characters, the last one an ellipsis. */
function ellipsis(text: string, max: number): string {
  const chars = [...text];
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join('')}…`;
}

export async function run(args: string[], context: CommandContext): Promise<void> {
  const { values, positionals } = parseCommand(args, {
    ...SOURCE_FLAGS,
    'no-trunc': { type: 'boolean' },
    verify: { type: 'boolean' },
    format: { type: 'string' },
  });
  if (values.help) {
    context.stdout.write(`${HELP}\n`);
    return;
  }
  requireArgs(positionals, 1, 1, USAGE);
  const format = formatOption(values.format, ['table', 'json'] as const, 'table');
  const source = await openSource(positionals[0]!, sourceOptions(values, context));
  try {
    const image = await resolveImage(source, values.platform);
    const rows = await imageHistory(image, { verify: values.verify === true });
    if (format === 'json') {
      writeJson(context, rows);
      return;
    }
    const now = Date.now();
    const table = rows.map((row) => {
      const createdBy = row.createdBy.replaceAll('\t', ' ').replaceAll('\n', ' ');
      return [
        row.digest ? row.digest.slice(7, 19) : '<empty>',
        timeAgo(row.created ?? undefined, now),
        values['no-trunc'] ? createdBy : ellipsis(createdBy, 45),
        humanSize(row.sizeBytes),
        humanSize(row.compressedSizeBytes),
        row.comment,
      ];
    });
    context.stdout.write(
      formatTable(['LAYER', 'CREATED', 'CREATED BY', 'SIZE', 'COMPRESSED', 'COMMENT'], table),
    );
  } finally {
    await source.close();
  }
}
