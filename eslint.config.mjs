// ESLint for the TypeScript sources (typescript-eslint's recommended rules; formatting is Prettier's).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      '.venv/**',
      'notebooks/executed/**',
      'figures/**',
      'runs/**',
      'models/**',
      '.gpu-bundle/**',
      '**/*.js',
      '**/*.cjs',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  prettier,
  {
    rules: {
      // Unused code is dead code; a leading underscore marks an argument kept for a signature.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // The library is typed end to end; tests and scripts may use `any` at their edges.
      '@typescript-eslint/no-explicit-any': 'warn',
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  { files: ['lib/**/*.ts'], rules: { '@typescript-eslint/no-explicit-any': 'error' } },
);
