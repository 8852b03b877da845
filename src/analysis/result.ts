/**
 * The finished analysis: the final filesystem with every node's visible bytes and the cumulative
 * bytes of every directory, package attribution, and the report. Built once from a LayerMerger.
 */
import { buildRecommendations } from './advice.js';
import { type FilesOptions, type FilesView, filesView } from './files.js';
import { type LayerMerger, W_GID, W_METADATA_ONLY, W_MODE, W_OVERWRITTEN, W_UID } from './merge.js';
import {
  type ApkPackage,
  type DpkgStanza,
  parseApkInstalled,
  parseDpkgStatus,
  parseFileList,
  RPM_DATABASES,
} from './packages.js';
import { T_DIR, T_FILE, T_HARDLINK, T_SYMLINK } from './tree.js';
import type {
  AnalysisIssue,
  AnalysisReport,
  LayerReport,
  PackageDatabase,
  PackageManager,
  PackageReport,
  ReportOptions,
  SizedPath,
  WastedPath,
} from './types.js';

/** Directories whose children are the natural unit for unowned bytes (`usr/local/cargo`, ...). */
const DEEP_GROUPS = new Set([
  'usr/local',
  'usr/lib',
  'usr/lib64',
  'usr/libexec',
  'usr/share',
  'usr/src',
  'var/lib',
  'var/cache',
  'var/log',
  'root/.cache',
  'root/.local',
  'root/.config',
]);
/** And those one level deeper still (`usr/local/lib/python3.12`, `home/me/.cache`). */
const DEEPER_GROUPS = new Set(['usr/local/lib', 'usr/local/share', 'root/.local/share', 'root/.local/lib']);

interface PackageEntry {
  report: PackageReport;
  files: string[];
  /** The node of the database file that lists it (fallback for the layer). */
  source: number;
}

export class ImageAnalysis {
  readonly report: AnalysisReport;
  /** Bytes each node shows: a file's size, 0 for a second path of hardlinked content. */
  readonly nodeBytes: Float64Array;
  /** Cumulative visible bytes below each node (a file's own bytes). */
  readonly cumBytes: Float64Array;
  /** Cumulative visible non-directory paths below each node (1 for a file). */
  readonly cumFiles: Uint32Array;
  /** The package (index into report.packages) that owns each node, or -1. */
  readonly owner: Int32Array;
  readonly finalBytes: number;

