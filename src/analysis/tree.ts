/**
 * The storage of the merged filesystem: one node per path ever seen, in parallel typed arrays, so
 * that a million entries cost tens of bytes each rather than a JS object each. Names are interned
 * once; a (parent, name) -> node lookup is an open-addressing hash table over the node arrays
 * themselves, so it holds 4 bytes per slot and no keys.
 *
 * Nodes are never freed: a removed path keeps its node, marked dead, and comes back to life when a
 * later layer writes it again. A child is always created after its parent, so node order is a
 * topological order (used to sum directory sizes in one reverse pass).
 */

export const T_DIR = 0;
export const T_FILE = 1;
export const T_SYMLINK = 2;
export const T_HARDLINK = 3;
export const T_CHAR = 4;
export const T_BLOCK = 5;
export const T_FIFO = 6;
export const T_OTHER = 7;

export const TYPE_NAMES = ['dir', 'file', 'symlink', 'hardlink', 'char', 'block', 'fifo', 'other'] as const;
export type NodeType = (typeof TYPE_NAMES)[number];

const TYPE_CODES: Record<string, number> = {
  dir: T_DIR,
  file: T_FILE,
  symlink: T_SYMLINK,
  hardlink: T_HARDLINK,
  char: T_CHAR,
  block: T_BLOCK,
  fifo: T_FIFO,
  other: T_OTHER,
};

export function typeCode(type: string): number {
  return TYPE_CODES[type] ?? T_OTHER;
}

/** Flag bits. */
export const F_ALIVE = 1;
/** A directory that exists only because an entry below it does (no header of its own in that layer). */
export const F_IMPLICIT = 2;

const NO_NODE = -1;

/**
 * Interned path segments: each distinct name is stored once, as Latin-1 bytes in one arena (a JS
 * string costs ~60 bytes and a Map entry ~40 more; here a name costs its length plus 12 bytes).
 * Names with a character above U+00FF (rare) go to a Map instead.
 */
export class NameTable {
  private arena = Buffer.alloc(1 << 16);
  private used = 0;
  /** Arena offset of each name; a wide name has start = -1. */
  private start = new Int32Array(1024);
  private length = new Int32Array(1024);
  private hashes = new Int32Array(1024);
  private count = 0;
  private slots = new Int32Array(2048);
  private mask = 2047;
  private readonly wide = new Map<string, number>();
  private readonly wideNames = new Map<number, string>();

  intern(name: string): number {
    return this.lookup(name, true);
  }

  /** The id of a name already interned, or -1. */
  find(name: string): number {
    return this.lookup(name, false);
  }

  get size(): number {
    return this.count;
  }

  /** Bytes held by the arena and tables. */
  get byteLength(): number {
    return this.arena.length + this.start.byteLength * 3 + this.slots.byteLength;
  }

  get(id: number): string {
    const start = this.start[id] ?? 0;
    if (start < 0) return this.wideNames.get(id) ?? '';
    return this.arena.toString('latin1', start, start + (this.length[id] ?? 0));
  }

  private lookup(name: string, create: boolean): number {
    const n = name.length;
    let h = 0x811c9dc5;
    for (let i = 0; i < n; i++) {
      const c = name.charCodeAt(i);
      if (c > 0xff) return this.lookupWide(name, create);
      h = Math.imul(h ^ c, 0x01000193);
    }
    let slot = h & this.mask;
    for (;;) {
      const entry = this.slots[slot] ?? 0;
      if (entry === 0) break;
      const id = entry - 1;
      if (this.hashes[id] === h && this.length[id] === n && this.equals(id, name)) return id;
      slot = (slot + 1) & this.mask;
    }
    if (!create) return -1;
    if (this.used + n > this.arena.length) {
      const next = Buffer.alloc(Math.max(this.arena.length * 2, this.used + n));
      this.arena.copy(next, 0, 0, this.used);
      this.arena = next;
    }
    const id = this.newId(h);
    this.start[id] = this.used;
    this.length[id] = n;
    this.arena.write(name, this.used, 'latin1');
    this.used += n;
    this.slots[slot] = id + 1;
    if (this.count * 2 > this.slots.length) this.rehash();
    return id;
  }

  private equals(id: number, name: string): boolean {
    const start = this.start[id] ?? 0;
    const arena = this.arena;
    for (let i = 0; i < name.length; i++) if (arena[start + i] !== name.charCodeAt(i)) return false;
    return true;
  }

  private lookupWide(name: string, create: boolean): number {
    const found = this.wide.get(name);
    if (found !== undefined || !create) return found ?? -1;
    const id = this.newId(0);
    this.start[id] = -1;
    this.wide.set(name, id);
    this.wideNames.set(id, name);
    return id;
  }

