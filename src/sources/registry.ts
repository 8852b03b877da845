import type { Readable } from 'node:stream';
import { BallastError } from '../errors.js';
import type { Descriptor } from '../image/digest.js';
import type { ImageReference } from '../reference/parse.js';
import { RegistryClient, type RegistryClientOptions } from '../registry/client.js';
import type { BlobOptions, ImageSource, SourceOptions, StoredManifest } from './types.js';

/** Knobs of the registry client beyond SourceOptions (retry timing, page sizes), mostly for tests. */
export interface RegistrySourceOptions extends SourceOptions {
  client?: Omit<RegistryClientOptions, 'creds' | 'authFile' | 'insecure' | 'caFile' | 'onWarning'>;
}

type DockerReference = Extract<ImageReference, { transport: 'docker' }>;

/** An image in a registry, read through the distribution API. */
export class RegistrySource implements ImageSource {
  readonly reference: ImageReference;
  /** `registry/repository`, as skopeo prints `Name`: `127.0.0.1:5000/foo`, `docker.io/library/ubuntu`. */
  readonly name: string;
  readonly dockerReference: string;
  readonly client: RegistryClient;
  private readonly ref: DockerReference;
  /** Manifests already read: Docker Hub counts every manifest GET as a pull. */
  private readonly manifests = new Map<string, Promise<StoredManifest>>();

  private constructor(ref: DockerReference, client: RegistryClient) {
    this.reference = ref;
    this.ref = ref;
    this.client = client;
    this.name = `${ref.registry}/${ref.repository}`;
    this.dockerReference = this.name;
  }

  static async open(ref: ImageReference, options: RegistrySourceOptions = {}): Promise<ImageSource> {
    if (ref.transport !== 'docker') {
      throw new BallastError('USAGE', `${ref.input} is not a registry reference`, { exitCode: 2 });
    }
    const client = new RegistryClient(ref.registry, {
      ...options.client,
      creds: options.creds,
      authFile: options.authFile,
      insecure: options.insecure,
      caFile: options.caFile,
      onWarning: options.onWarning,
    });
    return new RegistrySource(ref, client);
  }

  /** The digest wins over the tag, as docker does with `name:tag@digest`. */
  getManifest(digest?: string): Promise<StoredManifest> {
    const reference = digest ?? this.ref.digest ?? this.ref.tag ?? 'latest';
    let manifest = this.manifests.get(reference);
    if (!manifest) {
      manifest = this.client.getManifest(this.ref.repository, reference);
      this.manifests.set(reference, manifest);
      manifest.catch(() => this.manifests.delete(reference));
    }
    return manifest;
  }

  getBlob(
    descriptor: Pick<Descriptor, 'digest' | 'size'> & Partial<Descriptor>,
    options?: BlobOptions,
  ): Promise<Readable> {
    return this.client.getBlob(this.ref.repository, descriptor, options);
  }

  listTags(): Promise<string[]> {
    return this.client.listTags(this.ref.repository);
  }

  async close(): Promise<void> {
    this.client.close();
  }
}