  constructor(
    readonly merger: LayerMerger,
    readonly options: ReportOptions = {},
  ) {
    merger.finish();
    const tree = merger.tree;
    const count = tree.count;
    const contents = merger.cRefs.length;
    // Which path carries a content's bytes: its regular file first, else the first hardlink.
    const carrier = new Int32Array(contents).fill(-1);
    for (const wanted of [T_FILE, T_HARDLINK]) {
      for (let node = 1; node < count; node++) {
        if (tree.type[node] !== wanted || !tree.isAlive(node)) continue;
        const c = tree.content[node] ?? -1;
        if (c >= 0 && (carrier[c] ?? -1) < 0) carrier[c] = node;
      }
    }
    this.nodeBytes = new Float64Array(count);
    let finalBytes = 0;
    const layerFinal = new Float64Array(merger.layers.length);
    for (let c = 0; c < contents; c++) {
      const node = carrier[c] ?? -1;
      if (node < 0) continue;
      const size = merger.cSize.get(c);
      this.nodeBytes[node] = size;
      finalBytes += size;
      const layer = merger.cLayer.get(c);
      layerFinal[layer] = (layerFinal[layer] ?? 0) + size;
    }
    this.finalBytes = finalBytes;
    this.cumBytes = new Float64Array(count);
    this.cumFiles = new Uint32Array(count);
    let fileCount = 0;
    for (let node = count - 1; node >= 1; node--) {
      if (!tree.isAlive(node)) continue;
      this.cumBytes[node] = (this.cumBytes[node] ?? 0) + (this.nodeBytes[node] ?? 0);
      if (tree.type[node] !== T_DIR) {
        this.cumFiles[node] = 1;
        fileCount++;
      }
      const parent = tree.parent[node] ?? 0;
      this.cumBytes[parent] = (this.cumBytes[parent] ?? 0) + (this.cumBytes[node] ?? 0);
      this.cumFiles[parent] = (this.cumFiles[parent] ?? 0) + (this.cumFiles[node] ?? 0);
    }

    this.owner = new Int32Array(count).fill(-1);
    const issues: AnalysisIssue[] = [...merger.issues];
    const { packages, databases } = this.attribute(issues);

    const top = options.top ?? 20;
    const totalBytes = merger.totalBytes;
    const wastedBytes = merger.deletedBytes + merger.overwrittenBytes;
    let userBytes = 0;
    for (let i = 1; i < merger.layers.length; i++) userBytes += merger.layers[i]?.fileBytes ?? 0;

    const layers: LayerReport[] = merger.layers.map((stats, i) => ({
      ...stats.meta,
      fileBytes: stats.fileBytes,
      finalBytes: layerFinal[i] ?? 0,
      filesAdded: stats.filesAdded,
      filesChanged: stats.filesChanged,
      filesRemoved: stats.filesRemoved,
      wastesBytes: stats.wastesBytes,
      wastesOwnBytes: stats.wastesOwnBytes,
      entries: stats.entries,
    }));

    this.report = {
      totalBytes,
      finalBytes,
      wastedBytes,
      deletedBytes: merger.deletedBytes,
      overwrittenBytes: merger.overwrittenBytes,
      efficiency: totalBytes === 0 ? 1 : finalBytes / totalBytes,
      userWastedPercent: userBytes === 0 ? 0 : wastedBytes / userBytes,
      fileCount,
      layers,
      wasted: this.wastedPaths(options.wastedLimit ?? 1000),
      wastedCount: merger.wBytes.length,
      packages,
      packageDatabases: databases,
      unowned: this.unowned(top),
      largestFiles: this.largest(top, false),
      largestDirectories: this.largest(top, true),
      recommendations: [],
      issues,
    };
    this.report.recommendations = buildRecommendations(this);
  }

  /** A du-like view of the final filesystem, or of one layer's changes. */
  files(options: FilesOptions = {}): FilesView {
    return filesView(this, options);
  }

  /** The report's layer index of a layer position. */
  layerIndex(position: number): number {
    return this.merger.layers[position]?.meta.index ?? position;
  }

  /** The visible node at a path (resolving directory symlinks), or -1. */
  resolve(path: string): number {
    return this.merger.tree.resolve(path);
  }

  /** Visible bytes below a path (0 when absent). */
  bytesAt(path: string): number {
    const node = this.resolve(path);
    return node < 0 ? 0 : (this.cumBytes[node] ?? 0);
  }

  /** Visible bytes below `node` by the layer that wrote them (layer position -> bytes). */
  bytesByLayer(node: number, skip?: (node: number) => boolean): Map<number, number> {
    const tree = this.merger.tree;
    const out = new Map<number, number>();
    const stack = [node];
    while (stack.length > 0) {
      const n = stack.pop() ?? 0;
      if (!tree.isAlive(n) || skip?.(n)) continue;
      if (tree.type[n] === T_DIR) {
        if ((this.cumBytes[n] ?? 0) > 0) tree.forEachChild(n, (child) => stack.push(child));
        continue;
      }
      const bytes = this.nodeBytes[n] ?? 0;
      if (bytes === 0) continue;
      const c = tree.content[n] ?? -1;
      const layer = c >= 0 ? this.merger.cLayer.get(c) : (tree.layer[n] ?? 0);
      out.set(layer, (out.get(layer) ?? 0) + bytes);
    }
    return out;
  }

