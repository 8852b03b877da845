/**
 * Stacks layers bottom to top with the OCI whiteout rules (DESIGN.md, "The weight of an image"),
 * keeping the byte accounting as it goes: every regular-file write is a "content" with a size and
 * the layer that wrote it, referenced by the paths that show it (a hardlink references its target's
 * content, so its bytes are counted once). When the last path showing a content is deleted or
 * written again, its bytes become waste, recorded with the path, the writer and the remover.
 *
 * Pure: change records in, numbers out. Records must be applied in layer order; package-database
 * bytes may arrive in any order (`addContent`).
 */
import { BallastError } from '../errors.js';
import type { Change } from '../layers/changes.js';
import { F_ALIVE, F_IMPLICIT, FsTree, T_DIR, T_FILE, T_HARDLINK, T_SYMLINK, typeCode } from './tree.js';
import type { AnalysisIssue, LayerMeta } from './types.js';

/** Waste record flag bits. */
export const W_OVERWRITTEN = 1;
export const W_METADATA_ONLY = 2;
export const W_MODE = 4;
export const W_UID = 8;
export const W_GID = 16;

/** Per-layer log kinds (for the `files --layer` view). */
export const K_ADDED = 1;
export const K_CHANGED = 2;
export const K_MERGED = 3;
export const K_REMOVED = 4;
export const K_OPAQUE = 5;

export interface LayerStats {
  meta: LayerMeta;
  fileBytes: number;
  filesAdded: number;
  filesChanged: number;
  filesRemoved: number;
  wastesBytes: number;
  wastesOwnBytes: number;
  entries: number;
}

/** Growable columns of numbers, one class per element type so each push site stays monomorphic. */
class F64Column {
  data = new Float64Array(256);
  length = 0;
  push(value: number): number {
    if (this.length === this.data.length) {
      const next = new Float64Array(Math.ceil(this.length * 1.5));
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length] = value;
    return this.length++;
  }
  get(index: number): number {
    return this.data[index] ?? 0;
  }
  get byteLength(): number {
    return this.data.byteLength;
  }
}

class I32Column {
  data = new Int32Array(256);
  length = 0;
  push(value: number): number {
    if (this.length === this.data.length) {
      const next = new Int32Array(Math.ceil(this.length * 1.5));
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length] = value;
    return this.length++;
  }
  get(index: number): number {
    return this.data[index] ?? 0;
  }
  get byteLength(): number {
    return this.data.byteLength;
  }
}

class U32Column {
  data = new Uint32Array(256);
  length = 0;
  push(value: number): number {
    if (this.length === this.data.length) {
      const next = new Uint32Array(Math.ceil(this.length * 1.5));
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length] = value;
    return this.length++;
  }
  get(index: number): number {
    return this.data[index] ?? 0;
  }
  get byteLength(): number {
    return this.data.byteLength;
  }
}

class U16Column {
  data = new Uint16Array(256);
  length = 0;
  push(value: number): number {
    if (this.length === this.data.length) {
      const next = new Uint16Array(Math.ceil(this.length * 1.5));
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length] = value;
    return this.length++;
  }
  get(index: number): number {
    return this.data[index] ?? 0;
  }
  get byteLength(): number {
    return this.data.byteLength;
  }
}

class U8Column {
  data = new Uint8Array(256);
  length = 0;
  push(value: number): number {
    if (this.length === this.data.length) {
      const next = new Uint8Array(Math.ceil(this.length * 1.5));
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length] = value;
    return this.length++;
  }
  get(index: number): number {
    return this.data[index] ?? 0;
  }
  get byteLength(): number {
    return this.data.byteLength;
  }
}

/** Paths whose bytes analysis wants (package databases). Cheap: it runs once per regular file. */
export function wantsContent(path: string): boolean {
  const p = path.startsWith('/') ? path.slice(1) : path;
  if (p.startsWith('var/lib/dpkg/')) {
    const rest = p.slice('var/lib/dpkg/'.length);
    if (rest === 'status') return true;
    if (rest.startsWith('status.d/')) return rest.indexOf('/', 'status.d/'.length) < 0;
    if (rest.startsWith('info/')) return rest.endsWith('.list') && rest.indexOf('/', 5) < 0;
    return false;
  }
  return p === 'lib/apk/db/installed' || p === 'usr/lib/apk/db/installed';
}

export interface StoredContent {
  layer: number;
  data: Buffer;
}

