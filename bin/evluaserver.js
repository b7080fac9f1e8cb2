#!/usr/bin/env node
// Run the TypeScript source when Node can strip types and the source is here (a git checkout);
// an installed package (type stripping is refused under node_modules) runs the built dist/.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const source = new URL('../src/cli/evluaserver.ts', import.meta.url)
const useSource = Boolean(process.features.typescript) && existsSync(source) &&
  !fileURLToPath(source).split(/[\\/]/).includes('node_modules')
await import(useSource ? source.href : new URL('../dist/cli/evluaserver.js', import.meta.url).href)
