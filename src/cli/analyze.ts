import { readFile } from 'node:fs/promises';
import {
  type CiResult,
  type CiRuleName,
  type CiRules,
  DIVE_DEFAULT_RULES,
  evaluateCi,
  mergeCiRules,
  parseCiConfig,
  parseCiValue,
} from '../analysis/ci.js';
import type { AnalysisReport } from '../analysis/types.js';
import { BallastError, usageError } from '../errors.js';
import { type AnalyzedImage, analyzeImage } from '../inspect/analyze.js';
import { openSource, type ResolvedImage, resolveImage } from '../sources/open.js';
import { humanSize } from '../util/size.js';
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
import { createProgress, type Progress } from './progress.js';
import { formatTable } from './table.js';

const USAGE = 'ballast analyze IMAGE [--format text|json] [--top N] [--ci ...]';
const HELP = [
  `Usage: ${USAGE}`,
  '',
  'Where every byte of an image comes from: per layer, directory, file and OS package, the dead',
  'weight later layers delete or overwrite, and advice that names the bytes each fix saves.',
  'Layers are streamed, never written to disk.',
  '',
  '  --format FORMAT                    text (default) or json',
  '  --top N                            largest files, directories, packages to list (default 10)',
  '  --verify                           stream and hash archive layers instead of seeking over them',
  '  --quiet                            no progress bar',
  '',
  'CI gate (exit code 3 when a rule fails):',
  '  --ci                               apply the rules (dive defaults: efficiency 0.9, user waste 0.1)',
  '  --lowest-efficiency RATIO          fail below this efficiency (finalBytes / totalBytes)',
  '  --highest-wasted-bytes SIZE        fail above this many wasted bytes (20MB, 1.5GiB, bytes)',
  '  --highest-user-wasted-percent R    fail above this ratio of waste to the non-base layers',
  '  --max-size SIZE                    fail when the image (all layers) is larger',
  '  --ci-config FILE                   rules from a file (dive .dive-ci keys); default ./.dive-ci',
  ...SOURCE_HELP,
  '',
  'Example: ballast analyze docker-archive:app.tar --ci --highest-wasted-bytes 20MB',
].join('\n');

const RULE_FLAGS: Record<string, CiRuleName> = {
  'lowest-efficiency': 'lowestEfficiency',
  'highest-wasted-bytes': 'highestWastedBytes',
  'highest-user-wasted-percent': 'highestUserWastedPercent',
  'max-size': 'maxSize',
};

export const ANALYZE_FLAGS = {
  ...SOURCE_FLAGS,
  verify: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
} as const;

/** Streams the image with a progress bar per layer on a terminal. */
export async function analyzeWithProgress(
  image: ResolvedImage,
  context: CommandContext,
  options: { quiet: boolean; verify: boolean; top?: number },
): Promise<AnalyzedImage> {
  const progress: Progress = createProgress(context.stderr, options.quiet);
  const layers = image.manifest.layers;
  progress.addTotal(layers.reduce((sum, l) => sum + l.size, 0));
  try {
    return await analyzeImage(image, {
      verify: options.verify,
      ...(options.top !== undefined ? { top: options.top } : {}),
      onLayerStart: (layer, total) =>
        progress.start(String(layer), `layer ${layer + 1}/${layers.length}`, total ?? 0),
      onLayerProgress: (layer, p) => progress.update(String(layer), p.bytes),
      onLayerDone: (layer) => progress.done(String(layer)),
    });
  } finally {
    progress.stop();
  }
}

async function ciRules(values: Record<string, unknown>): Promise<CiRules | undefined> {
  const flagRules: CiRules = {};
  for (const [flag, rule] of Object.entries(RULE_FLAGS)) {
    const text = values[flag];
    if (typeof text !== 'string') continue;
    const value = parseCiValue(rule, text);
    if (typeof value === 'string') throw usageError(`--${flag}: ${value}`);
    flagRules[rule] = value;
  }
  const configFile = typeof values['ci-config'] === 'string' ? values['ci-config'] : undefined;
  const enabled = values.ci === true || configFile !== undefined || Object.keys(flagRules).length > 0;
  if (!enabled) return undefined;
  let fileRules: CiRules | undefined;
  const path = configFile ?? '.dive-ci';
  try {
    fileRules = parseCiConfig(await readFile(path, 'utf8'), path);
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    if (!missing || configFile !== undefined) {
      if (BallastError.is(error)) throw error;
      throw usageError(`cannot read the CI config ${path}: ${(error as Error).message}`);
    }
  }
  return mergeCiRules(DIVE_DEFAULT_RULES, fileRules, flagRules);
}

