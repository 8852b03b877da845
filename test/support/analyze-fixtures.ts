/**
 * Real images for the `ballast analyze` tests, built once per checkout under .cache/fixtures/analyze-v1
 * on top of the Debian bookworm minbase image of debianFixture(). Each group is built in a temp folder
 * and renamed into place under a lock, so parallel test processes build it once. Bump ANALYZE_VERSION
 * when a recipe changes.
 *
 * - toolchainFixture(): `apt-get install gcc libc6-dev make` with the apt cache and lists left in the
 *   layer, and a command that does not build. About 2 minutes on the vfs driver.
 * - deleteLaterFixture(): COPY a 5 MB file, then delete it; COPY a file, then chmod it; COPY a file,
 *   then COPY another over it. Every byte of it is known from the Dockerfile.
 * - badLayouts(): hand-written OCI layouts (no daemon): a truncated gzip layer, a corrupt gzip layer,
 *   a layer with `..` entries; and a docker-archive with a truncated layer.tar.
 *
 * Each daemon-built fixture keeps the `docker save` archive and an OCI layout copy made by skopeo
 * (gzip layers), so the tests can read one image from docker-archive:, oci:, docker-daemon: and a
 * registry.
 */
import { createHash } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ballast, type CliResult } from './cli.js';
import { CACHE_DIR, type DockerDaemon, startDocker } from './docker.js';
import { cachedFixture, debianFixture, pseudoRandom, run } from './fixtures.js';
import { type WriterEntry, writeTar } from './tar-writer.js';

export const ANALYZE_VERSION = 1;
export const ANALYZE_FIXTURES_DIR = join(CACHE_DIR, 'fixtures', `analyze-v${ANALYZE_VERSION}`);

export interface BuiltImage {
  /** The daemon's name for it. */
  name: string;
  id: string;
  diffIds: string[];
  /** `docker save` (legacy layout, uncompressed layer.tar files). */
  archive: string;
  archiveRef: string;
  /** An OCI layout copy (skopeo, gzip layers) and `oci:DIR:TAG`. */
  ociDir: string;
  ociRef: string;
  /** Seconds the build took (docker build, save, skopeo copy). */
  buildSeconds: number;
}

export const TOOLCHAIN_IMAGE = 'local/ballast-analyze-toolchain:1';
export const DELETE_LATER_IMAGE = 'local/ballast-analyze-delete-later:1';
export const TOOLCHAIN_CMD = ['/app/run.sh'];
export const TOOLCHAIN_PACKAGES = ['gcc', 'libc6-dev', 'make'];