  private wastedPaths(limit: number): WastedPath[] {
    const m = this.merger;
    const n = m.wBytes.length;
    const order = Array.from({ length: n }, (_, i) => i);
    const picked = selectTop(order, limit, (i) => m.wBytes.get(i));
    return picked.map((i) => {
      const flags = m.wFlags.get(i);
      const changed: WastedPath['changed'] = [];
      if (flags & W_MODE) changed.push('mode');
      if (flags & W_UID) changed.push('uid');
      if (flags & W_GID) changed.push('gid');
      return {
        path: m.tree.pathOf(m.wNode.get(i)),
        bytes: m.wBytes.get(i),
        reason: flags & W_OVERWRITTEN ? 'overwritten' : 'deleted',
        metadataOnly: (flags & W_METADATA_ONLY) !== 0,
        changed,
        layer: this.layerIndex(m.wWriter.get(i)),
        removedBy: this.layerIndex(m.wRemover.get(i)),
      };
    });
  }

  private largest(top: number, dirs: boolean): SizedPath[] {
    const tree = this.merger.tree;
    const candidates: number[] = [];
    for (let node = 1; node < tree.count; node++) {
      if (!tree.isAlive(node) || (tree.type[node] === T_DIR) !== dirs) continue;
      if ((this.cumBytes[node] ?? 0) > 0) candidates.push(node);
    }
    return selectTop(candidates, top, (node) => this.cumBytes[node] ?? 0).map((node) => {
      const row: SizedPath = {
        path: tree.pathOf(node),
        bytes: this.cumBytes[node] ?? 0,
        files: this.cumFiles[node] ?? 0,
      };
      if (!dirs) row.layer = this.layerIndex(tree.layer[node] ?? 0);
      return row;
    });
  }

  private unowned(top: number): SizedPath[] {
    const tree = this.merger.tree;
    const groups = new Map<number, { bytes: number; files: number }>();
    // The group of a file depends only on its directory: computed once per directory.
    const groupOfDir = new Map<number, number>();
    for (let node = 1; node < tree.count; node++) {
      const bytes = this.nodeBytes[node] ?? 0;
      if (bytes === 0 || (this.owner[node] ?? -1) >= 0 || !tree.isAlive(node)) continue;
      const parent = tree.parent[node] ?? 0;
      let group = groupOfDir.get(parent);
      if (group === undefined) {
        group = this.groupOf(parent);
        groupOfDir.set(parent, group);
      }
      const entry = groups.get(group) ?? { bytes: 0, files: 0 };
      entry.bytes += bytes;
      entry.files++;
      groups.set(group, entry);
    }
    return selectTop([...groups.keys()], top, (g) => groups.get(g)?.bytes ?? 0).map((g) => ({
      path: tree.pathOf(g),
      bytes: groups.get(g)?.bytes ?? 0,
      files: groups.get(g)?.files ?? 0,
    }));
  }

  /** The directory that groups unowned files of `dir`: depth 2, or 3 or 4 under DEEP(ER)_GROUPS. */
  private groupOf(dir: number): number {
    const tree = this.merger.tree;
    const chain: number[] = [];
    for (let n = dir; n !== 0; n = tree.parent[n] ?? 0) chain.push(n);
    chain.reverse(); // chain[0] is the top-level directory
    if (chain.length === 0) return 0;
    let depth = 2;
    if (chain.length >= 2) {
      const two = `${tree.nameOf(chain[0] ?? 0)}/${tree.nameOf(chain[1] ?? 0)}`;
      if (DEEP_GROUPS.has(two) || tree.nameOf(chain[0] ?? 0) === 'home') depth = 3;
      if (chain.length >= 3 && DEEPER_GROUPS.has(`${two}/${tree.nameOf(chain[2] ?? 0)}`)) depth = 4;
    }
    return chain[Math.min(depth, chain.length) - 1] ?? 0;
  }

  // ---- packages ----

