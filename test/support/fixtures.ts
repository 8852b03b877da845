/**
 * Real test images, built once per checkout under .cache/fixtures/ and reused by every test file.
 * Each group is built in a temporary folder and renamed into place while holding a lock, so parallel
 * test processes build it once and never see half a fixture. Bump FIXTURE_VERSION when a recipe changes.
 *
 * - ociFixtures(): OCI layouts made with umoci (an app image with a real whiteout and a 1 MB file), a
 *   multi-platform index written here, a corrupt copy, a Docker 25 style archive built from the app
 *   image, a truncated archive and a file that is not a tar. Needs umoci, no daemon.
 * - dockerFixtures(): legacy `docker save` archives from the real daemon (a tiny imported rootfs plus a
 *   `docker build` on top), and a copy whose layer.tar is gzip-compressed.
 * - debianFixture(): optional and slow (mmdebstrap, about 25 s, needs the Debian mirror).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import {
  chmod,
  copyFile,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { CACHE_DIR, type DockerDaemon, startDocker, withLock } from './docker.js';

export const FIXTURE_VERSION = 1;
export const FIXTURES_DIR = join(CACHE_DIR, 'fixtures', `v${FIXTURE_VERSION}`);

export interface OciAppFixture {
  /** The layout folder; it holds the tags `base` (one layer) and `app` (the full image). */
  dir: string;
  tags: string[];
  /** `oci:DIR:app` */
  reference: string;
  /** `oci:DIR:base` */
  baseReference: string;
  /** Added by the first layer, removed by a whiteout in the second. */
  deletedPath: string;
  deletedSize: number;
  /** Added by the third layer: pseudo-random bytes. */
  bigPath: string;
  bigSize: number;
  /** Diff IDs of `app`, bottom first (3 layers), and its manifest digest. */
  diffIds: string[];
  manifestDigest: string;
}

export interface OciMultiFixture {
  dir: string;
  tag: string;
  /** `oci:DIR:multi`: index.json points at an OCI index with two images and an attestation. */
  reference: string;
  indexDigest: string;
  images: { platform: string; architecture: string; manifestDigest: string; configDigest: string }[];
  attestationDigest: string;
}

export interface OciCorruptFixture {
  dir: string;
  /** `oci:DIR:app`: the app image with one byte flipped in `corruptDigest`'s blob. */
  reference: string;
  corruptDigest: string;
}

export interface ArchiveFixture {
  path: string;
  /** `docker-archive:PATH` */
  reference: string;
  repoTags: string[];
}

export interface DockerOciArchiveFixture extends ArchiveFixture {
  /** The OCI manifest stored in the archive's index.json and its config. */
  manifestDigest: string;
  configDigest: string;
  diffIds: string[];
}

export interface OciFixtures {
  ociApp: OciAppFixture;
  ociMulti: OciMultiFixture;
  ociCorrupt: OciCorruptFixture;
  /** A Docker 25 style `docker save` (index.json, oci-layout, blobs/, manifest.json, legacy symlinks). */
  dockerArchiveOci: DockerOciArchiveFixture;
  /** The Docker 25 style archive cut in the middle of a layer. */
  truncatedArchive: string;
  /** A file that is not a tar at all. */
  notTar: string;
}

export interface DockerImageFixture {
  name: string;
  id: string;
  diffIds: string[];
}

export interface DockerFixtures {
  /** Images that dockerFixtures() built in the test daemon (ensureDaemonImages() reloads them). */
  images: { tiny: DockerImageFixture; app: DockerImageFixture };
  /** `docker save local/ballast-app:1`: legacy layout, three layers (import, COPY, RUN with a whiteout). */
  dockerArchive: ArchiveFixture;
  /** `docker save` of both images: select one with `:NAME:TAG`. */
  dockerArchiveMulti: ArchiveFixture;
  /** dockerArchive with its COPY layer.tar gzip-compressed in place, as some tools write them. */
  dockerArchiveGzip: ArchiveFixture;
}

// ---------------------------------------------------------------------------------------------
// Small helpers