export interface DeleteLaterFixture extends BuiltImage {
  /** Layer indices (0 = the Debian base) and the files, as the Dockerfile writes them. */
  big: { path: string; size: number; addedBy: number; deletedBy: number };
  chmodded: { path: string; size: number; addedBy: number; chmodBy: number; mode: number };
  rewritten: { path: string; oldSize: number; newSize: number; addedBy: number; rewrittenBy: number };
  layerCount: number;
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

function cachedGroup<T>(name: string, build: (dir: string) => Promise<T>): Promise<{ dir: string; meta: T }> {
  // The toolchain build alone may take minutes on a busy machine: wait long for another builder.
  return cachedFixture(ANALYZE_FIXTURES_DIR, name, build, 30 * 60_000);
}

/** Makes sure the daemon holds the Debian base (its data root may have been wiped since it was cached). */
async function ensureBase(daemon: DockerDaemon): Promise<string> {
  const debian = await debianFixture();
  const id = await daemon
    .docker(['image', 'inspect', '--format', '{{.Id}}', debian.image.name])
    .catch(() => '');
  if (id.trim() !== debian.image.id) await daemon.docker(['load', '-q', '-i', debian.archive.path]);
  return debian.image.name;
}

/** docker build in `context`, then save and copy to an OCI layout; paths in the result are absolute. */
async function buildImage(
  daemon: DockerDaemon,
  dir: string,
  name: string,
  dockerfile: string[],
  files: Record<string, Buffer | string> = {},
): Promise<Omit<BuiltImage, 'archive' | 'archiveRef' | 'ociDir' | 'ociRef'>> {
  const started = Date.now();
  const context = join(dir, 'context');
  await mkdir(context, { recursive: true });
  for (const [path, data] of Object.entries(files)) await writeFile(join(context, path), data);
  await writeFile(join(context, 'Dockerfile'), `${dockerfile.join('\n')}\n`);
  // Apt reaches the Debian mirror through the host's network; a transient mirror error gets one retry.
  for (let attempt = 1; ; attempt++) {
    try {
      await daemon.docker(['build', '--network=host', '-q', '-t', name, context], {
        env: { DOCKER_BUILDKIT: '0' },
      });
      break;
    } catch (error) {
      if (attempt >= 2) throw error;
      await sleep(5000);
    }
  }
  await rm(context, { recursive: true, force: true });
  await daemon.docker(['save', '-o', join(dir, 'image.tar'), name]);
  const tag = name.slice(name.lastIndexOf(':') + 1);
  await run('skopeo', [
    'copy',
    '--insecure-policy',
    '--quiet',
    `docker-archive:${join(dir, 'image.tar')}`,
    `oci:${join(dir, 'layout')}:${tag}`,
  ]);
  const [info] = JSON.parse(await daemon.docker(['image', 'inspect', name])) as {
    Id: string;
    RootFS: { Layers: string[] };
  }[];
  return {
    name,
    id: info!.Id,
    diffIds: info!.RootFS.Layers,
    buildSeconds: Math.round((Date.now() - started) / 100) / 10,
  };
}

function located<T extends Omit<BuiltImage, 'archive' | 'archiveRef' | 'ociDir' | 'ociRef'>>(
  dir: string,
  meta: T,
): T & BuiltImage {
  const tag = meta.name.slice(meta.name.lastIndexOf(':') + 1);
  const archive = join(dir, 'image.tar');
  const ociDir = join(dir, 'layout');
  return {
    ...meta,
    archive,
    archiveRef: `docker-archive:${archive}`,
    ociDir,
    ociRef: `oci:${ociDir}:${tag}`,
  };
}

let toolchainPromise: Promise<BuiltImage> | undefined;

/** The Debian base plus one `apt-get install gcc libc6-dev make` layer that keeps the apt cache and lists. */
export function toolchainFixture(): Promise<BuiltImage> {
  toolchainPromise ??= cachedGroup('toolchain', async (dir) => {
    const daemon = await startDocker();
    try {
      const base = await ensureBase(daemon);
      return await buildImage(daemon, dir, TOOLCHAIN_IMAGE, [
        `FROM ${base}`,
        // No apt-get clean, no rm -rf /var/lib/apt/lists: the dead weight the advice must find.
        `RUN apt-get update && apt-get install -y --no-install-recommends ${TOOLCHAIN_PACKAGES.join(' ')}`,
        `CMD ${JSON.stringify(TOOLCHAIN_CMD)}`,
      ]);
    } finally {
      await daemon.release();
    }
  })
    .then(({ dir, meta }) => located(dir, meta))
    .catch((error: unknown) => {
      toolchainPromise = undefined;
      throw error;
    });
  return toolchainPromise;
}

const BIG = { path: '/opt/big.bin', size: 5_000_000 };
const CHMODDED = { path: '/usr/local/bin/tool', size: 300_000, mode: 0o755 };
const REWRITTEN = { path: '/etc/app.conf', oldSize: 120_000, newSize: 7_000 };

let deleteLaterPromise: Promise<DeleteLaterFixture> | undefined;

/**
 * Layers: 0 the Debian base; 1 COPY big.bin; 2 COPY tool (mode 0644); 3 COPY app.conf; 4 RUN rm big.bin;
 * 5 RUN chmod 755 tool; 6 COPY app-v2.conf over app.conf. CMD adds no layer.
 */
export function deleteLaterFixture(): Promise<DeleteLaterFixture> {
  deleteLaterPromise ??= cachedGroup('delete-later', async (dir) => {
    const daemon = await startDocker();
    try {
      const base = await ensureBase(daemon);
      const built = await buildImage(
        daemon,
        dir,
        DELETE_LATER_IMAGE,
        [
          `FROM ${base}`,
          `COPY big.bin ${BIG.path}`,
          `COPY tool ${CHMODDED.path}`,
          `COPY app.conf ${REWRITTEN.path}`,
          `RUN rm ${BIG.path}`,
          `RUN chmod ${CHMODDED.mode.toString(8)} ${CHMODDED.path}`,
          `COPY app-v2.conf ${REWRITTEN.path}`,
          'CMD ["/bin/sh"]',
        ],
        {
          'big.bin': pseudoRandom('analyze-big', BIG.size),
          tool: pseudoRandom('analyze-tool', CHMODDED.size),
          'app.conf': pseudoRandom('analyze-conf-1', REWRITTEN.oldSize),
          'app-v2.conf': pseudoRandom('analyze-conf-2', REWRITTEN.newSize),
        },
      );
      return {
        ...built,
        big: { ...BIG, addedBy: 1, deletedBy: 4 },
        chmodded: { ...CHMODDED, addedBy: 2, chmodBy: 5 },
        rewritten: { ...REWRITTEN, addedBy: 3, rewrittenBy: 6 },
        layerCount: 7,
      };
    } finally {
      await daemon.release();
    }
  })
    .then(({ dir, meta }) => located(dir, meta))
    .catch((error: unknown) => {
      deleteLaterPromise = undefined;
      throw error;
    });
  return deleteLaterPromise;
}

/** Loads the fixture's archive into the daemon unless it already holds the image with that ID. */
export async function ensureInDaemon(daemon: DockerDaemon, image: BuiltImage): Promise<void> {
  const id = await daemon.docker(['image', 'inspect', '--format', '{{.Id}}', image.name]).catch(() => '');
  if (id.trim() !== image.id) {
    await ensureBase(daemon);
    await daemon.docker(['load', '-q', '-i', image.archive]);
  }
}

// ---------------------------------------------------------------------------------------------
// Hand-written bad inputs (node only)

const sha256 = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

async function putBlob(layout: string, bytes: Buffer): Promise<{ digest: string; size: number }> {
  const digest = sha256(bytes);
  await mkdir(join(layout, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(layout, 'blobs', 'sha256', digest.slice(7)), bytes);
  return { digest, size: bytes.length };
}

/**
 * An OCI layout of one image whose layer blobs are given as stored bytes (already compressed or not);
 * `diffIds` are the uncompressed digests to write in the config. Digests match the stored bytes, so a
 * reader gets past verification and meets the damage inside.
 */
export async function writeLayout(
  layout: string,
  tag: string,
  layers: { blob: Buffer; diffId: string; mediaType: string; createdBy: string }[],
): Promise<string> {
  const descriptors = [];
  for (const layer of layers)
    descriptors.push({ mediaType: layer.mediaType, ...(await putBlob(layout, layer.blob)) });
  const config = await putBlob(
    layout,
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: { Cmd: ['/bin/sh'] },
        rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
        history: layers.map((l) => ({ created: '2024-01-01T00:00:00Z', created_by: l.createdBy })),
      }),
    ),
  );
  const manifest = await putBlob(
    layout,
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: descriptors,
      }),
    ),
  );
  await writeFile(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...manifest,
          annotations: { 'org.opencontainers.image.ref.name': tag },
        },
      ],
    }),
  );
  return `oci:${layout}:${tag}`;
}

