// Lets the MCP conformance suite's CLI run on Node 20, which has no fs.globSync.
//
// The bundle imports { globSync, ... } from "fs"; on Node 20 the named exports of a builtin's
// ESM facade are fixed when it first loads, so patching fs at start-up is too late. These
// module hooks answer every ESM import of "fs" with a module that re-exports node:fs and adds
// a globSync built on the `glob` package (installed beside the suite).
//   node --import ./globsync.mjs .tools/conformance/node_modules/.bin/conformance ...
import { register } from "node:module";
import { isMainThread } from "node:worker_threads";

const SHIM = new URL("?fs-with-globsync", import.meta.url).href;
const builtin = typeof process.getBuiltinModule === "function" ? process.getBuiltinModule("fs") : null;
if (isMainThread && !(builtin && typeof builtin.globSync === "function")) register(import.meta.url);

export async function resolve(specifier, context, next) {
  if ((specifier === "fs" || specifier === "node:fs") && context.parentURL !== SHIM) {
    return { url: SHIM, shortCircuit: true };
  }
  return next(specifier, context);
}

export async function load(url, context, next) {
  if (url !== SHIM) return next(url, context);
  const globFrom = JSON.stringify(process.env.CONFORMANCE_GLOB_FROM || import.meta.url);
  const source = `
import { createRequire } from "node:module";
import fs from "node:fs";
export * from "node:fs";
export default fs;
const { globSync: glob } = createRequire(${globFrom})("glob");
export function globSync(pattern, options = {}) {
  const { exclude, ...rest } = options;
  if (typeof exclude === "function") rest.ignore = { ignored: (p) => exclude(rest.withFileTypes ? p : p.relative()) };
  else if (Array.isArray(exclude)) rest.ignore = exclude;
  return glob(pattern, rest);
}
`;
  return { format: "module", source, shortCircuit: true };
}
