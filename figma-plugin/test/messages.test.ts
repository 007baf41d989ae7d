import assert from "node:assert/strict";
import { test } from "node:test";

import { handleMessage, vectorsOn } from "../src/messages";
import { asPluginApi, type FakeRect, fakeFigma } from "./fake-figma";

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
    type: "place", imageId: "i1", bytes: new Uint8Array([1]), width: 512, height: 512, description: "a paper plane", seed: 3,
  });
  assert.deepEqual(reply, { type: "placed", name: "a paper plane · seed 3", vector: false });
  assert.equal(fake.currentPage.children[0].name, "a paper plane · seed 3");
  assert.deepEqual(fake.notices, ["Placed “a paper plane · seed 3”"]);
});

const SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><path d="M0 0h8v8H0z"/></svg>';
const place = { type: "place", imageId: "i1", width: 64, height: 64, description: "a key", seed: 7 } as const;

test("a place message with an SVG puts editable vectors on the canvas", async () => {
  const fake = fakeFigma();
  const reply = await handleMessage(asPluginApi(fake), { ...place, svg: SVG });
  assert.deepEqual(reply, { type: "placed", name: "a key · seed 7", vector: true });
  assert.equal((fake.currentPage.children[0] as { type: string }).type, "FRAME");
  assert.deepEqual(fake.notices, ["Placed “a key · seed 7” as vectors"]);
});

test("an SVG Figma refuses falls back to the image fill sent with it", async () => {
  const fake = fakeFigma();
  const reply = await handleMessage(asPluginApi(fake), { ...place, svg: "<broken", bytes: new Uint8Array([1]) });
  assert.deepEqual(reply, { type: "placed", name: "a key · seed 7", vector: false });
  assert.equal(fake.images.length, 1);
  assert.deepEqual((fake.currentPage.children[0] as FakeRect).fills, [{ type: "IMAGE", imageHash: "hash-1", scaleMode: "FILL" }]);
});

test("an SVG Figma refuses without an image asks the panel for the PNG", async () => {
  const fake = fakeFigma();
  assert.deepEqual(await handleMessage(asPluginApi(fake), { ...place, svg: "<broken" }), { type: "vector-refused", imageId: "i1" });
  assert.equal(fake.currentPage.children.length, 0);
});

test("inserting icons as vectors is on unless turned off, and kept with the settings", async () => {
  assert.equal(vectorsOn(null), true);
  assert.equal(vectorsOn({ server: "s", token: "t" }), true);
  assert.equal(vectorsOn({ server: "s", token: "t", vectors: false }), false);
  const figma = asPluginApi(fakeFigma());
  const settings = { server: "s", token: "t", vectors: false };
  await handleMessage(figma, { type: "save-settings", settings });
  assert.deepEqual(await handleMessage(figma, { type: "load-settings" }), { type: "settings", settings });
});
