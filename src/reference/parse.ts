import { BallastError } from '../errors.js';

/** A name in a registry, normalised as docker does (`ubuntu` is `docker.io/library/ubuntu:latest`). */
export interface DockerName {
  /** Registry host as the user means it: `docker.io`, `ghcr.io`, `127.0.0.1:5000`. */
  registry: string;
  /** Repository path inside the registry: `library/ubuntu`. */
  repository: string;
  tag: string | undefined;
  digest: string | undefined;
}

export type ImageReference =
  | ({ transport: 'docker'; input: string } & DockerName)
  | { transport: 'oci'; input: string; path: string; ref: string | undefined }
  | { transport: 'docker-archive'; input: string; path: string; name: DockerName | undefined }
  | {
      transport: 'docker-daemon';
      input: string;
      /** A name, or undefined when the user gave an image ID. */
      name: DockerName | undefined;
      imageId: string | undefined;
    };

export type Transport = ImageReference['transport'];

export const DOCKER_HUB = 'docker.io';
const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

// The grammar of distribution/reference.
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;
const SHA256_HEX = /^[a-f0-9]{64}$/;
const MAX_NAME_LENGTH = 255;
// skopeo's other transports: named so that `dir:x` is not mistaken for the image `dir` with tag `x`.
const OTHER_TRANSPORTS = new Set(['dir', 'containers-storage', 'oci-archive', 'ostree', 'sif', 'tarball']);
const SUPPORTED_TRANSPORTS = 'use docker://NAME, NAME, oci:PATH, docker-archive:PATH or docker-daemon:NAME';

function invalid(input: string, what: string, hint?: string): BallastError {
  return new BallastError('REFERENCE_INVALID', `invalid image reference "${input}": ${what}`, {
    hint,
    exitCode: 2,
  });
}

/** Parses a registry name with docker's normalisation. `input` is quoted in error messages. */
export function parseDockerName(text: string, input = text): DockerName {
  if (text === '') throw invalid(input, 'the name is empty');
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) {
      throw invalid(input, `"${digest}" is not a digest`, 'a digest looks like sha256:<64 hex digits>');
    }
    if (digest.startsWith('sha256:') && !SHA256_HEX.test(digest.slice(7))) {
      throw invalid(input, `"${digest}" is not a sha256 digest (64 lowercase hex digits)`);
    }
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) {
      throw invalid(
        input,
        `"${tag}" is not a valid tag`,
        'a tag is up to 128 letters, digits, "_", "." and "-", not starting with "." or "-"',
      );
    }
  }
  if (rest === '') throw invalid(input, 'the repository name is empty');
  const parts = rest.split('/');
  let registry = DOCKER_HUB;
  const first = parts[0] ?? '';
  if (
    parts.length > 1 &&
    (first.includes('.') || first.includes(':') || first === 'localhost' || /[A-Z]/.test(first))
  ) {
    if (!DOMAIN.test(first)) throw invalid(input, `"${first}" is not a valid registry host`);
    registry = DOCKER_HUB_ALIASES.has(first) ? DOCKER_HUB : first;
    parts.shift();
  }
  for (const part of parts) {
    if (part !== part.toLowerCase()) {
      throw invalid(input, `repository names must be lowercase ("${part}")`);
    }
    if (!COMPONENT.test(part)) {
      throw invalid(
        input,
        part === ''
          ? 'the repository path has an empty component'
          : `"${part}" is not a valid repository name component`,
        'components are lowercase letters and digits, separated by ".", "_", "__" or "-"',
      );
    }
  }
  if (registry === DOCKER_HUB && parts.length === 1) parts.unshift('library');
  const repository = parts.join('/');
  if (repository.length > MAX_NAME_LENGTH)
    throw invalid(input, `the repository name is longer than ${MAX_NAME_LENGTH} characters`);
  if (tag === undefined && digest === undefined) tag = 'latest';
  return { registry, repository, tag, digest };
}

/** `docker.io/library/ubuntu`: the repository with its registry, no tag (skopeo's `Name`). */
export function repositoryName(name: Pick<DockerName, 'registry' | 'repository'>): string {
  return `${name.registry}/${name.repository}`;
}

