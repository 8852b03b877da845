import type { Readable } from 'node:stream';
import { BallastError } from '../errors.js';
import type { Descriptor } from '../image/digest.js';
import { parseConfig, parseManifest } from '../image/manifest.js';
import {
  describeReference,
  formatDockerName,
  type ImageReference,
  repositoryName,
} from '../reference/parse.js';
import { readStream } from '../util/streams.js';
import { SavedImage } from './archive/saved-image.js';
import { StreamStore } from './archive/stream-store.js';
import { type EngineTarget, engineGet, engineJson, engineTarget, errorMessage } from './daemon/engine.js';
import type { BlobOptions, ImageSource, SourceOptions, StoredManifest } from './types.js';

interface ImageInspect {
  Id: string;
  RepoTags: string[] | null;
  RootFS?: { Type?: string; Layers?: string[] };
}

interface HistoryRow {
  Id: string;
  CreatedBy: string;
  Size: number;
}

/**
 * `docker-daemon:NAME[:TAG]` or `docker-daemon:sha256:ID`, through the Engine API. Like skopeo, the
 * image is read from `GET /images/{id}/get` (a docker save tar), but never written to disk or held in
 * memory: the first pass keeps the small members and the size and sha256 of every member, and each
 * layer read is another pass that stops once it has the layer.
 */
export class DockerDaemonSource implements ImageSource {
  readonly reference: ImageReference;
  readonly name: string;
  /** skopeo's `Name`: the repository of NAME:TAG; none for an image ID. */
  readonly dockerReference: string | undefined;
  readonly target: EngineTarget;
  /** The image ID the daemon resolved the reference to; every pass reads this one image. */
  readonly imageId: string;
  readonly inspect: ImageInspect;
  private saved: Promise<SavedImage> | undefined;

  private constructor(reference: ImageReference, target: EngineTarget, inspect: ImageInspect) {
    this.reference = reference;
    this.target = target;
    this.inspect = inspect;
    this.imageId = inspect.Id;
    const name = reference.transport === 'docker-daemon' ? reference.name : undefined;
    this.dockerReference = name ? repositoryName(name) : undefined;
    this.name = this.dockerReference ?? describeReference(reference);
  }

  static async open(ref: ImageReference, options: SourceOptions = {}): Promise<DockerDaemonSource> {
    if (ref.transport !== 'docker-daemon') {
      throw new BallastError('USAGE', `DockerDaemonSource cannot open ${ref.transport}: references`);
    }
    const target = engineTarget(options.dockerHost);
    const apiName = ref.name ? formatDockerName(ref.name) : ref.imageId!;
    const inspect = await engineJson<ImageInspect>(target, `/images/${apiName}/json`, `image ${apiName}`);
    if (typeof inspect?.Id !== 'string') {
      throw new BallastError('HTTP', `the Docker daemon at ${target.host} sent no image ID for ${apiName}`);
    }
    return new DockerDaemonSource(ref, target, inspect);
  }

  private async saveStream(signal?: AbortSignal): Promise<Readable> {
    const response = await engineGet(this.target, `/images/${this.imageId}/get`, signal);
    if (response.statusCode === 404) {
      throw new BallastError(
        'NOT_FOUND',
        `image ${this.imageId} is no longer in the Docker daemon at ${this.target.host}`,
      );
    }
    if (response.statusCode !== 200) {
      throw new BallastError(
        'HTTP',
        `the Docker daemon at ${this.target.host} could not export ${this.name}: ${await errorMessage(response)}`,
      );
    }
    return response;
  }

  /** The first pass over the save stream, once per source. */
  private image(): Promise<SavedImage> {
    this.saved ??= (async () => {
      const store = await StreamStore.scan(`the docker save stream of ${this.name}`, (signal) =>
        this.saveStream(signal),
      );
      // The stream holds just this image: no selector needed, and an ID-only save has no RepoTags.
      return SavedImage.load(store, undefined);
    })().catch((error: unknown) => {
      this.saved = undefined;
      throw error;
    });
    return this.saved;
  }

  async getManifest(digest?: string): Promise<StoredManifest> {
    return (await this.image()).getManifest(digest);
  }

  async getBlob(
    descriptor: Pick<Descriptor, 'digest' | 'size'> & Partial<Descriptor>,
    options?: BlobOptions,
  ): Promise<Readable> {
    return (await this.image()).getBlob(descriptor, options);
  }

  /**
   * docker's own per-layer sizes (what `docker history` shows: the bytes of the files in each layer, not
   * the tar's length), keyed by diff ID. History rows are mapped to RootFS.Layers bottom up through the
   * config's `empty_layer` flags; without a consistent config, rows with a size are used only when their
   * count equals the layer count. An ambiguous mapping gives an empty map.
   */
  async knownLayerSizes(): Promise<Map<string, number>> {
    const diffIds = this.inspect.RootFS?.Layers ?? [];
    const rows = (
      await engineJson<HistoryRow[]>(this.target, `/images/${this.imageId}/history`, `image ${this.imageId}`)
    )
      .slice()
      .reverse();
    const sizes = new Map<string, number>();
    const assign = (pairs: [string, number][]) => {
      for (const [diffId, size] of pairs) {
        const before = sizes.get(diffId);
        if (before !== undefined && before !== size) return false;
        sizes.set(diffId, size);
      }
      return true;
    };
    const history = await this.configHistory();
    if (history && history.length === rows.length) {
      const nonEmpty = rows.filter((_, i) => history[i]!.empty_layer !== true);
      if (nonEmpty.length === diffIds.length && assign(diffIds.map((d, i) => [d, nonEmpty[i]!.Size])))
        return sizes;
      sizes.clear();
    }
    const sized = rows.filter((row) => row.Size > 0);
    if (sized.length === diffIds.length && assign(diffIds.map((d, i) => [d, sized[i]!.Size]))) return sizes;
    return new Map();
  }

  private async configHistory(): Promise<{ empty_layer?: boolean }[] | undefined> {
    const top = await this.getManifest();
    const manifest = parseManifest(top.bytes, top.mediaType, `manifest of ${this.name}`);
    if (manifest.kind !== 'manifest') return undefined;
    const bytes = await readStream(
      await this.getBlob(manifest.config),
      64 * 1024 * 1024,
      `config of ${this.name}`,
    );
    const config = parseConfig(bytes, `config of ${this.name}`);
    return config.history;
  }

  async close(): Promise<void> {}
}
