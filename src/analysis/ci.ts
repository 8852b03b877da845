/**
 * The CI gate: limits evaluated against a report, and a strict reader for dive's `.dive-ci` file
 * (a small YAML subset: a `rules:` mapping of known keys to scalars). Comparisons follow dive's:
 * a rule fails when the figure is strictly beyond its limit.
 */
import { BallastError } from '../errors.js';
import { parseSize } from '../util/size.js';
import type { AnalysisReport } from './types.js';

export type CiRuleName = 'lowestEfficiency' | 'highestWastedBytes' | 'highestUserWastedPercent' | 'maxSize';

/** A limit per rule: a number, null when explicitly disabled, absent when not set. */
export type CiRules = Partial<Record<CiRuleName, number | null>>;

export interface CiResult {
  rule: CiRuleName;
  limit: number;
  actual: number;
  pass: boolean;
}

export const CI_RULE_NAMES: readonly CiRuleName[] = [
  'lowestEfficiency',
  'highestWastedBytes',
  'highestUserWastedPercent',
  'maxSize',
];

/** What dive applies when `--ci` is given without a value for a rule. */
export const DIVE_DEFAULT_RULES: CiRules = {
  lowestEfficiency: 0.9,
  highestWastedBytes: null,
  highestUserWastedPercent: 0.1,
};

/** Later sources win; a `null` (disabled) overrides a number. */
export function mergeCiRules(...sources: (CiRules | undefined)[]): CiRules {
  const out: CiRules = {};
  for (const source of sources) {
    if (!source) continue;
    for (const name of CI_RULE_NAMES) {
      const value = source[name];
      if (value !== undefined) out[name] = value;
    }
  }
  return out;
}

/** Evaluates each set rule, in a fixed order. `maxSize` is compared with totalBytes (see docs). */
export function evaluateCi(report: AnalysisReport, rules: CiRules): CiResult[] {
  const out: CiResult[] = [];
  for (const rule of CI_RULE_NAMES) {
    const limit = rules[rule];
    if (limit === undefined || limit === null) continue;
    let actual: number;
    let pass: boolean;
    switch (rule) {
      case 'lowestEfficiency':
        actual = report.efficiency;
        pass = actual >= limit;
        break;
      case 'highestWastedBytes':
        actual = report.wastedBytes;
        pass = actual <= limit;
        break;
      case 'highestUserWastedPercent':
        actual = report.userWastedPercent;
        pass = actual <= limit;
        break;
      case 'maxSize':
        actual = report.totalBytes;
        pass = actual <= limit;
        break;
    }
    out.push({ rule, limit, actual, pass });
  }
  return out;
}

/**
 * Parses one rule value as given on the command line or in a config file: `disabled` gives null;
 * ratios are numbers in 0..1; byte limits are sizes (`20MB`, `1.5GiB`, `512`).
 * Returns a message instead of throwing, so the caller can name the flag or the line.
 */
export function parseCiValue(rule: CiRuleName, text: string): number | null | string {
  const value = text.trim();
  if (value.toLowerCase() === 'disabled') return null;
  if (rule === 'highestWastedBytes' || rule === 'maxSize') {
    const size = parseSize(value);
    if (size === undefined)
      return `${rule} must be a size such as 20MB, 1.5GiB or 512, or "disabled"; got "${value}"`;
    return size;
  }
  if (!/^(\d+(\.\d*)?|\.\d+)$/.test(value)) {
    return `${rule} must be a ratio between 0 and 1, or "disabled"; got "${value}"`;
  }
  const ratio = Number(value);
  if (rule === 'lowestEfficiency' && ratio > 1)
    return `${rule} must be a ratio between 0 and 1; got ${value}`;
  return ratio;
}

/**
 * Reads a `.dive-ci` file:
 *
 *     rules:
 *       lowestEfficiency: 0.95
 *       highestWastedBytes: 20MB
 *       highestUserWastedPercent: disabled
 *
 * Comments (`#`), blank lines and quoted scalars are accepted; anything else (an unknown key, a
 * duplicate, a tab, a nested value, a list) is an error naming the line.
 */
export function parseCiConfig(text: string, source = '.dive-ci'): CiRules {
  const rules: CiRules = {};
  let inRules = false;
  let indent: number | undefined;
  let sawRules = false;
  const fail = (line: number, message: string): never => {
    throw new BallastError('USAGE', `${source}:${line}: ${message}`, {
      hint: `expected "rules:" followed by indented ${CI_RULE_NAMES.join(', ')}`,
    });
  };
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  lines.forEach((raw, i) => {
    const number = i + 1;
    const line = stripComment(raw.endsWith('\r') ? raw.slice(0, -1) : raw);
    if (line.trim() === '') return;
    if (line === '---' && !sawRules) return;
    if (/^\s*\t/.test(line) || line.includes('\t')) fail(number, 'tabs are not allowed in YAML indentation');
    const lead = line.length - line.trimStart().length;
    const match = /^([A-Za-z_][A-Za-z0-9_-]*)\s*:(?:\s+(.*))?$/.exec(line.trim());
    if (!match) fail(number, `cannot read "${line.trim()}": expected "key: value"`);
    const key = match?.[1] ?? '';
    const value = (match?.[2] ?? '').trim();
    if (lead === 0) {
      if (key !== 'rules') fail(number, `unknown key "${key}" (only "rules" is read)`);
      if (sawRules) fail(number, 'duplicate key "rules"');
      if (value !== '' && value !== '{}') fail(number, '"rules" must be followed by indented keys');
      sawRules = true;
      inRules = true;
      indent = undefined;
      return;
    }
    if (!inRules) fail(number, 'indented key outside "rules:"');
    if (indent === undefined) indent = lead;
    else if (lead !== indent) fail(number, `inconsistent indentation (expected ${indent} spaces)`);
    if (!(CI_RULE_NAMES as readonly string[]).includes(key)) {
      fail(number, `unknown rule "${key}" (known: ${CI_RULE_NAMES.join(', ')})`);
    }
    const rule = key as CiRuleName;
    if (rules[rule] !== undefined) fail(number, `duplicate rule "${rule}"`);
    if (value === '') fail(number, `rule "${rule}" has no value`);
    const parsed = parseCiValue(
      rule,
      unquote(value, () => fail(number, `unterminated quote in "${value}"`)),
    );
    if (typeof parsed === 'string') fail(number, parsed);
    rules[rule] = parsed as number | null;
  });
  return rules;
}

/** Drops a `#` comment that starts the line or follows a space, outside quotes. */
function stripComment(line: string): string {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quote) {
      if (ch === quote) quote = undefined;
    } else if (ch === '"' || ch === "'") quote = ch;
    else if (ch === '#' && (i === 0 || line[i - 1] === ' ')) return line.slice(0, i).trimEnd();
  }
  return line.trimEnd();
}

function unquote(value: string, bad: () => never): string {
  const first = value[0];
  if (first !== '"' && first !== "'") return value;
  if (value.length < 2 || value[value.length - 1] !== first) bad();
  return value.slice(1, -1);
}