export class LayerMerger {
  readonly tree: FsTree;
  readonly layers: LayerStats[] = [];
  readonly issues: AnalysisIssue[] = [];
  /** Package-database bytes, by path: only the highest layer's version can be the visible one. */
  readonly contents = new Map<string, StoredContent>();

  // Contents: one per regular-file write.
  readonly cSize = new F64Column();
  readonly cLayer = new U16Column();
  readonly cRefs = new U32Column();

  // Waste records.
  readonly wNode = new I32Column();
  readonly wBytes = new F64Column();
  readonly wWriter = new U16Column();
  readonly wRemover = new U16Column();
  readonly wFlags = new U8Column();

  // The per-layer change log: node, bytes written (or removed), kind.
  readonly lNode = new I32Column();
  readonly lBytes = new F64Column();
  readonly lKind = new U8Column();
  /** Where each layer's log starts. */
  readonly logStart: number[] = [];

  totalBytes = 0;
  deletedBytes = 0;
  overwrittenBytes = 0;

  private current: LayerStats | undefined;
  private position = -1;
  private mark = 0;
  private cacheDir: string | undefined;
  private cacheNode = -1;
  /** Bytes turned into waste by the operation in progress (for the layer log). */
  private opWaste = 0;
  private finished = false;

  constructor(options: { expectedEntries?: number } = {}) {
    this.tree = new FsTree(options.expectedEntries ?? 1024);
  }

  beginLayer(meta: LayerMeta): void {
    if (this.finished) throw new BallastError('USAGE', 'analysis already finished: no more layers');
    if (this.current) this.endLayer();
    if (meta.index !== this.layers.length) {
      throw new BallastError(
        'USAGE',
        `layers must be applied bottom first: expected layer ${this.layers.length}, got ${meta.index}`,
      );
    }
    if (this.layers.length >= 0xfffe) throw new BallastError('LAYER_INVALID', 'too many layers');
    this.position = this.layers.length;
    this.mark = this.position + 1;
    this.current = {
      meta,
      fileBytes: 0,
      filesAdded: 0,
      filesChanged: 0,
      filesRemoved: 0,
      wastesBytes: 0,
      wastesOwnBytes: 0,
      entries: 0,
    };
    this.layers.push(this.current);
    this.logStart.push(this.lNode.length);
    this.cacheDir = undefined;
    this.cacheNode = -1;
  }

  endLayer(): void {
    this.current = undefined;
    this.cacheDir = undefined;
  }

  /** Marks the end of input; later calls to beginLayer/apply throw. */
  finish(): void {
    this.endLayer();
    this.finished = true;
  }

  /** The bytes of a file that `wantsContent` asked for; `layer` is the layer's index. */
  addContent(layer: number, path: string, data: Buffer): void {
    const p = path.startsWith('/') ? path.slice(1) : path;
    const held = this.contents.get(p);
    // A higher layer's version replaces a lower one for good, so the lower one can never be visible.
    if (held === undefined || held.layer <= layer) this.contents.set(p, { layer, data });
  }

  apply(change: Change): void {
    const stats = this.current;
    if (!stats) throw new BallastError('USAGE', 'apply() called outside beginLayer()/endLayer()');
    stats.entries++;
    if (change.kind === 'add') {
      this.add(stats, change);
      if (change.body !== undefined && change.type === 'file' && wantsContent(change.path)) {
        this.addContent(this.position, change.path, change.body);
      }
    } else if (change.kind === 'delete') {
      this.whiteout(stats, change.path);
    } else {
      this.opaque(stats, change.path);
    }
  }

  // ---- operations ----