export function run(
  command: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<string> {
  return new Promise((done, fail) => {
    execFile(
      command,
      args,
      { cwd: options.cwd, env: options.env ?? process.env, maxBuffer: 256 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error) fail(new Error(`${command} ${args.join(' ')} failed: ${stderr.trim() || error.message}`));
        else done(stdout);
      },
    );
  });
}

export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Deterministic pseudo-random bytes (sha256 in counter mode), so fixtures are the same on every machine. */
export function pseudoRandom(seed: string, length: number): Buffer {
  const out = Buffer.alloc(length);
  let offset = 0;
  for (let counter = 0; offset < length; counter++) {
    const block = createHash('sha256').update(`${seed}:${counter}`).digest();
    offset += block.copy(out, offset);
  }
  return out;
}

export interface TarEntry {
  name: string;
  type?: 'file' | 'dir' | 'symlink' | 'hardlink';
  data?: Uint8Array | string;
  linkname?: string;
  mode?: number;
  mtime?: number;
  /** How a name longer than 100 bytes is written: a pax header (default) or a GNU ././@LongLink entry. */
  longNames?: 'pax' | 'gnu';
  /** Write the size field in GNU base-256 form (to test readers). */
  base256Size?: boolean;
}

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

function header(fields: {
  name: string;
  mode: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname?: string;
  base256Size?: boolean;
}): Buffer {
  const block = Buffer.alloc(512);
  block.write(fields.name, 0, 100, 'utf8');
  block.write(octal(fields.mode, 8), 100, 'ascii');
  block.write(octal(0, 8), 108, 'ascii');
  block.write(octal(0, 8), 116, 'ascii');
  if (fields.base256Size) {
    block[124] = 0x80;
    block.writeUIntBE(fields.size, 124 + 12 - 6, 6);
  } else {
    block.write(octal(fields.size, 12), 124, 'ascii');
  }
  block.write(octal(fields.mtime, 12), 136, 'ascii');
  block.write(' '.repeat(8), 148, 'ascii');
  block.write(fields.typeflag, 156, 'ascii');
  block.write(fields.linkname ?? '', 157, 100, 'utf8');
  block.write('ustar\0', 257, 'ascii');
  block.write('00', 263, 'ascii');
  block.write('root', 265, 'ascii');
  block.write('root', 297, 'ascii');
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return block;
}

function padded(data: Buffer): Buffer[] {
  const rest = data.length % 512;
  return rest === 0 ? [data] : [data, Buffer.alloc(512 - rest)];
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let length = body.length + 1;
  while (`${length}${body}`.length !== length) length = `${length}${body}`.length;
  return `${length}${body}`;
}

/** A tar archive in memory (for small test inputs only): ustar headers, pax or GNU long names. */
export function makeTar(entries: TarEntry[], options: { endBlocks?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    const type = entry.type ?? 'file';
    const data = type === 'file' ? Buffer.from(entry.data ?? '') : Buffer.alloc(0);
    const name = type === 'dir' && !entry.name.endsWith('/') ? `${entry.name}/` : entry.name;
    const mtime = entry.mtime ?? 1_700_000_000;
    const long = Buffer.byteLength(name) > 100 || Buffer.byteLength(entry.linkname ?? '') > 100;
    if (long && entry.longNames === 'gnu') {
      if (Buffer.byteLength(name) > 100) {
        const bytes = Buffer.from(`${name}\0`);
        parts.push(header({ name: '././@LongLink', mode: 0, size: bytes.length, mtime: 0, typeflag: 'L' }));
        parts.push(...padded(bytes));
      }
      if (Buffer.byteLength(entry.linkname ?? '') > 100) {
        const bytes = Buffer.from(`${entry.linkname}\0`);
        parts.push(header({ name: '././@LongLink', mode: 0, size: bytes.length, mtime: 0, typeflag: 'K' }));
        parts.push(...padded(bytes));
      }
    } else if (long) {
      let records = '';
      if (Buffer.byteLength(name) > 100) records += paxRecord('path', name);
      if (Buffer.byteLength(entry.linkname ?? '') > 100)
        records += paxRecord('linkpath', entry.linkname ?? '');
      const bytes = Buffer.from(records);
      parts.push(header({ name: 'PaxHeaders/x', mode: 0o644, size: bytes.length, mtime, typeflag: 'x' }));
      parts.push(...padded(bytes));
    }
    const typeflag = { file: '0', dir: '5', symlink: '2', hardlink: '1' }[type];
    parts.push(
      header({
        name: name.slice(0, 100),
        mode: entry.mode ?? (type === 'dir' ? 0o755 : 0o644),
        size: data.length,
        mtime,
        typeflag,
        linkname: entry.linkname?.slice(0, 100),
        base256Size: entry.base256Size,
      }),
    );
    if (data.length > 0) parts.push(...padded(data));
  }
  if (options.endBlocks !== false) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

/** Writes to `path` via a temporary file and a rename, so readers never see a partial file. */
async function writeAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const temp = `${path}.tmp-${process.pid}`;
  await writeFile(temp, data);
  await rename(temp, path);
}

