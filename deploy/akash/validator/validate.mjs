// Runs Akash's own SDL parser on one SDL and prints what the chain would get, as JSON.
// Usage: node validate.mjs deploy.yaml   (or the YAML on stdin)
// Output: {"ok": true, "groups": [...], "groupSpecs": [...]} or {"ok": false, "errors": ["..."]}.
// Exit status 0 when the SDL is valid, 1 when it is not, 2 on a usage error.
import { readFileSync } from "node:fs";
import { generateManifest } from "@akashnetwork/chain-sdk";
import yaml from "js-yaml";

const text = readFileSync(process.argv[2] ?? 0, "utf8");
const result = generateManifest(yaml.load(text));
// Resource quantities are protobuf bytes holding decimal text ("1000"): print them as that text.
const replacer = (_key, value) => {
  if (value instanceof Uint8Array) return new TextDecoder().decode(value);
  return typeof value === "bigint" ? value.toString() : value;
};
if (result.ok) {
  const { groups, groupSpecs } = result.value;
  process.stdout.write(JSON.stringify({ ok: true, groups, groupSpecs }, replacer));
  process.exit(0);
}
process.stdout.write(JSON.stringify({ ok: false, errors: result.value.map((e) => e.message ?? String(e)) }));
process.exit(1);