export interface BadInputs {
  /** Layer 1 is a gzip stream cut in the middle of a file body (its blob digest is right). */
  truncatedGzip: { reference: string; layer: number; digest: string };
  /** Layer 1's gzip stream has bytes flipped inside the deflate data. */
  corruptGzip: { reference: string; layer: number; digest: string };
  /** A legacy docker-archive whose second layer.tar ends in the middle of a file body. */
  truncatedArchive: { reference: string; layer: number };
  /** Layer 1 holds entries whose paths climb out of the root with `..`, and a good file. */
  escaping: {
    reference: string;
    layer: number;
    /** Entries whose own path climbs out (`path-escapes`). */
    escapingPaths: string[];
    /** A hard link whose target climbs out (`link-escapes`). */
    escapingLink: { path: string; target: string };
    /** A symlink pointing out of the root, and a 700-byte file written "below" it. */
    symlink: { path: string; target: string; below: string; belowSize: number };
    goodPath: string;
    goodSize: number;
  };
}

const GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';

function baseLayer(): Buffer {
  const entries: WriterEntry[] = [
    { path: 'etc/', type: 'dir' },
    { path: 'etc/os-release', body: 'ID=test\n' },
    { path: 'usr/', type: 'dir' },
    { path: 'usr/bin/', type: 'dir' },
    { path: 'usr/bin/tool', body: pseudoRandom('bad-base', 20_000), mode: 0o755 },
  ];
  return writeTar(entries);
}

