/**
 * How the engine judges a WebGPU adapter, and that the automatic choice never settles on a
 * software adapter (wasm is faster there) while a forced one is accepted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isSoftwareAdapter, describeAdapter, gpuDevicePresent } from '../../lib/engine/webgpu';
import { initEngine } from '../../lib/engine';

test('software adapters (lavapipe, SwiftShader) are told apart from hardware ones', () => {
  // What Dawn reports for Mesa 25 lavapipe here, and for SwiftShader.
  assert.ok(
    isSoftwareAdapter({
      vendor: 'mesa',
      architecture: 'software',
      device: 'llvmpipe-llvm-15-0-6-256-bits-',
      description: 'llvmpipe: Mesa 25.0.7',
    }),
  );
  assert.ok(
    isSoftwareAdapter({ vendor: 'google', architecture: '', device: 'swiftshader-device', description: 'SwiftShader Device (Subzero)' }),
  );
  // Hardware adapters as Dawn describes them on Vulkan / Metal.
  assert.ok(!isSoftwareAdapter({ vendor: 'nvidia', architecture: 'hopper', device: '', description: 'NVIDIA H100 80GB HBM3' }));
  assert.ok(!isSoftwareAdapter({ vendor: 'apple', architecture: 'metal-3', device: '', description: 'Apple M2' }));
  assert.ok(!isSoftwareAdapter({ vendor: 'amd', architecture: 'rdna-3', device: '', description: 'AMD Radeon RX 7900 XTX (RADV NAVI31)' }));
});

test('the adapter line names vendor, architecture, device, kind and limits', () => {
  const line = describeAdapter({
    vendor: 'nvidia',
    architecture: 'hopper',
    device: 'h100',
    description: 'NVIDIA H100',
    isSoftware: false,
    limits: { maxBufferSize: 2 ** 32, maxStorageBufferBindingSize: 2 ** 31, maxComputeWorkgroupStorageSize: 49152 },
  });
  for (const s of [
    'nvidia',
    'hopper',
    'h100',
    'NVIDIA H100',
    'hardware',
    'maxStorageBufferBindingSize 2147483648',
    'maxComputeWorkgroupStorageSize 49152',
  ]) {
    assert.ok(line.includes(s), `"${s}" in: ${line}`);
  }
});

test('the automatic choice does not take WebGPU without a GPU device, and says why', async (t) => {
  if (gpuDevicePresent()) {
    t.skip('this machine has a GPU device node: the automatic choice may rightly pick WebGPU');
    return;
  }
  const info = await initEngine({ engine: 'auto', quiet: true });
  assert.notEqual(info.name, 'webgpu');
  const why = info.skipped.find((s) => s.startsWith('webgpu:'));
  assert.ok(why && /no GPU device|software|adapter/.test(why), `skipped WebGPU with a reason: ${why}`);
});
