// The plugin's panel: talks to the studio (with the user's token) and asks the main thread
// to store settings and to place images on the canvas.
import { type Job, StudioApi, type StudioImage } from "./api";
import type { MainMessage, Settings, UiMessage } from "./messages";

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
let api: StudioApi | null = null;
let lastJob: Job | null = null;

function send(message: UiMessage, transfer: Transferable[] = []): void {
  parent.postMessage({ pluginMessage: message }, "*", transfer);
}

function showError(error: unknown): void {
  $("error").textContent = error instanceof Error ? error.message : String(error);
}

window.onmessage = async (event: MessageEvent) => {
  const message = event.data?.pluginMessage as MainMessage | undefined;
  if (message?.type === "settings") await connect(message.settings);
};

async function connect(settings: Settings | null): Promise<void> {
  $("error").textContent = "";
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
  // The panel shows the thumbnail; the canvas gets the full PNG, fetched only when placed.
  img.onclick = async () => {
    try {
      const bytes = await api!.imageBytes(image);
      send({ type: "place", bytes, width: image.width, height: image.height, description: job.description, seed: image.seed });
    } catch (error) {
      showError(error);
    }
  };
  const more = Object.assign(document.createElement("button"), { textContent: "More like this" });
  more.onclick = () => run(api!.moreLikeThis(image.id));
  const caption = document.createElement("figcaption");
  caption.append(`seed ${image.seed}`, more);
  node.append(img, caption);
  return node;
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
    settings: { server: $<HTMLInputElement>("server").value.trim(), token: $<HTMLInputElement>("token").value.trim() },
  });
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
