import { inspectImage } from '../inspect/inspect.js';
import { openSource, resolveImage } from '../sources/open.js';
import type { CommandContext } from './context.js';
import { parseCommand, requireArgs, SOURCE_FLAGS, SOURCE_HELP, sourceOptions, writeJson } from './options.js';

const USAGE = 'ballast inspect IMAGE [--raw] [--config] [--no-tags]';
const HELP = [
  `Usage: ${USAGE}`,
  '',
  'Print what `skopeo inspect` prints for an image, from any source.',
  '',
  '  --raw        the top-level manifest bytes exactly as stored (with --config: the config bytes)',
  '  --config     the image config (pretty-printed; add --raw for the stored bytes)',
  '  --no-tags    do not list the repository tags into RepoTags',
  ...SOURCE_HELP,
  '',
  'Example: ballast inspect docker://127.0.0.1:5000/app:1.0 --no-tags',
].join('\n');

export async function run(args: string[], context: CommandContext): Promise<void> {
  const { values, positionals } = parseCommand(args, {
    ...SOURCE_FLAGS,
    raw: { type: 'boolean' },
    config: { type: 'boolean' },
    'no-tags': { type: 'boolean' },
  });
  if (values.help) {
    context.stdout.write(`${HELP}\n`);
    return;
  }
  requireArgs(positionals, 1, 1, USAGE);
  const source = await openSource(positionals[0]!, sourceOptions(values, context));
  try {
    if (values.config) {
      const image = await resolveImage(source, values.platform);
      if (values.raw) context.stdout.write(image.configBytes);
      else writeJson(context, JSON.parse(image.configBytes.toString('utf8')));
      return;
    }
    if (values.raw) {
      const top = await source.getManifest();
      context.stdout.write(top.bytes);
      return;
    }
    writeJson(context, await inspectImage(source, { platform: values.platform, tags: !values['no-tags'] }));
  } finally {
    await source.close();
  }
}
