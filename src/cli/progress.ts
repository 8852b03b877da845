import type { Writable } from 'node:stream';
import { humanSize } from '../util/size.js';

/** Progress bars on stderr: one per item in flight and a total, redrawn at most every 100 ms. */
export interface Progress {
  start(id: string, label: string, total: number): void;
  update(id: string, bytes: number): void;
  done(id: string): void;
  /** Adds to the total when work is known late (more layers, another image). */
  addTotal(bytes: number): void;
  /** Clears the bars; call before printing results. */
  stop(): void;
}

const SILENT: Progress = { start() {}, update() {}, done() {}, addTotal() {}, stop() {} };
const BAR_WIDTH = 24;
const MAX_BARS = 8;

interface Bar {
  label: string;
  total: number;
  bytes: number;
}

/**
 * Bars are drawn only on a terminal and never with `--quiet`: escape codes in a pipe or a CI log
 * are noise. `NO_COLOR` leaves the bars (they have no colour) but is honoured by callers' colours.
 */
export function createProgress(
  stream: Writable & { isTTY?: boolean; columns?: number },
  quiet: boolean,
): Progress {
  if (quiet || !stream.isTTY) return SILENT;
  const bars = new Map<string, Bar>();
  let total = 0;
  let finished = 0;
  let drawnLines = 0;
  let timer: NodeJS.Timeout | undefined;
  const started = Date.now();

  const bar = (fraction: number) => {
    const filled = Math.max(0, Math.min(BAR_WIDTH, Math.round(fraction * BAR_WIDTH)));
    return `[${'='.repeat(filled)}${' '.repeat(BAR_WIDTH - filled)}]`;
  };
  const line = (label: string, bytes: number, size: number) => {
    const width = Math.max(20, (stream.columns ?? 80) - BAR_WIDTH - 28);
    const name = label.length > width ? `${label.slice(0, width - 1)}…` : label.padEnd(width);
    const percent = size > 0 ? `${Math.floor((bytes / size) * 100)}%`.padStart(4) : '    ';
    return `${name} ${bar(size > 0 ? bytes / size : 0)} ${percent} ${humanSize(bytes)}/${humanSize(size)}`;
  };
  const draw = () => {
    timer = undefined;
    const lines = [...bars.values()].slice(0, MAX_BARS).map((b) => line(b.label, b.bytes, b.total));
    const inFlight = [...bars.values()].reduce((sum, b) => sum + b.bytes, 0);
    const seconds = (Date.now() - started) / 1000;
    const rate = seconds > 0 ? `${humanSize((finished + inFlight) / seconds)}/s` : '';
    lines.push(`${line('total', finished + inFlight, total)} ${rate}`);
    let out = drawnLines > 0 ? `\x1b[${drawnLines}A` : '';
    for (const text of lines) out += `\x1b[2K${text}\n`;
    for (let extra = lines.length; extra < drawnLines; extra++) out += '\x1b[2K\n';
    const written = Math.max(lines.length, drawnLines);
    if (written > lines.length) out += `\x1b[${written - lines.length}A`;
    drawnLines = lines.length;
    stream.write(out);
  };
  const schedule = () => {
    timer ??= setTimeout(draw, 100);
  };
  return {
    start(id, label, size) {
      bars.set(id, { label, total: size, bytes: 0 });
      schedule();
    },
    update(id, bytes) {
      const b = bars.get(id);
      if (b) b.bytes = bytes;
      schedule();
    },
    done(id) {
      const b = bars.get(id);
      if (b) finished += b.total;
      bars.delete(id);
      schedule();
    },
    addTotal(bytes) {
      total += bytes;
      schedule();
    },
    stop() {
      if (timer) clearTimeout(timer);
      timer = undefined;
      if (drawnLines > 0) {
        let out = `\x1b[${drawnLines}A`;
        for (let i = 0; i < drawnLines; i++) out += '\x1b[2K\n';
        out += `\x1b[${drawnLines}A`;
        stream.write(out);
      }
      drawnLines = 0;
    },
  };
}