/**
 * Builds `name` under `root` once: `build(tempDir)` fills a temporary folder and returns metadata
 * (paths in it relative to the folder) that is saved as fixture.json; then the folder is renamed into
 * place. Later calls, in any process, read fixture.json; a concurrent builder is waited for.
 */
export async function cachedFixture<T>(
  root: string,
  name: string,
  build: (dir: string) => Promise<T>,
  lockTimeoutMs?: number,
): Promise<{ dir: string; meta: T }> {
  const dir = join(root, name);
  const metaPath = join(dir, 'fixture.json');
  const read = async () => JSON.parse(await readFile(metaPath, 'utf8')) as T;
  if (existsSync(metaPath)) return { dir, meta: await read() };
  await mkdir(root, { recursive: true });
  return withLock(
    join(root, `.lock-${name}`),
    async () => {
      if (existsSync(metaPath)) return { dir, meta: await read() };
      const temp = join(root, `.tmp-${name}-${process.pid}-${Date.now()}`);
      await rm(temp, { recursive: true, force: true });
      await mkdir(temp, { recursive: true });
      try {
        const meta = await build(temp);
        await writeFile(join(temp, 'fixture.json'), `${JSON.stringify(meta, null, 2)}\n`);
        await rm(dir, { recursive: true, force: true });
        await rename(temp, dir);
        return { dir, meta };
      } catch (error) {
        await rm(temp, { recursive: true, force: true });
        throw error;
      }
    },
    lockTimeoutMs,
  );
}

function cached<T>(name: string, build: (dir: string) => Promise<T>): Promise<{ dir: string; meta: T }> {
  return cachedFixture(FIXTURES_DIR, name, build);
}

interface OciIndexFile {
  manifests: { digest: string; size: number; mediaType: string; annotations?: Record<string, string> }[];
}

async function readBlob(layout: string, digest: string): Promise<Buffer> {
  return readFile(join(layout, 'blobs', 'sha256', digest.slice(7)));
}

async function writeBlob(
  layout: string,
  data: Uint8Array | string,
): Promise<{ digest: string; size: number }> {
  const bytes = Buffer.from(data);
  const hex = sha256Hex(bytes);
  await mkdir(join(layout, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(layout, 'blobs', 'sha256', hex), bytes);
  return { digest: `sha256:${hex}`, size: bytes.length };
}

async function manifestOfTag(
  layout: string,
  tag: string,
): Promise<{ digest: string; manifest: OciManifestDoc }> {
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as OciIndexFile;
  const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!entry) throw new Error(`no tag ${tag} in ${layout}`);
  return { digest: entry.digest, manifest: JSON.parse((await readBlob(layout, entry.digest)).toString()) };
}

interface OciManifestDoc {
  config: { digest: string; size: number; mediaType: string };
  layers: { digest: string; size: number; mediaType: string }[];
}

// ---------------------------------------------------------------------------------------------
// OCI fixtures (umoci and node, no daemon)

const DELETED_PATH = '/var/cache/junk.bin';
const DELETED_SIZE = 100 * 1024;
const BIG_PATH = '/opt/app/data.bin';
const BIG_SIZE = 1024 * 1024;