  private newId(hash: number): number {
    if (this.count === this.start.length) {
      const n = Math.ceil(this.count * 1.5);
      this.start = grow(this.start, n);
      this.length = grow(this.length, n);
      this.hashes = grow(this.hashes, n);
    }
    const id = this.count++;
    this.hashes[id] = hash;
    return id;
  }

  private rehash(): void {
    this.slots = new Int32Array(this.slots.length * 2);
    this.mask = this.slots.length - 1;
    for (let id = 0; id < this.count; id++) {
      if ((this.start[id] ?? 0) < 0) continue;
      let slot = (this.hashes[id] ?? 0) & this.mask;
      while ((this.slots[slot] ?? 0) !== 0) slot = (slot + 1) & this.mask;
      this.slots[slot] = id + 1;
    }
  }
}

function grow<T extends Int32Array | Uint8Array | Uint16Array | Uint32Array | Float64Array>(
  array: T,
  capacity: number,
): T {
  const next = new (array.constructor as new (n: number) => T)(capacity);
  next.set(array);
  return next;
}

export class FsTree {
  readonly names = new NameTable();
  /** Number of nodes; node 0 is the root. */
  count = 0;
  private capacity: number;
  parent: Int32Array;
  name: Int32Array;
  firstChild: Int32Array;
  nextSibling: Int32Array;
  type: Uint8Array;
  flags: Uint8Array;
  /** The layer (position in the stack) that wrote the visible version. */
  layer: Uint16Array;
  /** The last layer that wrote or passed through this node, +1 (0: never). */
  touched: Uint16Array;
  mode: Uint32Array;
  uid: Uint32Array;
  gid: Uint32Array;
  /** The content (regular-file data) of the node, or -1. Hardlinks share their target's. */
  content: Int32Array;
  /** Symlink targets, by node: few enough for a Map. */
  readonly linkTargets = new Map<number, string>();

  private slots: Int32Array;
  private mask: number;

  constructor(initialCapacity = 1024) {
    this.capacity = Math.max(16, initialCapacity);
    const n = this.capacity;
    this.parent = new Int32Array(n);
    this.name = new Int32Array(n);
    this.firstChild = new Int32Array(n).fill(NO_NODE);
    this.nextSibling = new Int32Array(n).fill(NO_NODE);
    this.type = new Uint8Array(n);
    this.flags = new Uint8Array(n);
    this.layer = new Uint16Array(n);
    this.touched = new Uint16Array(n);
    this.mode = new Uint32Array(n);
    this.uid = new Uint32Array(n);
    this.gid = new Uint32Array(n);
    this.content = new Int32Array(n).fill(NO_NODE);
    let slots = 16;
    while (slots < n * 2) slots *= 2;
    this.slots = new Int32Array(slots);
    this.mask = slots - 1;
    // The root: an alive directory whose parent is itself.
    this.count = 1;
    this.parent[0] = 0;
    this.name[0] = this.names.intern('');
    this.type[0] = T_DIR;
    this.flags[0] = F_ALIVE;
    this.mode[0] = 0o755;
  }

  /** Bytes held by the node arrays and the lookup table (not the names). */
  get arrayBytes(): number {
    return this.capacity * (4 * 9 + 1 * 2 + 2 * 2) + this.slots.byteLength + this.names.byteLength;
  }

  isAlive(node: number): boolean {
    return ((this.flags[node] ?? 0) & F_ALIVE) !== 0;
  }

  private hash(parent: number, name: number): number {
    let h = Math.imul(parent, 0x9e3779b1) ^ Math.imul(name + 0x7f4a7c15, 0x85ebca77);
    h ^= h >>> 15;
    h = Math.imul(h, 0x2c1b3c6d);
    h ^= h >>> 13;
    return h & this.mask;
  }

  /** The child of `parent` called `name` (an interned id), or -1. */
  child(parent: number, name: number): number {
    let slot = this.hash(parent, name);
    for (;;) {
      const entry = this.slots[slot] ?? 0;
      if (entry === 0) return NO_NODE;
      const node = entry - 1;
      if (this.name[node] === name && this.parent[node] === parent) return node;
      slot = (slot + 1) & this.mask;
    }
  }

  /** The child called `name`, created (dead, typeless) when missing. */
  childOrCreate(parent: number, name: number): number {
    const found = this.child(parent, name);
    if (found >= 0) return found;
    if (this.count === this.capacity) this.growNodes();
    const node = this.count++;
    this.parent[node] = parent;
    this.name[node] = name;
    this.nextSibling[node] = this.firstChild[parent] ?? NO_NODE;
    this.firstChild[parent] = node;
    if (this.count * 2 > this.slots.length) this.rehash(this.slots.length * 2);
    else this.insertSlot(node);
    return node;
  }

