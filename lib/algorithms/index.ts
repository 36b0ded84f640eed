/**
 * The sampling algorithms, one import for notebooks and scripts:
 * `import * as A from '../dist/lib/algorithms'`.
 */
export * from './loops';
export * from './editing';
export * from './illusions';
export { stridedTimesteps, leadingTimesteps, fullChainTimesteps, toClean } from '../schedulers/timesteps';
export { gaussianBlur, highPass, gaussianKernel1d, blurMatrix, scaledBlur, type BlurOptions } from '../image/filters';
export {
  flipVertical,
  rotate180,
  rotate90,
  rotate270,
  negate,
  transposeImage,
  VIEWS,
  viewByName,
  type View,
  type ViewName,
} from '../image/views';
export { FlowMatchEulerScheduler, flowTimesteps, FLOW_STEP_SIZE } from '../schedulers/flowMatching';
export { DDPMScheduler } from '../schedulers/ddpm';
export type { Scheduler } from '../schedulers/scheduler';
export { cfgNoise, cfgPredict, guidanceFor, flowGuidanceScale } from '../guidance/cfg';