async function buildOciApp(dir: string): Promise<Omit<OciAppFixture, 'dir' | 'reference' | 'baseReference'>> {
  const layout = join(dir, 'layout');
  const bundle = join(dir, 'bundle');
  const rootfs = join(bundle, 'rootfs');
  const image = `${layout}:app`;
  const created = '2024-01-02T03:04:05Z';
  await run('umoci', ['init', '--layout', layout]);
  await run('umoci', ['new', '--image', image]);
  await run('umoci', [
    'config',
    '--image',
    image,
    '--author',
    'ballast tests',
    '--created',
    created,
    '--config.env',
    'PATH=/usr/local/bin:/usr/bin:/bin',
    '--config.env',
    'APP_MODE=test',
    '--config.label',
    'org.opencontainers.image.title=ballast-fixture',
    '--config.label',
    'com.example.tier=test',
    '--history.created_by',
    'ENV APP_MODE=test',
    '--history.created',
    created,
  ]);
  await run('umoci', ['unpack', '--rootless', '--image', image, bundle]);
  // Layer 1: a few base files, including one that layer 2 deletes.
  await mkdir(join(rootfs, 'etc'), { recursive: true });
  await mkdir(join(rootfs, 'usr/bin'), { recursive: true });
  await mkdir(join(rootfs, 'var/cache'), { recursive: true });
  await writeFile(join(rootfs, 'etc/os-release'), 'ID=ballast\nVERSION_ID=1\n');
  await writeFile(join(rootfs, 'usr/bin/hello'), '#!/bin/sh\necho hello\n');
  await chmod(join(rootfs, 'usr/bin/hello'), 0o755);
  await writeFile(join(rootfs, DELETED_PATH), pseudoRandom('junk', DELETED_SIZE));
  await symlink('usr/bin', join(rootfs, 'bin'));
  const repack = (createdBy: string) =>
    run('umoci', [
      'repack',
      '--refresh-bundle',
      '--image',
      image,
      '--history.created_by',
      createdBy,
      '--history.created',
      created,
      bundle,
    ]);
  await repack('ADD base files');
  await run('umoci', ['tag', '--image', image, 'base']);
  // Layer 2: a real whiteout for the junk file, and a new config file.
  await rm(join(rootfs, DELETED_PATH));
  await writeFile(join(rootfs, 'etc/app.conf'), 'mode=test\n');
  await repack(`RUN rm ${DELETED_PATH}`);
  // Layer 3: a larger file.
  await mkdir(join(rootfs, 'opt/app'), { recursive: true });
  await writeFile(join(rootfs, BIG_PATH), pseudoRandom('big', BIG_SIZE));
  await repack(`COPY data.bin ${BIG_PATH}`);
  await run('umoci', [
    'config',
    '--image',
    image,
    '--config.cmd',
    '/usr/bin/hello',
    '--history.created_by',
    'CMD ["/usr/bin/hello"]',
    '--history.created',
    created,
  ]);
  await run('umoci', ['gc', '--layout', layout]);
  await rm(bundle, { recursive: true, force: true });
  const { digest, manifest } = await manifestOfTag(layout, 'app');
  const config = JSON.parse((await readBlob(layout, manifest.config.digest)).toString()) as {
    rootfs: { diff_ids: string[] };
  };
  return {
    tags: ['app', 'base'],
    deletedPath: DELETED_PATH,
    deletedSize: DELETED_SIZE,
    bigPath: BIG_PATH,
    bigSize: BIG_SIZE,
    diffIds: config.rootfs.diff_ids,
    manifestDigest: digest,
  };
}