  private attribute(issues: AnalysisIssue[]): { packages: PackageReport[]; databases: PackageDatabase[] } {
    const entries: PackageEntry[] = [];
    const databases: PackageDatabase[] = [];
    const tree = this.merger.tree;

    const status = this.readVisible('var/lib/dpkg/status', issues);
    if (status) {
      const stanzas = parseDpkgStatus(status.text).filter((s) => s.state === 'installed');
      for (const stanza of stanzas) {
        const list =
          (stanza.architecture
            ? this.readVisible(`var/lib/dpkg/info/${stanza.name}:${stanza.architecture}.list`, issues)
            : undefined) ?? this.readVisible(`var/lib/dpkg/info/${stanza.name}.list`, issues);
        entries.push(dpkgEntry(stanza, list ? parseFileList(list.text) : [], list?.node ?? status.node));
      }
      databases.push({
        manager: 'dpkg',
        path: 'var/lib/dpkg/status',
        readable: true,
        packages: stanzas.length,
      });
    }
    const statusDir = tree.resolve('var/lib/dpkg/status.d');
    if (statusDir >= 0 && tree.type[statusDir] === T_DIR) {
      const dirPath = tree.pathOf(statusDir);
      const names: string[] = [];
      tree.forEachChild(statusDir, (child) => {
        if (tree.isAlive(child) && tree.type[child] === T_FILE) names.push(tree.nameOf(child));
      });
      names.sort();
      let found = 0;
      for (const name of names) {
        if (name.endsWith('.md5sums')) continue;
        const stanzaFile = this.readVisible(`${dirPath}/${name}`, issues);
        if (!stanzaFile) continue;
        for (const stanza of parseDpkgStatus(stanzaFile.text)) {
          if (stanza.state !== null && stanza.state !== 'installed') continue;
          const sums = this.readVisible(`${dirPath}/${name}.md5sums`, issues);
          const list = this.readVisible(`var/lib/dpkg/info/${stanza.name}.list`, issues);
          const files = list ? parseFileList(list.text) : sums ? parseFileList(sums.text, true) : [];
          entries.push(dpkgEntry(stanza, files, stanzaFile.node));
          found++;
        }
      }
      databases.push({ manager: 'dpkg', path: `${dirPath}/`, readable: true, packages: found });
    }
    for (const path of ['lib/apk/db/installed', 'usr/lib/apk/db/installed']) {
      const db = this.readVisible(path, issues);
      if (!db) continue;
      const packages = parseApkInstalled(db.text);
      for (const pkg of packages) entries.push(apkEntry(pkg, db.node));
      databases.push({
        manager: 'apk',
        path: tree.pathOf(db.node),
        readable: true,
        packages: packages.length,
      });
      break;
    }
    for (const path of RPM_DATABASES) {
      const node = tree.resolve(path);
      if (node < 0 || tree.type[node] !== T_FILE) continue;
      databases.push({
        manager: 'rpm',
        path,
        readable: false,
        packages: 0,
        note: 'rpm databases (sqlite, Berkeley DB, ndb) are not read: their files count as unowned',
      });
      issues.push({
        code: 'package-database-unreadable',
        message: `the rpm database ${path} is not read; its packages' files are listed as unowned`,
        path,
      });
      break;
    }

    entries.forEach((entry, index) => {
      this.claim(entry, index);
    });
    return { packages: entries.map((e) => e.report), databases };
  }

