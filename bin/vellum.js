#!/usr/bin/env node
// The CLI entry point; the TypeScript sources are compiled to dist/ by `npm ci` (the `prepare` script).
import "../dist/cli/main.js";