async function buildOciMulti(dir: string): Promise<Omit<OciMultiFixture, 'dir' | 'reference'>> {
  const layout = join(dir, 'layout');
  await mkdir(layout, { recursive: true });
  await writeFile(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const images: OciMultiFixture['images'] = [];
  const entries: unknown[] = [];
  for (const architecture of ['amd64', 'arm64']) {
    const tar = makeTar([
      { name: 'etc', type: 'dir' },
      { name: 'etc/arch', data: `${architecture}\n` },
      { name: 'bin', type: 'dir' },
      { name: 'bin/payload', data: pseudoRandom(`payload-${architecture}`, 4096), mode: 0o755 },
    ]);
    const layer = await writeBlob(layout, gzipSync(tar));
    const config = await writeBlob(
      layout,
      JSON.stringify({
        created: '2024-01-02T03:04:05Z',
        architecture,
        os: 'linux',
        config: { Env: ['PATH=/bin'], Cmd: ['/bin/payload'] },
        rootfs: { type: 'layers', diff_ids: [`sha256:${sha256Hex(tar)}`] },
        history: [{ created: '2024-01-02T03:04:05Z', created_by: 'COPY payload /bin/payload' }],
      }),
    );
    const manifest = await writeBlob(
      layout,
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer }],
      }),
    );
    images.push({
      platform: `linux/${architecture}`,
      architecture,
      manifestDigest: manifest.digest,
      configDigest: config.digest,
    });
    entries.push({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      ...manifest,
      platform: { architecture, os: 'linux' },
    });
  }
  // An attestation as BuildKit writes it: an image manifest with an in-toto layer, platform unknown.
  const statement = await writeBlob(
    layout,
    JSON.stringify({
      _type: 'https://in-toto.io/Statement/v0.1',
      predicateType: 'https://spdx.dev/Document',
    }),
  );
  const attConfig = await writeBlob(
    layout,
    JSON.stringify({
      architecture: 'unknown',
      os: 'unknown',
      config: {},
      rootfs: { type: 'layers', diff_ids: [statement.digest] },
    }),
  );
  const attestation = await writeBlob(
    layout,
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...attConfig },
      layers: [
        {
          mediaType: 'application/vnd.in-toto+json',
          ...statement,
          annotations: { 'in-toto.io/predicate-type': 'https://spdx.dev/Document' },
        },
      ],
    }),
  );
  entries.push({
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    ...attestation,
    annotations: {
      'vnd.docker.reference.digest': images[0]!.manifestDigest,
      'vnd.docker.reference.type': 'attestation-manifest',
    },
    platform: { architecture: 'unknown', os: 'unknown' },
  });
  const index = await writeBlob(
    layout,
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: entries,
    }),
  );
  await writeFile(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.index.v1+json',
          ...index,
          annotations: { 'org.opencontainers.image.ref.name': 'multi' },
        },
      ],
    }),
  );
  return { tag: 'multi', indexDigest: index.digest, images, attestationDigest: attestation.digest };
}

async function copyTree(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const entry of await readdir(from, { withFileTypes: true })) {
    if (entry.isDirectory()) await copyTree(join(from, entry.name), join(to, entry.name));
    else await copyFile(join(from, entry.name), join(to, entry.name));
  }
}

/** A `docker save` tar as Docker 25 writes it, built from an OCI layout image (layers stored uncompressed). */
async function buildDockerOciArchive(
  appLayout: string,
  out: string,
  repoTag: string,
): Promise<Omit<DockerOciArchiveFixture, 'path' | 'reference'>> {
  const { manifest } = await manifestOfTag(appLayout, 'app');
  const configBytes = await readBlob(appLayout, manifest.config.digest);
  const blobs = new Map<string, Buffer>();
  const put = (bytes: Buffer) => {
    const digest = `sha256:${sha256Hex(bytes)}`;
    blobs.set(digest, bytes);
    return { digest, size: bytes.length };
  };
  const layers = [];
  for (const layer of manifest.layers) {
    const tar = gunzipSync(await readBlob(appLayout, layer.digest));
    layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...put(tar) });
  }
  const config = put(configBytes);
  const manifestBytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers,
    }),
  );
  const stored = put(manifestBytes);
  const [repo, tag] = [
    repoTag.slice(0, repoTag.lastIndexOf(':')),
    repoTag.slice(repoTag.lastIndexOf(':') + 1),
  ];
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        ...stored,
        annotations: {
          'io.containerd.image.name': `docker.io/${repo}:${tag}`,
          'org.opencontainers.image.ref.name': tag,
        },
      },
    ],
  };
  const legacy = [
    {
      Config: `blobs/sha256/${config.digest.slice(7)}`,
      RepoTags: [repoTag],
      Layers: layers.map((l) => `blobs/sha256/${l.digest.slice(7)}`),
    },
  ];
  const entries: TarEntry[] = [
    { name: 'blobs', type: 'dir' },
    { name: 'blobs/sha256', type: 'dir' },
  ];
  for (const [digest, bytes] of [...blobs].sort(([a], [b]) => a.localeCompare(b))) {
    entries.push({ name: `blobs/sha256/${digest.slice(7)}`, data: bytes });
  }
  entries.push({ name: 'index.json', data: JSON.stringify(index) });
  entries.push({ name: 'manifest.json', data: JSON.stringify(legacy) });
  entries.push({ name: 'oci-layout', data: '{"imageLayoutVersion":"1.0.0"}' });
  entries.push({
    name: 'repositories',
    data: JSON.stringify({ [repo]: { [tag]: layers.at(-1)!.digest.slice(7) } }),
  });
  // Legacy-path symlinks into blobs/, as Docker 25 keeps for old readers.
  for (const layer of layers) {
    const id = sha256Hex(`legacy-${layer.digest}`);
    entries.push({ name: id, type: 'dir' });
    entries.push({
      name: `${id}/layer.tar`,
      type: 'symlink',
      linkname: `../blobs/sha256/${layer.digest.slice(7)}`,
    });
  }
  await writeFile(out, makeTar(entries));
  const diffIds = layers.map((l) => l.digest);
  return { repoTags: [repoTag], manifestDigest: stored.digest, configDigest: config.digest, diffIds };
}