  /** Counts the package's visible files (each file for the first package that lists it). */
  private claim(entry: PackageEntry, index: number): void {
    const tree = this.merger.tree;
    const report = entry.report;
    const byLayer = new Map<number, { bytes: number; files: number }>();
    for (const path of entry.files) {
      const node = tree.resolve(path);
      if (node < 0) {
        report.missingFiles++;
        continue;
      }
      if (tree.type[node] === T_DIR || (this.owner[node] ?? -1) >= 0) continue;
      // A directory listed where the image has a symlink to one (merged /usr: /bin): not a file.
      if (tree.type[node] === T_SYMLINK && tree.type[tree.resolve(path, true)] === T_DIR) continue;
      this.owner[node] = index;
      const bytes = this.nodeBytes[node] ?? 0;
      report.bytes += bytes;
      report.files++;
      const layer = tree.layer[node] ?? 0;
      const tally = byLayer.get(layer) ?? { bytes: 0, files: 0 };
      tally.bytes += bytes;
      tally.files++;
      byLayer.set(layer, tally);
    }
    let best = -1;
    let bestTally = { bytes: -1, files: -1 };
    for (const [layer, tally] of [...byLayer].sort((a, b) => a[0] - b[0])) {
      if (
        tally.bytes > bestTally.bytes ||
        (tally.bytes === bestTally.bytes && tally.files > bestTally.files)
      ) {
        best = layer;
        bestTally = tally;
      }
    }
    if (best < 0 && entry.source >= 0) best = tree.layer[entry.source] ?? -1;
    report.layer = best < 0 ? null : this.layerIndex(best);
  }

  /** The text of a database file, when the version we hold is the one visible at the end. */
  private readVisible(path: string, issues: AnalysisIssue[]): { text: string; node: number } | undefined {
    const tree = this.merger.tree;
    const node = tree.resolve(path);
    if (node < 0 || tree.type[node] !== T_FILE) return undefined;
    const real = tree.pathOf(node);
    const held = this.merger.contents.get(real);
    const visibleLayer = tree.layer[node] ?? 0;
    if (!held || held.layer !== this.layerIndex(visibleLayer)) {
      if (issues.length < 100)
        issues.push({
          code: 'package-database-stale',
          message: `the bytes of ${real} (layer ${this.layerIndex(visibleLayer)}) were not given to the analysis`,
          path: real,
          layer: this.layerIndex(visibleLayer),
        });
      return undefined;
    }
    return { text: held.data.toString('utf8'), node };
  }
}

function dpkgEntry(stanza: DpkgStanza, files: string[], source: number): PackageEntry {
  return {
    report: {
      name: stanza.name,
      manager: 'dpkg' as PackageManager,
      version: stanza.version,
      architecture: stanza.architecture,
      bytes: 0,
      files: 0,
      missingFiles: 0,
      layer: null,
      essential: stanza.essential,
      priority: stanza.priority,
      installedSize: stanza.installedSize,
    },
    files,
    source,
  };
}

function apkEntry(pkg: ApkPackage, source: number): PackageEntry {
  return {
    report: {
      name: pkg.name,
      manager: 'apk',
      version: pkg.version,
      architecture: pkg.architecture,
      bytes: 0,
      files: 0,
      missingFiles: 0,
      layer: null,
      essential: false,
      priority: null,
      installedSize: pkg.installedSize,
    },
    files: pkg.files,
    source,
  };
}

/** The `limit` items with the largest key, largest first (ties by the item's order). */
export function selectTop<T>(items: T[], limit: number, key: (item: T) => number): T[] {
  if (limit <= 0) return [];
  if (items.length <= limit || !Number.isFinite(limit)) {
    return items
      .map((item, i) => ({ item, i, k: key(item) }))
      .sort((a, b) => b.k - a.k || a.i - b.i)
      .map((x) => x.item);
  }
  // A small sorted window: cheap for the top tens over a million items.
  const window: { item: T; i: number; k: number }[] = [];
  items.forEach((item, i) => {
    const k = key(item);
    if (window.length === limit && k <= (window[window.length - 1]?.k ?? 0)) return;
    let at = window.length;
    while (at > 0 && (window[at - 1]?.k ?? 0) < k) at--;
    window.splice(at, 0, { item, i, k });
    if (window.length > limit) window.pop();
  });
  return window.map((x) => x.item);
}
