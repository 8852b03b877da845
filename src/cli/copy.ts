import { type CopyEvent, type CopyResult, copyImage } from '../copy/copy.js';
import { familiarName } from '../copy/docker-archive-destination.js';
import { openDestination } from '../copy/open-destination.js';
import { type ImageReference, parseReference } from '../reference/parse.js';
import { openSource } from '../sources/open.js';
import { humanSize } from '../util/size.js';
import type { CommandContext } from './context.js';
import {
  formatOption,
  parseCommand,
  parseJobs,
  requireArgs,
  SOURCE_FLAGS,
  SOURCE_HELP,
  sourceOptions,
  writeJson,
} from './options.js';
import { createProgress, type Progress } from './progress.js';

const USAGE = 'ballast copy SOURCE DESTINATION [--platform P] [--preserve-digests] [--jobs N] [--quiet]';
const HELP = [
  `Usage: ${USAGE}`,
  '',
  'Copy an image exactly (manifest bytes and digests kept) between registries, OCI layouts,',
  'docker-archive files and from the Docker daemon. A multi-platform index is copied whole',
  'unless --platform names one image. Blobs the destination has are not sent; the manifest',
  'goes last, so a tag never points at an incomplete image.',
  '',
  '  --platform OS/ARCH[/VARIANT]  copy only this image of an index',
  '  --preserve-digests            fail rather than convert media types the destination refuses',
  '  --jobs N                      blobs sent at once (default 4)',
  '  --src-creds USER:PASSWORD     credentials for the source registry only',
  '  --dest-creds USER:PASSWORD    credentials for the destination registry only',
  '  --quiet                       no progress bars',
  '  --format FORMAT               text (default) or json summary',
  ...SOURCE_HELP,
  '',
  'Example: ballast copy oci:./layout:app docker://ghcr.io/owner/app:1.0',
].join('\n');

export const COPY_FLAGS = {
  ...SOURCE_FLAGS,
  'preserve-digests': { type: 'boolean' },
  jobs: { type: 'string' },
  'src-creds': { type: 'string' },
  'dest-creds': { type: 'string' },
  quiet: { type: 'boolean', short: 'q' },
  format: { type: 'string' },
} as const;

/** Draws one bar per blob in flight and a total from the copy engine's events. */
export function progressListener(
  progress: Progress,
  label: (digest: string) => string = (d) => d.slice(7, 19),
) {
  return (event: CopyEvent) => {
    switch (event.type) {
      case 'plan':
        progress.addTotal(event.bytes);
        break;
      case 'blob-start':
        progress.start(event.digest, label(event.digest), event.size);
        break;
      case 'blob-progress':
        progress.update(event.digest, event.bytes);
        break;
      case 'blob-done':
        progress.done(event.digest);
        break;
      case 'blob-skipped':
        progress.addTotal(-event.size);
        break;
    }
  };
}

export function summaryLine(result: CopyResult): string {
  const seconds = result.durationMs / 1000;
  const rate = seconds > 0 && result.bytesCopied > 0 ? `, ${humanSize(result.bytesCopied / seconds)}/s` : '';
  const skipped = result.blobsSkipped
    ? `, ${result.blobsSkipped} skipped${result.blobsMounted ? ` (${result.blobsMounted} mounted)` : ''}`
    : '';
  return `${result.blobsCopied} blobs copied (${humanSize(result.bytesCopied)})${skipped} in ${seconds.toFixed(1)}s${rate}`;
}

function sourceRepoTags(from: ImageReference): string[] {
  const name =
    from.transport === 'docker' ? from : from.transport === 'docker-daemon' ? from.name : undefined;
  return name?.tag ? [familiarName(name)] : [];
}

export async function run(args: string[], context: CommandContext): Promise<void> {
  const { values, positionals } = parseCommand(args, COPY_FLAGS);
  if (values.help) {
    context.stdout.write(`${HELP}\n`);
    return;
  }
  requireArgs(positionals, 2, 2, USAGE);
  const format = formatOption(values.format, ['text', 'json'] as const, 'text');
  const jobs = parseJobs(values.jobs);
  const [from, to] = [parseReference(positionals[0]!), parseReference(positionals[1]!)];
  const common = sourceOptions(values, context);
  const source = await openSource(from, {
    ...common,
    ...(values['src-creds'] !== undefined ? { creds: values['src-creds'] } : {}),
  });
  try {
    // Read the source first: a source that is not there must not leave an empty layout or archive.
    await source.getManifest();
    const destination = await openDestination(to, {
      registry: { ...common, ...(values['dest-creds'] !== undefined ? { creds: values['dest-creds'] } : {}) },
      // An archive written without NAME:TAG is named after the source, as skopeo does.
      ...(to.transport === 'docker-archive' && !to.name ? { repoTags: sourceRepoTags(from) } : {}),
    });
    const progress = createProgress(context.stderr, values.quiet === true || format === 'json');
    let result: CopyResult;
    try {
      result = await copyImage(source, destination, {
        ...(values.platform !== undefined ? { platform: values.platform } : {}),
        ...(jobs !== undefined ? { jobs } : {}),
        preserveDigests: values['preserve-digests'] === true,
        onEvent: (event) => {
          progressListener(progress)(event);
          if (event.type === 'converted' && !values.quiet && format === 'text') {
            context.stderr.write(
              `ballast: converted ${event.from} to ${event.to}: the digest changes from ${event.digest} to ${event.convertedDigest} (use --preserve-digests to refuse)\n`,
            );
          }
        },
      });
    } finally {
      progress.stop();
      await destination.close();
    }
    if (format === 'json') {
      writeJson(context, result);
      return;
    }
    context.stdout.write(
      `Copied ${from.input} to ${to.input}: ${summaryLine(result)}\nDigest: ${result.digest}\n`,
    );
  } finally {
    await source.close();
  }
}