let ociPromise: Promise<OciFixtures> | undefined;

/** The fixtures that need only umoci and node. */
export function ociFixtures(): Promise<OciFixtures> {
  ociPromise ??= buildOciFixtures().catch((error: unknown) => {
    ociPromise = undefined;
    throw error;
  });
  return ociPromise;
}

async function buildOciFixtures(): Promise<OciFixtures> {
  const app = await cached('oci-app', buildOciApp);
  const appLayout = join(app.dir, 'layout');
  const multi = await cached('oci-multi', buildOciMulti);
  const corrupt = await cached('oci-corrupt', async (dir) => {
    await copyTree(appLayout, join(dir, 'layout'));
    // Flip one byte in the middle of the largest layer blob.
    const { manifest } = await manifestOfTag(join(dir, 'layout'), 'app');
    const biggest = [...manifest.layers].sort((a, b) => b.size - a.size)[0]!;
    const file = join(dir, 'layout', 'blobs', 'sha256', biggest.digest.slice(7));
    const handle = await open(file, 'r+');
    try {
      const at = Math.floor(biggest.size / 2);
      const byte = Buffer.alloc(1);
      await handle.read(byte, 0, 1, at);
      byte[0] = byte[0]! ^ 0xff;
      await handle.write(byte, 0, 1, at);
    } finally {
      await handle.close();
    }
    return { corruptDigest: biggest.digest };
  });
  const archives = await cached('archives', async (dir) => {
    const path = join(dir, 'docker25.tar');
    const meta = await buildDockerOciArchive(appLayout, path, 'local/ballast-oci:1');
    const size = (await stat(path)).size;
    const whole = await readFile(path);
    // Cut in the middle of the big layer, as an interrupted download would.
    await writeFile(join(dir, 'truncated.tar'), whole.subarray(0, Math.floor(size * 0.6)));
    await writeFile(join(dir, 'not-a-tar.tar'), `${JSON.stringify({ hello: 'this is not a tar' })}\n`);
    return meta;
  });
  const ociApp: OciAppFixture = {
    ...app.meta,
    dir: appLayout,
    reference: `oci:${appLayout}:app`,
    baseReference: `oci:${appLayout}:base`,
  };
  const multiLayout = join(multi.dir, 'layout');
  const dockerPath = join(archives.dir, 'docker25.tar');
  return {
    ociApp,
    ociMulti: { ...multi.meta, dir: multiLayout, reference: `oci:${multiLayout}:multi` },
    ociCorrupt: {
      dir: join(corrupt.dir, 'layout'),
      reference: `oci:${join(corrupt.dir, 'layout')}:app`,
      corruptDigest: corrupt.meta.corruptDigest,
    },
    dockerArchiveOci: { ...archives.meta, path: dockerPath, reference: `docker-archive:${dockerPath}` },
    truncatedArchive: join(archives.dir, 'truncated.tar'),
    notTar: join(archives.dir, 'not-a-tar.tar'),
  };
}

