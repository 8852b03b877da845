import { BallastError } from '../errors.js';
import type { Descriptor, Platform } from './digest.js';

export interface PlatformSpec {
  os: string;
  architecture: string;
  variant: string | undefined;
}

const NODE_TO_OCI_ARCH: Record<string, string> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
  mips: 'mips',
  mipsel: 'mipsle',
};

/** Parses `os/arch[/variant]`. */
export function parsePlatform(text: string): PlatformSpec {
  const parts = text.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9._-]+$/i.test(p))) {
    throw new BallastError('PLATFORM_INVALID', `invalid platform "${text}"`, {
      hint: 'write os/arch[/variant], for example linux/amd64 or linux/arm/v7',
      exitCode: 2,
    });
  }
  const [os = '', architecture = '', variant] = parts;
  return normalisePlatform({ os: os.toLowerCase(), architecture: architecture.toLowerCase(), variant });
}

/** containerd's normalisation: `aarch64` is `arm64`, `arm64/v8` is `arm64`, `x86_64` is `amd64`. */
export function normalisePlatform(platform: PlatformSpec): PlatformSpec {
  let { architecture, variant } = platform;
  if (architecture === 'x86_64' || architecture === 'x86-64') architecture = 'amd64';
  if (architecture === 'aarch64') architecture = 'arm64';
  if (architecture === 'arm64' && (variant === 'v8' || variant === '8')) variant = undefined;
  if (architecture === 'armhf') {
    architecture = 'arm';
    variant = 'v7';
  }
  if (architecture === 'armel') {
    architecture = 'arm';
    variant = 'v6';
  }
  if (architecture === 'arm' && variant !== undefined && /^\d$/.test(variant)) variant = `v${variant}`;
  if (architecture === 'amd64' && variant === 'v1') variant = undefined;
  return { os: platform.os, architecture, variant };
}

/** The platform of this machine: images are Linux images even on other hosts, as docker assumes. */
export function hostPlatform(): PlatformSpec {
  const architecture = NODE_TO_OCI_ARCH[process.arch] ?? process.arch;
  let variant: string | undefined;
  if (architecture === 'arm') {
    const armVersion = (process.config.variables as Record<string, unknown>).arm_version;
    variant = `v${typeof armVersion === 'string' || typeof armVersion === 'number' ? armVersion : '7'}`;
  }
  return { os: 'linux', architecture, variant };
}

export function formatPlatform(platform: Partial<Platform> | PlatformSpec | undefined): string {
  if (!platform) return 'unknown';
  const base = `${platform.os ?? 'unknown'}/${platform.architecture ?? 'unknown'}`;
  return platform.variant ? `${base}/${platform.variant}` : base;
}

/** Attestation manifests (BuildKit provenance, SBOMs) are index entries that are not images. */
export function isAttestation(entry: Descriptor): boolean {
  if (entry.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest') return true;
  return entry.platform?.os === 'unknown' && entry.platform?.architecture === 'unknown';
}

/**
 * Chooses the index entry for a platform as docker does: os and architecture must match; a requested
 * variant must match; with no variant requested the entry without one (or the highest for arm) wins.
 */
export function selectPlatform(
  entries: readonly Descriptor[],
  wanted: PlatformSpec,
  what = 'index',
): Descriptor {
  const want = normalisePlatform(wanted);
  const candidates = entries.filter((entry) => {
    if (isAttestation(entry) || !entry.platform) return false;
    const have = normalisePlatform({
      os: entry.platform.os,
      architecture: entry.platform.architecture,
      variant: entry.platform.variant,
    });
    if (have.os !== want.os || have.architecture !== want.architecture) return false;
    return want.variant === undefined || have.variant === want.variant;
  });
  if (candidates.length === 0) {
    const available = entries.filter((e) => !isAttestation(e)).map((e) => formatPlatform(e.platform));
    throw new BallastError('PLATFORM_NOT_FOUND', `${what} has no image for ${formatPlatform(want)}`, {
      hint: available.length
        ? `available: ${[...new Set(available)].join(', ')}; choose one with --platform`
        : undefined,
    });
  }
  if (candidates.length === 1 || want.variant !== undefined) return candidates[0]!;
  const plain = candidates.find((c) => !c.platform?.variant);
  if (plain) return plain;
  return [...candidates].sort((a, b) =>
    (b.platform?.variant ?? '').localeCompare(a.platform?.variant ?? ''),
  )[0]!;
}
