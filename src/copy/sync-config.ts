/**
 * The sync configuration file (YAML), its plan of (source, destination) pairs, and the runner:
 *
 * ```yaml
 * images:
 *   - source: registry.example/crab-iot
 *     tags: [latest, "1.2"]          # or tagsRegex: '^v\d+', or neither: the source's own tag
 *     destinations:
 *       - docker.io/arturocs/crab-iot
 *       - ghcr.io/arturocs/crab-iot
 * ```
 *
 * Parsing and planning do no I/O beyond the tag lister they are given; every error names FILE:LINE.
 */
import { readFile } from 'node:fs/promises';
import { isMap, isScalar, isSeq, LineCounter, type Node, type Pair, parseDocument } from 'yaml';
import { BallastError } from '../errors.js';
import { formatDockerName, hasTagOrDigest, type ImageReference, parseReference } from '../reference/parse.js';
import type { ImageSource } from '../sources/types.js';
import { type CopyEvent, type CopyOptions, type CopyResult, copyImage } from './copy.js';
import { FanOutDestination } from './fan-out.js';
import type { ImageDestination } from './types.js';

export interface SyncImageEntry {
  /** As written: `registry.example/crab-iot`, `docker://...:tag`, `oci:DIR`. */
  source: string;
  tags?: string[];
  tagsRegex?: string;
  destinations: string[];
  /** The line of the entry in the file (1-based). */
  line: number;
}

export interface SyncConfig {
  file: string;
  images: SyncImageEntry[];
}

const ENTRY_KEYS = new Set(['source', 'tags', 'tagsRegex', 'destinations']);

class ConfigErrors {
  constructor(
    private readonly file: string,
    private readonly lines: LineCounter,
  ) {}

  lineOf(node: { range?: [number, number, number] | null | undefined } | null | undefined): number {
    const offset = node?.range?.[0];
    return offset === undefined ? 1 : this.lines.linePos(offset).line;
  }

  at(line: number, message: string, hint?: string): BallastError {
    return new BallastError('USAGE', `${this.file}:${line}: ${message}`, { exitCode: 2, hint });
  }

  node(node: Node | Pair | null | undefined, message: string, hint?: string): BallastError {
    const target = node && 'range' in node ? node : (node as Pair | undefined)?.key;
    return this.at(this.lineOf(target as Node | undefined), message, hint);
  }
}

function describe(node: unknown): string {
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) {
    if (node.value === null) return 'empty';
    return typeof node.value === 'string' ? 'a string' : `the ${typeof node.value} ${String(node.value)}`;
  }
  return 'nothing';
}