  private insertSlot(node: number): void {
    let slot = this.hash(this.parent[node] ?? 0, this.name[node] ?? 0);
    while ((this.slots[slot] ?? 0) !== 0) slot = (slot + 1) & this.mask;
    this.slots[slot] = node + 1;
  }

  private rehash(size: number): void {
    this.slots = new Int32Array(size);
    this.mask = size - 1;
    for (let node = 1; node < this.count; node++) this.insertSlot(node);
  }

  private growNodes(): void {
    const n = Math.ceil(this.capacity * 1.5);
    this.parent = grow(this.parent, n);
    this.name = grow(this.name, n);
    this.firstChild = grow(this.firstChild, n);
    this.firstChild.fill(NO_NODE, this.capacity);
    this.nextSibling = grow(this.nextSibling, n);
    this.nextSibling.fill(NO_NODE, this.capacity);
    this.type = grow(this.type, n);
    this.flags = grow(this.flags, n);
    this.layer = grow(this.layer, n);
    this.touched = grow(this.touched, n);
    this.mode = grow(this.mode, n);
    this.uid = grow(this.uid, n);
    this.gid = grow(this.gid, n);
    this.content = grow(this.content, n);
    this.content.fill(NO_NODE, this.capacity);
    this.capacity = n;
  }

  /** The node of a normalised path (no leading '/'), created with its parents (dead) when missing. */
  nodeOf(path: string): number {
    let node = 0;
    if (path === '') return node;
    let start = 0;
    for (;;) {
      const slash = path.indexOf('/', start);
      const segment = slash < 0 ? path.slice(start) : path.slice(start, slash);
      if (segment !== '') node = this.childOrCreate(node, this.names.intern(segment));
      if (slash < 0) return node;
      start = slash + 1;
    }
  }

  /** The node of a path if it was ever seen, else -1 (creates nothing). */
  find(path: string): number {
    let node = 0;
    if (path === '') return node;
    for (const segment of path.split('/')) {
      if (segment === '') continue;
      const id = this.names.find(segment);
      if (id < 0) return NO_NODE;
      node = this.child(node, id);
      if (node < 0) return NO_NODE;
    }
    return node;
  }

  pathOf(node: number): string {
    if (node === 0) return '';
    const parts: string[] = [];
    let current = node;
    while (current !== 0) {
      parts.push(this.names.get(this.name[current] ?? 0));
      current = this.parent[current] ?? 0;
    }
    return parts.reverse().join('/');
  }

  nameOf(node: number): string {
    return this.names.get(this.name[node] ?? 0);
  }

  depthOf(node: number): number {
    let depth = 0;
    for (let current = node; current !== 0; current = this.parent[current] ?? 0) depth++;
    return depth;
  }

  /** Calls `visit` for each child (alive or not) of `node`. */
  forEachChild(node: number, visit: (child: number) => void): void {
    for (
      let child = this.firstChild[node] ?? NO_NODE;
      child >= 0;
      child = this.nextSibling[child] ?? NO_NODE
    ) {
      visit(child);
    }
  }

  /** True when `node` is `ancestor` or lies below it. */
  isWithin(node: number, ancestor: number): boolean {
    for (let current = node; ; current = this.parent[current] ?? 0) {
      if (current === ancestor) return true;
      if (current === 0) return false;
    }
  }

  /**
   * Resolves a path through the symlinks of the final filesystem in every directory component (the
   * last component is not followed: a package owns the symlink itself). Returns the alive node, or -1.
   */
  resolve(path: string, followLast = false): number {
    let segments = path.split('/').filter((part) => part !== '' && part !== '.');
    let hops = 0;
    restart: for (;;) {
      let node = 0;
      for (let i = 0; i < segments.length; i++) {
        const segment = segments[i] ?? '';
        if (segment === '..') {
          node = this.parent[node] ?? 0;
          continue;
        }
        const id = this.names.find(segment);
        if (id < 0) return NO_NODE;
        const next = this.child(node, id);
        if (next < 0 || !this.isAlive(next)) return NO_NODE;
        if ((followLast || i < segments.length - 1) && this.type[next] === T_SYMLINK) {
          if (++hops > 40) return NO_NODE;
          const target = this.linkTargets.get(next) ?? '';
          const base = target.startsWith('/') ? [] : this.pathOf(node).split('/');
          segments = [...base, ...target.split('/'), ...segments.slice(i + 1)].filter(
            (part) => part !== '' && part !== '.',
          );
          segments = collapseDots(segments);
          continue restart;
        }
        node = next;
      }
      return node;
    }
  }
}

function collapseDots(segments: string[]): string[] {
  const out: string[] = [];
  for (const segment of segments) {
    if (segment === '..') out.pop();
    else out.push(segment);
  }
  return out;
}
