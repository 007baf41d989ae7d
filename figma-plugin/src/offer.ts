// What the panel offers to steer a job with: only what the model the job runs on can follow
// (GET /models: `can`), and why not where it cannot, as the studio's own form does.
import type { SketchMode, StudioModel } from "./api";

export interface SketchChoice {
  value: SketchMode;
  label: string;
}

export interface Offer {
  /** The model a job from the panel runs on (the studio's default), or null when it has none for this user. */
  model: StudioModel | null;
  sketchModes: SketchChoice[];
  references: boolean;
  /** Why the selection cannot be a sketch, or a reference ("" when it can). */
  sketchWhy: string;
  referenceWhy: string;
}

const MODES: (SketchChoice & { needs: string })[] = [
  { value: "drawing", label: "As drawn", needs: "sketch" },
  { value: "filled", label: "Filled", needs: "sketch" },
  { value: "canny", label: "Its edges (ControlNet)", needs: "control:canny" },
  { value: "tile", label: "Its layout (ControlNet tile)", needs: "control:tile" },
  { value: "depth", label: "Its depth (ControlNet)", needs: "control:depth" },
];

export function steeringOffer(models: StudioModel[]): Offer {
  const model = models.find((m) => m.default) ?? null;
  if (!model) {
    const why = "The studio's default model is not one you can use; ask the studio's staff.";
    return { model, sketchModes: [], references: false, sketchWhy: why, referenceWhy: why };
  }
  const sketchModes = MODES.filter((m) => model.can.includes(m.needs)).map(({ value, label }) => ({ value, label }));
  const references = model.can.includes("references");
  const able = (capability: string) =>
    models.filter((m) => m.can.some((c) => c === capability || c.startsWith(`${capability}:`))).map((m) => m.name);
  const others = (names: string[]) => (names.length ? `; in the studio, ${names.join(", ")} can` : "");
  return {
    model,
    sketchModes,
    references,
    sketchWhy: sketchModes.length
      ? ""
      : `${model.name} cannot start from a sketch${others([...new Set([...able("sketch"), ...able("control")])])}.`,
    referenceWhy: references ? "" : `${model.name} cannot take style references${others(able("references"))}.`,
  };
}
