/**
 * ballast's public library API. Everything a program needs is exported here by name; modules not
 * listed are internal and may change.
 */
export { BallastError, type BallastErrorOptions, type ErrorCode } from './errors.js';
export { type Descriptor, type Platform, sha256, VerifyingStream, verifyBytes } from './image/digest.js';
export {
  type HistoryEntry,
  type ImageConfig,
  type ImageIndex,
  type ImageManifest,
  type Manifest,
  parseConfig,
  parseManifest,
  type Schema1Manifest,
} from './image/manifest.js';
export { MediaType } from './image/media-types.js';
export {
  formatPlatform,
  hostPlatform,
  type PlatformSpec,
  parsePlatform,
  selectPlatform,
} from './image/platform.js';
export { type HistoryRow, imageHistory } from './inspect/history.js';
export {
  type InspectLayer,
  type InspectOptions,
  type InspectOutput,
  inspectImage,
} from './inspect/inspect.js';
export { type LayerSizeOptions, layerFileBytes } from './inspect/layer-sizes.js';
export {
  compareSizes,
  imageSize,
  type SizeResult,
  type SizeRow,
  type SizesOptions,
} from './inspect/sizes.js';
export {
  type DockerName,
  describeReference,
  formatDockerName,
  type ImageReference,
  parseDockerName,
  parseReference,
  repositoryName,
  type Transport,
} from './reference/parse.js';
export { openSource, type ResolvedImage, resolveImage } from './sources/open.js';
export type {
  BlobOptions,
  BlobProgress,
  ImageSource,
  SourceOptions,
  StoredManifest,
} from './sources/types.js';
export { humanSize, parseSize } from './util/size.js';
