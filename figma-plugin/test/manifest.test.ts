import assert from "node:assert/strict";
import { test } from "node:test";

import { pluginManifest } from "../src/manifest";

test("the plugin may reach the configured studio and nothing else", () => {
  const manifest = pluginManifest("https://studio.example.com/some/path") as { networkAccess: Record<string, string[]> };
  assert.deepEqual(manifest.networkAccess.allowedDomains, ["https://studio.example.com"]);
  assert.equal(manifest.networkAccess.devAllowedDomains, undefined);
});

test("a loopback studio is a development domain, as Figma requires", () => {
  const manifest = pluginManifest("http://127.0.0.1:8000") as { networkAccess: Record<string, string[]> };
  assert.deepEqual(manifest.networkAccess.allowedDomains, ["none"]);
  assert.deepEqual(manifest.networkAccess.devAllowedDomains, ["http://127.0.0.1:8000"]);
});
