import { BallastError } from '../errors.js';
import { type ImageReference, parseReference } from '../reference/parse.js';
import type { DestinationOptions, ImageDestination } from './types.js';

/** Opens the destination a reference names; each transport's module is loaded only when used. */
export async function openDestination(
  reference: string | ImageReference,
  options: DestinationOptions = {},
): Promise<ImageDestination> {
  const ref = typeof reference === 'string' ? parseReference(reference) : reference;
  switch (ref.transport) {
    case 'oci': {
      const { OciLayoutDestination } = await import('./oci-layout-destination.js');
      return OciLayoutDestination.open(ref);
    }
    case 'docker-archive': {
      const { DockerArchiveDestination } = await import('./docker-archive-destination.js');
      return DockerArchiveDestination.open(ref, options);
    }
    case 'docker': {
      const { RegistryDestination } = await import('./registry-destination.js');
      return RegistryDestination.open(ref, options);
    }
    case 'docker-daemon':
      throw new BallastError('USAGE', `ballast does not write into the Docker daemon (${ref.input})`, {
        exitCode: 2,
        hint: 'write docker-archive:FILE.tar and run `docker load -i FILE.tar`',
      });
  }
}
