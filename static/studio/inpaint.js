// The inpaint page's mask editor: paint (or erase) over the image with a mouse, a pen or a
// finger (pointer events); Undo takes back the last stroke, Clear all of them. On submit the
// strokes go to the form's file input as a PNG (opaque where painted), so the page needs no
// other script and a mask file can be uploaded instead.
(() => {
  const editor = document.querySelector("[data-mask-editor]");
  if (!editor) {
    return;
  }
  const canvas = editor.querySelector("canvas");
  const context = canvas.getContext("2d");
  const form = editor.closest("form");
  const brush = form.querySelector("[data-brush]");
  const strokes = [];
  let tool = "paint";
  let current = null;

  const point = (event) => {
    const box = canvas.getBoundingClientRect();
    return [((event.clientX - box.left) * canvas.width) / box.width, ((event.clientY - box.top) * canvas.height) / box.height];
  };
  const draw = (stroke) => {
    context.globalCompositeOperation = stroke.tool === "erase" ? "destination-out" : "source-over";
    context.strokeStyle = "rgba(255, 64, 129, 1)";
    context.fillStyle = context.strokeStyle;
    context.lineWidth = stroke.width;
    context.lineCap = context.lineJoin = "round";
    context.beginPath();
    const [x0, y0] = stroke.points[0];
    context.moveTo(x0, y0);
    for (const [x, y] of stroke.points.slice(1)) {
      context.lineTo(x, y);
    }
    if (stroke.points.length === 1) {
      context.arc(x0, y0, stroke.width / 2, 0, 2 * Math.PI);
      context.fill();
    } else {
      context.stroke();
    }
  };
  const redraw = () => {
    context.clearRect(0, 0, canvas.width, canvas.height);
    strokes.forEach(draw);
  };

  canvas.addEventListener("pointerdown", (event) => {
    canvas.setPointerCapture(event.pointerId);
    const width = (Number(brush.value) / 100) * Math.max(canvas.width, canvas.height);
    current = { tool, width, points: [point(event)] };
    strokes.push(current);
    draw(current);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (current) {
      current.points.push(point(event));
      redraw();
    }
  });
  const end = () => {
    current = null;
  };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointercancel", end);

  form.querySelectorAll("[data-tool]").forEach((button) =>
    button.addEventListener("click", () => {
      tool = button.dataset.tool;
      form.querySelectorAll("[data-tool]").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
    }),
  );
  form.querySelector("[data-undo]").addEventListener("click", () => {
    strokes.pop();
    redraw();
  });
  form.querySelector("[data-clear]").addEventListener("click", () => {
    strokes.length = 0;
    redraw();
  });

  // Painted strokes become the mask file; an uploaded file is sent as it is.
  const file = form.querySelector("input[type=file][name=mask]");
  form.addEventListener("submit", (event) => {
    if (!strokes.length || file.files.length) {
      return;
    }
    event.preventDefault();
    canvas.toBlob((blob) => {
      const transfer = new DataTransfer();
      transfer.items.add(new File([blob], "mask.png", { type: "image/png" }));
      file.files = transfer.files;
      form.submit();
    }, "image/png");
  });
})();
