/**
 * ballast's public library API. Everything a program needs is exported here by name; modules not
 * listed are internal and may change.
 */

export * from './analysis/index.js';
export { type CopyEvent, type CopyOptions, type CopyResult, copyImage } from './copy/copy.js';
export { openDestination } from './copy/open-destination.js';
export {
  loadSyncConfig,
  parseSyncConfig,
  planSync,
  type SyncConfig,
  type SyncOptions,
  type SyncPair,
  type SyncPairResult,
  type SyncSummary,
  syncImages,
} from './copy/sync-config.js';
export type { DestinationOptions, ImageDestination } from './copy/types.js';
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
export {
  type AnalyzedImage,
  type AnalyzeOptions,
  analyzeImage,
  type LayerIssue,
} from './inspect/analyze.js';
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
  type Change,
  type LayerChanges,
  layerChanges,
  readLayerChanges,
} from './layers/changes.js';
export { type Compression, decompress, decompressedStream } from './layers/decompress.js';
export { type LayerMeasure, measureLayer, measureLayerFile } from './layers/measure.js';
export { type EntryType, parseTar, parseTarFile, type TarEntry, tarEntries } from './layers/tar.js';
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
export { RegistryClient } from './registry/client.js';
export { findCredentials, storeCredentials } from './registry/credentials.js';
export { openSource, type ResolvedImage, resolveImage } from './sources/open.js';
export type {
  BlobOptions,
  BlobProgress,
  ImageSource,
  SourceOptions,
  StoredManifest,
} from './sources/types.js';
export { humanSize, parseSize } from './util/size.js';
