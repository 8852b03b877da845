/**
 * What analysis takes in and what it reports. The input change records are src/layers/changes.ts's
 * (`Change`); the report field names are the contract of `ballast analyze --format json`
 * (docs/analyze.md).
 */
import type { Change } from '../layers/changes.js';

export type { Change };

/** One layer of the image, bottom first. `index` is its position in the stack (0 = the base). */
export interface LayerMeta {
  index: number;
  /** The layer blob's digest (compressed, as in the manifest). */
  digest: string;
  /** The uncompressed tar's digest (the config's rootfs.diff_ids). */
  diffId: string;
  /** The history entry's created_by, '' when unknown. */
  createdBy: string;
  /** The blob's size as in the manifest. */
  compressedBytes: number;
}

export interface LayerReport extends LayerMeta {
  /** Regular-file bytes of the layer (the size `docker history` shows). */
  fileBytes: number;
  /** Of `fileBytes`, what is still visible in the final filesystem. */
  finalBytes: number;
  /** Non-directory paths that did not exist below. */
  filesAdded: number;
  /** Non-directory paths that existed below (replaced). */
  filesChanged: number;
  /** Non-directory paths of lower layers removed (whiteouts, opaque dirs, replaced directories). */
  filesRemoved: number;
  /** Bytes of lower layers that this layer deletes or overwrites. */
  wastesBytes: number;
  /** Bytes of this layer that it overwrites itself (a path written twice in the layer). */
  wastesOwnBytes: number;
  /** Change records applied. */
  entries: number;
}

export type WasteReason = 'deleted' | 'overwritten';

export interface WastedPath {
  path: string;
  bytes: number;
  reason: WasteReason;
  /** An overwrite by a regular file of the same size: presumably only mode/owner changed (heuristic). */
  metadataOnly: boolean;
  /** For an overwrite by a regular file: which header fields differ. */
  changed: ('mode' | 'uid' | 'gid')[];
  /** The layer that wrote the bytes. */
  layer: number;
  /** The layer that deleted or replaced them. */
  removedBy: number;
}

export type PackageManager = 'dpkg' | 'apk' | 'rpm';

export interface PackageReport {
  name: string;
  manager: PackageManager;
  version: string;
  architecture: string | null;
  /** Bytes of the package's files visible in the final filesystem (each file counted for one package). */
  bytes: number;
  /** Visible non-directory paths counted for the package. */
  files: number;
  /** Paths the database lists that are not in the final filesystem (removed or never there). */
  missingFiles: number;
  /** The layer that wrote most of its visible bytes; null when unknown. */
  layer: number | null;
  /** dpkg `Essential: yes`. */
  essential: boolean;
  /** dpkg `Priority` (`required`, `important`, ...); null for apk or when absent. */
  priority: string | null;
  /** The database's own claim (dpkg Installed-Size KiB * 1024, apk I:), for comparison; null when absent. */
  installedSize: number | null;
}

export interface PackageDatabase {
  manager: PackageManager;
  path: string;
  /** Whether ballast could read it (rpm's sqlite/bdb/ndb formats are not read). */
  readable: boolean;
  packages: number;
  note?: string;
}

export interface SizedPath {
  path: string;
  bytes: number;
  /** Non-directory paths below (1 for a file). */
  files: number;
  /** The layer that wrote a file's visible version (files only). */
  layer?: number;
}

export interface Evidence {
  path?: string;
  layer?: number;
  createdBy?: string;
  package?: string;
  bytes: number;
  note?: string;
}

export interface Recommendation {
  id: string;
  title: string;
  /** What following the advice would save from the image, in bytes. */
  bytes: number;
  detail: string;
  evidence: Evidence[];
}

export interface AnalysisIssue {
  code: 'dangling-hardlink' | 'package-database-stale' | 'package-database-unreadable';
  message: string;
  path?: string;
  layer?: number;
}

export interface AnalysisReport {
  totalBytes: number;
  finalBytes: number;
  wastedBytes: number;
  deletedBytes: number;
  overwrittenBytes: number;
  efficiency: number;
  userWastedPercent: number;
  /** Non-directory paths of the final filesystem. */
  fileCount: number;
  layers: LayerReport[];
  /** The largest wasted paths, largest first (at most `wastedLimit`). */
  wasted: WastedPath[];
  /** How many wasted paths there are in all. */
  wastedCount: number;
  packages: PackageReport[];
  packageDatabases: PackageDatabase[];
  /** Visible bytes no package owns, grouped by directory, largest first. */
  unowned: SizedPath[];
  largestFiles: SizedPath[];
  largestDirectories: SizedPath[];
  recommendations: Recommendation[];
  issues: AnalysisIssue[];
}

export interface ReportOptions {
  /** How many largest files, directories and unowned groups to list. Default 20. */
  top?: number;
  /** How many wasted paths to list. Default 1000. */
  wastedLimit?: number;
  /** The image's command (config Entrypoint then Cmd), for the build-toolchain advice. */
  command?: readonly string[];
  /** Locale directories under usr/share/locale that the docs-locales advice keeps. */
  keepLocales?: readonly string[];
}
