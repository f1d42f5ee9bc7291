#!/usr/bin/env node
// Entry point of `tokenmeter-fake-llm` (and `npm run fake-llm`): runs the CLI on this
// process's arguments, output and signals.

import { runCli } from './run-cli.js';

const result = await runCli(process.argv.slice(2));
if (typeof result === 'number') process.exitCode = result;
