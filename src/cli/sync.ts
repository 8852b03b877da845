import { openDestination } from '../copy/open-destination.js';
import { loadSyncConfig, planSync, type SyncPairResult, syncImages } from '../copy/sync-config.js';
import { BallastError } from '../errors.js';
import { openSource } from '../sources/open.js';
import { humanSize } from '../util/size.js';
import type { CommandContext } from './context.js';
import { progressListener, summaryLine } from './copy.js';
import {
  formatOption,
  parseCommand,
  parseJobs,
  requireArgs,
  SOURCE_FLAGS,
  sourceOptions,
  writeJson,
} from './options.js';
import { createProgress } from './progress.js';

const USAGE = 'ballast sync CONFIG.yaml [--dry-run] [--format text|json] [--jobs N] [--quiet]';
const REGISTRY_HELP = [
  '  --authfile FILE    docker-style auth file (default: REGISTRY_AUTH_FILE, docker config.json)',
  '  --insecure         allow plain HTTP and unverified certificates',
  '  --ca-file FILE     trust this CA certificate (PEM) as well',
];

const HELP = [
  `Usage: ${USAGE}`,
  '',
  'Publish a set of images to several destinations from one file. Digests are compared first',
  '(HEAD requests), so an up-to-date destination costs no transfer; only what changed is copied.',
  'A failure on one destination does not stop the others; the exit code is 1 when any failed.',
  '',
  '  images:',
  '    - source: registry.example/crab-iot',
  '      tags: [latest, "1.2"]          # or tagsRegex: \'^v\\d+\'',
  '      destinations:',
  '        - docker.io/arturocs/crab-iot',
  '        - ghcr.io/arturocs/crab-iot',
  '',
  '  --dry-run          compare digests and say what would be copied',
  '  --jobs N           blobs sent at once per copy (default 4)',
  '  --concurrency N    copies at once (default 3)',
  '  --quiet            no progress bars',
  '  --format FORMAT    text (default) or json',
  ...REGISTRY_HELP,
  '',
  'Example: ballast sync publish.yaml --dry-run',
].join('\n');

function describe(result: SyncPairResult): string {
  const pair = `${result.pair.source} -> ${result.pair.destination}`;
  switch (result.status) {
    case 'copied':
      return `copied      ${pair}: ${result.result ? summaryLine(result.result) : humanSize(result.bytesCopied)}`;
    case 'up-to-date':
      return `up to date  ${pair}`;
    case 'would-copy':
      return `would copy  ${pair}`;
    case 'failed':
      return `failed      ${pair}: ${errorText(result.error)}`;
  }
}

function errorText(error: Error | undefined): string {
  if (!error) return 'unknown error';
  return BallastError.is(error) && error.hint ? `${error.message} (${error.hint})` : error.message;
}

export async function run(args: string[], context: CommandContext): Promise<void> {
  const { values, positionals } = parseCommand(args, {
    ...SOURCE_FLAGS,
    'dry-run': { type: 'boolean' },
    jobs: { type: 'string' },
    concurrency: { type: 'string' },
    quiet: { type: 'boolean', short: 'q' },
    format: { type: 'string' },
  });
  if (values.help) {
    context.stdout.write(`${HELP}\n`);
    return;
  }
  requireArgs(positionals, 1, 1, USAGE);
  const format = formatOption(values.format, ['text', 'json'] as const, 'text');
  const jobs = parseJobs(values.jobs);
  const concurrency = parseJobs(values.concurrency);
  const config = await loadSyncConfig(positionals[0]!);
  const options = sourceOptions(values, context);
  const plan = await planSync(config, async (reference) => {
    const source = await openSource(reference, options);
    try {
      if (!source.listTags)
        throw new BallastError('USAGE', `${reference} has no tags to list for tagsRegex`, { exitCode: 2 });
      return await source.listTags();
    } finally {
      await source.close();
    }
  });
  const progress = createProgress(context.stderr, values.quiet === true || format === 'json');
  const summary = await syncImages(plan, {
    openSource: (reference) => openSource(reference, options),
    openDestination: (reference) => openDestination(reference, { registry: options }),
    ...(concurrency !== undefined ? { concurrency } : {}),
    copy: {
      ...(jobs !== undefined ? { jobs } : {}),
      ...(values.platform ? { platform: values.platform } : {}),
    },
    dryRun: values['dry-run'] === true,
    onEvent: (_pair, event) => progressListener(progress)(event),
    onResult: (result) => {
      if (format === 'text') {
        progress.stop();
        context.stdout.write(`${describe(result)}\n`);
      }
    },
  });
  progress.stop();
  const wouldCopy = summary.results.filter((r) => r.status === 'would-copy').length;
  if (format === 'json') {
    writeJson(context, {
      copied: summary.copied,
      wouldCopy,
      upToDate: summary.upToDate,
      failed: summary.failed,
      blobsCopied: summary.blobsCopied,
      blobsSkipped: summary.blobsSkipped,
      bytesCopied: summary.bytesCopied,
      durationMs: Math.round(summary.durationMs),
      results: summary.results.map((r) => ({
        source: r.pair.source,
        destination: r.pair.destination,
        tag: r.pair.tag,
        status: r.status,
        digest: r.digest ?? null,
        bytesCopied: r.bytesCopied,
        error: r.error ? errorText(r.error) : null,
      })),
    });
  } else {
    const seconds = (summary.durationMs / 1000).toFixed(1);
    const copied = values['dry-run'] ? `${wouldCopy} would be copied` : `${summary.copied} copied`;
    context.stdout.write(
      `${plan.length} pairs: ${copied}, ${summary.upToDate} up to date, ${summary.failed} failed; ${humanSize(summary.bytesCopied)} sent in ${seconds}s\n`,
    );
  }
  if (summary.failed > 0) process.exitCode = 1;
}