function bigLayer(): Buffer {
  return writeTar([
    { path: 'opt/', type: 'dir' },
    { path: 'opt/data.bin', body: pseudoRandom('bad-big', 400_000) },
    { path: 'opt/tail.txt', body: 'the end\n' },
  ]);
}

let badPromise: Promise<BadInputs> | undefined;

export function badInputs(): Promise<BadInputs> {
  badPromise ??= cachedGroup('bad-inputs', async (dir) => {
    const base = baseLayer();
    const big = bigLayer();
    const baseGz = gzipSync(base);
    const bigGz = gzipSync(big);
    const layer = (tar: Buffer, blob: Buffer, createdBy: string) => ({
      blob,
      diffId: sha256(tar),
      mediaType: GZIP,
      createdBy,
    });

    const cut = bigGz.subarray(0, Math.floor(bigGz.length / 2));
    await writeLayout(join(dir, 'truncated'), 'bad', [layer(base, baseGz, 'base'), layer(big, cut, 'cut')]);

    const flipped = Buffer.from(bigGz);
    // Well inside the deflate data, past the 10-byte gzip header: the inflater or the CRC must object.
    for (let i = 0; i < 64; i++) flipped[Math.floor(flipped.length / 3) + i]! ^= 0x5a;
    await writeLayout(join(dir, 'corrupt'), 'bad', [
      layer(base, baseGz, 'base'),
      layer(big, flipped, 'flipped'),
    ]);

    const escapingPaths = ['../../../etc/evil', 'opt/../../outside.txt'];
    const goodSize = 1234;
    const escTar = writeTar([
      { path: 'opt/', type: 'dir' },
      { path: escapingPaths[0]!, body: pseudoRandom('esc-1', 3000) },
      { path: escapingPaths[1]!, body: pseudoRandom('esc-2', 5000) },
      { path: 'opt/good.txt', body: pseudoRandom('esc-good', goodSize) },
      // A hard link to a file outside the root, and a symlink out of it with an entry "below" it:
      // an extractor that followed the link would write outside.
      { path: 'opt/shadow', type: 'hardlink', linkname: '../../etc/shadow' },
      { path: 'opt/up', type: 'symlink', linkname: '../../../../tmp' },
      { path: 'opt/up/evil.txt', body: pseudoRandom('esc-3', 700) },
    ]);
    await writeLayout(join(dir, 'escaping'), 'bad', [
      layer(base, baseGz, 'base'),
      layer(escTar, gzipSync(escTar), 'escape'),
    ]);

    // A legacy `docker save` layout: manifest.json, config, <id>/layer.tar; the second one cut short.
    const cutTar = big.subarray(0, 512 + 100_000);
    const config = Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: { Cmd: ['/bin/sh'] },
        rootfs: { type: 'layers', diff_ids: [sha256(base), sha256(big)] },
        history: [{ created_by: 'base' }, { created_by: 'cut' }],
      }),
    );
    const configName = `${sha256(config).slice(7)}.json`;
    const archive = writeTar([
      { path: configName, body: config },
      { path: 'aaaa/', type: 'dir' },
      { path: 'aaaa/layer.tar', body: base },
      { path: 'bbbb/', type: 'dir' },
      { path: 'bbbb/layer.tar', body: cutTar },
      {
        path: 'manifest.json',
        body: JSON.stringify([
          { Config: configName, RepoTags: ['local/bad:1'], Layers: ['aaaa/layer.tar', 'bbbb/layer.tar'] },
        ]),
      },
    ]);
    await writeFile(join(dir, 'truncated-layer.tar'), archive);
    return {
      bigDigest: sha256(cut),
      corruptDigest: sha256(flipped),
      escapingPaths,
      goodSize,
    };
  })
    .then(({ dir, meta }) => ({
      truncatedGzip: { reference: `oci:${join(dir, 'truncated')}:bad`, layer: 1, digest: meta.bigDigest },
      corruptGzip: { reference: `oci:${join(dir, 'corrupt')}:bad`, layer: 1, digest: meta.corruptDigest },
      truncatedArchive: { reference: `docker-archive:${join(dir, 'truncated-layer.tar')}`, layer: 1 },
      escaping: {
        reference: `oci:${join(dir, 'escaping')}:bad`,
        layer: 1,
        escapingPaths: meta.escapingPaths,
        escapingLink: { path: 'opt/shadow', target: '../../etc/shadow' },
        symlink: { path: 'opt/up', target: '../../../../tmp', below: 'opt/up/evil.txt', belowSize: 700 },
        goodPath: 'opt/good.txt',
        goodSize: meta.goodSize,
      },
    }))
    .catch((error: unknown) => {
      badPromise = undefined;
      throw error;
    });
  return badPromise;
}

