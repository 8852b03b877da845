import { usageError } from '../errors.js';
import { openSource, resolveImage } from '../sources/open.js';
import { humanSize } from '../util/size.js';
import { ANALYZE_FLAGS, analyzeWithProgress } from './analyze.js';
import type { CommandContext } from './context.js';
import { formatOption, parseCommand, requireArgs, SOURCE_HELP, sourceOptions, writeJson } from './options.js';
import { formatTable } from './table.js';

const USAGE = 'ballast files IMAGE [--layer N] [--path DIR] [--depth D] [--format table|json]';
const HELP = [
  `Usage: ${USAGE}`,
  '',
  'A du-like view of the final filesystem of an image, or of the changes one layer made,',
  'largest first.',
  '',
  '  --layer N          the changes of layer N (0 is the bottom layer) instead of the final filesystem',
  '  --path DIR         list below this directory (default /)',
  '  --depth D          levels below DIR to list (default 1)',
  '  --limit N          at most N rows',
  '  --format FORMAT    table (default) or json',
  '  --verify           stream and hash archive layers instead of seeking over them',
  '  --quiet            no progress bar',
  ...SOURCE_HELP,
  '',
  'Example: ballast files oci:examples/hello:latest --path /usr --depth 2',
].join('\n');

function wholeNumber(flag: string, text: string | undefined, min: number): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min)
    throw usageError(`invalid --${flag} "${text}"`, `give a whole number of ${min} or more`);
  return value;
}

export async function run(args: string[], context: CommandContext): Promise<void> {
  const { values, positionals } = parseCommand(args, {
    ...ANALYZE_FLAGS,
    layer: { type: 'string' },
    path: { type: 'string' },
    depth: { type: 'string' },
    limit: { type: 'string' },
    format: { type: 'string' },
  });
  if (values.help) {
    context.stdout.write(`${HELP}\n`);
    return;
  }
  requireArgs(positionals, 1, 1, USAGE);
  const format = formatOption(values.format, ['table', 'json'] as const, 'table');
  const layer = wholeNumber('layer', values.layer, 0);
  const depth = wholeNumber('depth', values.depth, 0);
  const limit = wholeNumber('limit', values.limit, 1);
  const source = await openSource(positionals[0]!, sourceOptions(values, context));
  try {
    const image = await resolveImage(source, values.platform);
    if (layer !== undefined && layer >= image.manifest.layers.length) {
      throw usageError(
        `--layer ${layer}: the image has ${image.manifest.layers.length} layers (0 to ${image.manifest.layers.length - 1})`,
      );
    }
    const analyzed = await analyzeWithProgress(image, context, {
      quiet: values.quiet === true || format === 'json',
      verify: values.verify === true,
    });
    const view = analyzed.analysis.files({
      ...(layer !== undefined ? { layer } : {}),
      ...(values.path !== undefined ? { path: values.path } : {}),
      ...(depth !== undefined ? { depth } : {}),
      ...(limit !== undefined ? { limit } : {}),
    });
    if (format === 'json') {
      writeJson(context, view);
      return;
    }
    const layerView = view.layer !== null;
    const header = layerView
      ? ['SIZE', 'FILES', 'CHANGE', 'REMOVED', 'PATH']
      : ['SIZE', 'FILES', 'LAYER', 'PATH'];
    const rows = view.rows.map((row) => {
      const name = `/${row.path}${row.type === 'dir' ? '/' : ''}`;
      return layerView
        ? [
            humanSize(row.bytes),
            String(row.files),
            row.change ?? '',
            row.removedBytes ? humanSize(row.removedBytes) : '',
            name,
          ]
        : [humanSize(row.bytes), String(row.files), row.layer === undefined ? '' : String(row.layer), name];
    });
    const scope = layerView ? `layer ${view.layer}` : 'final filesystem';
    context.stdout.write(`/${view.path} (${scope}): ${humanSize(view.bytes)} in ${view.files} files\n`);
    context.stdout.write(formatTable(header, rows));
  } finally {
    await source.close();
  }
}
