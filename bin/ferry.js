#!/usr/bin/env node
// The installed `ferry` command: runs the compiled CLI (built by `npm run build`, also on `npm install`).
import('../dist/cli/main.js').catch((error) => {
  if (error && error.code === 'ERR_MODULE_NOT_FOUND') {
    console.error('ferry: the build output is missing; run `npm run build` first.');
    process.exit(1);
  }
  throw error;
});