// ---------------------------------------------------------------------------------------------
// Oracles: what the image itself says, from a container of it (`docker run --network none`)

/** One regular file listed in a dpkg `.list`, as `stat` sees it inside the container. */
export interface ListedFile {
  pkg: string;
  inode: string;
  links: number;
  size: number;
  path: string;
}

export interface ImageOracle {
  /** Regular files of every installed package's list, packages in /var/lib/dpkg/status order. */
  listed: ListedFile[];
  /** `dpkg-query -W -f '${Package} ${Essential} ${Priority}'`. */
  query: Map<string, { essential: boolean; priority: string }>;
  /** Regular files below each directory: `find DIR -type f` with inode, link count and size. */
  trees: Map<string, { inode: string; links: number; size: number; path: string }[]>;
}

/**
 * The status stanzas of installed packages in file order (awk paragraph mode), their list file
 * (`<pkg>:<arch>.list`, else `<pkg>.list`), and `stat` of every listed path: `%F` says whether the
 * path (directories resolved, the last component not followed) is a regular file.
 */
const ORACLE_SCRIPT = `
set -e
echo '#dpkg'
awk 'BEGIN { RS = ""; FS = "\\n" }
  { p = ""; a = ""; s = ""
    for (i = 1; i <= NF; i++) {
      if ($i ~ /^Package: /) p = substr($i, 10)
      else if ($i ~ /^Architecture: /) a = substr($i, 15)
      else if ($i ~ /^Status: /) s = substr($i, 9)
    }
    if (s ~ / installed$/) print p, a }' /var/lib/dpkg/status |
while read -r p a; do
  l=/var/lib/dpkg/info/$p:$a.list
  [ -f "$l" ] || l=/var/lib/dpkg/info/$p.list
  [ -f "$l" ] || continue
  tr '\\n' '\\0' < "$l" | xargs -0 stat -c "$p|%F|%d:%i|%h|%s|%n" 2>/dev/null || true
done
echo '#query'
dpkg-query -W -f '\${Package} \${Essential} \${Priority}\\n'
for d in "$@"; do
  echo "#tree $d"
  [ -d "$d" ] && find "$d" -type f -printf '%D:%i|%n|%s|%p\\n'
done
echo '#end'
`;

