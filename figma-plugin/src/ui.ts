// The plugin's panel: talks to the studio (with the user's token) and asks the main thread
// to store settings and to place images on the canvas.
import { complianceLabel, type Job, StudioApi, type StudioImage } from "./api";
import { type MainMessage, type Settings, type UiMessage, vectorsOn } from "./messages";
import { placeMessage } from "./place";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
let api: StudioApi | null = null;
let current: Settings | null = null; // as stored by the main thread
let lastJob: Job | null = null;
// The images in the grid by id: Figma may refuse an SVG, and the PNG is then placed instead.
const shown = new Map<string, { job: Job; image: StudioImage }>();

function send(message: UiMessage, transfer: Transferable[] = []): void {
  parent.postMessage({ pluginMessage: message }, "*", transfer);
}

function showError(error: unknown): void {
  $("error").textContent = error instanceof Error ? error.message : String(error);
}

window.onmessage = async (event: MessageEvent) => {
  const message = event.data?.pluginMessage as MainMessage | undefined;
  if (message?.type === "settings") await settingsChanged(message.settings);
  if (message?.type === "vector-refused") await placeBitmap(message.imageId);
};

async function settingsChanged(next: Settings | null): Promise<void> {
  const sameStudio = api && next && api.server === next.server && api.token === next.token;
  current = next;
  $<HTMLInputElement>("vectors").checked = vectorsOn(next);
  // Only the vectors toggle changed: keep the panel as it is.
  if (!sameStudio) await connect(next);
}

async function connect(settings: Settings | null): Promise<void> {
  $("error").textContent = "";
  $<HTMLInputElement>("server").value = settings?.server ?? "";
  $<HTMLInputElement>("token").value = settings?.token ?? "";
  if (!settings?.server || !settings.token) {
    $("setup").hidden = false;
    $("main").hidden = true;
    return;
  }
  api = new StudioApi(settings.server, settings.token);
  try {
    const types = await api.assetTypes();
    $<HTMLSelectElement>("asset-type").replaceChildren(
      ...types.map((t) => Object.assign(document.createElement("option"), { value: t.slug, textContent: t.name })),
    );
    $("setup").hidden = true;
    $("main").hidden = false;
    await showRecent();
  } catch (error) {
    $("setup").hidden = false;
    showError(error);
  }
}

async function run(start: Promise<Job>): Promise<void> {
  if (!api) return;
  $("error").textContent = "";
  $<HTMLButtonElement>("generate").disabled = true;
  $("progress").hidden = false;
  try {
    lastJob = await api.follow(await start, (job) => {
      $<HTMLProgressElement>("progress").value = Math.round(job.progress * 100);
      $("status").textContent = `${job.status} · ${job.images_done} of ${job.images_total}`;
    });
    if (lastJob.status !== "complete") throw new Error(`The job ${lastJob.status}: ${lastJob.error}`);
    $("notice").hidden = !lastJob.license_notice;
    $("notice").textContent = lastJob.license_notice ?? "";
    await showImages(lastJob);
    $("again").hidden = false;
    await showRecent();
  } catch (error) {
    showError(error);
  } finally {
    $<HTMLButtonElement>("generate").disabled = false;
    $("progress").hidden = true;
  }
}

async function showImages(job: Job): Promise<void> {
  for (const image of job.images) shown.set(image.id, { job, image });
  const figures = await Promise.all(job.images.map((image) => figure(job, image)));
  $("results").replaceChildren(...figures);
}

async function figure(job: Job, image: StudioImage): Promise<HTMLElement> {
  const node = document.createElement("figure");
  const img = Object.assign(document.createElement("img"), {
    src: URL.createObjectURL(await api!.thumbnail(image)),
    alt: `${job.description}, seed ${image.seed}`,
    title: "Click to place on the canvas",
  });
  // The panel shows the thumbnail; the canvas gets the SVG or the full PNG, fetched only when placed.
  img.onclick = async () => {
    try {
      send(await placeMessage(api!, job, image, vectorsOn(current)));
    } catch (error) {
      showError(error);
    }
  };
  if (image.has_alpha) node.classList.add("checker");
  const more = Object.assign(document.createElement("button"), { textContent: "More like this" });
  more.onclick = () => run(api!.moreLikeThis(image.id));
  const caption = document.createElement("figcaption");
  const score = Object.assign(document.createElement("span"), { textContent: complianceLabel(image) });
  score.className = image.compliance?.flagged ? "compliance flagged" : "compliance";
  const text = document.createElement("span");
  text.append(`seed ${image.seed}`, ...(score.textContent ? [document.createElement("br"), score] : []));
  caption.append(text, more);
  node.append(img, caption);
  return node;
}

async function placeBitmap(imageId: string): Promise<void> {
  const item = shown.get(imageId);
  if (!item) return;
  try {
    send(await placeMessage(api!, item.job, item.image, false));
  } catch (error) {
    showError(error);
  }
}

async function showRecent(): Promise<void> {
  const jobs = await api!.recent();
  $("recent").replaceChildren(
    ...jobs.map((job) => {
      const link = Object.assign(document.createElement("button"), { textContent: `${job.description} (${job.status})` });
      link.onclick = () => {
        lastJob = job;
        $("again").hidden = false;
        void showImages(job);
      };
      return link;
    }),
  );
}

$("save").onclick = () =>
  send({
    type: "save-settings",
    settings: {
      server: $<HTMLInputElement>("server").value.trim(),
      token: $<HTMLInputElement>("token").value.trim(),
      vectors: $<HTMLInputElement>("vectors").checked,
    },
  });
$<HTMLInputElement>("vectors").onchange = () =>
  current && send({ type: "save-settings", settings: { ...current, vectors: $<HTMLInputElement>("vectors").checked } });
$("settings").onclick = () => {
  $("setup").hidden = false;
  $("main").hidden = true;
};
$("generate").onclick = () => {
  const description = $<HTMLTextAreaElement>("description").value.trim();
  if (!description) return showError("Describe what you need.");
  void run(api!.submit($<HTMLSelectElement>("asset-type").value, description));
};
$("again").onclick = () => lastJob && void run(api!.regenerate(lastJob.id));

send({ type: "load-settings" });
