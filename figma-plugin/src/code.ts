// The plugin's main thread: opens the UI and does what it asks on the canvas.
import { handleMessage, type UiMessage } from "./messages";

figma.showUI(__html__, { width: 360, height: 560, themeColors: true });

figma.ui.onmessage = async (message: UiMessage) => {
  try {
    const reply = await handleMessage(figma, message);
    if (reply) figma.ui.postMessage(reply);
  } catch (error) {
    figma.notify(`Brand Studio: ${String(error)}`, { error: true });
  }
};
