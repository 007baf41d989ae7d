import assert from "node:assert/strict";
import { test } from "node:test";

import { fitWithin, layerName, placeImage, placeVector } from "../src/canvas";
import { asPluginApi, fakeFigma } from "./fake-figma";

test("an image is placed as a filled rectangle centred in the viewport and selected", () => {
  const figma = fakeFigma({ x: 500, y: 300 });
  const bytes = new Uint8Array([137, 80, 78, 71]);
  const rect = placeImage(asPluginApi(figma), { bytes, width: 1024, height: 512, name: "a key · seed 7" });
  assert.equal(rect.name, "a key · seed 7");
  assert.deepEqual([rect.width, rect.height, rect.x, rect.y], [1024, 512, -12, 44]);
  assert.deepEqual(rect.fills, [{ type: "IMAGE", imageHash: "hash-1", scaleMode: "FILL" }]);
  assert.equal(figma.images[0], bytes);
  assert.deepEqual(figma.currentPage.selection, [rect]);
  assert.equal(figma.currentPage.children.length, 1);
});

test("images larger than Figma's 4096 px limit are scaled to fit, keeping the aspect ratio", () => {
  assert.deepEqual(fitWithin(8192, 4096), { width: 4096, height: 2048 });
  assert.deepEqual(fitWithin(1024, 1024), { width: 1024, height: 1024 });
  const figma = fakeFigma();
  const rect = placeImage(asPluginApi(figma), { bytes: new Uint8Array(), width: 6000, height: 3000, name: "wide" });
  assert.ok(Math.max(rect.width, rect.height) <= 4096);
});

test("layers are named after the description and the seed", () => {
  assert.equal(layerName("a flat blue circle icon", 42), "a flat blue circle icon · seed 42");
  assert.ok(layerName("x".repeat(100), 1).length < 75);
});

test("a traced icon is placed as editable vectors, named, centred in the viewport and selected", () => {
  const figma = fakeFigma({ x: 500, y: 300 });
  const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="256" height="128"><path d="M0 0h8v8H0z"/></svg>';
  const frame = placeVector(asPluginApi(figma), { svg, name: "a key · seed 7" });
  assert.equal(frame.name, "a key · seed 7");
  assert.deepEqual([frame.width, frame.height, frame.x, frame.y], [256, 128, 372, 236]);
  assert.deepEqual(figma.svgs, [svg]);
  assert.deepEqual(figma.currentPage.selection, [frame]);
  assert.equal(figma.images.length, 0);
});

test("an SVG Figma cannot read throws, and nothing is placed", () => {
  const figma = fakeFigma();
  assert.throws(() => placeVector(asPluginApi(figma), { svg: "<nonsense>", name: "x" }));
  assert.equal(figma.currentPage.children.length, 0);
});
