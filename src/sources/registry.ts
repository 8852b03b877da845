import { BallastError } from '../errors.js';
import type { ImageReference } from '../reference/parse.js';
import type { ImageSource, SourceOptions } from './types.js';

// Placeholder until the transport lands.
export class RegistrySource {
  static async open(_ref: ImageReference, _options: SourceOptions): Promise<ImageSource> {
    throw new BallastError('USAGE', 'transport not written yet');
  }
}