  private add(
    stats: LayerStats,
    change: {
      path: string;
      type: string;
      size: number;
      mode: number;
      uid: number;
      gid: number;
      linkname: string;
    },
  ): void {
    const tree = this.tree;
    const path = change.path;
    if (path === '') {
      this.setMeta(0, change.mode, change.uid, change.gid);
      return;
    }
    const slash = path.lastIndexOf('/');
    const dir = slash < 0 ? '' : path.slice(0, slash);
    let parent: number;
    if (dir === this.cacheDir) parent = this.cacheNode;
    else {
      parent = this.ensureDir(stats, dir);
      this.cacheDir = dir;
      this.cacheNode = parent;
    }
    const node = tree.childOrCreate(parent, tree.names.intern(path.slice(slash + 1)));
    const type = typeCode(change.type);
    const alive = tree.isAlive(node);
    const oldType = tree.type[node] ?? T_DIR;
    const firstTouch = tree.touched[node] !== this.mark;
    const L = this.position;
    this.opWaste = 0;

    if (type === T_DIR) {
      let kind = K_ADDED;
      if (alive && oldType === T_DIR) kind = K_MERGED;
      else if (alive) {
        // A directory over a file: the file is replaced (a removal only if a lower layer wrote it).
        this.dropContent(stats, node, W_OVERWRITTEN);
        if (firstTouch) stats.filesRemoved++;
        kind = K_CHANGED;
      }
      tree.type[node] = T_DIR;
      tree.flags[node] = F_ALIVE;
      tree.layer[node] = L;
      tree.touched[node] = this.mark;
      tree.linkTargets.delete(node);
      this.setMeta(node, change.mode, change.uid, change.gid);
      this.log(node, 0, kind);
      return;
    }

    let flags = W_OVERWRITTEN;
    if (alive && oldType === T_DIR) {
      // A file over a directory: everything below goes; the directory itself is replaced.
      stats.filesRemoved += this.killBelow(stats, node, false);
      this.invalidateCache();
    } else if (alive) {
      const content = tree.content[node] ?? -1;
      if (type === T_FILE && oldType === T_FILE && content >= 0 && this.cSize.get(content) === change.size) {
        flags |= W_METADATA_ONLY;
        if (((tree.mode[node] ?? 0) & 0o7777) !== (change.mode & 0o7777)) flags |= W_MODE;
        if (tree.uid[node] !== change.uid) flags |= W_UID;
        if (tree.gid[node] !== change.gid) flags |= W_GID;
      }
      this.dropContent(stats, node, flags);
    }
    if (firstTouch) {
      if (alive) stats.filesChanged++;
      else stats.filesAdded++;
    }
    tree.type[node] = type;
    tree.flags[node] = F_ALIVE;
    tree.layer[node] = L;
    tree.touched[node] = this.mark;
    this.setMeta(node, change.mode, change.uid, change.gid);
    let bytes = 0;
    if (type === T_FILE) {
      bytes = change.size;
      tree.content[node] = this.newContent(bytes);
      stats.fileBytes += bytes;
      this.totalBytes += bytes;
    } else if (type === T_HARDLINK) {
      tree.content[node] = this.linkTo(node, change.linkname);
    }
    if (type === T_SYMLINK) tree.linkTargets.set(node, change.linkname);
    else tree.linkTargets.delete(node);
    this.log(node, bytes, alive ? K_CHANGED : K_ADDED);
  }

  private whiteout(stats: LayerStats, path: string): void {
    const tree = this.tree;
    const node = tree.find(path);
    if (node <= 0 || !tree.isAlive(node)) return;
    this.opWaste = 0;
    if (tree.touched[node] === this.mark) {
      // A whiteout only applies to lower layers: what this layer wrote at the path stays.
      if (tree.type[node] === T_DIR) stats.filesRemoved += this.killUntouched(stats, node);
    } else {
      stats.filesRemoved += this.killBelow(stats, node, true);
    }
    this.invalidateCache();
    this.log(node, this.opWaste, K_REMOVED);
  }

  private opaque(stats: LayerStats, path: string): void {
    const node = this.ensureDir(stats, path);
    this.opWaste = 0;
    stats.filesRemoved += this.killUntouched(stats, node);
    this.invalidateCache();
    this.log(node, this.opWaste, K_OPAQUE);
  }

  // ---- helpers ----

  /** Makes `dir` and its parents alive directories touched by this layer; returns its node. */
  private ensureDir(stats: LayerStats, dir: string): number {
    const tree = this.tree;
    const node = tree.nodeOf(dir);
    const chain: number[] = [];
    for (let current = node; current !== 0; current = tree.parent[current] ?? 0) chain.push(current);
    for (let i = chain.length - 1; i >= 0; i--) {
      const n = chain[i] ?? 0;
      const alive = tree.isAlive(n);
      if (alive && tree.type[n] === T_DIR) {
        tree.touched[n] = this.mark;
        continue;
      }
      if (alive) {
        // A file in the way of a directory this layer writes into: replaced (a removal only if a
        // lower layer wrote it).
        this.opWaste = 0;
        this.dropContent(stats, n, W_OVERWRITTEN);
        if (tree.touched[n] !== this.mark) stats.filesRemoved++;
        tree.linkTargets.delete(n);
        this.invalidateCache();
      }
      tree.type[n] = T_DIR;
      tree.flags[n] = F_ALIVE | F_IMPLICIT;
      tree.layer[n] = this.position;
      tree.touched[n] = this.mark;
      this.setMeta(n, 0o755, 0, 0);
    }
    return node;
  }