export async function imageOracle(
  daemon: DockerDaemon,
  image: string,
  trees: string[],
): Promise<ImageOracle> {
  const out = await daemon.docker([
    'run',
    '--rm',
    '--network',
    'none',
    '--entrypoint',
    '/bin/sh',
    image,
    '-c',
    ORACLE_SCRIPT,
    'oracle',
    ...trees,
  ]);
  const oracle: ImageOracle = { listed: [], query: new Map(), trees: new Map() };
  let section = '';
  let tree: { inode: string; links: number; size: number; path: string }[] = [];
  for (const line of out.split('\n')) {
    if (line.startsWith('#')) {
      section = line.split(' ')[0]!;
      if (section === '#tree') {
        tree = [];
        oracle.trees.set(line.slice(6), tree);
      }
      continue;
    }
    if (line === '') continue;
    if (section === '#dpkg') {
      const [pkg, type, inode, links, size, ...path] = line.split('|');
      if (type !== 'regular file' && type !== 'regular empty file') continue;
      oracle.listed.push({
        pkg: pkg!,
        inode: inode!,
        links: Number(links),
        size: Number(size),
        path: path.join('|'),
      });
    } else if (section === '#query') {
      const [name, essential, priority] = line.split(' ');
      oracle.query.set(name!, { essential: essential === 'yes', priority: priority ?? '' });
    } else if (section === '#tree') {
      const [inode, links, size, ...path] = line.split('|');
      tree.push({ inode: inode!, links: Number(links), size: Number(size), path: path.join('|') });
    }
  }
  if (section !== '#end') throw new Error(`the oracle script stopped early:\n${out.slice(-2000)}`);
  return oracle;
}

/**
 * Bytes per package by ballast's rule (docs/analyze.md): a file counts for the first package that
 * lists it, in status order; a physical file (inode) counts once, however many listed paths reach it.
 * `hardlinked` names packages with a file of several hard links: the tar stores one of its paths as
 * the regular file and the others as links (0 bytes), so which path carries the bytes depends on the
 * archive's order, and such packages are compared separately.
 */
export function oraclePackageBytes(oracle: ImageOracle): {
  bytes: Map<string, number>;
  shared: Set<string>;
  hardlinked: Set<string>;
  sharedFiles: number;
} {
  const owner = new Map<string, string>();
  const bytes = new Map<string, number>();
  const shared = new Set<string>();
  const hardlinked = new Set<string>();
  let sharedFiles = 0;
  for (const file of oracle.listed) {
    if (!bytes.has(file.pkg)) bytes.set(file.pkg, 0);
    if (file.links > 1) hardlinked.add(file.pkg);
    const first = owner.get(file.inode);
    if (first === undefined) {
      owner.set(file.inode, file.pkg);
      bytes.set(file.pkg, bytes.get(file.pkg)! + file.size);
    } else if (first !== file.pkg) {
      sharedFiles++;
      shared.add(first);
      shared.add(file.pkg);
    }
  }
  return { bytes, shared, hardlinked, sharedFiles };
}

/** Visible bytes below a directory as `find -type f` shows them, each inode once. */
export function treeBytes(oracle: ImageOracle, dir: string): number {
  const seen = new Set<string>();
  let sum = 0;
  for (const file of oracle.trees.get(dir) ?? []) {
    if (seen.has(file.inode)) continue;
    seen.add(file.inode);
    sum += file.size;
  }
  return sum;
}

export interface DockerHistoryRow {
  CreatedBy: string;
  Size: string;
}

/** `docker history` sizes of the layers that are not empty, bottom first (empty_layer from the config). */
export async function dockerLayerSizes(daemon: DockerDaemon, image: BuiltImage): Promise<number[]> {
  const out = await daemon.docker([
    'history',
    '--no-trunc',
    '--human=false',
    '--format',
    '{{json .}}',
    image.name,
  ]);
  const rows = out
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as DockerHistoryRow)
    .reverse();
  const config = JSON.parse(
    (await run('skopeo', ['inspect', '--config', `docker-archive:${image.archive}`])) as string,
  ) as { history: { empty_layer?: boolean }[] };
  if (config.history.length !== rows.length)
    throw new Error('docker history and the config history differ in length');
  return rows.filter((_, i) => !config.history[i]!.empty_layer).map((row) => Number(row.Size));
}