/** Parses a sync file's text; `file` is used in error messages. Throws a BallastError (exit 2). */
export function parseSyncConfig(text: string, file: string): SyncConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const errors = new ConfigErrors(file, lines);
  const first = doc.errors[0];
  if (first !== undefined) {
    // An error at the end of the input (an unclosed bracket) belongs to the last line with text.
    const offset = Math.min(first.pos[0], Math.max(0, text.trimEnd().length - 1));
    const line = lines.linePos(offset).line;
    const message = first.message.replace(/ at line \d+, column \d+.*$/s, '');
    throw errors.at(line, `not valid YAML: ${message}`);
  }
  const root = doc.contents;
  if (!isMap(root)) {
    throw errors.node(root as Node, `expected a mapping with an "images" list, found ${describe(root)}`);
  }
  let imagesNode: unknown;
  for (const pair of root.items) {
    const key = isScalar(pair.key) ? String(pair.key.value) : '';
    if (key !== 'images') {
      throw errors.node(pair.key as Node, `unknown key "${key}"`, 'the top level has one key: images');
    }
    imagesNode = pair.value;
  }
  if (imagesNode === undefined) throw errors.at(1, 'no "images" list');
  if (!isSeq(imagesNode)) {
    throw errors.node(imagesNode as Node, `"images" must be a list, found ${describe(imagesNode)}`);
  }
  const images: SyncImageEntry[] = [];
  for (const item of imagesNode.items) {
    if (!isMap(item)) {
      throw errors.node(item as Node, `an entry of "images" must be a mapping, found ${describe(item)}`);
    }
    const line = errors.lineOf(item);
    const values = new Map<string, { node: unknown; line: number }>();
    for (const pair of item.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : '';
      if (!ENTRY_KEYS.has(key)) {
        throw errors.node(
          pair.key as Node,
          `unknown key "${key}"`,
          `an image entry has ${[...ENTRY_KEYS].join(', ')}`,
        );
      }
      values.set(key, { node: pair.value, line: errors.lineOf(pair.key as Node) });
    }
    const string = (key: string): string | undefined => {
      const value = values.get(key);
      if (value === undefined) return undefined;
      if (!isScalar(value.node) || typeof value.node.value !== 'string' || value.node.value === '') {
        throw errors.at(value.line, `"${key}" must be a non-empty string, found ${describe(value.node)}`);
      }
      return value.node.value;
    };
    const strings = (key: string): string[] | undefined => {
      const value = values.get(key);
      if (value === undefined) return undefined;
      if (!isSeq(value.node) || value.node.items.length === 0) {
        throw errors.at(
          value.line,
          `"${key}" must be a non-empty list of strings, found ${describe(value.node)}`,
        );
      }
      return value.node.items.map((entry) => {
        if (!isScalar(entry) || typeof entry.value !== 'string' || entry.value === '') {
          const quote =
            isScalar(entry) && typeof entry.value === 'number' ? ` (quote it: "${entry.source}")` : '';
          throw errors.node(entry as Node, `"${key}" must hold strings, found ${describe(entry)}${quote}`);
        }
        return entry.value;
      });
    };
    const source = string('source');
    if (source === undefined) throw errors.at(line, 'an image entry needs "source"');
    const tags = strings('tags');
    const tagsRegex = string('tagsRegex');
    const destinations = strings('destinations');
    if (destinations === undefined) throw errors.at(line, 'an image entry needs "destinations"');
    if (tags !== undefined && tagsRegex !== undefined) {
      throw errors.at(values.get('tagsRegex')!.line, 'give "tags" or "tagsRegex", not both');
    }
    const sourceLine = values.get('source')!.line;
    const sourceRef = checkReference(source, sourceLine, errors);
    if (sourceRef.transport !== 'docker' && sourceRef.transport !== 'oci') {
      throw errors.at(
        sourceLine,
        `a sync source is a registry image or an OCI layout, not ${sourceRef.transport}:`,
      );
    }
    const sourceTagged =
      sourceRef.transport === 'docker' ? hasTagOrDigest(source) : sourceRef.ref !== undefined;
    if ((tags !== undefined || tagsRegex !== undefined) && sourceTagged) {
      throw errors.at(
        sourceLine,
        `the source "${source}" names a tag or digest, and "tags"/"tagsRegex" give others`,
        'write the source as a repository without a tag',
      );
    }
    if (sourceRef.transport === 'docker' && sourceRef.digest !== undefined) {
      throw errors.at(sourceLine, `the source "${source}" is named by digest; sync copies tags`);
    }
    if (tagsRegex !== undefined) {
      try {
        new RegExp(tagsRegex, 'u');
      } catch (error) {
        throw errors.at(
          values.get('tagsRegex')!.line,
          `"tagsRegex" is not a valid regular expression: ${(error as Error).message}`,
        );
      }
    }
    for (const [i, destination] of destinations.entries()) {
      const destinationLine = errors.lineOf(
        (values.get('destinations')!.node as { items: Node[] }).items[i] as Node,
      );
      const ref = checkReference(destination, destinationLine, errors);
      if (ref.transport === 'docker' && hasTagOrDigest(destination)) {
        throw errors.at(
          destinationLine,
          `the destination "${destination}" names a tag or digest`,
          'a destination is a repository; the tags come from the source',
        );
      }
      if (ref.transport === 'oci' && ref.ref !== undefined) {
        throw errors.at(
          destinationLine,
          `the destination "${destination}" names a ref`,
          'write oci:PATH; the tags come from the source',
        );
      }
      if (ref.transport !== 'docker' && ref.transport !== 'oci') {
        throw errors.at(
          destinationLine,
          `a sync destination is a registry repository or an OCI layout, not ${ref.transport}:`,
        );
      }
    }
    const entry: SyncImageEntry = { source, destinations, line };
    if (tags !== undefined) entry.tags = tags;
    if (tagsRegex !== undefined) entry.tagsRegex = tagsRegex;
    images.push(entry);
  }
  return { file, images };
}

function checkReference(text: string, line: number, errors: ConfigErrors): ImageReference {
  try {
    return parseReference(text);
  } catch (error) {
    if (BallastError.is(error)) throw errors.at(line, error.message, error.hint);
    throw error;
  }
}

/** Reads and parses a sync file. */
export async function loadSyncConfig(file: string): Promise<SyncConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new BallastError('USAGE', `cannot read the sync file ${file}: ${(error as Error).message}`, {
      exitCode: 2,
      cause: error,
    });
  }
  return parseSyncConfig(text, file);
}

/** One copy of a sync plan. */
export interface SyncPair {
  /** A full reference: `docker://host/repo:tag` or `oci:DIR:tag`. */
  source: string;
  destination: string;
  tag: string;
  /** The line of the image entry in the file. */
  line: number;
}