  private setMeta(node: number, mode: number, uid: number, gid: number): void {
    this.tree.mode[node] = mode;
    this.tree.uid[node] = uid;
    this.tree.gid[node] = gid;
  }

  private invalidateCache(): void {
    this.cacheDir = undefined;
    this.cacheNode = -1;
  }

  private newContent(size: number): number {
    this.cSize.push(size);
    this.cLayer.push(this.position);
    return this.cRefs.push(1);
  }

  private linkTo(node: number, target: string): number {
    const tree = this.tree;
    const targetNode = tree.find(target);
    const content = targetNode >= 0 && tree.isAlive(targetNode) ? (tree.content[targetNode] ?? -1) : -1;
    if (targetNode === node || content < 0) {
      if (this.issues.length < 100) {
        this.issues.push({
          code: 'dangling-hardlink',
          message: `hardlink ${tree.pathOf(node)} -> ${target}: the target is not a file of the filesystem`,
          path: tree.pathOf(node),
          layer: this.position,
        });
      }
      return -1;
    }
    this.cRefs.data[content] = this.cRefs.get(content) + 1;
    return content;
  }

  /** Drops the node's reference to its content; the bytes are waste when it was the last one. */
  private dropContent(stats: LayerStats, node: number, flags: number): void {
    const content = this.tree.content[node] ?? -1;
    if (content < 0) return;
    this.tree.content[node] = -1;
    const refs = this.cRefs.get(content) - 1;
    this.cRefs.data[content] = refs;
    if (refs > 0) return;
    const bytes = this.cSize.get(content);
    const writer = this.cLayer.get(content);
    if (flags & W_OVERWRITTEN) this.overwrittenBytes += bytes;
    else this.deletedBytes += bytes;
    if (writer < this.position) stats.wastesBytes += bytes;
    else stats.wastesOwnBytes += bytes;
    this.opWaste += bytes;
    if (bytes === 0) return;
    this.wNode.push(node);
    this.wBytes.push(bytes);
    this.wWriter.push(writer);
    this.wRemover.push(this.position);
    this.wFlags.push(flags);
  }

  /** Removes what is below `node` (and `node` itself when `self`). Returns the non-directories removed. */
  private killBelow(stats: LayerStats, node: number, self: boolean): number {
    const tree = this.tree;
    let removed = 0;
    const stack: number[] = [];
    if (self) stack.push(node);
    else tree.forEachChild(node, (child) => stack.push(child));
    while (stack.length > 0) {
      const n = stack.pop() ?? 0;
      if (!tree.isAlive(n)) continue;
      if (tree.type[n] === T_DIR) tree.forEachChild(n, (child) => stack.push(child));
      // filesRemoved counts paths of lower layers; what this layer wrote itself is its own waste.
      else if (tree.touched[n] !== this.mark) removed++;
      this.dropContent(stats, n, 0);
      tree.flags[n] = 0;
      if (tree.type[n] === T_SYMLINK) tree.linkTargets.delete(n);
    }
    return removed;
  }

  /** Opaque: removes what lower layers had below `dir`, keeping what this layer wrote there. */
  private killUntouched(stats: LayerStats, dir: number): number {
    const tree = this.tree;
    let removed = 0;
    const dirs = [dir];
    while (dirs.length > 0) {
      const d = dirs.pop() ?? 0;
      tree.forEachChild(d, (child) => {
        if (!tree.isAlive(child)) return;
        if (tree.touched[child] === this.mark) {
          if (tree.type[child] === T_DIR) dirs.push(child);
        } else {
          removed += this.killBelow(stats, child, true);
        }
      });
    }
    return removed;
  }

  private log(node: number, bytes: number, kind: number): void {
    this.lNode.push(node);
    this.lBytes.push(bytes);
    this.lKind.push(kind);
  }

  /** Bytes held by the typed arrays (the tree, contents, waste records, layer log). */
  get arrayBytes(): number {
    return (
      this.tree.arrayBytes +
      this.cSize.byteLength +
      this.cLayer.byteLength +
      this.cRefs.byteLength +
      this.wNode.byteLength +
      this.wBytes.byteLength +
      this.wWriter.byteLength +
      this.wRemover.byteLength +
      this.wFlags.byteLength +
      this.lNode.byteLength +
      this.lBytes.byteLength +
      this.lKind.byteLength
    );
  }
}
