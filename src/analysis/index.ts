/** The analysis room's API: everything src/index.ts and the CLI use. */
export { commandBuilds } from './advice.js';
export { type AnalyzerOptions, analyzeLayers, ImageAnalyzer, type LayerInput } from './analyzer.js';
export {
  CI_RULE_NAMES,
  type CiResult,
  type CiRuleName,
  type CiRules,
  DIVE_DEFAULT_RULES,
  evaluateCi,
  mergeCiRules,
  parseCiConfig,
  parseCiValue,
} from './ci.js';
export type { FileChange, FileRow, FilesOptions, FilesView } from './files.js';
export { wantsContent } from './merge.js';
export { isToolchainPackage, parseApkInstalled, parseDpkgStatus, parseFileList } from './packages.js';
export { ImageAnalysis } from './result.js';
export type * from './types.js';