function withTag(text: string, tag: string): string {
  const ref = parseReference(text);
  if (ref.transport === 'docker') {
    return `docker://${formatDockerName({ registry: ref.registry, repository: ref.repository, tag, digest: undefined })}`;
  }
  if (ref.transport === 'oci') return `oci:${ref.path}:${tag}`;
  throw new BallastError('USAGE', `cannot tag ${text}`, { exitCode: 2 });
}

/**
 * Turns a config into (source, destination) pairs. `listTags` is called with an entry's `source` (as
 * written) for entries with `tagsRegex`; the regex matches anywhere in a tag, as skopeo's does.
 */
export async function planSync(
  config: SyncConfig,
  listTags: (source: string) => Promise<string[]>,
): Promise<SyncPair[]> {
  const pairs: SyncPair[] = [];
  const seen = new Set<string>();
  for (const entry of config.images) {
    let tags: string[];
    if (entry.tags !== undefined) tags = entry.tags;
    else if (entry.tagsRegex !== undefined) {
      const pattern = new RegExp(entry.tagsRegex, 'u');
      tags = (await listTags(entry.source)).filter((tag) => pattern.test(tag)).sort();
    } else {
      const ref = parseReference(entry.source);
      tags = [
        ref.transport === 'docker'
          ? (ref.tag ?? 'latest')
          : ref.transport === 'oci'
            ? (ref.ref ?? 'latest')
            : 'latest',
      ];
    }
    const sourceBase =
      entry.tags === undefined && entry.tagsRegex === undefined ? stripTag(entry.source) : entry.source;
    for (const tag of tags) {
      for (const destination of entry.destinations) {
        const pair = {
          source: withTag(sourceBase, tag),
          destination: withTag(destination, tag),
          tag,
          line: entry.line,
        };
        const key = `${pair.source} ${pair.destination}`;
        if (seen.has(key)) continue;
        seen.add(key);
        pairs.push(pair);
      }
    }
  }
  return pairs;
}

function stripTag(text: string): string {
  const ref = parseReference(text);
  if (ref.transport === 'docker') return `docker://${ref.registry}/${ref.repository}`;
  if (ref.transport === 'oci') return `oci:${ref.path}`;
  return text;
}

export type SyncStatus = 'copied' | 'up-to-date' | 'would-copy' | 'failed';

export interface SyncPairResult {
  pair: SyncPair;
  status: SyncStatus;
  /** The source's top-level digest, when it was read. */
  digest?: string;
  result?: CopyResult;
  error?: Error;
  bytesCopied: number;
  durationMs: number;
}

export interface SyncOptions {
  openSource: (reference: string) => Promise<ImageSource>;
  openDestination: (reference: string) => Promise<ImageDestination>;
  /** Source images copied at once (each to all its destinations); default 3. */
  concurrency?: number;
  /** Options of every copy (jobs, preserveDigests, platform). */
  copy?: Omit<CopyOptions, 'onEvent' | 'signal' | 'tag'>;
  /** Compare digests only, copy nothing. */
  dryRun?: boolean;
  onEvent?: (pair: SyncPair, event: CopyEvent) => void;
  onResult?: (result: SyncPairResult) => void;
  signal?: AbortSignal;
}

export interface SyncSummary {
  results: SyncPairResult[];
  copied: number;
  upToDate: number;
  failed: number;
  bytesCopied: number;
  blobsCopied: number;
  blobsSkipped: number;
  durationMs: number;
}

