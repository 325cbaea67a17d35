// node validate.mjs FILE...: parse each AsyncAPI document with @asyncapi/parser (the reference parser:
// schema validation plus its Spectral rules); print every diagnostic; exit 1 if any is an error.
import { Parser, fromFile } from "@asyncapi/parser";

const SEVERITY = ["error", "warning", "info", "hint"];
const parser = new Parser();
let failed = false;
for (const path of process.argv.slice(2)) {
  const { document, diagnostics } = await fromFile(parser, path).parse();
  const errors = diagnostics.filter((d) => d.severity === 0);
  for (const d of diagnostics) {
    console.log(`${path}: ${SEVERITY[d.severity]} ${d.code} at /${d.path.join("/")}: ${d.message}`);
  }
  if (!document || errors.length) {
    failed = true;
    console.log(`${path}: INVALID (${errors.length} errors)`);
  } else {
    const channels = document.channels().length;
    const operations = document.operations().length;
    const messages = document.allMessages().length;
    console.log(`${path}: valid AsyncAPI ${document.version()} (${channels} channels, ${operations} operations, ` +
                `${messages} messages, ${diagnostics.length} diagnostics)`);
  }
}
process.exit(failed ? 1 : 0);
