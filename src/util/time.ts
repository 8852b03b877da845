const RFC3339 = /^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * Writes an RFC 3339 timestamp as Go's encoding/json writes a time.Time (RFC3339Nano): trailing zeros of
 * the fraction dropped, a zero offset written `Z`. skopeo prints `Created` this way. Returns undefined
 * for text that is not RFC 3339.
 */
export function goTimeString(text: string): string | undefined {
  const match = RFC3339.exec(text);
  if (!match) return undefined;
  const [, date, time, fraction, zone = 'Z'] = match;
  const trimmed = fraction?.slice(0, 9).replace(/0+$/, '') ?? '';
  const offset = zone === 'Z' || zone === 'z' || zone === '+00:00' || zone === '-00:00' ? 'Z' : zone;
  return `${date}T${time}${trimmed ? `.${trimmed}` : ''}${offset}`;
}

/** "3 days ago", as docker prints CREATED (go-units HumanDuration). */
export function timeAgo(created: string | undefined, now: number = Date.now()): string {
  if (!created) return '';
  const then = Date.parse(created);
  if (Number.isNaN(then)) return '';
  return `${humanDuration(now - then)} ago`;
}

export function humanDuration(milliseconds: number): string {
  const seconds = Math.trunc(milliseconds / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.trunc(seconds / 60);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(milliseconds / 3_600_000);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.trunc(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.trunc(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24 / 30)} months`;
  return `${Math.trunc(milliseconds / 3_600_000 / 24 / 365)} years`;
}
