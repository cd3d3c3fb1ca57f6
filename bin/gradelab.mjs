#!/usr/bin/env node
// Runs the TypeScript CLI directly through tsx, so a fresh `npm ci` needs no build step.
import { register } from 'tsx/esm/api';

register();
const { main, interruptMessage } = await import('../src/cli/main.ts');
const { installInterruptHandlers } = await import('../src/core/index.ts');
const args = process.argv.slice(2);
installInterruptHandlers(() => interruptMessage(args));
process.exitCode = await main(args);
