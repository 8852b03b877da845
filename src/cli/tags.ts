import { usageError } from '../errors.js';
import { hasTagOrDigest, parseReference, repositoryName } from '../reference/parse.js';
import { openSource } from '../sources/open.js';
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

const USAGE = 'ballast tags REPOSITORY [--format table|json]';
const HELP = [
  `Usage: ${USAGE}`,
  '',
  "List the tags of a repository (every page of the registry's list), or the image names in an",
  'OCI layout or docker-archive.',
  '',
  '  --format FORMAT    table (default: one tag a line) or json (as `skopeo list-tags`)',
  ...SOURCE_HELP,
  '',
  'Example: ballast tags 127.0.0.1:5000/app --format json',
].join('\n');

export async function run(args: string[], context: CommandContext): Promise<void> {
  const { values, positionals } = parseCommand(args, { ...SOURCE_FLAGS, format: { type: 'string' } });
  if (values.help) {
    context.stdout.write(`${HELP}\n`);
    return;
  }
  requireArgs(positionals, 1, 1, USAGE);
  const format = formatOption(values.format, ['table', 'json'] as const, 'table');
  const input = positionals[0]!;
  const ref = parseReference(input);
  if (ref.transport === 'docker' && hasTagOrDigest(input)) {
    throw usageError(`"${input}" names an image, not a repository`, 'leave out the tag or digest');
  }
  const source = await openSource(ref, sourceOptions(values, context));
  try {
    if (!source.listTags) throw usageError(`${ref.transport}: references have no tags to list`);
    const tags = await source.listTags();
    if (format === 'json') {
      const repository = ref.transport === 'docker' ? repositoryName(ref) : source.name || input;
      writeJson(context, { Repository: repository, Tags: tags });
    } else if (tags.length > 0) {
      context.stdout.write(`${tags.join('\n')}\n`);
    }
  } finally {
    await source.close();
  }
}
