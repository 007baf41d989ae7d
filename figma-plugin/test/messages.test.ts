import assert from "node:assert/strict";
import { test } from "node:test";

import { handleMessage } from "../src/messages";
import { asPluginApi, fakeFigma } from "./fake-figma";

test("settings are kept in the plugin's client storage", async () => {
  const figma = asPluginApi(fakeFigma());
  assert.deepEqual(await handleMessage(figma, { type: "load-settings" }), { type: "settings", settings: null });
  const settings = { server: "http://127.0.0.1:8000", token: "bst_x" };
  await handleMessage(figma, { type: "save-settings", settings });
  assert.deepEqual(await handleMessage(figma, { type: "load-settings" }), { type: "settings", settings });
});

test("a place message puts the image on the canvas and says so", async () => {
  const fake = fakeFigma();
  const reply = await handleMessage(asPluginApi(fake), {
    type: "place", bytes: new Uint8Array([1]), width: 512, height: 512, description: "a paper plane", seed: 3,
  });
  assert.deepEqual(reply, { type: "placed", name: "a paper plane · seed 3" });
  assert.equal(fake.currentPage.children[0].name, "a paper plane · seed 3");
  assert.deepEqual(fake.notices, ["Placed “a paper plane · seed 3”"]);
});
