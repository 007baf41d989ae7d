// What the UI (an iframe that talks to the studio) and the main thread (which owns the canvas
// and the plugin's storage) say to each other.
import { layerName, placeImage, placeVector } from "./canvas";

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
}

export type UiMessage =
  | { type: "load-settings" }
  | { type: "save-settings"; settings: Settings }
  | PlaceMessage
  | { type: "notify"; text: string; error?: boolean }
  | { type: "close" };

export type MainMessage =
  | { type: "settings"; settings: Settings | null }
  | { type: "placed"; name: string; vector: boolean }
  // Figma could not read the SVG and no PNG came with it: the UI sends the PNG instead.
  | { type: "vector-refused"; imageId: string };

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
    case "close":
      figmaApi.closePlugin();
      return null;
  }
}

function place(figmaApi: PluginAPI, message: PlaceMessage): MainMessage {
  const name = layerName(message.description, message.seed);
  if (message.svg !== undefined) {
    try {
      placeVector(figmaApi, { svg: message.svg, name });
      figmaApi.notify(`Placed “${name}” as vectors`);
      return { type: "placed", name, vector: true };
    } catch {
      if (!message.bytes) return { type: "vector-refused", imageId: message.imageId };
    }
  }
  if (!message.bytes) throw new Error("There was nothing to place.");
  placeImage(figmaApi, { bytes: message.bytes, width: message.width, height: message.height, name });
  figmaApi.notify(`Placed “${name}”`);
  return { type: "placed", name, vector: false };
}