// ---------------------------------------------------------------------------------------------
// Docker fixtures (the real daemon)

export const TINY_IMAGE = 'local/ballast-tiny:1';
export const APP_IMAGE = 'local/ballast-app:1';

/**
 * A root filesystem of a few MB that can run `RUN` steps: the host's dash, rm and cat with the shared
 * libraries they load (ldd names them).
 */
async function tinyRootfs(dir: string): Promise<string> {
  const root = join(dir, 'rootfs');
  for (const sub of ['bin', 'etc', 'tmp', 'var/log']) await mkdir(join(root, sub), { recursive: true });
  const binaries = ['dash', 'rm', 'cat'].map((name) =>
    ['/bin', '/usr/bin'].map((d) => join(d, name)).find(existsSync),
  );
  for (const binary of binaries) {
    if (binary === undefined) throw new Error('the tiny rootfs fixture needs dash, rm and cat on the host');
    const name = binary.slice(binary.lastIndexOf('/') + 1);
    await copyFile(binary, join(root, 'bin', name));
    await chmod(join(root, 'bin', name), 0o755);
    const ldd = await run('ldd', [binary]);
    for (const lib of ldd.match(/\/\S+/g) ?? []) {
      await mkdir(join(root, lib, '..'), { recursive: true });
      await copyFile(lib, join(root, lib));
    }
  }
  await symlink('dash', join(root, 'bin/sh'));
  await writeFile(join(root, 'etc/hello'), 'hello from the tiny rootfs\n');
  await writeFile(join(root, 'var/log/old.log'), pseudoRandom('old-log', 32 * 1024));
  const tar = join(dir, 'rootfs.tar');
  await run('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '-C', root, '-cf', tar, '.']);
  await rm(root, { recursive: true, force: true });
  return tar;
}

async function imageInfo(daemon: DockerDaemon, name: string): Promise<DockerImageFixture> {
  const [info] = JSON.parse(await daemon.docker(['image', 'inspect', name])) as {
    Id: string;
    RootFS: { Layers: string[] };
  }[];
  return { name, id: info!.Id, diffIds: info!.RootFS.Layers };
}

/** Rewrites a legacy archive with one layer.tar gzip-compressed in place (its diff ID is unchanged). */
async function gzipOneLayer(source: string, out: string, work: string): Promise<void> {
  const tree = join(work, 'unpacked');
  await mkdir(tree, { recursive: true });
  await run('tar', ['-C', tree, '-xf', source]);
  const manifest = JSON.parse(await readFile(join(tree, 'manifest.json'), 'utf8')) as { Layers: string[] }[];
  const layer = manifest[0]!.Layers[1]!;
  await writeFile(join(tree, layer), gzipSync(await readFile(join(tree, layer))));
  await run('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '-C', tree, '-cf', out, '.']);
  await rm(tree, { recursive: true, force: true });
}

let dockerPromise: Promise<DockerFixtures> | undefined;

/** The archives from the real daemon. Starts the test daemon only when the cache is cold. */
export function dockerFixtures(): Promise<DockerFixtures> {
  dockerPromise ??= buildDockerFixtures().catch((error: unknown) => {
    dockerPromise = undefined;
    throw error;
  });
  return dockerPromise;
}

async function buildDockerFixtures(): Promise<DockerFixtures> {
  const built = await cached('docker', async (dir) => {
    const daemon = await startDocker();
    try {
      const rootfs = await tinyRootfs(dir);
      await daemon.docker([
        'import',
        '--change',
        'ENV PATH=/bin',
        '--change',
        'CMD ["/bin/sh"]',
        '--message',
        'tiny rootfs',
        rootfs,
        TINY_IMAGE,
      ]);
      const context = join(dir, 'context');
      await mkdir(context);
      await writeFile(join(context, 'payload.bin'), pseudoRandom('payload', 64 * 1024));
      await writeFile(
        join(context, 'Dockerfile'),
        [
          `FROM ${TINY_IMAGE}`,
          'ENV APP_MODE=test',
          'LABEL org.opencontainers.image.title=ballast-app com.example.tier=test',
          'COPY payload.bin /opt/app/payload.bin',
          'RUN rm /var/log/old.log && echo done > /done',
          'CMD ["/bin/cat", "/done"]',
          '',
        ].join('\n'),
      );
      await daemon.docker(['build', '--network=host', '-q', '-t', APP_IMAGE, context], {
        env: { DOCKER_BUILDKIT: '0' },
      });
      await daemon.docker(['save', '-o', join(dir, 'app.tar'), APP_IMAGE]);
      await daemon.docker(['save', '-o', join(dir, 'multi.tar'), TINY_IMAGE, APP_IMAGE]);
      await gzipOneLayer(join(dir, 'app.tar'), join(dir, 'app-gzip-layer.tar'), dir);
      await rm(context, { recursive: true, force: true });
      return { tiny: await imageInfo(daemon, TINY_IMAGE), app: await imageInfo(daemon, APP_IMAGE) };
    } finally {
      await daemon.release();
    }
  });
  const archive = (name: string, repoTags: string[]): ArchiveFixture => {
    const path = join(built.dir, name);
    return { path, reference: `docker-archive:${path}`, repoTags };
  };
  return {
    images: built.meta,
    dockerArchive: archive('app.tar', [APP_IMAGE]),
    dockerArchiveMulti: archive('multi.tar', [TINY_IMAGE, APP_IMAGE]),
    dockerArchiveGzip: archive('app-gzip-layer.tar', [APP_IMAGE]),
  };
}

/**
 * Makes sure the daemon holds the fixture images with their recorded IDs (the daemon's data root may
 * have been wiped since the archives were built): `docker load` of the saved archive restores them.
 */
export async function ensureDaemonImages(daemon: DockerDaemon): Promise<DockerFixtures> {
  const docker = await dockerFixtures();
  for (const image of [docker.images.tiny, docker.images.app]) {
    const id = await daemon.docker(['image', 'inspect', '--format', '{{.Id}}', image.name]).catch(() => '');
    if (id.trim() !== image.id) {
      await daemon.docker(['load', '-q', '-i', docker.dockerArchiveMulti.path]);
      break;
    }
  }
  return docker;
}

/** Everything: the OCI fixtures and the daemon-built archives. */
export async function fixtures(): Promise<OciFixtures & DockerFixtures> {
  const oci = await ociFixtures();
  return { ...oci, ...(await dockerFixtures()) };
}

export interface DebianFixture {
  /** The mmdebstrap minbase rootfs tar. */
  rootfsTar: string;
  image: DockerImageFixture;
  archive: ArchiveFixture;
}

export const DEBIAN_IMAGE = 'local/ballast-debian:bookworm';

/** Optional and slow (about 25 s, needs the Debian mirror): a real Debian bookworm minbase image. */
export async function debianFixture(): Promise<DebianFixture> {
  const built = await cached('debian', async (dir) => {
    const rootfs = join(dir, 'rootfs.tar');
    await run('mmdebstrap', [
      '--variant=minbase',
      '--mode=root',
      'bookworm',
      rootfs,
      'http://deb.debian.org/debian',
    ]);
    const daemon = await startDocker();
    try {
      await daemon.docker(['import', rootfs, DEBIAN_IMAGE]);
      await daemon.docker(['save', '-o', join(dir, 'debian.tar'), DEBIAN_IMAGE]);
      return { image: await imageInfo(daemon, DEBIAN_IMAGE) };
    } finally {
      await daemon.release();
    }
  });
  const path = join(built.dir, 'debian.tar');
  return {
    rootfsTar: join(built.dir, 'rootfs.tar'),
    image: built.meta.image,
    archive: { path, reference: `docker-archive:${path}`, repoTags: [DEBIAN_IMAGE] },
  };
}

/** Writes bytes atomically (for tests that make their own variants of a fixture). */
export { writeAtomic };