// ---------------------------------------------------------------------------------------------
// The CLI's JSON

/** `ballast analyze --format json REF ...args`; asserts nothing, returns the result and the parsed report. */
export async function analyzeJson(
  reference: string,
  args: string[] = [],
  env: NodeJS.ProcessEnv = {},
  // biome-ignore lint/suspicious/noExplicitAny: the report is checked field by field by the tests
): Promise<{ result: CliResult; report: any }> {
  const result = await ballast(['analyze', '--format', 'json', ...args, reference], { env });
  let report: unknown;
  try {
    report = JSON.parse(result.stdout);
  } catch {
    report = undefined;
  }
  return { result, report };
}

/** `ballast files --format json REF ...args`. */
export async function filesJson(
  reference: string,
  args: string[] = [],
  env: NodeJS.ProcessEnv = {},
  // biome-ignore lint/suspicious/noExplicitAny: as above
): Promise<{ result: CliResult; view: any }> {
  const result = await ballast(['files', '--format', 'json', ...args, reference], { env });
  let view: unknown;
  try {
    view = JSON.parse(result.stdout);
  } catch {
    view = undefined;
  }
  return { result, view };
}

/** Files the Docker daemon adds to every container, which `docker export` shows in place of the image's. */
export const CONTAINER_FILES = [
  '.dockerenv',
  'etc/hostname',
  'etc/hosts',
  'etc/resolv.conf',
  'etc/mtab',
  'dev/console',
];

/**
 * The merged filesystem as the daemon itself builds it: `docker create` then `docker export`, listed by
 * GNU tar. Regular files with their sizes (hard links, which tar lists as `h`, are not files of their
 * own), and the count of non-directory entries; the daemon's own files are left out.
 */
export async function exportedFiles(
  daemon: DockerDaemon,
  image: string,
): Promise<{ files: Map<string, number>; nonDirs: number }> {
  const id = (await daemon.docker(['create', '--network', 'none', image])).trim();
  try {
    const { spawn } = await import('node:child_process');
    const listing = await new Promise<string>((done, fail) => {
      const exporter = spawn('docker', ['export', id], {
        env: daemon.env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const tar = spawn('tar', ['-tv', '--numeric-owner', '--quoting-style=literal', '-f', '-'], {
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      exporter.stdout.pipe(tar.stdin);
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      tar.stdout.on('data', (c: Buffer) => out.push(c));
      tar.stderr.on('data', (c: Buffer) => err.push(c));
      exporter.stderr.on('data', (c: Buffer) => err.push(c));
      tar.on('close', (code) => {
        if (code === 0) done(Buffer.concat(out).toString('utf8'));
        else fail(new Error(`docker export | tar -tv failed: ${Buffer.concat(err).toString()}`));
      });
      exporter.on('error', fail);
      tar.on('error', fail);
    });
    const files = new Map<string, number>();
    let nonDirs = 0;
    for (const line of listing.split('\n')) {
      const match = /^(\S)\S*\s+\S+\s+(\S+)\s+\S+\s+\S+\s+(.*)$/.exec(line);
      if (!match) continue;
      const [, type, size, rest] = match as unknown as [string, string, string, string];
      let path = type === 'l' ? rest.slice(0, rest.indexOf(' -> ')) : rest;
      if (type === 'h') path = rest.slice(0, rest.indexOf(' link to '));
      path = path.replace(/^\.?\//, '').replace(/\/$/, '');
      if (type === 'd' || CONTAINER_FILES.includes(path)) continue;
      nonDirs++;
      if (type === '-') files.set(path, Number(size));
    }
    return { files, nonDirs };
  } finally {
    await daemon.docker(['rm', id]).catch(() => '');
  }
}
