// The plugin's manifest.json, written at build time for one studio address: the plugin may
// reach that address and nothing else.

export function pluginManifest(studioUrl: string): Record<string, unknown> {
  const origin = new URL(studioUrl).origin;
  const loopback = ["localhost", "127.0.0.1", "[::1]"].includes(new URL(studioUrl).hostname);
  return {
    name: "Brand Studio",
    id: "brand-studio-self-hosted",
    api: "1.0.0",
    main: "dist/code.js",
    ui: "dist/ui.html",
    editorType: ["figma"],
    documentAccess: "dynamic-page",
    // Figma takes plain-HTTP loopback addresses only as development domains.
    networkAccess: loopback
      ? { allowedDomains: ["none"], devAllowedDomains: [origin], reasoning: REASON }
      : { allowedDomains: [origin], reasoning: REASON },
  };
}

const REASON = "Generates images with the team's self-hosted Brand Studio at this address.";