const percent = (ratio: number) => `${(ratio * 100).toFixed(1)}%`;

function ruleLine(result: CiResult): string {
  const bytes = result.rule === 'highestWastedBytes' || result.rule === 'maxSize';
  const show = (n: number) => (bytes ? `${humanSize(n)} (${n} bytes)` : n.toFixed(4));
  const relation = result.rule === 'lowestEfficiency' ? '>=' : '<=';
  return `${result.pass ? 'PASS' : 'FAIL'}  ${result.rule}: ${show(result.actual)} ${result.pass ? '' : 'not '}${relation} ${show(result.limit)}`;
}

function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** The report for a person reading a terminal: a summary, layers, the largest things, packages, waste, advice. */
export function textReport(name: string, analyzed: AnalyzedImage, top: number): string {
  const r: AnalysisReport = analyzed.analysis.report;
  const out: string[] = [];
  out.push(`Image         ${name}`);
  out.push(
    `Total size    ${humanSize(r.totalBytes)} in ${r.layers.length} layers; ${humanSize(r.finalBytes)} visible in the final filesystem (${r.fileCount} files)`,
  );
  out.push(
    `Wasted        ${humanSize(r.wastedBytes)}: ${humanSize(r.deletedBytes)} deleted by later layers, ${humanSize(r.overwrittenBytes)} overwritten`,
  );
  out.push(
    `Efficiency    ${percent(r.efficiency)}    user wasted ${percent(r.userWastedPercent)} (dive's figure)`,
  );
  out.push('', 'Layers');
  out.push(
    formatTable(
      ['#', 'SIZE', 'COMPRESSED', 'VISIBLE', 'WASTES', 'ADDED', 'CHANGED', 'REMOVED', 'CREATED BY'],
      r.layers.map((l) => [
        String(l.index),
        humanSize(l.fileBytes),
        humanSize(l.compressedBytes),
        humanSize(l.finalBytes),
        humanSize(l.wastesBytes),
        String(l.filesAdded),
        String(l.filesChanged),
        String(l.filesRemoved),
        oneLine(l.createdBy, 60),
      ]),
    ).trimEnd(),
  );
  if (r.largestDirectories.length) {
    out.push('', 'Largest directories');
    out.push(
      formatTable(
        ['SIZE', 'FILES', 'PATH'],
        r.largestDirectories.slice(0, top).map((d) => [humanSize(d.bytes), String(d.files), `/${d.path}`]),
      ).trimEnd(),
    );
  }
  if (r.largestFiles.length) {
    out.push('', 'Largest files');
    out.push(
      formatTable(
        ['SIZE', 'LAYER', 'PATH'],
        r.largestFiles.slice(0, top).map((f) => [humanSize(f.bytes), String(f.layer ?? ''), `/${f.path}`]),
      ).trimEnd(),
    );
  }
  if (r.packages.length) {
    const managers = [...new Set(r.packages.map((p) => p.manager))].join(', ');
    const owned = r.packages.reduce((sum, p) => sum + p.bytes, 0);
    out.push(
      '',
      `Packages (${managers}): ${r.packages.length} installed, ${humanSize(owned)} of the final filesystem`,
    );
    const sorted = [...r.packages].sort((a, b) => b.bytes - a.bytes).slice(0, top);
    out.push(
      formatTable(
        ['SIZE', 'PACKAGE', 'VERSION', 'LAYER', 'NOTE'],
        sorted.map((p) => [
          humanSize(p.bytes),
          p.name,
          p.version,
          p.layer === null ? '' : String(p.layer),
          [p.essential ? 'essential' : '', p.priority === 'required' ? 'required' : '']
            .filter(Boolean)
            .join(', '),
        ]),
      ).trimEnd(),
    );
  }
  if (r.unowned.length) {
    out.push('', 'Not owned by any package');
    out.push(
      formatTable(
        ['SIZE', 'FILES', 'PATH'],
        r.unowned.slice(0, top).map((u) => [humanSize(u.bytes), String(u.files), `/${u.path}`]),
      ).trimEnd(),
    );
  }
  if (r.wasted.length) {
    out.push('', `Wasted (${r.wastedCount} paths; the largest)`);
    out.push(
      formatTable(
        ['SIZE', 'REASON', 'WRITTEN BY', 'REMOVED BY', 'PATH'],
        r.wasted
          .slice(0, top)
          .map((w) => [
            humanSize(w.bytes),
            w.reason === 'overwritten' && w.metadataOnly
              ? `overwritten (${w.changed.join(', ') || 'same size'})`
              : w.reason,
            `layer ${w.layer}`,
            `layer ${w.removedBy}`,
            `/${w.path}`,
          ]),
      ).trimEnd(),
    );
  }
  if (r.recommendations.length) {
    out.push('', 'Advice');
    for (const advice of r.recommendations) {
      out.push(`- ${advice.title}: saves ${humanSize(advice.bytes)}`);
      if (advice.detail) out.push(`    ${oneLine(advice.detail, 200)}`);
      for (const e of advice.evidence.slice(0, 3)) {
        const where = [
          e.path ? `/${e.path}` : '',
          e.package ?? '',
          e.layer !== undefined ? `layer ${e.layer}` : '',
        ]
          .filter(Boolean)
          .join(', ');
        out.push(`    ${humanSize(e.bytes).padStart(7)}  ${where}${e.note ? ` (${e.note})` : ''}`);
      }
      if (advice.evidence.length > 3) out.push(`    … and ${advice.evidence.length - 3} more`);
    }
  }
  const escaping = analyzed.layerIssues.filter((i) => i.code === 'path-escapes' || i.code === 'link-escapes');
  if (escaping.length || r.issues.length) {
    out.push('', 'Warnings');
    for (const issue of escaping.slice(0, top))
      out.push(`- layer ${issue.layer}: ${issue.message} (not followed)`);
    for (const issue of r.issues.slice(0, top)) out.push(`- ${issue.message}`);
  }
  if (analyzed.seekedLayers.length) {
    out.push(
      '',
      `Note: ${analyzed.seekedLayers.length} uncompressed archive layer(s) were read by seeking over file bodies (headers only, not digest-checked); --verify hashes them.`,
    );
  }
  return `${out.join('\n')}\n`;
}

