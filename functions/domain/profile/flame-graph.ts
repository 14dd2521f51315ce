import { FLAME_GRAPH_SCRIPT } from './flame-graph-client.ts';
import { buildFlameTree } from './flame-tree.ts';
import type { Profile } from './profile.ts';
import { diffFrames, type FrameDelta } from './stats.ts';

/** The `content` of `<meta name="flink-profiler-profile">`: which page this is, for machines. */
export type FlameGraphKind = 'flame' | 'diff';

/** Title and subtitle of a flame graph page (plain text; escaped). */
export interface FlameGraphOptions {
  title: string;
  subtitle?: string;
}

/** What a diff page embeds in `#profile-data` besides its tree: the frames whose self share changed most. */
export interface DiffSummary {
  kind: 'diff';
  base: { samples: number };
  target: { samples: number };
  frames: FrameDelta[];
}

/** How many frames of {@link diffFrames} a diff page embeds for machines (the tree has them all). */
const DIFF_SUMMARY_FRAMES = 200;

/**
 * Frames below this share of their profile's samples (in every profile drawn) are left out of the page with
 * everything above them: a tenth of a pixel on a 2,000-pixel canvas, never drawn, but in a profile of 100,000
 * distinct stacks most of the tree's nodes and so most of the page. Their samples stay in their parents' totals.
 */
const MIN_DRAWN_SHARE = 1 / 20_000;

/** The names of the nodes drawn only, renumbered as they are first used (the root's -1 stays). */
class DrawnNames {
  readonly list: string[] = [];
  private readonly ids = new Map<number, number>();
  constructor(private readonly all: string[]) {}
  idOf(name: number): number {
    if (name < 0) return name;
    let id = this.ids.get(name);
    if (id === undefined) {
      id = this.list.push(this.all[name] as string) - 1;
      this.ids.set(name, id);
    }
    return id;
  }
}

/**
 * Preorder indices of the nodes worth drawing: a node below {@link MIN_DRAWN_SHARE} in every profile is skipped with
 * its subtree (the nodes after it that are deeper). The root is always kept.
 */
function drawnNodes(depth: number[], totals: number[][], samples: number[]): number[] {
  const thresholds = samples.map((count) => count * MIN_DRAWN_SHARE);
  const kept: number[] = [];
  let skipDeeperThan = Number.POSITIVE_INFINITY;
  for (let i = 0; i < depth.length; i++) {
    const d = depth[i] as number;
    if (d > skipDeeperThan) continue;
    skipDeeperThan = Number.POSITIVE_INFINITY;
    const visible = i === 0 || totals.some((total, p) => (total[i] as number) >= (thresholds[p] as number));
    if (visible) kept.push(i);
    else skipDeeperThan = d;
  }
  return kept;
}

/**
 * A self-contained flame graph page of the profile: threads merged away, one canvas drawn by an inline script from
 * JSON embedded in the page (so its size follows the number of tree nodes); hover, click-to-zoom and search.
 */
export function flameGraphHtml(profile: Profile, options: FlameGraphOptions): string {
  const tree = buildFlameTree([profile]);
  const nodes: number[] = [];
  const [total] = tree.total as [number[]];
  const names = new DrawnNames(tree.names);
  for (const i of drawnNodes(tree.depth, tree.total, [profile.samples]))
    nodes.push(names.idOf(tree.name[i] as number), tree.depth[i] as number, total[i] as number);
  return page('flame', options, { kind: 'flame', samples: profile.samples, names: names.list, nodes });
}

/**
 * A self-contained differential flame graph: the tree of the target's stacks plus the base-only ones, each frame
 * coloured by the change of its self share (target self / target samples − base self / base samples): red grew,
 * blue shrank, grey unchanged. The embedded JSON carries both profiles' counts per node and `frames`, the
 * {@link diffFrames} summary.
 */
