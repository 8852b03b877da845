/**
 * Change records: what one layer does to the filesystem below it, per the OCI image-spec whiteout
 * rules. One record per tar entry, in archive order; analysis stacks them (src/analysis/).
 *
 * - `.wh.NAME` in directory D: `delete` D/NAME and all below it, in the layers below this one only.
 * - `.wh..wh..opq` in D: `opaque` D, hiding what lower layers had below D (this layer's own entries
 *   under D stay).
 * - anything else: `add`, which replaces what a lower layer had at that path (a directory over a
 *   directory merges). A path written twice in one layer gives two records; the first is overwritten.
 */
import type { Readable } from 'node:stream';
import { decompress } from './decompress.js';
import {
  type LayerFile,
  type LayerMeasure,
  namedLayerError,
  type ScanOptions,
  scanLayer,
} from './measure.js';
import { type EntryType, type TarEntry, type TarIssue, tarEntries } from './tar.js';

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';
/** AUFS keeps its own bookkeeping under names with this prefix (`.wh..wh.plnk`, `.wh..wh.aufs`). */
const AUFS_META_PREFIX = '.wh..wh.';

export interface AddChange {
  kind: 'add';
  path: string;
  type: EntryType;
  /** Content bytes: the size of a regular file, 0 for everything else (a hardlink's bytes are its target's). */
  size: number;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  /** Hardlinks: the target path (normalised), so that analysis counts the bytes once. Symlinks: the target. */
  linkname: string;
  /** The file's content, when `wantBody` asked for it. */
  body: Buffer | undefined;
  /** The entry's position in the layer (0-based), which orders two writes of one path. */
  index: number;
}

export interface DeleteChange {
  kind: 'delete';
  /** What the whiteout removes from the lower layers (and everything below it). */
  path: string;
  index: number;
}

export interface OpaqueChange {
  kind: 'opaque';
  /** The directory whose lower-layer contents are hidden ('' for the root). */
  path: string;
  index: number;
}

export type Change = AddChange | DeleteChange | OpaqueChange;

/** Why an entry gave no change record. */
export type Skipped = 'root' | 'unsafe' | 'aufs-metadata' | 'invalid-whiteout';

/**
 * The change record of one tar entry, or the reason it has none: the root directory itself, an
 * entry whose path escapes the root, AUFS bookkeeping, or a whiteout that names nothing.
 */
export function changeOf(entry: TarEntry, index: number): Change | Skipped {
  const path = entry.path;
  if (entry.unsafe) return 'unsafe';
  if (path === '') return 'root';
  // Fast path: almost no path contains the whiteout prefix at all.
  if (path.indexOf(WHITEOUT_PREFIX) >= 0) {
    const slash = path.lastIndexOf('/');
    const dir = slash < 0 ? '' : path.slice(0, slash);
    const base = path.slice(slash + 1);
    if (base === OPAQUE_MARKER) return { kind: 'opaque', path: dir, index };
    if (
      base.startsWith(AUFS_META_PREFIX) ||
      dir.split('/').some((part) => part.startsWith(AUFS_META_PREFIX))
    ) {
      return 'aufs-metadata';
    }
    if (base.startsWith(WHITEOUT_PREFIX)) {
      const name = base.slice(WHITEOUT_PREFIX.length);
      if (name === '' || name === '.' || name === '..') return 'invalid-whiteout';
      return { kind: 'delete', path: dir === '' ? name : `${dir}/${name}`, index };
    }
  }
  return {
    kind: 'add',
    path,
    type: entry.type,
    size: entry.type === 'file' ? entry.size : 0,
    mode: entry.mode,
    uid: entry.uid,
    gid: entry.gid,
    mtime: entry.mtime,
    linkname: entry.linkname,
    body: entry.body,
    index,
  };
}

export interface LayerChanges extends LayerMeasure {
  /** Change records delivered. */
  changes: number;
  /** Entries that gave no record, by reason. */
  skipped: Record<Skipped, number>;
}

export interface ChangeOptions extends ScanOptions {
  /** Asked per regular file: true to receive its content as `body` (package databases). */
  wantBody?: (entry: TarEntry) => boolean;
}

/**
 * Reads a layer (stream of any compression, or a file range) and calls `onChange` for each change
 * record in archive order. Returns the layer's measure with the record counts.
 */
export async function readLayerChanges(
  input: Readable | LayerFile,
  onChange: (change: Change) => void,
  options: ChangeOptions = {},
): Promise<LayerChanges> {
  const skipped: Record<Skipped, number> = { root: 0, unsafe: 0, 'aufs-metadata': 0, 'invalid-whiteout': 0 };
  const extra: TarIssue[] = [];
  let changes = 0;
  let index = 0;
  const measure = await scanLayer(
    input,
    (entry) => {
      const change = changeOf(entry, index++);
      if (typeof change === 'string') {
        skipped[change]++;
        if (change === 'invalid-whiteout' || change === 'aufs-metadata') {
          const issue = skipIssue(change, entry);
          extra.push(issue);
          options.onIssue?.(issue);
        }
        return;
      }
      changes++;
      onChange(change);
    },
    options,
  );
  const room = Math.max(0, 100 - measure.issues.length);
  return {
    ...measure,
    issues: measure.issues.concat(extra.slice(0, room)),
    issueCount: measure.issueCount + extra.length,
    changes,
    skipped,
  };
}

function skipIssue(code: 'invalid-whiteout' | 'aufs-metadata', entry: TarEntry): TarIssue {
  const message =
    code === 'invalid-whiteout'
      ? `the whiteout ${JSON.stringify(entry.path)} names nothing`
      : 'AUFS bookkeeping, not part of the image filesystem';
  return { code, message, offset: entry.offset, path: entry.path };
}

/** The change records of a layer stream (any compression) as an async iterator. */
export async function* layerChanges(input: Readable, options: ChangeOptions = {}): AsyncGenerator<Change> {
  let index = 0;
  try {
    const layer = await decompress(input, options);
    for await (const entry of tarEntries(layer.stream, options)) {
      const change = changeOf(entry, index++);
      if (typeof change !== 'string') yield change;
    }
  } catch (error) {
    throw namedLayerError(error, options.what);
  }
}