export async function run(args: string[], context: CommandContext): Promise<void> {
  const { values, positionals } = parseCommand(args, {
    ...ANALYZE_FLAGS,
    format: { type: 'string' },
    top: { type: 'string' },
    ci: { type: 'boolean' },
    'ci-config': { type: 'string' },
    'lowest-efficiency': { type: 'string' },
    'highest-wasted-bytes': { type: 'string' },
    'highest-user-wasted-percent': { type: 'string' },
    'max-size': { type: 'string' },
  });
  if (values.help) {
    context.stdout.write(`${HELP}\n`);
    return;
  }
  requireArgs(positionals, 1, 1, USAGE);
  const format = formatOption(values.format, ['text', 'json'] as const, 'text');
  const top = values.top === undefined ? 10 : Number(values.top);
  if (!Number.isInteger(top) || top < 1)
    throw usageError(`invalid --top "${values.top}"`, 'give a whole number of 1 or more');
  const rules = await ciRules(values);
  const source = await openSource(positionals[0]!, sourceOptions(values, context));
  try {
    const image = await resolveImage(source, values.platform);
    const analyzed = await analyzeWithProgress(image, context, {
      quiet: values.quiet === true || format === 'json',
      verify: values.verify === true,
      top: Math.max(top, 20),
    });
    const results = rules ? evaluateCi(analyzed.analysis.report, rules) : undefined;
    if (format === 'json') {
      writeJson(context, {
        image: source.name,
        digest: image.topLevel.digest,
        ...analyzed.analysis.report,
        layerIssues: analyzed.layerIssues,
        ...(results ? { ci: { pass: results.every((r) => r.pass), rules: results } } : {}),
      });
    } else {
      context.stdout.write(textReport(source.name, analyzed, top));
      if (results) {
        context.stdout.write(`\nCI rules\n${results.map(ruleLine).join('\n')}\n`);
        const failed = results.filter((r) => !r.pass).length;
        context.stdout.write(
          failed ? `${failed} of ${results.length} rules failed\n` : `all ${results.length} rules passed\n`,
        );
      }
    }
    if (results?.some((r) => !r.pass)) process.exitCode = 3;
  } finally {
    await source.close();
  }
}
