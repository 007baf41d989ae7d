// What the UI (an iframe that talks to the studio) and the main thread (which owns the canvas
// and the plugin's storage) say to each other.
import { layerName, placeImage } from "./canvas";

export interface Settings {
  server: string;
  token: string;
}

export type UiMessage =
  | { type: "load-settings" }
  | { type: "save-settings"; settings: Settings }
  | { type: "place"; bytes: Uint8Array; width: number; height: number; description: string; seed: number }
  | { type: "notify"; text: string; error?: boolean }
  | { type: "close" };

export type MainMessage = { type: "settings"; settings: Settings | null } | { type: "placed"; name: string };

const SETTINGS_KEY = "brand-studio-settings";

/** Handles one message from the UI; returns the reply, if any. */
export async function handleMessage(figmaApi: PluginAPI, message: UiMessage): Promise<MainMessage | null> {
  switch (message.type) {
    case "load-settings":
      return { type: "settings", settings: (await figmaApi.clientStorage.getAsync(SETTINGS_KEY)) ?? null };
    case "save-settings":
      await figmaApi.clientStorage.setAsync(SETTINGS_KEY, message.settings);
      return { type: "settings", settings: message.settings };
    case "place": {
      const name = layerName(message.description, message.seed);
      placeImage(figmaApi, { bytes: message.bytes, width: message.width, height: message.height, name });
      figmaApi.notify(`Placed “${name}”`);
      return { type: "placed", name };
    }
    case "notify":
      figmaApi.notify(message.text, { error: message.error ?? false });
      return null;
    case "close":
      figmaApi.closePlugin();
      return null;
  }
}
