/**
 * Sizes as docker writes them (go-units HumanSize): decimal units, three significant digits
 * with trailing zeros trimmed (Go's `%.3g`), e.g. `164MB`, `8.48kB`, `0B`.
 */
const UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];

export function humanSize(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${trimZeros(value.toPrecision(3))}${UNITS[unit]}`;
}

/** Go's %g: trailing zeros trimmed, exponent written with a sign and two digits (`1e+03`). */
function trimZeros(text: string): string {
  const [mantissa = '', exponent] = text.split('e');
  const trimmed = mantissa.includes('.') ? mantissa.replace(/\.?0+$/, '') : mantissa;
  if (exponent === undefined) return trimmed;
  const sign = exponent.startsWith('-') ? '-' : '+';
  return `${trimmed}e${sign}${exponent.replace(/^[-+]/, '').padStart(2, '0')}`;
}

const SIZE_PATTERN = /^(\d+(?:\.\d+)?)\s*([kmgtp]?i?b?)?$/i;
const FACTORS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1e3,
  kb: 1e3,
  m: 1e6,
  mb: 1e6,
  g: 1e9,
  gb: 1e9,
  t: 1e12,
  tb: 1e12,
  p: 1e15,
  pb: 1e15,
  ki: 1024,
  kib: 1024,
  mi: 1024 ** 2,
  mib: 1024 ** 2,
  gi: 1024 ** 3,
  gib: 1024 ** 3,
  ti: 1024 ** 4,
  tib: 1024 ** 4,
  pi: 1024 ** 5,
  pib: 1024 ** 5,
};

/** Parses `20MB`, `1.5GiB`, `512` (bytes). Returns undefined for anything else. */
export function parseSize(text: string): number | undefined {
  const match = SIZE_PATTERN.exec(text.trim());
  if (!match) return undefined;
  const factor = FACTORS[(match[2] ?? '').toLowerCase()];
  if (factor === undefined) return undefined;
  return Math.round(Number(match[1]) * factor);
}
