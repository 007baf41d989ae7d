// Builds the plugin: dist/code.js (main thread), dist/ui.html (the panel, script inlined) and
// manifest.json, whose network access is limited to the studio's address (STUDIO_URL).
// `node build.mjs --tests` bundles the tests for Node's test runner instead.
import { build } from "esbuild";
import { readFileSync, writeFileSync, mkdirSync, readdirSync } from "node:fs";

const studio = new URL(process.env.STUDIO_URL ?? "http://127.0.0.1:8000").origin;

if (process.argv.includes("--tests")) {
  const tests = readdirSync("test").filter((f) => f.endsWith(".test.ts")).map((f) => `test/${f}`);
  await build({ entryPoints: tests, bundle: true, platform: "node", format: "esm", outdir: "test-dist", outExtension: { ".js": ".mjs" } });
} else {
  mkdirSync("dist", { recursive: true });
  await build({ entryPoints: ["src/code.ts"], bundle: true, target: "es2017", outfile: "dist/code.js" });
  const ui = await build({ entryPoints: ["src/ui.ts"], bundle: true, target: "es2020", write: false });
  const script = ui.outputFiles[0].text.replaceAll("</script", "<\\/script");
  writeFileSync("dist/ui.html", readFileSync("src/ui.html", "utf8").replace("/*UI_SCRIPT*/", () => script));
  const bundled = await build({ entryPoints: ["src/manifest.ts"], bundle: true, format: "esm", write: false });
  const { pluginManifest } = await import(`data:text/javascript,${encodeURIComponent(bundled.outputFiles[0].text)}`);
  const manifest = pluginManifest(studio);
  writeFileSync("manifest.json", JSON.stringify(manifest, null, 2) + "\n");
  console.log(`Built dist/code.js, dist/ui.html and manifest.json (network access: ${studio})`);
}