export function diffFlameGraphHtml(base: Profile, target: Profile, options: FlameGraphOptions): string {
  const tree = buildFlameTree([target, base]);
  const [targetTotal, baseTotal] = tree.total as [number[], number[]];
  const [targetSelf, baseSelf] = tree.self as [number[], number[]];
  const nodes: number[] = [];
  const names = new DrawnNames(tree.names);
  for (const i of drawnNodes(tree.depth, tree.total, [target.samples, base.samples])) {
    nodes.push(
      names.idOf(tree.name[i] as number),
      tree.depth[i] as number,
      targetTotal[i] as number,
      targetSelf[i] as number,
      baseTotal[i] as number,
      baseSelf[i] as number,
    );
  }
  const summary: DiffSummary = {
    kind: 'diff',
    base: { samples: base.samples },
    target: { samples: target.samples },
    frames: diffFrames(base, target, DIFF_SUMMARY_FRAMES).frames,
  };
  return page('diff', options, { ...summary, names: names.list, nodes });
}

/** JSON that is inert inside `<script>`: no `<` (so no `</script>` or `<!--`), `>`, `&`, or JS line separators. */
export function scriptSafeJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${(c.codePointAt(0) as number).toString(16).padStart(4, '0')}`,
  );
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const STYLE = `
*{box-sizing:border-box}
body{margin:0;font:14px system-ui,-apple-system,"Segoe UI",sans-serif;color:#1f2328;background:#fff}
header{padding:12px 16px 8px}
h1{font-size:18px;margin:0 0 4px}
header p{margin:0 0 8px;color:#59636e}
.controls{display:flex;gap:12px;align-items:center;flex-wrap:wrap}
.controls input{font:inherit;padding:3px 6px;min-width:260px}
.controls button{font:inherit;padding:3px 10px}
#status{color:#59636e}
.legend{display:flex;gap:14px;margin-top:8px;color:#59636e}
.legend span::before{content:"";display:inline-block;width:12px;height:12px;margin-right:5px;vertical-align:-2px;background:var(--swatch)}
main{padding:0 16px 16px}
canvas{display:block;cursor:pointer}
#tooltip{position:fixed;pointer-events:none;white-space:pre;max-width:90vw;overflow:hidden;text-overflow:ellipsis;
background:#fffbe6;border:1px solid #c9b458;padding:4px 7px;font:12px ui-monospace,Menlo,Consolas,monospace;z-index:1}
`;

const LEGEND = `<div class="legend" aria-label="Legend">
<span style="--swatch:hsl(0,85%,55%)">red: self share grew in the target</span>
<span style="--swatch:hsl(215,85%,55%)">blue: self share shrank</span>
<span style="--swatch:#cfcfcf">grey: unchanged</span>
<span style="--swatch:#d946ef">magenta: search match</span>
</div>`;

function page(kind: FlameGraphKind, options: FlameGraphOptions, data: unknown): string {
  const title = escapeHtml(options.title);
  const subtitle = options.subtitle ? `<p>${escapeHtml(options.subtitle)}</p>\n` : '';
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="flink-profiler-profile" content="${kind}">
<title>${title}</title>
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>${title}</h1>
${subtitle}<div class="controls">
<input id="search" type="search" placeholder="Search frames" aria-label="Search frames" autocomplete="off">
<button id="reset" type="button">Reset zoom</button>
<span id="status" role="status"></span>
</div>
${kind === 'diff' ? LEGEND : ''}
<noscript><p>This flame graph needs JavaScript.</p></noscript>
</header>
<main><div id="chart"><canvas id="graph" role="img" aria-label="${kind === 'diff' ? 'Differential flame graph' : 'Flame graph'}"></canvas></div></main>
<div id="tooltip" hidden></div>
<script type="application/json" id="profile-data">${scriptSafeJson(data)}</script>
<script>${FLAME_GRAPH_SCRIPT}</script>
</body>
</html>
`;
}
