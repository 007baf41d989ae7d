// What the UI (an iframe that talks to the studio) and the main thread (which owns the canvas
// and the plugin's storage) say to each other.
import { CanvasRefusal, exportSelection, layerName, placeImage, placeVector, selectedStudioImage } from "./canvas";

export interface Settings {
  server: string;
  token: string;
  /** Insert icons as vectors: traced images go on the canvas as editable paths (absent: on). */
  vectors?: boolean;
}

/** What to place: the traced SVG (editable vectors), the PNG's bytes (an image fill), or both. */
export interface PlaceMessage {
  type: "place";
  imageId: string;
  svg?: string;
  bytes?: Uint8Array;
  width: number;
  height: number;
  description: string;
  seed: number;
  /** An edit's result goes where the image it edits is, in its place. */
  replaceNodeId?: string;
}

/** What the selection is for: the job's sketch, or one of its style references. */
export type Purpose = "sketch" | "reference";

export type UiMessage =
  | { type: "load-settings" }
  | { type: "save-settings"; settings: Settings }
  | PlaceMessage
  | { type: "notify"; text: string; error?: boolean }
  | { type: "export-selection"; purpose: Purpose }
  | { type: "edit-target" }
  | { type: "close" };

export type MainMessage =
  | { type: "settings"; settings: Settings | null }
  | { type: "placed"; name: string; vector: boolean }
  // Figma could not read the SVG and no PNG came with it: the UI sends the PNG instead.
  | { type: "vector-refused"; imageId: string }
  | { type: "selection"; purpose: Purpose; bytes: Uint8Array; name: string }
  | { type: "edit-target"; imageId: string; nodeId: string }
  // Something on the canvas the designer should change first (nothing selected...).
  | { type: "refused"; text: string };

export const vectorsOn = (settings: Settings | null): boolean => settings?.vectors !== false;

const SETTINGS_KEY = "brand-studio-settings";

/** Handles one message from the UI; returns the reply, if any. */
export async function handleMessage(figmaApi: PluginAPI, message: UiMessage): Promise<MainMessage | null> {
  switch (message.type) {
    case "load-settings":
      return { type: "settings", settings: (await figmaApi.clientStorage.getAsync(SETTINGS_KEY)) ?? null };
    case "save-settings":
      await figmaApi.clientStorage.setAsync(SETTINGS_KEY, message.settings);
      return { type: "settings", settings: message.settings };
    case "place":
      return place(figmaApi, message);
    case "notify":
      figmaApi.notify(message.text, { error: message.error ?? false });
      return null;
    case "export-selection":
      return refusalsAsReplies(async () => ({ type: "selection", purpose: message.purpose, ...(await exportSelection(figmaApi)) }));
    case "edit-target":
      return refusalsAsReplies(async () => ({ type: "edit-target", ...selectedStudioImage(figmaApi) }));
    case "close":
      figmaApi.closePlugin();
      return null;
  }
}

async function refusalsAsReplies(reply: () => Promise<MainMessage>): Promise<MainMessage> {
  try {
    return await reply();
  } catch (error) {
    if (error instanceof CanvasRefusal) return { type: "refused", text: error.message };
    throw error;
  }
}

function place(figmaApi: PluginAPI, message: PlaceMessage): MainMessage {
  const name = layerName(message.description, message.seed);
  const where = { imageId: message.imageId, replaceNodeId: message.replaceNodeId };
  if (message.svg !== undefined) {
    try {
      placeVector(figmaApi, { svg: message.svg, name, ...where });
      figmaApi.notify(`Placed “${name}” as vectors`);
      return { type: "placed", name, vector: true };
    } catch {
      if (!message.bytes) return { type: "vector-refused", imageId: message.imageId };
    }
  }
  if (!message.bytes) throw new Error("There was nothing to place.");
  placeImage(figmaApi, { bytes: message.bytes, width: message.width, height: message.height, name, ...where });
  figmaApi.notify(`Placed “${name}”`);
  return { type: "placed", name, vector: false };
}
