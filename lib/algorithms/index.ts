/**
 * The sampling algorithms, one import for notebooks and scripts:
 * `import * as A from '../dist/lib/algorithms'`.
 */
export * from './loops';
export * from './editing';
export * from './illusions';
export { stridedTimesteps, leadingTimesteps, fullChainTimesteps, toClean } from '../schedulers/timesteps';
export { gaussianBlur, highPass, flipVertical, gaussianKernel1d, blurMatrix, scaledBlur, type BlurOptions } from '../image/filters';
export { cfgNoise, cfgPredict, guidanceFor } from '../guidance/cfg';
