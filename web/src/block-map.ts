import { html } from "htm/preact";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import {
  type BlockMap as Blocks,
  EVICTABLE,
  FREE,
  type RequestView,
} from "../../src/engine/engine-snapshot.js";
import { evictableColour, freeColour, inUseSwatch, requestColour } from "./colours.js";

/** The canvas aims at this many CSS pixels of area; cells shrink for large caches. */
const targetArea = 900 * 300;

/** Owner per block (index i is block id i + 1), from the snapshot's run-length encoding. */
function decodeOwners(blocks: Blocks): Int32Array {
  const owners = new Int32Array(blocks.numBlocks);
  let at = 0;
  for (let i = 0; i < blocks.owners.length; i += 2) {
    owners.fill(blocks.owners[i], at, at + blocks.owners[i + 1]);
    at += blocks.owners[i + 1];
  }
  return owners;
}

interface Layout {
  cell: number;
  columns: number;
}

function layoutFor(numBlocks: number, width: number): Layout {
  const cell = Math.max(4, Math.min(22, Math.floor(Math.sqrt(targetArea / Math.max(numBlocks, 1)))));
  return { cell, columns: Math.max(1, Math.floor(width / cell)) };
}

/**
 * The KV cache, one cell per block: coloured by the running request that holds it, marked with its ref count when
 * the prefix cache shares it, mid grey when free but still cached (evictable), light grey when free.
 */
export function BlockMap({ blocks, running }: { blocks: Blocks; running: RequestView[] }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const [width, setWidth] = useState(900);
  const [hovered, setHovered] = useState("");
  const owners = useMemo(() => decodeOwners(blocks), [blocks]);
  const refCounts = useMemo(() => new Map(blocks.shared), [blocks]);
  const layout = layoutFor(blocks.numBlocks, width);
  let used = 0;
  let evictable = 0;
  for (const owner of owners) {
    if (owner >= 0) used++;
    else if (owner === EVICTABLE) evictable++;
  }

  useEffect(() => {
    const element = canvas.current as HTMLCanvasElement;
    const resize = new ResizeObserver(() => setWidth(element.parentElement?.clientWidth ?? 900));
    resize.observe(element.parentElement as HTMLElement);
    return () => resize.disconnect();
  }, []);

  useEffect(() => {
    const element = canvas.current as HTMLCanvasElement;
    const { cell, columns } = layout;
    const rows = Math.ceil(owners.length / columns);
    const scale = window.devicePixelRatio || 1;
    element.width = columns * cell * scale;
    element.height = rows * cell * scale;
    element.style.width = `${columns * cell}px`;
    element.style.height = `${rows * cell}px`;
    const ctx = element.getContext("2d") as CanvasRenderingContext2D;
    ctx.scale(scale, scale);
    const gap = cell >= 8 ? 1 : 0;
    const colours = running.map((r) => requestColour(r.id));
    ctx.font = `bold ${Math.floor(cell * 0.6)}px system-ui, sans-serif`;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    owners.forEach((owner, i) => {
      const x = (i % columns) * cell;
      const y = Math.floor(i / columns) * cell;
      ctx.fillStyle = owner >= 0 ? colours[owner] : owner === FREE ? freeColour : evictableColour;
      ctx.fillRect(x, y, cell - gap, cell - gap);
      const refs = refCounts.get(i + 1);
      if (refs === undefined) return;
      ctx.fillStyle = "#111";
      if (cell >= 12) ctx.fillText(String(refs), x + (cell - gap) / 2, y + (cell - gap) / 2 + 1);
      else ctx.fillRect(x + cell / 2 - 1, y + cell / 2 - 1, 2, 2);
    });
  }, [owners, refCounts, running, layout.cell, layout.columns]);

  const hover = (e: MouseEvent) => {
    const { cell, columns } = layout;
    const column = Math.floor(e.offsetX / cell);
    const i = Math.floor(e.offsetY / cell) * columns + column;
    if (column >= columns || i >= owners.length) return setHovered("");
    const owner = owners[i];
    const holder = owner >= 0 ? running[owner].id : owner === FREE ? "free" : "free, cached (evictable)";
    const refs = refCounts.get(i + 1);
    setHovered(`block ${i + 1}: ${holder}${refs ? `, shared by ${refs} requests` : ""}`);
  };

  return html`
    <div class="block-map">
      <div class="legend">
        <span><i style="background: ${inUseSwatch}"></i>in use <b data-testid="blocks-used">${used}</b></span>
        <span><i class="shared-mark">2</i>shared <b data-testid="blocks-shared">${blocks.shared.length}</b></span>
        <span><i style="background: ${evictableColour}"></i>cached, evictable <b data-testid="blocks-evictable">${evictable}</b></span>
        <span><i style="background: ${freeColour}"></i>free <b data-testid="blocks-free">${owners.length - used - evictable}</b></span>
        <span class="muted">${blocks.numBlocks} blocks</span>
      </div>
      <canvas ref=${canvas} data-testid="block-map" title=${hovered} onMouseMove=${hover}></canvas>
    </div>
  `;
}
