/**
 * Package databases: parsers for dpkg (status, status.d/, info/*.list) and apk (installed), and the
 * attribution of the final filesystem's bytes to packages. rpm databases (sqlite, Berkeley DB, ndb)
 * are detected but not read: that needs a database library, and this module reads text only.
 */

export interface DpkgStanza {
  name: string;
  version: string;
  architecture: string | null;
  /** The Status field's third word (`installed`, `config-files`, ...); null when absent (distroless). */
  state: string | null;
  essential: boolean;
  priority: string | null;
  /** Installed-Size in bytes (the field is in KiB). */
  installedSize: number | null;
}

/** Splits a deb822 text into stanzas of field -> value (continuation lines are dropped). */
export function parseDeb822(text: string): Map<string, string>[] {
  const stanzas: Map<string, string>[] = [];
  let fields = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') {
      if (fields.size > 0) stanzas.push(fields);
      fields = new Map();
      continue;
    }
    if (line.startsWith(' ') || line.startsWith('\t') || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    fields.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
  }
  if (fields.size > 0) stanzas.push(fields);
  return stanzas;
}

export function parseDpkgStatus(text: string): DpkgStanza[] {
  const out: DpkgStanza[] = [];
  for (const fields of parseDeb822(text)) {
    const name = fields.get('package');
    if (!name) continue;
    const status = fields.get('status');
    const size = fields.get('installed-size');
    const kib = size !== undefined && /^\d+$/.test(size) ? Number(size) * 1024 : null;
    out.push({
      name,
      version: fields.get('version') ?? '',
      architecture: fields.get('architecture') ?? null,
      state: status === undefined ? null : (status.split(/\s+/)[2] ?? null),
      essential: (fields.get('essential') ?? '').toLowerCase() === 'yes',
      priority: fields.get('priority') ?? null,
      installedSize: kib,
    });
  }
  return out;
}

/** A dpkg .list (one absolute path a line) or .md5sums (`<md5>  <path>`) file: the paths, relative. */
export function parseFileList(text: string, md5sums = false): string[] {
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    let line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (md5sums) {
      const space = line.search(/\s/);
      if (space < 0) continue;
      line = line.slice(space).trimStart();
    }
    const path = line.replace(/^\/+/, '').replace(/\/+$/, '');
    if (path === '' || path === '.') continue;
    out.push(path);
  }
  return out;
}

export interface ApkPackage {
  name: string;
  version: string;
  architecture: string | null;
  installedSize: number | null;
  files: string[];
}

/** lib/apk/db/installed: stanzas of `X:value` lines; `F:` names a directory, `R:` a file in it. */
export function parseApkInstalled(text: string): ApkPackage[] {
  const out: ApkPackage[] = [];
  let current: ApkPackage | undefined;
  let dir = '';
  const flush = () => {
    if (current?.name) out.push(current);
    current = undefined;
    dir = '';
  };
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line === '') {
      flush();
      continue;
    }
    if (line.length < 2 || line[1] !== ':') continue;
    current ??= { name: '', version: '', architecture: null, installedSize: null, files: [] };
    const value = line.slice(2);
    switch (line[0]) {
      case 'P':
        current.name = value;
        break;
      case 'V':
        current.version = value;
        break;
      case 'A':
        current.architecture = value;
        break;
      case 'I':
        current.installedSize = /^\d+$/.test(value) ? Number(value) : null;
        break;
      case 'F':
        dir = value.replace(/^\/+|\/+$/g, '');
        break;
      case 'R':
        current.files.push(dir === '' ? value : `${dir}/${value}`);
        break;
    }
  }
  flush();
  return out;
}

/** rpm database files that ballast recognises but does not read. */
export const RPM_DATABASES = [
  'var/lib/rpm/rpmdb.sqlite',
  'usr/lib/sysimage/rpm/rpmdb.sqlite',
  'var/lib/rpm/Packages',
  'var/lib/rpm/Packages.db',
  'usr/lib/sysimage/rpm/Packages.db',
];

/** Debian's toolchain and build-only packages (dependencies shared with runtime tools are left out). */
const TOOLCHAIN_DEB = [
  /^(gcc|g\+\+|cpp|gfortran|gccgo|gnat)(-\d+)?$/,
  /^(gcc|g\+\+|cpp|gfortran)(-\d+)?-[a-z0-9_-]+-linux-gnu[a-z]*$/,
  /^(clang|llvm|lld|lldb)(-\d+)?(-(dev|tools|runtime|linker-tools))?$/,
  /^libclang(-cpp)?[\d.]*(-\d+)?(-dev)?$/,
  /^libllvm\d+$/,
  /^(make|make-guile|cmake|cmake-data|ninja-build|meson|autoconf|automake|libtool|bison|flex|m4)$/,
  /^(build-essential|dpkg-dev|pkg-config|pkgconf|pkgconf-bin|patch)$/,
  /^binutils(-[a-z0-9_-]+)?$/,
  /^lib(binutils|ctf\d*|ctf-nobfd\d*|gprofng\d*|sframe\d*|cc1-\d+|isl\d+|mpc\d+)$/,
  /^lib(asan|tsan|lsan|ubsan|hwasan|itm|quadmath)\d+$/,
  /^lib(gcc|stdc\+\+|objc|gfortran)-\d+-dev$/,
  /^(rustc|cargo|golang(-\d+(\.\d+)?)?(-go|-src)?|openjdk-\d+-jdk(-headless)?|default-jdk(-headless)?)$/,
  /^.+-dev$/,
];

const TOOLCHAIN_APK = [
  /^(gcc|g\+\+|clang\d*|llvm\d*|make|cmake|samurai|autoconf|automake|libtool|bison|flex|m4|patch)$/,
  /^(build-base|binutils|musl-dev|libc-dev|fortify-headers|pkgconf|isl\d*|mpc1|rust|cargo|go)$/,
  /^.+-dev$/,
];

export function isToolchainPackage(manager: 'dpkg' | 'apk' | 'rpm', name: string): boolean {
  const rules = manager === 'apk' ? TOOLCHAIN_APK : TOOLCHAIN_DEB;
  return rules.some((rule) => rule.test(name));
}
