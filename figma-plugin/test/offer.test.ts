import assert from "node:assert/strict";
import { test } from "node:test";

import type { StudioModel } from "../src/api";
import { steeringOffer } from "../src/offer";

const model = (key: string, can: string[], isDefault = false): StudioModel => ({
  key,
  name: key.toUpperCase(),
  default: isDefault,
  can,
});

test("the panel offers the sketch modes and references the default model can follow, no more", () => {
  const offer = steeringOffer([
    model("sdxl", ["sketch", "references", "control:canny", "control:depth"], true),
    model("demo", ["sketch"]),
  ]);
  assert.deepEqual(
    offer.sketchModes.map((m) => m.value),
    ["drawing", "filled", "canny", "depth"],
  );
  assert.equal(offer.references, true);
  assert.equal(offer.sketchWhy + offer.referenceWhy, "");
});

test("a default model that takes neither says why and names the models that can", () => {
  const offer = steeringOffer([
    model("kontext", ["edit"], true),
    model("sdxl", ["sketch", "references", "control:canny"]),
    model("zimage", ["control:tile"]),
  ]);
  assert.deepEqual(offer.sketchModes, []);
  assert.equal(offer.references, false);
  assert.equal(offer.sketchWhy, "KONTEXT cannot start from a sketch; in the studio, SDXL, ZIMAGE can.");
  assert.equal(offer.referenceWhy, "KONTEXT cannot take style references; in the studio, SDXL can.");
});

test("a ControlNet-only model offers only its control modes", () => {
  const offer = steeringOffer([model("qwen", ["control:canny", "control:tile"], true)]);
  assert.deepEqual(
    offer.sketchModes.map((m) => m.value),
    ["canny", "tile"],
  );
  assert.equal(offer.referenceWhy, "QWEN cannot take style references.");
});

test("without a default model this user may use, nothing is offered and the panel says so", () => {
  const offer = steeringOffer([model("sdxl", ["sketch"])]);
  assert.equal(offer.model, null);
  assert.match(offer.sketchWhy, /default model is not one you can use/);
});