/** The pairs of one source image: read once, written to each destination that is not up to date. */
async function syncGroup(
  pairs: readonly SyncPair[],
  options: SyncOptions,
  blobLocks: Map<string, Promise<void>>,
  report: (index: number, result: SyncPairResult) => void,
): Promise<void> {
  const started = performance.now();
  const done = (pair: SyncPair, status: SyncStatus, extra: Partial<SyncPairResult> = {}): SyncPairResult => ({
    pair,
    status,
    bytesCopied: extra.result?.bytesCopied ?? 0,
    durationMs: Math.round(performance.now() - started),
    ...extra,
  });
  const failure = (error: unknown) => (error instanceof Error ? error : new Error(String(error)));
  let source: ImageSource | undefined;
  const opened: { index: number; destination: ImageDestination }[] = [];
  try {
    let digest: string;
    try {
      source = await options.openSource(pairs[0]!.source);
      // The source first: a pair whose source is missing must not create an empty destination.
      digest = (await source.getManifest()).digest;
    } catch (error) {
      for (const [index, pair] of pairs.entries())
        report(index, done(pair, 'failed', { error: failure(error) }));
      return;
    }
    const pending: { index: number; destination: ImageDestination }[] = [];
    for (const [index, pair] of pairs.entries()) {
      try {
        const destination = await options.openDestination(pair.destination);
        opened.push({ index, destination });
        // A platform choice writes another digest than the source's: then there is nothing to compare.
        if (options.copy?.platform === undefined && destination.manifestDigest) {
          if ((await destination.manifestDigest()) === digest) {
            report(index, done(pair, 'up-to-date', { digest }));
            continue;
          }
        }
        if (options.dryRun) report(index, done(pair, 'would-copy', { digest }));
        else pending.push({ index, destination });
      } catch (error) {
        report(index, done(pair, 'failed', { digest, error: failure(error) }));
      }
    }
    if (pending.length === 0) return;
    const copyOptions: CopyOptions = { ...options.copy, blobLocks };
    const first = pairs[pending[0]!.index]!;
    if (options.onEvent) copyOptions.onEvent = (event) => options.onEvent?.(first, event);
    if (options.signal) copyOptions.signal = options.signal;
    if (pending.length === 1) {
      const { index, destination } = pending[0]!;
      try {
        const result = await copyImage(source, destination, copyOptions);
        report(index, done(pairs[index]!, 'copied', { digest, result }));
      } catch (error) {
        report(index, done(pairs[index]!, 'failed', { digest, error: failure(error) }));
      }
      return;
    }
    // Several destinations: each blob is read once and streamed to all of them.
    const fanOut = new FanOutDestination(
      pending.map((p) => p.destination),
      blobLocks,
    );
    let result: CopyResult | undefined;
    let shared: Error | undefined;
    try {
      result = await copyImage(source, fanOut, copyOptions);
    } catch (error) {
      shared = failure(error);
    }
    for (const [i, { index }] of pending.entries()) {
      const child = fanOut.children[i]!;
      const pair = pairs[index]!;
      if (child.error || !result) {
        report(
          index,
          done(pair, 'failed', { digest, error: child.error ?? shared ?? new Error('copy failed') }),
        );
        continue;
      }
      const blobs = result.blobsCopied + result.blobsSkipped;
      report(
        index,
        done(pair, 'copied', {
          digest,
          result: {
            ...result,
            blobsCopied: child.blobsCopied,
            blobsSkipped: blobs - child.blobsCopied,
            blobsMounted: child.blobsMounted,
            bytesCopied: child.bytesCopied,
          },
        }),
      );
    }
  } finally {
    await Promise.all(opened.map(({ destination }) => destination.close().catch(() => {})));
    await source?.close().catch(() => {});
  }
}

/**
 * Runs a plan: at most `concurrency` source images at once, each read once and streamed to all of
 * its destinations that do not already point at its digest (those are skipped with 0 bytes copied).
 * A failure on one pair does not stop the others (it is in that pair's result; the caller decides the
 * exit code).
 */
export async function syncImages(plan: readonly SyncPair[], options: SyncOptions): Promise<SyncSummary> {
  const started = performance.now();
  const results = new Array<SyncPairResult>(plan.length);
  // Images that share layers are copied at once: each blob goes to each destination once.
  const blobLocks = new Map<string, Promise<void>>();
  // Pairs of one source image go together: the image is read once for all its destinations.
  const groups = new Map<string, number[]>();
  for (const [index, pair] of plan.entries()) {
    const members = groups.get(pair.source) ?? [];
    members.push(index);
    groups.set(pair.source, members);
  }
  const queue = [...groups.values()];
  let next = 0;
  const worker = async () => {
    while (next < queue.length) {
      const members = queue[next++]!;
      await syncGroup(
        members.map((i) => plan[i]!),
        options,
        blobLocks,
        (position, result) => {
          results[members[position]!] = result;
          options.onResult?.(result);
        },
      );
    }
  };
  const limit = Math.max(1, Math.min(options.concurrency ?? 3, queue.length));
  await Promise.all(Array.from({ length: limit }, worker));
  const sum = (pick: (r: SyncPairResult) => number) => results.reduce((total, r) => total + pick(r), 0);
  return {
    results,
    copied: results.filter((r) => r.status === 'copied').length,
    upToDate: results.filter((r) => r.status === 'up-to-date').length,
    failed: results.filter((r) => r.status === 'failed').length,
    bytesCopied: sum((r) => r.bytesCopied),
    blobsCopied: sum((r) => r.result?.blobsCopied ?? 0),
    blobsSkipped: sum((r) => r.result?.blobsSkipped ?? 0),
    durationMs: Math.round(performance.now() - started),
  };
}