/** `docker.io/library/ubuntu:latest` or `...@sha256:...`: the full normalised name. */
export function formatDockerName(name: DockerName): string {
  let out = repositoryName(name);
  if (name.tag !== undefined) out += `:${name.tag}`;
  if (name.digest !== undefined) out += `@${name.digest}`;
  return out;
}

/** Splits `PATH[:REST]` at the first colon, as skopeo does on non-Windows systems. */
function splitPath(body: string): [string, string | undefined] {
  const colon = body.indexOf(':');
  return colon < 0 ? [body, undefined] : [body.slice(0, colon), body.slice(colon + 1)];
}

/**
 * Parses what the user typed: `docker://NAME`, a bare `NAME[:TAG|@DIGEST]`, `oci:PATH[:REF]`,
 * `docker-archive:PATH[:NAME:TAG]`, `docker-daemon:NAME[:TAG]`.
 */
export function parseReference(input: string): ImageReference {
  const text = input.trim();
  if (text === '') throw invalid(input, 'the reference is empty');
  if (text.startsWith('docker://')) {
    return { transport: 'docker', input, ...parseDockerName(text.slice('docker://'.length), input) };
  }
  if (text.startsWith('oci:')) {
    const [path, ref] = splitPath(text.slice('oci:'.length));
    if (path === '') throw invalid(input, 'the OCI layout path is empty', 'write oci:PATH[:REF]');
    if (ref === '') throw invalid(input, 'the OCI reference name after ":" is empty');
    return { transport: 'oci', input, path, ref };
  }
  if (text.startsWith('docker-archive:')) {
    const [path, rest] = splitPath(text.slice('docker-archive:'.length));
    if (path === '')
      throw invalid(input, 'the archive path is empty', 'write docker-archive:PATH[:NAME:TAG]');
    if (rest === '') throw invalid(input, 'the image name after ":" is empty');
    const name = rest === undefined ? undefined : parseDockerName(rest, input);
    if (name?.digest !== undefined) throw invalid(input, 'an archive image is named NAME:TAG, not by digest');
    return { transport: 'docker-archive', input, path, name };
  }
  if (text.startsWith('docker-daemon:')) {
    const body = text.slice('docker-daemon:'.length);
    if (body === '') throw invalid(input, 'the image name is empty', 'write docker-daemon:NAME[:TAG]');
    const id = body.startsWith('sha256:') ? body.slice(7) : undefined;
    if (id !== undefined) {
      if (!SHA256_HEX.test(id)) throw invalid(input, `"${body}" is not an image ID (sha256:<64 hex digits>)`);
      return { transport: 'docker-daemon', input, name: undefined, imageId: body };
    }
    const name = parseDockerName(body, input);
    if (name.digest !== undefined) {
      throw invalid(input, 'docker-daemon references take NAME:TAG or an image ID, not a digest');
    }
    return { transport: 'docker-daemon', input, name, imageId: undefined };
  }
  const scheme = /^([a-z][a-z0-9+.-]*):/.exec(text)?.[1];
  if (scheme !== undefined && (OTHER_TRANSPORTS.has(scheme) || text.startsWith(`${scheme}://`))) {
    throw invalid(input, `transport "${scheme}:" is not supported`, SUPPORTED_TRANSPORTS);
  }
  return { transport: 'docker', input, ...parseDockerName(text, input) };
}

/** A short description of where an image lives, for messages. */
export function describeReference(ref: ImageReference): string {
  switch (ref.transport) {
    case 'docker':
      return formatDockerName(ref);
    case 'oci':
      return `oci:${ref.path}${ref.ref === undefined ? '' : `:${ref.ref}`}`;
    case 'docker-archive':
      return `docker-archive:${ref.path}${ref.name === undefined ? '' : `:${formatDockerName(ref.name)}`}`;
    case 'docker-daemon':
      return `docker-daemon:${ref.name ? formatDockerName(ref.name) : ref.imageId}`;
  }
}

/** Whether a registry name as typed carries a tag or a digest (`ubuntu:22.04`, `ubuntu@sha256:...`). */
export function hasTagOrDigest(input: string): boolean {
  const text = input.startsWith('docker://') ? input.slice('docker://'.length) : input;
  const last = text.slice(text.lastIndexOf('/') + 1);
  return last.includes(':') || last.includes('@');
}
