/**
 * `ballast analyze` on real images from every transport (docker-archive:, oci:, docker-daemon:, a
 * registry): the per-layer bytes are `docker history`'s, the total is `docker image inspect`'s Size,
 * and every figure is the same whichever way the image was read.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  analyzeJson,
  type BuiltImage,
  type DeleteLaterFixture,
  deleteLaterFixture,
  dockerLayerSizes,
  ensureInDaemon,
  toolchainFixture,
} from '../support/analyze-fixtures.js';
import { type DockerDaemon, startDocker } from '../support/docker.js';
import { pushWithSkopeo, startRegistry, type TestRegistry } from '../support/registry.js';

let daemon: DockerDaemon;
let registry: TestRegistry;
let toolchain: BuiltImage;
let deleteLater: DeleteLaterFixture;

before(async () => {
  toolchain = await toolchainFixture();
  deleteLater = await deleteLaterFixture();
  daemon = await startDocker();
  await ensureInDaemon(daemon, toolchain);
  await ensureInDaemon(daemon, deleteLater);
  registry = await startRegistry();
  await pushWithSkopeo(registry, toolchain.ociRef, 'toolchain:1');
  await pushWithSkopeo(registry, deleteLater.ociRef, 'delete-later:1');
});

after(async () => {
  await registry?.stop();
  await daemon?.release();
});

// biome-ignore lint/suspicious/noExplicitAny: a report from the CLI's JSON
type Report = any;

/** What must not depend on the transport (digests and compressed sizes do: skopeo re-compresses). */
function figures(report: Report) {
  return {
    totalBytes: report.totalBytes,
    finalBytes: report.finalBytes,
    wastedBytes: report.wastedBytes,
    deletedBytes: report.deletedBytes,
    overwrittenBytes: report.overwrittenBytes,
    efficiency: report.efficiency,
    userWastedPercent: report.userWastedPercent,
    fileCount: report.fileCount,
    wastedCount: report.wastedCount,
    layers: report.layers.map((l: Report) => ({
      index: l.index,
      diffId: l.diffId,
      createdBy: l.createdBy,
      fileBytes: l.fileBytes,
      finalBytes: l.finalBytes,
      filesAdded: l.filesAdded,
      filesChanged: l.filesChanged,
      filesRemoved: l.filesRemoved,
      wastesBytes: l.wastesBytes,
      wastesOwnBytes: l.wastesOwnBytes,
      entries: l.entries,
    })),
    wasted: report.wasted,
    packages: report.packages,
    unowned: report.unowned,
    largestFiles: report.largestFiles,
    largestDirectories: report.largestDirectories,
    recommendations: report.recommendations.map((r: Report) => ({ id: r.id, bytes: r.bytes })),
    issues: report.issues,
    layerIssues: report.layerIssues,
  };
}

for (const which of ['toolchain', 'delete-later'] as const) {
  describe(`${which} image: the same figures from every source, equal to docker's`, () => {
    const image = () => (which === 'toolchain' ? toolchain : deleteLater);
    const reports = new Map<string, Report>();
    const read = async (transport: string): Promise<Report> => {
      const cached = reports.get(transport);
      if (cached) return cached;
      const refs: Record<string, string> = {
        'docker-archive': image().archiveRef,
        oci: image().ociRef,
        'docker-daemon': `docker-daemon:${image().name}`,
        registry: `${registry.host}/${which}:1`,
      };
      const { result, report } = await analyzeJson(refs[transport]!, [], { DOCKER_HOST: daemon.host });
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stderr, '');
      reports.set(transport, report);
      return report;
    };

    test('docker-archive: per-layer fileBytes are docker history sizes, totalBytes is docker Size', async () => {
      const report = await read('docker-archive');
      const sizes = await dockerLayerSizes(daemon, image());
      assert.deepEqual(
        report.layers.map((l: Report) => l.fileBytes),
        sizes,
      );
      const size = Number(
        (await daemon.docker(['image', 'inspect', '--format', '{{.Size}}', image().name])).trim(),
      );
      assert.equal(report.totalBytes, size);
      assert.equal(
        report.totalBytes,
        sizes.reduce((a, b) => a + b, 0),
      );
      assert.deepEqual(
        report.layers.map((l: Report) => l.diffId),
        image().diffIds,
      );
      assert.equal(report.wastedBytes, report.totalBytes - report.finalBytes);
      assert.equal(report.wastedBytes, report.deletedBytes + report.overwrittenBytes);
      assert.equal(
        report.layers.reduce((sum: number, l: Report) => sum + l.wastesBytes + l.wastesOwnBytes, 0),
        report.wastedBytes,
      );
    });

    for (const transport of ['oci', 'docker-daemon', 'registry']) {
      test(`${transport}: the same figures as the docker-archive`, async () => {
        const archive = await read('docker-archive');
        const other = await read(transport);
        assert.deepEqual(figures(other), figures(archive));
        assert.deepEqual(
          other.layers.map((l: Report) => l.fileBytes),
          await dockerLayerSizes(daemon, image()),
        );
      });
    }

    test('oci and registry: compressedBytes are the manifest sizes of the gzip blobs', async () => {
      const oci = await read('oci');
      const fromRegistry = await read('registry');
      assert.deepEqual(
        fromRegistry.layers.map((l: Report) => [l.digest, l.compressedBytes]),
        oci.layers.map((l: Report) => [l.digest, l.compressedBytes]),
      );
      for (const layer of oci.layers) {
        // skopeo wrote gzip layers: they differ from the diff IDs.
        assert.notEqual(layer.digest, layer.diffId);
        assert.ok(layer.compressedBytes > 0);
      }
    });
  });
}
