/**
 * Advice: each rule looks for one kind of dead weight in the analysis and, when it finds some,
 * names the bytes a fix would save and the paths, layers and packages that prove it. Rules may
 * overlap (a toolchain package's docs are also docs), so their bytes are not meant to be added up.
 */
import { W_GID, W_METADATA_ONLY, W_MODE, W_OVERWRITTEN, W_UID } from './merge.js';
import { isToolchainPackage } from './packages.js';
import type { ImageAnalysis } from './result.js';
import { T_DIR, T_FILE } from './tree.js';
import type { Evidence, Recommendation } from './types.js';

const MAX_EVIDENCE_PATHS = 10;

/** Executables whose presence in the command means the image builds things at run time. */
const BUILDERS = new Set([
  'make',
  'gmake',
  'cmake',
  'ninja',
  'meson',
  'gcc',
  'g++',
  'cc',
  'c++',
  'clang',
  'clang++',
  'rustc',
  'cargo',
  'go',
  'javac',
  'mvn',
  'gradle',
  'bazel',
  'configure',
  'dpkg-buildpackage',
  'debuild',
  'abuild',
]);

/** True when the command (Entrypoint + Cmd) runs a compiler or build tool. */
export function commandBuilds(command: readonly string[] | undefined): boolean {
  if (!command || command.length === 0) return false;
  const words = command.join(' ').split(/[\s;&|()'"`=]+/);
  return words.some((word) => BUILDERS.has(word.slice(word.lastIndexOf('/') + 1)));
}

/** Package manager caches: build-time only, never needed to run. */
const CACHES: { name: string; paths: string[] }[] = [
  { name: 'pip', paths: ['root/.cache/pip', 'home/*/.cache/pip'] },
  { name: 'npm', paths: ['root/.npm', 'home/*/.npm'] },
  { name: 'yarn', paths: ['usr/local/share/.cache/yarn', 'root/.cache/yarn', 'home/*/.cache/yarn'] },
  { name: 'pnpm', paths: ['root/.local/share/pnpm/store', 'root/.cache/pnpm'] },
  {
    name: 'cargo registry',
    paths: [
      'usr/local/cargo/registry',
      'usr/local/cargo/git',
      'root/.cargo/registry',
      'root/.cargo/git',
      'home/*/.cargo/registry',
      'home/*/.cargo/git',
    ],
  },
  { name: 'go build cache', paths: ['root/.cache/go-build', 'home/*/.cache/go-build'] },
  { name: 'go module cache', paths: ['go/pkg/mod', 'root/go/pkg/mod', 'home/*/go/pkg/mod'] },
  { name: 'apk cache', paths: ['var/cache/apk'] },
  { name: 'dnf/yum cache', paths: ['var/cache/dnf', 'var/cache/yum'] },
  { name: 'composer cache', paths: ['root/.composer/cache', 'root/.cache/composer'] },
  { name: 'maven repository', paths: ['root/.m2/repository'] },
  { name: 'gradle cache', paths: ['root/.gradle/caches'] },
];

/** Toolchain directories outside the package manager (their caches are the CACHES rule's). */
const TOOLCHAIN_DIRS = ['usr/local/rustup', 'root/.rustup', 'usr/local/cargo', 'root/.cargo', 'usr/local/go'];
const TOOLCHAIN_DIR_EXCLUDES = [
  'usr/local/cargo/registry',
  'usr/local/cargo/git',
  'root/.cargo/registry',
  'root/.cargo/git',
];

const DEFAULT_KEEP_LOCALES = ['C', 'C.UTF-8', 'C.utf8', 'en', 'en_US', 'en_US.UTF-8', 'en_GB'];

export function buildRecommendations(analysis: ImageAnalysis): Recommendation[] {
  const out: Recommendation[] = [];
  for (const rule of [aptCache, wasteRules, toolchain, caches, docs]) {
    for (const rec of rule(analysis)) if (rec.bytes > 0) out.push(rec);
  }
  return out.sort((a, b) => b.bytes - a.bytes);
}

// ---- helpers ----

function layerEvidence(analysis: ImageAnalysis, byLayer: Map<number, number>): Evidence[] {
  return [...byLayer]
    .sort((a, b) => b[1] - a[1] || a[0] - b[0])
    .map(([position, bytes]) => ({
      layer: analysis.layerIndex(position),
      createdBy: analysis.merger.layers[position]?.meta.createdBy ?? '',
      bytes,
    }));
}

function mergeInto(target: Map<number, number>, source: Map<number, number>): void {
  for (const [key, value] of source) target.set(key, (target.get(key) ?? 0) + value);
}

function sum(map: Map<number, number>): number {
  let total = 0;
  for (const value of map.values()) total += value;
  return total;
}

/** Expands `home/*` patterns over the final filesystem's directories. */
function expand(analysis: ImageAnalysis, pattern: string): string[] {
  const star = pattern.indexOf('*');
  if (star < 0) return [pattern];
  const base = pattern.slice(0, star).replace(/\/$/, '');
  const rest = pattern.slice(star + 1);
  const tree = analysis.merger.tree;
  const node = tree.resolve(base);
  if (node < 0 || tree.type[node] !== T_DIR) return [];
  const out: string[] = [];
  tree.forEachChild(node, (child) => {
    if (tree.isAlive(child) && tree.type[child] === T_DIR) out.push(`${base}/${tree.nameOf(child)}${rest}`);
  });
  return out.sort();
}

/** Visible bytes under `path` by layer, without package-owned files and excluded subtrees. */
function unownedUnder(analysis: ImageAnalysis, path: string, excludes: string[] = []): Map<number, number> {
  const node = analysis.resolve(path);
  if (node < 0) return new Map();
  const excluded = new Set(excludes.map((p) => analysis.resolve(p)).filter((n) => n >= 0));
  return analysis.bytesByLayer(node, (n) => (analysis.owner[n] ?? -1) >= 0 || excluded.has(n));
}

// ---- rules ----

function aptCache(analysis: ImageAnalysis): Recommendation[] {
  const evidence: Evidence[] = [];
  const byLayer = new Map<number, number>();
  for (const path of ['var/cache/apt', 'var/lib/apt/lists']) {
    const node = analysis.resolve(path);
    if (node < 0) continue;
    const layers = analysis.bytesByLayer(node);
    const bytes = sum(layers);
    if (bytes === 0) continue;
    evidence.push({ path, bytes });
    mergeInto(byLayer, layers);
  }
  const bytes = sum(byLayer);
  return [
    {
      id: 'apt-cache',
      title: 'Clean the apt cache and lists in the same RUN that installs',
      bytes,
      detail:
        'End the RUN that calls apt-get install with `&& apt-get clean && rm -rf /var/lib/apt/lists/*`. ' +
        'Deleting them in a later layer saves nothing: the bytes stay in the layer that wrote them.',
      evidence: [...evidence, ...layerEvidence(analysis, byLayer)],
    },
  ];
}

function wasteRules(analysis: ImageAnalysis): Recommendation[] {
  const m = analysis.merger;
  const tree = m.tree;
  type Tally = { bytes: number; pairs: Map<string, number>; top: number[] };
  const deleted: Tally = { bytes: 0, pairs: new Map(), top: [] };
  const chmod: Tally = { bytes: 0, pairs: new Map(), top: [] };
  const rewritten: Tally = { bytes: 0, pairs: new Map(), top: [] };
  for (let i = 0; i < m.wBytes.length; i++) {
    const writer = m.wWriter.get(i);
    const remover = m.wRemover.get(i);
    if (writer >= remover) continue;
    const flags = m.wFlags.get(i);
    let tally = deleted;
    if (flags & W_OVERWRITTEN) {
      const metadata = (flags & W_METADATA_ONLY) !== 0 && (flags & (W_MODE | W_UID | W_GID)) !== 0;
      tally = metadata ? chmod : rewritten;
    }
    const bytes = m.wBytes.get(i);
    tally.bytes += bytes;
    const key = `${writer}:${remover}`;
    tally.pairs.set(key, (tally.pairs.get(key) ?? 0) + bytes);
    keepTop(tally.top, i, (j) => m.wBytes.get(j));
  }
  const evidence = (tally: Tally): Evidence[] => {
    const pairs: Evidence[] = [...tally.pairs]
      .sort((a, b) => b[1] - a[1])
      .map(([key, bytes]) => {
        const [writer = 0, remover = 0] = key.split(':').map(Number);
        return {
          layer: analysis.layerIndex(writer),
          createdBy: m.layers[writer]?.meta.createdBy ?? '',
          bytes,
          note: `written by layer ${analysis.layerIndex(writer)}, removed by layer ${analysis.layerIndex(remover)}: ${m.layers[remover]?.meta.createdBy ?? ''}`,
        };
      });
    const paths: Evidence[] = tally.top.map((i) => ({
      path: tree.pathOf(m.wNode.get(i)),
      layer: analysis.layerIndex(m.wWriter.get(i)),
      bytes: m.wBytes.get(i),
    }));
    return [...pairs, ...paths];
  };
  return [
    {
      id: 'deleted-later',
      title: 'Delete files in the same RUN that creates them',
      bytes: deleted.bytes,
      detail:
        'These files are written by one layer and deleted by a later one, so they still weigh in the ' +
        'image. Create and remove them in one RUN, or build them in another stage and COPY only the result.',
      evidence: evidence(deleted),
    },
    {
      id: 'metadata-copy',
      title: 'Set mode and owner where the file is written, not in a later layer',
      bytes: chmod.bytes,
      detail:
        'A chmod or chown in a later layer copies each whole file again. Use COPY --chmod/--chown, or ' +
        'change mode and owner in the RUN that creates the files. (Same size and a different mode, uid or ' +
        'gid: tar headers carry no checksum, so an unchanged content is presumed.)',
      evidence: evidence(chmod),
    },
    {
      id: 'rewritten-later',
      title: 'Files written again by a later layer',
      bytes: rewritten.bytes,
      detail:
        'A later layer writes these paths again (a package upgrade, a second COPY), so the first copy is ' +
        'dead weight. Upgrade or generate them where they are first written, or in the base image.',
      evidence: evidence(rewritten),
    },
  ];
}

function keepTop(top: number[], item: number, key: (i: number) => number): void {
  const k = key(item);
  if (top.length === MAX_EVIDENCE_PATHS && k <= key(top[top.length - 1] ?? 0)) return;
  let at = top.length;
  while (at > 0 && key(top[at - 1] ?? 0) < k) at--;
  top.splice(at, 0, item);
  if (top.length > MAX_EVIDENCE_PATHS) top.pop();
}

function toolchain(analysis: ImageAnalysis): Recommendation[] {
  const command = analysis.options.command;
  if (commandBuilds(command)) return [];
  const evidence: Evidence[] = [];
  let bytes = 0;
  const packages = analysis.report.packages
    .filter((p) => p.bytes > 0 && isToolchainPackage(p.manager, p.name))
    .sort((a, b) => b.bytes - a.bytes);
  for (const pkg of packages) {
    bytes += pkg.bytes;
    if (evidence.length < 25) {
      const item: Evidence = { package: pkg.name, bytes: pkg.bytes };
      if (pkg.layer !== null) item.layer = pkg.layer;
      evidence.push(item);
    }
  }
  if (packages.length > 25) {
    evidence.push({
      bytes: packages.slice(25).reduce((total, p) => total + p.bytes, 0),
      note: `and ${packages.length - 25} more packages`,
    });
  }
  for (const path of TOOLCHAIN_DIRS) {
    const dirBytes = sum(unownedUnder(analysis, path, TOOLCHAIN_DIR_EXCLUDES));
    if (dirBytes === 0) continue;
    bytes += dirBytes;
    evidence.push({ path, bytes: dirBytes });
  }
  const cmd = command && command.length > 0 ? JSON.stringify(command) : 'none';
  return [
    {
      id: 'build-toolchain',
      title: 'Build in a separate stage: the image ships a toolchain its command does not use',
      bytes,
      detail:
        `Compilers, -dev packages and toolchains are needed to build, not to run (the command is ${cmd}). ` +
        'Use a multi-stage build and COPY --from the build stage only what the program needs. ' +
        'Libraries that runtime tools also depend on are not counted.',
      evidence,
    },
  ];
}

function caches(analysis: ImageAnalysis): Recommendation[] {
  const evidence: Evidence[] = [];
  let bytes = 0;
  for (const cache of CACHES) {
    for (const pattern of cache.paths) {
      for (const path of expand(analysis, pattern)) {
        const layers = unownedUnder(analysis, path);
        const found = sum(layers);
        if (found === 0) continue;
        bytes += found;
        const top = [...layers].sort((a, b) => b[1] - a[1])[0];
        const item: Evidence = { path, bytes: found, note: cache.name };
        if (top) item.layer = analysis.layerIndex(top[0]);
        evidence.push(item);
      }
    }
  }
  return [
    {
      id: 'package-caches',
      title: 'Do not keep package manager caches in the image',
      bytes,
      detail:
        'Use pip --no-cache-dir, npm cache clean --force (or npm ci in a build stage), yarn cache clean, ' +
        'apk add --no-cache, or a BuildKit cache mount (RUN --mount=type=cache,...), in the RUN that fills them.',
      evidence,
    },
  ];
}

function docs(analysis: ImageAnalysis): Recommendation[] {
  const tree = analysis.merger.tree;
  const keep = new Set(analysis.options.keepLocales ?? DEFAULT_KEEP_LOCALES);
  const evidence: Evidence[] = [];
  let bytes = 0;
  const docNode = analysis.resolve('usr/share/doc');
  if (docNode >= 0) {
    // Debian's copyright files are licence notices: they stay.
    let kept = 0;
    tree.forEachChild(docNode, (pkg) => {
      if (!tree.isAlive(pkg) || tree.type[pkg] !== T_DIR) return;
      const id = tree.names.find('copyright');
      const file = id < 0 ? -1 : tree.child(pkg, id);
      if (file >= 0 && tree.isAlive(file) && tree.type[file] === T_FILE)
        kept += analysis.nodeBytes[file] ?? 0;
    });
    const found = (analysis.cumBytes[docNode] ?? 0) - kept;
    if (found > 0) {
      bytes += found;
      evidence.push({
        path: 'usr/share/doc',
        bytes: found,
        note: kept > 0 ? 'copyright files kept' : undefined,
      });
    }
  }
  for (const path of ['usr/share/man', 'usr/share/info']) {
    const found = analysis.bytesAt(path);
    if (found === 0) continue;
    bytes += found;
    evidence.push({ path, bytes: found });
  }
  const locale = analysis.resolve('usr/share/locale');
  if (locale >= 0 && tree.type[locale] === T_DIR) {
    let found = 0;
    tree.forEachChild(locale, (child) => {
      if (!tree.isAlive(child) || tree.type[child] !== T_DIR || keep.has(tree.nameOf(child))) return;
      found += analysis.cumBytes[child] ?? 0;
    });
    if (found > 0) {
      bytes += found;
      evidence.push({ path: 'usr/share/locale', bytes: found, note: `all but ${[...keep].join(', ')}` });
    }
  }
  for (const item of evidence) if (item.note === undefined) delete item.note;
  return [
    {
      id: 'docs-locales',
      title: 'Leave out documentation and locales',
      bytes,
      detail:
        'Exclude them when packages are installed, so that later installs do not bring them back: with dpkg, ' +
        'path-exclude lines in /etc/dpkg/dpkg.cfg.d/ (keeping usr/share/doc/*/copyright); with apk, do not ' +
        'install the -doc packages. Deleting them in a later layer saves nothing.',
      evidence,
    },
  ];
}
